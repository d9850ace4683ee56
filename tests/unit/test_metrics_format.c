/*
 * test_metrics_format.c - unit tests for common/metrics_format.c: one test
 * per promise of metrics_format.h (key grammar, one HELP/TYPE per family
 * with contiguous samples, repeated keys summed, histograms ordered with
 * the microsecond convention, the first type of a family wins, stats
 * files summed with gauges only from live writers, histograms recognised
 * in the counter table, the prefix filter, metrics_collect).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "counter.h"
#include "metrics_format.h"

static char tmpdir[64];

/* mk_tmpdir - a fresh scratch directory. */
static void
mk_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/elemta-mf-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
}

/* rm_tmpdir - remove it (shallow: the tests create flat trees). */
static void
rm_tmpdir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	assert_int_equal(system(cmd), 0);
}

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

/* write_file - dir/name with text. */
static void
write_file(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* test_stats_dir - counters summed over every file (dead writers too),
 * gauges only from live ones, foreign names and bad lines skipped. */
static void
test_stats_dir(void **state)
{
	struct metrics_set *set = metrics_set_new();
	char live[64];
	char *s;

	mk_tmpdir();
	snprintf(live, sizeof(live), "smtpd-0-%ld.stats", (long)getpid());
	write_file(live, "conn_total 3\nopen 2\nBad 1\nx_total -1\n"
	    "y_total 12junk\n");
	/* pid 2^22+1 is above Linux's pid_max default: a dead writer */
	write_file("smtpd-1-4194305.stats", "conn_total 4\nopen 9\n");
	write_file(".smtpd-1-1.tmp", "conn_total 100\n");
	write_file("smtpd-1.stats", "conn_total 100\n");
	assert_int_equal(metrics_set_add_stats_dir(set, tmpdir), 2);
	s = format_all(set, NULL);
	assert_non_null(strstr(s, "# TYPE elemta_smtpd_conn_total counter\n"
	    "elemta_smtpd_conn_total 7\n"));
	assert_non_null(strstr(s, "# TYPE elemta_smtpd_open gauge\n"
	    "elemta_smtpd_open 2\n"));
	assert_null(strstr(s, "Bad"));
	assert_null(strstr(s, "x_total"));
	assert_null(strstr(s, "y_total"));
	free(s);
	metrics_set_free(set);
	rm_tmpdir();
	set = metrics_set_new();
	assert_int_equal(metrics_set_add_stats_dir(set, "/nonexistent/x"), 0);
	metrics_set_free(set);
}

/* sum_line - a visitor adding every line's value to one sum per key
 * kind, remembering which programs were seen. */
struct visit_sums {
	uint64_t totals, gauges;
	unsigned lines;
	char programs[64];
};

static void
sum_line(void *arg, const struct metrics_stats_line *line)
{
	struct visit_sums *v = arg;

	if (line->total)
		v->totals += line->value;
	else
		v->gauges += line->value;
	v->lines++;
	if (strstr(v->programs, line->program) == NULL &&
	    strlen(v->programs) + strlen(line->program) + 2 < sizeof(v->programs)) {
		strcat(v->programs, line->program);
		strcat(v->programs, " ");
	}
}

/* dead_line - a visitor keeping the (last) line of a dead writer, with
 * the file facts the visit hands over. */
struct visit_dead {
	char file[64];
	unsigned id, lines;
	long pid;
	uint64_t value;
};

static void
dead_line(void *arg, const struct metrics_stats_line *line)
{
	struct visit_dead *d = arg;

	if (line->alive)
		return;
	snprintf(d->file, sizeof(d->file), "%s", line->file);
	d->id = line->id;
	d->pid = line->pid;
	d->value = line->value;
	d->lines++;
}

/* test_stats_visit - the one reader that elemta-metricsd, elemtactl
 * status and smtpd's take-over share: a program filter; gauges of dead
 * writers left out; a line names its file, worker id and writer pid and
 * says whether it runs; names that are not PROGRAM-ID-PID.stats (ids past
 * the maximum, temporary files) ignored. */
static void
test_stats_visit(void **state)
{
	struct visit_sums v = { 0 };
	struct visit_dead dead;
	char live[64], prog[16];
	unsigned id;
	long pid;

	mk_tmpdir();
	snprintf(live, sizeof(live), "smtpd-0-%ld.stats", (long)getpid());
	write_file(live, "a_total 1\nopen 10\n");
	write_file("smtpd-1-4194305.stats", "a_total 2\nopen 20\n");
	write_file("policyd-0-4194305.stats", "a_total 4\nopen 40\n");
	write_file("smtpd-1000000-4194305.stats", "a_total 8\n");
	assert_int_equal(metrics_stats_visit(tmpdir, "smtpd", sum_line, &v), 2);
	assert_int_equal(v.totals, 3);
	assert_int_equal(v.gauges, 10);          /* the dead worker's 20 left out */
	assert_string_equal(v.programs, "smtpd ");
	memset(&v, 0, sizeof(v));
	assert_int_equal(metrics_stats_visit(tmpdir, NULL, sum_line, &v), 3);
	assert_int_equal(v.totals, 7);
	assert_int_equal(v.gauges, 10);
	/* what smtpd's take-over picks a dead predecessor's file by */
	memset(&dead, 0, sizeof(dead));
	assert_int_equal(metrics_stats_visit(tmpdir, "smtpd", dead_line, &dead),
	    2);
	assert_int_equal(dead.lines, 1);         /* its total, no gauge */
	assert_string_equal(dead.file, "smtpd-1-4194305.stats");
	assert_int_equal(dead.id, 1);
	assert_int_equal(dead.pid, 4194305);
	assert_int_equal(dead.value, 2);
	rm_tmpdir();

	assert_true(metrics_stats_name_parse("smtpd-12-345.stats", prog,
	    sizeof(prog), &id, &pid));
	assert_string_equal(prog, "smtpd");
	assert_int_equal(id, 12);
	assert_int_equal(pid, 345);
	assert_false(metrics_stats_name_parse(".smtpd-1-2.tmp", prog,
	    sizeof(prog), &id, &pid));
	assert_false(metrics_stats_name_parse("smtpd-1-0.stats", prog,
	    sizeof(prog), &id, &pid));
	assert_false(metrics_stats_name_parse("smtpd--1-2.stats", prog,
	    sizeof(prog), &id, &pid));
	assert_false(metrics_stats_name_parse("smtpd-1000000-2.stats", prog,
	    sizeof(prog), &id, &pid));
	assert_false(metrics_stats_name_parse("smtpd-1-2.stats.x", prog,
	    sizeof(prog), &id, &pid));
	assert_false(metrics_stats_name_parse("verylongprogramname-1-2.stats",
	    prog, 8, &id, &pid));
	assert_true(metrics_stats_pid_alive((long)getpid()));
	assert_false(metrics_stats_pid_alive(4194305));
}

/* test_table_and_collect - the table's metric keys as counters, a
 * _bucket/_sum/_count triple as a histogram; metrics_collect adds the
 * table size and elemta_counters_up, or up 0 without a table. */
static void
test_table_and_collect(void **state)
{
	struct counter_store *cs;
	struct config cfg;
	struct strbuf out = STRBUF_INIT(0);
	struct error err;
	const char *s;

	mk_tmpdir();
	assert_int_equal(counter_store_open(tmpdir, 1 << 20, false, COUNTER_SYNC_SAFE, &cs, &err), 0);
	assert_int_equal(counter_metric_add(cs, "policy_rejected_total", 2, &err), 0);
	assert_int_equal(counter_metric_add(cs,
	    "elemta_d_seconds_bucket{le=\"0.1\"}", 1, &err), 0);
	assert_int_equal(counter_metric_add(cs,
	    "elemta_d_seconds_bucket{le=\"+Inf\"}", 2, &err), 0);
	assert_int_equal(counter_metric_add(cs, "elemta_d_seconds_sum", 300000,
	    &err), 0);
	assert_int_equal(counter_metric_add(cs, "elemta_d_seconds_count", 2,
	    &err), 0);
	assert_int_equal(counter_metric_add(cs, "lonely_sum", 5, &err), 0);
	/* prefixes of a histogram's name are not histograms, nor longer names */
	assert_int_equal(counter_metric_add(cs, "elemta_d_sum", 1, &err), 0);
	assert_int_equal(counter_metric_add(cs, "elemta_d_seconds_x_count", 1,
	    &err), 0);
	/* many histograms: the classification is by sorted lookup */
	for (int i = 0; i < 200; i++) {
		char k[64];

		snprintf(k, sizeof(k), "h%03d_bucket{le=\"1\"}", i);
		assert_int_equal(counter_metric_add(cs, k, 1, &err), 0);
		snprintf(k, sizeof(k), "h%03d_count", i);
		assert_int_equal(counter_metric_add(cs, k, 1, &err), 0);
	}
	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.server.runtime_dir, sizeof(cfg.server.runtime_dir),
	    "%s/run", tmpdir);
	assert_int_equal(metrics_collect(&cfg, cs, NULL, &out, &err), 0);
	s = strbuf_cstr(&out);
	assert_non_null(strstr(s, "# TYPE policy_rejected_total counter\n"
	    "policy_rejected_total 2\n"));
	assert_non_null(strstr(s, "# TYPE elemta_d_seconds histogram\n"));
	assert_non_null(strstr(s, "elemta_d_seconds_sum 0.300000\n"));
	assert_non_null(strstr(s, "# TYPE lonely_sum counter\n"));
	assert_non_null(strstr(s, "# TYPE elemta_d_sum counter\n"));
	assert_non_null(strstr(s, "# TYPE elemta_d_seconds_x_count counter\n"));
	assert_non_null(strstr(s, "# TYPE h000 histogram\n"));
	assert_non_null(strstr(s, "# TYPE h199 histogram\n"));
	assert_non_null(strstr(s, "h137_count 1\n"));
	assert_null(strstr(s, "# TYPE h137_count"));
	assert_non_null(strstr(s, "elemta_counters_up 1\n"));
	assert_non_null(strstr(s, "# TYPE elemta_counters_entries gauge\n"));
	counter_store_close(cs);
	strbuf_reset(&out);
	assert_int_equal(metrics_collect(&cfg, NULL, NULL, &out, &err), -1);
	assert_non_null(strstr(strbuf_cstr(&out), "elemta_counters_up 0\n"));
	strbuf_free(&out);
	rm_tmpdir();
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
		cmocka_unit_test(test_stats_dir),
		cmocka_unit_test(test_stats_visit),
		cmocka_unit_test(test_table_and_collect),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
