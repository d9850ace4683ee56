/*
 * main.c - elemta-smtpd, the SMTP receiving worker.
 *
 * Started by elemtactl (fork + execve) with `-c CONFIG`, already running
 * as the unprivileged server.user, with the listening sockets on the
 * descriptors named in ELEMTA_LISTEN_FDS (same order as server.listen),
 * ELEMTA_FOREGROUND=1 to log to stderr and ELEMTA_WORKER_ID for the log,
 * and the connection table shared by all smtpd workers on ELEMTA_PEER_FD
 * with its own slot in ELEMTA_PEER_SLOT (server.c, peer_table.c).
 * For manual testing, `elemta-smtpd -c FILE --bind` binds server.listen
 * itself and creates the spool directories (and counts connections per
 * address in a table of its own).  `elemta-smtpd --version` prints the
 * versions of Elemta and of the libraries it runs with.
 *
 * Privileges: none needed; the process refuses nothing about its uid
 * because elemtactl is the one that drops root.  Untrusted inputs: every
 * byte from SMTP clients (session.c, command.c, data.c); policyd's
 * replies are parsed defensively (policy_client.c).  The config file is
 * trusted (written by the operator, validated by config_load).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <yaml.h>

#include "config.h"
#include "daemon_start.h"
#include "error.h"
#include "log.h"
#include "server.h"
#include "spool.h"
#include "version.h"

/* usage - the one-line synopsis, then exit 2. */
static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: elemta-smtpd [-c FILE] [--bind] | --version\n");
	exit(2);
}

/* smtpd_version - --version: no LMDB here, smtpd never opens the table. */
static void
smtpd_version(void)
{
	const struct version_lib libs[] = {
		VERSION_LIB_OPENSSL, VERSION_LIB_LIBEVENT, VERSION_LIB_LIBYAML,
	};

	version_print(stdout, "elemta-smtpd", libs, sizeof(libs) / sizeof(libs[0]));
}

/* raise_fd_limit - one descriptor per session (server.max_connections)
 * plus spool files and policy sockets: take the hard limit. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("setrlimit(RLIMIT_NOFILE): %s", strerror(errno));
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		log_debug("descriptor limit %llu", (unsigned long long)rl.rlim_cur);
}

/* main - parse the command line and config, run the event loop. */
int
main(int argc, char **argv)
{
	const char *path = CONFIG_DEFAULT_FILE;
	const char *wid = getenv("ELEMTA_WORKER_ID");
	bool bind_self = false, fg;
	struct config *cfg;
	struct error err;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--bind") == 0)
			bind_self = true;
		else if (strcmp(argv[i], "--version") == 0) {
			smtpd_version();
			return 0;
		} else
			usage();
	}
	fg = log_env_foreground() || bind_self;
	/* a client vanishing mid-write is EPIPE, not death (daemon_start) */
	cfg = daemon_start("elemta-smtpd", path, fg);
	if (cfg == NULL)
		return 1;
	raise_fd_limit();
	log_info("worker %s starting (config %s)", wid ? wid : "-", cfg->file);

	if (bind_self && spool_prepare(cfg->spool.path, &err) < 0) {
		log_err("%s", err.text);
		config_free(cfg);
		return 1;
	}
	if (server_run(cfg, bind_self ? SERVER_LISTEN_BIND :
	    SERVER_LISTEN_INHERITED, &err) < 0) {
		log_err("%s", err.text);
		config_free(cfg);
		return 1;
	}
	config_free(cfg);
	return 0;
}
