/*
 * stats_ticker.h - a stats file written from an event loop: at most once
 * a second when its counts changed, once at start and once at stop
 * (common/stats_file.h's writer does the writing and the take-over).
 *
 * Used by elemta-smtpd (smtpd/stats.c) and elemta-queued
 * (queued/stats.c); apart from stats_file.c so that only programs with a
 * libevent loop pull in libevent.
 */
#ifndef ELEMTA_STATS_TICKER_H
#define ELEMTA_STATS_TICKER_H

#include <stdbool.h>

#include <event2/event.h>

#include "stats_file.h"

struct stats_ticker {
	struct stats_writer w;   /* program, keys, counts, n: the caller's */
	bool dirty;              /* changed since the last write           */
	struct event *timer;
	void (*refresh)(void *arg);   /* may be NULL: before each write   */
	void *arg;
};

/* stats_ticker_start - open t's file (stats_writer_open), write it, and
 * from now on once a second call refresh and write when dirty.  Does
 * nothing when started already; logged when it cannot run. */
void stats_ticker_start(struct stats_ticker *t, struct event_base *base,
    const char *runtime_dir, unsigned id);

/* stats_ticker_stop - the last write (refresh first); nothing when it
 * never started. */
void stats_ticker_stop(struct stats_ticker *t);

#endif
