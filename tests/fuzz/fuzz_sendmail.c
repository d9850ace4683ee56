/*
 * fuzz_sendmail.c - libFuzzer target for tools/elemta-sendmail/message.c:
 * the message a local program writes (PHP's mail() passes a web form's
 * text into To:, Subject: and the body), taken apart for -t and fixed up.
 *
 * Built and run by mk/fuzz.mk / scripts/fuzz.  The input is a message
 * (LF line ends).  Promises checked:
 *  - sm_message_fix succeeds or fails with a reason, never anything else;
 *  - every recipient it returns is at most SM_ADDRESS_MAX bytes plus the
 *    qualifying domain, holds no control byte (nothing can reach an SMTP
 *    command line), and appears once;
 *  - the fixed-up header holds no Bcc: or Resent-Bcc: field, and exactly
 *    one From:, Date: and Message-ID: when the input had none;
 *  - each line of the input alone through sm_addr_list_parse gives only
 *    such addresses, or an error that leaves the list as it was.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "../../tools/elemta-sendmail/sendmail.h"

#include "fuzz.h"

#define FUZZ_DOMAIN "host.example"

/* LLVMFuzzerInitialize - quiet logs. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_sendmail", true, (enum log_level)0);
	return 0;
}

/* check_rcpts - the promises about every address in r. */
static void
check_rcpts(const struct sm_rcpts *r)
{
	for (size_t i = 0; i < r->n; i++) {
		size_t len = strlen(r->v[i]);

		FUZZ_CHECK(len > 0 && len <= SM_ADDRESS_MAX +
		    sizeof(FUZZ_DOMAIN), "address %zu is %zu bytes", i, len);
		for (size_t k = 0; k < len; k++)
			FUZZ_CHECK((unsigned char)r->v[i][k] >= 0x20 &&
			    r->v[i][k] != 0x7f, "control byte in '%s'", r->v[i]);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(r->v[i], r->v[j]) != 0, "'%s' twice",
			    r->v[i]);
	}
}

/* header_count - fields named name in the header of msg (up to its first
 * empty line). */
static unsigned
header_count(const char *msg, const char *name)
{
	size_t n = strlen(name);
	unsigned count = 0;

	for (const char *p = msg; *p != '\0' && *p != '\n'; ) {
		const char *nl = strchr(p, '\n');

		if (strncasecmp(p, name, n) == 0 && p[n] == ':')
			count++;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return count;
}

/* LLVMFuzzerTestOneInput - the message fixed up, each line parsed. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *msg = malloc(size + 1);
	struct sm_fixup fx = { .from = "u@" FUZZ_DOMAIN, .fullname = "A \"B\"",
	    .domain = FUZZ_DOMAIN, .unique = "1.2", .now = 0, .extract = true };
	struct strbuf out = STRBUF_INIT(size + 65536);
	struct sm_rcpts r = { 0 };
	struct error err;
	int rc;

	if (msg == NULL)
		return 0;
	memcpy(msg, data, size);
	msg[size] = '\0';
	rc = sm_message_fix(msg, size, &fx, &out, &r, &err);
	FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
	if (rc == 0) {
		const char *o = strbuf_cstr(&out);

		const char *end = memmem(out.data, out.len, "\n\n", 2);

		/* The header (read as text below) ends with an empty line and
		 * holds no NUL: sm_message_fix refuses one there. */
		FUZZ_CHECK(end != NULL, "no empty line after the header");
		FUZZ_CHECK(memchr(o, '\0', (size_t)(end - out.data)) == NULL,
		    "a NUL in the header");

		check_rcpts(&r);
		FUZZ_CHECK(header_count(o, "Bcc") == 0 &&
		    header_count(o, "Resent-Bcc") == 0, "a Bcc survived");
		FUZZ_CHECK(header_count(o, "From") >= 1 &&
		    header_count(o, "Date") >= 1 &&
		    header_count(o, "Message-ID") >= 1, "a header is missing");
		if (memchr(data, 0, size) == NULL &&
		    header_count(msg, "From") == 0 &&
		    strncmp(msg, "From ", 5) != 0)
			FUZZ_CHECK(header_count(o, "From") == 1, "From twice");
	}
	sm_rcpts_free(&r);
	strbuf_free(&out);
	/* Each line alone as an address list. */
	for (char *line = msg, *nl; line != NULL; line = nl) {
		size_t before;

		nl = strchr(line, '\n');
		if (nl != NULL)
			*nl++ = '\0';
		before = r.n;
		if (sm_addr_list_parse(line, FUZZ_DOMAIN, &r, &err) < 0)
			FUZZ_CHECK(r.n == before, "a failed list left addresses");
		check_rcpts(&r);
	}
	sm_rcpts_free(&r);
	free(msg);
	return 0;
}
