/*
 * test_dns.c - unit tests of common/dns.c, the resolver, against a real
 * authoritative server: NSD, started by the group setup on 127.0.0.1 and
 * a free port with zones written here (example.test, and zones libunbound
 * would otherwise answer itself: localhost, 127.in-addr.arpa,
 * 10.in-addr.arpa).
 *
 * One test per promise of dns.h: the callback runs exactly once and never
 * inside dns_query (bad names, answers from cache, the outstanding bound),
 * never after dns_query_cancel or dns_resolver_free; records of each type
 * with CNAMEs followed and TTLs; NXDOMAIN and NODATA with the negative TTL;
 * every name, built-in zones included, goes to the resolver; dns.timeout
 * turns a silent resolver into DNS_TEMPFAIL; the reverse names.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "dns.h"
#include "scratch.h"

/*==== The server ====*/

static char nsd_addr[32];               /* "127.0.0.1@PORT" */
static pid_t nsd_pid = -1;

static const char *const zone_example =
    "$ORIGIN example.test.\n$TTL 300\n"
    "@ IN SOA ns.example.test. host.example.test. 1 3600 600 86400 60\n"
    "@ IN NS ns\nns IN A 127.0.0.1\n"
    "@ IN MX 10 mx1\n@ IN MX 20 MX2\n"
    "mx1 IN A 127.0.0.2\nmx2 120 IN A 127.0.0.3\nmx2 IN AAAA ::1\n"
    "alias IN CNAME mx1\n"
    "txt IN TXT \"v=spf1 \" \"-all\"\n"
    "null IN MX 0 .\n"
    "_25._tcp.mx1 IN TLSA 3 1 1 "
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n";
static const char *const zone_localhost =
    "$ORIGIN localhost.\n$TTL 300\n"
    "@ IN SOA ns.example.test. host.example.test. 1 3600 600 86400 60\n"
    "@ IN NS ns.example.test.\n@ IN A 127.0.0.99\n";
static const char *const zone_127 =
    "$ORIGIN 127.in-addr.arpa.\n$TTL 300\n"
    "@ IN SOA ns.example.test. host.example.test. 1 3600 600 86400 60\n"
    "@ IN NS ns.example.test.\n"
    "1.0.0 IN PTR from-nsd.example.test.\n"
    "5.0.0 IN PTR client5.example.test.\n";
static const char *const zone_10 =
    "$ORIGIN 10.in-addr.arpa.\n$TTL 300\n"
    "@ IN SOA ns.example.test. host.example.test. 1 3600 600 86400 60\n"
    "@ IN NS ns.example.test.\n"
    "3.2.1 IN PTR lan.example.test.\n";

/* free_port - a port nothing listens on (UDP and TCP) right now. */
static unsigned
free_port(void)
{
	for (int tries = 0; tries < 50; tries++) {
		struct sockaddr_in sin = { .sin_family = AF_INET };
		socklen_t len = sizeof(sin);
		int u = socket(AF_INET, SOCK_DGRAM, 0);
		int t = socket(AF_INET, SOCK_STREAM, 0);
		unsigned port = 0;

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(u, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
		    getsockname(u, (struct sockaddr *)&sin, &len) == 0 &&
		    bind(t, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			port = ntohs(sin.sin_port);
		close(u);
		close(t);
		if (port != 0)
			return port;
	}
	fail_msg("no free port");
	return 0;
}

/* nsd_started - NSD's log says it serves. */
static bool
nsd_started(void)
{
	char path[128], buf[4096];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/nsd.log", scratch_dir);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, "nsd started") != NULL;
}

/* nsd_start - NSD in the foreground on 127.0.0.1:port, unprivileged. */
static int
nsd_start(void **state)
{
	char conf[2048], path[128];
	unsigned port;
	struct timespec pause = { 0, 20 * 1000 * 1000 };

	scratch_make();
	port = free_port();
	snprintf(nsd_addr, sizeof(nsd_addr), "127.0.0.1@%u", port);
	snprintf(conf, sizeof(conf),
	    "server:\n  ip-address: %s\n  port: %u\n  username: \"\"\n"
	    "  chroot: \"\"\n  zonesdir: \"%s\"\n  pidfile: \"%s/nsd.pid\"\n"
	    "  database: \"\"\n  xfrdfile: \"%s/xfrd.state\"\n"
	    "  zonelistfile: \"%s/zone.list\"\n  xfrdir: \"%s\"\n"
	    "  logfile: \"%s/nsd.log\"\n  server-count: 1\n  do-ip6: no\n"
	    "  verbosity: 1\nremote-control:\n  control-enable: no\n"
	    "zone:\n  name: example.test\n  zonefile: example.zone\n"
	    "zone:\n  name: localhost\n  zonefile: localhost.zone\n"
	    "zone:\n  name: 127.in-addr.arpa\n  zonefile: 127.zone\n"
	    "zone:\n  name: 10.in-addr.arpa\n  zonefile: 10.zone\n",
	    nsd_addr, port, scratch_dir, scratch_dir, scratch_dir, scratch_dir, scratch_dir,
	    scratch_dir);
	scratch_write("nsd.conf", conf);
	scratch_write("example.zone", zone_example);
	scratch_write("localhost.zone", zone_localhost);
	scratch_write("127.zone", zone_127);
	scratch_write("10.zone", zone_10);
	snprintf(path, sizeof(path), "%s/nsd.conf", scratch_dir);
	nsd_pid = fork();
	assert_true(nsd_pid >= 0);
	if (nsd_pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 1);
		dup2(null, 2);
		execlp("nsd", "nsd", "-d", "-c", path, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && !nsd_started(); i++) {
		int status;

		if (waitpid(nsd_pid, &status, WNOHANG) == nsd_pid)
			fail_msg("nsd exited (installed? scripts/setup --test)");
		nanosleep(&pause, NULL);
	}
	assert_true(nsd_started());
	return 0;
}

/* nsd_stop - stop NSD and remove its directory. */
static int
nsd_stop(void **state)
{
	if (nsd_pid > 0) {
		kill(nsd_pid, SIGTERM);
		waitpid(nsd_pid, NULL, 0);
	}
	scratch_remove();
	return 0;
}

/*==== A resolver and its answers ====*/

#define RESULTS_MAX 8

/* What a callback saw, copied (the answer lives only during it). */
struct result {
	int calls;
	bool inside;                /* ran while dns_query was running */
	enum dns_status status;
	bool secure;
	uint32_t ttl;
	size_t count;
	struct dns_record rec[RESULTS_MAX];
	char txt[DNS_TXT_MAX + 1];
	char why[256];
	char qname[DNS_NAME_MAX];
};

static bool in_query;
static int answers_seen;            /* every on_answer call */
static struct event_base *base;

/* on_answer - copy the answer into the struct result arg. */
static void
on_answer(const struct dns_answer *a, void *arg)
{
	struct result *r = arg;

	answers_seen++;
	r->calls++;
	r->inside = in_query;
	r->status = a->status;
	r->secure = a->secure;
	r->ttl = a->ttl;
	r->count = a->count;
	snprintf(r->qname, sizeof(r->qname), "%s", a->qname);
	snprintf(r->why, sizeof(r->why), "%s", a->why != NULL ? a->why : "");
	for (size_t i = 0; i < a->count && i < RESULTS_MAX; i++) {
		r->rec[i] = a->records[i];
		if (a->records[i].type == DNS_TYPE_TXT) {
			snprintf(r->txt, sizeof(r->txt), "%s",
			    a->records[i].u.txt.text);
			r->rec[i].u.txt.text = NULL;
		}
	}
}

/* resolver - one on base for NSD (or addr), with timeout_ms. */
static struct dns_resolver *
resolver(const char *addr, uint64_t timeout_ms, unsigned max_outstanding)
{
	const char *list[1] = { addr != NULL ? addr : nsd_addr };
	struct dns_options opt = { .resolvers = list, .resolver_count = 1,
	    .timeout_ms = timeout_ms, .max_outstanding = max_outstanding };
	struct error err;
	struct dns_resolver *r;

	if (base == NULL)
		base = event_base_new();
	r = dns_resolver_new(base, &opt, &err);
	if (r == NULL)
		fail_msg("dns_resolver_new: %s", err.text);
	return r;
}

/* deadline_cb - the loop ran too long. */
static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
	event_base_loopbreak(base);
}

/* run_until - run the loop until *calls reaches n or ms pass. */
static void
run_until(const int *calls, int n, unsigned ms)
{
	bool late = false;
	struct event *deadline = evtimer_new(base, deadline_cb, &late);
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(deadline, &tv);
	while (*calls < n && !late)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(deadline);
}

/* ask - one query, run to its answer, r's callback once, never inside. */
static void
ask(struct dns_resolver *r, const char *name, enum dns_type type,
    struct result *res)
{
	memset(res, 0, sizeof(*res));
	in_query = true;
	assert_non_null(dns_query(r, name, type, on_answer, res));
	in_query = false;
	assert_int_equal(res->calls, 0);
	run_until(&res->calls, 1, 10000);
	assert_int_equal(res->calls, 1);
	assert_false(res->inside);
}

/*==== Tests ====*/

/* test_mx - MX records with preferences, lower-cased hosts, the TTL. */
static void
test_mx(void **state)
{
	struct dns_resolver *r = resolver(NULL, 5000, 0);
	struct result res;

	ask(r, "Example.TEST.", DNS_TYPE_MX, &res);
	assert_int_equal(res.status, DNS_OK);
	assert_string_equal(res.qname, "example.test");
	assert_int_equal(res.count, 2);
	assert_int_equal(res.ttl, 300);
	assert_false(res.secure);
	for (size_t i = 0; i < 2; i++) {
		const struct dns_mx *mx = &res.rec[i].u.mx;

		assert_int_equal(res.rec[i].type, DNS_TYPE_MX);
		if (mx->preference == 10)
			assert_string_equal(mx->host, "mx1.example.test");
		else
			assert_string_equal(mx->host, "mx2.example.test");
	}
	ask(r, "null.example.test", DNS_TYPE_MX, &res);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.count, 1);
	assert_int_equal(res.rec[0].u.mx.preference, 0);
	assert_string_equal(res.rec[0].u.mx.host, ".");
	dns_resolver_free(r);
}

/* test_addresses - A (CNAME followed, smallest TTL), AAAA, PTR, TXT
 * joined, TLSA. */
static void
test_addresses(void **state)
{
	struct dns_resolver *r = resolver(NULL, 5000, 0);
	struct result res;
	static const uint8_t a2[4] = { 127, 0, 0, 2 };
	uint8_t v6[16] = { 0 };

	ask(r, "alias.example.test", DNS_TYPE_A, &res);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.count, 1);
	assert_memory_equal(res.rec[0].u.a, a2, 4);
	ask(r, "mx2.example.test", DNS_TYPE_A, &res);
	assert_int_equal(res.ttl, 120);
	ask(r, "mx2.example.test", DNS_TYPE_AAAA, &res);
	assert_int_equal(res.status, DNS_OK);
	v6[15] = 1;
	assert_memory_equal(res.rec[0].u.aaaa, v6, 16);
	ask(r, "5.0.0.127.in-addr.arpa", DNS_TYPE_PTR, &res);
	assert_int_equal(res.status, DNS_OK);
	assert_string_equal(res.rec[0].u.name, "client5.example.test");
	ask(r, "txt.example.test", DNS_TYPE_TXT, &res);
	assert_int_equal(res.status, DNS_OK);
	assert_string_equal(res.txt, "v=spf1 -all");
	ask(r, "_25._tcp.mx1.example.test", DNS_TYPE_TLSA, &res);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.rec[0].u.tlsa.usage, 3);
	assert_int_equal(res.rec[0].u.tlsa.selector, 1);
	assert_int_equal(res.rec[0].u.tlsa.matching_type, 1);
	assert_int_equal(res.rec[0].u.tlsa.data_len, 32);
	assert_int_equal(res.rec[0].u.tlsa.data[0], 0x01);
	assert_int_equal(res.rec[0].u.tlsa.data[31], 0xef);
	dns_resolver_free(r);
}

/* test_negative - NXDOMAIN and NODATA, with the SOA's negative TTL. */
static void
test_negative(void **state)
{
	struct dns_resolver *r = resolver(NULL, 5000, 0);
	struct result res;

	ask(r, "nosuch.example.test", DNS_TYPE_MX, &res);
	assert_int_equal(res.status, DNS_NXDOMAIN);
	assert_int_equal(res.count, 0);
	assert_int_equal(res.ttl, 60);
	ask(r, "mx1.example.test", DNS_TYPE_MX, &res);
	assert_int_equal(res.status, DNS_NODATA);
	assert_int_equal(res.ttl, 60);
	/* a zone NSD does not serve: REFUSED, a temporary failure */
	ask(r, "example.org", DNS_TYPE_A, &res);
	assert_int_equal(res.status, DNS_TEMPFAIL);
	assert_true(res.why[0] != '\0');
	dns_resolver_free(r);
}

/* test_builtin_zones - names libunbound would answer from its own local
 * zones come from the resolver (NSD's data, not unbound's). */
static void
test_builtin_zones(void **state)
{
	struct dns_resolver *r = resolver(NULL, 5000, 0);
	struct result res;
	static const uint8_t a99[4] = { 127, 0, 0, 99 };

	ask(r, "1.0.0.127.in-addr.arpa", DNS_TYPE_PTR, &res);
	assert_int_equal(res.status, DNS_OK);
	assert_string_equal(res.rec[0].u.name, "from-nsd.example.test");
	ask(r, "localhost", DNS_TYPE_A, &res);
	assert_int_equal(res.status, DNS_OK);
	assert_memory_equal(res.rec[0].u.a, a99, 4);
	ask(r, "3.2.1.10.in-addr.arpa", DNS_TYPE_PTR, &res);
	assert_int_equal(res.status, DNS_OK);
	assert_string_equal(res.rec[0].u.name, "lan.example.test");
	dns_resolver_free(r);
}

/* test_cached_not_inside - a cached answer (unbound may call back inside
 * ub_resolve_event) still reaches the caller from the loop, once. */
static void
test_cached_not_inside(void **state)
{
	struct dns_resolver *r = resolver(NULL, 5000, 0);
	struct result res;
	struct dns_stats st;

	ask(r, "mx1.example.test", DNS_TYPE_A, &res);
	assert_int_equal(res.status, DNS_OK);
	for (int i = 0; i < 3; i++) {
		ask(r, "mx1.example.test", DNS_TYPE_A, &res);
		assert_int_equal(res.status, DNS_OK);
	}
	dns_resolver_stats(r, &st);
	assert_int_equal(st.queries, 4);
	assert_int_equal(st.answers, 4);
	assert_int_equal(st.failures, 0);
	assert_true(st.latency_buckets[DNS_STATS_BUCKETS - 1] >= 3);
	dns_resolver_free(r);
}

/* test_bad_name - a name that cannot be a DNS name: PERMFAIL, later. */
static void
test_bad_name(void **state)
{
	struct dns_resolver *r = resolver(NULL, 5000, 0);
	struct result res;
	char longname[300];

	ask(r, "two words.example.test", DNS_TYPE_A, &res);
	assert_int_equal(res.status, DNS_PERMFAIL);
	ask(r, "a..b", DNS_TYPE_A, &res);
	assert_int_equal(res.status, DNS_PERMFAIL);
	ask(r, "", DNS_TYPE_A, &res);
	assert_int_equal(res.status, DNS_PERMFAIL);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ask(r, longname, DNS_TYPE_A, &res);
	assert_int_equal(res.status, DNS_PERMFAIL);
	dns_resolver_free(r);
}

/* test_outstanding_bound - over max_outstanding: TEMPFAIL at once (from
 * the loop), the others answered. */
static void
test_outstanding_bound(void **state)
{
	struct dns_resolver *r = resolver(NULL, 5000, 2);
	struct result res[3];

	memset(res, 0, sizeof(res));
	answers_seen = 0;
	in_query = true;
	dns_query(r, "mx1.example.test", DNS_TYPE_AAAA, on_answer, &res[0]);
	dns_query(r, "mx2.example.test", DNS_TYPE_AAAA, on_answer, &res[1]);
	dns_query(r, "ns.example.test", DNS_TYPE_A, on_answer, &res[2]);
	in_query = false;
	run_until(&answers_seen, 3, 10000);
	assert_int_equal(res[0].calls + res[1].calls + res[2].calls, 3);
	assert_int_equal(res[2].status, DNS_TEMPFAIL);
	assert_non_null(strstr(res[2].why, "outstanding"));
	assert_int_equal(res[0].status, DNS_NODATA);
	assert_int_equal(res[1].status, DNS_OK);
	dns_resolver_free(r);
}

/* test_timeout - a resolver that never answers: TEMPFAIL after
 * dns.timeout, the callback once. */
static void
test_timeout(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int silent = socket(AF_INET, SOCK_DGRAM, 0);
	char addr[32];
	struct dns_resolver *r;
	struct result res;
	struct dns_stats st;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(silent, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(silent, (struct sockaddr *)&sin, &len), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1@%u", ntohs(sin.sin_port));
	r = resolver(addr, 300, 0);
	ask(r, "example.test", DNS_TYPE_MX, &res);
	assert_int_equal(res.status, DNS_TEMPFAIL);
	assert_non_null(strstr(res.why, "timed out"));
	/* nothing more comes for it */
	run_until(&res.calls, 2, 300);
	assert_int_equal(res.calls, 1);
	dns_resolver_stats(r, &st);
	assert_int_equal(st.timeouts, 1);
	assert_int_equal(st.failures, 1);
	dns_resolver_free(r);
	close(silent);
}

/* test_cancel - no callback after dns_query_cancel, nor for the queries
 * dns_resolver_free drops. */
static void
test_cancel(void **state)
{
	struct dns_resolver *r = resolver(NULL, 5000, 0);
	struct result res, other, bad;
	struct dns_query *q;

	memset(&res, 0, sizeof(res));
	memset(&other, 0, sizeof(other));
	memset(&bad, 0, sizeof(bad));
	q = dns_query(r, "example.test", DNS_TYPE_MX, on_answer, &res);
	dns_query_cancel(q);
	/* a kept result (a bad name) cancelled too */
	q = dns_query(r, "bad name", DNS_TYPE_MX, on_answer, &bad);
	dns_query_cancel(q);
	dns_query(r, "mx2.example.test", DNS_TYPE_A, on_answer, &other);
	run_until(&other.calls, 1, 10000);
	assert_int_equal(other.calls, 1);
	run_until(&res.calls, 1, 200);
	assert_int_equal(res.calls, 0);
	assert_int_equal(bad.calls, 0);

	dns_query(r, "txt.example.test", DNS_TYPE_TXT, on_answer, &res);
	dns_query(r, "bad name", DNS_TYPE_A, on_answer, &bad);
	dns_resolver_free(r);
	run_until(&res.calls, 1, 200);
	assert_int_equal(res.calls, 0);
	assert_int_equal(bad.calls, 0);
}

/* What free_in_callback frees, and what it saw. */
static struct dns_resolver *to_free;
static struct result freed_first;

/* free_in_callback - the first answer frees the resolver it came from. */
static void
free_in_callback(const struct dns_answer *a, void *arg)
{
	on_answer(a, arg);
	if (to_free != NULL) {
		dns_resolver_free(to_free);
		to_free = NULL;
	}
}

/* test_free_in_callback - a callback may free the resolver (dns.h says
 * nothing against it): the queries waiting on the same answer inside
 * libunbound are dropped and nothing touches the freed context (under
 * valgrind or ASan; without the fix libunbound went on walking the
 * answer's waiting list after its context was deleted). */
static void
test_free_in_callback(void **state)
{
	struct result second;

	memset(&freed_first, 0, sizeof(freed_first));
	memset(&second, 0, sizeof(second));
	to_free = resolver(NULL, 5000, 0);
	answers_seen = 0;
	/* the same name and type twice: one unbound query, two callbacks */
	dns_query(to_free, "mx1.example.test", DNS_TYPE_A, free_in_callback,
	    &freed_first);
	dns_query(to_free, "mx1.example.test", DNS_TYPE_A, free_in_callback,
	    &second);
	run_until(&answers_seen, 1, 10000);
	assert_null(to_free);
	run_until(&answers_seen, 2, 300);
	assert_int_equal(answers_seen, 1);
	assert_int_equal(freed_first.calls + second.calls, 1);
	assert_int_equal(freed_first.calls == 1 ? freed_first.status :
	    second.status, DNS_OK);
}

/* test_options - bad resolver addresses and a missing anchor file are
 * refused by dns_resolver_new. */
static void
test_options(void **state)
{
	const char *bad[1] = { "not-an-address" };
	struct dns_options opt = { .resolvers = bad, .resolver_count = 1 };
	struct error err;

	if (base == NULL)
		base = event_base_new();
	assert_null(dns_resolver_new(base, &opt, &err));
	assert_non_null(strstr(err.text, "not-an-address"));
	opt.resolvers = NULL;
	opt.resolver_count = 0;
	opt.dnssec = true;
	assert_null(dns_resolver_new(base, &opt, &err));
	assert_non_null(strstr(err.text, "trust anchor"));
	opt.trust_anchor_file = "/nonexistent/ta.key";
	assert_null(dns_resolver_new(base, &opt, &err));
}

/* test_reverse - reverse labels and PTR names, short buffers refused. */
static void
test_reverse(void **state)
{
	struct in_addr a4;
	struct in6_addr a6;
	char buf[DNS_REVERSE_MAX];

	inet_pton(AF_INET, "192.0.2.10", &a4);
	assert_int_equal(dns_reverse_labels(AF_INET, &a4, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "10.2.0.192");
	assert_int_equal(dns_ptr_name(AF_INET, &a4, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "10.2.0.192.in-addr.arpa");
	inet_pton(AF_INET6, "2001:db8::1", &a6);
	assert_int_equal(dns_ptr_name(AF_INET6, &a6, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	assert_true(strlen(buf) < DNS_REVERSE_MAX);
	assert_int_equal(dns_ptr_name(AF_INET6, &a6, buf, 40), -1);
	assert_int_equal(dns_ptr_name(AF_INET, &a4, buf, 12), -1);
	assert_string_equal(dns_status_name(DNS_NXDOMAIN), "nxdomain");
	assert_string_equal(dns_status_name(DNS_TEMPFAIL), "tempfail");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reverse),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_mx),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_negative),
		cmocka_unit_test(test_builtin_zones),
		cmocka_unit_test(test_cached_not_inside),
		cmocka_unit_test(test_bad_name),
		cmocka_unit_test(test_outstanding_bound),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_free_in_callback),
	};

	return cmocka_run_group_tests(tests, nsd_start, nsd_stop);
}
