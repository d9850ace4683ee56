/*
 * test_relay.c - unit tests for smtpd/relay.c: one test per promise of
 * relay.h (trusted clients relay anywhere; others reach only served
 * domains, without a routing trick; the bare postmaster is ours).  The
 * session's use of it (reply, logging, order before policyd) is in
 * test_session.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "addr.h"
#include "config.h"
#include "route.h"
#include "../../smtpd/command.h"
#include "../../smtpd/relay.h"

static struct config cfg;       /* large: not on the stack */
static struct route routes[2];

/* cfg_setup - mynetworks 10.0.0.0/8 and 2001:db8::/32; served.example
 * and its subdomains served; "*" routes the rest. */
static int
cfg_setup(void **state)
{
	struct error err;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	memset(routes, 0, sizeof(routes));
	assert_int_equal(addr_cidr_list_add(&cfg.server.mynetworks,
	    "10.0.0.0/8", 0, &err), 0);
	assert_int_equal(addr_cidr_list_add(&cfg.server.mynetworks,
	    "2001:db8::/32", 0, &err), 0);
	assert_int_equal(route_domains_add(&routes[0], "served.example", &err),
	    0);
	assert_int_equal(route_domains_add(&routes[0], ".served.example", &err),
	    0);
	assert_int_equal(route_domains_add(&routes[1], "*", &err), 0);
	cfg.delivery.routes = routes;
	cfg.delivery.route_count = 2;
	return 0;
}

/* cfg_teardown - the lists. */
static int
cfg_teardown(void **state)
{
	(void)state;
	addr_cidr_list_free(&cfg.server.mynetworks);
	route_free(&routes[0]);
	route_free(&routes[1]);
	return 0;
}

/* decide - relay_check for "RCPT TO:<rcpt>" from client. */
static enum relay_decision
decide(const char *client, bool authenticated, const char *rcpt)
{
	struct command_path p;
	struct command_error err;
	char arg[400];

	snprintf(arg, sizeof(arg), "TO:<%s>", rcpt);
	assert_int_equal(command_parse_rcpt(arg, true, &p, &err), 0);
	return relay_check(&cfg, client, authenticated, &p);
}

/* test_trusted - mynetworks (IPv4, IPv4-mapped, IPv6) or AUTH: anywhere,
 * tricks included */
static void
test_trusted(void **state)
{
	(void)state;
	assert_int_equal(decide("10.1.2.3", false, "u@other.example"),
	    RELAY_TRUSTED);
	assert_int_equal(decide("::ffff:10.1.2.3", false, "u@other.example"),
	    RELAY_TRUSTED);
	assert_int_equal(decide("2001:db8::5", false, "a%b@other.example"),
	    RELAY_TRUSTED);
	assert_int_equal(decide("192.0.2.1", true, "@x.example:u@other.example"),
	    RELAY_TRUSTED);
	assert_int_equal(decide("192.0.2.1", true, "u@other.example"),
	    RELAY_TRUSTED);
}

/* test_untrusted - served domains only; unserved, literals and look-
 * alikes refused; an unparsable client address trusts nothing */
static void
test_untrusted(void **state)
{
	(void)state;
	assert_int_equal(decide("192.0.2.1", false, "u@served.example"),
	    RELAY_SERVED);
	assert_int_equal(decide("192.0.2.1", false, "u@MX.Served.Example"),
	    RELAY_SERVED);
	assert_int_equal(decide("192.0.2.1", false, "\"john doe\"@served.example"),
	    RELAY_SERVED);
	assert_int_equal(decide("192.0.2.1", false, "Postmaster"), RELAY_SERVED);
	assert_int_equal(decide("192.0.2.1", false, "u@other.example"),
	    RELAY_UNSERVED);
	assert_int_equal(decide("192.0.2.1", false, "u@served.example.net"),
	    RELAY_UNSERVED);
	assert_int_equal(decide("192.0.2.1", false, "u@[10.0.0.1]"),
	    RELAY_UNSERVED);
	assert_int_equal(decide("11.0.0.1", false, "u@other.example"),
	    RELAY_UNSERVED);
	assert_int_equal(decide("", false, "u@other.example"), RELAY_UNSERVED);
	assert_int_equal(decide("unix", false, "u@other.example"),
	    RELAY_UNSERVED);
	assert_int_equal(decide(NULL, false, "u@other.example"), RELAY_UNSERVED);
}

/* test_routing_tricks - allow_untrusted_routing = no */
static void
test_routing_tricks(void **state)
{
	static const char *const tricks[] = {
		"u%other.example@served.example",
		"@served.example:u@other.example",
		"@other.example:u@served.example",
		"@a.example,@b.example:u@served.example",
		"@other.example:postmaster",
		"\"u@other.example\"@served.example",
		"\"u\\@other.example\"@served.example",
		"\"u%other\"@served.example",
		"\"other!u\"@served.example",
		"other.example!u@served.example",
		"a!b!c@served.example",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(tricks) / sizeof(tricks[0]); i++) {
		if (decide("192.0.2.1", false, tricks[i]) != RELAY_ROUTING)
			fail_msg("'%s' was not refused as routing", tricks[i]);
	}
}

/* test_names - the decisions' log names and which allow */
static void
test_names(void **state)
{
	(void)state;
	assert_true(relay_allowed(RELAY_TRUSTED));
	assert_true(relay_allowed(RELAY_SERVED));
	assert_false(relay_allowed(RELAY_UNSERVED));
	assert_false(relay_allowed(RELAY_ROUTING));
	assert_string_equal(relay_decision_name(RELAY_UNSERVED),
	    "unserved domain");
	assert_string_equal(relay_decision_name(RELAY_ROUTING),
	    "sender-specified routing");
	assert_string_equal(relay_decision_name((enum relay_decision)42), "?");
}

/* main */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trusted),
		cmocka_unit_test(test_untrusted),
		cmocka_unit_test(test_routing_tricks),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, cfg_setup, cfg_teardown);
}
