/*
 * main.c - elemtactl, the Elemta supervisor and control tool: command
 * dispatch.
 *
 *   elemtactl [-c FILE] start [--foreground] | stop | status | reload |
 *             check-config [-v] | test-plugin PLUGIN [phase options]
 *   elemtactl --version
 *
 * SECURITY: run by the operator, as root in production (start binds ports
 * and drops each worker's privileges, see supervisor.c).  Its inputs are
 * the command line and the config file, both trusted.  Exit codes: 0 ok,
 * 1 error (test-plugin: a phase was refused), 2 usage (test-plugin: also
 * a plugin that cannot be loaded), 3 status: not running.
 */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <lmdb.h>
#include <openssl/crypto.h>
#include <yaml.h>

#include "elemtactl.h"
#include "version.h"

/* ctl_version - --version: elemtactl links the plugin host (test-plugin,
 * check-config), so every library policyd runs with. */
static void
ctl_version(void)
{
	const struct version_lib libs[] = {
		VERSION_LIB_LMDB, VERSION_LIB_OPENSSL, VERSION_LIB_LIBEVENT,
		VERSION_LIB_LIBYAML,
	};

	version_print(stdout, "elemtactl", libs, sizeof(libs) / sizeof(libs[0]));
}

/* main - parse, dispatch. */
int main(int argc, char **argv)
{
	struct ctl_args args;
	struct error err;

	if (ctl_args_parse(argc, argv, &args, &err) == -1) {
		fprintf(stderr, "elemtactl: %s\nrun 'elemtactl --help' for usage\n",
		    err.text);
		return 2;
	}
	if (args.command_help) {
		fputs(ctl_command_usage(args.command), stdout);
		return 0;
	}
	switch (args.command) {
	case CTL_CMD_HELP:
		fputs(ctl_usage(), stdout);
		return 0;
	case CTL_CMD_VERSION:
		ctl_version();
		return 0;
	case CTL_CMD_START:
		return ctl_start(&args);
	case CTL_CMD_STOP:
		return ctl_stop(&args);
	case CTL_CMD_STATUS:
		return ctl_status(&args);
	case CTL_CMD_CHECK_CONFIG:
		return ctl_check_config(&args);
	case CTL_CMD_RELOAD:
		return ctl_reload(&args);
	case CTL_CMD_TEST_PLUGIN:
		return ctl_test_plugin(&args);
	case CTL_CMD_NONE:
		break;
	}
	fputs(ctl_usage(), stderr);
	return 2;
}
