/*
 * test_addr.c - unit tests for common/addr.c: one test per promise of
 * addr.h (parsing and canonical text for IPv4, IPv6 and IPv4-mapped
 * addresses, rate-limit keys, CIDR parsing and edge prefixes,
 * longest-prefix matching, domain lists, mail domains).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "addr.h"

/* fmt - parse text and return its canonical form (static buffer). */
static const char *
fmt(const char *text)
{
	static char buf[ADDR_TEXT_MAX];
	struct addr_ip ip;

	if (addr_ip_parse(text, &ip) < 0)
		return "(invalid)";
	return addr_ip_format(&ip, buf, sizeof(buf));
}

/* key - the rate-limit key of text at the given IPv6 prefix. */
static const char *
key(const char *text, unsigned prefix)
{
	static char buf[ADDR_TEXT_MAX];
	struct addr_ip ip;

	if (addr_ip_parse(text, &ip) < 0)
		return "(invalid)";
	return addr_ip_key(&ip, prefix, buf, sizeof(buf));
}

/* ip - parse or fail the test. */
static struct addr_ip
ip(const char *text)
{
	struct addr_ip a;

	assert_int_equal(addr_ip_parse(text, &a), 0);
	return a;
}

/* test_parse_v4 - dotted quads are IPv4, stored mapped. */
static void
test_parse_v4(void **state)
{
	struct addr_ip a = ip("192.0.2.7");
	static const uint8_t want[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
		0xff, 192, 0, 2, 7 };

	assert_true(a.is_v4);
	assert_memory_equal(a.bytes, want, 16);
	assert_string_equal(fmt("192.0.2.7"), "192.0.2.7");
	assert_string_equal(fmt("0.0.0.0"), "0.0.0.0");
	assert_string_equal(fmt("255.255.255.255"), "255.255.255.255");
	/* every digit count, including the zeros inside 100 and 10 */
	assert_string_equal(fmt("9.10.99.100"), "9.10.99.100");
	assert_string_equal(fmt("101.110.200.250"), "101.110.200.250");
	{
		struct addr_ip a4;
		char small[8];

		/* too small a buffer: truncated, still terminated */
		assert_int_equal(addr_ip_parse("192.0.2.7", &a4), 0);
		assert_string_equal(addr_ip_format(&a4, small, sizeof(small)),
		    "192.0.2");
	}
}

/* test_parse_v6 - IPv6 in RFC 5952 canonical form. */
static void
test_parse_v6(void **state)
{
	struct addr_ip a = ip("2001:db8::1");

	assert_false(a.is_v4);
	assert_string_equal(fmt("2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
	assert_string_equal(fmt("2001:0db8:0000:0000:0001:0000:0000:0001"),
	    "2001:db8::1:0:0:1");
	/* A single zero group is not shortened. */
	assert_string_equal(fmt("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");
	/* The first of equal zero runs is. */
	assert_string_equal(fmt("2001:0:0:1:0:0:1:1"), "2001::1:0:0:1:1");
	assert_string_equal(fmt("::"), "::");
	assert_string_equal(fmt("::1"), "::1");
	assert_string_equal(fmt("fe80::"), "fe80::");
	assert_string_equal(fmt("1:2:3:4:5:6:7:8"), "1:2:3:4:5:6:7:8");
}

/* test_parse_mapped - IPv4-mapped IPv6 is the IPv4 address. */
static void
test_parse_mapped(void **state)
{
	struct addr_ip a = ip("::ffff:1.2.3.4");
	struct addr_ip b = ip("1.2.3.4");

	assert_true(a.is_v4);
	assert_memory_equal(a.bytes, b.bytes, 16);
	assert_string_equal(fmt("::ffff:1.2.3.4"), "1.2.3.4");
	assert_string_equal(fmt("::FFFF:0102:0304"), "1.2.3.4");
	assert_string_equal(key("::ffff:1.2.3.4", 64), "1.2.3.4");
}

/* test_parse_invalid - garbage, empty, ports, zones and brackets fail. */
static void
test_parse_invalid(void **state)
{
	static const char *const bad[] = {
		"", "1.2.3", "1.2.3.256", "1.2.3.4.5", "::g", "1:2:3:4:5:6:7:8:9",
		"example.com", " 1.2.3.4", "1.2.3.4 ", "[::1]", "1.2.3.4:25",
		"fe80::1%eth0", "192.0.2.0/24",
	};
	struct addr_ip a;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(addr_ip_parse(bad[i], &a), -1);
	assert_int_equal(addr_ip_parse(NULL, &a), -1);
}

/* test_from_sockaddr - AF_INET, AF_INET6 and mapped AF_INET6. */
static void
test_from_sockaddr(void **state)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr sa;
	struct addr_ip a;
	char buf[ADDR_TEXT_MAX];

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "198.51.100.9", &sin.sin_addr);
	assert_int_equal(addr_ip_from_sockaddr((struct sockaddr *)&sin, &a), 0);
	assert_true(a.is_v4);
	assert_string_equal(addr_ip_format(&a, buf, sizeof(buf)), "198.51.100.9");

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::42", &sin6.sin6_addr);
	assert_int_equal(addr_ip_from_sockaddr((struct sockaddr *)&sin6, &a), 0);
	assert_false(a.is_v4);
	assert_string_equal(addr_ip_format(&a, buf, sizeof(buf)), "2001:db8::42");

	inet_pton(AF_INET6, "::ffff:10.1.2.3", &sin6.sin6_addr);
	assert_int_equal(addr_ip_from_sockaddr((struct sockaddr *)&sin6, &a), 0);
	assert_true(a.is_v4);
	assert_string_equal(addr_ip_format(&a, buf, sizeof(buf)), "10.1.2.3");

	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	assert_int_equal(addr_ip_from_sockaddr(&sa, &a), -1);
}

/* test_key_v6_prefix - IPv6 keys on the masked /N network with its
 * length; IPv4 on the address itself. */
static void
test_key_v6_prefix(void **state)
{
	assert_string_equal(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 64),
	    "2001:db8:1:2::/64");
	assert_string_equal(key("2001:db8:1:2::1", 64), "2001:db8:1:2::/64");
	assert_string_equal(key("2001:db8:1:2:ffff::", 48), "2001:db8:1::/48");
	assert_string_equal(key("2001:db8:1:2:ffff::", 56), "2001:db8:1::/56");
	assert_string_equal(key("2001:db8:1:2ff::", 56), "2001:db8:1:200::/56");
	assert_string_equal(key("2001:db8::1", 128), "2001:db8::1/128");
	assert_string_equal(key("2001:db8::1", 0), "::/0");
	assert_string_equal(key("2001:db8::1", 200), "2001:db8::1/128");
	assert_string_equal(key("192.0.2.7", 64), "192.0.2.7");
	/* Two hosts of one /64 share a key. */
	assert_string_equal(key("2001:db8:5:6::1", 64), key("2001:db8:5:6::2", 64));
}

/* test_format_small_buffer - output is always terminated. */
static void
test_format_small_buffer(void **state)
{
	struct addr_ip a = ip("2001:db8::1");
	char buf[6];

	addr_ip_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "2001:");
	addr_ip_key(&a, 64, buf, sizeof(buf));
	assert_string_equal(buf, "2001:");
}

/* test_cidr_parse - prefixes in IPv6 terms, host bits masked. */
static void
test_cidr_parse(void **state)
{
	struct addr_cidr c;
	struct error err;
	char buf[ADDR_TEXT_MAX];

	assert_int_equal(addr_cidr_parse("192.0.2.0/24", &c, &err), 0);
	assert_int_equal(c.prefix, 120);
	assert_true(c.net.is_v4);
	assert_string_equal(addr_ip_format(&c.net, buf, sizeof(buf)), "192.0.2.0");

	assert_int_equal(addr_cidr_parse("192.0.2.77/24", &c, &err), 0);
	assert_string_equal(addr_ip_format(&c.net, buf, sizeof(buf)), "192.0.2.0");

	assert_int_equal(addr_cidr_parse("2001:db8::/32", &c, &err), 0);
	assert_int_equal(c.prefix, 32);
	assert_false(c.net.is_v4);

	assert_int_equal(addr_cidr_parse("2001:db8:ffff::1/33", &c, &err), 0);
	assert_string_equal(addr_ip_format(&c.net, buf, sizeof(buf)),
	    "2001:db8:8000::");

	assert_int_equal(addr_cidr_parse("198.51.100.1", &c, &err), 0);
	assert_int_equal(c.prefix, 128);
	assert_int_equal(addr_cidr_parse("2001:db8::1", &c, &err), 0);
	assert_int_equal(c.prefix, 128);
	/* IPv6 syntax for the mapped range takes IPv6 prefix lengths. */
	assert_int_equal(addr_cidr_parse("::ffff:10.0.0.0/104", &c, &err), 0);
	assert_int_equal(c.prefix, 104);
}

/* test_cidr_edges - /0, /32 and /128 at both families' limits. */
static void
test_cidr_edges(void **state)
{
	struct addr_cidr c;
	struct error err;
	struct addr_ip v4 = ip("203.0.113.5"), v6 = ip("2001:db8::5");

	assert_int_equal(addr_cidr_parse("0.0.0.0/0", &c, &err), 0);
	assert_int_equal(c.prefix, 96);
	assert_true(addr_cidr_contains(&c, &v4));
	assert_false(addr_cidr_contains(&c, &v6));   /* IPv4 only */

	assert_int_equal(addr_cidr_parse("::/0", &c, &err), 0);
	assert_int_equal(c.prefix, 0);
	assert_true(addr_cidr_contains(&c, &v4));
	assert_true(addr_cidr_contains(&c, &v6));

	assert_int_equal(addr_cidr_parse("203.0.113.5/32", &c, &err), 0);
	assert_int_equal(c.prefix, 128);
	assert_true(addr_cidr_contains(&c, &v4));
	v4 = ip("203.0.113.4");
	assert_false(addr_cidr_contains(&c, &v4));

	assert_int_equal(addr_cidr_parse("2001:db8::5/128", &c, &err), 0);
	assert_true(addr_cidr_contains(&c, &v6));
	v6 = ip("2001:db8::4");
	assert_false(addr_cidr_contains(&c, &v6));

	/* Odd bit boundaries. */
	assert_int_equal(addr_cidr_parse("10.0.0.0/9", &c, &err), 0);
	v4 = ip("10.127.255.255");
	assert_true(addr_cidr_contains(&c, &v4));
	v4 = ip("10.128.0.0");
	assert_false(addr_cidr_contains(&c, &v4));
	assert_int_equal(addr_cidr_parse("2001:db8::/31", &c, &err), 0);
	v6 = ip("2001:db9:ffff::1");
	assert_true(addr_cidr_contains(&c, &v6));
	v6 = ip("2001:dba::1");
	assert_false(addr_cidr_contains(&c, &v6));
}

/* test_cidr_errors - bad input fails with an error naming the text. */
static void
test_cidr_errors(void **state)
{
	static const char *const bad[] = {
		"192.0.2.0/33", "2001:db8::/129", "192.0.2.0/", "192.0.2.0/x",
		"192.0.2.0/-1", "192.0.2.0/+8", "192.0.2.0/ 8", "/24",
		"host.example/24", "192.0.2.0/24/1", "192.0.2.0/0024", "",
	};
	struct addr_cidr c;
	struct error err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.text[0] = '\0';
		assert_int_equal(addr_cidr_parse(bad[i], &c, &err), -1);
		assert_non_null(strstr(err.text, bad[i]));
	}
	assert_int_equal(addr_cidr_parse("10.0.0.0/33", &c, &err), -1);
	assert_string_equal(err.text,
	    "invalid CIDR '10.0.0.0/33': prefix length 33 is more than 32");
	/* Control characters in the echoed text are escaped. */
	assert_int_equal(addr_cidr_parse("1.2.3.4/\n", &c, &err), -1);
	assert_null(strchr(err.text, '\n'));
	/* NULL err is allowed. */
	assert_int_equal(addr_cidr_parse("nope", &c, NULL), -1);
}

/* test_list_longest_match - the most specific entry wins, whatever the
 * order; no match is -1; values are kept per entry. */
static void
test_list_longest_match(void **state)
{
	struct addr_cidr_list list = { 0 };
	struct error err;
	struct addr_ip a;

	assert_int_equal(addr_cidr_list_add(&list, "10.0.0.0/8", 0, &err), 0);
	assert_null(list.values);
	assert_int_equal(addr_cidr_list_add(&list, "10.1.2.0/24", -50, &err), 0);
	assert_int_equal(addr_cidr_list_add(&list, "10.1.0.0/16", 20, &err), 0);
	assert_int_equal(addr_cidr_list_add(&list, "2001:db8::/32", 5, &err), 0);
	assert_int_equal(addr_cidr_list_add(&list, "2001:db8:1::/48", 7, &err), 0);
	assert_int_equal(addr_cidr_list_add(&list, "10.1.2.3", 99, &err), 0);
	assert_int_equal(list.count, 6);
	assert_non_null(list.values);
	assert_int_equal(list.values[0], 0);
	assert_int_equal(list.values[1], -50);
	assert_int_equal(list.values[2], 20);

	a = ip("10.1.2.3");
	assert_int_equal(addr_cidr_list_match(&list, &a), 5);
	a = ip("10.1.2.4");
	assert_int_equal(addr_cidr_list_match(&list, &a), 1);
	a = ip("10.1.3.4");
	assert_int_equal(addr_cidr_list_match(&list, &a), 2);
	a = ip("10.200.0.1");
	assert_int_equal(addr_cidr_list_match(&list, &a), 0);
	a = ip("::ffff:10.1.2.9");
	assert_int_equal(addr_cidr_list_match(&list, &a), 1);
	a = ip("11.0.0.1");
	assert_int_equal(addr_cidr_list_match(&list, &a), -1);
	a = ip("2001:db8:1:2::1");
	assert_int_equal(addr_cidr_list_match(&list, &a), 4);
	a = ip("2001:db8:2::1");
	assert_int_equal(addr_cidr_list_match(&list, &a), 3);
	a = ip("2001:db9::1");
	assert_int_equal(addr_cidr_list_match(&list, &a), -1);

	/* A bad entry fails and leaves the list as it was. */
	assert_int_equal(addr_cidr_list_add(&list, "10.0.0.0/40", 1, &err), -1);
	assert_int_equal(list.count, 6);
	addr_cidr_list_free(&list);
	assert_int_equal(list.count, 0);
	assert_null(list.items);
	a = ip("10.1.2.3");
	assert_int_equal(addr_cidr_list_match(&list, &a), -1);
}

/* test_list_many - growth past the first allocation keeps every entry. */
static void
test_list_many(void **state)
{
	struct addr_cidr_list list = { 0 };
	struct error err;
	char text[32];
	struct addr_ip a;

	for (int i = 0; i < 1000; i++) {
		snprintf(text, sizeof(text), "10.%d.%d.0/24", i / 256, i % 256);
		assert_int_equal(addr_cidr_list_add(&list, text, i == 500 ? 1 : 0,
		    &err), 0);
	}
	assert_int_equal(list.count, 1000);
	a = ip("10.3.231.17");
	assert_int_equal(addr_cidr_list_match(&list, &a), 3 * 256 + 231);
	assert_int_equal(list.values[500], 1);
	assert_int_equal(list.values[999], 0);
	assert_int_equal(list.values[0], 0);
	addr_cidr_list_free(&list);
}

/* test_domain_exact_vs_sub - "example.com" matches only itself,
 * ".example.com" only its subdomains. */
static void
test_domain_exact_vs_sub(void **state)
{
	struct addr_domain_list list = { 0 };
	struct error err;

	assert_int_equal(addr_domain_list_add(&list, "example.com", &err), 0);
	assert_int_equal(addr_domain_list_add(&list, ".example.org", &err), 0);
	assert_true(addr_domain_list_match(&list, "example.com"));
	assert_false(addr_domain_list_match(&list, "mail.example.com"));
	assert_false(addr_domain_list_match(&list, "badexample.com"));
	assert_false(addr_domain_list_match(&list, "example.com.evil"));
	assert_false(addr_domain_list_match(&list, "example.org"));
	assert_true(addr_domain_list_match(&list, "mail.example.org"));
	assert_true(addr_domain_list_match(&list, "a.b.example.org"));
	assert_false(addr_domain_list_match(&list, "badexample.org"));
	assert_false(addr_domain_list_match(&list, ""));
	assert_false(addr_domain_list_match(&list, NULL));
	addr_domain_list_free(&list);
}

/* test_domain_case_and_dot - entries are stored lower-cased without a
 * trailing dot; matching ignores case and a trailing dot. */
static void
test_domain_case_and_dot(void **state)
{
	struct addr_domain_list list = { 0 };
	struct error err;

	assert_int_equal(addr_domain_list_add(&list, "Example.COM.", &err), 0);
	assert_int_equal(addr_domain_list_add(&list, ".Sub.Example.NET.", &err), 0);
	assert_string_equal(list.items[0], "example.com");
	assert_string_equal(list.items[1], ".sub.example.net");
	assert_true(addr_domain_list_match(&list, "EXAMPLE.com"));
	assert_true(addr_domain_list_match(&list, "example.com."));
	assert_true(addr_domain_list_match(&list, "X.SUB.example.net."));
	assert_false(addr_domain_list_match(&list, "sub.example.net"));
	addr_domain_list_free(&list);
	assert_int_equal(list.count, 0);
}

/* test_domain_canonical - entries and matched domains compare in their
 * canonical form (issue 22): the UTS-46 full stops, U-labels and case
 * cannot slip a domain past a list, and an entry in U-labels matches its
 * A-labels; a domain without a canonical form matches nothing. */
static void
test_domain_canonical(void **state)
{
	struct addr_domain_list list = { 0 };
	struct error err;

	(void)state;
	assert_int_equal(addr_domain_list_add(&list, "blocked.com", &err), 0);
	assert_int_equal(addr_domain_list_add(&list, "b\xc3\xbc" "cher.example",
	    &err), 0);
	assert_int_equal(addr_domain_list_add(&list, ".\xe4\xbe\x8b.jp", &err), 0);
	assert_string_equal(list.items[1], "xn--bcher-kva.example");
	assert_true(addr_domain_list_match(&list, "blocked\xe3\x80\x82" "com"));
	assert_true(addr_domain_list_match(&list, "blocked\xef\xbc\x8e" "com"));
	assert_true(addr_domain_list_match(&list, "blocked\xef\xbd\xa1" "com"));
	assert_true(addr_domain_list_match(&list, "BLOCKED.COM"));
	assert_true(addr_domain_list_match(&list, "xn--bcher-kva.example"));
	assert_true(addr_domain_list_match(&list, "B\xc3\x9c" "CHER.example"));
	assert_true(addr_domain_list_match(&list, "mx.xn--fsq.jp"));
	assert_false(addr_domain_list_match(&list, "\xef\xbc\x8e" "blocked.com"));
	assert_false(addr_domain_list_match(&list, "xn--zz.example"));
	assert_int_equal(addr_domain_list_add(&list, "xn--zz.example", &err), -1);
	/* One root dot, ASCII or mapped, and not two: an entry is read as a
	 * matched domain is (fuzz_addr found "0.0.0\xef\xbc\x8e." stored
	 * as "0.0.0", which no domain could match). */
	assert_int_equal(addr_domain_list_add(&list, "root.example.", &err), 0);
	assert_true(addr_domain_list_match(&list, "root.example"));
	assert_int_equal(addr_domain_list_add(&list, "dot.example\xef\xbc\x8e",
	    &err), 0);
	assert_true(addr_domain_list_match(&list, "dot.example"));
	assert_int_equal(addr_domain_list_add(&list, "two.example\xef\xbc\x8e.",
	    &err), -1);
	assert_false(addr_domain_list_match(&list, "two.example"));
	addr_domain_list_free(&list);
}

/* test_domain_invalid - empty, spaces, '@', bad labels and over-long
 * entries fail with a clear error naming the entry. */
static void
test_domain_invalid(void **state)
{
	struct addr_domain_list list = { 0 };
	struct error err;
	char longname[300];

	assert_int_equal(addr_domain_list_add(&list, "", &err), -1);
	assert_non_null(strstr(err.text, "empty"));
	assert_int_equal(addr_domain_list_add(&list, ".", &err), -1);
	assert_int_equal(addr_domain_list_add(&list, "exa mple.com", &err), -1);
	assert_non_null(strstr(err.text, "exa mple.com"));
	assert_int_equal(addr_domain_list_add(&list, " example.com", &err), -1);
	assert_int_equal(addr_domain_list_add(&list, "user@example.com", &err), -1);
	assert_non_null(strstr(err.text, "mail address"));
	assert_int_equal(addr_domain_list_add(&list, "a..b", &err), -1);
	assert_int_equal(addr_domain_list_add(&list, "..example.com", &err), -1);
	assert_int_equal(addr_domain_list_add(&list, "*.example.com", &err), -1);
	assert_int_equal(addr_domain_list_add(&list, "example.com..", &err), -1);
	memset(longname, 'a', sizeof(longname));
	for (int i = 50; i < 254; i += 50)
		longname[i] = '.';
	longname[254] = '\0';          /* 254 characters */
	assert_int_equal(addr_domain_list_add(&list, longname, &err), -1);
	assert_non_null(strstr(err.text, "253"));
	longname[253] = '\0';          /* 253: allowed */
	assert_int_equal(addr_domain_list_add(&list, longname, &err), 0);
	assert_int_equal(list.count, 1);
	addr_domain_list_free(&list);
}

/* test_mail_domain - after the first '@' outside quotes, or NULL. */
static void
test_mail_domain(void **state)
{
	assert_string_equal(addr_mail_domain("alice@example.com"), "example.com");
	assert_string_equal(addr_mail_domain("\"a@b\"@example.com"), "example.com");
	assert_string_equal(addr_mail_domain("\"a\\\"@b\"@example.com"),
	    "example.com");
	/* The domain may be a general address literal containing '@'. */
	assert_string_equal(addr_mail_domain("user@[tag:x@blocked.com]"),
	    "[tag:x@blocked.com]");
	assert_string_equal(addr_mail_domain("a@b@example.net"), "b@example.net");
	assert_string_equal(addr_mail_domain("@example.com"), "example.com");
	assert_null(addr_mail_domain("alice"));
	assert_null(addr_mail_domain("alice@"));
	assert_null(addr_mail_domain(""));
	assert_null(addr_mail_domain(NULL));
	assert_null(addr_mail_domain("\"a@b\""));
	assert_null(addr_mail_domain("postmaster"));
}

/* main - run every test of this module. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_v4),
		cmocka_unit_test(test_parse_v6),
		cmocka_unit_test(test_parse_mapped),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_from_sockaddr),
		cmocka_unit_test(test_key_v6_prefix),
		cmocka_unit_test(test_format_small_buffer),
		cmocka_unit_test(test_cidr_parse),
		cmocka_unit_test(test_cidr_edges),
		cmocka_unit_test(test_cidr_errors),
		cmocka_unit_test(test_list_longest_match),
		cmocka_unit_test(test_list_many),
		cmocka_unit_test(test_domain_exact_vs_sub),
		cmocka_unit_test(test_domain_case_and_dot),
		cmocka_unit_test(test_domain_invalid),
		cmocka_unit_test(test_domain_canonical),
		cmocka_unit_test(test_mail_domain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
