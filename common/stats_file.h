/*
 * stats_file.h - the worker stats files: their names, their one reader,
 * and the one table of the keys elemta-smtpd writes (name, type, help).
 *
 * A worker that counts in memory (elemta-smtpd, smtpd/stats.c) writes
 * server.runtime_dir/stats/PROGRAM-ID-PID.stats, one `key value` line per
 * count (decimal), replaced atomically; docs/internals.md has the format.
 * A key ending in `_total` is a counter: it only grows and counts in every
 * file (totals survive worker restarts); any other key is a gauge that
 * counts only while the file's writer runs.  Readers: elemtactl status,
 * elemta-metricsd and elemta-stat (common/metrics_collect.c) and smtpd's
 * take-over of a dead predecessor's file, all through stats_file_visit,
 * so they agree on every sum.
 *
 * Kept apart from the counter table and the Prometheus formatting so that
 * elemta-smtpd, which writes these files, links neither.
 */
#ifndef ELEMTA_STATS_FILE_H
#define ELEMTA_STATS_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The sub-directory of server.runtime_dir holding the stats files. */
#define STATS_FILE_SUBDIR "stats"
#define STATS_FILE_SUFFIX ".stats"
/* Longest key accepted in a file. */
#define STATS_FILE_KEY_MAX 64
/* The PROGRAMs with a key table here: elemta-smtpd's files
 * (smtpd-ID-PID.stats) and elemta-queued's (queued-0-PID.stats). */
#define STATS_FILE_SMTPD "smtpd"
#define STATS_FILE_QUEUED "queued"
/* Longest server.runtime_dir (config.h's CONFIG_PATH_MAX). */
#define STATS_FILE_DIR_MAX 4096
/* Largest worker ID in a file name. */
#define STATS_FILE_ID_MAX 999999u

enum stats_file_type {
	STATS_FILE_COUNTER,      /* the key ends in _total             */
	STATS_FILE_GAUGE,
	STATS_FILE_HISTOGRAM,    /* a bucket, _sum or _count: the key ends
	                            in _total (cumulative, only grows)  */
};

/* One key a worker writes: its name in the file, its type, the HELP
 * text of its metric, and the metric's key as exposed (metrics_format.h:
 * name and labels), NULL for elemta_PROGRAM_NAME. */
struct stats_file_key {
	const char *name;
	enum stats_file_type type;
	const char *help;
	const char *metric;
};

/* The counts elemta-smtpd writes, in file order (the index into
 * stats_file_smtpd_keys). */
enum smtpd_stat {
	SMTPD_STAT_CONNECTIONS,           /* connections_total              */
	SMTPD_STAT_CONNECTIONS_REFUSED,   /* connections_refused_total: 421
	                                     at accept (connection limits)  */
	SMTPD_STAT_SESSIONS_OPEN,         /* sessions_open (gauge)          */
	SMTPD_STAT_MESSAGES_QUEUED,       /* messages_queued_total          */
	SMTPD_STAT_MESSAGES_QUARANTINED,  /* messages_quarantined_total     */
	SMTPD_STAT_MESSAGES_DISCARDED,    /* messages_discarded_total       */
	SMTPD_STAT_MESSAGES_REFUSED,      /* messages_refused_total: 4xx/5xx
	                                     at the end of data            */
	SMTPD_STAT_REFUSED_CONNECT,       /* refused_connect_total ...      */
	SMTPD_STAT_REFUSED_HELO,
	SMTPD_STAT_REFUSED_AUTH,
	SMTPD_STAT_REFUSED_MAIL,
	SMTPD_STAT_REFUSED_RCPT,
	SMTPD_STAT_REFUSED_DATA,
	SMTPD_STAT_REFUSED_OTHER,
	SMTPD_STAT_COUNT
};

extern const struct stats_file_key stats_file_smtpd_keys[SMTPD_STAT_COUNT];

/* elemta-queued's counts.  Deliveries: one counter per result x
 * transport (route.h's order: none, smtp, lmtp, maildir, discard,
 * error), index QUEUED_STAT_RESULTS + result * STATS_TRANSPORTS +
 * transport, exposed as elemta_delivery_recipients_total{result,
 * transport}.  The queue: gauges per list state (active, deferred, hold,
 * as `elemtactl status` counts them) and the oldest message's age.
 * Latency, 250 -> the next hop's 250 of each delivered recipient: a
 * histogram elemta_delivery_latency_seconds with the bounds of
 * stats_file_latency_bound_us, the +Inf bucket, sum (microseconds) and
 * count, every one a cumulative counter. */
enum queued_stat_result {
	QUEUED_RESULT_DELIVERED,
	QUEUED_RESULT_DEFERRED,
	QUEUED_RESULT_BOUNCED,
	QUEUED_RESULT_COUNT
};
#define STATS_TRANSPORTS 6        /* route.h's enum route_transport   */
#define QUEUED_LATENCY_BUCKETS 16 /* bounds; the +Inf bucket follows  */
#define QUEUED_DNS_BUCKETS 8      /* dns.h's DNS_STATS_BUCKETS         */

enum queued_stat {
	QUEUED_STAT_RESULTS,
	QUEUED_STAT_QUEUE_ACTIVE = QUEUED_STAT_RESULTS +
	    QUEUED_RESULT_COUNT * STATS_TRANSPORTS,
	QUEUED_STAT_QUEUE_DEFERRED,
	QUEUED_STAT_QUEUE_HOLD,
	QUEUED_STAT_OLDEST_AGE,           /* seconds, 0: empty queue      */
	QUEUED_STAT_LATENCY_BUCKET,       /* first of BUCKETS + 1         */
	QUEUED_STAT_LATENCY_SUM = QUEUED_STAT_LATENCY_BUCKET +
	    QUEUED_LATENCY_BUCKETS + 1,   /* microseconds                 */
	QUEUED_STAT_LATENCY_COUNT,
	/* The resolver's counts (dns.h's struct dns_stats): lookups,
	 * temporary failures, timeouts among them, and the lookup time
	 * histogram elemta_dns_lookup_seconds with the
	 * bounds of dns_stats_bucket_us. */
	QUEUED_STAT_DNS_QUERIES,
	QUEUED_STAT_DNS_FAILURES,
	QUEUED_STAT_DNS_TIMEOUTS,
	QUEUED_STAT_DNS_BUCKET,           /* first of DNS_BUCKETS + 1     */
	QUEUED_STAT_DNS_SUM = QUEUED_STAT_DNS_BUCKET + QUEUED_DNS_BUCKETS +
	    1,                            /* microseconds                 */
	QUEUED_STAT_DNS_COUNT,
	QUEUED_STAT_COUNT
};

extern const struct stats_file_key stats_file_queued_keys[QUEUED_STAT_COUNT];
extern const uint64_t stats_file_latency_bound_us[QUEUED_LATENCY_BUCKETS];

/* stats_file_key_find - the table entry of PROGRAM's key, or NULL (a key
 * this build does not know: readers still sum it). */
const struct stats_file_key *stats_file_key_find(const char *program,
    const char *key);

/* One line of a stats file, as handed to a visitor; a file's lines come
 * one after another. */
struct stats_file_line {
	const char *file;        /* PROGRAM-ID-PID.stats                  */
	const char *program;
	unsigned id;             /* the worker slot                       */
	long pid;
	bool alive;              /* the writer still runs                 */
	const char *key;         /* [a-z0-9_], at most STATS_FILE_KEY_MAX */
	uint64_t value;
	bool total;              /* the key ends in _total: only grows    */
};
typedef void (*stats_file_fn)(void *arg, const struct stats_file_line *line);

/* stats_file_visit - the one reader of the stats files: every line of
 * dir's files (only PROGRAM's when program is not NULL) that belongs in
 * a sum over the workers: `_total` lines of every file, other lines only
 * of files whose writer still runs.  Invalid names and lines are skipped.
 * Returns the number of files read (a missing directory: 0). */
size_t stats_file_visit(const char *dir, const char *program,
    stats_file_fn fn, void *arg);

/* stats_file_name_parse - "PROGRAM-ID-PID.stats" (PROGRAM [a-z]+,
 * ID <= STATS_FILE_ID_MAX, PID > 0): program into prog (size bytes),
 * id and pid; false for any other name, temporary files included. */
bool stats_file_name_parse(const char *name, char *prog, size_t size,
    unsigned *id, long *pid);

/* stats_file_pid_alive - is the writer of a stats file still running
 * (as any user)? */
bool stats_file_pid_alive(long pid);

/*==== Writing ====*/

/* The writer's side of one file, server.runtime_dir/stats/PROGRAM-ID-PID
 * .stats: the program's key table and its counts (in the writer's
 * memory, one per key). */
struct stats_writer {
	const char *program;
	const struct stats_file_key *keys;
	uint64_t *counts;
	size_t n;
	bool warned;             /* a write failure was logged           */
	char dir[STATS_FILE_DIR_MAX + 16];
	char path[STATS_FILE_DIR_MAX + 64]; /* dir/PROGRAM-ID-PID.stats  */
	char tmp[STATS_FILE_DIR_MAX + 64];  /* dir/.PROGRAM-ID-PID.tmp   */
};

/* stats_writer_open - w's file for worker id under runtime_dir (program,
 * keys, counts and n set by the caller): creates the directory (0755)
 * when missing and possible, and takes over the file of a dead
 * predecessor of the same program and id (its totals are added to
 * counts; the rename keeps the sum over all files unchanged at every
 * moment: no dip, no double count).  -1 (logged) when no file can be
 * written. */
int stats_writer_open(struct stats_writer *w, const char *runtime_dir,
    unsigned id);

/* stats_writer_write - the file, replaced atomically (tmp + rename, mode
 * 0644); false on failure (logged once until a write succeeds again). */
bool stats_writer_write(struct stats_writer *w);

#endif
