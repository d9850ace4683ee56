/*
 * fuzz_wire.c - libFuzzer target for the policy protocol codec
 * (common/wire.c): the request parser policyd runs on bytes from smtpd or
 * from a real Postfix, and the reply parser smtpd runs on policyd's (or a
 * foreign policy server's) answer.
 *
 * Built and run by mk/fuzz.mk / scripts/fuzz.  The input is one byte
 * stream as read from a socket.  Promises checked:
 *  - the parser never reports more consumed bytes than it was given, and
 *    all of them when it asks for more;
 *  - a complete request's attributes are NUL-terminated strings inside
 *    the request's buffer, names non-empty and free of '=' and LF;
 *  - the look-ups agree with the attribute list (last value wins, nth);
 *  - the result does not depend on the chunking: one chunk, 1-byte chunks
 *    and random chunks give the same requests and the same outcome;
 *  - encoding a parsed request and parsing it again gives it back (CR
 *    inside a value comes back as '?', as wire_encode_attr promises);
 *  - wire_reply_parse on the same bytes gives a consistent reply, and
 *    encoding that reply and parsing it again keeps its meaning.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "strbuf.h"
#include "wire.h"

#include "fuzz.h"

/* What one pass over the input produced. */
struct wire_pass {
	uint64_t *hashes;     /* one per completed request */
	size_t count;
	int outcome;          /* 0 clean end, 1 request pending, -1 error */
};

/* wire_fnv - FNV-1a over n bytes, continuing from h. */
static uint64_t
wire_fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 1099511628211u;
	}
	return h;
}

/* wire_in_buf - s is a NUL-terminated string lying inside r's buffer. */
static bool
wire_in_buf(const struct wire_request *r, const char *s)
{
	if (s < r->buf || s >= r->buf + r->len)
		return false;
	return memchr(s, '\0', (size_t)(r->buf + r->len - s)) != NULL;
}

/* wire_same_but_cr - a equals b with every CR of b read as '?'. */
static bool
wire_same_but_cr(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++)
		if (*a != (*b == '\r' ? '?' : *b))
			return false;
	return *a == '\0' && *b == '\0';
}

/* wire_check_roundtrip - encode r with wire_encode_attr and parse it back. */
static void
wire_check_roundtrip(const struct wire_request *r)
{
	struct strbuf sb = STRBUF_INIT(WIRE_REQUEST_MAX + 16);
	struct wire_parser p;
	struct error err;
	size_t used = 0;
	int rc;

	for (size_t i = 0; i < r->count; i++)
		if (wire_encode_attr(&sb, r->attrs[i].name, r->attrs[i].value) < 0)
			goto out;   /* at the size limits: refusing is allowed */
	if (wire_encode_end(&sb) < 0)
		goto out;
	wire_parser_init(&p);
	rc = wire_parser_feed(&p, sb.data, sb.len, &used, &err);
	FUZZ_CHECK(rc == 1, "re-parse of an encoded request gave %d (%s)", rc,
	    rc < 0 ? err.text : "");
	FUZZ_CHECK(used == sb.len, "re-parse used %zu of %zu bytes", used,
	    sb.len);
	FUZZ_CHECK(p.req.count == r->count, "re-parse gave %zu attributes, "
	    "not %zu", p.req.count, r->count);
	for (size_t i = 0; i < r->count; i++) {
		FUZZ_CHECK(wire_same_but_cr(p.req.attrs[i].name,
		    r->attrs[i].name), "attribute %zu name changed", i);
		FUZZ_CHECK(wire_same_but_cr(p.req.attrs[i].value,
		    r->attrs[i].value), "attribute %zu value changed", i);
	}
	wire_parser_free(&p);
out:
	strbuf_free(&sb);
}

/* wire_check_request - the promises about one complete request; returns
 * its hash for the chunking comparison. */
static uint64_t
wire_check_request(const struct wire_parser *p, bool deep)
{
	const struct wire_request *r = &p->req;
	uint64_t h = 14695981039346656037u;

	FUZZ_CHECK(p->state == WIRE_PARSE_DONE, "state %s after a complete "
	    "request", wire_parse_state_name(p->state));
	FUZZ_CHECK(r->count <= WIRE_ATTRS_MAX, "%zu attributes", r->count);
	FUZZ_CHECK(r->len <= WIRE_REQUEST_MAX && r->len <= r->bufcap,
	    "len %zu bufcap %zu", r->len, r->bufcap);
	for (size_t i = 0; i < r->count; i++) {
		const struct wire_attr *a = &r->attrs[i];

		FUZZ_CHECK(wire_in_buf(r, a->name), "attribute %zu name "
		    "outside the buffer", i);
		FUZZ_CHECK(wire_in_buf(r, a->value), "attribute %zu value "
		    "outside the buffer", i);
		FUZZ_CHECK(a->name[0] != '\0', "attribute %zu: empty name", i);
		FUZZ_CHECK(strpbrk(a->name, "=\n") == NULL, "attribute %zu: "
		    "'=' or LF in the name", i);
		FUZZ_CHECK(strchr(a->value, '\n') == NULL, "attribute %zu: LF "
		    "in the value", i);
		h = wire_fnv(h, a->name, strlen(a->name) + 1);
		h = wire_fnv(h, a->value, strlen(a->value) + 1);
	}
	h = wire_fnv(h, &r->count, sizeof(r->count));
	if (!deep || r->count == 0)
		return h;

	/* Look-ups: the last value wins; nth walks the same list. */
	{
		const struct wire_attr *last = &r->attrs[r->count - 1];
		const char *name = r->attrs[0].name;
		size_t n = wire_request_count(r, name);

		FUZZ_CHECK(wire_request_get(r, last->name) == last->value,
		    "wire_request_get is not the last value");
		FUZZ_CHECK(n >= 1 && wire_request_nth(r, name, 0) ==
		    r->attrs[0].value, "wire_request_nth(0) is not the first");
		FUZZ_CHECK(wire_request_nth(r, name, n - 1) ==
		    wire_request_get(r, name), "nth(count-1) != get");
		FUZZ_CHECK(wire_request_nth(r, name, n) == NULL,
		    "nth(count) != NULL");
	}
	wire_check_roundtrip(r);
	return h;
}

/* wire_run - parse data in chunks of mode (0 one chunk, 1 one byte,
 * 2 random) into pass; deep checks only on the first pass. */
static void
wire_run(const uint8_t *data, size_t size, int mode, struct wire_pass *pass)
{
	struct wire_parser p;
	struct fuzz_rng rng;
	size_t off = 0;

	fuzz_rng_init(&rng, data, size);
	rng.s ^= (uint32_t)size * 2654435761u;
	if (rng.s == 0)
		rng.s = 1;
	wire_parser_init(&p);
	pass->count = 0;
	pass->outcome = 0;
	while (off < size) {
		size_t n = mode == 0 ? size - off : mode == 1 ? 1 :
		    fuzz_chunk(&rng, size - off);
		size_t pos = 0;

		/* Feed one chunk to the end: several requests may be in it. */
		while (pos < n) {
			struct error err = { "" };
			size_t used = (size_t)-1;
			int rc = wire_parser_feed(&p, (const char *)data + off +
			    pos, n - pos, &used, &err);

			FUZZ_CHECK(used <= n - pos, "consumed %zu of %zu", used,
			    n - pos);
			if (rc < 0) {
				FUZZ_CHECK(p.state == WIRE_PARSE_ERROR &&
				    err.text[0] != '\0', "error without the "
				    "error state or text");
				pass->outcome = -1;
				wire_parser_free(&p);
				return;
			}
			if (rc == 0) {
				FUZZ_CHECK(used == n - pos, "asked for more after "
				    "%zu of %zu bytes", used, n - pos);
				pos = n;
				break;
			}
			FUZZ_CHECK(rc == 1 && used >= 1, "rc %d used %zu", rc,
			    used);
			pass->hashes[pass->count++] = wire_check_request(&p,
			    mode == 0);
			pos += used;
		}
		off += n;
	}
	/* Clean: nothing of a next request has arrived. */
	pass->outcome = p.state == WIRE_PARSE_DONE ||
	    (p.state == WIRE_PARSE_LINE_START && p.req.len == 0) ? 0 : 1;
	wire_parser_free(&p);
}

/* wire_check_reply - wire_reply_parse on text, and its round trip. */
static void
wire_check_reply(const char *text)
{
	struct wire_reply a, b;
	struct elemta_result res;
	struct strbuf sb = STRBUF_INIT(0);
	const char *value;

	wire_reply_parse(text, &a);
	FUZZ_CHECK(a.action >= ELEMTA_CONTINUE && a.action <= ELEMTA_QUARANTINE,
	    "action %d", (int)a.action);
	FUZZ_CHECK(memchr(a.enhanced, '\0', sizeof(a.enhanced)) != NULL &&
	    memchr(a.text, '\0', sizeof(a.text)) != NULL, "unterminated");
	FUZZ_CHECK(strpbrk(a.text, "\r\n") == NULL, "CR/LF in the reply text");
	if (a.action == ELEMTA_REJECT)
		FUZZ_CHECK(a.code >= 500 && a.code <= 599, "REJECT code %d",
		    a.code);
	if (a.action == ELEMTA_TEMPFAIL)
		FUZZ_CHECK(a.code >= 400 && a.code <= 499, "TEMPFAIL code %d",
		    a.code);
	if (a.enhanced[0] != '\0' && a.code != 0)
		FUZZ_CHECK(a.enhanced[0] == '0' + a.code / 100, "enhanced %s "
		    "with code %d", a.enhanced, a.code);

	/* What policyd would send for this verdict means the same to smtpd. */
	memset(&res, 0, sizeof(res));
	res.action = a.action;
	res.smtp_code = a.code;
	str_copy(res.enhanced, a.enhanced, sizeof(res.enhanced));
	str_copy(res.message, a.text, sizeof(res.message));
	FUZZ_CHECK(wire_reply_encode(&sb, &res) == 0, "encode failed");
	FUZZ_CHECK(strncmp(strbuf_cstr(&sb), "action=", 7) == 0 &&
	    sb.len >= 9 && strcmp(sb.data + sb.len - 2, "\n\n") == 0 &&
	    memchr(sb.data, '\n', sb.len) == sb.data + sb.len - 2,
	    "encoded reply is not one action line: %s", strbuf_cstr(&sb));
	sb.data[sb.len - 2] = '\0';
	value = sb.data + 7;
	wire_reply_parse(value, &b);
	wire_result_defaults(&res);
	FUZZ_CHECK(b.action == res.action, "action %d came back as %d",
	    (int)res.action, (int)b.action);
	if (res.action == ELEMTA_REJECT || res.action == ELEMTA_TEMPFAIL) {
		FUZZ_CHECK(b.code == res.smtp_code, "code %d came back as %d",
		    res.smtp_code, b.code);
		FUZZ_CHECK(strcmp(b.enhanced, res.enhanced) == 0, "enhanced "
		    "%s came back as %s", res.enhanced, b.enhanced);
	}
	if (res.action != ELEMTA_CONTINUE) {
		const char *m = res.message;

		/* The reply parser skips blanks before the text. */
		while (*m == ' ' || *m == '\t')
			m++;
		FUZZ_CHECK(strcmp(b.text, m) == 0, "text \"%s\" came back as "
		    "\"%s\"", m, b.text);
	}
	strbuf_free(&sb);
}

/* LLVMFuzzerInitialize - quiet logging: error paths log, we only count. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_wire", true, (enum log_level)0);
	return 0;
}

/* LLVMFuzzerTestOneInput - one byte stream through every check. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_pass pass[3];
	char *text;

	for (int m = 0; m < 3; m++)
		pass[m].hashes = xcalloc(size + 1, sizeof(uint64_t));
	for (int m = 0; m < 3; m++)
		wire_run(data, size, m, &pass[m]);
	for (int m = 1; m < 3; m++) {
		FUZZ_CHECK(pass[m].count == pass[0].count, "%s chunks: %zu "
		    "requests, one chunk: %zu", m == 1 ? "1-byte" : "random",
		    pass[m].count, pass[0].count);
		FUZZ_CHECK(pass[m].outcome == pass[0].outcome, "%s chunks: "
		    "outcome %d, one chunk: %d", m == 1 ? "1-byte" : "random",
		    pass[m].outcome, pass[0].outcome);
		for (size_t i = 0; i < pass[0].count; i++)
			FUZZ_CHECK(pass[m].hashes[i] == pass[0].hashes[i],
			    "request %zu differs with %s chunks", i,
			    m == 1 ? "1-byte" : "random");
	}
	for (int m = 0; m < 3; m++)
		free(pass[m].hashes);

	/* The same bytes as the value of an action= line. */
	text = xstrndup((const char *)data, size);
	wire_check_reply(text);
	if (strncmp(text, "action=", 7) == 0)
		wire_check_reply(text + 7);
	free(text);
	return 0;
}
