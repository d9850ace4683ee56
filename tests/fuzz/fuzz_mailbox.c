/*
 * fuzz_mailbox.c - libFuzzer target for the RFC 5321 address parser
 * (command_parse_address in smtpd/command.c) called directly, with its
 * own contract: the mailbox between the brackets of a path, any length,
 * written to a COMMAND_PATH_MAX + 1 byte buffer.
 *
 * Built and run by mk/fuzz.mk / scripts/fuzz.  Input: the first byte
 * selects is_rcpt (bit 0) and SMTPUTF8 (bit 1); the rest is the mailbox.
 * The output buffer is a heap block of exactly COMMAND_PATH_MAX + 1
 * bytes, so AddressSanitizer sees a single byte written past it.
 * Promises checked:
 *  - accepted: the output is the input's local part (after its source
 *    route) unchanged, '@', and the canonical form (common/domain.h) of
 *    the input's domain; at most COMMAND_PATH_MAX octets, local part at
 *    most 64, domain at most 255; non_ascii says whether it has UTF-8;
 *    without SMTPUTF8 the input was ASCII; it holds nothing a line-based
 *    reader splits on (command_text_safe); it parses again to itself;
 *    it has a domain (the same one addr_mail_domain finds) unless it is
 *    the bare "postmaster" recipient;
 *  - refused: 501 or 553 with 5.1.3 (RCPT), 5.1.7 (MAIL) or 5.6.7.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "domain.h"
#include "error.h"
#include "log.h"
#include "../../smtpd/command.h"

#include "fuzz.h"

/* mbox_local_len - the local part's length in mailbox a (as accepted). */
static size_t
mbox_local_len(const char *a)
{
	const char *p = a;

	if (*p == '"') {
		for (p++; *p != '\0' && *p != '"'; p++)
			if (*p == '\\' && p[1] != '\0')
				p++;
		if (*p == '"')
			p++;
		return (size_t)(p - a);
	}
	return strcspn(a, "@");
}

/* mbox_from_input - whether out (local part of local octets, '@',
 * domain) is some tail of inner whose domain was brought to its canonical
 * form: the local part verbatim, starting the input or after a source
 * route. */
static bool
mbox_from_input(const char *inner, size_t len, const char *out,
    size_t local)
{
	char canon[COMMAND_DOMAIN_MAX + 1];

	for (size_t j = len; j-- > local; ) {
		if (inner[j] != '@' || memcmp(inner + j - local, out, local) != 0)
			continue;
		if (j - local != 0 && inner[0] != '@')
			continue;
		if (domain_canonical(inner + j + 1, len - j - 1, canon,
		    sizeof(canon), NULL) == 0 &&
		    strcmp(canon, out + local + 1) == 0)
			return true;
	}
	return false;
}

/* LLVMFuzzerInitialize - quiet logs. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_mailbox", true, (enum log_level)0);
	return 0;
}

/* LLVMFuzzerTestOneInput - one mailbox. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct command_error err;
	bool is_rcpt, utf8, non_ascii = false, high = false, na2 = false;
	char *out, *again, *inner;
	size_t len, olen, local;
	const char *dom;

	if (size < 1)
		return 0;
	is_rcpt = data[0] & 1;
	utf8 = (data[0] & 2) != 0;
	len = size - 1;
	/* An exact-size copy: a read past the mailbox is caught too. */
	inner = xmalloc(len ? len : 1);
	memcpy(inner, data + 1, len);
	out = xmalloc(COMMAND_PATH_MAX + 1);
	again = xmalloc(COMMAND_PATH_MAX + 1);
	memset(&err, 0, sizeof(err));

	if (command_parse_address(inner, len, is_rcpt, utf8, out, &non_ascii,
	    &err) < 0) {
		FUZZ_CHECK((err.code == 501 || err.code == 553) &&
		    (strcmp(err.enhanced, is_rcpt ? "5.1.3" : "5.1.7") == 0 ||
		    strcmp(err.enhanced, "5.6.7") == 0), "refusal %d %s",
		    err.code, err.enhanced);
		FUZZ_CHECK(err.text[0] != '\0' && memchr(err.text, '\0',
		    sizeof(err.text)) != NULL, "refusal text");
		goto done;
	}
	olen = strlen(out);
	FUZZ_CHECK(olen <= COMMAND_PATH_MAX, "mailbox of %zu octets", olen);
	for (size_t i = 0; i < len; i++)
		high |= (unsigned char)inner[i] >= 0x80;
	FUZZ_CHECK(utf8 || !high, "UTF-8 accepted without SMTPUTF8");
	high = false;
	for (size_t i = 0; i < olen; i++)
		high |= (unsigned char)out[i] >= 0x80;
	FUZZ_CHECK(non_ascii == high, "non_ascii %d for %s output", non_ascii,
	    high ? "UTF-8" : "ASCII");
	FUZZ_CHECK(command_text_safe(out, olen), "'%s' holds a control, "
	    "separator or bidi character", out);
	local = mbox_local_len(out);
	if (local == olen)
		FUZZ_CHECK(olen <= len && memcmp(out, inner + len - olen,
		    olen) == 0, "the output is not the input's tail");
	else
		FUZZ_CHECK(mbox_from_input(inner, len, out, local), "'%s' is "
		    "not the input's local part and canonical domain", out);
	FUZZ_CHECK(local <= COMMAND_LOCAL_MAX, "local part of %zu octets",
	    local);
	FUZZ_CHECK(olen - local <= COMMAND_DOMAIN_MAX + 1, "domain of %zu "
	    "octets", olen - local - 1);
	FUZZ_CHECK(command_parse_address(out, olen, is_rcpt, utf8, again, &na2,
	    &err) == 0 && strcmp(again, out) == 0, "'%s' does not parse "
	    "again to itself", out);
	dom = addr_mail_domain(out);
	if (local == olen) {
		FUZZ_CHECK(is_rcpt && strcasecmp(out, "postmaster") == 0,
		    "'%s' accepted without a domain", out);
	} else {
		FUZZ_CHECK(out[local] == '@' && dom == out + local + 1,
		    "'%s': addr_mail_domain gives '%s', the parser's domain is "
		    "'%s'", out, dom ? dom : "(none)", out + local + 1);
	}
done:
	free(inner);
	free(out);
	free(again);
	return 0;
}
