/*
 * route.h - where a recipient's mail goes next, and which domains Elemta
 * serves.
 *
 * The next hops of `delivery.routes` and `delivery.relayhost` are written
 * in Postfix's transport(5) spelling and parsed once, when config_load
 * reads the file (an invalid next hop is a configuration error, reported
 * at its line), into struct route_hop: nothing downstream parses the text
 * again.  The spellings:
 *
 *   smtp:[host]:port     SMTP to host itself, no MX lookup (host may be an
 *                        IP literal: [192.0.2.1], [2001:db8::1] or
 *                        [ipv6:2001:db8::1]); port defaults to
 *                        delivery.smtp_port
 *   smtp:host[:port]     SMTP to the MX hosts of host (a domain name)
 *   lmtp:unix:/path      LMTP over a Unix socket
 *   lmtp:host[:port]     LMTP over TCP (also lmtp:[host]:port and
 *                        lmtp:inet:host:port); port defaults to 24
 *   maildir:/base        /base/<domain>/<local-part>/{tmp,new,cur}
 *   discard:[text]       accepted and dropped (logged with text)
 *   error:[5.x.x ]text   bounced with that status (default 5.0.0)
 *
 * Relative paths resolve against the configuration file's directory.
 * delivery.relayhost takes the SMTP forms with or without "smtp:"
 * ("[relay.example]:587", as Postfix's relayhost).
 *
 * Routing, first match wins (route_lookup): delivery.routes in order (by
 * recipient domain, the policy rules' domain-list syntax: "example.com"
 * that domain, ".example.com" its subdomains, "*" every domain), then
 * delivery.relayhost, then the MX of the recipient's domain.  A domain is
 * served (route_domain_is_served: smtpd's relay control accepts it from
 * anyone) when a route other than "*" names it.
 *
 * Called by common/config.c (parsing), smtpd (relay control) and
 * elemta-queued (routing).
 */
#ifndef ELEMTA_ROUTE_H
#define ELEMTA_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "error.h"

#define ROUTE_HOST_MAX 256      /* a domain (253) or an IP literal      */
#define ROUTE_PATH_MAX 4096     /* == CONFIG_PATH_MAX                   */
#define ROUTE_TEXT_MAX 256      /* error:/discard: text                 */
#define ROUTE_STATUS_MAX 16     /* "5.1.1"                              */
#define ROUTE_LMTP_PORT 24      /* RFC 2033 */
#define ROUTE_HOP_TEXT_MAX (ROUTE_PATH_MAX + 32) /* route_hop_format     */

enum route_transport {
	ROUTE_NONE,             /* no next hop (an unset relayhost)      */
	ROUTE_SMTP,
	ROUTE_LMTP,
	ROUTE_MAILDIR,
	ROUTE_DISCARD,
	ROUTE_ERROR,
};

/* One parsed next hop; which fields mean something depends on transport. */
struct route_hop {
	enum route_transport transport;
	bool mx;                        /* SMTP: deliver to host's MX hosts;
	                                 * host "" = the recipient's domain */
	char host[ROUTE_HOST_MAX];      /* SMTP, LMTP over TCP: a canonical
	                                 * domain or an IP address (no
	                                 * brackets); "" for a Unix socket  */
	bool literal;                   /* host is an IP address            */
	unsigned port;                  /* SMTP, LMTP over TCP; 0 otherwise */
	char path[ROUTE_PATH_MAX];      /* LMTP socket, Maildir base:
	                                 * absolute                         */
	char status[ROUTE_STATUS_MAX];  /* ERROR: "5.x.x"                   */
	char text[ROUTE_TEXT_MAX];      /* ERROR, DISCARD: the reason       */
};

/* One delivery.routes entry. */
struct route {
	struct addr_domain_list domains; /* canonical; empty when all       */
	bool all;                       /* domains: ["*"]                   */
	struct route_hop hop;
};

struct config;

/* route_hop_parse - a next hop in transport(5) spelling into hop.
 * Relative paths resolve against dir; an SMTP hop without a port gets
 * smtp_port.  0, or -1 with err saying what is wrong and what is
 * expected. */
int route_hop_parse(const char *text, const char *dir, unsigned smtp_port,
    struct route_hop *hop, struct error *err);
/* route_relayhost_parse - delivery.relayhost: an SMTP next hop with or
 * without "smtp:" ("" = none: transport ROUTE_NONE). */
int route_relayhost_parse(const char *text, unsigned smtp_port,
    struct route_hop *hop, struct error *err);
/* route_hop_format - hop in the spelling route_hop_parse reads back
 * (absolute paths, canonical host, explicit port); buf holds
 * ROUTE_HOP_TEXT_MAX. */
char *route_hop_format(const struct route_hop *hop, char *buf, size_t size);
/* route_transport_name - "smtp", "lmtp", "maildir", "discard", "error",
 * "none". */
const char *route_transport_name(enum route_transport t);

/* route_domains_add - one entry of a route's domains list: "*" (every
 * domain, alone in its list) or a domain-list entry (addr.h). */
int route_domains_add(struct route *r, const char *entry, struct error *err);
/* route_free - the route's domain list (not r itself). */
void route_free(struct route *r);

/* route_lookup - the next hop for a recipient domain: the first route
 * that matches, else delivery.relayhost, else cfg's MX hop (SMTP, mx,
 * host "": the recipient's domain).  Never NULL; points into cfg. */
const struct route_hop *route_lookup(const struct config *cfg,
    const char *domain);
/* route_domain_is_served - domain is named by a route other than "*"
 * (compared in canonical form; an address literal or a domain without
 * one is not served). */
bool route_domain_is_served(const struct config *cfg, const char *domain);

#endif
