/*
 * plugin_host.h - elemta-policyd's plugin host: loads the plugin chain and
 * runs it for one policy request.
 *
 * Callers: policyd/worker.c (every request), elemtactl test-plugin (one
 * plugin in isolation with a scratch counter table) and the unit tests.
 * The host implements every function of <elemta/plugin.h> that a plugin
 * calls (host_ctx.c, host_cfg.c); the chain walker and the loader live in
 * plugin_host.c.
 *
 * Chain semantics: plugins run in config order; the first result that is
 * not CONTINUE decides and ends the walk; REJECT/TEMPFAIL refuse the phase,
 * DISCARD/QUARANTINE accept the phase and apply to the whole message.  A
 * decision is one counter-table transaction (counter_decision_begin/end):
 * rate hits of a refused decision are withdrawn, and a commit that fails
 * turns an accepting decision into TEMPFAIL 451 4.3.0 (never a silent
 * allow).
 */
#ifndef ELEMTA_POLICYD_PLUGIN_HOST_H
#define ELEMTA_POLICYD_PLUGIN_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <elemta/plugin.h>

#include "config.h"
#include "counter.h"
#include "dns.h"
#include "error.h"
#include "wire.h"

/* Which listener a request came in on.  Requests from the Postfix listener
 * never honour Elemta's extension attributes. */
enum plugin_listener {
	PLUGIN_LISTENER_ELEMTA = 0,
	PLUGIN_LISTENER_POSTFIX = 1,
};

/* plugin_listener_name - its ELEMTA_LISTENER_ value (plugin.h), as
 * plugins see it in ELEMTA_ATTR_LISTENER and logs name it. */
const char *plugin_listener_name(enum plugin_listener listener);

struct plugin_host;

/* plugin_host_new - an empty chain.  cs (may be NULL: then every rate check
 * fails and the plugins tempfail) is borrowed for rate checks and metrics;
 * ipv6_prefix is counters.ipv6_prefix, used for the "elemta_client_key"
 * attribute (IPv6 clients keyed by their /ipv6_prefix network). */
struct plugin_host *plugin_host_new(struct counter_store *cs,
    unsigned ipv6_prefix);
/* plugin_host_free - destroy every plugin's state, dlclose, free. */
void plugin_host_free(struct plugin_host *h);

/* plugin_host_load_config - add every enabled entry of cfg->plugins, in
 * config order (disabled entries are skipped and never opened).  Fails on
 * the first plugin that cannot be loaded; err names the plugin and file. */
int plugin_host_load_config(struct plugin_host *h, const struct config *cfg,
    struct error *err);
/* plugin_host_add_entry - one plugins[] entry: path "" means a built-in
 * plugin of that name (an unknown name is an error), otherwise a file. */
int plugin_host_add_entry(struct plugin_host *h,
    const struct config_plugin *entry, struct error *err);
/* plugin_host_add_file - dlopen path after the safety checks (regular file,
 * not group/world-writable, owned by root or the running user), check the
 * ELEMTA_PLUGIN_SYMBOL descriptor and its ABI version, then init it with
 * config (may be NULL).  name is the configured name (rate-key namespace,
 * logs). */
int plugin_host_add_file(struct plugin_host *h, const char *name,
    const char *path, const struct config_node *config, struct error *err);
/* plugin_host_add_builtin - a built-in plugin (policyd/builtin.c) by name. */
int plugin_host_add_builtin(struct plugin_host *h, const char *name,
    const struct config_node *config, struct error *err);
/* plugin_host_add - an in-process descriptor (built-ins, tests).  file is
 * what log lines call it ("built-in" when NULL).  desc is borrowed and must
 * outlive the host. */
int plugin_host_add(struct plugin_host *h, const char *name,
    const struct elemta_plugin *desc, const char *file,
    const struct config_node *config, struct error *err);

size_t plugin_host_count(const struct plugin_host *h);
/* plugin_host_name - the i-th plugin's configured name. */
const char *plugin_host_name(const struct plugin_host *h, size_t i);

struct auth_users;

/* plugin_host_set_auth - the users table (policyd/auth.h, borrowed) that
 * AUTH requests are verified against.  An AUTH request on the Elemta
 * listener is then: credentials verified (one crypt(3) call, the password
 * never shown to a plugin), on_auth hooks run with the outcome visible,
 * and the reply is the first refusing hook's verdict, else continue
 * (smtpd: 235 2.7.0) for right credentials or REJECT 535 5.7.8 for wrong
 * ones.  Without a table (NULL, auth.users_file unset) an unverified AUTH
 * is answered TEMPFAIL 454 4.7.0 without running the hooks. */
void plugin_host_set_auth(struct plugin_host *h, struct auth_users *users);
/* plugin_host_set_auth_limits - auth.max_attempts_per_minute (AUTH
 * attempts per client key and minute, counted in the shared table and
 * answered 454 4.7.0 before any hash; 0: no limit) and the longest delay
 * a built-in gate may put on an answer (below policyd.timeout_ms, or
 * smtpd would give up on the connection).  Both 0 until set. */
void plugin_host_set_auth_limits(struct plugin_host *h, uint32_t per_minute,
    uint32_t delay_max_ms);

/* The transaction a connection's requests belong to, on the Postfix
 * listener: Postfix sends recipient_count=0 at RCPT and may ask about
 * one message several times (at MAIL, every RCPT, DATA...), all on the
 * connection of its smtpd process.  The caller keeps one per connection
 * (zeroed to start); plugin_host_decide alone updates it. */
#define PLUGIN_INSTANCE_MAX 128
struct plugin_txn {
	char instance[PLUGIN_INSTANCE_MAX]; /* the `instance` it counts   */
	unsigned accepted;       /* requests at or after MAIL accepted  */
	unsigned rcpt_accepted;  /* RCPT requests accepted              */
};

/* plugin_txn_forget - what txn counted was not stored (the decisions'
 * counter transaction was lost): count the transaction afresh. */
void plugin_txn_forget(struct plugin_txn *txn);

/* One request to decide. */
struct plugin_request {
	const struct wire_request *req;  /* the attributes (borrowed)        */
	enum plugin_listener listener;
	int message_fd;                  /* -1, or the spooled message (EOM) */
	/* Postfix listener: the connection's transaction (borrowed, see
	 * struct plugin_txn); NULL elsewhere or when unknown (the counts
	 * are then 0). */
	struct plugin_txn *txn;
	/* AUTH: 1 the credentials were right, 0 wrong, -1 not verified:
	 * plugin_host_decide then verifies them itself against the users
	 * table given with plugin_host_set_auth (see there). */
	int auth_succeeded;
};

/* The outcome of one decision. */
struct plugin_decision {
	struct elemta_result result;   /* final, codes and defaults filled  */
	enum elemta_phase phase;
	bool accepted;                 /* CONTINUE, DISCARD or QUARANTINE   */
	char plugin[CONFIG_NAME_MAX];  /* who decided; "" when all continued */
	/* Headers the chain's hooks prepended (elemta_ctx_prepend_header),
	 * in order; sent only when the decision accepts. */
	struct wire_headers headers;
	/* CONNECT on the Elemta listener with a resolver: the client names
	 * the host looked up (FCrDNS), for the reply to smtpd; names false
	 * otherwise. */
	bool names;
	char client_name[DNS_NAME_MAX];          /* verified, or "unknown"  */
	char reverse_client_name[DNS_NAME_MAX];  /* the PTR, or "unknown"   */
};

struct auth_job;

/* plugin_host_auth_begin - decide rq up to the password hash, so the
 * caller can run the hash elsewhere (policyd/auth_pool.c).  Returns 0
 * when d is the decision: every request that is not an AUTH on the
 * Elemta listener (decided whole, as plugin_host_decide), and an AUTH
 * answered without a hash (no users table, over
 * auth.max_attempts_per_minute, refused by a built-in gate such as a
 * lockout).  Returns 1 when job is ready for auth_job_run; then
 * plugin_host_auth_finish(h, rq, job, d) with the same rq (its memory
 * still valid) ends the decision.  job->delay_ms asks the caller to
 * answer no sooner than that after this call. */
int plugin_host_auth_begin(struct plugin_host *h,
    const struct plugin_request *rq, struct plugin_decision *d,
    struct auth_job *job);
/* plugin_host_auth_finish - the on_auth hooks with the job's outcome, the
 * counter transaction, the reply in d (as plugin_host_decide). */
void plugin_host_auth_finish(struct plugin_host *h,
    const struct plugin_request *rq, struct auth_job *job,
    struct plugin_decision *d);

/* plugin_host_decide - run the chain for one request and commit its
 * counter transaction.  Never fails: internal problems become TEMPFAIL and
 * are logged.  Logs one line per decision that is not CONTINUE. */
void plugin_host_decide(struct plugin_host *h, const struct plugin_request *rq,
    struct plugin_decision *out);

/* ==== DNS (policyd/host_dns.c) ====
 *
 * Hooks ask for DNS through elemta_ctx_dns_lookup and return
 * elemta_pending() (plugin.h, "DNS"); the host keeps each request's
 * answers (struct plugin_wait) and, at CONNECT on the Elemta listener,
 * looks up the client's names first (FCrDNS, cached per worker by TTL)
 * so every hook sees them.  A caller with an event loop decides with
 * plugin_host_decide_begin/resume and serves other requests while one
 * waits; plugin_host_decide waits on the loop itself (elemtactl
 * test-plugin). */

/* The resolver calls, behind a seam so tests can fake the resolver
 * (the real ones: dns_query, dns_query_cancel). */
struct plugin_dns_ops {
	struct dns_query *(*query)(struct dns_resolver *r, const char *name,
	    enum dns_type type, dns_callback cb, void *arg);
	void (*cancel)(struct dns_query *q);
};

/* plugin_host_set_dns - lookups go to r (borrowed) through ops; the
 * waits' timers run on base.  timeout_ms is dns.timeout (0: 5 s): one
 * wait lasts at most that plus a margin (the resolver answers TEMPFAIL
 * at dns.timeout itself), the client's names at CONNECT at most that in
 * all (then they are "unknown", status tempfail); budget_ms bounds the
 * DNS time of one request (it must end before smtpd gives up: below
 * policyd.timeout_ms).  client_names: look the client's names up at
 * CONNECT.  Without this call every lookup is answered TEMPFAIL "no
 * resolver" at once and the names are not looked up. */
void plugin_host_set_dns(struct plugin_host *h, struct event_base *base,
    struct dns_resolver *r, const struct plugin_dns_ops *ops,
    uint64_t timeout_ms, uint64_t budget_ms, bool client_names);

/* plugin_host_resolver_new - a resolver on base from cfg's dns section
 * (dns.resolvers, dns.timeout...), attached to h with the real
 * dns_query: each wait bounded by dns.timeout (plus a margin: the
 * resolver answers TEMPFAIL at dns.timeout itself), a request's DNS by
 * budget_ms, client names looked up at CONNECT.  NULL (logged) when it
 * cannot be made: lookups then fail temporarily.  Free it with
 * dns_resolver_free once no request waits any more. */
struct dns_resolver *plugin_host_resolver_new(struct plugin_host *h,
    struct event_base *base, const struct config *cfg, uint64_t budget_ms);

struct plugin_wait;
typedef void (*plugin_wait_ready)(void *arg);

/* plugin_host_decide_begin - plugin_host_decide that may wait for DNS:
 * returns 0 with d the decision (and nothing left to free), or 1 when a
 * hook (or the client-name lookup) waits: *wait holds the request's
 * lookups, and ready(arg) runs once from the event loop (never from
 * inside this call) when they are answered or their wait is over; then
 * plugin_host_decide_resume with the same rq (its memory still valid).
 * The hooks that decided before the wait are not run again; the
 * counter writes they made are kept. */
int plugin_host_decide_begin(struct plugin_host *h,
    const struct plugin_request *rq, struct plugin_decision *d,
    plugin_wait_ready ready, void *arg, struct plugin_wait **wait);
/* plugin_host_decide_resume - go on after ready(): the waiting hook is
 * called again, then the rest of the chain.  0 (d decided, wait freed)
 * or 1 (waiting again; ready will run again). */
int plugin_host_decide_resume(struct plugin_host *h,
    const struct plugin_request *rq, struct plugin_wait *wait,
    struct plugin_decision *d);
/* plugin_wait_free - give up a waiting decision (its connection closed):
 * lookups cancelled, ready never runs. */
void plugin_wait_free(struct plugin_wait *wait);

/* plugin_host_flush_metrics - write what was accumulated in memory since
 * the last flush to the counter table, in one transaction, as labelled
 * metric keys (common/metrics_format.h): per-plugin hook calls and time
 * (elemta_plugin_calls_total, elemta_plugin_seconds_total{plugin=...}),
 * decisions (elemta_policy_decisions_total{phase,action,plugin}) and the
 * decision latency histogram (elemta_policy_decision_seconds), and the
 * plugins' elemta_metric_add counts from their decisions.  The
 * worker calls it once a second and at exit. */
void plugin_host_flush_metrics(struct plugin_host *h);

#endif
