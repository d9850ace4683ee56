/*
 * policy_fixture.h - the built-in `policy` plugin over a scratch counter
 * table with a fake clock, for the unit tests of its rules
 * (test_policy_rules.c, test_greylist.c): fx_open loads a config whose
 * policy plugin has the given config body, ask_on / ASK decide one
 * request as the host would, expect checks the reply.  Include after
 * cmocka.h, config.h, counter.h, plugin_host.h and policy.h.
 */
#ifndef ELEMTA_TEST_POLICY_FIXTURE_H
#define ELEMTA_TEST_POLICY_FIXTURE_H

static char tmpdir[256];
static uint64_t fake_ms;

static uint64_t
fake_clock(void)
{
	return fake_ms;
}

struct fx {
	struct config *cfg;
	struct counter_store *cs;
	struct plugin_host *h;
	struct plugin_txn txn;    /* the Postfix connection's transaction */
	char err[ERROR_TEXT_MAX];
};

/* fx_write - the config file with the policy plugin's config body. */
static void
fx_write(const char *policy_yaml, char *path, size_t size)
{
	FILE *f;

	snprintf(path, size, "%s/elemta.yaml", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "server:\n  listen:\n    - address: \"127.0.0.1:2525\"\n"
	    "counters:\n  path: counters\n  map_size: 8MB\n"
	    "plugins:\n  - name: policy\n    config:\n%s", policy_yaml);
	fclose(f);
}

/* A file fx_open writes beside the config (e.g. a reputation file). */
static const char *fx_extra_name;
static const char *fx_extra_text = "";

/* fx_open - load the config, open the table, load the chain; returns -1
 * (with fx->err) when the chain refuses the config. */
static int
fx_open(struct fx *fx, const char *policy_yaml)
{
	struct config_errors errs;
	struct error err;
	char path[512];

	memset(fx, 0, sizeof(*fx));
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/elemta-test-policy-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	if (fx_extra_name != NULL) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", tmpdir, fx_extra_name);
		f = fopen(path, "w");
		assert_non_null(f);
		fputs(fx_extra_text, f);
		fclose(f);
		fx_extra_name = NULL;
	}
	fx_write(policy_yaml, path, sizeof(path));
	fx->cfg = config_load(path, &errs);
	if (fx->cfg == NULL)
		fail_msg("config_load: %s", errs.count ? errs.text[0] : "?");
	assert_int_equal(counter_store_open(fx->cfg->counters.path,
	    fx->cfg->counters.map_size, false, COUNTER_SYNC_SAFE, &fx->cs, &err), 0);
	fake_ms = 1700000000000ull;
	counter_set_clock(fx->cs, fake_clock);
	fx->h = plugin_host_new(fx->cs, fx->cfg->counters.ipv6_prefix);
	if (plugin_host_load_config(fx->h, fx->cfg, &err) != 0) {
		str_copy(fx->err, err.text, sizeof(fx->err));
		return -1;
	}
	return 0;
}

/* fx_close - free everything and remove the scratch directory. */
static void
fx_close(struct fx *fx)
{
	char cmd[300];

	plugin_host_free(fx->h);
	counter_store_close(fx->cs);
	config_free(fx->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	assert_int_equal(system(cmd), 0);
	policy_set_clock(NULL);
}

/* The message descriptor ask_on passes (END-OF-MESSAGE), -1 none. */
static int ask_message_fd = -1;

/* A request: phase, client, and "name=value" extras. */
struct rq {
	struct wire_attr attrs[24];
	char text[24][256];
	struct wire_request r;
	struct plugin_request p;
};

/* ask_on - decide one request; returns the decision's code (0 for
 * continue) and leaves the result in *d.  On the Postfix listener
 * inst_accepted is what the host must have counted for the request's
 * instance before it (asserted; the host keeps the count in fx->txn). */
static int
ask_on(struct fx *fx, enum plugin_listener l, unsigned inst_accepted,
    struct plugin_decision *d, const char *phase, const char *ip, ...)
{
	struct rq q;
	va_list ap;
	const char *kv;
	size_t n = 0;

	memset(&q, 0, sizeof(q));
	snprintf(q.text[n++], 256, "protocol_state=%s", phase);
	snprintf(q.text[n++], 256, "client_address=%s", ip);
	snprintf(q.text[n++], 256, "request=smtpd_access_policy");
	va_start(ap, ip);
	while ((kv = va_arg(ap, const char *)) != NULL && n < 24)
		str_copy(q.text[n++], kv, 256);
	va_end(ap);
	for (size_t i = 0; i < n; i++) {
		char *eq = strchr(q.text[i], '=');

		assert_non_null(eq);
		*eq = '\0';
		q.attrs[i].name = q.text[i];
		q.attrs[i].value = eq + 1;
	}
	q.r.attrs = q.attrs;
	q.r.count = n;
	q.p.req = &q.r;
	q.p.listener = l;
	q.p.message_fd = ask_message_fd;
	q.p.auth_succeeded = -1;
	if (l == PLUGIN_LISTENER_POSTFIX) {
		const char *inst = wire_request_get(&q.r, "instance");

		if (inst != NULL && strcmp(fx->txn.instance, inst) == 0)
			assert_int_equal(fx->txn.accepted, inst_accepted);
		else
			assert_int_equal(inst_accepted, 0);
		q.p.txn = &fx->txn;
	}
	plugin_host_decide(fx->h, &q.p, d);
	return d->result.action == ELEMTA_CONTINUE ? 0 : d->result.smtp_code;
}

#define ASK(fx, d, ...) ask_on((fx), PLUGIN_LISTENER_ELEMTA, 0, (d), __VA_ARGS__, NULL)

/* expect - code and enhanced code of the last decision. */
static void
expect(const struct plugin_decision *d, int code, const char *enh)
{
	int got = d->result.action == ELEMTA_CONTINUE ? 0 : d->result.smtp_code;

	if (got != code || (enh != NULL && strcmp(d->result.enhanced, enh) != 0))
		fail_msg("expected %d %s, got %d %s %s", code, enh ? enh : "",
		    got, d->result.enhanced, d->result.message);
}

#include "metric_find.h"

/* metric_value - one metric's current value, after the host's flush
 * (the worker's once-a-second one) wrote what decisions counted. */
static uint64_t
metric_value(struct fx *fx, const char *name)
{
	struct metric_find m = { name, 0 };
	struct error err;

	plugin_host_flush_metrics(fx->h);
	assert_int_equal(counter_visit(fx->cs, COUNTER_KIND_METRIC, NULL,
	    metric_cb, &m, &err), 0);
	return m.value;
}

#endif
