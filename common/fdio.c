/*
 * fdio.c - descriptor I/O helpers (fdio.h), for smtpd's spool writer and
 * elemta-queued's Maildir transport.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
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

/* fdio_commit_file - see fdio.h. */
int
fdio_commit_file(const char *tmp, const char *path, const char *dir,
    const void *data, size_t len, bool do_fsync, bool noreplace,
    struct error *err)
{
	const char *step = "write";
	int fd, e;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0640);
	if (fd < 0)
		return error_set(err, "create %s: %s", tmp, strerror(errno));
	if (fdio_write_all(fd, data, len) < 0 ||
	    (step = "fsync", do_fsync && fsync(fd) < 0)) {
		e = errno;
		close(fd);
		goto fail;
	}
	step = "close";
	if (close(fd) < 0) {
		e = errno;
		goto fail;
	}
	step = "rename";
	/* RENAME_NOREPLACE is refused (EINVAL) by some file systems: a link
	 * never replaces either. */
	if (noreplace ? renameat2(AT_FDCWD, tmp, AT_FDCWD, path,
	    RENAME_NOREPLACE) < 0 && (errno != EINVAL || link(tmp, path) < 0 ||
	    unlink(tmp) < 0) : rename(tmp, path) < 0) {
		e = errno;
		goto fail;
	}
	if (do_fsync && fdio_fsync_dir(dir) < 0)
		return error_set(err, "fsync %s: %s", dir, strerror(errno));
	return 0;
fail:
	unlink(tmp);
	return error_set(err, "%s %s: %s", step, tmp, strerror(e));
}
