/*
 * spawn.c - starting one worker process: finding the worker binaries and
 * the fork + exec with the descriptor layout, environment and privilege
 * drop of docs/internals.md ("elemtactl -> workers").
 *
 * Called by supervisor.c.  Runs as root in production; the child becomes
 * unprivileged before execve.  The child reports any failure before the
 * exec (and the exec's own failure) as one line through a close-on-exec
 * pipe, so the supervisor knows for certain that the exec happened and can
 * log exactly why it did not ("setresuid(999): ..." or "execve ...: ...").
 *
 * The worker's environment is built from scratch, as Postfix does: the
 * ELEMTA_* contract variables, a few harmless ones imported (PATH, TZ,
 * locale, sanitizer options) and any other ELEMTA_* the operator set (test
 * hooks); nothing else of the supervisor's environment reaches a worker.
 *
 * What a worker inherits is a list: supervisor.c passes descriptors
 * (ctl_spawn_pass: 3, 4, ... in that order) and names them in variables
 * (ctl_spawn_var), per kind.  TLS (ctl_spawn_pass_tls): an smtpd worker
 * of a config with tls.certificate also inherits that file and tls.key,
 * opened read-only here while still root (the key may be readable by root
 * only), named by ELEMTA_TLS_CERT_FD / ELEMTA_TLS_KEY_FD.  The paths come
 * from the config file the worker is started with, read again at each
 * spawn, so a reloaded config's files are the ones passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "elemtactl.h"
#include "log.h"

#ifndef LIBEXECDIR
#define LIBEXECDIR "/usr/local/libexec/elemta"
#endif

#define SPAWN_ENV_MAX 64
#define SPAWN_MSG_MAX 512
#define SPAWN_CLOSE_FALLBACK_MAX 65536

extern char **environ;

/* Imported into every worker's environment when set. */
static const char *const spawn_imported[] = {
	"PATH", "TZ", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES",
	"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "MALLOC_CHECK_",
	"MALLOC_PERTURB_",
};

/* Set by elemtactl itself: never taken from the supervisor's environment. */
static const char *const spawn_reserved[] = {
	LOG_ENV_FOREGROUND, "ELEMTA_WORKER_ID", "ELEMTA_LISTEN_FDS",
	"ELEMTA_POLICY_FD", "ELEMTA_POSTFIX_FD", "ELEMTA_TLS_CERT_FD",
	"ELEMTA_TLS_KEY_FD", "ELEMTA_METRICS_FD", "ELEMTA_PEER_FD",
	"ELEMTA_PEER_SLOT",
};

/* spawn_try - dir/name when it is an executable regular file. */
static bool spawn_try(const char *dir, const char *name, char *out,
    size_t size)
{
	char path[CONFIG_PATH_MAX], real[PATH_MAX];
	struct stat st;
	int n = snprintf(path, sizeof(path), "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= sizeof(path) || stat(path, &st) == -1
	    || !S_ISREG(st.st_mode) || access(path, X_OK) == -1
	    || realpath(path, real) == NULL)
		return false;
	return str_copy(out, real, size) < size;
}

/* ctl_worker_binary - see elemtactl.h. */
int ctl_worker_binary(const char *name, char *out, size_t size,
    struct error *err)
{
	const char *override = getenv("ELEMTA_LIBEXEC_DIR");
	char self[CONFIG_PATH_MAX];
	ssize_t n;
	char *slash;

	/* Tests point this at stub workers; when set it is the only place. */
	if (override && *override) {
		if (spawn_try(override, name, out, size))
			return 0;
		return error_set(err, "cannot find %s in ELEMTA_LIBEXEC_DIR=%s",
		    name, override);
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			if (spawn_try(self[0] ? self : "/", name, out, size))
				return 0;
		}
	} else {
		str_copy(self, "(unknown: /proc/self/exe unreadable)", sizeof(self));
	}
	if (spawn_try(LIBEXECDIR, name, out, size))
		return 0;
	return error_set(err, "cannot find %s (looked in %s and %s)", name, self,
	    LIBEXECDIR);
}

/* spawn_child_fail - report one line to the supervisor and exit. */
static void spawn_child_fail(int errfd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
static void spawn_child_fail(int errfd, const char *fmt, ...)
{
	char msg[SPAWN_MSG_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n > 0) {
		if ((size_t)n >= sizeof(msg))
			n = (int)sizeof(msg) - 1;
		if (write(errfd, msg, (size_t)n) < 0) {
			/* nothing more to do: the exit status still tells */
		}
	}
	_exit(127);
}

/* spawn_close_from - close every descriptor >= lowfd. */
static void spawn_close_from(int lowfd)
{
	if (close_range((unsigned)lowfd, ~0U, 0) == 0)
		return;
	/* Kernels before 5.9: the slow way, bounded. */
	long max = sysconf(_SC_OPEN_MAX);

	if (max < 0 || max > SPAWN_CLOSE_FALLBACK_MAX)
		max = SPAWN_CLOSE_FALLBACK_MAX;
	for (int fd = lowfd; fd < max; fd++)
		close(fd);
}

/* spawn_child - in the forked child: descriptors, privileges, exec. */
static void spawn_child(const struct ctl_spawn *sp, char *const argv[],
    char *const envp[], int errfd, pid_t supervisor)
    __attribute__((noreturn));
static void spawn_child(const struct ctl_spawn *sp, char *const argv[],
    char *const envp[], int errfd, pid_t supervisor)
{
	int high[CTL_SPAWN_FDS_MAX];
	int base = 3 + (int)sp->fd_count;   /* first fd above the layout */
	char msg[SPAWN_MSG_MAX];
	sigset_t none;
	int nul;

	/* The supervisor blocks the signals it reads through signalfd and
	 * ignores SIGPIPE; both would survive execve. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	/* Its own process group: a ^C on elemtactl's terminal reaches only
	 * the supervisor, which then stops the workers gracefully. */
	setpgid(0, 0);

	nul = open("/dev/null", O_RDWR);
	if (nul == -1)
		spawn_child_fail(errfd, "open /dev/null: %s", strerror(errno));
	if (dup2(nul, 0) == -1 || (!sp->foreground && (dup2(nul, 1) == -1
	    || dup2(nul, 2) == -1)))
		spawn_child_fail(errfd, "dup2 /dev/null: %s", strerror(errno));

	/* Inherited sockets to 3, 4, ...: first copy everything above the
	 * target range so no dup2 can clobber a descriptor still needed. */
	for (size_t i = 0; i < sp->fd_count; i++) {
		high[i] = fcntl(sp->fds[i], F_DUPFD_CLOEXEC, base + 1);
		if (high[i] == -1)
			spawn_child_fail(errfd, "fcntl F_DUPFD: %s", strerror(errno));
	}
	int errhigh = fcntl(errfd, F_DUPFD_CLOEXEC, base + 1);
	if (errhigh == -1)
		spawn_child_fail(errfd, "fcntl F_DUPFD: %s", strerror(errno));
	errfd = errhigh;
	for (size_t i = 0; i < sp->fd_count; i++)
		if (dup2(high[i], 3 + (int)i) == -1)   /* clears close-on-exec */
			spawn_child_fail(errfd, "dup2: %s", strerror(errno));
	if (dup3(errhigh, base, O_CLOEXEC) == -1)
		spawn_child_fail(errfd, "dup3: %s", strerror(errno));
	errfd = base;
	spawn_close_from(base + 1);

	if (chdir("/") == -1)
		spawn_child_fail(errfd, "chdir /: %s", strerror(errno));
	if (sp->drop && ctl_privs_drop(sp->user, msg, sizeof(msg)) == -1)
		spawn_child_fail(errfd, "%s", msg);
	/* After the drop: changing credentials clears the death signal. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		spawn_child_fail(errfd, "prctl PR_SET_PDEATHSIG: %s",
		    strerror(errno));
	if (getppid() != supervisor)
		_exit(1);               /* the supervisor died meanwhile */
	execve(argv[0], argv, envp);
	spawn_child_fail(errfd, "execve %s: %s", argv[0], strerror(errno));
}

/* spawn_env_named - is the NAME=value entry one of names[]? */
static bool spawn_env_named(const char *entry, const char *const *names,
    size_t count)
{
	for (size_t i = 0; i < count; i++) {
		size_t n = strlen(names[i]);

		if (strncmp(entry, names[i], n) == 0 && entry[n] == '=')
			return true;
	}
	return false;
}

#define SPAWN_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* spawn_build_env - the worker's environment into envp (pointers into
 * environ, sp->vars or id_var, NULL-terminated). */
static void spawn_build_env(const struct ctl_spawn *sp, char **envp,
    char *id_var, size_t id_size)
{
	size_t n = 0;
	bool have_path = false;

	/* Room is kept for the variables added below and the NULL. */
	for (char **e = environ; *e && n < SPAWN_ENV_MAX - 4 - CTL_SPAWN_VARS_MAX;
	    e++) {
		if (spawn_env_named(*e, spawn_imported, SPAWN_COUNT(spawn_imported))) {
			envp[n++] = *e;
			have_path |= strncmp(*e, "PATH=", 5) == 0;
		} else if (strncmp(*e, "ELEMTA_", 7) == 0 && !spawn_env_named(*e,
		    spawn_reserved, SPAWN_COUNT(spawn_reserved))) {
			envp[n++] = *e;
		}
	}
	if (!have_path)
		envp[n++] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	if (sp->foreground)
		envp[n++] = LOG_ENV_FOREGROUND "=1";
	snprintf(id_var, id_size, "ELEMTA_WORKER_ID=%u", sp->id);
	envp[n++] = id_var;
	for (size_t i = 0; i < sp->var_count; i++)
		envp[n++] = (char *)sp->vars[i];
	envp[n] = NULL;
}

/* ctl_spawn_pass - see elemtactl.h. */
int ctl_spawn_pass(struct ctl_spawn *sp, int fd)
{
	if (sp->fd_count >= CTL_SPAWN_FDS_MAX)
		return -1;
	sp->fds[sp->fd_count++] = fd;
	return 3 + (int)sp->fd_count - 1;
}

/* ctl_spawn_pass_named - see elemtactl.h. */
int ctl_spawn_pass_named(struct ctl_spawn *sp, int fd, const char *name,
    struct error *err)
{
	int n = ctl_spawn_pass(sp, fd);

	if (n == -1 || ctl_spawn_var(sp, "%s=%d", name, n) == -1)
		return error_set(err, "too many descriptors to pass");
	return 0;
}

/* ctl_spawn_var - see elemtactl.h. */
int ctl_spawn_var(struct ctl_spawn *sp, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (sp->var_count >= CTL_SPAWN_VARS_MAX)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(sp->vars[sp->var_count], CTL_SPAWN_VAR_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= CTL_SPAWN_VAR_MAX)
		return -1;
	sp->var_count++;
	return 0;
}

/* ctl_spawn_pass_tls - see elemtactl.h.  The config is the file the
 * worker itself is about to load, so the two agree; one that does not
 * load opens nothing: the worker reports the problem. */
int ctl_spawn_pass_tls(struct ctl_spawn *sp, struct error *err)
{
	struct config_errors errs;
	struct config *cfg;
	const char *paths[2];
	int rc = 0;

	memset(&errs, 0, sizeof(errs));
	cfg = config_load(sp->config_file, &errs);
	if (cfg == NULL)
		return 0;
	paths[0] = cfg->tls.certificate;
	paths[1] = cfg->tls.key;
	for (int i = 0; i < 2 && rc == 0 && paths[0][0] != '\0' &&
	    paths[1][0] != '\0'; i++) {
		sp->owned[i] = open(paths[i], O_RDONLY | O_CLOEXEC | O_NOCTTY |
		    O_NONBLOCK);
		if (sp->owned[i] == -1)
			rc = error_set(err, "%s '%s': %s", i ? "tls.key" :
			    "tls.certificate", paths[i], strerror(errno));
		else if (ctl_spawn_pass_named(sp, sp->owned[i], i ?
		    "ELEMTA_TLS_KEY_FD" : "ELEMTA_TLS_CERT_FD", err) == -1)
			rc = -1;
	}
	config_free(cfg);
	return rc;
}

/* ctl_spawn_init - see elemtactl.h. */
void ctl_spawn_init(struct ctl_spawn *sp)
{
	memset(sp, 0, sizeof(*sp));
	sp->owned[0] = sp->owned[1] = -1;
}

/* ctl_spawn_release - see elemtactl.h. */
void ctl_spawn_release(struct ctl_spawn *sp)
{
	for (int i = 0; i < 2; i++) {
		if (sp->owned[i] != -1)
			close(sp->owned[i]);
		sp->owned[i] = -1;
	}
}

/* ctl_spawn_worker - see elemtactl.h. */
pid_t ctl_spawn_worker(const struct ctl_spawn *sp, struct error *err)
{
	char *envp[SPAWN_ENV_MAX];
	char *argv[4];
	char id_var[48], msg[SPAWN_MSG_MAX];
	int errpipe[2], status;
	pid_t supervisor = getpid(), pid;
	size_t got = 0;
	ssize_t n;

	argv[0] = (char *)sp->binary;
	argv[1] = "-c";
	argv[2] = (char *)sp->config_file;
	argv[3] = NULL;
	spawn_build_env(sp, envp, id_var, sizeof(id_var));

	if (pipe2(errpipe, O_CLOEXEC) == -1)
		return error_set(err, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid == -1) {
		int e = errno;

		close(errpipe[0]);
		close(errpipe[1]);
		return error_set(err, "fork: %s", strerror(e));
	}
	if (pid == 0) {
		close(errpipe[0]);
		spawn_child(sp, argv, envp, errpipe[1], supervisor);
	}
	close(errpipe[1]);
	/* End of file without a message: the exec happened. */
	while (got < sizeof(msg) - 1) {
		n = read(errpipe[0], msg + got, sizeof(msg) - 1 - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(errpipe[0]);
	if (got == 0)
		return pid;
	msg[got] = '\0';
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	return error_set(err, "%s", msg);
}
