/*
 * stats.c - elemta-smtpd's per-worker counts and their stats file (see
 * stats.h for the contract, docs/internals.md for the file format).
 *
 * Called from the worker's single event-loop thread only (server.c and
 * session.c), so the counts are plain integers.  Runs as server.user;
 * writes only inside server.runtime_dir/stats/, which elemtactl creates
 * for that user (created here, mode 0755, when missing and possible).
 * The files are read by elemtactl status and elemta-metricsd (another
 * user): 0644, never secrets.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdpass.h"
#include "log.h"
#include "stats_file.h"
#include "stats.h"

#define STATS_FILE_MAX 4096

static uint64_t stats_count[SMTPD_STAT_COUNT];

static struct {
	bool dirty;              /* changed since the last write         */
	bool warned;             /* a write failure was logged           */
	struct event *timer;
	unsigned id;
	char dir[CONFIG_PATH_MAX + 16];
	char path[CONFIG_PATH_MAX + 64];   /* dir/smtpd-ID-PID.stats     */
	char tmp[CONFIG_PATH_MAX + 64];    /* dir/.smtpd-ID-PID.tmp      */
} stats;

/* smtpd_stats_add - see stats.h. */
void
smtpd_stats_add(enum smtpd_stat which, int64_t delta)
{
	uint64_t *v;

	if ((unsigned)which >= SMTPD_STAT_COUNT)
		return;
	v = &stats_count[which];
	if (delta < 0)
		*v = *v >= (uint64_t)-delta ? *v - (uint64_t)-delta : 0;
	else
		*v += (uint64_t)delta;
	stats.dirty = true;
}

/* smtpd_stats_session - see stats.h. */
void
smtpd_stats_session(int opened)
{
	if (opened)
		smtpd_stats_add(SMTPD_STAT_CONNECTIONS, 1);
	smtpd_stats_add(SMTPD_STAT_SESSIONS_OPEN, opened ? 1 : -1);
}

/* smtpd_stats_refused - see stats.h. */
void
smtpd_stats_refused(enum elemta_phase phase)
{
	enum smtpd_stat stat;

	switch (phase) {
	case ELEMTA_PHASE_CONNECT: stat = SMTPD_STAT_REFUSED_CONNECT; break;
	case ELEMTA_PHASE_EHLO:
	case ELEMTA_PHASE_HELO: stat = SMTPD_STAT_REFUSED_HELO; break;
	case ELEMTA_PHASE_AUTH: stat = SMTPD_STAT_REFUSED_AUTH; break;
	case ELEMTA_PHASE_MAIL: stat = SMTPD_STAT_REFUSED_MAIL; break;
	case ELEMTA_PHASE_RCPT: stat = SMTPD_STAT_REFUSED_RCPT; break;
	case ELEMTA_PHASE_DATA: stat = SMTPD_STAT_REFUSED_DATA; break;
	case ELEMTA_PHASE_EOM: stat = SMTPD_STAT_MESSAGES_REFUSED; break;
	default: stat = SMTPD_STAT_REFUSED_OTHER; break;
	}
	smtpd_stats_add(stat, 1);
}

/* smtpd_stats_value - see stats.h. */
uint64_t
smtpd_stats_value(enum smtpd_stat which)
{
	return (unsigned)which < SMTPD_STAT_COUNT ? stats_count[which] : 0;
}

/* stats_write - the file, replaced atomically; false on failure (logged
 * once until a write succeeds again). */
static bool
stats_write(void)
{
	char buf[STATS_FILE_MAX];
	size_t len = 0;
	int fd;

	for (size_t i = 0; i < SMTPD_STAT_COUNT; i++) {
		int n = snprintf(buf + len, sizeof(buf) - len, "%s %" PRIu64 "\n",
		    stats_file_smtpd_keys[i].name, stats_count[i]);

		if (n < 0 || (size_t)n >= sizeof(buf) - len)
			return false;       /* cannot happen: few short lines */
		len += (size_t)n;
	}
	fd = open(stats.tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0644);
	if (fd >= 0) {
		ssize_t n = write(fd, buf, len);

		if (close(fd) == 0 && n == (ssize_t)len &&
		    rename(stats.tmp, stats.path) == 0) {
			stats.warned = false;
			return true;
		}
		unlink(stats.tmp);
	}
	if (!stats.warned)
		log_warn("stats file %s: %s", stats.path, strerror(errno));
	stats.warned = true;
	return false;
}

/* stats_on_tick - once a second: write when something changed. */
static void
stats_on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (stats.dirty && stats_write())
		stats.dirty = false;
}

/* What the take-over found: the first dead file of our id, and its
 * totals in stats_count. */
struct stats_taken {
	char file[256];
};

/* stats_take_line - a line of a dead worker of our id (a crash, or an
 * older generation that has finished): the totals of the first such file
 * carry on in ours. */
static void
stats_take_line(void *arg, const struct stats_file_line *line)
{
	struct stats_taken *t = arg;

	if (strcmp(line->program, STATS_FILE_SMTPD) != 0 ||
	    line->id != stats.id || line->alive ||
	    line->pid == (long)getpid() || !line->total)
		return;
	if (t->file[0] == '\0')
		str_copy(t->file, line->file, sizeof(t->file));
	else if (strcmp(t->file, line->file) != 0)
		return;                  /* another one: the next start's */
	for (size_t i = 0; i < SMTPD_STAT_COUNT; i++)
		if (strcmp(line->key, stats_file_smtpd_keys[i].name) == 0)
			stats_count[i] += line->value;
}

/* stats_take_over - that file becomes ours: the rename keeps the sum over
 * all files unchanged at every moment (no dip, no double count). */
static void
stats_take_over(void)
{
	struct stats_taken t = { "" };
	char from[sizeof(stats.dir) + sizeof(t.file) + 1];

	stats_file_visit(stats.dir, STATS_FILE_SMTPD, stats_take_line, &t);
	if (t.file[0] == '\0')
		return;
	snprintf(from, sizeof(from), "%s/%s", stats.dir, t.file);
	if (rename(from, stats.path) == 0) {
		log_debug("stats: took over %s", t.file);
		return;
	}
	/* Taken by someone else meanwhile: forget what was read. */
	memset(stats_count, 0, sizeof(stats_count));
}

/* smtpd_stats_start - see stats.h. */
void
smtpd_stats_start(struct event_base *base, const struct config *cfg)
{
	struct timeval second = { 1, 0 };
	struct stat st;
	long wid;

	if (stats.timer != NULL)        /* started already */
		return;
	stats.id = fdpass_env_number("ELEMTA_WORKER_ID", STATS_FILE_ID_MAX,
	    &wid) == 1 ? (unsigned)wid : 0;
	snprintf(stats.dir, sizeof(stats.dir), "%s/%s", cfg->server.runtime_dir,
	    STATS_FILE_SUBDIR);
	if (mkdir(stats.dir, 0755) != 0 && errno != EEXIST) {
		log_warn("stats directory %s: %s; counts are not reported",
		    stats.dir, strerror(errno));
		return;
	}
	if (lstat(stats.dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		log_warn("stats directory %s: not a directory; counts are not "
		    "reported", stats.dir);
		return;
	}
	snprintf(stats.path, sizeof(stats.path),
	    "%s/" STATS_FILE_SMTPD "-%u-%ld" STATS_FILE_SUFFIX, stats.dir,
	    stats.id, (long)getpid());
	snprintf(stats.tmp, sizeof(stats.tmp),
	    "%s/." STATS_FILE_SMTPD "-%u-%ld.tmp", stats.dir, stats.id,
	    (long)getpid());
	stats_take_over();
	stats.timer = event_new(base, -1, EV_PERSIST, stats_on_tick, NULL);
	if (stats.timer == NULL || event_add(stats.timer, &second) != 0) {
		log_warn("stats: cannot set up the timer; counts are not "
		    "reported");
		if (stats.timer != NULL)
			event_free(stats.timer);
		stats.timer = NULL;
		return;
	}
	stats.dirty = !stats_write();
}

/* smtpd_stats_stop - see stats.h. */
void
smtpd_stats_stop(void)
{
	if (stats.timer == NULL)        /* never started */
		return;
	event_free(stats.timer);
	stats.timer = NULL;
	stats_write();
}
