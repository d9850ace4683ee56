/*
 * test_maildir.c - the Maildir transport (queued/maildir.c) in a
 * temporary directory: one test per promise of maildir.h.
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

#include "../../queued/maildir.h"

static char base[256];

struct src {
	const char *text;
	size_t pos, chunk;
	bool fail;
};

static long
src_read(void *ctx, char *buf, size_t size)
{
	struct src *s = ctx;
	size_t n = strlen(s->text) - s->pos;

	/* fail: some bytes first (a partial file exists), then an error. */
	if (s->fail && s->pos > 0)
		return -1;
	if (s->fail)
		s->chunk = 3;
	if (n > size)
		n = size;
	if (s->chunk > 0 && n > s->chunk)
		n = s->chunk;
	memcpy(buf, s->text + s->pos, n);
	s->pos += n;
	return (long)n;
}

static int
setup(void **state)
{
	snprintf(base, sizeof(base), "/tmp/elemta-maildir-XXXXXX");
	assert_non_null(mkdtemp(base));
	return 0;
}

/* teardown - remove the temporary tree. */
static int
teardown(void **state)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	return system(cmd);
}

/* entries - how many names (other than . and ..) dir holds; the last
 * one's name into name. */
static int
entries(const char *dir, char *name, size_t size)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		n++;
		if (name != NULL)
			snprintf(name, size, "%s", e->d_name);
	}
	closedir(d);
	return n;
}

/* deliver - one message to rcpt. */
static void
deliver(const char *rcpt, struct src *s, struct outcome *o, char *path,
    size_t size)
{
	struct maildir_delivery d = { base, "host/a:b", "s@src.test", rcpt,
	    src_read, s };

	maildir_deliver(&d, o, path, size);
}

static void
test_delivers_into_new(void **state)
{
	struct src s = { "Subject: hi\r\n\r\nline\r\nbare\rcr\n", 0, 3, false };
	struct outcome o;
	char path[4096], dir[512], name[512], got[600];
	struct stat st;
	FILE *f;
	size_t n;

	deliver("Bob.Smith@Dest.TEST", &s, &o, path, sizeof(path));
	assert_int_equal(o.result, OUTCOME_DELIVERED);
	assert_string_equal(o.enhanced, "2.0.0");
	/* Domain lower-cased, local part kept. */
	snprintf(dir, sizeof(dir), "%s/dest.test/Bob.Smith", base);
	for (int i = 0; i < 3; i++) {
		static const char *const sub[] = { "", "/tmp", "/cur" };
		char p[600];

		snprintf(p, sizeof(p), "%s%s", dir, sub[i]);
		assert_int_equal(stat(p, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 0777, 0700);
	}
	snprintf(got, sizeof(got), "%s/tmp", dir);
	assert_int_equal(entries(got, NULL, 0), 0);
	snprintf(got, sizeof(got), "%s/new", dir);
	assert_int_equal(entries(got, name, sizeof(name)), 1);
	assert_non_null(strstr(path, "/new/"));
	assert_string_equal(strrchr(path, '/') + 1, name);
	/* The spec's name, with the host's '/' and ':' escaped. */
	{
		long long sec;
		long usec, pid;
		unsigned long q;
		char host[64];

		assert_int_equal(sscanf(name, "%lld.M%ldP%ldQ%lu.%63s", &sec,
		    &usec, &pid, &q, host), 5);
		assert_int_equal(pid, (long)getpid());
		assert_true(usec >= 0 && usec < 1000000);
		assert_string_equal(host, "host\\057a\\072b");
	}
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(got, 1, sizeof(got) - 1, f);
	got[n] = '\0';
	fclose(f);
	assert_string_equal(got, "Return-Path: <s@src.test>\nDelivered-To: "
	    "Bob.Smith@Dest.TEST\nSubject: hi\n\nline\nbare\rcr\n");
}

static void
test_unique_names(void **state)
{
	struct outcome o;
	char p1[4096], p2[4096], dir[512];
	struct src s1 = { "a\n", 0, 0, false }, s2 = { "b\n", 0, 0, false };

	deliver("x@d.test", &s1, &o, p1, sizeof(p1));
	assert_int_equal(o.result, OUTCOME_DELIVERED);
	deliver("x@d.test", &s2, &o, p2, sizeof(p2));
	assert_int_equal(o.result, OUTCOME_DELIVERED);
	assert_string_not_equal(p1, p2);
	snprintf(dir, sizeof(dir), "%s/d.test/x/new", base);
	assert_int_equal(entries(dir, NULL, 0), 2);
}

static void
test_refuses_escapes(void **state)
{
	static const char *const bad[] = {
		"../x@d.test", "..@d.test", ".hidden@d.test", "a/b@d.test",
		"a@..", "a@.d.test", "a@d/e", "a\x01@d.test", "a\n@d.test",
		"nodomain", "a@", "@d.test", "a@d\r.test",
	};
	struct outcome o;
	char path[64];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct src s = { "m\n", 0, 0, false };

		deliver(bad[i], &s, &o, path, sizeof(path));
		assert_int_equal(o.result, OUTCOME_PERMFAIL);
		assert_string_equal(o.enhanced, "5.1.3");
		assert_null(strchr(o.text, '\n'));
		assert_string_equal(path, "");
	}
	/* Nothing was created anywhere. */
	assert_int_equal(entries(base, NULL, 0), 0);
}

static void
test_failure_leaves_nothing(void **state)
{
	struct src s = { "partial", 0, 0, true };
	struct outcome o;
	char dir[512], file[600];
	struct maildir_delivery d = { base, "h", "s@x\r\nX: y", "x@d.test",
	    src_read, &s };

	deliver("x@d.test", &s, &o, NULL, 0);
	assert_int_equal(o.result, OUTCOME_TEMPFAIL);
	assert_string_equal(o.enhanced, "4.3.0");
	snprintf(dir, sizeof(dir), "%s/d.test/x/tmp", base);
	assert_int_equal(entries(dir, NULL, 0), 0);
	snprintf(dir, sizeof(dir), "%s/d.test/x/new", base);
	assert_int_equal(entries(dir, NULL, 0), 0);

	/* A sender that would inject a header is refused. */
	maildir_deliver(&d, &o, NULL, 0);
	assert_int_equal(o.result, OUTCOME_PERMFAIL);
	assert_int_equal(entries(dir, NULL, 0), 0);

	/* A base that is not a directory: deferred, not bounced. */
	snprintf(file, sizeof(file), "%s/file", base);
	close(open(file, O_CREAT | O_WRONLY, 0600));
	d.base = file;
	d.sender = "s@x";
	s.fail = false;
	maildir_deliver(&d, &o, NULL, 0);
	assert_int_equal(o.result, OUTCOME_TEMPFAIL);
}

static void
test_unique_name_bounds(void **state)
{
	char buf[64];

	assert_int_equal(maildir_unique_name(buf, sizeof(buf), 1, 2, 3, 4,
	    "h/:"), 0);
	assert_string_equal(buf, "1.M2P3Q4.h\\057\\072");
	assert_int_equal(maildir_unique_name(buf, 12, 1, 2, 3, 4, "host"), -1);
	assert_int_equal(maildir_unique_name(buf, 14, 1, 2, 3, 4, "h:"), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_delivers_into_new, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unique_names, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refuses_escapes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_failure_leaves_nothing,
		    setup, teardown),
		cmocka_unit_test(test_unique_name_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
