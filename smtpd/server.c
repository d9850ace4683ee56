/*
 * server.c - one elemta-smtpd worker's event loop: listeners, accepted
 * connections (one bufferevent and one session each), connection limits,
 * the policy client, timeouts and the graceful stop.
 *
 * Called by main.c (server_run).  Runs unprivileged; everything read from
 * a client socket is untrusted and only ever handed to session_feed.
 * Per-connection memory is the bufferevent, a small struct conn and the
 * session: input buffers are drained as soon as they are parsed and the
 * message body streams to the spool file, so an idle session costs about
 * a kilobyte.
 *
 * Closing follows the "lingering close" of web servers: once the last
 * reply is flushed we shut down our sending side and discard input until
 * the client closes (or 2 s pass), so a client that kept talking does not
 * turn our final reply into a TCP reset.
 *
 * TLS (libevent's bufferevent_openssl over the same socket): on an smtps
 * listener the handshake runs first and the session starts once it is
 * done.  After STARTTLS the 220 is flushed in plaintext while reading is
 * off and every byte already buffered is dropped (the session logs how
 * many: CVE-2011-0411); then the plaintext bufferevent lets go of the
 * socket and a TLS one takes it over.  Anything the client sent behind
 * STARTTLS without waiting is either in the dropped buffer or is read as
 * TLS records, which fails the handshake: it is never executed.  A
 * failed or timed-out handshake is logged and ends only its connection.
 *
 * A mode local listener (a Unix socket for elemta-sendmail) has neither
 * TLS nor AUTH: the peer's uid, read from the kernel (local_peer.c), is
 * the session's authenticated user.  Its client is 127.0.0.1 to policyd
 * and the logs, and is not counted for server.max_connections_per_ip
 * (local users are limited by name, through sasl_username).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "addr.h"
#include "error.h"
#include "listen.h"
#include "local_peer.h"
#include "log.h"
#include "peer_table.h"
#include "policy_client.h"
#include "server.h"
#include "session.h"
#include "spool.h"
#include "stats.h"
#include "tls.h"

#define SERVER_WINDOW 16384          /* bytes handed to session_feed    */
#define SERVER_READ_HIGH (64 * 1024) /* stop reading above this backlog */
#define SERVER_WRITE_HIGH (64 * 1024) /* stop reading above this many
                                       * unsent reply bytes            */
#define SERVER_WRITE_LOW (16 * 1024)  /* ... and resume below this     */
#define SERVER_FLUSH_TIMEOUT_S 30    /* client must take our replies    */
#define SERVER_LINGER_S 2
#define SERVER_STOP_FLUSH_S 3        /* after the grace: last 421s out  */
#define SERVER_COMMIT_THREADS 8      /* concurrent fsyncs per worker    */
#define SERVER_HANDSHAKE_MS 60000    /* a TLS handshake must end within
                                        this (or the command timeout)   */
/* A deep accept queue: with SYN cookies on, a connection whose final ACK
 * meets a full queue is silently lost (the client waits for a greeting
 * forever), so bursts of connections need room.  The kernel clamps it to
 * net.core.somaxconn. */

enum conn_state {
	CONN_OPEN,       /* talking                                       */
	CONN_TLS_WAIT,   /* STARTTLS: flushing the 220, reading is off    */
	CONN_HANDSHAKE,  /* the TLS handshake runs (STARTTLS or smtps)    */
	CONN_CLOSING,    /* last reply queued, flushing                   */
	CONN_LINGER,     /* write side shut, discarding input until EOF   */
};

struct server;

struct listener {
	struct server *srv;
	struct evconnlistener *lev;
	enum config_listen_mode mode;
	struct event *retry;       /* re-enable after an accept error  */
	const char *address;
};

struct conn {
	struct server *srv;
	struct conn *prev, *next;
	struct bufferevent *bev;
	struct session *session;
	struct policy_request *preq;
	struct spool_job *job;     /* commit in progress               */
	struct addr_ip ip;         /* the client, as counted           */
	struct peer_table *peers;  /* where ip is counted, or NULL     */
	enum conn_state state;
	bool eof;                  /* the client half-closed           */
	bool draining;             /* inside conn_drain                */
	bool output_full;          /* reading paused: replies unsent   */
	struct event *ev_flush;    /* plain TCP: write replies directly */
	struct event *ev_delay;    /* a slowed-down AUTH answer is due    */
	bool flush_armed;
	bool tls;                  /* bev is a bufferevent_openssl     */
	bool tls_wanted;           /* the session asked for STARTTLS   */
	bool started;              /* session_start was called         */
	uint64_t read_timeout_ms;  /* as last set on the bufferevent   */
	time_t linger_until;       /* CONN_LINGER ends at the latest    */
};

struct server {
	const struct config *cfg;
	struct event_base *base;
	struct policy_client *pc;
	struct spool_committer *committer;
	struct tls_server *tls;    /* NULL without tls.certificate     */
	struct listener listeners[CONFIG_LISTEN_MAX];
	size_t nlisteners;
	struct conn *conns;
	unsigned nconns;
	struct peer_table *peers;  /* per-address counts of all workers */
	bool stopping;
	bool grace_over;           /* remaining sessions get 421 4.3.2 */
	struct event *sig_term, *sig_int, *grace, *hard_stop;
};

static const struct session_ops conn_ops;
static void conn_settle(struct conn *c);
static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_tls_switch(struct conn *c);
static void conn_tls_established(struct conn *c);
static void conn_tls_failed(struct conn *c, short what);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_after_eof(struct conn *c);
static void conn_flush_cb(evutil_socket_t fd, short what, void *arg);

/*==== Per-address connection counts ====*/

/* server_peers_open - the table shared by every smtpd worker of this
 * elemtactl (peer_table.h), or a private one when started alone.  A
 * table that was passed but cannot be used is a warning, not a failure:
 * the limit is then counted by this worker alone. */
static int
server_peers_open(struct server *srv, struct error *err)
{
	unsigned maxc = srv->cfg->server.max_connections;
	bool inherited;

	srv->peers = peer_table_from_env(maxc, &inherited, err);
	if (srv->peers == NULL && inherited) {
		log_warn("%s: server.max_connections_per_ip counts this "
		    "worker's connections only", err->text);
		srv->peers = peer_table_new_private(maxc, err);
	}
	if (srv->peers == NULL)
		return -1;
	if (inherited)
		log_info("connections per address: shared table, slot %u of %u",
		    peer_table_slot(srv->peers), peer_table_slots(srv->peers));
	return 0;
}

/* server_peers_add - count c's client.  The slot has room for every
 * session (elemtactl sizes the table by server.max_connections and
 * refuses a reload that raises it beyond that), so a full slot is a bug,
 * said once. */
static void
server_peers_add(struct server *srv, struct conn *c, const char *client)
{
	static bool said;

	if (peer_table_add(srv->peers, &c->ip) == 0) {
		c->peers = srv->peers;
		return;
	}
	if (!said)
		log_err("connect from unknown[%s]: the connection table is full "
		    "(%u addresses); this and further new addresses are not "
		    "counted for server.max_connections_per_ip", client,
		    peer_table_holds(srv->peers));
	said = true;
}

/*==== Connections ====*/

/* conn_free - the end of a connection: session (logs the disconnect and
 * removes a partial message), policy request, socket, counts. */
static void
conn_free(struct conn *c)
{
	struct server *srv = c->srv;

	if (c->preq != NULL)
		policy_client_cancel(c->preq);
	if (c->job != NULL)
		spool_job_cancel(c->job);
	session_free(c->session);
	if (c->ev_flush != NULL)
		event_free(c->ev_flush);
	if (c->ev_delay != NULL)
		event_free(c->ev_delay);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	if (c->peers != NULL)
		peer_table_remove(c->peers, &c->ip);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	srv->nconns--;
	smtpd_stats_session(0);
	free(c);
	if (srv->stopping && srv->nconns == 0)
		event_base_loopexit(srv->base, NULL);
}

/* conn_set_read_timeout - what the session allows now. */
static void
conn_set_read_timeout(struct conn *c, uint64_t ms)
{
	struct timeval rtv, wtv;

	if (ms == c->read_timeout_ms)
		return;
	c->read_timeout_ms = ms;
	rtv.tv_sec = (time_t)(ms / 1000);
	rtv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	wtv.tv_sec = SERVER_FLUSH_TIMEOUT_S;
	wtv.tv_usec = 0;
	bufferevent_set_timeouts(c->bev, &rtv, &wtv);
}

/* conn_drain - feed buffered input to the session until it stops taking
 * it (a decision pending, end of data, closing) or the buffer is empty. */
static void
conn_drain(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	if (c->draining || c->state != CONN_OPEN)
		return;
	c->draining = true;
	for (;;) {
		size_t avail = evbuffer_get_length(in), win, used;
		enum session_state st = session_state(c->session);
		const char *p;

		if (avail == 0 || c->state != CONN_OPEN)
			break;
		if (!session_wants_input(c->session) &&
		    st != SESSION_CONNECT_POLICY)
			break;
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) >
		    SERVER_WRITE_HIGH) {
			/* A client that pipelines without reading our
			 * replies: stop reading until it takes them, so
			 * TCP pushes back instead of our memory growing
			 * (conn_write_cb resumes). */
			c->output_full = true;
			bufferevent_disable(c->bev, EV_READ);
			break;
		}
		win = avail < SERVER_WINDOW ? avail : SERVER_WINDOW;
		p = (const char *)evbuffer_pullup(in, (ev_ssize_t)win);
		if (p == NULL)
			break;
		used = session_feed(c->session, p, win, avail);
		if (used > 0)
			evbuffer_drain(in, used);
		if (used == 0)
			break;
	}
	c->draining = false;
	if (c->tls_wanted && c->state == CONN_OPEN) {
		/* STARTTLS: nothing buffered now is ever read (the session
		 * logged how much there was), and nothing more is read until
		 * TLS takes over the socket. */
		c->tls_wanted = false;
		evbuffer_drain(in, evbuffer_get_length(in));
		bufferevent_disable(c->bev, EV_READ);
		c->state = CONN_TLS_WAIT;
		return;
	}
	if (c->state == CONN_OPEN) {
		uint64_t t = session_read_timeout_ms(c->session);

		if (t == 0)
			session_timeout(c->session);
		else
			conn_set_read_timeout(c, t);
	}
}

/* conn_linger_read - discard whatever the client still sends, but not
 * for longer than the linger time (a client that keeps sending would
 * otherwise keep resetting the read timeout). */
static void
conn_linger_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	evbuffer_drain(in, evbuffer_get_length(in));
	if (time(NULL) > c->linger_until)
		conn_free(c);
}

/* conn_settle - after any session activity: a closing connection whose
 * replies are all sent goes to the lingering close.  Callers must not
 * touch c afterwards (it may be freed). */
static void
conn_settle(struct conn *c)
{
	struct timeval tv = { SERVER_LINGER_S, 0 };

	if (c->state == CONN_TLS_WAIT &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		conn_tls_switch(c);
		return;
	}
	if (c->state != CONN_CLOSING ||
	    evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
		return;
	if (c->eof) {
		conn_free(c);
		return;
	}
	c->state = CONN_LINGER;
	c->linger_until = time(NULL) + SERVER_LINGER_S;
	if (c->tls) {
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

		/* close_notify before the TCP half-close: a polite end
		 * for clients that check (a failure changes nothing). */
		if (ssl != NULL && SSL_is_init_finished(ssl))
			(void)SSL_shutdown(ssl);
		ERR_clear_error();
	}
	shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	/* EOF, error or the linger timeout end it in conn_event_cb. */
	bufferevent_setcb(c->bev, conn_linger_read, NULL, conn_event_cb, c);
	bufferevent_set_timeouts(c->bev, &tv, NULL);
	bufferevent_enable(c->bev, EV_READ);
}

/* conn_read_cb - client bytes arrived. */
static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	conn_drain(c);
	conn_settle(c);
}

/* conn_write_cb - output drained to the low watermark: resume reading
 * paused by a backlog of replies, maybe finish a close. */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	/* Plain TCP: libevent's write event only finishes what a direct
	 * write left (conn_flush_cb); off again once all is out. */
	if (!c->tls && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_disable(bev, EV_WRITE);
	if (c->output_full && c->state == CONN_OPEN) {
		c->output_full = false;
		bufferevent_enable(bev, EV_READ);
		conn_drain(c);
	}
	conn_settle(c);
}

/* conn_event_cb - EOF, errors and timeouts. */
static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (c->state == CONN_HANDSHAKE) {
		if (what & BEV_EVENT_CONNECTED)
			conn_tls_established(c);
		else
			conn_tls_failed(c, what);
		return;
	}
	if (c->state == CONN_LINGER) {
		/* EOF, error or the linger timeout: done either way. */
		conn_free(c);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (what & BEV_EVENT_WRITING) {
			/* The client does not read our replies. */
			conn_free(c);
			return;
		}
		session_timeout(c->session);
		conn_settle(c);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* The client will send nothing more, but may still read:
		 * answer what it sent, then close. */
		c->eof = true;
		conn_after_eof(c);
		return;
	}
	/* BEV_EVENT_ERROR: the connection is gone. */
	conn_free(c);
}

/* conn_after_eof - a half-closed client: once no decision or commit is
 * pending, the replies so far are flushed and the connection closed
 * (buffered commands behind a pending decision are answered first). */
static void
conn_after_eof(struct conn *c)
{
	if (c->state == CONN_OPEN &&
	    session_pending(c->session) == SESSION_PENDING_NONE)
		c->state = CONN_CLOSING;
	conn_settle(c);
}

/*==== The session seam ====*/

/* conn_op_write - replies into the bufferevent's output, sent once the
 * input of this round is used up (RFC 2920 flushing): by conn_flush_cb on
 * plain TCP, by the bufferevent's own write event under TLS. */
static void
conn_op_write(void *io, const char *data, size_t len)
{
	struct conn *c = io;

	bufferevent_write(c->bev, data, len);
	if (!c->tls && !c->flush_armed) {
		c->flush_armed = true;
		event_active(c->ev_flush, EV_TIMEOUT, 0);
	}
}

/* conn_flush_cb - the replies of this loop turn, written straight to the
 * socket (one writev).  Leaving the bufferevent's write event off until
 * a write comes up short spares two epoll_ctl calls per reply - most of
 * smtpd's system calls per message.  Runs after the callbacks of the
 * turn that produced the replies, so pipelined replies go out together. */
static void
conn_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *out = bufferevent_get_output(c->bev);

	int n;

	c->flush_armed = false;
	if (c->tls || evbuffer_get_length(out) == 0)
		return;
	/* A socket bufferevent keeps its output's start frozen so that only
	 * its own write callback drains it; that callback thaws it around
	 * its write in the same way. */
	evbuffer_unfreeze(out, 1);
	n = evbuffer_write(out, bufferevent_getfd(c->bev));
	evbuffer_freeze(out, 1);
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		/* The connection is gone. */
		conn_free(c);
		return;
	}
	if (evbuffer_get_length(out) > 0) {
		/* The rest when the socket takes it, within the flush
		 * timeout; conn_write_cb turns the event off again. */
		bufferevent_enable(c->bev, EV_WRITE);
		return;
	}
	conn_write_cb(c->bev, c);
}

/* conn_op_close - stop reading; conn_settle finishes the close. */
static void
conn_op_close(void *io)
{
	struct conn *c = io;

	if (c->state == CONN_OPEN)
		c->state = CONN_CLOSING;
}

/* conn_op_pending - unconsumed input. */
static size_t
conn_op_pending(void *io)
{
	struct conn *c = io;

	return evbuffer_get_length(bufferevent_get_input(c->bev));
}

/* conn_resume - after an asynchronous answer: read the input that
 * waited behind it, honour a stop whose grace is over, finish closes. */
static void
conn_resume(struct conn *c)
{
	if (c->srv->grace_over && c->state == CONN_OPEN &&
	    session_pending(c->session) == SESSION_PENDING_NONE)
		session_shutdown(c->session);
	conn_drain(c);
	if (c->eof)
		conn_after_eof(c);
	else
		conn_settle(c);
}

/* conn_policy_done - the policy answer goes to the session. */
static void
conn_policy_done(void *arg, const struct policy_result *res)
{
	struct conn *c = arg;

	c->preq = NULL;
	session_policy_done(c->session, res);
	conn_resume(c);
}

/* conn_commit_done - the message is on disk (or not). */
static void
conn_commit_done(void *arg, int rc, const char *errtext)
{
	struct conn *c = arg;

	c->job = NULL;
	session_commit_done(c->session, rc, errtext);
	conn_resume(c);
}

/* conn_op_commit - hand the accepted message to the commit threads. */
static void
conn_op_commit(void *io, struct spool_msg *m, const struct spool_envelope *env,
    enum spool_dest dest)
{
	struct conn *c = io;

	c->job = spool_commit_submit(c->srv->committer, m, env, dest,
	    c->srv->cfg->spool.fsync, conn_commit_done, c);
}

/* conn_op_policy - start a request on the worker's policy client. */
static int
conn_op_policy(void *io, struct strbuf *req, int fd, char *why,
    size_t whylen)
{
	struct conn *c = io;

	c->preq = policy_client_submit(c->srv->pc, req, fd, conn_policy_done,
	    c, why, whylen);
	return c->preq != NULL ? 0 : -1;
}

/* conn_delay_cb - the session's delay is over. */
static void
conn_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	session_delay_done(c->session);
	conn_resume(c);
}

/* conn_op_delay - call session_delay_done after ms (the connection
 * only waits: the policy connection is not held). */
static void
conn_op_delay(void *io, uint32_t ms)
{
	struct conn *c = io;
	struct timeval tv = { (time_t)(ms / 1000),
	    (suseconds_t)((ms % 1000) * 1000) };

	if (c->ev_delay == NULL)
		c->ev_delay = evtimer_new(c->srv->base, conn_delay_cb, c);
	if (c->ev_delay == NULL)
		fatal("smtpd: evtimer_new failed");
	if (evtimer_add(c->ev_delay, &tv) != 0)
		event_active(c->ev_delay, EV_TIMEOUT, 0);   /* answer now */
}

/* conn_op_starttls - the 220 is queued: conn_drain drops the input and
 * stops reading, conn_settle switches once the 220 is out. */
static void
conn_op_starttls(void *io)
{
	struct conn *c = io;

	c->tls_wanted = true;
}

static const struct session_ops conn_ops = {
	.write = conn_op_write,
	.close = conn_op_close,
	.pending = conn_op_pending,
	.policy = conn_op_policy,
	.commit = conn_op_commit,
	.starttls = conn_op_starttls,
	.delay = conn_op_delay,
};

/*==== TLS ====*/

/* conn_handshake_timeout - how long a handshake may take. */
static void
conn_handshake_timeout(struct conn *c)
{
	uint64_t ms = c->srv->cfg->server.command_timeout_ms;

	if (ms == 0 || ms > SERVER_HANDSHAKE_MS)
		ms = SERVER_HANDSHAKE_MS;
	c->read_timeout_ms = 0;    /* force: a new bufferevent */
	conn_set_read_timeout(c, ms);
}

/* conn_tls_setup - a TLS bufferevent accepting on fd (taken over: closed
 * on failure); NULL when OpenSSL or libevent cannot make one. */
static struct bufferevent *
conn_tls_setup(struct server *srv, int fd)
{
	struct bufferevent *bev;
	SSL *ssl = tls_server_ssl(srv->tls);

	if (ssl == NULL) {
		close(fd);
		return NULL;
	}
	/* With BEV_OPT_CLOSE_ON_FREE the bufferevent owns ssl and fd, on
	 * failure too. */
	bev = bufferevent_openssl_socket_new(srv->base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		return NULL;
	/* A client that closes without close_notify just ends the
	 * session (SMTP has its own end markers). */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/* conn_watch - the callbacks and buffer bounds of an open connection:
 * at most SERVER_READ_HIGH unread input, and write callbacks once the
 * replies drain to SERVER_WRITE_LOW (conn_write_cb). */
static void
conn_watch(struct conn *c)
{
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, SERVER_READ_HIGH);
	bufferevent_setwatermark(c->bev, EV_WRITE, SERVER_WRITE_LOW, 0);
	if (!c->tls)
		bufferevent_disable(c->bev, EV_WRITE);
}

/* conn_tls_begin - c->bev is a fresh TLS bufferevent: wait for the
 * handshake. */
static void
conn_tls_begin(struct conn *c)
{
	c->tls = true;
	c->state = CONN_HANDSHAKE;
	conn_watch(c);
	conn_handshake_timeout(c);
	bufferevent_enable(c->bev, EV_READ);
}

/* conn_tls_switch - the 220 to STARTTLS is out: the plaintext
 * bufferevent lets go of the socket and a TLS one takes it over. */
static void
conn_tls_switch(struct conn *c)
{
	int fd = bufferevent_getfd(c->bev);

	/* fd -1 first, so freeing the old bufferevent does not close the
	 * socket; it had nothing left to send and reading was off. */
	bufferevent_setfd(c->bev, -1);
	bufferevent_free(c->bev);
	c->bev = conn_tls_setup(c->srv, fd);
	if (c->bev == NULL) {
		log_err("sid=%s cannot start TLS: out of memory",
		    session_id(c->session));
		session_tls_failed(c->session, "cannot set up TLS");
		conn_free(c);
		return;
	}
	conn_tls_begin(c);
}

/* conn_tls_established - the handshake is done: tell the session (and
 * start it on an smtps listener), then read what is waiting. */
static void
conn_tls_established(struct conn *c)
{
	struct tls_info info;
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	memset(&info, 0, sizeof(info));
	if (ssl != NULL)
		tls_describe(ssl, &info);
	c->state = CONN_OPEN;
	session_tls_started(c->session, info.protocol, info.cipher);
	c->read_timeout_ms = 0;
	conn_set_read_timeout(c, c->srv->cfg->server.command_timeout_ms);
	if (!c->started) {
		c->started = true;
		session_start(c->session);
	}
	conn_drain(c);
	conn_settle(c);
}

/* conn_tls_failed - the handshake failed, timed out or the client left:
 * logged by the session; only this connection ends. */
static void
conn_tls_failed(struct conn *c, short what)
{
	char why[256];
	unsigned long e, first = 0;

	while ((e = bufferevent_get_openssl_error(c->bev)) != 0)
		if (first == 0)
			first = e;
	ERR_clear_error();
	if (first != 0)
		tls_error_text(first, why, sizeof(why));
	else if (what & BEV_EVENT_TIMEOUT)
		str_copy(why, "timeout", sizeof(why));
	else if (what & BEV_EVENT_EOF)
		str_copy(why, "connection closed by the client", sizeof(why));
	else if (errno != 0)
		snprintf(why, sizeof(why), "%s", strerror(errno));
	else
		str_copy(why, "connection lost", sizeof(why));
	session_tls_failed(c->session, why);
	conn_free(c);
}

/*==== Accepting ====*/

/* server_refuse - answer a connection over a limit and close it. */
static void
server_refuse(struct server *srv, int fd, const char *text)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "421 4.7.0 %s %s\r\n",
	    srv->cfg->server.hostname, text);

	if (n > 0)
		(void)send(fd, buf, (size_t)n < sizeof(buf) ? (size_t)n :
		    sizeof(buf) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	smtpd_stats_add(SMTPD_STAT_CONNECTIONS_REFUSED, 1);
	shutdown(fd, SHUT_WR);
	close(fd);
}

/* server_sockname - canonical local address and port. */
static void
server_sockname(int fd, char *addr, size_t size, unsigned *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct addr_ip ip;

	str_copy(addr, "unknown", size);
	*port = 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
	    addr_ip_from_sockaddr((struct sockaddr *)&ss, &ip) < 0)
		return;
	addr_ip_format(&ip, addr, size);
	if (ss.ss_family == AF_INET)
		*port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
		*port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* The client and server address of a local listener's sessions. */
#define SERVER_LOCAL_ADDRESS "127.0.0.1"

/* server_accept_local - a local listener's peer: its credentials, or
 * refused (421) when the kernel gives none.  0, or -1 (fd closed). */
static int
server_accept_local(struct server *srv, struct listener *l, int fd,
    struct local_peer *lp, struct addr_ip *ip)
{
	struct error err;

	if (local_peer_identify(fd, lp, &err) < 0) {
		log_warn("connect on %s refused: %s", l->address, err.text);
		server_refuse(srv, fd, "Error: cannot identify the local user");
		return -1;
	}
	(void)addr_ip_parse(SERVER_LOCAL_ADDRESS, ip);
	return 0;
}

/* server_accept_cb - limits first, then a session. */
static void
server_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct listener *l = arg;
	struct server *srv = l->srv;
	const struct config *cfg = srv->cfg;
	char client[ADDR_TEXT_MAX], local[ADDR_TEXT_MAX];
	struct session_peer peer;
	struct local_peer lp;
	struct addr_ip ip;
	struct conn *c;
	unsigned cport = 0, lport, from_ip;
	bool is_local = l->mode == CONFIG_MODE_LOCAL;

	if (is_local) {
		if (server_accept_local(srv, l, fd, &lp, &ip) < 0)
			return;
	} else if (addr_ip_from_sockaddr(sa, &ip) < 0) {
		close(fd);
		return;
	}
	addr_ip_format(&ip, client, sizeof(client));
	if (sa->sa_family == AF_INET)
		cport = ntohs(((struct sockaddr_in *)sa)->sin_port);
	else if (sa->sa_family == AF_INET6)
		cport = ntohs(((struct sockaddr_in6 *)sa)->sin6_port);
	if (srv->nconns >= cfg->server.max_connections) {   /* >= 1 */
		log_warn("connect from unknown[%s]:%u refused: too many "
		    "connections (%u)", client, cport, srv->nconns);
		server_refuse(srv, fd, "Error: too many connections");
		return;
	}
	/* Summed over every smtpd worker (peer_table.c states how far
	 * accepts racing in several workers at once can overshoot). */
	from_ip = is_local ? 0 : peer_table_count(srv->peers, &ip);
	if (from_ip >= cfg->server.max_connections_per_ip) {
		log_warn("connect from unknown[%s]:%u refused: too many "
		    "connections from this address (%u)", client, cport,
		    from_ip);
		server_refuse(srv, fd,
		    "Error: too many connections from your address");
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->srv = srv;
	if (is_local) {
		str_copy(local, SERVER_LOCAL_ADDRESS, sizeof(local));
		lport = 0;
	} else {
		server_sockname(fd, local, sizeof(local), &lport);
	}
	if (l->mode == CONFIG_MODE_SMTPS)
		c->bev = conn_tls_setup(srv, fd);
	else if ((c->bev = bufferevent_socket_new(srv->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		close(fd);
	if (c->bev != NULL &&
	    (c->ev_flush = event_new(srv->base, -1, 0, conn_flush_cb, c)) ==
	    NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (c->bev == NULL) {
		log_err("connect from unknown[%s]:%u: cannot set up the "
		    "connection (out of memory)", client, cport);
		free(c);
		return;
	}
	c->ip = ip;
	if (!is_local)
		server_peers_add(srv, c, client);
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	smtpd_stats_session(1);

	peer.client_address = client;
	peer.client_port = cport;
	peer.server_address = local;
	peer.server_port = lport;
	peer.mode = l->mode;
	peer.starttls = srv->tls != NULL && l->mode != CONFIG_MODE_SMTPS &&
	    !is_local;
	c->session = session_new(cfg, &conn_ops, c, &peer);
	if (is_local)
		session_local_user(c->session, lp.user, (unsigned long)lp.uid,
		    (long)lp.pid);
	if (l->mode == CONFIG_MODE_SMTPS) {
		/* Implicit TLS (RFC 8314): the greeting waits for the
		 * handshake (conn_tls_established starts the session). */
		conn_tls_begin(c);
		return;
	}
	conn_watch(c);
	conn_set_read_timeout(c, cfg->server.command_timeout_ms);
	bufferevent_enable(c->bev, EV_READ);
	c->started = true;
	session_start(c->session);
	conn_settle(c);
}

/* server_retry_cb - re-enable a listener paused after an accept error. */
static void
server_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	if (l->lev != NULL)
		evconnlistener_enable(l->lev);
}

/* server_accept_error_cb - EMFILE and friends: pause a second instead of
 * spinning on a listener that cannot accept. */
static void
server_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct listener *l = arg;
	struct timeval tv = { 1, 0 };

	log_warn("accept on %s: %s", l->address, strerror(errno));
	evconnlistener_disable(lev);
	evtimer_add(l->retry, &tv);
}

/*==== Listeners ====*/

/* server_bind - --bind: listen on one server.listen entry ourselves (a
 * local listener's socket as the invoking user, with socket_mode). */
static int
server_bind(const struct config_listen *ls, struct error *err)
{
	if (ls->mode == CONFIG_MODE_LOCAL)
		return listen_unix(ls->path, ls->socket_mode, false, 0, 0, err);
	return listen_tcp(ls->host, ls->port, ls->address, err);
}

/* server_inherited_fds - parse ELEMTA_LISTEN_FDS ("3,4"). */
static int
server_inherited_fds(const struct config *cfg, int *fds, struct error *err)
{
	const char *env = getenv("ELEMTA_LISTEN_FDS");
	size_t n = 0;

	if (env == NULL || *env == '\0')
		return error_set(err, "ELEMTA_LISTEN_FDS is not set (started "
		    "without elemtactl? use --bind)");
	while (*env != '\0') {
		char *end;
		long v = strtol(env, &end, 10);

		if (end == env || v < 0 || v > 65535 || n >= CONFIG_LISTEN_MAX ||
		    (*end != ',' && *end != '\0'))
			return error_set(err, "bad ELEMTA_LISTEN_FDS");
		fds[n++] = (int)v;
		env = *end == ',' ? end + 1 : end;
	}
	if (n != cfg->server.listen_count)
		return error_set(err, "ELEMTA_LISTEN_FDS has %zu descriptors "
		    "but server.listen has %zu entries", n,
		    cfg->server.listen_count);
	return (int)n;
}

/* server_listen - one evconnlistener per server.listen entry. */
static int
server_listen(struct server *srv, enum server_listen_source src,
    struct error *err)
{
	const struct config *cfg = srv->cfg;
	int fds[CONFIG_LISTEN_MAX];

	if (src == SERVER_LISTEN_INHERITED) {
		if (server_inherited_fds(cfg, fds, err) < 0)
			return -1;
	} else {
		for (size_t i = 0; i < cfg->server.listen_count; i++) {
			fds[i] = server_bind(&cfg->server.listen[i], err);
			if (fds[i] < 0) {
				while (i-- > 0)
					close(fds[i]);
				return -1;
			}
		}
	}
	for (size_t i = 0; i < cfg->server.listen_count; i++) {
		const struct config_listen *ls = &cfg->server.listen[i];
		struct listener *l = &srv->listeners[srv->nlisteners];
		int acc = 0;
		socklen_t alen = sizeof(acc);

		if (ls->mode == CONFIG_MODE_SMTPS && srv->tls == NULL) {
			/* config_load refuses this; a defence in depth. */
			for (size_t k = i; k < cfg->server.listen_count; k++)
				close(fds[k]);
			return error_set(err, "listener %s: mode smtps needs "
			    "tls.certificate and tls.key", ls->address);
		}
		if (ls->mode == CONFIG_MODE_SUBMISSION &&
		    cfg->auth.users_file[0] == '\0')
			log_warn("listener %s: mode submission requires AUTH, "
			    "but auth.users_file is not set: MAIL will be "
			    "refused there", ls->address);
		else if (ls->mode == CONFIG_MODE_SUBMISSION &&
		    srv->tls == NULL && cfg->auth.require_tls)
			log_warn("listener %s: mode submission requires AUTH, "
			    "which needs TLS (auth.require_tls), but there is no "
			    "tls.certificate: MAIL will be refused there",
			    ls->address);
		if (getsockopt(fds[i], SOL_SOCKET, SO_ACCEPTCONN, &acc, &alen) == 0 &&
		    !acc && listen(fds[i], LISTEN_BACKLOG) < 0)
			return error_set(err, "listen %s (fd %d): %s",
			    ls->address, fds[i], strerror(errno));
		evutil_make_socket_nonblocking(fds[i]);
		evutil_make_socket_closeonexec(fds[i]);
		l->srv = srv;
		l->mode = ls->mode;
		l->address = ls->address;
		l->retry = evtimer_new(srv->base, server_retry_cb, l);
		/* Backlog 0: already listening.  (-1 would make libevent
		 * call listen(fd, 128) and shrink the queue.) */
		l->lev = evconnlistener_new(srv->base, server_accept_cb, l,
		    LEV_OPT_CLOSE_ON_FREE, 0, fds[i]);
		if (l->lev == NULL || l->retry == NULL)
			return error_set(err, "listen %s: evconnlistener_new "
			    "failed", ls->address);
		evconnlistener_set_error_cb(l->lev, server_accept_error_cb);
		srv->nlisteners++;
		log_info("listening on %s (mode %s, fd %d)", ls->address,
		    config_listen_mode_name(ls->mode), fds[i]);
	}
	return 0;
}

/*==== Stopping ====*/

/* server_hard_stop_cb - the last 421s had their chance: exit. */
static void
server_hard_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	event_base_loopexit(srv->base, NULL);
}

/* server_grace_cb - the grace period is over: 421 4.3.2 to everyone. */
static void
server_grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	struct conn *c = srv->conns, *next;
	struct timeval tv = { SERVER_STOP_FLUSH_S, 0 };

	log_info("shutdown grace over: closing %u session(s)", srv->nconns);
	srv->grace_over = true;
	evtimer_add(srv->hard_stop, &tv);
	while (c != NULL) {
		next = c->next;
		/* A handshake in progress has nobody to say goodbye to. */
		if (c->state == CONN_TLS_WAIT || c->state == CONN_HANDSHAKE) {
			conn_free(c);
			c = next;
			continue;
		}
		/* A message being committed gets its 250 first (conn_resume
		 * shuts the session down right after). */
		if (c->state == CONN_OPEN &&
		    session_pending(c->session) != SESSION_PENDING_COMMIT) {
			if (c->preq != NULL) {
				policy_client_cancel(c->preq);
				c->preq = NULL;
			}
			session_shutdown(c->session);
			conn_settle(c);
		}
		c = next;
	}
}

/* server_signal_cb - SIGTERM/SIGINT: stop accepting, let sessions end. */
static void
server_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;
	struct timeval tv;
	uint64_t ms = srv->cfg->server.shutdown_grace_ms;

	if (srv->stopping)
		return;
	srv->stopping = true;
	log_info("signal %d: stopping; %u session(s) get up to %llu ms",
	    (int)sig, srv->nconns, (unsigned long long)ms);
	for (size_t i = 0; i < srv->nlisteners; i++) {
		if (srv->listeners[i].lev != NULL)
			evconnlistener_free(srv->listeners[i].lev);
		srv->listeners[i].lev = NULL;
		evtimer_del(srv->listeners[i].retry);
	}
	if (srv->nconns == 0) {
		event_base_loopexit(srv->base, NULL);
		return;
	}
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	evtimer_add(srv->grace, &tv);
}

/*==== Entry ====*/

/* server_run - see server.h. */
int
server_run(const struct config *cfg, enum server_listen_source src,
    struct error *err)
{
	struct server *srv = xcalloc(1, sizeof(*srv));
	/* At least POLICY_LANES_MIN: AUTH requests then have connections of
	 * their own (policy_client.h). */
	unsigned pool = cfg->policyd.workers * 2;
	int rc = 0;

	srv->cfg = cfg;
	srv->base = event_base_new();
	if (srv->base == NULL) {
		free(srv);
		return error_set(err, "event_base_new failed");
	}
	if (cfg->tls.certificate[0] != '\0' &&
	    (srv->tls = tls_server_new(cfg, err)) == NULL) {
		rc = -1;
		goto out;
	}
	if (server_peers_open(srv, err) < 0) {
		rc = -1;
		goto out;
	}
	if (server_listen(srv, src, err) < 0) {
		rc = -1;
		goto out;
	}
	if (srv->nlisteners == 0) {
		rc = error_set(err, "no usable listener");
		goto out;
	}
	srv->pc = policy_client_new(srv->base, cfg->policyd.socket,
	    pool < POLICY_LANES_MIN ? POLICY_LANES_MIN : pool, cfg->policyd.timeout_ms);
	{
		/* The milters' timeouts added up: policyd's per-milter
		 * fail_mode decides a slow milter, not this wait. */
		uint64_t extra = 0;

		for (size_t i = 0; i < cfg->milter_count; i++)
			extra += cfg->milters[i].timeout_ms;
		policy_client_set_fd_wait(srv->pc, extra > 0 ? extra + 1000 : 0);
	}
	policy_client_connect_all(srv->pc);
	srv->committer = spool_committer_new(srv->base, cfg->spool.path,
	    SERVER_COMMIT_THREADS, err);
	if (srv->committer == NULL) {
		rc = -1;
		goto out;
	}
	srv->sig_term = evsignal_new(srv->base, SIGTERM, server_signal_cb, srv);
	srv->sig_int = evsignal_new(srv->base, SIGINT, server_signal_cb, srv);
	srv->grace = evtimer_new(srv->base, server_grace_cb, srv);
	srv->hard_stop = evtimer_new(srv->base, server_hard_stop_cb, srv);
	if (srv->sig_term == NULL || srv->sig_int == NULL ||
	    srv->grace == NULL || srv->hard_stop == NULL) {
		rc = error_set(err, "event setup failed");
		goto out;
	}
	evsignal_add(srv->sig_term, NULL);
	evsignal_add(srv->sig_int, NULL);
	smtpd_stats_start(srv->base, cfg);
	log_info("ready: %zu listener(s), policy socket %s, pool %u",
	    srv->nlisteners, cfg->policyd.socket, pool < POLICY_LANES_MIN ? POLICY_LANES_MIN : pool);

	event_base_dispatch(srv->base);

	while (srv->conns != NULL)
		conn_free(srv->conns);
	log_info("stopped");
out:
	for (size_t i = 0; i < srv->nlisteners; i++) {
		if (srv->listeners[i].lev != NULL)
			evconnlistener_free(srv->listeners[i].lev);
		if (srv->listeners[i].retry != NULL)
			event_free(srv->listeners[i].retry);
	}
	/* Before the policy client: joining the threads may run callbacks of
	 * connections that are gone (cancelled, so only cleanup). */
	spool_committer_free(srv->committer);
	policy_client_free(srv->pc);
	tls_server_free(srv->tls);
	if (srv->sig_term)
		event_free(srv->sig_term);
	if (srv->sig_int)
		event_free(srv->sig_int);
	if (srv->grace)
		event_free(srv->grace);
	if (srv->hard_stop)
		event_free(srv->hard_stop);
	smtpd_stats_stop();
	/* After the connections: conn_free removes their counts. */
	peer_table_close(srv->peers);
	event_base_free(srv->base);
	free(srv);
	return rc;
}
