/*
 * metrics_format.h - Elemta's counters in the Prometheus text exposition
 * format (version 0.0.4), built once here so that elemta-metricsd's
 * /metrics and `elemta-stat --prometheus` print exactly the same thing.
 *
 * Sources, all read-only:
 *   - the counter table's "metric" entries (counter.h).  A key is a
 *     sample exactly as printed: a metric name, optionally followed by
 *     its labels, `elemta_policy_decisions_total{phase="RCPT",
 *     action="reject",plugin="policy"}`.  Names ending in `_bucket` with
 *     an `le` label make a histogram family together with the `_sum` and
 *     `_count` of the same base name; every other key is a counter.
 *     Units: a name that starts with `elemta_` and ends in `_seconds_sum`
 *     or `_seconds_total` holds integer microseconds and is printed in
 *     seconds (so workers add integers, never floats).
 *   - worker stats files in a directory: `PROGRAM-ID-PID.stats`, each a
 *     list of `key value` lines (decimal value).  Key `k` of program `p`
 *     becomes `elemta_p_k`, summed over the files; a key ending in
 *     `_total` is a counter (every file counts: totals survive worker
 *     restarts), any other key a gauge (only files whose PID is alive).
 *   - counter_stats(): table size and fill gauges.
 * Every family gets one # HELP and one # TYPE line; samples of a family
 * are contiguous; an invalid key is skipped, never printed.
 *
 * Knows nothing of the programs that write these sources: it formats
 * names and numbers (the HELP table in metrics_format.c is documentation
 * text only).
 */
#ifndef ELEMTA_METRICS_FORMAT_H
#define ELEMTA_METRICS_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "strbuf.h"

struct config;
struct counter_store;

/* The sub-directory of server.runtime_dir holding the stats files. */
#define METRICS_STATS_SUBDIR "stats"
#define METRICS_STATS_SUFFIX ".stats"
/* Longest stats key and longest metric key accepted. */
#define METRICS_STATS_KEY_MAX 64
#define METRICS_KEY_MAX 480
/* The Content-Type of the exposition. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* The size an exposition buffer should allow (families that do not fit
 * are left out whole). */
#define METRICS_OUTPUT_MAX (16u << 20)

enum metrics_type {
	METRICS_COUNTER,
	METRICS_GAUGE,
	METRICS_HISTOGRAM,
};

struct metrics_set;

/* metrics_set_new - an empty set of samples; free with metrics_set_free. */
struct metrics_set *metrics_set_new(void);
void metrics_set_free(struct metrics_set *set);

/* metrics_key_valid - is key `name` or `name{l="v",...}` in the
 * exposition syntax (label values with \\, \" and \n escapes only, no
 * repeated label, no reserved `__` label)?  *name_len receives the
 * length of the name part (may be NULL). */
bool metrics_key_valid(const char *key, size_t *name_len);

/* metrics_set_add - one sample.  type is its family's type; for
 * METRICS_HISTOGRAM the key is one of FAMILY_bucket{le="..."},
 * FAMILY_sum or FAMILY_count.  help (static text, may be NULL) is used
 * when the family has no entry in the built-in HELP table.  A key seen
 * before is added to (same type); a key of a family already holding
 * another type is dropped.  Returns 0, or -1 when the key is not valid
 * (nothing added). */
int metrics_set_add(struct metrics_set *set, const char *key, uint64_t value,
    enum metrics_type type, const char *help);

/* metrics_set_add_table - every metric entry of the counter table (see
 * above for how types are told apart).  -1 with err when it cannot be
 * read (what was read stays added). */
int metrics_set_add_table(struct metrics_set *set, struct counter_store *cs,
    struct error *err);

/* metrics_set_add_stats_dir - the stats files of dir, as above.  A
 * missing directory adds nothing and is not an error; an unreadable file
 * is skipped.  Returns the number of files read. */
size_t metrics_set_add_stats_dir(struct metrics_set *set, const char *dir);

/* One line of a worker stats file (see above), as handed to a visitor;
 * a file's lines come one after another. */
struct metrics_stats_line {
	const char *file;        /* PROGRAM-ID-PID.stats                  */
	const char *program;
	unsigned id;             /* the worker slot                       */
	long pid;
	bool alive;              /* the writer still runs                 */
	const char *key;         /* [a-z0-9_], at most METRICS_STATS_KEY_MAX */
	uint64_t value;
	bool total;              /* the key ends in _total: only grows    */
};
typedef void (*metrics_stats_fn)(void *arg,
    const struct metrics_stats_line *line);

/* metrics_stats_visit - the one reader of the stats files: every line of
 * dir's files (only PROGRAM's when program is not NULL) that belongs in
 * a sum over the workers: `_total` lines of every file, other lines only
 * of files whose writer still runs.  Invalid names and lines are skipped.
 * Returns the number of files read (a missing directory: 0). */
size_t metrics_stats_visit(const char *dir, const char *program,
    metrics_stats_fn fn, void *arg);

/* metrics_stats_name_parse - "PROGRAM-ID-PID.stats" (PROGRAM [a-z]+,
 * ID <= METRICS_STATS_ID_MAX, PID > 0): program into prog (size bytes),
 * id and pid; false for any other name, temporary files included. */
#define METRICS_STATS_ID_MAX 999999u
bool metrics_stats_name_parse(const char *name, char *prog, size_t size,
    unsigned *id, long *pid);

/* metrics_stats_pid_alive - is the writer of a stats file still running
 * (as any user)? */
bool metrics_stats_pid_alive(long pid);

/* metrics_set_format - the exposition of every sample whose key starts
 * with prefix (NULL: all), appended to out.  -1 when out's limit was
 * reached (out then ends at a complete line). */
int metrics_set_format(const struct metrics_set *set, const char *prefix,
    struct strbuf *out);

/* metrics_collect - the whole exposition of a running system: the stats
 * files under cfg's runtime_dir, then, when cs is not NULL, the table's
 * metrics and size (elemta_counters_up says whether that worked).
 * Returns 0, or -1 with err when the table could not be read (out still
 * holds everything else). */
int metrics_collect(const struct config *cfg, struct counter_store *cs,
    const char *prefix, struct strbuf *out, struct error *err);

#endif
