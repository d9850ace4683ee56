/*
 * server.h - the event loop of one elemta-smtpd worker: listeners,
 * accepted connections, connection limits, graceful stop.
 *
 * Called by main.c once per process.
 */
#ifndef ELEMTA_SMTPD_SERVER_H
#define ELEMTA_SMTPD_SERVER_H

#include <stdbool.h>

#include "config.h"
#include "error.h"

/* How the listening sockets are obtained. */
enum server_listen_source {
	SERVER_LISTEN_INHERITED,  /* ELEMTA_LISTEN_FDS from elemtactl    */
	SERVER_LISTEN_BIND,       /* bind server.listen ourselves (--bind) */
};

/* server_run - serve until SIGTERM/SIGINT and a graceful stop.  Returns
 * 0 on a clean stop, -1 (err) when start-up failed. */
int server_run(const struct config *cfg, enum server_listen_source src,
    struct error *err);

#endif
