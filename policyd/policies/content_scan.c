/*
 * content_scan.c - the MIME content scanner behind the built-in policy
 * plugin's content rules (`prohibited_keywords`, `prohibited_extensions`);
 * the promises are listed in content_scan.h.
 *
 * Called by the policy plugin in an elemta-policyd worker (unprivileged,
 * single-threaded) at END-OF-MESSAGE, on the read-only descriptor of the
 * spooled message that smtpd passed with SCM_RIGHTS.  Everything in the
 * message is untrusted network input: it is parsed by GMime (no MIME
 * parsing by hand here), every walk is bounded (parts, depth, bytes per
 * part, memory per chunk), and every string that leaves this module is
 * escaped with log_escape().
 *
 * Reading the descriptor: SCM_RIGHTS shares the open file description, so
 * its offset is shared with smtpd and must never move.  The descriptor is
 * wrapped in a small GMimeStream subclass that reads with pread(2) only.
 * Not chosen: re-opening /proc/self/fd/N (the spool file belongs to smtpd's
 * user, policyd runs as another, so the open is refused), GMimeStreamFs on
 * a dup (lseek moves the shared offset) and GMimeStreamMmap (a file
 * truncated under the map kills the worker with SIGBUS).
 *
 * Matching: text is folded (Unicode NFKD, case fold, NFKC; white space runs
 * to one space; zero-width and bidi controls dropped) chunk by chunk and the
 * folded keywords are searched with memmem over a window that keeps the
 * last (longest keyword - 1) bytes of the previous chunk, so memory stays
 * bounded whatever the part size and a keyword across a chunk boundary is
 * still found.  Before folding, an HTML part's character references are
 * decoded and a text body's "begin 644 name" lines are picked out (both
 * streaming state machines below, a few bytes carried between chunks).
 * Which parts are text: text/..., and a part whose Content-Type GMime
 * could not parse (RFC 2045 5.2: text/plain).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "content_scan.h"
#include "error.h"
#include "log.h"

/* Decoded bytes read from a part per step. */
#define SCAN_CHUNK (64 * 1024)
/* Undecided bytes kept before folding anyway (a long run without any
 * ASCII byte, e.g. CJK text): cut at a character boundary instead. */
#define SCAN_PENDING_MAX (16 * 1024)

/*==== growable byte buffer ====*/

/* A private length-tracking buffer: strbuf's limit semantics do not fit
 * buffers whose bound is structural (chunk size) and that drop bytes from
 * the front. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};

/* buf_reserve - make room for extra more bytes. */
static void
buf_reserve(struct buf *b, size_t extra)
{
	size_t cap;

	if (b->len + extra <= b->cap)
		return;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

/* buf_put - append n bytes. */
static void
buf_put(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	buf_reserve(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

/* buf_putc - append one byte. */
static void
buf_putc(struct buf *b, char c)
{
	buf_reserve(b, 1);
	b->data[b->len++] = c;
}

/* buf_consume - drop the first n bytes. */
static void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

/* buf_free - release the memory; the buffer is empty again. */
static void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/*==== folding ====*/

/* fold_ignorable - characters that render as nothing and would split a
 * keyword unseen: soft hyphen, zero-width and joiner characters, bidi
 * controls, variation selectors, BOM, tag characters. */
static bool
fold_ignorable(gunichar u)
{
	return u == 0x00AD || u == 0x034F || u == 0x061C ||
	    (u >= 0x180B && u <= 0x180E) ||
	    (u >= 0x200B && u <= 0x200F) ||
	    (u >= 0x202A && u <= 0x202E) ||
	    (u >= 0x2060 && u <= 0x206F) ||
	    (u >= 0xFE00 && u <= 0xFE0F) || u == 0xFEFF ||
	    (u >= 0xE0000 && u <= 0xE0FFF);
}

/* fold_is_space - the ASCII white space that collapses to one space. */
static bool
fold_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
	    c == '\v' || c == '\f';
}

/* fold_emit_ascii - append one ASCII byte, lower-cased; white space runs
 * become one space (*space says the output ends in one); NUL is dropped
 * (it renders as nothing). */
static void
fold_emit_ascii(struct buf *out, bool *space, unsigned char c)
{
	if (c == '\0')
		return;
	if (fold_is_space(c)) {
		if (!*space)
			buf_putc(out, ' ');
		*space = true;
		return;
	}
	if (c >= 'A' && c <= 'Z')
		c = (unsigned char)(c - 'A' + 'a');
	buf_putc(out, (char)c);
	*space = false;
}

/* fold_decode - the character at p (before end) and its length; an
 * invalid or truncated sequence is one byte read as U+FFFD, exactly as
 * fold_sanitize does. */
static gunichar
fold_decode(const char *p, const char *end, size_t *step)
{
	gunichar u = g_utf8_get_char_validated(p, end - p);

	if (u == (gunichar)-1 || u == (gunichar)-2) {
		*step = 1;
		return 0xFFFD;
	}
	*step = (size_t)(g_utf8_next_char(p) - p);
	return u;
}

/* Longest run of combining marks kept together: GLib sorts a run by
 * combining class with a quadratic sort, so longer runs are split as the
 * Unicode Stream-Safe Text Format does (UAX #15), with U+034F, which the
 * fold then drops. */
#define FOLD_MAX_NONSTARTERS 30

/* fold_sanitize - copy src to dst as valid UTF-8 for GLib's normaliser:
 * every invalid byte becomes U+FFFD, NUL is dropped (the normaliser stops
 * at NUL) and a U+034F goes after every FOLD_MAX_NONSTARTERS combining
 * marks in a row.  Keywords are valid UTF-8, so they never matched the
 * replaced bytes anyway. */
static void
fold_sanitize(struct buf *dst, const char *src, size_t len)
{
	const char *p = src, *end = src + len;
	unsigned nonstarters = 0;

	while (p < end) {
		size_t step;
		gunichar u;

		if (*p == '\0') {
			p++;
			continue;
		}
		u = fold_decode(p, end, &step);
		if (g_unichar_combining_class(u) == 0) {
			nonstarters = 0;
		} else if (++nonstarters > FOLD_MAX_NONSTARTERS) {
			buf_put(dst, "\xCD\x8F", 2);
			nonstarters = 1;
		}
		if (step == 1 && (unsigned char)*p >= 0x80)
			buf_put(dst, "\xEF\xBF\xBD", 3);
		else
			buf_put(dst, p, step);
		p += step;
	}
}

/* fold_glib - the exact, slow fold of valid UTF-8 (no NUL): NFKD,
 * Unicode case fold, NFKC, then ignorable characters dropped and white
 * space runs collapsed into out. */
static void
fold_glib(struct buf *out, bool *space, const char *valid, size_t len)
{
	gchar *decomposed, *folded, *composed;
	const char *p;

	decomposed = g_utf8_normalize(valid != NULL ? valid : "", (gssize)len,
	    G_NORMALIZE_NFKD);
	if (decomposed == NULL)	/* cannot happen on valid UTF-8 */
		return;
	folded = g_utf8_casefold(decomposed, -1);
	composed = g_utf8_normalize(folded, -1, G_NORMALIZE_NFKC);
	g_free(decomposed);
	g_free(folded);
	if (composed == NULL)
		return;
	for (p = composed; *p != '\0';) {
		const char *next = g_utf8_next_char(p);
		gunichar u;

		if ((unsigned char)*p < 0x80) {
			fold_emit_ascii(out, space, (unsigned char)*p);
			p++;
			continue;
		}
		u = g_utf8_get_char(p);
		if (fold_ignorable(u)) {
			/* dropped */
		} else if (g_unichar_isspace(u)) {
			fold_emit_ascii(out, space, ' ');
		} else {
			buf_put(out, p, (size_t)(next - p));
			*space = false;
		}
		p = next;
	}
	g_free(composed);
}

/* fold_may_combine - may u join the character before it under
 * normalisation?  Combining marks, and the few starters that compose as
 * a second element (NFC_Quick_Check=Maybe): Indic and Myanmar vowel
 * signs, Hangul jamo, Balinese; everything outside the BMP to be safe. */
static bool
fold_may_combine(gunichar u)
{
	return u >= 0x10000 || g_unichar_combining_class(u) != 0 ||
	    (u >= 0x0900 && u <= 0x0DFF) || (u >= 0x1000 && u <= 0x109F) ||
	    (u >= 0x1100 && u <= 0x11FF) || (u >= 0x1B00 && u <= 0x1B7F) ||
	    (u >= 0x3130 && u <= 0x318F) || (u >= 0xA960 && u <= 0xA97F) ||
	    (u >= 0xD7B0 && u <= 0xD7FF);
}

/* Per-character folds of the BMP, filled on first use (process lifetime):
 * NULL not computed yet, fold_combining when the character (or its fold)
 * may combine with a neighbour, which only the slow path gets right. */
static const char **fold_cache;
static const char fold_combining[] = "combining";

/* fold_char - the fold of one character on its own (ignorables give "",
 * other white space " "), or NULL when it may combine with a neighbour. */
static const char *
fold_char(gunichar u)
{
	struct buf out = { NULL, 0, 0 };
	bool space = false;
	const char *p;
	char in[8];
	int n;

	if (u >= 0x10000)
		return NULL;
	if (fold_cache == NULL)
		fold_cache = xcalloc(0x10000, sizeof(*fold_cache));
	if (fold_cache[u] != NULL)
		return fold_cache[u] == fold_combining ? NULL : fold_cache[u];
	if (fold_may_combine(u)) {
		fold_cache[u] = fold_combining;
		return NULL;
	}
	n = g_unichar_to_utf8(u, in);
	fold_glib(&out, &space, in, (size_t)n);
	for (p = out.data; p != NULL && p < out.data + out.len;
	    p = g_utf8_next_char(p)) {
		if (fold_may_combine(g_utf8_get_char(p))) {
			buf_free(&out);
			fold_cache[u] = fold_combining;
			return NULL;
		}
	}
	fold_cache[u] = xstrndup(out.data != NULL ? out.data : "", out.len);
	buf_free(&out);
	return fold_cache[u];
}

/* fold_emit_folded - append an already folded string, collapsing white
 * space across what is already in out. */
static void
fold_emit_folded(struct buf *out, bool *space, const char *f)
{
	for (; *f != '\0'; f++) {
		if ((unsigned char)*f < 0x80) {
			fold_emit_ascii(out, space, (unsigned char)*f);
		} else {
			buf_putc(out, *f);
			*space = false;
		}
	}
}

/* fold_text - append the folded form of src[0..len) to out: NFKD, Unicode
 * case fold, NFKC, white space collapsed, ignorable characters and NUL
 * dropped, invalid bytes read as U+FFFD.  Fast paths with the same result:
 * ASCII-only input, and character by character (from fold_cache) wherever
 * no character may combine with its neighbours; a stretch where one may
 * is re-folded whole by GLib, from the last character before it that
 * cannot combine to the next one.  scratch is working memory. */
static void
fold_text(struct buf *out, bool *space, const char *src, size_t len,
    struct buf *scratch)
{
	const char *p = src, *end = src + len, *safe_src = src;
	size_t i, safe_out = out->len;
	bool safe_space = *space;

	for (i = 0; i < len; i++)
		if ((unsigned char)src[i] >= 0x80)
			break;
	if (i == len) {
		for (i = 0; i < len; i++)
			fold_emit_ascii(out, space, (unsigned char)src[i]);
		return;
	}

	while (p < end) {
		const char *f, *q;
		size_t step;
		gunichar u;

		if ((unsigned char)*p < 0x80) {
			/* NUL is dropped, so it separates nothing: what is
			 * around it may still combine. */
			if (*p != '\0') {
				safe_src = p;
				safe_out = out->len;
				safe_space = *space;
			}
			fold_emit_ascii(out, space, (unsigned char)*p);
			p++;
			continue;
		}
		u = fold_decode(p, end, &step);
		if ((f = fold_char(u)) != NULL) {
			safe_src = p;
			safe_out = out->len;
			safe_space = *space;
			fold_emit_folded(out, space, f);
			p += step;
			continue;
		}
		/* A stretch that may combine: from the last safe character
		 * (its output taken back) to the next safe one, by GLib. */
		for (q = p + step; q < end; q += step) {
			if (*q == '\0') {
				step = 1;
				continue;
			}
			if ((unsigned char)*q < 0x80 ||
			    fold_char(fold_decode(q, end, &step)) != NULL)
				break;
		}
		out->len = safe_out;
		*space = safe_space;
		scratch->len = 0;
		fold_sanitize(scratch, safe_src, (size_t)(q - safe_src));
		fold_glib(out, space, scratch->data, scratch->len);
		p = q;
		/* The stretch may grow on: the next unsafe character goes
		 * back to a safe one after this point, never before it. */
		safe_src = p;
		safe_out = out->len;
		safe_space = *space;
	}
}

/* fold_string - the folded form of a whole NUL-terminated string, as a new
 * xmalloc'd string (caller frees); *len_out gets its length. */
static char *
fold_string(const char *s, size_t *len_out)
{
	struct buf out = { NULL, 0, 0 };
	struct buf scratch = { NULL, 0, 0 };
	bool space = false;
	char *res;

	fold_text(&out, &space, s, strlen(s), &scratch);
	buf_free(&scratch);
	res = xstrndup(out.data != NULL ? out.data : "", out.len);
	*len_out = out.len;
	buf_free(&out);
	return res;
}

/*==== HTML character references ====*/

/*
 * A text/html part is shown with its character references decoded, so
 * "v&#105;agra" reads "viagra": they are decoded before folding, as the
 * HTML5 tokeniser does in text.  Streaming, byte by byte at a '&' (the
 * text between is copied with memchr), with at most HTML_HELD_MAX bytes
 * held between pieces; the output is never longer than the input (every
 * reference is at least as long as the UTF-8 it stands for, and bytes
 * that turn out not to be one are copied as they were).
 *  - Numeric: "&#" decimal digits or "&#x" hex digits, any number of
 *    them (the value saturates), the ';' optional.  0, surrogates and
 *    values past U+10FFFF give U+FFFD; 0x80-0x9F the Windows-1252
 *    character, as browsers do.
 *  - Named: the table below (ASCII punctuation, Latin-1, spaces,
 *    invisible characters, quotation marks) and the 156 mathematical
 *    letters (&afr; &aopf; &ascr; ...), decoded to the plain letter their
 *    fold gives anyway.  The Latin-1 names and amp/lt/gt/quot are also
 *    read without ';' (HTML5's legacy rule: the longest that matches, the
 *    rest copied).  An unknown name is copied as it is.
 * Tags and comments are left in place: "v<b></b>iagra" is not matched.
 */

/* Longest name held after '&' (the longest in the table is 21). */
#define HTML_NAME_MAX 32
/* Longest name also read without ';' ("frac14", "iquest", "Agrave"). */
#define HTML_LEGACY_NAME_MAX 6
#define HTML_HELD_MAX (HTML_NAME_MAX + 1)	/* '&' and the name */

enum html_state {
	HTML_TEXT,      /* ordinary text                               */
	HTML_AMP,       /* after '&'                                   */
	HTML_NAME,      /* in the letters and digits of "&name"        */
	HTML_HASH,      /* after "&#"                                  */
	HTML_HEX_X,     /* after "&#x"                                 */
	HTML_DECIMAL,   /* in the digits of "&#105"                    */
	HTML_HEX,       /* in the digits of "&#x69"                    */
};

struct html_refs {
	enum html_state state;
	char held[HTML_HELD_MAX];   /* the reference's bytes so far        */
	size_t held_len;
	uint32_t value;             /* numeric value, saturated at 0x110000 */
};

/* The HTML 4 Latin-1 names, U+00A0 to U+00FF in order (all legacy). */
static const char *const html_latin1[96] = {
	"nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect",
	"uml", "copy", "ordf", "laquo", "not", "shy", "reg", "macr",
	"deg", "plusmn", "sup2", "sup3", "acute", "micro", "para", "middot",
	"cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34",
	"iquest", "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring",
	"AElig", "Ccedil", "Egrave", "Eacute", "Ecirc", "Euml", "Igrave",
	"Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute",
	"Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute",
	"Ucirc", "Uuml", "Yacute", "THORN", "szlig", "agrave", "aacute",
	"acirc", "atilde", "auml", "aring", "aelig", "ccedil", "egrave",
	"eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth",
	"ntilde", "ograve", "oacute", "ocirc", "otilde", "ouml", "divide",
	"oslash", "ugrave", "uacute", "ucirc", "uuml", "yacute", "thorn",
	"yuml",
};

struct html_name {
	const char *name;
	gunichar u;
	bool legacy;    /* also recognised without ';' */
};

static const struct html_name html_names[] = {
	{ "amp", '&', true }, { "AMP", '&', true }, { "lt", '<', true },
	{ "LT", '<', true }, { "gt", '>', true }, { "GT", '>', true },
	{ "quot", '"', true }, { "QUOT", '"', true },
	{ "apos", '\'', false }, { "Tab", '\t', false },
	{ "NewLine", '\n', false }, { "excl", '!', false },
	{ "num", '#', false }, { "dollar", '$', false },
	{ "percnt", '%', false }, { "lpar", '(', false },
	{ "rpar", ')', false }, { "ast", '*', false }, { "plus", '+', false },
	{ "comma", ',', false }, { "period", '.', false },
	{ "sol", '/', false }, { "colon", ':', false }, { "semi", ';', false },
	{ "equals", '=', false }, { "quest", '?', false },
	{ "commat", '@', false }, { "lsqb", '[', false },
	{ "lbrack", '[', false }, { "bsol", '\\', false },
	{ "rsqb", ']', false }, { "rbrack", ']', false },
	{ "Hat", '^', false }, { "lowbar", '_', false },
	{ "UnderBar", '_', false }, { "grave", '`', false },
	{ "DiacriticalGrave", '`', false }, { "lcub", '{', false },
	{ "lbrace", '{', false }, { "verbar", '|', false },
	{ "vert", '|', false }, { "VerticalLine", '|', false },
	{ "rcub", '}', false }, { "rbrace", '}', false },
	{ "NonBreakingSpace", 0x00A0, false },
	{ "ensp", 0x2002, false }, { "emsp", 0x2003, false },
	{ "emsp13", 0x2004, false }, { "emsp14", 0x2005, false },
	{ "numsp", 0x2007, false }, { "puncsp", 0x2008, false },
	{ "thinsp", 0x2009, false }, { "ThinSpace", 0x2009, false },
	{ "hairsp", 0x200A, false }, { "VeryThinSpace", 0x200A, false },
	{ "ZeroWidthSpace", 0x200B, false },
	{ "NegativeVeryThinSpace", 0x200B, false },
	{ "NegativeThinSpace", 0x200B, false },
	{ "NegativeMediumSpace", 0x200B, false },
	{ "NegativeThickSpace", 0x200B, false },
	{ "zwnj", 0x200C, false }, { "zwj", 0x200D, false },
	{ "lrm", 0x200E, false }, { "rlm", 0x200F, false },
	{ "hyphen", 0x2010, false }, { "dash", 0x2010, false },
	{ "ndash", 0x2013, false }, { "mdash", 0x2014, false },
	{ "lsquo", 0x2018, false }, { "rsquo", 0x2019, false },
	{ "sbquo", 0x201A, false }, { "ldquo", 0x201C, false },
	{ "rdquo", 0x201D, false }, { "bdquo", 0x201E, false },
	{ "bull", 0x2022, false }, { "hellip", 0x2026, false },
	{ "MediumSpace", 0x205F, false }, { "NoBreak", 0x2060, false },
	{ "af", 0x2061, false }, { "ApplyFunction", 0x2061, false },
	{ "it", 0x2062, false }, { "InvisibleTimes", 0x2062, false },
	{ "ic", 0x2063, false }, { "InvisibleComma", 0x2063, false },
	{ "euro", 0x20AC, false }, { "trade", 0x2122, false },
};

/* Windows-1252 for the C1 range, which browsers use for &#128; to &#159;. */
static const uint16_t html_c1[32] = {
	0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
	0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

/* html_enter - the one place the decoder's state changes. */
static void
html_enter(struct html_refs *h, enum html_state next)
{
	h->state = next;
}

/* html_emit - append code point u as UTF-8, the way a browser reads a
 * numeric reference to it. */
static void
html_emit(struct buf *out, uint32_t u)
{
	char utf8[8];

	if (u == 0 || u > 0x10FFFF || (u >= 0xD800 && u <= 0xDFFF))
		u = 0xFFFD;
	else if (u >= 0x80 && u <= 0x9F)
		u = html_c1[u - 0x80];
	buf_put(out, utf8, (size_t)g_unichar_to_utf8((gunichar)u, utf8));
}

/* html_is_name - is entry the name name[0..len)?  The first byte is
 * compared first: most entries differ there. */
static bool
html_is_name(const char *entry, const char *name, size_t len)
{
	return entry[0] == name[0] && strncmp(entry, name, len) == 0 &&
	    entry[len] == '\0';
}

/* html_lookup - the character named name[0..len) (len >= 1), or -1; with
 * legacy only the names also recognised without ';'. */
static long
html_lookup(const char *name, size_t len, bool legacy)
{
	size_t i;

	for (i = 0; i < sizeof(html_names) / sizeof(html_names[0]); i++)
		if ((html_names[i].legacy || !legacy) &&
		    html_is_name(html_names[i].name, name, len))
			return (long)html_names[i].u;
	for (i = 0; i < sizeof(html_latin1) / sizeof(html_latin1[0]); i++)
		if (html_is_name(html_latin1[i], name, len))
			return (long)(0xA0 + i);
	/* &afr; &aopf; &ascr;: mathematical letters, which fold to the
	 * letter itself. */
	if (!legacy && len >= 3 && g_ascii_isalpha(name[0]) &&
	    ((len == 3 && memcmp(name + 1, "fr", 2) == 0) ||
	    (len == 4 && (memcmp(name + 1, "opf", 3) == 0 ||
	    memcmp(name + 1, "scr", 3) == 0))))
		return (unsigned char)name[0];
	return -1;
}

/* html_copy_held - the held bytes were no reference: copy them. */
static void
html_copy_held(struct html_refs *h, struct buf *out)
{
	buf_put(out, h->held, h->held_len);
	h->held_len = 0;
	html_enter(h, HTML_TEXT);
}

/* html_name_end - the name held after '&' ended (with ';' when
 * semicolon, which is then consumed): decode it whole, or its longest
 * legacy prefix and copy the rest, or copy it all.  Returns whether the
 * ';' was used. */
static bool
html_name_end(struct html_refs *h, struct buf *out, bool semicolon)
{
	const char *name = h->held + 1;
	size_t len = h->held_len - 1, n;
	long u;

	if (semicolon && (u = html_lookup(name, len, false)) >= 0) {
		html_emit(out, (uint32_t)u);
		h->held_len = 0;
		html_enter(h, HTML_TEXT);
		return true;
	}
	/* Only a prefix as long as a legacy name can be one: a long run
	 * of name letters costs 5 lookups, not 31. */
	for (n = len < HTML_LEGACY_NAME_MAX ? len : HTML_LEGACY_NAME_MAX;
	    n >= 2; n--) {
		if ((u = html_lookup(name, n, true)) >= 0) {
			html_emit(out, (uint32_t)u);
			buf_put(out, name + n, len - n);
			h->held_len = 0;
			html_enter(h, HTML_TEXT);
			return false;
		}
	}
	html_copy_held(h, out);
	return false;
}

/* html_number_end - a numeric reference ended: emit its character. */
static void
html_number_end(struct html_refs *h, struct buf *out)
{
	html_emit(out, h->value);
	h->held_len = 0;
	html_enter(h, HTML_TEXT);
}

/* html_digit - add one digit to the value, saturating past U+10FFFF. */
static void
html_digit(struct html_refs *h, unsigned base, unsigned digit)
{
	h->value = h->value > 0x10FFFF ? 0x110000 : h->value * base + digit;
	if (h->value > 0x10FFFF)
		h->value = 0x110000;
}

/* html_hold - keep one byte of a possible reference. */
static void
html_hold(struct html_refs *h, char c)
{
	h->held[h->held_len++] = c;
}

/* html_feed - decode the references in p[0..len) into out; a reference
 * cut at the end is held for the next call (or html_end). */
static void
html_feed(struct html_refs *h, const char *p, size_t len, struct buf *out)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)p[i];
		const char *amp;
		size_t n;

		switch (h->state) {
		case HTML_TEXT:
			amp = memchr(p + i, '&', len - i);
			n = amp != NULL ? (size_t)(amp - (p + i)) : len - i;
			buf_put(out, p + i, n);
			i += n;
			if (amp != NULL) {
				h->held_len = 0;
				html_hold(h, '&');
				html_enter(h, HTML_AMP);
				i++;
			}
			break;
		case HTML_AMP:
			if (c == '#') {
				html_hold(h, '#');
				html_enter(h, HTML_HASH);
				i++;
			} else if (g_ascii_isalnum(c)) {
				html_hold(h, (char)c);
				html_enter(h, HTML_NAME);
				i++;
			} else {
				html_copy_held(h, out);	/* c read as text */
			}
			break;
		case HTML_NAME:
			if (g_ascii_isalnum(c) && h->held_len < HTML_HELD_MAX) {
				html_hold(h, (char)c);
				i++;
			} else if (html_name_end(h, out, c == ';')) {
				i++;	/* the ';' belonged to the reference */
			}
			break;
		case HTML_HASH:
			if (c == 'x' || c == 'X') {
				html_hold(h, (char)c);
				html_enter(h, HTML_HEX_X);
				i++;
			} else if (g_ascii_isdigit(c)) {
				h->value = 0;
				html_digit(h, 10, c - '0');
				html_enter(h, HTML_DECIMAL);
				i++;
			} else {
				html_copy_held(h, out);
			}
			break;
		case HTML_HEX_X:
			if (g_ascii_isxdigit(c)) {
				h->value = 0;
				html_digit(h, 16, (unsigned)g_ascii_xdigit_value(c));
				html_enter(h, HTML_HEX);
				i++;
			} else {
				html_copy_held(h, out);
			}
			break;
		case HTML_DECIMAL:
		case HTML_HEX:
			if (h->state == HTML_DECIMAL && g_ascii_isdigit(c)) {
				html_digit(h, 10, c - '0');
				i++;
			} else if (h->state == HTML_HEX && g_ascii_isxdigit(c)) {
				html_digit(h, 16, (unsigned)g_ascii_xdigit_value(c));
				i++;
			} else {
				if (c == ';')
					i++;
				html_number_end(h, out);
			}
			break;
		}
	}
}

/* html_end - the text ended: finish or copy what is held. */
static void
html_end(struct html_refs *h, struct buf *out)
{
	switch (h->state) {
	case HTML_TEXT:
		break;
	case HTML_NAME:
		html_name_end(h, out, false);
		break;
	case HTML_DECIMAL:
	case HTML_HEX:
		html_number_end(h, out);
		break;
	case HTML_AMP:
	case HTML_HASH:
	case HTML_HEX_X:
		html_copy_held(h, out);
		break;
	}
	h->held_len = 0;
	html_enter(h, HTML_TEXT);
}

/* content_scan_html_decode - html_feed over pieces, then html_end; see
 * content_scan.h (for tests: the scanner calls html_feed itself). */
size_t
content_scan_html_decode(const char *const *piece, const size_t *len,
    size_t npieces, char *out, size_t size)
{
	struct html_refs h = { .state = HTML_TEXT };
	struct buf b = { 0 };
	size_t n;

	for (size_t i = 0; i < npieces; i++)
		html_feed(&h, piece[i], len[i], &b);
	html_end(&h, &b);
	n = b.len;
	if (size > 0) {
		size_t c = n < size - 1 ? n : size - 1;

		if (c > 0)
			memcpy(out, b.data, c);
		out[c] = '\0';
	}
	buf_free(&b);
	return n;
}

/*==== uuencode, base64 and yEnc blocks inside text ====*/

/*
 * Mail clients turn a block in a text body that starts with a line
 * "begin 644 name" (uuencode), "begin-base64 644 name" or
 * "=ybegin ... name=name" (yEnc) into an attachment saved under that
 * name, so those names are checked against the prohibited extensions
 * like MIME file names.  Only at a line start: "begin" or
 * "begin-base64", blanks, 1 to 4 octal digits, blanks, the name (the rest
 * of the line); or "=ybegin " and, as its last keyword, " name=" and the
 * name (the rest of the line: yEnc allows blanks in it).  "begin" in
 * prose ("begin the setup.exe download") has no mode and is not one.
 * Other lines are skipped with memchr.  The words before a name are
 * looked for in the first BEGIN_UU_PREFIX_MAX bytes of a uuencode line
 * and the first BEGIN_PREFIX_MAX of a yEnc one (each byte costs at most
 * a re-read of that prefix), and the last BEGIN_NAME_MAX bytes of a name
 * are kept (the end of a name is where its extension is).
 */
#define BEGIN_UU_PREFIX_MAX 32
#define BEGIN_PREFIX_MAX 256
#define BEGIN_NAME_MAX 4096

enum begin_state {
	BEGIN_LINE_START,   /* next byte starts a line                     */
	BEGIN_PREFIX,       /* collecting the line start                   */
	BEGIN_NAME,         /* a begin line: collecting its name           */
	BEGIN_SKIP,         /* rest of an uninteresting line               */
};

struct begin_lines {
	enum begin_state state;
	char prefix[BEGIN_PREFIX_MAX];
	size_t prefix_len;
	struct buf name;
};

/* What the line start collected so far is. */
enum begin_verdict {
	BEGIN_MORE,         /* could still be a begin line                 */
	BEGIN_NOT,          /* is not one                                  */
	BEGIN_NAMED,        /* is one; its name starts at *start           */
};

/* begin_enter - the one place the detector's state changes. */
static void
begin_enter(struct begin_lines *b, enum begin_state next)
{
	b->state = next;
}

/* begin_is_blank - a blank between the words of a begin line. */
static bool
begin_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* begin_literal - is s[0..len) a prefix of lit (or lit one of s)?
 * *matched gets how much of lit it covers. */
static bool
begin_literal(const char *s, size_t len, const char *lit, size_t *matched)
{
	size_t n = strlen(lit);

	*matched = len < n ? len : n;
	return memcmp(s, lit, *matched) == 0;
}

/* begin_classify - judge the line start b->prefix[0..prefix_len), which
 * was BEGIN_MORE one byte ago. */
static enum begin_verdict
begin_classify(const struct begin_lines *b, size_t *start)
{
	const char *s = b->prefix;
	size_t len = b->prefix_len, m, i, digits = 0;

	if (len > 0 && s[0] == '=') {
		if (!begin_literal(s, len, "=ybegin ", &m))
			return BEGIN_NOT;
		if (m < 8 || len < 13 ||
		    memcmp(s + len - 6, " name=", 6) != 0)
			return BEGIN_MORE;
		*start = len;
		return BEGIN_NAMED;
	}
	if (len > BEGIN_UU_PREFIX_MAX || !begin_literal(s, len, "begin", &m))
		return BEGIN_NOT;
	if (m < 5 || len == 5)
		return BEGIN_MORE;
	i = 5;
	if (s[i] == '-') {
		if (!begin_literal(s + i, len - i, "-base64", &m))
			return BEGIN_NOT;
		if (m < 7 || len == i + 7)
			return BEGIN_MORE;
		i += 7;
	}
	if (!begin_is_blank(s[i]))
		return BEGIN_NOT;
	while (i < len && begin_is_blank(s[i]))
		i++;
	while (i < len && s[i] >= '0' && s[i] <= '7' && digits < 4) {
		i++;
		digits++;
	}
	if (i == len)
		return BEGIN_MORE;
	if (digits == 0 || !begin_is_blank(s[i]))
		return BEGIN_NOT;
	while (i < len && begin_is_blank(s[i]))
		i++;
	if (i == len)
		return BEGIN_MORE;
	*start = i;
	return BEGIN_NAMED;
}

/* begin_name_put - append to the name, keeping only its last
 * BEGIN_NAME_MAX bytes. */
static void
begin_name_put(struct begin_lines *b, const char *p, size_t n)
{
	if (n >= BEGIN_NAME_MAX) {
		b->name.len = 0;
		buf_put(&b->name, p + n - BEGIN_NAME_MAX, BEGIN_NAME_MAX);
		return;
	}
	buf_put(&b->name, p, n);
	if (b->name.len > BEGIN_NAME_MAX)
		buf_consume(&b->name, b->name.len - BEGIN_NAME_MAX);
}

/* begin_name_done - the begin line ended: terminate its name (without a
 * trailing CR).  Returns whether there is a name to check. */
static bool
begin_name_done(struct begin_lines *b)
{
	if (b->name.len > 0 && b->name.data[b->name.len - 1] == '\r')
		b->name.len--;
	buf_putc(&b->name, '\0');
	b->name.len--;
	begin_enter(b, BEGIN_LINE_START);
	return b->name.len > 0;
}

/* begin_feed - run p[0..len) through the line detector.  Stops after a
 * begin line's end and returns true, its name (NUL-terminated) in
 * b->name; *used gets the bytes consumed. */
static bool
begin_feed(struct begin_lines *b, const char *p, size_t len, size_t *used)
{
	size_t i = 0, start = 0;

	while (i < len) {
		const char *nl;
		size_t n;
		char c;

		switch (b->state) {
		case BEGIN_LINE_START:
			b->prefix_len = 0;
			begin_enter(b, BEGIN_PREFIX);
			break;
		case BEGIN_PREFIX:
			c = p[i++];
			if (c == '\n') {
				begin_enter(b, BEGIN_LINE_START);
				break;
			}
			b->prefix[b->prefix_len++] = c;
			switch (begin_classify(b, &start)) {
			case BEGIN_NOT:
				begin_enter(b, BEGIN_SKIP);
				break;
			case BEGIN_NAMED:
				b->name.len = 0;
				begin_name_put(b, b->prefix + start,
				    b->prefix_len - start);
				begin_enter(b, BEGIN_NAME);
				break;
			case BEGIN_MORE:
				if (b->prefix_len == BEGIN_PREFIX_MAX)
					begin_enter(b, BEGIN_SKIP);
				break;
			}
			break;
		case BEGIN_NAME:
			nl = memchr(p + i, '\n', len - i);
			n = nl != NULL ? (size_t)(nl - (p + i)) : len - i;
			begin_name_put(b, p + i, n);
			i += n;
			if (nl != NULL) {
				*used = i + 1;
				return begin_name_done(b);
			}
			break;
		case BEGIN_SKIP:
			nl = memchr(p + i, '\n', len - i);
			if (nl == NULL) {
				i = len;
				break;
			}
			i = (size_t)(nl - p) + 1;
			begin_enter(b, BEGIN_LINE_START);
			break;
		}
	}
	*used = i;
	return false;
}

/* begin_end - the text ended: true when it ended inside a begin line's
 * name, then in b->name as begin_feed leaves it. */
static bool
begin_end(struct begin_lines *b)
{
	bool named = b->state == BEGIN_NAME && begin_name_done(b);

	begin_enter(b, BEGIN_LINE_START);
	return named;
}

/*==== rules ====*/

/* content_scan_rules_init - empty lists and the default limits. */
void
content_scan_rules_init(struct content_scan_rules *rules)
{
	memset(rules, 0, sizeof(*rules));
	rules->max_parts = CONTENT_SCAN_DEFAULT_MAX_PARTS;
	rules->max_depth = CONTENT_SCAN_DEFAULT_MAX_DEPTH;
	rules->max_part_bytes = CONTENT_SCAN_DEFAULT_MAX_PART_BYTES;
}

/* rules_check_item - the validation shared by keywords and extensions. */
static int
rules_check_item(const char *what, const char *s, struct error *err)
{
	size_t len;

	if (s == NULL || s[0] == '\0')
		return error_set(err, "%s: empty", what);
	len = strlen(s);
	if (len > CONTENT_SCAN_ITEM_MAX)
		return error_set(err, "%s: longer than %d bytes (%zu)", what,
		    CONTENT_SCAN_ITEM_MAX, len);
	if (!g_utf8_validate(s, (gssize)len, NULL))
		return error_set(err, "%s: not valid UTF-8", what);
	return 0;
}

/* rules_find - index of item in list, or -1. */
static long
rules_find(char *const *list, const size_t *lens, size_t count,
    const char *item, size_t len)
{
	size_t i;

	for (i = 0; i < count; i++)
		if (lens[i] == len && memcmp(list[i], item, len) == 0)
			return (long)i;
	return -1;
}

/* content_scan_rules_add_keyword - add one keyword (see the header). */
int
content_scan_rules_add_keyword(struct content_scan_rules *rules,
    const char *keyword, struct error *err)
{
	char *folded;
	size_t len;

	if (rules_check_item("prohibited keyword", keyword, err) == -1)
		return -1;
	folded = fold_string(keyword, &len);
	if (len == 0 || (len == 1 && folded[0] == ' ')) {
		free(folded);
		return error_set(err, "prohibited keyword: only white space "
		    "or invisible characters");
	}
	if (rules_find(rules->keywords, rules->keyword_lens,
	    rules->keyword_count, folded, len) >= 0) {
		free(folded);
		return 0;
	}
	rules->keywords = xrealloc(rules->keywords,
	    (rules->keyword_count + 1) * sizeof(*rules->keywords));
	rules->keyword_lens = xrealloc(rules->keyword_lens,
	    (rules->keyword_count + 1) * sizeof(*rules->keyword_lens));
	rules->keywords[rules->keyword_count] = folded;
	rules->keyword_lens[rules->keyword_count] = len;
	rules->keyword_count++;
	if (len > rules->keyword_max_len)
		rules->keyword_max_len = len;
	return 0;
}

/* content_scan_rules_add_extension - add one extension (see the header). */
int
content_scan_rules_add_extension(struct content_scan_rules *rules,
    const char *extension, struct error *err)
{
	char *folded;
	size_t len, i;

	if (rules_check_item("prohibited extension", extension, err) == -1)
		return -1;
	if (extension[0] == '.')
		extension++;
	if (extension[0] == '\0')
		return error_set(err, "prohibited extension: empty");
	folded = fold_string(extension, &len);
	for (i = 0; i < len; i++) {
		char c = folded[i];

		if (c == ' ' || c == '/' || c == '\\' || c == ':')
			break;
	}
	if (len == 0 || i < len || folded[len - 1] == '.' ||
	    folded[0] == '.') {
		char esc[CONTENT_SCAN_TEXT_MAX];

		free(folded);
		return error_set(err, "prohibited extension \"%s\": must be a "
		    "file name suffix such as \"exe\" or \".exe\" (no white "
		    "space, '/', '\\', ':' or surrounding dots)",
		    LOG_ESC(esc, extension));
	}
	if (rules_find(rules->extensions, rules->extension_lens,
	    rules->extension_count, folded, len) >= 0) {
		free(folded);
		return 0;
	}
	rules->extensions = xrealloc(rules->extensions,
	    (rules->extension_count + 1) * sizeof(*rules->extensions));
	rules->extension_lens = xrealloc(rules->extension_lens,
	    (rules->extension_count + 1) * sizeof(*rules->extension_lens));
	rules->extensions[rules->extension_count] = folded;
	rules->extension_lens[rules->extension_count] = len;
	rules->extension_count++;
	return 0;
}

/* content_scan_rules_free - release the lists; back to the init state. */
void
content_scan_rules_free(struct content_scan_rules *rules)
{
	size_t i;

	for (i = 0; i < rules->keyword_count; i++)
		free(rules->keywords[i]);
	for (i = 0; i < rules->extension_count; i++)
		free(rules->extensions[i]);
	free(rules->keywords);
	free(rules->keyword_lens);
	free(rules->extensions);
	free(rules->extension_lens);
	content_scan_rules_init(rules);
}

/* content_scan_kind_name - the kind as a word for logs. */
const char *
content_scan_kind_name(enum content_scan_kind kind)
{
	switch (kind) {
	case CONTENT_SCAN_NONE:
		return "none";
	case CONTENT_SCAN_KEYWORD:
		return "keyword";
	case CONTENT_SCAN_EXTENSION:
		return "extension";
	case CONTENT_SCAN_LIMIT:
		return "limit";
	}
	return "unknown";
}

/*==== GMime set-up ====*/

static bool scan_gmime_ready;
static GMimeParserOptions *scan_parser_options;
/* Parses one Content-Type header again to learn whether GMime found it
 * invalid: its warning callback sets scan_type_warned. */
static GMimeParserOptions *scan_type_options;
static bool scan_type_warned;

/* scan_type_warning - scan_type_options' warning callback. */
static void
scan_type_warning(gint64 offset, GMimeParserWarning code, const gchar *item,
    gpointer user_data)
{
	if (code == GMIME_WARN_INVALID_CONTENT_TYPE)
		scan_type_warned = true;
}

/* content_scan_init - initialise GMime and the parser options once. */
void
content_scan_init(void)
{
	/* Raw 8-bit header bytes that are not UTF-8 are most likely
	 * Windows-1252; GMime tries these in order when decoding them. */
	static const char *fallback[] = { "UTF-8", "windows-1252", NULL };

	if (scan_gmime_ready)
		return;
	g_mime_init();
	scan_parser_options = g_mime_parser_options_new();
	/* LOOSE: decode RFC 2047 words even where the RFC forbids them (in
	 * quoted strings, e.g. filename="=?UTF-8?Q?evil=2Eexe?="), as mail
	 * clients do: the name the user sees is the name we check. */
	g_mime_parser_options_set_rfc2047_compliance_mode(scan_parser_options,
	    GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_parameter_compliance_mode(scan_parser_options,
	    GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_fallback_charsets(scan_parser_options,
	    fallback);
	scan_type_options = g_mime_parser_options_new();
	g_mime_parser_options_set_warning_callback(scan_type_options,
	    scan_type_warning, NULL);
	scan_gmime_ready = true;
}

/*==== parse guard: bound GMime's work before it is done ====*/

/*
 * GMime builds every part, header and parameter of the message in memory,
 * with no limit of its own, at 100 to 200 times the input size for some
 * shapes (measured: 3.5 MB of empty parts took 650 MB; 5 MB of one-line
 * headers 490 MB; a 5 MB Content-Type with a million parameters 410 MB).
 * max_parts and max_depth are checked on the parsed tree, too late for
 * that.  So the bytes the parser reads pass through this small line
 * classifier first and the parser's stream ends early (EOF) once the
 * message has
 *  - more lines starting with "--" (boundary candidates: every part needs
 *    one) than GUARD_DASH_FACTOR * max_parts,
 *  - more headers (counted by GMime's header callback, exact) than
 *    GUARD_HEADER_FACTOR * max_parts, or
 *  - a Content-Type or Content-Disposition header (the ones whose
 *    parameters GMime parses) longer than GUARD_PARAM_HEADER_MAX bytes,
 *    or more of them in all than GUARD_PARAM_FACTOR * max_parts bytes,
 *    cut while it is being read so GMime never holds more of it.
 * A message cut that way is reported as a CONTENT_SCAN_LIMIT match: what
 * was not parsed was not scanned.  The counts are generous (a legitimate
 * message near them exceeds max_parts anyway), so a false limit needs
 * tens of thousands of "--" lines in a body.
 */
#define GUARD_DASH_FACTOR 20
#define GUARD_HEADER_FACTOR 50
#define GUARD_PARAM_HEADER_MAX (64 * 1024)
#define GUARD_PARAM_FACTOR 512
/* Longest line start kept to recognise a header name. */
#define GUARD_PREFIX_MAX 32

enum guard_state {
	GUARD_LINE_START,   /* next byte starts a line                     */
	GUARD_PREFIX,       /* collecting the line's first bytes           */
	GUARD_LINE,         /* rest of an uninteresting line               */
	GUARD_PARAM_HEADER, /* inside a Content-Type/-Disposition header,
	                       continuation lines included                 */
	GUARD_TRIPPED,      /* a limit was hit: the parser gets EOF        */
};

struct scan_guard {
	enum guard_state state;
	char prefix[GUARD_PREFIX_MAX];
	size_t prefix_len;
	bool param_header;     /* the last logical line is one to measure  */
	size_t param_len;      /* its bytes so far                         */
	size_t param_total;    /* bytes of all such headers so far         */
	size_t max_param_total;
	size_t dash_lines;
	size_t headers;
	size_t max_dash_lines;
	size_t max_headers;
	gint64 fed;            /* stream offset up to which bytes were fed */
	const char *limit;     /* the limit hit, for the match             */
	size_t limit_value;
};

/* guard_state_name - the state as a word, for debugging logs. */
static const char *
guard_state_name(enum guard_state state)
{
	switch (state) {
	case GUARD_LINE_START:
		return "line-start";
	case GUARD_PREFIX:
		return "prefix";
	case GUARD_LINE:
		return "line";
	case GUARD_PARAM_HEADER:
		return "param-header";
	case GUARD_TRIPPED:
		return "tripped";
	}
	return "unknown";
}

/* guard_enter - the one place the guard's state changes. */
static void
guard_enter(struct scan_guard *g, enum guard_state next)
{
	if (g->state == GUARD_TRIPPED)
		return;		/* final */
	if (next == GUARD_TRIPPED)
		log_debug("content scan: parse guard %s -> %s (%s %zu)",
		    guard_state_name(g->state), guard_state_name(next),
		    g->limit, g->limit_value);
	g->state = next;
}

/* guard_trip - stop the parse: limit name and value go to the match. */
static void
guard_trip(struct scan_guard *g, const char *limit, size_t value)
{
	if (g->state == GUARD_TRIPPED)
		return;
	g->limit = limit;
	g->limit_value = value;
	guard_enter(g, GUARD_TRIPPED);
}

/* guard_is_param_header - is the collected line start "Content-Type:" or
 * "Content-Disposition:" (any case, blanks allowed before the colon)? */
static bool
guard_is_param_header(const struct scan_guard *g)
{
	size_t n = g->prefix_len;

	if (n == 0 || g->prefix[n - 1] != ':')
		return false;
	n--;
	while (n > 0 && (g->prefix[n - 1] == ' ' || g->prefix[n - 1] == '\t'))
		n--;
	return (n == 12 && strncasecmp(g->prefix, "content-type", 12) == 0) ||
	    (n == 19 && strncasecmp(g->prefix, "content-disposition", 19) == 0);
}

/* guard_classify - the line start is known: count a "--" line, or start
 * measuring a parameter header; the rest of the line is then skipped. */
static void
guard_classify(struct scan_guard *g)
{
	if (g->prefix_len >= 2 && g->prefix[0] == '-' && g->prefix[1] == '-') {
		if (++g->dash_lines > g->max_dash_lines) {
			guard_trip(g, "max_boundary_lines", g->max_dash_lines);
			return;
		}
	} else if (guard_is_param_header(g)) {
		g->param_header = true;
		g->param_len = g->prefix_len;
		g->param_total += g->prefix_len;
		guard_enter(g, GUARD_PARAM_HEADER);
		return;
	}
	g->param_header = false;
	guard_enter(g, GUARD_LINE);
}

/* guard_feed - run the bytes the parser is about to get through the
 * classifier.  Lines are skipped with memchr; only line starts are looked
 * at byte by byte. */
static void
guard_feed(struct scan_guard *g, const char *buf, size_t len)
{
	size_t i = 0;

	while (i < len && g->state != GUARD_TRIPPED) {
		const char *nl;
		size_t n;
		char c;

		switch (g->state) {
		case GUARD_LINE_START:
			c = buf[i];
			if (g->param_header && (c == ' ' || c == '\t')) {
				/* a continuation of the measured header */
				guard_enter(g, GUARD_PARAM_HEADER);
				break;
			}
			g->param_header = false;
			g->prefix_len = 0;
			guard_enter(g, GUARD_PREFIX);
			break;
		case GUARD_PREFIX:
			c = buf[i];
			if (c == '\n') {
				guard_classify(g);
				break;	/* the line state consumes the '\n' */
			}
			g->prefix[g->prefix_len++] = c;
			i++;
			if (c == ':' || g->prefix_len == GUARD_PREFIX_MAX ||
			    (g->prefix_len == 2 && g->prefix[0] == '-' &&
			    c == '-'))
				guard_classify(g);
			break;
		case GUARD_LINE:
		case GUARD_PARAM_HEADER:
			nl = memchr(buf + i, '\n', len - i);
			n = nl != NULL ? (size_t)(nl - (buf + i)) + 1 : len - i;
			i += n;
			if (g->state == GUARD_PARAM_HEADER) {
				g->param_len += n;
				g->param_total += n;
				if (g->param_len > GUARD_PARAM_HEADER_MAX) {
					guard_trip(g, "max_param_header_bytes",
					    GUARD_PARAM_HEADER_MAX);
					break;
				}
				if (g->param_total > g->max_param_total) {
					guard_trip(g, "max_param_headers_total",
					    g->max_param_total);
					break;
				}
			}
			if (nl != NULL)
				guard_enter(g, GUARD_LINE_START);
			break;
		case GUARD_TRIPPED:
			break;
		}
	}
}

/* guard_header_seen - GMime's header callback: one more header parsed. */
static void
guard_header_seen(GMimeParser *parser, const char *header, const char *value,
    gint64 offset, gpointer user_data)
{
	struct scan_guard *g = user_data;

	if (++g->headers > g->max_headers)
		guard_trip(g, "max_headers", g->max_headers);
}

/*==== a GMimeStream that reads with pread(2) ====*/

/* Shared by a stream and all its substreams (the parser keeps part
 * contents as substreams): the descriptor and the first read failure,
 * checked once the scan is over so that a failed read is never "clean". */
struct scan_io {
	int fd;
	unsigned refs;
	int error;          /* errno of the first failed pread, 0 if none  */
	bool shrank;        /* the file ended before its size at the start */
	gint64 size;        /* st_size when the scan started               */
	struct scan_guard *guard; /* watches the parser's own stream       */
};

struct scan_stream {
	GMimeStream parent_object;
	struct scan_io *io;
	gboolean eos;
	bool parser_stream;  /* the one the parser reads: guarded */
};

struct scan_stream_class {
	GMimeStreamClass parent_class;
};

static GObjectClass *scan_stream_parent_class;

static GType scan_stream_get_type(void);

/* scan_io_unref - drop one reference; free on the last. */
static void
scan_io_unref(struct scan_io *io)
{
	if (io != NULL && --io->refs == 0)
		free(io);
}

/* scan_stream_new - a stream over io reading [start, end). */
static GMimeStream *
scan_stream_new(struct scan_io *io, gint64 start, gint64 end)
{
	struct scan_stream *ss;

	ss = g_object_new(scan_stream_get_type(), NULL);
	ss->io = io;
	io->refs++;
	ss->eos = FALSE;
	ss->parser_stream = false;
	g_mime_stream_construct(GMIME_STREAM(ss), start,
	    end == -1 || end > io->size ? io->size : end);
	return GMIME_STREAM(ss);
}

/* scan_stream_read - pread at the stream's own position; never lseek. */
static ssize_t
scan_stream_read(GMimeStream *stream, char *buf, size_t len)
{
	struct scan_stream *ss = (struct scan_stream *)stream;
	gint64 left = stream->bound_end - stream->position;
	ssize_t n;

	if (left <= 0 || (ss->parser_stream && ss->io->guard != NULL &&
	    ss->io->guard->state == GUARD_TRIPPED)) {
		ss->eos = TRUE;
		return 0;
	}
	if ((gint64)len > left)
		len = (size_t)left;
	do {
		n = pread(ss->io->fd, buf, len, (off_t)stream->position);
	} while (n == -1 && errno == EINTR);
	if (n == -1) {
		if (ss->io->error == 0)
			ss->io->error = errno != 0 ? errno : EIO;
		return -1;
	}
	if (n == 0) {
		/* Shorter than when we started: what is missing was not
		 * scanned, so the scan must not pass as complete. */
		ss->io->shrank = true;
		ss->eos = TRUE;
		return 0;
	}
	if (ss->parser_stream && ss->io->guard != NULL) {
		struct scan_guard *g = ss->io->guard;
		gint64 end = stream->position + n;

		/* Only bytes not seen yet: a re-read must not count twice. */
		if (end > g->fed) {
			gint64 from = g->fed > stream->position ?
			    g->fed : stream->position;

			guard_feed(g, buf + (from - stream->position),
			    (size_t)(end - from));
			g->fed = end;
		}
	}
	stream->position += n;
	return n;
}

/* scan_stream_write - the stream is read-only. */
static ssize_t
scan_stream_write(GMimeStream *stream, const char *buf, size_t len)
{
	errno = EBADF;
	return -1;
}

/* scan_stream_flush - nothing to flush. */
static int
scan_stream_flush(GMimeStream *stream)
{
	return 0;
}

/* scan_stream_close - the descriptor belongs to the caller: not closed. */
static int
scan_stream_close(GMimeStream *stream)
{
	return 0;
}

/* scan_stream_eos - at or past the end bound. */
static gboolean
scan_stream_eos(GMimeStream *stream)
{
	struct scan_stream *ss = (struct scan_stream *)stream;

	return ss->eos || stream->position >= stream->bound_end;
}

/* scan_stream_reset - back to the start bound. */
static int
scan_stream_reset(GMimeStream *stream)
{
	struct scan_stream *ss = (struct scan_stream *)stream;

	stream->position = stream->bound_start;
	ss->eos = FALSE;
	return 0;
}

/* scan_stream_seek - move our own position (no system call). */
static gint64
scan_stream_seek(GMimeStream *stream, gint64 offset, GMimeSeekWhence whence)
{
	struct scan_stream *ss = (struct scan_stream *)stream;
	gint64 real;

	switch (whence) {
	case GMIME_STREAM_SEEK_SET:
		real = offset;
		break;
	case GMIME_STREAM_SEEK_CUR:
		real = stream->position + offset;
		break;
	case GMIME_STREAM_SEEK_END:
		real = stream->bound_end + offset;
		break;
	default:
		errno = EINVAL;
		return -1;
	}
	if (real < stream->bound_start || real > stream->bound_end) {
		errno = EINVAL;
		return -1;
	}
	stream->position = real;
	ss->eos = real >= stream->bound_end;
	return real;
}

/* scan_stream_tell - the current position. */
static gint64
scan_stream_tell(GMimeStream *stream)
{
	return stream->position;
}

/* scan_stream_length - bytes between the bounds. */
static gint64
scan_stream_length(GMimeStream *stream)
{
	return stream->bound_end - stream->bound_start;
}

/* scan_stream_substream - a window of the same file (parts' contents). */
static GMimeStream *
scan_stream_substream(GMimeStream *stream, gint64 start, gint64 end)
{
	return scan_stream_new(((struct scan_stream *)stream)->io, start, end);
}

/* scan_stream_finalize - drop the shared io reference. */
static void
scan_stream_finalize(GObject *object)
{
	struct scan_stream *ss = (struct scan_stream *)object;

	scan_io_unref(ss->io);
	ss->io = NULL;
	scan_stream_parent_class->finalize(object);
}

/* scan_stream_class_init - fill the GMimeStream virtual table. */
static void
scan_stream_class_init(gpointer klass, gpointer class_data)
{
	GMimeStreamClass *stream_class = GMIME_STREAM_CLASS(klass);
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	scan_stream_parent_class = g_type_class_peek_parent(klass);
	object_class->finalize = scan_stream_finalize;
	stream_class->read = scan_stream_read;
	stream_class->write = scan_stream_write;
	stream_class->flush = scan_stream_flush;
	stream_class->close = scan_stream_close;
	stream_class->eos = scan_stream_eos;
	stream_class->reset = scan_stream_reset;
	stream_class->seek = scan_stream_seek;
	stream_class->tell = scan_stream_tell;
	stream_class->length = scan_stream_length;
	stream_class->substream = scan_stream_substream;
}

/* scan_stream_get_type - register the class once (static: GLib's
 * G_DEFINE_TYPE would export the symbol without our module prefix). */
static GType
scan_stream_get_type(void)
{
	static GType type;

	if (type == 0) {
		static const GTypeInfo info = {
			.class_size = sizeof(struct scan_stream_class),
			.class_init = scan_stream_class_init,
			.instance_size = sizeof(struct scan_stream),
		};

		type = g_type_register_static(GMIME_TYPE_STREAM,
		    "ElemtaContentScanStream", &info, 0);
	}
	return type;
}

/*==== the scan ====*/

struct scan {
	const struct content_scan_rules *rules;
	struct content_scan_match *match;
	struct scan_io *io;
	size_t max_parts;
	size_t max_depth;
	size_t max_part_bytes;
	size_t parts;               /* MIME objects visited so far      */
	struct scan_guard guard;    /* bounds the parse itself          */
	/* text state: one text (a Subject, a part) at a time */
	struct buf pending;         /* decoded bytes not folded yet     */
	struct buf window;          /* carried tail + folded text       */
	struct buf scratch;         /* fold_text working memory         */
	struct buf name;            /* folded file name                 */
	bool space;                 /* window ends in a (folded) space  */
	const char *hit;            /* folded keyword found, or NULL    */
	struct html_refs html;      /* references cut between pieces    */
	struct buf html_out;        /* a piece with references decoded  */
	struct begin_lines begin;   /* begin lines of a text body       */
	char *chunk;                /* SCAN_CHUNK read buffer           */
};

/* scan_found - record the first match; returns 1 ("stop, matched"). */
static int
scan_found(struct scan *sc, enum content_scan_kind kind, const char *item,
    size_t item_len, const char *where)
{
	struct content_scan_match *m = sc->match;

	m->found = 1;
	m->kind = kind;
	log_escape(m->item, sizeof(m->item), item, item_len);
	log_escape(m->where, sizeof(m->where), where,
	    where != NULL ? strlen(where) : 0);
	return 1;
}

/* scan_limit - the message is more complex than the limits allow. */
static int
scan_limit(struct scan *sc, const char *name, size_t limit)
{
	char item[64];

	snprintf(item, sizeof(item), "%s %zu", name, limit);
	log_info("content scan: message exceeds %s", item);
	return scan_found(sc, CONTENT_SCAN_LIMIT, item, strlen(item),
	    "MIME structure");
}

/* text_begin - start a new text: empty window, virtual leading space. */
static void
text_begin(struct scan *sc)
{
	sc->pending.len = 0;
	sc->window.len = 0;
	sc->space = false;
	sc->hit = NULL;
	fold_emit_ascii(&sc->window, &sc->space, ' ');
}

/* text_search - look for every keyword in the window, then keep only the
 * tail a keyword could still start in.  Returns 1 when one is found. */
static int
text_search(struct scan *sc)
{
	const struct content_scan_rules *r = sc->rules;
	size_t i, keep;

	for (i = 0; i < r->keyword_count; i++) {
		if (sc->window.len >= r->keyword_lens[i] &&
		    memmem(sc->window.data, sc->window.len, r->keywords[i],
		    r->keyword_lens[i]) != NULL) {
			sc->hit = r->keywords[i];
			return 1;
		}
	}
	keep = r->keyword_max_len > 0 ? r->keyword_max_len - 1 : 0;
	if (sc->window.len > keep)
		buf_consume(&sc->window, sc->window.len - keep);
	return 0;
}

/* text_cut - how many pending bytes can be folded now: up to (not
 * including) the last ASCII byte, which no multi-byte character and no
 * combining sequence can straddle.  Without one, wait, unless too much is
 * pending: then cut before the last character that cannot combine with
 * the one before it (or, failing that, at the last character start).
 * NUL does not count: it is dropped, so it separates nothing.  Only the
 * last SCAN_PENDING_MAX bytes are looked at, so a long run without a cut
 * costs linear time, not quadratic. */
static size_t
text_cut(const struct buf *p)
{
	if (p->len == 0)
		return 0;   /* data may still be NULL: no pointer arithmetic */
	const char *end = p->data + p->len;
	size_t floor = p->len > SCAN_PENDING_MAX ? p->len - SCAN_PENDING_MAX : 0;
	size_t i, step;

	for (i = p->len; i > floor; i--) {
		unsigned char c = (unsigned char)p->data[i - 1];

		if (c < 0x80 && c != '\0') {
			if (i - 1 > 0)
				return i - 1;
			break;
		}
	}
	if (p->len < SCAN_PENDING_MAX)
		return 0;
	for (i = p->len; i > floor && i > 1; i--) {
		const char *c = p->data + i - 1;
		gunichar u;

		if (*c == '\0' || ((unsigned char)*c & 0xC0) == 0x80)
			continue;
		/* A character whose last bytes have not arrived yet is not
		 * known: not a place to cut. */
		u = g_utf8_get_char_validated(c, end - c);
		if (u == (gunichar)-2)
			continue;
		if (fold_char(fold_decode(c, end, &step)) != NULL)
			return i - 1;
	}
	for (i = p->len; i > floor && i > 1; i--)
		if (((unsigned char)p->data[i - 1] & 0xC0) != 0x80)
			return i - 1;
	return p->len;
}

/* text_feed - add decoded bytes of the current text; returns 1 when a
 * keyword is found. */
static int
text_feed(struct scan *sc, const char *data, size_t len)
{
	size_t cut;

	buf_put(&sc->pending, data, len);
	cut = text_cut(&sc->pending);
	if (cut == 0)
		return 0;
	fold_text(&sc->window, &sc->space, sc->pending.data, cut, &sc->scratch);
	buf_consume(&sc->pending, cut);
	return text_search(sc);
}

/* text_end - fold what is pending plus the virtual trailing space and
 * search a last time; returns 1 when a keyword is found. */
static int
text_end(struct scan *sc)
{
	if (sc->pending.len > 0)
		fold_text(&sc->window, &sc->space, sc->pending.data,
		    sc->pending.len, &sc->scratch);
	sc->pending.len = 0;
	fold_emit_ascii(&sc->window, &sc->space, ' ');
	return text_search(sc);
}

/* How a text is read. */
enum text_kind {
	TEXT_HEADER,    /* a header value: keywords only               */
	TEXT_BODY,      /* a body: keywords, and begin lines' names    */
	TEXT_HTML,      /* an HTML body: references decoded, keywords  */
	TEXT_NAMES,     /* encoded content: begin lines' names only    */
};

static int scan_file_name(struct scan *sc, const char *name);

/* text_start - start a new text: text_begin, and no reference or begin
 * line carried over. */
static void
text_start(struct scan *sc)
{
	text_begin(sc);
	sc->html.held_len = 0;
	html_enter(&sc->html, HTML_TEXT);
	begin_enter(&sc->begin, BEGIN_LINE_START);
}

/* text_begin_lines - check the name of every begin line in p[0..len);
 * returns 1 with the match recorded. */
static int
text_begin_lines(struct scan *sc, const char *p, size_t len)
{
	size_t used;

	while (len > 0) {
		if (begin_feed(&sc->begin, p, len, &used) &&
		    scan_file_name(sc, sc->begin.name.data) == 1)
			return 1;
		p += used;
		len -= used;
	}
	return 0;
}

/* text_keyword_found - record the keyword text_feed/text_end found. */
static int
text_keyword_found(struct scan *sc, const char *where)
{
	return scan_found(sc, CONTENT_SCAN_KEYWORD, sc->hit, strlen(sc->hit),
	    where);
}

/* text_piece - the next decoded bytes of the current text: a body's
 * begin lines are checked for names, then (an HTML body's references
 * decoded) the bytes are searched for keywords.  Returns 1 with the
 * match recorded, else 0. */
static int
text_piece(struct scan *sc, enum text_kind kind, const char *p, size_t len,
    const char *where)
{
	if ((kind == TEXT_BODY || kind == TEXT_NAMES) &&
	    sc->rules->extension_count > 0 &&
	    text_begin_lines(sc, p, len) == 1)
		return 1;
	if (kind == TEXT_NAMES || sc->rules->keyword_count == 0)
		return 0;
	if (kind == TEXT_HTML) {
		sc->html_out.len = 0;
		html_feed(&sc->html, p, len, &sc->html_out);
		p = sc->html_out.data;
		len = sc->html_out.len;
	}
	return text_feed(sc, p, len) == 1 ? text_keyword_found(sc, where) : 0;
}

/* text_finish - the current text ended: its last begin line, the
 * reference held at its end, the virtual trailing space.  Returns 1 with
 * the match recorded, else 0. */
static int
text_finish(struct scan *sc, enum text_kind kind, const char *where)
{
	if ((kind == TEXT_BODY || kind == TEXT_NAMES) &&
	    sc->rules->extension_count > 0 && begin_end(&sc->begin) &&
	    scan_file_name(sc, sc->begin.name.data) == 1)
		return 1;
	if (kind == TEXT_NAMES || sc->rules->keyword_count == 0)
		return 0;
	if (kind == TEXT_HTML) {
		sc->html_out.len = 0;
		html_end(&sc->html, &sc->html_out);
		if (text_feed(sc, sc->html_out.data, sc->html_out.len) == 1)
			return text_keyword_found(sc, where);
	}
	return text_end(sc) == 1 ? text_keyword_found(sc, where) : 0;
}

/* scan_string - search one complete string (a header value, a prologue);
 * returns 1 with the match recorded when something is in it. */
static int
scan_string(struct scan *sc, const char *s, enum text_kind kind,
    const char *where)
{
	int rc;

	text_start(sc);
	rc = text_piece(sc, kind, s, strlen(s), where);
	return rc != 0 ? rc : text_finish(sc, kind, where);
}

/* scan_stream_text - search the bytes of stream (already decoded) as one
 * text, at most max_part_bytes of them.  Returns 1 on a match, 0, or -1
 * when the underlying file could not be read. */
static int
scan_stream_text(struct scan *sc, GMimeStream *stream, enum text_kind kind,
    const char *where)
{
	size_t total = 0;
	bool cut = false;

	text_start(sc);
	for (;;) {
		ssize_t n = g_mime_stream_read(stream, sc->chunk, SCAN_CHUNK);
		size_t take;

		if (n <= 0)
			break;
		take = (size_t)n;
		if (take > sc->max_part_bytes - total) {
			take = sc->max_part_bytes - total;
			cut = true;
		}
		total += take;
		if (text_piece(sc, kind, sc->chunk, take, where) == 1)
			return 1;
		if (cut)
			break;
	}
	if (sc->io->error != 0 || sc->io->shrank)
		return -1;
	if (cut) {
		char esc[CONTENT_SCAN_TEXT_MAX];

		log_info("content scan: %s scanned up to its first %zu bytes "
		    "only (max_part_bytes)", LOG_ESC(esc, where),
		    sc->max_part_bytes);
	}
	return text_finish(sc, kind, where);
}

/* scan_next_header - the next header of obj named name (any case) from
 * *pos on, *pos moved past it; NULL when there is none.  GMime's own
 * getters return only the first of repeated headers. */
static GMimeHeader *
scan_next_header(GMimeObject *obj, const char *name, int *pos)
{
	GMimeHeaderList *headers = g_mime_object_get_header_list(obj);
	int count = headers != NULL ? g_mime_header_list_get_count(headers) : 0;

	while (*pos < count) {
		GMimeHeader *h = g_mime_header_list_get_header_at(headers,
		    (*pos)++);
		const char *n;

		if (h != NULL && (n = g_mime_header_get_name(h)) != NULL &&
		    strcasecmp(n, name) == 0)
			return h;
	}
	return NULL;
}

/* scan_subjects - search every Subject header of a message (a message
 * may carry several; clients differ in which they show). */
static int
scan_subjects(struct scan *sc, GMimeObject *message)
{
	GMimeHeader *h;
	int pos = 0;

	if (sc->rules->keyword_count == 0)
		return 0;
	while ((h = scan_next_header(message, "Subject", &pos)) != NULL) {
		/* RFC 2047 decoded, else as it came */
		const char *value = g_mime_header_get_value(h);

		if (value == NULL)
			value = g_mime_header_get_raw_value(h);
		if (value != NULL &&
		    scan_string(sc, value, TEXT_HEADER, "Subject") == 1)
			return 1;
	}
	return 0;
}

/* scan_file_name - does name end in a prohibited extension?  Returns 1
 * with the match recorded, else 0. */
static int
scan_file_name(struct scan *sc, const char *name)
{
	const struct content_scan_rules *r = sc->rules;
	const char *s, *colon;
	bool space = false;
	size_t n, i;

	sc->name.len = 0;
	fold_text(&sc->name, &space, name, strlen(name), &sc->scratch);
	if (sc->name.len == 0)
		return 0;
	s = sc->name.data;
	n = sc->name.len;
	/* The base name: clients save under the last path component. */
	for (i = n; i > 0; i--) {
		if (s[i - 1] == '/' || s[i - 1] == '\\') {
			s += i;
			n -= i;
			break;
		}
	}
	/* "evil.exe:stream" is saved by NTFS as evil.exe. */
	colon = memchr(s, ':', n);
	if (colon != NULL && colon > s)
		n = (size_t)(colon - s);
	/* Windows drops trailing dots and spaces: "evil.exe. " is evil.exe. */
	while (n > 0 && (s[n - 1] == '.' || s[n - 1] == ' '))
		n--;
	for (i = 0; i < r->extension_count; i++) {
		size_t elen = r->extension_lens[i];

		if (n > elen && s[n - elen - 1] == '.' &&
		    memcmp(s + n - elen, r->extensions[i], elen) == 0)
			return scan_found(sc, CONTENT_SCAN_EXTENSION,
			    r->extensions[i], elen, name);
	}
	return 0;
}

/* scan_params - check every filename/name parameter of a list (every copy
 * of a repeated one: GMime's getters return only the first). */
static int
scan_params(struct scan *sc, GMimeParamList *list)
{
	int i, count;

	count = list != NULL ? g_mime_param_list_length(list) : 0;
	for (i = 0; i < count; i++) {
		GMimeParam *p = g_mime_param_list_get_parameter_at(list, i);
		const char *name, *value;

		if (p == NULL || (name = g_mime_param_get_name(p)) == NULL ||
		    (value = g_mime_param_get_value(p)) == NULL)
			continue;
		if ((strcasecmp(name, "filename") == 0 ||
		    strcasecmp(name, "name") == 0) &&
		    scan_file_name(sc, value) == 1)
			return 1;
	}
	return 0;
}

/* scan_names - the file names of one MIME object, from Content-Type and
 * Content-Disposition alike (clients use either). */
static int
scan_names(struct scan *sc, GMimeObject *obj)
{
	GMimeContentType *ct;
	GMimeContentDisposition *cd;

	if (sc->rules->extension_count == 0)
		return 0;
	ct = g_mime_object_get_content_type(obj);
	if (ct != NULL &&
	    scan_params(sc, g_mime_content_type_get_parameters(ct)) == 1)
		return 1;
	cd = g_mime_object_get_content_disposition(obj);
	if (cd != NULL &&
	    scan_params(sc, g_mime_content_disposition_get_parameters(cd)) == 1)
		return 1;
	return 0;
}

/* The match's where for a part read as text/plain because its
 * Content-Type is not valid. */
#define SCAN_INVALID_TYPE_WHERE "text/plain (invalid Content-Type)"

/* scan_type_invalid - is the part's Content-Type empty or invalid?  RFC
 * 2045 5.2 reads such a part as text/plain; charset=us-ascii, and mail
 * clients show it as text; GMime makes it application/octet-stream (and
 * warns, which the parse of each Content-Type header below catches).  An
 * empty type or subtype ("/plain"), which GMime lets through, is not
 * valid either. */
static bool
scan_type_invalid(GMimeObject *obj)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	const char *type, *subtype, *value;
	GMimeHeader *h;
	int pos = 0;

	if (ct == NULL)
		return true;
	type = g_mime_content_type_get_media_type(ct);
	subtype = g_mime_content_type_get_media_subtype(ct);
	if (type == NULL || type[0] == '\0' || subtype == NULL ||
	    subtype[0] == '\0')
		return true;
	if (!g_mime_content_type_is_type(ct, "application", "octet-stream"))
		return false;
	while ((h = scan_next_header(obj, "Content-Type", &pos)) != NULL) {
		if ((value = g_mime_header_get_value(h)) == NULL)
			return true;
		scan_type_warned = false;
		g_object_unref(g_mime_content_type_parse(scan_type_options,
		    value));
		if (scan_type_warned)
			return true;
	}
	return false;
}

/* scan_text_part - decode a part read as text (transfer encoding, then
 * charset to UTF-8) and search it as kind; invalid_type: its Content-Type
 * is not valid, so it is text/plain in US-ASCII.  Returns 1, 0 or -1
 * (read error). */
static int
scan_text_part(struct scan *sc, GMimeObject *obj, enum text_kind kind,
    bool invalid_type)
{
	GMimeDataWrapper *content;
	GMimeStream *source, *filtered;
	GMimeFilter *filter;
	const char *charset;
	char *where;
	int rc;

	content = g_mime_part_get_content(GMIME_PART(obj));
	if (content == NULL)
		return 0;
	source = g_mime_data_wrapper_get_stream(content);
	if (source == NULL)
		return 0;
	g_mime_stream_reset(source);
	filtered = g_mime_stream_filter_new(source);

	switch (g_mime_data_wrapper_get_encoding(content)) {
	case GMIME_CONTENT_ENCODING_BASE64:
	case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
	case GMIME_CONTENT_ENCODING_UUENCODE:
		filter = g_mime_filter_basic_new(
		    g_mime_data_wrapper_get_encoding(content), FALSE);
		g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), filter);
		g_object_unref(filter);
		break;
	default:
		break;	/* 7bit, 8bit, binary or unknown: as it is */
	}

	charset = invalid_type ? NULL :
	    g_mime_object_get_content_type_parameter(obj, "charset");
	if (charset != NULL) {
		const char *canon = g_mime_charset_canon_name(charset);

		if (canon != NULL && g_ascii_strcasecmp(canon, "utf-8") != 0 &&
		    g_ascii_strcasecmp(canon, "us-ascii") != 0) {
			/* NULL when iconv does not know the charset: then
			 * the raw bytes are searched (ASCII still matches). */
			filter = g_mime_filter_charset_new(charset, "UTF-8");
			if (filter != NULL) {
				g_mime_stream_filter_add(
				    GMIME_STREAM_FILTER(filtered), filter);
				g_object_unref(filter);
			}
		}
	}

	where = invalid_type ? NULL : g_mime_content_type_get_mime_type(
	    g_mime_object_get_content_type(obj));
	rc = scan_stream_text(sc, filtered, kind, invalid_type ?
	    SCAN_INVALID_TYPE_WHERE : where != NULL ? where : "text");
	g_free(where);
	g_object_unref(filtered);
	return rc;
}

/* scan_uuencode_name - a part sent with Content-Transfer-Encoding
 * x-uuencode: the decoder drops its "begin 644 name" line, and a client
 * may save the part under that name, so the begin lines of the raw
 * content are checked.  Returns 1 with the match recorded, 0, or -1 when
 * the file could not be read. */
static int
scan_uuencode_name(struct scan *sc, GMimeObject *obj)
{
	GMimeDataWrapper *content = g_mime_part_get_content(GMIME_PART(obj));
	GMimeStream *source;

	if (sc->rules->extension_count == 0 || content == NULL ||
	    g_mime_data_wrapper_get_encoding(content) !=
	    GMIME_CONTENT_ENCODING_UUENCODE ||
	    (source = g_mime_data_wrapper_get_stream(content)) == NULL)
		return 0;
	g_mime_stream_reset(source);
	return scan_stream_text(sc, source, TEXT_NAMES, "x-uuencode part");
}

static int scan_message(struct scan *sc, GMimeMessage *msg, size_t depth);

/* scan_multipart_text - search a multipart's prologue or epilogue. */
static int
scan_multipart_text(struct scan *sc, GMimeObject *obj, const char *text,
    const char *which)
{
	char *type, where[CONTENT_SCAN_TEXT_MAX];
	int rc;

	if (text == NULL || text[0] == '\0')
		return 0;
	type = g_mime_content_type_get_mime_type(
	    g_mime_object_get_content_type(obj));
	snprintf(where, sizeof(where), "%s %s",
	    type != NULL ? type : "multipart", which);
	g_free(type);
	rc = scan_string(sc, text, TEXT_BODY, where);
	return rc;
}

/* scan_object - one MIME object and, recursively, what it contains.
 * depth counts the multiparts and messages around it.  Returns 1 (match
 * recorded), 0 (clean so far) or -1 (read error). */
static int
scan_object(struct scan *sc, GMimeObject *obj, size_t depth)
{
	GMimeContentType *ct;
	int rc;

	if (++sc->parts > sc->max_parts)
		return scan_limit(sc, "max_parts", sc->max_parts);
	if (depth > sc->max_depth)
		return scan_limit(sc, "max_depth", sc->max_depth);
	if ((rc = scan_names(sc, obj)) != 0)
		return rc;

	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int i, count = g_mime_multipart_get_count(mp);

		rc = scan_multipart_text(sc, obj,
		    g_mime_multipart_get_prologue(mp), "prologue");
		for (i = 0; rc == 0 && i < count; i++) {
			GMimeObject *child = g_mime_multipart_get_part(mp, i);

			if (child != NULL)
				rc = scan_object(sc, child, depth + 1);
		}
		if (rc == 0)
			rc = scan_multipart_text(sc, obj,
			    g_mime_multipart_get_epilogue(mp), "epilogue");
		return rc;
	}
	if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *inner =
		    g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));

		return inner != NULL ? scan_message(sc, inner, depth + 1) : 0;
	}
	if (!GMIME_IS_PART(obj))
		return 0;
	if ((rc = scan_uuencode_name(sc, obj)) != 0)
		return rc;
	if (scan_type_invalid(obj))
		return scan_text_part(sc, obj, TEXT_BODY, true);
	ct = g_mime_object_get_content_type(obj);
	if (g_mime_content_type_is_type(ct, "text", "html"))
		return scan_text_part(sc, obj, TEXT_HTML, false);
	if (g_mime_content_type_is_type(ct, "text", "*"))
		return scan_text_part(sc, obj, TEXT_BODY, false);
	return 0;
}

/* scan_message - a message: its Subject headers, then its body. */
static int
scan_message(struct scan *sc, GMimeMessage *msg, size_t depth)
{
	GMimeObject *body;
	int rc;

	if ((rc = scan_subjects(sc, GMIME_OBJECT(msg))) != 0)
		return rc;
	body = g_mime_message_get_mime_part(msg);
	return body != NULL ? scan_object(sc, body, depth) : 0;
}

/* scan_raw - GMime could not parse the message at all: search all of it,
 * undecoded, as one text (never a bypass). */
static int
scan_raw(struct scan *sc)
{
	GMimeStream *stream;
	int rc;

	log_info("content scan: message not parseable as MIME, scanned raw");
	stream = scan_stream_new(sc->io, 0, -1);
	rc = scan_stream_text(sc, stream, TEXT_BODY, "unparsed message");
	g_object_unref(stream);
	return rc;
}

/* scan_limit_or - a configured limit, or its default when 0. */
static size_t
scan_limit_or(size_t value, size_t def)
{
	return value != 0 ? value : def;
}

/* scan_times - a * b, saturating instead of wrapping. */
static size_t
scan_times(size_t a, size_t b)
{
	return b != 0 && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

/* content_scan_fd - scan the message readable at fd (see the header). */
int
content_scan_fd(const struct content_scan_rules *rules, int fd,
    struct content_scan_match *match, struct error *err)
{
	struct scan sc;
	struct stat st;
	GMimeStream *stream;
	GMimeParser *parser;
	GMimeMessage *msg;
	int rc;

	memset(match, 0, sizeof(*match));
	match->kind = CONTENT_SCAN_NONE;
	if (rules->keyword_count == 0 && rules->extension_count == 0)
		return 0;
	if (fstat(fd, &st) == -1)
		return error_set(err, "content scan: message descriptor %d: %s",
		    fd, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return error_set(err, "content scan: message descriptor %d is "
		    "not a regular file", fd);
	content_scan_init();

	memset(&sc, 0, sizeof(sc));
	sc.rules = rules;
	sc.match = match;
	sc.max_parts = scan_limit_or(rules->max_parts,
	    CONTENT_SCAN_DEFAULT_MAX_PARTS);
	sc.max_depth = scan_limit_or(rules->max_depth,
	    CONTENT_SCAN_DEFAULT_MAX_DEPTH);
	if (sc.max_depth > CONTENT_SCAN_MAX_DEPTH_LIMIT)
		sc.max_depth = CONTENT_SCAN_MAX_DEPTH_LIMIT;
	sc.max_part_bytes = scan_limit_or(rules->max_part_bytes,
	    CONTENT_SCAN_DEFAULT_MAX_PART_BYTES);
	sc.chunk = xmalloc(SCAN_CHUNK);
	sc.io = xcalloc(1, sizeof(*sc.io));
	sc.io->fd = fd;
	sc.io->refs = 1;
	sc.io->size = (gint64)st.st_size;

	sc.guard.state = GUARD_LINE_START;
	sc.guard.max_dash_lines = scan_times(sc.max_parts, GUARD_DASH_FACTOR);
	sc.guard.max_headers = scan_times(sc.max_parts, GUARD_HEADER_FACTOR);
	sc.guard.max_param_total = scan_times(sc.max_parts, GUARD_PARAM_FACTOR);
	sc.io->guard = &sc.guard;

	stream = scan_stream_new(sc.io, 0, -1);
	((struct scan_stream *)stream)->parser_stream = true;
	parser = g_mime_parser_new_with_stream(stream);
	/* Keep part contents as windows of the file, not copies in memory. */
	g_mime_parser_set_persist_stream(parser, TRUE);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	/* "^" matches every header: the callback counts them. */
	g_mime_parser_set_header_regex(parser, "^", guard_header_seen,
	    &sc.guard);
	msg = g_mime_parser_construct_message(parser, scan_parser_options);
	if (sc.guard.state == GUARD_TRIPPED)
		rc = scan_limit(&sc, sc.guard.limit, sc.guard.limit_value);
	else if (msg != NULL)
		rc = scan_message(&sc, msg, 0);
	else
		rc = scan_raw(&sc);
	/* A match stands even if a later read failed; anything else after
	 * a failed or short read is unknown, never clean. */
	if (rc != 1 && (sc.io->error != 0 || sc.io->shrank)) {
		memset(match, 0, sizeof(*match));
		if (sc.io->error != 0)
			rc = error_set(err, "content scan: reading the message: "
			    "%s", strerror(sc.io->error));
		else
			rc = error_set(err, "content scan: the message file "
			    "shrank while it was read");
	} else if (rc == -1) {
		rc = error_set(err, "content scan: reading the message failed");
	}

	if (msg != NULL)
		g_object_unref(msg);
	g_object_unref(parser);
	g_object_unref(stream);
	scan_io_unref(sc.io);
	buf_free(&sc.pending);
	buf_free(&sc.window);
	buf_free(&sc.scratch);
	buf_free(&sc.name);
	buf_free(&sc.html_out);
	buf_free(&sc.begin.name);
	free(sc.chunk);
	return rc == -1 ? -1 : 0;
}
