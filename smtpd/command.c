/*
 * command.c - SMTP command line, MAIL/RCPT parameter and RFC 5321
 * address parsing.
 *
 * Called by session.c (one call per command line) and the unit tests.
 * Pure functions over untrusted client text: no allocation, no I/O, every
 * length bounded by the RFC limits in command.h.  Strictness follows
 * Postfix's defaults where RFC 5321 leaves room: angle brackets are
 * required around paths, one or more spaces after "FROM:" are tolerated
 * (many real clients send them), the source route of a path is checked
 * for syntax and then ignored (RFC 5321 4.1.1.3, appendix C).
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "domain.h"
#include "error.h"
#include "command.h"

/*==== Verbs ====*/

/* COMMAND_VERB - a verb whose spelling is its enum's name, so the two
 * cannot drift apart (and the SMTP verbs MAIL and RCPT are not spelled
 * again beside the policy phases of the same names in common/wire.c). */
#define COMMAND_VERB(verb, stat) { #verb, stat, CMD_##verb }

static const struct {
	const char *name;
	const char *stat;
	enum command_id id;
} command_table[] = {
	COMMAND_VERB(HELO, "helo"),
	COMMAND_VERB(EHLO, "ehlo"),
	COMMAND_VERB(MAIL, "mail"),
	COMMAND_VERB(RCPT, "rcpt"),
	COMMAND_VERB(DATA, "data"),
	COMMAND_VERB(RSET, "rset"),
	COMMAND_VERB(NOOP, "noop"),
	COMMAND_VERB(QUIT, "quit"),
	COMMAND_VERB(HELP, "help"),
	COMMAND_VERB(VRFY, "vrfy"),
	COMMAND_VERB(EXPN, "expn"),
	COMMAND_VERB(STARTTLS, "starttls"),
	COMMAND_VERB(AUTH, "auth"),
	COMMAND_VERB(BDAT, "bdat"),
	/* HTTP verbs: a web client or a proxy probe, not SMTP. */
	{ "GET", "forbidden", CMD_FORBIDDEN },
	{ "POST", "forbidden", CMD_FORBIDDEN },
	{ "CONNECT", "forbidden", CMD_FORBIDDEN },
};

#define COMMAND_TABLE_LEN (sizeof(command_table) / sizeof(command_table[0]))

/* command_name - the canonical upper-case verb, for logs. */
const char *
command_name(enum command_id id)
{
	if (id == CMD_FORBIDDEN)
		return "FORBIDDEN";
	for (size_t i = 0; i < COMMAND_TABLE_LEN; i++)
		if (command_table[i].id == id)
			return command_table[i].name;
	return "UNKNOWN";
}

/* command_stat_name - lower-case name for the disconnect statistics. */
const char *
command_stat_name(enum command_id id)
{
	for (size_t i = 0; i < COMMAND_TABLE_LEN; i++)
		if (command_table[i].id == id)
			return command_table[i].stat;
	return "unknown";
}

/* command_parse - split the verb off; the argument starts after the
 * spaces that follow it and loses its trailing spaces. */
void
command_parse(const char *line, struct command *out)
{
	size_t vlen = strcspn(line, " \t");
	const char *arg = line + vlen;
	size_t alen;

	out->id = CMD_UNKNOWN;
	for (size_t i = 0; i < COMMAND_TABLE_LEN; i++) {
		if (strlen(command_table[i].name) == vlen &&
		    strncasecmp(line, command_table[i].name, vlen) == 0) {
			out->id = command_table[i].id;
			break;
		}
	}
	while (*arg == ' ' || *arg == '\t')
		arg++;
	alen = strlen(arg);
	while (alen > 0 && (arg[alen - 1] == ' ' || arg[alen - 1] == '\t'))
		alen--;
	out->arg = arg;
	out->arg_len = alen;
}

/* command_fail - fill err with a reply; returns -1. */
static int __attribute__((format(printf, 4, 5)))
command_fail(struct command_error *err, int code, const char *enhanced,
    const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	str_copy(err->enhanced, enhanced, sizeof(err->enhanced));
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
	return -1;
}

/* utf8_seq_len - the length of the well-formed UTF-8 sequence starting
 * at the non-ASCII byte s[i] (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF), or 0. */
static size_t
utf8_seq_len(const unsigned char *s, size_t i, size_t len)
{
	unsigned char c = s[i];
	unsigned lo = 0x80, hi = 0xbf;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 1;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 2;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 3;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (len - i <= n)     /* the n continuation bytes must exist */
		return 0;
	if (s[i + 1] < lo || s[i + 1] > hi)
		return 0;
	for (size_t k = 2; k <= n; k++)
		if (s[i + k] < 0x80 || s[i + k] > 0xbf)
			return 0;
	return n + 1;
}

/* command_check_chars - NUL and control characters never belong in a
 * command line (a bare CR in particular is how command injection hides),
 * nor do octets that are not UTF-8: RFC 6531 allows UTF-8 in some
 * arguments, nothing allows arbitrary 8-bit bytes.  One pass: every
 * command line of every session comes through here. */
int
command_check_chars(const char *line, size_t len, struct command_error *err)
{
	const unsigned char *s = (const unsigned char *)line;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;

		if (c >= 0x80) {
			if ((n = utf8_seq_len(s, i, len)) == 0)
				return command_fail(err, 500, "5.5.2",
				    "Error: invalid UTF-8 in command");
			i += n;
			continue;
		}
		if (c == 0)
			return command_fail(err, 500, "5.5.2",
			    "Error: NUL character in command");
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return command_fail(err, 500, "5.5.2",
			    "Error: control character in command");
		i++;
	}
	return 0;
}

/*==== UTF-8 ====*/

/* command_unsafe_code_point - the code points a line-based reader may
 * split on or display reordered: C0 and C1 controls and DEL (U+0085 is a
 * line break to Python's splitlines), the line and paragraph separators
 * U+2028/U+2029, and the bidi controls (U+061C, U+200E/F, U+202A..E,
 * U+2066..9) that make a HELO or an address read differently in a log. */
static bool
command_unsafe_code_point(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 ||
	    cp == 0x2029 || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
	    (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* command_utf8_walk - RFC 3629 well-formedness (utf8_seq_len) and, when
 * safe_only, no command_unsafe_code_point. */
static bool
command_utf8_walk(const char *str, size_t len, bool safe_only)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		size_t n = s[i] < 0x80 ? 1 : utf8_seq_len(s, i, len);
		uint32_t cp;

		if (n == 0)
			return false;
		/* The lead byte's payload bits, then 6 per continuation. */
		cp = n == 1 ? s[i] : (uint32_t)(s[i] & (0x7f >> n));
		for (size_t k = 1; k < n; k++)
			cp = (cp << 6) | (s[i + k] & 0x3f);
		if (safe_only && command_unsafe_code_point(cp))
			return false;
		i += n;
	}
	return true;
}

/* command_utf8_valid - RFC 3629 well-formedness. */
bool
command_utf8_valid(const char *str, size_t len)
{
	return command_utf8_walk(str, len, false);
}

/* command_text_safe - see command.h. */
bool
command_text_safe(const char *str, size_t len)
{
	return command_utf8_walk(str, len, true);
}

/*==== HELO ====*/

/* command_parse_helo - one word, bounded, printable or UTF-8.  RFC 5321
 * asks for a domain or address literal, but like Postfix's default we do
 * not refuse an unqualified or odd name here: that is a policy decision
 * (helo_name reaches policyd). */
int
command_parse_helo(const char *arg, enum command_id id,
    struct command_error *err)
{
	const char *verb = id == CMD_EHLO ? "EHLO" : "HELO";
	size_t len = strlen(arg);

	if (len == 0 || strcspn(arg, " \t") != len)
		return command_fail(err, 501, "5.5.4", "Syntax: %s hostname",
		    verb);
	if (len > COMMAND_HELO_MAX)
		return command_fail(err, 501, "5.5.4",
		    "Error: %s hostname too long", verb);
	if (!command_utf8_valid(arg, len))
		return command_fail(err, 501, "5.5.4",
		    "Error: %s hostname is not valid UTF-8", verb);
	/* It is stored in the spool envelope and logged: one line each. */
	if (!command_text_safe(arg, len))
		return command_fail(err, 501, "5.5.4",
		    "Error: %s hostname has a control, line separator or "
		    "bidi control character", verb);
	return 0;
}

/*==== Addresses (RFC 5321 4.1.2, RFC 6531 3.3) ====*/

/* command_atext - RFC 5322 atext (plus UTF8-non-ascii under SMTPUTF8). */
static bool
command_atext(unsigned char c, bool utf8)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	if (c >= 0x80)
		return utf8;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* command_letdig - Let-dig (plus UTF-8 octets of U-labels under SMTPUTF8). */
static bool
command_letdig(unsigned char c, bool utf8)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c >= 0x80 && utf8;
}

/* command_domain_len - length of the Domain at s (at most len bytes):
 * sub-domain *("." sub-domain), labels 1..63 octets, no leading or
 * trailing hyphen.  0 when there is no valid domain there. */
static size_t
command_domain_len(const char *str, size_t len, bool utf8)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	for (;;) {
		size_t start = i;

		if (i >= len || !command_letdig(s[i], utf8))
			return 0;
		while (i < len && (command_letdig(s[i], utf8) || s[i] == '-'))
			i++;
		if (s[i - 1] == '-' || i - start > 63)
			return 0;
		if (i < len && s[i] == '.' && i + 1 < len &&
		    command_letdig(s[i + 1], utf8)) {
			i++;
			continue;
		}
		return i;
	}
}

/* command_literal_valid - the inside of an address literal "[...]":
 * IPv4, "IPv6:" address, or a General-address-literal. */
static bool
command_literal_valid(const char *s, size_t len)
{
	char buf[COMMAND_DOMAIN_MAX + 1];
	unsigned char bin[16];
	size_t tag;

	if (len == 0 || len >= sizeof(buf))
		return false;
	/* inet_pton stops at a NUL: "192.0.2.5\0x" would pass as 192.0.2.5
	 * while the whole literal, NUL included, went on to policyd. */
	if (memchr(s, '\0', len) != NULL)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (strncasecmp(buf, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, buf + 5, bin) == 1;
	if (inet_pton(AF_INET, buf, bin) == 1)
		return true;
	/* General-address-literal = Standardized-tag ":" 1*dcontent */
	tag = strspn(buf, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-");
	if (tag == 0 || buf[tag] != ':' || buf[tag + 1] == '\0' ||
	    buf[tag - 1] == '-')
		return false;
	for (size_t i = tag + 1; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c < 33 || c > 126 || c == '[' || c == '\\' || c == ']')
			return false;
	}
	return true;
}

/* command_has_high - any octet >= 0x80 in s[0..len). */
static bool
command_has_high(const char *s, size_t len)
{
	for (size_t k = 0; k < len; k++)
		if ((unsigned char)s[k] >= 0x80)
			return true;
	return false;
}

/* command_parse_address - the mailbox inside the brackets. */
int
command_parse_address(const char *inner, size_t len, bool is_rcpt,
    bool utf8, char *out, bool *non_ascii, struct command_error *err)
{
	const unsigned char *s = (const unsigned char *)inner;
	const char *enh = is_rcpt ? "5.1.3" : "5.1.7";
	const char *what = is_rcpt ? "recipient" : "sender";
	size_t i = 0, local_start, local_len, dom_start, dom_len;
	bool high = command_has_high(inner, len);
	char canon[COMMAND_DOMAIN_MAX + 1];

	*non_ascii = false;
	out[0] = '\0';
	if (high && !utf8)
		return command_fail(err, 553, "5.6.7",
		    "Error: non-ASCII %s address without SMTPUTF8", what);
	if (high && !command_utf8_valid(inner, len))
		return command_fail(err, 501, enh,
		    "Bad %s address syntax (invalid UTF-8)", what);
	/* Quoted local parts may hold any UTF-8: not what the envelope's
	 * one-line values and the logs can carry (Postfix refuses C1). */
	if (high && !command_text_safe(inner, len))
		return command_fail(err, 553, enh, "Error: %s address has a "
		    "control, line separator or bidi control character", what);

	/* A-d-l ":" : checked, then dropped (RFC 5321 appendix C).  Its
	 * domains must be ASCII even under SMTPUTF8: source routes predate
	 * RFC 6531 and no SMTPUTF8 client sends one, and a route that is
	 * dropped must not be what makes an address non-ASCII. */
	if (len > 0 && s[0] == '@') {
		for (;;) {
			size_t d;

			i++;    /* the '@' */
			if (i < len && s[i] == '[') {
				const char *end = memchr(inner + i, ']', len - i);

				if (end == NULL || !command_literal_valid(
				    inner + i + 1, (size_t)(end - inner) - i - 1))
					goto syntax;
				d = (size_t)(end - inner) - i + 1;
			} else {
				d = command_domain_len(inner + i, len - i, false);
				if (d == 0)
					goto syntax;
			}
			i += d;
			if (i < len && s[i] == ',' && i + 1 < len &&
			    s[i + 1] == '@') {
				i++;
				continue;
			}
			if (i < len && s[i] == ':') {
				i++;
				break;
			}
			goto syntax;
		}
	}

	/* Local-part = Dot-string / Quoted-string */
	local_start = i;
	if (i < len && s[i] == '"') {
		i++;
		for (;;) {
			if (i >= len)
				goto syntax;
			if (s[i] == '"') {
				i++;
				break;
			}
			if (s[i] == '\\') {
				if (i + 1 >= len || s[i + 1] < 32 || s[i + 1] > 126)
					goto syntax;
				i += 2;
				continue;
			}
			if (s[i] >= 0x80 || (s[i] >= 32 && s[i] <= 126 &&
			    s[i] != '"' && s[i] != '\\')) {
				i++;
				continue;
			}
			goto syntax;
		}
	} else {
		for (;;) {
			size_t atom = i;

			while (i < len && command_atext(s[i], utf8))
				i++;
			if (i == atom)
				goto syntax;
			if (i < len && s[i] == '.') {
				i++;
				continue;
			}
			break;
		}
	}
	local_len = i - local_start;

	if (i == len) {
		/* RFC 5321 4.1.1.3: "Postmaster" without a domain must be
		 * accepted as a recipient. */
		if (is_rcpt && local_len == 10 &&
		    strncasecmp(inner + local_start, "postmaster", 10) == 0) {
			memcpy(out, inner + local_start, local_len);
			out[local_len] = '\0';
			*non_ascii = false;
			return 0;
		}
		goto syntax;
	}
	if (s[i] != '@')
		goto syntax;
	if (local_len > COMMAND_LOCAL_MAX)
		return command_fail(err, 553, enh,
		    "Error: %s address local part longer than %d octets",
		    what, COMMAND_LOCAL_MAX);
	i++;
	dom_start = i;
	if (i < len && s[i] == '[') {
		if (s[len - 1] != ']' || !command_literal_valid(inner + i + 1,
		    len - i - 2))
			goto syntax;
		dom_len = len - i;
	} else {
		dom_len = command_domain_len(inner + i, len - i, utf8);
		if (dom_len == 0 || dom_start + dom_len != len)
			goto syntax;
	}
	if (dom_len > COMMAND_DOMAIN_MAX)
		return command_fail(err, 553, enh,
		    "Error: %s address domain longer than %d octets", what,
		    COMMAND_DOMAIN_MAX);
	/* The domain in its one canonical form (UTS-46, A-labels, lower
	 * case): what policyd's rules compare and what the envelope keeps,
	 * so no spelling of a listed domain slips past a list, and the
	 * recipient is deliverable by any next hop.  The message itself
	 * keeps whatever the client wrote in its headers. */
	if (domain_canonical(inner + dom_start, dom_len, canon, sizeof(canon),
	    NULL) < 0)
		return command_fail(err, 553, enh, "Error: %s address domain "
		    "is not a valid domain name", what);
	/* A 64-octet local part and a 255-octet domain make 320 octets,
	 * more than out holds: the path limit binds the whole mailbox. */
	if (local_len + 1 + strlen(canon) > COMMAND_PATH_MAX)
		return command_fail(err, 553, enh,
		    "Error: %s address longer than %d octets", what,
		    COMMAND_PATH_MAX);
	memcpy(out, inner + local_start, local_len + 1);
	strcpy(out + local_len + 1, canon);
	/* Only the kept mailbox says whether the address is non-ASCII: a
	 * UTF-8 source route is dropped with the route, a U-label became
	 * A-labels. */
	*non_ascii = command_has_high(out, strlen(out));
	return 0;
syntax:
	return command_fail(err, 501, enh, "Bad %s address syntax", what);
}

/*==== MAIL and RCPT ====*/

/* command_path_end - offset just past the '>' that closes the path at
 * arg[0] == '<' (a '>' inside a quoted local part does not count), or 0. */
static size_t
command_path_end(const char *arg)
{
	bool quoted = false;

	for (size_t i = 1; arg[i] != '\0'; i++) {
		if (quoted && arg[i] == '\\' && arg[i + 1] != '\0') {
			i++;
			continue;
		}
		if (arg[i] == '"')
			quoted = !quoted;
		else if (arg[i] == '>' && !quoted)
			return i + 1;
	}
	return 0;
}

/* command_param_syntax - esmtp-keyword ["=" esmtp-value] (RFC 5321
 * 4.1.2); value may be NULL. */
static bool
command_param_syntax(const char *key, size_t klen, const char *value,
    size_t vlen)
{
	if (klen == 0 || !((key[0] >= 'a' && key[0] <= 'z') ||
	    (key[0] >= 'A' && key[0] <= 'Z') || (key[0] >= '0' && key[0] <= '9')))
		return false;
	for (size_t i = 1; i < klen; i++) {
		unsigned char c = (unsigned char)key[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	if (value == NULL)
		return true;
	if (vlen == 0)
		return false;
	for (size_t i = 0; i < vlen; i++) {
		unsigned char c = (unsigned char)value[i];

		if (c < 33 || c > 126 || c == '=')
			return false;
	}
	return true;
}

/* command_xtext_param - ENVID's or ORCPT's value (RFC 3461 §4.4, §4.2)
 * kept as given into out (size: the bound plus a NUL; "" until given):
 * 501 5.5.4 when repeated, missing, too long or not valid (ORCPT:
 * addr-type;xtext, ENVID: xtext). */
static int
command_xtext_param(bool orcpt, const char *value, size_t vlen, char *out,
    size_t size, struct command_error *err)
{
	const char *name = orcpt ? "ORCPT" : "ENVID";
	char text[DSN_ORCPT_MAX + 1];

	if (out[0] != '\0')
		return command_fail(err, 501, "5.5.4",
		    "Error: duplicate %s parameter", name);
	if (value == NULL || vlen >= size || (orcpt ?
	    dsn_orcpt_parse(value, vlen, text, sizeof(text)) :
	    dsn_xtext_decode(value, vlen, text, sizeof(text))) < 0)
		return command_fail(err, 501, "5.5.4", "Bad %s parameter "
		    "(%sxtext, at most %zu characters)", name,
		    orcpt ? "addr-type;" : "", size - 1);
	memcpy(out, value, vlen);
	out[vlen] = '\0';
	return 0;
}

/* command_mail_param - one MAIL parameter into out. */
static int
command_mail_param(const char *key, size_t klen, const char *value,
    size_t vlen, uint64_t max_size, struct command_path *out,
    struct command_error *err)
{
	if (klen == 4 && strncasecmp(key, "SIZE", 4) == 0) {
		uint64_t v = 0;

		if (out->size_given)
			return command_fail(err, 501, "5.5.4",
			    "Error: duplicate SIZE parameter");
		if (value == NULL || vlen > 20)
			return command_fail(err, 501, "5.5.4",
			    "Bad SIZE parameter syntax");
		for (size_t i = 0; i < vlen; i++) {
			if (value[i] < '0' || value[i] > '9' ||
			    v > (UINT64_MAX - 9) / 10)
				return command_fail(err, 501, "5.5.4",
				    "Bad SIZE parameter syntax");
			v = v * 10 + (uint64_t)(value[i] - '0');
		}
		out->size_given = true;
		out->size = v;
		if (max_size > 0 && v > max_size)
			return command_fail(err, 552, "5.3.4",
			    "Message size exceeds fixed limit");
		return 0;
	}
	if (klen == 4 && strncasecmp(key, "BODY", 4) == 0) {
		if (out->body != BODY_UNSPECIFIED)
			return command_fail(err, 501, "5.5.4",
			    "Error: duplicate BODY parameter");
		if (value != NULL && vlen == 4 && strncasecmp(value, "7BIT", 4) == 0)
			out->body = BODY_7BIT;
		else if (value != NULL && vlen == 8 &&
		    strncasecmp(value, "8BITMIME", 8) == 0)
			out->body = BODY_8BITMIME;
		else
			return command_fail(err, 501, "5.5.4",
			    "Bad BODY parameter (7BIT or 8BITMIME)");
		return 0;
	}
	if (klen == 8 && strncasecmp(key, "SMTPUTF8", 8) == 0) {
		if (value != NULL)
			return command_fail(err, 501, "5.5.4",
			    "Bad SMTPUTF8 parameter (takes no value)");
		if (out->smtputf8)
			return command_fail(err, 501, "5.5.4",
			    "Error: duplicate SMTPUTF8 parameter");
		out->smtputf8 = true;
		return 0;
	}
	if (klen == 3 && strncasecmp(key, "RET", 3) == 0) {
		if (out->ret != DSN_RET_DEFAULT)
			return command_fail(err, 501, "5.5.4",
			    "Error: duplicate RET parameter");
		if (value == NULL || dsn_ret_parse(value, vlen, &out->ret) < 0)
			return command_fail(err, 501, "5.5.4",
			    "Bad RET parameter (FULL or HDRS)");
		return 0;
	}
	if (klen == 5 && strncasecmp(key, "ENVID", 5) == 0)
		return command_xtext_param(false, value, vlen, out->envid,
		    sizeof(out->envid), err);
	return command_fail(err, 555, "5.5.4", "Unsupported option: %.*s",
	    (int)(klen > 40 ? 40 : klen), key);
}

/* command_rcpt_param - one RCPT parameter into out (RFC 3461). */
static int
command_rcpt_param(const char *key, size_t klen, const char *value,
    size_t vlen, struct command_path *out, struct command_error *err)
{
	if (klen == 6 && strncasecmp(key, "NOTIFY", 6) == 0) {
		if (out->notify != 0)
			return command_fail(err, 501, "5.5.4",
			    "Error: duplicate NOTIFY parameter");
		if (value == NULL ||
		    dsn_notify_parse(value, vlen, &out->notify) < 0)
			return command_fail(err, 501, "5.5.4", "Bad NOTIFY "
			    "parameter (NEVER or SUCCESS,FAILURE,DELAY)");
		return 0;
	}
	if (klen == 5 && strncasecmp(key, "ORCPT", 5) == 0)
		return command_xtext_param(true, value, vlen, out->orcpt,
		    sizeof(out->orcpt), err);
	return command_fail(err, 555, "5.5.4", "Unsupported option: %.*s",
	    (int)(klen > 40 ? 40 : klen), key);
}

/* command_parse_path - shared body of MAIL and RCPT: "WORD:" prefix,
 * bracketed path, parameters, then the address under the right UTF-8
 * rule (SMTPUTF8 is only known after the parameters). */
static int
command_parse_path(const char *arg, bool is_rcpt, bool utf8,
    uint64_t max_size, struct command_path *out, struct command_error *err)
{
	const char *word = is_rcpt ? "TO:" : "FROM:";
	size_t wlen = strlen(word), end, inner_len;
	const char *p, *path, *rest;

	memset(out, 0, sizeof(*out));
	if (strncasecmp(arg, word, wlen) != 0)
		return command_fail(err, 501, "5.5.4", "Syntax: %s %s<address>",
		    command_name(is_rcpt ? CMD_RCPT : CMD_MAIL), word);
	p = arg + wlen;
	while (*p == ' ')
		p++;
	if (*p != '<')
		return command_fail(err, 501, is_rcpt ? "5.1.3" : "5.1.7",
		    "Bad %s address syntax (angle brackets required)",
		    is_rcpt ? "recipient" : "sender");
	path = p;
	end = command_path_end(path);
	if (end == 0)
		return command_fail(err, 501, is_rcpt ? "5.1.3" : "5.1.7",
		    "Bad %s address syntax", is_rcpt ? "recipient" : "sender");
	if (end > COMMAND_PATH_MAX)
		return command_fail(err, 553, is_rcpt ? "5.1.3" : "5.1.7",
		    "Error: %s address longer than %d octets",
		    is_rcpt ? "recipient" : "sender", COMMAND_PATH_MAX);
	rest = path + end;
	if (*rest != '\0' && *rest != ' ')
		return command_fail(err, 501, is_rcpt ? "5.1.3" : "5.1.7",
		    "Bad %s address syntax", is_rcpt ? "recipient" : "sender");

	/* Parameters: SP-separated esmtp-param. */
	while (*rest != '\0') {
		const char *key, *eq, *value = NULL;
		size_t plen, klen, vlen = 0;

		while (*rest == ' ')
			rest++;
		if (*rest == '\0')
			break;
		key = rest;
		plen = strcspn(rest, " ");
		eq = memchr(key, '=', plen);
		klen = eq ? (size_t)(eq - key) : plen;
		if (eq != NULL) {
			value = eq + 1;
			vlen = plen - klen - 1;
		}
		rest += plen;
		if (!command_param_syntax(key, klen, value, vlen))
			return command_fail(err, 501, "5.5.4",
			    "Bad parameter syntax");
		if (is_rcpt) {
			if (command_rcpt_param(key, klen, value, vlen, out,
			    err) < 0)
				return -1;
			continue;
		}
		if (command_mail_param(key, klen, value, vlen, max_size, out,
		    err) < 0)
			return -1;
	}

	inner_len = end - 2;
	if (inner_len == 0) {
		if (is_rcpt)
			return command_fail(err, 501, "5.1.3",
			    "Bad recipient address syntax");
		out->null_path = true;
		return 0;
	}
	/* An A-d-l starts with '@' (a local part cannot). */
	out->source_route = path[1] == '@';
	return command_parse_address(path + 1, inner_len, is_rcpt,
	    is_rcpt ? utf8 : out->smtputf8, out->address, &out->non_ascii, err);
}

/* command_parse_mail - MAIL FROM:<path> [params]. */
int
command_parse_mail(const char *arg, uint64_t max_size,
    struct command_path *out, struct command_error *err)
{
	return command_parse_path(arg, false, false, max_size, out, err);
}

/* command_parse_rcpt - RCPT TO:<path> [NOTIFY= ORCPT=]. */
int
command_parse_rcpt(const char *arg, bool utf8, struct command_path *out,
    struct command_error *err)
{
	return command_parse_path(arg, true, utf8, 0, out, err);
}
