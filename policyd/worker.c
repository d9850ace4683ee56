/*
 * worker.c - elemta-policyd's event loop (libevent): many client
 * connections per worker process, each a stream of pipelined policy
 * requests answered strictly in order.
 *
 * Called by policyd/main.c (worker_run), and by tests/unit/test_worker.c
 * through worker_new and the worker_ops seam.  Runs unprivileged
 * (elemtactl dropped privileges before exec).  Untrusted input: every
 * byte read from a connection - Elemta's smtpd on the private socket, or
 * a Postfix (or anyone who can reach policyd.postfix_listen) on the
 * Postfix listener - and any descriptor passed with it.  Bad input
 * closes that connection with a log line; it never stops the worker.
 *
 * Per connection: bytes are read with fdpass_recv so a descriptor sent
 * with SCM_RIGHTS (smtpd's spooled message at END-OF-MESSAGE) is caught;
 * received descriptors queue FIFO and a request with message_fd=1 takes
 * the oldest.  Requests are decided one at a time, synchronously (the
 * chain is CPU and LMDB work only), and replies are appended to the
 * output buffer in order.  When the output backs up (a client that does
 * not read), parsing and reading pause until it drains.
 *
 * Group commit: with the LMDB table in counters.sync safe (where a commit
 * is an fdatasync; in fast mode it costs nothing and batching only held
 * replies and the writer lock longer), the decisions one loop turn makes -
 * across all connections - share one write transaction (counter_batch_*),
 * so safe mode pays one flush per turn instead of one per decision.  Every
 * reply given while the batch is open is held (out[held_from..)) until it
 * commits: the commit runs from an event of the lowest priority, i.e. once
 * no connection has input left to decide (or inline: when the batch
 * reaches WORKER_BATCH_MAX decisions or WORKER_BATCH_MS of age, as soon
 * as it is known lost (counter_batch_failed), and before a slow request -
 * a password hash or a message scan - which is then decided on its own,
 * outside any batch, so it never runs under the table's writer lock and
 * its answer is its own).  A batch that fails to commit turns each of its
 * held replies into a temporary failure: nothing is answered as decided
 * unless its counters are stored.
 *
 * AUTH: the password hash never runs on this loop (issue 22).  The host
 * answers what needs no hash at once (plugin_host_auth_begin: no users
 * table, the attempt rate, a lockout); otherwise the hash goes to this
 * worker's thread pool (auth_pool.c, a fair share per client), the
 * connection pauses (CONN_AUTH: its later requests wait, as replies go
 * out in order) while every other connection is served, and when the
 * hash is done the decision ends (plugin_host_auth_finish), is answered
 * at once and the connection resumes.  A delay the gates asked for (a
 * user under attack from many addresses) is not waited out here: it
 * travels in the reply (elemta_delay_ms, wire.c) and smtpd's session
 * waits it out, so the connection is never held by it.
 * A client over its share of the pool is answered 454 at once.  smtpd
 * sends AUTH requests on connections of their own (policy_client.c), so
 * a paused connection holds up AUTHs only.  Behind the test seam (no
 * auth_begin op) AUTH is decided whole, like any request.
 *
 * A request carrying elemta_auth_password is wiped from the
 * parser's buffer as soon as it is decided, read buffers are wiped once
 * consumed and at close, so a password does not linger in this process's
 * memory (the parser may still have left a copy behind when it grew its
 * buffer with realloc).  A successful AUTH is answered "action=OK" (the
 * contract of docs/internals.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth_pool.h"
#include "fdpass.h"
#include "log.h"
#include "milter.h"
#include "msg_edit.h"
#include "strbuf.h"
#include "wire.h"
#include "worker.h"

#define CONN_READ_CHUNK 16384
#define CONN_FDS_MAX 8              /* queued message descriptors       */
#define CONN_OUT_HIGH (256 * 1024)  /* pause parsing above this backlog */
#define CONN_OUT_LIMIT (4 * 1024 * 1024)
#define CONN_IDLE_SECONDS 3600      /* a silent connection is dropped   */
#define WORKER_CONNS_MAX 4096
/* Clients (smtpd pools, Postfix smtpd processes) keep their connections
 * for long, so whichever worker wins the accept race serves a client for
 * its lifetime.  To spread clients evenly without coordination, a worker
 * that already has connections yields: it waits WORKER_YIELD_MS per
 * connection it holds (capped) before accepting, so an idler worker
 * watching the same socket takes the connection first. */
#define WORKER_YIELD_MS 2
#define WORKER_YIELD_MAX_MS 50
#define WORKER_SWEEP_EVERY 5        /* ticks (seconds) between sweeps   */
#define WORKER_BATCH_MAX 64         /* decisions per group commit       */
#define WORKER_BATCH_MS 5           /* oldest held reply, at most       */
/* Event priorities (of 3; events default to the middle one): the group
 * commit runs after everything else of a loop turn. */
#define WORKER_PRIO_COUNT 3
#define WORKER_PRIO_COMMIT 2
#define WORKER_SWEEP_KEYS 1000

/* A connection's life: reading requests; paused because its replies are
 * not being read; draining the last replies after the peer's EOF. */
enum conn_state {
	CONN_READING,
	CONN_THROTTLED,
	CONN_DRAINING,
	CONN_AUTH,          /* its AUTH's hash is on the pool */
	CONN_DNS,           /* its request waits for DNS answers */
	CONN_MILTER,        /* its END-OF-MESSAGE is with the milters */
};

struct worker;
struct conn;

/* One AUTH whose hash is on the pool (job first: the pool hands back the
 * job's address). */
struct worker_auth {
	struct auth_job job;
	struct conn *c;            /* NULL once the connection closed      */
	struct timespec started;
};

struct conn {
	struct worker *w;
	struct conn *prev, *next;
	unsigned long id;
	int fd;
	enum plugin_listener listener;
	enum conn_state state;
	struct event *ev_read;
	struct event *ev_write;
	struct wire_parser parser;
	char in[CONN_READ_CHUNK];   /* the last read; in[in_off..in_len) unparsed */
	size_t in_off, in_len;
	struct strbuf out;
	size_t out_off;
	bool write_armed;
	bool prepend_drop_logged;  /* once per connection: Postfix asks at
	                            * every RCPT over one connection */
	int fds[CONN_FDS_MAX];      /* FIFO of received descriptors */
	size_t fd_head, fd_count;
	/* Replies held for the worker's batch: out[held_from..) answers
	 * held_count requests (see the header comment); held while > 0. */
	struct conn *held_next;
	size_t held_from;
	unsigned held_count;
	/* The current transaction (Postfix: one smtpd session per
	 * connection), kept by the plugin host. */
	struct plugin_txn txn;
	struct worker_auth *auth;   /* in CONN_AUTH                          */
	struct plugin_wait *wait;   /* in CONN_DNS: the request's lookups    */
	int wait_fd;                /* in CONN_DNS: its message, or -1       */
	struct milter_run *milter;  /* in CONN_MILTER                        */
	struct plugin_decision milter_d; /* the chain's verdict meanwhile    */
};

/* One listening socket and what arrives on it. */
struct worker_listener {
	struct worker *w;
	enum plugin_listener kind;
	int fd;
	struct event *ev;
	struct event *ev_yield;   /* re-arms ev after yielding to idler workers */
};

struct worker {
	struct event_base *base;
	const struct worker_ops *ops;
	void *ops_arg;
	struct plugin_host *host;   /* worker_run's (housekeeping), or NULL */
	struct counter_store *cs;   /* worker_run's, or NULL             */
	struct worker_listener listeners[2];
	struct event *ev_term, *ev_int, *ev_tick;
	struct conn *conns;
	size_t nconns;
	unsigned long next_id;
	unsigned ticks;
	/* Group commit (LMDB safe mode only: counter_store_batches). */
	bool batching;
	bool batch_open;
	unsigned batch_decisions;
	struct timespec batch_started;
	struct conn *held;          /* connections with replies held */
	struct event *ev_commit;
	struct auth_pool *pool;     /* NULL: AUTH decided whole (decide) */
	struct event *ev_pool;
	struct milter_chain *milters; /* worker_run's, or NULL: none       */
};

static void conn_on_read(evutil_socket_t fd, short what, void *arg);
static void conn_on_write(evutil_socket_t fd, short what, void *arg);
static void conn_process(struct conn *c);
static void conn_on_dns_ready(void *arg);
static void worker_batch_commit(struct worker *w);

/* ==== Connection state ==== */

/* conn_state_name - for logs. */
static const char *
conn_state_name(enum conn_state s)
{
	switch (s) {
	case CONN_READING:
		return "reading";
	case CONN_THROTTLED:
		return "throttled";
	case CONN_DRAINING:
		return "draining";
	case CONN_AUTH:
		return "hashing";
	case CONN_DNS:
		return "dns";
	case CONN_MILTER:
		return "milters";
	}
	return "?";
}

/* conn_enter_state - the one place a connection's state changes; arms or
 * disarms reading to match. */
static void
conn_enter_state(struct conn *c, enum conn_state s)
{
	struct timeval idle = { CONN_IDLE_SECONDS, 0 };

	if (c->state != s)
		log_debug("conn %lu: %s -> %s", c->id, conn_state_name(c->state),
		    conn_state_name(s));
	c->state = s;
	if (s == CONN_READING)
		event_add(c->ev_read, &idle);
	else
		event_del(c->ev_read);
}

/* conn_close - forget the connection, its queued descriptors and buffers. */
static void
conn_close(struct conn *c)
{
	struct worker *w = c->w;

	if (c->auth != NULL) {
		c->auth->c = NULL;   /* the pool still has it */
		c->auth = NULL;
	}
	if (c->wait != NULL) {
		w->ops->wait_free(w->ops_arg, c->wait);
		c->wait = NULL;
	}
	if (c->wait_fd >= 0)
		close(c->wait_fd);
	milter_run_cancel(c->milter);
	c->milter = NULL;
	event_free(c->ev_read);
	event_free(c->ev_write);
	close(c->fd);
	/* A half-received AUTH request may hold a password. */
	explicit_bzero(c->in, sizeof(c->in));
	if (c->parser.req.buf != NULL)
		explicit_bzero(c->parser.req.buf, c->parser.req.bufcap);
	while (c->fd_count > 0) {
		close(c->fds[c->fd_head]);
		c->fd_head = (c->fd_head + 1) % CONN_FDS_MAX;
		c->fd_count--;
	}
	wire_parser_free(&c->parser);
	strbuf_free(&c->out);
	if (c->held_count > 0) {
		struct conn **pp = &w->held;

		while (*pp != NULL && *pp != c)
			pp = &(*pp)->held_next;
		if (*pp == c)
			*pp = c->held_next;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	free(c);
}

/* ==== Output ==== */

/* conn_flush - write what the socket takes, up to the held replies;
 * returns -1 when the connection was closed (by an error or at the end of
 * draining). */
static int
conn_flush(struct conn *c)
{
	size_t end = c->held_count > 0 ? c->held_from : c->out.len;

	while (c->out_off < end) {
		ssize_t n = write(c->fd, c->out.data + c->out_off,
		    end - c->out_off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->write_armed) {
				event_add(c->ev_write, NULL);
				c->write_armed = true;
			}
			return 0;
		}
		if (n <= 0) {
			log_info("conn %lu: write failed: %s; closing", c->id,
			    n < 0 ? strerror(errno) : "no progress");
			conn_close(c);
			return -1;
		}
		c->out_off += (size_t)n;
	}
	if (c->write_armed) {
		event_del(c->ev_write);
		c->write_armed = false;
	}
	if (c->held_count > 0)
		return 0;       /* the rest waits for the batch's commit */
	strbuf_reset(&c->out);
	c->out_off = 0;
	if (c->state == CONN_DRAINING && c->in_off == c->in_len) {
		conn_close(c);
		return -1;
	}
	return 0;
}

/* conn_note_reply - one reply was appended at offset from: while the
 * worker's batch is open it is held until the batch commits. */
static void
conn_note_reply(struct conn *c, size_t from)
{
	struct worker *w = c->w;

	if (c->held_count > 0) {
		c->held_count++;
	} else if (w->batch_open) {
		c->held_from = from;
		c->held_count = 1;
		c->held_next = w->held;
		w->held = c;
	}
}

static int conn_tempfail(struct conn *c, const char *text);

/* conn_reply_full - append one encoded reply: OK (ok) or res, with the
 * extension attributes of ext (the private socket only: the caller
 * passes none on the Postfix listener), the PREPEND lines of hdrs
 * (may be NULL; one at most on the Postfix listener, the rest logged as
 * dropped) and the message edits (may be NULL; END-OF-MESSAGE on the
 * private socket: the milters', before the reply's empty line). */
static int
conn_reply_full(struct conn *c, const struct elemta_result *res, bool ok,
    const struct wire_reply_ext *ext, const struct wire_headers *hdrs,
    const struct msg_edits *edits)
{
	size_t from = c->out.len;
	unsigned dropped = 0;

	if (wire_reply_encode_headers(&c->out, res, ok, ext, hdrs,
	    c->listener == PLUGIN_LISTENER_POSTFIX, &dropped) != 0) {
		log_err("conn %lu: reply backlog over %d bytes; closing", c->id,
		    CONN_OUT_LIMIT);
		return -1;
	}
	if (edits != NULL && !msg_edits_empty(edits) &&
	    (strbuf_truncate(&c->out, c->out.len - 1),
	    msg_edits_encode(edits, WIRE_ATTR_EDIT, &c->out) |
	    strbuf_append(&c->out, "\n", 1)) != 0) {
		/* Milters' edits too large for the backlog: this message
		 * is refused for now, the connection (other sessions'
		 * requests are on it) stays. */
		strbuf_truncate(&c->out, from);
		log_warn("conn %lu: the message's edits do not fit the reply "
		    "backlog of %d bytes; tempfail", c->id, CONN_OUT_LIMIT);
		return conn_tempfail(c, "Message edits too large, try again "
		    "later");
	}
	if (dropped > 0 && !c->prepend_drop_logged) {
		/* a rule that prepends two headers (SPF) drops one in every
		 * reply on this connection: say so once, not per request */
		c->prepend_drop_logged = true;
		log_warn("conn %lu: %u prepended header(s) dropped: a reply on "
		    "the Postfix listener carries one PREPEND, and none "
		    "with DISCARD or HOLD (not logged again on this "
		    "connection)", c->id, dropped);
	}
	conn_note_reply(c, from);
	return 0;
}

/* conn_reply - append one encoded reply. */
static int
conn_reply(struct conn *c, const struct elemta_result *res)
{
	struct wire_reply_ext none = { 0 };

	return conn_reply_full(c, res, false, &none, NULL, NULL);
}

/* ==== Requests ==== */

/* conn_pop_fd - the oldest received descriptor, or -1. */
static int
conn_pop_fd(struct conn *c)
{
	int fd;

	if (c->fd_count == 0)
		return -1;
	fd = c->fds[c->fd_head];
	c->fd_head = (c->fd_head + 1) % CONN_FDS_MAX;
	c->fd_count--;
	return fd;
}

/* conn_push_fd - queue a received descriptor; false when the queue is
 * full (a peer sending descriptors nobody asked for). */
static bool
conn_push_fd(struct conn *c, int fd)
{
	if (c->listener == PLUGIN_LISTENER_POSTFIX) {
		/* Never honoured there: drop it at once. */
		close(fd);
		return true;
	}
	if (c->fd_count == CONN_FDS_MAX) {
		close(fd);
		return false;
	}
	c->fds[(c->fd_head + c->fd_count) % CONN_FDS_MAX] = fd;
	c->fd_count++;
	return true;
}

/* conn_tempfail - answer a request the host could not even look at. */
static int
conn_tempfail(struct conn *c, const char *text)
{
	struct elemta_result res;

	memset(&res, 0, sizeof(res));
	res.action = ELEMTA_TEMPFAIL;
	res.smtp_code = 451;
	str_copy(res.enhanced, "4.3.0", sizeof(res.enhanced));
	str_copy(res.message, text, sizeof(res.message));
	return conn_reply(c, &res);
}

/* ==== Group commit ==== */

/* batch_age_ms - how long the open batch has been holding replies. */
static long
batch_age_ms(const struct worker *w)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - w->batch_started.tv_sec) * 1000 +
	    (now.tv_nsec - w->batch_started.tv_nsec) / 1000000;
}

/* worker_batch_join - before a decision: commit the open batch first when
 * it is big or old enough, or when this request is slow; then make sure
 * a batch is open and its commit scheduled.  A slow request (password
 * hash, message scan) is decided outside any batch: it must not run under
 * the writer lock a batch may hold, and on its own its answer is exactly
 * what the host decided (an AUTH whose counters fail is 454, not the
 * batch's 451). */
static void
worker_batch_join(struct worker *w, bool slow)
{
	if (!w->batching)
		return;
	if (w->batch_open && (slow || w->batch_decisions >= WORKER_BATCH_MAX ||
	    batch_age_ms(w) >= WORKER_BATCH_MS))
		worker_batch_commit(w);
	if (w->batch_open || slow)
		return;
	w->ops->batch_begin(w->ops_arg);
	w->batch_open = true;
	w->batch_decisions = 0;
	clock_gettime(CLOCK_MONOTONIC, &w->batch_started);
	event_active(w->ev_commit, EV_TIMEOUT, 0);
}

/* batch_fail_replies - c's held replies answered decisions whose counters
 * were lost: each becomes a temporary failure, and the transaction is
 * counted afresh (what it counted was not stored). */
static void
batch_fail_replies(struct conn *c)
{
	unsigned n = c->held_count;

	strbuf_truncate(&c->out, c->held_from);
	c->held_count = 0;
	plugin_txn_forget(&c->txn);
	while (n-- > 0)
		if (conn_tempfail(c, "Temporary policy failure, try again "
		    "later") != 0)
			break;  /* cannot happen below CONN_OUT_LIMIT */
}

/* worker_batch_send - commit the open batch and release the replies it
 * held (a failed batch's turned into tempfails).  now: write them at once
 * (top level only); else from each connection's write event, because
 * closing a connection here (a write error) could pull it from under a
 * caller that is processing it.  Each connection is unlinked from the
 * list before it is touched: conn_on_write may close it or put it in a
 * new batch. */
static void
worker_batch_send(struct worker *w, bool now)
{
	struct conn *c = w->held, *next;
	struct error err;
	bool failed;

	if (!w->batch_open)
		return;
	w->batch_open = false;
	w->held = NULL;
	failed = w->ops->batch_end(w->ops_arg, &err) != 0;
	if (failed)
		log_msg(w->cs != NULL && counter_store_unavailable(w->cs) ?
		    LOG_LEVEL_DEBUG : LOG_LEVEL_ERR,
		    "counter table commit of %u decisions "
		    "failed: %s; answering them with tempfail",
		    w->batch_decisions, err.text);
	for (; c != NULL; c = next) {
		next = c->held_next;
		c->held_next = NULL;
		if (failed)
			batch_fail_replies(c);
		c->held_count = 0;
		if (now)
			conn_on_write(c->fd, EV_WRITE, c);
		else
			event_active(c->ev_write, EV_WRITE, 1);
	}
}

/* worker_batch_commit - commit from inside some connection's processing. */
static void
worker_batch_commit(struct worker *w)
{
	worker_batch_send(w, false);
}

/* worker_on_commit - the lowest-priority event: every connection with
 * input has been served this turn. */
static void
worker_on_commit(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker_batch_send(arg, true);
}

static int conn_answer_delayed(struct conn *c,
    const struct plugin_decision *d, uint32_t delay_ms);

/* conn_answer - queue the reply of a decision made for c. */
static int
conn_answer(struct conn *c, const struct plugin_decision *d)
{
	return conn_answer_delayed(c, d, 0);
}

/* conn_answer_delayed - conn_answer, telling smtpd to hold its reply to
 * the client back delay_ms (the slow-down a gate asked for: the
 * connection itself is never held, so other AUTHs behind this one are
 * not delayed).  A lost batch fails every later decision in it: end it
 * now (its held replies, this one included, become temporary failures)
 * so the next decision starts afresh. */
static int
conn_answer_delayed(struct conn *c, const struct plugin_decision *d,
    uint32_t delay_ms)
{
	struct wire_reply_ext ext = { .delay_ms = delay_ms };
	int rc;

	if (d->names) {
		ext.client_name = d->client_name;
		ext.reverse_client_name = d->reverse_client_name;
	}
	if (c->listener != PLUGIN_LISTENER_ELEMTA)
		memset(&ext, 0, sizeof(ext));   /* the private socket's */
	rc = conn_reply_full(c, &d->result, d->phase == ELEMTA_PHASE_AUTH &&
	    d->result.action == ELEMTA_CONTINUE, &ext, &d->headers, NULL);
	if (rc == 0 && c->w->batch_open &&
	    c->w->ops->batch_failed(c->w->ops_arg))
		worker_batch_commit(c->w);
	return rc;
}

/* conn_plugin_request - the host's view of request req of c. */
static void
conn_plugin_request(struct conn *c, const struct wire_request *req,
    struct plugin_request *rq)
{
	memset(rq, 0, sizeof(*rq));
	rq->req = req;
	rq->listener = c->listener;
	rq->message_fd = -1;
	rq->auth_succeeded = -1;
	if (c->listener == PLUGIN_LISTENER_POSTFIX)
		rq->txn = &c->txn;
}

/* conn_auth_begin - an AUTH request: answered now when no hash is needed,
 * else its hash queued and c paused; 1 when paused, else conn_answer's
 * result. */
static int
conn_auth_begin(struct conn *c, const struct plugin_request *rq)
{
	struct worker *w = c->w;
	struct worker_auth *wa = xcalloc(1, sizeof(*wa));
	struct plugin_decision d;

	worker_batch_join(w, true);
	clock_gettime(CLOCK_MONOTONIC, &wa->started);
	if (w->ops->auth_begin(w->ops_arg, rq, &d, &wa->job) == 0) {
		free(wa);
		w->batch_decisions++;
		return conn_answer(c, &d);
	}
	if (auth_pool_submit(w->pool, &wa->job) != 0) {
		auth_job_wipe(&wa->job);
		free(wa);
		log_info("conn %lu: AUTH hashing is at its limit for this "
		    "client; answering 454", c->id);
		memset(&d, 0, sizeof(d));
		d.phase = ELEMTA_PHASE_AUTH;
		d.result.action = ELEMTA_TEMPFAIL;
		d.result.smtp_code = 454;
		str_copy(d.result.enhanced, "4.7.0", sizeof(d.result.enhanced));
		str_copy(d.result.message, "Too many authentication attempts in "
		    "progress, try again later", sizeof(d.result.message));
		return conn_answer(c, &d);
	}
	wa->c = c;
	c->auth = wa;
	conn_enter_state(c, CONN_AUTH);
	return 1;
}

/* conn_resume - a paused request (AUTH hash, DNS, milters) was answered
 * (rc 0: go on with the buffered input) or its reply did not fit (close). */
static void
conn_resume(struct conn *c, int rc)
{
	if (rc != 0) {
		conn_close(c);
		return;
	}
	wire_parser_next(&c->parser);
	conn_enter_state(c, CONN_READING);
	conn_process(c);
}

/* ==== Milters (policyd/milter.h) ==== */

/* conn_milters_apply - the milters have their say: an END-OF-MESSAGE
 * from Elemta's smtpd the chain let through (continue or quarantine:
 * policy first, docs/milters.md), on a listener some milter serves. */
static bool
conn_milters_apply(const struct conn *c, const struct wire_request *req,
    const struct plugin_decision *d)
{
	return c->w->milters != NULL && c->listener == PLUGIN_LISTENER_ELEMTA &&
	    d->phase == ELEMTA_PHASE_EOM &&
	    (d->result.action == ELEMTA_CONTINUE ||
	    d->result.action == ELEMTA_QUARANTINE) &&
	    milter_chain_applies(c->w->milters,
	    wire_request_get(req, WIRE_ATTR_LISTEN_MODE));
}

static void conn_milter_done(void *arg, struct milter_outcome *out);

/* conn_milter_begin - hand the message to the milters and pause c (its
 * later requests wait: replies go out in order); 1, as conn_request. */
static int
conn_milter_begin(struct conn *c, const struct wire_request *req, int fd,
    const struct plugin_decision *d)
{
	c->milter_d = *d;
	c->milter = milter_run_start(c->w->milters, c->w->base, req, fd,
	    conn_milter_done, c);
	conn_enter_state(c, CONN_MILTER);
	return 1;
}

/* conn_milter_done - compose the chain's verdict with the milters' (the
 * first refusal or discard wins; quarantine from either side holds),
 * answer with the edits, resume c. */
static void
conn_milter_done(void *arg, struct milter_outcome *out)
{
	struct conn *c = arg;
	struct elemta_result res = c->milter_d.result;
	struct wire_reply_ext none = { 0 };
	int rc;

	c->milter = NULL;
	if (out->action == ELEMTA_REJECT || out->action == ELEMTA_TEMPFAIL ||
	    out->action == ELEMTA_DISCARD) {
		memset(&res, 0, sizeof(res));
		res.action = out->action;
		res.smtp_code = out->code;
		str_copy(res.enhanced, out->enhanced, sizeof(res.enhanced));
		str_copy(res.message, out->text, sizeof(res.message));
		wire_result_defaults(&res);
		msg_edits_free(&out->edits);
	} else if (out->action == ELEMTA_QUARANTINE &&
	    res.action == ELEMTA_CONTINUE) {
		res.action = ELEMTA_QUARANTINE;
		str_copy(res.message, out->text, sizeof(res.message));
	}
	rc = conn_reply_full(c, &res, false, &none, &c->milter_d.headers,
	    &out->edits);
	msg_edits_free(&out->edits);
	conn_resume(c, rc);
}

/* conn_request - decide one complete request and queue its reply;
 * secret: it carries elemta_auth_password.  0, -1 (close c), or 1: c
 * paused on an AUTH hash (the request stays in the parser). */
static int
conn_request(struct conn *c, const struct wire_request *req, bool secret)
{
	struct plugin_request rq;
	struct plugin_decision d;
	const char *type = wire_request_get(req, WIRE_ATTR_REQUEST);
	const char *mfd;
	char esc[128];

	conn_plugin_request(c, req, &rq);
	if (c->listener == PLUGIN_LISTENER_ELEMTA) {
		/* Claim the descriptor first so the FIFO stays aligned even
		 * when the request is then not decided. */
		mfd = wire_request_get(req, WIRE_ATTR_MESSAGE_FD);
		if (mfd != NULL && strcmp(mfd, WIRE_MESSAGE_FD_PASSED) == 0) {
			rq.message_fd = conn_pop_fd(c);
			if (rq.message_fd < 0) {
				log_err("conn %lu: request claims a message "
				    "descriptor but none arrived; tempfail",
				    c->id);
				return conn_tempfail(c, "Message descriptor "
				    "missing, try again later");
			}
		}
	}
	if ((type != NULL && strcmp(type, WIRE_REQUEST_POLICY) != 0) ||
	    req->count == 0) {
		/* Not a policy question (or an empty one): no opinion. */
		log_info("conn %lu: unsupported request type '%s': DUNNO",
		    c->id, LOG_ESC(esc, type ? type : ""));
		if (rq.message_fd >= 0)
			close(rq.message_fd);
		memset(&d, 0, sizeof(d));
		d.result.action = ELEMTA_CONTINUE;
		return conn_reply(c, &d.result);
	}
	if (secret && rq.message_fd < 0 && c->w->pool != NULL &&
	    c->listener == PLUGIN_LISTENER_ELEMTA)
		return conn_auth_begin(c, &rq);

	worker_batch_join(c->w, rq.message_fd >= 0 || secret);
	if (c->w->ops->decide_begin != NULL && !secret) {
		struct plugin_wait *wait;
		int rc = c->w->ops->decide_begin(c->w->ops_arg, &rq, &d,
		    conn_on_dns_ready, c, &wait);

		c->w->batch_decisions++;
		if (rc == 1) {
			c->wait = wait;
			c->wait_fd = rq.message_fd;
			conn_enter_state(c, CONN_DNS);
			return 1;
		}
	} else {
		c->w->ops->decide(c->w->ops_arg, &rq, &d);
		c->w->batch_decisions++;
	}

	if (rq.message_fd >= 0 && conn_milters_apply(c, req, &d))
		return conn_milter_begin(c, req, rq.message_fd, &d);
	if (rq.message_fd >= 0)
		close(rq.message_fd);
	return conn_answer(c, &d);
}

/* conn_on_dns_ready - the waiting request's lookups are answered: go on
 * deciding it; once decided, answer and resume the connection with its
 * buffered input (as after an AUTH hash). */
static void
conn_on_dns_ready(void *arg)
{
	struct conn *c = arg;
	struct worker *w = c->w;
	struct plugin_request rq;
	struct plugin_decision d;
	int rc;

	conn_plugin_request(c, &c->parser.req, &rq);
	rq.message_fd = c->wait_fd;
	worker_batch_join(w, rq.message_fd >= 0);
	rc = w->ops->decide_resume(w->ops_arg, &rq, c->wait, &d);
	w->batch_decisions++;
	if (rc == 1)
		return;         /* waits again: ready runs again */
	c->wait = NULL;
	if (c->wait_fd >= 0 && conn_milters_apply(c, &c->parser.req, &d)) {
		rq.message_fd = c->wait_fd;
		c->wait_fd = -1;
		(void)conn_milter_begin(c, &c->parser.req, rq.message_fd, &d);
		return;
	}
	if (c->wait_fd >= 0)
		close(c->wait_fd);
	c->wait_fd = -1;
	conn_resume(c, conn_answer(c, &d));
}

/* conn_wipe_password - blank the password attribute of the request in
 * the parser (its hash has its own copy); the rest is still needed. */
static void
conn_wipe_password(struct conn *c)
{
	const char *pw = wire_request_get(&c->parser.req, WIRE_AUTH_PASSWORD);

	if (pw != NULL)
		explicit_bzero((char *)pw, strlen(pw));
}

/* conn_process - parse and decide buffered requests until the input is
 * used up or the output backs up; c may be closed on return. */
static void
conn_process(struct conn *c)
{
	struct error err;

	for (;;) {
		while (c->in_off < c->in_len && c->out.len < CONN_OUT_HIGH) {
			size_t used = 0;
			bool secret;
			int rc = wire_parser_feed(&c->parser, c->in + c->in_off,
			    c->in_len - c->in_off, &used, &err);

			c->in_off += used;
			if (rc < 0) {
				log_info("conn %lu: protocol error: %s; closing",
				    c->id, err.text);
				/* Answer what was decided before the bad
				 * request (committed first), then close. */
				if (c->held_count > 0)
					worker_batch_commit(c->w);
				if (conn_flush(c) == 0)
					conn_close(c);
				return;
			}
			if (rc == 0)
				break;
			secret = wire_request_get(&c->parser.req,
			    WIRE_AUTH_PASSWORD) != NULL;
			rc = conn_request(c, &c->parser.req, secret);
			if (rc == 1) {
				/* Paused: what was answered before the AUTH
				 * (or the request waiting for DNS) goes out now
				 * (or with the batch's commit);
				 * worker_on_auth_done (conn_on_dns_ready)
				 * resumes. */
				conn_wipe_password(c);
				if (c->held_count == 0)
					(void)conn_flush(c);
				return;
			}
			/* A password is erased from the parser's buffer once
			 * decided (the attribute strings live there; the
			 * next request's bytes are still in in[]). */
			if (secret)
				explicit_bzero(c->parser.req.buf,
				    c->parser.req.len);
			if (rc != 0) {
				conn_close(c);
				return;
			}
			wire_parser_next(&c->parser);
		}
		if (c->in_off == c->in_len) {
			/* cheap, and no password bytes stay behind */
			explicit_bzero(c->in, c->in_len);
			c->in_off = c->in_len = 0;
		}
		if (c->held_count > 0)
			break;  /* worker_on_commit sends the replies */
		if (conn_flush(c) != 0)
			return;
		/* Everything went out at once: carry on with the input. */
		if (c->in_len == 0 || c->out.len != 0)
			break;
	}
	conn_enter_state(c, c->in_len > 0 ? CONN_THROTTLED : CONN_READING);
}

/* ==== AUTH hashes ==== */

/* worker_auth_elapsed_ms - since the AUTH request was taken up. */
static uint64_t
worker_auth_elapsed_ms(const struct worker_auth *wa)
{
	struct timespec now;
	int64_t ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (int64_t)(now.tv_sec - wa->started.tv_sec) * 1000 +
	    (now.tv_nsec - wa->started.tv_nsec) / 1000000;
	return ms > 0 ? (uint64_t)ms : 0;
}

/* conn_auth_finish - the hash is done: end the decision, answer at once
 * (what is left of any delay a gate asked for travels in the reply, for
 * smtpd to wait out), resume the connection with its buffered input. */
static void
conn_auth_finish(struct worker_auth *wa)
{
	struct conn *c = wa->c;
	struct worker *w = c->w;
	struct plugin_request rq;
	struct plugin_decision d;
	uint64_t spent = worker_auth_elapsed_ms(wa);
	uint32_t delay = 0;
	int rc;

	if (spent < wa->job.delay_ms)
		delay = (uint32_t)(wa->job.delay_ms - spent);
	conn_plugin_request(c, &c->parser.req, &rq);
	worker_batch_join(w, true);
	w->ops->auth_finish(w->ops_arg, &rq, &wa->job, &d);
	w->batch_decisions++;
	free(wa);
	c->auth = NULL;
	rc = conn_answer_delayed(c, &d, delay);
	explicit_bzero(c->parser.req.buf, c->parser.req.len);
	conn_resume(c, rc);
}

/* worker_on_auth_done - the pool finished hashes: finish each. */
static void
worker_on_auth_done(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct auth_job *job;

	(void)fd;
	(void)what;
	while ((job = auth_pool_next_done(w->pool)) != NULL) {
		struct worker_auth *wa = (struct worker_auth *)(void *)job;

		if (wa->c == NULL) {
			free(wa);       /* its connection closed meanwhile */
			continue;
		}
		conn_auth_finish(wa);
	}
}

/* worker_auth_drop - a job the pool gave back at shutdown. */
static void
worker_auth_drop(struct auth_job *job)
{
	struct worker_auth *wa = (struct worker_auth *)(void *)job;

	if (wa->c != NULL)
		wa->c->auth = NULL;
	free(wa);
}

/* worker_auth_pool - hash AUTH passwords on a pool of threads (only with
 * the auth ops); without one, AUTH is decided whole on the loop. */
static void
worker_auth_pool(struct worker *w)
{
	struct error err;

	if (w->ops->auth_begin == NULL || w->ops->auth_finish == NULL)
		return;
	w->pool = auth_pool_new(AUTH_POOL_THREADS, &err);
	if (w->pool == NULL) {
		log_warn("%s: AUTH hashes run on the event loop", err.text);
		return;
	}
	w->ev_pool = event_new(w->base, auth_pool_fd(w->pool),
	    EV_READ | EV_PERSIST, worker_on_auth_done, w);
	if (w->ev_pool == NULL || event_add(w->ev_pool, NULL) != 0) {
		log_warn("cannot watch the AUTH pool: AUTH hashes run on the "
		    "event loop");
		if (w->ev_pool != NULL)
			event_free(w->ev_pool);
		w->ev_pool = NULL;
		auth_pool_free(w->pool, NULL);
		w->pool = NULL;
	}
}

/* ==== Events ==== */

/* conn_on_read - one read (with any passed descriptor), then process. */
static void
conn_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	ssize_t n;
	int rfd = -1;

	if (what & EV_TIMEOUT) {
		log_info("conn %lu: idle for %d s; closing", c->id,
		    CONN_IDLE_SECONDS);
		conn_close(c);
		return;
	}
	n = fdpass_recv(fd, c->in, sizeof(c->in), &rfd);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		log_info("conn %lu: read failed: %s; closing", c->id,
		    strerror(errno));
		conn_close(c);
		return;
	}
	if (rfd >= 0 && !conn_push_fd(c, rfd)) {
		log_err("conn %lu: more than %d unclaimed message descriptors; "
		    "closing", c->id, CONN_FDS_MAX);
		conn_close(c);
		return;
	}
	if (n == 0) {
		/* EOF: answer what was asked, then close. */
		conn_enter_state(c, CONN_DRAINING);
		(void)conn_flush(c);
		return;
	}
	c->in_off = 0;
	c->in_len = (size_t)n;
	conn_process(c);
}

/* conn_on_write - the socket has room again. */
static void
conn_on_write(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (conn_flush(c) != 0)
		return;
	if (c->state == CONN_THROTTLED && c->out.len == 0)
		conn_process(c);
}

/* conn_new - wrap an accepted socket. */
static void
conn_new(struct worker *w, int fd, enum plugin_listener listener)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	struct strbuf init = STRBUF_INIT(CONN_OUT_LIMIT);

	c->w = w;
	c->id = ++w->next_id;
	c->fd = fd;
	c->listener = listener;
	c->wait_fd = -1;
	c->out = init;
	wire_parser_init(&c->parser);
	c->ev_read = event_new(w->base, fd, EV_READ | EV_PERSIST, conn_on_read, c);
	c->ev_write = event_new(w->base, fd, EV_WRITE | EV_PERSIST, conn_on_write, c);
	if (c->ev_read == NULL || c->ev_write == NULL)
		fatal("event_new failed");
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	c->state = CONN_READING;
	conn_enter_state(c, CONN_READING);
	log_debug("conn %lu: accepted on the %s listener", c->id,
	    plugin_listener_name(listener));
}

/* worker_accept_one - accept one pending connection, if any is left (the
 * listening socket is shared: EAGAIN just means another worker won). */
static void
worker_accept_one(struct worker_listener *l)
{
	struct worker *w = l->w;
	int fd;

	do
		fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	while (fd < 0 && (errno == EINTR || errno == ECONNABORTED));
	if (fd < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			log_warn("accept: %s", strerror(errno));
		return;
	}
	if (w->nconns >= WORKER_CONNS_MAX) {
		log_warn("%d connections open; refusing a new one",
		    WORKER_CONNS_MAX);
		close(fd);
		return;
	}
	conn_new(w, fd, l->kind);
}

/* worker_on_accept - a connection is pending: take it now when idle, or
 * yield to less loaded workers for a moment first. */
static void
worker_on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct worker_listener *l = arg;
	long ms = (long)l->w->nconns * WORKER_YIELD_MS;

	(void)lfd;
	(void)what;
	if (ms == 0) {
		worker_accept_one(l);
		return;
	}
	if (ms > WORKER_YIELD_MAX_MS)
		ms = WORKER_YIELD_MAX_MS;
	struct timeval tv = { 0, ms * 1000 };
	event_del(l->ev);
	if (event_add(l->ev_yield, &tv) != 0) {
		event_add(l->ev, NULL);
		worker_accept_one(l);
	}
}

/* worker_on_yield_done - the yield is over: accept if still pending. */
static void
worker_on_yield_done(evutil_socket_t fd, short what, void *arg)
{
	struct worker_listener *l = arg;

	(void)fd;
	(void)what;
	worker_accept_one(l);
	if (event_add(l->ev, NULL) != 0)
		log_err("cannot watch the listening socket again");
}

/* worker_on_signal - SIGTERM/SIGINT: stop after the request in hand (it
 * is already answered: requests are decided synchronously). */
static void
worker_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;

	(void)what;
	log_info("signal %d: stopping", (int)sig);
	event_base_loopbreak(w->base);
}

/* worker_on_tick - once a second: metrics; every few: sweep stale keys. */
static void
worker_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct error err;

	(void)fd;
	(void)what;
	/* Housekeeping writes commit on their own. */
	worker_batch_commit(w);
	plugin_host_flush_metrics(w->host);
	milter_chain_flush_metrics(w->milters, w->cs);
	/* FAST sync mode: this is the "about once a second" flush. */
	if (w->cs != NULL && counter_flush(w->cs, &err) != 0)
		log_warn("counter table flush failed: %s", err.text);
	if (w->cs != NULL && ++w->ticks % WORKER_SWEEP_EVERY == 0) {
		long n = counter_sweep(w->cs, WORKER_SWEEP_KEYS, &err);

		if (n < 0)
			log_warn("counter sweep failed: %s", err.text);
		else if (n > 0)
			log_debug("counter sweep: %ld stale keys removed", n);
	}
}

/* worker_listen - watch one listening socket. */
static int
worker_listen(struct worker *w, enum plugin_listener kind, int fd,
    struct error *err)
{
	struct worker_listener *l = &w->listeners[kind];
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return error_set(err, "listening descriptor %d: %s", fd,
		    strerror(errno));
	l->w = w;
	l->kind = kind;
	l->fd = fd;
	l->ev = event_new(w->base, fd, EV_READ | EV_PERSIST, worker_on_accept, l);
	l->ev_yield = evtimer_new(w->base, worker_on_yield_done, l);
	if (l->ev == NULL || l->ev_yield == NULL || event_add(l->ev, NULL) != 0)
		return error_set(err, "cannot watch descriptor %d", fd);
	return 0;
}

/* worker_free - last replies out (best effort), everything freed. */
void
worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	worker_batch_commit(w);
	while (w->conns != NULL) {
		struct conn *c = w->conns;

		if (c->out_off < c->out.len)
			(void)!write(c->fd, c->out.data + c->out_off,
			    c->out.len - c->out_off);
		conn_close(c);
	}
	/* Unwatched before the pool closes its descriptor. */
	if (w->ev_pool != NULL)
		event_free(w->ev_pool);
	if (w->pool != NULL)
		auth_pool_free(w->pool, worker_auth_drop);
	for (int i = 0; i < 2; i++) {
		if (w->listeners[i].ev != NULL)
			event_free(w->listeners[i].ev);
		if (w->listeners[i].ev_yield != NULL)
			event_free(w->listeners[i].ev_yield);
	}
	if (w->ev_term)
		event_free(w->ev_term);
	if (w->ev_int)
		event_free(w->ev_int);
	if (w->ev_tick)
		event_free(w->ev_tick);
	if (w->ev_commit)
		event_free(w->ev_commit);
	free(w);
}

/* worker_new - the loop's state and its listening sockets on base. */
struct worker *
worker_new(struct event_base *base, const struct worker_ops *ops, void *arg,
    bool batching, int policy_fd, int postfix_fd, struct error *err)
{
	struct worker *w;

	if (policy_fd < 0 && postfix_fd < 0) {
		error_set(err, "no listening socket to serve");
		return NULL;
	}
	if (event_base_priority_init(base, WORKER_PRIO_COUNT) != 0) {
		error_set(err, "event_base_priority_init failed");
		return NULL;
	}
	w = xcalloc(1, sizeof(*w));
	w->base = base;
	w->ops = ops;
	w->ops_arg = arg;
	w->batching = batching;
	w->ev_commit = event_new(base, -1, 0, worker_on_commit, w);
	if (w->ev_commit == NULL ||
	    event_priority_set(w->ev_commit, WORKER_PRIO_COMMIT) != 0) {
		worker_free(w);
		error_set(err, "cannot set up the commit event");
		return NULL;
	}
	worker_auth_pool(w);
	if ((policy_fd >= 0 && worker_listen(w, PLUGIN_LISTENER_ELEMTA,
	    policy_fd, err) != 0) ||
	    (postfix_fd >= 0 && worker_listen(w, PLUGIN_LISTENER_POSTFIX,
	    postfix_fd, err) != 0)) {
		worker_free(w);
		return NULL;
	}
	return w;
}

/* The real collaborators: the plugin chain and the counter table. */
struct worker_real {
	struct plugin_host *host;
	struct counter_store *cs;
};

static void
real_decide(void *arg, const struct plugin_request *rq,
    struct plugin_decision *out)
{
	plugin_host_decide(((struct worker_real *)arg)->host, rq, out);
}

static void
real_batch_begin(void *arg)
{
	counter_batch_begin(((struct worker_real *)arg)->cs);
}

static int
real_batch_end(void *arg, struct error *err)
{
	return counter_batch_end(((struct worker_real *)arg)->cs, err);
}

static bool
real_batch_failed(void *arg)
{
	return counter_batch_failed(((struct worker_real *)arg)->cs);
}

static int
real_auth_begin(void *arg, const struct plugin_request *rq,
    struct plugin_decision *out, struct auth_job *job)
{
	return plugin_host_auth_begin(((struct worker_real *)arg)->host, rq,
	    out, job);
}

static void
real_auth_finish(void *arg, const struct plugin_request *rq,
    struct auth_job *job, struct plugin_decision *out)
{
	plugin_host_auth_finish(((struct worker_real *)arg)->host, rq, job,
	    out);
}

static int
real_decide_begin(void *arg, const struct plugin_request *rq,
    struct plugin_decision *out, plugin_wait_ready ready, void *ready_arg,
    struct plugin_wait **wait)
{
	return plugin_host_decide_begin(((struct worker_real *)arg)->host, rq,
	    out, ready, ready_arg, wait);
}

static int
real_decide_resume(void *arg, const struct plugin_request *rq,
    struct plugin_wait *wait, struct plugin_decision *out)
{
	return plugin_host_decide_resume(((struct worker_real *)arg)->host, rq,
	    wait, out);
}

static void
real_wait_free(void *arg, struct plugin_wait *wait)
{
	(void)arg;
	plugin_wait_free(wait);
}

static const struct worker_ops worker_real_ops = {
	.decide = real_decide,
	.batch_begin = real_batch_begin,
	.batch_end = real_batch_end,
	.batch_failed = real_batch_failed,
	.auth_begin = real_auth_begin,
	.auth_finish = real_auth_finish,
	.decide_begin = real_decide_begin,
	.decide_resume = real_decide_resume,
	.wait_free = real_wait_free,
};

/* worker_run - set up the loop and serve until a stop signal. */
int
worker_run(struct plugin_host *host, struct counter_store *cs,
    const struct config *cfg, int policy_fd, int postfix_fd,
    struct error *err)
{
	struct timeval second = { 1, 0 };
	struct worker_real real = { host, cs };
	struct dns_resolver *resolver = NULL;
	struct milter_chain *milters;
	struct event_base *base;
	struct worker *w;
	int rc = 0;

	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	if (base == NULL)
		return error_set(err, "event_base_new failed");
	w = worker_new(base, &worker_real_ops, &real,
	    counter_store_batches(cs), policy_fd, postfix_fd, err);
	if (w == NULL) {
		event_base_free(base);
		return -1;
	}
	/* After worker_new (it sets the base's priorities).  A request's
	 * DNS must end before smtpd stops waiting for the answer:
	 * three quarters of policyd.timeout_ms, the rest for the chain. */
	if (cfg != NULL)
		resolver = plugin_host_resolver_new(host, base, cfg,
		    cfg->policyd.timeout_ms * 3 / 4);
	w->host = host;
	w->cs = cs;
	w->milters = cfg != NULL ? milter_chain_new(cfg) : NULL;
	milters = w->milters;
	w->ev_term = evsignal_new(base, SIGTERM, worker_on_signal, w);
	w->ev_int = evsignal_new(base, SIGINT, worker_on_signal, w);
	w->ev_tick = event_new(base, -1, EV_PERSIST, worker_on_tick, w);
	if (w->ev_term == NULL || w->ev_int == NULL || w->ev_tick == NULL ||
	    event_add(w->ev_term, NULL) != 0 ||
	    event_add(w->ev_int, NULL) != 0 ||
	    event_add(w->ev_tick, &second) != 0)
		rc = error_set(err, "cannot set up signal and timer events");
	else if (event_base_dispatch(base) < 0)
		rc = error_set(err, "event loop failed");
	worker_free(w);         /* the waiting requests' queries go first */
	if (resolver != NULL) {
		plugin_host_set_dns(host, NULL, NULL, NULL, 0, 0, false);
		dns_resolver_free(resolver);
	}
	plugin_host_flush_metrics(host);
	milter_chain_flush_metrics(milters, cs);
	milter_chain_free(milters);
	event_base_free(base);
	return rc;
}
