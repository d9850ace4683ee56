/*
 * mx.h - where an SMTP or LMTP next hop's connections go: the MX hosts of
 * a domain (RFC 5321 §5.1, RFC 7505) or a host's own addresses, resolved
 * through common/dns.h into an ordered list of socket addresses.
 *
 * With MX (use_mx): the domain's MX records sorted by preference, equal
 * preferences shuffled; no MX record (NODATA): the domain itself
 * (implicit MX); each host's A then AAAA addresses in turn.  Decided here,
 * for every recipient of the destination:
 *   - a null MX ("0 ."; RFC 7505): PERMFAIL 5.1.10;
 *   - the domain does not exist (NXDOMAIN): PERMFAIL 5.1.2;
 *   - the MX list names this host (server.hostname, or an address and
 *     port elemta-smtpd listens on) with no better preference before it:
 *     PERMFAIL 5.4.6 "mail for DOMAIN loops back to myself" (Postfix's
 *     words); hosts of that preference and worse are dropped otherwise;
 *   - a DNS failure (SERVFAIL, timeout) of the MX lookup, or of every
 *     address lookup when no address was found: TEMPFAIL 4.4.3;
 *   - hosts that exist but none has an address: PERMFAIL 5.4.4.
 * Without MX (a next hop written [host], lmtp:host): host's addresses,
 * no loop check.
 *
 * Called by queued/relay.c, once per destination whose kept list expired.
 */
#ifndef ELEMTA_QUEUED_MX_H
#define ELEMTA_QUEUED_MX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "dns.h"
#include "outcome.h"

#define MX_HOSTS_MAX 16         /* MX hosts looked at per destination  */
#define MX_TARGETS_MAX 32       /* addresses tried per destination     */

/* One address to try, with the host it belongs to (SNI, DANE, logs). */
struct mx_target {
	char host[DNS_NAME_MAX];
	unsigned preference;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	bool secure;            /* the chain to it was DNSSEC-validated */
};

/* What a lookup found: targets in the order to try, or a failure that
 * applies to every recipient of the destination. */
struct mx_result {
	struct outcome failure;         /* OUTCOME_PENDING: targets usable */
	struct mx_target targets[MX_TARGETS_MAX];
	size_t count;
	uint32_t ttl;                   /* smallest TTL met: keep it so long */
	bool mx_secure;                 /* the MX answer was DNSSEC-secure */
};

struct mx_lookup;

/* Called once with the result (the caller's from then on: free it). */
typedef void (*mx_callback)(struct mx_result *res, void *arg);

/* mx_lookup_start - resolve name (a canonical domain or host name) for
 * port; cb runs once, from the event loop, never inside this call. */
struct mx_lookup *mx_lookup_start(struct dns_resolver *dns,
    const struct config *cfg, const char *name, bool use_mx, unsigned port,
    mx_callback cb, void *arg);
/* mx_lookup_cancel - cb will not run. */
void mx_lookup_cancel(struct mx_lookup *l);
void mx_result_free(struct mx_result *res);

/* mx_is_self - addr:port is where this host's smtpd listens (a listen
 * address, or any local address under a wildcard listen). */
bool mx_is_self(const struct config *cfg, const struct sockaddr *addr);

#endif
