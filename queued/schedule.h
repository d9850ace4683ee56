/*
 * schedule.h - retry arithmetic of elemta-queued: when a deferred
 * recipient is tried again, when a message has been queued too long
 * (bounce), when its sender is warned of the delay.  Pure functions of
 * their arguments (times in seconds since the epoch, durations in
 * seconds), so the queue manager's decisions can be tested without a
 * clock; the same inputs always give the same answer.
 *
 * Promises (tests/unit/test_schedule.c):
 *  - the backoff after the n-th failed attempt is min_backoff * 2^(n-1),
 *    never more than max_backoff, minus a jitter of at most jitter_pct
 *    percent of it (never below 1 second): spread so that messages
 *    deferred together are not retried in lock step, yet never later
 *    than the plain doubling says;
 *  - the jitter is a function of (seed, n) only: a queue id hashed into
 *    seed gives each message its own, reproducible spread;
 *  - a message older than max_lifetime expires (its deferred recipients
 *    bounce); the next attempt is never scheduled after the expiry, so
 *    the last try happens at the deadline, not a backoff later;
 *  - a delay warning is due once, when delay_warning > 0 and the
 *    message has waited that long, and never after expiry.
 */
#ifndef ELEMTA_QUEUED_SCHEDULE_H
#define ELEMTA_QUEUED_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

struct schedule_policy {
	uint64_t min_backoff;     /* first retry after this (seconds) */
	uint64_t max_backoff;     /* the doubling stops here          */
	uint64_t max_lifetime;    /* then bounce                      */
	uint64_t delay_warning;   /* 0: no delay warnings             */
	unsigned jitter_pct;      /* 0..50                            */
};

/* schedule_policy_default - DESIGN.md's defaults: 5m, 1h, 5d, no
 * warnings, 10% jitter. */
void schedule_policy_default(struct schedule_policy *p);

/* schedule_backoff - the delay after the attempts-th failed attempt
 * (attempts >= 1; 0 is read as 1). */
uint64_t schedule_backoff(const struct schedule_policy *p, unsigned attempts,
    uint64_t seed);

/* schedule_expired - the message accepted at arrival is too old at now. */
bool schedule_expired(const struct schedule_policy *p, int64_t arrival,
    int64_t now);

/* schedule_next_attempt - when to try again after a failure at now (the
 * attempts-th); clamped to the expiry time. */
int64_t schedule_next_attempt(const struct schedule_policy *p,
    int64_t arrival, int64_t now, unsigned attempts, uint64_t seed);

/* schedule_warning_due - whether to send the delay warning now (warned:
 * it was sent already). */
bool schedule_warning_due(const struct schedule_policy *p, int64_t arrival,
    int64_t now, bool warned);

/* schedule_seed - a seed from a string (the queue id): FNV-1a. */
uint64_t schedule_seed(const char *s);

#endif
