/*
 * test_counter_redis.c - unit tests for common/counter_redis.c, the Redis
 * backend of counter.h, against a real redis-server this program starts
 * on a free loopback port (every test is skipped when redis-server is not
 * installed).  One test per promise: exact sliding windows across two
 * stores and two processes (the server's clock is real, so windows are a
 * few hundred ms of real time), refused decisions withdrawn, event counts,
 * reputation, metrics, inspection (SCAN, key order, glob-safe prefixes),
 * expiries on every key, a lost script cache, AUTH and SELECT, and the
 * faults: an unreachable or silent server fails calls within the timeout,
 * fails at once while backing off, recovers when the server returns, and
 * with fail_mode: accept lets decisions continue.
 * Each test uses its own key prefix, so tests never see each other's keys.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "config.h"
#include "counter.h"
#include "error.h"
#include "log.h"

#define TIMEOUT_MS 200
#define SLACK_MS 300            /* scheduling on a shared machine */

/* The server every test shares (started by group_setup). */
static char redis_bin[256];
static pid_t redis_pid = -1;
static unsigned redis_port;
static int test_seq;

/* ==== helpers ==== */

/* now_ms - realtime ms (the server's clock is the same machine's). */
static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* mono_ms - monotonic ms, for durations. */
static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* sleep_ms - sleep ms milliseconds. */
static void
sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* find_redis - redis-server on PATH (or the Debian location). */
static bool
find_redis(void)
{
	const char *path = getenv("PATH");
	char dirs[4096];

	if (access("/usr/bin/redis-server", X_OK) == 0) {
		str_copy(redis_bin, "/usr/bin/redis-server", sizeof(redis_bin));
		return true;
	}
	str_copy(dirs, path != NULL ? path : "", sizeof(dirs));
	for (char *d = strtok(dirs, ":"); d != NULL; d = strtok(NULL, ":")) {
		snprintf(redis_bin, sizeof(redis_bin), "%s/redis-server", d);
		if (access(redis_bin, X_OK) == 0)
			return true;
	}
	return false;
}

/* free_port - a loopback TCP port that was free a moment ago. */
static unsigned
free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* raw - a plain hiredis connection to port (for checks and set-up). */
static redisContext *
raw(unsigned port)
{
	struct timeval tv = { 1, 0 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", (int)port, tv);

	if (c != NULL && c->err != 0) {
		redisFree(c);
		return NULL;
	}
	return c;
}

/* server_start - redis-server on port (extra: NULL-terminated arguments
 * appended); waits until it answers PING.  Returns its pid or -1. */
static pid_t
server_start(unsigned port, const char *extra1, const char *extra2)
{
	char p[16];
	pid_t pid;

	snprintf(p, sizeof(p), "%u", port);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, 1);
		dup2(fd, 2);
		execl(redis_bin, "redis-server", "--port", p, "--bind",
		    "127.0.0.1", "--save", "", "--appendonly", "no",
		    "--daemonize", "no", extra1, extra2, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		redisContext *c = raw(port);
		int status;

		if (c != NULL) {
			redisFree(c);
			return pid;
		}
		if (waitpid(pid, &status, WNOHANG) == pid)
			return -1;
		sleep_ms(25);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

/* server_stop - stop a server this program started. */
static void
server_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* cfg_make - a config for the redis backend at port with a prefix of
 * its own (free with free()). */
static struct config *
cfg_make(unsigned port, const char *prefix, bool accept)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));

	cfg->counters.backend = CONFIG_BACKEND_REDIS;
	snprintf(cfg->counters.redis.address,
	    sizeof(cfg->counters.redis.address), "127.0.0.1:%u", port);
	str_copy(cfg->counters.redis.key_prefix, prefix,
	    sizeof(cfg->counters.redis.key_prefix));
	cfg->counters.redis.timeout_ms = TIMEOUT_MS;
	cfg->policyd.fail_mode = accept ? CONFIG_FAIL_ACCEPT :
	    CONFIG_FAIL_TEMPFAIL;
	return cfg;
}

struct fx {
	char prefix[32];
	struct config *cfg;
	struct counter_store *cs;
};

/* open_store - a writable store on the shared server. */
static struct counter_store *
open_store(struct fx *f)
{
	struct counter_store *cs = NULL;
	struct error err = { "" };

	if (counter_store_open_config(f->cfg, false, &cs, &err) != 0)
		fail_msg("open: %s", err.text);
	assert_string_equal(counter_store_backend(cs), "redis");
	assert_false(counter_store_batches(cs));   /* atomic per call */
	assert_false(counter_batch_failed(cs));
	return cs;
}

/* setup - a fresh prefix and store (skipped without redis-server). */
static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	snprintf(f->prefix, sizeof(f->prefix), "t%d-%d:", (int)getpid(),
	    ++test_seq);
	*state = f;
	if (redis_pid <= 0)
		return 0;
	f->cfg = cfg_make(redis_port, f->prefix, false);
	f->cs = open_store(f);
	return 0;
}

/* teardown - close the store. */
static int
teardown(void **state)
{
	struct fx *f = *state;

	counter_store_close(f->cs);
	free(f->cfg);
	free(f);
	return 0;
}

/* need_server - skip when the shared server could not be started. */
#define need_server() do { if (redis_pid <= 0) skip(); } while (0)

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

/* ==== exactness ==== */

/* limit 5 per 300 ms: five accepted, the sixth refused with a retry
 * inside the window, accepted again once the retry has passed; a second
 * store (another host) shares the limit. */
static void
test_rate_exact_limit(void **state)
{
	struct fx *f = *state;
	struct counter_store *other;
	struct counter_rate_result r;
	uint64_t t0;

	need_server();
	other = open_store(f);
	t0 = mono_ms();
	for (int i = 0; i < 5; i++) {
		r = hit(i % 2 ? other : f->cs, "msg:ip:192.0.2.7", 5, 300);
		assert_true(r.allowed);
		assert_int_equal(r.count, i + 1);
	}
	r = hit(f->cs, "msg:ip:192.0.2.7", 5, 300);
	assert_false(r.allowed);
	assert_int_equal(r.count, 5);
	assert_true(r.retry_ms >= 1 && r.retry_ms <= 300);
	r = hit(other, "msg:ip:192.0.2.7", 5, 300);
	assert_false(r.allowed);
	if (mono_ms() - t0 < 250)
		assert_true(r.retry_ms >= 300 - (mono_ms() - t0) - 20);
	sleep_ms(r.retry_ms + 5);
	r = hit(other, "msg:ip:192.0.2.7", 5, 300);
	assert_true(r.allowed);
	/* another key is independent */
	assert_true(hit(f->cs, "msg:ip:192.0.2.8", 5, 300).allowed);
	counter_store_close(other);
}

struct stamp {
	uint64_t before, after;   /* realtime around an accepted hit */
};

/* cmp_stamp - by the time the call began. */
static int
cmp_stamp(const void *a, const void *b)
{
	const struct stamp *x = a, *y = b;

	return x->before < y->before ? -1 : x->before > y->before;
}

/* hammer - hit key as fast as possible for ms, writing the accepted
 * calls' stamps to fd. */
static void
hammer(struct fx *f, int fd, uint64_t ms, uint32_t limit, uint64_t period)
{
	struct counter_store *cs = open_store(f);
	uint64_t end = mono_ms() + ms;

	while (mono_ms() < end) {
		struct stamp s;
		struct counter_rate_result r;

		s.before = now_ms();
		r = hit(cs, "hammered", limit, period);
		s.after = now_ms();
		if (r.allowed && write(fd, &s, sizeof(s)) != (ssize_t)sizeof(s))
			_exit(3);
	}
	counter_store_close(cs);
}

/* Two processes (two "hosts") hammer one key for 1.5 s: no window of P
 * holds more than N accepted events (the server accepted each one at a
 * time in [before, after], so any N + 1 of them span at least P), and the
 * key is not starved. */
static void
test_rate_exact_two_processes(void **state)
{
	struct fx *f = *state;
	const uint32_t N = 5;
	const uint64_t P = 300, RUN = 1500;
	struct stamp s[4096];
	size_t n = 0;
	int fds[2], status;
	pid_t kid;
	ssize_t got;

	need_server();
	assert_int_equal(pipe(fds), 0);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		close(fds[0]);
		hammer(f, fds[1], RUN, N, P);
		_exit(0);
	}
	hammer(f, fds[1], RUN, N, P);
	close(fds[1]);
	assert_int_equal(waitpid(kid, &status, 0), kid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	while (n < 4096 && (got = read(fds[0], &s[n], sizeof(s[0]))) ==
	    (ssize_t)sizeof(s[0]))
		n++;
	close(fds[0]);
	qsort(s, n, sizeof(s[0]), cmp_stamp);
	assert_true(n >= N * (RUN / P) - N);
	for (size_t i = 0; i + N < n; i++) {
		uint64_t last = 0;

		for (size_t j = i; j <= i + N; j++)
			if (s[j].after > last)
				last = s[j].after;
		if (last - s[i].before < P)
			fail_msg("%u accepted within %llu ms (window %llu ms)",
			    (unsigned)N + 1,
			    (unsigned long long)(last - s[i].before),
			    (unsigned long long)P);
	}
}

/* ==== decisions ==== */

/* A refused decision withdraws its hits (pipelined at the end); an
 * accepted one keeps them; the withdrawn events do not count. */
static void
test_decision_withdraws(void **state)
{
	struct fx *f = *state;
	struct error err = { "" };

	need_server();
	counter_decision_begin(f->cs);
	assert_true(hit(f->cs, "a", 3, 10000).allowed);
	assert_true(hit(f->cs, "b", 3, 10000).allowed);
	assert_true(hit(f->cs, "a", 3, 10000).allowed);
	assert_int_equal(count(f->cs, "a", 10000), 2);
	assert_int_equal(counter_decision_end(f->cs, false, &err), 0);
	assert_int_equal(count(f->cs, "a", 10000), 0);
	assert_int_equal(count(f->cs, "b", 10000), 0);

	counter_decision_begin(f->cs);
	assert_true(hit(f->cs, "a", 3, 10000).allowed);
	assert_int_equal(counter_decision_end(f->cs, true, &err), 0);
	assert_int_equal(count(f->cs, "a", 10000), 1);
	/* the limit still holds exactly after a withdrawal */
	assert_true(hit(f->cs, "a", 3, 10000).allowed);
	assert_true(hit(f->cs, "a", 3, 10000).allowed);
	assert_false(hit(f->cs, "a", 3, 10000).allowed);
}

/* ==== event counts ==== */

/* Failure logs: every event is recorded (no limit), the newest `keep`
 * are kept, two stores see one count, the window ages them out. */
static void
test_event_counts(void **state)
{
	struct fx *f = *state;
	struct counter_store *other;
	struct error err = { "" };
	uint32_t n = 0;

	need_server();
	other = open_store(f);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(counter_event_add(i % 2 ? other : f->cs,
		    "authfail:ip:192.0.2.9", 3, 400, &n, &err), 0);
		assert_int_equal(n, i < 3 ? i + 1 : 3);
	}
	assert_int_equal(count(other, "authfail:ip:192.0.2.9", 400), 3);
	assert_int_equal(count(f->cs, "authfail:ip:192.0.2.9", 400), 3);
	/* a NULL count is allowed */
	assert_int_equal(counter_event_add(f->cs, "authfail:user:x", 3, 400,
	    NULL, &err), 0);
	assert_int_equal(counter_key_reset(other, "authfail:user:x", &err), 0);
	assert_int_equal(count(f->cs, "authfail:user:x", 400), 0);
	sleep_ms(450);
	assert_int_equal(count(f->cs, "authfail:ip:192.0.2.9", 400), 0);
	assert_int_equal(count(f->cs, "never-seen", 400), 0);
	counter_store_close(other);
}

/* ==== reputation ==== */

/* Absent is neutral; adjust decays then adds and clamps to 0..100; the
 * score is shared; reset forgets it. */
static void
test_reputation(void **state)
{
	struct fx *f = *state;
	struct error err = { "" };
	double s = -1;

	need_server();
	assert_int_equal(counter_reputation_get(f->cs, "rep:1", &s, &err), 0);
	assert_true(fabs(s - 50.0) < 1e-9);
	assert_int_equal(counter_reputation_adjust(f->cs, "rep:1", 10.0, 3600.0,
	    &err), 0);
	assert_int_equal(counter_reputation_get(f->cs, "rep:1", &s, &err), 0);
	assert_true(s > 59.99 && s <= 60.0);
	assert_int_equal(counter_reputation_adjust(f->cs, "rep:1", 500.0, 3600.0,
	    &err), 0);
	assert_int_equal(counter_reputation_get(f->cs, "rep:1", &s, &err), 0);
	assert_true(s > 99.99 && s <= 100.0);
	assert_int_equal(counter_reputation_adjust(f->cs, "rep:1", -500.0,
	    3600.0, &err), 0);
	assert_int_equal(counter_reputation_get(f->cs, "rep:1", &s, &err), 0);
	assert_true(s >= 0.0 && s < 0.01);
	/* a tiny half-life decays toward neutral in real time */
	assert_int_equal(counter_reputation_adjust(f->cs, "rep:2", 40.0, 0.1,
	    &err), 0);
	sleep_ms(300);
	assert_int_equal(counter_reputation_adjust(f->cs, "rep:2", 0.0, 0.1,
	    &err), 0);
	assert_int_equal(counter_reputation_get(f->cs, "rep:2", &s, &err), 0);
	assert_true(s > 50.0 && s < 60.0);
	assert_int_equal(counter_key_reset(f->cs, "rep:1", &err), 0);
	assert_int_equal(counter_reputation_get(f->cs, "rep:1", &s, &err), 0);
	assert_true(fabs(s - 50.0) < 1e-9);
	/* bad input is refused before the server */
	assert_int_equal(counter_reputation_adjust(f->cs, "rep:1", NAN, 1.0,
	    &err), -1);
}

/* ==== metrics and inspection ==== */

struct seen {
	char keys[16][64];
	struct counter_entry e[16];
	size_t n;
};

/* collect - counter_visit callback. */
static int
collect(const struct counter_entry *e, void *arg)
{
	struct seen *s = arg;

	if (s->n < 16) {
		str_copy(s->keys[s->n], e->key, sizeof(s->keys[0]));
		s->e[s->n] = *e;
		s->e[s->n].key = s->keys[s->n];
		s->n++;
	}
	return 0;
}

/* visit - every entry of kind under prefix. */
static struct seen
visit(struct counter_store *cs, enum counter_kind kind, const char *prefix)
{
	struct seen s;
	struct error err = { "" };

	memset(&s, 0, sizeof(s));
	if (counter_visit(cs, kind, prefix, collect, &s, &err) != 0)
		fail_msg("visit %s: %s", counter_kind_name(kind), err.text);
	return s;
}

/* Metrics add up across stores (INCRBY); inside a decision they are
 * buffered and sent when it ends; visit lists them. */
static void
test_metrics(void **state)
{
	struct fx *f = *state;
	struct counter_store *other;
	struct error err = { "" };
	struct seen s;

	need_server();
	other = open_store(f);
	assert_int_equal(counter_metric_add(f->cs, "m_total", 3, &err), 0);
	assert_int_equal(counter_metric_add(other, "m_total", 4, &err), 0);
	counter_decision_begin(f->cs);
	assert_int_equal(counter_metric_add(f->cs, "m_total", 10, &err), 0);
	assert_int_equal(counter_metric_add(f->cs, "n_total", 1, &err), 0);
	s = visit(other, COUNTER_KIND_METRIC, NULL);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.e[0].value, 7);
	assert_int_equal(counter_decision_end(f->cs, false, &err), 0);
	s = visit(other, COUNTER_KIND_METRIC, NULL);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.e[0].key, "m_total");
	assert_int_equal(s.e[0].kind, COUNTER_KIND_METRIC);
	assert_string_equal(counter_kind_name(s.e[0].kind), "metric");
	assert_int_equal(s.e[0].value, 17);
	assert_string_equal(s.e[1].key, "n_total");
	assert_int_equal(s.e[1].value, 1);
	/* more increments in one decision than the buffer holds */
	counter_decision_begin(f->cs);
	for (int i = 0; i < 100; i++) {
		char name[32];

		snprintf(name, sizeof(name), "many_%03d", i);
		assert_int_equal(counter_metric_add(f->cs, name, 1, &err), 0);
	}
	assert_int_equal(counter_decision_end(f->cs, true, &err), 0);
	s = visit(other, COUNTER_KIND_METRIC, "many_09");
	assert_int_equal(s.n, 10);
	counter_store_close(other);
}

/* Visit: kinds apart, key order, prefix filtering with glob characters
 * taken literally, rate fields (limit, period, count, oldest, newest),
 * stop on non-zero; stats count keys. */
static void
test_visit_and_stats(void **state)
{
	struct fx *f = *state;
	struct counter_stats st;
	struct error err = { "" };
	struct seen s;
	uint64_t t0 = now_ms();

	need_server();
	assert_true(hit(f->cs, "b:1", 5, 60000).allowed);
	assert_true(hit(f->cs, "a:2", 5, 60000).allowed);
	assert_true(hit(f->cs, "a:1", 5, 60000).allowed);
	assert_true(hit(f->cs, "a:1", 5, 60000).allowed);
	assert_true(hit(f->cs, "x*y", 5, 60000).allowed);
	assert_true(hit(f->cs, "xzy", 5, 60000).allowed);
	assert_int_equal(counter_event_add(f->cs, "ev", 3, 60000, NULL, &err), 0);
	assert_int_equal(counter_reputation_adjust(f->cs, "a:1", 5.0, 3600.0,
	    &err), 0);

	s = visit(f->cs, COUNTER_KIND_RATE, "a:");
	assert_int_equal(s.n, 2);
	assert_string_equal(s.e[0].key, "a:1");
	assert_string_equal(s.e[1].key, "a:2");
	assert_int_equal(s.e[0].kind, COUNTER_KIND_RATE);
	assert_string_equal(counter_kind_name(s.e[0].kind), "rate");
	assert_int_equal(s.e[0].count, 2);
	assert_int_equal(s.e[0].limit, 5);
	assert_int_equal(s.e[0].period_ms, 60000);
	assert_true(s.e[0].oldest_ms + 50 >= t0 && s.e[0].oldest_ms <= now_ms());
	assert_true(s.e[0].newest_ms >= s.e[0].oldest_ms);
	s = visit(f->cs, COUNTER_KIND_RATE, "x*");
	assert_int_equal(s.n, 1);
	assert_string_equal(s.e[0].key, "x*y");
	s = visit(f->cs, COUNTER_KIND_RATE, NULL);
	assert_int_equal(s.n, 6);
	assert_string_equal(s.e[5].key, "xzy");
	assert_string_equal(s.e[3].key, "ev");
	assert_int_equal(s.e[3].limit, 0);      /* an event log */
	s = visit(f->cs, COUNTER_KIND_REP, NULL);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.e[0].key, "a:1");
	assert_true(s.e[0].score > 54.99 && s.e[0].score <= 55.0);
	assert_int_equal(counter_visit(f->cs, COUNTER_KIND_COUNT, NULL, collect,
	    &s, &err), -1);
	assert_int_equal(counter_sweep(f->cs, 100, &err), 0);
	assert_int_equal(counter_stats(f->cs, &st, &err), 0);
	assert_true(st.entries >= 8);
	assert_true(st.used_bytes > 0);
}

/* Greylisting's script on the server's clock: a new triplet greylisted
 * for the delay (retry within it), still greylisted on a retry, shared
 * by another store (host); delay 0 passes at once and counts for the
 * client, which auto_allow_after 1 then allows for any triplet; the
 * records are visible (kind grey, with an expiry) and reset removes
 * them. */
static void
test_greylist(void **state)
{
	struct fx *f = *state;
	struct counter_grey_params p = {
		.delay_ms = 60000, .retry_window_ms = 3600000,
		.max_age_ms = 86400000, .auto_allow_after = 0,
	};
	struct counter_grey_result r;
	struct counter_store *other;
	struct error err = { "" };
	struct seen s;
	uint64_t t0 = now_ms();

	need_server();
	assert_int_equal(counter_grey_check(f->cs, "t:1", NULL, &p, &r, &err), 0);
	assert_int_equal(r.verdict, COUNTER_GREY_GREYLISTED);
	assert_true(r.retry_ms > 59000 && r.retry_ms <= 60000);
	other = open_store(f);
	assert_int_equal(counter_grey_check(other, "t:1", NULL, &p, &r, &err), 0);
	assert_int_equal(r.verdict, COUNTER_GREY_GREYLISTED);
	assert_true(r.retry_ms <= 60000);
	counter_store_close(other);

	p.delay_ms = 0;
	p.auto_allow_after = 1;
	p.auto_allow_interval_ms = 3600000;
	assert_int_equal(counter_grey_check(f->cs, "t:2", "c:1", &p, &r, &err), 0);
	assert_int_equal(r.verdict, COUNTER_GREY_PASSED);
	assert_true(r.first_pass);
	assert_int_equal(r.client_count, 1);
	assert_int_equal(counter_grey_check(f->cs, "t:2", "c:1", &p, &r, &err), 0);
	assert_int_equal(r.verdict, COUNTER_GREY_AUTO_ALLOWED);
	p.delay_ms = 60000;
	assert_int_equal(counter_grey_check(f->cs, "t:3", "c:1", &p, &r, &err), 0);
	assert_int_equal(r.verdict, COUNTER_GREY_AUTO_ALLOWED);
	assert_int_equal(counter_grey_check(f->cs, "t:3", "c:2", &p, &r, &err), 0);
	assert_int_equal(r.verdict, COUNTER_GREY_GREYLISTED);

	s = visit(f->cs, COUNTER_KIND_GREY, "t:");
	assert_int_equal(s.n, 3);
	assert_string_equal(s.keys[0], "t:1");
	assert_int_equal(s.e[0].count, 0);
	assert_true(s.e[0].oldest_ms + 50 >= t0);
	assert_true(s.e[0].expires_ms > now_ms() + 3590000);
	assert_string_equal(s.keys[1], "t:2");
	assert_int_equal(s.e[1].count, 1);
	assert_true(s.e[1].expires_ms > now_ms() + 86390000);
	s = visit(f->cs, COUNTER_KIND_GREY, "c:");
	assert_int_equal(s.n, 1);     /* c:2 never passed: no record */
	assert_int_equal(s.e[0].count, 1);

	/* a pass within the refresh granularity (864 s here) writes
	 * nothing; one after it (10 ms with max_age 1 s) refreshes */
	p.auto_allow_after = 0;
	assert_int_equal(counter_grey_check(f->cs, "t:2", NULL, &p, &r, &err), 0);
	assert_int_equal(r.verdict, COUNTER_GREY_PASSED);
	assert_false(r.first_pass);
	s = visit(f->cs, COUNTER_KIND_GREY, "t:2");
	assert_int_equal(s.e[0].count, 1);
	p.max_age_ms = 1000;
	usleep(30000);
	assert_int_equal(counter_grey_check(f->cs, "t:2", NULL, &p, &r, &err), 0);
	assert_int_equal(r.verdict, COUNTER_GREY_PASSED);
	s = visit(f->cs, COUNTER_KIND_GREY, "t:2");
	assert_int_equal(s.e[0].count, 2);
	assert_true(s.e[0].expires_ms <= now_ms() + 1000);
	assert_int_equal(counter_key_reset(f->cs, "t:1", &err), 0);
	s = visit(f->cs, COUNTER_KIND_GREY, "t:");
	assert_int_equal(s.n, 2);
}

/* Every key the store writes carries an expiry except metrics: rate
 * keys expire a period after their newest event, reputation keys after
 * 20 half-lives (at least a day's). */
static void
test_keys_expire(void **state)
{
	struct fx *f = *state;
	struct error err = { "" };
	redisContext *c;
	redisReply *r;
	char key[128];

	need_server();
	assert_true(hit(f->cs, "k", 5, 5000).allowed);
	assert_int_equal(counter_event_add(f->cs, "e", 3, 7000, NULL, &err), 0);
	assert_int_equal(counter_reputation_adjust(f->cs, "k", 1.0, 3600.0,
	    &err), 0);
	c = raw(redis_port);
	assert_non_null(c);
	snprintf(key, sizeof(key), "%srate:k", f->prefix);
	r = redisCommand(c, "PTTL %s", key);
	assert_true(r->type == REDIS_REPLY_INTEGER && r->integer > 4000 &&
	    r->integer <= 5000);
	freeReplyObject(r);
	snprintf(key, sizeof(key), "%srate:e", f->prefix);
	r = redisCommand(c, "PTTL %s", key);
	assert_true(r->type == REDIS_REPLY_INTEGER && r->integer > 6000 &&
	    r->integer <= 7000);
	freeReplyObject(r);
	snprintf(key, sizeof(key), "%srep:k", f->prefix);
	r = redisCommand(c, "PTTL %s", key);
	assert_true(r->type == REDIS_REPLY_INTEGER &&
	    r->integer > 19LL * 86400 * 1000);
	freeReplyObject(r);
	redisFree(c);
	sleep_ms(10);
	/* a refused hit does not extend or drop the expiry */
	for (int i = 0; i < 5; i++)
		(void)hit(f->cs, "k", 5, 5000);
	assert_int_equal(count(f->cs, "k", 5000), 5);
}

/* The server forgets its scripts (SCRIPT FLUSH): the store falls back
 * from EVALSHA to EVAL and carries on. */
static void
test_script_cache_flushed(void **state)
{
	struct fx *f = *state;
	redisContext *c;
	redisReply *r;
	struct seen s;

	need_server();
	assert_true(hit(f->cs, "k", 2, 60000).allowed);
	c = raw(redis_port);
	assert_non_null(c);
	r = redisCommand(c, "SCRIPT FLUSH");
	assert_true(r != NULL && r->type == REDIS_REPLY_STATUS);
	freeReplyObject(r);
	redisFree(c);
	assert_true(hit(f->cs, "k", 2, 60000).allowed);
	assert_false(hit(f->cs, "k", 2, 60000).allowed);
	c = raw(redis_port);
	r = redisCommand(c, "SCRIPT FLUSH");
	freeReplyObject(r);
	redisFree(c);
	s = visit(f->cs, COUNTER_KIND_RATE, NULL);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.e[0].count, 2);
}

/* ==== faults ==== */

/* Nothing listens: the call fails (allowed false) well within the
 * timeout, the next ones fail at once while backing off, the store says
 * it is unavailable; a read-only open fails outright. */
static void
test_unreachable(void **state)
{
	struct fx *f = *state;
	struct config *cfg = cfg_make(free_port(), "u:", false);
	struct counter_store *cs = NULL;
	struct counter_rate_result r;
	struct error err = { "" };
	uint64_t t;
	uint32_t n;

	(void)f;
	need_server();
	assert_int_equal(counter_store_open_config(cfg, true, &cs, &err), -1);
	assert_non_null(strstr(err.text, "unavailable"));
	assert_int_equal(counter_store_open_config(cfg, false, &cs, &err), 0);
	assert_true(counter_store_unavailable(cs));
	t = mono_ms();
	for (int i = 0; i < 50; i++) {
		assert_int_equal(counter_rate_hit(cs, "k", 5, 1000, &r, &err), -1);
		assert_false(r.allowed);
	}
	assert_true(mono_ms() - t < TIMEOUT_MS + SLACK_MS);
	assert_non_null(strstr(err.text, "unavailable"));
	assert_int_equal(counter_event_count(cs, "k", 1000, &n, &err), -1);
	counter_decision_begin(cs);
	assert_int_equal(counter_metric_add(cs, "m", 1, &err), 0);
	/* only metrics were lost: the decision itself stands */
	assert_int_equal(counter_decision_end(cs, true, &err), 0);
	counter_store_close(cs);
	free(cfg);
}

/* A server that accepts but never answers: no call blocks beyond the
 * timeout. */
static void
test_silent_server_times_out(void **state)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	struct counter_store *cs = NULL;
	struct counter_rate_result r;
	struct error err = { "" };
	struct config *cfg;
	uint64_t t;
	int fd;

	(void)state;
	need_server();
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	cfg = cfg_make(ntohs(sa.sin_port), "s:", false);
	t = mono_ms();
	assert_int_equal(counter_store_open_config(cfg, false, &cs, &err), 0);
	assert_true(mono_ms() - t < TIMEOUT_MS + SLACK_MS);
	assert_true(counter_store_unavailable(cs));
	sleep_ms(150);          /* past the first backoff: a real retry */
	t = mono_ms();
	assert_int_equal(counter_rate_hit(cs, "k", 5, 1000, &r, &err), -1);
	assert_true(mono_ms() - t < TIMEOUT_MS + SLACK_MS);
	assert_non_null(strstr(err.text, "timed out"));
	counter_store_close(cs);
	free(cfg);
	close(fd);
}

/* The server goes away and comes back: calls fail meanwhile, and succeed
 * again within the backoff once it returns; counts kept by the server are
 * lost with it (no persistence here), never invented. */
static void
test_recovery(void **state)
{
	unsigned port = free_port();
	pid_t pid = server_start(port, NULL, NULL);
	struct config *cfg = cfg_make(port, "r:", false);
	struct counter_store *cs = NULL;
	struct counter_rate_result r;
	struct error err = { "" };
	uint64_t t;
	bool back = false;

	(void)state;
	need_server();
	assert_true(pid > 0);
	assert_int_equal(counter_store_open_config(cfg, false, &cs, &err), 0);
	assert_true(hit(cs, "k", 5, 60000).allowed);
	server_stop(pid);
	assert_int_equal(counter_rate_hit(cs, "k", 5, 60000, &r, &err), -1);
	assert_true(counter_store_unavailable(cs));
	sleep_ms(400);          /* a few failed retries: the backoff grows */
	for (int i = 0; i < 5; i++)
		(void)counter_rate_hit(cs, "k", 5, 60000, &r, &err);
	pid = server_start(port, NULL, NULL);
	assert_true(pid > 0);
	t = mono_ms();
	while (!back && mono_ms() - t < 6000) {
		back = counter_rate_hit(cs, "k", 5, 60000, &r, &err) == 0;
		if (!back)
			sleep_ms(50);
	}
	assert_true(back);
	assert_true(r.allowed);
	assert_int_equal(r.count, 1);
	assert_false(counter_store_unavailable(cs));
	counter_store_close(cs);
	server_stop(pid);
	free(cfg);
}

/* policyd.fail_mode: accept - inside a decision an outage answers
 * neutrally (allowed, count 0, score 50); outside one (elemta-stat
 * reset) it never pretends. */
static void
test_fail_open(void **state)
{
	struct config *cfg = cfg_make(free_port(), "f:", true);
	struct counter_store *cs = NULL;
	struct counter_rate_result r;
	struct error err = { "" };
	uint32_t n = 7;
	double s = 0;

	(void)state;
	need_server();
	assert_int_equal(counter_store_open_config(cfg, false, &cs, &err), 0);
	counter_decision_begin(cs);
	assert_int_equal(counter_rate_hit(cs, "k", 1, 1000, &r, &err), 0);
	assert_true(r.allowed);
	assert_int_equal(counter_event_count(cs, "k", 1000, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(counter_event_add(cs, "k", 3, 1000, &n, &err), 0);
	assert_int_equal(counter_reputation_get(cs, "k", &s, &err), 0);
	assert_true(fabs(s - 50.0) < 1e-9);
	assert_int_equal(counter_reputation_adjust(cs, "k", 1.0, 10.0, &err), 0);
	assert_int_equal(counter_decision_end(cs, false, &err), 0);
	assert_int_equal(counter_key_reset(cs, "k", &err), -1);
	assert_int_equal(counter_rate_hit(cs, "k", 1, 1000, &r, &err), -1);
	assert_false(r.allowed);
	counter_store_close(cs);
	free(cfg);
}

/* AUTH (password file, first line) and SELECT: a wrong password is an
 * outage with the server's reason; the right one works, in database 3. */
static void
test_password_and_database(void **state)
{
	char pwfile[] = "/tmp/elemta-redis-pw-XXXXXX";
	unsigned port = free_port();
	pid_t pid = server_start(port, "--requirepass", "s3cret pass");
	struct config *cfg = cfg_make(port, "p:", false);
	struct counter_store *cs = NULL;
	struct error err = { "" };
	redisContext *c;
	redisReply *rr;
	int fd;

	(void)state;
	need_server();
	assert_true(pid > 0);
	fd = mkstemp(pwfile);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "wrong\n", 6), 6);
	close(fd);
	str_copy(cfg->counters.redis.password_file, pwfile,
	    sizeof(cfg->counters.redis.password_file));
	cfg->counters.redis.database = 3;
	assert_int_equal(counter_store_open_config(cfg, true, &cs, &err), -1);
	assert_non_null(strstr(err.text, "setup refused"));

	fd = open(pwfile, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "s3cret pass\r\nignored\n", 21), 21);
	close(fd);
	assert_int_equal(counter_store_open_config(cfg, false, &cs, &err), 0);
	assert_true(hit(cs, "k", 5, 60000).allowed);
	counter_store_close(cs);

	c = raw(port);
	assert_non_null(c);
	rr = redisCommand(c, "AUTH %s", "s3cret pass");
	freeReplyObject(rr);
	rr = redisCommand(c, "SELECT 3");
	freeReplyObject(rr);
	rr = redisCommand(c, "EXISTS p:rate:k");
	assert_true(rr->type == REDIS_REPLY_INTEGER && rr->integer == 1);
	freeReplyObject(rr);
	redisFree(c);

	str_copy(cfg->counters.redis.password_file, "/nonexistent/pw",
	    sizeof(cfg->counters.redis.password_file));
	assert_int_equal(counter_store_open_config(cfg, false, &cs, &err), -1);
	assert_non_null(strstr(err.text, "password_file"));
	unlink(pwfile);
	server_stop(pid);
	free(cfg);
}

/* ==== main ==== */

/* group_setup - start the shared server (or leave every test skipped). */
static int
group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	if (!find_redis()) {
		print_message("redis-server not installed: skipping\n");
		return 0;
	}
	redis_port = free_port();
	redis_pid = server_start(redis_port, NULL, NULL);
	if (redis_pid <= 0)
		print_message("redis-server did not start: skipping\n");
	return 0;
}

/* group_teardown - stop it. */
static int
group_teardown(void **state)
{
	(void)state;
	server_stop(redis_pid);
	return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_rate_exact_limit),
		T(test_rate_exact_two_processes),
		T(test_decision_withdraws),
		T(test_event_counts),
		T(test_reputation),
		T(test_metrics),
		T(test_visit_and_stats),
		T(test_keys_expire),
		T(test_script_cache_flushed),
		T(test_unreachable),
		T(test_silent_server_times_out),
		T(test_recovery),
		T(test_fail_open),
		T(test_password_and_database),
		T(test_greylist),
	};

	log_init("test_counter_redis", true, LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
