/*
 * test_counter.c - unit tests for common/counter.c, one test per promise of
 * counter.h: exact sliding-window limits (against a brute-force model on a
 * fake clock, and across two processes on the real clock), refused events
 * never counted, decision withdrawal, batches (group commit), both
 * durability modes, persistence, full and resized maps,
 * sweeping, reputation decay, metrics, inspection and input limits.
 * Every test works in its own mkdtemp() directory under /tmp.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "counter.h"
#include "error.h"
#include "log.h"

#define T0 1764201600000ULL     /* 2025-11-27T00:00:00Z in ms */
#define MAP_1M (1ULL << 20)

static uint64_t fake_now;

/* fake_clock - the test clock every store in this file uses. */
static uint64_t
fake_clock(void)
{
	return fake_now;
}

struct fx {
	char root[64];          /* the mkdtemp directory */
	char dir[96];           /* the table inside it */
	struct counter_store *cs;
};

/* rm_entry - nftw callback removing one path. */
static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* fx_open - (re)open the fixture's store with the fake clock. */
static void
fx_open(struct fx *f, uint64_t map_size)
{
	struct error err = { "" };

	assert_int_equal(counter_store_open(f->dir, map_size, false, COUNTER_SYNC_SAFE, &f->cs,
	    &err), 0);
	counter_set_clock(f->cs, fake_clock);
}

/* fx_fresh - close the store and open a new table of map_size bytes in
 * a new directory (a reopened table keeps the map it grew to). */
static void
fx_fresh(struct fx *f, const char *name, uint64_t map_size)
{
	counter_store_close(f->cs);
	snprintf(f->dir, sizeof(f->dir), "%s/%s", f->root, name);
	fx_open(f, map_size);
}

/* setup - fresh directory and store, clock at T0. */
static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	strcpy(f->root, "/tmp/elemta-counter-XXXXXX");
	if (mkdtemp(f->root) == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/table", f->root);
	fake_now = T0;
	fx_open(f, MAP_1M);
	*state = f;
	return 0;
}

/* teardown - close and remove the directory. */
static int
teardown(void **state)
{
	struct fx *f = *state;

	counter_store_close(f->cs);
	nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* hit - one rate hit that must not fail. */
static struct counter_rate_result
hit(struct counter_store *cs, const char *key, uint32_t limit,
    uint64_t period)
{
	struct counter_rate_result r;
	struct error err = { "" };

	if (counter_rate_hit(cs, key, limit, period, &r, &err) != 0)
		fail_msg("rate hit %s: %s", key, err.text);
	return r;
}

/* count - events of key in the last period (must not fail). */
static uint32_t
count(struct counter_store *cs, const char *key, uint64_t period)
{
	struct error err = { "" };
	uint32_t n = 99999;

	if (counter_event_count(cs, key, period, &n, &err) != 0)
		fail_msg("count %s: %s", key, err.text);
	return n;
}

/* max_in_window - the most timestamps of sorted ts in any (a, a+P]. */
static size_t
max_in_window(const uint64_t *ts, size_t n, uint64_t period)
{
	size_t i, j, lo = 0, best = 0;

	for (i = 0; i < n; i++) {
		/* windows ending at an event are the worst ones */
		j = i;
		while (j + 1 < n && ts[j + 1] == ts[i])
			j++;
		while (ts[lo] + period <= ts[i])
			lo++;
		if (j - lo + 1 > best)
			best = j - lo + 1;
	}
	return best;
}

/* cmp_u64 - qsort order for timestamps. */
static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ==== exactness ==== */

/* limit 5 per 1000 ms: five accepted, the sixth refused with the right
 * retry, accepted again exactly when the oldest leaves the window. */
static void
test_rate_exact_limit(void **state)
{
	struct fx *f = *state;
	struct counter_rate_result r;
	int i;

	for (i = 0; i < 5; i++) {
		fake_now = T0 + 100 * (uint64_t)i;
		r = hit(f->cs, "policy:msg:ip:192.0.2.7", 5, 1000);
		assert_true(r.allowed);
		assert_int_equal(r.count, i + 1);
	}
	fake_now = T0 + 500;
	r = hit(f->cs, "policy:msg:ip:192.0.2.7", 5, 1000);
	assert_false(r.allowed);
	assert_int_equal(r.count, 5);
	assert_int_equal(r.retry_ms, 500);
	fake_now = T0 + 999;
	r = hit(f->cs, "policy:msg:ip:192.0.2.7", 5, 1000);
	assert_false(r.allowed);
	assert_int_equal(r.retry_ms, 1);
	fake_now = T0 + 1000;   /* T0 is now outside (T0, T0+1000] */
	r = hit(f->cs, "policy:msg:ip:192.0.2.7", 5, 1000);
	assert_true(r.allowed);
	assert_int_equal(r.count, 5);
	r = hit(f->cs, "policy:msg:ip:192.0.2.7", 5, 1000);
	assert_false(r.allowed);
	assert_int_equal(r.retry_ms, 100);  /* T0+100 leaves at T0+1100 */
	/* another key is independent */
	assert_true(hit(f->cs, "policy:msg:ip:192.0.2.8", 5, 1000).allowed);
}

struct model_key {
	char name[32];
	uint32_t limit;
	uint64_t period;
	uint64_t *acc;          /* accepted timestamps, ascending */
	size_t n;
	uint64_t high;          /* newest recorded, withdrawn ones included */
};

/* model_hit - the brute-force reference: returns the expected result. */
static struct counter_rate_result
model_hit(struct model_key *m, uint64_t now, bool record)
{
	struct counter_rate_result r = { false, 0, 0 };
	size_t i, in = 0, first = m->n;

	if (now < m->high)
		now = m->high;
	for (i = 0; i < m->n; i++) {
		if (m->acc[i] + m->period > now) {
			if (first == m->n)
				first = i;
			in++;
		}
	}
	if (in < m->limit) {
		r.allowed = true;
		r.count = (uint32_t)in + 1;
		m->high = now;
		if (record)
			m->acc[m->n++] = now;
	} else {
		r.count = (uint32_t)in;
		r.retry_ms = m->acc[first + in - m->limit] + m->period - now;
		if (r.retry_ms == 0)
			r.retry_ms = 1;
	}
	return r;
}

/* A random schedule (bursts in the same ms, gaps, clock steps back, hits
 * inside decisions that end refused) agrees call by call with a
 * brute-force model, and no window ever holds more than N accepted. */
static void
test_rate_adversarial(void **state)
{
	struct fx *f = *state;
	struct model_key keys[4] = {
		{ "adv:a", 1, 50, NULL, 0, 0 },
		{ "adv:b", 5, 1000, NULL, 0, 0 },
		{ "adv:c", 17, 700, NULL, 0, 0 },
		{ "adv:d", 3, 10, NULL, 0, 0 },
	};
	struct error err = { "" };
	int step, k, accepted = 0, refused = 0;

	srand(4242);
	for (k = 0; k < 4; k++)
		keys[k].acc = calloc(4000, sizeof(uint64_t));
	for (step = 0; step < 4000; step++) {
		struct model_key *m = &keys[rand() % 4];
		struct counter_rate_result got, want;
		int r = rand() % 100;
		bool withdraw = rand() % 10 == 0;

		if (r < 30)
			;                               /* same ms burst */
		else if (r < 85)
			fake_now += (uint64_t)(rand() % 60);
		else if (r < 95)
			fake_now += (uint64_t)(rand() % 1500);
		else
			fake_now -= (uint64_t)(rand() % 300);  /* steps back */
		want = model_hit(m, fake_now, !withdraw);
		if (withdraw)
			counter_decision_begin(f->cs);
		got = hit(f->cs, m->name, m->limit, m->period);
		if (withdraw)
			assert_int_equal(counter_decision_end(f->cs, false,
			    &err), 0);
		if (got.allowed != want.allowed || got.count != want.count ||
		    got.retry_ms != want.retry_ms)
			fail_msg("step %d key %s: got %d/%u/%llu want %d/%u/%llu",
			    step, m->name, got.allowed, got.count,
			    (unsigned long long)got.retry_ms, want.allowed,
			    want.count, (unsigned long long)want.retry_ms);
		if (got.allowed)
			accepted++;
		else
			refused++;
	}
	for (k = 0; k < 4; k++) {
		assert_true(max_in_window(keys[k].acc, keys[k].n,
		    keys[k].period) <= keys[k].limit);
		free(keys[k].acc);
	}
	/* the schedule exercised both outcomes */
	assert_true(accepted > 500);
	assert_true(refused > 500);
}

/* Refused events are never counted: hammering past the limit does not
 * extend the wait. */
static void
test_rate_refused_not_counted(void **state)
{
	struct fx *f = *state;
	int i;

	assert_true(hit(f->cs, "k", 2, 1000).allowed);
	assert_true(hit(f->cs, "k", 2, 1000).allowed);
	for (i = 0; i < 50; i++) {
		fake_now += 10;
		assert_false(hit(f->cs, "k", 2, 1000).allowed);
	}
	assert_int_equal(count(f->cs, "k", 1000), 2);
	fake_now = T0 + 1000;
	assert_true(hit(f->cs, "k", 2, 1000).allowed);
	assert_true(hit(f->cs, "k", 2, 1000).allowed);
	assert_false(hit(f->cs, "k", 2, 1000).allowed);
}

/* A lowered limit refuses until enough events leave the window. */
static void
test_rate_limit_lowered(void **state)
{
	struct fx *f = *state;
	struct counter_rate_result r;
	int i;

	for (i = 0; i < 5; i++) {
		fake_now = T0 + 10 * (uint64_t)i;
		assert_true(hit(f->cs, "low", 5, 1000).allowed);
	}
	r = hit(f->cs, "low", 3, 1000);
	assert_false(r.allowed);
	assert_int_equal(r.count, 5);
	/* 3 of 5 must leave: T0+20 leaves at T0+1020 */
	assert_int_equal(r.retry_ms, T0 + 1020 - fake_now);
	fake_now = T0 + 1020;
	assert_true(hit(f->cs, "low", 3, 1000).allowed);
}

/* The clock stepping back keeps the log ordered and never widens a
 * window. */
static void
test_rate_clock_backwards(void **state)
{
	struct fx *f = *state;
	struct counter_rate_result r;

	fake_now = T0 + 10000;
	assert_true(hit(f->cs, "back", 3, 1000).allowed);
	fake_now = T0 + 9000;
	assert_true(hit(f->cs, "back", 3, 1000).allowed);
	fake_now = T0 + 9500;
	assert_true(hit(f->cs, "back", 3, 1000).allowed);
	fake_now = T0 + 10500;
	r = hit(f->cs, "back", 3, 1000);
	assert_false(r.allowed);
	assert_int_equal(r.retry_ms, 500);  /* all three recorded at +10000 */
	fake_now = T0 + 11000;
	assert_true(hit(f->cs, "back", 3, 1000).allowed);
}

/* ==== decisions ==== */

/* hit A, hit B, end(refused): A and B unchanged; other writes of the
 * decision (metrics) are kept; end(accepted) keeps the hits. */
static void
test_decision_withdrawal(void **state)
{
	struct fx *f = *state;
	struct error err = { "" };
	uint32_t n;

	assert_true(hit(f->cs, "A", 10, 60000).allowed);

	counter_decision_begin(f->cs);
	assert_true(hit(f->cs, "A", 10, 60000).allowed);
	assert_true(hit(f->cs, "B", 10, 60000).allowed);
	assert_true(hit(f->cs, "A", 10, 60000).allowed);
	/* reads inside the decision see its own writes */
	assert_int_equal(count(f->cs, "A", 60000), 3);
	assert_int_equal(counter_metric_add(f->cs, "rejected_total", 1, &err),
	    0);
	assert_int_equal(counter_decision_end(f->cs, false, &err), 0);
	assert_int_equal(count(f->cs, "A", 60000), 1);
	assert_int_equal(count(f->cs, "B", 60000), 0);

	counter_decision_begin(f->cs);
	assert_true(hit(f->cs, "A", 10, 60000).allowed);
	assert_true(hit(f->cs, "B", 10, 60000).allowed);
	assert_int_equal(counter_decision_end(f->cs, true, &err), 0);
	assert_int_equal(count(f->cs, "A", 60000), 2);
	assert_int_equal(count(f->cs, "B", 60000), 1);

	/* a decision that only read, or did nothing, ends cleanly */
	counter_decision_begin(f->cs);
	n = count(f->cs, "A", 60000);
	assert_int_equal(n, 2);
	assert_int_equal(counter_decision_end(f->cs, false, &err), 0);
	counter_decision_begin(f->cs);
	assert_int_equal(counter_decision_end(f->cs, true, &err), 0);

	/* the metric written by the refused decision was kept */
	{
		struct counter_stats st;

		assert_int_equal(counter_stats(f->cs, &st, &err), 0);
		assert_int_equal(st.entries, 3);     /* A, B, rejected_total */
	}
}

/* Withdrawal removes exactly this decision's timestamp even when another
 * event carries the same millisecond. */
static void
test_decision_withdraw_same_ms(void **state)
{
	struct fx *f = *state;
	struct error err = { "" };

	assert_true(hit(f->cs, "S", 3, 1000).allowed);
	counter_decision_begin(f->cs);
	assert_true(hit(f->cs, "S", 3, 1000).allowed);
	assert_int_equal(counter_decision_end(f->cs, false, &err), 0);
	assert_int_equal(count(f->cs, "S", 1000), 1);
	assert_true(hit(f->cs, "S", 3, 1000).allowed);
	assert_true(hit(f->cs, "S", 3, 1000).allowed);
	assert_false(hit(f->cs, "S", 3, 1000).allowed);
}

/* A withdrawn hit that pruned older events, then a clock step back: the
 * pruned event still bounds the window (the high-water mark survives). */
static void
test_decision_withdraw_clock_back(void **state)
{
	struct fx *f = *state;
	struct error err = { "" };
	struct counter_rate_result r;

	fake_now = T0 + 1000;
	assert_true(hit(f->cs, "W", 1, 100).allowed);
	fake_now = T0 + 1200;   /* prunes T0+1000 when it appends */
	counter_decision_begin(f->cs);
	assert_true(hit(f->cs, "W", 1, 100).allowed);
	assert_int_equal(counter_decision_end(f->cs, false, &err), 0);
	fake_now = T0 + 950;    /* the clock steps back */
	r = hit(f->cs, "W", 1, 100);
	assert_true(r.allowed); /* recorded at T0+1200, not T0+950 */
	r = hit(f->cs, "W", 1, 100);
	assert_false(r.allowed);
	assert_int_equal(r.retry_ms, 100);
	/* an emptied log is swept once its mark leaves the window */
	counter_decision_begin(f->cs);
	assert_true(hit(f->cs, "W2", 1, 100).allowed);
	assert_int_equal(counter_decision_end(f->cs, false, &err), 0);
	fake_now = T0 + 1400;
	assert_int_equal(counter_sweep(f->cs, 10, &err), 2);
}

/* More rate checks in one decision than it can withdraw fail cleanly. */
static void
test_decision_hit_bound(void **state)
{
	struct fx *f = *state;
	struct counter_rate_result r;
	struct error err = { "" };
	char key[32];
	int i, rc = 0;

	counter_decision_begin(f->cs);
	for (i = 0; i < 40 && rc == 0; i++) {
		snprintf(key, sizeof(key), "many:%d", i);
		rc = counter_rate_hit(f->cs, key, 5, 1000, &r, &err);
	}
	assert_int_equal(rc, -1);
	assert_false(r.allowed);
	assert_non_null(strstr(err.text, "in one decision"));
	assert_int_equal(counter_decision_end(f->cs, false, &err), 0);
	assert_int_equal(count(f->cs, "many:0", 1000), 0);
}

/* ==== persistence and processes ==== */

/* Counts survive close and reopen. */
static void
test_persistence(void **state)
{
	struct fx *f = *state;
	int i;

	for (i = 0; i < 3; i++)
		assert_true(hit(f->cs, "persist", 3, 60000).allowed);
	counter_store_close(f->cs);
	fx_open(f, MAP_1M);
	assert_int_equal(count(f->cs, "persist", 60000), 3);
	assert_false(hit(f->cs, "persist", 3, 60000).allowed);
	fake_now += 60000;
	assert_true(hit(f->cs, "persist", 3, 60000).allowed);
}

static uint64_t last_clock;

/* recording_clock - the real clock, remembering the value it gave, which
 * is the timestamp an accepted hit recorded. */
static uint64_t
recording_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	last_clock = (uint64_t)ts.tv_sec * 1000 +
	    (uint64_t)ts.tv_nsec / 1000000;
	return last_clock;
}

#define HAMMER_BATCH 5

/* hammer - child body: hit one key for ms milliseconds in durability
 * mode sync, sending every accepted timestamp down fd; batched: in
 * batches of HAMMER_BATCH decisions, each sent only once its batch has
 * committed (as policyd answers).  Exit status 0 = no error. */
static int
hammer(const char *dir, int fd, int ms, enum counter_sync sync, bool batched)
{
	struct counter_store *cs;
	struct counter_rate_result r;
	struct error err = { "" };
	struct timespec start, now;
	uint64_t held[HAMMER_BATCH];
	size_t nheld = 0, k;
	int i;

	if (counter_store_open(dir, 4 * MAP_1M, false, sync, &cs, &err) != 0)
		return 2;
	counter_set_clock(cs, recording_clock);
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		if (batched)
			counter_batch_begin(cs);
		for (i = 0; i < (batched ? HAMMER_BATCH : 1); i++) {
			counter_decision_begin(cs);
			if (counter_rate_hit(cs, "hammer", 50, 200, &r,
			    &err) != 0) {
				fprintf(stderr, "hammer: %s\n", err.text);
				return 3;
			}
			if (counter_decision_end(cs, r.allowed, &err) != 0)
				return 5;
			if (r.allowed)
				held[nheld++] = last_clock;
		}
		if (batched && counter_batch_end(cs, &err) != 0)
			return 6;
		for (k = 0; k < nheld; k++)
			if (write(fd, &held[k], sizeof(held[k])) !=
			    sizeof(held[k]))
				return 4;
		nheld = 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((now.tv_sec - start.tv_sec) * 1000 +
	    (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
	counter_store_close(cs);
	return 0;
}

/* fill_until_full - inside a decision: new metric keys prefix:N until a
 * write fails, which must be for a full table. */
static void
fill_until_full(struct counter_store *cs, const char *prefix)
{
	struct error err = { "" };
	char key[64];
	int i, rc = 0;

	for (i = 0; i < 100000 && rc == 0; i++) {
		snprintf(key, sizeof(key), "%s:%06d", prefix, i);
		rc = counter_metric_add(cs, key, 1, &err);
	}
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err.text, "full"));
}

/* two_processes - two children hammer one key on the real clock: the
 * union of their accepted timestamps never has more than 50 in any 200
 * ms window. */
static void
two_processes(void **state, enum counter_sync sync, bool batched)
{
	struct fx *f = *state;
	uint64_t *ts = NULL;
	size_t n = 0, cap = 0;
	pid_t pid[2];
	int p[2], i, status;
	ssize_t got;
	uint64_t t;

	/* LMDB handles never cross a fork: the children open their own. */
	counter_store_close(f->cs);
	f->cs = NULL;
	assert_int_equal(pipe(p), 0);
	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		assert_true(pid[i] >= 0);
		if (pid[i] == 0) {
			close(p[0]);
			_exit(hammer(f->dir, p[1], 300, sync, batched));
		}
	}
	close(p[1]);
	while ((got = read(p[0], &t, sizeof(t))) == sizeof(t)) {
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			ts = realloc(ts, cap * sizeof(*ts));
		}
		ts[n++] = t;
	}
	close(p[0]);
	for (i = 0; i < 2; i++) {
		assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	qsort(ts, n, sizeof(*ts), cmp_u64);
	/* 300 ms at 50 per 200 ms: at least one full window's worth */
	assert_true(n >= 50);
	assert_true(max_in_window(ts, n, 200) <= 50);
	free(ts);
	fx_open(f, MAP_1M);
}

/* Two processes, one decision per commit, SAFE mode. */
static void
test_two_processes(void **state)
{
	two_processes(state, COUNTER_SYNC_SAFE, false);
}

/* Two processes, batches of decisions, FAST mode (MDB_WRITEMAP): the
 * bound holds as well (policyd's configuration under counters.sync:
 * fast). */
static void
test_two_processes_fast_batched(void **state)
{
	two_processes(state, COUNTER_SYNC_FAST, true);
}

/* child_count - in a child process (LMDB handles never cross a fork,
 * and one process must not open a table twice): the committed count of
 * key, as the exit status. */
static int
child_count(const char *dir, const char *key)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct counter_store *cs;
		struct error err;
		uint32_t n;

		if (counter_store_open(dir, 0, true, COUNTER_SYNC_SAFE, &cs,
		    &err) != 0)
			_exit(255);
		counter_set_clock(cs, fake_clock);
		if (counter_event_count(cs, key, 60000, &n, &err) != 0)
			_exit(254);
		_exit(n > 200 ? 253 : (int)n);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* A batch: its decisions see each other (the limit is exact across
 * them), a refused one withdraws only its own hits, and nothing is
 * visible to another process before counter_batch_end. */
static void
test_batch_group_commit(void **state)
{
	struct fx *f = *state;
	struct error err = { "" };
	int i, allowed = 0;

	assert_true(counter_store_batches(f->cs));
	assert_false(counter_store_batches(NULL));
	counter_batch_begin(f->cs);
	for (i = 0; i < 5; i++) {
		counter_decision_begin(f->cs);
		if (hit(f->cs, "lim", 3, 60000).allowed)
			allowed++;
		assert_int_equal(counter_decision_end(f->cs, true, &err), 0);
	}
	assert_int_equal(allowed, 3);
	counter_decision_begin(f->cs);
	assert_true(hit(f->cs, "other", 10, 60000).allowed);
	assert_true(hit(f->cs, "third", 10, 60000).allowed);
	assert_int_equal(counter_decision_end(f->cs, false, &err), 0);
	counter_decision_begin(f->cs);
	assert_true(hit(f->cs, "third", 10, 60000).allowed);
	assert_int_equal(counter_decision_end(f->cs, true, &err), 0);
	assert_int_equal(count(f->cs, "lim", 60000), 3);
	assert_int_equal(count(f->cs, "other", 60000), 0);
	assert_int_equal(count(f->cs, "third", 60000), 1);
	/* uncommitted: another process sees nothing yet */
	assert_int_equal(child_count(f->dir, "lim"), 0);
	assert_int_equal(counter_batch_end(f->cs, &err), 0);
	assert_int_equal(child_count(f->dir, "lim"), 3);
	assert_int_equal(child_count(f->dir, "third"), 1);
	/* an empty batch, and writes outside any decision inside one */
	counter_batch_begin(f->cs);
	assert_int_equal(counter_batch_end(f->cs, &err), 0);
	counter_batch_begin(f->cs);
	assert_int_equal(counter_metric_add(f->cs, "m", 2, &err), 0);
	assert_int_equal(counter_batch_end(f->cs, &err), 0);
	assert_int_equal(child_count(f->dir, "third"), 1);
}

/* A failure anywhere in a batch loses the whole batch, and says so: the
 * decisions before it (already "accepted") were never committed, later
 * calls fail at once, never allow; the next batch works. */
static void
test_batch_failure_loses_all(void **state)
{
	struct fx *f = *state;
	struct counter_rate_result r;
	struct error err = { "" };

	fx_fresh(f, "small", 64 * 1024);
	assert_false(counter_batch_failed(f->cs));      /* no batch */
	counter_batch_begin(f->cs);
	counter_decision_begin(f->cs);
	assert_true(hit(f->cs, "early", 5, 60000).allowed);
	assert_int_equal(counter_decision_end(f->cs, true, &err), 0);
	assert_false(counter_batch_failed(f->cs));
	counter_decision_begin(f->cs);
	fill_until_full(f->cs, "fill");
	assert_int_equal(counter_decision_end(f->cs, true, &err), -1);
	/* known lost at once: policyd ends the batch here */
	assert_true(counter_batch_failed(f->cs));
	counter_decision_begin(f->cs);
	assert_int_equal(counter_rate_hit(f->cs, "late", 5, 60000, &r, &err),
	    -1);
	assert_false(r.allowed);
	assert_int_equal(counter_decision_end(f->cs, true, &err), -1);
	assert_int_equal(counter_batch_end(f->cs, &err), -1);
	assert_false(counter_batch_failed(f->cs));
	assert_int_equal(count(f->cs, "early", 60000), 0);
	counter_batch_begin(f->cs);
	counter_decision_begin(f->cs);
	assert_true(hit(f->cs, "early", 5, 60000).allowed);
	assert_int_equal(counter_decision_end(f->cs, true, &err), 0);
	assert_int_equal(counter_batch_end(f->cs, &err), 0);
	assert_int_equal(count(f->cs, "early", 60000), 1);
}

/* FAST mode (MDB_WRITEMAP | MDB_NOSYNC): the same table, readable by a
 * SAFE opener after close (and by elemta-stat meanwhile). */
static void
test_fast_mode_persists(void **state)
{
	struct fx *f = *state;
	struct error err = { "" };

	counter_store_close(f->cs);
	assert_int_equal(counter_store_open(f->dir, MAP_1M, false,
	    COUNTER_SYNC_FAST, &f->cs, &err), 0);
	/* a commit costs no system call here: nothing to group */
	assert_false(counter_store_batches(f->cs));
	counter_set_clock(f->cs, fake_clock);
	assert_true(hit(f->cs, "fast", 2, 60000).allowed);
	assert_true(hit(f->cs, "fast", 2, 60000).allowed);
	assert_false(hit(f->cs, "fast", 2, 60000).allowed);
	assert_int_equal(counter_flush(f->cs, &err), 0);
	assert_int_equal(child_count(f->dir, "fast"), 2);
	counter_store_close(f->cs);
	fx_open(f, MAP_1M);
	assert_int_equal(count(f->cs, "fast", 60000), 2);
	assert_false(hit(f->cs, "fast", 2, 60000).allowed);
}

struct seen {
	int n;
	int stop_after;
	char keys[8][64];
	struct counter_entry last;
	struct counter_store *cs;
	int nested_rc;
};

/* collect - counter_visit callback recording keys in order. */
static int
collect(const struct counter_entry *e, void *arg)
{
	struct seen *s = arg;

	if (s->n < 8)
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", e->key);
	s->n++;
	s->last = *e;
	s->last.key = NULL;
	if (s->cs != NULL) {
		struct error err;
		uint32_t c;

		s->nested_rc = counter_event_count(s->cs, "x", 1000, &c, &err);
	}
	return s->stop_after > 0 && s->n >= s->stop_after;
}

/* ==== bucketed windows (limits above 1024) ==== */

/* A bursty random load against a ring-kept key on the fake clock: the
 * accepted timestamps never exceed the limit in any window (brute force
 * over the accepted set), and a steady client at 89% of the limit on a
 * ring-kept key is never refused. */
static void
test_ring_bound_and_steady_client(void **state)
{
	struct fx *f = *state;
	const uint32_t limit = 2000;
	const uint64_t period = 10000;
	uint64_t *acc = calloc(200000, sizeof(*acc)), t_start;
	size_t nacc = 0, i;
	unsigned seed = 7;

	assert_non_null(acc);
	/* (batches of 1000 steps: one commit each, not one per hit) */
	for (i = 0; i < 40000; i++) {
		/* bursts of 0..7 events per millisecond step, now and then
		 * a 30 ms gap: every window is pushed far past the limit */
		unsigned burst = (seed = seed * 1103515245u + 12345u) >> 29;

		if (i % 1000 == 0)
			counter_batch_begin(f->cs);
		fake_now += ((seed >> 8) % 31 == 0) ? 30 : 1;
		for (unsigned b = 0; b < burst && nacc < 200000; b++)
			if (hit(f->cs, "ring:bursty", limit, period).allowed)
				acc[nacc++] = fake_now;
		if (i % 1000 == 999)
			assert_int_equal(counter_batch_end(f->cs, NULL), 0);
	}
	assert_true(nacc > 2 * limit);
	assert_true(max_in_window(acc, nacc, period) <= limit);
	free(acc);

	/* 1780 per 10 s (89%), evenly spaced, for 40 s */
	t_start = fake_now;
	counter_batch_begin(f->cs);
	for (i = 0; i < 4 * 1780; i++) {
		fake_now = t_start + (uint64_t)(i + 1) * period / 1780;
		assert_true(hit(f->cs, "ring:steady", limit, period).allowed);
	}
	assert_int_equal(counter_batch_end(f->cs, NULL), 0);
}

/* Withdrawal, retry_ms, inspection and peeking on a ring-kept key. */
static void
test_ring_withdraw_retry_visit(void **state)
{
	struct fx *f = *state;
	struct counter_rate_result r, r2;
	struct error err = { "" };
	struct seen s;
	uint32_t i;

	counter_decision_begin(f->cs);
	assert_true(hit(f->cs, "ring:w", 1500, 60000).allowed);
	assert_int_equal(counter_decision_end(f->cs, false, &err), 0);
	assert_int_equal(count(f->cs, "ring:w", 60000), 0);
	counter_batch_begin(f->cs);
	for (i = 0; i < 1500; i++) {
		fake_now += 10;
		assert_true(hit(f->cs, "ring:w", 1500, 60000).allowed);
	}
	assert_int_equal(counter_batch_end(f->cs, NULL), 0);
	assert_int_equal(count(f->cs, "ring:w", 60000), 1500);
	assert_int_equal(counter_rate_hit(f->cs, "ring:w", 1500, 60000, &r,
	    &err), 0);
	assert_false(r.allowed);
	assert_int_equal(r.count, 1500);
	/* the oldest bucket leaves by P plus one bucket, and then a hit is
	 * allowed again */
	assert_true(r.retry_ms >= 1 && r.retry_ms <= 60000 + 60000 / 32 + 1);
	/* ... and not a millisecond earlier (refused hits are not counted) */
	fake_now += r.retry_ms - 1;
	assert_false(hit(f->cs, "ring:w", 1500, 60000).allowed);
	fake_now += 1;
	r2 = hit(f->cs, "ring:w", 1500, 60000);
	assert_true(r2.allowed);

	memset(&s, 0, sizeof(s));
	assert_int_equal(counter_visit(f->cs, COUNTER_KIND_RATE, "ring:w",
	    collect, &s, &err), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.last.limit, 1500);
	assert_int_equal(s.last.count, r2.count);
	assert_int_equal(s.last.newest_ms, fake_now);
	assert_true(s.last.oldest_ms > 0 && s.last.oldest_ms <= fake_now);
	/* a stale ring is swept like a log */
	fake_now += 2 * 60000 + 5000;
	assert_true(counter_sweep(f->cs, 100, &err) >= 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(counter_visit(f->cs, COUNTER_KIND_RATE, "ring:w",
	    collect, &s, &err), 0);
	assert_int_equal(s.n, 0);
}

/* A key whose limit crosses 1024 either way keeps its events: log to
 * ring exactly, ring to log conservatively (events stay counted at least
 * as long as they really are in the window). */
static void
test_ring_log_conversion(void **state)
{
	struct fx *f = *state;
	uint32_t i;

	for (i = 0; i < 300; i++) {
		fake_now += 5;
		assert_true(hit(f->cs, "conv", 500, 20000).allowed);
	}
	assert_int_equal(hit(f->cs, "conv", 5000, 20000).count, 301);
	assert_int_equal(count(f->cs, "conv", 20000), 301);
	/* back to a small limit: 301 >= 200 until they leave the window */
	assert_false(hit(f->cs, "conv", 200, 20000).allowed);
	fake_now += 10000;
	assert_false(hit(f->cs, "conv", 200, 20000).allowed);
	fake_now += 10000 + 20000 / 32 + 1;
	assert_true(hit(f->cs, "conv", 200, 20000).allowed);
	assert_int_equal(count(f->cs, "conv", 20000), 1);

	/* counter_event_add on a key a large limit made a ring (plugins may
	 * share keys between the two calls): it becomes a log and counts on */
	{
		struct error err = { "" };
		uint32_t n = 0;

		for (i = 0; i < 3; i++)
			assert_true(hit(f->cs, "shared", 5000, 20000).allowed);
		assert_int_equal(counter_event_add(f->cs, "shared", 100, 20000,
		    &n, &err), 0);
		assert_int_equal(n, 4);
		assert_int_equal(count(f->cs, "shared", 20000), 4);
	}
}

/* ==== full and resized maps ==== */

/* A tiny map grows (up to 16x) and then reports "counter table full"
 * cleanly; data already stored stays readable and writable. */
static void
test_full_map_grows_then_refuses(void **state)
{
	struct fx *f = *state;
	struct counter_rate_result r;
	struct counter_stats st;
	struct error err = { "" };
	char key[64];
	int i, rc = 0;

	fx_fresh(f, "small", 64 * 1024);
	assert_int_equal(counter_stats(f->cs, &st, &err), 0);
	assert_int_equal(st.map_size, 64 * 1024);
	for (i = 0; i < 100000 && rc == 0; i++) {
		snprintf(key, sizeof(key), "full:%06d", i);
		rc = counter_rate_hit(f->cs, key, 10, 3600000, &r, &err);
	}
	assert_int_equal(rc, -1);
	assert_false(r.allowed);
	assert_string_equal(err.text, "counter table full");
	/* reported once by the store: callers may stay quiet */
	assert_true(counter_store_unavailable(f->cs));
	assert_true(i > 1000);          /* it did grow first */
	assert_int_equal(counter_stats(f->cs, &st, &err), 0);
	assert_int_equal(st.map_size, 16 * 64 * 1024);
	assert_int_equal(st.entries, (uint64_t)i - 1);
	assert_int_equal(count(f->cs, "full:000000", 3600000), 1);
	/* still full: refused again, cleanly */
	assert_int_equal(counter_rate_hit(f->cs, "new", 10, 3600000, &r,
	    &err), -1);
	assert_false(r.allowed);
	/* once the entries expire the table recovers by itself: the
	 * full-map sweep deletes them within a small reserve */
	fake_now += 3600000;
	assert_true(hit(f->cs, "new", 10, 3600000).allowed);
	assert_false(counter_store_unavailable(f->cs));
	assert_int_equal(counter_stats(f->cs, &st, &err), 0);
	assert_true(st.map_size <= 17 * 64 * 1024);
	assert_true(st.entries < (uint64_t)i - 1);
	/* and keeps recovering as long as stale entries remain */
	for (i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "again:%06d", i);
		if (counter_rate_hit(f->cs, key, 10, 3600000, &r, &err) != 0)
			fail_msg("%d: %s", i, err.text);
	}
	assert_int_equal(counter_stats(f->cs, &st, &err), 0);
	assert_true(st.map_size <= 17 * 64 * 1024);
}

/* A full map inside a decision fails the decision (caller tempfails),
 * makes room, and the next decision works. */
static void
test_full_map_in_decision(void **state)
{
	struct fx *f = *state;
	struct counter_rate_result r;
	struct error err = { "" };

	fx_fresh(f, "small", 64 * 1024);
	counter_decision_begin(f->cs);
	fill_until_full(f->cs, "dec");
	/* later calls in the failed decision fail too, never allow */
	assert_int_equal(counter_rate_hit(f->cs, "dec:x", 5, 1000, &r, &err),
	    -1);
	assert_false(r.allowed);
	assert_int_equal(counter_decision_end(f->cs, true, &err), -1);
	/* the dropped decision left nothing behind */
	assert_int_equal(count(f->cs, "dec:x", 1000), 0);
	counter_decision_begin(f->cs);
	assert_true(hit(f->cs, "dec:x", 5, 1000).allowed);
	assert_int_equal(counter_decision_end(f->cs, true, &err), 0);
	assert_int_equal(count(f->cs, "dec:x", 1000), 1);
}

/* A full map of stale entries is swept before it is grown. */
static void
test_full_map_sweeps_stale(void **state)
{
	struct fx *f = *state;
	struct counter_stats st;
	struct error err = { "" };
	char key[64];
	int i, filled;

	fx_fresh(f, "small", 64 * 1024);
	/* fill the initial map with short-lived entries */
	for (i = 0; ; i++) {
		snprintf(key, sizeof(key), "stale:%06d", i);
		hit(f->cs, key, 10, 1000);
		assert_int_equal(counter_stats(f->cs, &st, &err), 0);
		if (st.map_size > 64 * 1024)
			break;
	}
	filled = i;
	fake_now += 5000;       /* every entry is stale now */
	/* add fresh entries until the grown map is full: the stale ones are
	 * swept then, instead of a second growth */
	for (i = 1; i < 20 * filled; i++) {
		snprintf(key, sizeof(key), "fresh:%06d", i);
		hit(f->cs, key, 10, 1000);
		assert_int_equal(counter_stats(f->cs, &st, &err), 0);
		assert_true(st.map_size < 256 * 1024);  /* no second growth */
		if (st.entries < (uint64_t)filled + 1 + (uint64_t)i)
			break;
	}
	/* only the fresh entries are left, and the sweep was counted */
	assert_int_equal(st.entries, (uint64_t)i + 1);
	assert_int_equal(count(f->cs, "fresh:000001", 1000), 1);
	{
		struct seen s;

		memset(&s, 0, sizeof(s));
		assert_int_equal(counter_visit(f->cs, COUNTER_KIND_METRIC,
		    "elemta_counter_full_sweeps_total", collect, &s, &err), 0);
		assert_int_equal(s.n, 1);
		assert_int_equal(s.last.value, 1);
	}
}

/* Another process grows the map: this one adopts it (MDB_MAP_RESIZED)
 * for reads and writes. */
static void
test_map_resized_by_other(void **state)
{
	struct fx *f = *state;
	struct counter_stats st;
	struct error err = { "" };
	pid_t pid;
	int status;

	fx_fresh(f, "small", 64 * 1024);
	assert_true(hit(f->cs, "mine", 5, 3600000).allowed);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct counter_store *cs;
		struct counter_rate_result r;
		char key[64];
		int i;

		if (counter_store_open(f->dir, 64 * 1024, false, COUNTER_SYNC_SAFE, &cs, &err))
			_exit(2);
		counter_set_clock(cs, fake_clock);
		for (i = 0; i < 3000; i++) {
			snprintf(key, sizeof(key), "theirs:%06d", i);
			if (counter_rate_hit(cs, key, 10, 3600000, &r, &err))
				_exit(3);
		}
		counter_store_close(cs);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(count(f->cs, "theirs:002999", 3600000), 1);
	assert_true(hit(f->cs, "mine", 5, 3600000).allowed);
	assert_int_equal(count(f->cs, "mine", 3600000), 2);
	assert_int_equal(counter_stats(f->cs, &st, &err), 0);
	assert_true(st.map_size > 64 * 1024);
	assert_int_equal(st.entries, 3001);
}

/* ==== sweeping ==== */

/* Stale keys are removed, bounded per call, live keys kept; repeated
 * calls cover the whole table. */
static void
test_sweep(void **state)
{
	struct fx *f = *state;
	struct error err = { "" };
	struct counter_stats st;
	char key[32];
	long total = 0, n;
	int i;

	for (i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "a%d", i);
		hit(f->cs, key, 5, 1000);
	}
	for (i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "b%d", i);
		hit(f->cs, key, 5, 100000);
	}
	assert_int_equal(counter_sweep(f->cs, 100, &err), 0);   /* all live */
	fake_now += 2000;
	for (i = 0; i < 10; i++) {
		n = counter_sweep(f->cs, 3, &err);
		assert_true(n >= 0 && n <= 3);
		total += n;
	}
	assert_int_equal(total, 10);
	assert_int_equal(counter_stats(f->cs, &st, &err), 0);
	assert_int_equal(st.entries, 5);
	assert_int_equal(count(f->cs, "b0", 100000), 1);
	assert_int_equal(counter_sweep(f->cs, 0, &err), 0);
}

/* ==== reputation and metrics ==== */

/* Absent is 50; adjust decays with its half-life then adds; get decays
 * with 24 h; the score stays in 0..100. */
static void
test_reputation(void **state)
{
	struct fx *f = *state;
	struct error err = { "" };
	double s;

	assert_int_equal(counter_reputation_get(f->cs, "rep:a", &s, &err), 0);
	assert_true(fabs(s - 50.0) < 1e-9);
	assert_int_equal(counter_reputation_adjust(f->cs, "rep:a", -20, 3600,
	    &err), 0);
	assert_int_equal(counter_reputation_get(f->cs, "rep:a", &s, &err), 0);
	assert_true(fabs(s - 30.0) < 1e-9);
	fake_now += 3600 * 1000;        /* one adjust half-life */
	assert_int_equal(counter_reputation_adjust(f->cs, "rep:a", 0, 3600,
	    &err), 0);
	assert_int_equal(counter_reputation_get(f->cs, "rep:a", &s, &err), 0);
	assert_true(fabs(s - 40.0) < 1e-9);
	fake_now += 86400 * 1000;       /* one get half-life */
	assert_int_equal(counter_reputation_get(f->cs, "rep:a", &s, &err), 0);
	assert_true(fabs(s - 45.0) < 1e-9);
	assert_int_equal(counter_reputation_adjust(f->cs, "rep:a", 1000, 3600,
	    &err), 0);
	assert_int_equal(counter_reputation_get(f->cs, "rep:a", &s, &err), 0);
	assert_true(fabs(s - 100.0) < 1e-9);
	assert_int_equal(counter_reputation_adjust(f->cs, "rep:a", -1000,
	    3600, &err), 0);
	assert_int_equal(counter_reputation_get(f->cs, "rep:a", &s, &err), 0);
	assert_true(fabs(s) < 1e-9);
	assert_int_equal(counter_reputation_adjust(f->cs, "rep:a", 1, 0,
	    &err), -1);
	assert_int_equal(counter_reputation_adjust(f->cs, "rep:a", NAN, 10,
	    &err), -1);
	/* reset forgets it */
	assert_int_equal(counter_key_reset(f->cs, "rep:a", &err), 0);
	assert_int_equal(counter_reputation_get(f->cs, "rep:a", &s, &err), 0);
	assert_true(fabs(s - 50.0) < 1e-9);
}

/* Metrics add with saturation and show through counter_visit. */
static void
test_metrics(void **state)
{
	struct fx *f = *state;
	struct error err = { "" };
	struct seen s;

	assert_int_equal(counter_metric_add(f->cs, "m_total", 5, &err), 0);
	assert_int_equal(counter_metric_add(f->cs, "m_total", 7, &err), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(counter_visit(f->cs, COUNTER_KIND_METRIC, NULL,
	    collect, &s, &err), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.last.value, 12);
	assert_int_equal(s.last.kind, COUNTER_KIND_METRIC);
	assert_string_equal(counter_kind_name(s.last.kind), "metric");
	assert_int_equal(counter_metric_add(f->cs, "m_total", UINT64_MAX,
	    &err), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(counter_visit(f->cs, COUNTER_KIND_METRIC, "m_",
	    collect, &s, &err), 0);
	assert_true(s.last.value == UINT64_MAX);
}

/* ==== inspection ==== */

/* Prefix, key order, early stop, entry fields, callbacks may not call
 * back into the store, unknown kinds refused. */
static void
test_visit(void **state)
{
	struct fx *f = *state;
	struct error err = { "" };
	struct seen s;
	struct counter_stats st;

	hit(f->cs, "p:b", 5, 1000);
	fake_now += 100;
	hit(f->cs, "p:a", 5, 1000);
	fake_now += 100;
	hit(f->cs, "p:a", 5, 1000);
	hit(f->cs, "q:a", 5, 1000);
	assert_int_equal(counter_event_add(f->cs, "p:c", 10, 1000, NULL, &err),
	    0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(counter_visit(f->cs, COUNTER_KIND_RATE, "p:", collect,
	    &s, &err), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.keys[0], "p:a");
	assert_string_equal(s.keys[1], "p:b");
	assert_string_equal(s.keys[2], "p:c");
	assert_int_equal(s.last.limit, 0);          /* event log */
	memset(&s, 0, sizeof(s));
	s.stop_after = 1;
	assert_int_equal(counter_visit(f->cs, COUNTER_KIND_RATE, "p:", collect,
	    &s, &err), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.last.count, 2);
	assert_int_equal(s.last.limit, 5);
	assert_int_equal(s.last.period_ms, 1000);
	assert_int_equal(s.last.oldest_ms, T0 + 100);
	assert_int_equal(s.last.newest_ms, T0 + 200);
	/* counts are taken at now: one of p:a's events has left */
	fake_now = T0 + 1150;
	memset(&s, 0, sizeof(s));
	s.stop_after = 1;
	assert_int_equal(counter_visit(f->cs, COUNTER_KIND_RATE, "p:a", collect,
	    &s, &err), 0);
	assert_int_equal(s.last.count, 1);
	assert_int_equal(s.last.oldest_ms, T0 + 200);
	/* no re-entry from the callback */
	memset(&s, 0, sizeof(s));
	s.cs = f->cs;
	assert_int_equal(counter_visit(f->cs, COUNTER_KIND_RATE, NULL, collect,
	    &s, &err), 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.nested_rc, -1);
	assert_int_equal(counter_visit(f->cs, COUNTER_KIND_COUNT, NULL, collect,
	    &s, &err), -1);
	assert_int_equal(counter_visit(f->cs, (enum counter_kind)-1, NULL,
	    collect, &s, &err), -1);
	/* the one spelling of each kind (the LMDB database names, elemta-stat) */
	assert_string_equal(counter_kind_name(COUNTER_KIND_RATE), "rate");
	assert_string_equal(counter_kind_name(COUNTER_KIND_REP), "rep");
	assert_string_equal(counter_kind_name(COUNTER_KIND_METRIC), "metric");
	assert_string_equal(counter_kind_name(COUNTER_KIND_COUNT), "?");
	assert_int_equal(counter_stats(f->cs, &st, &err), 0);
	assert_int_equal(st.entries, 4);
	assert_int_equal(st.map_size, MAP_1M);
	assert_true(st.used_bytes >= 4 * 4096 && st.used_bytes <= MAP_1M);
}

/* Failure-event logs keep at most `keep` newest and count the window. */
static void
test_event_log(void **state)
{
	struct fx *f = *state;
	struct error err = { "" };
	uint32_t c, i;

	for (i = 1; i <= 5; i++) {
		fake_now += 10;
		assert_int_equal(counter_event_add(f->cs, "auth:fail:1.2.3.4",
		    3, 10000, &c, &err), 0);
		assert_int_equal(c, i < 3 ? i : 3);
	}
	assert_int_equal(count(f->cs, "auth:fail:1.2.3.4", 10000), 3);
	assert_int_equal(count(f->cs, "auth:fail:1.2.3.4", 15), 2);
	fake_now += 10000;
	assert_int_equal(count(f->cs, "auth:fail:1.2.3.4", 10000), 0);
	assert_int_equal(count(f->cs, "absent", 10000), 0);
	assert_int_equal(counter_event_add(f->cs, "x", 0, 1000, &c, &err), -1);
	assert_int_equal(counter_key_reset(f->cs, "auth:fail:1.2.3.4", &err),
	    0);
	assert_int_equal(counter_key_reset(f->cs, "auth:fail:1.2.3.4", &err),
	    0);
}

/* Keys, limits and periods out of range are errors, never allows. */
static void
test_input_limits(void **state)
{
	struct fx *f = *state;
	struct counter_rate_result r;
	struct error err = { "" };
	char key[COUNTER_KEY_MAX + 2];

	memset(key, 'k', sizeof(key));
	key[COUNTER_KEY_MAX + 1] = '\0';
	assert_int_equal(counter_rate_hit(f->cs, key, 5, 1000, &r, &err), -1);
	assert_false(r.allowed);
	assert_non_null(strstr(err.text, "longer than"));
	assert_int_equal(counter_metric_add(f->cs, key, 1, &err), -1);
	key[COUNTER_KEY_MAX] = '\0';
	assert_true(hit(f->cs, key, 5, 1000).allowed);
	assert_int_equal(count(f->cs, key, 1000), 1);
	assert_int_equal(counter_rate_hit(f->cs, "", 5, 1000, &r, &err), -1);
	assert_int_equal(counter_rate_hit(f->cs, NULL, 5, 1000, &r, &err), -1);
	assert_int_equal(counter_rate_hit(f->cs, "k", 0, 1000, &r, &err), -1);
	assert_false(r.allowed);
	assert_int_equal(counter_rate_hit(f->cs, "k", COUNTER_LIMIT_MAX + 1,
	    1000, &r, &err), -1);
	assert_int_equal(counter_rate_hit(f->cs, "k", COUNTER_LIMIT_MAX,
	    1000, &r, &err), 0);
	assert_int_equal(counter_rate_hit(f->cs, "k", 5, 0, &r, &err), -1);
	/* arbitrary bytes in keys are fine and escaped in messages */
	assert_true(hit(f->cs, "policy:sender:\"a b\"\x01@example.org", 5,
	    1000).allowed);
}

/* ==== read-only ==== */

/* Read-only open of a missing or empty directory says so clearly. */
static void
test_readonly_missing(void **state)
{
	struct fx *f = *state;
	struct counter_store *cs = NULL;
	struct error err = { "" };
	char dir[128], want[192];

	snprintf(dir, sizeof(dir), "%s/nothere", f->dir);
	assert_int_equal(counter_store_open(dir, MAP_1M, true, COUNTER_SYNC_SAFE, &cs, &err), -1);
	assert_null(cs);
	snprintf(want, sizeof(want), "no counter table at %s", dir);
	assert_string_equal(err.text, want);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(counter_store_open(dir, MAP_1M, true, COUNTER_SYNC_SAFE, &cs, &err), -1);
	assert_string_equal(err.text, want);
	/* read-only never creates anything */
	assert_int_equal(access(f->dir, F_OK), 0);
	snprintf(want, sizeof(want), "%s/data.mdb", dir);
	assert_int_equal(access(want, F_OK), -1);
}

/* A read-only store works while a writer holds its write transaction,
 * and refuses writes. */
static void
test_readonly_while_writing(void **state)
{
	struct fx *f = *state;
	struct error err = { "" };
	pid_t pid;
	int status;

	hit(f->cs, "ro:a", 5, 3600000);
	hit(f->cs, "ro:a", 5, 3600000);
	counter_decision_begin(f->cs);
	hit(f->cs, "ro:b", 5, 3600000);         /* write txn now held */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct counter_store *cs;
		struct counter_rate_result r;
		struct seen s;

		if (counter_store_open(f->dir, 0, true, COUNTER_SYNC_SAFE, &cs, &err) != 0)
			_exit(2);
		counter_set_clock(cs, fake_clock);
		memset(&s, 0, sizeof(s));
		if (counter_visit(cs, COUNTER_KIND_RATE, "ro:", collect, &s,
		    &err) != 0)
			_exit(3);
		/* ro:b is not committed yet */
		if (s.n != 1 || s.last.count != 2)
			_exit(4);
		if (counter_rate_hit(cs, "ro:a", 5, 3600000, &r, &err) != -1 ||
		    strstr(err.text, "read-only") == NULL || r.allowed)
			_exit(5);
		counter_store_close(cs);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(counter_decision_end(f->cs, true, &err), 0);
	assert_int_equal(count(f->cs, "ro:b", 3600000), 1);
}

/* main - run every test; warnings (map growth) go to stderr. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_rate_exact_limit),
		T(test_rate_adversarial),
		T(test_rate_refused_not_counted),
		T(test_rate_limit_lowered),
		T(test_rate_clock_backwards),
		T(test_decision_withdrawal),
		T(test_decision_withdraw_same_ms),
		T(test_decision_withdraw_clock_back),
		T(test_decision_hit_bound),
		T(test_persistence),
		T(test_two_processes),
		T(test_two_processes_fast_batched),
		T(test_batch_group_commit),
		T(test_batch_failure_loses_all),
		T(test_fast_mode_persists),
		T(test_ring_bound_and_steady_client),
		T(test_ring_withdraw_retry_visit),
		T(test_ring_log_conversion),
		T(test_full_map_grows_then_refuses),
		T(test_full_map_in_decision),
		T(test_full_map_sweeps_stale),
		T(test_map_resized_by_other),
		T(test_sweep),
		T(test_reputation),
		T(test_metrics),
		T(test_visit),
		T(test_event_log),
		T(test_input_limits),
		T(test_readonly_missing),
		T(test_readonly_while_writing),
#undef T
	};

	log_init("test_counter", true, LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
