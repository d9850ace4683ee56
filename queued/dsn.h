/*
 * dsn.h - delivery status notifications: the RFC 3464 report
 * elemta-queued composes (bounces, delay warnings, success DSNs) and
 * NOTIFY's meaning (dsn_wanted).  The RFC 3461 parameter vocabulary
 * (NOTIFY bits, RET, xtext) is common/dsn_param.h's, shared with smtpd;
 * smtp_client.c and the queue manager use both.
 *
 * dsn_compose's promises (each tested in tests/unit/test_dsn.c):
 *  - the output is one RFC 5322 message with CRLF line ends: headers
 *    (From: MAILER-DAEMON@<reporting host>, To: the original sender,
 *    Auto-Submitted: auto-replied, MIME-Version, Content-Type
 *    multipart/report; report-type=delivery-status), then exactly three
 *    parts: text/plain (a human-readable account naming every
 *    recipient reported and its remote reply), message/delivery-status
 *    (RFC 3464 per-message and per-recipient fields) and the original:
 *    text/rfc822-headers for RET=HDRS or no RET, message/rfc822 for
 *    RET=FULL when the message fits size_limit (otherwise its headers);
 *  - the boundary occurs nowhere inside a part;
 *  - every string from outside (addresses, reply text, host names,
 *    ENVID) has its control bytes replaced, so no CR or LF of theirs can
 *    start a header or a part; every line is at most 998 octets;
 *  - the envelope sender of the report is always <> (dsn_compose
 *    refuses a report about a message whose own sender was <>: no bounce
 *    of a bounce).
 */
#ifndef ELEMTA_QUEUED_DSN_H
#define ELEMTA_QUEUED_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "dsn_param.h"
#include "error.h"
#include "strbuf.h"

/* RFC 3464 §2.3.3 Action. */
enum dsn_action {
	DSN_ACTION_FAILED,
	DSN_ACTION_DELAYED,
	DSN_ACTION_DELIVERED,
	DSN_ACTION_RELAYED,   /* delivered to a next hop without DSN */
};

/* One recipient reported on. */
struct dsn_rcpt {
	const char *final_recipient;     /* the address delivered to     */
	const char *original_recipient;  /* ORCPT "type;address", or NULL */
	enum dsn_action action;
	const char *status;              /* RFC 3463 "5.1.1"             */
	const char *remote_mta;          /* next hop's name, or NULL     */
	int reply_code;                  /* its reply, 0: none            */
	const char *diagnostic;          /* the reply's text (or the
	                                    local reason when code 0)    */
};

/* The report: what it is about and how to build it. */
struct dsn_report {
	const char *reporting_mta;       /* server.hostname              */
	const char *queue_id;            /* the original message's id    */
	const char *sender;              /* the original envelope sender */
	const char *envid;               /* ENVID, or NULL               */
	time_t arrival;                  /* when it was accepted         */
	time_t now;                      /* Date:, Last-Attempt-Date     */
	time_t retry_until;              /* delayed: when it will expire */
	enum dsn_ret ret;
	size_t size_limit;               /* RET=FULL up to this many bytes */
	const struct dsn_rcpt *rcpts;
	size_t nrcpt;
	/* The original message, read from its start in chunks: returns
	 * the bytes put in buf (at most size), 0 at the end, -1 on error. */
	long (*read)(void *ctx, char *buf, size_t size);
	void *ctx;
};

/* dsn_compose - the report as a whole message into out (appended; out's
 * limit bounds it; on failure out is left as it was).  The caller sends it from <> to report->sender.
 * Returns -1 (err) when the sender is <>, a field is missing, the
 * original cannot be read or out's limit is too small. */
int dsn_compose(const struct dsn_report *report, struct strbuf *out,
    struct error *err);

/* dsn_wanted - whether the sender asked for (or by default gets) a
 * report of this action: never for a <> sender or NOTIFY=NEVER;
 * failures unless NOTIFY lacks FAILURE; delays only with DELAY or by
 * default (the caller decides whether warnings are on); successes only
 * with SUCCESS. */
bool dsn_wanted(const char *sender, unsigned notify, enum dsn_action a);

/* dsn_action_name - "failed", "delayed", "delivered", "relayed". */
const char *dsn_action_name(enum dsn_action a);

#endif
