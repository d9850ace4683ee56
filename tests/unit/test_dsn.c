/*
 * test_dsn.c - RFC 3464 reports (queued/dsn.c): the composed message is
 * parsed back (headers, boundary, parts, fields) and each promise of
 * dsn.h checked; also NOTIFY semantics and xtext.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../queued/dsn.h"

/* The original message, served in small chunks. */
struct src {
	const char *text;
	size_t pos, chunk;
	bool fail;
};

static long
src_read(void *ctx, char *buf, size_t size)
{
	struct src *s = ctx;
	size_t n = strlen(s->text) - s->pos;

	if (s->fail)
		return -1;
	if (n > size)
		n = size;
	if (n > s->chunk)
		n = s->chunk;
	memcpy(buf, s->text + s->pos, n);
	s->pos += n;
	return (long)n;
}

static const char orig_msg[] =
    "Received: from x\n\tby y\nSubject: hello\nFrom: s@src.test\n\n"
    "body line\n.dot line\nlast\n";

static struct dsn_rcpt rc[3];
static struct src src;
static struct dsn_report rep;

/* setup - a bounce of two failed recipients and one delivered. */
static int
setup(void **state)
{
	memset(rc, 0, sizeof(rc));
	rc[0].final_recipient = "bob@dest.test";
	rc[0].original_recipient = "rfc822;Bob@dest.test";
	rc[0].action = DSN_ACTION_FAILED;
	rc[0].status = "5.1.1";
	rc[0].remote_mta = "mx.dest.test";
	rc[0].reply_code = 550;
	rc[0].diagnostic = "550 5.1.1 <bob@dest.test>: no such user";
	rc[1].final_recipient = "carol@dest.test";
	rc[1].action = DSN_ACTION_FAILED;
	rc[1].status = "4.4.7";
	rc[1].diagnostic = "delivery time expired";
	rc[2].final_recipient = "dave@dest.test";
	rc[2].action = DSN_ACTION_RELAYED;
	rc[2].status = "2.0.0";
	rc[2].remote_mta = "mx.dest.test";
	rc[2].reply_code = 250;
	rc[2].diagnostic = "250 ok";
	src = (struct src){ orig_msg, 0, 7, false };
	memset(&rep, 0, sizeof(rep));
	rep.reporting_mta = "mail.elemta.test";
	rep.queue_id = "4F2A01";
	rep.sender = "s@src.test";
	rep.arrival = 1700000000;
	rep.now = 1700003600;
	rep.retry_until = 1700432000;
	rep.rcpts = rc;
	rep.nrcpt = 3;
	rep.read = src_read;
	rep.ctx = &src;
	return 0;
}

/* A parsed report. */
struct parsed {
	char *headers;           /* top-level header block */
	char boundary[256];
	char *part[8];           /* each part: its headers and body */
	size_t nparts;
	bool closed;             /* the final --boundary-- was seen */
};

static void
parsed_free(struct parsed *p)
{
	free(p->headers);
	for (size_t i = 0; i < p->nparts; i++)
		free(p->part[i]);
}

/* parse_report - split msg at its boundary; checks line ends too. */
static void
parse_report(const char *msg, struct parsed *p)
{
	const char *body, *b, *q, *cur;
	char delim[300];

	memset(p, 0, sizeof(*p));
	/* Every LF is part of a CRLF, every CR of one; lines <= 998. */
	for (const char *l = msg; *l != '\0';) {
		const char *nl = strchr(l, '\n');

		assert_non_null(nl);
		assert_true(nl > l ? nl[-1] == '\r' : false);
		assert_null(memchr(l, '\r', (size_t)(nl - 1 - l)));
		assert_true(nl - l - 1 <= 998);
		l = nl + 1;
	}
	body = strstr(msg, "\r\n\r\n");
	assert_non_null(body);
	p->headers = strndup(msg, (size_t)(body - msg) + 2);
	b = strstr(p->headers, "boundary=\"");
	assert_non_null(b);
	b += strlen("boundary=\"");
	q = strchr(b, '"');
	assert_non_null(q);
	snprintf(p->boundary, sizeof(p->boundary), "%.*s", (int)(q - b), b);
	snprintf(delim, sizeof(delim), "\r\n--%s", p->boundary);
	cur = strstr(body, delim);
	assert_non_null(cur);
	for (;;) {
		const char *start = cur + strlen(delim), *next;

		if (strncmp(start, "--", 2) == 0) {
			p->closed = true;
			assert_string_equal(start, "--\r\n");
			break;
		}
		assert_true(strncmp(start, "\r\n", 2) == 0);
		start += 2;
		next = strstr(start, delim);
		assert_non_null(next);
		assert_true(p->nparts < 8);
		p->part[p->nparts++] = strndup(start, (size_t)(next - start));
		cur = next;
	}
}

/* count - occurrences of needle in hay. */
static int
count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* compose - dsn_compose into a fresh buffer; the caller frees it. */
static char *
compose(void)
{
	struct strbuf out = STRBUF_INIT(1 << 20);
	struct error err;

	assert_int_equal(dsn_compose(&rep, &out, &err), 0);
	return out.data;
}

static void
test_bounce_structure(void **state)
{
	char *m = compose();
	struct parsed p;

	parse_report(m, &p);
	assert_non_null(strstr(p.headers, "From: MAILER-DAEMON@mail.elemta."
	    "test (Mail Delivery System)\r\n"));
	assert_non_null(strstr(p.headers, "To: <s@src.test>\r\n"));
	assert_non_null(strstr(p.headers, "Subject: Undelivered Mail Returned "
	    "to Sender\r\n"));
	assert_non_null(strstr(p.headers, "Auto-Submitted: auto-replied\r\n"));
	assert_non_null(strstr(p.headers, "MIME-Version: 1.0\r\n"));
	assert_non_null(strstr(p.headers, "Content-Type: multipart/report; "
	    "report-type=delivery-status;"));
	assert_non_null(strstr(p.headers, "Date: Tue, 14 Nov 2023 23:13:20 "
	    "+0000\r\n"));
	assert_true(p.closed);
	/* Exactly three parts, one of each type, in order. */
	assert_int_equal(p.nparts, 3);
	assert_non_null(strstr(p.part[0], "Content-Type: text/plain"));
	assert_non_null(strstr(p.part[1], "Content-Type: "
	    "message/delivery-status\r\n"));
	assert_non_null(strstr(p.part[2], "Content-Type: "
	    "text/rfc822-headers\r\n"));
	assert_int_equal(count(m, "Content-Type: text/plain"), 1);
	assert_int_equal(count(m, "Content-Type: message/delivery-status"), 1);
	/* The boundary occurs nowhere inside a part. */
	for (size_t i = 0; i < p.nparts; i++)
		assert_null(strstr(p.part[i], p.boundary));
	parsed_free(&p);
	free(m);
}

static void
test_every_recipient_reported(void **state)
{
	char *m = compose();
	struct parsed p;
	const char *st;
	/* RFC 3464 §2.2: the standard fields in the grammar's order, an
	 * extension field after them. */
	static const char per_message[] = "Reporting-MTA: dns; "
	    "mail.elemta.test\r\nArrival-Date: Tue, 14 Nov 2023 22:13:20 "
	    "+0000\r\nX-Elemta-Queue-ID: 4F2A01\r\n\r\n";

	parse_report(m, &p);
	/* Human-readable: each recipient and the remote reply. */
	assert_non_null(strstr(p.part[0], "<bob@dest.test>: failed, host "
	    "mx.dest.test said:\r\n    550 5.1.1 <bob@dest.test>: no such "
	    "user\r\n"));
	assert_non_null(strstr(p.part[0], "<carol@dest.test>: failed:\r\n"
	    "    delivery time expired"));
	assert_non_null(strstr(p.part[0], "<dave@dest.test>: relayed"));
	/* Machine-readable: per-message then per-recipient groups. */
	st = strstr(p.part[1], "\r\n\r\n") + 4;
	assert_true(strncmp(st, per_message, strlen(per_message)) == 0);
	assert_non_null(strstr(st, "\r\n\r\nOriginal-Recipient: "
	    "rfc822;Bob@dest.test\r\nFinal-Recipient: rfc822; bob@dest.test"
	    "\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; "
	    "mx.dest.test\r\nDiagnostic-Code: smtp; 550 5.1.1 "
	    "<bob@dest.test>: no such user\r\n"));
	assert_non_null(strstr(st, "\r\n\r\nFinal-Recipient: rfc822; "
	    "carol@dest.test\r\nAction: failed\r\nStatus: 4.4.7\r\n"
	    "Diagnostic-Code: X-Elemta; delivery time expired\r\n"));
	assert_non_null(strstr(st, "Final-Recipient: rfc822; dave@dest.test"
	    "\r\nAction: relayed\r\nStatus: 2.0.0\r\n"));
	assert_int_equal(count(st, "Final-Recipient:"), 3);
	assert_int_equal(count(st, "Last-Attempt-Date:"), 3);
	assert_null(strstr(st, "Will-Retry-Until"));
	/* RET default: the headers only, CRLF, the body left out. */
	assert_non_null(strstr(p.part[2], "\r\n\r\nReceived: from x\r\n\tby "
	    "y\r\nSubject: hello\r\nFrom: s@src.test\r\n"));
	assert_null(strstr(p.part[2], "body line"));
	parsed_free(&p);
	free(m);
}

static void
test_ret_full_and_limit(void **state)
{
	char *m;
	struct parsed p;

	rep.ret = DSN_RET_FULL;
	m = compose();
	parse_report(m, &p);
	assert_non_null(strstr(p.part[2], "Content-Type: message/rfc822\r\n"));
	assert_non_null(strstr(p.part[2], "\r\n\r\nbody line\r\n.dot line\r\n"
	    "last\r\n"));
	parsed_free(&p);
	free(m);

	/* Over the limit: the headers only. */
	setup(state);
	rep.ret = DSN_RET_FULL;
	rep.size_limit = 70;
	m = compose();
	parse_report(m, &p);
	assert_non_null(strstr(p.part[2], "text/rfc822-headers"));
	assert_null(strstr(p.part[2], "body line"));
	assert_non_null(strstr(p.part[2], "Subject: hello\r\n"));
	parsed_free(&p);
	free(m);

	/* Headers longer than the limit: cut at a line end. */
	setup(state);
	rep.size_limit = 30;
	m = compose();
	parse_report(m, &p);
	assert_non_null(strstr(p.part[2], "\r\n\r\nReceived: from x\r\n\tby "
	    "y\r\n"));
	assert_null(strstr(p.part[2], "Subject"));
	parsed_free(&p);
	free(m);
}

static void
test_header_injection_impossible(void **state)
{
	char *m;
	struct parsed p;
	const char *st;

	rc[0].final_recipient = "bob@dest.test\r\nBcc: victim@evil.test";
	rc[0].diagnostic = "550 no\r\n\r\n--fake\r\nContent-Type: text/html";
	rc[0].remote_mta = "mx\nX-Injected: 1";
	rep.sender = "s@src.test\r\nCc: other@evil.test";
	rep.envid = "id\rX-Env: 1";
	m = compose();
	parse_report(m, &p);
	/* Nothing from outside starts a line. */
	assert_null(strstr(m, "\nBcc:"));
	assert_null(strstr(m, "\nCc:"));
	assert_null(strstr(m, "\nX-Injected"));
	assert_null(strstr(m, "\nX-Env"));
	assert_null(strstr(m, "\n--fake"));
	assert_null(strstr(m, "\nContent-Type: text/html"));
	/* In the text part and the Diagnostic-Code, on one line each. */
	assert_int_equal(count(m, "550 no    --fake  Content-Type: text/html"),
	    2);
	assert_int_equal(p.nparts, 3);
	/* Original-Envelope-Id opens the per-message fields. */
	st = strstr(p.part[1], "\r\n\r\n") + 4;
	assert_true(strncmp(st, "Original-Envelope-Id: id X-Env: 1\r\n"
	    "Reporting-MTA: dns; ", 55) == 0);
	parsed_free(&p);
	free(m);
}

static void
test_long_fields_bounded(void **state)
{
	static char huge[4000];
	char *m;
	struct parsed p;

	/* parse_report checks every line is at most 998 octets. */
	memset(huge, 'x', sizeof(huge) - 1);
	memcpy(huge + 1000, "@", 1);
	rc[0].final_recipient = huge;
	rc[0].original_recipient = huge;
	rc[0].remote_mta = huge;
	rc[0].diagnostic = huge;
	rep.reporting_mta = huge;
	rep.sender = huge;
	rep.envid = huge;
	rep.queue_id = huge;
	m = compose();
	parse_report(m, &p);
	assert_int_equal(p.nparts, 3);
	parsed_free(&p);
	free(m);
}

static void
test_boundary_avoids_content(void **state)
{
	char *m, *again;
	struct parsed p;
	static char tricky[512];
	char first[256];

	/* The first boundary the composer would pick, planted in the
	 * original message: it must choose another one. */
	m = compose();
	parse_report(m, &p);
	snprintf(first, sizeof(first), "%s", p.boundary);
	snprintf(tricky, sizeof(tricky), "Subject: x\n--%s\n\nb\n", first);
	parsed_free(&p);
	setup(state);
	src.text = tricky;
	again = compose();
	parse_report(again, &p);
	assert_int_equal(p.nparts, 3);
	for (size_t i = 0; i < p.nparts; i++)
		assert_null(strstr(p.part[i], p.boundary));
	assert_string_not_equal(p.boundary, first);
	assert_non_null(strstr(p.part[2], first));
	parsed_free(&p);
	free(m);
	free(again);
}

static void
test_delayed_and_success(void **state)
{
	char *m;
	struct parsed p;
	struct dsn_rcpt one = { "bob@dest.test", NULL, DSN_ACTION_DELAYED,
	    "4.4.1", "mx.dest.test", 0, "connection refused" };

	rep.rcpts = &one;
	rep.nrcpt = 1;
	rep.ret = DSN_RET_FULL;
	m = compose();
	parse_report(m, &p);
	assert_non_null(strstr(p.headers, "Subject: Delayed Mail (still being "
	    "retried)"));
	assert_non_null(strstr(p.part[0], "retried until Sun, 19 Nov 2023"));
	assert_non_null(strstr(p.part[1], "Action: delayed\r\n"));
	assert_non_null(strstr(p.part[1], "Will-Retry-Until: Sun, 19 Nov "
	    "2023 22:13:20 +0000\r\n"));
	/* RFC 3461 §4.3: no content with a report that is not a failure. */
	assert_non_null(strstr(p.part[2], "text/rfc822-headers"));
	parsed_free(&p);
	free(m);

	one.action = DSN_ACTION_DELIVERED;
	one.status = "2.0.0";
	m = compose();
	parse_report(m, &p);
	assert_non_null(strstr(p.headers, "Subject: Successful Mail Delivery "
	    "Report"));
	assert_non_null(strstr(p.part[1], "Action: delivered\r\n"));
	parsed_free(&p);
	free(m);
}

static void
test_refusals(void **state)
{
	struct strbuf out = STRBUF_INIT(1 << 20);
	struct error err;

	/* No bounce of a bounce. */
	rep.sender = "";
	assert_int_equal(dsn_compose(&rep, &out, &err), -1);
	assert_non_null(strstr(err.text, "<>"));
	assert_int_equal(out.len, 0);
	setup(state);
	src.fail = true;
	assert_int_equal(dsn_compose(&rep, &out, &err), -1);
	assert_int_equal(out.len, 0);
	/* Too small an output: out left as it was. */
	setup(state);
	strbuf_append_str(&out, "keep");
	out.limit = 600;
	assert_int_equal(dsn_compose(&rep, &out, &err), -1);
	assert_string_equal(strbuf_cstr(&out), "keep");
	strbuf_free(&out);
}

static void
test_wanted(void **state)
{
	assert_false(dsn_wanted("", 0, DSN_ACTION_FAILED));
	assert_false(dsn_wanted(NULL, 0, DSN_ACTION_FAILED));
	assert_true(dsn_wanted("s@x", 0, DSN_ACTION_FAILED));
	assert_true(dsn_wanted("s@x", 0, DSN_ACTION_DELAYED));
	assert_false(dsn_wanted("s@x", 0, DSN_ACTION_DELIVERED));
	assert_false(dsn_wanted("s@x", DSN_NOTIFY_NEVER, DSN_ACTION_FAILED));
	assert_false(dsn_wanted("s@x", DSN_NOTIFY_SUCCESS, DSN_ACTION_FAILED));
	assert_true(dsn_wanted("s@x", DSN_NOTIFY_SUCCESS, DSN_ACTION_RELAYED));
	assert_false(dsn_wanted("s@x", DSN_NOTIFY_FAILURE, DSN_ACTION_DELAYED));
	assert_true(dsn_wanted("s@x", DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY,
	    DSN_ACTION_DELAYED));
	assert_string_equal(dsn_action_name(DSN_ACTION_RELAYED), "relayed");
}

static void
test_xtext(void **state)
{
	char out[32];

	assert_int_equal(dsn_xtext_encode("a+b=c d\x7f\xc3", out, sizeof(out)),
	    0);
	assert_string_equal(out, "a+2Bb+3Dc+20d+7F+C3");
	assert_int_equal(dsn_xtext_encode("abc", out, 4), 0);
	assert_int_equal(dsn_xtext_encode("abcd", out, 4), -1);
	assert_int_equal(dsn_xtext_encode("a+", out, 4), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_bounce_structure, setup),
		cmocka_unit_test_setup(test_every_recipient_reported, setup),
		cmocka_unit_test_setup(test_ret_full_and_limit, setup),
		cmocka_unit_test_setup(test_header_injection_impossible, setup),
		cmocka_unit_test_setup(test_long_fields_bounded, setup),
		cmocka_unit_test_setup(test_boundary_avoids_content, setup),
		cmocka_unit_test_setup(test_delayed_and_success, setup),
		cmocka_unit_test_setup(test_refusals, setup),
		cmocka_unit_test(test_wanted),
		cmocka_unit_test(test_xtext),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
