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
/* The PROGRAM of elemta-smtpd's files (smtpd-ID-PID.stats), the one
 * program with a key table here. */
#define STATS_FILE_SMTPD "smtpd"
/* Largest worker ID in a file name. */
#define STATS_FILE_ID_MAX 999999u

enum stats_file_type {
	STATS_FILE_COUNTER,      /* the key ends in _total             */
	STATS_FILE_GAUGE,
};

/* One key a worker writes: its name in the file, its type, and the
 * HELP text of the metric elemta_PROGRAM_NAME. */
struct stats_file_key {
	const char *name;
	enum stats_file_type type;
	const char *help;
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

#endif
