/*
 * addr.c - IP addresses, CIDR lists and mail domain matching.
 *
 * Called by smtpd (canonical client addresses for requests and logs),
 * policyd's rules (blocklists, exemptions, reputation, domain lists) and
 * the counter keys (IPv6 clients keyed by their /64).  Lists are parsed
 * and validated once at start-up; matching allocates only while libidn2
 * maps a non-ASCII domain.
 *
 * IPv4 is stored IPv4-mapped (::ffff:a.b.c.d), and IPv6 text that is an
 * IPv4-mapped address (a dual-stack socket's view of an IPv4 client) is
 * the same IPv4 address: one client, one canonical text, one counter key.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "domain.h"
#include "log.h"

#define ADDR_DOMAIN_MAX 253

static const uint8_t addr_v4_mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
};

/* addr_is_mapped - whether bytes are in ::ffff:0:0/96. */
static bool
addr_is_mapped(const uint8_t bytes[16])
{
	return memcmp(bytes, addr_v4_mapped_prefix, 12) == 0;
}

/* addr_set_v4 - store a 4-byte IPv4 address IPv4-mapped. */
static void
addr_set_v4(struct addr_ip *out, const void *v4)
{
	memcpy(out->bytes, addr_v4_mapped_prefix, 12);
	memcpy(out->bytes + 12, v4, 4);
	out->is_v4 = true;
}

/* addr_set_v6 - store 16 bytes; a mapped address counts as IPv4. */
static void
addr_set_v6(struct addr_ip *out, const void *v6)
{
	memcpy(out->bytes, v6, 16);
	out->is_v4 = addr_is_mapped(out->bytes);
}

/* addr_parse_text - like addr_ip_parse; *dotted says whether the text was
 * IPv4 syntax (a CIDR prefix is then in IPv4 terms). */
static int
addr_parse_text(const char *text, struct addr_ip *out, bool *dotted)
{
	struct in_addr v4;
	struct in6_addr v6;

	if (text == NULL || text[0] == '\0')
		return -1;
	if (inet_pton(AF_INET, text, &v4) == 1) {
		addr_set_v4(out, &v4);
		*dotted = true;
		return 0;
	}
	if (inet_pton(AF_INET6, text, &v6) == 1) {
		addr_set_v6(out, &v6);
		*dotted = false;
		return 0;
	}
	return -1;
}

/* addr_ip_parse - text (IPv4, IPv6, IPv4-mapped) to address. */
int
addr_ip_parse(const char *text, struct addr_ip *out)
{
	bool dotted;

	return addr_parse_text(text, out, &dotted);
}

/* addr_ip_from_sockaddr - from a socket address (AF_INET / AF_INET6). */
int
addr_ip_from_sockaddr(const struct sockaddr *sa, struct addr_ip *out)
{
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		addr_set_v4(out, &sin->sin_addr);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		addr_set_v6(out, &sin6->sin6_addr);
		return 0;
	}
	return -1;
}

/* addr_format_v6 - RFC 5952 text: lower-case hex without leading zeros,
 * the longest run (first on a tie) of two or more zero groups as "::". */
static void
addr_format_v6(const uint8_t b[16], char *buf, size_t size)
{
	char tmp[ADDR_TEXT_MAX];
	unsigned words[8];
	int best = -1, best_len = 0, run = -1, run_len = 0;
	size_t off = 0;

	for (int i = 0; i < 8; i++) {
		words[i] = (unsigned)b[2 * i] << 8 | b[2 * i + 1];
		if (words[i] == 0) {
			if (run < 0) {
				run = i;
				run_len = 0;
			}
			run_len++;
			if (run_len > best_len) {
				best = run;
				best_len = run_len;
			}
		} else {
			run = -1;
		}
	}
	if (best_len < 2)
		best = -1;
	for (int i = 0; i < 8; i++) {
		if (i == best) {
			tmp[off++] = ':';
			tmp[off++] = ':';
			i += best_len - 1;
			continue;
		}
		if (i > 0 && i != best + best_len)
			tmp[off++] = ':';
		off += (size_t)snprintf(tmp + off, sizeof(tmp) - off, "%x",
		    words[i]);
	}
	tmp[off] = '\0';
	str_copy(buf, tmp, size);
}

/* addr_ip_format - canonical text: dotted quad for IPv4 and IPv4-mapped,
 * RFC 5952 for IPv6. */
char *
addr_ip_format(const struct addr_ip *ip, char *buf, size_t size)
{
	if (ip->is_v4 || addr_is_mapped(ip->bytes)) {
		/* By hand: policyd formats every request's client address,
		 * and snprintf was a visible share of a decision. */
		char tmp[ADDR_TEXT_MAX], *p = tmp;

		for (int i = 12; i < 16; i++) {
			unsigned v = ip->bytes[i];

			if (v >= 100)
				*p++ = (char)('0' + v / 100);
			if (v >= 10)
				*p++ = (char)('0' + v / 10 % 10);
			*p++ = (char)('0' + v % 10);
			*p++ = i < 15 ? '.' : '\0';
		}
		str_copy(buf, tmp, size);
	} else {
		addr_format_v6(ip->bytes, buf, size);
	}
	return buf;
}

/* addr_mask - clear every bit after the first prefix bits. */
static void
addr_mask(uint8_t b[16], unsigned prefix)
{
	for (unsigned i = 0; i < 16; i++) {
		if (prefix >= 8 * (i + 1))
			continue;
		if (prefix <= 8 * i)
			b[i] = 0;
		else
			b[i] &= (uint8_t)(0xff00u >> (prefix - 8 * i));
	}
}

/* addr_ip_key - the address for IPv4, the /v6_prefix network with its
 * length for IPv6 ("2001:db8:1:2::/64"). */
char *
addr_ip_key(const struct addr_ip *ip, unsigned v6_prefix, char *buf,
    size_t size)
{
	uint8_t net[16];
	char text[ADDR_TEXT_MAX], tmp[ADDR_TEXT_MAX + 8];

	if (ip->is_v4 || addr_is_mapped(ip->bytes))
		return addr_ip_format(ip, buf, size);
	if (v6_prefix > 128)
		v6_prefix = 128;
	memcpy(net, ip->bytes, 16);
	addr_mask(net, v6_prefix);
	addr_format_v6(net, text, sizeof(text));
	snprintf(tmp, sizeof(tmp), "%s/%u", text, v6_prefix);
	str_copy(buf, tmp, size);
	return buf;
}

/* addr_cidr_parse - "192.0.2.0/24", "2001:db8::/32" or a bare address.
 * Host bits after the prefix are cleared, as most CIDR tables do. */
int
addr_cidr_parse(const char *text, struct addr_cidr *out, struct error *err)
{
	char esc[128], hesc[128], host[ADDR_TEXT_MAX];
	const char *slash;
	size_t hostlen;
	unsigned long prefix, max;
	bool dotted;

	if (text == NULL || text[0] == '\0')
		return error_set(err, "invalid CIDR '': empty");
	LOG_ESC(esc, text);
	slash = strchr(text, '/');
	hostlen = slash != NULL ? (size_t)(slash - text) : strlen(text);
	if (hostlen == 0 || hostlen >= sizeof(host))
		return error_set(err, "invalid CIDR '%s': not an IP address",
		    esc);
	memcpy(host, text, hostlen);
	host[hostlen] = '\0';
	if (addr_parse_text(host, &out->net, &dotted) < 0)
		return error_set(err, "invalid CIDR '%s': '%s' is not an IP "
		    "address", esc,
		    log_escape(hesc, sizeof(hesc), host, hostlen));
	max = dotted ? 32 : 128;
	if (slash == NULL) {
		prefix = max;
	} else {
		const char *p = slash + 1;
		char *end;

		/* Digits only: strtoul would accept " 24", "+24" and "-0". */
		if (*p < '0' || *p > '9' || strlen(p) > 3)
			return error_set(err, "invalid CIDR '%s': bad prefix "
			    "length", esc);
		prefix = strtoul(p, &end, 10);
		if (*end != '\0')
			return error_set(err, "invalid CIDR '%s': bad prefix "
			    "length", esc);
		if (prefix > max)
			return error_set(err, "invalid CIDR '%s': prefix length "
			    "%lu is more than %lu", esc, prefix, max);
	}
	out->prefix = (unsigned)(dotted ? prefix + 96 : prefix);
	addr_mask(out->net.bytes, out->prefix);
	/* ::ffff:192.0.2.0/12 masks to ::/12, which is not an IPv4 network. */
	out->net.is_v4 = out->prefix >= 96 && addr_is_mapped(out->net.bytes);
	return 0;
}

/* addr_cidr_contains - whether ip lies in cidr. */
bool
addr_cidr_contains(const struct addr_cidr *cidr, const struct addr_ip *ip)
{
	unsigned whole = cidr->prefix / 8, bits = cidr->prefix % 8;

	if (memcmp(cidr->net.bytes, ip->bytes, whole) != 0)
		return false;
	if (bits == 0)
		return true;
	return ((cidr->net.bytes[whole] ^ ip->bytes[whole]) &
	    (uint8_t)(0xff00u >> bits)) == 0;
}

/* addr_list_cap - the capacity the arrays have for count entries: they grow
 * by doubling from 8, so it follows from count and needs no field. */
static size_t
addr_list_cap(size_t count)
{
	size_t cap = 8;

	if (count == 0)
		return 0;
	while (cap < count)
		cap *= 2;
	return cap;
}

/* addr_cidr_format - "192.0.2.0/24" (IPv4 networks in IPv4 terms) or
 * "2001:db8::/32"; buf must hold ADDR_TEXT_MAX + 4. */
char *
addr_cidr_format(const struct addr_cidr *cidr, char *buf, size_t size)
{
	char ip[ADDR_TEXT_MAX];

	if (cidr->net.is_v4 && cidr->prefix >= 96)
		snprintf(buf, size, "%s/%u", addr_ip_format(&cidr->net, ip,
		    sizeof(ip)), cidr->prefix - 96);
	else
		snprintf(buf, size, "%s/%u", addr_ip_format(&cidr->net, ip,
		    sizeof(ip)), cidr->prefix);
	return buf;
}

/* addr_cidr_list_add - append one entry.  values is kept lazily: it is
 * allocated (earlier entries 0) when the first non-zero value arrives, and
 * from then on grows with items; a list whose values are all 0 keeps
 * values NULL, which readers treat as 0 for every entry. */
int
addr_cidr_list_add(struct addr_cidr_list *list, const char *text,
    int32_t value, struct error *err)
{
	struct addr_cidr cidr;
	size_t cap = addr_list_cap(list->count);

	if (addr_cidr_parse(text, &cidr, err) < 0)
		return -1;
	if (list->count == cap) {
		size_t ncap = addr_list_cap(list->count + 1);

		list->items = xrealloc(list->items, ncap * sizeof(*list->items));
		if (list->values != NULL)
			list->values = xrealloc(list->values,
			    ncap * sizeof(*list->values));
		cap = ncap;
	}
	if (list->values == NULL && value != 0)
		list->values = xcalloc(cap, sizeof(*list->values));
	list->items[list->count] = cidr;
	if (list->values != NULL)
		list->values[list->count] = value;
	list->count++;
	return 0;
}

/* addr_cidr_list_match - the longest-prefix matching entry's index (the
 * first one among equals), or -1. */
long
addr_cidr_list_match(const struct addr_cidr_list *list,
    const struct addr_ip *ip)
{
	long best = -1;
	unsigned best_prefix = 0;

	for (size_t i = 0; i < list->count; i++) {
		const struct addr_cidr *c = &list->items[i];

		if ((best < 0 || c->prefix > best_prefix) &&
		    addr_cidr_contains(c, ip)) {
			best = (long)i;
			best_prefix = c->prefix;
			if (best_prefix == 128)
				break;
		}
	}
	return best;
}

/* addr_cidr_list_free - release the arrays; the list is empty again. */
void
addr_cidr_list_free(struct addr_cidr_list *list)
{
	free(list->items);
	free(list->values);
	list->items = NULL;
	list->values = NULL;
	list->count = 0;
}

/* addr_domain_valid - a host name: labels of letters, digits, '-', '_'
 * (seen in real host names) or UTF-8 bytes, separated by single dots. */
static bool
addr_domain_valid(const char *d, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > ADDR_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!(isalnum(c) || c == '-' || c == '_' || c >= 0x80))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

/* addr_domain_list_add - add "example.com" (that domain only) or
 * ".example.com" (its subdomains only); stored in the canonical form
 * (domain.h), so "B\xc3\xbcCHER.example" is stored as its A-labels. */
int
addr_domain_list_add(struct addr_domain_list *list, const char *entry,
    struct error *err)
{
	char esc[128], canon[DOMAIN_MAX + 2];
	size_t len, cap = addr_list_cap(list->count);
	bool sub;
	struct error why;

	if (entry == NULL || entry[0] == '\0')
		return error_set(err, "invalid domain '': empty");
	LOG_ESC(esc, entry);
	len = strlen(entry);
	if (len > 1 && entry[len - 1] == '.')
		len--;
	sub = entry[0] == '.';
	if (!addr_domain_valid(entry + sub, len - sub)) {
		if (strchr(entry, '@') != NULL)
			return error_set(err, "invalid domain '%s': a domain, "
			    "not a mail address, is expected", esc);
		if (len - sub > ADDR_DOMAIN_MAX)
			return error_set(err, "invalid domain '%s': longer than "
			    "%d characters", esc, ADDR_DOMAIN_MAX);
		return error_set(err, "invalid domain '%s': expected "
		    "\"example.com\" or \".example.com\" (subdomains)", esc);
	}
	canon[0] = '.';
	/* The whole entry, root dot included: domain_canonical drops one
	 * root dot after mapping the Unicode full stops, exactly as it does
	 * for a domain being matched, so "x\xef\xbc\x8e." is refused here
	 * as it is refused there (an empty label), never stored as "x". */
	if (domain_canonical(entry + sub, strlen(entry) - sub, canon + 1,
	    sizeof(canon) - 1, &why) < 0)
		return error_set(err, "invalid domain '%s': %s", esc, why.text);
	if (list->count == cap)
		list->items = xrealloc(list->items,
		    addr_list_cap(list->count + 1) * sizeof(*list->items));
	list->items[list->count++] = xstrdup(sub ? canon : canon + 1);
	return 0;
}

/* addr_domain_list_match - domain is brought to its canonical form first
 * (a request from a real Postfix carries the client's spelling); a domain
 * without one matches nothing, so a block list must refuse it itself. */
bool
addr_domain_list_match(const struct addr_domain_list *list,
    const char *domain)
{
	char canon[DOMAIN_MAX + 1];
	size_t len;

	if (domain == NULL || domain_canonical(domain, strlen(domain), canon,
	    sizeof(canon), NULL) < 0)
		return false;
	len = strlen(canon);
	for (size_t i = 0; i < list->count; i++) {
		const char *item = list->items[i];
		size_t ilen = strlen(item);

		if (item[0] == '.') {
			/* Subdomains only: something before the ".suffix". */
			if (len > ilen &&
			    memcmp(canon + len - ilen, item, ilen) == 0)
				return true;
		} else if (len == ilen && memcmp(canon, item, len) == 0) {
			return true;
		}
	}
	return false;
}

/* addr_domain_list_free - release the entries; the list is empty again. */
void
addr_domain_list_free(struct addr_domain_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->items[i]);
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

/* addr_mail_domain - the domain part of a mail address: after the first
 * '@' outside a quoted local part ("a@b"@example.com), or NULL when there
 * is no '@' or nothing after it.  Points into address. */
const char *
addr_mail_domain(const char *address)
{
	const char *at = NULL;
	bool quoted = false;

	if (address == NULL)
		return NULL;
	for (const char *p = address; *p; p++) {
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == '@' && !quoted) {
			/* The first unquoted '@' ends the local part; the
			 * domain may be a literal that contains '@' itself
			 * ("[tag:x@y]"), so a later one is not a separator. */
			at = p;
			break;
		}
	}
	if (at == NULL || at[1] == '\0')
		return NULL;
	return at + 1;
}
