/*
 * reply.c - SMTP/LMTP reply parsing and EHLO keywords (reply.h) for the
 * outbound client, smtp_client.c, and its fuzz target.  Input is the
 * next hop's untrusted bytes; everything is bounded by reply.h's limits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "reply.h"

/* reply_line_code - the code of a line's first three bytes, or -1. */
static int
reply_line_code(const char *p)
{
	if (p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '5' ||
	    p[2] < '0' || p[2] > '9')
		return -1;
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

/* reply_enhanced_len - the length of an RFC 3463 code opening text
 * (followed by a space or the end), or 0. */
static size_t
reply_enhanced_len(const char *text)
{
	size_t n = strcspn(text, " \n");

	return n < OUTCOME_ENHANCED_MAX && outcome_enhanced_valid(text, n) ?
	    n : 0;
}

/* reply_parse - one complete reply, or MORE, or ERROR; see reply.h. */
enum reply_status
reply_parse(const char *data, size_t len, size_t *used, struct reply *out,
    struct error *err)
{
	size_t pos = 0, tlen = 0, el;
	int code = 0;

	out->code = 0;
	out->enhanced[0] = '\0';
	out->text[0] = '\0';
	out->nlines = 0;
	*used = 0;
	for (;;) {
		size_t avail = len - pos, n, content;
		const char *line = data + pos, *nl;
		int lc;
		bool last;

		if (pos >= REPLY_TOTAL_MAX)
			return error_set(err, "reply longer than %d bytes",
			    REPLY_TOTAL_MAX), REPLY_ERROR;
		nl = memchr(line, '\n', avail < REPLY_LINE_MAX + 1 ? avail :
		    REPLY_LINE_MAX + 1);
		if (nl == NULL) {
			if (avail > REPLY_LINE_MAX)
				return error_set(err, "reply line longer than "
				    "%d bytes", REPLY_LINE_MAX), REPLY_ERROR;
			if (memchr(line, '\0', avail) != NULL)
				return error_set(err, "NUL in a reply"),
				    REPLY_ERROR;
			return REPLY_MORE;
		}
		n = (size_t)(nl - line) + 1;
		content = n - 1;
		if (content > 0 && line[content - 1] == '\r')
			content--;
		if (memchr(line, '\0', content) != NULL)
			return error_set(err, "NUL in a reply"), REPLY_ERROR;
		if (content < 3 || (lc = reply_line_code(line)) < 0)
			return error_set(err, "not a reply line (no code)"),
			    REPLY_ERROR;
		if (content > 3 && line[3] != ' ' && line[3] != '-')
			return error_set(err, "no separator after the "
			    "reply code"), REPLY_ERROR;
		if (code != 0 && lc != code)
			return error_set(err, "reply code %d after %d in one "
			    "reply", lc, code), REPLY_ERROR;
		code = lc;
		if (++out->nlines > REPLY_LINES_MAX)
			return error_set(err, "reply of more than %d lines",
			    REPLY_LINES_MAX), REPLY_ERROR;
		last = content == 3 || line[3] == ' ';
		/* Text: the bytes after "ddd?", controls made spaces. */
		if (out->nlines > 1) {
			if (tlen + 1 >= sizeof(out->text))
				return error_set(err, "reply text longer than "
				    "%d bytes", REPLY_TOTAL_MAX), REPLY_ERROR;
			out->text[tlen++] = '\n';
		}
		for (size_t i = 4; i < content; i++) {
			unsigned char c = (unsigned char)line[i];

			if (tlen + 1 >= sizeof(out->text))
				return error_set(err, "reply text longer than "
				    "%d bytes", REPLY_TOTAL_MAX), REPLY_ERROR;
			out->text[tlen++] = (char)(c < 0x20 || c == 0x7f ?
			    ' ' : c);
		}
		out->text[tlen] = '\0';
		pos += n;
		if (last)
			break;
	}
	out->code = code;
	/* RFC 3463: a code whose class is not the reply's is ignored. */
	el = reply_enhanced_len(out->text);
	if (el > 0 && out->text[0] - '0' == code / 100) {
		memcpy(out->enhanced, out->text, el);
		out->enhanced[el] = '\0';
	}
	*used = pos;
	return REPLY_DONE;
}

/* reply_class - the first digit. */
int
reply_class(const struct reply *r)
{
	return r->code / 100;
}

/* reply_message - the first line's text after its enhanced code. */
const char *
reply_message(const struct reply *r)
{
	const char *p = r->text + strlen(r->enhanced);

	while (*p == ' ')
		p++;
	return p;
}

/* reply_oneline - the whole reply on one line. */
char *
reply_oneline(const struct reply *r, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%d %s", r->code, r->text);

	if (n > 0)
		for (char *p = buf; *p != '\0'; p++)
			if (*p == '\n')
				*p = ' ';
	return buf;
}

/* reply_outcome - the outcome a final reply means. */
void
reply_outcome(const struct reply *r, struct outcome *o)
{
	char line[OUTCOME_TEXT_MAX];
	enum outcome_result res = reply_class(r) == 2 ? OUTCOME_DELIVERED :
	    reply_class(r) == 5 ? OUTCOME_PERMFAIL : OUTCOME_TEMPFAIL;

	outcome_set(o, res, r->code, r->enhanced, "%s",
	    reply_oneline(r, line, sizeof(line)));
}

/* reply_ehlo_auth - the mechanisms named in an AUTH line's arguments. */
static unsigned
reply_ehlo_auth(const char *args, size_t len)
{
	unsigned mechs = 0;
	size_t i = 0;

	while (i < len) {
		size_t n;

		while (i < len && args[i] == ' ')
			i++;
		for (n = 0; i + n < len && args[i + n] != ' '; n++)
			;
		if (n == 5 && strncasecmp(args + i, "PLAIN", 5) == 0)
			mechs |= REPLY_AUTH_PLAIN;
		else if (n == 5 && strncasecmp(args + i, "LOGIN", 5) == 0)
			mechs |= REPLY_AUTH_LOGIN;
		i += n;
	}
	return mechs;
}

/* reply_ehlo_keyword - one EHLO line: "KEYWORD[ args]" or the old
 * "AUTH=mechs" spelling some servers still send. */
static void
reply_ehlo_keyword(const char *line, size_t len, struct reply_ehlo *e)
{
	size_t kw = 0;
	const char *args;
	size_t alen;

	while (kw < len && line[kw] != ' ' && line[kw] != '=')
		kw++;
	args = line + kw + (kw < len);
	alen = kw < len ? len - kw - 1 : 0;
#define KW(s) (kw == sizeof(s) - 1 && strncasecmp(line, s, kw) == 0)
	if (KW("PIPELINING"))
		e->pipelining = true;
	else if (KW("SIZE")) {
		char num[24];
		char *end;
		unsigned long long v;

		e->size = true;
		e->size_max = 0;
		if (alen > 0 && alen < sizeof(num) && args[0] >= '0' &&
		    args[0] <= '9') {
			memcpy(num, args, alen);
			num[alen] = '\0';
			v = strtoull(num, &end, 10);
			if (*end == '\0')
				e->size_max = v;
		}
	} else if (KW("8BITMIME"))
		e->eightbitmime = true;
	else if (KW("SMTPUTF8"))
		e->smtputf8 = true;
	else if (KW("DSN"))
		e->dsn = true;
	else if (KW("STARTTLS"))
		e->starttls = true;
	else if (KW("ENHANCEDSTATUSCODES"))
		e->enhancedstatuscodes = true;
	else if (KW("CHUNKING"))
		e->chunking = true;
	else if (KW("AUTH"))
		e->auth |= reply_ehlo_auth(args, alen);
#undef KW
}

/* reply_ehlo_parse - the keywords of an EHLO/LHLO reply. */
void
reply_ehlo_parse(const struct reply *r, struct reply_ehlo *out)
{
	const char *p = r->text, *nl;

	memset(out, 0, sizeof(*out));
	if (reply_class(r) != 2)
		return;
	/* The first line is the server's name and greeting. */
	nl = strchr(p, '\n');
	while (nl != NULL) {
		p = nl + 1;
		nl = strchr(p, '\n');
		reply_ehlo_keyword(p, nl != NULL ? (size_t)(nl - p) :
		    strlen(p), out);
	}
}
