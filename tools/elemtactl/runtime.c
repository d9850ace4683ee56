/*
 * runtime.c - elemtactl's files in server.runtime_dir: the pid file, which
 * is also the lock, the status file and the reload-result file.
 *
 * The running supervisor holds an flock(2) on elemtactl.pid for its whole
 * life; the kernel drops it when the process dies, however it dies, so a
 * stale pid file (no lock holder) simply means "not running".  `start`
 * takes the lock, `stop` and `status` probe it.  The status file is
 * rewritten (temp file + rename, so readers never see half of it) by the
 * supervisor after every worker change and read by `status`:
 *
 *     elemtactl PID STARTED_UNIX GENERATION
 *     KIND ID PID STATE STARTED_UNIX RESTARTS GENERATION  (one per worker)
 *
 * e.g. "smtpd 1 4242 running 1764201600 3 1"; pid and started are 0 while
 * no process exists (restarting, stopped).  During a reload the workers of
 * the previous generation are listed too (stopping, retiring) until they
 * exit.  The reload-result file (format in elemtactl.h) tells `elemtactl
 * reload` how the reload it asked for went.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "decimal.h"
#include "elemtactl.h"

#define STATUS_FILE_MAX (1024 * 1024)

/* runtime_path - dir/name into buf; -1 when too long. */
static int runtime_path(char *buf, size_t size, const char *dir,
    const char *name, struct error *err)
{
	int n = snprintf(buf, size, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= size)
		return error_set(err, "path too long: %s/%s", dir, name);
	return 0;
}

/* runtime_read_pid - the pid written in the open pid file, 0 if none. */
static pid_t runtime_read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	int64_t v;

	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n <= 0 || decimal_parse_n(buf, (size_t)n, 1, INT32_MAX, &v) < 0)
		return 0;
	return (pid_t)v;
}

/* ctl_lock_acquire - see elemtactl.h. */
int ctl_lock_acquire(const char *dir, struct ctl_lock *lk, pid_t *holder,
    struct error *err)
{
	*holder = 0;
	lk->fd = -1;
	if (runtime_path(lk->path, sizeof(lk->path), dir, CTL_PID_FILE, err) == -1)
		return -1;

	/* A supervisor exiting unlinks the file and then unlocks it; if we
	 * opened it just before the unlink we would lock a deleted file, so
	 * check that the locked file is still the one at the path. */
	for (int attempt = 0; attempt < 5; attempt++) {
		struct stat fst, pst;
		int fd = open(lk->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		    0644);

		if (fd == -1)
			return error_set(err, "cannot open %s: %s", lk->path,
			    strerror(errno));
		if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
			int e = errno;

			if (e == EWOULDBLOCK) {
				*holder = runtime_read_pid(fd);
				close(fd);
				return 1;
			}
			close(fd);
			return error_set(err, "cannot lock %s: %s", lk->path,
			    strerror(e));
		}
		if (fstat(fd, &fst) == 0 && stat(lk->path, &pst) == 0
		    && fst.st_dev == pst.st_dev && fst.st_ino == pst.st_ino) {
			lk->fd = fd;
			return 0;
		}
		close(fd);
	}
	return error_set(err, "cannot lock %s: it keeps being replaced",
	    lk->path);
}

/* ctl_lock_write_pid - see elemtactl.h. */
int ctl_lock_write_pid(struct ctl_lock *lk, pid_t pid, struct error *err)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)pid);

	if (ftruncate(lk->fd, 0) == -1
	    || pwrite(lk->fd, buf, (size_t)n, 0) != (ssize_t)n)
		return error_set(err, "cannot write %s: %s", lk->path,
		    strerror(errno));
	return 0;
}

/* ctl_lock_release - see elemtactl.h. */
void ctl_lock_release(struct ctl_lock *lk)
{
	if (lk->fd == -1)
		return;
	/* Unlink while still holding the lock: nobody can have taken it in
	 * between, and ctl_lock_acquire notices a lock on a deleted file. */
	unlink(lk->path);
	close(lk->fd);
	lk->fd = -1;
}

/* ctl_lock_probe - see elemtactl.h. */
int ctl_lock_probe(const char *dir, pid_t *holder, struct error *err)
{
	char path[CONFIG_PATH_MAX];
	int fd, rc;

	*holder = 0;
	if (runtime_path(path, sizeof(path), dir, CTL_PID_FILE, err) == -1)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1) {
		if (errno == ENOENT)
			return 0;
		return error_set(err, "cannot open %s: %s", path, strerror(errno));
	}
	/* A shared lock succeeds only when no supervisor holds its exclusive
	 * one; released at once. */
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		flock(fd, LOCK_UN);
		rc = 0;
	} else if (errno == EWOULDBLOCK) {
		*holder = runtime_read_pid(fd);
		rc = 1;
	} else {
		rc = error_set(err, "cannot lock %s: %s", path, strerror(errno));
	}
	close(fd);
	return rc;
}

/* ==== The status file ==== */

/* ctl_status_from_workers - see elemtactl.h. */
void ctl_status_from_workers(struct ctl_status *st, pid_t pid,
    int64_t started, unsigned generation, const struct ctl_worker *workers,
    size_t count)
{
	st->pid = pid;
	st->started = started;
	st->generation = generation;
	st->count = count;
	st->workers = count ? xcalloc(count, sizeof(*st->workers)) : NULL;
	for (size_t i = 0; i < count; i++) {
		const struct ctl_worker *w = &workers[i];
		struct ctl_status_worker *o = &st->workers[i];
		bool alive = w->pid > 0;

		str_copy(o->kind, ctl_worker_kind_name(w->kind), sizeof(o->kind));
		str_copy(o->state, ctl_worker_state_name(w->state),
		    sizeof(o->state));
		o->id = w->id;
		o->pid = alive ? w->pid : 0;
		o->started = alive ? w->started_unix : 0;
		o->restarts = w->restarts;
		o->generation = w->generation;
	}
}

/* ctl_status_format - see elemtactl.h. */
int ctl_status_format(const struct ctl_status *st, struct strbuf *out)
{
	if (strbuf_appendf(out, "elemtactl %ld %" PRId64 " %u\n",
	    (long)st->pid, st->started, st->generation) == -1)
		return -1;
	for (size_t i = 0; i < st->count; i++) {
		const struct ctl_status_worker *w = &st->workers[i];

		if (strbuf_appendf(out, "%s %u %ld %s %" PRId64 " %u %u\n",
		    w->kind, w->id, (long)w->pid, w->state, w->started,
		    w->restarts, w->generation) == -1)
			return -1;
	}
	return 0;
}

/* status_split - split line (modified) at spaces into at most max
 * fields; returns the count, or max + 1 when there are more. */
static size_t status_split(char *line, char **fields, size_t max)
{
	size_t n = 0;
	char *save = NULL;

	for (char *tok = strtok_r(line, " ", &save); tok;
	    tok = strtok_r(NULL, " ", &save)) {
		if (n == max)
			return max + 1;
		fields[n++] = tok;
	}
	return n;
}

/* status_parse_worker - one "kind id pid state started restarts
 * [generation]" line. */
static int status_parse_worker(char *line, struct ctl_status_worker *w)
{
	char *f[7];
	int64_t id, pid, started, restarts, gen = 0;
	size_t n = status_split(line, f, 7);

	if ((n != 6 && n != 7)
	    || (n == 7 && decimal_parse(f[6], 0, UINT32_MAX, &gen) == -1)
	    || strlen(f[0]) >= sizeof(w->kind) || strlen(f[3]) >= sizeof(w->state)
	    || decimal_parse(f[1], 0, UINT32_MAX, &id) == -1
	    || decimal_parse(f[2], 0, INT32_MAX, &pid) == -1
	    || decimal_parse(f[4], 0, INT64_MAX, &started) == -1
	    || decimal_parse(f[5], 0, UINT32_MAX, &restarts) == -1)
		return -1;
	str_copy(w->kind, f[0], sizeof(w->kind));
	str_copy(w->state, f[3], sizeof(w->state));
	w->id = (unsigned)id;
	w->pid = (pid_t)pid;
	w->started = started;
	w->restarts = (unsigned)restarts;
	w->generation = (unsigned)gen;
	return 0;
}

/* ctl_status_parse - see elemtactl.h. */
int ctl_status_parse(const char *text, size_t len, struct ctl_status *st,
    struct error *err)
{
	char *copy = xstrndup(text, len);
	char *save = NULL, *line;
	size_t lineno = 0, cap = 0;
	int rc = 0;

	memset(st, 0, sizeof(*st));
	for (line = strtok_r(copy, "\n", &save); line;
	    line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		if (lineno == 1) {
			char *f[4];
			int64_t pid, started, gen = 0;
			size_t n = status_split(line, f, 4);

			if ((n != 3 && n != 4)
			    || strcmp(f[0], "elemtactl") != 0
			    || decimal_parse(f[1], 1, INT32_MAX, &pid) == -1
			    || decimal_parse(f[2], 0, INT64_MAX, &started) == -1
			    || (n == 4 && decimal_parse(f[3], 0, UINT32_MAX,
			    &gen) == -1)) {
				rc = error_set(err, "status line 1: expected "
				    "'elemtactl PID STARTED GENERATION'");
				break;
			}
			st->pid = (pid_t)pid;
			st->started = started;
			st->generation = (unsigned)gen;
			continue;
		}
		if (st->count == CTL_STATUS_WORKERS_MAX) {
			rc = error_set(err, "status: more than %d workers",
			    CTL_STATUS_WORKERS_MAX);
			break;
		}
		if (st->count == cap) {
			cap = cap ? cap * 2 : 16;
			st->workers = xrealloc(st->workers, cap * sizeof(*st->workers));
		}
		if (status_parse_worker(line, &st->workers[st->count]) == -1) {
			rc = error_set(err, "status line %zu: expected "
			    "'kind id pid state started restarts generation'",
			    lineno);
			break;
		}
		st->count++;
	}
	if (rc == 0 && lineno == 0)
		rc = error_set(err, "status: empty");
	free(copy);
	if (rc == -1)
		ctl_status_free(st);
	return rc;
}

/* ctl_status_free - see elemtactl.h. */
void ctl_status_free(struct ctl_status *st)
{
	free(st->workers);
	st->workers = NULL;
	st->count = 0;
}

/* ctl_runtime_file_write - see elemtactl.h. */
int ctl_runtime_file_write(const char *dir, const char *name,
    const char *data, size_t len, struct error *err)
{
	char path[CONFIG_PATH_MAX], tmp[CONFIG_PATH_MAX], tmpname[128];
	int fd, rc = 0;

	snprintf(tmpname, sizeof(tmpname), "%s.tmp", name);
	if (runtime_path(path, sizeof(path), dir, name, err) == -1
	    || runtime_path(tmp, sizeof(tmp), dir, tmpname, err) == -1)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0644);
	if (fd == -1)
		return error_set(err, "cannot create %s: %s", tmp,
		    strerror(errno));
	errno = 0;
	if (write(fd, data, len) != (ssize_t)len)
		rc = error_set(err, "cannot write %s: %s", tmp,
		    strerror(errno ? errno : EIO));
	if (close(fd) == -1 && rc == 0)
		rc = error_set(err, "cannot write %s: %s", tmp, strerror(errno));
	if (rc == 0 && rename(tmp, path) == -1)
		rc = error_set(err, "cannot rename %s to %s: %s", tmp, path,
		    strerror(errno));
	if (rc == -1)
		unlink(tmp);
	return rc;
}

/* ctl_runtime_file_read - see elemtactl.h. */
int ctl_runtime_file_read(const char *dir, const char *name,
    struct strbuf *sb, struct error *err)
{
	char path[CONFIG_PATH_MAX];
	char buf[8192];
	ssize_t n;
	int fd;

	if (runtime_path(path, sizeof(path), dir, name, err) == -1)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1) {
		if (errno == ENOENT)
			return 0;
		return error_set(err, "cannot open %s: %s", path, strerror(errno));
	}
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 || strbuf_append(sb, buf, (size_t)n) == -1) {
			int e = n == -1 ? errno : EFBIG;

			close(fd);
			return error_set(err, "cannot read %s: %s", path,
			    e == EFBIG ? "too large" : strerror(e));
		}
	}
	close(fd);
	return 1;
}

/* ctl_status_write - see elemtactl.h. */
int ctl_status_write(const char *dir, const struct ctl_status *st,
    struct error *err)
{
	struct strbuf sb = STRBUF_INIT(STATUS_FILE_MAX);
	int rc;

	if (ctl_status_format(st, &sb) == -1) {
		strbuf_free(&sb);
		return error_set(err, "status: too many workers to write");
	}
	rc = ctl_runtime_file_write(dir, CTL_STATUS_FILE, strbuf_cstr(&sb),
	    sb.len, err);
	strbuf_free(&sb);
	return rc;
}

/* ctl_status_read - see elemtactl.h. */
int ctl_status_read(const char *dir, struct ctl_status *st,
    struct error *err)
{
	struct strbuf sb = STRBUF_INIT(STATUS_FILE_MAX);
	int rc;

	memset(st, 0, sizeof(*st));
	rc = ctl_runtime_file_read(dir, CTL_STATUS_FILE, &sb, err);
	if (rc == 0)
		rc = error_set(err, "cannot open %s/%s: %s", dir, CTL_STATUS_FILE,
		    strerror(ENOENT));
	if (rc == 1) {
		rc = ctl_status_parse(strbuf_cstr(&sb), sb.len, st, err);
		if (rc == -1)
			error_prefix(err, "%s/%s", dir, CTL_STATUS_FILE);
	}
	strbuf_free(&sb);
	return rc;
}

/* ctl_status_remove - see elemtactl.h. */
void ctl_status_remove(const char *dir)
{
	char path[CONFIG_PATH_MAX];

	if (runtime_path(path, sizeof(path), dir, CTL_STATUS_FILE, NULL) == 0)
		unlink(path);
}

/* ==== The reload-result file ==== */

/* ctl_reload_result_add - see elemtactl.h. */
void ctl_reload_result_add(struct ctl_reload_result *r, const char *text)
{
	char *dst;

	if (r->error_count >= CTL_RELOAD_ERRORS_MAX)
		return;
	if (r->errors == NULL)
		r->errors = xcalloc(CTL_RELOAD_ERRORS_MAX, sizeof(*r->errors));
	dst = r->errors[r->error_count++];
	str_copy(dst, text, ERROR_TEXT_MAX);
	for (char *p = dst; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

/* ctl_reload_result_free - see elemtactl.h. */
void ctl_reload_result_free(struct ctl_reload_result *r)
{
	free(r->errors);
	r->errors = NULL;
	r->error_count = 0;
}

/* ctl_reload_result_format - see elemtactl.h. */
int ctl_reload_result_format(const struct ctl_reload_result *r,
    struct strbuf *out)
{
	if (strbuf_appendf(out, "elemtactl %ld %" PRIu64 "\nresult %s\n"
	    "generation %u\n", (long)r->pid, r->seq, r->ok ? "ok" : "failed",
	    r->generation) == -1)
		return -1;
	for (size_t i = 0; i < r->error_count; i++)
		if (strbuf_appendf(out, "error %s\n", r->errors[i]) == -1)
			return -1;
	return 0;
}

/* ctl_reload_result_parse - see elemtactl.h. */
int ctl_reload_result_parse(const char *text, size_t len,
    struct ctl_reload_result *r, struct error *err)
{
	char *copy = xstrndup(text, len);
	char *save = NULL, *line;
	size_t lineno = 0;
	bool have_result = false;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	for (line = strtok_r(copy, "\n", &save); line && rc == 0;
	    line = strtok_r(NULL, "\n", &save)) {
		int64_t v, pid;
		char *f[4];

		if (++lineno == 1) {
			if (status_split(line, f, 3) != 3
			    || strcmp(f[0], "elemtactl") != 0
			    || decimal_parse(f[1], 1, INT32_MAX, &pid) == -1
			    || decimal_parse(f[2], 0, INT64_MAX, &v) == -1)
				rc = error_set(err, "line 1: expected 'elemtactl "
				    "PID SEQ'");
			r->pid = (pid_t)pid;
			r->seq = (uint64_t)v;
		} else if (strncmp(line, "error ", 6) == 0) {
			ctl_reload_result_add(r, line + 6);
		} else if (strcmp(line, "result ok") == 0
		    || strcmp(line, "result failed") == 0) {
			r->ok = line[7] == 'o';
			have_result = true;
		} else if (strncmp(line, "generation ", 11) == 0
		    && decimal_parse(line + 11, 0, UINT32_MAX, &v) == 0) {
			r->generation = (unsigned)v;
		} else {
			rc = error_set(err, "line %zu: unexpected '%.40s'", lineno,
			    line);
		}
	}
	if (rc == 0 && !have_result)
		rc = error_set(err, "no 'result' line");
	free(copy);
	if (rc == -1)
		ctl_reload_result_free(r);
	return rc;
}

/* ctl_reload_result_write - see elemtactl.h. */
int ctl_reload_result_write(const char *dir,
    const struct ctl_reload_result *r, struct error *err)
{
	struct strbuf sb = STRBUF_INIT(STATUS_FILE_MAX);
	int rc;

	if (ctl_reload_result_format(r, &sb) == -1) {
		strbuf_free(&sb);
		return error_set(err, "reload result too large");
	}
	rc = ctl_runtime_file_write(dir, CTL_RELOAD_FILE, strbuf_cstr(&sb),
	    sb.len, err);
	strbuf_free(&sb);
	return rc;
}

/* ctl_reload_result_read - see elemtactl.h. */
int ctl_reload_result_read(const char *dir, struct ctl_reload_result *r,
    struct error *err)
{
	struct strbuf sb = STRBUF_INIT(STATUS_FILE_MAX);
	int rc;

	memset(r, 0, sizeof(*r));
	rc = ctl_runtime_file_read(dir, CTL_RELOAD_FILE, &sb, err);
	if (rc == 1 && ctl_reload_result_parse(strbuf_cstr(&sb), sb.len, r,
	    err) == -1)
		rc = error_prefix(err, "%s/%s", dir, CTL_RELOAD_FILE);
	strbuf_free(&sb);
	return rc;
}

/* ctl_reload_result_remove - see elemtactl.h. */
void ctl_reload_result_remove(const char *dir)
{
	char path[CONFIG_PATH_MAX];

	if (runtime_path(path, sizeof(path), dir, CTL_RELOAD_FILE, NULL) == 0)
		unlink(path);
}

/* ctl_format_duration - see elemtactl.h. */
char *ctl_format_duration(int64_t seconds, char *buf, size_t size)
{
	if (seconds < 0)
		seconds = 0;
	if (seconds < 60)
		snprintf(buf, size, "%" PRId64 "s", seconds);
	else if (seconds < 3600)
		snprintf(buf, size, "%" PRId64 "m", seconds / 60);
	else if (seconds < 86400)
		snprintf(buf, size, "%" PRId64 "h %" PRId64 "m", seconds / 3600,
		    seconds % 3600 / 60);
	else
		snprintf(buf, size, "%" PRId64 "d %" PRId64 "h", seconds / 86400,
		    seconds % 86400 / 3600);
	return buf;
}
