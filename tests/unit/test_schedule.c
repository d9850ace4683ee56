/*
 * test_schedule.c - retry arithmetic (queued/schedule.c): one test per
 * promise of schedule.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../queued/schedule.h"

static void
test_doubling_capped_no_jitter(void **state)
{
	struct schedule_policy p = { 300, 3600, 5 * 86400, 0, 0 };

	assert_int_equal(schedule_backoff(&p, 0, 1), 300);
	assert_int_equal(schedule_backoff(&p, 1, 1), 300);
	assert_int_equal(schedule_backoff(&p, 2, 1), 600);
	assert_int_equal(schedule_backoff(&p, 3, 1), 1200);
	assert_int_equal(schedule_backoff(&p, 4, 1), 2400);
	assert_int_equal(schedule_backoff(&p, 5, 1), 3600);
	assert_int_equal(schedule_backoff(&p, 1000, 1), 3600);
	assert_int_equal(schedule_backoff(&p, UINT32_MAX, 1), 3600);
}

static void
test_jitter_bounded_and_deterministic(void **state)
{
	struct schedule_policy p;
	bool differs = false;

	schedule_policy_default(&p);
	assert_int_equal(p.min_backoff, 300);
	assert_int_equal(p.max_backoff, 3600);
	assert_int_equal(p.max_lifetime, 432000);
	for (uint64_t seed = 0; seed < 500; seed++) {
		for (unsigned n = 1; n < 8; n++) {
			uint64_t plain = n >= 5 ? 3600 : 300u << (n - 1);
			uint64_t b = schedule_backoff(&p, n, seed);

			assert_true(b <= plain);
			assert_true(b >= plain - plain * p.jitter_pct / 100);
			assert_int_equal(b, schedule_backoff(&p, n, seed));
			differs |= b != schedule_backoff(&p, n, seed + 1);
		}
	}
	/* The jitter is there: seeds spread the retries. */
	assert_true(differs);
	assert_int_not_equal(schedule_seed("4F2A01"), schedule_seed("4F2A02"));
	assert_int_equal(schedule_seed("x"), schedule_seed("x"));
	/* Jitter over 50% is clamped. */
	p.jitter_pct = 200;
	for (uint64_t seed = 0; seed < 100; seed++)
		assert_true(schedule_backoff(&p, 1, seed) >= 150);
}

static void
test_short_values_for_tests(void **state)
{
	struct schedule_policy p = { 1, 4, 10, 3, 50 };

	for (uint64_t seed = 0; seed < 50; seed++) {
		assert_true(schedule_backoff(&p, 1, seed) >= 1);
		assert_true(schedule_backoff(&p, 3, seed) <= 4);
	}
	p.min_backoff = 0;           /* read as 1 second */
	p.jitter_pct = 0;
	assert_int_equal(schedule_backoff(&p, 1, 0), 1);
}

static void
test_expiry(void **state)
{
	struct schedule_policy p = { 60, 600, 3600, 0, 0 };

	assert_false(schedule_expired(&p, 1000, 1000));
	assert_false(schedule_expired(&p, 1000, 4599));
	assert_true(schedule_expired(&p, 1000, 4600));
	/* A clock that went backwards does not expire anything. */
	assert_false(schedule_expired(&p, 1000, 10));
}

static void
test_next_attempt_clamped(void **state)
{
	struct schedule_policy p = { 60, 600, 3600, 0, 0 };

	assert_int_equal(schedule_next_attempt(&p, 1000, 1000, 1, 0), 1060);
	assert_int_equal(schedule_next_attempt(&p, 1000, 2000, 9, 0), 2600);
	/* Near the end: the last try is at the deadline. */
	assert_int_equal(schedule_next_attempt(&p, 1000, 4500, 9, 0), 4600);
	assert_int_equal(schedule_next_attempt(&p, 1000, 4700, 9, 0), 4700);
}

static void
test_delay_warning(void **state)
{
	struct schedule_policy p = { 60, 600, 3600, 0, 0 };

	assert_false(schedule_warning_due(&p, 1000, 3000, false));
	p.delay_warning = 1800;
	assert_false(schedule_warning_due(&p, 1000, 2799, false));
	assert_true(schedule_warning_due(&p, 1000, 2800, false));
	assert_false(schedule_warning_due(&p, 1000, 2800, true));
	assert_false(schedule_warning_due(&p, 1000, 4600, false));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doubling_capped_no_jitter),
		cmocka_unit_test(test_jitter_bounded_and_deterministic),
		cmocka_unit_test(test_short_values_for_tests),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_next_attempt_clamped),
		cmocka_unit_test(test_delay_warning),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
