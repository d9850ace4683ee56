/*
 * host_internal.h - the plugin host's private structures, shared by
 * plugin_host.c (loader, chain), host_ctx.c (the elemta_ctx_* accessors and
 * host services) and host_cfg.c (the elemta_cfg_* accessors).  Nothing
 * outside those three files includes it; plugins never see it.
 */
#ifndef ELEMTA_POLICYD_HOST_INTERNAL_H
#define ELEMTA_POLICYD_HOST_INTERNAL_H

#include <event2/event.h>

#include "addr.h"
#include "builtin.h"
#include "plugin_host.h"


struct auth_users;
struct auth_job;
struct host_name_cache;

#define HOST_DECISION_ACTIONS 5
/* Upper bounds (microseconds) of the decision latency histogram's
 * buckets; the +Inf bucket follows.  plugin_host.c prints them in
 * seconds as the `le` labels. */
#define HOST_LATENCY_BUCKETS 14
/* Distinct plugin metric names counted in memory between two flushes;
 * past them elemta_metric_add writes the table directly. */
#define HOST_PLUGIN_METRICS 64
/* The longest plugin metric name (host_ctx.c checks it). */
#define HOST_PLUGIN_METRIC_NAME_MAX 200

/* A plugin metric's increments since the last flush. */
struct host_plugin_metric {
	char name[HOST_PLUGIN_METRIC_NAME_MAX + 1];
	uint64_t delta;
};

/* One loaded plugin of the chain. */
struct host_plugin {
	char name[CONFIG_NAME_MAX];        /* configured name               */
	char file[CONFIG_PATH_MAX];        /* path, or "built-in"           */
	const struct elemta_plugin *desc;
	void *dl;                          /* dlopen handle, NULL built-in  */
	int dl_fd;                         /* the checked file, open while
	                                    * loaded: glibc matches dlopen
	                                    * names, so /proc/self/fd/N must
	                                    * never be reused for another
	                                    * plugin; -1 for built-ins      */
	void *state;                       /* from init                     */
	builtin_auth_gate auth_gate;       /* built-ins only, else NULL     */
	bool initialized;
	/* Accumulated since the last metric flush (cheap: no I/O per call). */
	uint64_t calls;
	uint64_t usec;
	/* decisions this plugin made, per phase and action */
	uint64_t decided[ELEMTA_PHASE_EOM + 1][HOST_DECISION_ACTIONS];
};

struct plugin_host {
	struct host_plugin *plugins;
	size_t count;
	size_t cap;
	struct counter_store *cs;          /* borrowed, may be NULL         */
	unsigned ipv6_prefix;
	char config_dir[CONFIG_PATH_MAX];  /* for relative plugin paths    */
	bool in_decision;                  /* counter_decision_begin called */
	struct auth_users *auth;           /* AUTH verification, borrowed;
	                                    * NULL: not configured          */
	uint32_t auth_max_attempts;        /* per client and minute, 0 off  */
	uint32_t auth_delay_max_ms;        /* cap on a gate's delay         */
	/* decisions no plugin made (every hook continued, or the host
	 * answered itself), per phase and action, since the last flush */
	uint64_t decisions[ELEMTA_PHASE_EOM + 1][HOST_DECISION_ACTIONS];
	/* decision latency since the last flush: per-bucket (not yet
	 * cumulative) counts, the +Inf bucket last; sum in microseconds */
	uint64_t latency[HOST_LATENCY_BUCKETS + 1];
	uint64_t latency_count;
	uint64_t latency_usec;
	/* DNS (host_dns.c): NULL resolver = every lookup TEMPFAIL */
	struct event_base *dns_base;
	struct dns_resolver *dns;
	struct plugin_dns_ops dns_ops;
	uint64_t dns_timeout_ms;           /* dns.timeout                */
	uint64_t dns_wait_ms;              /* one wait: + a margin       */
	uint64_t dns_budget_ms;
	bool client_names;
	struct host_name_cache *names;     /* per worker, by TTL        */
	/* since the last flush: lookups per type x status, waits,
	 * client-name results (ok, tempfail, failed) */
	uint64_t dns_lookups[5];           /* by enum elemta_dns_status */
	uint64_t dns_waits;
	uint64_t name_results[3];
	/* elemta_metric_add's in decisions, since the last flush */
	struct host_plugin_metric plugin_metrics[HOST_PLUGIN_METRICS];
	size_t plugin_metric_count;
};

/* The request context a hook receives (opaque to plugins). */
struct elemta_ctx {
	struct plugin_host *host;
	const struct host_plugin *plugin;  /* whose hook runs now           */
	const struct plugin_request *rq;
	const struct wire_request *req;
	enum elemta_phase phase;
	const char *session;               /* for log lines                 */
	char client_ip[ADDR_TEXT_MAX];     /* canonical, or the raw text    */
	char client_key[ADDR_TEXT_MAX + 8];/* IPv6 folded to its network    */
	bool client_ip_valid;
	const char *sender;                /* NULL before MAIL              */
	const char *recipient;             /* RCPT only                     */
	size_t recipient_count;
	uint64_t size;
	unsigned client_port;
	/* where elemta_ctx_prepend_header adds (the decision's); NULL:
	 * nowhere (the call fails) */
	struct wire_headers *headers;
	struct addr_ip client_addr;        /* when client_ip_valid          */
	/* DNS: the request's lookups (created on the first one, kept across
	 * waits); lookups refused when !dns_allowed (init, on_auth) */
	struct plugin_wait *wait;
	bool dns_allowed;
};

/* ==== host_dns.c ==== */

/* host_wait_get - the request's lookup state, created on first use. */
struct plugin_wait *host_wait_get(struct elemta_ctx *ctx);
/* host_wait_outstanding - lookups still unanswered. */
unsigned host_wait_outstanding(const struct plugin_wait *w);
/* host_wait_arm - the request now waits: arm the wait's bound and the
 * ready callback (NULL: the one of the previous wait).  -1 (nothing outstanding, over ELEMTA_DNS_WAITS_MAX,
 * no event loop): the caller answers the request as a failure. */
int host_wait_arm(struct plugin_wait *w, plugin_wait_ready ready,
    void *arg);
/* host_wait_resume_index / set - the chain index of the hook to call
 * again. */
size_t host_wait_resume_index(const struct plugin_wait *w);
void host_wait_set_resume(struct plugin_wait *w, size_t index);
/* host_wait_headers - the headers prepended before the wait, kept for
 * the resumed decision. */
struct wire_headers *host_wait_headers(struct plugin_wait *w);
/* host_wait_set_started / host_wait_decide_started - when the decision
 * began (its latency covers the waits). */
void host_wait_set_started(struct plugin_wait *w, const struct timespec *t0);
struct timespec host_wait_decide_started(const struct plugin_wait *w);
/* host_names_step - CONNECT: the client's names (FCrDNS), from the
 * worker's cache or the request's lookups; 1 while a lookup is pending,
 * else 0 (ctx's names and statuses set). */
int host_names_step(struct elemta_ctx *ctx);
/* host_names_attr - the names (client_name, reverse_client_name and
 * their _status attributes) the host looked up for this request, or
 * NULL when it did not. */
const char *host_names_attr(const struct elemta_ctx *ctx, const char *name);
/* host_names_fill - copy the looked-up names into d (d->names). */
void host_names_fill(const struct elemta_ctx *ctx, struct plugin_decision *d);
/* host_names_cache_free - at plugin_host_free. */
void host_names_cache_free(struct plugin_host *h);

/* host_ctx_init - build the context of one request (values parsed once). */
void host_ctx_init(struct elemta_ctx *ctx, struct plugin_host *h,
    const struct plugin_request *rq, enum elemta_phase phase);
/* host_ctx_attr - an attribute, honouring the listener (extensions are
 * invisible on the Postfix listener); NULL when absent. */
const char *host_ctx_attr(const struct elemta_ctx *ctx, const char *name);

/* host_ctx_init_plugin - the plugin whose init runs now (for elemta_log
 * and elemta_metric_add called with ctx NULL); NULL outside init. */
extern const struct host_plugin *host_ctx_init_plugin;
extern struct plugin_host *host_ctx_init_host;

/* host_run_chain - each plugin's hook for ctx->phase until one does not
 * continue; the verdict (cleaned) and the deciding plugin go to d. */
void host_run_chain(struct plugin_host *h, struct elemta_ctx *ctx,
    struct plugin_decision *d);
/* host_usec_since - microseconds elapsed since t0 (CLOCK_MONOTONIC). */
uint64_t host_usec_since(const struct timespec *t0);
/* host_result_clean - a plugin's result made safe for the wire. */
void host_result_clean(struct elemta_result *res, enum elemta_action action);
/* host_result_tempfail - the host's own "try again" verdict. */
void host_result_tempfail(struct elemta_result *res, int code,
    const char *enh, const char *text);
/* host_log_decision - the one log line of a refusal. */
void host_log_decision(const struct elemta_ctx *ctx,
    const struct plugin_decision *d);
/* host_count_decision - the final verdict into the decision metrics. */
void host_count_decision(struct plugin_host *h,
    const struct plugin_decision *d);
/* host_log_commit_failure - a decision's counter transaction was lost. */
void host_log_commit_failure(const struct plugin_host *h,
    const struct elemta_ctx *ctx, const struct error *err);

/* The AUTH phase (policyd/auth.c), on the Elemta listener only.
 * auth_decide_begin answers what needs no hash (no users table, the
 * attempt rate, the built-in gates) and returns 0 with d filled, or
 * prepares job and returns 1; auth_decide_finish takes the hashed job
 * (or NULL when the request came verified: rq->auth_succeeded 0 or 1)
 * and runs the on_auth hooks with its outcome.  auth_decide does both,
 * hashing on this thread. */
int auth_decide_begin(struct plugin_host *h, struct elemta_ctx *ctx,
    struct plugin_decision *d, struct auth_job *job);
void auth_decide_finish(struct plugin_host *h, struct elemta_ctx *ctx,
    struct auth_job *job, struct plugin_decision *d);
void auth_decide(struct plugin_host *h, struct elemta_ctx *ctx,
    struct plugin_decision *d);

/* host_cfg_node - the config node behind an elemta_cfg handle. */
const struct config_node *host_cfg_node(const elemta_cfg *cfg);

#endif
