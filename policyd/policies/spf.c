/*
 * spf.c - the `policy` plugin's SPF rule (RFC 7208) at MAIL: the sender's
 * domain (the HELO name for <>) checked against the client's address by
 * spf_eval.c, with the answers from the host's resolver
 * (elemta_ctx_dns_lookup), the result recorded in the message as
 * Received-SPF (RFC 7208 section 9.1) and Authentication-Results (RFC
 * 8601) through PREPEND, and refused as configured:
 *     spf: { reject_fail: true, softfail: accept, permerror: accept,
 *            temperror: tempfail, helo: true, authserv_id: <hostname> }
 * fail -> 550 5.7.23 (RFC 7372), temperror -> 451 4.7.24, permerror -> per
 * config (550 / 451 5.7.24 / 4.7.24).  Authenticated clients and
 * exempt_ips are not checked (their mail is not relayed from the sender's
 * domain's servers).
 *
 * Called from policy.c's sender rules (before any rule that counts, since
 * a DNS wait re-runs the hook: plugin.h, "DNS").  Each run evaluates from
 * the start: answers already in are READY, so a run goes further than the
 * last; the rule returns elemta_pending() at the first lookup still under
 * way, after starting the ones spf_eval_upcoming says come next.  Sender,
 * HELO name and every DNS string are untrusted: header values are quoted
 * or replaced, never copied raw.
 *
 * Outcomes are cached per worker (set-associative, like dnsbl.c's),
 * keyed by the whole input - client address, MAIL FROM and HELO name, so
 * a record whose macros use any of them is keyed right - for the
 * smallest TTL of the answers the evaluation used, kept within
 * 60 s .. 1 h; a temperror is never cached.  A cached outcome gives the
 * same verdict and headers as the evaluation it came from, without a DNS
 * round trip (each sequential lookup is one host wait even when the
 * resolver's cache has the answer).
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "policy.h"
#include "spf_eval.h"

#define SPF_HEADER_VALUE_MAX 900        /* under PREPEND's 998-byte line */
#define SPF_FIELD_MAX 256               /* one key=value's value         */
#define SPF_HELO_MAX 256                /* a HELO name cached, with NUL  */
#define SPF_CACHE_SETS 1024             /* x SPF_CACHE_WAYS outcomes     */
#define SPF_CACHE_WAYS 4
#define SPF_TTL_MIN 60
#define SPF_TTL_MAX 3600

/* What an evaluation decided: all the verdict and the headers use. */
struct spf_outcome {
	enum spf_result result;
	enum spf_identity identity;
	bool has_explanation;
	char domain[SPF_FIELD_MAX];
	char sender[SPF_SENDER_MAX];        /* the identity as checked      */
	char mechanism[SPF_MECHANISM_MAX];
	char problem[SPF_PROBLEM_MAX];
	char explanation[SPF_EXPLANATION_MAX];
};

/* One cached outcome, keyed by the evaluation's whole input. */
struct spf_cache_entry {
	char ip[ADDR_TEXT_MAX];             /* "" empty                     */
	char mail_from[SPF_SENDER_MAX];
	char helo[SPF_HELO_MAX];
	time_t expires;                     /* CLOCK_MONOTONIC seconds      */
	struct spf_outcome outcome;
};

/* A key maps to one set of SPF_CACHE_WAYS entries; a new outcome replaces
 * the set's entry for the key, else the first expired, else the one
 * expiring soonest. */
struct policy_spf_cache {
	struct spf_cache_entry set[SPF_CACHE_SETS][SPF_CACHE_WAYS];
};

/* The action names of softfail/permerror/temperror. */
static const struct {
	const char *name;
	enum elemta_action action;
} spf_actions[] = {
	{ "accept", ELEMTA_CONTINUE },
	{ "reject", ELEMTA_REJECT },
	{ "tempfail", ELEMTA_TEMPFAIL },
};

static const char *const spf_keys[] = {
	"reject_fail", "softfail", "permerror", "temperror", "helo",
	"authserv_id", NULL,
};

/* spf_host_name - letters, digits, '-', '_' and dots only (what
 * spf_eval accepts as an identity's domain). */
static bool
spf_host_name(const char *s)
{
	return s[0] != '\0' && strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == strlen(s);
}

/* spf_cfg_action - one of accept/reject/tempfail into *out. */
static int
spf_cfg_action(const elemta_cfg *m, const char *key, const char *def,
    enum elemta_action *out, char *err, size_t errlen)
{
	const char *v;

	if (elemta_cfg_string(m, key, def, &v, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(spf_actions) / sizeof(spf_actions[0]);
	    i++)
		if (strcmp(v, spf_actions[i].name) == 0) {
			*out = spf_actions[i].action;
			return 0;
		}
	snprintf(err, errlen, "%s: key 'spf.%s': '%s' is not accept, reject "
	    "or tempfail", elemta_cfg_where(elemta_cfg_get(m, key)), key, v);
	return -1;
}

/* policy_spf_config - the spf map (absent: the rule is off). */
int
policy_spf_config(struct policy *p, const elemta_cfg *cfg, char *err,
    size_t errlen)
{
	const elemta_cfg *m = elemta_cfg_get(cfg, "spf");
	const char *id;
	char host[256];
	int v;

	if (m == NULL)
		return 0;
	if (elemta_cfg_type(m) != ELEMTA_CFG_MAP) {
		snprintf(err, errlen, "%s: key 'spf': a map is expected "
		    "({reject_fail: true, ...})", elemta_cfg_where(m));
		return -1;
	}
	if (elemta_cfg_check_keys(m, spf_keys, err, errlen) != 0)
		return -1;
	p->spf.enabled = true;
	if (elemta_cfg_bool(m, "reject_fail", 1, &v, err, errlen) != 0)
		return -1;
	p->spf.reject_fail = v != 0;
	if (elemta_cfg_bool(m, "helo", 1, &v, err, errlen) != 0)
		return -1;
	p->spf.helo = v != 0;
	if (spf_cfg_action(m, "softfail", "accept", &p->spf.softfail, err,
	    errlen) != 0 || spf_cfg_action(m, "permerror", "accept",
	    &p->spf.permerror, err, errlen) != 0 || spf_cfg_action(m,
	    "temperror", "tempfail", &p->spf.temperror, err, errlen) != 0)
		return -1;
	if (p->spf.temperror == ELEMTA_REJECT) {
		snprintf(err, errlen, "%s: key 'spf.temperror': a temporary "
		    "error is never a 5xx (tempfail or accept)",
		    elemta_cfg_where(elemta_cfg_get(m, "temperror")));
		return -1;
	}
	if (gethostname(host, sizeof(host)) != 0)
		str_copy(host, "localhost", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	if (elemta_cfg_string(m, "authserv_id", host, &id, err, errlen) != 0)
		return -1;
	if (!spf_host_name(id) || strlen(id) >= sizeof(p->spf.authserv_id)) {
		snprintf(err, errlen, "%s: key 'spf.authserv_id': '%s' is not a "
		    "host name", elemta_cfg_where(elemta_cfg_get(m,
		    "authserv_id")), id);
		return -1;
	}
	str_copy(p->spf.authserv_id, id, sizeof(p->spf.authserv_id));
	return 0;
}

/* ==== header values ==== */

/* spf_atext - RFC 5322 atext. */
static bool
spf_atext(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~",
	    c) != NULL);
}

/* spf_dot_atom - s is an RFC 5322 dot-atom (written bare). */
static bool
spf_dot_atom(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || s[0] == '.' || s[n - 1] == '.' || strstr(s, "..") != NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] != '.' && !spf_atext((unsigned char)s[i]))
			return false;
	return true;
}

/* spf_append - append to buf what fits (header values are bounded). */
static void
spf_append(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
spf_append(char *buf, size_t size, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;

	if (n + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, size - n, fmt, ap);
	va_end(ap);
}

/* spf_value - a key=value's value: bare when a dot-atom, else a quoted
 * string; anything not printable ASCII becomes '?', at most
 * SPF_FIELD_MAX bytes of the input are used. */
static void
spf_value(char *out, size_t size, const char *v)
{
	size_t o = 0, n = strnlen(v, SPF_FIELD_MAX);

	if (spf_dot_atom(v) && n < SPF_FIELD_MAX) {
		str_copy(out, v, size);
		return;
	}
	if (size < 3) {
		out[0] = '\0';
		return;
	}
	out[o++] = '"';
	for (size_t i = 0; i < n && o + 3 < size; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '"' || c == '\\')
			out[o++] = '\\';
		out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[o++] = '"';
	out[o] = '\0';
}

/* spf_comment_safe - text for inside a header comment: no parentheses,
 * backslashes or unprintable bytes. */
static void
spf_comment_safe(char *out, size_t size, const char *v)
{
	size_t n = 0;

	for (size_t i = 0; v[i] != '\0' && n + 1 < size && i < SPF_FIELD_MAX;
	    i++) {
		unsigned char c = (unsigned char)v[i];

		out[n++] = c >= 0x20 && c < 0x7f && c != '(' && c != ')' &&
		    c != '\\' ? (char)c : '?';
	}
	out[n] = '\0';
}

/* spf_comment - the human part of Received-SPF (RFC 7208 9.1's style). */
static void
spf_comment(char *out, size_t size, enum spf_result r, const char *domain,
    const char *ip)
{
	char d[SPF_FIELD_MAX];

	spf_comment_safe(d, sizeof(d), domain);
	switch (r) {
	case SPF_RESULT_PASS:
		snprintf(out, size, "domain of %s designates %s as permitted "
		    "sender", d, ip);
		break;
	case SPF_RESULT_FAIL:
		snprintf(out, size, "domain of %s does not designate %s as "
		    "permitted sender", d, ip);
		break;
	case SPF_RESULT_SOFTFAIL:
		snprintf(out, size, "transitioning domain of %s does not "
		    "designate %s as permitted sender", d, ip);
		break;
	case SPF_RESULT_NEUTRAL:
		snprintf(out, size, "%s is neither permitted nor denied by "
		    "domain of %s", ip, d);
		break;
	case SPF_RESULT_NONE:
		snprintf(out, size, "domain of %s does not designate permitted "
		    "sender hosts", d);
		break;
	case SPF_RESULT_TEMPERROR:
	case SPF_RESULT_PERMERROR:
		snprintf(out, size, "error in processing during lookup of %s",
		    d);
		break;
	}
}

/* spf_headers - Received-SPF and Authentication-Results for o. */
static void
spf_headers(const struct policy *p, const elemta_ctx *ctx,
    const struct spf_outcome *o, const char *ip, const char *helo)
{
	enum spf_result r = o->result;
	bool helo_id = o->identity == SPF_IDENTITY_HELO;
	char value[SPF_HEADER_VALUE_MAX], v[SPF_FIELD_MAX + 48];
	char comment[SPF_FIELD_MAX + 128];

	/* Received-SPF: result (comment) key=value; ... */
	spf_comment(comment, sizeof(comment), r, o->domain, ip);
	snprintf(value, sizeof(value), "%s (%s: %s)", spf_result_name(r),
	    p->spf.authserv_id, comment);
	spf_value(v, sizeof(v), ip);
	spf_append(value, sizeof(value), " client-ip=%s;", v);
	spf_value(v, sizeof(v), o->sender);
	spf_append(value, sizeof(value), " envelope-from=%s;", v);
	if (helo[0] != '\0') {
		spf_value(v, sizeof(v), helo);
		spf_append(value, sizeof(value), " helo=%s;", v);
	}
	spf_append(value, sizeof(value), " receiver=%s; identity=%s",
	    p->spf.authserv_id, helo_id ? "helo" : "mailfrom");
	if (o->mechanism[0] != '\0') {
		spf_value(v, sizeof(v), o->mechanism);
		spf_append(value, sizeof(value), "; mechanism=%s", v);
	}
	if (o->problem[0] != '\0') {
		spf_value(v, sizeof(v), o->problem);
		spf_append(value, sizeof(value), "; problem=%s", v);
	}
	elemta_ctx_prepend_header(ctx, "Received-SPF", value);

	/* Authentication-Results: id; spf=result smtp.mailfrom=... (RFC
	 * 8601 2.7.2: the address when its local-part is a dot-atom, else
	 * the domain; smtp.helo for the HELO identity).  A domain that is
	 * not a host name (a malformed identity: result none) is quoted. */
	if (!spf_host_name(o->domain)) {
		spf_value(v, sizeof(v), helo_id ? o->domain :
		    o->sender);
	} else if (helo_id) {
		str_copy(v, o->domain, sizeof(v));
	} else {
		const char *sender = o->sender;
		const char *at = strrchr(sender, '@');
		char local[SPF_FIELD_MAX];
		size_t ll = at ? (size_t)(at - sender) : 0;

		if (ll >= sizeof(local))
			ll = 0;
		memcpy(local, sender, ll);
		local[ll] = '\0';
		str_copy(v, spf_dot_atom(local) ? sender : o->domain,
		    sizeof(v));
	}
	snprintf(value, sizeof(value), "%s; spf=%s smtp.%s=%s",
	    p->spf.authserv_id, spf_result_name(r), helo_id ? "helo" :
	    "mailfrom", v);
	elemta_ctx_prepend_header(ctx, "Authentication-Results", value);
}

/* ==== the rule ==== */

/* spf_answer_copy - the ABI's answer as dns.h's, for spf_eval_answer
 * (records point into the host's answer; valid for this request). */
static void
spf_answer_copy(const struct elemta_dns_answer *in, enum dns_type qtype,
    struct dns_answer *out, struct dns_record *recs)
{
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	out->qtype = qtype;
	out->qname = in != NULL ? in->name : "";
	out->records = recs;
	if (in == NULL || in->type != (enum elemta_dns_type)qtype) {
		out->status = DNS_TEMPFAIL;     /* not the answer asked for */
		return;
	}
	switch (in->status) {
	case ELEMTA_DNS_OK:       out->status = DNS_OK; break;
	case ELEMTA_DNS_NODATA:   out->status = DNS_NODATA; break;
	case ELEMTA_DNS_NXDOMAIN: out->status = DNS_NXDOMAIN; break;
	case ELEMTA_DNS_PERMFAIL: out->status = DNS_PERMFAIL; break;
	default:                  out->status = DNS_TEMPFAIL; break;
	}
	out->why = in->why;
	for (size_t i = 0; i < in->count && n < DNS_ANSWER_RECORDS_MAX; i++) {
		const struct elemta_dns_record *r = &in->records[i];
		struct dns_record *d = &recs[n];

		memset(d, 0, sizeof(*d));
		d->type = qtype;
		d->ttl = r->ttl;
		switch (qtype) {
		case DNS_TYPE_A:
			memcpy(d->u.a, r->addr, 4);
			break;
		case DNS_TYPE_AAAA:
			memcpy(d->u.aaaa, r->addr, 16);
			break;
		case DNS_TYPE_MX:
			d->u.mx.preference = r->preference;
			str_copy(d->u.mx.host, r->text ? r->text : ".",
			    sizeof(d->u.mx.host));
			break;
		case DNS_TYPE_PTR:
			str_copy(d->u.name, r->text ? r->text : "",
			    sizeof(d->u.name));
			break;
		case DNS_TYPE_TXT:
			d->u.txt.text = (char *)(uintptr_t)(r->text ? r->text :
			    "");
			d->u.txt.len = r->text ? r->len : 0;
			break;
		default:
			continue;
		}
		n++;
	}
	out->count = n;
	if (out->status == DNS_OK && n == 0)
		out->status = DNS_NODATA;
}

/* spf_verdict - what a result does, per config. */
static enum elemta_action
spf_verdict(const struct policy *p, const struct spf_outcome *o,
    struct elemta_result *res)
{
	const char *exp = o->has_explanation ? o->explanation : NULL;

	switch (o->result) {
	case SPF_RESULT_FAIL:
		if (!p->spf.reject_fail)
			return ELEMTA_CONTINUE;
		if (exp != NULL)
			return elemta_result_set(res, ELEMTA_REJECT, 550, "5.7.23",
			    "SPF validation failed: %s", exp);
		return elemta_result_set(res, ELEMTA_REJECT, 550, "5.7.23",
		    "SPF validation failed");
	case SPF_RESULT_SOFTFAIL:
		if (p->spf.softfail == ELEMTA_REJECT)
			return elemta_result_set(res, ELEMTA_REJECT, 550, "5.7.23",
			    "SPF validation failed (softfail)");
		if (p->spf.softfail == ELEMTA_TEMPFAIL)
			return elemta_result_set(res, ELEMTA_TEMPFAIL, 451,
			    "4.7.24", "SPF softfail, try again later");
		return ELEMTA_CONTINUE;
	case SPF_RESULT_TEMPERROR:
		if (p->spf.temperror != ELEMTA_TEMPFAIL)
			return ELEMTA_CONTINUE;
		return elemta_result_set(res, ELEMTA_TEMPFAIL, 451, "4.7.24",
		    "SPF temporary error, try again later");
	case SPF_RESULT_PERMERROR:
		if (p->spf.permerror == ELEMTA_REJECT)
			return elemta_result_set(res, ELEMTA_REJECT, 550, "5.7.24",
			    "SPF validation error: %s", o->problem);
		if (p->spf.permerror == ELEMTA_TEMPFAIL)
			return elemta_result_set(res, ELEMTA_TEMPFAIL, 451,
			    "4.7.24", "SPF validation error, try again later");
		return ELEMTA_CONTINUE;
	default:
		return ELEMTA_CONTINUE;
	}
}

/* spf_metric - policy_spf_<result>_total. */
static void
spf_metric(const elemta_ctx *ctx, enum spf_result r)
{
	char name[48];

	snprintf(name, sizeof(name), "policy_spf_%s_total", spf_result_name(r));
	elemta_metric_add(ctx, name, 1);
}

/* ==== the cache ==== */

/* spf_cacheable - the key fits an entry (else the outcome is not kept). */
static bool
spf_cacheable(const char *sender, const char *helo)
{
	return strlen(sender) < SPF_SENDER_MAX && strlen(helo) < SPF_HELO_MAX;
}

/* spf_fnv - FNV-1a of s (with its NUL) on from x. */
static uint32_t
spf_fnv(uint32_t x, const char *s)
{
	do
		x = (x ^ (unsigned char)*s) * 16777619u;
	while (*s++ != '\0');
	return x;
}

/* spf_set - the cache set of a key. */
static struct spf_cache_entry *
spf_set(struct policy *p, const char *ip, const char *sender,
    const char *helo)
{
	uint32_t x = spf_fnv(spf_fnv(spf_fnv(2166136261u, ip), sender), helo);

	if (p->spf_cache == NULL)
		p->spf_cache = xcalloc(1, sizeof(*p->spf_cache));
	return p->spf_cache->set[x % SPF_CACHE_SETS];
}

/* spf_same_key - e holds the key (live or not). */
static bool
spf_same_key(const struct spf_cache_entry *e, const char *ip,
    const char *sender, const char *helo)
{
	return strcmp(e->ip, ip) == 0 && strcmp(e->mail_from, sender) == 0 &&
	    strcmp(e->helo, helo) == 0;
}

/* spf_cache_get - the key's live outcome in set, or NULL. */
static const struct spf_outcome *
spf_cache_get(const struct spf_cache_entry *set, const char *ip,
    const char *sender, const char *helo, time_t now)
{
	for (int i = 0; i < SPF_CACHE_WAYS; i++)
		if (set[i].expires > now && spf_same_key(&set[i], ip, sender,
		    helo))
			return &set[i].outcome;
	return NULL;
}

/* spf_cache_put - keep o for ttl seconds (bounded) in set. */
static void
spf_cache_put(struct spf_cache_entry *set, const char *ip,
    const char *sender, const char *helo, const struct spf_outcome *o,
    uint32_t ttl)
{
	time_t now = policy_monotonic();
	struct spf_cache_entry *e = &set[0];

	for (int i = 0; i < SPF_CACHE_WAYS; i++) {
		if (spf_same_key(&set[i], ip, sender, helo) ||
		    set[i].expires <= now) {
			e = &set[i];
			break;
		}
		if (set[i].expires < e->expires)
			e = &set[i];
	}
	if (ttl < SPF_TTL_MIN)
		ttl = SPF_TTL_MIN;
	if (ttl > SPF_TTL_MAX)
		ttl = SPF_TTL_MAX;
	str_copy(e->ip, ip, sizeof(e->ip));
	str_copy(e->mail_from, sender, sizeof(e->mail_from));
	str_copy(e->helo, helo, sizeof(e->helo));
	e->outcome = *o;
	e->expires = now + (time_t)ttl;
}

/* policy_spf_free - the cache. */
void
policy_spf_free(struct policy *p)
{
	free(p->spf_cache);
	p->spf_cache = NULL;
}

/* spf_outcome_of - what the finished evaluation st decided. */
static void
spf_outcome_of(const struct spf_eval *st, struct spf_outcome *o)
{
	const char *exp = spf_eval_explanation(st);

	memset(o, 0, sizeof(*o));
	o->result = spf_eval_result(st);
	o->identity = spf_eval_identity(st);
	str_copy(o->domain, spf_eval_domain(st), sizeof(o->domain));
	str_copy(o->sender, spf_eval_sender(st), sizeof(o->sender));
	str_copy(o->mechanism, spf_eval_mechanism(st), sizeof(o->mechanism));
	str_copy(o->problem, spf_eval_problem(st), sizeof(o->problem));
	o->has_explanation = exp != NULL;
	if (exp != NULL)
		str_copy(o->explanation, exp, sizeof(o->explanation));
}

/* spf_evaluate - run the evaluation on the host's DNS into *o, with the
 * smallest TTL of the answers it used in *ttl; ELEMTA_PENDING (the rule's
 * answer) while a lookup is under way. */
static enum elemta_action
spf_evaluate(const elemta_ctx *ctx, const struct spf_input *in,
    struct spf_outcome *o, uint32_t *ttl)
{
	static struct dns_record recs[DNS_ANSWER_RECORDS_MAX];
	const struct elemta_dns_answer *ans;
	struct spf_query q, next;
	struct dns_answer a;
	struct spf_eval *st = spf_eval_new(in);

	*ttl = SPF_TTL_MAX;
	while (spf_eval_step(st, &q) == SPF_NEED_DNS) {
		enum dns_type type = q.type;
		int rc;

		ans = NULL;
		rc = elemta_ctx_dns_lookup(ctx, q.name,
		    (enum elemta_dns_type)type, &ans);
		if (rc == ELEMTA_DNS_PENDING) {
			/* start what comes next now: it runs in parallel */
			for (size_t i = 0; spf_eval_upcoming(st, i, &next); i++)
				(void)elemta_ctx_dns_lookup(ctx, next.name,
				    (enum elemta_dns_type)next.type, &ans);
			spf_eval_free(st);
			return elemta_pending(ctx);
		}
		/* READY, or -1 with a TEMPFAIL answer saying why (or none) */
		if (ans != NULL && ans->ttl != 0 && ans->ttl < *ttl)
			*ttl = ans->ttl;
		spf_answer_copy(ans, type, &a, recs);
		spf_eval_answer(st, &a);
	}
	spf_outcome_of(st, o);
	spf_eval_free(st);
	return ELEMTA_CONTINUE;
}

/* policy_rule_spf - see the file comment. */
enum elemta_action
policy_rule_spf(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	const char *sender = elemta_ctx_sender(ctx);
	const char *helo = elemta_ctx_helo(ctx);
	const struct spf_outcome *hit = NULL;
	struct spf_cache_entry *set = NULL;
	struct spf_outcome fresh;
	const struct spf_outcome *o = &fresh;
	struct spf_input in;
	enum elemta_action act;
	char ip[ADDR_TEXT_MAX];
	uint32_t ttl;

	if (!p->spf.enabled || sender == NULL || elemta_ctx_authenticated(ctx) ||
	    policy_client_exempt(p, ctx) || (sender[0] == '\0' && !p->spf.helo))
		return ELEMTA_CONTINUE;
	memset(&in, 0, sizeof(in));
	if (addr_ip_parse(elemta_ctx_client_ip(ctx), &in.ip) != 0)
		return ELEMTA_CONTINUE;         /* no TCP client (a test) */
	addr_ip_format(&in.ip, ip, sizeof(ip));
	in.sender = sender;
	in.helo = helo != NULL ? helo : "";
	in.identity = SPF_IDENTITY_MAILFROM;
	in.receiver = p->spf.authserv_id;
	in.now = (uint64_t)policy_now();
	if (spf_cacheable(sender, in.helo)) {
		set = spf_set(p, ip, sender, in.helo);
		hit = spf_cache_get(set, ip, sender, in.helo, policy_monotonic());
	}
	if (hit != NULL) {
		o = hit;
	} else {
		act = spf_evaluate(ctx, &in, &fresh, &ttl);
		if (act != ELEMTA_CONTINUE)
			return act;
		if (set != NULL && fresh.result != SPF_RESULT_TEMPERROR)
			spf_cache_put(set, ip, sender, in.helo, &fresh, ttl);
	}
	act = spf_verdict(p, o, res);
	/* a fresh evaluation is logged; a cached one is in the message's
	 * Received-SPF header already (one write per decision was the rule's
	 * largest cost on the cached path) */
	elemta_log(ctx, hit != NULL ? ELEMTA_LOG_DEBUG : ELEMTA_LOG_INFO,
	    "spf %s for %s (%s) from %s: %s%s%s",
	    spf_result_name(o->result), o->sender,
	    o->identity == SPF_IDENTITY_HELO ? "helo" : "mailfrom", ip,
	    o->mechanism, o->problem, hit != NULL ? " (cached)" : "");
	if (policy_counts_message(ctx)) {
		spf_metric(ctx, o->result);
		if (act == ELEMTA_CONTINUE)
			spf_headers(p, ctx, o, ip, in.helo);
	}
	return act;
}
