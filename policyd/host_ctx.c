/*
 * host_ctx.c - the request context and host services of <elemta/plugin.h>:
 * every elemta_ctx_* accessor, elemta_rate_*, elemta_event_*,
 * elemta_reputation_*, elemta_greylist_check, elemta_metric_add,
 * elemta_ctx_prepend_header,
 * elemta_log and elemta_result_set.
 *
 * Called by plugins (loaded shared objects resolve these symbols from the
 * elemta-policyd executable, linked with -rdynamic) and by plugin_host.c.
 * Every value comes from a policy request, i.e. from smtpd or from a
 * Postfix: untrusted text, bounded by the wire parser, escaped before it
 * is logged.  All accessors accept a NULL ctx and then return the "unknown"
 * value, so a careless plugin cannot crash its worker through them.
 *
 * Synthetic attributes the host adds for elemta_ctx_attr() (they are not
 * on the wire; documented in docs/plugins.md):
 *   elemta_listener           ELEMTA_LISTENER_ELEMTA or _POSTFIX
 *   elemta_client_key         the client address a per-client counter
 *                             should key on: IPv4 as is, IPv6 folded to its
 *                             counters.ipv6_prefix network ("2001:db8::/64")
 *   elemta_client_name_status, elemta_reverse_client_name_status
 *                             at CONNECT when the host looked the names up
 *                             (host_dns.c): ok, tempfail or failed; the
 *                             looked-up client_name and reverse_client_name
 *                             then replace the request's own
 * and one it hides: elemta_auth_password (AUTH) is never returned.
 *
 * smtpd's own extension attributes pass through as sent (to requests from
 * Elemta's smtpd only, never from a Postfix): elemta_session,
 * elemta_listen_mode, and on a local listener elemta_local_uid, the
 * submitting user's uid in decimal as the kernel gave it (SO_PEERCRED),
 * whose name is sasl_username.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "host_internal.h"
#include "log.h"

const struct host_plugin *host_ctx_init_plugin;
struct plugin_host *host_ctx_init_host;

/* ==== Building the context ==== */

/* ctx_parse_u64 - a decimal attribute, 0 when absent or malformed. */
static uint64_t
ctx_parse_u64(const char *s)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return 0;
	return (uint64_t)v;
}

/* plugin_listener_name - see plugin_host.h. */
const char *
plugin_listener_name(enum plugin_listener listener)
{
	return listener == PLUGIN_LISTENER_POSTFIX ? ELEMTA_LISTENER_POSTFIX :
	    ELEMTA_LISTENER_ELEMTA;
}

/* host_ctx_attr - a request attribute as the listener allows it: the
 * host's own facts for its elemta_ names, the AUTH password to nobody,
 * and to Postfix's requests none of the attributes only Elemta's smtpd
 * may set (the elemta_ ones, accepted_recipient, message_fd). */
const char *
host_ctx_attr(const struct elemta_ctx *ctx, const char *name)
{
	bool postfix = ctx->rq->listener == PLUGIN_LISTENER_POSTFIX;
	const char *looked_up = host_names_attr(ctx, name);

	if (looked_up != NULL)
		return looked_up;
	if (strncmp(name, WIRE_EXT_PREFIX, WIRE_EXT_PREFIX_LEN) == 0) {
		if (strcmp(name, WIRE_AUTH_PASSWORD) == 0)
			return NULL;
		if (strcmp(name, ELEMTA_ATTR_LISTENER) == 0)
			return plugin_listener_name(ctx->rq->listener);
		if (strcmp(name, ELEMTA_ATTR_CLIENT_KEY) == 0)
			return ctx->client_key;
		return postfix ? NULL : wire_request_get(ctx->req, name);
	}
	if (postfix && (strcmp(name, WIRE_ATTR_ACCEPTED_RECIPIENT) == 0 ||
	    strcmp(name, WIRE_ATTR_MESSAGE_FD) == 0))
		return NULL;
	return wire_request_get(ctx->req, name);
}

/* host_ctx_init - parse the request's facts once for all hooks. */
void
host_ctx_init(struct elemta_ctx *ctx, struct plugin_host *h,
    const struct plugin_request *rq, enum elemta_phase phase)
{
	const char *v;
	struct addr_ip ip;

	memset(ctx, 0, sizeof(*ctx));
	ctx->host = h;
	ctx->rq = rq;
	ctx->req = rq->req;
	ctx->phase = phase;

	v = host_ctx_attr(ctx, WIRE_ATTR_SESSION);
	if (v == NULL || *v == '\0')
		v = host_ctx_attr(ctx, WIRE_ATTR_INSTANCE);
	ctx->session = (v != NULL && *v != '\0') ? v : "-";

	v = host_ctx_attr(ctx, WIRE_ATTR_CLIENT_ADDRESS);
	if (v != NULL && addr_ip_parse(v, &ip) == 0) {
		addr_ip_format(&ip, ctx->client_ip, sizeof(ctx->client_ip));
		ctx->client_addr = ip;
		addr_ip_key(&ip, h->ipv6_prefix, ctx->client_key,
		    sizeof(ctx->client_key));
		ctx->client_ip_valid = true;
	} else {
		/* "unknown" or garbage: keep the text so rules and logs see
		 * what was sent; it matches no CIDR. */
		str_copy(ctx->client_ip, v ? v : "", sizeof(ctx->client_ip));
		str_copy(ctx->client_key, ctx->client_ip, sizeof(ctx->client_key));
	}
	ctx->client_port = (unsigned)ctx_parse_u64(host_ctx_attr(ctx,
	    WIRE_ATTR_CLIENT_PORT));

	if (phase >= ELEMTA_PHASE_MAIL) {
		v = host_ctx_attr(ctx, WIRE_ATTR_SENDER);
		ctx->sender = v ? v : "";
	}
	if (phase == ELEMTA_PHASE_RCPT) {
		v = host_ctx_attr(ctx, WIRE_ATTR_RECIPIENT);
		ctx->recipient = v ? v : "";
	}
	/* Postfix sends recipient_count=0 in the RCPT state; the host
	 * tracks the accepted ones in the connection's transaction. */
	if (rq->listener == PLUGIN_LISTENER_POSTFIX &&
	    phase == ELEMTA_PHASE_RCPT)
		ctx->recipient_count = rq->txn != NULL ?
		    rq->txn->rcpt_accepted : 0;
	else
		ctx->recipient_count = (size_t)ctx_parse_u64(
		    host_ctx_attr(ctx, WIRE_ATTR_RECIPIENT_COUNT));
	ctx->size = ctx_parse_u64(host_ctx_attr(ctx, WIRE_ATTR_SIZE));
}

/* ==== Accessors ==== */

/* ctx_str - an attribute or "" (for the accessors documented as ""). */
static const char *
ctx_str(const elemta_ctx *ctx, const char *name)
{
	const char *v;

	if (ctx == NULL)
		return "";
	v = host_ctx_attr(ctx, name);
	return v ? v : "";
}

/* elemta_ctx_client_ip - the canonical client address. */
const char *
elemta_ctx_client_ip(const elemta_ctx *ctx)
{
	return ctx ? ctx->client_ip : "";
}

/* elemta_ctx_client_port - the client port, 0 unknown. */
unsigned
elemta_ctx_client_port(const elemta_ctx *ctx)
{
	return ctx ? ctx->client_port : 0;
}

/* elemta_ctx_client_name - the client host name, "unknown" without DNS. */
const char *
elemta_ctx_client_name(const elemta_ctx *ctx)
{
	const char *v = ctx_str(ctx, WIRE_ATTR_CLIENT_NAME);

	return *v ? v : "unknown";
}

/* elemta_ctx_reverse_client_name - the unverified PTR name, "unknown". */
const char *
elemta_ctx_reverse_client_name(const elemta_ctx *ctx)
{
	const char *v = ctx_str(ctx, WIRE_ATTR_REVERSE_CLIENT_NAME);

	return *v ? v : "unknown";
}

/* elemta_ctx_helo - the HELO/EHLO name, "" before. */
const char *
elemta_ctx_helo(const elemta_ctx *ctx)
{
	return ctx_str(ctx, WIRE_ATTR_HELO_NAME);
}

/* elemta_ctx_phase_id - the phase of the request. */
enum elemta_phase
elemta_ctx_phase_id(const elemta_ctx *ctx)
{
	return ctx ? ctx->phase : ELEMTA_PHASE_UNKNOWN;
}

/* elemta_ctx_phase - the protocol_state spelling of the phase. */
const char *
elemta_ctx_phase(const elemta_ctx *ctx)
{
	return wire_phase_name(elemta_ctx_phase_id(ctx));
}

/* elemta_ctx_transaction_accepted - requests of this message accepted
 * before (Postfix listener). */
unsigned
elemta_ctx_transaction_accepted(const elemta_ctx *ctx)
{
	if (ctx == NULL || ctx->rq->listener != PLUGIN_LISTENER_POSTFIX ||
	    ctx->rq->txn == NULL)
		return 0;
	return ctx->rq->txn->accepted;
}

/* elemta_ctx_instance - the per-transaction id. */
const char *
elemta_ctx_instance(const elemta_ctx *ctx)
{
	return ctx_str(ctx, WIRE_ATTR_INSTANCE);
}

/* elemta_ctx_queue_id - the queue id, "" unknown. */
const char *
elemta_ctx_queue_id(const elemta_ctx *ctx)
{
	return ctx_str(ctx, WIRE_ATTR_QUEUE_ID);
}

/* elemta_ctx_tls - 1 when the session is encrypted. */
int
elemta_ctx_tls(const elemta_ctx *ctx)
{
	return *ctx_str(ctx, WIRE_ATTR_ENCRYPTION_PROTOCOL) != '\0';
}

/* elemta_ctx_tls_protocol - "TLSv1.3" or "". */
const char *
elemta_ctx_tls_protocol(const elemta_ctx *ctx)
{
	return ctx_str(ctx, WIRE_ATTR_ENCRYPTION_PROTOCOL);
}

/* elemta_ctx_authenticated - in on_auth: this attempt succeeded; later:
 * the session carries a SASL user. */
int
elemta_ctx_authenticated(const elemta_ctx *ctx)
{
	if (ctx == NULL)
		return 0;
	if (ctx->phase == ELEMTA_PHASE_AUTH)
		return ctx->rq->auth_succeeded == 1;
	return *ctx_str(ctx, WIRE_ATTR_SASL_USERNAME) != '\0';
}

/* elemta_ctx_auth_succeeded - the outcome of this AUTH attempt (later: authenticated). */
int
elemta_ctx_auth_succeeded(const elemta_ctx *ctx)
{
	return elemta_ctx_authenticated(ctx);
}

/* elemta_ctx_sasl_username - the SASL user, "" if none. */
const char *
elemta_ctx_sasl_username(const elemta_ctx *ctx)
{
	return ctx_str(ctx, WIRE_ATTR_SASL_USERNAME);
}

/* elemta_ctx_sasl_method - the SASL mechanism, "" if none. */
const char *
elemta_ctx_sasl_method(const elemta_ctx *ctx)
{
	return ctx_str(ctx, WIRE_ATTR_SASL_METHOD);
}

/* elemta_ctx_sender - NULL before MAIL, "" for <>. */
const char *
elemta_ctx_sender(const elemta_ctx *ctx)
{
	return ctx ? ctx->sender : NULL;
}

/* elemta_ctx_recipient - the recipient under test (RCPT only). */
const char *
elemta_ctx_recipient(const elemta_ctx *ctx)
{
	return ctx ? ctx->recipient : NULL;
}

/* elemta_ctx_recipient_count - recipients accepted so far. */
size_t
elemta_ctx_recipient_count(const elemta_ctx *ctx)
{
	return ctx ? ctx->recipient_count : 0;
}

/* elemta_ctx_recipient_at - the i-th accepted recipient (Elemta's smtpd
 * lists them from DATA on; Postfix does not send the list). */
const char *
elemta_ctx_recipient_at(const elemta_ctx *ctx, size_t i)
{
	if (ctx == NULL || ctx->rq->listener == PLUGIN_LISTENER_POSTFIX)
		return NULL;
	return wire_request_nth(ctx->req, WIRE_ATTR_ACCEPTED_RECIPIENT, i);
}

/* elemta_ctx_size - declared or actual message size, 0 unknown. */
uint64_t
elemta_ctx_size(const elemta_ctx *ctx)
{
	return ctx ? ctx->size : 0;
}

/* elemta_ctx_attr - any attribute, as the listener allows it. */
const char *
elemta_ctx_attr(const elemta_ctx *ctx, const char *name)
{
	if (ctx == NULL || name == NULL)
		return NULL;
	return host_ctx_attr(ctx, name);
}

/* elemta_ctx_message_read - pread the spooled message; never moves the
 * shared offset, so plugins cannot disturb each other. */
ssize_t
elemta_ctx_message_read(const elemta_ctx *ctx, uint64_t offset, void *buf,
    size_t len)
{
	ssize_t n;

	if (ctx == NULL || ctx->rq->message_fd < 0 || buf == NULL ||
	    offset > (uint64_t)INT64_MAX)
		return -1;
	if (len > (size_t)SSIZE_MAX)
		len = (size_t)SSIZE_MAX;
	do
		n = pread(ctx->rq->message_fd, buf, len, (off_t)offset);
	while (n < 0 && errno == EINTR);
	return n;
}

/* elemta_ctx_message_fd - the host-owned message descriptor, -1 none. */
int
elemta_ctx_message_fd(const elemta_ctx *ctx)
{
	return ctx ? ctx->rq->message_fd : -1;
}

/* ==== Results ==== */

/* elemta_result_set - fill a verdict; the text is formatted, bounded and
 * cleaned of CR/LF and other control characters. */
enum elemta_action
elemta_result_set(struct elemta_result *res, enum elemta_action action,
    int smtp_code, const char *enhanced, const char *fmt, ...)
{
	va_list ap;

	if (res == NULL)
		return action;
	memset(res, 0, sizeof(*res));
	res->action = action;
	res->smtp_code = smtp_code;
	if (enhanced != NULL)
		str_copy(res->enhanced, enhanced, sizeof(res->enhanced));
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(res->message, sizeof(res->message), fmt, ap);
		va_end(ap);
	}
	for (char *p = res->message; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return action;
}

/* ==== Logging ==== */

/* ctx_plugin - the plugin a service call comes from. */
static const struct host_plugin *
ctx_plugin(const elemta_ctx *ctx)
{
	return ctx ? ctx->plugin : host_ctx_init_plugin;
}

/* ctx_host - the host a service call works on. */
static struct plugin_host *
ctx_host(const elemta_ctx *ctx)
{
	return ctx ? ctx->host : host_ctx_init_host;
}

/* elemta_log - one line tagged with plugin and session, escaped. */
void
elemta_log(const elemta_ctx *ctx, enum elemta_log_level level,
    const char *fmt, ...)
{
	const struct host_plugin *p = ctx_plugin(ctx);
	char text[1024], esc[2048], sid[128];
	enum log_level lv;
	va_list ap;
	int n;

	if (fmt == NULL)
		return;
	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	switch (level) {
	case ELEMTA_LOG_ERR:
		lv = LOG_LEVEL_ERR;
		break;
	case ELEMTA_LOG_WARNING:
		lv = LOG_LEVEL_WARN;
		break;
	case ELEMTA_LOG_DEBUG:
		lv = LOG_LEVEL_DEBUG;
		break;
	default:
		lv = LOG_LEVEL_INFO;
		break;
	}
	log_escape(esc, sizeof(esc), text, strlen(text));
	if (ctx != NULL)
		log_msg(lv, "sid=%s plugin=%s: %s", LOG_ESC(sid, ctx->session),
		    p ? p->name : "-", esc);
	else
		log_msg(lv, "plugin=%s: %s", p ? p->name : "-", esc);
}

/* ==== Counters ==== */

/* ctx_rate_key - "<plugin>:<key>"; a key too long for the table keeps
 * its first bytes and the SHA-256 of the whole, so distinct keys stay
 * distinct. */
static int
ctx_rate_key(const elemta_ctx *ctx, const char *key, char *buf, size_t size)
{
	const struct host_plugin *p = ctx_plugin(ctx);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t n;

	if (p == NULL || key == NULL)
		return -1;
	n = (size_t)snprintf(buf, size, "%s:%s", p->name, key);
	if (n < size && n < COUNTER_KEY_MAX)
		return 0;
	if (EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha256(), NULL) != 1)
		return -1;
	n = (size_t)snprintf(buf, size, "%s:%.200s#", p->name, key);
	for (unsigned i = 0; i < mdlen && n + 3 < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%02x", md[i]);
	return 0;
}

/* ctx_counter_fail - log a table problem with the plugin's name; during a
 * backend outage the store has already logged it once, so stay quiet
 * rather than logging every request. */
static void
ctx_counter_fail(const elemta_ctx *ctx, const char *what, const char *why)
{
	const struct host_plugin *p = ctx_plugin(ctx);
	struct plugin_host *h = ctx_host(ctx);

	if (h != NULL && h->cs != NULL && counter_store_unavailable(h->cs)) {
		log_debug("plugin=%s: %s failed: %s", p ? p->name : "-", what,
		    why);
		return;
	}
	log_err("plugin=%s: %s failed: %s", p ? p->name : "-", what, why);
}

/* elemta_rate_check - the exact shared sliding-window check. */
int
elemta_rate_check(const elemta_ctx *ctx, const char *key, uint32_t limit,
    uint64_t period_ms, uint64_t *retry_ms)
{
	struct plugin_host *h = ctx_host(ctx);
	struct counter_rate_result r;
	char k[COUNTER_KEY_MAX + 1];
	struct error err;

	if (retry_ms != NULL)
		*retry_ms = 0;
	if (h == NULL || h->cs == NULL) {
		ctx_counter_fail(ctx, "rate check", "no counter table");
		return -1;
	}
	if (period_ms == 0 || limit > COUNTER_LIMIT_MAX) {
		ctx_counter_fail(ctx, "rate check", "limit or period out of range");
		return -1;
	}
	if (ctx_rate_key(ctx, key, k, sizeof(k)) != 0) {
		ctx_counter_fail(ctx, "rate check", "bad key");
		return -1;
	}
	if (limit == 0)
		return 0;
	if (counter_rate_hit(h->cs, k, limit, period_ms, &r, &err) != 0) {
		ctx_counter_fail(ctx, "rate check", err.text);
		return -1;
	}
	if (r.allowed)
		return 1;
	if (retry_ms != NULL)
		*retry_ms = r.retry_ms;
	return 0;
}

/* elemta_greylist_check - counter_grey_check on the plugin's keys. */
int
elemta_greylist_check(const elemta_ctx *ctx, const char *triplet,
    const char *client, const struct elemta_greylist *g, uint64_t *retry_ms)
{
	struct plugin_host *h = ctx_host(ctx);
	char tk[COUNTER_KEY_MAX + 1], ck[COUNTER_KEY_MAX + 1];
	struct counter_grey_params p;
	struct counter_grey_result r;
	struct error err;

	if (retry_ms != NULL)
		*retry_ms = 0;
	if (h == NULL || h->cs == NULL || g == NULL) {
		ctx_counter_fail(ctx, "greylist", "no counter table");
		return -1;
	}
	if (ctx_rate_key(ctx, triplet, tk, sizeof(tk)) != 0 ||
	    (g->auto_allow_after > 0 &&
	    ctx_rate_key(ctx, client, ck, sizeof(ck)) != 0)) {
		ctx_counter_fail(ctx, "greylist", "bad key");
		return -1;
	}
	p.delay_ms = g->delay_ms;
	p.retry_window_ms = g->retry_window_ms;
	p.max_age_ms = g->max_age_ms;
	p.auto_allow_after = g->auto_allow_after;
	p.auto_allow_interval_ms = g->auto_allow_interval_ms;
	if (counter_grey_check(h->cs, tk, g->auto_allow_after > 0 ? ck : NULL,
	    &p, &r, &err) != 0) {
		ctx_counter_fail(ctx, "greylist", err.text);
		return -1;
	}
	switch (r.verdict) {
	case COUNTER_GREY_GREYLISTED:
		if (retry_ms != NULL)
			*retry_ms = r.retry_ms;
		return ELEMTA_GREYLIST_GREYLISTED;
	case COUNTER_GREY_PASSED:
		return r.first_pass ? ELEMTA_GREYLIST_FIRST_PASS :
		    ELEMTA_GREYLIST_PASSED;
	case COUNTER_GREY_AUTO_ALLOWED:
		return ELEMTA_GREYLIST_AUTO_ALLOWED;
	}
	return -1;
}

/* elemta_rate_peek - events in the window, recording nothing. */
int64_t
elemta_rate_peek(const elemta_ctx *ctx, const char *key, uint64_t period_ms)
{
	struct plugin_host *h = ctx_host(ctx);
	char k[COUNTER_KEY_MAX + 1];
	struct error err;
	uint32_t count;

	if (h == NULL || h->cs == NULL || ctx_rate_key(ctx, key, k, sizeof(k)) != 0)
		return -1;
	if (counter_event_count(h->cs, k, period_ms, &count, &err) != 0) {
		ctx_counter_fail(ctx, "rate peek", err.text);
		return -1;
	}
	return (int64_t)count;
}

/* elemta_rate_reset - forget a key's events. */
int
elemta_rate_reset(const elemta_ctx *ctx, const char *key)
{
	struct plugin_host *h = ctx_host(ctx);
	char k[COUNTER_KEY_MAX + 1];
	struct error err;

	if (h == NULL || h->cs == NULL || ctx_rate_key(ctx, key, k, sizeof(k)) != 0)
		return -1;
	if (counter_key_reset(h->cs, k, &err) != 0) {
		ctx_counter_fail(ctx, "rate reset", err.text);
		return -1;
	}
	return 0;
}

/* elemta_event_add - record a failure-type event (kept on refusal: it
 * is not one of the decision's withdrawable rate hits). */
int
elemta_event_add(const elemta_ctx *ctx, const char *key, uint64_t period_ms,
    uint32_t keep, uint32_t *count)
{
	struct plugin_host *h = ctx_host(ctx);
	char k[COUNTER_KEY_MAX + 1];
	struct error err;
	uint32_t n = 0;

	if (count != NULL)
		*count = 0;
	if (h == NULL || h->cs == NULL) {
		ctx_counter_fail(ctx, "event add", "no counter table");
		return -1;
	}
	if (period_ms == 0 || keep == 0 || keep > COUNTER_LIMIT_MAX) {
		ctx_counter_fail(ctx, "event add", "keep or period out of range");
		return -1;
	}
	if (ctx_rate_key(ctx, key, k, sizeof(k)) != 0) {
		ctx_counter_fail(ctx, "event add", "bad key");
		return -1;
	}
	if (counter_event_add(h->cs, k, keep, period_ms, &n, &err) != 0) {
		ctx_counter_fail(ctx, "event add", err.text);
		return -1;
	}
	if (count != NULL)
		*count = n;
	return 0;
}

/* elemta_event_count - events of key in the window, recording nothing. */
int64_t
elemta_event_count(const elemta_ctx *ctx, const char *key, uint64_t period_ms)
{
	struct plugin_host *h = ctx_host(ctx);
	char k[COUNTER_KEY_MAX + 1];
	struct error err;
	uint32_t count;

	if (h == NULL || h->cs == NULL || period_ms == 0 ||
	    ctx_rate_key(ctx, key, k, sizeof(k)) != 0)
		return -1;
	if (counter_event_count(h->cs, k, period_ms, &count, &err) != 0) {
		ctx_counter_fail(ctx, "event count", err.text);
		return -1;
	}
	return (int64_t)count;
}

/* The table's reputation decay (counter_reputation_get's half-life). */
#define CTX_REPUTATION_HALF_LIFE_S 86400.0

/* elemta_reputation_get - the decayed shared score of key. */
int
elemta_reputation_get(const elemta_ctx *ctx, const char *key, double *score)
{
	struct plugin_host *h = ctx_host(ctx);
	char k[COUNTER_KEY_MAX + 1];
	struct error err;

	if (score != NULL)
		*score = 50.0;
	if (h == NULL || h->cs == NULL || score == NULL ||
	    ctx_rate_key(ctx, key, k, sizeof(k)) != 0)
		return -1;
	if (counter_reputation_get(h->cs, k, score, &err) != 0) {
		ctx_counter_fail(ctx, "reputation get", err.text);
		return -1;
	}
	return 0;
}

/* elemta_reputation_adjust - move key's score (kept on refusal). */
int
elemta_reputation_adjust(const elemta_ctx *ctx, const char *key, double delta)
{
	struct plugin_host *h = ctx_host(ctx);
	char k[COUNTER_KEY_MAX + 1];
	struct error err;

	if (h == NULL || h->cs == NULL || ctx_rate_key(ctx, key, k, sizeof(k)) != 0)
		return -1;
	if (counter_reputation_adjust(h->cs, k, delta, CTX_REPUTATION_HALF_LIFE_S,
	    &err) != 0) {
		ctx_counter_fail(ctx, "reputation adjust", err.text);
		return -1;
	}
	return 0;
}

/* ctx_metric_name_valid - Prometheus: [a-zA-Z_:][a-zA-Z0-9_:]*, and not
 * in the host's own elemta_ namespace (a plugin must not be able to
 * inflate elemta_decisions_total and friends). */
static bool
ctx_metric_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > HOST_PLUGIN_METRIC_NAME_MAX ||
	    strncmp(name, WIRE_EXT_PREFIX, WIRE_EXT_PREFIX_LEN) == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '_' || c == ':' || (i > 0 && c >= '0' && c <= '9');

		if (!ok)
			return false;
	}
	return true;
}

/* elemta_ctx_prepend_header - one header for the top of the message,
 * checked here (common/wire.h's rules) so a bad one never reaches the
 * wire: refused with a log line naming the plugin. */
int
elemta_ctx_prepend_header(const elemta_ctx *ctx, const char *name,
    const char *value)
{
	const struct host_plugin *p = ctx_plugin(ctx);
	struct error err;
	char esc[128];

	if (ctx == NULL || ctx->headers == NULL)
		return -1;
	if (wire_headers_add(ctx->headers, name, value, &err) < 0) {
		log_warn("plugin=%s sid=%s: header '%s' not prepended: %s",
		    p ? p->name : "-", LOG_ESC(esc, ctx->session),
		    name ? name : "", err.text);
		return -1;
	}
	return 0;
}

/* ctx_metric_count - count delta for name in worker memory, written by
 * plugin_host_flush_metrics with the host's own metrics; false when the
 * table of names is full. */
static bool
ctx_metric_count(struct plugin_host *h, const char *name, uint64_t delta)
{
	struct host_plugin_metric *m;

	for (size_t i = 0; i < h->plugin_metric_count; i++) {
		m = &h->plugin_metrics[i];
		if (strcmp(m->name, name) == 0) {
			m->delta = m->delta > UINT64_MAX - delta ? UINT64_MAX :
			    m->delta + delta;
			return true;
		}
	}
	if (h->plugin_metric_count == HOST_PLUGIN_METRICS)
		return false;
	m = &h->plugin_metrics[h->plugin_metric_count++];
	str_copy(m->name, name, sizeof(m->name));
	m->delta = delta;
	return true;
}

/* elemta_metric_add - a shared counter; inside a decision it is counted
 * in worker memory and flushed once a second (a decision stays free of
 * writes), outside (init) it commits on its own. */
void
elemta_metric_add(const elemta_ctx *ctx, const char *name, uint64_t delta)
{
	struct plugin_host *h = ctx_host(ctx);
	struct error err;
	char esc[128];

	if (h == NULL || h->cs == NULL || name == NULL)
		return;
	if (!ctx_metric_name_valid(name)) {
		ctx_counter_fail(ctx, "metric add", LOG_ESC(esc, name));
		return;
	}
	if (h->in_decision) {
		if (ctx_metric_count(h, name, delta))
			return;
		/* more names than the table holds: the decision's write */
		if (counter_metric_add(h->cs, name, delta, &err) != 0)
			ctx_counter_fail(ctx, "metric add", err.text);
		return;
	}
	counter_decision_begin(h->cs);
	if (counter_metric_add(h->cs, name, delta, &err) != 0)
		ctx_counter_fail(ctx, "metric add", err.text);
	if (counter_decision_end(h->cs, true, &err) != 0)
		ctx_counter_fail(ctx, "metric add", err.text);
}
