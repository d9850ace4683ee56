/*
 * queue_file.h - the spool file of one accepted message,
 * spool.path/queue/<id>: the message bytes, then the envelope, ending in
 * the fixed-width "size:" line (docs/internals.md, "Spool").  This module
 * owns the envelope's text format: smtpd's writer (smtpd/spool.c) and
 * elemta-queued's bounce writer format it here, and elemta-queued and
 * `elemtactl queue` read it here.
 *
 * Promises (tests/unit/test_queue_file.c, tests/fuzz/fuzz_queue_file.c):
 *  - queue_envelope_parse accepts what queue_envelope_format writes and
 *    refuses a missing or misplaced size line, a size that does not
 *    match where the envelope starts, an unknown version, a value with a
 *    control byte, a missing queue-id, sender or recipient, more than
 *    QUEUE_FILE_RCPT_MAX recipients; it never reads past len;
 *  - queue_file_open reads only the envelope (the message stays on disk,
 *    read through the descriptor from offset 0 up to size).
 */
#ifndef ELEMTA_QUEUE_FILE_H
#define ELEMTA_QUEUE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dsn_param.h"
#include "error.h"
#include "strbuf.h"

#define QUEUE_FILE_SIZE_LINE 27            /* "size: " 20 digits "\n" */
#define QUEUE_FILE_ENVELOPE_MAX (8u << 20)
#define QUEUE_FILE_RCPT_MAX 10000
#define QUEUE_FILE_VALUE_MAX 2048

/* An envelope as written (all strings borrowed from the caller). */
struct queue_envelope {
	time_t received;
	const char *client_address;
	unsigned client_port;
	const char *client_name;
	const char *helo;
	const char *protocol;     /* "SMTP", "ESMTP", ...              */
	const char *tls;          /* "none" or "TLSv1.3 CIPHER"        */
	const char *auth_user;    /* "" when not authenticated          */
	const char *sender;       /* "" for <>                          */
	char *const *recipients;
	size_t recipient_count;
	/* RFC 3461 (all optional): stored as given, xtext where xtext. */
	enum dsn_ret ret;
	const char *envid;        /* ENVID xtext; NULL or "": none      */
	const unsigned *notify;   /* per recipient NOTIFY bits; NULL: none */
	char *const *orcpt;       /* per recipient "type;xtext"; NULL: none */
};

/* An envelope as read: strings owned (queue_envelope_free). */
struct queue_envelope_read {
	char id[40];
	int64_t received;
	char *sender;
	char *client_address;
	char *helo;
	char **recipients;
	size_t recipient_count;
	/* RFC 3461, decoded; absent in envelopes written before DSN. */
	enum dsn_ret ret;
	char *envid;              /* NULL: none                           */
	unsigned *notify;         /* per recipient, 0: not given          */
	char **orcpt;             /* per recipient "type;address" or NULL */
	uint64_t size;            /* message bytes: [0, size) of the file */
};

#define QUEUE_FILE_ID_LEN 16               /* upper-case hex digits */

/* queue_file_id_new - a fresh id: microseconds since the epoch (strictly
 * increasing within the process) in 13 hex digits, then 3 hex digits of
 * the pid, so ids from concurrent processes do not collide. */
void queue_file_id_new(char out[QUEUE_FILE_ID_LEN + 1]);

/* queue_envelope_format - the envelope of message id (size bytes) into
 * out: every line but the last in any order a reader accepts, the
 * fixed-width size line last.  Values must be single lines already
 * (the writers check them); -1 when one is not or out's limit is hit. */
int queue_envelope_format(struct strbuf *out, const char *id,
    const struct queue_envelope *env, uint64_t size);

/* queue_envelope_parse - the whole file's tail: data holds the last len
 * bytes of a file of file_size bytes (len >= the envelope); fills *env
 * (free with queue_envelope_free, also after failure). */
int queue_envelope_parse(const char *data, size_t len, uint64_t file_size,
    struct queue_envelope_read *env, struct error *err);
void queue_envelope_free(struct queue_envelope_read *env);

/* queue_file_open - open path read-only and parse its envelope; returns
 * the descriptor (the caller closes it) or -1. */
int queue_file_open(const char *path, struct queue_envelope_read *env,
    struct error *err);

#endif
