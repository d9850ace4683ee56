/*
 * test_plugin_host.c - unit tests for policyd's plugin host
 * (plugin_host.c, host_ctx.c, host_cfg.c): one test per promise of
 * plugin_host.h and of the host side of <elemta/plugin.h>.
 *
 * Chain semantics with in-process fake plugins (first non-continue
 * decides, hooks per phase, disabled plugins never opened, defaults
 * filled, bad codes and actions corrected, a refused decision's rate hits
 * withdrawn); loader refusals with real shared objects compiled at test
 * time into a mkdtemp directory (missing file, not a regular file,
 * group/world-writable, foreign owner, missing descriptor, ABI mismatch,
 * init failure, unknown built-in); the context accessors; the elemta_cfg_*
 * accessors on a real config file, errors naming file:line:column.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "counter.h"
#include "log.h"
#include "metric_find.h"
#include "../../policyd/plugin_host.h"

/* ==== Helpers ==== */

static char tmpdir[256];

/* make_tmpdir - a fresh scratch directory per test. */
static const char *
make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/elemta-test-host-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return tmpdir;
}

/* rm_tmpdir - remove the scratch directory. */
static void
rm_tmpdir(void)
{
	char cmd[PATH_MAX + 16];

	if (tmpdir[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	assert_int_equal(system(cmd), 0);
	tmpdir[0] = '\0';
}

/* A request built from "name=value" strings. */
struct req {
	struct wire_attr attrs[32];
	char text[32][256];
	struct wire_request r;
};

/* req_make - NULL-terminated "name=value" list to a wire_request. */
static const struct wire_request *
req_make(struct req *q, const char *const *kv)
{
	size_t n = 0;

	memset(q, 0, sizeof(*q));
	for (; kv[n] != NULL; n++) {
		char *eq;

		assert_true(n < 32);
		str_copy(q->text[n], kv[n], sizeof(q->text[n]));
		eq = strchr(q->text[n], '=');
		assert_non_null(eq);
		*eq = '\0';
		q->attrs[n].name = q->text[n];
		q->attrs[n].value = eq + 1;
	}
	q->r.attrs = q->attrs;
	q->r.count = n;
	q->r.cap = 32;
	return &q->r;
}

/* decide - run one request on the Elemta listener. */
static void
decide_on(struct plugin_host *h, enum plugin_listener l, const char *const *kv,
    struct plugin_decision *d)
{
	struct req q;
	struct plugin_request rq;

	memset(&rq, 0, sizeof(rq));
	rq.req = req_make(&q, kv);
	rq.listener = l;
	rq.message_fd = -1;
	rq.auth_succeeded = -1;
	plugin_host_decide(h, &rq, d);
}

static void
decide(struct plugin_host *h, const char *const *kv, struct plugin_decision *d)
{
	decide_on(h, PLUGIN_LISTENER_ELEMTA, kv, d);
}

/* ==== Fake plugins ==== */

static int calls_a, calls_b, calls_c;
static enum elemta_action b_action;
static int b_code;
static const char *b_enhanced;
static const char *b_text;
static char seen_phase[32];

static enum elemta_action
fake_a(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	calls_a++;
	str_copy(seen_phase, elemta_ctx_phase(ctx), sizeof(seen_phase));
	return ELEMTA_CONTINUE;
}

static enum elemta_action
fake_b(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	calls_b++;
	if (b_action == ELEMTA_CONTINUE)
		return ELEMTA_CONTINUE;
	res->smtp_code = b_code;
	if (b_enhanced)
		str_copy(res->enhanced, b_enhanced, sizeof(res->enhanced));
	if (b_text)
		str_copy(res->message, b_text, sizeof(res->message));
	return b_action;
}

static enum elemta_action
fake_c(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	calls_c++;
	return ELEMTA_CONTINUE;
}

static const struct elemta_plugin plug_a = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION, .name = "a",
	.on_connect = fake_a, .on_helo = fake_a, .on_auth = fake_a,
	.on_mail_from = fake_a, .on_rcpt_to = fake_a, .on_data = fake_a,
};
static const struct elemta_plugin plug_b = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION, .name = "b",
	.on_connect = fake_b, .on_rcpt_to = fake_b, .on_mail_from = fake_b,
};
static const struct elemta_plugin plug_c = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION, .name = "c",
	.on_connect = fake_c, .on_rcpt_to = fake_c, .on_mail_from = fake_c,
};

static int prepend_rc[2];

/* fake_prepend - prepends a valid header and an invalid one. */
static enum elemta_action
fake_prepend(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	prepend_rc[0] = elemta_ctx_prepend_header(ctx, "X-P",
	    elemta_ctx_phase(ctx));
	prepend_rc[1] = elemta_ctx_prepend_header(ctx, "X-Bad", "a\nb");
	return ELEMTA_CONTINUE;
}

static const struct elemta_plugin plug_prepend = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION, .name = "p",
	.on_rcpt_to = fake_prepend, .on_mail_from = fake_prepend,
};

/* chain_abc - a host with a, b, c in that order (no counter table). */
static struct plugin_host *
chain_abc(void)
{
	struct plugin_host *h = plugin_host_new(NULL, 64);
	struct error err;

	calls_a = calls_b = calls_c = 0;
	b_action = ELEMTA_CONTINUE;
	b_code = 0;
	b_enhanced = b_text = NULL;
	assert_int_equal(plugin_host_add(h, "a", &plug_a, NULL, NULL, &err), 0);
	assert_int_equal(plugin_host_add(h, "b", &plug_b, NULL, NULL, &err), 0);
	assert_int_equal(plugin_host_add(h, "c", &plug_c, NULL, NULL, &err), 0);
	assert_int_equal(plugin_host_count(h), 3);
	return h;
}

static const char *const rcpt_req[] = {
	"request=smtpd_access_policy", "protocol_state=RCPT",
	"client_address=192.0.2.1", "sender=a@example.org",
	"recipient=b@example.com", "instance=t1", NULL,
};

/* ==== Chain semantics ==== */

/* test_chain_all_continue - every plugin runs; DUNNO, nobody decided. */
static void
test_chain_all_continue(void **state)
{
	struct plugin_host *h = chain_abc();
	struct plugin_decision d;

	decide(h, rcpt_req, &d);
	assert_int_equal(d.result.action, ELEMTA_CONTINUE);
	assert_true(d.accepted);
	assert_string_equal(d.plugin, "");
	assert_int_equal(d.phase, ELEMTA_PHASE_RCPT);
	assert_int_equal(calls_a, 1);
	assert_int_equal(calls_b, 1);
	assert_int_equal(calls_c, 1);
	plugin_host_free(h);
}

/* test_chain_first_decides - the first non-continue wins; later plugins
 * do not run. */
static void
test_chain_first_decides(void **state)
{
	struct plugin_host *h = chain_abc();
	struct plugin_decision d;

	b_action = ELEMTA_REJECT;
	b_code = 554;
	b_enhanced = "5.7.1";
	b_text = "go away";
	decide(h, rcpt_req, &d);
	assert_int_equal(d.result.action, ELEMTA_REJECT);
	assert_int_equal(d.result.smtp_code, 554);
	assert_string_equal(d.result.enhanced, "5.7.1");
	assert_string_equal(d.result.message, "go away");
	assert_string_equal(d.plugin, "b");
	assert_false(d.accepted);
	assert_int_equal(calls_a, 1);
	assert_int_equal(calls_c, 0);
	plugin_host_free(h);
}

/* test_chain_discard_quarantine - they decide too, and count as accepted
 * (they apply to the whole message, the phase goes on). */
static void
test_chain_discard_quarantine(void **state)
{
	struct plugin_host *h = chain_abc();
	struct plugin_decision d;

	b_action = ELEMTA_DISCARD;
	decide(h, rcpt_req, &d);
	assert_int_equal(d.result.action, ELEMTA_DISCARD);
	assert_true(d.accepted);
	assert_int_equal(calls_c, 0);
	b_action = ELEMTA_QUARANTINE;
	decide(h, rcpt_req, &d);
	assert_int_equal(d.result.action, ELEMTA_QUARANTINE);
	assert_true(d.accepted);
	assert_string_equal(d.plugin, "b");
	plugin_host_free(h);
}

/* test_chain_prepend - elemta_ctx_prepend_header: valid headers reach the
 * decision in order, invalid ones are refused (-1), and a refused
 * decision carries none. */
static void
test_chain_prepend(void **state)
{
	struct plugin_host *h = plugin_host_new(NULL, 64);
	struct plugin_decision d;
	struct error err;

	b_action = ELEMTA_CONTINUE;
	assert_int_equal(plugin_host_add(h, "p", &plug_prepend, NULL, NULL,
	    &err), 0);
	assert_int_equal(plugin_host_add(h, "b", &plug_b, NULL, NULL, &err), 0);
	decide(h, rcpt_req, &d);
	assert_int_equal(d.result.action, ELEMTA_CONTINUE);
	assert_int_equal(prepend_rc[0], 0);
	assert_int_equal(prepend_rc[1], -1);
	assert_int_equal(d.headers.count, 1);
	assert_memory_equal(d.headers.buf, "X-P: RCPT\r\n", d.headers.len);
	b_action = ELEMTA_QUARANTINE;
	decide(h, rcpt_req, &d);
	assert_int_equal(d.headers.count, 1);
	b_action = ELEMTA_REJECT;
	decide(h, rcpt_req, &d);
	assert_int_equal(d.result.action, ELEMTA_REJECT);
	assert_int_equal(prepend_rc[0], 0);
	assert_int_equal(d.headers.count, 0);
	assert_int_equal(d.headers.len, 0);
	b_action = ELEMTA_CONTINUE;
	/* outside a decision (ctx NULL) there is nowhere to put one */
	assert_int_equal(elemta_ctx_prepend_header(NULL, "X-P", "v"), -1);
	plugin_host_free(h);
}

/* test_chain_defaults_filled - no code given: the action's defaults. */
static void
test_chain_defaults_filled(void **state)
{
	struct plugin_host *h = chain_abc();
	struct plugin_decision d;

	b_action = ELEMTA_REJECT;
	decide(h, rcpt_req, &d);
	assert_int_equal(d.result.smtp_code, 550);
	assert_string_equal(d.result.enhanced, "5.7.1");
	assert_true(d.result.message[0] != '\0');
	b_action = ELEMTA_TEMPFAIL;
	decide(h, rcpt_req, &d);
	assert_int_equal(d.result.smtp_code, 451);
	assert_string_equal(d.result.enhanced, "4.7.1");
	plugin_host_free(h);
}

/* test_chain_bad_codes_corrected - codes of the wrong class, malformed
 * enhanced codes and CR/LF in the text never reach the wire. */
static void
test_chain_bad_codes_corrected(void **state)
{
	struct plugin_host *h = chain_abc();
	struct plugin_decision d;

	b_action = ELEMTA_REJECT;
	b_code = 451;
	b_enhanced = "4.7.1";
	b_text = "line1\r\naction=DUNNO";
	decide(h, rcpt_req, &d);
	assert_int_equal(d.result.action, ELEMTA_REJECT);
	assert_true(d.result.smtp_code >= 500 && d.result.smtp_code <= 599);
	assert_int_equal(d.result.enhanced[0], '5');
	assert_null(strchr(d.result.message, '\r'));
	assert_null(strchr(d.result.message, '\n'));

	b_action = ELEMTA_TEMPFAIL;
	b_code = 550;
	b_enhanced = "x.y";
	b_text = NULL;
	decide(h, rcpt_req, &d);
	assert_int_equal(d.result.action, ELEMTA_TEMPFAIL);
	assert_true(d.result.smtp_code >= 400 && d.result.smtp_code <= 499);
	assert_int_equal(d.result.enhanced[0], '4');

	b_action = ELEMTA_REJECT;
	b_code = 9999;
	b_enhanced = "5.1234.1";
	decide(h, rcpt_req, &d);
	assert_int_equal(d.result.smtp_code, 550);
	assert_string_equal(d.result.enhanced, "5.7.1");
	plugin_host_free(h);
}

/* test_chain_invalid_action - an out-of-range action is a tempfail. */
static void
test_chain_invalid_action(void **state)
{
	struct plugin_host *h = chain_abc();
	struct plugin_decision d;

	b_action = (enum elemta_action)42;
	decide(h, rcpt_req, &d);
	assert_int_equal(d.result.action, ELEMTA_TEMPFAIL);
	assert_int_equal(d.result.smtp_code, 451);
	assert_string_equal(d.result.enhanced, "4.3.0");
	assert_false(d.accepted);
	assert_int_equal(calls_c, 0);
	plugin_host_free(h);
}

/* test_chain_phase_hooks - protocol_state picks the hook; a plugin without
 * that hook is skipped; unknown states answer DUNNO without any call;
 * absent protocol_state means RCPT (as in Postfix). */
static void
test_chain_phase_hooks(void **state)
{
	struct plugin_host *h = chain_abc();
	struct plugin_decision d;
	static const char *const ehlo[] = { "protocol_state=EHLO",
	    "client_address=192.0.2.1", NULL };
	static const char *const eom[] = { "protocol_state=END-OF-MESSAGE",
	    "client_address=192.0.2.1", NULL };
	static const char *const vrfy[] = { "protocol_state=VRFY",
	    "client_address=192.0.2.1", NULL };
	static const char *const none[] = { "request=smtpd_access_policy",
	    "client_address=192.0.2.1", NULL };

	b_action = ELEMTA_REJECT;     /* b has no on_helo / on_data */
	decide(h, ehlo, &d);
	assert_int_equal(d.result.action, ELEMTA_CONTINUE);
	assert_string_equal(seen_phase, "EHLO");
	assert_int_equal(calls_b, 0);
	decide(h, eom, &d);
	assert_int_equal(d.result.action, ELEMTA_CONTINUE);
	assert_string_equal(seen_phase, "END-OF-MESSAGE");
	assert_int_equal(d.phase, ELEMTA_PHASE_EOM);

	calls_a = 0;
	decide(h, vrfy, &d);
	assert_int_equal(d.result.action, ELEMTA_CONTINUE);
	assert_int_equal(d.phase, ELEMTA_PHASE_UNKNOWN);
	assert_int_equal(calls_a, 0);

	decide(h, none, &d);
	assert_int_equal(d.phase, ELEMTA_PHASE_RCPT);
	assert_int_equal(d.result.action, ELEMTA_REJECT);
	plugin_host_free(h);
}

/* test_chain_auth_unverified - AUTH without a verified outcome never
 * reaches the hooks: 454 4.7.0; on the Postfix listener AUTH is just an
 * unknown state. */
static void
test_chain_auth_unverified(void **state)
{
	struct plugin_host *h = chain_abc();
	struct plugin_decision d;
	static const char *const auth[] = { "protocol_state=AUTH",
	    "client_address=192.0.2.1", "sasl_username=alice", NULL };

	decide(h, auth, &d);
	assert_int_equal(d.result.action, ELEMTA_TEMPFAIL);
	assert_int_equal(d.result.smtp_code, 454);
	assert_int_equal(calls_a, 0);
	decide_on(h, PLUGIN_LISTENER_POSTFIX, auth, &d);
	assert_int_equal(d.result.action, ELEMTA_CONTINUE);
	assert_int_equal(d.phase, ELEMTA_PHASE_UNKNOWN);
	plugin_host_free(h);
}

/* test_disabled_plugins_skipped - a disabled entry is never opened, even
 * when its file does not exist; enabled ones load in config order. */
static void
test_disabled_plugins_skipped(void **state)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	struct plugin_host *h = plugin_host_new(NULL, 64);
	struct error err;

	assert_non_null(cfg);
	str_copy(cfg->plugins[0].name, "ghost", CONFIG_NAME_MAX);
	str_copy(cfg->plugins[0].path, "/nonexistent/ghost.so", CONFIG_PATH_MAX);
	cfg->plugins[0].enabled = false;
	str_copy(cfg->plugins[1].name, "policy", CONFIG_NAME_MAX);
	cfg->plugins[1].enabled = true;
	cfg->plugin_count = 2;
	assert_int_equal(plugin_host_load_config(h, cfg, &err), 0);
	assert_int_equal(plugin_host_count(h), 1);
	assert_string_equal(plugin_host_name(h, 0), "policy");
	plugin_host_free(h);

	/* Enabled, the missing file is an error naming plugin and path. */
	cfg->plugins[0].enabled = true;
	h = plugin_host_new(NULL, 64);
	assert_int_equal(plugin_host_load_config(h, cfg, &err), -1);
	assert_non_null(strstr(err.text, "ghost"));
	assert_non_null(strstr(err.text, "/nonexistent/ghost.so"));
	plugin_host_free(h);
	free(cfg);
}

/* test_duplicate_and_unknown_builtin - clear errors. */
static void
test_duplicate_and_unknown_builtin(void **state)
{
	struct plugin_host *h = plugin_host_new(NULL, 64);
	struct error err;

	assert_int_equal(plugin_host_add_builtin(h, "nosuch", NULL, &err), -1);
	assert_non_null(strstr(err.text, "nosuch"));
	assert_non_null(strstr(err.text, "built-in"));
	assert_int_equal(plugin_host_add(h, "a", &plug_a, NULL, NULL, &err), 0);
	assert_int_equal(plugin_host_add(h, "a", &plug_a, NULL, NULL, &err), -1);
	assert_non_null(strstr(err.text, "twice"));
	plugin_host_free(h);
}

/* ==== Context accessors ==== */

static char got_ip[64], got_key[96], got_listener[16], got_rcpt[64];
static const char *got_sender_ptr;
static char got_sender[64];
static size_t got_count;
static int got_auth, got_tls;
static char got_ext[32];
static char got_msg[32];
static uint64_t got_size;

static enum elemta_action
probe(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	const char *v;
	char buf[16];
	ssize_t n;

	str_copy(got_ip, elemta_ctx_client_ip(ctx), sizeof(got_ip));
	v = elemta_ctx_attr(ctx, "elemta_client_key");
	str_copy(got_key, v ? v : "(null)", sizeof(got_key));
	v = elemta_ctx_attr(ctx, "elemta_listener");
	str_copy(got_listener, v ? v : "(null)", sizeof(got_listener));
	got_sender_ptr = elemta_ctx_sender(ctx);
	str_copy(got_sender, got_sender_ptr ? got_sender_ptr : "(null)",
	    sizeof(got_sender));
	v = elemta_ctx_recipient(ctx);
	str_copy(got_rcpt, v ? v : "(null)", sizeof(got_rcpt));
	got_count = elemta_ctx_recipient_count(ctx);
	got_auth = elemta_ctx_authenticated(ctx);
	got_tls = elemta_ctx_tls(ctx);
	got_size = elemta_ctx_size(ctx);
	v = elemta_ctx_attr(ctx, "elemta_session");
	str_copy(got_ext, v ? v : "(null)", sizeof(got_ext));
	n = elemta_ctx_message_read(ctx, 2, buf, 5);
	if (n > 0) {
		buf[n] = '\0';
		str_copy(got_msg, buf, sizeof(got_msg));
	} else {
		str_copy(got_msg, n == 0 ? "(eof)" : "(none)", sizeof(got_msg));
	}
	return ELEMTA_CONTINUE;
}

static const struct elemta_plugin plug_probe = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION, .name = "probe",
	.on_connect = probe, .on_mail_from = probe, .on_rcpt_to = probe,
	.on_data = probe,
};

/* test_ctx_accessors - canonical address, /64 key, sender NULL before
 * MAIL and "" for <>, recipient only at RCPT, counts, auth, TLS, size. */
static void
test_ctx_accessors(void **state)
{
	struct plugin_host *h = plugin_host_new(NULL, 64);
	struct plugin_decision d;
	struct error err;
	static const char *const conn[] = { "protocol_state=CONNECT",
	    "client_address=::ffff:192.0.2.7", "elemta_session=S1", NULL };
	static const char *const mail[] = { "protocol_state=MAIL",
	    "client_address=2001:DB8:0:1:0:0:0:5", "sender=", "size=1234",
	    "encryption_protocol=TLSv1.3", "sasl_username=alice", NULL };
	static const char *const rcpt[] = { "protocol_state=RCPT",
	    "client_address=192.0.2.7", "sender=a@b.c", "recipient=r@x.y",
	    "recipient_count=3", "elemta_session=S2", NULL };

	assert_int_equal(plugin_host_add(h, "probe", &plug_probe, NULL, NULL,
	    &err), 0);
	decide(h, conn, &d);
	assert_string_equal(got_ip, "192.0.2.7");
	assert_string_equal(got_key, "192.0.2.7");
	assert_null(got_sender_ptr);
	assert_string_equal(got_rcpt, "(null)");
	assert_string_equal(got_listener, ELEMTA_LISTENER_ELEMTA);
	assert_string_equal(got_listener, "elemta");
	assert_string_equal(got_ext, "S1");
	assert_int_equal(got_auth, 0);

	decide(h, mail, &d);
	assert_string_equal(got_ip, "2001:db8:0:1::5");
	assert_string_equal(got_key, "2001:db8:0:1::/64");
	assert_non_null(got_sender_ptr);
	assert_string_equal(got_sender, "");
	assert_int_equal(got_size, 1234);
	assert_int_equal(got_tls, 1);
	assert_int_equal(got_auth, 1);
	assert_string_equal(got_msg, "(none)");

	decide(h, rcpt, &d);
	assert_string_equal(got_rcpt, "r@x.y");
	assert_int_equal(got_count, 3);

	/* On the Postfix listener: extensions are invisible and the RCPT
	 * count is the connection's tally, not Postfix's recipient_count=0;
	 * the host keeps the tally, and starts over at a new instance. */
	{
		struct req q;
		struct plugin_request rq;
		struct plugin_txn txn;
		static const char *const next[] = { "protocol_state=RCPT",
		    "client_address=192.0.2.7", "recipient=r@x.y",
		    "instance=second", NULL };

		memset(&txn, 0, sizeof(txn));
		txn.accepted = 9;
		txn.rcpt_accepted = 7;
		memset(&rq, 0, sizeof(rq));
		rq.req = req_make(&q, rcpt);
		rq.listener = PLUGIN_LISTENER_POSTFIX;
		rq.message_fd = -1;
		rq.txn = &txn;
		plugin_host_decide(h, &rq, &d);
		assert_string_equal(got_listener, ELEMTA_LISTENER_POSTFIX);
		assert_string_equal(got_listener, "postfix");
		assert_string_equal(got_ext, "(null)");
		assert_int_equal(got_count, 7);
		assert_true(d.accepted);
		assert_int_equal(txn.rcpt_accepted, 8);
		assert_int_equal(txn.accepted, 10);

		rq.req = req_make(&q, next);
		plugin_host_decide(h, &rq, &d);
		assert_int_equal(got_count, 0);
		assert_string_equal(txn.instance, "second");
		assert_int_equal(txn.rcpt_accepted, 1);
		assert_int_equal(txn.accepted, 1);

		/* Elemta's listener never touches it. */
		rq.listener = PLUGIN_LISTENER_ELEMTA;
		plugin_host_decide(h, &rq, &d);
		assert_int_equal(txn.accepted, 1);
	}
	plugin_host_free(h);
}

/* test_ctx_message_read - at end of data the message is readable by
 * offset without moving a shared position. */
static void
test_ctx_message_read(void **state)
{
	struct plugin_host *h = plugin_host_new(NULL, 64);
	struct plugin_decision d;
	struct error err;
	struct req q;
	struct plugin_request rq;
	char path[PATH_MAX];
	FILE *f;
	static const char *const eom[] = { "protocol_state=END-OF-MESSAGE",
	    "client_address=192.0.2.7", "message_fd=1", NULL };

	make_tmpdir();
	snprintf(path, sizeof(path), "%s/msg", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("Received: x\r\n", f);
	fclose(f);
	assert_int_equal(plugin_host_add(h, "probe", &plug_probe, NULL, NULL,
	    &err), 0);
	memset(&rq, 0, sizeof(rq));
	rq.req = req_make(&q, eom);
	rq.message_fd = open(path, O_RDONLY);
	assert_true(rq.message_fd >= 0);
	plugin_host_decide(h, &rq, &d);
	assert_string_equal(got_msg, "ceive");
	assert_int_equal(lseek(rq.message_fd, 0, SEEK_CUR), 0);
	close(rq.message_fd);
	plugin_host_free(h);
	rm_tmpdir();
}

/* test_result_set - formats, bounds and cleans. */
static void
test_result_set(void **state)
{
	struct elemta_result res;
	char big[600];

	assert_int_equal(elemta_result_set(&res, ELEMTA_REJECT, 554, "5.7.1",
	    "no %s\r\nhere", "way"), ELEMTA_REJECT);
	assert_int_equal(res.smtp_code, 554);
	assert_string_equal(res.enhanced, "5.7.1");
	assert_string_equal(res.message, "no way  here");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	elemta_result_set(&res, ELEMTA_TEMPFAIL, 0, "4.7.1.99.99.99.99.99", "%s",
	    big);
	assert_int_equal(strlen(res.message), ELEMTA_RESULT_TEXT_MAX - 1);
	assert_true(strlen(res.enhanced) < sizeof(res.enhanced));
}

/* ==== Rate services through the host ==== */

static uint64_t fake_ms;

static uint64_t
fake_clock(void)
{
	return fake_ms;
}

static const char *rate_key = "k";
static uint32_t rate_limit_n = 1;
static int rate_rc;

static enum elemta_action
rate_plug(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	rate_rc = elemta_rate_check(ctx, rate_key, rate_limit_n, 60000, NULL);
	if (rate_rc < 0)
		return elemta_result_set(res, ELEMTA_TEMPFAIL, 451, "4.3.0", "table");
	return rate_rc ? ELEMTA_CONTINUE :
	    elemta_result_set(res, ELEMTA_TEMPFAIL, 450, "4.7.1", "rate");
}

static const struct elemta_plugin plug_rate = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION, .name = "rate",
	.on_rcpt_to = rate_plug,
};

/* metric_plug - adds to a metric of its own and tries to forge one of
 * the host's. */
static enum elemta_action
metric_plug(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	elemta_metric_add(ctx, "plugin_things_total", 1);
	elemta_metric_add(ctx, "elemta_plugin_calls_total{plugin=\"m\"}", 1000);
	elemta_metric_add(ctx, "bad name", 1);
	return ELEMTA_CONTINUE;
}

static const struct elemta_plugin plug_metric = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION, .name = "metric",
	.on_rcpt_to = metric_plug,
};

/* More metric names than the host counts in memory (64). */
#define MANY_METRICS 70

/* many_plug - adds 1 to each of MANY_METRICS names. */
static enum elemta_action
many_plug(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	char name[32];

	for (int i = 0; i < MANY_METRICS; i++) {
		snprintf(name, sizeof(name), "many_%d_total", i);
		elemta_metric_add(ctx, name, 1);
	}
	return ELEMTA_CONTINUE;
}

static const struct elemta_plugin plug_many = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION, .name = "many",
	.on_rcpt_to = many_plug,
};


/* test_rate_namespaced_and_withdrawn - two plugins with the same key do
 * not share a count; a hit in a decision that ends refused is withdrawn;
 * no counter table means -1 (the plugin tempfails, never allows). */
static void
test_rate_namespaced_and_withdrawn(void **state)
{
	struct counter_store *cs;
	struct plugin_host *h;
	struct plugin_decision d;
	struct error err;
	char dir[PATH_MAX];

	make_tmpdir();
	snprintf(dir, sizeof(dir), "%s/counters", tmpdir);
	assert_int_equal(counter_store_open(dir, 8 << 20, false, COUNTER_SYNC_SAFE, &cs, &err), 0);
	fake_ms = 1000000;
	counter_set_clock(cs, fake_clock);

	/* r1 and r2 are the same plugin under two names: separate keys. */
	h = plugin_host_new(cs, 64);
	assert_int_equal(plugin_host_add(h, "r1", &plug_rate, NULL, NULL, &err), 0);
	assert_int_equal(plugin_host_add(h, "r2", &plug_rate, NULL, NULL, &err), 0);
	decide(h, rcpt_req, &d);
	assert_int_equal(d.result.action, ELEMTA_CONTINUE);  /* both allowed */
	decide(h, rcpt_req, &d);
	assert_int_equal(d.result.action, ELEMTA_TEMPFAIL);
	assert_string_equal(d.plugin, "r1");
	plugin_host_free(h);

	/* A hit followed by a refusal in the same decision is withdrawn. */
	h = plugin_host_new(cs, 64);
	rate_key = "w";
	assert_int_equal(plugin_host_add(h, "r1", &plug_rate, NULL, NULL, &err), 0);
	assert_int_equal(plugin_host_add(h, "b", &plug_b, NULL, NULL, &err), 0);
	b_action = ELEMTA_REJECT;
	decide(h, rcpt_req, &d);
	assert_int_equal(rate_rc, 1);
	assert_int_equal(d.result.action, ELEMTA_REJECT);
	b_action = ELEMTA_CONTINUE;
	decide(h, rcpt_req, &d);
	assert_int_equal(rate_rc, 1);       /* the first hit was not kept */
	assert_int_equal(d.result.action, ELEMTA_CONTINUE);
	decide(h, rcpt_req, &d);
	assert_int_equal(rate_rc, 0);
	assert_int_equal(d.result.action, ELEMTA_TEMPFAIL);
	plugin_host_free(h);

	/* The per-plugin timing metrics are flushed to the table. */
	{
		struct plugin_host *h2 = plugin_host_new(cs, 64);

		assert_int_equal(plugin_host_add(h2, "r9", &plug_rate, NULL,
		    NULL, &err), 0);
		struct metric_find m = {
		    "elemta_plugin_calls_total{plugin=\"r9\"}", 0 };
		struct metric_find dm = { "elemta_policy_decisions_total"
		    "{phase=\"RCPT\",action=\"continue\",plugin=\"\"}", 0 };
		struct metric_find hc = {
		    "elemta_policy_decision_seconds_count", 0 };
		struct metric_find hi = {
		    "elemta_policy_decision_seconds_bucket{le=\"+Inf\"}", 0 };

		decide(h2, rcpt_req, &d);
		decide(h2, rcpt_req, &d);
		plugin_host_flush_metrics(h2);
		assert_int_equal(counter_visit(cs, COUNTER_KIND_METRIC, NULL,
		    metric_cb, &m, &err), 0);
		assert_int_equal(m.value, 2);
		assert_int_equal(counter_visit(cs, COUNTER_KIND_METRIC, NULL,
		    metric_cb, &dm, &err), 0);
		assert_int_equal(dm.value, 1);
		/* every decision is in the latency histogram */
		assert_int_equal(counter_visit(cs, COUNTER_KIND_METRIC, NULL,
		    metric_cb, &hc, &err), 0);
		assert_int_equal(counter_visit(cs, COUNTER_KIND_METRIC, NULL,
		    metric_cb, &hi, &err), 0);
		assert_true(hc.value >= 2);
		assert_int_equal(hi.value, hc.value);
		plugin_host_free(h2);
	}

	/* A plugin's own metrics count; the host's elemta_ names and
	 * invalid names are refused. */
	{
		struct plugin_host *h3 = plugin_host_new(cs, 64);
		struct metric_find own = { "plugin_things_total", 0 };
		struct metric_find forged = {
		    "elemta_plugin_calls_total{plugin=\"m\"}", 0 };

		assert_int_equal(plugin_host_add(h3, "m", &plug_metric, NULL,
		    NULL, &err), 0);
		decide(h3, rcpt_req, &d);
		plugin_host_flush_metrics(h3);
		assert_int_equal(counter_visit(cs, COUNTER_KIND_METRIC, NULL,
		    metric_cb, &own, &err), 0);
		assert_int_equal(own.value, 1);
		assert_int_equal(counter_visit(cs, COUNTER_KIND_METRIC, NULL,
		    metric_cb, &forged, &err), 0);
		assert_int_equal(forged.value, 1);      /* the host's one call */
		plugin_host_free(h3);
	}

	/* Plugin metrics from decisions are counted in memory until the
	 * flush; names past the in-memory table go straight to the table;
	 * the totals are the same. */
	{
		struct plugin_host *h4 = plugin_host_new(cs, 64);
		struct metric_find first = { "many_0_total", 0 };
		char last_name[32];
		struct metric_find last = { last_name, 0 };

		snprintf(last_name, sizeof(last_name), "many_%d_total",
		    MANY_METRICS - 1);
		assert_int_equal(plugin_host_add(h4, "many", &plug_many, NULL,
		    NULL, &err), 0);
		decide(h4, rcpt_req, &d);
		decide(h4, rcpt_req, &d);
		assert_int_equal(counter_visit(cs, COUNTER_KIND_METRIC, NULL,
		    metric_cb, &first, &err), 0);
		assert_int_equal(first.value, 0);
		assert_int_equal(counter_visit(cs, COUNTER_KIND_METRIC, NULL,
		    metric_cb, &last, &err), 0);
		assert_int_equal(last.value, 2);
		plugin_host_flush_metrics(h4);
		for (int i = 0; i < MANY_METRICS; i++) {
			char name[32];
			struct metric_find m = { name, 0 };

			snprintf(name, sizeof(name), "many_%d_total", i);
			assert_int_equal(counter_visit(cs, COUNTER_KIND_METRIC,
			    NULL, metric_cb, &m, &err), 0);
			assert_int_equal(m.value, 2);
		}
		plugin_host_flush_metrics(h4);  /* nothing counted twice */
		assert_int_equal(counter_visit(cs, COUNTER_KIND_METRIC, NULL,
		    metric_cb, &first, &err), 0);
		assert_int_equal(first.value, 2);
		plugin_host_free(h4);
	}
	counter_store_close(cs);

	h = plugin_host_new(NULL, 64);
	assert_int_equal(plugin_host_add(h, "r1", &plug_rate, NULL, NULL, &err), 0);
	decide(h, rcpt_req, &d);
	assert_int_equal(rate_rc, -1);
	assert_int_equal(d.result.action, ELEMTA_TEMPFAIL);
	plugin_host_free(h);
	rate_key = "k";
	rm_tmpdir();
}

/* ==== Loader refusals (real shared objects) ==== */

static char include_dir[PATH_MAX];

/* find_include - the tree's include/ directory (the test runs from the
 * top of the tree or from build/tests). */
static bool
find_include(void)
{
	char exe[PATH_MAX], cand[PATH_MAX + 64];
	ssize_t n;

	if (access("include/elemta/plugin.h", R_OK) == 0 &&
	    realpath("include", include_dir) != NULL)
		return true;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(cand, sizeof(cand), "%s/../../include/elemta/plugin.h", exe);
	if (access(cand, R_OK) != 0)
		return false;
	snprintf(cand, sizeof(cand), "%s/../../include", exe);
	return realpath(cand, include_dir) != NULL;
}

/* build_plugin - compile C source into tmpdir/name.so (mode 0755). */
static const char *
build_plugin(const char *name, const char *source)
{
	static char so[512];
	char src[512], cmd[PATH_MAX + 1200];
	FILE *f;

	snprintf(src, sizeof(src), "%s/%s.c", tmpdir, name);
	snprintf(so, sizeof(so), "%s/%s.so", tmpdir, name);
	f = fopen(src, "w");
	assert_non_null(f);
	fputs(source, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cc -std=c11 -shared -fPIC -I'%s' -o '%s' '%s'",
	    include_dir, so, src);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(chmod(so, 0755), 0);
	return so;
}

static const char good_src[] =
    "#include <elemta/plugin.h>\n"
    "#include <string.h>\n"
    "static int init(const elemta_cfg *c, void **st, char *e, size_t n) {\n"
    "  int64_t v; if (elemta_cfg_int(c, \"fail\", 0, 0, 1, &v, e, n)) return -1;\n"
    "  if (v) { strcpy(e, \"told to fail\"); return -1; }\n"
    "  *st = 0; return 0; }\n"
    "static enum elemta_action rcpt(void *s, const elemta_ctx *x,\n"
    "    struct elemta_result *r) {\n"
    "  const char *rc = elemta_ctx_recipient(x);\n"
    "  if (rc && strstr(rc, \"@no.example\"))\n"
    "    return elemta_result_set(r, ELEMTA_REJECT, 550, \"5.7.1\", \"no %s\", rc);\n"
    "  return ELEMTA_CONTINUE; }\n"
    "ELEMTA_PLUGIN_EXPORT = { .abi_version = ELEMTA_PLUGIN_ABI_VERSION,\n"
    "  .name = \"good\", .version = \"1\", .init = init, .on_rcpt_to = rcpt };\n";

static const char nosym_src[] =
    "int elemta_not_a_plugin = 1;\n";

static const char badabi_src[] =
    "#include <elemta/plugin.h>\n"
    "ELEMTA_PLUGIN_EXPORT = { .abi_version = 99, .name = \"old\" };\n";

static const char initfail_src[] =
    "#include <elemta/plugin.h>\n"
    "#include <string.h>\n"
    "static int init(const elemta_cfg *c, void **st, char *e, size_t n) {\n"
    "  strncpy(e, \"database unreachable\", n); return -1; }\n"
    "ELEMTA_PLUGIN_EXPORT = { .abi_version = ELEMTA_PLUGIN_ABI_VERSION,\n"
    "  .name = \"initfail\", .init = init };\n";

/* test_loader_good_plugin - a proper .so loads, resolves the host API
 * from this executable and decides. */
static void
test_loader_good_plugin(void **state)
{
	struct plugin_host *h;
	struct plugin_decision d;
	struct error err;
	const char *so;
	static const char *const req[] = { "protocol_state=RCPT",
	    "client_address=192.0.2.1", "recipient=x@no.example", NULL };

	if (!find_include())
		skip();
	make_tmpdir();
	so = build_plugin("good", good_src);
	h = plugin_host_new(NULL, 64);
	assert_int_equal(plugin_host_add_file(h, "good", so, NULL, &err), 0);
	decide(h, req, &d);
	assert_int_equal(d.result.action, ELEMTA_REJECT);
	assert_string_equal(d.result.message, "no x@no.example");
	assert_string_equal(d.plugin, "good");
	plugin_host_free(h);
	rm_tmpdir();
}

/* expect_refusal - loading so as name fails with all of the words. */
static void
expect_refusal(const char *name, const char *so, const char *w1,
    const char *w2)
{
	struct plugin_host *h = plugin_host_new(NULL, 64);
	struct error err;

	err.text[0] = '\0';
	assert_int_equal(plugin_host_add_file(h, name, so, NULL, &err), -1);
	if (strstr(err.text, name) == NULL || strstr(err.text, so) == NULL ||
	    strstr(err.text, w1) == NULL || (w2 && strstr(err.text, w2) == NULL))
		fail_msg("unexpected refusal text: %s", err.text);
	assert_null(strchr(err.text, '\n'));
	assert_int_equal(plugin_host_count(h), 0);
	plugin_host_free(h);
}

/* test_loader_refusals - each unsafe or broken plugin gets its own one
 * line naming the plugin and the file. */
static void
test_loader_refusals(void **state)
{
	char missing[PATH_MAX];
	const char *so;

	if (!find_include())
		skip();
	make_tmpdir();
	snprintf(missing, sizeof(missing), "%s/missing.so", tmpdir);
	expect_refusal("gone", missing, "cannot open", "No such file");
	expect_refusal("dir", tmpdir, "not a regular file", NULL);

	so = build_plugin("ww", good_src);
	assert_int_equal(chmod(so, 0757), 0);
	expect_refusal("ww", so, "writable by group or others", "0757");
	assert_int_equal(chmod(so, 0775), 0);
	expect_refusal("ww", so, "writable by group or others", "0775");

	if (geteuid() == 0) {
		so = build_plugin("foreign", good_src);
		assert_int_equal(chown(so, 4242, 4242), 0);
		expect_refusal("foreign", so, "owned by uid 4242", "root");
	}
	so = build_plugin("nosym", nosym_src);
	expect_refusal("nosym", so, "no 'elemta_plugin' descriptor", NULL);
	so = build_plugin("badabi", badabi_src);
	expect_refusal("badabi", so, "ABI version 99", "version 1");
	so = build_plugin("initfail", initfail_src);
	expect_refusal("initfail", so, "init failed", "database unreachable");
	rm_tmpdir();
}

/* ==== Config accessors on a real file ==== */

static struct config *loaded;
static char cfg_path[PATH_MAX];

/* load_yaml - a complete config whose plugin has the given config body
 * (YAML lines indented by 6); fails the test on a load error. */
static const elemta_cfg *
load_yaml(const char *plugin_config)
{
	struct config_errors errs;
	FILE *f;

	snprintf(cfg_path, sizeof(cfg_path), "%s/e.yaml", tmpdir);
	f = fopen(cfg_path, "w");
	assert_non_null(f);
	fprintf(f, "server:\n  listen:\n    - address: \"127.0.0.1:2525\"\n"
	    "plugins:\n  - name: probe\n    config:\n%s", plugin_config);
	fclose(f);
	loaded = config_load(cfg_path, &errs);
	if (loaded == NULL)
		fail_msg("config_load: %s", errs.count ? errs.text[0] : "?");
	assert_int_equal(loaded->plugin_count, 1);
	return (const elemta_cfg *)(const void *)loaded->plugins[0].config;
}

/* test_cfg_typed_getters - values, defaults and errors naming file:line. */
static void
test_cfg_typed_getters(void **state)
{
	const elemta_cfg *c;
	const elemta_cfg *list;
	const char *s;
	char err[512], where[PATH_MAX + 16];
	int64_t i;
	uint64_t u;
	int b;

	make_tmpdir();
	c = load_yaml("      n: 42\n"
	    "      big: 1000\n"
	    "      word: hello\n"
	    "      flag: yes\n"
	    "      wait: 5m\n"
	    "      size: 10MB\n"
	    "      domains: [a.example, .b.example]\n"
	    "      bad_list: [x, [y]]\n"
	    "      nested: {k: v}\n"
	    "      empty:\n"
	    "      tilde: ~\n"
	    "      upper: NULL\n"
	    "      quoted: \"~\"\n");
	assert_int_equal(elemta_cfg_type(c), ELEMTA_CFG_MAP);
	assert_int_equal(elemta_cfg_int(c, "n", 0, 0, 100, &i, err, sizeof(err)), 0);
	assert_int_equal(i, 42);
	assert_int_equal(elemta_cfg_int(c, "absent", 7, 0, 100, &i, err,
	    sizeof(err)), 0);
	assert_int_equal(i, 7);
	assert_int_equal(elemta_cfg_int(c, "big", 0, 0, 100, &i, err,
	    sizeof(err)), -1);
	snprintf(where, sizeof(where), "%s:8:", cfg_path);
	if (strstr(err, where) == NULL || strstr(err, "key 'big'") == NULL)
		fail_msg("error text: %s", err);
	assert_int_equal(elemta_cfg_int(c, "word", 0, 0, 100, &i, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "key 'word'"));
	assert_int_equal(elemta_cfg_string(c, "word", NULL, &s, err, sizeof(err)), 0);
	assert_string_equal(s, "hello");
	assert_int_equal(elemta_cfg_string(c, "absent", "dflt", &s, err,
	    sizeof(err)), 0);
	assert_string_equal(s, "dflt");
	assert_int_equal(elemta_cfg_string(c, "nested", NULL, &s, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "got a map"));
	assert_int_equal(elemta_cfg_bool(c, "flag", 0, &b, err, sizeof(err)), 0);
	assert_int_equal(b, 1);
	assert_int_equal(elemta_cfg_bool(c, "word", 0, &b, err, sizeof(err)), -1);
	assert_int_equal(elemta_cfg_duration_ms(c, "wait", 0, &u, err,
	    sizeof(err)), 0);
	assert_int_equal(u, 300000);
	assert_int_equal(elemta_cfg_size(c, "size", 0, &u, err, sizeof(err)), 0);
	assert_int_equal(u, 10u << 20);
	assert_int_equal(elemta_cfg_size(c, "word", 0, &u, err, sizeof(err)), -1);

	assert_int_equal(elemta_cfg_string_list(c, "domains", &list, err,
	    sizeof(err)), 0);
	assert_int_equal(elemta_cfg_len(list), 2);
	assert_string_equal(elemta_cfg_scalar(elemta_cfg_at(list, 1)), ".b.example");
	assert_null(elemta_cfg_at(list, 2));
	assert_int_equal(elemta_cfg_string_list(c, "bad_list", &list, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "item 2"));
	assert_int_equal(elemta_cfg_string_list(c, "word", &list, err,
	    sizeof(err)), -1);
	assert_int_equal(elemta_cfg_string_list(c, "empty", &list, err,
	    sizeof(err)), 0);
	assert_null(list);
	/* YAML's nulls are empty lists; a quoted "~" is text */
	assert_int_equal(elemta_cfg_string_list(c, "tilde", &list, err,
	    sizeof(err)), 0);
	assert_null(list);
	assert_int_equal(elemta_cfg_string_list(c, "upper", &list, err,
	    sizeof(err)), 0);
	assert_null(list);
	assert_int_equal(elemta_cfg_string_list(c, "quoted", &list, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "single value"));
	assert_int_equal(elemta_cfg_string_list(c, "absent", &list, err,
	    sizeof(err)), 0);
	assert_null(list);

	/* Navigation. */
	assert_non_null(elemta_cfg_get(c, "nested"));
	assert_int_equal(elemta_cfg_type(elemta_cfg_get(c, "nested")), ELEMTA_CFG_MAP);
	assert_string_equal(elemta_cfg_key_at(elemta_cfg_get(c, "nested"), 0), "k");
	assert_null(elemta_cfg_get(NULL, "x"));
	assert_null(elemta_cfg_get(elemta_cfg_get(c, "word"), "x"));
	assert_null(elemta_cfg_scalar(elemta_cfg_get(c, "nested")));
	snprintf(where, sizeof(where), "%s:7:", cfg_path);
	assert_non_null(strstr(elemta_cfg_where(elemta_cfg_get(c, "n")), where));

	/* A NULL config (no config: section): every getter gives defaults. */
	assert_int_equal(elemta_cfg_int(NULL, "n", 5, 0, 9, &i, err, sizeof(err)), 0);
	assert_int_equal(i, 5);
	config_free(loaded);
	rm_tmpdir();
}

/* test_cfg_check_keys - an unknown key is named with the nearest known. */
static void
test_cfg_check_keys(void **state)
{
	static const char *const known[] = { "max_messages_per_minute",
	    "blocked_recipient_domains", NULL };
	const elemta_cfg *c;
	char err[512], where[PATH_MAX + 16];

	make_tmpdir();
	c = load_yaml("      max_messages_per_minute: 5\n"
	    "      blocked_recipient_domain: [x.example]\n");
	assert_int_equal(elemta_cfg_check_keys(c, known, err, sizeof(err)), -1);
	snprintf(where, sizeof(where), "%s:8:", cfg_path);
	if (strstr(err, where) == NULL ||
	    strstr(err, "'blocked_recipient_domain'") == NULL ||
	    strstr(err, "did you mean 'blocked_recipient_domains'") == NULL)
		fail_msg("error text: %s", err);
	assert_int_equal(elemta_cfg_check_keys(NULL, known, err, sizeof(err)), 0);
	config_free(loaded);
	rm_tmpdir();
}

/* test_init_error_names_plugin - init's reason comes back prefixed with
 * the plugin's name. */
static void
test_init_error_names_plugin(void **state)
{
	struct plugin_host *h = plugin_host_new(NULL, 64);
	const elemta_cfg *c;
	struct error err;

	make_tmpdir();
	c = load_yaml("      max_messages_per_minut: 5\n");
	assert_int_equal(plugin_host_add_builtin(h, "policy",
	    (const struct config_node *)(const void *)c, &err), -1);
	if (strstr(err.text, "plugin 'policy'") == NULL ||
	    strstr(err.text, "init failed") == NULL ||
	    strstr(err.text, "did you mean 'max_messages_per_minute'") == NULL)
		fail_msg("error text: %s", err.text);
	plugin_host_free(h);
	config_free(loaded);
	rm_tmpdir();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_all_continue),
		cmocka_unit_test(test_chain_first_decides),
		cmocka_unit_test(test_chain_discard_quarantine),
		cmocka_unit_test(test_chain_prepend),
		cmocka_unit_test(test_chain_defaults_filled),
		cmocka_unit_test(test_chain_bad_codes_corrected),
		cmocka_unit_test(test_chain_invalid_action),
		cmocka_unit_test(test_chain_phase_hooks),
		cmocka_unit_test(test_chain_auth_unverified),
		cmocka_unit_test(test_disabled_plugins_skipped),
		cmocka_unit_test(test_duplicate_and_unknown_builtin),
		cmocka_unit_test(test_ctx_accessors),
		cmocka_unit_test(test_ctx_message_read),
		cmocka_unit_test(test_result_set),
		cmocka_unit_test(test_rate_namespaced_and_withdrawn),
		cmocka_unit_test(test_loader_good_plugin),
		cmocka_unit_test(test_loader_refusals),
		cmocka_unit_test(test_cfg_typed_getters),
		cmocka_unit_test(test_cfg_check_keys),
		cmocka_unit_test(test_init_error_names_plugin),
	};

	log_init("test_plugin_host", true, LOG_LEVEL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
