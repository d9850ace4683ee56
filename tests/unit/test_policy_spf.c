/*
 * test_policy_spf.c - unit tests for the `policy` plugin's SPF rule
 * (policyd/policies/spf.c) through the plugin host as policyd runs it:
 * the built-in plugin loaded from a config file, the host's DNS waits on
 * a real libevent loop, and a fake resolver behind plugin_dns_ops serving
 * a zone (answers always from the loop, never inside the query call).
 *
 * Promises tested: fail -> 550 5.7.23 (with the exp= text when given),
 * or accepted with the headers when reject_fail is false; temperror ->
 * 451 4.7.24 (or accepted with temperror: accept); softfail and permerror
 * as configured; every accepted result written as Received-SPF and
 * Authentication-Results (values quoted when not dot-atoms, the HELO
 * identity for <>); authenticated clients, exempt_ips and <> with helo:
 * false not checked; an mx term's address lookups started together; a
 * Postfix asking twice for one message gets the headers once; the config
 * errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include <event2/event.h>

#include "config.h"
#include "counter.h"
#include "dns.h"
#include "wire.h"
#include "../../policyd/plugin_host.h"

/* ==== the fake resolver ==== */

struct zrec {
	const char *name;
	enum dns_type type;     /* 0: every query on the name times out */
	const char *value;
};

static const struct zrec zone[] = {
	{ "pass.example", DNS_TYPE_TXT, "v=spf1 ip4:192.0.2.0/24 -all" },
	{ "fail.example", DNS_TYPE_TXT, "v=spf1 -all" },
	{ "exp.example", DNS_TYPE_TXT, "v=spf1 -all exp=why.exp.example" },
	{ "why.exp.example", DNS_TYPE_TXT, "%{i} may not send for %{d}" },
	{ "soft.example", DNS_TYPE_TXT, "v=spf1 ~all" },
	{ "perm.example", DNS_TYPE_TXT, "v=spf1 ip4:192.0.2.300 -all" },
	{ "temp.example", 0, NULL },
	{ "mx.example", DNS_TYPE_TXT, "v=spf1 mx -all" },
	{ "mx.example", DNS_TYPE_MX, "m1.mx.example" },
	{ "mx.example", DNS_TYPE_MX, "m2.mx.example" },
	{ "mx.example", DNS_TYPE_MX, "m3.mx.example" },
	{ "m3.mx.example", DNS_TYPE_A, "192.0.2.1" },
	{ "helo.example", DNS_TYPE_TXT, "v=spf1 a -all" },
	{ "helo.example", DNS_TYPE_A, "192.0.2.1" },
};

struct fake_query {
	struct event *ev;
	char name[DNS_NAME_MAX];
	enum dns_type type;
	dns_callback cb;
	void *arg;
};

static struct event_base *base;
static int queries, outstanding, max_outstanding;
static bool refuse_all;        /* every query fails (a dead resolver) */

/* fake_on_answer - the zone's answer, from the loop. */
static void
fake_on_answer(evutil_socket_t fd, short what, void *arg)
{
	struct fake_query *q = arg;
	struct dns_record recs[8];
	struct dns_answer a;
	bool exists = false;

	memset(&a, 0, sizeof(a));
	memset(recs, 0, sizeof(recs));
	a.qname = q->name;
	a.qtype = q->type;
	a.records = recs;
	a.why = "";
	for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]) && !refuse_all;
	    i++) {
		const struct zrec *z = &zone[i];
		struct dns_record *r = &recs[a.count];

		if (strcasecmp(z->name, q->name) != 0)
			continue;
		exists = true;
		if (z->type == 0) {
			a.status = DNS_TEMPFAIL;
			a.why = "timeout";
			a.count = 0;
			break;
		}
		if (z->type != q->type)
			continue;
		r->type = q->type;
		r->ttl = 300;
		if (q->type == DNS_TYPE_A)
			assert_int_equal(inet_pton(AF_INET, z->value, r->u.a), 1);
		else if (q->type == DNS_TYPE_TXT) {
			r->u.txt.text = (char *)(uintptr_t)z->value;
			r->u.txt.len = strlen(z->value);
		} else if (q->type == DNS_TYPE_MX) {
			r->u.mx.preference = 10;
			str_copy(r->u.mx.host, z->value, sizeof(r->u.mx.host));
		}
		a.count++;
	}
	if (refuse_all) {
		a.status = DNS_TEMPFAIL;
		a.why = "refused";
	} else if (a.status != DNS_TEMPFAIL)
		a.status = a.count ? DNS_OK : exists ? DNS_NODATA :
		    DNS_NXDOMAIN;
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

	assert_non_null(q);
	str_copy(q->name, name, sizeof(q->name));
	q->type = type;
	q->cb = cb;
	q->arg = arg;
	q->ev = evtimer_new(base, fake_on_answer, q);
	evtimer_add(q->ev, &now);
	queries++;
	if (++outstanding > max_outstanding)
		max_outstanding = outstanding;
	return (struct dns_query *)q;
}

static void
fake_cancel(struct dns_query *dq)
{
	struct fake_query *q = (struct fake_query *)dq;

	event_free(q->ev);
	free(q);
	outstanding--;
}

static const struct plugin_dns_ops fake_ops = { fake_query, fake_cancel };
static int fake_resolver;

/* ==== the fixture ==== */

struct fx {
	char dir[64];
	struct config *cfg;
	struct counter_store *cs;
	struct plugin_host *h;
	char err[ERROR_TEXT_MAX];
};

/* fx_open - the policy plugin with config body spf_yaml (under config:);
 * -1 with fx->err when the plugin refuses it. */
static int
fx_open(struct fx *fx, const char *spf_yaml)
{
	struct config_errors errs;
	struct error err;
	char path[128];
	FILE *f;

	memset(fx, 0, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/elemta-test-spf-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(path, sizeof(path), "%s/elemta.yaml", fx->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "server:\n  listen:\n    - address: \"127.0.0.1:2525\"\n"
	    "counters:\n  path: counters\n  map_size: 8MB\n"
	    "plugins:\n  - name: policy\n    config:\n%s", spf_yaml);
	fclose(f);
	fx->cfg = config_load(path, &errs);
	if (fx->cfg == NULL)
		fail_msg("config_load: %s", errs.count ? errs.text[0] : "?");
	assert_int_equal(counter_store_open(fx->cfg->counters.path,
	    fx->cfg->counters.map_size, false, COUNTER_SYNC_SAFE, &fx->cs,
	    &err), 0);
	fx->h = plugin_host_new(fx->cs, 64);
	if (plugin_host_load_config(fx->h, fx->cfg, &err) != 0) {
		str_copy(fx->err, err.text, sizeof(fx->err));
		return -1;
	}
	plugin_host_set_dns(fx->h, base, (struct dns_resolver *)(void *)
	    &fake_resolver, &fake_ops, 2000, 4000, false);
	queries = outstanding = max_outstanding = 0;
	refuse_all = false;
	return 0;
}

static void
fx_close(struct fx *fx)
{
	char cmd[128];

	plugin_host_free(fx->h);
	if (fx->cs != NULL)
		counter_store_close(fx->cs);
	config_free(fx->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
}

static struct plugin_txn postfix_txn;  /* one Postfix connection's */

/* ask - decide a request in phase on listener l, sender from ip (extra
 * "k=v" attributes in ap). */
static void
ask(struct fx *fx, const char *phase, enum plugin_listener l, const char *ip,
    const char *sender, struct plugin_decision *d, va_list ap)
{
	struct wire_attr attrs[12];
	char text[12][300];
	struct wire_request r;
	struct plugin_request rq;
	const char *kv;
	size_t n = 0;

	snprintf(text[n++], 300, "request=smtpd_access_policy");
	snprintf(text[n++], 300, "protocol_state=%s", phase);
	snprintf(text[n++], 300, "client_address=%s", ip);
	snprintf(text[n++], 300, "helo_name=client.example");
	snprintf(text[n++], 300, "sender=%s", sender);
	while ((kv = va_arg(ap, const char *)) != NULL && n < 12)
		str_copy(text[n++], kv, 300);
	for (size_t i = 0; i < n; i++) {
		char *eq = strchr(text[i], '=');

		*eq = '\0';
		attrs[i].name = text[i];
		attrs[i].value = eq + 1;
	}
	memset(&r, 0, sizeof(r));
	r.attrs = attrs;
	r.count = n;
	r.cap = 12;
	memset(&rq, 0, sizeof(rq));
	rq.req = &r;
	rq.listener = l;
	rq.message_fd = -1;
	rq.auth_succeeded = -1;
	if (l == PLUGIN_LISTENER_POSTFIX)
		rq.txn = &postfix_txn;
	plugin_host_decide(fx->h, &rq, d);
	assert_int_equal(outstanding, 0);
}

/* mail - MAIL FROM:<sender> from ip on the Elemta listener. */
static void
mail(struct fx *fx, const char *ip, const char *sender,
    struct plugin_decision *d, ...)
{
	va_list ap;

	va_start(ap, d);
	ask(fx, "MAIL", PLUGIN_LISTENER_ELEMTA, ip, sender, d, ap);
	va_end(ap);
}

/* postfix - a Postfix check_policy_service request in phase. */
static void
postfix(struct fx *fx, const char *phase, const char *ip, const char *sender,
    struct plugin_decision *d, ...)
{
	va_list ap;

	va_start(ap, d);
	ask(fx, phase, PLUGIN_LISTENER_POSTFIX, ip, sender, d, ap);
	va_end(ap);
}

/* expect - the decision's code (0: accepted) and enhanced code. */
static void
expect(const struct plugin_decision *d, int code, const char *enh)
{
	int got = d->accepted ? 0 : d->result.smtp_code;

	if (got != code || (enh != NULL && strcmp(d->result.enhanced, enh) != 0))
		fail_msg("expected %d %s, got %d %s %s", code, enh ? enh : "",
		    got, d->result.enhanced, d->result.message);
}

/* header - the value of the n-th prepended header called name, or NULL. */
static const char *
header(const struct plugin_decision *d, const char *name)
{
	static char value[1024];
	size_t pos = 0, len, nl = strlen(name);
	const char *line;

	while (wire_headers_next(&d->headers, &pos, &line, &len)) {
		if (len > nl + 1 && strncmp(line, name, nl) == 0 &&
		    line[nl] == ':') {
			size_t v = nl + 1;

			while (v < len && line[v] == ' ')
				v++;
			snprintf(value, sizeof(value), "%.*s", (int)(len - v),
			    line + v);
			return value;
		}
	}
	return NULL;
}

#define SPF_ON "      spf:\n        authserv_id: mx.test\n"

static int
setup(void **state)
{
	base = event_base_new();
	return base == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	event_base_free(base);
	return 0;
}

/* ==== tests ==== */

/* test_pass_headers - pass: accepted, both headers, exactly as written. */
static void
test_pass_headers(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, SPF_ON), 0);
	mail(&fx, "192.0.2.1", "x@pass.example", &d, NULL);
	expect(&d, 0, NULL);
	assert_int_equal(d.headers.count, 2);
	assert_string_equal(header(&d, "Received-SPF"), "pass (mx.test: domain "
	    "of pass.example designates 192.0.2.1 as permitted sender) "
	    "client-ip=192.0.2.1; envelope-from=\"x@pass.example\"; "
	    "helo=client.example; receiver=mx.test; identity=mailfrom; "
	    "mechanism=\"ip4:192.0.2.0/24\"");
	assert_string_equal(header(&d, "Authentication-Results"),
	    "mx.test; spf=pass smtp.mailfrom=x@pass.example");
	assert_int_equal(queries, 1);
	fx_close(&fx);
}

/* test_fail - 550 5.7.23, with the exp= text; no header on a refusal;
 * reject_fail: false accepts with spf=fail. */
static void
test_fail(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, SPF_ON), 0);
	mail(&fx, "192.0.2.1", "x@fail.example", &d, NULL);
	expect(&d, 550, "5.7.23");
	assert_string_equal(d.result.message, "SPF validation failed");
	mail(&fx, "192.0.2.1", "x@exp.example", &d, NULL);
	expect(&d, 550, "5.7.23");
	assert_string_equal(d.result.message, "SPF validation failed: "
	    "192.0.2.1 may not send for exp.example");
	fx_close(&fx);

	assert_int_equal(fx_open(&fx, SPF_ON "        reject_fail: false\n"), 0);
	mail(&fx, "192.0.2.1", "x@fail.example", &d, NULL);
	expect(&d, 0, NULL);
	assert_non_null(strstr(header(&d, "Received-SPF"), "fail (mx.test: "
	    "domain of fail.example does not designate 192.0.2.1 as permitted "
	    "sender)"));
	assert_string_equal(header(&d, "Authentication-Results"),
	    "mx.test; spf=fail smtp.mailfrom=x@fail.example");
	fx_close(&fx);
}

/* test_softfail - accepted by default (spf=softfail); reject: 550;
 * tempfail: 451 4.7.24. */
static void
test_softfail(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, SPF_ON), 0);
	mail(&fx, "192.0.2.1", "x@soft.example", &d, NULL);
	expect(&d, 0, NULL);
	assert_string_equal(header(&d, "Authentication-Results"),
	    "mx.test; spf=softfail smtp.mailfrom=x@soft.example");
	fx_close(&fx);
	assert_int_equal(fx_open(&fx, SPF_ON "        softfail: reject\n"), 0);
	mail(&fx, "192.0.2.1", "x@soft.example", &d, NULL);
	expect(&d, 550, "5.7.23");
	fx_close(&fx);
	assert_int_equal(fx_open(&fx, SPF_ON "        softfail: tempfail\n"),
	    0);
	mail(&fx, "192.0.2.1", "x@soft.example", &d, NULL);
	expect(&d, 451, "4.7.24");
	fx_close(&fx);
}

/* test_temperror - a DNS failure: 451 4.7.24, never an accept by
 * default; temperror: accept writes spf=temperror. */
static void
test_temperror(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, SPF_ON), 0);
	mail(&fx, "192.0.2.1", "x@temp.example", &d, NULL);
	expect(&d, 451, "4.7.24");
	fx_close(&fx);
	assert_int_equal(fx_open(&fx, SPF_ON "        temperror: accept\n"),
	    0);
	mail(&fx, "192.0.2.1", "x@temp.example", &d, NULL);
	expect(&d, 0, NULL);
	assert_string_equal(header(&d, "Authentication-Results"),
	    "mx.test; spf=temperror smtp.mailfrom=x@temp.example");
	fx_close(&fx);
}

/* test_permerror - accepted by default with the problem in the header;
 * reject: 550 5.7.24; tempfail: 451 4.7.24. */
static void
test_permerror(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, SPF_ON), 0);
	mail(&fx, "192.0.2.1", "x@perm.example", &d, NULL);
	expect(&d, 0, NULL);
	assert_non_null(strstr(header(&d, "Received-SPF"),
	    "; problem=\"perm.example: syntax error in 'ip4:192.0.2.300'\""));
	assert_string_equal(header(&d, "Authentication-Results"),
	    "mx.test; spf=permerror smtp.mailfrom=x@perm.example");
	fx_close(&fx);
	assert_int_equal(fx_open(&fx, SPF_ON "        permerror: reject\n"), 0);
	mail(&fx, "192.0.2.1", "x@perm.example", &d, NULL);
	expect(&d, 550, "5.7.24");
	fx_close(&fx);
	assert_int_equal(fx_open(&fx, SPF_ON "        permerror: tempfail\n"),
	    0);
	mail(&fx, "192.0.2.1", "x@perm.example", &d, NULL);
	expect(&d, 451, "4.7.24");
	fx_close(&fx);
}

/* test_helo_identity - <> is checked as postmaster@HELO (smtp.helo);
 * helo: false leaves it unchecked. */
static void
test_helo_identity(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, SPF_ON), 0);
	mail(&fx, "192.0.2.1", "", &d, "helo_name=helo.example", NULL);
	expect(&d, 0, NULL);
	assert_non_null(strstr(header(&d, "Received-SPF"), "pass (mx.test: "
	    "domain of helo.example designates 192.0.2.1"));
	assert_non_null(strstr(header(&d, "Received-SPF"),
	    "envelope-from=\"postmaster@helo.example\"; helo=helo.example; "
	    "receiver=mx.test; identity=helo"));
	assert_string_equal(header(&d, "Authentication-Results"),
	    "mx.test; spf=pass smtp.helo=helo.example");
	mail(&fx, "192.0.2.9", "", &d, "helo_name=helo.example", NULL);
	expect(&d, 550, "5.7.23");
	fx_close(&fx);
	assert_int_equal(fx_open(&fx, SPF_ON "        helo: false\n"), 0);
	mail(&fx, "192.0.2.9", "", &d, "helo_name=helo.example", NULL);
	expect(&d, 0, NULL);
	assert_int_equal(d.headers.count, 0);
	assert_int_equal(queries, 0);
	fx_close(&fx);
}

/* test_not_checked - authenticated clients and exempt_ips: no lookup,
 * no header; without spf: the rule is off. */
static void
test_not_checked(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, SPF_ON "      exempt_ips: "
	    "[198.51.100.0/24]\n"), 0);
	mail(&fx, "192.0.2.9", "x@fail.example", &d, "sasl_username=alice",
	    "sasl_method=PLAIN", NULL);
	expect(&d, 0, NULL);
	mail(&fx, "198.51.100.7", "x@fail.example", &d, NULL);
	expect(&d, 0, NULL);
	assert_int_equal(d.headers.count, 0);
	assert_int_equal(queries, 0);
	fx_close(&fx);
	assert_int_equal(fx_open(&fx, "      max_message_size: 10MB\n"), 0);
	mail(&fx, "192.0.2.9", "x@fail.example", &d, NULL);
	expect(&d, 0, NULL);
	assert_int_equal(queries, 0);
	fx_close(&fx);
}

/* test_parallel_mx - an mx term's three address lookups are under way
 * together (spf_eval_upcoming), and the third matches. */
static void
test_parallel_mx(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, SPF_ON), 0);
	mail(&fx, "192.0.2.1", "x@mx.example", &d, NULL);
	expect(&d, 0, NULL);
	assert_non_null(strstr(header(&d, "Received-SPF"), "pass "));
	assert_int_equal(queries, 1 + 1 + 3);
	assert_int_equal(max_outstanding, 3);
	fx_close(&fx);
}

/* test_hostile_sender - a local-part that is no dot-atom is quoted in
 * Received-SPF and left out of Authentication-Results. */
static void
test_hostile_sender(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, SPF_ON), 0);
	mail(&fx, "192.0.2.1", "\"a b\\\"; x=(y)\"@pass.example", &d, NULL);
	expect(&d, 0, NULL);
	assert_non_null(strstr(header(&d, "Received-SPF"),
	    "envelope-from=\"\\\"a b\\\\\\\"; x=(y)\\\"@pass.example\";"));
	assert_string_equal(header(&d, "Authentication-Results"),
	    "mx.test; spf=pass smtp.mailfrom=pass.example");
	/* a malformed identity: none, its values quoted */
	mail(&fx, "192.0.2.1", "x@[192.0.2.1]", &d, NULL);
	expect(&d, 0, NULL);
	assert_non_null(strstr(header(&d, "Received-SPF"), "none (mx.test: "
	    "domain of [192.0.2.1] does not designate permitted sender hosts)"));
	assert_string_equal(header(&d, "Authentication-Results"),
	    "mx.test; spf=none smtp.mailfrom=\"x@[192.0.2.1]\"");
	fx_close(&fx);
}

/* test_postfix_once - a Postfix asking at RCPT and again at DATA for
 * one message: checked both times (a fail refuses each), the headers and
 * the metric only with the request that counts the message. */
static void
test_postfix_once(void **state)
{
	struct fx fx;
	struct plugin_decision d;

	assert_int_equal(fx_open(&fx, SPF_ON), 0);
	memset(&postfix_txn, 0, sizeof(postfix_txn));
	postfix(&fx, "RCPT", "192.0.2.1", "x@pass.example", &d,
	    "instance=a1", "recipient=bob@local.test", NULL);
	expect(&d, 0, NULL);
	assert_int_equal(d.headers.count, 2);
	assert_non_null(strstr(header(&d, "Received-SPF"), "pass "));
	postfix(&fx, "DATA", "192.0.2.1", "x@pass.example", &d,
	    "instance=a1", NULL);
	expect(&d, 0, NULL);
	assert_int_equal(d.headers.count, 0);
	postfix(&fx, "RCPT", "192.0.2.1", "x@fail.example", &d,
	    "instance=a2", "recipient=bob@local.test", NULL);
	expect(&d, 550, "5.7.23");
	fx_close(&fx);
}

/* A decision as text: code, enhanced code, message and every header. */
static void
decision_text(const struct plugin_decision *d, char *out, size_t size)
{
	size_t pos = 0, len;
	const char *line;

	snprintf(out, size, "%d %s %s\n", d->accepted ? 0 : d->result.smtp_code,
	    d->accepted ? "" : d->result.enhanced,
	    d->accepted ? "" : d->result.message);
	while (wire_headers_next(&d->headers, &pos, &line, &len))
		snprintf(out + strlen(out), size - strlen(out), "%.*s\n",
		    (int)len, line);
}

/* test_cache_same_outcome - the same request again, with every DNS query
 * now failing, is answered from the cache: the very same verdict and
 * headers, no query.  Every kind of result but temperror. */
static void
test_cache_same_outcome(void **state)
{
	static const struct { const char *ip, *sender, *helo; } reqs[] = {
		{ "192.0.2.1", "x@pass.example", NULL },
		{ "192.0.2.9", "x@exp.example", NULL },  /* 550 with exp= */
		{ "192.0.2.1", "x@soft.example", NULL },
		{ "192.0.2.1", "x@perm.example", NULL },
		{ "192.0.2.1", "x@mx.example", NULL },
		{ "192.0.2.1", "x@none.example", NULL },
		{ "192.0.2.1", "", "helo_name=helo.example" },
		{ "2001:db8::1", "x@pass.example", NULL },
	};
	struct fx fx;
	struct plugin_decision d;
	char first[4096], second[4096];

	assert_int_equal(fx_open(&fx, SPF_ON "        reject_fail: true\n"),
	    0);
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		int before;

		refuse_all = false;
		mail(&fx, reqs[i].ip, reqs[i].sender, &d, reqs[i].helo, NULL);
		decision_text(&d, first, sizeof(first));
		assert_null(strstr(first, "451"));
		before = queries;
		refuse_all = true;
		mail(&fx, reqs[i].ip, reqs[i].sender, &d, reqs[i].helo, NULL);
		decision_text(&d, second, sizeof(second));
		assert_string_equal(first, second);
		assert_int_equal(queries, before);
	}
	/* the key is the whole input: another address, sender or HELO name
	 * is evaluated afresh (and now fails) */
	mail(&fx, "192.0.2.2", "x@pass.example", &d, NULL);
	expect(&d, 451, "4.7.24");
	mail(&fx, "192.0.2.1", "y@pass.example", &d, NULL);
	expect(&d, 451, "4.7.24");
	mail(&fx, "192.0.2.1", "", &d, "helo_name=other.example", NULL);
	expect(&d, 451, "4.7.24");
	fx_close(&fx);
}

/* test_cache_not_temperror - a temperror is asked again every time: the
 * next request after the resolver recovers gets the real result. */
static void
test_cache_not_temperror(void **state)
{
	struct fx fx;
	struct plugin_decision d;
	int before;

	assert_int_equal(fx_open(&fx, SPF_ON), 0);
	mail(&fx, "192.0.2.1", "x@temp.example", &d, NULL);
	expect(&d, 451, "4.7.24");
	before = queries;
	mail(&fx, "192.0.2.1", "x@temp.example", &d, NULL);
	expect(&d, 451, "4.7.24");
	assert_int_equal(queries, before + 1);
	refuse_all = true;
	mail(&fx, "192.0.2.1", "x@pass.example", &d, NULL);
	expect(&d, 451, "4.7.24");
	refuse_all = false;
	mail(&fx, "192.0.2.1", "x@pass.example", &d, NULL);
	expect(&d, 0, NULL);
	assert_non_null(strstr(header(&d, "Received-SPF"), "pass "));
	fx_close(&fx);
}

/* test_config_errors - each bad spf setting refused with its key. */
static void
test_config_errors(void **state)
{
	static const struct { const char *yaml, *needle; } bad[] = {
		{ "      spf: yes\n", "key 'spf': a map" },
		{ "      spf:\n        softfail: maybe\n", "spf.softfail" },
		{ "      spf:\n        temperror: reject\n", "spf.temperror" },
		{ "      spf:\n        permerror: drop\n", "spf.permerror" },
		{ "      spf:\n        reject_fial: true\n", "reject_fail" },
		{ "      spf:\n        authserv_id: \"a b\"\n", "authserv_id" },
		{ "      spf:\n        helo: sometimes\n", "helo" },
	};
	struct fx fx;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (fx_open(&fx, bad[i].yaml) == 0)
			fail_msg("accepted: %s", bad[i].yaml);
		if (strstr(fx.err, bad[i].needle) == NULL)
			fail_msg("'%s' does not name %s", fx.err, bad[i].needle);
		fx_close(&fx);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass_headers),
		cmocka_unit_test(test_fail),
		cmocka_unit_test(test_softfail),
		cmocka_unit_test(test_temperror),
		cmocka_unit_test(test_permerror),
		cmocka_unit_test(test_helo_identity),
		cmocka_unit_test(test_not_checked),
		cmocka_unit_test(test_parallel_mx),
		cmocka_unit_test(test_hostile_sender),
		cmocka_unit_test(test_postfix_once),
		cmocka_unit_test(test_cache_same_outcome),
		cmocka_unit_test(test_cache_not_temperror),
		cmocka_unit_test(test_config_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
