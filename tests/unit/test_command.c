/*
 * test_command.c - unit tests for smtpd/command.c: verbs, HELO
 * arguments, MAIL/RCPT parameters and RFC 5321 address syntax, one test
 * per promise of command.h (including its reply-code choices).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../smtpd/command.h"

/* expect_err - assert a failed parse produced code/enhanced. */
static void
expect_err(int rc, const struct command_error *err, int code, const char *enh)
{
	assert_int_equal(rc, -1);
	assert_int_equal(err->code, code);
	assert_string_equal(err->enhanced, enh);
}

static void
test_verbs(void **state)
{
	static const struct { const char *line; enum command_id id;
	    const char *arg; } cases[] = {
		{ "HELO a.example", CMD_HELO, "a.example" },
		{ "ehlo a.example", CMD_EHLO, "a.example" },
		{ "EhLo   a.example  ", CMD_EHLO, "a.example" },
		{ "MAIL FROM:<a@b.example>", CMD_MAIL, "FROM:<a@b.example>" },
		{ "rcpt TO:<a@b.example>", CMD_RCPT, "TO:<a@b.example>" },
		{ "DATA", CMD_DATA, "" },
		{ "data ", CMD_DATA, "" },
		{ "RSET", CMD_RSET, "" },
		{ "NOOP anything", CMD_NOOP, "anything" },
		{ "QUIT", CMD_QUIT, "" },
		{ "HELP", CMD_HELP, "" },
		{ "VRFY bob", CMD_VRFY, "bob" },
		{ "EXPN list", CMD_EXPN, "list" },
		{ "STARTTLS", CMD_STARTTLS, "" },
		{ "AUTH PLAIN", CMD_AUTH, "PLAIN" },
		{ "BDAT 10 LAST", CMD_BDAT, "10 LAST" },
		{ "GET / HTTP/1.0", CMD_FORBIDDEN, "/ HTTP/1.0" },
		{ "POST /x HTTP/1.1", CMD_FORBIDDEN, "/x HTTP/1.1" },
		{ "CONNECT 1.2.3.4:25 HTTP/1.0", CMD_FORBIDDEN,
		  "1.2.3.4:25 HTTP/1.0" },
		{ "MAILX FROM:<a@b>", CMD_UNKNOWN, "FROM:<a@b>" },
		{ "", CMD_UNKNOWN, "" },
		{ "HEL", CMD_UNKNOWN, "" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct command c;

		command_parse(cases[i].line, &c);
		assert_int_equal(c.id, cases[i].id);
		assert_int_equal(c.arg_len, strlen(cases[i].arg));
		assert_memory_equal(c.arg, cases[i].arg, c.arg_len);
	}
	assert_string_equal(command_name(CMD_MAIL), "MAIL");
	assert_string_equal(command_stat_name(CMD_EHLO), "ehlo");
}

static void
test_chars(void **state)
{
	struct command_error err;

	assert_int_equal(command_check_chars("NOOP\tx", 6, &err), 0);
	expect_err(command_check_chars("NO\0OP", 5, &err), &err, 500, "5.5.2");
	assert_non_null(strstr(err.text, "NUL"));
	expect_err(command_check_chars("MAIL\rRCPT", 9, &err), &err, 500,
	    "5.5.2");
	expect_err(command_check_chars("A\x7f", 2, &err), &err, 500, "5.5.2");
	/* Well-formed UTF-8 is left to the argument parsers ... */
	assert_int_equal(command_check_chars("EHLO \xc3\xa9", 7, &err), 0);
	/* ... anything else 8-bit is refused before them. */
	expect_err(command_check_chars("VRFY \xff", 6, &err), &err, 500,
	    "5.5.2");
	assert_non_null(strstr(err.text, "UTF-8"));
	expect_err(command_check_chars("NOOP \xc3", 6, &err), &err, 500,
	    "5.5.2");
	expect_err(command_check_chars("RCPT TO:<a@\xed\xa0\x80>", 15, &err),
	    &err, 500, "5.5.2");
}

static void
test_helo(void **state)
{
	struct command_error err;
	char longname[300];

	assert_int_equal(command_parse_helo("client.example", CMD_EHLO, &err), 0);
	assert_int_equal(command_parse_helo("[192.0.2.1]", CMD_HELO, &err), 0);
	assert_int_equal(command_parse_helo("bare", CMD_HELO, &err), 0);
	expect_err(command_parse_helo("", CMD_EHLO, &err), &err, 501, "5.5.4");
	assert_non_null(strstr(err.text, "EHLO"));
	expect_err(command_parse_helo("two words", CMD_HELO, &err), &err, 501,
	    "5.5.4");
	memset(longname, 'a', 256);
	longname[256] = '\0';
	expect_err(command_parse_helo(longname, CMD_EHLO, &err), &err, 501,
	    "5.5.4");
	expect_err(command_parse_helo("bad\xff", CMD_EHLO, &err), &err, 501,
	    "5.5.4");
	assert_int_equal(command_parse_helo("\xc3\xa9t\xc3\xa9.example", CMD_EHLO,
	    &err), 0);
	/* Issue 22: what a line-based envelope reader splits on, or a log
	 * shows reordered. */
	expect_err(command_parse_helo("\xe2\x80\xae\xc3\xa9vil.example",
	    CMD_EHLO, &err), &err, 501, "5.5.4");               /* U+202E */
	expect_err(command_parse_helo("a\xe2\x80\xa8" "b", CMD_EHLO, &err), &err,
	    501, "5.5.4");                                      /* U+2028 */
	expect_err(command_parse_helo("a\xc2\x85" "b", CMD_HELO, &err), &err,
	    501, "5.5.4");                                      /* U+0085 */
}

static void
test_mail_basic(void **state)
{
	struct command_path p;
	struct command_error err;

	assert_int_equal(command_parse_mail("FROM:<alice@example.org>", 0, &p,
	    &err), 0);
	assert_string_equal(p.address, "alice@example.org");
	assert_false(p.null_path);
	assert_false(p.size_given);
	assert_int_equal(p.body, BODY_UNSPECIFIED);

	assert_int_equal(command_parse_mail("from:<>", 0, &p, &err), 0);
	assert_true(p.null_path);
	assert_string_equal(p.address, "");

	/* A space after the colon is tolerated (real clients send it). */
	assert_int_equal(command_parse_mail("FROM: <a@b.example>", 0, &p, &err), 0);
	assert_string_equal(p.address, "a@b.example");
}

static void
test_mail_syntax_errors(void **state)
{
	struct command_path p;
	struct command_error err;

	expect_err(command_parse_mail("", 0, &p, &err), &err, 501, "5.5.4");
	expect_err(command_parse_mail("TO:<a@b.example>", 0, &p, &err), &err,
	    501, "5.5.4");
	/* Brackets are required. */
	expect_err(command_parse_mail("FROM:a@b.example", 0, &p, &err), &err,
	    501, "5.1.7");
	expect_err(command_parse_mail("FROM:<a@b.example", 0, &p, &err), &err,
	    501, "5.1.7");
	expect_err(command_parse_mail("FROM:<a@b.example>x", 0, &p, &err), &err,
	    501, "5.1.7");
	expect_err(command_parse_mail("FROM:<a>", 0, &p, &err), &err, 501,
	    "5.1.7");
	expect_err(command_parse_mail("FROM:<@b.example>", 0, &p, &err), &err,
	    501, "5.1.7");
	expect_err(command_parse_mail("FROM:<a@>", 0, &p, &err), &err, 501,
	    "5.1.7");
	expect_err(command_parse_mail("FROM:<a..b@c.example>", 0, &p, &err),
	    &err, 501, "5.1.7");
	expect_err(command_parse_mail("FROM:<.a@c.example>", 0, &p, &err), &err,
	    501, "5.1.7");
	expect_err(command_parse_mail("FROM:<a.@c.example>", 0, &p, &err), &err,
	    501, "5.1.7");
	expect_err(command_parse_mail("FROM:<a@b..example>", 0, &p, &err), &err,
	    501, "5.1.7");
	expect_err(command_parse_mail("FROM:<a@b.example.>", 0, &p, &err), &err,
	    501, "5.1.7");
	expect_err(command_parse_mail("FROM:<a@-b.example>", 0, &p, &err), &err,
	    501, "5.1.7");
	expect_err(command_parse_mail("FROM:<a@b-.example>", 0, &p, &err), &err,
	    501, "5.1.7");
	expect_err(command_parse_mail("FROM:<a b@c.example>", 0, &p, &err), &err,
	    501, "5.1.7");
	expect_err(command_parse_mail("FROM:<a@b@c.example>", 0, &p, &err), &err,
	    501, "5.1.7");
	expect_err(command_parse_mail("FROM:<\"unterminated@c.example>", 0, &p,
	    &err), &err, 501, "5.1.7");
	expect_err(command_parse_mail("FROM:<a@[300.1.1.1]>", 0, &p, &err), &err,
	    501, "5.1.7");
	expect_err(command_parse_mail("FROM:<a@[IPv6:zz::1]>", 0, &p, &err), &err,
	    501, "5.1.7");
}

static void
test_mail_address_forms(void **state)
{
	struct command_path p;
	struct command_error err;

	assert_int_equal(command_parse_mail("FROM:<\"john doe\"@example.org>", 0,
	    &p, &err), 0);
	assert_string_equal(p.address, "\"john doe\"@example.org");
	assert_int_equal(command_parse_mail(
	    "FROM:<\"a\\\"b>c\"@example.org>", 0, &p, &err), 0);
	assert_string_equal(p.address, "\"a\\\"b>c\"@example.org");
	/* Source routes are checked, then dropped. */
	assert_int_equal(command_parse_mail(
	    "FROM:<@relay.example,@[192.0.2.1]:user@example.org>", 0, &p, &err), 0);
	assert_string_equal(p.address, "user@example.org");
	/* ... and remembered, for relay control (smtpd/relay.h). */
	assert_true(p.source_route);
	assert_int_equal(command_parse_rcpt("TO:<@a.example:Postmaster>", false,
	    &p, &err), 0);
	assert_true(p.source_route);
	assert_int_equal(command_parse_rcpt("TO:<\"@a.example:u\"@b.example>",
	    false, &p, &err), 0);
	assert_false(p.source_route);
	assert_int_equal(command_parse_mail("FROM:<u@example.org>", 0, &p,
	    &err), 0);
	assert_false(p.source_route);
	expect_err(command_parse_mail("FROM:<@relay..x:user@example.org>", 0, &p,
	    &err), &err, 501, "5.1.7");
	assert_int_equal(command_parse_mail("FROM:<u@[192.0.2.1]>", 0, &p, &err), 0);
	assert_string_equal(p.address, "u@[192.0.2.1]");
	assert_int_equal(command_parse_mail("FROM:<u@[IPv6:2001:db8::1]>", 0, &p,
	    &err), 0);
	assert_int_equal(command_parse_mail("FROM:<u!#$%&'*+-/=?^_`{|}~@x.example>",
	    0, &p, &err), 0);
	assert_int_equal(command_parse_mail("FROM:<a@localhost>", 0, &p, &err), 0);
}

static void
test_mail_length_limits(void **state)
{
	struct command_path p;
	struct command_error err;
	char arg[600], local[80], label[70];
	size_t n;

	/* local part: 64 ok, 65 refused with 553 */
	memset(local, 'l', 64);
	local[64] = '\0';
	snprintf(arg, sizeof(arg), "FROM:<%s@example.org>", local);
	assert_int_equal(command_parse_mail(arg, 0, &p, &err), 0);
	local[64] = 'l';
	local[65] = '\0';
	snprintf(arg, sizeof(arg), "FROM:<%s@example.org>", local);
	expect_err(command_parse_mail(arg, 0, &p, &err), &err, 553, "5.1.7");

	/* a 64-octet label is one too many */
	memset(label, 'd', 64);
	label[64] = '\0';
	snprintf(arg, sizeof(arg), "FROM:<a@%s.example>", label);
	expect_err(command_parse_mail(arg, 0, &p, &err), &err, 501, "5.1.7");

	/* domain: 4 * 63 + 3 dots = 255 ok; path then 1+1+1+255+1 = 259 */
	memset(label, 'd', 63);
	label[63] = '\0';
	snprintf(arg, sizeof(arg), "FROM:<a@%s.%s.%s.%s>", label, label, label,
	    label);
	/* the whole path is over 256 octets: 553 */
	expect_err(command_parse_mail(arg, 0, &p, &err), &err, 553, "5.1.7");
	/* path of exactly 256 octets with brackets is accepted */
	n = (size_t)snprintf(arg, sizeof(arg), "FROM:<%.62s@%s.%s.%s>",
	    local, label, label, label);
	assert_int_equal(n - strlen("FROM:"), 256);
	assert_int_equal(command_parse_mail(arg, 0, &p, &err), 0);
	/* and one more octet is not */
	n = (size_t)snprintf(arg, sizeof(arg), "FROM:<%.63s@%s.%s.%s>",
	    local, label, label, label);
	assert_int_equal(n - strlen("FROM:"), 257);
	expect_err(command_parse_mail(arg, 0, &p, &err), &err, 553, "5.1.7");
}

static void
test_mail_params(void **state)
{
	struct command_path p;
	struct command_error err;

	assert_int_equal(command_parse_mail(
	    "FROM:<a@b.example> SIZE=1000 BODY=8BITMIME", 10000, &p, &err), 0);
	assert_true(p.size_given);
	assert_int_equal(p.size, 1000);
	assert_int_equal(p.body, BODY_8BITMIME);
	assert_int_equal(command_parse_mail("FROM:<a@b.example> body=7bit", 0, &p,
	    &err), 0);
	assert_int_equal(p.body, BODY_7BIT);
	assert_int_equal(command_parse_mail("FROM:<a@b.example>  size=0", 0, &p,
	    &err), 0);
	assert_int_equal(p.size, 0);

	expect_err(command_parse_mail("FROM:<a@b.example> SIZE=10001", 10000, &p,
	    &err), &err, 552, "5.3.4");
	expect_err(command_parse_mail("FROM:<a@b.example> SIZE=12x", 0, &p, &err),
	    &err, 501, "5.5.4");
	expect_err(command_parse_mail("FROM:<a@b.example> SIZE", 0, &p, &err),
	    &err, 501, "5.5.4");
	expect_err(command_parse_mail(
	    "FROM:<a@b.example> SIZE=99999999999999999999999", 0, &p, &err),
	    &err, 501, "5.5.4");
	expect_err(command_parse_mail("FROM:<a@b.example> SIZE=1 SIZE=2", 0, &p,
	    &err), &err, 501, "5.5.4");
	expect_err(command_parse_mail("FROM:<a@b.example> BODY=BINARYMIME", 0, &p,
	    &err), &err, 501, "5.5.4");
	expect_err(command_parse_mail("FROM:<a@b.example> SMTPUTF8=yes", 0, &p,
	    &err), &err, 501, "5.5.4");
	expect_err(command_parse_mail("FROM:<a@b.example> MT-PRIORITY=3", 0, &p,
	    &err), &err, 555, "5.5.4");
	assert_non_null(strstr(err.text, "MT-PRIORITY"));
	expect_err(command_parse_mail("FROM:<a@b.example> AUTH=<>", 0, &p, &err),
	    &err, 555, "5.5.4");
	expect_err(command_parse_mail("FROM:<a@b.example> =x", 0, &p, &err), &err,
	    501, "5.5.4");
	expect_err(command_parse_mail("FROM:<a@b.example> X=a=b", 0, &p, &err),
	    &err, 501, "5.5.4");
}

static void
test_mail_utf8(void **state)
{
	struct command_path p;
	struct command_error err;

	/* RFC 6531: non-ASCII needs SMTPUTF8. */
	expect_err(command_parse_mail("FROM:<j\xc3\xb6rg@example.org>", 0, &p,
	    &err), &err, 553, "5.6.7");
	assert_int_equal(command_parse_mail(
	    "FROM:<j\xc3\xb6rg@b\xc3\xbc" "cher.example> SMTPUTF8", 0, &p, &err), 0);
	assert_true(p.smtputf8);
	assert_true(p.non_ascii);
	expect_err(command_parse_mail("FROM:<j\xc3rg@example.org> SMTPUTF8", 0,
	    &p, &err), &err, 501, "5.1.7");
}

static void
test_rcpt(void **state)
{
	struct command_path p;
	struct command_error err;

	assert_int_equal(command_parse_rcpt("TO:<bob@example.com>", false, &p,
	    &err), 0);
	assert_string_equal(p.address, "bob@example.com");
	assert_int_equal(command_parse_rcpt("to:<Postmaster>", false, &p, &err), 0);
	assert_string_equal(p.address, "Postmaster");
	expect_err(command_parse_rcpt("TO:<bob>", false, &p, &err), &err, 501,
	    "5.1.3");
	expect_err(command_parse_rcpt("TO:<>", false, &p, &err), &err, 501,
	    "5.1.3");
	expect_err(command_parse_rcpt("TO:bob@example.com", false, &p, &err),
	    &err, 501, "5.1.3");
	expect_err(command_parse_rcpt("FROM:<bob@example.com>", false, &p, &err),
	    &err, 501, "5.5.4");
	expect_err(command_parse_rcpt("TO:<bob@example.com> FOO=BAR", false,
	    &p, &err), &err, 555, "5.5.4");
	expect_err(command_parse_rcpt("TO:<b\xc3\xb6@example.com>", false, &p,
	    &err), &err, 553, "5.6.7");
	assert_int_equal(command_parse_rcpt("TO:<b\xc3\xb6@example.com>", true,
	    &p, &err), 0);
}

/* test_mail_dsn - RET and ENVID (RFC 3461 §4.3, §4.4): accepted when
 * well-formed, 501 5.5.4 when malformed, too long or repeated. */
static void
test_mail_dsn(void **state)
{
	struct command_path p;
	struct command_error err;
	char line[400];

	assert_int_equal(command_parse_mail("FROM:<a@b.example>", 0, &p, &err), 0);
	assert_int_equal(p.ret, DSN_RET_DEFAULT);
	assert_string_equal(p.envid, "");
	assert_int_equal(command_parse_mail(
	    "FROM:<a@b.example> RET=FULL ENVID=QQ+2Bid+3D1", 0, &p, &err), 0);
	assert_int_equal(p.ret, DSN_RET_FULL);
	assert_string_equal(p.envid, "QQ+2Bid+3D1");
	assert_int_equal(command_parse_mail("FROM:<> ret=hdrs", 0, &p, &err), 0);
	assert_int_equal(p.ret, DSN_RET_HDRS);

	expect_err(command_parse_mail("FROM:<a@b.example> RET=BODY", 0, &p,
	    &err), &err, 501, "5.5.4");
	expect_err(command_parse_mail("FROM:<a@b.example> RET", 0, &p, &err),
	    &err, 501, "5.5.4");
	expect_err(command_parse_mail("FROM:<a@b.example> RET=FULL RET=HDRS", 0,
	    &p, &err), &err, 501, "5.5.4");
	assert_non_null(strstr(err.text, "duplicate"));
	expect_err(command_parse_mail("FROM:<a@b.example> ENVID=a ENVID=b", 0,
	    &p, &err), &err, 501, "5.5.4");
	expect_err(command_parse_mail("FROM:<a@b.example> ENVID", 0, &p, &err),
	    &err, 501, "5.5.4");
	/* Not xtext: a lone '+', lower-case hex, a control byte encoded. */
	expect_err(command_parse_mail("FROM:<a@b.example> ENVID=a+", 0, &p,
	    &err), &err, 501, "5.5.4");
	expect_err(command_parse_mail("FROM:<a@b.example> ENVID=a+2b", 0, &p,
	    &err), &err, 501, "5.5.4");
	expect_err(command_parse_mail("FROM:<a@b.example> ENVID=a+0D+0A", 0, &p,
	    &err), &err, 501, "5.5.4");
	/* 100 characters are the bound; 101 are refused. */
	snprintf(line, sizeof(line), "FROM:<a@b.example> ENVID=%0100d", 7);
	assert_int_equal(command_parse_mail(line, 0, &p, &err), 0);
	assert_int_equal(strlen(p.envid), 100);
	snprintf(line, sizeof(line), "FROM:<a@b.example> ENVID=%0101d", 7);
	expect_err(command_parse_mail(line, 0, &p, &err), &err, 501, "5.5.4");
}

/* test_rcpt_dsn - NOTIFY and ORCPT (RFC 3461 §4.1, §4.2). */
static void
test_rcpt_dsn(void **state)
{
	struct command_path p;
	struct command_error err;
	char line[700];

	assert_int_equal(command_parse_rcpt("TO:<b@c.example>", false, &p, &err),
	    0);
	assert_int_equal(p.notify, 0);
	assert_string_equal(p.orcpt, "");
	assert_int_equal(command_parse_rcpt("TO:<b@c.example> NOTIFY=NEVER",
	    false, &p, &err), 0);
	assert_int_equal(p.notify, DSN_NOTIFY_NEVER);
	assert_int_equal(command_parse_rcpt(
	    "TO:<b@c.example> notify=success,Failure,DELAY "
	    "ORCPT=rfc822;b+2Bx@c.example", false, &p, &err), 0);
	assert_int_equal(p.notify, DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE |
	    DSN_NOTIFY_DELAY);
	assert_string_equal(p.orcpt, "rfc822;b+2Bx@c.example");

	static const char *const bad[] = {
		"TO:<b@c.example> NOTIFY=",
		"TO:<b@c.example> NOTIFY",
		"TO:<b@c.example> NOTIFY=NEVER,SUCCESS",
		"TO:<b@c.example> NOTIFY=SUCCESS,SUCCESS",
		"TO:<b@c.example> NOTIFY=SUCCESS,",
		"TO:<b@c.example> NOTIFY=,FAILURE",
		"TO:<b@c.example> NOTIFY=ALWAYS",
		"TO:<b@c.example> NOTIFY=DELAY NOTIFY=FAILURE",
		"TO:<b@c.example> ORCPT",
		"TO:<b@c.example> ORCPT=b@c.example",
		"TO:<b@c.example> ORCPT=;b@c.example",
		"TO:<b@c.example> ORCPT=rfc822;",
		"TO:<b@c.example> ORCPT=rfc_822;b@c.example",
		"TO:<b@c.example> ORCPT=rfc822;b+0A@c.example",
		"TO:<b@c.example> ORCPT=rfc822;a ORCPT=rfc822;b",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		expect_err(command_parse_rcpt(bad[i], false, &p, &err), &err,
		    501, "5.5.4");
	/* ORCPT's bound: 500 characters. */
	snprintf(line, sizeof(line), "TO:<b@c.example> ORCPT=rfc822;%0493d", 1);
	assert_int_equal(command_parse_rcpt(line, false, &p, &err), 0);
	assert_int_equal(strlen(p.orcpt), 500);
	snprintf(line, sizeof(line), "TO:<b@c.example> ORCPT=rfc822;%0494d", 1);
	expect_err(command_parse_rcpt(line, false, &p, &err), &err, 501,
	    "5.5.4");
	/* MAIL's parameters are not RCPT's and the reverse. */
	expect_err(command_parse_rcpt("TO:<b@c.example> RET=FULL", false, &p,
	    &err), &err, 555, "5.5.4");
	expect_err(command_parse_mail("FROM:<b@c.example> NOTIFY=NEVER", 0, &p,
	    &err), &err, 555, "5.5.4");
}

/* test_rcpt_canonical_domain - the domain is kept in its canonical form
 * (issue 22): UTS-46 full stops, case and U-labels; a domain without one
 * is a 553. */
static void
test_rcpt_canonical_domain(void **state)
{
	struct command_path p;
	struct command_error err;

	assert_int_equal(command_parse_rcpt("TO:<Bob@blocked\xe3\x80\x82" "com>",
	    true, &p, &err), 0);
	assert_string_equal(p.address, "Bob@blocked.com");
	assert_false(p.non_ascii);
	assert_int_equal(command_parse_rcpt("TO:<bob@blocked\xef\xbd\xa1" "com>",
	    true, &p, &err), 0);
	assert_string_equal(p.address, "bob@blocked.com");
	assert_int_equal(command_parse_rcpt("TO:<bob@BLOCKED.Com>", false, &p,
	    &err), 0);
	assert_string_equal(p.address, "bob@blocked.com");
	assert_int_equal(command_parse_rcpt("TO:<j\xc3\xb6rg@B\xc3\x9c" "cher.example>",
	    true, &p, &err), 0);
	assert_string_equal(p.address, "j\xc3\xb6rg@xn--bcher-kva.example");
	assert_true(p.non_ascii);
	assert_int_equal(command_parse_rcpt("TO:<bob@[192.0.2.1]>", false, &p,
	    &err), 0);
	assert_string_equal(p.address, "bob@[192.0.2.1]");
	expect_err(command_parse_rcpt("TO:<bob@\xef\xbc\x8e" "blocked.com>", true,
	    &p, &err), &err, 553, "5.1.3");
	expect_err(command_parse_rcpt("TO:<bob@xn--zz.example>", false, &p, &err),
	    &err, 553, "5.1.3");
	expect_err(command_parse_mail("FROM:<bob@xn--zz.example>", 0, &p, &err),
	    &err, 553, "5.1.7");
	assert_int_equal(command_parse_mail("FROM:<a@Example.ORG>", 0, &p, &err),
	    0);
	assert_string_equal(p.address, "a@example.org");
}

/* test_address_unsafe_chars - C1 controls, line separators and bidi
 * controls in a (quoted) local part: 553 (issue 22). */
static void
test_address_unsafe_chars(void **state)
{
	struct command_path p;
	struct command_error err;

	expect_err(command_parse_rcpt("TO:<\"\xe2\x80\xa8x\"@example.com>", true,
	    &p, &err), &err, 553, "5.1.3");
	expect_err(command_parse_rcpt("TO:<\xe2\x80\xa8x@example.com>", true,
	    &p, &err), &err, 553, "5.1.3");
	expect_err(command_parse_rcpt("TO:<\"a\xc2\x85" "b\"@example.com>", true,
	    &p, &err), &err, 553, "5.1.3");
	expect_err(command_parse_rcpt("TO:<\"\xe2\x80\xae" "cba\"@example.com>",
	    true, &p, &err), &err, 553, "5.1.3");
	expect_err(command_parse_mail("FROM:<\"a\xe2\x81\xa6\"@example.com> "
	    "SMTPUTF8", 0, &p, &err), &err, 553, "5.1.7");
	assert_int_equal(command_parse_rcpt("TO:<\"j\xc3\xb6 rg\"@example.com>",
	    true, &p, &err), 0);
	assert_true(command_text_safe("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
	assert_false(command_text_safe("a\tb", 3));
	assert_false(command_text_safe("\xc2\x9f", 2));
	assert_true(command_text_safe("\xc2\xa0", 2));
	assert_false(command_text_safe("\xe2\x80\xa9", 3));
	assert_false(command_text_safe("\xd8\x9c", 2));
	assert_true(command_text_safe("\xe2\x80\xa7\xe2\x81\xa5", 6));
	assert_false(command_text_safe("\xc3", 1));
}

static void
test_utf8(void **state)
{
	assert_true(command_utf8_valid("plain", 5));
	assert_true(command_utf8_valid("\xc3\xa9", 2));
	assert_true(command_utf8_valid("\xe2\x82\xac", 3));
	assert_true(command_utf8_valid("\xf0\x9f\x98\x80", 4));
	assert_false(command_utf8_valid("\xc0\x80", 2));       /* overlong NUL */
	assert_false(command_utf8_valid("\xe0\x80\xaf", 3));   /* overlong */
	assert_false(command_utf8_valid("\xed\xa0\x80", 3));   /* surrogate */
	assert_false(command_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(command_utf8_valid("\xf5\x80\x80\x80", 4));
	assert_false(command_utf8_valid("\xc3", 1));           /* truncated */
	assert_false(command_utf8_valid("\xe2\x82", 2));
	assert_false(command_utf8_valid("\x80", 1));
}

/*==== Fuzz findings (reproducers in tests/fuzz/corpus/, regress-*) ====*/

/* test_address_mailbox_bounded - a 64-octet local part and a 255-octet
 * domain are each within their limits but 320 octets together: refused
 * with 553 instead of overflowing the COMMAND_PATH_MAX + 1 out buffer
 * (mailbox/regress-overflow-320-octet-mailbox). */
static void
test_address_mailbox_bounded(void **state)
{
	char in[400], label[64];
	char *out = malloc(COMMAND_PATH_MAX + 1);
	struct command_error err;
	bool na;
	int n;

	memset(label, 'd', 63);
	label[63] = '\0';
	n = snprintf(in, sizeof(in), "%.64s@%s.%s.%s.%s",
	    "llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll",
	    label, label, label, label);
	assert_int_equal(n, 320);
	expect_err(command_parse_address(in, (size_t)n, true, false, out, &na,
	    &err), &err, 553, "5.1.3");
	expect_err(command_parse_address(in, (size_t)n, false, false, out, &na,
	    &err), &err, 553, "5.1.7");
	/* exactly COMMAND_PATH_MAX octets still fit */
	n = snprintf(in, sizeof(in), "%.64s@%s.%s.%.62s",
	    "llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll",
	    label, label, label);
	assert_int_equal(n, 255);
	in[n] = 'x';
	in[n + 1] = '\0';
	n++;
	assert_int_equal(command_parse_address(in, (size_t)n, true, false, out,
	    &na, &err), 0);
	assert_int_equal(strlen(out), COMMAND_PATH_MAX);
	/* one more octet (a 64-octet label is refused by syntax, so the
	 * extra octet goes into a new label) */
	memcpy(in + n, ".x", 3);
	n += 2;
	expect_err(command_parse_address(in, (size_t)n, true, false, out, &na,
	    &err), &err, 553, "5.1.3");
	free(out);
}

/* test_address_route_utf8 - the dropped source route never decides
 * non_ascii: it describes the kept mailbox, and a route must be ASCII
 * (command/regress-utf8-route-sets-non-ascii). */
static void
test_address_route_utf8(void **state)
{
	static const char in[] = "@b\xc3\xbc.example:user@example.com";
	char out[COMMAND_PATH_MAX + 1];
	struct command_path p;
	struct command_error err;
	bool na = true;

	/* a UTF-8 route: refused, even under SMTPUTF8 */
	expect_err(command_parse_address(in, sizeof(in) - 1, true, true,
	    out, &na, &err), &err, 501, "5.1.3");
	assert_false(na);
	expect_err(command_parse_rcpt("TO:<@b\xc3\xbc.example:user@"
	    "example.com>", true, &p, &err), &err, 501, "5.1.3");
	expect_err(command_parse_rcpt("TO:<@b\xc3\xbc.example:user@"
	    "example.com>", false, &p, &err), &err, 553, "5.6.7");
	/* an ASCII route is dropped; the kept mailbox decides */
	assert_int_equal(command_parse_rcpt("TO:<@a.example,@b.example:"
	    "user@example.com>", true, &p, &err), 0);
	assert_string_equal(p.address, "user@example.com");
	assert_false(p.non_ascii);
	assert_int_equal(command_parse_rcpt("TO:<@a.example:j\xc3\xb8rn@"
	    "example.com>", true, &p, &err), 0);
	assert_string_equal(p.address, "j\xc3\xb8rn@example.com");
	assert_true(p.non_ascii);
}

/* test_address_literal_nul - a NUL inside an address literal (where
 * inet_pton would stop reading) is a syntax error
 * (mailbox/regress-literal-with-nul). */
static void
test_address_literal_nul(void **state)
{
	static const char lit4[] = "u@[192.0.2.5\0x]";
	static const char lit6[] = "u@[IPv6:2001:db8::1\0x]";
	static const char route[] = "@[192.0.2.5\0x]:u@example.com";
	char out[COMMAND_PATH_MAX + 1];
	struct command_error err;
	bool na;

	expect_err(command_parse_address(lit4, sizeof(lit4) - 1, true, false,
	    out, &na, &err), &err, 501, "5.1.3");
	expect_err(command_parse_address(lit6, sizeof(lit6) - 1, false, false,
	    out, &na, &err), &err, 501, "5.1.7");
	expect_err(command_parse_address(route, sizeof(route) - 1, true, false,
	    out, &na, &err), &err, 501, "5.1.3");
	assert_int_equal(command_parse_address("u@[192.0.2.5]", 13, true,
	    false, out, &na, &err), 0);
	assert_string_equal(out, "u@[192.0.2.5]");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verbs),
		cmocka_unit_test(test_chars),
		cmocka_unit_test(test_helo),
		cmocka_unit_test(test_mail_basic),
		cmocka_unit_test(test_mail_syntax_errors),
		cmocka_unit_test(test_mail_address_forms),
		cmocka_unit_test(test_mail_length_limits),
		cmocka_unit_test(test_mail_params),
		cmocka_unit_test(test_mail_utf8),
		cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_mail_dsn),
		cmocka_unit_test(test_rcpt_dsn),
		cmocka_unit_test(test_rcpt_canonical_domain),
		cmocka_unit_test(test_address_unsafe_chars),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_address_mailbox_bounded),
		cmocka_unit_test(test_address_route_utf8),
		cmocka_unit_test(test_address_literal_nul),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
