/*
 * metrics_format.c - the Prometheus text exposition of Elemta's counters
 * (see metrics_format.h for the sources and their conventions).
 *
 * Called by elemta-metricsd once per scrape and by elemta-stat
 * --prometheus.  Input is trusted in origin (the counter table and the
 * stats files are written by Elemta's own workers) but a compromised
 * worker could write anything there, so every key is checked against the
 * exposition grammar before it is printed and every file read is bounded.
 *
 * A set is a flat array of samples; formatting sorts it by family, merges
 * repeated keys (summing), and writes each family's HELP and TYPE lines
 * once before its samples.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "counter.h"
#include "metrics_format.h"

#define METRICS_LABELS_MAX 16
#define METRICS_STATS_FILE_MAX (64u * 1024)
#define METRICS_STATS_FILES_MAX 4096

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

/* Documentation of the families Elemta writes itself.  Text only. */
static const struct {
	const char *family;
	const char *help;
} metrics_help[] = {
	{ "elemta_auth_credentials_total",
	  "AUTH attempts whose credentials policyd verified, by result." },
	{ "elemta_counter_full_sweeps_total",
	  "Full sweeps of the counter table after it filled up." },
	{ "elemta_counters_entries", "Entries in the counter table." },
	{ "elemta_counters_map_size_bytes",
	  "Counter table size limit: the LMDB map, or Redis maxmemory (0 = "
	  "unlimited)." },
	{ "elemta_counters_up",
	  "1 when the counter table could be read for this exposition." },
	{ "elemta_counters_used_bytes", "Bytes in use in the counter table." },
	{ "elemta_plugin_calls_total", "Hook calls per policy plugin." },
	{ "elemta_plugin_seconds_total",
	  "Time spent in each policy plugin's hooks." },
	{ "elemta_policy_decision_seconds",
	  "Time policyd took to decide one policy request." },
	{ "elemta_policy_decisions_total",
	  "Policy decisions by SMTP phase, action and deciding plugin "
	  "(plugin=\"\" when no plugin decided: every hook continued, or "
	  "policyd answered itself)." },
	{ "elemta_smtpd_connections_refused_total",
	  "Connections closed at once with 421 (server.max_connections, "
	  "server.max_connections_per_ip)." },
	{ "elemta_smtpd_connections_total",
	  "SMTP connections accepted by elemta-smtpd." },
	{ "elemta_smtpd_messages_discarded_total",
	  "Messages answered 250 and dropped (discard verdict)." },
	{ "elemta_smtpd_messages_quarantined_total",
	  "Messages answered 250 and stored in the quarantine." },
	{ "elemta_smtpd_messages_queued_total",
	  "Messages answered 250 and stored in the queue." },
	{ "elemta_smtpd_messages_refused_total",
	  "Messages refused at the end of data (policy, size, content, "
	  "queue errors)." },
	{ "elemta_smtpd_refused_auth_total",
	  "AUTH commands refused (4xx/5xx) by a policy verdict, "
	  "or while policyd failed." },
	{ "elemta_smtpd_refused_connect_total",
	  "Connections refused (4xx/5xx) before the greeting by a policy "
	  "verdict, or while policyd failed." },
	{ "elemta_smtpd_refused_data_total",
	  "DATA commands refused (4xx/5xx) by a policy verdict, "
	  "or while policyd failed." },
	{ "elemta_smtpd_refused_helo_total",
	  "HELO/EHLO commands refused (4xx/5xx) by a policy verdict, "
	  "or while policyd failed." },
	{ "elemta_smtpd_refused_mail_total",
	  "MAIL commands refused (4xx/5xx) by a policy verdict, "
	  "or while policyd failed." },
	{ "elemta_smtpd_refused_other_total",
	  "Other commands refused (4xx/5xx) by a policy verdict, "
	  "or while policyd failed." },
	{ "elemta_smtpd_refused_rcpt_total",
	  "RCPT commands refused (4xx/5xx) by a policy verdict, "
	  "or while policyd failed." },
	{ "elemta_smtpd_sessions_open", "SMTP sessions open now." },
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

/*==== The counter table ====*/

struct table_rows {
	char **keys;
	uint64_t *values;
	size_t count, cap;
};

/* table_collect - counter_visit callback: copy each metric entry. */
static int
table_collect(const struct counter_entry *e, void *arg)
{
	struct table_rows *r = arg;

	if (r->count == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->keys = xrealloc(r->keys, r->cap * sizeof(*r->keys));
		r->values = xrealloc(r->values, r->cap * sizeof(*r->values));
	}
	r->keys[r->count] = xstrdup(e->key);
	r->values[r->count++] = e->value;
	return 0;
}

/* cmp_str - qsort comparator of C strings. */
static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* table_histograms - the distinct bases X of every row X_bucket{...,le=..},
 * sorted (n log n: a scrape must stay cheap with many plugin metrics).
 * Returns how many; *out is freed by the caller (strings and array). */
static size_t
table_histograms(const struct table_rows *r, char ***out)
{
	char **bases = xcalloc(r->count + 1, sizeof(*bases));
	size_t n = 0, kept = 0;

	for (size_t i = 0; i < r->count; i++) {
		size_t nlen;
		bool has_le;
		double le;

		if (key_scan(r->keys[i], &nlen, &has_le, &le) && has_le &&
		    name_ends(r->keys[i], nlen, "_bucket"))
			bases[n++] = xstrndup(r->keys[i], nlen - 7);
	}
	qsort(bases, n, sizeof(*bases), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (kept > 0 && strcmp(bases[kept - 1], bases[i]) == 0)
			free(bases[i]);
		else
			bases[kept++] = bases[i];
	}
	*out = bases;
	return kept;
}

/* table_is_histogram - is base (len bytes, not terminated) one of the
 * sorted bases? */
static bool
table_is_histogram(char *const *bases, size_t n, const char *base,
    size_t len)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strncmp(bases[mid], base, len);

		if (c == 0 && bases[mid][len] != '\0')
			c = 1;                   /* longer: sorts after base */
		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* metrics_set_add_table - see metrics_format.h. */
int
metrics_set_add_table(struct metrics_set *set, struct counter_store *cs,
    struct error *err)
{
	struct table_rows r = { NULL, NULL, 0, 0 };
	int rc = counter_visit(cs, "metric", NULL, table_collect, &r, err);
	char **bases;
	size_t nb = table_histograms(&r, &bases);

	for (size_t i = 0; i < r.count; i++) {
		const char *k = r.keys[i];
		enum metrics_type type = METRICS_COUNTER;
		size_t nlen;

		if (!metrics_key_valid(k, &nlen))
			continue;
		if (name_ends(k, nlen, "_bucket") &&
		    table_is_histogram(bases, nb, k, nlen - 7))
			type = METRICS_HISTOGRAM;
		else if (k[nlen] == '\0' && name_ends(k, nlen, "_sum") &&
		    table_is_histogram(bases, nb, k, nlen - 4))
			type = METRICS_HISTOGRAM;
		else if (k[nlen] == '\0' && name_ends(k, nlen, "_count") &&
		    table_is_histogram(bases, nb, k, nlen - 6))
			type = METRICS_HISTOGRAM;
		(void)metrics_set_add(set, k, r.values[i], type,
		    "Counter a plugin added with elemta_metric_add().");
	}
	for (size_t i = 0; i < nb; i++)
		free(bases[i]);
	free(bases);
	for (size_t i = 0; i < r.count; i++)
		free(r.keys[i]);
	free(r.keys);
	free(r.values);
	return rc;
}

/*==== Stats files ====*/

/* metrics_stats_name_parse - see metrics_format.h. */
bool
metrics_stats_name_parse(const char *name, char *prog, size_t size,
    unsigned *id, long *pid)
{
	size_t n = strlen(name), sl = strlen(METRICS_STATS_SUFFIX), i = 0;
	unsigned long v;
	const char *p;
	char *end;

	if (n <= sl || strcmp(name + n - sl, METRICS_STATS_SUFFIX) != 0)
		return false;
	while (name[i] >= 'a' && name[i] <= 'z')
		i++;
	if (i == 0 || i >= size || name[i] != '-')
		return false;
	p = name + i + 1;
	if (*p < '0' || *p > '9')
		return false;
	errno = 0;
	v = strtoul(p, &end, 10);
	if (errno != 0 || v > METRICS_STATS_ID_MAX || *end != '-' ||
	    end[1] < '0' || end[1] > '9')
		return false;
	errno = 0;
	*pid = strtol(end + 1, &end, 10);
	if (errno != 0 || *pid <= 0 || strcmp(end, METRICS_STATS_SUFFIX) != 0)
		return false;
	memcpy(prog, name, i);
	prog[i] = '\0';
	*id = (unsigned)v;
	return true;
}

/* metrics_stats_pid_alive - see metrics_format.h (EPERM: it runs as
 * another user, which is the normal case for elemta-metricsd). */
bool
metrics_stats_pid_alive(long pid)
{
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* stats_read_file - dir/name into buf (bounded); false when unreadable. */
static bool
stats_read_file(int dfd, const char *name, char *buf, size_t size)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK);
	size_t got = 0;
	struct stat st;

	if (fd < 0)
		return false;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return false;
	}
	while (got + 1 < size) {
		ssize_t n = read(fd, buf + got, size - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return true;
}

/* stats_visit_lines - every valid "key value" line of text, through fn;
 * gauges only when line->alive (totals always). */
static void
stats_visit_lines(char *text, struct metrics_stats_line *line,
    metrics_stats_fn fn, void *arg)
{
	char *save = NULL;

	for (char *l = strtok_r(text, "\n", &save); l != NULL;
	    l = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(l, ' '), *end;
		size_t klen;
		unsigned long long v;

		if (sp == NULL)
			continue;
		klen = (size_t)(sp - l);
		if (klen == 0 || klen > METRICS_STATS_KEY_MAX ||
		    strspn(l, "abcdefghijklmnopqrstuvwxyz0123456789_") != klen ||
		    sp[1] < '0' || sp[1] > '9')
			continue;
		errno = 0;
		v = strtoull(sp + 1, &end, 10);
		if (errno != 0 || (*end != '\0' && *end != '\r'))
			continue;
		*sp = '\0';
		line->key = l;
		line->value = (uint64_t)v;
		line->total = name_ends(l, klen, "_total");
		if (line->total || line->alive)
			fn(arg, line);
	}
}

/* stats_visit_file - one file of the directory open as dfd. */
static bool
stats_visit_file(int dfd, const char *name, const char *program,
    char *buf, metrics_stats_fn fn, void *arg)
{
	struct metrics_stats_line line = { .file = name };
	char prog[32];

	if (!metrics_stats_name_parse(name, prog, sizeof(prog), &line.id,
	    &line.pid) || (program != NULL && strcmp(prog, program) != 0))
		return false;
	if (!stats_read_file(dfd, name, buf, METRICS_STATS_FILE_MAX))
		return false;
	line.program = prog;
	line.alive = metrics_stats_pid_alive(line.pid);
	stats_visit_lines(buf, &line, fn, arg);
	return true;
}

/* metrics_stats_visit - see metrics_format.h. */
size_t
metrics_stats_visit(const char *dir, const char *program, metrics_stats_fn fn,
    void *arg)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t files = 0;
	char *buf;

	if (d == NULL)
		return 0;
	buf = xmalloc(METRICS_STATS_FILE_MAX);
	while ((de = readdir(d)) != NULL && files < METRICS_STATS_FILES_MAX)
		if (stats_visit_file(dirfd(d), de->d_name, program, buf, fn,
		    arg))
			files++;
	closedir(d);
	free(buf);
	return files;
}

/* stats_add_line - a visited line as a sample: elemta_PROGRAM_KEY. */
static void
stats_add_line(void *arg, const struct metrics_stats_line *line)
{
	char key[METRICS_STATS_KEY_MAX + 64];

	snprintf(key, sizeof(key), "elemta_%s_%s", line->program, line->key);
	(void)metrics_set_add(arg, key, line->value, line->total ?
	    METRICS_COUNTER : METRICS_GAUGE,
	    "Worker statistic, summed over every worker of the program.");
}

/* metrics_set_add_stats_dir - see metrics_format.h. */
size_t
metrics_set_add_stats_dir(struct metrics_set *set, const char *dir)
{
	return metrics_stats_visit(dir, NULL, stats_add_line, set);
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

/* family_help - the built-in text, else the sample's own, else generic. */
static const char *
family_help(const char *family, const char *fallback)
{
	for (size_t i = 0; i < sizeof(metrics_help) / sizeof(metrics_help[0]); i++)
		if (strcmp(metrics_help[i].family, family) == 0)
			return metrics_help[i].help;
	return fallback != NULL ? fallback : "Elemta metric.";
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

		rc = format_help(out, v[i]->family, family_help(v[i]->family,
		    v[first]->help));
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

/* metrics_collect - see metrics_format.h. */
int
metrics_collect(const struct config *cfg, struct counter_store *cs,
    const char *prefix, struct strbuf *out, struct error *err)
{
	struct metrics_set *set = metrics_set_new();
	char dir[CONFIG_PATH_MAX + sizeof(METRICS_STATS_SUBDIR) + 1];
	struct counter_stats st;
	int rc = 0;

	snprintf(dir, sizeof(dir), "%s/%s", cfg->server.runtime_dir,
	    METRICS_STATS_SUBDIR);
	(void)metrics_set_add_stats_dir(set, dir);
	if (cs == NULL) {
		rc = error_set(err, "no counter table");
	} else if (metrics_set_add_table(set, cs, err) != 0 ||
	    counter_stats(cs, &st, err) != 0) {
		rc = -1;
	} else {
		metrics_set_add(set, "elemta_counters_map_size_bytes",
		    st.map_size, METRICS_GAUGE, NULL);
		metrics_set_add(set, "elemta_counters_used_bytes", st.used_bytes,
		    METRICS_GAUGE, NULL);
		metrics_set_add(set, "elemta_counters_entries", st.entries,
		    METRICS_GAUGE, NULL);
	}
	metrics_set_add(set, "elemta_counters_up", rc == 0, METRICS_GAUGE, NULL);
	if (metrics_set_format(set, prefix, out) != 0 && rc == 0)
		rc = error_set(err, "the exposition is larger than %zu bytes; "
		    "families were left out", out->limit);
	metrics_set_free(set);
	return rc;
}
