/*
 * wire.c - the smtpd <-> policyd wire protocol: the Postfix policy
 * delegation protocol, request parser and encoder, reply parser and
 * encoder.
 *
 * Called by smtpd (encodes requests, parses replies) and policyd (parses
 * requests, encodes replies).  Request bytes come from smtpd (less trusted
 * than policyd) or from a real Postfix on policyd.postfix_listen; reply
 * text comes from policyd or a foreign policy server.  Everything is
 * bounded (WIRE_LINE_MAX, WIRE_REQUEST_MAX, WIRE_ATTRS_MAX) and a
 * malformed request is a protocol error for the caller to answer, never a
 * crash.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "wire.h"

/*==== Vocabulary: phases and actions ====*/

/* protocol_state spellings, indexed by enum elemta_phase. */
static const char *const wire_phases[] = {
	[ELEMTA_PHASE_UNKNOWN] = "UNKNOWN",
	[ELEMTA_PHASE_CONNECT] = "CONNECT",
	[ELEMTA_PHASE_EHLO] = "EHLO",
	[ELEMTA_PHASE_HELO] = "HELO",
	[ELEMTA_PHASE_AUTH] = "AUTH",
	[ELEMTA_PHASE_MAIL] = "MAIL",
	[ELEMTA_PHASE_RCPT] = "RCPT",
	[ELEMTA_PHASE_DATA] = "DATA",
	[ELEMTA_PHASE_EOM] = "END-OF-MESSAGE",
};

#define WIRE_PHASE_COUNT (sizeof(wire_phases) / sizeof(wire_phases[0]))

/* wire_phase_name - the protocol_state spelling of a phase. */
const char *
wire_phase_name(enum elemta_phase phase)
{
	if ((unsigned)phase >= WIRE_PHASE_COUNT)
		return wire_phases[ELEMTA_PHASE_UNKNOWN];
	return wire_phases[phase];
}

/* wire_phase_parse - protocol_state to phase (absent = RCPT, as Postfix). */
enum elemta_phase
wire_phase_parse(const char *state)
{
	if (state == NULL)
		return ELEMTA_PHASE_RCPT;
	for (size_t i = ELEMTA_PHASE_CONNECT; i < WIRE_PHASE_COUNT; i++)
		if (strcmp(state, wire_phases[i]) == 0)
			return (enum elemta_phase)i;
	return ELEMTA_PHASE_UNKNOWN;
}

/* Elemta's own words for its actions, indexed by enum elemta_action. */
static const char *const wire_action_names[] = {
	[ELEMTA_CONTINUE] = "continue",
	[ELEMTA_REJECT] = "reject",
	[ELEMTA_TEMPFAIL] = "tempfail",
	[ELEMTA_DISCARD] = "discard",
	[ELEMTA_QUARANTINE] = "quarantine",
};

#define WIRE_ACTION_COUNT \
	(sizeof(wire_action_names) / sizeof(wire_action_names[0]))

/* wire_action_name - Elemta's word for an action. */
const char *
wire_action_name(enum elemta_action action)
{
	if ((unsigned)action >= WIRE_ACTION_COUNT)
		return "?";
	return wire_action_names[action];
}

/* wire_action_parse - the action a word names. */
int
wire_action_parse(const char *word, enum elemta_action *out)
{
	for (size_t i = 0; word != NULL && i < WIRE_ACTION_COUNT; i++)
		if (strcmp(word, wire_action_names[i]) == 0) {
			*out = (enum elemta_action)i;
			return 0;
		}
	return -1;
}

/* Reply action words Elemta writes (Postfix's). */
#define WIRE_WORD_DUNNO "DUNNO"
#define WIRE_WORD_OK "OK"
#define WIRE_WORD_DISCARD "DISCARD"
#define WIRE_WORD_HOLD "HOLD"

/* Every action word understood in a reply (Postfix's access(5) words a
 * policy server may send) and what it means here; "4NN text" and
 * "5NN text" are parsed apart. */
struct wire_action_word {
	const char *word;
	enum elemta_action action;
	bool ok;                  /* the word OK itself             */
	int code;                 /* REJECT/TEMPFAIL: default code  */
	const char *enhanced;     /* ...and enhanced code           */
	char word_class;          /* '4' or '5' for codes in text   */
};

static const struct wire_action_word wire_actions[] = {
	{ WIRE_WORD_DUNNO, ELEMTA_CONTINUE, false, 0, "", 0 },
	{ WIRE_WORD_OK, ELEMTA_CONTINUE, true, 0, "", 0 },
	{ WIRE_WORD_PREPEND, ELEMTA_CONTINUE, false, 0, "", 0 },
	{ "WARN", ELEMTA_CONTINUE, false, 0, "", 0 },
	{ "FILTER", ELEMTA_CONTINUE, false, 0, "", 0 },
	{ "REJECT", ELEMTA_REJECT, false, 550, "5.7.1", '5' },
	{ "DEFER", ELEMTA_TEMPFAIL, false, 450, "4.7.1", '4' },
	{ "DEFER_IF_PERMIT", ELEMTA_TEMPFAIL, false, 450, "4.7.1", '4' },
	{ "DEFER_IF_REJECT", ELEMTA_TEMPFAIL, false, 450, "4.7.1", '4' },
	{ WIRE_WORD_DISCARD, ELEMTA_DISCARD, false, 0, "", 0 },
	{ WIRE_WORD_HOLD, ELEMTA_QUARANTINE, false, 0, "", 0 },
};

/*==== Request format and the Elemta extension attributes ====
 *
 * A request is a sequence of "name=value" lines ended by LF (a CR before
 * the LF is tolerated and stripped), terminated by an empty line.  The
 * name is everything before the first '=' (non-empty); the value is the
 * rest of the line and may itself contain '='.  Attribute order is free,
 * unknown attributes are kept (and ignored by policyd), and a repeated
 * attribute keeps every value: wire_request_get() returns the last one,
 * wire_request_nth() each in turn.  An empty request (a lone empty line)
 * is never sent by Postfix; it parses as a complete request with zero
 * attributes.
 *
 * Errors (the parser enters WIRE_PARSE_ERROR and the connection must be
 * closed): a line without '=', an empty name, a NUL byte, a line longer
 * than WIRE_LINE_MAX bytes (reported once, when its end arrives), a
 * request longer than WIRE_REQUEST_MAX bytes or with more than
 * WIRE_ATTRS_MAX attributes.
 *
 * Standard attributes are those of Postfix's SMTPD_POLICY_README
 * (request, protocol_state, protocol_name, client_address, client_port,
 * client_name, reverse_client_name, helo_name, sender, recipient,
 * recipient_count, size, instance, queue_id, sasl_method, sasl_username,
 * encryption_protocol, encryption_cipher, server_address, server_port).
 *
 * Elemta extensions, sent by smtpd only on the private Unix socket
 * (policyd.socket) and ignored by policyd on its Postfix listener:
 *
 *   protocol_state=AUTH
 *       An AUTH attempt: policyd verifies the credentials itself (the
 *       password never reaches a plugin), records the outcome in the
 *       failed-auth counters, runs the on_auth hooks and replies with the
 *       outcome.
 *   elemta_session=ID
 *       Always: smtpd's session id, so smtpd's and policyd's log lines
 *       about one session can be correlated.
 *   elemta_listen_mode=smtp|submission|smtps
 *       Always: the mode of the listener the client connected to.
 *   accepted_recipient=ADDRESS
 *       At DATA and END-OF-MESSAGE, repeated once per accepted recipient
 *       in acceptance order (read with wire_request_count/_nth).
 *   message_fd=1
 *       At END-OF-MESSAGE: a read-only descriptor of the spooled message
 *       travels with this request over SCM_RIGHTS, attached to the
 *       request's first byte (see fdpass.h).  Absent or any other value:
 *       no descriptor.
 *
 * Reply extension, sent by policyd only on the private socket (never on
 * its Postfix listener), between the action line and the empty line:
 *
 *   elemta_delay_ms=N
 *       In an answer to an AUTH request: smtpd holds its reply to the
 *       client back N milliseconds (a user whose password failed from
 *       many addresses is slowed down, not refused).  policyd answers at
 *       once, so the delay never occupies the policy connection; the
 *       session waits on a timer of its own.  N is decimal, at most
 *       WIRE_DELAY_MS_MAX (parsed by wire_reply_delay_parse; anything
 *       else is ignored: no delay), and smtpd caps it again at half its
 *       policyd.timeout_ms.
 *   action=PREPEND Name: value   (repeated, before the action line)
 *       Every header the chain prepended when the verdict accepts
 *       (continue, discard, quarantine), in order; the last action line
 *       is the verdict (wire_reply_parse says how a reader combines
 *       them).  On the Postfix listener the reply is one action: a
 *       continue with headers is "action=PREPEND first-header" alone.
 *
 *   elemta_client_name=NAME
 *   elemta_reverse_client_name=NAME
 *       In an answer to a CONNECT request: the client's names policyd
 *       looked up (policyd/host_dns.c) - the name verified by
 *       forward-confirmed reverse DNS, and the PTR name unverified, each
 *       "unknown" when there is none.  smtpd writes them into its
 *       Received: header ("from helo (name [ip])") and sends them as
 *       client_name and reverse_client_name in the session's later
 *       requests.  A value that wire_client_name_valid refuses is
 *       ignored (the name stays "unknown").  policyd bounds the lookups
 *       by dns.timeout and by its request budget (below
 *       policyd.timeout_ms), so smtpd never waits for them longer than
 *       for any policy answer.
 */

/* wire_parse_state_name - for logs. */
const char *
wire_parse_state_name(enum wire_parse_state s)
{
	switch (s) {
	case WIRE_PARSE_LINE_START:
		return "line-start";
	case WIRE_PARSE_IN_LINE:
		return "in-line";
	case WIRE_PARSE_SKIP_LINE:
		return "skip-line";
	case WIRE_PARSE_DONE:
		return "done";
	case WIRE_PARSE_ERROR:
		return "error";
	}
	return "unknown";
}

/* wire_parser_enter - the one place the parser's state changes. */
static void
wire_parser_enter(struct wire_parser *p, enum wire_parse_state s)
{
	p->state = s;
}

/* wire_parser_init - an empty parser at the start of a request. */
void
wire_parser_init(struct wire_parser *p)
{
	memset(p, 0, sizeof(*p));
	wire_parser_enter(p, WIRE_PARSE_LINE_START);
}

/* wire_parser_next - forget the completed (or failed) request; memory is
 * kept for the next one unless a large request grew it. */
void
wire_parser_next(struct wire_parser *p)
{
	/* A connection that once sent a huge request should not pin that
	 * much memory for its lifetime: thousands of connections are open. */
	if (p->req.bufcap > 64 * 1024) {
		free(p->req.buf);
		p->req.buf = NULL;
		p->req.bufcap = 0;
	}
	if (p->req.cap > 256) {
		free(p->req.attrs);
		p->req.attrs = NULL;
		p->req.cap = 0;
	}
	p->req.count = 0;
	p->req.len = 0;
	p->line_start = 0;
	p->overlong = false;
	wire_parser_enter(p, WIRE_PARSE_LINE_START);
}

/* wire_parser_free - release memory; the parser is as after init. */
void
wire_parser_free(struct wire_parser *p)
{
	free(p->req.buf);
	free(p->req.attrs);
	wire_parser_init(p);
}

/* wire_fail - enter the error state and report. */
static int __attribute__((format(printf, 3, 4)))
wire_fail(struct wire_parser *p, struct error *err, const char *fmt, ...)
{
	va_list ap;

	wire_parser_enter(p, WIRE_PARSE_ERROR);
	if (err != NULL) {
		va_start(ap, fmt);
		vsnprintf(err->text, sizeof(err->text), fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* wire_buf_reserve - room for need bytes in total in req.buf. */
static void
wire_buf_reserve(struct wire_request *r, size_t need)
{
	size_t cap;

	if (need <= r->bufcap)
		return;
	cap = r->bufcap ? r->bufcap : 1024;
	while (cap < need)
		cap *= 2;
	r->buf = xrealloc(r->buf, cap);
	r->bufcap = cap;
}

/* wire_line_end - a complete line (LF not stored) is buf[line_start..len):
 * an empty one ends the request, anything else becomes "name\0value\0". */
static int
wire_line_end(struct wire_parser *p, struct error *err)
{
	struct wire_request *r = &p->req;
	char *line = r->buf + p->line_start;
	size_t n = r->len - p->line_start;
	char esc[80];
	char *eq;

	if (n > 0 && line[n - 1] == '\r') {
		n--;
		r->len--;
	}
	if (n == 0)
		return 1;
	if (n > WIRE_LINE_MAX)
		return wire_fail(p, err, "policy request line longer than %d "
		    "bytes", WIRE_LINE_MAX);
	if (memchr(line, '\0', n) != NULL)
		return wire_fail(p, err, "NUL byte in policy request line");
	eq = memchr(line, '=', n);
	if (eq == NULL)
		return wire_fail(p, err, "policy request line without '=': "
		    "\"%s\"", log_escape(esc, sizeof(esc), line, n));
	if (eq == line)
		return wire_fail(p, err, "policy request line with an empty "
		    "name: \"%s\"", log_escape(esc, sizeof(esc), line, n));
	if (r->count >= WIRE_ATTRS_MAX)
		return wire_fail(p, err, "policy request with more than %d "
		    "attributes", WIRE_ATTRS_MAX);
	*eq = '\0';
	/* The LF (or the stripped CR) becomes the value's terminator; the
	 * +1 was accounted for when the bytes were appended. */
	wire_buf_reserve(r, r->len + 1);
	r->buf[r->len++] = '\0';
	r->count++;
	return 0;
}

/* wire_request_finish - point attrs into buf now that it no longer moves. */
static void
wire_request_finish(struct wire_request *r)
{
	const char *s = r->buf;

	if (r->count > r->cap) {
		r->attrs = xrealloc(r->attrs, r->count * sizeof(*r->attrs));
		r->cap = r->count;
	}
	for (size_t i = 0; i < r->count; i++) {
		r->attrs[i].name = s;
		s += strlen(s) + 1;
		r->attrs[i].value = s;
		s += strlen(s) + 1;
	}
}

/* wire_parser_feed - consume bytes until a request completes: 1 complete
 * (*consumed bytes used), 0 need more (all used), -1 protocol error.
 * Feeding a parser holding a completed request starts the next one. */
int
wire_parser_feed(struct wire_parser *p, const char *data, size_t len,
    size_t *consumed, struct error *err)
{
	struct wire_request *r = &p->req;
	size_t i = 0;
	int rc;

	if (consumed != NULL)
		*consumed = 0;
	if (p->state == WIRE_PARSE_DONE)
		wire_parser_next(p);
	if (p->state == WIRE_PARSE_ERROR)
		return error_set(err, "policy request parser is in the error "
		    "state");

	while (i < len) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t seg = nl != NULL ? (size_t)(nl - (data + i)) : len - i;

		switch (p->state) {
		case WIRE_PARSE_LINE_START:
			if (nl != NULL && seg == 0) {
				/* The empty line: the request is complete. */
				i++;
				wire_request_finish(r);
				wire_parser_enter(p, WIRE_PARSE_DONE);
				if (consumed != NULL)
					*consumed = i;
				return 1;
			}
			p->line_start = r->len;
			wire_parser_enter(p, WIRE_PARSE_IN_LINE);
			break;

		case WIRE_PARSE_IN_LINE:
			/* +1: a CR before the LF does not count. */
			if (r->len - p->line_start + seg > WIRE_LINE_MAX + 1) {
				/* Drop what we have and report the error once,
				 * when the line's end arrives, so one bad line
				 * is one error whatever the chunking. */
				r->len = p->line_start;
				p->overlong = true;
				wire_parser_enter(p, WIRE_PARSE_SKIP_LINE);
				break;
			}
			/* +1 for the NUL that replaces the LF. */
			if (r->len + seg + 1 > WIRE_REQUEST_MAX) {
				if (consumed != NULL)
					*consumed = i + seg;
				return wire_fail(p, err, "policy request longer "
				    "than %d bytes", WIRE_REQUEST_MAX);
			}
			wire_buf_reserve(r, r->len + seg + 1);
			memcpy(r->buf + r->len, data + i, seg);
			r->len += seg;
			i += seg;
			if (nl == NULL)
				break;
			i++;
			rc = wire_line_end(p, err);
			if (rc < 0) {
				if (consumed != NULL)
					*consumed = i;
				return -1;
			}
			if (rc == 1) {
				/* A CR-only line: the end of the request. */
				wire_request_finish(r);
				wire_parser_enter(p, WIRE_PARSE_DONE);
				if (consumed != NULL)
					*consumed = i;
				return 1;
			}
			wire_parser_enter(p, WIRE_PARSE_LINE_START);
			break;

		case WIRE_PARSE_SKIP_LINE:
			i += seg;
			if (nl == NULL)
				break;
			i++;
			if (consumed != NULL)
				*consumed = i;
			return wire_fail(p, err, "policy request line longer "
			    "than %d bytes", WIRE_LINE_MAX);

		case WIRE_PARSE_DONE:
		case WIRE_PARSE_ERROR:
			/* Unreachable: both return above. */
			return wire_fail(p, err, "policy request parser in "
			    "state %s", wire_parse_state_name(p->state));
		}
	}
	if (consumed != NULL)
		*consumed = len;
	return 0;
}

/* wire_request_get - the last value of name, or NULL. */
const char *
wire_request_get(const struct wire_request *r, const char *name)
{
	/* The first byte first: a request holds ~16 attributes and every
	 * decision looks several up, so most strcmp calls were misses. */
	for (size_t i = r->count; i-- > 0;)
		if (r->attrs[i].name[0] == name[0] &&
		    strcmp(r->attrs[i].name, name) == 0)
			return r->attrs[i].value;
	return NULL;
}

/* wire_request_count - how many times name occurs. */
size_t
wire_request_count(const struct wire_request *r, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < r->count; i++)
		if (strcmp(r->attrs[i].name, name) == 0)
			n++;
	return n;
}

/* wire_request_nth - the i-th (0-based, in order) value of name, or NULL. */
const char *
wire_request_nth(const struct wire_request *r, const char *name, size_t i)
{
	for (size_t k = 0; k < r->count; k++)
		if (strcmp(r->attrs[k].name, name) == 0 && i-- == 0)
			return r->attrs[k].value;
	return NULL;
}

/*==== Encoding requests ====*/

/* wire_append_clean - append s with CR, LF (and in names '=') as '?'. */
static int
wire_append_clean(struct strbuf *sb, const char *s, bool is_name)
{
	while (*s != '\0') {
		size_t n = strcspn(s, is_name ? "\r\n=" : "\r\n");

		if (strbuf_append(sb, s, n) < 0)
			return -1;
		s += n;
		if (*s == '\0')
			break;
		if (strbuf_append(sb, "?", 1) < 0)
			return -1;
		s++;
	}
	return 0;
}

/* wire_encode_attr - append "name=value\n" with CR/LF made '?', so an
 * attacker-chosen value cannot start a second attribute.  -1 (nothing
 * appended) when the line would be longer than the parser accepts
 * (WIRE_LINE_MAX) or the request longer than WIRE_REQUEST_MAX. */
int
wire_encode_attr(struct strbuf *sb, const char *name, const char *value)
{
	size_t old = sb->len;
	size_t line;

	if (value == NULL)
		value = "";
	line = strlen(name) + 1 + strlen(value);
	if (line > WIRE_LINE_MAX || sb->len + line + 1 > WIRE_REQUEST_MAX)
		return -1;
	if (wire_append_clean(sb, name, true) < 0 ||
	    strbuf_append(sb, "=", 1) < 0 ||
	    wire_append_clean(sb, value, false) < 0 ||
	    strbuf_append(sb, "\n", 1) < 0) {
		/* All or nothing, like every strbuf append. */
		strbuf_truncate(sb, old);
		return -1;
	}
	return 0;
}

/* wire_encode_end - the empty line that ends a request. */
int
wire_encode_end(struct strbuf *sb)
{
	if (sb->len + 1 > WIRE_REQUEST_MAX)
		return -1;
	return strbuf_append(sb, "\n", 1);
}

/*==== Replies ====*/

/* wire_enhanced_len - length of an RFC 3463 code "C.SSS.DDD" (class 2, 4
 * or 5, one to three digits per part) at s, followed by the end or a
 * space; 0 when there is none. */
static size_t
wire_enhanced_len(const char *s)
{
	size_t i = 0;

	if (s[0] != '2' && s[0] != '4' && s[0] != '5')
		return 0;
	i = 1;
	for (int part = 0; part < 2; part++) {
		size_t digits = 0;

		if (s[i] != '.')
			return 0;
		i++;
		while (isdigit((unsigned char)s[i]) && digits < 4) {
			i++;
			digits++;
		}
		if (digits == 0 || digits > 3)
			return 0;
	}
	if (s[i] != '\0' && s[i] != ' ' && s[i] != '\t')
		return 0;
	return i;
}

/* wire_enhanced_valid - a whole string that is an enhanced code of the
 * given class ('4' or '5'). */
static bool
wire_enhanced_valid(const char *s, char class_digit)
{
	size_t n = wire_enhanced_len(s);

	return n > 0 && s[n] == '\0' && s[0] == class_digit;
}

/* wire_copy_text - copy text into dst, control characters (CR/LF above
 * all: the text ends up in an SMTP reply) as spaces, trailing blanks cut. */
static void
wire_copy_text(char *dst, size_t size, const char *src)
{
	size_t n = 0;

	while (*src != '\0' && n + 1 < size) {
		unsigned char c = (unsigned char)*src++;

		dst[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	dst[n] = '\0';
}

/* wire_skip_blank - past spaces and tabs. */
static const char *
wire_skip_blank(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* wire_reply_text - take an optional leading enhanced code of the given
 * class into out->enhanced (one of another class is dropped: it would
 * contradict the action) and the rest into out->text. */
static void
wire_reply_text(struct wire_reply *out, const char *rest, char class_digit)
{
	size_t n;

	rest = wire_skip_blank(rest);
	n = wire_enhanced_len(rest);
	if (n > 0) {
		if (rest[0] == class_digit && n < sizeof(out->enhanced)) {
			memcpy(out->enhanced, rest, n);
			out->enhanced[n] = '\0';
		}
		rest = wire_skip_blank(rest + n);
	}
	wire_copy_text(out->text, sizeof(out->text), rest);
}

/* wire_reply_set - fill out with action, code, enhanced code and text. */
static void
wire_reply_set(struct wire_reply *out, enum elemta_action action, int code,
    const char *enhanced, const char *text)
{
	out->action = action;
	out->code = code;
	str_copy(out->enhanced, enhanced, sizeof(out->enhanced));
	wire_copy_text(out->text, sizeof(out->text), text);
}

/*==== Prepended headers ====*/

/* wire_header_check - see wire.h. */
int
wire_header_check(const char *name, const char *value, struct error *err)
{
	size_t nlen, vlen;

	if (name == NULL || value == NULL)
		return error_set(err, "header name or value missing");
	nlen = strlen(name);
	if (nlen == 0 || nlen > WIRE_HEADER_NAME_MAX)
		return error_set(err, "header name of %zu bytes (1..%d)",
		    nlen, WIRE_HEADER_NAME_MAX);
	for (size_t i = 0; i < nlen; i++) {
		unsigned char c = (unsigned char)name[i];

		/* RFC 5322 ftext: %d33-57 / %d59-126 */
		if (c < 33 || c > 126 || c == ':')
			return error_set(err, "header name has a byte 0x%02x "
			    "outside RFC 5322's field-name", c);
	}
	vlen = strlen(value);
	for (size_t i = 0; i < vlen; i++) {
		unsigned char c = (unsigned char)value[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return error_set(err, "header value has a control "
			    "byte 0x%02x", c);
	}
	if (nlen + 2 + vlen > WIRE_HEADER_LINE_MAX)
		return error_set(err, "header of %zu bytes (at most %d)",
		    nlen + 2 + vlen, WIRE_HEADER_LINE_MAX);
	return 0;
}

/* wire_headers_put - append one checked line of n bytes (no CR LF). */
static int
wire_headers_put(struct wire_headers *h, const char *line, size_t n,
    struct error *err)
{
	if (h->count >= WIRE_HEADERS_MAX)
		return error_set(err, "more than %d prepended headers",
		    WIRE_HEADERS_MAX);
	if (h->len + n + 2 > sizeof(h->buf))
		return error_set(err, "prepended headers over %d bytes",
		    WIRE_HEADERS_BYTES_MAX);
	memcpy(h->buf + h->len, line, n);
	memcpy(h->buf + h->len + n, "\r\n", 2);
	h->len += n + 2;
	h->count++;
	return 0;
}

/* wire_headers_add - see wire.h. */
int
wire_headers_add(struct wire_headers *h, const char *name, const char *value,
    struct error *err)
{
	char line[WIRE_HEADER_LINE_MAX + 1];
	int n;

	if (wire_header_check(name, value, err) < 0)
		return -1;
	n = snprintf(line, sizeof(line), "%s: %s", name, value);
	if (n < 0 || (size_t)n >= sizeof(line))
		return error_set(err, "header too long");
	return wire_headers_put(h, line, (size_t)n, err);
}

/* wire_headers_add_line - see wire.h. */
int
wire_headers_add_line(struct wire_headers *h, const char *line,
    struct error *err)
{
	char name[WIRE_HEADER_NAME_MAX + 1];
	const char *colon = strchr(line, ':');
	size_t nlen;

	if (colon == NULL)
		return error_set(err, "no ':' after the header name");
	nlen = (size_t)(colon - line);
	if (nlen == 0 || nlen >= sizeof(name))
		return error_set(err, "header name of %zu bytes (1..%d)",
		    nlen, WIRE_HEADER_NAME_MAX);
	memcpy(name, line, nlen);
	name[nlen] = '\0';
	return wire_headers_add(h, name, wire_skip_blank(colon + 1), err);
}

/* wire_headers_next - see wire.h. */
bool
wire_headers_next(const struct wire_headers *h, size_t *pos,
    const char **line, size_t *len)
{
	const char *p, *end;

	if (*pos >= h->len)
		return false;
	p = h->buf + *pos;
	end = memchr(p, '\r', h->len - *pos);
	if (end == NULL)
		return false;   /* not written by wire_headers_put */
	*line = p;
	*len = (size_t)(end - p);
	*pos += *len + 2;
	return true;
}

/* wire_headers_append - see wire.h. */
unsigned
wire_headers_append(struct wire_headers *dst, const struct wire_headers *src)
{
	const char *line;
	size_t pos = 0, len;
	unsigned dropped = 0;

	while (wire_headers_next(src, &pos, &line, &len))
		if (wire_headers_put(dst, line, len, NULL) < 0)
			dropped++;
	return dropped;
}

/* wire_reply_prepend - a PREPEND's text into out->header, or "" (and a
 * log line) when it is not a valid header. */
static void
wire_reply_prepend(struct wire_reply *out, const char *rest)
{
	struct wire_headers one;
	struct error err;
	char esc[128];

	out->action = ELEMTA_CONTINUE;
	out->prepend = true;
	one.count = 0;
	one.len = 0;
	rest = wire_skip_blank(rest);
	if (wire_headers_add_line(&one, rest, &err) < 0) {
		log_warn("policy reply: invalid PREPEND ignored (%s): %s",
		    err.text, log_escape(esc, sizeof(esc), rest, strlen(rest)));
		return;
	}
	memcpy(out->header, one.buf, one.len - 2);
	out->header[one.len - 2] = '\0';
}

/* wire_reply_parse - the value of "action=" to a reply; anything not
 * understood is a TEMPFAIL 451 4.3.5, never a silent accept. */
void
wire_reply_parse(const char *action, struct wire_reply *out)
{
	const char *s, *rest;
	size_t wlen;

	memset(out, 0, sizeof(*out));
	if (action == NULL)
		goto unknown;
	s = wire_skip_blank(action);
	wlen = strcspn(s, " \t");
	rest = s + wlen;
	if (wlen == 0)
		goto unknown;

	for (size_t k = 0; k < sizeof(wire_actions) / sizeof(wire_actions[0]);
	    k++) {
		const struct wire_action_word *a = &wire_actions[k];

		if (wlen != strlen(a->word) ||
		    strncasecmp(s, a->word, wlen) != 0)
			continue;
		out->ok = a->ok;
		switch (a->action) {
		case ELEMTA_REJECT:
		case ELEMTA_TEMPFAIL:
			wire_reply_set(out, a->action, a->code, "", "");
			wire_reply_text(out, rest, a->word_class);
			if (out->enhanced[0] == '\0')
				str_copy(out->enhanced, a->enhanced,
				    sizeof(out->enhanced));
			return;
		case ELEMTA_DISCARD:
		case ELEMTA_QUARANTINE:
			wire_reply_set(out, a->action, 0, "",
			    wire_skip_blank(rest));
			return;
		case ELEMTA_CONTINUE:
			if (strcmp(a->word, WIRE_WORD_PREPEND) == 0)
				wire_reply_prepend(out, rest);
			out->action = ELEMTA_CONTINUE;
			return;
		case ELEMTA_PENDING:    /* a hook's, never a word's */
			break;
		}
	}
	if (wlen == 3 && (s[0] == '4' || s[0] == '5') &&
	    isdigit((unsigned char)s[1]) && isdigit((unsigned char)s[2])) {
		out->action = s[0] == '4' ? ELEMTA_TEMPFAIL : ELEMTA_REJECT;
		out->code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
		wire_reply_text(out, rest, s[0]);
		return;
	}
unknown:
	wire_reply_set(out, ELEMTA_TEMPFAIL, 451, "4.3.5",
	    "policy server returned an unknown action");
}

/* wire_result_defaults - make res consistent: REJECT gets a 5xx code and
 * a 5.x.x enhanced code (550 5.7.1 "Rejected by policy" by default),
 * TEMPFAIL 4xx and 4.x.x (451 4.7.1 "Try again later"); a code or
 * enhanced code of the wrong class or shape is replaced by the default;
 * DISCARD, QUARANTINE and CONTINUE carry no code.  The message is
 * terminated and its control characters (CR/LF) become spaces.  An
 * action outside the enum becomes TEMPFAIL: never a silent accept. */
void
wire_result_defaults(struct elemta_result *res)
{
	char msg[ELEMTA_RESULT_TEXT_MAX];

	res->message[sizeof(res->message) - 1] = '\0';
	res->enhanced[sizeof(res->enhanced) - 1] = '\0';
	switch (res->action) {
	case ELEMTA_REJECT:
		if (res->smtp_code < 500 || res->smtp_code > 599)
			res->smtp_code = 550;
		if (!wire_enhanced_valid(res->enhanced, '5'))
			str_copy(res->enhanced, "5.7.1", sizeof(res->enhanced));
		if (res->message[0] == '\0')
			str_copy(res->message, "Rejected by policy",
			    sizeof(res->message));
		break;
	case ELEMTA_TEMPFAIL:
		if (res->smtp_code < 400 || res->smtp_code > 499)
			res->smtp_code = 451;
		if (!wire_enhanced_valid(res->enhanced, '4'))
			str_copy(res->enhanced, "4.7.1", sizeof(res->enhanced));
		if (res->message[0] == '\0')
			str_copy(res->message, "Try again later",
			    sizeof(res->message));
		break;
	case ELEMTA_CONTINUE:
	case ELEMTA_DISCARD:
	case ELEMTA_QUARANTINE:
		res->smtp_code = 0;
		res->enhanced[0] = '\0';
		break;
	default:
		res->action = ELEMTA_TEMPFAIL;
		res->smtp_code = 451;
		str_copy(res->enhanced, "4.3.5", sizeof(res->enhanced));
		str_copy(res->message, "policy returned an invalid action",
		    sizeof(res->message));
		break;
	}
	wire_copy_text(msg, sizeof(msg), res->message);
	memcpy(res->message, msg, sizeof(msg));
}

/* wire_reply_action - the "action=..." line of res (OK when ok). */
static int
wire_reply_action(struct strbuf *sb, const struct elemta_result *res, bool ok)
{
	struct elemta_result r;
	const char *word = NULL;

	if (ok)
		return strbuf_appendf(sb, WIRE_ATTR_ACTION "=%s\n", WIRE_WORD_OK);
	r = *res;
	wire_result_defaults(&r);
	switch (r.action) {
	case ELEMTA_CONTINUE:
		return strbuf_appendf(sb, WIRE_ATTR_ACTION "=%s\n",
		    WIRE_WORD_DUNNO);
	case ELEMTA_REJECT:
	case ELEMTA_TEMPFAIL:
		return strbuf_appendf(sb, WIRE_ATTR_ACTION "=%03d %s %s\n",
		    r.smtp_code, r.enhanced, r.message);
	case ELEMTA_DISCARD:
		word = WIRE_WORD_DISCARD;
		break;
	case ELEMTA_QUARANTINE:
		word = WIRE_WORD_HOLD;
		break;
	case ELEMTA_PENDING:    /* the host's business, never answered */
		break;
	}
	if (word == NULL)
		return -1;
	if (r.message[0] == '\0')
		return strbuf_appendf(sb, WIRE_ATTR_ACTION "=%s\n", word);
	return strbuf_appendf(sb, WIRE_ATTR_ACTION "=%s %s\n", word,
	    r.message);
}

/* wire_reply_encode - "action=DUNNO", "action=NNN X.Y.Z text",
 * "action=DISCARD text" or "action=HOLD text", then the empty line.
 * res is not modified: defaults are applied to a copy. */
int
wire_reply_encode(struct strbuf *sb, const struct elemta_result *res)
{
	return wire_reply_encode_auth(sb, res, false, 0);
}

/* wire_reply_encode_ok - "action=OK" (verified AUTH credentials). */
int
wire_reply_encode_ok(struct strbuf *sb)
{
	return wire_reply_encode_auth(sb, NULL, true, 0);
}

/* wire_reply_encode_auth - the action, the delay extension, the end. */
int
wire_reply_encode_auth(struct strbuf *sb, const struct elemta_result *res,
    bool ok, uint32_t delay_ms)
{
	struct wire_reply_ext ext = { .delay_ms = delay_ms };

	return wire_reply_encode_ext(sb, res, ok, &ext);
}

/* wire_client_name_valid - see wire.h. */
bool
wire_client_name_valid(const char *name)
{
	size_t n = 0;

	if (name == NULL || name[0] == '\0')
		return false;
	for (; name[n] != '\0'; n++) {
		unsigned char c = (unsigned char)name[n];

		if (n >= 253 || !((c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

/* wire_reply_encode_ext - the action, the extension attributes, the end. */
int
wire_reply_encode_ext(struct strbuf *sb, const struct elemta_result *res,
    bool ok, const struct wire_reply_ext *ext)
{
	uint32_t delay_ms = ext->delay_ms;

	if (wire_reply_action(sb, res, ok) != 0)
		return -1;
	if (delay_ms > WIRE_DELAY_MS_MAX)
		delay_ms = WIRE_DELAY_MS_MAX;
	if (delay_ms > 0 && strbuf_appendf(sb, WIRE_ATTR_DELAY_MS "=%u\n",
	    (unsigned)delay_ms) != 0)
		return -1;
	if (ext->client_name != NULL &&
	    wire_client_name_valid(ext->client_name) &&
	    strbuf_appendf(sb, WIRE_ATTR_CLIENT_NAME_EXT "=%s\n",
	    ext->client_name) != 0)
		return -1;
	if (ext->reverse_client_name != NULL &&
	    wire_client_name_valid(ext->reverse_client_name) &&
	    strbuf_appendf(sb, WIRE_ATTR_REVERSE_CLIENT_NAME_EXT "=%s\n",
	    ext->reverse_client_name) != 0)
		return -1;
	return strbuf_appendf(sb, "\n");
}

/* wire_reply_encode_headers - the PREPEND lines, then the reply. */
int
wire_reply_encode_headers(struct strbuf *sb, const struct elemta_result *res,
    bool ok, const struct wire_reply_ext *ext,
    const struct wire_headers *hdrs, bool one_action, unsigned *dropped)
{
	const char *line;
	size_t pos = 0, len;
	bool accepts = ok || res->action == ELEMTA_CONTINUE ||
	    res->action == ELEMTA_DISCARD || res->action == ELEMTA_QUARANTINE;

	if (dropped != NULL)
		*dropped = 0;
	if (hdrs == NULL || hdrs->count == 0 || !accepts)
		return wire_reply_encode_ext(sb, res, ok, ext);
	if (one_action) {
		/* Postfix takes one action: the first header, and only
		 * when the verdict is a plain continue. */
		if (res->action != ELEMTA_CONTINUE || ok) {
			if (dropped != NULL)
				*dropped = hdrs->count;
			return wire_reply_encode_ext(sb, res, ok, ext);
		}
		if (!wire_headers_next(hdrs, &pos, &line, &len))
			return wire_reply_encode_ext(sb, res, ok, ext);
		if (dropped != NULL)
			*dropped = hdrs->count - 1;
		return strbuf_appendf(sb, WIRE_ATTR_ACTION "=%s %.*s\n\n",
		    WIRE_WORD_PREPEND, (int)len, line);
	}
	while (wire_headers_next(hdrs, &pos, &line, &len))
		if (strbuf_appendf(sb, WIRE_ATTR_ACTION "=%s %.*s\n",
		    WIRE_WORD_PREPEND, (int)len, line) != 0)
			return -1;
	return wire_reply_encode_ext(sb, res, ok, ext);
}

/* wire_reply_delay_parse - see the reply extension above. */
int
wire_reply_delay_parse(const char *value, uint32_t *ms)
{
	uint32_t v = 0;
	size_t n = 0;

	*ms = 0;
	if (value == NULL || value[0] == '\0')
		return -1;
	for (; value[n] != '\0'; n++) {
		if (value[n] < '0' || value[n] > '9' || n >= 7)
			return -1;
		v = v * 10 + (uint32_t)(value[n] - '0');
	}
	if (v > WIRE_DELAY_MS_MAX)
		return -1;
	*ms = v;
	return 0;
}
