/*
 * dsn_param.h - the RFC 3461 envelope parameters (NOTIFY, RET, ENVID,
 * ORCPT) and their xtext encoding: the one owner of this vocabulary.
 * smtpd parses them from MAIL/RCPT (smtpd/command.c), common/queue_file.c
 * stores them in the envelope, elemta-queued honours them (queued/dsn.c,
 * queue.c) and passes them to next hops (queued/smtp_client.c).
 *
 * Every parser here takes untrusted text with its length and refuses
 * anything malformed or out of bounds; nothing is allocated.
 */
#ifndef ELEMTA_DSN_PARAM_H
#define ELEMTA_DSN_PARAM_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 3461 NOTIFY: a bit set; 0 means "not given" (the MTA's default:
 * failures, and delays when delay warnings are on). */
#define DSN_NOTIFY_NEVER   0x1u
#define DSN_NOTIFY_SUCCESS 0x2u
#define DSN_NOTIFY_FAILURE 0x4u
#define DSN_NOTIFY_DELAY   0x8u

/* RFC 3461 RET. */
enum dsn_ret {
	DSN_RET_DEFAULT,      /* not given: headers only             */
	DSN_RET_HDRS,
	DSN_RET_FULL,
};

#define DSN_XTEXT_MAX 1024    /* encoding buffers                    */
#define DSN_ENVID_MAX 100     /* RFC 3461 §4.4: ENVID's xtext length */
#define DSN_ORCPT_MAX 500     /* RFC 3461 §4.2: ORCPT's length       */
#define DSN_ADDR_TYPE_MAX 32  /* "rfc822", "utf-8", ...              */
#define DSN_NOTIFY_TEXT_MAX 32 /* "SUCCESS,FAILURE,DELAY" and a NUL  */

/* dsn_xtext_encode - RFC 3461 §4 xtext of s (for ENVID and ORCPT's
 * address): '+', '=' and bytes outside 0x21..0x7e as "+HH".  Into out
 * (size bytes); returns -1 when it does not fit. */
int dsn_xtext_encode(const char *s, char *out, size_t size);

/* dsn_xtext_decode - the text of xtext s (len bytes) into out (size
 * bytes, NUL-terminated); -1 when s is not xtext (a byte outside
 * 0x21..0x7e, '=', a '+' not followed by two upper-case hex digits), when
 * it decodes to a control byte or NUL, or does not fit. */
int dsn_xtext_decode(const char *s, size_t len, char *out, size_t size);

/* dsn_notify_parse - "NEVER" or a comma list of SUCCESS, FAILURE, DELAY
 * (case-insensitive, each at most once) into *bits; -1 otherwise. */
int dsn_notify_parse(const char *s, size_t len, unsigned *bits);

/* dsn_notify_format - bits as NOTIFY's value ("" for 0) into out. */
void dsn_notify_format(unsigned bits, char out[DSN_NOTIFY_TEXT_MAX]);

/* dsn_ret_parse - "FULL" or "HDRS" (case-insensitive); -1 otherwise. */
int dsn_ret_parse(const char *s, size_t len, enum dsn_ret *ret);

/* dsn_ret_name - "FULL", "HDRS", "" for the default. */
const char *dsn_ret_name(enum dsn_ret ret);

/* dsn_orcpt_parse - ORCPT's value "addr-type;xtext" (len bytes, at most
 * DSN_ORCPT_MAX): addr-type an RFC 3461 atom, the address valid xtext.
 * Decoded ("type;address") into out (size bytes); -1 when malformed. */
int dsn_orcpt_parse(const char *s, size_t len, char *out, size_t size);

#endif
