/*
 * listen.h - listening sockets: TCP on a numeric HOST:PORT and Unix
 * sockets with a safe mode and owner.
 *
 * The one way Elemta opens a listener: elemtactl for every socket it
 * passes to its workers, elemta-policyd --bind and elemta-metricsd --bind
 * when run alone.  Addresses come parsed (struct config_endpoint).
 */
#ifndef ELEMTA_LISTEN_H
#define ELEMTA_LISTEN_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "error.h"

/* listen_sockaddr - the socket address of a numeric host and port ("":
 * 0.0.0.0; config_load has already turned a listen address's "*" into
 * 0.0.0.0), as listen_tcp binds it.  0, or -1 with err. */
int listen_sockaddr(const char *host, unsigned port,
    struct sockaddr_storage *ss, socklen_t *len, struct error *err);

/* Every listener's accept queue (the kernel caps it at somaxconn): a
 * burst past it is lost silently under SYN cookies. */
#define LISTEN_BACKLOG 4096

/* listen_tcp - a non-blocking, close-on-exec socket listening on
 * host:port (a numeric address; "" means every IPv4 address; an
 * IPv6 address listens on IPv6 only), with SO_REUSEADDR.  name labels the
 * error ("cannot listen on NAME: ...").  Returns the descriptor, or -1
 * with err. */
int listen_tcp(const char *host, unsigned port, const char *name,
    struct error *err);

/* listen_unix - a non-blocking, close-on-exec Unix socket listening on
 * path, replacing a stale socket file (one whose connections are
 * refused); a socket a running process serves, one that cannot be
 * judged, or any other file in the way, is an error.  The socket file is
 * created 0600, given to uid:gid when chown_it, and only then widened to
 * mode: never reachable by anyone it is not meant for.  Returns the
 * descriptor, or -1 with err (nothing left behind). */
int listen_unix(const char *path, mode_t mode, bool chown_it, uid_t uid,
    gid_t gid, struct error *err);

/* listen_inherited - the listening socket elemtactl passed in the
 * environment variable env (a descriptor number): 1 with *fd (made
 * non-blocking and close-on-exec: a reload's two generations accept on
 * it side by side), 0 when env is unset, -1 with err when it does not
 * name a listening socket above stderr. */
int listen_inherited(const char *env, int *fd, struct error *err);

#endif
