/*
 * reputation.c - the `policy` plugin's reputation rule: with
 * block_bad_reputation, a client whose score is below min_reputation_score
 * (0..100, default 30) is refused at CONNECT with 554 5.7.1.
 *
 * Called from policy.c's hooks.  The score of a client:
 *   - listed in reputation_file (lines "CIDR score", '#' comments; the
 *     longest matching prefix wins): that score, fixed;
 *   - otherwise its own history in the shared counter table, keyed like
 *     the rate rules (IPv6 per /64): it starts neutral at 50, each refusal
 *     (5xx) by a policy rule lowers it by 5, each accepted message raises
 *     it by 1, clamped to 0..100, and it decays toward 50 with a 24-hour
 *     half-life: s(t) = 50 + (s0 - 50) * 2^(-t / 24h).  The rounded score
 *     is compared, so a client at min_reputation_score is allowed.
 *   Example: with min_reputation_score 30, five refusals in quick
 *   succession (score 25) keep a client out for about 7 hours.
 * The reputation rule's own refusals do not lower the score further
 * (else a refused client could never recover).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "policy.h"

#define REPUTATION_PENALTY 5.0
#define REPUTATION_REWARD 1.0
#define REPUTATION_LINE_MAX 512

/* reputation_file_load - parse "CIDR score" lines into p's list. */
static int
reputation_file_load(struct policy *p, const char *path, const char *where,
    char *err, size_t errlen)
{
	char line[REPUTATION_LINE_MAX + 2];
	unsigned lineno = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		snprintf(err, errlen, "%s: key 'reputation_file': cannot open "
		    "%s: %s", where, path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char cidr[REPUTATION_LINE_MAX], num[32], extra[2], *hash, *end;
		struct error e;
		long score;
		int n;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "%s:%u: line longer than %d bytes",
			    path, lineno, REPUTATION_LINE_MAX);
			fclose(f);
			return -1;
		}
		if ((hash = strchr(line, '#')) != NULL)
			*hash = '\0';
		n = sscanf(line, "%511s %31s %1s", cidr, num, extra);
		if (n <= 0)
			continue;       /* blank or comment */
		if (n != 2) {
			snprintf(err, errlen, "%s:%u: expected \"CIDR score\"",
			    path, lineno);
			fclose(f);
			return -1;
		}
		errno = 0;
		score = strtol(num, &end, 10);
		if (errno != 0 || *end != '\0' || score < 0 || score > 100) {
			snprintf(err, errlen, "%s:%u: score must be 0..100",
			    path, lineno);
			fclose(f);
			return -1;
		}
		if (addr_cidr_list_add(&p->reputation_list, cidr, (int32_t)score,
		    &e) != 0) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, e.text);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

/* policy_reputation_config - the three reputation keys. */
int
policy_reputation_config(struct policy *p, const elemta_cfg *cfg, char *err,
    size_t errlen)
{
	char path[4096];
	int64_t min;
	int on;

	if (elemta_cfg_bool(cfg, "block_bad_reputation", 0, &on, err, errlen) != 0 ||
	    elemta_cfg_int(cfg, "min_reputation_score", 30, 0, 100, &min, err,
	    errlen) != 0 ||
	    elemta_cfg_path(cfg, "reputation_file", NULL, path, sizeof(path), err,
	    errlen) != 0)
		return -1;
	p->block_bad_reputation = on != 0;
	p->min_reputation_score = (int)min;
	if (path[0] != '\0' && reputation_file_load(p, path,
	    elemta_cfg_where(elemta_cfg_get(cfg, "reputation_file")), err,
	    errlen) != 0)
		return -1;
	if (!p->block_bad_reputation && (path[0] != '\0' ||
	    elemta_cfg_get(cfg, "min_reputation_score") != NULL)) {
		snprintf(err, errlen, "%s: key 'block_bad_reputation': must be "
		    "true for min_reputation_score and reputation_file to "
		    "have an effect", elemta_cfg_where(cfg));
		return -1;
	}
	return 0;
}

/* policy_reputation_free - release the reputation list. */
void
policy_reputation_free(struct policy *p)
{
	addr_cidr_list_free(&p->reputation_list);
}

/* reputation_key - the client key the history is kept under. */
static const char *
reputation_key(const elemta_ctx *ctx, char *buf, size_t size)
{
	const char *k = elemta_ctx_attr(ctx, ELEMTA_ATTR_CLIENT_KEY);

	snprintf(buf, size, "rep:%s", (k && *k) ? k : elemta_ctx_client_ip(ctx));
	return buf;
}

/* reputation_listed - the file's score for the client, or -1. */
static int
reputation_listed(const struct policy *p, const elemta_ctx *ctx)
{
	struct addr_ip ip;
	long i;

	if (p->reputation_list.count == 0 ||
	    addr_ip_parse(elemta_ctx_client_ip(ctx), &ip) != 0)
		return -1;
	i = addr_cidr_list_match(&p->reputation_list, &ip);
	if (i < 0)
		return -1;
	return p->reputation_list.values ? p->reputation_list.values[i] : 0;
}

/* policy_rule_reputation - refuse a client below the minimum score. */
enum elemta_action
policy_rule_reputation(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	char key[200];
	double score;
	int s;

	if (!p->block_bad_reputation)
		return ELEMTA_CONTINUE;
	s = reputation_listed(p, ctx);
	if (s < 0) {
		if (elemta_reputation_get(ctx, reputation_key(ctx, key,
		    sizeof(key)), &score) != 0)
			return policy_table_failure(res);
		s = (int)lround(score);
	}
	if (s >= p->min_reputation_score)
		return ELEMTA_CONTINUE;
	return elemta_result_set(res, ELEMTA_REJECT, 554, "5.7.1",
	    "Client host [%s] has a poor reputation (%d < %d)",
	    elemta_ctx_client_ip(ctx), s, p->min_reputation_score);
}

/* policy_reputation_refused - a refusal lowers an unlisted client. */
void
policy_reputation_refused(struct policy *p, const elemta_ctx *ctx)
{
	char key[200];

	if (!p->block_bad_reputation || reputation_listed(p, ctx) >= 0)
		return;
	(void)elemta_reputation_adjust(ctx, reputation_key(ctx, key,
	    sizeof(key)), -REPUTATION_PENALTY);
}

/* policy_reputation_accepted - an accepted message raises it. */
void
policy_reputation_accepted(struct policy *p, const elemta_ctx *ctx)
{
	char key[200];

	if (!p->block_bad_reputation || reputation_listed(p, ctx) >= 0)
		return;
	(void)elemta_reputation_adjust(ctx, reputation_key(ctx, key,
	    sizeof(key)), REPUTATION_REWARD);
}
