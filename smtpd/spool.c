/*
 * spool.c - the spool writer: one file per message under tmp/, renamed
 * atomically into queue/ or quarantine/ after everything is on disk (see
 * spool.h for the contract).
 *
 * Called by session.c when DATA starts (open), for each chunk of body
 * (write), at end of data (flush, reader for policyd) and on the final
 * decision (commit or abort).  Runs as the unprivileged smtpd user; the
 * data written is client input, stored byte-exact and never interpreted.
 * The commit (envelope, fsyncs, rename) runs either synchronously
 * (spool_msg_commit, unit tests) or on the committer's threads
 * (spool_commit_submit): a job owns its message and a private copy of
 * the envelope, the threads touch nothing else, and completions are
 * handed back to the event loop through an eventfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "error.h"
#include "fdio.h"
#include "log.h"
#include "msg_edit.h"
#include "command.h"
#include "queue_file.h"
#include "spool.h"
#include "strbuf.h"

/*==== Queue ids ====*/

/* spool_queue_id_new - the spool's id scheme (common/queue_file.c). */
void
spool_queue_id_new(char out[SPOOL_ID_LEN + 1])
{
	queue_file_id_new(out);
}

/*==== Helpers ====*/

#define SPOOL_SPACE_TTL_MS 1000   /* spool_space_ok measures this often */

/* spool_errno_no_space - errno says the file system is full. */
static bool
spool_errno_no_space(int e)
{
	return e == ENOSPC || e == EDQUOT;
}

/* spool_fail - mark m failed (for want of space when errno says so) and
 * return what its callers return; errno is left as it was. */
static int
spool_fail(struct spool_msg *m)
{
	m->failed = true;
	if (spool_errno_no_space(errno))
		m->no_space = true;
	return m->no_space ? SPOOL_NO_SPACE : -1;
}

/* spool_space_ok - see spool.h. */
bool
spool_space_ok(const char *spool, uint64_t min_free, uint64_t need)
{
	static char path[PATH_MAX];
	static uint64_t avail, measured_ms;
	struct timespec ts;
	struct statvfs sv;
	uint64_t now_ms;

	if (min_free == 0)
		return true;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	if (measured_ms == 0 || now_ms - measured_ms >= SPOOL_SPACE_TTL_MS ||
	    strcmp(path, spool) != 0) {
		if (statvfs(spool, &sv) < 0) {
			log_warn("spool: statvfs %s: %s", spool,
			    strerror(errno));
			return true;
		}
		str_copy(path, spool, sizeof(path));
		avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
		measured_ms = now_ms ? now_ms : 1;
	}
	return avail >= min_free && avail - min_free >= need;
}

/* spool_fsync_path - fsync a directory by name. */
static int
spool_fsync_path(const char *path, struct error *err)
{
	if (fdio_fsync_dir(path) < 0)
		return error_set(err, "fsync %s: %s", path, strerror(errno));
	return 0;
}

/* spool_prepare - mkdir the three spool directories when missing. */
int
spool_prepare(const char *spool, struct error *err)
{
	static const char *const subs[] = { "", "/tmp", "/queue", "/quarantine" };
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s%s", spool, subs[i]) >=
		    sizeof(path))
			return error_set(err, "spool path too long");
		if (mkdir(path, 0750) < 0 && errno != EEXIST)
			return error_set(err, "mkdir %s: %s", path,
			    strerror(errno));
	}
	return 0;
}

/*==== Messages ====*/

/* Named files: the file system refused O_TMPFILE once (learnt, so every
 * later message skips the attempt), or spool_use_named_files.  Messages
 * are opened by the event-loop thread only. */
static bool spool_named;

/* spool_use_named_files - see spool.h. */
void
spool_use_named_files(bool on)
{
	spool_named = on;
}

static void spool_msg_close(struct spool_msg *m);

/* spool_msg_create - open m's file; a named one is tmp/<id><suffix>. */
static int
spool_msg_create(struct spool_msg *m, const char *spool, const char *id,
    const char *suffix, struct error *err)
{
	char dir[PATH_MAX], path[PATH_MAX];

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	str_copy(m->id, id, sizeof(m->id));
	m->spool = spool;
	if ((size_t)snprintf(path, sizeof(path), "%s/tmp/%s%s", spool, id,
	    suffix) >= sizeof(path))
		return error_set(err, "spool path too long");
	snprintf(dir, sizeof(dir), "%s/tmp", spool);
	if (!spool_named) {
		m->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
		m->anonymous = m->fd >= 0;
		if (m->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR))
			spool_named = true;
	}
	if (spool_named)
		m->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0640);
	if (m->fd < 0) {
		int rc = spool_errno_no_space(errno) ? SPOOL_NO_SPACE : -1;

		error_set(err, "create %s: %s", path, strerror(errno));
		return rc;
	}
	m->tmppath = xstrdup(path);
	m->open = true;
	m->buf = xmalloc(SPOOL_BUF_SIZE);
	return 0;
}

/* spool_msg_open - the file that receives the message: an unnamed
 * O_TMPFILE inode in tmp/ (nothing to clean after a crash, and the commit
 * links it into queue/ without the file system's rename lock), or, where
 * the file system cannot, a file named tmp/<id>. */
int
spool_msg_open(struct spool_msg *m, const char *spool, const char *id,
    struct error *err)
{
	return spool_msg_create(m, spool, id, "", err);
}

/* spool_fd_path - the /proc name of m's descriptor, which reaches the
 * inode even when it has no name of its own. */
static void
spool_fd_path(const struct spool_msg *m, char *buf, size_t size)
{
	snprintf(buf, size, "/proc/self/fd/%d", m->fd);
}

/* spool_msg_flush - write the buffered bytes to the file. */
int
spool_msg_flush(struct spool_msg *m, struct error *err)
{
	if (m->failed) {
		error_set(err, "an earlier write of message %s failed%s",
		    m->id, m->no_space ? ": no space left" : "");
		return m->no_space ? SPOOL_NO_SPACE : -1;
	}
	if (m->buflen > 0 && fdio_write_all(m->fd, m->buf, m->buflen) < 0) {
		int rc = spool_fail(m);

		error_set(err, "write %s: %s", m->tmppath, strerror(errno));
		return rc;
	}
	m->buflen = 0;
	return 0;
}

/* spool_msg_write - append through the buffer; large writes go direct. */
int
spool_msg_write(struct spool_msg *m, const void *data, size_t len,
    struct error *err)
{
	int rc;

	if (m->failed)
		return m->no_space ? SPOOL_NO_SPACE : -1;
	m->size += len;
	if (m->buflen + len <= SPOOL_BUF_SIZE) {
		memcpy(m->buf + m->buflen, data, len);
		m->buflen += len;
		return 0;
	}
	if ((rc = spool_msg_flush(m, err)) < 0)
		return rc;
	if (len >= SPOOL_BUF_SIZE / 2) {
		if (fdio_write_all(m->fd, data, len) < 0) {
			rc = spool_fail(m);
			error_set(err, "write %s: %s", m->tmppath,
			    strerror(errno));
			return rc;
		}
		return 0;
	}
	memcpy(m->buf, data, len);
	m->buflen = len;
	return 0;
}

/* spool_msg_reader - a separate read-only open file description, so the
 * reader's offset never moves ours.  Until the commit the file holds the
 * message and nothing else (the envelope comes after the EOM decision). */
int
spool_msg_reader(const struct spool_msg *m, struct error *err)
{
	char proc[64];
	int fd;

	spool_fd_path(m, proc, sizeof(proc));
	fd = open(m->anonymous ? proc : m->tmppath, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return error_set(err, "open %s: %s", m->tmppath,
		    strerror(errno));
	return fd;
}

/* spool_envelope_safe - every value is one line to any reader
 * (command_text_safe: no control, U+2028/U+2029 or bidi control).  The
 * protocol fields were refused earlier when they were not; this is the
 * format's own guarantee, whatever a caller passes. */
static int
spool_envelope_safe(const struct spool_envelope *env, struct error *err)
{
	const char *strs[] = { env->client_address, env->client_name,
	    env->helo, env->protocol, env->tls, env->auth_user, env->sender };

	for (size_t i = 0; i < sizeof(strs) / sizeof(*strs); i++)
		if (strs[i] != NULL && !command_text_safe(strs[i], strlen(strs[i])))
			return error_set(err, "envelope value %zu has a "
			    "character a reader would split on", i);
	for (size_t i = 0; i < env->recipient_count; i++)
		if (!command_text_safe(env->recipients[i],
		    strlen(env->recipients[i])))
			return error_set(err, "envelope recipient %zu has a "
			    "character a reader would split on", i);
	return 0;
}

/* spool_envelope_write - append the envelope (docs/internals.md format)
 * after the message; values come from validated protocol fields and are
 * checked once more here (spool_envelope_safe).  The last line, "size: "
 * and 20 digits, has a fixed length, so a reader finds where the message
 * ends from the file's tail. */
static int
spool_envelope_write(struct spool_msg *m, const struct spool_envelope *env,
    struct error *err)
{
	struct strbuf sb = STRBUF_INIT(64u << 20);
	int rc = 0;

	if (spool_envelope_safe(env, err) < 0)
		return -1;
	if (queue_envelope_format(&sb, m->id, env, m->size) < 0) {
		strbuf_free(&sb);
		return error_set(err, "envelope too large");
	}
	if (fdio_write_all(m->fd, sb.data, sb.len) < 0) {
		rc = spool_fail(m);
		error_set(err, "write %s: %s", m->tmppath, strerror(errno));
	}
	strbuf_free(&sb);
	return rc;
}

/* spool_msg_close - release memory and descriptors, keep files. */
static void
spool_msg_close(struct spool_msg *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	free(m->buf);
	m->buf = NULL;
	m->buflen = 0;
	free(m->tmppath);
	m->tmppath = NULL;
	m->open = false;
}

/* spool_dest_dir - spool/queue or spool/quarantine. */
static void
spool_dest_dir(const char *spool, enum spool_dest dest, char *buf,
    size_t size)
{
	snprintf(buf, size, "%s/%s", spool,
	    dest == SPOOL_QUARANTINE ? "quarantine" : "queue");
}

/* spool_link_anonymous - give m's unnamed inode the name target.  Linux
 * 6.10 and later let the process that opened it link it by descriptor
 * (AT_EMPTY_PATH); older kernels allow that to CAP_DAC_READ_SEARCH only
 * (ENOENT), so then through its /proc name, which costs a path walk. */
static int
spool_link_anonymous(const struct spool_msg *m, const char *target)
{
	static atomic_bool by_proc;   /* learnt once; committer threads */
	char proc[64];

	if (!atomic_load_explicit(&by_proc, memory_order_relaxed)) {
		if (linkat(m->fd, "", AT_FDCWD, target, AT_EMPTY_PATH) == 0)
			return 0;
		if (errno != ENOENT && errno != EPERM && errno != EINVAL)
			return -1;
	}
	spool_fd_path(m, proc, sizeof(proc));
	if (linkat(AT_FDCWD, proc, AT_FDCWD, target, AT_SYMLINK_FOLLOW) < 0)
		return -1;
	/* Refused by descriptor but not by name: this kernel is older. */
	atomic_store_explicit(&by_proc, true, memory_order_relaxed);
	return 0;
}

/* spool_commit_begin - the commit up to and including the rename; the
 * destination directory's fsync is left to the caller (so a batch of
 * commits can share one).  m is closed either way. */
static int
spool_commit_begin(struct spool_msg *m, const struct spool_envelope *env,
    enum spool_dest dest, bool do_fsync, struct error *err)
{
	char target[PATH_MAX + SPOOL_ID_LEN + 2], parent[PATH_MAX];
	int rc;

	if (!m->open)
		return error_set(err, "message not open");
	if ((rc = spool_msg_flush(m, err)) < 0 ||
	    (rc = spool_envelope_write(m, env, err)) < 0)
		goto fail;
	/* fdatasync: the size changed, so it flushes the inode too (a named
	 * tmp/ entry need not be durable: the rename replaces it).  Delayed
	 * allocation may find the disk full only now. */
	if (do_fsync && fdatasync(m->fd) < 0) {
		rc = spool_fail(m);
		error_set(err, "fsync %s: %s", m->tmppath, strerror(errno));
		goto fail;
	}
	spool_dest_dir(m->spool, dest, parent, sizeof(parent));
	snprintf(target, sizeof(target), "%s/%s", parent, m->id);
	/* Never replace: a (theoretical) id collision must fail, not
	 * overwrite someone else's message - link(2) and RENAME_NOREPLACE
	 * refuse to (where the file system lacks RENAME_NOREPLACE, link +
	 * unlink). */
	if (m->anonymous ? spool_link_anonymous(m, target) < 0 :
	    renameat2(AT_FDCWD, m->tmppath, AT_FDCWD, target,
	    RENAME_NOREPLACE) < 0 && (errno != EINVAL ||
	    link(m->tmppath, target) < 0 || unlink(m->tmppath) < 0)) {
		rc = spool_fail(m);
		error_set(err, "%s %s to %s: %s", m->anonymous ? "link" :
		    "rename", m->tmppath, target, strerror(errno));
		goto fail;
	}
	spool_msg_close(m);
	return 0;
fail:
	spool_msg_abort(m);
	return rc;
}

/* spool_msg_commit - envelope, fsyncs, rename, fsync of the parent.  A
 * failing parent fsync leaves the (complete) message in place and
 * reports the failure: the client retries, and a duplicate beats a loss. */
int
spool_msg_commit(struct spool_msg *m, const struct spool_envelope *env,
    enum spool_dest dest, bool do_fsync, struct error *err)
{
	char parent[PATH_MAX];
	const char *spool = m->spool;
	int rc;

	if ((rc = spool_commit_begin(m, env, dest, do_fsync, err)) < 0)
		return rc;
	if (!do_fsync)
		return 0;
	spool_dest_dir(spool, dest, parent, sizeof(parent));
	return spool_fsync_path(parent, err);
}

/* spool_edit_write - msg_edits_apply's sink: the new tmp file. */
static int
spool_edit_write(void *arg, const void *data, size_t len, struct error *err)
{
	return spool_msg_write(arg, data, len, err) < 0 ? -1 : 0;
}

/* spool_msg_apply_edits - see spool.h. */
int
spool_msg_apply_edits(struct spool_msg *m, const struct msg_edits *edits,
    struct error *err)
{
	struct spool_msg n;
	int in, rc;

	if ((rc = spool_msg_flush(m, err)) < 0)
		return rc;
	if ((in = spool_msg_reader(m, err)) < 0)
		return -1;
	/* A named file cannot share its name with the one it replaces:
	 * the copy gets its own, renamed over the original once whole. */
	if ((rc = spool_msg_create(&n, m->spool, m->id, m->anonymous ? "" :
	    ".edit", err)) < 0) {
		close(in);
		return rc;
	}
	rc = msg_edits_apply(edits, in, m->size, spool_edit_write, &n, err);
	close(in);
	if (rc == 0)
		rc = spool_msg_flush(&n, err);
	else if (n.failed)
		rc = n.no_space ? SPOOL_NO_SPACE : -1;
	if (rc == 0 && !n.anonymous && rename(n.tmppath, m->tmppath) != 0)
		rc = error_set(err, "rename %s: %s", n.tmppath, strerror(errno));
	if (rc < 0) {
		spool_msg_abort(&n);
		return rc;
	}
	if (!n.anonymous) {
		free(n.tmppath);
		n.tmppath = xstrdup(m->tmppath);
	}
	spool_msg_close(m);   /* the old inode goes (renamed over, or unnamed) */
	*m = n;
	return 0;
}

/* spool_msg_abort - drop the message (an unnamed file goes with its
 * descriptor). */
void
spool_msg_abort(struct spool_msg *m)
{
	if (!m->open)
		return;
	if (!m->anonymous && m->tmppath != NULL && unlink(m->tmppath) < 0 &&
	    errno != ENOENT)
		log_warn("spool: unlink %s: %s", m->tmppath, strerror(errno));
	spool_msg_close(m);
}

/*==== Asynchronous commits ====*/

#define SPOOL_SYNC_WAIT_US 1000   /* a link waits this long at most for
                                   * others to share its directory fsync */

struct spool_job {
	struct spool_job *next;
	struct spool_msg msg;         /* owned                          */
	struct spool_envelope env;    /* strings point into arena       */
	char *arena;
	char **rcpts;
	char **orcpt;                 /* into arena                     */
	unsigned *notify;
	enum spool_dest dest;
	bool do_fsync;
	bool cancelled;               /* main thread only               */
	int rc;
	struct error err;
	spool_done_fn done;
	void *arg;
};

struct spool_committer {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct spool_job *todo_head, *todo_tail;
	struct spool_job *sync_head;  /* renamed, awaiting the dir fsync */
	struct timespec sync_since;   /* when sync_head got its first   */
	unsigned inflight;            /* jobs between dequeue and link  */
	bool syncing;                 /* a thread is fsyncing the dirs  */
	unsigned long sync_batches;   /* directory syncs done (tests)   */
	char *spool;                  /* spool.path it commits into     */
	int dir_fd[2];                /* its queue/, quarantine/        */
	struct spool_job *done_head;  /* order does not matter          */
	bool stopping;
	pthread_t *threads;
	unsigned nthreads;
	int efd;                      /* eventfd: completions waiting   */
	struct event *ev;
};

/* spool_notify - wake the event loop: completions are waiting.  Cannot
 * fail short of a counter overflow (2^64 - 1). */
static void
spool_notify(struct spool_committer *sc)
{
	uint64_t one = 1;

	(void)!write(sc->efd, &one, sizeof(one));
}

/* spool_sync_batch - one fsync of the destination directories covers
 * every rename done before it started: group commit for the batch. */
static void
spool_sync_batch(struct spool_committer *sc, struct spool_job *batch)
{
	bool need[2] = { false, false };
	struct error err;
	int rc = 0;

	for (struct spool_job *j = batch; j != NULL; j = j->next)
		need[j->dest == SPOOL_QUARANTINE] = true;
	for (int d = 0; d < 2 && rc == 0; d++)
		if (need[d] && fsync(sc->dir_fd[d]) < 0)
			rc = error_set(&err, "fsync %s/%s: %s", sc->spool,
			    d ? "quarantine" : "queue", strerror(errno));
	pthread_mutex_lock(&sc->lock);
	while (batch != NULL) {
		struct spool_job *next = batch->next;

		if (rc < 0) {
			batch->rc = -1;
			batch->err = err;
		}
		batch->next = sc->done_head;
		sc->done_head = batch;
		batch = next;
	}
	sc->syncing = false;
	sc->sync_batches++;
	if (sc->sync_head != NULL)
		pthread_cond_signal(&sc->wake);
	pthread_mutex_unlock(&sc->lock);
	spool_notify(sc);
}

/* spool_sync_deadline - when links pending since since must be synced
 * at the latest (since + SPOOL_SYNC_WAIT_US), on the condition's clock. */
static struct timespec
spool_sync_deadline(struct timespec since)
{
	since.tv_nsec += SPOOL_SYNC_WAIT_US * 1000L;
	if (since.tv_nsec >= 1000000000L) {
		since.tv_sec++;
		since.tv_nsec -= 1000000000L;
	}
	return since;
}

/* spool_sync_is_due - see spool.h. */
bool
spool_sync_is_due(bool pending, bool syncing, unsigned inflight,
    bool stopping, struct timespec since, struct timespec now)
{
	struct timespec due;

	if (!pending || syncing)
		return false;
	if (inflight == 0 || stopping)
		return true;
	due = spool_sync_deadline(since);
	return now.tv_sec > due.tv_sec ||
	    (now.tv_sec == due.tv_sec && now.tv_nsec >= due.tv_nsec);
}

/* spool_sync_due - spool_sync_is_due for the committer's state now. */
static bool
spool_sync_due(const struct spool_committer *sc)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return spool_sync_is_due(sc->sync_head != NULL, sc->syncing,
	    sc->inflight, sc->stopping, sc->sync_since, now);
}

/* spool_thread - commit jobs; linked ones wait in sync_head for the next
 * directory fsync, which one thread at a time performs for all of them.
 * A directory fsync costs a disk flush like the file's own, so it waits
 * (briefly) for the commits still in flight to link first: under load
 * one directory flush then covers most of them instead of each paying
 * its own.  Exits when stopping and nothing is left for it. */
static void *
spool_thread(void *arg)
{
	struct spool_committer *sc = arg;

	for (;;) {
		struct spool_job *j;
		bool sync_now;

		pthread_mutex_lock(&sc->lock);
		for (;;) {
			sync_now = spool_sync_due(sc);
			if (sync_now || sc->todo_head != NULL ||
			    (sc->stopping && sc->sync_head == NULL))
				break;
			if (sc->sync_head != NULL && !sc->syncing) {
				struct timespec due = spool_sync_deadline(
				    sc->sync_since);

				pthread_cond_timedwait(&sc->wake, &sc->lock,
				    &due);
			} else {
				pthread_cond_wait(&sc->wake, &sc->lock);
			}
		}
		if (sync_now) {
			struct spool_job *batch = sc->sync_head;

			sc->sync_head = NULL;
			sc->syncing = true;
			pthread_mutex_unlock(&sc->lock);
			spool_sync_batch(sc, batch);
			continue;
		}
		j = sc->todo_head;
		if (j == NULL) {
			pthread_mutex_unlock(&sc->lock);
			return NULL;     /* stopping, nothing to do */
		}
		sc->todo_head = j->next;
		if (sc->todo_head == NULL)
			sc->todo_tail = NULL;
		sc->inflight++;
		pthread_mutex_unlock(&sc->lock);

		j->rc = spool_commit_begin(&j->msg, &j->env, j->dest,
		    j->do_fsync, &j->err);

		pthread_mutex_lock(&sc->lock);
		sc->inflight--;
		if (j->rc == 0 && j->do_fsync) {
			if (sc->sync_head == NULL)
				clock_gettime(CLOCK_MONOTONIC, &sc->sync_since);
			j->next = sc->sync_head;
			sc->sync_head = j;
			/* No wake-up: this thread decides at the top of its
			 * loop whether the batch is due (it is when no other
			 * commit is in flight) and otherwise waits for the
			 * deadline itself; waking another thread here only
			 * cost two context switches per message. */
			pthread_mutex_unlock(&sc->lock);
			continue;
		}
		/* A batch this job kept waiting is due now: this thread
		 * sees it at the top of its loop (no wake-up needed). */
		j->next = sc->done_head;
		sc->done_head = j;
		pthread_mutex_unlock(&sc->lock);
		spool_notify(sc);
	}
}

/* spool_job_free - a finished job's memory. */
static void
spool_job_free(struct spool_job *j)
{
	spool_msg_abort(&j->msg);     /* no-op after a commit */
	free(j->arena);
	free(j->rcpts);
	free(j->orcpt);
	free(j->notify);
	free(j);
}

/* spool_committer_drain - run the callbacks of finished jobs. */
static void
spool_committer_drain(struct spool_committer *sc)
{
	struct spool_job *j;
	uint64_t n;

	if (read(sc->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("spool: eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&sc->lock);
	j = sc->done_head;
	sc->done_head = NULL;
	pthread_mutex_unlock(&sc->lock);
	while (j != NULL) {
		struct spool_job *next = j->next;

		if (!j->cancelled)
			j->done(j->arg, j->rc, j->rc < 0 ? j->err.text : "");
		else if (j->rc == 0)
			log_info("spool: %s committed after its session ended",
			    j->msg.id);
		spool_job_free(j);
		j = next;
	}
}

/* spool_committer_cb - the eventfd is readable. */
static void
spool_committer_cb(evutil_socket_t fd, short what, void *arg)
{
	spool_committer_drain(arg);
}

/* spool_committer_new - open spool's destination directories (their
 * descriptors serve every directory fsync), start the threads. */
struct spool_committer *
spool_committer_new(struct event_base *base, const char *spool,
    unsigned nthreads, struct error *err)
{
	struct spool_committer *sc = xcalloc(1, sizeof(*sc));
	pthread_condattr_t ca;

	pthread_mutex_init(&sc->lock, NULL);
	/* spool_sync_deadline is on CLOCK_MONOTONIC. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sc->wake, &ca);
	pthread_condattr_destroy(&ca);
	sc->spool = xstrdup(spool);
	sc->efd = sc->dir_fd[0] = sc->dir_fd[1] = -1;
	for (int d = 0; d < 2; d++) {
		char dir[PATH_MAX];

		spool_dest_dir(spool, d ? SPOOL_QUARANTINE : SPOOL_QUEUE, dir,
		    sizeof(dir));
		sc->dir_fd[d] = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sc->dir_fd[d] < 0) {
			error_set(err, "open %s: %s", dir, strerror(errno));
			goto fail;
		}
	}
	sc->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (sc->efd < 0) {
		error_set(err, "eventfd: %s", strerror(errno));
		goto fail;
	}
	sc->ev = event_new(base, sc->efd, EV_READ | EV_PERSIST,
	    spool_committer_cb, sc);
	if (sc->ev == NULL || event_add(sc->ev, NULL) < 0) {
		error_set(err, "spool committer: event setup failed");
		goto fail;
	}
	sc->threads = xcalloc(nthreads, sizeof(*sc->threads));
	for (unsigned i = 0; i < nthreads; i++) {
		int rc = pthread_create(&sc->threads[i], NULL, spool_thread, sc);

		if (rc != 0) {
			error_set(err, "pthread_create: %s", strerror(rc));
			goto fail;
		}
		sc->nthreads = i + 1;
	}
	return sc;
fail:
	spool_committer_free(sc);
	return NULL;
}

/* spool_committer_sync_batches - see spool.h. */
unsigned long
spool_committer_sync_batches(struct spool_committer *sc)
{
	unsigned long n;

	pthread_mutex_lock(&sc->lock);
	n = sc->sync_batches;
	pthread_mutex_unlock(&sc->lock);
	return n;
}

/* spool_committer_free - stop after the queued jobs; run what is left. */
void
spool_committer_free(struct spool_committer *sc)
{
	if (sc == NULL)
		return;
	pthread_mutex_lock(&sc->lock);
	sc->stopping = true;
	pthread_cond_broadcast(&sc->wake);
	pthread_mutex_unlock(&sc->lock);
	for (unsigned i = 0; i < sc->nthreads; i++)
		pthread_join(sc->threads[i], NULL);
	if (sc->efd >= 0)         /* else nothing was ever submitted */
		spool_committer_drain(sc);
	if (sc->ev != NULL)
		event_free(sc->ev);
	if (sc->efd >= 0)
		close(sc->efd);
	for (int d = 0; d < 2; d++)
		if (sc->dir_fd[d] >= 0)
			close(sc->dir_fd[d]);
	free(sc->spool);
	free(sc->threads);
	pthread_mutex_destroy(&sc->lock);
	pthread_cond_destroy(&sc->wake);
	free(sc);
}

/* spool_arena_put - copy s into the arena at *off. */
static const char *
spool_arena_put(char *arena, size_t *off, const char *s)
{
	char *p = arena + *off;
	size_t n = strlen(s ? s : "") + 1;

	memcpy(p, s ? s : "", n);
	*off += n;
	return p;
}

/* spool_commit_submit - queue a commit; the job owns m and an env copy. */
struct spool_job *
spool_commit_submit(struct spool_committer *sc, struct spool_msg *m,
    const struct spool_envelope *env, enum spool_dest dest, bool do_fsync,
    spool_done_fn done, void *arg)
{
	struct spool_job *j = xcalloc(1, sizeof(*j));
	const char *strs[] = { env->client_address, env->client_name,
	    env->helo, env->protocol, env->tls, env->auth_user, env->sender };
	size_t total = 0, off = 0;

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		total += strlen(strs[i] ? strs[i] : "") + 1;
	for (size_t i = 0; i < env->recipient_count; i++)
		total += strlen(env->recipients[i]) + 1 +
		    (env->orcpt != NULL && env->orcpt[i] != NULL ?
		    strlen(env->orcpt[i]) + 1 : 0);
	total += env->envid != NULL ? strlen(env->envid) + 1 : 0;
	j->arena = xmalloc(total);
	j->rcpts = xcalloc(env->recipient_count + 1, sizeof(*j->rcpts));
	j->env = *env;
	j->env.client_address = spool_arena_put(j->arena, &off,
	    env->client_address);
	j->env.client_name = spool_arena_put(j->arena, &off, env->client_name);
	j->env.helo = spool_arena_put(j->arena, &off, env->helo);
	j->env.protocol = spool_arena_put(j->arena, &off, env->protocol);
	j->env.tls = spool_arena_put(j->arena, &off, env->tls);
	j->env.auth_user = spool_arena_put(j->arena, &off, env->auth_user);
	j->env.sender = spool_arena_put(j->arena, &off, env->sender);
	for (size_t i = 0; i < env->recipient_count; i++)
		j->rcpts[i] = (char *)spool_arena_put(j->arena, &off,
		    env->recipients[i]);
	j->env.recipients = j->rcpts;
	if (env->envid != NULL)
		j->env.envid = spool_arena_put(j->arena, &off, env->envid);
	if (env->notify != NULL) {
		j->notify = xcalloc(env->recipient_count + 1,
		    sizeof(*j->notify));
		memcpy(j->notify, env->notify,
		    env->recipient_count * sizeof(*j->notify));
		j->env.notify = j->notify;
	}
	if (env->orcpt != NULL) {
		j->orcpt = xcalloc(env->recipient_count + 1,
		    sizeof(*j->orcpt));
		for (size_t i = 0; i < env->recipient_count; i++)
			if (env->orcpt[i] != NULL)
				j->orcpt[i] = (char *)spool_arena_put(j->arena,
				    &off, env->orcpt[i]);
		j->env.orcpt = j->orcpt;
	}
	j->msg = *m;
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	j->dest = dest;
	j->do_fsync = do_fsync;
	j->done = done;
	j->arg = arg;

	pthread_mutex_lock(&sc->lock);
	if (sc->todo_tail != NULL)
		sc->todo_tail->next = j;
	else
		sc->todo_head = j;
	sc->todo_tail = j;
	pthread_cond_signal(&sc->wake);
	pthread_mutex_unlock(&sc->lock);
	return j;
}

/* spool_job_cancel - forget the callback (main thread only). */
void
spool_job_cancel(struct spool_job *j)
{
	if (j != NULL)
		j->cancelled = true;
}
