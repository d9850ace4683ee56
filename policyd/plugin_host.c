/*
 * plugin_host.c - loads plugins into a chain and walks it for each policy
 * request.
 *
 * Called by policyd/worker.c (start-up, then once per request), by
 * elemtactl test-plugin and by the unit tests.  A shared object is opened
 * only after it passed the ownership and permission checks; each refusal
 * is one line naming the plugin and the file.  Plugins are trusted code
 * once loaded (they run in this process), but their results are not: an
 * out-of-range action, a code that disagrees with the action or a message
 * with control characters is corrected here before it reaches the wire.
 * An AUTH request is handed to policyd/auth.c (auth_decide), which
 * verifies the credentials before the hooks run, so a hook sees the
 * outcome, never the password.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "builtin.h"
#include "host_internal.h"
#include "log.h"

/* The decision latency histogram: bucket bounds in microseconds and the
 * same bounds as printed (seconds), the `le` labels of
 * elemta_policy_decision_seconds_bucket (common/metrics_format.h). */
static const uint64_t latency_bound_us[HOST_LATENCY_BUCKETS] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
	500000, 1000000, 2500000,
};
static const char *const latency_le[HOST_LATENCY_BUCKETS + 1] = {
	"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
	"0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
};

/* ==== Chain construction ==== */

/* plugin_host_new - an empty chain over counter store cs (may be NULL). */
struct plugin_host *
plugin_host_new(struct counter_store *cs, unsigned ipv6_prefix)
{
	struct plugin_host *h = xcalloc(1, sizeof(*h));

	h->cs = cs;
	h->ipv6_prefix = (ipv6_prefix == 0 || ipv6_prefix > 128) ? 64 : ipv6_prefix;
	return h;
}

/* plugin_host_free - destroy the plugins in reverse order, then the host. */
void
plugin_host_free(struct plugin_host *h)
{
	if (h == NULL)
		return;
	for (size_t i = h->count; i-- > 0;) {
		struct host_plugin *p = &h->plugins[i];

		if (p->initialized && p->desc->destroy != NULL)
			p->desc->destroy(p->state);
		if (p->dl != NULL)
			dlclose(p->dl);
		if (p->dl_fd >= 0)
			close(p->dl_fd);
	}
	free(h->plugins);
	host_names_cache_free(h);
	free(h);
}

/* plugin_host_set_auth - the users table AUTH requests are checked on. */
void
plugin_host_set_auth(struct plugin_host *h, struct auth_users *users)
{
	h->auth = users;
}

/* plugin_host_set_auth_limits - the attempt rate and the delay cap. */
void
plugin_host_set_auth_limits(struct plugin_host *h, uint32_t per_minute,
    uint32_t delay_max_ms)
{
	h->auth_max_attempts = per_minute;
	h->auth_delay_max_ms = delay_max_ms;
}

/* plugin_host_count - how many plugins the chain holds. */
size_t
plugin_host_count(const struct plugin_host *h)
{
	return h->count;
}

/* plugin_host_name - the configured name of the i-th plugin. */
const char *
plugin_host_name(const struct plugin_host *h, size_t i)
{
	return i < h->count ? h->plugins[i].name : NULL;
}

/* host_name_valid - configured names become rate-key prefixes and metric
 * names, so they are kept to a small alphabet. */
static bool
host_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= CONFIG_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isalnum(c) && c != '_' && c != '-' && c != '.')
			return false;
	}
	return true;
}

/* host_attach - check a descriptor, init it and append it to the chain.
 * On failure nothing is appended (the caller closes dl). */
static int
host_attach(struct plugin_host *h, const char *name,
    const struct elemta_plugin *desc, const char *file,
    const struct config_node *config, struct error *err)
{
	char esc[ERROR_TEXT_MAX];
	char reason[ERROR_TEXT_MAX];
	struct host_plugin *p;
	void *state = NULL;

	if (!host_name_valid(name))
		return error_set(err, "plugin '%s': invalid name (use letters, "
		    "digits, '_', '-', '.')", LOG_ESC(esc, name));
	for (size_t i = 0; i < h->count; i++)
		if (strcmp(h->plugins[i].name, name) == 0)
			return error_set(err, "plugin '%s' (%s): listed twice",
			    name, file);
	if (desc->abi_version != ELEMTA_PLUGIN_ABI_VERSION)
		return error_set(err, "plugin '%s' (%s): built for plugin ABI "
		    "version %u, this elemta-policyd provides version %u; "
		    "rebuild it against the installed <elemta/plugin.h>",
		    name, file, (unsigned)desc->abi_version,
		    (unsigned)ELEMTA_PLUGIN_ABI_VERSION);
	if (desc->init == NULL && config != NULL)
		return error_set(err, "plugin '%s' (%s): takes no config, but "
		    "a config: section is given", name, file);

	if (h->count == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 4;
		h->plugins = xrealloc(h->plugins, h->cap * sizeof(*h->plugins));
	}
	p = &h->plugins[h->count];
	memset(p, 0, sizeof(*p));
	p->dl_fd = -1;
	str_copy(p->name, name, sizeof(p->name));
	str_copy(p->file, file, sizeof(p->file));
	p->desc = desc;
	p->auth_gate = builtin_auth_gate_of(desc);

	if (desc->init != NULL) {
		int rc;

		reason[0] = '\0';
		host_ctx_init_plugin = p;
		host_ctx_init_host = h;
		rc = desc->init((const elemta_cfg *)(const void *)config, &state,
		    reason, sizeof(reason));
		host_ctx_init_plugin = NULL;
		host_ctx_init_host = NULL;
		if (rc != 0) {
			reason[sizeof(reason) - 1] = '\0';
			return error_set(err, "plugin '%s' (%s): init failed: %s",
			    name, file, reason[0] ? log_escape(esc, sizeof(esc),
			    reason, strlen(reason)) :
			    "no reason given");
		}
	}
	p->state = state;
	p->initialized = true;
	h->count++;
	return 0;
}

/* plugin_host_add - an in-process descriptor. */
int
plugin_host_add(struct plugin_host *h, const char *name,
    const struct elemta_plugin *desc, const char *file,
    const struct config_node *config, struct error *err)
{
	return host_attach(h, name, desc, file ? file : "built-in", config, err);
}

/* plugin_host_add_builtin - a plugin compiled into elemta-policyd. */
int
plugin_host_add_builtin(struct plugin_host *h, const char *name,
    const struct config_node *config, struct error *err)
{
	char esc[256];
	const struct elemta_plugin *desc = builtin_plugin_find(name);

	if (desc == NULL)
		return error_set(err, "plugin '%s': no path given and there is "
		    "no built-in plugin of that name (built-in: %s)",
		    LOG_ESC(esc, name), builtin_plugin_names());
	return host_attach(h, name, desc, "built-in", config, err);
}

/* plugin_host_add_file - open, check, dlopen, find the descriptor, init. */
int
plugin_host_add_file(struct plugin_host *h, const char *name,
    const char *path, const struct config_node *config, struct error *err)
{
	char esc[ERROR_TEXT_MAX];
	char procpath[64];
	const struct elemta_plugin *desc;
	struct stat st;
	void *dl;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return error_set(err, "plugin '%s': cannot open %s: %s", name,
		    path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		error_set(err, "plugin '%s': cannot stat %s: %s", name, path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return error_set(err, "plugin '%s': refusing %s: not a regular "
		    "file", name, path);
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		close(fd);
		return error_set(err, "plugin '%s': refusing %s: writable by "
		    "group or others (mode %04o); run 'chmod go-w' on it", name,
		    path, (unsigned)(st.st_mode & 07777));
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		close(fd);
		return error_set(err, "plugin '%s': refusing %s: owned by uid "
		    "%u, not by root or the running user (uid %u)", name, path,
		    (unsigned)st.st_uid, (unsigned)geteuid());
	}
	/* Load the very file that was checked, not whatever the path names
	 * by now: dlopen through the descriptor. */
	snprintf(procpath, sizeof(procpath), "/proc/self/fd/%d", fd);
	dlerror();
	dl = dlopen(procpath, RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL && access("/proc/self/fd", F_OK) != 0)
		dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL) {
		const char *why = dlerror();

		close(fd);
		return error_set(err, "plugin '%s': cannot load %s: %s", name,
		    path, why ? LOG_ESC(esc, why) : "unknown dlopen error");
	}
	dlerror();
	desc = dlsym(dl, ELEMTA_PLUGIN_SYMBOL);
	if (desc == NULL) {
		dlclose(dl);
		close(fd);
		return error_set(err, "plugin '%s': %s has no '%s' descriptor "
		    "symbol (declare it with ELEMTA_PLUGIN_EXPORT)", name, path,
		    ELEMTA_PLUGIN_SYMBOL);
	}
	if (host_attach(h, name, desc, path, config, err) != 0) {
		dlclose(dl);
		close(fd);
		return -1;
	}
	h->plugins[h->count - 1].dl = dl;
	h->plugins[h->count - 1].dl_fd = fd;
	return 0;
}

/* plugin_host_add_entry - one plugins[] entry of the config. */
int
plugin_host_add_entry(struct plugin_host *h, const struct config_plugin *entry,
    struct error *err)
{
	int rc;

	if (entry->path[0] != '\0')
		rc = plugin_host_add_file(h, entry->name, entry->path,
		    entry->config, err);
	else
		rc = plugin_host_add_builtin(h, entry->name, entry->config, err);
	if (rc != 0 && entry->where[0] != '\0' && entry->path[0] == '\0' &&
	    builtin_plugin_find(entry->name) == NULL)
		error_prefix(err, "%s", entry->where);
	return rc;
}

/* plugin_host_load_config - every enabled plugin, in config order. */
int
plugin_host_load_config(struct plugin_host *h, const struct config *cfg,
    struct error *err)
{
	str_copy(h->config_dir, cfg->dir, sizeof(h->config_dir));
	for (size_t i = 0; i < cfg->plugin_count; i++) {
		const struct config_plugin *e = &cfg->plugins[i];

		if (!e->enabled) {
			log_debug("plugin '%s' disabled, not loaded", e->name);
			continue;
		}
		if (plugin_host_add_entry(h, e, err) != 0)
			return -1;
		log_debug("plugin '%s' loaded from %s", e->name,
		    h->plugins[h->count - 1].file);
	}
	return 0;
}

/* ==== The chain walker ==== */

/* host_hook_for - the hook a phase runs. */
static elemta_hook
host_hook_for(const struct elemta_plugin *d, enum elemta_phase phase)
{
	switch (phase) {
	case ELEMTA_PHASE_CONNECT:
		return d->on_connect;
	case ELEMTA_PHASE_EHLO:
	case ELEMTA_PHASE_HELO:
		return d->on_helo;
	case ELEMTA_PHASE_AUTH:
		return d->on_auth;
	case ELEMTA_PHASE_MAIL:
		return d->on_mail_from;
	case ELEMTA_PHASE_RCPT:
		return d->on_rcpt_to;
	case ELEMTA_PHASE_DATA:
	case ELEMTA_PHASE_EOM:
		return d->on_data;
	case ELEMTA_PHASE_UNKNOWN:
		break;
	}
	return NULL;
}

/* host_enhanced_valid - "C.SSS.DDD" with C 2, 4 or 5 (RFC 3463 syntax). */
static bool
host_enhanced_valid(const char *e)
{
	size_t parts = 0, digits = 0;

	if (e[0] != '2' && e[0] != '4' && e[0] != '5')
		return false;
	for (const char *p = e; ; p++) {
		if (*p >= '0' && *p <= '9') {
			if (++digits > 3)
				return false;
		} else if (*p == '.' || *p == '\0') {
			if (digits == 0)
				return false;
			parts++;
			digits = 0;
			if (*p == '\0')
				break;
		} else {
			return false;
		}
	}
	return parts == 3;
}

/* host_result_clean - make a plugin's result safe for the wire: bounded
 * strings, no control characters, a valid enhanced code, and (through
 * wire_result_defaults) codes that agree with the action. */
void
host_result_clean(struct elemta_result *res, enum elemta_action action)
{
	res->action = action;
	res->message[sizeof(res->message) - 1] = '\0';
	for (char *p = res->message; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	res->enhanced[sizeof(res->enhanced) - 1] = '\0';
	if (res->enhanced[0] != '\0' && !host_enhanced_valid(res->enhanced))
		res->enhanced[0] = '\0';
	if (res->smtp_code != 0 && (res->smtp_code < 200 || res->smtp_code > 599))
		res->smtp_code = 0;
	wire_result_defaults(res);
}

/* host_result_tempfail - the host's own "try again" verdict. */
void
host_result_tempfail(struct elemta_result *res, int code, const char *enh,
    const char *text)
{
	memset(res, 0, sizeof(*res));
	res->action = ELEMTA_TEMPFAIL;
	res->smtp_code = code;
	str_copy(res->enhanced, enh, sizeof(res->enhanced));
	str_copy(res->message, text, sizeof(res->message));
	wire_result_defaults(res);
}

/* host_usec_since - microseconds elapsed since t0 (monotonic). */
uint64_t
host_usec_since(const struct timespec *t0)
{
	struct timespec t1;
	int64_t us;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = (int64_t)(t1.tv_sec - t0->tv_sec) * 1000000 +
	    (t1.tv_nsec - t0->tv_nsec) / 1000;
	return us > 0 ? (uint64_t)us : 0;
}

/* host_log_decision - one Postfix-like line per refusal (or discard,
 * quarantine).  Everything from the request is escaped. */
void
host_log_decision(const struct elemta_ctx *ctx, const struct plugin_decision *d)
{
	char sid[128], name[128], ip[96], text[ELEMTA_RESULT_TEXT_MAX * 4];
	char from[600], to[600], helo[300];
	const char *v;

	v = ctx->session;
	LOG_ESC(sid, v);
	v = host_ctx_attr(ctx, WIRE_ATTR_CLIENT_NAME);
	LOG_ESC(name, v ? v : "unknown");
	log_escape(ip, sizeof(ip), ctx->client_ip, strlen(ctx->client_ip));
	log_escape(text, sizeof(text), d->result.message,
	    strlen(d->result.message));
	v = ctx->sender;
	LOG_ESC(from, v ? v : "");
	v = host_ctx_attr(ctx, WIRE_ATTR_RECIPIENT);
	LOG_ESC(to, v ? v : "");
	v = host_ctx_attr(ctx, WIRE_ATTR_HELO_NAME);
	LOG_ESC(helo, v ? v : "");
	log_info("sid=%s %s: %s from %s[%s]: %d %s %s; from=<%s> to=<%s> "
	    "helo=<%s> plugin=%s", sid, wire_action_name(d->result.action),
	    wire_phase_name(d->phase), name, ip, d->result.smtp_code,
	    d->result.enhanced, text, from, to, helo,
	    d->plugin[0] ? d->plugin : "-");
}

/* host_chain_walk - call each plugin's hook for the phase from index
 * first until one does not continue; the deciding plugin's name goes to
 * d->plugin.  Returns 1 when a hook asked to wait for its DNS lookups
 * (the wait's resume index names it), else 0 with d->result set. */
static int
host_chain_walk(struct plugin_host *h, struct elemta_ctx *ctx,
    struct plugin_decision *d, size_t first)
{
	struct elemta_result res;

	for (size_t i = first; i < h->count; i++) {
		struct host_plugin *p = &h->plugins[i];
		elemta_hook hook = host_hook_for(p->desc, ctx->phase);
		enum elemta_action act;
		struct timespec t0;
		unsigned hcount = d->headers.count;
		size_t hlen = d->headers.len;

		if (hook == NULL)
			continue;
		memset(&res, 0, sizeof(res));
		ctx->plugin = p;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		act = hook(p->state, ctx, &res);
		p->usec += host_usec_since(&t0);
		p->calls++;
		ctx->plugin = NULL;
		if (act == ELEMTA_PENDING && ctx->dns_allowed &&
		    host_wait_outstanding(ctx->wait) > 0) {
			host_wait_set_resume(ctx->wait, i);
			/* The waiting hook runs again and prepends again;
			 * the earlier hooks' headers wait with it. */
			d->headers.count = hcount;
			d->headers.len = hlen;
			*host_wait_headers(ctx->wait) = d->headers;
			return 1;
		}
		if (act == ELEMTA_PENDING) {
			log_err("plugin '%s' asked to wait at %s with no DNS "
			    "lookup pending; answering tempfail", p->name,
			    wire_phase_name(ctx->phase));
			host_result_tempfail(&res, 451, "4.4.3",
			    "Temporary DNS failure, try again later");
			act = ELEMTA_TEMPFAIL;
		} else if ((unsigned)act > (unsigned)ELEMTA_QUARANTINE) {
			log_err("plugin '%s' returned invalid action %d at %s; "
			    "answering tempfail", p->name, (int)act,
			    wire_phase_name(ctx->phase));
			host_result_tempfail(&res, 451, "4.3.0",
			    "Temporary policy failure, try again later");
			act = ELEMTA_TEMPFAIL;
		}
		if (act == ELEMTA_CONTINUE)
			continue;
		host_result_clean(&res, act);
		d->result = res;
		str_copy(d->plugin, p->name, sizeof(d->plugin));
		return 0;
	}
	memset(&d->result, 0, sizeof(d->result));
	d->result.action = ELEMTA_CONTINUE;
	wire_result_defaults(&d->result);
	return 0;
}

/* host_run_chain - the whole chain, no waiting (AUTH: a hook that asks
 * to wait is answered tempfail). */
void
host_run_chain(struct plugin_host *h, struct elemta_ctx *ctx,
    struct plugin_decision *d)
{
	(void)host_chain_walk(h, ctx, d, 0);
}

/* host_count_decision - the final verdict, counted for the plugin that
 * decided it (by name: the result may have been rewritten since), or as
 * nobody's. */
void
host_count_decision(struct plugin_host *h, const struct plugin_decision *d)
{
	unsigned a = (unsigned)d->result.action;

	if (a >= HOST_DECISION_ACTIONS)
		return;
	if (d->plugin[0] != '\0')
		for (size_t i = 0; i < h->count; i++)
			if (strcmp(h->plugins[i].name, d->plugin) == 0) {
				h->plugins[i].decided[d->phase][a]++;
				return;
			}
	h->decisions[d->phase][a]++;
}

/* plugin_txn_forget - start counting the transaction afresh. */
void
plugin_txn_forget(struct plugin_txn *txn)
{
	txn->accepted = 0;
	txn->rcpt_accepted = 0;
}

/* host_txn_track - the request's transaction: the counts start over
 * when a new instance begins (Postfix listener only). */
static void
host_txn_track(const struct plugin_request *rq)
{
	const char *instance;

	if (rq->txn == NULL || rq->listener != PLUGIN_LISTENER_POSTFIX)
		return;
	instance = wire_request_get(rq->req, WIRE_ATTR_INSTANCE);
	if (instance == NULL)
		instance = "";
	if (strncmp(rq->txn->instance, instance,
	    sizeof(rq->txn->instance)) == 0)
		return;
	str_copy(rq->txn->instance, instance, sizeof(rq->txn->instance));
	plugin_txn_forget(rq->txn);
}

/* host_txn_note - count an accepted request in its transaction. */
static void
host_txn_note(const struct plugin_request *rq, const struct plugin_decision *d)
{
	if (rq->txn == NULL || rq->listener != PLUGIN_LISTENER_POSTFIX ||
	    !d->accepted)
		return;
	if (d->phase >= ELEMTA_PHASE_MAIL)
		rq->txn->accepted++;
	if (d->phase == ELEMTA_PHASE_RCPT)
		rq->txn->rcpt_accepted++;
}

/* host_log_commit_failure - a lost decision transaction (a full or
 * unreachable table was already reported by the store, once). */
void
host_log_commit_failure(const struct plugin_host *h,
    const struct elemta_ctx *ctx, const struct error *err)
{
	char esc[128];

	log_msg(counter_store_unavailable(h->cs) ? LOG_LEVEL_DEBUG :
	    LOG_LEVEL_ERR, "sid=%s counter table commit failed: %s",
	    LOG_ESC(esc, ctx->session), err->text);
}

/* host_decide_init - the phase of a request, its transaction and its
 * context; true when the host answered it already (an unknown phase:
 * DUNNO). */
static bool
host_decide_init(struct plugin_host *h, const struct plugin_request *rq,
    struct elemta_ctx *ctx, struct plugin_decision *d)
{
	const char *state = wire_request_get(rq->req, WIRE_ATTR_PROTOCOL_STATE);
	enum elemta_phase phase = wire_phase_parse(state);

	memset(d, 0, sizeof(*d));
	/* AUTH is an Elemta extension: on the Postfix listener it is just
	 * an unknown state. */
	if (phase == ELEMTA_PHASE_AUTH &&
	    rq->listener == PLUGIN_LISTENER_POSTFIX)
		phase = ELEMTA_PHASE_UNKNOWN;
	d->phase = phase;
	host_txn_track(rq);
	host_ctx_init(ctx, h, rq, phase);
	ctx->headers = &d->headers;
	if (phase == ELEMTA_PHASE_UNKNOWN) {
		char esc[128], st[128];

		log_info("sid=%s unknown protocol_state '%s': answering DUNNO",
		    LOG_ESC(esc, ctx->session), LOG_ESC(st, state));
		d->result.action = ELEMTA_CONTINUE;
		wire_result_defaults(&d->result);
		d->accepted = true;
		h->decisions[phase][ELEMTA_CONTINUE]++;
		return true;
	}
	return false;
}

/* host_decide_run - the client's names (CONNECT), then the chain from
 * where the request stands, in one counter decision.  Returns 1 when it
 * waits for DNS: the counter writes of the hooks that ran are committed
 * (they are not run again), nothing is answered.  AUTH is auth.c's. */
static int
host_decide_run(struct plugin_host *h, const struct plugin_request *rq,
    struct elemta_ctx *ctx, struct plugin_decision *d)
{
	struct error err;
	bool refused;

	if (d->phase == ELEMTA_PHASE_AUTH) {
		auth_decide(h, ctx, d);
		return 0;
	}
	ctx->dns_allowed = true;
	if (d->phase == ELEMTA_PHASE_CONNECT && h->client_names &&
	    rq->listener == PLUGIN_LISTENER_ELEMTA && host_names_step(ctx) == 1)
		return 1;
	if (h->cs != NULL) {
		counter_decision_begin(h->cs);
		h->in_decision = true;
	}
	if (ctx->wait != NULL)
		d->headers = *host_wait_headers(ctx->wait);
	if (host_chain_walk(h, ctx, d, host_wait_resume_index(ctx->wait)) == 1) {
		if (h->cs != NULL) {
			h->in_decision = false;
			if (counter_decision_end(h->cs, true, &err) != 0) {
				/* What the earlier hooks counted is lost:
				 * never answer as if it were stored. */
				host_log_commit_failure(h, ctx, &err);
				host_result_tempfail(&d->result, 451, "4.3.0",
				    "Temporary policy failure, try again later");
				goto decided;
			}
		}
		return 1;
	}
	refused = d->result.action == ELEMTA_REJECT ||
	    d->result.action == ELEMTA_TEMPFAIL;
	d->accepted = !refused;
	if (h->cs != NULL) {
		h->in_decision = false;
		if (counter_decision_end(h->cs, !refused, &err) != 0) {
			host_log_commit_failure(h, ctx, &err);
			if (d->accepted) {
				host_result_tempfail(&d->result, 451, "4.3.0",
				    "Temporary policy failure, try again later");
				d->plugin[0] = '\0';
			}
		}
	}
decided:
	d->accepted = d->result.action != ELEMTA_REJECT &&
	    d->result.action != ELEMTA_TEMPFAIL;
	if (!d->accepted) {
		/* a refused command's headers go nowhere */
		d->headers.count = 0;
		d->headers.len = 0;
	}
	host_names_fill(ctx, d);
	host_count_decision(h, d);
	host_txn_note(rq, d);
	if (d->result.action != ELEMTA_CONTINUE)
		host_log_decision(ctx, d);
	return 0;
}

/* host_decide_wait - a request that waits: arm its wait, or (too many
 * waits, no event loop) answer it as a DNS failure now.  1 or 0. */
static int
host_decide_wait(struct plugin_host *h, const struct plugin_request *rq,
    struct elemta_ctx *ctx, struct plugin_decision *d,
    plugin_wait_ready ready, void *arg)
{
	char esc[128];

	if (host_wait_arm(ctx->wait, ready, arg) == 0)
		return 1;
	log_warn("sid=%s DNS: too many waits for one request; answering "
	    "tempfail", LOG_ESC(esc, ctx->session));
	host_result_tempfail(&d->result, 451, "4.4.3",
	    "Temporary DNS failure, try again later");
	d->accepted = false;
	d->plugin[0] = '\0';
	host_names_fill(ctx, d);
	host_count_decision(h, d);
	host_txn_note(rq, d);
	host_log_decision(ctx, d);
	return 0;
}

/* host_latency_note - one decision's latency into the histogram. */
static void
host_latency_note(struct plugin_host *h, const struct timespec *t0)
{
	uint64_t us = host_usec_since(t0);
	size_t b = 0;

	while (b < HOST_LATENCY_BUCKETS && us > latency_bound_us[b])
		b++;
	h->latency[b]++;
	h->latency_count++;
	h->latency_usec += us;
}

/* plugin_host_decide_begin - see plugin_host.h. */
int
plugin_host_decide_begin(struct plugin_host *h,
    const struct plugin_request *rq, struct plugin_decision *d,
    plugin_wait_ready ready, void *arg, struct plugin_wait **wait)
{
	struct elemta_ctx ctx;
	struct timespec t0;

	*wait = NULL;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (host_decide_init(h, rq, &ctx, d))
		return 0;
	if (host_decide_run(h, rq, &ctx, d) == 1 &&
	    host_decide_wait(h, rq, &ctx, d, ready, arg) == 1) {
		host_wait_set_started(ctx.wait, &t0);
		*wait = ctx.wait;
		return 1;
	}
	plugin_wait_free(ctx.wait);
	host_latency_note(h, &t0);
	return 0;
}

/* plugin_host_decide_resume - see plugin_host.h. */
int
plugin_host_decide_resume(struct plugin_host *h,
    const struct plugin_request *rq, struct plugin_wait *wait,
    struct plugin_decision *d)
{
	struct elemta_ctx ctx;
	struct timespec t0;

	(void)host_decide_init(h, rq, &ctx, d);
	ctx.wait = wait;
	if (host_decide_run(h, rq, &ctx, d) == 1 &&
	    host_decide_wait(h, rq, &ctx, d, NULL, NULL) == 1)
		return 1;
	t0 = host_wait_decide_started(wait);
	plugin_wait_free(wait);
	host_latency_note(h, &t0);
	return 0;
}

static void host_sync_ready(void *arg);

/* plugin_host_auth_begin - see plugin_host.h. */
int
plugin_host_auth_begin(struct plugin_host *h, const struct plugin_request *rq,
    struct plugin_decision *d, struct auth_job *job)
{
	struct elemta_ctx ctx;

	if (host_decide_init(h, rq, &ctx, d))
		return 0;
	if (d->phase != ELEMTA_PHASE_AUTH) {
		struct plugin_wait *w;

		/* Decided whole, on the caller's loop: this path may not
		 * wait for DNS (plugin_host_decide would turn the loop
		 * from inside one of its events). */
		if (plugin_host_decide_begin(h, rq, d, host_sync_ready, NULL,
		    &w) == 1) {
			plugin_wait_free(w);
			host_result_tempfail(&d->result, 451, "4.4.3",
			    "Temporary DNS failure, try again later");
			d->accepted = false;
		}
		return 0;
	}
	return auth_decide_begin(h, &ctx, d, job);
}

/* plugin_host_auth_finish - see plugin_host.h. */
void
plugin_host_auth_finish(struct plugin_host *h, const struct plugin_request *rq,
    struct auth_job *job, struct plugin_decision *d)
{
	struct elemta_ctx ctx;

	(void)host_decide_init(h, rq, &ctx, d);
	auth_decide_finish(h, &ctx, job, d);
}

/* host_sync_ready - plugin_host_decide's wait is over. */
static void
host_sync_ready(void *arg)
{
	if (arg != NULL)
		*(bool *)arg = true;
}

/* plugin_host_decide - decide, waiting for DNS on the host's event loop
 * when a hook asks to (elemtactl test-plugin, the unit tests). */
void
plugin_host_decide(struct plugin_host *h, const struct plugin_request *rq,
    struct plugin_decision *d)
{
	struct plugin_wait *w;
	bool ready = false;
	int rc = plugin_host_decide_begin(h, rq, d, host_sync_ready, &ready,
	    &w);

	while (rc == 1) {
		while (!ready)
			event_base_loop(h->dns_base, EVLOOP_ONCE);
		ready = false;
		rc = plugin_host_decide_resume(h, rq, w, d);
	}
}

/* ==== Metrics ==== */

/* host_metric_add - add delta to the metric key printf'd from fmt; keeps
 * the first failure in *rc/err. */
static void host_metric_add(struct plugin_host *h, int *rc, struct error *err,
    uint64_t delta, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void
host_metric_add(struct plugin_host *h, int *rc, struct error *err,
    uint64_t delta, const char *fmt, ...)
{
	char key[COUNTER_KEY_MAX + 1];
	va_list ap;
	int n;

	if (*rc != 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(key, sizeof(key), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(key))
		return;         /* cannot happen: names are bounded */
	*rc = counter_metric_add(h->cs, key, delta, err);
}

/* host_flush_decisions - one phase x action table of counts, labelled
 * with the deciding plugin's name ("" for nobody), then zeroed. */
static void
host_flush_decisions(struct plugin_host *h, int *rc, struct error *err,
    uint64_t (*counts)[HOST_DECISION_ACTIONS], const char *plugin)
{
	for (size_t ph = 0; ph <= ELEMTA_PHASE_EOM; ph++)
		for (size_t a = 0; a < HOST_DECISION_ACTIONS; a++) {
			if (counts[ph][a] == 0)
				continue;
			host_metric_add(h, rc, err, counts[ph][a],
			    "elemta_policy_decisions_total{phase=\"%s\","
			    "action=\"%s\",plugin=\"%s\"}",
			    wire_phase_name((enum elemta_phase)ph),
			    wire_action_name((enum elemta_action)a), plugin);
			counts[ph][a] = 0;
		}
}

/* host_flush_latency - the histogram: cumulative bucket counts, the sum
 * (integer microseconds, printed as seconds) and the count. */
static void
host_flush_latency(struct plugin_host *h, int *rc, struct error *err)
{
	uint64_t cum = 0;

	if (h->latency_count == 0)
		return;
	for (size_t b = 0; b <= HOST_LATENCY_BUCKETS; b++) {
		cum += h->latency[b];
		/* Every bucket, also at 0: a scrape must see all of them. */
		host_metric_add(h, rc, err, cum,
		    "elemta_policy_decision_seconds_bucket{le=\"%s\"}",
		    latency_le[b]);
		h->latency[b] = 0;
	}
	host_metric_add(h, rc, err, h->latency_usec,
	    "elemta_policy_decision_seconds_sum");
	host_metric_add(h, rc, err, h->latency_count,
	    "elemta_policy_decision_seconds_count");
	h->latency_usec = h->latency_count = 0;
}

/* host_flush_dns - DNS lookups by status, waits, client-name results. */
static void
host_flush_dns(struct plugin_host *h, int *rc, struct error *err)
{
	static const char *const status[] = {
		"ok", "nodata", "nxdomain", "tempfail", "permfail",
	};
	static const char *const names[] = {
		ELEMTA_NAME_OK, ELEMTA_NAME_TEMPFAIL, ELEMTA_NAME_FAILED,
	};

	for (size_t i = 0; i < 5; i++) {
		if (h->dns_lookups[i] != 0)
			host_metric_add(h, rc, err, h->dns_lookups[i],
			    "elemta_policy_dns_lookups_total{status=\"%s\"}",
			    status[i]);
		h->dns_lookups[i] = 0;
	}
	for (size_t i = 0; i < 3; i++) {
		if (h->name_results[i] != 0)
			host_metric_add(h, rc, err, h->name_results[i],
			    "elemta_policy_client_names_total{result=\"%s\"}",
			    names[i]);
		h->name_results[i] = 0;
	}
	if (h->dns_waits != 0)
		host_metric_add(h, rc, err, h->dns_waits,
		    "elemta_policy_dns_waits_total");
	h->dns_waits = 0;
}

/* host_flush_plugin_metrics - the plugins' elemta_metric_add counts. */
static void
host_flush_plugin_metrics(struct plugin_host *h, int *rc, struct error *err)
{
	for (size_t i = 0; i < h->plugin_metric_count; i++)
		host_metric_add(h, rc, err, h->plugin_metrics[i].delta, "%s",
		    h->plugin_metrics[i].name);
	h->plugin_metric_count = 0;
}

/* plugin_host_flush_metrics - one write transaction with everything
 * accumulated in memory since the last flush.  The keys are the samples
 * exactly as common/metrics_format.c prints them. */
void
plugin_host_flush_metrics(struct plugin_host *h)
{
	struct error err;
	bool any;
	int rc = 0;

	if (h->cs == NULL || h->in_decision)
		return;
	any = h->latency_count != 0 || h->plugin_metric_count != 0;
	for (size_t i = 0; i < h->count && !any; i++)
		any = h->plugins[i].calls != 0;
	for (size_t ph = 0; ph <= ELEMTA_PHASE_EOM && !any; ph++)
		for (size_t a = 0; a < HOST_DECISION_ACTIONS && !any; a++)
			any = h->decisions[ph][a] != 0;
	if (!any)
		return;

	counter_decision_begin(h->cs);
	for (size_t i = 0; i < h->count; i++) {
		struct host_plugin *p = &h->plugins[i];

		if (p->calls != 0) {
			host_metric_add(h, &rc, &err, p->calls,
			    "elemta_plugin_calls_total{plugin=\"%s\"}", p->name);
			host_metric_add(h, &rc, &err, p->usec,
			    "elemta_plugin_seconds_total{plugin=\"%s\"}",
			    p->name);
		}
		p->calls = p->usec = 0;
		host_flush_decisions(h, &rc, &err, p->decided, p->name);
	}
	host_flush_decisions(h, &rc, &err, h->decisions, "");
	host_flush_latency(h, &rc, &err);
	host_flush_dns(h, &rc, &err);
	host_flush_plugin_metrics(h, &rc, &err);
	if (rc != 0)
		log_warn("metric flush failed: %s", err.text);
	if (counter_decision_end(h->cs, true, &err) != 0)
		log_warn("metric flush commit failed: %s", err.text);
}
