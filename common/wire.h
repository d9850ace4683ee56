/*
 * wire.h - the smtpd <-> policyd wire protocol: the Postfix policy
 * delegation protocol (name=value lines, an empty line ends a request;
 * the reply is "action=..." then an empty line; connections are reused).
 *
 * One module owns encoding and decoding; smtpd encodes requests and parses
 * replies, policyd parses requests and encodes replies, a real Postfix can
 * talk to policyd unchanged.  See wire.c for the Elemta extension
 * attributes used only on the private Unix socket.
 */
#ifndef ELEMTA_WIRE_H
#define ELEMTA_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <elemta/plugin.h>

#include "error.h"
#include "strbuf.h"

/* ==== Protocol limits ==== */

#define WIRE_LINE_MAX 4096         /* one name=value line, without LF */
#define WIRE_REQUEST_MAX (512 * 1024)
#define WIRE_ATTRS_MAX 4096        /* attributes in one request */
#define WIRE_REPLY_MAX 1024
/* AUTH credentials policyd verifies: longer ones cannot be right, and
 * smtpd refuses them without asking (smtpd/sasl.h, policyd/auth.h). */
#define WIRE_AUTH_USER_MAX 255        /* bytes of a user name          */
#define WIRE_AUTH_PASSWORD_MAX 1024   /* bytes of a decoded password   */
/* base64 of WIRE_AUTH_PASSWORD_MAX bytes, with its NUL. */
#define WIRE_AUTH_PASSWORD_B64_MAX (((WIRE_AUTH_PASSWORD_MAX + 2) / 3) * 4 + 1)

/* ==== Phases ====
 * The phase a request is about is enum elemta_phase (<elemta/plugin.h>:
 * plugins see the same enum); its protocol_state spelling lives in
 * wire.c only. */

/* wire_phase_name - "CONNECT", "EHLO", "HELO", "AUTH", "MAIL", "RCPT",
 * "DATA", "END-OF-MESSAGE"; "UNKNOWN" for anything else. */
const char *wire_phase_name(enum elemta_phase phase);
/* wire_phase_parse - a protocol_state value to its phase.  NULL (the
 * attribute absent) is RCPT, as in Postfix; an unknown value is
 * ELEMTA_PHASE_UNKNOWN. */
enum elemta_phase wire_phase_parse(const char *state);

/* ==== Attribute names ====
 * Standard attributes (Postfix's SMTPD_POLICY_README) and Elemta's own
 * (see wire.c); every encoder and decoder uses these names. */
#define WIRE_ATTR_REQUEST "request"
#define WIRE_ATTR_PROTOCOL_STATE "protocol_state"
#define WIRE_ATTR_PROTOCOL_NAME "protocol_name"
#define WIRE_ATTR_CLIENT_ADDRESS "client_address"
#define WIRE_ATTR_CLIENT_PORT "client_port"
#define WIRE_ATTR_CLIENT_NAME "client_name"
#define WIRE_ATTR_REVERSE_CLIENT_NAME "reverse_client_name"
#define WIRE_ATTR_SERVER_ADDRESS "server_address"
#define WIRE_ATTR_SERVER_PORT "server_port"
#define WIRE_ATTR_HELO_NAME "helo_name"
#define WIRE_ATTR_SENDER "sender"
#define WIRE_ATTR_RECIPIENT "recipient"
#define WIRE_ATTR_RECIPIENT_COUNT "recipient_count"
#define WIRE_ATTR_SIZE "size"
#define WIRE_ATTR_INSTANCE "instance"
#define WIRE_ATTR_QUEUE_ID "queue_id"
#define WIRE_ATTR_SASL_METHOD "sasl_method"
#define WIRE_ATTR_SASL_USERNAME "sasl_username"
#define WIRE_ATTR_ENCRYPTION_PROTOCOL "encryption_protocol"
#define WIRE_ATTR_ENCRYPTION_CIPHER "encryption_cipher"
/* Elemta's extensions, honoured on the private socket only. */
#define WIRE_ATTR_ACCEPTED_RECIPIENT "accepted_recipient"
#define WIRE_ATTR_MESSAGE_FD "message_fd"
/* Its one value: a descriptor travels with the request. */
#define WIRE_MESSAGE_FD_PASSED "1"
/* The value of "request" for a policy question. */
#define WIRE_REQUEST_POLICY "smtpd_access_policy"

/* Elemta's own request attributes start with this (Postfix's never do);
 * the AUTH credentials are two of them.  The password is read by
 * policyd's own check only, never shown to a plugin. */
#define WIRE_EXT_PREFIX "elemta_"
#define WIRE_EXT_PREFIX_LEN (sizeof(WIRE_EXT_PREFIX) - 1)
#define WIRE_AUTH_PASSWORD WIRE_EXT_PREFIX "auth_password"
#define WIRE_AUTH_AUTHZID WIRE_EXT_PREFIX "auth_authzid"
#define WIRE_ATTR_SESSION WIRE_EXT_PREFIX "session"
#define WIRE_ATTR_LISTEN_MODE WIRE_EXT_PREFIX "listen_mode"
/* On a local listener's requests only: the submitting user's uid, in
 * decimal, as the kernel gave it (SO_PEERCRED); sasl_username is its
 * name.  Read by plugins through elemta_ctx_attr (policyd/host_ctx.c)
 * under the public name <elemta/plugin.h> gives it. */
#define WIRE_ATTR_LOCAL_UID ELEMTA_ATTR_LOCAL_UID
/* Elemta's one reply extension (private socket only, see wire.c): how
 * long smtpd holds its answer to the client back. */
#define WIRE_ATTR_DELAY_MS WIRE_EXT_PREFIX "delay_ms"
#define WIRE_DELAY_MS_MAX 600000   /* policyd.timeout_ms's own maximum */
#define WIRE_ATTR_CLIENT_NAME_EXT WIRE_EXT_PREFIX "client_name"
#define WIRE_ATTR_REVERSE_CLIENT_NAME_EXT WIRE_EXT_PREFIX "reverse_client_name"
/* A reply extension of END-OF-MESSAGE (private socket only): one edit
 * of the message per line, repeated, in order (common/msg_edit.h owns
 * the value's syntax); smtpd applies them all before it commits. */
#define WIRE_ATTR_EDIT WIRE_EXT_PREFIX "edit"
/* The longest reply line smtpd reads: an edit line (a header value of
 * MSG_EDIT_VALUE_MAX bytes, percent-escaped); every other reply line
 * stays within WIRE_REPLY_MAX. */
#define WIRE_EDIT_LINE_MAX (64 * 1024)

struct wire_attr {
	const char *name;   /* points into the request's buffer */
	const char *value;
};

/* A parsed request.  Attribute strings live in buf and stay valid until
 * the parser is reset or fed again. */
struct wire_request {
	struct wire_attr *attrs;
	size_t count;
	size_t cap;
	char *buf;
	size_t len;
	size_t bufcap;
};

/* The request parser is an explicit state machine fed arbitrary chunks. */
enum wire_parse_state {
	WIRE_PARSE_LINE_START,   /* at the start of a line                 */
	WIRE_PARSE_IN_LINE,      /* inside a name=value line               */
	WIRE_PARSE_SKIP_LINE,    /* discarding the rest of an over-long one */
	WIRE_PARSE_DONE,         /* a complete request is in req            */
	WIRE_PARSE_ERROR,        /* malformed; the connection must be closed */
};

struct wire_parser {
	enum wire_parse_state state;
	struct wire_request req;
	size_t line_start;       /* offset of the current line in req.buf */
	bool overlong;           /* this request had an over-long line    */
};

void wire_parser_init(struct wire_parser *p);
/* wire_parser_feed - consume bytes from data until a request completes.
 * Returns 1 when a request is complete (*consumed bytes were used; the
 * rest belongs to the next request), 0 when all len bytes were consumed
 * and more are needed, -1 on a protocol error (err says which). */
int wire_parser_feed(struct wire_parser *p, const char *data, size_t len,
    size_t *consumed, struct error *err);
/* wire_parser_next - forget the completed request, ready for the next. */
void wire_parser_next(struct wire_parser *p);
void wire_parser_free(struct wire_parser *p);
const char *wire_parse_state_name(enum wire_parse_state s);

/* Attribute look-up: the last value of name, or NULL. */
const char *wire_request_get(const struct wire_request *r, const char *name);
/* The i-th value of a repeatable attribute (accepted_recipient). */
size_t wire_request_count(const struct wire_request *r, const char *name);
const char *wire_request_nth(const struct wire_request *r, const char *name,
    size_t i);

/* wire_encode_attr - append "name=value\n"; CR, LF and NUL inside value
 * are replaced by '?' so an attacker-chosen string cannot inject an
 * attribute.  Returns -1 when the request would exceed WIRE_REQUEST_MAX. */
int wire_encode_attr(struct strbuf *sb, const char *name, const char *value);
int wire_encode_end(struct strbuf *sb);    /* the terminating empty line */

/* ==== Replies ==== */

/* The reply's one attribute (anything else in a reply is ignored). */
#define WIRE_ATTR_ACTION "action"

/* wire_action_name - Elemta's word for an action, as config values,
 * metric labels and logs spell it: "continue", "reject", "tempfail",
 * "discard", "quarantine"; "?" outside the enum. */
const char *wire_action_name(enum elemta_action action);
/* wire_action_parse - the action word names (case-sensitive); 0, or -1
 * when it names none. */
int wire_action_parse(const char *word, enum elemta_action *out);

/* ==== Prepended headers (the PREPEND action) ====
 * "action=PREPEND Name: value" (Postfix's meaning): continue, and add the
 * header at the top of the message, above smtpd's Received: header, in
 * the order the PREPENDs came.  The name must be an RFC 5322 field-name
 * (printable US-ASCII but ':', at most WIRE_HEADER_NAME_MAX bytes), the
 * value one line (no CR, LF, NUL or other control character but TAB) and
 * "Name: value" at most WIRE_HEADER_LINE_MAX bytes (RFC 5322's line
 * limit, no folding).  An invalid PREPEND is logged and ignored (the
 * reply still continues), never a broken message.  A message carries at
 * most WIRE_HEADERS_MAX prepended headers in WIRE_HEADERS_BYTES_MAX
 * bytes; further ones are logged and dropped. */
#define WIRE_WORD_PREPEND "PREPEND"
#define WIRE_HEADER_NAME_MAX 64
#define WIRE_HEADER_LINE_MAX 998
#define WIRE_HEADERS_MAX 16
#define WIRE_HEADERS_BYTES_MAX 4096

/* A bounded list of headers, each stored as one "Name: value\r\n" line
 * (the spool's line ending) in order.  Zeroed means empty. */
struct wire_headers {
	unsigned count;
	size_t len;
	char buf[WIRE_HEADERS_BYTES_MAX];
};

/* wire_header_check - 0 when name and value make a valid header (see
 * above), else -1 with err saying why. */
int wire_header_check(const char *name, const char *value, struct error *err);
/* wire_headers_add - append the header "name: value"; -1 (h unchanged,
 * err says why) when it is invalid or h is full. */
int wire_headers_add(struct wire_headers *h, const char *name,
    const char *value, struct error *err);
/* wire_headers_add_line - append a "Name: value" line (a PREPEND's text;
 * blanks after the colon are dropped); -1 as wire_headers_add. */
int wire_headers_add_line(struct wire_headers *h, const char *line,
    struct error *err);
/* wire_headers_append - append every header of src that still fits dst;
 * returns how many did not (dropped). */
unsigned wire_headers_append(struct wire_headers *dst,
    const struct wire_headers *src);
/* wire_headers_next - iterate: *pos starts at 0; the next line (without
 * its CR LF) into *line and *len; false at the end. */
bool wire_headers_next(const struct wire_headers *h, size_t *pos,
    const char **line, size_t *len);

/* A decoded reply. */
struct wire_reply {
	enum elemta_action action;
	int code;                /* 0 when the action gave none */
	char enhanced[16];       /* "" when none                */
	char text[512];          /* without code / enhanced code */
	/* The action was the word OK.  OK and DUNNO both continue; only
	 * at AUTH does the difference matter: policyd says OK for verified
	 * credentials, and a DUNNO (a policy server that knows nothing of
	 * AUTH) must never log a client in. */
	bool ok;
	/* The action was the word PREPEND; header is its "Name: value"
	 * (without CR LF), or "" when it was invalid (logged). */
	bool prepend;
	char header[WIRE_HEADER_LINE_MAX + 1];
};

/* wire_reply_parse - parse the value of "action=" (after the '=').
 * Accepts DUNNO, OK, REJECT, DEFER, DEFER_IF_PERMIT, DEFER_IF_REJECT,
 * DISCARD, HOLD, PREPEND (continue, header filled in), WARN, FILTER
 * (continue), "4NN text" and "5NN text"; an unknown action is a TEMPFAIL
 * so that a bad policy server never silently allows.
 *
 * Several PREPENDs in one reply (the private socket's extension; a
 * Postfix reply has one action): a reply may carry "action=PREPEND ..."
 * lines before its last action line.  Each adds its header; the reply's
 * verdict is its last action line that is not a PREPEND, or continue
 * when all were PREPENDs.  A PREPEND never overrides a verdict given
 * before it. */
void wire_reply_parse(const char *action, struct wire_reply *out);
/* wire_reply_encode_ok - "action=OK" and the empty line: policyd's
 * answer to verified AUTH credentials (where wire_reply_encode would say
 * DUNNO).  -1 when sb is full. */
int wire_reply_encode_ok(struct strbuf *sb);
/* wire_reply_encode_auth - policyd's answer to an AUTH request: OK
 * (ok) or res's action, then "elemta_delay_ms=N" when delay_ms > 0
 * (capped at WIRE_DELAY_MS_MAX), then the empty line.  -1 when sb is
 * full. */
int wire_reply_encode_auth(struct strbuf *sb, const struct elemta_result *res,
    bool ok, uint32_t delay_ms);
/* The reply extension attributes of policyd's answers on the private
 * socket (see wire.c's "Reply extension"). */
struct wire_reply_ext {
	uint32_t delay_ms;                /* 0: none                       */
	const char *client_name;          /* NULL: none (CONNECT only)     */
	const char *reverse_client_name;
};
/* wire_reply_encode_ext - res's action (OK when ok), then ext's
 * attributes, then the empty line.  -1 when sb is full. */
int wire_reply_encode_ext(struct strbuf *sb, const struct elemta_result *res,
    bool ok, const struct wire_reply_ext *ext);
/* wire_client_name_valid - a client_name value policyd may send and
 * smtpd may use in its Received: header: "unknown", or a host name of
 * letters, digits, '-', '_' and '.' (at most 253). */
bool wire_client_name_valid(const char *name);
/* wire_reply_delay_parse - the value of "elemta_delay_ms=" (decimal
 * digits only, at most WIRE_DELAY_MS_MAX) into *ms; -1 (*ms = 0) for
 * anything else. */
int wire_reply_delay_parse(const char *value, uint32_t *ms);
/* wire_reply_encode - "action=NNN X.Y.Z text\n\n" (DUNNO for continue,
 * DISCARD/HOLD text for discard/quarantine).  Fills in the action's
 * default codes when res has none. */
int wire_reply_encode(struct strbuf *sb, const struct elemta_result *res);
/* wire_reply_encode_headers - policyd's whole reply: on the private
 * socket (one_action false) every header of hdrs (may be NULL) as an
 * "action=PREPEND" line when res accepts (continue, discard, quarantine),
 * then wire_reply_encode_ext's lines (ext: the private socket's
 * extension attributes; all zero on the Postfix listener).  With one_action (the Postfix
 * listener, whose reply is one action), a continue with headers is
 * "action=PREPEND first-header" alone, and *dropped (may be NULL) counts
 * the headers that could not be sent.  -1 when sb is full. */
int wire_reply_encode_headers(struct strbuf *sb,
    const struct elemta_result *res, bool ok,
    const struct wire_reply_ext *ext, const struct wire_headers *hdrs,
    bool one_action, unsigned *dropped);
/* wire_result_defaults - fill res's code/enhanced/message defaults and
 * make the code agree with the action. */
void wire_result_defaults(struct elemta_result *res);

#endif
