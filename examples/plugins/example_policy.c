/*
 * example_policy.c - the reference document's example policy plugin, in C.
 *
 * This file is meant to be copied: it is a complete, working plugin that
 * uses only <elemta/plugin.h> and libc.  elemta-policyd loads it with
 * dlopen(3), calls policy_init() once with the plugin's `config:` map, then
 * calls the hooks below at each SMTP phase (see docs/plugins.md).
 *
 * Build (out of tree, against the installed SDK):
 *     cc -std=c11 -shared -fPIC -Wall -Wextra -Werror \
 *         $(pkg-config --cflags elemta-plugin) -o example_policy.so example_policy.c
 *
 * Configuration (every key optional; an absent list means "no restriction",
 * an absent or 0 limit means "no limit"):
 *
 *   plugins:
 *     - name: example_policy
 *       path: /usr/lib/elemta/plugins/example_policy.so
 *       config:
 *         max_messages_per_minute: 60      # per client IP (IPv6: per /64)
 *         max_recipients_per_message: 50
 *         allowed_sender_domains: [example.com, trusted.org]
 *         blocked_recipient_domains: [blocked.com, spam.org]
 *         allowed_relay_domains: [example.com, trusted.org]  # unauthenticated only
 *         block_bad_reputation: true
 *         min_reputation_score: 50          # 0..100, default 50
 *         reputation:                       # address or CIDR -> score 0..100
 *           192.0.2.0/24: 10
 *           "2001:db8::/32": 20
 *
 * Domain lists: "example.com" matches exactly that domain, ".example.com"
 * its subdomains (not itself); case-insensitive; a trailing dot is ignored.
 * Reputation: the longest matching prefix gives the score; an address that
 * no entry covers has no score and is never refused by this rule.
 *
 * Decisions (first match wins within a hook):
 *
 *   hook          rule                          reply       metric
 *   on_connect    reputation score < minimum    554 5.7.1   policy_rejected_connections_total
 *   on_mail_from  sender without a domain       553 5.1.7   policy_rejected_senders_total
 *   on_mail_from  sender domain not allowed     550 5.7.1   policy_rejected_senders_total
 *   on_mail_from  messages per minute reached   450 4.7.1   policy_rejected_messages_total
 *   on_rcpt_to    recipient domain blocked      550 5.7.1   policy_rejected_recipients_total
 *   on_rcpt_to    relay to a foreign domain     554 5.7.1   policy_rejected_recipients_total
 *   on_rcpt_to    recipients per message        452 4.5.3   policy_rejected_recipients_total
 *   (any)         counter table failed          451 4.3.0   -
 *
 * State: the per-client message rate lives in the host's shared counter
 * table (elemta_rate_check), never in this process's memory, because
 * several elemta-policyd workers run this plugin side by side and a
 * restart must not forget the count.  Everything kept in `struct
 * policy_state` is read-only configuration built once by policy_init().
 */

/* POSIX for strdup(), inet_pton() and inet_ntop(): plugins are built with
 * plain -std=c11, which hides everything outside ISO C. */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <elemta/plugin.h>

#define PLUGIN_NAME "example_policy"
#define PLUGIN_VERSION "1.0.0"

#define DOMAIN_MAX 253            /* RFC 1035 limit on a domain name */
#define RATE_PERIOD_MS 60000u     /* "per minute" */
/* The largest limit the host's sliding-window table holds (see the report
 * of issue 6: the header should export this as ELEMTA_RATE_LIMIT_MAX). */
#define RATE_LIMIT_MAX 100000
#define RECIPIENTS_MAX 100000

/* ==== State built by init ==== */

/* A domain list, lower-cased, trailing dot removed.  An entry starting with
 * '.' matches subdomains only. */
struct domain_list {
	char **items;
	size_t count;
};

/* One `reputation:` entry: a network and the score its addresses get. */
struct reputation_entry {
	int family;                  /* AF_INET or AF_INET6                 */
	unsigned char net[16];       /* network bytes (4 used for AF_INET)  */
	unsigned prefix;             /* 0..32 or 0..128                     */
	int score;                   /* 0..100                              */
};

struct policy_state {
	int64_t max_messages_per_minute;     /* 0 = no limit */
	int64_t max_recipients_per_message;  /* 0 = no limit */
	struct domain_list allowed_senders;
	struct domain_list blocked_recipients;
	struct domain_list relay_domains;
	int block_bad_reputation;
	int64_t min_reputation_score;
	struct reputation_entry *reputation;
	size_t reputation_count;
};

/* Every key this plugin understands: elemta_cfg_check_keys() refuses any
 * other (a typo in the config is an error, not a silently ignored rule). */
static const char *const policy_known_keys[] = {
	"max_messages_per_minute",
	"max_recipients_per_message",
	"allowed_sender_domains",
	"blocked_recipient_domains",
	"allowed_relay_domains",
	"block_bad_reputation",
	"min_reputation_score",
	"reputation",
	NULL,
};

/* ==== Domains ==== */

/* domain_normalize - lower-case src into dst without a trailing dot;
 * returns -1 when it does not fit (longer than any real domain). */
static int domain_normalize(const char *src, char *dst, size_t size)
{
	size_t n = strlen(src);

	if (n > 0 && src[n - 1] == '.')
		n--;
	if (n >= size)
		return -1;
	for (size_t i = 0; i < n; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[n] = '\0';
	return 0;
}

/* domain_entry_valid - a list entry: [.]label(.label)*, letters, digits,
 * '-' and '_' (the latter appears in real host names). */
static int domain_entry_valid(const char *d)
{
	const char *p = d[0] == '.' ? d + 1 : d;

	if (*p == '\0' || *p == '.')
		return 0;
	for (; *p != '\0'; p++) {
		if (*p == '.' && (p[1] == '.' || p[1] == '\0'))
			return 0;
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
			return 0;
	}
	return 1;
}

/* domain_list_load - read the string list `key` into out, validating each
 * entry; errors name the entry's file:line:column and the key. */
static int domain_list_load(const elemta_cfg *config, const char *key,
    struct domain_list *out, char *err, size_t errlen)
{
	const elemta_cfg *list;
	char norm[DOMAIN_MAX + 2];

	if (elemta_cfg_string_list(config, key, &list, err, errlen) != 0)
		return -1;
	if (list == NULL)
		return 0;                        /* absent: no restriction */
	size_t n = elemta_cfg_len(list);
	if (n == 0)
		return 0;
	out->items = calloc(n, sizeof *out->items);
	if (out->items == NULL) {
		snprintf(err, errlen, "key '%s': out of memory", key);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const elemta_cfg *item = elemta_cfg_at(list, i);
		const char *text = elemta_cfg_scalar(item);

		if (domain_normalize(text, norm, sizeof norm) != 0 ||
		    !domain_entry_valid(norm)) {
			snprintf(err, errlen, "%s: key '%s': '%.80s' is not a domain "
			    "name (write example.com, or .example.com for its "
			    "subdomains)", elemta_cfg_where(item), key, text);
			return -1;
		}
		out->items[i] = strdup(norm);
		if (out->items[i] == NULL) {
			snprintf(err, errlen, "key '%s': out of memory", key);
			return -1;
		}
		out->count = i + 1;
	}
	return 0;
}

/* domain_list_match - 1 when domain (any case, trailing dot allowed) is in
 * the list: equal to an entry, or below a ".entry". */
static int domain_list_match(const struct domain_list *list, const char *domain)
{
	char d[DOMAIN_MAX + 2];

	if (domain_normalize(domain, d, sizeof d) != 0)
		return 0;                        /* too long to be any listed domain */
	size_t dlen = strlen(d);
	for (size_t i = 0; i < list->count; i++) {
		const char *e = list->items[i];
		size_t elen = strlen(e);

		if (e[0] != '.') {
			if (strcmp(d, e) == 0)
				return 1;
		} else if (dlen > elen && strcmp(d + dlen - elen, e) == 0) {
			return 1;                    /* "mx.example.com" ends in ".example.com" */
		}
	}
	return 0;
}

/* domain_list_free - release the entries (the list itself is embedded). */
static void domain_list_free(struct domain_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->items[i]);
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

/* mail_domain - the domain of a mail address (after the last '@'), or NULL
 * when there is none ("postmaster", or the null sender ""). */
static const char *mail_domain(const char *address)
{
	const char *at = strrchr(address, '@');

	return at != NULL && at[1] != '\0' ? at + 1 : NULL;
}

/* ==== Addresses and the reputation map ==== */

/* ip_parse - text to (family, bytes); 0 or -1.  The host gives client
 * addresses in canonical text, IPv4-mapped IPv6 already shown as IPv4. */
static int ip_parse(const char *text, int *family, unsigned char bytes[16])
{
	memset(bytes, 0, 16);
	if (inet_pton(AF_INET, text, bytes) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, bytes) == 1) {
		*family = AF_INET6;
		return 0;
	}
	return -1;
}

/* prefix_match - 1 when the first prefix bits of a and net are equal. */
static int prefix_match(const unsigned char *a, const unsigned char *net,
    unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (memcmp(a, net, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	unsigned char mask = (unsigned char)(0xffu << (8 - rest));
	return (a[full] & mask) == (net[full] & mask);
}

/* cidr_parse - "192.0.2.0/24", "2001:db8::/32" or a bare address (a /32 or
 * /128).  Host bits set below the prefix are refused: "192.0.2.7/24" is
 * more likely a typo than an intention. */
static int cidr_parse(const char *text, struct reputation_entry *e,
    const char **problem)
{
	char addr[64];
	const char *slash = strchr(text, '/');
	size_t alen = slash != NULL ? (size_t)(slash - text) : strlen(text);

	*problem = "is not an IP address or CIDR network";
	if (alen == 0 || alen >= sizeof addr)
		return -1;
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	if (ip_parse(addr, &e->family, e->net) != 0)
		return -1;
	unsigned max = e->family == AF_INET ? 32 : 128;
	e->prefix = max;
	if (slash != NULL) {
		const char *p = slash + 1;
		unsigned v = 0;

		if (*p == '\0')
			return -1;
		for (; *p != '\0'; p++) {
			if (!isdigit((unsigned char)*p) || (v = v * 10 + (unsigned)(*p - '0')) > max) {
				*problem = "has a prefix length out of range";
				return -1;
			}
		}
		e->prefix = v;
	}
	unsigned char masked[16];
	memset(masked, 0, sizeof masked);
	memcpy(masked, e->net, e->prefix / 8);
	if (e->prefix % 8 != 0)
		masked[e->prefix / 8] = (unsigned char)(e->net[e->prefix / 8] &
		    (0xffu << (8 - e->prefix % 8)));
	if (memcmp(masked, e->net, 16) != 0) {
		*problem = "has host bits set below its prefix length";
		return -1;
	}
	return 0;
}

/* reputation_load - the `reputation:` map, {address or CIDR: score}. */
static int reputation_load(const elemta_cfg *config, struct policy_state *st,
    char *err, size_t errlen)
{
	const elemta_cfg *map = elemta_cfg_get(config, "reputation");

	if (map == NULL)
		return 0;
	if (elemta_cfg_type(map) != ELEMTA_CFG_MAP) {
		snprintf(err, errlen, "%s: key 'reputation': expected a map of "
		    "address or CIDR to score, like {192.0.2.0/24: 10}",
		    elemta_cfg_where(map));
		return -1;
	}
	size_t n = elemta_cfg_len(map);
	if (n == 0)
		return 0;
	st->reputation = calloc(n, sizeof *st->reputation);
	if (st->reputation == NULL) {
		snprintf(err, errlen, "key 'reputation': out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const char *net = elemta_cfg_key_at(map, i);
		struct reputation_entry *e = &st->reputation[i];
		const char *problem;
		int64_t score;

		/* The typed getter validates the score and, on error, names
		 * the entry's file:line:column. */
		if (elemta_cfg_int(map, net, 0, 0, 100, &score, err, errlen) != 0)
			return -1;
		if (cidr_parse(net, e, &problem) != 0) {
			snprintf(err, errlen, "%s: key 'reputation': '%.64s' %s",
			    elemta_cfg_where(elemta_cfg_at(map, i)), net, problem);
			return -1;
		}
		e->score = (int)score;
		st->reputation_count = i + 1;
	}
	return 0;
}

/* reputation_lookup - the score of the longest prefix covering ip, or -1
 * when no entry covers it. */
static int reputation_lookup(const struct policy_state *st, const char *ip)
{
	unsigned char bytes[16];
	int family, best = -1;
	long best_prefix = -1;

	if (ip_parse(ip, &family, bytes) != 0)
		return -1;
	for (size_t i = 0; i < st->reputation_count; i++) {
		const struct reputation_entry *e = &st->reputation[i];

		if (e->family == family && (long)e->prefix > best_prefix &&
		    prefix_match(bytes, e->net, e->prefix)) {
			best = e->score;
			best_prefix = (long)e->prefix;
		}
	}
	return best;
}

/* rate_key - the counter key for the client: "msg:<IPv4>" or, because an
 * IPv6 client usually owns a whole /64 and could rotate through it,
 * "msg:<IPv6 /64 network>/64".  The host namespaces keys per plugin. */
static void rate_key(const char *ip, char *buf, size_t size)
{
	unsigned char bytes[16];
	char net[INET6_ADDRSTRLEN];
	int family;

	if (ip_parse(ip, &family, bytes) == 0 && family == AF_INET6) {
		memset(bytes + 8, 0, 8);
		if (inet_ntop(AF_INET6, bytes, net, sizeof net) != NULL) {
			snprintf(buf, size, "msg:%s/64", net);
			return;
		}
	}
	snprintf(buf, size, "msg:%s", ip);
}

/* ==== init / destroy ==== */

/* policy_destroy - free the state (also a partly built one). */
static void policy_destroy(void *state)
{
	struct policy_state *st = state;

	if (st == NULL)
		return;
	domain_list_free(&st->allowed_senders);
	domain_list_free(&st->blocked_recipients);
	domain_list_free(&st->relay_domains);
	free(st->reputation);
	free(st);
}

/* policy_load - validate config into st; -1 with a one-line reason. */
static int policy_load(const elemta_cfg *config, struct policy_state *st,
    char *err, size_t errlen)
{
	if (elemta_cfg_type(config) != ELEMTA_CFG_MAP) {
		snprintf(err, errlen, "%s: config: expected a map of settings",
		    elemta_cfg_where(config));
		return -1;
	}
	if (elemta_cfg_check_keys(config, policy_known_keys, err, errlen) != 0)
		return -1;
	if (elemta_cfg_int(config, "max_messages_per_minute", 0, 0,
	    RATE_LIMIT_MAX, &st->max_messages_per_minute, err, errlen) != 0 ||
	    elemta_cfg_int(config, "max_recipients_per_message", 0, 0,
	    RECIPIENTS_MAX, &st->max_recipients_per_message, err, errlen) != 0 ||
	    elemta_cfg_bool(config, "block_bad_reputation", 0,
	    &st->block_bad_reputation, err, errlen) != 0 ||
	    elemta_cfg_int(config, "min_reputation_score", 50, 0, 100,
	    &st->min_reputation_score, err, errlen) != 0)
		return -1;
	if (domain_list_load(config, "allowed_sender_domains",
	    &st->allowed_senders, err, errlen) != 0 ||
	    domain_list_load(config, "blocked_recipient_domains",
	    &st->blocked_recipients, err, errlen) != 0 ||
	    domain_list_load(config, "allowed_relay_domains",
	    &st->relay_domains, err, errlen) != 0)
		return -1;
	return reputation_load(config, st, err, errlen);
}

/* policy_init - build the state from the `config:` map (NULL when the
 * plugin entry has none: every rule is then off). */
static int policy_init(const elemta_cfg *config, void **state, char *err,
    size_t errlen)
{
	struct policy_state *st = calloc(1, sizeof *st);

	if (st == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	st->min_reputation_score = 50;
	if (config != NULL && policy_load(config, st, err, errlen) != 0) {
		policy_destroy(st);
		return -1;
	}
	if (st->block_bad_reputation && st->reputation_count == 0)
		elemta_log(NULL, ELEMTA_LOG_WARNING, "block_bad_reputation is on "
		    "but the reputation map is empty: no client will be refused");
	elemta_log(NULL, ELEMTA_LOG_INFO, "loaded: messages/min %" PRId64
	    ", recipients/message %" PRId64 ", %zu allowed sender, %zu blocked "
	    "recipient, %zu relay domains, reputation %s (%zu entries, min %" PRId64 ")",
	    st->max_messages_per_minute, st->max_recipients_per_message,
	    st->allowed_senders.count, st->blocked_recipients.count,
	    st->relay_domains.count, st->block_bad_reputation ? "on" : "off",
	    st->reputation_count, st->min_reputation_score);
	*state = st;
	return 0;
}

/* ==== Hooks ==== */

/* policy_on_connect - refuse clients whose listed reputation is too low. */
static enum elemta_action policy_on_connect(void *state,
    const elemta_ctx *ctx, struct elemta_result *res)
{
	const struct policy_state *st = state;
	const char *ip = elemta_ctx_client_ip(ctx);

	if (!st->block_bad_reputation || st->reputation_count == 0)
		return ELEMTA_CONTINUE;
	int score = reputation_lookup(st, ip);
	if (score < 0 || score >= st->min_reputation_score)
		return ELEMTA_CONTINUE;
	elemta_metric_add(ctx, "policy_rejected_connections_total", 1);
	elemta_log(ctx, ELEMTA_LOG_INFO, "reject connect from %s: reputation "
	    "%d below %" PRId64, ip, score, st->min_reputation_score);
	/* The score stays in the log: telling it to the client helps only
	 * the client. */
	return elemta_result_set(res, ELEMTA_REJECT, 554, "5.7.1",
	    "Connection refused: poor IP reputation");
}

/* policy_on_mail_from - sender domain filter, then the message rate. */
static enum elemta_action policy_on_mail_from(void *state,
    const elemta_ctx *ctx, struct elemta_result *res)
{
	const struct policy_state *st = state;
	const char *sender = elemta_ctx_sender(ctx);
	const char *ip = elemta_ctx_client_ip(ctx);

	/* The null sender <> carries bounces, which RFC 5321 says must be
	 * accepted: the domain rule does not apply to it. */
	if (st->allowed_senders.count > 0 && sender != NULL && sender[0] != '\0') {
		const char *domain = mail_domain(sender);

		if (domain == NULL) {
			elemta_metric_add(ctx, "policy_rejected_senders_total", 1);
			elemta_log(ctx, ELEMTA_LOG_INFO, "reject sender %s from %s: "
			    "no domain", sender, ip);
			return elemta_result_set(res, ELEMTA_REJECT, 553, "5.1.7",
			    "Sender address must include a domain");
		}
		if (!domain_list_match(&st->allowed_senders, domain)) {
			elemta_metric_add(ctx, "policy_rejected_senders_total", 1);
			elemta_log(ctx, ELEMTA_LOG_INFO, "reject sender %s from %s: "
			    "domain not allowed", sender, ip);
			return elemta_result_set(res, ELEMTA_REJECT, 550, "5.7.1",
			    "Sender domain %.100s is not allowed", domain);
		}
	}

	/* The rate check comes last, so a sender refused above never uses up
	 * one of the client's slots.  elemta_rate_check() checks and records
	 * in one step on the shared table: exact across workers and
	 * restarts, where a counter in this process would be neither. */
	if (st->max_messages_per_minute > 0) {
		char key[96];
		uint64_t retry_ms = 0;

		rate_key(ip, key, sizeof key);
		int rc = elemta_rate_check(ctx, key,
		    (uint32_t)st->max_messages_per_minute, RATE_PERIOD_MS, &retry_ms);
		if (rc < 0) {
			/* Never allow silently when the table failed. */
			elemta_log(ctx, ELEMTA_LOG_ERR, "rate check for %s failed: "
			    "deferring", key);
			return elemta_result_set(res, ELEMTA_TEMPFAIL, 451, "4.3.0",
			    "Temporary policy failure, try again later");
		}
		if (rc == 0) {
			uint64_t retry_s = (retry_ms + 999) / 1000;

			elemta_metric_add(ctx, "policy_rejected_messages_total", 1);
			elemta_log(ctx, ELEMTA_LOG_INFO, "defer message from %s: "
			    "%" PRId64 " messages per minute reached, retry in %" PRIu64 "s",
			    ip, st->max_messages_per_minute, retry_s);
			return elemta_result_set(res, ELEMTA_TEMPFAIL, 450, "4.7.1",
			    "Too many messages from %s, try again in %" PRIu64 " seconds",
			    ip, retry_s);
		}
	}
	return ELEMTA_CONTINUE;
}

/* policy_on_rcpt_to - blocked domains, relay control, recipient count. */
static enum elemta_action policy_on_rcpt_to(void *state,
    const elemta_ctx *ctx, struct elemta_result *res)
{
	const struct policy_state *st = state;
	const char *rcpt = elemta_ctx_recipient(ctx);
	const char *ip = elemta_ctx_client_ip(ctx);
	/* "postmaster" without a domain is a valid recipient (RFC 5321
	 * 4.5.1) addressed to this server: no domain rule applies to it. */
	const char *domain = rcpt != NULL ? mail_domain(rcpt) : NULL;

	if (domain != NULL && domain_list_match(&st->blocked_recipients, domain)) {
		elemta_metric_add(ctx, "policy_rejected_recipients_total", 1);
		elemta_log(ctx, ELEMTA_LOG_INFO, "reject recipient %s from %s: "
		    "domain blocked", rcpt, ip);
		return elemta_result_set(res, ELEMTA_REJECT, 550, "5.7.1",
		    "Recipient domain %.100s is blocked", domain);
	}

	/* Relay control: an authenticated client may send anywhere; anyone
	 * else only to the domains this server accepts mail for. */
	if (domain != NULL && st->relay_domains.count > 0 &&
	    !elemta_ctx_authenticated(ctx) &&
	    !domain_list_match(&st->relay_domains, domain)) {
		elemta_metric_add(ctx, "policy_rejected_recipients_total", 1);
		elemta_log(ctx, ELEMTA_LOG_INFO, "reject recipient %s from %s: "
		    "relay denied (not authenticated)", rcpt, ip);
		return elemta_result_set(res, ELEMTA_REJECT, 554, "5.7.1",
		    "Relay access denied");
	}

	/* recipient_count is the number already accepted: this one would be
	 * number count + 1.  452 (temporary) asks the client to send the
	 * remaining recipients in another transaction (RFC 5321 4.5.3.1.10). */
	if (st->max_recipients_per_message > 0 &&
	    elemta_ctx_recipient_count(ctx) >= (size_t)st->max_recipients_per_message) {
		elemta_metric_add(ctx, "policy_rejected_recipients_total", 1);
		elemta_log(ctx, ELEMTA_LOG_INFO, "defer recipient %s from %s: "
		    "more than %" PRId64 " recipients", rcpt != NULL ? rcpt : "", ip,
		    st->max_recipients_per_message);
		return elemta_result_set(res, ELEMTA_TEMPFAIL, 452, "4.5.3",
		    "Too many recipients (at most %" PRId64 " per message)",
		    st->max_recipients_per_message);
	}
	return ELEMTA_CONTINUE;
}

/* ==== The descriptor: the one symbol the host looks up ==== */

ELEMTA_PLUGIN_EXPORT = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION,
	.name = PLUGIN_NAME,
	.version = PLUGIN_VERSION,
	.init = policy_init,
	.destroy = policy_destroy,
	.on_connect = policy_on_connect,
	.on_helo = NULL,            /* unused hooks stay NULL: never called */
	.on_auth = NULL,
	.on_mail_from = policy_on_mail_from,
	.on_rcpt_to = policy_on_rcpt_to,
	.on_data = NULL,
};
