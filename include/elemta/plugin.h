/*
 * elemta/plugin.h - the Elemta policy plugin ABI (the whole SDK).
 *
 * A plugin is a shared object built with
 *     cc -shared -fPIC $(pkg-config --cflags elemta-plugin) -o my.so my.c
 * that exports one symbol, ELEMTA_PLUGIN_SYMBOL ("elemta_plugin"), a
 * `const struct elemta_plugin` descriptor.  elemta-policyd loads it with
 * dlopen(3) at start-up and on reload, checks abi_version, calls init() with
 * the plugin's `config:` subtree, and then calls its hooks at each SMTP phase.
 *
 * Threading: each elemta-policyd worker is a single-threaded process; a hook
 * is never called concurrently with another hook of the same instance.
 * State shared between workers must go through the host's counter services
 * (the LMDB table), never through process memory.
 *
 * Ownership: every pointer returned by an accessor below is owned by the host
 * and valid until the hook (or init) that received it returns.
 *
 * Versioning (the ABI rule): ELEMTA_PLUGIN_ABI_VERSION is the major
 * version, stored in the descriptor and compared exactly at load time; it
 * changes whenever the descriptor, the result struct or the meaning of an
 * existing function or enum value changes, and a plugin built for another
 * major version is refused with one line naming both versions.
 * ELEMTA_PLUGIN_ABI_MINOR counts additions that leave every existing
 * plugin working: new functions, new enum values appended at the end.
 * It is not stored in the descriptor: a plugin built against minor N
 * loads in every host of the same major version whose minor is at least
 * N, and one that calls a function its host lacks is refused by dlopen
 * (RTLD_NOW) with one "undefined symbol" line.  A function that is
 * superseded keeps working (elemta_ctx_phase(), the string form of
 * elemta_ctx_phase_id(), since minor 1).
 *   minor 0  the first release of ABI 1
 *   minor 1  enum elemta_phase, elemta_ctx_phase_id(),
 *            elemta_ctx_transaction_accepted(), ELEMTA_ATTR_LISTENER
 *            and its values ELEMTA_LISTENER_ELEMTA/_POSTFIX,
 *            ELEMTA_ATTR_CLIENT_KEY
 *   minor 2  elemta_ctx_prepend_header(); elemta_greylist_check() with
 *            struct elemta_greylist and enum elemta_greylist_verdict;
 *            DNS for hooks:
 *            elemta_ctx_dns_lookup(), the ELEMTA_PENDING action and elemta_pending(), enum elemta_dns_type and
 *            elemta_dns_status, struct elemta_dns_answer and
 *            elemta_dns_record; elemta_ctx_reverse_client_name(),
 *            ELEMTA_ATTR_CLIENT_NAME_STATUS and
 *            ELEMTA_ATTR_REVERSE_CLIENT_NAME_STATUS with their values
 */
#ifndef ELEMTA_PLUGIN_H
#define ELEMTA_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ELEMTA_PLUGIN_ABI_VERSION 1u
#define ELEMTA_PLUGIN_ABI_MINOR 2u
#define ELEMTA_PLUGIN_SYMBOL "elemta_plugin"

/* Declares the descriptor a plugin exports: ELEMTA_PLUGIN_EXPORT = {...}; */
#define ELEMTA_PLUGIN_EXPORT \
	extern const struct elemta_plugin elemta_plugin; \
	__attribute__((visibility("default"))) const struct elemta_plugin elemta_plugin

/* ==== Results ==== */

/* What a hook decided.  The first non-CONTINUE result in the chain decides.
 * REJECT and TEMPFAIL stop the current phase (5xx / 4xx to the client);
 * DISCARD and QUARANTINE apply to the whole message: the client is told 250,
 * and at end of data the message is dropped or stored in quarantine/. */
enum elemta_action {
	ELEMTA_CONTINUE = 0,
	ELEMTA_REJECT = 1,
	ELEMTA_TEMPFAIL = 2,
	ELEMTA_DISCARD = 3,
	ELEMTA_QUARANTINE = 4,
	/* Since minor 2: not a verdict but "ask me again" - the hook started
	 * DNS lookups (elemta_ctx_dns_lookup) and wants their answers; see
	 * "DNS" below.  Return it through elemta_pending(). */
	ELEMTA_PENDING = 5,
};

#define ELEMTA_RESULT_TEXT_MAX 256

/* A hook's verdict.  The host zeroes it before each call.  smtp_code 0 and
 * an empty enhanced code take the defaults for the action (550 5.7.1 for
 * REJECT, 451 4.7.1 for TEMPFAIL); a code must agree with the action
 * (5xx for REJECT, 4xx for TEMPFAIL) or the host replaces it. */
struct elemta_result {
	enum elemta_action action;
	int smtp_code;                        /* 0, or 4xx / 5xx              */
	char enhanced[16];                    /* "5.7.1", or ""               */
	char message[ELEMTA_RESULT_TEXT_MAX]; /* human text, no CR/LF        */
};

/* Fills *res and returns action, so a hook can `return elemta_result_set(...)`.
 * The message is printf-formatted, truncated to fit, CR/LF replaced. */
enum elemta_action elemta_result_set(struct elemta_result *res,
    enum elemta_action action, int smtp_code, const char *enhanced,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ==== Configuration (the plugin's `config:` subtree) ==== */

/* A node of the plugin's YAML config: a scalar, a list or a map. */
typedef struct elemta_cfg elemta_cfg;

enum elemta_cfg_type {
	ELEMTA_CFG_SCALAR = 1,
	ELEMTA_CFG_LIST = 2,
	ELEMTA_CFG_MAP = 3,
};

/* Node navigation.  elemta_cfg_get() returns NULL when map is NULL, not a
 * map, or has no such key. */
enum elemta_cfg_type elemta_cfg_type(const elemta_cfg *node);
const elemta_cfg *elemta_cfg_get(const elemta_cfg *map, const char *key);
size_t elemta_cfg_len(const elemta_cfg *node);        /* list items / map pairs */
const elemta_cfg *elemta_cfg_at(const elemta_cfg *node, size_t i);
const char *elemta_cfg_key_at(const elemta_cfg *map, size_t i);
const char *elemta_cfg_scalar(const elemta_cfg *node); /* NULL unless scalar */
/* "file:line:column" of a node, for the plugin's own error messages. */
const char *elemta_cfg_where(const elemta_cfg *node);

/* Typed getters.  map may be NULL (an entry without config:): every getter
 * then stores its default and returns 0.  Each returns 0 and stores the value (or *def when the key
 * is absent), or -1 and writes "file:line:column: key 'k': problem" into
 * err.  Durations accept "30s", "5m", "1h", "2d", "250ms" or bare seconds;
 * sizes accept "10MB", "512K", "1G" (powers of 1024) or bare bytes. */
int elemta_cfg_string(const elemta_cfg *map, const char *key, const char *def,
    const char **out, char *err, size_t errlen);
int elemta_cfg_int(const elemta_cfg *map, const char *key, int64_t def,
    int64_t min, int64_t max, int64_t *out, char *err, size_t errlen);
int elemta_cfg_bool(const elemta_cfg *map, const char *key, int def,
    int *out, char *err, size_t errlen);
int elemta_cfg_duration_ms(const elemta_cfg *map, const char *key,
    uint64_t def, uint64_t *out, char *err, size_t errlen);
int elemta_cfg_size(const elemta_cfg *map, const char *key, uint64_t def,
    uint64_t *out, char *err, size_t errlen);
/* A list of strings: on success *out is the node (NULL when absent) whose
 * items are all scalars; read them with elemta_cfg_len/at/scalar. */
int elemta_cfg_string_list(const elemta_cfg *map, const char *key,
    const elemta_cfg **out, char *err, size_t errlen);
/* A file path: a relative one is resolved against the directory of the
 * config file.  out receives def (or "") when absent.  0, or -1 with err
 * (also when the result does not fit outlen). */
int elemta_cfg_path(const elemta_cfg *map, const char *key, const char *def,
    char *out, size_t outlen, char *err, size_t errlen);
/* Fails naming the first key of map not in the NULL-terminated known[]
 * list, suggesting the nearest known key. */
int elemta_cfg_check_keys(const elemta_cfg *map, const char *const known[],
    char *err, size_t errlen);

/* ==== The request context ==== */

typedef struct elemta_ctx elemta_ctx;

/* Client facts (all phases).  Addresses are canonical text: IPv4 dotted
 * quad (IPv4-mapped IPv6 shown as IPv4), IPv6 in RFC 5952 form. */
const char *elemta_ctx_client_ip(const elemta_ctx *ctx);
unsigned elemta_ctx_client_port(const elemta_ctx *ctx);
/* The client's host name: verified by forward-confirmed reverse DNS
 * (FCrDNS: a PTR name whose A/AAAA records hold the client address), or
 * "unknown".  elemta-policyd looks it up at CONNECT (Elemta listener);
 * a Postfix sends its own. */
const char *elemta_ctx_client_name(const elemta_ctx *ctx);  /* "unknown" */
/* The client's PTR name, not verified, or "unknown" (since minor 2). */
const char *elemta_ctx_reverse_client_name(const elemta_ctx *ctx);
const char *elemta_ctx_helo(const elemta_ctx *ctx);         /* "" before */
/* The SMTP phase a request is about (the protocol_state attribute).  The
 * values are part of the ABI: new phases are only ever appended. */
enum elemta_phase {
	ELEMTA_PHASE_UNKNOWN = 0,  /* a protocol_state Elemta does not know */
	ELEMTA_PHASE_CONNECT = 1,
	ELEMTA_PHASE_EHLO = 2,
	ELEMTA_PHASE_HELO = 3,
	ELEMTA_PHASE_AUTH = 4,
	ELEMTA_PHASE_MAIL = 5,
	ELEMTA_PHASE_RCPT = 6,
	ELEMTA_PHASE_DATA = 7,     /* the DATA command: no message yet     */
	ELEMTA_PHASE_EOM = 8,      /* END-OF-MESSAGE: the message is read  */
};
/* The phase (since ABI minor 1): compare with the enum, not with text. */
enum elemta_phase elemta_ctx_phase_id(const elemta_ctx *ctx);
/* The phase's protocol_state spelling, for logs: "CONNECT", "EHLO",
 * "HELO", "AUTH", "MAIL", "RCPT", "DATA", "END-OF-MESSAGE", "UNKNOWN". */
const char *elemta_ctx_phase(const elemta_ctx *ctx);
const char *elemta_ctx_instance(const elemta_ctx *ctx);     /* per message */
const char *elemta_ctx_queue_id(const elemta_ctx *ctx);     /* "" unknown  */

/* TLS: 1 when the session is encrypted; protocol e.g. "TLSv1.3" or "". */
int elemta_ctx_tls(const elemta_ctx *ctx);
const char *elemta_ctx_tls_protocol(const elemta_ctx *ctx);

/* Authentication.  In on_auth, elemta_ctx_sasl_username() is the user that
 * tried and elemta_ctx_auth_succeeded() says whether the password was
 * right; the password itself never reaches a plugin.  An attempt the host
 * refuses before checking the password (over auth.max_attempts_per_minute,
 * or locked out by the built-in policy plugin's max_failed_auth) is
 * answered 454 without calling any on_auth hook.  In later phases,
 * authenticated is 1 and username the user for an authenticated session. */
int elemta_ctx_authenticated(const elemta_ctx *ctx);
int elemta_ctx_auth_succeeded(const elemta_ctx *ctx);
const char *elemta_ctx_sasl_username(const elemta_ctx *ctx); /* "" if none */
const char *elemta_ctx_sasl_method(const elemta_ctx *ctx);

/* Envelope.  sender is NULL before MAIL, "" for the null sender <>.
 * recipient is the address under test in on_rcpt_to (NULL elsewhere).
 * recipient_count is the number already accepted.  accepted recipients are
 * listed from DATA on. */
const char *elemta_ctx_sender(const elemta_ctx *ctx);
const char *elemta_ctx_recipient(const elemta_ctx *ctx);
size_t elemta_ctx_recipient_count(const elemta_ctx *ctx);
const char *elemta_ctx_recipient_at(const elemta_ctx *ctx, size_t i);
/* Requests of this message (the `instance` attribute) at or after MAIL
 * that the chain already accepted before this one (since ABI minor 1).
 * 0 means this request is the first: a plugin counting messages counts
 * there, since a Postfix may ask about one message at MAIL, at every RCPT
 * and at DATA.  Counted on the Postfix listener only: always 0 on the
 * Elemta listener, where smtpd asks exactly once per phase. */
unsigned elemta_ctx_transaction_accepted(const elemta_ctx *ctx);
/* SIZE= declared at MAIL, or the actual size at end of data; 0 unknown. */
uint64_t elemta_ctx_size(const elemta_ctx *ctx);

/* Any request attribute by name (Postfix policy protocol name), or NULL. */
const char *elemta_ctx_attr(const elemta_ctx *ctx, const char *name);
/* Attributes the host adds for elemta_ctx_attr: the listener the request
 * came in on (one of the ELEMTA_LISTENER_ values: compare with them), and
 * the client address a per-client counter should key on (IPv6 folded to
 * its counters.ipv6_prefix network, "2001:db8::/64"). */
#define ELEMTA_ATTR_LISTENER "elemta_listener"
#define ELEMTA_ATTR_CLIENT_KEY "elemta_client_key"
/* The values of ELEMTA_ATTR_LISTENER: Elemta's own smtpd, or Postfix's
 * policy delegation (check_policy_service). */
#define ELEMTA_LISTENER_ELEMTA "elemta"
#define ELEMTA_LISTENER_POSTFIX "postfix"
/* Since minor 2, at CONNECT on the Elemta listener (absent elsewhere):
 * how the lookups behind elemta_ctx_client_name (FCrDNS) and
 * elemta_ctx_reverse_client_name (the PTR alone) ended - found
 * (ELEMTA_NAME_OK), failed temporarily (SERVFAIL, timeout: worth a 4xx),
 * or failed for good (no PTR, NXDOMAIN, or no PTR name pointing back). */
#define ELEMTA_ATTR_CLIENT_NAME_STATUS "elemta_client_name_status"
#define ELEMTA_ATTR_REVERSE_CLIENT_NAME_STATUS \
	"elemta_reverse_client_name_status"
#define ELEMTA_NAME_OK "ok"
#define ELEMTA_NAME_TEMPFAIL "tempfail"
#define ELEMTA_NAME_FAILED "failed"
/* Sent by Elemta's smtpd for a session on a local listener (mode local:
 * elemta-sendmail): the submitting user's uid in decimal, as the kernel
 * gave it.  Such a session is authenticated from CONNECT on, its
 * elemta_ctx_sasl_username() the user's login name.  (A name only, no
 * new function: a host without local listeners answers NULL.) */
#define ELEMTA_ATTR_LOCAL_UID "elemta_local_uid"

/* The message (on_data at end of data only): the bytes as spooled,
 * starting with the headers prepended before end of data (if any) and
 * the Received: header.  Returns bytes read, 0 at the end,
 * -1 when no message is available.  Reads never move a shared offset. */
ssize_t elemta_ctx_message_read(const elemta_ctx *ctx, uint64_t offset,
    void *buf, size_t len);
/* A read-only descriptor of the message, -1 when none.  Owned by the host:
 * do not close it; use pread() or dup() it. */
int elemta_ctx_message_fd(const elemta_ctx *ctx);

/* ==== Host services ==== */

/* Shared rate check on the counter table every worker and restart sees:
 * records one event for key and returns 1 when fewer than limit events
 * were accepted in the last period_ms; returns 0 (and records nothing)
 * when the limit is reached, storing in *retry_ms (may be NULL) how long
 * until a slot frees; returns -1 when the table failed (the caller should
 * TEMPFAIL: never allow silently).  Keys are prefixed by the host with the
 * plugin entry's config name, so two plugins never collide.  Events are
 * part of the current decision: when the chain's final result is REJECT or
 * TEMPFAIL they are withdrawn (a refused command is never counted);
 * metrics are kept.  (At AUTH, the host's own 535 for wrong credentials
 * after every hook continued is not a refusal by the chain: events stay.)
 * limit is 1..ELEMTA_RATE_LIMIT_MAX, period_ms > 0, else -1.  Limits above
 * 1024 are counted in 32 buckets per period on the LMDB table: never more
 * than limit events in any window still holds, but a client just under
 * the limit may be refused (one steadily under ~90% of it never is). */
#define ELEMTA_RATE_LIMIT_MAX 100000u
int elemta_rate_check(const elemta_ctx *ctx, const char *key, uint32_t limit,
    uint64_t period_ms, uint64_t *retry_ms);
/* Events counted for key in the last period_ms without recording one;
 * -1 on error. */
int64_t elemta_rate_peek(const elemta_ctx *ctx, const char *key,
    uint64_t period_ms);
/* Forgets key's events. 0 on success, -1 on error. */
int elemta_rate_reset(const elemta_ctx *ctx, const char *key);

/* Failure counting (failed AUTH attempts and the like) on the same table:
 * records one event for key unconditionally, keeping at most keep
 * (1..ELEMTA_RATE_LIMIT_MAX) of the newest timestamps, and stores in
 * *count (may be NULL) the events now lying in the last period_ms.  Keys
 * are namespaced per plugin like rate keys.  Unlike elemta_rate_check,
 * the event is recorded even when the decision ends refused (a plugin
 * that refuses an attempt still counts it).  Use one period per key;
 * forget a key with elemta_rate_reset.  Returns 0, or -1 when the table
 * failed or an argument is out of range (period_ms 0, keep 0 or too
 * large). */
int elemta_event_add(const elemta_ctx *ctx, const char *key,
    uint64_t period_ms, uint32_t keep, uint32_t *count);
/* Events recorded for key in the last period_ms (by elemta_event_add or
 * elemta_rate_check), without recording one; -1 on error. */
int64_t elemta_event_count(const elemta_ctx *ctx, const char *key,
    uint64_t period_ms);

/* Reputation: a shared score 0..100 per key (namespaced per plugin like
 * rate keys), 50 (neutral) when unknown, decaying toward 50 with a 24 h
 * half-life.  Returns 0, or -1 when the table failed. */
int elemta_reputation_get(const elemta_ctx *ctx, const char *key,
    double *score);
/* Decays the score to now, adds delta, clamps to 0..100.  Kept even when
 * the decision ends refused.  0 or -1. */
int elemta_reputation_adjust(const elemta_ctx *ctx, const char *key,
    double delta);

/* Prepends the header "name: value" to the message (since ABI minor 2),
 * Postfix's PREPEND: the hook still returns its verdict, and when the
 * request's decision accepts (continue, discard, quarantine) the header
 * goes at the top of the message, above smtpd's Received: header, in the
 * order of the calls.  Headers added at CONNECT, HELO/EHLO and AUTH apply
 * to every message of the session, those at MAIL, RCPT, DATA and end of
 * data to the message of the transaction (a refused RCPT's are dropped).
 * name is an RFC 5322 field-name (printable ASCII but ':', at most 64
 * bytes), value one line (no CR, LF or other control character but TAB;
 * UTF-8 allowed), "name: value" at most 998 bytes; a message takes at
 * most 16 prepended headers in 4096 bytes (further ones are logged and
 * dropped).  The strings are copied.  Returns 0, or -1 (logged, nothing
 * added) when the header is invalid or the bounds are reached.  On the
 * Postfix listener a reply carries one action: only the first header of
 * a continuing decision reaches Postfix (as "action=PREPEND ..."). */
int elemta_ctx_prepend_header(const elemta_ctx *ctx, const char *name,
    const char *value);

/* Greylisting on the shared counter table (since ABI minor 2), postgrey's
 * algorithm in one atomic step across every worker, restart and (with
 * counters.backend: redis) host.  triplet names what is greylisted (the
 * built-in policy plugin: client network, sender, recipient), client
 * what auto-allow counts (its network; NULL when auto_allow_after is 0);
 * both are namespaced per plugin like rate keys, so keep them apart
 * (the policy plugin prefixes "t:" and "c:").
 *   - a client with auto_allow_after counted passes: AUTO_ALLOWED;
 *   - a triplet never passed and first seen less than delay_ms ago:
 *     GREYLISTED, *retry_ms the time left; first seen more than
 *     retry_window_ms ago: it starts over (first seen now);
 *   - otherwise PASSED (FIRST_PASS the first time), remembered for
 *     max_age_ms after each pass; a first pass counts for the client
 *     (at most once per auto_allow_interval_ms).
 * Records are kept whatever the decision's outcome (the greylisted
 * attempt is the refusal).  Returns the verdict (>= 0), or -1 when the
 * table failed or an argument is out of range (delay_ms over
 * retry_window_ms, a period 0): answer TEMPFAIL, never allow silently.
 * With policyd.fail_mode: accept and the Redis table unreachable, PASSED
 * (nothing recorded). */
struct elemta_greylist {
	uint64_t delay_ms;
	uint64_t retry_window_ms;
	uint64_t max_age_ms;
	uint32_t auto_allow_after;       /* 0: no auto-allow */
	uint64_t auto_allow_interval_ms;
};
enum elemta_greylist_verdict {
	ELEMTA_GREYLIST_GREYLISTED = 0,
	ELEMTA_GREYLIST_PASSED = 1,
	ELEMTA_GREYLIST_FIRST_PASS = 2,
	ELEMTA_GREYLIST_AUTO_ALLOWED = 3,
};
int elemta_greylist_check(const elemta_ctx *ctx, const char *triplet,
    const char *client, const struct elemta_greylist *g, uint64_t *retry_ms);

/* Adds delta to the metric counter name (Prometheus metric name rules;
 * names beginning with "elemta_" are the host's own and refused), shared
 * across workers. */
void elemta_metric_add(const elemta_ctx *ctx, const char *name, uint64_t delta);

enum elemta_log_level {
	ELEMTA_LOG_ERR = 3,
	ELEMTA_LOG_WARNING = 4,
	ELEMTA_LOG_INFO = 6,
	ELEMTA_LOG_DEBUG = 7,
};
/* Logs one line tagged with the plugin name and the session; ctx may be
 * NULL (in init). Control characters are escaped. */
void elemta_log(const elemta_ctx *ctx, enum elemta_log_level level,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ==== DNS (since minor 2) ==== */

/* A hook never blocks on DNS: elemta-policyd serves many connections on
 * one event loop.  Instead a hook asks for what it needs and, when an
 * answer is not there yet, returns elemta_pending(); the host waits for
 * every lookup the request has outstanding (each wait bounded by
 * dns.timeout, and the whole request by policyd.timeout_ms) and then
 * calls the same hook again with the same request - plugins earlier in
 * the chain are not run again.  Answers are kept for the whole request
 * (every hook of the chain, every re-run), so the re-run finds them
 * READY and goes further.  So a hook:
 *   - asks for every lookup it can start now (they run in parallel),
 *   - returns elemta_pending() when one of them is pending,
 *   - is written to start over: what it did before returning pending is
 *     done again on the re-run; so ask DNS first, and use the counter
 *     services (which write) only once every answer is READY - counter
 *     writes made before a pending return are kept even when the
 *     request ends refused.
 * Bounds per request: ELEMTA_DNS_LOOKUPS_MAX distinct lookups and
 * ELEMTA_DNS_WAITS_MAX re-runs (an SPF evaluation needs up to 10
 * sequential lookups plus their address lookups); beyond them a lookup
 * fails (-1) and elemta_pending() is answered as a temporary failure.
 * Lookups are possible in every hook except on_auth and init. */
#define ELEMTA_DNS_LOOKUPS_MAX 128
#define ELEMTA_DNS_WAITS_MAX 40

/* Record types (their RFC 1035/3596 codes). */
enum elemta_dns_type {
	ELEMTA_DNS_A = 1,
	ELEMTA_DNS_PTR = 12,
	ELEMTA_DNS_MX = 15,
	ELEMTA_DNS_TXT = 16,
	ELEMTA_DNS_AAAA = 28,
};

/* How a lookup ended.  TEMPFAIL (SERVFAIL, timeout, refused, bogus
 * DNSSEC, the wait bound) is the resolver's "try later": answer it with
 * a 4xx, never with an accept or a 5xx by accident. */
enum elemta_dns_status {
	ELEMTA_DNS_OK = 0,        /* records present (count > 0)           */
	ELEMTA_DNS_NODATA = 1,    /* the name exists, no record of the type */
	ELEMTA_DNS_NXDOMAIN = 2,  /* the name does not exist               */
	ELEMTA_DNS_TEMPFAIL = 3,
	ELEMTA_DNS_PERMFAIL = 4,  /* a name that cannot be asked, FORMERR   */
};

/* One record.  text is NUL-terminated: A/AAAA the address in canonical
 * text ("192.0.2.1", RFC 5952 IPv6), PTR the name, MX the exchange ("."
 * for a null MX, RFC 7505), TXT the record's strings joined (len may
 * count NUL bytes inside).  Names are lower-case, without the final dot. */
struct elemta_dns_record {
	const char *text;
	size_t len;               /* strlen(text), except TXT              */
	uint32_t ttl;
	uint16_t preference;      /* MX                                    */
	unsigned char addr[16];   /* A: 4 bytes, AAAA: 16, network order   */
};

struct elemta_dns_answer {
	enum elemta_dns_status status;
	enum elemta_dns_type type;
	const char *name;         /* as asked                              */
	uint32_t ttl;             /* the smallest record TTL, or the
	                           * negative-caching TTL; 0 unknown       */
	int secure;               /* DNSSEC-validated (dns.dnssec on)      */
	size_t count;
	const struct elemta_dns_record *records;
	const char *why;          /* TEMPFAIL/PERMFAIL: one line, else ""  */
};

/* The ready/pending answers of elemta_ctx_dns_lookup. */
#define ELEMTA_DNS_READY 0
#define ELEMTA_DNS_PENDING 1

/* Looks name (presentation form, a final dot allowed, case-insensitive)
 * up for type.  Returns ELEMTA_DNS_READY with *answer set (owned by the
 * host, valid until the request's decision ends: across re-runs and
 * later hooks of the chain), ELEMTA_DNS_PENDING when the query is under
 * way (*answer NULL: return elemta_pending() and look again on the
 * re-run), or -1 with *answer a TEMPFAIL answer saying why, when the
 * lookup cannot be made (not in a hook or in on_auth, a bad name or
 * type, over ELEMTA_DNS_LOOKUPS_MAX).  Asking again for a name and
 * type the request asked before never starts a second query. */
int elemta_ctx_dns_lookup(const elemta_ctx *ctx, const char *name,
    enum elemta_dns_type type, const struct elemta_dns_answer **answer);
/* The hook result that asks to be called again once the request's
 * pending lookups are answered (returns ELEMTA_PENDING; with nothing
 * pending, or past ELEMTA_DNS_WAITS_MAX, the host answers 451 4.4.3). */
enum elemta_action elemta_pending(const elemta_ctx *ctx);

/* ==== The descriptor ==== */

typedef enum elemta_action (*elemta_hook)(void *state, const elemta_ctx *ctx,
    struct elemta_result *res);

struct elemta_plugin {
	uint32_t abi_version;   /* ELEMTA_PLUGIN_ABI_VERSION */
	const char *name;       /* short name, [a-z0-9_-]    */
	const char *version;    /* the plugin's own version  */
	/* Validates config (NULL when the plugin has none) and builds the
	 * state passed to every hook.  Returns 0, or -1 with a one-line
	 * reason in err (the host prefixes the plugin's name). */
	int (*init)(const elemta_cfg *config, void **state, char *err,
	    size_t errlen);
	void (*destroy)(void *state);
	/* Hooks: NULL when unused.  on_data runs at DATA (no message yet)
	 * and at end of data (message readable). */
	elemta_hook on_connect;
	elemta_hook on_helo;
	elemta_hook on_auth;
	elemta_hook on_mail_from;
	elemta_hook on_rcpt_to;
	elemta_hook on_data;
};

#ifdef __cplusplus
}
#endif
#endif /* ELEMTA_PLUGIN_H */
