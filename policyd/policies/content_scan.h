/*
 * content_scan.h - the MIME content scanner behind the built-in policy
 * plugin's content rules (`prohibited_keywords`, `prohibited_extensions`).
 *
 * The policy plugin parses its config once into a struct content_scan_rules
 * (content_scan_rules_init, then _add_keyword / _add_extension for every
 * list entry) and, at END-OF-MESSAGE, calls content_scan_fd() on the
 * read-only descriptor of the spooled message.  It maps a match to
 * `content_action` (550 5.7.1 by default) and an error (-1) to a tempfail:
 * an error is never a clean message.
 *
 * What the scanner promises (each promise has a test in
 * tests/unit/test_content_scan.c):
 *  - The message is parsed by GMime 3, never by hand.  The descriptor is
 *    read with pread(2) only: it is not closed and its file offset (shared
 *    with smtpd) never moves.  It must be a regular file.
 *  - Keywords match case-insensitively (Unicode case folding plus NFKC
 *    compatibility normalisation, so "STRASSE" matches "straße" and
 *    full-width letters match ASCII ones), as substrings, with every run
 *    of white space (including line breaks) read as one space and the
 *    zero-width / bidi-control characters ignored.  Each text also starts
 *    and ends with a virtual space, so a keyword " word " matches the word
 *    at the very start or end of a text.
 *  - Keywords are searched in every Subject header (RFC 2047 decoded) of
 *    the message and of every attached message, and in every text/... part
 *    at any depth (nested multiparts, message/rfc822 attachments), after
 *    the Content-Transfer-Encoding is undone (base64, quoted-printable —
 *    so a soft line break inside a word still matches — and uuencode) and
 *    the part's charset converted to UTF-8; a charset iconv does not know
 *    is scanned as raw bytes.  The text around the parts of a multipart
 *    (prologue and epilogue) is scanned too: a multipart without a usable
 *    boundary keeps its whole body there.
 *  - A part whose Content-Type is empty or not valid (no type or subtype,
 *    "text", ";", what GMime cannot parse) is a text/plain part in
 *    US-ASCII, as RFC 2045 5.2 says and mail clients show it (where:
 *    "text/plain (invalid Content-Type)").
 *  - In a text/html part, character references are decoded before
 *    matching, as a browser shows them ("v&#105;agra", "v&#x69;agra",
 *    "vi&shy;agra", "&nbsp;", with or without ';' where HTML allows it),
 *    streaming, with a few bytes held between chunks and never more
 *    output than input.  Only once ("&amp;#105;" is the text "&#105;"),
 *    and never in other parts (text/plain shows references as typed).
 *    Tags are not removed.
 *  - Only text parts are searched for keywords.  The decoded content of a
 *    non-text part (application/octet-stream, image/..., a PDF, a zip) is
 *    never searched: keywords there are not found, by design.
 *  - Extensions are checked on every part (not only those with
 *    Content-Disposition: attachment), containers included, against every
 *    `filename` and `name` parameter of both Content-Disposition and
 *    Content-Type (a repeated parameter is checked in each of its copies),
 *    RFC 2231 (`filename*=`, `filename*0*=` continuations) and RFC 2047
 *    (also inside quoted strings) decoded by GMime.  The name is folded as
 *    keywords are; the base name is the part after the last '/' or '\';
 *    an NTFS stream suffix (":stream") and trailing dots and white space
 *    ("evil.exe.", "evil.exe ") are removed; it matches when it ends with
 *    "." + the extension, so "executive.txt" is not ".exe" and a
 *    configured "tar.gz" works.
 *  - Extensions are also checked on the names of the blocks clients turn
 *    into attachments inside a text body (text parts other than HTML, the
 *    prologue and epilogue, an unparsed message): a line starting
 *    "begin 644 name" (uuencode, 1 to 4 octal digits), "begin-base64 644
 *    name", or "=ybegin ... name=name" (yEnc); "begin" in prose, without
 *    a mode, or not at a line start, is not such a block.  So are the
 *    begin lines of any part sent with Content-Transfer-Encoding
 *    x-uuencode (its decoder drops them).  A name's last 4096 bytes are
 *    checked (where: the name).
 *  - A message GMime cannot parse at all is scanned, whole and raw, as one
 *    text (never a bypass).
 *  - Bounded work: a message with more than max_parts MIME objects or
 *    nested deeper than max_depth is reported as a match of kind
 *    CONTENT_SCAN_LIMIT (it is not scanned further and is never passed as
 *    clean).  So is a message whose parse would cost GMime far more memory
 *    than its size (the parse is cut while it runs): more than 20 *
 *    max_parts lines starting with "--", more than 50 * max_parts headers,
 *    a Content-Type or Content-Disposition header over 64 KiB, or more
 *    than 512 * max_parts bytes of those headers in all.  At most
 *    max_part_bytes decoded bytes of each text part are searched (logged
 *    when a part is cut).  Memory stays bounded whatever the part sizes:
 *    text is decoded and searched in chunks.
 *
 * GMime is initialised once, lazily (or by content_scan_init), in the
 * process that scans: safe in a forked, single-threaded policyd worker.
 * The module is not thread-safe.
 */
#ifndef ELEMTA_CONTENT_SCAN_H
#define ELEMTA_CONTENT_SCAN_H

#include <stddef.h>

#include "error.h"

/* Longest keyword or extension accepted from the config, in bytes. */
#define CONTENT_SCAN_ITEM_MAX 256

#define CONTENT_SCAN_DEFAULT_MAX_PARTS 1000
#define CONTENT_SCAN_DEFAULT_MAX_DEPTH 20
#define CONTENT_SCAN_DEFAULT_MAX_PART_BYTES ((size_t)32 * 1024 * 1024)
/* max_depth is clamped to this: GMime itself stops nesting far deeper. */
#define CONTENT_SCAN_MAX_DEPTH_LIMIT 100

/*
 * The content rules, parsed once from the config.  Initialise with
 * content_scan_rules_init(); fill only through the _add_ functions; the
 * limits may be assigned directly after init (0 means the default).
 * Owns every string; release with content_scan_rules_free().
 */
struct content_scan_rules {
	char **keywords;          /* folded (see above) UTF-8, owned       */
	size_t *keyword_lens;
	size_t keyword_count;
	size_t keyword_max_len;   /* longest folded keyword, bytes         */
	char **extensions;        /* folded, no leading dot, owned         */
	size_t *extension_lens;
	size_t extension_count;
	size_t max_parts;         /* MIME objects per message              */
	size_t max_depth;         /* nesting of multiparts and messages    */
	size_t max_part_bytes;    /* decoded bytes searched per text part  */
};

/* content_scan_rules_init - empty lists and the default limits. */
void content_scan_rules_init(struct content_scan_rules *rules);

/* content_scan_rules_add_keyword - add one keyword (UTF-8, 1..256 bytes,
 * not only white space).  A duplicate is accepted and ignored.
 * Returns 0, or -1 with err set (empty, too long, invalid UTF-8). */
int content_scan_rules_add_keyword(struct content_scan_rules *rules,
    const char *keyword, struct error *err);

/* content_scan_rules_add_extension - add one extension, "exe" or ".exe"
 * (one leading dot is dropped), any letter case.  A duplicate is accepted
 * and ignored.  Returns 0, or -1 with err set (empty, longer than 256
 * bytes, invalid UTF-8, or containing white space, '/', '\', ':' or a
 * trailing dot). */
int content_scan_rules_add_extension(struct content_scan_rules *rules,
    const char *extension, struct error *err);

/* content_scan_rules_free - release the lists; rules is left empty with
 * the default limits (init state). */
void content_scan_rules_free(struct content_scan_rules *rules);

enum content_scan_kind {
	CONTENT_SCAN_NONE = 0,
	CONTENT_SCAN_KEYWORD,     /* a prohibited keyword in Subject/text  */
	CONTENT_SCAN_EXTENSION,   /* an attachment name with a prohibited
	                             extension                              */
	CONTENT_SCAN_LIMIT,       /* more parts / deeper nesting than the
	                             limits: too complex to vouch for       */
};

/* content_scan_kind_name - "none", "keyword", "extension", "limit". */
const char *content_scan_kind_name(enum content_scan_kind kind);

#define CONTENT_SCAN_TEXT_MAX 160

/* The first match found.  item and where are escaped with log_escape():
 * printable ASCII only, safe for a log line or an SMTP reply text. */
struct content_scan_match {
	int found;                        /* 0 clean, 1 matched           */
	enum content_scan_kind kind;
	/* keyword: the folded keyword; extension: the extension without a
	 * dot; limit: the limit and its value: "max_parts 1000",
	 * "max_depth 20", "max_boundary_lines 20000", "max_headers 50000",
	 * "max_param_header_bytes 65536", "max_param_headers_total 512000". */
	char item[CONTENT_SCAN_TEXT_MAX];
	/* keyword: "Subject" or the part's content type ("text/html",
	 * "multipart/mixed prologue", "unparsed message", "text/plain
	 * (invalid Content-Type)"); extension: the attachment's file name as
	 * sent (decoded) or of a begin line; limit: "MIME structure". */
	char where[CONTENT_SCAN_TEXT_MAX];
};

/* content_scan_init - initialise GMime once (later calls do nothing).
 * Optional: content_scan_fd calls it. */
void content_scan_init(void);

/* content_scan_fd - scan the message readable at fd (a regular file; not
 * closed, offset not moved) with rules.  Returns 0 with *match filled
 * (match->found 0 or 1; with no keyword and no extension configured the
 * message is not read and found is 0), or -1 with err set on an internal
 * error (bad descriptor, read error) — the caller must tempfail, never
 * treat it as clean. */
int content_scan_fd(const struct content_scan_rules *rules, int fd,
    struct content_scan_match *match, struct error *err);

/* content_scan_html_decode - the text a text/html part shows with its
 * character references decoded, which is what keywords are matched
 * against; the input given in npieces pieces (piece[i], len[i]) exactly
 * as the scanner is handed a part's decoded bytes, so a test can cut a
 * reference anywhere.  The result never depends on where the cuts are
 * and is never longer than the input.  Into out (size bytes, NUL
 * terminated, truncated to fit); returns the full length. */
size_t content_scan_html_decode(const char *const *piece, const size_t *len,
    size_t npieces, char *out, size_t size);

#endif
