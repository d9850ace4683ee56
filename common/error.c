/*
 * error.c - the error convention (struct error), the allocation wrappers
 * and str_copy.
 *
 * Called from everywhere.  Allocation failure is handled here, once: the
 * process logs and exits, and elemtactl restarts the worker; no caller
 * ever checks for NULL from xmalloc & co.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"

/* error_set - format a message into err (may be NULL); returns -1. */
int
error_set(struct error *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
	return -1;
}

/* error_prefix - prepend "prefix: " to err's text; returns -1. */
int
error_prefix(struct error *err, const char *fmt, ...)
{
	char prefix[ERROR_TEXT_MAX];
	char old[ERROR_TEXT_MAX];
	va_list ap;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	/* Copy first: err->text is both source and destination. */
	memcpy(old, err->text, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	/* Assembled by hand: the result is truncated to the buffer, and
	 * snprintf("%s: %s") would make GCC warn about exactly that. */
	str_copy(err->text, prefix, sizeof(err->text));
	if (old[0] != '\0') {
		size_t n = strlen(err->text);

		str_copy(err->text + n, ": ", sizeof(err->text) - n);
		n = strlen(err->text);
		str_copy(err->text + n, old, sizeof(err->text) - n);
	}
	return -1;
}

/* alloc_failed - the one place that handles out-of-memory. */
static void __attribute__((noreturn))
alloc_failed(size_t n)
{
	log_err("out of memory allocating %zu bytes", n);
	exit(1);
}

/* xmalloc - malloc that never returns NULL (0 bytes gives a valid pointer). */
void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		alloc_failed(n);
	return p;
}

/* xcalloc - zeroed allocation; n * size overflow is an allocation failure. */
void *
xcalloc(size_t n, size_t size)
{
	void *p;

	if (n == 0 || size == 0)
		n = size = 1;
	p = calloc(n, size);
	if (p == NULL)
		alloc_failed(n * size);
	return p;
}

/* xrealloc - realloc that never returns NULL; p may be NULL. */
void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		alloc_failed(n);
	return q;
}

/* xstrdup - strdup that never returns NULL. */
char *
xstrdup(const char *s)
{
	size_t n = strlen(s);
	char *p = xmalloc(n + 1);

	memcpy(p, s, n + 1);
	return p;
}

/* xstrndup - copy at most n bytes of s, always terminated. */
char *
xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* str_copy - strlcpy: returns strlen(src); truncated when >= size. */
size_t
str_copy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size > 0) {
		size_t n = len < size - 1 ? len : size - 1;

		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}
