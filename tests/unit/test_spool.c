/*
 * test_spool.c - unit tests for smtpd/spool.c: the one-file queue format
 * (message, then envelope, ending in the fixed-width size line), the
 * reader descriptor seeing only the message, nothing visible before the
 * commit, nothing left after an abort, an id collision refused without
 * overwriting, and the asynchronous committer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "log.h"
#include "msg_edit.h"
#include "../../smtpd/spool.h"

#define SIZE_LINE (6 + SPOOL_SIZE_DIGITS + 1)

struct fx {
	char dir[64];
};

/* count_entries - names in dir/sub (without . and ..). */
static int
count_entries(const struct fx *f, const char *sub)
{
	char path[128];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", f->dir, sub);
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* slurp - the whole file at dir/sub/id (malloc'd), its length in *len. */
static char *
slurp(const struct fx *f, const char *sub, const char *id, size_t *len)
{
	char path[128];
	struct stat st;
	char *buf;
	int fd;

	snprintf(path, sizeof(path), "%s/%s/%s", f->dir, sub, id);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	buf[st.st_size] = '\0';
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static char *const two_rcpts[] = { "bob@example.com", "carol@example.net" };

/* envelope - a typical envelope. */
static struct spool_envelope
envelope(void)
{
	struct spool_envelope env = {
		.received = 1764201600,
		.client_address = "192.0.2.7",
		.client_port = 50123,
		.client_name = "unknown",
		.helo = "client.example",
		.protocol = "ESMTP",
		.tls = "none",
		.auth_user = "",
		.sender = "alice@example.org",
		.recipients = two_rcpts,
		.recipient_count = 2,
	};

	return env;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct error err;

	strcpy(f->dir, "/tmp/elemta-test-spool.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(spool_prepare(f->dir, &err), 0);
	*state = f;
	return 0;
}

/* setup_named - the same, receiving into named tmp/ files (a file
 * system without O_TMPFILE). */
static bool named_mode;

static int
setup_named(void **state)
{
	named_mode = true;
	spool_use_named_files(true);
	return setup(state);
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	named_mode = false;
	spool_use_named_files(false);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* The committed file: the message byte-exact, then the envelope, whose
 * last line is "size: " and 20 digits giving where it begins; nothing was
 * visible under a name before the commit. */
static void
test_commit_format(void **state)
{
	struct fx *f = *state;
	static const char msg[] = "Received: x\r\nSubject: hi\r\n\r\nbody\r\n";
	struct spool_envelope env = envelope();
	struct spool_msg m;
	struct error err;
	size_t len, size;
	char *data, want[64], want_env[512];

	assert_int_equal(spool_msg_open(&m, f->dir, "00000000000AB001", &err),
	    0);
	assert_int_equal(spool_msg_write(&m, msg, 13, &err), 0);
	assert_int_equal(spool_msg_write(&m, msg + 13, sizeof(msg) - 1 - 13,
	    &err), 0);
	assert_int_equal(m.anonymous, !named_mode);
	assert_int_equal(count_entries(f, "tmp"), named_mode ? 1 : 0);
	assert_int_equal(count_entries(f, "queue"), 0);
	assert_int_equal(spool_msg_commit(&m, &env, SPOOL_QUEUE, true, &err),
	    0);
	assert_int_equal(count_entries(f, "tmp"), 0);
	assert_int_equal(count_entries(f, "queue"), 1);

	data = slurp(f, "queue", "00000000000AB001", &len);
	assert_true(len > sizeof(msg) - 1 + SIZE_LINE);
	snprintf(want, sizeof(want), "size: %020zu\n", sizeof(msg) - 1);
	assert_memory_equal(data + len - SIZE_LINE, want, SIZE_LINE);
	size = strtoul(data + len - SIZE_LINE + 6, NULL, 10);
	assert_int_equal(size, sizeof(msg) - 1);
	assert_memory_equal(data, msg, size);
	snprintf(want_env, sizeof(want_env),
	    "version: 2\nqueue-id: 00000000000AB001\n"
	    "received: 1764201600 2025-11-27T00:00:00Z\n"
	    "client-address: 192.0.2.7\nclient-port: 50123\n"
	    "client-name: unknown\nhelo: client.example\nprotocol: ESMTP\n"
	    "tls: none\nauth-user: \nsender: alice@example.org\n"
	    "recipient: bob@example.com\nrecipient: carol@example.net\n"
	    "size: %020zu\n", sizeof(msg) - 1);
	assert_string_equal(data + size, want_env);
	free(data);
}

/* The descriptor policyd gets at END-OF-MESSAGE reads the message and
 * nothing else, and cannot write. */
static void
test_reader_sees_the_message_only(void **state)
{
	struct fx *f = *state;
	struct spool_envelope env = envelope();
	struct spool_msg m;
	struct error err;
	char buf[64];
	int fd;

	assert_int_equal(spool_msg_open(&m, f->dir, "00000000000AB002", &err),
	    0);
	assert_int_equal(spool_msg_write(&m, "hello\r\n", 7, &err), 0);
	assert_int_equal(spool_msg_flush(&m, &err), 0);
	fd = spool_msg_reader(&m, &err);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 7);
	assert_memory_equal(buf, "hello\r\n", 7);
	assert_int_equal(write(fd, "x", 1), -1);
	assert_int_equal(spool_msg_commit(&m, &env, SPOOL_QUARANTINE, false,
	    &err), 0);
	close(fd);
	assert_int_equal(count_entries(f, "quarantine"), 1);
	assert_int_equal(count_entries(f, "queue"), 0);
}

/* The envelope holds only values every line-based reader keeps on one
 * line: a HELO or recipient with U+2028, U+0085 or a bidi control makes
 * the commit fail and leaves nothing behind (issue 22). */
static void
test_envelope_refuses_separators(void **state)
{
	static char *const bad_rcpt[] = { "\xe2\x80\xa8x@example.com" };
	const char *bad_helo[] = { "\xe2\x80\xae\xc3\xa9vil.example",
	    "a\xc2\x85" "b", "a\nrecipient: x@example.com" };
	struct fx *f = *state;
	struct spool_envelope env;
	struct spool_msg m;
	struct error err;

	for (size_t i = 0; i <= sizeof(bad_helo) / sizeof(*bad_helo); i++) {
		env = envelope();
		if (i < sizeof(bad_helo) / sizeof(*bad_helo))
			env.helo = bad_helo[i];
		else {
			env.recipients = bad_rcpt;
			env.recipient_count = 1;
		}
		assert_int_equal(spool_msg_open(&m, f->dir, "00000000000AB009",
		    &err), 0);
		assert_int_equal(spool_msg_write(&m, "hello\r\n", 7, &err), 0);
		assert_int_equal(spool_msg_commit(&m, &env, SPOOL_QUEUE, false,
		    &err), -1);
		assert_non_null(strstr(err.text, "split"));
		assert_int_equal(count_entries(f, "queue"), 0);
		assert_int_equal(count_entries(f, "tmp"), 0);
	}
	/* Non-ASCII that is safe is stored as it is. */
	env = envelope();
	env.helo = "\xc3\xa9t\xc3\xa9.example";
	assert_int_equal(spool_msg_open(&m, f->dir, "00000000000AB00A", &err), 0);
	assert_int_equal(spool_msg_commit(&m, &env, SPOOL_QUEUE, false, &err), 0);
	assert_int_equal(count_entries(f, "queue"), 1);
}

/* An aborted message leaves nothing anywhere; abort is idempotent. */
static void
test_abort_leaves_nothing(void **state)
{
	struct fx *f = *state;
	struct spool_msg m;
	struct error err;

	assert_int_equal(spool_msg_open(&m, f->dir, "00000000000AB003", &err),
	    0);
	assert_int_equal(spool_msg_write(&m, "partial", 7, &err), 0);
	assert_int_equal(count_entries(f, "tmp"), named_mode ? 1 : 0);
	spool_msg_abort(&m);
	spool_msg_abort(&m);
	assert_int_equal(count_entries(f, "tmp"), 0);
	assert_int_equal(count_entries(f, "queue"), 0);
	assert_int_equal(m.fd, -1);
}

/* A second message under an existing id fails and leaves the first one
 * untouched (the link never replaces). */
static void
test_collision_refused(void **state)
{
	struct fx *f = *state;
	struct spool_envelope env = envelope();
	struct spool_msg m;
	struct error err;
	size_t len1, len2;
	char *before, *after;

	assert_int_equal(spool_msg_open(&m, f->dir, "00000000000AB004", &err),
	    0);
	assert_int_equal(spool_msg_write(&m, "first\r\n", 7, &err), 0);
	assert_int_equal(spool_msg_commit(&m, &env, SPOOL_QUEUE, false, &err),
	    0);
	before = slurp(f, "queue", "00000000000AB004", &len1);
	assert_int_equal(spool_msg_open(&m, f->dir, "00000000000AB004", &err),
	    0);
	assert_int_equal(spool_msg_write(&m, "second\r\n", 8, &err), 0);
	assert_int_equal(spool_msg_commit(&m, &env, SPOOL_QUEUE, false, &err),
	    -1);
	assert_non_null(strstr(err.text, "File exists"));
	after = slurp(f, "queue", "00000000000AB004", &len2);
	assert_int_equal(len1, len2);
	assert_memory_equal(before, after, len1);
	assert_int_equal(count_entries(f, "tmp"), 0);
	free(before);
	free(after);
}

/* make_full - m's writes from now on go to /dev/full (ENOSPC), as on a
 * full file system: its descriptor is replaced (an unnamed tmp inode
 * goes with the old one). */
static void
make_full(struct spool_msg *m)
{
	int full = open("/dev/full", O_WRONLY | O_CLOEXEC);

	assert_true(full >= 0);
	assert_true(dup2(full, m->fd) == m->fd);
	close(full);
}

/* A write that finds the disk full says so (SPOOL_NO_SPACE, not -1),
 * every later step too, and the commit leaves nothing: no tmp file, no
 * queue file. */
static void
test_disk_full(void **state)
{
	struct fx *f = *state;
	struct spool_envelope env = envelope();
	struct spool_msg m;
	struct error err;
	char big[SPOOL_BUF_SIZE + 1];

	/* Buffered bytes: the flush at commit finds the disk full. */
	assert_int_equal(spool_msg_open(&m, f->dir, "00000000000AB00A", &err),
	    0);
	assert_int_equal(spool_msg_write(&m, "Subject: x\r\n", 13, &err), 0);
	make_full(&m);
	assert_int_equal(spool_msg_commit(&m, &env, SPOOL_QUEUE, false, &err),
	    SPOOL_NO_SPACE);
	assert_non_null(strstr(err.text, "No space left on device"));
	assert_int_equal(count_entries(f, "tmp"), 0);
	assert_int_equal(count_entries(f, "queue"), 0);

	/* A large write goes straight to the file and fails at once. */
	memset(big, 'a', sizeof(big));
	assert_int_equal(spool_msg_open(&m, f->dir, "00000000000AB00B", &err),
	    0);
	make_full(&m);
	assert_int_equal(spool_msg_write(&m, big, sizeof(big), &err),
	    SPOOL_NO_SPACE);
	assert_true(m.failed && m.no_space);
	assert_int_equal(spool_msg_write(&m, "x", 1, &err), SPOOL_NO_SPACE);
	assert_int_equal(spool_msg_flush(&m, &err), SPOOL_NO_SPACE);
	assert_non_null(strstr(err.text, "no space left"));
	spool_msg_abort(&m);
	assert_int_equal(count_entries(f, "tmp"), 0);

	/* Other failures stay -1. */
	assert_int_equal(spool_msg_open(&m, f->dir, "00000000000AB00C", &err),
	    0);
	assert_int_equal(spool_msg_write(&m, "x", 1, &err), 0);
	{
		int ro = open("/dev/null", O_RDONLY | O_CLOEXEC);

		assert_true(dup2(ro, m.fd) == m.fd);
		close(ro);
	}
	assert_int_equal(spool_msg_commit(&m, &env, SPOOL_QUEUE, false, &err),
	    -1);
	assert_int_equal(count_entries(f, "tmp"), 0);
	assert_int_equal(count_entries(f, "queue"), 0);
}

/* spool.min_free: 0 is off; otherwise min_free plus the declared size
 * must be free (statvfs of the spool); a spool that cannot be measured
 * passes. */
static void
test_space_ok(void **state)
{
	struct fx *f = *state;
	const uint64_t huge = UINT64_C(1) << 62;

	assert_true(spool_space_ok(f->dir, 0, huge));
	assert_true(spool_space_ok(f->dir, 1, 0));
	assert_false(spool_space_ok(f->dir, huge, 0));
	assert_false(spool_space_ok(f->dir, 1, huge));
	assert_false(spool_space_ok(f->dir, huge, huge));
	assert_true(spool_space_ok("/nonexistent/spool", huge, 0));
	/* Measured again for another spool, not reused. */
	assert_false(spool_space_ok(f->dir, huge, 0));
}

static int many_done, many_ok, many_want;

/* on_many - counts completions; stops the loop after the last. */
static void
on_many(void *arg, int rc, const char *errtext)
{
	many_done++;
	if (rc == 0)
		many_ok++;
	if (many_done == many_want)
		event_base_loopbreak(arg);
}

/* The committer's threads commit and report through the event loop: a
 * lone commit syncs its directory once, by itself; then fifty commits at
 * once through four threads, each message taken over at submission, each
 * completing once, durable, and the directory fsyncs shared between the
 * commits in flight (fewer syncs than commits). */
static void
test_committer_many(void **state)
{
	struct fx *f = *state;
	struct spool_envelope env = envelope();
	struct event_base *base = event_base_new();
	struct spool_committer *sc;
	struct spool_msg m;
	struct error err;
	struct timeval limit = { 20, 0 }, linger = { 0, 200000 };
	char id[SPOOL_ID_LEN + 1];

	sc = spool_committer_new(base, f->dir, 4, &err);
	assert_non_null(sc);
	many_done = many_ok = 0;
	many_want = 1;
	assert_int_equal(spool_msg_open(&m, f->dir, "00000000000DFFFF", &err), 0);
	assert_int_equal(spool_msg_write(&m, "lone\r\n", 6, &err), 0);
	assert_non_null(spool_commit_submit(sc, &m, &env, SPOOL_QUEUE, true,
	    on_many, base));
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	assert_int_equal(many_ok, 1);
	assert_int_equal(spool_committer_sync_batches(sc), 1);

	many_done = many_ok = 0;
	many_want = 50;
	for (int i = 0; i < 50; i++) {
		snprintf(id, sizeof(id), "00000000000C%04X", i);
		assert_int_equal(spool_msg_open(&m, f->dir, id, &err), 0);
		assert_int_equal(spool_msg_write(&m, "many\r\n", 6, &err), 0);
		assert_non_null(spool_commit_submit(sc, &m, &env, i % 5 == 0 ?
		    SPOOL_QUARANTINE : SPOOL_QUEUE, true, on_many, base));
		assert_int_equal(m.fd, -1);     /* taken over */
	}
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	assert_int_equal(many_done, 50);
	/* no completion arrives twice */
	event_base_loopexit(base, &linger);
	event_base_dispatch(base);
	assert_int_equal(many_done, 50);
	assert_int_equal(many_ok, 50);
	assert_true(spool_committer_sync_batches(sc) - 1 < 50);
	assert_int_equal(count_entries(f, "queue"), 41);
	assert_int_equal(count_entries(f, "quarantine"), 10);
	assert_int_equal(count_entries(f, "tmp"), 0);
	spool_committer_free(sc);
	event_base_free(base);
}

/* The group-commit rule: a directory sync waits (at most 1 ms) while
 * other commits are still on their way to their links, so that one flush
 * covers them too; it never waits when nothing else is in flight or the
 * committer stops, and never starts beside a sync already running. */
static void
test_sync_rule(void **state)
{
	struct timespec t0 = { 100, 999500000 }, early = { 101, 400000 },
	    late = { 101, 500000 };

	/* nothing pending, or a sync running: no */
	assert_false(spool_sync_is_due(false, false, 0, false, t0, late));
	assert_false(spool_sync_is_due(true, true, 0, false, t0, late));
	/* the last commit in flight syncs for the batch at once */
	assert_true(spool_sync_is_due(true, false, 0, false, t0, t0));
	/* others in flight: wait for them until the deadline (across a
	 * second boundary: 100.9995 s + 1 ms = 101.0005 s) */
	assert_false(spool_sync_is_due(true, false, 3, false, t0, t0));
	assert_false(spool_sync_is_due(true, false, 3, false, t0, early));
	assert_true(spool_sync_is_due(true, false, 3, false, t0, late));
	/* stopping: no waiting */
	assert_true(spool_sync_is_due(true, false, 3, true, t0, t0));
}

/* A spool without its destination directories is refused when the
 * committer starts, not at the first commit. */
static void
test_committer_needs_directories(void **state)
{
	struct fx *f = *state;
	struct event_base *base = event_base_new();
	struct error err;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/quarantine", f->dir);
	assert_int_equal(rmdir(path), 0);
	assert_null(spool_committer_new(base, f->dir, 2, &err));
	assert_non_null(strstr(err.text, "quarantine"));
	assert_int_equal(mkdir(path, 0750), 0);
	event_base_free(base);
}

/* spool_msg_apply_edits: a header put in after the rest was written
 * (end-of-data headers above Received:); the committed file holds the
 * whole message with it in place and the envelope's size counts it;
 * tmp/ keeps nothing of the copy; a big message (over the copy buffer)
 * survives byte-exact. */
static void
test_insert(void **state)
{
	struct fx *f = *state;
	struct spool_envelope env = envelope();
	struct spool_msg m;
	struct error err;
	static const char head[] = "X-A: 1\r\n";
	static const char rcvd[] = "Received: x\r\n";
	static const char ins[] = "X-Eom: yes\r\n";
	struct msg_edits edits = { 0 };
	size_t body_len = 100000, len, size;
	char *body = malloc(body_len), *data, want[SIZE_LINE + 1];

	for (size_t i = 0; i < body_len; i++)
		body[i] = (char)('a' + i % 26);
	assert_int_equal(spool_msg_open(&m, f->dir, "00000000000AB0FF", &err),
	    0);
	assert_int_equal(spool_msg_write(&m, head, sizeof(head) - 1, &err), 0);
	assert_int_equal(spool_msg_write(&m, rcvd, sizeof(rcvd) - 1, &err), 0);
	assert_int_equal(spool_msg_write(&m, body, body_len, &err), 0);
	assert_int_equal(msg_edits_header(&edits, MSG_EDIT_HEADER_INSERT, 1,
	    "X-Eom", "yes", false), 0);
	assert_int_equal(spool_msg_apply_edits(&m, &edits, &err), 0);
	msg_edits_free(&edits);
	assert_int_equal(m.size, sizeof(head) - 1 + sizeof(ins) - 1 +
	    sizeof(rcvd) - 1 + body_len);
	assert_int_equal(m.anonymous, !named_mode);
	assert_int_equal(count_entries(f, "tmp"), named_mode ? 1 : 0);
	assert_int_equal(spool_msg_commit(&m, &env, SPOOL_QUEUE, false, &err),
	    0);
	assert_int_equal(count_entries(f, "tmp"), 0);
	data = slurp(f, "queue", "00000000000AB0FF", &len);
	snprintf(want, sizeof(want), "size: %020zu\n", (size_t)(sizeof(head) -
	    1 + sizeof(ins) - 1 + sizeof(rcvd) - 1 + body_len));
	assert_memory_equal(data + len - SIZE_LINE, want, SIZE_LINE);
	size = strtoul(data + len - SIZE_LINE + 6, NULL, 10);
	assert_memory_equal(data, "X-A: 1\r\nX-Eom: yes\r\nReceived: x\r\n",
	    33);
	assert_memory_equal(data + 33, body, body_len);
	assert_int_equal(size, 33 + body_len);
	free(data);
	free(body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_commit_format),
		T(test_insert),
		T(test_reader_sees_the_message_only),
		T(test_abort_leaves_nothing),
		T(test_envelope_refuses_separators),
		T(test_collision_refused),
		T(test_disk_full),
		T(test_space_ok),
		T(test_committer_many),
		T(test_committer_needs_directories),
		cmocka_unit_test(test_sync_rule),
#undef T
#define N(fn) cmocka_unit_test_prestate_setup_teardown(fn, setup_named, \
    teardown, NULL)
		N(test_commit_format),
		N(test_insert),
		N(test_reader_sees_the_message_only),
		N(test_abort_leaves_nothing),
		N(test_collision_refused),
		N(test_disk_full),
#undef N
	};

	log_init("test_spool", true, LOG_LEVEL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
