/*
 * metrics_collect.c - the samples of a running system for the exposition
 * (see metrics_collect.h for the sources and their conventions).
 *
 * Called by elemta-metricsd once per scrape and by elemta-stat
 * --prometheus.  Reads the counter table (counter.h) and the worker stats
 * files (stats_file.h) and hands every sample, with its family's HELP
 * text, to common/metrics_format.c, which checks and formats them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "counter.h"
#include "metrics_collect.h"
#include "stats_file.h"

/* HELP of the families Elemta itself writes into the counter table or
 * adds here (the stats files' keys are in stats_file.c).  Text only. */
static const struct {
	const char *family;
	const char *help;
} collect_help[] = {
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
	{ "elemta_policy_client_names_total",
	  "Client names looked up at CONNECT (FCrDNS), by result: ok "
	  "(verified), tempfail, failed." },
	{ "elemta_policy_dns_lookups_total",
	  "DNS lookups of policy requests (plugins and client names), by "
	  "status." },
	{ "elemta_policy_dns_waits_total",
	  "Times a policy request waited for DNS answers." },
	{ "elemta_policy_decision_seconds",
	  "Time policyd took to decide one policy request." },
	{ "elemta_policy_decisions_total",
	  "Policy decisions by SMTP phase, action and deciding plugin "
	  "(plugin=\"\" when no plugin decided: every hook continued, or "
	  "policyd answered itself)." },
};

/* name_ends - does the name part (len bytes) end with suffix? */
static bool
name_ends(const char *name, size_t len, const char *suffix)
{
	size_t sl = strlen(suffix);

	return len > sl && memcmp(name + len - sl, suffix, sl) == 0;
}

/* family_help - the HELP text of the family named by family's first len
 * bytes (SIZE_MAX: all of it), else fallback. */
static const char *
family_help(const char *family, size_t len, const char *fallback)
{
	if (len == SIZE_MAX)
		len = strlen(family);
	for (size_t i = 0; i < sizeof(collect_help) / sizeof(collect_help[0]); i++)
		if (strncmp(collect_help[i].family, family, len) == 0 &&
		    collect_help[i].family[len] == '\0')
			return collect_help[i].help;
	return fallback;
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

		if (metrics_key_is_bucket(r->keys[i], &nlen))
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

/* metrics_set_add_table - see metrics_collect.h. */
int
metrics_set_add_table(struct metrics_set *set, struct counter_store *cs,
    struct error *err)
{
	struct table_rows r = { NULL, NULL, 0, 0 };
	int rc = counter_visit(cs, COUNTER_KIND_METRIC, NULL, table_collect, &r,
	    err);
	char **bases;
	size_t nb = table_histograms(&r, &bases);

	for (size_t i = 0; i < r.count; i++) {
		const char *k = r.keys[i];
		enum metrics_type type = METRICS_COUNTER;
		size_t nlen, flen;

		if (!metrics_key_valid(k, &nlen))
			continue;
		flen = nlen;
		if (name_ends(k, nlen, "_bucket") &&
		    table_is_histogram(bases, nb, k, nlen - 7))
			flen = nlen - 7;
		else if (k[nlen] == '\0' && name_ends(k, nlen, "_sum") &&
		    table_is_histogram(bases, nb, k, nlen - 4))
			flen = nlen - 4;
		else if (k[nlen] == '\0' && name_ends(k, nlen, "_count") &&
		    table_is_histogram(bases, nb, k, nlen - 6))
			flen = nlen - 6;
		if (flen != nlen)
			type = METRICS_HISTOGRAM;
		(void)metrics_set_add(set, k, r.values[i], type,
		    family_help(k, flen,
		    "Counter a plugin added with elemta_metric_add()."));
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

/* stats_add_line - a visited line as a sample: the key table's metric
 * (name, labels, type, HELP), else elemta_PROGRAM_KEY. */
static void
stats_add_line(void *arg, const struct stats_file_line *line)
{
	const struct stats_file_key *k = stats_file_key_find(line->program,
	    line->key);
	enum metrics_type type = line->total ? METRICS_COUNTER : METRICS_GAUGE;
	char key[STATS_FILE_KEY_MAX + 64];

	if (k != NULL && k->metric != NULL) {
		if (k->type == STATS_FILE_HISTOGRAM)
			type = METRICS_HISTOGRAM;
		(void)metrics_set_add(arg, k->metric, line->value, type, k->help);
		return;
	}
	snprintf(key, sizeof(key), "elemta_%s_%s", line->program, line->key);
	(void)metrics_set_add(arg, key, line->value, type, k != NULL ?
	    k->help : "Worker statistic, summed over every worker of the "
	    "program.");
}

/* metrics_set_add_stats_dir - see metrics_collect.h. */
size_t
metrics_set_add_stats_dir(struct metrics_set *set, const char *dir)
{
	return stats_file_visit(dir, NULL, stats_add_line, set);
}

/*==== Everything ====*/

/* add_gauge - one of the gauges collected here, with its HELP text. */
static void
add_gauge(struct metrics_set *set, const char *name, uint64_t value)
{
	(void)metrics_set_add(set, name, value, METRICS_GAUGE,
	    family_help(name, SIZE_MAX, NULL));
}

/* metrics_collect - see metrics_collect.h. */
int
metrics_collect(const struct config *cfg, struct counter_store *cs,
    const char *prefix, struct strbuf *out, struct error *err)
{
	struct metrics_set *set = metrics_set_new();
	char dir[CONFIG_PATH_MAX + sizeof(STATS_FILE_SUBDIR) + 1];
	struct counter_stats st;
	int rc = 0;

	snprintf(dir, sizeof(dir), "%s/%s", cfg->server.runtime_dir,
	    STATS_FILE_SUBDIR);
	(void)metrics_set_add_stats_dir(set, dir);
	if (cs == NULL) {
		rc = error_set(err, "no counter table");
	} else if (metrics_set_add_table(set, cs, err) != 0 ||
	    counter_stats(cs, &st, err) != 0) {
		rc = -1;
	} else {
		add_gauge(set, "elemta_counters_map_size_bytes", st.map_size);
		add_gauge(set, "elemta_counters_used_bytes", st.used_bytes);
		add_gauge(set, "elemta_counters_entries", st.entries);
	}
	add_gauge(set, "elemta_counters_up", rc == 0);
	if (metrics_set_format(set, prefix, out) != 0 && rc == 0)
		rc = error_set(err, "the exposition is larger than %zu bytes; "
		    "families were left out", out->limit);
	metrics_set_free(set);
	return rc;
}
