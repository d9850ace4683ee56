/*
 * test_content_scan.c - unit tests for policyd/policies/content_scan.c:
 * one test per promise of content_scan.h.
 *
 * The sample messages live in tests/unit/data/mime/ and are opened
 * relative to the working directory, which is the repository root (the
 * Makefile runs the tests from there).  Each sample is checked against the
 * same rules: keywords "viagra", "free lottery", "buy now", "Straße";
 * extensions "exe", ".scr", "tar.gz".  Messages that need exact byte
 * positions (chunk boundaries, the per-part byte limit) are generated into
 * unlinked temporary files.
 *
 * Decided and tested: keywords are searched only in Subject headers and
 * text parts, so a keyword inside a non-text attachment (base64
 * application/octet-stream) is not a match; a part whose Content-Type is
 * not valid is a text part; HTML character references are decoded only
 * in text/html parts, and "begin" lines are read only in other text.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../policyd/policies/content_scan.h"

#define DATA_DIR "tests/unit/data/mime/"

static struct content_scan_rules std_rules;

/* One sample and what scanning it with std_rules must find. */
struct sample_case {
	const char *file;
	enum content_scan_kind kind;   /* CONTENT_SCAN_NONE: clean        */
	const char *item;
	const char *where;             /* NULL: not checked               */
};

/* rules_add_all - fill rules from NULL-terminated keyword and extension
 * lists, asserting every entry is accepted. */
static void
rules_add_all(struct content_scan_rules *rules, const char *const *keywords,
    const char *const *extensions)
{
	struct error err;
	size_t i;

	content_scan_rules_init(rules);
	for (i = 0; keywords != NULL && keywords[i] != NULL; i++)
		assert_int_equal(content_scan_rules_add_keyword(rules,
		    keywords[i], &err), 0);
	for (i = 0; extensions != NULL && extensions[i] != NULL; i++)
		assert_int_equal(content_scan_rules_add_extension(rules,
		    extensions[i], &err), 0);
}

/* group_setup - the standard rules every sample is checked against. */
static int
group_setup(void **state)
{
	static const char *const keywords[] = {
		"viagra", "free lottery", "buy now", "Straße", NULL
	};
	static const char *const extensions[] = { "exe", ".scr", "tar.gz", NULL };

	if (access(DATA_DIR "neg_clean.eml", R_OK) != 0) {
		fprintf(stderr, "test_content_scan: run from the repository "
		    "root (%s not found)\n", DATA_DIR);
		return -1;
	}
	rules_add_all(&std_rules, keywords, extensions);
	return 0;
}

/* group_teardown - release the standard rules. */
static int
group_teardown(void **state)
{
	content_scan_rules_free(&std_rules);
	return 0;
}

/* scan_sample - scan one sample file; returns content_scan_fd's result. */
static int
scan_sample(const struct content_scan_rules *rules, const char *file,
    struct content_scan_match *m)
{
	char path[256];
	struct error err = { "" };
	int fd, rc;

	snprintf(path, sizeof(path), DATA_DIR "%s", file);
	fd = open(path, O_RDONLY);
	if (fd == -1)
		fail_msg("%s: %s", path, strerror(errno));
	rc = content_scan_fd(rules, fd, m, &err);
	if (rc != 0)
		print_error("%s: %s\n", file, err.text);
	close(fd);
	return rc;
}

/* temp_message - an unlinked temporary file holding data; returns its
 * descriptor. */
static int
temp_message(const char *data, size_t len)
{
	char path[] = "/tmp/test_content_scan.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

/* test_sample - the sample named in the case finds what the case says. */
static void
test_sample(void **state)
{
	const struct sample_case *c = *state;
	struct content_scan_match m;

	assert_int_equal(scan_sample(&std_rules, c->file, &m), 0);
	if (c->kind == CONTENT_SCAN_NONE) {
		if (m.found)
			fail_msg("%s: unexpected %s match \"%s\" in \"%s\"",
			    c->file, content_scan_kind_name(m.kind), m.item,
			    m.where);
		assert_int_equal(m.kind, CONTENT_SCAN_NONE);
		return;
	}
	if (!m.found)
		fail_msg("%s: expected a %s match \"%s\", found nothing",
		    c->file, content_scan_kind_name(c->kind), c->item);
	assert_string_equal(content_scan_kind_name(m.kind),
	    content_scan_kind_name(c->kind));
	assert_string_equal(m.item, c->item);
	if (c->where != NULL)
		assert_string_equal(m.where, c->where);
}

#define KW CONTENT_SCAN_KEYWORD
#define EXT CONTENT_SCAN_EXTENSION
#define CLEAN CONTENT_SCAN_NONE

static const struct sample_case cases[] = {
	/* keywords */
	{ "kw_body_plain.eml", KW, "viagra", "text/plain" },
	{ "kw_subject_b64.eml", KW, "viagra", "Subject" },
	{ "kw_subject_multiple.eml", KW, "viagra", "Subject" },
	{ "kw_base64_part.eml", KW, "free lottery", "text/plain" },
	{ "kw_qp_soft_break.eml", KW, "viagra", "text/plain" },
	{ "kw_nested_multipart.eml", KW, "viagra", "text/html" },
	{ "kw_attached_message.eml", KW, "viagra", "text/plain" },
	{ "kw_attached_subject.eml", KW, "buy now", "Subject" },
	/* "Straße" folds to "strasse"; the part says "STRA\xdfE" in Latin-1 */
	{ "kw_charset_latin1.eml", KW, "strasse", "text/plain" },
	{ "kw_charset_unknown.eml", KW, "viagra", "text/plain" },
	{ "kw_evasion_whitespace.eml", KW, "buy now", "text/plain" },
	{ "kw_evasion_invisible.eml", KW, "viagra", "text/plain" },
	{ "kw_evasion_fullwidth.eml", KW, "viagra", "text/plain" },
	{ "kw_uuencode.eml", KW, "viagra", "text/plain" },
	/* "Content-Type: ;" is read as text/plain (RFC 2045 5.2) */
	{ "kw_invalid_content_type.eml", KW, "viagra",
	    "text/plain (invalid Content-Type)" },
	{ "kw_html_references.eml", KW, "viagra", "text/html" },
	/* extensions */
	{ "ext_disposition.eml", EXT, "exe", "evil.exe" },
	{ "ext_content_type_name.eml", EXT, "exe", "evil.exe" },
	{ "ext_rfc2231.eml", EXT, "exe", "evil.exe" },
	{ "ext_rfc2231_continuations.eml", EXT, "exe", "evil.Exe" },
	{ "ext_rfc2047.eml", EXT, "exe", "evil.exe" },
	{ "ext_upper_case.eml", EXT, "exe", "EVIL.EXE" },
	{ "ext_trailing_dot.eml", EXT, "exe", "evil.exe." },
	{ "ext_trailing_space.eml", EXT, "exe", NULL },
	{ "ext_repeated_param.eml", EXT, "exe", "invoice.exe" },
	{ "ext_rlo.eml", EXT, "exe", "photo\\xe2\\x80\\xaegpj.exe" },
	{ "ext_ntfs_stream.eml", EXT, "exe", "evil.exe:Zone.Identifier" },
	{ "ext_windows_path.eml", EXT, "exe",
	    "C:\\x5cUsers\\x5cbob\\x5cDesktop\\x5csetup.exe" },
	{ "ext_multi_dot.eml", EXT, "tar.gz", "backup.TAR.GZ" },
	{ "ext_nested.eml", EXT, "scr", "screensaver.scr" },
	{ "ext_attached_message.eml", EXT, "exe", "Setup.Exe" },
	{ "ext_uuencode_inline.eml", EXT, "exe", "evil.exe" },
	/* Content-Transfer-Encoding: x-uuencode, the name only in "begin" */
	{ "ext_uuencode_cte.eml", EXT, "exe", "Tool.EXE" },
	/* negatives */
	{ "neg_executive.eml", CLEAN, NULL, NULL },
	{ "neg_clean.eml", CLEAN, NULL, NULL },
	{ "neg_keyword_in_binary.eml", CLEAN, NULL, NULL },
	/* "begin" lines without a mode or not at a line start; references
	 * in text/plain are not decoded */
	{ "neg_begin_prose.eml", CLEAN, NULL, NULL },
	/* malformed input is still scanned */
	{ "malformed_unterminated.eml", KW, "viagra", "text/plain" },
	{ "malformed_no_boundary.eml", KW, "viagra",
	    "multipart/mixed prologue" },
	{ "malformed_unparseable.eml", KW, "viagra", "unparsed message" },
};

/* test_unterminated_attachment - the attachment after an unterminated
 * boundary is still seen (extension rules only). */
static void
test_unterminated_attachment(void **state)
{
	static const char *const exts[] = { "exe", NULL };
	struct content_scan_rules rules;
	struct content_scan_match m;

	rules_add_all(&rules, NULL, exts);
	assert_int_equal(scan_sample(&rules, "malformed_unterminated.eml", &m),
	    0);
	assert_int_equal(m.found, 1);
	assert_int_equal(m.kind, CONTENT_SCAN_EXTENSION);
	assert_string_equal(m.where, "evil.exe");
	content_scan_rules_free(&rules);
}

/* test_rules_validation - empty, too long, invalid UTF-8 and blank
 * entries are refused with a message; 256 bytes is accepted. */
static void
test_rules_validation(void **state)
{
	struct content_scan_rules rules;
	struct error err = { "" };
	char big[CONTENT_SCAN_ITEM_MAX + 2];

	content_scan_rules_init(&rules);
	assert_int_equal(content_scan_rules_add_keyword(&rules, "", &err), -1);
	assert_true(strstr(err.text, "empty") != NULL);
	assert_int_equal(content_scan_rules_add_keyword(&rules, NULL, &err), -1);
	memset(big, 'a', sizeof(big));
	big[CONTENT_SCAN_ITEM_MAX + 1] = '\0';          /* 257 bytes */
	err.text[0] = '\0';
	assert_int_equal(content_scan_rules_add_keyword(&rules, big, &err), -1);
	assert_true(strstr(err.text, "longer") != NULL);
	big[CONTENT_SCAN_ITEM_MAX] = '\0';              /* 256 bytes */
	assert_int_equal(content_scan_rules_add_keyword(&rules, big, &err), 0);
	assert_int_equal(content_scan_rules_add_keyword(&rules, "ab\xff", &err),
	    -1);
	assert_true(strstr(err.text, "UTF-8") != NULL);
	assert_int_equal(content_scan_rules_add_keyword(&rules, " \t\n", &err),
	    -1);
	assert_int_equal(content_scan_rules_add_keyword(&rules,
	    "\xe2\x80\x8b", &err), -1);                 /* only a ZWSP */
	assert_int_equal(rules.keyword_count, 1);

	assert_int_equal(content_scan_rules_add_extension(&rules, "", &err), -1);
	assert_int_equal(content_scan_rules_add_extension(&rules, ".", &err),
	    -1);
	assert_int_equal(content_scan_rules_add_extension(&rules, "..exe", &err),
	    -1);
	assert_int_equal(content_scan_rules_add_extension(&rules, "exe.", &err),
	    -1);
	assert_int_equal(content_scan_rules_add_extension(&rules, "e xe", &err),
	    -1);
	assert_int_equal(content_scan_rules_add_extension(&rules, "a/b", &err),
	    -1);
	assert_int_equal(content_scan_rules_add_extension(&rules, big, &err), 0);
	big[CONTENT_SCAN_ITEM_MAX] = 'a';
	assert_int_equal(content_scan_rules_add_extension(&rules, big, &err),
	    -1);
	assert_int_equal(rules.extension_count, 1);
	content_scan_rules_free(&rules);
	assert_int_equal(rules.keyword_count, 0);
	assert_int_equal(rules.extension_count, 0);
	assert_int_equal(rules.max_parts, CONTENT_SCAN_DEFAULT_MAX_PARTS);
}

/* test_rules_normalised - keywords are stored folded, extensions folded
 * without their leading dot; duplicates are ignored. */
static void
test_rules_normalised(void **state)
{
	struct content_scan_rules rules;
	struct error err;

	content_scan_rules_init(&rules);
	assert_int_equal(content_scan_rules_add_keyword(&rules, "ViAgRa", &err),
	    0);
	assert_int_equal(content_scan_rules_add_keyword(&rules, "VIAGRA", &err),
	    0);
	assert_int_equal(content_scan_rules_add_keyword(&rules,
	    "Buy \t  NOW", &err), 0);
	assert_int_equal(rules.keyword_count, 2);
	assert_string_equal(rules.keywords[0], "viagra");
	assert_string_equal(rules.keywords[1], "buy now");
	assert_int_equal(rules.keyword_max_len, 7);

	assert_int_equal(content_scan_rules_add_extension(&rules, ".EXE", &err),
	    0);
	assert_int_equal(content_scan_rules_add_extension(&rules, "exe", &err),
	    0);
	assert_int_equal(content_scan_rules_add_extension(&rules, ".Tar.Gz",
	    &err), 0);
	assert_int_equal(rules.extension_count, 2);
	assert_string_equal(rules.extensions[0], "exe");
	assert_string_equal(rules.extensions[1], "tar.gz");
	content_scan_rules_free(&rules);
}

/* test_no_rules - with nothing configured the message is not read. */
static void
test_no_rules(void **state)
{
	struct content_scan_rules rules;
	struct content_scan_match m;
	struct error err;

	content_scan_rules_init(&rules);
	m.found = 7;
	assert_int_equal(content_scan_fd(&rules, -1, &m, &err), 0);
	assert_int_equal(m.found, 0);
	assert_int_equal(m.kind, CONTENT_SCAN_NONE);
}

/* test_bad_descriptor - a closed descriptor or a pipe is an error (-1),
 * never a clean message. */
static void
test_bad_descriptor(void **state)
{
	struct content_scan_match m;
	struct error err = { "" };
	int p[2];

	assert_int_equal(content_scan_fd(&std_rules, -1, &m, &err), -1);
	assert_int_equal(m.found, 0);
	assert_true(err.text[0] != '\0');

	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "Subject: viagra\n\n", 17), 17);
	err.text[0] = '\0';
	assert_int_equal(content_scan_fd(&std_rules, p[0], &m, &err), -1);
	assert_true(strstr(err.text, "regular file") != NULL);
	close(p[0]);
	close(p[1]);
}

/* test_descriptor_untouched - the descriptor stays open and its offset
 * (shared with smtpd) does not move; a second scan gives the same result. */
static void
test_descriptor_untouched(void **state)
{
	struct content_scan_match m;
	struct error err;
	int fd;

	fd = open(DATA_DIR "kw_nested_multipart.eml", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(lseek(fd, 17, SEEK_SET), 17);
	assert_int_equal(content_scan_fd(&std_rules, fd, &m, &err), 0);
	assert_int_equal(m.found, 1);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 17);
	assert_true(fcntl(fd, F_GETFD) != -1);
	/* The whole file was scanned, not just from the offset on. */
	assert_int_equal(content_scan_fd(&std_rules, fd, &m, &err), 0);
	assert_int_equal(m.found, 1);
	assert_string_equal(m.where, "text/html");
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 17);
	close(fd);
}

/* test_limit_parts - more MIME objects than max_parts is a LIMIT match. */
static void
test_limit_parts(void **state)
{
	static const char *const exts[] = { "exe", NULL };
	struct content_scan_rules rules;
	struct content_scan_match m;

	rules_add_all(&rules, NULL, exts);
	rules.max_parts = 3;	/* neg_clean has 5: mixed, alt, 2 texts, png */
	assert_int_equal(scan_sample(&rules, "neg_clean.eml", &m), 0);
	assert_int_equal(m.found, 1);
	assert_int_equal(m.kind, CONTENT_SCAN_LIMIT);
	assert_string_equal(m.item, "max_parts 3");
	rules.max_parts = 5;
	assert_int_equal(scan_sample(&rules, "neg_clean.eml", &m), 0);
	assert_int_equal(m.found, 0);
	content_scan_rules_free(&rules);
}

/* test_limit_depth - nesting deeper than max_depth is a LIMIT match,
 * also through an attached message. */
static void
test_limit_depth(void **state)
{
	static const char *const kws[] = { "nothing-matches-this", NULL };
	struct content_scan_rules rules;
	struct content_scan_match m;

	rules_add_all(&rules, kws, NULL);
	rules.max_depth = 2;	/* ext_nested: outer > middle > inner > part */
	assert_int_equal(scan_sample(&rules, "ext_nested.eml", &m), 0);
	assert_int_equal(m.found, 1);
	assert_int_equal(m.kind, CONTENT_SCAN_LIMIT);
	assert_string_equal(m.item, "max_depth 2");
	rules.max_depth = 3;
	assert_int_equal(scan_sample(&rules, "ext_nested.eml", &m), 0);
	assert_int_equal(m.found, 0);
	/* mixed > message > mixed > part: depth 3 */
	rules.max_depth = 2;
	assert_int_equal(scan_sample(&rules, "ext_attached_message.eml", &m), 0);
	assert_int_equal(m.kind, CONTENT_SCAN_LIMIT);
	content_scan_rules_free(&rules);
}

/* message_fill_typed - write into fd (truncated first) a message whose
 * base64 part of Content-Type type decodes to len bytes of filler (a
 * repeated pattern; an ASCII one is broken into lines), starting with lead
 * and with word at decoded offset at (each omitted when NULL). */
static void
message_fill_typed(int fd, const char *type, size_t len, const char *filler,
    const char *lead, const char *word, size_t at)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char head[256];
	size_t flen = strlen(filler);
	bool lines = true;
	unsigned char *text = malloc(len);
	char *msg = malloc(sizeof(head) + len * 2 + 16);
	size_t i, o, col = 0;

	snprintf(head, sizeof(head), "From: a@example.org\nSubject: big\n"
	    "MIME-Version: 1.0\nContent-Type: %s\n"
	    "Content-Transfer-Encoding: base64\n\n", type);

	assert_non_null(text);
	assert_non_null(msg);
	for (i = 0; i < flen; i++)
		if ((unsigned char)filler[i] >= 0x80)
			lines = false;
	for (i = 0; i < len; i++)
		text[i] = (lines && i % 61 == 60) ? '\n' :
		    (unsigned char)filler[i % flen];
	if (lead != NULL)
		memcpy(text, lead, strlen(lead));
	if (word != NULL)
		memcpy(text + at, word, strlen(word));
	o = strlen(head);
	memcpy(msg, head, o);
	for (i = 0; i < len; i += 3) {
		unsigned v = (unsigned)text[i] << 16;
		size_t n = len - i < 3 ? len - i : 3;

		if (n > 1)
			v |= (unsigned)text[i + 1] << 8;
		if (n > 2)
			v |= text[i + 2];
		msg[o++] = b64[(v >> 18) & 63];
		msg[o++] = b64[(v >> 12) & 63];
		msg[o++] = n > 1 ? b64[(v >> 6) & 63] : '=';
		msg[o++] = n > 2 ? b64[v & 63] : '=';
		if ((col += 4) == 76) {
			msg[o++] = '\n';
			col = 0;
		}
	}
	msg[o++] = '\n';
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, msg, o, 0), (ssize_t)o);
	free(text);
	free(msg);
}

/* message_fill_lead - message_fill_typed for a UTF-8 text/plain part. */
static void
message_fill_lead(int fd, size_t len, const char *filler, const char *lead,
    const char *word, size_t at)
{
	message_fill_typed(fd, "text/plain; charset=utf-8", len, filler, lead,
	    word, at);
}

/* message_fill - message_fill_lead without a lead. */
static void
message_fill(int fd, size_t len, const char *filler, const char *word,
    size_t at)
{
	message_fill_lead(fd, len, filler, NULL, word, at);
}

/* big_message - a new temporary file filled by message_fill. */
static int
big_message(size_t len, const char *word, size_t at)
{
	int fd = temp_message("", 0);

	message_fill(fd, len, "lorem ipsum ", word, at);
	return fd;
}

/* test_keyword_every_offset - a keyword is found wherever it sits in a
 * part read in many pieces.  The decoder hands the scanner about 3 KiB at
 * a time and the scanner folds up to the last ASCII byte it holds (or, in
 * a long run without ASCII, the last character start), so every offset
 * over more than one piece is tried: in ASCII filler with the longest
 * keyword and a line break inside it, in filler with multi-byte
 * characters the keyword may cut in half, with a keyword ending in a
 * combining accent (decomposed text must meet the precomposed keyword),
 * and in a long run of CJK text without a single ASCII byte. */
static void
test_keyword_every_offset(void **state)
{
	static const struct {
		const char *filler;
		const char *word;
		const char *item;
		size_t len, from, to;
	} runs[] = {
		{ "lorem ipsum ", "Free\n  LOTTERY", "free lottery", 8192, 0, 8192 },
		{ "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac ", "STRA\xc3\x9f" "E",
		    "strasse", 8192, 0, 8192 },
		{ "lorem ipsum ", "Cafe\xcc\x81 Cr\xc3\xa8me", "caf\\xc3\\xa9 "
		    "cr\\xc3\\xa8me", 8192, 0, 8192 },
		{ "\xe6\x97\xa5\xe6\x9c\xac", "\xe5\xa3\xb2\xe6\x98\xa5",
		    "\\xe5\\xa3\\xb2\\xe6\\x98\\xa5", 24000, 16000, 19500 },
	};
	struct content_scan_rules rules;
	struct content_scan_match m;
	struct error err;
	size_t r, at;
	int fd = temp_message("", 0);

	for (r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
		const char *kws[] = { runs[r].word, NULL, NULL };
		size_t wlen = strlen(runs[r].word);

		/* The window carried between pieces is one byte shorter
		 * than the longest keyword: exactly enough when the word
		 * is the longest, and a longer keyword must not upset it. */
		if (r % 2 == 1)
			kws[1] = "a-much-longer-keyword-x";
		rules_add_all(&rules, kws, NULL);
		for (at = runs[r].from; at + wlen <= runs[r].to; at++) {
			message_fill(fd, runs[r].len, runs[r].filler,
			    runs[r].word, at);
			assert_int_equal(content_scan_fd(&rules, fd, &m, &err),
			    0);
			if (!m.found || strcmp(m.item, runs[r].item) != 0)
				fail_msg("run %zu: \"%s\" at decoded offset "
				    "%zu not found", r, runs[r].item, at);
		}
		message_fill(fd, runs[r].len, runs[r].filler, NULL, 0);
		assert_int_equal(content_scan_fd(&rules, fd, &m, &err), 0);
		assert_int_equal(m.found, 0);
		content_scan_rules_free(&rules);
	}
	close(fd);
}

/* test_large_part_streamed - a keyword deep in a 1 MiB part is found, and
 * the same part without it is clean. */
static void
test_large_part_streamed(void **state)
{
	static const size_t offsets[] = { 65533, 65535, 1000000 };
	struct content_scan_match m;
	struct error err;
	size_t i;
	int fd;

	for (i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		fd = big_message(1 << 20, "ViAgRa", offsets[i]);
		assert_int_equal(content_scan_fd(&std_rules, fd, &m, &err), 0);
		if (!m.found)
			fail_msg("keyword at decoded offset %zu not found",
			    offsets[i]);
		assert_string_equal(m.item, "viagra");
		close(fd);
	}
	fd = big_message(1 << 20, NULL, 0);
	assert_int_equal(content_scan_fd(&std_rules, fd, &m, &err), 0);
	assert_int_equal(m.found, 0);
	close(fd);
}

/* scan_cpu_seconds - scan fd with rules; returns the CPU time it took
 * and asserts a clean result. */
static double
scan_cpu_seconds(const struct content_scan_rules *rules, int fd,
    int expect_found)
{
	struct content_scan_match m;
	struct error err;
	clock_t t0 = clock();

	assert_int_equal(content_scan_fd(rules, fd, &m, &err), 0);
	assert_int_equal(m.found, expect_found);
	return (double)(clock() - t0) / CLOCKS_PER_SEC;
}

/* test_pathological_text - text built to make a naive scanner quadratic
 * (8 MB without a single ASCII byte after the first; 4 MB of combining
 * marks of alternating classes, which GLib's normaliser sorts with a
 * quadratic sort) is scanned in linear time, and a keyword after it is
 * still found.  The bound is generous CPU time: linear takes well under a
 * second, quadratic many seconds. */
static void
test_pathological_text(void **state)
{
	static const char *const kws[] = { "\xe5\xa3\xb2\xe6\x98\xa5", NULL };
	struct content_scan_rules rules;
	int fd;

	rules_add_all(&rules, kws, NULL);
	fd = temp_message("", 0);
	/* "a" then CJK: the one ASCII byte is at the very start */
	message_fill_lead(fd, (8 << 20) + 1, "\xe6\x97\xa5\xe6\x9c\xac", "a",
	    NULL, 0);
	assert_true(scan_cpu_seconds(&rules, fd, 0) < 3.0);
	message_fill_lead(fd, (8 << 20) + 1, "\xe6\x97\xa5\xe6\x9c\xac", "a",
	    "\xe5\xa3\xb2\xe6\x98\xa5", (8 << 20) - 6);
	assert_true(scan_cpu_seconds(&rules, fd, 1) < 3.0);
	message_fill_lead(fd, (4 << 20) + 1, "\xcc\x81\xcc\xa3", "a", NULL, 0);
	assert_true(scan_cpu_seconds(&rules, fd, 0) < 3.0);
	message_fill_lead(fd, (4 << 20) + 1, "\xcc\x81\xcc\xa3", "a",
	    "\xe5\xa3\xb2\xe6\x98\xa5", (4 << 20) - 6);
	assert_true(scan_cpu_seconds(&rules, fd, 1) < 3.0);
	close(fd);
	content_scan_rules_free(&rules);
}

/* test_part_byte_limit - only the first max_part_bytes decoded bytes of a
 * text part are searched. */
static void
test_part_byte_limit(void **state)
{
	static const char *const kws[] = { "viagra", NULL };
	struct content_scan_rules rules;
	struct content_scan_match m;
	struct error err;
	int fd;

	rules_add_all(&rules, kws, NULL);
	rules.max_part_bytes = 1000;
	fd = big_message(4000, "viagra", 2000);
	assert_int_equal(content_scan_fd(&rules, fd, &m, &err), 0);
	assert_int_equal(m.found, 0);
	rules.max_part_bytes = 3000;
	assert_int_equal(content_scan_fd(&rules, fd, &m, &err), 0);
	assert_int_equal(m.found, 1);
	close(fd);
	content_scan_rules_free(&rules);
}

/* test_keyword_edges - a keyword configured with surrounding spaces acts
 * as a whole word, also at the very start and end of a text. */
static void
test_keyword_edges(void **state)
{
	static const char *const kws[] = { " sex ", NULL };
	static const char essex[] =
	    "From: a@example.org\nSubject: Trip to Essex\n\nSussex, Essex.\n";
	static const char word[] =
	    "From: a@example.org\nSubject: hello\n\nsex";
	struct content_scan_rules rules;
	struct content_scan_match m;
	struct error err;
	int fd;

	rules_add_all(&rules, kws, NULL);
	fd = temp_message(essex, strlen(essex));
	assert_int_equal(content_scan_fd(&rules, fd, &m, &err), 0);
	assert_int_equal(m.found, 0);
	close(fd);
	fd = temp_message(word, strlen(word));
	assert_int_equal(content_scan_fd(&rules, fd, &m, &err), 0);
	assert_int_equal(m.found, 1);
	assert_string_equal(m.where, "text/plain");
	close(fd);
	content_scan_rules_free(&rules);
}

/* generated - an unlinked temporary file: head, then body repeated
 * count times, then tail. */
static int
generated(const char *head, const char *body, size_t count, const char *tail)
{
	size_t hl = strlen(head), bl = strlen(body), tl = strlen(tail), i, o;
	char *msg = malloc(hl + bl * count + tl);
	int fd;

	assert_non_null(msg);
	memcpy(msg, head, hl);
	for (i = 0, o = hl; i < count; i++, o += bl)
		memcpy(msg + o, body, bl);
	memcpy(msg + o, tail, tl);
	fd = temp_message(msg, o + tl);
	free(msg);
	return fd;
}

/* expect_limit - scanning fd with std_rules gives a LIMIT match whose
 * item is item. */
static void
expect_limit(int fd, const char *item)
{
	struct content_scan_match m;
	struct error err;

	assert_int_equal(content_scan_fd(&std_rules, fd, &m, &err), 0);
	assert_int_equal(m.found, 1);
	assert_string_equal(content_scan_kind_name(m.kind), "limit");
	assert_string_equal(m.item, item);
	close(fd);
}

/* test_parse_guard - messages that would make GMime build huge trees are
 * cut while being parsed and reported as LIMIT: many empty parts, many
 * headers, one huge Content-Type, many large Content-Types. */
static void
test_parse_guard(void **state)
{
	static const char mp[] = "From: a@example.org\nSubject: x\n"
	    "Content-Type: multipart/mixed; boundary=\"b\"\n\n";

	/* 20001 lines starting with "--" (each an empty part) */
	expect_limit(generated(mp, "--b\n\n", 20001, "--b--\n"),
	    "max_boundary_lines 20000");
	/* 50001 headers */
	expect_limit(generated("From: a@example.org\n", "X-A: b\n", 50000,
	    "\nbody\n"), "max_headers 50000");
	/* one Content-Type of more than 64 KiB (folded lines) */
	expect_limit(generated("From: a@example.org\nContent-Type: text/plain",
	    ";\n p=vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv", 2000, "\n\nbody\n"),
	    "max_param_header_bytes 65536");
	/* 1000 Content-Types of about 600 bytes: more than 512 * max_parts */
#define PARAM50 "; p=vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
	expect_limit(generated(mp, "--b\nContent-Type: text/plain" PARAM50
	    PARAM50 PARAM50 PARAM50 PARAM50 PARAM50 PARAM50 PARAM50 PARAM50
	    PARAM50 PARAM50 PARAM50 "\n\nx\n", 1000, "--b--\n"),
	    "max_param_headers_total 512000");
#undef PARAM50
}

/* test_parse_guard_legitimate - what a real message has stays well under
 * the guard: many "-- " lines and long folded headers that carry no
 * parameters. */
static void
test_parse_guard_legitimate(void **state)
{
	struct content_scan_match m;
	struct error err;
	int fd;

	fd = generated("From: a@example.org\nSubject: x\n\n", "-- \nline\n",
	    5000, "end\n");
	assert_int_equal(content_scan_fd(&std_rules, fd, &m, &err), 0);
	assert_int_equal(m.found, 0);
	close(fd);
	fd = generated("From: a@example.org\nReferences:",
	    "\n <0123456789abcdef@example.org>", 5000, "\n\nbody\n");
	assert_int_equal(content_scan_fd(&std_rules, fd, &m, &err), 0);
	assert_int_equal(m.found, 0);
	close(fd);
}

/* test_empty_message - an empty file is scanned (raw) and clean. */
static void
test_empty_message(void **state)
{
	struct content_scan_match m;
	struct error err;
	int fd = temp_message("", 0);

	assert_int_equal(content_scan_fd(&std_rules, fd, &m, &err), 0);
	assert_int_equal(m.found, 0);
	close(fd);
}

/* scan_text - scan the message text with rules; returns the match. */
static struct content_scan_match
scan_text(const struct content_scan_rules *rules, const char *text)
{
	struct content_scan_match m;
	struct error err = { "" };
	int fd = temp_message(text, strlen(text));

	if (content_scan_fd(rules, fd, &m, &err) != 0)
		fail_msg("scan failed: %s", err.text);
	close(fd);
	return m;
}

/* part_message - a multipart message whose second part has the header
 * lines headers and the body body (first part: clean text/plain). */
static char *
part_message(const char *headers, const char *body)
{
	static char msg[4096];

	snprintf(msg, sizeof(msg), "From: a@example.org\nSubject: x\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"b\"\n\n"
	    "--b\nContent-Type: text/plain\n\nhello\n"
	    "--b\n%s\n\n%s\n--b--\n", headers, body);
	return msg;
}

/* test_invalid_content_type - a part whose Content-Type is empty or not
 * valid is scanned as text/plain (RFC 2045 5.2), at the top level too; a
 * valid non-text type is still not scanned and a valid text/plain part is
 * scanned as before. */
static void
test_invalid_content_type(void **state)
{
	static const char *const invalid[] = {
		"Content-Type:", "Content-Type: ;", "Content-Type: text",
		"Content-Type: /plain", "Content-Type: image/",
		"Content-Type: te(x)t/plain", "Content-Type: ; charset=utf-8",
		"Content-Type: application/", "Content-Type: image png",
		"Content-Type: image/png\nContent-Type: ;",
	};
	static const char *const not_text[] = {
		"Content-Type: application/octet-stream",
		"Content-Type: Application/Octet-Stream; name=data.bin",
		"Content-Type: image/png", "Content-Type: foo/bar",
	};
	struct content_scan_match m;
	char top[256];
	size_t i;

	for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		m = scan_text(&std_rules, part_message(invalid[i],
		    "cheap VIAGRA"));
		if (!m.found)
			fail_msg("\"%s\": part not scanned", invalid[i]);
		assert_string_equal(m.item, "viagra");
		assert_string_equal(m.where,
		    "text/plain (invalid Content-Type)");
	}
	for (i = 0; i < sizeof(not_text) / sizeof(not_text[0]); i++) {
		m = scan_text(&std_rules, part_message(not_text[i],
		    "cheap VIAGRA"));
		if (m.found)
			fail_msg("\"%s\": non-text part scanned", not_text[i]);
	}
	m = scan_text(&std_rules, part_message(
	    "Content-Type: text/plain; charset=us-ascii", "cheap VIAGRA"));
	assert_int_equal(m.found, 1);
	assert_string_equal(m.where, "text/plain");
	m = scan_text(&std_rules, part_message("X-Other: 1", "cheap VIAGRA"));
	assert_int_equal(m.found, 1);
	assert_string_equal(m.where, "text/plain");

	snprintf(top, sizeof(top), "From: a@example.org\nSubject: x\n"
	    "MIME-Version: 1.0\nContent-Type:\n\ncheap VIAGRA\n");
	m = scan_text(&std_rules, top);
	assert_int_equal(m.found, 1);
	assert_string_equal(m.where, "text/plain (invalid Content-Type)");
}

/* html_case - an HTML body and whether std_rules find a keyword in it. */
struct html_case {
	const char *body;
	const char *item;       /* NULL: clean */
};

/* test_html_references - character references in a text/html part are
 * decoded before matching (decimal, hex, leading zeros, no ';', named
 * and invisible ones); a reference to another character, a reference
 * escaped with &amp; and an unknown name are not the keyword; in
 * text/plain references are not decoded. */
static void
test_html_references(void **state)
{
	static const struct html_case html_cases[] = {
		{ "v&#105;agra", "viagra" },
		{ "v&#x69;agra", "viagra" },
		{ "V&#X49;AGRA", "viagra" },
		{ "v&#00000000000000000000105;agra", "viagra" },
		{ "v&#105agra", "viagra" },
		{ "vi&#x61gra", "viagra" },
		{ "&#118;&#105;&#97;&#103;&#114;&#97;", "viagra" },
		{ "vi&shy;agra", "viagra" },
		{ "vi&zwnj;ag&ZeroWidthSpace;ra", "viagra" },
		{ "v&iopf;a&gfr;r&ascr;", "viagra" },
		{ "buy&nbsp;now", "buy now" },
		{ "buy&nbspnow", "buy now" },
		{ "free&#32;lottery", "free lottery" },
		{ "STRA&szlig;E", "strasse" },
		{ "<p>end v&#105;agra&#", "viagra" },
		{ "v&#106;agra", NULL },
		{ "v&amp;#105;agra", NULL },
		{ "v&#105x;gra", NULL },
		{ "vi&unknown;agra", NULL },
		{ "v&#;iagra", NULL },
		{ "v&#x;iagra", NULL },
		{ "v&#99999999999999999999;agra", NULL },
		{ "v&#0;iagra", NULL },
	};
	char msg[512];
	size_t i;

	for (i = 0; i < sizeof(html_cases) / sizeof(html_cases[0]); i++) {
		struct content_scan_match m;

		snprintf(msg, sizeof(msg), "From: a@example.org\nSubject: x\n"
		    "MIME-Version: 1.0\nContent-Type: text/html\n\n"
		    "<html><body>%s</body></html>\n", html_cases[i].body);
		m = scan_text(&std_rules, msg);
		if (html_cases[i].item == NULL) {
			if (m.found)
				fail_msg("\"%s\": unexpected match \"%s\"",
				    html_cases[i].body, m.item);
			continue;
		}
		if (!m.found)
			fail_msg("\"%s\": \"%s\" not found", html_cases[i].body,
			    html_cases[i].item);
		assert_string_equal(m.item, html_cases[i].item);
		assert_string_equal(m.where, "text/html");
		/* The same bytes in text/plain are shown as typed. */
		snprintf(msg, sizeof(msg), "From: a@example.org\nSubject: x\n"
		    "MIME-Version: 1.0\nContent-Type: text/plain\n\n%s\n",
		    html_cases[i].body);
		m = scan_text(&std_rules, msg);
		if (m.found && strstr(html_cases[i].body, "&") != NULL &&
		    strcmp(html_cases[i].body, "STRA&szlig;E") != 0)
			fail_msg("\"%s\" in text/plain: decoded", html_cases[i].body);
	}
}

/* test_html_reference_every_offset - a reference is decoded wherever the
 * decoder's pieces cut it, and references never grow the text. */
static void
test_html_reference_every_offset(void **state)
{
	static const char *const words[] = {
		"v&#x000069;agra", "vi&shy;agra",
	};
	struct content_scan_match m;
	struct error err;
	size_t w, at;
	int fd = temp_message("", 0);

	for (w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
		for (at = 0; at + strlen(words[w]) <= 8192; at++) {
			message_fill_typed(fd, "text/html; charset=utf-8", 8192,
			    "lorem &amp; ipsum ", NULL, words[w], at);
			assert_int_equal(content_scan_fd(&std_rules, fd, &m,
			    &err), 0);
			if (!m.found || strcmp(m.item, "viagra") != 0)
				fail_msg("\"%s\" at decoded offset %zu not "
				    "found", words[w], at);
		}
	}
	message_fill_typed(fd, "text/html; charset=utf-8", 8192,
	    "lorem &amp; ipsum ", NULL, NULL, 0);
	assert_int_equal(content_scan_fd(&std_rules, fd, &m, &err), 0);
	assert_int_equal(m.found, 0);
	close(fd);
}

/* test_html_decode_every_cut - the decoder fed in pieces: each reference
 * string decodes to what a browser shows, and to exactly that wherever
 * one or two cuts fall (every pair of byte offsets, empty pieces
 * included), through every state of the decoder: numeric (decimal,
 * hex, ';' or not, C1, 0, past U+10FFFF), named with ';', legacy names
 * without it and their longest prefix, a name past the held maximum,
 * and '&' sequences that are no reference. */
static void
test_html_decode_every_cut(void **state)
{
	static const struct {
		const char *in, *shown;
	} refs[] = {
		{ "v&#105;agra", "viagra" },
		{ "v&#x000069;agra", "viagra" },
		{ "V&#X49;AGRA", "VIAGRA" },
		{ "vi&#x61gra", "viagra" },
		{ "v&#105agra", "viagra" },
		{ "&#128;&#0;&#99999999999;", "\xe2\x82\xac\xef\xbf\xbd"
		    "\xef\xbf\xbd" },
		{ "vi&shy;ag&NegativeVeryThinSpace;ra", "vi\xc2\xad" "ag"
		    "\xe2\x80\x8bra" },
		{ "buy&nbspnow &notit; &ltx &copy=2", "buy\xc2\xa0now "
		    "\xc2\xacit; <x \xc2\xa9=2" },
		{ "STRA&szlig;E &eacute", "STRA\xc3\x9f" "E \xc3\xa9" },
		/* the longest legacy names, read without ';' */
		{ "&frac34x &Ccedilx &iquestion", "\xc2\xbex \xc3\x87x "
		    "\xc2\xbfion" },
		{ "v&amp;#105;agra", "v&#105;agra" },
		{ "v&iopf;a&gfr;r&ascr;", "viagra" },
		{ "&&#&#x&#x;&#;&unknown;&", "&&#&#x&#x;&#;&unknown;&" },
		{ "&abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN;x",
		    "&abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN;x" },
	};
	char whole[128], cut[128];

	for (size_t k = 0; k < sizeof(refs) / sizeof(refs[0]); k++) {
		const char *in = refs[k].in;
		size_t n = strlen(in), wl;
		const char *one[] = { in };
		size_t onelen[] = { n };

		wl = content_scan_html_decode(one, onelen, 1, whole,
		    sizeof(whole));
		assert_string_equal(whole, refs[k].shown);
		assert_true(wl <= n);
		for (size_t i = 0; i <= n; i++) {
			for (size_t j = i; j <= n; j++) {
				const char *p[] = { in, in + i, in + j };
				size_t l[] = { i, j - i, n - j };

				assert_int_equal(content_scan_html_decode(p, l,
				    3, cut, sizeof(cut)), wl);
				if (strcmp(cut, whole) != 0)
					fail_msg("\"%s\" cut at %zu and %zu: "
					    "\"%s\"", in, i, j, cut);
			}
		}
	}
}

/* test_text_cost - parts made of nothing but references (and of
 * unterminated ones), or of lines that start like begin lines, are
 * scanned in linear time (generous CPU bound, as test_pathological_text). */
static void
test_text_cost(void **state)
{
	static const struct {
		const char *type, *filler;
	} runs[] = {
		{ "text/html", "&#x69;&NegativeVeryThinSpace;&eacute" },
		{ "text/html", "&&#&#x&abcdefghijklmnopqrstuvwxyz0123456789" },
		/* 61 bytes: every line is "begin" and 55 blanks */
		{ "text/plain", "begin                                 "
		    "                      x" },
		{ "text/plain", "=ybegin line=128 size=10 part=1 total=2 "
		    "crc32=0 x=y z=w     x" },
	};
	size_t i;
	int fd = temp_message("", 0);

	for (i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		message_fill_typed(fd, runs[i].type, 4 << 20, runs[i].filler,
		    NULL, NULL, 0);
		assert_true(scan_cpu_seconds(&std_rules, fd, 0) < 3.0);
	}
	close(fd);
}

/* begin_case - a text body and the extension std_rules find in it. */
struct begin_case {
	const char *body;
	const char *item;       /* NULL: clean */
	const char *where;
};

/* test_begin_lines - the names of uuencode, base64 and yEnc blocks in a
 * text body are checked against the prohibited extensions, also with
 * only extension rules; "begin" without a mode, not at a line start, a
 * mode that is not octal, or yEnc without a name is no block. */
static void
test_begin_lines(void **state)
{
	static const struct begin_case begin_cases[] = {
		{ "begin 644 evil.exe\n`\nend\n", "exe", "evil.exe" },
		{ "text\r\nbegin 644 evil.exe\r\n`\r\nend\r\n", "exe",
		    "evil.exe" },
		{ "begin 0755 Screen.SCR\n", "scr", "Screen.SCR" },
		{ "begin-base64 644 evil.exe\nAAAA\n====\n", "exe",
		    "evil.exe" },
		{ "begin \t 644 \t C:\\\\tmp\\\\evil.exe", "exe", NULL },
		{ "=ybegin part=1 line=128 size=5 name=my evil.exe\n", "exe",
		    "my evil.exe" },
		{ "=ybegin name=evil.exe", "exe", "evil.exe" },
		{ "begin 644 backup.tar.gz\n", "tar.gz", "backup.tar.gz" },
		{ "begin the download of setup.exe now\n", NULL, NULL },
		{ "please begin 644 evil.exe\n", NULL, NULL },
		{ " begin 644 evil.exe\n", NULL, NULL },
		{ "begin 9 evil.exe\n", NULL, NULL },
		{ "begin 64444 evil.exe\n", NULL, NULL },
		{ "begin644 evil.exe\n", NULL, NULL },
		{ "begin 644 readme.txt\n", NULL, NULL },
		{ "begin-base 644 evil.exe\n", NULL, NULL },
		{ "=ybegin line=128 size=10\n", NULL, NULL },
		{ "=ybegin line=128 size=10 filename=evil.exe\n", NULL, NULL },
	};
	static const char *const exts[] = { "exe", ".scr", "tar.gz", NULL };
	struct content_scan_rules only_ext;
	char msg[512];
	size_t i, r;

	rules_add_all(&only_ext, NULL, exts);
	for (i = 0; i < sizeof(begin_cases) / sizeof(begin_cases[0]); i++) {
		for (r = 0; r < 2; r++) {
			const struct content_scan_rules *rules =
			    r == 0 ? &std_rules : &only_ext;
			struct content_scan_match m;

			snprintf(msg, sizeof(msg), "From: a@example.org\n"
			    "Subject: x\n\nHi Bob,\n%s", begin_cases[i].body);
			m = scan_text(rules, msg);
			if (begin_cases[i].item == NULL) {
				if (m.found)
					fail_msg("\"%s\": unexpected match "
					    "\"%s\"", begin_cases[i].body, m.item);
				continue;
			}
			if (!m.found)
				fail_msg("\"%s\": not found (rules %zu)",
				    begin_cases[i].body, r);
			assert_string_equal(content_scan_kind_name(m.kind),
			    "extension");
			assert_string_equal(m.item, begin_cases[i].item);
			if (begin_cases[i].where != NULL)
				assert_string_equal(m.where, begin_cases[i].where);
		}
	}
	content_scan_rules_free(&only_ext);
}

/* test_begin_line_long_name - a name longer than what is kept of it is
 * still checked by its end; a non-text part's begin lines are data. */
static void
test_begin_line_long_name(void **state)
{
	size_t len = 100000;
	char *msg = malloc(len + 256);
	struct content_scan_match m;
	int n;

	assert_non_null(msg);
	n = snprintf(msg, 256, "From: a@example.org\nSubject: x\n\n"
	    "begin 644 ");
	memset(msg + n, 'a', len);
	strcpy(msg + n + len, ".exe\n");
	m = scan_text(&std_rules, msg);
	assert_int_equal(m.found, 1);
	assert_string_equal(m.item, "exe");
	strcpy(msg + n + len, ".txt\n");
	m = scan_text(&std_rules, msg);
	assert_int_equal(m.found, 0);
	free(msg);
	m = scan_text(&std_rules, part_message(
	    "Content-Type: application/octet-stream",
	    "begin 644 evil.exe\n`\nend"));
	assert_int_equal(m.found, 0);
}

/* test_begin_line_every_offset - a begin line is seen wherever the
 * decoder's pieces cut it. */
static void
test_begin_line_every_offset(void **state)
{
	static const char *const exts[] = { "exe", NULL };
	struct content_scan_rules rules;
	struct content_scan_match m;
	struct error err;
	size_t at;
	int fd = temp_message("", 0);

	rules_add_all(&rules, NULL, exts);
	for (at = 0; at + 22 <= 8192; at++) {
		message_fill(fd, 8192, "lorem ipsum ", "\nbegin 644 evil.exe\r\n",
		    at);
		assert_int_equal(content_scan_fd(&rules, fd, &m, &err), 0);
		if (!m.found)
			fail_msg("begin line at decoded offset %zu not found",
			    at);
		assert_string_equal(m.where, "evil.exe");
	}
	message_fill(fd, 8192, "lorem ipsum ", "\nbegin 644 evil.txt\r\n", 77);
	assert_int_equal(content_scan_fd(&rules, fd, &m, &err), 0);
	assert_int_equal(m.found, 0);
	close(fd);
	content_scan_rules_free(&rules);
}

/* test_kind_names - every kind has a name for logs. */
static void
test_kind_names(void **state)
{
	assert_string_equal(content_scan_kind_name(CONTENT_SCAN_NONE), "none");
	assert_string_equal(content_scan_kind_name(CONTENT_SCAN_KEYWORD),
	    "keyword");
	assert_string_equal(content_scan_kind_name(CONTENT_SCAN_EXTENSION),
	    "extension");
	assert_string_equal(content_scan_kind_name(CONTENT_SCAN_LIMIT),
	    "limit");
}

#define SAMPLE(i) { cases[i].file, test_sample, NULL, NULL, \
	(void *)&cases[i] }

int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_unterminated_attachment),
		cmocka_unit_test(test_rules_validation),
		cmocka_unit_test(test_rules_normalised),
		cmocka_unit_test(test_no_rules),
		cmocka_unit_test(test_bad_descriptor),
		cmocka_unit_test(test_descriptor_untouched),
		cmocka_unit_test(test_limit_parts),
		cmocka_unit_test(test_limit_depth),
		cmocka_unit_test(test_keyword_every_offset),
		cmocka_unit_test(test_large_part_streamed),
		cmocka_unit_test(test_part_byte_limit),
		cmocka_unit_test(test_pathological_text),
		cmocka_unit_test(test_keyword_edges),
		cmocka_unit_test(test_parse_guard),
		cmocka_unit_test(test_parse_guard_legitimate),
		cmocka_unit_test(test_empty_message),
		cmocka_unit_test(test_invalid_content_type),
		cmocka_unit_test(test_html_references),
		cmocka_unit_test(test_html_reference_every_offset),
		cmocka_unit_test(test_html_decode_every_cut),
		cmocka_unit_test(test_text_cost),
		cmocka_unit_test(test_begin_lines),
		cmocka_unit_test(test_begin_line_long_name),
		cmocka_unit_test(test_begin_line_every_offset),
		cmocka_unit_test(test_kind_names),
	};
	struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0]) +
	    sizeof(fixed) / sizeof(fixed[0])];
	size_t n = 0, i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct CMUnitTest t = SAMPLE(i);

		tests[n++] = t;
	}
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		tests[n++] = fixed[i];
	return _cmocka_run_group_tests("content_scan", tests, n, group_setup,
	    group_teardown);
}
