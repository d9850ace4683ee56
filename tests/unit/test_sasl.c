/*
 * test_sasl.c - unit tests for smtpd/sasl.c: the exchange (what each
 * step asks the session to do), the PLAIN message and the user-name rule,
 * one test per promise of sasl.h (its base64 is test_base64.c's; the
 * replies as the client sees them are test_session.c's).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../smtpd/sasl.h"

static void
test_plain_parse(void **state)
{
	unsigned char msg[64];
	struct sasl_plain p;

	memcpy(msg, "\0alice\0s3cret", 13);
	assert_int_equal(sasl_plain_parse(msg, 13, &p), 0);
	assert_string_equal(p.authzid, "");
	assert_string_equal(p.authcid, "alice");
	assert_int_equal(p.password_len, 6);
	assert_memory_equal(p.password, "s3cret", 6);

	memcpy(msg, "admin\0alice\0pw", 14);
	assert_int_equal(sasl_plain_parse(msg, 14, &p), 0);
	assert_string_equal(p.authzid, "admin");
	assert_string_equal(p.authcid, "alice");
	assert_int_equal(p.password_len, 2);

	/* empty user and password parse (policyd refuses them) */
	memcpy(msg, "\0\0", 2);
	assert_int_equal(sasl_plain_parse(msg, 2, &p), 0);
	assert_string_equal(p.authcid, "");
	assert_int_equal(p.password_len, 0);

	/* not exactly two NULs */
	memcpy(msg, "alice", 5);
	assert_int_equal(sasl_plain_parse(msg, 5, &p), -1);
	memcpy(msg, "alice\0pw", 8);
	assert_int_equal(sasl_plain_parse(msg, 8, &p), -1);
	memcpy(msg, "\0alice\0p\0w", 10);
	assert_int_equal(sasl_plain_parse(msg, 10, &p), -1);
	assert_int_equal(sasl_plain_parse(msg, 0, &p), -1);
}

static void
test_name_valid(void **state)
{
	char name[SASL_USER_MAX + 2];

	assert_true(sasl_name_valid("alice", 5));
	assert_true(sasl_name_valid("", 0));
	assert_true(sasl_name_valid("j\xc3\xb8rn@example.org", 17));
	assert_false(sasl_name_valid("al\nice", 6));
	assert_false(sasl_name_valid("al\rice", 6));
	assert_false(sasl_name_valid("al\tice", 6));
	assert_false(sasl_name_valid("al\x7fice", 6));
	assert_false(sasl_name_valid("al\0ice", 6));
	assert_false(sasl_name_valid("j\xf8rn", 4));     /* Latin-1, not UTF-8 */
	memset(name, 'a', sizeof(name));
	assert_true(sasl_name_valid(name, SASL_USER_MAX));
	assert_false(sasl_name_valid(name, SASL_USER_MAX + 1));
}

/* test_exchange_plain - PLAIN with an initial response asks policyd with
 * the user, the authzid and the password as base64; without one a 334
 * comes first; "*" cancels; bad base64 and a bad message are 501. */
static void
test_exchange_plain(void **state)
{
	struct sasl_exchange x;
	struct sasl_outcome out;

	memset(&x, 0, sizeof(x));
	/* base64("admin\0alice\0pw") */
	sasl_start(&x, "PLAIN YWRtaW4AYWxpY2UAcHc=", 26, &out);
	assert_int_equal(out.next, SASL_NEXT_ASK);
	assert_string_equal(x.method, "PLAIN");
	assert_string_equal(x.user, "alice");
	assert_string_equal(x.authzid, "admin");
	assert_string_equal(x.secret, "cHc=");
	sasl_wipe_secret(&x);
	assert_null(x.secret);
	sasl_clear(&x, false);
	assert_null(x.user);

	sasl_start(&x, "plain", 5, &out);
	assert_int_equal(out.next, SASL_NEXT_CHALLENGE);
	assert_string_equal(out.line, "334 ");
	sasl_response(&x, "AGJvYgBzM2NyM3Q=", 16, &out);   /* \0bob\0s3cr3t */
	assert_int_equal(out.next, SASL_NEXT_ASK);
	assert_string_equal(x.user, "bob");
	assert_null(x.authzid);
	sasl_clear(&x, false);

	sasl_start(&x, "PLAIN", 5, &out);
	sasl_response(&x, "*", 1, &out);
	assert_int_equal(out.next, SASL_NEXT_REFUSE);
	assert_int_equal(out.code, 501);
	assert_string_equal(out.enhanced, "5.7.0");
	sasl_start(&x, "PLAIN", 5, &out);
	sasl_response(&x, "!!!!", 4, &out);
	assert_int_equal(out.code, 501);
	assert_string_equal(out.enhanced, "5.5.2");
	sasl_start(&x, "PLAIN =", 7, &out);      /* empty: no NULs at all */
	assert_int_equal(out.next, SASL_NEXT_REFUSE);
	assert_int_equal(out.code, 501);
	assert_non_null(out.why);
	sasl_clear(&x, false);
}

/* test_exchange_login - LOGIN asks for the user then the password; a bad
 * user name is 535 5.7.8. */
static void
test_exchange_login(void **state)
{
	struct sasl_exchange x;
	struct sasl_outcome out;

	memset(&x, 0, sizeof(x));
	sasl_start(&x, "LOGIN", 5, &out);
	assert_int_equal(out.next, SASL_NEXT_CHALLENGE);
	assert_string_equal(out.line, "334 VXNlcm5hbWU6");
	sasl_response(&x, "YWxpY2U=", 8, &out);              /* alice */
	assert_int_equal(out.next, SASL_NEXT_CHALLENGE);
	assert_string_equal(out.line, "334 UGFzc3dvcmQ6");
	sasl_response(&x, "cHc=", 4, &out);                  /* pw */
	assert_int_equal(out.next, SASL_NEXT_ASK);
	assert_string_equal(x.user, "alice");
	assert_string_equal(x.secret, "cHc=");
	sasl_clear(&x, true);                   /* authenticated: kept */
	assert_string_equal(x.user, "alice");
	assert_null(x.secret);
	sasl_clear(&x, false);

	sasl_start(&x, "LOGIN YQpi", 10, &out);             /* "a\nb" */
	assert_int_equal(out.next, SASL_NEXT_REFUSE);
	assert_int_equal(out.code, 535);
	assert_string_equal(out.enhanced, "5.7.8");
	sasl_clear(&x, false);
}

/* test_exchange_command_errors - no mechanism, extra words, an unknown
 * mechanism: refused before any exchange (why NULL: nothing to log). */
static void
test_exchange_command_errors(void **state)
{
	struct sasl_exchange x;
	struct sasl_outcome out;

	memset(&x, 0, sizeof(x));
	sasl_start(&x, "", 0, &out);
	assert_int_equal(out.code, 501);
	assert_string_equal(out.enhanced, "5.5.4");
	assert_null(out.why);
	sasl_start(&x, "PLAIN a b", 9, &out);
	assert_int_equal(out.code, 501);
	assert_null(out.why);
	sasl_start(&x, "CRAM-MD5", 8, &out);
	assert_int_equal(out.code, 504);
	assert_null(out.why);
	assert_null(x.method);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_parse),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_exchange_plain),
		cmocka_unit_test(test_exchange_login),
		cmocka_unit_test(test_exchange_command_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
