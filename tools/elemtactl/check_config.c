/*
 * check_config.c - loading the configuration for every elemtactl command,
 * and `elemtactl check-config [-v]`.
 *
 * config.c validates the file itself; the checks here need the system
 * around it, which config.c cannot know: TLS files readable, plugin files
 * present, worker users existing (when run as root, since only then are
 * they used) and, as warnings, files a dropped worker could not read.
 * It also loads and initialises every enabled plugin exactly as a policyd
 * worker would (plugin_host_load_config, without a counter table), in a
 * forked child that drops to policyd.user first: plugin code never runs
 * inside the supervisor, as root, and a plugin whose init crashes or
 * hangs cannot take the supervisor down.  `start` and `reload` run the
 * same checks, so what check-config accepts starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <yaml.h>

#include "elemtactl.h"
#include "log.h"
#include "../../policyd/milter.h"
#include "../../policyd/plugin_host.h"

#define CHECK_PLUGINS_TIMEOUT_MS 20000  /* a plugin init that hangs */
#define CHECK_MILTER_TIMEOUT_MS 5000    /* per milter probe, at most */
#define CHECK_PLUGINS_OUT_MAX (CONFIG_ERRORS_MAX * ERROR_TEXT_MAX)

/* ctl_config_load - see elemtactl.h. */
struct config *ctl_config_load(const char *path)
{
	static struct config_errors errs;   /* 32 KiB: not on the stack */
	struct config *cfg;

	memset(&errs, 0, sizeof(errs));
	cfg = config_load(path, &errs);
	if (cfg == NULL) {
		for (size_t i = 0; i < errs.count && i < CONFIG_ERRORS_MAX; i++)
			fprintf(stderr, "%s\n", errs.text[i]);
		if (errs.count == 0)
			fprintf(stderr, "%s: invalid configuration\n", path);
	}
	return cfg;
}

/* ctl_config_runtime_dir - see elemtactl.h. */
int ctl_config_runtime_dir(const char *path, char *out, size_t size)
{
	char abs[CONFIG_PATH_MAX], joined[CONFIG_PATH_MAX * 2 + 2];
	const char *value = "/run/elemta";   /* config.c's default */
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root, *server = NULL, *rd = NULL;
	FILE *f;
	char *slash;
	int rc = -1;

	if (realpath(path, abs) == NULL || (f = fopen(abs, "rb")) == NULL)
		return -1;
	if (!yaml_parser_initialize(&parser)) {
		fclose(f);
		return -1;
	}
	yaml_parser_set_input_file(&parser, f);
	if (yaml_parser_load(&parser, &doc)) {
		root = yaml_document_get_root_node(&doc);
		/* server: {runtime_dir: X}, looked up by hand: the rest of the
		 * file may be as broken as it likes. */
		for (int level = 0; level < 2; level++) {
			yaml_node_t *map = level == 0 ? root : server, *found = NULL;
			const char *want = level == 0 ? "server" : "runtime_dir";

			if (map == NULL || map->type != YAML_MAPPING_NODE)
				break;
			for (yaml_node_pair_t *pr = map->data.mapping.pairs.start;
			    pr < map->data.mapping.pairs.top; pr++) {
				yaml_node_t *k = yaml_document_get_node(&doc, pr->key);

				if (k != NULL && k->type == YAML_SCALAR_NODE
				    && strcmp((const char *)k->data.scalar.value,
				    want) == 0)
					found = yaml_document_get_node(&doc, pr->value);
			}
			if (level == 0)
				server = found;
			else
				rd = found;
		}
		if (rd != NULL && rd->type == YAML_SCALAR_NODE
		    && rd->data.scalar.length > 0)
			value = (const char *)rd->data.scalar.value;
		slash = strrchr(abs, '/');
		if (slash != NULL)
			slash[slash == abs ? 1 : 0] = '\0';
		snprintf(joined, sizeof(joined), "%s/%s", value[0] == '/' ? ""
		    : abs, value);
		if (realpath(joined, out) != NULL || str_copy(out, joined, size)
		    < size)
			rc = 0;
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	fclose(f);
	return rc;
}

/* check_add - append one problem (silently dropped when errs is full,
 * as config.c does). */
static void check_add(struct config_errors *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void check_add(struct config_errors *errs, const char *fmt, ...)
{
	va_list ap;

	if (errs->count >= CONFIG_ERRORS_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(errs->text[errs->count++], ERROR_TEXT_MAX, fmt, ap);
	va_end(ap);
}

/* ctl_config_where - see elemtactl.h. */
const char *ctl_config_where(const struct config *cfg, const char *section,
    const char *key)
{
	const struct config_node *n = NULL;

	if (cfg->root && cfg->root->type == CONFIG_NODE_MAP)
		n = config_node_get(cfg->root, section);
	if (n && n->type == CONFIG_NODE_MAP)
		n = config_node_get(n, key);
	else
		n = NULL;
	return n && n->where[0] ? n->where : cfg->file;
}

/* check_readable - a TLS file setting names a readable file. */
static void check_readable(const struct config *cfg, const char *key,
    const char *path, struct config_errors *errs)
{
	int fd;

	if (path[0] == '\0')
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		check_add(errs, "%s: key 'tls.%s': cannot read '%s': %s",
		    ctl_config_where(cfg, "tls", key), key, path, strerror(errno));
		return;
	}
	close(fd);
}

/* check_user - a worker user exists and is not root. */
static void check_user(const struct config *cfg, const char *section,
    const char *name, struct config_errors *errs)
{
	struct passwd *pw = getpwnam(name);

	if (pw == NULL)
		check_add(errs, "%s: key '%s.user': user '%s' does not exist "
		    "(scripts/setup creates it)", ctl_config_where(cfg, section, "user"),
		    section, name);
	else if (pw->pw_uid == 0 || pw->pw_gid == 0)
		check_add(errs, "%s: key '%s.user': '%s' has uid or gid 0; workers "
		    "must not run as root", ctl_config_where(cfg, section, "user"),
		    section, name);
}

/* ctl_config_check_extra - see elemtactl.h. */
size_t ctl_config_check_extra(const struct config *cfg,
    struct config_errors *errs)
{
	size_t before = errs->count;

	check_readable(cfg, "certificate", cfg->tls.certificate, errs);
	check_readable(cfg, "key", cfg->tls.key, errs);
	for (size_t i = 0; i < cfg->plugin_count; i++) {
		const struct config_plugin *p = &cfg->plugins[i];
		struct stat st;

		if (!p->enabled || p->path[0] == '\0')
			continue;
		if (stat(p->path, &st) == -1)
			check_add(errs, "%s: plugin '%s': path '%s': %s", p->where[0]
			    ? p->where : cfg->file, p->name, p->path, strerror(errno));
		else if (!S_ISREG(st.st_mode))
			check_add(errs, "%s: plugin '%s': path '%s' is not a regular "
			    "file", p->where[0] ? p->where : cfg->file, p->name,
			    p->path);
	}
	if (geteuid() == 0) {
		check_user(cfg, "server", cfg->server.user, errs);
		check_user(cfg, "policyd", cfg->policyd.user, errs);
	}
	return errs->count - before;
}

/* check_access_add - one entry of an access list. */
static void check_access_add(struct ctl_access *list, size_t *n,
    const char *path, int mode, const char *what)
{
	if (path[0] == '\0')
		return;
	list[*n].path = path;
	list[*n].mode = mode;
	list[*n].what = what;
	(*n)++;
}

/* ctl_config_check_access - see elemtactl.h. */
size_t ctl_config_check_access(const struct config *cfg,
    const struct ctl_users *users, bool with_dirs,
    struct config_errors *errs)
{
	static char spool_dirs[3][CONFIG_PATH_MAX + 16];
	static char socket_dir[CONFIG_PATH_MAX];
	struct ctl_access smtpd[16], policyd[16 + CONFIG_PLUGINS_MAX];
	size_t ns = 0, np = 0, before = errs->count;
	struct error err;
	char *slash;

	if (!users->root)
		return 0;
	/* Workers are exec'd unprivileged and read the rest themselves.  The
	 * TLS certificate and key are not on the list: elemtactl opens them
	 * and passes the descriptors, so the key may stay root's alone. */
	check_access_add(smtpd, &ns, cfg->file, R_OK, "the configuration");
	check_access_add(policyd, &np, cfg->file, R_OK, "the configuration");
	check_access_add(policyd, &np, cfg->auth.users_file, R_OK,
	    "auth.users_file");
	if (cfg->counters.backend == CONFIG_BACKEND_REDIS)
		check_access_add(policyd, &np, cfg->counters.redis.password_file,
		    R_OK, "counters.redis.password_file");
	for (size_t i = 0; i < cfg->plugin_count; i++)
		if (cfg->plugins[i].enabled)
			check_access_add(policyd, &np, cfg->plugins[i].path, R_OK,
			    "plugin");
	if (with_dirs) {
		static const char *const sub[] = { "tmp", "queue", "quarantine" };

		for (size_t i = 0; i < 3; i++) {
			snprintf(spool_dirs[i], sizeof(spool_dirs[i]), "%s/%s",
			    cfg->spool.path, sub[i]);
			check_access_add(smtpd, &ns, spool_dirs[i], R_OK | W_OK | X_OK,
			    "spool directory");
		}
		str_copy(socket_dir, cfg->policyd.socket, sizeof(socket_dir));
		slash = strrchr(socket_dir, '/');
		if (slash && slash != socket_dir) {
			*slash = '\0';
			check_access_add(smtpd, &ns, socket_dir, X_OK,
			    "the policy socket's directory");
		}
		if (cfg->counters.backend == CONFIG_BACKEND_LMDB)
			check_access_add(policyd, &np, cfg->counters.path,
			    R_OK | W_OK | X_OK, "counters.path");
	}
	if (ctl_privs_check_access(&users->smtpd, smtpd, ns, &err) == -1)
		check_add(errs, "%s (smtpd workers run as server.user and open it "
		    "themselves)", err.text);
	if (ctl_privs_check_access(&users->policyd, policyd, np, &err) == -1)
		check_add(errs, "%s (policyd workers run as policyd.user and open "
		    "it themselves)", err.text);
	return errs->count - before;
}

/* ==== Plugins ==== */

/* check_plugins_child - in the forked child: as policyd.user (when root),
 * load each enabled plugin alone, as policyd would, and write one line
 * per failure to fd.  Never returns. */
static void check_plugins_child(const struct config *cfg,
    const struct ctl_users *users, bool log_to_stderr, int fd)
    __attribute__((noreturn));
static void check_plugins_child(const struct config *cfg,
    const struct ctl_users *users, bool log_to_stderr, int fd)
{
	struct config *one = xmalloc(sizeof(*one));
	char msg[ERROR_TEXT_MAX + 2];
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Plugins log their own start-up at info: only problems here. */
	log_init("elemtactl", log_to_stderr, LOG_LEVEL_WARN);
	if (users != NULL && users->root
	    && ctl_privs_drop(&users->policyd, msg, sizeof(msg)) == -1) {
		dprintf(fd, "cannot check the plugins as %s: %s\n",
		    users->policyd.name, msg);
		_exit(1);
	}
	if (chdir("/") == -1) {
		/* policyd runs from / too; relative paths were resolved */
	}
	/* Each plugin alone in its own chain, so that every broken one is
	 * reported, not only the first; a one-entry copy of the config
	 * keeps the config's directory for the plugin's relative paths. */
	for (size_t i = 0; i < cfg->plugin_count; i++) {
		const struct config_plugin *p = &cfg->plugins[i];
		struct plugin_host *h;
		struct error err;
		char needle[CONFIG_PATH_MAX + 2];

		if (!p->enabled)
			continue;
		memcpy(one, cfg, sizeof(*one));
		one->plugins[0] = *p;
		one->plugin_count = 1;
		h = plugin_host_new(NULL, cfg->counters.ipv6_prefix);
		if (plugin_host_load_config(h, one, &err) == -1) {
			/* Name the entry's line unless the text already names
			 * a place in the file (an init error at its key). */
			snprintf(needle, sizeof(needle), "%s:", cfg->file);
			for (char *c = err.text; *c; c++)
				if (*c == '\n' || *c == '\r')
					*c = ' ';
			if (strstr(err.text, needle) != NULL || p->where[0] == '\0')
				dprintf(fd, "%s\n", err.text);
			else
				dprintf(fd, "%s: %s\n", p->where, err.text);
		}
		plugin_host_free(h);
	}
	_exit(0);
}

/* check_plugins_collect - read the child's lines (bounded in size and
 * time) into out; 0, or -1 when the child had to be killed. */
static int check_plugins_collect(int fd, pid_t child, struct strbuf *out)
{
	struct timespec start, now;
	char buf[4096];

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long left;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left = CHECK_PLUGINS_TIMEOUT_MS
		    - ((now.tv_sec - start.tv_sec) * 1000
		    + (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left <= 0) {
			kill(child, SIGKILL);
			return -1;
		}
		if (poll(&pfd, 1, (int)left) == -1) {
			if (errno == EINTR)
				continue;
			kill(child, SIGKILL);
			return -1;
		}
		if (pfd.revents == 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		/* A child writing past the limit is cut: the errs table
		 * holds no more anyway. */
		strbuf_append(out, buf, (size_t)n);
	}
}

/* ctl_config_check_plugins - see elemtactl.h. */
size_t ctl_config_check_plugins(const struct config *cfg,
    const struct ctl_users *users, bool log_to_stderr,
    struct config_errors *errs)
{
	struct strbuf out = STRBUF_INIT(CHECK_PLUGINS_OUT_MAX);
	size_t before = errs->count;
	bool any = false, killed;
	int pipefd[2], status;
	char how[96];
	pid_t child;

	for (size_t i = 0; i < cfg->plugin_count; i++)
		any |= cfg->plugins[i].enabled;
	if (!any)
		return 0;
	fflush(NULL);
	if (pipe2(pipefd, O_CLOEXEC) == -1) {
		check_add(errs, "cannot check the plugins: pipe: %s",
		    strerror(errno));
		return errs->count - before;
	}
	child = fork();
	if (child == -1) {
		check_add(errs, "cannot check the plugins: fork: %s",
		    strerror(errno));
		close(pipefd[0]);
		close(pipefd[1]);
		return errs->count - before;
	}
	if (child == 0) {
		close(pipefd[0]);
		check_plugins_child(cfg, users, log_to_stderr, pipefd[1]);
	}
	close(pipefd[1]);
	killed = check_plugins_collect(pipefd[0], child, &out) == -1;
	close(pipefd[0]);
	while (waitpid(child, &status, 0) == -1 && errno == EINTR)
		;
	for (char *save = NULL, *line = strtok_r(out.data ? out.data : "",
	    "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		check_add(errs, "%s", line);
	if (killed)
		check_add(errs, "%s: loading the plugins took longer than %d s "
		    "(a plugin's init hangs?)", cfg->file,
		    CHECK_PLUGINS_TIMEOUT_MS / 1000);
	else if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0
	    && errs->count == before))
		check_add(errs, "%s: loading the plugins failed: the checking "
		    "process %s (a plugin's init crashed?)", cfg->file,
		    ctl_exit_describe(status, how, sizeof(how)));
	strbuf_free(&out);
	return errs->count - before;
}

/* ctl_config_validate - see elemtactl.h. */
size_t ctl_config_validate(const struct config *cfg,
    const struct ctl_users *users, bool log_to_stderr,
    struct config_errors *errs)
{
	size_t before = errs->count;

	if (ctl_config_check_extra(cfg, errs) > 0)
		return errs->count - before;
	if (users != NULL && ctl_config_check_access(cfg, users, false,
	    errs) > 0)
		return errs->count - before;
	ctl_config_check_plugins(cfg, users, log_to_stderr, errs);
	return errs->count - before;
}

/* check_milters - connect to each milter and negotiate options: one
 * line per milter, reachable or not (a milter down is the operator's to
 * know, not a config error: policyd applies its fail_mode meanwhile). */
static void
check_milters(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->milter_count; i++) {
		const struct config_milter *m = &cfg->milters[i];
		struct error err;
		uint64_t t = m->timeout_ms < CHECK_MILTER_TIMEOUT_MS ?
		    m->timeout_ms : CHECK_MILTER_TIMEOUT_MS;

		if (milter_probe(m, t, &err) == 0)
			printf("milter '%s' (%s): reachable\n", m->name,
			    m->address);
		else
			printf("warning: milter '%s' (%s) is unreachable: %s\n",
			    m->name, m->address, err.text);
	}
}

/* ctl_check_config - see elemtactl.h. */
int ctl_check_config(const struct ctl_args *args)
{
	static struct config_errors errs;
	struct config *cfg;
	struct ctl_users users;
	struct error err;
	bool have_users;

	if (args->settings) {
		for (size_t i = 0; config_setting_name(i) != NULL; i++)
			printf("%s\n", config_setting_name(i));
		return 0;
	}
	if ((cfg = ctl_config_load(args->config_file)) == NULL)
		return 1;
	memset(&errs, 0, sizeof(errs));
	/* As root a missing user is reported by the checks themselves. */
	have_users = ctl_users_resolve(cfg, &users, &err) == 0;
	if (ctl_config_validate(cfg, have_users ? &users : NULL, true,
	    &errs) > 0) {
		for (size_t i = 0; i < errs.count; i++)
			fprintf(stderr, "%s\n", errs.text[i]);
		config_free(cfg);
		return 1;
	}
	if (args->verbose)
		config_dump(cfg, stdout);
	printf("%s: configuration OK\n", args->config_file);
	check_milters(cfg);
	config_free(cfg);
	return 0;
}
