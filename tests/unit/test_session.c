/*
 * test_session.c - the SMTP session state machine (smtpd/session.c)
 * driven without sockets: input lines in, replies and state transitions
 * out, policy answers scripted through the session_ops seam.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include <cmocka.h>

#include "addr.h"
#include "config.h"
#include "log.h"
#include "route.h"
#include "strbuf.h"
#include "wire.h"
#include "../../smtpd/policy_client.h"
#include "../../smtpd/session.h"
#include "../../smtpd/spool.h"

struct drv {
	struct config *cfg;
	struct session *s;
	char spool[256];
	char out[65536];
	size_t out_len;
	bool closed;
	char *in;
	size_t in_len, in_pos, in_cap;
	int npolicy;              /* requests started */
	int nstarttls;            /* ops->starttls calls */
	char req[16384];          /* the last request */
	char msg[8192];           /* message read through the EOM fd */
	bool policy_fail_now;     /* ops->policy returns -1 */
	int ndelay;               /* ops->delay calls */
	uint32_t delay_ms;        /* ...and the last one's delay */
};

static void
drv_write(void *io, const char *data, size_t len)
{
	struct drv *d = io;

	assert_true(d->out_len + len < sizeof(d->out));
	memcpy(d->out + d->out_len, data, len);
	d->out_len += len;
	d->out[d->out_len] = '\0';
}

static void
drv_close(void *io)
{
	((struct drv *)io)->closed = true;
}

static size_t
drv_pending(void *io)
{
	struct drv *d = io;

	return d->in_len - d->in_pos;
}

static int
drv_policy(void *io, struct strbuf *req, int fd, char *why, size_t whylen)
{
	struct drv *d = io;

	if (d->policy_fail_now) {
		snprintf(why, whylen, "connect: refused (test)");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	d->npolicy++;
	snprintf(d->req, sizeof(d->req), "%s", strbuf_cstr(req));
	strbuf_free(req);
	d->msg[0] = '\0';
	if (fd >= 0) {
		ssize_t n = pread(fd, d->msg, sizeof(d->msg) - 1, 0);

		d->msg[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	return 0;
}


/* drv_delay - the transport is asked to wait (session_delay_done is
 * called by the test). */
static void
drv_delay(void *io, uint32_t ms)
{
	struct drv *d = io;

	d->ndelay++;
	d->delay_ms = ms;
}

/* drv_starttls - the transport is asked to switch to TLS. */
static void
drv_starttls(void *io)
{
	((struct drv *)io)->nstarttls++;
}

/* The asynchronous commit seam: the message is taken over and committed
 * when the test says so (drv_commit_finish). */
static struct spool_msg drv_job;
static struct spool_envelope drv_job_env;
static enum spool_dest drv_job_dest;
static bool drv_job_pending;

static void
drv_commit(void *io, struct spool_msg *m, const struct spool_envelope *env,
    enum spool_dest dest)
{
	drv_job = *m;
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	drv_job_env = *env;       /* valid until session_commit_done */
	drv_job_dest = dest;
	drv_job_pending = true;
}

/* The plain transport commits as soon as the policy answer that led to
 * the commit has been delivered (drv_answer, drv_fail): tests that do
 * not look at the commit get their 250 at once. */
static bool drv_job_auto;

static void
drv_commit_auto(void *io, struct spool_msg *m,
    const struct spool_envelope *env, enum spool_dest dest)
{
	drv_commit(io, m, env, dest);
	drv_job_auto = true;
}

static const struct session_ops drv_ops = {
	.write = drv_write,
	.close = drv_close,
	.pending = drv_pending,
	.policy = drv_policy,
	.commit = drv_commit_auto,
};

static const struct session_ops drv_ops_async = {
	.write = drv_write,
	.close = drv_close,
	.pending = drv_pending,
	.policy = drv_policy,
	.commit = drv_commit,
};

/* A transport that can do TLS (and commits asynchronously, so the
 * envelope can be inspected). */
static const struct session_ops drv_ops_tls = {
	.write = drv_write,
	.close = drv_close,
	.pending = drv_pending,
	.policy = drv_policy,
	.commit = drv_commit,
	.starttls = drv_starttls,
	.delay = drv_delay,
};

/* drv_pump - feed unconsumed input until the session stops taking it. */
static void
drv_pump(struct drv *d)
{
	while (d->in_pos < d->in_len) {
		size_t n = session_feed(d->s, d->in + d->in_pos,
		    d->in_len - d->in_pos, d->in_len - d->in_pos);

		if (n == 0)
			break;
		d->in_pos += n;
	}
}

/* drv_send - the client sends bytes (one TCP segment). */
static void
drv_send_n(struct drv *d, const char *data, size_t len)
{
	if (d->in_len + len + 1 > d->in_cap) {
		d->in_cap = (d->in_len + len + 1) * 2;
		d->in = realloc(d->in, d->in_cap);
	}
	memcpy(d->in + d->in_len, data, len);
	d->in_len += len;
	drv_pump(d);
}

static void
drv_send(struct drv *d, const char *s)
{
	drv_send_n(d, s, strlen(s));
}

/* drv_commit_finish - the plain transport's commit completes. */
static void
drv_commit_finish(struct drv *d)
{
	struct error err;
	int rc;

	if (!drv_job_pending || !drv_job_auto)
		return;
	drv_job_pending = drv_job_auto = false;
	assert_int_equal(session_pending(d->s), SESSION_PENDING_COMMIT);
	rc = spool_msg_commit(&drv_job, &drv_job_env, drv_job_dest, false,
	    &err);
	session_commit_done(d->s, rc, rc < 0 ? err.text : "");
}

/* drv_answer - policyd answers the pending request with action. */
static void
drv_answer(struct drv *d, const char *action)
{
	struct policy_result res;

	memset(&res, 0, sizeof(res));
	policy_result_parse(action, &res);
	session_policy_done(d->s, &res);
	drv_commit_finish(d);
	drv_pump(d);
}

/* drv_fail - the pending request failed (timeout, policyd down). */
static void
drv_fail(struct drv *d)
{
	struct policy_result res;

	memset(&res, 0, sizeof(res));
	res.failed = true;
	snprintf(res.why, sizeof(res.why), "test failure");
	session_policy_done(d->s, &res);
	drv_commit_finish(d);
	drv_pump(d);
}

/* drv_take - the replies so far (cleared). */
static const char *
drv_take(struct drv *d)
{
	static char buf[65536];

	memcpy(buf, d->out, d->out_len + 1);
	d->out_len = 0;
	d->out[0] = '\0';
	return buf;
}

#define assert_reply(d, want) assert_string_equal(drv_take(d), (want))
#define assert_state(d, st) assert_int_equal(session_state((d)->s), (st))

/* count_dir - entries in spool/sub. */
static int
count_dir(struct drv *d, const char *sub)
{
	char path[512];
	DIR *dir;
	struct dirent *e;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", d->spool, sub);
	dir = opendir(path);
	assert_non_null(dir);
	while ((e = readdir(dir)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

/* count_open_tmp - this process's descriptors of files in spool/tmp/ (a
 * message being received is an unnamed O_TMPFILE inode there). */
static int
count_open_tmp(struct drv *d)
{
	char prefix[512], link[1024], fdpath[300];
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(dir);
	snprintf(prefix, sizeof(prefix), "%s/tmp/", d->spool);
	while ((e = readdir(dir)) != NULL) {
		ssize_t len;

		snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%s", e->d_name);
		len = readlink(fdpath, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		if (strncmp(link, prefix, strlen(prefix)) == 0)
			n++;
	}
	closedir(dir);
	return n;
}

static int
setup(void **state)
{
	struct drv *d = calloc(1, sizeof(*d));
	struct session_peer peer = { "192.0.2.7", 50123, "192.0.2.1", 25,
	    CONFIG_MODE_SMTP, false };
	struct error err;

	d->cfg = calloc(1, sizeof(*d->cfg));
	snprintf(d->cfg->server.hostname, sizeof(d->cfg->server.hostname),
	    "mx.test");
	snprintf(d->cfg->server.banner, sizeof(d->cfg->server.banner),
	    "ESMTP Elemta");
	d->cfg->server.max_message_size = 10000;
	d->cfg->server.max_recipients = 100;
	d->cfg->server.max_errors = 5;
	d->cfg->server.command_timeout_ms = 300000;
	d->cfg->server.data_timeout_ms = 600000;
	d->cfg->server.bare_newline = CONFIG_BARE_REJECT;
	d->cfg->policyd.fail_mode = CONFIG_FAIL_TEMPFAIL;
	d->cfg->spool.fsync = false;
	/* The clients (192.0.2.7, 2001:db8::7) may relay, as the tests before relay
	 * control assume; the relay tests move it out. */
	assert_int_equal(addr_cidr_list_add(&d->cfg->server.mynetworks,
	    "192.0.2.0/24", 0, &err), 0);
	assert_int_equal(addr_cidr_list_add(&d->cfg->server.mynetworks,
	    "2001:db8::/32", 0, &err), 0);
	snprintf(d->spool, sizeof(d->spool), "/tmp/elemta-test-session.XXXXXX");
	assert_non_null(mkdtemp(d->spool));
	snprintf(d->cfg->spool.path, sizeof(d->cfg->spool.path), "%s", d->spool);
	assert_int_equal(spool_prepare(d->spool, &err), 0);
	d->s = session_new(d->cfg, &drv_ops, d, &peer);
	*state = d;
	return 0;
}

static int
teardown(void **state)
{
	struct drv *d = *state;
	char cmd[600];

	session_free(d->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->spool);
	assert_int_equal(system(cmd), 0);
	free(d->in);
	addr_cidr_list_free(&d->cfg->server.mynetworks);
	for (size_t i = 0; i < d->cfg->delivery.route_count; i++)
		route_free(&d->cfg->delivery.routes[i]);
	free(d->cfg->delivery.routes);
	free(d->cfg);
	free(d);
	return 0;
}

/* greet - CONNECT answered: 220. */
static void
greet(struct drv *d)
{
	session_start(d->s);
	assert_state(d, SESSION_CONNECT_POLICY);
	assert_non_null(strstr(d->req, "protocol_state=CONNECT\n"));
	drv_answer(d, "DUNNO");
	assert_reply(d, "220 mx.test ESMTP Elemta\r\n");
	assert_state(d, SESSION_GREETED);
}

/* ehlo - greeting and EHLO accepted. */
static void
ehlo(struct drv *d)
{
	greet(d);
	drv_send(d, "EHLO client.test\r\n");
	assert_state(d, SESSION_WAIT_POLICY);
	assert_non_null(strstr(d->req, "protocol_state=EHLO\n"));
	assert_non_null(strstr(d->req, "helo_name=client.test\n"));
	drv_answer(d, "DUNNO");
	assert_reply(d, "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n"
	    "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-DSN\r\n"
	    "250 HELP\r\n");
	assert_state(d, SESSION_HELO_DONE);
}

static void
test_greeting_and_quit(void **state)
{
	struct drv *d = *state;

	greet(d);
	drv_send(d, "quit\r\n");
	assert_reply(d, "221 2.0.0 Bye\r\n");
	assert_true(d->closed);
	assert_state(d, SESSION_CLOSING);
}

static void
test_early_talker(void **state)
{
	struct drv *d = *state;

	session_start(d->s);
	assert_int_equal(session_pending(d->s), SESSION_PENDING_POLICY);
	drv_send(d, "EHLO fast.example\r\n");
	assert_reply(d, "554 5.5.0 Error: SMTP protocol synchronization\r\n");
	assert_true(d->closed);
	/* closing: the transport may drop the connection */
	assert_int_equal(session_pending(d->s), SESSION_PENDING_NONE);
	/* The late CONNECT answer changes nothing. */
	drv_answer(d, "DUNNO");
	assert_reply(d, "");
}

static void
test_connect_reject_and_tempfail(void **state)
{
	struct drv *d = *state;

	session_start(d->s);
	drv_answer(d, "REJECT 5.7.1 go away");
	assert_reply(d, "554 5.7.1 go away\r\n");
	assert_true(d->closed);
}

static void
test_connect_policy_down(void **state)
{
	struct drv *d = *state;

	d->policy_fail_now = true;
	session_start(d->s);
	assert_reply(d, "421 4.3.5 Policy service unavailable, try again later\r\n");
	assert_true(d->closed);
}

static void
test_sequence_errors(void **state)
{
	struct drv *d = *state;

	greet(d);
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	assert_reply(d, "503 5.5.1 Error: send HELO/EHLO first\r\n");
	drv_send(d, "RCPT TO:<a@b.example>\r\n");
	assert_reply(d, "503 5.5.1 Error: need MAIL command\r\n");
	drv_send(d, "DATA\r\n");
	assert_reply(d, "503 5.5.1 Error: need MAIL command\r\n");
	drv_send(d, "FOO\r\n");
	assert_reply(d, "500 5.5.2 Error: command not recognized\r\n");
	assert_state(d, SESSION_GREETED);
	assert_false(d->closed);
	/* the fifth error ends the session (max_errors 5) */
	drv_send(d, "BAR\r\n");
	assert_reply(d, "500 5.5.2 Error: command not recognized\r\n"
	    "421 4.7.0 mx.test Error: too many errors\r\n");
	assert_true(d->closed);
}

static void
test_helo_then_mail_sequence(void **state)
{
	struct drv *d = *state;

	greet(d);
	drv_send(d, "HELO old.example\r\n");
	assert_non_null(strstr(d->req, "protocol_state=HELO\n"));
	assert_non_null(strstr(d->req, "protocol_name=SMTP\n"));
	drv_answer(d, "DUNNO");
	assert_reply(d, "250 mx.test\r\n");
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	drv_answer(d, "OK");
	assert_reply(d, "250 2.1.0 Ok\r\n");
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	assert_reply(d, "503 5.5.1 Error: nested MAIL command\r\n");
	drv_send(d, "DATA\r\n");
	assert_reply(d, "503 5.5.1 Error: need RCPT command\r\n");
	/* RFC 3461 parameters, like every extension's, need EHLO. */
	drv_send(d, "RCPT TO:<c@d.example> NOTIFY=NEVER\r\n");
	assert_reply(d, "555 5.5.4 Error: parameters need EHLO\r\n");

	drv_send(d, "RSET\r\n");
	assert_reply(d, "250 2.0.0 Ok\r\n");
	assert_state(d, SESSION_HELO_DONE);
	drv_send(d, "MAIL FROM:<a@b.example> RET=FULL\r\n");
	assert_reply(d, "555 5.5.4 Error: parameters need EHLO\r\n");
}

static void
test_ehlo_pipelining_refused(void **state)
{
	struct drv *d = *state;

	greet(d);
	drv_send(d, "EHLO client.test\r\nMAIL FROM:<a@b.example>\r\n");
	assert_reply(d, "554 5.5.0 Error: SMTP protocol synchronization\r\n");
	assert_true(d->closed);
}

static void
test_ehlo_pipelining_during_policy_wait(void **state)
{
	struct drv *d = *state;

	greet(d);
	drv_send(d, "EHLO client.test\r\n");
	/* the client does not wait for the EHLO reply */
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	drv_answer(d, "DUNNO");
	assert_reply(d, "554 5.5.0 Error: SMTP protocol synchronization\r\n");
	assert_true(d->closed);
}

static void
test_pipelined_transaction(void **state)
{
	struct drv *d = *state;

	ehlo(d);
	drv_send(d, "MAIL FROM:<a@b.example> SIZE=100\r\n"
	    "RCPT TO:<x@blocked.example>\r\nRCPT TO:<y@ok.example>\r\nDATA\r\n");
	/* Only MAIL is being decided; nothing answered yet. */
	assert_state(d, SESSION_WAIT_POLICY);
	assert_reply(d, "");
	assert_non_null(strstr(d->req, "protocol_state=MAIL\n"));
	assert_non_null(strstr(d->req, "sender=a@b.example\n"));
	assert_non_null(strstr(d->req, "size=100\n"));
	assert_non_null(strstr(d->req, "queue_id="));
	drv_answer(d, "DUNNO");
	assert_reply(d, "250 2.1.0 Ok\r\n");
	assert_non_null(strstr(d->req, "recipient=x@blocked.example\n"));
	assert_non_null(strstr(d->req, "recipient_count=0\n"));
	drv_answer(d, "REJECT 5.7.1 blocked domain");
	assert_reply(d, "550 5.7.1 blocked domain\r\n");
	assert_non_null(strstr(d->req, "recipient=y@ok.example\n"));
	drv_answer(d, "DUNNO");
	assert_reply(d, "250 2.1.5 Ok\r\n");
	assert_non_null(strstr(d->req, "protocol_state=DATA\n"));
	assert_non_null(strstr(d->req, "accepted_recipient=y@ok.example\n"));
	assert_non_null(strstr(d->req, "recipient_count=1\n"));
	drv_answer(d, "DUNNO");
	assert_reply(d, "354 End data with <CR><LF>.<CR><LF>\r\n");
	assert_state(d, SESSION_DATA);
}

/* mail_to_data - EHLO .. 354 for one recipient. */
static void
mail_to_data(struct drv *d)
{
	ehlo(d);
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	drv_answer(d, "DUNNO");
	drv_send(d, "RCPT TO:<c@d.example>\r\n");
	drv_answer(d, "DUNNO");
	drv_send(d, "DATA\r\n");
	drv_answer(d, "DUNNO");
	assert_reply(d, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n");
}

/* test_local_session - a local listener's session (elemta-sendmail):
 * authenticated from the start as the peer's user, whose name and uid
 * every request carries; no AUTH, no STARTTLS; relay allowed though the
 * client is outside mynetworks; Received: "from userid". */
static void
test_local_session(void **state)
{
	struct drv *d = *state;
	struct session_peer peer = { "127.0.0.1", 0, "127.0.0.1", 0,
	    CONFIG_MODE_LOCAL, false };

	session_free(d->s);
	snprintf(d->cfg->auth.users_file, sizeof(d->cfg->auth.users_file),
	    "/nonexistent/users");
	d->s = session_new(d->cfg, &drv_ops, d, &peer);
	session_local_user(d->s, "alice", 1000, 4242);
	session_start(d->s);
	assert_non_null(strstr(d->req, "protocol_state=CONNECT\n"));
	assert_non_null(strstr(d->req, "sasl_username=alice\n"));
	assert_non_null(strstr(d->req, "elemta_local_uid=1000\n"));
	assert_non_null(strstr(d->req, "elemta_listen_mode=local\n"));
	assert_null(strstr(d->req, "sasl_method="));
	drv_answer(d, "DUNNO");
	assert_reply(d, "220 mx.test ESMTP Elemta\r\n");
	drv_send(d, "EHLO localhost\r\n");
	drv_answer(d, "DUNNO");
	assert_null(strstr(drv_take(d), "AUTH"));
	drv_send(d, "AUTH PLAIN AGJvYgBwdw==\r\n");
	assert_reply(d, "503 5.5.1 Error: authentication not enabled\r\n");
	drv_send(d, "STARTTLS\r\n");
	assert_int_equal(strncmp(drv_take(d), "502 ", 4), 0);
	drv_send(d, "MAIL FROM:<alice@host.example>\r\n");
	assert_non_null(strstr(d->req, "sasl_username=alice\n"));
	drv_answer(d, "DUNNO");
	drv_send(d, "RCPT TO:<x@far.example>\r\n");
	assert_non_null(strstr(d->req, "recipient=x@far.example\n"));
	assert_non_null(strstr(d->req, "elemta_local_uid=1000\n"));
	drv_answer(d, "DUNNO");
	drv_send(d, "DATA\r\n");
	drv_answer(d, "DUNNO");
	assert_reply(d, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n");
	drv_send(d, "Subject: t\r\n\r\nhi\r\n.\r\n");
	assert_non_null(strstr(d->req, "protocol_state=END-OF-MESSAGE\n"));
	assert_int_equal(strncmp(d->msg, "Received: by mx.test (Elemta, from "
	    "userid 1000)\r\n\tid ", 50), 0);
	assert_null(strstr(d->msg, "far.example"));   /* no "for <...>" */
	drv_answer(d, "DUNNO");
	assert_int_equal(strncmp(drv_take(d), "250 2.0.0 Ok: queued as ", 24),
	    0);
	assert_string_equal(drv_job_env.auth_user, "alice");
}

static void
test_message_queued_and_input_after_dot_waits(void **state)
{
	struct drv *d = *state;

	mail_to_data(d);
	drv_send(d, "Subject: t\r\n\r\n..dot\r\n.\r\nQUIT\r\n");
	assert_state(d, SESSION_EOM_POLICY);
	/* QUIT stays unread until the message is decided. */
	assert_int_equal(drv_pending(d), strlen("QUIT\r\n"));
	assert_reply(d, "");
	assert_non_null(strstr(d->req, "protocol_state=END-OF-MESSAGE\n"));
	assert_non_null(strstr(d->req, "message_fd=1\n"));
	assert_non_null(strstr(d->msg, "Received: from client.test (unknown "
	    "[192.0.2.7])\r\n"));
	assert_non_null(strstr(d->msg, "\tfor <c@d.example>; "));
	assert_non_null(strstr(d->msg, "\r\nSubject: t\r\n\r\n.dot\r\n"));
	drv_answer(d, "DUNNO");
	{
		const char *r = drv_take(d);

		assert_memory_equal(r, "250 2.0.0 Ok: queued as ", 24);
		assert_non_null(strstr(r, "\r\n221 2.0.0 Bye\r\n"));
	}
	assert_int_equal(count_dir(d, "queue"), 1);
	assert_int_equal(count_dir(d, "tmp"), 0);
}

static void
test_bare_lf_rejected(void **state)
{
	struct drv *d = *state;
	int before;

	mail_to_data(d);
	before = d->npolicy;
	drv_send(d, "Subject: t\r\n\r\nx\n.\nMAIL FROM:<e@f.example>\r\n.\r\n");
	/* Refused without asking policyd; the session can go on. */
	assert_int_equal(d->npolicy, before);
	assert_reply(d, "550 5.5.2 Error: message contains bare CR or LF "
	    "(see RFC 5321 2.3.8)\r\n");
	assert_state(d, SESSION_HELO_DONE);
	assert_int_equal(count_dir(d, "queue"), 0);
	assert_int_equal(count_dir(d, "tmp"), 0);
}

static void
test_bare_lf_normalized(void **state)
{
	struct drv *d = *state;

	d->cfg->server.bare_newline = CONFIG_BARE_NORMALIZE;
	mail_to_data(d);
	drv_send(d, "Subject: t\r\n\r\nx\n.\nafter\r\n.\r\n");
	assert_state(d, SESSION_EOM_POLICY);
	assert_non_null(strstr(d->msg, "\r\n\r\nx\r\n.\r\nafter\r\n"));
	drv_answer(d, "DUNNO");
	assert_int_equal(count_dir(d, "queue"), 1);
}

static void
test_oversize_message(void **state)
{
	struct drv *d = *state;
	char *big = malloc(20001);

	mail_to_data(d);
	memset(big, 'a', 20000);
	for (int i = 100; i < 20000; i += 100)
		memcpy(big + i - 2, "\r\n", 2);
	big[20000] = '\0';
	drv_send(d, big);
	/* the spool file is gone as soon as the limit is passed */
	assert_int_equal(count_dir(d, "tmp"), 0);
	drv_send(d, "\r\n.\r\n");
	assert_reply(d, "552 5.3.4 Error: message size exceeds fixed limit\r\n");
	assert_int_equal(count_dir(d, "queue"), 0);
	free(big);
}

static void
test_mail_size_param_over_limit(void **state)
{
	struct drv *d = *state;

	ehlo(d);
	drv_send(d, "MAIL FROM:<a@b.example> SIZE=10001\r\n");
	assert_reply(d, "552 5.3.4 Message size exceeds fixed limit\r\n");
	drv_send(d, "MAIL FROM:<a@b.example> FOO=BAR\r\n");
	assert_reply(d, "555 5.5.4 Unsupported option: FOO\r\n");
	drv_send(d, "MAIL FROM:a@b.example\r\n");
	assert_reply(d, "501 5.1.7 Bad sender address syntax (angle brackets "
	    "required)\r\n");
	assert_state(d, SESSION_HELO_DONE);
}

static void
test_discard_and_quarantine(void **state)
{
	struct drv *d = *state;
	const char *r;

	mail_to_data(d);
	drv_send(d, "Subject: t\r\n\r\nbody\r\n.\r\n");
	drv_answer(d, "DISCARD spam");
	r = drv_take(d);
	assert_memory_equal(r, "250 2.0.0 Ok: queued as ", 24);
	assert_int_equal(count_dir(d, "queue"), 0);
	assert_int_equal(count_dir(d, "tmp"), 0);

	/* quarantine decided at RCPT applies to the message */
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	drv_answer(d, "DUNNO");
	drv_send(d, "RCPT TO:<c@d.example>\r\n");
	drv_answer(d, "HOLD suspicious");
	drv_send(d, "DATA\r\n");
	drv_answer(d, "DUNNO");
	drv_send(d, "Subject: t\r\n\r\nbody\r\n.\r\n");
	drv_answer(d, "DUNNO");
	r = drv_take(d);
	assert_non_null(strstr(r, "250 2.0.0 Ok: queued as "));
	assert_int_equal(count_dir(d, "quarantine"), 1);
	assert_int_equal(count_dir(d, "queue"), 0);
}

static void
test_policy_fail_modes(void **state)
{
	struct drv *d = *state;

	ehlo(d);
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	drv_fail(d);
	assert_reply(d, "451 4.3.5 Policy service unavailable, try again later\r\n");
	assert_state(d, SESSION_HELO_DONE);
	d->cfg->policyd.fail_mode = CONFIG_FAIL_ACCEPT;
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	drv_fail(d);
	assert_reply(d, "250 2.1.0 Ok\r\n");
}

static void
test_policy_421_closes(void **state)
{
	struct drv *d = *state;

	ehlo(d);
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	drv_answer(d, "421 4.7.0 too busy");
	assert_reply(d, "421 4.7.0 too busy\r\n");
	assert_true(d->closed);
}

static void
test_line_limits_and_nul(void **state)
{
	struct drv *d = *state;
	char line[1200];

	greet(d);
	memset(line, 'A', sizeof(line));
	memcpy(line, "NOOP ", 5);
	line[1197] = '\r';
	line[1198] = '\n';
	line[1199] = '\0';
	drv_send(d, line);
	assert_reply(d, "500 5.5.2 Error: line too long\r\n");
	/* exactly 512 with CRLF is fine, 513 is not */
	memset(line + 5, 'a', 505);
	memcpy(line + 510, "\r\n", 3);
	drv_send(d, line);
	assert_reply(d, "250 2.0.0 Ok\r\n");
	memset(line + 5, 'a', 506);
	memcpy(line + 511, "\r\n", 3);
	drv_send(d, line);
	assert_reply(d, "500 5.5.2 Error: line too long\r\n");
	drv_send_n(d, "NO\0OP\r\n", 7);
	assert_reply(d, "500 5.5.2 Error: NUL character in command\r\n");
	assert_false(d->closed);
}

static void
test_partial_line_waits(void **state)
{
	struct drv *d = *state;

	greet(d);
	drv_send(d, "NO");
	assert_reply(d, "");
	drv_send(d, "OP\r");
	assert_reply(d, "");
	drv_send(d, "\n");
	assert_reply(d, "250 2.0.0 Ok\r\n");
}

static void
test_misc_commands(void **state)
{
	struct drv *d = *state;

	greet(d);
	drv_send(d, "VRFY bob\r\n");
	assert_reply(d, "252 2.5.2 Cannot VRFY user, but will accept message "
	    "and attempt delivery\r\n");
	drv_send(d, "EXPN list\r\n");
	assert_reply(d, "502 5.5.1 Error: command not implemented\r\n");
	drv_send(d, "STARTTLS\r\n");
	assert_reply(d, "502 5.5.1 Error: command not implemented\r\n");
	drv_send(d, "HELP\r\n");
	assert_memory_equal(drv_take(d), "214 2.0.0 ", 10);
	drv_send(d, "GET / HTTP/1.0\r\n");
	assert_reply(d, "221 2.7.0 Error: I can break rules, too. Goodbye.\r\n");
	assert_true(d->closed);
}

static void
test_max_recipients(void **state)
{
	struct drv *d = *state;
	char line[64];

	ehlo(d);
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	drv_answer(d, "DUNNO");
	drv_take(d);
	for (int i = 0; i < 100; i++) {
		snprintf(line, sizeof(line), "RCPT TO:<r%d@d.example>\r\n", i);
		drv_send(d, line);
		drv_answer(d, "DUNNO");
	}
	drv_take(d);
	drv_send(d, "RCPT TO:<one-too-many@d.example>\r\n");
	assert_reply(d, "452 4.5.3 Error: too many recipients\r\n");
	assert_state(d, SESSION_RCPT_DONE);
}

/* fill_recipients - a transaction with max_recipients (100) accepted. */
static void
fill_recipients(struct drv *d)
{
	ehlo(d);
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	drv_answer(d, "DUNNO");
	for (int i = 0; i < 100; i++) {
		drv_send(d, "RCPT TO:<r@d.example>\r\n");
		drv_answer(d, "DUNNO");
	}
}

/* test_recipient_overshoot_not_an_error - issue 22: 452 4.5.3 over the
 * limit (ours or a policy's) is not a protocol error, so a client that
 * pipelines past the limit keeps its transaction; past 1000 overshoots
 * (Postfix's smtpd_recipient_overshoot_limit) each one counts again. */
static void
test_recipient_overshoot_not_an_error(void **state)
{
	struct drv *d = *state;
	struct strbuf sb = STRBUF_INIT(1u << 20);
	const char *out;

	fill_recipients(d);
	drv_take(d);
	/* 900 more, pipelined (max_errors is 5). */
	for (int i = 0; i < 900; i++)
		assert_int_equal(strbuf_appendf(&sb, "RCPT TO:<x%d@d.example>\r\n",
		    i), 0);
	drv_send_n(d, sb.data, sb.len);
	strbuf_free(&sb);
	out = drv_take(d);
	assert_null(strstr(out, "421"));
	assert_int_equal(strlen(out), 900 * strlen("452 4.5.3 Error: too many "
	    "recipients\r\n"));
	assert_false(d->closed);
	drv_send(d, "DATA\r\n");
	drv_answer(d, "DUNNO");
	assert_reply(d, "354 End data with <CR><LF>.<CR><LF>\r\n");
	drv_send(d, "Subject: x\r\n\r\nhi\r\n.\r\n");
	drv_answer(d, "DUNNO");
	assert_non_null(strstr(drv_take(d), "250 2.0.0 Ok: queued as"));

	/* A policy's 452 4.5.3 is the same limit: not counted. */
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	drv_answer(d, "DUNNO");
	for (int i = 0; i < 10; i++) {
		drv_send(d, "RCPT TO:<p@d.example>\r\n");
		drv_answer(d, "452 4.5.3 Too many recipients (at most 0 per message)");
	}
	assert_false(d->closed);
	drv_take(d);
	/* Another 4xx from a policy still counts: the fifth error closes. */
	for (int i = 0; i < 5; i++) {
		drv_send(d, "RCPT TO:<p@d.example>\r\n");
		drv_answer(d, "450 4.7.1 try later");
	}
	assert_true(d->closed);
	assert_non_null(strstr(drv_take(d), "421 4.7.0 mx.test Error: too many errors"));
}

/* test_recipient_overshoot_bounded - past 1000 overshoots per transaction
 * the 452s count toward max_errors: no endless recipient loop. */
static void
test_recipient_overshoot_bounded(void **state)
{
	struct drv *d = *state;
	struct strbuf sb = STRBUF_INIT(1u << 20);

	fill_recipients(d);
	for (int i = 0; i < 1004; i++)
		assert_int_equal(strbuf_appendf(&sb, "RCPT TO:<x@d.example>\r\n"),
		    0);
	drv_send_n(d, sb.data, sb.len);
	assert_false(d->closed);
	drv_send(d, "RCPT TO:<x@d.example>\r\n");
	assert_true(d->closed);
	strbuf_free(&sb);
}

/* rate_to_data - min_data_rate 500 bytes/s after a 1 s grace, then a
 * transaction up to DATA. */
static void
rate_to_data(struct drv *d)
{
	d->cfg->server.min_data_rate = 500;
	d->cfg->server.min_data_rate_grace_ms = 1000;
	mail_to_data(d);
}

/* test_min_data_rate - issue 22: a DATA that falls below
 * server.min_data_rate after the grace is cut with 421 4.4.2, by the read
 * timer alone (no further byte needed), long before data_timeout. */
static void
test_min_data_rate(void **state)
{
	struct drv *d = *state;
	struct timespec pause = { 1, 200000000 };

	rate_to_data(d);
	/* The timer is armed for the grace, not the 10-minute data_timeout. */
	assert_true(session_read_timeout_ms(d->s) <= 1000);
	drv_send(d, "Subject: slow\r\n");
	nanosleep(&pause, NULL);
	assert_int_equal(session_read_timeout_ms(d->s), 0);
	session_timeout(d->s);
	assert_reply(d, "421 4.4.2 mx.test Error: data rate too low\r\n");
	assert_true(d->closed);
	assert_int_equal(count_open_tmp(d), 0);
	assert_int_equal(count_dir(d, "queue"), 0);
}

/* test_min_data_rate_credit - every byte received earns 1/rate seconds
 * (Postfix's credit): 4000 bytes at 500 bytes/s are 8 s beyond the grace. */
static void
test_min_data_rate_credit(void **state)
{
	struct drv *d = *state;
	char body[4000];
	uint64_t t;

	rate_to_data(d);
	memset(body, 'x', sizeof(body));
	memcpy(body, "Subject: slow\r\n\r\n", 17);
	drv_send_n(d, body, sizeof(body));
	t = session_read_timeout_ms(d->s);
	assert_true(t > 7000 && t <= 9000);
	assert_false(d->closed);
	/* Off: only data_timeout is left. */
	d->cfg->server.min_data_rate = 0;
	assert_true(session_read_timeout_ms(d->s) > 9000);
}

/* test_min_data_rate_on_input - the same limit met by a byte arriving
 * after the deadline (the timer may be late on a busy machine). */
static void
test_min_data_rate_on_input(void **state)
{
	struct drv *d = *state;
	struct timespec pause = { 1, 200000000 };

	rate_to_data(d);
	drv_send(d, "S");
	assert_false(d->closed);
	nanosleep(&pause, NULL);
	drv_send(d, "u");
	assert_reply(d, "421 4.4.2 mx.test Error: data rate too low\r\n");
	assert_true(d->closed);
}

static void
test_data_sync_violation(void **state)
{
	struct drv *d = *state;

	ehlo(d);
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	drv_answer(d, "DUNNO");
	drv_send(d, "RCPT TO:<c@d.example>\r\n");
	drv_answer(d, "DUNNO");
	drv_take(d);
	drv_send(d, "DATA\r\nSubject: too early\r\n");
	assert_reply(d, "554 5.5.0 Error: SMTP protocol synchronization\r\n");
	assert_true(d->closed);
}

static void
test_timeout_and_shutdown(void **state)
{
	struct drv *d = *state;

	mail_to_data(d);
	drv_send(d, "Subject: partial\r\n");
	/* being received: open, and without a name anyone could see */
	assert_int_equal(count_open_tmp(d), 1);
	assert_int_equal(count_dir(d, "tmp"), 0);
	assert_true(session_read_timeout_ms(d->s) > 0);
	session_timeout(d->s);
	assert_reply(d, "421 4.4.2 mx.test Error: timeout exceeded\r\n");
	assert_true(d->closed);
	/* the partial message is gone */
	assert_int_equal(count_open_tmp(d), 0);
	assert_int_equal(count_dir(d, "tmp"), 0);
	assert_int_equal(count_dir(d, "queue"), 0);
}

static void
test_shutdown(void **state)
{
	struct drv *d = *state;

	ehlo(d);
	session_shutdown(d->s);
	assert_reply(d, "421 4.3.2 mx.test Service shutting down\r\n");
	assert_true(d->closed);
}

static void
test_async_commit(void **state)
{
	struct drv *d = *state;
	struct session_peer peer = { "2001:db8::7", 40000, "2001:db8::1", 25,
	    CONFIG_MODE_SMTP, false };
	struct error err;
	const char *r;

	session_free(d->s);
	d->s = session_new(d->cfg, &drv_ops_async, d, &peer);
	mail_to_data(d);
	drv_send(d, "Subject: a\r\n\r\nbody\r\n.\r\nNOOP\r\n");
	drv_answer(d, "DUNNO");
	/* accepted, but no 250 before the commit is durable */
	assert_true(drv_job_pending);
	assert_state(d, SESSION_EOM_COMMIT);
	assert_int_equal(session_pending(d->s), SESSION_PENDING_COMMIT);
	assert_reply(d, "");
	assert_int_equal(drv_job_dest, SPOOL_QUEUE);
	assert_string_equal(drv_job_env.client_address, "2001:db8::7");
	assert_int_equal(spool_msg_commit(&drv_job, &drv_job_env, drv_job_dest,
	    false, &err), 0);
	drv_job_pending = false;
	session_commit_done(d->s, 0, "");
	assert_int_equal(session_pending(d->s), SESSION_PENDING_NONE);
	drv_pump(d);
	r = drv_take(d);
	assert_memory_equal(r, "250 2.0.0 Ok: queued as ", 24);
	assert_non_null(strstr(r, "\r\n250 2.0.0 Ok\r\n"));
	assert_int_equal(count_dir(d, "queue"), 1);

	/* a failed commit is a 451 */
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	drv_answer(d, "DUNNO");
	drv_send(d, "RCPT TO:<c@d.example>\r\n");
	drv_answer(d, "DUNNO");
	drv_send(d, "DATA\r\n");
	drv_answer(d, "DUNNO");
	drv_send(d, "Subject: b\r\n\r\nbody\r\n.\r\n");
	drv_answer(d, "DUNNO");
	drv_take(d);
	assert_true(drv_job_pending);
	spool_msg_abort(&drv_job);
	drv_job_pending = false;
	session_commit_done(d->s, -1, "disk full (test)");
	assert_reply(d, "451 4.3.0 Error: queue file write error\r\n");
	assert_state(d, SESSION_HELO_DONE);
	assert_int_equal(count_dir(d, "tmp"), 0);
}

/* test_no_storage - spool.min_free: MAIL is 452 4.3.1 while the spool
 * has less free (before policyd is asked); a commit that found the disk
 * full is 452 4.3.1 too, and leaves nothing in tmp/ or queue/ */
static void
test_no_storage(void **state)
{
	struct drv *d = *state;
	int asked;

	d->cfg->spool.min_free = UINT64_C(1) << 62;
	ehlo(d);
	asked = d->npolicy;
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	assert_reply(d, "452 4.3.1 Insufficient system storage\r\n");
	assert_int_equal(d->npolicy, asked);
	assert_state(d, SESSION_HELO_DONE);

	d->cfg->spool.min_free = 1;
	session_free(d->s);
	d->s = session_new(d->cfg, &drv_ops_async, d, &(struct session_peer){
	    "192.0.2.7", 50123, "192.0.2.1", 25, CONFIG_MODE_SMTP, false });
	mail_to_data(d);
	drv_send(d, "Subject: b\r\n\r\nbody\r\n.\r\n");
	drv_answer(d, "DUNNO");
	assert_true(drv_job_pending);
	spool_msg_abort(&drv_job);
	drv_job_pending = false;
	session_commit_done(d->s, SPOOL_NO_SPACE, "No space left (test)");
	assert_reply(d, "452 4.3.1 Insufficient system storage\r\n");
	assert_state(d, SESSION_HELO_DONE);
	assert_int_equal(count_dir(d, "tmp"), 0);
	assert_int_equal(count_dir(d, "queue"), 0);
	/* The next transaction goes on. */
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	drv_answer(d, "DUNNO");
	assert_reply(d, "250 2.1.0 Ok\r\n");
}

/*==== STARTTLS and AUTH ====*/

/* drv_reopen - a fresh session on ops for a peer of the given mode. */
static void
drv_reopen(struct drv *d, const struct session_ops *ops,
    enum config_listen_mode mode, bool starttls)
{
	struct session_peer peer = { "192.0.2.7", 50123, "192.0.2.1", 587,
	    mode, starttls };

	session_free(d->s);
	d->s = session_new(d->cfg, ops, d, &peer);
}

/* auth_setup - AUTH enabled; require_tls as given. */
static void
auth_setup(struct drv *d, bool require_tls)
{
	snprintf(d->cfg->auth.users_file, sizeof(d->cfg->auth.users_file),
	    "/nonexistent/users");
	d->cfg->auth.require_tls = require_tls;
}

/* ehlo_reply - EHLO answered by policyd; returns the 250 lines. */
static const char *
ehlo_reply(struct drv *d)
{
	drv_send(d, "EHLO client.test\r\n");
	drv_answer(d, "DUNNO");
	return drv_take(d);
}

/* commit_job - finish the asynchronous commit the session handed over. */
static void
commit_job(struct drv *d)
{
	struct error err;

	assert_true(drv_job_pending);
	assert_int_equal(spool_msg_commit(&drv_job, &drv_job_env, drv_job_dest,
	    false, &err), 0);
	drv_job_pending = false;
	session_commit_done(d->s, 0, "");
	drv_pump(d);
}

/* send_message - MAIL .. end of data, every step accepted; the commit
 * is left pending (drv_job). */
static void
send_message(struct drv *d)
{
	drv_send(d, "MAIL FROM:<alice@b.example>\r\n");
	drv_answer(d, "DUNNO");
	drv_send(d, "RCPT TO:<c@d.example>\r\n");
	drv_answer(d, "DUNNO");
	drv_send(d, "DATA\r\n");
	drv_answer(d, "DUNNO");
	drv_send(d, "Subject: t\r\n\r\nbody\r\n.\r\n");
	drv_answer(d, "DUNNO");
	assert_true(drv_job_pending);
}

static void
test_starttls_discards_injection_and_resets(void **state)
{
	struct drv *d = *state;
	int before;

	auth_setup(d, true);
	drv_reopen(d, &drv_ops_tls, CONFIG_MODE_SMTP, true);
	greet(d);
	/* STARTTLS offered; AUTH not offered, and refused, without TLS */
	assert_string_equal(ehlo_reply(d), "250-mx.test\r\n250-PIPELINING\r\n"
	    "250-SIZE 10000\r\n250-8BITMIME\r\n250-STARTTLS\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-DSN\r\n250 HELP\r\n");
	drv_send(d, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
	assert_reply(d, "538 5.7.11 Encryption required for requested "
	    "authentication mechanism\r\n");
	/* the plaintext injection: everything behind STARTTLS is dropped */
	before = d->npolicy;
	drv_send(d, "STARTTLS\r\nRSET\r\nMAIL FROM:<evil@x.example>\r\n");
	assert_reply(d, "220 2.0.0 Ready to start TLS\r\n");
	assert_int_equal(d->nstarttls, 1);
	assert_state(d, SESSION_STARTTLS);
	assert_int_equal(drv_pending(d), 0);
	assert_int_equal(d->npolicy, before);
	/* more plaintext before the handshake is dropped as well */
	drv_send(d, "NOOP\r\n");
	assert_int_equal(drv_pending(d), 0);
	session_tls_started(d->s, "TLSv1.3", "TLS_AES_256_GCM_SHA384");
	assert_state(d, SESSION_GREETED);
	drv_pump(d);
	assert_reply(d, "");
	/* RFC 3207: the client starts over with EHLO */
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	assert_reply(d, "503 5.5.1 Error: send HELO/EHLO first\r\n");
	drv_send(d, "EHLO client.test\r\n");
	assert_non_null(strstr(d->req, "encryption_protocol=TLSv1.3\n"));
	assert_non_null(strstr(d->req,
	    "encryption_cipher=TLS_AES_256_GCM_SHA384\n"));
	drv_answer(d, "DUNNO");
	assert_reply(d, "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n"
	    "250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-DSN\r\n250 HELP\r\n");
	drv_send(d, "STARTTLS\r\n");
	assert_reply(d, "503 5.5.1 Error: TLS already active\r\n");
	assert_int_equal(d->nstarttls, 1);
	assert_false(d->closed);
}

static void
test_starttls_refusals(void **state)
{
	struct drv *d = *state;

	/* no certificate: not offered, not implemented */
	drv_reopen(d, &drv_ops_tls, CONFIG_MODE_SMTP, false);
	greet(d);
	assert_null(strstr(ehlo_reply(d), "STARTTLS"));
	drv_send(d, "STARTTLS\r\n");
	assert_reply(d, "502 5.5.1 Error: command not implemented\r\n");

	drv_reopen(d, &drv_ops_tls, CONFIG_MODE_SMTP, true);
	greet(d);
	ehlo_reply(d);
	drv_send(d, "STARTTLS now\r\n");
	assert_reply(d, "501 5.5.4 Syntax: STARTTLS\r\n");
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	drv_answer(d, "DUNNO");
	assert_reply(d, "250 2.1.0 Ok\r\n");
	drv_send(d, "STARTTLS\r\n");
	assert_reply(d, "503 5.5.1 Error: MAIL transaction in progress\r\n");
	assert_int_equal(d->nstarttls, 0);
}

static void
test_starttls_handshake_failure_closes(void **state)
{
	struct drv *d = *state;

	drv_reopen(d, &drv_ops_tls, CONFIG_MODE_SMTP, true);
	greet(d);
	drv_send(d, "STARTTLS\r\n");
	assert_reply(d, "220 2.0.0 Ready to start TLS\r\n");
	session_tls_failed(d->s, "wrong version number");
	assert_true(d->closed);
	assert_state(d, SESSION_CLOSING);
}

static void
test_submission_auth_plain_under_tls(void **state)
{
	struct drv *d = *state;
	const char *r;

	auth_setup(d, true);
	drv_reopen(d, &drv_ops_tls, CONFIG_MODE_SUBMISSION, true);
	greet(d);
	ehlo_reply(d);
	drv_send(d, "STARTTLS\r\n");
	assert_reply(d, "220 2.0.0 Ready to start TLS\r\n");
	session_tls_started(d->s, "TLSv1.3", "TLS_AES_256_GCM_SHA384");
	assert_non_null(strstr(ehlo_reply(d), "250-AUTH PLAIN LOGIN\r\n"));
	/* submission: AUTH before MAIL */
	drv_send(d, "MAIL FROM:<alice@b.example>\r\n");
	assert_reply(d, "530 5.7.0 Error: authentication required\r\n");
	drv_send(d, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
	assert_state(d, SESSION_WAIT_POLICY);
	assert_non_null(strstr(d->req, "protocol_state=AUTH\n"));
	assert_non_null(strstr(d->req, "sasl_method=PLAIN\n"));
	assert_non_null(strstr(d->req, "sasl_username=alice\n"));
	/* the password as base64 of its bytes, no authzid when empty */
	assert_non_null(strstr(d->req, "elemta_auth_password=czNjcmV0\n"));
	assert_null(strstr(d->req, "elemta_auth_authzid"));
	assert_non_null(strstr(d->req, "encryption_protocol=TLSv1.3\n"));
	drv_answer(d, "OK");
	assert_reply(d, "235 2.7.0 Authentication successful\r\n");
	assert_state(d, SESSION_HELO_DONE);
	drv_send(d, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
	assert_reply(d, "503 5.5.1 Error: already authenticated\r\n");
	/* every later request carries the identity; no password */
	drv_send(d, "MAIL FROM:<alice@b.example>\r\n");
	assert_non_null(strstr(d->req, "sasl_method=PLAIN\n"));
	assert_non_null(strstr(d->req, "sasl_username=alice\n"));
	assert_null(strstr(d->req, "elemta_auth_password"));
	drv_answer(d, "DUNNO");
	drv_take(d);
	drv_send(d, "RCPT TO:<c@d.example>\r\n");
	drv_answer(d, "DUNNO");
	drv_send(d, "DATA\r\n");
	drv_answer(d, "DUNNO");
	assert_reply(d, "250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
	drv_send(d, "Subject: t\r\n\r\nbody\r\n.\r\n");
	assert_non_null(strstr(d->req, "sasl_username=alice\n"));
	assert_non_null(strstr(d->msg, "\t(using TLSv1.3 with cipher "
	    "TLS_AES_256_GCM_SHA384)\r\n\tby mx.test (Elemta) with ESMTPSA id "));
	drv_answer(d, "DUNNO");
	assert_string_equal(drv_job_env.auth_user, "alice");
	assert_string_equal(drv_job_env.tls, "TLSv1.3 TLS_AES_256_GCM_SHA384");
	commit_job(d);
	r = drv_take(d);
	assert_memory_equal(r, "250 2.0.0 Ok: queued as ", 24);
	assert_int_equal(count_dir(d, "queue"), 1);
}

/* drv_answer_delayed - policyd answers action and asks for a delay. */
static void
drv_answer_delayed(struct drv *d, const char *action, uint32_t delay_ms)
{
	struct policy_result res;

	memset(&res, 0, sizeof(res));
	policy_result_parse(action, &res);
	res.delay_ms = delay_ms;
	session_policy_done(d->s, &res);
	drv_pump(d);
}

/* An AUTH answer policyd asks to slow down is held on the transport's
 * timer (ops->delay), not given at once: the session keeps waiting, and
 * input pipelined behind the AUTH waits too, until session_delay_done;
 * a refusal is held the same way (the delay tells nothing of the
 * outcome).  Without ops->delay the answer goes at once. */
/* auth_asked - a fresh session on ops, greeted, after EHLO, that has
 * sent line (an AUTH, and what the client pipelined behind it). */
static void
auth_asked(struct drv *d, const struct session_ops *ops, const char *line)
{
	drv_reopen(d, ops, CONFIG_MODE_SMTP, false);
	greet(d);
	(void)ehlo_reply(d);
	drv_send(d, line);
	assert_state(d, SESSION_WAIT_POLICY);
}

static void
test_auth_delay_is_held_by_the_session(void **state)
{
	struct drv *d = *state;

	auth_setup(d, false);
	auth_asked(d, &drv_ops_tls,
	    "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\nNOOP\r\n");
	drv_answer_delayed(d, "OK", 700);
	assert_int_equal(d->ndelay, 1);
	assert_int_equal(d->delay_ms, 700);
	assert_reply(d, "");
	assert_state(d, SESSION_WAIT_POLICY);
	assert_int_equal(session_pending(d->s), SESSION_PENDING_POLICY);
	assert_false(session_wants_input(d->s));
	session_delay_done(d->s);
	drv_pump(d);
	assert_reply(d, "235 2.7.0 Authentication successful\r\n"
	    "250 2.0.0 Ok\r\n");
	assert_state(d, SESSION_HELO_DONE);
	/* a stray second call changes nothing */
	session_delay_done(d->s);
	assert_reply(d, "");

	/* a refusal, slowed down the same way */
	auth_asked(d, &drv_ops_tls, "AUTH PLAIN AGFsaWNlAHdyb25n\r\n");
	drv_answer_delayed(d, "535 5.7.8 Authentication credentials invalid",
	    300);
	assert_int_equal(d->ndelay, 2);
	assert_int_equal(d->delay_ms, 300);
	assert_reply(d, "");
	session_delay_done(d->s);
	assert_reply(d, "535 5.7.8 Authentication credentials invalid\r\n");

	/* a session closed while held: the late timer does nothing */
	auth_asked(d, &drv_ops_tls,
	    "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
	drv_answer_delayed(d, "OK", 500);
	assert_int_equal(d->ndelay, 3);
	session_timeout(d->s);
	drv_take(d);
	session_delay_done(d->s);
	assert_reply(d, "");
	assert_state(d, SESSION_CLOSING);

	/* a transport without a timer answers at once */
	auth_asked(d, &drv_ops, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
	drv_answer_delayed(d, "OK", 700);
	assert_int_equal(d->ndelay, 3);
	assert_reply(d, "235 2.7.0 Authentication successful\r\n");
}

static void
test_auth_login_and_relayed_refusals(void **state)
{
	struct drv *d = *state;

	auth_setup(d, false);
	drv_reopen(d, &drv_ops_tls, CONFIG_MODE_SMTP, false);
	d->cfg->server.max_errors = 100;
	greet(d);
	/* without TLS when require_tls is off */
	assert_non_null(strstr(ehlo_reply(d), "250-AUTH PLAIN LOGIN\r\n"));
	drv_send(d, "auth login\r\n");
	assert_reply(d, "334 VXNlcm5hbWU6\r\n");
	assert_state(d, SESSION_AUTH);
	drv_send(d, "YWxpY2U=\r\n");
	assert_reply(d, "334 UGFzc3dvcmQ6\r\n");
	drv_send(d, "d3Jvbmc=\r\n");
	assert_non_null(strstr(d->req, "sasl_method=LOGIN\n"));
	assert_non_null(strstr(d->req, "sasl_username=alice\n"));
	assert_non_null(strstr(d->req, "elemta_auth_password=d3Jvbmc=\n"));
	assert_null(strstr(d->req, "encryption_protocol"));
	drv_answer(d, "535 5.7.8 Authentication credentials invalid");
	assert_reply(d, "535 5.7.8 Authentication credentials invalid\r\n");
	assert_state(d, SESSION_HELO_DONE);
	/* the initial response form, then cancelled */
	drv_send(d, "AUTH LOGIN YWxpY2U=\r\n");
	assert_reply(d, "334 UGFzc3dvcmQ6\r\n");
	drv_send(d, "*\r\n");
	assert_reply(d, "501 5.7.0 Authentication aborted\r\n");
	assert_state(d, SESSION_HELO_DONE);
	/* PLAIN in two steps, with an authorization identity; locked out */
	drv_send(d, "AUTH PLAIN\r\n");
	assert_reply(d, "334 \r\n");
	drv_send(d, "YWRtaW4AYWxpY2UAcHc=\r\n");
	assert_non_null(strstr(d->req, "elemta_auth_authzid=admin\n"));
	assert_non_null(strstr(d->req, "elemta_auth_password=cHc=\n"));
	drv_answer(d, "454 4.7.0 Too many failed authentication attempts");
	assert_reply(d, "454 4.7.0 Too many failed authentication attempts\r\n");
	/* not authenticated: no identity in later requests */
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	assert_null(strstr(d->req, "sasl_username"));
	drv_answer(d, "DUNNO");
	assert_reply(d, "250 2.1.0 Ok\r\n");
	drv_send(d, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
	assert_reply(d, "503 5.5.1 Error: MAIL transaction in progress\r\n");
}

static void
test_auth_syntax_errors(void **state)
{
	struct drv *d = *state;
	char *line = malloc(13100);
	int before;

	auth_setup(d, false);
	d->cfg->server.max_errors = 100;
	greet(d);
	drv_send(d, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
	assert_reply(d, "503 5.5.1 Error: send HELO/EHLO first\r\n");
	ehlo_reply(d);
	before = d->npolicy;
	drv_send(d, "AUTH\r\n");
	assert_reply(d, "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n");
	drv_send(d, "AUTH CRAM-MD5\r\n");
	assert_reply(d, "504 5.5.4 Error: unsupported authentication "
	    "mechanism\r\n");
	drv_send(d, "AUTH PLAIN AGFsaWNlAHMzY3JldA== extra\r\n");
	assert_reply(d, "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n");
	drv_send(d, "AUTH PLAIN !!!!\r\n");
	assert_reply(d, "501 5.5.2 Error: cannot decode response\r\n");
	drv_send(d, "AUTH PLAIN AGFsaWNlAHMzY3JldA=\r\n");
	assert_reply(d, "501 5.5.2 Error: cannot decode response\r\n");
	drv_send(d, "AUTH PLAIN YWxpY2UAczNjcmV0\r\n");     /* one NUL */
	assert_reply(d, "501 5.5.2 Error: malformed PLAIN message\r\n");
	drv_send(d, "AUTH PLAIN =\r\n");
	assert_reply(d, "501 5.5.2 Error: malformed PLAIN message\r\n");
	drv_send(d, "AUTH LOGIN\r\n");
	drv_send(d, "YW\r\n");
	assert_reply(d, "334 VXNlcm5hbWU6\r\n501 5.5.2 Error: cannot decode "
	    "response\r\n");
	assert_int_equal(d->npolicy, before);
	/* 12288 octets of base64 are read (and refused for what they say) */
	memcpy(line, "AUTH PLAIN ", 11);
	memset(line + 11, 'A', 12276);
	memcpy(line + 12287, "\r\n", 3);
	drv_send(d, line);
	assert_reply(d, "501 5.5.2 Error: malformed PLAIN message\r\n");
	/* longer is 500 5.5.6, as a command and as a response */
	memset(line + 11, 'A', 13000);
	memcpy(line + 13011, "\r\n", 3);
	drv_send(d, line);
	assert_reply(d, "500 5.5.6 Authentication Exchange line is too long\r\n");
	drv_send(d, "AUTH PLAIN\r\n");
	assert_reply(d, "334 \r\n");
	drv_send(d, line + 11);
	assert_reply(d, "500 5.5.6 Authentication Exchange line is too long\r\n");
	assert_state(d, SESSION_HELO_DONE);
	drv_send(d, "NOOP\r\n");
	assert_reply(d, "250 2.0.0 Ok\r\n");
	assert_int_equal(d->npolicy, before);
	free(line);
}

static void
test_auth_not_enabled_and_error_limit(void **state)
{
	struct drv *d = *state;

	greet(d);
	ehlo_reply(d);
	drv_send(d, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
	assert_reply(d, "503 5.5.1 Error: authentication not enabled\r\n");
	/* failed AUTH attempts count toward max_errors (5) */
	auth_setup(d, false);
	for (int i = 0; i < 3; i++) {
		drv_send(d, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
		drv_answer(d, "535 5.7.8 Authentication credentials invalid");
	}
	drv_take(d);
	drv_send(d, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
	drv_answer(d, "535 5.7.8 Authentication credentials invalid");
	assert_reply(d, "535 5.7.8 Authentication credentials invalid\r\n"
	    "421 4.7.0 mx.test Error: too many errors\r\n");
	assert_true(d->closed);
}

static void
test_auth_only_ok_authenticates(void **state)
{
	struct drv *d = *state;

	auth_setup(d, false);
	d->cfg->policyd.fail_mode = CONFIG_FAIL_ACCEPT;
	greet(d);
	ehlo_reply(d);
	/* policyd down: never a login, even in fail_mode accept */
	drv_send(d, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
	drv_fail(d);
	assert_reply(d, "454 4.7.0 Temporary authentication failure\r\n");
	d->policy_fail_now = true;
	drv_send(d, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
	assert_reply(d, "454 4.7.0 Temporary authentication failure\r\n");
	d->policy_fail_now = false;
	/* a DUNNO (a policy server that knows nothing of AUTH) is no OK */
	drv_send(d, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
	drv_answer(d, "DUNNO");
	assert_reply(d, "454 4.7.0 Temporary authentication failure\r\n");
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	assert_null(strstr(d->req, "sasl_username"));
	drv_answer(d, "DUNNO");
	drv_take(d);
	drv_send(d, "RSET\r\n");
	drv_take(d);
	/* a 421 ends the session */
	drv_send(d, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
	drv_answer(d, "421 4.7.0 go away");
	assert_reply(d, "421 4.7.0 go away\r\n");
	assert_true(d->closed);
}

static void
test_auth_received_header_without_tls(void **state)
{
	struct drv *d = *state;

	auth_setup(d, false);
	drv_reopen(d, &drv_ops_tls, CONFIG_MODE_SMTP, true);
	greet(d);
	ehlo_reply(d);
	drv_send(d, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
	drv_answer(d, "OK");
	drv_take(d);
	send_message(d);
	assert_non_null(strstr(d->msg, "[192.0.2.7])\r\n\tby mx.test "
	    "(Elemta) with ESMTPA id "));
	assert_null(strstr(d->msg, "(using "));
	assert_string_equal(drv_job_env.tls, "none");
	assert_string_equal(drv_job_env.auth_user, "alice");
	commit_job(d);
	drv_take(d);
	/* STARTTLS forgets the authentication (RFC 3207 4.2) */
	drv_send(d, "STARTTLS\r\n");
	session_tls_started(d->s, "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384");
	ehlo_reply(d);
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	assert_null(strstr(d->req, "sasl_username"));
	assert_non_null(strstr(d->req, "encryption_protocol=TLSv1.2\n"));
	drv_answer(d, "DUNNO");
	assert_reply(d, "250 2.1.0 Ok\r\n");
}

/*==== Relay control ====*/

/* relay_setup - served.example (and its subdomains) is the one served
 * domain, through a route; "*" routes everything else (and serves
 * nothing); mynetworks is 127.0.0.0/8 only; the session is reopened
 * from client (outside mynetworks unless it says otherwise). */
static void
relay_setup(struct drv *d, const char *client, enum config_listen_mode mode,
    const struct session_ops *ops)
{
	struct session_peer peer = { client, 40000, "192.0.2.1", 25, mode,
	    ops->starttls != NULL };
	struct route *r = calloc(2, sizeof(*r));
	struct error err;

	assert_non_null(r);
	for (size_t i = 0; i < d->cfg->delivery.route_count; i++)
		route_free(&d->cfg->delivery.routes[i]);
	free(d->cfg->delivery.routes);
	assert_int_equal(route_domains_add(&r[0], "served.example", &err), 0);
	assert_int_equal(route_domains_add(&r[0], ".served.example", &err), 0);
	assert_int_equal(route_hop_parse("maildir:/var/mail", "/", 25,
	    &r[0].hop, &err), 0);
	assert_int_equal(route_domains_add(&r[1], "*", &err), 0);
	assert_int_equal(route_hop_parse("smtp:[192.0.2.25]", "/", 25,
	    &r[1].hop, &err), 0);
	d->cfg->delivery.routes = r;
	d->cfg->delivery.route_count = 2;
	addr_cidr_list_free(&d->cfg->server.mynetworks);
	assert_int_equal(addr_cidr_list_add(&d->cfg->server.mynetworks,
	    "127.0.0.0/8", 0, &err), 0);
	d->cfg->server.max_errors = 100;
	session_free(d->s);
	d->s = session_new(d->cfg, ops, d, &peer);
}

/* relay_mail - EHLO and MAIL accepted. */
static void
relay_mail(struct drv *d)
{
	ehlo(d);
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	drv_answer(d, "DUNNO");
	drv_take(d);
}

/* rcpt_denied - rcpt is refused by relay control: Postfix's reply, and
 * policyd never asked. */
static void
rcpt_denied(struct drv *d, const char *rcpt, const char *shown)
{
	char line[400], want[400];
	int asked = d->npolicy;

	snprintf(line, sizeof(line), "RCPT TO:<%s>\r\n", rcpt);
	snprintf(want, sizeof(want), "554 5.7.1 <%s>: Relay access denied\r\n",
	    shown);
	drv_send(d, line);
	assert_reply(d, want);
	assert_int_equal(d->npolicy, asked);
	assert_int_not_equal(session_state(d->s), SESSION_WAIT_POLICY);
}

/* rcpt_asked - rcpt passes relay control: policyd is asked about it
 * (its address as shown), and its DUNNO gives 250. */
static void
rcpt_asked(struct drv *d, const char *rcpt, const char *shown)
{
	char line[400], attr[400];
	int asked = d->npolicy;

	snprintf(line, sizeof(line), "RCPT TO:<%s>\r\n", rcpt);
	snprintf(attr, sizeof(attr), "recipient=%s\n", shown);
	drv_send(d, line);
	assert_int_equal(d->npolicy, asked + 1);
	assert_state(d, SESSION_WAIT_POLICY);
	assert_non_null(strstr(d->req, attr));
	drv_answer(d, "DUNNO");
	assert_reply(d, "250 2.1.5 Ok\r\n");
}

/* test_relay_refused_outside_mynetworks - an unauthenticated client
 * outside mynetworks reaches the served domains only; every routing
 * trick is refused; the refusals happen before policyd is asked, keep
 * the transaction, and count as errors */
static void
test_relay_refused_outside_mynetworks(void **state)
{
	struct drv *d = *state;

	relay_setup(d, "198.51.100.9", CONFIG_MODE_SMTP, &drv_ops);
	relay_mail(d);
	rcpt_denied(d, "user@other.example", "user@other.example");
	assert_state(d, SESSION_MAIL_DONE);
	/* "*" routes it, but does not serve it. */
	rcpt_denied(d, "user@OTHER.example", "user@other.example");
	rcpt_denied(d, "user@served.example.evil", "user@served.example.evil");
	rcpt_denied(d, "user@[192.0.2.1]", "user@[192.0.2.1]");
	rcpt_asked(d, "user@served.example", "user@served.example");
	rcpt_asked(d, "user@Mail.Served.Example", "user@mail.served.example");
	rcpt_asked(d, "postmaster", "postmaster");
	assert_state(d, SESSION_RCPT_DONE);
	/* allow_untrusted_routing = no: the tricks, to a served domain. */
	rcpt_denied(d, "user%other.example@served.example",
	    "user%other.example@served.example");
	rcpt_denied(d, "@served.example:user@other.example",
	    "user@other.example");
	rcpt_denied(d, "@other.example:user@served.example",
	    "user@served.example");
	rcpt_denied(d, "@a.example,@served.example:postmaster", "postmaster");
	rcpt_denied(d, "\"user@other.example\"@served.example",
	    "\"user@other.example\"@served.example");
	rcpt_denied(d, "\"user\\@other.example\"@served.example",
	    "\"user\\@other.example\"@served.example");
	rcpt_denied(d, "\"user%other\"@served.example",
	    "\"user%other\"@served.example");
	rcpt_denied(d, "other.example!user@served.example",
	    "other.example!user@served.example");
	/* Each refusal was an error: 12 of them so far. */
	d->cfg->server.max_errors = 13;
	drv_send(d, "RCPT TO:<x@other.example>\r\n");
	assert_reply(d, "554 5.7.1 <x@other.example>: Relay access denied\r\n"
	    "421 4.7.0 mx.test Error: too many errors\r\n");
	assert_true(d->closed);
}

/* test_relay_trusted_clients - mynetworks (IPv4, IPv4-mapped IPv6) and
 * authenticated clients may relay anywhere, tricks included (policyd
 * still decides) */
static void
test_relay_trusted_clients(void **state)
{
	struct drv *d = *state;

	relay_setup(d, "127.0.0.9", CONFIG_MODE_SMTP, &drv_ops);
	relay_mail(d);
	rcpt_asked(d, "user@other.example", "user@other.example");
	rcpt_asked(d, "user%x.example@served.example",
	    "user%x.example@served.example");
	rcpt_asked(d, "@served.example:user@other.example",
	    "user@other.example");
	/* policyd's own refusal still applies (allowed_relay_domains). */
	drv_send(d, "RCPT TO:<user@elsewhere.example>\r\n");
	drv_answer(d, "554 5.7.1 Relay access denied");
	assert_reply(d, "554 5.7.1 Relay access denied\r\n");

	relay_setup(d, "::ffff:127.0.0.1", CONFIG_MODE_SMTP, &drv_ops);
	relay_mail(d);
	rcpt_asked(d, "user@other.example", "user@other.example");

	/* Outside mynetworks, after AUTH: anywhere. */
	auth_setup(d, false);
	relay_setup(d, "203.0.113.5", CONFIG_MODE_SMTP, &drv_ops_tls);
	greet(d);
	ehlo_reply(d);
	drv_send(d, "MAIL FROM:<a@b.example>\r\n");
	drv_answer(d, "DUNNO");
	drv_take(d);
	rcpt_denied(d, "user@other.example", "user@other.example");
	drv_send(d, "RSET\r\n");
	drv_send(d, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
	drv_answer(d, "OK");
	assert_reply(d, "250 2.0.0 Ok\r\n"
	    "235 2.7.0 Authentication successful\r\n");
	drv_send(d, "MAIL FROM:<alice@b.example>\r\n");
	drv_answer(d, "DUNNO");
	drv_take(d);
	rcpt_asked(d, "user@other.example", "user@other.example");
	rcpt_asked(d, "other.example!user@served.example",
	    "other.example!user@served.example");
}

/* test_relay_empty_mynetworks - mynetworks: [] trusts even loopback;
 * no routes: nothing is served */
static void
test_relay_empty_mynetworks(void **state)
{
	struct drv *d = *state;

	relay_setup(d, "127.0.0.1", CONFIG_MODE_SMTP, &drv_ops);
	addr_cidr_list_free(&d->cfg->server.mynetworks);
	relay_mail(d);
	rcpt_denied(d, "user@other.example", "user@other.example");
	rcpt_asked(d, "user@served.example", "user@served.example");
	d->cfg->delivery.route_count = 0;
	rcpt_denied(d, "user@served.example", "user@served.example");
	d->cfg->delivery.route_count = 2;
}

static void
test_state_names(void **state)
{
	assert_string_equal(session_state_name(SESSION_CONNECT_POLICY),
	    "CONNECT_POLICY");
	assert_string_equal(session_state_name(SESSION_EOM_POLICY), "EOM_POLICY");
	assert_string_equal(session_state_name(SESSION_CLOSING), "CLOSING");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	log_init("test_session", true, LOG_LEVEL_WARN);
	const struct CMUnitTest tests[] = {
		T(test_greeting_and_quit),
		T(test_early_talker),
		T(test_connect_reject_and_tempfail),
		T(test_connect_policy_down),
		T(test_sequence_errors),
		T(test_helo_then_mail_sequence),
		T(test_ehlo_pipelining_refused),
		T(test_ehlo_pipelining_during_policy_wait),
		T(test_pipelined_transaction),
		T(test_local_session),
		T(test_message_queued_and_input_after_dot_waits),
		T(test_bare_lf_rejected),
		T(test_bare_lf_normalized),
		T(test_oversize_message),
		T(test_mail_size_param_over_limit),
		T(test_discard_and_quarantine),
		T(test_policy_fail_modes),
		T(test_policy_421_closes),
		T(test_line_limits_and_nul),
		T(test_partial_line_waits),
		T(test_misc_commands),
		T(test_max_recipients),
		T(test_recipient_overshoot_not_an_error),
		T(test_recipient_overshoot_bounded),
		T(test_min_data_rate),
		T(test_min_data_rate_credit),
		T(test_min_data_rate_on_input),
		T(test_data_sync_violation),
		T(test_timeout_and_shutdown),
		T(test_shutdown),
		T(test_async_commit),
		T(test_no_storage),
		T(test_starttls_discards_injection_and_resets),
		T(test_starttls_refusals),
		T(test_starttls_handshake_failure_closes),
		T(test_submission_auth_plain_under_tls),
		T(test_auth_login_and_relayed_refusals),
		T(test_auth_delay_is_held_by_the_session),
		T(test_auth_syntax_errors),
		T(test_auth_not_enabled_and_error_limit),
		T(test_auth_only_ok_authenticates),
		T(test_auth_received_header_without_tls),
		T(test_relay_refused_outside_mynetworks),
		T(test_relay_trusted_clients),
		T(test_relay_empty_mynetworks),
		T(test_state_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
