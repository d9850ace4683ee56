/*
 * test_sendmail_args.c - unit tests for tools/elemta-sendmail/args.c:
 * the sendmail command line as cron, PHP and scripts write it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../tools/elemta-sendmail/sendmail.h"

#define ARGC(v) ((int)(sizeof(v) / sizeof((v)[0])))

static void
test_defaults(void **state)
{
	char *v[] = { "sendmail", "a@x" };
	struct sm_args a;
	struct error err;

	assert_int_equal(sm_args_parse(ARGC(v), v, &a, &err), 0);
	assert_int_equal(a.mode, SM_MODE_DELIVER);
	assert_false(a.extract);
	assert_false(a.dot_is_data);
	assert_null(a.sender);
	assert_null(a.fullname);
	assert_null(a.config);
	assert_int_equal(a.nrcpt, 1);
	assert_string_equal(a.rcpts[0], "a@x");
}

static void
test_php_and_cron(void **state)
{
	/* PHP's mail(): "sendmail -t -i"; cron: "sendmail -FCronDaemon -i
	 * -B8BITMIME -oem user". */
	char *php[] = { "/usr/sbin/sendmail", "-t", "-i" };
	char *cron[] = { "sendmail", "-FCronDaemon", "-i", "-B8BITMIME", "-oem",
	    "root" };
	struct sm_args a;
	struct error err;

	assert_int_equal(sm_args_parse(ARGC(php), php, &a, &err), 0);
	assert_true(a.extract);
	assert_true(a.dot_is_data);
	assert_int_equal(a.nrcpt, 0);
	assert_int_equal(sm_args_parse(ARGC(cron), cron, &a, &err), 0);
	assert_string_equal(a.fullname, "CronDaemon");
	assert_true(a.dot_is_data);
	assert_false(a.extract);
	assert_int_equal(a.nrcpt, 1);
	assert_string_equal(a.rcpts[0], "root");
}

static void
test_values_attached_or_separate(void **state)
{
	char *v[] = { "sendmail", "-f", "me@x", "-F", "My Name", "-Cconf.yaml",
	    "-N", "never", "-R", "hdrs", "--", "-notanoption@x" };
	char *r[] = { "sendmail", "-rbounce@x", "-ti" };
	struct sm_args a;
	struct error err;

	assert_int_equal(sm_args_parse(ARGC(v), v, &a, &err), 0);
	assert_string_equal(a.sender, "me@x");
	assert_string_equal(a.fullname, "My Name");
	assert_string_equal(a.config, "conf.yaml");
	assert_int_equal(a.nrcpt, 1);
	assert_string_equal(a.rcpts[0], "-notanoption@x");
	assert_int_equal(sm_args_parse(ARGC(r), r, &a, &err), 0);
	assert_string_equal(a.sender, "bounce@x");
	assert_true(a.extract);
	assert_true(a.dot_is_data);
}

static void
test_modes(void **state)
{
	char *bs[] = { "sendmail", "-bs" };
	char *bp[] = { "sendmail", "-bp" };
	char *bm[] = { "sendmail", "-bp", "-bm", "x@y" };
	char *q[] = { "sendmail", "-q" };
	char *qr[] = { "sendmail", "-qRexample.com" };
	char *qi[] = { "sendmail", "-q30m" };
	char *mailq[] = { "/usr/bin/mailq" };
	struct sm_args a;
	struct error err;

	assert_int_equal(sm_args_parse(ARGC(bs), bs, &a, &err), 0);
	assert_int_equal(a.mode, SM_MODE_SMTP);
	assert_int_equal(sm_args_parse(ARGC(bp), bp, &a, &err), 0);
	assert_int_equal(a.mode, SM_MODE_QUEUE_LIST);
	assert_int_equal(sm_args_parse(ARGC(bm), bm, &a, &err), 0);
	assert_int_equal(a.mode, SM_MODE_DELIVER);
	assert_int_equal(sm_args_parse(ARGC(q), q, &a, &err), 0);
	assert_int_equal(a.mode, SM_MODE_QUEUE_FLUSH);
	assert_int_equal(sm_args_parse(ARGC(qr), qr, &a, &err), 0);
	assert_int_equal(a.mode, SM_MODE_QUEUE_FLUSH);
	assert_int_equal(sm_args_parse(ARGC(qi), qi, &a, &err), 0);
	assert_int_equal(a.mode, SM_MODE_NOTHING);
	assert_int_equal(sm_args_parse(ARGC(mailq), mailq, &a, &err), 0);
	assert_int_equal(a.mode, SM_MODE_QUEUE_LIST);
}

static void
test_ignored_options(void **state)
{
	char *v[] = { "sendmail", "-oem", "-odi", "-oQ/var/spool", "-m", "-n",
	    "-U", "-d0.1", "-h", "17", "-L", "label", "-Vid", "-X", "log",
	    "a@x" };
	struct sm_args a;
	struct error err;

	assert_int_equal(sm_args_parse(ARGC(v), v, &a, &err), 0);
	assert_false(a.dot_is_data);     /* -oem, -odi are not -oi */
	assert_int_equal(a.mode, SM_MODE_DELIVER);
	assert_int_equal(a.nrcpt, 1);
	assert_string_equal(a.rcpts[0], "a@x");
}

static void
test_errors(void **state)
{
	char *unknown[] = { "sendmail", "-Z" };
	char *novalue[] = { "sendmail", "-f" };
	char *bd[] = { "sendmail", "-bd" };
	struct sm_args a;
	struct error err;

	assert_int_equal(sm_args_parse(ARGC(unknown), unknown, &a, &err), -1);
	assert_non_null(strstr(err.text, "-Z"));
	assert_int_equal(sm_args_parse(ARGC(novalue), novalue, &a, &err), -1);
	assert_non_null(strstr(err.text, "-f needs a value"));
	assert_int_equal(sm_args_parse(ARGC(bd), bd, &a, &err), -1);
	assert_non_null(strstr(err.text, "-bd"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_php_and_cron),
		cmocka_unit_test(test_values_attached_or_separate),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_ignored_options),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
