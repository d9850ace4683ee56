/*
 * control.c - `elemtactl stop`, `status` and `reload`: talking to a
 * running supervisor through its files in server.runtime_dir (runtime.c)
 * and signals.
 *
 * Run by the operator (root, or the development user).  A supervisor is
 * running exactly when the pid file's lock is held; the pid inside is the
 * one to signal.  Exit codes are meant for scripts: stop exits 0 once the
 * supervisor is gone, 1 when it was not running or would not stop; status
 * exits 0 (running), 3 (not running, as LSB init scripts do), 1 (error);
 * reload exits 0 once the new workers run, 1 when it was refused (the
 * errors are printed; the running configuration stays) or not running.
 *
 * reload sends SIGHUP and waits for runtime_dir/reload-result to show a
 * sequence number past the one it saw before, written by the same
 * supervisor: that is the outcome of its request (or of one that arrived
 * together with it and read the same file).
 *
 * status adds what the workers report: the smtpd-*.stats files in
 * runtime_dir ("key value" lines; absent files are fine) and the counter
 * table's size and fill, read through a read-only handle (as elemta-stat
 * does: it never blocks the workers).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "counter.h"
#include "elemtactl.h"

#define CONTROL_POLL_MS 100
#define CONTROL_STOP_EXTRA_MS 10000u   /* beyond shutdown_grace */
#define CONTROL_PID_WAIT_MS 2000u      /* a supervisor just starting */
#define CONTROL_RELOAD_WAIT_MS 30000u  /* validation + starting workers */

/* control_sleep_ms - nap between probes. */
static void control_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* control_now_ms - monotonic milliseconds. */
static uint64_t control_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* control_probe - ctl_lock_probe, waiting briefly for the pid of a
 * supervisor that holds the lock but has not written it yet. */
static int control_probe(const char *dir, pid_t *pid, struct error *err)
{
	uint64_t until = control_now_ms() + CONTROL_PID_WAIT_MS;
	int rc;

	while ((rc = ctl_lock_probe(dir, pid, err)) == 1 && *pid == 0
	    && control_now_ms() < until)
		control_sleep_ms(CONTROL_POLL_MS);
	return rc;
}

/* control_target - the configuration and the runtime directory to look
 * in.  A file that does not load any more (being edited) still names its
 * runtime_dir, so a running system can be stopped, inspected and asked to
 * reload whatever state the file is in: *cfg is then NULL.  errs (may be
 * NULL: then the problems are printed) receives the problems.  -1 (told)
 * when not even the directory can be found. */
static int control_target(const struct ctl_args *args, struct config **cfg,
    char *dir, size_t size, struct config_errors *errs)
{
	if (errs == NULL) {
		*cfg = ctl_config_load(args->config_file);
	} else {
		memset(errs, 0, sizeof(*errs));
		*cfg = config_load(args->config_file, errs);
	}
	if (*cfg != NULL) {
		str_copy(dir, (*cfg)->server.runtime_dir, size);
		return 0;
	}
	if (ctl_config_runtime_dir(args->config_file, dir, size) == -1) {
		fprintf(stderr, "elemtactl: cannot find server.runtime_dir without "
		    "a readable configuration\n");
		return -1;
	}
	return 0;
}

/* ctl_stop - see elemtactl.h. */
int ctl_stop(const struct ctl_args *args)
{
	struct config *cfg;
	struct error err;
	char dir[CONFIG_PATH_MAX];
	uint64_t deadline, wait_ms;
	pid_t pid;
	int rc;

	if (control_target(args, &cfg, dir, sizeof(dir), NULL) == -1)
		return 1;
	if (cfg == NULL)
		fprintf(stderr, "elemtactl: the configuration has errors (above); "
		    "stopping the supervisor of %s anyway\n", dir);
	/* The supervisor itself gives up on its workers after grace + 5 s;
	 * without a config, the default grace. */
	wait_ms = (cfg ? cfg->server.shutdown_grace_ms : 30000u)
	    + CONTROL_STOP_EXTRA_MS;
	config_free(cfg);
	rc = control_probe(dir, &pid, &err);
	if (rc == -1 || (rc == 1 && pid == 0)) {
		fprintf(stderr, "elemtactl: %s\n", rc == -1 ? err.text
		    : "running, but its pid file is empty");
		return 1;
	}
	if (rc == 0) {
		fprintf(stderr, "elemtactl: not running\n");
		return 1;
	}
	if (kill(pid, SIGTERM) == -1 && errno != ESRCH) {
		fprintf(stderr, "elemtactl: cannot signal pid %ld: %s\n", (long)pid,
		    strerror(errno));
		return 1;
	}
	deadline = control_now_ms() + wait_ms;
	for (;;) {
		pid_t now_pid;

		rc = ctl_lock_probe(dir, &now_pid, &err);
		if (rc == 0 || (rc == 1 && now_pid != 0 && now_pid != pid)) {
			printf("elemtactl: stopped\n");
			return 0;
		}
		if (rc == -1) {
			fprintf(stderr, "elemtactl: %s\n", err.text);
			return 1;
		}
		if (control_now_ms() >= deadline) {
			fprintf(stderr, "elemtactl: pid %ld still running after %" PRIu64
			    " s\n", (long)pid, wait_ms / 1000);
			return 1;
		}
		control_sleep_ms(CONTROL_POLL_MS);
	}
}

/* ==== reload ==== */

/* control_reload_seq - the sequence number of the last outcome written by
 * supervisor pid, 0 when none. */
static uint64_t control_reload_seq(const char *dir, pid_t pid)
{
	struct ctl_reload_result r;
	struct error err;
	uint64_t seq = 0;

	if (ctl_reload_result_read(dir, &r, &err) == 1 && r.pid == pid)
		seq = r.seq;
	ctl_reload_result_free(&r);
	return seq;
}

/* ctl_reload - see elemtactl.h. */
int ctl_reload(const struct ctl_args *args)
{
	static struct config_errors errs;
	struct config *cfg;
	struct ctl_reload_result r;
	struct error err;
	char dir[CONFIG_PATH_MAX];
	uint64_t seq0, deadline;
	pid_t pid;
	int rc;

	/* The supervisor validates the file itself and reports every
	 * problem: the local load only finds it (and speaks when it cannot). */
	if (control_target(args, &cfg, dir, sizeof(dir), &errs) == -1) {
		for (size_t i = 0; i < errs.count; i++)
			fprintf(stderr, "%s\n", errs.text[i]);
		return 1;
	}
	config_free(cfg);
	rc = control_probe(dir, &pid, &err);
	if (rc != 1 || pid == 0) {
		for (size_t i = 0; i < errs.count; i++)
			fprintf(stderr, "%s\n", errs.text[i]);
		fprintf(stderr, "elemtactl: %s\n", rc == -1 ? err.text : rc == 0
		    ? "not running (no supervisor holds the pid file in "
		    "server.runtime_dir): nothing to reload"
		    : "running, but its pid file is empty");
		return 1;
	}
	seq0 = control_reload_seq(dir, pid);
	if (kill(pid, SIGHUP) == -1) {
		fprintf(stderr, "elemtactl: cannot signal pid %ld: %s\n", (long)pid,
		    strerror(errno));
		return 1;
	}
	deadline = control_now_ms() + CONTROL_RELOAD_WAIT_MS;
	for (;;) {
		pid_t now_pid;

		memset(&r, 0, sizeof(r));
		if (ctl_reload_result_read(dir, &r, &err) == 1 && r.pid == pid
		    && r.seq > seq0)
			break;
		ctl_reload_result_free(&r);
		if (ctl_lock_probe(dir, &now_pid, &err) != 1
		    || (now_pid != 0 && now_pid != pid)) {
			fprintf(stderr, "elemtactl: the supervisor (pid %ld) is gone\n",
			    (long)pid);
			return 1;
		}
		if (control_now_ms() >= deadline) {
			fprintf(stderr, "elemtactl: no reload outcome from pid %ld "
			    "within %u s (see its log)\n", (long)pid,
			    CONTROL_RELOAD_WAIT_MS / 1000);
			return 1;
		}
		control_sleep_ms(CONTROL_POLL_MS);
	}
	if (r.ok) {
		printf("elemtactl: reloaded: generation %u running\n", r.generation);
		ctl_reload_result_free(&r);
		return 0;
	}
	for (size_t i = 0; i < r.error_count; i++)
		fprintf(stderr, "%s\n", r.errors[i]);
	fprintf(stderr, "elemtactl: reload refused; generation %u keeps running "
	    "with the previous configuration\n", r.generation);
	ctl_reload_result_free(&r);
	return 1;
}

/* ==== status ==== */

/* stats_add - a visited line into its key's sum. */
static void stats_add(void *arg, const struct stats_file_line *line)
{
	struct ctl_stats *st = arg;
	size_t i;

	for (i = 0; i < st->count; i++)
		if (strcmp(st->key[i], line->key) == 0)
			break;
	if (i == st->count) {
		if (st->count == CTL_STATS_KEYS_MAX)
			return;         /* keys are <= STATS_FILE_KEY_MAX */
		strcpy(st->key[i], line->key);
		st->value[i] = 0;
		st->count++;
	}
	st->value[i] += line->value;
}

/* ctl_stats_read - see elemtactl.h; the files live in runtime_dir/stats/
 * (writable by the smtpd user, unlike the runtime directory).  The same
 * reader as elemta-metricsd's, so both agree (a dead worker's gauges are
 * left out of both). */
void ctl_stats_read(const char *runtime_dir, struct ctl_stats *st)
{
	char dir[PATH_MAX + 16];

	memset(st, 0, sizeof(*st));
	snprintf(dir, sizeof(dir), "%s/%s", runtime_dir, STATS_FILE_SUBDIR);
	st->files = stats_file_visit(dir, STATS_FILE_SMTPD, stats_add, st);
}

/* The deliveries by result, summed over transports (queued's stats file). */
struct control_delivery {
	size_t files;
	uint64_t n[QUEUED_RESULT_COUNT];
};

/* delivery_add - a visited line of elemta-queued's file: a delivery
 * counter (the key table's first QUEUED_STAT_QUEUE_ACTIVE keys) into its
 * result's sum. */
static void delivery_add(void *arg, const struct stats_file_line *line)
{
	struct control_delivery *d = arg;
	const struct stats_file_key *k = stats_file_key_find(STATS_FILE_QUEUED,
	    line->key);
	size_t i = k != NULL ? (size_t)(k - stats_file_queued_keys) : SIZE_MAX;

	if (i < QUEUED_STAT_QUEUE_ACTIVE)
		d->n[(i - QUEUED_STAT_RESULTS) / STATS_TRANSPORTS] += line->value;
}

/* control_delivery_read - the deliveries by result from runtime_dir's
 * stats files (the reader elemta-metricsd uses). */
static void control_delivery_read(const char *runtime_dir,
    struct control_delivery *d)
{
	char dir[PATH_MAX + 16];

	memset(d, 0, sizeof(*d));
	snprintf(dir, sizeof(dir), "%s/%s", runtime_dir, STATS_FILE_SUBDIR);
	d->files = stats_file_visit(dir, STATS_FILE_QUEUED, delivery_add, d);
}

/* control_counter_stats - the counter table's size and fill, read-only;
 * -1 with err when unavailable (absent, unreadable). */
static int control_counter_stats(const struct config *cfg,
    struct counter_stats *cst, struct error *err)
{
	struct counter_store *cs;
	int rc;

	if (cfg->counters.backend == CONFIG_BACKEND_LMDB &&
	    access(cfg->counters.path, F_OK) == -1)
		return error_set(err, "%s: %s", cfg->counters.path, strerror(errno));
	if (counter_store_open_config(cfg, true, &cs, err) == -1)
		return -1;
	rc = counter_stats(cs, cst, err);
	counter_store_close(cs);
	return rc;
}

/* control_counter_where - the table's path, or "redis ADDRESS". */
static const char *control_counter_where(const struct config *cfg,
    char *buf, size_t size)
{
	if (cfg->counters.backend != CONFIG_BACKEND_REDIS)
		return cfg->counters.path;
	snprintf(buf, size, "redis %s", cfg->counters.redis.address);
	return buf;
}

/* control_bytes - "12.3 MB" style, powers of 1024. */
static char *control_bytes(uint64_t v, char *buf, size_t size)
{
	static const char *const unit[] = { "B", "KB", "MB", "GB", "TB" };
	double d = (double)v;
	size_t u = 0;

	while (d >= 1024.0 && u < 4) {
		d /= 1024.0;
		u++;
	}
	snprintf(buf, size, u == 0 ? "%.0f %s" : "%.1f %s", d, unit[u]);
	return buf;
}

/* control_print_workers - the worker table of the status file. */
static void control_print_workers(const struct ctl_status *st, int64_t now)
{
	printf("%-8s %3s %8s  %-10s %3s %8s  %s\n", "KIND", "ID", "PID", "STATE",
	    "GEN", "UPTIME", "RESTARTS");
	for (size_t i = 0; i < st->count; i++) {
		const struct ctl_status_worker *w = &st->workers[i];
		char up[32], pid[16];

		if (w->pid > 0) {
			snprintf(pid, sizeof(pid), "%ld", (long)w->pid);
			ctl_format_duration(now - w->started, up, sizeof(up));
		} else {
			str_copy(pid, "-", sizeof(pid));
			str_copy(up, "-", sizeof(up));
		}
		printf("%-8s %3u %8s  %-10s %3u %8s  %u\n", w->kind, w->id, pid,
		    w->state, w->generation, up, w->restarts);
	}
}

/* control_print_extra - what the workers report, when they do (cfg may
 * be NULL: then the counter table is unknown). */
/* control_print_queue - the delivery queue's one line. */
static void control_print_queue(const struct config *cfg)
{
	struct ctl_queue_summary q;
	char age[32];

	if (ctl_queue_summary(cfg->spool.path, &q) == -1) {
		printf("queue: unavailable (%s/queue is not readable)\n",
		    cfg->spool.path);
		return;
	}
	printf("queue: %zu message%s (%zu active, %zu deferred, %zu hold)",
	    q.messages, q.messages == 1 ? "" : "s", q.active, q.deferred,
	    q.hold);
	if (q.messages > 0)
		printf(", oldest %s", ctl_format_duration(q.oldest_seconds, age,
		    sizeof(age)));
	printf("\n");
}

static void control_print_extra(const struct config *cfg, const char *dir)
{
	struct control_delivery dl;
	struct ctl_stats stats;
	struct counter_stats cst;
	struct error err;
	char used[32], total[32], where[300];

	ctl_stats_read(dir, &stats);
	if (stats.files == 0) {
		printf("smtpd counts: not reported (no smtpd-*.stats in %s)\n",
		    dir);
	} else {
		printf("smtpd counts (%zu worker file%s):", stats.files,
		    stats.files == 1 ? "" : "s");
		for (size_t i = 0; i < stats.count; i++)
			printf("%s %s %" PRIu64, i ? "," : "", stats.key[i],
			    stats.value[i]);
		printf("\n");
	}
	control_delivery_read(dir, &dl);
	if (dl.files > 0)
		printf("deliveries: %" PRIu64 " delivered, %" PRIu64 " deferred, %"
		    PRIu64 " bounced (recipients)\n",
		    dl.n[QUEUED_RESULT_DELIVERED], dl.n[QUEUED_RESULT_DEFERRED],
		    dl.n[QUEUED_RESULT_BOUNCED]);
	if (cfg == NULL) {
		printf("counter table: unknown (the configuration has errors)\n");
		return;
	}
	control_print_queue(cfg);
	if (control_counter_stats(cfg, &cst, &err) == -1) {
		printf("counter table: unavailable (%s)\n", err.text);
		return;
	}
	if (cst.map_size == 0) {
		/* Redis without maxmemory: no ceiling to compare with. */
		printf("counter table: %s: %" PRIu64 " entries, %s used (no "
		    "memory limit)\n", control_counter_where(cfg, where,
		    sizeof(where)), cst.entries, control_bytes(cst.used_bytes,
		    used, sizeof(used)));
		return;
	}
	printf("counter table: %s: %" PRIu64 " entries, %s of %s used (%.0f%%)\n",
	    control_counter_where(cfg, where, sizeof(where)), cst.entries,
	    control_bytes(cst.used_bytes, used, sizeof(used)),
	    control_bytes(cst.map_size, total, sizeof(total)),
	    100.0 * (double)cst.used_bytes / (double)cst.map_size);
}

/* control_status_json - the whole status as one JSON document (cfg may
 * be NULL). */
static void control_status_json(const struct config *cfg, const char *dir,
    pid_t pid, const struct ctl_status *st, int64_t now)
{
	json_object *root = json_object_new_object(), *workers, *o;
	struct control_delivery dl;
	struct ctl_queue_summary qs;
	struct ctl_stats stats;
	struct counter_stats cst;
	struct error err;
	char where[300];

	json_object_object_add(root, "running", json_object_new_boolean(pid > 0));
	if (pid > 0) {
		json_object_object_add(root, "pid", json_object_new_int64(pid));
		if (st != NULL) {
			json_object_object_add(root, "started",
			    json_object_new_int64(st->started));
			json_object_object_add(root, "uptime_seconds",
			    json_object_new_int64(now - st->started));
			json_object_object_add(root, "generation",
			    json_object_new_int64(st->generation));
			workers = json_object_new_array();
			for (size_t i = 0; i < st->count; i++) {
				const struct ctl_status_worker *w = &st->workers[i];

				o = json_object_new_object();
				json_object_object_add(o, "kind",
				    json_object_new_string(w->kind));
				json_object_object_add(o, "id", json_object_new_int64(w->id));
				json_object_object_add(o, "pid",
				    json_object_new_int64(w->pid));
				json_object_object_add(o, "state",
				    json_object_new_string(w->state));
				json_object_object_add(o, "generation",
				    json_object_new_int64(w->generation));
				json_object_object_add(o, "started",
				    json_object_new_int64(w->started));
				json_object_object_add(o, "restarts",
				    json_object_new_int64(w->restarts));
				json_object_array_add(workers, o);
			}
			json_object_object_add(root, "workers", workers);
		}
		ctl_stats_read(dir, &stats);
		o = json_object_new_object();
		for (size_t i = 0; i < stats.count; i++)
			json_object_object_add(o, stats.key[i],
			    json_object_new_int64((int64_t)stats.value[i]));
		json_object_object_add(root, "smtpd", o);
		control_delivery_read(dir, &dl);
		o = json_object_new_object();
		json_object_object_add(o, "delivered", json_object_new_int64(
		    (int64_t)dl.n[QUEUED_RESULT_DELIVERED]));
		json_object_object_add(o, "deferred", json_object_new_int64(
		    (int64_t)dl.n[QUEUED_RESULT_DEFERRED]));
		json_object_object_add(o, "bounced", json_object_new_int64(
		    (int64_t)dl.n[QUEUED_RESULT_BOUNCED]));
		json_object_object_add(root, "delivery", o);
	}
	if (cfg != NULL && ctl_queue_summary(cfg->spool.path, &qs) == 0) {
		o = json_object_new_object();
		json_object_object_add(o, "messages",
		    json_object_new_int64((int64_t)qs.messages));
		json_object_object_add(o, "active",
		    json_object_new_int64((int64_t)qs.active));
		json_object_object_add(o, "deferred",
		    json_object_new_int64((int64_t)qs.deferred));
		json_object_object_add(o, "hold",
		    json_object_new_int64((int64_t)qs.hold));
		json_object_object_add(o, "oldest_seconds",
		    json_object_new_int64(qs.oldest_seconds));
		json_object_object_add(root, "queue", o);
	}
	if (cfg != NULL && control_counter_stats(cfg, &cst, &err) == 0) {
		o = json_object_new_object();
		json_object_object_add(o, "path",
		    json_object_new_string(control_counter_where(cfg, where,
		    sizeof(where))));
		json_object_object_add(o, "map_size",
		    json_object_new_int64((int64_t)cst.map_size));
		json_object_object_add(o, "used_bytes",
		    json_object_new_int64((int64_t)cst.used_bytes));
		json_object_object_add(o, "entries",
		    json_object_new_int64((int64_t)cst.entries));
		json_object_object_add(root, "counters", o);
	}
	printf("%s\n", json_object_to_json_string_ext(root,
	    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
}

/* ctl_status - see elemtactl.h. */
int ctl_status(const struct ctl_args *args)
{
	struct config *cfg;
	struct ctl_status st;
	struct error err;
	int64_t now = (int64_t)time(NULL);
	char up[32], dir[CONFIG_PATH_MAX];
	pid_t pid;
	int rc;

	if (control_target(args, &cfg, dir, sizeof(dir), NULL) == -1)
		return 1;
	rc = control_probe(dir, &pid, &err);
	if (rc == -1) {
		fprintf(stderr, "elemtactl: %s\n", err.text);
		config_free(cfg);
		return 1;
	}
	if (rc == 0) {
		if (args->json)
			control_status_json(cfg, dir, 0, NULL, now);
		else
			printf("elemta is not running\n");
		config_free(cfg);
		return 3;
	}
	if (ctl_status_read(dir, &st, &err) == -1) {
		if (args->json)
			control_status_json(cfg, dir, pid, NULL, now);
		else
			printf("elemta is running (pid %ld)\n", (long)pid);
		fprintf(stderr, "elemtactl: worker status unavailable: %s\n",
		    err.text);
	} else if (st.pid != pid) {
		if (args->json)
			control_status_json(cfg, dir, pid, NULL, now);
		else
			printf("elemta is running (pid %ld)\n", (long)pid);
		fprintf(stderr, "elemtactl: worker status unavailable: the status "
		    "file was written by pid %ld\n", (long)st.pid);
		ctl_status_free(&st);
	} else if (args->json) {
		control_status_json(cfg, dir, pid, &st, now);
		ctl_status_free(&st);
	} else {
		printf("elemta is running (pid %ld, up %s, generation %u)\n",
		    (long)pid, ctl_format_duration(now - st.started, up, sizeof(up)),
		    st.generation);
		control_print_workers(&st, now);
		control_print_extra(cfg, dir);
		ctl_status_free(&st);
	}
	config_free(cfg);
	return 0;
}
