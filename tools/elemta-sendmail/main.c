/*
 * main.c - elemta-sendmail: sendmail(1) for local programs, submitting
 * through smtpd's local listener (see sendmail.h for the pieces).
 *
 * Runs as whoever calls it (cron, a web server's PHP, a script); needs no
 * privilege and reads no secret: the config file only, for the first
 * server.listen entry of mode local, server.hostname and
 * server.max_message_size.  The config is -C FILE, else $ELEMTA_CONFIG,
 * else /etc/elemta/elemta.yaml.  -bp and -q run `elemtactl queue list`
 * and `elemtactl queue flush` (elemtactl from this program's directory,
 * else from PATH).
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <yaml.h>

#include "config.h"
#include "sendmail.h"
#include "version.h"

/* Message bytes allowed beyond server.max_message_size for the headers
 * added here (smtpd judges the real size). */
#define SM_HEADER_ROOM (64 * 1024)

/* main_local_socket - the first local listener's socket path, or NULL. */
static const char *
main_local_socket(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->server.listen_count; i++)
		if (cfg->server.listen[i].mode == CONFIG_MODE_LOCAL)
			return cfg->server.listen[i].path;
	return NULL;
}

/* main_elemtactl - exec `elemtactl -c config queue verb`; returns only on
 * failure. */
static int
main_elemtactl(const char *config, const char *verb)
{
	char self[PATH_MAX], path[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *argv[] = { "elemtactl", "-c", (char *)config, "queue",
	    (char *)verb, NULL };

	if (n > 0) {
		char *slash;

		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			snprintf(path, sizeof(path), "%s/elemtactl", self);
			if (access(path, X_OK) == 0)
				execv(path, argv);
		}
	}
	execvp("elemtactl", argv);
	fprintf(stderr, "%s: cannot run elemtactl: %s\n", SM_PROG,
	    strerror(errno));
	return EX_UNAVAILABLE;
}

/* main_sender - the envelope sender: -f's ("<>" or "" is the null
 * sender; otherwise exactly one address, parsed as a header's would be,
 * qualified), else user@hostname.  -1 with err for a -f that is not one
 * address. */
static int
main_sender(const char *given, const char *user, const char *domain,
    char *out, size_t size, struct error *err)
{
	struct sm_rcpts one = { 0 };

	if (given == NULL) {
		snprintf(out, size, "%s@%s", user, domain);
		return 0;
	}
	if (strcmp(given, "") == 0 || strcmp(given, "<>") == 0) {
		out[0] = '\0';
		return 0;
	}
	if (sm_addr_list_parse(given, domain, &one, err) < 0) {
		error_prefix(err, "-f");
		return -1;
	}
	if (one.n != 1) {
		sm_rcpts_free(&one);
		return error_set(err, "-f '%.80s' is not one address", given);
	}
	str_copy(out, one.v[0], size);
	sm_rcpts_free(&one);
	return 0;
}

/* main_fullname - -F's, else the password entry's (its GECOS up to the
 * first comma). */
static void
main_fullname(const char *given, const struct passwd *pw, char *out,
    size_t size)
{
	char *comma;

	str_copy(out, given != NULL ? given : pw != NULL && pw->pw_gecos ?
	    pw->pw_gecos : "", size);
	if (given == NULL && (comma = strchr(out, ',')) != NULL)
		*comma = '\0';
}

/* main_deliver - read, fix up and submit one message. */
static int
main_deliver(const struct sm_args *a, const struct config *cfg,
    const char *socket_path)
{
	struct passwd *pw = getpwuid(getuid());
	char user[256], sender[SM_ADDRESS_MAX + 256], fullname[256];
	char from[SM_ADDRESS_MAX + 256], unique[64];
	const char *domain = cfg->server.hostname;
	size_t max = (size_t)cfg->server.max_message_size;
	struct strbuf raw = STRBUF_INIT(0), msg = STRBUF_INIT(max +
	    SM_HEADER_ROOM);
	struct sm_rcpts rcpts = { 0 };
	struct sm_fixup fx;
	struct error err;
	int status;

	if (pw != NULL)
		str_copy(user, pw->pw_name, sizeof(user));
	else
		snprintf(user, sizeof(user), "#%lu", (unsigned long)getuid());
	if (main_sender(a->sender, user, domain, sender, sizeof(sender),
	    &err) < 0) {
		fprintf(stderr, "%s: message not sent: %s\n", SM_PROG, err.text);
		status = EX_USAGE;
		goto out;
	}
	main_fullname(a->fullname, pw, fullname, sizeof(fullname));
	for (size_t i = 0; i < a->nrcpt; i++)
		if (sm_addr_list_parse(a->rcpts[i], domain, &rcpts, &err) < 0) {
			fprintf(stderr, "%s: message not sent: %s\n", SM_PROG,
			    err.text);
			status = EX_USAGE;
			goto out;
		}
	if ((status = sm_message_read(STDIN_FILENO, a->dot_is_data, max, &raw,
	    &err)) < 0) {
		fprintf(stderr, "%s: message not sent: %s\n", SM_PROG, err.text);
		status = status == -1 ? EX_DATAERR : EX_IOERR;
		goto out;
	}
	memset(&fx, 0, sizeof(fx));
	/* The From: a missing one gets: the envelope sender, or for the
	 * null sender the user's own address. */
	if (sender[0] != '\0')
		str_copy(from, sender, sizeof(from));
	else
		snprintf(from, sizeof(from), "%s@%s", user, domain);
	snprintf(unique, sizeof(unique), "%ld.%lx", (long)getpid(),
	    (unsigned long)random());
	fx.from = from;
	fx.fullname = fullname;
	fx.domain = domain;
	fx.unique = unique;
	fx.now = time(NULL);
	fx.extract = a->extract;
	if (sm_message_fix(raw.data != NULL ? raw.data : "", raw.len, &fx, &msg,
	    &rcpts, &err) < 0) {
		fprintf(stderr, "%s: message not sent: %s\n", SM_PROG, err.text);
		status = EX_DATAERR;
		goto out;
	}
	if (rcpts.n == 0) {
		fprintf(stderr, "%s: message not sent: no recipients (give them "
		    "as arguments, or -t to take them from To:, Cc: and Bcc:)\n",
		    SM_PROG);
		status = EX_USAGE;
		goto out;
	}
	status = sm_submit(socket_path, sender, &rcpts, msg.data, msg.len,
	    a->verbose);
out:
	sm_rcpts_free(&rcpts);
	strbuf_free(&raw);
	strbuf_free(&msg);
	return status;
}

int
main(int argc, char **argv)
{
	struct sm_args a;
	struct error err;
	struct config_errors errs;
	struct config *cfg;
	const char *config, *socket_path;
	int status;

	signal(SIGPIPE, SIG_IGN);
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		const struct version_lib libs[] = { VERSION_LIB_LIBYAML };

		version_print(stdout, SM_PROG, libs, 1);
		return EX_OK;
	}
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	if (sm_args_parse(argc, argv, &a, &err) < 0) {
		fprintf(stderr, "%s: %s\nusage: %s [-t] [-i] [-f sender] "
		    "[-F name] [-C config] [-bm | -bs | -bp | -q] "
		    "[recipient ...]\n", SM_PROG, err.text, SM_PROG);
		return EX_USAGE;
	}
	config = a.config;
	if (config == NULL)
		config = getenv("ELEMTA_CONFIG");
	if (config == NULL || config[0] == '\0')
		config = CONFIG_DEFAULT_FILE;
	switch (a.mode) {
	case SM_MODE_NOTHING:
		return EX_OK;
	case SM_MODE_QUEUE_LIST:
		return main_elemtactl(config, "list");
	case SM_MODE_QUEUE_FLUSH:
		return main_elemtactl(config, "flush");
	case SM_MODE_DELIVER:
	case SM_MODE_SMTP:
		break;
	}
	cfg = config_load(config, &errs);
	if (cfg == NULL) {
		fprintf(stderr, "%s: message not sent: cannot use the "
		    "configuration: %s\n", SM_PROG, errs.count > 0 ?
		    errs.text[0] : config);
		return EX_CONFIG;
	}
	socket_path = main_local_socket(cfg);
	if (socket_path == NULL) {
		fprintf(stderr, "%s: message not sent: %s has no local listener "
		    "(a server.listen entry with mode: local)\n", SM_PROG,
		    cfg->file);
		config_free(cfg);
		return EX_CONFIG;
	}
	if (a.mode == SM_MODE_SMTP)
		status = sm_relay(socket_path);
	else
		status = main_deliver(&a, cfg, socket_path);
	config_free(cfg);
	return status;
}
