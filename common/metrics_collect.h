/*
 * metrics_collect.h - the samples of a running Elemta system, gathered
 * for the Prometheus exposition (common/metrics_format.h formats them).
 * Called by elemta-metricsd once per scrape and by elemta-stat
 * --prometheus, so both print the same thing.
 *
 * Sources, all read-only:
 *   - the counter table's "metric" entries (counter.h).  A key is a
 *     sample exactly as printed (metrics_format.h).  Names ending in
 *     `_bucket` with an `le` label make a histogram family together with
 *     the `_sum` and `_count` of the same base name; every other key is a
 *     counter.
 *   - the worker stats files (stats_file.h).  Key `k` of program `p`
 *     becomes `elemta_p_k`, summed over the files; a key ending in
 *     `_total` is a counter, any other key a gauge.  HELP texts come from
 *     stats_file.h's key table.
 *   - counter_stats(): table size and fill gauges.
 */
#ifndef ELEMTA_METRICS_COLLECT_H
#define ELEMTA_METRICS_COLLECT_H

#include <stddef.h>

#include "error.h"
#include "metrics_format.h"
#include "strbuf.h"

struct config;
struct counter_store;

/* metrics_set_add_table - every metric entry of the counter table (see
 * above for how types are told apart).  -1 with err when it cannot be
 * read (what was read stays added). */
int metrics_set_add_table(struct metrics_set *set, struct counter_store *cs,
    struct error *err);

/* metrics_set_add_stats_dir - the stats files of dir, as above.  A
 * missing directory adds nothing and is not an error; an unreadable file
 * is skipped.  Returns the number of files read. */
size_t metrics_set_add_stats_dir(struct metrics_set *set, const char *dir);

/* metrics_collect - the whole exposition of a running system: the stats
 * files under cfg's runtime_dir, then, when cs is not NULL, the table's
 * metrics and size (elemta_counters_up says whether that worked).
 * Returns 0, or -1 with err when the table could not be read (out still
 * holds everything else). */
int metrics_collect(const struct config *cfg, struct counter_store *cs,
    const char *prefix, struct strbuf *out, struct error *err);

#endif
