/*
 * host_dns.c - DNS for the plugin chain: elemta_ctx_dns_lookup and
 * elemta_pending (the ABI side), the per-request store of answers and the
 * waits of plugin_host_decide_begin/resume (struct plugin_wait), and the
 * client's names at CONNECT (FCrDNS) with the worker's cache of them.
 *
 * Called by plugins (through the ABI), by plugin_host.c (the chain
 * walker arms waits and runs the client-name step) and by host_ctx.c
 * (the names as request attributes).  Runs on the worker's event loop:
 * a lookup never blocks, its answer arrives in a resolver callback
 * (common/dns.h: never from inside dns_query), and the request's ready
 * callback runs from an event of its own, never from inside a call of
 * the caller's.
 *
 * Untrusted: every answer (a DNS server is anyone's), copied into
 * bounded host memory and handed to plugins as the ABI's types, never
 * as dns.h's structures.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host_internal.h"
#include "log.h"

/* PTR names of one client checked for a forward match (Postfix checks
 * every name; a client with more is misconfigured or hostile). */
#define HOST_FCRDNS_NAMES_MAX 10
/* The worker's client-name cache: slots (direct-mapped by address) and
 * the longest any entry is kept, whatever its TTL says. */
#define HOST_NAME_CACHE_SLOTS 1024
#define HOST_NAME_CACHE_TTL_MAX 3600
#define HOST_NAME_CACHE_TTL_MIN 10

/* One lookup of a request, kept (answered) until the decision ends. */
struct host_lookup {
	struct host_lookup *next;
	struct plugin_wait *w;
	struct dns_query *q;               /* while outstanding            */
	bool done;
	enum elemta_dns_type type;
	char name[DNS_NAME_MAX];
	struct elemta_dns_answer answer;   /* valid once done              */
	struct elemta_dns_record *records;
	char *text;                        /* the records' strings         */
	char why[160];
};

/* A request's DNS state (see plugin_host.h). */
struct plugin_wait {
	struct plugin_host *h;
	struct host_lookup *lookups, **tail;
	unsigned count;                    /* lookups made                 */
	unsigned outstanding;
	unsigned waits;                    /* host_wait_arm calls          */
	size_t resume;                     /* chain index to call again    */
	struct timespec started;           /* the first lookup            */
	struct timespec decide_started;
	bool expired;                      /* the request's budget spent   */
	bool armed;
	struct event *ev_timer, *ev_ready;
	plugin_wait_ready ready;
	void *ready_arg;
	/* the client's names (CONNECT) */
	bool names_pending;                /* their lookups under way     */
	bool names_done;
	char client_name[DNS_NAME_MAX];
	char reverse_name[DNS_NAME_MAX];
	const char *name_status;           /* ELEMTA_NAME_*                */
	const char *reverse_status;
	/* headers the hooks before the waiting one prepended (they are not
	 * run again) */
	struct wire_headers headers;
};

struct host_name_entry {
	char ip[ADDR_TEXT_MAX];            /* "" empty slot                */
	char client_name[DNS_NAME_MAX];
	char reverse_name[DNS_NAME_MAX];
	const char *name_status, *reverse_status;
	time_t expires;                    /* CLOCK_MONOTONIC seconds      */
};

struct host_name_cache {
	struct host_name_entry slot[HOST_NAME_CACHE_SLOTS];
};

/* ==== Settings ==== */

/* The margin the host's wait gives the resolver beyond dns.timeout, so
 * the resolver's own TEMPFAIL normally comes first. */
#define HOST_DNS_WAIT_MARGIN_MS 500
/* dns.timeout when a config has none (dns.c's own default). */
#define HOST_DNS_TIMEOUT_MS 5000

/* plugin_host_set_dns - see plugin_host.h. */
void
plugin_host_set_dns(struct plugin_host *h, struct event_base *base,
    struct dns_resolver *r, const struct plugin_dns_ops *ops,
    uint64_t timeout_ms, uint64_t budget_ms, bool client_names)
{
	h->dns_base = base;
	h->dns = r;
	if (ops != NULL)
		h->dns_ops = *ops;
	h->dns_timeout_ms = timeout_ms ? timeout_ms : HOST_DNS_TIMEOUT_MS;
	h->dns_wait_ms = h->dns_timeout_ms + HOST_DNS_WAIT_MARGIN_MS;
	h->dns_budget_ms = budget_ms ? budget_ms : h->dns_wait_ms;
	h->client_names = client_names && r != NULL;
}

/* The resolver's own calls (common/dns.h). */
static const struct plugin_dns_ops host_dns_real_ops = {
	.query = dns_query,
	.cancel = dns_query_cancel,
};

/* plugin_host_resolver_new - see plugin_host.h. */
struct dns_resolver *
plugin_host_resolver_new(struct plugin_host *h, struct event_base *base,
    const struct config *cfg, uint64_t budget_ms)
{
	struct dns_options opt;
	struct dns_resolver *r;
	struct error err;

	dns_options_config(&opt, cfg);
	r = dns_resolver_new(base, &opt, &err);
	if (r == NULL) {
		log_err("DNS resolver: %s; every lookup fails temporarily",
		    err.text);
		return NULL;
	}
	plugin_host_set_dns(h, base, r, &host_dns_real_ops, opt.timeout_ms,
	    budget_ms, true);
	return r;
}

/* ==== The request's lookups ==== */

/* host_ms_since - monotonic milliseconds since t0. */
static uint64_t
host_ms_since(const struct timespec *t0)
{
	return host_usec_since(t0) / 1000;
}

/* host_wait_get - see host_internal.h. */
struct plugin_wait *
host_wait_get(struct elemta_ctx *ctx)
{
	struct plugin_wait *w = ctx->wait;

	if (w != NULL)
		return w;
	w = xcalloc(1, sizeof(*w));
	w->h = ctx->host;
	w->tail = &w->lookups;
	clock_gettime(CLOCK_MONOTONIC, &w->started);
	ctx->wait = w;
	return w;
}

/* host_wait_outstanding - see host_internal.h. */
unsigned
host_wait_outstanding(const struct plugin_wait *w)
{
	return w != NULL ? w->outstanding : 0;
}

/* host_wait_resume_index - see host_internal.h. */
size_t
host_wait_resume_index(const struct plugin_wait *w)
{
	return w != NULL ? w->resume : 0;
}

/* host_wait_headers - see host_internal.h. */
struct wire_headers *
host_wait_headers(struct plugin_wait *w)
{
	return &w->headers;
}

/* host_wait_set_resume - see host_internal.h. */
void
host_wait_set_resume(struct plugin_wait *w, size_t index)
{
	w->resume = index;
}

/* lookup_fail - l answered TEMPFAIL (or PERMFAIL) without records. */
static void
lookup_fail(struct host_lookup *l, enum elemta_dns_status st, const char *why)
{
	str_copy(l->why, why, sizeof(l->why));
	memset(&l->answer, 0, sizeof(l->answer));
	l->answer.status = st;
	l->answer.type = l->type;
	l->answer.name = l->name;
	l->answer.why = l->why;
	l->done = true;
	l->w->h->dns_lookups[st]++;
}

/* lookup_status - dns.h's status in the ABI's terms. */
static enum elemta_dns_status
lookup_status(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return ELEMTA_DNS_OK;
	case DNS_NODATA:
		return ELEMTA_DNS_NODATA;
	case DNS_NXDOMAIN:
		return ELEMTA_DNS_NXDOMAIN;
	case DNS_PERMFAIL:
		return ELEMTA_DNS_PERMFAIL;
	case DNS_TEMPFAIL:
		break;
	}
	return ELEMTA_DNS_TEMPFAIL;
}

/* lookup_copy - the resolver's answer into l's own memory: only the
 * records of the asked type, every string bounded and terminated. */
static void
lookup_copy(struct host_lookup *l, const struct dns_answer *a)
{
	size_t n = 0, need = 0, off = 0;

	memset(&l->answer, 0, sizeof(l->answer));
	l->answer.status = lookup_status(a->status);
	l->answer.type = l->type;
	l->answer.name = l->name;
	l->answer.ttl = a->ttl;
	l->answer.secure = a->secure;
	str_copy(l->why, a->why ? a->why : "", sizeof(l->why));
	l->answer.why = l->why;
	if (l->answer.status == ELEMTA_DNS_OK && a->records != NULL) {
		for (size_t i = 0; i < a->count; i++) {
			const struct dns_record *r = &a->records[i];

			if ((int)r->type != (int)l->type)
				continue;
			n++;
			if (r->type == DNS_TYPE_TXT)
				need += (r->u.txt.text ? r->u.txt.len : 0) + 1;
			else
				need += DNS_NAME_MAX;
		}
	}
	if (n == 0) {
		if (l->answer.status == ELEMTA_DNS_OK)
			l->answer.status = ELEMTA_DNS_NODATA;
		l->done = true;
		l->w->h->dns_lookups[l->answer.status]++;
		return;
	}
	l->records = xcalloc(n, sizeof(*l->records));
	l->text = xmalloc(need);
	n = 0;
	for (size_t i = 0; i < a->count; i++) {
		const struct dns_record *r = &a->records[i];
		struct elemta_dns_record *e = &l->records[n];
		char *t = l->text + off;

		if ((int)r->type != (int)l->type)
			continue;
		e->ttl = r->ttl;
		switch (r->type) {
		case DNS_TYPE_A:
			memcpy(e->addr, r->u.a, 4);
			inet_ntop(AF_INET, r->u.a, t, DNS_NAME_MAX);
			break;
		case DNS_TYPE_AAAA:
			memcpy(e->addr, r->u.aaaa, 16);
			inet_ntop(AF_INET6, r->u.aaaa, t, DNS_NAME_MAX);
			break;
		case DNS_TYPE_MX:
			e->preference = r->u.mx.preference;
			str_copy(t, r->u.mx.host, DNS_NAME_MAX);
			break;
		case DNS_TYPE_PTR:
			str_copy(t, r->u.name, DNS_NAME_MAX);
			break;
		case DNS_TYPE_TXT:
			e->len = r->u.txt.text ? r->u.txt.len : 0;
			if (e->len > 0)
				memcpy(t, r->u.txt.text, e->len);
			t[e->len] = '\0';
			break;
		default:
			t[0] = '\0';
			break;
		}
		if (r->type != DNS_TYPE_TXT)
			e->len = strlen(t);
		e->text = t;
		off += r->type == DNS_TYPE_TXT ? e->len + 1 : DNS_NAME_MAX;
		n++;
	}
	l->answer.count = n;
	l->answer.records = l->records;
	l->done = true;
	l->w->h->dns_lookups[ELEMTA_DNS_OK]++;
}

/* host_wait_settled - nothing outstanding: hand over to ready() from an
 * event of its own (a resolver callback is no place to decide in). */
static void
host_wait_settled(struct plugin_wait *w)
{
	if (w->outstanding == 0 && w->armed)
		event_active(w->ev_ready, EV_TIMEOUT, 1);
}

/* lookup_done - the resolver's callback. */
static void
lookup_done(const struct dns_answer *a, void *arg)
{
	struct host_lookup *l = arg;

	l->q = NULL;
	lookup_copy(l, a);
	l->w->outstanding--;
	host_wait_settled(l->w);
}

/* wait_cancel_all - every outstanding lookup answered TEMPFAIL why. */
static void
wait_cancel_all(struct plugin_wait *w, const char *why)
{
	for (struct host_lookup *l = w->lookups; l != NULL; l = l->next) {
		if (l->q == NULL)
			continue;
		w->h->dns_ops.cancel(l->q);
		l->q = NULL;
		lookup_fail(l, ELEMTA_DNS_TEMPFAIL, why);
		w->outstanding--;
	}
}

/* The answers of lookups the host refuses (elemta_ctx_dns_lookup's -1). */
static const struct elemta_dns_answer refused_here = {
	.status = ELEMTA_DNS_TEMPFAIL, .name = "",
	.why = "DNS lookups are not available in this hook", .records = NULL,
};
static const struct elemta_dns_answer refused_name = {
	.status = ELEMTA_DNS_TEMPFAIL, .name = "",
	.why = "not a DNS name, or an unsupported record type",
};
static const struct elemta_dns_answer refused_limit = {
	.status = ELEMTA_DNS_TEMPFAIL, .name = "",
	.why = "too many DNS lookups for one request",
};

/* lookup_refuse - the -1 of elemta_ctx_dns_lookup. */
static int
lookup_refuse(const struct elemta_dns_answer *why,
    const struct elemta_dns_answer **answer)
{
	if (answer != NULL)
		*answer = why;
	return -1;
}

/* elemta_ctx_dns_lookup - see <elemta/plugin.h>.  The context is the
 * host's own (plugins see it const): its lookup store grows here. */
int
elemta_ctx_dns_lookup(const elemta_ctx *cctx, const char *name,
    enum elemta_dns_type type, const struct elemta_dns_answer **answer)
{
	struct elemta_ctx *ctx = (struct elemta_ctx *)(uintptr_t)cctx;
	char norm[DNS_NAME_MAX];
	struct plugin_wait *w;
	struct plugin_host *h;
	struct host_lookup *l;

	if (answer != NULL)
		*answer = NULL;
	if (ctx == NULL || !ctx->dns_allowed)
		return lookup_refuse(&refused_here, answer);
	if (name == NULL || dns_name_canonical(name, norm, sizeof(norm)) != 0 ||
	    (type != ELEMTA_DNS_A && type != ELEMTA_DNS_AAAA &&
	    type != ELEMTA_DNS_MX && type != ELEMTA_DNS_TXT &&
	    type != ELEMTA_DNS_PTR))
		return lookup_refuse(&refused_name, answer);
	w = host_wait_get(ctx);
	h = w->h;
	for (l = w->lookups; l != NULL; l = l->next)
		if (l->type == type && strcmp(l->name, norm) == 0) {
			if (!l->done)
				return ELEMTA_DNS_PENDING;
			if (answer != NULL)
				*answer = &l->answer;
			return ELEMTA_DNS_READY;
		}
	if (w->count >= ELEMTA_DNS_LOOKUPS_MAX)
		return lookup_refuse(&refused_limit, answer);
	l = xcalloc(1, sizeof(*l));
	l->w = w;
	l->type = type;
	str_copy(l->name, norm, sizeof(l->name));
	*w->tail = l;
	w->tail = &l->next;
	w->count++;
	if (h->dns == NULL || h->dns_ops.query == NULL) {
		lookup_fail(l, ELEMTA_DNS_TEMPFAIL, "no resolver configured");
	} else if (w->expired) {
		lookup_fail(l, ELEMTA_DNS_TEMPFAIL,
		    "the request's time for DNS is spent");
	} else {
		l->q = h->dns_ops.query(h->dns, l->name, (enum dns_type)type,
		    lookup_done, l);
		if (l->q == NULL) {
			lookup_fail(l, ELEMTA_DNS_TEMPFAIL,
			    "the resolver did not take the query");
		} else {
			w->outstanding++;
			return ELEMTA_DNS_PENDING;
		}
	}
	if (answer != NULL)
		*answer = &l->answer;
	return ELEMTA_DNS_READY;
}

/* elemta_pending - see <elemta/plugin.h>. */
enum elemta_action
elemta_pending(const elemta_ctx *ctx)
{
	(void)ctx;
	return ELEMTA_PENDING;
}

/* ==== Waiting ==== */

/* wait_on_timer - the wait's bound: what is still outstanding fails. */
static void
wait_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct plugin_wait *w = arg;
	char esc[DNS_NAME_MAX * 2];

	(void)fd;
	(void)what;
	for (struct host_lookup *l = w->lookups; l != NULL; l = l->next)
		if (l->q != NULL) {
			log_info("DNS lookup of %s (type %d) timed out; counted "
			    "as a temporary failure", LOG_ESC(esc, l->name),
			    (int)l->type);
			break;
		}
	if (host_ms_since(&w->started) >= w->h->dns_budget_ms)
		w->expired = true;
	wait_cancel_all(w, "DNS lookup timed out");
	host_wait_settled(w);
}

/* wait_on_ready - every lookup is answered: the caller goes on. */
static void
wait_on_ready(evutil_socket_t fd, short what, void *arg)
{
	struct plugin_wait *w = arg;

	(void)fd;
	(void)what;
	if (!w->armed)
		return;
	w->armed = false;
	event_del(w->ev_timer);
	w->ready(w->ready_arg);
}

/* host_wait_arm - see host_internal.h. */
int
host_wait_arm(struct plugin_wait *w, plugin_wait_ready ready, void *arg)
{
	struct plugin_host *h = w->h;
	uint64_t spent, ms;
	struct timeval tv;

	if (w->outstanding == 0 || w->waits >= ELEMTA_DNS_WAITS_MAX ||
	    h->dns_base == NULL)
		return -1;
	if (w->ev_timer == NULL) {
		w->ev_timer = evtimer_new(h->dns_base, wait_on_timer, w);
		w->ev_ready = event_new(h->dns_base, -1, 0, wait_on_ready, w);
		if (w->ev_timer == NULL || w->ev_ready == NULL)
			fatal("event_new failed");
	}
	w->waits++;
	h->dns_waits++;
	if (ready != NULL) {
		w->ready = ready;
		w->ready_arg = arg;
	}
	w->armed = true;
	spent = host_ms_since(&w->started);
	if (spent >= h->dns_budget_ms) {
		/* Over budget already: fail the rest, answer from the loop. */
		w->expired = true;
		wait_cancel_all(w, "the request's time for DNS is spent");
		host_wait_settled(w);
		return 0;
	}
	ms = h->dns_budget_ms - spent;
	if (ms > h->dns_wait_ms)
		ms = h->dns_wait_ms;
	if (w->names_pending) {
		/* The names (PTR, then A/AAAA) get dns.timeout in all:
		 * smtpd's greeting never waits longer for them. */
		if (spent >= h->dns_timeout_ms) {
			wait_cancel_all(w, "the client's names took longer "
			    "than dns.timeout");
			host_wait_settled(w);
			return 0;
		}
		if (ms > h->dns_timeout_ms - spent)
			ms = h->dns_timeout_ms - spent;
	}
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	event_add(w->ev_timer, &tv);
	return 0;
}

/* host_wait_set_started - see host_internal.h. */
void
host_wait_set_started(struct plugin_wait *w, const struct timespec *t0)
{
	w->decide_started = *t0;
}

/* host_wait_decide_started - see host_internal.h. */
struct timespec
host_wait_decide_started(const struct plugin_wait *w)
{
	return w->decide_started;
}

/* plugin_wait_free - see plugin_host.h. */
void
plugin_wait_free(struct plugin_wait *w)
{
	struct host_lookup *l, *next;

	if (w == NULL)
		return;
	for (l = w->lookups; l != NULL; l = next) {
		next = l->next;
		if (l->q != NULL)
			w->h->dns_ops.cancel(l->q);
		free(l->records);
		free(l->text);
		free(l);
	}
	if (w->ev_timer != NULL)
		event_free(w->ev_timer);
	if (w->ev_ready != NULL)
		event_free(w->ev_ready);
	free(w);
}

/* ==== The client's names (FCrDNS) ==== */

/* cache_slot - the slot an address maps to (FNV-1a of its text). */
static struct host_name_entry *
cache_slot(struct plugin_host *h, const char *ip)
{
	uint32_t x = 2166136261u;

	if (h->names == NULL)
		h->names = xcalloc(1, sizeof(*h->names));
	for (const unsigned char *p = (const unsigned char *)ip; *p; p++)
		x = (x ^ *p) * 16777619u;
	return &h->names->slot[x % HOST_NAME_CACHE_SLOTS];
}

/* cache_now - monotonic seconds. */
static time_t
cache_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec;
}

/* names_set - the result of the step, into the request's state. */
static void
names_set(struct plugin_wait *w, const char *name, const char *nstatus,
    const char *reverse, const char *rstatus)
{
	str_copy(w->client_name, name, sizeof(w->client_name));
	str_copy(w->reverse_name, reverse, sizeof(w->reverse_name));
	w->name_status = nstatus;
	w->reverse_status = rstatus;
	w->names_done = true;
	w->names_pending = false;
}

/* names_cache_put - keep a result for ttl seconds (bounded). */
static void
names_cache_put(struct plugin_host *h, const struct elemta_ctx *ctx,
    const struct plugin_wait *w, uint32_t ttl)
{
	struct host_name_entry *e = cache_slot(h, ctx->client_ip);

	if (ttl < HOST_NAME_CACHE_TTL_MIN)
		ttl = HOST_NAME_CACHE_TTL_MIN;
	if (ttl > HOST_NAME_CACHE_TTL_MAX)
		ttl = HOST_NAME_CACHE_TTL_MAX;
	str_copy(e->ip, ctx->client_ip, sizeof(e->ip));
	str_copy(e->client_name, w->client_name, sizeof(e->client_name));
	str_copy(e->reverse_name, w->reverse_name, sizeof(e->reverse_name));
	e->name_status = w->name_status;
	e->reverse_status = w->reverse_status;
	e->expires = cache_now() + (time_t)ttl;
}

/* names_count - the result in the metrics. */
static void
names_count(struct plugin_host *h, const char *status)
{
	h->name_results[strcmp(status, ELEMTA_NAME_OK) == 0 ? 0 :
	    strcmp(status, ELEMTA_NAME_TEMPFAIL) == 0 ? 1 : 2]++;
}

/* forward_matches - the forward answer holds the client's address. */
static bool
forward_matches(const struct elemta_ctx *ctx,
    const struct elemta_dns_answer *fa)
{
	const struct addr_ip *ip = &ctx->client_addr;

	if (fa->status != ELEMTA_DNS_OK)
		return false;
	for (size_t i = 0; i < fa->count; i++)
		if (ip->is_v4 ? memcmp(fa->records[i].addr, ip->bytes + 12,
		    4) == 0 : memcmp(fa->records[i].addr, ip->bytes, 16) == 0)
			return true;
	return false;
}

/* host_names_step - see host_internal.h.  Re-run from the start after
 * each wait, like a hook: the request's answers make it go further. */
int
host_names_step(struct elemta_ctx *ctx)
{
	struct plugin_host *h = ctx->host;
	struct plugin_wait *w = host_wait_get(ctx);
	const struct elemta_dns_answer *a, *fa;
	struct host_name_entry *e;
	char ptr[DNS_REVERSE_MAX];
	const char *found = NULL, *reverse = NULL;
	bool pending = false, tempfail = false;
	uint32_t ttl;
	int rc;

	if (w->names_done)
		return 0;
	if (!ctx->client_ip_valid) {
		names_set(w, "unknown", ELEMTA_NAME_FAILED, "unknown",
		    ELEMTA_NAME_FAILED);
		return 0;
	}
	e = cache_slot(h, ctx->client_ip);
	if (strcmp(e->ip, ctx->client_ip) == 0 && e->expires > cache_now()) {
		names_set(w, e->client_name, e->name_status, e->reverse_name,
		    e->reverse_status);
		return 0;
	}
	if (dns_ptr_name(ctx->client_addr.is_v4 ? AF_INET : AF_INET6,
	    ctx->client_addr.is_v4 ? ctx->client_addr.bytes + 12 :
	    ctx->client_addr.bytes, ptr, sizeof(ptr)) != 0)
		return 0;       /* cannot happen: the buffer fits */
	rc = elemta_ctx_dns_lookup(ctx, ptr, ELEMTA_DNS_PTR, &a);
	if (rc == ELEMTA_DNS_PENDING) {
		w->names_pending = true;
		return 1;
	}
	if (a->status == ELEMTA_DNS_TEMPFAIL) {
		names_set(w, "unknown", ELEMTA_NAME_TEMPFAIL, "unknown",
		    ELEMTA_NAME_TEMPFAIL);
		names_count(h, w->name_status);
		return 0;       /* not cached: try again next time */
	}
	if (a->status != ELEMTA_DNS_OK) {
		names_set(w, "unknown", ELEMTA_NAME_FAILED, "unknown",
		    ELEMTA_NAME_FAILED);
		names_cache_put(h, ctx, w, a->ttl);
		names_count(h, w->name_status);
		return 0;
	}
	ttl = a->ttl;
	for (size_t i = 0; i < a->count && i < HOST_FCRDNS_NAMES_MAX; i++) {
		/* A name Received: could not show is no name at all. */
		if (!wire_client_name_valid(a->records[i].text))
			continue;
		if (reverse == NULL)
			reverse = a->records[i].text;
		rc = elemta_ctx_dns_lookup(ctx, a->records[i].text,
		    ctx->client_addr.is_v4 ? ELEMTA_DNS_A : ELEMTA_DNS_AAAA,
		    &fa);
		if (rc == ELEMTA_DNS_PENDING) {
			pending = true;
			continue;
		}
		if (fa->status == ELEMTA_DNS_TEMPFAIL)
			tempfail = true;
		else if (fa->ttl != 0 && fa->ttl < ttl)
			ttl = fa->ttl;
		if (found == NULL && forward_matches(ctx, fa))
			found = a->records[i].text;
	}
	if (pending) {
		w->names_pending = true;
		return 1;
	}
	if (found != NULL)
		names_set(w, found, ELEMTA_NAME_OK, reverse, ELEMTA_NAME_OK);
	else if (reverse != NULL)
		names_set(w, "unknown", tempfail ? ELEMTA_NAME_TEMPFAIL :
		    ELEMTA_NAME_FAILED, reverse, ELEMTA_NAME_OK);
	else
		names_set(w, "unknown", ELEMTA_NAME_FAILED, "unknown",
		    ELEMTA_NAME_FAILED);
	if (found != NULL || !tempfail)
		names_cache_put(h, ctx, w, ttl);
	names_count(h, w->name_status);
	return 0;
}

/* host_names_attr - see host_internal.h. */
const char *
host_names_attr(const struct elemta_ctx *ctx, const char *name)
{
	const struct plugin_wait *w = ctx->wait;

	if (w == NULL || !w->names_done)
		return NULL;
	if (strcmp(name, WIRE_ATTR_CLIENT_NAME) == 0)
		return w->client_name;
	if (strcmp(name, WIRE_ATTR_REVERSE_CLIENT_NAME) == 0)
		return w->reverse_name;
	if (strcmp(name, ELEMTA_ATTR_CLIENT_NAME_STATUS) == 0)
		return w->name_status;
	if (strcmp(name, ELEMTA_ATTR_REVERSE_CLIENT_NAME_STATUS) == 0)
		return w->reverse_status;
	return NULL;
}

/* host_names_fill - see host_internal.h. */
void
host_names_fill(const struct elemta_ctx *ctx, struct plugin_decision *d)
{
	const struct plugin_wait *w = ctx->wait;

	if (w == NULL || !w->names_done || !ctx->client_ip_valid)
		return;
	d->names = true;
	str_copy(d->client_name, w->client_name, sizeof(d->client_name));
	str_copy(d->reverse_client_name, w->reverse_name,
	    sizeof(d->reverse_client_name));
}

/* host_names_cache_free - see host_internal.h. */
void
host_names_cache_free(struct plugin_host *h)
{
	free(h->names);
	h->names = NULL;
}
