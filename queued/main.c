/*
 * elemta-queued - the delivery process: owns every message after smtpd's
 * 250 and delivers it (queue.c: scheduling and state; commit.c: the
 * removal of finished messages, on its own thread; relay.c: SMTP and
 * LMTP; maildir.c; bounce.c).
 *
 * Started by elemtactl as the supervised worker of kind "queued" (one
 * instance, restarted with backoff), already running as server.user, the
 * owner of the spool: it reads and removes what smtpd wrote and writes
 * bounces in the same format.  Standalone (`elemta-queued -c FILE`) it
 * runs as the invoking user.
 *
 * Wake-up: inotify on spool.path/queue/ (a message linked or renamed in:
 * smtpd's commit, a bounce) and spool.path/control/ (an `elemtactl queue`
 * mark), so an idle system delivers within milliseconds of the 250 and
 * smtpd needs no notification code; a rescan every QUEUED_RESCAN_SECONDS
 * (and on an inotify overflow) is the fallback.  At start everything in
 * queue/ is picked up, including messages a crash left mid-delivery.
 *
 * SIGTERM/SIGINT: no new attempts; the process exits once the attempts
 * in flight have ended (or after QUEUED_STOP_SECONDS; whatever was in
 * flight is retried by the next process).
 *
 * Untrusted input: spool file contents (common/queue_file.c), next hops'
 * replies (queued/reply.c through smtp_client.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <yaml.h>

#include "config.h"
#include "daemon_start.h"
#include "log.h"
#include "queue.h"
#include "stats.h"
#include "version.h"

#define QUEUED_RESCAN_SECONDS 60
#define QUEUED_STOP_SECONDS 30

struct queued {
	struct event_base *base;
	struct config *cfg;
	struct queue *q;
	int ino;
	int wd_queue, wd_control;
	struct event *ino_ev, *rescan_ev, *stop_ev;
	bool stopping;
};

/* usage - the synopsis on f. */
static void
usage(FILE *f)
{
	fprintf(f, "usage: elemta-queued [-c FILE] | --version\n");
}

/* queued_ino_cb - queue/ or control/ changed. */
static void
queued_ino_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queued *qd = arg;
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const void *)p;

			if (ev->mask & IN_Q_OVERFLOW)
				queue_wake(qd->q);
			else if (ev->wd == qd->wd_queue && ev->len > 0)
				queue_arrived(qd->q, ev->name);
			else if (ev->wd == qd->wd_control)
				queue_control_changed(qd->q);
			p += sizeof(*ev) + ev->len;
		}
	}
}

/* queued_rescan_cb - the fallback rescan. */
static void
queued_rescan_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queued *qd = arg;

	queue_wake(qd->q);
}

/* queued_stop_check - leave the loop once nothing is in flight. */
static void
queued_stop_check(evutil_socket_t fd, short what, void *arg)
{
	struct queued *qd = arg;
	struct timeval tv = { 0, 100000 };
	static unsigned ticks;

	if (queue_stop(qd->q) || ++ticks > QUEUED_STOP_SECONDS * 10) {
		event_base_loopbreak(qd->base);
		return;
	}
	evtimer_add(qd->stop_ev, &tv);
}

/* queued_signal_cb - SIGTERM/SIGINT: stop; SIGHUP: ignored. */
static void
queued_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct queued *qd = arg;

	if (sig == SIGHUP) {
		log_info("SIGHUP ignored: a reload replaces this worker");
		return;
	}
	if (qd->stopping)
		return;
	qd->stopping = true;
	log_info("signal %d: stopping after the attempts in flight", (int)sig);
	queued_stop_check(-1, 0, qd);
}

/* queued_watch - inotify on spool/queue and spool/control. */
static int
queued_watch(struct queued *qd, struct error *err)
{
	static const char *const subs[] = { "queue", "control" };

	qd->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (qd->ino < 0)
		return error_set(err, "inotify_init1: %s", strerror(errno));
	for (size_t i = 0; i < 2; i++) {
		char dir[CONFIG_PATH_MAX + 32];

		snprintf(dir, sizeof(dir), "%s/%s", qd->cfg->spool.path, subs[i]);
		if (i == 1 && mkdir(dir, 0750) < 0 && errno != EEXIST)
			return error_set(err, "mkdir %s: %s", dir,
			    strerror(errno));
		int wd = inotify_add_watch(qd->ino, dir, IN_MOVED_TO | IN_CREATE);

		if (wd < 0)
			return error_set(err, "inotify_add_watch %s: %s", dir,
			    strerror(errno));
		*(i == 0 ? &qd->wd_queue : &qd->wd_control) = wd;
	}
	return 0;
}

/* queued_dirs - state/ and control/ beside queue/ (elemtactl makes them;
 * standalone runs make them here). */
static int
queued_dirs(const struct config *cfg, struct error *err)
{
	static const char *const subs[] = { "tmp", "queue", "state", "control" };

	for (size_t i = 0; i < 4; i++) {
		char dir[CONFIG_PATH_MAX + 32];

		snprintf(dir, sizeof(dir), "%s/%s", cfg->spool.path, subs[i]);
		if (mkdir(dir, 0750) < 0 && errno != EEXIST)
			return error_set(err, "mkdir %s: %s", dir,
			    strerror(errno));
	}
	return 0;
}

/* queued_lock - one elemta-queued per spool: an exclusive flock on
 * spool/state/.lock, waited for (a reload's new process starts before
 * the old one has finished its attempts in flight; two delivering the
 * same messages would duplicate them).  The descriptor stays open. */
static int
queued_lock(const struct config *cfg, struct error *err)
{
	char path[CONFIG_PATH_MAX + 32];
	bool said = false;
	int fd;

	snprintf(path, sizeof(path), "%s/state/.lock", cfg->spool.path);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return error_set(err, "open %s: %s", path, strerror(errno));
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			close(fd);
			return error_set(err, "flock %s: %s", path,
			    strerror(errno));
		}
		if (!said)
			log_info("waiting for the previous elemta-queued to "
			    "finish");
		said = true;
		usleep(50000);
	}
	return fd;
}

/* main - config, directories, the loop. */
int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = CONFIG_DEFAULT_FILE;
	struct queued qd;
	struct event *sig[3];
	struct timeval rescan = { QUEUED_RESCAN_SECONDS, 0 };
	struct error err;
	int ch;

	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V': {
			const struct version_lib libs[] = {
				VERSION_LIB_OPENSSL, VERSION_LIB_LIBEVENT,
				VERSION_LIB_LIBYAML,
			};

			version_print(stdout, "elemta-queued", libs,
			    sizeof(libs) / sizeof(libs[0]));
			return 0;
		}
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	memset(&qd, 0, sizeof(qd));
	qd.cfg = daemon_start("elemta-queued", path, log_env_foreground());
	if (qd.cfg == NULL)
		return 1;
	if (geteuid() == 0)
		log_warn("running as root; under elemtactl this worker runs as "
		    "server.user");
	qd.base = event_base_new();
	if (qd.base == NULL)
		fatal("event_base_new failed");
	if (queued_dirs(qd.cfg, &err) < 0 || queued_lock(qd.cfg, &err) < 0 ||
	    queued_watch(&qd, &err) < 0 ||
	    (qd.q = queue_new(qd.base, qd.cfg, &err)) == NULL) {
		log_err("%s", err.text);
		return 1;
	}
	queued_stats_start(qd.base, qd.cfg, queue_stats_refresh, qd.q);
	qd.ino_ev = event_new(qd.base, qd.ino, EV_READ | EV_PERSIST,
	    queued_ino_cb, &qd);
	qd.rescan_ev = event_new(qd.base, -1, EV_PERSIST, queued_rescan_cb, &qd);
	qd.stop_ev = evtimer_new(qd.base, queued_stop_check, &qd);
	sig[0] = evsignal_new(qd.base, SIGTERM, queued_signal_cb, &qd);
	sig[1] = evsignal_new(qd.base, SIGINT, queued_signal_cb, &qd);
	sig[2] = evsignal_new(qd.base, SIGHUP, queued_signal_cb, &qd);
	event_add(qd.ino_ev, NULL);
	event_add(qd.rescan_ev, &rescan);
	for (int i = 0; i < 3; i++)
		event_add(sig[i], NULL);
	log_info("delivering from %s/queue", qd.cfg->spool.path);
	queue_wake(qd.q);
	event_base_dispatch(qd.base);
	log_info("stopped");
	queued_stats_stop();
	queue_free(qd.q);
	for (int i = 0; i < 3; i++)
		event_free(sig[i]);
	event_free(qd.ino_ev);
	event_free(qd.rescan_ev);
	event_free(qd.stop_ev);
	close(qd.ino);
	event_base_free(qd.base);
	config_free(qd.cfg);
	return 0;
}
