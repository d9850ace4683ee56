/*
 * sasl.h - the client side of SMTP AUTH's messages as smtpd sees them
 * (RFC 4954): base64 lines, the PLAIN message (RFC 4616) and the limits
 * on what is relayed to policyd.  Pure functions, no I/O, no state.
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
