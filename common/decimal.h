/*
 * decimal.h - the one strict parser of decimal integers in files Elemta
 * writes and reads back: the queue's state files (queue_state.c), the
 * spool envelope's `received` (queue_file.c), the supervisor's status
 * file (tools/elemtactl/runtime.c).
 *
 * Strict: an optional '-' then one or more ASCII digits, nothing else -
 * no sign '+', no white space, no trailing bytes, no empty string - and
 * the value in [min, max] (overflow is refused, never clamped).
 * Promises: tests/unit/test_decimal.c.
 */
#ifndef ELEMTA_DECIMAL_H
#define ELEMTA_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

/* decimal_parse_n - s[0..len) (need not be terminated) into *out; 0, or
 * -1 (*out untouched) when it is not such a number in [min, max]. */
int decimal_parse_n(const char *s, size_t len, int64_t min, int64_t max,
    int64_t *out);

/* decimal_parse - the same over the string s. */
int decimal_parse(const char *s, int64_t min, int64_t max, int64_t *out);

#endif
