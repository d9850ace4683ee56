/*
 * policy.c - the built-in `policy` plugin: descriptor, config keys, init,
 * and the hooks that walk the rule tables.
 *
 * Registered by policyd/builtin.c; configured under
 *     plugins: - name: policy
 *                config: { max_messages_per_minute: 60, ... }
 * Every key of the reference document is known here; a key whose rule is
 * not implemented yet is refused ("not supported yet") rather than
 * accepted and ignored.
 *
 * Requests from a real Postfix (the host's Postfix listener) arrive at
 * whatever state its restriction lists ask in - with the default
 * smtpd_delay_reject, client and sender checks come in the RCPT state - so
 * for them the client and sender rules also run at the later phases; the
 * rules are idempotent there except counting, which counts a message once
 * per instance (policy_counts_message).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "policy.h"

#define METRIC_CONNECTIONS "policy_rejected_connections_total"
#define METRIC_SENDERS "policy_rejected_senders_total"
#define METRIC_RECIPIENTS "policy_rejected_recipients_total"
#define METRIC_MESSAGES "policy_rejected_messages_total"

/* Every key the plugin knows (for the nearest-key suggestion). */
static const char *const policy_keys[] = {
	"blocked_ips", "exempt_ips", "max_connections_per_minute",
	"access_hours", "block_bad_reputation", "min_reputation_score",
	"reputation_file", "reject_unauthenticated_null_sender",
	"validate_sender_format", "allowed_sender_domains",
	"max_messages_per_minute", "max_message_size",
	"blocked_recipient_domains", "allowed_relay_domains",
	"max_recipients_per_message", "rate_limits", "prohibited_keywords",
	"prohibited_extensions", "content_action", "max_failed_auth",
	"failed_auth_window", "user_auth_hours", "dnsbl",
	"require_client_name",
	"failed_auth_window", "user_auth_hours", "greylisting", "spf",
	NULL,
};

/* Known keys whose rules do not exist yet: refused, never ignored
 * (none at the moment). */
static const char *const policy_unsupported[] = {
	NULL,
};

/* ==== Helpers for the rule files ==== */

/* policy_cfg_domains - a domain list (absent or empty: no entries). */
int
policy_cfg_domains(const elemta_cfg *cfg, const char *key,
    struct addr_domain_list *list, char *err, size_t errlen)
{
	const elemta_cfg *items;
	struct error e;

	if (elemta_cfg_string_list(cfg, key, &items, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < elemta_cfg_len(items); i++) {
		const elemta_cfg *it = elemta_cfg_at(items, i);

		if (addr_domain_list_add(list, elemta_cfg_scalar(it), &e) != 0) {
			snprintf(err, errlen, "%s: key '%s': %s",
			    elemta_cfg_where(it), key, e.text);
			return -1;
		}
	}
	return 0;
}

/* policy_cfg_cidrs - a CIDR list (IPv4 and IPv6, bare addresses too). */
int
policy_cfg_cidrs(const elemta_cfg *cfg, const char *key,
    struct addr_cidr_list *list, char *err, size_t errlen)
{
	const elemta_cfg *items;
	struct error e;

	if (elemta_cfg_string_list(cfg, key, &items, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < elemta_cfg_len(items); i++) {
		const elemta_cfg *it = elemta_cfg_at(items, i);

		if (addr_cidr_list_add(list, elemta_cfg_scalar(it), 0, &e) != 0) {
			snprintf(err, errlen, "%s: key '%s': %s",
			    elemta_cfg_where(it), key, e.text);
			return -1;
		}
	}
	return 0;
}

/* policy_cfg_count - 0 (off) .. max. */
int
policy_cfg_count(const elemta_cfg *cfg, const char *key, uint32_t max,
    uint32_t *out, char *err, size_t errlen)
{
	int64_t v;

	if (elemta_cfg_int(cfg, key, 0, 0, max, &v, err, errlen) != 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* policy_phase_is - the request is about phase. */
bool
policy_phase_is(const elemta_ctx *ctx, enum elemta_phase phase)
{
	return elemta_ctx_phase_id(ctx) == phase;
}

/* policy_from_postfix - the request came from the Postfix listener. */
bool
policy_from_postfix(const elemta_ctx *ctx)
{
	const char *l = elemta_ctx_attr(ctx, ELEMTA_ATTR_LISTENER);

	return l != NULL && strcmp(l, ELEMTA_LISTENER_POSTFIX) == 0;
}

/* policy_table_failure - never allow when a count could not be made. */
enum elemta_action
policy_table_failure(struct elemta_result *res)
{
	return elemta_result_set(res, ELEMTA_TEMPFAIL, POLICY_FAILURE_CODE,
	    POLICY_FAILURE_ENHANCED, "Temporary policy failure, try again later");
}

/* ==== Rule tables and hooks ==== */

struct policy_rule {
	const char *name;
	policy_rule_fn fn;
};

/* Client rules that give the same answer however often they run.  The
 * DNS rules come last: they may return pending (and be run again with
 * the rules before them), and no rule before them writes counters. */
static const struct policy_rule client_rules[] = {
	{ "blocked_ips", policy_rule_blocked_ips },
	{ "reputation", policy_rule_reputation },
	{ "access_hours", policy_rule_access_hours },
	{ "require_client_name", policy_rule_client_name },
	{ "dnsbl", policy_rule_dnsbl },
};
/* Client rules that count a connection: CONNECT only. */
static const struct policy_rule connect_rules[] = {
	{ "max_connections_per_minute", policy_rule_connection_rate },
	{ "rate_limits", policy_rule_limits_connection },
};
/* Counting rules come last so a message refused for another reason is
 * not looked at by them (and a refused decision is withdrawn anyway). */
static const struct policy_rule sender_rules[] = {
	{ "reject_unauthenticated_null_sender", policy_rule_null_sender },
	{ "validate_sender_format", policy_rule_sender_format },
	{ "allowed_sender_domains", policy_rule_sender_domains },
	{ "max_message_size", policy_rule_message_size },
	{ "spf", policy_rule_spf },     /* DNS: before any counting rule */
	{ "max_messages_per_minute", policy_rule_message_rate },
	{ "rate_limits", policy_rule_limits_message },
};
static const struct policy_rule recipient_rules[] = {
	/* first: it may return pending, and no rule before it writes
	 * counters (the hook is run again from its start) */
	{ "greylisting", policy_rule_greylist_dnswl },
	{ "blocked_recipient_domains", policy_rule_blocked_recipients },
	{ "allowed_relay_domains", policy_rule_relay },
	{ "max_recipients_per_message", policy_rule_max_recipients },
	{ "rate_limits", policy_rule_limits_recipient },
	/* last: its records stay whatever the decision (see greylist.c) */
	{ "greylisting", policy_rule_greylist },
};
static const struct policy_rule data_rules[] = {
	{ "max_message_size", policy_rule_message_size },
};

#define RULES(t) (t), (sizeof(t) / sizeof((t)[0]))

/* policy_walk - run rules in order; the first verdict wins and counts in
 * the table's metric (a counter-table failure is not a policy refusal). */
static enum elemta_action
policy_walk(struct policy *p, const struct policy_rule *rules, size_t n,
    const char *metric, const elemta_ctx *ctx, struct elemta_result *res)
{
	for (size_t i = 0; i < n; i++) {
		enum elemta_action act = rules[i].fn(p, ctx, res);

		if (act == ELEMTA_CONTINUE)
			continue;
		if (act == ELEMTA_PENDING)
			return act;     /* waits for DNS: no verdict yet */
		if (!(res->smtp_code == POLICY_FAILURE_CODE &&
		    strcmp(res->enhanced, POLICY_FAILURE_ENHANCED) == 0))
			elemta_metric_add(ctx, metric, 1);
		if (act == ELEMTA_REJECT && rules[i].fn != policy_rule_reputation)
			policy_reputation_refused(p, ctx);
		elemta_log(ctx, ELEMTA_LOG_DEBUG, "rule %s: %d %s %s",
		    rules[i].name, res->smtp_code, res->enhanced, res->message);
		return act;
	}
	return ELEMTA_CONTINUE;
}

/* policy_postfix_prelude - for Postfix requests after CONNECT, the client
 * and sender rules it may never have asked about separately. */
static enum elemta_action
policy_postfix_prelude(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	enum elemta_action act;

	if (!policy_from_postfix(ctx))
		return ELEMTA_CONTINUE;
	act = policy_walk(p, RULES(client_rules), METRIC_CONNECTIONS, ctx, res);
	if (act != ELEMTA_CONTINUE)
		return act;
	if (elemta_ctx_sender(ctx) == NULL)
		return ELEMTA_CONTINUE;
	return policy_walk(p, RULES(sender_rules), METRIC_SENDERS, ctx, res);
}

/* policy_after - a message that passed every rule raises the client's
 * reputation: at end of data from Elemta's smtpd, at the request that
 * counts it from a Postfix (which may never ask at end of data). */
static enum elemta_action
policy_after(struct policy *p, const elemta_ctx *ctx, enum elemta_action act)
{
	if (act != ELEMTA_CONTINUE || !p->block_bad_reputation)
		return act;
	if (policy_from_postfix(ctx) ? policy_counts_message(ctx) :
	    policy_phase_is(ctx, ELEMTA_PHASE_EOM))
		policy_reputation_accepted(p, ctx);
	return act;
}

/* policy_on_connect - CONNECT: client rules, then connection counting. */
static enum elemta_action
policy_on_connect(void *state, const elemta_ctx *ctx, struct elemta_result *res)
{
	struct policy *p = state;
	enum elemta_action act;

	act = policy_walk(p, RULES(client_rules), METRIC_CONNECTIONS, ctx, res);
	if (act != ELEMTA_CONTINUE)
		return act;
	return policy_walk(p, RULES(connect_rules), METRIC_CONNECTIONS, ctx, res);
}

/* policy_on_mail_from - MAIL: sender rules (and client rules for Postfix). */
static enum elemta_action
policy_on_mail_from(void *state, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	struct policy *p = state;

	if (policy_from_postfix(ctx)) {
		enum elemta_action act = policy_walk(p, RULES(client_rules),
		    METRIC_CONNECTIONS, ctx, res);

		if (act != ELEMTA_CONTINUE)
			return act;
	}
	return policy_after(p, ctx, policy_walk(p, RULES(sender_rules),
	    METRIC_SENDERS, ctx, res));
}

/* policy_on_rcpt_to - RCPT: recipient rules (after the Postfix prelude). */
static enum elemta_action
policy_on_rcpt_to(void *state, const elemta_ctx *ctx, struct elemta_result *res)
{
	struct policy *p = state;
	enum elemta_action act = policy_postfix_prelude(p, ctx, res);

	if (act != ELEMTA_CONTINUE)
		return act;
	return policy_after(p, ctx, policy_walk(p, RULES(recipient_rules),
	    METRIC_RECIPIENTS, ctx, res));
}

/* policy_on_data - DATA and END-OF-MESSAGE: message rules, then the
 * content rules (outside policy_walk: only their REJECT is a refusal
 * to count; quarantine and discard accept the message). */
static enum elemta_action
policy_on_data(void *state, const elemta_ctx *ctx, struct elemta_result *res)
{
	struct policy *p = state;
	enum elemta_action act = policy_postfix_prelude(p, ctx, res);

	if (act != ELEMTA_CONTINUE)
		return act;
	act = policy_walk(p, RULES(data_rules), METRIC_MESSAGES, ctx, res);
	if (act == ELEMTA_CONTINUE) {
		act = policy_rule_content(p, ctx, res);
		if (act == ELEMTA_REJECT) {
			elemta_metric_add(ctx, METRIC_MESSAGES, 1);
			policy_reputation_refused(p, ctx);
		}
	}
	return policy_after(p, ctx, act);
}

/* ==== Life cycle ==== */

/* policy_destroy - free the plugin state. */
static void
policy_destroy(void *state)
{
	struct policy *p = state;

	if (p == NULL)
		return;
	policy_client_free(p);
	policy_reputation_free(p);
	policy_sender_free(p);
	policy_recipients_free(p);
	policy_rate_free(p);
	policy_auth_free(p);
	policy_content_free(p);
	policy_dnsbl_free(p);
	policy_spf_free(p);
	policy_greylist_free(p);
	free(p);
}

/* policy_init - validate every key, build the lists once. */
static int
policy_init(const elemta_cfg *cfg, void **state, char *err, size_t errlen)
{
	struct policy *p;

	if (elemta_cfg_check_keys(cfg, policy_keys, err, errlen) != 0)
		return -1;
	for (size_t i = 0; policy_unsupported[i] != NULL; i++) {
		const elemta_cfg *n = elemta_cfg_get(cfg, policy_unsupported[i]);

		if (n != NULL) {
			snprintf(err, errlen, "%s: key '%s': not supported yet",
			    elemta_cfg_where(n), policy_unsupported[i]);
			return -1;
		}
	}
	p = xcalloc(1, sizeof(*p));
	if (policy_client_config(p, cfg, err, errlen) != 0 ||
	    policy_reputation_config(p, cfg, err, errlen) != 0 ||
	    policy_sender_config(p, cfg, err, errlen) != 0 ||
	    policy_recipients_config(p, cfg, err, errlen) != 0 ||
	    policy_rate_config(p, cfg, err, errlen) != 0 ||
	    policy_auth_config(p, cfg, err, errlen) != 0 ||
	    policy_content_config(p, cfg, err, errlen) != 0 ||
	    policy_dnsbl_config(p, cfg, err, errlen) != 0 ||
	    policy_client_name_config(p, cfg, err, errlen) != 0 ||
	    policy_greylist_config(p, cfg, err, errlen) != 0 ||
	    policy_spf_config(p, cfg, err, errlen) != 0) {
		policy_destroy(p);
		return -1;
	}
	elemta_log(NULL, ELEMTA_LOG_DEBUG, "%zu blocked networks, %zu blocked "
	    "recipient domains, %u messages/min, %zu rate limits",
	    p->blocked_ips.count, p->blocked_recipient_domains.count,
	    (unsigned)p->max_messages_per_minute, p->rate_limit_count);
	*state = p;
	return 0;
}

const struct elemta_plugin policy_plugin_descriptor = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION,
	.name = "policy",
	.version = "1.0",
	.init = policy_init,
	.destroy = policy_destroy,
	.on_connect = policy_on_connect,
	.on_helo = NULL,
	.on_auth = policy_on_auth,
	.on_mail_from = policy_on_mail_from,
	.on_rcpt_to = policy_on_rcpt_to,
	.on_data = policy_on_data,
};
