/*
 * test_dsn_param.c - the RFC 3461 parameter values (common/dsn_param.c):
 * xtext both ways, NOTIFY lists, RET and ORCPT, each accepted form and
 * each refusal, and the bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dsn_param.h"

#define S(lit) lit, sizeof(lit) - 1

static void
test_xtext_decode(void **state)
{
	char out[16], enc[64];

	assert_int_equal(dsn_xtext_decode(S("a+2Bb+3Dc"), out, sizeof(out)), 0);
	assert_string_equal(out, "a+b=c");
	assert_int_equal(dsn_xtext_decode(S("+C3+A9"), out, sizeof(out)), 0);
	assert_string_equal(out, "\xc3\xa9");
	/* Round trip with the encoder. */
	assert_int_equal(dsn_xtext_encode("x+y=z", enc, sizeof(enc)), 0);
	assert_int_equal(dsn_xtext_decode(enc, strlen(enc), out, sizeof(out)),
	    0);
	assert_string_equal(out, "x+y=z");
	/* Refused: '=', space, a short or lower-case or non-hex escape, an
	 * escaped control byte or NUL, output that does not fit. */
	assert_int_equal(dsn_xtext_decode(S("a=b"), out, sizeof(out)), -1);
	assert_int_equal(dsn_xtext_decode(S("a b"), out, sizeof(out)), -1);
	assert_int_equal(dsn_xtext_decode(S("a+2"), out, sizeof(out)), -1);
	assert_int_equal(dsn_xtext_decode(S("a+"), out, sizeof(out)), -1);
	assert_int_equal(dsn_xtext_decode(S("a+2b"), out, sizeof(out)), -1);
	assert_int_equal(dsn_xtext_decode(S("a+G0"), out, sizeof(out)), -1);
	assert_int_equal(dsn_xtext_decode(S("a+0A"), out, sizeof(out)), -1);
	assert_int_equal(dsn_xtext_decode(S("a+00"), out, sizeof(out)), -1);
	assert_int_equal(dsn_xtext_decode(S("a+7F"), out, sizeof(out)), -1);
	assert_int_equal(dsn_xtext_decode(S("abcd"), out, 4), -1);
	assert_int_equal(dsn_xtext_decode(S("abc"), out, 4), 0);
}

static void
test_notify(void **state)
{
	char text[DSN_NOTIFY_TEXT_MAX];
	unsigned bits = 99;

	assert_int_equal(dsn_notify_parse(S("NEVER"), &bits), 0);
	assert_int_equal(bits, DSN_NOTIFY_NEVER);
	assert_int_equal(dsn_notify_parse(S("delay,Success"), &bits), 0);
	assert_int_equal(bits, DSN_NOTIFY_DELAY | DSN_NOTIFY_SUCCESS);
	dsn_notify_format(bits, text);
	assert_string_equal(text, "SUCCESS,DELAY");
	dsn_notify_format(DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE |
	    DSN_NOTIFY_DELAY, text);
	assert_string_equal(text, "SUCCESS,FAILURE,DELAY");
	dsn_notify_format(DSN_NOTIFY_NEVER | DSN_NOTIFY_DELAY, text);
	assert_string_equal(text, "NEVER");
	dsn_notify_format(0, text);
	assert_string_equal(text, "");
	bits = 7;
	assert_int_equal(dsn_notify_parse(S(""), &bits), -1);
	assert_int_equal(dsn_notify_parse(S("NEVER,FAILURE"), &bits), -1);
	assert_int_equal(dsn_notify_parse(S("FAILURE,NEVER"), &bits), -1);
	assert_int_equal(dsn_notify_parse(S("FAILURE,FAILURE"), &bits), -1);
	assert_int_equal(dsn_notify_parse(S("FAILURE,"), &bits), -1);
	assert_int_equal(dsn_notify_parse(S(",FAILURE"), &bits), -1);
	assert_int_equal(dsn_notify_parse(S("FAILURE DELAY"), &bits), -1);
	assert_int_equal(dsn_notify_parse(S("FAIL"), &bits), -1);
	assert_int_equal(bits, 7);              /* untouched on failure */
}

static void
test_ret_and_orcpt(void **state)
{
	enum dsn_ret ret = DSN_RET_DEFAULT;
	char out[DSN_ORCPT_MAX + 1], big[DSN_ORCPT_MAX + 2];

	assert_int_equal(dsn_ret_parse(S("full"), &ret), 0);
	assert_int_equal(ret, DSN_RET_FULL);
	assert_string_equal(dsn_ret_name(ret), "FULL");
	assert_int_equal(dsn_ret_parse(S("HDRS"), &ret), 0);
	assert_string_equal(dsn_ret_name(ret), "HDRS");
	assert_string_equal(dsn_ret_name(DSN_RET_DEFAULT), "");
	assert_int_equal(dsn_ret_parse(S("FULLX"), &ret), -1);
	assert_int_equal(dsn_ret_parse(S(""), &ret), -1);

	assert_int_equal(dsn_orcpt_parse(S("rfc822;a+2Bb@c.example"), out,
	    sizeof(out)), 0);
	assert_string_equal(out, "rfc822;a+b@c.example");
	assert_int_equal(dsn_orcpt_parse(S("utf-8;x"), out, sizeof(out)), 0);
	assert_int_equal(dsn_orcpt_parse(S("rfc822"), out, sizeof(out)), -1);
	assert_int_equal(dsn_orcpt_parse(S(";a@b"), out, sizeof(out)), -1);
	assert_int_equal(dsn_orcpt_parse(S("rfc822;"), out, sizeof(out)), -1);
	assert_int_equal(dsn_orcpt_parse(S("rfc 822;a@b"), out, sizeof(out)),
	    -1);
	assert_int_equal(dsn_orcpt_parse(S("rfc822;a+0Db"), out, sizeof(out)),
	    -1);
	/* The bound: 500 characters in all; an addr-type of at most 32. */
	memset(big, 'x', sizeof(big));
	memcpy(big, "rfc822;", 7);
	assert_int_equal(dsn_orcpt_parse(big, DSN_ORCPT_MAX, out, sizeof(out)),
	    0);
	assert_int_equal(strlen(out), DSN_ORCPT_MAX);
	assert_int_equal(dsn_orcpt_parse(big, DSN_ORCPT_MAX + 1, out,
	    sizeof(out)), -1);
	memset(big, 'a', 40);
	big[33] = ';';
	assert_int_equal(dsn_orcpt_parse(big, 40, out, sizeof(out)), -1);
	big[32] = ';';
	assert_int_equal(dsn_orcpt_parse(big, 40, out, sizeof(out)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xtext_decode),
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_ret_and_orcpt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
