/*
 * main.c - elemta-policyd, the policy daemon: one worker process that
 * answers Postfix-policy-protocol requests by running the plugin chain.
 *
 * SYNOPSIS
 *     elemta-policyd [-c FILE]            (started by elemtactl)
 *     elemta-policyd [-c FILE] --bind     (standalone, for testing)
 *     elemta-policyd --version
 *
 * DESCRIPTION
 *     Started by elemtactl with the listening Unix socket (policyd.socket)
 *     on descriptor ELEMTA_POLICY_FD and, when policyd.postfix_listen is
 *     set, the Postfix listener on ELEMTA_POSTFIX_FD; ELEMTA_FOREGROUND=1
 *     logs to stderr, ELEMTA_WORKER_ID names the worker.  With --bind it
 *     binds policyd.socket and policyd.postfix_listen itself (one worker).
 *     Each worker opens the counter table (counters.path, or the Redis
 *     server of counters.redis with its password file) itself, after
 *     the fork, reads auth.users_file (re-read whenever it changes; a bad
 *     line or a missing file is logged, not fatal), loads the enabled
 *     plugins in config order - any failure is fatal with a line naming
 *     the plugin and file - and serves until SIGTERM, which finishes the
 *     request in hand and exits 0.
 *
 * SECURITY
 *     Runs as policyd.user: elemtactl dropped privileges before exec.
 *     Trusted: the config file, the environment and descriptors from
 *     elemtactl, the users file, and the plugins it names (they run in
 *     this process, after the loader's ownership and permission checks).
 *     Untrusted: every byte and descriptor arriving on the sockets,
 *     including the AUTH credentials verified here.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <event2/event.h>
#include <lmdb.h>
#include <openssl/crypto.h>
#include <yaml.h>

#include "auth.h"
#include "config.h"
#include "daemon_start.h"
#include "counter.h"
#include "listen.h"
#include "log.h"
#include "plugin_host.h"
#include "version.h"
#include "worker.h"

/* usage - the synopsis, to stderr; exits 2. */
static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: elemta-policyd [-c FILE] [--bind] | --version\n"
	    "  normally started by elemtactl; --bind listens on policyd.socket\n"
	    "  and policyd.postfix_listen itself (one worker, for testing)\n");
	exit(2);
}

/* policyd_version - --version: Elemta, the plugin ABI, the libraries. */
static void
policyd_version(void)
{
	const struct version_lib libs[] = {
		VERSION_LIB_LMDB, VERSION_LIB_OPENSSL, VERSION_LIB_LIBEVENT,
		VERSION_LIB_LIBYAML,
	};

	version_print(stdout, "elemta-policyd", libs,
	    sizeof(libs) / sizeof(libs[0]));
}

/* env_fd - a listening socket inherited from elemtactl, or -1 when the
 * variable is unset. */
static int
env_fd(const char *name)
{
	struct error err;
	int fd = -1;

	if (listen_inherited(name, &fd, &err) < 0)
		fatal("%s", err.text);
	return fd;
}

/* bind_unix - --bind: a listening Unix socket at path. */
static int
bind_unix(const char *path, mode_t mode)
{
	struct error err;
	int fd = listen_unix(path, mode, false, 0, 0, &err);

	if (fd < 0)
		fatal("%s", err.text);
	return fd;
}

/* bind_postfix - --bind: policyd.postfix_listen, Unix or TCP. */
static int
bind_postfix(const struct config *cfg)
{
	const struct config_endpoint *ep = &cfg->policyd.postfix_endpoint;
	struct error err;
	int fd;

	if (ep->path[0] != '\0')
		return bind_unix(ep->path, 0666);
	fd = listen_tcp(ep->host, ep->port, cfg->policyd.postfix_listen, &err);
	if (fd < 0)
		fatal("%s", err.text);
	return fd;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "bind", no_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = CONFIG_DEFAULT_FILE;
	const char *wid = getenv("ELEMTA_WORKER_ID");
	struct counter_store *cs = NULL;
	struct auth_users *users = NULL;
	struct plugin_host *host;
	struct config *cfg;
	struct error err;
	char names[512];
	bool standalone = false, to_stderr;
	int policy_fd, postfix_fd, opt;
	bool lmdb;

	while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			file = optarg;
			break;
		case 'b':
			standalone = true;
			break;
		case 'V':
			policyd_version();
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	to_stderr = standalone || log_env_foreground();
	cfg = daemon_start("elemta-policyd", file, to_stderr);
	if (cfg == NULL)
		return 1;

	if (standalone) {
		policy_fd = bind_unix(cfg->policyd.socket, 0660);
		postfix_fd = cfg->policyd.postfix_listen[0] ?
		    bind_postfix(cfg) : -1;
	} else {
		policy_fd = env_fd("ELEMTA_POLICY_FD");
		postfix_fd = env_fd("ELEMTA_POSTFIX_FD");
		if (policy_fd < 0 && postfix_fd < 0)
			fatal("no listening socket: start me with elemtactl, or "
			    "use --bind (ELEMTA_POLICY_FD is not set)");
	}

	lmdb = cfg->counters.backend == CONFIG_BACKEND_LMDB;
	if (standalone && lmdb) {
		/* No elemtactl: prepare the table as it would. */
		bool discarded = false;

		if (counter_store_prepare(cfg->counters.path,
		    (enum counter_sync)cfg->counters.sync, &discarded, &err) != 0)
			fatal("counter table %s: %s", cfg->counters.path, err.text);
	}
	/* Redis: the password file is read here, before the first request;
	 * an unreachable server is logged and ridden out, not fatal. */
	if (counter_store_open_config(cfg, false, &cs, &err) != 0)
		fatal("counter table (%s): %s", config_enum_name(
		    "counters.backend", (int)cfg->counters.backend), err.text);
	host = plugin_host_new(cs, cfg->counters.ipv6_prefix);
	if (cfg->auth.users_file[0] != '\0') {
		/* Problems are logged by the loader; a missing file is not
		 * fatal: every AUTH then fails until it appears. */
		users = auth_users_open(cfg->auth.users_file);
		plugin_host_set_auth(host, users);
		/* A delay must stay well inside smtpd's wait for the answer. */
		plugin_host_set_auth_limits(host,
		    cfg->auth.max_attempts_per_minute,
		    (uint32_t)(cfg->policyd.timeout_ms / 2));
	}
	if (plugin_host_load_config(host, cfg, &err) != 0)
		fatal("%s", err.text);

	names[0] = '\0';
	for (size_t i = 0; i < plugin_host_count(host); i++) {
		size_t n = strlen(names);

		snprintf(names + n, sizeof(names) - n, "%s%s", n ? ", " : "",
		    plugin_host_name(host, i));
	}
	log_info("worker %s ready: plugins: %s; milters: %zu", wid ? wid : "0",
	    names[0] ? names : "(none)", cfg->milter_count);
	if (worker_run(host, cs, cfg, policy_fd, postfix_fd, &err) != 0)
		fatal("%s", err.text);

	plugin_host_free(host);
	auth_users_free(users);
	if (counter_flush(cs, &err) != 0)
		log_warn("counter table flush: %s", err.text);
	counter_store_close(cs);
	if (standalone) {
		if (lmdb)
			counter_store_mark_clean(cfg->counters.path);
		unlink(cfg->policyd.socket);
		if (cfg->policyd.postfix_endpoint.path[0] != '\0')
			unlink(cfg->policyd.postfix_endpoint.path);
	}
	config_free(cfg);
	log_info("stopped");
	return 0;
}
