/*
 * msg_edit.c - the edit list of a message: building it (policyd's milter
 * client), its `elemta_edit=` wire form (policyd encodes, smtpd parses)
 * and applying it to a spooled message (smtpd, before commit).  The
 * promises are in msg_edit.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base64.h"
#include "msg_edit.h"

#define APPLY_CHUNK 65536

/*==== Building ====*/

/* edits_slot - a fresh zeroed item, or NULL when the list is full. */
static struct msg_edit *
edits_slot(struct msg_edits *e)
{
	if (e->count >= MSG_EDITS_MAX)
		return NULL;
	if (e->count == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 8;
		e->items = xrealloc(e->items, e->cap * sizeof(*e->items));
	}
	memset(&e->items[e->count], 0, sizeof(e->items[0]));
	return &e->items[e->count++];
}

/* msg_edit_name_ok - see msg_edit.h. */
bool
msg_edit_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > MSG_EDIT_NAME_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 33 || *p > 126 || *p == ':')
			return false;
	return true;
}

/* value_ok - no NUL (by construction) and no control byte but CR, LF
 * and TAB (line breaks are normalised when written). */
static bool
value_ok(const char *v)
{
	if (strlen(v) > MSG_EDIT_VALUE_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if ((*p < 32 && *p != '\r' && *p != '\n' && *p != '\t') ||
		    *p == 127)
			return false;
	return true;
}

/* msg_edits_header - see msg_edit.h. */
int
msg_edits_header(struct msg_edits *e, enum msg_edit_op op, uint32_t index,
    const char *name, const char *value, bool leadspc)
{
	struct msg_edit *it;

	if (op != MSG_EDIT_HEADER_ADD && op != MSG_EDIT_HEADER_INSERT &&
	    op != MSG_EDIT_HEADER_CHANGE)
		return -1;
	/* The bound is the stored value's, its added space included: what
	 * the list takes, msg_edit_parse takes back from the wire. */
	if (!leadspc && value[0] != '\0' &&
	    strlen(value) >= MSG_EDIT_VALUE_MAX)
		return -1;
	if (!msg_edit_name_ok(name) || !value_ok(value) || (it = edits_slot(e)) == NULL)
		return -1;
	it->op = op;
	it->index = index;
	it->name = xstrdup(name);
	/* Stored with its leading space: "Name:" + value is the field. */
	if (leadspc || value[0] == '\0') {
		it->value = xstrdup(value);
	} else {
		size_t n = strlen(value);

		it->value = xmalloc(n + 2);
		it->value[0] = ' ';
		memcpy(it->value + 1, value, n + 1);
	}
	it->leadspc = true;
	return 0;
}

/* addr_ok - an envelope address: bounded, no control byte. */
static bool
addr_ok(const char *a, bool empty_ok)
{
	if ((a[0] == '\0' && !empty_ok) || strlen(a) > MSG_EDIT_NAME_MAX * 4)
		return false;
	for (const unsigned char *p = (const unsigned char *)a; *p; p++)
		if (*p < 32 || *p == 127)
			return false;
	return true;
}

/* msg_edits_envelope - see msg_edit.h. */
int
msg_edits_envelope(struct msg_edits *e, enum msg_edit_op op,
    const char *addr, const char *args)
{
	struct msg_edit *it;

	if (op != MSG_EDIT_SENDER && op != MSG_EDIT_RCPT_ADD &&
	    op != MSG_EDIT_RCPT_DEL)
		return -1;
	if (!addr_ok(addr, op == MSG_EDIT_SENDER) ||
	    (args != NULL && !addr_ok(args, true)) ||
	    (it = edits_slot(e)) == NULL)
		return -1;
	it->op = op;
	it->value = xstrdup(addr);
	it->args = args != NULL && args[0] != '\0' ? xstrdup(args) : NULL;
	return 0;
}

/* msg_edits_body_append - see msg_edit.h. */
int
msg_edits_body_append(struct msg_edits *e, const void *data, size_t len)
{
	if (len > MSG_EDIT_BODY_MAX - e->body_len)
		return -1;
	e->body_set = true;
	if (len == 0)
		return 0;
	e->body = xrealloc(e->body, e->body_len + len);
	memcpy(e->body + e->body_len, data, len);
	e->body_len += len;
	return 0;
}

/* msg_edits_append - see msg_edit.h. */
int
msg_edits_append(struct msg_edits *dst, const struct msg_edits *src,
    uint32_t shift_from, uint32_t shift)
{
	size_t mark = dst->count;

	if (src->count > MSG_EDITS_MAX - dst->count)
		return -1;
	for (size_t i = 0; i < src->count; i++) {
		const struct msg_edit *it = &src->items[i];
		uint32_t idx = it->index;
		int rc;

		if (it->op == MSG_EDIT_HEADER_INSERT && idx >= shift_from)
			idx = idx > UINT32_MAX - shift ? UINT32_MAX : idx + shift;
		if (it->op <= MSG_EDIT_HEADER_CHANGE)
			rc = msg_edits_header(dst, it->op, idx, it->name,
			    it->value, true);
		else
			rc = msg_edits_envelope(dst, it->op, it->value,
			    it->args);
		if (rc < 0)
			goto fail;
	}
	if (src->body_set) {
		free(dst->body);
		dst->body = NULL;
		dst->body_len = 0;
		if (msg_edits_body_append(dst, src->body, src->body_len) < 0)
			goto fail;
	}
	return 0;
fail:
	while (dst->count > mark) {
		struct msg_edit *it = &dst->items[--dst->count];

		free(it->name);
		free(it->value);
		free(it->args);
	}
	return -1;
}

/* msg_edits_empty - see msg_edit.h. */
bool
msg_edits_empty(const struct msg_edits *e)
{
	return e->count == 0 && !e->body_set;
}

/* msg_edits_changes_content - see msg_edit.h. */
bool
msg_edits_changes_content(const struct msg_edits *e)
{
	if (e->body_set)
		return true;
	for (size_t i = 0; i < e->count; i++)
		if (e->items[i].op <= MSG_EDIT_HEADER_CHANGE)
			return true;
	return false;
}

/* msg_edits_free - see msg_edit.h. */
void
msg_edits_free(struct msg_edits *e)
{
	for (size_t i = 0; i < e->count; i++) {
		free(e->items[i].name);
		free(e->items[i].value);
		free(e->items[i].args);
	}
	free(e->items);
	free(e->body);
	memset(e, 0, sizeof(*e));
}

/*==== Wire form ====
 *
 *   hadd NAME VALUE          MSG_EDIT_HEADER_ADD
 *   hins INDEX NAME VALUE    MSG_EDIT_HEADER_INSERT
 *   hchg INDEX NAME VALUE    MSG_EDIT_HEADER_CHANGE (VALUE empty: delete)
 *   from ADDR ARGS           MSG_EDIT_SENDER (ARGS may be empty)
 *   radd ADDR                MSG_EDIT_RCPT_ADD
 *   rdel ADDR                MSG_EDIT_RCPT_DEL
 *   body BASE64              a piece of the replacement body, in order
 *   body                     the body is replaced (by what pieces say)
 * NAME, VALUE, ADDR and ARGS are percent-escaped: '%', space and every
 * byte below 0x21 or 0x7f is %XX, so fields split on single spaces and
 * a line holds no control byte.  VALUE carries its leading space. */

static const char *const edit_words[] = {
	[MSG_EDIT_HEADER_ADD] = "hadd", [MSG_EDIT_HEADER_INSERT] = "hins",
	[MSG_EDIT_HEADER_CHANGE] = "hchg", [MSG_EDIT_SENDER] = "from",
	[MSG_EDIT_RCPT_ADD] = "radd", [MSG_EDIT_RCPT_DEL] = "rdel",
};

/* escape_append - s percent-escaped. */
static int
escape_append(struct strbuf *sb, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int rc;

		if (*p <= 0x20 || *p == '%' || *p == 0x7f)
			rc = strbuf_appendf(sb, "%%%02X", *p);
		else
			rc = strbuf_append(sb, (const char *)p, 1);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* msg_edits_encode - see msg_edit.h. */
int
msg_edits_encode(const struct msg_edits *e, const char *attr,
    struct strbuf *sb)
{
	char b64[((MSG_EDIT_BODY_CHUNK + 2) / 3) * 4 + 1];
	int rc = 0;

	for (size_t i = 0; i < e->count && rc == 0; i++) {
		const struct msg_edit *it = &e->items[i];

		rc |= strbuf_appendf(sb, "%s=%s ", attr, edit_words[it->op]);
		if (it->op == MSG_EDIT_HEADER_INSERT ||
		    it->op == MSG_EDIT_HEADER_CHANGE)
			rc |= strbuf_appendf(sb, "%u ", (unsigned)it->index);
		if (it->name != NULL) {
			rc |= escape_append(sb, it->name);
			rc |= strbuf_append(sb, " ", 1);
		}
		rc |= escape_append(sb, it->value);
		if (it->op == MSG_EDIT_SENDER) {
			rc |= strbuf_append(sb, " ", 1);
			rc |= escape_append(sb, it->args ? it->args : "");
		}
		rc |= strbuf_append(sb, "\n", 1);
	}
	if (e->body_set && rc == 0) {
		rc |= strbuf_appendf(sb, "%s=body\n", attr);
		for (size_t off = 0; off < e->body_len && rc == 0;
		    off += MSG_EDIT_BODY_CHUNK) {
			size_t n = e->body_len - off < MSG_EDIT_BODY_CHUNK ?
			    e->body_len - off : MSG_EDIT_BODY_CHUNK;

			if (base64_encode(e->body + off, n, b64, sizeof(b64)) < 0)
				return -1;
			rc |= strbuf_appendf(sb, "%s=body %s\n", attr, b64);
		}
	}
	return rc ? -1 : 0;
}

/* hexval - a hex digit's value, -1 for anything else. */
static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* unescape - the field at *p (to the next space or the end) decoded into
 * a new string; *p moves past it and one space.  NULL when malformed or
 * when it decodes to a NUL. */
static char *
unescape(const char **p)
{
	const char *s = *p, *end = s + strcspn(s, " ");
	char *out = xmalloc((size_t)(end - s) + 1), *o = out;

	while (s < end) {
		if (*s == '%') {
			int hi = s + 2 <= end ? hexval(s[1]) : -1;
			int lo = s + 2 < end ? hexval(s[2]) : -1;

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			*o++ = (char)(hi * 16 + lo);
			s += 3;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
	*p = *end == ' ' ? end + 1 : end;
	return out;
}

/* parse_index - decimal digits up to a space. */
static int
parse_index(const char **p, uint32_t *out)
{
	unsigned long v = 0;
	const char *s = *p;

	if (*s < '0' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (unsigned long)(*s++ - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	if (*s != ' ')
		return -1;
	*out = (uint32_t)v;
	*p = s + 1;
	return 0;
}

/* parse_body - "body" or "body BASE64". */
static int
parse_body(struct msg_edits *e, const char *p, struct error *err)
{
	unsigned char buf[MSG_EDIT_BODY_CHUNK];
	long n;

	if (*p == '\0') {
		e->body_set = true;
		return 0;
	}
	if (*p != ' ')
		return error_set(err, "malformed body edit");
	p++;
	if ((n = base64_decode(p, strlen(p), buf, sizeof(buf))) < 0)
		return error_set(err, "body edit: bad base64");
	if (msg_edits_body_append(e, buf, (size_t)n) < 0)
		return error_set(err, "replacement body over %u bytes",
		    MSG_EDIT_BODY_MAX);
	return 0;
}

/* msg_edit_parse - see msg_edit.h. */
int
msg_edit_parse(struct msg_edits *e, const char *value, struct error *err)
{
	enum msg_edit_op op;
	const char *p = value;
	char *name = NULL, *val = NULL, *args = NULL;
	uint32_t index = 0;
	size_t w;
	int rc;

	if (strncmp(p, "body", 4) == 0)
		return parse_body(e, p + 4, err);
	for (w = 0; w < sizeof(edit_words) / sizeof(edit_words[0]); w++)
		if (strncmp(p, edit_words[w], 4) == 0 && p[4] == ' ')
			break;
	if (w == sizeof(edit_words) / sizeof(edit_words[0]))
		return error_set(err, "unknown edit");
	op = (enum msg_edit_op)w;
	p += 5;
	if ((op == MSG_EDIT_HEADER_INSERT || op == MSG_EDIT_HEADER_CHANGE) &&
	    parse_index(&p, &index) < 0)
		return error_set(err, "edit without a valid index");
	if (op <= MSG_EDIT_HEADER_CHANGE && (name = unescape(&p)) == NULL)
		return error_set(err, "malformed header name in edit");
	if ((val = unescape(&p)) == NULL) {
		free(name);
		return error_set(err, "malformed value in edit");
	}
	if (op == MSG_EDIT_SENDER && (args = unescape(&p)) == NULL) {
		free(val);
		return error_set(err, "malformed arguments in edit");
	}
	if (*p != '\0')
		rc = -1;
	else if (op <= MSG_EDIT_HEADER_CHANGE)
		rc = msg_edits_header(e, op, index, name, val, true);
	else
		rc = msg_edits_envelope(e, op, val, args);
	free(name);
	free(val);
	free(args);
	return rc < 0 ? error_set(err, "invalid %s edit", edit_words[op]) : 0;
}

/*==== Applying ====*/

/* One header field of the result: original bytes or an edit's text. */
struct field {
	const char *bytes;      /* into the header block, or text         */
	size_t len;             /* including every line's line break      */
	char *text;             /* owned when written by an edit          */
	const char *name;       /* into bytes; name_len 0: no name        */
	size_t name_len;
};

struct fields {
	struct field *items;
	size_t count, cap;
};

/* fields_insert - make room at position at (<= count). */
static struct field *
fields_insert(struct fields *f, size_t at)
{
	if (f->count == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 32;
		f->items = xrealloc(f->items, f->cap * sizeof(*f->items));
	}
	memmove(&f->items[at + 1], &f->items[at],
	    (f->count - at) * sizeof(*f->items));
	f->count++;
	memset(&f->items[at], 0, sizeof(f->items[0]));
	return &f->items[at];
}

/* fields_free - the edits' texts and the array. */
static void
fields_free(struct fields *f)
{
	for (size_t i = 0; i < f->count; i++)
		free(f->items[i].text);
	free(f->items);
}

/* field_set_name - the name of a field from its first line. */
static void
field_set_name(struct field *fd)
{
	const char *colon = memchr(fd->bytes, ':', fd->len);

	fd->name = fd->bytes;
	fd->name_len = colon != NULL ? (size_t)(colon - fd->bytes) : 0;
	/* "Name :" (obsolete syntax) still names Name. */
	while (fd->name_len > 0 && (fd->name[fd->name_len - 1] == ' ' ||
	    fd->name[fd->name_len - 1] == '\t'))
		fd->name_len--;
}

/* header_split - the fields of block[0..len) until the empty line; *body
 * is where the body starts (after the empty line; len when none) and
 * *sep the empty line's length (0 when none). */
static void
header_split(const char *block, size_t len, struct fields *f,
    size_t *body, size_t *sep)
{
	size_t off = 0;

	*sep = 0;
	while (off < len) {
		const char *nl = memchr(block + off, '\n', len - off);
		size_t ll = nl != NULL ? (size_t)(nl - (block + off)) + 1 :
		    len - off;

		if (block[off] == '\n' ||
		    (block[off] == '\r' && ll == 2 && block[off + 1] == '\n')) {
			*sep = ll;
			off += ll;
			break;
		}
		if ((block[off] == ' ' || block[off] == '\t') && f->count > 0) {
			f->items[f->count - 1].len += ll;
		} else {
			struct field *fd = fields_insert(f, f->count);

			fd->bytes = block + off;
			fd->len = ll;
			field_set_name(fd);
		}
		off += ll;
	}
	*body = off;
}

/* field_text - "Name:" + value, line breaks CRLF, continuation lines
 * starting with white space, none empty or of white space only. */
static void
field_text(struct field *fd, const char *name, const char *value)
{
	struct strbuf sb = STRBUF_INIT(MSG_EDIT_VALUE_MAX * 2 + 1024);
	const char *p = value;
	size_t n = strcspn(p, "\r\n");

	(void)strbuf_append_str(&sb, name);
	(void)strbuf_append(&sb, ":", 1);
	(void)strbuf_append(&sb, p, n);
	(void)strbuf_append(&sb, "\r\n", 2);
	for (p += n; *p != '\0'; p += n) {
		p += *p == '\r' && p[1] == '\n' ? 2 : 1;
		/* An empty line would end the block, and one of white space
		 * only ends it for some readers (RFC 5322 3.2.2 has none). */
		if ((n = strcspn(p, "\r\n")) == 0 || strspn(p, " \t") >= n)
			continue;
		if (p[0] != ' ' && p[0] != '\t')
			(void)strbuf_append(&sb, "\t", 1);
		(void)strbuf_append(&sb, p, n);
		(void)strbuf_append(&sb, "\r\n", 2);
	}
	fd->text = sb.data;
	fd->bytes = sb.data;
	fd->len = sb.len;
	fd->name = sb.data;
	fd->name_len = strlen(name);
}

/* field_is - fd is a field called name (case-insensitive). */
static bool
field_is(const struct field *fd, const char *name)
{
	size_t n = strlen(name);

	return fd->name_len == n && strncasecmp(fd->name, name, n) == 0;
}

/* edit_apply - one header edit on the field list. */
static void
edit_apply(struct fields *f, const struct msg_edit *it)
{
	size_t at, seen = 0;

	switch (it->op) {
	case MSG_EDIT_HEADER_ADD:
		field_text(fields_insert(f, f->count), it->name, it->value);
		return;
	case MSG_EDIT_HEADER_INSERT:
		at = it->index < f->count ? it->index : f->count;
		field_text(fields_insert(f, at), it->name, it->value);
		return;
	case MSG_EDIT_HEADER_CHANGE:
		for (at = 0; at < f->count; at++)
			if (field_is(&f->items[at], it->name) &&
			    ++seen == (it->index ? it->index : 1))
				break;
		if (at == f->count) {
			if (it->value[0] != '\0')
				field_text(fields_insert(f, f->count),
				    it->name, it->value);
			return;
		}
		free(f->items[at].text);
		if (it->value[0] == '\0') {
			memmove(&f->items[at], &f->items[at + 1],
			    (f->count - at - 1) * sizeof(*f->items));
			f->count--;
		} else {
			field_text(&f->items[at], it->name, it->value);
		}
		return;
	default:
		return;     /* envelope edits are the caller's */
	}
}

/* read_at - pread everything asked for (short only at end of file). */
static ssize_t
read_at(int fd, void *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got,
		    (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* body_write - the replacement body with every line break CRLF (a bare
 * CR or LF from a milter becomes CRLF, as smtpd's DATA reader stores
 * them: no bare line end reaches the spool to be smuggled on) and, when
 * not empty, ending in CRLF. */
static int
body_write(const uint8_t *b, size_t len, msg_edit_write_fn out, void *arg,
    struct error *err)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (b[i] != '\r' && b[i] != '\n')
			continue;
		if ((i > start && out(arg, b + start, i - start, err) < 0) ||
		    out(arg, "\r\n", 2, err) < 0)
			return -1;
		if (b[i] == '\r' && i + 1 < len && b[i + 1] == '\n')
			i++;
		start = i + 1;
	}
	if (start < len && (out(arg, b + start, len - start, err) < 0 ||
	    out(arg, "\r\n", 2, err) < 0))
		return -1;
	return 0;
}

/* msg_edits_apply - see msg_edit.h. */
int
msg_edits_apply(const struct msg_edits *e, int in_fd, uint64_t in_size,
    msg_edit_write_fn out, void *arg, struct error *err)
{
	size_t want = in_size < MSG_EDIT_HEADER_BLOCK_MAX ? (size_t)in_size :
	    MSG_EDIT_HEADER_BLOCK_MAX;
	char *block = xmalloc(want > 0 ? want : 1);
	struct fields f = { NULL, 0, 0 };
	size_t body, sep;
	ssize_t n;
	int rc = -1;

	if ((n = read_at(in_fd, block, want, 0)) != (ssize_t)want) {
		error_set(err, "read message: %s", n < 0 ? strerror(errno) :
		    "short read");
		goto done;
	}
	header_split(block, want, &f, &body, &sep);
	if (sep == 0 && want < in_size) {
		error_set(err, "header block over %u bytes",
		    MSG_EDIT_HEADER_BLOCK_MAX);
		goto done;
	}
	for (size_t i = 0; i < e->count; i++)
		edit_apply(&f, &e->items[i]);
	for (size_t i = 0; i < f.count; i++)
		if (out(arg, f.items[i].bytes, f.items[i].len, err) < 0)
			goto done;
	if (sep > 0) {
		if (out(arg, block + body - sep, sep, err) < 0)
			goto done;
	} else if (e->body_set && e->body_len > 0) {
		if (out(arg, "\r\n", 2, err) < 0)
			goto done;
	}
	if (e->body_set) {
		if (body_write(e->body, e->body_len, out, arg, err) < 0)
			goto done;
	} else {
		char *buf = xmalloc(APPLY_CHUNK);
		uint64_t off = body;

		while (off < in_size) {
			size_t chunk = in_size - off < APPLY_CHUNK ?
			    (size_t)(in_size - off) : APPLY_CHUNK;

			if (read_at(in_fd, buf, chunk, off) != (ssize_t)chunk) {
				error_set(err, "read message: %s",
				    strerror(errno));
				free(buf);
				goto done;
			}
			if (out(arg, buf, chunk, err) < 0) {
				free(buf);
				goto done;
			}
			off += chunk;
		}
		free(buf);
	}
	rc = 0;
done:
	fields_free(&f);
	free(block);
	return rc;
}
