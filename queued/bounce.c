/*
 * bounce.c - a bounce as a new spool message (contract in bounce.h).
 *
 * Called by queue.c once a message's recipients are all final and some
 * bounced.  The report is composed by dsn.c from the queue's records and
 * the original (read from its spool file, bounded by
 * delivery.bounce_size_limit); the envelope by common/queue_file.c, the
 * format smtpd writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bounce.h"
#include "fdio.h"
#include "queue_file.h"
#include "strbuf.h"

#define BOUNCE_OVERHEAD (256u << 10)     /* report parts beyond the original */

struct bounce_src {
	int fd;
	uint64_t off, size;
};

/* bounce_id_new - see bounce.h. */
void
bounce_id_new(char id[QUEUE_ID_MAX + 1])
{
	char buf[QUEUE_FILE_ID_LEN + 1];

	queue_file_id_new(buf);
	str_copy(id, buf, QUEUE_ID_MAX + 1);
}

/* bounce_read - dsn.c's reader over the original's message bytes. */
static long
bounce_read(void *ctx, char *buf, size_t size)
{
	struct bounce_src *s = ctx;
	ssize_t n;

	if (s->off >= s->size)
		return 0;
	if (size > s->size - s->off)
		size = (size_t)(s->size - s->off);
	n = pread(s->fd, buf, size, (off_t)s->off);
	if (n < 0)
		return -1;
	s->off += (uint64_t)n;
	return (long)n;
}

/* bounce_commit - data into tmp/<id>, renamed to queue/<id> (never over
 * an existing file: one written before a crash stays), fsync'd per
 * spool.fsync (fdio_commit_file). */
static int
bounce_commit(const struct config *cfg, const char *id, const char *data,
    size_t len, struct error *err)
{
	char tmp[CONFIG_PATH_MAX + 64], dst[CONFIG_PATH_MAX + 64], dir[CONFIG_PATH_MAX + 64];

	snprintf(dir, sizeof(dir), "%s/queue", cfg->spool.path);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/tmp/%s", cfg->spool.path,
	    id) >= sizeof(tmp) || (size_t)snprintf(dst, sizeof(dst), "%s/%s",
	    dir, id) >= sizeof(dst))
		return error_set(err, "spool path too long");
	if (access(dst, F_OK) == 0)
		return 0;                  /* written before a crash */
	return fdio_commit_file(tmp, dst, dir, data, len, cfg->spool.fsync,
	    true, err);
}

/* bounce_write - see bounce.h. */
int
bounce_write(const struct config *cfg, const char *orig_id,
    const char *sender, time_t arrival, time_t retry_until,
    const struct dsn_rcpt *rcpts, size_t n, const char *id,
    struct error *err)
{
	struct strbuf sb = STRBUF_INIT(cfg->delivery.bounce_size_limit +
	    BOUNCE_OVERHEAD);
	struct queue_envelope_read orig;
	struct bounce_src src = { -1, 0, 0 };
	char path[CONFIG_PATH_MAX + 64];
	char *rcpt[1];
	struct queue_envelope env;
	struct dsn_report rep;
	uint64_t msize;
	int rc;

	snprintf(path, sizeof(path), "%s/queue/%s", cfg->spool.path, orig_id);
	src.fd = queue_file_open(path, &orig, err);
	if (src.fd < 0)
		return -1;
	src.size = orig.size;
	memset(&rep, 0, sizeof(rep));
	rep.reporting_mta = cfg->server.hostname;
	rep.queue_id = orig_id;
	rep.sender = sender;
	rep.arrival = arrival;
	rep.now = time(NULL);
	rep.retry_until = retry_until;
	rep.ret = orig.ret;
	rep.envid = orig.envid;
	rep.size_limit = cfg->delivery.bounce_size_limit;
	rep.rcpts = rcpts;
	rep.nrcpt = n;
	rep.read = bounce_read;
	rep.ctx = &src;
	rc = dsn_compose(&rep, &sb, err);
	close(src.fd);
	queue_envelope_free(&orig);
	if (rc < 0) {
		strbuf_free(&sb);
		return -1;
	}
	msize = sb.len;
	rcpt[0] = (char *)sender;
	memset(&env, 0, sizeof(env));
	env.received = time(NULL);
	env.client_address = "";
	env.client_name = "localhost";
	env.helo = cfg->server.hostname;
	env.protocol = "DSN";
	env.tls = "none";
	env.auth_user = "";
	env.sender = "";
	env.recipients = rcpt;
	env.recipient_count = 1;
	if (queue_envelope_format(&sb, id, &env, msize) < 0) {
		strbuf_free(&sb);
		return error_set(err, "bounce envelope does not fit");
	}
	rc = bounce_commit(cfg, id, sb.data, sb.len, err);
	strbuf_free(&sb);
	return rc;
}
