/*
 * queue.h - the queue manager of elemta-queued: every message in
 * spool.path/queue/ from its pick-up to its removal.
 *
 * It keeps one record per message (the envelope and the per-recipient
 * state of common/queue_state.h), decides when each recipient is tried
 * (queued/schedule.c), routes it (common/route.h), hands the attempt to a
 * transport (Maildir, discard and error here; SMTP and LMTP through
 * queued/relay.c), records each outcome durably before acting on it,
 * bounces (queued/bounce.c) and removes a message once every recipient is
 * final.  Operator requests arrive as control marks
 * (queue_state.h) and are applied between attempts.
 *
 * On the process's libevent base, in its one thread; only the removal of
 * finished messages' files runs on queued/commit.c's worker, answered on
 * the base.  queue_wake is called by main.c when queue/ or control/
 * changed (inotify) and on the periodic rescan; everything else happens
 * on the manager's own timer.
 */
#ifndef ELEMTA_QUEUED_QUEUE_H
#define ELEMTA_QUEUED_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "error.h"
#include "smtp_client.h"

struct event_base;
struct queue;
struct qmsg;
struct route_hop;

/* One attempt for some recipients of one message through one next hop:
 * what a transport is given and reports back on. */
struct qjob {
	struct qmsg *msg;
	const struct route_hop *hop;      /* points into the config        */
	size_t *idx;                      /* envelope indices of rcpts     */
	struct smtpc_message sm;          /* rcpts[i].outcome: the result   */
	struct qjob *next;                /* the transport's list          */
	int fd;                           /* the spool file (read-only)    */
	uint64_t offset;                  /* the transport's read position */
	/* relay.c's, after a temporary failure at one MX host: the
	 * recipients to send again are sm.rcpts[0..relay_nsend) (0: all),
	 * to target relay_from or a later one (mx.h's order). */
	size_t relay_nsend, relay_from;
};

/* queue_new - a manager for cfg's spool on base (cfg outlives it). */
struct queue *queue_new(struct event_base *base, const struct config *cfg,
    struct error *err);
/* queue_wake - look at queue/ and control/ again, then run. */
void queue_wake(struct queue *q);
/* queue_arrived - name appeared in queue/ (inotify): pick it up. */
void queue_arrived(struct queue *q, const char *name);
/* queue_control_changed - a mark appeared in control/. */
void queue_control_changed(struct queue *q);
/* queue_job_done - a transport finished j (every rcpt has an outcome). */
void queue_job_done(struct queue *q, struct qjob *j);
/* queue_job_read - the next bytes of j's message from j->offset (for
 * the transports' body readers): bytes read, 0 at its end, -1. */
long queue_job_read(struct qjob *j, char *buf, size_t size);
/* queue_stop - no new attempts; true once none is in flight and no
 * removal is waiting for the commit. */
bool queue_stop(struct queue *q);
/* queue_stats_refresh - the queue's gauges (stats.h): messages by list
 * state (common/queue_state.h's rule, as `elemtactl status`) and the
 * oldest message's age; q is a struct queue (a stats.h callback). */
void queue_stats_refresh(void *q);
void queue_free(struct queue *q);

#endif
