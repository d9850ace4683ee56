/*
 * queue.c - the queue manager of elemta-queued (contract in queue.h).
 *
 * Called by main.c (queue_wake on inotify events and the periodic
 * rescan) and by the transports (queue_job_done).  Runs as server.user,
 * like smtpd: it reads and removes spool files smtpd wrote, and owns
 * spool.path/state/ (per-recipient state) and control/ (operator marks).
 * Untrusted input: the spool files' contents (parsed defensively by
 * common/queue_file.c), replies of next hops (through the transports).
 *
 * Durability: an outcome is written to the state file (queue_state_write:
 * tmp, fsync, rename, fsync dir) before anything acts on it (the next
 * recipient, a later attempt), so a crash repeats at most the deliveries
 * in flight.  An attempt that leaves every recipient final writes no
 * state: the message's removal records it (queued/commit.c: the spool
 * file unlinked and its directory flushed, batched on a worker thread,
 * before the state file goes), and until that removal is durable its
 * deliveries count as in flight.  So a message delivered at its first
 * attempt costs no state file at all.  A message with bounced recipients
 * is removed after its bounce is durable in queue/; the bounce's id is
 * recorded in the state first, so a crash between the two never queues
 * a second bounce (queue/<bounce id> exists, or it is written).  Success
 * DSNs and delay warnings are durable in queue/ before the state that
 * says they were sent: a crash may send one twice, never lose it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "bounce.h"
#include "commit.h"
#include "dsn.h"
#include "log.h"
#include "maildir.h"
#include "outcome.h"
#include "queue.h"
#include "queue_file.h"
#include "queue_state.h"
#include "relay.h"
#include "route.h"
#include "schedule.h"
#include "stats.h"

#define QUEUE_ACTIVE_MAX 256        /* messages with an attempt in flight */
#define QUEUE_HEADER_SCAN_MAX (256u << 10) /* Received: counted in this */
#define QUEUE_BUCKETS 16384          /* id hash table (a power of 2)  */
#define QUEUE_RESAVE_SECONDS 5       /* a failed state write retried  */
#define QUEUE_CRASH_ENV "ELEMTA_TEST_QUEUED_CRASH"

/* One message in the queue. */
struct qmsg {
	char id[QUEUE_ID_MAX + 1];
	struct queue_envelope_read env;
	struct queue_state st;
	int64_t arrived_us;           /* smtpd's 250: the file's mtime    */
	int fd;                       /* open while an attempt runs       */
	unsigned jobs;                /* attempts in flight               */
	bool deleted;                 /* delete requested                 */
	bool bounced;                 /* its bounce is durable in queue/  */
	bool unsaved;                 /* the last state write failed      */
	bool has_state;               /* spool/state/<id> exists          */
	bool removing;                /* its removal is with the commit   */
	struct qmsg *next, *prev;     /* every message                    */
	struct qmsg *hnext;           /* its hash bucket                  */
};

struct queue {
	struct event_base *base;
	const struct config *cfg;
	struct relay *relay;
	struct commit *commit;        /* removals, off the loop's thread  */
	struct schedule_policy policy;
	struct qmsg *msgs;
	struct qmsg *buckets[QUEUE_BUCKETS];
	size_t count;
	unsigned active;              /* messages with jobs in flight     */
	struct event *run_ev;         /* the manager's timer              */
	bool stopping;
	bool scan_due;
	bool control_due;
	bool swept;                   /* orphan state files removed */
	/* The crash test hook (queue_crash): a point, once, by file. */
	enum { QUEUE_CRASH_NONE, QUEUE_CRASH_DELIVERED, QUEUE_CRASH_WARNED }
	    crash_at;
	char crash_file[CONFIG_PATH_MAX];
};

static void queue_run(struct queue *q);

/*==== Helpers ====*/

/* queue_now - wall clock seconds. */
static int64_t
queue_now(void)
{
	return (int64_t)time(NULL);
}

/* queue_path - spool/sub/name into buf. */
static int
queue_path(const struct queue *q, const char *sub, const char *name,
    char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/%s/%s", q->cfg->spool.path, sub, name);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* queue_soon - run the manager from the event loop, after the current
 * callback (never re-entered from a transport's callback). */
static void
queue_soon(struct queue *q)
{
	struct timeval tv = { 0, 0 };

	event_add(q->run_ev, &tv);
}

/* queue_bucket - id's bucket of the hash table. */
static struct qmsg **
queue_bucket(struct queue *q, const char *id)
{
	return &q->buckets[schedule_seed(id) & (QUEUE_BUCKETS - 1)];
}

/* queue_find - the message with id, or NULL. */
static struct qmsg *
queue_find(struct queue *q, const char *id)
{
	for (struct qmsg *m = *queue_bucket(q, id); m != NULL; m = m->hnext)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

/* queue_domain - the domain of an address ("" when none). */
static const char *
queue_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

/* queue_crash - the test hook ELEMTA_TEST_QUEUED_CRASH=POINT:FILE
 * (tests/integration/test_delivery.py), called after each state write:
 * when the state just written records POINT ("delivered": a delivered
 * recipient; "warned": the delay warning), the first process to create
 * FILE kills itself, as a crash at that moment would.  Unset (outside
 * tests) it is one test of a field. */
static void
queue_crash(const struct queue *q, const struct queue_state *st)
{
	bool hit = q->crash_at == QUEUE_CRASH_WARNED && st->warned;
	int fd;

	for (size_t i = 0; q->crash_at == QUEUE_CRASH_DELIVERED &&
	    i < st->nrcpt; i++)
		hit = hit || st->rcpts[i].status == QUEUE_RCPT_DELIVERED;
	if (!hit || (fd = open(q->crash_file, O_WRONLY | O_CREAT | O_EXCL |
	    O_CLOEXEC, 0600)) < 0)
		return;
	close(fd);
	log_warn("%s: killed after a state write", QUEUE_CRASH_ENV);
	raise(SIGKILL);
}

/* queue_crash_init - the hook's point and file from the environment. */
static void
queue_crash_init(struct queue *q)
{
	const char *v = getenv(QUEUE_CRASH_ENV);

	if (v == NULL)
		return;
	if (strncmp(v, "delivered:", 10) == 0)
		q->crash_at = QUEUE_CRASH_DELIVERED;
	else if (strncmp(v, "warned:", 7) == 0)
		q->crash_at = QUEUE_CRASH_WARNED;
	else
		return;
	str_copy(q->crash_file, strchr(v, ':') + 1, sizeof(q->crash_file));
}

/* queue_save - write m's state durably; false (logged, and m marked
 * unsaved for queue_run to retry) on failure. */
static bool
queue_save(struct queue *q, struct qmsg *m)
{
	struct error err;

	m->unsaved = queue_state_write(q->cfg->spool.path, m->id, &m->st,
	    q->cfg->spool.fsync, &err) < 0;
	if (m->unsaved)
		log_err("queue %s: cannot record state: %s", m->id, err.text);
	else
		m->has_state = true;
	if (!m->unsaved && q->crash_at != QUEUE_CRASH_NONE)
		queue_crash(q, &m->st);
	return !m->unsaved;
}

/*==== Loading ====*/

/* queue_count_hops - Received: headers in the message's header section
 * (the first QUEUE_HEADER_SCAN_MAX bytes). */
static unsigned
queue_count_hops(int fd, uint64_t size)
{
	size_t len = size < QUEUE_HEADER_SCAN_MAX ? (size_t)size :
	    QUEUE_HEADER_SCAN_MAX;
	char *buf = xmalloc(len + 1);
	ssize_t n = pread(fd, buf, len, 0);
	unsigned hops = 0;
	bool bol = true;

	for (ssize_t i = 0; n > 0 && i < n; i++) {
		if (bol) {
			if (buf[i] == '\r' || buf[i] == '\n')
				break;          /* end of the header section */
			if (n - i >= 9 && strncasecmp(buf + i, "received:", 9) == 0)
				hops++;
		}
		bol = buf[i] == '\n';
	}
	free(buf);
	return hops;
}

/* queue_mtime_us - when the spool file open as fd was committed (its
 * mtime: smtpd's 250 follows it), in microseconds; received (seconds)
 * when fstat fails. */
static int64_t
queue_mtime_us(int fd, int64_t received)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return received * 1000000;
	return (int64_t)st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000;
}

/* queue_now_us - wall clock microseconds. */
static int64_t
queue_now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* queue_count - the statistics of recipient r's outcome over transport
 * t (stats.h). */
static void
queue_count(const struct qmsg *m, const struct queue_rcpt_state *r,
    enum route_transport t)
{
	int64_t latency = queue_now_us() - m->arrived_us;

	queued_stats_result(r->status == QUEUE_RCPT_DELIVERED ?
	    QUEUED_RESULT_DELIVERED : r->status == QUEUE_RCPT_BOUNCED ?
	    QUEUED_RESULT_BOUNCED : QUEUED_RESULT_DEFERRED, t,
	    latency > 0 ? (uint64_t)latency : 0);
}

/* queue_load - pick up spool/queue/id: envelope, state (new when
 * absent), hop count.  NULL (logged) when the file is unusable. */
static struct qmsg *
queue_load(struct queue *q, const char *id)
{
	char path[CONFIG_PATH_MAX + 64];
	struct error err;
	struct qmsg *m;
	unsigned hops;
	int fd, rc;

	if (queue_path(q, "queue", id, path, sizeof(path)) < 0)
		return NULL;
	m = xcalloc(1, sizeof(*m));
	m->fd = -1;
	str_copy(m->id, id, sizeof(m->id));
	fd = queue_file_open(path, &m->env, &err);
	if (fd < 0) {
		log_err("queue %s: %s (left in place)", id, err.text);
		free(m);
		return NULL;
	}
	hops = queue_count_hops(fd, m->env.size);
	m->arrived_us = queue_mtime_us(fd, m->env.received);
	close(fd);
	rc = queue_state_read(q->cfg->spool.path, id, &m->st, &err);
	if (rc < 0 || (rc == 1 && m->st.nrcpt != m->env.recipient_count)) {
		log_err("queue %s: %s; delivering every recipient again", id,
		    rc < 0 ? err.text : "state does not match the envelope");
		queue_state_free(&m->st);
		m->has_state = rc == 1;   /* replaced by the next write */
		rc = 0;
	} else {
		m->has_state = rc == 1;
	}
	if (rc == 0) {
		queue_state_init(&m->st, m->env.recipient_count);
		if (hops > q->cfg->delivery.hop_limit) {
			log_warn("queue %s: %u Received: headers (limit %u): "
			    "bouncing", id, hops, q->cfg->delivery.hop_limit);
			for (size_t i = 0; i < m->st.nrcpt; i++) {
				struct queue_rcpt_state *r = &m->st.rcpts[i];

				r->status = QUEUE_RCPT_BOUNCED;
				str_copy(r->enhanced, "5.4.6", sizeof(r->enhanced));
				snprintf(r->text, sizeof(r->text),
				    "Too many hops (%u Received: headers, limit "
				    "%u): mail loop?", hops,
				    q->cfg->delivery.hop_limit);
			}
		}
		/* No state file means every recipient pending: the first
		 * write is the first outcome's (one fsync less per message). */
		if (hops > q->cfg->delivery.hop_limit) {
			if (!queue_save(q, m)) {
				queue_state_free(&m->st);
				queue_envelope_free(&m->env);
				free(m);
				return NULL;
			}
			/* Counted once: the bounce is recorded now. */
			for (size_t i = 0; i < m->st.nrcpt; i++)
				queue_count(m, &m->st.rcpts[i], route_lookup(q->cfg,
				    queue_domain(m->env.recipients[i]))->transport);
		}
	}
	log_info("queue %s: picked up, from=<%s>, %zu recipient(s), %" PRIu64
	    " bytes", id, m->env.sender, m->env.recipient_count, m->env.size);
	m->next = q->msgs;
	if (q->msgs != NULL)
		q->msgs->prev = m;
	q->msgs = m;
	m->hnext = *queue_bucket(q, id);
	*queue_bucket(q, id) = m;
	q->count++;
	return m;
}

/* queue_unlink - forget m (not in flight). */
static void
queue_unlink(struct queue *q, struct qmsg *m)
{
	for (struct qmsg **pp = queue_bucket(q, m->id); *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == m) {
			*pp = m->hnext;
			break;
		}
	if (m->prev != NULL)
		m->prev->next = m->next;
	else
		q->msgs = m->next;
	if (m->next != NULL)
		m->next->prev = m->prev;
	q->count--;
	if (m->fd >= 0)
		close(m->fd);
	queue_state_free(&m->st);
	queue_envelope_free(&m->env);
	free(m);
}

/* queue_removed - the commit's answer on a removal (commit.h): forget
 * the message, or leave it to the next run when its spool file stays. */
static void
queue_removed(void *arg, const char *id, int rc, const char *what)
{
	struct queue *q = arg;
	struct qmsg *m = queue_find(q, id);

	if (rc != 0) {
		log_err("queue %s: removal: %s: %s (retried)", id, what,
		    strerror(rc));
		if (m == NULL)
			return;
		m->removing = false;
		/* Outcomes that only the removal was to record are written
		 * now: the spool file may be back after a crash. */
		if (!m->deleted)
			queue_save(q, m);
		return;
	}
	if (m == NULL) {
		log_info("queue %s: unloadable message deleted by the operator",
		    id);
		return;
	}
	if (m->deleted)
		log_info("queue %s: deleted by the operator (from=<%s>)", m->id,
		    m->env.sender);
	else
		log_info("queue %s: removed (all recipients final)", m->id);
	queue_unlink(q, m);
}

/* queue_remove - hand m's files to the commit (m stays known, and is
 * skipped by the run, until queue_removed). */
static void
queue_remove(struct queue *q, struct qmsg *m)
{
	m->removing = true;
	commit_remove(q->commit, m->id, (m->has_state ? COMMIT_STATE : 0) |
	    (m->deleted ? COMMIT_DELETE_MARK : 0), queue_removed, q);
}

/*==== Finishing ====*/

/* queue_notify_text - recipient i's NOTIFY for a log line. */
static const char *
queue_notify_text(const struct qmsg *m, size_t i)
{
	static char buf[DSN_NOTIFY_TEXT_MAX];

	dsn_notify_format(m->env.notify != NULL ? m->env.notify[i] : 0, buf);
	return buf[0] != '\0' ? buf : "-";
}

/* queue_dsn_rcpts - m's recipients in status whose NOTIFY asks for a
 * report of action, as report entries (dflt: their status code when they
 * have none) into dr; returns how many. */
static size_t
queue_dsn_rcpts(const struct qmsg *m, enum queue_rcpt_status status,
    enum dsn_action action, const char *dflt, struct dsn_rcpt *dr)
{
	size_t n = 0;

	for (size_t i = 0; i < m->st.nrcpt; i++) {
		const struct queue_rcpt_state *r = &m->st.rcpts[i];

		if (r->status != status)
			continue;
		/* RFC 3461 §4.1: the sender's NOTIFY for this recipient
		 * (a <> sender is the callers' to refuse, with its own log). */
		if (m->env.sender[0] != '\0' && !dsn_wanted(m->env.sender,
		    m->env.notify != NULL ? m->env.notify[i] : 0, action)) {
			char esc[256];

			if (action == DSN_ACTION_FAILED)
				log_info("queue %s: to=<%s> failed: no bounce "
				    "(NOTIFY=%s)", m->id,
				    LOG_ESC(esc, m->env.recipients[i]),
				    queue_notify_text(m, i));
			continue;
		}
		dr[n].final_recipient = m->env.recipients[i];
		dr[n].original_recipient = m->env.orcpt != NULL ?
		    m->env.orcpt[i] : NULL;
		dr[n].action = action;
		dr[n].status = r->enhanced[0] ? r->enhanced : dflt;
		dr[n].reply_code = r->code;
		dr[n].diagnostic = r->text;
		n++;
	}
	return n;
}

/* queue_bounce - queue the report on m's bounced recipients (when its
 * sender wants one); false when it could not be written (retried at the
 * next run). */
static bool
queue_bounce(struct queue *q, struct qmsg *m)
{
	struct dsn_rcpt *dr = xcalloc(m->st.nrcpt, sizeof(*dr));
	size_t n = queue_dsn_rcpts(m, QUEUE_RCPT_BOUNCED, DSN_ACTION_FAILED,
	    "5.0.0", dr);
	struct error err;
	bool ok = true;

	if (n == 0) {
		free(dr);
		return true;
	}
	if (m->env.sender[0] == '\0') {
		log_info("queue %s: from <>: %zu recipient(s) failed, no bounce "
		    "of a bounce (dropped)", m->id, n);
		free(dr);
		return true;
	}
	if (m->st.bounce_id[0] == '\0') {
		bounce_id_new(m->st.bounce_id);
		if (!queue_save(q, m)) {
			m->st.bounce_id[0] = '\0';
			free(dr);
			return false;
		}
	}
	if (bounce_write(q->cfg, m->id, m->env.sender, m->env.received, 0, dr,
	    n, m->st.bounce_id, &err) < 0) {
		log_err("queue %s: cannot queue the bounce: %s", m->id, err.text);
		ok = false;
	} else {
		log_info("queue %s: bounce %s queued to <%s> for %zu "
		    "recipient(s)", m->id, m->st.bounce_id, m->env.sender, n);
	}
	free(dr);
	return ok;
}

/* queue_warn - delivery.retry.delay_warning: once per message, when it
 * has waited that long, a report on its deferred recipients (Action:
 * delayed) to its sender.  The report is durable in queue/ before
 * "warned" is set (in memory; the caller's save records it): a crash in
 * between may send it twice, never lose it; a failed write is retried at
 * the message's next attempt. */
static void
queue_warn(struct queue *q, struct qmsg *m, int64_t now)
{
	struct dsn_rcpt *dr;
	char id[QUEUE_ID_MAX + 1];
	struct error err;
	size_t n = 0;

	if (m->env.sender[0] == '\0' || !schedule_warning_due(&q->policy,
	    m->env.received, now, m->st.warned))
		return;
	dr = xcalloc(m->st.nrcpt, sizeof(*dr));
	n = queue_dsn_rcpts(m, QUEUE_RCPT_DEFERRED, DSN_ACTION_DELAYED, "4.0.0",
	    dr);
	bounce_id_new(id);
	if (n > 0 && bounce_write(q->cfg, m->id, m->env.sender,
	    m->env.received, (time_t)(m->env.received +
	    (int64_t)q->policy.max_lifetime), dr, n, id, &err) < 0) {
		log_err("queue %s: cannot queue the delay warning: %s (retried)",
		    m->id, err.text);
		free(dr);
		return;
	}
	if (n > 0)
		log_info("queue %s: delay warning %s queued to <%s> for %zu "
		    "recipient(s)", m->id, id, m->env.sender, n);
	m->st.warned = true;
	free(dr);
}

/* queue_finish - every recipient is final: bounce, then remove (each
 * retried at the next run until done; the bounce is written once, as
 * it may be delivered and gone before the removal succeeds). */
static void
queue_finish(struct queue *q, struct qmsg *m)
{
	if (!m->bounced && !queue_bounce(q, m))
		return;
	m->bounced = true;
	queue_remove(q, m);
}

/*==== Outcomes ====*/

/* queue_record - apply one recipient's outcome over transport t to its
 * state (in memory; the caller saves). */
static void
queue_record(struct queue *q, struct qmsg *m, size_t i,
    const struct outcome *o, enum route_transport t)
{
	struct queue_rcpt_state *r = &m->st.rcpts[i];
	int64_t now = queue_now();
	char esc[256];

	r->attempts++;
	r->last_attempt = now;
	r->code = o->code;
	str_copy(r->enhanced, o->enhanced, sizeof(r->enhanced));
	str_copy(r->text, o->text, sizeof(r->text));
	switch (o->result) {
	case OUTCOME_DELIVERED:
		r->status = QUEUE_RCPT_DELIVERED;
		break;
	case OUTCOME_PERMFAIL:
		r->status = QUEUE_RCPT_BOUNCED;
		break;
	case OUTCOME_PENDING:
	case OUTCOME_TEMPFAIL:
		if (schedule_expired(&q->policy, m->env.received, now)) {
			r->status = QUEUE_RCPT_BOUNCED;
			str_copy(r->enhanced, "5.4.7", sizeof(r->enhanced));
			snprintf(r->text, sizeof(r->text), "Delivery time "
			    "expired; last error: %.400s", o->text);
			r->code = 0;
			break;
		}
		r->status = QUEUE_RCPT_DEFERRED;
		r->next_attempt = schedule_next_attempt(&q->policy,
		    m->env.received, now, r->attempts, schedule_seed(m->id));
		break;
	}
	queue_count(m, r, t);
	/* A remote reply's text starts with its own code; a local one's
	 * enhanced code is shown. */
	log_info("queue %s: to=<%s> %s, attempt %u: %s%s%s", m->id,
	    LOG_ESC(esc, m->env.recipients[i]),
	    queue_rcpt_status_name(r->status), r->attempts,
	    r->code == 0 ? r->enhanced : "", r->code == 0 ? " " : "", r->text);
}

/* queue_attempt_over - the last job of m's attempt ended. */
static void
queue_attempt_over(struct queue *q, struct qmsg *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	q->active--;
	/* Finished now rather than at the next run, which walks the whole
	 * queue: the removal is queued, nothing is freed here. */
	if (!m->deleted && !m->unsaved && queue_state_all_final(&m->st))
		queue_finish(q, m);
	queue_soon(q);
}

/* queue_job_free - a job's memory. */
static void
queue_job_free(struct qjob *j)
{
	free(j->idx);
	free(j->sm.rcpts);
	free(j);
}

/* queue_success - the success DSN on j's recipients [from, to)
 * delivered with NOTIFY=SUCCESS: "delivered" for a final delivery
 * (Maildir, LMTP, discard), "relayed" for an SMTP next hop without DSN,
 * none when the next hop offered DSN (it took the parameters and the
 * duty).  Durable in queue/ before the outcomes are saved: a crash in
 * between repeats the delivery and may send the report twice, never
 * loses it. */
static void
queue_success(struct queue *q, struct qjob *j, size_t from, size_t to)
{
	struct qmsg *m = j->msg;
	enum dsn_action action = DSN_ACTION_DELIVERED;
	char id[QUEUE_ID_MAX + 1];
	struct dsn_rcpt *dr;
	struct error err;
	size_t n = 0;

	if (m->env.notify == NULL)
		return;
	if (j->hop->transport == ROUTE_SMTP) {
		if (j->sm.peer_dsn)
			return;
		action = DSN_ACTION_RELAYED;
	}
	dr = xcalloc(to - from, sizeof(*dr));
	for (size_t k = from; k < to; k++) {
		size_t i = j->idx[k];
		const struct queue_rcpt_state *r = &m->st.rcpts[i];

		if (r->status != QUEUE_RCPT_DELIVERED ||
		    j->sm.rcpts[k].outcome.result != OUTCOME_DELIVERED ||
		    !dsn_wanted(m->env.sender, m->env.notify[i], action))
			continue;
		dr[n].final_recipient = m->env.recipients[i];
		dr[n].original_recipient = m->env.orcpt[i];
		dr[n].action = action;
		dr[n].status = r->enhanced[0] ? r->enhanced : "2.0.0";
		dr[n].remote_mta = j->hop->host[0] != '\0' ? j->hop->host :
		    NULL;
		dr[n].reply_code = r->code;
		dr[n].diagnostic = r->text;
		n++;
	}
	bounce_id_new(id);
	if (n > 0 && bounce_write(q->cfg, m->id, m->env.sender,
	    m->env.received, 0, dr, n, id, &err) < 0)
		log_err("queue %s: cannot queue the success DSN: %s", m->id,
		    err.text);
	else if (n > 0)
		log_info("queue %s: success DSN %s (%s) queued to <%s> for %zu "
		    "recipient(s)", m->id, id, dsn_action_name(action),
		    m->env.sender, n);
	free(dr);
}

/* queue_job_finish - j's outcomes are recorded in memory and its
 * success DSN is written: the delay warning, then the state write -
 * none when every recipient is final, as the removal that follows
 * records that - then free j and end the attempt after its last job. */
static void
queue_job_finish(struct queue *q, struct qjob *j)
{
	struct qmsg *m = j->msg;

	queue_warn(q, m, queue_now());
	if (!queue_state_all_final(&m->st))
		queue_save(q, m);
	queue_job_free(j);
	if (--m->jobs == 0)
		queue_attempt_over(q, m);
}

/* queue_job_done - see queue.h: a transaction's outcomes arrive
 * together and are written together. */
void
queue_job_done(struct queue *q, struct qjob *j)
{
	for (size_t k = 0; k < j->sm.nrcpt; k++)
		queue_record(q, j->msg, j->idx[k], &j->sm.rcpts[k].outcome,
		    j->hop->transport);
	queue_success(q, j, 0, j->sm.nrcpt);
	queue_job_finish(q, j);
}

/* queue_job_read - see queue.h. */
long
queue_job_read(struct qjob *j, char *buf, size_t size)
{
	uint64_t left = j->msg->env.size - j->offset;
	ssize_t n;

	if (left == 0)
		return 0;
	if (size > left)
		size = (size_t)left;
	n = pread(j->fd, buf, size, (off_t)j->offset);
	if (n < 0)
		return -1;
	j->offset += (uint64_t)n;
	return (long)n;
}

/* queue_maildir_read - maildir.c's reader over a job. */
static long
queue_maildir_read(void *ctx, char *buf, size_t size)
{
	return queue_job_read(ctx, buf, size);
}

/*==== Attempts ====*/

/* queue_local - the transports decided here: Maildir, discard, error. */
static void
queue_local(struct queue *q, struct qjob *j)
{
	const struct route_hop *h = j->hop;

	for (size_t k = 0; k < j->sm.nrcpt; k++) {
		struct smtpc_rcpt *rc = &j->sm.rcpts[k];

		switch (h->transport) {
		case ROUTE_MAILDIR: {
			struct maildir_delivery d = {
				.base = h->path,
				.hostname = q->cfg->server.hostname,
				.sender = j->sm.sender,
				.recipient = rc->address,
				.read = queue_maildir_read,
				.ctx = j,
			};

			j->offset = 0;
			maildir_deliver(&d, &rc->outcome, NULL, 0);
			break;
		}
		case ROUTE_DISCARD:
			outcome_set(&rc->outcome, OUTCOME_DELIVERED, 0, "2.0.0",
			    "discarded%s%s", h->text[0] ? ": " : "", h->text);
			break;
		case ROUTE_ERROR:
			outcome_set(&rc->outcome, OUTCOME_PERMFAIL, 0,
			    h->status[0] ? h->status : "5.0.0", "%s",
			    h->text[0] ? h->text : "delivery refused by route");
			break;
		default:        /* SMTP and LMTP go to relay.c */
			outcome_set(&rc->outcome, OUTCOME_TEMPFAIL, 0, "4.3.5",
			    "no transport for next hop (internal error)");
			break;
		}
		/* Each local delivery is recorded before the next starts
		 * (a crash repeats at most the one in hand); the last one's
		 * by queue_job_finish. */
		queue_record(q, j->msg, j->idx[k], &rc->outcome, h->transport);
		queue_success(q, j, k, k + 1);
		if (k + 1 < j->sm.nrcpt)
			queue_save(q, j->msg);
	}
	queue_job_finish(q, j);
}

/* queue_due - recipient i of m is to be tried at now. */
static bool
queue_due(const struct qmsg *m, size_t i, int64_t now)
{
	const struct queue_rcpt_state *r = &m->st.rcpts[i];

	return !queue_rcpt_final(r->status) && r->next_attempt <= now;
}

/* queue_attempt - start an attempt for m's due recipients: one job per
 * next hop.  m->jobs counts them until each is done. */
static void
queue_attempt(struct queue *q, struct qmsg *m, int64_t now)
{
	char path[CONFIG_PATH_MAX + 64];
	bool *taken = xcalloc(m->st.nrcpt, sizeof(*taken));
	struct qjob *jobs = NULL;

	if (queue_path(q, "queue", m->id, path, sizeof(path)) < 0 ||
	    (m->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		int e = errno;

		free(taken);
		if (e != ENOENT) {
			log_err("queue %s: open %s: %s", m->id, path,
			    strerror(e));
			return;
		}
		/* Removed behind our back: nothing is left to deliver, and
		 * its state and marks would otherwise be retried forever. */
		log_warn("queue %s: %s is gone; forgetting the message", m->id,
		    path);
		queue_remove(q, m);
		return;
	}
	q->active++;
	m->jobs = 1;          /* held while the jobs are being started */
	for (size_t i = 0; i < m->st.nrcpt; i++) {
		const struct route_hop *hop;
		struct qjob *j;
		size_t n = 0;

		if (taken[i] || !queue_due(m, i, now))
			continue;
		hop = route_lookup(q->cfg, queue_domain(m->env.recipients[i]));
		j = xcalloc(1, sizeof(*j));
		j->msg = m;
		j->hop = hop;
		j->fd = m->fd;
		j->idx = xcalloc(m->st.nrcpt, sizeof(*j->idx));
		j->sm.rcpts = xcalloc(m->st.nrcpt, sizeof(*j->sm.rcpts));
		for (size_t k = i; k < m->st.nrcpt; k++) {
			if (taken[k] || !queue_due(m, k, now) || route_lookup(
			    q->cfg, queue_domain(m->env.recipients[k])) != hop)
				continue;
			/* The recipient domain's MX: one job per domain. */
			if (hop->mx && hop->host[0] == '\0' && strcasecmp(
			    queue_domain(m->env.recipients[k]),
			    queue_domain(m->env.recipients[i])) != 0)
				continue;
			taken[k] = true;
			j->idx[n] = k;
			j->sm.rcpts[n].address = m->env.recipients[k];
			if (m->env.notify != NULL)
				j->sm.rcpts[n].notify = m->env.notify[k];
			if (m->env.orcpt != NULL)
				j->sm.rcpts[n].orcpt = m->env.orcpt[k];
			n++;
		}
		j->sm.nrcpt = n;
		j->sm.sender = m->env.sender;
		j->sm.size = m->env.size;
		j->sm.eightbit = true;
		j->sm.ret = m->env.ret;
		j->sm.envid = m->env.envid;
		j->next = jobs;
		jobs = j;
		m->jobs++;
	}
	free(taken);
	while (jobs != NULL) {
		struct qjob *j = jobs;

		jobs = j->next;
		j->next = NULL;
		if (j->hop->transport == ROUTE_SMTP ||
		    j->hop->transport == ROUTE_LMTP)
			relay_submit(q->relay, j);
		else
			queue_local(q, j);
	}
	if (--m->jobs == 0)
		queue_attempt_over(q, m);
}

/* queue_next_due - the earliest attempt m waits for (INT64_MAX: none). */
static int64_t
queue_next_due(const struct qmsg *m)
{
	int64_t due = INT64_MAX;

	for (size_t i = 0; i < m->st.nrcpt; i++)
		if (!queue_rcpt_final(m->st.rcpts[i].status) &&
		    m->st.rcpts[i].next_attempt < due)
			due = m->st.rcpts[i].next_attempt;
	return due;
}

/*==== Scanning ====*/

/* queue_each - fn for every entry of spool/sub (a missing directory is
 * logged and skipped). */
static void
queue_each(struct queue *q, const char *sub,
    void (*fn)(struct queue *q, const char *name))
{
	char dir[CONFIG_PATH_MAX + 64];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s", q->cfg->spool.path, sub);
	d = opendir(dir);
	if (d == NULL) {
		log_err("opendir %s: %s", dir, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			fn(q, de->d_name);
	closedir(d);
}

/* queue_sweep_state - at start: a state file whose message is gone (a
 * crash between the removal's flush and the state's unlink, commit.h)
 * is removed. */
static void
queue_sweep_state(struct queue *q, const char *name)
{
	char path[CONFIG_PATH_MAX + 64];
	struct error err;

	if (!queue_id_valid(name) || queue_path(q, "queue", name, path,
	    sizeof(path)) < 0 || access(path, F_OK) == 0)
		return;
	if (queue_state_remove(q->cfg->spool.path, name, &err) == 0)
		log_info("queue %s: state without a message removed", name);
}

/* queue_scan_one - pick up a message of queue/ not known yet. */
static void
queue_scan_one(struct queue *q, const char *name)
{
	if (queue_id_valid(name) && queue_find(q, name) == NULL)
		queue_load(q, name);
}

/* queue_control_apply - one mark; true when it is used up (remove it). */
static bool
queue_control_apply(struct queue *q, const char *id, enum queue_control c)
{
	struct qmsg *m = strcmp(id, QUEUE_CTL_ALL) == 0 ? NULL :
	    queue_find(q, id);
	char path[CONFIG_PATH_MAX + 64];

	if (c == QUEUE_CTL_FLUSH) {
		for (struct qmsg *x = q->msgs; x != NULL; x = x->next) {
			if (m != NULL && x != m)
				continue;
			for (size_t i = 0; i < x->st.nrcpt; i++)
				if (!queue_rcpt_final(x->st.rcpts[i].status))
					x->st.rcpts[i].next_attempt = 0;
		}
		log_info("queue %s: flush requested", id);
		return true;
	}
	if (m == NULL && c == QUEUE_CTL_DELETE && queue_path(q, "queue", id,
	    path, sizeof(path)) == 0 && access(path, F_OK) == 0) {
		/* A spool file that could not be loaded (queue_load logged
		 * why) is the operator's to delete: removed with its mark
		 * and any state, answered by queue_removed. */
		log_info("queue %s: delete requested for a message that could "
		    "not be loaded", id);
		commit_remove(q->commit, id, COMMIT_STATE | COMMIT_DELETE_MARK,
		    queue_removed, q);
		return false;
	}
	if (m == NULL) {
		log_warn("queue %s: %s requested: no such message", id,
		    queue_control_name(c));
		return true;
	}
	switch (c) {
	case QUEUE_CTL_HOLD:
	case QUEUE_CTL_RELEASE:
		m->st.hold = c == QUEUE_CTL_HOLD;
		if (!m->st.hold)
			for (size_t i = 0; i < m->st.nrcpt; i++)
				m->st.rcpts[i].next_attempt = 0;
		if (!queue_save(q, m))
			return false;
		log_info("queue %s: %s by the operator", m->id,
		    m->st.hold ? "held" : "released");
		return true;
	case QUEUE_CTL_DELETE:
		m->deleted = true;    /* the mark goes with the message */
		if (m->jobs == 0 && !m->removing)
			queue_remove(q, m);
		else
			log_info("queue %s: delete requested; takes effect when "
			    "the attempt in flight ends", m->id);
		return false;
	case QUEUE_CTL_FLUSH:
		break;
	}
	return true;
}

/* queue_control_one - apply one mark of control/, remove it when used. */
static void
queue_control_one(struct queue *q, const char *name)
{
	char id[QUEUE_ID_MAX + 1], path[CONFIG_PATH_MAX + 64];
	enum queue_control c;

	if (queue_control_parse_name(name, id, &c) < 0) {
		log_warn("control: ignoring %s", name);
		return;
	}
	if (queue_control_apply(q, id, c) &&
	    queue_path(q, "control", name, path, sizeof(path)) == 0)
		unlink(path);
}

/*==== The run ====*/

/* queue_run - start what is due, finish what is final, arm the timer. */
static void
queue_run(struct queue *q)
{
	int64_t now = queue_now(), next = INT64_MAX;
	struct qmsg *m, *nx;

	if (q->scan_due) {
		q->scan_due = false;
		if (!q->swept) {
			q->swept = true;
			queue_each(q, "state", queue_sweep_state);
		}
		queue_each(q, "queue", queue_scan_one);
		q->control_due = true;
	}
	if (q->control_due) {
		q->control_due = false;
		queue_each(q, "control", queue_control_one);
	}
	for (m = q->msgs; m != NULL; m = nx) {
		int64_t due;

		nx = m->next;
		if (m->jobs > 0 || m->removing)
			continue;
		/* Outcomes only in memory (a full disk) repeat after a crash
		 * until written: retried until the write succeeds. */
		if (m->unsaved && !m->deleted && !queue_save(q, m) &&
		    now + QUEUE_RESAVE_SECONDS < next)
			next = now + QUEUE_RESAVE_SECONDS;
		if (m->deleted) {
			queue_remove(q, m);
			continue;
		}
		if (queue_state_all_final(&m->st)) {
			queue_finish(q, m);
			continue;
		}
		if (m->st.hold || q->stopping)
			continue;
		due = queue_next_due(m);
		if (due <= now && q->active < QUEUE_ACTIVE_MAX) {
			queue_attempt(q, m, now);
			continue;
		}
		if (due < next)
			next = due;
	}
	if (q->active >= QUEUE_ACTIVE_MAX || q->stopping)
		return;                 /* an attempt's end runs us again */
	/* Pending already: a local delivery ended during this run and asked
	 * for the next one at once (queue_soon); a later timeout must not
	 * replace that. */
	if (next != INT64_MAX && !event_pending(q->run_ev, EV_TIMEOUT, NULL)) {
		struct timeval tv = { (time_t)(next > now ? next - now : 0), 0 };

		event_add(q->run_ev, &tv);
	}
}

/* queue_run_cb - the manager's timer. */
static void
queue_run_cb(evutil_socket_t fd, short what, void *arg)
{
	queue_run(arg);
}

/* queue_wake - see queue.h. */
void
queue_wake(struct queue *q)
{
	q->scan_due = true;
	queue_soon(q);
}

/* queue_arrived - see queue.h. */
void
queue_arrived(struct queue *q, const char *name)
{
	if (!queue_id_valid(name) || queue_find(q, name) != NULL)
		return;
	if (queue_load(q, name) != NULL)
		queue_soon(q);
}

/* queue_control_changed - see queue.h. */
void
queue_control_changed(struct queue *q)
{
	q->control_due = true;
	queue_soon(q);
}

/* queue_stats_refresh - see queue.h. */
void
queue_stats_refresh(void *arg)
{
	struct queue *q = arg;
	int64_t now = queue_now(), oldest = now;
	uint64_t n[QUEUE_LIST_HOLD + 1] = { 0 };

	for (const struct qmsg *m = q->msgs; m != NULL; m = m->next) {
		n[queue_state_list_state(&m->st, now)]++;
		if (m->env.received < oldest)
			oldest = m->env.received;
	}
	queued_stats_gauge(QUEUED_STAT_QUEUE_ACTIVE, n[QUEUE_LIST_ACTIVE]);
	queued_stats_gauge(QUEUED_STAT_QUEUE_DEFERRED, n[QUEUE_LIST_DEFERRED]);
	queued_stats_gauge(QUEUED_STAT_QUEUE_HOLD, n[QUEUE_LIST_HOLD]);
	queued_stats_gauge(QUEUED_STAT_OLDEST_AGE, (uint64_t)(now - oldest));
}

/* queue_policy - the retry policy from delivery.retry (ms to s). */
static void
queue_policy(const struct config *cfg, struct schedule_policy *p)
{
	schedule_policy_default(p);
	p->min_backoff = cfg->delivery.retry.min_backoff_ms / 1000;
	p->max_backoff = cfg->delivery.retry.max_backoff_ms / 1000;
	p->max_lifetime = cfg->delivery.retry.max_lifetime_ms / 1000;
	p->delay_warning = cfg->delivery.retry.delay_warning_ms / 1000;
	if (p->min_backoff == 0)
		p->min_backoff = 1;
	if (p->max_backoff < p->min_backoff)
		p->max_backoff = p->min_backoff;
}

/* queue_new - see queue.h. */
struct queue *
queue_new(struct event_base *base, const struct config *cfg,
    struct error *err)
{
	struct queue *q = xcalloc(1, sizeof(*q));

	q->base = base;
	q->cfg = cfg;
	queue_policy(cfg, &q->policy);
	queue_crash_init(q);
	q->run_ev = evtimer_new(base, queue_run_cb, q);
	q->relay = relay_new(base, cfg, q, err);
	if (q->relay != NULL)
		q->commit = commit_new(base, cfg->spool.path, cfg->spool.fsync,
		    err);
	if (q->run_ev == NULL || q->relay == NULL || q->commit == NULL) {
		queue_free(q);
		return NULL;
	}
	return q;
}

/* queue_stop - see queue.h. */
bool
queue_stop(struct queue *q)
{
	q->stopping = true;
	return q->active == 0 && commit_pending(q->commit) == 0;
}

/* queue_free - see queue.h. */
void
queue_free(struct queue *q)
{
	if (q == NULL)
		return;
	if (q->relay != NULL)
		relay_free(q->relay);
	commit_free(q->commit);
	while (q->msgs != NULL)
		queue_unlink(q, q->msgs);
	if (q->run_ev != NULL)
		event_free(q->run_ev);
	free(q);
}
