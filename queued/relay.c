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
 * Destinations: a next hop is one destination, except the recipient
 * domain's MX (delivery.mx, host ""), which is one destination per domain
 * (queue.c gives each job recipients of one domain).  A destination's
 * addresses come from queued/mx.c through the process's resolver
 * (common/dns.h, asynchronous): the MX hosts of a domain (smtp:host,
 * a relayhost without brackets, the recipient domain) or a host's own
 * addresses ([host], lmtp:host); IP literals and Unix sockets need no
 * lookup.  A list is kept for its smallest TTL, at most
 * RELAY_RESOLVE_SECONDS; a failure (null MX, NXDOMAIN, loop, DNS
 * failure) fails the jobs waiting for the destination and is not kept.
 * New connections go to the target at the destination's cursor; a
 * connection-level failure the client says another host may not share
 * (SMTPC_RETRY_NEXT_HOST) moves the cursor on, and the waiting jobs wait
 * for the next target; after the last one they fail with the last
 * outcome.  A job whose recipients got a temporary failure at one target
 * (a 4xx reply, or the connection lost) is tried again at the next
 * target with those recipients before any is deferred (RFC 5321 §5.1).
 */
#include <arpa/inet.h>
#include <errno.h>
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

#include "dns.h"
#include "log.h"
#include "mx.h"
#include "queue.h"
#include "relay.h"
#include "route.h"
#include "smtp_client.h"
#include "stats.h"

_Static_assert(QUEUED_DNS_BUCKETS == DNS_STATS_BUCKETS,
    "stats_file.h's DNS buckets are dns.h's");

#define RELAY_OUT_HIGH (256u << 10)   /* body pumped while output below */
#define RELAY_PASSWORD_MAX 1024
#define RELAY_RESOLVE_SECONDS 30      /* a destination's addresses kept */
#define RELAY_TLSA_MAX 8              /* TLSA records used per host      */

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
	struct smtpc_message send;    /* what of job goes out now        */
	size_t target;                /* index in hop->res->targets      */
	struct mx_target tgt;         /* a copy: the list may be renewed */
	struct dns_query *tlsa_q;     /* DANE: TLSA lookup before connect */
	struct dns_tlsa tlsa[RELAY_TLSA_MAX];
	size_t ntlsa;                 /* > 0: DANE-authenticated TLS     */
	bool dead;                    /* closed; freed from the loop     */
	bool connected;
	struct rconn *next;
};

/* Where a destination's address list stands. */
enum rhop_addr {
	RHOP_UNRESOLVED,        /* none, or expired                       */
	RHOP_RESOLVING,         /* an mx.c lookup is running              */
	RHOP_RESOLVED,          /* res is current until resolved_until    */
};

/* One destination: its waiting jobs, its addresses, its connections. */
struct rhop {
	struct relay *r;
	char key[ROUTE_HOP_TEXT_MAX];
	const struct route_hop *h;
	char dest[DNS_NAME_MAX];      /* the name resolved ("": none)    */
	bool dest_mx;                 /* its MX hosts, not its address   */
	struct qjob *head, *tail;     /* waiting jobs, FIFO              */
	struct rconn *conns;
	unsigned nconn;
	bool tls_broken;              /* a `may` handshake failed: later
	                               * connections stay plaintext       */
	enum rhop_addr astate;
	struct mx_lookup *lookup;     /* RHOP_RESOLVING                  */
	struct mx_result *res;        /* the targets, or their failure   */
	int64_t resolved_until;       /* monotonic seconds               */
	size_t cursor;                /* the target new connections use  */
	struct outcome last_failure;  /* of the last target that failed  */
	struct rhop *next;
};

struct relay {
	struct event_base *base;
	const struct config *cfg;
	struct queue *q;
	struct dns_resolver *dns;
	struct dns_stats dns_seen;    /* counted into stats.h so far     */
	SSL_CTX *ssl;
	struct smtpc_auth auth;
	bool have_auth;
	char password[RELAY_PASSWORD_MAX];
	struct rhop *hops;
	unsigned nconn;
};

static void relay_pump(struct relay *r, struct rhop *hp);
static void relay_forget(struct relay *r);

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
	if (rc->tlsa_q != NULL)
		dns_query_cancel(rc->tlsa_q);
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
	relay_forget(r);
}

/* relay_forget - free the recipient-domain destinations left with
 * nothing (no job, connection or lookup): one per domain ever seen would
 * otherwise grow without bound.  Their addresses are in the resolver's
 * cache; configured next hops stay (their tls_broken is kept). */
static void
relay_forget(struct relay *r)
{
	for (struct rhop **pp = &r->hops; *pp != NULL; ) {
		struct rhop *hp = *pp;

		if (!(hp->h->mx && hp->h->host[0] == '\0') || hp->head != NULL ||
		    hp->conns != NULL || hp->lookup != NULL) {
			pp = &hp->next;
			continue;
		}
		*pp = hp->next;
		mx_result_free(hp->res);
		free(hp);
	}
}

/* rhop_fail_waiting - a connection failed before it could take the
 * waiting jobs, and none is left to take them: they share its outcome. */
static void
rhop_fail_waiting(struct relay *r, struct rhop *hp, const struct outcome *o)
{
	while (hp->head != NULL) {
		struct qjob *j = hp->head;

		size_t n = j->relay_nsend != 0 ? j->relay_nsend : j->sm.nrcpt;

		hp->head = j->next;
		j->next = NULL;
		for (size_t k = 0; k < n; k++)
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
	if (rc->tgt.host[0] != '\0')
		SSL_set_tlsext_host_name(ssl, rc->tgt.host);
	if (rc->ntlsa > 0) {
		/* RFC 7672: the certificate must match a TLSA record; for
		 * DANE-TA the name checked is the MX host's. */
		int usable = 0;

		if (SSL_dane_enable(ssl, rc->tgt.host) <= 0) {
			SSL_free(ssl);
			goto fail;
		}
		/* RFC 7672 3.1.1: a DANE-EE(3) match needs no name match. */
		SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
		for (size_t i = 0; i < rc->ntlsa; i++)
			usable += SSL_dane_tlsa_add(ssl, rc->tlsa[i].usage,
			    rc->tlsa[i].selector, rc->tlsa[i].matching_type,
			    rc->tlsa[i].data, rc->tlsa[i].data_len) > 0;
		if (usable == 0) {
			SSL_free(ssl);
			goto fail;
		}
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	} else if (mode == SMTPC_TLS_VERIFY) {
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
		/* The name checked: the host connected to (the MX host, or
		 * the next hop's host), or the next hop's address. */
		if (rc->tgt.host[0] == '\0' ? X509_VERIFY_PARAM_set1_ip_asc(
		    SSL_get0_param(ssl), rc->hop->h->host) != 1 :
		    !SSL_set1_host(ssl, rc->tgt.host)) {
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

/* rhop_push_front - j waits first (tried again at a later target). */
static void
rhop_push_front(struct rhop *hp, struct qjob *j)
{
	j->next = hp->head;
	hp->head = j;
	if (hp->tail == NULL)
		hp->tail = j;
}

/* rhop_take - the first waiting job target may carry, unlinked. */
static struct qjob *
rhop_take(struct rhop *hp, size_t target)
{
	struct qjob *prev = NULL;

	for (struct qjob *j = hp->head; j != NULL; prev = j, j = j->next) {
		if (j->relay_from > target)
			continue;
		if (prev != NULL)
			prev->next = j->next;
		else
			hp->head = j->next;
		if (hp->tail == j)
			hp->tail = prev;
		j->next = NULL;
		return j;
	}
	return NULL;
}

/* rc_next_target - j's recipients that failed temporarily at this
 * target go to the next one (RFC 5321 §5.1): true when j waits again. */
static bool
rc_next_target(struct rconn *rc, struct qjob *j)
{
	struct rhop *hp = rc->hop;
	size_t n = j->relay_nsend != 0 ? j->relay_nsend : j->sm.nrcpt;
	size_t again = 0;

	if (hp->res == NULL || rc->target + 1 >= hp->res->count ||
	    (smtpc_retry(rc->c) == SMTPC_RETRY_NONE && smtpc_failure(
	    rc->c)->result != OUTCOME_PENDING))
		return false;
	/* The recipients to send again first, with their envelope
	 * indices: idx[k] follows sm.rcpts[k]. */
	for (size_t k = 0; k < n; k++) {
		if (j->sm.rcpts[k].outcome.result != OUTCOME_TEMPFAIL)
			continue;
		if (k != again) {
			struct smtpc_rcpt t = j->sm.rcpts[k];
			size_t ti = j->idx[k];

			j->sm.rcpts[k] = j->sm.rcpts[again];
			j->idx[k] = j->idx[again];
			j->sm.rcpts[again] = t;
			j->idx[again] = ti;
		}
		again++;
	}
	if (again == 0)
		return false;
	log_info("relay %s: %zu recipient(s) deferred by %s (%s); trying "
	    "the next host", hp->key, again, rc->tgt.host[0] ? rc->tgt.host :
	    hp->h->host, j->sm.rcpts[0].outcome.text);
	j->relay_nsend = again;
	j->relay_from = rc->target + 1;
	rhop_push_front(hp, j);
	return true;
}

/* relay_others_wait - a destination other than hp has jobs waiting. */
static bool
relay_others_wait(const struct relay *r, const struct rhop *hp)
{
	for (const struct rhop *h = r->hops; h != NULL; h = h->next)
		if (h != hp && h->head != NULL)
			return true;
	return false;
}

/* rc_done - every recipient of the job in flight has its outcome. */
static void
rc_done(void *io, struct smtpc_message *m)
{
	struct rconn *rc = io;
	struct qjob *j = rc->job;

	rc->job = NULL;
	if (j == NULL)
		return;
	j->sm.peer_dsn = rc->send.peer_dsn;
	if (rc_next_target(rc, j))
		return;
	queue_job_done(rc->r->q, j);
}

/* rc_ready - idle: the next waiting job this connection may carry, or
 * the idle timer. */
static void
rc_ready(void *io)
{
	struct rconn *rc = io;
	struct timeval tv = { RELAY_IDLE_SECONDS, 0 };
	struct qjob *j = rhop_take(rc->hop, rc->target);

	if (j != NULL) {
		j->offset = 0;
		rc->job = j;
		rc->send = j->sm;
		if (j->relay_nsend != 0)
			rc->send.nrcpt = j->relay_nsend;
		evtimer_del(rc->idle);
		smtpc_send(rc->c, &rc->send);
		return;
	}
	if (rc->r->nconn >= rc->r->cfg->delivery.concurrency &&
	    relay_others_wait(rc->r, rc->hop)) {
		/* Its slot serves another destination better than idling. */
		smtpc_quit(rc->c);
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

	struct rhop *hp = rc->hop;

	if (rc->dead)
		return;
	rc->dead = true;
	evtimer_del(rc->timer);
	evtimer_del(rc->idle);
	bufferevent_disable(rc->bev, EV_READ | EV_WRITE);
	for (struct rconn *x = hp->conns; x != NULL; x = x->next)
		if (!x->dead)
			live++;
	if (o->result != OUTCOME_PENDING) {
		hp->last_failure = *o;
		/* Another host may do better: move on from this one. */
		if (smtpc_retry(rc->c) != SMTPC_RETRY_NONE &&
		    rc->target == hp->cursor)
			hp->cursor++;
		if (live == 0 && (smtpc_retry(rc->c) == SMTPC_RETRY_NONE ||
		    hp->res == NULL || hp->cursor >= hp->res->count)) {
			rhop_fail_waiting(rc->r, hp, o);
			hp->cursor = 0;
		}
	}
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

/* relay_now - monotonic seconds. */
static int64_t
relay_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

/* relay_static_target - a destination that needs no DNS (an IP literal,
 * a Unix socket) as a one-target list; false when it needs DNS. */
static bool
relay_static_target(struct rhop *hp, struct mx_result *res)
{
	const struct route_hop *h = hp->h;
	struct mx_target *t = &res->targets[0];
	struct addr_ip ip;
	char lit[ROUTE_HOST_MAX];

	memset(t, 0, sizeof(*t));
	res->failure.result = OUTCOME_PENDING;
	res->ttl = UINT32_MAX;
	if (h->transport == ROUTE_LMTP && h->host[0] == '\0') {
		struct sockaddr_un *un = (struct sockaddr_un *)&t->addr;

		if (strlen(h->path) >= sizeof(un->sun_path)) {
			outcome_set(&res->failure, OUTCOME_TEMPFAIL, 0, "4.4.1",
			    "socket path too long");
			return true;
		}
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, h->path);
		t->addrlen = sizeof(*un);
		res->count = 1;
		return true;
	}
	/* The name resolved, as a literal: "[192.0.2.1]" (a recipient
	 * domain), "[IPv6:2001:db8::1]", or a literal next hop's host. */
	str_copy(lit, hp->dest[0] == '[' ? hp->dest + 1 : hp->dest,
	    sizeof(lit));
	lit[strcspn(lit, "]")] = '\0';
	if (strncasecmp(lit, "ipv6:", 5) == 0)
		memmove(lit, lit + 5, strlen(lit + 5) + 1);
	if (!(h->literal || hp->dest[0] == '[') || addr_ip_parse(lit, &ip) < 0) {
		if (hp->dest[0] != '[')
			return false;
		outcome_set(&res->failure, OUTCOME_PERMFAIL, 0, "5.1.2",
		    "bad address literal %.200s", hp->dest);
		return true;
	}
	if (ip.is_v4) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&t->addr;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)h->port);
		memcpy(&s4->sin_addr, ip.bytes + 12, 4);
		t->addrlen = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->addr;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)h->port);
		memcpy(&s6->sin6_addr, ip.bytes, 16);
		t->addrlen = sizeof(*s6);
	}
	res->count = 1;
	return true;
}

/* relay_dns_stats - the resolver's counts since the last call into
 * stats.h's counters. */
static void
relay_dns_stats(struct relay *r)
{
	struct dns_stats st, *old = &r->dns_seen;

	dns_resolver_stats(r->dns, &st);
	queued_stats_add(QUEUED_STAT_DNS_QUERIES, st.queries - old->queries);
	queued_stats_add(QUEUED_STAT_DNS_FAILURES, st.failures - old->failures);
	queued_stats_add(QUEUED_STAT_DNS_TIMEOUTS, st.timeouts - old->timeouts);
	for (size_t i = 0; i < DNS_STATS_BUCKETS; i++)
		queued_stats_add(QUEUED_STAT_DNS_BUCKET + i,
		    st.latency_buckets[i] - old->latency_buckets[i]);
	queued_stats_add(QUEUED_STAT_DNS_BUCKET + DNS_STATS_BUCKETS,
	    st.answers - old->answers);
	queued_stats_add(QUEUED_STAT_DNS_SUM,
	    st.latency_us_sum - old->latency_us_sum);
	queued_stats_add(QUEUED_STAT_DNS_COUNT, st.answers - old->answers);
	*old = st;
}

/* relay_resolved_cb - mx.c's answer for hp. */
static void
relay_resolved_cb(struct mx_result *res, void *arg)
{
	struct rhop *hp = arg;
	uint32_t keep = res->ttl < RELAY_RESOLVE_SECONDS ? res->ttl :
	    RELAY_RESOLVE_SECONDS;

	hp->lookup = NULL;
	relay_dns_stats(hp->r);
	mx_result_free(hp->res);
	hp->res = res;
	hp->astate = RHOP_RESOLVED;
	hp->cursor = 0;
	hp->resolved_until = relay_now() + (int64_t)keep;
	if (res->failure.result != OUTCOME_PENDING)
		log_info("relay %s: %s", hp->key, res->failure.text);
	else
		log_debug("relay %s: %zu address(es), first %s", hp->key,
		    res->count, res->targets[0].host);
	relay_pump(hp->r, hp);
}

/* relay_resolve - hp's address list is current (else a lookup starts,
 * and relay_pump runs again when it ends). */
static bool
relay_resolve(struct relay *r, struct rhop *hp)
{
	if (hp->astate == RHOP_RESOLVING)
		return false;
	if (hp->astate == RHOP_RESOLVED && (hp->resolved_until > relay_now() ||
	    hp->res->failure.result != OUTCOME_PENDING))
		return true;
	if (hp->res == NULL)
		hp->res = xcalloc(1, sizeof(*hp->res));
	if (relay_static_target(hp, hp->res)) {
		hp->astate = RHOP_RESOLVED;
		hp->resolved_until = INT64_MAX;
		hp->cursor = 0;
		return true;
	}
	hp->astate = RHOP_RESOLVING;
	hp->lookup = mx_lookup_start(r->dns, r->cfg, hp->dest, hp->dest_mx,
	    hp->h->port, relay_resolved_cb, hp);
	return false;
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
	case CONFIG_DELIVERY_TLS_DANE:  /* raised per host: rconn_tlsa_cb */
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

/* rconn_connect - connect rc to its target, under the connect timer. */
static void
rconn_connect(struct rconn *rc)
{
	struct timeval tv = { relay_seconds(
	    rc->r->cfg->delivery.timeouts.connect_ms), 0 };

	if (bufferevent_socket_connect(rc->bev, (struct sockaddr *)&rc->tgt.addr,
	    (int)rc->tgt.addrlen) < 0) {
		smtpc_abort(rc->c, "cannot connect");
		return;
	}
	/* The greeting timer covers the connect as well. */
	if (tv.tv_sec > (time_t)rc->scfg.timeouts.greeting)
		tv.tv_sec = rc->scfg.timeouts.greeting;
	evtimer_add(rc->timer, &tv);
}

/* rconn_tlsa_cb - the TLSA records of rc's MX host (DANE): secure and
 * usable ones make TLS required and checked against them; none, or
 * insecure ones, leave the connection as `may`; a failure defers (it
 * could hide the records: never plaintext then). */
static void
rconn_tlsa_cb(const struct dns_answer *a, void *arg)
{
	struct rconn *rc = arg;
	char why[512];

	rc->tlsa_q = NULL;
	if (a->status == DNS_TEMPFAIL || a->status == DNS_PERMFAIL) {
		snprintf(why, sizeof(why), "TLSA lookup %s failed: %s",
		    a->qname, a->why);
		smtpc_abort(rc->c, why);
		rconn_after(rc);
		return;
	}
	for (size_t i = 0; a->status == DNS_OK && a->secure && i < a->count &&
	    rc->ntlsa < RELAY_TLSA_MAX; i++) {
		const struct dns_tlsa *t = &a->records[i].u.tlsa;

		/* RFC 7672 3.1: DANE-TA(2) and DANE-EE(3) only */
		if (t->usage == 2 || t->usage == 3)
			rc->tlsa[rc->ntlsa++] = *t;
	}
	if (rc->ntlsa > 0) {
		rc->scfg.tls = SMTPC_TLS_VERIFY;
		log_info("relay %s: %s has %zu usable TLSA record(s): TLS "
		    "required and checked against them (DANE)", rc->hop->key,
		    rc->tgt.host, rc->ntlsa);
	}
	rconn_connect(rc);
}

/* relay_open - a new connection to hp's target t. */
static void
relay_open(struct relay *r, struct rhop *hp, size_t t)
{
	const struct config *cfg = r->cfg;
	struct rconn *rc = xcalloc(1, sizeof(*rc));

	rc->r = r;
	rc->hop = hp;
	rc->target = t;
	rc->tgt = hp->res->targets[t];
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
	log_debug("relay %s: connecting to %s (target %zu of %zu)", hp->key,
	    rc->tgt.host[0] ? rc->tgt.host : hp->h->host, t + 1,
	    hp->res->count);
	if (cfg->delivery.tls.mode == CONFIG_DELIVERY_TLS_DANE &&
	    hp->h->transport == ROUTE_SMTP && rc->tgt.secure &&
	    rc->tgt.host[0] != '\0') {
		char name[DNS_NAME_MAX + 16];

		/* The MX host's address is DNSSEC-secure: its TLSA records
		 * decide (RFC 7672 2.2); connect once they are known. */
		snprintf(name, sizeof(name), "_%u._tcp.%s", hp->h->port,
		    rc->tgt.host);
		rc->tlsa_q = dns_query(r->dns, name, DNS_TYPE_TLSA,
		    rconn_tlsa_cb, rc);
		return;
	}
	rconn_connect(rc);
}

/*==== Jobs ====*/

/* relay_reclaim_idle - every connection slot is taken while hp has jobs
 * waiting: an idle connection to another destination QUITs (its slot
 * comes back when it is freed, and relay_pump runs again), so idle
 * connections kept for reuse never hold up other destinations (many
 * MX domains against delivery.concurrency). */
static void
relay_reclaim_idle(struct relay *r, const struct rhop *hp)
{
	for (struct rhop *h = r->hops; h != NULL; h = h->next) {
		if (h == hp || h->head != NULL)
			continue;
		for (struct rconn *rc = h->conns; rc != NULL; rc = rc->next)
			if (!rc->dead && rc->job == NULL &&
			    smtpc_state(rc->c) == SMTPC_READY) {
				evtimer_del(rc->idle);
				smtpc_quit(rc->c);
				rconn_after(rc);
				return;
			}
	}
}

/* relay_pump - give hp's waiting jobs to idle connections, resolve hp,
 * open more connections within the limits. */
static void
relay_pump(struct relay *r, struct rhop *hp)
{
	const struct config *cfg = r->cfg;
	unsigned waiting = 0, opening = 0;
	size_t t;

	for (struct rconn *rc = hp->conns; rc != NULL && hp->head != NULL;
	    rc = rc->next)
		if (!rc->dead && rc->job == NULL &&
		    smtpc_state(rc->c) == SMTPC_READY) {
			rc_ready(rc);
			rconn_after(rc);
		}
	if (hp->head == NULL || !relay_resolve(r, hp))
		return;
	if (hp->res->failure.result != OUTCOME_PENDING) {
		/* Said for the jobs waiting now; the next ones ask again. */
		rhop_fail_waiting(r, hp, &hp->res->failure);
		hp->astate = RHOP_UNRESOLVED;
		return;
	}
	t = hp->cursor > hp->head->relay_from ? hp->cursor :
	    hp->head->relay_from;
	if (t >= hp->res->count) {
		/* Every target failed (the connections are gone). */
		if (hp->nconn == 0) {
			if (hp->last_failure.result == OUTCOME_PENDING)
				outcome_set(&hp->last_failure, OUTCOME_TEMPFAIL,
				    0, "4.4.1", "no host of %s could be "
				    "reached", hp->key);
			rhop_fail_waiting(r, hp, &hp->last_failure);
			hp->cursor = 0;
		}
		return;
	}
	for (struct qjob *j = hp->head; j != NULL; j = j->next)
		waiting++;
	for (struct rconn *rc = hp->conns; rc != NULL; rc = rc->next)
		if (!rc->dead && rc->job == NULL && rc->target >= t)
			opening++;   /* will take a job once ready */
	while (waiting > opening && hp->nconn <
	    cfg->delivery.destination_concurrency &&
	    r->nconn < cfg->delivery.concurrency) {
		relay_open(r, hp, t);
		opening++;
	}
	if (waiting > opening && hp->nconn <
	    cfg->delivery.destination_concurrency)
		relay_reclaim_idle(r, hp);
}

/* relay_hop - the destination of j (created on first use): its next
 * hop, or for the recipient domain's MX that domain. */
static struct rhop *
relay_hop(struct relay *r, const struct qjob *j)
{
	const struct route_hop *h = j->hop;
	char key[ROUTE_HOP_TEXT_MAX], dest[DNS_NAME_MAX];

	if (h->transport == ROUTE_SMTP && h->mx && h->host[0] == '\0') {
		const char *at = strrchr(j->sm.rcpts[0].address, '@');

		str_copy(dest, at != NULL ? at + 1 : "", sizeof(dest));
		snprintf(key, sizeof(key), "smtp:%s:%u", dest, h->port);
	} else {
		str_copy(dest, h->host, sizeof(dest));
		route_hop_format(h, key, sizeof(key));
	}
	for (struct rhop *hp = r->hops; hp != NULL; hp = hp->next)
		if (strcmp(hp->key, key) == 0)
			return hp;
	struct rhop *hp = xcalloc(1, sizeof(*hp));

	hp->r = r;
	str_copy(hp->key, key, sizeof(hp->key));
	str_copy(hp->dest, dest, sizeof(hp->dest));
	hp->dest_mx = h->transport == ROUTE_SMTP && h->mx;
	hp->h = h;
	hp->next = r->hops;
	r->hops = hp;
	return hp;
}

/* relay_submit - see relay.h. */
void
relay_submit(struct relay *r, struct qjob *j)
{
	struct rhop *hp = relay_hop(r, j);

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
	struct dns_options dopt;

	r->base = base;
	r->cfg = cfg;
	r->q = q;
	dns_options_config(&dopt, cfg);
	r->dns = dns_resolver_new(base, &dopt, err);
	if (r->dns == NULL) {
		error_prefix(err, "dns");
		free(r);
		return NULL;
	}
	r->ssl = SSL_CTX_new(TLS_client_method());
	if (r->ssl == NULL) {
		relay_free(r);
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
	if (cfg->delivery.tls.mode == CONFIG_DELIVERY_TLS_DANE &&
	    SSL_CTX_dane_enable(r->ssl) <= 0) {
		relay_free(r);
		error_set(err, "cannot enable DANE in the TLS client context");
		return NULL;
	}
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
		if (hp->lookup != NULL)
			mx_lookup_cancel(hp->lookup);
		mx_result_free(hp->res);
		free(hp);
	}
	dns_resolver_free(r->dns);
	if (r->ssl != NULL)
		SSL_CTX_free(r->ssl);
	explicit_bzero(r->password, sizeof(r->password));
	free(r);
}
