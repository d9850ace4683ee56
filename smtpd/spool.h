/*
 * spool.h - the spool writer of elemta-smtpd.
 *
 * Layout and durability contract (docs/internals.md, "Spool"): one file
 * per message, the message bytes first and the envelope after them,
 * ending in a fixed-width "size:" line that says where the envelope
 * begins.
 *   spool.path/tmp/              being received: an unnamed O_TMPFILE
 *                                inode (tmp/<id> where the file system
 *                                has no O_TMPFILE); message bytes only
 *   spool.path/queue/<id>        accepted: message + envelope
 *   spool.path/quarantine/<id>   quarantined
 * On commit the envelope is appended, the file fsync'd and linked
 * (renamed) into place - never over an existing file - and the destination
 * directory fsync'd; only then may the caller answer 250.  Every failure
 * path drops the tmp file, and a killed worker's unnamed files vanish with
 * it, so nothing partial survives in tmp/ or ever shows in queue/.  One
 * inode and one file fsync per message (plus a directory fsync shared by a
 * batch): inode allocation was the receive path's largest cost with a
 * directory and two files per message, and cross-directory renames the
 * next (they take the file system's rename lock).  With spool.fsync false the fsyncs are
 * skipped (benchmarks).
 */
#ifndef ELEMTA_SMTPD_SPOOL_H
#define ELEMTA_SMTPD_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "error.h"
#include "queue_file.h"

#define SPOOL_ID_LEN 16           /* upper-case hex digits */
#define SPOOL_BUF_SIZE 8192       /* write buffer, allocated while open */
#define SPOOL_SIZE_DIGITS 20      /* "size: " + 20 digits + LF ends a file */
/* What spool_msg_open, _write, _flush and _commit (and so a commit's
 * done callback) return instead of -1 when they failed for want of space
 * (ENOSPC, EDQUOT): the session answers 452 4.3.1 instead of 451 4.3.0.
 * Still < 0, and the message is dropped as on any failure. */
#define SPOOL_NO_SPACE (-2)

/* A message being received.  Zero-initialised means "not open". */
struct spool_msg {
	char id[SPOOL_ID_LEN + 1];
	char *tmppath;            /* spool/tmp/<id>, owned (a name only in
	                           * logs when anonymous)                  */
	bool anonymous;           /* an O_TMPFILE inode, linked at commit */
	const char *spool;        /* spool.path, borrowed                 */
	int fd;                   /* message file, -1 when closed         */
	char *buf;                /* pending bytes, owned                 */
	size_t buflen;
	uint64_t size;            /* bytes written to the message so far  */
	bool open;
	bool failed;              /* a write failed: the message is lost  */
	bool no_space;            /* ... for want of space                */
};

/* The envelope stored after the message: common/queue_file.h owns its
 * fields and its format (elemta-queued writes bounces in it too). */
#define spool_envelope queue_envelope

enum spool_dest { SPOOL_QUEUE, SPOOL_QUARANTINE };

/* spool_queue_id_new - a fresh id: microseconds since the epoch
 * (strictly increasing within the process) in 13 hex digits, then 3 hex
 * digits of the pid, so ids from concurrent workers do not collide. */
void spool_queue_id_new(char out[SPOOL_ID_LEN + 1]);

/* spool_prepare - create spool/{tmp,queue,quarantine} when missing (for
 * `elemta-smtpd --bind`; elemtactl normally does it). */
int spool_prepare(const char *spool, struct error *err);

/* spool_space_ok - whether spool's file system has min_free + need
 * bytes free for unprivileged users (statvfs f_bavail; Postfix's
 * queue_minfree).  Measured at most once a second per process, so a
 * MAIL storm is no statvfs storm; min_free 0 turns the check off; a
 * failing statvfs passes (logged): the writes then report a full disk
 * themselves. */
bool spool_space_ok(const char *spool, uint64_t min_free, uint64_t need);

/* spool_msg_open - create the (unnamed) tmp file of message id. */
int spool_msg_open(struct spool_msg *m, const char *spool, const char *id,
    struct error *err);
/* spool_msg_write - append bytes (buffered).  After a failure the message
 * is marked failed and further writes are ignored; commit then fails. */
int spool_msg_write(struct spool_msg *m, const void *data, size_t len,
    struct error *err);
/* spool_msg_flush - write out the buffer (before policyd reads the file). */
int spool_msg_flush(struct spool_msg *m, struct error *err);
/* spool_msg_reader - a new read-only descriptor of the message file
 * (close-on-exec), or -1. */
int spool_msg_reader(const struct spool_msg *m, struct error *err);
/* spool_msg_apply_edits - replace the message (flushed, not yet
 * committed) with the same bytes after edits' header and body edits
 * (common/msg_edit.h): the new content is written to a new tmp file
 * which then takes the old one's place, so on failure (-1 or
 * SPOOL_NO_SPACE, err filled) m is exactly as received and stays open
 * (the caller aborts or answers as it sees fit).  Envelope edits are the
 * caller's.  The one path every edit of a message takes before commit:
 * the milters' and the headers end of data's answer prepended
 * (smtpd/session.c session_eom_edits); readers opened before keep the
 * old bytes. */
struct msg_edits;
int spool_msg_apply_edits(struct spool_msg *m, const struct msg_edits *edits,
    struct error *err);
/* spool_msg_commit - append the envelope, fsync, link (rename) into
 * queue/ or quarantine/, fsync the destination directory.  On failure the
 * tmp file is dropped.  Either way the message is closed afterwards. */
int spool_msg_commit(struct spool_msg *m, const struct spool_envelope *env,
    enum spool_dest dest, bool do_fsync, struct error *err);
/* spool_msg_abort - drop the tmp file and close (idempotent). */
void spool_msg_abort(struct spool_msg *m);

/*==== Asynchronous commits ====
 *
 * The fsyncs of a commit take a good part of a millisecond; done in the
 * event loop they would stall every session of the worker.  A committer
 * runs spool_msg_commit on a few threads instead (concurrent fsyncs also
 * share journal commits) and reports back in the event loop thread. */

struct event_base;
struct spool_committer;
struct spool_job;

/* done(arg, rc, error text) runs in the event loop thread; rc is 0 when
 * the message is durable in queue/ or quarantine/. */
typedef void (*spool_done_fn)(void *arg, int rc, const char *errtext);

/* spool_committer_new - nthreads commit threads reporting to base, for
 * messages opened under spool (spool_msg_open's spool): its queue/ and
 * quarantine/ are opened now, so a missing one fails here, at start. */
struct spool_committer *spool_committer_new(struct event_base *base,
    const char *spool, unsigned nthreads, struct error *err);
/* spool_sync_is_due - the committer's group-commit rule on plain values
 * (unit-tested): links are pending and no directory sync is running, and
 * either no other commit is in flight (the last one syncs for the batch),
 * or the first pending link (since) waited its 1 ms, or the committer is
 * stopping.  Clocks are CLOCK_MONOTONIC. */
bool spool_sync_is_due(bool pending, bool syncing, unsigned inflight,
    bool stopping, struct timespec since, struct timespec now);
/* spool_use_named_files - receive into named files tmp/<id> (renamed
 * into place at commit) instead of unnamed O_TMPFILE inodes: what a file
 * system without O_TMPFILE gets automatically; tests use it to exercise
 * that path. */
void spool_use_named_files(bool on);

/* spool_committer_sync_batches - how many directory syncs (each covering
 * every commit linked before it) the committer has done: its group
 * commit, observable (tests, diagnostics). */
unsigned long spool_committer_sync_batches(struct spool_committer *sc);
/* spool_committer_free - finish the queued jobs, join the threads. */
void spool_committer_free(struct spool_committer *sc);
/* spool_commit_submit - commit m (taken over: *m is left closed) with a
 * copy of env.  Never calls done from inside. */
struct spool_job *spool_commit_submit(struct spool_committer *sc,
    struct spool_msg *m, const struct spool_envelope *env,
    enum spool_dest dest, bool do_fsync, spool_done_fn done, void *arg);
/* spool_job_cancel - done will not run; the commit still completes (or
 * cleans up after itself). */
void spool_job_cancel(struct spool_job *j);

#endif
