/*
 * test_metrics_format.c - unit tests for common/metrics_format.c: one test
 * per promise of metrics_format.h (key grammar, one HELP/TYPE per family
 * with contiguous samples, repeated keys summed, histograms ordered with
 * the microsecond convention, the first type of a family wins, the prefix
 * filter).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "metrics_format.h"

/* format_all - the exposition of set as a malloc'd string. */
static char *
format_all(struct metrics_set *set, const char *prefix)
{
	struct strbuf out = STRBUF_INIT(0);
	char *s;

	assert_int_equal(metrics_set_format(set, prefix, &out), 0);
	s = strdup(strbuf_cstr(&out));
	strbuf_free(&out);
	return s;
}

/* count_of - occurrences of needle in hay. */
static int
count_of(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* test_key_grammar - names, labels, escapes; everything else refused. */
static void
test_key_grammar(void **state)
{
	size_t n;

	assert_true(metrics_key_valid("a_b:c", &n));
	assert_int_equal(n, 5);
	assert_true(metrics_key_valid("x_total{a=\"1\",b=\"q\\\"\\\\\\n\"}", &n));
	assert_int_equal(n, 7);
	assert_true(metrics_key_valid("x{a=\"\"}", NULL));
	assert_true(metrics_key_valid("x{}", NULL));
	assert_false(metrics_key_valid("", NULL));
	assert_false(metrics_key_valid("1x", NULL));
	assert_false(metrics_key_valid("x-y", NULL));
	assert_false(metrics_key_valid("x y", NULL));
	assert_false(metrics_key_valid("x{a=\"1\"", NULL));
	assert_false(metrics_key_valid("x{a=1}", NULL));
	assert_false(metrics_key_valid("x{a=\"1\",a=\"2\"}", NULL));
	assert_false(metrics_key_valid("x{__a=\"1\"}", NULL));
	assert_false(metrics_key_valid("x{a:b=\"1\"}", NULL));
	assert_false(metrics_key_valid("x{a=\"\\t\"}", NULL));
	assert_false(metrics_key_valid("x{a=\"1\"}z", NULL));
	assert_false(metrics_key_valid("x{a=\"1\n\"}", NULL));
}

/* test_families - one HELP and one TYPE per family, samples together,
 * repeated keys summed, invalid keys refused. */
static void
test_families(void **state)
{
	struct metrics_set *set = metrics_set_new();
	char *s;

	assert_int_equal(metrics_set_add(set, "b_total{x=\"1\"}", 1,
	    METRICS_COUNTER, "B."), 0);
	assert_int_equal(metrics_set_add(set, "a_open", 7, METRICS_GAUGE, NULL), 0);
	assert_int_equal(metrics_set_add(set, "b_total{x=\"2\"}", 2,
	    METRICS_COUNTER, NULL), 0);
	assert_int_equal(metrics_set_add(set, "b_total{x=\"1\"}", 10,
	    METRICS_COUNTER, NULL), 0);
	assert_int_equal(metrics_set_add(set, "bad key", 1, METRICS_COUNTER,
	    NULL), -1);
	s = format_all(set, NULL);
	assert_string_equal(s,
	    "# HELP a_open Elemta metric.\n"
	    "# TYPE a_open gauge\n"
	    "a_open 7\n"
	    "# HELP b_total B.\n"
	    "# TYPE b_total counter\n"
	    "b_total{x=\"1\"} 11\n"
	    "b_total{x=\"2\"} 2\n");
	free(s);
	s = format_all(set, "b_");
	assert_int_equal(count_of(s, "a_open"), 0);
	assert_int_equal(count_of(s, "# TYPE b_total counter\n"), 1);
	free(s);
	metrics_set_free(set);
}

/* test_histogram - buckets by bound with +Inf last, then _sum (stored in
 * microseconds, printed in seconds under elemta_*) and _count. */
static void
test_histogram(void **state)
{
	struct metrics_set *set = metrics_set_new();
	static const char *const order[] = {
		"elemta_t_seconds_bucket{le=\"0.5\"} 1\n",
		"elemta_t_seconds_bucket{le=\"2.5\"} 2\n",
		"elemta_t_seconds_bucket{le=\"10\"} 3\n",
		"elemta_t_seconds_bucket{le=\"+Inf\"} 4\n",
		"elemta_t_seconds_sum 1.500001\n",
		"elemta_t_seconds_count 4\n",
	};
	const char *p;
	char *s;

	metrics_set_add(set, "elemta_t_seconds_count", 4, METRICS_HISTOGRAM, NULL);
	metrics_set_add(set, "elemta_t_seconds_bucket{le=\"+Inf\"}", 4,
	    METRICS_HISTOGRAM, NULL);
	metrics_set_add(set, "elemta_t_seconds_bucket{le=\"10\"}", 3,
	    METRICS_HISTOGRAM, NULL);
	metrics_set_add(set, "elemta_t_seconds_sum", 1500001, METRICS_HISTOGRAM,
	    NULL);
	metrics_set_add(set, "elemta_t_seconds_bucket{le=\"0.5\"}", 1,
	    METRICS_HISTOGRAM, NULL);
	metrics_set_add(set, "elemta_t_seconds_bucket{le=\"2.5\"}", 2,
	    METRICS_HISTOGRAM, NULL);
	/* not a histogram sample */
	assert_int_equal(metrics_set_add(set, "elemta_t_seconds_max", 1,
	    METRICS_HISTOGRAM, NULL), -1);
	/* microseconds convention only for elemta_*_seconds_total/_sum */
	metrics_set_add(set, "elemta_x_seconds_total", 2500000, METRICS_COUNTER,
	    NULL);
	metrics_set_add(set, "plugin_seconds_total", 3, METRICS_COUNTER, NULL);
	s = format_all(set, NULL);
	assert_int_equal(count_of(s, "# TYPE elemta_t_seconds histogram\n"), 1);
	p = s;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		const char *q = strstr(p, order[i]);

		assert_non_null(q);
		p = q + strlen(order[i]);
	}
	assert_non_null(strstr(s, "\nelemta_x_seconds_total 2.500000\n"));
	assert_non_null(strstr(s, "\nplugin_seconds_total 3\n"));
	free(s);
	metrics_set_free(set);
}

/* test_type_conflict - a family keeps the type of its first sample. */
static void
test_type_conflict(void **state)
{
	struct metrics_set *set = metrics_set_new();
	char *s;

	metrics_set_add(set, "m{a=\"1\"}", 1, METRICS_COUNTER, NULL);
	metrics_set_add(set, "m{a=\"2\"}", 2, METRICS_GAUGE, NULL);
	metrics_set_add(set, "m{a=\"1\"}", 5, METRICS_GAUGE, NULL);
	s = format_all(set, NULL);
	assert_string_equal(s, "# HELP m Elemta metric.\n# TYPE m counter\n"
	    "m{a=\"1\"} 1\n");
	free(s);
	metrics_set_free(set);
}

/* main - run every test of this module. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_grammar),
		cmocka_unit_test(test_families),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_type_conflict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
