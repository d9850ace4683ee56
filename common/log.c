/*
 * log.c - one line per event, to stderr (foreground) or syslog(3).
 *
 * Called by every process.  stderr lines look like
 *     2026-11-27T00:00:00.123Z elemta-smtpd[123]: info: message
 * (UTC, milliseconds) and are written with a single write(2), so lines of
 * several processes sharing one stderr (elemtactl and its workers in the
 * foreground) never interleave.  Daemons log through syslog with the mail
 * facility and the pid.  Callers escape untrusted strings with
 * log_escape(); log_msg additionally turns any control character left in
 * the final line into '?' so one event can never forge a second line.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* A write of at most PIPE_BUF bytes to a pipe is atomic: capping lines
 * there keeps them whole even when stderr is a pipe shared by many
 * processes. */
#define LOG_LINE_MAX PIPE_BUF

static char log_ident[64];
static bool log_to_stderr = true;
static bool log_syslog_open;
static enum log_level log_max_level = LOG_LEVEL_INFO;
/* The pid in stderr lines: one getpid per line was a measurable share of
 * smtpd's system calls per message.  A forked child refreshes it. */
static pid_t log_pid;
static pthread_once_t log_atfork_once = PTHREAD_ONCE_INIT;

/* log_pid_refresh - after fork, in the child. */
static void
log_pid_refresh(void)
{
	log_pid = getpid();
}

/* log_atfork_register - once per process image. */
static void
log_atfork_register(void)
{
	(void)pthread_atfork(NULL, NULL, log_pid_refresh);
}

/* log_init - ident is the program name; to_stderr selects stderr over
 * syslog; messages above max_level are dropped. */
void
log_init(const char *ident, bool to_stderr, enum log_level max_level)
{
	snprintf(log_ident, sizeof(log_ident), "%s",
	    ident != NULL ? ident : "elemta");
	(void)pthread_once(&log_atfork_once, log_atfork_register);
	log_pid = getpid();
	log_to_stderr = to_stderr;
	log_max_level = max_level;
	if (!to_stderr && !log_syslog_open) {
		/* openlog keeps the ident pointer: log_ident is static.
		 * LOG_NDELAY connects now, before a chroot or privilege drop
		 * could make /dev/log unreachable. */
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
		log_syslog_open = true;
	}
}

/* log_env_foreground - see log.h. */
bool
log_env_foreground(void)
{
	const char *v = getenv(LOG_ENV_FOREGROUND);

	return v != NULL && strcmp(v, "1") == 0;
}

/* log_level_name - the word written in stderr lines. */
static const char *
log_level_name(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_ERR:
		return "error";
	case LOG_LEVEL_WARN:
		return "warning";
	case LOG_LEVEL_INFO:
		return "info";
	case LOG_LEVEL_DEBUG:
		return "debug";
	}
	return "unknown";
}

/* log_sanitize - replace control characters so one call is one line. */
static void
log_sanitize(char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			s[i] = '?';
	}
}

/* log_write_all - one write(2); retried only after a signal or a short
 * write (a full disk, a non-blocking stderr). */
static void
log_write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* log_vmsg - format, sanitize and emit one line. */
static void __attribute__((format(printf, 2, 0)))
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t off = 0, body;
	int n;
	int saved_errno = errno;

	if (level > log_max_level)
		return;
	if (log_ident[0] == '\0')
		snprintf(log_ident, sizeof(log_ident), "%s",
		    program_invocation_short_name);

	if (log_to_stderr) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		off = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n = snprintf(line + off, sizeof(line) - off, ".%03ldZ %s[%ld]: %s: ",
		    ts.tv_nsec / 1000000L, log_ident,
		    (long)(log_pid != 0 ? log_pid : getpid()),
		    log_level_name(level));
		if (n > 0)
			off += (size_t)n;
		if (off >= sizeof(line))
			off = sizeof(line) - 1;
	}

	/* Leave room for "...\n" so a truncated line is marked and still
	 * ends in a newline. */
	n = vsnprintf(line + off, sizeof(line) - off - 4, fmt, ap);
	if (n < 0)
		n = 0;
	body = (size_t)n;
	if (body >= sizeof(line) - off - 4) {
		body = sizeof(line) - off - 5;
		memcpy(line + off + body, "...", 3);
		body += 3;
	}
	log_sanitize(line + off, body);
	off += body;

	if (log_to_stderr) {
		line[off++] = '\n';
		log_write_all(line, off);
	} else {
		line[off] = '\0';
		syslog((int)level, "%s", line);
	}
	errno = saved_errno;
}

/* log_msg - log one event at level (see the log_err... macros). */
void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

/* fatal - log at error level and exit(1).  Start-up and invariants only. */
void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}

/* log_escape_width - bytes one input byte takes once escaped. */
static size_t
log_escape_width(unsigned char c)
{
	return (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') ? 1 : 4;
}

/* log_escape - copy untrusted bytes printable, \xNN for everything else
 * (and for backslash and quote, so the result can be quoted and read
 * back unambiguously); "..." marks truncation.  Returns dst. */
char *
log_escape(char *dst, size_t size, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t out = 0, total = 0, limit, i;
	bool truncated;

	if (size == 0)
		return dst;
	/* Does everything fit?  Stop counting as soon as it cannot. */
	for (i = 0; i < len && total <= size - 1; i++)
		total += log_escape_width((unsigned char)src[i]);
	truncated = total > size - 1;
	limit = size - 1;
	if (truncated)
		limit = limit >= 3 ? limit - 3 : 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];

		if (out + log_escape_width(c) > limit)
			break;
		if (log_escape_width(c) == 1) {
			dst[out++] = (char)c;
		} else {
			dst[out++] = '\\';
			dst[out++] = 'x';
			dst[out++] = hex[c >> 4];
			dst[out++] = hex[c & 0xf];
		}
	}
	if (truncated) {
		for (int k = 0; k < 3 && out < size - 1; k++)
			dst[out++] = '.';
	}
	dst[out] = '\0';
	return dst;
}
