/*
 * elemta-stat - inspect the shared counter table.
 *
 * Opens the counter table read-only (LMDB: safe while policyd workers
 * write, readers never block writers; Redis: SCAN, never KEYS, so the
 * server is never blocked) and prints rate windows, failed-auth logs,
 * reputation scores, metric counters and greylisting records (triplets
 * and client networks: COUNT the passes, FREES_IN_S the time until the
 * record expires) as an aligned table or one JSON
 * document (--json); --prometheus prints the very exposition that
 * elemta-metricsd serves (common/metrics_collect.c: the table's metrics,
 * the smtpd stats files and the table's size).
 * `reset KEY` is the only writing command.
 *
 * Privileges: runs as the invoking user; reading needs read access to
 * counters.path (the policyd user's directory in production), or for
 * Redis to counters.redis.password_file.
 * Untrusted input: none but the table itself; keys are escaped on output.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <lmdb.h>
#include <yaml.h>

#include "config.h"
#include "counter.h"
#include "log.h"
#include "metrics_collect.h"
#include "strbuf.h"
#include "version.h"

enum stat_format { STAT_TEXT, STAT_JSON, STAT_PROMETHEUS };

struct stat_rows {
	struct counter_entry *items;
	char **keys;
	size_t count, cap;
	uint64_t now_ms;
};

/* stat_usage - print usage to f. */
static void
stat_usage(FILE *f)
{
	fprintf(f,
	    "usage: elemta-stat [-c FILE] [--json | --prometheus] [--watch SECONDS]\n"
	    "                   [list [PREFIX] | top [N] | show KEY | reset KEY]\n"
	    "       elemta-stat --version\n");
}

/* stat_collect - counter_visit callback copying each entry. */
static int
stat_collect(const struct counter_entry *e, void *arg)
{
	struct stat_rows *rows = arg;

	if (rows->count == rows->cap) {
		rows->cap = rows->cap ? rows->cap * 2 : 64;
		rows->items = xrealloc(rows->items, rows->cap * sizeof(*rows->items));
		rows->keys = xrealloc(rows->keys, rows->cap * sizeof(*rows->keys));
	}
	rows->items[rows->count] = *e;
	rows->keys[rows->count] = xstrdup(e->key);
	rows->items[rows->count].key = rows->keys[rows->count];
	rows->count++;
	return 0;
}

/* stat_rows_free - release collected rows. */
static void
stat_rows_free(struct stat_rows *rows)
{
	for (size_t i = 0; i < rows->count; i++)
		free(rows->keys[i]);
	free(rows->keys);
	free(rows->items);
	memset(rows, 0, sizeof(*rows));
}

/* stat_load - read every kind of entry with the given key prefix. */
static int
stat_load(struct counter_store *cs, const char *prefix, struct stat_rows *rows,
    struct error *err)
{
	rows->now_ms = counter_now_ms(cs);
	for (int k = 0; k < COUNTER_KIND_COUNT; k++)
		if (counter_visit(cs, (enum counter_kind)k, prefix,
		    stat_collect, rows, err) < 0)
			return -1;
	return 0;
}

/* stat_fill - how full a rate window is, 0..1+ (0 for non-rate rows). */
static double
stat_fill(const struct counter_entry *e)
{
	if (e->kind != COUNTER_KIND_RATE || e->limit == 0)
		return 0.0;
	return (double)e->count / (double)e->limit;
}

/* stat_free_in_ms - time until the window's oldest event leaves it. */
static uint64_t
stat_free_in_ms(const struct counter_entry *e, uint64_t now_ms)
{
	if (e->kind != COUNTER_KIND_RATE || e->count == 0)
		return 0;
	uint64_t end = e->oldest_ms + e->period_ms;
	return end > now_ms ? end - now_ms : 0;
}

/* stat_expires_in_ms - time until a grey record expires. */
static uint64_t
stat_expires_in_ms(const struct counter_entry *e, uint64_t now_ms)
{
	return e->expires_ms > now_ms ? e->expires_ms - now_ms : 0;
}

/* stat_by_fill - qsort comparator: fullest rate windows first. */
static int
stat_by_fill(const void *a, const void *b)
{
	const struct counter_entry *ea = a, *eb = b;
	int ra = ea->kind == COUNTER_KIND_RATE && ea->limit > 0;
	int rb = eb->kind == COUNTER_KIND_RATE && eb->limit > 0;
	if (ra != rb)
		return rb - ra;
	double fa = stat_fill(ea), fb = stat_fill(eb);
	return fa < fb ? 1 : fa > fb ? -1 : 0;
}

/* stat_json_entry - one entry as a JSON object. */
static json_object *
stat_json_entry(const struct counter_entry *e, uint64_t now_ms)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "kind",
	    json_object_new_string(counter_kind_name(e->kind)));
	json_object_object_add(o, "key", json_object_new_string(e->key));
	if (e->kind == COUNTER_KIND_RATE) {
		json_object_object_add(o, "count", json_object_new_int64(e->count));
		json_object_object_add(o, "limit", json_object_new_int64(e->limit));
		json_object_object_add(o, "period_ms", json_object_new_int64((int64_t)e->period_ms));
		json_object_object_add(o, "frees_in_ms",
		    json_object_new_int64((int64_t)stat_free_in_ms(e, now_ms)));
		json_object_object_add(o, "newest_ms", json_object_new_int64((int64_t)e->newest_ms));
	} else if (e->kind == COUNTER_KIND_REP) {
		json_object_object_add(o, "score", json_object_new_double(e->score));
	} else if (e->kind == COUNTER_KIND_GREY) {
		json_object_object_add(o, "count", json_object_new_int64(e->count));
		json_object_object_add(o, "first_seen_ms",
		    json_object_new_int64((int64_t)e->oldest_ms));
		json_object_object_add(o, "last_seen_ms",
		    json_object_new_int64((int64_t)e->newest_ms));
		json_object_object_add(o, "expires_in_ms",
		    json_object_new_int64((int64_t)stat_expires_in_ms(e, now_ms)));
	} else {
		json_object_object_add(o, "value", json_object_new_int64((int64_t)e->value));
	}
	return o;
}

/* The text table's columns, in order. */
enum stat_column { COL_KIND, COL_KEY, COL_COUNT, COL_LIMIT, COL_PERIOD,
    COL_FREES, STAT_COLUMNS };

#define STAT_CELL_MAX 32            /* a number or a kind */
#define STAT_KEY_TEXT_MAX (COUNTER_KEY_MAX * 4 + 1)

/* One row of the text table, formatted. */
struct stat_line {
	char key[STAT_KEY_TEXT_MAX];
	char cell[STAT_COLUMNS][STAT_CELL_MAX];  /* all but COL_KEY */
};

/* stat_key_text - key as Prometheus and the other tools write it (a
 * metric's quotes and backslash escapes as they are), with only bytes a
 * terminal would act on, or that are not ASCII, as \xNN.  Returns dst. */
static char *
stat_key_text(char *dst, const char *key)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)key;
	    *p != '\0' && o + 5 <= STAT_KEY_TEXT_MAX; p++) {
		if (*p >= 0x20 && *p < 0x7f) {
			dst[o++] = (char)*p;
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[*p >> 4];
			dst[o++] = hex[*p & 15];
		}
	}
	dst[o] = '\0';
	return dst;
}

/* stat_line_fill - the cells of one entry ("-" where its kind has none). */
static void
stat_line_fill(struct stat_line *l, const struct counter_entry *e,
    uint64_t now_ms)
{
	char (*c)[STAT_CELL_MAX] = l->cell;

	snprintf(c[COL_KIND], STAT_CELL_MAX, "%s",
	    counter_kind_name(e->kind));
	stat_key_text(l->key, e->key);
	snprintf(c[COL_LIMIT], STAT_CELL_MAX, "-");
	snprintf(c[COL_PERIOD], STAT_CELL_MAX, "-");
	snprintf(c[COL_FREES], STAT_CELL_MAX, "-");
	if (e->kind == COUNTER_KIND_RATE) {
		snprintf(c[COL_COUNT], STAT_CELL_MAX, "%" PRIu32, e->count);
		snprintf(c[COL_LIMIT], STAT_CELL_MAX, "%" PRIu32, e->limit);
		snprintf(c[COL_PERIOD], STAT_CELL_MAX, "%.1f",
		    (double)e->period_ms / 1000.0);
		snprintf(c[COL_FREES], STAT_CELL_MAX, "%.1f",
		    (double)stat_free_in_ms(e, now_ms) / 1000.0);
	} else if (e->kind == COUNTER_KIND_REP) {
		snprintf(c[COL_COUNT], STAT_CELL_MAX, "%.1f", e->score);
	} else if (e->kind == COUNTER_KIND_GREY) {
		snprintf(c[COL_COUNT], STAT_CELL_MAX, "%" PRIu32, e->count);
		snprintf(c[COL_FREES], STAT_CELL_MAX, "%.1f",
		    (double)stat_expires_in_ms(e, now_ms) / 1000.0);
	} else {
		snprintf(c[COL_COUNT], STAT_CELL_MAX, "%" PRIu64, e->value);
	}
}

/* stat_line_head - the headings line. */
static void
stat_line_head(struct stat_line *l)
{
	static const char *const head[STAT_COLUMNS] = { "KIND", "KEY", "COUNT",
	    "LIMIT", "PERIOD_S", "FREES_IN_S" };

	for (int c = 0; c < STAT_COLUMNS; c++)
		snprintf(l->cell[c], STAT_CELL_MAX, "%s", head[c]);
	snprintf(l->key, sizeof(l->key), "%s", head[COL_KEY]);
}

/* stat_line_width - widen width[] to fit l's cells. */
static void
stat_line_width(const struct stat_line *l, int *width)
{
	for (int c = 0; c < STAT_COLUMNS; c++) {
		int w = (int)strlen(c == COL_KEY ? l->key : l->cell[c]);

		if (w > width[c])
			width[c] = w;
	}
}

/* stat_line_print - one line of the table, in columns of width[]. */
static void
stat_line_print(const struct stat_line *l, const int *width)
{
	printf("%-*s  %-*s  %*s  %*s  %*s  %*s\n",
	    width[COL_KIND], l->cell[COL_KIND], width[COL_KEY], l->key,
	    width[COL_COUNT], l->cell[COL_COUNT],
	    width[COL_LIMIT], l->cell[COL_LIMIT],
	    width[COL_PERIOD], l->cell[COL_PERIOD],
	    width[COL_FREES], l->cell[COL_FREES]);
}

/* stat_print_text - rows (n of them) as a table whose every column is as
 * wide as its widest cell: text left-aligned, numbers right-aligned.  Two
 * passes over the rows (measure, print) instead of keeping n formatted
 * lines: a table can hold 100,000 keys. */
static void
stat_print_text(const struct stat_rows *rows, size_t n)
{
	static struct stat_line l;          /* 2 KiB: not on the stack */
	int width[STAT_COLUMNS] = { 0 };

	stat_line_head(&l);
	stat_line_width(&l, width);
	for (size_t i = 0; i < n; i++) {
		stat_line_fill(&l, &rows->items[i], rows->now_ms);
		stat_line_width(&l, width);
	}
	stat_line_head(&l);
	stat_line_print(&l, width);
	for (size_t i = 0; i < n; i++) {
		stat_line_fill(&l, &rows->items[i], rows->now_ms);
		stat_line_print(&l, width);
	}
}

/* stat_print - rows in the chosen format. */
static void
stat_print(const struct stat_rows *rows, size_t n, enum stat_format fmt)
{
	if (fmt == STAT_JSON) {
		json_object *doc = json_object_new_object();
		json_object *arr = json_object_new_array();
		for (size_t i = 0; i < n; i++)
			json_object_array_add(arr, stat_json_entry(&rows->items[i], rows->now_ms));
		json_object_object_add(doc, "now_ms", json_object_new_int64((int64_t)rows->now_ms));
		json_object_object_add(doc, "entries", arr);
		puts(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
		    JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(doc);
	} else if (n == 0) {
		printf("no counters\n");
	} else {
		stat_print_text(rows, n);
	}
}

/* stat_prometheus - the exposition elemta-metricsd serves at /metrics
 * (the same code: common/metrics_collect.c), samples filtered by key
 * prefix.  1 when the table could not be read (the rest is printed). */
static int
stat_prometheus(const struct config *cfg, struct counter_store *cs,
    const char *prefix)
{
	struct strbuf out = STRBUF_INIT(METRICS_OUTPUT_MAX);
	struct error err = { "" };
	int rc = metrics_collect(cfg, cs, prefix, &out, &err);

	fwrite(strbuf_cstr(&out), 1, out.len, stdout);
	strbuf_free(&out);
	if (rc != 0) {
		fprintf(stderr, "elemta-stat: %s\n", err.text);
		return 1;
	}
	return 0;
}

/* main - options, the config, the table, then one command. */
int
main(int argc, char **argv)
{
	const char *cfg_path = CONFIG_DEFAULT_FILE;
	enum stat_format fmt = STAT_TEXT;
	long watch = 0;
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "prometheus", no_argument, NULL, 'p' },
		{ "watch", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	log_init("elemta-stat", true, LOG_LEVEL_WARN);
	while ((ch = getopt_long(argc, argv, "+c:jpw:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': cfg_path = optarg; break;
		case 'j': fmt = STAT_JSON; break;
		case 'p': fmt = STAT_PROMETHEUS; break;
		case 'w': {
			char *end;
			watch = strtol(optarg, &end, 10);
			if (*end || watch < 1 || watch > 86400) {
				fprintf(stderr, "elemta-stat: --watch takes 1..86400 seconds\n");
				return 2;
			}
			break;
		}
		case 'h': stat_usage(stdout); return 0;
		case 'V': {
			const struct version_lib libs[] = {
				VERSION_LIB_LMDB, VERSION_LIB_LIBYAML,
			};

			version_print(stdout, "elemta-stat", libs,
			    sizeof(libs) / sizeof(libs[0]));
			return 0;
		}
		default: stat_usage(stderr); return 2;
		}
	}
	const char *cmd = optind < argc ? argv[optind++] : "list";
	const char *arg = optind < argc ? argv[optind++] : NULL;
	if (optind < argc) {
		stat_usage(stderr);
		return 2;
	}

	struct config_errors errs = { .count = 0 };
	struct config *cfg = config_load(cfg_path, &errs);
	if (cfg == NULL) {
		for (size_t i = 0; i < errs.count; i++)
			fprintf(stderr, "%s\n", errs.text[i]);
		return 1;
	}
	bool writing = strcmp(cmd, "reset") == 0;
	struct counter_store *cs = NULL;
	struct error err = { "" };
	/* A damaged table must be an error message, not a crash of this
	 * tool: read it once in a child first. */
	if ((cfg->counters.backend == CONFIG_BACKEND_LMDB &&
	    counter_store_check(cfg->counters.path, &err) < 0) ||
	    counter_store_open_config(cfg, !writing, &cs, &err) < 0) {
		fprintf(stderr, "elemta-stat: %s\n", err.text);
		config_free(cfg);
		return 1;
	}

	int rc = 0;
	if (writing) {
		if (arg == NULL) {
			stat_usage(stderr);
			rc = 2;
		} else if (counter_key_reset(cs, arg, &err) < 0) {
			fprintf(stderr, "elemta-stat: reset %s: %s\n", arg, err.text);
			rc = 1;
		} else {
			char esc[COUNTER_KEY_MAX * 4 + 8];
			log_init("elemta-stat", false, LOG_LEVEL_INFO);
			log_info("counter reset by uid %u: %s", (unsigned)getuid(),
			    log_escape(esc, sizeof(esc), arg, strlen(arg)));
			printf("reset %s\n", arg);
		}
		counter_store_close(cs);
		config_free(cfg);
		return rc;
	}
	if (strcmp(cmd, "list") != 0 && strcmp(cmd, "top") != 0 &&
	    strcmp(cmd, "show") != 0) {
		fprintf(stderr, "elemta-stat: unknown command '%s'\n", cmd);
		stat_usage(stderr);
		counter_store_close(cs);
		config_free(cfg);
		return 2;
	}
	if (fmt == STAT_PROMETHEUS && strcmp(cmd, "list") != 0) {
		fprintf(stderr, "elemta-stat: --prometheus prints the metrics "
		    "exposition; it goes with list [PREFIX] only\n");
		counter_store_close(cs);
		config_free(cfg);
		return 2;
	}
	if (strcmp(cmd, "show") == 0 && arg == NULL) {
		stat_usage(stderr);
		counter_store_close(cs);
		config_free(cfg);
		return 2;
	}

	for (;;) {
		struct stat_rows rows = { 0 };

		if (fmt == STAT_PROMETHEUS) {
			rc = stat_prometheus(cfg, cs, arg);
			if (watch == 0 || rc != 0)
				break;
			fflush(stdout);
			sleep((unsigned)watch);
			continue;
		}
		const char *prefix = strcmp(cmd, "top") == 0 ? NULL : arg;
		if (stat_load(cs, prefix, &rows, &err) < 0) {
			fprintf(stderr, "elemta-stat: %s\n", err.text);
			rc = 1;
			stat_rows_free(&rows);
			break;
		}
		size_t n = rows.count;
		if (strcmp(cmd, "show") == 0) {
			size_t o = 0;
			for (size_t i = 0; i < rows.count; i++)
				if (strcmp(rows.items[i].key, arg) == 0)
					rows.items[o++] = rows.items[i];
			n = o;
			if (n == 0) {
				fprintf(stderr, "elemta-stat: no counter '%s'\n", arg);
				rc = 1;
			}
		} else if (strcmp(cmd, "top") == 0) {
			long want = arg ? strtol(arg, NULL, 10) : 10;
			qsort(rows.items, rows.count, sizeof(rows.items[0]), stat_by_fill);
			size_t rate = 0;
			while (rate < rows.count &&
			    rows.items[rate].kind == COUNTER_KIND_RATE &&
			    rows.items[rate].limit > 0)
				rate++;
			n = want > 0 && (size_t)want < rate ? (size_t)want : rate;
		}
		if (rc == 0)
			stat_print(&rows, n, fmt);
		stat_rows_free(&rows);
		if (watch == 0 || rc != 0)
			break;
		fflush(stdout);
		sleep((unsigned)watch);
		if (fmt == STAT_TEXT)
			printf("\n");
	}
	counter_store_close(cs);
	config_free(cfg);
	return rc;
}
