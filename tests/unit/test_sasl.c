/*
 * test_sasl.c - unit tests for smtpd/sasl.c: the PLAIN message and the
 * user-name rule, one test per promise of sasl.h (its base64 is
 * test_base64.c's).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_parse),
		cmocka_unit_test(test_name_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
