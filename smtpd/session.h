/*
 * session.h - one SMTP session of elemta-smtpd: the protocol state
 * machine, independent of sockets and of the event loop.
 *
 * server.c creates a session per accepted connection and drives it with
 * the client's bytes (session_feed), policy answers (session_policy_done)
 * and timer events (session_timeout, session_shutdown).  The session
 * talks back only through struct session_ops, which is also the seam the
 * unit tests use to drive it with plain strings and scripted policy
 * answers.
 *
 * Input contract: session_feed consumes whole command lines (or DATA
 * bytes) and returns how many bytes it used.  It stops consuming while a
 * policy answer is pending and right after the end of data, so the
 * unconsumed bytes stay in the caller's buffer and are fed again later:
 * that is how pipelined commands are answered strictly in order and how
 * nothing after the final "." is read as part of the message.  Replies go
 * out through ops->write in order; the caller flushes them when its input
 * runs dry (RFC 2920).
 *
 * TLS (RFC 3207): the session answers STARTTLS with 220, forgets what
 * the client told it (HELO, transaction, authentication), consumes and
 * discards every input byte the caller holds (plaintext sent behind
 * STARTTLS must never be executed after the handshake: CVE-2011-0411)
 * and asks ops->starttls to switch; the handshake's outcome comes back
 * through session_tls_started (the client must EHLO again) or
 * session_tls_failed.  On an smtps listener the caller completes the
 * handshake first and calls session_tls_started before session_start.
 *
 * AUTH (RFC 4954, PLAIN and LOGIN with initial responses): the session
 * decodes the client's messages and asks policyd, which verifies the
 * credentials (protocol_state=AUTH); the password is wiped from the
 * session's buffers once the request is built.  Only a literal
 * action=OK authenticates; a failed request never does (454 4.7.0,
 * whatever policyd.fail_mode says).
 */
#ifndef ELEMTA_SMTPD_SESSION_H
#define ELEMTA_SMTPD_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "policy_client.h"
#include "spool.h"
#include "strbuf.h"

enum session_state {
	SESSION_CONNECT_POLICY,  /* waiting for the CONNECT decision; no
	                            greeting yet, input = early talker     */
	SESSION_GREETED,         /* 220 sent, HELO/EHLO expected           */
	SESSION_HELO_DONE,       /* ready for MAIL                         */
	SESSION_MAIL_DONE,       /* MAIL accepted, RCPT expected           */
	SESSION_RCPT_DONE,       /* at least one recipient accepted        */
	SESSION_AUTH,            /* 334 sent: the next line is the client's
	                            SASL response, not a command           */
	SESSION_STARTTLS,        /* 220 to STARTTLS sent, the TLS handshake
	                            runs; input is discarded               */
	SESSION_WAIT_POLICY,     /* a command's policy answer is pending   */
	SESSION_DATA,            /* receiving the message after 354        */
	SESSION_EOM_POLICY,      /* end of data seen, decision pending     */
	SESSION_EOM_COMMIT,      /* accepted, being made durable on disk   */
	SESSION_CLOSING,         /* last reply queued; no more input       */
};

/* The connection facts the session is created with. */
struct session_peer {
	const char *client_address;   /* canonical (common/addr.h)        */
	unsigned client_port;
	const char *server_address;
	unsigned server_port;
	enum config_listen_mode mode;
	bool starttls;                /* STARTTLS may be offered (a
	                                 certificate is loaded and the
	                                 connection is not TLS already)   */
};

/* How a session reaches the outside world.  io is passed back as is. */
struct session_ops {
	/* Queue reply bytes for the client, in order. */
	void (*write)(void *io, const char *data, size_t len);
	/* Close the connection once the queued replies are sent.  The
	 * session stays valid until the caller frees it. */
	void (*close)(void *io);
	/* Input bytes received but not yet fed (pipelining checks). */
	size_t (*pending)(void *io);
	/* Start a policy request: req's bytes (taken over) with fd (-1 or a
	 * descriptor, taken over).  Returns 0 when the answer will come
	 * later through session_policy_done, -1 (why filled) when it failed
	 * at once.  Must not call session_policy_done itself. */
	int (*policy)(void *io, struct strbuf *req, int fd, char *why,
	    size_t whylen);
	/* Commit the accepted message off the event loop: m is taken over,
	 * *env must be copied (the strings it points to stay valid until
	 * session_commit_done).  The outcome comes back through
	 * session_commit_done, never from inside this call. */
	void (*commit)(void *io, struct spool_msg *m,
	    const struct spool_envelope *env, enum spool_dest dest);
	/* Optional: switch the connection to TLS after STARTTLS.  Called
	 * with the 220 reply queued; input not consumed by then must be
	 * dropped, the handshake starts once the reply is sent, and its
	 * outcome comes back through session_tls_started or
	 * session_tls_failed.  NULL: STARTTLS is never offered. */
	void (*starttls)(void *io);
	/* Optional: call session_delay_done after ms milliseconds (the
	 * slow-down policyd asked for before an AUTH is answered).  The
	 * session stays waiting meanwhile; NULL: no delay is applied. */
	void (*delay)(void *io, uint32_t ms);
};

struct session;

/* session_new - a session in SESSION_CONNECT_POLICY; nothing is sent
 * until session_start.  cfg must outlive it. */
struct session *session_new(const struct config *cfg,
    const struct session_ops *ops, void *io, const struct session_peer *peer);
/* session_local_user - a local listener's session (mode local) is
 * authenticated as user, the peer's login name, with its uid and pid as
 * the kernel gave them (local_peer.h); called between session_new and
 * session_start.  No effect on other modes. */
void session_local_user(struct session *s, const char *user,
    unsigned long uid, long pid);
/* session_start - log the connection and ask for the CONNECT decision. */
void session_start(struct session *s);
/* session_feed - len bytes of input at data; avail >= len is how much
 * input the caller holds in total (data is its first len bytes).
 * Returns the bytes consumed (see the input contract above). */
size_t session_feed(struct session *s, const char *data, size_t len,
    size_t avail);
/* session_policy_done - the answer to the request started last. */
void session_policy_done(struct session *s, const struct policy_result *res);
/* session_delay_done - the delay asked for with ops->delay is over: the
 * held AUTH answer goes to the client now. */
void session_delay_done(struct session *s);
/* session_commit_done - the outcome of ops->commit (rc 0: durable;
 * SPOOL_NO_SPACE: the disk was full, 452 4.3.1; other < 0: 451 4.3.0). */
void session_commit_done(struct session *s, int rc, const char *errtext);
/* session_tls_started - the TLS handshake completed: protocol and
 * cipher as OpenSSL names them ("TLSv1.3", "TLS_AES_256_GCM_SHA384").
 * After STARTTLS the session is back in SESSION_GREETED. */
void session_tls_started(struct session *s, const char *protocol,
    const char *cipher);
/* session_tls_failed - the handshake failed (why: for the log); the
 * session is closing and the caller drops the connection. */
void session_tls_failed(struct session *s, const char *why);
/* session_timeout - the client was idle too long, or its DATA fell below
 * server.min_data_rate: 421 4.4.2, close. */
void session_timeout(struct session *s);
/* session_shutdown - the server is stopping: 421 4.3.2, close. */
void session_shutdown(struct session *s);
/* session_free - log the disconnect, remove any partial message. */
void session_free(struct session *s);

enum session_state session_state(const struct session *s);
const char *session_state_name(enum session_state st);
const char *session_id(const struct session *s);
/* session_read_timeout_ms - how long the client may stay silent now
 * (command timeout, what is left of a partial line, of the DATA
 * deadline, or of the time server.min_data_rate allows the bytes received
 * so far); 0 means "already expired". */
uint64_t session_read_timeout_ms(const struct session *s);
/* session_wants_input - false while waiting for a decision or closing
 * (the caller may stop reading; input stays buffered). */
bool session_wants_input(const struct session *s);

/* What the session waits for from its caller: it moves on only through
 * session_policy_done (POLICY) or session_commit_done (COMMIT). */
enum session_pending {
	SESSION_PENDING_NONE,
	SESSION_PENDING_POLICY,   /* a request started with ops->policy   */
	SESSION_PENDING_COMMIT,   /* a message handed to ops->commit      */
};
/* session_pending - see enum session_pending. */
enum session_pending session_pending(const struct session *s);

#endif
