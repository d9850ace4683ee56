/*
 * fdio.h - descriptor I/O that the spool writer (smtpd/spool.c) and the
 * Maildir transport (queued/maildir.c) both need: a write that does not
 * stop at a short count, and a directory's entries made durable; and the
 * atomic file commit of the queue's state files and bounces.
 */
#ifndef ELEMTA_FDIO_H
#define ELEMTA_FDIO_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* fdio_write_all - write(2) all of p[0..len) to fd, resuming after short
 * writes and EINTR.  Returns 0, or -1 with errno from write(2) (ENOSPC
 * and EDQUOT reach the caller unchanged). */
int fdio_write_all(int fd, const void *p, size_t len);

/* fdio_fsync_dir - fsync(2) the directory at path, so the entries a
 * rename, link or mkdir made in it survive a crash.  Returns 0, or -1
 * with errno from open(2) or fsync(2). */
int fdio_fsync_dir(const char *path);

/* fdio_commit_file - data[0..len) into tmp (created 0640, truncated),
 * fsync'd when do_fsync, then renamed to path - over an existing file, or
 * never over one when noreplace (EEXIST then fails) - and dir (path's
 * directory) fsync'd when do_fsync.  tmp and path are on one file system.
 * A reader of path sees the old file or the whole new one; on failure tmp
 * is removed and err names the step and the file.  Returns 0 or -1. */
int fdio_commit_file(const char *tmp, const char *path, const char *dir,
    const void *data, size_t len, bool do_fsync, bool noreplace,
    struct error *err);

#endif
