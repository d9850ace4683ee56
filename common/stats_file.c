/*
 * stats_file.c - the worker stats files (see stats_file.h): the table of
 * elemta-smtpd's keys and the one reader.
 *
 * Called by smtpd/stats.c (the writer's key names, its take-over),
 * elemtactl status (tools/elemtactl/control.c) and the metrics collector
 * (common/metrics_collect.c).  The files are written by Elemta's own
 * workers, but a compromised worker could write anything there, so every
 * read is bounded and every name and line checked.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "stats_file.h"

#define STATS_FILE_SIZE_MAX (64u * 1024)
#define STATS_FILE_FILES_MAX 4096

/* The HELP text of a refusal count: "X commands refused ...". */
#define STATS_REFUSED(what) what " refused (4xx/5xx) by a policy verdict, " \
	"or while policyd failed."

const struct stats_file_key stats_file_smtpd_keys[SMTPD_STAT_COUNT] = {
	[SMTPD_STAT_CONNECTIONS] = { "connections_total", STATS_FILE_COUNTER,
	    "SMTP connections accepted by elemta-smtpd.", NULL },
	[SMTPD_STAT_CONNECTIONS_REFUSED] = { "connections_refused_total",
	    STATS_FILE_COUNTER,
	    "Connections closed at once with 421 (server.max_connections, "
	    "server.max_connections_per_ip).", NULL },
	[SMTPD_STAT_SESSIONS_OPEN] = { "sessions_open", STATS_FILE_GAUGE,
	    "SMTP sessions open now.", NULL },
	[SMTPD_STAT_MESSAGES_QUEUED] = { "messages_queued_total",
	    STATS_FILE_COUNTER,
	    "Messages answered 250 and stored in the queue.", NULL },
	[SMTPD_STAT_MESSAGES_QUARANTINED] = { "messages_quarantined_total",
	    STATS_FILE_COUNTER,
	    "Messages answered 250 and stored in the quarantine.", NULL },
	[SMTPD_STAT_MESSAGES_DISCARDED] = { "messages_discarded_total",
	    STATS_FILE_COUNTER,
	    "Messages answered 250 and dropped (discard verdict).", NULL },
	[SMTPD_STAT_MESSAGES_REFUSED] = { "messages_refused_total",
	    STATS_FILE_COUNTER,
	    "Messages refused at the end of data (policy, size, content, "
	    "queue errors).", NULL },
	[SMTPD_STAT_REFUSED_CONNECT] = { "refused_connect_total",
	    STATS_FILE_COUNTER,
	    "Connections refused (4xx/5xx) before the greeting by a policy "
	    "verdict, or while policyd failed.", NULL },
	[SMTPD_STAT_REFUSED_HELO] = { "refused_helo_total", STATS_FILE_COUNTER,
	    STATS_REFUSED("HELO/EHLO commands"), NULL },
	[SMTPD_STAT_REFUSED_AUTH] = { "refused_auth_total", STATS_FILE_COUNTER,
	    STATS_REFUSED("AUTH commands"), NULL },
	[SMTPD_STAT_REFUSED_MAIL] = { "refused_mail_total", STATS_FILE_COUNTER,
	    STATS_REFUSED("MAIL commands"), NULL },
	[SMTPD_STAT_REFUSED_RCPT] = { "refused_rcpt_total", STATS_FILE_COUNTER,
	    STATS_REFUSED("RCPT commands"), NULL },
	[SMTPD_STAT_REFUSED_DATA] = { "refused_data_total", STATS_FILE_COUNTER,
	    STATS_REFUSED("DATA commands"), NULL },
	[SMTPD_STAT_REFUSED_OTHER] = { "refused_other_total",
	    STATS_FILE_COUNTER, STATS_REFUSED("Other commands"), NULL },
};

/* elemta-queued's keys.  One delivery counter: result r (its file name
 * and label) over transport t (route.h's name). */
#define QRESULT_HELP "Recipient delivery attempts by result (delivered, " \
	"deferred: a temporary failure, bounced: permanent or expired) and " \
	"transport."
#define QRESULT(r, t) { r "_" t "_total", STATS_FILE_COUNTER, QRESULT_HELP, \
	"elemta_delivery_recipients_total{result=\"" r "\",transport=\"" t \
	"\"}" }
#define QRESULTS(r) QRESULT(r, "none"), QRESULT(r, "smtp"), \
	QRESULT(r, "lmtp"), QRESULT(r, "maildir"), QRESULT(r, "discard"), \
	QRESULT(r, "error")
#define QQUEUE_HELP "Messages in the delivery queue by list state."
#define QQUEUE(s) { "queue_" s, STATS_FILE_GAUGE, QQUEUE_HELP, \
	"elemta_delivery_queue_messages{state=\"" s "\"}" }
#define QLATENCY_HELP "Time from smtpd's 250 to the next hop's 250 (or " \
	"the local delivery) of each delivered recipient."
#define QBUCKET(name, le) { "latency_le_" name "_total", STATS_FILE_HISTOGRAM, \
	QLATENCY_HELP, "elemta_delivery_latency_seconds_bucket{le=\"" le "\"}" }

#define QDNS_HELP "Time the resolver took to answer a DNS lookup (answers " \
	"and failures)."
#define QDNS(name, le) { "dns_le_" name "_total", STATS_FILE_HISTOGRAM, \
	QDNS_HELP, "elemta_dns_lookup_seconds_bucket{le=\"" le "\"}" }

const struct stats_file_key stats_file_queued_keys[QUEUED_STAT_COUNT] = {
	QRESULTS("delivered"), QRESULTS("deferred"), QRESULTS("bounced"),
	[QUEUED_STAT_QUEUE_ACTIVE] = QQUEUE("active"),
	[QUEUED_STAT_QUEUE_DEFERRED] = QQUEUE("deferred"),
	[QUEUED_STAT_QUEUE_HOLD] = QQUEUE("hold"),
	[QUEUED_STAT_OLDEST_AGE] = { "oldest_age_seconds", STATS_FILE_GAUGE,
	    "Age of the oldest message in the delivery queue (0: empty).",
	    "elemta_delivery_queue_oldest_age_seconds" },
	[QUEUED_STAT_LATENCY_BUCKET] = QBUCKET("0_001", "0.001"),
	QBUCKET("0_0025", "0.0025"), QBUCKET("0_005", "0.005"),
	QBUCKET("0_01", "0.01"), QBUCKET("0_025", "0.025"),
	QBUCKET("0_05", "0.05"), QBUCKET("0_1", "0.1"),
	QBUCKET("0_25", "0.25"), QBUCKET("0_5", "0.5"), QBUCKET("1", "1"),
	QBUCKET("2_5", "2.5"), QBUCKET("10", "10"), QBUCKET("60", "60"),
	QBUCKET("600", "600"), QBUCKET("3600", "3600"),
	QBUCKET("86400", "86400"), QBUCKET("inf", "+Inf"),
	[QUEUED_STAT_LATENCY_SUM] = { "latency_sum_total", STATS_FILE_HISTOGRAM,
	    QLATENCY_HELP, "elemta_delivery_latency_seconds_sum" },
	[QUEUED_STAT_LATENCY_COUNT] = { "latency_count_total",
	    STATS_FILE_HISTOGRAM, QLATENCY_HELP,
	    "elemta_delivery_latency_seconds_count" },
	[QUEUED_STAT_DNS_QUERIES] = { "dns_queries_total", STATS_FILE_COUNTER,
	    "DNS lookups asked of the resolver.",
	    "elemta_dns_queries_total" },
	[QUEUED_STAT_DNS_FAILURES] = { "dns_failures_total",
	    STATS_FILE_COUNTER, "DNS lookups that failed temporarily "
	    "(SERVFAIL, timeout, bogus DNSSEC, too many outstanding).",
	    "elemta_dns_failures_total" },
	[QUEUED_STAT_DNS_TIMEOUTS] = { "dns_timeouts_total",
	    STATS_FILE_COUNTER, "DNS lookups that took longer than "
	    "dns.timeout.", "elemta_dns_timeouts_total" },
	[QUEUED_STAT_DNS_BUCKET] = QDNS("0_001", "0.001"),
	QDNS("0_005", "0.005"), QDNS("0_01", "0.01"), QDNS("0_05", "0.05"),
	QDNS("0_1", "0.1"), QDNS("0_5", "0.5"), QDNS("1", "1"),
	QDNS("5", "5"), QDNS("inf", "+Inf"),
	[QUEUED_STAT_DNS_SUM] = { "dns_sum_total", STATS_FILE_HISTOGRAM,
	    QDNS_HELP, "elemta_dns_lookup_seconds_sum" },
	[QUEUED_STAT_DNS_COUNT] = { "dns_count_total", STATS_FILE_HISTOGRAM,
	    QDNS_HELP, "elemta_dns_lookup_seconds_count" },
};

/* The latency buckets' bounds, as the le labels above. */
const uint64_t stats_file_latency_bound_us[QUEUED_LATENCY_BUCKETS] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 10000000, 60000000, 600000000, 3600000000u,
	86400000000u,
};

/* stats_file_key_find - see stats_file.h. */
const struct stats_file_key *
stats_file_key_find(const char *program, const char *key)
{
	const struct stats_file_key *keys;
	size_t n;

	if (strcmp(program, STATS_FILE_SMTPD) == 0) {
		keys = stats_file_smtpd_keys;
		n = SMTPD_STAT_COUNT;
	} else if (strcmp(program, STATS_FILE_QUEUED) == 0) {
		keys = stats_file_queued_keys;
		n = QUEUED_STAT_COUNT;
	} else {
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(keys[i].name, key) == 0)
			return &keys[i];
	return NULL;
}

/* stats_file_name_parse - see stats_file.h. */
bool
stats_file_name_parse(const char *name, char *prog, size_t size,
    unsigned *id, long *pid)
{
	size_t n = strlen(name), sl = strlen(STATS_FILE_SUFFIX), i = 0;
	unsigned long v;
	const char *p;
	char *end;

	if (n <= sl || strcmp(name + n - sl, STATS_FILE_SUFFIX) != 0)
		return false;
	while (name[i] >= 'a' && name[i] <= 'z')
		i++;
	if (i == 0 || i >= size || name[i] != '-')
		return false;
	p = name + i + 1;
	if (*p < '0' || *p > '9')
		return false;
	errno = 0;
	v = strtoul(p, &end, 10);
	if (errno != 0 || v > STATS_FILE_ID_MAX || *end != '-' ||
	    end[1] < '0' || end[1] > '9')
		return false;
	errno = 0;
	*pid = strtol(end + 1, &end, 10);
	if (errno != 0 || *pid <= 0 || strcmp(end, STATS_FILE_SUFFIX) != 0)
		return false;
	memcpy(prog, name, i);
	prog[i] = '\0';
	*id = (unsigned)v;
	return true;
}

/* stats_file_pid_alive - see stats_file.h (EPERM: it runs as another
 * user, which is the normal case for elemta-metricsd). */
bool
stats_file_pid_alive(long pid)
{
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* read_file - dir/name into buf (bounded); false when unreadable. */
static bool
read_file(int dfd, const char *name, char *buf, size_t size)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK);
	size_t got = 0;
	struct stat st;

	if (fd < 0)
		return false;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return false;
	}
	while (got + 1 < size) {
		ssize_t n = read(fd, buf + got, size - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return true;
}

/* is_total - does the key (len bytes) end in _total? */
static bool
is_total(const char *key, size_t len)
{
	return len > 6 && memcmp(key + len - 6, "_total", 6) == 0;
}

/* visit_lines - every valid "key value" line of text, through fn;
 * gauges only when line->alive (totals always). */
static void
visit_lines(char *text, struct stats_file_line *line, stats_file_fn fn,
    void *arg)
{
	char *save = NULL;

	for (char *l = strtok_r(text, "\n", &save); l != NULL;
	    l = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(l, ' '), *end;
		size_t klen;
		unsigned long long v;

		if (sp == NULL)
			continue;
		klen = (size_t)(sp - l);
		if (klen == 0 || klen > STATS_FILE_KEY_MAX ||
		    strspn(l, "abcdefghijklmnopqrstuvwxyz0123456789_") != klen ||
		    sp[1] < '0' || sp[1] > '9')
			continue;
		errno = 0;
		v = strtoull(sp + 1, &end, 10);
		if (errno != 0 || (*end != '\0' && *end != '\r'))
			continue;
		*sp = '\0';
		line->key = l;
		line->value = (uint64_t)v;
		line->total = is_total(l, klen);
		if (line->total || line->alive)
			fn(arg, line);
	}
}

/* visit_file - one file of the directory open as dfd. */
static bool
visit_file(int dfd, const char *name, const char *program, char *buf,
    stats_file_fn fn, void *arg)
{
	struct stats_file_line line = { .file = name };
	char prog[32];

	if (!stats_file_name_parse(name, prog, sizeof(prog), &line.id,
	    &line.pid) || (program != NULL && strcmp(prog, program) != 0))
		return false;
	if (!read_file(dfd, name, buf, STATS_FILE_SIZE_MAX))
		return false;
	line.program = prog;
	line.alive = stats_file_pid_alive(line.pid);
	visit_lines(buf, &line, fn, arg);
	return true;
}

/* stats_file_visit - see stats_file.h. */
size_t
stats_file_visit(const char *dir, const char *program, stats_file_fn fn,
    void *arg)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t files = 0;
	char *buf;

	if (d == NULL)
		return 0;
	buf = xmalloc(STATS_FILE_SIZE_MAX);
	while ((de = readdir(d)) != NULL && files < STATS_FILE_FILES_MAX)
		if (visit_file(dirfd(d), de->d_name, program, buf, fn, arg))
			files++;
	closedir(d);
	free(buf);
	return files;
}

/*==== Writing ====*/

/* stats_writer_write - see stats_file.h. */
bool
stats_writer_write(struct stats_writer *w)
{
	char buf[STATS_FILE_SIZE_MAX / 8];
	size_t len = 0;
	int fd;

	for (size_t i = 0; i < w->n; i++) {
		int n = snprintf(buf + len, sizeof(buf) - len, "%s %llu\n",
		    w->keys[i].name, (unsigned long long)w->counts[i]);

		if (n < 0 || (size_t)n >= sizeof(buf) - len)
			return false;       /* cannot happen: few short lines */
		len += (size_t)n;
	}
	fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0644);
	if (fd >= 0) {
		ssize_t n = write(fd, buf, len);

		if (close(fd) == 0 && n == (ssize_t)len &&
		    rename(w->tmp, w->path) == 0) {
			w->warned = false;
			return true;
		}
		unlink(w->tmp);
	}
	if (!w->warned)
		log_warn("stats file %s: %s", w->path, strerror(errno));
	w->warned = true;
	return false;
}

/* What the take-over found: the first dead file of the writer's program
 * and id. */
struct stats_taken {
	struct stats_writer *w;
	unsigned id;
	char file[256];
};

/* stats_take_line - a line of a dead worker of our program and id (a
 * crash, or an older generation that has finished): the totals of the
 * first such file carry on in ours. */
static void
stats_take_line(void *arg, const struct stats_file_line *line)
{
	struct stats_taken *t = arg;

	if (line->id != t->id || line->alive ||
	    line->pid == (long)getpid() || !line->total)
		return;
	if (t->file[0] == '\0')
		str_copy(t->file, line->file, sizeof(t->file));
	else if (strcmp(t->file, line->file) != 0)
		return;                  /* another one: the next start's */
	for (size_t i = 0; i < t->w->n; i++)
		if (strcmp(line->key, t->w->keys[i].name) == 0)
			t->w->counts[i] += line->value;
}

/* stats_take_over - a dead predecessor's file becomes ours. */
static void
stats_take_over(struct stats_writer *w, unsigned id)
{
	struct stats_taken t = { w, id, "" };
	char from[sizeof(w->dir) + sizeof(t.file) + 1];

	stats_file_visit(w->dir, w->program, stats_take_line, &t);
	if (t.file[0] == '\0')
		return;
	snprintf(from, sizeof(from), "%s/%s", w->dir, t.file);
	if (rename(from, w->path) == 0) {
		log_debug("stats: took over %s", t.file);
		return;
	}
	/* Taken by someone else meanwhile: forget what was read. */
	memset(w->counts, 0, w->n * sizeof(*w->counts));
}

/* stats_writer_open - see stats_file.h. */
int
stats_writer_open(struct stats_writer *w, const char *runtime_dir,
    unsigned id)
{
	struct stat st;

	snprintf(w->dir, sizeof(w->dir), "%s/%s", runtime_dir,
	    STATS_FILE_SUBDIR);
	if (mkdir(w->dir, 0755) != 0 && errno != EEXIST) {
		log_warn("stats directory %s: %s; counts are not reported",
		    w->dir, strerror(errno));
		return -1;
	}
	if (lstat(w->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		log_warn("stats directory %s: not a directory; counts are not "
		    "reported", w->dir);
		return -1;
	}
	snprintf(w->path, sizeof(w->path), "%s/%s-%u-%ld" STATS_FILE_SUFFIX,
	    w->dir, w->program, id, (long)getpid());
	snprintf(w->tmp, sizeof(w->tmp), "%s/.%s-%u-%ld.tmp", w->dir,
	    w->program, id, (long)getpid());
	stats_take_over(w, id);
	return 0;
}
