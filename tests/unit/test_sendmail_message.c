/*
 * test_sendmail_message.c - unit tests for tools/elemta-sendmail/message.c:
 * reading the message (line ends, the lone "."), address lists, the
 * recipients of -t and the header fix-up of local submission.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../tools/elemta-sendmail/sendmail.h"

/* read_text - sm_message_read of text through a pipe. */
static int
read_text(const char *text, bool dot_is_data, size_t max, struct strbuf *out)
{
	int p[2];
	struct error err;
	int rc;

	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], text, strlen(text)), (ssize_t)strlen(text));
	close(p[1]);
	rc = sm_message_read(p[0], dot_is_data, max, out, &err);
	close(p[0]);
	return rc;
}

static void
test_read(void **state)
{
	struct strbuf out = STRBUF_INIT(0);

	assert_int_equal(read_text("a\r\nb\n.\nc", false, 1000, &out), 0);
	assert_string_equal(strbuf_cstr(&out), "a\nb\n");
	strbuf_free(&out);
	assert_int_equal(read_text("a\r\nb\n.\nc", true, 1000, &out), 0);
	assert_string_equal(strbuf_cstr(&out), "a\nb\n.\nc\n");
	strbuf_free(&out);
	assert_int_equal(read_text("..x\n.\r\n", false, 1000, &out), 0);
	assert_string_equal(strbuf_cstr(&out), "..x\n");
	strbuf_free(&out);
	assert_int_equal(read_text("0123456789", true, 5, &out), -1);
	strbuf_free(&out);
}

/* list - sm_addr_list_parse into one comma-joined string; "ERR" on -1. */
static void
list(const char *text, const char *want)
{
	struct sm_rcpts r = { 0 };
	struct error err;
	char got[1024] = "";

	if (sm_addr_list_parse(text, "host.example", &r, &err) < 0) {
		assert_string_equal("ERR", want);
		assert_int_equal(r.n, 0);
		return;
	}
	for (size_t i = 0; i < r.n; i++) {
		if (i > 0)
			strcat(got, ",");
		strcat(got, r.v[i]);
	}
	assert_string_equal(got, want);
	sm_rcpts_free(&r);
}

static void
test_address_lists(void **state)
{
	list("a@x", "a@x");
	list("a@x, b@y", "a@x,b@y");
	list("a@x, A <a@x>, b@y", "a@x,b@y");
	list("Alice <a@x>, \"Bob, Jr.\" <b@y>", "a@x,b@y");
	list("a@x (Alice, the first), root", "a@x,root@host.example");
	list("undisclosed-recipients:;", "");
	list("friends: a@x, B <b@y>;, c@z", "a@x,b@y,c@z");
	list("<@relay.example:a@x>", "a@x");
	list("\"john doe\"@x", "\"john doe\"@x");
	list("", "");
	list("<a@x", "ERR");
	list("a@x (unclosed", "ERR");
	list("\"unclosed@x", "ERR");
	list("a\r\nRCPT TO:<b@y>", "ERR");
	list("\"a\tb\"@x", "ERR");                 /* no tab in an SMTP path */
	list("\"Doe,\tJohn\" <j@x>", "j@x");       /* a folded display name */
}

/* fix - sm_message_fix of msg with -t or not; the result and the
 * recipients (comma-joined) into out and rcpts. */
static int
fix(const char *msg, bool extract, const char *fullname, char *out,
    size_t outsize, char *rcpts)
{
	struct sm_fixup fx = { .from = "alice@host.example", .fullname = fullname,
	    .domain = "host.example", .unique = "42.abc", .now = 86400 * 365,
	    .extract = extract };
	struct strbuf sb = STRBUF_INIT(0);
	struct sm_rcpts r = { 0 };
	struct error err;
	int rc = sm_message_fix(msg, strlen(msg), &fx, &sb, &r, &err);

	snprintf(out, outsize, "%s", strbuf_cstr(&sb));
	rcpts[0] = '\0';
	for (size_t i = 0; i < r.n; i++) {
		if (i > 0)
			strcat(rcpts, ",");
		strcat(rcpts, r.v[i]);
	}
	sm_rcpts_free(&r);
	strbuf_free(&sb);
	return rc;
}

static void
test_fix_adds_missing(void **state)
{
	char out[2048], rc[512];

	assert_int_equal(fix("To: a@x\nSubject: s\n\nbody\n", true, "", out,
	    sizeof(out), rc), 0);
	assert_string_equal(rc, "a@x");
	assert_non_null(strstr(out, "To: a@x\nSubject: s\nFrom: "
	    "alice@host.example\nDate: "));
	assert_non_null(strstr(out, "\nMessage-ID: <"));
	assert_non_null(strstr(out, ".42.abc@host.example>\n\nbody\n"));
	/* Present ones are kept, nothing added twice. */
	assert_int_equal(fix("From: me@x\nDate: Mon, 1 Jan 2001 00:00:00 +0000\n"
	    "Message-ID: <1@x>\nTo: a@x\n\nb\n", true, "", out, sizeof(out), rc),
	    0);
	assert_string_equal(out, "From: me@x\nDate: Mon, 1 Jan 2001 00:00:00 "
	    "+0000\nMessage-ID: <1@x>\nTo: a@x\n\nb\n");
	/* Case does not matter; a display name is quoted when it must be. */
	assert_int_equal(fix("from: me@x\nDATE: d\nmessage-id: <1@x>\n\nb\n",
	    false, "", out, sizeof(out), rc), 0);
	assert_null(strstr(out, "From: alice"));
	assert_int_equal(fix("Date: d\nMessage-ID: <1@x>\n\nb\n", false,
	    "Smith, John \"JJ\"", out, sizeof(out), rc), 0);
	assert_non_null(strstr(out, "From: \"Smith, John \\\"JJ\\\"\" "
	    "<alice@host.example>\n"));
	assert_int_equal(fix("Date: d\nMessage-ID: <1@x>\n\nb\n", false,
	    "Cron Daemon", out, sizeof(out), rc), 0);
	assert_non_null(strstr(out, "From: Cron Daemon <alice@host.example>\n"));
}

static void
test_fix_bcc_and_extract(void **state)
{
	char out[2048], rc[512];

	assert_int_equal(fix("From: f@x\nDate: d\nMessage-ID: <1@x>\n"
	    "To: a@x,\n b@x\nCc: C <c@x>\nBcc: hidden@x,\n\tother@x\n"
	    "Subject: s\n\nBcc: in the body stays\n", true, "", out, sizeof(out),
	    rc), 0);
	assert_string_equal(rc, "a@x,b@x,c@x,hidden@x,other@x");
	assert_string_equal(out, "From: f@x\nDate: d\nMessage-ID: <1@x>\n"
	    "To: a@x,\n b@x\nCc: C <c@x>\nSubject: s\n\n"
	    "Bcc: in the body stays\n");
	/* Without -t the headers name no recipient, Bcc still goes. */
	assert_int_equal(fix("From: f@x\nDate: d\nMessage-ID: <1@x>\nTo: a@x\n"
	    "Bcc: h@x\n\nb\n", false, "", out, sizeof(out), rc), 0);
	assert_string_equal(rc, "");
	assert_null(strstr(out, "Bcc"));
	/* Resent- headers: only they name the recipients. */
	assert_int_equal(fix("From: f@x\nDate: d\nMessage-ID: <1@x>\nTo: old@x\n"
	    "Resent-To: new@x\nResent-Bcc: secret@x\n\nb\n", true, "", out,
	    sizeof(out), rc), 0);
	assert_string_equal(rc, "new@x,secret@x");
	assert_null(strstr(out, "secret"));
	/* A malformed recipient header is an error, not a lost recipient. */
	assert_int_equal(fix("To: <a@x\n\nb\n", true, "", out, sizeof(out), rc),
	    -1);
}

static void
test_fix_nul_in_header(void **state)
{
	static const char msg[] = "To: a@x\0, b@y\n\nbody\0ok\n";
	struct sm_fixup fx = { .from = "u@h", .fullname = "", .domain = "h",
	    .unique = "1", .now = 0, .extract = true };
	struct strbuf sb = STRBUF_INIT(0);
	struct sm_rcpts r = { 0 };
	struct error err;

	/* b@y is never dropped silently: the whole message is refused. */
	assert_int_equal(sm_message_fix(msg, sizeof(msg) - 1, &fx, &sb, &r,
	    &err), -1);
	assert_non_null(strstr(err.text, "NUL"));
	assert_int_equal(r.n, 0);
	strbuf_free(&sb);
}

static void
test_fix_shapes(void **state)
{
	char out[2048], rc[512];

	/* An mbox "From " line goes; a body without a blank line before it
	 * gets one after the added headers. */
	assert_int_equal(fix("From alice Mon Jan  1 00:00:00 2001\nDate: d\n"
	    "Message-ID: <1@x>\nFrom: f@x\nthis is body\nmore\n", false, "", out,
	    sizeof(out), rc), 0);
	assert_string_equal(out, "Date: d\nMessage-ID: <1@x>\nFrom: f@x\n\n"
	    "this is body\nmore\n");
	/* No header at all: the added ones, a blank line, the body. */
	assert_int_equal(fix("just text\n", false, "", out, sizeof(out), rc), 0);
	assert_non_null(strstr(out, "From: alice@host.example\nDate: "));
	assert_non_null(strstr(out, ">\n\njust text\n"));
	/* An unterminated last header line (no read past the input). */
	assert_int_equal(fix("To: a@x\nX-Y: z", true, "", out, sizeof(out), rc),
	    0);
	assert_non_null(strstr(out, "To: a@x\nX-Y: z\nFrom: "));
	/* Headers only, no body. */
	assert_int_equal(fix("To: a@x\n", true, "", out, sizeof(out), rc), 0);
	assert_string_equal(rc, "a@x");
	assert_int_equal(out[strlen(out) - 1], '\n');
	assert_int_equal(out[strlen(out) - 2], '\n');
}

static void
test_exit_for_reply(void **state)
{
	assert_int_equal(sm_exit_for_reply(450, "4.7.1 slow down"), EX_TEMPFAIL);
	assert_int_equal(sm_exit_for_reply(421, "4.3.2 bye"), EX_TEMPFAIL);
	assert_int_equal(sm_exit_for_reply(550, "5.7.1 no"), EX_UNAVAILABLE);
	assert_int_equal(sm_exit_for_reply(554, "5.7.1 Relay"), EX_UNAVAILABLE);
	assert_int_equal(sm_exit_for_reply(552, "5.3.4 too big"), EX_DATAERR);
	assert_int_equal(sm_exit_for_reply(554, "5.6.0 content"), EX_DATAERR);
	assert_int_equal(sm_exit_for_reply(501, "5.1.3 syntax"), EX_DATAERR);
	assert_int_equal(sm_exit_for_reply(0, ""), EX_TEMPFAIL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_address_lists),
		cmocka_unit_test(test_fix_adds_missing),
		cmocka_unit_test(test_fix_bcc_and_extract),
		cmocka_unit_test(test_fix_nul_in_header),
		cmocka_unit_test(test_fix_shapes),
		cmocka_unit_test(test_exit_for_reply),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
