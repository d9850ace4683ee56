/*
 * outcome.c - per-recipient delivery outcomes (outcome.h), shared by the
 * transports of elemta-queued and the DSN composer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "outcome.h"

/* outcome_enhanced_valid - RFC 3463 "class.subject.detail" syntax. */
bool
outcome_enhanced_valid(const char *s, unsigned long len)
{
	unsigned long i = 0, digits;

	if (len == 0)
		len = strlen(s);
	if (len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
	    s[1] != '.')
		return false;
	i = 2;
	for (int part = 0; part < 2; part++) {
		for (digits = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
		if (digits < 1 || digits > 3)
			return false;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
	}
	return i == len;
}

/* outcome_sanitize - control bytes become spaces. */
void
outcome_sanitize(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* outcome_set - fill an outcome; see outcome.h. */
void
outcome_set(struct outcome *o, enum outcome_result result, int code,
    const char *enhanced, const char *fmt, ...)
{
	va_list ap;
	char cls = result == OUTCOME_DELIVERED ? '2' :
	    result == OUTCOME_PERMFAIL ? '5' : '4';

	o->result = result;
	o->code = code;
	/* The class must agree with the result: a "5.x.x" on a deferral
	 * would make a DSN contradict itself. */
	if (enhanced != NULL && outcome_enhanced_valid(enhanced, 0) &&
	    enhanced[0] == cls)
		snprintf(o->enhanced, sizeof(o->enhanced), "%s", enhanced);
	else
		snprintf(o->enhanced, sizeof(o->enhanced), "%c.0.0", cls);
	va_start(ap, fmt);
	vsnprintf(o->text, sizeof(o->text), fmt, ap);
	va_end(ap);
	outcome_sanitize(o->text);
}

/* outcome_result_name - for logs and the queue listing. */
const char *
outcome_result_name(enum outcome_result r)
{
	switch (r) {
	case OUTCOME_PENDING: return "pending";
	case OUTCOME_DELIVERED: return "delivered";
	case OUTCOME_TEMPFAIL: return "deferred";
	case OUTCOME_PERMFAIL: return "bounced";
	}
	return "?";
}
