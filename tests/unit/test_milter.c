/*
 * test_milter.c - policyd's milter client (policyd/milter.c) against a
 * scripted milter: a forked child on a Unix socket that answers each
 * command as the test says.  One test per promise of milter.h: the
 * whole replay in protocol order with the negotiated steps only, edits
 * collected in order; an unanswered step (NR_*) not waited for, an edit
 * not negotiated a protocol failure (451 4.3.5); a silent milter ends at its
 * timeout, and in fail_mode accept it is skipped; the first refusal
 * decides and drops the edits.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "milter_codec.h"
#include "wire.h"
#include "../../policyd/milter.h"

/* What the scripted milter does. */
enum script {
	S_MODIFY,        /* every step answered, two edits at EOM        */
	S_NR_HELO,       /* negotiates NR_HELO, then a modification it
	                  * did not negotiate (ADDRCPT)                 */
	S_SILENT,        /* never answers                                */
	S_REJECT_RCPT,   /* rejects at RCPT                              */
	S_MANY_EDITS,    /* over half of MSG_EDITS_MAX headers at EOM    */
};

/* S_MANY_EDITS's edits: two such milters together are over the bound. */
#define MANY_EDITS (MSG_EDITS_MAX / 2 + 1)

struct fx {
	char dir[64];
	char sock[128];
	pid_t child;
	char seen[64];       /* the commands the milter got, in order */
	struct event_base *base;
	struct milter_outcome out;
	bool done;
	struct wire_parser parser;
	size_t nmilters;     /* in the chain (0: one), all the same child */
};

/* put - a reply packet. */
static void
put(int fd, char cmd, const void *data, size_t len)
{
	struct strbuf sb = STRBUF_INIT(0);

	(void)milter_packet_begin(&sb, cmd, len);
	if (len > 0)
		strbuf_append(&sb, data, len);
	/* The client may have closed already (after a protocol failure):
	 * the child's writes may fail, its report still goes out. */
	(void)write(fd, sb.data, sb.len);
	strbuf_free(&sb);
}

/* next_conn - the connection *c is over: accept the next one, if any
 * of the *nconn is left (true). */
static bool
next_conn(int lfd, int *c, size_t *nconn, size_t *have)
{
	if (--*nconn == 0)
		return false;
	close(*c);
	*have = 0;
	*c = accept(lfd, NULL, NULL);
	return true;
}

/* milter_child - accept nconn connections, one after the other, and play
 * script on each; the commands seen are written to the pipe at the end. */
static void
milter_child(int lfd, int report, enum script script, size_t nconn)
{
	char seen[64];
	size_t nseen = 0;
	uint8_t buf[70000];
	size_t have = 0;
	int c = accept(lfd, NULL, NULL);

	for (;;) {
		const uint8_t *data;
		size_t dlen, used;
		char cmd;
		ssize_t n;
		int rc = milter_packet_split(buf, have, &cmd, &data, &dlen,
		    &used);

		if (rc == 0) {
			n = read(c, buf + have, sizeof(buf) - have);
			if (n <= 0 && next_conn(lfd, &c, &nconn, &have))
				continue;
			if (n <= 0)
				break;
			have += (size_t)n;
			continue;
		}
		if (rc < 0)
			break;
		if (cmd != SMFIC_MACRO && nseen < sizeof(seen) - 1)
			seen[nseen++] = cmd;
		if (script == S_SILENT) {
			/* nothing */
		} else if (cmd == SMFIC_OPTNEG) {
			uint8_t o[12] = { 0, 0, 0, 6, 0, 0, 0, SMFIF_ADDHDRS |
			    SMFIF_CHGHDRS, 0, 0, 0, 0 };

			if (script == S_NR_HELO)
				o[10] = (uint8_t)(SMFIP_NR_HELO >> 8);
			put(c, SMFIR_OPTNEG, o, sizeof(o));
		} else if (cmd == SMFIC_HELO && script == S_NR_HELO) {
			/* negotiated: no answer */
		} else if (cmd == SMFIC_BODYEOB && script == S_NR_HELO) {
			put(c, SMFIR_ADDRCPT, "<x@y>", 6);
			put(c, SMFIR_CONTINUE, NULL, 0);
		} else if (cmd == SMFIC_BODYEOB && script == S_MANY_EDITS) {
			for (int i = 0; i < MANY_EDITS; i++)
				put(c, SMFIR_ADDHEADER, "X-M\0many", 9);
			put(c, SMFIR_CONTINUE, NULL, 0);
		} else if (cmd == SMFIC_RCPT && script == S_REJECT_RCPT) {
			put(c, SMFIR_REPLYCODE, "550 5.1.1 no such user", 23);
		} else if (cmd == SMFIC_BODYEOB) {
			static const uint8_t chg[] = { 0, 0, 0, 1, 'S', 'u',
			    'b', 'j', 'e', 'c', 't', 0, 'n', 'e', 'w', 0 };

			put(c, SMFIR_ADDHEADER, "X-A\0one", 8);
			put(c, SMFIR_CHGHEADER, chg, sizeof(chg));
			put(c, SMFIR_CONTINUE, NULL, 0);
		} else if (cmd == SMFIC_QUIT &&
		    next_conn(lfd, &c, &nconn, &have)) {
			continue;
		} else if (cmd == SMFIC_QUIT) {
			break;
		} else if (cmd != SMFIC_MACRO) {
			put(c, SMFIR_CONTINUE, NULL, 0);
		}
		memmove(buf, buf + used, have - used);
		have -= used;
	}
	seen[nseen] = '\0';
	(void)write(report, seen, nseen + 1);
	_exit(0);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_milter.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->sock, sizeof(f->sock), "%s/m.sock", f->dir);
	f->base = event_base_new();
	wire_parser_init(&f->parser);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	unlink(f->sock);
	rmdir(f->dir);
	event_base_free(f->base);
	wire_parser_free(&f->parser);
	msg_edits_free(&f->out.edits);
	free(f);
	return 0;
}

/* start_milter - the scripted milter listening on f->sock; returns the
 * read end of its report pipe. */
static int
start_milter(struct fx *f, enum script script)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0), p[2];

	str_copy(sun.sun_path, f->sock, sizeof(sun.sun_path));
	assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(pipe(p), 0);
	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0) {
		close(p[0]);
		milter_child(lfd, p[1], script, f->nmilters ? f->nmilters : 1);
	}
	close(lfd);
	close(p[1]);
	return p[0];
}

static void
on_done(void *arg, struct milter_outcome *out)
{
	struct fx *f = arg;

	f->out = *out;
	f->done = true;
	event_base_loopbreak(f->base);
}

/* run - one END-OF-MESSAGE through a chain of the scripted milter. */
static void
run(struct fx *f, enum script script, int fail_mode, uint64_t timeout_ms)
{
	static const char req[] =
	    "request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\n"
	    "client_address=192.0.2.7\nclient_port=5000\nclient_name=unknown\n"
	    "helo_name=client.test\nsender=a@example.org\nqueue_id=ABC\n"
	    "elemta_listen_mode=smtp\naccepted_recipient=b@example.com\n"
	    "accepted_recipient=c@example.com\n\n";
	static const char msg[] = "Received: x\r\nSubject: old\r\n\r\nbody\r\n";
	struct config *cfg = calloc(1, sizeof(*cfg));
	struct milter_chain *mc;
	struct milter_run *r;
	struct error err;
	size_t used;
	FILE *tmp = tmpfile();
	int report = start_milter(f, script);
	ssize_t n;

	assert_int_equal(wire_parser_feed(&f->parser, req, sizeof(req) - 1,
	    &used, &err), 1);
	fwrite(msg, 1, sizeof(msg) - 1, tmp);
	fflush(tmp);
	cfg->milter_count = f->nmilters ? f->nmilters : 1;
	for (size_t i = 0; i < cfg->milter_count; i++) {
		struct config_milter *m = &cfg->milters[i];

		if (i == 0)
			str_copy(m->name, "m", sizeof(m->name));
		else
			snprintf(m->name, sizeof(m->name), "m%zu", i + 1);
		str_copy(m->endpoint.path, f->sock, sizeof(m->endpoint.path));
		m->modes = 1u << CONFIG_MODE_SMTP;
		m->timeout_ms = timeout_ms;
		m->fail_mode = fail_mode;
	}
	str_copy(cfg->server.hostname, "mx.test", sizeof(cfg->server.hostname));
	mc = milter_chain_new(cfg);
	r = milter_run_start(mc, f->base, &f->parser.req, dup(fileno(tmp)),
	    on_done, f);
	assert_non_null(r);
	event_base_dispatch(f->base);
	assert_true(f->done);
	waitpid(f->child, NULL, 0);
	n = read(report, f->seen, sizeof(f->seen) - 1);
	f->seen[n > 0 ? n : 0] = '\0';
	close(report);
	fclose(tmp);
	milter_chain_free(mc);
	free(cfg);
}

static void
test_replay_and_edits(void **state)
{
	struct fx *f = *state;

	run(f, S_MODIFY, CONFIG_FAIL_TEMPFAIL, 5000);
	/* Protocol order, one RCPT per recipient, one HEADER per field. */
	assert_string_equal(f->seen, "OCHMRRTLLNBEQ");
	assert_int_equal(f->out.action, ELEMTA_CONTINUE);
	assert_int_equal(f->out.edits.count, 2);
	assert_int_equal(f->out.edits.items[0].op, MSG_EDIT_HEADER_ADD);
	assert_string_equal(f->out.edits.items[0].name, "X-A");
	assert_string_equal(f->out.edits.items[0].value, " one");
	assert_int_equal(f->out.edits.items[1].op, MSG_EDIT_HEADER_CHANGE);
	assert_int_equal(f->out.edits.items[1].index, 1);
	assert_string_equal(f->out.edits.items[1].value, " new");
}

static void
test_unanswered_step_and_unnegotiated_edit(void **state)
{
	struct fx *f = *state;

	/* HELO went out without waiting (else the timeout would have come
	 * first), and an edit not negotiated is a protocol failure. */
	run(f, S_NR_HELO, CONFIG_FAIL_TEMPFAIL, 5000);
	assert_string_equal(f->seen, "OCHMRRTLLNBE");
	assert_int_equal(f->out.action, ELEMTA_TEMPFAIL);
	assert_int_equal(f->out.code, 451);
	assert_string_equal(f->out.enhanced, "4.3.5");
	assert_string_equal(f->out.milter, "m");
	assert_int_equal(f->out.edits.count, 0);
}

static void
test_silent_milter_times_out(void **state)
{
	struct fx *f = *state;

	run(f, S_SILENT, CONFIG_FAIL_TEMPFAIL, 300);
	assert_int_equal(f->out.action, ELEMTA_TEMPFAIL);
	assert_string_equal(f->out.enhanced, "4.3.5");
	assert_string_equal(f->seen, "O");
}

static void
test_silent_milter_skipped_in_accept_mode(void **state)
{
	struct fx *f = *state;

	run(f, S_SILENT, CONFIG_FAIL_ACCEPT, 300);
	assert_int_equal(f->out.action, ELEMTA_CONTINUE);
	assert_int_equal(f->out.edits.count, 0);
}

static void
test_refusal_decides(void **state)
{
	struct fx *f = *state;

	run(f, S_REJECT_RCPT, CONFIG_FAIL_TEMPFAIL, 5000);
	assert_int_equal(f->out.action, ELEMTA_REJECT);
	assert_int_equal(f->out.code, 550);
	assert_string_equal(f->out.enhanced, "5.1.1");
	assert_string_equal(f->out.text, "no such user");
	/* Nothing after the refusing step but QUIT. */
	assert_string_equal(f->seen, "OCHMRQ");
}

/* Two milters whose edits together are over MSG_EDITS_MAX: the second
 * one's never join cut short - it fails (its fail_mode decides). */
static void
test_edits_over_bound_all_or_none(void **state)
{
	struct fx *f = *state;

	f->nmilters = 2;
	run(f, S_MANY_EDITS, CONFIG_FAIL_TEMPFAIL, 5000);
	assert_int_equal(f->out.action, ELEMTA_TEMPFAIL);
	assert_string_equal(f->out.enhanced, "4.3.5");
	assert_string_equal(f->out.milter, "m2");
	assert_int_equal(f->out.edits.count, 0);
}

static void
test_edits_over_bound_skipped_in_accept_mode(void **state)
{
	struct fx *f = *state;

	f->nmilters = 2;
	run(f, S_MANY_EDITS, CONFIG_FAIL_ACCEPT, 5000);
	assert_int_equal(f->out.action, ELEMTA_CONTINUE);
	/* The first milter's edits, every one; none of the second's. */
	assert_int_equal(f->out.edits.count, MANY_EDITS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_replay_and_edits),
		T(test_unanswered_step_and_unnegotiated_edit),
		T(test_silent_milter_times_out),
		T(test_silent_milter_skipped_in_accept_mode),
		T(test_refusal_decides),
		T(test_edits_over_bound_all_or_none),
		T(test_edits_over_bound_skipped_in_accept_mode),
#undef T
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
