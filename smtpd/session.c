/*
 * session.c - the SMTP session state machine of elemta-smtpd (RFC 5321,
 * 1870, 2920, 3463, 6152, 6531).
 *
 * Driven by server.c (and the unit tests) through session.h; every input
 * is untrusted client text.  Each command has a check (allowed now?
 * syntax?) that either answers at once or asks policyd, and a proceed
 * that acts on policyd's answer; session_enter_state is the only place
 * the state changes.  While an answer is pending no input is consumed,
 * which keeps pipelined replies in order.  Protocol defences live here:
 * early talkers, unauthorised pipelining after EHLO/HELO/DATA, line
 * limits, error limits, and (with data.c) SMTP smuggling.
 *
 * Policy answers map to replies as DESIGN.md says: continue -> normal
 * reply; reject/tempfail -> the policy's code and text; discard and
 * quarantine -> remembered for the message (for the whole session when
 * given at CONNECT or HELO) and answered normally; a failed request ->
 * policyd.fail_mode (451 4.3.5, or continue with a warning).  A 421 from
 * anywhere closes the connection.  Refusals count toward server.max_errors
 * except "452 4.5.3" for a recipient over a limit (ours or a policy's),
 * which counts only past SESSION_RCPT_OVERSHOOT per transaction, as in
 * Postfix.  AUTH is the exception: only a literal
 * OK authenticates (235 2.7.0), a refusal is relayed, anything else
 * (DUNNO, a failed request in either fail mode) is 454 4.7.0.
 *
 * STARTTLS (RFC 3207) and AUTH (RFC 4954) replies:
 *   220 2.0.0  ready to start TLS (then everything the client said is
 *              forgotten and buffered input discarded)
 *   502 5.5.1  STARTTLS without a certificate (or on smtps)
 *   503 5.5.1  STARTTLS under TLS; AUTH before EHLO, after success or
 *              inside a transaction; AUTH without auth.users_file
 *   538 5.7.11 AUTH without TLS while auth.require_tls is on
 *   504 5.5.4  a mechanism other than PLAIN and LOGIN
 *   500 5.5.6  an AUTH line over 12288 octets
 *   501 5.7.0  the client cancelled ("*")
 *   501 5.5.2  malformed base64 or PLAIN message
 *   535 5.7.8  credentials refused (policyd, or too long to be valid)
 *   454 4.7.0  policyd unavailable or locked out
 *   530 5.7.0  MAIL on a submission listener before AUTH
 * On a local listener (mode local, elemta-sendmail's socket) the session
 * is authenticated from its start as the peer's local user (server.c,
 * local_peer.h): sasl_username is the user's name and elemta_local_uid
 * its uid in every policy request, relay control treats it as
 * authenticated, AUTH is neither offered nor accepted (503 5.5.1) and the
 * Received: header says where it came from as Postfix's does ("by HOST
 * (Elemta, from userid UID)").
 * Every one of them counts toward server.max_errors, and so do:
 *   554 5.7.1  <address>: Relay access denied (smtpd/relay.h, at RCPT,
 *              before policyd is asked)
 *   452 4.3.1  Insufficient system storage: at MAIL when the spool's free
 *              space is below spool.min_free plus the declared SIZE; at
 *              DATA or end of data when a spool write found the disk full
 *              (the message is dropped, nothing partial stays)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "error.h"
#include "log.h"
#include "msg_edit.h"
#include "wire.h"
#include "command.h"
#include "data.h"
#include "relay.h"
#include "sasl.h"
#include "session.h"
#include "spool.h"
#include "stats.h"

#define SESSION_DATA_CHUNK 8192
#define SESSION_ESC 512            /* escaped-string buffer for logs   */
/* Recipients refused for the recipient limit before each further one
 * counts toward max_errors: Postfix's smtpd_recipient_overshoot_limit
 * default.  A client that pipelines past the limit keeps its transaction
 * (RFC 5321 4.5.3.1.10: it sends the rest later); one that goes on for
 * ever is stopped. */
#define SESSION_RCPT_OVERSHOOT 1000
/* How early a libevent timer may fire by our clock (it reads the coarse
 * monotonic clock, a tick of 1 to 10 ms). */
#define SESSION_TIMER_SLACK_MS 20
/* An AUTH request: ~1.4 KB of password, two 255-octet names, the HELO
 * name and the usual attributes fit well within this. */
#define SESSION_AUTH_REQUEST_ROOM 8192
#define SESSION_TLS_PROTOCOL_MAX 32
#define SESSION_TLS_CIPHER_MAX 96
/* The longest line session_feed copies: an AUTH line and its CRLF, or a
 * bare LF and one more byte. */
#define SESSION_LINE_BUF (SASL_LINE_MAX + 3)

/* One mail transaction (MAIL .. end of data); reset by RSET, HELO/EHLO
 * and at end of data. */
struct session_txn {
	bool active;                 /* MAIL accepted (or being checked) */
	char *sender;                /* owned; "" for <>                */
	char queue_id[SPOOL_ID_LEN + 1];
	uint64_t declared_size;
	enum command_body body;
	bool smtputf8;
	char **rcpts;                /* accepted recipients, owned      */
	unsigned *notify;            /* their RFC 3461 NOTIFY bits      */
	char **orcpt;                /* their ORCPT xtext, owned        */
	size_t nrcpt, rcpt_cap;
	enum dsn_ret ret;            /* MAIL's RET=                     */
	char envid[DSN_ENVID_MAX + 1]; /* MAIL's ENVID= (xtext), ""     */
	unsigned pending_notify;     /* the RCPT policyd is asked about */
	char *pending_orcpt;
	bool rcpt_tried;
	unsigned rcpt_overshoot;     /* 452 4.5.3 answered so far       */
	char *pending_rcpt;          /* under policy check, owned       */
	enum elemta_action verdict;  /* CONTINUE, DISCARD or QUARANTINE */
	/* Headers policyd prepended (PREPEND) at MAIL, RCPT and DATA; from
	 * DATA on the session's joined in front: everything above the
	 * Received: header.  Owned, NULL when none. */
	struct wire_headers *hdrs;
	size_t hdrs_written;         /* bytes of hdrs already spooled   */
	/* The END-OF-MESSAGE answer's edits, during its callback only
	 * (policy_client.h): applied before the commit. */
	const struct msg_edits *edits;
};

struct session {
	char sid[16];
	enum session_state state;
	enum session_state resume;   /* where a refused check returns   */
	enum elemta_phase phase;    /* of the request in flight        */
	const struct config *cfg;
	const struct session_ops *ops;
	void *io;

	char client_addr[ADDR_TEXT_MAX];
	/* The client's names from policyd's CONNECT answer (FCrDNS):
	 * "unknown" until then or without a resolver. */
	char client_name[254];
	char reverse_client_name[254];
	char server_addr[ADDR_TEXT_MAX];
	unsigned client_port, server_port;
	enum config_listen_mode mode;

	char *helo;                  /* owned; NULL before HELO/EHLO    */
	bool esmtp;
	enum elemta_action session_verdict; /* from CONNECT/HELO         */
	/* Headers prepended at CONNECT, HELO/EHLO and AUTH, for every
	 * message of the session (owned, NULL when none); a new HELO
	 * replaces the last one's, back to hdrs_connect. */
	struct wire_headers *hdrs;
	unsigned hdrs_connect_count;  /* hdrs' end after CONNECT          */
	size_t hdrs_connect_len;

	bool starttls_ok;            /* the peer may offer STARTTLS     */
	bool tls;                    /* the connection is encrypted     */
	char tls_protocol[SESSION_TLS_PROTOCOL_MAX];
	char tls_cipher[SESSION_TLS_CIPHER_MAX];
	/* "PROTOCOL CIPHER" for the envelope; here (not on a stack) so an
	 * asynchronous commit may keep pointing at it. */
	char tls_desc[SESSION_TLS_PROTOCOL_MAX + SESSION_TLS_CIPHER_MAX];

	bool authenticated;          /* policyd answered OK to AUTH, or a
	                                local listener's peer          */
	unsigned long local_uid;     /* mode local: the peer's uid, pid */
	long local_pid;
	/* policyd's AUTH answer, held while ops->delay runs. */
	struct policy_result auth_held;
	bool auth_holding;
	struct sasl_exchange sasl;   /* the AUTH exchange (sasl.c); its
	                                user and method stay once
	                                authenticated                   */

	bool skip_line;              /* discarding an over-long line    */
	bool in_feed;                /* inside session_feed             */
	size_t feed_rest;            /* input after the current line    */
	uint64_t line_start_ms;      /* a partial line is waiting; 0 not */

	unsigned errors;
	unsigned ncommands;
	unsigned counts[CMD__COUNT];   /* for the disconnect line */
	enum command_id last_cmd;

	unsigned instance_seq;
	char instance[32];
	struct session_txn txn;

	struct data_machine dm;
	struct spool_msg *spool;     /* open during DATA / EOM_POLICY   */
	bool oversize;
	uint64_t data_start_ms;
	uint64_t data_in;            /* raw bytes received in DATA      */
	uint64_t message_size;       /* bytes of the spooled message    */
};

static void session_reply(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void session_auth_clear(struct session *s, bool all);
static void session_reply_error(struct session *s, int code,
    const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*==== Small helpers ====*/

/* session_now_ms - monotonic milliseconds. */
static uint64_t
session_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* session_esc - escape untrusted text for a log line. */
static const char *
session_esc(char *buf, size_t size, const char *s)
{
	if (s == NULL)
		s = "";
	return log_escape(buf, size, s, strlen(s));
}

/* session_state_name - for logs and tests. */
const char *
session_state_name(enum session_state st)
{
	switch (st) {
	case SESSION_CONNECT_POLICY: return "CONNECT_POLICY";
	case SESSION_GREETED: return "GREETED";
	case SESSION_HELO_DONE: return "HELO_DONE";
	case SESSION_MAIL_DONE: return "MAIL_DONE";
	case SESSION_RCPT_DONE: return "RCPT_DONE";
	case SESSION_AUTH: return "AUTH";
	case SESSION_STARTTLS: return "STARTTLS";
	case SESSION_WAIT_POLICY: return "WAIT_POLICY";
	case SESSION_DATA: return "DATA";
	case SESSION_EOM_POLICY: return "EOM_POLICY";
	case SESSION_EOM_COMMIT: return "EOM_COMMIT";
	case SESSION_CLOSING: return "CLOSING";
	}
	return "?";
}

/* session_enter_state - the only place the state changes. */
static void
session_enter_state(struct session *s, enum session_state st)
{
	if (s->state == st)
		return;
	log_debug("sid=%s state %s -> %s", s->sid,
	    session_state_name(s->state), session_state_name(st));
	s->state = st;
}

/* session_state - the current state (server.c, tests). */
enum session_state
session_state(const struct session *s)
{
	return s->state;
}

/* session_id - the id every log line of the session carries. */
const char *
session_id(const struct session *s)
{
	return s->sid;
}

/* session_pending - what the session waits for (server.c). */
enum session_pending
session_pending(const struct session *s)
{
	switch (s->state) {
	case SESSION_CONNECT_POLICY:
	case SESSION_WAIT_POLICY:
	case SESSION_EOM_POLICY:
		return SESSION_PENDING_POLICY;
	case SESSION_EOM_COMMIT:
		return SESSION_PENDING_COMMIT;
	default:
		return SESSION_PENDING_NONE;
	}
}

/* session_wants_input - false while a decision is pending or closing. */
bool
session_wants_input(const struct session *s)
{
	switch (s->state) {
	case SESSION_GREETED:
	case SESSION_HELO_DONE:
	case SESSION_MAIL_DONE:
	case SESSION_RCPT_DONE:
	case SESSION_AUTH:
	case SESSION_DATA:
		return true;
	default:
		return false;
	}
}

/* session_ready_state - the idle state for what the client has done. */
static enum session_state
session_ready_state(const struct session *s)
{
	return s->helo != NULL ? SESSION_HELO_DONE : SESSION_GREETED;
}

/* session_new_instance - a new transaction identifier (instance=). */
static void
session_new_instance(struct session *s)
{
	s->instance_seq++;
	snprintf(s->instance, sizeof(s->instance), "%s.%u", s->sid,
	    s->instance_seq);
}

/* session_txn_reset - forget the transaction (RSET, HELO, end of data). */
static void
session_txn_reset(struct session *s)
{
	struct session_txn *t = &s->txn;

	free(t->sender);
	for (size_t i = 0; i < t->nrcpt; i++) {
		free(t->rcpts[i]);
		free(t->orcpt[i]);
	}
	free(t->rcpts);
	free(t->notify);
	free(t->orcpt);
	free(t->pending_rcpt);
	free(t->pending_orcpt);
	free(t->hdrs);
	memset(t, 0, sizeof(*t));
	if (s->spool != NULL) {
		spool_msg_abort(s->spool);
		free(s->spool);
		s->spool = NULL;
	}
	s->oversize = false;
	session_new_instance(s);
}

/* session_starttls_offered - STARTTLS is advertised and accepted: a
 * certificate is loaded (the peer says so), the transport can switch,
 * and the connection is not encrypted yet. */
static bool
session_starttls_offered(const struct session *s)
{
	return s->starttls_ok && s->ops->starttls != NULL && !s->tls;
}

/* session_auth_enabled - AUTH exists here: auth.users_file is set. */
static bool
session_auth_enabled(const struct session *s)
{
	return s->cfg->auth.users_file[0] != '\0' &&
	    s->mode != CONFIG_MODE_LOCAL;
}

/* session_auth_offered - AUTH is advertised: enabled, and under TLS
 * unless auth.require_tls is off. */
static bool
session_auth_offered(const struct session *s)
{
	return session_auth_enabled(s) && (s->tls || !s->cfg->auth.require_tls);
}

/*==== Replies ====*/

/* session_close - no more input; the caller closes after the replies. */
static void
session_close(struct session *s)
{
	if (s->state == SESSION_CLOSING)
		return;
	session_enter_state(s, SESSION_CLOSING);
	s->ops->close(s->io);
}

/* session_vreply - one reply line (fmt without CRLF) to the client. */
static void __attribute__((format(printf, 2, 0)))
session_vreply(struct session *s, const char *fmt, va_list ap)
{
	char buf[600];
	int n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);

	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(buf) - 3)
		n = (int)sizeof(buf) - 3;
	buf[n++] = '\r';
	buf[n++] = '\n';
	s->ops->write(s->io, buf, (size_t)n);
}

/* session_reply - a normal reply. */
static void
session_reply(struct session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	session_vreply(s, fmt, ap);
	va_end(ap);
}

/* session_count_error - count a 4xx/5xx; at server.max_errors the
 * session ends with 421 4.7.0 (Postfix's hard error limit). */
static void
session_count_error(struct session *s)
{
	char esc[SESSION_ESC];

	if (s->state == SESSION_CLOSING)
		return;
	s->errors++;
	if (s->cfg->server.max_errors > 0 &&
	    s->errors >= s->cfg->server.max_errors) {
		log_info("sid=%s too many errors after %s from unknown[%s]",
		    s->sid, command_name(s->last_cmd),
		    session_esc(esc, sizeof(esc), s->client_addr));
		session_reply(s, "421 4.7.0 %s Error: too many errors",
		    s->cfg->server.hostname);
		session_close(s);
	}
}

/* session_reply_error - "code enh text", counted as an error; 421 closes. */
static void
session_reply_error(struct session *s, int code, const char *enh,
    const char *fmt, ...)
{
	char text[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	session_reply(s, "%d %s %s", code, enh, text);
	if (code == 421) {
		session_close(s);
		return;
	}
	session_count_error(s);
}

/* session_rcpt_too_many - "452 4.5.3" for one recipient over a limit
 * (server.max_recipients, or a policy's max_recipients_per_message): not
 * a protocol error until the transaction has overshot the limit
 * SESSION_RCPT_OVERSHOOT times. */
static void
session_rcpt_too_many(struct session *s, const char *text)
{
	session_reply(s, "452 4.5.3 %s", text);
	if (++s->txn.rcpt_overshoot > SESSION_RCPT_OVERSHOOT)
		session_count_error(s);
}

/* session_log_reject - Postfix-like "reject:" line. */
static void
session_log_reject(struct session *s, enum elemta_phase phase, int code,
    const char *enh, const char *text, const char *rcpt)
{
	char e1[SESSION_ESC], e2[SESSION_ESC], e3[SESSION_ESC], e4[SESSION_ESC];
	char e5[SESSION_ESC];

	smtpd_stats_refused(phase);
	log_info("sid=%s reject: %s from unknown[%s]: %d %s %s; from=<%s> "
	    "to=<%s> proto=%s helo=<%s>", s->sid, wire_phase_name(phase),
	    session_esc(e5, sizeof(e5), s->client_addr), code, enh,
	    session_esc(e1, sizeof(e1), text),
	    session_esc(e2, sizeof(e2), s->txn.sender),
	    session_esc(e3, sizeof(e3), rcpt),
	    s->esmtp ? "ESMTP" : "SMTP",
	    session_esc(e4, sizeof(e4), s->helo));
}

/* session_sync_violation - RFC 2920: EHLO, HELO and DATA end a pipelined
 * group; input already waiting behind them means the client did not wait
 * for our reply (spam software does that).  Postfix's answer, then close. */
static bool
session_sync_violation(struct session *s, const char *after)
{
	size_t pending = s->in_feed ? s->feed_rest : s->ops->pending(s->io);
	char esc[SESSION_ESC];

	if (pending == 0)
		return false;
	log_info("sid=%s improper command pipelining after %s from "
	    "unknown[%s]", s->sid, after,
	    session_esc(esc, sizeof(esc), s->client_addr));
	session_reply(s, "554 5.5.0 Error: SMTP protocol synchronization");
	session_close(s);
	return true;
}

/*==== Policy requests ====*/

/* session_strbuf_wipe - clear and free a request (it may hold a
 * password). */
static void
session_strbuf_wipe(struct strbuf *sb)
{
	if (sb->data != NULL)
		explicit_bzero(sb->data, sb->cap);
	strbuf_free(sb);
}

/* session_attr_u - an unsigned attribute. */
static int
session_attr_u(struct strbuf *sb, const char *name, uint64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%" PRIu64, v);
	return wire_encode_attr(sb, name, num);
}

/* session_build_request - every attribute docs/internals.md lists for
 * this phase. */
static int
session_build_request(struct session *s, enum elemta_phase ph,
    struct strbuf *sb, const char *rcpt, bool with_fd)
{
	const struct session_txn *t = &s->txn;
	int rc = 0;

	rc |= wire_encode_attr(sb, WIRE_ATTR_REQUEST, WIRE_REQUEST_POLICY);
	rc |= wire_encode_attr(sb, WIRE_ATTR_PROTOCOL_STATE,
	    wire_phase_name(ph));
	rc |= wire_encode_attr(sb, WIRE_ATTR_PROTOCOL_NAME,
	    s->esmtp ? "ESMTP" : "SMTP");
	rc |= wire_encode_attr(sb, WIRE_ATTR_CLIENT_ADDRESS, s->client_addr);
	rc |= session_attr_u(sb, WIRE_ATTR_CLIENT_PORT, s->client_port);
	rc |= wire_encode_attr(sb, WIRE_ATTR_CLIENT_NAME, s->client_name);
	rc |= wire_encode_attr(sb, WIRE_ATTR_REVERSE_CLIENT_NAME,
	    s->reverse_client_name);
	rc |= wire_encode_attr(sb, WIRE_ATTR_SERVER_ADDRESS, s->server_addr);
	rc |= session_attr_u(sb, WIRE_ATTR_SERVER_PORT, s->server_port);
	if (s->helo != NULL)
		rc |= wire_encode_attr(sb, WIRE_ATTR_HELO_NAME, s->helo);
	if (t->active) {
		rc |= wire_encode_attr(sb, WIRE_ATTR_SENDER, t->sender);
		rc |= wire_encode_attr(sb, WIRE_ATTR_QUEUE_ID, t->queue_id);
	}
	if (ph == ELEMTA_PHASE_RCPT)
		rc |= wire_encode_attr(sb, WIRE_ATTR_RECIPIENT, rcpt);
	if (ph >= ELEMTA_PHASE_RCPT)
		rc |= session_attr_u(sb, WIRE_ATTR_RECIPIENT_COUNT, t->nrcpt);
	if (ph == ELEMTA_PHASE_MAIL)
		rc |= session_attr_u(sb, WIRE_ATTR_SIZE, t->declared_size);
	if (ph == ELEMTA_PHASE_EOM)
		rc |= session_attr_u(sb, WIRE_ATTR_SIZE, s->message_size);
	rc |= wire_encode_attr(sb, WIRE_ATTR_INSTANCE, s->instance);
	if (s->tls) {
		rc |= wire_encode_attr(sb, WIRE_ATTR_ENCRYPTION_PROTOCOL,
		    s->tls_protocol);
		rc |= wire_encode_attr(sb, WIRE_ATTR_ENCRYPTION_CIPHER,
		    s->tls_cipher);
	}
	if (ph == ELEMTA_PHASE_AUTH) {
		/* The credentials under test (docs/internals.md): the
		 * password as base64 of its bytes, never logged. */
		rc |= wire_encode_attr(sb, WIRE_ATTR_SASL_METHOD,
		    s->sasl.method);
		rc |= wire_encode_attr(sb, WIRE_ATTR_SASL_USERNAME,
		    s->sasl.user);
		rc |= wire_encode_attr(sb, WIRE_AUTH_PASSWORD,
		    s->sasl.secret != NULL ? s->sasl.secret : "");
		if (s->sasl.authzid != NULL)
			rc |= wire_encode_attr(sb, WIRE_AUTH_AUTHZID,
			    s->sasl.authzid);
	} else if (s->authenticated) {
		/* A local user has no SASL mechanism: no sasl_method. */
		if (s->sasl.method != NULL)
			rc |= wire_encode_attr(sb, WIRE_ATTR_SASL_METHOD,
			    s->sasl.method);
		rc |= wire_encode_attr(sb, WIRE_ATTR_SASL_USERNAME,
		    s->sasl.user);
	}
	if (s->mode == CONFIG_MODE_LOCAL)
		rc |= session_attr_u(sb, WIRE_ATTR_LOCAL_UID, s->local_uid);
	rc |= wire_encode_attr(sb, WIRE_ATTR_SESSION, s->sid);
	rc |= wire_encode_attr(sb, WIRE_ATTR_LISTEN_MODE,
	    config_listen_mode_name(s->mode));
	if (ph == ELEMTA_PHASE_DATA || ph == ELEMTA_PHASE_EOM)
		for (size_t i = 0; i < t->nrcpt; i++)
			rc |= wire_encode_attr(sb, WIRE_ATTR_ACCEPTED_RECIPIENT,
			    t->rcpts[i]);
	if (with_fd)
		rc |= wire_encode_attr(sb, WIRE_ATTR_MESSAGE_FD, "1");
	rc |= wire_encode_end(sb);
	return rc ? -1 : 0;
}

/* session_ask - send the request for phase and wait in wait_state; a
 * request that fails at once is answered at once (fail mode). */
static void
session_ask(struct session *s, enum elemta_phase ph,
    enum session_state wait_state, const char *rcpt, int fd)
{
	struct strbuf sb = STRBUF_INIT(WIRE_REQUEST_MAX);
	struct policy_result res;

	s->phase = ph;
	if (wait_state == SESSION_WAIT_POLICY)
		s->resume = s->state;
	session_enter_state(s, wait_state);
	memset(&res, 0, sizeof(res));
	res.failed = true;
	if (ph == ELEMTA_PHASE_AUTH) {
		/* All the room the request needs, up front: a strbuf that
		 * grows reallocates, which would leave a copy of the password
		 * in freed memory. */
		static const char room[SESSION_AUTH_REQUEST_ROOM];

		(void)strbuf_append(&sb, room, sizeof(room));
		strbuf_reset(&sb);
	}
	if (session_build_request(s, ph, &sb, rcpt, fd >= 0) < 0) {
		sasl_wipe_secret(&s->sasl);
		session_strbuf_wipe(&sb);
		if (fd >= 0)
			close(fd);
		str_copy(res.why, "request too large", sizeof(res.why));
		session_policy_done(s, &res);
		return;
	}
	/* The request holds the only copy of an AUTH password now. */
	sasl_wipe_secret(&s->sasl);
	if (s->ops->policy(s->io, &sb, fd, res.why, sizeof(res.why)) < 0) {
		session_strbuf_wipe(&sb);
		session_policy_done(s, &res);
	}
}

/* A decision in reply form. */
struct session_verdict {
	enum elemta_action action;
	int code;
	char enhanced[16];
	char text[512];
};

/* session_verdict_from - apply defaults and the fail mode to an answer. */
static void
session_verdict_from(struct session *s, const struct policy_result *res,
    struct session_verdict *v)
{
	char esc[SESSION_ESC];

	memset(v, 0, sizeof(*v));
	if (res->failed) {
		if (s->cfg->policyd.fail_mode == CONFIG_FAIL_ACCEPT) {
			log_warn("sid=%s policy service failed at %s (%s): "
			    "fail_mode accept, continuing", s->sid,
			    wire_phase_name(s->phase),
			    session_esc(esc, sizeof(esc), res->why));
			v->action = ELEMTA_CONTINUE;
			return;
		}
		log_warn("sid=%s policy service failed at %s (%s): "
		    "fail_mode tempfail", s->sid, wire_phase_name(s->phase),
		    session_esc(esc, sizeof(esc), res->why));
		v->action = ELEMTA_TEMPFAIL;
		v->code = 451;
		str_copy(v->enhanced, "4.3.5", sizeof(v->enhanced));
		str_copy(v->text, "Policy service unavailable, try again later",
		    sizeof(v->text));
		return;
	}
	v->action = res->reply.action;
	v->code = res->reply.code;
	str_copy(v->enhanced, res->reply.enhanced, sizeof(v->enhanced));
	str_copy(v->text, res->reply.text, sizeof(v->text));
	if (v->action == ELEMTA_REJECT) {
		if (v->code < 500 || v->code > 599)
			v->code = 550;
		if (v->enhanced[0] != '5')
			str_copy(v->enhanced, "5.7.1", sizeof(v->enhanced));
		if (v->text[0] == '\0')
			str_copy(v->text, "Rejected by policy", sizeof(v->text));
	} else if (v->action == ELEMTA_TEMPFAIL) {
		if (v->code < 400 || v->code > 499)
			v->code = 450;
		if (v->enhanced[0] != '4')
			str_copy(v->enhanced, "4.7.1", sizeof(v->enhanced));
		if (v->text[0] == '\0')
			str_copy(v->text, "Try again later", sizeof(v->text));
	}
}

/* session_verdict_refuses - a reject or tempfail. */
static bool
session_verdict_refuses(const struct session_verdict *v)
{
	return v->action == ELEMTA_REJECT || v->action == ELEMTA_TEMPFAIL;
}

/* session_refuse - answer a refusing verdict (logged); 421 closes. */
static void
session_refuse(struct session *s, const struct session_verdict *v,
    enum elemta_phase phase, const char *rcpt)
{
	session_log_reject(s, phase, v->code, v->enhanced, v->text, rcpt);
	session_reply_error(s, v->code, v->enhanced, "%s", v->text);
}

/* session_note_verdict - discard/quarantine apply to the whole message
 * (from CONNECT/HELO: to every message of the session); discard wins. */
static void
session_note_verdict(struct session *s, const struct session_verdict *v,
    bool whole_session)
{
	enum elemta_action *slot = whole_session ? &s->session_verdict :
	    &s->txn.verdict;
	char esc[SESSION_ESC];

	if (v->action != ELEMTA_DISCARD && v->action != ELEMTA_QUARANTINE)
		return;
	log_info("sid=%s %s at %s: %s", s->sid,
	    wire_action_name(v->action),
	    wire_phase_name(s->phase),
	    session_esc(esc, sizeof(esc), v->text));
	if (*slot != ELEMTA_DISCARD)
		*slot = v->action;
}

/*==== CONNECT ====*/

/* session_new - allocate; the greeting waits for session_start. */
struct session *
session_new(const struct config *cfg, const struct session_ops *ops,
    void *io, const struct session_peer *peer)
{
	static unsigned counter, pid;
	struct session *s = xcalloc(1, sizeof(*s));

	if (pid == 0)
		pid = (unsigned)getpid();
	counter++;
	snprintf(s->sid, sizeof(s->sid), "%06X%06X", pid & 0xFFFFFFu,
	    counter & 0xFFFFFFu);
	s->state = SESSION_CONNECT_POLICY;
	s->cfg = cfg;
	s->ops = ops;
	s->io = io;
	str_copy(s->client_addr, peer->client_address, sizeof(s->client_addr));
	str_copy(s->client_name, "unknown", sizeof(s->client_name));
	str_copy(s->reverse_client_name, "unknown",
	    sizeof(s->reverse_client_name));
	str_copy(s->server_addr, peer->server_address, sizeof(s->server_addr));
	s->client_port = peer->client_port;
	s->server_port = peer->server_port;
	s->mode = peer->mode;
	s->starttls_ok = peer->starttls;
	session_new_instance(s);
	return s;
}

/* session_local_user - see session.h. */
void
session_local_user(struct session *s, const char *user, unsigned long uid,
    long pid)
{
	if (s->mode != CONFIG_MODE_LOCAL)
		return;
	/* The kernel's word, not the client's: authenticated as the local
	 * user for the whole session (no AUTH, no STARTTLS to reset it). */
	s->authenticated = true;
	free(s->sasl.user);
	s->sasl.user = xstrdup(user);
	s->local_uid = uid;
	s->local_pid = pid;
}

/* session_start - log and ask for the CONNECT decision. */
void
session_start(struct session *s)
{
	char esc[SESSION_ESC];

	if (s->mode == CONFIG_MODE_LOCAL)
		log_info("sid=%s connect from local uid=%lu pid=%ld user=%s "
		    "mode=local", s->sid, s->local_uid, s->local_pid,
		    session_esc(esc, sizeof(esc), s->sasl.user));
	else
		log_info("sid=%s connect from unknown[%s]:%u to [%s]:%u mode=%s",
	    s->sid, s->client_addr, s->client_port, s->server_addr,
	    s->server_port, config_listen_mode_name(s->mode));
	session_ask(s, ELEMTA_PHASE_CONNECT, SESSION_CONNECT_POLICY, NULL, -1);
}

/* session_connect_proceed - greet, or refuse and close. */
static void
session_connect_proceed(struct session *s, const struct session_verdict *v)
{
	if (v->action == ELEMTA_REJECT) {
		/* RFC 5321 3.1: a refusing greeting is 554. */
		session_log_reject(s, ELEMTA_PHASE_CONNECT, 554, v->enhanced,
		    v->text, NULL);
		session_reply(s, "554 %s %s", v->enhanced, v->text);
		session_close(s);
		return;
	}
	if (v->action == ELEMTA_TEMPFAIL) {
		session_log_reject(s, ELEMTA_PHASE_CONNECT, 421, v->enhanced,
		    v->text, NULL);
		session_reply(s, "421 %s %s", v->enhanced, v->text);
		session_close(s);
		return;
	}
	session_note_verdict(s, v, true);
	session_enter_state(s, SESSION_GREETED);
	session_reply(s, "220 %s %s", s->cfg->server.hostname,
	    s->cfg->server.banner);
}

/*==== HELO / EHLO ====*/

/* session_helo_check - syntax, reset, then ask policyd. */
static void
session_helo_check(struct session *s, const struct command *cmd)
{
	struct command_error err;

	if (command_parse_helo(cmd->arg, cmd->id, &err) < 0) {
		session_reply_error(s, err.code, err.enhanced, "%s", err.text);
		return;
	}
	if (session_sync_violation(s, command_name(cmd->id)))
		return;
	session_txn_reset(s);
	free(s->helo);
	s->helo = xstrndup(cmd->arg, cmd->arg_len);
	s->esmtp = cmd->id == CMD_EHLO;
	session_enter_state(s, SESSION_GREETED);
	session_ask(s, cmd->id == CMD_EHLO ? ELEMTA_PHASE_EHLO :
	    ELEMTA_PHASE_HELO, SESSION_WAIT_POLICY, NULL, -1);
}

/* session_helo_proceed - 250 (the EHLO keyword list), or refuse. */
static void
session_helo_proceed(struct session *s, const struct session_verdict *v)
{
	const char *host = s->cfg->server.hostname;

	if (session_verdict_refuses(v)) {
		free(s->helo);
		s->helo = NULL;
		s->esmtp = false;
		session_enter_state(s, SESSION_GREETED);
		session_refuse(s, v, s->phase, NULL);
		return;
	}
	if (session_sync_violation(s, wire_phase_name(s->phase)))
		return;
	session_note_verdict(s, v, true);
	session_enter_state(s, SESSION_HELO_DONE);
	if (s->phase == ELEMTA_PHASE_HELO) {
		session_reply(s, "250 %s", host);
		return;
	}
	session_reply(s, "250-%s", host);
	session_reply(s, "250-PIPELINING");
	session_reply(s, "250-SIZE %" PRIu64, s->cfg->server.max_message_size);
	session_reply(s, "250-8BITMIME");
	if (session_starttls_offered(s))
		session_reply(s, "250-STARTTLS");
	if (session_auth_offered(s))
		session_reply(s, "250-AUTH PLAIN LOGIN");
	session_reply(s, "250-ENHANCEDSTATUSCODES");
	session_reply(s, "250-SMTPUTF8");
	session_reply(s, "250-DSN");
	session_reply(s, "250 HELP");
}

/*==== MAIL ====*/

/* session_no_storage - Postfix's answer when the queue's file system
 * is (nearly) full: 452 4.3.1, logged and counted as a refusal at phase
 * (sender: the MAIL address being refused, else the transaction's). */
static void
session_no_storage(struct session *s, enum elemta_phase phase,
    const char *sender)
{
	char e1[SESSION_ESC], e2[SESSION_ESC];

	smtpd_stats_refused(phase);
	log_warn("sid=%s reject: %s from unknown[%s]: 452 4.3.1 Insufficient "
	    "system storage; from=<%s> (spool %s: below spool.min_free, or "
	    "full)", s->sid, wire_phase_name(phase),
	    session_esc(e1, sizeof(e1), s->client_addr),
	    session_esc(e2, sizeof(e2), sender != NULL ? sender :
	    s->txn.sender), s->cfg->spool.path);
	session_reply_error(s, 452, "4.3.1", "Insufficient system storage");
}

/* session_mail_check - sequence, AUTH requirement, syntax, SIZE, free
 * space. */
static void
session_mail_check(struct session *s, const struct command *cmd)
{
	struct command_path path;
	struct command_error err;
	struct session_txn *t = &s->txn;

	if (s->state == SESSION_GREETED) {
		session_reply_error(s, 503, "5.5.1", "Error: send HELO/EHLO first");
		return;
	}
	if (s->state != SESSION_HELO_DONE) {
		session_reply_error(s, 503, "5.5.1", "Error: nested MAIL command");
		return;
	}
	if (s->mode == CONFIG_MODE_SUBMISSION && !s->authenticated) {
		session_reply_error(s, 530, "5.7.0",
		    "Error: authentication required");
		return;
	}
	if (command_parse_mail(cmd->arg, s->cfg->server.max_message_size,
	    &path, &err) < 0) {
		session_reply_error(s, err.code, err.enhanced, "%s", err.text);
		return;
	}
	if ((path.smtputf8 || path.body == BODY_8BITMIME ||
	    path.ret != DSN_RET_DEFAULT || path.envid[0] != '\0') &&
	    !s->esmtp) {
		session_reply_error(s, 555, "5.5.4",
		    "Error: parameters need EHLO");
		return;
	}
	/* spool.min_free, and room for the SIZE= the client declared. */
	if (!spool_space_ok(s->cfg->spool.path, s->cfg->spool.min_free,
	    path.size)) {
		session_no_storage(s, ELEMTA_PHASE_MAIL, path.address);
		return;
	}
	t->active = true;
	t->sender = xstrdup(path.address);
	t->declared_size = path.size;
	t->body = path.body;
	t->smtputf8 = path.smtputf8;
	t->ret = path.ret;
	memcpy(t->envid, path.envid, sizeof(t->envid));
	t->verdict = ELEMTA_CONTINUE;
	spool_queue_id_new(t->queue_id);
	session_ask(s, ELEMTA_PHASE_MAIL, SESSION_WAIT_POLICY, NULL, -1);
}

/* session_mail_proceed - 250 2.1.0, or refuse and forget the sender. */
static void
session_mail_proceed(struct session *s, const struct session_verdict *v)
{
	if (session_verdict_refuses(v)) {
		session_refuse(s, v, ELEMTA_PHASE_MAIL, NULL);
		if (s->state == SESSION_CLOSING)
			return;
		session_txn_reset(s);
		session_enter_state(s, SESSION_HELO_DONE);
		return;
	}
	session_note_verdict(s, v, false);
	session_enter_state(s, SESSION_MAIL_DONE);
	session_reply(s, "250 2.1.0 Ok");
}

/*==== RCPT ====*/

/* session_relay_denied - Postfix's reject_unauth_destination reply,
 * logged and counted like every refusal. */
static void
session_relay_denied(struct session *s, const char *rcpt)
{
	char text[COMMAND_PATH_MAX + 40];

	snprintf(text, sizeof(text), "<%s>: Relay access denied", rcpt);
	session_log_reject(s, ELEMTA_PHASE_RCPT, 554, "5.7.1", text, rcpt);
	session_reply_error(s, 554, "5.7.1", "%s", text);
}

/* session_rcpt_check - sequence, syntax, the recipient limit, relay
 * control (smtpd/relay.h). */
static void
session_rcpt_check(struct session *s, const struct command *cmd)
{
	struct command_path path;
	struct command_error err;
	struct session_txn *t = &s->txn;

	if (s->state != SESSION_MAIL_DONE && s->state != SESSION_RCPT_DONE) {
		session_reply_error(s, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	t->rcpt_tried = true;
	if (command_parse_rcpt(cmd->arg, t->smtputf8, &path, &err) < 0) {
		session_reply_error(s, err.code, err.enhanced, "%s", err.text);
		return;
	}
	if ((path.notify != 0 || path.orcpt[0] != '\0') && !s->esmtp) {
		session_reply_error(s, 555, "5.5.4",
		    "Error: parameters need EHLO");
		return;
	}
	if (t->nrcpt >= s->cfg->server.max_recipients) {
		session_rcpt_too_many(s, "Error: too many recipients");
		return;
	}
	/* Relay control decides before policyd hears of the recipient: no
	 * plugin verdict can turn this refusal into an accept. */
	if (!relay_allowed(relay_check(s->cfg, s->client_addr,
	    s->authenticated, &path))) {
		session_relay_denied(s, path.address);
		return;
	}
	t->pending_rcpt = xstrdup(path.address);
	t->pending_notify = path.notify;
	free(t->pending_orcpt);
	t->pending_orcpt = path.orcpt[0] != '\0' ? xstrdup(path.orcpt) :
	    NULL;
	session_ask(s, ELEMTA_PHASE_RCPT, SESSION_WAIT_POLICY, t->pending_rcpt,
	    -1);
}

/* session_txn_add_rcpt - append an accepted recipient (rcpt and orcpt
 * taken over). */
static void
session_txn_add_rcpt(struct session_txn *t, char *rcpt, unsigned notify,
    char *orcpt)
{
	if (t->nrcpt == t->rcpt_cap) {
		t->rcpt_cap = t->rcpt_cap ? t->rcpt_cap * 2 : 4;
		t->rcpts = xrealloc(t->rcpts, t->rcpt_cap * sizeof(*t->rcpts));
		t->notify = xrealloc(t->notify,
		    t->rcpt_cap * sizeof(*t->notify));
		t->orcpt = xrealloc(t->orcpt, t->rcpt_cap * sizeof(*t->orcpt));
	}
	t->notify[t->nrcpt] = notify;
	t->orcpt[t->nrcpt] = orcpt;
	t->rcpts[t->nrcpt++] = rcpt;
}

/* session_rcpt_proceed - add the recipient (250 2.1.5), or refuse. */
static void
session_rcpt_proceed(struct session *s, const struct session_verdict *v)
{
	struct session_txn *t = &s->txn;
	char *rcpt = t->pending_rcpt;

	t->pending_rcpt = NULL;
	if (session_verdict_refuses(v)) {
		session_enter_state(s, s->resume);
		if (v->code == 452 && strcmp(v->enhanced, "4.5.3") == 0) {
			/* A policy's recipient limit: the same as ours. */
			session_log_reject(s, ELEMTA_PHASE_RCPT, v->code,
			    v->enhanced, v->text, rcpt);
			session_rcpt_too_many(s, v->text);
		} else
			session_refuse(s, v, ELEMTA_PHASE_RCPT, rcpt);
		free(rcpt);
		return;
	}
	session_note_verdict(s, v, false);
	session_txn_add_rcpt(t, rcpt, t->pending_notify, t->pending_orcpt);
	t->pending_orcpt = NULL;
	session_enter_state(s, SESSION_RCPT_DONE);
	session_reply(s, "250 2.1.5 Ok");
}

/*==== DATA ====*/

/* session_data_check - sequence, synchronisation, ask policyd. */
static void
session_data_check(struct session *s, const struct command *cmd)
{
	if (cmd->arg_len > 0) {
		session_reply_error(s, 501, "5.5.4", "Syntax: DATA");
		return;
	}
	if (s->state != SESSION_RCPT_DONE) {
		if (s->state == SESSION_MAIL_DONE && s->txn.rcpt_tried)
			session_reply_error(s, 554, "5.5.1",
			    "Error: no valid recipients");
		else if (s->state == SESSION_MAIL_DONE)
			session_reply_error(s, 503, "5.5.1",
			    "Error: need RCPT command");
		else
			session_reply_error(s, 503, "5.5.1",
			    "Error: need MAIL command");
		return;
	}
	if (session_sync_violation(s, command_name(CMD_DATA)))
		return;
	session_ask(s, ELEMTA_PHASE_DATA, SESSION_WAIT_POLICY, NULL, -1);
}

/* session_with_protocol - the Received: header's "with" name: RFC 3848
 * (ESMTPS under TLS, ESMTPA authenticated, ESMTPSA both) and RFC 6531
 * (UTF8SMTP...) for a transaction that declared SMTPUTF8. */
static const char *
session_with_protocol(const struct session *s)
{
	static const char *const esmtp[4] = {
		"ESMTP", "ESMTPA", "ESMTPS", "ESMTPSA" };
	static const char *const utf8[4] = {
		"UTF8SMTP", "UTF8SMTPA", "UTF8SMTPS", "UTF8SMTPSA" };
	int i = (s->tls ? 2 : 0) + (s->authenticated ? 1 : 0);

	if (s->txn.smtputf8)
		return utf8[i];
	return s->esmtp ? esmtp[i] : "SMTP";
}

/* session_received_header - the trace header of RFC 5321 4.4. */
static int
session_received_header(struct session *s, struct error *err)
{
	char date[64], buf[2048], tls[SESSION_TLS_PROTOCOL_MAX +
	    SESSION_TLS_CIPHER_MAX + 40];
	const char *proto = session_with_protocol(s);
	struct tm tm;
	time_t now = time(NULL);
	int n;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	tls[0] = '\0';
	if (s->tls)
		snprintf(tls, sizeof(tls), "\t(using %s with cipher %s)\r\n",
		    s->tls_protocol, s->tls_cipher);
	if (s->mode == CONFIG_MODE_LOCAL)
		/* As Postfix's pickup: no client, the submitting uid (no
		 * "for <rcpt>": it could show a Bcc recipient). */
		n = snprintf(buf, sizeof(buf),
		    "Received: by %s (Elemta, from userid %lu)\r\n"
		    "\tid %s; %s\r\n",
		    s->cfg->server.hostname, s->local_uid, s->txn.queue_id, date);
	else if (s->txn.nrcpt == 1)
		n = snprintf(buf, sizeof(buf),
		    "Received: from %s (%s [%s])\r\n%s"
		    "\tby %s (Elemta) with %s id %s\r\n"
		    "\tfor <%s>; %s\r\n",
		    s->helo, s->client_name, s->client_addr, tls, s->cfg->server.hostname,
		    proto, s->txn.queue_id, s->txn.rcpts[0], date);
	else
		n = snprintf(buf, sizeof(buf),
		    "Received: from %s (%s [%s])\r\n%s"
		    "\tby %s (Elemta) with %s id %s;\r\n"
		    "\t%s\r\n",
		    s->helo, s->client_name, s->client_addr, tls, s->cfg->server.hostname,
		    proto, s->txn.queue_id, date);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return error_set(err, "Received: header too long");
	return spool_msg_write(s->spool, buf, (size_t)n, err);
}

/* session_headers_add - append src to *dst (allocated on first use);
 * what does not fit the per-message bounds is logged and dropped. */
static void
session_headers_add(struct session *s, struct wire_headers **dst,
    const struct wire_headers *src)
{
	unsigned dropped;

	if (src == NULL || src->count == 0)
		return;
	if (*dst == NULL) {
		*dst = xmalloc(sizeof(**dst));
		(*dst)->count = 0;
		(*dst)->len = 0;
	}
	dropped = wire_headers_append(*dst, src);
	if (dropped > 0)
		log_warn("sid=%s %u prepended header(s) dropped: a message "
		    "takes %d in %d bytes", s->sid, dropped, WIRE_HEADERS_MAX,
		    WIRE_HEADERS_BYTES_MAX);
}

/* session_headers_collect - keep the PREPEND headers of an accepting
 * answer: CONNECT, HELO/EHLO and AUTH ones for the session (a new HELO
 * replaces the last one's), the others for the transaction. */
static void
session_headers_collect(struct session *s, const struct policy_result *res,
    bool accepted)
{
	switch (s->phase) {
	case ELEMTA_PHASE_EHLO:
	case ELEMTA_PHASE_HELO:
		if (!accepted)
			return;
		if (s->hdrs != NULL) {
			s->hdrs->count = s->hdrs_connect_count;
			s->hdrs->len = s->hdrs_connect_len;
		}
		/* fall through */
	case ELEMTA_PHASE_CONNECT:
	case ELEMTA_PHASE_AUTH:
		if (!accepted)
			return;
		session_headers_add(s, &s->hdrs, res->headers);
		if (s->phase == ELEMTA_PHASE_CONNECT && s->hdrs != NULL) {
			s->hdrs_connect_count = s->hdrs->count;
			s->hdrs_connect_len = s->hdrs->len;
		}
		return;
	default:
		if (accepted)
			session_headers_add(s, &s->txn.hdrs, res->headers);
		return;
	}
}

/* session_prepend_headers - the headers policyd prepended so far, the
 * session's first, at the top of the spool file (above Received:); the
 * transaction's list becomes the whole set, so end of data can add its
 * own below them (session_eom_edits). */
static int
session_prepend_headers(struct session *s, struct error *err)
{
	struct session_txn *t = &s->txn;
	struct wire_headers *own = t->hdrs;

	if (s->hdrs == NULL && own == NULL)
		return 0;
	t->hdrs = NULL;
	session_headers_add(s, &t->hdrs, s->hdrs);
	session_headers_add(s, &t->hdrs, own);
	free(own);
	if (t->hdrs == NULL)
		return 0;
	t->hdrs_written = t->hdrs->len;
	return spool_msg_write(s->spool, t->hdrs->buf, t->hdrs->len, err);
}

/* session_eom_edits - every edit end of data brings, in one list for
 * spool_msg_apply_edits: the headers its answer prepended, put in below
 * the earlier ones (above Received:, at field index n: those are one
 * line each), then the milters' edits in order, an insert at or below n
 * moved down by the prepended ones (the milters saw the message
 * without them).  -1 when the milters' do not all fit after the
 * prepended ones (never a list cut short). */
static int
session_eom_edits(struct session *s, const struct msg_edits *milters,
    struct msg_edits *out)
{
	struct session_txn *t = &s->txn;
	uint32_t n = 0, k = 0;
	size_t pos = 0, len;
	const char *line;

	while (t->hdrs != NULL && pos < t->hdrs_written &&
	    wire_headers_next(t->hdrs, &pos, &line, &len))
		n++;
	while (t->hdrs != NULL && wire_headers_next(t->hdrs, &pos, &line,
	    &len)) {
		const char *colon = memchr(line, ':', len);
		char *name, *value;

		if (colon == NULL)
			continue;   /* wire_headers_add_line checked them */
		name = xstrndup(line, (size_t)(colon - line));
		value = xstrndup(colon + 1, len - (size_t)(colon - line) - 1);
		if (msg_edits_header(out, MSG_EDIT_HEADER_INSERT, n + k, name,
		    value, true) == 0)
			k++;
		free(name);
		free(value);
	}
	return milters == NULL ? 0 : msg_edits_append(out, milters, n, k);
}

/* session_data_proceed - open the spool file, 354. */
static void
session_data_proceed(struct session *s, const struct session_verdict *v)
{
	struct error err;
	int rc;

	if (session_verdict_refuses(v)) {
		session_enter_state(s, s->resume);
		session_refuse(s, v, ELEMTA_PHASE_DATA, NULL);
		return;
	}
	if (session_sync_violation(s, command_name(CMD_DATA)))
		return;
	session_note_verdict(s, v, false);
	s->spool = xcalloc(1, sizeof(*s->spool));
	if ((rc = spool_msg_open(s->spool, s->cfg->spool.path,
	    s->txn.queue_id, &err)) < 0 ||
	    (rc = session_prepend_headers(s, &err)) < 0 ||
	    (rc = session_received_header(s, &err)) < 0) {
		log_err("sid=%s spool: %s", s->sid, err.text);
		spool_msg_abort(s->spool);
		free(s->spool);
		s->spool = NULL;
		session_enter_state(s, s->resume);
		if (rc == SPOOL_NO_SPACE)
			session_no_storage(s, ELEMTA_PHASE_DATA, NULL);
		else
			session_reply_error(s, 451, "4.3.0",
			    "Error: queue file write error");
		return;
	}
	data_machine_init(&s->dm);
	s->oversize = false;
	s->data_in = 0;
	s->data_start_ms = session_now_ms();
	session_enter_state(s, SESSION_DATA);
	session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/* session_message_refused - end of data without asking policyd. */
static void
session_message_refused(struct session *s, int code, const char *enh,
    const char *text)
{
	session_log_reject(s, ELEMTA_PHASE_EOM, code, enh, text,
	    s->txn.nrcpt == 1 ? s->txn.rcpts[0] : NULL);
	session_txn_reset(s);
	session_enter_state(s, SESSION_HELO_DONE);
	session_reply_error(s, code, enh, "%s", text);
}

/* session_spool_refused - end of data refused because the spool file
 * failed (rc: SPOOL_NO_SPACE or -1). */
static void
session_spool_refused(struct session *s, int rc)
{
	if (rc == SPOOL_NO_SPACE)
		session_message_refused(s, 452, "4.3.1",
		    "Insufficient system storage");
	else
		session_message_refused(s, 451, "4.3.0",
		    "Error: queue file write error");
}

/* session_eom - the end of data: content checks, then ask policyd with
 * a read-only descriptor of the spooled message. */
static void
session_eom(struct session *s)
{
	struct error err;
	int fd, rc = 0;

	if (s->dm.bare_newline &&
	    s->cfg->server.bare_newline == CONFIG_BARE_REJECT) {
		session_message_refused(s, 550, "5.5.2",
		    "Error: message contains bare CR or LF (see RFC 5321 2.3.8)");
		return;
	}
	if (s->dm.line_too_long) {
		session_message_refused(s, 550, "5.5.2",
		    "Error: message line longer than 1000 octets "
		    "(see RFC 5321 4.5.3.1.6)");
		return;
	}
	if (s->oversize) {
		session_message_refused(s, 552, "5.3.4",
		    "Error: message size exceeds fixed limit");
		return;
	}
	if (s->spool == NULL || (rc = spool_msg_flush(s->spool, &err)) < 0 ||
	    (fd = spool_msg_reader(s->spool, &err)) < 0) {
		if (s->spool != NULL)
			log_err("sid=%s spool: %s", s->sid, err.text);
		session_spool_refused(s, s->spool != NULL ? rc : -1);
		return;
	}
	s->message_size = s->spool->size;
	session_ask(s, ELEMTA_PHASE_EOM, SESSION_EOM_POLICY, NULL, fd);
}

/* session_edit_addr - a milter's address without its angle brackets. */
static char *
session_edit_addr(const char *a)
{
	size_t n = strlen(a);

	if (n >= 2 && a[0] == '<' && a[n - 1] == '>')
		return xstrndup(a + 1, n - 2);
	return xstrdup(a);
}

/* session_edit_mailbox - a milter's new sender or added recipient as
 * the mailbox MAIL or RCPT would have taken (the same syntax check, the
 * route dropped; "" the null sender); NULL when it is not one: policyd's
 * reply is parsed as defensively as the client's commands. */
static char *
session_edit_mailbox(const struct session *s, const struct msg_edit *it)
{
	struct command_error cerr;
	char *a = session_edit_addr(it->value), out[COMMAND_PATH_MAX + 1];
	bool non_ascii, rcpt = it->op == MSG_EDIT_RCPT_ADD;
	int rc;

	if (a[0] == '\0' && !rcpt)
		return a;
	rc = command_parse_address(a, strlen(a), rcpt, s->txn.smtputf8, out,
	    &non_ascii, &cerr);
	free(a);
	return rc < 0 ? NULL : xstrdup(out);
}

/* session_apply_edits - the END-OF-MESSAGE answer's edits: the
 * envelope's here, the content's through spool_msg_apply_edits (all or
 * none).  -1 when the message could not be rewritten (answered). */
static int
session_apply_edits(struct session *s, const struct msg_edits *e)
{
	struct session_txn *t = &s->txn;
	struct error err;
	char esc[SESSION_ESC];
	int rc;

	/* Every address is checked before anything changes: all or none. */
	for (size_t i = 0; i < e->count; i++) {
		const struct msg_edit *it = &e->items[i];
		char *a;

		if (it->op != MSG_EDIT_SENDER && it->op != MSG_EDIT_RCPT_ADD)
			continue;
		if ((a = session_edit_mailbox(s, it)) == NULL) {
			log_err("sid=%s bad address in a message edit: <%s>",
			    s->sid, session_esc(esc, sizeof(esc), it->value));
			session_message_refused(s, 451, "4.3.0",
			    "Error: bad message edit");
			return -1;
		}
		free(a);
	}
	if (msg_edits_changes_content(e) &&
	    (rc = spool_msg_apply_edits(s->spool, e, &err)) < 0) {
		log_err("sid=%s spool: applying the message's edits: %s",
		    s->sid, err.text);
		session_spool_refused(s, rc);
		return -1;
	}
	if (msg_edits_changes_content(e))
		s->message_size = s->spool->size;
	for (size_t i = 0; i < e->count; i++) {
		const struct msg_edit *it = &e->items[i];
		char *a;

		switch (it->op) {
		case MSG_EDIT_SENDER:
			free(t->sender);
			t->sender = session_edit_mailbox(s, it);
			log_info("sid=%s sender changed to <%s>", s->sid,
			    session_esc(esc, sizeof(esc), t->sender));
			break;
		case MSG_EDIT_RCPT_ADD:
			session_txn_add_rcpt(t, session_edit_mailbox(s, it), 0,
			    NULL);
			log_info("sid=%s recipient <%s> added", s->sid,
			    session_esc(esc, sizeof(esc), it->value));
			break;
		case MSG_EDIT_RCPT_DEL:
			a = session_edit_addr(it->value);
			for (size_t k = 0; k < t->nrcpt; k++) {
				if (strcasecmp(t->rcpts[k], a) != 0)
					continue;
				free(t->rcpts[k]);
				free(t->orcpt[k]);
				memmove(&t->rcpts[k], &t->rcpts[k + 1],
				    (t->nrcpt - k - 1) * sizeof(*t->rcpts));
				memmove(&t->orcpt[k], &t->orcpt[k + 1],
				    (t->nrcpt - k - 1) * sizeof(*t->orcpt));
				memmove(&t->notify[k], &t->notify[k + 1],
				    (t->nrcpt - k - 1) * sizeof(*t->notify));
				t->nrcpt--;
				k--;
			}
			log_info("sid=%s recipient <%s> removed", s->sid,
			    session_esc(esc, sizeof(esc), a));
			free(a);
			break;
		default:
			break;
		}
	}
	return 0;
}

/* session_eom_proceed - store (queue/ or quarantine/), drop, or refuse. */
static void
session_eom_proceed(struct session *s, const struct session_verdict *v)
{
	struct session_txn *t = &s->txn;
	enum elemta_action verdict = s->session_verdict;
	struct spool_envelope env;
	int rc;
	char esc[SESSION_ESC], qid[SPOOL_ID_LEN + 1];

	if (session_verdict_refuses(v)) {
		session_log_reject(s, ELEMTA_PHASE_EOM, v->code, v->enhanced,
		    v->text, t->nrcpt == 1 ? t->rcpts[0] : NULL);
		session_txn_reset(s);
		session_enter_state(s, SESSION_HELO_DONE);
		session_reply_error(s, v->code, v->enhanced, "%s", v->text);
		return;
	}
	session_note_verdict(s, v, false);
	if (verdict != ELEMTA_DISCARD && t->verdict != ELEMTA_CONTINUE)
		verdict = t->verdict;
	if (verdict != ELEMTA_DISCARD) {
		struct msg_edits all = { 0 };

		if (session_eom_edits(s, t->edits, &all) < 0) {
			msg_edits_free(&all);
			log_err("sid=%s the message's edits are over %d with "
			    "the prepended headers", s->sid, MSG_EDITS_MAX);
			session_message_refused(s, 451, "4.3.0",
			    "Error: too many message edits");
			return;
		}
		rc = msg_edits_empty(&all) ? 0 : session_apply_edits(s, &all);
		msg_edits_free(&all);
		if (rc < 0)
			return;
		if (t->nrcpt == 0)
			verdict = ELEMTA_DISCARD;   /* every recipient removed */
	}
	str_copy(qid, t->queue_id, sizeof(qid));
	session_esc(esc, sizeof(esc), t->sender);
	if (verdict == ELEMTA_DISCARD) {
		log_info("sid=%s discarded %s from=<%s> nrcpt=%zu size=%" PRIu64,
		    s->sid, qid, esc, t->nrcpt, s->message_size);
		session_txn_reset(s);
		session_enter_state(s, SESSION_HELO_DONE);
		smtpd_stats_add(SMTPD_STAT_MESSAGES_DISCARDED, 1);
		session_reply(s, "250 2.0.0 Ok: queued as %s", qid);
		return;
	}
	memset(&env, 0, sizeof(env));
	env.received = time(NULL);
	env.client_address = s->client_addr;
	env.client_port = s->client_port;
	env.client_name = s->client_name;
	env.helo = s->helo;
	env.protocol = s->esmtp ? "ESMTP" : "SMTP";
	if (s->tls) {
		snprintf(s->tls_desc, sizeof(s->tls_desc), "%s %s",
		    s->tls_protocol, s->tls_cipher);
		env.tls = s->tls_desc;
	} else {
		env.tls = "none";
	}
	env.auth_user = s->authenticated ? s->sasl.user : "";
	env.sender = t->sender;
	env.recipients = t->rcpts;
	env.recipient_count = t->nrcpt;
	env.ret = t->ret;
	env.envid = t->envid;
	env.notify = t->notify;
	env.orcpt = t->orcpt;
	t->verdict = verdict;     /* what session_commit_done reports */
	session_enter_state(s, SESSION_EOM_COMMIT);
	s->ops->commit(s->io, s->spool, &env,
	    verdict == ELEMTA_QUARANTINE ? SPOOL_QUARANTINE : SPOOL_QUEUE);
	free(s->spool);
	s->spool = NULL;
}

/* session_commit_done - 250 once the message is durable, else 451
 * (452 4.3.1 when the disk was full). */
void
session_commit_done(struct session *s, int rc, const char *errtext)
{
	struct session_txn *t = &s->txn;
	char esc[SESSION_ESC];

	if (s->state != SESSION_EOM_COMMIT)
		return;
	if (rc < 0) {
		log_err("sid=%s spool: %s", s->sid, errtext);
		smtpd_stats_add(SMTPD_STAT_MESSAGES_REFUSED, 1);
		session_txn_reset(s);
		session_enter_state(s, SESSION_HELO_DONE);
		if (rc == SPOOL_NO_SPACE)
			session_reply_error(s, 452, "4.3.1",
			    "Insufficient system storage");
		else
			session_reply_error(s, 451, "4.3.0",
			    "Error: queue file write error");
		return;
	}
	log_info("sid=%s %s %s from=<%s> nrcpt=%zu size=%" PRIu64, s->sid,
	    t->verdict == ELEMTA_QUARANTINE ? "quarantined as" : "queued as",
	    t->queue_id, session_esc(esc, sizeof(esc), t->sender), t->nrcpt,
	    s->message_size);
	smtpd_stats_add(t->verdict == ELEMTA_QUARANTINE ?
	    SMTPD_STAT_MESSAGES_QUARANTINED : SMTPD_STAT_MESSAGES_QUEUED, 1);
	session_reply(s, "250 2.0.0 Ok: queued as %s", t->queue_id);
	session_txn_reset(s);
	session_enter_state(s, SESSION_HELO_DONE);
}

/* session_data_rate_deadline_ms - when the DATA in progress falls below
 * server.min_data_rate, 0 when there is no such limit.  Postfix's credit
 * (smtpd_min_data_rate): the grace, plus 1/rate seconds for every byte
 * received, so a client is cut off only when its average since DATA,
 * the grace forgiven, is below the rate; a trickle at a fraction f of the
 * rate lasts grace / (1 - f) instead of server.data_timeout.  The read
 * timer holds this deadline too (session_read_timeout_ms), so a client
 * that sends nothing more meets it without another byte. */
static uint64_t
session_data_rate_deadline_ms(const struct session *s)
{
	uint64_t rate = s->cfg->server.min_data_rate;

	if (rate == 0 || s->state != SESSION_DATA)
		return 0;
	return s->data_start_ms + s->cfg->server.min_data_rate_grace_ms +
	    s->data_in * 1000 / rate;
}

/* session_data_too_slow - 421 4.4.2 and close: the message is dropped
 * (the client retries it, faster or from a better link). */
static void
session_data_too_slow(struct session *s)
{
	char esc[SESSION_ESC];

	log_info("sid=%s data rate too low (%" PRIu64 " bytes in %" PRIu64
	    " ms) from unknown[%s]", s->sid, s->data_in,
	    session_now_ms() - s->data_start_ms,
	    session_esc(esc, sizeof(esc), s->client_addr));
	session_txn_reset(s);
	session_reply(s, "421 4.4.2 %s Error: data rate too low",
	    s->cfg->server.hostname);
	session_close(s);
}

/* session_data_input - feed DATA bytes; stops right after the end. */
static size_t
session_data_input(struct session *s, const char *data, size_t len)
{
	char out[DATA_OUT_MAX(SESSION_DATA_CHUNK)];
	size_t done = 0;

	while (done < len) {
		size_t chunk = len - done, olen, used;
		struct error err;
		int ended;

		if (chunk > SESSION_DATA_CHUNK)
			chunk = SESSION_DATA_CHUNK;
		ended = data_machine_feed(&s->dm, data + done, chunk, out, &olen,
		    &used);
		done += used;
		if (!s->oversize && s->dm.size > s->cfg->server.max_message_size) {
			/* Keep reading to the end (the client would not
			 * understand an early reply) but store nothing more:
			 * free the disk now. */
			s->oversize = true;
			if (s->spool != NULL)
				spool_msg_abort(s->spool);
		}
		if (!s->oversize && s->spool != NULL && s->spool->open &&
		    olen > 0 &&
		    spool_msg_write(s->spool, out, olen, &err) < 0) {
			/* The message is lost (answered at the end of data):
			 * log it once and give the space back now. */
			log_err("sid=%s spool: %s", s->sid, err.text);
			spool_msg_abort(s->spool);
		}
		if (ended) {
			s->data_in += done;
			session_eom(s);
			return done;
		}
	}
	s->data_in += done;
	if (session_data_rate_deadline_ms(s) != 0 &&
	    session_now_ms() >= session_data_rate_deadline_ms(s))
		session_data_too_slow(s);
	return done;
}

/*==== STARTTLS (RFC 3207) ====*/

/* session_forget_client - RFC 3207 4.2: after STARTTLS the server
 * discards everything it learnt from the client: HELO/EHLO, the
 * transaction, an authentication. */
static void
session_forget_client(struct session *s)
{
	session_txn_reset(s);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = false;
	session_auth_clear(s, true);
}

/* session_starttls_check - 220, forget, hand over to the transport. */
static void
session_starttls_check(struct session *s, const struct command *cmd)
{
	if (s->tls) {
		session_reply_error(s, 503, "5.5.1", "Error: TLS already active");
		return;
	}
	if (!session_starttls_offered(s)) {
		session_reply_error(s, 502, "5.5.1",
		    "Error: command not implemented");
		return;
	}
	if (cmd->arg_len > 0) {
		session_reply_error(s, 501, "5.5.4", "Syntax: STARTTLS");
		return;
	}
	if (s->state == SESSION_MAIL_DONE || s->state == SESSION_RCPT_DONE) {
		session_reply_error(s, 503, "5.5.1",
		    "Error: MAIL transaction in progress");
		return;
	}
	session_reply(s, "220 2.0.0 Ready to start TLS");
	session_forget_client(s);
	/* From here session_feed consumes (discards) whatever it is given. */
	session_enter_state(s, SESSION_STARTTLS);
	s->ops->starttls(s->io);
}

/* session_tls_started - see session.h. */
void
session_tls_started(struct session *s, const char *protocol,
    const char *cipher)
{
	char e1[SESSION_ESC], e2[SESSION_ESC], e3[SESSION_ESC];

	s->tls = true;
	str_copy(s->tls_protocol, protocol, sizeof(s->tls_protocol));
	str_copy(s->tls_cipher, cipher, sizeof(s->tls_cipher));
	log_info("sid=%s TLS connection established from unknown[%s]: %s "
	    "with cipher %s", s->sid,
	    session_esc(e1, sizeof(e1), s->client_addr),
	    session_esc(e2, sizeof(e2), s->tls_protocol),
	    session_esc(e3, sizeof(e3), s->tls_cipher));
	if (s->state == SESSION_STARTTLS)
		session_enter_state(s, SESSION_GREETED);
}

/* session_tls_failed - see session.h. */
void
session_tls_failed(struct session *s, const char *why)
{
	char e1[SESSION_ESC], e2[SESSION_ESC];

	log_info("sid=%s TLS handshake failed with unknown[%s]:%u: %s",
	    s->sid, session_esc(e1, sizeof(e1), s->client_addr),
	    s->client_port, session_esc(e2, sizeof(e2), why));
	session_close(s);
}

/*==== AUTH (RFC 4954) ====*/

/* session_auth_clear - end an exchange: its identity and secrets go;
 * with all (STARTTLS) an established authentication goes too. */
static void
session_auth_clear(struct session *s, bool all)
{
	if (all)
		s->authenticated = false;
	sasl_clear(&s->sasl, s->authenticated);
}

/* session_auth_fail - end the exchange with a refusal (counted toward
 * max_errors like every failed AUTH); why goes to the log. */
static void
session_auth_fail(struct session *s, int code, const char *enh,
    const char *text, const char *why)
{
	char e1[SESSION_ESC], e2[SESSION_ESC], e3[SESSION_ESC];

	log_info("sid=%s warning: unknown[%s]: SASL %s authentication failed"
	    " for <%s>: %s", s->sid,
	    session_esc(e1, sizeof(e1), s->client_addr),
	    s->sasl.method != NULL ? s->sasl.method : "-",
	    session_esc(e2, sizeof(e2), s->sasl.user),
	    session_esc(e3, sizeof(e3), why));
	session_auth_clear(s, false);
	session_enter_state(s, session_ready_state(s));
	session_reply_error(s, code, enh, "%s", text);
}

/* session_auth_next - carry out what an exchange step asks for: a 334 and
 * wait in SESSION_AUTH, a refusal, or the policy request. */
static void
session_auth_next(struct session *s, const struct sasl_outcome *out)
{
	switch (out->next) {
	case SASL_NEXT_CHALLENGE:
		session_enter_state(s, SESSION_AUTH);
		session_reply(s, "%s", out->line);
		break;
	case SASL_NEXT_REFUSE:
		if (out->why == NULL)
			session_reply_error(s, out->code, out->enhanced, "%s",
			    out->text);
		else
			session_auth_fail(s, out->code, out->enhanced,
			    out->text, out->why);
		break;
	case SASL_NEXT_ASK:
		session_enter_state(s, session_ready_state(s));
		session_ask(s, ELEMTA_PHASE_AUTH, SESSION_WAIT_POLICY, NULL, -1);
		break;
	}
}

/* session_auth_response - one client line after a 334. */
static void
session_auth_response(struct session *s, const char *line, size_t len)
{
	struct sasl_outcome out;

	sasl_response(&s->sasl, line, len, &out);
	session_auth_next(s, &out);
}

/* session_auth_check - sequence and TLS; then the exchange starts. */
static void
session_auth_check(struct session *s, const struct command *cmd)
{
	struct sasl_outcome out;

	if (!session_auth_enabled(s)) {
		session_reply_error(s, 503, "5.5.1",
		    "Error: authentication not enabled");
		return;
	}
	if (s->state == SESSION_GREETED) {
		session_reply_error(s, 503, "5.5.1",
		    "Error: send HELO/EHLO first");
		return;
	}
	if (s->authenticated) {
		session_reply_error(s, 503, "5.5.1",
		    "Error: already authenticated");
		return;
	}
	if (s->state != SESSION_HELO_DONE) {
		session_reply_error(s, 503, "5.5.1",
		    "Error: MAIL transaction in progress");
		return;
	}
	if (!s->tls && s->cfg->auth.require_tls) {
		session_reply_error(s, 538, "5.7.11", "Encryption required "
		    "for requested authentication mechanism");
		return;
	}
	sasl_start(&s->sasl, cmd->arg, cmd->arg_len, &out);
	session_auth_next(s, &out);
}

/* session_auth_proceed - policyd's verdict on the credentials. */
static void
session_auth_proceed(struct session *s, const struct policy_result *res)
{
	struct session_verdict v;
	char e1[SESSION_ESC], e2[SESSION_ESC], why[600];

	session_enter_state(s, session_ready_state(s));
	if (res->failed) {
		/* Never authenticated without a verdict, whatever
		 * policyd.fail_mode says. */
		snprintf(why, sizeof(why), "policy service failed (%s)",
		    res->why);
		session_auth_fail(s, 454, "4.7.0",
		    "Temporary authentication failure", why);
		return;
	}
	session_verdict_from(s, res, &v);
	if (session_verdict_refuses(&v)) {
		snprintf(why, sizeof(why), "%d %s %s", v.code, v.enhanced,
		    v.text);
		session_auth_fail(s, v.code, v.enhanced, v.text, why);
		return;
	}
	if (!res->action_ok) {
		session_auth_fail(s, 454, "4.7.0",
		    "Temporary authentication failure",
		    "the policy service did not answer OK");
		return;
	}
	s->authenticated = true;
	session_auth_clear(s, false);     /* the exchange; keeps the identity */
	log_info("sid=%s client=unknown[%s], sasl_method=%s, "
	    "sasl_username=%s", s->sid,
	    session_esc(e1, sizeof(e1), s->client_addr), s->sasl.method,
	    session_esc(e2, sizeof(e2), s->sasl.user));
	session_reply(s, "235 2.7.0 Authentication successful");
}

/*==== Other commands ====*/

/* session_rset - forget the transaction. */
static void
session_rset(struct session *s, const struct command *cmd)
{
	if (cmd->arg_len > 0) {
		session_reply_error(s, 501, "5.5.4", "Syntax: RSET");
		return;
	}
	session_txn_reset(s);
	session_enter_state(s, session_ready_state(s));
	session_reply(s, "250 2.0.0 Ok");
}

/* session_command - one complete command line (without CRLF). */
static void
session_command(struct session *s, const char *line, size_t len)
{
	struct command cmd;
	struct command_error err;
	char esc[SESSION_ESC], esc2[SESSION_ESC];

	if (command_check_chars(line, len, &err) < 0) {
		session_reply_error(s, err.code, err.enhanced, "%s", err.text);
		return;
	}
	command_parse(line, &cmd);
	s->ncommands++;
	s->counts[cmd.id]++;
	s->last_cmd = cmd.id;
	if (len + 2 > COMMAND_LINE_MAX && cmd.id != CMD_MAIL &&
	    cmd.id != CMD_RCPT && cmd.id != CMD_AUTH) {
		session_reply_error(s, 500, "5.5.2", "Error: line too long");
		return;
	}
	switch (cmd.id) {
	case CMD_HELO:
	case CMD_EHLO:
		session_helo_check(s, &cmd);
		break;
	case CMD_MAIL:
		session_mail_check(s, &cmd);
		break;
	case CMD_RCPT:
		session_rcpt_check(s, &cmd);
		break;
	case CMD_DATA:
		session_data_check(s, &cmd);
		break;
	case CMD_RSET:
		session_rset(s, &cmd);
		break;
	case CMD_NOOP:
		session_reply(s, "250 2.0.0 Ok");
		break;
	case CMD_QUIT:
		session_reply(s, "221 2.0.0 Bye");
		session_close(s);
		break;
	case CMD_HELP:
		session_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA "
		    "RSET NOOP QUIT HELP VRFY");
		break;
	case CMD_VRFY:
		if (cmd.arg_len == 0)
			session_reply_error(s, 501, "5.5.4", "Syntax: VRFY address");
		else
			session_reply(s, "252 2.5.2 Cannot VRFY user, but will "
			    "accept message and attempt delivery");
		break;
	case CMD_STARTTLS:
		session_starttls_check(s, &cmd);
		break;
	case CMD_AUTH:
		session_auth_check(s, &cmd);
		break;
	case CMD_EXPN:
	case CMD_BDAT:
		session_reply_error(s, 502, "5.5.1",
		    "Error: command not implemented");
		break;
	case CMD_FORBIDDEN:
		/* An HTTP client or an open-proxy probe (Postfix's
		 * smtpd_forbidden_commands). */
		log_info("sid=%s improper command from unknown[%s]: %s", s->sid,
		    session_esc(esc, sizeof(esc), s->client_addr),
		    log_escape(esc2, 64, line, len));
		session_reply(s, "221 2.7.0 Error: I can break rules, too. "
		    "Goodbye.");
		session_close(s);
		break;
	case CMD_UNKNOWN:
	case CMD__COUNT:
		session_reply_error(s, 500, "5.5.2",
		    "Error: command not recognized");
		break;
	}
}

/*==== Input ====*/

/* session_auth_line - the line at p (n bytes so far) is an AUTH command
 * or response, which may be up to SASL_LINE_MAX octets long. */
static bool
session_auth_line(const struct session *s, const char *p, size_t n)
{
	return s->state == SESSION_AUTH || (n >= 5 &&
	    strncasecmp(p, "AUTH", 4) == 0 && (p[4] == ' ' || p[4] == '\t'));
}

/* session_line_too_long - answer a line over its limit (the rest of it
 * is skipped by the caller). */
static void
session_line_too_long(struct session *s, bool auth)
{
	if (!auth) {
		session_reply_error(s, 500, "5.5.2", "Error: line too long");
		return;
	}
	if (s->state == SESSION_AUTH) {
		session_auth_fail(s, 500, "5.5.6",
		    "Authentication Exchange line is too long", "line too long");
		return;
	}
	session_reply_error(s, 500, "5.5.6",
	    "Authentication Exchange line is too long");
}

/* session_feed - see session.h. */
size_t
session_feed(struct session *s, const char *data, size_t len, size_t avail)
{
	size_t pos = 0;

	if (s->state == SESSION_CLOSING)
		return len;     /* nothing more is read after the last reply */
	if (s->state == SESSION_STARTTLS)
		return len;     /* plaintext behind STARTTLS: discarded */
	if (s->state == SESSION_CONNECT_POLICY && len > 0) {
		char esc[SESSION_ESC];

		/* Early talker: input before the greeting. */
		log_info("sid=%s pregreet input from unknown[%s]", s->sid,
		    session_esc(esc, sizeof(esc), s->client_addr));
		session_reply(s, "554 5.5.0 Error: SMTP protocol synchronization");
		session_close(s);
		return len;
	}
	s->in_feed = true;
	while (pos < len) {
		const char *p = data + pos, *nl;
		size_t n = len - pos, lim, linelen, max;
		bool auth;

		if (s->state == SESSION_DATA) {
			pos += session_data_input(s, p, n);
			continue;
		}
		if (!session_wants_input(s))
			break;
		if (s->skip_line) {
			nl = memchr(p, '\n', n);
			if (nl == NULL) {
				/* The over-long line's deadline keeps running. */
				if (s->line_start_ms == 0)
					s->line_start_ms = session_now_ms();
				pos = len;
				break;
			}
			pos += (size_t)(nl - p) + 1;
			s->skip_line = false;
			s->line_start_ms = 0;
			continue;
		}
		auth = session_auth_line(s, p, n);
		max = auth ? SASL_LINE_MAX + 2 : COMMAND_MAIL_LINE_MAX;
		lim = n < max ? n : max;
		nl = memchr(p, '\n', lim);
		if (nl == NULL) {
			if (n < max) {
				/* A partial line: it must complete within the
				 * command timeout (slowloris). */
				if (s->line_start_ms == 0)
					s->line_start_ms = session_now_ms();
				break;
			}
			s->ncommands++;
			s->skip_line = true;
			pos += lim;
			session_line_too_long(s, auth);
			continue;
		}
		linelen = (size_t)(nl - p) + 1;
		pos += linelen;
		s->feed_rest = (len - pos) + (avail - len);
		s->line_start_ms = 0;
		/* Strip LF and one CR before it.  A bare LF ends a command
		 * line too (as in Postfix); only DATA is strict about it. */
		linelen--;
		if (linelen > 0 && p[linelen - 1] == '\r')
			linelen--;
		{
			char line[SESSION_LINE_BUF];

			memcpy(line, p, linelen);
			line[linelen] = '\0';
			if (s->state == SESSION_AUTH)
				session_auth_response(s, line, linelen);
			else
				session_command(s, line, linelen);
			/* An AUTH line may hold a password. */
			if (auth)
				explicit_bzero(line, linelen);
		}
	}
	s->in_feed = false;
	if (s->state == SESSION_STARTTLS && avail > pos) {
		char esc[SESSION_ESC];

		/* CVE-2011-0411: commands pipelined behind STARTTLS were
		 * sent in plaintext and must not run once TLS is up. */
		log_info("sid=%s discarding %zu byte(s) sent after STARTTLS "
		    "from unknown[%s]", s->sid, avail - pos,
		    session_esc(esc, sizeof(esc), s->client_addr));
		pos = len;
	}
	return pos;
}

/*==== Policy answers, timers, teardown ====*/

/* session_policy_done - route the answer to the waiting phase. */
void
session_policy_done(struct session *s, const struct policy_result *res)
{
	struct session_verdict v;

	if (s->state != SESSION_CONNECT_POLICY &&
	    s->state != SESSION_WAIT_POLICY && s->state != SESSION_EOM_POLICY)
		return;     /* e.g. closed by a timeout meanwhile */
	if (s->phase == ELEMTA_PHASE_AUTH) {
		session_headers_collect(s, res, !res->failed && res->action_ok);
		if (!res->failed && res->delay_ms > 0 && s->ops->delay != NULL &&
		    !s->auth_holding) {
			/* Slowed down: the answer waits on the caller's
			 * timer, the policy connection is free already. */
			s->auth_held = *res;
			s->auth_held.headers = NULL;   /* taken above */
			s->auth_holding = true;
			s->ops->delay(s->io, res->delay_ms);
			return;
		}
		/* Its own mapping: no fail mode, only OK authenticates. */
		session_auth_proceed(s, res);
		return;
	}
	if (s->phase == ELEMTA_PHASE_CONNECT && !res->failed) {
		/* policyd's names (wire.c's reply extension), for Received:
		 * and the session's later requests. */
		if (res->client_name[0] != '\0')
			str_copy(s->client_name, res->client_name,
			    sizeof(s->client_name));
		if (res->reverse_client_name[0] != '\0')
			str_copy(s->reverse_client_name,
			    res->reverse_client_name,
			    sizeof(s->reverse_client_name));
	}
	session_verdict_from(s, res, &v);
	session_headers_collect(s, res, !res->failed &&
	    !session_verdict_refuses(&v));
	if (v.code == 421 && s->phase != ELEMTA_PHASE_CONNECT) {
		session_refuse(s, &v, s->phase,
		    s->phase == ELEMTA_PHASE_RCPT ? s->txn.pending_rcpt : NULL);
		return;
	}
	switch (s->phase) {
	case ELEMTA_PHASE_CONNECT:
		session_connect_proceed(s, &v);
		break;
	case ELEMTA_PHASE_EHLO:
	case ELEMTA_PHASE_HELO:
		session_helo_proceed(s, &v);
		break;
	case ELEMTA_PHASE_AUTH:
		break;      /* handled above */
	case ELEMTA_PHASE_UNKNOWN:
		break;      /* never asked */
	case ELEMTA_PHASE_MAIL:
		session_mail_proceed(s, &v);
		break;
	case ELEMTA_PHASE_RCPT:
		session_rcpt_proceed(s, &v);
		break;
	case ELEMTA_PHASE_DATA:
		session_data_proceed(s, &v);
		break;
	case ELEMTA_PHASE_EOM:
		s->txn.edits = res->failed ? NULL : res->edits;
		session_eom_proceed(s, &v);
		s->txn.edits = NULL;
		break;
	}
}

/* session_delay_done - the held AUTH answer is due. */
void
session_delay_done(struct session *s)
{
	struct policy_result res;

	if (!s->auth_holding)
		return;
	s->auth_holding = false;
	res = s->auth_held;
	memset(&s->auth_held, 0, sizeof(s->auth_held));
	if (s->state != SESSION_WAIT_POLICY || s->phase != ELEMTA_PHASE_AUTH)
		return;     /* closed meanwhile */
	session_auth_proceed(s, &res);
}

/* session_read_timeout_ms - see session.h. */
uint64_t
session_read_timeout_ms(const struct session *s)
{
	uint64_t t = s->cfg->server.command_timeout_ms;
	uint64_t now = 0;

	if (s->line_start_ms != 0) {
		now = session_now_ms();
		if (now - s->line_start_ms >= t)
			return 0;
		t -= now - s->line_start_ms;
	}
	if (s->state == SESSION_DATA && s->cfg->server.data_timeout_ms > 0) {
		uint64_t used, left;

		if (now == 0)
			now = session_now_ms();
		used = now - s->data_start_ms;
		left = used >= s->cfg->server.data_timeout_ms ? 0 :
		    s->cfg->server.data_timeout_ms - used;
		if (left < t)
			t = left;
	}
	if (session_data_rate_deadline_ms(s) != 0) {
		uint64_t due = session_data_rate_deadline_ms(s);

		if (now == 0)
			now = session_now_ms();
		if (now >= due)
			return 0;
		if (due - now < t)
			t = due - now;
	}
	return t;
}

/* session_timeout - 421 4.4.2 and close (RFC 5321 4.5.3.2). */
void
session_timeout(struct session *s)
{
	char esc[SESSION_ESC];

	if (s->state == SESSION_CLOSING)
		return;
	/* The read timer runs on libevent's coarse clock and may fire a few
	 * milliseconds before our deadline: that is still the rate's. */
	if (session_data_rate_deadline_ms(s) != 0 &&
	    session_now_ms() + SESSION_TIMER_SLACK_MS >=
	    session_data_rate_deadline_ms(s)) {
		session_data_too_slow(s);
		return;
	}
	log_info("sid=%s timeout after %s from unknown[%s]", s->sid,
	    s->state == SESSION_DATA ? "DATA content" :
	    command_name(s->last_cmd),
	    session_esc(esc, sizeof(esc), s->client_addr));
	if (s->state == SESSION_DATA)
		session_txn_reset(s);
	session_reply(s, "421 4.4.2 %s Error: timeout exceeded",
	    s->cfg->server.hostname);
	session_close(s);
}

/* session_shutdown - 421 4.3.2 and close; a partial message is removed
 * (the client will retry it). */
void
session_shutdown(struct session *s)
{
	if (s->state == SESSION_CLOSING)
		return;
	session_txn_reset(s);
	session_reply(s, "421 4.3.2 %s Service shutting down",
	    s->cfg->server.hostname);
	session_close(s);
}

/* session_free - the disconnect line (Postfix style command counts). */
void
session_free(struct session *s)
{
	char stats[400], esc[SESSION_ESC];
	size_t off = 0;

	if (s == NULL)
		return;
	stats[0] = '\0';
	for (int id = 1; id < CMD__COUNT; id++) {
		if (s->counts[id] == 0 || off >= sizeof(stats))
			continue;
		off += (size_t)snprintf(stats + off, sizeof(stats) - off,
		    " %s=%u", command_stat_name((enum command_id)id),
		    s->counts[id]);
	}
	if (s->counts[CMD_UNKNOWN] > 0 && off < sizeof(stats))
		off += (size_t)snprintf(stats + off, sizeof(stats) - off,
		    " unknown=%u", s->counts[CMD_UNKNOWN]);
	log_info("sid=%s disconnect from unknown[%s]:%u%s commands=%u", s->sid,
	    session_esc(esc, sizeof(esc), s->client_addr), s->client_port,
	    stats, s->ncommands);
	session_txn_reset(s);
	session_auth_clear(s, true);
	free(s->helo);
	free(s->hdrs);
	free(s);
}
