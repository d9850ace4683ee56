/*
 * mx.c - a next hop's addresses from DNS: MX lookup, null MX, implicit MX,
 * loops back to this host, then each host's A and AAAA records (contract
 * in mx.h).
 *
 * Called by queued/relay.c.  Every answer comes from common/dns.c, whose
 * callbacks never run inside dns_query, so mx_lookup_start never calls
 * back before it returns either.  The records are untrusted: names are
 * bounded by dns.h, the host and address counts by MX_HOSTS_MAX and
 * MX_TARGETS_MAX.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "mx.h"

#define MX_HOST_ADDRS_MAX 8      /* addresses kept per host and family */

struct mx_lookup;

/* One MX host and what its address lookups found ([0]: A, [1]: AAAA). */
struct mx_host {
	struct mx_lookup *l;
	char name[DNS_NAME_MAX];
	unsigned preference;
	struct dns_query *q[2];         /* in flight                     */
	uint8_t addr[2][MX_HOST_ADDRS_MAX][16];
	size_t nfound[2];
	enum dns_status status[2];
	bool secure[2];
};

struct mx_lookup {
	struct dns_resolver *dns;
	const struct config *cfg;
	char name[DNS_NAME_MAX];
	bool use_mx;
	unsigned port;
	mx_callback cb;
	void *arg;
	struct dns_query *mxq;
	struct mx_host hosts[MX_HOSTS_MAX];
	size_t nhosts;
	unsigned waiting;               /* address queries in flight     */
	bool implicit;                  /* no MX record: the name itself */
	char tempfail_why[256];         /* an address lookup's failure   */
	struct mx_result *res;
};

/*==== Finishing ====*/

/* mx_finish - hand the result over and free l. */
static void
mx_finish(struct mx_lookup *l)
{
	struct mx_result *res = l->res;
	mx_callback cb = l->cb;
	void *arg = l->arg;

	l->res = NULL;
	free(l);
	cb(res, arg);
}

/* mx_fail - every recipient gets result/status/text; finish. */
static void
mx_fail(struct mx_lookup *l, enum outcome_result result,
    const char *enhanced, const char *why)
{
	outcome_set(&l->res->failure, result, 0, enhanced, "%s", why);
	mx_finish(l);
}

/* mx_ttl - keep the smallest TTL. */
static void
mx_ttl(struct mx_lookup *l, uint32_t ttl)
{
	if (ttl < l->res->ttl)
		l->res->ttl = ttl;
}

/*==== This host ====*/

/* mx_same_ip - a and b (AF_INET/AF_INET6) hold the same address. */
static bool
mx_same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		    &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
	return false;
}

/* mx_local_address - addr is one of this machine's interface addresses. */
static bool
mx_local_address(const struct sockaddr *addr)
{
	struct ifaddrs *ifs = NULL;
	bool found = false;

	if (getifaddrs(&ifs) != 0)
		return false;
	for (struct ifaddrs *i = ifs; i != NULL && !found; i = i->ifa_next)
		found = i->ifa_addr != NULL && mx_same_ip(i->ifa_addr, addr);
	freeifaddrs(ifs);
	return found;
}

/* mx_is_self - see mx.h. */
bool
mx_is_self(const struct config *cfg, const struct sockaddr *addr)
{
	unsigned port;

	if (addr->sa_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)addr)->sin_port);
	else if (addr->sa_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)addr)->sin6_port);
	else
		return false;
	for (size_t i = 0; i < cfg->server.listen_count; i++) {
		const struct config_listen *li = &cfg->server.listen[i];
		struct sockaddr_storage ss;
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		if (li->port != port)
			continue;
		memset(&ss, 0, sizeof(ss));
		if (inet_pton(AF_INET, li->host, &s4->sin_addr) == 1)
			ss.ss_family = AF_INET;
		else if (inet_pton(AF_INET6, li->host, &s6->sin6_addr) == 1)
			ss.ss_family = AF_INET6;
		else
			continue;
		if ((ss.ss_family == AF_INET && s4->sin_addr.s_addr ==
		    htonl(INADDR_ANY)) || (ss.ss_family == AF_INET6 &&
		    IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))) {
			if (mx_local_address(addr))
				return true;
		} else if (mx_same_ip((struct sockaddr *)&ss, addr)) {
			return true;
		}
	}
	return false;
}

/* mx_drop_from - the MX hosts from preference pref on are this host or
 * worse: drop them.  Postfix's rule: only better ones may be tried. */
static void
mx_drop_from(struct mx_lookup *l, unsigned pref)
{
	size_t n = 0;

	while (n < l->nhosts && l->hosts[n].preference < pref)
		n++;
	l->nhosts = n;
}

/* mx_loop - say the mail loops (no MX host better than this one). */
static void
mx_loop(struct mx_lookup *l)
{
	char why[DNS_NAME_MAX + 64];

	snprintf(why, sizeof(why), "mail for %s loops back to myself",
	    l->name);
	mx_fail(l, OUTCOME_PERMFAIL, "5.4.6", why);
}

/*==== Addresses ====*/

/* mx_target_fill - target t from address i of family f of host. */
static void
mx_target_fill(const struct mx_lookup *l, const struct mx_host *host, int f,
    size_t i, struct mx_target *t)
{
	memset(t, 0, sizeof(*t));
	str_copy(t->host, host->name, sizeof(t->host));
	t->preference = host->preference;
	t->secure = host->secure[f] && (l->implicit || !l->use_mx ||
	    l->res->mx_secure);
	if (f == 0) {
		struct sockaddr_in *s = (struct sockaddr_in *)&t->addr;

		s->sin_family = AF_INET;
		s->sin_port = htons((uint16_t)l->port);
		memcpy(&s->sin_addr, host->addr[f][i], 4);
		t->addrlen = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&t->addr;

		s->sin6_family = AF_INET6;
		s->sin6_port = htons((uint16_t)l->port);
		memcpy(&s->sin6_addr, host->addr[f][i], 16);
		t->addrlen = sizeof(*s);
	}
}

/* mx_targets_upto - after a cut: the addresses of the hosts left. */
static void
mx_targets_upto(struct mx_lookup *l)
{
	struct mx_result *res = l->res;

	for (size_t h = 0; h < l->nhosts; h++)
		for (int f = 0; f < 2; f++)
			for (size_t i = 0; i < l->hosts[h].nfound[f] &&
			    res->count < MX_TARGETS_MAX; i++)
				mx_target_fill(l, &l->hosts[h], f, i,
				    &res->targets[res->count++]);
}

/* mx_targets - the found addresses, host by host (A, then AAAA), into the
 * result; addresses of this host cut the list (loop). */
static void
mx_targets(struct mx_lookup *l)
{
	struct mx_result *res = l->res;

	for (size_t h = 0; h < l->nhosts; h++) {
		struct mx_host *host = &l->hosts[h];

		for (int f = 0; f < 2; f++)
			for (size_t i = 0; i < host->nfound[f]; i++) {
				struct mx_target t;

				mx_target_fill(l, host, f, i, &t);
				if (l->use_mx && mx_is_self(l->cfg,
				    (const struct sockaddr *)&t.addr)) {
					/* This host and worse: none of them. */
					mx_drop_from(l, host->preference);
					res->count = 0;
					mx_targets_upto(l);
					return;
				}
				if (res->count < MX_TARGETS_MAX)
					res->targets[res->count++] = t;
			}
	}
}

/* mx_addresses_done - every address lookup answered: the result. */
static void
mx_addresses_done(struct mx_lookup *l)
{
	bool tempfail = false;
	char why[DNS_NAME_MAX + sizeof(l->tempfail_why) + 64];

	mx_targets(l);
	if (l->res->count > 0) {
		mx_finish(l);
		return;
	}
	if (l->nhosts == 0) {
		mx_loop(l);
		return;
	}
	for (size_t h = 0; h < l->nhosts; h++)
		for (int f = 0; f < 2; f++)
			tempfail |= l->hosts[h].status[f] == DNS_TEMPFAIL;
	if (tempfail) {
		snprintf(why, sizeof(why), "cannot find the address of %s%s: "
		    "%s", l->implicit || !l->use_mx ? "" : "the MX hosts of ",
		    l->name, l->tempfail_why);
		mx_fail(l, OUTCOME_TEMPFAIL, "4.4.3", why);
		return;
	}
	if (l->implicit && l->hosts[0].status[0] == DNS_NXDOMAIN) {
		snprintf(why, sizeof(why), "domain %s does not exist", l->name);
		mx_fail(l, OUTCOME_PERMFAIL, "5.1.2", why);
		return;
	}
	snprintf(why, sizeof(why), "%s%s has no address (A or AAAA record)",
	    l->implicit || !l->use_mx ? "" : "no MX host of ", l->name);
	mx_fail(l, OUTCOME_PERMFAIL, "5.4.4", why);
}

/* mx_address_answer - one A or AAAA answer for one host. */
static void
mx_address_answer(const struct dns_answer *a, void *arg)
{
	struct mx_host *host = arg;
	struct mx_lookup *l = host->l;
	int f = a->qtype == DNS_TYPE_A ? 0 : 1;

	host->q[f] = NULL;
	host->status[f] = a->status;
	host->secure[f] = a->secure;
	if (a->status == DNS_TEMPFAIL)
		snprintf(l->tempfail_why, sizeof(l->tempfail_why), "%s/%s: %s",
		    a->qname, f == 0 ? "A" : "AAAA", a->why);
	if (a->status == DNS_OK)
		mx_ttl(l, a->ttl);
	for (size_t i = 0; a->status == DNS_OK && i < a->count &&
	    host->nfound[f] < MX_HOST_ADDRS_MAX; i++)
		memcpy(host->addr[f][host->nfound[f]++], f == 0 ?
		    a->records[i].u.a : a->records[i].u.aaaa, f == 0 ? 4 : 16);
	if (--l->waiting == 0)
		mx_addresses_done(l);
}

/* mx_resolve_hosts - A and AAAA of every host, at once. */
static void
mx_resolve_hosts(struct mx_lookup *l)
{
	static const enum dns_type types[2] = { DNS_TYPE_A, DNS_TYPE_AAAA };

	l->waiting = (unsigned)l->nhosts * 2;
	for (size_t h = 0; h < l->nhosts; h++)
		l->hosts[h].l = l;
	for (size_t h = 0; h < l->nhosts; h++)
		for (int f = 0; f < 2; f++)
			l->hosts[h].q[f] = dns_query(l->dns, l->hosts[h].name,
			    types[f], mx_address_answer, &l->hosts[h]);
}

/*==== MX ====*/

/* mx_sort - by preference, equal preferences in random order. */
static void
mx_sort(struct mx_lookup *l)
{
	/* Shuffle first (Fisher-Yates), then a stable insertion sort. */
	for (size_t i = l->nhosts; i > 1; i--) {
		size_t j = (size_t)random() % i;
		struct mx_host t = l->hosts[i - 1];

		l->hosts[i - 1] = l->hosts[j];
		l->hosts[j] = t;
	}
	for (size_t i = 1; i < l->nhosts; i++) {
		struct mx_host t = l->hosts[i];
		size_t j = i;

		while (j > 0 && l->hosts[j - 1].preference > t.preference) {
			l->hosts[j] = l->hosts[j - 1];
			j--;
		}
		l->hosts[j] = t;
	}
}

/* mx_answer - the MX records of the destination. */
static void
mx_answer(const struct dns_answer *a, void *arg)
{
	struct mx_lookup *l = arg;
	char why[512];
	bool null_mx = false;

	l->mxq = NULL;
	switch (a->status) {
	case DNS_TEMPFAIL:
		snprintf(why, sizeof(why), "MX lookup for %s failed: %s",
		    l->name, a->why);
		mx_fail(l, OUTCOME_TEMPFAIL, "4.4.3", why);
		return;
	case DNS_PERMFAIL:
		snprintf(why, sizeof(why), "MX lookup for %s failed: %s",
		    l->name, a->why);
		mx_fail(l, OUTCOME_PERMFAIL, "5.1.2", why);
		return;
	case DNS_NXDOMAIN:
		snprintf(why, sizeof(why), "domain %s does not exist", l->name);
		mx_fail(l, OUTCOME_PERMFAIL, "5.1.2", why);
		return;
	case DNS_NODATA:
		l->implicit = true;
		str_copy(l->hosts[0].name, l->name, sizeof(l->hosts[0].name));
		l->nhosts = 1;
		break;
	case DNS_OK:
		mx_ttl(l, a->ttl);
		l->res->mx_secure = a->secure;
		for (size_t i = 0; i < a->count; i++) {
			const struct dns_mx *mx = &a->records[i].u.mx;

			if (strcmp(mx->host, ".") == 0) {
				null_mx = true;
				continue;
			}
			if (l->nhosts == MX_HOSTS_MAX)
				continue;
			str_copy(l->hosts[l->nhosts].name, mx->host,
			    sizeof(l->hosts[l->nhosts].name));
			l->hosts[l->nhosts].preference = mx->preference;
			l->nhosts++;
		}
		if (null_mx && l->nhosts == 0) {
			snprintf(why, sizeof(why), "domain %s does not accept "
			    "mail (null MX)", l->name);
			mx_fail(l, OUTCOME_PERMFAIL, "5.1.10", why);
			return;
		}
		mx_sort(l);
		for (size_t i = 0; i < l->nhosts; i++)
			if (strcasecmp(l->hosts[i].name,
			    l->cfg->server.hostname) == 0) {
				mx_drop_from(l, l->hosts[i].preference);
				break;
			}
		if (l->nhosts == 0) {
			mx_loop(l);
			return;
		}
		break;
	}
	mx_resolve_hosts(l);
}

/*==== The interface ====*/

/* mx_lookup_start - see mx.h. */
struct mx_lookup *
mx_lookup_start(struct dns_resolver *dns, const struct config *cfg,
    const char *name, bool use_mx, unsigned port, mx_callback cb, void *arg)
{
	struct mx_lookup *l = xcalloc(1, sizeof(*l));

	l->dns = dns;
	l->cfg = cfg;
	str_copy(l->name, name, sizeof(l->name));
	l->use_mx = use_mx;
	l->port = port;
	l->cb = cb;
	l->arg = arg;
	l->res = xcalloc(1, sizeof(*l->res));
	l->res->failure.result = OUTCOME_PENDING;
	l->res->ttl = UINT32_MAX;
	if (use_mx) {
		l->mxq = dns_query(dns, l->name, DNS_TYPE_MX, mx_answer, l);
	} else {
		str_copy(l->hosts[0].name, l->name, sizeof(l->hosts[0].name));
		l->nhosts = 1;
		mx_resolve_hosts(l);
	}
	return l;
}

/* mx_lookup_cancel - see mx.h. */
void
mx_lookup_cancel(struct mx_lookup *l)
{
	if (l->mxq != NULL)
		dns_query_cancel(l->mxq);
	for (size_t h = 0; h < l->nhosts; h++)
		for (int f = 0; f < 2; f++)
			if (l->hosts[h].q[f] != NULL)
				dns_query_cancel(l->hosts[h].q[f]);
	free(l->res);
	free(l);
}

/* mx_result_free - see mx.h. */
void
mx_result_free(struct mx_result *res)
{
	free(res);
}
