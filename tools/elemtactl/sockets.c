/*
 * sockets.c - the listening sockets elemtactl binds before any worker
 * starts: every server.listen address (inherited by each smtpd worker),
 * the private policy socket policyd.socket and the optional Postfix
 * listener policyd.postfix_listen (inherited by each policyd worker), and
 * metrics.listen (inherited by the elemta-metricsd worker).
 *
 * A server.listen entry of mode local is a Unix socket (elemta-sendmail's):
 * created root-owned with its socket_group and socket_mode (0666 unless
 * configured), its parent directories 0755 so local users can reach it;
 * it is removed when the listeners close (stop), so elemta-sendmail then
 * finds no socket and says that Elemta is not running.
 *
 * Called by supervisor.c at start, as root in production (ports below 1024),
 * while the pid-file lock is held, so a Unix socket file already at a
 * configured path is a leftover of a crashed run and is replaced.  All
 * listeners are non-blocking with a backlog of LISTEN_BACKLOG; the
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
#include <grp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elemtactl.h"
#include "listen.h"

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

/* sockets_listen_tcp - s listening on host:port; name is the address as
 * configured, for the error message. */
static int sockets_listen_tcp(struct ctl_socket *s, const char *name,
    const char *host, unsigned port, struct error *err)
{
	int fd = listen_tcp(host, port, name, err);

	if (fd == -1)
		return -1;
	s->fd = fd;
	str_copy(s->name, name, sizeof(s->name));
	return 0;
}

/* sockets_listen_unix - s listening on path with mode and owner (when
 * chown_it). */
static int sockets_listen_unix(struct ctl_socket *s, const char *path,
    mode_t mode, bool chown_it, uid_t uid, gid_t gid, struct error *err)
{
	int fd = listen_unix(path, mode, chown_it, uid, gid, err);

	if (fd == -1)
		return -1;
	s->fd = fd;
	str_copy(s->name, path, sizeof(s->name));
	str_copy(s->unix_path, path, sizeof(s->unix_path));
	return 0;
}

/* sockets_open_postfix - policyd.postfix_listen: a Unix socket (its path
 * made absolute by config_load) or HOST:PORT. */
static int sockets_open_postfix(const struct config *cfg,
    const struct ctl_users *users, struct ctl_socket *s, struct error *err)
{
	const struct config_endpoint *ep = &cfg->policyd.postfix_endpoint;

	if (ep->path[0] != '\0') {
		if (ctl_mkdir_p_parent(ep->path, err) == -1)
			return -1;
		/* Postfix's smtpd connects as the postfix user: the socket is
		 * open to all, the operator restricts its directory (as
		 * Postfix's own private/ directory does). */
		return sockets_listen_unix(s, ep->path, 0666, users->root,
		    users->policyd.uid, users->policyd.gid, err);
	}
	return sockets_listen_tcp(s, cfg->policyd.postfix_listen, ep->host,
	    ep->port, err);
}

/* sockets_local_group - the group a local listener's socket gets: its
 * socket_group, else root's (0) when root, else the invoking user's. */
static int sockets_local_group(const struct config_listen *l,
    const struct ctl_users *users, gid_t *gid, struct error *err)
{
	struct group gr, *res = NULL;
	char buf[4096];
	int rc;

	*gid = users->root ? 0 : getegid();
	if (l->socket_group[0] == '\0')
		return 0;
	rc = getgrnam_r(l->socket_group, &gr, buf, sizeof(buf), &res);
	if (res == NULL)
		return error_set(err, "cannot listen on %s: socket_group '%s': %s",
		    l->address, l->socket_group, rc != 0 ? strerror(rc) :
		    "no such group");
	*gid = gr.gr_gid;
	return 0;
}

/* sockets_open_local - a mode local listener: its Unix socket, owned
 * root:socket_group (as root; the invoking user otherwise) with
 * socket_mode. */
static int sockets_open_local(const struct config_listen *l,
    const struct ctl_users *users, struct ctl_socket *s, struct error *err)
{
	gid_t gid;

	if (sockets_local_group(l, users, &gid, err) == -1 ||
	    ctl_mkdir_p_parent(l->path, err) == -1)
		return -1;
	/* Not root: a socket_group the user belongs to is still applied. */
	if (sockets_listen_unix(s, l->path, l->socket_mode, users->root ||
	    l->socket_group[0] != '\0', users->root ? 0 : geteuid(), gid,
	    err) == -1)
		return -1;
	str_copy(s->name, l->address, sizeof(s->name));
	return 0;
}

/* sockets_local_reapply - a local listener kept over a reload gets the
 * socket_mode and socket_group the new config gives it. */
static int sockets_local_reapply(const struct config_listen *l,
    const struct ctl_users *users, struct error *err)
{
	gid_t gid;

	if (sockets_local_group(l, users, &gid, err) == -1)
		return -1;
	if ((users->root || l->socket_group[0] != '\0') &&
	    fchownat(AT_FDCWD, l->path, users->root ? 0 : geteuid(), gid,
	    AT_SYMLINK_NOFOLLOW) == -1)
		return error_set(err, "cannot chown %s: %s", l->path,
		    strerror(errno));
	if (chmod(l->path, l->socket_mode) == -1)
		return error_set(err, "cannot chmod %s: %s", l->path,
		    strerror(errno));
	return 0;
}

/* sockets_open_listen - one server.listen entry. */
static int sockets_open_listen(const struct config_listen *l,
    const struct ctl_users *users, struct ctl_socket *s, struct error *err)
{
	if (l->mode == CONFIG_MODE_LOCAL)
		return sockets_open_local(l, users, s, err);
	return sockets_listen_tcp(s, l->address, l->host, l->port, err);
}

/* sockets_open_metrics - metrics.listen, inherited by the elemta-metricsd
 * worker. */
static int sockets_open_metrics(const struct config *cfg,
    struct ctl_socket *s, struct error *err)
{
	return sockets_listen_tcp(s, cfg->metrics.listen,
	    cfg->metrics.endpoint.host, cfg->metrics.endpoint.port, err);
}

/* ctl_sockets_open - see elemtactl.h. */
int ctl_sockets_open(const struct config *cfg, const struct ctl_users *users,
    struct ctl_sockets *s, struct error *err)
{
	ctl_sockets_init(s);
	for (size_t i = 0; i < cfg->server.listen_count; i++) {
		if (sockets_open_listen(&cfg->server.listen[i], users,
		    &s->listen[i], err) == -1)
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

/* sockets_same_address - is fd listening on host:port? */
static bool sockets_same_address(int fd, const char *host, unsigned port)
{
	struct sockaddr_storage ss, want;
	socklen_t len = sizeof(ss), want_len;
	struct error err;

	if (fd == -1 || getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    listen_sockaddr(host, port, &want, &want_len, &err) == -1 ||
	    want.ss_family != ss.ss_family)
		return false;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&want;
		const struct sockaddr_in *b = (const void *)&ss;

		return a->sin_port == b->sin_port
		    && a->sin_addr.s_addr == b->sin_addr.s_addr;
	}
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)&want;
		const struct sockaddr_in6 *b = (const void *)&ss;

		return a->sin6_port == b->sin6_port
		    && memcmp(&a->sin6_addr, &b->sin6_addr, 16) == 0;
	}
	return false;
}

/* sockets_serves_path - is the open Unix socket s the file at path? */
static bool sockets_serves_path(const struct ctl_socket *s, const char *path)
{
	struct stat a, b;

	return s->fd != -1 && s->unix_path[0] != '\0' &&
	    stat(s->unix_path, &a) == 0 && stat(path, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* sockets_serves - does the open socket s already serve ep?  By the
 * socket file's identity for a path (however the path is spelt), by the
 * bound address for HOST:PORT.  Binding either again would fail: the
 * running socket holds the address, and listen_unix never takes over a
 * socket a process (here elemtactl itself) serves. */
static bool sockets_serves(const struct ctl_socket *s,
    const struct config_endpoint *ep)
{
	if (s->fd == -1)
		return false;
	if (ep->path[0] == '\0')
		return sockets_same_address(s->fd, ep->host, ep->port);
	return sockets_serves_path(s, ep->path);
}

/* ctl_sockets_reopen - see elemtactl.h. */
int ctl_sockets_reopen(const struct config *cfg,
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
			if (!taken[j] && (l->path[0] != '\0' ?
			    sockets_serves_path(&old->listen[j], l->path) :
			    sockets_same_address(old->listen[j].fd, l->host,
			    l->port)))
				break;
		if (j < old->listen_count) {
			if (l->path[0] != '\0' &&
			    sockets_local_reapply(l, users, err) == -1)
				goto fail;
			taken[j] = true;
			out->listen[i].fd = old->listen[j].fd;
			str_copy(out->listen[i].name, l->address,
			    sizeof(out->listen[i].name));
			str_copy(out->listen[i].unix_path, l->path,
			    sizeof(out->listen[i].unix_path));
		} else {
			if (sockets_open_listen(l, users, &out->listen[i],
			    err) == -1)
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
		if (sockets_serves(&old->postfix, &cfg->policyd.postfix_endpoint)) {
			out->postfix = old->postfix;
			postfix_taken = true;
		} else if (sockets_open_postfix(cfg, users, &out->postfix,
		    err) == -1) {
			goto fail;
		}
	}
	if (cfg->metrics.listen[0] != '\0') {
		if (sockets_serves(&old->metrics, &cfg->metrics.endpoint)) {
			out->metrics = old->metrics;
			metrics_taken = true;
		} else if (sockets_open_metrics(cfg, &out->metrics, err) == -1) {
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
	/* Success: what was taken over now belongs to out only (a local
	 * listener's path is the new one's too: never unlink it). */
	for (size_t j = 0; j < old->listen_count; j++)
		if (taken[j]) {
			old->listen[j].fd = -1;
			old->listen[j].unix_path[0] = '\0';
		}
	if (postfix_taken) {
		/* its path is the new one's too: never unlink it */
		old->postfix.fd = -1;
		old->postfix.unix_path[0] = '\0';
	}
	if (metrics_taken)
		old->metrics.fd = -1;
	return 0;
fail:
	for (size_t i = 0; i < out->listen_count; i++)
		if (bound[i] && out->listen[i].fd != -1)
			sockets_close_one(&out->listen[i]);
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

/* ctl_sockets_close_listeners - see elemtactl.h.  A local listener's
 * socket file goes too: elemta-sendmail then finds no socket and reports
 * Elemta as not running (exit 75) instead of waiting on a backlog nobody
 * accepts. */
void ctl_sockets_close_listeners(struct ctl_sockets *s)
{
	for (size_t i = 0; i < s->listen_count; i++)
		sockets_close_one(&s->listen[i]);
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
