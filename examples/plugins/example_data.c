/*
 * example_data.c - a small example of on_data reading the message.
 *
 * Shows how a content rule reads the spooled message at END-OF-MESSAGE
 * through elemta_ctx_message_read(), in fixed-size chunks so that memory
 * stays bounded whatever the message size, and decides on its header:
 *
 *   plugins:
 *     - name: example_data
 *       path: /usr/lib/elemta/plugins/example_data.so
 *       config:
 *         max_header_lines: 100           # header fields, 0 = no limit
 *         require_header: Message-ID      # a name, or a list of names
 *         quarantine_subject_prefix: "[SPAM]"
 *
 *   rule                                  reply                metric
 *   more than max_header_lines fields     550 5.6.0            example_data_rejected_total
 *   a required header field is missing   550 5.6.0            example_data_rejected_total
 *   Subject starts with the prefix        250, quarantined     example_data_quarantined_total
 *   the message cannot be read            451 4.3.0            -
 *
 * Header fields are counted as fields (a folded field is one), including
 * the Received: field Elemta prepends.  Field names compare without regard
 * to case; the Subject prefix too, after leading white space, on the
 * unfolded Subject as written (RFC 2047 encoded words are not decoded: a
 * real filter would use a MIME library such as GMime, which a plugin may
 * link like any other library).
 *
 * on_data runs twice per message: at the DATA command, before any byte of
 * the message exists (elemta_ctx_phase_id() is ELEMTA_PHASE_DATA), and
 * after the final dot, once the message is spooled (ELEMTA_PHASE_EOM).
 * Only the second call can read the message.
 *
 * Build:  cc -std=c11 -shared -fPIC -Wall -Wextra -Werror \
 *             $(pkg-config --cflags elemta-plugin) -o example_data.so example_data.c
 */

/* POSIX for strcasecmp()/strncasecmp() and strdup() under plain -std=c11. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <elemta/plugin.h>

#define PLUGIN_NAME "example_data"
#define PLUGIN_VERSION "1.0.0"

#define REQUIRED_MAX 16           /* require_header names            */
#define FIELD_NAME_MAX 77         /* RFC 5322 suggests lines <= 78   */
#define VALUE_KEEP 256            /* bytes of a value kept (Subject) */
#define CHUNK_SIZE 4096           /* one elemta_ctx_message_read()   */
/* A header section longer than this is not read further: the rules judge
 * what was seen (a required field never reached counts as missing). */
#define HEADER_READ_MAX (1024 * 1024)

struct data_state {
	int64_t max_header_lines;                 /* 0 = no limit */
	char *required[REQUIRED_MAX];
	size_t required_count;
	char *subject_prefix;                     /* NULL = off   */
	size_t subject_prefix_len;
};

static const char *const data_known_keys[] = {
	"max_header_lines",
	"require_header",
	"quarantine_subject_prefix",
	NULL,
};

/* ==== The header scanner: an explicit state machine fed byte by byte ==== */

enum scan_state {
	SCAN_LINE_START,   /* at the start of a header line                  */
	SCAN_NAME,         /* inside a field name, before the colon          */
	SCAN_VALUE,        /* inside a field value (or a continuation line)  */
	SCAN_END_CR,       /* saw CR on an empty line: the header is ending  */
	SCAN_DONE,         /* the empty line was seen: the body follows      */
};

struct header_scan {
	enum scan_state state;
	const struct data_state *st;
	char name[FIELD_NAME_MAX + 1];    /* the current field's name (cut)   */
	size_t name_len;
	char value[VALUE_KEEP + 1];       /* its value, unfolded (cut)        */
	size_t value_len;
	int in_field;                     /* a field is open                  */
	uint64_t fields;                  /* fields seen                      */
	unsigned char found[REQUIRED_MAX];/* required[i] seen                 */
	int subject_flagged;              /* Subject starts with the prefix   */
};

/* scan_state_name - for debug logs. */
static const char *scan_state_name(enum scan_state s)
{
	switch (s) {
	case SCAN_LINE_START: return "line-start";
	case SCAN_NAME: return "name";
	case SCAN_VALUE: return "value";
	case SCAN_END_CR: return "end-cr";
	case SCAN_DONE: return "done";
	}
	return "?";
}

/* scan_enter - the one place the scanner's state changes. */
static void scan_enter(struct header_scan *sc, enum scan_state next)
{
	sc->state = next;
}

/* scan_field_end - judge the field just completed. */
static void scan_field_end(struct header_scan *sc)
{
	if (!sc->in_field)
		return;
	sc->in_field = 0;
	/* obs-fws: "Subject :" is old but legal syntax. */
	while (sc->name_len > 0 && (sc->name[sc->name_len - 1] == ' ' ||
	    sc->name[sc->name_len - 1] == '\t'))
		sc->name_len--;
	sc->name[sc->name_len] = '\0';
	sc->value[sc->value_len] = '\0';

	for (size_t i = 0; i < sc->st->required_count; i++)
		if (strcasecmp(sc->name, sc->st->required[i]) == 0)
			sc->found[i] = 1;
	if (sc->st->subject_prefix != NULL && strcasecmp(sc->name, "Subject") == 0) {
		const char *v = sc->value;

		while (*v == ' ' || *v == '\t')
			v++;
		if (strncasecmp(v, sc->st->subject_prefix, sc->st->subject_prefix_len) == 0)
			sc->subject_flagged = 1;
	}
}

/* scan_field_begin - a new field starts with byte c. */
static void scan_field_begin(struct header_scan *sc, char c)
{
	scan_field_end(sc);
	sc->in_field = 1;
	sc->fields++;
	sc->name_len = 0;
	sc->value_len = 0;
	sc->name[sc->name_len++] = c;
}

/* scan_byte - advance the scanner by one byte of the message. */
static void scan_byte(struct header_scan *sc, char c)
{
	switch (sc->state) {
	case SCAN_LINE_START:
		if (c == ' ' || c == '\t') {
			/* Folded continuation: unfolding keeps the white space. */
			if (sc->in_field && sc->value_len < VALUE_KEEP)
				sc->value[sc->value_len++] = c;
			scan_enter(sc, SCAN_VALUE);
		} else if (c == '\r') {
			scan_enter(sc, SCAN_END_CR);
		} else if (c == '\n') {
			scan_field_end(sc);
			scan_enter(sc, SCAN_DONE);
		} else {
			scan_field_begin(sc, c);
			scan_enter(sc, SCAN_NAME);
		}
		break;
	case SCAN_NAME:
		if (c == ':')
			scan_enter(sc, SCAN_VALUE);
		else if (c == '\n')              /* a line without a colon: junk */
			scan_enter(sc, SCAN_LINE_START);
		else if (c != '\r' && sc->name_len < FIELD_NAME_MAX)
			sc->name[sc->name_len++] = c;
		break;
	case SCAN_VALUE:
		if (c == '\n')
			scan_enter(sc, SCAN_LINE_START);
		else if (c != '\r' && sc->value_len < VALUE_KEEP)
			sc->value[sc->value_len++] = c;
		break;
	case SCAN_END_CR:
		/* CRLF on an empty line ends the header; a lone CR is taken
		 * as the end too rather than guessed at. */
		scan_field_end(sc);
		scan_enter(sc, SCAN_DONE);
		break;
	case SCAN_DONE:
		break;
	}
}

/* ==== init / destroy ==== */

/* data_destroy - free the state (also a partly built one). */
static void data_destroy(void *state)
{
	struct data_state *st = state;

	if (st == NULL)
		return;
	for (size_t i = 0; i < st->required_count; i++)
		free(st->required[i]);
	free(st->subject_prefix);
	free(st);
}

/* field_name_valid - RFC 5322 ftext: printable ASCII except ':'. */
static int field_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > FIELD_NAME_MAX)
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 33 || (unsigned char)*s > 126 || *s == ':')
			return 0;
	return 1;
}

/* required_add - append one require_header name read from node. */
static int required_add(struct data_state *st, const elemta_cfg *node,
    char *err, size_t errlen)
{
	const char *name = elemta_cfg_scalar(node);

	if (name == NULL || !field_name_valid(name)) {
		snprintf(err, errlen, "%s: key 'require_header': '%.80s' is not a "
		    "header field name", elemta_cfg_where(node), name != NULL ? name : "");
		return -1;
	}
	if (st->required_count == REQUIRED_MAX) {
		snprintf(err, errlen, "%s: key 'require_header': at most %d names",
		    elemta_cfg_where(node), REQUIRED_MAX);
		return -1;
	}
	st->required[st->required_count] = strdup(name);
	if (st->required[st->required_count] == NULL) {
		snprintf(err, errlen, "key 'require_header': out of memory");
		return -1;
	}
	st->required_count++;
	return 0;
}

/* data_load - validate config into st; -1 with a one-line reason. */
static int data_load(const elemta_cfg *config, struct data_state *st,
    char *err, size_t errlen)
{
	const elemta_cfg *req;
	const char *prefix;

	if (elemta_cfg_type(config) != ELEMTA_CFG_MAP) {
		snprintf(err, errlen, "%s: config: expected a map of settings",
		    elemta_cfg_where(config));
		return -1;
	}
	if (elemta_cfg_check_keys(config, data_known_keys, err, errlen) != 0 ||
	    elemta_cfg_int(config, "max_header_lines", 0, 0, 100000,
	    &st->max_header_lines, err, errlen) != 0)
		return -1;

	/* require_header: one name, or a list of names. */
	req = elemta_cfg_get(config, "require_header");
	if (req != NULL && elemta_cfg_type(req) == ELEMTA_CFG_SCALAR) {
		if (required_add(st, req, err, errlen) != 0)
			return -1;
	} else if (req != NULL) {
		if (elemta_cfg_string_list(config, "require_header", &req, err, errlen) != 0)
			return -1;
		for (size_t i = 0; i < elemta_cfg_len(req); i++)
			if (required_add(st, elemta_cfg_at(req, i), err, errlen) != 0)
				return -1;
	}

	if (elemta_cfg_string(config, "quarantine_subject_prefix", "", &prefix,
	    err, errlen) != 0)
		return -1;
	if (prefix[0] != '\0') {
		/* Copied: the host's strings live only until init returns. */
		st->subject_prefix = strdup(prefix);
		if (st->subject_prefix == NULL) {
			snprintf(err, errlen, "key 'quarantine_subject_prefix': out of memory");
			return -1;
		}
		st->subject_prefix_len = strlen(prefix);
	}
	return 0;
}

/* data_init - build the state from the `config:` map (NULL: all off). */
static int data_init(const elemta_cfg *config, void **state, char *err,
    size_t errlen)
{
	struct data_state *st = calloc(1, sizeof *st);

	if (st == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (config != NULL && data_load(config, st, err, errlen) != 0) {
		data_destroy(st);
		return -1;
	}
	elemta_log(NULL, ELEMTA_LOG_INFO, "loaded: max_header_lines %" PRId64
	    ", %zu required header(s), subject prefix %s",
	    st->max_header_lines, st->required_count,
	    st->subject_prefix != NULL ? st->subject_prefix : "(off)");
	*state = st;
	return 0;
}

/* ==== The hook ==== */

/* data_on_data - read the header at END-OF-MESSAGE and judge it. */
static enum elemta_action data_on_data(void *state, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	const struct data_state *st = state;
	struct header_scan sc;
	char buf[CHUNK_SIZE];
	uint64_t offset = 0;

	/* At DATA no message exists yet: nothing to judge. */
	if (elemta_ctx_phase_id(ctx) != ELEMTA_PHASE_EOM)
		return ELEMTA_CONTINUE;

	memset(&sc, 0, sizeof sc);
	sc.st = st;
	scan_enter(&sc, SCAN_LINE_START);
	/* Bounded reads: one fixed buffer, at most HEADER_READ_MAX bytes, and
	 * no further than needed (the body is never read).  Each call names
	 * its offset, so nothing is shared with other plugins reading too. */
	while (sc.state != SCAN_DONE && offset < HEADER_READ_MAX) {
		if (st->max_header_lines > 0 && sc.fields > (uint64_t)st->max_header_lines)
			break;                       /* already over: stop reading */
		ssize_t n = elemta_ctx_message_read(ctx, offset, buf, sizeof buf);
		if (n < 0) {
			elemta_log(ctx, ELEMTA_LOG_ERR, "message not readable at "
			    "offset %" PRIu64 ": deferring", offset);
			return elemta_result_set(res, ELEMTA_TEMPFAIL, 451, "4.3.0",
			    "Temporary failure reading the message, try again later");
		}
		if (n == 0)
			break;                       /* message ends inside the header */
		for (ssize_t i = 0; i < n && sc.state != SCAN_DONE; i++)
			scan_byte(&sc, buf[i]);
		offset += (uint64_t)n;
	}
	scan_field_end(&sc);
	elemta_log(ctx, ELEMTA_LOG_DEBUG, "header: %" PRIu64 " fields, %" PRIu64
	    " bytes read, scanner %s", sc.fields, offset, scan_state_name(sc.state));

	if (st->max_header_lines > 0 && sc.fields > (uint64_t)st->max_header_lines) {
		elemta_metric_add(ctx, "example_data_rejected_total", 1);
		elemta_log(ctx, ELEMTA_LOG_INFO, "reject message: more than %" PRId64
		    " header fields", st->max_header_lines);
		return elemta_result_set(res, ELEMTA_REJECT, 550, "5.6.0",
		    "Message header has more than %" PRId64 " fields",
		    st->max_header_lines);
	}
	for (size_t i = 0; i < st->required_count; i++) {
		if (sc.found[i])
			continue;
		elemta_metric_add(ctx, "example_data_rejected_total", 1);
		elemta_log(ctx, ELEMTA_LOG_INFO, "reject message: no %s header",
		    st->required[i]);
		return elemta_result_set(res, ELEMTA_REJECT, 550, "5.6.0",
		    "Message has no %s header", st->required[i]);
	}
	if (sc.subject_flagged) {
		/* QUARANTINE applies to the whole message: the client hears
		 * 250 and the message goes to the quarantine instead of the
		 * queue. */
		elemta_metric_add(ctx, "example_data_quarantined_total", 1);
		elemta_log(ctx, ELEMTA_LOG_INFO, "quarantine message: Subject "
		    "starts with %s", st->subject_prefix);
		return elemta_result_set(res, ELEMTA_QUARANTINE, 0, "",
		    "Subject starts with %s", st->subject_prefix);
	}
	return ELEMTA_CONTINUE;
}

/* ==== The descriptor ==== */

ELEMTA_PLUGIN_EXPORT = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION,
	.name = PLUGIN_NAME,
	.version = PLUGIN_VERSION,
	.init = data_init,
	.destroy = data_destroy,
	.on_data = data_on_data,
};
