/*
 * test_wire.c - unit tests for common/wire.c: one test per promise of
 * wire.h.  The request parser is driven as a state machine: whole
 * requests, byte by byte, pipelined, CRLF, every error; the encoder's
 * escaping and limits; every reply form parsed and round-tripped through
 * wire_reply_encode -> wire_reply_parse; wire_result_defaults.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "wire.h"

static const char sample[] =
    "request=smtpd_access_policy\n"
    "protocol_state=RCPT\n"
    "protocol_name=ESMTP\n"
    "client_address=192.0.2.7\n"
    "client_port=50123\n"
    "sender=alice@example.org\n"
    "recipient=bob@example.com\n"
    "elemta_listen_mode=submission\n"
    "accepted_recipient=one@example.com\n"
    "accepted_recipient=two@example.com\n"
    "weird=a=b=c\n"
    "empty=\n"
    "\n";

/* check_sample - the attributes of sample are all there. */
static void
check_sample(const struct wire_request *r)
{
	assert_int_equal(r->count, 12);
	assert_string_equal(wire_request_get(r, "request"), "smtpd_access_policy");
	assert_string_equal(wire_request_get(r, "protocol_state"), "RCPT");
	assert_string_equal(wire_request_get(r, "client_address"), "192.0.2.7");
	assert_string_equal(wire_request_get(r, "recipient"), "bob@example.com");
	assert_string_equal(wire_request_get(r, "weird"), "a=b=c");
	assert_string_equal(wire_request_get(r, "empty"), "");
	assert_null(wire_request_get(r, "helo_name"));
	assert_string_equal(r->attrs[0].name, "request");
	assert_string_equal(r->attrs[11].name, "empty");
	assert_int_equal(wire_request_count(r, "accepted_recipient"), 2);
}

/* test_state_names - every state has a name for logs. */
static void
test_state_names(void **state)
{
	assert_string_equal(wire_parse_state_name(WIRE_PARSE_LINE_START),
	    "line-start");
	assert_string_equal(wire_parse_state_name(WIRE_PARSE_IN_LINE), "in-line");
	assert_string_equal(wire_parse_state_name(WIRE_PARSE_SKIP_LINE),
	    "skip-line");
	assert_string_equal(wire_parse_state_name(WIRE_PARSE_DONE), "done");
	assert_string_equal(wire_parse_state_name(WIRE_PARSE_ERROR), "error");
	assert_string_equal(wire_parse_state_name((enum wire_parse_state)99),
	    "unknown");
}

/* test_parse_one_chunk - a whole request in one feed. */
static void
test_parse_one_chunk(void **state)
{
	struct wire_parser p;
	struct error err;
	size_t used;

	wire_parser_init(&p);
	assert_int_equal(p.state, WIRE_PARSE_LINE_START);
	assert_int_equal(wire_parser_feed(&p, sample, strlen(sample), &used, &err),
	    1);
	assert_int_equal(used, strlen(sample));
	assert_int_equal(p.state, WIRE_PARSE_DONE);
	check_sample(&p.req);
	wire_parser_free(&p);
}

/* test_parse_byte_by_byte - one byte per feed: 0 until the very last
 * byte, with the states a reader expects in between. */
static void
test_parse_byte_by_byte(void **state)
{
	struct wire_parser p;
	struct error err;
	size_t used, n = strlen(sample);

	wire_parser_init(&p);
	for (size_t i = 0; i < n - 1; i++) {
		assert_int_equal(wire_parser_feed(&p, sample + i, 1, &used, &err), 0);
		assert_int_equal(used, 1);
		if (sample[i] == '\n')
			assert_int_equal(p.state, WIRE_PARSE_LINE_START);
		else
			assert_int_equal(p.state, WIRE_PARSE_IN_LINE);
	}
	assert_int_equal(wire_parser_feed(&p, sample + n - 1, 1, &used, &err), 1);
	assert_int_equal(used, 1);
	assert_int_equal(p.state, WIRE_PARSE_DONE);
	check_sample(&p.req);
	wire_parser_free(&p);
}

/* test_parse_odd_chunks - every chunk size gives the same request. */
static void
test_parse_odd_chunks(void **state)
{
	size_t n = strlen(sample);

	for (size_t chunk = 2; chunk < 40; chunk++) {
		struct wire_parser p;
		struct error err;
		size_t off = 0, used;
		int rc = 0;

		wire_parser_init(&p);
		while (off < n) {
			size_t len = n - off < chunk ? n - off : chunk;

			rc = wire_parser_feed(&p, sample + off, len, &used, &err);
			assert_int_not_equal(rc, -1);
			off += used;
			if (rc == 1)
				break;
			assert_int_equal(used, len);
		}
		assert_int_equal(rc, 1);
		assert_int_equal(off, n);
		check_sample(&p.req);
		wire_parser_free(&p);
	}
}

/* test_parse_pipelined - two requests in one buffer: the first feed
 * stops after the first request; the rest parses as the second. */
static void
test_parse_pipelined(void **state)
{
	static const char two[] =
	    "protocol_state=MAIL\nsender=a@example.org\n\n"
	    "protocol_state=RCPT\nrecipient=b@example.com\n\n"
	    "protocol_state=DA";
	struct wire_parser p;
	struct error err;
	size_t used, off = 0, n = strlen(two);

	wire_parser_init(&p);
	assert_int_equal(wire_parser_feed(&p, two, n, &used, &err), 1);
	assert_int_equal(used, strlen("protocol_state=MAIL\nsender=a@example.org\n\n"));
	assert_string_equal(wire_request_get(&p.req, "protocol_state"), "MAIL");
	assert_string_equal(wire_request_get(&p.req, "sender"), "a@example.org");
	off += used;

	/* Feeding again after DONE starts the next request. */
	assert_int_equal(wire_parser_feed(&p, two + off, n - off, &used, &err), 1);
	assert_int_equal(p.req.count, 2);
	assert_string_equal(wire_request_get(&p.req, "protocol_state"), "RCPT");
	assert_null(wire_request_get(&p.req, "sender"));
	off += used;

	wire_parser_next(&p);
	assert_int_equal(p.state, WIRE_PARSE_LINE_START);
	assert_int_equal(p.req.count, 0);
	assert_int_equal(wire_parser_feed(&p, two + off, n - off, &used, &err), 0);
	assert_int_equal(used, n - off);
	assert_int_equal(wire_parser_feed(&p, "TA\n\n", 4, &used, &err), 1);
	assert_string_equal(wire_request_get(&p.req, "protocol_state"), "DATA");
	wire_parser_free(&p);
}

/* test_parse_crlf - a CR before each LF is stripped, the CRLF empty line
 * ends the request, even when CR and LF arrive in separate feeds. */
static void
test_parse_crlf(void **state)
{
	static const char req[] = "a=1\r\nb=two words\r\n\r\n";
	struct wire_parser p;
	struct error err;
	size_t used;

	wire_parser_init(&p);
	assert_int_equal(wire_parser_feed(&p, req, strlen(req), &used, &err), 1);
	assert_int_equal(used, strlen(req));
	assert_int_equal(p.req.count, 2);
	assert_string_equal(wire_request_get(&p.req, "a"), "1");
	assert_string_equal(wire_request_get(&p.req, "b"), "two words");

	for (size_t i = 0; i < strlen(req) - 1; i++)
		assert_int_equal(wire_parser_feed(&p, req + i, 1, &used, &err), 0);
	assert_int_equal(wire_parser_feed(&p, "\n", 1, &used, &err), 1);
	assert_string_equal(wire_request_get(&p.req, "b"), "two words");
	wire_parser_free(&p);
}

/* test_parse_empty_request - a lone empty line is a complete request with
 * no attributes. */
static void
test_parse_empty_request(void **state)
{
	struct wire_parser p;
	struct error err;
	size_t used;

	wire_parser_init(&p);
	assert_int_equal(wire_parser_feed(&p, "\nx=1\n\n", 6, &used, &err), 1);
	assert_int_equal(used, 1);
	assert_int_equal(p.req.count, 0);
	assert_null(wire_request_get(&p.req, "x"));
	assert_int_equal(wire_parser_feed(&p, "\r\n", 2, &used, &err), 1);
	assert_int_equal(p.req.count, 0);
	wire_parser_free(&p);
}

/* test_parse_missing_equals - a line without '=' is a protocol error; the
 * parser stays in the error state. */
static void
test_parse_missing_equals(void **state)
{
	struct wire_parser p;
	struct error err;
	size_t used;

	wire_parser_init(&p);
	assert_int_equal(wire_parser_feed(&p, "a=1\nGET / HTTP/1.0\n\n", 20, &used,
	    &err), -1);
	assert_int_equal(p.state, WIRE_PARSE_ERROR);
	assert_non_null(strstr(err.text, "without '='"));
	assert_non_null(strstr(err.text, "GET / HTTP/1.0"));
	assert_int_equal(wire_parser_feed(&p, "b=2\n\n", 5, &used, &err), -1);
	assert_int_equal(used, 0);
	/* NULL err and consumed are accepted. */
	wire_parser_next(&p);
	assert_int_equal(wire_parser_feed(&p, "oops\n", 5, NULL, NULL), -1);
	wire_parser_free(&p);
}

/* test_parse_bad_lines - empty names and NUL bytes are errors. */
static void
test_parse_bad_lines(void **state)
{
	struct wire_parser p;
	struct error err;
	size_t used;

	wire_parser_init(&p);
	assert_int_equal(wire_parser_feed(&p, "=value\n", 7, &used, &err), -1);
	assert_non_null(strstr(err.text, "empty name"));
	wire_parser_free(&p);

	wire_parser_init(&p);
	assert_int_equal(wire_parser_feed(&p, "a=b\0c\n", 6, &used, &err), -1);
	assert_non_null(strstr(err.text, "NUL"));
	wire_parser_free(&p);

	wire_parser_init(&p);
	assert_int_equal(wire_parser_feed(&p, "\r\r\n", 3, &used, &err), -1);
	wire_parser_free(&p);
}

/* test_parse_line_limit - WIRE_LINE_MAX bytes (plus a CR) are fine. */
static void
test_parse_line_limit(void **state)
{
	struct wire_parser p;
	struct error err;
	size_t used;
	char *line = malloc(WIRE_LINE_MAX + 3);

	memset(line, 'v', WIRE_LINE_MAX + 3);
	memcpy(line, "name=", 5);
	line[WIRE_LINE_MAX] = '\r';
	line[WIRE_LINE_MAX + 1] = '\n';
	line[WIRE_LINE_MAX + 2] = '\n';
	wire_parser_init(&p);
	assert_int_equal(wire_parser_feed(&p, line, WIRE_LINE_MAX + 3, &used, &err),
	    1);
	assert_int_equal(strlen(wire_request_get(&p.req, "name")),
	    WIRE_LINE_MAX - 5);
	wire_parser_free(&p);
	free(line);
}

/* test_parse_overlong_line - a longer line is an error, reported once,
 * when its end arrives, whatever the chunking. */
static void
test_parse_overlong_line(void **state)
{
	size_t n = WIRE_LINE_MAX + 1000;
	char *line = malloc(n + 2);
	struct wire_parser p;
	struct error err;
	size_t used, off;
	int errors = 0;

	memset(line, 'x', n);
	memcpy(line, "name=", 5);
	line[n] = '\n';
	line[n + 1] = '\n';

	/* One chunk. */
	wire_parser_init(&p);
	assert_int_equal(wire_parser_feed(&p, line, n + 2, &used, &err), -1);
	assert_int_equal(used, n + 1);
	assert_non_null(strstr(err.text, "longer than 4096"));
	wire_parser_free(&p);

	/* 100-byte chunks: skipping, then exactly one error at the LF. */
	wire_parser_init(&p);
	for (off = 0; off < n + 2; off += 100) {
		size_t len = n + 2 - off < 100 ? n + 2 - off : 100;
		int rc = wire_parser_feed(&p, line + off, len, &used, &err);

		if (rc == -1) {
			errors++;
			break;
		}
		assert_int_equal(rc, 0);
		if (off > WIRE_LINE_MAX + 100)
			assert_int_equal(p.state, WIRE_PARSE_SKIP_LINE);
	}
	assert_int_equal(errors, 1);
	assert_true(p.overlong);
	assert_int_equal(p.state, WIRE_PARSE_ERROR);
	assert_true(off + used == n + 1);
	wire_parser_free(&p);

	/* Exactly one byte too many (no CR): still an error. */
	memset(line, 'y', WIRE_LINE_MAX + 1);
	memcpy(line, "name=", 5);
	line[WIRE_LINE_MAX + 1] = '\n';
	wire_parser_init(&p);
	assert_int_equal(wire_parser_feed(&p, line, WIRE_LINE_MAX + 2, &used,
	    &err), -1);
	wire_parser_free(&p);
	free(line);
}

/* test_parse_too_many_attrs - more than WIRE_ATTRS_MAX attributes. */
static void
test_parse_too_many_attrs(void **state)
{
	struct strbuf sb = STRBUF_INIT(0);
	struct wire_parser p;
	struct error err;
	size_t used;

	for (int i = 0; i < WIRE_ATTRS_MAX; i++)
		assert_int_equal(strbuf_append_str(&sb, "a=1\n"), 0);
	assert_int_equal(strbuf_append_str(&sb, "\n"), 0);
	wire_parser_init(&p);
	assert_int_equal(wire_parser_feed(&p, sb.data, sb.len, &used, &err), 1);
	assert_int_equal(p.req.count, WIRE_ATTRS_MAX);
	assert_int_equal(wire_request_count(&p.req, "a"), WIRE_ATTRS_MAX);
	wire_parser_free(&p);

	sb.len--;
	assert_int_equal(strbuf_append_str(&sb, "a=1\n\n"), 0);
	wire_parser_init(&p);
	assert_int_equal(wire_parser_feed(&p, sb.data, sb.len, &used, &err), -1);
	assert_non_null(strstr(err.text, "attributes"));
	wire_parser_free(&p);
	strbuf_free(&sb);
}

/* test_parse_too_large - more than WIRE_REQUEST_MAX bytes. */
static void
test_parse_too_large(void **state)
{
	char line[4001];
	struct wire_parser p;
	struct error err;
	size_t used;
	int rc = 0, i;

	memset(line, 'z', sizeof(line) - 1);
	memcpy(line, "big=", 4);
	line[sizeof(line) - 1] = '\n';
	wire_parser_init(&p);
	for (i = 0; i < 200 && rc == 0; i++)
		rc = wire_parser_feed(&p, line, sizeof(line), &used, &err);
	assert_int_equal(rc, -1);
	assert_true(i * sizeof(line) > WIRE_REQUEST_MAX);
	assert_true((i - 1) * sizeof(line) <= WIRE_REQUEST_MAX);
	assert_non_null(strstr(err.text, "longer than"));
	wire_parser_free(&p);
}

/* test_repeated_attrs - get is the last value, nth each in order. */
static void
test_repeated_attrs(void **state)
{
	static const char req[] =
	    "accepted_recipient=r0@example.com\n"
	    "recipient=x@example.com\n"
	    "accepted_recipient=r1@example.com\n"
	    "accepted_recipient=r2@example.com\n\n";
	struct wire_parser p;
	struct error err;
	size_t used;

	wire_parser_init(&p);
	assert_int_equal(wire_parser_feed(&p, req, strlen(req), &used, &err), 1);
	assert_int_equal(wire_request_count(&p.req, "accepted_recipient"), 3);
	assert_string_equal(wire_request_nth(&p.req, "accepted_recipient", 0),
	    "r0@example.com");
	assert_string_equal(wire_request_nth(&p.req, "accepted_recipient", 1),
	    "r1@example.com");
	assert_string_equal(wire_request_nth(&p.req, "accepted_recipient", 2),
	    "r2@example.com");
	assert_null(wire_request_nth(&p.req, "accepted_recipient", 3));
	assert_string_equal(wire_request_get(&p.req, "accepted_recipient"),
	    "r2@example.com");
	assert_int_equal(wire_request_count(&p.req, "nothing"), 0);
	assert_null(wire_request_nth(&p.req, "nothing", 0));
	wire_parser_free(&p);
}

/* parse_all - parse a whole buffer as exactly one request. */
static void
parse_all(struct wire_parser *p, const struct strbuf *sb)
{
	struct error err;
	size_t used;

	wire_parser_init(p);
	assert_int_equal(wire_parser_feed(p, sb->data, sb->len, &used, &err), 1);
	assert_int_equal(used, sb->len);
}

/* test_encode_roundtrip - encoded requests parse back unchanged. */
static void
test_encode_roundtrip(void **state)
{
	struct strbuf sb = STRBUF_INIT(0);
	struct wire_parser p;

	assert_int_equal(wire_encode_attr(&sb, "request", "smtpd_access_policy"), 0);
	assert_int_equal(wire_encode_attr(&sb, "sender", ""), 0);
	assert_int_equal(wire_encode_attr(&sb, "helo_name", "a=b c"), 0);
	assert_int_equal(wire_encode_attr(&sb, "message_fd", "1"), 0);
	assert_int_equal(wire_encode_end(&sb), 0);
	assert_string_equal(strbuf_cstr(&sb), "request=smtpd_access_policy\n"
	    "sender=\nhelo_name=a=b c\nmessage_fd=1\n\n");
	parse_all(&p, &sb);
	assert_int_equal(p.req.count, 4);
	assert_string_equal(wire_request_get(&p.req, "sender"), "");
	assert_string_equal(wire_request_get(&p.req, "helo_name"), "a=b c");
	wire_parser_free(&p);
	strbuf_free(&sb);
}

/* test_encode_injection - CR and LF in a value cannot create an
 * attribute or end the request. */
static void
test_encode_injection(void **state)
{
	struct strbuf sb = STRBUF_INIT(0);
	struct wire_parser p;

	assert_int_equal(wire_encode_attr(&sb, "helo_name", "x\nrecipient=evil"), 0);
	assert_int_equal(wire_encode_attr(&sb, "sender", "a\r\n\r\nprotocol_state=DATA"),
	    0);
	assert_int_equal(wire_encode_attr(&sb, "bad\nname=", "v"), 0);
	assert_int_equal(wire_encode_end(&sb), 0);
	parse_all(&p, &sb);
	assert_int_equal(p.req.count, 3);
	assert_null(wire_request_get(&p.req, "recipient"));
	assert_null(wire_request_get(&p.req, "protocol_state"));
	assert_string_equal(wire_request_get(&p.req, "helo_name"),
	    "x?recipient=evil");
	assert_string_equal(wire_request_get(&p.req, "sender"),
	    "a????protocol_state=DATA");
	assert_string_equal(wire_request_get(&p.req, "bad?name?"), "v");
	wire_parser_free(&p);
	strbuf_free(&sb);
}

/* test_encode_limits - a line the parser would refuse, or a request past
 * WIRE_REQUEST_MAX, fails and leaves the buffer unchanged. */
static void
test_encode_limits(void **state)
{
	struct strbuf sb = STRBUF_INIT(0);
	char *value = malloc(WIRE_LINE_MAX + 1);
	size_t before;

	memset(value, 'v', WIRE_LINE_MAX);
	value[WIRE_LINE_MAX - 2] = '\0';   /* "n=" + value = WIRE_LINE_MAX */
	assert_int_equal(wire_encode_attr(&sb, "n", value), 0);
	before = sb.len;
	value[WIRE_LINE_MAX - 2] = 'v';
	value[WIRE_LINE_MAX - 1] = '\0';
	assert_int_equal(wire_encode_attr(&sb, "n", value), -1);
	assert_int_equal(sb.len, before);

	value[WIRE_LINE_MAX - 2] = '\0';
	while (wire_encode_attr(&sb, "n", value) == 0)
		;
	assert_true(sb.len <= WIRE_REQUEST_MAX);
	before = sb.len;
	assert_int_equal(wire_encode_attr(&sb, "n", value), -1);
	assert_int_equal(sb.len, before);
	assert_int_equal(sb.data[sb.len - 1], '\n');
	/* The strbuf's own limit is respected too, all or nothing. */
	{
		struct strbuf small = STRBUF_INIT(10);

		assert_int_equal(wire_encode_attr(&small, "a", "1"), 0);
		assert_int_equal(wire_encode_attr(&small, "b", "123456"), -1);
		assert_string_equal(strbuf_cstr(&small), "a=1\n");
		strbuf_free(&small);
	}
	free(value);
	strbuf_free(&sb);
}

/* test_reply_parse_forms - every action word and code form. */
static void
test_reply_parse_forms(void **state)
{
	static const struct {
		const char *in;
		enum elemta_action action;
		int code;
		const char *enhanced;
		const char *text;
	} cases[] = {
		{ "DUNNO", ELEMTA_CONTINUE, 0, "", "" },
		{ "dunno", ELEMTA_CONTINUE, 0, "", "" },
		{ "OK", ELEMTA_CONTINUE, 0, "", "" },
		{ "ok Whitelisted", ELEMTA_CONTINUE, 0, "", "" },
		{ "PREPEND X-Header: v", ELEMTA_CONTINUE, 0, "", "" },
		{ "WARN look", ELEMTA_CONTINUE, 0, "", "" },
		{ "FILTER smtp:[127.0.0.1]:10025", ELEMTA_CONTINUE, 0, "", "" },
		{ "REJECT", ELEMTA_REJECT, 550, "5.7.1", "" },
		{ "reject Go away", ELEMTA_REJECT, 550, "5.7.1", "Go away" },
		{ "REJECT 5.7.26 DMARC", ELEMTA_REJECT, 550, "5.7.26", "DMARC" },
		{ "REJECT 4.7.1 wrong class", ELEMTA_REJECT, 550, "5.7.1",
		    "wrong class" },
		{ "DEFER", ELEMTA_TEMPFAIL, 450, "4.7.1", "" },
		{ "DEFER Slow down", ELEMTA_TEMPFAIL, 450, "4.7.1", "Slow down" },
		{ "defer_if_permit later", ELEMTA_TEMPFAIL, 450, "4.7.1", "later" },
		{ "DEFER_IF_REJECT 4.7.0 busy", ELEMTA_TEMPFAIL, 450, "4.7.0",
		    "busy" },
		{ "450 4.7.1 Rate limit", ELEMTA_TEMPFAIL, 450, "4.7.1",
		    "Rate limit" },
		{ "421 Closing", ELEMTA_TEMPFAIL, 421, "", "Closing" },
		{ "554 5.7.1 Spam", ELEMTA_REJECT, 554, "5.7.1", "Spam" },
		{ "552 5.3.4 Too big", ELEMTA_REJECT, 552, "5.3.4", "Too big" },
		{ "550 4.7.1 mismatch", ELEMTA_REJECT, 550, "", "mismatch" },
		{ "550", ELEMTA_REJECT, 550, "", "" },
		{ "550 5.1.1", ELEMTA_REJECT, 550, "5.1.1", "" },
		{ "550 5.1.1x text", ELEMTA_REJECT, 550, "", "5.1.1x text" },
		{ "DISCARD spam", ELEMTA_DISCARD, 0, "", "spam" },
		{ "discard", ELEMTA_DISCARD, 0, "", "" },
		{ "HOLD suspicious", ELEMTA_QUARANTINE, 0, "", "suspicious" },
		{ "REDIRECT x@example.com", ELEMTA_TEMPFAIL, 451, "4.3.5",
		    "policy server returned an unknown action" },
		{ "", ELEMTA_TEMPFAIL, 451, "4.3.5",
		    "policy server returned an unknown action" },
		{ "250 ok", ELEMTA_TEMPFAIL, 451, "4.3.5",
		    "policy server returned an unknown action" },
		{ "5000 x", ELEMTA_TEMPFAIL, 451, "4.3.5",
		    "policy server returned an unknown action" },
		{ "4x0 x", ELEMTA_TEMPFAIL, 451, "4.3.5",
		    "policy server returned an unknown action" },
		{ "DUNNOX", ELEMTA_TEMPFAIL, 451, "4.3.5",
		    "policy server returned an unknown action" },
		{ "REJECT bad\rtext", ELEMTA_REJECT, 550, "5.7.1", "bad text" },
	};
	struct wire_reply r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		wire_reply_parse(cases[i].in, &r);
		if (r.action != cases[i].action || r.code != cases[i].code ||
		    strcmp(r.enhanced, cases[i].enhanced) != 0 ||
		    strcmp(r.text, cases[i].text) != 0)
			fail_msg("\"%s\" -> action %d code %d enhanced \"%s\" "
			    "text \"%s\"", cases[i].in, r.action, r.code,
			    r.enhanced, r.text);
	}
	wire_reply_parse(NULL, &r);
	assert_int_equal(r.action, ELEMTA_TEMPFAIL);
	assert_int_equal(r.code, 451);
}

/* result - build an elemta_result. */
static struct elemta_result
result(enum elemta_action action, int code, const char *enhanced,
    const char *message)
{
	struct elemta_result res;

	memset(&res, 0, sizeof(res));
	res.action = action;
	res.smtp_code = code;
	snprintf(res.enhanced, sizeof(res.enhanced), "%s", enhanced);
	snprintf(res.message, sizeof(res.message), "%s", message);
	return res;
}

/* encoded - wire_reply_encode into a static string. */
static const char *
encoded(struct elemta_result res)
{
	static char out[WIRE_REPLY_MAX];
	struct strbuf sb = STRBUF_INIT(WIRE_REPLY_MAX);

	assert_int_equal(wire_reply_encode(&sb, &res), 0);
	snprintf(out, sizeof(out), "%s", strbuf_cstr(&sb));
	strbuf_free(&sb);
	return out;
}

/* test_reply_encode_forms - the exact text of every reply form. */
static void
test_reply_encode_forms(void **state)
{
	assert_string_equal(encoded(result(ELEMTA_CONTINUE, 0, "", "")),
	    "action=DUNNO\n\n");
	assert_string_equal(encoded(result(ELEMTA_CONTINUE, 550, "5.7.1", "x")),
	    "action=DUNNO\n\n");
	assert_string_equal(encoded(result(ELEMTA_REJECT, 0, "", "")),
	    "action=550 5.7.1 Rejected by policy\n\n");
	assert_string_equal(encoded(result(ELEMTA_REJECT, 554, "5.7.1", "Spam")),
	    "action=554 5.7.1 Spam\n\n");
	assert_string_equal(encoded(result(ELEMTA_TEMPFAIL, 0, "", "")),
	    "action=451 4.7.1 Try again later\n\n");
	assert_string_equal(encoded(result(ELEMTA_TEMPFAIL, 421, "4.7.0",
	    "Too many failed AUTH")), "action=421 4.7.0 Too many failed AUTH\n\n");
	assert_string_equal(encoded(result(ELEMTA_DISCARD, 0, "", "spam")),
	    "action=DISCARD spam\n\n");
	assert_string_equal(encoded(result(ELEMTA_DISCARD, 0, "", "")),
	    "action=DISCARD\n\n");
	assert_string_equal(encoded(result(ELEMTA_QUARANTINE, 0, "", "look")),
	    "action=HOLD look\n\n");
	/* Injection through the message is impossible. */
	assert_string_equal(encoded(result(ELEMTA_REJECT, 550, "5.7.1",
	    "a\r\n\r\naction=DUNNO")), "action=550 5.7.1 a    action=DUNNO\n\n");
}

/* test_reply_roundtrip - encode -> parse gives back the same verdict. */
static void
test_reply_roundtrip(void **state)
{
	const struct elemta_result cases[] = {
		result(ELEMTA_CONTINUE, 0, "", ""),
		result(ELEMTA_REJECT, 550, "5.7.1", "Rejected by policy"),
		result(ELEMTA_REJECT, 554, "5.7.1", "Message looks like spam"),
		result(ELEMTA_REJECT, 552, "5.3.4", "Message too big"),
		result(ELEMTA_REJECT, 550, "5.7.1", "5.1.1 starts like a code"),
		result(ELEMTA_TEMPFAIL, 451, "4.7.1", "Rate limit exceeded"),
		result(ELEMTA_TEMPFAIL, 452, "4.5.3", "Too many recipients"),
		result(ELEMTA_TEMPFAIL, 454, "4.7.0", "Too many failed AUTH"),
		result(ELEMTA_DISCARD, 0, "", "Discarded"),
		result(ELEMTA_QUARANTINE, 0, "", "Held for review"),
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *text = encoded(cases[i]);
		struct wire_reply r;
		size_t n = strlen(text);

		assert_true(strncmp(text, "action=", 7) == 0);
		assert_true(n >= 2 && text[n - 1] == '\n' && text[n - 2] == '\n');
		{
			char value[WIRE_REPLY_MAX];

			snprintf(value, sizeof(value), "%.*s", (int)(n - 9),
			    text + 7);
			wire_reply_parse(value, &r);
		}
		assert_int_equal(r.action, cases[i].action);
		if (cases[i].action == ELEMTA_REJECT ||
		    cases[i].action == ELEMTA_TEMPFAIL) {
			assert_int_equal(r.code, cases[i].smtp_code);
			assert_string_equal(r.enhanced, cases[i].enhanced);
		}
		if (cases[i].action != ELEMTA_CONTINUE)
			assert_string_equal(r.text, cases[i].message);
	}
}

/* test_result_defaults - defaults per action; wrong-class codes and
 * malformed enhanced codes replaced; control characters in the message
 * become spaces. */
static void
test_result_defaults(void **state)
{
	struct elemta_result r;

	r = result(ELEMTA_REJECT, 0, "", "");
	wire_result_defaults(&r);
	assert_int_equal(r.smtp_code, 550);
	assert_string_equal(r.enhanced, "5.7.1");
	assert_string_equal(r.message, "Rejected by policy");

	r = result(ELEMTA_TEMPFAIL, 0, "", "");
	wire_result_defaults(&r);
	assert_int_equal(r.smtp_code, 451);
	assert_string_equal(r.enhanced, "4.7.1");
	assert_string_equal(r.message, "Try again later");

	r = result(ELEMTA_REJECT, 451, "4.7.1", "x");
	wire_result_defaults(&r);
	assert_int_equal(r.smtp_code, 550);
	assert_string_equal(r.enhanced, "5.7.1");
	assert_string_equal(r.message, "x");

	r = result(ELEMTA_TEMPFAIL, 554, "5.3.4", "y");
	wire_result_defaults(&r);
	assert_int_equal(r.smtp_code, 451);
	assert_string_equal(r.enhanced, "4.7.1");

	r = result(ELEMTA_REJECT, 552, "5.3.4", "big");
	wire_result_defaults(&r);
	assert_int_equal(r.smtp_code, 552);
	assert_string_equal(r.enhanced, "5.3.4");

	r = result(ELEMTA_REJECT, 250, "5.7", "z");
	wire_result_defaults(&r);
	assert_int_equal(r.smtp_code, 550);
	assert_string_equal(r.enhanced, "5.7.1");

	r = result(ELEMTA_REJECT, 5500, "5.7.1000", "z");
	wire_result_defaults(&r);
	assert_int_equal(r.smtp_code, 550);
	assert_string_equal(r.enhanced, "5.7.1");

	r = result(ELEMTA_TEMPFAIL, 450, "4.7.1 x", "z");
	wire_result_defaults(&r);
	assert_string_equal(r.enhanced, "4.7.1");

	r = result(ELEMTA_TEMPFAIL, 450, "4.123.456", "z");
	wire_result_defaults(&r);
	assert_string_equal(r.enhanced, "4.123.456");

	r = result(ELEMTA_REJECT, 550, "5.7.1", "line1\r\nline2\tend\x01");
	wire_result_defaults(&r);
	assert_string_equal(r.message, "line1  line2 end");

	r = result(ELEMTA_DISCARD, 550, "5.7.1", "d");
	wire_result_defaults(&r);
	assert_int_equal(r.smtp_code, 0);
	assert_string_equal(r.enhanced, "");
	assert_string_equal(r.message, "d");

	r = result((enum elemta_action)42, 0, "", "");
	wire_result_defaults(&r);
	assert_int_equal(r.action, ELEMTA_TEMPFAIL);
	assert_int_equal(r.smtp_code, 451);

	/* An unterminated message is terminated, not over-read. */
	r = result(ELEMTA_REJECT, 550, "5.7.1", "");
	memset(r.message, 'm', sizeof(r.message));
	memset(r.enhanced, '5', sizeof(r.enhanced));
	wire_result_defaults(&r);
	assert_int_equal(strlen(r.message), sizeof(r.message) - 1);
	assert_string_equal(r.enhanced, "5.7.1");
}

/* test_vocabulary - every phase and action spelled and parsed back by
 * the one table that owns it; OK told apart from DUNNO. */
static void
test_vocabulary(void **state)
{
	static const char *const phases[] = { "UNKNOWN", "CONNECT", "EHLO",
	    "HELO", "AUTH", "MAIL", "RCPT", "DATA", "END-OF-MESSAGE" };
	static const char *const actions[] = { "continue", "reject",
	    "tempfail", "discard", "quarantine" };
	struct strbuf sb = STRBUF_INIT(WIRE_REPLY_MAX);
	struct wire_reply r;
	enum elemta_action a;

	(void)state;
	for (int p = ELEMTA_PHASE_UNKNOWN; p <= ELEMTA_PHASE_EOM; p++) {
		assert_string_equal(wire_phase_name((enum elemta_phase)p),
		    phases[p]);
		if (p != ELEMTA_PHASE_UNKNOWN)
			assert_int_equal(wire_phase_parse(phases[p]), p);
	}
	assert_int_equal(ELEMTA_PHASE_EOM, 8);     /* ABI: values fixed */
	assert_string_equal(wire_phase_name((enum elemta_phase)99), "UNKNOWN");
	assert_int_equal(wire_phase_parse(NULL), ELEMTA_PHASE_RCPT);
	assert_int_equal(wire_phase_parse("rcpt"), ELEMTA_PHASE_UNKNOWN);
	assert_int_equal(wire_phase_parse("UNKNOWN"), ELEMTA_PHASE_UNKNOWN);

	for (int i = ELEMTA_CONTINUE; i <= ELEMTA_QUARANTINE; i++) {
		assert_string_equal(wire_action_name((enum elemta_action)i),
		    actions[i]);
		assert_int_equal(wire_action_parse(actions[i], &a), 0);
		assert_int_equal(a, i);
	}
	assert_string_equal(wire_action_name((enum elemta_action)7), "?");
	assert_int_equal(wire_action_parse("Reject", &a), -1);
	assert_int_equal(wire_action_parse(NULL, &a), -1);

	wire_reply_parse("OK", &r);
	assert_int_equal(r.action, ELEMTA_CONTINUE);
	assert_true(r.ok);
	wire_reply_parse(" ok\tfine", &r);
	assert_true(r.ok);
	wire_reply_parse("DUNNO", &r);
	assert_false(r.ok);
	wire_reply_parse("OKAY", &r);
	assert_false(r.ok);
	assert_int_equal(r.action, ELEMTA_TEMPFAIL);
	assert_int_equal(wire_reply_encode_ok(&sb), 0);
	assert_string_equal(strbuf_cstr(&sb), "action=OK\n\n");
	strbuf_free(&sb);
}

/* The AUTH reply with its delay extension: the line sits between the
 * action and the empty line, is left out when 0, capped at
 * WIRE_DELAY_MS_MAX; the parser takes decimal digits up to the cap and
 * nothing else. */
static void
test_reply_delay_extension(void **state)
{
	struct strbuf sb = STRBUF_INIT(WIRE_REPLY_MAX * 4);
	struct elemta_result res;
	uint32_t ms = 7;

	(void)state;
	assert_int_equal(wire_reply_encode_auth(&sb, NULL, true, 850), 0);
	assert_string_equal(strbuf_cstr(&sb),
	    "action=OK\n" WIRE_ATTR_DELAY_MS "=850\n\n");
	strbuf_reset(&sb);
	memset(&res, 0, sizeof(res));
	res.action = ELEMTA_REJECT;
	res.smtp_code = 535;
	str_copy(res.enhanced, "5.7.8", sizeof(res.enhanced));
	str_copy(res.message, "bad", sizeof(res.message));
	assert_int_equal(wire_reply_encode_auth(&sb, &res, false, 0), 0);
	assert_string_equal(strbuf_cstr(&sb), "action=535 5.7.8 bad\n\n");
	strbuf_reset(&sb);
	assert_int_equal(wire_reply_encode_auth(&sb, &res, false,
	    WIRE_DELAY_MS_MAX + 1), 0);
	assert_string_equal(strbuf_cstr(&sb), "action=535 5.7.8 bad\n"
	    WIRE_ATTR_DELAY_MS "=600000\n\n");
	strbuf_free(&sb);
	/* the name is an Elemta extension: Postfix's never start so */
	assert_int_equal(strncmp(WIRE_ATTR_DELAY_MS, WIRE_EXT_PREFIX,
	    WIRE_EXT_PREFIX_LEN), 0);

	assert_int_equal(wire_reply_delay_parse("850", &ms), 0);
	assert_int_equal(ms, 850);
	assert_int_equal(wire_reply_delay_parse("0", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(wire_reply_delay_parse("600000", &ms), 0);
	assert_int_equal(ms, WIRE_DELAY_MS_MAX);
	static const char *const bad[] = { "", "600001", "99999999999",
	    "-5", "+5", " 5", "5 ", "5x", "0x10", "1e3", "4294967297" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms = 7;
		assert_int_equal(wire_reply_delay_parse(bad[i], &ms), -1);
		assert_int_equal(ms, 0);
	}
	ms = 7;
	assert_int_equal(wire_reply_delay_parse(NULL, &ms), -1);
	assert_int_equal(ms, 0);
}

/* The CONNECT reply's client names: between the action and the empty
 * line, only names wire_client_name_valid accepts. */
static void
test_reply_names_extension(void **state)
{
	struct strbuf sb = STRBUF_INIT(WIRE_REPLY_MAX * 4);
	struct elemta_result res;
	struct wire_reply_ext ext = { 0, "mx.example.org", "unknown" };

	(void)state;
	memset(&res, 0, sizeof(res));
	res.action = ELEMTA_CONTINUE;
	assert_int_equal(wire_reply_encode_ext(&sb, &res, false, &ext), 0);
	assert_string_equal(strbuf_cstr(&sb), "action=DUNNO\n"
	    WIRE_ATTR_CLIENT_NAME_EXT "=mx.example.org\n"
	    WIRE_ATTR_REVERSE_CLIENT_NAME_EXT "=unknown\n\n");
	strbuf_reset(&sb);
	ext.client_name = "bad name\nx=1";
	ext.reverse_client_name = NULL;
	assert_int_equal(wire_reply_encode_ext(&sb, &res, false, &ext), 0);
	assert_string_equal(strbuf_cstr(&sb), "action=DUNNO\n\n");
	strbuf_free(&sb);
	assert_true(wire_client_name_valid("a-b_c.example.ORG"));
	assert_false(wire_client_name_valid(""));
	assert_false(wire_client_name_valid(NULL));
	assert_false(wire_client_name_valid("a b"));
	assert_false(wire_client_name_valid("a(b)"));
	assert_false(wire_client_name_valid("a[1]"));
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_false(wire_client_name_valid(longname));
	longname[254] = '\0';
	assert_false(wire_client_name_valid(longname));
	longname[253] = '\0';
	assert_true(wire_client_name_valid(longname));
}

/* wire.h: PREPEND parses as continue with its header; an invalid one is
 * continue without a header (never a broken message, never a refusal). */
static void
test_reply_prepend_parse(void **state)
{
	struct wire_reply r;
	char longv[WIRE_HEADER_LINE_MAX + 16];

	(void)state;
	wire_reply_parse("PREPEND X-Test:   hello  world", &r);
	assert_int_equal(r.action, ELEMTA_CONTINUE);
	assert_true(r.prepend);
	assert_string_equal(r.header, "X-Test: hello  world");
	wire_reply_parse("prepend Received-SPF: pass (x) client-ip=192.0.2.1;",
	    &r);
	assert_true(r.prepend);
	assert_string_equal(r.header,
	    "Received-SPF: pass (x) client-ip=192.0.2.1;");
	wire_reply_parse("PREPEND X-Empty:", &r);
	assert_string_equal(r.header, "X-Empty: ");

	static const char *const bad[] = {
		"PREPEND", "PREPEND no colon here", "PREPEND : value",
		"PREPEND Bad Name: v", "PREPEND X-A\x01: v",
		"PREPEND X-Ctl: a\rb", "PREPEND X-Ctl: a\x1b[31m",
		"PREPEND X-\xc3\xa9: v",
		"PREPEND A-very-long-header-name-that-is-longer-than-sixty-four-bytes-at-all: v",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		wire_reply_parse(bad[i], &r);
		assert_int_equal(r.action, ELEMTA_CONTINUE);
		assert_true(r.prepend);
		assert_string_equal(r.header, "");
	}
	/* 998 bytes fit, 999 do not */
	memset(longv, 0, sizeof(longv));
	memcpy(longv, "PREPEND X: ", 11);
	memset(longv + 11, 'v', WIRE_HEADER_LINE_MAX - 3);
	wire_reply_parse(longv, &r);
	assert_int_equal(strlen(r.header), WIRE_HEADER_LINE_MAX);
	longv[11 + WIRE_HEADER_LINE_MAX - 3] = 'v';
	wire_reply_parse(longv, &r);
	assert_string_equal(r.header, "");
	/* UTF-8 values are fine (RFC 6532) */
	wire_reply_parse("PREPEND X-U: caf\xc3\xa9", &r);
	assert_string_equal(r.header, "X-U: caf\xc3\xa9");
	/* other words never carry a header */
	wire_reply_parse("DUNNO", &r);
	assert_false(r.prepend);
	assert_string_equal(r.header, "");
}

/* wire.h: the bounds of a header list, and iteration in order. */
static void
test_headers_bounds(void **state)
{
	struct wire_headers h, g;
	struct error err;
	const char *line;
	size_t pos = 0, len;
	char name[16], big[900];

	(void)state;
	memset(&h, 0, sizeof(h));
	memset(&g, 0, sizeof(g));
	assert_int_equal(wire_headers_add(&h, "A", "1", &err), 0);
	assert_int_equal(wire_headers_add_line(&h, "B:\t 2", &err), 0);
	assert_int_equal(wire_headers_add(&h, "C", "3\r\nD: 4", &err), -1);
	assert_non_null(strstr(err.text, "control"));
	assert_int_equal(h.count, 2);
	assert_memory_equal(h.buf, "A: 1\r\nB: 2\r\n", h.len);
	assert_true(wire_headers_next(&h, &pos, &line, &len));
	assert_int_equal(len, 4);
	assert_memory_equal(line, "A: 1", 4);
	assert_true(wire_headers_next(&h, &pos, &line, &len));
	assert_memory_equal(line, "B: 2", 4);
	assert_false(wire_headers_next(&h, &pos, &line, &len));

	for (int i = 0; i < WIRE_HEADERS_MAX; i++) {
		snprintf(name, sizeof(name), "X-%d", i);
		assert_int_equal(wire_headers_add(&g, name, "v", &err),
		    i < WIRE_HEADERS_MAX ? 0 : -1);
	}
	assert_int_equal(wire_headers_add(&g, "X-Over", "v", &err), -1);
	assert_int_equal(g.count, WIRE_HEADERS_MAX);
	/* appending to a full list drops and counts */
	assert_int_equal(wire_headers_append(&g, &h), 2);
	assert_int_equal(wire_headers_append(&h, &g), WIRE_HEADERS_MAX - 14);
	assert_int_equal(h.count, WIRE_HEADERS_MAX);

	/* the byte bound */
	memset(&h, 0, sizeof(h));
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 4; i++)
		assert_int_equal(wire_headers_add(&h, "X-Big", big, &err), 0);
	assert_int_equal(wire_headers_add(&h, "X-Big", big, &err), -1);
	assert_non_null(strstr(err.text, "bytes"));
	assert_true(h.len <= WIRE_HEADERS_BYTES_MAX);
}

/* wire.h: the reply with headers on the private socket (all, before the
 * verdict; none with a refusal) and on the Postfix listener (one action:
 * the first header alone, the rest counted as dropped). */
static void
test_reply_encode_headers(void **state)
{
	struct strbuf sb = STRBUF_INIT(WIRE_REPLY_MAX * 8);
	struct elemta_result res;
	struct wire_headers h;
	struct wire_reply_ext none = { 0 };
	struct wire_reply_ext names = { .client_name = "mx.example" };
	unsigned dropped = 99;

	(void)state;
	memset(&h, 0, sizeof(h));
	memset(&res, 0, sizeof(res));
	res.action = ELEMTA_CONTINUE;
	assert_int_equal(wire_reply_encode_headers(&sb, &res, false, &none, &h,
	    false, &dropped), 0);
	assert_string_equal(strbuf_cstr(&sb), "action=DUNNO\n\n");
	assert_int_equal(dropped, 0);
	assert_int_equal(wire_headers_add(&h, "X-A", "1", NULL), 0);
	assert_int_equal(wire_headers_add(&h, "X-B", "2", NULL), 0);

	strbuf_reset(&sb);
	assert_int_equal(wire_reply_encode_headers(&sb, &res, false, &none, &h,
	    false, &dropped), 0);
	assert_string_equal(strbuf_cstr(&sb), "action=PREPEND X-A: 1\n"
	    "action=PREPEND X-B: 2\naction=DUNNO\n\n");
	/* the extension attributes follow the verdict line */
	strbuf_reset(&sb);
	assert_int_equal(wire_reply_encode_headers(&sb, &res, false, &names,
	    &h, false, &dropped), 0);
	assert_string_equal(strbuf_cstr(&sb), "action=PREPEND X-A: 1\n"
	    "action=PREPEND X-B: 2\naction=DUNNO\n"
	    "elemta_client_name=mx.example\n\n");
	strbuf_reset(&sb);
	assert_int_equal(wire_reply_encode_headers(&sb, &res, false, &none, &h,
	    true, &dropped), 0);
	assert_string_equal(strbuf_cstr(&sb), "action=PREPEND X-A: 1\n\n");
	assert_int_equal(dropped, 1);

	res.action = ELEMTA_QUARANTINE;
	strbuf_reset(&sb);
	assert_int_equal(wire_reply_encode_headers(&sb, &res, false, &none, &h,
	    false, &dropped), 0);
	assert_string_equal(strbuf_cstr(&sb), "action=PREPEND X-A: 1\n"
	    "action=PREPEND X-B: 2\naction=HOLD\n\n");
	strbuf_reset(&sb);
	assert_int_equal(wire_reply_encode_headers(&sb, &res, false, &none, &h,
	    true, &dropped), 0);
	assert_string_equal(strbuf_cstr(&sb), "action=HOLD\n\n");
	assert_int_equal(dropped, 2);

	res.action = ELEMTA_REJECT;
	strbuf_reset(&sb);
	assert_int_equal(wire_reply_encode_headers(&sb, &res, false, &none, &h,
	    false, &dropped), 0);
	assert_string_equal(strbuf_cstr(&sb),
	    "action=550 5.7.1 Rejected by policy\n\n");
	strbuf_free(&sb);
}

/* main - run every test of this module. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_parse_one_chunk),
		cmocka_unit_test(test_parse_byte_by_byte),
		cmocka_unit_test(test_parse_odd_chunks),
		cmocka_unit_test(test_parse_pipelined),
		cmocka_unit_test(test_parse_crlf),
		cmocka_unit_test(test_parse_empty_request),
		cmocka_unit_test(test_parse_missing_equals),
		cmocka_unit_test(test_parse_bad_lines),
		cmocka_unit_test(test_parse_line_limit),
		cmocka_unit_test(test_parse_overlong_line),
		cmocka_unit_test(test_parse_too_many_attrs),
		cmocka_unit_test(test_parse_too_large),
		cmocka_unit_test(test_repeated_attrs),
		cmocka_unit_test(test_encode_roundtrip),
		cmocka_unit_test(test_encode_injection),
		cmocka_unit_test(test_encode_limits),
		cmocka_unit_test(test_reply_parse_forms),
		cmocka_unit_test(test_reply_encode_forms),
		cmocka_unit_test(test_reply_roundtrip),
		cmocka_unit_test(test_result_defaults),
		cmocka_unit_test(test_vocabulary),
		cmocka_unit_test(test_reply_delay_extension),
		cmocka_unit_test(test_reply_prepend_parse),
		cmocka_unit_test(test_headers_bounds),
		cmocka_unit_test(test_reply_encode_headers),
		cmocka_unit_test(test_reply_names_extension),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
