/*
 * log.h - one line per event, greppable like Postfix's logs.
 *
 * Foreground processes log to stderr ("2026-11-26T10:00:00Z elemta-smtpd[123]:
 * info: ..."), daemons to syslog(3) with the mail facility.  Every string
 * that came from outside (client input, addresses, plugin text) must pass
 * through log_escape() or the "%S"-free helpers below before it is logged.
 */
#ifndef ELEMTA_LOG_H
#define ELEMTA_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

enum log_level {
	LOG_LEVEL_ERR = 3,
	LOG_LEVEL_WARN = 4,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

/* log_init - ident is the program name; to_stderr selects stderr over
 * syslog; messages above max_level are dropped. */
void log_init(const char *ident, bool to_stderr, enum log_level max_level);

/* elemtactl in the foreground sets LOG_ENV_FOREGROUND "=1" in its
 * workers' environment: they log to its stderr instead of syslog. */
#define LOG_ENV_FOREGROUND "ELEMTA_FOREGROUND"
/* log_env_foreground - LOG_ENV_FOREGROUND is set to 1. */
bool log_env_foreground(void);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define log_err(...) log_msg(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* fatal - log at error level and exit(1).  Start-up and invariants only. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* log_escape - copy len bytes of untrusted src into dst (size bytes,
 * always terminated), printable ASCII kept, backslash, quote and every
 * other byte written as \xNN; truncated with "..." when it does not fit.
 * Returns dst so it can be used inline in a log call. */
char *log_escape(char *dst, size_t size, const char *src, size_t len);

/* Convenience for NUL-terminated input into a caller buffer. */
static inline size_t log_strlen0(const char *s) { return s != NULL ? strlen(s) : 0; }
#define LOG_ESC(buf, s) log_escape((buf), sizeof(buf), (s), log_strlen0(s))

#endif
