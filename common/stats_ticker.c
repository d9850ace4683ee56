/*
 * stats_ticker.c - a stats file written once a second from an event loop
 * (see stats_ticker.h).  Called by smtpd/stats.c and queued/stats.c from
 * their loop's thread only.
 */
#include "log.h"
#include "stats_ticker.h"

/* ticker_on_tick - once a second: refresh, write when something changed. */
static void
ticker_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct stats_ticker *t = arg;

	(void)fd;
	(void)what;
	if (t->refresh != NULL)
		t->refresh(t->arg);
	if (t->dirty && stats_writer_write(&t->w))
		t->dirty = false;
}

/* stats_ticker_start - see stats_ticker.h. */
void
stats_ticker_start(struct stats_ticker *t, struct event_base *base,
    const char *runtime_dir, unsigned id)
{
	struct timeval second = { 1, 0 };

	if (t->timer != NULL)           /* started already */
		return;
	if (stats_writer_open(&t->w, runtime_dir, id) != 0)
		return;
	t->timer = event_new(base, -1, EV_PERSIST, ticker_on_tick, t);
	if (t->timer == NULL || event_add(t->timer, &second) != 0) {
		log_warn("stats: cannot set up the timer; counts are not "
		    "reported");
		if (t->timer != NULL)
			event_free(t->timer);
		t->timer = NULL;
		return;
	}
	if (t->refresh != NULL)
		t->refresh(t->arg);
	t->dirty = !stats_writer_write(&t->w);
}

/* stats_ticker_stop - see stats_ticker.h. */
void
stats_ticker_stop(struct stats_ticker *t)
{
	if (t->timer == NULL)           /* never started */
		return;
	event_free(t->timer);
	t->timer = NULL;
	if (t->refresh != NULL)
		t->refresh(t->arg);
	stats_writer_write(&t->w);
}
