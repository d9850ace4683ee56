/*
 * test_route.c - unit tests for common/route.c: one test per promise of
 * route.h (each transport(5) spelling parsed into its typed next hop,
 * every malformed one refused with the expected spelling named, the
 * relay host's SMTP-only forms, formatting that reads back, the "*"
 * route, routing order routes -> relayhost -> MX, and which domains are
 * served).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "route.h"

/* hop_ok - text must parse (dir /etc/elemta, smtp_port 25). */
static struct route_hop
hop_ok(const char *text)
{
	struct route_hop hop;
	struct error err = { "" };

	if (route_hop_parse(text, "/etc/elemta", 25, &hop, &err) < 0)
		print_message("'%s': %s\n", text, err.text);
	assert_int_equal(route_hop_parse(text, "/etc/elemta", 25, &hop, &err),
	    0);
	return hop;
}

/* hop_bad - text must be refused with word in the reason. */
static void
hop_bad(const char *text, const char *word)
{
	struct route_hop hop;
	struct error err = { "" };

	assert_int_equal(route_hop_parse(text, "/etc/elemta", 25, &hop, &err),
	    -1);
	if (strstr(err.text, word) == NULL)
		print_message("'%s': expected '%s' in '%s'\n", text, word,
		    err.text);
	assert_non_null(strstr(err.text, word));
}

/* Hops whose host and port are the point. */
struct host_case {
	const char *text;
	enum route_transport transport;
	bool mx, literal;
	const char *host;
	unsigned port;
};

/* test_host_hops - SMTP with brackets: that host, no MX; without: its
 * MX; the default ports; IP literals in both IPv6 spellings; canonical
 * names; LMTP over TCP never looks up MX */
static void
test_host_hops(void **state)
{
	static const struct host_case cases[] = {
		{ "smtp:[relay.example]:587", ROUTE_SMTP, false, false,
		  "relay.example", 587 },
		{ "smtp:[192.0.2.1]", ROUTE_SMTP, false, true, "192.0.2.1", 25 },
		{ "smtp:[2001:DB8::1]:26", ROUTE_SMTP, false, true,
		  "2001:db8::1", 26 },
		{ "smtp:[ipv6:2001:db8::1]", ROUTE_SMTP, false, true,
		  "2001:db8::1", 25 },
		{ "SMTP:Mail.Example", ROUTE_SMTP, true, false, "mail.example",
		  25 },
		{ "smtp:b\xc3\xbc" "cher.example:2525", ROUTE_SMTP, true, false,
		  "xn--bcher-kva.example", 2525 },
		{ "lmtp:127.0.0.1", ROUTE_LMTP, false, true, "127.0.0.1", 24 },
		{ "lmtp:inet:imap.example:2424", ROUTE_LMTP, false, false,
		  "imap.example", 2424 },
		{ "lmtp:[::1]:24", ROUTE_LMTP, false, true, "::1", 24 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct host_case *c = &cases[i];
		struct route_hop h = hop_ok(c->text);

		assert_int_equal(h.transport, c->transport);
		assert_int_equal(h.mx, c->mx);
		assert_int_equal(h.literal, c->literal);
		assert_string_equal(h.host, c->host);
		assert_int_equal(h.port, c->port);
		assert_string_equal(h.path, "");
	}
}

/* test_lmtp_maildir_discard_error - the hops with paths and texts;
 * relative paths against dir */
static void
test_lmtp_maildir_discard_error(void **state)
{
	struct route_hop h;

	(void)state;
	h = hop_ok("lmtp:unix:/run/dovecot/lmtp");
	assert_int_equal(h.transport, ROUTE_LMTP);
	assert_string_equal(h.path, "/run/dovecot/lmtp");
	assert_string_equal(h.host, "");
	assert_int_equal(h.port, 0);
	h = hop_ok("lmtp:unix:private/lmtp");
	assert_string_equal(h.path, "/etc/elemta/private/lmtp");
	h = hop_ok("maildir:/var/mail");
	assert_int_equal(h.transport, ROUTE_MAILDIR);
	assert_string_equal(h.path, "/var/mail");
	h = hop_ok("maildir:../var/mail");
	assert_string_equal(h.path, "/etc/var/mail");
	h = hop_ok("discard:");
	assert_int_equal(h.transport, ROUTE_DISCARD);
	assert_string_equal(h.text, "");
	h = hop_ok("discard:test sink");
	assert_string_equal(h.text, "test sink");
	h = hop_ok("error:5.1.1 no such user here");
	assert_int_equal(h.transport, ROUTE_ERROR);
	assert_string_equal(h.status, "5.1.1");
	assert_string_equal(h.text, "no such user here");
	h = hop_ok("error:mail for this domain is refused");
	assert_string_equal(h.status, "5.0.0");
	assert_string_equal(h.text, "mail for this domain is refused");
	h = hop_ok("error:5.7.1");
	assert_string_equal(h.status, "5.7.1");
	assert_string_equal(h.text, "");
}

/* test_bad_hops - every malformed next hop is refused, saying why */
static void
test_bad_hops(void **state)
{
	char longpath[200];

	(void)state;
	hop_bad("", "not a next hop (expected smtp:[host]:port");
	hop_bad("relay.example", "not a next hop");
	hop_bad("uucp:host!user", "not a next hop");
	hop_bad("smtp:", "host is missing");
	hop_bad("smtp:[]:25", "host is missing");
	hop_bad("smtp:[relay.example:25", "missing ']'");
	hop_bad("smtp:192.0.2.1", "has no MX");
	hop_bad("smtp:192.0.2.1:25", "smtp:[192.0.2.1]");
	hop_bad("smtp:2001:db8::1", "in brackets");
	hop_bad("smtp:[relay.example]:0", "from 1 to 65535");
	hop_bad("smtp:[relay.example]:65536", "from 1 to 65535");
	hop_bad("smtp:[relay.example]:25x", "from 1 to 65535");
	hop_bad("smtp:[relay.example]25", "after ':'");
	hop_bad("smtp:relay.example:", "from 1 to 65535");
	hop_bad("smtp:user@relay.example", "not a host name");
	hop_bad("smtp:-bad-.example", "not a host name");
	hop_bad("smtp:a..example", "not a host name");
	hop_bad("smtp:[ipv6:192.0.2.1]", "not a host name");
	hop_bad("smtp:relay.example\r\nRCPT", "control character");
	hop_bad("lmtp:unix:", "path is missing");
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	{
		char text[sizeof(longpath) + 16];

		snprintf(text, sizeof(text), "lmtp:unix:/%s", longpath);
		hop_bad(text, "Unix socket paths are limited");
	}
	hop_bad("maildir:", "path is missing");
	hop_bad("error:4.2.1 later", "must be 5.x.x");
	hop_bad("error:5.1 short", "must be 5.x.x");
	hop_bad("error:5.1.1000 long", "must be 5.x.x");
	hop_bad("error:55.1.1 x", "must be 5.x.x");
}

/* test_relayhost - Postfix's relayhost forms, "smtp:" optional, SMTP
 * only, "" for none */
static void
test_relayhost(void **state)
{
	struct route_hop h;
	struct error err;

	(void)state;
	assert_int_equal(route_relayhost_parse("", 25, &h, &err), 0);
	assert_int_equal(h.transport, ROUTE_NONE);
	assert_int_equal(route_relayhost_parse("[smart.example]", 25, &h,
	    &err), 0);
	assert_int_equal(h.transport, ROUTE_SMTP);
	assert_false(h.mx);
	assert_int_equal(h.port, 25);
	assert_int_equal(route_relayhost_parse("smart.example:587", 2525, &h,
	    &err), 0);
	assert_true(h.mx);
	assert_int_equal(h.port, 587);
	assert_int_equal(route_relayhost_parse("smart.example", 2525, &h,
	    &err), 0);
	assert_int_equal(h.port, 2525);
	assert_int_equal(route_relayhost_parse("smtp:[192.0.2.5]:26", 25, &h,
	    &err), 0);
	assert_string_equal(h.host, "192.0.2.5");
	assert_int_equal(h.port, 26);
	assert_int_equal(route_relayhost_parse("lmtp:unix:/x", 25, &h, &err),
	    -1);
	assert_non_null(strstr(err.text, "SMTP next hop"));
	assert_int_equal(route_relayhost_parse("discard:", 25, &h, &err), -1);
	assert_int_equal(route_relayhost_parse("192.0.2.5", 25, &h, &err), -1);
	assert_non_null(strstr(err.text, "no MX"));
	assert_int_equal(route_relayhost_parse("[::1", 25, &h, &err), -1);
	assert_int_equal(route_relayhost_parse("a\tb", 25, &h, &err), -1);
	assert_non_null(strstr(err.text, "control character"));
}

/* test_format_reads_back - route_hop_format's text parses into the same
 * hop */
static void
test_format_reads_back(void **state)
{
	static const char *const texts[] = {
		"smtp:[relay.example]:587", "smtp:mail.example:25",
		"smtp:[2001:db8::1]:25", "smtp:[192.0.2.1]:10025",
		"lmtp:unix:/run/lmtp", "lmtp:[127.0.0.1]:24",
		"lmtp:[imap.example]:2424", "maildir:/var/mail", "discard:",
		"discard:why", "error:5.1.1 no such user", "error:5.0.0",
	};
	char buf[ROUTE_HOP_TEXT_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct route_hop a = hop_ok(texts[i]), b;

		assert_string_equal(route_hop_format(&a, buf, sizeof(buf)),
		    texts[i]);
		b = hop_ok(buf);
		assert_int_equal(a.transport, b.transport);
		assert_int_equal(a.mx, b.mx);
		assert_int_equal(a.literal, b.literal);
		assert_int_equal(a.port, b.port);
		assert_string_equal(a.host, b.host);
		assert_string_equal(a.path, b.path);
		assert_string_equal(a.status, b.status);
		assert_string_equal(a.text, b.text);
	}
	assert_string_equal(route_transport_name(ROUTE_LMTP), "lmtp");
	assert_string_equal(route_transport_name(ROUTE_NONE), "none");
	assert_string_equal(route_transport_name((enum route_transport)99), "?");
}

/* test_domains - "*" alone; other entries are domain-list entries */
static void
test_domains(void **state)
{
	struct route r;
	struct error err;

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(route_domains_add(&r, "*", &err), 0);
	assert_true(r.all);
	assert_int_equal(route_domains_add(&r, "a.example", &err), -1);
	assert_non_null(strstr(err.text, "route of its own"));
	route_free(&r);
	memset(&r, 0, sizeof(r));
	assert_int_equal(route_domains_add(&r, "a.example", &err), 0);
	assert_int_equal(route_domains_add(&r, "*", &err), -1);
	assert_int_equal(route_domains_add(&r, "user@a.example", &err), -1);
	assert_int_equal(route_domains_add(&r, ".B.Example", &err), 0);
	assert_int_equal(r.domains.count, 2);
	assert_string_equal(r.domains.items[1], ".b.example");
	assert_false(r.all);
	route_free(&r);
}

/* A hand-built config: routes for served.example (and its subdomains)
 * and local.example, then optionally "*"; optionally a relay host. */
static struct config test_cfg;
static struct route test_routes[3];

/* cfg_build - test_cfg with the routes (star: add the "*" route) and
 * the relay host. */
static void
cfg_build(bool star, const char *relayhost)
{
	struct error err;

	memset(&test_cfg, 0, sizeof(test_cfg));
	memset(test_routes, 0, sizeof(test_routes));
	assert_int_equal(route_domains_add(&test_routes[0], "served.example",
	    &err), 0);
	assert_int_equal(route_domains_add(&test_routes[0], ".served.example",
	    &err), 0);
	test_routes[0].hop = hop_ok("maildir:/var/mail");
	assert_int_equal(route_domains_add(&test_routes[1],
	    "b\xc3\xbc" "cher.example", &err), 0);
	test_routes[1].hop = hop_ok("lmtp:unix:/run/lmtp");
	assert_int_equal(route_domains_add(&test_routes[2], "*", &err), 0);
	test_routes[2].hop = hop_ok("smtp:[192.0.2.9]");
	test_cfg.delivery.routes = test_routes;
	test_cfg.delivery.route_count = star ? 3 : 2;
	assert_int_equal(route_relayhost_parse(relayhost, 25,
	    &test_cfg.delivery.relayhost, &err), 0);
	test_cfg.delivery.mx.transport = ROUTE_SMTP;
	test_cfg.delivery.mx.mx = true;
	test_cfg.delivery.mx.port = 25;
}

/* cfg_free - the routes' lists. */
static void
cfg_free(void)
{
	for (size_t i = 0; i < 3; i++)
		route_free(&test_routes[i]);
}

/* test_lookup_order - first matching route, else relay host, else MX */
static void
test_lookup_order(void **state)
{
	(void)state;
	cfg_build(false, "");
	assert_ptr_equal(route_lookup(&test_cfg, "served.example"),
	    &test_routes[0].hop);
	assert_ptr_equal(route_lookup(&test_cfg, "a.b.served.example"),
	    &test_routes[0].hop);
	assert_ptr_equal(route_lookup(&test_cfg, "xn--bcher-kva.example"),
	    &test_routes[1].hop);
	assert_ptr_equal(route_lookup(&test_cfg, "B\xc3\x9c" "CHER.example"),
	    &test_routes[1].hop);
	assert_ptr_equal(route_lookup(&test_cfg, "other.example"),
	    &test_cfg.delivery.mx);
	assert_ptr_equal(route_lookup(&test_cfg, "notserved.example"),
	    &test_cfg.delivery.mx);
	assert_ptr_equal(route_lookup(&test_cfg, NULL), &test_cfg.delivery.mx);
	cfg_free();

	cfg_build(false, "[smart.example]:587");
	assert_ptr_equal(route_lookup(&test_cfg, "other.example"),
	    &test_cfg.delivery.relayhost);
	assert_ptr_equal(route_lookup(&test_cfg, "served.example"),
	    &test_routes[0].hop);
	cfg_free();

	/* "*" takes everything the routes before it did not. */
	cfg_build(true, "[smart.example]:587");
	assert_ptr_equal(route_lookup(&test_cfg, "other.example"),
	    &test_routes[2].hop);
	assert_ptr_equal(route_lookup(&test_cfg, "[192.0.2.1]"),
	    &test_routes[2].hop);
	assert_ptr_equal(route_lookup(&test_cfg, "served.example"),
	    &test_routes[0].hop);
	cfg_free();
}

/* test_served - named by a route other than "*", compared canonical;
 * an address literal, an invalid domain or a look-alike is not served */
static void
test_served(void **state)
{
	(void)state;
	cfg_build(true, "[smart.example]:587");
	assert_true(route_domain_is_served(&test_cfg, "served.example"));
	assert_true(route_domain_is_served(&test_cfg, "SERVED.Example."));
	assert_true(route_domain_is_served(&test_cfg, "mx.served.example"));
	assert_true(route_domain_is_served(&test_cfg, "xn--bcher-kva.example"));
	assert_true(route_domain_is_served(&test_cfg, "b\xc3\xbc" "cher.example"));
	assert_false(route_domain_is_served(&test_cfg, "other.example"));
	assert_false(route_domain_is_served(&test_cfg, "notserved.example"));
	assert_false(route_domain_is_served(&test_cfg, "served.example.evil"));
	assert_false(route_domain_is_served(&test_cfg, "example"));
	assert_false(route_domain_is_served(&test_cfg, "[192.0.2.1]"));
	assert_false(route_domain_is_served(&test_cfg, ""));
	assert_false(route_domain_is_served(&test_cfg, NULL));
	assert_false(route_domain_is_served(&test_cfg, "served..example"));
	cfg_free();
	/* No routes: nothing is served, whatever the relay host. */
	memset(&test_cfg, 0, sizeof(test_cfg));
	assert_false(route_domain_is_served(&test_cfg, "served.example"));
}

/* main */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_hops),
		cmocka_unit_test(test_lmtp_maildir_discard_error),
		cmocka_unit_test(test_bad_hops),
		cmocka_unit_test(test_relayhost),
		cmocka_unit_test(test_format_reads_back),
		cmocka_unit_test(test_domains),
		cmocka_unit_test(test_lookup_order),
		cmocka_unit_test(test_served),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
