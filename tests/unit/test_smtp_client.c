/*
 * test_smtp_client.c - the outbound SMTP/LMTP client state machine
 * (queued/smtp_client.c) driven without sockets: the next hop's replies
 * fed as strings, the commands it would receive compared byte for byte,
 * TLS, the body source and the caller's callbacks scripted through the
 * smtpc_ops seam.  One test per promise of smtp_client.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "../../queued/smtp_client.h"

struct drv {
	struct smtpc *c;
	struct smtpc_config cfg;
	struct smtpc_auth auth;
	char out[65536];
	size_t out_len;
	int nstarttls, ndone, nready, nclose;
	enum smtpc_tls_mode tls_mode;
	const char *body;
	size_t body_len, body_pos, body_chunk;
	bool body_fail;
	struct smtpc_message *last_done;
	enum smtpc_retry retry_at_close;   /* smtpc_retry in ops->close */
	struct smtpc_message *resend;      /* sent again from ops->ready */
	int resend_left, depth, max_depth;
};

static void
drv_write(void *io, const char *data, size_t len)
{
	struct drv *d = io;

	assert_true(d->out_len + len < sizeof(d->out));
	assert_int_equal(d->nclose, 0);      /* nothing after close */
	memcpy(d->out + d->out_len, data, len);
	d->out_len += len;
	d->out[d->out_len] = '\0';
}

static void
drv_starttls(void *io, enum smtpc_tls_mode mode)
{
	struct drv *d = io;

	d->nstarttls++;
	d->tls_mode = mode;
}

static long
drv_body_read(void *io, char *buf, size_t size)
{
	struct drv *d = io;
	size_t n = d->body_len - d->body_pos;

	if (d->body_fail)
		return -1;
	if (n > size)
		n = size;
	if (d->body_chunk > 0 && n > d->body_chunk)
		n = d->body_chunk;
	memcpy(buf, d->body + d->body_pos, n);
	d->body_pos += n;
	return (long)n;
}

static void
drv_done(void *io, struct smtpc_message *m)
{
	struct drv *d = io;

	d->ndone++;
	d->last_done = m;
	for (size_t i = 0; i < m->nrcpt; i++)
		assert_int_not_equal(m->rcpts[i].outcome.result,
		    OUTCOME_PENDING);
}

static void
drv_ready(void *io)
{
	struct drv *d = io;

	d->nready++;
	if (d->resend == NULL || d->resend_left == 0)
		return;
	d->resend_left--;
	if (++d->depth > d->max_depth)
		d->max_depth = d->depth;
	smtpc_send(d->c, d->resend);
	d->depth--;
}

static void
drv_close(void *io)
{
	struct drv *d = io;

	d->nclose++;
	d->retry_at_close = smtpc_retry(d->c);
}

static const struct smtpc_ops drv_ops = {
	.write = drv_write,
	.starttls = drv_starttls,
	.body_read = drv_body_read,
	.done = drv_done,
	.ready = drv_ready,
	.close = drv_close,
};

/* drv_new - a client of proto/tls (auth: NULL or set up by the test). */
static struct drv *
drv_new(enum smtpc_proto proto, enum smtpc_tls_mode tls)
{
	struct drv *d = calloc(1, sizeof(*d));

	d->cfg.proto = proto;
	d->cfg.helo_name = "mail.elemta.test";
	d->cfg.peer_name = "mx.peer.test";
	d->cfg.tls = tls;
	smtpc_timeouts_default(&d->cfg.timeouts);
	d->c = smtpc_new(&d->cfg, &drv_ops, d);
	assert_int_equal(smtpc_state(d->c), SMTPC_GREETING);
	assert_int_equal(smtpc_retry(d->c), SMTPC_RETRY_NONE);
	return d;
}

static void
drv_free(struct drv *d)
{
	smtpc_free(d->c);
	free(d);
}

/* peer - the next hop says s; all of it is consumed. */
static void
peer(struct drv *d, const char *s)
{
	assert_int_equal(smtpc_feed(d->c, s, strlen(s)), strlen(s));
}

/* clear - forget what was sent so far. */
static void
clear(struct drv *d)
{
	d->out_len = 0;
	d->out[0] = '\0';
}

/* expect - what the client sent since the last call is exactly s. */
static void
expect(struct drv *d, const char *s)
{
	assert_string_equal(d->out, s);
	clear(d);
}

/* drv_ready_plain - greeting and EHLO with the given keywords. */
static void
drv_ready_plain(struct drv *d, const char *ehlo)
{
	peer(d, "220 mx.peer.test ESMTP\r\n");
	expect(d, d->cfg.proto == SMTPC_LMTP ? "LHLO mail.elemta.test\r\n" :
	    "EHLO mail.elemta.test\r\n");
	peer(d, ehlo);
	assert_int_equal(smtpc_state(d->c), SMTPC_READY);
	assert_int_equal(d->nready, 1);
}

/* A message with up to four recipients. */
struct msg {
	struct smtpc_message m;
	struct smtpc_rcpt r[4];
};

static void
msg_init(struct msg *x, const char *sender, size_t n)
{
	static const char *const addr[] = { "a@dest.test", "b@dest.test",
	    "c@dest.test", "d@dest.test" };

	memset(x, 0, sizeof(*x));
	x->m.sender = sender;
	x->m.rcpts = x->r;
	x->m.nrcpt = n;
	for (size_t i = 0; i < n; i++)
		x->r[i].address = addr[i];
}

static void
drv_body(struct drv *d, const char *body, size_t chunk)
{
	d->body = body;
	d->body_len = strlen(body);
	d->body_pos = 0;
	d->body_chunk = chunk;
}

static void
test_lockstep_smtp(void **state)
{
	struct drv *d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	struct msg x;

	drv_ready_plain(d, "250-mx.peer.test\r\n250 8BITMIME\r\n");
	assert_int_equal(smtpc_timeout_seconds(d->c), 0);
	msg_init(&x, "s@src.test", 2);
	drv_body(d, "Subject: hi\r\n\r\nbody\r\n", 0);
	smtpc_send(d->c, &x.m);
	/* One command at a time without PIPELINING. */
	expect(d, "MAIL FROM:<s@src.test>\r\n");
	assert_int_equal(smtpc_timer(d->c), SMTPC_TIMER_MAIL);
	peer(d, "250 2.1.0 Ok\r\n");
	expect(d, "RCPT TO:<a@dest.test>\r\n");
	assert_int_equal(smtpc_timer(d->c), SMTPC_TIMER_RCPT);
	peer(d, "250 2.1.5 Ok\r\n");
	expect(d, "RCPT TO:<b@dest.test>\r\n");
	peer(d, "550 5.1.1 <b@dest.test>: no such user\r\n");
	expect(d, "DATA\r\n");
	assert_int_equal(smtpc_timer(d->c), SMTPC_TIMER_DATA_INIT);
	assert_int_equal(smtpc_timeout_seconds(d->c), 120);
	peer(d, "354 go ahead\r\n");
	assert_int_equal(smtpc_state(d->c), SMTPC_BODY);
	assert_int_equal(smtpc_timer(d->c), SMTPC_TIMER_DATA_BLOCK);
	assert_int_equal(smtpc_timeout_seconds(d->c), 180);
	smtpc_pump(d->c, 1 << 20);
	expect(d, "Subject: hi\r\n\r\nbody\r\n.\r\n");
	assert_int_equal(smtpc_timer(d->c), SMTPC_TIMER_DATA_TERM);
	assert_int_equal(smtpc_timeout_seconds(d->c), 600);
	assert_int_equal(d->ndone, 0);
	peer(d, "250 2.0.0 Ok: queued as 123\r\n");
	assert_int_equal(d->ndone, 1);
	assert_int_equal(x.r[0].outcome.result, OUTCOME_DELIVERED);
	assert_int_equal(x.r[0].outcome.code, 250);
	assert_int_equal(x.r[1].outcome.result, OUTCOME_PERMFAIL);
	assert_int_equal(x.r[1].outcome.code, 550);
	assert_string_equal(x.r[1].outcome.enhanced, "5.1.1");
	assert_non_null(strstr(x.r[1].outcome.text, "no such user"));
	/* Offered again (no RSET after a completed transaction), then QUIT. */
	assert_int_equal(smtpc_state(d->c), SMTPC_READY);
	assert_int_equal(d->nready, 2);
	expect(d, "");
	smtpc_quit(d->c);
	expect(d, "QUIT\r\n");
	peer(d, "221 bye\r\n");
	assert_int_equal(d->nclose, 1);
	assert_int_equal(smtpc_state(d->c), SMTPC_CLOSED);
	assert_int_equal(smtpc_failure(d->c)->result, OUTCOME_PENDING);
	drv_free(d);
}

static void
test_pipelining_and_reuse(void **state)
{
	struct drv *d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	struct msg x, y;

	drv_ready_plain(d, "250-mx\r\n250 PIPELINING\r\n");
	msg_init(&x, "", 3);
	drv_body(d, "x\r\n", 0);
	smtpc_send(d->c, &x.m);
	/* RFC 2920: MAIL, every RCPT and DATA in one go. */
	expect(d, "MAIL FROM:<>\r\nRCPT TO:<a@dest.test>\r\n"
	    "RCPT TO:<b@dest.test>\r\nRCPT TO:<c@dest.test>\r\nDATA\r\n");
	/* Replies in order, arriving in pieces: only whole ones consumed. */
	assert_int_equal(smtpc_feed(d->c, "250 ok\r\n452 4.2.2 full\r\n25", 26),
	    24);
	/* The caller feeds the unconsumed "25" again with what follows. */
	peer(d, "250 ok\r\n550 no\r\n354 go\r\n");
	assert_int_equal(smtpc_state(d->c), SMTPC_BODY);
	/* While the body goes out nothing is consumed. */
	assert_int_equal(smtpc_feed(d->c, "250 x\r\n", 7), 0);
	smtpc_pump(d->c, 1 << 20);
	expect(d, "x\r\n.\r\n");
	peer(d, "250 queued\r\n");
	assert_int_equal(x.r[0].outcome.result, OUTCOME_TEMPFAIL);
	assert_string_equal(x.r[0].outcome.enhanced, "4.2.2");
	assert_int_equal(x.r[1].outcome.result, OUTCOME_DELIVERED);
	assert_int_equal(x.r[2].outcome.result, OUTCOME_PERMFAIL);
	assert_string_equal(x.r[2].outcome.enhanced, "5.0.0");

	/* The same connection carries the next message. */
	msg_init(&y, "t@src.test", 1);
	drv_body(d, "y\r\n", 0);
	smtpc_send(d->c, &y.m);
	expect(d, "MAIL FROM:<t@src.test>\r\nRCPT TO:<a@dest.test>\r\n"
	    "DATA\r\n");
	peer(d, "250 ok\r\n250 ok\r\n354 go\r\n");
	smtpc_pump(d->c, 1 << 20);
	expect(d, "y\r\n.\r\n");
	peer(d, "250 queued\r\n");
	assert_int_equal(d->ndone, 2);
	assert_ptr_equal(d->last_done, &y.m);
	assert_int_equal(y.r[0].outcome.result, OUTCOME_DELIVERED);
	assert_int_equal(d->nready, 3);
	drv_free(d);
}

static void
test_helo_fallback(void **state)
{
	struct drv *d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);

	peer(d, "220 old\r\n");
	expect(d, "EHLO mail.elemta.test\r\n");
	peer(d, "502 5.5.1 what?\r\n");
	expect(d, "HELO mail.elemta.test\r\n");
	assert_int_equal(smtpc_state(d->c), SMTPC_HELO);
	peer(d, "250 hello\r\n");
	assert_int_equal(smtpc_state(d->c), SMTPC_READY);
	assert_false(smtpc_ehlo(d->c)->pipelining);
	drv_free(d);

	/* A refused HELO is permanent; LMTP has no HELO to fall back to. */
	d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	peer(d, "220 old\r\n550 no EHLO\r\n");
	peer(d, "550 no HELO either\r\n");
	assert_int_equal(d->nclose, 1);
	assert_int_equal(smtpc_failure(d->c)->result, OUTCOME_PERMFAIL);
	assert_int_equal(smtpc_retry(d->c), SMTPC_RETRY_NONE);
	drv_free(d);
	d = drv_new(SMTPC_LMTP, SMTPC_TLS_NONE);
	peer(d, "220 lmtp\r\n");
	expect(d, "LHLO mail.elemta.test\r\n");
	peer(d, "500 no\r\n");
	assert_int_equal(d->nclose, 1);
	expect(d, "");
	assert_int_equal(smtpc_failure(d->c)->result, OUTCOME_PERMFAIL);
	drv_free(d);
}

static void
test_lmtp_one_reply_per_recipient(void **state)
{
	struct drv *d = drv_new(SMTPC_LMTP, SMTPC_TLS_NONE);
	struct msg x;

	drv_ready_plain(d, "250-lmtp\r\n250-PIPELINING\r\n250-STARTTLS\r\n"
	    "250 ENHANCEDSTATUSCODES\r\n");
	/* TLS mode NONE: STARTTLS never sent although offered. */
	assert_int_equal(d->nstarttls, 0);
	msg_init(&x, "s@src.test", 3);
	drv_body(d, "m\r\n", 0);
	smtpc_send(d->c, &x.m);
	expect(d, "MAIL FROM:<s@src.test>\r\nRCPT TO:<a@dest.test>\r\n"
	    "RCPT TO:<b@dest.test>\r\nRCPT TO:<c@dest.test>\r\nDATA\r\n");
	peer(d, "250 ok\r\n250 ok\r\n550 5.1.1 unknown\r\n250 ok\r\n354 go\r\n");
	smtpc_pump(d->c, 1 << 20);
	expect(d, "m\r\n.\r\n");
	/* One reply per accepted recipient (a and c), in RCPT order. */
	peer(d, "250 2.0.0 a delivered\r\n");
	assert_int_equal(d->ndone, 0);
	assert_int_equal(smtpc_state(d->c), SMTPC_DOT);
	peer(d, "452 4.2.2 c over quota\r\n");
	assert_int_equal(d->ndone, 1);
	assert_int_equal(x.r[0].outcome.result, OUTCOME_DELIVERED);
	assert_non_null(strstr(x.r[0].outcome.text, "a delivered"));
	assert_int_equal(x.r[1].outcome.result, OUTCOME_PERMFAIL);
	assert_int_equal(x.r[2].outcome.result, OUTCOME_TEMPFAIL);
	assert_string_equal(x.r[2].outcome.enhanced, "4.2.2");
	assert_int_equal(smtpc_state(d->c), SMTPC_READY);
	drv_free(d);
}

static void
test_dot_stuffing(void **state)
{
	static const char *const bodies[] = {
		".hidden\n..two\r\nbare\rcr\r\n.\r\nend",
		"",
		"x\r",
		"\n.\n",
	};
	static const char *const wire[] = {
		"..hidden\r\n...two\r\nbare\r\ncr\r\n..\r\nend\r\n.\r\n",
		".\r\n",
		"x\r\n.\r\n",
		"\r\n..\r\n.\r\n",
	};

	for (size_t i = 0; i < 4; i++) {
		for (size_t chunk = 0; chunk < 3; chunk++) {
			struct drv *d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
			struct msg x;

			drv_ready_plain(d, "250-mx\r\n250 PIPELINING\r\n");
			msg_init(&x, "s@src.test", 1);
			/* Whole, 1-byte and 2-byte chunks: the state
			 * (line start, a CR) carries across reads. */
			drv_body(d, bodies[i], chunk);
			smtpc_send(d->c, &x.m);
			peer(d, "250 ok\r\n250 ok\r\n354 go\r\n");
			clear(d);
			while (smtpc_state(d->c) == SMTPC_BODY)
				assert_true(smtpc_pump(d->c, 1) > 0 ||
				    bodies[i][0] == '\0');
			assert_string_equal(d->out, wire[i]);
			drv_free(d);
		}
	}
}

static void
test_starttls(void **state)
{
	struct drv *d = drv_new(SMTPC_SMTP, SMTPC_TLS_VERIFY);
	const char *inj = "220 go ahead\r\n250 injected\r\n";

	peer(d, "220 mx\r\n");
	expect(d, "EHLO mail.elemta.test\r\n");
	peer(d, "250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n");
	expect(d, "STARTTLS\r\n");
	/* A reply pipelined behind the 220 is discarded (response
	 * injection), never read after the handshake. */
	assert_int_equal(smtpc_feed(d->c, inj, strlen(inj)), strlen(inj));
	assert_int_equal(d->nstarttls, 1);
	assert_int_equal(d->tls_mode, SMTPC_TLS_VERIFY);
	assert_int_equal(smtpc_state(d->c), SMTPC_TLS);
	assert_int_equal(smtpc_timer(d->c), SMTPC_TIMER_NONE);
	assert_int_equal(d->nready, 0);
	smtpc_tls_done(d->c, true, NULL);
	assert_true(smtpc_tls_active(d->c));
	expect(d, "EHLO mail.elemta.test\r\n");
	peer(d, "250-mx\r\n250 PIPELINING\r\n");
	assert_int_equal(smtpc_state(d->c), SMTPC_READY);
	assert_true(smtpc_ehlo(d->c)->pipelining);
	drv_free(d);

	/* Required but not offered: deferred 4.7.4, nothing sent. */
	d = drv_new(SMTPC_SMTP, SMTPC_TLS_ENCRYPT);
	peer(d, "220 mx\r\n");
	expect(d, "EHLO mail.elemta.test\r\n");
	peer(d, "250 mx\r\n");
	expect(d, "");
	assert_int_equal(d->nclose, 1);
	assert_int_equal(d->nready, 0);
	assert_int_equal(smtpc_failure(d->c)->result, OUTCOME_TEMPFAIL);
	assert_string_equal(smtpc_failure(d->c)->enhanced, "4.7.4");
	drv_free(d);

	/* MAY: refused STARTTLS goes on in plaintext; no STARTTLS offer
	 * too; a failed handshake defers. */
	d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	peer(d, "220 mx\r\n250-mx\r\n250 STARTTLS\r\n");
	expect(d, "EHLO mail.elemta.test\r\nSTARTTLS\r\n");
	peer(d, "454 4.7.0 TLS not available\r\n");
	assert_int_equal(smtpc_state(d->c), SMTPC_READY);
	assert_false(smtpc_tls_active(d->c));
	drv_free(d);
	d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	peer(d, "220 mx\r\n250 mx\r\n");
	assert_int_equal(smtpc_state(d->c), SMTPC_READY);
	drv_free(d);
	d = drv_new(SMTPC_SMTP, SMTPC_TLS_ENCRYPT);
	peer(d, "220 mx\r\n250-mx\r\n250 STARTTLS\r\n220 go\r\n");
	smtpc_tls_done(d->c, false, "certificate\nexpired");
	assert_int_equal(d->nclose, 1);
	assert_string_equal(smtpc_failure(d->c)->enhanced, "4.7.5");
	assert_null(strchr(smtpc_failure(d->c)->text, '\n'));
	/* Required TLS: another host, never plaintext. */
	assert_int_equal(d->retry_at_close, SMTPC_RETRY_NEXT_HOST);
	drv_free(d);
	/* MAY and the handshake failed: the caller may reconnect to the
	 * same host in plaintext, and knows it when the close comes. */
	d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	peer(d, "220 mx\r\n250-mx\r\n250 STARTTLS\r\n220 go\r\n");
	assert_int_equal(d->nstarttls, 1);
	smtpc_tls_done(d->c, false, "handshake failure");
	assert_int_equal(d->nclose, 1);
	assert_int_equal(smtpc_failure(d->c)->result, OUTCOME_TEMPFAIL);
	assert_string_equal(smtpc_failure(d->c)->enhanced, "4.7.5");
	assert_int_equal(d->retry_at_close, SMTPC_RETRY_PLAINTEXT);
	assert_int_equal(smtpc_retry(d->c), SMTPC_RETRY_PLAINTEXT);
	drv_free(d);
	/* ENCRYPT and STARTTLS refused: deferred. */
	d = drv_new(SMTPC_SMTP, SMTPC_TLS_ENCRYPT);
	peer(d, "220 mx\r\n250-mx\r\n250 STARTTLS\r\n554 no\r\n");
	assert_int_equal(smtpc_failure(d->c)->result, OUTCOME_TEMPFAIL);
	drv_free(d);
}

static void
test_auth(void **state)
{
	struct drv *d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);

	/* PLAIN after TLS: "\0user\0secret" in base64. */
	d->auth.user = "user";
	d->auth.password = "secret";
	d->cfg.auth = &d->auth;
	peer(d, "220 mx\r\n250-mx\r\n250-AUTH LOGIN PLAIN\r\n250 STARTTLS\r\n"
	    "220 go\r\n");
	smtpc_tls_done(d->c, true, NULL);
	clear(d);
	peer(d, "250-mx\r\n250 AUTH LOGIN PLAIN\r\n");
	expect(d, "AUTH PLAIN AHVzZXIAc2VjcmV0\r\n");
	assert_int_equal(smtpc_state(d->c), SMTPC_AUTH);
	peer(d, "235 2.7.0 ok\r\n");
	assert_int_equal(smtpc_state(d->c), SMTPC_READY);
	drv_free(d);

	/* LOGIN when PLAIN is not offered, plaintext allowed. */
	d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	d->auth.user = "user";
	d->auth.password = "secret";
	d->auth.allow_plaintext = true;
	d->cfg.auth = &d->auth;
	peer(d, "220 mx\r\n250-mx\r\n250 AUTH LOGIN\r\n");
	expect(d, "EHLO mail.elemta.test\r\nAUTH LOGIN\r\n");
	peer(d, "334 VXNlcm5hbWU6\r\n");
	expect(d, "dXNlcg==\r\n");
	peer(d, "334 UGFzc3dvcmQ6\r\n");
	expect(d, "c2VjcmV0\r\n");
	peer(d, "235 ok\r\n");
	assert_int_equal(smtpc_state(d->c), SMTPC_READY);
	drv_free(d);

	/* Never over plaintext unless allowed: deferred, no AUTH sent. */
	d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	d->auth.user = "user";
	d->auth.password = "secret";
	d->cfg.auth = &d->auth;
	peer(d, "220 mx\r\n250-mx\r\n250 AUTH PLAIN\r\n");
	expect(d, "EHLO mail.elemta.test\r\n");
	assert_int_equal(d->nclose, 1);
	assert_string_equal(smtpc_failure(d->c)->enhanced, "4.7.0");
	drv_free(d);

	/* Refused credentials defer (an operator's error, no bounce). */
	d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	d->auth.user = "user";
	d->auth.password = "wrong";
	d->auth.allow_plaintext = true;
	d->cfg.auth = &d->auth;
	peer(d, "220 mx\r\n250-mx\r\n250 AUTH PLAIN\r\n535 5.7.8 bad\r\n");
	assert_int_equal(d->nclose, 1);
	assert_int_equal(smtpc_failure(d->c)->result, OUTCOME_TEMPFAIL);
	assert_int_equal(smtpc_failure(d->c)->code, 535);
	drv_free(d);
}

static void
test_mail_parameters(void **state)
{
	struct drv *d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	struct msg x;

	drv_ready_plain(d, "250-mx\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n"
	    "250-8BITMIME\r\n250-SMTPUTF8\r\n250 DSN\r\n");
	msg_init(&x, "s@src.test", 2);
	x.m.size = 1234;
	x.m.eightbit = true;
	x.m.smtputf8 = true;
	x.m.ret = DSN_RET_HDRS;
	x.m.envid = "id+1=x";
	x.r[0].notify = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE;
	x.r[0].orcpt = "rfc822;A+b@dest.test";
	x.r[1].notify = DSN_NOTIFY_NEVER | DSN_NOTIFY_DELAY;
	smtpc_send(d->c, &x.m);
	expect(d, "MAIL FROM:<s@src.test> SIZE=1234 BODY=8BITMIME SMTPUTF8 "
	    "RET=HDRS ENVID=id+2B1+3Dx\r\n"
	    "RCPT TO:<a@dest.test> NOTIFY=SUCCESS,FAILURE "
	    "ORCPT=rfc822;A+2Bb@dest.test\r\n"
	    "RCPT TO:<b@dest.test> NOTIFY=NEVER\r\nDATA\r\n");
	drv_free(d);

	/* A peer without the extensions gets none of the parameters. */
	d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	drv_ready_plain(d, "250 mx\r\n");
	x.m.smtputf8 = false;
	smtpc_send(d->c, &x.m);
	expect(d, "MAIL FROM:<s@src.test>\r\n");
	drv_free(d);
}

static void
test_refused_before_mail(void **state)
{
	struct drv *d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	struct msg x;

	drv_ready_plain(d, "250-mx\r\n250 SIZE 1000\r\n");
	msg_init(&x, "s@src.test", 2);
	x.m.smtputf8 = true;
	smtpc_send(d->c, &x.m);
	expect(d, "");
	assert_int_equal(d->ndone, 1);
	assert_string_equal(x.r[1].outcome.enhanced, "5.6.7");
	assert_int_equal(x.r[1].outcome.result, OUTCOME_PERMFAIL);
	x.m.smtputf8 = false;
	x.m.size = 1001;
	smtpc_send(d->c, &x.m);
	expect(d, "");
	assert_string_equal(x.r[0].outcome.enhanced, "5.3.4");
	/* An address that would inject a command is never sent. */
	x.m.size = 10;
	x.r[0].address = "a@x.test>\r\nRSET";
	smtpc_send(d->c, &x.m);
	expect(d, "MAIL FROM:<s@src.test> SIZE=10\r\n");
	assert_string_equal(x.r[0].outcome.enhanced, "5.1.3");
	assert_null(strchr(x.r[0].outcome.text, '\n'));
	peer(d, "250 ok\r\n");
	expect(d, "RCPT TO:<b@dest.test>\r\n");
	assert_int_equal(smtpc_state(d->c), SMTPC_TXN);
	assert_int_equal(d->nready, 3);
	drv_free(d);
}

static void
test_greeting_failures(void **state)
{
	struct drv *d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);

	/* A 5xx greeting is this host refusing to talk, not the mail
	 * refused: deferred with a class 4 status, the 554 kept for the
	 * diagnostic, and the next host may be tried (Postfix's
	 * smtp_skip_5xx_greeting = yes). */
	peer(d, "554 5.3.2 no service\r\n");
	expect(d, "QUIT\r\n");
	assert_int_equal(d->nclose, 1);
	assert_int_equal(smtpc_failure(d->c)->result, OUTCOME_TEMPFAIL);
	assert_int_equal(smtpc_failure(d->c)->code, 554);
	assert_string_equal(smtpc_failure(d->c)->enhanced, "4.3.2");
	assert_non_null(strstr(smtpc_failure(d->c)->text, "554 5.3.2 no "
	    "service"));
	assert_int_equal(d->retry_at_close, SMTPC_RETRY_NEXT_HOST);
	/* After close nothing is read or sent. */
	peer(d, "220 late\r\n");
	expect(d, "");
	drv_free(d);

	d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	peer(d, "421 busy\r\n");
	assert_int_equal(smtpc_failure(d->c)->result, OUTCOME_TEMPFAIL);
	assert_string_equal(smtpc_failure(d->c)->enhanced, "4.0.0");
	assert_int_equal(d->retry_at_close, SMTPC_RETRY_NEXT_HOST);
	drv_free(d);

	d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	peer(d, "garbage\r\n");
	assert_int_equal(d->nclose, 1);
	assert_int_equal(smtpc_failure(d->c)->result, OUTCOME_TEMPFAIL);
	assert_string_equal(smtpc_failure(d->c)->enhanced, "4.5.0");
	drv_free(d);
}

static void
test_421_and_timeouts_in_transaction(void **state)
{
	struct drv *d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	struct msg x;

	drv_ready_plain(d, "250 mx\r\n");
	msg_init(&x, "s@src.test", 3);
	smtpc_send(d->c, &x.m);
	peer(d, "250 ok\r\n550 no\r\n");
	peer(d, "421 4.3.2 shutting down\r\n");
	assert_int_equal(d->ndone, 1);
	assert_int_equal(d->nclose, 1);
	assert_int_equal(x.r[0].outcome.result, OUTCOME_PERMFAIL);
	assert_int_equal(x.r[1].outcome.result, OUTCOME_TEMPFAIL);
	assert_int_equal(x.r[1].outcome.code, 421);
	assert_int_equal(x.r[2].outcome.result, OUTCOME_TEMPFAIL);
	drv_free(d);

	/* A timeout after the dot defers the accepted recipients. */
	d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	drv_ready_plain(d, "250-mx\r\n250 PIPELINING\r\n");
	msg_init(&x, "s@src.test", 1);
	drv_body(d, "b\r\n", 0);
	smtpc_send(d->c, &x.m);
	peer(d, "250 ok\r\n250 ok\r\n354 go\r\n");
	smtpc_pump(d->c, 100);
	smtpc_timeout(d->c);
	assert_int_equal(x.r[0].outcome.result, OUTCOME_TEMPFAIL);
	assert_string_equal(x.r[0].outcome.enhanced, "4.4.2");
	assert_int_equal(x.r[0].outcome.code, 0);
	assert_non_null(strstr(x.r[0].outcome.text, "end-of-data"));
	assert_int_equal(d->nclose, 1);
	drv_free(d);

	/* Greeting timer, then a lost connection. */
	d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	d->cfg.timeouts.greeting = 7;
	assert_int_equal(smtpc_timer(d->c), SMTPC_TIMER_GREETING);
	assert_int_equal(smtpc_timeout_seconds(d->c), 7);
	smtpc_abort(d->c, "connection reset");
	assert_int_equal(smtpc_failure(d->c)->result, OUTCOME_TEMPFAIL);
	assert_non_null(strstr(smtpc_failure(d->c)->text, "reset"));
	drv_free(d);
}

static void
test_unfinished_transactions(void **state)
{
	struct drv *d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	struct msg x;

	/* Pipelined, MAIL refused: its reason wins over the 503s. */
	drv_ready_plain(d, "250-mx\r\n250 PIPELINING\r\n");
	msg_init(&x, "s@src.test", 2);
	smtpc_send(d->c, &x.m);
	clear(d);
	peer(d, "553 5.7.1 sender refused\r\n503 5.5.1 no MAIL\r\n"
	    "503 5.5.1 no MAIL\r\n503 5.5.1 no valid recipients\r\n");
	assert_int_equal(x.r[0].outcome.code, 553);
	assert_int_equal(x.r[1].outcome.code, 553);
	assert_string_equal(x.r[1].outcome.enhanced, "5.7.1");
	expect(d, "");                       /* no RSET needed */
	assert_int_equal(smtpc_state(d->c), SMTPC_READY);

	/* Every RCPT refused, DATA 354 anyway: an empty message ends it. */
	smtpc_send(d->c, &x.m);
	clear(d);
	peer(d, "250 ok\r\n550 no\r\n550 no\r\n354 go\r\n");
	expect(d, ".\r\n");
	assert_int_equal(smtpc_state(d->c), SMTPC_DOT);
	peer(d, "554 no valid recipients\r\n");
	assert_int_equal(smtpc_state(d->c), SMTPC_READY);
	assert_int_equal(x.r[0].outcome.code, 550);
	drv_free(d);

	/* Lock step, every RCPT refused: RSET before reuse. */
	d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	drv_ready_plain(d, "250 mx\r\n");
	msg_init(&x, "s@src.test", 1);
	smtpc_send(d->c, &x.m);
	peer(d, "250 ok\r\n");
	clear(d);
	peer(d, "450 4.2.1 later\r\n");
	expect(d, "RSET\r\n");
	assert_int_equal(d->ndone, 1);
	assert_int_equal(smtpc_state(d->c), SMTPC_RSET);
	peer(d, "250 reset\r\n");
	assert_int_equal(smtpc_state(d->c), SMTPC_READY);
	assert_int_equal(d->nready, 2);

	/* DATA refused: the accepted recipients take its reply; a failed
	 * RSET ends the connection with QUIT. */
	smtpc_send(d->c, &x.m);
	peer(d, "250 ok\r\n250 ok\r\n");
	clear(d);
	peer(d, "451 4.3.0 try later\r\n");
	assert_int_equal(x.r[0].outcome.code, 451);
	expect(d, "RSET\r\n");
	peer(d, "500 what\r\n");
	expect(d, "QUIT\r\n");
	assert_int_equal(smtpc_state(d->c), SMTPC_QUIT);
	smtpc_abort(d->c, "eof");
	assert_int_equal(d->nclose, 1);
	assert_int_equal(smtpc_failure(d->c)->result, OUTCOME_PENDING);
	drv_free(d);
}

static void
test_body_read_error(void **state)
{
	struct drv *d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	struct msg x;

	drv_ready_plain(d, "250-mx\r\n250 PIPELINING\r\n");
	msg_init(&x, "s@src.test", 1);
	drv_body(d, "b\r\n", 0);
	d->body_fail = true;
	smtpc_send(d->c, &x.m);
	peer(d, "250 ok\r\n250 ok\r\n354 go\r\n");
	clear(d);
	smtpc_pump(d->c, 100);
	/* No final dot: closing is what makes the peer drop it. */
	assert_null(strstr(d->out, ".\r\n"));
	assert_int_equal(x.r[0].outcome.result, OUTCOME_TEMPFAIL);
	assert_string_equal(x.r[0].outcome.enhanced, "4.3.0");
	assert_int_equal(d->nclose, 1);
	/* Our own fault: no other host would do better. */
	assert_int_equal(d->retry_at_close, SMTPC_RETRY_NONE);
	drv_free(d);
}

static void
test_refusals_sent_from_ready(void **state)
{
	struct drv *d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	struct msg x;

	/* A queue of messages the peer cannot take, each sent from inside
	 * ops->ready: handed back one after another without the stack
	 * growing with their number. */
	drv_ready_plain(d, "250-mx\r\n250 PIPELINING\r\n");
	msg_init(&x, "s@src.test", 2);
	x.m.smtputf8 = true;
	d->resend = &x.m;
	d->resend_left = 10000;
	smtpc_send(d->c, &x.m);
	assert_int_equal(d->resend_left, 0);
	assert_int_equal(d->ndone, 10001);
	assert_int_equal(d->nready, 1 + 10001);
	assert_int_equal(d->max_depth, 1);
	assert_string_equal(x.r[1].outcome.enhanced, "5.6.7");
	assert_int_equal(smtpc_state(d->c), SMTPC_READY);
	expect(d, "");
	drv_free(d);
}

static void
test_talk_during_body(void **state)
{
	struct drv *d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);
	struct msg x;
	char *flood = malloc(REPLY_TOTAL_MAX + 2);

	assert_non_null(flood);
	drv_ready_plain(d, "250-mx\r\n250 PIPELINING\r\n");
	msg_init(&x, "s@src.test", 1);
	drv_body(d, "b\r\n", 0);
	smtpc_send(d->c, &x.m);
	peer(d, "250 ok\r\n250 ok\r\n354 go\r\n");
	assert_int_equal(smtpc_state(d->c), SMTPC_BODY);
	/* One early reply is kept for after the dot ... */
	assert_int_equal(smtpc_feed(d->c, "554 no\r\n", 8), 0);
	assert_int_equal(d->nclose, 0);
	/* ... a flood is not kept at all. */
	memset(flood, 'x', REPLY_TOTAL_MAX + 1);
	flood[REPLY_TOTAL_MAX + 1] = '\0';
	peer(d, flood);
	assert_int_equal(d->nclose, 1);
	assert_int_equal(x.r[0].outcome.result, OUTCOME_TEMPFAIL);
	assert_string_equal(x.r[0].outcome.enhanced, "4.5.0");
	free(flood);
	drv_free(d);
}

static void
test_unsolicited_reply_when_idle(void **state)
{
	struct drv *d = drv_new(SMTPC_SMTP, SMTPC_TLS_MAY);

	drv_ready_plain(d, "250 mx\r\n");
	peer(d, "421 4.4.2 idle too long\r\n");
	assert_int_equal(d->nclose, 1);
	assert_int_equal(smtpc_failure(d->c)->result, OUTCOME_TEMPFAIL);
	drv_free(d);
}

/* xorshift32 for the randomized conversation test. */
static uint32_t
rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void
test_random_conversations(void **state)
{
	static const char *const replies[] = {
		"220 hi\r\n", "250 ok\r\n", "250-mx\r\n250-PIPELINING\r\n"
		"250-STARTTLS\r\n250-DSN\r\n250 AUTH PLAIN LOGIN\r\n",
		"354 go\r\n", "334 x\r\n", "235 ok\r\n", "421 bye\r\n",
		"450 later\r\n", "550 no\r\n", "503 order\r\n", "221 bye\r\n",
		"garbage\r\n", "250-a\r\n251 b\r\n", "554 no\r\n",
	};
	const size_t nrep = sizeof(replies) / sizeof(replies[0]);

	/* Whatever the peer says, in whatever order: every message handed
	 * over comes back exactly once with every recipient decided, and
	 * nothing is written after close (drv_write, drv_done check). */
	for (uint32_t seed = 1; seed <= 3000; seed++) {
		uint32_t r = seed * 2654435761u;
		struct drv *d = drv_new(rnd(&r) % 3 == 0 ? SMTPC_LMTP :
		    SMTPC_SMTP, (enum smtpc_tls_mode)(rnd(&r) % 4));
		struct msg x;
		int sent = 0;

		d->auth.user = "u";
		d->auth.password = "p";
		d->auth.allow_plaintext = rnd(&r) % 2;
		if (rnd(&r) % 2)
			d->cfg.auth = &d->auth;
		drv_body(d, ".a\nb\r\n", 0);
		for (int step = 0; step < 40 && d->nclose == 0; step++) {
			switch (smtpc_state(d->c)) {
			case SMTPC_TLS:
				smtpc_tls_done(d->c, rnd(&r) % 4 != 0, "x");
				continue;
			case SMTPC_READY:
				if (rnd(&r) % 5 == 0) {
					smtpc_quit(d->c);
					continue;
				}
				msg_init(&x, "s@src.test", 1 + rnd(&r) % 4);
				d->body_pos = 0;
				sent++;
				smtpc_send(d->c, &x.m);
				continue;
			case SMTPC_BODY:
				if (rnd(&r) % 8 == 0)
					smtpc_timeout(d->c);
				else
					smtpc_pump(d->c, 1 + rnd(&r) % 8);
				continue;
			default:
				break;
			}
			if (rnd(&r) % 30 == 0) {
				smtpc_timeout(d->c);
				continue;
			}
			{
				const char *rep = replies[rnd(&r) % nrep];
				size_t used = smtpc_feed(d->c, rep, strlen(rep));

				assert_true(used == 0 || used == strlen(rep));
			}
		}
		if (d->nclose == 0)
			smtpc_abort(d->c, "test over");
		assert_int_equal(d->nclose, 1);
		assert_int_equal(smtpc_state(d->c), SMTPC_CLOSED);
		assert_int_equal(d->ndone, sent);
		drv_free(d);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lockstep_smtp),
		cmocka_unit_test(test_pipelining_and_reuse),
		cmocka_unit_test(test_helo_fallback),
		cmocka_unit_test(test_lmtp_one_reply_per_recipient),
		cmocka_unit_test(test_dot_stuffing),
		cmocka_unit_test(test_starttls),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_mail_parameters),
		cmocka_unit_test(test_refused_before_mail),
		cmocka_unit_test(test_greeting_failures),
		cmocka_unit_test(test_refusals_sent_from_ready),
		cmocka_unit_test(test_talk_during_body),
		cmocka_unit_test(test_421_and_timeouts_in_transaction),
		cmocka_unit_test(test_unfinished_transactions),
		cmocka_unit_test(test_body_read_error),
		cmocka_unit_test(test_unsolicited_reply_when_idle),
		cmocka_unit_test(test_random_conversations),
	};

	log_init("test_smtp_client", true, (enum log_level)0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
