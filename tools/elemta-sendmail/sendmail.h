/*
 * sendmail.h - elemta-sendmail, the sendmail(1) of local programs (cron,
 * PHP's mail(), monitoring scripts): the pieces main.c puts together.
 *
 *   args.c     the command line, as sendmail and Postfix spell it
 *   message.c  reading the message from stdin, the recipients of -t,
 *              the header fix-up of local submission (Bcc removed, From:,
 *              Date:, Message-ID: added when missing)
 *   submit.c   the SMTP client side over smtpd's local listener (a Unix
 *              socket), and the -bs relay
 *
 * Runs as the invoking user, never as root by design: the local listener
 * learns who it is from the kernel (SO_PEERCRED).  It reads the config
 * file only (config_load opens no other file), so the secrets the config
 * names may stay unreadable to users.  Exit statuses are sendmail's
 * (<sysexits.h>): 0 only once smtpd answered 250 to the message.
 */
#ifndef ELEMTA_SENDMAIL_H
#define ELEMTA_SENDMAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sysexits.h>
#include <time.h>

#include "error.h"
#include "strbuf.h"

#define SM_PROG "elemta-sendmail"
#define SM_ADDRESS_MAX 512          /* bytes of one address (RFC 5321 path) */

/* ==== args.c ==== */

enum sm_mode {
	SM_MODE_DELIVER,        /* -bm (default): read a message, submit it */
	SM_MODE_SMTP,           /* -bs: SMTP on stdin/stdout, relayed        */
	SM_MODE_QUEUE_LIST,     /* -bp, or run as mailq: elemtactl queue list */
	SM_MODE_QUEUE_FLUSH,    /* -q, -qR..., -qS...: elemtactl queue flush */
	SM_MODE_NOTHING,        /* -qINTERVAL (a daemon's option): nothing   */
};

struct sm_args {
	enum sm_mode mode;
	bool extract;           /* -t: recipients from the headers          */
	bool dot_is_data;       /* -i, -oi: a line "." does not end input    */
	bool verbose;           /* -v: the SMTP dialogue on stderr           */
	const char *sender;     /* -f, -r; NULL: the user's own address      */
	const char *fullname;   /* -F; NULL: the password entry's            */
	const char *config;     /* -C; NULL: $ELEMTA_CONFIG, then the default */
	char **rcpts;           /* the recipient arguments (argv's strings)  */
	size_t nrcpt;
};

/* sm_args_parse - argv (argv[0] names the mode when it is "mailq") into
 * a.  Options sendmail programs pass that mean nothing here (-oem, -odi,
 * -N, -B 8BITMIME, -m...) are accepted and ignored; an unknown option
 * is an error.  0, or -1 with err (EX_USAGE). */
int sm_args_parse(int argc, char **argv, struct sm_args *a,
    struct error *err);

/* ==== message.c ==== */

/* A list of recipient addresses (owned strings). */
struct sm_rcpts {
	char **v;
	size_t n, cap;
};

void sm_rcpts_free(struct sm_rcpts *r);

/* sm_addr_list_parse - every address of an RFC 5322 address list (a
 * header's unfolded value, or a command-line argument: "a@x, B <b@y>",
 * groups, comments, quoted strings), appended to r; an address without
 * '@' gets "@domain".  An empty group adds nothing, an address already
 * in r is not added again.  -1 with err when the
 * list is malformed or an address holds a control character or is over
 * SM_ADDRESS_MAX: a recipient is never dropped silently. */
int sm_addr_list_parse(const char *text, const char *domain,
    struct sm_rcpts *r, struct error *err);

/* sm_message_read - the message on fd into out with LF line ends (CRLF
 * read as LF, a missing final newline added), ending at EOF or, unless
 * dot_is_data, at a line holding only ".".  -1 with err when it is over
 * max bytes, -2 with err when it cannot be read. */
int sm_message_read(int fd, bool dot_is_data, size_t max, struct strbuf *out,
    struct error *err);

/* What sm_message_fix adds and where recipients come from. */
struct sm_fixup {
	const char *from;       /* address for a missing From:             */
	const char *fullname;   /* its display name; "" none               */
	const char *domain;     /* qualifies addresses; Message-ID's right  */
	const char *unique;     /* Message-ID's left part's unique tail     */
	time_t now;             /* Date:                                    */
	bool extract;           /* -t                                       */
};

/* sm_message_fix - msg (LF line ends) as submitted: a leading mbox
 * "From " line dropped; with fx->extract the addresses of To:, Cc: and
 * Bcc: (of Resent-To:, Resent-Cc: and Resent-Bcc: instead when a
 * Resent- header is present, as sendmail does) appended to rcpts; every
 * Bcc: and Resent-Bcc: removed; From:, Date: and Message-ID: added at the
 * end of the header when missing (as Postfix's cleanup does for local
 * mail).  The result goes to out.  -1 with err (a malformed recipient
 * header, a NUL byte in the header). */
int sm_message_fix(const char *msg, size_t len, const struct sm_fixup *fx,
    struct strbuf *out, struct sm_rcpts *rcpts, struct error *err);

/* ==== submit.c ==== */

/* sm_exit_for_reply - the exit status for a refusal: EX_TEMPFAIL for 4xx
 * (and anything unparsable: retrying loses nothing), EX_DATAERR for a 5xx
 * about the message or an address's syntax (5.6.x, 5.3.4, 501, 553),
 * EX_UNAVAILABLE for any other 5xx. */
int sm_exit_for_reply(int code, const char *text);

/* sm_submit - the message to smtpd's local listener at socket_path:
 * EHLO, MAIL FROM:<sender>, one RCPT per recipient, DATA, msg (LF line
 * ends) sent with CRLF and dot-stuffed.  Returns EX_OK only after the
 * 250 to the final "."; otherwise prints one line with the server's
 * reply (or why it could not be reached) and returns its exit status;
 * Elemta not running is EX_TEMPFAIL. */
int sm_submit(const char *socket_path, const char *sender,
    const struct sm_rcpts *rcpts, const char *msg, size_t len,
    bool verbose);

/* sm_relay - -bs: stdin to the socket, the socket to stdout, until the
 * server closes.  Elemta not running: a 421 on stdout, EX_TEMPFAIL. */
int sm_relay(const char *socket_path);

#endif
