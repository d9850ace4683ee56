/*
 * check_config.c - loading the configuration for every elemtactl command,
 * and `elemtactl check-config [-v]`.
 *
 * config.c validates the file itself; the checks here need the system
 * around it, which config.c cannot know: TLS files readable, plugin files
 * present, worker users existing (when run as root, since only then are
 * they used) and, as warnings, files a dropped worker could not read.
 * `start` runs the same checks, so what check-config accepts starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elemtactl.h"

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

/* check_where - "file:line:column" of section.key in the document, or
 * the file name when the key was not written (a default). */
static const char *check_where(const struct config *cfg, const char *section,
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
		    check_where(cfg, "tls", key), key, path, strerror(errno));
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
		    "(scripts/setup creates it)", check_where(cfg, section, "user"),
		    section, name);
	else if (pw->pw_uid == 0 || pw->pw_gid == 0)
		check_add(errs, "%s: key '%s.user': '%s' has uid or gid 0; workers "
		    "must not run as root", check_where(cfg, section, "user"),
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
	/* Workers are exec'd unprivileged: they read everything themselves. */
	check_access_add(smtpd, &ns, cfg->file, R_OK, "the configuration");
	check_access_add(smtpd, &ns, cfg->tls.certificate, R_OK,
	    "tls.certificate");
	check_access_add(smtpd, &ns, cfg->tls.key, R_OK, "tls.key");
	check_access_add(policyd, &np, cfg->file, R_OK, "the configuration");
	check_access_add(policyd, &np, cfg->auth.users_file, R_OK,
	    "auth.users_file");
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

/* ctl_check_config - see elemtactl.h. */
int ctl_check_config(const struct ctl_args *args)
{
	static struct config_errors errs;
	struct config *cfg = ctl_config_load(args->config_file);
	struct ctl_users users;
	struct error err;

	if (cfg == NULL)
		return 1;
	memset(&errs, 0, sizeof(errs));
	if (ctl_config_check_extra(cfg, &errs) > 0) {
		for (size_t i = 0; i < errs.count; i++)
			fprintf(stderr, "%s\n", errs.text[i]);
		config_free(cfg);
		return 1;
	}
	if (ctl_users_resolve(cfg, &users, &err) == 0
	    && ctl_config_check_access(cfg, &users, false, &errs) > 0) {
		for (size_t i = 0; i < errs.count; i++)
			fprintf(stderr, "elemtactl: %s\n", errs.text[i]);
		config_free(cfg);
		return 1;
	}
	if (args->verbose)
		config_dump(cfg, stdout);
	printf("%s: configuration OK\n", args->config_file);
	config_free(cfg);
	return 0;
}
