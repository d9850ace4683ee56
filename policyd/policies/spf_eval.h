/*
 * spf_eval.h - the SPF evaluator (RFC 7208's check_host()) as a pure,
 * resumable state machine: no I/O, no clock, no resolver of its own.
 *
 * Users: the built-in `policy` plugin's SPF rule (spf.c), which feeds it
 * answers from the host's asynchronous resolver, and the unit tests and
 * fuzz target, which feed it zone data of their own.
 *
 *   struct spf_eval *st = spf_eval_new(&input);
 *   struct spf_query q;
 *   while (spf_eval_step(st, &q) == SPF_NEED_DNS)
 *           spf_eval_answer(st, answer_to(q.name, q.type));
 *   result = spf_eval_result(st);
 *   spf_eval_free(st);
 *
 * The contract a caller relies on:
 *   - spf_eval_step returns SPF_NEED_DNS with exactly one (name, type) to
 *     look up, and returns the same query again until spf_eval_answer has
 *     been called; then SPF_DONE, for ever, once the result is known;
 *   - spf_eval_answer copies what it keeps: the answer may be freed as soon
 *     as it returns (dns.h's callback lifetime); an answer whose qtype is
 *     not the one asked counts as a DNS failure;
 *   - every string from DNS and from the client (sender, HELO) is hostile:
 *     records are accepted only in 7-bit printable ASCII, every copy and
 *     every macro expansion is bounded (an expansion that would not fit is
 *     treated as an invalid name, never truncated silently), and a name
 *     handed out in a query is at most 253 octets of printable ASCII
 *     without '\' (no presentation-format escapes), labels 1..63 octets;
 *   - the work is bounded by RFC 7208 section 4.6.4: at most 10 terms that
 *     cause DNS lookups (include, a, mx, ptr, exists, redirect), at most 2
 *     void lookups, at most 10 MX names per mx, at most 10 PTR names per
 *     ptr / %{p}: at most SPF_QUERY_MAX queries in all (the record, 10
 *     mx terms of 1 + 10 lookups, the client's names once, the exp=);
 *   - a DNS failure (TEMPFAIL, PERMFAIL) is temperror, a syntax error
 *     anywhere in a record is permerror, exactly as RFC 7208 sections 4-6
 *     say; the explanation (exp=) is looked up only for a fail, and any
 *     problem with it only drops it.
 */
#ifndef ELEMTA_SPF_EVAL_H
#define ELEMTA_SPF_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "dns.h"

#define SPF_LOOKUP_LIMIT 10     /* terms causing DNS lookups (4.6.4)      */
#define SPF_VOID_LIMIT 2        /* NXDOMAIN / no-answer lookups (4.6.4)    */
#define SPF_MX_LIMIT 10         /* MX names per mx mechanism               */
#define SPF_PTR_LIMIT 10        /* PTR names per ptr / %{p}                */
#define SPF_SENDER_MAX 512      /* local-part@domain, with NUL            */
#define SPF_EXPLANATION_MAX 512 /* expanded exp= text, with NUL            */
#define SPF_PROBLEM_MAX 160     /* why a permerror / temperror, with NUL   */
#define SPF_MECHANISM_MAX 128   /* the matching term as written, with NUL  */
#define SPF_QUERY_MAX (1 + SPF_LOOKUP_LIMIT * (1 + SPF_MX_LIMIT) + \
    1 + SPF_PTR_LIMIT + 1)

/* The results of RFC 7208 section 2.6; spf_result_name gives the names. */
enum spf_result {
	SPF_RESULT_NONE,
	SPF_RESULT_NEUTRAL,
	SPF_RESULT_PASS,
	SPF_RESULT_FAIL,
	SPF_RESULT_SOFTFAIL,
	SPF_RESULT_TEMPERROR,
	SPF_RESULT_PERMERROR,
};

/* The identity checked (RFC 7208 section 2.3, 2.4). */
enum spf_identity {
	SPF_IDENTITY_MAILFROM,
	SPF_IDENTITY_HELO,
};

enum spf_status {
	SPF_NEED_DNS,       /* look up *query, then spf_eval_answer           */
	SPF_DONE,           /* spf_eval_result is final                       */
};

struct spf_input {
	struct addr_ip ip;          /* the client; IPv4-mapped counts as IPv4 */
	const char *sender;         /* MAIL FROM without <>; "" or NULL: <>   */
	const char *helo;           /* the HELO/EHLO argument, NULL: none     */
	enum spf_identity identity; /* HELO: check the HELO name even when
	                             * there is a sender; a <> sender is
	                             * always checked as HELO (2.4)           */
	const char *receiver;       /* %{r}: this host's name, NULL "unknown" */
	uint64_t now;               /* %{t}: seconds since the epoch          */
};

struct spf_query {
	const char *name;           /* valid until the next step/answer call  */
	enum dns_type type;         /* TXT, A, AAAA, MX or PTR                */
};

struct spf_eval;

/* spf_eval_new - an evaluation of input (copied: nothing of input is kept);
 * never NULL (allocation failure is xmalloc's).  A malformed identity
 * (4.3: not a multi-label domain name, a label over 63 octets, an address
 * literal, a sender over SPF_SENDER_MAX) makes the first step SPF_DONE
 * with result none. */
struct spf_eval *spf_eval_new(const struct spf_input *input);
/* spf_eval_free - st may be NULL. */
void spf_eval_free(struct spf_eval *st);

/* spf_eval_step - advance; SPF_NEED_DNS with *query filled, or SPF_DONE. */
enum spf_status spf_eval_step(struct spf_eval *st, struct spf_query *query);
/* spf_eval_answer - the answer to the query the last step returned.
 * Ignored when no query is outstanding. */
void spf_eval_answer(struct spf_eval *st, const struct dns_answer *answer);

/* spf_eval_upcoming - the i-th query (from 0) the evaluation will ask
 * after the outstanding one unless an answer ends the mechanism first:
 * the remaining MX names' or PTR names' addresses.  A caller whose
 * resolver runs queries in parallel starts them now, so an mx term costs
 * two round trips instead of eleven.  false past the last (or when no
 * query is outstanding); q->name is valid until the next step/answer. */
bool spf_eval_upcoming(const struct spf_eval *st, size_t i,
    struct spf_query *q);

/* spf_eval_result - the result once SPF_DONE (none before). */
enum spf_result spf_eval_result(const struct spf_eval *st);
/* spf_eval_explanation - the expanded exp= text of a fail, or NULL when
 * the record gave none (or it could not be used): the caller's default. */
const char *spf_eval_explanation(const struct spf_eval *st);
/* spf_eval_problem - one line saying why a permerror/temperror (or a none
 * of a malformed identity), "" otherwise.  Printable ASCII. */
const char *spf_eval_problem(const struct spf_eval *st);
/* spf_eval_mechanism - the term that decided ("-all", "ip4:192.0.2.0/24",
 * "default" when none matched), "" before or without one. */
const char *spf_eval_mechanism(const struct spf_eval *st);
/* spf_eval_identity - the identity really checked (a <> sender: HELO). */
enum spf_identity spf_eval_identity(const struct spf_eval *st);
/* spf_eval_domain - the identity's domain ("" when it had none). */
const char *spf_eval_domain(const struct spf_eval *st);
/* spf_eval_sender - the identity as checked: "local@domain", with
 * "postmaster" for an empty local-part and for the HELO identity. */
const char *spf_eval_sender(const struct spf_eval *st);
/* spf_eval_lookups - DNS queries the evaluation asked for (a bound test). */
unsigned spf_eval_lookups(const struct spf_eval *st);

/* spf_result_name - "none", "neutral", "pass", "fail", "softfail",
 * "temperror", "permerror" (RFC 7208 section 8, RFC 8601's spf= values). */
const char *spf_result_name(enum spf_result r);

/* spf_macro_expand - expand a macro-string (RFC 7208 section 7) with st's
 * values in the state st is in: for the fuzz target and tests.  exp:
 * allow c, r, t and spaces (an explanation); 0, or -1 on a syntax error or
 * an expansion longer than size - 1.  A %{p} expands to "unknown" unless
 * the evaluation already validated the client's names. */
int spf_macro_expand(const struct spf_eval *st, const char *in, size_t len,
    bool exp, char *out, size_t size);

#endif
