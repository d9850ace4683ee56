/*
 * stats.h - elemta-smtpd's own counts (connections, sessions open,
 * messages stored or refused), for `elemtactl status` and the
 * Prometheus endpoint (elemta-metricsd).
 *
 * Counted in this process's memory (an increment is a few instructions,
 * no I/O) and written at most once a second, and at exit, to
 * server.runtime_dir/stats/smtpd-ID-PID.stats (ID from ELEMTA_WORKER_ID)
 * by write-to-temporary-file + rename, so a reader never sees a partial
 * file.  The format, one `key value` line per count (decimal), is
 * documented in docs/internals.md; the keys, their types and HELP
 * texts are common/stats_file.c's table, which the readers share.  A
 * worker replacing a dead one of the same ID takes over its file (rename,
 * then carrying on from its totals), so totals summed over the files hold
 * across crashes and reloads.
 *
 * Callers: server.c (start, stop, connections) and session.c (outcomes).
 * Before smtpd_stats_start (unit tests) the counts are kept and never
 * written.
 */
#ifndef ELEMTA_SMTPD_STATS_H
#define ELEMTA_SMTPD_STATS_H

#include <stdint.h>

#include <event2/event.h>

#include <elemta/plugin.h>

#include "config.h"
#include "stats_file.h"      /* enum smtpd_stat, the keys */

/* smtpd_stats_add - add delta (may be negative for the gauge). */
void smtpd_stats_add(enum smtpd_stat which, int64_t delta);
/* smtpd_stats_session - a session opened (+1 connection, +1 open) or
 * closed (-1 open). */
void smtpd_stats_session(int opened);
/* smtpd_stats_refused - a refusal (reply 4xx/5xx from policy or a
 * check) at phase (END-OF-MESSAGE: a refused message). */
void smtpd_stats_refused(enum elemta_phase phase);
/* smtpd_stats_value - the current count (tests). */
uint64_t smtpd_stats_value(enum smtpd_stat which);

/* smtpd_stats_start - from now on, write the file once a second (a
 * timer on base) when something changed.  A directory that cannot be
 * used is logged once; the worker serves mail regardless. */
void smtpd_stats_start(struct event_base *base, const struct config *cfg);
/* smtpd_stats_stop - the last write (at exit: sessions_open is 0 by
 * then) and the timer freed; a no-op when never started. */
void smtpd_stats_stop(void);

#endif
