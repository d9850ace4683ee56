/*
 * strbuf.c - length-tracking, bounded byte strings.
 *
 * Used by the wire encoder, log and header assembly.  An append that would
 * take len past the limit fails with -1 and leaves the buffer exactly as it
 * was, so the caller can answer "too long" instead of truncating.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "strbuf.h"

#define STRBUF_DEFAULT_LIMIT ((size_t)1024 * 1024)
#define STRBUF_MIN_CAP 64

/* strbuf_limit - the effective maximum length. */
static size_t
strbuf_limit(const struct strbuf *sb)
{
	return sb->limit ? sb->limit : STRBUF_DEFAULT_LIMIT;
}

/* strbuf_reserve - make room for extra more bytes plus the NUL, or -1 when
 * that would pass the limit (nothing changed then). */
static int
strbuf_reserve(struct strbuf *sb, size_t extra)
{
	size_t limit = strbuf_limit(sb);
	size_t need, cap;

	if (extra > limit || sb->len > limit - extra)
		return -1;
	need = sb->len + extra + 1;
	if (sb->data != NULL && need <= sb->cap)
		return 0;
	cap = sb->cap ? sb->cap : STRBUF_MIN_CAP;
	while (cap < need)
		cap *= 2;
	/* Never allocate much past what the limit can use. */
	if (cap > limit + 1 && need <= limit + 1)
		cap = limit + 1;
	sb->data = xrealloc(sb->data, cap);
	sb->cap = cap;
	if (sb->len == 0)
		sb->data[0] = '\0';
	return 0;
}

/* strbuf_append - append len bytes (may contain NUL); -1 past the limit. */
int
strbuf_append(struct strbuf *sb, const char *data, size_t len)
{
	if (strbuf_reserve(sb, len) < 0)
		return -1;
	if (len > 0)
		memcpy(sb->data + sb->len, data, len);
	sb->len += len;
	sb->data[sb->len] = '\0';
	return 0;
}

/* strbuf_append_str - append a NUL-terminated string. */
int
strbuf_append_str(struct strbuf *sb, const char *s)
{
	return strbuf_append(sb, s, strlen(s));
}

/* strbuf_vappendf - append printf-formatted text, all or nothing. */
int
strbuf_vappendf(struct strbuf *sb, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || strbuf_reserve(sb, (size_t)n) < 0)
		return -1;
	vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
	return 0;
}

/* strbuf_appendf - append printf-formatted text, all or nothing. */
int
strbuf_appendf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = strbuf_vappendf(sb, fmt, ap);
	va_end(ap);
	return rc;
}

/* strbuf_truncate - drop everything after the first len bytes. */
void
strbuf_truncate(struct strbuf *sb, size_t len)
{
	if (len >= sb->len)
		return;
	sb->len = len;
	sb->data[len] = '\0';
}

/* strbuf_reset - len = 0, keeps the memory for reuse. */
void
strbuf_reset(struct strbuf *sb)
{
	strbuf_truncate(sb, 0);
}

/* strbuf_free - release the memory; the strbuf is empty and reusable. */
void
strbuf_free(struct strbuf *sb)
{
	free(sb->data);
	sb->data = NULL;
	sb->len = 0;
	sb->cap = 0;
}

/* strbuf_cstr - data, or "" when empty; valid until the next append. */
const char *
strbuf_cstr(const struct strbuf *sb)
{
	return sb->data != NULL ? sb->data : "";
}
