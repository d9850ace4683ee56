/*
 * milter_codec.c - encode milter commands, split and decode milter
 * replies (protocol version 6).  No I/O: policyd/milter.c feeds it the
 * bytes it read and writes what it encoded.  See milter_codec.h.
 */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "milter_codec.h"
#include "msg_edit.h"

/* put32 - v as 4 big-endian bytes. */
static void
put32(uint8_t out[4], uint32_t v)
{
	out[0] = (uint8_t)(v >> 24);
	out[1] = (uint8_t)(v >> 16);
	out[2] = (uint8_t)(v >> 8);
	out[3] = (uint8_t)v;
}

/* get32 - 4 big-endian bytes. */
static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* milter_packet_begin - see milter_codec.h. */
int
milter_packet_begin(struct strbuf *sb, char cmd, size_t len)
{
	uint8_t hdr[5];

	if (len > MILTER_PACKET_MAX)
		return -1;
	put32(hdr, (uint32_t)len + 1);
	hdr[4] = (uint8_t)cmd;
	return strbuf_append(sb, (const char *)hdr, sizeof(hdr));
}

/* packet_append - a whole packet: header then data; sb unchanged on
 * failure. */
static int
packet_append(struct strbuf *sb, char cmd, const void *data, size_t len)
{
	size_t mark = sb->len;

	if (milter_packet_begin(sb, cmd, len) < 0 ||
	    (len > 0 && strbuf_append(sb, data, len) < 0)) {
		strbuf_truncate(sb, mark);
		return -1;
	}
	return 0;
}

/* milter_encode_optneg - see milter_codec.h. */
int
milter_encode_optneg(struct strbuf *sb, uint32_t actions, uint32_t protocol)
{
	uint8_t d[12];

	put32(d, MILTER_VERSION);
	put32(d + 4, actions);
	put32(d + 8, protocol);
	return packet_append(sb, SMFIC_OPTNEG, d, sizeof(d));
}

/* milter_encode_simple - see milter_codec.h. */
int
milter_encode_simple(struct strbuf *sb, char cmd)
{
	return packet_append(sb, cmd, NULL, 0);
}

/* nul_strings_len - the bytes of n NUL-terminated strings; SIZE_MAX when
 * one is NULL. */
static size_t
nul_strings_len(const char *const *strs, size_t n)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		if (strs[i] == NULL)
			return SIZE_MAX;
		len += strlen(strs[i]) + 1;
	}
	return len;
}

/* append_strings - n strings, each with its NUL. */
static int
append_strings(struct strbuf *sb, const char *const *strs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strbuf_append(sb, strs[i], strlen(strs[i]) + 1) < 0)
			return -1;
	return 0;
}

/* milter_encode_macros - see milter_codec.h. */
int
milter_encode_macros(struct strbuf *sb, char cmd, const char *const *names,
    const char *const *values, size_t n)
{
	size_t mark = sb->len, len;
	size_t ln = nul_strings_len(names, n), lv = nul_strings_len(values, n);

	if (ln == SIZE_MAX || lv == SIZE_MAX)
		return -1;
	len = 1 + ln + lv;
	if (milter_packet_begin(sb, SMFIC_MACRO, len) < 0 ||
	    strbuf_append(sb, &cmd, 1) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const char *pair[2] = { names[i], values[i] };

		if (append_strings(sb, pair, 2) < 0)
			goto fail;
	}
	return 0;
fail:
	strbuf_truncate(sb, mark);
	return -1;
}

/* milter_encode_connect - see milter_codec.h. */
int
milter_encode_connect(struct strbuf *sb, const char *hostname, char family,
    uint16_t port, const char *address)
{
	size_t mark = sb->len;
	size_t hl = strlen(hostname) + 1, al = strlen(address) + 1;
	uint8_t p[2] = { (uint8_t)(port >> 8), (uint8_t)port };
	size_t len = hl + 1 + (family == 'L' ? 0 : 2 + al);

	if (milter_packet_begin(sb, SMFIC_CONNECT, len) < 0 ||
	    strbuf_append(sb, hostname, hl) < 0 ||
	    strbuf_append(sb, &family, 1) < 0)
		goto fail;
	if (family != 'L' && (strbuf_append(sb, (const char *)p, 2) < 0 ||
	    strbuf_append(sb, address, al) < 0))
		goto fail;
	return 0;
fail:
	strbuf_truncate(sb, mark);
	return -1;
}

/* milter_encode_strings - see milter_codec.h. */
int
milter_encode_strings(struct strbuf *sb, char cmd, const char *const *strs,
    size_t n)
{
	size_t mark = sb->len, len = nul_strings_len(strs, n);

	if (len == SIZE_MAX || milter_packet_begin(sb, cmd, len) < 0 ||
	    append_strings(sb, strs, n) < 0) {
		strbuf_truncate(sb, mark);
		return -1;
	}
	return 0;
}

/* milter_encode_header - see milter_codec.h. */
int
milter_encode_header(struct strbuf *sb, const char *name, size_t name_len,
    const char *value, size_t value_len)
{
	size_t mark = sb->len;

	if (memchr(name, '\0', name_len) != NULL ||
	    memchr(value, '\0', value_len) != NULL)
		return -1;
	if (milter_packet_begin(sb, SMFIC_HEADER, name_len + value_len + 2) < 0 ||
	    strbuf_append(sb, name, name_len) < 0 ||
	    strbuf_append(sb, "", 1) < 0 ||
	    strbuf_append(sb, value, value_len) < 0 ||
	    strbuf_append(sb, "", 1) < 0) {
		strbuf_truncate(sb, mark);
		return -1;
	}
	return 0;
}

/* milter_encode_body - see milter_codec.h. */
int
milter_encode_body(struct strbuf *sb, const void *data, size_t len)
{
	if (len > MILTER_CHUNK_MAX)
		return -1;
	return packet_append(sb, SMFIC_BODY, data, len);
}

/* milter_packet_split - see milter_codec.h. */
int
milter_packet_split(const uint8_t *buf, size_t len, char *cmd,
    const uint8_t **data, size_t *dlen, size_t *used)
{
	uint32_t plen;

	if (len < 4)
		return 0;
	plen = get32(buf);
	if (plen == 0 || plen - 1 > MILTER_PACKET_MAX)
		return -1;
	if (len - 4 < plen)
		return 0;
	*cmd = (char)buf[4];
	*data = buf + 5;
	*dlen = plen - 1;
	*used = (size_t)plen + 4;
	return 1;
}

/* take_string - the NUL-terminated string at data[*off..len) of at most
 * max bytes; NULL when there is none. */
static const char *
take_string(const uint8_t *data, size_t len, size_t *off, size_t max)
{
	const uint8_t *nul;
	const char *s;

	if (*off >= len)
		return NULL;
	nul = memchr(data + *off, '\0', len - *off);
	if (nul == NULL || (size_t)(nul - (data + *off)) > max)
		return NULL;
	s = (const char *)data + *off;
	*off = (size_t)(nul - data) + 1;
	return s;
}

/* decode_header - [index] name value, the ADD/INS/CHGHEADER shapes. */
static int
decode_header(const uint8_t *data, size_t len, bool indexed,
    struct milter_reply *out, const char **why)
{
	size_t off = 0;

	if (indexed) {
		if (len < 4) {
			*why = "header edit without its index";
			return -1;
		}
		out->index = get32(data);
		off = 4;
	}
	out->name = take_string(data, len, &off, MILTER_HEADER_NAME_MAX);
	out->value = take_string(data, len, &off, MILTER_HEADER_VALUE_MAX);
	if (out->name == NULL || out->value == NULL) {
		*why = "header edit without a NUL-terminated name and value "
		    "within bounds";
		return -1;
	}
	if (!msg_edit_name_ok(out->name)) {
		*why = "header edit with an invalid field name";
		return -1;
	}
	return 0;
}

/* addr_ok - an envelope address from a milter: no control byte. */
static bool
addr_ok(const char *a)
{
	if (a[0] == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)a; *p; p++)
		if (*p < 32 || *p == 127)
			return false;
	return true;
}

/* decode_addr - addr [args], the CHGFROM / ADDRCPT(_PAR) / DELRCPT
 * shapes. */
static int
decode_addr(const uint8_t *data, size_t len, bool with_args,
    struct milter_reply *out, const char **why)
{
	size_t off = 0;

	out->addr = take_string(data, len, &off, MILTER_ADDR_MAX);
	if (out->addr == NULL || !addr_ok(out->addr)) {
		*why = "envelope edit without a valid NUL-terminated address";
		return -1;
	}
	if (with_args && off < len) {
		out->args = take_string(data, len, &off, MILTER_ADDR_MAX);
		if (out->args == NULL) {
			*why = "envelope edit with unterminated arguments";
			return -1;
		}
	}
	return 0;
}

/* milter_reply_decode - see milter_codec.h. */
int
milter_reply_decode(char cmd, const uint8_t *data, size_t len,
    struct milter_reply *out, const char **why)
{
	size_t off = 0;
	char enh[16], text[8];

	memset(out, 0, sizeof(*out));
	out->cmd = cmd;
	*why = "";
	switch (cmd) {
	case SMFIR_ACCEPT:
	case SMFIR_CONTINUE:
	case SMFIR_DISCARD:
	case SMFIR_REJECT:
	case SMFIR_TEMPFAIL:
	case SMFIR_PROGRESS:
	case SMFIR_SKIP:
	case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
	case SMFIR_SETSYMLIST:
		return 0;   /* data (if any) carries nothing we use */
	case SMFIR_OPTNEG:
		if (len < 12) {
			*why = "option negotiation shorter than 12 bytes";
			return -1;
		}
		out->version = get32(data);
		out->actions = get32(data + 4);
		out->protocol = get32(data + 8);
		return 0;
	case SMFIR_ADDHEADER:
		return decode_header(data, len, false, out, why);
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		return decode_header(data, len, true, out, why);
	case SMFIR_CHGFROM:
		return decode_addr(data, len, true, out, why);
	case SMFIR_ADDRCPT_PAR:
		return decode_addr(data, len, true, out, why);
	case SMFIR_ADDRCPT:
	case SMFIR_DELRCPT:
		return decode_addr(data, len, false, out, why);
	case SMFIR_REPLBODY:
		out->body = data;
		out->body_len = len;
		return 0;
	case SMFIR_QUARANTINE:
		out->text = take_string(data, len, &off, MILTER_TEXT_MAX);
		if (out->text == NULL) {
			*why = "quarantine reason not NUL-terminated within "
			    "bounds";
			return -1;
		}
		return 0;
	case SMFIR_REPLYCODE:
		out->text = take_string(data, len, &off, MILTER_TEXT_MAX);
		if (out->text == NULL ||
		    milter_replycode_split(out->text, &out->code, enh, text,
		    sizeof(text)) < 0) {
			*why = "malformed reply code";
			return -1;
		}
		return 0;
	default:
		*why = "unknown reply command";
		return -1;
	}
}

/* milter_reply_name - see milter_codec.h. */
const char *
milter_reply_name(char cmd)
{
	switch (cmd) {
	case SMFIR_ADDRCPT: return "addrcpt";
	case SMFIR_DELRCPT: return "delrcpt";
	case SMFIR_ADDRCPT_PAR: return "addrcpt_par";
	case SMFIR_SHUTDOWN: return "shutdown";
	case SMFIR_ACCEPT: return "accept";
	case SMFIR_REPLBODY: return "replbody";
	case SMFIR_CONTINUE: return "continue";
	case SMFIR_DISCARD: return "discard";
	case SMFIR_CHGFROM: return "chgfrom";
	case SMFIR_CONN_FAIL: return "conn_fail";
	case SMFIR_ADDHEADER: return "addheader";
	case SMFIR_INSHEADER: return "insheader";
	case SMFIR_SETSYMLIST: return "setsymlist";
	case SMFIR_CHGHEADER: return "chgheader";
	case SMFIR_PROGRESS: return "progress";
	case SMFIR_QUARANTINE: return "quarantine";
	case SMFIR_REJECT: return "reject";
	case SMFIR_SKIP: return "skip";
	case SMFIR_TEMPFAIL: return "tempfail";
	case SMFIR_REPLYCODE: return "replycode";
	case SMFIR_OPTNEG: return "optneg";
	default: return "unknown";
	}
}

/* enhanced_at - the length of an RFC 3463 code "c.d.d" of class cls at
 * p (followed by a space or the end), else 0. */
static size_t
enhanced_at(const char *p, char cls)
{
	size_t i = 0, digits;

	if (p[0] != cls || p[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		for (digits = 0; p[i] >= '0' && p[i] <= '9' && digits < 3; i++)
			digits++;
		if (digits == 0)
			return 0;
		if (part == 0) {
			if (p[i] != '.')
				return 0;
			i++;
		}
	}
	if (p[i] != ' ' && p[i] != '\0' && p[i] != '\r' && p[i] != '\n')
		return 0;
	return i < 16 ? i : 0;
}

/* milter_replycode_split - see milter_codec.h. */
int
milter_replycode_split(const char *reply, int *code, char enhanced[16],
    char *text, size_t textlen)
{
	const char *p = reply;
	size_t tl = 0;
	bool last = false;

	*code = 0;
	enhanced[0] = '\0';
	if (textlen > 0)
		text[0] = '\0';
	while (!last) {
		int c;
		size_t n, elen;
		const char *eol;

		if (p[0] < '1' || p[0] > '9' || p[1] < '0' || p[1] > '9' ||
		    p[2] < '0' || p[2] > '9')
			return -1;
		c = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		if (c < 400 || c > 599 || (*code != 0 && c != *code))
			return -1;
		*code = c;
		if (p[3] == '-')
			last = false;
		else if (p[3] == ' ' || p[3] == '\0' || p[3] == '\r' ||
		    p[3] == '\n')
			last = true;
		else
			return -1;
		p += p[3] == '\0' ? 3 : 4;
		if ((elen = enhanced_at(p, reply[0])) > 0) {
			if (enhanced[0] == '\0') {
				memcpy(enhanced, p, elen);
				enhanced[elen] = '\0';
			}
			p += elen;
			if (*p == ' ')
				p++;
		}
		eol = p + strcspn(p, "\r\n");
		n = (size_t)(eol - p);
		if (n > 0 && textlen > 0) {
			if (tl > 0 && tl + 2 < textlen) {
				memcpy(text + tl, "; ", 2);
				tl += 2;
			}
			if (tl + n >= textlen)
				n = textlen - 1 - tl;
			memcpy(text + tl, p, n);
			tl += n;
			text[tl] = '\0';
		}
		p = eol;
		if (*p == '\r')
			p++;
		if (*p == '\n')
			p++;
		if (last && *p != '\0')
			return -1;    /* a final line followed by more */
		if (!last && *p == '\0')
			return -1;    /* continuation without a last line */
	}
	/* Control bytes in the text would break the SMTP reply. */
	for (size_t i = 0; i < tl; i++)
		if ((unsigned char)text[i] < 32 || text[i] == 127)
			text[i] = ' ';
	return 0;
}
