/*
 * fdpass.c - passing file descriptors over Unix sockets (SCM_RIGHTS).
 *
 * smtpd attaches the spooled message's read-only descriptor to the first
 * byte of an END-OF-MESSAGE request; policyd receives it here.  The
 * receiving side does not trust the sender: descriptors beyond the first
 * are closed, every descriptor arrives close-on-exec, and a truncated
 * control message (more descriptors than we take) fails the read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fdpass.h"

/* Room for this many descriptors in one control message; anything a peer
 * sends beyond that is a protocol violation reported via MSG_CTRUNC. */
#define FDPASS_MAX_FDS 16

/* fdpass_send - sendmsg(2) len bytes with fd attached to the first byte
 * (fd -1: plain send).  MSG_NOSIGNAL: a vanished peer is EPIPE, not a
 * SIGPIPE that kills the worker. */
ssize_t
fdpass_send(int sock, const void *data, size_t len, int fd)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov;
	struct msghdr msg;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = (void *)data;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (fd >= 0) {
		struct cmsghdr *cmsg;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	}
	do {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n;
}

/* fdpass_take - walk the SCM_RIGHTS descriptors of msg: close them all,
 * keeping the first one in *keep when keep is not NULL and *keep is -1. */
static void
fdpass_take(struct msghdr *msg, int *keep)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL;
	    c = CMSG_NXTHDR(msg, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (keep != NULL && *keep < 0)
				*keep = fd;
			else
				close(fd);
		}
	}
}

/* fdpass_recv - recvmsg(2) into buf; the first received descriptor
 * (close-on-exec) goes to *fd, else *fd is -1; extra ones are closed.
 * A truncated control message closes everything and fails with EPROTO:
 * the peer sent more than the protocol allows. */
ssize_t
fdpass_recv(int sock, void *buf, size_t len, int *fd)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(FDPASS_MAX_FDS * sizeof(int))];
	} control;
	struct iovec iov;
	struct msghdr msg;
	ssize_t n;

	*fd = -1;
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = buf;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof(control.buf);
	do {
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if (msg.msg_flags & MSG_CTRUNC) {
		fdpass_take(&msg, NULL);
		errno = EPROTO;
		return -1;
	}
	fdpass_take(&msg, fd);
	return n;
}

/* fdpass_env_number - see fdpass.h. */
int
fdpass_env_number(const char *name, long max, long *out)
{
	const char *v = getenv(name);
	char *end;

	if (v == NULL || *v == '\0')
		return 0;
	errno = 0;
	*out = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || *out < 0 || *out > max)
		return -1;
	return 1;
}
