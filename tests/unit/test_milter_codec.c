/*
 * test_milter_codec.c - unit tests for common/milter_codec.c: command
 * encoding (bytes as libmilter expects them), packet splitting (bounds,
 * truncation) and the decoding of every SMFIR_* reply, good and bad.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "milter_codec.h"

/* decode - one reply from its command byte and data. */
static int
decode(char cmd, const void *data, size_t len, struct milter_reply *m)
{
	const char *why;

	return milter_reply_decode(cmd, data, len, m, &why);
}

static void
test_encode_optneg_and_connect(void **state)
{
	struct strbuf sb = STRBUF_INIT(0);
	static const uint8_t optneg[] = { 0, 0, 0, 13, 'O', 0, 0, 0, 6,
	    0, 0, 0x01, 0xff, 0, 0, 0, 0x21 };
	static const uint8_t conn[] = { 0, 0, 0, 22, 'C', '[', '1', '.', '2',
	    '.', '3', '.', '4', ']', 0, '4', 0x01, 0xbb, '1', '.', '2', '.',
	    '3', '.', '4', 0 };

	assert_int_equal(milter_encode_optneg(&sb, 0x1ff, 0x21), 0);
	assert_int_equal(sb.len, sizeof(optneg));
	assert_memory_equal(sb.data, optneg, sizeof(optneg));
	strbuf_reset(&sb);
	assert_int_equal(milter_encode_connect(&sb, "[1.2.3.4]", '4', 443,
	    "1.2.3.4"), 0);
	assert_int_equal(sb.len, sizeof(conn));
	assert_memory_equal(sb.data, conn, sizeof(conn));
	strbuf_free(&sb);
}

static void
test_encode_macros_header_body(void **state)
{
	struct strbuf sb = STRBUF_INIT(0);
	const char *names[] = { "i", "{daemon_name}" };
	const char *values[] = { "ABC", "smtp" };
	static const char macros[] = "\0\0\0\x1b" "DM" "i\0ABC\0"
	    "{daemon_name}\0smtp\0";
	static char big[MILTER_CHUNK_MAX + 1];

	assert_int_equal(milter_encode_macros(&sb, 'M', names, values, 2), 0);
	assert_int_equal(sb.len, sizeof(macros) - 1);
	assert_memory_equal(sb.data, macros, sizeof(macros) - 1);
	strbuf_reset(&sb);
	assert_int_equal(milter_encode_header(&sb, "Subject", 7, "hi", 2), 0);
	assert_memory_equal(sb.data, "\0\0\0\x0cLSubject\0hi\0", 16);
	/* A NUL inside a value cannot be framed: refused, sb unchanged. */
	assert_int_equal(milter_encode_header(&sb, "X", 1, "a\0b", 3), -1);
	assert_int_equal(sb.len, 16);
	strbuf_reset(&sb);
	assert_int_equal(milter_encode_body(&sb, big, MILTER_CHUNK_MAX), 0);
	assert_int_equal(sb.len, MILTER_CHUNK_MAX + 5);
	assert_int_equal(milter_encode_body(&sb, big, sizeof(big)), -1);
	strbuf_free(&sb);
}

static void
test_packet_split_bounds(void **state)
{
	static const uint8_t two[] = { 0, 0, 0, 1, 'c', 0, 0, 0, 2, 'y' };
	static const uint8_t zero[] = { 0, 0, 0, 0, 'c' };
	static const uint8_t huge[] = { 0x7f, 0xff, 0xff, 0xff, 'b' };
	const uint8_t *data;
	size_t dlen, used;
	char cmd;

	assert_int_equal(milter_packet_split(two, 3, &cmd, &data, &dlen,
	    &used), 0);
	assert_int_equal(milter_packet_split(two, sizeof(two), &cmd, &data,
	    &dlen, &used), 1);
	assert_int_equal(cmd, 'c');
	assert_int_equal(dlen, 0);
	assert_int_equal(used, 5);
	/* The second packet is truncated: more bytes needed. */
	assert_int_equal(milter_packet_split(two + 5, 5, &cmd, &data, &dlen,
	    &used), 0);
	assert_int_equal(milter_packet_split(zero, sizeof(zero), &cmd, &data,
	    &dlen, &used), -1);
	assert_int_equal(milter_packet_split(huge, sizeof(huge), &cmd, &data,
	    &dlen, &used), -1);
}

static void
test_decode_every_reply(void **state)
{
	struct milter_reply m;
	static const uint8_t opt[] = { 0, 0, 0, 6, 0, 0, 0, 0x11, 0, 0x10, 0,
	    0 };
	static const uint8_t ins[] = { 0, 0, 0, 2, 'X', 0, 'v', 0 };
	static const char *simple = "acdrtps4f";

	for (const char *p = simple; *p; p++) {
		assert_int_equal(decode(*p, "", 0, &m), 0);
		assert_int_equal(m.cmd, *p);
	}
	assert_int_equal(decode('O', opt, sizeof(opt), &m), 0);
	assert_int_equal(m.version, 6);
	assert_int_equal(m.actions, 0x11);
	assert_int_equal(m.protocol, SMFIP_HDR_LEADSPC);
	assert_int_equal(decode('h', "Name\0value\0", 11, &m), 0);
	assert_string_equal(m.name, "Name");
	assert_string_equal(m.value, "value");
	assert_int_equal(decode('i', ins, sizeof(ins), &m), 0);
	assert_int_equal(m.index, 2);
	assert_string_equal(m.name, "X");
	assert_int_equal(decode('m', ins, sizeof(ins), &m), 0);
	assert_int_equal(decode('e', "<a@b>\0SIZE=1\0", 13, &m), 0);
	assert_string_equal(m.addr, "<a@b>");
	assert_string_equal(m.args, "SIZE=1");
	assert_int_equal(decode('+', "<c@d>\0", 6, &m), 0);
	assert_string_equal(m.addr, "<c@d>");
	assert_int_equal(decode('-', "<c@d>\0", 6, &m), 0);
	assert_int_equal(decode('2', "<c@d>\0", 6, &m), 0);
	assert_null(m.args);
	assert_int_equal(decode('b', "body", 4, &m), 0);
	assert_int_equal(m.body_len, 4);
	assert_int_equal(decode('q', "why\0", 4, &m), 0);
	assert_string_equal(m.text, "why");
	assert_int_equal(decode('y', "550 5.7.1 no\0", 13, &m), 0);
	assert_int_equal(m.code, 550);
	assert_string_equal(milter_reply_name('h'), "addheader");
	assert_string_equal(milter_reply_name('Z'), "unknown");
}

static void
test_decode_refuses_malformed(void **state)
{
	struct milter_reply m;
	static const uint8_t shortidx[] = { 0, 0, 1 };

	assert_int_equal(decode('O', "\0\0\0\6", 4, &m), -1);
	assert_int_equal(decode('h', "Name\0value", 10, &m), -1);  /* no NUL */
	assert_int_equal(decode('h', "Na me\0v\0", 8, &m), -1);    /* name  */
	assert_int_equal(decode('h', "Na:me\0v\0", 8, &m), -1);
	assert_int_equal(decode('h', "\0v\0", 3, &m), -1);
	assert_int_equal(decode('i', shortidx, sizeof(shortidx), &m), -1);
	assert_int_equal(decode('e', "", 0, &m), -1);
	assert_int_equal(decode('+', "a\nb\0", 4, &m), -1);         /* control */
	assert_int_equal(decode('q', "x", 1, &m), -1);
	assert_int_equal(decode('y', "250 ok\0", 7, &m), -1);       /* not 4/5 */
	assert_int_equal(decode('y', "5x0 no\0", 7, &m), -1);
	assert_int_equal(decode('Z', "", 0, &m), -1);
}

static void
test_replycode_split(void **state)
{
	char enh[16], text[64];
	int code;

	assert_int_equal(milter_replycode_split("554-5.7.1 first\r\n"
	    "554 5.7.1 second", &code, enh, text, sizeof(text)), 0);
	assert_int_equal(code, 554);
	assert_string_equal(enh, "5.7.1");
	assert_string_equal(text, "first; second");
	assert_int_equal(milter_replycode_split("451 try later", &code, enh,
	    text, sizeof(text)), 0);
	assert_string_equal(enh, "");
	assert_string_equal(text, "try later");
	/* Lines with different codes, a continuation with no last line,
	 * more after the last line: malformed. */
	assert_int_equal(milter_replycode_split("554-a\r\n550 b", &code, enh,
	    text, sizeof(text)), -1);
	assert_int_equal(milter_replycode_split("554-a\r\n", &code, enh, text,
	    sizeof(text)), -1);
	assert_int_equal(milter_replycode_split("554 a\r\nx", &code, enh, text,
	    sizeof(text)), -1);
	/* The text is truncated to fit, never overflows. */
	assert_int_equal(milter_replycode_split("550 5.7.1 0123456789", &code,
	    enh, text, 5), 0);
	assert_string_equal(text, "0123");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_optneg_and_connect),
		cmocka_unit_test(test_encode_macros_header_body),
		cmocka_unit_test(test_packet_split_bounds),
		cmocka_unit_test(test_decode_every_reply),
		cmocka_unit_test(test_decode_refuses_malformed),
		cmocka_unit_test(test_replycode_split),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
