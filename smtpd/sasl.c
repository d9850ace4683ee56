/*
 * sasl.c - the PLAIN message and the names of SMTP AUTH (contract in
 * sasl.h; its base64 is common/base64.c).
 *
 * Called by session.c and the unit tests.  Pure functions over untrusted
 * client text: bounded by the caller's buffers, no allocation.
 */
#include <string.h>

#include "command.h"
#include "sasl.h"

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
