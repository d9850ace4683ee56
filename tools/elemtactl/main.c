/*
 * main.c - elemtactl, the Elemta supervisor and control tool: command
 * dispatch.
 *
 *   elemtactl [-c FILE] start [--foreground] | stop | status | reload |
 *             check-config [-v] | test-plugin PLUGIN [phase options]
 *
 * SECURITY: run by the operator, as root in production (start binds ports
 * and drops each worker's privileges, see supervisor.c).  Its inputs are
 * the command line and the config file, both trusted.  Exit codes: 0 ok,
 * 1 error, 2 usage (and commands not implemented yet), 3 status: not
 * running.
 */
#include <stdio.h>
#include <string.h>

#include "elemtactl.h"

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
	switch (args.command) {
	case CTL_CMD_HELP:
		fputs(ctl_usage(), stdout);
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
	case CTL_CMD_TEST_PLUGIN:
		fprintf(stderr, "elemtactl: %s: not implemented yet\n",
		    ctl_command_name(args.command));
		return 2;
	case CTL_CMD_NONE:
		break;
	}
	fputs(ctl_usage(), stderr);
	return 2;
}
