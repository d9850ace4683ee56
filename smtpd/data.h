/*
 * data.h - the DATA body state machine: end-of-data detection,
 * dot-unstuffing, bare CR/LF detection and line-length accounting.
 *
 * Called by session.c with the raw bytes that follow a 354 reply, in
 * chunks of any size (one byte or megabytes); the output does not depend
 * on how the input was split.  Pure: no I/O, no allocation.
 *
 * Promises (SMTP smuggling defence, RFC 5321 2.3.8 and 4.1.1.4):
 *  - Only CR LF "." CR LF ends the data, where the first CR LF is the end
 *    of a real CRLF-terminated line (or the DATA command itself).  "\n.\n",
 *    "\n.\r\n", "\r.\r", "\r\n.\r", "\r\r\n.\r\r\n" and every other
 *    variant never do.
 *  - The machine stops consuming right after the terminating CRLF: the
 *    bytes that follow belong to the next command.
 *  - A bare LF, a bare CR (including the first CR of CR CR LF) sets
 *    bare_newline; the output always has it converted to CRLF, so the
 *    caller can either store it (server.bare_newline: normalize) or refuse
 *    the message (reject).  After such a converted line break a lone "."
 *    line is kept as ".", never taken as the end.
 *  - A leading dot of a line is removed (RFC 5321 4.5.2).
 *  - A text line longer than DATA_LINE_MAX octets with its CRLF (counted
 *    after unstuffing) sets line_too_long.
 *  - size counts every output byte.
 */
#ifndef ELEMTA_SMTPD_DATA_H
#define ELEMTA_SMTPD_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DATA_LINE_MAX 1000        /* RFC 5321 4.5.3.1.6, with CRLF */

/* The most output one call can produce from len input bytes. */
#define DATA_OUT_MAX(len) (2 * (len) + 4)

enum data_state {
	DATA_BOL,        /* at the start of a line after a real CRLF        */
	DATA_BOL_WEAK,   /* at a line start made by a converted bare CR/LF  */
	DATA_DOT,        /* "." at DATA_BOL (held back)                     */
	DATA_DOT_WEAK,   /* "." at DATA_BOL_WEAK (held back)                */
	DATA_DOT_CR,     /* "." CR at DATA_BOL: the end if LF comes next    */
	DATA_TEXT,       /* inside a line                                   */
	DATA_CR,         /* a CR inside or ending a line (held back)        */
	DATA_END,        /* CRLF.CRLF seen; feed consumes nothing more      */
};

struct data_machine {
	enum data_state state;
	uint64_t size;           /* output bytes so far                    */
	size_t line_len;         /* octets of the current line, no CRLF    */
	bool bare_newline;       /* a bare CR or LF was seen               */
	bool line_too_long;
};

/* data_machine_init - ready for the first byte after the 354. */
void data_machine_init(struct data_machine *m);

/* data_machine_feed - consume in[0..len) up to and including the end of
 * data.  Writes the unstuffed, CRLF-normalised bytes to out, which must
 * hold DATA_OUT_MAX(len) bytes, and their count to *out_len; *consumed is
 * the number of input bytes used (len unless the end was reached).
 * Returns 1 when the end of data was reached, else 0. */
int data_machine_feed(struct data_machine *m, const char *in, size_t len,
    char *out, size_t *out_len, size_t *consumed);

/* data_state_name - for logs and tests. */
const char *data_state_name(enum data_state s);

#endif
