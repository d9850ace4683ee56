/*
 * listen.c - listening sockets (see listen.h).
 *
 * Called by elemtactl (tools/elemtactl/sockets.c) for every socket its
 * workers inherit, by elemta-policyd and elemta-metricsd to take such a
 * socket over (listen_inherited), and by smtpd, policyd and metricsd when
 * they bind for themselves (--bind).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fdpass.h"
#include "listen.h"

/* listen_sockaddr - see listen.h. */
int
listen_sockaddr(const char *host, unsigned port, struct sockaddr_storage *ss,
    socklen_t *len, struct error *err)
{
	struct addrinfo hints, *res = NULL;
	char service[16];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%u", port);
	if (host[0] == '\0')
		host = "0.0.0.0";
	rc = getaddrinfo(host, service, &hints, &res);
	if (rc != 0)
		return error_set(err, "%s", rc == EAI_SYSTEM ? strerror(errno) :
		    gai_strerror(rc));
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* listen_tcp - see listen.h. */
int
listen_tcp(const char *host, unsigned port, const char *name,
    struct error *err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, rc;

	if (listen_sockaddr(host, port, &ss, &len, err) < 0)
		return error_prefix(err, "cannot listen on %s", name);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return error_set(err, "cannot listen on %s: %s", name,
		    strerror(errno));
	/* IPv6-only: "[::]:25" beside "0.0.0.0:25" must not collide, and an
	 * IPv4 client is always seen as IPv4. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
	    bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(fd, LISTEN_BACKLOG) == -1) {
		rc = errno;
		close(fd);
		return error_set(err, "cannot listen on %s: %s", name,
		    rc == EADDRINUSE ? "address in use" : strerror(rc));
	}
	return fd;
}

/* listen_unix_stale - is the socket file left over by a dead process?
 * 1 stale: a connection was refused (or the file just went away); 0 in
 * use: accepted or pending (a full backlog); -1 with errno: cannot tell
 * (EACCES, EMFILE...), and a socket we cannot judge is never removed. */
static int
listen_unix_stale(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int rc, e;

	if (fd == -1)
		return -1;
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	e = errno;
	close(fd);
	if (rc == 0 || e == EAGAIN || e == EINPROGRESS)
		return 0;
	if (e == ECONNREFUSED || e == ENOENT)
		return 1;
	errno = e;
	return -1;
}

/* listen_unix - see listen.h. */
int
listen_unix(const char *path, mode_t mode, bool chown_it, uid_t uid,
    gid_t gid, struct error *err)
{
	struct sockaddr_un sun;
	struct stat st;
	mode_t old_umask;
	int fd, rc;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return error_set(err, "cannot listen on %s: path longer than %zu "
		    "bytes", path, sizeof(sun.sun_path) - 1);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return error_set(err, "cannot listen on %s: a file that is "
			    "not a socket is in the way", path);
		switch (listen_unix_stale(&sun)) {
		case 0:
			return error_set(err, "cannot listen on %s: in use by a "
			    "running process", path);
		case -1:
			return error_set(err, "cannot listen on %s: cannot tell "
			    "whether the socket is in use: %s", path,
			    strerror(errno));
		}
		if (unlink(path) == -1 && errno != ENOENT)
			return error_set(err, "cannot remove stale socket %s: %s",
			    path, strerror(errno));
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return error_set(err, "cannot listen on %s: %s", path,
		    strerror(errno));
	old_umask = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old_umask);
	if (rc == -1) {
		rc = errno;
		close(fd);
		return error_set(err, "cannot listen on %s: %s", path,
		    strerror(rc));
	}
	if ((chown_it && fchownat(AT_FDCWD, path, uid, gid,
	    AT_SYMLINK_NOFOLLOW) == -1) || chmod(path, mode) == -1 ||
	    listen(fd, LISTEN_BACKLOG) == -1) {
		rc = errno;
		close(fd);
		unlink(path);
		return error_set(err, "cannot listen on %s: %s", path,
		    strerror(rc));
	}
	return fd;
}

/* listen_inherited - see listen.h. */
int
listen_inherited(const char *env, int *fd, struct error *err)
{
	int accepting = 0, fl;
	socklen_t len = sizeof(accepting);
	long n;
	int has = fdpass_env_number(env, 65535, &n);

	if (has == 0)
		return 0;
	if (has < 0 || n < 3)
		return error_set(err, "%s='%.32s': not a descriptor number", env,
		    getenv(env));
	if (getsockopt((int)n, SOL_SOCKET, SO_ACCEPTCONN, &accepting,
	    &len) != 0 || !accepting)
		return error_set(err, "%s=%ld: not a listening socket", env, n);
	fl = fcntl((int)n, F_GETFL);
	if (fl < 0 || fcntl((int)n, F_SETFL, fl | O_NONBLOCK) != 0 ||
	    fcntl((int)n, F_SETFD, FD_CLOEXEC) != 0)
		return error_set(err, "%s=%ld: %s", env, n, strerror(errno));
	*fd = (int)n;
	return 1;
}
