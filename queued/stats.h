/*
 * stats.h - elemta-queued's counts (deliveries by result and transport,
 * the queue by list state, the oldest message's age, the delivery
 * latency histogram) and their stats file, read by elemtactl status,
 * elemta-metricsd and elemta-stat (common/stats_file.h has the keys).
 *
 * Counted in memory; written to server.runtime_dir/stats/queued-0-PID
 * .stats at most once a second when something changed, and once at
 * exit.  A restarted elemta-queued takes over its dead predecessor's
 * file, so the counters never go back (docs/internals.md).
 * Callers: queue.c (outcomes, the queue's gauges) and main.c (start,
 * stop).  Before queued_stats_start the counts are kept, never written.
 */
#ifndef ELEMTA_QUEUED_STATS_H
#define ELEMTA_QUEUED_STATS_H

#include <stdint.h>

#include <event2/event.h>

#include "config.h"
#include "route.h"
#include "stats_file.h"

/* queued_stats_result - one recipient's attempt ended with result over
 * transport; latency_us (delivered only, else ignored): the time since
 * smtpd's 250. */
void queued_stats_result(enum queued_stat_result result,
    enum route_transport transport, uint64_t latency_us);

/* queued_stats_add - add n to one of the counters (the resolver's). */
void queued_stats_add(enum queued_stat which, uint64_t n);

/* queued_stats_gauge - set one of the queue's gauges. */
void queued_stats_gauge(enum queued_stat which, uint64_t value);

/* queued_stats_value - the current count (tests). */
uint64_t queued_stats_value(enum queued_stat which);

/* queued_stats_start - from now on, write the file once a second when it
 * changed; refresh (may be NULL) is called first on every tick (the
 * queue's gauges), with arg. */
void queued_stats_start(struct event_base *base, const struct config *cfg,
    void (*refresh)(void *arg), void *arg);
/* queued_stats_stop - the last write (at exit). */
void queued_stats_stop(void);

#endif
