/*
 * test_greylist.c - unit tests for greylisting: the counter table's atomic
 * step (counter_grey_check, common/counter.h) on a scratch LMDB table
 * with a fake clock, and the `policy` plugin's rule
 * (policyd/policies/greylist.c) as the host runs it.
 *
 * Promises tested: the first attempt greylisted for delay, an early retry
 * still greylisted with the time left, a retry after the delay passed and
 * every later one passing; a retry after retry_window starting over; a
 * passed triplet forgotten max_age after its last use; auto-allow after N
 * first passes counted at most once an interval; two store handles (two
 * workers) sharing records; sweep and reset removing them; inspection
 * (elemta-stat's view); argument checks.  The rule: 450 4.2.0 with the
 * seconds left, the client network (/24, /64) keying the triplet, sender
 * normalisation (case, extension, BATV, SRS, VERP numbers), recipient
 * case, authenticated and exempt_ips clients skipping it, the metrics per
 * result, the Postfix listener, config defaults and errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "counter.h"
#include "log.h"
#include "../../policyd/plugin_host.h"
#include "../../policyd/policies/policy.h"

#include "policy_fixture.h"

#define SEC 1000ULL
#define DELAY (300 * SEC)
#define WINDOW (3600 * SEC)
#define MAX_AGE (86400 * SEC)

/* ==== The counter table's step ==== */

static const struct counter_grey_params params = {
	.delay_ms = DELAY, .retry_window_ms = WINDOW, .max_age_ms = MAX_AGE,
	.auto_allow_after = 3, .auto_allow_interval_ms = 600 * SEC,
};

/* table_open - a scratch table on the fake clock. */
static struct counter_store *
table_open(void)
{
	struct counter_store *cs;
	struct error err;
	char dir[300];

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/elemta-test-grey-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(dir, sizeof(dir), "%s/counters", tmpdir);
	assert_int_equal(counter_store_open(dir, 8 << 20, false,
	    COUNTER_SYNC_SAFE, &cs, &err), 0);
	fake_ms = 1700000000000ull;
	counter_set_clock(cs, fake_clock);
	return cs;
}

/* table_close - close and remove the scratch directory. */
static void
table_close(struct counter_store *cs)
{
	char cmd[300];

	counter_store_close(cs);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	assert_int_equal(system(cmd), 0);
}

/* grey - one check; its verdict (retry and first pass through *r). */
static enum counter_grey_verdict
grey(struct counter_store *cs, const char *t, const char *c,
    struct counter_grey_result *r)
{
	struct counter_grey_params p = params;
	struct error err;

	if (c == NULL)
		p.auto_allow_after = 0;
	if (counter_grey_check(cs, t, c, &p, r, &err) != 0)
		fail_msg("counter_grey_check: %s", err.text);
	return r->verdict;
}

/* test_triplet_delay - first attempt and early retry greylisted with the
 * time left; after the delay passed, and passed ever after. */
static void
test_triplet_delay(void **state)
{
	struct counter_store *cs = table_open();
	struct counter_grey_result r;

	assert_int_equal(grey(cs, "t1", "c1", &r), COUNTER_GREY_GREYLISTED);
	assert_int_equal(r.retry_ms, DELAY);
	fake_ms += 100 * SEC;
	assert_int_equal(grey(cs, "t1", "c1", &r), COUNTER_GREY_GREYLISTED);
	assert_int_equal(r.retry_ms, DELAY - 100 * SEC);
	fake_ms += DELAY - 100 * SEC - 1;
	assert_int_equal(grey(cs, "t1", "c1", &r), COUNTER_GREY_GREYLISTED);
	assert_int_equal(r.retry_ms, 1);
	fake_ms += 1;
	assert_int_equal(grey(cs, "t1", "c1", &r), COUNTER_GREY_PASSED);
	assert_true(r.first_pass);
	assert_int_equal(r.client_count, 1);
	fake_ms += 10 * SEC;
	assert_int_equal(grey(cs, "t1", "c1", &r), COUNTER_GREY_PASSED);
	assert_false(r.first_pass);
	/* another triplet is greylisted on its own */
	assert_int_equal(grey(cs, "t2", "c1", &r), COUNTER_GREY_GREYLISTED);
	table_close(cs);
}

/* test_retry_window - a retry after retry_window starts over; one inside
 * it (even long after the delay) passes. */
static void
test_retry_window(void **state)
{
	struct counter_store *cs = table_open();
	struct counter_grey_result r;

	assert_int_equal(grey(cs, "late", NULL, &r), COUNTER_GREY_GREYLISTED);
	fake_ms += WINDOW + 1;
	assert_int_equal(grey(cs, "late", NULL, &r), COUNTER_GREY_GREYLISTED);
	assert_int_equal(r.retry_ms, DELAY);
	fake_ms += WINDOW;    /* exactly at the window's end: still inside */
	assert_int_equal(grey(cs, "late", NULL, &r), COUNTER_GREY_PASSED);
	table_close(cs);
}

/* test_max_age - a passed triplet is remembered max_age after each use,
 * then greylisted afresh. */
static void
test_max_age(void **state)
{
	struct counter_store *cs = table_open();
	struct counter_grey_result r;

	(void)grey(cs, "old", NULL, &r);
	fake_ms += DELAY;
	assert_int_equal(grey(cs, "old", NULL, &r), COUNTER_GREY_PASSED);
	fake_ms += MAX_AGE - 1;
	assert_int_equal(grey(cs, "old", NULL, &r), COUNTER_GREY_PASSED);
	fake_ms += MAX_AGE;
	assert_int_equal(grey(cs, "old", NULL, &r), COUNTER_GREY_GREYLISTED);
	assert_int_equal(r.retry_ms, DELAY);
	table_close(cs);
}

/* pass - take triplet t of client c through its delay. */
static void
pass(struct counter_store *cs, const char *t, const char *c)
{
	struct counter_grey_result r;

	assert_int_equal(grey(cs, t, c, &r), COUNTER_GREY_GREYLISTED);
	fake_ms += DELAY;
	assert_int_equal(grey(cs, t, c, &r), COUNTER_GREY_PASSED);
	assert_true(r.first_pass);
}

/* test_auto_allow - after auto_allow_after first passes, each at least an
 * interval apart, the client is not greylisted any more; passes closer
 * together count once; another client is not affected. */
static void
test_auto_allow(void **state)
{
	struct counter_store *cs = table_open();
	struct counter_grey_result r;

	pass(cs, "a1", "net");
	pass(cs, "a2", "net");         /* DELAY (300 s) < interval: no count */
	assert_int_equal(grey(cs, "a2", "net", &r), COUNTER_GREY_PASSED);
	assert_int_equal(r.client_count, 1);
	fake_ms += 600 * SEC;
	pass(cs, "a3", "net");
	fake_ms += 600 * SEC;
	assert_int_equal(grey(cs, "a9", "net", &r), COUNTER_GREY_GREYLISTED);
	assert_int_equal(r.client_count, 2);
	pass(cs, "a4", "net");
	assert_int_equal(grey(cs, "new", "net", &r),
	    COUNTER_GREY_AUTO_ALLOWED);
	assert_int_equal(r.client_count, 3);
	assert_int_equal(grey(cs, "new", "other", &r),
	    COUNTER_GREY_GREYLISTED);
	/* the allowance lasts max_age after the last use */
	fake_ms += MAX_AGE + 1;
	assert_int_equal(grey(cs, "newer", "net", &r),
	    COUNTER_GREY_GREYLISTED);
	table_close(cs);
}

/* test_two_workers - two handles on one table see one record. */
static void
test_two_workers(void **state)
{
	struct counter_store *cs = table_open(), *cs2;
	struct counter_grey_result r;
	struct error err;
	char dir[300];

	snprintf(dir, sizeof(dir), "%s/counters", tmpdir);
	assert_int_equal(counter_store_open(dir, 8 << 20, false,
	    COUNTER_SYNC_SAFE, &cs2, &err), 0);
	counter_set_clock(cs2, fake_clock);
	assert_int_equal(grey(cs, "shared", NULL, &r), COUNTER_GREY_GREYLISTED);
	fake_ms += DELAY / 2;
	assert_int_equal(grey(cs2, "shared", NULL, &r),
	    COUNTER_GREY_GREYLISTED);
	assert_int_equal(r.retry_ms, DELAY / 2);
	fake_ms += DELAY / 2;
	assert_int_equal(grey(cs2, "shared", NULL, &r), COUNTER_GREY_PASSED);
	assert_int_equal(grey(cs, "shared", NULL, &r), COUNTER_GREY_PASSED);
	assert_false(r.first_pass);
	counter_store_close(cs2);
	table_close(cs);
}

struct grey_seen {
	size_t n;
	struct counter_entry e[4];
	char keys[4][64];
};

static int
grey_cb(const struct counter_entry *e, void *arg)
{
	struct grey_seen *s = arg;

	if (s->n < 4) {
		s->e[s->n] = *e;
		str_copy(s->keys[s->n], e->key, sizeof(s->keys[0]));
	}
	s->n++;
	return 0;
}

/* test_inspect_sweep_reset - elemta-stat's view of the records (first and
 * last seen, count, expiry), sweep removing expired ones only, reset. */
static void
test_inspect_sweep_reset(void **state)
{
	struct counter_store *cs = table_open();
	struct counter_grey_result r;
	struct grey_seen s;
	struct error err;
	uint64_t t0 = fake_ms;

	pass(cs, "keep", "cl");
	(void)grey(cs, "drop", NULL, &r);
	memset(&s, 0, sizeof(s));
	assert_int_equal(counter_visit(cs, COUNTER_KIND_GREY, NULL, grey_cb,
	    &s, &err), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.keys[0], "cl");
	assert_int_equal(s.e[0].count, 1);
	assert_string_equal(s.keys[1], "drop");
	assert_int_equal(s.e[1].count, 0);
	assert_int_equal(s.e[1].expires_ms, t0 + DELAY + WINDOW + 1);
	assert_string_equal(s.keys[2], "keep");
	assert_int_equal(s.e[2].kind, COUNTER_KIND_GREY);
	assert_int_equal(s.e[2].oldest_ms, t0);
	assert_int_equal(s.e[2].newest_ms, t0 + DELAY);
	assert_int_equal(s.e[2].count, 1);
	assert_int_equal(s.e[2].expires_ms, t0 + DELAY + MAX_AGE);
	assert_string_equal(counter_kind_name(COUNTER_KIND_GREY), "grey");

	fake_ms = t0 + DELAY + WINDOW + 1;  /* "drop" expires, "keep" not */
	assert_int_equal(counter_sweep(cs, 100, &err), 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(counter_visit(cs, COUNTER_KIND_GREY, NULL, grey_cb,
	    &s, &err), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(counter_key_reset(cs, "keep", &err), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(counter_visit(cs, COUNTER_KIND_GREY, "k", grey_cb,
	    &s, &err), 0);
	assert_int_equal(s.n, 0);
	table_close(cs);
}

/* record - the grey record of key (exactly one with that prefix). */
static struct counter_entry
record(struct counter_store *cs, const char *key)
{
	struct grey_seen s;
	struct error err;

	memset(&s, 0, sizeof(s));
	assert_int_equal(counter_visit(cs, COUNTER_KIND_GREY, key, grey_cb,
	    &s, &err), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.keys[0], key);
	return s.e[0];
}

/* test_recent_pass_readonly - a pass (or an auto-allow) of a record
 * refreshed less than the granularity ago leaves it unchanged; one at
 * the granularity refreshes it (last seen, count, expiry). */
static void
test_recent_pass_readonly(void **state)
{
	struct counter_store *cs = table_open();
	struct counter_grey_params p = params;
	struct counter_grey_result r;
	struct counter_entry e0, e;
	uint64_t gran = counter_grey_refresh_ms(&p), t;

	assert_int_equal(gran, MAX_AGE / 100);
	p.max_age_ms = 1000 * 3600 * SEC;
	assert_int_equal(counter_grey_refresh_ms(&p), 3600 * SEC);
	pass(cs, "rp", NULL);
	e0 = record(cs, "rp");
	assert_int_equal(e0.count, 1);
	fake_ms += gran - 1;
	assert_int_equal(grey(cs, "rp", NULL, &r), COUNTER_GREY_PASSED);
	assert_false(r.first_pass);
	e = record(cs, "rp");
	assert_int_equal(e.newest_ms, e0.newest_ms);
	assert_int_equal(e.count, 1);
	assert_int_equal(e.expires_ms, e0.expires_ms);
	fake_ms += 1;
	assert_int_equal(grey(cs, "rp", NULL, &r), COUNTER_GREY_PASSED);
	assert_false(r.first_pass);
	e = record(cs, "rp");
	assert_int_equal(e.newest_ms, fake_ms);
	assert_int_equal(e.count, 2);
	assert_int_equal(e.expires_ms, fake_ms + MAX_AGE);

	/* an auto-allowed client: its expiry moves only after gran */
	for (int i = 0; i < 3; i++) {
		char tr[16];   /* "x" and any int: -O1 cannot bound i */

		snprintf(tr, sizeof(tr), "x%d", i);
		pass(cs, tr, "cnet");
		fake_ms += 600 * SEC;
	}
	t = fake_ms;
	assert_int_equal(grey(cs, "y", "cnet", &r), COUNTER_GREY_AUTO_ALLOWED);
	e0 = record(cs, "cnet");
	assert_int_equal(e0.expires_ms, t + MAX_AGE);
	fake_ms += 500 * SEC;       /* < gran, < auto_allow_interval */
	assert_int_equal(grey(cs, "y", "cnet", &r), COUNTER_GREY_AUTO_ALLOWED);
	assert_int_equal(r.client_count, e0.count);
	e = record(cs, "cnet");
	assert_int_equal(e.expires_ms, e0.expires_ms);
	assert_int_equal(e.newest_ms, e0.newest_ms);
	assert_int_equal(e.count, e0.count);
	fake_ms = t + gran;
	assert_int_equal(grey(cs, "y", "cnet", &r), COUNTER_GREY_AUTO_ALLOWED);
	e = record(cs, "cnet");
	assert_int_equal(e.expires_ms, fake_ms + MAX_AGE);
	table_close(cs);
}

/* test_arguments - bad parameters refused (greylisted, never a pass). */
static void
test_arguments(void **state)
{
	struct counter_store *cs = table_open();
	struct counter_grey_params p = params;
	struct counter_grey_result r;
	struct error err;

	p.delay_ms = WINDOW + 1;
	assert_int_equal(counter_grey_check(cs, "x", "c", &p, &r, &err), -1);
	assert_int_equal(r.verdict, COUNTER_GREY_GREYLISTED);
	p = params;
	p.max_age_ms = 0;
	assert_int_equal(counter_grey_check(cs, "x", "c", &p, &r, &err), -1);
	p = params;
	assert_int_equal(counter_grey_check(cs, "", "c", &p, &r, &err), -1);
	assert_int_equal(counter_grey_check(cs, "x", NULL, &p, &r, &err), -1);
	p.auto_allow_after = 0;
	assert_int_equal(counter_grey_check(cs, "x", NULL, &p, &r, &err), 0);
	table_close(cs);
}

/* ==== Sender normalisation ==== */

static void
test_sender_normalise(void **state)
{
	static const char *const cases[][2] = {
		{ "Alice@Example.ORG", "alice@example.org" },
		{ "alice+list-42@example.org", "alice@example.org" },
		{ "bounce-12345-bob=example.com@lists.example", "bounce-#-bob=example.com@lists.example" },
		{ "bounce-12345@lists.example", "bounce-#@lists.example" },
		{ "user123@example.org", "user123@example.org" },
		{ "123@example.org", "#@example.org" },
		{ "a.2024.b@example.org", "a.#.b@example.org" },
		{ "prvs=0123456789=alice@example.org", "alice@example.org" },
		{ "prvs=alice=0123456789@example.org", "alice@example.org" },
		{ "SRS0=HhJk=2B=example.com=alice@forwarder.example",
		  "srs0=example.com=alice@forwarder.example" },
		{ "SRS1=Xy7q=fwd.example==HhJk=2B=example.com=alice@relay.example",
		  "srs1=fwd.example=example.com=alice@relay.example" },
		{ "", "" },
		{ "postmaster", "postmaster" },
	};
	char out[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		greylist_sender_normalise(cases[i][0], out, sizeof(out));
		if (strcmp(out, cases[i][1]) != 0)
			fail_msg("normalise(%s) = %s, want %s", cases[i][0],
			    out, cases[i][1]);
	}
	greylist_sender_normalise(NULL, out, sizeof(out));
	assert_string_equal(out, "");
}

/* ==== The rule ==== */

static const char grey_yaml[] =
    "      greylisting:\n"
    "        delay: 60s\n"
    "        retry_window: 1h\n"
    "        max_age: 1d\n"
    "        auto_allow_after: 0\n"
    "        exempt_ips: [198.51.100.0/24]\n";

/* rcpt - one RCPT from ip, sender s, recipient r; its code (0 continue). */
#define RCPT(fx, d, ip, s, r, ...) ASK((fx), (d), "RCPT", (ip), \
    "sender=" s, "recipient=" r, ##__VA_ARGS__)

/* test_rule_greylists - 450 4.2.0 with the seconds left, then 250 after
 * the delay; same /24, same triplet; the metrics per result. */
static void
test_rule_greylists(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, grey_yaml), 0);
	RCPT(&fx, &d, "192.0.2.7", "alice@example.org", "bob@example.com");
	expect(&d, 450, "4.2.0");
	assert_string_equal(d.result.message, "Greylisted, retry in 60 seconds");
	fake_ms += 20 * SEC + 500;
	RCPT(&fx, &d, "192.0.2.7", "alice@example.org", "bob@example.com");
	expect(&d, 450, "4.2.0");
	assert_string_equal(d.result.message, "Greylisted, retry in 40 seconds");
	fake_ms += 40 * SEC;
	/* another host of the /24, VERP-varied sender, upper-case rcpt */
	RCPT(&fx, &d, "192.0.2.200", "Alice+x-99@EXAMPLE.org",
	    "Bob@Example.COM");
	expect(&d, 0, NULL);
	/* another /24 is another triplet */
	RCPT(&fx, &d, "192.0.3.7", "alice@example.org", "bob@example.com");
	expect(&d, 450, "4.2.0");
	assert_int_equal(metric_value(&fx, "policy_greylist_greylisted_total"), 3);
	assert_int_equal(metric_value(&fx, "policy_greylist_passed_total"), 1);
	/* MAIL is not greylisted; CONNECT neither */
	ASK(&fx, &d, "MAIL", "192.0.2.9", "sender=x@example.org");
	expect(&d, 0, NULL);
	fx_close(&fx);
}

/* test_rule_ipv6 - IPv6 clients share their /64. */
static void
test_rule_ipv6(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, grey_yaml), 0);
	RCPT(&fx, &d, "2001:db8:1:2::7", "a@example.org", "b@example.com");
	expect(&d, 450, "4.2.0");
	fake_ms += 60 * SEC;
	RCPT(&fx, &d, "2001:db8:1:2:ffff::1", "a@example.org", "b@example.com");
	expect(&d, 0, NULL);
	RCPT(&fx, &d, "2001:db8:1:3::7", "a@example.org", "b@example.com");
	expect(&d, 450, "4.2.0");
	fx_close(&fx);
}

/* test_rule_exempt - authenticated and exempt_ips clients skip it (and
 * are counted as exempt). */
static void
test_rule_exempt(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, grey_yaml), 0);
	RCPT(&fx, &d, "198.51.100.9", "a@example.org", "b@example.com");
	expect(&d, 0, NULL);
	RCPT(&fx, &d, "192.0.2.7", "a@example.org", "b@example.com",
	    "sasl_username=alice", "sasl_method=PLAIN");
	expect(&d, 0, NULL);
	assert_int_equal(metric_value(&fx, "policy_greylist_exempt_total"), 2);
	RCPT(&fx, &d, "192.0.2.7", "a@example.org", "b@example.com");
	expect(&d, 450, "4.2.0");
	fx_close(&fx);
}

/* test_rule_auto_allow - with auto_allow_after 1 a network that passed
 * once is not greylisted for another triplet. */
static void
test_rule_auto_allow(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx,
	    "      greylisting: {delay: 10s, auto_allow_after: 1}\n"), 0);
	RCPT(&fx, &d, "192.0.2.7", "a@example.org", "b@example.com");
	expect(&d, 450, "4.2.0");
	fake_ms += 10 * SEC;
	RCPT(&fx, &d, "192.0.2.7", "a@example.org", "b@example.com");
	expect(&d, 0, NULL);
	RCPT(&fx, &d, "192.0.2.8", "z@example.net", "y@example.com");
	expect(&d, 0, NULL);
	assert_int_equal(metric_value(&fx,
	    "policy_greylist_auto_allowed_total"), 1);
	fx_close(&fx);
}

/* test_rule_postfix - the same rule for a Postfix's RCPT request. */
static void
test_rule_postfix(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, grey_yaml), 0);
	ask_on(&fx, PLUGIN_LISTENER_POSTFIX, 0, &d, "RCPT", "192.0.2.7",
	    "sender=a@example.org", "recipient=b@example.com",
	    "instance=i1", NULL);
	expect(&d, 450, "4.2.0");
	fx_close(&fx);
}

/* test_rule_config - defaults load; bad values named. */
static void
test_rule_config(void **state)
{
	struct fx fx;

	assert_int_equal(fx_open(&fx, "      greylisting: {}\n"), 0);
	fx_close(&fx);
	assert_int_equal(fx_open(&fx,
	    "      greylisting: {delay: 3d, retry_window: 2d}\n"), -1);
	assert_non_null(strstr(fx.err, "delay at most retry_window"));
	fx_close(&fx);
	assert_int_equal(fx_open(&fx,
	    "      greylisting: {ipv4_prefix: 33}\n"), -1);
	assert_non_null(strstr(fx.err, "ipv4_prefix"));
	fx_close(&fx);
	assert_int_equal(fx_open(&fx, "      greylisting: {dealy: 5m}\n"), -1);
	assert_non_null(strstr(fx.err, "delay"));
	fx_close(&fx);
	assert_int_equal(fx_open(&fx, "      greylisting: 5m\n"), -1);
	fx_close(&fx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_triplet_delay),
		cmocka_unit_test(test_retry_window),
		cmocka_unit_test(test_max_age),
		cmocka_unit_test(test_auto_allow),
		cmocka_unit_test(test_two_workers),
		cmocka_unit_test(test_inspect_sweep_reset),
		cmocka_unit_test(test_recent_pass_readonly),
		cmocka_unit_test(test_arguments),
		cmocka_unit_test(test_sender_normalise),
		cmocka_unit_test(test_rule_greylists),
		cmocka_unit_test(test_rule_ipv6),
		cmocka_unit_test(test_rule_exempt),
		cmocka_unit_test(test_rule_auto_allow),
		cmocka_unit_test(test_rule_postfix),
		cmocka_unit_test(test_rule_config),
	};

	log_init("test_greylist", true, LOG_LEVEL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
