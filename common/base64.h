/*
 * base64.h - strict RFC 4648 base64, for the AUTH credentials that travel
 * from the SMTP client through smtpd to policyd.
 */
#ifndef ELEMTA_BASE64_H
#define ELEMTA_BASE64_H

#include <stddef.h>

/* base64_decode - strict RFC 4648 base64 of in[0..len): the alphabet only
 * (no blanks, no NUL), '=' padding only at the end, a length that is a
 * multiple of 4, and the bits a padded group drops all 0 (so one byte
 * string has exactly one encoding).  Into out, at most outlen bytes.
 * Returns the decoded length (0 for an empty input), or -1 when in is
 * malformed or does not fit. */
long base64_decode(const char *in, size_t len, unsigned char *out,
    size_t outlen);

/* base64_encode - base64 of in[0..len) into out (size bytes, NUL
 * terminated).  Returns the length written, or -1 when it does not fit. */
long base64_encode(const unsigned char *in, size_t len, char *out,
    size_t size);

#endif
