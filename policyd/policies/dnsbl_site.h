/*
 * dnsbl_site.h - DNSBL/DNSWL site specifications in postscreen's syntax
 * and the scoring of their replies: pure functions, no DNS, no ABI (so
 * tests/unit/test_dnsbl_site.c and the fuzz target call them directly).
 *
 * A site is "zone[=filter][*weight]" (postscreen_dnsbl_sites):
 *   zen.spamhaus.org*3                    any reply counts 3
 *   bl.example=127.0.0.2                  only 127.0.0.2 counts (1)
 *   bl.example=127.0.0.[2..11]            a range in an octet
 *   bl.example=127.0.0.[2;4;6..8]         a list of values and ranges
 *   list.dnswl.org=127.0.[0..255].[1..3]*-5   an allowlist (negative)
 * A reply outside the filter does not count; 127.255.255.x is a
 * blocklist's error code (query refused, rate limited...) and never a
 * listing, filter or not.  A zone may appear in several sites (one query
 * serves them all).
 *
 * Users: policyd/policies/dnsbl.c (the rule) and the unit and fuzz tests.
 */
#ifndef ELEMTA_POLICY_DNSBL_SITE_H
#define ELEMTA_POLICY_DNSBL_SITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest zone: its query name carries 64 characters of an IPv6
 * address's reversed nibbles ("b.a.9.8...."), and a name is at most
 * 253. */
#define DNSBL_ZONE_MAX 189
#define DNSBL_SPEC_MAX 512
#define DNSBL_WEIGHT_MAX 100000

struct dnsbl_site {
	char zone[DNSBL_ZONE_MAX + 1];     /* lower case, no final dot    */
	char filter[DNSBL_SPEC_MAX];       /* as written, "" none         */
	int weight;                        /* 1 unless "*N"               */
	bool filtered;
	uint8_t allow[4][32];              /* per octet: a 256-bit set    */
};

/* dnsbl_site_parse - one site specification into *out.  0, or -1 with
 * one line in err naming the problem. */
int dnsbl_site_parse(const char *spec, struct dnsbl_site *out, char *err,
    size_t errlen);

/* dnsbl_reply_is_error - 127.255.255.x: an error code, not a listing. */
bool dnsbl_reply_is_error(const uint8_t a[4]);

/* dnsbl_site_match - reply a (an A record) lists the client for s. */
bool dnsbl_site_match(const struct dnsbl_site *s, const uint8_t a[4]);

/* One site's replies, for dnsbl_tally. */
struct dnsbl_replies {
	const uint8_t (*addrs)[4];
	size_t count;
};

/* The outcome of a tally. */
struct dnsbl_outcome {
	int64_t score;        /* the weights of the sites that listed    */
	int blocked_by;       /* the listing site of the largest positive
	                       * weight (first on a tie), -1 none         */
	bool allowlisted;     /* a site of negative weight listed         */
	unsigned errors;      /* 127.255.255.x replies seen               */
};

/* dnsbl_tally - sum the weights of sites[i] whose replies[i] hold a
 * listing (each site counts once). */
void dnsbl_tally(const struct dnsbl_site *sites, size_t n,
    const struct dnsbl_replies *replies, struct dnsbl_outcome *out);

#endif
