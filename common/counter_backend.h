/*
 * counter_backend.h - the seam between counter.c (the public interface of
 * counter.h) and the stores that implement it: counter_lmdb.c (the
 * embedded default) and counter_redis.c (shared by several hosts).
 *
 * Private to common/counter*.c; nothing else includes it.  counter.c
 * validates every argument (key length, period, limits, kind) once, so a
 * backend receives only valid input; it dispatches through the vtable the
 * store was opened with.  Every backend keeps the promises of counter.h's
 * header comment.
 */
#ifndef ELEMTA_COUNTER_BACKEND_H
#define ELEMTA_COUNTER_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "counter.h"
#include "error.h"

#define COUNTER_PERIOD_MAX (3660ULL * 86400 * 1000)  /* ten years in ms */
#define COUNTER_REP_NEUTRAL 50.0
#define COUNTER_REP_GET_HALF_LIFE_S 86400.0  /* counter_reputation_get */

/* The spelling of each enum counter_kind (counter.h); counter_kind_name
 * reads it for everything outside the backends. */
extern const char *const counter_kind_names[COUNTER_KIND_COUNT];

struct counter_backend;

/* The part of every store counter.c reads; each backend's own struct
 * begins with it (so a backend casts its handle back). */
struct counter_store {
	const struct counter_backend *be;
	uint64_t (*clock)(void);        /* test clock, or NULL */
};

/* One function per public operation; keys arrive checked (1..
 * COUNTER_KEY_MAX bytes, klen given), limits and periods in range. */
struct counter_backend {
	const char *name;               /* "lmdb", "redis" */
	void (*close)(struct counter_store *cs);
	int (*flush)(struct counter_store *cs, struct error *err);
	/* Whether grouping decisions saves anything (NULL: never); the
	 * only test callers make - the batch_* ops are only the means. */
	bool (*batches)(const struct counter_store *cs);
	void (*batch_begin)(struct counter_store *cs);
	int (*batch_end)(struct counter_store *cs, struct error *err);
	bool (*batch_failed)(const struct counter_store *cs);
	void (*decision_begin)(struct counter_store *cs);
	int (*decision_end)(struct counter_store *cs, bool accepted,
	    struct error *err);
	int (*rate_hit)(struct counter_store *cs, const char *key, size_t klen,
	    uint32_t limit, uint64_t period_ms, struct counter_rate_result *res,
	    struct error *err);
	int (*event_add)(struct counter_store *cs, const char *key, size_t klen,
	    uint32_t keep, uint64_t period_ms, uint32_t *count,
	    struct error *err);
	int (*event_count)(struct counter_store *cs, const char *key,
	    size_t klen, uint64_t period_ms, uint32_t *count, struct error *err);
	int (*key_reset)(struct counter_store *cs, const char *key, size_t klen,
	    struct error *err);
	int (*rep_get)(struct counter_store *cs, const char *key, size_t klen,
	    double *score, struct error *err);
	int (*rep_adjust)(struct counter_store *cs, const char *key,
	    size_t klen, double delta, double half_life_s, struct error *err);
	int (*metric_add)(struct counter_store *cs, const char *name,
	    size_t nlen, uint64_t delta, struct error *err);
	/* client NULL (clen 0) when auto-allow is off */
	int (*grey_check)(struct counter_store *cs, const char *triplet,
	    size_t tlen, const char *client, size_t clen,
	    const struct counter_grey_params *p,
	    struct counter_grey_result *res, struct error *err);
	long (*sweep)(struct counter_store *cs, size_t max_keys,
	    struct error *err);
	int (*visit)(struct counter_store *cs, enum counter_kind kind,
	    const char *prefix, size_t plen, counter_visit_fn fn, void *arg,
	    struct error *err);
	int (*stats)(struct counter_store *cs, struct counter_stats *st,
	    struct error *err);
	bool (*unavailable)(const struct counter_store *cs);
};

/* counter_lmdb_open - the LMDB store (counter_store_open's work). */
int counter_lmdb_open(const char *dir, uint64_t map_size, bool readonly,
    enum counter_sync sync,
    struct counter_store **out, struct error *err);

/* Settings of the Redis store (copied from counters.redis.*). */
struct counter_redis_options {
	char address[256];          /* "HOST:PORT", "[V6]:PORT", "unix:PATH" */
	char password[256];         /* "" = no AUTH                         */
	unsigned database;          /* SELECT, 0..15                        */
	char key_prefix[64];        /* every key starts with it             */
	uint64_t timeout_ms;        /* bound of every call, >= 1            */
	bool fail_open;             /* outage: decisions continue (accept)  */
};

/* counter_redis_open - the Redis store.  A read-only store (elemta-stat)
 * must reach the server now; a writable one connects on first use and
 * rides out outages (see counter_redis.c). */
int counter_redis_open(const struct counter_redis_options *o, bool readonly,
    struct counter_store **out, struct error *err);

#endif
