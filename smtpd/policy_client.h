/*
 * policy_client.h - asynchronous policy requests from elemta-smtpd to
 * elemta-policyd over the Unix socket policyd.socket.
 *
 * One client per smtpd process keeps a pool of up to max_conns
 * connections, opened lazily.  Requests are pipelined on a connection
 * (policyd answers in order) and each goes to the least loaded one of its
 * lane: with POLICY_LANES_MIN connections or more, AUTH requests (slow:
 * policyd hashes a password) use the first quarter of the pool (at least
 * one connection), every other request the rest, so a flood of AUTHs
 * never delays another session's decisions; a smaller pool is shared.
 *
 * AUTH requests are not written at once: they wait in a fair queue, one
 * queue per client (the client_address the request carries: the peer
 * address string, not folded), and each lane connection carries at most
 * one AUTH at a time, taken from the clients in turn (round robin).  So
 * a client's AUTH waits for at most one AUTH of every other client with
 * AUTHs waiting, never for a whole flood queued before it.  An AUTH that
 * waited POLICY_AUTH_WAIT_FACTOR * timeout_ms in the queue fails
 * (failed = true, the session answers 454 4.7.0); its timeout_ms on the
 * connection counts from when it is written.
 *
 * A request not answered within timeout_ms fails its connection: every
 * request pending on it completes with failed = true and the socket is
 * closed (the next request reconnects).  Connect errors (policyd down)
 * fail the request at once: policy_client_submit returns NULL.  The
 * done callback is never called from inside policy_client_submit.
 * Applying policyd.fail_mode to a failure, and waiting out delay_ms,
 * are the caller's business.
 * A request's bytes are wiped before they are freed (an AUTH request
 * carries a password).
 */
#ifndef ELEMTA_SMTPD_POLICY_CLIENT_H
#define ELEMTA_SMTPD_POLICY_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "strbuf.h"
#include "msg_edit.h"
#include "wire.h"

#define POLICY_LANES_MIN 3   /* connections from which AUTH has its own */
#define POLICY_CLIENT_KEY_MAX 64  /* bytes of a fair-queue client key */
/* An AUTH waits in the fair queue at most this many timeout_ms: its turn
 * comes after one AUTH of every other waiting client, which under a
 * flood of hashes on a busy machine can take about one timeout_ms; the
 * bound is there so that no session waits for ever, not to shed load
 * (the rate limit and lockouts do that). */
#define POLICY_AUTH_WAIT_FACTOR 2

struct policy_client;
struct policy_request;

/* The outcome of one request. */
struct policy_result {
	bool failed;              /* no answer: timeout, policyd down, ... */
	char why[128];            /* when failed, for the log              */
	struct wire_reply reply;  /* when not failed                       */
	/* reply.ok, kept apart for the AUTH exchange (wire.h says why
	 * OK and DUNNO differ there). */
	bool action_ok;
	/* Hold the reply to the client back this long (policyd's
	 * elemta_delay_ms, capped at timeout_ms / 2; 0: none). */
	uint32_t delay_ms;
	/* The reply's PREPEND headers (wire.h), NULL when none; borrowed,
	 * valid until the done callback returns. */
	const struct wire_headers *headers;
	/* CONNECT: the client's names policyd looked up (its
	 * elemta_client_name and elemta_reverse_client_name, checked with
	 * wire_client_name_valid); "" when it sent none. */
	char client_name[254];
	char reverse_client_name[254];
	/* The END-OF-MESSAGE reply's edits (elemta_edit lines, in order;
	 * common/msg_edit.h): owned by the client, valid during the
	 * callback only; NULL when the reply had none.  A reply with an
	 * edit smtpd cannot parse is turned into 451 4.3.0 (a message is
	 * never committed with part of its edits). */
	const struct msg_edits *edits;
};

typedef void (*policy_done_fn)(void *arg, const struct policy_result *res);

/* policy_result_parse - the value of "action=" into res->reply and
 * res->action_ok (res->failed is left alone). */
void policy_result_parse(const char *action, struct policy_result *res);

/* policy_client_new - nothing is connected yet. */
struct policy_client *policy_client_new(struct event_base *base,
    const char *socket_path, unsigned max_conns, uint64_t timeout_ms);
/* policy_client_connect_all - connect the whole pool now (start-up). */
void policy_client_connect_all(struct policy_client *pc);
/* policy_client_set_fd_wait - a request that carries a descriptor (the
 * END-OF-MESSAGE, which policyd may hand to milters) waits extra_ms
 * longer than policyd.timeout_ms for its answer: the milters' own
 * timeouts added up, so policyd's fail_mode per milter decides, not
 * smtpd's. */
void policy_client_set_fd_wait(struct policy_client *pc, uint64_t extra_ms);

/* policy_client_free - fails every pending request (callbacks run). */
void policy_client_free(struct policy_client *pc);

/* policy_client_submit - queue the encoded request in req (its memory is
 * taken over and req left empty) with fd attached to its first byte (-1:
 * none; the descriptor is taken over and closed once sent or on failure).
 * done(arg, result) runs exactly once unless the request is cancelled.
 * Returns NULL (request failed, why filled in, req and fd released) when
 * no connection to policyd can be made. */
struct policy_request *policy_client_submit(struct policy_client *pc,
    struct strbuf *req, int fd, policy_done_fn done, void *arg,
    char *why, size_t whylen);

/* policy_client_cancel - the callback will not run (a request already
 * written still occupies its place in the connection's reply order; one
 * still in the fair queue is dropped). */
void policy_client_cancel(struct policy_request *r);

#endif
