/*
 * args.c - elemtactl's command line: "[-c FILE] COMMAND [OPTIONS]".
 *
 * Called by main.c.  Pure (no I/O) so tests/unit/test_supervisor.c can
 * feed it argument vectors.  Words after the command belong to the
 * command: test-plugin takes every one of them as its own (its --config is
 * the plugin's config, never elemtactl's -c), the other commands take
 * their options and -h/--help (the command's own usage).  For those
 * commands, which have no -c of their own, -c after the command is still
 * elemtactl's, as operators type `elemtactl start -c x.yaml` as often as
 * `elemtactl -c x.yaml start`.  --version, like --help, stands alone.
 */
#include <string.h>

#include "elemtactl.h"

static const struct {
	const char *name;
	enum ctl_command cmd;
	const char *usage;
} ctl_commands[] = {
	{ "start", CTL_CMD_START,
	    "usage: elemtactl [-c FILE] start [--foreground]\n"
	    "  bind the listeners and start the workers; --foreground (-f)\n"
	    "  stays attached and logs to stderr\n" },
	{ "stop", CTL_CMD_STOP,
	    "usage: elemtactl [-c FILE] stop\n"
	    "  stop accepting, let sessions finish within server.shutdown_grace\n"
	    "  (then they get 421 4.3.2), wait until everything has stopped\n" },
	{ "status", CTL_CMD_STATUS,
	    "usage: elemtactl [-c FILE] status [--json]\n"
	    "  running or not, uptime, workers, sessions and messages, the\n"
	    "  delivery queue, counter table fill; exit 0 running, 3 not\n"
	    "  running, 1 error\n" },
	{ "reload", CTL_CMD_RELOAD,
	    "usage: elemtactl [-c FILE] reload\n"
	    "  re-read and validate the configuration (as check-config does);\n"
	    "  a valid one replaces the workers gracefully, an invalid one is\n"
	    "  refused with its errors (exit 1) and the old one keeps running\n" },
	{ "check-config", CTL_CMD_CHECK_CONFIG,
	    "usage: elemtactl [-c FILE] check-config [-v]\n"
	    "  validate the configuration, load and initialise every enabled\n"
	    "  plugin; -v also prints every setting\n" },
	{ "test-plugin", CTL_CMD_TEST_PLUGIN,
	    "usage: elemtactl test-plugin PLUGIN [--config FILE] [--ip A] "
	    "[--helo H]\n"
	    "         [--auth-user U [--auth-ok|--auth-fail]] [--from A] "
	    "[--rcpt A]...\n"
	    "         [--data FILE.eml] [-v]\n"
	    "  load PLUGIN (a .so path, or a built-in name such as 'policy') in\n"
	    "  isolation with a scratch counter table and run the SMTP phases\n"
	    "  in order, one line per phase; exit 0 all continued, 1 refused,\n"
	    "  2 usage or load error.\n"
	    "  --config FILE   YAML file holding the plugin's config: map\n"
	    "  --ip A          client address (default 127.0.0.1)\n"
	    "  --helo H        EHLO name (default client.example)\n"
	    "  --auth-user U   run AUTH as U; --auth-ok (default) or --auth-fail\n"
	    "                  is the outcome of the password check\n"
	    "  --from A        run MAIL (--from '' is the null sender <>)\n"
	    "  --rcpt A        run RCPT, once per option\n"
	    "  --data FILE     run DATA and END-OF-MESSAGE with this message\n"
	    "  -v              show the plugin's and the host's log lines\n" },
	{ "queue", CTL_CMD_QUEUE,
	    "usage: elemtactl [-c FILE] queue [list [--json] | show ID | "
	    "flush [ID] |\n"
	    "         hold ID | release ID | delete ID]\n"
	    "  list: every queued message (id, size, arrival, state, sender)\n"
	    "  and each recipient's status and last reply; show: one message\n"
	    "  with its headers; flush: retry deferred recipients now (all\n"
	    "  messages without ID); hold/release: stop/resume delivery of a\n"
	    "  message; delete: remove it (once an attempt in flight ends)\n" },
	{ "help", CTL_CMD_HELP, NULL },
};

#define ARGS_COMMANDS (sizeof(ctl_commands) / sizeof(ctl_commands[0]))

/* ctl_command_name - the word that selects cmd. */
const char *ctl_command_name(enum ctl_command cmd)
{
	for (size_t i = 0; i < ARGS_COMMANDS; i++)
		if (ctl_commands[i].cmd == cmd)
			return ctl_commands[i].name;
	return "(none)";
}

/* ctl_command_usage - one command's usage (the global one for others). */
const char *ctl_command_usage(enum ctl_command cmd)
{
	for (size_t i = 0; i < ARGS_COMMANDS; i++)
		if (ctl_commands[i].cmd == cmd && ctl_commands[i].usage)
			return ctl_commands[i].usage;
	return ctl_usage();
}

/* ctl_usage - the usage text printed by -h and on a usage error. */
const char *ctl_usage(void)
{
	return
	    "usage: elemtactl [-c FILE] COMMAND [OPTIONS]\n"
	    "commands:\n"
	    "  start [--foreground]   bind the listeners and start the workers\n"
	    "  stop                   stop gracefully and wait until stopped\n"
	    "  status [--json]        running or not, and the workers (exit 0/3)\n"
	    "  reload                 re-read the configuration, replace workers\n"
	    "  check-config [-v]      validate the configuration and its plugins\n"
	    "  test-plugin PLUGIN ... try one plugin in isolation\n"
	    "  queue [list|show|flush|hold|release|delete] [ID]\n"
	    "                         the delivery queue (mailq, postsuper)\n"
	    "options:\n"
	    "  -c FILE                configuration file (default "
	    CONFIG_DEFAULT_FILE ")\n"
	    "  -h, --help             this text (COMMAND --help: that command's "
	    "usage)\n"
	    "  --version              versions of Elemta, the plugin ABI and the "
	    "libraries\n";
}

/* args_lookup_command - the command named word, or CTL_CMD_NONE. */
static enum ctl_command args_lookup_command(const char *word)
{
	for (size_t i = 0; i < ARGS_COMMANDS; i++)
		if (strcmp(ctl_commands[i].name, word) == 0)
			return ctl_commands[i].cmd;
	return CTL_CMD_NONE;
}

/* args_command_option - one word after the command; -1 when it is not
 * an option of that command. */
static int args_command_option(struct ctl_args *out, const char *a,
    struct error *err)
{
	switch (out->command) {
	case CTL_CMD_START:
		if (strcmp(a, "--foreground") == 0 || strcmp(a, "-f") == 0) {
			out->foreground = true;
			return 0;
		}
		break;
	case CTL_CMD_CHECK_CONFIG:
		if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			out->verbose = true;
			return 0;
		}
		/* Not in the usage: the name of every setting, one a line,
		 * for tests/integration/test_docs.py. */
		if (strcmp(a, "--settings") == 0) {
			out->settings = true;
			return 0;
		}
		break;
	case CTL_CMD_STATUS:
		if (strcmp(a, "--json") == 0) {
			out->json = true;
			return 0;
		}
		break;
	case CTL_CMD_QUEUE:
		if (strcmp(a, "--json") == 0) {
			out->json = true;
			return 0;
		}
		if (a[0] != '-' && out->rest_count < 2) {
			out->rest[out->rest_count++] = a;
			return 0;
		}
		break;
	default:
		break;
	}
	if (a[0] == '-')
		return error_set(err, "unknown option '%s' for %s", a,
		    ctl_command_name(out->command));
	return error_set(err, "unexpected argument '%s' for %s", a,
	    ctl_command_name(out->command));
}

/* args_global_config - -c FILE, -cFILE, --config FILE, --config=FILE at
 * argv[*i]: 1 consumed (and *i advanced past a separate value), 0 not
 * such an option, -1 malformed. */
static int args_global_config(int argc, char **argv, int *i,
    struct ctl_args *out, struct error *err)
{
	const char *a = argv[*i];

	if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
		if (*i + 1 >= argc || argv[*i + 1][0] == '\0')
			return error_set(err, "option %s needs a file name", a);
		out->config_file = argv[++*i];
		return 1;
	}
	if (strncmp(a, "--config=", 9) == 0 || strncmp(a, "-c", 2) == 0) {
		const char *v = a[1] == '-' ? a + 9 : a + 2;

		if (*v == '\0')
			return error_set(err, "option --config needs a file name");
		out->config_file = v;
		return 1;
	}
	return 0;
}

/* ctl_args_parse - see elemtactl.h. */
int ctl_args_parse(int argc, char **argv, struct ctl_args *out,
    struct error *err)
{
	memset(out, 0, sizeof(*out));
	out->config_file = CONFIG_DEFAULT_FILE;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int rc;

		/* test-plugin owns everything after its name. */
		if (out->command == CTL_CMD_TEST_PLUGIN) {
			if (out->rest_count >= CTL_ARGS_REST_MAX)
				return error_set(err, "too many arguments for "
				    "test-plugin");
			out->rest[out->rest_count++] = a;
			continue;
		}
		if ((rc = args_global_config(argc, argv, &i, out, err)) != 0) {
			if (rc == -1)
				return -1;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			if (out->command == CTL_CMD_NONE)
				out->command = CTL_CMD_HELP;
			else
				out->command_help = true;
			return 0;
		}
		if (out->command == CTL_CMD_NONE && strcmp(a, "--version") == 0) {
			out->command = CTL_CMD_VERSION;
			return 0;
		}
		if (out->command == CTL_CMD_NONE) {
			if (a[0] == '-')
				return error_set(err, "unknown option '%s'", a);
			out->command = args_lookup_command(a);
			if (out->command == CTL_CMD_NONE)
				return error_set(err, "unknown command '%s'", a);
			continue;
		}
		if (args_command_option(out, a, err) == -1)
			return -1;
	}
	if (out->command == CTL_CMD_NONE)
		return error_set(err, "no command given");
	if (out->command == CTL_CMD_TEST_PLUGIN && out->rest_count == 0)
		return error_set(err, "test-plugin needs a plugin name");
	return 0;
}
