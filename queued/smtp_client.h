/*
 * smtp_client.h - one outbound SMTP or LMTP connection of elemta-queued:
 * the client protocol state machine, independent of sockets, TLS and the
 * event loop (the same shape as smtpd/session.h).
 *
 * The caller (the delivery process: it owns the socket, the TLS and the
 * timers) creates a client per connection and drives it with the next
 * hop's bytes (smtpc_feed), the TLS handshake's outcome
 * (smtpc_tls_done), timer expiry (smtpc_timeout) and room in its output
 * buffer (smtpc_pump).  The client talks back only through struct
 * smtpc_ops, which is also the seam tests/unit/test_smtp_client.c drives
 * with plain strings.
 *
 * Conversation: greeting -> EHLO (LHLO for LMTP; HELO when an SMTP
 * server answers EHLO with 5xx) -> STARTTLS by tls mode (NONE: never;
 * MAY: when offered; ENCRYPT/VERIFY: required, else the connection
 * fails 4.7.4; the handshake itself is ops->starttls's, verification by
 * mode included; afterwards EHLO again and every input byte buffered
 * before it is discarded) -> AUTH PLAIN (else LOGIN) when credentials are
 * given and offered, never without TLS unless auth->allow_plaintext (it
 * fails 4.7.0 instead) -> ops->ready: the connection is idle, the caller
 * calls smtpc_send or smtpc_quit.
 *
 * A message: MAIL FROM (SIZE= and BODY=8BITMIME when offered, SMTPUTF8
 * when needed, RET/ENVID when DSN is offered), RCPT TO each recipient
 * (NOTIFY/ORCPT when DSN is offered), DATA; with PIPELINING all of them
 * in one go and replies matched in order (RFC 2920).  The body is pulled
 * through ops->body_read by smtpc_pump in bounded chunks (the client
 * never holds a whole message), dot-stuffed, bare LF and bare CR made
 * CRLF, ended by CRLF.CRLF.  SMTP answers the final dot once for all
 * accepted recipients, LMTP once per accepted recipient, each honoured
 * (RFC 2033).  Each recipient ends with an outcome (outcome.h): RCPT
 * refusals keep their reply, MAIL refusals apply to all.  When outcomes
 * are final ops->done is called; a transaction that did not end with
 * the final dot is RSET before the connection is offered again.
 *
 * Refusals before any transaction (a smtpc_send before ops->ready is a
 * caller bug): SMTPUTF8 needed but not offered, or SIZE over the peer's
 * limit, make every recipient PERMFAIL (5.6.7, 5.3.4) without sending
 * MAIL.
 *
 * Connection-level failures: a 4xx or 5xx greeting, 421 anywhere, a
 * timeout, malformed replies, TLS required but not offered or failed,
 * AUTH refused: TEMPFAIL; a 5xx to EHLO and HELO: PERMFAIL.  Every
 * recipient still pending takes that outcome (smtpc_failure() holds it
 * too, for messages the caller had not sent yet), ops->done runs for the
 * message in flight and ops->close asks the caller to drop the
 * connection.  No callback is made after close.  smtpc_retry() says what
 * the caller does next with the recipients left (set before ops->done):
 *  - SMTPC_RETRY_NEXT_HOST (every TEMPFAIL failure caused by the peer):
 *    try the next MX host or address now, defer after the last one.  A
 *    5xx greeting is one of these, not a bounce: the host refuses to
 *    talk, which says nothing about the mail (Postfix's default
 *    smtp_skip_5xx_greeting = yes); it is reported TEMPFAIL with its
 *    status made class 4 and the 5xx reply code kept for the DSN.
 *  - SMTPC_RETRY_PLAINTEXT (a failed TLS handshake with tls MAY): the
 *    connection is gone mid-handshake; reconnect to the same host with
 *    SMTPC_TLS_NONE.  Postfix does so only for a message that has
 *    already waited min_backoff (not on its first attempt, so a
 *    passing fault does not cost the encryption) and never when
 *    credentials would then go out in plaintext; the caller applies
 *    the same rule, else treats it as NEXT_HOST.
 *  - SMTPC_RETRY_NONE: a permanent failure, or a local one (the
 *    message could not be read): no other host helps.
 *
 * Timeouts (RFC 5321 §4.5.3.2): smtpc_timer() says which one applies in
 * the current state, smtpc_timeout_seconds() its value from the config;
 * the caller (re)arms its timer after every call that returned.
 */
#ifndef ELEMTA_QUEUED_SMTP_CLIENT_H
#define ELEMTA_QUEUED_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dsn.h"
#include "outcome.h"
#include "reply.h"

enum smtpc_proto {
	SMTPC_SMTP,
	SMTPC_LMTP,
};

enum smtpc_tls_mode {
	SMTPC_TLS_NONE,       /* never STARTTLS (LMTP over a unix socket) */
	SMTPC_TLS_MAY,        /* when offered                             */
	SMTPC_TLS_ENCRYPT,    /* required, certificate not checked        */
	SMTPC_TLS_VERIFY,     /* required, certificate checked by caller  */
};

enum smtpc_state {
	SMTPC_GREETING,       /* connected, waiting for 220             */
	SMTPC_EHLO,           /* EHLO/LHLO sent                         */
	SMTPC_HELO,           /* HELO sent after EHLO's 5xx             */
	SMTPC_STARTTLS,       /* STARTTLS sent                          */
	SMTPC_TLS,            /* the caller runs the TLS handshake       */
	SMTPC_AUTH,           /* AUTH sent (and its exchange)           */
	SMTPC_READY,          /* idle: smtpc_send or smtpc_quit         */
	SMTPC_TXN,            /* MAIL/RCPT/DATA replies awaited         */
	SMTPC_BODY,           /* 354 received: smtpc_pump sends the body */
	SMTPC_DOT,            /* final dot sent, reply(ies) awaited     */
	SMTPC_RSET,           /* RSET after an unfinished transaction   */
	SMTPC_QUIT,           /* QUIT sent                              */
	SMTPC_CLOSED,         /* ops->close called; nothing more        */
};

/* RFC 5321 §4.5.3.2 timers. */
enum smtpc_timer {
	SMTPC_TIMER_GREETING,     /* initial 220: 5 min                 */
	SMTPC_TIMER_COMMAND,      /* EHLO, STARTTLS, AUTH, RSET, QUIT: 5 min */
	SMTPC_TIMER_MAIL,         /* 5 min                              */
	SMTPC_TIMER_RCPT,         /* 5 min                              */
	SMTPC_TIMER_DATA_INIT,    /* 354: 2 min                         */
	SMTPC_TIMER_DATA_BLOCK,   /* each body write: 3 min             */
	SMTPC_TIMER_DATA_TERM,    /* after the final dot: 10 min        */
	SMTPC_TIMER_NONE,         /* idle (READY), TLS handshake, closed */
};

struct smtpc_timeouts {
	unsigned greeting, command, mail, rcpt, data_init, data_block,
	    data_term;            /* seconds */
};

/* smtpc_timeouts_default - RFC 5321's values. */
void smtpc_timeouts_default(struct smtpc_timeouts *t);

struct smtpc_auth {
	const char *user;
	const char *password;
	bool allow_plaintext;     /* send credentials without TLS      */
};

struct smtpc_config {
	enum smtpc_proto proto;
	const char *helo_name;    /* our name in EHLO/LHLO/HELO        */
	const char *peer_name;    /* the next hop, for logs and DSNs   */
	enum smtpc_tls_mode tls;
	const struct smtpc_auth *auth;   /* NULL: no AUTH             */
	struct smtpc_timeouts timeouts;
};

struct smtpc_rcpt {
	const char *address;
	const char *orcpt;        /* "rfc822;addr" (decoded), or NULL  */
	unsigned notify;          /* DSN_NOTIFY_* bits, 0: not given   */
	struct outcome outcome;   /* filled by the client              */
};

/* A message to send; the caller owns it and everything it points to
 * until ops->done has been called for it. */
struct smtpc_message {
	const char *sender;       /* "" for <>                         */
	uint64_t size;            /* bytes, 0: unknown                 */
	bool eightbit;            /* BODY=8BITMIME                     */
	bool smtputf8;            /* needs SMTPUTF8                    */
	enum dsn_ret ret;
	const char *envid;        /* NULL: none                        */
	struct smtpc_rcpt *rcpts;
	size_t nrcpt;
	bool peer_dsn;            /* set by the client: the next hop
	                             offered DSN and took the parameters */
};

struct smtpc_ops {
	/* Queue bytes for the peer, in order. */
	void (*write)(void *io, const char *data, size_t len);
	/* Start the TLS handshake (mode: whether and how to verify); the
	 * caller drops every input byte it holds and reports through
	 * smtpc_tls_done.  Must not call smtpc_tls_done itself. */
	void (*starttls)(void *io, enum smtpc_tls_mode mode);
	/* The next body bytes of the message being sent, from its start:
	 * bytes put in buf (at most size), 0 at the end, -1 on error. */
	long (*body_read)(void *io, char *buf, size_t size);
	/* Every recipient of m has its final outcome. */
	void (*done)(void *io, struct smtpc_message *m);
	/* The connection is idle: call smtpc_send or smtpc_quit (now or
	 * later; from inside this callback too). */
	void (*ready)(void *io);
	/* The conversation is over: drop the connection. */
	void (*close)(void *io);
};

/* What the caller may do after a connection-level failure; see above. */
enum smtpc_retry {
	SMTPC_RETRY_NONE,
	SMTPC_RETRY_NEXT_HOST,
	SMTPC_RETRY_PLAINTEXT,
};

struct smtpc;

/* smtpc_new - a client in SMTPC_GREETING; cfg and everything it points
 * to must outlive it. */
struct smtpc *smtpc_new(const struct smtpc_config *cfg,
    const struct smtpc_ops *ops, void *io);
/* smtpc_feed - bytes from the peer; returns how many were consumed
 * (whole replies; in SMTPC_BODY none: a reply then is read after the
 * dot).  Unconsumed bytes stay with the caller and are fed again; they
 * stay within one reply's bounds (reply.h; in SMTPC_BODY more than
 * REPLY_TOTAL_MAX fails 4.5.0), so the caller's input buffer needs
 * about REPLY_TOTAL_MAX plus one read. */
size_t smtpc_feed(struct smtpc *c, const char *data, size_t len);
/* smtpc_tls_done - the handshake's outcome (why: for the failure). */
void smtpc_tls_done(struct smtpc *c, bool ok, const char *why);
/* smtpc_send - start m on an idle connection (SMTPC_READY). */
void smtpc_send(struct smtpc *c, struct smtpc_message *m);
/* smtpc_pump - in SMTPC_BODY, send up to about budget more body bytes;
 * returns the bytes written (the final dot included). */
size_t smtpc_pump(struct smtpc *c, size_t budget);
/* smtpc_quit - end an idle connection politely. */
void smtpc_quit(struct smtpc *c);
/* smtpc_timeout - the current timer expired: 4.4.2, close. */
void smtpc_timeout(struct smtpc *c);
/* smtpc_abort - the connection was lost (why: for the outcome). */
void smtpc_abort(struct smtpc *c, const char *why);
void smtpc_free(struct smtpc *c);

enum smtpc_state smtpc_state(const struct smtpc *c);
const char *smtpc_state_name(enum smtpc_state st);
enum smtpc_timer smtpc_timer(const struct smtpc *c);
const char *smtpc_timer_name(enum smtpc_timer t);
unsigned smtpc_timeout_seconds(const struct smtpc *c);
/* smtpc_ehlo - what the peer offered (valid from SMTPC_READY on). */
const struct reply_ehlo *smtpc_ehlo(const struct smtpc *c);
/* smtpc_tls_active - the conversation runs over TLS. */
bool smtpc_tls_active(const struct smtpc *c);
/* smtpc_failure - the connection-level outcome (OUTCOME_PENDING while
 * none happened). */
const struct outcome *smtpc_failure(const struct smtpc *c);
/* smtpc_retry - after a failure, what the caller may try with the
 * recipients left (SMTPC_RETRY_NONE while no failure happened). */
enum smtpc_retry smtpc_retry(const struct smtpc *c);

#endif
