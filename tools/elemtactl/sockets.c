/*
 * sockets.c - the listening sockets elemtactl binds before any worker
 * starts: every server.listen address (inherited by each smtpd worker),
 * the private policy socket policyd.socket and the optional Postfix
 * listener policyd.postfix_listen (inherited by each policyd worker), and
 * metrics.listen (inherited by the elemta-metricsd worker).
 *
 * Called by supervisor.c at start, as root in production (ports below 1024),
 * while the pid-file lock is held, so a Unix socket file already at a
 * configured path is a leftover of a crashed run and is replaced.  All
 * listeners are non-blocking with a backlog of CTL_LISTEN_BACKLOG; the
 * workers accept on them concurrently.
 *
 * Reload (ctl_sockets_reopen): an SMTP listener whose address is unchanged
 * is the same descriptor for the new workers, so nothing queued on it is
 * lost and no connection is refused while workers change; the policy
 * socket is a fresh one renamed over policyd.socket, so the new smtpd
 * workers reach only the new policyd workers (new rules) while the old
 * policyd workers keep serving the connections the old smtpd workers
 * already have.
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

#include "elemtactl.h"

/* sockets_reset - mark one socket closed. */
static void sockets_reset(struct ctl_socket *s)
{
	s->fd = -1;
	s->name[0] = '\0';
	s->unix_path[0] = '\0';
}

/* ctl_sockets_init - everything closed. */
void ctl_sockets_init(struct ctl_sockets *s)
{
	for (size_t i = 0; i < CONFIG_LISTEN_MAX; i++)
		sockets_reset(&s->listen[i]);
	s->listen_count = 0;
	sockets_reset(&s->policy);
	sockets_reset(&s->postfix);
	sockets_reset(&s->metrics);
}

/* ctl_hostport_parse - see elemtactl.h. */
int ctl_hostport_parse(const char *text, char *host, size_t host_size,
    unsigned *port, struct error *err)
{
	const char *h, *colon, *p;
	size_t hlen;
	char *end;
	unsigned long v;

	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (close == NULL || close[1] != ':')
			return error_set(err, "'%s': expected [IPV6]:PORT", text);
		h = text + 1;
		hlen = (size_t)(close - h);
		p = close + 2;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL)
			return error_set(err, "'%s': expected HOST:PORT", text);
		if (memchr(text, ':', (size_t)(colon - text)) != NULL)
			return error_set(err, "'%s': write an IPv6 address in "
			    "brackets, [::1]:PORT", text);
		h = text;
		hlen = (size_t)(colon - text);
		p = colon + 1;
	}
	if (hlen == 0)
		return error_set(err, "'%s': missing host", text);
	if (hlen >= host_size)
		return error_set(err, "'%s': host too long", text);
	if (*p < '0' || *p > '9')
		return error_set(err, "'%s': expected a port number", text);
	errno = 0;
	v = strtoul(p, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > 65535)
		return error_set(err, "'%s': port must be 1-65535", text);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (unsigned)v;
	return 0;
}

/* sockets_listen_tcp - bind and listen on host:port; name is the address
 * as configured, for the error message. */
static int sockets_listen_tcp(struct ctl_socket *s, const char *name,
    const char *host, unsigned port, struct error *err)
{
	struct addrinfo hints, *res = NULL;
	char service[16];
	int fd, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%u", port);
	/* A host-less address means every IPv4 address (one fd per entry). */
	if (host[0] == '\0' || strcmp(host, "*") == 0)
		host = "0.0.0.0";
	rc = getaddrinfo(host, service, &hints, &res);
	if (rc != 0)
		return error_set(err, "cannot listen on %s: %s", name,
		    rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));

	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1) {
		rc = errno;
		goto fail;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1
	    || (res->ai_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &one, sizeof(one)) == -1)
	    || bind(fd, res->ai_addr, res->ai_addrlen) == -1
	    || listen(fd, CTL_LISTEN_BACKLOG) == -1) {
		rc = errno;
		close(fd);
		goto fail;
	}
	freeaddrinfo(res);
	s->fd = fd;
	str_copy(s->name, name, sizeof(s->name));
	return 0;
fail:
	freeaddrinfo(res);
	return error_set(err, "cannot listen on %s: %s", name, strerror(rc));
}

/* sockets_listen_unix - bind path with mode and owner (when chown_it),
 * replacing a stale socket file; a non-socket there is left alone. */
static int sockets_listen_unix(struct ctl_socket *s, const char *path,
    mode_t mode, bool chown_it, uid_t uid, gid_t gid, struct error *err)
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
		if (unlink(path) == -1)
			return error_set(err, "cannot remove stale socket %s: %s",
			    path, strerror(errno));
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return error_set(err, "cannot listen on %s: %s", path,
		    strerror(errno));
	/* Created 0600, widened to mode once the owner is right: never
	 * reachable by someone it is not meant for. */
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
	    AT_SYMLINK_NOFOLLOW) == -1) || chmod(path, mode) == -1
	    || listen(fd, CTL_LISTEN_BACKLOG) == -1) {
		rc = errno;
		close(fd);
		unlink(path);
		return error_set(err, "cannot listen on %s: %s", path,
		    strerror(rc));
	}
	s->fd = fd;
	str_copy(s->name, path, sizeof(s->name));
	str_copy(s->unix_path, path, sizeof(s->unix_path));
	return 0;
}

/* sockets_open_postfix - policyd.postfix_listen: "unix:PATH" (relative to
 * the config file's directory) or "HOST:PORT". */
static int sockets_open_postfix(const struct config *cfg,
    const struct ctl_users *users, struct ctl_socket *s, struct error *err)
{
	const char *spec = cfg->policyd.postfix_listen;
	char host[256], path[CONFIG_PATH_MAX];
	unsigned port;

	if (strncmp(spec, "unix:", 5) == 0) {
		const char *p = spec + 5;
		int n = p[0] == '/' ? snprintf(path, sizeof(path), "%s", p)
		    : snprintf(path, sizeof(path), "%s/%s", cfg->dir, p);

		if (n < 0 || (size_t)n >= sizeof(path))
			return error_set(err, "policyd.postfix_listen: path too long");
		if (ctl_mkdir_p_parent(path, err) == -1)
			return -1;
		/* Postfix's smtpd connects as the postfix user: the socket is
		 * open to all, the operator restricts its directory (as
		 * Postfix's own private/ directory does). */
		return sockets_listen_unix(s, path, 0666, users->root,
		    users->policyd.uid, users->policyd.gid, err);
	}
	if (ctl_hostport_parse(spec, host, sizeof(host), &port, err) == -1)
		return error_prefix(err, "policyd.postfix_listen");
	return sockets_listen_tcp(s, spec, host, port, err);
}

/* sockets_open_metrics - metrics.listen (HOST:PORT), inherited by the
 * elemta-metricsd worker. */
static int sockets_open_metrics(const struct config *cfg,
    struct ctl_socket *s, struct error *err)
{
	char host[256];
	unsigned port;

	if (ctl_hostport_parse(cfg->metrics.listen, host, sizeof(host), &port,
	    err) == -1)
		return error_prefix(err, "metrics.listen");
	return sockets_listen_tcp(s, cfg->metrics.listen, host, port, err);
}

/* ctl_sockets_open - see elemtactl.h. */
int ctl_sockets_open(const struct config *cfg, const struct ctl_users *users,
    struct ctl_sockets *s, struct error *err)
{
	ctl_sockets_init(s);
	for (size_t i = 0; i < cfg->server.listen_count; i++) {
		const struct config_listen *l = &cfg->server.listen[i];

		if (sockets_listen_tcp(&s->listen[i], l->address, l->host, l->port,
		    err) == -1)
			goto fail;
		s->listen_count = i + 1;
	}
	/* The policy socket: policyd accepts on the descriptor, smtpd (the
	 * server.user's group) connects by path; nobody else may. */
	if (ctl_mkdir_p_parent(cfg->policyd.socket, err) == -1
	    || sockets_listen_unix(&s->policy, cfg->policyd.socket, 0660,
	    users->root, users->policyd.uid, users->smtpd.gid, err) == -1)
		goto fail;
	if (cfg->policyd.postfix_listen[0] != '\0'
	    && sockets_open_postfix(cfg, users, &s->postfix, err) == -1)
		goto fail;
	if (cfg->metrics.listen[0] != '\0'
	    && sockets_open_metrics(cfg, &s->metrics, err) == -1)
		goto fail;
	return 0;
fail:
	ctl_sockets_close(s);
	return -1;
}

static void sockets_close_one(struct ctl_socket *s);

/* sockets_same_address - is fd listening on what host:port resolves to? */
static bool sockets_same_address(int fd, const char *host, unsigned port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct addrinfo hints, *res = NULL;
	char service[16];
	bool same = false;

	if (fd == -1 || getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return false;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%u", port);
	if (host[0] == '\0' || strcmp(host, "*") == 0)
		host = "0.0.0.0";
	if (getaddrinfo(host, service, &hints, &res) != 0)
		return false;
	if (res->ai_family == ss.ss_family && res->ai_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)res->ai_addr;
		const struct sockaddr_in *b = (const void *)&ss;

		same = a->sin_port == b->sin_port
		    && a->sin_addr.s_addr == b->sin_addr.s_addr;
	} else if (res->ai_family == ss.ss_family && res->ai_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)res->ai_addr;
		const struct sockaddr_in6 *b = (const void *)&ss;

		same = a->sin6_port == b->sin6_port
		    && memcmp(&a->sin6_addr, &b->sin6_addr, 16) == 0;
	}
	freeaddrinfo(res);
	return same;
}

/* ctl_sockets_reopen - see elemtactl.h. */
int ctl_sockets_reopen(const struct config *cfg, const char *old_postfix,
    const struct ctl_users *users, struct ctl_sockets *old,
    struct ctl_sockets *out, struct error *err)
{
	bool taken[CONFIG_LISTEN_MAX] = { false };
	bool bound[CONFIG_LISTEN_MAX] = { false };
	bool postfix_taken = false, metrics_taken = false;
	char tmp[CONFIG_PATH_MAX];

	ctl_sockets_init(out);
	for (size_t i = 0; i < cfg->server.listen_count; i++) {
		const struct config_listen *l = &cfg->server.listen[i];
		size_t j;

		for (j = 0; j < old->listen_count; j++)
			if (!taken[j] && sockets_same_address(old->listen[j].fd,
			    l->host, l->port))
				break;
		if (j < old->listen_count) {
			taken[j] = true;
			out->listen[i].fd = old->listen[j].fd;
			str_copy(out->listen[i].name, l->address,
			    sizeof(out->listen[i].name));
		} else {
			if (sockets_listen_tcp(&out->listen[i], l->address, l->host,
			    l->port, err) == -1)
				goto fail;
			bound[i] = true;
		}
		out->listen_count = i + 1;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.reload", cfg->policyd.socket)
	    >= (int)sizeof(tmp)) {
		error_set(err, "cannot listen on %s.reload: path too long",
		    cfg->policyd.socket);
		goto fail;
	}
	if (ctl_mkdir_p_parent(cfg->policyd.socket, err) == -1
	    || sockets_listen_unix(&out->policy, tmp, 0660, users->root,
	    users->policyd.uid, users->smtpd.gid, err) == -1)
		goto fail;
	if (cfg->policyd.postfix_listen[0] != '\0') {
		if (old->postfix.fd != -1
		    && strcmp(old_postfix, cfg->policyd.postfix_listen) == 0) {
			out->postfix = old->postfix;
			postfix_taken = true;
		} else if (sockets_open_postfix(cfg, users, &out->postfix,
		    err) == -1) {
			goto fail;
		}
	}
	if (cfg->metrics.listen[0] != '\0') {
		char mhost[256];
		unsigned mport;

		if (ctl_hostport_parse(cfg->metrics.listen, mhost, sizeof(mhost),
		    &mport, err) == -1) {
			error_prefix(err, "metrics.listen");
			goto fail;
		}
		if (sockets_same_address(old->metrics.fd, mhost, mport)) {
			out->metrics = old->metrics;
			metrics_taken = true;
		} else if (sockets_listen_tcp(&out->metrics, cfg->metrics.listen,
		    mhost, mport, err) == -1) {
			goto fail;
		}
	}
	/* Last, as it cannot be undone: from here on, connecting to
	 * policyd.socket reaches the fresh socket. */
	if (rename(tmp, cfg->policyd.socket) == -1) {
		error_set(err, "cannot rename %s to %s: %s", tmp,
		    cfg->policyd.socket, strerror(errno));
		goto fail;
	}
	str_copy(out->policy.unix_path, cfg->policyd.socket,
	    sizeof(out->policy.unix_path));
	str_copy(out->policy.name, cfg->policyd.socket,
	    sizeof(out->policy.name));
	/* Success: what was taken over now belongs to out only. */
	for (size_t j = 0; j < old->listen_count; j++)
		if (taken[j])
			old->listen[j].fd = -1;
	if (postfix_taken || (old->postfix.unix_path[0] != '\0'
	    && strcmp(old->postfix.unix_path, out->postfix.unix_path) == 0)) {
		/* taken over, or re-bound at the same path: never unlink it */
		if (postfix_taken)
			old->postfix.fd = -1;
		old->postfix.unix_path[0] = '\0';
	}
	if (metrics_taken)
		old->metrics.fd = -1;
	return 0;
fail:
	for (size_t i = 0; i < out->listen_count; i++)
		if (bound[i] && out->listen[i].fd != -1)
			close(out->listen[i].fd);
	if (out->policy.fd != -1)
		sockets_close_one(&out->policy);
	if (!postfix_taken && out->postfix.fd != -1)
		sockets_close_one(&out->postfix);
	if (!metrics_taken && out->metrics.fd != -1)
		sockets_close_one(&out->metrics);
	ctl_sockets_init(out);
	return -1;
}

/* ctl_sockets_release_old - see elemtactl.h. */
void ctl_sockets_release_old(struct ctl_sockets *old)
{
	ctl_sockets_close_listeners(old);
	old->listen_count = 0;
	/* Its path names the fresh socket now: close without unlinking. */
	if (old->policy.fd != -1)
		close(old->policy.fd);
	sockets_reset(&old->policy);
	/* A Postfix listener not taken over was removed or moved. */
	sockets_close_one(&old->postfix);
	sockets_close_one(&old->metrics);
}

/* ctl_sockets_close_listeners - see elemtactl.h. */
void ctl_sockets_close_listeners(struct ctl_sockets *s)
{
	for (size_t i = 0; i < s->listen_count; i++) {
		if (s->listen[i].fd != -1)
			close(s->listen[i].fd);
		s->listen[i].fd = -1;
	}
}

/* sockets_close_one - close and unlink one socket. */
static void sockets_close_one(struct ctl_socket *s)
{
	if (s->fd != -1)
		close(s->fd);
	if (s->unix_path[0] != '\0')
		unlink(s->unix_path);
	sockets_reset(s);
}

/* ctl_sockets_close - see elemtactl.h. */
void ctl_sockets_close(struct ctl_sockets *s)
{
	ctl_sockets_close_listeners(s);
	s->listen_count = 0;
	sockets_close_one(&s->policy);
	sockets_close_one(&s->postfix);
	sockets_close_one(&s->metrics);
}
