/*
 * stats.c - elemta-queued's counts and their stats file (contract in
 * stats.h; the keys and the writer are common/stats_file.c's, shared
 * with elemta-smtpd).
 *
 * Called from the single event-loop thread only (queue.c, main.c), so
 * the counts are plain integers.  Runs as server.user, like smtpd:
 * writes only inside server.runtime_dir/stats/ (0644 files, never
 * secrets), which elemtactl creates for that user.
 */
#include "stats.h"
#include "stats_ticker.h"

static uint64_t stats_count[QUEUED_STAT_COUNT];

static struct stats_ticker stats = {
	.w = { .program = STATS_FILE_QUEUED, .keys = stats_file_queued_keys,
	    .counts = stats_count, .n = QUEUED_STAT_COUNT },
};

/* queued_stats_result - see stats.h. */
void
queued_stats_result(enum queued_stat_result result,
    enum route_transport transport, uint64_t latency_us)
{
	size_t b = 0;

	if ((unsigned)result >= QUEUED_RESULT_COUNT ||
	    (unsigned)transport >= STATS_TRANSPORTS)
		return;
	stats_count[QUEUED_STAT_RESULTS + (size_t)result * STATS_TRANSPORTS +
	    (size_t)transport]++;
	stats.dirty = true;
	if (result != QUEUED_RESULT_DELIVERED)
		return;
	while (b < QUEUED_LATENCY_BUCKETS &&
	    latency_us > stats_file_latency_bound_us[b])
		b++;
	/* Cumulative buckets: this one and every larger one. */
	for (; b <= QUEUED_LATENCY_BUCKETS; b++)
		stats_count[QUEUED_STAT_LATENCY_BUCKET + b]++;
	stats_count[QUEUED_STAT_LATENCY_SUM] += latency_us;
	stats_count[QUEUED_STAT_LATENCY_COUNT]++;
}

/* queued_stats_add - see stats.h. */
void
queued_stats_add(enum queued_stat which, uint64_t n)
{
	if ((unsigned)which >= QUEUED_STAT_COUNT || n == 0)
		return;
	stats_count[which] += n;
	stats.dirty = true;
}

/* queued_stats_gauge - see stats.h. */
void
queued_stats_gauge(enum queued_stat which, uint64_t value)
{
	if ((unsigned)which >= QUEUED_STAT_COUNT || stats_count[which] == value)
		return;
	stats_count[which] = value;
	stats.dirty = true;
}

/* queued_stats_value - see stats.h. */
uint64_t
queued_stats_value(enum queued_stat which)
{
	return (unsigned)which < QUEUED_STAT_COUNT ? stats_count[which] : 0;
}

/* queued_stats_start - see stats.h.  Only totals are taken over from a
 * dead predecessor: the gauges start at 0 and are refreshed at once. */
void
queued_stats_start(struct event_base *base, const struct config *cfg,
    void (*refresh)(void *arg), void *arg)
{
	stats.refresh = refresh;
	stats.arg = arg;
	stats_ticker_start(&stats, base, cfg->server.runtime_dir, 0);
}

/* queued_stats_stop - see stats.h. */
void
queued_stats_stop(void)
{
	stats_ticker_stop(&stats);
}
