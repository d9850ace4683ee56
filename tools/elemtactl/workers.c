/*
 * workers.c - elemtactl's worker table: one slot per worker process, its
 * state machine and the restart backoff.
 *
 * Pure bookkeeping without system calls: supervisor.c forks, signals and
 * reaps, and asks this file what a slot's next state is and when a crashed
 * worker may start again.  Transitions of a slot:
 *
 *   STOPPED    -> RUNNING     spawned
 *   STOPPED    -> RESTARTING  the first spawn failed (supervision loop)
 *   RUNNING    -> RESTARTING  exited while not asked to stop
 *   RUNNING    -> STOPPING    SIGTERM sent (stop; reload: old smtpd)
 *   RUNNING    -> RETIRING    reload: an old policyd, kept for the old
 *                             smtpd workers' sessions
 *   RESTARTING -> RUNNING     backoff delay over, spawned again
 *   RESTARTING -> RESTARTING  spawning failed again
 *   RESTARTING -> STOPPED     stop requested (or superseded) while waiting
 *   STOPPING   -> STOPPED     the process exited
 *   RETIRING   -> STOPPING    SIGTERM sent (no older smtpd left, or stop)
 *   RETIRING   -> STOPPED     it exited by itself (never restarted)
 *
 * Backoff: a worker that dies within CTL_BACKOFF_RESET_MS of its start is
 * in a crash loop; restart n of the loop waits 100 ms * 2^(n-1), capped at
 * 30 s, so a one-off crash costs 100 ms of capacity and a broken binary
 * does not spin the CPU or flood the log.
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "elemtactl.h"
#include "log.h"

/* ctl_worker_kind_name - "policyd" / "smtpd" / "metrics", as in logs and
 * status. */
const char *ctl_worker_kind_name(enum ctl_worker_kind kind)
{
	switch (kind) {
	case CTL_KIND_POLICYD:
		return "policyd";
	case CTL_KIND_SMTPD:
		return "smtpd";
	case CTL_KIND_METRICS:
		return "metrics";
	case CTL_KIND_QUEUED:
		return "queued";
	}
	return "unknown";
}

/* ctl_worker_state_name - the state as written in the status file. */
const char *ctl_worker_state_name(enum ctl_worker_state state)
{
	switch (state) {
	case CTL_WORKER_STOPPED:
		return "stopped";
	case CTL_WORKER_RUNNING:
		return "running";
	case CTL_WORKER_RESTARTING:
		return "restarting";
	case CTL_WORKER_STOPPING:
		return "stopping";
	case CTL_WORKER_RETIRING:
		return "retiring";
	}
	return "unknown";
}

/* workers_transition_ok - is from -> to one of the transitions above? */
static bool workers_transition_ok(enum ctl_worker_state from,
    enum ctl_worker_state to)
{
	switch (from) {
	case CTL_WORKER_STOPPED:
		return to == CTL_WORKER_RUNNING || to == CTL_WORKER_RESTARTING;
	case CTL_WORKER_RUNNING:
		return to == CTL_WORKER_RESTARTING || to == CTL_WORKER_STOPPING
		    || to == CTL_WORKER_RETIRING;
	case CTL_WORKER_RESTARTING:
		return to == CTL_WORKER_RUNNING || to == CTL_WORKER_RESTARTING
		    || to == CTL_WORKER_STOPPED;
	case CTL_WORKER_STOPPING:
		return to == CTL_WORKER_STOPPED;
	case CTL_WORKER_RETIRING:
		return to == CTL_WORKER_STOPPING || to == CTL_WORKER_STOPPED;
	}
	return false;
}

/* ctl_worker_enter_state - see elemtactl.h. */
void ctl_worker_enter_state(struct ctl_worker *w, enum ctl_worker_state s)
{
	if (!workers_transition_ok(w->state, s))
		fatal("worker %s[%u]: impossible transition %s -> %s",
		    ctl_worker_kind_name(w->kind), w->id,
		    ctl_worker_state_name(w->state), ctl_worker_state_name(s));
	log_debug("worker %s[%u]: %s -> %s", ctl_worker_kind_name(w->kind),
	    w->id, ctl_worker_state_name(w->state), ctl_worker_state_name(s));
	w->state = s;
}

/* ctl_backoff_delay_ms - see elemtactl.h. */
uint64_t ctl_backoff_delay_ms(unsigned crashes)
{
	uint64_t delay = CTL_BACKOFF_FIRST_MS;

	if (crashes == 0)
		return 0;
	/* Doubling stops at the cap, so a huge count cannot overflow. */
	for (unsigned i = 1; i < crashes && delay < CTL_BACKOFF_MAX_MS; i++)
		delay *= 2;
	return delay < CTL_BACKOFF_MAX_MS ? delay : CTL_BACKOFF_MAX_MS;
}

/* ctl_worker_crashed - see elemtactl.h. */
uint64_t ctl_worker_crashed(struct ctl_worker *w, uint64_t now_ms)
{
	uint64_t lived = now_ms >= w->started_ms ? now_ms - w->started_ms : 0;
	uint64_t delay;

	if (lived > CTL_BACKOFF_RESET_MS)
		w->crashes = 0;
	if (w->crashes < 1000)      /* far past the cap; keeps it bounded */
		w->crashes++;
	delay = ctl_backoff_delay_ms(w->crashes);
	w->restart_at_ms = now_ms + delay;
	return delay;
}

/* ctl_exit_describe - see elemtactl.h. */
char *ctl_exit_describe(int wstatus, char *buf, size_t size)
{
	if (WIFEXITED(wstatus))
		snprintf(buf, size, "exited with status %d", WEXITSTATUS(wstatus));
	else if (WIFSIGNALED(wstatus))
		snprintf(buf, size, "killed by signal %d%s", WTERMSIG(wstatus),
		    WCOREDUMP(wstatus) ? " (core dumped)" : "");
	else
		snprintf(buf, size, "changed state (wait status 0x%x)",
		    (unsigned)wstatus);
	return buf;
}
