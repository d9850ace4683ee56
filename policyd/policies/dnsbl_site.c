/*
 * dnsbl_site.c - postscreen's DNSBL site syntax and the scoring of the
 * replies (see dnsbl_site.h).  Pure: no DNS, no I/O.
 *
 * Called by dnsbl.c at start-up (the config's sites, trusted but
 * checked: an error names the problem) and per connection (the replies:
 * untrusted, anyone's DNS server), and by the unit and fuzz tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsbl_site.h"

/* site_set - put v into an octet's set. */
static void
site_set(uint8_t set[32], unsigned v)
{
	set[v / 8] |= (uint8_t)(1u << (v % 8));
}

/* site_has - v is in an octet's set. */
static bool
site_has(const uint8_t set[32], unsigned v)
{
	return (set[v / 8] & (1u << (v % 8))) != 0;
}

/* site_number - a decimal 0..255 at *p (advanced); -1 when none. */
static int
site_number(const char **p)
{
	int v = 0, digits = 0;

	while (**p >= '0' && **p <= '9') {
		v = v * 10 + (**p - '0');
		(*p)++;
		if (++digits > 3 || v > 255)
			return -1;
	}
	return digits == 0 ? -1 : v;
}

/* site_octet - one octet of a filter: "N" or "[a;b..c;...]", at *p. */
static int
site_octet(const char **p, uint8_t set[32])
{
	int lo, hi;

	if (**p != '[') {
		if ((lo = site_number(p)) < 0)
			return -1;
		site_set(set, (unsigned)lo);
		return 0;
	}
	(*p)++;
	for (;;) {
		if ((lo = site_number(p)) < 0)
			return -1;
		hi = lo;
		if ((*p)[0] == '.' && (*p)[1] == '.') {
			*p += 2;
			if ((hi = site_number(p)) < 0 || hi < lo)
				return -1;
		}
		for (int v = lo; v <= hi; v++)
			site_set(set, (unsigned)v);
		if (**p == ';') {
			(*p)++;
			continue;
		}
		if (**p != ']')
			return -1;
		(*p)++;
		return 0;
	}
}

/* site_zone_valid - letters, digits, '-', '_' and dots between labels. */
static bool
site_zone_valid(const char *z, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > DNSBL_ZONE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = z[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_') ||
		    ++label > 63)
			return false;
	}
	return label > 0;       /* "zone.." is not a zone */
}

/* dnsbl_site_parse - see dnsbl_site.h. */
int
dnsbl_site_parse(const char *spec, struct dnsbl_site *out, char *err,
    size_t errlen)
{
	const char *p = spec, *end;
	size_t zlen;

	memset(out, 0, sizeof(*out));
	out->weight = 1;
	if (strlen(spec) >= DNSBL_SPEC_MAX) {
		snprintf(err, errlen, "DNSBL site too long");
		return -1;
	}
	zlen = strcspn(p, "=*");
	if (zlen > 0 && p[zlen - 1] == '.')
		zlen--;         /* a final dot is allowed */
	if (!site_zone_valid(p, zlen)) {
		snprintf(err, errlen, "DNSBL site '%s': not a DNS zone (or "
		    "longer than %d)", spec, DNSBL_ZONE_MAX);
		return -1;
	}
	for (size_t i = 0; i < zlen; i++)
		out->zone[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ?
		    p[i] + 32 : p[i]);
	p += strcspn(p, "=*");
	if (*p == '=') {
		const char *f = ++p;

		for (int o = 0; o < 4; o++) {
			if (o > 0 && *p++ != '.')
				goto bad_filter;
			if (site_octet(&p, out->allow[o]) != 0)
				goto bad_filter;
		}
		out->filtered = true;
		snprintf(out->filter, sizeof(out->filter), "%.*s",
		    (int)(p - f), f);
	}
	if (*p == '*') {
		long w;

		p++;
		w = strtol(p, (char **)&end, 10);
		if (end == p || *end != '\0' || w < -DNSBL_WEIGHT_MAX ||
		    w > DNSBL_WEIGHT_MAX) {
			snprintf(err, errlen, "DNSBL site '%s': the weight after "
			    "'*' must be an integer from %d to %d", spec,
			    -DNSBL_WEIGHT_MAX, DNSBL_WEIGHT_MAX);
			return -1;
		}
		out->weight = (int)w;
		p = end;
	}
	if (*p != '\0') {
		snprintf(err, errlen, "DNSBL site '%s': unexpected text at '%s' "
		    "(zone[=filter][*weight])", spec, p);
		return -1;
	}
	return 0;
bad_filter:
	snprintf(err, errlen, "DNSBL site '%s': bad reply filter (four "
	    "octets, each N, [N..M] or [N;M;...], e.g. 127.0.0.[2..11])", spec);
	return -1;
}

/* dnsbl_reply_is_error - see dnsbl_site.h. */
bool
dnsbl_reply_is_error(const uint8_t a[4])
{
	return a[0] == 127 && a[1] == 255 && a[2] == 255;
}

/* dnsbl_site_match - see dnsbl_site.h. */
bool
dnsbl_site_match(const struct dnsbl_site *s, const uint8_t a[4])
{
	if (dnsbl_reply_is_error(a))
		return false;
	if (!s->filtered)
		return true;
	for (int o = 0; o < 4; o++)
		if (!site_has(s->allow[o], a[o]))
			return false;
	return true;
}

/* dnsbl_tally - see dnsbl_site.h. */
void
dnsbl_tally(const struct dnsbl_site *sites, size_t n,
    const struct dnsbl_replies *replies, struct dnsbl_outcome *out)
{
	memset(out, 0, sizeof(*out));
	out->blocked_by = -1;
	for (size_t i = 0; i < n; i++) {
		bool listed = false;

		for (size_t k = 0; k < replies[i].count; k++) {
			if (dnsbl_reply_is_error(replies[i].addrs[k]))
				out->errors++;
			else if (dnsbl_site_match(&sites[i],
			    replies[i].addrs[k]))
				listed = true;
		}
		if (!listed)
			continue;
		out->score += sites[i].weight;
		if (sites[i].weight < 0)
			out->allowlisted = true;
		else if (sites[i].weight > 0 && (out->blocked_by < 0 ||
		    sites[i].weight > sites[out->blocked_by].weight))
			out->blocked_by = (int)i;
	}
}
