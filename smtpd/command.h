/*
 * command.h - SMTP command lines, MAIL/RCPT parameters and RFC 5321
 * addresses: pure parsing functions, no I/O, no state.
 *
 * Called by session.c for every command line a client sends, and by the
 * unit tests.  Every input here is untrusted network text.  A parse error
 * fills struct command_error with the reply to give (code, enhanced code,
 * text); the session sends it.
 *
 * Reply choices (documented here because tests and operators rely on them):
 *   500 5.5.2  unknown command, line too long, NUL or control characters
 *   501 5.5.4  bad command syntax (missing FROM:/TO:, arguments where none
 *              are allowed, bad parameter syntax or value)
 *   501 5.1.7  bad sender address syntax (MAIL)
 *   501 5.1.3  bad recipient address syntax (RCPT)
 *   553 5.1.7 / 553 5.1.3  address longer than RFC 5321 allows (local
 *              part 64, domain 255, path 256 octets)
 *   553 5.6.7  non-ASCII address without SMTPUTF8 (RFC 6531 3.5)
 *   553 5.1.7 / 553 5.1.3  a C1 control, U+2028/U+2029 or bidi control in
 *              an address (501 5.5.4 in a HELO name); a domain with no
 *              canonical form (common/domain.h: UTS-46, A-labels)
 *   555 5.5.4  unknown or unsupported MAIL/RCPT parameter (RFC 5321 4.1.1.11)
 *   501 5.5.4  a duplicate parameter; RET not FULL/HDRS; ENVID not xtext
 *              or over 100 characters; NOTIFY not NEVER or a list of
 *              SUCCESS/FAILURE/DELAY; ORCPT not addr-type;xtext or over
 *              500 characters (RFC 3461)
 *   552 5.3.4  SIZE= larger than the configured limit (RFC 1870)
 */
#ifndef ELEMTA_SMTPD_COMMAND_H
#define ELEMTA_SMTPD_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dsn_param.h"

/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets with CRLF. */
#define COMMAND_LINE_MAX 512
/* MAIL and RCPT lines may be longer by what the extensions we advertise
 * add (SIZE +26 per RFC 1870, BODY +14 per RFC 6152, SMTPUTF8 +10 per
 * RFC 6531, RET/ENVID +115 and NOTIFY/ORCPT +543 per RFC 3461 §5);
 * we allow a round 1024. */
#define COMMAND_MAIL_LINE_MAX 1024
#define COMMAND_LOCAL_MAX 64      /* RFC 5321 4.5.3.1.1 */
#define COMMAND_DOMAIN_MAX 255    /* RFC 5321 4.5.3.1.2 */
#define COMMAND_PATH_MAX 256      /* RFC 5321 4.5.3.1.3, with the brackets */
#define COMMAND_HELO_MAX 255

enum command_id {
	CMD_UNKNOWN = 0,
	CMD_HELO,
	CMD_EHLO,
	CMD_MAIL,
	CMD_RCPT,
	CMD_DATA,
	CMD_RSET,
	CMD_NOOP,
	CMD_QUIT,
	CMD_HELP,
	CMD_VRFY,
	CMD_EXPN,
	CMD_STARTTLS,
	CMD_AUTH,
	CMD_BDAT,
	CMD_FORBIDDEN,   /* GET, POST, CONNECT: a web client or proxy abuse */
	CMD__COUNT
};

/* A parsed command line.  arg points into the line given to
 * command_parse (after the verb and the spaces following it, trailing
 * spaces removed); it is "" when there is no argument. */
struct command {
	enum command_id id;
	const char *arg;
	size_t arg_len;
};

/* The reply for a parse error. */
struct command_error {
	int code;
	char enhanced[8];
	char text[160];
};

enum command_body {
	BODY_UNSPECIFIED = 0,
	BODY_7BIT,
	BODY_8BITMIME,
};

/* The result of parsing "FROM:<path> params" or "TO:<path> params". */
struct command_path {
	char address[COMMAND_PATH_MAX + 1];  /* local@domain, no brackets, no
	                                        source route; "" for <> */
	bool null_path;                      /* "<>" */
	bool non_ascii;                      /* the address has UTF-8 */
	bool source_route;                   /* the path had a source route
	                                        ("<@a,@b:user@c>"), dropped
	                                        from address: relay control
	                                        refuses it from untrusted
	                                        clients (smtpd/relay.h) */
	/* MAIL parameters */
	bool size_given;
	uint64_t size;                       /* SIZE=, 0 when not given */
	enum command_body body;
	bool smtputf8;
	enum dsn_ret ret;                    /* RET=, DSN_RET_DEFAULT: none */
	char envid[DSN_ENVID_MAX + 1];       /* ENVID= as xtext, "": none */
	/* RCPT parameters */
	unsigned notify;                     /* NOTIFY= bits, 0: none      */
	char orcpt[DSN_ORCPT_MAX + 1];       /* ORCPT= "type;xtext", "": none */
};

/* command_name - the canonical upper-case verb ("MAIL"), "UNKNOWN". */
const char *command_name(enum command_id id);
/* command_stat_name - lower-case name for disconnect statistics. */
const char *command_stat_name(enum command_id id);

/* command_parse - identify the verb of line (NUL-terminated, CR/LF
 * already removed; case-insensitive).  Always succeeds: an unknown verb
 * gives CMD_UNKNOWN. */
void command_parse(const char *line, struct command *out);

/* command_check_chars - 0 when line (len bytes, without CRLF) has no NUL
 * and no control character other than TAB; -1 with the 500 5.5.2 reply. */
int command_check_chars(const char *line, size_t len, struct command_error *err);

/* command_parse_helo - check an EHLO/HELO argument: one word, at most
 * 255 octets, printable ASCII or well-formed UTF-8.  -1 with a 501. */
int command_parse_helo(const char *arg, enum command_id id,
    struct command_error *err);

/* command_parse_mail - "FROM:<path> [SP params]" after MAIL.
 * max_size: the SIZE limit (0 = none) giving 552 5.3.4 when exceeded. */
int command_parse_mail(const char *arg, uint64_t max_size,
    struct command_path *out, struct command_error *err);

/* command_parse_rcpt - "TO:<path> [SP params]" after RCPT; utf8 says
 * whether the transaction declared SMTPUTF8 (non-ASCII allowed). */
int command_parse_rcpt(const char *arg, bool utf8, struct command_path *out,
    struct command_error *err);

/* command_parse_address - the mailbox between the brackets of a path
 * (inner, len bytes): optional source route (ASCII, ignored), local part (dot
 * string or quoted string), '@', domain or address literal.  is_rcpt
 * selects the enhanced code (5.1.3 vs 5.1.7) and allows the bare
 * "postmaster"; utf8 allows UTF-8 (RFC 6531).  The mailbox without the
 * route goes to out (COMMAND_PATH_MAX + 1 bytes; a longer mailbox is a
 * 553) and *non_ascii says whether that kept mailbox has UTF-8.  A NUL
 * anywhere, address literals included, is a syntax error. */
int command_parse_address(const char *inner, size_t len, bool is_rcpt,
    bool utf8, char *out, bool *non_ascii, struct command_error *err);

/* command_utf8_valid - well-formed UTF-8 (no overlongs, no surrogates). */
bool command_utf8_valid(const char *s, size_t len);

/* command_text_safe - well-formed UTF-8 that every line-based reader
 * keeps on one line and displays in order: no C0 or C1 control, DEL,
 * U+2028/U+2029, nor bidi control (U+061C, U+200E/F, U+202A..U+202E,
 * U+2066..U+2069).  What the spool envelope's values hold. */
bool command_text_safe(const char *s, size_t len);

#endif
