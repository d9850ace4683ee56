/*
 * strbuf.h - length-tracking, bounded byte strings.
 *
 * Used wherever text is assembled (wire requests and replies, log lines,
 * headers).  A strbuf never overflows: appends past `limit` fail with -1
 * and leave the buffer unchanged, so callers can answer "too long" instead
 * of truncating silently.  The data is always NUL-terminated.
 */
#ifndef ELEMTA_STRBUF_H
#define ELEMTA_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
	char *data;     /* owned; NULL until the first append */
	size_t len;
	size_t cap;
	size_t limit;   /* maximum len; 0 means 1 MiB */
};

#define STRBUF_INIT(limit_) { NULL, 0, 0, (limit_) }

int strbuf_append(struct strbuf *sb, const char *data, size_t len);
int strbuf_append_str(struct strbuf *sb, const char *s);
int strbuf_appendf(struct strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int strbuf_vappendf(struct strbuf *sb, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
void strbuf_reset(struct strbuf *sb);   /* len = 0, keeps memory */
/* strbuf_truncate - len = min(len, current), keeps memory. */
void strbuf_truncate(struct strbuf *sb, size_t len);
void strbuf_free(struct strbuf *sb);
/* strbuf_cstr - data, or "" when empty; valid until the next append. */
const char *strbuf_cstr(const struct strbuf *sb);

#endif
