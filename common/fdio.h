/*
 * fdio.h - descriptor I/O that the spool writer (smtpd/spool.c) and the
 * Maildir transport (queued/maildir.c) both need: a write that does not
 * stop at a short count, and a directory's entries made durable.
 */
#ifndef ELEMTA_FDIO_H
#define ELEMTA_FDIO_H

#include <stddef.h>

/* fdio_write_all - write(2) all of p[0..len) to fd, resuming after short
 * writes and EINTR.  Returns 0, or -1 with errno from write(2) (ENOSPC
 * and EDQUOT reach the caller unchanged). */
int fdio_write_all(int fd, const void *p, size_t len);

/* fdio_fsync_dir - fsync(2) the directory at path, so the entries a
 * rename, link or mkdir made in it survive a crash.  Returns 0, or -1
 * with errno from open(2) or fsync(2). */
int fdio_fsync_dir(const char *path);

#endif
