/*
 * policy_client.c - the pool of connections from one elemta-smtpd worker
 * to elemta-policyd (see policy_client.h for the contract).
 *
 * Called by server.c (creation, one per process) and through the session
 * seam for every policy phase of every session.  Replies come from
 * policyd over a Unix socket owned by the policyd user: trusted to speak
 * the protocol, but still bounded (WIRE_REPLY_MAX per line) and parsed by
 * wire_reply_parse, which turns anything unknown into a tempfail.
 *
 * Writing is a hand-made non-blocking queue instead of a bufferevent
 * because the END-OF-MESSAGE request carries a descriptor (SCM_RIGHTS)
 * that must travel with the request's first byte: each queued request is
 * (bytes, optional fd) and the fd goes with the first sendmsg of it.
 *
 * AUTH requests wait in a fair queue (one FIFO per client, the clients
 * in turn order) and are written from fq_cb, one per lane connection at
 * a time, so a flooding client's queued AUTHs never stand in front of
 * another client's (policy_client.h).
 *
 * Failures never run callbacks from inside policy_client_submit: a write
 * error found there is turned into a failure on the next loop turn
 * (event_active on the connection's timer), so a caller is never
 * re-entered while it is still submitting.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "fdpass.h"
#include "log.h"
#include "policy_client.h"

#define POLICY_RBUF_SIZE (WIRE_EDIT_LINE_MAX + 64)
/* An idle connection is closed by us first, well before policyd's own
 * idle limit, so policyd never closes one just as a request goes out. */
#define POLICY_IDLE_CLOSE_MS (10 * 60 * 1000)

struct fq_client;

struct policy_request {
	struct policy_client *pc;
	struct pconn *conn;       /* NULL while in the fair queue        */
	struct fq_client *fq;     /* its client's queue, while queued    */
	struct policy_request *next;
	bool auth;                /* carries a password: the AUTH lane   */
	policy_done_fn done;      /* NULL once cancelled                 */
	void *arg;
	char *data;               /* the encoded request, owned          */
	size_t len, off;          /* bytes, bytes already sent           */
	int fd;                   /* descriptor to attach, or -1         */
	uint64_t deadline_ms;     /* monotonic: of the answer, or of the
	                             wait in the fair queue while queued */
};

/* One client's AUTH requests waiting in the fair queue, in order. */
struct fq_client {
	char key[POLICY_CLIENT_KEY_MAX];
	struct policy_request *head, *tail;
	struct fq_client *next;   /* the clients' turn order              */
};

struct pconn {
	struct policy_client *pc;
	unsigned index;
	int fd;                   /* -1: not connected                   */
	struct event *rev, *wev, *timer;
	struct policy_request *head, *tail; /* awaiting replies, in order */
	struct policy_request *wcur;        /* first not fully written    */
	unsigned npending;
	unsigned nauth;           /* AUTH requests among them (0 or 1)  */
	unsigned gen;             /* bumped on every reset              */
	char fail_why[96];        /* set: fail on the next timer event  */
	char rbuf[POLICY_RBUF_SIZE];
	size_t rlen;
	struct wire_reply cur;    /* the reply being read               */
	bool cur_ok;              /* its action was the word OK         */
	uint32_t cur_delay_ms;    /* its elemta_delay_ms                */
	char cur_name[254];       /* its elemta_client_name, or ""      */
	char cur_reverse[254];    /* its elemta_reverse_client_name     */
	bool have_action;
	struct wire_headers cur_headers; /* its PREPENDs               */
	struct msg_edits cur_edits; /* its elemta_edit lines            */
	bool cur_edits_bad;       /* one could not be parsed            */
};

struct policy_client {
	struct event_base *base;
	char *path;
	uint64_t timeout_ms;
	uint64_t fd_extra_ms;     /* policy_client_set_fd_wait            */
	unsigned nconns;
	struct pconn *conns;
	/* The fair queue: clients with AUTHs waiting, in turn order (a
	 * client served goes to the back); fq_ev dispatches them (made
	 * active) and fails those that waited too long (its timer). */
	struct fq_client *fq_head, *fq_tail;
	struct event *fq_ev;
};

static void pconn_read_cb(evutil_socket_t fd, short what, void *arg);
static void pconn_write_cb(evutil_socket_t fd, short what, void *arg);
static void pconn_timer_cb(evutil_socket_t fd, short what, void *arg);
static void fq_cb(evutil_socket_t fd, short what, void *arg);
static void fq_kick(struct policy_client *pc);

/* policy_now_ms - monotonic milliseconds. */
static uint64_t
policy_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* policy_client_new - allocate the (unconnected) pool. */
struct policy_client *
policy_client_new(struct event_base *base, const char *socket_path,
    unsigned max_conns, uint64_t timeout_ms)
{
	struct policy_client *pc = xcalloc(1, sizeof(*pc));

	pc->base = base;
	pc->path = xstrdup(socket_path);
	pc->timeout_ms = timeout_ms ? timeout_ms : 1;
	pc->nconns = max_conns ? max_conns : 1;
	pc->conns = xcalloc(pc->nconns, sizeof(*pc->conns));
	for (unsigned i = 0; i < pc->nconns; i++) {
		struct pconn *c = &pc->conns[i];

		c->pc = pc;
		c->index = i;
		c->fd = -1;
		c->timer = evtimer_new(base, pconn_timer_cb, c);
		if (c->timer == NULL)
			fatal("policy client: evtimer_new failed");
	}
	pc->fq_ev = evtimer_new(base, fq_cb, pc);
	if (pc->fq_ev == NULL)
		fatal("policy client: evtimer_new failed");
	return pc;
}

/* request_data_free - wipe and free a request's bytes: an AUTH request
 * holds a password, and freed heap is not cleared. */
static void
request_data_free(struct policy_request *r)
{
	if (r->data != NULL) {
		explicit_bzero(r->data, r->len);
		free(r->data);
	}
	r->data = NULL;
}

/* request_free - release a request and its descriptor. */
static void
request_free(struct policy_request *r)
{
	if (r->fd >= 0)
		close(r->fd);
	request_data_free(r);
	free(r);
}

/* policy_result_parse - see policy_client.h. */
void
policy_result_parse(const char *action, struct policy_result *res)
{
	wire_reply_parse(action, &res->reply);
	res->action_ok = res->reply.ok;
}

/* pconn_arm_timer - the timer tracks the oldest pending request, or the
 * idle limit of a connection with nothing pending. */
static void
pconn_arm_timer(struct pconn *c)
{
	struct timeval tv;
	uint64_t now, left;

	if (c->fail_why[0] != '\0')
		return;     /* a failure is already scheduled on it */
	if (c->head == NULL) {
		if (c->fd >= 0) {
			tv.tv_sec = POLICY_IDLE_CLOSE_MS / 1000;
			tv.tv_usec = 0;
			evtimer_add(c->timer, &tv);
		} else
			evtimer_del(c->timer);
		return;
	}
	now = policy_now_ms();
	left = c->head->deadline_ms > now ? c->head->deadline_ms - now : 0;
	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (suseconds_t)((left % 1000) * 1000);
	evtimer_add(c->timer, &tv);
}

/* pconn_close - drop the socket and the partial reply (not the requests). */
static void
pconn_close(struct pconn *c)
{
	if (c->rev != NULL) {
		event_free(c->rev);
		c->rev = NULL;
	}
	if (c->wev != NULL) {
		event_free(c->wev);
		c->wev = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->rlen = 0;
	c->have_action = false;
	c->cur_delay_ms = 0;
	c->cur_headers.count = 0;
	c->cur_headers.len = 0;
	msg_edits_free(&c->cur_edits);
	c->cur_edits_bad = false;
	c->gen++;
}

/* pconn_fail - fail every request on the connection and close it.  The
 * list is detached first: callbacks may submit new requests, which then
 * see a clean, unconnected slot. */
static void
pconn_fail(struct pconn *c, const char *why)
{
	struct policy_request *r = c->head;
	struct policy_result res;

	c->head = c->tail = c->wcur = NULL;
	c->npending = 0;
	c->nauth = 0;
	c->fail_why[0] = '\0';
	evtimer_del(c->timer);
	pconn_close(c);
	if (r != NULL)
		log_warn("policy client: connection %u to %s failed: %s",
		    c->index, c->pc->path, why);
	memset(&res, 0, sizeof(res));
	res.failed = true;
	str_copy(res.why, why, sizeof(res.why));
	fq_kick(c->pc);
	while (r != NULL) {
		struct policy_request *next = r->next;

		if (r->done != NULL)
			r->done(r->arg, &res);
		request_free(r);
		r = next;
	}
}

/* pconn_fail_later - fail from the event loop, not from the caller. */
static void
pconn_fail_later(struct pconn *c, const char *why)
{
	if (c->fail_why[0] == '\0')
		str_copy(c->fail_why, why, sizeof(c->fail_why));
	event_active(c->timer, EV_TIMEOUT, 0);
}

/* pconn_connect - non-blocking connect to policyd.socket.  A Unix stream
 * connect completes at once or fails (EAGAIN means the listen queue is
 * full: treated as a failure of this request rather than a wait). */
static int
pconn_connect(struct pconn *c, char *why, size_t whylen)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(c->pc->path) >= sizeof(sun.sun_path)) {
		snprintf(why, whylen, "socket path too long");
		return -1;
	}
	strcpy(sun.sun_path, c->pc->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 &&
	    errno != EINPROGRESS) {
		snprintf(why, whylen, "connect %s: %s", c->pc->path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	c->fd = fd;
	c->rev = event_new(c->pc->base, fd, EV_READ | EV_PERSIST,
	    pconn_read_cb, c);
	c->wev = event_new(c->pc->base, fd, EV_WRITE, pconn_write_cb, c);
	if (c->rev == NULL || c->wev == NULL) {
		pconn_close(c);
		snprintf(why, whylen, "event_new failed");
		return -1;
	}
	event_add(c->rev, NULL);
	return 0;
}

/* pconn_flush - send queued requests until done or EAGAIN.  Returns -1
 * (why filled) on a hard write error. */
static int
pconn_flush(struct pconn *c, char *why, size_t whylen)
{
	while (c->wcur != NULL) {
		struct policy_request *r = c->wcur;
		ssize_t n = fdpass_send(c->fd, r->data + r->off, r->len - r->off,
		    r->off == 0 ? r->fd : -1);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				event_add(c->wev, NULL);
				return 0;
			}
			snprintf(why, whylen, "write: %s", strerror(errno));
			return -1;
		}
		if (r->fd >= 0) {
			/* It travelled with the first byte; policyd has its
			 * own copy now. */
			close(r->fd);
			r->fd = -1;
		}
		r->off += (size_t)n;
		if (r->off == r->len) {
			/* The bytes are no longer needed once sent. */
			request_data_free(r);
			c->wcur = r->next;
		}
	}
	return 0;
}

/* pconn_write_cb - the socket became writable again. */
static void
pconn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pconn *c = arg;
	char why[96];

	if (pconn_flush(c, why, sizeof(why)) < 0)
		pconn_fail(c, why);
}

/* pconn_timer_cb - the oldest request timed out, a failure was
 * scheduled by pconn_fail_later, or the connection sat idle too long. */
static void
pconn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pconn *c = arg;
	char why[96];

	if (c->fail_why[0] != '\0') {
		str_copy(why, c->fail_why, sizeof(why));
		pconn_fail(c, why);
		return;
	}
	if (c->head == NULL) {
		if (c->fd >= 0) {
			log_debug("policy client: closing idle connection %u",
			    c->index);
			pconn_close(c);
		}
		return;
	}
	if (c->head->deadline_ms > policy_now_ms()) {
		pconn_arm_timer(c);
		return;
	}
	snprintf(why, sizeof(why), "no answer within %llu ms",
	    (unsigned long long)c->pc->timeout_ms);
	pconn_fail(c, why);
}

/* pconn_reply_done - the empty line ended a reply: complete the oldest
 * request.  Returns -1 when the reply had no request (protocol error). */
static int
pconn_reply_done(struct pconn *c)
{
	struct policy_request *r = c->head;
	struct policy_result res;

	if (r == NULL || r == c->wcur)
		return -1;   /* an answer to nothing we have fully sent */
	c->head = r->next;
	if (c->head == NULL)
		c->tail = NULL;
	c->npending--;
	if (r->auth) {
		c->nauth--;
		fq_kick(c->pc);   /* the lane connection is free for the next */
	}
	memset(&res, 0, sizeof(res));
	if (c->have_action) {
		res.reply = c->cur;
		res.action_ok = c->cur_ok;
		/* Never longer than half the wait for an answer. */
		res.delay_ms = c->cur_delay_ms < c->pc->timeout_ms / 2 ?
		    c->cur_delay_ms : (uint32_t)(c->pc->timeout_ms / 2);
		if (c->cur_headers.count > 0)
			res.headers = &c->cur_headers;
	} else {
		policy_result_parse(NULL, &res);  /* no action: tempfail */
	}
	if (c->cur_edits_bad)
		policy_result_parse("451 4.3.0 Error: bad message edit from "
		    "the policy service", &res);
	else if (!msg_edits_empty(&c->cur_edits))
		res.edits = &c->cur_edits;
	c->have_action = false;
	c->cur_delay_ms = 0;
	str_copy(res.client_name, c->cur_name, sizeof(res.client_name));
	str_copy(res.reverse_client_name, c->cur_reverse,
	    sizeof(res.reverse_client_name));
	c->cur_name[0] = c->cur_reverse[0] = '\0';
	pconn_arm_timer(c);
	if (r->done != NULL)
		r->done(r->arg, &res);
	request_free(r);
	c->cur_headers.count = 0;
	c->cur_headers.len = 0;
	msg_edits_free(&c->cur_edits);
	c->cur_edits_bad = false;
	return 0;
}

/* pconn_name - keep a client name policyd sent (wire.c's reply
 * extension), or nothing when it is not one Received: may show. */
static void
pconn_name(char *dst, size_t size, const char *value)
{
	if (wire_client_name_valid(value))
		str_copy(dst, value, size);
	else
		log_warn("policy client: bad client name from policyd ignored");
}

/* pconn_read_cb - read replies: "action=..." lines, the extension
 * attributes of wire.c, other attributes ignored, an empty line ends
 * each reply. */
static void
pconn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pconn *c = arg;
	struct error err;
	ssize_t n;
	size_t start = 0;
	unsigned gen = c->gen;

	n = read(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);
	if (n < 0) {
		char why[96];

		if (errno == EAGAIN || errno == EINTR)
			return;
		snprintf(why, sizeof(why), "read: %s", strerror(errno));
		pconn_fail(c, why);
		return;
	}
	if (n == 0) {
		pconn_fail(c, "policyd closed the connection");
		return;
	}
	c->rlen += (size_t)n;
	for (;;) {
		char *line = c->rbuf + start;
		char *nl = memchr(line, '\n', c->rlen - start);
		size_t len;

		if (nl == NULL)
			break;
		len = (size_t)(nl - line);
		start += len + 1;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len == 0) {
			if (pconn_reply_done(c) < 0) {
				pconn_fail(c, "reply without a request");
				return;
			}
			if (c->gen != gen)
				return;   /* a callback reset this connection */
			continue;
		}
		line[len] = '\0';
		if (strncmp(line, WIRE_ATTR_ACTION "=",
		    sizeof(WIRE_ATTR_ACTION)) == 0) {
			struct policy_result pr;

			memset(&pr, 0, sizeof(pr));
			policy_result_parse(line + sizeof(WIRE_ATTR_ACTION), &pr);
			if (pr.reply.prepend) {
				/* A header, and a continue unless a
				 * verdict came first (wire.h). */
				if (pr.reply.header[0] != '\0' &&
				    wire_headers_add_line(&c->cur_headers,
				    pr.reply.header, &err) < 0)
					log_warn("policy client: PREPEND "
					    "dropped: %s", err.text);
				if (c->have_action)
					continue;
			}
			c->cur = pr.reply;
			c->cur_ok = pr.action_ok;
			c->have_action = true;
		} else if (strncmp(line, WIRE_ATTR_DELAY_MS "=",
		    sizeof(WIRE_ATTR_DELAY_MS)) == 0) {
			if (wire_reply_delay_parse(line +
			    sizeof(WIRE_ATTR_DELAY_MS), &c->cur_delay_ms) < 0)
				log_warn("policy client: bad %s from policyd "
				    "ignored", WIRE_ATTR_DELAY_MS);
		} else if (strncmp(line, WIRE_ATTR_CLIENT_NAME_EXT "=",
		    sizeof(WIRE_ATTR_CLIENT_NAME_EXT)) == 0) {
			pconn_name(c->cur_name, sizeof(c->cur_name), line +
			    sizeof(WIRE_ATTR_CLIENT_NAME_EXT));
		} else if (strncmp(line, WIRE_ATTR_REVERSE_CLIENT_NAME_EXT "=",
		    sizeof(WIRE_ATTR_REVERSE_CLIENT_NAME_EXT)) == 0) {
			pconn_name(c->cur_reverse, sizeof(c->cur_reverse), line +
			    sizeof(WIRE_ATTR_REVERSE_CLIENT_NAME_EXT));
		} else if (strncmp(line, WIRE_ATTR_EDIT "=",
		    sizeof(WIRE_ATTR_EDIT)) == 0 && !c->cur_edits_bad) {
			if (msg_edit_parse(&c->cur_edits, line +
			    sizeof(WIRE_ATTR_EDIT), &err) < 0) {
				log_warn("policy client: %s from policyd: %s",
				    WIRE_ATTR_EDIT, err.text);
				c->cur_edits_bad = true;
			}
		}
	}
	if (start > 0) {
		memmove(c->rbuf, c->rbuf + start, c->rlen - start);
		c->rlen -= start;
	}
	if (c->rlen == sizeof(c->rbuf))
		pconn_fail(c, "reply line too long");
}

/* pconn_lane - the slots [*lo, *hi) a request may use.  From
 * POLICY_LANES_MIN slots on, AUTH requests (they carry
 * elemta_auth_password) have the first quarter of the pool to
 * themselves, at least one slot: policyd answers a connection's requests
 * in order and pauses it while a password is hashed, so an AUTH flood
 * must not sit in front of other sessions' CONNECT/MAIL/RCPT. */
static void
pconn_lane(const struct policy_client *pc, bool auth, unsigned *lo,
    unsigned *hi)
{
	unsigned nauth = 0;

	if (pc->nconns >= POLICY_LANES_MIN)
		nauth = pc->nconns / 4 > 0 ? pc->nconns / 4 : 1;
	*lo = 0;
	*hi = pc->nconns;
	if (nauth == 0)
		return;
	if (auth)
		*hi = nauth;
	else
		*lo = nauth;
}

/* pconn_pick - the least loaded connected slot of the request's lane; an
 * unconnected slot when every connected one is busy (or none is
 * connected). */
static struct pconn *
pconn_pick(struct policy_client *pc, bool auth)
{
	struct pconn *best = NULL, *spare = NULL;
	unsigned lo, hi;

	pconn_lane(pc, auth, &lo, &hi);
	for (unsigned i = lo; i < hi; i++) {
		struct pconn *c = &pc->conns[i];

		if (c->fail_why[0] != '\0')
			continue;    /* about to fail: do not add to it */
		if (c->fd < 0) {
			if (spare == NULL && c->head == NULL)
				spare = c;
			continue;
		}
		if (best == NULL || c->npending < best->npending)
			best = c;
	}
	if (best != NULL && (best->npending == 0 || spare == NULL))
		return best;
	return spare != NULL ? spare : best;
}

/* policy_request_is_auth - the encoded request carries a password. */
static bool
policy_request_is_auth(const struct strbuf *req)
{
	static const char attr[] = "\n" WIRE_AUTH_PASSWORD "=";

	return req->data != NULL &&
	    memmem(req->data, req->len, attr, sizeof(attr) - 1) != NULL;
}

/* pconn_peer_gone - an idle connection whose policyd worker went away
 * (it was restarted, or retired by a reload) shows EOF before we use it:
 * checking costs one recv, and spares the request that would otherwise
 * be written to a dead socket and fail. */
static bool
pconn_peer_gone(struct pconn *c)
{
	char b;
	ssize_t n;

	if (c->fd < 0 || c->head != NULL || c->fail_why[0] != '\0')
		return false;
	n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR);
}

/* pconn_attach - write request r on connection c (connecting it first
 * when needed); its answer is due timeout_ms from now.  -1 (why filled,
 * r untouched) when no connection can be made. */
static int
pconn_attach(struct pconn *c, struct policy_request *r, char *why,
    size_t whylen)
{
	char werr[96];

	if (pconn_peer_gone(c)) {
		log_debug("policy client: connection %u closed by policyd; "
		    "reconnecting", c->index);
		pconn_close(c);
	}
	if (c->fd < 0 && pconn_connect(c, why, whylen) < 0)
		return -1;
	r->conn = c;
	r->fq = NULL;
	r->next = NULL;
	r->deadline_ms = policy_now_ms() + c->pc->timeout_ms +
	    (r->fd >= 0 ? c->pc->fd_extra_ms : 0);
	/* policyd answers in order: never due before the one ahead. */
	if (c->tail != NULL && c->tail->deadline_ms > r->deadline_ms)
		r->deadline_ms = c->tail->deadline_ms;
	if (c->tail != NULL)
		c->tail->next = r;
	else
		c->head = r;
	c->tail = r;
	c->npending++;
	if (r->auth)
		c->nauth++;
	if (c->head == r)
		pconn_arm_timer(c);
	if (c->wcur == NULL) {
		c->wcur = r;
		if (pconn_flush(c, werr, sizeof(werr)) < 0)
			pconn_fail_later(c, werr);
	}
	return 0;
}

/* request_fail - complete a request that never reached a connection. */
static void
request_fail(struct policy_request *r, const char *why)
{
	struct policy_result res;

	memset(&res, 0, sizeof(res));
	res.failed = true;
	str_copy(res.why, why, sizeof(res.why));
	if (r->done != NULL)
		r->done(r->arg, &res);
	request_free(r);
}

/*==== The fair queue of AUTH requests ====*/

/* policy_request_client_key - the fair queue's client: the value of
 * client_address in the encoded request ("" when absent: one shared
 * queue for whatever does not say). */
static void
policy_request_client_key(const char *data, size_t len, char *key,
    size_t size)
{
	static const char attr[] = WIRE_ATTR_CLIENT_ADDRESS "=";
	const char *p = data, *end = data + len, *v = NULL;

	key[0] = '\0';
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl != NULL ? nl : end) - p);

		if (n >= sizeof(attr) - 1 &&
		    memcmp(p, attr, sizeof(attr) - 1) == 0) {
			v = p + sizeof(attr) - 1;
			n -= sizeof(attr) - 1;
			if (n >= size)
				n = size - 1;
			memcpy(key, v, n);
			key[n] = '\0';
			return;
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
}

/* fq_kick - dispatch on the next loop turn (never from inside a caller's
 * submit or a callback's stack). */
static void
fq_kick(struct policy_client *pc)
{
	if (pc->fq_head != NULL)
		event_active(pc->fq_ev, EV_TIMEOUT, 0);
}

/* fq_push - r waits behind its client's earlier AUTHs; a client new to
 * the queue takes its turn after every client already waiting. */
static void
fq_push(struct policy_client *pc, struct policy_request *r, const char *key)
{
	struct fq_client *fc;

	for (fc = pc->fq_head; fc != NULL; fc = fc->next)
		if (strcmp(fc->key, key) == 0)
			break;
	if (fc == NULL) {
		fc = xcalloc(1, sizeof(*fc));
		str_copy(fc->key, key, sizeof(fc->key));
		if (pc->fq_tail != NULL)
			pc->fq_tail->next = fc;
		else
			pc->fq_head = fc;
		pc->fq_tail = fc;
	}
	r->fq = fc;
	r->next = NULL;
	if (fc->tail != NULL)
		fc->tail->next = r;
	else
		fc->head = r;
	fc->tail = r;
}

/* fq_client_unlink - take fc (empty) out of the turn order. */
static void
fq_client_unlink(struct policy_client *pc, struct fq_client *fc)
{
	struct fq_client **pp = &pc->fq_head, *prev = NULL;

	while (*pp != NULL && *pp != fc) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (*pp == NULL)
		return;
	*pp = fc->next;
	if (pc->fq_tail == fc)
		pc->fq_tail = prev;
	free(fc);
}

/* fq_pop - the next AUTH in turn: the first client's oldest; that client
 * then goes to the back of the turn order (or leaves it, served out). */
static struct policy_request *
fq_pop(struct policy_client *pc)
{
	struct fq_client *fc = pc->fq_head;
	struct policy_request *r;

	if (fc == NULL)
		return NULL;
	r = fc->head;
	fc->head = r->next;
	if (fc->head == NULL)
		fc->tail = NULL;
	r->next = NULL;
	r->fq = NULL;
	pc->fq_head = fc->next;
	if (pc->fq_head == NULL)
		pc->fq_tail = NULL;
	fc->next = NULL;
	if (fc->head == NULL) {
		free(fc);
		return r;
	}
	if (pc->fq_tail != NULL)
		pc->fq_tail->next = fc;
	else
		pc->fq_head = fc;
	pc->fq_tail = fc;
	return r;
}

/* fq_remove - take a queued request out (cancelled). */
static void
fq_remove(struct policy_client *pc, struct policy_request *r)
{
	struct fq_client *fc = r->fq;
	struct policy_request **pp = &fc->head, *prev = NULL;

	while (*pp != NULL && *pp != r) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (*pp == NULL)
		return;
	*pp = r->next;
	if (fc->tail == r)
		fc->tail = prev;
	r->fq = NULL;
	if (fc->head == NULL)
		fq_client_unlink(pc, fc);
}

/* fq_expired - detach every queued request whose wait is over (each
 * client's queue is in deadline order), as a list. */
static struct policy_request *
fq_expired(struct policy_client *pc, uint64_t now)
{
	struct policy_request *out = NULL, **tail = &out;
	struct fq_client *fc = pc->fq_head;

	while (fc != NULL) {
		struct fq_client *next = fc->next;

		while (fc->head != NULL && fc->head->deadline_ms <= now) {
			struct policy_request *r = fc->head;

			fc->head = r->next;
			r->next = NULL;
			r->fq = NULL;
			*tail = r;
			tail = &r->next;
		}
		if (fc->head == NULL) {
			fc->tail = NULL;
			fq_client_unlink(pc, fc);
		}
		fc = next;
	}
	return out;
}

/* fq_dispatch - give every lane connection without an AUTH in flight
 * the next AUTH in turn.  Requests that cannot be written (no
 * connection) are returned as a list to fail. */
static struct policy_request *
fq_dispatch(struct policy_client *pc, char *why, size_t whylen)
{
	struct policy_request *failed = NULL;
	unsigned lo, hi;

	pconn_lane(pc, true, &lo, &hi);
	for (unsigned i = lo; i < hi && pc->fq_head != NULL; i++) {
		struct pconn *c = &pc->conns[i];
		struct policy_request *r;

		if (c->fail_why[0] != '\0' || c->nauth > 0)
			continue;
		r = fq_pop(pc);
		if (pconn_attach(c, r, why, whylen) < 0) {
			r->next = failed;
			failed = r;
		}
	}
	return failed;
}

/* fq_cb - dispatch, fail what waited too long, watch the next deadline. */
static void
fq_cb(evutil_socket_t fd, short what, void *arg)
{
	struct policy_client *pc = arg;
	struct policy_request *expired, *failed;
	char why[128], cwhy[96] = "";
	uint64_t now = policy_now_ms(), first = 0;

	expired = fq_expired(pc, now);
	failed = fq_dispatch(pc, cwhy, sizeof(cwhy));
	for (struct fq_client *fc = pc->fq_head; fc != NULL; fc = fc->next)
		if (first == 0 || fc->head->deadline_ms < first)
			first = fc->head->deadline_ms;
	if (first != 0) {
		uint64_t left = first > now ? first - now : 0;
		struct timeval tv = { (time_t)(left / 1000),
		    (suseconds_t)((left % 1000) * 1000) };

		evtimer_add(pc->fq_ev, &tv);
	} else {
		evtimer_del(pc->fq_ev);
	}
	if (failed != NULL)
		fq_kick(pc);    /* policyd unreachable: fail the rest soon too */
	/* Callbacks last: they may submit (which only queues and kicks). */
	snprintf(why, sizeof(why), "no AUTH slot within %llu ms",
	    (unsigned long long)(pc->timeout_ms * POLICY_AUTH_WAIT_FACTOR));
	while (expired != NULL) {
		struct policy_request *next = expired->next;

		request_fail(expired, why);
		expired = next;
	}
	while (failed != NULL) {
		struct policy_request *next = failed->next;

		request_fail(failed, cwhy);
		failed = next;
	}
}

/*==== Submitting ====*/

/* policy_client_submit - queue one request on the best connection; an
 * AUTH goes to the fair queue. */
struct policy_request *
policy_client_submit(struct policy_client *pc, struct strbuf *req, int fd,
    policy_done_fn done, void *arg, char *why, size_t whylen)
{
	bool auth = policy_request_is_auth(req);
	struct pconn *c = auth ? NULL : pconn_pick(pc, false);
	struct policy_request *r;
	char key[POLICY_CLIENT_KEY_MAX];

	if (!auth && c == NULL)
		snprintf(why, whylen, "every policy connection is failing");
	r = xcalloc(1, sizeof(*r));
	r->pc = pc;
	r->auth = auth;
	r->done = done;
	r->arg = arg;
	r->data = req->data;
	r->len = req->len;
	r->fd = fd;
	req->data = NULL;
	req->len = req->cap = 0;
	strbuf_free(req);
	if (auth) {
		policy_request_client_key(r->data, r->len, key, sizeof(key));
		r->deadline_ms = policy_now_ms() +
		    pc->timeout_ms * POLICY_AUTH_WAIT_FACTOR;
		fq_push(pc, r, key);
		fq_kick(pc);    /* dispatches, and watches the deadline */
		return r;
	}
	if (c == NULL || pconn_attach(c, r, why, whylen) < 0) {
		r->done = NULL;
		request_free(r);
		return NULL;
	}
	return r;
}

/* policy_client_connect_all - open every slot now (failures are left to
 * the lazy reconnect).  Connections made at start-up are accepted by the
 * policyd workers running then, so a worker that later stops or dies is
 * noticed as EOF on its connections instead of requests sitting in the
 * listen queue. */
void
policy_client_connect_all(struct policy_client *pc)
{
	char why[128];
	unsigned ok = 0;

	for (unsigned i = 0; i < pc->nconns; i++) {
		struct pconn *c = &pc->conns[i];

		if (c->fd >= 0 || pconn_connect(c, why, sizeof(why)) == 0) {
			ok++;
			pconn_arm_timer(c);
		}
	}
	if (ok < pc->nconns)
		log_warn("policy client: %u of %u connections to %s open (%s)",
		    ok, pc->nconns, pc->path, why);
}

/* policy_client_cancel - forget the callback; the reply is still read
 * (and dropped) to keep the connection's order. */
void
policy_client_cancel(struct policy_request *r)
{
	if (r == NULL)
		return;
	r->done = NULL;
	if (r->conn == NULL && r->fq != NULL) {
		fq_remove(r->pc, r);
		request_free(r);
	}
}

/* policy_client_set_fd_wait - see policy_client.h. */
void
policy_client_set_fd_wait(struct policy_client *pc, uint64_t extra_ms)
{
	pc->fd_extra_ms = extra_ms;
}

/* policy_client_free - fail what is pending, close everything. */
void
policy_client_free(struct policy_client *pc)
{
	if (pc == NULL)
		return;
	for (unsigned i = 0; i < pc->nconns; i++)
		pconn_fail(&pc->conns[i], "policy client shutting down");
	/* Queued AUTHs fail too (a callback may queue another: repeat). */
	while (pc->fq_head != NULL) {
		struct policy_request *r = fq_pop(pc);

		request_fail(r, "policy client shutting down");
	}
	for (unsigned i = 0; i < pc->nconns; i++)
		event_free(pc->conns[i].timer);
	event_free(pc->fq_ev);
	free(pc->conns);
	free(pc->path);
	free(pc);
}
