/*
 * test_msg_edit.c - unit tests for common/msg_edit.c: one test per
 * promise of msg_edit.h (order, untouched bytes kept exactly, safe
 * header text, index rules, bounds) and the wire form's round trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "msg_edit.h"

static const char MSG[] =
    "Received: from x\r\n\tby y\r\n"
    "Subject: one\r\n"
    "X-A: 1\r\n"
    "x-a: 2\r\n"
    "\r\n"
    "body\r\n.dot\r\n";

/* sink - msg_edits_apply's writer into a strbuf. */
static int
sink(void *arg, const void *data, size_t len, struct error *err)
{
	return strbuf_append(arg, data, len);
}

/* apply - e applied to text; the result (static). */
static const char *
apply(const struct msg_edits *e, const char *text)
{
	static struct strbuf out = STRBUF_INIT(0);
	struct error err;
	FILE *f = tmpfile();

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	fflush(f);
	strbuf_reset(&out);
	assert_int_equal(msg_edits_apply(e, fileno(f), strlen(text), sink,
	    &out, &err), 0);
	fclose(f);
	return strbuf_cstr(&out);
}

static void
test_no_edit_keeps_bytes(void **state)
{
	struct msg_edits e = { 0 };

	assert_true(msg_edits_empty(&e));
	assert_string_equal(apply(&e, MSG), MSG);
	assert_string_equal(apply(&e, "Only: headers\r\n"), "Only: headers\r\n");
}

static void
test_header_edits_in_order(void **state)
{
	struct msg_edits e = { 0 };

	assert_int_equal(msg_edits_header(&e, MSG_EDIT_HEADER_INSERT, 0,
	    "X-Top", "t", false), 0);
	assert_int_equal(msg_edits_header(&e, MSG_EDIT_HEADER_ADD, 0,
	    "X-End", "e", false), 0);
	/* The second X-A (case-insensitive) changes; the first goes. */
	assert_int_equal(msg_edits_header(&e, MSG_EDIT_HEADER_CHANGE, 2,
	    "X-A", "changed", false), 0);
	assert_int_equal(msg_edits_header(&e, MSG_EDIT_HEADER_CHANGE, 1,
	    "x-A", "", false), 0);
	/* Changing what does not exist adds it; deleting it does nothing. */
	assert_int_equal(msg_edits_header(&e, MSG_EDIT_HEADER_CHANGE, 1,
	    "X-New", "n", false), 0);
	assert_int_equal(msg_edits_header(&e, MSG_EDIT_HEADER_CHANGE, 1,
	    "X-None", "", false), 0);
	/* An index past the end appends; the edit sees the ones before. */
	assert_int_equal(msg_edits_header(&e, MSG_EDIT_HEADER_INSERT, 99,
	    "X-Last", " kept-space", true), 0);
	assert_true(msg_edits_changes_content(&e));
	assert_string_equal(apply(&e, MSG),
	    "X-Top: t\r\n"
	    "Received: from x\r\n\tby y\r\n"
	    "Subject: one\r\n"
	    "X-A: changed\r\n"
	    "X-End: e\r\n"
	    "X-New: n\r\n"
	    "X-Last: kept-space\r\n"
	    "\r\n"
	    "body\r\n.dot\r\n");
	msg_edits_free(&e);
}

static void
test_header_text_is_safe(void **state)
{
	struct msg_edits e = { 0 };

	/* LF, CRLF and CR breaks become CRLF; an empty line is dropped and
	 * a continuation gets white space: the block cannot end early. */
	assert_int_equal(msg_edits_header(&e, MSG_EDIT_HEADER_ADD, 0, "X-F",
	    "a\n\tb\r\n\r\nsmuggled: yes\rc", false), 0);
	assert_string_equal(apply(&e, "A: 1\r\n\r\nbody\r\n"),
	    "A: 1\r\nX-F: a\r\n\tb\r\n\tsmuggled: yes\r\n\tc\r\n\r\nbody\r\n");
	msg_edits_free(&e);
	/* A line of white space only ends the block for some readers. */
	assert_int_equal(msg_edits_header(&e, MSG_EDIT_HEADER_ADD, 0, "X-F",
	    "a\n \t\nsmuggled: yes\r\n \r\n", false), 0);
	assert_string_equal(apply(&e, "A: 1\r\n\r\nbody\r\n"),
	    "A: 1\r\nX-F: a\r\n\tsmuggled: yes\r\n\r\nbody\r\n");
	msg_edits_free(&e);
	/* Names and values out of bounds or invalid are refused. */
	assert_int_equal(msg_edits_header(&e, MSG_EDIT_HEADER_ADD, 0, "Bad:",
	    "v", false), -1);
	assert_int_equal(msg_edits_header(&e, MSG_EDIT_HEADER_ADD, 0, "",
	    "v", false), -1);
	assert_int_equal(msg_edits_header(&e, MSG_EDIT_HEADER_ADD, 0, "X",
	    "a\001b", false), -1);
	assert_int_equal(msg_edits_envelope(&e, MSG_EDIT_RCPT_ADD, "a\nb",
	    NULL), -1);
	assert_int_equal(e.count, 0);
}

static void
test_body_replaced(void **state)
{
	struct msg_edits e = { 0 };

	assert_int_equal(msg_edits_body_append(&e, "new\r\n", 5), 0);
	assert_string_equal(apply(&e, MSG),
	    "Received: from x\r\n\tby y\r\nSubject: one\r\nX-A: 1\r\n"
	    "x-a: 2\r\n\r\nnew\r\n");
	/* A message without a body separator gets one before the body. */
	assert_string_equal(apply(&e, "A: 1\r\n"), "A: 1\r\n\r\nnew\r\n");
	msg_edits_free(&e);
	assert_int_equal(msg_edits_body_append(&e, NULL, 0), 0);
	assert_true(e.body_set);
	assert_int_equal(msg_edits_body_append(&e, MSG, MSG_EDIT_BODY_MAX + 1),
	    -1);
	msg_edits_free(&e);
}

/* A milter's replacement body cannot put a bare CR or LF into the spool
 * (smtpd's DATA reader never does): each becomes CRLF, and the body ends
 * in CRLF. */
static void
test_body_line_ends_normalised(void **state)
{
	struct msg_edits e = { 0 };
	static const char body[] = "a\nb\rc\r\n.\n\r\nd\r\r\ne";

	assert_int_equal(msg_edits_body_append(&e, body, sizeof(body) - 1), 0);
	assert_string_equal(apply(&e, "A: 1\r\n\r\nold\r\n"),
	    "A: 1\r\n\r\na\r\nb\r\nc\r\n.\r\n\r\nd\r\n\r\ne\r\n");
	msg_edits_free(&e);
	assert_int_equal(msg_edits_body_append(&e, "\n", 1), 0);
	assert_string_equal(apply(&e, "A: 1\r\n\r\nold\r\n"),
	    "A: 1\r\n\r\n\r\n");
	msg_edits_free(&e);
}

/* Joining two lists (one milter's to the earlier ones', the milters' to
 * the prepended headers) is all or nothing: never a list cut short. */
static void
test_append_all_or_none(void **state)
{
	struct msg_edits dst = { 0 }, src = { 0 };

	for (int i = 0; i < MSG_EDITS_MAX - 2; i++)
		assert_int_equal(msg_edits_header(&dst, MSG_EDIT_HEADER_ADD, 0,
		    "X-D", "d", false), 0);
	assert_int_equal(msg_edits_header(&src, MSG_EDIT_HEADER_INSERT, 3,
	    "X-S", "s", false), 0);
	assert_int_equal(msg_edits_envelope(&src, MSG_EDIT_RCPT_ADD, "<a@b>",
	    NULL), 0);
	assert_int_equal(msg_edits_body_append(&src, "b\r\n", 3), 0);
	/* Two fit: both join, the insert at or past 2 moves down by 5. */
	assert_int_equal(msg_edits_append(&dst, &src, 2, 5), 0);
	assert_int_equal(dst.count, MSG_EDITS_MAX);
	assert_int_equal(dst.items[MSG_EDITS_MAX - 2].index, 8);
	assert_string_equal(dst.items[MSG_EDITS_MAX - 1].value, "<a@b>");
	assert_true(dst.body_set);
	assert_int_equal(dst.body_len, 3);
	/* One more does not: none joins. */
	assert_int_equal(msg_edits_append(&dst, &src, 0, 0), -1);
	assert_int_equal(dst.count, MSG_EDITS_MAX);
	msg_edits_free(&dst);
	for (int i = 0; i < MSG_EDITS_MAX - 1; i++)
		assert_int_equal(msg_edits_header(&dst, MSG_EDIT_HEADER_ADD, 0,
		    "X-D", "d", false), 0);
	assert_int_equal(msg_edits_append(&dst, &src, 0, 0), -1);
	assert_int_equal(dst.count, MSG_EDITS_MAX - 1);
	msg_edits_free(&dst);
	msg_edits_free(&src);
}

static void
test_list_bounded(void **state)
{
	struct msg_edits e = { 0 };

	for (int i = 0; i < MSG_EDITS_MAX; i++)
		assert_int_equal(msg_edits_envelope(&e, MSG_EDIT_RCPT_ADD,
		    "a@b", NULL), 0);
	assert_int_equal(msg_edits_envelope(&e, MSG_EDIT_RCPT_ADD, "a@b",
	    NULL), -1);
	msg_edits_free(&e);
}

static void
test_wire_round_trip(void **state)
{
	struct msg_edits e = { 0 }, back = { 0 };
	struct strbuf sb = STRBUF_INIT(0);
	struct error err;
	char *line, *save = NULL;

	assert_int_equal(msg_edits_header(&e, MSG_EDIT_HEADER_CHANGE, 3,
	    "Subject", "50% off\n\tnow", false), 0);
	assert_int_equal(msg_edits_header(&e, MSG_EDIT_HEADER_CHANGE, 1, "X",
	    "", false), 0);
	assert_int_equal(msg_edits_envelope(&e, MSG_EDIT_SENDER, "<s@x>",
	    "SIZE=10 BODY=8BITMIME"), 0);
	assert_int_equal(msg_edits_envelope(&e, MSG_EDIT_RCPT_DEL, "<r@x>",
	    NULL), 0);
	assert_int_equal(msg_edits_body_append(&e, "\0\1binary", 8), 0);
	assert_int_equal(msg_edits_encode(&e, "elemta_edit", &sb), 0);
	/* No control byte but the line ends. */
	for (size_t i = 0; i < sb.len; i++)
		assert_true(sb.data[i] == '\n' || (unsigned char)sb.data[i] >= 32);
	for (line = strtok_r(sb.data, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		assert_memory_equal(line, "elemta_edit=", 12);
		assert_int_equal(msg_edit_parse(&back, line + 12, &err), 0);
	}
	assert_int_equal(back.count, e.count);
	for (size_t i = 0; i < e.count; i++) {
		assert_int_equal(back.items[i].op, e.items[i].op);
		assert_int_equal(back.items[i].index, e.items[i].index);
		assert_string_equal(back.items[i].value, e.items[i].value);
	}
	assert_string_equal(back.items[0].value, " 50% off\n\tnow");
	assert_string_equal(back.items[2].args, "SIZE=10 BODY=8BITMIME");
	assert_int_equal(back.body_len, 8);
	assert_memory_equal(back.body, "\0\1binary", 8);
	/* What the list takes, the wire gives back: a value at the bound
	 * with its leading space added is over it (a milter's 16384-byte
	 * value without SMFIP_HDR_LEADSPC), one byte less round-trips. */
	{
		char *big = malloc(MSG_EDIT_VALUE_MAX + 1);
		struct msg_edits one = { 0 }, again = { 0 };

		memset(big, 'v', MSG_EDIT_VALUE_MAX);
		big[MSG_EDIT_VALUE_MAX] = '\0';
		assert_int_equal(msg_edits_header(&one, MSG_EDIT_HEADER_ADD, 0,
		    "X-Big", big, false), -1);
		big[MSG_EDIT_VALUE_MAX - 1] = '\0';
		assert_int_equal(msg_edits_header(&one, MSG_EDIT_HEADER_ADD, 0,
		    "X-Big", big, false), 0);
		strbuf_reset(&sb);
		assert_int_equal(msg_edits_encode(&one, "e", &sb), 0);
		sb.data[sb.len - 1] = '\0';       /* the line's LF */
		assert_int_equal(msg_edit_parse(&again, sb.data + 2, &err), 0);
		assert_int_equal(strlen(again.items[0].value),
		    MSG_EDIT_VALUE_MAX);
		msg_edits_free(&one);
		msg_edits_free(&again);
		free(big);
	}
	/* Malformed lines are refused. */
	assert_int_equal(msg_edit_parse(&back, "hadd X %0", &err), -1);
	assert_int_equal(msg_edit_parse(&back, "hadd X %00", &err), -1);
	assert_int_equal(msg_edit_parse(&back, "hins x X v", &err), -1);
	assert_int_equal(msg_edit_parse(&back, "nope a", &err), -1);
	assert_int_equal(msg_edit_parse(&back, "radd a b", &err), -1);
	assert_int_equal(msg_edit_parse(&back, "body !!!", &err), -1);
	strbuf_free(&sb);
	msg_edits_free(&e);
	msg_edits_free(&back);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_edit_keeps_bytes),
		cmocka_unit_test(test_header_edits_in_order),
		cmocka_unit_test(test_header_text_is_safe),
		cmocka_unit_test(test_body_replaced),
		cmocka_unit_test(test_body_line_ends_normalised),
		cmocka_unit_test(test_append_all_or_none),
		cmocka_unit_test(test_list_bounded),
		cmocka_unit_test(test_wire_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
