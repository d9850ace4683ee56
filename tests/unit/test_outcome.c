/*
 * test_outcome.c - per-recipient outcomes (queued/outcome.c): the class
 * of the enhanced code always agrees with the result, the text is one
 * printable line, RFC 3463 syntax is checked exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../queued/outcome.h"

static void
test_class_agrees(void **state)
{
	struct outcome o;

	outcome_set(&o, OUTCOME_PERMFAIL, 550, "5.1.1", "x");
	assert_string_equal(o.enhanced, "5.1.1");
	assert_int_equal(o.code, 550);
	/* A code of another class, a malformed one or none: the default. */
	outcome_set(&o, OUTCOME_TEMPFAIL, 0, "5.1.1", "x");
	assert_string_equal(o.enhanced, "4.0.0");
	outcome_set(&o, OUTCOME_DELIVERED, 250, "2.0", "x");
	assert_string_equal(o.enhanced, "2.0.0");
	outcome_set(&o, OUTCOME_PERMFAIL, 0, NULL, "x");
	assert_string_equal(o.enhanced, "5.0.0");
	outcome_set(&o, OUTCOME_PENDING, 0, "4.4.2", "x");
	assert_string_equal(o.enhanced, "4.4.2");
}

static void
test_text_one_printable_line(void **state)
{
	struct outcome o;
	char big[OUTCOME_TEXT_MAX * 2];

	outcome_set(&o, OUTCOME_TEMPFAIL, 0, NULL, "a\r\nb%s", "\x01\x7f");
	assert_string_equal(o.text, "a  b  ");
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	outcome_set(&o, OUTCOME_TEMPFAIL, 0, NULL, "%s", big);
	assert_int_equal(strlen(o.text), OUTCOME_TEXT_MAX - 1);
}

static void
test_enhanced_syntax(void **state)
{
	assert_true(outcome_enhanced_valid("2.0.0", 0));
	assert_true(outcome_enhanced_valid("5.123.456", 0));
	assert_true(outcome_enhanced_valid("4.7.0 rest", 5));
	assert_false(outcome_enhanced_valid("3.0.0", 0));
	assert_false(outcome_enhanced_valid("5.1234.1", 0));
	assert_false(outcome_enhanced_valid("5..1", 0));
	assert_false(outcome_enhanced_valid("5.1.", 0));
	assert_false(outcome_enhanced_valid("5.1.1.1", 0));
	assert_false(outcome_enhanced_valid("5.a.1", 0));
	assert_false(outcome_enhanced_valid("", 0));
	assert_string_equal(outcome_result_name(OUTCOME_TEMPFAIL), "deferred");
	assert_string_equal(outcome_result_name(OUTCOME_PERMFAIL), "bounced");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_class_agrees),
		cmocka_unit_test(test_text_one_printable_line),
		cmocka_unit_test(test_enhanced_syntax),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
