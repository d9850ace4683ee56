/*
 * fuzz_mime.c - libFuzzer target for the MIME content scanner
 * (policyd/policies/content_scan.c, GMime underneath): the message an
 * outside sender controls completely, scanned at END-OF-MESSAGE.
 *
 * Built and run by mk/fuzz.mk / scripts/fuzz.  The input is a spooled
 * message.  It is written to a memfd (a regular file, like the spool's)
 * whose offset is then moved, and scanned with the unit tests' rules;
 * inputs whose length is a multiple of 4 are scanned under tight limits
 * (8 parts, depth 3, 64 decoded bytes per part) so the limit paths are
 * fuzzed too.  Promises checked (content_scan.h):
 *  - an internal error is the only -1, and a valid memfd is none;
 *  - the descriptor stays open and its offset does not move;
 *  - a match's item and where are terminated printable ASCII (they go to
 *    logs and SMTP replies), found agrees with kind;
 *  - scanning is deterministic (one input in 16 is scanned twice).
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "../../policyd/policies/content_scan.h"

#include "fuzz.h"

#define MIME_OFFSET 7   /* where smtpd might have left the shared offset */

static int mime_fd = -1;
static struct content_scan_rules mime_rules, mime_tight;

/* mime_printable - s (size bytes) is terminated printable ASCII. */
static bool
mime_printable(const char *s, size_t size)
{
	const char *end = memchr(s, '\0', size);

	if (end == NULL)
		return false;
	for (; s < end; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

/* mime_rules_add - the unit tests' standard keywords and extensions. */
static void
mime_rules_add(struct content_scan_rules *r)
{
	static const char *const keywords[] = {
		"viagra", "free lottery", "buy now", "Stra\xc3\x9f" "e",
		" word ", NULL,
	};
	static const char *const extensions[] = {
		"exe", ".scr", "tar.gz", NULL,
	};
	struct error err;

	content_scan_rules_init(r);
	for (size_t i = 0; keywords[i] != NULL; i++)
		if (content_scan_rules_add_keyword(r, keywords[i], &err) < 0)
			abort();
	for (size_t i = 0; extensions[i] != NULL; i++)
		if (content_scan_rules_add_extension(r, extensions[i], &err) < 0)
			abort();
}

/* mime_scan - one scan of the memfd; checks the promises. */
static void
mime_scan(const struct content_scan_rules *rules,
    struct content_scan_match *m)
{
	struct error err = { "" };
	int rc = content_scan_fd(rules, mime_fd, m, &err);

	FUZZ_CHECK(rc == 0, "content_scan_fd failed on a memfd: %s", err.text);
	FUZZ_CHECK(fcntl(mime_fd, F_GETFD) != -1, "descriptor closed");
	FUZZ_CHECK(lseek(mime_fd, 0, SEEK_CUR) == MIME_OFFSET, "offset moved "
	    "to %lld", (long long)lseek(mime_fd, 0, SEEK_CUR));
	FUZZ_CHECK(m->found == 0 || m->found == 1, "found %d", m->found);
	FUZZ_CHECK((m->found == 1) == (m->kind != CONTENT_SCAN_NONE),
	    "found %d with kind %s", m->found, content_scan_kind_name(m->kind));
	FUZZ_CHECK(mime_printable(m->item, sizeof(m->item)) &&
	    mime_printable(m->where, sizeof(m->where)), "item/where not "
	    "printable ASCII");
}

/* LLVMFuzzerInitialize - GMime on malloc (so ASan sees it), the rules,
 * the memfd. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	setenv("G_SLICE", "always-malloc", 1);
	log_init("fuzz_mime", true, (enum log_level)0);
	content_scan_init();
	mime_rules_add(&mime_rules);
	mime_rules_add(&mime_tight);
	mime_tight.max_parts = 8;
	mime_tight.max_depth = 3;
	mime_tight.max_part_bytes = 64;
	mime_fd = memfd_create("message", MFD_CLOEXEC);
	if (mime_fd < 0)
		abort();
	return 0;
}

/* LLVMFuzzerTestOneInput - one message. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct content_scan_rules *rules =
	    size % 4 == 0 ? &mime_tight : &mime_rules;
	struct content_scan_match a, b;

	if (ftruncate(mime_fd, 0) < 0 ||
	    pwrite(mime_fd, data, size, 0) != (ssize_t)size ||
	    lseek(mime_fd, MIME_OFFSET, SEEK_SET) != MIME_OFFSET)
		abort();
	mime_scan(rules, &a);
	if (size % 16 == 1) {
		mime_scan(rules, &b);
		FUZZ_CHECK(a.found == b.found && a.kind == b.kind &&
		    strcmp(a.item, b.item) == 0 && strcmp(a.where, b.where) == 0,
		    "two scans differ: %s \"%s\" / %s \"%s\"",
		    content_scan_kind_name(a.kind), a.item,
		    content_scan_kind_name(b.kind), b.item);
	}
	return 0;
}
