/*
 * dnsbl.c - the `dnsbl` rule of the built-in policy plugin: DNSBL/DNSWL
 * scoring in postscreen's manner, and the DNSWL verdict other rules
 * (greylisting) ask for.
 *
 *   dnsbl:
 *     sites: [ "zen.spamhaus.org*3", "bl.example=127.0.0.[2..11]*2",
 *              "list.dnswl.org=127.0.[0..255].[1..3]*-5" ]
 *     threshold: 3            # refuse at a score of 3 or more (default 1)
 *     action: reject          # 554 5.7.1 (default), or tempfail: 450 4.7.1
 *
 * Every site is asked in parallel through the host's DNS
 * (elemta_ctx_dns_lookup: "<reversed client address>.<zone>", IPv6 per
 * nibble); the weights of the sites whose replies pass their filter are
 * summed (dnsbl_site.c) and compared with the threshold.  A site that
 * fails (timeout, SERVFAIL) counts 0 and is logged: a dead DNSBL server
 * never blocks mail.  Outcomes are cached per worker and client address
 * for the answers' TTL, kept within 60 s .. 1 h.  Clients in exempt_ips
 * are not looked up.  Called by policy.c's rule tables (client rules);
 * sees requests only through <elemta/plugin.h>.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns.h"
#include "error.h"
#include "policy.h"

#define DNSBL_SITES_MAX 32
#define DNSBL_REPLIES_MAX 16        /* A records looked at per site     */
#define DNSBL_CACHE_SETS 2048         /* x DNSBL_CACHE_WAYS entries    */
#define DNSBL_CACHE_WAYS 4
#define DNSBL_TTL_MIN 60
#define DNSBL_TTL_MAX 3600

#define METRIC_DNSBL_REFUSED "policy_dnsbl_refused_total"
#define METRIC_DNSBL_PASSED "policy_dnsbl_passed_total"
#define METRIC_DNSBL_ALLOWLISTED "policy_dnsbl_allowlisted_total"
#define METRIC_DNSBL_SITE_FAILED "policy_dnsbl_site_failures_total"

/* One cached outcome. */
struct dnsbl_cache_entry {
	char ip[ADDR_TEXT_MAX];             /* "" empty                     */
	struct dnsbl_outcome outcome;
	time_t expires;                     /* CLOCK_MONOTONIC seconds      */
};

/* Set-associative: an address maps to one set of DNSBL_CACHE_WAYS
 * entries; a new outcome replaces the set's first expired entry, else
 * the one expiring soonest. */
struct policy_dnsbl_cache {
	struct dnsbl_cache_entry set[DNSBL_CACHE_SETS][DNSBL_CACHE_WAYS];
};

/* ==== Config ==== */

/* policy_dnsbl_config - the dnsbl map: sites, threshold, action. */
int
policy_dnsbl_config(struct policy *p, const elemta_cfg *cfg, char *err,
    size_t errlen)
{
	static const char *const keys[] = { "sites", "threshold", "action",
	    NULL };
	const elemta_cfg *m = elemta_cfg_get(cfg, "dnsbl"), *items;
	const char *action;
	int64_t threshold;
	char why[256];

	if (m == NULL)
		return 0;
	if (elemta_cfg_type(m) != ELEMTA_CFG_MAP) {
		snprintf(err, errlen, "%s: key 'dnsbl': a map of sites, "
		    "threshold and action", elemta_cfg_where(m));
		return -1;
	}
	if (elemta_cfg_check_keys(m, keys, err, errlen) != 0 ||
	    elemta_cfg_string_list(m, "sites", &items, err, errlen) != 0 ||
	    elemta_cfg_int(m, "threshold", 1, 1, 1000000, &threshold, err,
	    errlen) != 0 ||
	    elemta_cfg_string(m, "action", "reject", &action, err,
	    errlen) != 0)
		return -1;
	if (strcmp(action, "reject") == 0)
		p->dnsbl_action = ELEMTA_REJECT;
	else if (strcmp(action, "tempfail") == 0)
		p->dnsbl_action = ELEMTA_TEMPFAIL;
	else {
		snprintf(err, errlen, "%s: key 'action': 'reject' or "
		    "'tempfail', not '%s'", elemta_cfg_where(m), action);
		return -1;
	}
	if (elemta_cfg_len(items) > DNSBL_SITES_MAX) {
		snprintf(err, errlen, "%s: key 'sites': at most %d sites",
		    elemta_cfg_where(items), DNSBL_SITES_MAX);
		return -1;
	}
	p->dnsbl_threshold = threshold;
	p->dnsbl_sites = xcalloc(elemta_cfg_len(items) + 1,
	    sizeof(*p->dnsbl_sites));
	for (size_t i = 0; i < elemta_cfg_len(items); i++) {
		const elemta_cfg *it = elemta_cfg_at(items, i);

		if (dnsbl_site_parse(elemta_cfg_scalar(it),
		    &p->dnsbl_sites[i], why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s: key 'sites': %s",
			    elemta_cfg_where(it), why);
			return -1;
		}
		p->dnsbl_count++;
	}
	return 0;
}

/* policy_dnsbl_free - the sites and the cache. */
void
policy_dnsbl_free(struct policy *p)
{
	free(p->dnsbl_sites);
	free(p->dnsbl_cache);
	p->dnsbl_sites = NULL;
	p->dnsbl_cache = NULL;
}

/* ==== Lookups ==== */

/* dnsbl_set - the cache set of an address (FNV-1a of its text). */
static struct dnsbl_cache_entry *
dnsbl_set(struct policy *p, const char *ip)
{
	uint32_t x = 2166136261u;

	if (p->dnsbl_cache == NULL)
		p->dnsbl_cache = xcalloc(1, sizeof(*p->dnsbl_cache));
	for (const unsigned char *c = (const unsigned char *)ip; *c; c++)
		x = (x ^ *c) * 16777619u;
	return p->dnsbl_cache->set[x % DNSBL_CACHE_SETS];
}

/* dnsbl_cache_get - the address's live entry in set, or NULL. */
static const struct dnsbl_cache_entry *
dnsbl_cache_get(const struct dnsbl_cache_entry *set, const char *ip,
    time_t now)
{
	for (int i = 0; i < DNSBL_CACHE_WAYS; i++)
		if (set[i].expires > now && strcmp(set[i].ip, ip) == 0)
			return &set[i];
	return NULL;
}

/* dnsbl_cache_slot - where a new outcome for ip goes in set: its own
 * entry, else the first expired, else the one expiring soonest. */
static struct dnsbl_cache_entry *
dnsbl_cache_slot(struct dnsbl_cache_entry *set, const char *ip, time_t now)
{
	struct dnsbl_cache_entry *victim = &set[0];

	for (int i = 0; i < DNSBL_CACHE_WAYS; i++) {
		if (strcmp(set[i].ip, ip) == 0 || set[i].expires <= now)
			return &set[i];
		if (set[i].expires < victim->expires)
			victim = &set[i];
	}
	return victim;
}

/* policy_dnsbl_check - see policy.h. */
enum elemta_action
policy_dnsbl_check(struct policy *p, const elemta_ctx *ctx,
    struct dnsbl_outcome *out)
{
	static uint8_t addrs[DNSBL_SITES_MAX][DNSBL_REPLIES_MAX][4];
	const struct elemta_dns_answer *ans[DNSBL_SITES_MAX];
	struct dnsbl_replies rep[DNSBL_SITES_MAX];
	char rev[DNS_REVERSE_MAX], name[DNS_REVERSE_MAX + DNSBL_ZONE_MAX + 2];
	const char *ipt = elemta_ctx_client_ip(ctx);
	const struct dnsbl_cache_entry *hit;
	struct dnsbl_cache_entry *set, *e;
	uint32_t ttl = DNSBL_TTL_MAX;
	time_t now;
	bool pending = false;
	struct addr_ip ip;

	memset(out, 0, sizeof(*out));
	out->blocked_by = -1;
	if (p->dnsbl_count == 0 || addr_ip_parse(ipt, &ip) != 0)
		return ELEMTA_CONTINUE;
	set = dnsbl_set(p, ipt);
	now = policy_monotonic();
	if ((hit = dnsbl_cache_get(set, ipt, now)) != NULL) {
		*out = hit->outcome;
		return ELEMTA_CONTINUE;
	}
	if (dns_reverse_labels(ip.is_v4 ? AF_INET : AF_INET6, ip.is_v4 ?
	    ip.bytes + 12 : ip.bytes, rev, sizeof(rev)) != 0)
		return ELEMTA_CONTINUE;         /* cannot happen: it fits */
	for (size_t i = 0; i < p->dnsbl_count; i++) {
		snprintf(name, sizeof(name), "%s.%s", rev, p->dnsbl_sites[i].zone);
		if (elemta_ctx_dns_lookup(ctx, name, ELEMTA_DNS_A, &ans[i]) ==
		    ELEMTA_DNS_PENDING)
			pending = true;
	}
	if (pending)
		return ELEMTA_PENDING;
	for (size_t i = 0; i < p->dnsbl_count; i++) {
		const struct elemta_dns_answer *a = ans[i];

		rep[i].addrs = (const uint8_t (*)[4])addrs[i];
		rep[i].count = 0;
		if (a->status == ELEMTA_DNS_TEMPFAIL ||
		    a->status == ELEMTA_DNS_PERMFAIL) {
			elemta_log(ctx, ELEMTA_LOG_WARNING, "DNSBL %s: %s for "
			    "[%s]; counted 0", p->dnsbl_sites[i].zone,
			    a->why[0] ? a->why : "lookup failed", ipt);
			elemta_metric_add(ctx, METRIC_DNSBL_SITE_FAILED, 1);
			ttl = DNSBL_TTL_MIN;
			continue;
		}
		if (a->ttl != 0 && a->ttl < ttl)
			ttl = a->ttl;
		for (size_t k = 0; k < a->count && k < DNSBL_REPLIES_MAX; k++)
			memcpy(addrs[i][rep[i].count++], a->records[k].addr, 4);
	}
	dnsbl_tally(p->dnsbl_sites, p->dnsbl_count, rep, out);
	if (out->errors > 0)
		elemta_log(ctx, ELEMTA_LOG_WARNING, "DNSBL: %u error replies "
		    "(127.255.255.x) for [%s]; not counted as listings",
		    out->errors, ipt);
	if (ttl < DNSBL_TTL_MIN)
		ttl = DNSBL_TTL_MIN;
	now = policy_monotonic();
	e = dnsbl_cache_slot(set, ipt, now);
	str_copy(e->ip, ipt, sizeof(e->ip));
	e->outcome = *out;
	e->expires = now + (time_t)ttl;
	return ELEMTA_CONTINUE;
}

/* policy_dnswl_listed - see policy.h. */
enum elemta_action
policy_dnswl_listed(struct policy *p, const elemta_ctx *ctx, bool *listed)
{
	struct dnsbl_outcome o;
	enum elemta_action act = policy_dnsbl_check(p, ctx, &o);

	*listed = act == ELEMTA_CONTINUE && o.allowlisted;
	return act;
}

/* policy_rule_dnsbl - refuse a client whose score reaches the
 * threshold. */
enum elemta_action
policy_rule_dnsbl(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	struct dnsbl_outcome o;
	enum elemta_action act;

	if (p->dnsbl_count == 0 || policy_client_exempt(p, ctx))
		return ELEMTA_CONTINUE;
	act = policy_dnsbl_check(p, ctx, &o);
	if (act != ELEMTA_CONTINUE)
		return act;
	if (o.score < p->dnsbl_threshold || o.blocked_by < 0) {
		/* Once per connection (a Postfix asks at every RCPT: once
		 * per message there), not a counter write per request. */
		if (policy_phase_is(ctx, ELEMTA_PHASE_CONNECT) ||
		    (policy_from_postfix(ctx) && policy_counts_message(ctx)))
			elemta_metric_add(ctx, o.allowlisted ?
			    METRIC_DNSBL_ALLOWLISTED : METRIC_DNSBL_PASSED, 1);
		return ELEMTA_CONTINUE;
	}
	elemta_metric_add(ctx, METRIC_DNSBL_REFUSED, 1);
	return elemta_result_set(res, p->dnsbl_action,
	    p->dnsbl_action == ELEMTA_REJECT ? 554 : 450,
	    p->dnsbl_action == ELEMTA_REJECT ? "5.7.1" : "4.7.1",
	    "Service unavailable; client [%s] blocked using %s",
	    elemta_ctx_client_ip(ctx), p->dnsbl_sites[o.blocked_by].zone);
}
