/*
 * auth.c - the `policy` plugin's AUTH rules, run by its on_auth hook after
 * policyd verified the credentials (elemta_ctx_auth_succeeded says how it
 * went; the password is never visible here):
 *
 *   max_failed_auth: 5, failed_auth_window: 15m
 *       Failures are counted in the host's shared counter table (every
 *       worker, every restart) under three keys: the client address
 *       ("elemta_client_key": IPv6 folded to its /64), the address+user
 *       pair, and the username alone.  Once the address, or the pair, has
 *       max_failed_auth failures inside the window, every further AUTH
 *       from that address (or as that user from that address) is refused
 *       with 454 4.7.0 - even with the right password, and with the same
 *       answer either way, so a locked-out guesser learns nothing.  The
 *       check runs twice: before the password is hashed (policy_auth_gate,
 *       so a locked-out attempt costs no hash and is not counted again)
 *       and in on_auth after it (the atomic check-and-record: the host
 *       runs each AUTH decision under the table's writer lock).  A client
 *       that stops is let in again once its failures age out of the
 *       window.  A success resets the user's and the pair's counts, never
 *       the address's own: one valid account must not reset an attacker's budget.
 *       The username alone never locks: a user with max_failed_auth
 *       failures across addresses is slowed down instead - each answer
 *       for that user is delayed by POLICY_AUTH_USER_DELAY_MS (the host
 *       caps it below policyd.timeout_ms) - so nobody can lock someone
 *       else out by guessing from many addresses, and her right password
 *       still works, later.  exempt_ips does not apply here.
 *
 *   user_auth_hours: {alice: {start: "08:00", end: "18:00",
 *                     days: [mon, ...], timezone: "Europe/Paris"}}
 *       Outside her window every AUTH as alice is refused with 535 5.7.8
 *       and counted as a failure - whatever the password, so the answer
 *       does not tell whether it was right.  Windows are parsed and
 *       evaluated by client.c (the same code as access_hours).
 *
 * Metrics: policy_auth_success_total (accepted by these rules),
 * policy_auth_failures_total (wrong credentials or outside the hours),
 * policy_auth_locked_total (refused by the failed-auth limit).
 *
 * Called from policy.c (config, destroy) and by the host as the policy
 * plugin's on_auth hook.  Requests from the Postfix listener never reach
 * it: AUTH is an Elemta extension there answered by the host.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "policy.h"

#define AUTH_WINDOW_DEFAULT_MS (15u * 60 * 1000)
#define AUTH_WINDOW_MIN_MS 1000u
#define AUTH_WINDOW_MAX_MS (30ull * 86400 * 1000)
#define AUTH_USER_MAX 255
#define AUTH_FAILED_MAX 10000u   /* max_failed_auth's upper bound */
#define POLICY_AUTH_USER_DELAY_MS 1000u

#define METRIC_AUTH_SUCCESS "policy_auth_success_total"
#define METRIC_AUTH_FAILURES "policy_auth_failures_total"
#define METRIC_AUTH_LOCKED "policy_auth_locked_total"

/* The three counter keys of one attempt ("" when there is no user). */
struct auth_keys {
	char ip[160];
	char user[AUTH_USER_MAX + 32];
	char pair[160 + AUTH_USER_MAX + 32];
};

/* ==== Config ==== */

/* auth_user_hours_cmp - qsort/bsearch order of user_auth_hours. */
static int
auth_user_hours_cmp(const void *a, const void *b)
{
	const struct policy_user_hours *x = a, *y = b;

	return strcmp(x->user, y->user);
}

/* auth_hours_config - user_auth_hours: a map of user -> window. */
static int
auth_hours_config(struct policy *p, const elemta_cfg *cfg, char *err,
    size_t errlen)
{
	const elemta_cfg *m = elemta_cfg_get(cfg, "user_auth_hours");
	size_t n;

	if (m == NULL || (elemta_cfg_type(m) == ELEMTA_CFG_SCALAR &&
	    *elemta_cfg_scalar(m) == '\0'))
		return 0;
	if (elemta_cfg_type(m) != ELEMTA_CFG_MAP) {
		snprintf(err, errlen, "%s: key 'user_auth_hours': expected a map "
		    "of user: {start, end, days, timezone}", elemta_cfg_where(m));
		return -1;
	}
	n = elemta_cfg_len(m);
	p->user_hours = xcalloc(n ? n : 1, sizeof(*p->user_hours));
	for (size_t i = 0; i < n; i++) {
		const char *user = elemta_cfg_key_at(m, i);
		const elemta_cfg *item = elemta_cfg_at(m, i);
		struct policy_user_hours *uh = &p->user_hours[i];
		char key[128];

		if (user == NULL || *user == '\0' || strlen(user) > AUTH_USER_MAX) {
			snprintf(err, errlen, "%s: key 'user_auth_hours': a user "
			    "name must have 1 to %d bytes", elemta_cfg_where(item),
			    AUTH_USER_MAX);
			return -1;
		}
		uh->user = xstrdup(user);
		p->user_hours_count++;
		snprintf(key, sizeof(key), "user_auth_hours.%.64s", user);
		if (policy_hours_config(&uh->hours, item, key, err, errlen) != 0)
			return -1;
	}
	qsort(p->user_hours, p->user_hours_count, sizeof(*p->user_hours),
	    auth_user_hours_cmp);
	for (size_t i = 1; i < p->user_hours_count; i++) {
		if (strcmp(p->user_hours[i - 1].user, p->user_hours[i].user) == 0) {
			snprintf(err, errlen, "%s: key 'user_auth_hours': user "
			    "'%.64s' listed twice", elemta_cfg_where(m),
			    p->user_hours[i].user);
			return -1;
		}
	}
	return 0;
}

/* policy_auth_config - max_failed_auth, failed_auth_window,
 * user_auth_hours. */
int
policy_auth_config(struct policy *p, const elemta_cfg *cfg, char *err,
    size_t errlen)
{
	const elemta_cfg *w = elemta_cfg_get(cfg, "failed_auth_window");

	if (policy_cfg_count(cfg, "max_failed_auth", AUTH_FAILED_MAX,
	    &p->max_failed_auth, err, errlen) != 0 ||
	    elemta_cfg_duration_ms(cfg, "failed_auth_window",
	    AUTH_WINDOW_DEFAULT_MS, &p->failed_auth_window_ms, err, errlen) != 0)
		return -1;
	if (p->failed_auth_window_ms < AUTH_WINDOW_MIN_MS ||
	    p->failed_auth_window_ms > AUTH_WINDOW_MAX_MS) {
		snprintf(err, errlen, "%s: key 'failed_auth_window': must be "
		    "between 1s and 30d", w ? elemta_cfg_where(w) : "config");
		return -1;
	}
	return auth_hours_config(p, cfg, err, errlen);
}

/* policy_auth_free - release user_auth_hours. */
void
policy_auth_free(struct policy *p)
{
	for (size_t i = 0; i < p->user_hours_count; i++)
		free(p->user_hours[i].user);
	free(p->user_hours);
	p->user_hours = NULL;
	p->user_hours_count = 0;
}

/* ==== Counting ==== */

/* auth_keys_make - the attempt's counter keys.  The client key has no
 * blank, so "pair" stays unambiguous whatever the user name holds. */
static void
auth_keys_make(struct auth_keys *k, const elemta_ctx *ctx, const char *user)
{
	const char *ck = elemta_ctx_attr(ctx, ELEMTA_ATTR_CLIENT_KEY);

	if (ck == NULL || *ck == '\0')
		ck = elemta_ctx_client_ip(ctx);
	snprintf(k->ip, sizeof(k->ip), "authfail:ip:%s", ck);
	k->user[0] = k->pair[0] = '\0';
	if (*user == '\0')
		return;
	snprintf(k->user, sizeof(k->user), "authfail:user:%.*s", AUTH_USER_MAX,
	    user);
	snprintf(k->pair, sizeof(k->pair), "authfail:pair:%s %.*s", ck,
	    AUTH_USER_MAX, user);
}

/* auth_table_failure - the verdict when the counters could not be read
 * or written: try again (never an unchecked attempt). */
static enum elemta_action
auth_table_failure(struct elemta_result *res)
{
	return elemta_result_set(res, ELEMTA_TEMPFAIL, 454, "4.7.0",
	    "Temporary authentication failure, try again later");
}

/* auth_locked - 1 when the address or the address+user pair reached
 * max_failed_auth failures in the window, 0 when not, -1 when the table
 * failed. */
static int
auth_locked(const struct policy *p, const elemta_ctx *ctx,
    const struct auth_keys *k)
{
	int64_t ip = elemta_event_count(ctx, k->ip, p->failed_auth_window_ms);
	int64_t pair = 0;

	if (ip < 0)
		return -1;
	if (ip >= p->max_failed_auth)
		return 1;
	if (k->pair[0] != '\0')
		pair = elemta_event_count(ctx, k->pair, p->failed_auth_window_ms);
	if (pair < 0)
		return -1;
	return pair >= p->max_failed_auth;
}

/* auth_locked_result - the lockout answer (same for right and wrong). */
static enum elemta_action
auth_locked_result(const elemta_ctx *ctx, const char *user,
    struct elemta_result *res)
{
	elemta_metric_add(ctx, METRIC_AUTH_LOCKED, 1);
	elemta_log(ctx, ELEMTA_LOG_INFO, "AUTH as '%s' from %s refused: too "
	    "many failed attempts", user, elemta_ctx_client_ip(ctx));
	return elemta_result_set(res, ELEMTA_TEMPFAIL, 454, "4.7.0",
	    "Too many failed authentication attempts, try again later");
}

/* auth_record_failure - one failure under each key (kept even though the
 * decision may end refused); 0, or -1 when the table failed.  A log keeps
 * max_failed_auth + 1 timestamps: enough to judge the limit, and its
 * count reaches exactly max_failed_auth only on the failure that locks,
 * which is logged once. */
static int
auth_record_failure(const struct policy *p, const elemta_ctx *ctx,
    const struct auth_keys *k)
{
	uint32_t keep = p->max_failed_auth + 1, nip = 0, nuser = 0;

	if (p->max_failed_auth == 0)
		return 0;
	if (elemta_event_add(ctx, k->ip, p->failed_auth_window_ms, keep,
	    &nip) != 0)
		return -1;
	if (k->user[0] != '\0' &&
	    (elemta_event_add(ctx, k->user, p->failed_auth_window_ms, keep,
	    &nuser) != 0 ||
	    elemta_event_add(ctx, k->pair, p->failed_auth_window_ms, keep,
	    NULL) != 0))
		return -1;
	if (nip == p->max_failed_auth || nuser == p->max_failed_auth)
		elemta_log(ctx, ELEMTA_LOG_WARNING, "failed AUTH limit reached: "
		    "client %s %u, user '%s' %u failures (limit %u per %llu s); "
		    "the client refused, the user slowed down until they age "
		    "out",
		    elemta_ctx_client_ip(ctx), (unsigned)nip,
		    elemta_ctx_sasl_username(ctx), (unsigned)nuser,
		    (unsigned)p->max_failed_auth,
		    (unsigned long long)(p->failed_auth_window_ms / 1000));
	return 0;
}

/* auth_user_key_cmp - bsearch: a user name against an entry. */
static int
auth_user_key_cmp(const void *key, const void *elem)
{
	const struct policy_user_hours *uh = elem;

	return strcmp(key, uh->user);
}

/* auth_hours_find - the user's window, or NULL when unrestricted. */
static struct policy_user_hours *
auth_hours_find(struct policy *p, const char *user)
{
	if (p->user_hours_count == 0 || *user == '\0')
		return NULL;
	return bsearch(user, p->user_hours, p->user_hours_count,
	    sizeof(*p->user_hours), auth_user_key_cmp);
}

/* ==== The hook ==== */

/* policy_auth_gate - the lockout before any hash, and the slow-down of a
 * user failing from many addresses (see the header). */
enum elemta_action
policy_auth_gate(void *state, const elemta_ctx *ctx, struct elemta_result *res,
    uint32_t *delay_ms)
{
	struct policy *p = state;
	const char *user = elemta_ctx_sasl_username(ctx);
	struct auth_keys k;
	int64_t n;
	int locked;

	*delay_ms = 0;
	if (p->max_failed_auth == 0)
		return ELEMTA_CONTINUE;
	auth_keys_make(&k, ctx, user);
	locked = auth_locked(p, ctx, &k);
	if (locked < 0)
		return auth_table_failure(res);
	if (locked > 0)
		return auth_locked_result(ctx, user, res);
	if (k.user[0] == '\0')
		return ELEMTA_CONTINUE;
	n = elemta_event_count(ctx, k.user, p->failed_auth_window_ms);
	if (n < 0)
		return auth_table_failure(res);
	if (n >= p->max_failed_auth)
		*delay_ms = POLICY_AUTH_USER_DELAY_MS;
	return ELEMTA_CONTINUE;
}

/* policy_on_auth - limits first (they hide the outcome), then the hours,
 * then the outcome: count a failure, or reset the user's counts. */
enum elemta_action
policy_on_auth(void *state, const elemta_ctx *ctx, struct elemta_result *res)
{
	struct policy *p = state;
	const char *user = elemta_ctx_sasl_username(ctx);
	bool ok = elemta_ctx_auth_succeeded(ctx) == 1;
	struct policy_user_hours *uh;
	struct auth_keys k;

	auth_keys_make(&k, ctx, user);
	if (p->max_failed_auth > 0) {
		int locked = auth_locked(p, ctx, &k);

		if (locked < 0)
			return auth_table_failure(res);
		if (locked > 0) {
			if (!ok && auth_record_failure(p, ctx, &k) != 0)
				return auth_table_failure(res);
			return auth_locked_result(ctx, user, res);
		}
	}
	uh = auth_hours_find(p, user);
	if (uh != NULL && !policy_hours_open(&uh->hours, policy_now())) {
		if (auth_record_failure(p, ctx, &k) != 0)
			return auth_table_failure(res);
		elemta_metric_add(ctx, METRIC_AUTH_FAILURES, 1);
		elemta_log(ctx, ELEMTA_LOG_INFO, "AUTH as '%s' refused outside "
		    "its hours %02u:%02u-%02u:%02u%s%s", user,
		    uh->hours.start_min / 60, uh->hours.start_min % 60,
		    uh->hours.end_min / 60, uh->hours.end_min % 60,
		    uh->hours.timezone[0] ? " " : "", uh->hours.timezone);
		return elemta_result_set(res, ELEMTA_REJECT, 535, "5.7.8",
		    "Authentication not allowed at this time for this user");
	}
	if (!ok) {
		/* The host answers 535 5.7.8 unless a later plugin refuses. */
		if (auth_record_failure(p, ctx, &k) != 0)
			return auth_table_failure(res);
		elemta_metric_add(ctx, METRIC_AUTH_FAILURES, 1);
		return ELEMTA_CONTINUE;
	}
	if (p->max_failed_auth > 0 && k.user[0] != '\0' &&
	    (elemta_rate_reset(ctx, k.user) != 0 ||
	    elemta_rate_reset(ctx, k.pair) != 0))
		return auth_table_failure(res);
	elemta_metric_add(ctx, METRIC_AUTH_SUCCESS, 1);
	return ELEMTA_CONTINUE;
}
