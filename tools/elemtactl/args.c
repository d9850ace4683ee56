/*
 * args.c - elemtactl's command line: "[-c FILE] COMMAND [OPTIONS]".
 *
 * Called by main.c.  Pure (no I/O) so tests/unit/test_supervisor.c can
 * feed it argument vectors.  -c is global and may appear before or after
 * the command, as operators type `elemtactl start -c x.yaml` as often as
 * `elemtactl -c x.yaml start`.
 */
#include <string.h>

#include "elemtactl.h"

static const struct {
	const char *name;
	enum ctl_command cmd;
} ctl_commands[] = {
	{ "start", CTL_CMD_START },
	{ "stop", CTL_CMD_STOP },
	{ "status", CTL_CMD_STATUS },
	{ "reload", CTL_CMD_RELOAD },
	{ "check-config", CTL_CMD_CHECK_CONFIG },
	{ "test-plugin", CTL_CMD_TEST_PLUGIN },
	{ "help", CTL_CMD_HELP },
};

/* ctl_command_name - the word that selects cmd. */
const char *ctl_command_name(enum ctl_command cmd)
{
	for (size_t i = 0; i < sizeof(ctl_commands) / sizeof(ctl_commands[0]); i++)
		if (ctl_commands[i].cmd == cmd)
			return ctl_commands[i].name;
	return "(none)";
}

/* ctl_usage - the usage text printed by -h and on a usage error. */
const char *ctl_usage(void)
{
	return
	    "usage: elemtactl [-c FILE] COMMAND [OPTIONS]\n"
	    "commands:\n"
	    "  start [--foreground]   bind the listeners and start the workers\n"
	    "  stop                   stop gracefully and wait until stopped\n"
	    "  status                 running or not, and the workers (exit 0/3)\n"
	    "  reload                 re-read the configuration (not implemented yet)\n"
	    "  check-config [-v]      validate the configuration (-v: show settings)\n"
	    "  test-plugin PLUGIN ... try one plugin (not implemented yet)\n"
	    "options:\n"
	    "  -c FILE                configuration file (default "
	    CONFIG_DEFAULT_FILE ")\n"
	    "  -h, --help             this text\n";
}

/* args_lookup_command - the command named word, or CTL_CMD_NONE. */
static enum ctl_command args_lookup_command(const char *word)
{
	for (size_t i = 0; i < sizeof(ctl_commands) / sizeof(ctl_commands[0]); i++)
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
		break;
	case CTL_CMD_TEST_PLUGIN:
		if (out->rest_count >= CTL_ARGS_REST_MAX)
			return error_set(err, "too many arguments for test-plugin");
		out->rest[out->rest_count++] = a;
		return 0;
	default:
		break;
	}
	if (a[0] == '-')
		return error_set(err, "unknown option '%s' for %s", a,
		    ctl_command_name(out->command));
	return error_set(err, "unexpected argument '%s' for %s", a,
	    ctl_command_name(out->command));
}

/* ctl_args_parse - see elemtactl.h. */
int ctl_args_parse(int argc, char **argv, struct ctl_args *out,
    struct error *err)
{
	memset(out, 0, sizeof(*out));
	out->config_file = CONFIG_DEFAULT_FILE;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc || argv[i + 1][0] == '\0')
				return error_set(err, "option %s needs a file name", a);
			out->config_file = argv[++i];
			continue;
		}
		if (strncmp(a, "--config=", 9) == 0 || strncmp(a, "-c", 2) == 0) {
			const char *v = a[1] == '-' ? a + 9 : a + 2;
			if (*v == '\0')
				return error_set(err, "option --config needs a file name");
			out->config_file = v;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			out->command = CTL_CMD_HELP;
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
