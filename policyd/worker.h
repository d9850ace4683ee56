/*
 * worker.h - elemta-policyd's event loop: accepts on the inherited
 * listening sockets, reads policy requests, runs the plugin chain, writes
 * the replies in request order.
 *
 * Called by policyd/main.c after the config, the counter table and the
 * plugin chain are ready.
 */
#ifndef ELEMTA_POLICYD_WORKER_H
#define ELEMTA_POLICYD_WORKER_H

#include "counter.h"
#include "error.h"
#include "plugin_host.h"

/* worker_run - serve until SIGTERM/SIGINT.  policy_fd is the private
 * listener (Elemta's smtpd, extensions honoured), postfix_fd the Postfix
 * listener (extensions ignored); either may be -1, not both.  cs may be
 * NULL (no sweeping).  Returns 0 after a graceful stop, -1 with err when
 * the loop could not be set up. */
int worker_run(struct plugin_host *host, struct counter_store *cs,
    int policy_fd, int postfix_fd, struct error *err);

#endif
