/*
 * metrics_format.h - samples in the Prometheus text exposition format
 * (version 0.0.4), built once here so that elemta-metricsd's /metrics and
 * `elemta-stat --prometheus` print exactly the same thing.  Formats only:
 * common/metrics_collect.h gathers the samples (the counter table, the
 * worker stats files) and knows where they come from.
 *
 * A key is a sample exactly as printed: a metric name, optionally
 * followed by its labels, `elemta_policy_decisions_total{phase="RCPT",
 * action="reject",plugin="policy"}`.  Units: a name that starts with
 * `elemta_` and ends in `_seconds_sum` or `_seconds_total` holds integer
 * microseconds and is printed in seconds (so workers add integers, never
 * floats).  Every family gets one # HELP and one # TYPE line; samples of
 * a family are contiguous; an invalid key is never added.
 */
#ifndef ELEMTA_METRICS_FORMAT_H
#define ELEMTA_METRICS_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "strbuf.h"

/* Longest metric key accepted. */
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

/* metrics_key_is_bucket - is key a valid `NAME_bucket{...,le="B",...}`
 * (B a number or +Inf), a histogram bucket?  *name_len receives the
 * length of NAME_bucket (may be NULL). */
bool metrics_key_is_bucket(const char *key, size_t *name_len);

/* metrics_set_add - one sample.  type is its family's type; for
 * METRICS_HISTOGRAM the key is one of FAMILY_bucket{le="..."},
 * FAMILY_sum or FAMILY_count.  help (static text, may be NULL) is the
 * family's HELP text when this is its first sample.  A key seen
 * before is added to (same type); a key of a family already holding
 * another type is dropped.  Returns 0, or -1 when the key is not valid
 * (nothing added). */
int metrics_set_add(struct metrics_set *set, const char *key, uint64_t value,
    enum metrics_type type, const char *help);

/* metrics_set_format - the exposition of every sample whose key starts
 * with prefix (NULL: all), appended to out.  -1 when out's limit was
 * reached (out then ends at a complete line). */
int metrics_set_format(const struct metrics_set *set, const char *prefix,
    struct strbuf *out);

#endif
