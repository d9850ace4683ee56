/*
 * maildir.h - delivery of one message into a Maildir, the `maildir:/base`
 * transport of elemta-queued: /base/<domain>/<local-part>/{tmp,new,cur},
 * which Dovecot and every Maildir reader take as a mailbox.
 *
 * Promises (tests/unit/test_maildir.c):
 *  - the recipient's domain (lower-cased) and local part are used as
 *    path components only when they cannot leave base: empty, "." or
 *    ".." names, a leading dot, '/', control bytes or a length over 255
 *    are refused (PERMFAIL 5.1.3), as is a recipient without a domain;
 *  - missing directories are created 0700, their entries fsync'd;
 *  - the file name is unique per the Maildir spec,
 *    "<sec>.M<usec>P<pid>Q<seq>.<host>" with '/' and ':' of the host
 *    written \057 and \072;
 *  - the file starts with "Return-Path: <sender>" and "Delivered-To:
 *    <recipient>" (control bytes refused), then the message with LF line
 *    ends (CRLF becomes LF, as Maildir readers expect);
 *  - it is written to tmp/, fsync'd, linked into new/ (never replacing a
 *    file: an existing name is an error, not an overwrite), removed from
 *    tmp/ and new/ is fsync'd before DELIVERED is returned: nothing
 *    partial is ever visible in new/;
 *  - a failure leaves nothing behind in tmp/ or new/ and is TEMPFAIL
 *    (4.3.0; 4.2.2 when the disk or quota is full) unless the recipient
 *    itself is invalid.
 */
#ifndef ELEMTA_QUEUED_MAILDIR_H
#define ELEMTA_QUEUED_MAILDIR_H

#include <stddef.h>

#include "outcome.h"

#define MAILDIR_NAME_MAX 255

struct maildir_delivery {
	const char *base;         /* the transport's /base             */
	const char *hostname;     /* for the unique name               */
	const char *sender;       /* "" for <>                         */
	const char *recipient;    /* local@domain                      */
	/* The message from its start: bytes put in buf (at most size),
	 * 0 at the end, -1 on error. */
	long (*read)(void *ctx, char *buf, size_t size);
	void *ctx;
};

/* maildir_deliver - deliver d's message; o says how it went and path
 * (size bytes, may be NULL) receives the file's name under new/. */
void maildir_deliver(const struct maildir_delivery *d, struct outcome *o,
    char *path, size_t size);

/* maildir_unique_name - the Maildir file name for now (sec, usec),
 * pid, seq and host, into buf; -1 when it does not fit. */
int maildir_unique_name(char *buf, size_t size, long long sec, long usec,
    long pid, unsigned long seq, const char *host);

#endif
