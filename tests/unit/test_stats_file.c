/*
 * test_stats_file.c - unit tests for common/stats_file.c: the one reader
 * of the worker stats files (program filter, dead writers' gauges left
 * out, file names parsed strictly) and the key table's own rules.
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

#include "scratch.h"
#include "stats_file.h"

/* sum_line - a visitor adding every line's value to one sum per key
 * kind, remembering which programs were seen. */
struct visit_sums {
	uint64_t totals, gauges;
	unsigned lines;
	char programs[64];
};

static void
sum_line(void *arg, const struct stats_file_line *line)
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
dead_line(void *arg, const struct stats_file_line *line)
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

	scratch_make();
	snprintf(live, sizeof(live), "smtpd-0-%ld.stats", (long)getpid());
	scratch_write(live, "a_total 1\nopen 10\n");
	scratch_write("smtpd-1-4194305.stats", "a_total 2\nopen 20\n");
	scratch_write("policyd-0-4194305.stats", "a_total 4\nopen 40\n");
	scratch_write("smtpd-1000000-4194305.stats", "a_total 8\n");
	assert_int_equal(stats_file_visit(scratch_dir, "smtpd", sum_line, &v), 2);
	assert_int_equal(v.totals, 3);
	assert_int_equal(v.gauges, 10);          /* the dead worker's 20 left out */
	assert_string_equal(v.programs, "smtpd ");
	memset(&v, 0, sizeof(v));
	assert_int_equal(stats_file_visit(scratch_dir, NULL, sum_line, &v), 3);
	assert_int_equal(v.totals, 7);
	assert_int_equal(v.gauges, 10);
	/* what smtpd's take-over picks a dead predecessor's file by */
	memset(&dead, 0, sizeof(dead));
	assert_int_equal(stats_file_visit(scratch_dir, "smtpd", dead_line, &dead),
	    2);
	assert_int_equal(dead.lines, 1);         /* its total, no gauge */
	assert_string_equal(dead.file, "smtpd-1-4194305.stats");
	assert_int_equal(dead.id, 1);
	assert_int_equal(dead.pid, 4194305);
	assert_int_equal(dead.value, 2);
	scratch_remove();

	assert_true(stats_file_name_parse("smtpd-12-345.stats", prog,
	    sizeof(prog), &id, &pid));
	assert_string_equal(prog, "smtpd");
	assert_int_equal(id, 12);
	assert_int_equal(pid, 345);
	assert_false(stats_file_name_parse(".smtpd-1-2.tmp", prog,
	    sizeof(prog), &id, &pid));
	assert_false(stats_file_name_parse("smtpd-1-0.stats", prog,
	    sizeof(prog), &id, &pid));
	assert_false(stats_file_name_parse("smtpd--1-2.stats", prog,
	    sizeof(prog), &id, &pid));
	assert_false(stats_file_name_parse("smtpd-1000000-2.stats", prog,
	    sizeof(prog), &id, &pid));
	assert_false(stats_file_name_parse("smtpd-1-2.stats.x", prog,
	    sizeof(prog), &id, &pid));
	assert_false(stats_file_name_parse("verylongprogramname-1-2.stats",
	    prog, 8, &id, &pid));
	assert_true(stats_file_pid_alive((long)getpid()));
	assert_false(stats_file_pid_alive(4194305));
}

/* test_key_table - every key elemta-smtpd writes is a valid stats key
 * whose type agrees with the `_total` suffix the readers go by, has a
 * HELP text, appears once, and is found by the readers' lookup. */
static void
test_key_table(void **state)
{
	for (size_t i = 0; i < SMTPD_STAT_COUNT; i++) {
		const struct stats_file_key *k = &stats_file_smtpd_keys[i];
		size_t len;

		assert_non_null(k->name);
		len = strlen(k->name);
		assert_true(len > 0 && len <= STATS_FILE_KEY_MAX);
		assert_int_equal(strspn(k->name,
		    "abcdefghijklmnopqrstuvwxyz0123456789_"), len);
		assert_int_equal(k->type == STATS_FILE_COUNTER, len > 6 &&
		    strcmp(k->name + len - 6, "_total") == 0);
		assert_non_null(k->help);
		assert_true(strlen(k->help) > 0);
		assert_ptr_equal(stats_file_key_find("smtpd", k->name), k);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(stats_file_smtpd_keys[j].name,
			    k->name);
	}
	assert_null(stats_file_key_find("smtpd", "nonexistent_total"));
	assert_null(stats_file_key_find("policyd", "connections_total"));
}

/* main - run every test of this module. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stats_visit),
		cmocka_unit_test(test_key_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
