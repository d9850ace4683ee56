/*
 * test_worker.c - policyd's event loop (policyd/worker.c) with fakes at
 * its seam (struct worker_ops): decisions and group commits are
 * scripted, clients are real Unix sockets.  One test per promise of the
 * file's header comment: pipelined replies in request order, replies held
 * until their batch commits, a failed batch answered with tempfails (and
 * its transaction counted afresh), a batch known lost ended at once, slow
 * requests decided outside batches, AUTH answered OK, a missing message
 * descriptor answered with a tempfail; with the hashing pool (the auth
 * ops), AUTH hashed off the loop in request order, a connection closed
 * while its hash runs, and a worker freed with hashes queued; with the
 * DNS ops, a request that waits for DNS pauses its connection only,
 * is resumed (as often as it waits) and answered in order, and its wait
 * is freed when the connection closes.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
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
#include <crypt.h>
#include <event2/event.h>

#include "error.h"
#include "wire.h"
#include "../../policyd/auth.h"
#include "../../policyd/plugin_host.h"
#include "../../policyd/worker.h"

#define TEMPFAIL_REPLY \
	"action=451 4.3.0 Temporary policy failure, try again later\n\n"

/* The scripted collaborators and what they saw. */
struct fake {
	char log[1024];            /* b(egin) d(ecide) e(nd), in order  */
	size_t nlog;
	int end_rc;                /* what batch_end returns            */
	bool lost_after_decide;    /* batch_failed once a decision ran  */
	bool in_batch;
	bool decided_in_batch;
	int client_fd;             /* must have nothing to read at commit */
	bool bytes_before_commit;  /* a reply left before its commit    */
	unsigned txn_seen;         /* rq->txn->accepted at the last decide */
	int message_fd;            /* the descriptor the last decide got */
	unsigned auth_begun;       /* auth_begin calls, auth_finish calls */
	unsigned auth_finished;
	bool pw_left;              /* a finished job still held bytes of
	                            * its password                       */
	char setting[CRYPT_OUTPUT_SIZE]; /* bcrypt of "pass" (pool tests) */
	/* DNS tests: the one waiting request's ready callback, its waits
	 * still to go, resumes and frees seen. */
	plugin_wait_ready ready;
	void *ready_arg;
	int waits_left;
	unsigned resumed, waits_freed;
};

struct fx {
	char dir[64];
	char path[128];
	int lfd, pfd;               /* the two listening sockets        */
	struct event_base *base;
	struct worker *w;
	struct fake fake;
	char in[8192];              /* what the client read             */
	size_t in_len;
};

static void
fake_note(struct fake *f, char c)
{
	if (f->nlog + 1 < sizeof(f->log)) {
		f->log[f->nlog++] = c;
		f->log[f->nlog] = '\0';
	}
}

/* fake_decide - continue, unless the recipient starts with "reject";
 * plays the host's part of counting a Postfix transaction. */
static void
fake_decide(void *arg, const struct plugin_request *rq,
    struct plugin_decision *out)
{
	struct fake *f = arg;
	const char *rcpt = wire_request_get(rq->req, WIRE_ATTR_RECIPIENT);

	fake_note(f, 'd');
	f->decided_in_batch = f->in_batch;
	memset(out, 0, sizeof(*out));
	out->phase = wire_phase_parse(wire_request_get(rq->req,
	    WIRE_ATTR_PROTOCOL_STATE));
	out->result.action = ELEMTA_CONTINUE;
	if (rcpt != NULL && strncmp(rcpt, "reject", 6) == 0) {
		out->result.action = ELEMTA_REJECT;
		out->result.smtp_code = 550;
		str_copy(out->result.enhanced, "5.7.1",
		    sizeof(out->result.enhanced));
		str_copy(out->result.message, "no",
		    sizeof(out->result.message));
	}
	out->accepted = out->result.action == ELEMTA_CONTINUE;
	f->message_fd = rq->message_fd;
	if (rq->txn != NULL) {
		f->txn_seen = rq->txn->accepted;
		if (out->accepted)
			rq->txn->accepted++;
	}
}

static void
fake_batch_begin(void *arg)
{
	struct fake *f = arg;

	fake_note(f, 'b');
	assert_false(f->in_batch);
	f->in_batch = true;
}

static int
fake_batch_end(void *arg, struct error *err)
{
	struct fake *f = arg;
	struct pollfd p = { f->client_fd, POLLIN, 0 };

	fake_note(f, 'e');
	assert_true(f->in_batch);
	f->in_batch = false;
	/* Nothing decided in the batch may have left before this. */
	if (f->client_fd >= 0 && poll(&p, 1, 0) > 0)
		f->bytes_before_commit = true;
	if (f->end_rc != 0)
		return error_set(err, "commit failed (test)");
	return 0;
}

static bool
fake_batch_failed(void *arg)
{
	struct fake *f = arg;

	return f->lost_after_decide && f->in_batch &&
	    f->log[f->nlog - 1] == 'd';
}

static const struct worker_ops fake_ops = {
	.decide = fake_decide,
	.batch_begin = fake_batch_begin,
	.batch_end = fake_batch_end,
	.batch_failed = fake_batch_failed,
};

/* fake_auth_begin - every AUTH goes to the pool: the password attribute
 * (plain text here) checked against fake.setting, the fair-share key
 * client_address. */
static int
fake_auth_begin(void *arg, const struct plugin_request *rq,
    struct plugin_decision *out, struct auth_job *job)
{
	struct fake *f = arg;
	const char *pw = wire_request_get(rq->req, WIRE_AUTH_PASSWORD);

	(void)out;
	f->auth_begun++;
	memset(job, 0, sizeof(*job));
	job->pre = AUTH_RESULT_OK;
	str_copy((char *)job->pw, pw != NULL ? pw : "", sizeof(job->pw));
	job->pwlen = strlen((char *)job->pw);
	str_copy(job->setting, f->setting, sizeof(job->setting));
	str_copy(job->client, wire_request_get(rq->req, "client_address"),
	    sizeof(job->client));
	return 1;
}

/* fake_auth_finish - OK for the right password, 535 otherwise; notes
 * whether the job still held its password. */
static void
fake_auth_finish(void *arg, const struct plugin_request *rq,
    struct auth_job *job, struct plugin_decision *out)
{
	struct fake *f = arg;

	(void)rq;
	f->auth_finished++;
	for (size_t i = 0; i < sizeof(job->pw); i++)
		if (job->pw[i] != 0)
			f->pw_left = true;
	memset(out, 0, sizeof(*out));
	out->phase = ELEMTA_PHASE_AUTH;
	if (auth_job_result(job) == AUTH_RESULT_OK) {
		out->result.action = ELEMTA_CONTINUE;
	} else {
		out->result.action = ELEMTA_REJECT;
		out->result.smtp_code = 535;
		str_copy(out->result.enhanced, "5.7.8",
		    sizeof(out->result.enhanced));
		str_copy(out->result.message, "bad",
		    sizeof(out->result.message));
	}
	out->accepted = out->result.action == ELEMTA_CONTINUE;
}

static const struct worker_ops fake_pool_ops = {
	.decide = fake_decide,
	.batch_begin = fake_batch_begin,
	.batch_end = fake_batch_end,
	.batch_failed = fake_batch_failed,
	.auth_begin = fake_auth_begin,
	.auth_finish = fake_auth_finish,
};

/* The waits of the DNS tests: a recipient starting with "dns" waits
 * (twice), then is refused; anything else is fake_decide's. */
static struct plugin_wait *const fake_wait = (struct plugin_wait *)(void *)&fake_wait;

static int
fake_decide_begin(void *arg, const struct plugin_request *rq,
    struct plugin_decision *out, plugin_wait_ready ready, void *ready_arg,
    struct plugin_wait **wait)
{
	struct fake *f = arg;
	const char *rcpt = wire_request_get(rq->req, WIRE_ATTR_RECIPIENT);

	*wait = NULL;
	if (rcpt == NULL || strncmp(rcpt, "dns", 3) != 0) {
		fake_decide(arg, rq, out);
		return 0;
	}
	fake_note(f, 'w');
	f->ready = ready;
	f->ready_arg = ready_arg;
	f->waits_left = 1;
	*wait = fake_wait;
	return 1;
}

static int
fake_decide_resume(void *arg, const struct plugin_request *rq,
    struct plugin_wait *wait, struct plugin_decision *out)
{
	struct fake *f = arg;

	assert_ptr_equal(wait, fake_wait);
	assert_string_equal(wire_request_get(rq->req, WIRE_ATTR_RECIPIENT),
	    "dns@x");
	f->resumed++;
	if (f->waits_left-- > 0)
		return 1;
	f->ready = NULL;
	memset(out, 0, sizeof(*out));
	out->phase = ELEMTA_PHASE_RCPT;
	out->result.action = ELEMTA_REJECT;
	out->result.smtp_code = 550;
	str_copy(out->result.enhanced, "5.7.1", sizeof(out->result.enhanced));
	str_copy(out->result.message, "dns", sizeof(out->result.message));
	return 0;
}

static void
fake_wait_free(void *arg, struct plugin_wait *wait)
{
	struct fake *f = arg;

	assert_ptr_equal(wait, fake_wait);
	f->waits_freed++;
	f->ready = NULL;
}

static const struct worker_ops fake_dns_ops = {
	.decide = fake_decide,
	.batch_begin = fake_batch_begin,
	.batch_end = fake_batch_end,
	.batch_failed = fake_batch_failed,
	.decide_begin = fake_decide_begin,
	.decide_resume = fake_decide_resume,
	.wait_free = fake_wait_free,
};

/* sock_at - a Unix stream socket bound and listening at dir/name
 * (listening), or connected to it. */
static int
sock_at(const char *dir, const char *name, bool listening)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s", dir, name);
	if (listening) {
		assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)),
		    0);
		assert_int_equal(listen(fd, 8), 0);
	} else {
		assert_int_equal(connect(fd, (struct sockaddr *)&sun,
		    sizeof(sun)), 0);
	}
	return fd;
}

/* fx_open_ops - a worker with ops on both listeners; batching as
 * given. */
static void
fx_open_ops(struct fx *fx, const struct worker_ops *ops, bool batching)
{
	struct error err;

	memset(fx, 0, sizeof(*fx));
	str_copy(fx->dir, "/tmp/elemta-test-worker.XXXXXX", sizeof(fx->dir));
	assert_non_null(mkdtemp(fx->dir));
	fx->lfd = sock_at(fx->dir, "policy.sock", true);
	fx->pfd = sock_at(fx->dir, "postfix.sock", true);
	fx->fake.client_fd = -1;
	fx->base = event_base_new();
	assert_non_null(fx->base);
	fx->w = worker_new(fx->base, ops, &fx->fake, batching, fx->lfd,
	    fx->pfd, &err);
	assert_non_null(fx->w);
}

/* fx_open - a worker with the plain fakes (AUTH decided whole). */
static void
fx_open(struct fx *fx, bool batching)
{
	fx_open_ops(fx, &fake_ops, batching);
}

/* fx_open_pool - a worker hashing AUTH on its pool; the users' hash is
 * bcrypt of "pass" at cost (4: ~1 ms, 12: ~0.3 s). */
static void
fx_open_pool(struct fx *fx, unsigned long cost)
{
	static struct crypt_data cd;
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *h;

	fx_open_ops(fx, &fake_pool_ops, false);
	assert_non_null(crypt_gensalt_rn("$2b$", cost, NULL, 0, setting,
	    sizeof(setting)));
	h = crypt_rn("pass", setting, &cd, sizeof(cd));
	assert_non_null(h);
	str_copy(fx->fake.setting, h, sizeof(fx->fake.setting));
}

static void
fx_close(struct fx *fx)
{
	char cmd[128];

	worker_free(fx->w);
	event_base_free(fx->base);
	if (fx->fake.client_fd >= 0)
		close(fx->fake.client_fd);
	close(fx->lfd);
	close(fx->pfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
}

/* fx_connect - the client's socket on listener name. */
static int
fx_connect(struct fx *fx, const char *name)
{
	fx->fake.client_fd = sock_at(fx->dir, name, false);
	return fx->fake.client_fd;
}

/* replies_in - complete replies (each ends with an empty line). */
static size_t
replies_in(const char *s)
{
	size_t n = 0;

	while ((s = strstr(s, "\n\n")) != NULL) {
		n++;
		s += 2;
	}
	return n;
}

/* fx_run - turn the loop until want replies were read by the client (or
 * a generous bound of idle turns passed: the test then fails on the
 * replies, not on time). */
static void
fx_run(struct fx *fx, int fd, size_t want)
{
	for (int idle = 0; idle < 2000 && replies_in(fx->in) < want; idle++) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;

		event_base_loop(fx->base, EVLOOP_NONBLOCK);
		if (poll(&p, 1, 5) <= 0)
			continue;
		n = read(fd, fx->in + fx->in_len,
		    sizeof(fx->in) - 1 - fx->in_len);
		if (n <= 0)
			break;
		fx->in_len += (size_t)n;
		fx->in[fx->in_len] = '\0';
	}
}

static void
send_str(int fd, const char *s)
{
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

#define REQ(state, extra) "request=smtpd_access_policy\nprotocol_state=" \
	state "\nclient_address=192.0.2.1\n" extra "\n"

/* Pipelined requests are answered strictly in order, one reply each. */
static void
test_pipelined_in_order(void **state)
{
	struct fx fx;
	int fd;

	(void)state;
	fx_open(&fx, false);
	fd = fx_connect(&fx, "policy.sock");
	send_str(fd, REQ("CONNECT", "") REQ("RCPT", "recipient=reject@x\n")
	    REQ("RCPT", "recipient=ok@x\n") "request=other\n\n");
	fx_run(&fx, fd, 4);
	assert_string_equal(fx.in, "action=DUNNO\n\n"
	    "action=550 5.7.1 no\n\n" "action=DUNNO\n\n" "action=DUNNO\n\n");
	/* three decided (the unsupported request type is not), no batches */
	assert_string_equal(fx.fake.log, "ddd");
	fx_close(&fx);
}

/* With group commit, replies are held until their batch commits. */
static void
test_replies_held_until_commit(void **state)
{
	struct fx fx;
	int fd;

	(void)state;
	fx_open(&fx, true);
	fd = fx_connect(&fx, "policy.sock");
	send_str(fd, REQ("CONNECT", "") REQ("MAIL", "sender=a@b\n"));
	fx_run(&fx, fd, 2);
	assert_string_equal(fx.in, "action=DUNNO\n\naction=DUNNO\n\n");
	assert_true(fx.fake.decided_in_batch);
	assert_false(fx.fake.bytes_before_commit);
	/* every batch begun was committed, each decision inside one */
	assert_int_equal(fx.fake.log[0], 'b');
	assert_int_equal(fx.fake.log[fx.fake.nlog - 1], 'e');
	assert_false(fx.fake.in_batch);
	fx_close(&fx);
}

/* A batch that fails to commit answers each of its decisions with a
 * tempfail, and the connection's transaction is counted afresh. */
static void
test_failed_batch_tempfails(void **state)
{
	struct fx fx;
	int fd;

	(void)state;
	fx_open(&fx, true);
	fx.fake.end_rc = -1;
	fd = fx_connect(&fx, "postfix.sock");
	send_str(fd, REQ("MAIL", "instance=i1\n") REQ("RCPT",
	    "instance=i1\nrecipient=a@b\n") REQ("RCPT", "instance=i1\n"
	    "recipient=reject@b\n"));
	fx_run(&fx, fd, 3);
	assert_string_equal(fx.in,
	    TEMPFAIL_REPLY TEMPFAIL_REPLY TEMPFAIL_REPLY);
	assert_false(fx.fake.bytes_before_commit);
	/* The next request of the transaction: nothing counted survived. */
	fx.fake.end_rc = 0;
	fx.in_len = 0;
	fx.in[0] = '\0';
	send_str(fd, REQ("RCPT", "instance=i1\nrecipient=c@b\n"));
	fx_run(&fx, fd, 1);
	assert_string_equal(fx.in, "action=DUNNO\n\n");
	assert_int_equal(fx.fake.txn_seen, 0);
	fx_close(&fx);
}

/* A batch known lost (batch_failed) is ended at once: the next decision
 * starts a new batch, and only the lost one's replies are tempfails. */
static void
test_lost_batch_ended_at_once(void **state)
{
	struct fx fx;
	int fd;

	(void)state;
	fx_open(&fx, true);
	fx.fake.end_rc = -1;
	fx.fake.lost_after_decide = true;
	fd = fx_connect(&fx, "policy.sock");
	send_str(fd, REQ("CONNECT", ""));
	fx_run(&fx, fd, 1);
	assert_string_equal(fx.in, TEMPFAIL_REPLY);
	assert_string_equal(fx.fake.log, "bde");
	fx.fake.end_rc = 0;
	fx.fake.lost_after_decide = false;
	send_str(fd, REQ("CONNECT", ""));
	fx_run(&fx, fd, 2);
	assert_string_equal(fx.in, TEMPFAIL_REPLY "action=DUNNO\n\n");
	assert_string_equal(fx.fake.log, "bdebde");
	fx_close(&fx);
}

/* A slow request (AUTH: a password hash) is decided outside any batch,
 * after the open batch committed; a continuing AUTH is answered OK. */
static void
test_auth_outside_batch_ok(void **state)
{
	struct fx fx;
	int fd;

	(void)state;
	fx_open(&fx, true);
	fd = fx_connect(&fx, "policy.sock");
	send_str(fd, REQ("CONNECT", "") REQ("AUTH", "sasl_username=u\n"
	    WIRE_AUTH_PASSWORD "=cGFzcw==\n"));
	fx_run(&fx, fd, 2);
	assert_string_equal(fx.in, "action=DUNNO\n\naction=OK\n\n");
	assert_false(fx.fake.decided_in_batch);
	/* CONNECT's batch committed before AUTH was decided */
	assert_non_null(strstr(fx.fake.log, "bded"));
	assert_false(fx.fake.bytes_before_commit);
	fx_close(&fx);
}

#define AUTH_REQ(client, pw) "request=smtpd_access_policy\n" \
	"protocol_state=AUTH\nclient_address=" client "\nsasl_username=u\n" \
	WIRE_AUTH_PASSWORD "=" pw "\n\n"

/* fx_auth_clients - n connections, each sending one AUTH with the right
 * password from client 192.0.2.(first + i); the loop turned until every
 * AUTH was taken up (begun: on the pool, or refused). */
static void
fx_auth_clients(struct fx *fx, int *fds, int n, int first)
{
	for (int i = 0; i < n; i++) {
		char req[256];

		fds[i] = sock_at(fx->dir, "policy.sock", false);
		snprintf(req, sizeof(req), AUTH_REQ("192.0.2.%d", "pass"),
		    first + i);
		send_str(fds[i], req);
	}
	for (int i = 0; i < 2000 && fx->fake.auth_begun < (unsigned)n; i++) {
		event_base_loop(fx->base, EVLOOP_NONBLOCK);
		(void)poll(NULL, 0, 1);
	}
	assert_int_equal(fx->fake.auth_begun, n);
}

/* With the pool, an AUTH is hashed off the loop and its connection's
 * later requests wait for it (replies in order), the password wiped
 * before the decision ends; another connection is served meanwhile. */
static void
test_pool_auth_in_order(void **state)
{
	struct fx fx;
	int fd, other;

	(void)state;
	fx_open_pool(&fx, 4);
	fd = fx_connect(&fx, "policy.sock");
	send_str(fd, REQ("CONNECT", "") AUTH_REQ("192.0.2.1", "pass")
	    AUTH_REQ("192.0.2.1", "wrong") REQ("RCPT", "recipient=ok@x\n"));
	fx_run(&fx, fd, 4);
	assert_string_equal(fx.in, "action=DUNNO\n\naction=OK\n\n"
	    "action=535 5.7.8 bad\n\naction=DUNNO\n\n");
	assert_int_equal(fx.fake.auth_begun, 2);
	assert_int_equal(fx.fake.auth_finished, 2);
	assert_false(fx.fake.pw_left);
	/* AUTH never went through decide: CONNECT and RCPT only */
	assert_string_equal(fx.fake.log, "dd");
	other = fd;
	fx.in_len = 0;
	fx.in[0] = '\0';
	fd = fx_connect(&fx, "policy.sock");
	send_str(fd, REQ("CONNECT", ""));
	fx_run(&fx, fd, 1);
	assert_string_equal(fx.in, "action=DUNNO\n\n");
	close(other);
	fx_close(&fx);
}

/* Connections that close while their AUTHs are on the pool: the worker
 * does not read a paused connection, so it learns of the close when it
 * answers the finished hash (its write fails, no signal, the connection
 * is closed) and keeps serving everyone else meanwhile. */
static void
test_pool_conn_closed_while_hashing(void **state)
{
	struct fx fx;
	int fds[3], fd;

	(void)state;
	fx_open_pool(&fx, 10);
	fx_auth_clients(&fx, fds, 3, 10);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	fd = fx_connect(&fx, "policy.sock");
	send_str(fd, REQ("CONNECT", ""));
	fx_run(&fx, fd, 1);
	assert_string_equal(fx.in, "action=DUNNO\n\n");
	/* Three bcrypt hashes of cost 10 (~0.1 s each): 20 s is plenty even
	 * on a loaded machine. */
	for (int i = 0; i < 4000 && fx.fake.auth_finished < 3; i++) {
		event_base_loop(fx.base, EVLOOP_NONBLOCK);
		(void)poll(NULL, 0, 5);
	}
	assert_int_equal(fx.fake.auth_finished, 3);
	assert_false(fx.fake.pw_left);
	/* Still serving. */
	fx.in_len = 0;
	fx.in[0] = '\0';
	send_str(fd, REQ("CONNECT", ""));
	fx_run(&fx, fd, 1);
	assert_string_equal(fx.in, "action=DUNNO\n\n");
	fx_close(&fx);
}

/* Freeing the worker (SIGTERM) with AUTHs running and waiting on the
 * pool returns once the running hash ends: the waiting ones are dropped,
 * none is finished for a connection that is gone. */
static void
test_pool_free_with_jobs_queued(void **state)
{
	struct fx fx;
	int fds[4];

	(void)state;
	fx_open_pool(&fx, 12);
	fx_auth_clients(&fx, fds, 4, 20);
	fx_close(&fx);
	assert_int_equal(fx.fake.auth_finished, 0);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
}

/* A request claiming a message descriptor that never came is a
 * tempfail, not decided; on the Postfix listener the claim is ignored. */
static void
test_missing_descriptor(void **state)
{
	struct fx fx;
	int fd;

	(void)state;
	fx_open(&fx, false);
	fd = fx_connect(&fx, "policy.sock");
	send_str(fd, REQ("END-OF-MESSAGE", "message_fd=1\n"));
	fx_run(&fx, fd, 1);
	assert_string_equal(fx.in, "action=451 4.3.0 Message descriptor "
	    "missing, try again later\n\n");
	assert_string_equal(fx.fake.log, "");
	close(fd);
	fx.fake.client_fd = -1;
	fx.in_len = 0;
	fx.in[0] = '\0';
	fd = fx_connect(&fx, "postfix.sock");
	send_str(fd, REQ("END-OF-MESSAGE", "message_fd=1\n"));
	fx_run(&fx, fd, 1);
	assert_string_equal(fx.in, "action=DUNNO\n\n");
	assert_int_equal(fx.fake.message_fd, -1);
	fx_close(&fx);
}

/* A malformed request closes the connection after the replies to what
 * came before it. */
/* A request waiting for DNS pauses its own connection only: another is
 * served meanwhile; after each ready the request is resumed, and once
 * decided it is answered before the requests behind it. */
static void
test_dns_wait_pauses_one_connection(void **state)
{
	struct fx fx;
	int fd, fd2;

	(void)state;
	fx_open_ops(&fx, &fake_dns_ops, false);
	fd = fx_connect(&fx, "policy.sock");
	send_str(fd, REQ("RCPT", "recipient=dns@x\n") REQ("RCPT",
	    "recipient=ok@x\n"));
	for (int i = 0; i < 200 && fx.fake.ready == NULL; i++)
		event_base_loop(fx.base, EVLOOP_NONBLOCK);
	assert_non_null(fx.fake.ready);
	/* another connection is answered while the first waits */
	fd2 = sock_at(fx.dir, "policy.sock", false);
	send_str(fd2, REQ("CONNECT", ""));
	fx_run(&fx, fd2, 1);
	assert_string_equal(fx.in, "action=DUNNO\n\n");
	fx.in_len = 0;
	fx.in[0] = '\0';
	/* nothing for the waiting connection yet */
	struct pollfd p = { fd, POLLIN, 0 };
	assert_int_equal(poll(&p, 1, 0), 0);
	fx.fake.ready(fx.fake.ready_arg);       /* waits again */
	assert_int_equal(fx.fake.resumed, 1);
	assert_int_equal(poll(&p, 1, 0), 0);
	fx.fake.ready(fx.fake.ready_arg);       /* decided */
	fx_run(&fx, fd, 2);
	assert_string_equal(fx.in, "action=550 5.7.1 dns\n\naction=DUNNO\n\n");
	assert_int_equal(fx.fake.resumed, 2);
	assert_int_equal(fx.fake.waits_freed, 0);
	close(fd2);
	fx_close(&fx);
}

/* A connection that closes while its request waits: the wait is freed
 * (its lookups cancelled) when the worker is freed or the connection
 * goes, and ready is never used again. */
static void
test_dns_wait_freed_with_connection(void **state)
{
	struct fx fx;
	int fd;

	(void)state;
	fx_open_ops(&fx, &fake_dns_ops, false);
	fd = fx_connect(&fx, "policy.sock");
	send_str(fd, REQ("RCPT", "recipient=dns@x\n"));
	for (int i = 0; i < 200 && fx.fake.ready == NULL; i++)
		event_base_loop(fx.base, EVLOOP_NONBLOCK);
	assert_non_null(fx.fake.ready);
	close(fd);
	fx.fake.client_fd = -1;
	fx_close(&fx);
	assert_int_equal(fx.fake.waits_freed, 1);
	assert_int_equal(fx.fake.resumed, 0);
}

static void
test_protocol_error_closes(void **state)
{
	struct fx fx;
	int fd;
	char b;

	(void)state;
	fx_open(&fx, true);
	fd = fx_connect(&fx, "policy.sock");
	send_str(fd, REQ("CONNECT", "") "no equals sign\n\n");
	fx_run(&fx, fd, 1);
	assert_string_equal(fx.in, "action=DUNNO\n\n");
	for (int i = 0; i < 2000; i++) {
		struct pollfd p = { fd, POLLIN, 0 };

		event_base_loop(fx.base, EVLOOP_NONBLOCK);
		if (poll(&p, 1, 5) > 0)
			break;
	}
	assert_int_equal(read(fd, &b, 1), 0);   /* EOF */
	fx_close(&fx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined_in_order),
		cmocka_unit_test(test_replies_held_until_commit),
		cmocka_unit_test(test_failed_batch_tempfails),
		cmocka_unit_test(test_lost_batch_ended_at_once),
		cmocka_unit_test(test_auth_outside_batch_ok),
		cmocka_unit_test(test_pool_auth_in_order),
		cmocka_unit_test(test_pool_conn_closed_while_hashing),
		cmocka_unit_test(test_pool_free_with_jobs_queued),
		cmocka_unit_test(test_missing_descriptor),
		cmocka_unit_test(test_protocol_error_closes),
		cmocka_unit_test(test_dns_wait_pauses_one_connection),
		cmocka_unit_test(test_dns_wait_freed_with_connection),
	};

	/* As in policyd: a reply to a closed peer is an error, not a
	 * signal. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
