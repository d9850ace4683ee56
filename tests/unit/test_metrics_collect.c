/*
 * test_metrics_collect.c - unit tests for common/metrics_collect.c: the
 * stats files summed with gauges only from live writers and the HELP
 * texts of the key table, histograms recognised in the counter table,
 * metrics_collect with and without a table.
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
#include "config.h"
#include "counter.h"
#include "metrics_collect.h"

/* test_stats_dir - counters summed over every file (dead writers too),
 * gauges only from live ones, foreign names and bad lines skipped. */
static void
test_stats_dir(void **state)
{
	struct metrics_set *set = metrics_set_new();
	struct strbuf out = STRBUF_INIT(0);
	char live[64];
	const char *s;

	scratch_make();
	snprintf(live, sizeof(live), "smtpd-0-%ld.stats", (long)getpid());
	scratch_write(live, "conn_total 3\nopen 2\nBad 1\nx_total -1\n"
	    "y_total 12junk\n");
	/* pid 2^22+1 is above Linux's pid_max default: a dead writer */
	scratch_write("smtpd-1-4194305.stats", "conn_total 4\nopen 9\n");
	scratch_write(".smtpd-1-1.tmp", "conn_total 100\n");
	scratch_write("smtpd-1.stats", "conn_total 100\n");
	scratch_write("smtpd-2-4194305.stats", "messages_queued_total 5\n");
	assert_int_equal(metrics_set_add_stats_dir(set, scratch_dir), 3);
	assert_int_equal(metrics_set_format(set, NULL, &out), 0);
	s = strbuf_cstr(&out);
	assert_non_null(strstr(s, "# TYPE elemta_smtpd_conn_total counter\n"
	    "elemta_smtpd_conn_total 7\n"));
	assert_non_null(strstr(s, "# TYPE elemta_smtpd_open gauge\n"
	    "elemta_smtpd_open 2\n"));
	assert_null(strstr(s, "Bad"));
	/* keys the table does not know get the generic HELP text */
	assert_non_null(strstr(s, "# HELP elemta_smtpd_open Worker statistic"));
	assert_null(strstr(s, "x_total"));
	/* a key of the table: its HELP text */
	assert_non_null(strstr(s, "# HELP elemta_smtpd_messages_queued_total "
	    "Messages answered 250 and stored in the queue.\n"
	    "# TYPE elemta_smtpd_messages_queued_total counter\n"
	    "elemta_smtpd_messages_queued_total 5\n"));
	assert_null(strstr(s, "y_total"));
	strbuf_free(&out);
	metrics_set_free(set);
	scratch_remove();
	set = metrics_set_new();
	assert_int_equal(metrics_set_add_stats_dir(set, "/nonexistent/x"), 0);
	metrics_set_free(set);
}

/* test_queued_stats - elemta-queued's keys become the table's metrics:
 * labelled delivery counters (a dead writer's included), the queue's
 * gauges with a state label (a dead writer's left out), the latency
 * histogram with its buckets, sum in seconds and count. */
static void
test_queued_stats(void **state)
{
	struct metrics_set *set = metrics_set_new();
	struct strbuf out = STRBUF_INIT(0);
	char live[64];
	const char *s;

	scratch_make();
	snprintf(live, sizeof(live), "queued-0-%ld.stats", (long)getpid());
	scratch_write(live, "delivered_maildir_total 2\nbounced_error_total 1\n"
	    "queue_deferred 3\noldest_age_seconds 42\n"
	    "latency_le_0_001_total 0\nlatency_le_0_01_total 1\n"
	    "latency_le_inf_total 2\nlatency_sum_total 1500000\n"
	    "latency_count_total 2\n");
	scratch_write("queued-0-4194305.stats", "delivered_maildir_total 5\n"
	    "queue_deferred 100\n");
	assert_int_equal(metrics_set_add_stats_dir(set, scratch_dir), 2);
	assert_int_equal(metrics_set_format(set, NULL, &out), 0);
	s = strbuf_cstr(&out);
	assert_non_null(strstr(s, "# HELP elemta_delivery_recipients_total "
	    "Recipient delivery attempts by result"));
	assert_non_null(strstr(s, "# TYPE elemta_delivery_recipients_total "
	    "counter\n"));
	assert_non_null(strstr(s, "elemta_delivery_recipients_total{result="
	    "\"delivered\",transport=\"maildir\"} 7\n"));
	assert_non_null(strstr(s, "elemta_delivery_recipients_total{result="
	    "\"bounced\",transport=\"error\"} 1\n"));
	assert_non_null(strstr(s, "# TYPE elemta_delivery_queue_messages "
	    "gauge\nelemta_delivery_queue_messages{state=\"deferred\"} 3\n"));
	assert_non_null(strstr(s, "elemta_delivery_queue_oldest_age_seconds "
	    "42\n"));
	assert_non_null(strstr(s, "# TYPE elemta_delivery_latency_seconds "
	    "histogram\n"));
	assert_non_null(strstr(s, "elemta_delivery_latency_seconds_bucket{le="
	    "\"0.01\"} 1\n"));
	assert_non_null(strstr(s, "elemta_delivery_latency_seconds_bucket{le="
	    "\"+Inf\"} 2\n"));
	assert_non_null(strstr(s, "elemta_delivery_latency_seconds_sum "
	    "1.500000\n"));
	assert_non_null(strstr(s, "elemta_delivery_latency_seconds_count 2\n"));
	assert_null(strstr(s, "elemta_queued_"));
	strbuf_free(&out);
	metrics_set_free(set);
	scratch_remove();
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

	scratch_make();
	assert_int_equal(counter_store_open(scratch_dir, 1 << 20, false, COUNTER_SYNC_SAFE, &cs, &err), 0);
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
	    "%s/run", scratch_dir);
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
	assert_non_null(strstr(s, "# HELP elemta_counters_up 1 when the "
	    "counter table could be read for this exposition.\n"));
	assert_non_null(strstr(s, "# HELP policy_rejected_total Counter a "
	    "plugin added with elemta_metric_add().\n"));
	assert_non_null(strstr(s, "# TYPE elemta_counters_entries gauge\n"));
	counter_store_close(cs);
	strbuf_reset(&out);
	assert_int_equal(metrics_collect(&cfg, NULL, NULL, &out, &err), -1);
	assert_non_null(strstr(strbuf_cstr(&out), "elemta_counters_up 0\n"));
	strbuf_free(&out);
	scratch_remove();
}

/* main - run every test of this module. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stats_dir),
		cmocka_unit_test(test_table_and_collect),
		cmocka_unit_test(test_queued_stats),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
