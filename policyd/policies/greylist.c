/*
 * greylist.c - the `policy` plugin's greylisting rule (`greylisting:`),
 * postgrey's algorithm at RCPT: the triplet (client network, sender,
 * recipient) is refused with 450 4.2.0 "Greylisted, retry in N seconds"
 * until `delay` has passed since it was first seen and the retry comes
 * within `retry_window` (a retry after the window starts over); a passed
 * triplet is remembered for `max_age` after each use; a client network
 * that passed `auto_allow_after` triplets (counted at most once an
 * `auto_allow_interval`) is not greylisted any more.  Authenticated
 * clients, `exempt_ips` and DNSWL-listed clients (an allowlist site of the dnsbl rule)
 * skip it.
 *
 * Called from policy.c's RCPT rules, on both listeners.  The records live
 * in the host's shared counter table (elemta_greylist_check: one atomic
 * step on LMDB or Redis, exact across workers, restarts and hosts) under
 * the plugin's namespace:
 *   t:NET/SENDER/RECIPIENT   a triplet ("policy:t:192.0.2.0/24/a@x/b@y")
 *   c:NET                    a client network's passes ("policy:c:...")
 * NET is the client address masked to ipv4_prefix / ipv6_prefix in CIDR
 * form; SENDER is normalised (greylist_sender_normalise), "" for <>;
 * RECIPIENT is lower-cased.  Keys too long for the table are shortened by
 * the host (a prefix and a SHA-256).
 *
 * Input is the request (untrusted addresses, bounded by the wire parser);
 * nothing here allocates per request.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "policy.h"

#define GREY_TRIPLET_PREFIX "t:"
#define GREY_CLIENT_PREFIX "c:"
#define GREY_ADDR_MAX 512            /* a normalised address, NUL included */

#define METRIC_GREYLISTED "policy_greylist_greylisted_total"
#define METRIC_PASSED "policy_greylist_passed_total"
#define METRIC_AUTO_ALLOWED "policy_greylist_auto_allowed_total"
#define METRIC_EXEMPT "policy_greylist_exempt_total"

#define MINUTE_MS (60ULL * 1000)
#define DAY_MS (86400ULL * 1000)

/* The keys of the `greylisting:` map. */
static const char *const greylist_keys[] = {
	"delay", "max_age", "retry_window", "auto_allow_after",
	"auto_allow_interval", "ipv4_prefix", "ipv6_prefix", "exempt_ips",
	NULL,
};

/* ==== Config ==== */

/* policy_greylist_config - the `greylisting:` map (absent: off). */
int
policy_greylist_config(struct policy *p, const elemta_cfg *cfg, char *err,
    size_t errlen)
{
	const elemta_cfg *m = elemta_cfg_get(cfg, "greylisting");
	struct policy_greylist *g = &p->greylist;
	int64_t v4, v6, after;

	if (m == NULL)
		return 0;
	if (elemta_cfg_type(m) != ELEMTA_CFG_MAP) {
		snprintf(err, errlen, "%s: key 'greylisting': expected a map",
		    elemta_cfg_where(m));
		return -1;
	}
	if (elemta_cfg_check_keys(m, greylist_keys, err, errlen) != 0 ||
	    elemta_cfg_duration_ms(m, "delay", 5 * MINUTE_MS, &g->delay_ms,
	    err, errlen) != 0 ||
	    elemta_cfg_duration_ms(m, "max_age", 35 * DAY_MS, &g->max_age_ms,
	    err, errlen) != 0 ||
	    elemta_cfg_duration_ms(m, "retry_window", 2 * DAY_MS,
	    &g->retry_window_ms, err, errlen) != 0 ||
	    elemta_cfg_duration_ms(m, "auto_allow_interval", 60 * MINUTE_MS,
	    &g->auto_allow_interval_ms, err, errlen) != 0 ||
	    elemta_cfg_int(m, "auto_allow_after", 5, 0, 1000000, &after, err,
	    errlen) != 0 ||
	    elemta_cfg_int(m, "ipv4_prefix", 24, 0, 32, &v4, err, errlen) != 0 ||
	    elemta_cfg_int(m, "ipv6_prefix", 64, 0, 128, &v6, err,
	    errlen) != 0 ||
	    policy_cfg_cidrs(m, "exempt_ips", &g->exempt_ips, err, errlen) != 0)
		return -1;
	if (g->retry_window_ms == 0 || g->max_age_ms == 0 ||
	    g->delay_ms > g->retry_window_ms) {
		snprintf(err, errlen, "%s: key 'greylisting': retry_window and "
		    "max_age must be positive and delay at most retry_window",
		    elemta_cfg_where(m));
		return -1;
	}
	g->auto_allow_after = (uint32_t)after;
	g->ipv4_prefix = (unsigned)v4;
	g->ipv6_prefix = (unsigned)v6;
	g->enabled = true;
	return 0;
}

/* policy_greylist_free - release the exempt list. */
void
policy_greylist_free(struct policy *p)
{
	addr_cidr_list_free(&p->greylist.exempt_ips);
}

/* ==== Keys ==== */

/* greylist_network - the client's address masked to its family's prefix,
 * "192.0.2.0/24" or "2001:db8::/64"; false when it has no address. */
static bool
greylist_network(const struct policy_greylist *g, const elemta_ctx *ctx,
    char *buf, size_t size)
{
	const char *text = elemta_ctx_client_ip(ctx);
	char addr[ADDR_TEXT_MAX], cidr[ADDR_TEXT_MAX + 16];
	struct addr_ip ip;
	struct addr_cidr net;

	if (text == NULL || addr_ip_parse(text, &ip) != 0)
		return false;
	addr_ip_format(&ip, addr, sizeof(addr));
	snprintf(cidr, sizeof(cidr), "%s/%u", addr,
	    ip.is_v4 ? g->ipv4_prefix : g->ipv6_prefix);
	if (addr_cidr_parse(cidr, &net, NULL) != 0)
		return false;
	addr_cidr_format(&net, buf, size);
	return true;
}

/* greylist_lower - copy src lower-cased (ASCII), bounded. */
static void
greylist_lower(char *dst, size_t size, const char *src)
{
	size_t n = 0;

	while (src[n] != '\0' && n + 1 < size) {
		dst[n] = (char)tolower((unsigned char)src[n]);
		n++;
	}
	dst[n] = '\0';
}

/* greylist_is_tag - postgrey's BATV tag test: ten or more [0-9a-z]. */
static bool
greylist_is_tag(const char *s, size_t len)
{
	if (len < 10)
		return false;
	for (size_t i = 0; i < 10; i++)
		if (!isdigit((unsigned char)s[i]) && !islower((unsigned char)s[i]))
			return false;
	return true;
}

/* greylist_field - the i-th '='-separated field of s (NULL when there are
 * fewer); its length in *len; the last one runs to the end. */
static const char *
greylist_field(const char *s, unsigned i, bool last, size_t *len)
{
	for (; i > 0; i--) {
		s = strchr(s, '=');
		if (s == NULL)
			return NULL;
		s++;
	}
	*len = last ? strlen(s) : strcspn(s, "=");
	return s;
}

/* greylist_strip_variable - the local part without a BATV tag or an SRS
 * hash and timestamp, the parts that change from message to message (in
 * place). */
static void
greylist_strip_variable(char *local, size_t size)
{
	char out[GREY_ADDR_MAX];
	const char *a, *b, *c, *d;
	size_t la, lb, ld;

	if (strncmp(local, "prvs=", 5) == 0 && (a = greylist_field(local, 1,
	    false, &la)) != NULL && (b = greylist_field(local, 2, true,
	    &lb)) != NULL && memchr(b, '=', lb) == NULL) {
		/* BATV prvs=TAG=user (or prvs=user=TAG, seen in the wild):
		 * keep the side that is not the tag (postgrey's choice). */
		if (greylist_is_tag(b, lb) && !greylist_is_tag(a, la))
			snprintf(out, sizeof(out), "%.*s", (int)la, a);
		else
			snprintf(out, sizeof(out), "%.*s", (int)lb, b);
		str_copy(local, out, size);
	} else if (strncmp(local, "srs0=", 5) == 0 &&
	    (a = greylist_field(local, 3, false, &la)) != NULL &&
	    (b = greylist_field(local, 4, true, &lb)) != NULL) {
		/* SRS0=HASH=TT=domain=local: drop hash and timestamp. */
		snprintf(out, sizeof(out), "srs0=%.*s=%.*s", (int)la, a,
		    (int)lb, b);
		str_copy(local, out, size);
	} else if (strncmp(local, "srs1=", 5) == 0 &&
	    (a = greylist_field(local, 2, false, &la)) != NULL &&
	    (c = strstr(a, "==")) != NULL &&
	    (b = greylist_field(c + 2, 2, false, &lb)) != NULL &&
	    (d = greylist_field(c + 2, 3, true, &ld)) != NULL) {
		/* SRS1=HASH=forwarder==HASH=TT=domain=local: keep the
		 * forwarder, the domain and the local part. */
		snprintf(out, sizeof(out), "srs1=%.*s=%.*s=%.*s", (int)la, a,
		    (int)lb, b, (int)ld, d);
		str_copy(local, out, size);
	}
}

/* greylist_sender_normalise - see policy.h. */
void
greylist_sender_normalise(const char *sender, char *out, size_t size)
{
	char addr[GREY_ADDR_MAX], local[GREY_ADDR_MAX];
	const char *at;
	size_t n = 0, o = 0;

	greylist_lower(addr, sizeof(addr), sender != NULL ? sender : "");
	at = strrchr(addr, '@');
	if (at == NULL) {
		str_copy(out, addr, size);
		return;
	}
	snprintf(local, sizeof(local), "%.*s", (int)(at - addr), addr);
	greylist_strip_variable(local, sizeof(local));
	local[strcspn(local, "+")] = '\0';      /* an extension */
	/* Whole numbers (digit runs between non-word characters, Perl's
	 * \b\d+\b) become '#': VERP counters and ids. */
	while (local[n] != '\0' && o + 1 < size) {
		bool word_before = n > 0 && (isalnum((unsigned char)local[n - 1])
		    || local[n - 1] == '_');

		if (isdigit((unsigned char)local[n]) && !word_before) {
			size_t e = n;

			while (isdigit((unsigned char)local[e]))
				e++;
			if (!isalpha((unsigned char)local[e]) && local[e] != '_') {
				out[o++] = '#';
				n = e;
				continue;
			}
			while (n < e && o + 1 < size)
				out[o++] = local[n++];
			continue;
		}
		out[o++] = local[n++];
	}
	out[o] = '\0';
	if (o + strlen(at) < size)
		str_copy(out + o, at, size - o);
}

/* ==== The rule ==== */

/* greylist_applies - a RCPT that greylisting looks at at all. */
static bool
greylist_applies(const struct policy *p, const elemta_ctx *ctx)
{
	const char *r = elemta_ctx_recipient(ctx);

	return p->greylist.enabled && policy_phase_is(ctx, ELEMTA_PHASE_RCPT) &&
	    r != NULL && *r != '\0';
}

/* greylist_exempt_static - authenticated or in exempt_ips. */
static bool
greylist_exempt_static(const struct policy *p, const elemta_ctx *ctx)
{
	const struct policy_greylist *g = &p->greylist;
	struct addr_ip ip;
	const char *text;

	if (elemta_ctx_authenticated(ctx))
		return true;
	text = elemta_ctx_client_ip(ctx);
	return g->exempt_ips.count > 0 && text != NULL &&
	    addr_ip_parse(text, &ip) == 0 &&
	    addr_cidr_list_match(&g->exempt_ips, &ip) >= 0;
}

/* greylist_dnswl - the DNSWL answer: CONTINUE with *listed set, or
 * ELEMTA_PENDING.  No dnsbl sites: not listed. */
static enum elemta_action
greylist_dnswl(struct policy *p, const elemta_ctx *ctx, bool *listed)
{
	*listed = false;
	if (p->dnsbl_count == 0)
		return ELEMTA_CONTINUE;
	return policy_dnswl_listed(p, ctx, listed);
}

/* policy_rule_greylist_dnswl - see policy.h. */
enum elemta_action
policy_rule_greylist_dnswl(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	bool listed;

	(void)res;
	if (!greylist_applies(p, ctx) || greylist_exempt_static(p, ctx))
		return ELEMTA_CONTINUE;
	return greylist_dnswl(p, ctx, &listed) == ELEMTA_PENDING ?
	    ELEMTA_PENDING : ELEMTA_CONTINUE;
}

/* greylist_exempt - authenticated, in exempt_ips, or on a DNSWL (whose
 * answers policy_rule_greylist_dnswl fetched first). */
static bool
greylist_exempt(struct policy *p, const elemta_ctx *ctx)
{
	bool listed;

	if (greylist_exempt_static(p, ctx))
		return true;
	return greylist_dnswl(p, ctx, &listed) == ELEMTA_CONTINUE && listed;
}

/* policy_rule_greylist - see policy.h. */
enum elemta_action
policy_rule_greylist(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	const struct policy_greylist *g = &p->greylist;
	struct elemta_greylist params;
	char net[ADDR_TEXT_MAX + 8], sender[GREY_ADDR_MAX],
	    rcpt[GREY_ADDR_MAX], triplet[3 * GREY_ADDR_MAX],
	    client[ADDR_TEXT_MAX + 16];
	const char *r = elemta_ctx_recipient(ctx);
	uint64_t retry_ms = 0;
	int v;

	if (!greylist_applies(p, ctx))
		return ELEMTA_CONTINUE;
	if (greylist_exempt(p, ctx)) {
		elemta_metric_add(ctx, METRIC_EXEMPT, 1);
		return ELEMTA_CONTINUE;
	}
	if (!greylist_network(g, ctx, net, sizeof(net)))
		return ELEMTA_CONTINUE;   /* no address: nothing to key on */
	greylist_sender_normalise(elemta_ctx_sender(ctx), sender,
	    sizeof(sender));
	greylist_lower(rcpt, sizeof(rcpt), r);
	snprintf(triplet, sizeof(triplet), GREY_TRIPLET_PREFIX "%s/%s/%s",
	    net, sender, rcpt);
	snprintf(client, sizeof(client), GREY_CLIENT_PREFIX "%s", net);
	params.delay_ms = g->delay_ms;
	params.retry_window_ms = g->retry_window_ms;
	params.max_age_ms = g->max_age_ms;
	params.auto_allow_after = g->auto_allow_after;
	params.auto_allow_interval_ms = g->auto_allow_interval_ms;
	v = elemta_greylist_check(ctx, triplet, client, &params, &retry_ms);
	switch (v) {
	case ELEMTA_GREYLIST_GREYLISTED:
		elemta_metric_add(ctx, METRIC_GREYLISTED, 1);
		return elemta_result_set(res, ELEMTA_TEMPFAIL, 450, "4.2.0",
		    "Greylisted, retry in %llu seconds",
		    (unsigned long long)((retry_ms + 999) / 1000));
	case ELEMTA_GREYLIST_PASSED:
	case ELEMTA_GREYLIST_FIRST_PASS:
		elemta_metric_add(ctx, METRIC_PASSED, 1);
		return ELEMTA_CONTINUE;
	case ELEMTA_GREYLIST_AUTO_ALLOWED:
		elemta_metric_add(ctx, METRIC_AUTO_ALLOWED, 1);
		return ELEMTA_CONTINUE;
	default:
		return policy_table_failure(res);
	}
}
