/*
 * relay.h - SMTP and LMTP delivery of elemta-queued: the sockets, TLS
 * and timers around queued/smtp_client.c's state machine, on libevent
 * bufferevents (bufferevent_openssl for STARTTLS).
 *
 * Jobs (queue.h) are queued per next hop; each next hop has at most
 * delivery.destination_concurrency connections and all of them together
 * at most delivery.concurrency.  A connection that becomes idle takes
 * the next job of its next hop (connections are reused), or closes after
 * RELAY_IDLE_SECONDS.  A connection that fails before sending a job
 * fails the jobs waiting for its next hop with the same outcome when no
 * other connection to it is left (smtpc_failure).  Every job ends with
 * queue_job_done, exactly once.
 */
#ifndef ELEMTA_QUEUED_RELAY_H
#define ELEMTA_QUEUED_RELAY_H

#include "config.h"
#include "error.h"

struct event_base;
struct queue;
struct qjob;
struct relay;

#define RELAY_IDLE_SECONDS 5

/* relay_new - cfg's TLS client context and AUTH credentials loaded. */
struct relay *relay_new(struct event_base *base, const struct config *cfg,
    struct queue *q, struct error *err);
/* relay_submit - deliver j (SMTP or LMTP next hop). */
void relay_submit(struct relay *r, struct qjob *j);
/* relay_busy - connections open or jobs waiting. */
bool relay_busy(const struct relay *r);
void relay_free(struct relay *r);

#endif
