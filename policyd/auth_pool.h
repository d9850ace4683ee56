/*
 * auth_pool.h - elemta-policyd's password-hashing threads: AUTH hashes
 * run here, never on the worker's event loop, so a flood of AUTH
 * attempts cannot delay the CONNECT/MAIL/RCPT decisions the loop makes
 * for other sessions (issue 22, finding 1).
 *
 * Called by policyd/worker.c.  Bounded: a fixed number of threads, at
 * most AUTH_POOL_QUEUE_MAX jobs waiting or running, and at most
 * AUTH_POOL_PER_CLIENT of them per client key (the fair share: one
 * address cannot take the whole queue); auth_pool_submit refuses the
 * rest at once and the caller answers them 454 without a hash.
 *
 * Ownership: a submitted job stays the caller's memory; the pool only
 * borrows it until auth_pool_next_done hands it back run (or
 * auth_pool_free hands it to its drop function).  Threads touch nothing
 * but the job and their own crypt work area.
 */
#ifndef ELEMTA_POLICYD_AUTH_POOL_H
#define ELEMTA_POLICYD_AUTH_POOL_H

#include <stdbool.h>

#include "auth.h"
#include "error.h"

#define AUTH_POOL_THREADS 1        /* per policyd worker process        */
#define AUTH_POOL_THREADS_MAX 8
#define AUTH_POOL_QUEUE_MAX 64     /* jobs waiting or running           */
#define AUTH_POOL_PER_CLIENT 2     /* of those, per client key          */

struct auth_pool;

/* auth_pool_new - start the threads; NULL with err on failure. */
struct auth_pool *auth_pool_new(unsigned threads, struct error *err);
/* auth_pool_fd - readable while finished jobs wait for
 * auth_pool_next_done (watch it with the event loop). */
int auth_pool_fd(const struct auth_pool *p);
/* auth_pool_submit - queue job (job->client is its fair-share key); -1
 * when the queue or the client's share is full. */
int auth_pool_submit(struct auth_pool *p, struct auth_job *job);
/* auth_pool_next_done - a finished job, or NULL when none is left. */
struct auth_job *auth_pool_next_done(struct auth_pool *p);
/* auth_pool_free - stop the threads (a running hash finishes); every job
 * not collected yet (waiting: its password wiped, or finished) is handed
 * to drop (may be NULL) for its owner to free. */
void auth_pool_free(struct auth_pool *p, void (*drop)(struct auth_job *));

#endif
