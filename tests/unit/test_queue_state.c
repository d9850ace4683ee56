/*
 * test_queue_state.c - the per-recipient state files and control marks
 * (common/queue_state.c) and the spool envelope reader/format
 * (common/queue_file.c): a round trip keeps everything, malformed files
 * are refused, writes replace atomically, marks name what they say.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue_file.h"
#include "queue_state.h"
#include "scratch.h"

/* sample - two recipients, one deferred with a reply, one delivered. */
static void
sample(struct queue_state *st)
{
	queue_state_init(st, 2);
	st->hold = true;
	str_copy(st->bounce_id, "0123456789ABCDEF", sizeof(st->bounce_id));
	st->rcpts[0].status = QUEUE_RCPT_DEFERRED;
	st->rcpts[0].attempts = 3;
	st->rcpts[0].next_attempt = 1764201900;
	st->rcpts[0].last_attempt = 1764201600;
	st->rcpts[0].code = 451;
	str_copy(st->rcpts[0].enhanced, "4.3.0", sizeof(st->rcpts[0].enhanced));
	str_copy(st->rcpts[0].text, "try again\r\nlater", sizeof(st->rcpts[0].text));
	st->rcpts[1].status = QUEUE_RCPT_DELIVERED;
	st->rcpts[1].attempts = 1;
}

static void
test_round_trip(void **state)
{
	struct queue_state a, b;
	struct strbuf sb = STRBUF_INIT(0);
	struct error err;

	sample(&a);
	assert_int_equal(queue_state_format(&a, &sb), 0);
	assert_int_equal(queue_state_parse(sb.data, sb.len, &b, &err), 0);
	assert_int_equal(b.nrcpt, 2);
	assert_true(b.hold);
	assert_false(b.warned);
	assert_string_equal(b.bounce_id, "0123456789ABCDEF");
	assert_int_equal(b.rcpts[0].status, QUEUE_RCPT_DEFERRED);
	assert_int_equal(b.rcpts[0].attempts, 3);
	assert_int_equal(b.rcpts[0].next_attempt, 1764201900);
	assert_int_equal(b.rcpts[0].last_attempt, 1764201600);
	assert_int_equal(b.rcpts[0].code, 451);
	assert_string_equal(b.rcpts[0].enhanced, "4.3.0");
	/* CR and LF of a reply never reach the file as line ends. */
	assert_string_equal(b.rcpts[0].text, "try again  later");
	assert_int_equal(b.rcpts[1].status, QUEUE_RCPT_DELIVERED);
	assert_string_equal(b.rcpts[1].enhanced, "");
	assert_false(queue_state_all_final(&b));
	b.rcpts[0].status = QUEUE_RCPT_BOUNCED;
	assert_true(queue_state_all_final(&b));
	queue_state_free(&a);
	queue_state_free(&b);
	strbuf_free(&sb);
}

static void
test_malformed_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"elemta-queue-state 2\n",
		"elemta-queue-state 1\nhold 2\n",
		"elemta-queue-state 1\nbogus 1\n",
		"elemta-queue-state 1\nrcpt lost 0 0 0 0 - x\n",
		"elemta-queue-state 1\nrcpt pending x 0 0 0 - x\n",
		"elemta-queue-state 1\nrcpt pending 0 0 0 600 - x\n",
		"elemta-queue-state 1\nrcpt pending 0 0 0\n",
		"elemta-queue-state 1\nbounce ../etc\n",
		"elemta-queue-state 1\nrcpt pending 0 0 0 0 - a\x01b\n",
		"elemta-queue-state 1\nhold 0",        /* no final newline */
	};
	struct queue_state st;
	struct error err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		assert_int_equal(queue_state_parse(bad[i], strlen(bad[i]), &st,
		    &err), -1);
		queue_state_free(&st);
	}
	{
		const char *ok = "elemta-queue-state 1\nrcpt pending 0 0 0 0 - \n";

		assert_int_equal(queue_state_parse(ok, strlen(ok), &st, &err), 0);
	}
	assert_int_equal(st.nrcpt, 1);
	queue_state_free(&st);
}

static void
test_write_read_remove(void **state)
{
	struct queue_state a, b;
	struct error err;
	char dir[128];

	scratch_make();
	snprintf(dir, sizeof(dir), "%s/state", scratch_dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(queue_state_read(scratch_dir, "ABC", &b, &err), 0);
	sample(&a);
	assert_int_equal(queue_state_write(scratch_dir, "ABC", &a, true, &err), 0);
	a.rcpts[0].attempts = 4;
	assert_int_equal(queue_state_write(scratch_dir, "ABC", &a, false, &err), 0);
	assert_int_equal(queue_state_read(scratch_dir, "ABC", &b, &err), 1);
	assert_int_equal(b.rcpts[0].attempts, 4);
	queue_state_free(&b);
	/* No temporary file is left beside it. */
	snprintf(dir, sizeof(dir), "%s/state/.ABC.tmp", scratch_dir);
	assert_int_equal(access(dir, F_OK), -1);
	assert_int_equal(queue_state_remove(scratch_dir, "ABC", &err), 0);
	assert_int_equal(queue_state_read(scratch_dir, "ABC", &b, &err), 0);
	assert_int_equal(queue_state_remove(scratch_dir, "ABC", &err), 0);
	queue_state_free(&a);
	scratch_remove();
}

static void
test_control_marks(void **state)
{
	char id[QUEUE_ID_MAX + 1], path[160];
	enum queue_control c;
	struct error err;

	assert_int_equal(queue_control_parse_name("0A1B.delete", id, &c), 0);
	assert_string_equal(id, "0A1B");
	assert_int_equal(c, QUEUE_CTL_DELETE);
	assert_int_equal(queue_control_parse_name("all.flush", id, &c), 0);
	assert_int_equal(c, QUEUE_CTL_FLUSH);
	assert_int_equal(queue_control_parse_name("all.delete", id, &c), -1);
	assert_int_equal(queue_control_parse_name("0a1b.hold", id, &c), -1);
	assert_int_equal(queue_control_parse_name("0A1B.nuke", id, &c), -1);
	assert_int_equal(queue_control_parse_name("0A1B", id, &c), -1);
	assert_int_equal(queue_control_parse_name(".hold", id, &c), -1);
	assert_false(queue_id_valid("../x"));
	assert_false(queue_id_valid(""));
	assert_true(queue_id_valid("0123456789ABCDEF"));

	scratch_make();
	snprintf(path, sizeof(path), "%s/control", scratch_dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(queue_control_post(scratch_dir, "0A1B",
	    QUEUE_CTL_HOLD, &err), 0);
	snprintf(path, sizeof(path), "%s/control/0A1B.hold", scratch_dir);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(queue_control_post(scratch_dir, "../x",
	    QUEUE_CTL_HOLD, &err), -1);
	scratch_remove();
}

static void
test_envelope_round_trip(void **state)
{
	char *rcpts[] = { "bob@example.com", "carol@example.net" };
	struct queue_envelope env = {
		.received = 1764201600, .client_address = "192.0.2.7",
		.client_port = 50123, .client_name = "unknown",
		.helo = "client.example", .protocol = "ESMTP", .tls = "none",
		.auth_user = "", .sender = "", .recipients = rcpts,
		.recipient_count = 2,
	};
	struct strbuf sb = STRBUF_INIT(0);
	struct queue_envelope_read r;
	struct error err;
	const char *msg = "Subject: x\r\n\r\nbody\r\n";
	char id[QUEUE_FILE_ID_LEN + 1];

	queue_file_id_new(id);
	assert_true(queue_id_valid(id));
	strbuf_append_str(&sb, msg);
	assert_int_equal(queue_envelope_format(&sb, id, &env, strlen(msg)), 0);
	assert_int_equal(queue_envelope_parse(sb.data, sb.len, sb.len, &r,
	    &err), 0);
	assert_string_equal(r.id, id);
	assert_string_equal(r.sender, "");
	assert_int_equal(r.recipient_count, 2);
	assert_string_equal(r.recipients[1], "carol@example.net");
	assert_int_equal(r.size, strlen(msg));
	assert_int_equal(r.received, 1764201600);
	/* Without DSN fields (as every envelope before DSN): defaults. */
	assert_int_equal(r.ret, DSN_RET_DEFAULT);
	assert_null(r.envid);
	assert_int_equal(r.notify[0], 0);
	assert_int_equal(r.notify[1], 0);
	assert_null(r.orcpt[0]);
	assert_null(r.orcpt[1]);
	queue_envelope_free(&r);
	/* The size must say where the envelope starts. */
	sb.data[sb.len - 2] = '9';
	assert_int_equal(queue_envelope_parse(sb.data, sb.len, sb.len, &r,
	    &err), -1);
	queue_envelope_free(&r);
	/* A value with a line break is never written. */
	env.helo = "a\nrecipient: evil@x";
	strbuf_reset(&sb);
	assert_int_equal(queue_envelope_format(&sb, id, &env, 0), -1);
	strbuf_free(&sb);
}

/* test_envelope_dsn - RET, ENVID and per-recipient NOTIFY/ORCPT
 * survive the round trip (xtext on disk, decoded when read), and a
 * malformed or misplaced DSN line is refused. */
static void
test_envelope_dsn(void **state)
{
	char *rcpts[] = { "bob@example.com", "carol@example.net",
	    "dave@example.org" };
	unsigned notify[] = { DSN_NOTIFY_NEVER, 0,
	    DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY };
	char *orcpt[] = { NULL, "rfc822;carol+2Bx@example.net", "" };
	struct queue_envelope env = {
		.received = 1764201600, .client_address = "192.0.2.7",
		.sender = "s@example.com", .recipients = rcpts,
		.recipient_count = 3, .ret = DSN_RET_FULL, .envid = "Q+3D1",
		.notify = notify, .orcpt = orcpt,
	};
	struct strbuf sb = STRBUF_INIT(0);
	struct queue_envelope_read r;
	struct error err;
	static const char *const bad[] = {
		"notify: NEVER\nrecipient: a@b\n",      /* before a recipient */
		"recipient: a@b\nnotify: SOMETIMES\n",
		"recipient: a@b\nnotify: DELAY\nnotify: DELAY\n",
		"recipient: a@b\norcpt: rfc822\n",
		"recipient: a@b\norcpt: rfc822;a+0Db\n",
		"recipient: a@b\nret: ALL\n",
		"recipient: a@b\nenvid: a+\n",
	};

	assert_int_equal(queue_envelope_format(&sb, "ABC", &env, 0), 0);
	assert_non_null(strstr(sb.data, "ret: FULL\nenvid: Q+3D1\n"));
	assert_non_null(strstr(sb.data, "recipient: bob@example.com\n"
	    "notify: NEVER\nrecipient: carol@example.net\n"
	    "orcpt: rfc822;carol+2Bx@example.net\n"
	    "recipient: dave@example.org\nnotify: SUCCESS,DELAY\nsize: "));
	assert_int_equal(queue_envelope_parse(sb.data, sb.len, sb.len, &r,
	    &err), 0);
	assert_int_equal(r.ret, DSN_RET_FULL);
	assert_string_equal(r.envid, "Q=1");
	assert_int_equal(r.recipient_count, 3);
	assert_int_equal(r.notify[0], DSN_NOTIFY_NEVER);
	assert_int_equal(r.notify[1], 0);
	assert_int_equal(r.notify[2], DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY);
	assert_null(r.orcpt[0]);
	assert_string_equal(r.orcpt[1], "rfc822;carol+x@example.net");
	assert_null(r.orcpt[2]);
	queue_envelope_free(&r);

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		strbuf_reset(&sb);
		strbuf_appendf(&sb, "version: 2\nqueue-id: A\nsender: \n%s"
		    "size: %020d\n", bad[i], 0);
		assert_int_equal(queue_envelope_parse(sb.data, sb.len, sb.len,
		    &r, &err), -1);
		queue_envelope_free(&r);
	}
	/* The good form of the same lines is accepted (the test can fail). */
	strbuf_reset(&sb);
	strbuf_appendf(&sb, "version: 2\nqueue-id: A\nsender: \nrecipient: "
	    "a@b\nnotify: DELAY\norcpt: rfc822;a@b\nsize: %020d\n", 0);
	assert_int_equal(queue_envelope_parse(sb.data, sb.len, sb.len, &r,
	    &err), 0);
	queue_envelope_free(&r);
	strbuf_free(&sb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_malformed_refused),
		cmocka_unit_test(test_write_read_remove),
		cmocka_unit_test(test_control_marks),
		cmocka_unit_test(test_envelope_round_trip),
		cmocka_unit_test(test_envelope_dsn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
