/*
 * test_data.c - unit tests for smtpd/data.c, one per promise of data.h:
 * chunking independence, dot-unstuffing, CRLF.CRLF as the only end, the
 * SMTP smuggling payloads, bare CR/LF flagging and conversion, no read
 * past the end, line length and size accounting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../smtpd/data.h"

struct run {
	char *out;
	size_t out_len;
	size_t consumed;
	int ended;
	struct data_machine m;
};

/* run_chunks - feed in with chunks of the given size (0: whole). */
static void
run_chunks(const char *in, size_t len, size_t chunk, struct run *r)
{
	size_t pos = 0;

	memset(r, 0, sizeof(*r));
	r->out = malloc(DATA_OUT_MAX(len) + 8);
	data_machine_init(&r->m);
	if (chunk == 0)
		chunk = len ? len : 1;
	while (pos < len && !r->ended) {
		size_t n = len - pos < chunk ? len - pos : chunk, olen, used;
		char *tmp = malloc(DATA_OUT_MAX(n));

		r->ended = data_machine_feed(&r->m, in + pos, n, tmp, &olen, &used);
		assert_true(olen <= DATA_OUT_MAX(n));
		memcpy(r->out + r->out_len, tmp, olen);
		r->out_len += olen;
		pos += used;
		free(tmp);
		if (!r->ended)
			assert_int_equal(used, n);
	}
	r->consumed = pos;
	assert_int_equal(r->m.size, r->out_len);
}

/* run_all_ways - whole, byte by byte and a few chunk sizes must agree;
 * returns the whole-chunk run. */
static void
run_all_ways(const char *in, size_t len, struct run *whole)
{
	static const size_t sizes[] = { 1, 2, 3, 5, 7, 64 };

	run_chunks(in, len, 0, whole);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct run r;

		run_chunks(in, len, sizes[i], &r);
		assert_int_equal(r.ended, whole->ended);
		assert_int_equal(r.consumed, whole->consumed);
		assert_int_equal(r.out_len, whole->out_len);
		assert_memory_equal(r.out, whole->out, r.out_len);
		assert_int_equal(r.m.bare_newline, whole->m.bare_newline);
		assert_int_equal(r.m.line_too_long, whole->m.line_too_long);
		free(r.out);
	}
}

#define S(lit) (lit), (sizeof(lit) - 1)

static void
test_simple_message(void **state)
{
	struct run r;
	const char in[] = "Subject: x\r\n\r\nHello\r\n.\r\nQUIT\r\n";

	run_all_ways(S(in), &r);
	assert_true(r.ended);
	/* Nothing after the terminator is consumed. */
	assert_int_equal(r.consumed, sizeof(in) - 1 - strlen("QUIT\r\n"));
	assert_int_equal(r.out_len, strlen("Subject: x\r\n\r\nHello\r\n"));
	assert_memory_equal(r.out, "Subject: x\r\n\r\nHello\r\n", r.out_len);
	assert_false(r.m.bare_newline);
	assert_int_equal(r.m.state, DATA_END);
	free(r.out);
}

static void
test_empty_message(void **state)
{
	struct run r;

	run_all_ways(S(".\r\nMAIL"), &r);
	assert_true(r.ended);
	assert_int_equal(r.consumed, 3);
	assert_int_equal(r.out_len, 0);
	free(r.out);
}

static void
test_dot_unstuffing(void **state)
{
	struct run r;
	const char in[] = "..leading\r\n...two\r\n.x\r\nmid.dot\r\n..\r\n.\r\n";
	const char want[] = ".leading\r\n..two\r\nx\r\nmid.dot\r\n.\r\n";

	run_all_ways(S(in), &r);
	assert_true(r.ended);
	assert_int_equal(r.consumed, sizeof(in) - 1);
	assert_int_equal(r.out_len, sizeof(want) - 1);
	assert_memory_equal(r.out, want, r.out_len);
	assert_false(r.m.bare_newline);
	free(r.out);
}

static void
test_eight_bit_and_nul_kept(void **state)
{
	struct run r;
	const char in[] = "\xc3\xa9t\xc3\xa9 \x00 \xff\r\n.\r\n";

	run_all_ways(in, sizeof(in) - 1, &r);
	assert_true(r.ended);
	assert_int_equal(r.out_len, sizeof(in) - 1 - 3);
	assert_memory_equal(r.out, in, r.out_len);
	free(r.out);
}

/* The SMTP smuggling payloads: none may end the data; each is flagged. */
static void
test_smuggling_payloads(void **state)
{
	static const char *const payloads[] = {
		"\n.\n", "\n.\r\n", "\r.\r", "\r\n.\r", "\r\r\n.\r\r\n",
		"\r.\n", "\n.\r", "\r\n.\n", "\r.\r\n", "\n\n.\n\n",
	};

	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		char in[512];
		struct run r;
		int n = snprintf(in, sizeof(in),
		    "Subject: smuggle\r\n\r\nfirst%s"
		    "MAIL FROM:<evil@example.org>\r\nRCPT TO:<v@example.com>\r\n"
		    "DATA\r\nsmuggled\r\n.\r\n", payloads[i]);

		run_all_ways(in, (size_t)n, &r);
		/* The only end is the real CRLF.CRLF at the very end. */
		assert_true(r.ended);
		assert_int_equal(r.consumed, (size_t)n);
		assert_true(r.m.bare_newline);
		/* The smuggled commands are message content. */
		assert_non_null(memmem(r.out, r.out_len, "MAIL FROM:<evil", 15));
		free(r.out);
	}
}

/* Without the final CRLF.CRLF the payloads leave the machine waiting. */
static void
test_payload_never_ends(void **state)
{
	static const char *const payloads[] = {
		"x\n.\n", "x\n.\r\n", "x\r.\r", "x\r\n.\r", "x\r\r\n.\r\r\n",
		"x\r\n.\rX\r\n", "x\r\n.\r\r\n",
	};

	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		struct run r;

		run_all_ways(payloads[i], strlen(payloads[i]), &r);
		assert_false(r.ended);
		assert_int_equal(r.consumed, strlen(payloads[i]));
		/* "x\r\n.\r" is still undecided: the CR is held back */
		if (r.m.state == DATA_DOT_CR)
			assert_int_equal(i, 3);
		else
			assert_true(r.m.bare_newline);
		free(r.out);
	}
}

static void
test_bare_newline_normalised(void **state)
{
	struct run r;
	const char in[] = "a\nb\rc\r\r\nd\n.\ne\r\n.\r\n";
	/* every bare CR/LF becomes CRLF; the lone dots after converted
	 * breaks stay; the real CRLF.CRLF ends */
	const char want[] = "a\r\nb\r\nc\r\n\r\nd\r\n.\r\ne\r\n";

	run_all_ways(S(in), &r);
	assert_true(r.ended);
	assert_true(r.m.bare_newline);
	assert_int_equal(r.out_len, sizeof(want) - 1);
	assert_memory_equal(r.out, want, r.out_len);
	free(r.out);
}

static void
test_cr_lf_split_across_chunks(void **state)
{
	struct data_machine m;
	char out[64];
	size_t olen, used;

	data_machine_init(&m);
	assert_int_equal(data_machine_feed(&m, "abc\r", 4, out, &olen, &used), 0);
	assert_int_equal(olen, 3);
	assert_int_equal(m.state, DATA_CR);
	assert_int_equal(data_machine_feed(&m, "\n.", 2, out, &olen, &used), 0);
	assert_int_equal(m.state, DATA_DOT);
	assert_int_equal(data_machine_feed(&m, "\r", 1, out, &olen, &used), 0);
	assert_int_equal(m.state, DATA_DOT_CR);
	assert_int_equal(data_machine_feed(&m, "\nRSET\r\n", 7, out, &olen, &used),
	    1);
	assert_int_equal(used, 1);
	assert_int_equal(olen, 0);
	assert_false(m.bare_newline);
	/* after the end nothing more is taken */
	assert_int_equal(data_machine_feed(&m, "RSET\r\n", 6, out, &olen, &used), 1);
	assert_int_equal(used, 0);
	assert_string_equal(data_state_name(m.state), "END");
}

static void
test_line_length(void **state)
{
	char *in = malloc(2100);
	struct run r;
	size_t n;

	/* 998 octets + CRLF = 1000: fine */
	memset(in, 'a', 998);
	memcpy(in + 998, "\r\n.\r\n", 5);
	run_all_ways(in, 1003, &r);
	assert_true(r.ended);
	assert_false(r.m.line_too_long);
	free(r.out);

	/* 999 octets: too long */
	memset(in, 'a', 999);
	memcpy(in + 999, "\r\n.\r\n", 5);
	run_all_ways(in, 1004, &r);
	assert_true(r.ended);
	assert_true(r.m.line_too_long);
	free(r.out);

	/* a stuffed dot does not count: "." + 998 octets is fine */
	in[0] = '.';
	memset(in + 1, 'a', 998);
	memcpy(in + 999, "\r\n.\r\n", 5);
	run_all_ways(in, 1004, &r);
	assert_false(r.m.line_too_long);
	assert_int_equal(r.out_len, 1000);
	free(r.out);

	/* many short lines never add up */
	n = 0;
	for (int i = 0; i < 300; i++) {
		memcpy(in + n, "abcd\r\n", 6);
		n += 6;
	}
	memcpy(in + n, ".\r\n", 3);
	run_all_ways(in, n + 3, &r);
	assert_false(r.m.line_too_long);
	assert_int_equal(r.m.size, n);
	free(r.out);
	free(in);
}

static void
test_random_chunks_agree(void **state)
{
	/* A pseudo-random mix of the interesting bytes, fed in random
	 * chunk sizes, must give the same result as one chunk. */
	static const char alphabet[] = "ab.\r\n";
	char in[4096];
	unsigned seed = 12345;

	for (int round = 0; round < 200; round++) {
		struct run whole, r;
		size_t pos = 0;

		for (size_t i = 0; i < sizeof(in); i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = alphabet[(seed >> 16) % 5];
		}
		run_chunks(in, sizeof(in), 0, &whole);
		memset(&r, 0, sizeof(r));
		r.out = malloc(DATA_OUT_MAX(sizeof(in)));
		data_machine_init(&r.m);
		while (pos < sizeof(in) && !r.ended) {
			size_t n, olen, used;

			seed = seed * 1103515245u + 12345u;
			n = 1 + (seed >> 16) % 17;
			if (n > sizeof(in) - pos)
				n = sizeof(in) - pos;
			r.ended = data_machine_feed(&r.m, in + pos, n,
			    r.out + r.out_len, &olen, &used);
			r.out_len += olen;
			pos += used;
		}
		assert_int_equal(r.ended, whole.ended);
		assert_int_equal(pos, whole.consumed);
		assert_int_equal(r.out_len, whole.out_len);
		assert_memory_equal(r.out, whole.out, r.out_len);
		free(r.out);
		free(whole.out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_message),
		cmocka_unit_test(test_empty_message),
		cmocka_unit_test(test_dot_unstuffing),
		cmocka_unit_test(test_eight_bit_and_nul_kept),
		cmocka_unit_test(test_smuggling_payloads),
		cmocka_unit_test(test_payload_never_ends),
		cmocka_unit_test(test_bare_newline_normalised),
		cmocka_unit_test(test_cr_lf_split_across_chunks),
		cmocka_unit_test(test_line_length),
		cmocka_unit_test(test_random_chunks_agree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
