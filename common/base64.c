/*
 * base64.c - strict base64 (see base64.h).
 *
 * Called by smtpd (smtpd/session.c: AUTH lines from the client, the
 * password relayed to policyd) and policyd (policyd/auth.c: the password
 * it verifies).  The decoder is our own because it must refuse what
 * OpenSSL's lenient one accepts (whitespace, non-canonical padding): RFC
 * 4954 requires canonical base64 of clients, and a lenient decoder would
 * let two different lines mean the same credentials (and hide junk in
 * logs).  Encoding has no strictness to keep: OpenSSL's encoder does it.
 */
#include <limits.h>

#include <openssl/evp.h>

#include "base64.h"

/* base64_value - the 6-bit value of c, or -1. */
static int
base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* base64_decode - see base64.h. */
long
base64_decode(const char *in, size_t len, unsigned char *out, size_t outlen)
{
	size_t o = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;

		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + k];

			if (c == '=') {
				/* Padding: only in the last group, only at
				 * its end (x===, and xx=y, are malformed). */
				if (i + 4 != len || k < 2)
					return -1;
				pad++;
				v[k] = 0;
				continue;
			}
			if (pad > 0 || (v[k] = base64_value(c)) < 0)
				return -1;
		}
		/* Canonical form: the bits a padded group drops are 0. */
		if ((pad == 1 && (v[2] & 0x03) != 0) ||
		    (pad == 2 && (v[1] & 0x0f) != 0))
			return -1;
		if (o + 3 - (size_t)pad > outlen)
			return -1;
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[o++] = (unsigned char)((v[1] & 0x0f) << 4 | v[2] >> 2);
		if (pad < 1)
			out[o++] = (unsigned char)((v[2] & 0x03) << 6 | v[3]);
	}
	return (long)o;
}

/* base64_encode - see base64.h. */
long
base64_encode(const unsigned char *in, size_t len, char *out, size_t size)
{
	size_t need = (len + 2) / 3 * 4;

	if (need + 1 > size || len > INT_MAX)
		return -1;
	return EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}
