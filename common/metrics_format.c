/*
 * metrics_format.c - the Prometheus text exposition of a set of samples
 * (see metrics_format.h for the conventions).  Formats only: what goes
 * into a set is gathered by common/metrics_collect.c.
 *
 * Called by the collector (elemta-metricsd once per scrape, elemta-stat
 * --prometheus).  Keys come from Elemta's own workers and plugins, but a
 * compromised worker could write anything, so every key is checked
 * against the exposition grammar before it is added.
 *
 * A set is a flat array of samples; formatting sorts it by family, merges
 * repeated keys (summing), and writes each family's HELP and TYPE lines
 * once before its samples.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_format.h"

#define METRICS_LABELS_MAX 16

struct metrics_sample {
	char *key;               /* owned: name{labels} as printed          */
	size_t name_len;
	char *family;            /* owned: the family the sample belongs to */
	int rank;                /* histogram: 0 bucket, 1 sum, 2 count     */
	double le;               /* histogram bucket bound                  */
	uint64_t value;
	enum metrics_type type;
	const char *help;        /* caller's static text, or NULL           */
	size_t seq;              /* insertion order: the first type wins    */
};

struct metrics_set {
	struct metrics_sample *items;
	size_t count, cap;
};

/*==== Keys ====*/

/* name_char_ok - [a-zA-Z_:] first, [a-zA-Z0-9_:] after. */
static bool
name_char_ok(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	    c == ':' || (!first && c >= '0' && c <= '9');
}

/* label_char_ok - label names: no ':' allowed. */
static bool
label_char_ok(char c, bool first)
{
	return c != ':' && name_char_ok(c, first);
}

/* key_scan - check key's syntax; *name_len the name part; *le the value
 * of an `le` label (+Inf as INFINITY) when has_le is given. */
static bool
key_scan(const char *key, size_t *name_len, bool *has_le, double *le)
{
	const char *lname[METRICS_LABELS_MAX];
	size_t llen[METRICS_LABELS_MAX], nlabels = 0;
	const char *p = key;

	if (has_le != NULL)
		*has_le = false;
	if (!name_char_ok(*p, true))
		return false;
	while (name_char_ok(*p, false))
		p++;
	if (name_len != NULL)
		*name_len = (size_t)(p - key);
	if (*p == '\0')
		return (size_t)(p - key) <= METRICS_KEY_MAX;
	if (*p++ != '{')
		return false;
	while (*p != '}') {
		const char *n = p, *v;
		char vbuf[64];
		size_t vl = 0;

		if (!label_char_ok(*p, true))
			return false;
		while (label_char_ok(*p, false))
			p++;
		if (p - n >= 2 && n[0] == '_' && n[1] == '_')
			return false;           /* reserved for Prometheus */
		for (size_t i = 0; i < nlabels; i++)
			if (llen[i] == (size_t)(p - n) &&
			    memcmp(lname[i], n, llen[i]) == 0)
				return false;
		if (nlabels == METRICS_LABELS_MAX)
			return false;
		lname[nlabels] = n;
		llen[nlabels++] = (size_t)(p - n);
		if (p[0] != '=' || p[1] != '"')
			return false;
		p += 2;
		v = p;
		while (*p != '"') {
			if (*p == '\0' || *p == '\n')
				return false;
			if (*p == '\\') {
				if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
					return false;
				p++;
			}
			if (vl + 1 < sizeof(vbuf))
				vbuf[vl++] = *p;
			p++;
		}
		vbuf[vl] = '\0';
		if (has_le != NULL && llen[nlabels - 1] == 2 && n[0] == 'l' &&
		    n[1] == 'e') {
			char *end;

			if (strcmp(vbuf, "+Inf") == 0) {
				*le = INFINITY;
			} else {
				*le = strtod(vbuf, &end);
				if (end == vbuf || *end != '\0' || (size_t)(p - v) != vl)
					return false;
			}
			*has_le = true;
		}
		p++;                            /* the closing quote */
		if (*p == ',')
			p++;
		else if (*p != '}')
			return false;
	}
	return p[1] == '\0' && strlen(key) <= METRICS_KEY_MAX;
}

/* metrics_key_valid - see metrics_format.h. */
bool
metrics_key_valid(const char *key, size_t *name_len)
{
	return key != NULL && key_scan(key, name_len, NULL, NULL);
}

/* name_ends - does the name part (len bytes) end with suffix? */
static bool
name_ends(const char *name, size_t len, const char *suffix)
{
	size_t sl = strlen(suffix);

	return len > sl && memcmp(name + len - sl, suffix, sl) == 0;
}

/* stored_in_microseconds - the unit convention of metrics_format.h. */
static bool
stored_in_microseconds(const char *name, size_t len)
{
	return len > 7 && strncmp(name, "elemta_", 7) == 0 &&
	    (name_ends(name, len, "_seconds_sum") ||
	    name_ends(name, len, "_seconds_total"));
}

/* metrics_key_is_bucket - see metrics_format.h. */
bool
metrics_key_is_bucket(const char *key, size_t *name_len)
{
	size_t nlen;
	bool has_le;
	double le;

	if (key == NULL || !key_scan(key, &nlen, &has_le, &le) || !has_le ||
	    !name_ends(key, nlen, "_bucket"))
		return false;
	if (name_len != NULL)
		*name_len = nlen;
	return true;
}

/*==== Sets ====*/

/* metrics_set_new - see metrics_format.h. */
struct metrics_set *
metrics_set_new(void)
{
	return xcalloc(1, sizeof(struct metrics_set));
}

/* metrics_set_free - see metrics_format.h. */
void
metrics_set_free(struct metrics_set *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->count; i++) {
		free(set->items[i].key);
		free(set->items[i].family);
	}
	free(set->items);
	free(set);
}

/* metrics_set_add - see metrics_format.h. */
int
metrics_set_add(struct metrics_set *set, const char *key, uint64_t value,
    enum metrics_type type, const char *help)
{
	struct metrics_sample *s;
	size_t nlen, flen;
	bool has_le;
	double le = 0.0;
	int rank = 0;

	if (key == NULL || !key_scan(key, &nlen, &has_le, &le))
		return -1;
	flen = nlen;
	if (type == METRICS_HISTOGRAM) {
		if (name_ends(key, nlen, "_bucket") && has_le) {
			flen = nlen - 7;
		} else if (name_ends(key, nlen, "_sum") && key[nlen] == '\0') {
			flen = nlen - 4;
			rank = 1;
		} else if (name_ends(key, nlen, "_count") && key[nlen] == '\0') {
			flen = nlen - 6;
			rank = 2;
		} else {
			return -1;
		}
	}
	if (set->count == set->cap) {
		set->cap = set->cap ? set->cap * 2 : 64;
		set->items = xrealloc(set->items, set->cap * sizeof(*set->items));
	}
	s = &set->items[set->count];
	s->key = xstrdup(key);
	s->name_len = nlen;
	s->family = xstrndup(key, flen);
	s->rank = rank;
	s->le = le;
	s->value = value;
	s->type = type;
	s->help = help;
	s->seq = set->count++;
	return 0;
}

/*==== Formatting ====*/

/* sample_cmp - by family, then (histograms) bucket < sum < count and
 * buckets by bound, then by key, then in insertion order. */
static int
sample_cmp(const void *a, const void *b)
{
	const struct metrics_sample *x = *(const struct metrics_sample *const *)a;
	const struct metrics_sample *y = *(const struct metrics_sample *const *)b;
	int c = strcmp(x->family, y->family);

	if (c != 0)
		return c;
	if (x->type == METRICS_HISTOGRAM && y->type == METRICS_HISTOGRAM) {
		if (x->rank != y->rank)
			return x->rank - y->rank;
		if (x->rank == 0 && x->le != y->le)
			return x->le < y->le ? -1 : 1;
	}
	c = strcmp(x->key, y->key);
	if (c != 0)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* family_help - the text of the family's first sample, else generic. */
static const char *
family_help(const char *help)
{
	return help != NULL ? help : "Elemta metric.";
}

/* type_name - the TYPE line's word. */
static const char *
type_name(enum metrics_type t)
{
	switch (t) {
	case METRICS_COUNTER:
		return "counter";
	case METRICS_GAUGE:
		return "gauge";
	case METRICS_HISTOGRAM:
		return "histogram";
	}
	return "untyped";
}

/* format_help - "# HELP family text" with \ and newline escaped. */
static int
format_help(struct strbuf *out, const char *family, const char *text)
{
	if (strbuf_appendf(out, "# HELP %s ", family) != 0)
		return -1;
	for (const char *p = text; *p != '\0'; p++) {
		int rc = *p == '\\' ? strbuf_append_str(out, "\\\\") :
		    *p == '\n' ? strbuf_append_str(out, "\\n") :
		    strbuf_append(out, p, 1);

		if (rc != 0)
			return -1;
	}
	return strbuf_append_str(out, "\n");
}

/* format_sample - one "key value" line. */
static int
format_sample(struct strbuf *out, const struct metrics_sample *s,
    uint64_t value)
{
	if (stored_in_microseconds(s->key, s->name_len))
		return strbuf_appendf(out, "%s %" PRIu64 ".%06" PRIu64 "\n",
		    s->key, value / 1000000, value % 1000000);
	return strbuf_appendf(out, "%s %" PRIu64 "\n", s->key, value);
}

/* metrics_set_format - see metrics_format.h. */
int
metrics_set_format(const struct metrics_set *set, const char *prefix,
    struct strbuf *out)
{
	const struct metrics_sample **v;
	size_t n = 0, i = 0;
	int rc = 0;

	if (set->count == 0)
		return 0;
	v = xcalloc(set->count, sizeof(*v));
	for (size_t k = 0; k < set->count; k++)
		if (prefix == NULL || strncmp(set->items[k].key, prefix,
		    strlen(prefix)) == 0)
			v[n++] = &set->items[k];
	qsort(v, n, sizeof(*v), sample_cmp);
	while (i < n && rc == 0) {
		size_t end = i, first = i;
		size_t mark = out->len;

		while (end < n && strcmp(v[end]->family, v[i]->family) == 0) {
			if (v[end]->seq < v[first]->seq)
				first = end;
			end++;
		}
		/* The family's type is that of its first sample added. */
		enum metrics_type type = v[first]->type;

		rc = format_help(out, v[i]->family, family_help(v[first]->help));
		if (rc == 0)
			rc = strbuf_appendf(out, "# TYPE %s %s\n", v[i]->family,
			    type_name(type));
		for (size_t k = i; k < end && rc == 0;) {
			uint64_t sum = 0;
			size_t j = k;
			bool any = false;

			/* Repeated keys (several files, several sources) are
			 * one sample: their sum, saturating.  A sample of
			 * another type than its family's is dropped. */
			for (; j < end && strcmp(v[j]->key, v[k]->key) == 0; j++) {
				if (v[j]->type != type)
					continue;
				any = true;
				sum = sum > UINT64_MAX - v[j]->value ?
				    UINT64_MAX : sum + v[j]->value;
			}
			if (any)
				rc = format_sample(out, v[k], sum);
			k = j;
		}
		if (rc != 0) {
			/* Never a family cut in the middle. */
			strbuf_truncate(out, mark);
		}
		i = end;
	}
	free(v);
	return rc;
}

