/*
 * counter_lmdb.c - the shared counter table on LMDB (see counter.h), the
 * embedded default backend (counters.backend: lmdb).
 *
 * Reached through counter.c's dispatch (counter_backend.h), which has
 * already checked every argument.  Used by every elemta-policyd worker
 * (rate limits, failed-auth counts, reputation, metrics: one environment
 * opened after fork) and by elemta-stat (read-only, while the workers
 * write).  This file is the only one that touches LMDB; it owns the key
 * layout and the transactions.
 *
 * ==== Exactness: the algorithm and its bound ====
 * A rate key holds a sliding log: a header with the high-water mark H
 * (the newest timestamp ever recorded, kept when a hit is withdrawn), then
 * the timestamps t1 <= t2 <= ... <= tn (ms, realtime) of its accepted
 * events.  counter_rate_hit(key, N, P) runs inside one LMDB write
 * transaction, and LMDB admits one writer at a time across every process
 * of the environment, so the check and the append are one atomic step:
 *     now := max(clock, H)           (a clock stepping back keeps the log
 *                                     ordered; windows freeze, never widen)
 *     drop every ti <= now - P       (the window is (now - P, now])
 *     k   := timestamps left
 *     k < N  -> append now, accept
 *     k >= N -> refuse, record nothing;
 *               retry_ms = t[k-N+1] + P - now (the oldest when k == N), >= 1
 * Bound: take any window (a, a + P] and the events e1..em accepted in it,
 * em last, at time t.  When em was accepted, e1..em-1 had timestamps in
 * (a, t] within (t - P, t], so they were all still in the log and m - 1 < N.
 * Hence NEVER MORE THAN N ACCEPTED EVENTS IN ANY WINDOW OF P ms, across all
 * workers (one writer at a time) and restarts (the log is on disk).  The
 * decision depends only on the key's own accepted events, and refused
 * events are never appended (a decision that ends refused withdraws the
 * events it appended before it commits), so a client with fewer than N
 * accepted events in the window is never refused - one steadily under 90%
 * of the limit never is.  Pruning is exact: an entry <= now - P can never
 * re-enter a window because now never goes below H.  Windows are measured
 * on the realtime clock: a forward step of the system clock ends windows
 * early; a backward step is absorbed by H while the key exists (a key that
 * was swept or reset starts afresh).  Cost: a log holds
 * at most N timestamps of 8 bytes and a hit rewrites it, so logs serve
 * limits up to RATE_LOG_MAX (8 KB); larger limits keep per-bucket counts
 * with the same bound (see "bucketed windows" below).
 * A key must always be used with the same period (callers namespace keys).
 *
 * ==== Durability ====
 * The environment runs with MDB_NOMETASYNC: each commit fdatasync()s the
 * data pages it wrote, and the meta page that makes the commit current is
 * written without a flush (it reaches the disk with the next commit's flush
 * or the kernel's writeback).  A crashed process loses nothing (its writes
 * are in the page cache).  A power loss may undo the last committed
 * transaction(s) - a few counter events, which is acceptable - but cannot
 * corrupt the table: every page a meta page refers to was flushed before
 * that meta page was written.  MDB_NOSYNC was rejected: LMDB 0.9 may then
 * reuse pages that the last durable meta page still refers to, so a power
 * loss can leave a corrupt table.  Price: one fdatasync per write
 * transaction, and the writer lock is held through it; batches (group
 * commit, below) make that one flush per batch of decisions rather than
 * per decision.  Refusals and read-only decisions write nothing and cost
 * no flush.
 *
 * counters.sync: fast opens the environment with MDB_WRITEMAP | MDB_NOSYNC:
 * commits write into the shared mapping (no pwrite per page, no flush) and
 * counter_flush() msyncs about once a second.  A crashed process still
 * loses nothing (the mapping is the page cache).  A system crash can leave
 * the table inconsistent, which is why counter_store_prepare() discards a
 * table that was open when the machine went down.
 *
 * ==== Transactions ====
 * Between counter_decision_begin() and counter_decision_end() the first
 * write opens one write transaction and later calls reuse it (reads use it
 * too once it is open, else a short read transaction): one policy decision
 * is at most one write transaction, and the LMDB writer lock is held until
 * the decision ends, so callers keep decisions short.  Outside a decision
 * every write call is its own transaction.  A decision remembers up to
 * COUNTER_DECISION_HITS rate hits (key and timestamp) to withdraw them.
 * Inside a batch (counter_batch_begin/end) the write transaction outlives
 * the decisions: each decision runs in it, a refused one withdraws its
 * hits from it, and counter_batch_end() commits it.  Any failure aborts the
 * transaction, so the whole batch is lost and reported so; later calls in
 * the same batch fail at once.  (Nested transactions would confine a
 * failure to one decision, but MDB_WRITEMAP does not support them, and a
 * failure - a full map - hits the whole batch anyway.)
 *
 * ==== Full map ====
 * On MDB_MAP_FULL the transaction is aborted; then: adopt a larger map
 * another process already set (up to the cap), else sweep stale rate
 * entries once, else double the map (up to the cap, 16x the configured
 * size; logged with log_warn) and retry.  LMDB copies pages even to delete,
 * so a completely full map cannot be swept: the full-map sweep alone runs
 * with the map at a hard ceiling of the cap plus 1/16, then the map is set
 * back (LMDB keeps it at least as large as the data).  So a table full of
 * live entries recovers by itself once they expire, and the file never
 * exceeds the hard ceiling.  Auto-commit calls retry inside this file; in a
 * decision the decision's writes are lost and the call fails (the caller
 * tempfails).  "counter table full" is reported only when nothing could be
 * swept and the map cannot grow.  Never a crash, never a silent allow:
 * counter_rate_hit reports allowed = false on every error.
 * MDB_MAP_RESIZED (another process grew the map) is handled by adopting the
 * new size and beginning the transaction again.  Callers should still call
 * counter_sweep() regularly so stale entries never cause growth.
 *
 * ==== Values (host byte order; the table is local to one machine) ====
 *   "rate"   struct rate_hdr, then count uint64 timestamps, ascending
 *            (count may be 0 after a withdrawal: the header keeps H);
 *            limit 0 marks a failure-event log (counter_event_add)
 *   "rep"    struct rep_value {double score; uint64 updated_ms}
 *   "metric" uint64
 *   "grey"   struct grey_value {uint64 first_ms, last_ms, expires_ms;
 *            uint32 count, 0}: a triplet (count = times passed, 0 while
 *            greylisted) or a client network (count = passes counted)
 * Keys are caller text, 1..COUNTER_KEY_MAX bytes, stored without the NUL.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "counter.h"
#include "counter_backend.h"
#include "log.h"

#define RATE_MAGIC 0x52544c45u          /* "ELTR" */
#define RATE_VERSION 1
#define COUNTER_DECISION_HITS 32        /* rate hits one decision can undo */
#define COUNTER_GROW_FACTOR 16          /* map may grow to 16x configured  */
#define COUNTER_FULL_SWEEP 4096         /* keys swept when the map is full */
#define COUNTER_WRITE_ATTEMPTS 10
#define FULL_SWEEP_PAUSE_MS 1000        /* a fruitless full sweep rests   */
#define FULL_LOG_PAUSE_MS 60000         /* "table full" logged this often */
#define FULL_SWEEP_METRIC "elemta_counter_full_sweeps_total"
#define KEY_ESC_MAX 160                 /* escaped key length in messages  */
#define MAP_DEFAULT (64ULL << 20)       /* map_size 0: the config default   */
#define MAP_MIN (64ULL << 10)           /* smaller maps are raised to this  */

/* Returned by an operation that already filled err (not an LMDB error). */
#define OP_ERR (-1)

struct rate_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t reserved;
	uint32_t limit;         /* last limit used; 0 = event log */
	uint32_t count;         /* timestamps that follow (may be 0) */
	uint64_t period_ms;
	uint64_t high_ms;       /* newest timestamp ever recorded */
};

struct rep_value {
	double score;
	uint64_t updated_ms;
};

/* A greylisting record (counter.h): a triplet's or a client's. */
struct grey_value {
	uint64_t first_ms;
	uint64_t last_ms;
	uint64_t expires_ms;
	uint32_t count;
	uint32_t reserved;
};

struct decision_hit {
	char key[COUNTER_KEY_MAX + 1];
	size_t klen;
	uint64_t ts;
};

struct lmdb_store {
	struct counter_store base;      /* first: counter.c's view */
	MDB_env *env;
	MDB_dbi dbi[COUNTER_KIND_COUNT];
	char *dir;
	bool readonly;
	bool broken;            /* a remap failed: the env must not be used */
	pid_t pid;              /* LMDB handles never cross a fork */
	uint64_t map_cap;       /* growth stops here: 16x the configured map */

	MDB_txn *rtxn;          /* cached read transaction, reset when idle */

	bool in_batch;
	bool batch_failed;      /* its transaction was aborted */
	bool in_decision;
	bool decision_failed;
	MDB_txn *wtxn;          /* the decision's (or batch's) transaction */
	struct error decision_err;
	size_t nhits;
	struct decision_hit hits[COUNTER_DECISION_HITS];

	bool busy;              /* inside counter_visit's callback */

	uint64_t *ts;           /* scratch copy of one log */
	size_t ts_cap;

	/* where the last sweep of each kind stopped (rate, grey) */
	char sweep_key[COUNTER_KIND_COUNT][COUNTER_KEY_MAX + 1];
	size_t sweep_len[COUNTER_KIND_COUNT];
	bool missing[COUNTER_KIND_COUNT]; /* read-only: a table from before
	                                   * the kind existed (empty)      */

	enum counter_sync sync;  /* durability mode                          */
	uint64_t flushed_ms;     /* FAST mode: last mdb_env_sync             */

	uint64_t full_swept_ms;  /* last fruitless full-map sweep */
	uint64_t full_logged_ms; /* last "counter table full" logged */
	bool at_cap;             /* full at the growth cap: reported (once a
	                          * minute) until a write commits again */
};

typedef int (*store_op)(struct lmdb_store *cs, MDB_txn *txn, void *arg,
    struct error *err);

static const struct counter_backend lmdb_backend;

/* lmdb_of - the LMDB store behind counter.c's handle. */
static struct lmdb_store *
lmdb_of(struct counter_store *base)
{
	return (struct lmdb_store *)base;
}

struct sweep_arg {
	size_t max_keys;
	long deleted;
};

struct metric_arg {
	const char *name;
	size_t nlen;
	uint64_t delta;
};

/* ==== small helpers ==== */

/* key_escape - key made safe for an error text or a log line. */
static const char *
key_escape(char *buf, size_t size, const char *key, size_t klen)
{
	return log_escape(buf, size, key, klen);
}

/* lmdb_error - one error text for a failed LMDB call. */
static int
lmdb_error(struct error *err, const char *what, int rc)
{
	return error_set(err, "counter table: %s: %s", what, mdb_strerror(rc));
}

/* mkval - an MDB_val over caller bytes. */
static MDB_val
mkval(const void *p, size_t n)
{
	MDB_val v;

	v.mv_data = (void *)p;
	v.mv_size = n;
	return v;
}

/* ts_reserve - make the scratch log hold n timestamps. */
static uint64_t *
ts_reserve(struct lmdb_store *cs, size_t n)
{
	if (n > cs->ts_cap) {
		size_t cap = cs->ts_cap ? cs->ts_cap : 64;

		while (cap < n)
			cap *= 2;
		cs->ts = xrealloc(cs->ts, cap * sizeof(*cs->ts));
		cs->ts_cap = cap;
	}
	return cs->ts;
}

/* window_cutoff - timestamps <= the result have left (now - P, now]. */
static uint64_t
window_cutoff(uint64_t now, uint64_t period_ms)
{
	return now > period_ms ? now - period_ms : 0;
}

/* first_after - index of the first ts[i] > cutoff in an ascending log. */
static size_t
first_after(const uint64_t *ts, size_t n, uint64_t cutoff)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ts[mid] <= cutoff)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* decay - move score toward neutral for elapsed ms with half-life h (s). */
static double
decay(double score, uint64_t elapsed_ms, double half_life_s)
{
	double f = exp2(-((double)elapsed_ms / 1000.0) / half_life_s);

	return COUNTER_REP_NEUTRAL + (score - COUNTER_REP_NEUTRAL) * f;
}

/* paused - true while less than pause_ms passed since *last (0: never);
 * a clock that stepped back ends the pause. */
static bool
paused(uint64_t now, uint64_t last, uint64_t pause_ms)
{
	return last != 0 && now >= last && now - last < pause_ms;
}

/* clamp_score - keep a score in 0..100. */
static double
clamp_score(double s)
{
	return s < 0.0 ? 0.0 : s > 100.0 ? 100.0 : s;
}

/* ==== value codecs ==== */

/* rate_malformed - the error of a rate value that cannot be decoded. */
static int
rate_malformed(const char *key, size_t klen, struct error *err)
{
	char ek[KEY_ESC_MAX];

	error_set(err, "counter table: malformed rate entry \"%s\" (reset it)",
	    key_escape(ek, sizeof(ek), key, klen));
	return OP_ERR;
}

/* rate_fetch - key's rate value, looked up once per operation: *version
 * is 0 (and v empty) when absent, else the header's version, which
 * chooses the decoder (rate_load for logs, ring_load for rings).  The
 * value points into the map: decode it before the next write. */
static int
rate_fetch(struct lmdb_store *cs, MDB_txn *txn, const char *key,
    size_t klen, MDB_val *v, int *version)
{
	MDB_val k = mkval(key, klen);
	struct rate_hdr hdr;
	int rc;

	*version = 0;
	rc = mdb_get(txn, cs->dbi[COUNTER_KIND_RATE], &k, v);
	if (rc == MDB_NOTFOUND) {
		v->mv_data = NULL;
		v->mv_size = 0;
		return 0;
	}
	if (rc != 0)
		return rc;
	if (v->mv_size >= sizeof(hdr)) {
		memcpy(&hdr, v->mv_data, sizeof(hdr));
		*version = hdr.version;
	}
	return 0;
}

/* log_header_ok - v is a well-formed log value: *hdr read from it, magic,
 * version, and a size matching its count (at most COUNTER_LIMIT_MAX).
 * The one test of a log's shape (rate_load, the sweep, elemta-stat). */
static bool
log_header_ok(const MDB_val *v, struct rate_hdr *hdr)
{
	if (v->mv_size < sizeof(*hdr))
		return false;
	memcpy(hdr, v->mv_data, sizeof(*hdr));
	return hdr->magic == RATE_MAGIC && hdr->version == RATE_VERSION &&
	    hdr->count <= COUNTER_LIMIT_MAX &&
	    v->mv_size == sizeof(*hdr) + (size_t)hdr->count * sizeof(uint64_t);
}

/* rate_load - copy the log in v (from rate_fetch; empty when absent) into
 * cs->ts (room for one more).  Returns 0 or OP_ERR for a malformed value. */
static int
rate_load(struct lmdb_store *cs, const MDB_val *v, const char *key,
    size_t klen, struct rate_hdr *hdr, size_t *n, struct error *err)
{
	const unsigned char *p;
	uint64_t *ts;
	size_t i;

	memset(hdr, 0, sizeof(*hdr));
	*n = 0;
	if (v->mv_data == NULL) {
		ts_reserve(cs, 1);
		return 0;
	}
	if (!log_header_ok(v, hdr))
		return rate_malformed(key, klen, err);
	ts = ts_reserve(cs, (size_t)hdr->count + 1);
	p = (const unsigned char *)v->mv_data + sizeof(*hdr);
	memcpy(ts, p, (size_t)hdr->count * sizeof(uint64_t));
	for (i = 1; i < hdr->count; i++)
		if (ts[i] < ts[i - 1])
			return rate_malformed(key, klen, err);
	if (hdr->count > 0 && ts[hdr->count - 1] > hdr->high_ms)
		return rate_malformed(key, klen, err);
	*n = hdr->count;
	return 0;
}

/* rate_store - write n timestamps ts as key's log.  An empty log is kept
 * for its high-water mark (a withdrawn hit); the sweep removes it. */
static int
rate_store(struct lmdb_store *cs, MDB_txn *txn, const char *key,
    size_t klen, uint32_t limit, uint64_t period_ms, uint64_t high_ms,
    const uint64_t *ts, size_t n)
{
	MDB_val k = mkval(key, klen), v;
	struct rate_hdr hdr;
	int rc;

	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = RATE_MAGIC;
	hdr.version = RATE_VERSION;
	hdr.limit = limit;
	hdr.count = (uint32_t)n;
	hdr.period_ms = period_ms;
	hdr.high_ms = high_ms;
	v.mv_data = NULL;
	v.mv_size = sizeof(hdr) + n * sizeof(uint64_t);
	/* MDB_RESERVE: LMDB hands out the space and we fill it; ts lives in
	 * scratch memory, never in the map, so the put cannot move it. */
	rc = mdb_put(txn, cs->dbi[COUNTER_KIND_RATE], &k, &v, MDB_RESERVE);
	if (rc != 0)
		return rc;
	memcpy(v.mv_data, &hdr, sizeof(hdr));
	memcpy((unsigned char *)v.mv_data + sizeof(hdr), ts,
	    n * sizeof(uint64_t));
	return 0;
}

/* ==== bucketed windows (limits above RATE_LOG_MAX) ==== */

/* A log of N timestamps is rewritten whole on every accepted hit, which
 * at N = 100,000 is 800 KB per hit.  Above RATE_LOG_MAX a key keeps
 * counts per time bucket instead: width w = ceil(P / RATE_BUCKETS), a
 * ring of RATE_RING buckets numbered floor(t / w), newest last.
 *     now := max(clock, H)
 *     C   := sum of the buckets floor((now - P) / w) .. floor(now / w)
 *     C < N  -> count now in its bucket, accept;  C >= N -> refuse
 * C counts every accepted event in (now - P, now] (the ring holds
 * RATE_BUCKETS + 2 >= P / w + 2 buckets, so none of them was recycled),
 * plus perhaps some of the oldest bucket's events that already left.  So
 * the bound of the log holds unchanged - NEVER MORE THAN N ACCEPTED IN ANY
 * WINDOW OF P - by the same argument (at the last accepted event of any
 * window, the others were all counted in C < N).  The price is that C
 * may exceed the true count by the events of one bucket: a client sending
 * steadily at a rate r <= 0.9 N / P has at most r (P + w) + 1 <= 0.9 N
 * (1 + 1/RATE_BUCKETS) + 1 < 0.93 N + 1 < N events in C (N > RATE_LOG_MAX),
 * so a client steadily under 90% of the limit is still never refused.
 * Cost per hit: one fixed-size value of RATE_RING counters.
 * Withdrawal decrements the withdrawn hit's bucket (exact); retry_ms is
 * when enough of the oldest buckets will have left C to go below N. */

#define RATE_LOG_MAX 1024               /* exact logs up to this limit     */
#define RATE_VERSION_BUCKETS 2
#define RATE_BUCKETS 32
#define RATE_RING (RATE_BUCKETS + 2)

struct rate_ring {
	uint64_t newest;                /* bucket number of the newest slot */
	uint32_t n[RATE_RING];          /* events per bucket, by number % RING */
};

/* bucket_width - w for period P (>= 1 ms). */
static uint64_t
bucket_width(uint64_t period_ms)
{
	uint64_t w = (period_ms + RATE_BUCKETS - 1) / RATE_BUCKETS;

	return w > 0 ? w : 1;
}

/* ring_valid - a decoded bucket value is consistent. */
static bool
ring_valid(const struct rate_hdr *hdr, const struct rate_ring *r)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < RATE_RING; i++)
		sum += r->n[i];
	return hdr->magic == RATE_MAGIC &&
	    hdr->version == RATE_VERSION_BUCKETS && hdr->period_ms > 0 &&
	    sum == hdr->count &&
	    r->newest <= hdr->high_ms / bucket_width(hdr->period_ms);
}

/* ring_decode - a stored bucket value; false when malformed. */
static bool
ring_decode(const MDB_val *v, struct rate_hdr *hdr, struct rate_ring *r)
{
	if (v->mv_size != sizeof(*hdr) + sizeof(*r))
		return false;
	memcpy(hdr, v->mv_data, sizeof(*hdr));
	memcpy(r, (const unsigned char *)v->mv_data + sizeof(*hdr),
	    sizeof(*r));
	return ring_valid(hdr, r);
}

/* ring_load - decode the bucket value in v (from rate_fetch). */
static int
ring_load(const MDB_val *v, const char *key, size_t klen,
    struct rate_hdr *hdr, struct rate_ring *r, struct error *err)
{
	memset(hdr, 0, sizeof(*hdr));
	memset(r, 0, sizeof(*r));
	if (!ring_decode(v, hdr, r))
		return rate_malformed(key, klen, err);
	return 0;
}

/* ring_store - write key's bucket value. */
static int
ring_store(struct lmdb_store *cs, MDB_txn *txn, const char *key,
    size_t klen, uint32_t limit, uint64_t period_ms, uint64_t high_ms,
    const struct rate_ring *r)
{
	MDB_val k = mkval(key, klen), v;
	unsigned char buf[sizeof(struct rate_hdr) + sizeof(struct rate_ring)];
	struct rate_hdr hdr;
	uint64_t sum = 0;

	for (size_t i = 0; i < RATE_RING; i++)
		sum += r->n[i];
	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = RATE_MAGIC;
	hdr.version = RATE_VERSION_BUCKETS;
	hdr.limit = limit;
	hdr.count = (uint32_t)sum;
	hdr.period_ms = period_ms;
	hdr.high_ms = high_ms;
	memcpy(buf, &hdr, sizeof(hdr));
	memcpy(buf + sizeof(hdr), r, sizeof(*r));
	v = mkval(buf, sizeof(buf));
	return mdb_put(txn, cs->dbi[COUNTER_KIND_RATE], &k, &v, 0);
}

/* ring_advance - make bucket number bn the newest, emptying the buckets
 * that the ring reuses on the way. */
static void
ring_advance(struct rate_ring *r, uint64_t bn)
{
	uint64_t b;

	if (bn <= r->newest)
		return;
	if (bn - r->newest >= RATE_RING) {
		memset(r->n, 0, sizeof(r->n));
	} else {
		for (b = r->newest + 1; b <= bn; b++)
			r->n[b % RATE_RING] = 0;
	}
	r->newest = bn;
}

/* ring_first - the oldest bucket number (of width w) that C covers for
 * the window (now - period_ms, now]. */
static uint64_t
ring_first(const struct rate_ring *r, uint64_t now, uint64_t period_ms,
    uint64_t w)
{
	uint64_t first = window_cutoff(now, period_ms) / w;

	if (r->newest >= RATE_RING - 1 && first < r->newest - (RATE_RING - 1))
		first = r->newest - (RATE_RING - 1);
	return first;
}

/* ring_count - C for the window (now - period_ms, now] (r advanced to
 * now's bucket). */
static uint64_t
ring_count(const struct rate_ring *r, uint64_t now, uint64_t period_ms,
    uint64_t w)
{
	uint64_t sum = 0;

	for (uint64_t b = ring_first(r, now, period_ms, w); b <= r->newest;
	    b++)
		sum += r->n[b % RATE_RING];
	return sum;
}

/* ring_from_log - the ring equivalent of an exact log (a key whose limit
 * rose above RATE_LOG_MAX). */
static void
ring_from_log(struct rate_ring *r, const uint64_t *ts, size_t n,
    uint64_t high_ms, uint64_t period_ms)
{
	uint64_t w = bucket_width(period_ms);

	memset(r, 0, sizeof(*r));
	r->newest = high_ms / w;
	for (size_t i = 0; i < n; i++) {
		uint64_t b = ts[i] / w;

		if (b + RATE_RING > r->newest)
			r->n[b % RATE_RING]++;
	}
}

/* log_from_ring - an exact log for a ring (a key whose limit fell to
 * RATE_LOG_MAX or below): each bucket's events at the bucket's last
 * millisecond (never after H), i.e. as late as they can have been, so
 * they leave the window no earlier than they really do.  Returns n. */
static size_t
log_from_ring(struct lmdb_store *cs, const struct rate_hdr *hdr,
    const struct rate_ring *r, uint64_t now)
{
	uint64_t w = bucket_width(hdr->period_ms), first, b;
	size_t n = 0;

	/* Only C's buckets: C <= N <= COUNTER_LIMIT_MAX timestamps. */
	first = ring_first(r, now, hdr->period_ms, w);
	ts_reserve(cs, (size_t)hdr->count + 1);
	for (b = first; b <= r->newest; b++) {
		uint64_t t = (b + 1) * w - 1;

		if (t > hdr->high_ms)
			t = hdr->high_ms;
		for (uint32_t i = 0; i < r->n[b % RATE_RING]; i++)
			cs->ts[n++] = t;
	}
	return n;
}

/* rate_now - the clock for a key's window: never before its newest
 * event (a clock that stepped back must not reopen the window). */
static uint64_t
rate_now(const struct lmdb_store *cs, const struct rate_hdr *hdr)
{
	uint64_t now = counter_now_ms(&cs->base);

	return now > hdr->high_ms ? now : hdr->high_ms;
}

/* ring_window_count - the events a ring holds in the window of period
 * ending at now (its buckets advanced to now first), capped to 32 bits. */
static uint32_t
ring_window_count(struct rate_ring *r, uint64_t now, uint64_t period_ms,
    uint64_t bucket_period_ms)
{
	uint64_t w = bucket_width(bucket_period_ms), c;

	ring_advance(r, now / w);
	c = ring_count(r, now, period_ms, w);
	return c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
}

/* rate_load_log - the key's events as a log in cs->ts, a ring converted
 * (log_from_ring), for the operations that work on logs. */
static int
rate_load_log(struct lmdb_store *cs, const MDB_val *v, int version,
    const char *key, size_t klen, struct rate_hdr *hdr, size_t *n,
    struct error *err)
{
	struct rate_ring r;
	int rc;

	if (version != RATE_VERSION_BUCKETS)
		return rate_load(cs, v, key, klen, hdr, n, err);
	rc = ring_load(v, key, klen, hdr, &r, err);
	if (rc == 0)
		*n = log_from_ring(cs, hdr, &r, rate_now(cs, hdr));
	return rc;
}

/* rep_load - key's reputation record; found = false when absent. */
static int
rep_load(struct lmdb_store *cs, MDB_txn *txn, const char *key,
    size_t klen, struct rep_value *rv, bool *found)
{
	MDB_val k = mkval(key, klen), v;
	int rc;

	*found = false;
	rc = mdb_get(txn, cs->dbi[COUNTER_KIND_REP], &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (v.mv_size != sizeof(*rv))
		return 0;       /* unreadable: start again from neutral */
	memcpy(rv, v.mv_data, sizeof(*rv));
	if (!isfinite(rv->score))
		return 0;
	*found = true;
	return 0;
}

/* rep_current - the decayed score of a loaded record at now. */
static double
rep_current(const struct rep_value *rv, bool found, uint64_t now,
    double half_life_s)
{
	if (!found)
		return COUNTER_REP_NEUTRAL;
	return clamp_score(decay(rv->score,
	    now > rv->updated_ms ? now - rv->updated_ms : 0, half_life_s));
}

/* ==== environment and transactions ==== */

/* store_usable - refuse calls on a broken, forked or busy store. */
static int
store_usable(struct lmdb_store *cs, struct error *err)
{
	if (cs == NULL || cs->env == NULL)
		return error_set(err, "counter table not open");
	if (cs->broken)
		return error_set(err, "counter table at %s unusable after a "
		    "failed remap", cs->dir);
	if (cs->pid != getpid())
		return error_set(err, "counter table opened before fork; "
		    "open it in this process");
	if (cs->busy)
		return error_set(err, "counter table called from inside "
		    "counter_visit");
	return 0;
}

/* rtxn_release - drop the cached read transaction entirely. */
static void
rtxn_release(struct lmdb_store *cs)
{
	if (cs->rtxn != NULL) {
		mdb_txn_abort(cs->rtxn);
		cs->rtxn = NULL;
	}
}

/* map_size_now - this process's current map size. */
static uint64_t
map_size_now(struct lmdb_store *cs)
{
	MDB_envinfo info;

	if (mdb_env_info(cs->env, &info) != 0)
		return 0;
	return (uint64_t)info.me_mapsize;
}

/* map_set - remap to size (no transaction may be active); a failure
 * restores the old size, and failing that marks the store broken. */
static int
map_set(struct lmdb_store *cs, uint64_t size)
{
	uint64_t old = map_size_now(cs);
	int rc;

	rtxn_release(cs);
	rc = mdb_env_set_mapsize(cs->env, (size_t)size);
	if (rc != 0 && mdb_env_set_mapsize(cs->env, (size_t)old) != 0) {
		cs->broken = true;
		log_err("counter table at %s: remap failed: %s", cs->dir,
		    mdb_strerror(rc));
	}
	return rc;
}

/* map_adopt - take the map size another process persisted, never
 * shrinking ours and never beyond the cap (a persisted size above it comes
 * from a reserve sweep; LMDB still maps at least the data).  Returns 1
 * when the map grew, 0 when not, -1 on error. */
static int
map_adopt(struct lmdb_store *cs)
{
	uint64_t old = map_size_now(cs), now, want;

	if (map_set(cs, 0) != 0)
		return -1;
	now = map_size_now(cs);
	want = now;
	if (want > cs->map_cap)
		want = cs->map_cap;
	if (want < old)
		want = old;
	if (want != now && map_set(cs, want) != 0)
		return -1;
	return map_size_now(cs) > old ? 1 : 0;
}

/* wtxn_begin - begin a write transaction; adopts a map another process
 * grew (MDB_MAP_RESIZED) and begins again once. */
static int
wtxn_begin(struct lmdb_store *cs, MDB_txn **txn)
{
	int rc;

	/* The cached read transaction is always reset here (store_read parks
	 * it), so it holds no snapshot and this thread may write. */
	rc = mdb_txn_begin(cs->env, NULL, 0, txn);
	if (rc == MDB_MAP_RESIZED) {
		if (map_adopt(cs) < 0)
			return rc;
		rc = mdb_txn_begin(cs->env, NULL, 0, txn);
	}
	return rc;
}

/* rtxn_begin - (re)start the cached read transaction, adopting a grown
 * map once on MDB_MAP_RESIZED. */
static int
rtxn_begin(struct lmdb_store *cs)
{
	int rc, attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		if (cs->rtxn != NULL)
			rc = mdb_txn_renew(cs->rtxn);
		else
			rc = mdb_txn_begin(cs->env, NULL, MDB_RDONLY, &cs->rtxn);
		if (rc == 0)
			return 0;
		rtxn_release(cs);
		if (rc != MDB_MAP_RESIZED || map_adopt(cs) < 0)
			return rc;
	}
	return MDB_MAP_RESIZED;
}

/* rtxn_done - park the cached read transaction (keeps its reader slot). */
static void
rtxn_done(struct lmdb_store *cs)
{
	if (cs->rtxn != NULL)
		mdb_txn_reset(cs->rtxn);
}

/* txn_run - op in a transaction of its own, no recovery (used by the
 * recovery itself).  Returns 0, OP_ERR or an LMDB code. */
static int
txn_run(struct lmdb_store *cs, store_op op, void *arg, struct error *err)
{
	MDB_txn *txn;
	int rc;

	rc = wtxn_begin(cs, &txn);
	if (rc != 0)
		return rc;
	rc = op(cs, txn, arg, err);
	if (rc == 0)
		return mdb_txn_commit(txn);
	mdb_txn_abort(txn);
	return rc;
}

static int op_sweep(struct lmdb_store *cs, MDB_txn *txn, void *varg,
    struct error *err);
static int op_metric_add(struct lmdb_store *cs, MDB_txn *txn,
    void *varg, struct error *err);

/* sweep_reserved - the full-map sweep.  LMDB copies pages even to delete,
 * so it runs with the map at the hard ceiling (cap + 1/16), then sets the
 * map back (LMDB keeps it at least as large as the data).  Pages freed by
 * transaction T are reusable only from T+2 (the meta page of T-1 must stay
 * valid until T+1 commits), so one more small transaction - counting the
 * event in a metric - follows a fruitful sweep.  Returns the number
 * deleted, or -1. */
static long
sweep_reserved(struct lmdb_store *cs)
{
	struct sweep_arg a = { COUNTER_FULL_SWEEP, 0 };
	struct metric_arg m = { FULL_SWEEP_METRIC,
	    sizeof(FULL_SWEEP_METRIC) - 1, 1 };
	uint64_t base = map_size_now(cs), hard;
	int rc;

	hard = cs->map_cap + cs->map_cap / 16;
	if (base < hard && map_set(cs, hard) != 0)
		return -1;
	rc = txn_run(cs, op_sweep, &a, NULL);
	if (rc == 0 && a.deleted > 0)
		(void)txn_run(cs, op_metric_add, &m, NULL);
	if (base < hard && map_set(cs, base) != 0)
		return -1;
	return rc == 0 ? a.deleted : -1;
}

/* full_recover - after MDB_MAP_FULL (no transaction open): adopt a bigger
 * map, else sweep once, else grow.  0: retry; -1: full (err set). */
static int
full_recover(struct lmdb_store *cs, bool *swept, struct error *err)
{
	uint64_t old, grown;
	int r;

	r = map_adopt(cs);
	if (r < 0)
		return error_set(err, "counter table full (remap failed)");
	if (r > 0)
		return 0;
	/* A sweep that found nothing is not repeated for every call while
	 * the table stays full: that would scan thousands of keys per call. */
	if (!*swept && !paused(counter_now_ms(&cs->base), cs->full_swept_ms,
	    FULL_SWEEP_PAUSE_MS)) {
		long n;

		*swept = true;
		n = sweep_reserved(cs);
		if (n > 0) {
			cs->full_swept_ms = 0;
			log_warn("counter table at %s full: swept %ld stale "
			    "entries", cs->dir, n);
			return 0;
		}
		cs->full_swept_ms = counter_now_ms(&cs->base);
	}
	old = map_size_now(cs);
	if (old >= cs->map_cap) {
		if (!paused(counter_now_ms(&cs->base), cs->full_logged_ms,
		    FULL_LOG_PAUSE_MS)) {
			cs->full_logged_ms = counter_now_ms(&cs->base);
			log_err("counter table at %s full at %" PRIu64 " bytes "
			    "(limit %" PRIu64 "); refusing to record until "
			    "entries expire", cs->dir, old, cs->map_cap);
		}
		cs->at_cap = true;
		return error_set(err, "counter table full");
	}
	grown = old > cs->map_cap / 2 ? cs->map_cap : old * 2;
	if (map_set(cs, grown) != 0)
		return error_set(err, "counter table full (growth failed)");
	log_warn("counter table at %s full: map grown from %" PRIu64 " to %"
	    PRIu64 " bytes (limit %" PRIu64 ")", cs->dir, old,
	    map_size_now(cs), cs->map_cap);
	return 0;
}

/* decision_fail - abort the decision's transaction and remember why. */
static int
decision_fail(struct lmdb_store *cs, int rc, const char *what,
    struct error *err)
{
	struct error e;

	if (cs->wtxn != NULL) {
		mdb_txn_abort(cs->wtxn);
		cs->wtxn = NULL;
	}
	cs->nhits = 0;
	cs->decision_failed = true;
	cs->batch_failed = cs->in_batch;
	if (rc == MDB_MAP_FULL) {
		bool swept = false;

		if (full_recover(cs, &swept, &e) == 0)
			error_set(&e, "counter table was full (made room); this "
			    "decision's counters were dropped");
	} else {
		lmdb_error(&e, what, rc);
	}
	cs->decision_err = e;
	return error_set(err, "%s", e.text);
}

/* shared_txn - true when calls run in the decision's or the batch's
 * transaction rather than in one of their own. */
static bool
shared_txn(const struct lmdb_store *cs)
{
	return cs->in_decision || cs->in_batch;
}

/* shared_failed - the shared transaction was aborted: the reason. */
static bool
shared_failed(const struct lmdb_store *cs)
{
	return (cs->in_decision && cs->decision_failed) ||
	    (cs->in_batch && cs->batch_failed);
}

/* store_write - run op in the decision's (batch's) write transaction, or
 * in its own transaction (retried after a full map) outside them. */
static int
store_write(struct lmdb_store *cs, store_op op, void *arg,
    const char *what, struct error *err)
{
	bool swept = false;
	MDB_txn *txn;
	int rc, attempt;

	if (store_usable(cs, err) < 0)
		return -1;
	if (cs->readonly)
		return error_set(err, "counter table at %s is open read-only",
		    cs->dir);
	if (shared_txn(cs)) {
		if (shared_failed(cs))
			return error_set(err, "%s", cs->decision_err.text);
		if (cs->wtxn == NULL) {
			rc = wtxn_begin(cs, &cs->wtxn);
			if (rc != 0) {
				cs->wtxn = NULL;
				return decision_fail(cs, rc, "begin", err);
			}
		}
		rc = op(cs, cs->wtxn, arg, err);
		if (rc == 0)
			return 0;
		if (rc == OP_ERR)       /* refused before writing anything */
			return -1;
		return decision_fail(cs, rc, what, err);
	}
	for (attempt = 0; attempt < COUNTER_WRITE_ATTEMPTS; attempt++) {
		rc = wtxn_begin(cs, &txn);
		if (rc != 0)
			return lmdb_error(err, "begin", rc);
		rc = op(cs, txn, arg, err);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		if (rc == 0) {
			cs->at_cap = false;
			return 0;
		}
		if (rc == OP_ERR)
			return -1;
		if (rc != MDB_MAP_FULL)
			return lmdb_error(err, what, rc);
		if (full_recover(cs, &swept, err) < 0)
			return -1;
	}
	return error_set(err, "counter table full");
}

/* store_read - run op in the decision's transaction when one is open,
 * else in the cached read transaction. */
static int
store_read(struct lmdb_store *cs, store_op op, void *arg,
    const char *what, struct error *err)
{
	int rc;

	if (store_usable(cs, err) < 0)
		return -1;
	if (shared_failed(cs))
		return error_set(err, "%s", cs->decision_err.text);
	if (shared_txn(cs) && cs->wtxn != NULL) {
		rc = op(cs, cs->wtxn, arg, err);
		if (rc == 0)
			return 0;
		if (rc == OP_ERR)
			return -1;
		return decision_fail(cs, rc, what, err);
	}
	rc = rtxn_begin(cs);
	if (rc != 0)
		return lmdb_error(err, "begin read", rc);
	rc = op(cs, cs->rtxn, arg, err);
	rtxn_done(cs);
	if (rc == 0)
		return 0;
	if (rc == OP_ERR)
		return -1;
	return lmdb_error(err, what, rc);
}

/* open_fail - common exit of counter_store_open. */
static int
open_fail(struct lmdb_store *cs)
{
	if (cs->env != NULL)
		mdb_env_close(cs->env);
	free(cs->dir);
	free(cs);
	return -1;
}

/* counter_lmdb_open - open (creating when writable) the environment. */
int
counter_lmdb_open(const char *dir, uint64_t map_size, bool readonly,
    enum counter_sync sync, struct counter_store **out, struct error *err)
{
	struct lmdb_store *cs;
	char path[4096];
	struct stat st;
	MDB_txn *txn;
	unsigned flags;
	int rc, i, dead;

	*out = NULL;
	if (dir == NULL || *dir == '\0')
		return error_set(err, "counter table: no directory given");
	if ((size_t)snprintf(path, sizeof(path), "%s/data.mdb", dir) >=
	    sizeof(path))
		return error_set(err, "counter table: path too long");
	if (readonly) {
		if (stat(path, &st) != 0 || st.st_size == 0)
			return error_set(err, "no counter table at %s", dir);
	} else if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		return error_set(err, "cannot create counter directory %s: %s",
		    dir, strerror(errno));
	}

	cs = xcalloc(1, sizeof(*cs));
	cs->base.be = &lmdb_backend;
	cs->dir = xstrdup(dir);
	cs->readonly = readonly;
	cs->sync = readonly ? COUNTER_SYNC_SAFE : sync;
	cs->pid = getpid();
	if (map_size == 0)
		map_size = MAP_DEFAULT;
	if (map_size < MAP_MIN)
		map_size = MAP_MIN;
	map_size = (map_size + 4095) & ~(uint64_t)4095;
	cs->map_cap = map_size <= UINT64_MAX / COUNTER_GROW_FACTOR ?
	    map_size * COUNTER_GROW_FACTOR : UINT64_MAX;

	rc = mdb_env_create(&cs->env);
	if (rc != 0) {
		cs->env = NULL;
		lmdb_error(err, "create", rc);
		return open_fail(cs);
	}
	if ((rc = mdb_env_set_maxdbs(cs->env, COUNTER_KIND_COUNT + 1)) != 0 ||
	    (!readonly &&
	    (rc = mdb_env_set_mapsize(cs->env, (size_t)map_size)) != 0)) {
		lmdb_error(err, "configure", rc);
		return open_fail(cs);
	}
	if (readonly)
		flags = MDB_RDONLY;
	else if (cs->sync == COUNTER_SYNC_FAST)
		flags = MDB_WRITEMAP | MDB_NOSYNC;
	else
		flags = MDB_NOMETASYNC;
	rc = mdb_env_open(cs->env, dir, flags, 0600);
	if (rc != 0) {
		if (readonly && (rc == ENOENT || rc == MDB_INVALID))
			error_set(err, "no counter table at %s", dir);
		else
			error_set(err, "cannot open counter table at %s: %s",
			    dir, mdb_strerror(rc));
		return open_fail(cs);
	}
	if (mdb_env_get_maxkeysize(cs->env) < COUNTER_KEY_MAX) {
		error_set(err, "counter table: LMDB keys limited to %d bytes",
		    mdb_env_get_maxkeysize(cs->env));
		return open_fail(cs);
	}
	/* Readers left behind by crashed workers would pin old pages. */
	(void)mdb_reader_check(cs->env, &dead);
	if (!readonly) {
		/* Keep a map another process (or an earlier run) grew. */
		if (map_adopt(cs) < 0) {
			error_set(err, "cannot open counter table at %s: "
			    "remap failed", dir);
			return open_fail(cs);
		}
	}

	rc = mdb_txn_begin(cs->env, NULL, readonly ? MDB_RDONLY : 0, &txn);
	if (rc != 0) {
		error_set(err, "cannot open counter table at %s: %s", dir,
		    mdb_strerror(rc));
		return open_fail(cs);
	}
	for (i = 0; i < COUNTER_KIND_COUNT; i++) {
		rc = mdb_dbi_open(txn, counter_kind_names[i],
		    readonly ? 0 : MDB_CREATE, &cs->dbi[i]);
		/* A table written before this kind existed: empty. */
		if (rc == MDB_NOTFOUND && readonly && i > 0) {
			cs->missing[i] = true;
			rc = 0;
			continue;
		}
		if (rc != 0)
			break;
	}
	if (rc == 0)
		rc = mdb_txn_commit(txn);   /* keeps the handles open */
	else
		mdb_txn_abort(txn);
	if (rc != 0) {
		if (readonly && rc == MDB_NOTFOUND)
			error_set(err, "no counter table at %s", dir);
		else
			error_set(err, "cannot open counter table at %s: %s",
			    dir, mdb_strerror(rc));
		return open_fail(cs);
	}
	*out = &cs->base;
	return 0;
}

/* lmdb_close - commit a pending decision (as accepted: keeping events
 * can only make limits stricter) and close. */
static void
lmdb_close(struct counter_store *base)
{
	struct lmdb_store *cs = lmdb_of(base);

	if (cs->env != NULL && cs->pid == getpid()) {
		if (cs->wtxn != NULL) {
			log_warn("counter table at %s closed inside a decision; "
			    "committing it", cs->dir);
			if (mdb_txn_commit(cs->wtxn) != 0)
				log_err("counter table at %s: final commit "
				    "failed", cs->dir);
			cs->wtxn = NULL;
		}
		rtxn_release(cs);
		mdb_env_close(cs->env);
	}
	free(cs->ts);
	free(cs->dir);
	free(cs);
}

/* ==== decisions ==== */

static int lmdb_decision_end(struct counter_store *base, bool accepted,
    struct error *err);

/* lmdb_decision_begin - start a decision; its first write opens the one
 * write transaction. */
static void
lmdb_decision_begin(struct counter_store *base)
{
	struct lmdb_store *cs = lmdb_of(base);

	if (cs->in_decision) {
		struct error e;

		log_err("counter table: decision begun twice; committing the "
		    "previous one");
		(void)lmdb_decision_end(base, true, &e);
	}
	cs->in_decision = true;
	cs->decision_failed = false;
	cs->nhits = 0;
}

/* withdraw_one - remove one occurrence of ts from key's log. */
static int
withdraw_one(struct lmdb_store *cs, MDB_txn *txn,
    const struct decision_hit *h, struct error *err)
{
	struct rate_hdr hdr;
	MDB_val v;
	size_t n, i;
	int rc, version;

	rc = rate_fetch(cs, txn, h->key, h->klen, &v, &version);
	if (rc != 0)
		return rc;
	if (version == RATE_VERSION_BUCKETS) {
		struct rate_ring r;
		uint64_t b;

		rc = ring_load(&v, h->key, h->klen, &hdr, &r, err);
		if (rc != 0)
			return rc;
		b = h->ts / bucket_width(hdr.period_ms);
		if (b > r.newest || b + RATE_RING <= r.newest ||
		    r.n[b % RATE_RING] == 0)
			return 0;       /* reset, swept or recycled meanwhile */
		r.n[b % RATE_RING]--;
		return ring_store(cs, txn, h->key, h->klen, hdr.limit,
		    hdr.period_ms, hdr.high_ms, &r);
	}
	rc = rate_load(cs, &v, h->key, h->klen, &hdr, &n, err);
	if (rc != 0)
		return rc;
	for (i = n; i > 0; i--)
		if (cs->ts[i - 1] == h->ts)
			break;
	if (i == 0)
		return 0;       /* reset or swept within the decision */
	memmove(&cs->ts[i - 1], &cs->ts[i], (n - i) * sizeof(uint64_t));
	return rate_store(cs, txn, h->key, h->klen, hdr.limit, hdr.period_ms,
	    hdr.high_ms, cs->ts, n - 1);
}

/* commit_shared - commit the decision's or batch's transaction; a full
 * map makes room for the next one. */
static int
commit_shared(struct lmdb_store *cs, MDB_txn *txn, const char *what,
    struct error *err)
{
	int rc = mdb_txn_commit(txn);

	if (rc == 0) {
		cs->at_cap = false;
		return 0;
	}
	if (rc == MDB_MAP_FULL) {
		bool swept = false;

		if (full_recover(cs, &swept, err) < 0)
			return -1;
		return error_set(err, "counter table was full (made room); "
		    "%s's counters were dropped", what);
	}
	return lmdb_error(err, "commit", rc);
}

/* lmdb_decision_end - withdraw this decision's rate hits if it was
 * refused, then commit (inside a batch: leave that to the batch). */
static int
lmdb_decision_end(struct counter_store *base, bool accepted,
    struct error *err)
{
	struct lmdb_store *cs = lmdb_of(base);
	struct error e;
	MDB_txn *txn;
	size_t i;
	int rc = 0;

	if (!cs->in_decision)
		return 0;
	cs->in_decision = false;
	if (cs->decision_failed || (cs->in_batch && cs->batch_failed)) {
		cs->decision_failed = false;
		cs->nhits = 0;
		return error_set(err, "%s", cs->decision_err.text);
	}
	txn = cs->wtxn;
	for (i = cs->nhits; !accepted && txn != NULL && i > 0 && rc == 0; i--) {
		rc = withdraw_one(cs, txn, &cs->hits[i - 1], &e);
		if (rc == OP_ERR) {
			log_warn("%s", e.text);   /* keep the other withdrawals */
			rc = 0;
		}
	}
	cs->nhits = 0;
	if (rc != 0) {
		(void)decision_fail(cs, rc, "withdraw", err);
		cs->decision_failed = false;    /* the decision is over */
		return -1;
	}
	if (cs->in_batch || txn == NULL)
		return 0;
	cs->wtxn = NULL;
	return commit_shared(cs, txn, "this decision", err);
}

/* lmdb_batch_begin - decisions share one transaction until batch_end. */
static void
lmdb_batch_begin(struct counter_store *base)
{
	struct lmdb_store *cs = lmdb_of(base);

	if (cs->in_decision || cs->in_batch) {
		log_err("counter table: batch begun inside a decision or "
		    "batch; ignored");
		return;
	}
	cs->in_batch = true;
	cs->batch_failed = false;
}

/* lmdb_batches - group commits pay where a commit costs an fdatasync
 * (counters.sync safe).  In fast mode a commit makes no system call: a
 * batch would only hold replies and the writer lock across the turn
 * (measured: 2 workers, policy_load fast, 71-78k req/s batched, 83-98k
 * not). */
static bool
lmdb_batches(const struct counter_store *base)
{
	return ((const struct lmdb_store *)base)->sync == COUNTER_SYNC_SAFE;
}

/* lmdb_batch_failed - a decision aborted the batch's transaction. */
static bool
lmdb_batch_failed(const struct counter_store *base)
{
	const struct lmdb_store *cs = (const struct lmdb_store *)base;

	return cs->in_batch && cs->batch_failed;
}

/* lmdb_batch_end - commit the batch's transaction. */
static int
lmdb_batch_end(struct counter_store *base, struct error *err)
{
	struct lmdb_store *cs = lmdb_of(base);
	MDB_txn *txn;

	if (!cs->in_batch)
		return 0;
	if (cs->in_decision) {
		struct error e;

		log_err("counter table: batch ended inside a decision; "
		    "ending the decision as accepted");
		(void)lmdb_decision_end(base, true, &e);
	}
	txn = cs->wtxn;         /* the batch's (NULL if a failure aborted it) */
	cs->in_batch = false;
	cs->wtxn = NULL;
	if (cs->batch_failed) {
		cs->batch_failed = false;
		return error_set(err, "%s", cs->decision_err.text);
	}
	if (txn == NULL)
		return 0;
	return commit_shared(cs, txn, "this batch", err);
}

/* ==== rate logs ==== */

struct rate_arg {
	const char *key;
	size_t klen;
	uint32_t limit;         /* rate hit: limit; event add: keep */
	uint64_t period_ms;
	struct counter_rate_result *res;
	uint32_t *count;
};

/* decision_remember - an accepted hit, to withdraw if the decision ends
 * refused. */
static void
decision_remember(struct lmdb_store *cs, const struct rate_arg *a,
    uint64_t ts)
{
	struct decision_hit *h;

	if (!cs->in_decision)
		return;
	h = &cs->hits[cs->nhits++];
	memcpy(h->key, a->key, a->klen);
	h->key[a->klen] = '\0';
	h->klen = a->klen;
	h->ts = ts;
}

/* decision_full - true (err set) when this decision cannot remember one
 * more hit. */
static bool
decision_full(struct lmdb_store *cs, struct error *err)
{
	if (!cs->in_decision || cs->nhits < COUNTER_DECISION_HITS)
		return false;
	error_set(err, "counter table: more than %d rate checks in one "
	    "decision", COUNTER_DECISION_HITS);
	return true;
}

/* op_rate_hit_ring - the bucketed check-and-record (limits above
 * RATE_LOG_MAX; see "bucketed windows").  A key still holding a log, or a
 * ring of another period, is converted first. */
static int
op_rate_hit_ring(struct lmdb_store *cs, MDB_txn *txn, struct rate_arg *a,
    const MDB_val *v, int version, struct error *err)
{
	struct counter_rate_result *res = a->res;
	uint64_t w = bucket_width(a->period_ms), now, c;
	struct rate_hdr hdr;
	struct rate_ring r;
	size_t n;
	int rc;

	if (version == RATE_VERSION_BUCKETS) {
		rc = ring_load(v, a->key, a->klen, &hdr, &r, err);
		if (rc != 0)
			return rc;
		if (hdr.period_ms != a->period_ms) {
			n = log_from_ring(cs, &hdr, &r, rate_now(cs, &hdr));
			ring_from_log(&r, cs->ts, n, hdr.high_ms, a->period_ms);
		}
	} else {
		rc = rate_load(cs, v, a->key, a->klen, &hdr, &n, err);
		if (rc != 0)
			return rc;
		ring_from_log(&r, cs->ts, n, hdr.high_ms, a->period_ms);
	}
	now = rate_now(cs, &hdr);
	c = ring_window_count(&r, now, a->period_ms, a->period_ms);
	if (c >= a->limit) {
		uint64_t need = c - a->limit + 1, gone = 0, b, leave;

		for (b = ring_first(&r, now, a->period_ms, w); b < r.newest; b++) {
			gone += r.n[b % RATE_RING];
			if (gone >= need)
				break;
		}
		leave = (b + 1) * w + a->period_ms;
		res->allowed = false;
		res->count = (uint32_t)c;     /* capped by ring_window_count */
		res->retry_ms = leave > now ? leave - now : 1;
		return 0;
	}
	if (decision_full(cs, err))
		return OP_ERR;
	r.n[r.newest % RATE_RING]++;
	rc = ring_store(cs, txn, a->key, a->klen, a->limit, a->period_ms, now,
	    &r);
	if (rc != 0)
		return rc;
	decision_remember(cs, a, now);
	res->allowed = true;
	res->count = (uint32_t)(c + 1);
	res->retry_ms = 0;
	return 0;
}

/* op_rate_hit - the exact check-and-record (see the file comment). */
static int
op_rate_hit(struct lmdb_store *cs, MDB_txn *txn, void *varg,
    struct error *err)
{
	struct rate_arg *a = varg;
	struct counter_rate_result *res = a->res;
	struct rate_hdr hdr;
	MDB_val v;
	size_t n, first, k;
	uint64_t now;
	int rc, version;

	rc = rate_fetch(cs, txn, a->key, a->klen, &v, &version);
	if (rc != 0)
		return rc;
	if (a->limit > RATE_LOG_MAX)
		return op_rate_hit_ring(cs, txn, a, &v, version, err);
	/* A ring whose limit fell to a log's size becomes a log. */
	rc = rate_load_log(cs, &v, version, a->key, a->klen, &hdr, &n, err);
	if (rc != 0)
		return rc;
	now = rate_now(cs, &hdr);
	first = first_after(cs->ts, n, window_cutoff(now, a->period_ms));
	k = n - first;
	if (k >= a->limit) {
		uint64_t expire = cs->ts[first + (k - a->limit)] + a->period_ms;

		res->allowed = false;
		res->count = (uint32_t)k;
		res->retry_ms = expire > now ? expire - now : 1;
		return 0;
	}
	if (decision_full(cs, err))
		return OP_ERR;
	cs->ts[n] = now;
	rc = rate_store(cs, txn, a->key, a->klen, a->limit, a->period_ms, now,
	    cs->ts + first, k + 1);
	if (rc != 0)
		return rc;
	decision_remember(cs, a, now);
	res->allowed = true;
	res->count = (uint32_t)(k + 1);
	res->retry_ms = 0;
	return 0;
}

/* lmdb_rate_hit - accept and record one event if fewer than limit lie
 * in the window; allowed is false on every error. */
static int
lmdb_rate_hit(struct counter_store *base, const char *key, size_t klen,
    uint32_t limit, uint64_t period_ms, struct counter_rate_result *res,
    struct error *err)
{
	struct lmdb_store *cs = lmdb_of(base);
	struct rate_arg a;

	memset(&a, 0, sizeof(a));
	a.key = key;
	a.klen = klen;
	a.limit = limit;
	a.period_ms = period_ms;
	a.res = res;
	if (store_write(cs, op_rate_hit, &a, "rate hit", err) < 0) {
		memset(res, 0, sizeof(*res));
		return -1;
	}
	return 0;
}

/* op_event_add - append now, prune the window, keep the newest a->limit. */
static int
op_event_add(struct lmdb_store *cs, MDB_txn *txn, void *varg,
    struct error *err)
{
	struct rate_arg *a = varg;
	struct rate_hdr hdr;
	MDB_val v;
	size_t n, first, k;
	uint64_t now;
	int rc, version;

	/* A key a rate limit above RATE_LOG_MAX made a ring (plugins may
	 * share keys between the two calls) becomes a log again. */
	rc = rate_fetch(cs, txn, a->key, a->klen, &v, &version);
	if (rc == 0)
		rc = rate_load_log(cs, &v, version, a->key, a->klen, &hdr, &n,
		    err);
	if (rc != 0)
		return rc;
	now = rate_now(cs, &hdr);
	cs->ts[n++] = now;
	first = first_after(cs->ts, n, window_cutoff(now, a->period_ms));
	if (n - first > a->limit)
		first = n - a->limit;
	k = n - first;
	rc = rate_store(cs, txn, a->key, a->klen, 0, a->period_ms, now,
	    cs->ts + first, k);
	if (rc != 0)
		return rc;
	*a->count = (uint32_t)k;
	return 0;
}

/* lmdb_event_add - record one event unconditionally. */
static int
lmdb_event_add(struct counter_store *base, const char *key, size_t klen,
    uint32_t keep, uint64_t period_ms, uint32_t *count, struct error *err)
{
	struct rate_arg a;

	memset(&a, 0, sizeof(a));
	a.key = key;
	a.klen = klen;
	a.limit = keep;
	a.period_ms = period_ms;
	a.count = count;
	return store_write(lmdb_of(base), op_event_add, &a, "event add", err);
}

/* op_event_count - events of key inside (now - period, now]. */
static int
op_event_count(struct lmdb_store *cs, MDB_txn *txn, void *varg,
    struct error *err)
{
	struct rate_arg *a = varg;
	struct rate_hdr hdr;
	MDB_val v;
	size_t n;
	uint64_t now;
	int rc, version;

	rc = rate_fetch(cs, txn, a->key, a->klen, &v, &version);
	if (rc != 0)
		return rc;
	if (version == RATE_VERSION_BUCKETS) {
		struct rate_ring r;

		rc = ring_load(&v, a->key, a->klen, &hdr, &r, err);
		if (rc != 0)
			return rc;
		*a->count = ring_window_count(&r, rate_now(cs, &hdr),
		    a->period_ms, hdr.period_ms);
		return 0;
	}
	rc = rate_load(cs, &v, a->key, a->klen, &hdr, &n, err);
	if (rc != 0)
		return rc;
	now = rate_now(cs, &hdr);
	*a->count = (uint32_t)(n - first_after(cs->ts, n,
	    window_cutoff(now, a->period_ms)));
	return 0;
}

/* lmdb_event_count - events for key in the last period_ms. */
static int
lmdb_event_count(struct counter_store *base, const char *key, size_t klen,
    uint64_t period_ms, uint32_t *count, struct error *err)
{
	struct rate_arg a;

	memset(&a, 0, sizeof(a));
	a.key = key;
	a.klen = klen;
	a.period_ms = period_ms;
	a.count = count;
	return store_read(lmdb_of(base), op_event_count, &a, "event count",
	    err);
}

/* op_key_reset - forget key in "rate", "rep" and "grey". */
static int
op_key_reset(struct lmdb_store *cs, MDB_txn *txn, void *varg,
    struct error *err)
{
	struct rate_arg *a = varg;
	MDB_val k = mkval(a->key, a->klen);
	int rc;

	rc = mdb_del(txn, cs->dbi[COUNTER_KIND_RATE], &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	rc = mdb_del(txn, cs->dbi[COUNTER_KIND_REP], &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	rc = mdb_del(txn, cs->dbi[COUNTER_KIND_GREY], &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	return 0;
}

/* lmdb_key_reset - forget key's events and reputation (absent: ok). */
static int
lmdb_key_reset(struct counter_store *base, const char *key, size_t klen,
    struct error *err)
{
	struct rate_arg a;

	memset(&a, 0, sizeof(a));
	a.key = key;
	a.klen = klen;
	return store_write(lmdb_of(base), op_key_reset, &a, "reset", err);
}

/* ==== reputation ==== */

struct rep_arg {
	const char *key;
	size_t klen;
	double delta;
	double half_life_s;
	double *score;
};

/* op_rep_get - the stored score decayed to now. */
static int
op_rep_get(struct lmdb_store *cs, MDB_txn *txn, void *varg,
    struct error *err)
{
	struct rep_arg *a = varg;
	struct rep_value rv;
	bool found;
	int rc;

	rc = rep_load(cs, txn, a->key, a->klen, &rv, &found);
	if (rc != 0)
		return rc;
	*a->score = rep_current(&rv, found, counter_now_ms(&cs->base),
	    COUNTER_REP_GET_HALF_LIFE_S);
	return 0;
}

/* lmdb_rep_get - decayed score (24 h half-life); absent = 50. */
static int
lmdb_rep_get(struct counter_store *base, const char *key, size_t klen,
    double *score, struct error *err)
{
	struct rep_arg a;

	memset(&a, 0, sizeof(a));
	a.key = key;
	a.klen = klen;
	a.score = score;
	return store_read(lmdb_of(base), op_rep_get, &a, "reputation get",
	    err);
}

/* op_rep_adjust - decay, add delta, clamp, store with the time. */
static int
op_rep_adjust(struct lmdb_store *cs, MDB_txn *txn, void *varg,
    struct error *err)
{
	struct rep_arg *a = varg;
	struct rep_value rv;
	MDB_val k = mkval(a->key, a->klen), v;
	uint64_t now = counter_now_ms(&cs->base);
	bool found;
	int rc;

	rc = rep_load(cs, txn, a->key, a->klen, &rv, &found);
	if (rc != 0)
		return rc;
	rv.score = clamp_score(rep_current(&rv, found, now, a->half_life_s) +
	    a->delta);
	if (!found || now > rv.updated_ms)
		rv.updated_ms = now;
	v = mkval(&rv, sizeof(rv));
	return mdb_put(txn, cs->dbi[COUNTER_KIND_REP], &k, &v, 0);
}

/* lmdb_rep_adjust - add delta after decaying for elapsed time with
 * half_life_s (> 0). */
static int
lmdb_rep_adjust(struct counter_store *base, const char *key, size_t klen,
    double delta, double half_life_s, struct error *err)
{
	struct rep_arg a;

	memset(&a, 0, sizeof(a));
	a.key = key;
	a.klen = klen;
	a.delta = delta;
	a.half_life_s = half_life_s;
	return store_write(lmdb_of(base), op_rep_adjust, &a,
	    "reputation adjust", err);
}

/* ==== greylisting ==== */

struct grey_arg {
	const char *triplet;
	size_t tlen;
	const char *client;      /* NULL: no auto-allow */
	size_t clen;
	const struct counter_grey_params *p;
	struct counter_grey_result *res;
	bool peek;               /* only decide a pass needing no write:  */
	bool done;               /* ... decided, nothing to write          */
};

/* grey_load - key's record, live at now; found = false when absent or
 * expired (or unreadable: it is then rewritten). */
static int
grey_load(struct lmdb_store *cs, MDB_txn *txn, const char *key, size_t klen,
    uint64_t now, struct grey_value *g, bool *found)
{
	MDB_val k = mkval(key, klen), v;
	int rc;

	memset(g, 0, sizeof(*g));
	*found = false;
	rc = mdb_get(txn, cs->dbi[COUNTER_KIND_GREY], &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (v.mv_size == sizeof(*g)) {
		memcpy(g, v.mv_data, sizeof(*g));
		*found = g->expires_ms > now;
	}
	if (!*found)
		memset(g, 0, sizeof(*g));
	return 0;
}

/* grey_store - write key's record. */
static int
grey_store(struct lmdb_store *cs, MDB_txn *txn, const char *key, size_t klen,
    const struct grey_value *g)
{
	MDB_val k = mkval(key, klen), v = mkval(g, sizeof(*g));

	return mdb_put(txn, cs->dbi[COUNTER_KIND_GREY], &k, &v, 0);
}

/* sat_add - a + b, capped. */
static uint64_t
sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* grey_client_pass - count a pass for a client record at most once per
 * auto_allow_interval (a clock stepping back counts again), keep it
 * max_age from now; store it. */
static int
grey_client_pass(struct lmdb_store *cs, MDB_txn *txn, const struct grey_arg *a,
    struct grey_value *c, uint64_t now)
{
	const struct counter_grey_params *p = a->p;

	if (c->count == 0 || c->last_ms > now ||
	    now >= sat_add(c->last_ms, p->auto_allow_interval_ms)) {
		if (c->count < UINT32_MAX)
			c->count++;
		c->last_ms = now;
	}
	c->expires_ms = sat_add(now, p->max_age_ms);
	a->res->client_count = c->count;
	return grey_store(cs, txn, a->client, a->clen, c);
}

/* op_grey_check - counter.h's greylisting step, in one transaction;
 * with a->peek a read that only decides a pass which would move a
 * record refreshed within the granularity (a->done), writing nothing. */
static int
op_grey_check(struct lmdb_store *cs, MDB_txn *txn, void *varg,
    struct error *err)
{
	struct grey_arg *a = varg;
	const struct counter_grey_params *p = a->p;
	struct counter_grey_result *res = a->res;
	struct grey_value t, c;
	uint64_t now = counter_now_ms(&cs->base);
	bool tf, cf = false;
	int rc;

	memset(res, 0, sizeof(*res));
	if (a->client != NULL) {
		rc = grey_load(cs, txn, a->client, a->clen, now, &c, &cf);
		if (rc != 0)
			return rc;
		res->client_count = c.count;
		if (cf && c.count >= p->auto_allow_after) {
			res->verdict = COUNTER_GREY_AUTO_ALLOWED;
			if (!a->peek)
				return grey_client_pass(cs, txn, a, &c, now);
			/* no count due, expiry pushed less than gran ago */
			a->done = c.last_ms <= now &&
			    now < sat_add(c.last_ms, p->auto_allow_interval_ms) &&
			    sat_add(c.expires_ms, counter_grey_refresh_ms(p)) >=
			    sat_add(now, p->max_age_ms);
			return 0;
		}
	}
	rc = grey_load(cs, txn, a->triplet, a->tlen, now, &t, &tf);
	if (rc != 0)
		return rc;
	if (a->peek) {
		res->verdict = COUNTER_GREY_PASSED;
		a->done = tf && t.count > 0 && t.first_ms <= now &&
		    t.last_ms <= now &&
		    now - t.last_ms < counter_grey_refresh_ms(p);
		return 0;
	}
	if (!tf || t.first_ms > now ||
	    (t.count == 0 && now - t.first_ms > p->retry_window_ms))
		t.first_ms = now;      /* new, or a retry after the window */
	t.last_ms = now;
	if (t.count == 0 && now - t.first_ms < p->delay_ms) {
		res->verdict = COUNTER_GREY_GREYLISTED;
		res->retry_ms = t.first_ms + p->delay_ms - now;
		/* live through first seen + retry_window, inclusive */
		t.expires_ms = sat_add(t.first_ms, p->retry_window_ms + 1);
		return grey_store(cs, txn, a->triplet, a->tlen, &t);
	}
	res->verdict = COUNTER_GREY_PASSED;
	res->first_pass = t.count == 0;
	if (t.count < UINT32_MAX)
		t.count++;
	t.expires_ms = sat_add(now, p->max_age_ms);
	rc = grey_store(cs, txn, a->triplet, a->tlen, &t);
	if (rc != 0 || !res->first_pass || a->client == NULL)
		return rc;
	if (!cf) {
		memset(&c, 0, sizeof(c));
		c.first_ms = now;
	}
	return grey_client_pass(cs, txn, a, &c, now);
}

/* lmdb_grey_check - greylisting's step: a read when a recent pass
 * changes nothing, else one write. */
static int
lmdb_grey_check(struct counter_store *base, const char *triplet, size_t tlen,
    const char *client, size_t clen, const struct counter_grey_params *p,
    struct counter_grey_result *res, struct error *err)
{
	struct grey_arg a;

	a.triplet = triplet;
	a.tlen = tlen;
	a.client = client;
	a.clen = clen;
	a.p = p;
	a.res = res;
	a.peek = true;
	a.done = false;
	if (store_read(lmdb_of(base), op_grey_check, &a, "greylist", err) < 0)
		return -1;
	if (a.done)
		return 0;
	a.peek = false;
	return store_write(lmdb_of(base), op_grey_check, &a, "greylist", err);
}

/* ==== metrics ==== */

/* op_metric_add - saturating add. */
static int
op_metric_add(struct lmdb_store *cs, MDB_txn *txn, void *varg,
    struct error *err)
{
	struct metric_arg *a = varg;
	MDB_val k = mkval(a->name, a->nlen), v;
	uint64_t value = 0;
	int rc;

	rc = mdb_get(txn, cs->dbi[COUNTER_KIND_METRIC], &k, &v);
	if (rc == 0 && v.mv_size == sizeof(value))
		memcpy(&value, v.mv_data, sizeof(value));
	else if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	value = value > UINT64_MAX - a->delta ? UINT64_MAX : value + a->delta;
	v = mkval(&value, sizeof(value));
	return mdb_put(txn, cs->dbi[COUNTER_KIND_METRIC], &k, &v, 0);
}

/* lmdb_metric_add - add delta to the shared metric name. */
static int
lmdb_metric_add(struct counter_store *base, const char *name, size_t nlen,
    uint64_t delta, struct error *err)
{
	struct metric_arg a;

	a.name = name;
	a.nlen = nlen;
	a.delta = delta;
	return store_write(lmdb_of(base), op_metric_add, &a, "metric add",
	    err);
}

/* ==== sweeping ==== */

/* rate_stale - a rate value whose newest event (its high-water mark) left
 * its window at now, or that cannot be read. */
static bool
rate_stale(const MDB_val *v, uint64_t now)
{
	struct rate_hdr hdr;
	struct rate_ring r;

	if (!log_header_ok(v, &hdr) && !ring_decode(v, &hdr, &r))
		return true;
	return hdr.high_ms <= window_cutoff(now, hdr.period_ms);
}

/* grey_stale - a grey record past its expiry, or unreadable. */
static bool
grey_stale(const MDB_val *v, uint64_t now)
{
	struct grey_value g;

	if (v->mv_size != sizeof(g))
		return true;
	memcpy(&g, v->mv_data, sizeof(g));
	return g.expires_ms <= now;
}

/* sweep_kind - visit up to max_keys entries of kind after its remembered
 * position, deleting stale ones; wraps to the start at the end. */
static int
sweep_kind(struct lmdb_store *cs, MDB_txn *txn, enum counter_kind kind,
    struct sweep_arg *a)
{
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t now = counter_now_ms(&cs->base);
	char *pos = cs->sweep_key[kind];
	size_t *plen = &cs->sweep_len[kind], visited = 0;
	int rc;

	rc = mdb_cursor_open(txn, cs->dbi[kind], &cur);
	if (rc != 0)
		return rc;
	if (*plen > 0) {
		k = mkval(pos, *plen);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == 0 && k.mv_size == *plen &&
		    memcmp(k.mv_data, pos, *plen) == 0)
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	} else {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	}
	while (rc == 0 && visited < a->max_keys) {
		visited++;
		if (k.mv_size <= COUNTER_KEY_MAX) {
			memcpy(pos, k.mv_data, k.mv_size);
			*plen = k.mv_size;
		}
		if (kind == COUNTER_KIND_GREY ? grey_stale(&v, now) :
		    rate_stale(&v, now)) {
			rc = mdb_cursor_del(cur, 0);
			if (rc != 0)
				break;
			a->deleted++;
		}
		/* After a delete the cursor already sits on the next entry;
		 * LMDB's MDB_NEXT accounts for that. */
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND) {
		*plen = 0;      /* next sweep starts from the top */
		rc = 0;
	}
	return rc;
}

/* op_sweep - sweep the rate entries, then the grey records. */
static int
op_sweep(struct lmdb_store *cs, MDB_txn *txn, void *varg,
    struct error *err)
{
	struct sweep_arg *a = varg;
	int rc;

	a->deleted = 0;
	rc = sweep_kind(cs, txn, COUNTER_KIND_RATE, a);
	if (rc == 0)
		rc = sweep_kind(cs, txn, COUNTER_KIND_GREY, a);
	return rc;
}

/* lmdb_sweep - delete stale rate entries and expired grey records, at
 * most max_keys of each visited. */
static long
lmdb_sweep(struct counter_store *base, size_t max_keys, struct error *err)
{
	struct sweep_arg a = { max_keys, 0 };

	if (max_keys == 0)
		return 0;
	if (store_write(lmdb_of(base), op_sweep, &a, "sweep", err) < 0)
		return -1;
	return a.deleted;
}

/* ==== inspection ==== */

struct visit_arg {
	enum counter_kind kind;
	const char *prefix;
	size_t plen;
	counter_visit_fn fn;
	void *arg;
};

/* ring_fill - a bucketed rate value for inspection: C as the count, the
 * oldest counted bucket's start (or the window's) as the oldest event. */
static bool
ring_fill(const MDB_val *v, uint64_t now, struct counter_entry *e)
{
	struct rate_hdr hdr;
	struct rate_ring r;
	uint64_t w, c;

	if (!ring_decode(v, &hdr, &r))
		return false;
	if (now < hdr.high_ms)
		now = hdr.high_ms;
	w = bucket_width(hdr.period_ms);
	c = ring_window_count(&r, now, hdr.period_ms, hdr.period_ms);
	e->limit = hdr.limit;
	e->period_ms = hdr.period_ms;
	e->newest_ms = hdr.high_ms;
	e->count = (uint32_t)c;
	for (uint64_t b = ring_first(&r, now, hdr.period_ms, w);
	    b <= r.newest && c > 0; b++) {
		if (r.n[b % RATE_RING] != 0) {
			uint64_t cutoff = window_cutoff(now, hdr.period_ms);

			e->oldest_ms = b * w > cutoff ? b * w : cutoff + 1;
			break;
		}
	}
	return true;
}

/* entry_fill - decode one value into e; false when it cannot be read. */
static bool
entry_fill(struct lmdb_store *cs, enum counter_kind kind,
    const MDB_val *v, uint64_t now, struct counter_entry *e)
{
	struct rate_hdr hdr;
	struct rep_value rv;
	uint64_t t, cutoff;
	size_t i;

	switch (kind) {
	case COUNTER_KIND_RATE:
		if (!log_header_ok(v, &hdr))
			return ring_fill(v, now, e);    /* a ring, or junk */
		e->limit = hdr.limit;
		e->period_ms = hdr.period_ms;
		e->newest_ms = hdr.high_ms;
		cutoff = window_cutoff(now > hdr.high_ms ? now : hdr.high_ms,
		    hdr.period_ms);
		for (i = 0; i < hdr.count; i++) {
			memcpy(&t, (const unsigned char *)v->mv_data +
			    sizeof(hdr) + i * sizeof(t), sizeof(t));
			if (t > cutoff) {
				if (e->count == 0)
					e->oldest_ms = t;
				e->count++;
			}
			e->newest_ms = t;
		}
		return true;
	case COUNTER_KIND_REP:
		if (v->mv_size != sizeof(rv))
			return false;
		memcpy(&rv, v->mv_data, sizeof(rv));
		if (!isfinite(rv.score))
			return false;
		e->score = rep_current(&rv, true, now, COUNTER_REP_GET_HALF_LIFE_S);
		e->newest_ms = rv.updated_ms;
		return true;
	case COUNTER_KIND_METRIC:
		if (v->mv_size != sizeof(e->value))
			return false;
		memcpy(&e->value, v->mv_data, sizeof(e->value));
		e->count = (uint32_t)e->value;
		return true;
	case COUNTER_KIND_GREY: {
		struct grey_value g;

		if (v->mv_size != sizeof(g))
			return false;
		memcpy(&g, v->mv_data, sizeof(g));
		e->oldest_ms = g.first_ms;
		e->newest_ms = g.last_ms;
		e->expires_ms = g.expires_ms;
		e->count = g.count;
		return true;
	}
	default:
		(void)cs;
		return false;
	}
}

/* op_visit - walk the keys starting with the prefix, in key order. */
static int
op_visit(struct lmdb_store *cs, MDB_txn *txn, void *varg,
    struct error *err)
{
	struct visit_arg *a = varg;
	char key[COUNTER_KEY_MAX + 1];
	struct counter_entry e;
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t now = counter_now_ms(&cs->base);
	int rc, stop;

	if (cs->missing[a->kind])
		return 0;
	rc = mdb_cursor_open(txn, cs->dbi[a->kind], &cur);
	if (rc != 0)
		return rc;
	if (a->plen > 0) {
		k = mkval(a->prefix, a->plen);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	} else {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	}
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < a->plen ||
		    memcmp(k.mv_data, a->prefix, a->plen) != 0)
			break;
		if (k.mv_size > COUNTER_KEY_MAX)
			continue;
		memcpy(key, k.mv_data, k.mv_size);
		key[k.mv_size] = '\0';
		memset(&e, 0, sizeof(e));
		e.kind = a->kind;
		e.key = key;
		if (!entry_fill(cs, a->kind, &v, now, &e)) {
			char ek[KEY_ESC_MAX];

			log_warn("counter table: unreadable %s entry \"%s\"",
			    counter_kind_names[e.kind],
			    key_escape(ek, sizeof(ek), key, k.mv_size));
			continue;
		}
		cs->busy = true;
		stop = a->fn(&e, a->arg);
		cs->busy = false;
		if (stop != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* lmdb_visit - call fn for every entry of kind under prefix. */
static int
lmdb_visit(struct counter_store *base, enum counter_kind kind,
    const char *prefix, size_t plen, counter_visit_fn fn, void *arg,
    struct error *err)
{
	struct visit_arg a;

	memset(&a, 0, sizeof(a));
	a.kind = kind;
	a.prefix = prefix;
	a.plen = plen;
	a.fn = fn;
	a.arg = arg;
	return store_read(lmdb_of(base), op_visit, &a, "visit", err);
}

/* op_stats - entries of the three databases. */
static int
op_stats(struct lmdb_store *cs, MDB_txn *txn, void *varg,
    struct error *err)
{
	struct counter_stats *st = varg;
	MDB_stat ms;
	int i, rc;

	st->entries = 0;
	for (i = 0; i < COUNTER_KIND_COUNT; i++) {
		if (cs->missing[i])
			continue;
		rc = mdb_stat(txn, cs->dbi[i], &ms);
		if (rc != 0)
			return rc;
		st->entries += ms.ms_entries;
	}
	return 0;
}

/* lmdb_stats - map size, bytes in use, entries. */
static int
lmdb_stats(struct counter_store *base, struct counter_stats *st,
    struct error *err)
{
	struct lmdb_store *cs = lmdb_of(base);
	MDB_envinfo info;
	MDB_stat ms;
	int rc;

	if (store_read(cs, op_stats, st, "stats", err) < 0)
		return -1;
	if ((rc = mdb_env_info(cs->env, &info)) != 0 ||
	    (rc = mdb_env_stat(cs->env, &ms)) != 0)
		return lmdb_error(err, "stats", rc);
	st->map_size = (uint64_t)info.me_mapsize;
	st->used_bytes = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
	return 0;
}

/* ==== Durability modes ==== */

/* lmdb_flush - bounded-loss flush for FAST mode (at most ~1 s lost). */
static int
lmdb_flush(struct counter_store *base, struct error *err)
{
	struct lmdb_store *cs = lmdb_of(base);
	uint64_t now;
	int rc;

	if (cs->readonly || cs->sync != COUNTER_SYNC_FAST || shared_txn(cs))
		return 0;
	now = counter_now_ms(&cs->base);
	if (now - cs->flushed_ms < 1000 && now >= cs->flushed_ms)
		return 0;
	cs->flushed_ms = now;
	rc = mdb_env_sync(cs->env, 1);
	if (rc != 0)
		return lmdb_error(err, "flush", rc);
	return 0;
}

/* lmdb_unavailable - a local table's only "outage" is being full at its
 * growth cap, which full_recover already reports once a minute. */
static bool
lmdb_unavailable(const struct counter_store *base)
{
	return lmdb_of((struct counter_store *)base)->at_cap;
}

static const struct counter_backend lmdb_backend = {
	.name = "lmdb",
	.close = lmdb_close,
	.batches = lmdb_batches,
	.batch_begin = lmdb_batch_begin,
	.batch_end = lmdb_batch_end,
	.batch_failed = lmdb_batch_failed,
	.flush = lmdb_flush,
	.decision_begin = lmdb_decision_begin,
	.decision_end = lmdb_decision_end,
	.rate_hit = lmdb_rate_hit,
	.event_add = lmdb_event_add,
	.event_count = lmdb_event_count,
	.key_reset = lmdb_key_reset,
	.rep_get = lmdb_rep_get,
	.rep_adjust = lmdb_rep_adjust,
	.metric_add = lmdb_metric_add,
	.grey_check = lmdb_grey_check,
	.sweep = lmdb_sweep,
	.visit = lmdb_visit,
	.stats = lmdb_stats,
	.unavailable = lmdb_unavailable,
};

/* ==== Preparation (elemtactl) ==== */

/*
 * The start-up check of an existing table.  LMDB trusts its file: a
 * garbage header is MDB_INVALID, but a bad page number or size deeper in
 * the tree is a SIGBUS or SIGSEGV in whoever reads it - every policyd
 * worker, in a restart loop.  So before any worker opens the table,
 * elemtactl reads all of it once in a child process: the meta pages,
 * every entry of every database and every page of every value, and the
 * free list's page numbers.  The child runs as the owner of data.mdb (the
 * file is written by the unprivileged policyd user and LMDB is not
 * hardened against hostile files: root never parses it) and without core
 * dumps; a crash of the child is evidence of corruption, not a crash of
 * elemtactl.  A corrupt table is moved aside (as a FAST-mode table after
 * a system crash is) and counting starts afresh: counters are worth less
 * than a mail server that starts.  A table that could not be checked at
 * all (permissions, I/O errors, a check that does not finish) is an error
 * naming the file, never a reason to discard it.
 */

#define CHECK_TIMEOUT_S 120      /* a sane table is read in far less   */
#define CHECK_WHY_MAX 256

enum table_check {
	TABLE_OK,
	TABLE_CORRUPT,           /* unreadable by LMDB: move it aside */
	TABLE_UNCHECKED,         /* could not look: refuse to start   */
};

/* check_exit - report why to the parent and end the checking child. */
static void check_exit(int fd, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
static void
check_exit(int fd, int code, const char *fmt, ...)
{
	char buf[CHECK_WHY_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0 && write(fd, buf, strlen(buf)) < 0)
		code = 2;
	_exit(code);
}

/* check_rc_corrupt - an LMDB code that says the file itself is bad (as
 * opposed to errno values and resource limits). */
static bool
check_rc_corrupt(int rc)
{
	return rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH ||
	    rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND ||
	    rc == MDB_PANIC || rc == MDB_INCOMPATIBLE ||
	    rc == MDB_CURSOR_FULL || rc == MDB_PAGE_FULL ||
	    rc == MDB_BAD_VALSIZE || rc == MDB_BAD_DBI;
}

/* check_walk - read every entry of dbi and every page of its values
 * (overflow pages too); fails with MDB_CORRUPTED past limit entries (a
 * cycle in the tree).  *n counts the entries seen.  A size field gone
 * wild makes these reads fault: the child dies of it, which is the
 * verdict. */
static int
check_walk(MDB_txn *txn, MDB_dbi dbi, size_t limit, size_t *n,
    volatile unsigned *sink)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*n = 0;
	rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const unsigned char *p = v.mv_data;

		if (++*n > limit) {
			rc = MDB_CORRUPTED;
			break;
		}
		for (size_t i = 0; i < v.mv_size; i += 512)
			*sink += p[i];
		if (v.mv_size > 0)
			*sink += p[v.mv_size - 1];
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* check_freelist - every page number on the free list (database 0: a
 * count, then the numbers) lies between the meta pages and the last
 * page; a wrong one would be handed out by the next write. */
static int
check_freelist(MDB_txn *txn, size_t last_pgno, int fd)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	rc = mdb_cursor_open(txn, 0, &cur);
	if (rc != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		size_t ids[2], n = v.mv_size / sizeof(size_t);
		const unsigned char *p = v.mv_data;

		if (n == 0 || v.mv_size % sizeof(size_t) != 0)
			check_exit(fd, 1, "free list entry of %zu bytes",
			    v.mv_size);
		memcpy(ids, p, sizeof(size_t));
		if (ids[0] != n - 1)
			check_exit(fd, 1, "free list entry counts %zu pages in "
			    "%zu bytes", ids[0], v.mv_size);
		for (size_t i = 1; i < n; i++) {
			memcpy(&ids[1], p + i * sizeof(size_t), sizeof(size_t));
			if (ids[1] < 2 || ids[1] > last_pgno)
				check_exit(fd, 1, "free page %zu outside the "
				    "table (last page %zu)", ids[1], last_pgno);
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* check_child - the checking child: exits 0 (sound), 1 (corrupt) or 2
 * (could not check), with the reason written to fd. */
static void check_child(const char *dir, const struct stat *st, int fd)
    __attribute__((noreturn));
static void
check_child(const char *dir, const struct stat *st, int fd)
{
	static const int fatal[] = { SIGBUS, SIGSEGV, SIGABRT, SIGFPE, SIGILL,
	    SIGALRM };
	struct rlimit no_core = { 0, 0 };
	sigset_t set;
	char path[4096];
	struct stat fst;
	MDB_envinfo info;
	MDB_stat ms;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	volatile unsigned sink = 0;
	size_t n;
	int rc, i;

	sigemptyset(&set);
	/* Death by these signals is the verdict: no inherited handler (nor
	 * a sanitizer's) may catch them, and no core is left behind. */
	for (i = 0; i < (int)(sizeof(fatal) / sizeof(fatal[0])); i++) {
		signal(fatal[i], SIG_DFL);
		sigaddset(&set, fatal[i]);
	}
	(void)sigprocmask(SIG_UNBLOCK, &set, NULL);
	(void)setrlimit(RLIMIT_CORE, &no_core);
	alarm(CHECK_TIMEOUT_S);
	if (geteuid() == 0 && st->st_uid != 0 && (setgroups(0, NULL) != 0 ||
	    setresgid(st->st_gid, st->st_gid, st->st_gid) != 0 ||
	    setresuid(st->st_uid, st->st_uid, st->st_uid) != 0))
		check_exit(fd, 2, "cannot take the identity of its owner (uid "
		    "%lu): %s", (unsigned long)st->st_uid, strerror(errno));
	if ((rc = mdb_env_create(&env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(env, COUNTER_KIND_COUNT + 1)) != 0)
		check_exit(fd, 2, "%s", mdb_strerror(rc));
	rc = mdb_env_open(env, dir, MDB_RDONLY, 0600);
	if (rc == EACCES) {
		/* lock.mdb is not the owner's (say root's, from an elemta-stat
		 * run): read without taking part in the locking.  elemtactl
		 * chowns it to the policyd user right after this check. */
		mdb_env_close(env);
		if ((rc = mdb_env_create(&env)) != 0 ||
		    (rc = mdb_env_set_maxdbs(env, COUNTER_KIND_COUNT + 1)) != 0)
			check_exit(fd, 2, "%s", mdb_strerror(rc));
		rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK, 0600);
	}
	if (rc != 0)
		check_exit(fd, check_rc_corrupt(rc) ? 1 : 2, "%s",
		    mdb_strerror(rc));
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if ((rc = mdb_env_info(env, &info)) != 0 ||
	    (rc = mdb_env_stat(env, &ms)) != 0)
		check_exit(fd, check_rc_corrupt(rc) ? 1 : 2, "%s",
		    mdb_strerror(rc));
	if (stat(path, &fst) != 0)
		check_exit(fd, 2, "%s", strerror(errno));
	/* A page past the end of the file is a SIGBUS when read. */
	if ((uint64_t)fst.st_size < ((uint64_t)info.me_last_pgno + 1) *
	    ms.ms_psize)
		check_exit(fd, 1, "file of %lld bytes, but its last page ends "
		    "at %llu", (long long)fst.st_size, ((unsigned long long)
		    info.me_last_pgno + 1) * ms.ms_psize);
	rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (rc == 0)
		rc = mdb_dbi_open(txn, NULL, 0, &dbi);
	if (rc == 0)
		rc = mdb_stat(txn, dbi, &ms);
	if (rc == 0)
		rc = check_walk(txn, dbi, ms.ms_entries, &n, &sink);
	if (rc != 0)
		check_exit(fd, check_rc_corrupt(rc) ? 1 : 2, "%s",
		    mdb_strerror(rc));
	for (i = 0; i < COUNTER_KIND_COUNT; i++) {
		rc = mdb_dbi_open(txn, counter_kind_names[i], 0, &dbi);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc == 0)
			rc = mdb_stat(txn, dbi, &ms);
		if (rc == 0)
			rc = check_walk(txn, dbi, ms.ms_entries, &n, &sink);
		if (rc != 0)
			check_exit(fd, check_rc_corrupt(rc) ? 1 : 2,
			    "database \"%s\": %s", counter_kind_names[i],
			    mdb_strerror(rc));
		if (n != ms.ms_entries)
			check_exit(fd, 1, "database \"%s\": %zu entries where "
			    "%zu are recorded", counter_kind_names[i], n,
			    (size_t)ms.ms_entries);
	}
	rc = check_freelist(txn, info.me_last_pgno, fd);
	if (rc != 0)
		check_exit(fd, check_rc_corrupt(rc) ? 1 : 2, "free list: %s",
		    mdb_strerror(rc));
	mdb_txn_abort(txn);
	mdb_env_close(env);
	_exit(0);
}

/* table_check - read the table at dir in a child (see above); why says
 * what is wrong unless TABLE_OK. */
static enum table_check
table_check(const char *dir, char *why, size_t size)
{
	char path[4096];
	struct stat st;
	int pfd[2], status, sig;
	ssize_t n;
	pid_t pid;

	why[0] = '\0';
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return TABLE_OK;        /* nothing yet: created later */
		snprintf(why, size, "%s", strerror(errno));
		return TABLE_UNCHECKED;
	}
	if (S_ISREG(st.st_mode) && st.st_size == 0)
		return TABLE_OK;                /* LMDB initialises it */
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		snprintf(why, size, "pipe: %s", strerror(errno));
		return TABLE_UNCHECKED;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(why, size, "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return TABLE_UNCHECKED;
	}
	if (pid == 0) {
		close(pfd[0]);
		check_child(dir, &st, pfd[1]);
	}
	close(pfd[1]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			snprintf(why, size, "waitpid: %s", strerror(errno));
			close(pfd[0]);
			return TABLE_UNCHECKED;
		}
	}
	n = read(pfd[0], why, size - 1);
	why[n > 0 ? n : 0] = '\0';
	close(pfd[0]);
	if (WIFEXITED(status)) {
		if (WEXITSTATUS(status) == 0)
			return TABLE_OK;
		if (why[0] == '\0')
			snprintf(why, size, "the check exited with status %d",
			    WEXITSTATUS(status));
		return WEXITSTATUS(status) == 1 ? TABLE_CORRUPT :
		    TABLE_UNCHECKED;
	}
	sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	if (sig == SIGALRM) {
		snprintf(why, size, "the check did not finish within %d s",
		    CHECK_TIMEOUT_S);
		return TABLE_UNCHECKED;
	}
	snprintf(why, size, "reading it crashed the check (%s)",
	    strsignal(sig));
	return sig == SIGBUS || sig == SIGSEGV || sig == SIGABRT ||
	    sig == SIGFPE || sig == SIGILL ? TABLE_CORRUPT : TABLE_UNCHECKED;
}

/* table_move_aside - rename data.mdb and lock.mdb of dir into a new
 * dir/discarded-<time>[-N]/ (named in aside). */
static int
table_move_aside(const char *dir, char *aside, size_t size,
    struct error *err)
{
	static const char *const files[] = { "data.mdb", "lock.mdb" };
	long long now = (long long)time(NULL);
	int attempt;

	for (attempt = 1; ; attempt++) {
		int len = attempt == 1 ?
		    snprintf(aside, size, "%s/discarded-%lld", dir, now) :
		    snprintf(aside, size, "%s/discarded-%lld-%d", dir, now,
		    attempt);

		if (len < 0 || (size_t)len >= size - 16)
			return error_set(err, "counter table: path too long");
		if (mkdir(aside, 0700) == 0)
			break;
		if (errno != EEXIST || attempt >= 100)
			return error_set(err, "cannot create %s: %s", aside,
			    strerror(errno));
	}
	for (size_t i = 0; i < 2; i++) {
		char from[4096 + 16], to[4096 + 16];

		snprintf(from, sizeof(from), "%s/%s", dir, files[i]);
		snprintf(to, sizeof(to), "%s/%s", aside, files[i]);
		if (rename(from, to) != 0 && errno != ENOENT)
			return error_set(err, "cannot move %s aside: %s",
			    from, strerror(errno));
	}
	return 0;
}

/* boot_id - this boot's identity, or "" when the kernel does not say. */
static void
boot_id(char *buf, size_t size)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");

	buf[0] = '\0';
	if (f == NULL)
		return;
	if (fgets(buf, (int)size, f) == NULL)
		buf[0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

/* counter_store_prepare - see counter.h. */
int
counter_store_prepare(const char *dir, enum counter_sync mode,
    bool *discarded, struct error *err)
{
	char marker[4096], prev[128] = "", now_id[128], aside[4096];
	char why[CHECK_WHY_MAX];
	FILE *f;
	int fd;

	*discarded = false;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return error_set(err, "cannot create counter directory %s: %s",
		    dir, strerror(errno));
	if ((size_t)snprintf(marker, sizeof(marker), "%s/open-boot-id", dir) >=
	    sizeof(marker))
		return error_set(err, "counter table: path too long");
	boot_id(now_id, sizeof(now_id));
	if ((f = fopen(marker, "r")) != NULL) {
		if (fgets(prev, sizeof(prev), f) == NULL)
			prev[0] = '\0';
		prev[strcspn(prev, "\n")] = '\0';
		fclose(f);
	}
	/* Left open by an earlier boot: the system went down under us.  Only
	 * FAST mode can have been corrupted by that. */
	if (mode == COUNTER_SYNC_FAST && prev[0] != '\0' && now_id[0] != '\0' &&
	    strcmp(prev, now_id) != 0) {
		if (table_move_aside(dir, aside, sizeof(aside), err) != 0)
			return -1;
		log_warn("counter table %s was open when the system went down "
		    "(counters.sync: fast): moved to %s, starting empty", dir,
		    aside);
		*discarded = true;
	}
	/* A table LMDB cannot read would crash every policyd worker in a
	 * loop (see table_check): moved aside, or an error when not even
	 * checkable. */
	switch (table_check(dir, why, sizeof(why))) {
	case TABLE_OK:
		break;
	case TABLE_CORRUPT:
		if (table_move_aside(dir, aside, sizeof(aside), err) != 0)
			return -1;
		log_warn("counter table %s/data.mdb is corrupt (%s): moved "
		    "to %s, starting with an empty table", dir, why, aside);
		*discarded = true;
		break;
	case TABLE_UNCHECKED:
		return error_set(err, "cannot check counter table "
		    "%s/data.mdb: %s", dir, why);
	}
	fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return error_set(err, "cannot write %s: %s", marker,
		    strerror(errno));
	dprintf(fd, "%s\n", now_id);
	(void)fsync(fd);
	close(fd);
	return 0;
}

/* counter_store_check - the start-up check alone, for readers that open a
 * table elemtactl has not checked (elemta-stat while Elemta is stopped). */
int
counter_store_check(const char *dir, struct error *err)
{
	char why[CHECK_WHY_MAX];

	switch (table_check(dir, why, sizeof(why))) {
	case TABLE_OK:
		return 0;
	case TABLE_CORRUPT:
		return error_set(err, "counter table %s/data.mdb is corrupt "
		    "(%s); elemtactl start moves it aside", dir, why);
	case TABLE_UNCHECKED:
		break;
	}
	return error_set(err, "cannot check counter table %s/data.mdb: %s",
	    dir, why);
}

/* counter_store_mark_clean - a clean stop: nothing to distrust next time. */
void
counter_store_mark_clean(const char *dir)
{
	char marker[4096];

	if ((size_t)snprintf(marker, sizeof(marker), "%s/open-boot-id", dir) <
	    sizeof(marker))
		(void)unlink(marker);
}
