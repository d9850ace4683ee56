/*
 * queue_file.c - format and reader of the envelope stored after each
 * message in the spool (contract in queue_file.h).
 *
 * Called by smtpd/spool.c (format), queued/ (read; format for bounces)
 * and tools/elemtactl/queue.c (read).  The reader treats the file as
 * untrusted: the tail is located from the fixed-width size line, every
 * line is bounded and checked, nothing outside [data, data + len) is read.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "decimal.h"
#include "queue_file.h"

#define QF_S(s) ((s) != NULL ? (s) : "")

/* qf_line_ok - one line's value: no control byte (reader side of the
 * writers' stricter check). */
static bool
qf_line_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* queue_file_id_new - see queue_file.h. */
void
queue_file_id_new(char out[QUEUE_FILE_ID_LEN + 1])
{
	static uint64_t last;
	static unsigned pid;
	struct timeval tv;
	uint64_t us;

	gettimeofday(&tv, NULL);
	us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	/* Strictly increasing within the process even when the clock stands
	 * still or steps back: two messages never share an id here. */
	if (us <= last)
		us = last + 1;
	last = us;
	if (pid == 0)
		pid = (unsigned)getpid();
	snprintf(out, QUEUE_FILE_ID_LEN + 1, "%013" PRIX64 "%03X",
	    (uint64_t)(us & 0xFFFFFFFFFFFFFu), pid & 0xFFFu);
}

/* queue_envelope_format - see queue_file.h. */
int
queue_envelope_format(struct strbuf *out, const char *id,
    const struct queue_envelope *env, uint64_t size)
{
	const char *strs[] = { id, env->client_address, env->client_name,
	    env->helo, env->protocol, env->tls, env->auth_user, env->sender };
	char stamp[32];
	struct tm tm;
	int rc = 0;

	for (size_t i = 0; i < sizeof(strs) / sizeof(*strs); i++)
		if (strs[i] != NULL && !qf_line_ok(strs[i], strlen(strs[i])))
			return -1;
	for (size_t i = 0; i < env->recipient_count; i++)
		if (!qf_line_ok(env->recipients[i], strlen(env->recipients[i])))
			return -1;
	gmtime_r(&env->received, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	rc |= strbuf_appendf(out, "version: 2\nqueue-id: %s\n"
	    "received: %lld %s\nclient-address: %s\nclient-port: %u\n"
	    "client-name: %s\nhelo: %s\nprotocol: %s\ntls: %s\n"
	    "auth-user: %s\nsender: %s\n", QF_S(id), (long long)env->received,
	    stamp, QF_S(env->client_address), env->client_port,
	    QF_S(env->client_name), QF_S(env->helo), QF_S(env->protocol),
	    QF_S(env->tls), QF_S(env->auth_user), QF_S(env->sender));
	if (env->ret != DSN_RET_DEFAULT)
		rc |= strbuf_appendf(out, "ret: %s\n", dsn_ret_name(env->ret));
	if (env->envid != NULL && env->envid[0] != '\0') {
		if (!qf_line_ok(env->envid, strlen(env->envid)))
			return -1;
		rc |= strbuf_appendf(out, "envid: %s\n", env->envid);
	}
	for (size_t i = 0; i < env->recipient_count && rc == 0; i++) {
		rc |= strbuf_appendf(out, "recipient: %s\n",
		    env->recipients[i]);
		/* DSN lines belong to the recipient line before them. */
		if (env->notify != NULL && env->notify[i] != 0) {
			char n[DSN_NOTIFY_TEXT_MAX];

			dsn_notify_format(env->notify[i], n);
			rc |= strbuf_appendf(out, "notify: %s\n", n);
		}
		if (env->orcpt != NULL && env->orcpt[i] != NULL &&
		    env->orcpt[i][0] != '\0') {
			if (!qf_line_ok(env->orcpt[i], strlen(env->orcpt[i])))
				return -1;
			rc |= strbuf_appendf(out, "orcpt: %s\n",
			    env->orcpt[i]);
		}
	}
	rc |= strbuf_appendf(out, "size: %020" PRIu64 "\n", size);
	return rc != 0 ? -1 : 0;
}

/* queue_envelope_free - see queue_file.h. */
void
queue_envelope_free(struct queue_envelope_read *env)
{
	for (size_t i = 0; i < env->recipient_count; i++) {
		free(env->recipients[i]);
		if (env->orcpt != NULL)
			free(env->orcpt[i]);
	}
	free(env->recipients);
	free(env->notify);
	free(env->orcpt);
	free(env->envid);
	free(env->sender);
	free(env->client_address);
	free(env->helo);
	memset(env, 0, sizeof(*env));
}

/* qf_size_line - the fixed-width last line's value; -1 when malformed. */
static int
qf_size_line(const char *line, uint64_t *size)
{
	uint64_t v = 0;

	if (memcmp(line, "size: ", 6) != 0 ||
	    line[QUEUE_FILE_SIZE_LINE - 1] != '\n')
		return -1;
	for (int i = 6; i < QUEUE_FILE_SIZE_LINE - 1; i++) {
		if (line[i] < '0' || line[i] > '9' || v > UINT64_MAX / 10)
			return -1;
		v = v * 10 + (uint64_t)(line[i] - '0');
	}
	*size = v;
	return 0;
}

/* queue_envelope_parse - see queue_file.h. */
int
queue_envelope_parse(const char *data, size_t len, uint64_t file_size,
    struct queue_envelope_read *env, struct error *err)
{
	const char *p, *end = data + len;
	uint64_t size, envlen;
	size_t cap = 0;
	bool have_sender = false, version = false;

	memset(env, 0, sizeof(*env));
	if (len < QUEUE_FILE_SIZE_LINE || len > file_size ||
	    qf_size_line(end - QUEUE_FILE_SIZE_LINE, &size) < 0)
		return error_set(err, "no size line at the end");
	if (size > file_size - QUEUE_FILE_SIZE_LINE)
		return error_set(err, "size %" PRIu64 " beyond the file", size);
	envlen = file_size - size;
	if (envlen > len)
		return error_set(err, "envelope not in the bytes read");
	env->size = size;
	p = end - envlen;
	while (p < end - QUEUE_FILE_SIZE_LINE) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *colon;
		size_t klen, vlen;
		const char *v;

		if (nl == NULL || (colon = memchr(p, ':', (size_t)(nl - p))) ==
		    NULL || colon + 1 >= nl + 1)
			return error_set(err, "malformed envelope line");
		klen = (size_t)(colon - p);
		v = colon + 1;
		if (v < nl && *v == ' ')
			v++;
		vlen = (size_t)(nl - v);
		if (vlen > QUEUE_FILE_VALUE_MAX || !qf_line_ok(v, vlen))
			return error_set(err, "bad envelope value");
#define QF_KEY(k) (klen == sizeof(k) - 1 && memcmp(p, k, klen) == 0)
		if (QF_KEY("version")) {
			if (vlen != 1 || *v != '2')
				return error_set(err, "unknown envelope version");
			version = true;
		} else if (QF_KEY("queue-id")) {
			if (vlen == 0 || vlen >= sizeof(env->id))
				return error_set(err, "bad queue-id");
			memcpy(env->id, v, vlen);
			env->id[vlen] = '\0';
		} else if (QF_KEY("received")) {
			const char *sp = memchr(v, ' ', vlen);
			size_t n = sp != NULL ? (size_t)(sp - v) : vlen;

			if (decimal_parse_n(v, n, 0, INT64_MAX / 2,
			    &env->received) < 0)
				return error_set(err, "bad received");
		} else if (QF_KEY("sender")) {
			free(env->sender);
			env->sender = xstrndup(v, vlen);
			have_sender = true;
		} else if (QF_KEY("client-address")) {
			free(env->client_address);
			env->client_address = xstrndup(v, vlen);
		} else if (QF_KEY("helo")) {
			free(env->helo);
			env->helo = xstrndup(v, vlen);
		} else if (QF_KEY("recipient")) {
			if (vlen == 0 ||
			    env->recipient_count == QUEUE_FILE_RCPT_MAX)
				return error_set(err, "bad recipient");
			if (env->recipient_count == cap) {
				cap = cap ? cap * 2 : 8;
				env->recipients = xrealloc(env->recipients,
				    cap * sizeof(*env->recipients));
				env->notify = xrealloc(env->notify,
				    cap * sizeof(*env->notify));
				env->orcpt = xrealloc(env->orcpt,
				    cap * sizeof(*env->orcpt));
			}
			env->notify[env->recipient_count] = 0;
			env->orcpt[env->recipient_count] = NULL;
			env->recipients[env->recipient_count++] =
			    xstrndup(v, vlen);
		} else if (QF_KEY("ret")) {
			if (dsn_ret_parse(v, vlen, &env->ret) < 0)
				return error_set(err, "bad ret");
		} else if (QF_KEY("envid")) {
			char text[DSN_ENVID_MAX + 1];

			if (env->envid != NULL || vlen > DSN_ENVID_MAX ||
			    dsn_xtext_decode(v, vlen, text, sizeof(text)) < 0)
				return error_set(err, "bad envid");
			env->envid = xstrdup(text);
		} else if (QF_KEY("notify")) {
			/* Belongs to the recipient line just before. */
			if (env->recipient_count == 0 ||
			    env->notify[env->recipient_count - 1] != 0 ||
			    dsn_notify_parse(v, vlen,
			    &env->notify[env->recipient_count - 1]) < 0)
				return error_set(err, "bad notify");
		} else if (QF_KEY("orcpt")) {
			char text[DSN_ORCPT_MAX + 1];

			if (env->recipient_count == 0 ||
			    env->orcpt[env->recipient_count - 1] != NULL ||
			    dsn_orcpt_parse(v, vlen, text, sizeof(text)) < 0)
				return error_set(err, "bad orcpt");
			env->orcpt[env->recipient_count - 1] = xstrdup(text);
		}
		/* Other keys (client-port, tls, ...) are not needed here. */
#undef QF_KEY
		p = nl + 1;
	}
	if (!version || env->id[0] == '\0' || !have_sender ||
	    env->recipient_count == 0)
		return error_set(err, "incomplete envelope");
	return 0;
}

/* queue_file_open - see queue_file.h: the tail first (the size line),
 * then the whole envelope. */
int
queue_file_open(const char *path, struct queue_envelope_read *env,
    struct error *err)
{
	char tail[QUEUE_FILE_SIZE_LINE];
	struct stat st;
	uint64_t size, envlen;
	char *buf;
	int fd;

	memset(env, 0, sizeof(*env));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return error_set(err, "open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size < QUEUE_FILE_SIZE_LINE ||
	    pread(fd, tail, sizeof(tail), st.st_size - QUEUE_FILE_SIZE_LINE) !=
	    (ssize_t)sizeof(tail) || qf_size_line(tail, &size) < 0 ||
	    size > (uint64_t)st.st_size - QUEUE_FILE_SIZE_LINE ||
	    (envlen = (uint64_t)st.st_size - size) > QUEUE_FILE_ENVELOPE_MAX) {
		close(fd);
		return error_set(err, "%s: not a spool file", path);
	}
	buf = xmalloc(envlen);
	if (pread(fd, buf, envlen, (off_t)size) != (ssize_t)envlen ||
	    queue_envelope_parse(buf, envlen, (uint64_t)st.st_size, env,
	    err) < 0) {
		free(buf);
		queue_envelope_free(env);
		close(fd);
		return error_prefix(err, "%s", path);
	}
	free(buf);
	return fd;
}
