/*
 * test_reply.c - the SMTP/LMTP reply parser and EHLO keyword reader
 * (queued/reply.c): one test per promise of reply.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../queued/reply.h"

static struct reply r;

/* parse - reply_parse over a C string; returns the status, used in *u. */
static enum reply_status
parse(const char *s, size_t *u, struct error *err)
{
	return reply_parse(s, strlen(s), u, &r, err);
}

static void
test_single_line(void **state)
{
	size_t u;
	struct error err;
	const char *in = "250 2.1.0 Ok\r\nNEXT";

	assert_int_equal(parse(in, &u, &err), REPLY_DONE);
	assert_int_equal(u, strlen("250 2.1.0 Ok\r\n"));
	assert_int_equal(r.code, 250);
	assert_string_equal(r.enhanced, "2.1.0");
	assert_string_equal(r.text, "2.1.0 Ok");
	assert_string_equal(reply_message(&r), "Ok");
	assert_int_equal(r.nlines, 1);
	assert_int_equal(reply_class(&r), 2);
}

static void
test_multiline_and_partial(void **state)
{
	size_t u;
	struct error err;
	const char *in = "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n";

	/* Every strict prefix needs more; the whole is one reply. */
	for (size_t n = 0; n < strlen(in); n++)
		assert_int_equal(reply_parse(in, n, &u, &r, &err), REPLY_MORE);
	assert_int_equal(parse(in, &u, &err), REPLY_DONE);
	assert_int_equal(u, strlen(in));
	assert_int_equal(r.nlines, 3);
	assert_string_equal(r.text, "mx.example\nPIPELINING\nSIZE 1000");
	assert_string_equal(r.enhanced, "");
}

static void
test_bare_code_and_lf(void **state)
{
	size_t u;
	struct error err;

	assert_int_equal(parse("354\n", &u, &err), REPLY_DONE);
	assert_int_equal(r.code, 354);
	assert_int_equal(u, 4);
	assert_string_equal(r.text, "");
	assert_int_equal(parse("250-\r\n250 x\r\n", &u, &err), REPLY_DONE);
	assert_string_equal(r.text, "\nx");
}

static void
test_code_mismatch(void **state)
{
	size_t u;
	struct error err;

	assert_int_equal(parse("250-a\r\n251 b\r\n", &u, &err), REPLY_ERROR);
	assert_non_null(strstr(err.text, "251 after 250"));
}

static void
test_garbage(void **state)
{
	size_t u;
	struct error err;
	static const char *const bad[] = {
		"hello\r\n", "25\r\n", "2500 x\r\n", "250x\r\n", "199 x\r\n",
		"600 x\r\n", "260 x\r\n", "\r\n", "250 a\0b\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.text[0] = '\0';
		assert_int_equal(reply_parse(bad[i], i == 8 ? 10 :
		    strlen(bad[i]), &u, &r, &err), REPLY_ERROR);
		assert_true(err.text[0] != '\0');
	}
	/* A NUL is refused before the line is complete, too. */
	assert_int_equal(reply_parse("250 a\0", 6, &u, &r, &err), REPLY_ERROR);
}

static void
test_bounds(void **state)
{
	static char big[REPLY_TOTAL_MAX * 2];
	size_t u, o = 0;
	struct error err;

	/* A line over the limit: an error even without its LF. */
	memcpy(big, "250 ", 4);
	memset(big + 4, 'a', REPLY_LINE_MAX);
	assert_int_equal(reply_parse(big, REPLY_LINE_MAX + 4, &u, &r, &err),
	    REPLY_ERROR);
	/* Exactly at the limit, with its CRLF: fine. */
	memcpy(big + REPLY_LINE_MAX - 2, "\r\n", 2);
	assert_int_equal(reply_parse(big, REPLY_LINE_MAX, &u, &r, &err),
	    REPLY_DONE);
	/* Too many lines. */
	for (int i = 0; i <= REPLY_LINES_MAX; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, "250-x\r\n");
	assert_int_equal(reply_parse(big, o, &u, &r, &err), REPLY_ERROR);
	assert_non_null(strstr(err.text, "lines"));
	/* Too many bytes in fewer lines. */
	o = 0;
	for (int i = 0; i < 40; i++) {
		memcpy(big + o, "250-", 4);
		memset(big + o + 4, 'b', 500);
		memcpy(big + o + 504, "\r\n", 2);
		o += 506;
	}
	assert_int_equal(reply_parse(big, o, &u, &r, &err), REPLY_ERROR);
}

static void
test_controls_become_spaces(void **state)
{
	size_t u;
	struct error err;

	assert_int_equal(parse("550 5.1.1 a\rb\tc\x01\r\n", &u, &err),
	    REPLY_DONE);
	assert_string_equal(r.text, "5.1.1 a b c ");
}

static void
test_enhanced(void **state)
{
	size_t u;
	struct error err;

	assert_int_equal(parse("550 5.7.1 no\r\n", &u, &err), REPLY_DONE);
	assert_string_equal(r.enhanced, "5.7.1");
	/* Class mismatch (RFC 3463: ignored). */
	assert_int_equal(parse("550 4.7.1 no\r\n", &u, &err), REPLY_DONE);
	assert_string_equal(r.enhanced, "");
	assert_string_equal(reply_message(&r), "4.7.1 no");
	/* Malformed ones. */
	assert_int_equal(parse("550 5.1111.1 no\r\n", &u, &err), REPLY_DONE);
	assert_string_equal(r.enhanced, "");
	assert_int_equal(parse("550 5.1.1x no\r\n", &u, &err), REPLY_DONE);
	assert_string_equal(r.enhanced, "");
	assert_int_equal(parse("451 4.3.0\r\n", &u, &err), REPLY_DONE);
	assert_string_equal(r.enhanced, "4.3.0");
	assert_string_equal(reply_message(&r), "");
}

static void
test_outcome_and_oneline(void **state)
{
	size_t u;
	struct error err;
	struct outcome o;
	char line[256];

	assert_int_equal(parse("550-5.1.1 first\r\n550 5.1.1 second\r\n", &u,
	    &err), REPLY_DONE);
	assert_string_equal(reply_oneline(&r, line, sizeof(line)),
	    "550 5.1.1 first 5.1.1 second");
	reply_outcome(&r, &o);
	assert_int_equal(o.result, OUTCOME_PERMFAIL);
	assert_int_equal(o.code, 550);
	assert_string_equal(o.enhanced, "5.1.1");
	assert_int_equal(parse("452 too many\r\n", &u, &err), REPLY_DONE);
	reply_outcome(&r, &o);
	assert_int_equal(o.result, OUTCOME_TEMPFAIL);
	assert_string_equal(o.enhanced, "4.0.0");
	assert_int_equal(parse("250 ok\r\n", &u, &err), REPLY_DONE);
	reply_outcome(&r, &o);
	assert_int_equal(o.result, OUTCOME_DELIVERED);
	assert_int_equal(parse("354 go\r\n", &u, &err), REPLY_DONE);
	reply_outcome(&r, &o);
	assert_int_equal(o.result, OUTCOME_TEMPFAIL);
}

static void
test_ehlo_keywords(void **state)
{
	size_t u;
	struct error err;
	struct reply_ehlo e;

	assert_int_equal(parse("250-mx.example greets you PIPELINING\r\n"
	    "250-pipelining\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n"
	    "250-SMTPUTF8\r\n250-DSN\r\n250-STARTTLS\r\n"
	    "250-AUTH CRAM-MD5 LOGIN plain\r\n250-ENHANCEDSTATUSCODES\r\n"
	    "250-X-UNKNOWN foo\r\n250 CHUNKING\r\n", &u, &err), REPLY_DONE);
	reply_ehlo_parse(&r, &e);
	assert_true(e.pipelining && e.size && e.eightbitmime && e.smtputf8 &&
	    e.dsn && e.starttls && e.enhancedstatuscodes && e.chunking);
	assert_int_equal(e.size_max, 10240000);
	assert_int_equal(e.auth, REPLY_AUTH_PLAIN | REPLY_AUTH_LOGIN);

	/* The greeting line is not a keyword; old AUTH= spelling; SIZE
	 * without a (valid) number; a prefix is not the keyword. */
	assert_int_equal(parse("250-STARTTLS\r\n250-AUTH=LOGIN\r\n"
	    "250-SIZE 12x\r\n250 PIPELININGX\r\n", &u, &err), REPLY_DONE);
	reply_ehlo_parse(&r, &e);
	assert_false(e.starttls);
	assert_false(e.pipelining);
	assert_int_equal(e.auth, REPLY_AUTH_LOGIN);
	assert_true(e.size);
	assert_int_equal(e.size_max, 0);

	/* A refusal offers nothing. */
	assert_int_equal(parse("550-x\r\n550 STARTTLS\r\n", &u, &err),
	    REPLY_DONE);
	reply_ehlo_parse(&r, &e);
	assert_false(e.starttls);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_line),
		cmocka_unit_test(test_multiline_and_partial),
		cmocka_unit_test(test_bare_code_and_lf),
		cmocka_unit_test(test_code_mismatch),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_controls_become_spaces),
		cmocka_unit_test(test_enhanced),
		cmocka_unit_test(test_outcome_and_oneline),
		cmocka_unit_test(test_ehlo_keywords),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
