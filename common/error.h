/*
 * error.h - the one error convention of the tree.
 *
 * A function that can fail returns int: 0 on success, -1 on failure, and
 * when the caller may want to know why, it takes a `struct error *` as its
 * last argument and fills it with one line of text (never NULL-checked by
 * the caller: error_set accepts NULL and then only returns -1).
 * Network and peer input never causes a process exit; fatal() is for
 * start-up problems and broken invariants only.
 */
#ifndef ELEMTA_ERROR_H
#define ELEMTA_ERROR_H

#include <stddef.h>

#define ERROR_TEXT_MAX 512

struct error {
	char text[ERROR_TEXT_MAX];
};

/* error_set - format a message into err (may be NULL); returns -1. */
int error_set(struct error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* error_prefix - prepend "prefix: " to err's text; returns -1. */
int error_prefix(struct error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* xmalloc family - allocation failure is handled here, once: log and exit
 * (an out-of-memory worker is restarted by elemtactl). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* strlcpy-alike: copies at most size-1 bytes, always terminates; returns
 * strlen(src) so truncation is detectable (result >= size). */
size_t str_copy(char *dst, const char *src, size_t size);

#endif
