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

/* From POLICY_LANES_MIN connections on, AUTH requests have a lane of
 * their own: a MAIL is never queued behind AUTHs that policyd is still
 * hashing, and is answered while they wait. */
static void
test_auth_lane(void **state)
{
	struct strbuf sb = STRBUF_INIT(WIRE_REQUEST_MAX);
	const char *req;
	char why[128];
	struct fx fx;
	int sm, sa;

	(void)state;
	fx_open(&fx, 4, LONG_MS);
	assert_non_null(fx_submit(&fx, 0, "MAIL", -1));
	for (int tag = 1; tag <= 2; tag++) {
		assert_int_equal(wire_encode_attr(&sb, WIRE_ATTR_REQUEST,
		    WIRE_REQUEST_POLICY), 0);
		assert_int_equal(wire_encode_attr(&sb, WIRE_ATTR_PROTOCOL_STATE,
		    "AUTH"), 0);
		assert_int_equal(wire_encode_attr(&sb, WIRE_AUTH_PASSWORD,
		    "cHc="), 0);
		assert_int_equal(wire_encode_end(&sb), 0);
		assert_non_null(policy_client_submit(fx.pc, &sb, -1, on_done,
		    &fx.tags[tag], why, sizeof(why)));
	}
	/* Connected in submit order: the MAIL's, then one AUTH connection
	 * carrying both AUTHs (a lane of one slot: 4 / 4). */
	sm = fx_accept(&fx);
	sa = fx_accept(&fx);
	assert_true(sm >= 0 && sa >= 0);
	assert_false(fx_connection_waiting(&fx));
	req = fx_read_requests(sm, 1, NULL);
	assert_non_null(strstr(req, "protocol_state=MAIL\n"));
	assert_null(strstr(req, WIRE_AUTH_PASSWORD));
	req = fx_read_requests(sa, 2, NULL);
	assert_null(strstr(req, "protocol_state=MAIL\n"));
	/* The AUTHs wait (being hashed); the MAIL is answered. */
	fx_reply(sm, "action=DUNNO\n\n");
	fx_run(&fx, 1);
	assert_int_equal(fx.ndone, 1);
	assert_int_equal(fx.done[0].tag, 0);
	fx_reply(sa, "action=OK\n\naction=OK\n\n");
	fx_run(&fx, 3);
	assert_int_equal(fx.ndone, 3);
	assert_true(fx.done[1].res.action_ok && fx.done[2].res.action_ok);
	close(sm);
	close(sa);
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
		cmocka_unit_test(test_timeout_fails_connection),
		cmocka_unit_test(test_policyd_down),
		cmocka_unit_test(test_peer_close_and_stray_reply),
		cmocka_unit_test(test_cancel_keeps_order),
		cmocka_unit_test(test_descriptor_travels),
		cmocka_unit_test(test_unknown_action_tempfails),
		cmocka_unit_test(test_free_fails_pending),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
