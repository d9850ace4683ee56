/*
 * test_dnsbl_site.c - unit tests for policyd/policies/dnsbl_site.c: one
 * test per promise of dnsbl_site.h - postscreen's site syntax (zone,
 * =filter with values, ranges and lists, *weight, negative weights),
 * refusals with a reason, filters deciding what counts, 127.255.255.x
 * never a listing, and the tally (sum, each site once, the blocking site,
 * allowlisting).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../policyd/policies/dnsbl_site.h"

static struct dnsbl_site
parse_ok(const char *spec)
{
	struct dnsbl_site s;
	char err[256] = "";

	if (dnsbl_site_parse(spec, &s, err, sizeof(err)) != 0)
		fail_msg("%s: %s", spec, err);
	return s;
}

static void
match(const struct dnsbl_site *s, uint8_t a, uint8_t b, uint8_t c, uint8_t d,
    bool want)
{
	const uint8_t r[4] = { a, b, c, d };

	if (dnsbl_site_match(s, r) != want)
		fail_msg("%s=%s: %u.%u.%u.%u should %smatch", s->zone, s->filter,
		    a, b, c, d, want ? "" : "not ");
}

/* test_parse_forms - zone alone, filter, weight, both; case and dot. */
static void
test_parse_forms(void **state)
{
	struct dnsbl_site s = parse_ok("Zen.Spamhaus.ORG.");

	assert_string_equal(s.zone, "zen.spamhaus.org");
	assert_int_equal(s.weight, 1);
	assert_false(s.filtered);
	s = parse_ok("bl.example*3");
	assert_int_equal(s.weight, 3);
	s = parse_ok("list.dnswl.org=127.0.[0..255].[1..3]*-5");
	assert_string_equal(s.zone, "list.dnswl.org");
	assert_string_equal(s.filter, "127.0.[0..255].[1..3]");
	assert_int_equal(s.weight, -5);
	assert_true(s.filtered);
}

/* test_parse_refusals - each malformed form refused with a reason. */
static void
test_parse_refusals(void **state)
{
	static const char *const bad[] = {
		"", "=127.0.0.2", "bl..example", "bl.example..", ".", "bl example", "bl.example=",
		"bl.example=127.0.0", "bl.example=127.0.0.256",
		"bl.example=127.0.0.[3..2]", "bl.example=127.0.0.[2..]",
		"bl.example=127.0.0.[2", "bl.example=127.0.0.2.1",
		"bl.example*", "bl.example*x", "bl.example*2*3",
		"bl.example*9999999", "bl.example=127.0.0.2x",
		"bl.example*2=127.0.0.2",
	};
	struct dnsbl_site s;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (dnsbl_site_parse(bad[i], &s, err, sizeof(err)) == 0)
			fail_msg("'%s' accepted", bad[i]);
		assert_true(err[0] != '\0');
	}
	char longzone[300];
	memset(longzone, 'a', sizeof(longzone));
	for (size_t i = 60; i < sizeof(longzone); i += 61)
		longzone[i] = '.';
	longzone[DNSBL_ZONE_MAX + 1] = '\0';
	assert_int_equal(dnsbl_site_parse(longzone, &s, err, sizeof(err)), -1);
}

/* test_filters - a value, a range, a list; no filter: any reply. */
static void
test_filters(void **state)
{
	struct dnsbl_site s = parse_ok("bl.example=127.0.0.2");

	match(&s, 127, 0, 0, 2, true);
	match(&s, 127, 0, 0, 3, false);
	s = parse_ok("bl.example=127.0.0.[2..11]");
	match(&s, 127, 0, 0, 2, true);
	match(&s, 127, 0, 0, 11, true);
	match(&s, 127, 0, 0, 12, false);
	match(&s, 127, 0, 0, 1, false);
	match(&s, 127, 0, 1, 2, false);
	s = parse_ok("bl.example=127.0.0.[2;4;6..7]");
	match(&s, 127, 0, 0, 4, true);
	match(&s, 127, 0, 0, 7, true);
	match(&s, 127, 0, 0, 5, false);
	s = parse_ok("bl.example");
	match(&s, 127, 0, 0, 200, true);
	match(&s, 10, 1, 2, 3, true);
}

/* test_error_codes - 127.255.255.x never lists, even unfiltered or when
 * the filter would take it. */
static void
test_error_codes(void **state)
{
	struct dnsbl_site s = parse_ok("bl.example");
	struct dnsbl_site t = parse_ok("bl.example=127.[0..255].[0..255].[0..255]");
	const uint8_t e[4] = { 127, 255, 255, 254 };

	assert_true(dnsbl_reply_is_error(e));
	match(&s, 127, 255, 255, 254, false);
	match(&t, 127, 255, 255, 252, false);
	match(&t, 127, 255, 254, 1, true);
}

/* test_tally - sum of listing sites, each once; the biggest blocker;
 * allowlists lower the score and flag the client. */
static void
test_tally(void **state)
{
	struct dnsbl_site sites[4];
	const uint8_t r0[][4] = { { 127, 0, 0, 2 }, { 127, 0, 0, 4 } };
	const uint8_t r1[][4] = { { 127, 0, 0, 99 } };     /* outside filter */
	const uint8_t r2[][4] = { { 127, 255, 255, 254 } };
	const uint8_t r3[][4] = { { 127, 0, 5, 2 } };
	struct dnsbl_replies rep[4] = {
		{ r0, 2 }, { r1, 1 }, { r2, 1 }, { r3, 1 },
	};
	struct dnsbl_outcome o;

	sites[0] = parse_ok("a.example*2");
	sites[1] = parse_ok("b.example=127.0.0.[2..11]*5");
	sites[2] = parse_ok("c.example*7");
	sites[3] = parse_ok("wl.example=127.0.[0..255].[2..3]*-4");
	dnsbl_tally(sites, 3, rep, &o);
	assert_int_equal(o.score, 2);          /* a once; b's reply outside */
	assert_int_equal(o.blocked_by, 0);
	assert_false(o.allowlisted);
	assert_int_equal(o.errors, 1);
	dnsbl_tally(sites, 4, rep, &o);
	assert_int_equal(o.score, -2);
	assert_true(o.allowlisted);
	rep[1].addrs = r0;
	dnsbl_tally(sites, 2, rep, &o);
	assert_int_equal(o.score, 7);
	assert_int_equal(o.blocked_by, 1);
	rep[0].count = rep[1].count = 0;
	dnsbl_tally(sites, 2, rep, &o);
	assert_int_equal(o.score, 0);
	assert_int_equal(o.blocked_by, -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_forms),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_error_codes),
		cmocka_unit_test(test_tally),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
