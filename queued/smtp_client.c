/*
 * smtp_client.c - the outbound SMTP/LMTP client state machine of
 * elemta-queued (RFC 5321, 1870, 2033, 2920, 3207, 3461, 4954, 6152,
 * 6531); the contract is smtp_client.h.
 *
 * Driven by the delivery process (and tests/unit/test_smtp_client.c)
 * through smtp_client.h; every reply is untrusted next-hop text, parsed
 * by reply.c.  smtpc_enter_state is the only place the state changes.
 * In a transaction the replies are expected in the order the commands
 * went out: MAIL, one per RCPT sent, DATA; c->nreplies counts them, so
 * the same code serves pipelined and lock-step conversations (the only
 * difference is when the next command is written).  A recipient whose
 * outcome is still OUTCOME_PENDING after its RCPT reply is an accepted
 * one: that is what DATA's and the final dot's replies apply to.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "error.h"
#include "log.h"
#include "strbuf.h"
#include "smtp_client.h"

#define SMTPC_CHUNK 8192          /* body bytes read per ops->body_read */
#define SMTPC_LINE_MAX 2048       /* one command line, CRLF included   */
#define SMTPC_ADDR_MAX 1000       /* longer addresses are refused      */
#define SMTPC_ESC 256
#define SMTPC_AUTH_MAX 1024       /* base64 of a PLAIN message          */

enum smtpc_auth_step {
	AUTH_STEP_NONE,
	AUTH_STEP_PLAIN,          /* "AUTH PLAIN <response>" sent        */
	AUTH_STEP_LOGIN,          /* "AUTH LOGIN" sent                   */
	AUTH_STEP_LOGIN_USER,     /* user name sent                      */
	AUTH_STEP_LOGIN_PASSWORD, /* password sent                       */
};

struct smtpc {
	enum smtpc_state state;
	const struct smtpc_config *cfg;
	const struct smtpc_ops *ops;
	void *io;
	char peer[SMTPC_ESC];        /* escaped peer name, for logs      */

	struct reply_ehlo ehlo;
	bool tls;
	bool starttls_tried;
	bool authed;
	enum smtpc_auth_step auth_step;
	struct outcome failure;
	enum smtpc_retry retry;      /* what the caller may try after it */
	bool offering;               /* inside ops->ready                 */
	bool offer_again;            /* idle again while inside it        */

	/* The transaction in flight. */
	struct smtpc_message *msg;
	size_t *sent;                /* indices of the RCPTs sent, in order */
	size_t nsent;
	size_t nreplies;             /* replies received: MAIL, RCPTs, DATA */
	bool mail_ok;
	bool empty_dot;              /* 354 with nobody accepted           */

	/* Dot-stuffing state carried across body chunks. */
	bool bol;                    /* at the beginning of a line         */
	bool cr;                     /* a CR seen, its LF not yet          */

	struct reply reply;          /* the reply being handled (16 KB)    */
};

static void smtpc_proceed(struct smtpc *c);

/* smtpc_state_name - for logs. */
const char *
smtpc_state_name(enum smtpc_state st)
{
	switch (st) {
	case SMTPC_GREETING: return "GREETING";
	case SMTPC_EHLO: return "EHLO";
	case SMTPC_HELO: return "HELO";
	case SMTPC_STARTTLS: return "STARTTLS";
	case SMTPC_TLS: return "TLS";
	case SMTPC_AUTH: return "AUTH";
	case SMTPC_READY: return "READY";
	case SMTPC_TXN: return "TXN";
	case SMTPC_BODY: return "BODY";
	case SMTPC_DOT: return "DOT";
	case SMTPC_RSET: return "RSET";
	case SMTPC_QUIT: return "QUIT";
	case SMTPC_CLOSED: return "CLOSED";
	}
	return "?";
}

/* smtpc_timer_name - for logs and failure texts. */
const char *
smtpc_timer_name(enum smtpc_timer t)
{
	switch (t) {
	case SMTPC_TIMER_GREETING: return "the greeting";
	case SMTPC_TIMER_COMMAND: return "a command reply";
	case SMTPC_TIMER_MAIL: return "the MAIL reply";
	case SMTPC_TIMER_RCPT: return "a RCPT reply";
	case SMTPC_TIMER_DATA_INIT: return "the DATA reply";
	case SMTPC_TIMER_DATA_BLOCK: return "sending the message";
	case SMTPC_TIMER_DATA_TERM: return "the end-of-data reply";
	case SMTPC_TIMER_NONE: return "nothing";
	}
	return "?";
}

/* smtpc_enter_state - the only place the state changes. */
static void
smtpc_enter_state(struct smtpc *c, enum smtpc_state st)
{
	if (c->state == st)
		return;
	log_debug("smtp client %s: state %s -> %s", c->peer,
	    smtpc_state_name(c->state), smtpc_state_name(st));
	c->state = st;
}

/* smtpc_timeouts_default - RFC 5321 §4.5.3.2. */
void
smtpc_timeouts_default(struct smtpc_timeouts *t)
{
	t->greeting = 300;
	t->command = 300;
	t->mail = 300;
	t->rcpt = 300;
	t->data_init = 120;
	t->data_block = 180;
	t->data_term = 600;
}

/* smtpc_new - a client waiting for the greeting. */
struct smtpc *
smtpc_new(const struct smtpc_config *cfg, const struct smtpc_ops *ops,
    void *io)
{
	struct smtpc *c = xcalloc(1, sizeof(*c));

	c->state = SMTPC_GREETING;
	c->cfg = cfg;
	c->ops = ops;
	c->io = io;
	LOG_ESC(c->peer, cfg->peer_name != NULL ? cfg->peer_name : "?");
	c->failure.result = OUTCOME_PENDING;
	return c;
}

/* smtpc_free - release the client (never from inside a callback). */
void
smtpc_free(struct smtpc *c)
{
	if (c == NULL)
		return;
	free(c->sent);
	free(c);
}

/* smtpc_state - the current state. */
enum smtpc_state
smtpc_state(const struct smtpc *c)
{
	return c->state;
}

/* smtpc_ehlo - the extensions the peer offered. */
const struct reply_ehlo *
smtpc_ehlo(const struct smtpc *c)
{
	return &c->ehlo;
}

/* smtpc_tls_active - whether TLS is on. */
bool
smtpc_tls_active(const struct smtpc *c)
{
	return c->tls;
}

/* smtpc_failure - the connection-level outcome, if any. */
const struct outcome *
smtpc_failure(const struct smtpc *c)
{
	return &c->failure;
}

/* smtpc_retry - what the caller may try after the failure. */
enum smtpc_retry
smtpc_retry(const struct smtpc *c)
{
	return c->retry;
}

/* smtpc_timer - which RFC 5321 timer applies now. */
enum smtpc_timer
smtpc_timer(const struct smtpc *c)
{
	switch (c->state) {
	case SMTPC_GREETING:
		return SMTPC_TIMER_GREETING;
	case SMTPC_EHLO:
	case SMTPC_HELO:
	case SMTPC_STARTTLS:
	case SMTPC_AUTH:
	case SMTPC_RSET:
	case SMTPC_QUIT:
		return SMTPC_TIMER_COMMAND;
	case SMTPC_TXN:
		if (c->nreplies == 0)
			return SMTPC_TIMER_MAIL;
		return c->nreplies <= c->nsent ? SMTPC_TIMER_RCPT :
		    SMTPC_TIMER_DATA_INIT;
	case SMTPC_BODY:
		return SMTPC_TIMER_DATA_BLOCK;
	case SMTPC_DOT:
		return SMTPC_TIMER_DATA_TERM;
	case SMTPC_READY:
	case SMTPC_TLS:
	case SMTPC_CLOSED:
		break;
	}
	return SMTPC_TIMER_NONE;
}

/* smtpc_timeout_seconds - the current timer's value, 0 for none. */
unsigned
smtpc_timeout_seconds(const struct smtpc *c)
{
	const struct smtpc_timeouts *t = &c->cfg->timeouts;

	switch (smtpc_timer(c)) {
	case SMTPC_TIMER_GREETING: return t->greeting;
	case SMTPC_TIMER_COMMAND: return t->command;
	case SMTPC_TIMER_MAIL: return t->mail;
	case SMTPC_TIMER_RCPT: return t->rcpt;
	case SMTPC_TIMER_DATA_INIT: return t->data_init;
	case SMTPC_TIMER_DATA_BLOCK: return t->data_block;
	case SMTPC_TIMER_DATA_TERM: return t->data_term;
	case SMTPC_TIMER_NONE: break;
	}
	return 0;
}

/* smtpc_write - one command line (CRLF added). */
static void
smtpc_write(struct smtpc *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
smtpc_write(struct smtpc *c, const char *fmt, ...)
{
	char line[SMTPC_LINE_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	/* Callers bound what they format (SMTPC_ADDR_MAX, xtext limits). */
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		fatal("smtp client: command line over %d bytes", SMTPC_LINE_MAX);
	memcpy(line + n, "\r\n", 2);
	c->ops->write(c->io, line, (size_t)n + 2);
}

/* smtpc_close - the conversation is over; no callback after this. */
static void
smtpc_close(struct smtpc *c)
{
	smtpc_enter_state(c, SMTPC_CLOSED);
	c->ops->close(c->io);
}

/* smtpc_offer - ops->ready for an idle connection.  A message refused
 * before MAIL is handed back at once, so a caller that sends from inside
 * ready would otherwise recurse once per refused message (a long queue
 * of them to one next hop could exhaust the stack): a connection idle
 * again inside the callback is offered again after it returns. */
static void
smtpc_offer(struct smtpc *c)
{
	if (c->state != SMTPC_READY)
		return;
	if (c->offering) {
		c->offer_again = true;
		return;
	}
	c->offering = true;
	do {
		c->offer_again = false;
		c->ops->ready(c->io);
	} while (c->offer_again && c->state == SMTPC_READY);
	c->offering = false;
}

/* smtpc_txn_finish - outcomes are final: hand the message back, then
 * reset the transaction (rset: one was left open) or offer the
 * connection again. */
static void
smtpc_txn_finish(struct smtpc *c, bool rset)
{
	struct smtpc_message *m = c->msg;

	c->msg = NULL;
	free(c->sent);
	c->sent = NULL;
	c->nsent = 0;
	if (rset) {
		smtpc_write(c, "RSET");
		smtpc_enter_state(c, SMTPC_RSET);
	} else {
		smtpc_enter_state(c, SMTPC_READY);
	}
	c->ops->done(c->io, m);
	if (!rset)
		smtpc_offer(c);
}

/* smtpc_vfail - a connection-level failure: pending recipients take it,
 * the message in flight is handed back, the connection closes.  retry
 * is set first: the caller reads it from its done and close callbacks. */
static void
smtpc_vfail(struct smtpc *c, enum smtpc_retry retry,
    enum outcome_result res, int code, const char *enhanced,
    const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));
static void
smtpc_vfail(struct smtpc *c, enum smtpc_retry retry,
    enum outcome_result res, int code, const char *enhanced,
    const char *fmt, va_list ap)
{
	char text[OUTCOME_TEXT_MAX], esc[OUTCOME_TEXT_MAX];
	struct smtpc_message *m = c->msg;

	vsnprintf(text, sizeof(text), fmt, ap);
	outcome_set(&c->failure, res, code, enhanced, "%s", text);
	c->retry = retry;
	log_info("smtp client %s: %s in state %s: %s", c->peer,
	    outcome_result_name(res), smtpc_state_name(c->state),
	    LOG_ESC(esc, c->failure.text));
	c->msg = NULL;
	if (m != NULL) {
		for (size_t i = 0; i < m->nrcpt; i++)
			if (m->rcpts[i].outcome.result == OUTCOME_PENDING)
				m->rcpts[i].outcome = c->failure;
		c->ops->done(c->io, m);
	}
	smtpc_close(c);
}

/* smtpc_fail_as - smtpc_vfail with an explicit retry. */
static void
smtpc_fail_as(struct smtpc *c, enum smtpc_retry retry,
    enum outcome_result res, int code, const char *enhanced,
    const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void
smtpc_fail_as(struct smtpc *c, enum smtpc_retry retry,
    enum outcome_result res, int code, const char *enhanced,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	smtpc_vfail(c, retry, res, code, enhanced, fmt, ap);
	va_end(ap);
}

/* smtpc_fail - a failure of the next hop: a temporary one lets the
 * recipients left try the next host (Postfix: a recoverable error
 * qualifies them for a backup server), a permanent one does not. */
static void
smtpc_fail(struct smtpc *c, enum outcome_result res, int code,
    const char *enhanced, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void
smtpc_fail(struct smtpc *c, enum outcome_result res, int code,
    const char *enhanced, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	smtpc_vfail(c, res == OUTCOME_TEMPFAIL ? SMTPC_RETRY_NEXT_HOST :
	    SMTPC_RETRY_NONE, res, code, enhanced, fmt, ap);
	va_end(ap);
}

/* smtpc_fail_reply - a connection-level failure caused by a reply;
 * its class decides temporary or permanent unless temp forces 4xx. */
static void
smtpc_fail_reply(struct smtpc *c, const struct reply *r, bool temp,
    const char *what)
{
	char line[OUTCOME_TEXT_MAX];

	smtpc_fail(c, !temp && reply_class(r) == 5 ? OUTCOME_PERMFAIL :
	    OUTCOME_TEMPFAIL, r->code, r->enhanced, "host %s refused %s: %s",
	    c->peer, what, reply_oneline(r, line, sizeof(line)));
}

/* smtpc_hello - EHLO (LHLO for LMTP). */
static void
smtpc_hello(struct smtpc *c)
{
	memset(&c->ehlo, 0, sizeof(c->ehlo));
	smtpc_write(c, "%s %s", c->cfg->proto == SMTPC_LMTP ? "LHLO" : "EHLO",
	    c->cfg->helo_name);
	smtpc_enter_state(c, SMTPC_EHLO);
}

/* smtpc_auth_start - the first AUTH command (PLAIN preferred). */
static void
smtpc_auth_start(struct smtpc *c)
{
	const struct smtpc_auth *a = c->cfg->auth;
	char msg[SMTPC_AUTH_MAX], b64[SMTPC_AUTH_MAX * 2];
	size_t ul = strlen(a->user), pl = strlen(a->password);

	smtpc_enter_state(c, SMTPC_AUTH);
	if ((c->ehlo.auth & REPLY_AUTH_PLAIN) != 0 &&
	    ul + pl + 2 <= sizeof(msg)) {
		/* RFC 4616: authzid NUL authcid NUL passwd. */
		msg[0] = '\0';
		memcpy(msg + 1, a->user, ul);
		msg[ul + 1] = '\0';
		memcpy(msg + ul + 2, a->password, pl);
		if (base64_encode((const unsigned char *)msg, ul + pl + 2, b64,
		    sizeof(b64)) < 0)
			fatal("smtp client: AUTH PLAIN does not fit");
		smtpc_write(c, "AUTH PLAIN %s", b64);
		explicit_bzero(msg, sizeof(msg));
		explicit_bzero(b64, sizeof(b64));
		c->auth_step = AUTH_STEP_PLAIN;
	} else {
		smtpc_write(c, "AUTH LOGIN");
		c->auth_step = AUTH_STEP_LOGIN;
	}
}

/* smtpc_auth_send - one base64 line of an AUTH LOGIN exchange. */
static void
smtpc_auth_send(struct smtpc *c, const char *s)
{
	char b64[SMTPC_AUTH_MAX * 2];

	if (base64_encode((const unsigned char *)s, strlen(s), b64,
	    sizeof(b64)) < 0) {
		smtpc_fail(c, OUTCOME_TEMPFAIL, 0, "4.7.0", "AUTH LOGIN to %s: "
		    "credentials too long", c->peer);
		return;
	}
	smtpc_write(c, "%s", b64);
	explicit_bzero(b64, sizeof(b64));
}

/* smtpc_proceed - after EHLO/HELO (and STARTTLS, AUTH): the next step
 * towards an idle connection. */
static void
smtpc_proceed(struct smtpc *c)
{
	const struct smtpc_auth *a = c->cfg->auth;
	bool required = c->cfg->tls == SMTPC_TLS_ENCRYPT ||
	    c->cfg->tls == SMTPC_TLS_VERIFY;

	if (!c->tls && c->cfg->tls != SMTPC_TLS_NONE && c->ehlo.starttls &&
	    !c->starttls_tried) {
		c->starttls_tried = true;
		smtpc_write(c, "STARTTLS");
		smtpc_enter_state(c, SMTPC_STARTTLS);
		return;
	}
	if (!c->tls && required) {
		smtpc_fail(c, OUTCOME_TEMPFAIL, 0, "4.7.4", "TLS is required, "
		    "but host %s did not offer STARTTLS", c->peer);
		return;
	}
	if (a != NULL && !c->authed && (c->ehlo.auth & (REPLY_AUTH_PLAIN |
	    REPLY_AUTH_LOGIN)) != 0) {
		if (!c->tls && !a->allow_plaintext) {
			smtpc_fail(c, OUTCOME_TEMPFAIL, 0, "4.7.0", "not "
			    "sending credentials to %s without TLS", c->peer);
			return;
		}
		smtpc_auth_start(c);
		return;
	}
	if (a != NULL && !c->authed)
		log_warn("smtp client %s: no AUTH PLAIN or LOGIN offered; "
		    "sending without authentication", c->peer);
	smtpc_enter_state(c, SMTPC_READY);
	smtpc_offer(c);
}

/* smtpc_on_auth - a reply in the AUTH exchange. */
static void
smtpc_on_auth(struct smtpc *c, const struct reply *r)
{
	if (reply_class(r) == 2 && (c->auth_step == AUTH_STEP_PLAIN ||
	    c->auth_step == AUTH_STEP_LOGIN_PASSWORD)) {
		c->authed = true;
		c->auth_step = AUTH_STEP_NONE;
		log_info("smtp client %s: authenticated", c->peer);
		smtpc_proceed(c);
		return;
	}
	if (reply_class(r) == 3 && c->auth_step == AUTH_STEP_LOGIN) {
		c->auth_step = AUTH_STEP_LOGIN_USER;
		smtpc_auth_send(c, c->cfg->auth->user);
		return;
	}
	if (reply_class(r) == 3 && c->auth_step == AUTH_STEP_LOGIN_USER) {
		c->auth_step = AUTH_STEP_LOGIN_PASSWORD;
		smtpc_auth_send(c, c->cfg->auth->password);
		return;
	}
	/* A refused login is the operator's to fix: defer, never bounce.
	 * An unexpected 334 ends the exchange the same way. */
	smtpc_fail_reply(c, r, true, "authentication");
}

/* smtpc_on_hello - the reply to EHLO/LHLO or HELO. */
static void
smtpc_on_hello(struct smtpc *c, const struct reply *r)
{
	if (reply_class(r) == 2) {
		if (c->state == SMTPC_EHLO)
			reply_ehlo_parse(r, &c->ehlo);
		else
			memset(&c->ehlo, 0, sizeof(c->ehlo));
		smtpc_proceed(c);
		return;
	}
	if (c->state == SMTPC_EHLO && reply_class(r) == 5 &&
	    c->cfg->proto == SMTPC_SMTP) {
		smtpc_write(c, "HELO %s", c->cfg->helo_name);
		smtpc_enter_state(c, SMTPC_HELO);
		return;
	}
	smtpc_fail_reply(c, r, false, c->state == SMTPC_HELO ? "HELO" :
	    c->cfg->proto == SMTPC_LMTP ? "LHLO" : "EHLO");
}

/* smtpc_on_starttls - the reply to STARTTLS. */
static void
smtpc_on_starttls(struct smtpc *c, const struct reply *r)
{
	if (reply_class(r) == 2) {
		smtpc_enter_state(c, SMTPC_TLS);
		c->ops->starttls(c->io, c->cfg->tls);
		return;
	}
	if (c->cfg->tls == SMTPC_TLS_MAY) {
		log_info("smtp client %s: STARTTLS refused (%d), continuing "
		    "without TLS", c->peer, r->code);
		smtpc_proceed(c);
		return;
	}
	smtpc_fail_reply(c, r, true, "STARTTLS");
}

/* smtpc_tls_done - the TLS handshake's outcome. */
void
smtpc_tls_done(struct smtpc *c, bool ok, const char *why)
{
	char esc[SMTPC_ESC];

	if (c->state != SMTPC_TLS)
		return;
	if (!ok) {
		/* The connection is unusable mid-handshake; with `may` the
		 * same host is worth a plaintext connection (Postfix). */
		smtpc_fail_as(c, c->cfg->tls == SMTPC_TLS_MAY ?
		    SMTPC_RETRY_PLAINTEXT : SMTPC_RETRY_NEXT_HOST,
		    OUTCOME_TEMPFAIL, 0, "4.7.5", "TLS handshake with %s "
		    "failed: %s", c->peer, LOG_ESC(esc, why));
		return;
	}
	c->tls = true;
	smtpc_hello(c);
}

/* smtpc_valid_path - an address this client may put in a command. */
static bool
smtpc_valid_path(const char *s)
{
	size_t n = strlen(s);

	if (n > SMTPC_ADDR_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || s[i] == 0x7f ||
		    s[i] == '<' || s[i] == '>')
			return false;
	return true;
}

/* smtpc_hand_back - a message decided before MAIL: back to the caller,
 * the connection offered again. */
static void
smtpc_hand_back(struct smtpc *c, struct smtpc_message *m)
{
	c->ops->done(c->io, m);
	smtpc_offer(c);
}

/* smtpc_refuse_all - a message the peer cannot take: every recipient
 * fails the same way before anything is sent. */
static void
smtpc_refuse_all(struct smtpc *c, struct smtpc_message *m,
    enum outcome_result res, const char *enhanced, const char *text)
{
	for (size_t i = 0; i < m->nrcpt; i++)
		outcome_set(&m->rcpts[i].outcome, res, 0, enhanced, "%s",
		    text);
	smtpc_hand_back(c, m);
}

/* smtpc_send_mail - MAIL FROM with the parameters the peer offers. */
static void
smtpc_send_mail(struct smtpc *c)
{
	const struct smtpc_message *m = c->msg;
	char params[DSN_XTEXT_MAX + 128], envid[DSN_XTEXT_MAX];
	size_t n = 0;

	params[0] = '\0';
	if (c->ehlo.size && m->size > 0)
		n += (size_t)snprintf(params + n, sizeof(params) - n,
		    " SIZE=%llu", (unsigned long long)m->size);
	if (c->ehlo.eightbitmime && m->eightbit)
		n += (size_t)snprintf(params + n, sizeof(params) - n,
		    " BODY=8BITMIME");
	if (m->smtputf8)
		n += (size_t)snprintf(params + n, sizeof(params) - n,
		    " SMTPUTF8");
	if (c->ehlo.dsn && m->ret != DSN_RET_DEFAULT)
		n += (size_t)snprintf(params + n, sizeof(params) - n,
		    " RET=%s", dsn_ret_name(m->ret));
	if (c->ehlo.dsn && m->envid != NULL &&
	    dsn_xtext_encode(m->envid, envid, DSN_ENVID_MAX + 1) == 0)
		snprintf(params + n, sizeof(params) - n, " ENVID=%s", envid);
	/* A DSN next hop takes over the duty of success reports. */
	c->msg->peer_dsn = c->ehlo.dsn;
	smtpc_write(c, "MAIL FROM:<%s>%s", m->sender, params);
}

/* smtpc_send_rcpt - RCPT TO for recipient i, with NOTIFY/ORCPT. */
static void
smtpc_send_rcpt(struct smtpc *c, size_t i)
{
	const struct smtpc_rcpt *r = &c->msg->rcpts[i];
	char params[DSN_XTEXT_MAX + 128], xt[DSN_XTEXT_MAX];
	size_t n = 0;

	params[0] = '\0';
	if (c->ehlo.dsn && r->notify != 0) {
		char notify[DSN_NOTIFY_TEXT_MAX];

		dsn_notify_format(r->notify, notify);
		n += (size_t)snprintf(params + n, sizeof(params) - n,
		    " NOTIFY=%s", notify);
	}
	if (c->ehlo.dsn && r->orcpt != NULL) {
		const char *semi = strchr(r->orcpt, ';');

		if (semi != NULL && semi - r->orcpt <= DSN_ADDR_TYPE_MAX &&
		    dsn_xtext_encode(semi + 1, xt, DSN_ORCPT_MAX + 1) == 0)
			snprintf(params + n, sizeof(params) - n, " ORCPT=%.*s;%s",
			    (int)(semi - r->orcpt), r->orcpt, xt);
	}
	c->sent[c->nsent++] = i;
	smtpc_write(c, "RCPT TO:<%s>%s", r->address, params);
}

/* smtpc_next_rcpt - the index of the first recipient after `from`
 * still to be sent, or nrcpt. */
static size_t
smtpc_next_rcpt(const struct smtpc *c, size_t from)
{
	while (from < c->msg->nrcpt &&
	    c->msg->rcpts[from].outcome.result != OUTCOME_PENDING)
		from++;
	return from;
}

/* smtpc_send - start a message on an idle connection. */
void
smtpc_send(struct smtpc *c, struct smtpc_message *m)
{
	char esc[SMTPC_ESC];
	size_t i, pending = 0;

	if (c->state != SMTPC_READY)
		fatal("smtp client: smtpc_send in state %s",
		    smtpc_state_name(c->state));
	for (i = 0; i < m->nrcpt; i++) {
		m->rcpts[i].outcome.result = OUTCOME_PENDING;
		if (!smtpc_valid_path(m->rcpts[i].address))
			outcome_set(&m->rcpts[i].outcome, OUTCOME_PERMFAIL, 0,
			    "5.1.3", "bad recipient address syntax: %s",
			    LOG_ESC(esc, m->rcpts[i].address));
		else
			pending++;
	}
	if (!smtpc_valid_path(m->sender)) {
		smtpc_refuse_all(c, m, OUTCOME_PERMFAIL, "5.1.7",
		    "bad sender address syntax");
		return;
	}
	if (m->smtputf8 && !c->ehlo.smtputf8) {
		smtpc_refuse_all(c, m, OUTCOME_PERMFAIL, "5.6.7", "the message "
		    "needs SMTPUTF8, which the next hop does not offer");
		return;
	}
	if (c->ehlo.size && c->ehlo.size_max > 0 && m->size >
	    c->ehlo.size_max) {
		smtpc_refuse_all(c, m, OUTCOME_PERMFAIL, "5.3.4", "message "
		    "size exceeds the next hop's fixed maximum message size");
		return;
	}
	if (pending == 0) {
		smtpc_hand_back(c, m);
		return;
	}
	c->msg = m;
	c->sent = xcalloc(m->nrcpt, sizeof(*c->sent));
	c->nsent = 0;
	c->nreplies = 0;
	c->mail_ok = false;
	c->empty_dot = false;
	smtpc_enter_state(c, SMTPC_TXN);
	smtpc_send_mail(c);
	if (c->ehlo.pipelining) {
		for (i = smtpc_next_rcpt(c, 0); i < m->nrcpt;
		    i = smtpc_next_rcpt(c, i + 1))
			smtpc_send_rcpt(c, i);
		smtpc_write(c, "DATA");
	}
}

/* smtpc_pending_take - every recipient still pending takes r's outcome. */
static void
smtpc_pending_take(struct smtpc *c, const struct reply *r)
{
	struct outcome o;

	reply_outcome(r, &o);
	/* Only a DATA reply that is neither 354 nor a failure gets here as
	 * 2xx: nothing was delivered by it. */
	if (o.result == OUTCOME_DELIVERED)
		outcome_set(&o, OUTCOME_TEMPFAIL, r->code, NULL, "unexpected "
		    "reply from %s: %s", c->peer, o.text);
	for (size_t i = 0; i < c->msg->nrcpt; i++)
		if (c->msg->rcpts[i].outcome.result == OUTCOME_PENDING)
			c->msg->rcpts[i].outcome = o;
}

/* smtpc_accepted - how many recipients are accepted and undecided. */
static size_t
smtpc_accepted(const struct smtpc *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->msg->nrcpt; i++)
		n += c->msg->rcpts[i].outcome.result == OUTCOME_PENDING;
	return n;
}

/* smtpc_on_data - the reply to DATA. */
static void
smtpc_on_data(struct smtpc *c, const struct reply *r)
{
	if (reply_class(r) == 3) {
		if (c->mail_ok && smtpc_accepted(c) > 0) {
			c->bol = true;
			c->cr = false;
			smtpc_enter_state(c, SMTPC_BODY);
			return;
		}
		/* Pipelined DATA after every RCPT failed, and the server
		 * still said 354: end an empty message (RFC 2920 §3.1). */
		c->empty_dot = true;
		c->ops->write(c->io, ".\r\n", 3);
		smtpc_enter_state(c, SMTPC_DOT);
		return;
	}
	if (c->mail_ok)
		smtpc_pending_take(c, r);
	smtpc_txn_finish(c, c->mail_ok);
}

/* smtpc_on_txn - a reply to MAIL, a RCPT or DATA, in command order. */
static void
smtpc_on_txn(struct smtpc *c, const struct reply *r)
{
	size_t idx = c->nreplies++;

	if (idx == 0) {
		c->mail_ok = reply_class(r) == 2;
		if (!c->mail_ok) {
			/* RCPT replies that follow (503) must not override
			 * the reason: the sender was refused. */
			smtpc_pending_take(c, r);
			if (!c->ehlo.pipelining) {
				smtpc_txn_finish(c, false);
				return;
			}
		}
	} else if (idx <= c->nsent) {
		struct smtpc_rcpt *rc = &c->msg->rcpts[c->sent[idx - 1]];

		if (c->mail_ok && reply_class(r) != 2)
			reply_outcome(r, &rc->outcome);
	} else {
		smtpc_on_data(c, r);
		return;
	}
	if (c->ehlo.pipelining)
		return;
	/* Lock step: what goes out next. */
	{
		size_t next = smtpc_next_rcpt(c, c->nsent == 0 ? 0 :
		    c->sent[c->nsent - 1] + 1);

		if (next < c->msg->nrcpt)
			smtpc_send_rcpt(c, next);
		else if (smtpc_accepted(c) > 0)
			smtpc_write(c, "DATA");
		else
			smtpc_txn_finish(c, true);
	}
}

/* smtpc_on_dot - a reply after the final dot: SMTP's one for all,
 * LMTP's one per accepted recipient in RCPT order. */
static void
smtpc_on_dot(struct smtpc *c, const struct reply *r)
{
	struct smtpc_message *m = c->msg;

	if (c->empty_dot) {
		smtpc_txn_finish(c, false);
		return;
	}
	if (c->cfg->proto == SMTPC_SMTP) {
		struct outcome o;

		reply_outcome(r, &o);
		for (size_t i = 0; i < m->nrcpt; i++)
			if (m->rcpts[i].outcome.result == OUTCOME_PENDING)
				m->rcpts[i].outcome = o;
	} else {
		for (size_t k = 0; k < c->nsent; k++) {
			struct smtpc_rcpt *rc = &m->rcpts[c->sent[k]];

			if (rc->outcome.result == OUTCOME_PENDING) {
				reply_outcome(r, &rc->outcome);
				break;
			}
		}
	}
	if (smtpc_accepted(c) == 0)
		smtpc_txn_finish(c, false);
}

/* smtpc_on_greeting_refused - a 4xx or 5xx greeting.  A 5xx one says
 * this host will not talk to us, not that the mail is unwanted: as
 * Postfix's smtp_skip_5xx_greeting = yes it is a deferral (its status
 * made class 4, the reply code kept for the diagnostic) whose
 * recipients try the next host, never a bounce. */
static void
smtpc_on_greeting_refused(struct smtpc *c, const struct reply *r)
{
	char line[OUTCOME_TEXT_MAX], enhanced[OUTCOME_ENHANCED_MAX];

	snprintf(enhanced, sizeof(enhanced), "%s", r->enhanced);
	if (enhanced[0] == '5')
		enhanced[0] = '4';
	smtpc_fail(c, OUTCOME_TEMPFAIL, r->code, enhanced, "host %s refused "
	    "to talk to me: %s", c->peer, reply_oneline(r, line,
	    sizeof(line)));
}

/* smtpc_dispatch - one complete reply in the current state. */
static void
smtpc_dispatch(struct smtpc *c, const struct reply *r)
{
	if (c->state == SMTPC_QUIT) {
		smtpc_close(c);
		return;
	}
	/* 421: the server is closing the channel, whatever we asked. */
	if (r->code == 421 || c->state == SMTPC_READY) {
		smtpc_fail_reply(c, r, true, "the session");
		return;
	}
	switch (c->state) {
	case SMTPC_GREETING:
		if (reply_class(r) == 2) {
			smtpc_hello(c);
			return;
		}
		c->ops->write(c->io, "QUIT\r\n", 6);
		smtpc_on_greeting_refused(c, r);
		return;
	case SMTPC_EHLO:
	case SMTPC_HELO:
		smtpc_on_hello(c, r);
		return;
	case SMTPC_STARTTLS:
		smtpc_on_starttls(c, r);
		return;
	case SMTPC_AUTH:
		smtpc_on_auth(c, r);
		return;
	case SMTPC_TXN:
		smtpc_on_txn(c, r);
		return;
	case SMTPC_DOT:
		smtpc_on_dot(c, r);
		return;
	case SMTPC_RSET:
		if (reply_class(r) == 2) {
			smtpc_enter_state(c, SMTPC_READY);
			smtpc_offer(c);
		} else {
			/* A connection that cannot reset is not reused. */
			smtpc_quit(c);
		}
		return;
	case SMTPC_READY:
	case SMTPC_TLS:
	case SMTPC_BODY:
	case SMTPC_QUIT:
	case SMTPC_CLOSED:
		break;
	}
	fatal("smtp client: reply in state %s", smtpc_state_name(c->state));
}

/* smtpc_feed - whole replies from the peer's bytes. */
size_t
smtpc_feed(struct smtpc *c, const char *data, size_t len)
{
	size_t off = 0;

	while (off < len) {
		struct error err;
		size_t used;
		enum reply_status st;

		switch (c->state) {
		case SMTPC_TLS:
		case SMTPC_CLOSED:
			/* Plaintext behind a STARTTLS reply is never read
			 * as a reply after the handshake (response
			 * injection); after close nothing is. */
			return len;
		case SMTPC_BODY:
			/* RFC 2920 §3.1: nothing is due before the final dot.
			 * A peer talking anyway gets at most one reply's worth
			 * kept for after it, not the caller's memory. */
			if (len - off > REPLY_TOTAL_MAX) {
				smtpc_fail(c, OUTCOME_TEMPFAIL, 0, "4.5.0",
				    "host %s sent more than %d bytes while we "
				    "sent the message", c->peer,
				    REPLY_TOTAL_MAX);
				return len;
			}
			return off;
		default:
			break;
		}
		st = reply_parse(data + off, len - off, &used, &c->reply, &err);
		if (st == REPLY_MORE)
			return off;
		if (st == REPLY_ERROR) {
			smtpc_fail(c, OUTCOME_TEMPFAIL, 0, "4.5.0", "protocol "
			    "error from %s: %s", c->peer, err.text);
			return len;
		}
		off += used;
		smtpc_dispatch(c, &c->reply);
	}
	return off;
}

/* smtpc_stuff - body bytes to wire bytes: CRLF line ends, leading dots
 * doubled; out holds at least 2 * n + 2 bytes.  Returns the length. */
static size_t
smtpc_stuff(struct smtpc *c, const char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char b = in[i];

		if (c->cr) {
			c->cr = false;
			out[o++] = '\r';
			out[o++] = '\n';
			c->bol = true;
			if (b == '\n')
				continue;
		}
		if (b == '\r') {
			c->cr = true;
			continue;
		}
		if (b == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			c->bol = true;
			continue;
		}
		if (c->bol && b == '.')
			out[o++] = '.';
		out[o++] = b;
		c->bol = false;
	}
	return o;
}

/* smtpc_pump - send up to about budget body bytes, then the final dot. */
size_t
smtpc_pump(struct smtpc *c, size_t budget)
{
	char in[SMTPC_CHUNK], out[2 * SMTPC_CHUNK + 8];
	size_t written = 0;

	while (c->state == SMTPC_BODY && written < budget) {
		long n = c->ops->body_read(c->io, in, sizeof(in));
		size_t o;

		if (n < 0) {
			/* Without the final dot the peer discards what it
			 * got: closing is the only safe abort. */
			smtpc_fail_as(c, SMTPC_RETRY_NONE, OUTCOME_TEMPFAIL, 0,
			    "4.3.0", "local error reading the message for %s",
			    c->peer);
			break;
		}
		if (n == 0) {
			/* A last line without its CRLF gets one. */
			o = smtpc_stuff(c, "\n", c->cr || !c->bol, out);
			memcpy(out + o, ".\r\n", 3);
			o += 3;
			c->ops->write(c->io, out, o);
			written += o;
			smtpc_enter_state(c, SMTPC_DOT);
			break;
		}
		o = smtpc_stuff(c, in, (size_t)n > sizeof(in) ? sizeof(in) :
		    (size_t)n, out);
		c->ops->write(c->io, out, o);
		written += o;
	}
	return written;
}

/* smtpc_quit - QUIT on an idle (or unusable) connection. */
void
smtpc_quit(struct smtpc *c)
{
	if (c->state == SMTPC_CLOSED || c->state == SMTPC_QUIT)
		return;
	smtpc_write(c, "QUIT");
	smtpc_enter_state(c, SMTPC_QUIT);
}

/* smtpc_timeout - the current timer expired. */
void
smtpc_timeout(struct smtpc *c)
{
	enum smtpc_timer t = smtpc_timer(c);

	if (c->state == SMTPC_CLOSED)
		return;
	if (c->state == SMTPC_QUIT) {
		smtpc_close(c);
		return;
	}
	smtpc_fail(c, OUTCOME_TEMPFAIL, 0, "4.4.2", "conversation with %s "
	    "timed out while %s%s", c->peer, t == SMTPC_TIMER_DATA_BLOCK ?
	    "" : "waiting for ", smtpc_timer_name(t));
}

/* smtpc_abort - the connection was lost or refused. */
void
smtpc_abort(struct smtpc *c, const char *why)
{
	char esc[SMTPC_ESC];

	if (c->state == SMTPC_CLOSED)
		return;
	if (c->state == SMTPC_QUIT) {
		smtpc_close(c);
		return;
	}
	smtpc_fail(c, OUTCOME_TEMPFAIL, 0, "4.4.2", "lost connection with "
	    "%s in state %s: %s", c->peer, smtpc_state_name(c->state),
	    LOG_ESC(esc, why));
}
