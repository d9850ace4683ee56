/*
 * fdpass.h - passing file descriptors over Unix sockets (SCM_RIGHTS).
 *
 * smtpd passes the spooled message to policyd at END-OF-MESSAGE as a
 * read-only descriptor alongside the request bytes; elemtactl uses the same
 * calls nowhere else.  Descriptors elemtactl hands its workers at exec are
 * named by environment variables (fdpass_env_number reads them).
 */
#ifndef ELEMTA_FDPASS_H
#define ELEMTA_FDPASS_H

#include <sys/types.h>

/* fdpass_send - sendmsg(2) len bytes of data with fd attached (fd -1: no
 * descriptor).  Returns bytes sent (the fd travels with the first byte) or
 * -1 with errno set (EAGAIN on a non-blocking socket that is full). */
ssize_t fdpass_send(int sock, const void *data, size_t len, int fd);

/* fdpass_recv - recvmsg(2) into buf; a received descriptor (close-on-exec)
 * is stored in *fd, else *fd is -1.  Extra descriptors are closed.
 * Returns bytes read, 0 at end of file, -1 with errno set. */
ssize_t fdpass_recv(int sock, void *buf, size_t len, int *fd);

/* fdpass_env_number - the decimal in environment variable name (an
 * inherited descriptor, a slot): 1 with *out set, 0 when unset or empty,
 * -1 when it is not a number in 0..max. */
int fdpass_env_number(const char *name, long max, long *out);

#endif
