/*
 * fuzz_dnsbl.c - libFuzzer target for policyd/policies/dnsbl_site.c: the
 * DNSBL site syntax of the config (postscreen's zone[=filter][*weight])
 * and the scoring of replies.
 *
 * Built and run by mk/fuzz.mk / scripts/fuzz.  The input is split at LF
 * into lines; each line is parsed as a site, and the bytes after the
 * last line (up to 16 groups of 4) are the replies the site gets.
 * Promises checked:
 *  - a parse either succeeds or fills the error text;
 *  - an accepted site's zone is non-empty, lower case, at most
 *    DNSBL_ZONE_MAX, its weight within +-DNSBL_WEIGHT_MAX; its filter,
 *    re-written as "zone=filter*weight", parses to the same site;
 *  - 127.255.255.x never matches; a site without filter matches every
 *    other reply;
 *  - the tally counts each site at most once: its score is the sum of
 *    some of the weights, blocked_by names a listing site of positive
 *    weight.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../policyd/policies/dnsbl_site.h"

#include "fuzz.h"

#define LINES_MAX 8

/* check_site - the promises of one accepted site. */
static void
check_site(const struct dnsbl_site *s)
{
	char again[DNSBL_SPEC_MAX * 2], err[256];
	struct dnsbl_site t;
	size_t n = strlen(s->zone);

	FUZZ_CHECK(n > 0 && n <= DNSBL_ZONE_MAX, "zone length %zu", n);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(!(s->zone[i] >= 'A' && s->zone[i] <= 'Z'),
		    "upper case in %s", s->zone);
	FUZZ_CHECK(s->weight >= -DNSBL_WEIGHT_MAX &&
	    s->weight <= DNSBL_WEIGHT_MAX, "weight %d", s->weight);
	snprintf(again, sizeof(again), "%s%s%s*%d", s->zone,
	    s->filtered ? "=" : "", s->filter, s->weight);
	FUZZ_CHECK(dnsbl_site_parse(again, &t, err, sizeof(err)) == 0,
	    "'%s' does not parse again: %s", again, err);
	FUZZ_CHECK(strcmp(t.zone, s->zone) == 0 && t.weight == s->weight &&
	    t.filtered == s->filtered &&
	    memcmp(t.allow, s->allow, sizeof(t.allow)) == 0,
	    "'%s' parses to another site", again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dnsbl_site sites[LINES_MAX];
	char line[DNSBL_SPEC_MAX + 8], err[256];
	uint8_t replies[16][4];
	struct dnsbl_replies rep[LINES_MAX];
	struct dnsbl_outcome o;
	size_t n = 0, pos = 0, nrep;
	int64_t total = 0;

	while (pos < size && n < LINES_MAX) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t len;

		if (nl == NULL)
			break;
		len = (size_t)(nl - (data + pos));
		if (len < sizeof(line) && memchr(data + pos, '\0', len) == NULL) {
			memcpy(line, data + pos, len);
			line[len] = '\0';
			err[0] = '\0';
			if (dnsbl_site_parse(line, &sites[n], err,
			    sizeof(err)) == 0) {
				check_site(&sites[n]);
				n++;
			} else {
				FUZZ_CHECK(err[0] != '\0', "no reason for '%s'",
				    line);
			}
		}
		pos += len + 1;
	}
	nrep = (size - pos) / 4;
	if (nrep > 16)
		nrep = 16;
	memcpy(replies, data + pos, nrep * 4);
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < nrep; k++) {
			bool m = dnsbl_site_match(&sites[i], replies[k]);

			if (dnsbl_reply_is_error(replies[k]))
				FUZZ_CHECK(!m, "an error code matched");
			else if (!sites[i].filtered)
				FUZZ_CHECK(m, "an unfiltered site did not match");
		}
		rep[i].addrs = (const uint8_t (*)[4])replies;
		rep[i].count = nrep;
		total += sites[i].weight < 0 ? -sites[i].weight :
		    sites[i].weight;
	}
	dnsbl_tally(sites, n, rep, &o);
	FUZZ_CHECK(o.score >= -total && o.score <= total, "score %lld",
	    (long long)o.score);
	if (o.blocked_by >= 0)
		FUZZ_CHECK((size_t)o.blocked_by < n &&
		    sites[o.blocked_by].weight > 0, "blocked_by %d",
		    o.blocked_by);
	return 0;
}
