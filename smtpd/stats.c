/*
 * stats.c - elemta-smtpd's per-worker counts and their stats file (see
 * stats.h for the contract, docs/internals.md for the file format).
 *
 * Called from the worker's single event-loop thread only (server.c and
 * session.c), so the counts are plain integers.  Runs as server.user;
 * writes only inside server.runtime_dir/stats/, which elemtactl creates
 * for that user (common/stats_file.c's writer creates it when missing).
 * The files are read by elemtactl status and elemta-metricsd (another
 * user): 0644, never secrets.
 */
#include <stdbool.h>
#include <stdint.h>

#include "fdpass.h"
#include "log.h"
#include "stats_ticker.h"
#include "stats.h"

static uint64_t stats_count[SMTPD_STAT_COUNT];

static struct stats_ticker stats = {
	.w = { .program = STATS_FILE_SMTPD, .keys = stats_file_smtpd_keys,
	    .counts = stats_count, .n = SMTPD_STAT_COUNT },
};

/* smtpd_stats_add - see stats.h. */
void
smtpd_stats_add(enum smtpd_stat which, int64_t delta)
{
	uint64_t *v;

	if ((unsigned)which >= SMTPD_STAT_COUNT)
		return;
	v = &stats_count[which];
	if (delta < 0)
		*v = *v >= (uint64_t)-delta ? *v - (uint64_t)-delta : 0;
	else
		*v += (uint64_t)delta;
	stats.dirty = true;
}

/* smtpd_stats_session - see stats.h. */
void
smtpd_stats_session(int opened)
{
	if (opened)
		smtpd_stats_add(SMTPD_STAT_CONNECTIONS, 1);
	smtpd_stats_add(SMTPD_STAT_SESSIONS_OPEN, opened ? 1 : -1);
}

/* smtpd_stats_refused - see stats.h. */
void
smtpd_stats_refused(enum elemta_phase phase)
{
	enum smtpd_stat stat;

	switch (phase) {
	case ELEMTA_PHASE_CONNECT: stat = SMTPD_STAT_REFUSED_CONNECT; break;
	case ELEMTA_PHASE_EHLO:
	case ELEMTA_PHASE_HELO: stat = SMTPD_STAT_REFUSED_HELO; break;
	case ELEMTA_PHASE_AUTH: stat = SMTPD_STAT_REFUSED_AUTH; break;
	case ELEMTA_PHASE_MAIL: stat = SMTPD_STAT_REFUSED_MAIL; break;
	case ELEMTA_PHASE_RCPT: stat = SMTPD_STAT_REFUSED_RCPT; break;
	case ELEMTA_PHASE_DATA: stat = SMTPD_STAT_REFUSED_DATA; break;
	case ELEMTA_PHASE_EOM: stat = SMTPD_STAT_MESSAGES_REFUSED; break;
	default: stat = SMTPD_STAT_REFUSED_OTHER; break;
	}
	smtpd_stats_add(stat, 1);
}

/* smtpd_stats_value - see stats.h. */
uint64_t
smtpd_stats_value(enum smtpd_stat which)
{
	return (unsigned)which < SMTPD_STAT_COUNT ? stats_count[which] : 0;
}

/* smtpd_stats_start - see stats.h. */
void
smtpd_stats_start(struct event_base *base, const struct config *cfg)
{
	long wid;

	stats_ticker_start(&stats, base, cfg->server.runtime_dir,
	    fdpass_env_number("ELEMTA_WORKER_ID", STATS_FILE_ID_MAX, &wid) == 1 ?
	    (unsigned)wid : 0);
}

/* smtpd_stats_stop - see stats.h. */
void
smtpd_stats_stop(void)
{
	stats_ticker_stop(&stats);
}
