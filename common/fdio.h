/*
 * fdio.h - descriptor I/O that the spool writer (smtpd/spool.c) and the
 * Maildir transport (queued/maildir.c) both need: a write that does not
 * stop at a short count.
 */
#ifndef ELEMTA_FDIO_H
#define ELEMTA_FDIO_H

#include <stddef.h>

/* fdio_write_all - write(2) all of p[0..len) to fd, resuming after short
 * writes and EINTR.  Returns 0, or -1 with errno from write(2) (ENOSPC
 * and EDQUOT reach the caller unchanged). */
int fdio_write_all(int fd, const void *p, size_t len);

#endif
