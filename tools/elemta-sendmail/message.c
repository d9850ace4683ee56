/*
 * message.c - the message elemta-sendmail submits: read from stdin, its
 * recipients taken from the headers for -t, and the header fix-up of
 * local submission (see sendmail.h).
 *
 * Called by main.c and by tests/unit/test_sendmail_message.c.  The input
 * is whatever the calling program wrote: every header is bounded by the
 * message size, every address checked for control characters before it
 * can reach an SMTP command line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sendmail.h"

/*==== Recipient lists ====*/

/* sm_rcpts_add - append a copy of addr, unless it is there already (To:
 * and Cc: naming one address twice is one delivery, as in Postfix). */
static void
sm_rcpts_add(struct sm_rcpts *r, const char *addr)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->v[i], addr) == 0)
			return;
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 8;
		r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
	}
	r->v[r->n++] = xstrdup(addr);
}

/* sm_rcpts_free - see sendmail.h. */
void
sm_rcpts_free(struct sm_rcpts *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/*==== Address lists ====*/

/* What the address-list scanner is collecting. */
struct addr_elem {
	char raw[SM_ADDRESS_MAX + 1];    /* outside <>: an addr-spec or a name */
	size_t raw_len;
	char angle[SM_ADDRESS_MAX + 1];  /* inside <>                          */
	size_t angle_len;
	bool has_angle;
	bool too_long;
};

/* addr_put - one byte of the element, into <> or outside. */
static void
addr_put(struct addr_elem *e, bool in_angle, char c)
{
	char *buf = in_angle ? e->angle : e->raw;
	size_t *len = in_angle ? &e->angle_len : &e->raw_len;

	if (*len >= SM_ADDRESS_MAX) {
		e->too_long = true;
		return;
	}
	buf[(*len)++] = c;
	buf[*len] = '\0';
}

/* addr_finish - the element's address (the <> part if any, else the
 * outside text), qualified, appended; nothing for an empty element. */
static int
addr_finish(struct addr_elem *e, const char *domain, struct sm_rcpts *r,
    struct error *err)
{
	char out[SM_ADDRESS_MAX + 256];
	const char *a = e->has_angle ? e->angle : e->raw;
	const char *colon;

	if (e->too_long)
		return error_set(err, "an address is longer than %d bytes",
		    SM_ADDRESS_MAX);
	/* An obsolete source route "<@a,@b:user@c>": the mailbox only. */
	if (a[0] == '@' && (colon = strchr(a, ':')) != NULL)
		a = colon + 1;
	for (const char *p = a; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return error_set(err, "a control character in the address "
			    "'%.80s'", a);    /* a tab in a quoted local part */
	if (a[0] != '\0') {
		if (strchr(a, '@') != NULL || domain == NULL || domain[0] == '\0')
			snprintf(out, sizeof(out), "%s", a);
		else
			snprintf(out, sizeof(out), "%s@%s", a, domain);
		if (strlen(out) > SM_ADDRESS_MAX)
			return error_set(err, "an address is longer than %d bytes",
			    SM_ADDRESS_MAX);
		sm_rcpts_add(r, out);
	}
	memset(e, 0, sizeof(*e));
	return 0;
}

/* sm_addr_list_parse - see sendmail.h.  Outside quotes, whitespace and
 * comments are dropped (a display name without <> is not an address
 * anyone writes); a group's name ("undisclosed-recipients:") is dropped
 * at its colon. */
int
sm_addr_list_parse(const char *text, const char *domain, struct sm_rcpts *r,
    struct error *err)
{
	struct addr_elem e;
	bool quoted = false, in_angle = false;
	unsigned comment = 0;
	size_t before = r->n;

	memset(&e, 0, sizeof(e));
	for (const char *p = text; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 && c != '\t')
			goto control;
		if (c == 0x7f)
			goto control;
		if (comment > 0) {
			if (c == '\\' && p[1] != '\0')
				p++;
			else if (c == '(')
				comment++;
			else if (c == ')')
				comment--;
			continue;
		}
		if (quoted) {
			if (c == '\\' && p[1] != '\0') {
				addr_put(&e, in_angle, (char)c);
				c = (unsigned char)*++p;
			} else if (c == '"') {
				quoted = false;
			}
			addr_put(&e, in_angle, (char)c);
			continue;
		}
		switch (c) {
		case '"':
			quoted = true;
			addr_put(&e, in_angle, '"');
			break;
		case '(':
			comment = 1;
			break;
		case '<':
			if (in_angle || e.has_angle)
				goto malformed;
			in_angle = true;
			e.has_angle = true;
			break;
		case '>':
			if (!in_angle)
				goto malformed;
			in_angle = false;
			break;
		case ':':
			if (in_angle) {
				addr_put(&e, true, ':');
				break;
			}
			/* A group's display name ends here. */
			memset(&e, 0, sizeof(e));
			break;
		case ',':
		case ';':
			if (in_angle) {
				if (c == ';')
					goto malformed;
				addr_put(&e, true, ',');   /* a source route */
				break;
			}
			if (addr_finish(&e, domain, r, err) < 0)
				goto fail;
			break;
		case ' ':
		case '\t':
			break;
		default:
			addr_put(&e, in_angle, (char)c);
		}
	}
	if (quoted || in_angle || comment > 0)
		goto malformed;
	if (addr_finish(&e, domain, r, err) < 0)
		goto fail;
	return 0;
control:
	error_set(err, "a control character in the address list '%.80s'",
	    text);
	goto fail;
malformed:
	error_set(err, "malformed address list (unbalanced quote, comment or "
	    "<>): '%.200s'", text);
fail:
	while (r->n > before)
		free(r->v[--r->n]);
	return -1;
}

/*==== Reading ====*/

/* sm_message_read - see sendmail.h. */
int
sm_message_read(int fd, bool dot_is_data, size_t max, struct strbuf *out,
    struct error *err)
{
	struct strbuf raw = STRBUF_INIT(max + 1);
	char buf[65536];
	size_t start = 0;
	ssize_t n;
	int rc = 0;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error_set(err, "cannot read the message: %s",
			    strerror(errno));
			rc = -2;
			goto out;
		}
		if (n == 0)
			break;
		if (strbuf_append(&raw, buf, (size_t)n) < 0) {
			rc = error_set(err, "the message is larger than "
			    "server.max_message_size (%zu bytes)", max);
			goto out;
		}
	}
	out->limit = max + 2;
	while (start < raw.len) {
		const char *line = raw.data + start;
		const char *nl = memchr(line, '\n', raw.len - start);
		size_t len = nl != NULL ? (size_t)(nl - line) : raw.len - start;

		start += len + (nl != NULL ? 1 : 0);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (!dot_is_data && len == 1 && line[0] == '.')
			break;
		if (strbuf_append(out, line, len) < 0 ||
		    strbuf_append(out, "\n", 1) < 0) {
			rc = error_set(err, "the message is larger than "
			    "server.max_message_size (%zu bytes)", max);
			goto out;
		}
	}
out:
	strbuf_free(&raw);
	return rc;
}

/*==== Header fix-up ====*/

/* One header field: its bytes (continuation lines included) in msg. */
struct hdr {
	const char *start;
	size_t len;            /* through the last line's '\n'      */
	size_t name_len;
};

/* hdr_is_field - does line (len bytes, no '\n') start a header field:
 * a name of printable characters other than ':' and SP, then ':'? */
static size_t
hdr_is_field(const char *line, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == ':')
			return i > 0 ? i : 0;
		if (c <= ' ' || c >= 0x7f)
			return 0;
	}
	return 0;
}

/* hdr_named - is h the field name? */
static bool
hdr_named(const struct hdr *h, const char *name)
{
	return h->name_len == strlen(name) &&
	    strncasecmp(h->start, name, h->name_len) == 0;
}

/* hdr_value - h's value, unfolded (line breaks dropped), into a new
 * string. */
static char *
hdr_value(const struct hdr *h)
{
	char *v = xmalloc(h->len + 1);
	size_t n = 0;

	for (size_t i = h->name_len + 1; i < h->len; i++)
		if (h->start[i] != '\n' && h->start[i] != '\r')
			v[n++] = h->start[i];
	v[n] = '\0';
	return v;
}

/* fix_display_name - name as a quoted string when it holds anything
 * but atext and spaces. */
static void
fix_display_name(struct strbuf *out, const char *name)
{
	static const char atext[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~ ";
	bool plain = strspn(name, atext) == strlen(name);

	if (plain) {
		strbuf_append_str(out, name);
		return;
	}
	strbuf_append_str(out, "\"");
	for (const char *p = name; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			continue;
		if (*p == '"' || *p == '\\')
			strbuf_append_str(out, "\\");
		strbuf_append(out, p, 1);
	}
	strbuf_append_str(out, "\"");
}

/* fix_added_headers - the From:, Date: and Message-ID: that are missing. */
static void
fix_added_headers(struct strbuf *out, const struct sm_fixup *fx,
    bool has_from, bool has_date, bool has_msgid)
{
	char date[64], stamp[32];
	struct tm tm;

	localtime_r(&fx->now, &tm);
	if (!has_from) {
		strbuf_append_str(out, "From: ");
		if (fx->fullname != NULL && fx->fullname[0] != '\0') {
			fix_display_name(out, fx->fullname);
			strbuf_appendf(out, " <%s>\n", fx->from);
		} else {
			strbuf_appendf(out, "%s\n", fx->from);
		}
	}
	if (!has_date) {
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
		strbuf_appendf(out, "Date: %s\n", date);
	}
	if (!has_msgid) {
		strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
		strbuf_appendf(out, "Message-ID: <%s.%s@%s>\n", stamp,
		    fx->unique, fx->domain);
	}
}

/* sm_message_fix - see sendmail.h. */
int
sm_message_fix(const char *msg, size_t len, const struct sm_fixup *fx,
    struct strbuf *out, struct sm_rcpts *rcpts, struct error *err)
{
	struct hdr *h = NULL;
	size_t nh = 0, cap = 0, pos = 0;
	bool has_from = false, has_date = false, has_msgid = false;
	bool resent = false;
	int rc = 0;

	/* A leading mbox separator is not a header (sendmail drops it). */
	if (len >= 5 && strncmp(msg, "From ", 5) == 0) {
		const char *nl = memchr(msg, '\n', len);

		pos = nl != NULL ? (size_t)(nl - msg) + 1 : len;
	}
	/* The header: fields and their continuation lines, up to an empty
	 * line or the first line that is neither. */
	while (pos < len) {
		const char *line = msg + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t ll = nl != NULL ? (size_t)(nl - line) : len - pos;
		/* The line with its '\n' (none on an unterminated last line). */
		size_t whole = ll + (nl != NULL ? 1 : 0);
		size_t name_len;

		if (ll == 0) {
			pos += whole;
			break;
		}
		if ((line[0] == ' ' || line[0] == '\t') && nh > 0) {
			h[nh - 1].len += whole;
		} else if ((name_len = hdr_is_field(line, ll)) > 0) {
			if (nh == cap) {
				cap = cap ? cap * 2 : 32;
				h = xrealloc(h, cap * sizeof(*h));
			}
			h[nh].start = line;
			h[nh].len = whole;
			h[nh].name_len = name_len;
			nh++;
		} else {
			break;          /* the body starts without a blank line */
		}
		pos += whole;
	}
	for (size_t i = 0; i < nh; i++) {
		/* Header values are read as C strings: a NUL would cut a
		 * recipient list short without a word. */
		if (memchr(h[i].start, '\0', h[i].len) != NULL) {
			rc = error_set(err, "a NUL byte in the %.*s: header",
			    (int)h[i].name_len, h[i].start);
			goto out;
		}
		has_from |= hdr_named(&h[i], "From");
		has_date |= hdr_named(&h[i], "Date");
		has_msgid |= hdr_named(&h[i], "Message-ID");
		resent |= h[i].name_len > 7 &&
		    strncasecmp(h[i].start, "Resent-", 7) == 0;
	}
	for (size_t i = 0; i < nh && fx->extract; i++) {
		static const char *const plain[] = { "To", "Cc", "Bcc" };
		static const char *const re[] = { "Resent-To", "Resent-Cc",
		    "Resent-Bcc" };
		const char *const *names = resent ? re : plain;

		for (size_t k = 0; k < 3; k++) {
			char *v;

			if (!hdr_named(&h[i], names[k]))
				continue;
			v = hdr_value(&h[i]);
			rc = sm_addr_list_parse(v, fx->domain, rcpts, err);
			free(v);
			if (rc < 0) {
				error_prefix(err, "%s: header", names[k]);
				goto out;
			}
		}
	}
	for (size_t i = 0; i < nh; i++)
		if (!hdr_named(&h[i], "Bcc") && !hdr_named(&h[i], "Resent-Bcc"))
			strbuf_append(out, h[i].start, h[i].len);
	/* Only the input's last line can lack its newline (sm_message_read
	 * always ends one; other callers may not). */
	if (out->len > 0 && out->data[out->len - 1] != '\n')
		strbuf_append_str(out, "\n");
	fix_added_headers(out, fx, has_from, has_date, has_msgid);
	strbuf_append_str(out, "\n");
	if (strbuf_append(out, msg + pos, len - pos) < 0)
		rc = error_set(err, "the message is too large");
out:
	free(h);
	return rc;
}
