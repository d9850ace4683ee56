/*
 * reply.h - the SMTP/LMTP reply parser of elemta-queued's client (RFC
 * 5321 §4.2, RFC 3463 enhanced status codes, RFC 2920 for where one
 * reply ends) and the EHLO/LHLO keyword reader.
 *
 * Every input is untrusted next-hop text.  reply_parse is stateless: it
 * looks at the bytes the caller holds and either finds one complete
 * reply at their start (and says how many bytes it used), says "more
 * needed", or says why the bytes are not a reply.  Promises:
 *  - a parsed reply's code is 200..599 and every line carried that code
 *    (a mixed reply is an error, not a guess);
 *  - a line is "ddd", "ddd text" or "ddd-text" ended by CRLF (a bare LF
 *    is tolerated, as every deployed client does); a line longer than
 *    REPLY_LINE_MAX, a reply of more than REPLY_LINES_MAX lines or
 *    REPLY_TOTAL_MAX bytes, a NUL, or anything else is an error, also
 *    while incomplete (so a peer cannot make the caller buffer forever);
 *  - text holds the lines' text (after "ddd-"/"ddd ") joined by '\n',
 *    with every other control byte turned into a space; enhanced holds
 *    the first line's RFC 3463 code when it is well formed and its class
 *    is the reply's, else "".
 */
#ifndef ELEMTA_QUEUED_REPLY_H
#define ELEMTA_QUEUED_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "outcome.h"

#define REPLY_LINE_MAX 1024    /* RFC 5321 §4.5.3.1.5: 512, doubled     */
#define REPLY_LINES_MAX 128
#define REPLY_TOTAL_MAX 16384  /* a generous EHLO reply fits many times */

struct reply {
	int code;                              /* 200..599               */
	char enhanced[OUTCOME_ENHANCED_MAX];   /* "2.1.0" or ""          */
	char text[REPLY_TOTAL_MAX];            /* lines joined by '\n'   */
	size_t nlines;
};

enum reply_status {
	REPLY_MORE = 0,        /* no complete reply yet: read more        */
	REPLY_DONE = 1,        /* *out holds one reply, *used bytes long  */
	REPLY_ERROR = -1,      /* not a reply (err says why)              */
};

/* reply_parse - one reply from the start of data[0..len). */
enum reply_status reply_parse(const char *data, size_t len, size_t *used,
    struct reply *out, struct error *err);

/* reply_class - 2, 3, 4 or 5: the code's first digit. */
int reply_class(const struct reply *r);
/* reply_message - the first line's text after the enhanced code, i.e.
 * what a human should read (points into r). */
const char *reply_message(const struct reply *r);
/* reply_oneline - "code [enhanced ]text" with the lines joined by
 * spaces, for logs and DSN Diagnostic-Codes (into buf, terminated). */
char *reply_oneline(const struct reply *r, char *buf, size_t size);
/* reply_outcome - the outcome a reply means for the recipients it
 * answers: 2xx delivered, 4xx deferred, 5xx bounced (3xx, which no
 * final reply may be, is a deferral). */
void reply_outcome(const struct reply *r, struct outcome *o);

/* What a server's EHLO (or LHLO) reply offers.  CHUNKING is recognised
 * and ignored: this client always uses DATA. */
#define REPLY_AUTH_PLAIN 0x1u
#define REPLY_AUTH_LOGIN 0x2u

struct reply_ehlo {
	bool pipelining;
	bool size;            /* SIZE offered                          */
	uint64_t size_max;    /* its limit; 0: none announced          */
	bool eightbitmime;
	bool smtputf8;
	bool dsn;
	bool starttls;
	bool enhancedstatuscodes;
	bool chunking;
	unsigned auth;        /* REPLY_AUTH_* mechanisms offered       */
};

/* reply_ehlo_parse - the keywords of a 250 reply's lines after the
 * first (the greeting line); unknown keywords are ignored, a malformed
 * SIZE argument is read as "no limit announced". */
void reply_ehlo_parse(const struct reply *r, struct reply_ehlo *out);

#endif
