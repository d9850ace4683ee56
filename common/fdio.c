/*
 * fdio.c - descriptor I/O helpers (fdio.h), for smtpd's spool writer and
 * elemta-queued's Maildir transport.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "fdio.h"

/* fdio_write_all - write(2) until done or error. */
int
fdio_write_all(int fd, const void *p, size_t len)
{
	const char *b = p;

	while (len > 0) {
		ssize_t n = write(fd, b, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* fdio_fsync_dir - make a directory's entries durable. */
int
fdio_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc, e;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	e = errno;
	close(fd);
	errno = e;
	return rc;
}
