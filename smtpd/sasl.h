/*
 * sasl.h - SMTP AUTH as smtpd runs it (RFC 4954): the exchange of one
 * AUTH command (mechanism, 334 challenges, base64 responses), the PLAIN
 * message (RFC 4616), LOGIN, and the limits on what is relayed to
 * policyd.  No I/O: each step returns what the session does next
 * (challenge, refuse, or ask policyd), and session.c keeps the state
 * machine's transitions and replies.
 *
 * Called by session.c for every AUTH command and response line, and by
 * the unit tests.  Every input is untrusted client text.  smtpd never
 * verifies a password: it decodes the client's message, checks its
 * shape, and relays the credentials to policyd (docs/internals.md,
 * protocol_state=AUTH).
 */
#ifndef ELEMTA_SMTPD_SASL_H
#define ELEMTA_SMTPD_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "wire.h"

/* RFC 4954 4: AUTH command and response lines of up to 12288 octets
 * (without CRLF) must be accepted; longer ones get 500 5.5.6. */
#define SASL_LINE_MAX 12288
/* The most bytes a line of SASL_LINE_MAX base64 characters decodes to. */
#define SASL_DECODED_MAX (SASL_LINE_MAX / 4 * 3)
/* What policyd accepts (the protocol's limits, common/wire.h); longer
 * credentials cannot be right and are refused without asking. */
#define SASL_USER_MAX WIRE_AUTH_USER_MAX
#define SASL_PASSWORD_MAX WIRE_AUTH_PASSWORD_MAX
#define SASL_PASSWORD_B64_MAX WIRE_AUTH_PASSWORD_B64_MAX


/* The parts of a PLAIN message; pointers into the decoded message, each
 * NUL-terminated there (the message is modified). */
struct sasl_plain {
	const char *authzid;      /* "" when absent */
	const char *authcid;
	const unsigned char *password;
	size_t password_len;
};

/* Which client response an exchange waits for. */
enum sasl_step {
	SASL_STEP_NONE,
	SASL_STEP_PLAIN,            /* PLAIN: the whole message         */
	SASL_STEP_LOGIN_USER,       /* LOGIN: the user name             */
	SASL_STEP_LOGIN_PASSWORD,   /* LOGIN: the password              */
};

/* One AUTH exchange (zeroed: none).  Every pointer is owned. */
struct sasl_exchange {
	enum sasl_step step;
	const char *method;         /* "PLAIN", "LOGIN"; NULL: none       */
	char *user;                 /* the identity under test, kept once
	                             * authenticated                       */
	char *authzid;              /* NULL: none                          */
	char *secret;               /* base64 of the password, until the
	                             * request is built (sasl_wipe_secret) */
};

/* What the session does after a step. */
enum sasl_next {
	SASL_NEXT_CHALLENGE,        /* reply the 334 line, wait (SESSION_AUTH) */
	SASL_NEXT_REFUSE,           /* end the exchange with code/text      */
	SASL_NEXT_ASK,              /* the credentials are complete: ask
	                             * policyd (user, authzid, secret set)  */
};

struct sasl_outcome {
	enum sasl_next next;
	const char *line;           /* CHALLENGE: the whole 334 line        */
	int code;                   /* REFUSE: reply code, enhanced, text,  */
	const char *enhanced;       /* and why (for the log; NULL: the
	                             * command was refused before any
	                             * exchange began, nothing to log)      */
	const char *text;
	const char *why;
};

/* sasl_start - the AUTH command's argument: "mechanism [initial
 * response]" (len bytes, no CRLF).  Refuses 501 5.5.4 (syntax) and 504
 * 5.5.4 (not PLAIN or LOGIN); otherwise starts the exchange. */
void sasl_start(struct sasl_exchange *x, const char *arg, size_t len,
    struct sasl_outcome *out);
/* sasl_response - one response line after a 334 ("*" cancels: 501
 * 5.7.0; over SASL_LINE_MAX: 500 5.5.6; bad base64 or PLAIN message:
 * 501 5.5.2; bad names or a password over SASL_PASSWORD_MAX: 535
 * 5.7.8).  The decoded message is wiped before it returns. */
void sasl_response(struct sasl_exchange *x, const char *line, size_t len,
    struct sasl_outcome *out);
/* sasl_wipe_secret - forget the password (wiped, then freed). */
void sasl_wipe_secret(struct sasl_exchange *x);
/* sasl_clear - end the exchange: the password and authzid go; the user
 * and method too unless keep_user (an authentication that succeeded). */
void sasl_clear(struct sasl_exchange *x, bool keep_user);

/* sasl_plain_parse - "[authzid] NUL authcid NUL passwd" (RFC 4616) in
 * msg[0..len), where msg has room for one more byte.  -1 unless there
 * are exactly two NULs (a password cannot hold one). */
int sasl_plain_parse(unsigned char *msg, size_t len, struct sasl_plain *out);

/* sasl_name_valid - a user name or authorization identity smtpd relays:
 * at most SASL_USER_MAX octets, well-formed UTF-8, no control character
 * (it goes into policy requests, logs and the envelope).  Empty is
 * allowed (policyd refuses it, counting the failure). */
bool sasl_name_valid(const char *name, size_t len);

#endif
