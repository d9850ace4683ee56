/*
 * worker.h - elemta-policyd's event loop: accepts on the inherited
 * listening sockets, reads policy requests, runs the plugin chain, writes
 * the replies in request order.
 *
 * Called by policyd/main.c after the config, the counter table and the
 * plugin chain are ready.
 */
#ifndef ELEMTA_POLICYD_WORKER_H
#define ELEMTA_POLICYD_WORKER_H

#include "counter.h"
#include "error.h"
#include "plugin_host.h"

#include <stdbool.h>

#include <event2/event.h>

/* worker_run - serve until SIGTERM/SIGINT.  policy_fd is the private
 * listener (Elemta's smtpd, extensions honoured), postfix_fd the Postfix
 * listener (extensions ignored); either may be -1, not both.  cs may be
 * NULL (no sweeping).  cfg (may be NULL: no resolver) gives the DNS
 * resolver of the worker's loop (dns.*; a request's DNS time is bounded
 * below policyd.timeout_ms) and the milters (milters:, policyd/milter.h:
 * every END-OF-MESSAGE of the private listener the chain lets through).
 * Returns 0 after a graceful stop, -1 with
 * err when the loop could not be set up. */
int worker_run(struct plugin_host *host, struct counter_store *cs,
    const struct config *cfg, int policy_fd, int postfix_fd,
    struct error *err);

/* What the loop asks of the rest of policyd, behind one seam (in the
 * style of smtpd/session.h's session_ops) so that tests/unit/test_worker.c
 * can script decisions and group commits.  worker_run passes the real
 * ones: plugin_host_decide and the counter table's batches (counter.h's
 * batch contract applies). */
struct auth_job;

struct worker_ops {
	void (*decide)(void *arg, const struct plugin_request *rq,
	    struct plugin_decision *out);
	void (*batch_begin)(void *arg);
	int (*batch_end)(void *arg, struct error *err);   /* -1: all lost */
	bool (*batch_failed)(void *arg);
	/* Optional, both or neither (NULL: an AUTH request goes through
	 * decide like any other): plugin_host_auth_begin and
	 * plugin_host_auth_finish, so that the password hash runs on the
	 * worker's pool of threads (policyd/auth_pool.c). */
	int (*auth_begin)(void *arg, const struct plugin_request *rq,
	    struct plugin_decision *out, struct auth_job *job);
	void (*auth_finish)(void *arg, const struct plugin_request *rq,
	    struct auth_job *job, struct plugin_decision *out);
	/* Optional, all three or none (NULL: decide): decisions that may
	 * wait for DNS - plugin_host_decide_begin, _resume and
	 * plugin_wait_free.  A waiting request pauses its connection (its
	 * later requests wait: replies go out in order) while the others
	 * are served. */
	int (*decide_begin)(void *arg, const struct plugin_request *rq,
	    struct plugin_decision *out, plugin_wait_ready ready,
	    void *ready_arg, struct plugin_wait **wait);
	int (*decide_resume)(void *arg, const struct plugin_request *rq,
	    struct plugin_wait *wait, struct plugin_decision *out);
	void (*wait_free)(void *arg, struct plugin_wait *wait);
};

struct worker;

/* worker_new - a worker serving policy_fd and postfix_fd (as worker_run)
 * on base, which must have no events yet (the worker sets its
 * priorities).  batching: decisions share group commits through the
 * batch_* ops.  ops and arg are borrowed.  No signals, no housekeeping
 * tick: the caller runs base.  NULL (err filled) when it cannot be set up. */
struct worker *worker_new(struct event_base *base,
    const struct worker_ops *ops, void *arg, bool batching, int policy_fd,
    int postfix_fd, struct error *err);
/* worker_free - commit the open batch, write the last replies (best
 * effort), close every connection, free the worker (not base). */
void worker_free(struct worker *w);

#endif
