/*
 * queue_state.h - the per-recipient delivery state of one queued message:
 * spool.path/state/<id>, beside the spool file spool.path/queue/<id>.
 * elemta-queued writes it (after every recipient's outcome, before that
 * outcome is acted on); `elemtactl queue` reads it.  This header owns the
 * queue's on-disk vocabulary (docs/internals.md, "Delivery").
 *
 * The file is UTF-8 text, one item per line:
 *     elemta-queue-state 1
 *     hold 0|1
 *     warned 0|1                     delay warning sent
 *     bounce ID|-                    the bounce queued for this message
 *     rcpt STATUS ATTEMPTS NEXT LAST CODE ENHANCED TEXT
 * with one rcpt line per envelope recipient, in the envelope's order:
 * STATUS pending|deferred|delivered|bounced, ATTEMPTS a count, NEXT the
 * next attempt (unix seconds, 0: now), LAST the last attempt (0: none),
 * CODE the last reply's code (0: none or local), ENHANCED "-" or a
 * status code, TEXT the rest of the line (the last reply, printable).
 *
 * Promises (tests/unit/test_queue_state.c): queue_state_parse accepts
 * exactly what queue_state_format writes and refuses anything else
 * (unknown keys, bad numbers, counts over QUEUE_STATE_RCPT_MAX, control
 * bytes) without reading past len; queue_state_write replaces the file
 * atomically and durably (temporary file, fsync, rename, fsync of the
 * directory), so a reader sees the old or the new state, never a mix.
 */
#ifndef ELEMTA_QUEUE_STATE_H
#define ELEMTA_QUEUE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "strbuf.h"

#define QUEUE_STATE_VERSION 1
#define QUEUE_STATE_RCPT_MAX 10000        /* smtpd's max_recipients cap */
#define QUEUE_STATE_TEXT_MAX 512
#define QUEUE_STATE_FILE_MAX (4u << 20)
#define QUEUE_ID_MAX 32

enum queue_rcpt_status {
	QUEUE_RCPT_PENDING,       /* not tried yet (or in flight)      */
	QUEUE_RCPT_DEFERRED,      /* tried, failed temporarily         */
	QUEUE_RCPT_DELIVERED,     /* final: the next hop has it         */
	QUEUE_RCPT_BOUNCED,       /* final: failed permanently / expired */
};

struct queue_rcpt_state {
	enum queue_rcpt_status status;
	unsigned attempts;
	int64_t next_attempt;     /* unix seconds, 0: as soon as possible */
	int64_t last_attempt;     /* 0: never                            */
	int code;                 /* last reply code, 0: none / local    */
	char enhanced[16];        /* "" when none                        */
	char text[QUEUE_STATE_TEXT_MAX]; /* last reply, one printable line */
};

struct queue_state {
	bool hold;
	bool warned;
	char bounce_id[QUEUE_ID_MAX + 1];    /* "" when none             */
	struct queue_rcpt_state *rcpts;      /* owned: queue_state_free  */
	size_t nrcpt;
};

/* queue_rcpt_status_name - "pending", "deferred", "delivered", "bounced". */
const char *queue_rcpt_status_name(enum queue_rcpt_status s);
/* queue_rcpt_final - delivered or bounced. */
bool queue_rcpt_final(enum queue_rcpt_status s);

/* A message's list state (DESIGN.md): hold, deferred (every recipient
 * not yet final waits for a later attempt) or active. */
enum queue_list_state {
	QUEUE_LIST_ACTIVE,
	QUEUE_LIST_DEFERRED,
	QUEUE_LIST_HOLD,
};

/* queue_list_state_name - "active", "deferred", "hold". */
const char *queue_list_state_name(enum queue_list_state s);
/* queue_state_list_state - st's list state at now (unix seconds); the
 * one rule `elemtactl queue list`, `status` and elemta-queued's gauges
 * share. */
enum queue_list_state queue_state_list_state(const struct queue_state *st,
    int64_t now);

/* queue_state_init - nrcpt pending recipients, nothing else set. */
void queue_state_init(struct queue_state *st, size_t nrcpt);
void queue_state_free(struct queue_state *st);
/* queue_state_all_final - every recipient delivered or bounced. */
bool queue_state_all_final(const struct queue_state *st);

/* queue_state_format - the file's text into out. */
int queue_state_format(const struct queue_state *st, struct strbuf *out);
/* queue_state_parse - text (len bytes, need not be terminated) into *st
 * (initialised here; free with queue_state_free even on failure). */
int queue_state_parse(const char *text, size_t len, struct queue_state *st,
    struct error *err);

/* queue_state_path - dir/state/id into out. */
int queue_state_path(const char *spool, const char *id, char *out,
    size_t size);
/* queue_state_read - spool/state/id; 1 read, 0 no file, -1 error. */
int queue_state_read(const char *spool, const char *id,
    struct queue_state *st, struct error *err);
/* queue_state_write - replace spool/state/id atomically and durably
 * (do_fsync false: skip the fsyncs, as spool.fsync false does). */
int queue_state_write(const char *spool, const char *id,
    const struct queue_state *st, bool do_fsync, struct error *err);
/* queue_state_remove - unlink spool/state/id (absent is fine). */
int queue_state_remove(const char *spool, const char *id, struct error *err);

/* queue_id_valid - 1..QUEUE_ID_MAX upper-case hex digits (a spool
 * name: nothing that could leave the directory). */
bool queue_id_valid(const char *id);

/*==== Control marks ====
 * `elemtactl queue flush|hold|release|delete` asks elemta-queued by
 * creating spool.path/control/<id>.<verb> (flush of everything:
 * "all.flush"); elemta-queued applies the mark and removes it (delete:
 * only once the message is gone, so a crash in between repeats it). */

enum queue_control {
	QUEUE_CTL_FLUSH,
	QUEUE_CTL_HOLD,
	QUEUE_CTL_RELEASE,
	QUEUE_CTL_DELETE,
};

#define QUEUE_CTL_ALL "all"   /* the id of "flush everything" */

const char *queue_control_name(enum queue_control c);
/* queue_control_parse_name - "ID.verb" into id (QUEUE_ID_MAX + 1 bytes)
 * and *c; -1 when it is not a mark's name. */
int queue_control_parse_name(const char *name, char *id, enum queue_control *c);
/* queue_control_post - create spool/control/<id>.<verb> (durably). */
int queue_control_post(const char *spool, const char *id, enum queue_control c,
    struct error *err);

#endif
