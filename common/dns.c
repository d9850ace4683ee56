/*
 * dns.c - the resolver of dns.h: libunbound on the caller's libevent base,
 * answers parsed with libldns.
 *
 * Callers: elemta-queued (MX, A/AAAA, TLSA) and elemta-policyd (client
 * names, DNSBL, SPF), each with one resolver per process built from the
 * config's dns section.  elemta-smtpd never links this file.
 *
 * How the contract of dns.h is kept:
 *   - every answer is kept and handed over from an event of its own
 *     (ub_resolve_event may call back before it returns, with local data
 *     or a cached answer, and libunbound goes on using its context after
 *     any callback), so the caller's callback never runs inside
 *     dns_query nor inside libunbound, and may free the resolver;
 *   - libunbound has no per-query deadline: each query has its own timer
 *     (dns.timeout); when it fires the unbound query is cancelled with
 *     ub_cancel (on an event context that only marks it, unbound then
 *     drops the answer without calling back) and the caller gets
 *     DNS_TEMPFAIL, so the callback still runs exactly once;
 *   - every name goes to the resolvers: libunbound's built-in local zones
 *     (localhost, 127.in-addr.arpa, ::1's reverse, onion, test, invalid,
 *     and the AS112/RFC 6303 reverse zones of private address space) are
 *     turned off with local-zone "nodefault" and unblock-lan-zones, and no
 *     /etc/hosts is loaded;
 *   - caching per TTL is libunbound's own message and RRset cache (it
 *     honours record TTLs and negative-caching TTLs); a second lookup of
 *     a cached name costs no round trip;
 *   - at most max_outstanding queries wait at once; over it a query fails
 *     at once with DNS_TEMPFAIL;
 *   - a resolver failure (SERVFAIL, timeout) is logged once when it starts
 *     and once when answers come back, not per query.
 * The answer packet libunbound hands over is untrusted network data: it is
 * parsed by ldns_wire2pkt and only bounded copies of its records reach the
 * caller.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <ldns/ldns.h>
#include <unbound.h>
#include <unbound-event.h>

#include "config.h"
#include "dns.h"
#include "error.h"
#include "log.h"

#define DNS_MAX_OUTSTANDING_DEFAULT 1000u
#define DNS_TIMEOUT_DEFAULT_MS 5000u
#define DNS_CNAME_HOPS_MAX 8          /* CNAME chain followed in an answer */
#define DNS_WHY_MAX 256
#define DNS_CLASS_IN 1

/* libunbound's callback "sec" values. */
enum ub_sec { UB_SEC_INSECURE = 0, UB_SEC_BOGUS = 1, UB_SEC_SECURE = 2 };

/* Where a query stands. */
enum dns_query_state {
	DNS_Q_RESOLVING,    /* inside ub_resolve_event                  */
	DNS_Q_WAITING,      /* unbound holds it; the timer runs         */
	DNS_Q_READY,        /* result kept; the deliver event is active */
};

struct dns_query {
	struct dns_resolver *r;
	struct dns_query *prev, *next;      /* r's list of live queries */
	enum dns_query_state state;
	char name[DNS_NAME_MAX];
	enum dns_type type;
	dns_callback cb;
	void *arg;
	int async_id;                       /* 0: none to cancel        */
	struct event *timer;                /* dns.timeout              */
	struct event *deliver;              /* hands a kept result over */
	struct timespec started;
	/* The kept result (DNS_Q_READY): a packet, or a status alone. */
	int rcode, sec;
	uint8_t *packet;
	size_t packet_len;
	bool have_status;
	enum dns_status status;
	char why[DNS_WHY_MAX];
};

struct dns_resolver {
	struct event_base *base;
	struct ub_ctx *ctx;
	uint64_t timeout_ms;
	unsigned max_outstanding;
	unsigned outstanding;
	struct dns_query *queries;
	bool failing;                       /* a failure was logged     */
	struct dns_stats stats;
};

const uint64_t dns_stats_bucket_us[DNS_STATS_BUCKETS] = {
	1000, 5000, 10000, 50000, 100000, 500000, 1000000, 5000000,
};

/*==== Names ====*/

/* dns_name_canonical - see dns.h. */
int
dns_name_canonical(const char *name, char *out, size_t size)
{
	size_t len = strlen(name), label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len >= size || len > 253)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (c > ' ' && c < 0x7f && c != '\\' && c != '"' &&
		    c != '(' && c != ')' && c != ';') {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
		out[i] = (char)tolower(c);
	}
	out[len] = '\0';
	return 0;
}

/* rdf_name - a dname rdata field in presentation form, lower-cased,
 * without the trailing dot ("." for the root).  -1 when it does not fit. */
static int
rdf_name(const ldns_rdf *rdf, char *out, size_t size)
{
	char *s;
	size_t len;

	if (rdf == NULL || ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_DNAME)
		return -1;
	s = ldns_rdf2str(rdf);
	if (s == NULL)
		return -1;
	len = strlen(s);
	if (len > 1 && s[len - 1] == '.')
		s[--len] = '\0';
	if (len == 0 || len >= size) {
		free(s);
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[len] = '\0';
	free(s);
	return 0;
}

/*==== Answers ====*/

/* elapsed_us - microseconds since start. */
static uint64_t
elapsed_us(const struct timespec *start)
{
	struct timespec now;
	int64_t us;

	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (int64_t)(now.tv_sec - start->tv_sec) * 1000000 +
	    (now.tv_nsec - start->tv_nsec) / 1000;
	return us > 0 ? (uint64_t)us : 0;
}

/* record_fill - rr's data into rec; 0, 1 to skip it (a TLSA record with
 * a full certificate), -1 when it is malformed. */
static int
record_fill(const ldns_rr *rr, enum dns_type type, struct dns_record *rec)
{
	const ldns_rdf *f;

	rec->type = type;
	rec->ttl = ldns_rr_ttl(rr);
	switch (type) {
	case DNS_TYPE_A:
	case DNS_TYPE_AAAA: {
		size_t want = type == DNS_TYPE_A ? 4 : 16;

		f = ldns_rr_rdf(rr, 0);
		if (ldns_rr_rd_count(rr) != 1 || f == NULL ||
		    ldns_rdf_size(f) != want)
			return -1;
		memcpy(type == DNS_TYPE_A ? rec->u.a : rec->u.aaaa,
		    ldns_rdf_data(f), want);
		return 0;
	}
	case DNS_TYPE_MX:
		f = ldns_rr_rdf(rr, 0);
		if (ldns_rr_rd_count(rr) != 2 || f == NULL ||
		    ldns_rdf_size(f) != 2)
			return -1;
		rec->u.mx.preference = ldns_rdf2native_int16(f);
		return rdf_name(ldns_rr_rdf(rr, 1), rec->u.mx.host,
		    sizeof(rec->u.mx.host));
	case DNS_TYPE_PTR:
		if (ldns_rr_rd_count(rr) != 1)
			return -1;
		return rdf_name(ldns_rr_rdf(rr, 0), rec->u.name,
		    sizeof(rec->u.name));
	case DNS_TYPE_TXT: {
		size_t total = 0;
		char *text;

		for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
			f = ldns_rr_rdf(rr, i);
			if (f == NULL || ldns_rdf_size(f) < 1 ||
			    ldns_rdf_data(f)[0] != ldns_rdf_size(f) - 1)
				return -1;
			total += ldns_rdf_size(f) - 1;
		}
		if (total > DNS_TXT_MAX)
			return -1;
		text = xmalloc(total + 1);
		total = 0;
		for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
			f = ldns_rr_rdf(rr, i);
			memcpy(text + total, ldns_rdf_data(f) + 1,
			    ldns_rdf_size(f) - 1);
			total += ldns_rdf_size(f) - 1;
		}
		text[total] = '\0';
		rec->u.txt.text = text;
		rec->u.txt.len = total;
		return 0;
	}
	case DNS_TYPE_TLSA: {
		uint8_t b[3];

		if (ldns_rr_rd_count(rr) != 4)
			return -1;
		for (size_t i = 0; i < 3; i++) {
			f = ldns_rr_rdf(rr, i);
			if (f == NULL || ldns_rdf_size(f) != 1)
				return -1;
			b[i] = ldns_rdf_data(f)[0];
		}
		f = ldns_rr_rdf(rr, 3);
		if (f == NULL)
			return -1;
		if (ldns_rdf_size(f) > DNS_TLSA_DATA_MAX)
			return 1;
		rec->u.tlsa.usage = b[0];
		rec->u.tlsa.selector = b[1];
		rec->u.tlsa.matching_type = b[2];
		memcpy(rec->u.tlsa.data, ldns_rdf_data(f), ldns_rdf_size(f));
		rec->u.tlsa.data_len = ldns_rdf_size(f);
		return 0;
	}
	}
	return -1;
}

/* negative_ttl - the negative-caching TTL of pkt (the SOA's, capped by
 * its minimum), 0 when it has none. */
static uint32_t
negative_ttl(const ldns_pkt *pkt)
{
	const ldns_rr_list *auth = ldns_pkt_authority(pkt);

	for (size_t i = 0; auth != NULL && i < ldns_rr_list_rr_count(auth);
	    i++) {
		const ldns_rr *rr = ldns_rr_list_rr(auth, i);
		const ldns_rdf *min;
		uint32_t ttl;

		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_SOA ||
		    ldns_rr_rd_count(rr) != 7)
			continue;
		min = ldns_rr_rdf(rr, 6);
		ttl = ldns_rr_ttl(rr);
		if (min != NULL && ldns_rdf_size(min) == 4 &&
		    ldns_rdf2native_int32(min) < ttl)
			ttl = ldns_rdf2native_int32(min);
		return ttl;
	}
	return 0;
}

/* answer_parse - pkt's records of type for the question's name (CNAMEs
 * followed) into a; records[] has room for DNS_ANSWER_RECORDS_MAX. */
static void
answer_parse(const ldns_pkt *pkt, struct dns_answer *a,
    struct dns_record *records)
{
	const ldns_rr_list *q = ldns_pkt_question(pkt);
	const ldns_rr_list *an = ldns_pkt_answer(pkt);
	const ldns_rdf *owner;
	bool malformed = false;
	size_t n = 0;

	if (q == NULL || ldns_rr_list_rr_count(q) != 1 ||
	    (unsigned)ldns_rr_get_type(ldns_rr_list_rr(q, 0)) != a->qtype) {
		a->status = DNS_TEMPFAIL;
		a->why = "the answer does not match the question";
		return;
	}
	owner = ldns_rr_owner(ldns_rr_list_rr(q, 0));
	/* Unbound puts the CNAME chain first, then the target's records;
	 * a CNAME moves the name we collect for. */
	for (int hop = 0; hop <= DNS_CNAME_HOPS_MAX && owner != NULL; hop++) {
		const ldns_rdf *next = NULL;

		for (size_t i = 0; an != NULL && i < ldns_rr_list_rr_count(an);
		    i++) {
			const ldns_rr *rr = ldns_rr_list_rr(an, i);
			ldns_rr_type t = ldns_rr_get_type(rr);
			int rc;

			if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN ||
			    ldns_dname_compare(ldns_rr_owner(rr), owner) != 0)
				continue;
			if (t == LDNS_RR_TYPE_CNAME && a->qtype !=
			    (enum dns_type)LDNS_RR_TYPE_CNAME) {
				if (ldns_rr_rd_count(rr) == 1)
					next = ldns_rr_rdf(rr, 0);
				continue;
			}
			if ((unsigned)t != a->qtype ||
			    n == DNS_ANSWER_RECORDS_MAX)
				continue;
			rc = record_fill(rr, a->qtype, &records[n]);
			if (rc < 0)
				malformed = true;
			else if (rc == 0) {
				if (n == 0 || records[n].ttl < a->ttl)
					a->ttl = records[n].ttl;
				n++;
			}
		}
		if (n > 0 || next == NULL)
			break;
		owner = next;
	}
	a->count = n;
	if (n > 0) {
		a->status = DNS_OK;
	} else if (malformed) {
		a->status = DNS_PERMFAIL;
		a->why = "malformed or oversized record in the answer";
	} else {
		a->status = DNS_NODATA;
		a->ttl = negative_ttl(pkt);
	}
}

/* answer_from_packet - the status and records of a libunbound result. */
static void
answer_from_packet(const struct dns_query *q, struct dns_answer *a,
    struct dns_record *records, ldns_pkt **pktp)
{
	ldns_pkt *pkt = NULL;

	if (q->rcode != 0) {
		a->status = q->rcode == LDNS_RCODE_NXDOMAIN ? DNS_NXDOMAIN :
		    DNS_TEMPFAIL;
		a->why = q->rcode == LDNS_RCODE_SERVFAIL ?
		    "the resolver answered SERVFAIL" : "resolution failed";
		return;
	}
	if (q->sec == UB_SEC_BOGUS) {
		a->status = DNS_TEMPFAIL;
		a->why = "DNSSEC validation failed (bogus answer)";
		return;
	}
	if (q->packet == NULL || ldns_wire2pkt(&pkt, q->packet,
	    q->packet_len) != LDNS_STATUS_OK || pkt == NULL) {
		a->status = DNS_TEMPFAIL;
		a->why = "malformed answer";
		return;
	}
	*pktp = pkt;
	a->secure = q->sec == UB_SEC_SECURE;
	switch (ldns_pkt_get_rcode(pkt)) {
	case LDNS_RCODE_NOERROR:
		answer_parse(pkt, a, records);
		return;
	case LDNS_RCODE_NXDOMAIN:
		a->status = DNS_NXDOMAIN;
		a->ttl = negative_ttl(pkt);
		return;
	case LDNS_RCODE_FORMERR:
	case LDNS_RCODE_NOTIMPL:
		a->status = DNS_PERMFAIL;
		a->why = "the resolver refused the question";
		return;
	default:
		a->status = DNS_TEMPFAIL;
		a->why = "the resolver answered with an error";
		return;
	}
}

/* resolver_note - count an answer; log a resolver failure once when it
 * starts and once when answers come back. */
static void
resolver_note(struct dns_resolver *r, const struct dns_query *q,
    const struct dns_answer *a)
{
	uint64_t us = elapsed_us(&q->started);
	char name[DNS_NAME_MAX * 4];

	r->stats.answers++;
	r->stats.latency_us_sum += us;
	for (size_t i = 0; i < DNS_STATS_BUCKETS; i++)
		if (us <= dns_stats_bucket_us[i])
			r->stats.latency_buckets[i]++;
	if (a->status != DNS_TEMPFAIL) {
		if (r->failing)
			log_info("dns: resolvers answer again");
		r->failing = false;
		return;
	}
	r->stats.failures++;
	if (!r->failing)
		log_warn("dns: lookup of %s/%d failed: %s (logged once until "
		    "the resolvers answer again)", LOG_ESC(name, q->name),
		    (int)q->type, a->why != NULL ? a->why : "?");
	r->failing = true;
}

/* query_unlink - q leaves its resolver's list. */
static void
query_unlink(struct dns_query *q)
{
	struct dns_resolver *r = q->r;

	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		r->queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
	r->outstanding--;
}

/* query_free - free an unlinked q with its events and result. */
static void
query_free(struct dns_query *q)
{
	if (q->timer != NULL)
		event_free(q->timer);
	if (q->deliver != NULL)
		event_free(q->deliver);
	free(q->packet);
	free(q);
}

/* query_finish - build the answer, run the callback once, free q. */
static void
query_finish(struct dns_query *q)
{
	struct dns_record *records = xcalloc(DNS_ANSWER_RECORDS_MAX,
	    sizeof(*records));
	struct dns_answer a;
	ldns_pkt *pkt = NULL;
	dns_callback cb = q->cb;
	void *arg = q->arg;

	memset(&a, 0, sizeof(a));
	a.qname = q->name;
	a.qtype = q->type;
	a.records = records;
	if (q->have_status) {
		a.status = q->status;
		a.why = q->why;
	} else {
		answer_from_packet(q, &a, records, &pkt);
	}
	if (a.status == DNS_TEMPFAIL || a.status == DNS_PERMFAIL) {
		if (a.why == NULL)
			a.why = "resolution failed";
		if (a.why != q->why) {
			str_copy(q->why, a.why, sizeof(q->why));
			a.why = q->why;
		}
	}
	resolver_note(q->r, q, &a);
	/* Unlinked first: the callback may free the resolver, or issue
	 * queries that must find a slot. */
	evtimer_del(q->timer);
	query_unlink(q);
	cb(&a, arg);
	if (a.qtype == DNS_TYPE_TXT)
		for (size_t i = 0; i < a.count; i++)
			free(records[i].u.txt.text);
	free(records);
	if (pkt != NULL)
		ldns_pkt_free(pkt);
	query_free(q);
}

/* deliver_cb - hand over a kept result (from the loop, see above). */
static void
deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	query_finish(arg);
}

/* query_ready - keep the result and deliver it from the event loop. */
static void
query_ready(struct dns_query *q)
{
	q->state = DNS_Q_READY;
	evtimer_del(q->timer);
	event_active(q->deliver, EV_TIMEOUT, 0);
}

/* query_fail_later - q fails with status and why, delivered later. */
static void
query_fail_later(struct dns_query *q, enum dns_status status,
    const char *why)
{
	q->have_status = true;
	q->status = status;
	str_copy(q->why, why, sizeof(q->why));
	query_ready(q);
}

/* unbound_cb - libunbound's answer for q (mydata). */
static void
unbound_cb(void *mydata, int rcode, void *packet, int packet_len, int sec,
    char *why_bogus, int was_ratelimited)
{
	struct dns_query *q = mydata;

	q->async_id = 0;
	q->rcode = rcode;
	q->sec = sec;
	if (rcode == 0 && packet != NULL && packet_len > 0) {
		q->packet = xmalloc((size_t)packet_len);
		memcpy(q->packet, packet, (size_t)packet_len);
		q->packet_len = (size_t)packet_len;
	}
	/* Never called back from here: inside ub_resolve_event this is
	 * inside dns_query, and otherwise inside libunbound's own walk of
	 * the answer's waiting queries, which goes on after this returns
	 * and would touch a context the caller's callback freed (with
	 * dns_resolver_free) or re-entered. */
	query_ready(q);
}

/* timeout_cb - dns.timeout passed: unbound's query is dropped. */
static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	char why[64];

	if (q->async_id != 0)
		(void)ub_cancel(q->r->ctx, q->async_id);
	q->async_id = 0;
	q->r->stats.timeouts++;
	snprintf(why, sizeof(why), "timed out after %llu ms",
	    (unsigned long long)q->r->timeout_ms);
	q->have_status = true;
	q->status = DNS_TEMPFAIL;
	str_copy(q->why, why, sizeof(q->why));
	query_finish(q);
}

/*==== The resolver ====*/

/* ub_option - one unbound option; -1 with err when refused. */
static int
ub_option(struct ub_ctx *ctx, const char *opt, const char *val,
    struct error *err)
{
	int rc = ub_ctx_set_option(ctx, opt, val);

	if (rc != 0)
		return error_set(err, "libunbound option %s %s: %s", opt, val,
		    ub_strerror(rc));
	return 0;
}

/* The built-in local zones that would hide names from the resolvers
 * (unblock-lan-zones takes the AS112 list: RFC 1918 and the other
 * RFC 6303 reverse zones). */
static const char *const unbound_default_zones[] = {
	"localhost.", "127.in-addr.arpa.",
	/* one literal: clang warns on concatenation inside a list */
	"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
	"onion.", "test.", "invalid.", "home.arpa.", "resolver.arpa.",
	"service.arpa.",
};

/* resolver_configure - unbound's options from opt. */
static int
resolver_configure(struct ub_ctx *ctx, const struct dns_options *opt,
    struct error *err)
{
	int rc;

	/* No /etc/hosts, no built-in zone: every name to the resolvers. */
	for (size_t i = 0; i < sizeof(unbound_default_zones) /
	    sizeof(unbound_default_zones[0]); i++) {
		char val[128];

		/* "nodefault" is not honoured through ub_ctx_set_option
		 * (1.17); a configured zone of the same name replaces the
		 * default one, and a transparent zone without data sends
		 * every query to the resolvers. */
		snprintf(val, sizeof(val), "%s transparent",
		    unbound_default_zones[i]);
		if (ub_option(ctx, "local-zone:", val, err) < 0)
			return -1;
	}
	if (ub_option(ctx, "unblock-lan-zones:", "yes", err) < 0 ||
	    ub_option(ctx, "insecure-lan-zones:", "yes", err) < 0 ||
	    /* A resolver that was down is asked again soon after. */
	    ub_option(ctx, "infra-keep-probing:", "yes", err) < 0 ||
	    ub_option(ctx, "infra-host-ttl:", "60", err) < 0)
		return -1;
	if (opt->resolver_count == 0 || opt->resolvers == NULL) {
		rc = ub_ctx_resolvconf(ctx, NULL);
		if (rc != 0)
			return error_set(err, "/etc/resolv.conf: %s",
			    ub_strerror(rc));
	}
	for (size_t i = 0; opt->resolvers != NULL &&
	    i < opt->resolver_count; i++) {
		rc = ub_ctx_set_fwd(ctx, opt->resolvers[i]);
		if (rc != 0)
			return error_set(err, "resolver '%s': %s",
			    opt->resolvers[i], ub_strerror(rc));
	}
	if (opt->dnssec) {
		FILE *f;

		if (opt->trust_anchor_file == NULL ||
		    opt->trust_anchor_file[0] == '\0')
			return error_set(err, "DNSSEC validation needs a trust "
			    "anchor file");
		/* unbound reads it only on the first query: check now. */
		f = fopen(opt->trust_anchor_file, "r");
		if (f == NULL)
			return error_set(err, "trust anchor file %s: %s",
			    opt->trust_anchor_file, strerror(errno));
		fclose(f);
		rc = ub_ctx_add_ta_file(ctx, opt->trust_anchor_file);
		if (rc != 0)
			return error_set(err, "trust anchor file %s: %s",
			    opt->trust_anchor_file, ub_strerror(rc));
	} else if (ub_option(ctx, "module-config:", "iterator", err) < 0) {
		return -1;
	}
	return 0;
}

/* dns_options_config - see dns.h. */
void
dns_options_config(struct dns_options *opt, const struct config *cfg)
{
	memset(opt, 0, sizeof(*opt));
	opt->resolvers = cfg->dns.resolver_list;
	opt->resolver_count = cfg->dns.resolver_count;
	opt->timeout_ms = cfg->dns.timeout_ms;
	opt->dnssec = cfg->dns.dnssec;
	opt->trust_anchor_file = cfg->dns.trust_anchor_file;
}

/* dns_resolver_new - see dns.h. */
struct dns_resolver *
dns_resolver_new(struct event_base *base, const struct dns_options *opt,
    struct error *err)
{
	struct dns_resolver *r;
	struct ub_ctx *ctx = ub_ctx_create_event(base);

	if (ctx == NULL) {
		error_set(err, "libunbound: cannot create a context on the "
		    "event base");
		return NULL;
	}
	if (resolver_configure(ctx, opt, err) < 0) {
		ub_ctx_delete(ctx);
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->base = base;
	r->ctx = ctx;
	r->timeout_ms = opt->timeout_ms != 0 ? opt->timeout_ms :
	    DNS_TIMEOUT_DEFAULT_MS;
	r->max_outstanding = opt->max_outstanding != 0 ?
	    opt->max_outstanding : DNS_MAX_OUTSTANDING_DEFAULT;
	return r;
}

/* dns_resolver_free - see dns.h. */
void
dns_resolver_free(struct dns_resolver *r)
{
	if (r == NULL)
		return;
	while (r->queries != NULL)
		dns_query_cancel(r->queries);
	ub_ctx_delete(r->ctx);
	free(r);
}

/* dns_resolver_stats - see dns.h. */
void
dns_resolver_stats(const struct dns_resolver *r, struct dns_stats *out)
{
	*out = r->stats;
}

/* dns_query - see dns.h. */
struct dns_query *
dns_query(struct dns_resolver *r, const char *name, enum dns_type type,
    dns_callback cb, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));
	struct timeval tv;
	int rc;

	q->r = r;
	q->type = type;
	q->cb = cb;
	q->arg = arg;
	q->state = DNS_Q_RESOLVING;
	clock_gettime(CLOCK_MONOTONIC, &q->started);
	q->timer = evtimer_new(r->base, timeout_cb, q);
	q->deliver = event_new(r->base, -1, 0, deliver_cb, q);
	if (q->timer == NULL || q->deliver == NULL)
		fatal("dns: cannot create events");
	q->next = r->queries;
	if (q->next != NULL)
		q->next->prev = q;
	r->queries = q;
	r->outstanding++;
	r->stats.queries++;

	if (dns_name_canonical(name, q->name, sizeof(q->name)) < 0) {
		str_copy(q->name, name, sizeof(q->name));
		query_fail_later(q, DNS_PERMFAIL, "not a DNS name");
		return q;
	}
	if (r->outstanding > r->max_outstanding) {
		query_fail_later(q, DNS_TEMPFAIL, "too many DNS queries "
		    "outstanding");
		return q;
	}
	rc = ub_resolve_event(r->ctx, q->name, (int)type, DNS_CLASS_IN, q,
	    unbound_cb, &q->async_id);
	if (q->state == DNS_Q_READY)
		return q;       /* answered inside ub_resolve_event */
	if (rc != 0) {
		char why[128];

		q->async_id = 0;
		snprintf(why, sizeof(why), "libunbound: %s", ub_strerror(rc));
		query_fail_later(q, DNS_TEMPFAIL, why);
		return q;
	}
	q->state = DNS_Q_WAITING;
	tv.tv_sec = (time_t)(r->timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)(r->timeout_ms % 1000) * 1000;
	evtimer_add(q->timer, &tv);
	return q;
}

/* dns_query_cancel - see dns.h. */
void
dns_query_cancel(struct dns_query *q)
{
	if (q->async_id != 0)
		(void)ub_cancel(q->r->ctx, q->async_id);
	q->async_id = 0;
	query_unlink(q);
	query_free(q);
}

/*==== Reverse names and status names ====*/

/* dns_reverse_labels - see dns.h. */
int
dns_reverse_labels(int af, const void *addr, char *buf, size_t size)
{
	const uint8_t *b = addr;
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	if (af == AF_INET) {
		int len = snprintf(buf, size, "%u.%u.%u.%u", b[3], b[2], b[1],
		    b[0]);

		return len < 0 || (size_t)len >= size ? -1 : 0;
	}
	if (af != AF_INET6 || size < 64)
		return -1;
	for (int i = 15; i >= 0; i--) {
		buf[n++] = hex[b[i] & 0xf];
		buf[n++] = '.';
		buf[n++] = hex[b[i] >> 4];
		buf[n++] = i > 0 ? '.' : '\0';
	}
	return 0;
}

/* dns_ptr_name - see dns.h. */
int
dns_ptr_name(int af, const void *addr, char *buf, size_t size)
{
	const char *suffix = af == AF_INET ? ".in-addr.arpa" : ".ip6.arpa";
	size_t len;

	if (dns_reverse_labels(af, addr, buf, size) < 0)
		return -1;
	len = strlen(buf);
	if (len + strlen(suffix) >= size)
		return -1;
	memcpy(buf + len, suffix, strlen(suffix) + 1);
	return 0;
}

/* dns_status_name - see dns.h. */
const char *
dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_OK: return "ok";
	case DNS_NODATA: return "nodata";
	case DNS_NXDOMAIN: return "nxdomain";
	case DNS_TEMPFAIL: return "tempfail";
	case DNS_PERMFAIL: return "permfail";
	}
	return "?";
}
