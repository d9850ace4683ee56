/*
 * fuzz_command.c - libFuzzer target for the SMTP command parser
 * (smtpd/command.c): verbs, HELO/EHLO arguments, MAIL FROM / RCPT TO
 * paths and their parameters, exactly as smtpd's session feeds them.
 *
 * Built and run by mk/fuzz.mk / scripts/fuzz.  The input is what a client
 * sends: it is cut into lines the way session.c does (LF ends a line, one
 * CR before it is dropped, at most COMMAND_MAIL_LINE_MAX bytes), and each
 * line is checked, parsed, and its argument tried as HELO, MAIL and RCPT
 * whatever the verb (so every parser sees every line).  Promises checked:
 *  - command_parse: the argument lies inside the line, without leading
 *    or trailing blanks; names exist for every id;
 *  - every refusal carries a reply of command.h's table (500, 501, 552,
 *    553 or 555 with a 5.x.x enhanced code and a text);
 *  - an accepted path is bounded and terminated, <> only for MAIL, a
 *    non-ASCII address only under SMTPUTF8, SIZE within the limit, and
 *    the address parses again to itself as a bare mailbox;
 *  - an accepted address has a domain part (addr_mail_domain) except the
 *    bare "postmaster" recipient;
 *  - an accepted HELO name or address is valid UTF-8 with nothing a
 *    line-based reader splits on (command_text_safe); a HELO name is one
 *    word of at most 255 octets;
 *  - a line is refused before parsing exactly when it holds a control
 *    character or is not UTF-8 (GLib's validator as the oracle).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <glib.h>

#include "addr.h"
#include "log.h"
#include "../../smtpd/command.h"

#include "fuzz.h"

/* cmd_check_error - a refusal is one of command.h's replies. */
static void
cmd_check_error(const struct command_error *err)
{
	FUZZ_CHECK(err->code == 500 || err->code == 501 || err->code == 552 ||
	    err->code == 553 || err->code == 555, "reply code %d", err->code);
	FUZZ_CHECK(memchr(err->enhanced, '\0', sizeof(err->enhanced)) != NULL &&
	    err->enhanced[0] == '5' && err->enhanced[1] == '.', "enhanced "
	    "code '%.8s'", err->enhanced);
	FUZZ_CHECK(memchr(err->text, '\0', sizeof(err->text)) != NULL &&
	    err->text[0] != '\0' && strpbrk(err->text, "\r\n") == NULL,
	    "reply text");
}

/* cmd_has_control - a NUL or a control character other than TAB (the
 * other reason for a refusal, invalid UTF-8, is checked with GLib). */
static bool
cmd_has_control(const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return true;
	}
	return false;
}

/* cmd_domain_of - the domain command.c accepted in mailbox a: after the
 * '@' that ends the local part (a quoted string or a dot-string, which
 * has no '@'); NULL for a bare local part. */
static const char *
cmd_domain_of(const char *a)
{
	const char *p = a;

	if (*p == '"') {
		for (p++; *p != '\0' && *p != '"'; p++)
			if (*p == '\\' && p[1] != '\0')
				p++;
		if (*p == '"')
			p++;
	} else {
		p += strcspn(p, "@");
	}
	return *p == '@' ? p + 1 : NULL;
}

/* cmd_check_path - an accepted MAIL/RCPT path. */
static void
cmd_check_path(const struct command_path *p, bool is_rcpt, bool utf8)
{
	char again[COMMAND_PATH_MAX + 1];
	struct command_error err;
	size_t len;
	bool non_ascii = false;
	const char *dom;

	FUZZ_CHECK(memchr(p->address, '\0', sizeof(p->address)) != NULL,
	    "address unterminated");
	len = strlen(p->address);
	FUZZ_CHECK(len <= COMMAND_PATH_MAX - 2, "address of %zu octets", len);
	if (p->null_path) {
		FUZZ_CHECK(!is_rcpt && len == 0, "<> for %s with '%s'",
		    is_rcpt ? "RCPT" : "MAIL", p->address);
		return;
	}
	FUZZ_CHECK(len > 0, "empty address without null_path");
	if (!is_rcpt)
		utf8 = p->smtputf8;
	FUZZ_CHECK(utf8 || !p->non_ascii, "non-ASCII address without "
	    "SMTPUTF8");
	FUZZ_CHECK(command_text_safe(p->address, len), "address '%s' holds a "
	    "control, separator or bidi character", p->address);
	if (is_rcpt)
		FUZZ_CHECK(!p->size_given && p->body == BODY_UNSPECIFIED &&
		    !p->smtputf8, "RCPT with MAIL parameters");
	FUZZ_CHECK(command_parse_address(p->address, len, is_rcpt, utf8, again,
	    &non_ascii, &err) == 0, "accepted address '%s' does not parse "
	    "again: %s", p->address, err.text);
	FUZZ_CHECK(strcmp(again, p->address) == 0 &&
	    non_ascii == p->non_ascii, "address '%s' (non_ascii %d) parses "
	    "again to '%s' (non_ascii %d)", p->address, p->non_ascii, again,
	    non_ascii);
	/* policyd's rules take the domain with addr_mail_domain(): it must
	 * be the domain smtpd accepted. */
	dom = addr_mail_domain(p->address);
	if (dom == NULL) {
		FUZZ_CHECK(is_rcpt && strcasecmp(p->address, "postmaster") == 0,
		    "accepted address '%s' without a domain", p->address);
	} else {
		FUZZ_CHECK(dom == cmd_domain_of(p->address), "address '%s': "
		    "addr_mail_domain gives '%s', smtpd accepted domain '%s'",
		    p->address, dom, cmd_domain_of(p->address) ?
		    cmd_domain_of(p->address) : "(none)");
		FUZZ_CHECK(strlen(dom) <= COMMAND_DOMAIN_MAX, "domain of '%s' "
		    "longer than %d", p->address, COMMAND_DOMAIN_MAX);
	}
}

/* cmd_line - one command line (len bytes, NUL-terminated). */
static void
cmd_line(const char *line, size_t len, uint64_t max_size, bool utf8)
{
	struct command cmd;
	struct command_error err;
	struct command_path path;
	size_t rest;

	memset(&err, 0, sizeof(err));
	if (command_check_chars(line, len, &err) < 0) {
		cmd_check_error(&err);
		FUZZ_CHECK(err.code == 500 && strcmp(err.enhanced, "5.5.2") == 0,
		    "check_chars reply %d %s", err.code, err.enhanced);
		FUZZ_CHECK(cmd_has_control(line, len) ||
		    !g_utf8_validate_len(line, len, NULL),
		    "refused a clean line");
		return;
	}
	FUZZ_CHECK(strlen(line) == len, "NUL passed the character check");
	/* GLib's validator as the independent oracle: only well-formed
	 * UTF-8 reaches the argument parsers. */
	FUZZ_CHECK(g_utf8_validate_len(line, len, NULL),
	    "invalid UTF-8 passed the character check");
	FUZZ_CHECK(!cmd_has_control(line, len),
	    "a control character passed the character check");
	command_parse(line, &cmd);
	FUZZ_CHECK(cmd.id >= CMD_UNKNOWN && cmd.id < CMD__COUNT, "id %d",
	    (int)cmd.id);
	FUZZ_CHECK(command_name(cmd.id) != NULL &&
	    command_stat_name(cmd.id) != NULL, "names");
	FUZZ_CHECK(cmd.arg >= line && cmd.arg <= line + len, "arg outside "
	    "the line");
	rest = (size_t)(line + len - cmd.arg);
	FUZZ_CHECK(cmd.arg_len <= rest, "arg_len %zu > %zu", cmd.arg_len, rest);
	FUZZ_CHECK(cmd.arg_len == 0 || (cmd.arg[0] != ' ' && cmd.arg[0] !=
	    '\t' && cmd.arg[cmd.arg_len - 1] != ' ' &&
	    cmd.arg[cmd.arg_len - 1] != '\t'), "blanks around the argument");

	memset(&err, 0, sizeof(err));
	if (command_parse_helo(cmd.arg, CMD_EHLO, &err) == 0) {
		size_t n = strlen(cmd.arg);

		FUZZ_CHECK(n > 0 && n <= COMMAND_HELO_MAX &&
		    strcspn(cmd.arg, " \t") == n &&
		    command_utf8_valid(cmd.arg, n) &&
		    command_text_safe(cmd.arg, n), "HELO '%s' accepted",
		    cmd.arg);
	} else {
		cmd_check_error(&err);
	}

	memset(&err, 0, sizeof(err));
	if (command_parse_mail(cmd.arg, max_size, &path, &err) == 0) {
		cmd_check_path(&path, false, false);
		FUZZ_CHECK(max_size == 0 || !path.size_given ||
		    path.size <= max_size, "SIZE %llu over %llu accepted",
		    (unsigned long long)path.size,
		    (unsigned long long)max_size);
	} else {
		cmd_check_error(&err);
	}

	memset(&err, 0, sizeof(err));
	if (command_parse_rcpt(cmd.arg, utf8, &path, &err) == 0)
		cmd_check_path(&path, true, utf8);
	else
		cmd_check_error(&err);
}

/* LLVMFuzzerInitialize - quiet logs. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_command", true, (enum log_level)0);
	return 0;
}

/* LLVMFuzzerTestOneInput - a client's byte stream, line by line. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[COMMAND_MAIL_LINE_MAX + 1];
	size_t off = 0;
	/* The limit and SMTPUTF8 vary with the input's length, so one
	 * corpus explores them without spending bytes on them. */
	uint64_t max_size = size % 3 == 0 ? 0 : size % 3 == 1 ? 10485760 : 1;
	bool utf8 = size % 2 == 0;

	while (off < size) {
		const uint8_t *p = data + off;
		size_t n = size - off;
		size_t lim = n < COMMAND_MAIL_LINE_MAX ? n : COMMAND_MAIL_LINE_MAX;
		const uint8_t *nl = memchr(p, '\n', lim);
		size_t len;

		if (nl == NULL) {
			/* session.c: an over-long line is refused, a partial
			 * one waits; either way it is not parsed. */
			if (n >= COMMAND_MAIL_LINE_MAX) {
				nl = memchr(p, '\n', n);
				off = nl ? (size_t)(nl - data) + 1 : size;
				continue;
			}
			break;
		}
		len = (size_t)(nl - p);
		off += len + 1;
		if (len > 0 && p[len - 1] == '\r')
			len--;
		memcpy(line, p, len);
		line[len] = '\0';
		cmd_line(line, len, max_size, utf8);
	}
	return 0;
}
