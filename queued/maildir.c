/*
 * maildir.c - the Maildir transport of elemta-queued (maildir.h): one
 * message, one recipient, written the way the Maildir spec wants it
 * (tmp/, fsync, link into new/).  Called by the delivery process; the
 * recipient and sender come from the spool envelope, which smtpd
 * validated, but are checked again here because they become file names
 * and headers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "addr.h"
#include "fdio.h"
#include "log.h"
#include "maildir.h"

#define MAILDIR_PATH_MAX 4096
#define MAILDIR_CHUNK 8192
#define MAILDIR_ESC 256

/* maildir_name_ok - a string usable as one path component under base. */
static bool
maildir_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > MAILDIR_NAME_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '/')
			return false;
	return true;
}

/* maildir_header_ok - no control bytes (a header line each). */
static bool
maildir_header_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* maildir_unique_name - "<sec>.M<usec>P<pid>Q<seq>.<host>". */
int
maildir_unique_name(char *buf, size_t size, long long sec, long usec,
    long pid, unsigned long seq, const char *host)
{
	int n = snprintf(buf, size, "%lld.M%ldP%ldQ%lu.", sec, usec, pid, seq);
	size_t o;

	if (n < 0 || (size_t)n >= size)
		return -1;
	o = (size_t)n;
	for (; *host != '\0'; host++) {
		/* The spec: '/' and ':' would break the name (and ':'
		 * starts the info part), so they are written in octal. */
		const char *esc = *host == '/' ? "\\057" : *host == ':' ?
		    "\\072" : NULL;
		size_t l = esc != NULL ? 4 : 1;

		if (o + l >= size)
			return -1;
		if (esc != NULL)
			memcpy(buf + o, esc, 4);
		else
			buf[o] = *host;
		o += l;
	}
	buf[o] = '\0';
	return 0;
}

/* maildir_mkdir - mkdir 0700 unless it exists as a directory; a new
 * one's entry is made durable in its parent (a crash must not lose the
 * mailbox a delivery was reported into). */
static int
maildir_mkdir(const char *path)
{
	char parent[MAILDIR_PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (mkdir(path, 0700) == 0) {
		if (slash == NULL || slash == path ||
		    (size_t)(slash - path) >= sizeof(parent))
			return 0;
		memcpy(parent, path, (size_t)(slash - path));
		parent[slash - path] = '\0';
		return fdio_fsync_dir(parent);
	}
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	if (errno == EEXIST)
		errno = ENOTDIR;
	return -1;
}

/* maildir_copy - the message into fd, CRLF made LF. */
static int
maildir_copy(const struct maildir_delivery *d, int fd)
{
	char in[MAILDIR_CHUNK], out[MAILDIR_CHUNK + 1];
	bool cr = false;
	long n;

	while ((n = d->read(d->ctx, in, sizeof(in))) > 0) {
		size_t o = 0;

		for (long i = 0; i < n && i < (long)sizeof(in); i++) {
			/* A CR is held back until we know it ends a line. */
			if (cr && in[i] != '\n')
				out[o++] = '\r';
			cr = in[i] == '\r';
			if (!cr)
				out[o++] = in[i];
		}
		if (fdio_write_all(fd, out, o) < 0)
			return -1;
	}
	if (n < 0) {
		errno = EIO;
		return -1;
	}
	return cr ? fdio_write_all(fd, "\r", 1) : 0;
}

/* maildir_fail_errno - a TEMPFAIL from errno (full disk: 4.2.2). */
static void
maildir_fail_errno(struct outcome *o, const char *what, const char *path)
{
	int e = errno;
	char esc[MAILDIR_ESC];

	outcome_set(o, OUTCOME_TEMPFAIL, 0, e == ENOSPC || e == EDQUOT ?
	    "4.2.2" : "4.3.0", "maildir: %s %s: %s", what,
	    LOG_ESC(esc, path), strerror(e));
}

/* maildir_deliver - one message into one Maildir; see maildir.h. */
void
maildir_deliver(const struct maildir_delivery *d, struct outcome *o,
    char *path, size_t size)
{
	static unsigned long seq;
	/* dir is bounded below MAILDIR_PATH_MAX; tmp and fin add a
	 * subdirectory and a file name to it. */
	char dir[MAILDIR_PATH_MAX], tmp[MAILDIR_PATH_MAX + MAILDIR_NAME_MAX + 8],
	    fin[MAILDIR_PATH_MAX + MAILDIR_NAME_MAX + 8],
	    name[MAILDIR_NAME_MAX + 1],
	    domain[MAILDIR_NAME_MAX + 1], esc[MAILDIR_ESC];
	const char *dom = addr_mail_domain(d->recipient);
	size_t llen, dlen;
	struct timeval tv;
	int fd, n;

	if (path != NULL && size > 0)
		path[0] = '\0';
	llen = dom != NULL ? (size_t)(dom - 1 - d->recipient) : 0;
	dlen = dom != NULL ? strlen(dom) : 0;
	if (dom == NULL || !maildir_name_ok(d->recipient, llen) ||
	    !maildir_name_ok(dom, dlen) || !maildir_header_ok(d->recipient)) {
		outcome_set(o, OUTCOME_PERMFAIL, 0, "5.1.3", "maildir: "
		    "recipient %s cannot name a mailbox",
		    LOG_ESC(esc, d->recipient));
		return;
	}
	if (!maildir_header_ok(d->sender)) {
		outcome_set(o, OUTCOME_PERMFAIL, 0, "5.1.7", "maildir: bad "
		    "sender address %s", LOG_ESC(esc, d->sender));
		return;
	}
	for (size_t i = 0; i <= dlen; i++)
		domain[i] = (char)(dom[i] >= 'A' && dom[i] <= 'Z' ?
		    dom[i] + 32 : dom[i]);

	/* base/domain/local and its three subdirectories. */
	n = snprintf(dir, sizeof(dir), "%s/%s", d->base, domain);
	if (n < 0 || (size_t)n >= sizeof(dir) - MAILDIR_NAME_MAX * 2 - 16) {
		outcome_set(o, OUTCOME_TEMPFAIL, 0, "4.3.0", "maildir: base "
		    "path too long");
		return;
	}
	if (maildir_mkdir(dir) < 0) {
		maildir_fail_errno(o, "cannot create", dir);
		return;
	}
	snprintf(dir + n, sizeof(dir) - (size_t)n, "/%.*s", (int)llen,
	    d->recipient);
	if (maildir_mkdir(dir) < 0) {
		maildir_fail_errno(o, "cannot create", dir);
		return;
	}
	for (int i = 0; i < 3; i++) {
		static const char *const sub[] = { "tmp", "new", "cur" };

		snprintf(tmp, sizeof(tmp), "%s/%s", dir, sub[i]);
		if (maildir_mkdir(tmp) < 0) {
			maildir_fail_errno(o, "cannot create", tmp);
			return;
		}
	}

	gettimeofday(&tv, NULL);
	if (maildir_unique_name(name, sizeof(name), (long long)tv.tv_sec,
	    (long)tv.tv_usec, (long)getpid(), ++seq, d->hostname) < 0) {
		outcome_set(o, OUTCOME_TEMPFAIL, 0, "4.3.0", "maildir: host "
		    "name too long for a file name");
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, name);
	snprintf(fin, sizeof(fin), "%s/new/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		maildir_fail_errno(o, "cannot create", tmp);
		return;
	}
	if (dprintf(fd, "Return-Path: <%s>\nDelivered-To: %s\n", d->sender,
	    d->recipient) < 0 || maildir_copy(d, fd) < 0 || fsync(fd) < 0) {
		maildir_fail_errno(o, "cannot write", tmp);
		close(fd);
		unlink(tmp);
		return;
	}
	if (close(fd) < 0) {
		maildir_fail_errno(o, "cannot write", tmp);
		unlink(tmp);
		return;
	}
	/* link, not rename: a name already in new/ is never replaced. */
	if (link(tmp, fin) < 0) {
		maildir_fail_errno(o, "cannot link into", fin);
		unlink(tmp);
		return;
	}
	unlink(tmp);
	snprintf(tmp, sizeof(tmp), "%s/new", dir);
	if (fdio_fsync_dir(tmp) < 0) {
		maildir_fail_errno(o, "cannot sync", tmp);
		unlink(fin);
		return;
	}
	if (path != NULL)
		snprintf(path, size, "%s", fin);
	outcome_set(o, OUTCOME_DELIVERED, 0, "2.0.0", "delivered to maildir "
	    "%s", LOG_ESC(esc, dir));
}
