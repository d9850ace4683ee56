/*
 * decimal.c - the strict decimal parser (contract in decimal.h), for the
 * readers of the queue's state and envelope and of elemtactl's status
 * file.  Hand-rolled rather than strtoll: strtoll skips leading white
 * space, takes '+', stops silently at the first non-digit and reports
 * overflow only through errno, each a way for a damaged file to read as
 * a number.
 */
#include <stdbool.h>
#include <string.h>

#include "decimal.h"

/* decimal_parse_n - see decimal.h. */
int
decimal_parse_n(const char *s, size_t len, int64_t min, int64_t max,
    int64_t *out)
{
	size_t i = 0;
	bool neg;
	/* Accumulated as a negative number: INT64_MIN has no positive twin. */
	int64_t v = 0;

	if (len == 0)
		return -1;
	neg = s[0] == '-';
	if (neg)
		i++;
	if (i == len)
		return -1;
	for (; i < len; i++) {
		int d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = s[i] - '0';
		if (v < (INT64_MIN + d) / 10)
			return -1;
		v = v * 10 - d;
	}
	if (!neg) {
		if (v == INT64_MIN)
			return -1;
		v = -v;
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* decimal_parse - see decimal.h. */
int
decimal_parse(const char *s, int64_t min, int64_t max, int64_t *out)
{
	return decimal_parse_n(s, strlen(s), min, max, out);
}
