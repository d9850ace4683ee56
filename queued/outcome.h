/*
 * outcome.h - what one delivery attempt did for one recipient: the one
 * vocabulary the transports (smtp_client.c, maildir.c) report in and the
 * queue manager and the DSN composer (dsn.c) read.
 *
 * An outcome is DELIVERED, TEMPFAIL (retry later: schedule.c) or PERMFAIL
 * (bounce now).  code is the remote reply code, or 0 when the outcome was
 * decided here (timeout, local error): a DSN carries a Diagnostic-Code
 * only for a remote reply.  enhanced is always an RFC 3463 status whose
 * class agrees with result; text is one line, printable (no CR, LF or
 * other control bytes), bounded.
 */
#ifndef ELEMTA_QUEUED_OUTCOME_H
#define ELEMTA_QUEUED_OUTCOME_H

#include <stdbool.h>

#define OUTCOME_ENHANCED_MAX 16   /* "5.999.999" and a NUL, with room */
#define OUTCOME_TEXT_MAX 1024

enum outcome_result {
	OUTCOME_PENDING,      /* not decided yet                           */
	OUTCOME_DELIVERED,    /* the next hop (or the Maildir) has it       */
	OUTCOME_TEMPFAIL,     /* deferred: try again later                 */
	OUTCOME_PERMFAIL,     /* bounce                                    */
};

struct outcome {
	enum outcome_result result;
	int code;                              /* remote reply, 0: local */
	char enhanced[OUTCOME_ENHANCED_MAX];   /* "4.4.2"                */
	char text[OUTCOME_TEXT_MAX];           /* one printable line     */
};

/* outcome_set - fill o: result, remote code (0: local), enhanced status
 * (NULL or malformed: the class default "X.0.0") and printf text,
 * sanitized to one printable line. */
void outcome_set(struct outcome *o, enum outcome_result result, int code,
    const char *enhanced, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* outcome_result_name - "pending", "delivered", "deferred", "bounced". */
const char *outcome_result_name(enum outcome_result r);
/* outcome_enhanced_valid - s is an RFC 3463 code "C.S.D" (C in 2, 4, 5;
 * S and D 1..3 digits) ending at s[len]; len 0: at a NUL. */
bool outcome_enhanced_valid(const char *s, unsigned long len);
/* outcome_sanitize - in place: every byte < 0x20 or 0x7f becomes a
 * space, so external text can never start a new header or log line. */
void outcome_sanitize(char *s);

#endif
