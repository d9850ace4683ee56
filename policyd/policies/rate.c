/*
 * rate.c - the `policy` plugin's rate rules: max_connections_per_minute
 * (CONNECT, 421 4.7.0), max_messages_per_minute (MAIL, 450 4.7.1) and the
 * general rate_limits list ({event, key, limit, period, action}: 450 4.7.1
 * or 550 5.7.1), all per key over a sliding window in the host's shared
 * counter table (elemta_rate_check: exact across workers and restarts, a
 * refused event is not counted).  Clients in exempt_ips are never limited.
 *
 * Called from policy.c's hooks.  Per-client keys use the host's
 * "elemta_client_key" (IPv6 folded to counters.ipv6_prefix, default /64),
 * so one IPv6 host cannot dodge a limit by hopping addresses in its subnet.
 *
 * Counting a message once: Elemta's smtpd asks at MAIL exactly once per
 * transaction.  A Postfix asks at whatever states its restrictions name,
 * often once per recipient; there the message counts at the first request
 * of the `instance` at or after MAIL that ends accepted - the host reports
 * how many were accepted before (elemta_ctx_transaction_accepted), so a request
 * refused for another reason (its count withdrawn) does not use up the
 * instance's one count.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "error.h"
#include "policy.h"

#define MINUTE_MS 60000u

static const char *const event_names[] = { "connection", "message", "recipient" };
static const char *const key_names[] = {
	"client_ip", "sender", "sender_domain", "sasl_username",
};
static const char *const limit_keys[] = {
	"event", "key", "limit", "period", "action", NULL,
};

/* rate_pick - index of s in names[n], or -1. */
static int
rate_pick(const char *s, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

/* rate_limit_config - one rate_limits item. */
static int
rate_limit_config(struct policy_rate_limit *rl, const elemta_cfg *item,
    char *err, size_t errlen)
{
	const char *event, *key, *action;
	int64_t limit;
	int e, k;

	if (elemta_cfg_type(item) != ELEMTA_CFG_MAP) {
		snprintf(err, errlen, "%s: key 'rate_limits': each item must be "
		    "a map {event, key, limit, period, action}",
		    elemta_cfg_where(item));
		return -1;
	}
	if (elemta_cfg_check_keys(item, limit_keys, err, errlen) != 0 ||
	    elemta_cfg_string(item, "event", NULL, &event, err, errlen) != 0 ||
	    elemta_cfg_string(item, "key", "client_ip", &key, err, errlen) != 0 ||
	    elemta_cfg_string(item, "action", "tempfail", &action, err, errlen) != 0 ||
	    elemta_cfg_int(item, "limit", -1, 1, POLICY_LIMIT_MAX, &limit, err,
	    errlen) != 0 ||
	    elemta_cfg_duration_ms(item, "period", MINUTE_MS, &rl->period_ms,
	    err, errlen) != 0)
		return -1;
	if (event == NULL || (e = rate_pick(event, event_names, 3)) < 0) {
		snprintf(err, errlen, "%s: key 'rate_limits.event': expected "
		    "connection, message or recipient", elemta_cfg_where(item));
		return -1;
	}
	if ((k = rate_pick(key, key_names, 4)) < 0) {
		snprintf(err, errlen, "%s: key 'rate_limits.key': expected "
		    "client_ip, sender, sender_domain or sasl_username",
		    elemta_cfg_where(item));
		return -1;
	}
	if (limit < 1) {
		snprintf(err, errlen, "%s: key 'rate_limits.limit': required "
		    "(1..%d)", elemta_cfg_where(item), POLICY_LIMIT_MAX);
		return -1;
	}
	if (rl->period_ms < 1000 || rl->period_ms > 30ull * 86400 * 1000) {
		snprintf(err, errlen, "%s: key 'rate_limits.period': must be "
		    "between 1s and 30d", elemta_cfg_where(item));
		return -1;
	}
	if (wire_action_parse(action, &rl->action) != 0 ||
	    (rl->action != ELEMTA_TEMPFAIL && rl->action != ELEMTA_REJECT)) {
		snprintf(err, errlen, "%s: key 'rate_limits.action': expected "
		    "tempfail or reject", elemta_cfg_where(item));
		return -1;
	}
	rl->event = (enum policy_event)e;
	rl->key = (enum policy_key)k;
	rl->limit = (uint32_t)limit;
	/* The counter key names the parameters, so two rules never share a
	 * window and a changed rule starts afresh. */
	snprintf(rl->id, sizeof(rl->id), "rl:%s:%s:%u/%llu", event_names[e],
	    key_names[k], rl->limit, (unsigned long long)rl->period_ms);
	return 0;
}

/* policy_rate_config - the per-minute keys and the rate_limits list. */
int
policy_rate_config(struct policy *p, const elemta_cfg *cfg, char *err,
    size_t errlen)
{
	const elemta_cfg *list;

	if (policy_cfg_count(cfg, "max_connections_per_minute", POLICY_LIMIT_MAX,
	    &p->max_connections_per_minute, err, errlen) != 0 ||
	    policy_cfg_count(cfg, "max_messages_per_minute", POLICY_LIMIT_MAX,
	    &p->max_messages_per_minute, err, errlen) != 0)
		return -1;
	list = elemta_cfg_get(cfg, "rate_limits");
	if (list == NULL || (elemta_cfg_type(list) == ELEMTA_CFG_SCALAR &&
	    *elemta_cfg_scalar(list) == '\0'))
		return 0;
	if (elemta_cfg_type(list) != ELEMTA_CFG_LIST) {
		snprintf(err, errlen, "%s: key 'rate_limits': expected a list of "
		    "{event, key, limit, period, action}", elemta_cfg_where(list));
		return -1;
	}
	p->rate_limit_count = elemta_cfg_len(list);
	p->rate_limits = xcalloc(p->rate_limit_count ? p->rate_limit_count : 1,
	    sizeof(*p->rate_limits));
	for (size_t i = 0; i < p->rate_limit_count; i++)
		if (rate_limit_config(&p->rate_limits[i], elemta_cfg_at(list, i),
		    err, errlen) != 0)
			return -1;
	return 0;
}

/* policy_rate_free - release the rate_limits list. */
void
policy_rate_free(struct policy *p)
{
	free(p->rate_limits);
	p->rate_limits = NULL;
}

/* ==== Rules ==== */

/* rate_client_key - what a per-client counter keys on. */
static const char *
rate_client_key(const elemta_ctx *ctx)
{
	const char *k = elemta_ctx_attr(ctx, ELEMTA_ATTR_CLIENT_KEY);

	return (k != NULL && *k != '\0') ? k : elemta_ctx_client_ip(ctx);
}

/* policy_counts_message - see the file comment. */
bool
policy_counts_message(const elemta_ctx *ctx)
{
	enum elemta_phase phase = elemta_ctx_phase_id(ctx);

	if (!policy_from_postfix(ctx))
		return phase == ELEMTA_PHASE_MAIL;
	if (phase < ELEMTA_PHASE_MAIL || phase > ELEMTA_PHASE_EOM)
		return false;
	return elemta_ctx_transaction_accepted(ctx) == 0;
}

/* rate_hit - one event against key; the verdict when over the limit. */
static enum elemta_action
rate_hit(const elemta_ctx *ctx, const char *key, uint32_t limit,
    uint64_t period_ms, enum elemta_action action, int code, const char *enh,
    const char *what, struct elemta_result *res)
{
	uint64_t retry = 0;
	int r = elemta_rate_check(ctx, key, limit, period_ms, &retry);

	if (r < 0)
		return policy_table_failure(res);
	if (r > 0)
		return ELEMTA_CONTINUE;
	return elemta_result_set(res, action, code, enh,
	    "Too many %s, try again in %llu seconds", what,
	    (unsigned long long)((retry + 999) / 1000));
}

/* policy_rule_connection_rate - max_connections_per_minute per client. */
enum elemta_action
policy_rule_connection_rate(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	char key[160];

	if (p->max_connections_per_minute == 0 || policy_client_exempt(p, ctx))
		return ELEMTA_CONTINUE;
	snprintf(key, sizeof(key), "conn:%s", rate_client_key(ctx));
	return rate_hit(ctx, key, p->max_connections_per_minute, MINUTE_MS,
	    ELEMTA_TEMPFAIL, 421, "4.7.0", "connections from your address", res);
}

/* policy_rule_message_rate - max_messages_per_minute per client. */
enum elemta_action
policy_rule_message_rate(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	char key[160];

	if (p->max_messages_per_minute == 0 || !policy_counts_message(ctx) ||
	    policy_client_exempt(p, ctx))
		return ELEMTA_CONTINUE;
	snprintf(key, sizeof(key), "msg:%s", rate_client_key(ctx));
	return rate_hit(ctx, key, p->max_messages_per_minute, MINUTE_MS,
	    ELEMTA_TEMPFAIL, 450, "4.7.1", "messages from your address", res);
}

/* rate_key_value - the value a rate_limits rule keys on, lower-cased for
 * addresses; NULL when the request has none (the rule does not apply). */
static const char *
rate_key_value(const struct policy_rate_limit *rl, const elemta_ctx *ctx,
    char *buf, size_t size)
{
	const char *v = NULL;

	switch (rl->key) {
	case POLICY_KEY_CLIENT_IP:
		return rate_client_key(ctx);
	case POLICY_KEY_SENDER:
		v = elemta_ctx_sender(ctx);
		break;
	case POLICY_KEY_SENDER_DOMAIN:
		v = elemta_ctx_sender(ctx);
		v = v ? addr_mail_domain(v) : NULL;
		break;
	case POLICY_KEY_SASL_USERNAME:
		v = elemta_ctx_sasl_username(ctx);
		return (v != NULL && *v != '\0') ? v : NULL;
	}
	if (v == NULL || *v == '\0')
		return NULL;
	/* One counter per domain however it is spelt (a Postfix request
	 * carries the client's spelling); a domain without a canonical
	 * form counts under its own text. */
	if (rl->key == POLICY_KEY_SENDER_DOMAIN &&
	    domain_canonical(v, strlen(v), buf, size, NULL) == 0)
		return buf;
	str_copy(buf, v, size);
	for (char *c = buf; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return buf;
}

/* rate_limits_for - every rate_limits rule of one event. */
static enum elemta_action
rate_limits_for(struct policy *p, enum policy_event event,
    const elemta_ctx *ctx, struct elemta_result *res)
{
	char val[512], key[700], what[64];

	if (p->rate_limit_count == 0 || policy_client_exempt(p, ctx))
		return ELEMTA_CONTINUE;
	for (size_t i = 0; i < p->rate_limit_count; i++) {
		const struct policy_rate_limit *rl = &p->rate_limits[i];
		const char *v;
		enum elemta_action act;

		if (rl->event != event)
			continue;
		v = rate_key_value(rl, ctx, val, sizeof(val));
		if (v == NULL)
			continue;
		snprintf(key, sizeof(key), "%s:%s", rl->id, v);
		snprintf(what, sizeof(what), "%ss per %s", event_names[rl->event],
		    key_names[rl->key]);
		if (rl->action == ELEMTA_REJECT)
			act = rate_hit(ctx, key, rl->limit, rl->period_ms,
			    ELEMTA_REJECT, 550, "5.7.1", what, res);
		else
			act = rate_hit(ctx, key, rl->limit, rl->period_ms,
			    ELEMTA_TEMPFAIL, 450, "4.7.1", what, res);
		if (act != ELEMTA_CONTINUE)
			return act;
	}
	return ELEMTA_CONTINUE;
}

/* policy_rule_limits_connection - rate_limits with event: connection. */
enum elemta_action
policy_rule_limits_connection(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	return rate_limits_for(p, POLICY_EVENT_CONNECTION, ctx, res);
}

/* policy_rule_limits_message - rate_limits with event: message (once per message). */
enum elemta_action
policy_rule_limits_message(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	if (!policy_counts_message(ctx))
		return ELEMTA_CONTINUE;
	return rate_limits_for(p, POLICY_EVENT_MESSAGE, ctx, res);
}

/* policy_rule_limits_recipient - rate_limits with event: recipient. */
enum elemta_action
policy_rule_limits_recipient(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	if (!policy_phase_is(ctx, ELEMTA_PHASE_RCPT))
		return ELEMTA_CONTINUE;
	return rate_limits_for(p, POLICY_EVENT_RECIPIENT, ctx, res);
}
