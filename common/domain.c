/*
 * domain.c - canonical mail domains: UTS-46 mapping, A-labels, lower
 * case (see domain.h).
 *
 * Called by smtpd/command.c for every MAIL/RCPT domain and by
 * common/addr.c for domain-list entries and the domains it matches.
 * Input is untrusted network text (a client's address, or a Postfix
 * policy request); it is bounded before libidn2 sees it, and libidn2 sees
 * one label at a time so that an ASCII label keeps its own, simpler rules.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <idn2.h>

#include "domain.h"

/* The UTS-46 label separators other than '.', as UTF-8 (UTS-46 section
 * 4, step 1 maps them to U+002E before labels are split). */
static const char *const domain_dots[] = {
	"\xe3\x80\x82",   /* U+3002 IDEOGRAPHIC FULL STOP */
	"\xef\xbc\x8e",   /* U+FF0E FULLWIDTH FULL STOP */
	"\xef\xbd\xa1",   /* U+FF61 HALFWIDTH IDEOGRAPHIC FULL STOP */
};

/* domain_map_dots - copy in to work with every label separator as '.';
 * returns the new length. */
static size_t
domain_map_dots(const char *in, size_t len, char *work)
{
	size_t n = 0;

	for (size_t i = 0; i < len; ) {
		bool dot = false;

		for (size_t k = 0; k < sizeof(domain_dots) / sizeof(*domain_dots);
		    k++) {
			if (len - i >= 3 && memcmp(in + i, domain_dots[k], 3) == 0) {
				dot = true;
				break;
			}
		}
		if (dot) {
			work[n++] = '.';
			i += 3;
		} else
			work[n++] = in[i++];
	}
	return n;
}

/* domain_ascii_label_ok - the octets an ASCII label may hold: letters,
 * digits, '-' and '_' (the set the domain lists have always accepted;
 * smtpd's parser is stricter before it gets here).  A hyphen may not
 * start or end a label (RFC 952, 1123): checked by the caller, since a
 * UTS-46 full stop can put one there after smtpd's parser looked. */
static bool
domain_ascii_label_ok(const char *label, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)label[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* domain_label - the canonical form of one label (len > 0 octets, NUL
 * terminated at label[len]) appended to out at *off. */
static int
domain_label(const char *label, size_t len, char *out, size_t size,
    size_t *off, struct error *err)
{
	bool ascii = true;
	const char *src = label;
	char *mapped = NULL;
	size_t mlen;
	int rc;

	for (size_t i = 0; i < len; i++)
		if ((unsigned char)label[i] >= 0x80)
			ascii = false;
	if (!ascii || (len >= 4 && strncasecmp(label, "xn--", 4) == 0)) {
		/* A U-label, or an A-label to verify: IDNA2008 with UTS-46
		 * mapping, the lookup rules browsers and resolvers use. */
		rc = idn2_lookup_u8((const uint8_t *)label, (uint8_t **)&mapped,
		    IDN2_NONTRANSITIONAL);
		if (rc != IDN2_OK)
			return error_set(err, "not a valid international "
			    "domain label: %s", idn2_strerror(rc));
		src = mapped;
	}
	/* mapped is libidn2's: released with idn2_free, its own free. */
	mlen = strlen(src);
	/* A mapping may not create a dot (U+2488 "1." and kin), nor leave a
	 * character outside the host-name set: for what libidn2 produced,
	 * strict letters-digits-hyphen (U+FF3F would map to '_'), so the
	 * result is a domain smtpd's own parser accepts again. */
	if (mlen == 0 || !domain_ascii_label_ok(src, mlen) ||
	    src[0] == '-' || src[mlen - 1] == '-' ||
	    (mapped != NULL && strchr(src, '_') != NULL)) {
		idn2_free(mapped);
		return error_set(err, "label has a character not allowed in a "
		    "domain");
	}
	if (mlen > DOMAIN_LABEL_MAX) {
		idn2_free(mapped);
		return error_set(err, "label longer than %d octets",
		    DOMAIN_LABEL_MAX);
	}
	if (*off + mlen + 1 > DOMAIN_MAX + 1 || *off + mlen + 1 > size) {
		idn2_free(mapped);
		return error_set(err, "longer than %d octets", DOMAIN_MAX);
	}
	for (size_t i = 0; i < mlen; i++) {
		char c = src[i];

		out[(*off)++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	idn2_free(mapped);
	return 0;
}

/* domain_canonical - see domain.h. */
int
domain_canonical(const char *in, size_t len, char *out, size_t size,
    struct error *err)
{
	char work[DOMAIN_INPUT_MAX + 1];
	size_t n, off = 0, start = 0;

	if (size == 0)
		return error_set(err, "no room");
	out[0] = '\0';
	if (len == 0)
		return error_set(err, "empty domain");
	if (len > DOMAIN_INPUT_MAX)
		return error_set(err, "longer than %d octets", DOMAIN_MAX);
	if (memchr(in, '\0', len) != NULL)
		return error_set(err, "NUL in domain");
	if (in[0] == '[') {
		if (in[len - 1] != ']' || len >= size)
			return error_set(err, "malformed address literal");
		memcpy(out, in, len);
		out[len] = '\0';
		return 0;
	}
	n = domain_map_dots(in, len, work);
	if (n > 1 && work[n - 1] == '.')
		n--;                  /* the root: "example.com." */
	work[n] = '\0';
	for (size_t i = 0; i <= n; i++) {
		if (i < n && work[i] != '.')
			continue;
		if (i == start) {
			out[0] = '\0';
			return error_set(err, "empty label");
		}
		if (off > 0)
			out[off++] = '.';
		work[i] = '\0';
		if (domain_label(work + start, i - start, out, size, &off,
		    err) < 0) {
			out[0] = '\0';
			return -1;
		}
		start = i + 1;
	}
	out[off] = '\0';
	return 0;
}
