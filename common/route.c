/*
 * route.c - next hops in transport(5) spelling, routing by recipient
 * domain, and the served domains of relay control.
 *
 * common/config.c calls the parsers once per delivery.routes entry and
 * for delivery.relayhost while it loads the file; smtpd's RCPT relay
 * check calls route_domain_is_served, elemta-queued route_lookup.  The
 * parsers are strict (a next hop that would fail at delivery time fails
 * at check-config instead) and name the expected spelling in every error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "config.h"
#include "domain.h"
#include "log.h"
#include "route.h"

#define ROUTE_SHOW_MAX 80

static const char route_expected[] = "expected smtp:[host]:port, "
    "smtp:host[:port], lmtp:unix:/path, lmtp:host[:port], maildir:/path, "
    "discard: or error:5.x.x text";

/* Spellings, in enum route_transport order. */
static const char *const route_transport_names[] = {
	"none", "smtp", "lmtp", "maildir", "discard", "error",
};

/* route_transport_name - see route.h. */
const char *
route_transport_name(enum route_transport t)
{
	if ((unsigned)t < sizeof(route_transport_names) /
	    sizeof(route_transport_names[0]))
		return route_transport_names[t];
	return "?";
}

/* route_show - text escaped and bounded for an error message. */
static const char *
route_show(char *buf, size_t size, const char *text)
{
	return log_escape(buf, size, text, strlen(text));
}

/* route_prefix - the length of "name:" when text starts with it (any
 * case), else 0. */
static size_t
route_prefix(const char *text, const char *name)
{
	size_t n = strlen(name);

	if (strncasecmp(text, name, n) == 0 && text[n] == ':')
		return n + 1;
	return 0;
}

/* route_port_parse - "1".."65535" only. */
static int
route_port_parse(const char *text, unsigned *port)
{
	unsigned long v = 0;

	if (text[0] == '\0' || strspn(text, "0123456789") != strlen(text) ||
	    strlen(text) > 5)
		return -1;
	v = strtoul(text, NULL, 10);
	if (v < 1 || v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

/* route_host_name - a domain name into its canonical form. */
static int
route_host_name(const char *name, size_t len, struct route_hop *hop,
    struct error *err)
{
	char shown[ROUTE_SHOW_MAX], host[ROUTE_HOST_MAX];
	struct error why;

	snprintf(host, sizeof(host), "%.*s", (int)len, name);
	route_show(shown, sizeof(shown), host);
	if (len == 0)
		return error_set(err, "the host is missing (%s)",
		    route_expected);
	if (len >= sizeof(host) || strcspn(host, "/@ :[]") != len)
		return error_set(err, "'%s' is not a host name", shown);
	if (domain_canonical(name, len, hop->host, sizeof(hop->host),
	    &why) < 0)
		return error_set(err, "'%s' is not a host name: %s", shown,
		    why.text);
	return 0;
}

/* route_host_literal - an IP address (IPv6 optionally "ipv6:"-tagged)
 * into its canonical text; -1 when it is none. */
static int
route_host_literal(const char *text, size_t len, struct route_hop *hop)
{
	char buf[ADDR_TEXT_MAX];
	struct addr_ip ip;
	bool tagged = len > 5 && strncasecmp(text, "ipv6:", 5) == 0;

	if (tagged) {
		text += 5;
		len -= 5;
	}
	if (len >= sizeof(buf))
		return -1;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (addr_ip_parse(buf, &ip) < 0 || (tagged && ip.is_v4))
		return -1;
	addr_ip_format(&ip, hop->host, sizeof(hop->host));
	hop->literal = true;
	return 0;
}

/* route_hostport - "[host]:port", "[host]", "host:port" or "host" into
 * hop.  Brackets turn the MX lookup off; without them an SMTP hop
 * (mx_allowed) looks up host's MX, so host must be a domain. */
static int
route_hostport(const char *text, unsigned default_port, bool mx_allowed,
    struct route_hop *hop, struct error *err)
{
	char shown[ROUTE_SHOW_MAX];
	const char *host = text, *rest;
	size_t len;

	route_show(shown, sizeof(shown), text);
	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (close == NULL)
			return error_set(err, "'%s': missing ']' (%s)", shown,
			    route_expected);
		host = text + 1;
		len = (size_t)(close - host);
		rest = close + 1;
		if (len == 0)
			return error_set(err, "'%s': the host is missing (%s)",
			    shown, route_expected);
		if (route_host_literal(host, len, hop) < 0 &&
		    route_host_name(host, len, hop, err) < 0)
			return -1;
		hop->mx = false;
	} else {
		const char *colon = strchr(text, ':');

		len = colon != NULL ? (size_t)(colon - text) : strlen(text);
		rest = text + len;
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			return error_set(err, "'%s': write IPv6 addresses in "
			    "brackets, e.g. [2001:db8::1]:25", shown);
		if (route_host_literal(host, len, hop) == 0) {
			if (mx_allowed)
				return error_set(err, "'%s': an IP address has "
				    "no MX; write it in brackets, e.g. "
				    "smtp:[%s]", shown, hop->host);
		} else if (route_host_name(host, len, hop, err) < 0) {
			return -1;
		}
		hop->mx = mx_allowed;
	}
	hop->port = default_port;
	if (rest[0] == '\0')
		return 0;
	if (rest[0] != ':' || route_port_parse(rest + 1, &hop->port) < 0)
		return error_set(err, "'%s': the port must be a number from 1 "
		    "to 65535 after ':' (%s)", shown, route_expected);
	return 0;
}

/* route_path - an absolute or config-relative path into out. */
static int
route_path(const char *text, const char *dir, char *out, size_t size,
    struct error *err)
{
	if (text[0] == '\0')
		return error_set(err, "the path is missing (%s)",
		    route_expected);
	return config_path_resolve(dir, text, out, size, err);
}

/* route_error_hop - "5.x.x text", "text" or "" after "error:". */
static int
route_error_hop(const char *text, struct route_hop *hop, struct error *err)
{
	char shown[ROUTE_SHOW_MAX];
	const char *p = text;
	size_t code = strcspn(text, " ");

	str_copy(hop->status, "5.0.0", sizeof(hop->status));
	if (text[0] >= '0' && text[0] <= '9') {
		unsigned a, b, c;
		int used = 0;

		if (code >= sizeof(hop->status) ||
		    sscanf(text, "%1u.%3u.%3u%n", &a, &b, &c, &used) != 3 ||
		    (size_t)used != code || a != 5)
			return error_set(err, "'%s': the status must be 5.x.x "
			    "(an error: next hop bounces; e.g. error:5.1.1 "
			    "no such user)", route_show(shown, sizeof(shown),
			    text));
		snprintf(hop->status, sizeof(hop->status), "%u.%u.%u", a, b, c);
		p = text + code;
		while (*p == ' ')
			p++;
	}
	if (str_copy(hop->text, p, sizeof(hop->text)) >= sizeof(hop->text))
		return error_set(err, "the text is too long (max %zu bytes)",
		    sizeof(hop->text) - 1);
	return 0;
}

/* route_hop_parse - see route.h. */
int
route_hop_parse(const char *text, const char *dir, unsigned smtp_port,
    struct route_hop *hop, struct error *err)
{
	char shown[ROUTE_SHOW_MAX];
	struct sockaddr_un sun;
	size_t n;

	memset(hop, 0, sizeof(*hop));
	for (const char *p = text; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return error_set(err, "the next hop contains a control "
			    "character");
	if ((n = route_prefix(text, "smtp")) > 0) {
		hop->transport = ROUTE_SMTP;
		return route_hostport(text + n, smtp_port, true, hop, err);
	}
	if ((n = route_prefix(text, "lmtp")) > 0) {
		const char *rest = text + n;
		size_t u;

		hop->transport = ROUTE_LMTP;
		/* lmtp:unix:/path - the config's own unix: spelling. */
		u = strncasecmp(rest, CONFIG_UNIX_PREFIX,
		    CONFIG_UNIX_PREFIX_LEN) == 0 ? CONFIG_UNIX_PREFIX_LEN : 0;
		if (u == 0) {
			rest += route_prefix(rest, "inet");
			return route_hostport(rest, ROUTE_LMTP_PORT, false, hop,
			    err);
		}
		if (route_path(rest + u, dir, hop->path, sizeof(hop->path),
		    err) < 0)
			return -1;
		if (strlen(hop->path) >= sizeof(sun.sun_path))
			return error_set(err, "socket path '%.200s' is %zu "
			    "bytes; Unix socket paths are limited to %zu",
			    hop->path, strlen(hop->path),
			    sizeof(sun.sun_path) - 1);
		return 0;
	}
	if ((n = route_prefix(text, "maildir")) > 0) {
		hop->transport = ROUTE_MAILDIR;
		return route_path(text + n, dir, hop->path, sizeof(hop->path),
		    err);
	}
	if ((n = route_prefix(text, "discard")) > 0) {
		hop->transport = ROUTE_DISCARD;
		if (str_copy(hop->text, text + n, sizeof(hop->text)) >=
		    sizeof(hop->text))
			return error_set(err, "the text is too long (max %zu "
			    "bytes)", sizeof(hop->text) - 1);
		return 0;
	}
	if ((n = route_prefix(text, "error")) > 0) {
		hop->transport = ROUTE_ERROR;
		return route_error_hop(text + n, hop, err);
	}
	return error_set(err, "'%s' is not a next hop (%s)",
	    route_show(shown, sizeof(shown), text), route_expected);
}

/* route_relayhost_parse - see route.h. */
int
route_relayhost_parse(const char *text, unsigned smtp_port,
    struct route_hop *hop, struct error *err)
{
	char shown[ROUTE_SHOW_MAX];

	memset(hop, 0, sizeof(*hop));
	if (text[0] == '\0')
		return 0;
	if (route_prefix(text, "smtp") > 0)
		return route_hop_parse(text, "/", smtp_port, hop, err);
	if (route_prefix(text, "lmtp") || route_prefix(text, "maildir") ||
	    route_prefix(text, "discard") || route_prefix(text, "error"))
		return error_set(err, "'%s': the relay host is an SMTP next "
		    "hop ([host]:port or host:port); send mail elsewhere with "
		    "a delivery.routes entry for \"*\"",
		    route_show(shown, sizeof(shown), text));
	for (const char *p = text; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return error_set(err, "the relay host contains a "
			    "control character");
	hop->transport = ROUTE_SMTP;
	return route_hostport(text, smtp_port, true, hop, err);
}

/* route_hop_format - see route.h. */
char *
route_hop_format(const struct route_hop *hop, char *buf, size_t size)
{
	const char *name = route_transport_name(hop->transport);

	switch (hop->transport) {
	case ROUTE_SMTP:
		if (hop->mx && hop->host[0] == '\0')
			snprintf(buf, size, "smtp: (MX of the recipient's "
			    "domain, port %u)", hop->port);
		else if (hop->mx)
			snprintf(buf, size, "smtp:%s:%u", hop->host, hop->port);
		else
			snprintf(buf, size, "smtp:[%s]:%u", hop->host,
			    hop->port);
		break;
	case ROUTE_LMTP:
		if (hop->path[0] != '\0')
			snprintf(buf, size, "lmtp:unix:%s", hop->path);
		else
			snprintf(buf, size, "lmtp:[%s]:%u", hop->host,
			    hop->port);
		break;
	case ROUTE_MAILDIR:
		snprintf(buf, size, "maildir:%s", hop->path);
		break;
	case ROUTE_DISCARD:
		snprintf(buf, size, "discard:%s", hop->text);
		break;
	case ROUTE_ERROR:
		snprintf(buf, size, "error:%s%s%s", hop->status,
		    hop->text[0] ? " " : "", hop->text);
		break;
	case ROUTE_NONE:
	default:
		snprintf(buf, size, "%s", name);
		break;
	}
	return buf;
}

/* route_domains_add - see route.h. */
int
route_domains_add(struct route *r, const char *entry, struct error *err)
{
	bool star = strcmp(entry, "*") == 0;

	if ((star && r->domains.count > 0) || (!star && r->all))
		return error_set(err, "\"*\" matches every domain: give it a "
		    "route of its own (list it last)");
	if (star) {
		r->all = true;
		return 0;
	}
	return addr_domain_list_add(&r->domains, entry, err);
}

/* route_free - see route.h. */
void
route_free(struct route *r)
{
	addr_domain_list_free(&r->domains);
}

/* route_lookup - see route.h. */
const struct route_hop *
route_lookup(const struct config *cfg, const char *domain)
{
	for (size_t i = 0; i < cfg->delivery.route_count; i++) {
		const struct route *r = &cfg->delivery.routes[i];

		if (r->all || (domain != NULL &&
		    addr_domain_list_match(&r->domains, domain)))
			return &r->hop;
	}
	if (cfg->delivery.relayhost.transport != ROUTE_NONE)
		return &cfg->delivery.relayhost;
	return &cfg->delivery.mx;
}

/* route_domain_is_served - see route.h. */
bool
route_domain_is_served(const struct config *cfg, const char *domain)
{
	if (domain == NULL || domain[0] == '\0' || domain[0] == '[')
		return false;
	for (size_t i = 0; i < cfg->delivery.route_count; i++) {
		const struct route *r = &cfg->delivery.routes[i];

		if (!r->all && addr_domain_list_match(&r->domains, domain))
			return true;
	}
	return false;
}
