/*
 * relay.c - SMTP and LMTP delivery: connections per next hop around
 * queued/smtp_client.c (contract in relay.h).
 *
 * Called by queue.c (relay_submit) and the event loop.  Each connection
 * is a bufferevent (a socket, later wrapped by bufferevent_openssl when
 * STARTTLS succeeds), a client state machine and one timer re-armed
 * after every call into the client with the RFC 5321 timeout it names.
 * Input from next hops is untrusted: it only ever reaches smtpc_feed
 * (reply.c parses it).  The client's callbacks never free the
 * connection: close marks it dead and a zero-delay event frees it from
 * the loop, so no callback runs on freed memory.
 *
 * Host names of next hops are resolved with getaddrinfo (blocking; the
 * asynchronous resolver comes with the DNS issue); IP literals and Unix
 * sockets need no lookup.  The answer, or the failure, is kept per next
 * hop for RELAY_RESOLVE_SECONDS, so the loop blocks for at most one
 * resolver timeout per next hop in that time, not one per connection.  Until then an `smtp:host` next hop (MX of
 * host) connects to host's own address.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "queue.h"
#include "relay.h"
#include "route.h"
#include "smtp_client.h"

#define RELAY_OUT_HIGH (256u << 10)   /* body pumped while output below */
#define RELAY_PASSWORD_MAX 1024
#define RELAY_RESOLVE_SECONDS 30      /* a next hop's address is kept   */

struct rhop;

/* One connection. */
struct rconn {
	struct relay *r;
	struct rhop *hop;
	struct bufferevent *bev;
	struct smtpc *c;
	struct smtpc_config scfg;
	struct event *timer;
	struct event *idle;
	struct qjob *job;             /* in flight, or NULL              */
	bool dead;                    /* closed; freed from the loop     */
	bool connected;
	struct rconn *next;
};

/* One next hop: its waiting jobs and its connections. */
struct rhop {
	char key[ROUTE_HOP_TEXT_MAX];
	const struct route_hop *h;
	struct qjob *head, *tail;     /* waiting jobs, FIFO              */
	struct rconn *conns;
	unsigned nconn;
	bool tls_broken;              /* a `may` handshake failed: later
	                               * connections stay plaintext       */
	bool resolved;                /* addr or addr_why is current     */
	int64_t resolved_at;          /* monotonic seconds               */
	struct sockaddr_storage addr;
	socklen_t addrlen;            /* 0: resolution failed (addr_why) */
	char addr_why[256];
	struct rhop *next;
};

struct relay {
	struct event_base *base;
	const struct config *cfg;
	struct queue *q;
	SSL_CTX *ssl;
	struct smtpc_auth auth;
	bool have_auth;
	char password[RELAY_PASSWORD_MAX];
	struct rhop *hops;
	unsigned nconn;
};

static void relay_pump(struct relay *r, struct rhop *hp);

/*==== Connection plumbing ====*/

/* rconn_arm - the timer the client's state names. */
static void
rconn_arm(struct rconn *rc)
{
	struct timeval tv = { 0, 0 };

	if (rc->dead)
		return;
	if (smtpc_timer(rc->c) == SMTPC_TIMER_NONE) {
		evtimer_del(rc->timer);
		return;
	}
	tv.tv_sec = smtpc_timeout_seconds(rc->c);
	evtimer_add(rc->timer, &tv);
}

/* rconn_body - in SMTPC_BODY, pump the body while the output has room. */
static void
rconn_body(struct rconn *rc)
{
	while (!rc->dead && smtpc_state(rc->c) == SMTPC_BODY &&
	    evbuffer_get_length(bufferevent_get_output(rc->bev)) <
	    RELAY_OUT_HIGH)
		if (smtpc_pump(rc->c, 64u << 10) == 0)
			break;
}

/* rconn_after - after every call into the client: body, timer. */
static void
rconn_after(struct rconn *rc)
{
	rconn_body(rc);
	rconn_arm(rc);
}

/* rconn_release - a connection's memory, socket and timers. */
static void
rconn_release(struct rconn *rc)
{
	if (rc->bev != NULL)
		bufferevent_free(rc->bev);
	event_free(rc->timer);
	event_free(rc->idle);
	smtpc_free(rc->c);
	free(rc);
}

/* rconn_free_cb - free a dead connection from the loop. */
static void
rconn_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rconn *rc = arg;
	struct relay *r = rc->r;
	struct rhop *hp = rc->hop;

	for (struct rconn **pp = &hp->conns; *pp != NULL; pp = &(*pp)->next)
		if (*pp == rc) {
			*pp = rc->next;
			break;
		}
	hp->nconn--;
	r->nconn--;
	rconn_release(rc);
	/* Room for another connection: to this hop or any other. */
	for (struct rhop *h = r->hops; h != NULL; h = h->next)
		relay_pump(r, h);
}

/* rhop_fail_waiting - a connection failed before it could take the
 * waiting jobs, and none is left to take them: they share its outcome. */
static void
rhop_fail_waiting(struct relay *r, struct rhop *hp, const struct outcome *o)
{
	while (hp->head != NULL) {
		struct qjob *j = hp->head;

		hp->head = j->next;
		j->next = NULL;
		for (size_t k = 0; k < j->sm.nrcpt; k++)
			j->sm.rcpts[k].outcome = *o;
		queue_job_done(r->q, j);
	}
	hp->tail = NULL;
}

/*==== The client's callbacks ====*/

/* rc_write - bytes to the peer. */
static void
rc_write(void *io, const char *data, size_t len)
{
	struct rconn *rc = io;

	if (!rc->dead)
		bufferevent_write(rc->bev, data, len);
}

static void rconn_read_cb(struct bufferevent *bev, void *arg);
static void rconn_write_cb(struct bufferevent *bev, void *arg);
static void rconn_event_cb(struct bufferevent *bev, short what, void *arg);

/* rconn_tls_fail_cb - TLS could not even start (rc_starttls). */
static void
rconn_tls_fail_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rconn *rc = arg;

	if (rc->dead)
		return;
	smtpc_tls_done(rc->c, false, "cannot set up TLS");
	rconn_after(rc);
}

/* rc_starttls - wrap the socket in TLS; the handshake's end reaches
 * rconn_event_cb. */
static void
rc_starttls(void *io, enum smtpc_tls_mode mode)
{
	struct rconn *rc = io;
	struct relay *r = rc->r;
	struct timeval zero = { 0, 0 };
	struct bufferevent *tls;
	SSL *ssl = SSL_new(r->ssl);

	if (ssl == NULL)
		goto fail;
	if (rc->hop->h->host[0] != '\0' && !rc->hop->h->literal)
		SSL_set_tlsext_host_name(ssl, rc->hop->h->host);
	if (mode == SMTPC_TLS_VERIFY) {
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
		/* The name checked: the next hop's host, or its address. */
		if (rc->hop->h->literal ? X509_VERIFY_PARAM_set1_ip_asc(
		    SSL_get0_param(ssl), rc->hop->h->host) != 1 :
		    !SSL_set1_host(ssl, rc->hop->h->host)) {
			SSL_free(ssl);
			goto fail;
		}
	}
	evbuffer_drain(bufferevent_get_input(rc->bev),
	    evbuffer_get_length(bufferevent_get_input(rc->bev)));
	tls = bufferevent_openssl_filter_new(r->base, rc->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) {
		SSL_free(ssl);
		goto fail;
	}
	rc->bev = tls;
	bufferevent_setcb(tls, rconn_read_cb, rconn_write_cb, rconn_event_cb, rc);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
	return;
fail:
	/* Reported from the loop: never call back into the client here. */
	bufferevent_disable(rc->bev, EV_READ | EV_WRITE);
	event_base_once(r->base, -1, EV_TIMEOUT, rconn_tls_fail_cb, rc,
	    &zero);
}

/* rc_body_read - the message of the job in flight. */
static long
rc_body_read(void *io, char *buf, size_t size)
{
	struct rconn *rc = io;

	return rc->job != NULL ? queue_job_read(rc->job, buf, size) : -1;
}

/* rc_done - every recipient of the job in flight has its outcome. */
static void
rc_done(void *io, struct smtpc_message *m)
{
	struct rconn *rc = io;
	struct qjob *j = rc->job;

	rc->job = NULL;
	if (j != NULL)
		queue_job_done(rc->r->q, j);
}

/* rc_ready - idle: the next waiting job of this hop, or the idle timer. */
static void
rc_ready(void *io)
{
	struct rconn *rc = io;
	struct rhop *hp = rc->hop;
	struct timeval tv = { RELAY_IDLE_SECONDS, 0 };

	if (hp->head != NULL) {
		struct qjob *j = hp->head;

		hp->head = j->next;
		if (hp->head == NULL)
			hp->tail = NULL;
		j->next = NULL;
		j->offset = 0;
		rc->job = j;
		evtimer_del(rc->idle);
		smtpc_send(rc->c, &j->sm);
		return;
	}
	evtimer_add(rc->idle, &tv);
}

/* rc_close - the conversation is over. */
static void
rc_close(void *io)
{
	struct rconn *rc = io;
	const struct outcome *o = smtpc_failure(rc->c);
	struct timeval zero = { 0, 0 };
	unsigned live = 0;

	if (rc->dead)
		return;
	rc->dead = true;
	evtimer_del(rc->timer);
	evtimer_del(rc->idle);
	bufferevent_disable(rc->bev, EV_READ | EV_WRITE);
	for (struct rconn *x = rc->hop->conns; x != NULL; x = x->next)
		if (!x->dead)
			live++;
	if (o->result != OUTCOME_PENDING && live == 0)
		rhop_fail_waiting(rc->r, rc->hop, o);
	event_base_once(rc->r->base, -1, EV_TIMEOUT, rconn_free_cb, rc, &zero);
}

static const struct smtpc_ops relay_ops = {
	.write = rc_write,
	.starttls = rc_starttls,
	.body_read = rc_body_read,
	.done = rc_done,
	.ready = rc_ready,
	.close = rc_close,
};

/*==== Events ====*/

/* rconn_read_cb - replies from the peer. */
static void
rconn_read_cb(struct bufferevent *bev, void *arg)
{
	struct rconn *rc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (!rc->dead && evbuffer_get_length(in) > 0) {
		size_t len = evbuffer_get_length(in);
		const char *data = (const char *)evbuffer_pullup(in, -1);
		size_t used = smtpc_feed(rc->c, data, len);

		if (rc->dead)
			break;
		if (used == 0)
			break;
		/* The client may have switched to TLS (input dropped). */
		if (bev != rc->bev)
			break;
		evbuffer_drain(in, used);
	}
	rconn_after(rc);
}

/* rconn_write_cb - output drained: more body. */
static void
rconn_write_cb(struct bufferevent *bev, void *arg)
{
	struct rconn *rc = arg;

	if (!rc->dead && smtpc_state(rc->c) == SMTPC_BODY)
		rconn_after(rc);
}

/* rconn_tls_error - why the TLS layer failed, one line. */
static void
rconn_tls_error(struct bufferevent *bev, char *buf, size_t size)
{
	unsigned long e = bufferevent_get_openssl_error(bev);

	if (e != 0)
		ERR_error_string_n(e, buf, size);
	else
		snprintf(buf, size, "handshake failed");
}

/* rconn_event_cb - connected, TLS up, closed, error. */
static void
rconn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct rconn *rc = arg;
	char why[256];

	if (rc->dead)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		if (smtpc_state(rc->c) == SMTPC_TLS) {
			smtpc_tls_done(rc->c, true, "");
			rconn_after(rc);
		} else {
			rc->connected = true;
			rconn_arm(rc);        /* now the greeting's timer */
		}
		return;
	}
	if (smtpc_state(rc->c) == SMTPC_TLS) {
		rconn_tls_error(bev, why, sizeof(why));
		smtpc_tls_done(rc->c, false, why);
		/* Opportunistic TLS that fails is not worth a deferral per
		 * message: the next connections (the retry of these
		 * recipients after min_backoff among them) go without, as
		 * Postfix's do - but not where credentials would go out. */
		if (smtpc_retry(rc->c) == SMTPC_RETRY_PLAINTEXT &&
		    rc->scfg.auth == NULL && !rc->hop->tls_broken) {
			rc->hop->tls_broken = true;
			log_warn("relay %s: TLS handshake failed (%s): using "
			    "plaintext with this next hop from now on",
			    rc->hop->key, why);
		}
	} else {
		int e = EVUTIL_SOCKET_ERROR();
		unsigned long tls_err = smtpc_tls_active(rc->c) ?
		    bufferevent_get_openssl_error(bev) : 0;

		if (what & BEV_EVENT_EOF)
			snprintf(why, sizeof(why), "connection closed by the peer");
		else if (tls_err != 0)
			ERR_error_string_n(tls_err, why, sizeof(why));
		else if (e != 0)
			snprintf(why, sizeof(why), "%s",
			    evutil_socket_error_to_string(e));
		else
			snprintf(why, sizeof(why), "%s", rc->connected ?
			    "connection lost" : "cannot connect");
		smtpc_abort(rc->c, why);
	}
	rconn_after(rc);
}

/* rconn_timer_cb - the RFC 5321 timer expired. */
static void
rconn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rconn *rc = arg;

	if (rc->dead)
		return;
	smtpc_timeout(rc->c);
	rconn_after(rc);
}

/* rconn_idle_cb - idle too long: QUIT. */
static void
rconn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rconn *rc = arg;

	if (rc->dead || smtpc_state(rc->c) != SMTPC_READY)
		return;
	smtpc_quit(rc->c);
	rconn_after(rc);
}

/*==== Opening ====*/

/* relay_addr - the next hop's socket address (first of getaddrinfo's
 * answers for a name); -1 with why. */
static int
relay_addr(const struct route_hop *h, struct sockaddr_storage *ss,
    socklen_t *len, char *why, size_t size)
{
	struct addrinfo hints, *res = NULL;
	char port[16];
	int rc;

	memset(ss, 0, sizeof(*ss));
	if (h->transport == ROUTE_LMTP && h->host[0] == '\0') {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;

		if (strlen(h->path) >= sizeof(un->sun_path)) {
			snprintf(why, size, "socket path too long");
			return -1;
		}
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, h->path);
		*len = sizeof(*un);
		return 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = h->literal ? AI_NUMERICHOST : 0;
	snprintf(port, sizeof(port), "%u", h->port);
	rc = getaddrinfo(h->host, port, &hints, &res);
	if (rc != 0 || res == NULL) {
		snprintf(why, size, "cannot resolve %.160s: %s", h->host,
		    gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* relay_hop_addr - hp's socket address, resolved again when the kept
 * answer is older than RELAY_RESOLVE_SECONDS; -1 with why. */
static int
relay_hop_addr(struct rhop *hp, struct sockaddr_storage *ss,
    socklen_t *len, char *why, size_t size)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (!hp->resolved || (int64_t)ts.tv_sec - hp->resolved_at >=
	    RELAY_RESOLVE_SECONDS) {
		hp->resolved = true;
		hp->resolved_at = (int64_t)ts.tv_sec;
		if (relay_addr(hp->h, &hp->addr, &hp->addrlen, hp->addr_why,
		    sizeof(hp->addr_why)) < 0)
			hp->addrlen = 0;
	}
	if (hp->addrlen == 0) {
		snprintf(why, size, "%s", hp->addr_why);
		return -1;
	}
	memcpy(ss, &hp->addr, sizeof(*ss));
	*len = hp->addrlen;
	return 0;
}

/* relay_tls_mode - delivery.tls.mode for this next hop. */
static enum smtpc_tls_mode
relay_tls_mode(const struct relay *r, const struct route_hop *h)
{
	if (h->transport == ROUTE_LMTP && h->host[0] == '\0')
		return SMTPC_TLS_NONE;          /* a local socket */
	switch (r->cfg->delivery.tls.mode) {
	case CONFIG_DELIVERY_TLS_ENCRYPT:
		return SMTPC_TLS_ENCRYPT;
	case CONFIG_DELIVERY_TLS_VERIFY:
		return SMTPC_TLS_VERIFY;
	case CONFIG_DELIVERY_TLS_MAY:
		break;
	}
	return SMTPC_TLS_MAY;
}

/* relay_seconds - a timeout in ms as whole seconds (at least 1). */
static unsigned
relay_seconds(uint64_t ms)
{
	uint64_t s = (ms + 999) / 1000;

	return s == 0 ? 1 : s > 86400 ? 86400 : (unsigned)s;
}

/* relay_open - a new connection to hp. */
static void
relay_open(struct relay *r, struct rhop *hp)
{
	const struct config *cfg = r->cfg;
	struct rconn *rc = xcalloc(1, sizeof(*rc));
	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	char why[256];

	rc->r = r;
	rc->hop = hp;
	rc->scfg.proto = hp->h->transport == ROUTE_LMTP ? SMTPC_LMTP :
	    SMTPC_SMTP;
	rc->scfg.helo_name = cfg->server.hostname;
	rc->scfg.peer_name = hp->key;
	rc->scfg.tls = relay_tls_mode(r, hp->h);
	if (rc->scfg.tls == SMTPC_TLS_MAY && hp->tls_broken)
		rc->scfg.tls = SMTPC_TLS_NONE;
	rc->scfg.auth = r->have_auth && hp->h->transport == ROUTE_SMTP ?
	    &r->auth : NULL;
	rc->scfg.timeouts.greeting = relay_seconds(cfg->delivery.timeouts.greeting_ms);
	rc->scfg.timeouts.command = relay_seconds(cfg->delivery.timeouts.command_ms);
	rc->scfg.timeouts.mail = relay_seconds(cfg->delivery.timeouts.mail_ms);
	rc->scfg.timeouts.rcpt = relay_seconds(cfg->delivery.timeouts.rcpt_ms);
	rc->scfg.timeouts.data_init = relay_seconds(cfg->delivery.timeouts.data_init_ms);
	rc->scfg.timeouts.data_block = relay_seconds(cfg->delivery.timeouts.data_block_ms);
	rc->scfg.timeouts.data_term = relay_seconds(cfg->delivery.timeouts.data_term_ms);
	rc->c = smtpc_new(&rc->scfg, &relay_ops, rc);
	rc->timer = evtimer_new(r->base, rconn_timer_cb, rc);
	rc->idle = evtimer_new(r->base, rconn_idle_cb, rc);
	rc->bev = bufferevent_socket_new(r->base, -1, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS);
	rc->next = hp->conns;
	hp->conns = rc;
	hp->nconn++;
	r->nconn++;
	bufferevent_setcb(rc->bev, rconn_read_cb, rconn_write_cb,
	    rconn_event_cb, rc);
	bufferevent_setwatermark(rc->bev, EV_WRITE, RELAY_OUT_HIGH / 2, 0);
	bufferevent_enable(rc->bev, EV_READ | EV_WRITE);
	log_debug("relay %s: connecting", hp->key);
	if (relay_hop_addr(hp, &ss, &sslen, why, sizeof(why)) < 0 ||
	    bufferevent_socket_connect(rc->bev, (struct sockaddr *)&ss,
	    (int)sslen) < 0) {
		if (sslen != 0)
			snprintf(why, sizeof(why), "cannot connect");
		smtpc_abort(rc->c, why);
		return;
	}
	{
		struct timeval tv = { relay_seconds(
		    cfg->delivery.timeouts.connect_ms), 0 };

		/* The greeting timer covers the connect as well. */
		if (tv.tv_sec > (time_t)rc->scfg.timeouts.greeting)
			tv.tv_sec = rc->scfg.timeouts.greeting;
		evtimer_add(rc->timer, &tv);
	}
}

/*==== Jobs ====*/

/* relay_pump - give hp's waiting jobs to idle connections, open more
 * within the limits. */
static void
relay_pump(struct relay *r, struct rhop *hp)
{
	const struct config *cfg = r->cfg;
	unsigned waiting = 0, opening = 0;

	for (struct rconn *rc = hp->conns; rc != NULL && hp->head != NULL;
	    rc = rc->next)
		if (!rc->dead && rc->job == NULL &&
		    smtpc_state(rc->c) == SMTPC_READY) {
			rc_ready(rc);
			rconn_after(rc);
		}
	for (struct qjob *j = hp->head; j != NULL; j = j->next)
		waiting++;
	for (struct rconn *rc = hp->conns; rc != NULL; rc = rc->next)
		if (!rc->dead && rc->job == NULL)
			opening++;   /* will take a job once ready */
	while (waiting > opening && hp->nconn <
	    cfg->delivery.destination_concurrency &&
	    r->nconn < cfg->delivery.concurrency) {
		relay_open(r, hp);
		opening++;
	}
}

/* relay_hop - the record of next hop h (created on first use). */
static struct rhop *
relay_hop(struct relay *r, const struct route_hop *h)
{
	char key[ROUTE_HOP_TEXT_MAX];

	route_hop_format(h, key, sizeof(key));
	for (struct rhop *hp = r->hops; hp != NULL; hp = hp->next)
		if (strcmp(hp->key, key) == 0)
			return hp;
	struct rhop *hp = xcalloc(1, sizeof(*hp));

	str_copy(hp->key, key, sizeof(hp->key));
	hp->h = h;
	hp->next = r->hops;
	r->hops = hp;
	return hp;
}

/* relay_submit - see relay.h. */
void
relay_submit(struct relay *r, struct qjob *j)
{
	struct rhop *hp = relay_hop(r, j->hop);

	j->next = NULL;
	if (hp->tail != NULL)
		hp->tail->next = j;
	else
		hp->head = j;
	hp->tail = j;
	relay_pump(r, hp);
}

/* relay_busy - see relay.h. */
bool
relay_busy(const struct relay *r)
{
	return r->nconn > 0;
}

/*==== Set-up ====*/

/* relay_password - delivery.auth.password_file's first line. */
static int
relay_password(struct relay *r, struct error *err)
{
	const char *path = r->cfg->delivery.auth.password_file;
	FILE *f;

	if (r->cfg->delivery.auth.username[0] == '\0')
		return 0;
	f = fopen(path, "re");
	if (f == NULL)
		return error_set(err, "delivery.auth.password_file %s: %s", path,
		    strerror(errno));
	if (fgets(r->password, sizeof(r->password), f) == NULL)
		r->password[0] = '\0';
	fclose(f);
	r->password[strcspn(r->password, "\r\n")] = '\0';
	r->auth.user = r->cfg->delivery.auth.username;
	r->auth.password = r->password;
	r->auth.allow_plaintext = false;
	r->have_auth = true;
	return 0;
}

/* relay_new - see relay.h. */
struct relay *
relay_new(struct event_base *base, const struct config *cfg,
    struct queue *q, struct error *err)
{
	struct relay *r = xcalloc(1, sizeof(*r));

	r->base = base;
	r->cfg = cfg;
	r->q = q;
	r->ssl = SSL_CTX_new(TLS_client_method());
	if (r->ssl == NULL) {
		free(r);
		error_set(err, "cannot create the TLS client context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(r->ssl, TLS1_2_VERSION);
	if (cfg->delivery.tls.mode == CONFIG_DELIVERY_TLS_VERIFY) {
		if ((cfg->delivery.tls.ca_file[0] != '\0' ?
		    SSL_CTX_load_verify_locations(r->ssl,
		    cfg->delivery.tls.ca_file, NULL) :
		    SSL_CTX_set_default_verify_paths(r->ssl)) != 1) {
			relay_free(r);
			error_set(err, "delivery.tls.ca_file %s: cannot load",
			    cfg->delivery.tls.ca_file);
			return NULL;
		}
	}
	SSL_CTX_set_verify(r->ssl, SSL_VERIFY_NONE, NULL);
	if (relay_password(r, err) < 0) {
		relay_free(r);
		return NULL;
	}
	return r;
}

/* relay_free - see relay.h: connections are dropped without callbacks
 * (the process is ending). */
void
relay_free(struct relay *r)
{
	while (r->hops != NULL) {
		struct rhop *hp = r->hops;

		r->hops = hp->next;
		while (hp->conns != NULL) {
			struct rconn *rc = hp->conns;

			hp->conns = rc->next;
			rconn_release(rc);
		}
		free(hp);
	}
	if (r->ssl != NULL)
		SSL_CTX_free(r->ssl);
	explicit_bzero(r->password, sizeof(r->password));
	free(r);
}
