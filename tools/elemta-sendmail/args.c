/*
 * args.c - elemta-sendmail's command line, as sendmail(8) and Postfix's
 * sendmail(1) spell it (see sendmail.h).
 *
 * Called by main.c once, and by tests/unit/test_sendmail_args.c.  Options
 * come first and may be grouped ("-ti"); an option's value is attached
 * or the next argument ("-fme@x", "-f me@x"); "--" or the first argument
 * that is not an option starts the recipients.
 */
#include <string.h>

#include "sendmail.h"

/* Options whose value is accepted and ignored: -B body type, -h hop
 * count, -L syslog label, -N DSN notify, -O option=value, -p protocol,
 * -R DSN return, -V envelope id, -X log file. */
static const char args_ignored_with_value[] = "BhLNOpRVX";
/* ... and without a value: -m (me too), -n (no aliasing), -U (initial
 * user submission), -G (gateway), -A (submit.cf).  */
static const char args_ignored_flags[] = "mnUGA";

/* args_basename - the last path component. */
static const char *
args_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

/* args_mode_b - -bX. */
static int
args_mode_b(const char *rest, struct sm_args *a, struct error *err)
{
	if (strcmp(rest, "m") == 0)
		a->mode = SM_MODE_DELIVER;
	else if (strcmp(rest, "s") == 0)
		a->mode = SM_MODE_SMTP;
	else if (strcmp(rest, "p") == 0)
		a->mode = SM_MODE_QUEUE_LIST;
	else
		return error_set(err, "-b%.16s is not supported (-bm, -bs and "
		    "-bp are)", rest);
	return 0;
}

/* args_mode_q - -q (flush now), -qRsite, -qSsender, -qIid (flush: the
 * queue runs as a whole), -qINTERVAL (a daemon's run interval: nothing
 * to do, as in Postfix). */
static void
args_mode_q(const char *rest, struct sm_args *a)
{
	if (rest[0] == '\0' || strchr("RSIf", rest[0]) != NULL)
		a->mode = SM_MODE_QUEUE_FLUSH;
	else
		a->mode = SM_MODE_NOTHING;
}

/* args_value - the value of option c: the rest of this argument, else
 * the next one.  NULL with err when there is none. */
static const char *
args_value(char c, const char *rest, int argc, char **argv, int *i,
    struct error *err)
{
	if (rest[0] != '\0')
		return rest;
	if (*i + 1 >= argc) {
		error_set(err, "option -%c needs a value", c);
		return NULL;
	}
	return argv[++*i];
}

/* sm_args_parse - see sendmail.h. */
int
sm_args_parse(int argc, char **argv, struct sm_args *a, struct error *err)
{
	int i;

	memset(a, 0, sizeof(*a));
	a->mode = SM_MODE_DELIVER;
	if (argc > 0 && argv[0] != NULL &&
	    strcmp(args_basename(argv[0]), "mailq") == 0)
		a->mode = SM_MODE_QUEUE_LIST;
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "--") == 0) {
			i++;
			break;
		}
		if (arg[0] != '-' || arg[1] == '\0')
			break;
		for (const char *p = arg + 1; *p != '\0'; p++) {
			char c = *p;
			const char *v;

			if (c == 't' || c == 'i' || c == 'v') {
				if (c == 't')
					a->extract = true;
				else if (c == 'i')
					a->dot_is_data = true;
				else
					a->verbose = true;
				continue;
			}
			if (strchr(args_ignored_flags, c) != NULL)
				continue;
			if (c == 'b') {
				if (args_mode_b(p + 1, a, err) < 0)
					return -1;
			} else if (c == 'q') {
				args_mode_q(p + 1, a);
			} else if (c == 'o') {
				/* -oi is -i; every other -oXvalue is a sendmail.cf
				 * option: ignored, as Postfix does. */
				if (strcmp(p + 1, "i") == 0)
					a->dot_is_data = true;
			} else if (c == 'd') {
				/* -dX.Y: sendmail's debug flags, ignored */
			} else if (c == 'f' || c == 'r' || c == 'F' || c == 'C' ||
			    strchr(args_ignored_with_value, c) != NULL) {
				if ((v = args_value(c, p + 1, argc, argv, &i,
				    err)) == NULL)
					return -1;
				if (c == 'f' || c == 'r')
					a->sender = v;
				else if (c == 'F')
					a->fullname = v;
				else if (c == 'C')
					a->config = v;
			} else {
				return error_set(err, "unknown option -%c", c);
			}
			break;  /* the option took the rest of the argument */
		}
	}
	a->rcpts = argv + i;
	a->nrcpt = i < argc ? (size_t)(argc - i) : 0;
	return 0;
}
