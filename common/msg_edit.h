/*
 * msg_edit.h - an ordered list of edits to a message (headers, body,
 * envelope), its wire form, and its application to a spooled message.
 *
 * Who fills a list: policyd's milter client (policyd/milter.c) from the
 * milters' SMFIR_* modifications, and a policy reply's PREPEND (a header
 * inserted at the top: MSG_EDIT_HEADER_INSERT at index 0).  It travels
 * from policyd to smtpd in the END-OF-MESSAGE reply as repeated
 * `elemta_edit=` attributes (msg_edit_encode / msg_edit_parse), and
 * smtpd applies it once, to a new spool file that replaces the received
 * one before the envelope is appended and the file committed
 * (msg_edits_apply, smtpd/spool.c spool_msg_rewrite): the committed
 * message is either the received one or the one with every edit applied,
 * never half of it.
 *
 * Promises of msg_edits_apply:
 *  - edits apply in list order, each to the result of the ones before it;
 *  - bytes no edit touches are copied exactly (the header fields kept and
 *    the body, unless replaced);
 *  - a header written by an edit ends in CRLF, its line breaks are CRLF,
 *    every continuation line starts with white space and none is empty
 *    or white space only,
 *    so an edit can never end the header block or smuggle a body;
 *  - a replacement body is written with CRLF line breaks only (a bare
 *    CR or LF becomes CRLF) and, unless empty, ends in CRLF;
 *  - header indexes: INSERT's index counts fields from the top (0 is the
 *    very top, past the end appends); CHANGE's is the n-th (1-based)
 *    field of that name, case-insensitive; CHANGE with an empty value
 *    deletes it; CHANGE of a field that does not exist adds it (as
 *    Sendmail does), unless the value is empty.
 * Bounds: MSG_EDITS_MAX edits, MSG_EDIT_HEADER_BLOCK_MAX bytes of header
 * block read from the message, MSG_EDIT_BODY_MAX bytes of replacement
 * body; beyond them the list refuses the edit (-1) or apply fails.
 */
#ifndef ELEMTA_MSG_EDIT_H
#define ELEMTA_MSG_EDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "strbuf.h"

#define MSG_EDITS_MAX 256
#define MSG_EDIT_HEADER_BLOCK_MAX (1024u * 1024u)
/* A replaced body travels base64 in the reply (policyd keeps at most
 * 4 MB of replies per connection): 1 MiB is the most a milter may
 * replace a body with. */
#define MSG_EDIT_BODY_MAX (1024u * 1024u)
#define MSG_EDIT_NAME_MAX 256u
#define MSG_EDIT_VALUE_MAX 16384u
/* Body bytes per `elemta_edit=body` wire line (base64 fits in a line). */
#define MSG_EDIT_BODY_CHUNK 2048u

enum msg_edit_op {
	MSG_EDIT_HEADER_ADD,     /* append at the end of the header block */
	MSG_EDIT_HEADER_INSERT,  /* at index (0: the top)                 */
	MSG_EDIT_HEADER_CHANGE,  /* index-th field of name; "" deletes    */
	MSG_EDIT_SENDER,         /* value: the new sender, args: ESMTP     */
	MSG_EDIT_RCPT_ADD,       /* value: a recipient to add              */
	MSG_EDIT_RCPT_DEL,       /* value: a recipient to remove           */
};

struct msg_edit {
	enum msg_edit_op op;
	uint32_t index;
	char *name;     /* header edits, owned                             */
	char *value;    /* header value as given (lines joined by "\n" or
	                 * "\r\n"; leading white space kept), or address   */
	char *args;     /* SENDER's ESMTP arguments, or NULL               */
	bool leadspc;   /* the value carries its own leading space         */
};

struct msg_edits {
	struct msg_edit *items;
	size_t count, cap;
	uint8_t *body;          /* replacement body, owned                 */
	size_t body_len;
	bool body_set;          /* the body is replaced (maybe by nothing) */
};

/* msg_edit_name_ok - a header field name: 1 to MSG_EDIT_NAME_MAX
 * printable ASCII characters but ':' (RFC 5322). */
bool msg_edit_name_ok(const char *name);
/* msg_edits_header - append a header edit (ADD, INSERT, CHANGE); -1 when
 * the list is full or name/value are out of bounds or invalid. */
int msg_edits_header(struct msg_edits *e, enum msg_edit_op op,
    uint32_t index, const char *name, const char *value, bool leadspc);
/* msg_edits_envelope - append SENDER, RCPT_ADD or RCPT_DEL; -1 when full
 * or the address holds a control byte. */
int msg_edits_envelope(struct msg_edits *e, enum msg_edit_op op,
    const char *addr, const char *args);
/* msg_edits_body_append - add bytes to the replacement body; -1 past
 * MSG_EDIT_BODY_MAX. */
int msg_edits_body_append(struct msg_edits *e, const void *data,
    size_t len);
/* msg_edits_append - every edit of src after dst's, all or none (-1 when
 * they do not all fit: an edit list is never silently cut short); an
 * INSERT at index shift_from or below moves down by shift.  A replaced
 * body in src replaces dst's. */
int msg_edits_append(struct msg_edits *dst, const struct msg_edits *src,
    uint32_t shift_from, uint32_t shift);
/* msg_edits_empty - nothing to do. */
bool msg_edits_empty(const struct msg_edits *e);
/* msg_edits_changes_content - a header or body edit is present. */
bool msg_edits_changes_content(const struct msg_edits *e);
void msg_edits_free(struct msg_edits *e);

/* msg_edits_encode - every edit of e as `attr=value` lines (attr: the
 * WIRE_ATTR_EDIT attribute) appended to sb; -1 when sb is full.  Each
 * line stays within WIRE_EDIT_LINE_MAX (a value of MSG_EDIT_VALUE_MAX
 * bytes escaped is at most three times as long). */
int msg_edits_encode(const struct msg_edits *e, const char *attr,
    struct strbuf *sb);
/* msg_edit_parse - one encoded value (after "attr=") appended to e; -1
 * with err when malformed. */
int msg_edit_parse(struct msg_edits *e, const char *value, struct error *err);

/* The sink msg_edits_apply writes the new message to. */
typedef int (*msg_edit_write_fn)(void *arg, const void *data, size_t len,
    struct error *err);

/* msg_edits_apply - read the message in in_fd's bytes [0, in_size)
 * (pread: no shared offset moves) and write it with e's header and body
 * edits applied through out.  Envelope edits are the caller's.  0, or -1
 * with err (a read or a write failed, the header block is too large). */
int msg_edits_apply(const struct msg_edits *e, int in_fd, uint64_t in_size,
    msg_edit_write_fn out, void *arg, struct error *err);

#endif
