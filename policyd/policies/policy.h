/*
 * policy.h - the built-in `policy` plugin: the rules of the reference
 * document (custom-policy-plugin.md), one file per rule family.
 *
 * It is a plugin like any other: it sees requests only through the public
 * API of <elemta/plugin.h> (dogfooding) and keeps every shared count in the
 * host's counter table through elemta_rate_check.  From the tree it uses
 * common/addr.h (CIDR and domain lists) and common/error.h, never a
 * policyd/ internal.
 *
 *   policy.c      descriptor, init/destroy, config keys, the hooks
 *   client.c      blocked_ips, exempt_ips, access_hours
 *   reputation.c  block_bad_reputation, min_reputation_score,
 *                 reputation_file
 *   sender.c      reject_unauthenticated_null_sender, validate_sender_format,
 *                 allowed_sender_domains, max_message_size
 *   recipients.c  blocked_recipient_domains, allowed_relay_domains,
 *                 max_recipients_per_message
 *   rate.c        max_connections_per_minute, max_messages_per_minute,
 *                 rate_limits
 *   content.c     prohibited_keywords, prohibited_extensions,
 *                 content_action (scanning in content_scan.c, GMime)
 *   spf.c         spf (RFC 7208 at MAIL, the evaluator in spf_eval.c;
 *                 Received-SPF and Authentication-Results by PREPEND)
 *   auth.c        max_failed_auth, failed_auth_window, user_auth_hours
 *                 (on_auth, after policyd verified the credentials)
 *   dnsbl.c       dnsbl (DNSBL/DNSWL scoring; the site syntax and the
 *                 tally in dnsbl_site.c)
 *   client_name.c require_client_name
 *
 * Rules that need DNS ask through elemta_ctx_dns_lookup and return
 * ELEMTA_PENDING until their answers are there (the host calls the hook
 * again); they come before every rule that writes counters.
 *   greylist.c    greylisting (RCPT, postgrey's algorithm)
 *
 * Each rule is a small function with one input (the request context) and
 * one output (a verdict); the hooks in policy.c walk ordered tables of them.
 */
#ifndef ELEMTA_POLICY_H
#define ELEMTA_POLICY_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <elemta/plugin.h>

#include "addr.h"
#include "content_scan.h"
#include "dnsbl_site.h"
#include "wire.h"

extern const struct elemta_plugin policy_plugin_descriptor;

/* The largest limit a rate rule may have (the counter table's bound). */
#define POLICY_LIMIT_MAX 100000

/* ==== State ==== */

enum policy_event {
	POLICY_EVENT_CONNECTION,
	POLICY_EVENT_MESSAGE,
	POLICY_EVENT_RECIPIENT,
};

enum policy_key {
	POLICY_KEY_CLIENT_IP,
	POLICY_KEY_SENDER,
	POLICY_KEY_SENDER_DOMAIN,
	POLICY_KEY_SASL_USERNAME,
};

/* require_client_name. */
enum policy_name_check {
	POLICY_NAME_OFF,
	POLICY_NAME_PTR,        /* a PTR name                              */
	POLICY_NAME_FCRDNS,     /* a forward-confirmed one                 */
};

struct policy_dnsbl_cache;
struct policy_spf_cache;

/* One entry of rate_limits. */
struct policy_rate_limit {
	enum policy_event event;
	enum policy_key key;
	uint32_t limit;
	uint64_t period_ms;
	enum elemta_action action;   /* ELEMTA_TEMPFAIL or ELEMTA_REJECT */
	char id[96];                 /* counter key prefix, from the params */
};

/* access_hours, parsed. */
struct policy_hours {
	bool set;
	unsigned start_min;          /* minutes since local midnight */
	unsigned end_min;            /* 1440 = midnight at the end   */
	unsigned days;               /* bit n = tm_wday n (0 Sunday)  */
	char timezone[128];          /* "" = the process's local time */
	int64_t cached_minute;       /* the UTC minute cached_open is for */
	bool cached_open;
};

/* greylisting, parsed. */
struct policy_greylist {
	bool enabled;                /* the map is present */
	uint64_t delay_ms;
	uint64_t max_age_ms;
	uint64_t retry_window_ms;
	uint32_t auto_allow_after;   /* 0 = no auto-allow */
	uint64_t auto_allow_interval_ms;
	unsigned ipv4_prefix;
	unsigned ipv6_prefix;
	struct addr_cidr_list exempt_ips;
};

struct policy;

/* One user_auth_hours entry. */
struct policy_user_hours {
	char *user;
	struct policy_hours hours;
};

/* spf, parsed (absent: enabled false). */
struct policy_spf {
	bool enabled;
	bool reject_fail;             /* fail: 550 5.7.23, else accept      */
	bool helo;                    /* check the HELO name for <>         */
	enum elemta_action softfail;  /* CONTINUE, REJECT or TEMPFAIL       */
	enum elemta_action permerror; /* CONTINUE, REJECT or TEMPFAIL       */
	enum elemta_action temperror; /* TEMPFAIL or CONTINUE               */
	char authserv_id[256];        /* receiver=, Authentication-Results  */
};

struct policy {
	/* client (CONNECT) */
	struct addr_cidr_list blocked_ips;
	struct addr_cidr_list exempt_ips;
	uint32_t max_connections_per_minute;
	struct policy_hours hours;
	/* dnsbl, require_client_name (CONNECT) */
	struct dnsbl_site *dnsbl_sites;
	size_t dnsbl_count;
	int64_t dnsbl_threshold;
	enum elemta_action dnsbl_action;         /* REJECT or TEMPFAIL */
	struct policy_dnsbl_cache *dnsbl_cache;  /* per worker, by TTL  */
	enum policy_name_check require_client_name;
	/* reputation (CONNECT) */
	bool block_bad_reputation;
	int min_reputation_score;
	struct addr_cidr_list reputation_list;   /* values: the file's scores */
	/* sender (MAIL) */
	bool reject_unauthenticated_null_sender;
	bool validate_sender_format;
	struct addr_domain_list allowed_sender_domains;
	uint32_t max_messages_per_minute;
	uint64_t max_message_size;
	struct policy_spf spf;
	struct policy_spf_cache *spf_cache;      /* per worker, by TTL  */
	/* recipients (RCPT) */
	struct addr_domain_list blocked_recipient_domains;
	struct addr_domain_list allowed_relay_domains;
	uint32_t max_recipients_per_message;
	/* rate_limits */
	struct policy_rate_limit *rate_limits;
	size_t rate_limit_count;
	/* authentication (AUTH) */
	uint32_t max_failed_auth;                /* 0 = off */
	uint64_t failed_auth_window_ms;
	struct policy_user_hours *user_hours;    /* sorted by user */
	size_t user_hours_count;
	/* content (END-OF-MESSAGE) */
	struct content_scan_rules content;       /* both lists, one scan */
	enum elemta_action content_action;       /* REJECT, QUARANTINE, DISCARD */
	/* greylisting (RCPT) */
	struct policy_greylist greylist;
};

/* A rule: CONTINUE, or a verdict written to res. */
typedef enum elemta_action (*policy_rule_fn)(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);

/* ==== policy.c: helpers shared by the rule files ==== */

/* policy_cfg_domains - read a domain list key into list. */
int policy_cfg_domains(const elemta_cfg *cfg, const char *key,
    struct addr_domain_list *list, char *err, size_t errlen);
/* policy_cfg_cidrs - read a CIDR list key into list. */
int policy_cfg_cidrs(const elemta_cfg *cfg, const char *key,
    struct addr_cidr_list *list, char *err, size_t errlen);
/* policy_cfg_count - a non-negative count key (0 = rule off). */
int policy_cfg_count(const elemta_cfg *cfg, const char *key, uint32_t max,
    uint32_t *out, char *err, size_t errlen);
/* policy_phase_is - the request is about phase. */
bool policy_phase_is(const elemta_ctx *ctx, enum elemta_phase phase);
/* policy_from_postfix - the request came in on the Postfix listener. */
bool policy_from_postfix(const elemta_ctx *ctx);
/* The answer of a rule that could not decide (the counter table or a
 * message scan failed): a temporary failure, not counted as a refusal. */
#define POLICY_FAILURE_CODE 451
#define POLICY_FAILURE_ENHANCED "4.3.0"
/* policy_table_failure - the verdict when the counter table failed. */
enum elemta_action policy_table_failure(struct elemta_result *res);

/* ==== client.c ==== */
int policy_client_config(struct policy *p, const elemta_cfg *cfg, char *err,
    size_t errlen);
void policy_client_free(struct policy *p);
/* policy_client_exempt - the client is in exempt_ips (no rate rule). */
bool policy_client_exempt(const struct policy *p, const elemta_ctx *ctx);
enum elemta_action policy_rule_blocked_ips(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);
enum elemta_action policy_rule_access_hours(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);
/* policy_set_clock - test seam: the wall clock access_hours reads. */
void policy_set_clock(time_t (*clock)(void));
/* policy_now - that wall clock (seconds). */
time_t policy_now(void);
/* policy_monotonic - monotonic seconds, for the per-worker caches. */
time_t policy_monotonic(void);
/* policy_hours_config - one window {start, end, days, timezone} from map
 * node m (NULL: none, hr->set stays false); key names it in errors. */
int policy_hours_config(struct policy_hours *hr, const elemta_cfg *m,
    const char *key, char *err, size_t errlen);
/* policy_hours_open - whether the window contains now. */
bool policy_hours_open(struct policy_hours *hr, time_t now);

/* ==== dnsbl.c ==== */
int policy_dnsbl_config(struct policy *p, const elemta_cfg *cfg, char *err,
    size_t errlen);
void policy_dnsbl_free(struct policy *p);
/* policy_dnsbl_check - the client's DNSBL outcome (score, the blocking
 * site, allowlisted) into *out: ELEMTA_CONTINUE when it is there (from
 * the worker's cache or the request's answers; no sites: zero), or
 * ELEMTA_PENDING while lookups are under way (return it from the hook). */
enum elemta_action policy_dnsbl_check(struct policy *p, const elemta_ctx *ctx,
    struct dnsbl_outcome *out);
/* policy_dnswl_listed - the client is listed by an allowlist site (one
 * of negative weight), for rules that spare such clients (greylisting):
 * ELEMTA_CONTINUE with *listed set, or ELEMTA_PENDING (return it). */
enum elemta_action policy_dnswl_listed(struct policy *p,
    const elemta_ctx *ctx, bool *listed);
/* policy_rule_dnsbl - 554 5.7.1 (or 450 4.7.1 with action tempfail)
 * "Service unavailable; client [ip] blocked using <zone>" at a score of
 * threshold or more. */
enum elemta_action policy_rule_dnsbl(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res);

/* ==== client_name.c ==== */
int policy_client_name_config(struct policy *p, const elemta_cfg *cfg,
    char *err, size_t errlen);
enum elemta_action policy_rule_client_name(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);

/* ==== reputation.c ==== */
int policy_reputation_config(struct policy *p, const elemta_cfg *cfg,
    char *err, size_t errlen);
void policy_reputation_free(struct policy *p);
enum elemta_action policy_rule_reputation(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);
/* policy_reputation_refused - a policy rule refused this client (5xx). */
void policy_reputation_refused(struct policy *p, const elemta_ctx *ctx);
/* policy_reputation_accepted - the client's message passed every rule. */
void policy_reputation_accepted(struct policy *p, const elemta_ctx *ctx);

/* ==== sender.c ==== */
int policy_sender_config(struct policy *p, const elemta_cfg *cfg, char *err,
    size_t errlen);
void policy_sender_free(struct policy *p);
/* policy_sender_format_valid - the reference's address pattern. */
bool policy_sender_format_valid(const char *address);
enum elemta_action policy_rule_null_sender(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);
enum elemta_action policy_rule_sender_format(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);
enum elemta_action policy_rule_sender_domains(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);
enum elemta_action policy_rule_message_size(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);

/* ==== recipients.c ==== */
int policy_recipients_config(struct policy *p, const elemta_cfg *cfg,
    char *err, size_t errlen);
void policy_recipients_free(struct policy *p);
enum elemta_action policy_rule_blocked_recipients(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);
enum elemta_action policy_rule_relay(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);
enum elemta_action policy_rule_max_recipients(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);

/* ==== rate.c ==== */
int policy_rate_config(struct policy *p, const elemta_cfg *cfg, char *err,
    size_t errlen);
void policy_rate_free(struct policy *p);
/* policy_counts_message - this request is the one that counts the message
 * (MAIL from Elemta's smtpd; the first accepted request of an instance at
 * or after MAIL from Postfix). */
bool policy_counts_message(const elemta_ctx *ctx);
enum elemta_action policy_rule_connection_rate(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);
enum elemta_action policy_rule_message_rate(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);
enum elemta_action policy_rule_limits_connection(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);
enum elemta_action policy_rule_limits_message(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);
enum elemta_action policy_rule_limits_recipient(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);

/* ==== content.c ==== */
int policy_content_config(struct policy *p, const elemta_cfg *cfg,
    char *err, size_t errlen);
void policy_content_free(struct policy *p);
/* policy_rule_content - prohibited_keywords / prohibited_extensions at
 * END-OF-MESSAGE; a match takes content_action, a scan error 451 4.3.0. */
enum elemta_action policy_rule_content(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);

/* ==== greylist.c ==== */
int policy_greylist_config(struct policy *p, const elemta_cfg *cfg,
    char *err, size_t errlen);
void policy_greylist_free(struct policy *p);
/* greylist_sender_normalise - the sender as a triplet holds it (postgrey's
 * substitutions): lower-cased; in the local part a BATV tag
 * ("prvs=TAG=user" or "prvs=user=TAG": the side that is not ten or more
 * [0-9a-z]) and an SRS0/SRS1 hash and timestamp are dropped, then
 * everything from the first '+' (an extension), then every whole number
 * (digits not touching a letter, digit or '_') becomes '#'.  NULL or ""
 * (the null sender) is "".  out is truncated to size. */
void greylist_sender_normalise(const char *sender, char *out, size_t size);
/* policy_rule_greylist - RCPT: 450 4.2.0 "Greylisted, retry in N seconds"
 * for a triplet not yet passed; continue for a passed one, an
 * auto-allowed client network, an authenticated, exempt or DNSWL-listed
 * client; 451 4.3.0 when the counter table failed. */
enum elemta_action policy_rule_greylist(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);
/* policy_rule_greylist_dnswl - RCPT, before every rule that writes
 * counters: when greylisting would ask whether the client is on a DNSWL
 * (an allowlist site of the dnsbl rule), make sure the answers are there
 * (ELEMTA_PENDING until they are), so policy_rule_greylist, last, finds
 * them without waiting. */
enum elemta_action policy_rule_greylist_dnswl(struct policy *p,
    const elemta_ctx *ctx, struct elemta_result *res);

/* ==== spf.c ==== */
int policy_spf_config(struct policy *p, const elemta_cfg *cfg, char *err,
    size_t errlen);
/* policy_spf_free - the outcome cache. */
void policy_spf_free(struct policy *p);
/* policy_rule_spf - at MAIL: 550 5.7.23 for a fail (reject_fail), 451
 * 4.7.24 for a temperror, softfail/permerror as configured; every result
 * recorded as Received-SPF and Authentication-Results.  May return
 * pending (DNS). */
enum elemta_action policy_rule_spf(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res);

/* ==== auth.c ==== */
int policy_auth_config(struct policy *p, const elemta_cfg *cfg, char *err,
    size_t errlen);
void policy_auth_free(struct policy *p);
/* policy_auth_gate - before the hash (policyd/builtin.h): 454 for a
 * locked-out address or address+user pair, a delay for a user failing
 * from many addresses. */
enum elemta_action policy_auth_gate(void *state, const elemta_ctx *ctx,
    struct elemta_result *res, uint32_t *delay_ms);
/* policy_on_auth - the on_auth hook: failed-auth limits, auth hours. */
enum elemta_action policy_on_auth(void *state, const elemta_ctx *ctx,
    struct elemta_result *res);

#endif
