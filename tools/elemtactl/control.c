/*
 * control.c - `elemtactl stop` and `elemtactl status`: talking to a running
 * supervisor through its files in server.runtime_dir (runtime.c).
 *
 * Run by the operator (root, or the development user).  A supervisor is
 * running exactly when the pid file's lock is held; the pid inside is the
 * one to signal.  Exit codes are meant for scripts: stop exits 0 once the
 * supervisor is gone, 1 when it was not running or would not stop; status
 * exits 0 (running), 3 (not running, as LSB init scripts do), 1 (error).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "elemtactl.h"

#define CONTROL_POLL_MS 100
#define CONTROL_STOP_EXTRA_MS 10000u   /* beyond shutdown_grace */
#define CONTROL_PID_WAIT_MS 2000u      /* a supervisor just starting */

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

/* ctl_stop - see elemtactl.h. */
int ctl_stop(const struct ctl_args *args)
{
	struct config *cfg = ctl_config_load(args->config_file);
	struct error err;
	uint64_t deadline, wait_ms;
	pid_t pid;
	int rc;

	if (cfg == NULL) {
		fprintf(stderr, "elemtactl: cannot find the runtime directory "
		    "without a valid configuration\n");
		return 1;
	}
	rc = control_probe(cfg->server.runtime_dir, &pid, &err);
	if (rc == -1 || (rc == 1 && pid == 0)) {
		fprintf(stderr, "elemtactl: %s\n", rc == -1 ? err.text
		    : "running, but its pid file is empty");
		config_free(cfg);
		return 1;
	}
	if (rc == 0) {
		fprintf(stderr, "elemtactl: not running\n");
		config_free(cfg);
		return 1;
	}
	if (kill(pid, SIGTERM) == -1 && errno != ESRCH) {
		fprintf(stderr, "elemtactl: cannot signal pid %ld: %s\n", (long)pid,
		    strerror(errno));
		config_free(cfg);
		return 1;
	}

	/* The supervisor itself gives up on its workers after grace + 5 s. */
	wait_ms = cfg->server.shutdown_grace_ms + CONTROL_STOP_EXTRA_MS;
	deadline = control_now_ms() + wait_ms;
	for (;;) {
		pid_t now_pid;

		rc = ctl_lock_probe(cfg->server.runtime_dir, &now_pid, &err);
		if (rc == 0 || (rc == 1 && now_pid != 0 && now_pid != pid)) {
			printf("elemtactl: stopped\n");
			config_free(cfg);
			return 0;
		}
		if (rc == -1) {
			fprintf(stderr, "elemtactl: %s\n", err.text);
			break;
		}
		if (control_now_ms() >= deadline) {
			fprintf(stderr, "elemtactl: pid %ld still running after %" PRIu64
			    " s\n", (long)pid, wait_ms / 1000);
			break;
		}
		control_sleep_ms(CONTROL_POLL_MS);
	}
	config_free(cfg);
	return 1;
}

/* control_print_workers - the worker table of the status file. */
static void control_print_workers(const struct ctl_status *st, int64_t now)
{
	printf("%-8s %3s %8s  %-10s %8s  %s\n", "KIND", "ID", "PID", "STATE",
	    "UPTIME", "RESTARTS");
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
		printf("%-8s %3u %8s  %-10s %8s  %u\n", w->kind, w->id, pid, w->state,
		    up, w->restarts);
	}
}

/* ctl_status - see elemtactl.h. */
int ctl_status(const struct ctl_args *args)
{
	struct config *cfg = ctl_config_load(args->config_file);
	struct ctl_status st;
	struct error err;
	int64_t now = (int64_t)time(NULL);
	char up[32];
	pid_t pid;
	int rc;

	if (cfg == NULL)
		return 1;
	rc = control_probe(cfg->server.runtime_dir, &pid, &err);
	if (rc == -1) {
		fprintf(stderr, "elemtactl: %s\n", err.text);
		config_free(cfg);
		return 1;
	}
	if (rc == 0) {
		printf("elemta is not running\n");
		config_free(cfg);
		return 3;
	}
	if (ctl_status_read(cfg->server.runtime_dir, &st, &err) == -1) {
		printf("elemta is running (pid %ld)\n", (long)pid);
		fprintf(stderr, "elemtactl: worker status unavailable: %s\n",
		    err.text);
	} else if (st.pid != pid) {
		printf("elemta is running (pid %ld)\n", (long)pid);
		fprintf(stderr, "elemtactl: worker status unavailable: the status "
		    "file was written by pid %ld\n", (long)st.pid);
		ctl_status_free(&st);
	} else {
		printf("elemta is running (pid %ld, up %s)\n", (long)pid,
		    ctl_format_duration(now - st.started, up, sizeof(up)));
		control_print_workers(&st, now);
		ctl_status_free(&st);
	}
	config_free(cfg);
	return 0;
}
