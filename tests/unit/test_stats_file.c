/*
 * test_stats_file.c - unit tests for common/stats_file.c: the one reader
 * of the worker stats files (program filter, dead writers' gauges left
 * out, file names parsed strictly), the key tables' own rules and the
 * writer (round trip, take-over of a dead predecessor's file).
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
#include "metrics_format.h"
#include "route.h"
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

/* check_keys - a key table's rules: every key a valid stats key whose
 * type agrees with the `_total` suffix the readers go by (histogram
 * parts are cumulative counters), a HELP text, a valid metric key when
 * it names one (a histogram's: a bucket, _sum or _count), each key once,
 * found by the readers' lookup. */
static void
check_keys(const char *program, const struct stats_file_key *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct stats_file_key *k = &keys[i];
		size_t len, mlen;

		assert_non_null(k->name);
		len = strlen(k->name);
		assert_true(len > 0 && len <= STATS_FILE_KEY_MAX);
		assert_int_equal(strspn(k->name,
		    "abcdefghijklmnopqrstuvwxyz0123456789_"), len);
		assert_int_equal(k->type != STATS_FILE_GAUGE, len > 6 &&
		    strcmp(k->name + len - 6, "_total") == 0);
		assert_non_null(k->help);
		assert_true(strlen(k->help) > 0);
		if (k->metric != NULL) {
			assert_true(metrics_key_valid(k->metric, &mlen));
			if (k->type == STATS_FILE_HISTOGRAM)
				assert_true(metrics_key_is_bucket(k->metric, NULL) ||
				    strcmp(k->metric + mlen - 4, "_sum") == 0 ||
				    strcmp(k->metric + mlen - 6, "_count") == 0);
		}
		assert_ptr_equal(stats_file_key_find(program, k->name), k);
		for (size_t j = 0; j < i; j++) {
			assert_string_not_equal(keys[j].name, k->name);
			if (k->metric != NULL && keys[j].metric != NULL)
				assert_string_not_equal(keys[j].metric, k->metric);
		}
	}
}

/* test_key_table - both tables keep the rules above; smtpd's keys are
 * exposed as elemta_smtpd_KEY; queued's delivery counters follow
 * route.h's transports in order, its latency buckets' le labels are
 * their bounds, increasing, then +Inf. */
static void
test_key_table(void **state)
{
	char want[160], le[32];

	check_keys("smtpd", stats_file_smtpd_keys, SMTPD_STAT_COUNT);
	check_keys("queued", stats_file_queued_keys, QUEUED_STAT_COUNT);
	for (size_t i = 0; i < SMTPD_STAT_COUNT; i++)
		assert_null(stats_file_smtpd_keys[i].metric);
	assert_null(stats_file_key_find("smtpd", "nonexistent_total"));
	assert_null(stats_file_key_find("policyd", "connections_total"));
	assert_null(stats_file_key_find("queued", "connections_total"));
	for (int t = 0; t < STATS_TRANSPORTS; t++) {
		const struct stats_file_key *k = &stats_file_queued_keys[
		    QUEUED_STAT_RESULTS + QUEUED_RESULT_BOUNCED * STATS_TRANSPORTS +
		    (size_t)t];

		snprintf(want, sizeof(want), "elemta_delivery_recipients_total{"
		    "result=\"bounced\",transport=\"%s\"}",
		    route_transport_name((enum route_transport)t));
		assert_string_equal(k->metric, want);
	}
	assert_int_equal(ROUTE_ERROR + 1, STATS_TRANSPORTS);
	for (size_t b = 0; b <= QUEUED_LATENCY_BUCKETS; b++) {
		const struct stats_file_key *k =
		    &stats_file_queued_keys[QUEUED_STAT_LATENCY_BUCKET + b];

		assert_int_equal(k->type, STATS_FILE_HISTOGRAM);
		if (b == QUEUED_LATENCY_BUCKETS) {
			snprintf(le, sizeof(le), "+Inf");
		} else {
			snprintf(le, sizeof(le), "%g",
			    (double)stats_file_latency_bound_us[b] / 1e6);
			if (b > 0)
				assert_true(stats_file_latency_bound_us[b] >
				    stats_file_latency_bound_us[b - 1]);
		}
		snprintf(want, sizeof(want),
		    "elemta_delivery_latency_seconds_bucket{le=\"%s\"}", le);
		assert_string_equal(k->metric, want);
	}
	assert_string_equal(stats_file_queued_keys[QUEUED_STAT_QUEUE_HOLD].metric,
	    "elemta_delivery_queue_messages{state=\"hold\"}");
}

/* test_writer - the file round trip: what a writer writes the reader
 * reads back; a new writer of the same program and id takes over a dead
 * predecessor's file (its totals carried on, its gauges not, the file
 * renamed so no sum dips or doubles), and leaves other ids' files and
 * live writers' files alone. */
static void
test_writer(void **state)
{
	uint64_t counts[QUEUED_STAT_COUNT] = { 0 };
	struct stats_writer w = { .program = STATS_FILE_QUEUED,
	    .keys = stats_file_queued_keys, .counts = counts,
	    .n = QUEUED_STAT_COUNT };
	struct visit_sums v = { 0 };
	char dir[128], path[256];
	size_t di = QUEUED_STAT_RESULTS + QUEUED_RESULT_DELIVERED *
	    STATS_TRANSPORTS + ROUTE_MAILDIR;

	scratch_make();
	snprintf(dir, sizeof(dir), "%s/stats", scratch_dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s 5\nqueue_active 7\n"
	    "latency_count_total 5\n", stats_file_queued_keys[di].name);
	scratch_write("stats/queued-0-4194305.stats", path);
	scratch_write("stats/queued-1-4194305.stats", "latency_count_total 100\n");
	assert_int_equal(stats_writer_open(&w, scratch_dir, 0), 0);
	assert_int_equal(counts[di], 5);
	assert_int_equal(counts[QUEUED_STAT_LATENCY_COUNT], 5);
	assert_int_equal(counts[QUEUED_STAT_QUEUE_ACTIVE], 0);
	snprintf(path, sizeof(path), "%s/queued-0-4194305.stats", dir);
	assert_int_not_equal(access(path, F_OK), 0);   /* renamed to ours */
	assert_int_equal(access(w.path, F_OK), 0);
	counts[di]++;
	counts[QUEUED_STAT_QUEUE_ACTIVE] = 3;
	assert_true(stats_writer_write(&w));
	assert_int_equal(stats_file_visit(dir, "queued", sum_line, &v), 2);
	/* 6 delivered + 5 latency counts + the other id's 100; 3 active */
	assert_int_equal(v.totals, 111);
	assert_int_equal(v.gauges, 3);
	assert_int_equal(v.lines, QUEUED_STAT_COUNT + 1);
	scratch_remove();
}

/* main - run every test of this module. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stats_visit),
		cmocka_unit_test(test_key_table),
		cmocka_unit_test(test_writer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
