/*
 * supervisor.c - `elemtactl start [--foreground]`: the start-up sequence
 * and the supervision loop.
 *
 * SECURITY: runs as root in production and stays root (it must bind,
 * restart workers and remove root-owned files at the end); it reads only
 * the trusted config file and its own runtime files, never network input.
 * Workers get only their inherited sockets and drop privileges before
 * execve (spawn.c).
 *
 * Start-up, each step's failure a one-line error on the terminal, exit 1:
 *   daemon mode: fork at once (the parent waits on a pipe until the child
 *   reports "ready", so it exits 0 only once everything below succeeded,
 *   and errors still reach the terminal), setsid;
 *   config + extra checks; worker users; worker binaries; runtime_dir and
 *   the pid-file lock; spool and counter directories; clean spool tmp/;
 *   bind every socket; create the connection table; spawn policyd
 *   workers, then smtpd workers; daemon mode: stdio to /dev/null, tell
 *   the parent.
 *
 * Connection table: server.max_connections_per_ip holds across all smtpd
 * workers through one shared memfd (common/peer_table.h), created here
 * once, sized by the starting config and kept for the supervisor's life
 * (reloads included).  Each smtpd process gets a slot of its own that no
 * other live process has: a restarted worker keeps its slot, a new
 * generation's workers take free ones (the old generation still counts
 * its sessions in its own).  When an smtpd process is reaped its slot is
 * zeroed here at once, so a crashed worker leaves no counts behind.
 *
 * Supervision: one poll(2) loop on a signalfd (SIGCHLD, SIGTERM, SIGINT,
 * SIGQUIT, SIGHUP) with the nearest restart or stop deadline as timeout.
 * A worker that exits unexpectedly is restarted after its backoff delay
 * (workers.c).  Stopping is two-phase so that sessions finishing during
 * the grace period still get policy answers: SIGTERM to the smtpd workers;
 * once they are all gone, SIGTERM to the policyd workers; whatever still
 * runs after server.shutdown_grace + 5 s gets SIGKILL.  A second stop
 * signal kills at once.  The status file is rewritten after every change.
 *
 * Reload (SIGHUP, sent by `elemtactl reload`): the file is read and
 * validated exactly as check-config does (plugins included, in a child
 * process), and settings that need a restart are refused; any problem is
 * logged and written to runtime_dir/reload-result, and nothing changes.
 * A valid config starts a new generation of workers without refusing a
 * single connection: the listening sockets stay open here throughout
 * (unchanged ones are the very same descriptors, sockets.c), a fresh
 * policy socket replaces policyd.socket's path, the new policyd and then
 * the new smtpd workers start, and only then do the old smtpd workers
 * get SIGTERM (they stop accepting, finish their sessions within
 * shutdown_grace, then exit).  The old policyd workers are RETIRING: they
 * keep answering the old smtpd workers' sessions and get SIGTERM once no
 * smtpd worker of their generation or an older one is left.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "counter.h"
#include "elemtactl.h"
#include "stats_file.h"
#include "log.h"
#include "peer_table.h"
#include "route.h"

#define SUP_KILL_WAIT_MS 5000u       /* after SIGKILL, before giving up   */
#define SUP_STOP_EXTRA_MS 5000u      /* beyond shutdown_grace             */

#define SUP_RELOAD_ERRORS_LOGGED CONFIG_ERRORS_MAX

enum sup_stop_phase {
	SUP_RUNNING,          /* supervising                                 */
	SUP_STOP_SMTPD,       /* smtpd workers finishing their sessions      */
	SUP_STOP_POLICYD,     /* then the policyd workers                    */
};

struct supervisor {
	const struct ctl_args *args;
	struct config *cfg;
	struct ctl_users users;
	struct ctl_lock lock;
	struct ctl_sockets sockets;
	char smtpd_bin[CONFIG_PATH_MAX];
	char policyd_bin[CONFIG_PATH_MAX];
	char metricsd_bin[CONFIG_PATH_MAX]; /* found at its first spawn  */
	char queued_bin[CONFIG_PATH_MAX];

	/* Slots of the current generation (policyd, then smtpd) and of
	 * older ones until their processes are gone. */
	struct ctl_worker *workers;
	size_t worker_count;
	size_t worker_cap;
	unsigned generation;          /* 1 at start, +1 per applied reload  */
	uint64_t reload_seq;          /* reload attempts, for reload-result */

	int peer_fd;                  /* the smtpd connection table (memfd) */
	unsigned peer_room;           /* ... addresses per worker it holds  */

	pid_t pid;
	int64_t started_unix;
	int sigfd;
	int ready_fd;                 /* daemon: pipe to the waiting parent */
	bool foreground;

	enum sup_stop_phase phase;
	uint64_t stop_deadline_ms;    /* SIGKILL after this                 */
	bool killed;                  /* SIGKILL sent                       */
	uint64_t kill_deadline_ms;    /* give up waiting after this         */
	int exit_code;

	bool status_dirty;
	bool status_warned;
};

/* ==== helpers ==== */

/* sup_now_ms - monotonic milliseconds. */
static uint64_t sup_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* sup_error - a start-up error: one line on the terminal (and in syslog
 * when daemonizing, where the terminal goes away). */
static void sup_error(const struct supervisor *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sup_error(const struct supervisor *s, const char *fmt, ...)
{
	char buf[ERROR_TEXT_MAX + 128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "elemtactl: %s\n", buf);
	if (!s->foreground)
		log_err("%s", buf);
}

/* sup_notify - tell systemd (Type=notify) about a state change, when it
 * is listening; best effort. */
static void sup_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@')
	    || strlen(path) >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (path[0] == '@')
		sun.sun_path[0] = '\0';     /* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, len) == -1)
		log_debug("sd_notify %s: %s", path, strerror(errno));
	close(fd);
}

/* sup_find - the slot of a worker process. */
static struct ctl_worker *sup_find(struct supervisor *s, pid_t pid)
{
	for (size_t i = 0; i < s->worker_count; i++)
		if (s->workers[i].pid == pid)
			return &s->workers[i];
	return NULL;
}

/* sup_write_status - rewrite runtime_dir/status from the worker table. */
static void sup_write_status(struct supervisor *s)
{
	struct ctl_status st;
	struct error err;

	ctl_status_from_workers(&st, s->pid, s->started_unix, s->generation,
	    s->workers, s->worker_count);
	if (ctl_status_write(s->cfg->server.runtime_dir, &st, &err) == -1) {
		if (!s->status_warned)
			log_warn("%s", err.text);
		s->status_warned = true;
	} else {
		s->status_warned = false;
	}
	ctl_status_free(&st);
	s->status_dirty = false;
}

/* ==== workers ==== */

/* sup_peer_slot_taken - does a live smtpd slot other than w (running,
 * stopping, retiring or waiting to restart) hold table slot k? */
static bool sup_peer_slot_taken(const struct supervisor *s,
    const struct ctl_worker *w, int k)
{
	for (size_t i = 0; i < s->worker_count; i++) {
		const struct ctl_worker *o = &s->workers[i];

		if (o != w && o->kind == CTL_KIND_SMTPD && o->peer_slot == k
		    && o->state != CTL_WORKER_STOPPED)
			return true;
	}
	return false;
}

/* sup_peer_slot - the table slot for smtpd worker w: its own again after
 * a crash, else the lowest free one; -1 when every slot is held (several
 * reloads within one shutdown_grace). */
static int sup_peer_slot(const struct supervisor *s, struct ctl_worker *w)
{
	if (w->peer_slot >= 0 && !sup_peer_slot_taken(s, w, w->peer_slot))
		return w->peer_slot;
	w->peer_slot = -1;
	for (int k = 0; k < PEER_TABLE_SLOTS; k++) {
		if (!sup_peer_slot_taken(s, w, k)) {
			w->peer_slot = k;
			break;
		}
	}
	return w->peer_slot;
}

/* sup_inherit_smtpd - an smtpd worker's descriptors: its listeners
 * (ELEMTA_LISTEN_FDS), the TLS files (opened now, owned by sp), the
 * connection table and its slot. */
static int sup_inherit_smtpd(struct supervisor *s, struct ctl_worker *w,
    struct ctl_spawn *sp, struct error *err)
{
	char list[CTL_SPAWN_VAR_MAX] = "";
	size_t off = 0;
	int fd;

	for (size_t i = 0; i < s->sockets.listen_count; i++) {
		if ((fd = ctl_spawn_pass(sp, s->sockets.listen[i].fd)) == -1)
			return error_set(err, "too many descriptors to pass");
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%d",
		    i ? "," : "", fd);
	}
	if (ctl_spawn_var(sp, "ELEMTA_LISTEN_FDS=%s", list) == -1)
		return error_set(err, "too many descriptors to pass");
	if (ctl_spawn_pass_tls(sp, err) == -1)
		return -1;
	if (sup_peer_slot(s, w) < 0) {
		log_warn("worker smtpd[%u]: all %d connection table slots are in "
		    "use; its server.max_connections_per_ip counts its own "
		    "connections only", w->id, PEER_TABLE_SLOTS);
		return 0;
	}
	/* The connection table last (it is close-on-exec here). */
	if (ctl_spawn_pass_named(sp, s->peer_fd, "ELEMTA_PEER_FD", err) == -1)
		return -1;
	if (ctl_spawn_var(sp, "ELEMTA_PEER_SLOT=%d", w->peer_slot) == -1)
		return error_set(err, "too many descriptors to pass");
	return 0;
}

/* sup_inherit - the program worker w runs, as whom, and what it
 * inherits, by kind (docs/internals.md). */
static int sup_inherit(struct supervisor *s, struct ctl_worker *w,
    struct ctl_spawn *sp, struct error *err)
{
	switch (w->kind) {
	case CTL_KIND_POLICYD:
		sp->binary = s->policyd_bin;
		sp->user = &s->users.policyd;
		if (ctl_spawn_pass_named(sp, s->sockets.policy.fd,
		    "ELEMTA_POLICY_FD", err) == -1)
			return -1;
		if (s->sockets.postfix.fd == -1)
			return 0;
		return ctl_spawn_pass_named(sp, s->sockets.postfix.fd,
		    "ELEMTA_POSTFIX_FD", err);
	case CTL_KIND_METRICS:
		/* Looked up when first needed: without metrics.listen the
		 * binary is never needed. */
		if (s->metricsd_bin[0] == '\0' && ctl_worker_binary(
		    "elemta-metricsd", s->metricsd_bin, sizeof(s->metricsd_bin),
		    err) == -1) {
			s->metricsd_bin[0] = '\0';
			return -1;
		}
		sp->binary = s->metricsd_bin;
		sp->user = &s->users.policyd;  /* reads the counter table */
		return ctl_spawn_pass_named(sp, s->sockets.metrics.fd,
		    "ELEMTA_METRICS_FD", err);
	case CTL_KIND_SMTPD:
		sp->binary = s->smtpd_bin;
		sp->user = &s->users.smtpd;
		return sup_inherit_smtpd(s, w, sp, err);
	case CTL_KIND_QUEUED:
		/* The spool's owner: it reads and removes what smtpd wrote.
		 * It inherits nothing: inotify on the spool wakes it. */
		sp->binary = s->queued_bin;
		sp->user = &s->users.smtpd;
		return 0;
	}
	return error_set(err, "unknown worker kind");
}

/* sup_spawn - start the process of slot w; -1 with the reason in err. */
static int sup_spawn(struct supervisor *s, struct ctl_worker *w,
    struct error *err)
{
	struct ctl_spawn sp;
	pid_t pid;

	ctl_spawn_init(&sp);
	sp.config_file = s->cfg->file;
	sp.drop = s->users.root;
	sp.foreground = s->foreground;
	sp.id = w->id;
	pid = sup_inherit(s, w, &sp, err) == -1 ? -1 :
	    ctl_spawn_worker(&sp, err);
	ctl_spawn_release(&sp);
	if (pid == -1)
		return -1;
	w->pid = pid;
	w->started_unix = (int64_t)time(NULL);
	w->started_ms = sup_now_ms();
	if (w->state == CTL_WORKER_RESTARTING)
		w->restarts++;
	ctl_worker_enter_state(w, CTL_WORKER_RUNNING);
	log_info("worker %s[%u] pid %ld started (generation %u)%s",
	    ctl_worker_kind_name(w->kind), w->id, (long)pid, w->generation,
	    w->restarts ? " (restart)" : "");
	s->status_dirty = true;
	return 0;
}

/* sup_may_restart - does the current phase still want this slot?  Only
 * the current generation is ever restarted. */
static bool sup_may_restart(const struct supervisor *s,
    const struct ctl_worker *w)
{
	if (w->generation != s->generation)
		return false;
	return s->phase == SUP_RUNNING
	    || (s->phase == SUP_STOP_SMTPD && w->kind == CTL_KIND_POLICYD);
}

/* sup_respawn_due - restart every slot whose backoff delay is over. */
static void sup_respawn_due(struct supervisor *s, uint64_t now)
{
	for (size_t i = 0; i < s->worker_count; i++) {
		struct ctl_worker *w = &s->workers[i];
		struct error err;

		if (w->state != CTL_WORKER_RESTARTING || w->restart_at_ms > now
		    || !sup_may_restart(s, w))
			continue;
		if (sup_spawn(s, w, &err) == -1) {
			w->started_ms = now;
			uint64_t delay = ctl_worker_crashed(w, now);
			log_err("worker %s[%u] cannot start: %s; retrying in %" PRIu64
			    " ms", ctl_worker_kind_name(w->kind), w->id, err.text, delay);
			ctl_worker_enter_state(w, CTL_WORKER_RESTARTING);
			s->status_dirty = true;
		}
	}
}

/* sup_peer_slot_reset - w's process is gone (and with it its sessions):
 * zero its counts now rather than when a successor attaches, which may
 * be a backoff delay away or never. */
static void sup_peer_slot_reset(struct supervisor *s, const struct ctl_worker *w)
{
	struct error err;

	if (w->kind != CTL_KIND_SMTPD || w->peer_slot < 0 || s->peer_fd == -1)
		return;
	if (peer_table_reset_slot(s->peer_fd, (unsigned)w->peer_slot, &err) == -1)
		log_warn("worker smtpd[%u]: %s", w->id, err.text);
}

/* sup_reap - collect every exited child and decide its slot's future. */
static void sup_reap(struct supervisor *s)
{
	for (;;) {
		char how[96];
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		struct ctl_worker *w;

		if (pid == -1 && errno == EINTR)
			continue;
		if (pid <= 0)
			return;
		w = sup_find(s, pid);
		if (w == NULL) {
			log_debug("reaped unknown child pid %ld", (long)pid);
			continue;
		}
		ctl_exit_describe(status, how, sizeof(how));
		w->pid = 0;
		s->status_dirty = true;
		sup_peer_slot_reset(s, w);
		if (w->state == CTL_WORKER_STOPPING
		    || w->state == CTL_WORKER_RETIRING) {
			log_info("worker %s[%u] pid %ld (generation %u) %s",
			    ctl_worker_kind_name(w->kind), w->id, (long)pid,
			    w->generation, how);
			ctl_worker_enter_state(w, CTL_WORKER_STOPPED);
			continue;
		}
		uint64_t delay = ctl_worker_crashed(w, sup_now_ms());
		if (sup_may_restart(s, w)) {
			log_warn("worker %s[%u] pid %ld %s; restarting in %" PRIu64 " ms",
			    ctl_worker_kind_name(w->kind), w->id, (long)pid, how, delay);
			ctl_worker_enter_state(w, CTL_WORKER_RESTARTING);
		} else {
			/* Cannot happen (stopping moves RUNNING slots to STOPPING),
			 * but a slot must never be left RUNNING without a process. */
			log_warn("worker %s[%u] pid %ld %s", ctl_worker_kind_name(w->kind),
			    w->id, (long)pid, how);
			ctl_worker_enter_state(w, CTL_WORKER_RESTARTING);
			ctl_worker_enter_state(w, CTL_WORKER_STOPPED);
		}
	}
}

/* sup_stop_worker - SIGTERM one running or retiring worker; cancel a
 * pending restart. */
static void sup_stop_worker(struct supervisor *s, struct ctl_worker *w)
{
	if (w->state == CTL_WORKER_RESTARTING) {
		ctl_worker_enter_state(w, CTL_WORKER_STOPPED);
	} else if (w->state == CTL_WORKER_RUNNING
	    || w->state == CTL_WORKER_RETIRING) {
		if (kill(w->pid, SIGTERM) == -1 && errno != ESRCH)
			log_warn("kill worker %s[%u] pid %ld: %s",
			    ctl_worker_kind_name(w->kind), w->id, (long)w->pid,
			    strerror(errno));
		ctl_worker_enter_state(w, CTL_WORKER_STOPPING);
	}
	s->status_dirty = true;
}

/* sup_stop_kind - SIGTERM every worker of kind; cancel restarts. */
static void sup_stop_kind(struct supervisor *s, enum ctl_worker_kind kind)
{
	for (size_t i = 0; i < s->worker_count; i++)
		if (s->workers[i].kind == kind)
			sup_stop_worker(s, &s->workers[i]);
}

/* sup_retire_progress - a retiring policyd worker of generation g is
 * stopped once no smtpd worker of generation g or older is left: nobody
 * can ask it anything any more (newer smtpd workers connect to the newer
 * policy socket). */
static void sup_retire_progress(struct supervisor *s)
{
	for (size_t i = 0; i < s->worker_count; i++) {
		struct ctl_worker *p = &s->workers[i];
		bool needed = false;

		if (p->state != CTL_WORKER_RETIRING)
			continue;
		for (size_t j = 0; j < s->worker_count && !needed; j++)
			needed = s->workers[j].kind == CTL_KIND_SMTPD
			    && s->workers[j].generation <= p->generation
			    && s->workers[j].state != CTL_WORKER_STOPPED;
		if (!needed) {
			log_info("worker policyd[%u] pid %ld (generation %u): its "
			    "smtpd workers are gone; stopping it", p->id,
			    (long)p->pid, p->generation);
			sup_stop_worker(s, p);
		}
	}
}

/* sup_compact - forget the slots of older generations once stopped. */
static void sup_compact(struct supervisor *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->worker_count; i++) {
		const struct ctl_worker *w = &s->workers[i];

		if (w->generation != s->generation && w->state == CTL_WORKER_STOPPED)
			continue;
		if (n != i)
			s->workers[n] = *w;
		n++;
	}
	if (n != s->worker_count)
		s->status_dirty = true;
	s->worker_count = n;
}

/* sup_kind_gone - no process of kind left. */
static bool sup_kind_gone(const struct supervisor *s, enum ctl_worker_kind kind)
{
	for (size_t i = 0; i < s->worker_count; i++)
		if (s->workers[i].kind == kind
		    && s->workers[i].state != CTL_WORKER_STOPPED)
			return false;
	return true;
}

/* sup_kill_all - the grace period is over: SIGKILL whatever is left. */
static void sup_kill_all(struct supervisor *s, uint64_t now)
{
	sup_stop_kind(s, CTL_KIND_SMTPD);
	sup_stop_kind(s, CTL_KIND_POLICYD);
	sup_stop_kind(s, CTL_KIND_METRICS);
	sup_stop_kind(s, CTL_KIND_QUEUED);
	for (size_t i = 0; i < s->worker_count; i++) {
		struct ctl_worker *w = &s->workers[i];

		if (w->state != CTL_WORKER_STOPPING)
			continue;
		log_warn("worker %s[%u] pid %ld still running: killing it",
		    ctl_worker_kind_name(w->kind), w->id, (long)w->pid);
		kill(w->pid, SIGKILL);
	}
	s->phase = SUP_STOP_POLICYD;
	s->killed = true;
	s->kill_deadline_ms = now + SUP_KILL_WAIT_MS;
}

/* sup_begin_stop - the first stop signal: phase one (smtpd). */
static void sup_begin_stop(struct supervisor *s, const char *why)
{
	uint64_t grace = s->cfg->server.shutdown_grace_ms;

	s->phase = SUP_STOP_SMTPD;
	s->stop_deadline_ms = sup_now_ms() + grace + SUP_STOP_EXTRA_MS;
	log_info("%s: stopping (sessions get %" PRIu64 " ms to finish)", why,
	    grace);
	sup_notify("STOPPING=1");
	/* smtpd workers keep their own copies until they finish; ours only
	 * would keep accepting into the backlog. */
	ctl_sockets_close_listeners(&s->sockets);
	sup_stop_kind(s, CTL_KIND_SMTPD);
	sup_stop_kind(s, CTL_KIND_METRICS);
	sup_stop_kind(s, CTL_KIND_QUEUED);
}

/* sup_stop_progress - move the stop along: phase two once smtpd is gone,
 * SIGKILL at the deadline. */
static void sup_stop_progress(struct supervisor *s, uint64_t now)
{
	if (s->phase == SUP_STOP_SMTPD && sup_kind_gone(s, CTL_KIND_SMTPD)) {
		s->phase = SUP_STOP_POLICYD;
		sup_stop_kind(s, CTL_KIND_POLICYD);
	}
	if (s->phase != SUP_RUNNING && !s->killed && now >= s->stop_deadline_ms)
		sup_kill_all(s, now);
}

/* sup_all_stopped - the loop's end condition. */
static bool sup_all_stopped(const struct supervisor *s)
{
	return s->phase != SUP_RUNNING && sup_kind_gone(s, CTL_KIND_SMTPD)
	    && sup_kind_gone(s, CTL_KIND_POLICYD)
	    && sup_kind_gone(s, CTL_KIND_METRICS)
	    && sup_kind_gone(s, CTL_KIND_QUEUED);
}

/* ==== the loop ==== */

static void sup_reload(struct supervisor *s);

/* sup_read_signals - drain the signalfd. */
static void sup_read_signals(struct supervisor *s)
{
	struct signalfd_siginfo si;
	ssize_t n;

	while ((n = read(s->sigfd, &si, sizeof(si))) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			sup_reap(s);
			break;
		case SIGTERM:
		case SIGINT:
		case SIGQUIT:
			if (s->phase == SUP_RUNNING) {
				char why[48];

				snprintf(why, sizeof(why), "received SIG%s",
				    sigabbrev_np((int)si.ssi_signo));
				sup_begin_stop(s, why);
			} else if (!s->killed) {
				log_warn("SIG%s again: not waiting any longer",
				    sigabbrev_np((int)si.ssi_signo));
				sup_kill_all(s, sup_now_ms());
			}
			break;
		case SIGHUP:
			sup_reload(s);
			break;
		default:
			break;
		}
	}
	/* A SIGCHLD can be merged into one already read; reaping is cheap. */
	sup_reap(s);
}

/* sup_timeout - poll timeout: until the nearest restart or deadline. */
static int sup_timeout(const struct supervisor *s, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (size_t i = 0; i < s->worker_count; i++) {
		const struct ctl_worker *w = &s->workers[i];

		if (w->state == CTL_WORKER_RESTARTING && sup_may_restart(s, w)
		    && w->restart_at_ms < next)
			next = w->restart_at_ms;
	}
	if (s->phase != SUP_RUNNING && !s->killed && s->stop_deadline_ms < next)
		next = s->stop_deadline_ms;
	if (s->killed && s->kill_deadline_ms < next)
		next = s->kill_deadline_ms;
	if (next == UINT64_MAX)
		return -1;
	if (next <= now)
		return 0;
	return next - now > 60000 ? 60000 : (int)(next - now);
}

/* sup_loop - supervise until every worker is stopped. */
static void sup_loop(struct supervisor *s)
{
	for (;;) {
		struct pollfd pfd = { .fd = s->sigfd, .events = POLLIN };
		uint64_t now = sup_now_ms();

		sup_respawn_due(s, now);
		sup_retire_progress(s);
		sup_stop_progress(s, now);
		sup_compact(s);
		if (s->status_dirty)
			sup_write_status(s);
		if (sup_all_stopped(s))
			return;
		if (s->killed && now >= s->kill_deadline_ms) {
			log_err("workers still alive %u ms after SIGKILL; exiting anyway",
			    SUP_KILL_WAIT_MS);
			return;
		}
		if (poll(&pfd, 1, sup_timeout(s, now)) == -1 && errno != EINTR)
			fatal("poll: %s", strerror(errno));
		if (pfd.revents & POLLIN)
			sup_read_signals(s);
	}
}

/* ==== start-up ==== */

/* sup_prepare_spool - the spool directories of cfg and its Maildir
 * bases (owners when root); at start and at a reload that may have moved
 * them. */
static int sup_prepare_spool(const struct supervisor *s,
    const struct config *cfg, struct error *err)
{
	static const char *const spool_sub[] = { "tmp", "queue", "quarantine",
	    "state", "control" };
	const struct ctl_users *u = &s->users;
	char path[CONFIG_PATH_MAX + 16];     /* + "/quarantine" */

	/* The spool's top stays root's: smtpd must not be able to swap its
	 * sub-directories for links that root would later follow. */
	if (ctl_mkdir_p(cfg->spool.path, 0755, err) == -1)
		return -1;
	for (size_t i = 0; i < sizeof(spool_sub) / sizeof(*spool_sub); i++) {
		snprintf(path, sizeof(path), "%s/%s", cfg->spool.path, spool_sub[i]);
		if (ctl_mkdir_p(path, 0700, err) == -1)
			return -1;
		if (u->root && ctl_dir_secure(path, u->smtpd.uid, u->smtpd.gid, 0700,
		    err) == -1)
			return -1;
	}
	/* The bases of maildir: routes, which elemta-queued (server.user)
	 * writes into; maildir.c creates what lies below. */
	for (size_t i = 0; i < cfg->delivery.route_count; i++) {
		const struct route_hop *h = &cfg->delivery.routes[i].hop;

		if (h->transport != ROUTE_MAILDIR)
			continue;
		if (ctl_mkdir_p(h->path, 0700, err) == -1)
			return -1;
		if (u->root && ctl_dir_secure(h->path, u->smtpd.uid, u->smtpd.gid,
		    0700, err) == -1)
			return -1;
	}
	return 0;
}

/* sup_prepare_dirs - at start: spool and counter directories (owners when
 * root), and the cleaning of spool tmp/. */
static int sup_prepare_dirs(struct supervisor *s, struct error *err)
{
	const struct config *cfg = s->cfg;
	const struct ctl_users *u = &s->users;
	char path[CONFIG_PATH_MAX + 16];
	long removed;

	if (sup_prepare_spool(s, cfg, err) == -1)
		return -1;
	/* counters.backend: redis keeps nothing on this host. */
	if (cfg->counters.backend == CONFIG_BACKEND_LMDB) {
		if (ctl_mkdir_p(cfg->counters.path, 0700, err) == -1)
			return -1;
		/* Before any worker opens the table: a FAST-mode table that
		 * was open when the system went down is moved aside, never
		 * trusted. */
		bool discarded;
		if (counter_store_prepare(cfg->counters.path, (enum
		    counter_sync)cfg->counters.sync, &discarded, err) == -1)
			return -1;
		if (u->root && (ctl_dir_secure(cfg->counters.path,
		    u->policyd.uid, u->policyd.gid, 0700, err) == -1 ||
		    ctl_dir_chown_files(cfg->counters.path, u->policyd.uid,
		    u->policyd.gid, err) == -1))
			return -1;
	}

	/* smtpd workers write their counts into runtime_dir/stats/
	 * (smtpd/stats.c), theirs to write; an earlier run's files go, so
	 * totals count from this start. */
	snprintf(path, sizeof(path), "%s/%s", cfg->server.runtime_dir,
	    STATS_FILE_SUBDIR);
	if (ctl_mkdir_p(path, 0755, err) == -1)
		return -1;
	if (ctl_dir_clean(path, &removed, err) == -1)
		log_warn("cleaning %s: %s", path, err->text);
	if (u->root && ctl_dir_secure(path, u->smtpd.uid, u->smtpd.gid, 0755,
	    err) == -1)
		return -1;

	/* Leftovers of sessions that died mid-DATA: never complete, never
	 * acknowledged, safe to drop. */
	snprintf(path, sizeof(path), "%s/tmp", cfg->spool.path);
	if (ctl_dir_clean(path, &removed, err) == -1)
		log_warn("cleaning %s: %s", path, err->text);
	if (removed > 0)
		log_info("removed %ld leftover entr%s from %s", removed,
		    removed == 1 ? "y" : "ies", path);
	return 0;
}

/* sup_raise_nofile - each smtpd worker may hold max_connections sessions
 * (a socket each, plus spool files and policy connections); raise the
 * soft limit to the hard one, and the hard one too when root. */
static void sup_raise_nofile(const struct supervisor *s)
{
	rlim_t want = (rlim_t)s->cfg->server.max_connections + 1024;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (s->users.root && rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
		struct rlimit more = { want, want };

		if (setrlimit(RLIMIT_NOFILE, &more) == 0)
			return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
		log_warn("open file limit %lu is low for server.max_connections %u; "
		    "raise it (ulimit -n)", (unsigned long)rl.rlim_cur,
		    s->cfg->server.max_connections);
}

/* sup_add_generation - append the slots of generation s->generation for
 * s->cfg: policyd workers first, then smtpd, then the metrics worker
 * (when metrics.listen is bound), then elemta-queued.  Returns the first
 * new slot's index. */
static size_t sup_add_generation(struct supervisor *s)
{
	unsigned np = s->cfg->policyd.workers, ns = s->cfg->server.workers;
	unsigned nm = s->sockets.metrics.fd != -1 ? 1 : 0;
	size_t first = s->worker_count, need = first + np + ns + nm + 1;

	if (need > s->worker_cap) {
		s->worker_cap = need * 2;
		s->workers = xrealloc(s->workers, s->worker_cap
		    * sizeof(*s->workers));
	}
	for (size_t i = 0; i < (size_t)np + ns + nm + 1; i++) {
		struct ctl_worker *w = &s->workers[first + i];

		memset(w, 0, sizeof(*w));
		w->kind = i < np ? CTL_KIND_POLICYD : i < (size_t)np + ns ?
		    CTL_KIND_SMTPD : i < (size_t)np + ns + nm ? CTL_KIND_METRICS :
		    CTL_KIND_QUEUED;
		w->id = i < np ? (unsigned)i : i < (size_t)np + ns ?
		    (unsigned)(i - np) : 0;
		w->state = CTL_WORKER_STOPPED;
		w->generation = s->generation;
		w->peer_slot = -1;
	}
	s->worker_count = need;
	return first;
}

/* sup_signals - block the signals the loop reads and open the signalfd.
 * Blocked before the first fork, so no SIGCHLD can be lost. */
static int sup_signals(struct supervisor *s, struct error *err)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		return error_set(err, "sigprocmask: %s", strerror(errno));
	s->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s->sigfd == -1)
		return error_set(err, "signalfd: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* sup_ready - start-up is over: detach from the terminal (daemon) and
 * release the waiting parent. */
static void sup_ready(struct supervisor *s)
{
	if (s->ready_fd != -1) {
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (chdir("/") == -1)
			log_warn("chdir /: %s", strerror(errno));
		if (nul != -1) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
			close(nul);
		}
		if (write(s->ready_fd, "R", 1) != 1)
			log_warn("cannot tell the starting process: %s", strerror(errno));
		close(s->ready_fd);
		s->ready_fd = -1;
	}
	char msg[64];

	snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%ld", (long)s->pid);
	sup_notify(msg);
}

/* sup_cleanup - release everything start-up acquired (any subset). */
static void sup_cleanup(struct supervisor *s)
{
	ctl_sockets_close(&s->sockets);
	if (s->peer_fd != -1)
		close(s->peer_fd);
	s->peer_fd = -1;
	if (s->lock.fd != -1) {
		/* Workers are gone (a killed process loses nothing of LMDB's
		 * page cache): only a system crash leaves the marker behind. */
		counter_store_mark_clean(s->cfg->counters.path);
		ctl_status_remove(s->cfg->server.runtime_dir);
		ctl_reload_result_remove(s->cfg->server.runtime_dir);
		ctl_lock_release(&s->lock);
	}
	if (s->sigfd != -1)
		close(s->sigfd);
	free(s->workers);
	s->workers = NULL;
	if (s->cfg)
		config_free(s->cfg);
	s->cfg = NULL;
}

/* sup_startup - everything before the first worker; 0 or -1 (reported). */
static int sup_startup(struct supervisor *s)
{
	static struct config_errors extra;
	struct error err;
	pid_t holder;

	s->cfg = ctl_config_load(s->args->config_file);
	if (s->cfg == NULL)
		return -1;
	memset(&extra, 0, sizeof(extra));
	if (ctl_config_check_extra(s->cfg, &extra) > 0) {
		for (size_t i = 0; i < extra.count; i++)
			fprintf(stderr, "%s\n", extra.text[i]);
		return -1;
	}
	log_init("elemtactl", s->foreground, s->cfg->log.level);

	if (ctl_users_resolve(s->cfg, &s->users, &err) == -1) {
		sup_error(s, "%s", err.text);
		return -1;
	}
	/* Every enabled plugin, loaded as policyd would: a broken one is a
	 * clear error now rather than a crash loop of every policyd worker. */
	memset(&extra, 0, sizeof(extra));
	if (ctl_config_check_plugins(s->cfg, &s->users, true, &extra) > 0) {
		for (size_t i = 0; i < extra.count; i++)
			sup_error(s, "%s", extra.text[i]);
		return -1;
	}
	if (!s->users.root) {
		fprintf(stderr, "elemtactl: not running as root; all processes run "
		    "as user %s (development mode)\n", s->users.smtpd.name);
		if (!s->foreground)
			log_warn("not running as root; all processes run as user %s "
			    "(development mode)", s->users.smtpd.name);
	}
	if (ctl_worker_binary("elemta-policyd", s->policyd_bin,
	    sizeof(s->policyd_bin), &err) == -1
	    || ctl_worker_binary("elemta-smtpd", s->smtpd_bin,
	    sizeof(s->smtpd_bin), &err) == -1
	    || ctl_worker_binary("elemta-queued", s->queued_bin,
	    sizeof(s->queued_bin), &err) == -1) {
		sup_error(s, "%s", err.text);
		return -1;
	}

	if (ctl_mkdir_p(s->cfg->server.runtime_dir, 0755, &err) == -1) {
		sup_error(s, "%s", err.text);
		return -1;
	}
	switch (ctl_lock_acquire(s->cfg->server.runtime_dir, &s->lock, &holder,
	    &err)) {
	case 1:
		if (holder > 0)
			sup_error(s, "already running (pid %ld)", (long)holder);
		else
			sup_error(s, "already running (another elemtactl holds %s/%s)",
			    s->cfg->server.runtime_dir, CTL_PID_FILE);
		return -1;
	case -1:
		sup_error(s, "%s", err.text);
		return -1;
	}
	ctl_reload_result_remove(s->cfg->server.runtime_dir);
	if (ctl_lock_write_pid(&s->lock, s->pid, &err) == -1
	    || sup_prepare_dirs(s, &err) == -1
	    || ctl_sockets_open(s->cfg, &s->users, &s->sockets, &err) == -1
	    || sup_signals(s, &err) == -1) {
		sup_error(s, "%s", err.text);
		return -1;
	}
	/* Now that the directories exist: can the workers, once dropped,
	 * reach everything?  Else they would only crash in a loop. */
	memset(&extra, 0, sizeof(extra));
	if (ctl_config_check_access(s->cfg, &s->users, true, &extra) > 0) {
		for (size_t i = 0; i < extra.count; i++)
			sup_error(s, "%s", extra.text[i]);
		return -1;
	}
	sup_raise_nofile(s);
	/* Sized by this config's max_connections for the supervisor's life:
	 * a reload whose max_connections exceeds peer_table_room of it is
	 * refused (sup_reload_fixed). */
	s->peer_fd = peer_table_create(PEER_TABLE_SLOTS,
	    s->cfg->server.max_connections, &err);
	if (s->peer_fd == -1) {
		sup_error(s, "connection table: %s", err.text);
		return -1;
	}
	s->peer_room = peer_table_room(s->cfg->server.max_connections);
	s->generation = 1;
	sup_add_generation(s);
	s->started_unix = (int64_t)time(NULL);
	return 0;
}

/* ==== reload ==== */

/* sup_errs_add - append one problem (dropped when errs is full). */
static void sup_errs_add(struct config_errors *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sup_errs_add(struct config_errors *errs, const char *fmt, ...)
{
	va_list ap;

	if (errs->count >= CONFIG_ERRORS_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(errs->text[errs->count++], ERROR_TEXT_MAX, fmt, ap);
	va_end(ap);
}

/* sup_reload_fixed - settings a running system cannot change: refused
 * with the reason (every one of them is added to errs). */
static void sup_reload_fixed(const struct supervisor *s,
    const struct config *n, struct config_errors *errs)
{
	const struct config *o = s->cfg;
	const struct {
		const char *section, *key, *was, *now, *why;
	} fixed[] = {
		{ "server", "runtime_dir", o->server.runtime_dir,
		    n->server.runtime_dir, "it holds the running supervisor's "
		    "pid file and lock" },
		{ "server", "user", o->server.user, n->server.user,
		    "the worker users are resolved once, at start" },
		{ "policyd", "user", o->policyd.user, n->policyd.user,
		    "the worker users are resolved once, at start" },
		{ "policyd", "socket", o->policyd.socket, n->policyd.socket,
		    "the running smtpd workers reach policyd there" },
		{ "counters", "path", o->counters.path, n->counters.path,
		    "the table's crash marker is kept by the running supervisor" },
	};

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (strcmp(fixed[i].was, fixed[i].now) == 0)
			continue;
		sup_errs_add(errs, "%s: key '%s.%s': cannot change on reload "
		    "(running: '%.200s'); %s: restart elemta to apply it",
		    ctl_config_where(n, fixed[i].section, fixed[i].key),
		    fixed[i].section, fixed[i].key, fixed[i].was, fixed[i].why);
	}
	/* The connection table was sized at start (a sealed memfd every
	 * worker maps): a worker may not hold more sessions than it counts. */
	if (n->server.max_connections > s->peer_room)
		sup_errs_add(errs, "%s: key 'server.max_connections': %u is more "
		    "than the connection table sized at start holds per worker "
		    "(%u): restart elemta to raise it that far",
		    ctl_config_where(n, "server", "max_connections"),
		    n->server.max_connections, s->peer_room);
	if (o->counters.sync != n->counters.sync)
		sup_errs_add(errs, "%s: key 'counters.sync': cannot change on "
		    "reload; the table was prepared for the running mode: "
		    "restart elemta to apply it",
		    ctl_config_where(n, "counters", "sync"));
}

/* sup_retire_generations - everything older than the current generation:
 * smtpd workers get SIGTERM (they finish their sessions), and so does a
 * metrics worker, policyd workers retire (sup_retire_progress stops them
 * later), pending restarts are cancelled. */
static void sup_retire_generations(struct supervisor *s)
{
	for (size_t i = 0; i < s->worker_count; i++) {
		struct ctl_worker *w = &s->workers[i];

		if (w->generation == s->generation)
			continue;
		if (w->state == CTL_WORKER_RESTARTING)
			ctl_worker_enter_state(w, CTL_WORKER_STOPPED);
		else if (w->state == CTL_WORKER_RUNNING && w->kind != CTL_KIND_POLICYD)
			sup_stop_worker(s, w);
		else if (w->state == CTL_WORKER_RUNNING)
			ctl_worker_enter_state(w, CTL_WORKER_RETIRING);
		s->status_dirty = true;
	}
}

/* sup_reload_apply - start generation + 1 with ncfg (validated); on
 * success ncfg belongs to the supervisor.  -1 with err: nothing changed. */
static int sup_reload_apply(struct supervisor *s, struct config *ncfg,
    struct config_errors *errs)
{
	struct ctl_sockets nsock;
	struct config *ocfg = s->cfg;
	struct error err;
	size_t first;

	if (sup_prepare_spool(s, ncfg, &err) == -1) {
		sup_errs_add(errs, "%s", err.text);
		return -1;
	}
	if (ctl_config_check_access(ncfg, &s->users, true, errs) > 0)
		return -1;
	if (ctl_sockets_reopen(ncfg, &s->users, &s->sockets, &nsock,
	    &err) == -1) {
		sup_errs_add(errs, "%s", err.text);
		return -1;
	}

	/* The point of no return: the policy path names the fresh socket. */
	ctl_sockets_release_old(&s->sockets);
	s->sockets = nsock;
	s->cfg = ncfg;
	s->generation++;
	log_init("elemtactl", s->foreground, ncfg->log.level);

	/* policyd first, so that the new smtpd workers' first requests find
	 * it; a worker that cannot start is retried like a crashed one. */
	first = sup_add_generation(s);
	for (size_t i = first; i < s->worker_count; i++) {
		struct ctl_worker *w = &s->workers[i];
		uint64_t now = sup_now_ms();

		if (sup_spawn(s, w, &err) == 0)
			continue;
		w->started_ms = now;
		log_err("worker %s[%u] (generation %u) cannot start: %s; retrying "
		    "in %" PRIu64 " ms", ctl_worker_kind_name(w->kind), w->id,
		    w->generation, err.text, ctl_worker_crashed(w, now));
		ctl_worker_enter_state(w, CTL_WORKER_RESTARTING);
	}
	sup_retire_generations(s);
	config_free(ocfg);
	s->status_dirty = true;
	log_info("reload: generation %u running: %u policyd and %u smtpd "
	    "workers, %zu listener%s", s->generation, ncfg->policyd.workers,
	    ncfg->server.workers, s->sockets.listen_count,
	    s->sockets.listen_count == 1 ? "" : "s");
	return 0;
}

/* sup_reload - SIGHUP: re-read, validate, apply or refuse; the outcome is
 * logged and written to runtime_dir/reload-result. */
static void sup_reload(struct supervisor *s)
{
	static struct config_errors errs;  /* 32 KiB: not on the stack */
	struct ctl_reload_result res;
	struct config *ncfg = NULL;
	struct error err;

	memset(&res, 0, sizeof(res));
	memset(&errs, 0, sizeof(errs));
	res.pid = s->pid;
	res.seq = ++s->reload_seq;
	if (s->phase != SUP_RUNNING) {
		log_warn("SIGHUP while stopping: not reloading");
		sup_errs_add(&errs, "elemta is stopping: not reloaded");
		goto done;
	}
	log_info("SIGHUP: reloading %s", s->cfg->file);
	ncfg = config_load(s->cfg->file, &errs);
	if (ncfg == NULL) {
		if (errs.count == 0)
			sup_errs_add(&errs, "%s: invalid configuration", s->cfg->file);
		goto done;
	}
	sup_reload_fixed(s, ncfg, &errs);
	if (errs.count == 0)
		ctl_config_validate(ncfg, &s->users, s->foreground, &errs);
	if (errs.count == 0 && sup_reload_apply(s, ncfg, &errs) == 0) {
		ncfg = NULL;             /* the running config now */
		res.ok = true;
	}
done:
	if (ncfg != NULL)
		config_free(ncfg);
	res.generation = s->generation;
	if (!res.ok) {
		for (size_t i = 0; i < errs.count; i++) {
			log_err("reload refused: %s", errs.text[i]);
			ctl_reload_result_add(&res, errs.text[i]);
		}
		log_warn("reload refused (%zu problem%s); generation %u keeps "
		    "running unchanged", errs.count, errs.count == 1 ? "" : "s",
		    s->generation);
	}
	if (ctl_reload_result_write(s->cfg->server.runtime_dir, &res, &err) == -1)
		log_warn("%s", err.text);
	ctl_reload_result_free(&res);
	if (s->status_dirty)
		sup_write_status(s);
}

/* sup_run - the supervisor process proper; returns the exit code. */
static int sup_run(struct supervisor *s)
{
	struct error err;

	if (sup_startup(s) == -1) {
		sup_cleanup(s);
		return 1;
	}
	/* policyd first: smtpd's first policy request then finds a worker
	 * (connections would wait in the socket's backlog anyway). */
	for (size_t i = 0; i < s->worker_count; i++) {
		struct ctl_worker *w = &s->workers[i];

		if (sup_spawn(s, w, &err) == -1) {
			sup_error(s, "cannot start worker %s[%u]: %s",
			    ctl_worker_kind_name(w->kind), w->id, err.text);
			s->exit_code = 1;
			sup_begin_stop(s, "start-up failed");
			sup_loop(s);
			sup_cleanup(s);
			return 1;
		}
	}
	log_info("elemtactl pid %ld running: %u policyd and %u smtpd workers, "
	    "%zu listener%s", (long)s->pid, s->cfg->policyd.workers,
	    s->cfg->server.workers, s->sockets.listen_count,
	    s->sockets.listen_count == 1 ? "" : "s");
	sup_write_status(s);
	sup_ready(s);

	sup_loop(s);

	log_info("elemtactl pid %ld stopped", (long)s->pid);
	sup_cleanup(s);
	return s->exit_code;
}

/* sup_wait_child - daemon mode, in the parent: exit with the child's
 * verdict (it printed its own errors on our shared stderr). */
static int sup_wait_child(pid_t child, int ready_fd)
{
	char c = 0;
	ssize_t n;
	int status;

	do {
		n = read(ready_fd, &c, 1);
	} while (n == -1 && errno == EINTR);
	close(ready_fd);
	if (n == 1 && c == 'R') {
		printf("elemtactl: started (pid %ld)\n", (long)child);
		return 0;
	}
	while (waitpid(child, &status, 0) == -1) {
		if (errno != EINTR)
			return 1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		return WEXITSTATUS(status);
	fprintf(stderr, "elemtactl: the supervisor exited during start-up\n");
	return 1;
}

/* ctl_start - see elemtactl.h. */
int ctl_start(const struct ctl_args *args)
{
	static struct supervisor sup;
	struct supervisor *s = &sup;

	memset(s, 0, sizeof(*s));
	s->args = args;
	s->foreground = args->foreground;
	s->lock.fd = -1;
	s->sigfd = -1;
	s->ready_fd = -1;
	s->peer_fd = -1;
	ctl_sockets_init(&s->sockets);
	umask(022);

	if (!s->foreground) {
		int pipefd[2];
		pid_t child;

		fflush(NULL);
		if (pipe2(pipefd, O_CLOEXEC) == -1) {
			fprintf(stderr, "elemtactl: pipe: %s\n", strerror(errno));
			return 1;
		}
		child = fork();
		if (child == -1) {
			fprintf(stderr, "elemtactl: fork: %s\n", strerror(errno));
			return 1;
		}
		if (child > 0) {
			close(pipefd[1]);
			return sup_wait_child(child, pipefd[0]);
		}
		close(pipefd[0]);
		s->ready_fd = pipefd[1];
		setsid();
	}
	s->pid = getpid();
	return sup_run(s);
}
