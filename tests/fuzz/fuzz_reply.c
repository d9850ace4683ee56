/*
 * fuzz_reply.c - libFuzzer target for queued/reply.c: the SMTP/LMTP
 * replies a next hop sends elemta-queued's client, and the EHLO keywords
 * read from them.
 *
 * Built and run by mk/fuzz.mk / scripts/fuzz.  The input is a stream of
 * replies, parsed one after the other as the client would.  Promises
 * checked (reply.h):
 *  - a parsed reply's code is 200..599, it used at least one line and
 *    no more bytes than given, and every line in those bytes starts with
 *    the same code followed by '-' on all but the last (' ' or nothing);
 *  - text has one '\n' per line boundary and no other control byte;
 *    enhanced is empty or a valid RFC 3463 code of the reply's class
 *    that opens text;
 *  - parsing is stateless and prefix-consistent: the same bytes parse
 *    the same again, and every strict prefix of a reply is "more";
 *  - errors carry text; nothing reads past the bytes given;
 *  - reply_outcome's class agrees with the code, reply_oneline fits any
 *    buffer, reply_ehlo_parse never crashes (SIZE is any number).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "../../queued/reply.h"

#include "fuzz.h"

static struct reply r, again;

/* reply_check_lines - every line of data[0..used) carries the code. */
static void
reply_check_lines(const uint8_t *data, size_t used, int code)
{
	size_t off = 0, lines = 0;
	char want[4];

	snprintf(want, sizeof(want), "%03d", code);
	while (off < used) {
		const uint8_t *nl = memchr(data + off, '\n', used - off);
		size_t n;

		FUZZ_CHECK(nl != NULL, "reply bytes end without LF");
		n = (size_t)(nl - (data + off));
		FUZZ_CHECK(n >= 3 && memcmp(data + off, want, 3) == 0,
		    "line %zu does not carry %s", lines, want);
		lines++;
		off += n + 1;
		if (off < used)
			FUZZ_CHECK(n > 3 && data[off - n - 1 + 3] == '-',
			    "line %zu before the end is not a continuation",
			    lines);
		else
			FUZZ_CHECK(n == 3 || data[off - n - 1 + 3] == ' ' ||
			    (n == 4 && data[off - 2] == '\r'),
			    "last line is a continuation");
	}
	FUZZ_CHECK(lines == r.nlines, "%zu lines, reply says %zu", lines,
	    r.nlines);
}

/* reply_check_one - the promises for one parsed reply. */
static void
reply_check_one(const uint8_t *data, size_t len, size_t used,
    struct fuzz_rng *rng)
{
	size_t nl = 0, u2;
	struct error err;
	struct outcome o;
	struct reply_ehlo e;
	char small[8], line[OUTCOME_TEXT_MAX];

	FUZZ_CHECK(r.code >= 200 && r.code <= 599, "code %d", r.code);
	FUZZ_CHECK(used > 0 && used <= len, "used %zu of %zu", used, len);
	FUZZ_CHECK(r.nlines >= 1 && r.nlines <= REPLY_LINES_MAX, "%zu lines",
	    r.nlines);
	reply_check_lines(data, used, r.code);
	for (const char *p = r.text; *p != '\0'; p++) {
		FUZZ_CHECK((unsigned char)*p >= 0x20 || *p == '\n',
		    "control byte 0x%02x in text", (unsigned char)*p);
		FUZZ_CHECK(*p != 0x7f, "DEL in text");
		nl += *p == '\n';
	}
	FUZZ_CHECK(nl + 1 == r.nlines, "%zu newlines for %zu lines", nl,
	    r.nlines);
	if (r.enhanced[0] != '\0') {
		FUZZ_CHECK(outcome_enhanced_valid(r.enhanced, 0), "enhanced "
		    "'%s'", r.enhanced);
		FUZZ_CHECK(r.enhanced[0] - '0' == r.code / 100, "class of %s "
		    "for %d", r.enhanced, r.code);
		FUZZ_CHECK(strncmp(r.text, r.enhanced, strlen(r.enhanced)) ==
		    0, "enhanced code not at the start of the text");
	}
	/* Stateless: the same bytes, the same reply. */
	FUZZ_CHECK(reply_parse((const char *)data, used, &u2, &again, &err) ==
	    REPLY_DONE && u2 == used && again.code == r.code &&
	    strcmp(again.text, r.text) == 0 && strcmp(again.enhanced,
	    r.enhanced) == 0, "reparse differs");
	/* A strict prefix is never a reply nor an error. */
	if (used > 1) {
		size_t k = fuzz_rng_next(rng) % used;

		FUZZ_CHECK(reply_parse((const char *)data, k, &u2, &again,
		    &err) == REPLY_MORE, "prefix %zu of %zu is not 'more'", k,
		    used);
	}
	reply_outcome(&r, &o);
	FUZZ_CHECK(o.code == r.code && o.enhanced[0] - '0' ==
	    (o.result == OUTCOME_DELIVERED ? 2 : o.result == OUTCOME_PERMFAIL ?
	    5 : 4), "outcome %d %s for %d", o.result, o.enhanced, r.code);
	FUZZ_CHECK((o.result == OUTCOME_DELIVERED) == (r.code / 100 == 2) &&
	    (o.result == OUTCOME_PERMFAIL) == (r.code / 100 == 5),
	    "outcome class for %d", r.code);
	FUZZ_CHECK(strchr(o.text, '\n') == NULL, "outcome text has LF");
	reply_oneline(&r, small, sizeof(small));
	FUZZ_CHECK(strlen(small) < sizeof(small), "oneline overflow");
	reply_oneline(&r, line, sizeof(line));
	FUZZ_CHECK(strchr(line, '\n') == NULL, "oneline has LF");
	(void)reply_message(&r);
	reply_ehlo_parse(&r, &e);
	FUZZ_CHECK(r.code / 100 == 2 || (!e.pipelining && !e.starttls &&
	    e.auth == 0), "keywords from a refusal");
}

/* LLVMFuzzerInitialize - quiet logs. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_reply", true, (enum log_level)0);
	return 0;
}

/* LLVMFuzzerTestOneInput - replies one after another, as the client. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rng rng;
	size_t off = 0;

	fuzz_rng_init(&rng, data, size);
	/* Exact-size heap copies so ASan sees any read past the end. */
	while (off < size) {
		size_t left = size - off, used = 0;
		uint8_t *copy = malloc(left);
		struct error err;
		enum reply_status st;

		memcpy(copy, data + off, left);
		err.text[0] = '\0';
		st = reply_parse((const char *)copy, left, &used, &r, &err);
		if (st == REPLY_DONE)
			reply_check_one(copy, left, used, &rng);
		else if (st == REPLY_ERROR)
			FUZZ_CHECK(err.text[0] != '\0', "error without text");
		else
			FUZZ_CHECK(used == 0, "'more' with used %zu", used);
		free(copy);
		if (st != REPLY_DONE)
			break;
		off += used;
	}
	return 0;
}
