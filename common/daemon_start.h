/*
 * daemon_start.h - the first steps every Elemta worker takes, in one
 * place: the log opened under its name, SIGPIPE ignored (a peer closing
 * a socket is an error return, never a signal), the configuration
 * loaded with every error logged, then the log at the configured level.
 * Callers: the main() of elemta-smtpd, -policyd, -queued and -metricsd.
 */
#ifndef ELEMTA_DAEMON_START_H
#define ELEMTA_DAEMON_START_H

#include <stdbool.h>

#include "config.h"

/* daemon_start - as above for the worker ident (e.g. "elemta-queued"),
 * logging to stderr when foreground, from the file at path; the loaded
 * configuration (config_free), or NULL once the reasons are logged. */
struct config *daemon_start(const char *ident, const char *path,
    bool foreground);

#endif
