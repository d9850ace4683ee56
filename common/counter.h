/*
 * counter.h - the shared counter table: one interface, two backends
 * (counters.backend): an embedded LMDB table (the default; one host) or a
 * Redis/Valkey server (several MX hosts holding one limit).
 *
 * Every elemta-policyd worker opens the store after fork; elemta-stat
 * opens it read-only.  The kinds of entries (enum counter_kind):
 *   rate    sliding-window event logs (rate limits, failed-auth counts)
 *   rep     reputation history per client key
 *   metric  monotonically increasing metric counters
 *   grey    greylisting records: triplets and client networks (below)
 *
 * Exactness: a rate key stores the timestamps of its accepted events inside
 * the window (a sliding log).  An event is accepted only when fewer than
 * `limit` timestamps lie in (now - period, now], and the check and the
 * append are one atomic step (LMDB: one write transaction, serialised
 * across processes; Redis: one server-side script, serialised across
 * every host, on the server's clock); so no window of `period` ever holds
 * more than `limit` accepted events, and a client under the limit is never
 * refused.  LMDB keeps the log only up to a limit of 1,024 (RATE_LOG_MAX);
 * a larger limit counts events in 32 buckets per period instead (O(1) per
 * hit): the bound above still holds, but the window is counted up to one
 * bucket (period/32) early, so a client steadily under ~90% of the limit
 * is never refused while one just under it may be (Redis stays exact).
 *
 * Decisions: counter_decision_begin() opens a decision (LMDB: one write
 * transaction, begun lazily on the first write); counter_decision_end()
 * ends it.  Rate hits recorded during a decision that ends refused are
 * withdrawn, so a refused event is never counted.
 *
 * Batches (group commit): between counter_batch_begin() and
 * counter_batch_end() consecutive decisions share one write transaction
 * (LMDB), committed - one flush - by counter_batch_end().  Each decision
 * still sees the ones before it (exactness is unchanged) and a refused one
 * still withdraws its own hits; but nothing of the batch is durable, and
 * no answer may leave the process, before counter_batch_end() returns 0.
 * When it returns -1 every decision of the batch was lost and must be
 * answered as a temporary failure (counter_batch_failed() tells as soon
 * as that is certain).  The writer lock is held from the
 * batch's first write to its end: keep batches short and decide slow
 * requests (password hashes, message scans) outside them.  Redis has no
 * batches (each call is atomic on the server): both calls do nothing.
 *
 * Outages (Redis only): while the server is unreachable or slower than
 * counters.redis.timeout_ms, calls fail (-1, err says so; at once while
 * the store backs off between reconnection attempts) and the callers
 * tempfail - never a silent allow.  With policyd.fail_mode: accept, the
 * calls a writable store gets inside a decision answer neutrally instead
 * (rate hits allowed, counts 0, scores 50, nothing recorded), so policyd
 * continues as smtpd would without policyd; resets and inspection outside
 * decisions still fail.  The outage and the recovery are logged once each
 * by the store; counter_store_unavailable() lets callers skip logging
 * every failed request.
 */
#ifndef ELEMTA_COUNTER_H
#define ELEMTA_COUNTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define COUNTER_KEY_MAX 480      /* below LMDB's default max key size 511 */
#define COUNTER_LIMIT_MAX 100000 /* largest limit a sliding log may hold  */

struct config;
struct counter_store;

/* Keys the daemons themselves count under (a plugin's keys are
 * "name:key" with a name of [a-z0-9_-], so "@" keeps the two apart).
 * Built with counter_host_key. */
#define COUNTER_HOST_PREFIX "@"
#define COUNTER_HOST_AUTH_ATTEMPTS "auth-attempts"  /* per client key */

/* counter_host_key - COUNTER_HOST_PREFIX kind ":" subject into buf; -1
 * when it does not fit COUNTER_KEY_MAX (or size). */
int counter_host_key(char *buf, size_t size, const char *kind,
    const char *subject);

/* Durability of a writable store (counters.sync). */
enum counter_sync {
	COUNTER_SYNC_SAFE,  /* MDB_NOMETASYNC: one fdatasync per decision that
	                     * records; a power loss can lose the last events,
	                     * never corrupt the table (default)              */
	COUNTER_SYNC_FAST,  /* MDB_WRITEMAP | MDB_NOSYNC, flushed by
	                     * counter_flush() about once a second: no write
	                     * system call per commit; after a system crash
	                     * the table is discarded at the next start (see
	                     * counter_store_prepare)                         */
};

/* counter_store_open_config - open the backend cfg->counters.backend
 * names: the LMDB table at counters.path (counters.map_size, counters.sync),
 * or the Redis
 * server of counters.redis.* (the password file is read now).  A writable
 * Redis store connects on first use and rides out outages; a read-only one
 * (elemta-stat) must reach the server now.  policyd.fail_mode is taken
 * from cfg for a writable store (see Outages above). */
int counter_store_open_config(const struct config *cfg, bool readonly,
    struct counter_store **out, struct error *err);
/* counter_store_open - open (creating when writable) the LMDB environment
 * in directory dir with an initial map of map_size bytes, in durability
 * mode sync (ignored when readonly). */
int counter_store_open(const char *dir, uint64_t map_size, bool readonly,
    enum counter_sync sync, struct counter_store **out, struct error *err);
/* counter_store_close - end a pending decision as accepted; close. */
void counter_store_close(struct counter_store *cs);
/* counter_store_backend - "lmdb" or "redis" (static text). */
const char *counter_store_backend(const struct counter_store *cs);
/* counter_store_unavailable - true while the backend is in a state it has
 * already logged: a Redis outage, or an LMDB table full at its growth cap
 * (until a write commits again).  Callers use it to avoid logging the same
 * problem once per request. */
bool counter_store_unavailable(const struct counter_store *cs);

/* counter_flush - in FAST mode, flush to disk when the last flush is older
 * than a second; cheap otherwise.  policyd calls it from its housekeeping. */
int counter_flush(struct counter_store *cs, struct error *err);

/* counter_store_prepare - called by elemtactl at start, before any worker
 * opens the table: creates dir (mode 0700) and, in FAST mode, discards a
 * table left open by a run of an earlier boot (a system crash may have
 * corrupted it: it is renamed to dir/discarded-<time>/ and logged).
 * Writes the marker dir/open-boot-id; counter_store_mark_clean() removes
 * it at a clean stop.  *discarded is set when a table was moved aside. */
int counter_store_prepare(const char *dir, enum counter_sync mode,
    bool *discarded, struct error *err);
void counter_store_mark_clean(const char *dir);
/* counter_store_check - read the LMDB table in dir once in a child process
 * (as counter_store_prepare does): 0 when it is sound or absent, -1 with
 * err saying it is corrupt or could not be checked.  For tools that open a
 * table no elemtactl start has checked: LMDB trusts its file, and a
 * damaged one crashes the reader. */
int counter_store_check(const char *dir, struct error *err);

/* Wall-clock milliseconds; tests replace it through counter_set_clock.
 * LMDB decides on this clock; Redis decides on the server's clock (so
 * hosts with skewed clocks agree) and the test clock does not reach it. */
uint64_t counter_now_ms(const struct counter_store *cs);
void counter_set_clock(struct counter_store *cs, uint64_t (*clock)(void));

/* counter_store_batches - true when batches group commits (LMDB with
 * counters.sync safe, where each commit is an fdatasync); a caller need
 * not hold answers for a store without them (LMDB fast, Redis). */
bool counter_store_batches(const struct counter_store *cs);
void counter_batch_begin(struct counter_store *cs);
/* counter_batch_end - commit the batch; -1: all of it was lost. */
int counter_batch_end(struct counter_store *cs, struct error *err);
/* counter_batch_failed - the open batch is already lost (a decision in it
 * failed): end it now, as every later decision in it would fail too. */
bool counter_batch_failed(const struct counter_store *cs);

void counter_decision_begin(struct counter_store *cs);
/* Commits (accepted: keep everything; refused: withdraw this decision's
 * rate hits first). Returns -1 when the commit failed. */
int counter_decision_end(struct counter_store *cs, bool accepted,
    struct error *err);

struct counter_rate_result {
	bool allowed;
	uint32_t count;         /* events in the window after this call */
	uint64_t retry_ms;      /* when refused: until the oldest expires */
};

/* counter_rate_hit - the exact check-and-record described above. */
int counter_rate_hit(struct counter_store *cs, const char *key,
    uint32_t limit, uint64_t period_ms, struct counter_rate_result *res,
    struct error *err);
/* counter_event_add - record one event unconditionally (keeping at most
 * keep timestamps), for failure counts. */
int counter_event_add(struct counter_store *cs, const char *key,
    uint32_t keep, uint64_t period_ms, uint32_t *count, struct error *err);
/* counter_event_count - events for key in the last period_ms. */
int counter_event_count(struct counter_store *cs, const char *key,
    uint64_t period_ms, uint32_t *count, struct error *err);
int counter_key_reset(struct counter_store *cs, const char *key,
    struct error *err);

/* Reputation: a score 0..100 per key, decaying toward neutral (50). */
int counter_reputation_get(struct counter_store *cs, const char *key,
    double *score, struct error *err);
/* counter_reputation_adjust - add delta after decaying for elapsed time. */
int counter_reputation_adjust(struct counter_store *cs, const char *key,
    double delta, double half_life_s, struct error *err);

/* Metrics shared by every worker. */
int counter_metric_add(struct counter_store *cs, const char *name,
    uint64_t delta, struct error *err);

/* Greylisting (postgrey's algorithm) on "grey" entries: a record {first
 * seen, last seen, count, expiry} per key, read, decided and written in
 * one atomic step (LMDB: the decision's write transaction; Redis: one
 * script on the server's clock), so every worker, restart and host that
 * shares the table greylists as one.  counter_grey_check(triplet, client):
 *   1. auto-allow: when auto_allow_after > 0 and client's count reached
 *      it, AUTO_ALLOWED (the count's last-seen refreshed at most once an
 *      auto_allow_interval, its expiry pushed to max_age).
 *   2. the triplet: absent or expired -> first seen now; never passed
 *      and first seen more than retry_window ago -> first seen now (a
 *      retry after the window starts over).  Never passed and less than
 *      delay since first seen -> GREYLISTED, retry_ms until delay; the
 *      record lives through first seen + retry_window.  Otherwise PASSED
 *      (first_pass when this call passed it), the record kept until
 *      max_age after this call.
 *   3. a first pass counts for the client (at most once an
 *      auto_allow_interval), its record kept until max_age.
 * A pass that would change nothing but the last-seen time and expiry of a
 * record refreshed less than counter_grey_refresh_ms(p) ago writes
 * nothing (the cached path stays read-only): a passed triplet or an
 * auto-allowed client is then kept max_age after its last refresh, at
 * most that granularity less than after this use, and a triplet's count
 * counts refreshes, not every pass.
 * The records are written whatever the decision's outcome (a greylisted
 * attempt is itself the refusal); nothing of a decision withdraws them.
 * Expired records are swept (LMDB, counter_sweep) or expire on the
 * server (Redis PEXPIREAT). */
struct counter_grey_params {
	uint64_t delay_ms;               /* 0..retry_window_ms             */
	uint64_t retry_window_ms;        /* 1..COUNTER_PERIOD_MAX          */
	uint64_t max_age_ms;             /* 1..COUNTER_PERIOD_MAX          */
	uint32_t auto_allow_after;       /* 0: no auto-allow               */
	uint64_t auto_allow_interval_ms; /* between two counted passes     */
};

enum counter_grey_verdict {
	COUNTER_GREY_GREYLISTED,
	COUNTER_GREY_PASSED,
	COUNTER_GREY_AUTO_ALLOWED,
};

struct counter_grey_result {
	enum counter_grey_verdict verdict;
	uint64_t retry_ms;       /* GREYLISTED: until the delay has passed  */
	bool first_pass;         /* PASSED: by this call                    */
	uint32_t client_count;   /* the client's counted passes after it    */
};

/* counter_grey_refresh_ms - the refresh granularity above:
 * min(max_age / 100, 1 h). */
uint64_t counter_grey_refresh_ms(const struct counter_grey_params *p);

/* counter_grey_check - the atomic step above.  client may be NULL when
 * auto_allow_after is 0.  On error res is GREYLISTED with retry_ms 0. */
int counter_grey_check(struct counter_store *cs, const char *triplet,
    const char *client, const struct counter_grey_params *p,
    struct counter_grey_result *res, struct error *err);

/* counter_sweep - delete rate entries whose newest event left its window
 * and grey records past their expiry; at most max_keys of each per call.  Returns the number deleted or -1.  (Redis:
 * 0 - every key carries an expiry and the server deletes it.) */
long counter_sweep(struct counter_store *cs, size_t max_keys,
    struct error *err);

/* The kinds of entry (see the top of this file), in this order
 * everywhere; counter_kind_name() spells each one. */
enum counter_kind {
	COUNTER_KIND_RATE,
	COUNTER_KIND_REP,
	COUNTER_KIND_METRIC,
	COUNTER_KIND_GREY,
	COUNTER_KIND_COUNT
};

/* counter_kind_name - "rate", "rep", "metric" or "grey" (static text; "?" for a
 * value outside the enum).  The one spelling, used by the LMDB database
 * names, the Redis entry tags and elemta-stat's output. */
const char *counter_kind_name(enum counter_kind kind);

/* Inspection (elemta-stat). */
struct counter_entry {
	enum counter_kind kind;
	const char *key;
	uint32_t count;          /* rate: events in window; metric: low bits */
	uint64_t value;          /* metric value                            */
	uint32_t limit;          /* rate: the limit last used (0 = event log) */
	uint64_t period_ms;
	uint64_t oldest_ms;      /* rate: oldest timestamp in window;
	                          * grey: first seen                        */
	uint64_t newest_ms;      /* grey: last seen                          */
	double score;            /* rep                                      */
	uint64_t expires_ms;     /* grey: when the record goes               */
};
typedef int (*counter_visit_fn)(const struct counter_entry *e, void *arg);
/* counter_visit - call fn for every entry of kind whose key starts with
 * prefix (NULL: all), in key order, inside one read transaction (Redis:
 * an incremental SCAN, collected and sorted before the first call, so a
 * snapshot only as consistent as SCAN's guarantee); stops when fn returns
 * non-zero. */
int counter_visit(struct counter_store *cs, enum counter_kind kind,
    const char *prefix, counter_visit_fn fn, void *arg, struct error *err);

struct counter_stats {
	uint64_t map_size;       /* LMDB map; Redis maxmemory (0: unlimited) */
	uint64_t used_bytes;     /* LMDB pages in use; Redis used_memory     */
	uint64_t entries;        /* LMDB entries; Redis DBSIZE               */
};
int counter_stats(struct counter_store *cs, struct counter_stats *st,
    struct error *err);

#endif
