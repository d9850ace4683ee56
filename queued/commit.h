/*
 * commit.h - the removal of finished messages' files, batched and made
 * durable on a worker thread, so that elemta-queued's event loop (the
 * SMTP and LMTP sessions to next hops) never waits for the disk to
 * unlink a file or flush a directory.
 *
 * A removal is queued by the loop (commit_remove) and answered on the
 * loop (the done callback, from an event on the base): in between the
 * worker takes every removal queued so far as one batch, unlinks each
 * spool file spool/queue/ID, flushes spool/queue/ once for the whole
 * batch (when spool.fsync), and only then unlinks the message's state
 * file and delete mark: a state file never disappears before its spool
 * file is durably gone, so a crash never leaves a spool file without the
 * state that records its delivered recipients.  A state file left by a
 * crash after the flush is swept at start (queue.c).
 *
 * Caller: queued/queue.c.  The worker touches only the paths it is given
 * and the request records; everything else stays on the loop's thread.
 */
#ifndef ELEMTA_QUEUED_COMMIT_H
#define ELEMTA_QUEUED_COMMIT_H

#include <stdbool.h>

#include "error.h"

struct event_base;
struct commit;

/* What a removal unlinks besides the spool file. */
enum commit_flags {
	COMMIT_STATE = 1 << 0,        /* spool/state/ID exists            */
	COMMIT_DELETE_MARK = 1 << 1,  /* spool/control/ID.delete exists   */
};

/* commit_done_fn - a removal ended: rc 0 (the spool file is gone or was
 * already; durably when spool.fsync) or an errno (unlink or the flush of
 * the directory, what names the step); arg as given to commit_remove. */
typedef void (*commit_done_fn)(void *arg, const char *id, int rc,
    const char *what);

/* commit_new - a worker for the spool at spool (do_fsync: spool.fsync)
 * answering on base; NULL with err set. */
struct commit *commit_new(struct event_base *base, const char *spool,
    bool do_fsync, struct error *err);
/* commit_remove - queue the removal of message id's files (flags: which
 * exist besides the spool file); done(arg, ...) is called from the loop
 * once it ended, never from inside this call. */
void commit_remove(struct commit *c, const char *id, unsigned flags,
    commit_done_fn done, void *arg);
/* commit_pending - removals queued or running whose done has not run. */
unsigned commit_pending(const struct commit *c);
/* commit_free - stop the worker after the batch in hand (removals not
 * answered yet are dropped: a restart finds their files and retries). */
void commit_free(struct commit *c);

#endif
