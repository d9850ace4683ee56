/*
 * test_sasl.c - unit tests for smtpd/sasl.c: strict base64 both ways,
 * the PLAIN message and the user-name rule, one test per promise of
 * sasl.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../smtpd/sasl.h"

/* decode - sasl_b64_decode of a C string. */
static long
decode(const char *in, unsigned char *out)
{
	return sasl_b64_decode(in, strlen(in), out);
}

static void
test_b64_decode(void **state)
{
	unsigned char out[64];

	assert_int_equal(decode("", out), 0);
	assert_int_equal(decode("AGFsaWNlAHMzY3JldA==", out), 13);
	assert_memory_equal(out, "\0alice\0s3cret", 13);
	assert_int_equal(decode("YWxpY2U=", out), 5);
	assert_memory_equal(out, "alice", 5);
	assert_int_equal(decode("czNjcmV0", out), 6);
	assert_memory_equal(out, "s3cret", 6);
	assert_int_equal(decode("+/+/", out), 3);
	assert_memory_equal(out, "\xfb\xff\xbf", 3);
}

static void
test_b64_decode_strict(void **state)
{
	unsigned char out[64];
	static const char *const bad[] = {
		"YWxpY2U",        /* not a multiple of 4            */
		"YWxpY2U==",      /* idem                           */
		"YW=pY2U=",       /* padding inside                 */
		"YWxpY2U=YWxp",   /* padding before the end         */
		"Y===",           /* too much padding               */
		"====",
		"YWx pY2U=",      /* a blank                        */
		"YWxp\tY2U=",
		"YWxpY2U-",       /* the URL alphabet is not base64  */
		"YWxpY2V=",       /* non-zero bits dropped by '='    */
		"YWxpYx==",
		"*",
		"=",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(decode(bad[i], out), -1);
	/* a NUL is not base64 either */
	assert_int_equal(sasl_b64_decode("YW\0x", 4, out), -1);
}

static void
test_b64_encode(void **state)
{
	char out[16];

	assert_int_equal(sasl_b64_encode((const unsigned char *)"", 0, out,
	    sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(sasl_b64_encode((const unsigned char *)"s3cret", 6,
	    out, sizeof(out)), 8);
	assert_string_equal(out, "czNjcmV0");
	assert_int_equal(sasl_b64_encode((const unsigned char *)"alice", 5,
	    out, sizeof(out)), 8);
	assert_string_equal(out, "YWxpY2U=");
	assert_int_equal(sasl_b64_encode((const unsigned char *)"pw", 2, out,
	    sizeof(out)), 4);
	assert_string_equal(out, "cHc=");
	/* any byte survives, and it does not fit: -1 */
	assert_int_equal(sasl_b64_encode((const unsigned char *)"\0\n\r", 3,
	    out, sizeof(out)), 4);
	assert_string_equal(out, "AAoN");
	assert_int_equal(sasl_b64_encode((const unsigned char *)"alice", 5,
	    out, 8), -1);
}

static void
test_b64_round_trip(void **state)
{
	unsigned char in[300], back[300];
	char enc[420];

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 7 + 3);
	for (size_t len = 0; len < sizeof(in); len += 37) {
		long n = sasl_b64_encode(in, len, enc, sizeof(enc));

		assert_true(n >= 0);
		assert_int_equal(sasl_b64_decode(enc, (size_t)n, back),
		    (long)len);
		assert_memory_equal(back, in, len);
	}
}

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
		cmocka_unit_test(test_b64_decode),
		cmocka_unit_test(test_b64_decode_strict),
		cmocka_unit_test(test_b64_encode),
		cmocka_unit_test(test_b64_round_trip),
		cmocka_unit_test(test_plain_parse),
		cmocka_unit_test(test_name_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
