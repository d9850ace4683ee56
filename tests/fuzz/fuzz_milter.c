/*
 * fuzz_milter.c - libFuzzer target for common/milter_codec.c: the
 * replies a milter sends elemta-policyd's milter client, split into
 * packets and decoded as policyd/milter.c does, and common/msg_edit.c
 * fed with what the modifications carry.
 *
 * Built and run by mk/fuzz.mk / scripts/fuzz.  The input is a stream of
 * packets (4-byte length, command, data).  Promises checked
 * (milter_codec.h, msg_edit.h):
 *  - a split packet lies inside the input, its length is bounded, and
 *    every strict prefix of it asks for more bytes;
 *  - a decoded string points into the packet and is NUL-terminated
 *    there, within its bound; a header name has no ':' or blank; an
 *    address has no control byte; REPLYCODE's code is 400..599;
 *  - decoding is deterministic (the same bytes decode the same again);
 *  - an edit list built from the modifications survives its wire form:
 *    encoded, every line parses back to the same number of edits.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "milter_codec.h"
#include "msg_edit.h"

#include "fuzz.h"

/* in_packet - s (NUL-terminated) lies inside data[0..len). */
static bool
in_packet(const char *s, const uint8_t *data, size_t len, size_t max)
{
	const char *b = (const char *)data;
	size_t n;

	if (s < b || s >= b + len)
		return false;
	n = strnlen(s, (size_t)(b + len - s));
	return s + n < b + len && n <= max;
}

/* check_reply - the promises of one decoded reply. */
static void
check_reply(const struct milter_reply *m, const uint8_t *data, size_t len)
{
	if (m->name != NULL) {
		FUZZ_CHECK(in_packet(m->name, data, len,
		    MILTER_HEADER_NAME_MAX), "name outside the packet");
		FUZZ_CHECK(m->name[0] != '\0' && strpbrk(m->name, ": \t") == NULL,
		    "bad header name accepted");
		FUZZ_CHECK(in_packet(m->value, data, len,
		    MILTER_HEADER_VALUE_MAX), "value outside the packet");
	}
	if (m->addr != NULL) {
		FUZZ_CHECK(in_packet(m->addr, data, len, MILTER_ADDR_MAX),
		    "address outside the packet");
		for (const unsigned char *p = (const unsigned char *)m->addr;
		    *p; p++)
			FUZZ_CHECK(*p >= 32 && *p != 127, "control in address");
	}
	if (m->args != NULL)
		FUZZ_CHECK(in_packet(m->args, data, len, MILTER_ADDR_MAX),
		    "args outside the packet");
	if (m->text != NULL)
		FUZZ_CHECK(in_packet(m->text, data, len, MILTER_TEXT_MAX),
		    "text outside the packet");
	if (m->cmd == SMFIR_REPLYCODE)
		FUZZ_CHECK(m->code >= 400 && m->code <= 599, "code %d", m->code);
	if (m->body != NULL)
		FUZZ_CHECK(m->body == data && m->body_len == len, "body");
}

/* add_edit - what policyd/milter.c does with a modification. */
static void
add_edit(struct msg_edits *e, const struct milter_reply *m)
{
	switch (m->cmd) {
	case SMFIR_ADDHEADER:
		(void)msg_edits_header(e, MSG_EDIT_HEADER_ADD, 0, m->name,
		    m->value, false);
		break;
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		(void)msg_edits_header(e, m->cmd == SMFIR_INSHEADER ?
		    MSG_EDIT_HEADER_INSERT : MSG_EDIT_HEADER_CHANGE, m->index,
		    m->name, m->value, true);
		break;
	case SMFIR_CHGFROM:
		(void)msg_edits_envelope(e, MSG_EDIT_SENDER, m->addr, m->args);
		break;
	case SMFIR_ADDRCPT:
	case SMFIR_ADDRCPT_PAR:
		(void)msg_edits_envelope(e, MSG_EDIT_RCPT_ADD, m->addr, NULL);
		break;
	case SMFIR_DELRCPT:
		(void)msg_edits_envelope(e, MSG_EDIT_RCPT_DEL, m->addr, NULL);
		break;
	case SMFIR_REPLBODY:
		(void)msg_edits_body_append(e, m->body, m->body_len);
		break;
	default:
		break;
	}
}

/* check_round_trip - e encoded and parsed back has as many edits. */
static void
check_round_trip(const struct msg_edits *e)
{
	struct strbuf sb = STRBUF_INIT(0);
	struct msg_edits back = { 0 };
	struct error err;
	char *line, *save = NULL;

	FUZZ_CHECK(msg_edits_encode(e, "elemta_edit", &sb) == 0, "encode");
	for (line = sb.data != NULL ? strtok_r(sb.data, "\n", &save) : NULL;
	    line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		FUZZ_CHECK(strlen(line) <= 64 * 1024, "edit line too long");
		FUZZ_CHECK(msg_edit_parse(&back, line + 12, &err) == 0,
		    "%s: %s", err.text, line);
	}
	FUZZ_CHECK(back.count == e->count && back.body_len == e->body_len,
	    "round trip lost edits");
	strbuf_free(&sb);
	msg_edits_free(&back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msg_edits edits = { 0 };
	size_t off = 0;

	while (off < size) {
		struct milter_reply m, again;
		const uint8_t *pd, *pd2;
		const char *why;
		size_t dlen, used, d2, u2;
		char cmd, c2;
		int rc = milter_packet_split(data + off, size - off, &cmd, &pd,
		    &dlen, &used);

		if (rc <= 0)
			break;
		FUZZ_CHECK(used == dlen + 5 && used <= size - off &&
		    dlen <= MILTER_PACKET_MAX, "split bounds");
		FUZZ_CHECK(milter_packet_split(data + off, used - 1, &c2, &pd2,
		    &d2, &u2) == 0, "a prefix split");
		rc = milter_reply_decode(cmd, pd, dlen, &m, &why);
		FUZZ_CHECK(rc == 0 || why[0] != '\0', "error without reason");
		if (rc == 0) {
			check_reply(&m, pd, dlen);
			FUZZ_CHECK(milter_reply_decode(cmd, pd, dlen, &again,
			    &why) == 0 && memcmp(&m, &again, sizeof(m)) == 0,
			    "not deterministic");
			add_edit(&edits, &m);
		}
		off += used;
	}
	check_round_trip(&edits);
	msg_edits_free(&edits);
	return 0;
}
