/*
 * counter.c - the public counter interface (counter.h) as a thin dispatch
 * over the backend a store was opened with: counter_lmdb.c (the embedded
 * table, the default) or counter_redis.c (one table for several hosts).
 *
 * Called by policyd's host services and the built-in policy plugin (the
 * decisions), elemta-stat and elemtactl (inspection and preparation).
 * Every argument is checked here, once, so the backends receive only
 * valid input and answer the same errors; the clock (realtime, or the
 * tests' clock) lives here too.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "counter.h"
#include "counter_backend.h"
#include "log.h"

#define PASSWORD_FILE_MAX 4096      /* the first line must be shorter */

const char *const counter_kind_names[COUNTER_KIND_COUNT] = {
	"rate", "rep", "metric", "grey"
};

/* counter_kind_name - the spelling of kind. */
const char *
counter_kind_name(enum counter_kind kind)
{
	if ((unsigned)kind >= COUNTER_KIND_COUNT)
		return "?";
	return counter_kind_names[kind];
}

/* ==== argument checks ==== */

/* key_check - validate a caller key; stores its length. */
static int
key_check(const char *key, size_t *klen, struct error *err)
{
	size_t n;

	if (key == NULL)
		return error_set(err, "counter key missing");
	n = strnlen(key, COUNTER_KEY_MAX + 1);
	if (n == 0)
		return error_set(err, "counter key empty");
	if (n > COUNTER_KEY_MAX)
		return error_set(err, "counter key longer than %d bytes",
		    COUNTER_KEY_MAX);
	*klen = n;
	return 0;
}

/* period_check - validate a window length. */
static int
period_check(uint64_t period_ms, struct error *err)
{
	if (period_ms == 0 || period_ms > COUNTER_PERIOD_MAX)
		return error_set(err, "counter period %" PRIu64
		    " ms out of range 1..%llu", period_ms,
		    (unsigned long long)COUNTER_PERIOD_MAX);
	return 0;
}

/* store_check - a store to dispatch to. */
static int
store_check(const struct counter_store *cs, struct error *err)
{
	if (cs == NULL || cs->be == NULL)
		return error_set(err, "counter table not open");
	return 0;
}

/* ==== opening ==== */

/* counter_store_open - the LMDB table in dir. */
int
counter_store_open(const char *dir, uint64_t map_size, bool readonly,
    enum counter_sync sync, struct counter_store **out, struct error *err)
{
	return counter_lmdb_open(dir, map_size, readonly, sync, out, err);
}

/* password_read - the first line of path (without its line end) into
 * buf; an empty file means no password. */
static int
password_read(const char *path, char *buf, size_t size, struct error *err)
{
	char line[PASSWORD_FILE_MAX];
	FILE *f;
	size_t n;

	buf[0] = '\0';
	f = fopen(path, "re");
	if (f == NULL)
		return error_set(err, "counters.redis.password_file %s: %s",
		    path, strerror(errno));
	if (fgets(line, sizeof(line), f) == NULL) {
		bool failed = ferror(f) != 0;

		fclose(f);
		if (failed)
			return error_set(err, "counters.redis.password_file %s: "
			    "cannot read it", path);
		return 0;
	}
	fclose(f);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (n >= size) {
		explicit_bzero(line, sizeof(line));
		return error_set(err, "counters.redis.password_file %s: the "
		    "password is longer than %zu bytes", path, size - 1);
	}
	memcpy(buf, line, n + 1);
	explicit_bzero(line, sizeof(line));
	return 0;
}

/* counter_store_open_config - the backend counters.backend names. */
int
counter_store_open_config(const struct config *cfg, bool readonly,
    struct counter_store **out, struct error *err)
{
	struct counter_redis_options o;
	int rc;

	*out = NULL;
	if (cfg->counters.backend == CONFIG_BACKEND_LMDB)
		return counter_lmdb_open(cfg->counters.path,
		    cfg->counters.map_size, readonly,
		    (enum counter_sync)cfg->counters.sync, out, err);
	if (cfg->counters.backend != CONFIG_BACKEND_REDIS)
		return error_set(err, "counters.backend %d is not supported",
		    (int)cfg->counters.backend);
	memset(&o, 0, sizeof(o));
	str_copy(o.address, cfg->counters.redis.address, sizeof(o.address));
	str_copy(o.key_prefix, cfg->counters.redis.key_prefix,
	    sizeof(o.key_prefix));
	o.database = cfg->counters.redis.database;
	o.timeout_ms = cfg->counters.redis.timeout_ms;
	/* policyd.fail_mode: accept lets decisions continue through an
	 * outage; inspection (read-only stores, reset) never pretends. */
	o.fail_open = !readonly &&
	    cfg->policyd.fail_mode == CONFIG_FAIL_ACCEPT;
	if (cfg->counters.redis.password_file[0] != '\0' &&
	    password_read(cfg->counters.redis.password_file, o.password,
	    sizeof(o.password), err) < 0)
		return -1;
	rc = counter_redis_open(&o, readonly, out, err);
	explicit_bzero(o.password, sizeof(o.password));
	return rc;
}

/* counter_store_close - finish a pending decision (as accepted) and
 * release the store; NULL is ignored. */
void
counter_store_close(struct counter_store *cs)
{
	if (cs == NULL || cs->be == NULL)
		return;
	cs->be->close(cs);
}

/* counter_store_backend - "lmdb" or "redis". */
const char *
counter_store_backend(const struct counter_store *cs)
{
	return cs != NULL && cs->be != NULL ? cs->be->name : "none";
}

/* counter_store_unavailable - true during a backend outage. */
bool
counter_store_unavailable(const struct counter_store *cs)
{
	return cs != NULL && cs->be != NULL && cs->be->unavailable(cs);
}


/* counter_flush - the periodic flush of FAST mode. */
int
counter_flush(struct counter_store *cs, struct error *err)
{
	if (store_check(cs, err) < 0)
		return -1;
	return cs->be->flush(cs, err);
}

/* ==== clock ==== */

/* counter_now_ms - realtime ms (counts must survive restarts), or the
 * test clock. */
uint64_t
counter_now_ms(const struct counter_store *cs)
{
	struct timespec ts;

	if (cs != NULL && cs->clock != NULL)
		return cs->clock();
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* counter_set_clock - replace the clock (NULL: back to realtime). */
void
counter_set_clock(struct counter_store *cs, uint64_t (*clock)(void))
{
	cs->clock = clock;
}

/* ==== batches and decisions ==== */

/* counter_store_batches - the backend groups commits. */
bool
counter_store_batches(const struct counter_store *cs)
{
	return store_check(cs, NULL) == 0 && cs->be->batches != NULL &&
	    cs->be->batches(cs);
}

/* counter_batch_begin - decisions from here on share one commit. */
void
counter_batch_begin(struct counter_store *cs)
{
	if (store_check(cs, NULL) == 0 && cs->be->batch_begin != NULL)
		cs->be->batch_begin(cs);
}

/* counter_batch_end - commit the batch (0), or report it lost (-1). */
int
counter_batch_end(struct counter_store *cs, struct error *err)
{
	if (store_check(cs, err) < 0)
		return -1;
	if (cs->be->batch_end == NULL)
		return 0;
	return cs->be->batch_end(cs, err);
}

/* counter_batch_failed - the open batch is lost already. */
bool
counter_batch_failed(const struct counter_store *cs)
{
	return store_check(cs, NULL) == 0 && cs->be->batch_failed != NULL &&
	    cs->be->batch_failed(cs);
}

/* counter_decision_begin - start a decision. */
void
counter_decision_begin(struct counter_store *cs)
{
	if (store_check(cs, NULL) == 0)
		cs->be->decision_begin(cs);
}

/* counter_decision_end - end it, accepted or refused. */
int
counter_decision_end(struct counter_store *cs, bool accepted,
    struct error *err)
{
	if (store_check(cs, err) < 0)
		return -1;
	return cs->be->decision_end(cs, accepted, err);
}

/* ==== rate logs ==== */

/* counter_rate_hit - accept and record one event if fewer than limit lie
 * in the window; allowed is false on every error. */
int
counter_rate_hit(struct counter_store *cs, const char *key, uint32_t limit,
    uint64_t period_ms, struct counter_rate_result *res, struct error *err)
{
	size_t klen;

	memset(res, 0, sizeof(*res));
	res->allowed = false;
	if (store_check(cs, err) < 0 || key_check(key, &klen, err) < 0 ||
	    period_check(period_ms, err) < 0)
		return -1;
	if (limit == 0 || limit > COUNTER_LIMIT_MAX)
		return error_set(err, "rate limit %" PRIu32 " out of range "
		    "1..%d", limit, COUNTER_LIMIT_MAX);
	if (cs->be->rate_hit(cs, key, klen, limit, period_ms, res, err) < 0) {
		memset(res, 0, sizeof(*res));
		return -1;
	}
	return 0;
}

/* counter_grey_refresh_ms - a passed record's refresh granularity
 * (counter.h): small against max_age, at most an hour. */
uint64_t
counter_grey_refresh_ms(const struct counter_grey_params *p)
{
	uint64_t g = p->max_age_ms / 100;

	return g < 3600000 ? g : 3600000;
}

/* counter_grey_check - greylisting's atomic step (counter.h). */
int
counter_grey_check(struct counter_store *cs, const char *triplet,
    const char *client, const struct counter_grey_params *p,
    struct counter_grey_result *res, struct error *err)
{
	size_t tlen, clen = 0;

	memset(res, 0, sizeof(*res));
	res->verdict = COUNTER_GREY_GREYLISTED;
	if (store_check(cs, err) < 0 || key_check(triplet, &tlen, err) < 0 ||
	    period_check(p->retry_window_ms, err) < 0 ||
	    period_check(p->max_age_ms, err) < 0)
		return -1;
	if (p->delay_ms > p->retry_window_ms)
		return error_set(err, "greylisting delay over its retry window");
	if (p->auto_allow_after > 0 && (key_check(client, &clen, err) < 0 ||
	    p->auto_allow_interval_ms > COUNTER_PERIOD_MAX))
		return -1;
	if (p->auto_allow_after == 0)
		client = NULL;
	if (cs->be->grey_check(cs, triplet, tlen, client, clen, p, res,
	    err) < 0) {
		memset(res, 0, sizeof(*res));
		res->verdict = COUNTER_GREY_GREYLISTED;
		return -1;
	}
	return 0;
}

/* counter_event_add - record one event unconditionally. */
int
counter_event_add(struct counter_store *cs, const char *key, uint32_t keep,
    uint64_t period_ms, uint32_t *count, struct error *err)
{
	uint32_t dummy;
	size_t klen;

	if (count == NULL)
		count = &dummy;
	*count = 0;
	if (store_check(cs, err) < 0 || key_check(key, &klen, err) < 0 ||
	    period_check(period_ms, err) < 0)
		return -1;
	if (keep == 0 || keep > COUNTER_LIMIT_MAX)
		return error_set(err, "event keep %" PRIu32 " out of range "
		    "1..%d", keep, COUNTER_LIMIT_MAX);
	return cs->be->event_add(cs, key, klen, keep, period_ms, count, err);
}

/* counter_event_count - events for key in the last period_ms. */
int
counter_event_count(struct counter_store *cs, const char *key,
    uint64_t period_ms, uint32_t *count, struct error *err)
{
	size_t klen;

	*count = 0;
	if (store_check(cs, err) < 0 || key_check(key, &klen, err) < 0 ||
	    period_check(period_ms, err) < 0)
		return -1;
	return cs->be->event_count(cs, key, klen, period_ms, count, err);
}

/* counter_key_reset - forget key's events and reputation (absent: ok). */
int
counter_key_reset(struct counter_store *cs, const char *key,
    struct error *err)
{
	size_t klen;

	if (store_check(cs, err) < 0 || key_check(key, &klen, err) < 0)
		return -1;
	return cs->be->key_reset(cs, key, klen, err);
}

/* ==== reputation ==== */

/* counter_reputation_get - decayed score (24 h half-life); absent = 50. */
int
counter_reputation_get(struct counter_store *cs, const char *key,
    double *score, struct error *err)
{
	size_t klen;

	*score = COUNTER_REP_NEUTRAL;
	if (store_check(cs, err) < 0 || key_check(key, &klen, err) < 0)
		return -1;
	return cs->be->rep_get(cs, key, klen, score, err);
}

/* counter_reputation_adjust - add delta after decaying for elapsed time
 * with half_life_s (> 0). */
int
counter_reputation_adjust(struct counter_store *cs, const char *key,
    double delta, double half_life_s, struct error *err)
{
	size_t klen;

	if (store_check(cs, err) < 0 || key_check(key, &klen, err) < 0)
		return -1;
	if (!isfinite(delta))
		return error_set(err, "reputation delta not a number");
	if (!isfinite(half_life_s) || half_life_s <= 0.0)
		return error_set(err, "reputation half-life must be > 0");
	return cs->be->rep_adjust(cs, key, klen, delta, half_life_s, err);
}

/* ==== metrics ==== */

/* counter_host_key - a daemon's own key (see counter.h). */
int
counter_host_key(char *buf, size_t size, const char *kind,
    const char *subject)
{
	int n = snprintf(buf, size, COUNTER_HOST_PREFIX "%s:%s", kind, subject);

	if (n < 0 || (size_t)n >= size || (size_t)n > COUNTER_KEY_MAX)
		return -1;
	return 0;
}

/* counter_metric_add - add delta to the shared metric name. */
int
counter_metric_add(struct counter_store *cs, const char *name,
    uint64_t delta, struct error *err)
{
	size_t nlen;

	if (store_check(cs, err) < 0 || key_check(name, &nlen, err) < 0)
		return -1;
	return cs->be->metric_add(cs, name, nlen, delta, err);
}

/* ==== sweeping and inspection ==== */

/* counter_sweep - delete stale entries (a no-op where keys expire). */
long
counter_sweep(struct counter_store *cs, size_t max_keys, struct error *err)
{
	if (store_check(cs, err) < 0)
		return -1;
	return cs->be->sweep(cs, max_keys, err);
}

/* counter_visit - call fn for every entry of kind under prefix. */
int
counter_visit(struct counter_store *cs, enum counter_kind kind,
    const char *prefix, counter_visit_fn fn, void *arg, struct error *err)
{
	size_t plen;

	if (store_check(cs, err) < 0)
		return -1;
	if ((unsigned)kind >= COUNTER_KIND_COUNT)
		return error_set(err, "unknown counter kind %d", (int)kind);
	if (fn == NULL)
		return error_set(err, "counter_visit: no callback");
	if (prefix == NULL)
		prefix = "";
	plen = strnlen(prefix, COUNTER_KEY_MAX + 1);
	if (plen > COUNTER_KEY_MAX)
		return error_set(err, "counter prefix longer than %d bytes",
		    COUNTER_KEY_MAX);
	return cs->be->visit(cs, kind, prefix, plen, fn, arg, err);
}

/* counter_stats - size, use and entries of the store. */
int
counter_stats(struct counter_store *cs, struct counter_stats *st,
    struct error *err)
{
	memset(st, 0, sizeof(*st));
	if (store_check(cs, err) < 0)
		return -1;
	return cs->be->stats(cs, st, err);
}
