/*
 * addr.h - IP addresses, CIDR lists and mail domain matching.
 *
 * Used by smtpd (canonical client addresses), policyd's rules (blocklists,
 * exemptions, reputation, domain lists) and the counter keys (IPv6 /64).
 * Everything is parsed and validated once at start-up into compact arrays
 * matched without allocation.
 */
#ifndef ELEMTA_ADDR_H
#define ELEMTA_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "error.h"

#define ADDR_TEXT_MAX 64  /* INET6_ADDRSTRLEN plus slack */

/* An IP address; IPv4 is stored as IPv4-mapped IPv6 (::ffff:a.b.c.d) so
 * one matcher serves both families. */
struct addr_ip {
	uint8_t bytes[16];
	bool is_v4;
};

struct addr_cidr {
	struct addr_ip net;   /* masked */
	unsigned prefix;      /* 0..128, in IPv6 terms (v4 /24 => 120) */
};

struct addr_cidr_list {
	struct addr_cidr *items;
	size_t count;
	int32_t *values;      /* optional per-entry value (reputation), or NULL */
};

/* addr_ip_parse - text (IPv4, IPv6, IPv4-mapped) to address. */
int addr_ip_parse(const char *text, struct addr_ip *out);
/* addr_ip_from_sockaddr - from a socket address (AF_INET / AF_INET6). */
int addr_ip_from_sockaddr(const struct sockaddr *sa, struct addr_ip *out);
/* addr_ip_format - canonical text: dotted quad for IPv4 and IPv4-mapped,
 * RFC 5952 for IPv6.  buf must hold ADDR_TEXT_MAX. */
char *addr_ip_format(const struct addr_ip *ip, char *buf, size_t size);
/* addr_ip_key - the text a rate limit keys on: the address itself for
 * IPv4, the /v6_prefix network ("2001:db8:1:2::/64") for IPv6. */
char *addr_ip_key(const struct addr_ip *ip, unsigned v6_prefix, char *buf,
    size_t size);

/* addr_cidr_parse - "192.0.2.0/24", "2001:db8::/32" or a bare address. */
int addr_cidr_parse(const char *text, struct addr_cidr *out, struct error *err);
bool addr_cidr_contains(const struct addr_cidr *cidr, const struct addr_ip *ip);
/* addr_cidr_format - "192.0.2.0/24" or "2001:db8::/32" (the form
 * addr_cidr_parse reads back); buf holds ADDR_TEXT_MAX + 4. */
char *addr_cidr_format(const struct addr_cidr *cidr, char *buf, size_t size);

/* addr_cidr_list_add - append one entry (value ignored when the list was
 * never given values). */
int addr_cidr_list_add(struct addr_cidr_list *list, const char *text,
    int32_t value, struct error *err);
/* addr_cidr_list_match - the longest-prefix matching entry's index, or -1. */
long addr_cidr_list_match(const struct addr_cidr_list *list,
    const struct addr_ip *ip);
void addr_cidr_list_free(struct addr_cidr_list *list);

/* Domain lists: "example.com" matches that domain only, ".example.com" its
 * subdomains (not itself).  Entries and the domains matched are compared
 * in their canonical form (domain.h: UTS-46, A-labels, lower case, no
 * trailing dot); a domain that has none matches no entry. */
struct addr_domain_list {
	char **items;         /* canonical, "." prefix for subdomains */
	size_t count;
};
int addr_domain_list_add(struct addr_domain_list *list, const char *entry,
    struct error *err);
bool addr_domain_list_match(const struct addr_domain_list *list,
    const char *domain);
void addr_domain_list_free(struct addr_domain_list *list);

/* addr_mail_domain - the domain part of a mail address (after the first
 * '@', outside quotes), or NULL when there is none. */
const char *addr_mail_domain(const char *address);

#endif
