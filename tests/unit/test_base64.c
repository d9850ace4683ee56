/*
 * test_base64.c - unit tests for common/base64.c: the strict decoder (one
 * encoding per byte string, bounded output) and the encoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base64.h"

/* decode - base64_decode of a C string into 64 bytes. */
static long
decode(const char *in, unsigned char *out)
{
	return base64_decode(in, strlen(in), out, 64);
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
	assert_int_equal(base64_decode("YW\0x", 4, out, sizeof(out)), -1);
}

static void
test_b64_encode(void **state)
{
	char out[16];

	assert_int_equal(base64_encode((const unsigned char *)"", 0, out,
	    sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(base64_encode((const unsigned char *)"s3cret", 6,
	    out, sizeof(out)), 8);
	assert_string_equal(out, "czNjcmV0");
	assert_int_equal(base64_encode((const unsigned char *)"alice", 5,
	    out, sizeof(out)), 8);
	assert_string_equal(out, "YWxpY2U=");
	assert_int_equal(base64_encode((const unsigned char *)"pw", 2, out,
	    sizeof(out)), 4);
	assert_string_equal(out, "cHc=");
	/* any byte survives, and it does not fit: -1 */
	assert_int_equal(base64_encode((const unsigned char *)"\0\n\r", 3,
	    out, sizeof(out)), 4);
	assert_string_equal(out, "AAoN");
	assert_int_equal(base64_encode((const unsigned char *)"alice", 5,
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
		long n = base64_encode(in, len, enc, sizeof(enc));

		assert_true(n >= 0);
		assert_int_equal(base64_decode(enc, (size_t)n, back, sizeof(back)),
		    (long)len);
		assert_memory_equal(back, in, len);
	}
}

/* test_decode_bounded - what policyd's check decodes: the classic
 * vectors, malformed input, and an output buffer too small. */
static void
test_decode_bounded(void **state)
{
	unsigned char out[16];

	assert_int_equal(base64_decode("", 0, out, sizeof(out)), 0);
	assert_int_equal(base64_decode("Zg==", 4, out, sizeof(out)), 1);
	assert_int_equal(out[0], 'f');
	assert_int_equal(base64_decode("Zm8=", 4, out, sizeof(out)), 2);
	assert_memory_equal(out, "fo", 2);
	assert_int_equal(base64_decode("Zm9vYmFy", 8, out, sizeof(out)), 6);
	assert_memory_equal(out, "foobar", 6);
	assert_int_equal(base64_decode("/+8=", 4, out, sizeof(out)), 2);
	assert_int_equal(out[0], 0xff);
	assert_int_equal(out[1], 0xef);
	assert_int_equal(base64_decode("Zg", 2, out, sizeof(out)), -1);
	assert_int_equal(base64_decode("Zg=a", 4, out, sizeof(out)), -1);
	assert_int_equal(base64_decode("Z===", 4, out, sizeof(out)), -1);
	assert_int_equal(base64_decode("Zg==Zg==", 8, out, sizeof(out)), -1);
	assert_int_equal(base64_decode("Zm9v YmFy", 9, out, sizeof(out)), -1);
	assert_int_equal(base64_decode("Zm9-", 4, out, sizeof(out)), -1);
	assert_int_equal(base64_decode("Zm9vYmFy", 8, out, 5), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_decode),
		cmocka_unit_test(test_b64_decode_strict),
		cmocka_unit_test(test_b64_encode),
		cmocka_unit_test(test_b64_round_trip),
		cmocka_unit_test(test_decode_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
