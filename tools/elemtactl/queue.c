/*
 * queue.c - `elemtactl queue`: the mailq / postqueue / postsuper of
 * Elemta (DESIGN.md "Programs").
 *
 *   queue [list [--json]]   every message: id, size, arrival, sender,
 *                           each recipient's status and last reply
 *   queue show ID           one message in full (envelope, state, headers)
 *   queue flush [ID]        retry deferred recipients now
 *   queue hold ID | release ID | delete ID
 *
 * Reads spool.path/queue/ and state/ (common/queue_file.h,
 * common/queue_state.h); the changing commands never touch a message or
 * its state themselves: they post a control mark (queue_control_post)
 * that elemta-queued applies between attempts (a delete of a message in
 * flight takes effect when that attempt ends).  Run by the operator (root
 * or the spool's owner); the spool files are read as untrusted text.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "elemtactl.h"
#include "log.h"
#include "queue_file.h"
#include "queue_state.h"

#define QUEUE_LIST_MAX 100000

/* One message as listed. */
struct qentry {
	char id[QUEUE_ID_MAX + 1];
	struct queue_envelope_read env;
	struct queue_state st;
	uint64_t file_size;
};

/* qe_state - active, deferred or hold (DESIGN.md's list states). */
static const char *
qe_state(const struct qentry *e, int64_t now)
{
	return queue_list_state_name(queue_state_list_state(&e->st, now));
}

/* qe_next_attempt - the earliest next attempt (0: now or none). */
static int64_t
qe_next_attempt(const struct qentry *e)
{
	int64_t next = 0;

	for (size_t i = 0; i < e->st.nrcpt; i++) {
		const struct queue_rcpt_state *r = &e->st.rcpts[i];

		if (!queue_rcpt_final(r->status) &&
		    (next == 0 || r->next_attempt < next))
			next = r->next_attempt;
	}
	return next;
}

/* qe_load - read message id; -1 (said on stderr unless quiet) when
 * unreadable. */
static int
qe_load(const char *spool, const char *id, struct qentry *e, bool quiet)
{
	char path[CONFIG_PATH_MAX + 64];
	struct error err;
	int fd, rc;

	memset(e, 0, sizeof(*e));
	str_copy(e->id, id, sizeof(e->id));
	snprintf(path, sizeof(path), "%s/queue/%s", spool, id);
	fd = queue_file_open(path, &e->env, &err);
	if (fd < 0) {
		if (!quiet)
			fprintf(stderr, "elemtactl: %s\n", err.text);
		return -1;
	}
	e->file_size = (uint64_t)lseek(fd, 0, SEEK_END);
	close(fd);
	rc = queue_state_read(spool, id, &e->st, &err);
	if (rc < 0 && !quiet)
		fprintf(stderr, "elemtactl: %s\n", err.text);
	if (rc <= 0 || e->st.nrcpt != e->env.recipient_count) {
		queue_state_free(&e->st);
		queue_state_init(&e->st, e->env.recipient_count);
	}
	return 0;
}

static void
qe_free(struct qentry *e)
{
	queue_envelope_free(&e->env);
	queue_state_free(&e->st);
}

/* qe_compare - by id: the ids grow with arrival time. */
static int
qe_compare(const void *a, const void *b)
{
	return strcmp(((const struct qentry *)a)->id,
	    ((const struct qentry *)b)->id);
}

/* queue_load_all - every message of spool/queue, sorted; NULL with
 * *count 0 when the directory cannot be read (said unless quiet). */
static struct qentry *
queue_load_all(const char *spool, size_t *count, bool quiet)
{
	char dir[CONFIG_PATH_MAX + 64];
	struct qentry *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	*count = 0;
	snprintf(dir, sizeof(dir), "%s/queue", spool);
	d = opendir(dir);
	if (d == NULL) {
		if (!quiet)
			fprintf(stderr, "elemtactl: %s: %s\n", dir,
			    strerror(errno));
		return NULL;
	}
	while ((de = readdir(d)) != NULL && n < QUEUE_LIST_MAX) {
		if (!queue_id_valid(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = xrealloc(v, cap * sizeof(*v));
		}
		if (qe_load(spool, de->d_name, &v[n], quiet) == 0)
			n++;
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof(*v), qe_compare);
	*count = n;
	return v;
}

/* qe_time - "2026-12-06 08:40:12" (UTC) into buf. */
static const char *
qe_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

/* queue_list_text - mailq's look. */
static void
queue_list_text(const struct qentry *v, size_t n, int64_t now)
{
	uint64_t total = 0;
	char when[32], esc[1024], esc2[1024];

	if (n == 0) {
		printf("Mail queue is empty\n");
		return;
	}
	printf("%-16s %9s  %-19s  %-8s  %s\n", "Queue ID", "Size", "Arrival (UTC)",
	    "State", "Sender/Recipient");
	for (size_t i = 0; i < n; i++) {
		const struct qentry *e = &v[i];

		total += e->env.size;
		printf("%-16s %9" PRIu64 "  %-19s  %-8s  <%s>\n", e->id,
		    e->env.size, qe_time(e->env.received, when, sizeof(when)),
		    qe_state(e, now), LOG_ESC(esc, e->env.sender));
		for (size_t k = 0; k < e->st.nrcpt; k++) {
			const struct queue_rcpt_state *r = &e->st.rcpts[k];

			printf("%59s  %s %-9s", "", LOG_ESC(esc,
			    e->env.recipients[k]), queue_rcpt_status_name(r->status));
			if (r->text[0] != '\0')
				printf(" (%s)", LOG_ESC(esc2, r->text));
			printf("\n");
		}
	}
	printf("-- %" PRIu64 " Kbytes in %zu message%s.\n", (total + 1023) / 1024,
	    n, n == 1 ? "" : "s");
}

/* qe_json - one message as DESIGN.md's list --json object. */
static json_object *
qe_json(const struct qentry *e, int64_t now)
{
	json_object *o = json_object_new_object(), *rs = json_object_new_array();
	int64_t next = qe_next_attempt(e);

	json_object_object_add(o, "id", json_object_new_string(e->id));
	json_object_object_add(o, "state",
	    json_object_new_string(qe_state(e, now)));
	json_object_object_add(o, "size", json_object_new_int64(
	    (int64_t)e->env.size));
	json_object_object_add(o, "arrival",
	    json_object_new_int64(e->env.received));
	json_object_object_add(o, "sender",
	    json_object_new_string(e->env.sender));
	json_object_object_add(o, "next_attempt", next > 0 ?
	    json_object_new_int64(next) : NULL);
	for (size_t k = 0; k < e->st.nrcpt; k++) {
		const struct queue_rcpt_state *r = &e->st.rcpts[k];
		json_object *ro = json_object_new_object();

		json_object_object_add(ro, "address",
		    json_object_new_string(e->env.recipients[k]));
		json_object_object_add(ro, "status", json_object_new_string(
		    queue_rcpt_status_name(r->status)));
		json_object_object_add(ro, "attempts",
		    json_object_new_int((int)r->attempts));
		json_object_object_add(ro, "last_reply",
		    json_object_new_string(r->text));
		json_object_array_add(rs, ro);
	}
	json_object_object_add(o, "recipients", rs);
	return o;
}

/* queue_list - list [--json]. */
static int
queue_list(const char *spool, bool json)
{
	int64_t now = (int64_t)time(NULL);
	size_t n;
	struct qentry *v = queue_load_all(spool, &n, false);

	if (json) {
		json_object *a = json_object_new_array();

		for (size_t i = 0; i < n; i++)
			json_object_array_add(a, qe_json(&v[i], now));
		printf("%s\n", json_object_to_json_string_ext(a,
		    JSON_C_TO_STRING_PLAIN));
		json_object_put(a);
	} else {
		queue_list_text(v, n, now);
	}
	for (size_t i = 0; i < n; i++)
		qe_free(&v[i]);
	free(v);
	return 0;
}

/* queue_show - one message in full, its headers included. */
static int
queue_show(const char *spool, const char *id)
{
	struct qentry e;
	char when[32], esc[2048], path[CONFIG_PATH_MAX + 64];
	FILE *f;

	if (!queue_id_valid(id)) {
		fprintf(stderr, "elemtactl: '%s' is not a queue id\n", id);
		return 1;
	}
	if (qe_load(spool, id, &e, false) < 0)
		return 1;
	printf("id: %s\nstate: %s\nsize: %" PRIu64 "\narrival: %s\n"
	    "sender: <%s>\nhold: %s\n", e.id, qe_state(&e, time(NULL)),
	    e.env.size, qe_time(e.env.received, when, sizeof(when)),
	    LOG_ESC(esc, e.env.sender), e.st.hold ? "yes" : "no");
	for (size_t k = 0; k < e.st.nrcpt; k++) {
		const struct queue_rcpt_state *r = &e.st.rcpts[k];

		printf("recipient: <%s> %s, %u attempt%s", LOG_ESC(esc,
		    e.env.recipients[k]), queue_rcpt_status_name(r->status),
		    r->attempts, r->attempts == 1 ? "" : "s");
		if (r->status == QUEUE_RCPT_DEFERRED)
			printf(", next %s", qe_time(r->next_attempt, when,
			    sizeof(when)));
		if (r->text[0] != '\0')
			printf(", last reply: %d %s %s", r->code, r->enhanced,
			    LOG_ESC(esc, r->text));
		printf("\n");
	}
	printf("\n");
	snprintf(path, sizeof(path), "%s/queue/%s", spool, id);
	f = fopen(path, "re");
	if (f != NULL) {
		char line[1024];
		uint64_t off = 0;

		/* The header section, escaped. */
		while (off < e.env.size && fgets(line, sizeof(line), f) != NULL) {
			size_t len = strlen(line);

			off += len;
			if (line[0] == '\r' || line[0] == '\n')
				break;
			while (len > 0 && (line[len - 1] == '\n' ||
			    line[len - 1] == '\r'))
				line[--len] = '\0';
			printf("%s\n", log_escape(esc, sizeof(esc), line, len));
		}
		fclose(f);
	}
	qe_free(&e);
	return 0;
}

/* ctl_queue_summary - see elemtactl.h. */
int
ctl_queue_summary(const char *spool, struct ctl_queue_summary *sum)
{
	char dir[CONFIG_PATH_MAX + 64];
	int64_t now = (int64_t)time(NULL);
	struct qentry *v;
	size_t n;

	memset(sum, 0, sizeof(*sum));
	snprintf(dir, sizeof(dir), "%s/queue", spool);
	if (access(dir, R_OK | X_OK) != 0)
		return -1;
	v = queue_load_all(spool, &n, true);
	sum->messages = n;
	for (size_t i = 0; i < n; i++) {
		switch (queue_state_list_state(&v[i].st, now)) {
		case QUEUE_LIST_HOLD: sum->hold++; break;
		case QUEUE_LIST_DEFERRED: sum->deferred++; break;
		case QUEUE_LIST_ACTIVE: sum->active++; break;
		}
		if (i == 0 || now - v[i].env.received > sum->oldest_seconds)
			sum->oldest_seconds = now - v[i].env.received;
		qe_free(&v[i]);
	}
	free(v);
	return 0;
}

/* queue_mark - flush/hold/release/delete: post the mark. */
static int
queue_mark(const char *spool, const char *id, enum queue_control c)
{
	char path[CONFIG_PATH_MAX + 64];
	struct error err;

	if (strcmp(id, QUEUE_CTL_ALL) != 0) {
		if (!queue_id_valid(id)) {
			fprintf(stderr, "elemtactl: '%s' is not a queue id\n", id);
			return 1;
		}
		snprintf(path, sizeof(path), "%s/queue/%s", spool, id);
		if (access(path, F_OK) != 0) {
			fprintf(stderr, "elemtactl: %s: no such message in the "
			    "queue\n", id);
			return 1;
		}
	}
	if (queue_control_post(spool, id, c, &err) < 0) {
		fprintf(stderr, "elemtactl: %s\n", err.text);
		return 1;
	}
	if (strcmp(id, QUEUE_CTL_ALL) == 0)
		printf("flush of the whole queue requested\n");
	else
		printf("%s: %s requested\n", id, queue_control_name(c));
	return 0;
}

/* ctl_queue - see elemtactl.h. */
int
ctl_queue(const struct ctl_args *args)
{
	static const struct {
		const char *word;
		enum queue_control c;
	} marks[] = {
		{ "flush", QUEUE_CTL_FLUSH }, { "hold", QUEUE_CTL_HOLD },
		{ "release", QUEUE_CTL_RELEASE }, { "delete", QUEUE_CTL_DELETE },
	};
	const char *sub = args->rest_count > 0 ? args->rest[0] : "list";
	const char *id = args->rest_count > 1 ? args->rest[1] : NULL;
	struct config *cfg;
	int rc = 2;

	cfg = ctl_config_load(args->config_file);
	if (cfg == NULL)
		return 1;
	if (strcmp(sub, "list") == 0 && id == NULL) {
		rc = queue_list(cfg->spool.path, args->json);
	} else if (strcmp(sub, "show") == 0 && id != NULL) {
		rc = queue_show(cfg->spool.path, id);
	} else {
		for (size_t i = 0; i < sizeof(marks) / sizeof(*marks); i++) {
			if (strcmp(sub, marks[i].word) != 0)
				continue;
			if (id == NULL && marks[i].c == QUEUE_CTL_FLUSH)
				id = QUEUE_CTL_ALL;
			if (id != NULL)
				rc = queue_mark(cfg->spool.path, id, marks[i].c);
			break;
		}
	}
	if (rc == 2)
		fputs(ctl_command_usage(CTL_CMD_QUEUE), stderr);
	config_free(cfg);
	return rc;
}
