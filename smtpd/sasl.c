/*
 * sasl.c - base64 and the PLAIN message for SMTP AUTH (contract in
 * sasl.h).  The decoder is our own because it must refuse what OpenSSL's
 * lenient one accepts (whitespace, non-canonical padding).
 *
 * Called by session.c and the unit tests.  Pure functions over untrusted
 * client text: bounded by the caller's buffers, no allocation.  Strict
 * on purpose: RFC 4954 requires clients to send canonical base64, and a
 * lenient decoder would let two different lines mean the same
 * credentials (and hide junk in logs).
 */
#include <limits.h>
#include <string.h>

#include <openssl/evp.h>

#include "command.h"
#include "sasl.h"

/* sasl_b64_value - the 6-bit value of c, or -1. */
static int
sasl_b64_value(unsigned char c)
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

/* sasl_b64_decode - see sasl.h. */
long
sasl_b64_decode(const char *in, size_t len, unsigned char *out)
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
			if (pad > 0 || (v[k] = sasl_b64_value(c)) < 0)
				return -1;
		}
		/* Canonical form: the bits a padded group drops are 0. */
		if ((pad == 1 && (v[2] & 0x03) != 0) ||
		    (pad == 2 && (v[1] & 0x0f) != 0))
			return -1;
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[o++] = (unsigned char)((v[1] & 0x0f) << 4 | v[2] >> 2);
		if (pad < 1)
			out[o++] = (unsigned char)((v[2] & 0x03) << 6 | v[3]);
	}
	return (long)o;
}

/* sasl_b64_encode - see sasl.h.  Encoding has no strictness to keep:
 * OpenSSL's encoder (canonical, padded, NUL-terminated) does it. */
long
sasl_b64_encode(const unsigned char *in, size_t len, char *out, size_t size)
{
	size_t need = (len + 2) / 3 * 4;

	if (need + 1 > size || len > INT_MAX)
		return -1;
	return EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/* sasl_plain_parse - see sasl.h. */
int
sasl_plain_parse(unsigned char *msg, size_t len, struct sasl_plain *out)
{
	unsigned char *nul1, *nul2;

	nul1 = memchr(msg, '\0', len);
	if (nul1 == NULL)
		return -1;
	nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - msg));
	if (nul2 == NULL)
		return -1;
	if (memchr(nul2 + 1, '\0', len - (size_t)(nul2 + 1 - msg)) != NULL)
		return -1;
	msg[len] = '\0';
	out->authzid = (const char *)msg;
	out->authcid = (const char *)nul1 + 1;
	out->password = nul2 + 1;
	out->password_len = len - (size_t)(nul2 + 1 - msg);
	return 0;
}

/* sasl_name_valid - see sasl.h. */
bool
sasl_name_valid(const char *name, size_t len)
{
	if (len > SASL_USER_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return command_utf8_valid(name, len);
}
