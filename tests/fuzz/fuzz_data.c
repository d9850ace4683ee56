/*
 * fuzz_data.c - libFuzzer target for the DATA body state machine
 * (smtpd/data.c): end-of-data detection, dot-unstuffing, bare CR/LF
 * handling, line lengths - the SMTP smuggling defence.
 *
 * Built and run by mk/fuzz.mk / scripts/fuzz.  The input is the byte
 * stream a client sends after 354.  It is fed in one chunk, in 1-byte
 * chunks and in random chunks (seeded from the input), each into an
 * output buffer of exactly DATA_OUT_MAX(len) bytes on the heap.
 * Promises checked (data.h):
 *  - the output and the verdict (end reached, bytes consumed, size,
 *    bare_newline, line_too_long, final state) do not depend on the
 *    chunking;
 *  - one call never writes more than DATA_OUT_MAX(len) bytes, never
 *    consumes more than given, and consumes everything unless it ended;
 *  - the end is reached only right after CR LF "." CR LF where the first
 *    CR LF is a real one (or the start), and consumption stops there;
 *  - the output has no bare CR or LF, size counts it exactly, and a
 *    bare CR/LF in the input sets bare_newline;
 *  - re-sending the output dot-stuffed, with a final CRLF "." CRLF, gives
 *    the same output back, ends exactly at the end, without bare_newline,
 *    and with line_too_long exactly when a line passes 998 octets.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "../../smtpd/data.h"

#include "fuzz.h"

/* What one run over the input produced. */
struct data_run {
	char *out;           /* all output, concatenated (owned) */
	size_t out_len;
	size_t consumed;
	int ended;
	struct data_machine m;
};

/* data_feed - run in[0..len) through a fresh machine in chunks of mode
 * (0 one chunk, 1 one byte, 2 random). */
static void
data_feed(const char *in, size_t len, int mode, struct fuzz_rng *rng,
    struct data_run *r)
{
	size_t off = 0;

	data_machine_init(&r->m);
	r->out = xmalloc(DATA_OUT_MAX(len) + 1);
	r->out_len = 0;
	r->consumed = 0;
	r->ended = 0;
	while (off < len && !r->ended) {
		size_t n = mode == 0 ? len - off : mode == 1 ? 1 :
		    fuzz_chunk(rng, len - off);
		/* Exactly the promised room: ASan sees one byte more. */
		char *out = xmalloc(DATA_OUT_MAX(n));
		size_t olen = (size_t)-1, used = (size_t)-1;
		uint64_t before = r->m.size;
		int ended = data_machine_feed(&r->m, in + off, n, out, &olen,
		    &used);

		FUZZ_CHECK(ended == 0 || ended == 1, "returned %d", ended);
		FUZZ_CHECK(olen <= DATA_OUT_MAX(n), "%zu output bytes from %zu",
		    olen, n);
		FUZZ_CHECK(used <= n && (ended || used == n), "consumed %zu of "
		    "%zu, ended %d", used, n, ended);
		FUZZ_CHECK(r->m.size == before + olen, "size grew by %llu, "
		    "output %zu", (unsigned long long)(r->m.size - before), olen);
		FUZZ_CHECK(ended == (r->m.state == DATA_END), "ended %d in "
		    "state %s", ended, data_state_name(r->m.state));
		FUZZ_CHECK(r->out_len + olen <= DATA_OUT_MAX(len), "total "
		    "output %zu for %zu input bytes", r->out_len + olen, len);
		memcpy(r->out + r->out_len, out, olen);
		r->out_len += olen;
		free(out);
		off += used;
		r->ended = ended;
	}
	r->consumed = off;
	if (r->ended) {
		/* A further feed consumes nothing. */
		char out[DATA_OUT_MAX(1)];
		size_t olen = 1, used = 1;

		FUZZ_CHECK(data_machine_feed(&r->m, "x", 1, out, &olen,
		    &used) == 1 && olen == 0 && used == 0, "fed after the end");
	}
}

/* data_no_bare - out has every CR followed by LF and every LF after CR. */
static bool
data_no_bare(const char *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (out[i] == '\r' && (i + 1 >= len || out[i + 1] != '\n'))
			return false;
		if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r'))
			return false;
	}
	return true;
}

/* data_has_bare - in has a CR not followed by LF or an LF not after CR,
 * before offset end (a CR at end - 1 is followed by what comes next). */
static bool
data_has_bare(const char *in, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\r' && i + 1 < len && in[i + 1] != '\n')
			return true;
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			return true;
	}
	return false;
}

/* data_real_end - in[0..n) ends with a real CRLF "." CRLF (or is ".\r\n"
 * at the very start): the only end data.h allows. */
static bool
data_real_end(const char *in, size_t n)
{
	if (n == 3)
		return memcmp(in, ".\r\n", 3) == 0;
	return n >= 5 && memcmp(in + n - 5, "\r\n.\r\n", 5) == 0;
}

/* data_roundtrip - stuff the output back and decode it again. */
static void
data_roundtrip(const struct data_run *r)
{
	struct data_run back;
	struct fuzz_rng rng = { 1 };
	char *wire = xmalloc(2 * r->out_len + 8);
	size_t w = 0, line = 0, longest = 0;
	bool bol = true;

	for (size_t i = 0; i < r->out_len; i++) {
		if (bol && r->out[i] == '.')
			wire[w++] = '.';
		wire[w++] = r->out[i];
		bol = r->out[i] == '\n';
		if (r->out[i] == '\r' || r->out[i] == '\n') {
			line = 0;
		} else if (++line > longest) {
			longest = line;
		}
	}
	if (!bol) {
		memcpy(wire + w, "\r\n", 2);
		w += 2;
	}
	memcpy(wire + w, ".\r\n", 3);
	w += 3;
	data_feed(wire, w, 0, &rng, &back);
	FUZZ_CHECK(back.ended && back.consumed == w, "re-sent output: ended %d "
	    "after %zu of %zu bytes", back.ended, back.consumed, w);
	FUZZ_CHECK(back.out_len == r->out_len + (bol ? 0 : 2) &&
	    memcmp(back.out, r->out, r->out_len) == 0, "re-sent output "
	    "decodes differently (%zu vs %zu bytes)", back.out_len,
	    r->out_len);
	FUZZ_CHECK(!back.m.bare_newline, "bare_newline on clean CRLF input");
	FUZZ_CHECK(back.m.line_too_long == (longest > DATA_LINE_MAX - 2),
	    "line_too_long %d, longest line %zu", back.m.line_too_long,
	    longest);
	free(back.out);
	free(wire);
}

/* LLVMFuzzerInitialize - quiet logs. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_data", true, (enum log_level)0);
	return 0;
}

/* LLVMFuzzerTestOneInput - one DATA stream. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct data_run run[3];
	struct fuzz_rng rng;

	fuzz_rng_init(&rng, data, size);
	rng.s ^= (uint32_t)size * 2654435761u;
	if (rng.s == 0)
		rng.s = 1;
	for (int m = 0; m < 3; m++)
		data_feed(in, size, m, &rng, &run[m]);
	for (int m = 1; m < 3; m++) {
		const char *how = m == 1 ? "1-byte" : "random";

		FUZZ_CHECK(run[m].ended == run[0].ended &&
		    run[m].consumed == run[0].consumed, "%s chunks: ended %d "
		    "after %zu, one chunk: ended %d after %zu", how,
		    run[m].ended, run[m].consumed, run[0].ended,
		    run[0].consumed);
		FUZZ_CHECK(run[m].out_len == run[0].out_len &&
		    memcmp(run[m].out, run[0].out, run[0].out_len) == 0,
		    "%s chunks: other output (%zu vs %zu bytes)", how,
		    run[m].out_len, run[0].out_len);
		FUZZ_CHECK(run[m].m.state == run[0].m.state &&
		    run[m].m.size == run[0].m.size &&
		    run[m].m.line_len == run[0].m.line_len &&
		    run[m].m.bare_newline == run[0].m.bare_newline &&
		    run[m].m.line_too_long == run[0].m.line_too_long,
		    "%s chunks: other machine state (%s/%s)", how,
		    data_state_name(run[m].m.state),
		    data_state_name(run[0].m.state));
	}
	FUZZ_CHECK(run[0].m.size == run[0].out_len, "size %llu, output %zu",
	    (unsigned long long)run[0].m.size, run[0].out_len);
	FUZZ_CHECK(data_no_bare(run[0].out, run[0].out_len), "bare CR or LF "
	    "in the output");
	FUZZ_CHECK(!run[0].ended || data_real_end(in, run[0].consumed),
	    "ended after %zu bytes without a real CRLF.CRLF",
	    run[0].consumed);
	if (data_has_bare(in, run[0].consumed))
		FUZZ_CHECK(run[0].m.bare_newline, "bare CR/LF in the input, "
		    "bare_newline not set");
	data_roundtrip(&run[0]);
	for (int m = 0; m < 3; m++)
		free(run[m].out);
	return 0;
}
