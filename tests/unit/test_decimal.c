/*
 * test_decimal.c - unit tests for common/decimal.c, one per promise of
 * decimal.h: digits with an optional '-' and nothing else, the bounds,
 * overflow refused, *out untouched on refusal, the length-bounded form
 * reading no further than len; and its three readers (the state file,
 * the envelope's `received`, elemtactl's status file) refusing what
 * strtoll used to let through.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "decimal.h"
#include "strbuf.h"
#include "../../tools/elemtactl/elemtactl.h"
#include "queue_file.h"
#include "queue_state.h"

/* ok - s parses in [min, max] to want. */
static void
ok(const char *s, int64_t min, int64_t max, int64_t want)
{
	int64_t v = 12345;

	assert_int_equal(decimal_parse(s, min, max, &v), 0);
	assert_true(v == want);
}

/* bad - s is refused and *out left alone. */
static void
bad(const char *s, int64_t min, int64_t max)
{
	int64_t v = 777;

	assert_int_equal(decimal_parse(s, min, max, &v), -1);
	assert_true(v == 777);
}

/* test_accepts_plain_decimals - digits, a leading '-', leading zeros. */
static void
test_accepts_plain_decimals(void **state)
{
	ok("0", 0, 10, 0);
	ok("7", 0, 10, 7);
	ok("007", 0, 10, 7);
	ok("-5", -10, 10, -5);
	ok("9223372036854775807", INT64_MIN, INT64_MAX, INT64_MAX);
	ok("-9223372036854775808", INT64_MIN, INT64_MAX, INT64_MIN);
}

/* test_refuses_what_strtoll_took - empty, signs alone, '+', white space
 * before or after, trailing bytes, hex, a second sign. */
static void
test_refuses_what_strtoll_took(void **state)
{
	static const char *const cases[] = {
		"", "-", "+1", " 1", "1 ", "\t1", "1\n", "12abc", "0x10",
		"--1", "-+1", "1-", "1.5", "1e3", "- 1",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		bad(cases[i], INT64_MIN, INT64_MAX);
}

/* test_bounds - min and max are inclusive; outside is refused. */
static void
test_bounds(void **state)
{
	ok("10", 0, 10, 10);
	bad("11", 0, 10);
	bad("-1", 0, 10);
	ok("1", 1, 1, 1);
}

/* test_overflow_refused - one past INT64_MAX/MIN, and far past. */
static void
test_overflow_refused(void **state)
{
	bad("9223372036854775808", INT64_MIN, INT64_MAX);
	bad("-9223372036854775809", INT64_MIN, INT64_MAX);
	bad("99999999999999999999999", INT64_MIN, INT64_MAX);
}

/* test_length_bounded - parse_n reads len bytes only: a digit after them
 * is not part of the number, a NUL or letter inside is refused. */
static void
test_length_bounded(void **state)
{
	int64_t v = 0;

	assert_int_equal(decimal_parse_n("1234", 2, 0, 100, &v), 0);
	assert_true(v == 12);
	assert_int_equal(decimal_parse_n("12 x", 2, 0, 100, &v), 0);
	assert_int_equal(decimal_parse_n("1\0" "2", 3, 0, 100, &v), -1);
	assert_int_equal(decimal_parse_n("5", 0, 0, 100, &v), -1);
}

/* test_state_file_strict - a rcpt line's numbers go through it. */
static void
test_state_file_strict(void **state)
{
	static const char good[] = "elemta-queue-state 1\nhold 0\nwarned 0\n"
	    "bounce -\nrcpt deferred 2 100 90 451 4.0.0 try later\n";
	static const char *const worse[] = {
		"elemta-queue-state 1\nrcpt deferred +2 100 90 451 - x\n",
		"elemta-queue-state 1\nrcpt deferred 2 100x 90 451 - x\n",
		"elemta-queue-state 1\nhold +1\n",
		"elemta-queue-state +1\n",
	};
	struct queue_state st;
	struct error err;

	assert_int_equal(queue_state_parse(good, strlen(good), &st, &err), 0);
	assert_int_equal(st.rcpts[0].attempts, 2);
	queue_state_free(&st);
	for (size_t i = 0; i < sizeof(worse) / sizeof(*worse); i++) {
		assert_int_equal(queue_state_parse(worse[i], strlen(worse[i]),
		    &st, &err), -1);
		queue_state_free(&st);
	}
}

/* envelope - a spool file with no body whose envelope's received value
 * is rec, parsed into env. */
static int
envelope(const char *rec, struct queue_envelope_read *env)
{
	char *rcpts[] = { "c@d.example" };
	struct queue_envelope e = {
		.received = 1764201600, .client_address = "192.0.2.1",
		.helo = "h.example", .protocol = "ESMTP", .tls = "none",
		.auth_user = "", .sender = "a@b.example", .recipients = rcpts,
		.recipient_count = 1,
	};
	struct strbuf sb = STRBUF_INIT(1u << 20), out = STRBUF_INIT(1u << 20);
	struct error err;
	const char *at;
	int rc;

	assert_int_equal(queue_envelope_format(&sb, "ABC", &e, 0), 0);
	at = strstr(strbuf_cstr(&sb), "1764201600");
	assert_non_null(at);
	assert_int_equal(strbuf_append(&out, sb.data, (size_t)(at - sb.data)), 0);
	assert_int_equal(strbuf_appendf(&out, "%s", rec), 0);
	at += strlen("1764201600");
	assert_int_equal(strbuf_append(&out, at, sb.len - (size_t)(at - sb.data)),
	    0);
	memset(env, 0, sizeof(*env));
	rc = queue_envelope_parse(out.data, out.len, out.len, env, &err);
	strbuf_free(&sb);
	strbuf_free(&out);
	return rc;
}

/* test_envelope_received_strict - `received` used to be strtoll with no
 * check at all: "12abc" read as 12, "abc" as 0. */
static void
test_envelope_received_strict(void **state)
{
	static const char *const worse[] = {
		"12abc", "abc", "-5", "+5", "",
	};
	struct queue_envelope_read env;

	assert_int_equal(envelope("1764201600", &env), 0);
	assert_true(env.received == 1764201600);
	queue_envelope_free(&env);
	for (size_t i = 0; i < sizeof(worse) / sizeof(*worse); i++) {
		assert_int_equal(envelope(worse[i], &env), -1);
		queue_envelope_free(&env);
	}
}

/* test_status_file_strict - a worker line with a '+' or a trailing byte
 * in a number is refused. */
static void
test_status_file_strict(void **state)
{
#define HEAD "elemtactl 100 1700000000 1\n"
	static const char good[] = HEAD "smtpd 0 123 running 1700000000 0\n";
	static const char *const worse[] = {
		HEAD "smtpd 0 +123 running 1700000000 0\n",
		HEAD "smtpd 0 123 running 1700000000x 0\n",
		HEAD "smtpd 0 123 running 1700000000 0 -1\n",
		"elemtactl +100 1700000000 1\n",
	};
#undef HEAD
	struct ctl_status st;
	struct error err;

	memset(&st, 0, sizeof(st));
	assert_int_equal(ctl_status_parse(good, strlen(good), &st, &err), 0);
	ctl_status_free(&st);
	for (size_t i = 0; i < sizeof(worse) / sizeof(*worse); i++) {
		memset(&st, 0, sizeof(st));
		assert_int_equal(ctl_status_parse(worse[i], strlen(worse[i]),
		    &st, &err), -1);
		ctl_status_free(&st);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts_plain_decimals),
		cmocka_unit_test(test_refuses_what_strtoll_took),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_overflow_refused),
		cmocka_unit_test(test_length_bounded),
		cmocka_unit_test(test_state_file_strict),
		cmocka_unit_test(test_envelope_received_strict),
		cmocka_unit_test(test_status_file_strict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
