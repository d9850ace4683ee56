/*
 * dsn_param.c - RFC 3461 parameter values and xtext (contract in
 * dsn_param.h).  Called by smtpd/command.c, common/queue_file.c and
 * elemta-queued; every input is untrusted text with a length.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dsn_param.h"

static const struct {
	unsigned bit;
	const char *name;
} dsn_notify_names[] = {
	{ DSN_NOTIFY_NEVER, "NEVER" },
	{ DSN_NOTIFY_SUCCESS, "SUCCESS" },
	{ DSN_NOTIFY_FAILURE, "FAILURE" },
	{ DSN_NOTIFY_DELAY, "DELAY" },
};

#define DSN_NOTIFY_NAMES (sizeof(dsn_notify_names) / sizeof(*dsn_notify_names))

/* dsn_xtext_encode - see dsn_param.h. */
int
dsn_xtext_encode(const char *s, char *out, size_t size)
{
	size_t o = 0;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x21 || c > 0x7e || c == '+' || c == '=') {
			if (o + 3 >= size)
				return -1;
			snprintf(out + o, 4, "+%02X", c);
			o += 3;
		} else {
			if (o + 1 >= size)
				return -1;
			out[o++] = (char)c;
		}
	}
	if (o >= size)
		return -1;
	out[o] = '\0';
	return 0;
}

/* dsn_hex - an upper-case hex digit's value, or -1 (RFC 3461 §4:
 * hexchar is "+" and two of 0-9 A-F). */
static int
dsn_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* dsn_xtext_decode - see dsn_param.h. */
int
dsn_xtext_decode(const char *s, size_t len, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x21 || c > 0x7e || c == '=')
			return -1;
		if (c == '+') {
			int hi, lo;

			if (len - i < 3)
				return -1;
			hi = dsn_hex(s[i + 1]);
			lo = dsn_hex(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi * 16 + lo);
			if (c < 0x20 || c == 0x7f)
				return -1;
			i += 2;
		}
		if (o + 1 >= size)
			return -1;
		out[o++] = (char)c;
	}
	if (size == 0)
		return -1;
	out[o] = '\0';
	return 0;
}

/* dsn_notify_parse - see dsn_param.h. */
int
dsn_notify_parse(const char *s, size_t len, unsigned *bits)
{
	unsigned v = 0;
	size_t i = 0;

	if (len == 0)
		return -1;
	while (i <= len) {
		size_t n = 0;
		unsigned bit = 0;

		while (i + n < len && s[i + n] != ',')
			n++;
		for (size_t k = 0; k < DSN_NOTIFY_NAMES; k++)
			if (strlen(dsn_notify_names[k].name) == n &&
			    strncasecmp(s + i, dsn_notify_names[k].name, n) == 0)
				bit = dsn_notify_names[k].bit;
		if (bit == 0 || (v & bit) != 0)
			return -1;
		v |= bit;
		i += n + 1;
	}
	/* NEVER stands alone (RFC 3461 §4.1). */
	if ((v & DSN_NOTIFY_NEVER) != 0 && v != DSN_NOTIFY_NEVER)
		return -1;
	*bits = v;
	return 0;
}

/* dsn_notify_format - see dsn_param.h. */
void
dsn_notify_format(unsigned bits, char out[DSN_NOTIFY_TEXT_MAX])
{
	size_t o = 0;

	out[0] = '\0';
	if ((bits & DSN_NOTIFY_NEVER) != 0)
		bits = DSN_NOTIFY_NEVER;
	for (size_t k = 0; k < DSN_NOTIFY_NAMES; k++) {
		if ((bits & dsn_notify_names[k].bit) == 0)
			continue;
		o += (size_t)snprintf(out + o, DSN_NOTIFY_TEXT_MAX - o, "%s%s",
		    o > 0 ? "," : "", dsn_notify_names[k].name);
	}
}

/* dsn_ret_parse - see dsn_param.h. */
int
dsn_ret_parse(const char *s, size_t len, enum dsn_ret *ret)
{
	if (len == 4 && strncasecmp(s, "FULL", 4) == 0)
		*ret = DSN_RET_FULL;
	else if (len == 4 && strncasecmp(s, "HDRS", 4) == 0)
		*ret = DSN_RET_HDRS;
	else
		return -1;
	return 0;
}

/* dsn_ret_name - see dsn_param.h. */
const char *
dsn_ret_name(enum dsn_ret ret)
{
	return ret == DSN_RET_FULL ? "FULL" : ret == DSN_RET_HDRS ? "HDRS" : "";
}

/* dsn_orcpt_parse - see dsn_param.h. */
int
dsn_orcpt_parse(const char *s, size_t len, char *out, size_t size)
{
	const char *semi;
	size_t tlen;

	if (len > DSN_ORCPT_MAX || (semi = memchr(s, ';', len)) == NULL)
		return -1;
	tlen = (size_t)(semi - s);
	if (tlen == 0 || tlen > DSN_ADDR_TYPE_MAX || tlen + 2 > size ||
	    semi + 1 == s + len)
		return -1;
	for (size_t i = 0; i < tlen; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-'))
			return -1;
	}
	memcpy(out, s, tlen + 1);
	return dsn_xtext_decode(semi + 1, len - tlen - 1, out + tlen + 1,
	    size - tlen - 1);
}
