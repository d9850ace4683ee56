/*
 * bounce.h - bounces of elemta-queued: the RFC 3464 report (dsn.c) of a
 * message's failed recipients, committed to the spool as a new message
 * from <> to the original sender, in the same format smtpd writes
 * (common/queue_file.h) and with the same durability (tmp/ file, fsync,
 * rename into queue/ never over an existing file, fsync of queue/).  The
 * queue manager then picks it up and routes it like any other message.
 */
#ifndef ELEMTA_QUEUED_BOUNCE_H
#define ELEMTA_QUEUED_BOUNCE_H

#include <time.h>

#include "config.h"
#include "dsn.h"
#include "error.h"
#include "queue_state.h"

/* bounce_id_new - a fresh queue id (the spool's 16 hex digits). */
void bounce_id_new(char id[QUEUE_ID_MAX + 1]);

/* bounce_write - the report on rcpts (n) of message orig_id (sender,
 * arrival) into spool queue/id: a bounce, or a delay warning when the
 * recipients are DSN_ACTION_DELAYED (retry_until: when they expire).  An
 * id already in queue/ is success (a crash after the rename: it is there
 * already).  The original is read from spool queue/orig_id. */
int bounce_write(const struct config *cfg, const char *orig_id,
    const char *sender, time_t arrival, time_t retry_until,
    const struct dsn_rcpt *rcpts, size_t n, const char *id,
    struct error *err);

#endif
