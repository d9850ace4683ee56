/*
 * test_auth_pool.c - unit tests for policyd/auth_pool.c, one test per
 * promise of auth_pool.h: jobs are hashed off the caller's thread and
 * handed back (the wake-up descriptor turns readable); the queue and each
 * client's share are bounded and refused at once beyond them; freeing
 * the pool hands every uncollected job to the drop function with its
 * password wiped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <crypt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../policyd/auth_pool.h"
#include "error.h"

/* job_for - a job whose setting is a bcrypt hash of "pw" at cost c (cost
 * 4 is ~1 ms, 12 ~0.3 s: long enough to keep a thread busy). */
static void
job_for(struct auth_job *job, const char *client, const char *password,
    unsigned long cost)
{
	static struct crypt_data cd;
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *h;

	memset(job, 0, sizeof(*job));
	assert_non_null(crypt_gensalt_rn("$2b$", cost, NULL, 0, setting,
	    sizeof(setting)));
	h = crypt_rn("pw", setting, &cd, sizeof(cd));
	assert_non_null(h);
	str_copy(job->setting, h, sizeof(job->setting));
	str_copy((char *)job->pw, password, sizeof(job->pw));
	job->pwlen = strlen(password);
	job->pre = AUTH_RESULT_OK;
	str_copy(job->client, client, sizeof(job->client));
}

/* assert_wiped - every byte of the password buffer is zero (a NUL
 * written at the front would pass a pw[0] check and leave the rest). */
static void
assert_wiped(const struct auth_job *job)
{
	for (size_t i = 0; i < sizeof(job->pw); i++)
		assert_int_equal(job->pw[i], 0);
}

/* wait_done - the next finished job, waiting on the descriptor. */
static struct auth_job *
wait_done(struct auth_pool *p)
{
	struct auth_job *job;

	for (int i = 0; i < 200; i++) {
		struct pollfd pfd = { .fd = auth_pool_fd(p), .events = POLLIN };

		if ((job = auth_pool_next_done(p)) != NULL)
			return job;
		(void)poll(&pfd, 1, 100);
	}
	return NULL;
}

/* test_hash_off_thread - right and wrong passwords come back judged, the
 * password wiped; nothing is left afterwards. */
static void
test_hash_off_thread(void **state)
{
	struct auth_job right, wrong, *got[2];
	struct error err;
	struct auth_pool *p = auth_pool_new(1, &err);

	assert_non_null(p);
	job_for(&right, "192.0.2.1", "pw", 4);
	job_for(&wrong, "192.0.2.2", "nope", 4);
	assert_int_equal(auth_pool_submit(p, &right), 0);
	assert_int_equal(auth_pool_submit(p, &wrong), 0);
	got[0] = wait_done(p);
	got[1] = wait_done(p);
	assert_ptr_equal(got[0], &right);       /* FIFO, one thread */
	assert_ptr_equal(got[1], &wrong);
	assert_int_equal(auth_job_result(&right), AUTH_RESULT_OK);
	assert_int_equal(auth_job_result(&wrong), AUTH_RESULT_WRONG_PASSWORD);
	assert_wiped(&right);
	assert_wiped(&wrong);
	assert_null(auth_pool_next_done(p));
	auth_pool_free(p, NULL);
}

static unsigned dropped;

/* count_drop - the drop function: counts, checks the wipe. */
static void
count_drop(struct auth_job *job)
{
	assert_wiped(job);
	dropped++;
}

/* test_bounds_and_free - a client's share is AUTH_POOL_PER_CLIENT jobs
 * waiting or running, the queue AUTH_POOL_QUEUE_MAX; beyond, submit
 * refuses at once.  Freeing hands back what was not collected. */
static void
test_bounds_and_free(void **state)
{
	static struct auth_job jobs[AUTH_POOL_QUEUE_MAX + 2];
	struct auth_job slow;
	struct error err;
	struct auth_pool *p = auth_pool_new(1, &err);
	char client[32];
	size_t n;

	assert_non_null(p);
	/* Every job made first (making one costs a hash): the submits below
	 * then take microseconds, while the slow job keeps the only thread
	 * busy for a good fraction of a second. */
	job_for(&slow, "198.51.100.1", "pw", 12);
	for (n = 0; n < 3; n++)
		job_for(&jobs[n], "192.0.2.1", "x", 4);
	for (; n < AUTH_POOL_QUEUE_MAX + 1; n++) {
		snprintf(client, sizeof(client), "203.0.113.%zu", n);
		job_for(&jobs[n], client, "x", 4);
	}
	assert_int_equal(auth_pool_submit(p, &slow), 0);
	assert_int_equal(auth_pool_submit(p, &jobs[0]), 0);
	assert_int_equal(auth_pool_submit(p, &jobs[1]), 0);
	/* The third from the same client is over its share... */
	assert_int_equal(auth_pool_submit(p, &jobs[2]), -1);
	/* ...other clients still get in, until the queue is full. */
	for (n = 3; n < AUTH_POOL_QUEUE_MAX; n++)
		assert_int_equal(auth_pool_submit(p, &jobs[n]), 0);
	assert_int_equal(auth_pool_submit(p, &jobs[n]), -1);
	dropped = 0;
	auth_pool_free(p, count_drop);
	/* Everything but what was collected (nothing) comes back once. */
	assert_int_equal(dropped, AUTH_POOL_QUEUE_MAX);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_off_thread),
		cmocka_unit_test(test_bounds_and_free),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
