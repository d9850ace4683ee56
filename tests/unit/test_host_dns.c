/*
 * test_host_dns.c - unit tests for DNS in policyd's plugin host
 * (policyd/host_dns.c and the waiting chain of plugin_host.c): one test
 * per promise of plugin.h's "DNS" section and plugin_host.h's
 * decide_begin/resume, with a fake resolver behind plugin_dns_ops that
 * answers from a table on a real libevent loop (never from inside the
 * query call, as common/dns.h promises).
 *
 * Promises: a hook that returns pending is called again once its lookups
 * are answered and finds them READY, the plugins before it are not run
 * again; one query per name and type per request; the per-request lookup
 * bound; pending with nothing outstanding is 451 4.4.3; a lookup that is
 * never answered ends TEMPFAIL after the wait's bound; no resolver:
 * TEMPFAIL at once; no lookups in on_auth; the client's names at CONNECT
 * (FCrDNS pass, mismatch, no PTR, temporary failure, cached per worker);
 * a closed connection's wait freed with its queries cancelled.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <event2/event.h>

#include "dns.h"
#include "../../policyd/plugin_host.h"

/* ==== The fake resolver ==== */

struct fake_zone {
	const char *name;
	enum dns_type type;
	enum dns_status status;
	const char *data[4];     /* A: dotted quad, PTR: name, TXT: text */
};

static const struct fake_zone zone[] = {
	{ "t.example", DNS_TYPE_TXT, DNS_OK, { "v=spf1 -all" } },
	{ "a.example", DNS_TYPE_A, DNS_OK, { "192.0.2.7", "192.0.2.8" } },
	{ "2.0.0.127.in-addr.arpa", DNS_TYPE_PTR, DNS_OK, { "good.test" } },
	{ "good.test", DNS_TYPE_A, DNS_OK, { "127.0.0.2" } },
	{ "3.0.0.127.in-addr.arpa", DNS_TYPE_PTR, DNS_OK, { "liar.test" } },
	{ "liar.test", DNS_TYPE_A, DNS_OK, { "127.0.0.99" } },
	{ "5.0.0.127.in-addr.arpa", DNS_TYPE_PTR, DNS_TEMPFAIL, { NULL } },
	{ "6.0.0.127.in-addr.arpa", DNS_TYPE_PTR, DNS_OK,
	  { "bad name.test", "two.test" } },
	{ "two.test", DNS_TYPE_A, DNS_OK, { "127.0.0.6" } },
	{ "8.0.0.127.in-addr.arpa", DNS_TYPE_PTR, DNS_OK, { "hang.test" } },
};

struct fake_query {
	struct event *ev;
	char name[DNS_NAME_MAX];
	enum dns_type type;
	dns_callback cb;
	void *arg;
};

static struct event_base *base;
static int queries, cancels, outstanding;
static struct fake_query *last_query;

/* fake_answer - the table's answer for q (NXDOMAIN when absent); "hang."
 * names are never answered. */
static void
fake_on_answer(evutil_socket_t fd, short what, void *arg)
{
	struct fake_query *q = arg;
	struct dns_record recs[4];
	struct dns_answer a;

	(void)fd;
	(void)what;
	memset(&a, 0, sizeof(a));
	memset(recs, 0, sizeof(recs));
	a.status = DNS_NXDOMAIN;
	a.qname = q->name;
	a.qtype = q->type;
	a.ttl = 300;
	a.why = "";
	for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++) {
		if (strcmp(zone[i].name, q->name) != 0)
			continue;
		if (zone[i].type != q->type) {
			a.status = DNS_NODATA;
			continue;
		}
		a.status = zone[i].status;
		for (size_t k = 0; k < 4 && zone[i].data[k] != NULL; k++) {
			struct dns_record *r = &recs[a.count++];

			r->type = q->type;
			r->ttl = 300;
			if (q->type == DNS_TYPE_A)
				assert_int_equal(sscanf(zone[i].data[k],
				    "%hhu.%hhu.%hhu.%hhu", &r->u.a[0], &r->u.a[1],
				    &r->u.a[2], &r->u.a[3]), 4);
			else if (q->type == DNS_TYPE_TXT) {
				r->u.txt.text = (char *)zone[i].data[k];
				r->u.txt.len = strlen(zone[i].data[k]);
			} else
				str_copy(r->u.name, zone[i].data[k],
				    sizeof(r->u.name));
		}
		a.records = recs;
		if (a.status == DNS_TEMPFAIL) {
			a.count = 0;
			a.why = "SERVFAIL";
		}
		break;
	}
	event_free(q->ev);
	outstanding--;
	q->cb(&a, q->arg);
	free(q);
}

static struct dns_query *
fake_query(struct dns_resolver *r, const char *name, enum dns_type type,
    dns_callback cb, void *arg)
{
	struct fake_query *q = calloc(1, sizeof(*q));
	struct timeval now = { 0, 0 };

	(void)r;
	assert_non_null(q);
	str_copy(q->name, name, sizeof(q->name));
	q->type = type;
	q->cb = cb;
	q->arg = arg;
	q->ev = evtimer_new(base, fake_on_answer, q);
	if (strncmp(name, "hang.", 5) != 0)
		evtimer_add(q->ev, &now);     /* "hang." names: never answered */
	queries++;
	outstanding++;
	last_query = q;
	return (struct dns_query *)q;
}

static void
fake_cancel(struct dns_query *dq)
{
	struct fake_query *q = (struct fake_query *)dq;

	event_free(q->ev);
	free(q);
	cancels++;
	outstanding--;
}

static const struct plugin_dns_ops fake_ops = { fake_query, fake_cancel };
static int fake_resolver;       /* only its address is used */

/* ==== Plugins that look things up ==== */

static int calls_first, calls_dns;
static const char *dns_name = "t.example";
static enum elemta_dns_type dns_type = ELEMTA_DNS_TXT;
static char seen[256];
static enum elemta_dns_status seen_status;
static int lookups_per_call = 1;
static bool pend_without_lookup;

static enum elemta_action
first_hook(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	calls_first++;
	return ELEMTA_CONTINUE;
}

/* dns_hook - asks for dns_name (twice: memoized), then reports what it
 * found in seen and refuses, so the test sees the answer in the reply. */
static enum elemta_action
dns_hook(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	const struct elemta_dns_answer *a = NULL;
	int rc = 0;

	calls_dns++;
	if (pend_without_lookup)
		return elemta_pending(ctx);
	for (int i = 0; i < lookups_per_call; i++)
		rc = elemta_ctx_dns_lookup(ctx, dns_name, dns_type, &a);
	if (rc == ELEMTA_DNS_PENDING) {
		assert_null(a);
		return elemta_pending(ctx);
	}
	assert_non_null(a);
	seen_status = a->status;
	seen[0] = '\0';
	for (size_t i = 0; i < a->count; i++) {
		size_t n = strlen(seen);

		snprintf(seen + n, sizeof(seen) - n, "%s%s", n ? "," : "",
		    a->records[i].text);
	}
	return elemta_result_set(res, ELEMTA_REJECT, 550, "5.7.1", "%s", seen);
}

/* many_hook - asks for more distinct names than a request may. */
static int many_rc_last;
static enum elemta_action
many_hook(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	const struct elemta_dns_answer *a;
	char name[64];

	for (int i = 0; i <= ELEMTA_DNS_LOOKUPS_MAX; i++) {
		snprintf(name, sizeof(name), "n%d.example", i);
		many_rc_last = elemta_ctx_dns_lookup(ctx, name, ELEMTA_DNS_A, &a);
	}
	assert_int_equal(many_rc_last, -1);
	assert_int_equal(a->status, ELEMTA_DNS_TEMPFAIL);
	return ELEMTA_CONTINUE;
}

/* names_hook - records the client names the host looked up. */
static char seen_name[256], seen_reverse[256], seen_nstatus[32],
    seen_rstatus[32];
static enum elemta_action
names_hook(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	const char *v;

	str_copy(seen_name, elemta_ctx_client_name(ctx), sizeof(seen_name));
	str_copy(seen_reverse, elemta_ctx_reverse_client_name(ctx),
	    sizeof(seen_reverse));
	v = elemta_ctx_attr(ctx, ELEMTA_ATTR_CLIENT_NAME_STATUS);
	str_copy(seen_nstatus, v ? v : "-", sizeof(seen_nstatus));
	v = elemta_ctx_attr(ctx, ELEMTA_ATTR_REVERSE_CLIENT_NAME_STATUS);
	str_copy(seen_rstatus, v ? v : "-", sizeof(seen_rstatus));
	return ELEMTA_CONTINUE;
}

/* prepend_first_hook / prepend_dns_hook - prepend a header each; the
 * second looks up dns_name after prepending (so it prepends again when
 * called again) and continues with the answer. */
static enum elemta_action
prepend_first_hook(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	calls_first++;
	elemta_ctx_prepend_header(ctx, "X-First", "1");
	return ELEMTA_CONTINUE;
}

static enum elemta_action
prepend_dns_hook(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	const struct elemta_dns_answer *a = NULL;

	calls_dns++;
	elemta_ctx_prepend_header(ctx, "X-Dns", "1");
	if (elemta_ctx_dns_lookup(ctx, dns_name, dns_type, &a) ==
	    ELEMTA_DNS_PENDING)
		return elemta_pending(ctx);
	return ELEMTA_CONTINUE;
}

static const struct elemta_plugin plug_prepend_first = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION, .name = "pfirst",
	.on_mail_from = prepend_first_hook,
};
static const struct elemta_plugin plug_prepend_dns = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION, .name = "pdns",
	.on_mail_from = prepend_dns_hook,
};

static const struct elemta_plugin plug_first = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION, .name = "first",
	.on_connect = first_hook, .on_mail_from = first_hook,
	.on_auth = first_hook,
};
static const struct elemta_plugin plug_dns = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION, .name = "dns",
	.on_connect = dns_hook, .on_mail_from = dns_hook, .on_auth = dns_hook,
};
static const struct elemta_plugin plug_many = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION, .name = "many",
	.on_mail_from = many_hook,
};
static const struct elemta_plugin plug_names = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION, .name = "names",
	.on_connect = names_hook, .on_mail_from = names_hook,
};

/* ==== Helpers ==== */

struct req {
	struct wire_attr attrs[16];
	char text[16][256];
	struct wire_request r;
};

static const struct wire_request *
req_make(struct req *q, const char *const *kv)
{
	size_t n = 0;

	memset(q, 0, sizeof(*q));
	for (; kv[n] != NULL; n++) {
		char *eq;

		str_copy(q->text[n], kv[n], sizeof(q->text[n]));
		eq = strchr(q->text[n], '=');
		*eq = '\0';
		q->attrs[n].name = q->text[n];
		q->attrs[n].value = eq + 1;
	}
	q->r.attrs = q->attrs;
	q->r.count = n;
	q->r.cap = 16;
	return &q->r;
}

/* host_with - a host of the given plugins on the fake resolver. */
static struct plugin_host *
host_with(const struct elemta_plugin *const *plugins, bool resolver,
    uint64_t wait_ms)
{
	struct plugin_host *h = plugin_host_new(NULL, 64);
	struct error err;

	for (size_t i = 0; plugins[i] != NULL; i++)
		assert_int_equal(plugin_host_add(h, plugins[i]->name,
		    plugins[i], NULL, NULL, &err), 0);
	if (resolver)
		plugin_host_set_dns(h, base, (struct dns_resolver *)
		    (void *)&fake_resolver, &fake_ops, wait_ms, 2 * wait_ms,
		    true);
	calls_first = calls_dns = queries = cancels = outstanding = 0;
	seen[0] = '\0';
	seen_status = ELEMTA_DNS_OK;
	return h;
}

/* decide_state - one request in state st from ip, decided with waits on
 * the loop (plugin_host_decide). */
static void
decide_state(struct plugin_host *h, const char *st, const char *ip,
    struct plugin_decision *d)
{
	char s[64], a[64];
	const char *kv[] = { "request=smtpd_access_policy", s, a,
	    "sender=x@example.org", NULL };
	struct plugin_request rq;
	struct req q;

	snprintf(s, sizeof(s), "protocol_state=%s", st);
	snprintf(a, sizeof(a), "client_address=%s", ip);
	memset(&rq, 0, sizeof(rq));
	rq.req = req_make(&q, kv);
	rq.listener = PLUGIN_LISTENER_ELEMTA;
	rq.message_fd = -1;
	rq.auth_succeeded = -1;
	plugin_host_decide(h, &rq, d);
}

static int
setup(void **state)
{
	base = event_base_new();
	dns_name = "t.example";
	dns_type = ELEMTA_DNS_TXT;
	lookups_per_call = 1;
	pend_without_lookup = false;
	return base == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	event_base_free(base);
	return 0;
}

/* ==== Tests ==== */

/* test_pending_rerun - the hook waits, is called again, finds the answer;
 * the plugin before it runs once; one query for two asks. */
static void
test_pending_rerun(void **state)
{
	const struct elemta_plugin *const pl[] = { &plug_first, &plug_dns, NULL };
	struct plugin_host *h = host_with(pl, true, 1000);
	struct plugin_decision d;

	lookups_per_call = 2;
	decide_state(h, "MAIL", "192.0.2.1", &d);
	assert_int_equal(d.result.action, ELEMTA_REJECT);
	assert_string_equal(d.result.message, "v=spf1 -all");
	assert_string_equal(d.plugin, "dns");
	assert_int_equal(calls_first, 1);
	assert_int_equal(calls_dns, 2);
	assert_int_equal(queries, 1);
	assert_int_equal(outstanding, 0);
	plugin_host_free(h);
}

/* test_pending_keeps_headers - the headers of the hooks before a wait
 * reach the reply once, the waiting hook's are not doubled by its
 * second call (elemta_ctx_prepend_header across a wait). */
static void
test_pending_keeps_headers(void **state)
{
	const struct elemta_plugin *const pl[] = { &plug_prepend_first,
	    &plug_prepend_dns, NULL };
	struct plugin_host *h = host_with(pl, true, 1000);
	struct plugin_decision d;

	decide_state(h, "MAIL", "192.0.2.1", &d);
	assert_int_equal(d.result.action, ELEMTA_CONTINUE);
	assert_int_equal(calls_first, 1);
	assert_int_equal(calls_dns, 2);
	assert_int_equal(d.headers.count, 2);
	assert_memory_equal(d.headers.buf, "X-First: 1\r\nX-Dns: 1\r\n",
	    d.headers.len);
	plugin_host_free(h);
}

/* test_answer_records - A records as text and bytes; NXDOMAIN. */
static void
test_answer_records(void **state)
{
	const struct elemta_plugin *const pl[] = { &plug_dns, NULL };
	struct plugin_host *h = host_with(pl, true, 1000);
	struct plugin_decision d;

	dns_name = "A.Example.";        /* case and final dot don't matter */
	dns_type = ELEMTA_DNS_A;
	decide_state(h, "MAIL", "192.0.2.1", &d);
	assert_string_equal(seen, "192.0.2.7,192.0.2.8");
	assert_int_equal(seen_status, ELEMTA_DNS_OK);
	dns_name = "nothing.example";
	decide_state(h, "MAIL", "192.0.2.1", &d);
	assert_int_equal(seen_status, ELEMTA_DNS_NXDOMAIN);
	assert_string_equal(seen, "");
	dns_name = "a.example";
	dns_type = ELEMTA_DNS_TXT;
	decide_state(h, "MAIL", "192.0.2.1", &d);
	assert_int_equal(seen_status, ELEMTA_DNS_NODATA);
	plugin_host_free(h);
}

/* test_begin_resume - the caller's side: begin says 1 and decides
 * nothing; ready runs from the loop; resume decides. */
static bool ready_ran;
static void
on_ready(void *arg)
{
	*(int *)arg += 1;
	ready_ran = true;
}

static void
test_begin_resume(void **state)
{
	const struct elemta_plugin *const pl[] = { &plug_first, &plug_dns, NULL };
	struct plugin_host *h = host_with(pl, true, 1000);
	const char *kv[] = { "request=smtpd_access_policy",
	    "protocol_state=MAIL", "client_address=192.0.2.1", NULL };
	struct plugin_request rq;
	struct plugin_decision d;
	struct plugin_wait *w;
	struct req q;
	int readies = 0;

	memset(&rq, 0, sizeof(rq));
	rq.req = req_make(&q, kv);
	rq.message_fd = -1;
	rq.auth_succeeded = -1;
	ready_ran = false;
	assert_int_equal(plugin_host_decide_begin(h, &rq, &d, on_ready,
	    &readies, &w), 1);
	assert_non_null(w);
	assert_false(ready_ran);        /* never from inside the call */
	while (!ready_ran)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(readies, 1);
	assert_int_equal(plugin_host_decide_resume(h, &rq, w, &d), 0);
	assert_int_equal(d.result.action, ELEMTA_REJECT);
	assert_int_equal(calls_first, 1);

	/* Given up while waiting: the query is cancelled, ready never runs. */
	dns_name = "hang.example";
	ready_ran = false;
	assert_int_equal(plugin_host_decide_begin(h, &rq, &d, on_ready,
	    &readies, &w), 1);
	plugin_wait_free(w);
	assert_int_equal(cancels, 1);
	assert_int_equal(outstanding, 0);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_false(ready_ran);
	plugin_host_free(h);
}

/* test_timeout - a lookup never answered is TEMPFAIL after the bound. */
static void
test_timeout(void **state)
{
	const struct elemta_plugin *const pl[] = { &plug_dns, NULL };
	struct plugin_host *h = host_with(pl, true, 50);
	struct plugin_decision d;

	dns_name = "hang.example";
	decide_state(h, "MAIL", "192.0.2.1", &d);
	assert_int_equal(seen_status, ELEMTA_DNS_TEMPFAIL);
	assert_int_equal(calls_dns, 2);
	assert_int_equal(cancels, 1);
	assert_int_equal(outstanding, 0);
	plugin_host_free(h);
}

/* test_limits - over ELEMTA_DNS_LOOKUPS_MAX: -1 with a TEMPFAIL answer;
 * pending with nothing pending: 451 4.4.3. */
static void
test_limits(void **state)
{
	const struct elemta_plugin *const pl[] = { &plug_many, NULL };
	const struct elemta_plugin *const pl2[] = { &plug_dns, NULL };
	struct plugin_host *h = host_with(pl, true, 1000);
	struct plugin_decision d;

	decide_state(h, "MAIL", "192.0.2.1", &d);
	assert_int_equal(queries, ELEMTA_DNS_LOOKUPS_MAX);
	assert_int_equal(outstanding, 0);      /* cancelled at the end */
	plugin_host_free(h);

	h = host_with(pl2, true, 1000);
	pend_without_lookup = true;
	decide_state(h, "MAIL", "192.0.2.1", &d);
	assert_int_equal(d.result.action, ELEMTA_TEMPFAIL);
	assert_int_equal(d.result.smtp_code, 451);
	assert_string_equal(d.result.enhanced, "4.4.3");
	plugin_host_free(h);
}

/* test_no_resolver - TEMPFAIL at once, no wait, no names. */
static void
test_no_resolver(void **state)
{
	const struct elemta_plugin *const pl[] = { &plug_dns, NULL };
	struct plugin_host *h = host_with(pl, false, 1000);
	struct plugin_decision d;

	decide_state(h, "CONNECT", "127.0.0.2", &d);
	assert_int_equal(seen_status, ELEMTA_DNS_TEMPFAIL);
	assert_int_equal(calls_dns, 1);
	assert_false(d.names);
	plugin_host_free(h);
}

/* test_no_dns_in_auth - on_auth may not look up: -1, answered. */
static void
test_no_dns_in_auth(void **state)
{
	const struct elemta_plugin *const pl[] = { &plug_dns, NULL };
	struct plugin_host *h = host_with(pl, true, 1000);
	const char *kv[] = { "request=smtpd_access_policy",
	    "protocol_state=AUTH", "client_address=192.0.2.1",
	    "sasl_username=u", NULL };
	struct plugin_request rq;
	struct plugin_decision d;
	struct req q;

	memset(&rq, 0, sizeof(rq));
	rq.req = req_make(&q, kv);
	rq.message_fd = -1;
	rq.auth_succeeded = 1;
	plugin_host_decide(h, &rq, &d);
	assert_int_equal(queries, 0);
	assert_int_equal(seen_status, ELEMTA_DNS_TEMPFAIL);
	plugin_host_free(h);
}

/* expect_names - CONNECT from ip: the names the hooks and d see. */
static void
expect_names(struct plugin_host *h, const char *ip, const char *name,
    const char *reverse, const char *nstatus, const char *rstatus)
{
	struct plugin_decision d;

	decide_state(h, "CONNECT", ip, &d);
	assert_string_equal(seen_name, name);
	assert_string_equal(seen_reverse, reverse);
	assert_string_equal(seen_nstatus, nstatus);
	assert_string_equal(seen_rstatus, rstatus);
	assert_true(d.names);
	assert_string_equal(d.client_name, name);
	assert_string_equal(d.reverse_client_name, reverse);
}

/* test_client_names - FCrDNS pass, mismatch, no PTR, tempfail, a bad
 * PTR name skipped; the worker cache answers the second time; later
 * phases carry smtpd's attributes, not a lookup. */
static void
test_client_names(void **state)
{
	const struct elemta_plugin *const pl[] = { &plug_names, NULL };
	struct plugin_host *h = host_with(pl, true, 1000);
	struct plugin_decision d;
	int q0;

	expect_names(h, "127.0.0.2", "good.test", "good.test", "ok", "ok");
	assert_int_equal(queries, 2);
	expect_names(h, "127.0.0.3", "unknown", "liar.test", "failed", "ok");
	expect_names(h, "127.0.0.4", "unknown", "unknown", "failed", "failed");
	expect_names(h, "127.0.0.5", "unknown", "unknown", "tempfail",
	    "tempfail");
	expect_names(h, "127.0.0.6", "two.test", "two.test", "ok", "ok");
	q0 = queries;
	expect_names(h, "127.0.0.2", "good.test", "good.test", "ok", "ok");
	expect_names(h, "127.0.0.3", "unknown", "liar.test", "failed", "ok");
	assert_int_equal(queries, q0);  /* cached */
	expect_names(h, "127.0.0.5", "unknown", "unknown", "tempfail",
	    "tempfail");
	assert_int_equal(queries, q0 + 1);  /* a failure is not cached */

	decide_state(h, "MAIL", "127.0.0.2", &d);
	assert_false(d.names);
	assert_string_equal(seen_name, "unknown");   /* the request's own */
	assert_string_equal(seen_nstatus, "-");
	plugin_host_free(h);
}

/* test_client_names_bounded - the names never take longer than
 * dns.timeout in all: a forward lookup that hangs ends them "unknown"
 * (tempfail) with the PTR name kept; the hooks run after. */
static void
test_client_names_bounded(void **state)
{
	const struct elemta_plugin *const pl[] = { &plug_names, NULL };
	struct plugin_host *h = host_with(pl, true, 60);
	struct timespec t0, t1;
	long ms;

	/* a budget far beyond: only the names' own bound can end them */
	plugin_host_set_dns(h, base, (struct dns_resolver *)(void *)&fake_resolver,
	    &fake_ops, 60, 60000, true);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	expect_names(h, "127.0.0.8", "unknown", "hang.test", "tempfail", "ok");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 50);          /* it did wait for the answer...   */
	assert_true(ms < 560);          /* ...dns.timeout, not wait+margin */
	assert_int_equal(cancels, 1);
	plugin_host_free(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pending_rerun, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pending_keeps_headers,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_records, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_begin_resume, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_resolver, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_dns_in_auth, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_client_names, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_client_names_bounded, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
