/*
 * test_policy_client.c - smtpd's pool of policyd connections
 * (smtpd/policy_client.c) against a fake policyd: the seam is the Unix
 * socket policyd.socket names, served here by the test, which reads the
 * requests and scripts the replies.  One test per promise of
 * policy_client.h: pipelined requests answered in order on one
 * connection, the least loaded connection chosen, a timeout failing every
 * request of its connection (and the next request reconnecting), policyd
 * down failing at once, a closed connection or a reply to nothing failing
 * what is pending, a cancelled request keeping its place, a descriptor
 * travelling with its request, OK told apart from DUNNO, an unknown action
 * a tempfail.  Applying policyd.fail_mode to a failure is the session's
 * business (test_session.c); here every failure must reach the caller as
 * failed = true, never as an answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "error.h"
#include "fdpass.h"
#include "strbuf.h"
#include "wire.h"
#include "../../smtpd/policy_client.h"

#define MAX_DONE 16
#define LONG_MS 60000          /* a timeout no test waits for */

/* One completed request, as the callback saw it. */
struct done {
	int tag;
	struct policy_result res;
	struct wire_headers hdrs;   /* a copy of res.headers (borrowed) */
};

struct fx {
	char dir[64];
	char path[128];
	int lfd;                    /* the fake policyd's listener     */
	struct event_base *base;
	struct policy_client *pc;
	struct done done[MAX_DONE];
	size_t ndone;
	int tags[MAX_DONE];         /* callback arguments              */
};

static struct fx *cur;          /* the fixture of the running test */

/* on_done - record a completed request (arg points at its tag). */
static void
on_done(void *arg, const struct policy_result *res)
{
	struct fx *fx = cur;

	assert_true(fx->ndone < MAX_DONE);
	fx->done[fx->ndone].tag = *(const int *)arg;
	fx->done[fx->ndone].res = *res;
	fx->done[fx->ndone].hdrs.count = 0;
	fx->done[fx->ndone].hdrs.len = 0;
	if (res->headers != NULL)
		fx->done[fx->ndone].hdrs = *res->headers;
	fx->done[fx->ndone].res.headers = NULL;
	fx->ndone++;
}

/* fx_open - a fake policyd listening, a client of max_conns slots. */
static void
fx_open(struct fx *fx, unsigned max_conns, uint64_t timeout_ms)
{
	struct sockaddr_un sun;

	memset(fx, 0, sizeof(*fx));
	cur = fx;
	for (int i = 0; i < MAX_DONE; i++)
		fx->tags[i] = i;
	str_copy(fx->dir, "/tmp/elemta-test-pclient.XXXXXX", sizeof(fx->dir));
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof(fx->path), "%s/policyd.sock", fx->dir);
	fx->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fx->lfd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	str_copy(sun.sun_path, fx->path, sizeof(sun.sun_path));
	assert_int_equal(bind(fx->lfd, (struct sockaddr *)&sun, sizeof(sun)),
	    0);
	assert_int_equal(listen(fx->lfd, 8), 0);
	fx->base = event_base_new();
	assert_non_null(fx->base);
	fx->pc = policy_client_new(fx->base, fx->path, max_conns, timeout_ms);
}

static void
fx_close(struct fx *fx)
{
	char cmd[128];

	policy_client_free(fx->pc);
	event_base_free(fx->base);
	close(fx->lfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
}

/* fx_submit - one request (tag names it in fx->done); fd may be -1. */
static struct policy_request *
fx_submit(struct fx *fx, int tag, const char *state, int fd)
{
	struct strbuf sb = STRBUF_INIT(WIRE_REQUEST_MAX);
	struct policy_request *r;
	char why[128] = "";

	assert_int_equal(wire_encode_attr(&sb, WIRE_ATTR_REQUEST,
	    WIRE_REQUEST_POLICY), 0);
	assert_int_equal(wire_encode_attr(&sb, WIRE_ATTR_PROTOCOL_STATE,
	    state), 0);
	assert_int_equal(wire_encode_end(&sb), 0);
	r = policy_client_submit(fx->pc, &sb, fd, on_done, &fx->tags[tag], why,
	    sizeof(why));
	assert_null(sb.data);       /* taken over, or released */
	return r;
}

/* fx_accept - the fake policyd takes the next connection (-1: none
 * within a generous wait). */
static int
fx_accept(struct fx *fx)
{
	struct pollfd p = { fx->lfd, POLLIN, 0 };

	if (poll(&p, 1, 5000) <= 0)
		return -1;
	return accept(fx->lfd, NULL, NULL);
}

/* fx_connection_waiting - a connection is queued for the fake now. */
static bool
fx_connection_waiting(struct fx *fx)
{
	struct pollfd p = { fx->lfd, POLLIN, 0 };

	return poll(&p, 1, 0) > 0;
}

/* fx_read_requests - read from policyd's side until n requests (empty
 * lines) arrived; returns them, and any descriptor received in *rfd. */
static const char *
fx_read_requests(int fd, size_t n, int *rfd)
{
	static char buf[8192];
	size_t len = 0, seen = 0;

	if (rfd != NULL)
		*rfd = -1;
	while (seen < n) {
		struct pollfd p = { fd, POLLIN, 0 };
		int got = -1;
		ssize_t k;

		assert_true(poll(&p, 1, 5000) > 0);
		k = fdpass_recv(fd, buf + len, sizeof(buf) - 1 - len, &got);
		assert_true(k > 0);
		if (got >= 0) {
			if (rfd != NULL && *rfd < 0)
				*rfd = got;
			else
				close(got);
		}
		len += (size_t)k;
		buf[len] = '\0';
		seen = 0;
		for (const char *s = buf; (s = strstr(s, "\n\n")) != NULL;
		    s += 2)
			seen++;
	}
	return buf;
}

static void
fx_reply(int fd, const char *s)
{
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* fx_open_served - a one-connection client whose n requests at state
 * the fake policyd has read; returns policyd's side of the connection. */
static int
fx_open_served(struct fx *fx, size_t n, const char *state)
{
	int s;

	fx_open(fx, 1, LONG_MS);
	for (size_t i = 0; i < n; i++)
		assert_non_null(fx_submit(fx, (int)i, state, -1));
	s = fx_accept(fx);
	assert_true(s >= 0);
	(void)fx_read_requests(s, n, NULL);
	return s;
}

/* fx_run - turn the client's loop until n callbacks ran (bounded: the
 * test then fails on what it asserts, not on time). */
static void
fx_run(struct fx *fx, size_t n)
{
	for (int i = 0; i < 5000 && fx->ndone < n; i++) {
		event_base_loop(fx->base, EVLOOP_NONBLOCK);
		if (fx->ndone < n)
			usleep(1000);
	}
}

/* Requests are pipelined on one connection and answered in order. */
static void
test_pipelined_in_order(void **state)
{
	struct fx fx;
	const char *req;
	int s;

	(void)state;
	fx_open(&fx, 1, LONG_MS);
	assert_non_null(fx_submit(&fx, 0, "MAIL", -1));
	assert_non_null(fx_submit(&fx, 1, "AUTH", -1));
	assert_non_null(fx_submit(&fx, 2, "RCPT", -1));
	assert_int_equal(fx.ndone, 0);     /* never from inside submit */
	s = fx_accept(&fx);
	assert_true(s >= 0);
	req = fx_read_requests(s, 3, NULL);
	assert_non_null(strstr(req, "protocol_state=MAIL\n\n"
	    "request=smtpd_access_policy\nprotocol_state=AUTH\n\n"));
	fx_reply(s, "action=DUNNO\n\naction=OK\n\n"
	    "size=1\naction=REJECT 5.7.1 no\n\n");
	fx_run(&fx, 3);
	assert_int_equal(fx.ndone, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(fx.done[i].tag, i);
		assert_false(fx.done[i].res.failed);
	}
	assert_int_equal(fx.done[0].res.reply.action, ELEMTA_CONTINUE);
	assert_false(fx.done[0].res.action_ok);
	assert_int_equal(fx.done[1].res.reply.action, ELEMTA_CONTINUE);
	assert_true(fx.done[1].res.action_ok);
	assert_int_equal(fx.done[2].res.reply.action, ELEMTA_REJECT);
	assert_int_equal(fx.done[2].res.reply.code, 550);
	assert_string_equal(fx.done[2].res.reply.text, "no");
	/* one connection served all three */
	assert_false(fx_connection_waiting(&fx));
	close(s);
	fx_close(&fx);
}

/* A busy connection is not used while a slot is free. */
static void
test_least_loaded(void **state)
{
	struct fx fx;
	int s1, s2;

	(void)state;
	fx_open(&fx, 2, LONG_MS);
	assert_non_null(fx_submit(&fx, 0, "MAIL", -1));
	assert_non_null(fx_submit(&fx, 1, "MAIL", -1));
	s1 = fx_accept(&fx);
	s2 = fx_accept(&fx);
	assert_true(s1 >= 0 && s2 >= 0);
	(void)fx_read_requests(s1, 1, NULL);
	(void)fx_read_requests(s2, 1, NULL);
	/* answered in the opposite order: each connection has its own */
	fx_reply(s2, "action=DEFER busy\n\n");
	fx_run(&fx, 1);
	fx_reply(s1, "action=DUNNO\n\n");
	fx_run(&fx, 2);
	assert_int_equal(fx.ndone, 2);
	assert_int_equal(fx.done[0].tag, 1);
	assert_int_equal(fx.done[0].res.reply.action, ELEMTA_TEMPFAIL);
	assert_int_equal(fx.done[1].tag, 0);
	assert_int_equal(fx.done[1].res.reply.action, ELEMTA_CONTINUE);
	close(s1);
	close(s2);
	fx_close(&fx);
}

/* fx_submit_auth - an AUTH request (it carries a password) from the
 * client at address client. */
static struct policy_request *
fx_submit_auth(struct fx *fx, int tag, const char *client)
{
	struct strbuf sb = STRBUF_INIT(WIRE_REQUEST_MAX);
	char why[128] = "";

	assert_int_equal(wire_encode_attr(&sb, WIRE_ATTR_REQUEST,
	    WIRE_REQUEST_POLICY), 0);
	assert_int_equal(wire_encode_attr(&sb, WIRE_ATTR_PROTOCOL_STATE,
	    "AUTH"), 0);
	assert_int_equal(wire_encode_attr(&sb, WIRE_ATTR_CLIENT_ADDRESS,
	    client), 0);
	assert_int_equal(wire_encode_attr(&sb, WIRE_AUTH_PASSWORD, "cHc="), 0);
	assert_int_equal(wire_encode_end(&sb), 0);
	return policy_client_submit(fx->pc, &sb, -1, on_done, &fx->tags[tag],
	    why, sizeof(why));
}

/* fx_turn - one non-blocking turn of the client's loop (AUTHs are
 * dispatched from it, never from inside submit). */
static void
fx_turn(struct fx *fx)
{
	event_base_loop(fx->base, EVLOOP_NONBLOCK);
}

/* fx_readable - policyd's side has bytes within a short look (used to
 * show that nothing more was sent). */
static bool
fx_readable(int fd, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };

	return poll(&p, 1, ms) > 0;
}

/* From POLICY_LANES_MIN connections on, AUTH requests have a lane of
 * their own: a MAIL is never queued behind AUTHs that policyd is still
 * hashing, and is answered while they wait.  The lane carries one AUTH
 * at a time: the second is written once the first is answered. */
static void
test_auth_lane(void **state)
{
	const char *req;
	struct fx fx;
	int sm, sa;

	(void)state;
	fx_open(&fx, 4, LONG_MS);
	assert_non_null(fx_submit(&fx, 0, "MAIL", -1));
	assert_non_null(fx_submit_auth(&fx, 1, "192.0.2.1"));
	assert_non_null(fx_submit_auth(&fx, 2, "192.0.2.1"));
	assert_int_equal(fx.ndone, 0);
	fx_turn(&fx);
	/* Connected in order: the MAIL's, then one AUTH connection (a lane
	 * of one slot: 4 / 4). */
	sm = fx_accept(&fx);
	sa = fx_accept(&fx);
	assert_true(sm >= 0 && sa >= 0);
	assert_false(fx_connection_waiting(&fx));
	req = fx_read_requests(sm, 1, NULL);
	assert_non_null(strstr(req, "protocol_state=MAIL\n"));
	assert_null(strstr(req, WIRE_AUTH_PASSWORD));
	req = fx_read_requests(sa, 1, NULL);
	assert_null(strstr(req, "protocol_state=MAIL\n"));
	assert_non_null(strstr(req, WIRE_AUTH_PASSWORD));
	/* The AUTH waits (being hashed); the MAIL is answered. */
	fx_reply(sm, "action=DUNNO\n\n");
	fx_run(&fx, 1);
	assert_int_equal(fx.ndone, 1);
	assert_int_equal(fx.done[0].tag, 0);
	/* one AUTH in flight on the lane: the second is still queued */
	assert_false(fx_readable(sa, 50));
	fx_reply(sa, "action=OK\n\n");
	fx_run(&fx, 2);
	fx_turn(&fx);
	(void)fx_read_requests(sa, 1, NULL);
	fx_reply(sa, "action=OK\n\n");
	fx_run(&fx, 3);
	assert_int_equal(fx.ndone, 3);
	assert_true(fx.done[1].res.action_ok && fx.done[2].res.action_ok);
	close(sm);
	close(sa);
	fx_close(&fx);
}

/* fx_auth_next - policyd reads the one AUTH now in flight on s; returns
 * its client_address (static). */
static const char *
fx_auth_next(struct fx *fx, int s)
{
	static char client[64];
	const char *req, *p;
	size_t n;

	fx_turn(fx);
	req = fx_read_requests(s, 1, NULL);
	p = strstr(req, WIRE_ATTR_CLIENT_ADDRESS "=");
	assert_non_null(p);
	p += sizeof(WIRE_ATTR_CLIENT_ADDRESS);
	n = strcspn(p, "\n");
	assert_true(n < sizeof(client));
	memcpy(client, p, n);
	client[n] = '\0';
	/* exactly one request: nothing was pipelined behind it */
	assert_non_null(strstr(req, "\n\n"));
	assert_string_equal(strstr(req, "\n\n"), "\n\n");
	return client;
}

/* The fair queue: a client that queued many AUTHs (a flood) does not
 * make a later client wait for all of them; clients take turns, one AUTH
 * each, in the order they first queued. */
static void
test_auth_fair_queue(void **state)
{
	static const char *const want[] = { "198.51.100.9", "192.0.2.50",
	    "203.0.113.7", "198.51.100.9", "192.0.2.50", "198.51.100.9",
	    "198.51.100.9" };
	struct fx fx;
	int sm, sa, tag = 0;

	(void)state;
	fx_open(&fx, 4, LONG_MS);
	/* the flood queues four, then two others queue theirs */
	for (int i = 0; i < 4; i++)
		assert_non_null(fx_submit_auth(&fx, tag++, "198.51.100.9"));
	assert_non_null(fx_submit_auth(&fx, tag++, "192.0.2.50"));
	assert_non_null(fx_submit_auth(&fx, tag++, "192.0.2.50"));
	assert_non_null(fx_submit_auth(&fx, tag++, "203.0.113.7"));
	/* a MAIL is not queued behind any of them */
	assert_non_null(fx_submit(&fx, tag++, "MAIL", -1));
	sm = fx_accept(&fx);
	assert_true(sm >= 0);
	(void)fx_read_requests(sm, 1, NULL);
	fx_reply(sm, "action=DUNNO\n\n");
	fx_run(&fx, 1);
	assert_int_equal(fx.ndone, 1);
	assert_int_equal(fx.done[0].tag, 7);
	fx_turn(&fx);
	sa = fx_accept(&fx);
	assert_true(sa >= 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_string_equal(fx_auth_next(&fx, sa), want[i]);
		fx_reply(sa, "action=535 5.7.8 no\n\n");
		fx_run(&fx, i + 2);
		assert_int_equal(fx.ndone, i + 2);
		assert_false(fx.done[i + 1].res.failed);
	}
	/* the flood's own AUTHs were answered in its order */
	assert_int_equal(fx.done[1].tag, 0);
	assert_int_equal(fx.done[4].tag, 1);
	assert_int_equal(fx.done[6].tag, 2);
	assert_int_equal(fx.done[7].tag, 3);
	close(sm);
	close(sa);
	fx_close(&fx);
}

/* An AUTH waits in the fair queue at most POLICY_AUTH_WAIT_FACTOR *
 * timeout_ms, then fails (the session answers 454); one in flight times
 * out on its own, counted from when it was written.  Here policyd never
 * answers: the first AUTH times out on the connection, the second is
 * written then (on a new connection) and times out too, and the third,
 * still queued when its wait is over, fails for want of a slot. */
static void
test_auth_queue_wait_bounded(void **state)
{
	struct fx fx;
	int sa, slotless = 0;

	(void)state;
	assert_true(POLICY_AUTH_WAIT_FACTOR == 2);
	fx_open(&fx, 4, 100);
	assert_non_null(fx_submit_auth(&fx, 0, "198.51.100.9"));
	assert_non_null(fx_submit_auth(&fx, 1, "192.0.2.50"));
	assert_non_null(fx_submit_auth(&fx, 2, "203.0.113.7"));
	fx_turn(&fx);
	sa = fx_accept(&fx);
	assert_true(sa >= 0);
	(void)fx_read_requests(sa, 1, NULL);
	fx_run(&fx, 3);
	assert_int_equal(fx.ndone, 3);
	for (int i = 0; i < 3; i++) {
		const struct done *d = &fx.done[i];

		assert_true(d->res.failed);
		if (strstr(d->res.why, "no AUTH slot") != NULL) {
			/* the third normally; the second instead when the
			 * loop stalled past its wait before the first failed
			 * (then the third was written in its place) */
			assert_true(d->tag != 0);
			slotless++;
		} else {
			assert_non_null(strstr(d->res.why, "no answer"));
		}
	}
	assert_true(slotless >= 1);
	close(sa);
	fx_close(&fx);
}

/* A cancelled AUTH still in the queue is dropped, never written (the
 * session that asked is gone, and the request holds a password). */
static void
test_auth_cancel_queued(void **state)
{
	struct policy_request *r;
	struct fx fx;
	int sa;

	(void)state;
	fx_open(&fx, 4, LONG_MS);
	assert_non_null(fx_submit_auth(&fx, 0, "198.51.100.9"));
	r = fx_submit_auth(&fx, 1, "192.0.2.50");
	assert_non_null(r);
	assert_non_null(fx_submit_auth(&fx, 2, "192.0.2.50"));
	policy_client_cancel(r);
	fx_turn(&fx);
	sa = fx_accept(&fx);
	assert_true(sa >= 0);
	assert_string_equal(fx_auth_next(&fx, sa), "198.51.100.9");
	fx_reply(sa, "action=OK\n\n");
	fx_run(&fx, 1);
	assert_string_equal(fx_auth_next(&fx, sa), "192.0.2.50");
	fx_reply(sa, "action=OK\n\n");
	fx_run(&fx, 2);
	assert_int_equal(fx.ndone, 2);
	assert_int_equal(fx.done[0].tag, 0);
	assert_int_equal(fx.done[1].tag, 2);
	fx_turn(&fx);
	assert_false(fx_readable(sa, 50));
	close(sa);
	fx_close(&fx);
}

/* The delay extension reaches the caller, capped at half timeout_ms; a
 * malformed one is ignored (no delay), and it never outlives its reply. */
static void
test_reply_delay(void **state)
{
	struct fx fx;
	int s;

	(void)state;
	fx_open(&fx, 1, 1000);
	for (int i = 0; i < 4; i++)
		assert_non_null(fx_submit(&fx, i, "RCPT", -1));
	s = fx_accept(&fx);
	assert_true(s >= 0);
	(void)fx_read_requests(s, 4, NULL);
	fx_reply(s, "action=OK\n" WIRE_ATTR_DELAY_MS "=300\n\n"
	    "action=535 5.7.8 no\n" WIRE_ATTR_DELAY_MS "=900\n\n"
	    "action=OK\n" WIRE_ATTR_DELAY_MS "=3x\n\n"
	    "action=OK\n\n");
	fx_run(&fx, 4);
	assert_int_equal(fx.ndone, 4);
	assert_int_equal(fx.done[0].res.delay_ms, 300);
	assert_true(fx.done[0].res.action_ok);
	assert_int_equal(fx.done[1].res.delay_ms, 500);
	assert_int_equal(fx.done[1].res.reply.code, 535);
	assert_int_equal(fx.done[2].res.delay_ms, 0);
	assert_int_equal(fx.done[3].res.delay_ms, 0);
	close(s);
	fx_close(&fx);
}

/* The CONNECT reply's client names reach the caller; a malformed one is
 * ignored, and they never outlive their reply. */
static void
test_reply_names(void **state)
{
	struct fx fx;
	int s;

	(void)state;
	fx_open(&fx, 1, 1000);
	for (int i = 0; i < 3; i++)
		assert_non_null(fx_submit(&fx, i, "CONNECT", -1));
	s = fx_accept(&fx);
	assert_true(s >= 0);
	(void)fx_read_requests(s, 3, NULL);
	fx_reply(s, "action=DUNNO\n" WIRE_ATTR_CLIENT_NAME_EXT "=mx.example\n"
	    WIRE_ATTR_REVERSE_CLIENT_NAME_EXT "=ptr.example\n\n"
	    "action=DUNNO\n" WIRE_ATTR_CLIENT_NAME_EXT "=bad(name)\n\n"
	    "action=DUNNO\n\n");
	fx_run(&fx, 3);
	assert_int_equal(fx.ndone, 3);
	assert_string_equal(fx.done[0].res.client_name, "mx.example");
	assert_string_equal(fx.done[0].res.reverse_client_name, "ptr.example");
	assert_string_equal(fx.done[1].res.client_name, "");
	assert_string_equal(fx.done[2].res.client_name, "");
	assert_string_equal(fx.done[2].res.reverse_client_name, "");
	close(s);
	fx_close(&fx);
}

/* A request not answered in time fails every request of its connection;
 * the connection is closed and the next request reconnects. */
static void
test_timeout_fails_connection(void **state)
{
	struct fx fx;
	char b;
	int s, s2;

	(void)state;
	fx_open(&fx, 1, 30);
	assert_non_null(fx_submit(&fx, 0, "MAIL", -1));
	assert_non_null(fx_submit(&fx, 1, "RCPT", -1));
	s = fx_accept(&fx);
	assert_true(s >= 0);
	(void)fx_read_requests(s, 2, NULL);
	fx_run(&fx, 2);
	assert_int_equal(fx.ndone, 2);
	for (int i = 0; i < 2; i++) {
		assert_true(fx.done[i].res.failed);
		assert_string_equal(fx.done[i].res.why,
		    "no answer within 30 ms");
	}
	assert_int_equal(read(s, &b, 1), 0);      /* closed by the client */
	/* A late answer reaches nobody; the next request gets a new one. */
	assert_non_null(fx_submit(&fx, 2, "MAIL", -1));
	s2 = fx_accept(&fx);
	assert_true(s2 >= 0);
	(void)fx_read_requests(s2, 1, NULL);
	fx_reply(s2, "action=DUNNO\n\n");
	fx_run(&fx, 3);
	assert_int_equal(fx.done[2].tag, 2);
	assert_false(fx.done[2].res.failed);
	close(s);
	close(s2);
	fx_close(&fx);
}

/* policyd down: the request fails at once, its descriptor is closed. */
static void
test_policyd_down(void **state)
{
	struct fx fx;
	struct strbuf sb = STRBUF_INIT(WIRE_REQUEST_MAX);
	char why[128] = "";
	int p[2];

	(void)state;
	fx_open(&fx, 1, LONG_MS);
	unlink(fx.path);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(wire_encode_attr(&sb, WIRE_ATTR_PROTOCOL_STATE,
	    "CONNECT"), 0);
	assert_null(policy_client_submit(fx.pc, &sb, p[0], on_done,
	    &fx.tags[0], why, sizeof(why)));
	assert_non_null(strstr(why, "connect"));
	assert_int_equal(fcntl(p[0], F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	assert_null(sb.data);
	for (int i = 0; i < 20; i++)
		event_base_loop(fx.base, EVLOOP_NONBLOCK);
	assert_int_equal(fx.ndone, 0);            /* no callback for it */
	close(p[1]);
	/* AUTHs are queued first, so they fail from the loop instead, every
	 * one of them within a few turns (not after the queue's bound: the
	 * timeout here is one no test waits for). */
	for (int i = 1; i <= 3; i++)
		assert_non_null(fx_submit_auth(&fx, i, "192.0.2.50"));
	assert_int_equal(fx.ndone, 0);
	for (int i = 0; i < 20 && fx.ndone < 3; i++)
		fx_turn(&fx);
	assert_int_equal(fx.ndone, 3);
	for (int i = 0; i < 3; i++) {
		assert_true(fx.done[i].res.failed);
		assert_non_null(strstr(fx.done[i].res.why, "connect"));
	}
	fx_close(&fx);
}

/* policyd closing the connection fails what is pending on it; a reply
 * to nothing sent is a protocol error that closes the connection. */
static void
test_peer_close_and_stray_reply(void **state)
{
	struct fx fx;
	char b;
	int s;

	(void)state;
	s = fx_open_served(&fx, 1, "MAIL");
	close(s);
	fx_run(&fx, 1);
	assert_true(fx.done[0].res.failed);
	assert_string_equal(fx.done[0].res.why,
	    "policyd closed the connection");

	assert_non_null(fx_submit(&fx, 1, "MAIL", -1));
	s = fx_accept(&fx);
	(void)fx_read_requests(s, 1, NULL);
	fx_reply(s, "action=DUNNO\n\naction=DUNNO\n\n");
	fx_run(&fx, 2);
	assert_false(fx.done[1].res.failed);
	for (int i = 0; i < 200; i++) {
		struct pollfd p = { s, POLLIN, 0 };

		event_base_loop(fx.base, EVLOOP_NONBLOCK);
		if (poll(&p, 1, 5) > 0)
			break;
	}
	assert_int_equal(read(s, &b, 1), 0);      /* closed: stray reply */
	assert_int_equal(fx.ndone, 2);
	close(s);
	fx_close(&fx);
}

/* A cancelled request's callback never runs, but its reply is still
 * read in order: the next request gets its own answer. */
static void
test_cancel_keeps_order(void **state)
{
	struct fx fx;
	struct policy_request *r;
	int s;

	(void)state;
	fx_open(&fx, 1, LONG_MS);
	r = fx_submit(&fx, 0, "MAIL", -1);
	assert_non_null(r);
	assert_non_null(fx_submit(&fx, 1, "RCPT", -1));
	policy_client_cancel(r);
	s = fx_accept(&fx);
	(void)fx_read_requests(s, 2, NULL);
	fx_reply(s, "action=REJECT first\n\naction=DUNNO\n\n");
	fx_run(&fx, 1);
	assert_int_equal(fx.ndone, 1);
	assert_int_equal(fx.done[0].tag, 1);
	assert_int_equal(fx.done[0].res.reply.action, ELEMTA_CONTINUE);
	close(s);
	fx_close(&fx);
}

/* A descriptor travels with its request (END-OF-MESSAGE). */
static void
test_descriptor_travels(void **state)
{
	struct fx fx;
	char tmpl[] = "/tmp/elemta-test-pclient-msg.XXXXXX";
	char b[8] = "";
	int fd = mkstemp(tmpl), got, s;

	(void)state;
	assert_true(fd >= 0);
	unlink(tmpl);
	assert_int_equal(write(fd, "hello", 5), 5);
	fx_open(&fx, 1, LONG_MS);
	assert_non_null(fx_submit(&fx, 0, "END-OF-MESSAGE", fd));
	s = fx_accept(&fx);
	(void)fx_read_requests(s, 1, &got);
	assert_true(got >= 0);
	assert_int_equal(pread(got, b, 5, 0), 5);
	assert_string_equal(b, "hello");
	close(got);
	fx_reply(s, "action=DUNNO\n\n");
	fx_run(&fx, 1);
	assert_false(fx.done[0].res.failed);
	close(s);
	fx_close(&fx);
}

/* Anything but a known action is a tempfail, never a silent allow:
 * an unknown word, and a reply without any action line. */
static void
test_unknown_action_tempfails(void **state)
{
	struct fx fx;
	int s;

	(void)state;
	s = fx_open_served(&fx, 2, "RCPT");
	fx_reply(s, "action=MAYBE\n\nfoo=bar\n\n");
	fx_run(&fx, 2);
	assert_int_equal(fx.ndone, 2);
	for (int i = 0; i < 2; i++) {
		assert_false(fx.done[i].res.failed);
		assert_int_equal(fx.done[i].res.reply.action, ELEMTA_TEMPFAIL);
		assert_int_equal(fx.done[i].res.reply.code, 451);
		assert_false(fx.done[i].res.action_ok);
	}
	close(s);
	fx_close(&fx);
}

/* A reply's PREPEND lines: each adds its header in order; the verdict is
 * the last other action line, continue when all were PREPENDs; a PREPEND
 * after a verdict never overrides it; an invalid one adds nothing; the
 * headers of one reply never leak into the next. */
static void
test_reply_prepends(void **state)
{
	struct fx fx;
	int s;

	(void)state;
	s = fx_open_served(&fx, 4, "RCPT");
	fx_reply(s, "action=PREPEND X-A: 1\naction=PREPEND X-B: 2\n"
	    "action=DUNNO\n\n"
	    "action=PREPEND X-C: 3\n\n"
	    "action=550 5.7.1 no\naction=PREPEND X-D: 4\n\n"
	    "action=PREPEND Bad Name: x\naction=HOLD\n\n");
	fx_run(&fx, 4);
	assert_int_equal(fx.ndone, 4);
	assert_int_equal(fx.done[0].res.reply.action, ELEMTA_CONTINUE);
	assert_int_equal(fx.done[0].hdrs.count, 2);
	assert_memory_equal(fx.done[0].hdrs.buf, "X-A: 1\r\nX-B: 2\r\n",
	    fx.done[0].hdrs.len);
	assert_int_equal(fx.done[1].res.reply.action, ELEMTA_CONTINUE);
	assert_int_equal(fx.done[1].hdrs.count, 1);
	assert_memory_equal(fx.done[1].hdrs.buf, "X-C: 3\r\n",
	    fx.done[1].hdrs.len);
	assert_int_equal(fx.done[2].res.reply.action, ELEMTA_REJECT);
	assert_int_equal(fx.done[2].res.reply.code, 550);
	assert_int_equal(fx.done[3].res.reply.action, ELEMTA_QUARANTINE);
	assert_int_equal(fx.done[3].hdrs.count, 0);
	close(s);
	fx_close(&fx);
}

/* policy_client_free fails what is pending (the callbacks run). */
static void
test_free_fails_pending(void **state)
{
	struct fx fx;
	int s;

	(void)state;
	s = fx_open_served(&fx, 1, "MAIL");
	policy_client_free(fx.pc);
	fx.pc = NULL;
	assert_int_equal(fx.ndone, 1);
	assert_true(fx.done[0].res.failed);
	close(s);
	fx_close(&fx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined_in_order),
		cmocka_unit_test(test_least_loaded),
		cmocka_unit_test(test_auth_lane),
		cmocka_unit_test(test_auth_fair_queue),
		cmocka_unit_test(test_auth_queue_wait_bounded),
		cmocka_unit_test(test_auth_cancel_queued),
		cmocka_unit_test(test_reply_delay),
		cmocka_unit_test(test_reply_names),
		cmocka_unit_test(test_timeout_fails_connection),
		cmocka_unit_test(test_policyd_down),
		cmocka_unit_test(test_peer_close_and_stray_reply),
		cmocka_unit_test(test_cancel_keeps_order),
		cmocka_unit_test(test_descriptor_travels),
		cmocka_unit_test(test_unknown_action_tempfails),
		cmocka_unit_test(test_free_fails_pending),
		cmocka_unit_test(test_reply_prepends),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
