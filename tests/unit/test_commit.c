/*
 * test_commit.c - unit tests for queued/commit.c, one per promise of
 * commit.h: a removal takes the spool file, then the state file and the
 * delete mark it is told of (and nothing it is not told of); an absent
 * spool file is success; a spool file that stays is a failure that
 * leaves the state file in place; removals queued together are
 * answered, each once, from the event loop and never from inside
 * commit_remove.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "scratch.h"
#include "../../queued/commit.h"

#define IDS 50

struct answers {
	unsigned n;
	int rc[IDS];
	char what[IDS][16];
	struct event_base *base;
	unsigned want;
};

/* spool - scratch_dir with queue/, state/, control/. */
static void
spool(void)
{
	static const char *const subs[] = { "queue", "state", "control" };
	char dir[128];

	scratch_make();
	for (size_t i = 0; i < 3; i++) {
		snprintf(dir, sizeof(dir), "%s/%s", scratch_dir, subs[i]);
		assert_int_equal(mkdir(dir, 0700), 0);
	}
}

/* exists - scratch_dir/rel exists. */
static bool
exists(const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", scratch_dir, rel);
	return access(path, F_OK) == 0;
}

/* done - the callback: note rc for the id's index (its last 2 digits). */
static void
done(void *arg, const char *id, int rc, const char *what)
{
	struct answers *a = arg;
	unsigned i = (unsigned)atoi(id + strlen(id) - 2);

	assert_true(i < IDS);
	a->rc[i] = rc;
	snprintf(a->what[i], sizeof(a->what[i]), "%s", what);
	if (++a->n == a->want)
		event_base_loopbreak(a->base);
}

/* run - the loop until want answers (bounded by a 10 s timer). */
static void
run(struct answers *a)
{
	struct timeval tv = { 10, 0 };

	event_base_loopexit(a->base, &tv);
	event_base_dispatch(a->base);
	assert_int_equal(a->n, a->want);
}

/* start - a fresh spool and a commit over it answering on a new base;
 * want answers expected. */
static struct commit *
start(struct answers *a, unsigned want, bool do_fsync)
{
	struct error err;
	struct commit *c;

	memset(a, 0, sizeof(*a));
	a->want = want;
	spool();
	a->base = event_base_new();
	c = commit_new(a->base, scratch_dir, do_fsync, &err);
	assert_non_null(c);
	return c;
}

/* finish - free c and its base, remove the spool. */
static void
finish(struct commit *c, struct answers *a)
{
	commit_free(c);
	event_base_free(a->base);
	scratch_remove();
}

/* test_removes_what_it_is_told - spool file, state file, delete mark. */
static void
test_removes_what_it_is_told(void **state)
{
	struct answers a;
	struct commit *c = start(&a, 2, true);

	scratch_write("queue/AB01", "x");
	scratch_write("state/AB01", "x");
	scratch_write("control/AB01.delete", "");
	scratch_write("queue/AB02", "x");
	scratch_write("state/AB02", "x");   /* not told: stays */
	commit_remove(c, "AB01", COMMIT_STATE | COMMIT_DELETE_MARK, done, &a);
	commit_remove(c, "AB02", 0, done, &a);
	assert_int_equal(a.n, 0);           /* answered from the loop only */
	assert_int_equal(commit_pending(c), 2);
	run(&a);
	assert_int_equal(commit_pending(c), 0);
	assert_int_equal(a.rc[1], 0);
	assert_int_equal(a.rc[2], 0);
	assert_false(exists("queue/AB01"));
	assert_false(exists("state/AB01"));
	assert_false(exists("control/AB01.delete"));
	assert_false(exists("queue/AB02"));
	assert_true(exists("state/AB02"));
	finish(c, &a);
}

/* test_absent_spool_file_is_success - already gone: success, and the
 * state file goes (a message removed behind queued's back). */
static void
test_absent_spool_file_is_success(void **state)
{
	struct answers a;
	struct commit *c = start(&a, 1, false);

	scratch_write("state/CD03", "x");
	commit_remove(c, "CD03", COMMIT_STATE, done, &a);
	run(&a);
	assert_int_equal(a.rc[3], 0);
	assert_false(exists("state/CD03"));
	finish(c, &a);
}

/* test_spool_file_that_stays_keeps_its_state - unlink fails (a
 * directory in its place): the error and the step, the state kept. */
static void
test_spool_file_that_stays_keeps_its_state(void **state)
{
	struct answers a;
	struct commit *c = start(&a, 1, true);
	char dir[128];

	snprintf(dir, sizeof(dir), "%s/queue/EF04", scratch_dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	scratch_write("state/EF04", "x");
	commit_remove(c, "EF04", COMMIT_STATE, done, &a);
	run(&a);
	assert_int_not_equal(a.rc[4], 0);
	assert_string_equal(a.what[4], "unlink");
	assert_true(exists("queue/EF04"));
	assert_true(exists("state/EF04"));
	finish(c, &a);
}

/* test_many_each_answered_once - IDS removals queued at once (batches
 * of whatever size the worker takes): each answered once, all gone. */
static void
test_many_each_answered_once(void **state)
{
	struct answers a;
	struct commit *c = start(&a, IDS, true);
	char id[16], rel[32];

	for (int i = 0; i < IDS; i++) {
		a.rc[i] = -1;
		snprintf(rel, sizeof(rel), "queue/AA%02d", i);
		scratch_write(rel, "x");
	}
	for (int i = 0; i < IDS; i++) {
		snprintf(id, sizeof(id), "AA%02d", i);
		commit_remove(c, id, 0, done, &a);
	}
	run(&a);
	for (int i = 0; i < IDS; i++) {
		assert_int_equal(a.rc[i], 0);
		snprintf(rel, sizeof(rel), "queue/AA%02d", i);
		assert_false(exists(rel));
	}
	finish(c, &a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_removes_what_it_is_told),
		cmocka_unit_test(test_absent_spool_file_is_success),
		cmocka_unit_test(test_spool_file_that_stays_keeps_its_state),
		cmocka_unit_test(test_many_each_answered_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
