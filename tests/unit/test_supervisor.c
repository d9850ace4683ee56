/*
 * test_supervisor.c - unit tests for the pure parts of elemtactl
 * (tools/elemtactl/): the restart backoff and the worker state machine
 * (workers.c), the status and reload-result file formats and the
 * pid-file lock (runtime.c), argument parsing (args.c), the reload's
 * socket take-over (sockets.c), the inherited descriptor layout
 * (spawn.c), directory creation and spool tmp/ cleaning (dirs.c), the
 * worker access check of privs.c and the summing of the smtpd stats files
 * for status (control.c).
 *
 * Linked with libelemta-ctl.a (tools/elemtactl minus main.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "../../tools/elemtactl/elemtactl.h"

/* ==== helpers ==== */

/* make_tmpdir - a fresh directory under /tmp (caller removes it). */
static void make_tmpdir(char *buf, size_t size)
{
	snprintf(buf, size, "/tmp/test_supervisor.XXXXXX");
	assert_non_null(mkdtemp(buf));
}

/* remove_tree - rm -r of a test directory, through ctl_dir_clean. */
static void remove_tree(const char *dir)
{
	long n;

	ctl_dir_clean(dir, &n, NULL);
	rmdir(dir);
}

/* write_file - create path with text. */
static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* parse - ctl_args_parse of a NULL-terminated word list. */
static int parse(struct ctl_args *a, struct error *err, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = "elemtactl";
	va_start(ap, err);
	for (char *w = va_arg(ap, char *); w; w = va_arg(ap, char *))
		argv[argc++] = w;
	va_end(ap);
	argv[argc] = NULL;
	return ctl_args_parse(argc, argv, a, err);
}

/* ==== workers.c ==== */

/* test_backoff_doubles_to_cap - 100 ms, doubling, capped at 30 s. */
static void test_backoff_doubles_to_cap(void **state)
{
	assert_int_equal(ctl_backoff_delay_ms(0), 0);
	assert_int_equal(ctl_backoff_delay_ms(1), 100);
	assert_int_equal(ctl_backoff_delay_ms(2), 200);
	assert_int_equal(ctl_backoff_delay_ms(3), 400);
	assert_int_equal(ctl_backoff_delay_ms(9), 25600);
	assert_int_equal(ctl_backoff_delay_ms(10), 30000);
	assert_int_equal(ctl_backoff_delay_ms(11), 30000);
	assert_int_equal(ctl_backoff_delay_ms(UINT32_MAX), 30000);
}

/* test_crash_loop_grows - consecutive quick exits double the delay. */
static void test_crash_loop_grows(void **state)
{
	struct ctl_worker w = { .started_ms = 1000 };

	assert_int_equal(ctl_worker_crashed(&w, 1500), 100);
	assert_int_equal(w.restart_at_ms, 1600);
	w.started_ms = 1600;
	assert_int_equal(ctl_worker_crashed(&w, 1700), 200);
	w.started_ms = 1900;
	assert_int_equal(ctl_worker_crashed(&w, 2000), 400);
	assert_int_equal(w.crashes, 3);
	for (int i = 0; i < 50; i++)
		ctl_worker_crashed(&w, 3000);
	assert_int_equal(ctl_worker_crashed(&w, 3000), 30000);
}

/* test_crash_after_long_life_resets - a worker that ran over 60 s
 * restarts after the first, short delay again. */
static void test_crash_after_long_life_resets(void **state)
{
	struct ctl_worker w = { .crashes = 7, .started_ms = 10000 };

	assert_int_equal(ctl_worker_crashed(&w, 10000 + 60001), 100);
	assert_int_equal(w.crashes, 1);
	/* exactly 60 s is still a crash loop */
	w.crashes = 3;
	w.started_ms = 0;
	assert_int_equal(ctl_worker_crashed(&w, 60000), 800);
}

/* test_state_names - the names written to the status file. */
static void test_state_names(void **state)
{
	assert_string_equal(ctl_worker_state_name(CTL_WORKER_RUNNING), "running");
	assert_string_equal(ctl_worker_state_name(CTL_WORKER_RESTARTING),
	    "restarting");
	assert_string_equal(ctl_worker_state_name(CTL_WORKER_STOPPING),
	    "stopping");
	assert_string_equal(ctl_worker_state_name(CTL_WORKER_STOPPED), "stopped");
	assert_string_equal(ctl_worker_kind_name(CTL_KIND_SMTPD), "smtpd");
	assert_string_equal(ctl_worker_kind_name(CTL_KIND_POLICYD), "policyd");
}

/* test_state_transitions - the documented path is allowed. */
static void test_state_transitions(void **state)
{
	struct ctl_worker w = { .state = CTL_WORKER_STOPPED };

	ctl_worker_enter_state(&w, CTL_WORKER_RUNNING);
	ctl_worker_enter_state(&w, CTL_WORKER_RESTARTING);
	ctl_worker_enter_state(&w, CTL_WORKER_RESTARTING);
	ctl_worker_enter_state(&w, CTL_WORKER_RUNNING);
	ctl_worker_enter_state(&w, CTL_WORKER_STOPPING);
	ctl_worker_enter_state(&w, CTL_WORKER_STOPPED);
	assert_int_equal(w.state, CTL_WORKER_STOPPED);
	/* reload: an old policyd retires, then is stopped or exits */
	ctl_worker_enter_state(&w, CTL_WORKER_RUNNING);
	ctl_worker_enter_state(&w, CTL_WORKER_RETIRING);
	ctl_worker_enter_state(&w, CTL_WORKER_STOPPING);
	ctl_worker_enter_state(&w, CTL_WORKER_STOPPED);
	ctl_worker_enter_state(&w, CTL_WORKER_RUNNING);
	ctl_worker_enter_state(&w, CTL_WORKER_RETIRING);
	ctl_worker_enter_state(&w, CTL_WORKER_STOPPED);
	assert_string_equal(ctl_worker_state_name(CTL_WORKER_RETIRING),
	    "retiring");
}

/* test_retiring_never_restarts - a retiring worker cannot go back to
 * running or restarting: that is a broken invariant. */
static void test_retiring_never_restarts(void **state)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct ctl_worker w = { .state = CTL_WORKER_RETIRING };

		log_init("test", true, LOG_LEVEL_ERR);
		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(3);
		ctl_worker_enter_state(&w, CTL_WORKER_RESTARTING);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
}

/* test_state_impossible_is_fatal - STOPPED -> STOPPING breaks an
 * invariant: the process exits (checked in a child). */
static void test_state_impossible_is_fatal(void **state)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct ctl_worker w = { .state = CTL_WORKER_STOPPED };

		log_init("test", true, LOG_LEVEL_ERR);
		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(3);
		ctl_worker_enter_state(&w, CTL_WORKER_STOPPING);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
}

/* test_exit_describe - the words of the worker exit log line. */
static void test_exit_describe(void **state)
{
	char buf[96];

	assert_string_equal(ctl_exit_describe(W_EXITCODE(1, 0), buf, sizeof(buf)),
	    "exited with status 1");
	assert_string_equal(ctl_exit_describe(W_EXITCODE(0, 0), buf, sizeof(buf)),
	    "exited with status 0");
	assert_string_equal(ctl_exit_describe(W_EXITCODE(0, 9), buf, sizeof(buf)),
	    "killed by signal 9");
	assert_string_equal(ctl_exit_describe(W_EXITCODE(0, 11) | 0x80, buf,
	    sizeof(buf)), "killed by signal 11 (core dumped)");
}

/* ==== runtime.c: status file ==== */

/* test_status_from_workers - a slot without a process shows pid 0. */
static void test_status_from_workers(void **state)
{
	struct ctl_worker w[3] = {
		{ .kind = CTL_KIND_POLICYD, .id = 0, .state = CTL_WORKER_RUNNING,
		  .pid = 100, .started_unix = 1764201600, .restarts = 0,
		  .generation = 2 },
		{ .kind = CTL_KIND_SMTPD, .id = 1, .state = CTL_WORKER_RESTARTING,
		  .pid = 0, .started_unix = 1764201000, .restarts = 3,
		  .generation = 2 },
		{ .kind = CTL_KIND_POLICYD, .id = 0, .state = CTL_WORKER_RETIRING,
		  .pid = 90, .started_unix = 1764200000, .restarts = 1,
		  .generation = 1 },
	};
	struct ctl_status st;
	struct strbuf sb = STRBUF_INIT(0);

	ctl_status_from_workers(&st, 42, 1764200000, 2, w, 3);
	assert_int_equal(ctl_status_format(&st, &sb), 0);
	assert_string_equal(strbuf_cstr(&sb),
	    "elemtactl 42 1764200000 2\n"
	    "policyd 0 100 running 1764201600 0 2\n"
	    "smtpd 1 0 restarting 0 3 2\n"
	    "policyd 0 90 retiring 1764200000 1 1\n");
	ctl_status_free(&st);
	strbuf_free(&sb);
}

/* test_status_roundtrip - parse(format(x)) == x. */
static void test_status_roundtrip(void **state)
{
	const char *text = "elemtactl 4242 1764201600 3\n"
	    "policyd 0 4243 running 1764201601 0 3\n"
	    "smtpd 1 0 restarting 0 7 3\n";
	struct ctl_status st;
	struct strbuf sb = STRBUF_INIT(0);
	struct error err;

	assert_int_equal(ctl_status_parse(text, strlen(text), &st, &err), 0);
	assert_int_equal(st.pid, 4242);
	assert_int_equal(st.started, 1764201600);
	assert_int_equal(st.count, 2);
	assert_string_equal(st.workers[0].kind, "policyd");
	assert_int_equal(st.workers[0].pid, 4243);
	assert_string_equal(st.workers[1].state, "restarting");
	assert_int_equal(st.workers[1].id, 1);
	assert_int_equal(st.workers[1].restarts, 7);
	assert_int_equal(st.workers[1].generation, 3);
	assert_int_equal(st.generation, 3);
	assert_int_equal(ctl_status_format(&st, &sb), 0);
	assert_string_equal(strbuf_cstr(&sb), text);
	ctl_status_free(&st);
	strbuf_free(&sb);
}

/* test_status_parse_old_format - a file without generations (written by
 * an older elemtactl) still reads, generation 0. */
static void test_status_parse_old_format(void **state)
{
	const char *text = "elemtactl 4242 1764201600\n"
	    "smtpd 1 77 running 1764201601 2\n";
	struct ctl_status st;
	struct error err;

	assert_int_equal(ctl_status_parse(text, strlen(text), &st, &err), 0);
	assert_int_equal(st.generation, 0);
	assert_int_equal(st.count, 1);
	assert_int_equal(st.workers[0].pid, 77);
	assert_int_equal(st.workers[0].generation, 0);
	ctl_status_free(&st);
}

/* test_status_parse_rejects - malformed files are errors, not guesses. */
static void test_status_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"elemtactl\n",
		"elemtactl 0 1\n",                       /* pid 0 */
		"supervisor 12 1\n",
		"elemtactl 12 1\nsmtpd 0 1 running 1\n",  /* 5 fields */
		"elemtactl 12 1\nsmtpd 0 1 running 1 0 x\n",
		"elemtactl 12 1\nsmtpd 0 1 running 1 0 1 1\n",  /* 8 fields */
		"elemtactl 12 1 x\n",
		"elemtactl 12 1 1 1\n",
		"elemtactl 12 1\nsmtpd x 1 running 1 0\n",
		"elemtactl 12 1\nsmtpd 0 -1 running 1 0\n",
		"elemtactl 12 1\nsmtpd 0 1 running 1 0x\n",
		"elemtactl 12 1\nsmtpdsmtpdsmtpdsmtpd 0 1 running 1 0\n",
	};
	struct ctl_status st;
	struct error err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ctl_status_parse(bad[i], strlen(bad[i]), &st, &err) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_null(st.workers);
	}
}

/* test_status_write_read - the file round-trips and is replaced whole. */
static void test_status_write_read(void **state)
{
	char dir[64];
	struct ctl_status st = { .pid = 7, .started = 99 }, got;
	struct ctl_status_worker w = { "smtpd", 0, 8, "running", 100, 1, 1 };
	struct error err;

	make_tmpdir(dir, sizeof(dir));
	st.workers = &w;
	st.count = 1;
	assert_int_equal(ctl_status_write(dir, &st, &err), 0);
	assert_int_equal(ctl_status_read(dir, &got, &err), 0);
	assert_int_equal(got.pid, 7);
	assert_int_equal(got.count, 1);
	assert_int_equal(got.workers[0].pid, 8);
	ctl_status_free(&got);
	st.count = 0;
	assert_int_equal(ctl_status_write(dir, &st, &err), 0);
	assert_int_equal(ctl_status_read(dir, &got, &err), 0);
	assert_int_equal(got.count, 0);
	ctl_status_remove(dir);
	assert_int_equal(ctl_status_read(dir, &got, &err), -1);
	remove_tree(dir);
}

/* ==== runtime.c: the reload-result file ==== */

/* test_reload_result_roundtrip - what the supervisor writes, reload
 * reads: outcome, sequence, generation and every error line. */
static void test_reload_result_roundtrip(void **state)
{
	struct ctl_reload_result r = { .pid = 4242, .seq = 7, .ok = false,
	    .generation = 3 }, got;
	struct strbuf sb = STRBUF_INIT(0);
	struct error err;
	char dir[64];

	ctl_reload_result_add(&r, "/x/elemta.yaml:4:12: key 'server.workers': "
	    "bad");
	ctl_reload_result_add(&r, "two\nlines");
	assert_int_equal(ctl_reload_result_format(&r, &sb), 0);
	assert_string_equal(strbuf_cstr(&sb), "elemtactl 4242 7\nresult failed\n"
	    "generation 3\nerror /x/elemta.yaml:4:12: key 'server.workers': bad\n"
	    "error two lines\n");
	make_tmpdir(dir, sizeof(dir));
	assert_int_equal(ctl_reload_result_read(dir, &got, &err), 0);
	assert_int_equal(ctl_reload_result_write(dir, &r, &err), 0);
	assert_int_equal(ctl_reload_result_read(dir, &got, &err), 1);
	assert_int_equal(got.pid, 4242);
	assert_int_equal(got.seq, 7);
	assert_false(got.ok);
	assert_int_equal(got.generation, 3);
	assert_int_equal(got.error_count, 2);
	assert_string_equal(got.errors[1], "two lines");
	ctl_reload_result_free(&got);
	ctl_reload_result_free(&r);
	r.ok = true;
	r.seq = 8;
	assert_int_equal(ctl_reload_result_write(dir, &r, &err), 0);
	assert_int_equal(ctl_reload_result_read(dir, &got, &err), 1);
	assert_true(got.ok);
	assert_int_equal(got.error_count, 0);
	ctl_reload_result_remove(dir);
	assert_int_equal(ctl_reload_result_read(dir, &got, &err), 0);
	strbuf_free(&sb);
	remove_tree(dir);
}

/* test_reload_result_rejects - a malformed file is an error. */
static void test_reload_result_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"elemtactl 1 2\n",                          /* no result */
		"elemtactl 0 2\nresult ok\n",
		"elemtactl 1 2\nresult maybe\n",
		"elemtactl 1 2\nresult ok\nsurprise\n",
		"supervisor 1 2\nresult ok\n",
	};
	struct ctl_reload_result r;
	struct error err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ctl_reload_result_parse(bad[i], strlen(bad[i]), &r, &err) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_null(r.errors);
	}
}

/* test_stats_read - status adds up the smtpd workers' stats files per
 * key with the same reader as elemta-metricsd (stats_file_visit):
 * totals of every file, gauges of running workers only; other files and
 * malformed lines skipped; no files is not an error. */
static void test_stats_read(void **state)
{
	struct ctl_stats st;
	char dir[64], path[160];

	make_tmpdir(dir, sizeof(dir));
	ctl_stats_read(dir, &st);
	assert_int_equal(st.files, 0);
	assert_int_equal(st.count, 0);
	snprintf(path, sizeof(path), "%s/stats", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/stats/smtpd-0-%ld.stats", dir,
	    (long)getpid());
	write_file(path, "sessions_open 2\nmessages_queued_total 10\n"
	    "bad line\nmessages_refused_total x\nweird$key 3\n");
	snprintf(path, sizeof(path), "%s/stats/smtpd-1-%ld.stats", dir,
	    (long)getppid());
	/* a key longer than 48 bytes (up to STATS_FILE_KEY_MAX) counts in
	 * status as in the metrics */
	write_file(path, "messages_queued_total 5\r\nsessions_open 1\n"
	    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk_total 7");
	/* a worker that is gone: its total counts, its gauge does not */
	snprintf(path, sizeof(path), "%s/stats/smtpd-2-4194305.stats", dir);
	write_file(path, "messages_queued_total 100\nsessions_open 50\n");
	snprintf(path, sizeof(path), "%s/stats/policyd-0-%ld.stats", dir,
	    (long)getpid());
	write_file(path, "sessions_open 1000\n");
	snprintf(path, sizeof(path), "%s/stats/status", dir);
	write_file(path, "sessions_open 100\n");
	snprintf(path, sizeof(path), "%s/smtpd-9-%ld.stats", dir,
	    (long)getpid());                           /* not in stats/ */
	write_file(path, "sessions_open 100\n");
	ctl_stats_read(dir, &st);
	assert_int_equal(st.files, 3);
	assert_int_equal(st.count, 3);
	for (size_t i = 0; i < st.count; i++) {
		if (strcmp(st.key[i], "sessions_open") == 0)
			assert_int_equal(st.value[i], 3);
		else if (strcmp(st.key[i], "messages_queued_total") == 0)
			assert_int_equal(st.value[i], 115);
		else if (strcmp(st.key[i], "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk_total") == 0)
			assert_int_equal(st.value[i], 7);
		else
			fail_msg("unexpected key %s", st.key[i]);
	}
	remove_tree(dir);
}

/* test_format_duration - status's uptime column. */
static void test_format_duration(void **state)
{
	char b[32];

	assert_string_equal(ctl_format_duration(-5, b, sizeof(b)), "0s");
	assert_string_equal(ctl_format_duration(0, b, sizeof(b)), "0s");
	assert_string_equal(ctl_format_duration(59, b, sizeof(b)), "59s");
	assert_string_equal(ctl_format_duration(60, b, sizeof(b)), "1m");
	assert_string_equal(ctl_format_duration(300, b, sizeof(b)), "5m");
	assert_string_equal(ctl_format_duration(3700, b, sizeof(b)), "1h 1m");
	assert_string_equal(ctl_format_duration(90000, b, sizeof(b)), "1d 1h");
}

/* ==== runtime.c: the lock ==== */

/* test_lock_exclusive - a second acquirer sees the holder's pid; probe
 * agrees; after release nothing is running and the file is gone. */
static void test_lock_exclusive(void **state)
{
	char dir[64], path[128];
	struct ctl_lock a, b;
	struct error err;
	pid_t holder;

	make_tmpdir(dir, sizeof(dir));
	assert_int_equal(ctl_lock_probe(dir, &holder, &err), 0);
	assert_int_equal(ctl_lock_acquire(dir, &a, &holder, &err), 0);
	assert_int_equal(ctl_lock_write_pid(&a, 12345, &err), 0);
	assert_int_equal(ctl_lock_acquire(dir, &b, &holder, &err), 1);
	assert_int_equal(holder, 12345);
	assert_int_equal(ctl_lock_probe(dir, &holder, &err), 1);
	assert_int_equal(holder, 12345);
	ctl_lock_release(&a);
	snprintf(path, sizeof(path), "%s/%s", dir, CTL_PID_FILE);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(ctl_lock_probe(dir, &holder, &err), 0);
	remove_tree(dir);
}

/* test_lock_stale_file - a pid file nobody locks means not running,
 * and start takes it over. */
static void test_lock_stale_file(void **state)
{
	char dir[64], path[128];
	struct ctl_lock a;
	struct error err;
	pid_t holder;

	make_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, CTL_PID_FILE);
	write_file(path, "999999\n");
	assert_int_equal(ctl_lock_probe(dir, &holder, &err), 0);
	assert_int_equal(ctl_lock_acquire(dir, &a, &holder, &err), 0);
	ctl_lock_release(&a);
	remove_tree(dir);
}

/* ==== args.c ==== */

/* test_args_config_anywhere - -c before or after the command. */
static void test_args_config_anywhere(void **state)
{
	struct ctl_args a;
	struct error err;

	assert_int_equal(parse(&a, &err, "-c", "x.yaml", "start", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_START);
	assert_string_equal(a.config_file, "x.yaml");
	assert_false(a.foreground);
	assert_int_equal(parse(&a, &err, "start", "--foreground", "-c", "y.yaml",
	    NULL), 0);
	assert_true(a.foreground);
	assert_string_equal(a.config_file, "y.yaml");
	assert_int_equal(parse(&a, &err, "status", "--config=z.yaml", NULL), 0);
	assert_string_equal(a.config_file, "z.yaml");
	assert_int_equal(parse(&a, &err, "-cw.yaml", "stop", NULL), 0);
	assert_string_equal(a.config_file, "w.yaml");
	assert_int_equal(a.command, CTL_CMD_STOP);
	assert_int_equal(parse(&a, &err, "status", NULL), 0);
	assert_string_equal(a.config_file, CONFIG_DEFAULT_FILE);
}

/* test_args_commands - every command and its options. */
static void test_args_commands(void **state)
{
	struct ctl_args a;
	struct error err;

	assert_int_equal(parse(&a, &err, "check-config", "-v", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_CHECK_CONFIG);
	assert_true(a.verbose);
	assert_int_equal(parse(&a, &err, "reload", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_RELOAD);
	assert_int_equal(parse(&a, &err, "test-plugin", "policy", "--phase",
	    "rcpt", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_TEST_PLUGIN);
	assert_int_equal(a.rest_count, 3);
	assert_string_equal(a.rest[0], "policy");
	assert_string_equal(a.rest[2], "rcpt");
	assert_int_equal(parse(&a, &err, "status", "--json", NULL), 0);
	assert_true(a.json);
	assert_int_equal(parse(&a, &err, "--help", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_HELP);
	assert_false(a.command_help);
	/* COMMAND --help: that command's usage */
	assert_int_equal(parse(&a, &err, "start", "-h", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_START);
	assert_true(a.command_help);
	assert_non_null(strstr(ctl_command_usage(a.command), "--foreground"));
	assert_int_equal(parse(&a, &err, "reload", "--help", NULL), 0);
	assert_true(a.command_help);
	/* --version stands alone, like --help; -c before it is harmless */
	assert_int_equal(parse(&a, &err, "-c", "x.yaml", "--version", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_VERSION);
	assert_int_equal(parse(&a, &err, "start", "--version", NULL), -1);
	/* check-config --settings: the table's names, for the docs test */
	assert_int_equal(parse(&a, &err, "check-config", "--settings", NULL), 0);
	assert_true(a.settings);
	assert_false(a.verbose);
}

/* test_args_queue - queue [list [--json] | VERB [ID]]: at most two words,
 * --json and -c anywhere after it. */
static void test_args_queue(void **state)
{
	struct ctl_args a;
	struct error err;

	assert_int_equal(parse(&a, &err, "queue", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_QUEUE);
	assert_int_equal(a.rest_count, 0);
	assert_int_equal(parse(&a, &err, "queue", "list", "--json", "-c",
	    "q.yaml", NULL), 0);
	assert_true(a.json);
	assert_string_equal(a.config_file, "q.yaml");
	assert_int_equal(a.rest_count, 1);
	assert_string_equal(a.rest[0], "list");
	assert_int_equal(parse(&a, &err, "queue", "delete", "0123ABCD", NULL), 0);
	assert_int_equal(a.rest_count, 2);
	assert_string_equal(a.rest[1], "0123ABCD");
	assert_int_equal(parse(&a, &err, "queue", "hold", "A", "B", NULL), -1);
	assert_int_equal(parse(&a, &err, "queue", "--force", NULL), -1);
	assert_int_equal(parse(&a, &err, "queue", "--help", NULL), 0);
	assert_true(a.command_help);
	assert_non_null(strstr(ctl_command_usage(CTL_CMD_QUEUE), "release ID"));
}

/* test_args_test_plugin_owns_its_options - after test-plugin, --config,
 * -c and --help are the plugin's, never elemtactl's; -c before it is. */
static void test_args_test_plugin_owns_its_options(void **state)
{
	struct ctl_args a;
	struct error err;

	assert_int_equal(parse(&a, &err, "-c", "e.yaml", "test-plugin", "x.so",
	    "--config", "p.yaml", "-c", "q.yaml", "--rcpt", "a@b", NULL), 0);
	assert_string_equal(a.config_file, "e.yaml");
	assert_int_equal(a.rest_count, 7);
	assert_string_equal(a.rest[0], "x.so");
	assert_string_equal(a.rest[2], "p.yaml");
	assert_string_equal(a.rest[3], "-c");
	assert_int_equal(parse(&a, &err, "test-plugin", "--config=p.yaml",
	    "policy", NULL), 0);
	assert_string_equal(a.config_file, CONFIG_DEFAULT_FILE);
	assert_string_equal(a.rest[0], "--config=p.yaml");
	assert_int_equal(parse(&a, &err, "test-plugin", "--help", NULL), 0);
	assert_int_equal(a.command, CTL_CMD_TEST_PLUGIN);
	assert_false(a.command_help);            /* test-plugin reads it */
	assert_int_equal(a.rest_count, 1);
	assert_string_equal(a.rest[0], "--help");
	assert_non_null(strstr(ctl_command_usage(CTL_CMD_TEST_PLUGIN),
	    "--auth-user"));
}

/* test_args_errors - each mistake is refused with a reason. */
static void test_args_errors(void **state)
{
	struct ctl_args a;
	struct error err;

	assert_int_equal(parse(&a, &err, NULL), -1);
	assert_string_equal(err.text, "no command given");
	assert_int_equal(parse(&a, &err, "bogus", NULL), -1);
	assert_string_equal(err.text, "unknown command 'bogus'");
	assert_int_equal(parse(&a, &err, "-x", "start", NULL), -1);
	assert_string_equal(err.text, "unknown option '-x'");
	assert_int_equal(parse(&a, &err, "start", "-c", NULL), -1);
	assert_string_equal(err.text, "option -c needs a file name");
	assert_int_equal(parse(&a, &err, "stop", "--foreground", NULL), -1);
	assert_string_equal(err.text, "unknown option '--foreground' for stop");
	assert_int_equal(parse(&a, &err, "status", "now", NULL), -1);
	assert_string_equal(err.text, "unexpected argument 'now' for status");
	assert_int_equal(parse(&a, &err, "check-config", "--foreground", NULL),
	    -1);
	assert_int_equal(parse(&a, &err, "test-plugin", NULL), -1);
	assert_int_equal(parse(&a, &err, "--config=", "start", NULL), -1);
}

/* ==== spawn.c ==== */

/* test_spawn_layout - descriptors land at 3, 4, ... in the order
 * passed; the layout and the variable list are bounded, never overrun. */
static void test_spawn_layout(void **state)
{
	struct ctl_spawn sp;
	struct error err;
	char big[CTL_SPAWN_VAR_MAX + 8];

	ctl_spawn_init(&sp);
	assert_int_equal(ctl_spawn_pass_named(&sp, 42, "ELEMTA_X_FD", &err), 0);
	assert_int_equal(sp.fds[0], 42);
	assert_string_equal(sp.vars[0], "ELEMTA_X_FD=3");
	ctl_spawn_init(&sp);
	for (int i = 0; i < CTL_SPAWN_FDS_MAX; i++)
		assert_int_equal(ctl_spawn_pass(&sp, 100 + i), 3 + i);
	assert_int_equal(ctl_spawn_pass(&sp, 7), -1);
	assert_int_equal(ctl_spawn_pass_named(&sp, 7, "ELEMTA_Y_FD", &err), -1);
	assert_non_null(strstr(err.text, "too many descriptors"));
	assert_int_equal(sp.fd_count, CTL_SPAWN_FDS_MAX);
	assert_int_equal(sp.fds[0], 100);
	assert_int_equal(ctl_spawn_var(&sp, "ELEMTA_POLICY_FD=%d", 3), 0);
	assert_string_equal(sp.vars[0], "ELEMTA_POLICY_FD=3");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(ctl_spawn_var(&sp, "A=%s", big), -1);
	assert_int_equal(sp.var_count, 1);
	for (int i = 1; i < CTL_SPAWN_VARS_MAX; i++)
		assert_int_equal(ctl_spawn_var(&sp, "V%d=1", i), 0);
	assert_int_equal(ctl_spawn_var(&sp, "ONE_TOO_MANY=1"), -1);
	assert_int_equal(sp.var_count, CTL_SPAWN_VARS_MAX);
}

/* test_spawn_tls_owned - the TLS files are opened for the spawn, passed
 * after what came before them, owned by the layout and closed by
 * ctl_spawn_release; a missing key passes nothing usable and reports
 * the file, and release still closes what was opened. */
static void test_spawn_tls_owned(void **state)
{
	struct ctl_spawn sp;
	struct error err;
	char dir[64], cfg[128], text[512];
	int cert, key;

	make_tmpdir(dir, sizeof(dir));
	snprintf(cfg, sizeof(cfg), "%s/elemta.yaml", dir);
	snprintf(text, sizeof(text), "%s/c.pem", dir);
	write_file(text, "cert\n");
	snprintf(text, sizeof(text), "%s/k.pem", dir);
	write_file(text, "key\n");
	snprintf(text, sizeof(text), "server:\n  listen: [{address: "
	    "\"127.0.0.1:2599\", mode: smtp}]\ntls:\n  certificate: "
	    "%s/c.pem\n  key: %s/k.pem\n", dir, dir);
	write_file(cfg, text);
	ctl_spawn_init(&sp);
	sp.config_file = cfg;
	assert_int_equal(ctl_spawn_pass(&sp, 42), 3);
	assert_int_equal(ctl_spawn_pass_tls(&sp, &err), 0);
	cert = sp.owned[0];
	key = sp.owned[1];
	assert_true(cert >= 0 && key >= 0);
	assert_int_equal(sp.fd_count, 3);
	assert_int_equal(sp.fds[1], cert);
	assert_int_equal(sp.fds[2], key);
	assert_string_equal(sp.vars[0], "ELEMTA_TLS_CERT_FD=4");
	assert_string_equal(sp.vars[1], "ELEMTA_TLS_KEY_FD=5");
	ctl_spawn_release(&sp);
	assert_int_equal(fcntl(cert, F_GETFD), -1);
	assert_int_equal(fcntl(key, F_GETFD), -1);
	assert_int_equal(sp.owned[0], -1);

	snprintf(text, sizeof(text), "%s/k.pem", dir);
	assert_int_equal(unlink(text), 0);
	ctl_spawn_init(&sp);
	sp.config_file = cfg;
	assert_int_equal(ctl_spawn_pass_tls(&sp, &err), -1);
	assert_non_null(strstr(err.text, "tls.key"));
	cert = sp.owned[0];
	assert_true(cert >= 0);
	ctl_spawn_release(&sp);
	assert_int_equal(fcntl(cert, F_GETFD), -1);
	remove_tree(dir);
}

/* free_tcp_port - a loopback port that was free a moment ago. */
static unsigned free_tcp_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* set_listen - listen entry i of cfg on 127.0.0.1:port. */
static void set_listen(struct config *cfg, size_t i, unsigned port)
{
	struct config_listen *l = &cfg->server.listen[i];

	snprintf(l->address, sizeof(l->address), "127.0.0.1:%u", port);
	snprintf(l->host, sizeof(l->host), "127.0.0.1");
	l->port = port;
	if (cfg->server.listen_count <= i)
		cfg->server.listen_count = i + 1;
}

/* connect_unix - a connection to path, or -1. */
static int connect_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* test_sockets_reopen - a reload keeps an unchanged listener's very
 * descriptor, binds the new one, releases the removed one, and moves a
 * fresh policy socket in: connecting by path reaches only it. */
static void test_sockets_reopen(void **state)
{
	static struct config c1, c2;
	struct ctl_users users = { .root = false };
	struct ctl_sockets old, neu;
	struct error err;
	char dir[64], tmp[128];
	unsigned p1 = free_tcp_port(), p2 = free_tcp_port(), p3;
	int keep_fd, gone_fd, old_policy, cfd, afd;

	make_tmpdir(dir, sizeof(dir));
	memset(&c1, 0, sizeof(c1));
	set_listen(&c1, 0, p1);
	set_listen(&c1, 1, p2);
	snprintf(c1.policyd.socket, sizeof(c1.policyd.socket), "%s/p.sock", dir);
	assert_int_equal(ctl_sockets_open(&c1, &users, &old, &err), 0);
	keep_fd = old.listen[0].fd;
	gone_fd = old.listen[1].fd;
	old_policy = old.policy.fd;

	do
		p3 = free_tcp_port();
	while (p3 == p1 || p3 == p2);
	memcpy(&c2, &c1, sizeof(c2));
	c2.server.listen_count = 0;
	set_listen(&c2, 0, p3);
	set_listen(&c2, 1, p1);
	assert_int_equal(ctl_sockets_reopen(&c2, &users, &old, &neu, &err),
	    0);
	assert_int_equal(neu.listen_count, 2);
	assert_int_equal(neu.listen[1].fd, keep_fd);     /* the same socket */
	assert_true(neu.listen[0].fd >= 0 && neu.listen[0].fd != gone_fd);
	assert_int_equal(old.listen[0].fd, -1);          /* taken over */
	assert_int_equal(old.listen[1].fd, gone_fd);
	assert_string_equal(neu.policy.unix_path, c1.policyd.socket);
	snprintf(tmp, sizeof(tmp), "%s/p.sock.reload", dir);
	assert_int_equal(access(tmp, F_OK), -1);         /* renamed in */

	cfd = connect_unix(c1.policyd.socket);
	assert_true(cfd >= 0);
	assert_int_equal(accept(old_policy, NULL, NULL), -1);  /* EAGAIN */
	afd = accept(neu.policy.fd, NULL, NULL);
	assert_true(afd >= 0);
	close(afd);
	close(cfd);

	ctl_sockets_release_old(&old);
	assert_int_equal(fcntl(gone_fd, F_GETFD), -1);   /* closed */
	assert_int_equal(fcntl(old_policy, F_GETFD), -1);
	assert_true(fcntl(keep_fd, F_GETFD) >= 0);
	assert_int_equal(access(c1.policyd.socket, F_OK), 0); /* not unlinked */
	ctl_sockets_close(&neu);
	assert_int_equal(access(c1.policyd.socket, F_OK), -1);
	remove_tree(dir);
}

/* test_sockets_reopen_same_endpoint - a Postfix or metrics listener
 * whose setting is spelt differently but names what already listens (a
 * path with "//", "0.0.0.0" for "*") is taken over, not bound again
 * (which would fail: the running socket holds it), and its socket file
 * is not unlinked when the old set is released. */
static void test_sockets_reopen_same_endpoint(void **state)
{
	static struct config c1, c2;
	struct ctl_users users = { .root = false };
	struct ctl_sockets old, neu;
	struct error err;
	char dir[64], pf[128], pf2[128];
	unsigned port = 0;
	int pf_fd, m_fd, rc = -1;

	make_tmpdir(dir, sizeof(dir));
	snprintf(pf, sizeof(pf), "%s/pf.sock", dir);
	snprintf(pf2, sizeof(pf2), "%s//pf.sock", dir);
	memset(&c1, 0, sizeof(c1));
	snprintf(c1.policyd.socket, sizeof(c1.policyd.socket), "%s/p.sock", dir);
	str_copy(c1.policyd.postfix_endpoint.path, pf,
	    sizeof(c1.policyd.postfix_endpoint.path));
	snprintf(c1.policyd.postfix_listen, sizeof(c1.policyd.postfix_listen),
	    "unix:%s", pf);
	/* free_tcp_port's port may be taken by another process before the
	 * bind (a busy machine): try a few */
	for (int attempt = 0; attempt < 5 && rc != 0; attempt++) {
		port = free_tcp_port();
		snprintf(c1.metrics.listen, sizeof(c1.metrics.listen), "*:%u",
		    port);
		snprintf(c1.metrics.endpoint.host,
		    sizeof(c1.metrics.endpoint.host), "*");
		c1.metrics.endpoint.port = port;
		rc = ctl_sockets_open(&c1, &users, &old, &err);
		if (rc != 0)
			fprintf(stderr, "ctl_sockets_open: %s\n", err.text);
	}
	assert_int_equal(rc, 0);
	pf_fd = old.postfix.fd;
	m_fd = old.metrics.fd;

	memcpy(&c2, &c1, sizeof(c2));
	str_copy(c2.policyd.postfix_endpoint.path, pf2,
	    sizeof(c2.policyd.postfix_endpoint.path));
	snprintf(c2.policyd.postfix_listen, sizeof(c2.policyd.postfix_listen),
	    "unix:%s", pf2);
	snprintf(c2.metrics.listen, sizeof(c2.metrics.listen), "0.0.0.0:%u",
	    port);
	snprintf(c2.metrics.endpoint.host, sizeof(c2.metrics.endpoint.host),
	    "0.0.0.0");
	assert_int_equal(ctl_sockets_reopen(&c2, &users, &old, &neu, &err), 0);
	assert_int_equal(neu.postfix.fd, pf_fd);
	assert_int_equal(neu.metrics.fd, m_fd);
	ctl_sockets_release_old(&old);
	assert_true(fcntl(pf_fd, F_GETFD) >= 0);
	assert_true(fcntl(m_fd, F_GETFD) >= 0);
	assert_int_equal(access(pf, F_OK), 0);
	ctl_sockets_close(&neu);
	assert_int_equal(access(pf, F_OK), -1);
	remove_tree(dir);
}

/* test_sockets_reopen_failure_changes_nothing - a new address that
 * cannot be bound leaves the running sockets exactly as they were. */
static void test_sockets_reopen_failure_changes_nothing(void **state)
{
	static struct config c1, c2;
	struct ctl_users users = { .root = false };
	struct ctl_sockets old, neu;
	struct error err;
	char dir[64], tmp[128];
	unsigned p1 = free_tcp_port(), p2;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int blocker = socket(AF_INET, SOCK_STREAM, 0), keep_fd, cfd;

	make_tmpdir(dir, sizeof(dir));
	memset(&c1, 0, sizeof(c1));
	set_listen(&c1, 0, p1);
	snprintf(c1.policyd.socket, sizeof(c1.policyd.socket), "%s/p.sock", dir);
	assert_int_equal(ctl_sockets_open(&c1, &users, &old, &err), 0);
	keep_fd = old.listen[0].fd;

	do
		p2 = free_tcp_port();
	while (p2 == p1);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)p2);
	assert_int_equal(bind(blocker, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(blocker, 1), 0);
	memcpy(&c2, &c1, sizeof(c2));
	set_listen(&c2, 1, p2);
	assert_int_equal(ctl_sockets_reopen(&c2, &users, &old, &neu, &err),
	    -1);
	assert_non_null(strstr(err.text, "in use"));
	assert_int_equal(old.listen[0].fd, keep_fd);
	snprintf(tmp, sizeof(tmp), "%s/p.sock.reload", dir);
	assert_int_equal(access(tmp, F_OK), -1);
	cfd = connect_unix(c1.policyd.socket);            /* still the old */
	assert_true(cfd >= 0);
	close(cfd);
	assert_true(accept(old.policy.fd, NULL, NULL) >= 0);
	close(blocker);
	ctl_sockets_close(&old);
	remove_tree(dir);
}

/* ==== dirs.c ==== */

/* test_mkdir_p - nested creation, idempotent, a file in the way named. */
static void test_mkdir_p(void **state)
{
	char dir[64], path[256];
	struct error err;
	struct stat st;

	umask(022);
	make_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/a/b/c/", dir);
	assert_int_equal(ctl_mkdir_p(path, 0700, &err), 0);
	assert_int_equal(ctl_mkdir_p(path, 0700, &err), 0);
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/a", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0755);     /* parents stay open */

	snprintf(path, sizeof(path), "%s/file", dir);
	write_file(path, "x");
	snprintf(path, sizeof(path), "%s/file/sub", dir);
	assert_int_equal(ctl_mkdir_p(path, 0755, &err), -1);
	assert_non_null(strstr(err.text, "cannot create directory"));
	assert_non_null(strstr(err.text, "/file/sub"));
	assert_non_null(strstr(err.text, "Not a directory"));
	remove_tree(dir);
}

/* test_dir_clean_no_follow - everything inside goes, links are removed
 * as links: what they point to survives. */
static void test_dir_clean_no_follow(void **state)
{
	char dir[64], outside[64], path[256], target[256];
	struct error err;
	long removed;

	make_tmpdir(dir, sizeof(dir));
	make_tmpdir(outside, sizeof(outside));
	snprintf(target, sizeof(target), "%s/precious", outside);
	write_file(target, "keep");

	snprintf(path, sizeof(path), "%s/A1", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/A1/message", dir);
	write_file(path, "partial");
	snprintf(path, sizeof(path), "%s/A1/deeper", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/A1/deeper/x", dir);
	write_file(path, "x");
	snprintf(path, sizeof(path), "%s/A1/dirlink", dir);
	assert_int_equal(symlink(outside, path), 0);
	snprintf(path, sizeof(path), "%s/filelink", dir);
	assert_int_equal(symlink(target, path), 0);
	snprintf(path, sizeof(path), "%s/loose", dir);
	write_file(path, "x");

	assert_int_equal(ctl_dir_clean(dir, &removed, &err), 0);
	assert_int_equal(removed, 3);
	assert_int_equal(rmdir(dir), 0);               /* it is empty */
	assert_int_equal(access(target, F_OK), 0);     /* untouched */
	assert_int_equal(ctl_dir_clean(dir, &removed, &err), -1);
	remove_tree(outside);
}

/* ==== privs.c ==== */

/* test_check_access_as_user - as root, the check drops to the user for
 * real: a file inside a 0700 directory of root's is out of its reach. */
static void test_check_access_as_user(void **state)
{
	struct ctl_user nobody = { "nobody", 65534, 65534 };
	char dir[64], path[128];
	struct ctl_access items[2];
	struct error err;

	if (geteuid() != 0)
		skip();
	make_tmpdir(dir, sizeof(dir));           /* mkdtemp: 0700, root's */
	snprintf(path, sizeof(path), "%s/elemta.yaml", dir);
	write_file(path, "server: {}\n");
	items[0] = (struct ctl_access){ "", R_OK, "skipped" };
	items[1] = (struct ctl_access){ path, R_OK, "the configuration" };
	assert_int_equal(ctl_privs_check_access(&nobody, items, 2, &err), -1);
	assert_non_null(strstr(err.text, "user nobody cannot read the "
	    "configuration"));
	assert_non_null(strstr(err.text, "Permission denied"));
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(ctl_privs_check_access(&nobody, items, 2, &err), 0);
	items[1].mode = W_OK;
	assert_int_equal(ctl_privs_check_access(&nobody, items, 2, &err), -1);
	assert_non_null(strstr(err.text, "cannot write to"));
	remove_tree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_doubles_to_cap),
		cmocka_unit_test(test_crash_loop_grows),
		cmocka_unit_test(test_crash_after_long_life_resets),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_state_transitions),
		cmocka_unit_test(test_state_impossible_is_fatal),
		cmocka_unit_test(test_retiring_never_restarts),
		cmocka_unit_test(test_exit_describe),
		cmocka_unit_test(test_status_from_workers),
		cmocka_unit_test(test_status_roundtrip),
		cmocka_unit_test(test_status_parse_rejects),
		cmocka_unit_test(test_status_parse_old_format),
		cmocka_unit_test(test_status_write_read),
		cmocka_unit_test(test_reload_result_roundtrip),
		cmocka_unit_test(test_reload_result_rejects),
		cmocka_unit_test(test_stats_read),
		cmocka_unit_test(test_spawn_layout),
		cmocka_unit_test(test_spawn_tls_owned),
		cmocka_unit_test(test_format_duration),
		cmocka_unit_test(test_lock_exclusive),
		cmocka_unit_test(test_lock_stale_file),
		cmocka_unit_test(test_args_config_anywhere),
		cmocka_unit_test(test_args_commands),
		cmocka_unit_test(test_args_queue),
		cmocka_unit_test(test_args_errors),
		cmocka_unit_test(test_args_test_plugin_owns_its_options),
		cmocka_unit_test(test_sockets_reopen),
		cmocka_unit_test(test_sockets_reopen_same_endpoint),
		cmocka_unit_test(test_sockets_reopen_failure_changes_nothing),
		cmocka_unit_test(test_mkdir_p),
		cmocka_unit_test(test_dir_clean_no_follow),
		cmocka_unit_test(test_check_access_as_user),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
