/*
 * test_domain.c - unit tests for common/domain.c: one test per promise of
 * domain.h (the UTS-46 label separators, case, U-labels to A-labels,
 * A-labels verified, ASCII labels only lower-cased, literals unchanged,
 * and every way a domain can lack a canonical form).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "domain.h"

/* canon - the canonical form of text, or "(invalid)". */
static const char *
canon(const char *text)
{
	static char buf[DOMAIN_MAX + 1];
	struct error err;

	if (domain_canonical(text, strlen(text), buf, sizeof(buf), &err) < 0) {
		assert_int_equal(buf[0], '\0');
		assert_true(err.text[0] != '\0');
		return "(invalid)";
	}
	return buf;
}

/* test_unicode_dots - the three other UTS-46 full stops are dots: the
 * issue 22 bypass of blocked_recipient_domains. */
static void
test_unicode_dots(void **state)
{
	(void)state;
	assert_string_equal(canon("blocked\xe3\x80\x82" "com"), "blocked.com");
	assert_string_equal(canon("blocked\xef\xbc\x8e" "com"), "blocked.com");
	assert_string_equal(canon("blocked\xef\xbd\xa1" "com"), "blocked.com");
	assert_string_equal(canon("a\xe3\x80\x82" "blocked\xef\xbd\xa1" "com"),
	    "a.blocked.com");
	/* A leading one makes an empty first label, not "blocked.com". */
	assert_string_equal(canon("\xef\xbc\x8e" "blocked.com"), "(invalid)");
	/* A trailing one is the root, like a trailing '.'. */
	assert_string_equal(canon("blocked.com\xe3\x80\x82"), "blocked.com");
}

/* test_case - lower case, ASCII and not. */
static void
test_case(void **state)
{
	(void)state;
	assert_string_equal(canon("BLOCKED.Com"), "blocked.com");
	assert_string_equal(canon("example.com."), "example.com");
	assert_string_equal(canon("B\xc3\x9c" "CHER.Example"),
	    "xn--bcher-kva.example");
	/* Fullwidth Latin letters map to ASCII ones. */
	assert_string_equal(canon("\xef\xbd\x82locked.com"), "blocked.com");
}

/* test_u_labels - U-labels become A-labels (non-transitional: ß stays). */
static void
test_u_labels(void **state)
{
	(void)state;
	assert_string_equal(canon("b\xc3\xbc" "cher.example"),
	    "xn--bcher-kva.example");
	assert_string_equal(canon("fa\xc3\x9f.de"), "xn--fa-hia.de");
	assert_string_equal(canon("\xe4\xbe\x8b\xe3\x81\x88.jp"),
	    "xn--r8jz45g.jp");
}

/* test_a_labels - an A-label is verified and kept (lower-cased). */
static void
test_a_labels(void **state)
{
	(void)state;
	assert_string_equal(canon("xn--bcher-kva.example"),
	    "xn--bcher-kva.example");
	assert_string_equal(canon("XN--BCHER-KVA.example"),
	    "xn--bcher-kva.example");
	assert_string_equal(canon("xn--zz.example"), "(invalid)");
	assert_string_equal(canon("xn--a.example"), "(invalid)");
	/* The bare prefix, and a Punycode whose label is all ASCII (an
	 * A-label must decode to a U-label). */
	assert_string_equal(canon("xn--.example"), "(invalid)");
	assert_string_equal(canon("xn--abc-.example"), "(invalid)");
	/* A valid Punycode of a ZWJ with no context (CONTEXTJ). */
	assert_string_equal(canon("xn--ab-m1t.com"), "(invalid)");
}

/* test_ascii_labels - hyphen rules of IDNA2008 do not touch ASCII labels;
 * digits, '_' and the 63-octet limit. */
static void
test_ascii_labels(void **state)
{
	char l63[80], l64[80];

	(void)state;
	assert_string_equal(canon("r3---sn-abc.googlevideo.com"),
	    "r3---sn-abc.googlevideo.com");
	assert_string_equal(canon("123.example"), "123.example");
	assert_string_equal(canon("mx_1.example"), "mx_1.example");
	assert_string_equal(canon("_dmarc.Example.COM"), "_dmarc.example.com");
	memset(l63, 'a', 63);
	strcpy(l63 + 63, ".com");
	memset(l64, 'a', 64);
	strcpy(l64 + 64, ".com");
	assert_string_equal(canon(l63), l63);
	assert_string_equal(canon(l64), "(invalid)");
}

/* test_invalid - no canonical form: empty labels, controls, separators,
 * bidi controls, characters outside the host-name set, overlong. */
static void
test_invalid(void **state)
{
	char longd[400];

	(void)state;
	assert_string_equal(canon(""), "(invalid)");
	assert_string_equal(canon("."), "(invalid)");
	assert_string_equal(canon("a..b"), "(invalid)");
	assert_string_equal(canon(".example.com"), "(invalid)");
	assert_string_equal(canon("\xe2\x80\xa8x.com"), "(invalid)"); /* U+2028 */
	assert_string_equal(canon("\xc2\x85x.com"), "(invalid)");     /* U+0085 */
	assert_string_equal(canon("\xe2\x80\xae" "x.com"), "(invalid)"); /* RLO */
	assert_string_equal(canon("a b.com"), "(invalid)");
	assert_string_equal(canon("a@b.com"), "(invalid)");
	assert_string_equal(canon("\xe2\x92\x88" "com"), "(invalid)"); /* "1." */
	assert_string_equal(canon("\xff.com"), "(invalid)");
	/* Fullwidth low line and hyphen-minus map to '_' and '-': not in an
	 * international label's result. */
	assert_string_equal(canon("a\xef\xbc\xbf" "b.com"), "(invalid)");
	assert_string_equal(canon("\xef\xbc\x8d" "ab.com"), "(invalid)");
	/* A full stop that leaves a label with a hyphen at an end. */
	assert_string_equal(canon("ea.xpl\xef\xbc\x8e-pcom"), "(invalid)");
	assert_string_equal(canon("a-\xe3\x80\x82" "com"), "(invalid)");
	assert_string_equal(canon("-a.com"), "(invalid)");
	for (size_t i = 0; i < 6; i++)
		memcpy(longd + i * 50, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.",
		    50);
	strcpy(longd + 300, "com");
	assert_string_equal(canon(longd), "(invalid)");
	assert_int_equal(domain_canonical("a\0b.com", 7, longd, sizeof(longd),
	    NULL), -1);
}

/* test_literal - an address literal is not a domain: kept as given. */
static void
test_literal(void **state)
{
	char small[8];

	(void)state;
	assert_string_equal(canon("[192.0.2.1]"), "[192.0.2.1]");
	assert_string_equal(canon("[IPv6:2001:DB8::1]"), "[IPv6:2001:DB8::1]");
	assert_string_equal(canon("[192.0.2.1"), "(invalid)");
	assert_int_equal(domain_canonical("[192.0.2.1]", 11, small,
	    sizeof(small), NULL), -1);
}

/* test_small_output - out smaller than the result: refused, terminated. */
static void
test_small_output(void **state)
{
	char out[8];

	(void)state;
	assert_int_equal(domain_canonical("example.com", 11, out, sizeof(out),
	    NULL), -1);
	assert_string_equal(out, "");
	assert_int_equal(domain_canonical("a.b", 3, out, sizeof(out), NULL), 0);
	assert_string_equal(out, "a.b");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unicode_dots),
		cmocka_unit_test(test_case),
		cmocka_unit_test(test_u_labels),
		cmocka_unit_test(test_a_labels),
		cmocka_unit_test(test_ascii_labels),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_literal),
		cmocka_unit_test(test_small_output),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
