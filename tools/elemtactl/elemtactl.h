/*
 * elemtactl.h - private interfaces between the source files of elemtactl,
 * the supervisor (nothing outside tools/elemtactl/ includes this, except
 * tests/unit/test_supervisor.c).
 *
 *   main.c          command dispatch and usage
 *   args.c          command-line parsing (pure)
 *   check_config.c  loading the config for every command, check-config
 *   supervisor.c    start: the start-up sequence and the supervision loop
 *   spawn.c         finding worker binaries, fork + exec of one worker
 *   workers.c       the worker table: state machine and backoff (pure)
 *   sockets.c       binding the listeners and the policy sockets
 *   privs.c         resolving the worker users, the privilege drop
 *   dirs.c          runtime/spool/counter directories, spool tmp/ cleaning
 *   runtime.c       the pid file (the lock), the status file, the
 *                   reload-result file
 *   control.c       stop, status, reload: talking to a running supervisor
 *   test_plugin.c   test-plugin: one plugin in isolation
 *   queue.c         queue list|show|flush|hold|release|delete
 */
#ifndef ELEMTACTL_H
#define ELEMTACTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "error.h"
#include "stats_file.h"
#include "strbuf.h"

/* ==== args.c ==== */

enum ctl_command {
	CTL_CMD_NONE,
	CTL_CMD_HELP,
	CTL_CMD_VERSION,
	CTL_CMD_START,
	CTL_CMD_STOP,
	CTL_CMD_STATUS,
	CTL_CMD_RELOAD,
	CTL_CMD_CHECK_CONFIG,
	CTL_CMD_TEST_PLUGIN,
	CTL_CMD_QUEUE,
};

#define CTL_ARGS_REST_MAX 64

struct ctl_args {
	enum ctl_command command;
	const char *config_file;      /* -c, or CONFIG_DEFAULT_FILE       */
	bool foreground;              /* start --foreground               */
	bool verbose;                 /* check-config -v                  */
	bool settings;                /* check-config --settings          */
	bool json;                    /* status --json, queue list --json */
	bool command_help;            /* COMMAND --help                   */
	const char *rest[CTL_ARGS_REST_MAX]; /* test-plugin's own arguments;
	                                      * queue: its sub-command, id  */
	size_t rest_count;
};

/* ctl_args_parse - argv into *out.  -c may come before the command, and
 * after it for every command but test-plugin, which takes every word
 * after its name as its own (rest).  Pointers in *out point into argv. */
int ctl_args_parse(int argc, char **argv, struct ctl_args *out,
    struct error *err);
const char *ctl_command_name(enum ctl_command cmd);
/* ctl_usage - the usage text. */
const char *ctl_usage(void);
/* ctl_command_usage - the usage text of one command. */
const char *ctl_command_usage(enum ctl_command cmd);

/* ==== check_config.c ==== */

/* ctl_config_load - config_load, printing every problem to stderr; NULL
 * when the file is invalid. */
struct config *ctl_config_load(const char *path);
/* ctl_config_runtime_dir - for stop, status and reload when the file
 * does not load any more (an operator is editing it): server.runtime_dir
 * read from the raw YAML (default /run/elemta), resolved against the
 * file's directory, into out (PATH_MAX bytes); -1 when even that fails. */
int ctl_config_runtime_dir(const char *path, char *out, size_t size);
/* ctl_config_check_extra - what config.c cannot know: TLS files readable,
 * plugin files present, worker users present (as root).  Appends to errs;
 * returns the number of problems added. */
size_t ctl_config_check_extra(const struct config *cfg,
    struct config_errors *errs);
struct ctl_users;
/* ctl_config_check_access - as root: can each worker user, once
 * unprivileged, read the config and the files it names, and (with_dirs,
 * once they exist) use its directories?  Appends to errs; returns the
 * number of problems added.  Nothing to check when not root. */
size_t ctl_config_check_access(const struct config *cfg,
    const struct ctl_users *users, bool with_dirs,
    struct config_errors *errs);
/* ctl_config_check_plugins - load and initialise every enabled plugin as
 * policyd would (each alone, no counter table) in a forked child that
 * runs as users->policyd when users->root (users may be NULL: as is);
 * one problem per broken plugin, naming the entry's or the key's
 * file:line:column.  Bounded in time (a hanging init is killed). */
size_t ctl_config_check_plugins(const struct config *cfg,
    const struct ctl_users *users, bool log_to_stderr,
    struct config_errors *errs);
/* ctl_config_validate - what check-config, start and reload check beyond
 * config_load: extra checks, access (when users is not NULL), plugins. */
size_t ctl_config_validate(const struct config *cfg,
    const struct ctl_users *users, bool log_to_stderr,
    struct config_errors *errs);
/* ctl_config_where - "file:line:column" of section.key in cfg's
 * document, or the file name when the key was not written. */
const char *ctl_config_where(const struct config *cfg, const char *section,
    const char *key);
int ctl_check_config(const struct ctl_args *args);

/* ==== workers.c ==== */

#define CTL_BACKOFF_FIRST_MS 100u      /* first restart after a crash     */
#define CTL_BACKOFF_MAX_MS 30000u      /* cap of the doubling             */
#define CTL_BACKOFF_RESET_MS 60000u    /* lived longer: not a crash loop  */

enum ctl_worker_kind {
	CTL_KIND_POLICYD,
	CTL_KIND_SMTPD,
	CTL_KIND_METRICS,            /* elemta-metricsd, when metrics.listen */
	CTL_KIND_QUEUED,             /* elemta-queued, always one             */
};

/* A worker slot's state (see workers.c for the transitions). */
enum ctl_worker_state {
	CTL_WORKER_STOPPED,      /* no process, none wanted (yet / any more)   */
	CTL_WORKER_RUNNING,      /* a process runs                             */
	CTL_WORKER_RESTARTING,   /* it died; waiting out the backoff delay     */
	CTL_WORKER_STOPPING,     /* SIGTERM sent, waiting for it to exit       */
	CTL_WORKER_RETIRING,     /* superseded by a reload, still serving the
	                          * older smtpd workers; never restarted      */
};

struct ctl_worker {
	enum ctl_worker_kind kind;
	unsigned id;                 /* 0-based within its kind               */
	unsigned generation;         /* 1 at start, +1 per applied reload     */
	enum ctl_worker_state state; /* changed by ctl_worker_enter_state only */
	pid_t pid;                   /* 0 when no process                     */
	int64_t started_unix;        /* wall clock, for the status file       */
	uint64_t started_ms;         /* monotonic, for the backoff reset      */
	uint64_t restart_at_ms;      /* RESTARTING: monotonic due time        */
	unsigned restarts;           /* processes started after the first     */
	unsigned crashes;            /* consecutive short-lived exits         */
	int peer_slot;               /* smtpd: its slot of the connection
	                              * table (common/peer_table.h), kept
	                              * across restarts; -1: none yet      */
};

const char *ctl_worker_kind_name(enum ctl_worker_kind kind);
const char *ctl_worker_state_name(enum ctl_worker_state state);
/* ctl_worker_enter_state - the one place a slot's state changes; an
 * impossible transition is a broken invariant (fatal). */
void ctl_worker_enter_state(struct ctl_worker *w, enum ctl_worker_state s);
/* ctl_backoff_delay_ms - delay before restart number `crashes` (1-based)
 * of a crash loop: 100 ms doubling to 30 s. */
uint64_t ctl_backoff_delay_ms(unsigned crashes);
/* ctl_worker_crashed - account an unexpected exit (or failed start) at
 * now_ms: resets the crash count when the process lived long, sets
 * restart_at_ms; returns the delay. */
uint64_t ctl_worker_crashed(struct ctl_worker *w, uint64_t now_ms);
/* ctl_exit_describe - "exited with status 1", "killed by signal 9". */
char *ctl_exit_describe(int wstatus, char *buf, size_t size);

/* ==== runtime.c ==== */

#define CTL_PID_FILE "elemtactl.pid"
#define CTL_STATUS_FILE "status"
#define CTL_RELOAD_FILE "reload-result"
#define CTL_STATUS_WORKERS_MAX 4096

struct ctl_lock {
	int fd;                      /* -1 when not held */
	char path[CONFIG_PATH_MAX];
};

/* ctl_lock_acquire - open dir/elemtactl.pid and take its flock.  Returns
 * 0 (held), 1 (someone else holds it; *holder is their pid or 0), -1. */
int ctl_lock_acquire(const char *dir, struct ctl_lock *lk, pid_t *holder,
    struct error *err);
int ctl_lock_write_pid(struct ctl_lock *lk, pid_t pid, struct error *err);
/* ctl_lock_release - unlink the pid file, then drop the lock. */
void ctl_lock_release(struct ctl_lock *lk);
/* ctl_lock_probe - is a supervisor running?  1 (yes, *holder = pid or 0
 * when not written yet), 0 (no), -1 (cannot tell). */
int ctl_lock_probe(const char *dir, pid_t *holder, struct error *err);

/* The status file: "elemtactl PID STARTED_UNIX [GENERATION]", then one
 * line per worker "kind id pid state started_unix restarts [generation]"
 * (the generations are optional when read: older files lack them). */
struct ctl_status_worker {
	char kind[16];
	unsigned id;
	pid_t pid;
	char state[16];
	int64_t started;
	unsigned restarts;
	unsigned generation;
};

struct ctl_status {
	pid_t pid;
	int64_t started;
	unsigned generation;         /* the current one                     */
	struct ctl_status_worker *workers; /* owned; ctl_status_free */
	size_t count;
};

/* ctl_status_from_workers - snapshot the worker table. */
void ctl_status_from_workers(struct ctl_status *st, pid_t pid,
    int64_t started, unsigned generation, const struct ctl_worker *workers,
    size_t count);
int ctl_status_format(const struct ctl_status *st, struct strbuf *out);
int ctl_status_parse(const char *text, size_t len, struct ctl_status *st,
    struct error *err);
void ctl_status_free(struct ctl_status *st);
/* ctl_status_write - replace dir/status atomically (temp file + rename). */
int ctl_status_write(const char *dir, const struct ctl_status *st,
    struct error *err);
int ctl_status_read(const char *dir, struct ctl_status *st,
    struct error *err);
void ctl_status_remove(const char *dir);
/* The reload-result file, rewritten (atomically) by the supervisor after
 * each reload attempt:
 *     elemtactl PID SEQ
 *     result ok|failed
 *     generation N            (the generation running afterwards)
 *     error TEXT              (one per problem, when failed)
 * SEQ counts the supervisor's reload attempts from 1, so `elemtactl
 * reload` can wait for the outcome of the one it asked for. */
#define CTL_RELOAD_ERRORS_MAX CONFIG_ERRORS_MAX
struct ctl_reload_result {
	pid_t pid;
	uint64_t seq;
	bool ok;
	unsigned generation;
	char (*errors)[ERROR_TEXT_MAX];  /* owned; ctl_reload_result_free */
	size_t error_count;
};

int ctl_reload_result_format(const struct ctl_reload_result *r,
    struct strbuf *out);
int ctl_reload_result_parse(const char *text, size_t len,
    struct ctl_reload_result *r, struct error *err);
void ctl_reload_result_free(struct ctl_reload_result *r);
/* ctl_reload_result_add - append one error line (dropped past the max;
 * CR/LF become spaces). */
void ctl_reload_result_add(struct ctl_reload_result *r, const char *text);
int ctl_reload_result_write(const char *dir,
    const struct ctl_reload_result *r, struct error *err);
/* ctl_reload_result_read - 1 read, 0 no file, -1 error. */
int ctl_reload_result_read(const char *dir, struct ctl_reload_result *r,
    struct error *err);
void ctl_reload_result_remove(const char *dir);

/* ctl_runtime_file_read - a whole small file of dir into sb (at most
 * limit bytes); 1 read, 0 absent, -1 error. */
int ctl_runtime_file_read(const char *dir, const char *name,
    struct strbuf *sb, struct error *err);
/* ctl_runtime_file_write - replace dir/name atomically (temp + rename). */
int ctl_runtime_file_write(const char *dir, const char *name,
    const char *data, size_t len, struct error *err);

/* ctl_format_duration - "45s", "5m", "2h 3m", "3d 4h". */
char *ctl_format_duration(int64_t seconds, char *buf, size_t size);

/* ==== privs.c ==== */

struct ctl_user {
	char name[CONFIG_NAME_MAX];
	uid_t uid;
	gid_t gid;
};

struct ctl_users {
	bool root;                   /* euid 0: drop privileges in workers */
	struct ctl_user smtpd;       /* server.user (or the invoking user)  */
	struct ctl_user policyd;     /* policyd.user (or the invoking user) */
};

/* ctl_users_resolve - as root: look up server.user and policyd.user
 * (missing or uid 0 is an error); else both are the invoking user. */
int ctl_users_resolve(const struct config *cfg, struct ctl_users *users,
    struct error *err);
/* ctl_privs_drop - setgroups, setresgid, setresuid to u, then verify that
 * root cannot be regained.  For a forked child: no logging, the reason
 * goes to msg. */
int ctl_privs_drop(const struct ctl_user *u, char *msg, size_t size);
/* One path a worker will need, and how (access(2) modes). */
struct ctl_access {
	const char *path;            /* "" is skipped                     */
	int mode;                    /* R_OK, W_OK, X_OK                  */
	const char *what;            /* "tls.key", for the message        */
};

/* ctl_privs_check_access - as root: would u, once dropped, be allowed
 * each access?  Checked for real in a forked child that drops to u.
 * -1 with "user elemta cannot read tls.key '/x': Permission denied". */
int ctl_privs_check_access(const struct ctl_user *u,
    const struct ctl_access *items, size_t count, struct error *err);

/* ==== dirs.c ==== */

/* ctl_mkdir_p - create path (with mode) and its missing parents (0755);
 * an existing directory is fine and keeps its mode. */
int ctl_mkdir_p(const char *path, mode_t mode, struct error *err);
/* ctl_mkdir_p_parent - ctl_mkdir_p (0755) of the directory holding path. */
int ctl_mkdir_p_parent(const char *path, struct error *err);
/* ctl_dir_secure - chown/chmod the directory itself (not following a
 * symbolic link). */
int ctl_dir_secure(const char *path, uid_t uid, gid_t gid, mode_t mode,
    struct error *err);
/* ctl_dir_chown_files - chown the plain files directly inside path
 * (never through a link, never a file with several hard links). */
int ctl_dir_chown_files(const char *path, uid_t uid, gid_t gid,
    struct error *err);
/* ctl_dir_clean - remove everything inside path, recursively, never
 * following symbolic links; *removed counts the entries removed from path
 * itself (also when it returns -1 because some could not be). */
int ctl_dir_clean(const char *path, long *removed, struct error *err);

/* ==== sockets.c ==== */

struct ctl_socket {
	int fd;                       /* -1 when not open                 */
	char name[CONFIG_PATH_MAX];   /* as configured, for messages      */
	char unix_path[CONFIG_PATH_MAX]; /* "" for TCP; unlinked on close */
};

struct ctl_sockets {
	struct ctl_socket listen[CONFIG_LISTEN_MAX];  /* server.listen order */
	size_t listen_count;
	struct ctl_socket policy;     /* policyd.socket                    */
	struct ctl_socket postfix;    /* policyd.postfix_listen, fd -1: off */
	struct ctl_socket metrics;    /* metrics.listen, fd -1: off        */
};

void ctl_sockets_init(struct ctl_sockets *s);
/* ctl_sockets_open - bind everything the config asks for.  Errors read
 * "cannot listen on 127.0.0.1:2525: Address already in use". */
int ctl_sockets_open(const struct config *cfg, const struct ctl_users *users,
    struct ctl_sockets *s, struct error *err);
/* ctl_sockets_close_listeners - close the SMTP listeners only (stop). */
void ctl_sockets_close_listeners(struct ctl_sockets *s);
/* ctl_sockets_reopen - for a reload: the sockets cfg asks for into *out,
 * taking over from *old every listener that already serves an address
 * cfg names (the same bound address, or the same socket file) instead of
 * binding it again, and a fresh policy socket, bound at a temporary path
 * beside policyd.socket and, as the last step, renamed over it: from then
 * on connecting by path reaches the fresh socket (and the workers that
 * will hold it), while the workers holding the old one keep the
 * connections they have.  On failure *old is untouched and nothing new
 * stays open. */
int ctl_sockets_reopen(const struct config *cfg,
    const struct ctl_users *users, struct ctl_sockets *old,
    struct ctl_sockets *out, struct error *err);
/* ctl_sockets_release_old - after ctl_sockets_reopen succeeded: close
 * what of *old was not taken over, without unlinking any path (the
 * policy path now names the fresh socket). */
void ctl_sockets_release_old(struct ctl_sockets *old);
/* ctl_sockets_close - close everything, unlinking the Unix sockets. */
void ctl_sockets_close(struct ctl_sockets *s);
/* ==== spawn.c ==== */

/* ctl_worker_binary - the worker program `name`: in $ELEMTA_LIBEXEC_DIR
 * when set, else next to /proc/self/exe, else in LIBEXECDIR. */
int ctl_worker_binary(const char *name, char *out, size_t size,
    struct error *err);

/* Everything a worker child needs, prepared before fork: the
 * descriptors it inherits (they become 3, 4, ... in the order passed)
 * and the ELEMTA_* variables that tell it where they landed. */
#define CTL_SPAWN_FDS_MAX (CONFIG_LISTEN_MAX + 4)   /* listeners, TLS, table */
#define CTL_SPAWN_VARS_MAX 6
#define CTL_SPAWN_VAR_MAX (32 + CONFIG_LISTEN_MAX * 4)
struct ctl_spawn {
	const char *binary;           /* absolute path                     */
	const char *config_file;      /* absolute path, passed as -c       */
	const struct ctl_user *user;  /* drop to it when drop is true      */
	bool drop;
	bool foreground;              /* inherit stdout/stderr             */
	unsigned id;
	int fds[CTL_SPAWN_FDS_MAX];   /* borrowed, or in owned[]           */
	size_t fd_count;
	int owned[2];                 /* opened for this spawn (the TLS
	                               * files), -1 or closed by
	                               * ctl_spawn_release                 */
	char vars[CTL_SPAWN_VARS_MAX][CTL_SPAWN_VAR_MAX]; /* "NAME=value"   */
	size_t var_count;
};

/* ctl_spawn_pass - fd becomes the worker's next descriptor; returns its
 * number in the worker (3, 4, ...), or -1 when the layout is full. */
int ctl_spawn_pass(struct ctl_spawn *sp, int fd);

/* ctl_spawn_pass_named - ctl_spawn_pass, then NAME=<its number>; -1 with
 * err when the layout or the variable list is full. */
int ctl_spawn_pass_named(struct ctl_spawn *sp, int fd, const char *name,
    struct error *err);

/* ctl_spawn_var - add the variable "NAME=value" (printf format); -1 when
 * there are too many or it is too long. */
int ctl_spawn_var(struct ctl_spawn *sp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ctl_spawn_init - an empty layout (nothing passed, nothing owned). */
void ctl_spawn_init(struct ctl_spawn *sp);

/* ctl_spawn_pass_tls - for an smtpd worker: when sp->config_file names a
 * certificate, tls.certificate and tls.key opened read-only here (as
 * root: the key may be readable by root only) into sp->owned and passed
 * as ELEMTA_TLS_CERT_FD / ELEMTA_TLS_KEY_FD.  -1 with err when a file
 * cannot be opened. */
int ctl_spawn_pass_tls(struct ctl_spawn *sp, struct error *err);

/* ctl_spawn_release - close what the layout owns (after the spawn, or
 * instead of it). */
void ctl_spawn_release(struct ctl_spawn *sp);

/* ctl_spawn_worker - fork and exec; returns the pid once the exec
 * succeeded, or -1 with the child's reason in err (the child is reaped). */
pid_t ctl_spawn_worker(const struct ctl_spawn *sp, struct error *err);

/* ==== supervisor.c ==== */

int ctl_start(const struct ctl_args *args);

/* ==== control.c ==== */

int ctl_stop(const struct ctl_args *args);
int ctl_status(const struct ctl_args *args);
int ctl_reload(const struct ctl_args *args);

/* ctl_stats_read - the sums over the smtpd workers' stats files in
 * runtime_dir/stats/ per key (stats_file_visit: totals of every file,
 * gauges of running workers), at most CTL_STATS_KEYS_MAX distinct keys;
 * files counts the files read (0: none, not an error). */
#define CTL_STATS_KEYS_MAX 32
struct ctl_stats {
	char key[CTL_STATS_KEYS_MAX][STATS_FILE_KEY_MAX + 1];
	uint64_t value[CTL_STATS_KEYS_MAX];
	size_t count;
	size_t files;
};
void ctl_stats_read(const char *dir, struct ctl_stats *st);

/* ==== queue.c ==== */

/* ctl_queue - `elemtactl queue ...`; exit 0, 1 error, 2 usage. */
int ctl_queue(const struct ctl_args *args);

/* The delivery queue in numbers, for `status`. */
struct ctl_queue_summary {
	size_t messages, active, deferred, hold;
	int64_t oldest_seconds;       /* the oldest message's age (0: none) */
};

/* ctl_queue_summary - count spool/queue by list state; -1 when the
 * queue cannot be read (another user's spool). */
int ctl_queue_summary(const char *spool, struct ctl_queue_summary *sum);

/* ==== test_plugin.c ==== */

/* ctl_test_plugin - `elemtactl test-plugin`; exit 0 / 1 / 2. */
int ctl_test_plugin(const struct ctl_args *args);

#endif
