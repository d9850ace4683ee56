/*
 * milter.h - elemta-policyd's milter client: at END-OF-MESSAGE, replay
 * the transaction smtpd describes (CONNECT, HELO, MAIL, each RCPT, DATA,
 * the headers, the body, EOM) to each configured milter in list order
 * (those naming the request's listener mode), on the worker's event
 * loop, and collect one outcome: a verdict and the message edits.
 *
 * Why here, not in smtpd (docs/milters.md): smtpd, the internet-facing
 * process, then opens no connection to anything but policyd; policyd
 * already holds the spooled message (a read-only descriptor) at
 * END-OF-MESSAGE; the milters' edits travel back in the reply
 * (msg_edit.h's `elemta_edit=` lines) and smtpd applies them to the spool
 * file before it commits it, all or nothing.
 *
 * Promises:
 *  - never a hang: each milter's whole conversation (connect to its EOM
 *    answer) is bounded by its `timeout`; a milter that is down, slow,
 *    closes, or answers anything the protocol does not allow at that
 *    step is a failure, handled by its `fail_mode` (tempfail: the
 *    outcome is 451 4.3.5; accept: the milter is skipped, its edits
 *    dropped) - never a crash, never a silent accept in tempfail mode;
 *  - the first milter that rejects, tempfails or discards decides (its
 *    own and later milters' edits are dropped); accept ends that milter's
 *    part; quarantine from any milter makes the outcome quarantine;
 *  - the edits of the milters that continued or accepted at EOM are kept
 *    in order (milter by milter, each in the order it sent them); every
 *    milter sees the message as received (edits of earlier milters are
 *    not shown to later ones, as with Postfix);
 *  - a modification the milter did not negotiate is a protocol failure.
 * Called by policyd/worker.c (milter_run_start), elemtactl check-config
 * (milter_probe).
 */
#ifndef ELEMTA_POLICYD_MILTER_H
#define ELEMTA_POLICYD_MILTER_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "config.h"
#include "counter.h"
#include "msg_edit.h"
#include "wire.h"
#include <elemta/plugin.h>

struct milter_chain;
struct milter_run;

/* The outcome of one run. */
struct milter_outcome {
	enum elemta_action action;    /* continue, reject, tempfail,
	                               * discard or quarantine             */
	int code;                     /* 0: the action's default          */
	char enhanced[16];
	char text[ELEMTA_RESULT_TEXT_MAX];
	char milter[CONFIG_NAME_MAX]; /* who decided, "" when none        */
	struct msg_edits edits;       /* owned by the outcome             */
};

/* milter_chain_new - the configured milters (copied) and the host name
 * sent as macro `j`; NULL when cfg has none. */
struct milter_chain *milter_chain_new(const struct config *cfg);
void milter_chain_free(struct milter_chain *mc);
/* milter_chain_applies - some milter serves listener mode (its name:
 * the request's elemta_listen_mode). */
bool milter_chain_applies(const struct milter_chain *mc, const char *mode);
/* milter_chain_flush_metrics - per milter, since the last flush:
 * elemta_milter_verdicts_total{milter,verdict},
 * elemta_milter_errors_total{milter,error} and
 * elemta_milter_seconds_total{milter} / elemta_milter_calls_total{milter}
 * into the counter table, in one decision transaction. */
void milter_chain_flush_metrics(struct milter_chain *mc,
    struct counter_store *cs);

/* The caller's callback: out is the caller's from then on (free its
 * edits with msg_edits_free).  Never called from inside milter_run_start
 * or milter_run_cancel. */
typedef void (*milter_done_fn)(void *arg, struct milter_outcome *out);

/* milter_run_start - replay req (borrowed: it must stay valid until done
 * runs or the run is cancelled) and the message in message_fd (taken
 * over) to every milter serving req's listener mode, on base. */
struct milter_run *milter_run_start(struct milter_chain *mc,
    struct event_base *base, const struct wire_request *req,
    int message_fd, milter_done_fn done, void *arg);
/* milter_run_cancel - stop now (connections closed, done never runs). */
void milter_run_cancel(struct milter_run *r);

/* milter_probe - connect to m and negotiate options within timeout_ms
 * (blocking; for elemtactl check-config).  0, or -1 with err. */
int milter_probe(const struct config_milter *m, uint64_t timeout_ms,
    struct error *err);

#endif
