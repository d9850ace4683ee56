/*
 * queue_state.c - the per-recipient state files of the delivery queue and
 * the control marks of `elemtactl queue` (format and promises in
 * queue_state.h).
 *
 * Called by elemta-queued (queued/queue.c: reads at pick-up, writes after
 * every outcome) and elemtactl (tools/elemtactl/queue.c: reads, posts
 * marks).  The reader treats the file as untrusted bytes: bounded, every
 * field checked, nothing read past len (tests/fuzz/fuzz_queue_state.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "decimal.h"
#include "fdio.h"
#include "queue_state.h"

#define QUEUE_STATE_MAGIC "elemta-queue-state"

static const char *const queue_status_names[] = {
	[QUEUE_RCPT_PENDING] = "pending",
	[QUEUE_RCPT_DEFERRED] = "deferred",
	[QUEUE_RCPT_DELIVERED] = "delivered",
	[QUEUE_RCPT_BOUNCED] = "bounced",
};

static const char *const queue_control_names[] = {
	[QUEUE_CTL_FLUSH] = "flush",
	[QUEUE_CTL_HOLD] = "hold",
	[QUEUE_CTL_RELEASE] = "release",
	[QUEUE_CTL_DELETE] = "delete",
};

#define QS_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* queue_rcpt_status_name - see queue_state.h. */
const char *
queue_rcpt_status_name(enum queue_rcpt_status s)
{
	return (size_t)s < QS_COUNT(queue_status_names) ?
	    queue_status_names[s] : "unknown";
}

/* queue_rcpt_final - see queue_state.h. */
bool
queue_rcpt_final(enum queue_rcpt_status s)
{
	return s == QUEUE_RCPT_DELIVERED || s == QUEUE_RCPT_BOUNCED;
}

/* queue_state_init - see queue_state.h. */
void
queue_state_init(struct queue_state *st, size_t nrcpt)
{
	memset(st, 0, sizeof(*st));
	st->rcpts = xcalloc(nrcpt ? nrcpt : 1, sizeof(*st->rcpts));
	st->nrcpt = nrcpt;
}

/* queue_state_free - see queue_state.h. */
void
queue_state_free(struct queue_state *st)
{
	free(st->rcpts);
	st->rcpts = NULL;
	st->nrcpt = 0;
}

/* queue_list_state_name - see queue_state.h. */
const char *
queue_list_state_name(enum queue_list_state s)
{
	switch (s) {
	case QUEUE_LIST_DEFERRED: return "deferred";
	case QUEUE_LIST_HOLD: return "hold";
	case QUEUE_LIST_ACTIVE: break;
	}
	return "active";
}

/* queue_state_list_state - see queue_state.h. */
enum queue_list_state
queue_state_list_state(const struct queue_state *st, int64_t now)
{
	bool deferred = false;

	if (st->hold)
		return QUEUE_LIST_HOLD;
	for (size_t i = 0; i < st->nrcpt; i++) {
		const struct queue_rcpt_state *r = &st->rcpts[i];

		if (queue_rcpt_final(r->status))
			continue;
		if (r->status == QUEUE_RCPT_PENDING || r->next_attempt <= now)
			return QUEUE_LIST_ACTIVE;
		deferred = true;
	}
	return deferred ? QUEUE_LIST_DEFERRED : QUEUE_LIST_ACTIVE;
}

/* queue_state_all_final - see queue_state.h. */
bool
queue_state_all_final(const struct queue_state *st)
{
	for (size_t i = 0; i < st->nrcpt; i++)
		if (!queue_rcpt_final(st->rcpts[i].status))
			return false;
	return true;
}

/* queue_id_valid - see queue_state.h. */
bool
queue_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > QUEUE_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		    (id[i] >= 'A' && id[i] <= 'F')))
			return false;
	return true;
}

/* qs_text_clean - one printable line: controls become spaces. */
static void
qs_text_clean(char *dst, const char *src, size_t size)
{
	size_t i;

	for (i = 0; i + 1 < size && src[i] != '\0'; i++)
		dst[i] = ((unsigned char)src[i] < 0x20 || src[i] == 0x7f) ?
		    ' ' : src[i];
	dst[i] = '\0';
}

/* queue_state_format - see queue_state.h. */
int
queue_state_format(const struct queue_state *st, struct strbuf *out)
{
	int rc = strbuf_appendf(out, "%s %d\nhold %d\nwarned %d\nbounce %s\n",
	    QUEUE_STATE_MAGIC, QUEUE_STATE_VERSION, st->hold ? 1 : 0,
	    st->warned ? 1 : 0, st->bounce_id[0] ? st->bounce_id : "-");

	for (size_t i = 0; i < st->nrcpt && rc == 0; i++) {
		const struct queue_rcpt_state *r = &st->rcpts[i];
		char text[QUEUE_STATE_TEXT_MAX];

		qs_text_clean(text, r->text, sizeof(text));
		rc = strbuf_appendf(out, "rcpt %s %u %" PRId64 " %" PRId64
		    " %d %s %s\n", queue_rcpt_status_name(r->status),
		    r->attempts, r->next_attempt, r->last_attempt, r->code,
		    r->enhanced[0] ? r->enhanced : "-", text);
	}
	return rc;
}

/* qs_word - the next space-separated word of [*p, end) into buf; -1 when
 * missing or too long. */
static int
qs_word(const char **p, const char *end, char *buf, size_t size)
{
	const char *s = *p;
	size_t n = 0;

	while (s < end && *s != ' ')
		s++;
	n = (size_t)(s - *p);
	if (n == 0 || n >= size)
		return -1;
	memcpy(buf, *p, n);
	buf[n] = '\0';
	*p = s < end ? s + 1 : s;
	return 0;
}

/* qs_parse_rcpt - the rest of a "rcpt" line. */
static int
qs_parse_rcpt(const char *p, const char *end, struct queue_rcpt_state *r)
{
	char w[64];
	int64_t v;
	size_t i;

	if (qs_word(&p, end, w, sizeof(w)) < 0)
		return -1;
	for (i = 0; i < QS_COUNT(queue_status_names); i++)
		if (strcmp(w, queue_status_names[i]) == 0)
			break;
	if (i == QS_COUNT(queue_status_names))
		return -1;
	r->status = (enum queue_rcpt_status)i;
	if (qs_word(&p, end, w, sizeof(w)) < 0 ||
	    decimal_parse(w, 0, 1000000, &v) < 0)
		return -1;
	r->attempts = (unsigned)v;
	if (qs_word(&p, end, w, sizeof(w)) < 0 ||
	    decimal_parse(w, 0, INT64_MAX / 2, &r->next_attempt) < 0)
		return -1;
	if (qs_word(&p, end, w, sizeof(w)) < 0 ||
	    decimal_parse(w, 0, INT64_MAX / 2, &r->last_attempt) < 0)
		return -1;
	if (qs_word(&p, end, w, sizeof(w)) < 0 || decimal_parse(w, 0, 599, &v) < 0)
		return -1;
	r->code = (int)v;
	if (qs_word(&p, end, w, sizeof(r->enhanced)) < 0)
		return -1;
	if (strcmp(w, "-") == 0)
		r->enhanced[0] = '\0';
	else
		str_copy(r->enhanced, w, sizeof(r->enhanced));
	if ((size_t)(end - p) >= sizeof(r->text))
		return -1;
	memcpy(r->text, p, (size_t)(end - p));
	r->text[end - p] = '\0';
	return 0;
}

/* queue_state_parse - see queue_state.h. */
int
queue_state_parse(const char *text, size_t len, struct queue_state *st,
    struct error *err)
{
	const char *p = text, *end = text + len;
	size_t cap = 8, lineno = 0;

	memset(st, 0, sizeof(*st));
	st->rcpts = xcalloc(cap, sizeof(*st->rcpts));
	if (len > QUEUE_STATE_FILE_MAX)
		return error_set(err, "state file too large");
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		char key[32], val[64];
		const char *q;
		int64_t v;

		if (nl == NULL)
			return error_set(err, "line %zu: no newline", lineno + 1);
		for (q = p; q < nl; q++)
			if ((unsigned char)*q < 0x20 || *q == 0x7f)
				return error_set(err, "line %zu: control byte",
				    lineno + 1);
		lineno++;
		q = p;
		if (qs_word(&q, nl, key, sizeof(key)) < 0)
			return error_set(err, "line %zu: no key", lineno);
		if (lineno == 1) {
			if (strcmp(key, QUEUE_STATE_MAGIC) != 0 ||
			    qs_word(&q, nl, val, sizeof(val)) < 0 ||
			    decimal_parse(val, 1, 1000, &v) < 0 ||
			    v != QUEUE_STATE_VERSION || q != nl)
				return error_set(err, "not a version %d state "
				    "file", QUEUE_STATE_VERSION);
		} else if (strcmp(key, "rcpt") == 0) {
			if (st->nrcpt == QUEUE_STATE_RCPT_MAX)
				return error_set(err, "too many recipients");
			if (st->nrcpt == cap) {
				cap *= 2;
				st->rcpts = xrealloc(st->rcpts, cap *
				    sizeof(*st->rcpts));
			}
			memset(&st->rcpts[st->nrcpt], 0, sizeof(*st->rcpts));
			if (qs_parse_rcpt(q, nl, &st->rcpts[st->nrcpt]) < 0)
				return error_set(err, "line %zu: bad recipient",
				    lineno);
			st->nrcpt++;
		} else if (strcmp(key, "hold") == 0 ||
		    strcmp(key, "warned") == 0) {
			if (qs_word(&q, nl, val, sizeof(val)) < 0 || q != nl ||
			    decimal_parse(val, 0, 1, &v) < 0)
				return error_set(err, "line %zu: bad %s",
				    lineno, key);
			*(key[0] == 'h' ? &st->hold : &st->warned) = v != 0;
		} else if (strcmp(key, "bounce") == 0) {
			if (qs_word(&q, nl, val, sizeof(val)) < 0 || q != nl ||
			    (strcmp(val, "-") != 0 && !queue_id_valid(val)))
				return error_set(err, "line %zu: bad bounce id",
				    lineno);
			str_copy(st->bounce_id, strcmp(val, "-") ? val : "",
			    sizeof(st->bounce_id));
		} else {
			return error_set(err, "line %zu: unknown key", lineno);
		}
		p = nl + 1;
	}
	if (lineno == 0)
		return error_set(err, "empty state file");
	return 0;
}

/* queue_state_path - see queue_state.h. */
int
queue_state_path(const char *spool, const char *id, char *out, size_t size)
{
	int n = snprintf(out, size, "%s/state/%s", spool, id);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* queue_state_read - see queue_state.h. */
int
queue_state_read(const char *spool, const char *id, struct queue_state *st,
    struct error *err)
{
	char path[PATH_MAX + 64];
	struct strbuf sb = STRBUF_INIT(QUEUE_STATE_FILE_MAX);
	char buf[8192];
	ssize_t n;
	int fd, rc;

	memset(st, 0, sizeof(*st));
	if (queue_state_path(spool, id, path, sizeof(path)) < 0)
		return error_set(err, "state path too long");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return error_set(err, "open %s: %s", path, strerror(errno));
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (strbuf_append(&sb, buf, (size_t)n) < 0) {
			n = -1;
			errno = EFBIG;
			break;
		}
	if (n < 0) {
		int e = errno;

		close(fd);
		strbuf_free(&sb);
		return error_set(err, "read %s: %s", path, strerror(e));
	}
	close(fd);
	rc = queue_state_parse(sb.data ? sb.data : "", sb.len, st, err);
	strbuf_free(&sb);
	if (rc < 0) {
		queue_state_free(st);
		return error_prefix(err, "%s", path);
	}
	return 1;
}

/* qs_write_file - dir/name replaced atomically with data through
 * dir/.name.tmp (fdio_commit_file). */
static int
qs_write_file(const char *dir, const char *name, const char *data,
    size_t len, bool do_fsync, struct error *err)
{
	char tmp[PATH_MAX + 64], path[PATH_MAX + 64];

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >=
	    sizeof(tmp) || (size_t)snprintf(path, sizeof(path), "%s/%s", dir,
	    name) >= sizeof(path))
		return error_set(err, "path too long");
	return fdio_commit_file(tmp, path, dir, data, len, do_fsync, false,
	    err);
}

/* queue_state_write - see queue_state.h. */
int
queue_state_write(const char *spool, const char *id,
    const struct queue_state *st, bool do_fsync, struct error *err)
{
	struct strbuf sb = STRBUF_INIT(QUEUE_STATE_FILE_MAX);
	char dir[PATH_MAX + 64];
	int rc;

	if ((size_t)snprintf(dir, sizeof(dir), "%s/state", spool) >=
	    sizeof(dir))
		return error_set(err, "state path too long");
	if (queue_state_format(st, &sb) < 0) {
		strbuf_free(&sb);
		return error_set(err, "state of %s too large", id);
	}
	rc = qs_write_file(dir, id, sb.data, sb.len, do_fsync, err);
	strbuf_free(&sb);
	return rc;
}

/* queue_state_remove - see queue_state.h. */
int
queue_state_remove(const char *spool, const char *id, struct error *err)
{
	char path[PATH_MAX + 64];

	if (queue_state_path(spool, id, path, sizeof(path)) < 0)
		return error_set(err, "state path too long");
	if (unlink(path) < 0 && errno != ENOENT)
		return error_set(err, "unlink %s: %s", path, strerror(errno));
	return 0;
}

/* queue_control_name - see queue_state.h. */
const char *
queue_control_name(enum queue_control c)
{
	return (size_t)c < QS_COUNT(queue_control_names) ?
	    queue_control_names[c] : "unknown";
}

/* queue_control_parse_name - see queue_state.h. */
int
queue_control_parse_name(const char *name, char *id, enum queue_control *c)
{
	const char *dot = strchr(name, '.');
	size_t n;

	if (dot == NULL || (n = (size_t)(dot - name)) == 0 || n > QUEUE_ID_MAX)
		return -1;
	memcpy(id, name, n);
	id[n] = '\0';
	if (!queue_id_valid(id) && strcmp(id, QUEUE_CTL_ALL) != 0)
		return -1;
	for (size_t i = 0; i < QS_COUNT(queue_control_names); i++)
		if (strcmp(dot + 1, queue_control_names[i]) == 0) {
			*c = (enum queue_control)i;
			/* "all" only flushes. */
			return strcmp(id, QUEUE_CTL_ALL) == 0 &&
			    *c != QUEUE_CTL_FLUSH ? -1 : 0;
		}
	return -1;
}

/* queue_control_post - see queue_state.h. */
int
queue_control_post(const char *spool, const char *id, enum queue_control c,
    struct error *err)
{
	char dir[PATH_MAX + 64], name[QUEUE_ID_MAX + 16];

	if (!queue_id_valid(id) && !(strcmp(id, QUEUE_CTL_ALL) == 0 &&
	    c == QUEUE_CTL_FLUSH))
		return error_set(err, "invalid queue id");
	if ((size_t)snprintf(dir, sizeof(dir), "%s/control", spool) >=
	    sizeof(dir))
		return error_set(err, "control path too long");
	snprintf(name, sizeof(name), "%s.%s", id, queue_control_name(c));
	return qs_write_file(dir, name, "", 0, true, err);
}
