/*
 * test_policy_rules.c - unit tests for the built-in `policy` plugin
 * (policyd/policies/): each implemented rule through the public hooks, as
 * the host runs them, with a real counter table in a scratch directory and
 * a fake clock.
 *
 * Promises tested: every rule's reply code and enhanced code; domain
 * matching (exact, ".subdomain", case, trailing dot); rate exactness at the
 * rule level (N accepted per window, the N+1th refused, a refused event
 * not counted, the window sliding); IPv6 clients sharing their /64;
 * exempt_ips; two workers (two store handles) sharing one count; a
 * Postfix transaction counted once per instance; the metric counters;
 * config errors (unknown key with a suggestion, bad values naming
 * file:line); the content rules at END-OF-MESSAGE (one scan
 * for keywords and extensions, content_action reject / quarantine /
 * discard, a scan error or a missing descriptor, a too complex message);
 * the AUTH rules (the failed-auth lock of address and user refusing even
 * the right password, what a success resets, what a locked attempt
 * counts, IPv6 /64 keys, user_auth_hours with a fake clock, the metrics,
 * config errors).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "counter.h"
#include "log.h"
#include "../../policyd/plugin_host.h"
#include "../../policyd/policies/policy.h"

#include "policy_fixture.h"

/* ==== Recipient rules ==== */

/* test_blocked_recipient_domains - exact, subdomains, case, trailing dot. */
static void
test_blocked_recipient_domains(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, "      blocked_recipient_domains:\n"
	    "        - blocked.com\n        - .spam.org\n"), 0);
	ASK(&fx, &d, "RCPT", "192.0.2.1", "sender=a@example.org",
	    "recipient=x@blocked.com");
	expect(&d, 550, "5.7.1");
	assert_string_equal(d.plugin, "policy");
	ASK(&fx, &d, "RCPT", "192.0.2.1", "recipient=x@BLOCKED.Com.");
	expect(&d, 550, "5.7.1");
	ASK(&fx, &d, "RCPT", "192.0.2.1", "recipient=x@mx.spam.org");
	expect(&d, 550, "5.7.1");
	ASK(&fx, &d, "RCPT", "192.0.2.1", "recipient=x@spam.org");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "RCPT", "192.0.2.1", "recipient=x@notblocked.com");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "RCPT", "192.0.2.1", "recipient=x@sub.blocked.com");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "RCPT", "192.0.2.1", "recipient=postmaster");
	expect(&d, 0, NULL);
	fx_close(&fx);
}

/* test_blocked_recipient_unicode_dots - a request from a real Postfix
 * carries the client's spelling: the UTS-46 full stops, fullwidth letters
 * and U-labels reach the same canonical domain, and a domain with no
 * canonical form is refused rather than matched by nothing (issue 22). */
static void
test_blocked_recipient_unicode_dots(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, "      blocked_recipient_domains:\n"
	    "        - blocked.com\n        - b\xc3\xbc" "cher.example\n"
	    "      allowed_relay_domains: [example.com]\n"), 0);
	ask_on(&fx, PLUGIN_LISTENER_POSTFIX, 0, &d, "RCPT", "192.0.2.1",
	    "recipient=bob@blocked\xe3\x80\x82" "com", NULL);
	expect(&d, 550, "5.7.1");
	assert_non_null(strstr(d.result.message, "blocked.com is blocked"));
	ask_on(&fx, PLUGIN_LISTENER_POSTFIX, 0, &d, "RCPT", "192.0.2.1",
	    "recipient=bob@BLOCKED\xef\xbd\xa1" "com", NULL);
	expect(&d, 550, "5.7.1");
	ask_on(&fx, PLUGIN_LISTENER_POSTFIX, 0, &d, "RCPT", "192.0.2.1",
	    "recipient=bob@xn--bcher-kva.example", NULL);
	expect(&d, 550, "5.7.1");
	ask_on(&fx, PLUGIN_LISTENER_POSTFIX, 0, &d, "RCPT", "192.0.2.1",
	    "recipient=bob@\xef\xbc\x8e" "blocked.com", NULL);
	expect(&d, 553, "5.1.3");
	/* The relay list compares canonical forms as well. */
	ask_on(&fx, PLUGIN_LISTENER_POSTFIX, 0, &d, "RCPT", "192.0.2.1",
	    "recipient=bob@EXAMPLE\xe3\x80\x82" "com", NULL);
	expect(&d, 0, NULL);
	ask_on(&fx, PLUGIN_LISTENER_POSTFIX, 0, &d, "RCPT", "192.0.2.1",
	    "recipient=bob@other\xe3\x80\x82" "com", NULL);
	expect(&d, 554, "5.7.1");
	fx_close(&fx);
}

/* test_allowed_relay_domains - unauthenticated clients only to listed
 * domains; authenticated ones anywhere. */
static void
test_allowed_relay_domains(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, "      allowed_relay_domains: "
	    "[example.com, .trusted.org]\n"), 0);
	ASK(&fx, &d, "RCPT", "192.0.2.1", "recipient=x@example.com");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "RCPT", "192.0.2.1", "recipient=x@mx.trusted.org");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "RCPT", "192.0.2.1", "recipient=x@elsewhere.net");
	expect(&d, 554, "5.7.1");
	assert_non_null(strstr(d.result.message, "Relay access denied"));
	ASK(&fx, &d, "RCPT", "192.0.2.1", "recipient=x@elsewhere.net",
	    "sasl_username=alice", "sasl_method=PLAIN");
	expect(&d, 0, NULL);
	fx_close(&fx);
}

/* test_max_recipients - the (N+1)th recipient: 452 4.5.3. */
static void
test_max_recipients(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, "      max_recipients_per_message: 2\n"), 0);
	ASK(&fx, &d, "RCPT", "192.0.2.1", "recipient=a@x.org",
	    "recipient_count=0");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "RCPT", "192.0.2.1", "recipient=b@x.org",
	    "recipient_count=1");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "RCPT", "192.0.2.1", "recipient=c@x.org",
	    "recipient_count=2");
	expect(&d, 452, "4.5.3");
	fx_close(&fx);
}

/* ==== Sender rules ==== */

/* test_allowed_sender_domains - 550 5.7.1 for others; <> not concerned. */
static void
test_allowed_sender_domains(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, "      allowed_sender_domains: "
	    "[example.com, trusted.org]\n"), 0);
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=a@Example.COM");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=a@evil.com");
	expect(&d, 550, "5.7.1");
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=nodomain");
	expect(&d, 550, "5.7.1");
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=");
	expect(&d, 0, NULL);
	fx_close(&fx);
}

/* test_sender_format - 553 5.1.7 for what the reference pattern refuses. */
static void
test_sender_format(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_true(policy_sender_format_valid("a.b+c%d_e-f@mx-1.example.co"));
	assert_false(policy_sender_format_valid("a@b"));
	assert_false(policy_sender_format_valid("a@b.c"));
	assert_false(policy_sender_format_valid("@b.com"));
	assert_false(policy_sender_format_valid("a b@b.com"));
	assert_false(policy_sender_format_valid("a@b.c0m"));
	assert_false(policy_sender_format_valid("a@@b.com"));
	assert_int_equal(fx_open(&fx, "      validate_sender_format: true\n"), 0);
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=good@example.org");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=bad@localhost");
	expect(&d, 553, "5.1.7");
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=");
	expect(&d, 0, NULL);
	fx_close(&fx);
}

/* test_null_sender - unauthenticated <> refused, authenticated allowed. */
static void
test_null_sender(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx,
	    "      reject_unauthenticated_null_sender: true\n"), 0);
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=");
	expect(&d, 550, "5.7.1");
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=", "sasl_username=bob");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=a@b.org");
	expect(&d, 0, NULL);
	fx_close(&fx);
}

/* test_max_message_size - SIZE= at MAIL and the actual size at EOM. */
static void
test_max_message_size(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, "      max_message_size: 1K\n"), 0);
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=a@b.org", "size=1024");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=a@b.org", "size=1025");
	expect(&d, 552, "5.3.4");
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=a@b.org");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "END-OF-MESSAGE", "192.0.2.1", "sender=a@b.org",
	    "size=5000");
	expect(&d, 552, "5.3.4");
	ASK(&fx, &d, "END-OF-MESSAGE", "192.0.2.1", "sender=a@b.org",
	    "size=500");
	expect(&d, 0, NULL);
	fx_close(&fx);
}

/* ==== Client rules ==== */

/* test_blocked_ips - IPv4 and IPv6 CIDRs, IPv4-mapped form too. */
static void
test_blocked_ips(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, "      blocked_ips: [198.51.100.0/24, "
	    "\"2001:db8:bad::/48\", 203.0.113.9]\n"), 0);
	ASK(&fx, &d, "CONNECT", "198.51.100.77");
	expect(&d, 554, "5.7.1");
	ASK(&fx, &d, "CONNECT", "::ffff:198.51.100.1");
	expect(&d, 554, "5.7.1");
	ASK(&fx, &d, "CONNECT", "2001:db8:bad:1::1");
	expect(&d, 554, "5.7.1");
	ASK(&fx, &d, "CONNECT", "203.0.113.9");
	expect(&d, 554, "5.7.1");
	ASK(&fx, &d, "CONNECT", "203.0.113.10");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "CONNECT", "2001:db8:bae::1");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "CONNECT", "unknown");
	expect(&d, 0, NULL);
	fx_close(&fx);
}

static time_t fake_time;

static time_t
fake_time_fn(void)
{
	return fake_time;
}

/* test_access_hours - window, days, time zone, overnight windows. */
static void
test_access_hours(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	/* 2025-11-25 is a Tuesday. 10:00 UTC = 11:00 in Paris (CET). */
	assert_int_equal(fx_open(&fx, "      access_hours: {start: \"09:00\", "
	    "end: \"17:00\", days: [mon, tue, wed, thu, fri], "
	    "timezone: Europe/Paris}\n"), 0);
	policy_set_clock(fake_time_fn);
	fake_time = 1764064800;                  /* Tue 10:00 UTC */
	ASK(&fx, &d, "CONNECT", "192.0.2.1");
	expect(&d, 0, NULL);
	fake_time = 1764064800 + 7 * 3600 + 60;  /* Tue 17:01 UTC = 18:01 CET */
	ASK(&fx, &d, "CONNECT", "192.0.2.1");
	expect(&d, 421, "4.7.0");
	fake_time = 1764064800 + 6 * 3600 + 60;  /* 16:01 UTC = 17:01 CET */
	ASK(&fx, &d, "CONNECT", "192.0.2.1");
	expect(&d, 421, "4.7.0");
	fake_time = 1764064800 + 6 * 3600 - 120; /* 15:58 UTC = 16:58 CET */
	ASK(&fx, &d, "CONNECT", "192.0.2.1");
	expect(&d, 0, NULL);
	fake_time = 1764064800 + 4 * 86400;      /* Saturday */
	ASK(&fx, &d, "CONNECT", "192.0.2.1");
	expect(&d, 421, "4.7.0");
	assert_null(getenv("TZ") != NULL && strcmp(getenv("TZ"),
	    "Europe/Paris") == 0 ? "TZ leaked" : NULL);
	fx_close(&fx);

	assert_int_equal(fx_open(&fx, "      access_hours: {start: \"22:00\", "
	    "end: \"06:00\", timezone: UTC}\n"), 0);
	policy_set_clock(fake_time_fn);
	fake_time = 1764064800;                  /* 10:00 UTC */
	ASK(&fx, &d, "CONNECT", "192.0.2.1");
	expect(&d, 421, "4.7.0");
	fake_time = 1764064800 + 13 * 3600;      /* 23:00 UTC */
	ASK(&fx, &d, "CONNECT", "192.0.2.1");
	expect(&d, 0, NULL);
	fx_close(&fx);

	assert_int_equal(fx_open(&fx, "      access_hours: {start: \"09:00\", "
	    "end: \"17:00\", timezone: Mars/Olympus}\n"), -1);
	assert_non_null(strstr(fx.err, "unknown time zone"));
	fx_close(&fx);
}

/* ==== Rate rules ==== */

/* test_message_rate_exact - N per sliding minute: the N+1th is refused
 * with 450 4.7.1, a refused MAIL is not counted, slots free exactly when
 * the oldest event leaves the window. */
static void
test_message_rate_exact(void **state)
{
	struct fx fx;
	struct plugin_decision d;
	uint64_t t0;

	assert_int_equal(fx_open(&fx, "      max_messages_per_minute: 3\n"), 0);
	t0 = fake_ms;
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=a@b.org");    /* t0 */
	expect(&d, 0, NULL);
	fake_ms = t0 + 10000;
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=a@b.org");    /* t0+10 */
	expect(&d, 0, NULL);
	fake_ms = t0 + 20000;
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=a@b.org");    /* t0+20 */
	expect(&d, 0, NULL);
	for (int i = 0; i < 5; i++) {
		fake_ms = t0 + 30000 + (uint64_t)i * 1000;
		ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=a@b.org");
		expect(&d, 450, "4.7.1");
	}
	/* Another client is not affected. */
	ASK(&fx, &d, "MAIL", "192.0.2.2", "sender=a@b.org");
	expect(&d, 0, NULL);
	/* RCPT does not count messages. */
	ASK(&fx, &d, "RCPT", "192.0.2.2", "sender=a@b.org", "recipient=x@y.org");
	expect(&d, 0, NULL);
	fake_ms = t0 + 59999;
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=a@b.org");
	expect(&d, 450, "4.7.1");
	/* t0's event has left the window: exactly one slot. */
	fake_ms = t0 + 60001;
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=a@b.org");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=a@b.org");
	expect(&d, 450, "4.7.1");
	fake_ms = t0 + 70001;
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=a@b.org");
	expect(&d, 0, NULL);
	fx_close(&fx);
}

/* test_message_rate_ipv6_and_exempt - one /64 shares a limit; exempt
 * clients are never limited. */
static void
test_message_rate_ipv6_and_exempt(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, "      max_messages_per_minute: 2\n"
	    "      exempt_ips: [192.0.2.0/28]\n"), 0);
	ASK(&fx, &d, "MAIL", "2001:db8:1:2::1", "sender=a@b.org");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "MAIL", "2001:db8:1:2:ffff::9", "sender=a@b.org");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "MAIL", "2001:db8:1:2::77", "sender=a@b.org");
	expect(&d, 450, "4.7.1");
	ASK(&fx, &d, "MAIL", "2001:db8:1:3::1", "sender=a@b.org");
	expect(&d, 0, NULL);
	for (int i = 0; i < 5; i++) {
		ASK(&fx, &d, "MAIL", "192.0.2.5", "sender=a@b.org");
		expect(&d, 0, NULL);
	}
	fx_close(&fx);
}

/* test_message_rate_two_workers - two store handles on one table (two
 * policyd workers) share the count. */
static void
test_message_rate_two_workers(void **state)
{
	struct fx fx;
	struct plugin_decision d;
	struct counter_store *cs2;
	struct plugin_host *h2, *h1;
	struct error err;

	assert_int_equal(fx_open(&fx, "      max_messages_per_minute: 3\n"), 0);
	assert_int_equal(counter_store_open(fx.cfg->counters.path,
	    fx.cfg->counters.map_size, false, COUNTER_SYNC_SAFE, &cs2, &err), 0);
	counter_set_clock(cs2, fake_clock);
	h2 = plugin_host_new(cs2, 64);
	assert_int_equal(plugin_host_load_config(h2, fx.cfg, &err), 0);
	h1 = fx.h;
	for (int i = 0; i < 3; i++) {
		fx.h = i % 2 ? h2 : h1;
		ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=a@b.org");
		expect(&d, 0, NULL);
	}
	fx.h = h2;
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=a@b.org");
	expect(&d, 450, "4.7.1");
	fx.h = h1;
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=a@b.org");
	expect(&d, 450, "4.7.1");
	plugin_host_free(h2);
	counter_store_close(cs2);
	fx_close(&fx);
}

/* test_postfix_counts_once_per_instance - a Postfix asks per recipient;
 * the message counts at the first accepted request of its instance, and
 * a request refused for another reason does not use up the count. */
static void
test_postfix_counts_once_per_instance(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, "      max_messages_per_minute: 2\n"
	    "      blocked_recipient_domains: [blocked.com]\n"), 0);
	/* Message 1: three recipients, counted once. */
	ask_on(&fx, PLUGIN_LISTENER_POSTFIX, 0, &d, "RCPT", "192.0.2.9",
	    "sender=a@b.org", "recipient=x@ok.com", "instance=m1", NULL);
	expect(&d, 0, NULL);
	ask_on(&fx, PLUGIN_LISTENER_POSTFIX, 1, &d, "RCPT", "192.0.2.9",
	    "sender=a@b.org", "recipient=y@ok.com", "instance=m1", NULL);
	expect(&d, 0, NULL);
	ask_on(&fx, PLUGIN_LISTENER_POSTFIX, 2, &d, "RCPT", "192.0.2.9",
	    "sender=a@b.org", "recipient=z@ok.com", "instance=m1", NULL);
	expect(&d, 0, NULL);
	/* Message 2: the first recipient is refused (its count withdrawn),
	 * the second counts. */
	ask_on(&fx, PLUGIN_LISTENER_POSTFIX, 0, &d, "RCPT", "192.0.2.9",
	    "sender=a@b.org", "recipient=x@blocked.com", "instance=m2", NULL);
	expect(&d, 550, "5.7.1");
	ask_on(&fx, PLUGIN_LISTENER_POSTFIX, 0, &d, "RCPT", "192.0.2.9",
	    "sender=a@b.org", "recipient=y@ok.com", "instance=m2", NULL);
	expect(&d, 0, NULL);
	/* Message 3: over the limit of 2. */
	ask_on(&fx, PLUGIN_LISTENER_POSTFIX, 0, &d, "RCPT", "192.0.2.9",
	    "sender=a@b.org", "recipient=x@ok.com", "instance=m3", NULL);
	expect(&d, 450, "4.7.1");
	/* Sender rules also apply at RCPT for Postfix requests. */
	fx_close(&fx);

	assert_int_equal(fx_open(&fx, "      allowed_sender_domains: [b.org]\n"
	    "      blocked_ips: [198.51.100.0/24]\n"), 0);
	ask_on(&fx, PLUGIN_LISTENER_POSTFIX, 0, &d, "RCPT", "192.0.2.9",
	    "sender=a@evil.org", "recipient=x@ok.com", "instance=m4", NULL);
	expect(&d, 550, "5.7.1");
	ask_on(&fx, PLUGIN_LISTENER_POSTFIX, 0, &d, "RCPT", "198.51.100.3",
	    "sender=a@b.org", "recipient=x@ok.com", "instance=m5", NULL);
	expect(&d, 554, "5.7.1");
	/* ... but not for Elemta's own smtpd, which asks at MAIL. */
	ASK(&fx, &d, "RCPT", "192.0.2.9", "sender=a@evil.org",
	    "recipient=x@ok.com");
	expect(&d, 0, NULL);
	fx_close(&fx);
}

/* test_connection_rate - max_connections_per_minute: 421 4.7.0. */
static void
test_connection_rate(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, "      max_connections_per_minute: 2\n"), 0);
	ASK(&fx, &d, "CONNECT", "192.0.2.1");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "CONNECT", "192.0.2.1");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "CONNECT", "192.0.2.1");
	expect(&d, 421, "4.7.0");
	ASK(&fx, &d, "EHLO", "192.0.2.1", "helo_name=x");
	expect(&d, 0, NULL);
	fake_ms += 60001;
	ASK(&fx, &d, "CONNECT", "192.0.2.1");
	expect(&d, 0, NULL);
	fx_close(&fx);
}

/* test_rate_limits_list - per-sender recipient limit (reject) and
 * per-domain message limit (tempfail). */
static void
test_rate_limits_list(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, "      rate_limits:\n"
	    "        - {event: recipient, key: sender, limit: 2, period: 1h, "
	    "action: reject}\n"
	    "        - {event: message, key: sender_domain, limit: 1, period: 10m}\n"),
	    0);
	ASK(&fx, &d, "RCPT", "192.0.2.1", "sender=A@b.org", "recipient=x@y.org");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "RCPT", "192.0.2.2", "sender=a@b.org", "recipient=x@y.org");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "RCPT", "192.0.2.3", "sender=a@b.org", "recipient=x@y.org");
	expect(&d, 550, "5.7.1");
	ASK(&fx, &d, "RCPT", "192.0.2.3", "sender=c@b.org", "recipient=x@y.org");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=a@dom.example");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "MAIL", "192.0.2.7", "sender=z@DOM.example");
	expect(&d, 450, "4.7.1");
	fake_ms += 600001;
	ASK(&fx, &d, "MAIL", "192.0.2.7", "sender=z@DOM.example");
	expect(&d, 0, NULL);
	fx_close(&fx);

	assert_int_equal(fx_open(&fx, "      rate_limits:\n"
	    "        - {event: messages, limit: 2}\n"), -1);
	assert_non_null(strstr(fx.err, "rate_limits.event"));
	fx_close(&fx);
	assert_int_equal(fx_open(&fx, "      rate_limits:\n"
	    "        - {event: message, limit: 2, keys: sender}\n"), -1);
	assert_non_null(strstr(fx.err, "did you mean 'key'"));
	fx_close(&fx);
}

/* test_reputation_file - listed networks take the file's score. */
static void
test_reputation_file(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	fx_extra_name = "rep.txt";
	fx_extra_text = "# bad and good networks\n192.0.2.0/24 10\n"
	    "192.0.2.7 90   # longest prefix wins\n\n2001:db8::/32 20\n";
	assert_int_equal(fx_open(&fx, "      block_bad_reputation: true\n"
	    "      min_reputation_score: 50\n"
	    "      reputation_file: rep.txt\n"), 0);
	ASK(&fx, &d, "CONNECT", "192.0.2.5");
	expect(&d, 554, "5.7.1");
	ASK(&fx, &d, "CONNECT", "192.0.2.7");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "CONNECT", "2001:db8:5::1");
	expect(&d, 554, "5.7.1");
	ASK(&fx, &d, "CONNECT", "203.0.113.1");    /* neutral 50 */
	expect(&d, 0, NULL);
	fx_close(&fx);

	fx_extra_name = "rep.txt";
	fx_extra_text = "192.0.2.0/24 10\n192.0.2.300 5\n";
	assert_int_equal(fx_open(&fx, "      block_bad_reputation: true\n"
	    "      reputation_file: rep.txt\n"), -1);
	if (strstr(fx.err, "rep.txt:2:") == NULL)
		fail_msg("error text: %s", fx.err);
	fx_close(&fx);

	assert_int_equal(fx_open(&fx, "      block_bad_reputation: true\n"
	    "      reputation_file: missing.txt\n"), -1);
	assert_non_null(strstr(fx.err, "missing.txt"));
	fx_close(&fx);

	assert_int_equal(fx_open(&fx, "      min_reputation_score: 50\n"), -1);
	assert_non_null(strstr(fx.err, "block_bad_reputation"));
	fx_close(&fx);
}

/* test_reputation_history - refusals lower an unlisted client's score,
 * accepted messages raise it, and it decays back toward neutral. */
static void
test_reputation_history(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, "      block_bad_reputation: true\n"
	    "      min_reputation_score: 45\n"
	    "      blocked_recipient_domains: [blocked.com]\n"), 0);
	ASK(&fx, &d, "CONNECT", "203.0.113.1");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "RCPT", "203.0.113.1", "recipient=a@blocked.com");
	expect(&d, 550, "5.7.1");                    /* 50 -> 45 */
	ASK(&fx, &d, "CONNECT", "203.0.113.1");
	expect(&d, 0, NULL);
	ASK(&fx, &d, "RCPT", "203.0.113.1", "recipient=b@blocked.com");
	expect(&d, 550, "5.7.1");                    /* 45 -> 40 */
	ASK(&fx, &d, "CONNECT", "203.0.113.1");
	expect(&d, 554, "5.7.1");
	ASK(&fx, &d, "CONNECT", "203.0.113.2");      /* others unaffected */
	expect(&d, 0, NULL);
	/* Two days later: 50 - 10 / 4 = 47.5. */
	fake_ms += 2 * 86400000ull;
	ASK(&fx, &d, "CONNECT", "203.0.113.1");
	expect(&d, 0, NULL);
	/* Accepted messages raise it; the reputation refusal itself does
	 * not lower it further. */
	ASK(&fx, &d, "RCPT", "203.0.113.1", "recipient=c@blocked.com");
	expect(&d, 550, "5.7.1");                    /* 47.5 -> 42.5 */
	ASK(&fx, &d, "CONNECT", "203.0.113.1");
	expect(&d, 554, "5.7.1");
	ASK(&fx, &d, "CONNECT", "203.0.113.1");
	expect(&d, 554, "5.7.1");
	for (int i = 0; i < 3; i++) {
		ASK(&fx, &d, "END-OF-MESSAGE", "203.0.113.1", "sender=a@b.org",
		    "size=10");
		expect(&d, 0, NULL);
	}                                            /* 42.5 -> 45.5 */
	ASK(&fx, &d, "CONNECT", "203.0.113.1");
	expect(&d, 0, NULL);
	fx_close(&fx);
}

/* ==== Metrics ==== */

/* test_metrics - the reference's counters count refusals per phase, in
 * worker memory: nothing is in the table until the host's flush. */
static void
test_metrics(void **state)
{
	struct fx fx;
	struct plugin_decision d;
	struct error err;
	struct metric_find conn = { "policy_rejected_connections_total", 0 };
	struct metric_find snd = { "policy_rejected_senders_total", 0 };
	struct metric_find rcpt = { "policy_rejected_recipients_total", 0 };
	struct metric_find msg = { "policy_rejected_messages_total", 0 };

	assert_int_equal(fx_open(&fx, "      blocked_ips: [198.51.100.1]\n"
	    "      allowed_sender_domains: [b.org]\n"
	    "      blocked_recipient_domains: [blocked.com]\n"
	    "      max_message_size: 100\n"), 0);
	ASK(&fx, &d, "CONNECT", "198.51.100.1");
	ASK(&fx, &d, "MAIL", "192.0.2.1", "sender=a@c.org");
	ASK(&fx, &d, "RCPT", "192.0.2.1", "sender=a@b.org", "recipient=a@blocked.com");
	ASK(&fx, &d, "RCPT", "192.0.2.1", "sender=a@b.org", "recipient=b@blocked.com");
	ASK(&fx, &d, "END-OF-MESSAGE", "192.0.2.1", "sender=a@b.org", "size=101");
	assert_int_equal(counter_visit(fx.cs, COUNTER_KIND_METRIC, NULL,
	    metric_cb, &rcpt, &err), 0);
	assert_int_equal(rcpt.value, 0);
	plugin_host_flush_metrics(fx.h);
	assert_int_equal(counter_visit(fx.cs, COUNTER_KIND_METRIC, NULL,
	    metric_cb, &conn, &err), 0);
	assert_int_equal(counter_visit(fx.cs, COUNTER_KIND_METRIC, NULL,
	    metric_cb, &snd, &err), 0);
	assert_int_equal(counter_visit(fx.cs, COUNTER_KIND_METRIC, NULL,
	    metric_cb, &rcpt, &err), 0);
	assert_int_equal(counter_visit(fx.cs, COUNTER_KIND_METRIC, NULL,
	    metric_cb, &msg, &err), 0);
	assert_int_equal(conn.value, 1);
	assert_int_equal(snd.value, 1);
	assert_int_equal(rcpt.value, 2);
	assert_int_equal(msg.value, 1);
	fx_close(&fx);
}

/* ==== Content rules ==== */

#define MIME_DIR "tests/unit/data/mime/"

/* eom_on - decide END-OF-MESSAGE for the sample file (or fd when file
 * is NULL); returns the code (0 continue). */
static int
eom_on(struct fx *fx, enum plugin_listener l, struct plugin_decision *d,
    const char *file, int fd)
{
	char path[256];
	int own = -1, code;

	if (file != NULL) {
		snprintf(path, sizeof(path), MIME_DIR "%s", file);
		own = fd = open(path, O_RDONLY);
		if (fd < 0)
			fail_msg("cannot open %s (run from the tree's root)", path);
	}
	ask_message_fd = fd;
	code = ask_on(fx, l, 0, d, "END-OF-MESSAGE", "192.0.2.1",
	    "sender=a@b.org", "size=600", "accepted_recipient=x@y.org", NULL);
	ask_message_fd = -1;
	if (own >= 0) {
		/* The host does not own (or close) the descriptor. */
		assert_int_not_equal(fcntl(own, F_GETFD), -1);
		assert_int_equal(lseek(own, 0, SEEK_CUR), 0);
		close(own);
	}
	return code;
}

#define EOM(fx, d, file) eom_on((fx), PLUGIN_LISTENER_ELEMTA, (d), (file), -1)

static const char content_yaml[] =
    "      prohibited_keywords: [viagra, lottery]\n"
    "      prohibited_extensions: [exe, .scr]\n";

/* test_content_reject - keywords (Subject RFC 2047, base64 part, QP soft
 * break) and extensions (RFC 2231, RFC 2047, nested, attached message,
 * upper case): 550 5.7.1 with a clear text; clean mail passes. */
static void
test_content_reject(void **state)
{
	static const char *const keyword_files[] = {
		"kw_subject_b64.eml", "kw_base64_part.eml",
		"kw_qp_soft_break.eml", "kw_nested_multipart.eml",
	};
	static const char *const ext_files[] = {
		"ext_rfc2231.eml", "ext_rfc2047.eml", "ext_nested.eml",
		"ext_attached_message.eml", "ext_upper_case.eml",
	};
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, content_yaml), 0);
	for (size_t i = 0; i < sizeof(keyword_files) / sizeof(*keyword_files); i++) {
		EOM(&fx, &d, keyword_files[i]);
		expect(&d, 550, "5.7.1");
		assert_string_equal(d.result.message,
		    "Message rejected: prohibited content");
		assert_false(d.accepted);
	}
	for (size_t i = 0; i < sizeof(ext_files) / sizeof(*ext_files); i++) {
		EOM(&fx, &d, ext_files[i]);
		expect(&d, 550, "5.7.1");
		if (strstr(d.result.message, "attachment type .") == NULL ||
		    strstr(d.result.message, "not allowed") == NULL)
			fail_msg("%s: %s", ext_files[i], d.result.message);
	}
	EOM(&fx, &d, "ext_upper_case.eml");
	assert_string_equal(d.result.message,
	    "Message rejected: attachment type .exe not allowed");
	EOM(&fx, &d, "neg_clean.eml");
	expect(&d, 0, NULL);
	EOM(&fx, &d, "neg_executive.eml");
	expect(&d, 0, NULL);
	/* 4 keyword + 5 extension + 1 repeated extension rejections. */
	assert_int_equal(metric_value(&fx, "policy_rejected_messages_total"),
	    4 + 5 + 1);
	fx_close(&fx);
}

/* test_content_actions - quarantine and discard accept the message with
 * that action and are not counted as rejections. */
static void
test_content_actions(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, "      prohibited_keywords: [viagra]\n"
	    "      content_action: quarantine\n"), 0);
	EOM(&fx, &d, "kw_subject_b64.eml");
	assert_int_equal(d.result.action, ELEMTA_QUARANTINE);
	assert_true(d.accepted);
	assert_non_null(strstr(d.result.message, "prohibited content"));
	EOM(&fx, &d, "neg_clean.eml");
	assert_int_equal(d.result.action, ELEMTA_CONTINUE);
	assert_int_equal(metric_value(&fx, "policy_rejected_messages_total"), 0);
	fx_close(&fx);

	assert_int_equal(fx_open(&fx, "      prohibited_extensions: [exe]\n"
	    "      content_action: discard\n"), 0);
	EOM(&fx, &d, "ext_rfc2231.eml");
	assert_int_equal(d.result.action, ELEMTA_DISCARD);
	assert_true(d.accepted);
	EOM(&fx, &d, "kw_subject_b64.eml");     /* no keyword configured */
	assert_int_equal(d.result.action, ELEMTA_CONTINUE);
	assert_int_equal(metric_value(&fx, "policy_rejected_messages_total"), 0);
	fx_close(&fx);

	assert_int_equal(fx_open(&fx, "      prohibited_extensions: [exe]\n"
	    "      content_action: reject\n"), 0);
	EOM(&fx, &d, "ext_rfc2231.eml");
	expect(&d, 550, "5.7.1");
	fx_close(&fx);
}

/* test_content_no_message - a scan error tempfails (never a silent
 * allow); no descriptor (Postfix listener, DATA) skips the rules; the
 * size rule decides before the scan. */
static void
test_content_no_message(void **state)
{
	struct fx fx;
	struct plugin_decision d;
	int pipefd[2];

	assert_int_equal(fx_open(&fx, content_yaml), 0);
	/* A descriptor that is not a regular file: the scanner refuses. */
	assert_int_equal(pipe(pipefd), 0);
	eom_on(&fx, PLUGIN_LISTENER_ELEMTA, &d, NULL, pipefd[0]);
	expect(&d, 451, "4.3.0");
	assert_int_equal(d.result.action, ELEMTA_TEMPFAIL);
	close(pipefd[0]);
	close(pipefd[1]);
	assert_int_equal(metric_value(&fx, "policy_rejected_messages_total"), 0);
	/* No descriptor at all. */
	eom_on(&fx, PLUGIN_LISTENER_ELEMTA, &d, NULL, -1);
	expect(&d, 0, NULL);
	eom_on(&fx, PLUGIN_LISTENER_POSTFIX, &d, NULL, -1);
	expect(&d, 0, NULL);
	/* DATA: not scanned even when a descriptor were there. */
	ASK(&fx, &d, "DATA", "192.0.2.1", "sender=a@b.org");
	expect(&d, 0, NULL);
	fx_close(&fx);

	assert_int_equal(fx_open(&fx, "      prohibited_keywords: [viagra]\n"
	    "      max_message_size: 100\n"), 0);
	EOM(&fx, &d, "kw_subject_b64.eml");     /* size=600 > 100 */
	expect(&d, 552, "5.3.4");
	fx_close(&fx);
}

/* test_content_limit - a message nested deeper than the scanner's limit
 * is treated as a match (never passed as clean). */
static void
test_content_limit(void **state)
{
	struct fx fx;
	struct plugin_decision d;
	char path[] = "/tmp/elemta-test-deep-XXXXXX";
	int fd = mkstemp(path);
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(dup(fd), "w");
	assert_non_null(f);
	fprintf(f, "From: a@b.org\r\nSubject: deep\r\nMIME-Version: 1.0\r\n");
	for (int i = 0; i < 40; i++)
		fprintf(f, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n"
		    "\r\n--b%d\r\n", i, i);
	fprintf(f, "Content-Type: text/plain\r\n\r\nhello\r\n");
	for (int i = 39; i >= 0; i--)
		fprintf(f, "--b%d--\r\n", i);
	fclose(f);
	unlink(path);
	assert_int_equal(fx_open(&fx, content_yaml), 0);
	eom_on(&fx, PLUGIN_LISTENER_ELEMTA, &d, NULL, fd);
	expect(&d, 550, "5.7.1");
	assert_string_equal(d.result.message,
	    "Message rejected: MIME structure too complex to scan");
	fx_close(&fx);
	close(fd);
}

/* test_content_config - list items and content_action are validated at
 * start-up, naming file:line and the key. */
static void
test_content_config(void **state)
{
	struct fx fx;
	char where[300];

	assert_int_equal(fx_open(&fx, "      prohibited_keywords: [viagra]\n"
	    "      content_action: bounce\n"), -1);
	if (strstr(fx.err, "content_action") == NULL ||
	    strstr(fx.err, "reject, quarantine or discard") == NULL)
		fail_msg("error text: %s", fx.err);
	fx_close(&fx);

	assert_int_equal(fx_open(&fx, "      prohibited_extensions:\n"
	    "        - exe\n        - \"a/b\"\n"), -1);
	snprintf(where, sizeof(where), "%s/elemta.yaml:12:", tmpdir);
	if (strstr(fx.err, where) == NULL ||
	    strstr(fx.err, "prohibited_extensions") == NULL)
		fail_msg("error text: %s", fx.err);
	fx_close(&fx);

	assert_int_equal(fx_open(&fx, "      prohibited_keywords: [\"\"]\n"), -1);
	assert_non_null(strstr(fx.err, "prohibited_keywords"));
	fx_close(&fx);

	assert_int_equal(fx_open(&fx, "      prohibited_keywords: viagra\n"), -1);
	assert_non_null(strstr(fx.err, "prohibited_keywords"));
	fx_close(&fx);

	/* Valid, and the rules off when the lists are empty. */
	assert_int_equal(fx_open(&fx, "      prohibited_keywords: []\n"
	    "      content_action: quarantine\n"), 0);
	fx_close(&fx);
}

/* ==== Config ==== */

/* test_config_errors - unknown keys suggest the nearest, unimplemented
 * keys are refused, bad values name file:line. */
static void
test_config_errors(void **state)
{
	struct fx fx;
	char where[300];

	assert_int_equal(fx_open(&fx, "      max_mesages_per_minute: 5\n"), -1);
	assert_non_null(strstr(fx.err, "did you mean 'max_messages_per_minute'"));
	fx_close(&fx);

	/* The content keys are implemented now (test_content_config). */
	assert_int_equal(fx_open(&fx, "      prohibited_keywords: [x]\n"), 0);
	fx_close(&fx);

	assert_int_equal(fx_open(&fx, "      max_messages_per_minute: 5\n"
	    "      blocked_ips: [192.0.2.0/33]\n"), -1);
	snprintf(where, sizeof(where), "%s/elemta.yaml:11:", tmpdir);
	if (strstr(fx.err, where) == NULL || strstr(fx.err, "blocked_ips") == NULL)
		fail_msg("error text: %s", fx.err);
	fx_close(&fx);

	assert_int_equal(fx_open(&fx, "      max_messages_per_minute: lots\n"), -1);
	assert_non_null(strstr(fx.err, "max_messages_per_minute"));
	fx_close(&fx);

	assert_int_equal(fx_open(&fx, "      access_hours: {start: \"9h\", "
	    "end: \"17:00\"}\n"), -1);
	assert_non_null(strstr(fx.err, "access_hours.start"));
	fx_close(&fx);

	assert_int_equal(fx_open(&fx, "      access_hours: {start: \"09:00\", "
	    "end: \"17:00\", days: [mon, funday]}\n"), -1);
	assert_non_null(strstr(fx.err, "funday"));
	fx_close(&fx);

	/* Absent config: every rule off, everything continues. */
	assert_int_equal(fx_open(&fx, "      {}\n"), 0);
	fx_close(&fx);
}

/* ==== AUTH rules ==== */

/* auth_on - one AUTH decision as policyd makes it after checking the
 * credentials (ok: 1 right, 0 wrong); returns the code (0 continue). */
static int
auth_on(struct fx *fx, struct plugin_decision *d, const char *ip,
    const char *user, int ok)
{
	struct rq q;
	size_t n = 0;

	memset(&q, 0, sizeof(q));
	snprintf(q.text[n++], 256, "request=smtpd_access_policy");
	snprintf(q.text[n++], 256, "protocol_state=AUTH");
	snprintf(q.text[n++], 256, "client_address=%s", ip);
	snprintf(q.text[n++], 256, "sasl_method=PLAIN");
	snprintf(q.text[n++], 256, "sasl_username=%s", user);
	for (size_t i = 0; i < n; i++) {
		char *eq = strchr(q.text[i], '=');

		*eq = '\0';
		q.attrs[i].name = q.text[i];
		q.attrs[i].value = eq + 1;
	}
	q.r.attrs = q.attrs;
	q.r.count = n;
	q.p.req = &q.r;
	q.p.listener = PLUGIN_LISTENER_ELEMTA;
	q.p.message_fd = -1;
	q.p.auth_succeeded = ok;
	plugin_host_decide(fx->h, &q.p, d);
	return d->result.action == ELEMTA_CONTINUE ? 0 : d->result.smtp_code;
}

/* auth_count - failures recorded under one of the plugin's keys
 * ("ip:192.0.2.1", "user:alice", "pair:192.0.2.1 alice"). */
static uint32_t
auth_count(struct fx *fx, const char *key)
{
	struct error err;
	uint32_t n = 0;
	char k[300];

	snprintf(k, sizeof(k), "policy:authfail:%s", key);
	assert_int_equal(counter_event_count(fx->cs, k, 600000, &n, &err), 0);
	return n;
}

#define AUTH_LOCKED_TEXT \
	"Too many failed authentication attempts, try again later"

/* test_auth_failed_limit - max_failed_auth failures lock the address
 * and the address+user pair (454 4.7.0, even with the right password)
 * until the window passes; the user alone is never locked (issue 22:
 * anyone could lock anyone out), only slowed down (policy_auth_gate,
 * tests/integration/test_auth_flood.py). */
static void
test_auth_failed_limit(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, "      max_failed_auth: 3\n"
	    "      failed_auth_window: 10m\n"), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(auth_on(&fx, &d, "192.0.2.1", "alice", 0), 535);
		expect(&d, 535, "5.7.8");
		assert_string_equal(d.result.message,
		    "Authentication credentials invalid");
	}
	assert_int_equal(auth_on(&fx, &d, "192.0.2.1", "alice", 1), 454);
	expect(&d, 454, "4.7.0");
	assert_string_equal(d.result.message, AUTH_LOCKED_TEXT);
	assert_string_equal(d.plugin, "policy");
	/* Another user from here: locked too; the user from elsewhere is
	 * not. */
	assert_int_equal(auth_on(&fx, &d, "192.0.2.1", "bob", 1), 454);
	assert_int_equal(auth_on(&fx, &d, "192.0.2.2", "alice", 1), 0);
	/* Others are not concerned. */
	assert_int_equal(auth_on(&fx, &d, "192.0.2.3", "bob", 1), 0);
	/* Once the window has passed the failures, the right password
	 * works again (the locked attempts with it were not counted). */
	fake_ms += 10 * 60 * 1000 + 1;
	assert_int_equal(auth_on(&fx, &d, "192.0.2.1", "alice", 1), 0);
	fx_close(&fx);
}

/* test_auth_success_resets - a success forgets the user's and the
 * pair's failures, never the address's own. */
static void
test_auth_success_resets(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, "      max_failed_auth: 3\n"), 0);
	auth_on(&fx, &d, "192.0.2.1", "alice", 0);
	auth_on(&fx, &d, "192.0.2.1", "alice", 0);
	auth_on(&fx, &d, "192.0.2.9", "alice", 0);
	assert_int_equal(auth_count(&fx, "ip:192.0.2.1"), 2);
	assert_int_equal(auth_count(&fx, "user:alice"), 3);
	assert_int_equal(auth_count(&fx, "pair:192.0.2.1 alice"), 2);
	/* alice over the limit across addresses is not locked out: her
	 * right password resets her user's and pair's counts, not the
	 * address's. */
	assert_int_equal(auth_on(&fx, &d, "192.0.2.1", "alice", 1), 0);
	assert_int_equal(auth_count(&fx, "user:alice"), 0);
	assert_int_equal(auth_count(&fx, "pair:192.0.2.1 alice"), 0);
	assert_int_equal(auth_count(&fx, "ip:192.0.2.1"), 2);
	fake_ms += 15 * 60 * 1000 + 1;           /* the default window */
	assert_int_equal(auth_on(&fx, &d, "192.0.2.1", "alice", 0), 535);
	assert_int_equal(auth_on(&fx, &d, "192.0.2.1", "alice", 1), 0);
	assert_int_equal(auth_count(&fx, "user:alice"), 0);
	assert_int_equal(auth_count(&fx, "pair:192.0.2.1 alice"), 0);
	assert_int_equal(auth_count(&fx, "ip:192.0.2.1"), 1);
	/* The address keeps counting toward its limit across users. */
	assert_int_equal(auth_on(&fx, &d, "192.0.2.1", "bob", 0), 535);
	assert_int_equal(auth_on(&fx, &d, "192.0.2.1", "carol", 0), 535);
	assert_int_equal(auth_count(&fx, "ip:192.0.2.1"), 3);
	assert_int_equal(auth_on(&fx, &d, "192.0.2.1", "alice", 1), 454);
	fx_close(&fx);
}

/* test_auth_lock_counts_wrong_only - while locked, a wrong password is
 * still counted, the right one is not; the metrics say what happened. */
static void
test_auth_lock_counts_wrong_only(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, "      max_failed_auth: 3\n"), 0);
	for (int i = 0; i < 3; i++)
		auth_on(&fx, &d, "192.0.2.1", "alice", 0);
	assert_int_equal(auth_count(&fx, "user:alice"), 3);
	assert_int_equal(auth_on(&fx, &d, "192.0.2.1", "alice", 1), 454);
	assert_int_equal(auth_count(&fx, "user:alice"), 3);
	assert_int_equal(auth_count(&fx, "ip:192.0.2.1"), 3);
	assert_int_equal(auth_on(&fx, &d, "192.0.2.1", "alice", 0), 454);
	assert_int_equal(auth_count(&fx, "user:alice"), 4);
	assert_int_equal(auth_count(&fx, "ip:192.0.2.1"), 4);
	assert_int_equal(auth_on(&fx, &d, "192.0.2.3", "bob", 1), 0);
	assert_int_equal(metric_value(&fx, "policy_auth_failures_total"), 3);
	assert_int_equal(metric_value(&fx, "policy_auth_locked_total"), 2);
	assert_int_equal(metric_value(&fx, "policy_auth_success_total"), 1);
	fx_close(&fx);
}

/* test_auth_ipv6_prefix - IPv6 clients share their /64's count. */
static void
test_auth_ipv6_prefix(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, "      max_failed_auth: 2\n"), 0);
	auth_on(&fx, &d, "2001:db8::1", "alice", 0);
	auth_on(&fx, &d, "2001:db8::2", "bob", 0);
	assert_int_equal(auth_count(&fx, "ip:2001:db8::/64"), 2);
	assert_int_equal(auth_on(&fx, &d, "2001:db8::ffff", "carol", 1), 454);
	assert_int_equal(auth_on(&fx, &d, "2001:db8:0:1::1", "carol", 1), 0);
	fx_close(&fx);
}

/* test_auth_hours - outside a user's window every AUTH as that user is
 * refused 535 5.7.8 and counted, whatever the password; in the window,
 * and for other users, the outcome decides. */
static void
test_auth_hours(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, "      max_failed_auth: 5\n"
	    "      user_auth_hours:\n"
	    "        alice: {start: \"08:00\", end: \"18:00\", "
	    "days: [mon, tue, wed, thu, fri], timezone: \"Europe/Paris\"}\n"),
	    0);
	policy_set_clock(fake_time_fn);
	fake_time = 1764064800;                   /* Tue 10:00 UTC, 11:00 CET */
	assert_int_equal(auth_on(&fx, &d, "192.0.2.1", "alice", 1), 0);
	assert_int_equal(auth_on(&fx, &d, "192.0.2.1", "alice", 0), 535);
	assert_string_equal(d.result.message,
	    "Authentication credentials invalid");
	assert_int_equal(auth_on(&fx, &d, "192.0.2.1", "alice", 1), 0);
	fake_time = 1764064800 + 7 * 3600 + 60;   /* 18:01 CET */
	assert_int_equal(auth_on(&fx, &d, "192.0.2.1", "alice", 1), 535);
	expect(&d, 535, "5.7.8");
	assert_string_equal(d.result.message,
	    "Authentication not allowed at this time for this user");
	assert_int_equal(auth_count(&fx, "user:alice"), 1);
	/* The same answer with a wrong password: nothing leaks. */
	assert_int_equal(auth_on(&fx, &d, "192.0.2.1", "alice", 0), 535);
	assert_string_equal(d.result.message,
	    "Authentication not allowed at this time for this user");
	assert_int_equal(auth_count(&fx, "user:alice"), 2);
	assert_int_equal(auth_on(&fx, &d, "192.0.2.1", "bob", 1), 0);
	fake_time = 1764064800 + 6 * 3600 + 60;   /* 17:01 CET */
	assert_int_equal(auth_on(&fx, &d, "192.0.2.2", "alice", 1), 0);
	fake_time = 1764064800 + 4 * 86400;       /* Saturday 11:00 CET */
	assert_int_equal(auth_on(&fx, &d, "192.0.2.2", "alice", 1), 535);
	assert_int_equal(metric_value(&fx, "policy_auth_failures_total"), 4);
	assert_int_equal(metric_value(&fx, "policy_auth_success_total"), 4);
	fx_close(&fx);
}

/* test_auth_config_errors - the AUTH keys are validated at init. */
static void
test_auth_config_errors(void **state)
{
	struct fx fx;

	assert_int_equal(fx_open(&fx, "      max_failed_auth: -1\n"), -1);
	assert_non_null(strstr(fx.err, "max_failed_auth"));
	fx_close(&fx);
	assert_int_equal(fx_open(&fx, "      max_failed_auth: 3\n"
	    "      failed_auth_window: 0s\n"), -1);
	assert_non_null(strstr(fx.err, "failed_auth_window"));
	fx_close(&fx);
	assert_int_equal(fx_open(&fx, "      user_auth_hours: [alice]\n"), -1);
	assert_non_null(strstr(fx.err, "expected a map"));
	fx_close(&fx);
	assert_int_equal(fx_open(&fx, "      user_auth_hours:\n"
	    "        alice: {start: \"08:00\", end: \"18:00\", "
	    "days: [mon, funday]}\n"), -1);
	assert_non_null(strstr(fx.err, "user_auth_hours.alice.days"));
	assert_non_null(strstr(fx.err, "funday"));
	fx_close(&fx);
	assert_int_equal(fx_open(&fx, "      user_auth_hours:\n"
	    "        alice: {start: \"08:00\", end: \"18:00\", "
	    "timezone: \"Mars/Olympus\"}\n"), -1);
	assert_non_null(strstr(fx.err, "unknown time zone"));
	fx_close(&fx);
	assert_int_equal(fx_open(&fx, "      max_failed_auth: 5\n"
	    "      failed_auth_window: 15m\n      user_auth_hours: {}\n"), 0);
	fx_close(&fx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocked_recipient_domains),
		cmocka_unit_test(test_blocked_recipient_unicode_dots),
		cmocka_unit_test(test_allowed_relay_domains),
		cmocka_unit_test(test_max_recipients),
		cmocka_unit_test(test_allowed_sender_domains),
		cmocka_unit_test(test_sender_format),
		cmocka_unit_test(test_null_sender),
		cmocka_unit_test(test_max_message_size),
		cmocka_unit_test(test_blocked_ips),
		cmocka_unit_test(test_access_hours),
		cmocka_unit_test(test_message_rate_exact),
		cmocka_unit_test(test_message_rate_ipv6_and_exempt),
		cmocka_unit_test(test_message_rate_two_workers),
		cmocka_unit_test(test_postfix_counts_once_per_instance),
		cmocka_unit_test(test_connection_rate),
		cmocka_unit_test(test_rate_limits_list),
		cmocka_unit_test(test_reputation_file),
		cmocka_unit_test(test_reputation_history),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_content_reject),
		cmocka_unit_test(test_content_actions),
		cmocka_unit_test(test_content_no_message),
		cmocka_unit_test(test_content_limit),
		cmocka_unit_test(test_content_config),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_auth_failed_limit),
		cmocka_unit_test(test_auth_success_resets),
		cmocka_unit_test(test_auth_lock_counts_wrong_only),
		cmocka_unit_test(test_auth_ipv6_prefix),
		cmocka_unit_test(test_auth_hours),
		cmocka_unit_test(test_auth_config_errors),
	};

	log_init("test_policy_rules", true, LOG_LEVEL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
