/*
 * test_config.c - unit tests of common/config.c, the configuration loader.
 *
 * One test per promise of config.h: the repository's development config
 * loads with paths resolved against config/; every key of a full config
 * lands in its field; absent sections give the documented defaults; the
 * scalar parsers and config_nearest behave as the plugin host expects; and
 * each kind of bad config yields "FILE:LINE:COLUMN: key 'K': problem" with
 * the right line.  YAML is written into mkstemp files under /tmp.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>
#include <libgen.h>

#include <cmocka.h>

#include "config.h"

/*==== Helpers ====*/

struct tmp_file {
	char path[64];
};

/* tmp_write - yaml into a new /tmp file. */
static void
tmp_write(struct tmp_file *t, const char *yaml)
{
	int fd;
	size_t len = strlen(yaml);

	strcpy(t->path, "/tmp/elemta-test-config-XXXXXX");
	fd = mkstemp(t->path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, yaml, len), (ssize_t)len);
	close(fd);
}

/* errors_print - show what the loader said (for failing assertions). */
static void
errors_print(const struct config_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		print_message("  error: %s\n", errs->text[i]);
}

/* load_ok - yaml must load; the caller frees the config. */
static struct config *
load_ok(const char *yaml)
{
	struct tmp_file t;
	struct config_errors errs;
	struct config *cfg;

	tmp_write(&t, yaml);
	cfg = config_load(t.path, &errs);
	unlink(t.path);
	if (cfg == NULL)
		errors_print(&errs);
	assert_non_null(cfg);
	assert_int_equal(errs.count, 0);
	return cfg;
}

/* error_matches - "PATH:LINE:" (or "PATH: " when line is 0), then
 * "key 'KEY'" when key is given, and word somewhere. */
static bool
error_matches(const char *text, const char *path, unsigned line,
    const char *key, const char *word)
{
	char prefix[128], keytext[160];

	if (line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%u:", path, line);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", path);
	if (strncmp(text, prefix, strlen(prefix)) != 0)
		return false;
	if (key != NULL) {
		snprintf(keytext, sizeof(keytext), ": key '%s': ", key);
		if (strstr(text, keytext) == NULL)
			return false;
	}
	return strstr(text, word) != NULL;
}

/* expect_error - yaml must fail with an error at line about key that
 * mentions word. */
static void
expect_error(const char *yaml, unsigned line, const char *key,
    const char *word)
{
	struct tmp_file t;
	struct config_errors errs;
	struct config *cfg;
	bool found = false;

	tmp_write(&t, yaml);
	cfg = config_load(t.path, &errs);
	unlink(t.path);
	assert_null(cfg);
	assert_true(errs.count > 0);
	for (size_t i = 0; i < errs.count && !found; i++)
		found = error_matches(errs.text[i], t.path, line, key, word);
	if (!found) {
		print_message("expected line %u key '%s' word '%s', got:\n", line,
		    key ? key : "(none)", word);
		errors_print(&errs);
	}
	assert_true(found);
}

#define LISTEN "server:\n  listen:\n    - address: \"127.0.0.1:2525\"\n"
#define LONG_PATH "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock"

/* test_local_listener - mode local: unix:PATH made absolute against the
 * config's directory, socket_mode 0666 unless set, socket_group. */
static void
test_local_listener(void **state)
{
	struct config *cfg = load_ok(LISTEN
	    "    - {address: \"unix:run/submit.sock\", mode: local}\n"
	    "    - {address: \"unix:/run/other.sock\", mode: local, "
	    "socket_mode: \"0660\", socket_group: mail}\n");

	assert_int_equal(cfg->server.listen_count, 3);
	assert_int_equal(cfg->server.listen[0].mode, CONFIG_MODE_SMTP);
	assert_string_equal(cfg->server.listen[0].path, "");
	assert_int_equal(cfg->server.listen[1].mode, CONFIG_MODE_LOCAL);
	assert_string_equal(cfg->server.listen[1].path, "/tmp/run/submit.sock");
	assert_int_equal(cfg->server.listen[1].socket_mode, 0666);
	assert_string_equal(cfg->server.listen[1].socket_group, "");
	assert_int_equal(cfg->server.listen[1].port, 0);
	assert_string_equal(cfg->server.listen[2].path, "/run/other.sock");
	assert_int_equal(cfg->server.listen[2].socket_mode, 0660);
	assert_string_equal(cfg->server.listen[2].socket_group, "mail");
	assert_string_equal(config_listen_mode_name(CONFIG_MODE_LOCAL), "local");
	config_free(cfg);
}

/*==== The repository's development config ====*/

/* repo_root - the source tree: two levels above this test binary
 * (build/tests/test_config), else the current directory. */
static void
repo_root(char *out, size_t size)
{
	char exe[PATH_MAX], probe[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		exe[n] = '\0';
		snprintf(probe, sizeof(probe), "%s/../../config/elemta.yaml",
		    dirname(exe));
		if (access(probe, R_OK) == 0 &&
		    realpath(strcat(exe, "/../.."), out) != NULL)
			return;
	}
	assert_non_null(realpath(".", out));
	(void)size;
}

/* test_repo_config - config/elemta.yaml loads, paths under config/ */
static void
test_repo_config(void **state)
{
	char root[PATH_MAX], path[PATH_MAX + 32], want[PATH_MAX + 64];
	struct config_errors errs;
	struct config *cfg;
	const struct config_node *pc, *domains;

	repo_root(root, sizeof(root));
	snprintf(path, sizeof(path), "%s/config/elemta.yaml", root);
	cfg = config_load(path, &errs);
	if (cfg == NULL)
		errors_print(&errs);
	assert_non_null(cfg);

	snprintf(want, sizeof(want), "%s/config", root);
	assert_string_equal(cfg->dir, want);
	snprintf(want, sizeof(want), "%s/config/elemta.yaml", root);
	assert_string_equal(cfg->file, want);

	assert_string_equal(cfg->server.hostname, "mx.elemta.test");
	assert_int_equal(cfg->server.listen_count, 2);
	assert_string_equal(cfg->server.listen[0].address, "127.0.0.1:2525");
	assert_string_equal(cfg->server.listen[0].host, "127.0.0.1");
	assert_int_equal(cfg->server.listen[0].port, 2525);
	assert_int_equal(cfg->server.listen[0].mode, CONFIG_MODE_SMTP);
	/* elemta-sendmail's socket, under the tree's var/run. */
	assert_int_equal(cfg->server.listen[1].mode, CONFIG_MODE_LOCAL);
	snprintf(want, sizeof(want), "%s/var/run/submit.sock", root);
	assert_string_equal(cfg->server.listen[1].path, want);
	assert_int_equal(cfg->server.listen[1].socket_mode, 0666);
	assert_int_equal(cfg->server.workers, 2);
	snprintf(want, sizeof(want), "%s/var/run", root);
	assert_string_equal(cfg->server.runtime_dir, want);
	assert_int_equal(cfg->server.max_message_size, 10 * 1024 * 1024);
	assert_int_equal(cfg->server.max_recipients, 1000);
	assert_int_equal(cfg->server.command_timeout_ms, 5 * 60 * 1000);
	assert_int_equal(cfg->server.data_timeout_ms, 10 * 60 * 1000);
	assert_int_equal(cfg->server.shutdown_grace_ms, 10 * 1000);

	assert_int_equal(cfg->policyd.workers, 2);
	snprintf(want, sizeof(want), "%s/var/run/policyd.sock", root);
	assert_string_equal(cfg->policyd.socket, want);
	assert_int_equal(cfg->policyd.timeout_ms, 2000);
	assert_int_equal(cfg->policyd.fail_mode, CONFIG_FAIL_TEMPFAIL);

	snprintf(want, sizeof(want), "%s/var/counters", root);
	assert_string_equal(cfg->counters.path, want);
	assert_int_equal(cfg->counters.map_size, 64 * 1024 * 1024);
	snprintf(want, sizeof(want), "%s/var/spool", root);
	assert_string_equal(cfg->spool.path, want);
	assert_true(cfg->spool.fsync);
	assert_int_equal(cfg->log.level, LOG_LEVEL_INFO);

	assert_int_equal(cfg->plugin_count, 1);
	assert_string_equal(cfg->plugins[0].name, "policy");
	assert_string_equal(cfg->plugins[0].path, "");
	assert_true(cfg->plugins[0].enabled);
	pc = cfg->plugins[0].config;
	assert_non_null(pc);
	assert_int_equal(pc->type, CONFIG_NODE_MAP);
	assert_string_equal(config_node_get(pc, "max_messages_per_minute")->scalar,
	    "60");
	domains = config_node_get(pc, "blocked_recipient_domains");
	assert_non_null(domains);
	assert_int_equal(domains->type, CONFIG_NODE_LIST);
	assert_int_equal(domains->count, 2);
	assert_string_equal(domains->items[0]->scalar, "blocked.com");
	assert_string_equal(domains->items[1]->scalar, "spam.org");
	config_free(cfg);
}

/*==== Good configs ====*/

static const char full_yaml[] =
	"# every key, none at its default\n"                  /* 1 */
	"server:\n"
	"  hostname: mail.example.org\n"
	"  listen:\n"
	"    - address: \"127.0.0.1:2525\"\n"                 /* 5 */
	"      mode: smtp\n"
	"    - address: \"[::1]:587\"\n"
	"      mode: submission\n"
	"    - address: \"*:465\"\n"
	"      mode: smtps\n"                                 /* 10 */
	"    - address: \"[::]:25\"\n"
	"  user: mailer\n"
	"  workers: 4\n"
	"  runtime_dir: run\n"
	"  max_message_size: 25MB\n"                          /* 15 */
	"  max_recipients: 500\n"
	"  max_connections: 2000\n"
	"  max_connections_per_ip: 20\n"
	"  max_errors: 5\n"
	"  command_timeout: 2m\n"                             /* 20 */
	"  data_timeout: 1h\n"
	"  min_data_rate: 1K\n"
	"  shutdown_grace: 1500ms\n"
	"  bare_newline: normalize\n"
	"  banner: \"ESMTP ready\"\n"                         /* 25 */
	"tls:\n"
	"  certificate: tls/cert.pem\n"
	"  key: /etc/ssl/private/key.pem\n"
	"  min_version: TLSv1.3\n"
	"  ciphers: \"HIGH:!aNULL\"\n"                        /* 30 */
	"auth:\n"
	"  users_file: ./users\n"
	"  require_tls: no\n"
	"policyd:\n"
	"  user: policy\n"                                    /* 35 */
	"  workers: 3\n"
	"  socket: sock/p.sock\n"
	"  timeout_ms: 2s\n"
	"  fail_mode: accept\n"
	"  postfix_listen: unix:pf/policy.sock\n"             /* 40 */
	"counters:\n"
	"  path: /var/lib/x\n"
	"  map_size: 1G\n"
	"  ipv6_prefix: 48\n"
	"  backend: lmdb\n"                                   /* 45 */
	"spool:\n"
	"  path: ../spool\n"
	"  fsync: OFF\n"
	"metrics:\n"
	"  listen: \"127.0.0.1:9100\"\n"                      /* 50 */
	"log:\n"
	"  level: debug\n"
	"plugins:\n"
	"  - name: policy\n"
	"    config:\n"                                       /* 55 */
	"      max_messages_per_minute: 60\n"
	"  - name: my-rule_2\n"
	"    path: plugins/my.so\n"
	"    enabled: false\n"
	"    config:\n"                                       /* 60 */
	"      # nothing yet\n";

/* test_full_config - every key set away from its default lands in its field */
static void
test_full_config(void **state)
{
	struct config *cfg = load_ok(full_yaml);
	const struct config_node *plugins;

	assert_string_equal(cfg->dir, "/tmp");
	assert_string_equal(cfg->server.hostname, "mail.example.org");
	assert_int_equal(cfg->server.listen_count, 4);
	assert_string_equal(cfg->server.listen[0].host, "127.0.0.1");
	assert_int_equal(cfg->server.listen[0].port, 2525);
	assert_int_equal(cfg->server.listen[0].mode, CONFIG_MODE_SMTP);
	assert_string_equal(cfg->server.listen[1].address, "[::1]:587");
	assert_string_equal(cfg->server.listen[1].host, "::1");
	assert_int_equal(cfg->server.listen[1].port, 587);
	assert_int_equal(cfg->server.listen[1].mode, CONFIG_MODE_SUBMISSION);
	assert_string_equal(cfg->server.listen[2].address, "*:465");
	assert_string_equal(cfg->server.listen[2].host, "0.0.0.0");
	assert_int_equal(cfg->server.listen[2].mode, CONFIG_MODE_SMTPS);
	assert_string_equal(cfg->server.listen[3].host, "::");
	assert_int_equal(cfg->server.listen[3].port, 25);
	assert_int_equal(cfg->server.listen[3].mode, CONFIG_MODE_SMTP);
	assert_string_equal(cfg->server.user, "mailer");
	assert_int_equal(cfg->server.workers, 4);
	assert_string_equal(cfg->server.runtime_dir, "/tmp/run");
	assert_int_equal(cfg->server.max_message_size, 25 * 1024 * 1024);
	assert_int_equal(cfg->server.max_recipients, 500);
	assert_int_equal(cfg->server.max_connections, 2000);
	assert_int_equal(cfg->server.max_connections_per_ip, 20);
	assert_int_equal(cfg->server.max_errors, 5);
	assert_int_equal(cfg->server.command_timeout_ms, 120000);
	assert_int_equal(cfg->server.data_timeout_ms, 3600000);
	assert_int_equal(cfg->server.min_data_rate, 1024);
	assert_int_equal(cfg->server.shutdown_grace_ms, 1500);
	assert_int_equal(cfg->server.bare_newline, CONFIG_BARE_NORMALIZE);
	assert_string_equal(cfg->server.banner, "ESMTP ready");

	assert_string_equal(cfg->tls.certificate, "/tmp/tls/cert.pem");
	assert_string_equal(cfg->tls.key, "/etc/ssl/private/key.pem");
	assert_int_equal(cfg->tls.min_version, CONFIG_TLS_1_3);
	assert_string_equal(cfg->tls.ciphers, "HIGH:!aNULL");
	assert_string_equal(cfg->auth.users_file, "/tmp/users");
	assert_false(cfg->auth.require_tls);

	assert_string_equal(cfg->policyd.user, "policy");
	assert_int_equal(cfg->policyd.workers, 3);
	assert_string_equal(cfg->policyd.socket, "/tmp/sock/p.sock");
	assert_int_equal(cfg->policyd.timeout_ms, 2000);
	assert_int_equal(cfg->policyd.fail_mode, CONFIG_FAIL_ACCEPT);
	assert_string_equal(cfg->policyd.postfix_listen,
	    "unix:/tmp/pf/policy.sock");
	/* parsed once here; elemtactl, policyd and metricsd use the parts */
	assert_string_equal(cfg->policyd.postfix_endpoint.path,
	    "/tmp/pf/policy.sock");
	assert_string_equal(cfg->policyd.postfix_endpoint.host, "");
	assert_int_equal(cfg->policyd.postfix_endpoint.port, 0);

	assert_string_equal(cfg->counters.path, "/var/lib/x");
	assert_int_equal(cfg->counters.map_size, 1024 * 1024 * 1024);
	assert_int_equal(cfg->counters.ipv6_prefix, 48);
	assert_string_equal(cfg->spool.path, "/spool");
	assert_false(cfg->spool.fsync);
	assert_string_equal(cfg->metrics.listen, "127.0.0.1:9100");
	assert_string_equal(cfg->metrics.endpoint.host, "127.0.0.1");
	assert_int_equal(cfg->metrics.endpoint.port, 9100);
	assert_string_equal(cfg->metrics.endpoint.path, "");
	assert_int_equal(cfg->log.level, LOG_LEVEL_DEBUG);

	assert_int_equal(cfg->plugin_count, 2);
	assert_string_equal(cfg->plugins[0].name, "policy");
	assert_true(cfg->plugins[0].enabled);
	assert_string_equal(cfg->plugins[0].path, "");
	/* The config: subtree is a pointer into the document, not a copy. */
	plugins = config_node_get(cfg->root, "plugins");
	assert_ptr_equal(cfg->plugins[0].config,
	    config_node_get(plugins->items[0], "config"));
	assert_int_equal(cfg->plugins[0].config->line, 56);
	assert_int_equal(cfg->plugins[0].config->column, 7);
	assert_string_equal(cfg->plugins[1].name, "my-rule_2");
	assert_string_equal(cfg->plugins[1].path, "/tmp/plugins/my.so");
	assert_false(cfg->plugins[1].enabled);
	assert_null(cfg->plugins[1].config);
	assert_non_null(strstr(cfg->plugins[1].where, ":57:5"));
	config_free(cfg);
}

/* test_defaults - absent keys and empty sections give the defaults */
static void
test_defaults(void **state)
{
	struct config *cfg = load_ok(LISTEN "tls:\nplugins:\n");
	char host[256] = "";

	gethostname(host, sizeof(host) - 1);
	assert_string_equal(cfg->server.hostname, host);
	assert_int_equal(cfg->server.listen[0].mode, CONFIG_MODE_SMTP);
	assert_string_equal(cfg->server.user, "elemta");
	assert_int_equal(cfg->server.workers, 2);
	assert_string_equal(cfg->server.runtime_dir, "/run/elemta");
	assert_int_equal(cfg->server.max_message_size, 10 * 1024 * 1024);
	assert_int_equal(cfg->server.max_recipients, 1000);
	assert_int_equal(cfg->server.max_connections, 10000);
	assert_int_equal(cfg->server.max_connections_per_ip, 50);
	assert_int_equal(cfg->server.max_errors, 10);
	assert_int_equal(cfg->server.command_timeout_ms, 300000);
	assert_int_equal(cfg->server.data_timeout_ms, 600000);
	/* Issue 22: on by default, Postfix's smtpd_min_data_rate. */
	assert_int_equal(cfg->server.min_data_rate, 500);
	assert_int_equal(cfg->server.min_data_rate_grace_ms, 30000);
	assert_int_equal(cfg->server.shutdown_grace_ms, 30000);
	assert_int_equal(cfg->server.bare_newline, CONFIG_BARE_REJECT);
	assert_string_equal(cfg->server.banner, "ESMTP Elemta");
	assert_string_equal(cfg->tls.certificate, "");
	assert_string_equal(cfg->tls.key, "");
	assert_int_equal(cfg->tls.min_version, CONFIG_TLS_1_2);
	assert_string_equal(cfg->tls.ciphers, "");
	assert_string_equal(cfg->auth.users_file, "");
	assert_true(cfg->auth.require_tls);
	assert_string_equal(cfg->policyd.user, "elemta-policy");
	assert_int_equal(cfg->policyd.workers, 2);
	assert_string_equal(cfg->policyd.socket, "/run/elemta/policyd.sock");
	assert_int_equal(cfg->policyd.timeout_ms, 2000);
	assert_int_equal(cfg->policyd.fail_mode, CONFIG_FAIL_TEMPFAIL);
	assert_string_equal(cfg->policyd.postfix_listen, "");
	assert_string_equal(cfg->counters.path, "/var/lib/elemta/counters");
	assert_int_equal(cfg->counters.map_size, 64 * 1024 * 1024);
	assert_int_equal(cfg->counters.ipv6_prefix, 64);
	assert_int_equal(cfg->counters.backend, CONFIG_BACKEND_LMDB);
	assert_string_equal(cfg->counters.redis.address, "127.0.0.1:6379");
	assert_string_equal(cfg->counters.redis.password_file, "");
	assert_int_equal(cfg->counters.redis.database, 0);
	assert_string_equal(cfg->counters.redis.key_prefix, "elemta:");
	assert_int_equal(cfg->counters.redis.timeout_ms, 200);
	assert_string_equal(cfg->spool.path, "/var/spool/elemta");
	assert_true(cfg->spool.fsync);
	assert_string_equal(cfg->metrics.listen, "");
	assert_string_equal(cfg->metrics.endpoint.host, "");
	assert_int_equal(cfg->metrics.endpoint.port, 0);
	assert_string_equal(cfg->policyd.postfix_endpoint.path, "");
	assert_int_equal(cfg->log.level, LOG_LEVEL_INFO);
	assert_int_equal(cfg->plugin_count, 0);
	config_free(cfg);
}

/* dump_text - config_dump's output (free it). */
static char *
dump_text(const struct config *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	config_dump(cfg, f);
	fclose(f);
	return text;
}

/* timeouts_equal - delivery.timeouts, in seconds, in the order connect,
 * greeting, command, mail, rcpt, data_init, data_block, data_term. */
static void
timeouts_equal(const struct config *cfg, const uint64_t want[8])
{
	const uint64_t got[8] = { cfg->delivery.timeouts.connect_ms,
	    cfg->delivery.timeouts.greeting_ms,
	    cfg->delivery.timeouts.command_ms, cfg->delivery.timeouts.mail_ms,
	    cfg->delivery.timeouts.rcpt_ms,
	    cfg->delivery.timeouts.data_init_ms,
	    cfg->delivery.timeouts.data_block_ms,
	    cfg->delivery.timeouts.data_term_ms };

	for (size_t i = 0; i < 8; i++)
		assert_int_equal(got[i], want[i] * 1000);
}

/* test_delivery_defaults - the delivery section, server.mynetworks and
 * spool.min_free without a word in the file: loopback may relay, no
 * route (nothing is served), no relay host, the MX fallback on port 25 */
static void
test_delivery_defaults(void **state)
{
	struct config *cfg = load_ok(LISTEN);
	const struct addr_cidr_list *mn = &cfg->server.mynetworks;
	struct addr_ip ip;
	char buf[ADDR_TEXT_MAX + 8];

	assert_int_equal(mn->count, 2);
	assert_string_equal(addr_cidr_format(&mn->items[0], buf, sizeof(buf)),
	    "127.0.0.0/8");
	assert_string_equal(addr_cidr_format(&mn->items[1], buf, sizeof(buf)),
	    "::1/128");
	assert_int_equal(addr_ip_parse("127.0.0.9", &ip), 0);
	assert_true(addr_cidr_list_match(mn, &ip) >= 0);
	assert_int_equal(addr_ip_parse("::ffff:127.0.0.1", &ip), 0);
	assert_true(addr_cidr_list_match(mn, &ip) >= 0);
	assert_int_equal(addr_ip_parse("10.0.0.1", &ip), 0);
	assert_true(addr_cidr_list_match(mn, &ip) < 0);
	assert_int_equal(cfg->spool.min_free, 100 * 1024 * 1024);
	assert_int_equal(cfg->delivery.smtp_port, 25);
	assert_int_equal(cfg->delivery.relayhost.transport, ROUTE_NONE);
	assert_int_equal(cfg->delivery.route_count, 0);
	assert_int_equal(cfg->delivery.mx.transport, ROUTE_SMTP);
	assert_true(cfg->delivery.mx.mx);
	assert_string_equal(cfg->delivery.mx.host, "");
	assert_int_equal(cfg->delivery.mx.port, 25);
	assert_int_equal(cfg->delivery.concurrency, 20);
	assert_int_equal(cfg->delivery.destination_concurrency, 5);
	assert_int_equal(cfg->delivery.hop_limit, 50);
	assert_int_equal(cfg->delivery.retry.min_backoff_ms, 5 * 60000);
	assert_int_equal(cfg->delivery.retry.max_backoff_ms, 3600000);
	assert_int_equal(cfg->delivery.retry.max_lifetime_ms,
	    5ull * 24 * 3600000);
	assert_int_equal(cfg->delivery.retry.delay_warning_ms, 0);
	assert_int_equal(cfg->delivery.tls.mode, CONFIG_DELIVERY_TLS_MAY);
	assert_string_equal(cfg->delivery.tls.ca_file, "");
	assert_string_equal(cfg->delivery.auth.username, "");
	assert_string_equal(cfg->delivery.auth.password_file, "");
	assert_int_equal(cfg->delivery.bounce_size_limit, 50 * 1024);
	timeouts_equal(cfg, (const uint64_t[]){ 30, 300, 300, 300, 300, 120,
	    180, 600 });
	config_free(cfg);

	/* An empty list trusts nobody; "mynetworks:" alone is the default. */
	cfg = load_ok(LISTEN "  mynetworks: []\n");
	assert_int_equal(cfg->server.mynetworks.count, 0);
	config_free(cfg);
	cfg = load_ok(LISTEN "  mynetworks:\n");
	assert_int_equal(cfg->server.mynetworks.count, 2);
	config_free(cfg);
}

/* test_delivery_settings - every delivery key lands in its field, typed:
 * short durations for tests, "off", parsed next hops with relative paths
 * resolved against the file's directory (/tmp), the relay host and the
 * MX fallback on delivery.smtp_port */
static void
test_delivery_settings(void **state)
{
	struct config *cfg = load_ok(LISTEN
	    "  mynetworks: [192.0.2.0/24, \"2001:db8::/32\", 198.51.100.7]\n"
	    "spool:\n  min_free: off\n"
	    "delivery:\n"
	    "  smtp_port: 2525\n"
	    "  relayhost: \"[Relay.Example]:587\"\n"
	    "  routes:\n"
	    "    - {domains: [example.com, .example.org], "
	    "next_hop: \"maildir:../var/mail\"}\n"
	    "    - {domains: [lmtp.example], next_hop: \"lmtp:unix:dovecot/lmtp\"}\n"
	    "    - {domains: [mx.example], next_hop: \"smtp:mail.example\"}\n"
	    "    - {domains: [\"*\"], next_hop: \"error:5.7.1 no relaying\"}\n"
	    "  concurrency: 100\n  destination_concurrency: 10\n"
	    "  hop_limit: 30\n"
	    "  retry: {min_backoff: 1, max_backoff: 4s, max_lifetime: 30s, "
	    "delay_warning: 10s}\n"
	    "  tls: {mode: verify, ca_file: ca.pem}\n"
	    "  auth: {username: relay-user, password_file: relay.pw}\n"
	    "  bounce_size_limit: 1MB\n"
	    "  timeouts: {connect: 2s, greeting: 3s, command: 4s, mail: 5s, "
	    "rcpt: 6s, data_init: 7s, data_block: 8s, data_term: 9s}\n");
	const struct route *r = cfg->delivery.routes;

	assert_int_equal(cfg->server.mynetworks.count, 3);
	assert_int_equal(cfg->spool.min_free, 0);
	assert_int_equal(cfg->delivery.smtp_port, 2525);
	assert_int_equal(cfg->delivery.relayhost.transport, ROUTE_SMTP);
	assert_false(cfg->delivery.relayhost.mx);
	assert_string_equal(cfg->delivery.relayhost.host, "relay.example");
	assert_int_equal(cfg->delivery.relayhost.port, 587);
	assert_int_equal(cfg->delivery.mx.port, 2525);
	assert_int_equal(cfg->delivery.route_count, 4);
	assert_int_equal(r[0].hop.transport, ROUTE_MAILDIR);
	assert_string_equal(r[0].hop.path, "/var/mail");
	assert_int_equal(r[0].domains.count, 2);
	assert_string_equal(r[0].domains.items[1], ".example.org");
	assert_int_equal(r[1].hop.transport, ROUTE_LMTP);
	assert_string_equal(r[1].hop.path, "/tmp/dovecot/lmtp");
	assert_int_equal(r[2].hop.transport, ROUTE_SMTP);
	assert_true(r[2].hop.mx);
	assert_string_equal(r[2].hop.host, "mail.example");
	assert_int_equal(r[2].hop.port, 2525);
	assert_true(r[3].all);
	assert_int_equal(r[3].hop.transport, ROUTE_ERROR);
	assert_string_equal(r[3].hop.status, "5.7.1");
	assert_string_equal(r[3].hop.text, "no relaying");
	assert_int_equal(cfg->delivery.concurrency, 100);
	assert_int_equal(cfg->delivery.destination_concurrency, 10);
	assert_int_equal(cfg->delivery.hop_limit, 30);
	assert_int_equal(cfg->delivery.retry.min_backoff_ms, 1000);
	assert_int_equal(cfg->delivery.retry.max_backoff_ms, 4000);
	assert_int_equal(cfg->delivery.retry.max_lifetime_ms, 30000);
	assert_int_equal(cfg->delivery.retry.delay_warning_ms, 10000);
	assert_int_equal(cfg->delivery.tls.mode, CONFIG_DELIVERY_TLS_VERIFY);
	assert_string_equal(cfg->delivery.tls.ca_file, "/tmp/ca.pem");
	assert_string_equal(cfg->delivery.auth.username, "relay-user");
	assert_string_equal(cfg->delivery.auth.password_file, "/tmp/relay.pw");
	assert_int_equal(cfg->delivery.bounce_size_limit, 1024 * 1024);
	timeouts_equal(cfg, (const uint64_t[]){ 2, 3, 4, 5, 6, 7, 8, 9 });
	/* The typed values are what routing reads. */
	assert_ptr_equal(route_lookup(cfg, "www.example.org"), &r[0].hop);
	assert_ptr_equal(route_lookup(cfg, "other.example"), &r[3].hop);
	assert_true(route_domain_is_served(cfg, "example.com"));
	assert_false(route_domain_is_served(cfg, "other.example"));
	config_free(cfg);
}

/* test_delivery_dump - check-config -v shows lists and next hops in the
 * file's own spelling, "off" for zero where off is allowed */
static void
test_delivery_dump(void **state)
{
	struct config *cfg = load_ok(LISTEN "  mynetworks: [10.1.2.3/8]\n"
	    "delivery:\n  relayhost: \"relay.example:2526\"\n  routes:\n"
	    "    - {domains: [a.example, .b.example], next_hop: "
	    "\"lmtp:[::1]:2424\"}\n"
	    "    - {domains: [\"*\"], next_hop: \"smtp:[192.0.2.1]\"}\n");
	char *text = dump_text(cfg);
	assert_non_null(strstr(text, "\nserver.mynetworks = 10.0.0.0/8\n"));
	assert_non_null(strstr(text, "\nspool.min_free = 100MB\n"));
	assert_non_null(strstr(text,
	    "\ndelivery.relayhost = smtp:relay.example:2526\n"));
	assert_non_null(strstr(text,
	    "\ndelivery.routes[0].domains = a.example, .b.example\n"));
	assert_non_null(strstr(text,
	    "\ndelivery.routes[0].next_hop = lmtp:[::1]:2424\n"));
	assert_non_null(strstr(text, "\ndelivery.routes[1].domains = *\n"));
	assert_non_null(strstr(text,
	    "\ndelivery.routes[1].next_hop = smtp:[192.0.2.1]:25\n"));
	assert_non_null(strstr(text, "\ndelivery.retry.delay_warning = off\n"));
	assert_non_null(strstr(text, "\ndelivery.tls.mode = may\n"));
	free(text);
	config_free(cfg);

	cfg = load_ok(LISTEN "  mynetworks: []\n");
	text = dump_text(cfg);
	assert_non_null(strstr(text, "\nserver.mynetworks = []\n"));
	assert_non_null(strstr(text, "\ndelivery.routes = []\n"));
	assert_non_null(strstr(text, "\ndelivery.relayhost = \"\"\n"));
	free(text);
	config_free(cfg);
}

/* test_socket_follows_runtime_dir - policyd.socket under runtime_dir */
static void
test_socket_follows_runtime_dir(void **state)
{
	struct config *cfg = load_ok(LISTEN "  runtime_dir: /var/run/e\n"
	    "policyd:\n  postfix_listen: \"[::1]:10040\"\n");

	assert_string_equal(cfg->policyd.socket, "/var/run/e/policyd.sock");
	assert_string_equal(cfg->policyd.postfix_listen, "[::1]:10040");
	assert_string_equal(cfg->policyd.postfix_endpoint.host, "::1");
	assert_int_equal(cfg->policyd.postfix_endpoint.port, 10040);
	assert_string_equal(cfg->policyd.postfix_endpoint.path, "");
	config_free(cfg);
	cfg = load_ok(LISTEN "metrics:\n  listen: \"*:9100\"\n");
	assert_string_equal(cfg->metrics.endpoint.host, "0.0.0.0");
	assert_int_equal(cfg->metrics.endpoint.port, 9100);
	config_free(cfg);
}

/* test_dump - config_dump prints "key = value" with effective values */
static void
test_dump(void **state)
{
	struct config *cfg = load_ok(full_yaml);
	char *text = dump_text(cfg);
	assert_non_null(strstr(text, "\nserver.workers = 4\n"));
	assert_non_null(strstr(text, "\nserver.listen[2].address = *:465\n"));
	assert_non_null(strstr(text, "\nserver.listen[2].mode = smtps\n"));
	assert_non_null(strstr(text, "\nserver.max_message_size = 25MB\n"));
	assert_non_null(strstr(text, "\nserver.shutdown_grace = 1500ms\n"));
	assert_non_null(strstr(text, "\nserver.command_timeout = 2m\n"));
	assert_non_null(strstr(text, "\nserver.bare_newline = normalize\n"));
	assert_non_null(strstr(text, "\ntls.certificate = /tmp/tls/cert.pem\n"));
	assert_non_null(strstr(text, "\nauth.require_tls = false\n"));
	assert_non_null(strstr(text, "\npolicyd.fail_mode = accept\n"));
	assert_non_null(strstr(text, "\ncounters.backend = lmdb\n"));
	assert_non_null(strstr(text, "\nlog.level = debug\n"));
	assert_non_null(strstr(text, "\nplugins[1].name = my-rule_2\n"));
	assert_non_null(strstr(text, "\nplugins[1].enabled = false\n"));
	free(text);
	config_free(cfg);
}

/* test_redis_settings - counters.redis.* (a nested section) land in
 * their fields; a unix: address and the password file are resolved */
static void
test_redis_settings(void **state)
{
	struct config *cfg = load_ok(LISTEN "counters:\n  backend: redis\n"
	    "  redis:\n    address: \"[::1]:6380\"\n"
	    "    password_file: /etc/elemta/redis.pw\n    database: 3\n"
	    "    key_prefix: \"mx:\"\n    timeout_ms: 1s\n");

	assert_int_equal(cfg->counters.backend, CONFIG_BACKEND_REDIS);
	assert_string_equal(cfg->counters.redis.address, "[::1]:6380");
	assert_string_equal(cfg->counters.redis.password_file,
	    "/etc/elemta/redis.pw");
	assert_int_equal(cfg->counters.redis.database, 3);
	assert_string_equal(cfg->counters.redis.key_prefix, "mx:");
	assert_int_equal(cfg->counters.redis.timeout_ms, 1000);
	config_free(cfg);

	/* Enum words match in any case, as when they were stored as text
	 * (then in the table's spelling). */
	cfg = load_ok(LISTEN "counters:\n  backend: REDIS\n"
	    "tls:\n  min_version: tlsv1.3\nlog:\n  level: Warning\n");
	assert_int_equal(cfg->counters.backend, CONFIG_BACKEND_REDIS);
	assert_int_equal(cfg->tls.min_version, CONFIG_TLS_1_3);
	assert_int_equal(cfg->log.level, LOG_LEVEL_WARN);
	config_free(cfg);

	cfg = load_ok(LISTEN "counters:\n  redis:\n"
	    "    address: \"unix:/run/redis/redis.sock\"\n");
	assert_string_equal(cfg->counters.redis.address,
	    "unix:/run/redis/redis.sock");
	config_free(cfg);
}

/* test_relative_paths - relative paths are made absolute; "~" is not special */
static void
test_relative_paths(void **state)
{
	struct config *cfg = load_ok(LISTEN "  runtime_dir: ./a//b/./c\n"
	    "spool:\n  path: ../../x\ncounters:\n  path: \"~/c\"\n"
	    "auth:\n  users_file: a/../b\n");

	assert_string_equal(cfg->server.runtime_dir, "/tmp/a/b/c");
	assert_string_equal(cfg->spool.path, "/x");
	assert_string_equal(cfg->counters.path, "/tmp/~/c");
	/* ".." after a component stays: that component may be a symlink. */
	assert_string_equal(cfg->auth.users_file, "/tmp/a/../b");
	config_free(cfg);
}

/*==== Scalar conversions and nodes ====*/

/* test_parse_bool - true/false, yes/no, on/off in any case; nothing else */
static void
test_parse_bool(void **state)
{
	static const char *const yes[] = { "true", "TRUE", "yes", "Yes", "on", "ON" };
	static const char *const no[] = { "false", "False", "no", "NO", "off", "Off" };
	struct error err;
	bool b;

	for (size_t i = 0; i < 6; i++) {
		b = false;
		assert_int_equal(config_parse_bool(yes[i], &b, &err), 0);
		assert_true(b);
		assert_int_equal(config_parse_bool(no[i], &b, &err), 0);
		assert_false(b);
	}
	assert_int_equal(config_parse_bool("1", &b, &err), -1);
	assert_non_null(strstr(err.text, "boolean"));
	assert_int_equal(config_parse_bool("", &b, &err), -1);
	assert_int_equal(config_parse_bool("y", &b, NULL), -1);
}

/* test_parse_int - decimal only, range-checked, overflow refused */
static void
test_parse_int(void **state)
{
	struct error err;
	int64_t v;

	assert_int_equal(config_parse_int("42", 0, 100, &v, &err), 0);
	assert_int_equal(v, 42);
	assert_int_equal(config_parse_int("-7", -10, 10, &v, &err), 0);
	assert_int_equal(v, -7);
	assert_int_equal(config_parse_int("007", 0, 10, &v, &err), 0);
	assert_int_equal(v, 7);
	assert_int_equal(config_parse_int("9223372036854775807", 0, INT64_MAX,
	    &v, &err), 0);
	assert_int_equal(v, INT64_MAX);
	assert_int_equal(config_parse_int("101", 0, 100, &v, &err), -1);
	assert_non_null(strstr(err.text, "out of range (min 0, max 100)"));
	assert_int_equal(config_parse_int("99999999999999999999", 0, 100, &v,
	    &err), -1);
	assert_non_null(strstr(err.text, "out of range"));
	assert_int_equal(config_parse_int("0x10", 0, 100, &v, &err), -1);
	assert_non_null(strstr(err.text, "decimal"));
	assert_int_equal(config_parse_int("1e3", 0, 10000, &v, &err), -1);
	assert_int_equal(config_parse_int(" 5", 0, 10, &v, &err), -1);
	assert_int_equal(config_parse_int("5 ", 0, 10, &v, &err), -1);
	assert_int_equal(config_parse_int("", 0, 10, &v, &err), -1);
	assert_int_equal(config_parse_int("-", 0, 10, &v, &err), -1);
}

/* test_parse_duration - ms/s/m/h/d units, bare seconds, overflow refused */
static void
test_parse_duration(void **state)
{
	static const struct { const char *s; uint64_t ms; } ok[] = {
		{ "250ms", 250 }, { "30s", 30000 }, { "5m", 300000 },
		{ "1h", 3600000 }, { "2d", 172800000 }, { "45", 45000 },
		{ "0", 0 }, { "10 s", 10000 }, { "3H", 10800000 },
	};
	static const char *const bad[] = { "", "s", "5x", "-5s", "1.5s",
	    "5mm", "1h30m", "99999999999999999999", "18446744073709552d" };
	struct error err;
	uint64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(config_parse_duration_ms(ok[i].s, &v, &err), 0);
		assert_int_equal(v, ok[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(config_parse_duration_ms(bad[i], &v, &err), -1);
	assert_int_equal(config_parse_duration_ms("300000000000000000d", &v,
	    &err), -1);
	assert_non_null(strstr(err.text, "too large"));
}

/* test_parse_size - B/K/M/G/T (1024-based), bare bytes, no overflow */
static void
test_parse_size(void **state)
{
	static const struct { const char *s; uint64_t v; } ok[] = {
		{ "100B", 100 }, { "100", 100 }, { "512K", 512 * 1024 },
		{ "512KB", 512 * 1024 }, { "10M", 10 << 20 }, { "10MB", 10 << 20 },
		{ "10mb", 10 << 20 }, { "1G", 1u << 30 }, { "1GB", 1u << 30 },
		{ "2GiB", UINT64_C(2) << 30 }, { "1TB", UINT64_C(1) << 40 },
		{ "0", 0 },
	};
	static const char *const bad[] = { "", "MB", "10XB", "-1K", "1.5G",
	    "10 M B", "0x10" };
	struct error err;
	uint64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(config_parse_size(ok[i].s, &v, &err), 0);
		assert_int_equal(v, ok[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(config_parse_size(bad[i], &v, &err), -1);
	assert_int_equal(config_parse_size("16777216TB", &v, &err), -1);
	assert_non_null(strstr(err.text, "too large"));
	assert_int_equal(config_parse_size("20000000000000000000", &v, &err), -1);
	assert_non_null(strstr(err.text, "too large"));
}

/* test_nearest - suggestions within max(2, len/3) edits, none otherwise */
static void
test_nearest(void **state)
{
	static const char *const known[] = { "workers", "user", "listen",
	    "max_connections", "max_connections_per_ip", NULL };

	assert_string_equal(config_nearest("worker", known, 6), "workers");
	assert_string_equal(config_nearest("Workers", known, 6), "workers");
	assert_string_equal(config_nearest("lisen", known, 6), "listen");
	assert_string_equal(config_nearest("max_conections", known, 6),
	    "max_connections");
	assert_string_equal(config_nearest("max_connection_per_ip", known, 6),
	    "max_connections_per_ip");
	assert_null(config_nearest("banner", known, 6));
	assert_null(config_nearest("xy", known, 6));
	assert_null(config_nearest("", known, 6));
	assert_null(config_nearest("workers", known, 0));
}

/* test_nodes - node lookups, positions, null scalars, mode names */
static void
test_nodes(void **state)
{
	struct config *cfg = load_ok(LISTEN "plugins:\n  - name: p\n"
	    "    config:\n      list: [a, b]\n      empty:\n      n: ~\n"
	    "      q: \"~\"\n");
	const struct config_node *c = cfg->plugins[0].config;
	const struct config_node *list = config_node_get(c, "list");

	assert_non_null(list);
	assert_null(config_node_get(list, "a"));       /* not a map */
	assert_null(config_node_get(list->items[0], "a"));
	assert_null(config_node_get(NULL, "a"));
	assert_null(config_node_get(c, "missing"));
	assert_string_equal(list->items[1]->scalar, "b");
	assert_int_equal(list->items[1]->line, 7);
	assert_int_equal(list->items[1]->column, 17);
	assert_non_null(strstr(list->items[1]->where, ":7:17"));
	assert_ptr_equal(list->file, c->file);
	assert_string_equal(config_node_get(c, "empty")->scalar, "");
	assert_string_equal(config_node_get(c, "n")->scalar, "");
	assert_string_equal(config_node_get(c, "q")->scalar, "~");
	assert_string_equal(config_listen_mode_name(CONFIG_MODE_SUBMISSION),
	    "submission");
	/* enum settings: stored as enums, spelled by the table */
	assert_string_equal(config_enum_name("counters.backend",
	    CONFIG_BACKEND_REDIS), "redis");
	assert_string_equal(config_enum_name("tls.min_version",
	    CONFIG_TLS_1_3), "TLSv1.3");
	assert_string_equal(config_enum_name("log.level", LOG_LEVEL_WARN),
	    "warning");
	/* every word of every enum setting, both ways */
	assert_string_equal(config_enum_name("counters.backend",
	    CONFIG_BACKEND_LMDB), "lmdb");
	assert_string_equal(config_enum_name("tls.min_version",
	    CONFIG_TLS_1_2), "TLSv1.2");
	assert_string_equal(config_enum_name("server.bare_newline",
	    CONFIG_BARE_REJECT), "reject");
	assert_string_equal(config_enum_name("server.bare_newline",
	    CONFIG_BARE_NORMALIZE), "normalize");
	assert_string_equal(config_enum_name("policyd.fail_mode",
	    CONFIG_FAIL_TEMPFAIL), "tempfail");
	assert_string_equal(config_enum_name("policyd.fail_mode",
	    CONFIG_FAIL_ACCEPT), "accept");
	assert_string_equal(config_enum_name("log.level", LOG_LEVEL_ERR),
	    "error");
	assert_string_equal(config_enum_name("log.level", LOG_LEVEL_INFO),
	    "info");
	assert_string_equal(config_enum_name("log.level", LOG_LEVEL_DEBUG),
	    "debug");
	assert_string_equal(config_enum_name("log.level", 5), "?");
	assert_string_equal(config_enum_name("counters.backend", 2), "?");
	assert_string_equal(config_enum_name("tls.min_version", -1), "?");
	assert_string_equal(config_enum_name("server.workers", 1), "?");
	config_free(cfg);
	config_free(NULL);
}

/* test_dns - the dns section: defaults (no resolver: resolv.conf's),
 * addresses with and without a port, durations, the anchor file's path
 * resolved against the config's directory. */
static void
test_dns(void **state)
{
	struct config *cfg = load_ok(LISTEN);

	assert_int_equal(cfg->dns.resolver_count, 0);
	assert_int_equal(cfg->dns.timeout_ms, 5000);
	assert_false(cfg->dns.dnssec);
	assert_string_equal(cfg->dns.trust_anchor_file, "");
	config_free(cfg);

	cfg = load_ok(LISTEN "dns:\n  resolvers: [\"127.0.0.1@5353\", \"::1\","
	    " 192.0.2.53]\n  timeout: 1500ms\n  dnssec: true\n"
	    "  trust_anchor_file: /etc/elemta/ta.key\n");
	assert_int_equal(cfg->dns.resolver_count, 3);
	assert_string_equal(cfg->dns.resolver_list[0], "127.0.0.1@5353");
	assert_string_equal(cfg->dns.resolver_list[1], "::1");
	assert_string_equal(cfg->dns.resolvers[2], "192.0.2.53");
	assert_int_equal(cfg->dns.timeout_ms, 1500);
	assert_true(cfg->dns.dnssec);
	assert_string_equal(cfg->dns.trust_anchor_file, "/etc/elemta/ta.key");
	config_free(cfg);

	cfg = load_ok(LISTEN "dns:\n  resolvers: []\n");
	assert_int_equal(cfg->dns.resolver_count, 0);
	config_free(cfg);
}

/*==== Bad configs ====*/

struct bad_case {
	const char *name;
	const char *yaml;
	unsigned line;
	const char *key;       /* NULL: the error names no key */
	const char *word;
};

static const struct bad_case bad_cases[] = {
	{ "unknown key with suggestion",
	  LISTEN "  worker: 3\n", 4, "server.worker",
	  "did you mean 'server.workers'?" },
	{ "unknown key in a listen entry",
	  LISTEN "      mdoe: smtp\n", 4, "server.listen[0].mdoe",
	  "did you mean 'server.listen[0].mode'?" },
	{ "unknown key in a plugin entry",
	  LISTEN "plugins:\n  - name: p\n    enable: true\n", 6,
	  "plugins[0].enable", "did you mean 'plugins[0].enabled'?" },
	{ "unknown section",
	  LISTEN "sever:\n  x: 1\n", 4, "sever", "did you mean 'server'?" },
	{ "key in the wrong section",
	  LISTEN "  fail_mode: accept\n", 4, "server.fail_mode",
	  "'policyd.fail_mode'" },
	{ "scalar expected, list found",
	  LISTEN "  workers: [1, 2]\n", 4, "server.workers",
	  "expected a single value (scalar), found a list" },
	{ "scalar expected, map found",
	  LISTEN "log:\n  level: {a: b}\n", 5, "log.level",
	  "scalar), found a map" },
	{ "list expected",
	  "server:\n  listen: \"127.0.0.1:25\"\n", 2, "server.listen",
	  "expected a list" },
	{ "map expected for a section",
	  LISTEN "tls:\n  - a\n", 5, "tls", "expected a map" },
	{ "map expected for a listen entry",
	  "server:\n  listen:\n    - \"127.0.0.1:25\"\n", 3,
	  "server.listen[0]", "expected a map" },
	{ "map expected for plugin config",
	  LISTEN "plugins:\n  - name: p\n    config: [a]\n", 6,
	  "plugins[0].config", "expected a map" },
	{ "list expected for plugins",
	  LISTEN "plugins:\n  name: p\n", 5, "plugins", "expected a list" },
	{ "bad bool", LISTEN "spool:\n  fsync: maybe\n", 5, "spool.fsync",
	  "not a boolean" },
	{ "bad duration", LISTEN "  command_timeout: 5x\n", 4,
	  "server.command_timeout", "not a duration" },
	{ "duration out of range", LISTEN "  data_timeout: 0\n", 4,
	  "server.data_timeout", "out of range (min 1s, max 1d)" },
	{ "bad size", LISTEN "  max_message_size: 10XB\n", 4,
	  "server.max_message_size", "not a size" },
	{ "size overflow", LISTEN "counters:\n  map_size: 99999999999999999TB\n",
	  5, "counters.map_size", "too large" },
	{ "size out of range", LISTEN "  max_message_size: 3GB\n", 4,
	  "server.max_message_size", "out of range (min 1KB, max 2GB)" },
	{ "int out of range", LISTEN "  workers: 100\n", 4, "server.workers",
	  "out of range (min 1, max 64)" },
	{ "int below minimum", LISTEN "  max_recipients: 5\n", 4,
	  "server.max_recipients", "out of range (min 100" },
	{ "int not decimal", LISTEN "  workers: 0x10\n", 4, "server.workers",
	  "decimal" },
	{ "milliseconds out of range", LISTEN "policyd:\n  timeout_ms: 5\n", 5,
	  "policyd.timeout_ms", "out of range (min 10ms, max 600000ms)" },
	{ "bad enum", LISTEN "log:\n  level: verbose\n", 5, "log.level",
	  "allowed: error, warning, info, debug" },
	{ "bad listen mode", LISTEN "      mode: lmtp\n", 4,
	  "server.listen[0].mode", "allowed: smtp, submission, smtps" },
	{ "bad counters backend", LISTEN "counters:\n  backend: memcached\n", 5,
	  "counters.backend", "allowed: lmdb, redis" },
	{ "mynetworks not a list", LISTEN "  mynetworks: 10.0.0.0/8\n", 4,
	  "server.mynetworks", "write it in brackets" },
	{ "mynetworks bad prefix",
	  LISTEN "  mynetworks: [127.0.0.0/8, 10.0.0.0/33]\n", 4,
	  "server.mynetworks[1]", "prefix length 33" },
	{ "mynetworks not an address", LISTEN "  mynetworks:\n    - lan\n", 5,
	  "server.mynetworks[0]", "not an IP address" },
	{ "min_free not a size", LISTEN "spool:\n  min_free: plenty\n", 5,
	  "spool.min_free", "not a size" },
	{ "routes not a list", LISTEN "delivery:\n  routes: maildir:/x\n", 5,
	  "delivery.routes", "expected a list" },
	{ "route not a map", LISTEN "delivery:\n  routes:\n    - a\n", 6,
	  "delivery.routes[0]", "expected a map" },
	{ "route domains a scalar", LISTEN "delivery:\n  routes:\n"
	  "    - {domains: a.example, next_hop: \"discard:\"}\n", 6,
	  "delivery.routes[0].domains", "write it in brackets" },
	{ "route without domains", LISTEN "delivery:\n  routes:\n"
	  "    - {domains: [], next_hop: \"discard:\"}\n", 6,
	  "delivery.routes[0].domains", "missing" },
	{ "route bad domain", LISTEN "delivery:\n  routes:\n"
	  "    - {domains: [a.example, \"user@b.example\"], next_hop: "
	  "\"discard:\"}\n", 6, "delivery.routes[0].domains[1]",
	  "not a mail address" },
	{ "route without next hop", LISTEN "delivery:\n  routes:\n"
	  "    - {domains: [a.example]}\n", 6,
	  "delivery.routes[0].next_hop", "missing" },
	{ "route unknown key", LISTEN "delivery:\n  routes:\n"
	  "    - {domains: [a.example], nexthop: \"discard:\"}\n", 6,
	  "delivery.routes[0].nexthop", "did you mean" },
	{ "route bad next hop", LISTEN "delivery:\n  routes:\n"
	  "    - {domains: [a.example], next_hop: \"smtp:192.0.2.1\"}\n", 6,
	  "delivery.routes[0].next_hop", "has no MX" },
	{ "route unknown transport", LISTEN "delivery:\n  routes:\n"
	  "    - {domains: [a.example], next_hop: \"uucp:x\"}\n", 6,
	  "delivery.routes[0].next_hop", "not a next hop" },
	{ "route domain twice", LISTEN "delivery:\n  routes:\n"
	  "    - {domains: [a.example], next_hop: \"discard:\"}\n"
	  "    - {domains: [b.example, A.EXAMPLE], next_hop: \"discard:\"}\n",
	  7, "delivery.routes[1]", "already routed by delivery.routes[0]" },
	{ "route after star", LISTEN "delivery:\n  routes:\n"
	  "    - {domains: [\"*\"], next_hop: \"discard:\"}\n"
	  "    - {domains: [a.example], next_hop: \"discard:\"}\n", 7,
	  "delivery.routes[1]", "move \"*\" last" },
	{ "star with other domains", LISTEN "delivery:\n  routes:\n"
	  "    - {domains: [a.example, \"*\"], next_hop: \"discard:\"}\n",
	  6, "delivery.routes[0].domains[1]", "route of its own" },
	{ "relayhost not smtp", LISTEN "delivery:\n  relayhost: "
	  "\"maildir:/x\"\n", 5, "delivery.relayhost", "SMTP next hop" },
	{ "relayhost bad port", LISTEN "delivery:\n  relayhost: "
	  "\"[relay.example]:0\"\n", 5, "delivery.relayhost",
	  "from 1 to 65535" },
	{ "smtp_port out of range", LISTEN "delivery:\n  smtp_port: 0\n", 5,
	  "delivery.smtp_port", "out of range (min 1, max 65535)" },
	{ "backoff max below min", LISTEN "delivery:\n  retry:\n"
	  "    min_backoff: 10m\n    max_backoff: 1m\n", 7,
	  "delivery.retry.max_backoff", "shorter than" },
	{ "delay warning not a duration", LISTEN "delivery:\n  retry:\n"
	  "    delay_warning: never\n", 6, "delivery.retry.delay_warning",
	  "off: none" },
	{ "delivery tls mode", LISTEN "delivery:\n  tls:\n    mode: tlsa\n",
	  6, "delivery.tls.mode", "allowed: may, encrypt, verify, dane" },
	{ "delivery auth without password", LISTEN "delivery:\n  auth:\n"
	  "    username: relay\n", 6, "delivery.auth.password_file",
	  "set both or neither" },
	{ "delivery unknown key", LISTEN "delivery:\n  concurency: 3\n", 5,
	  "delivery.concurency", "did you mean 'delivery.concurrency'" },
	{ "redis address without port",
	  LISTEN "counters:\n  redis:\n    address: \"127.0.0.1\"\n", 6,
	  "counters.redis.address", "missing ':PORT'" },
	{ "redis database out of range",
	  LISTEN "counters:\n  redis:\n    database: 16\n", 6,
	  "counters.redis.database", "out of range (min 0, max 15)" },
	{ "redis unknown key",
	  LISTEN "counters:\n  redis:\n    adress: \"127.0.0.1:6379\"\n", 6,
	  "counters.redis.adress", "did you mean 'counters.redis.address'" },
	{ "redis not a map", LISTEN "counters:\n  redis: 127.0.0.1\n", 5,
	  "counters.redis", "expected a map" },
	{ "redis key prefix with a space",
	  LISTEN "counters:\n  redis:\n    key_prefix: \"a b\"\n", 6,
	  "counters.redis.key_prefix", "spaces" },
	{ "missing listen", "# c\nserver:\n  workers: 2\n", 2, "server.listen",
	  "missing" },
	{ "missing server section", "log:\n  level: info\n", 1,
	  "server.listen", "missing" },
	{ "empty listen list", "server:\n  listen: []\n", 2, "server.listen",
	  "at least one" },
	{ "listen entry without address",
	  "server:\n  listen:\n    - mode: smtp\n", 3,
	  "server.listen[0].address", "missing" },
	{ "listen host name", "server:\n  listen:\n    - address: "
	  "\"localhost:25\"\n", 3, "server.listen[0].address", "IP address" },
	{ "listen without port", "server:\n  listen:\n    - address: "
	  "\"127.0.0.1\"\n", 3, "server.listen[0].address", "missing ':PORT'" },
	{ "listen bare IPv6", "server:\n  listen:\n    - address: \"::1:25\"\n",
	  3, "server.listen[0].address", "brackets" },
	{ "listen port 0", "server:\n  listen:\n    - address: "
	  "\"127.0.0.1:0\"\n", 3, "server.listen[0].address", "port '0'" },
	{ "listen port too big", "server:\n  listen:\n    - address: "
	  "\"[::]:70000\"\n", 3, "server.listen[0].address", "port '70000'" },
	{ "duplicate listen address",
	  LISTEN "    - address: \"127.0.0.1:2525\"\n", 4,
	  "server.listen[1].address", "duplicate listen address" },
	{ "local on a TCP address", LISTEN "      mode: local\n", 3,
	  "server.listen[0].address", "Unix socket" },
	{ "unix address on smtp",
	  LISTEN "    - address: \"unix:/run/x.sock\"\n", 4,
	  "server.listen[1].address", "mode local" },
	{ "local socket path too long",
	  LISTEN "    - {address: \"unix:/" LONG_PATH "\", mode: local}\n", 4,
	  "server.listen[1].address", "limited to 107" },
	{ "local socket_mode not octal",
	  LISTEN "    - {address: \"unix:/run/x.sock\", mode: local, "
	  "socket_mode: \"0999\"}\n", 4, "server.listen[1].socket_mode",
	  "octal" },
	{ "socket_mode on smtp", LISTEN "      socket_mode: \"0660\"\n", 4,
	  "server.listen[0].socket_mode", "only a mode local" },
	{ "local socket_group not a name",
	  LISTEN "    - {address: \"unix:/run/x.sock\", mode: local, "
	  "socket_group: \"a b\"}\n", 4, "server.listen[1].socket_group",
	  "not a user name" },
	{ "duplicate local socket",
	  LISTEN "    - {address: \"unix:/run/x.sock\", mode: local}\n"
	  "    - {address: \"unix:/run/x.sock\", mode: local}\n", 5,
	  "server.listen[2].address", "duplicate listen address unix:" },
	{ "smtps without tls", LISTEN "      mode: smtps\n", 4,
	  "server.listen[0].mode", "needs tls.certificate" },
	{ "bad metrics listen", LISTEN "metrics:\n  listen: \"127.0.0.1\"\n", 5,
	  "metrics.listen", "missing ':PORT'" },
	{ "bad postfix listen", LISTEN "policyd:\n  postfix_listen: nowhere\n",
	  5, "policyd.postfix_listen", "bad address" },
	{ "duplicate key", LISTEN "  workers: 2\n  workers: 3\n", 5,
	  "server.workers", "duplicate key (first defined at line 4)" },
	{ "duplicate section", LISTEN "log:\n  level: info\nserver:\n", 6,
	  "server", "duplicate key" },
	{ "duplicate plugin",
	  LISTEN "plugins:\n  - name: a\n  - name: b\n  - name: a\n", 7,
	  "plugins[2].name", "duplicate plugin name 'a'" },
	{ "plugin without name",
	  LISTEN "plugins:\n  - name: a\n  - enabled: true\n", 6,
	  "plugins[1].name", "missing" },
	{ "bad plugin name", LISTEN "plugins:\n  - name: \"My Plugin\"\n", 5,
	  "plugins[0].name", "invalid plugin name" },
	{ "bad plugin enabled", LISTEN "plugins:\n  - name: a\n    enabled: 2\n",
	  6, "plugins[0].enabled", "not a boolean" },
	{ "tls certificate without key",
	  LISTEN "tls:\n  certificate: c.pem\n", 5, "tls.key",
	  "set both or neither" },
	{ "tls key without certificate",
	  LISTEN "tls:\n  min_version: TLSv1.3\n  key: k.pem\n", 6,
	  "tls.certificate", "set both or neither" },
	{ "empty value", LISTEN "  banner:\n", 4, "server.banner",
	  "value is required" },
	{ "null value", LISTEN "spool:\n  path: ~\n", 5, "spool.path",
	  "value is required" },
	{ "control character", LISTEN "  banner: \"a\\r\\nb\"\n", 4,
	  "server.banner", "control character" },
	{ "bad hostname", LISTEN "  hostname: \"mx example\"\n", 4,
	  "server.hostname", "not a host name" },
	{ "yaml syntax error", LISTEN "  workers: [1, 2\nlog:\n", 5, NULL,
	  "YAML syntax error" },
	{ "tab indentation", "server:\n\tworkers: 2\n", 2, NULL, "tab" },
	{ "yaml alias", LISTEN "  user: &u bob\npolicyd:\n  user: *u\n", 6,
	  NULL, "aliases" },
	{ "second document", LISTEN "---\nlog: {}\n", 5, NULL,
	  "second YAML document" },
	{ "top-level list", "- server\n- log\n", 1, NULL,
	  "top level must be a map" },
	{ "top-level scalar", "# x\nhello\n", 2, NULL,
	  "top level must be a map" },
	{ "empty file", "", 1, NULL, "empty" },
	{ "comments only", "# nothing\n\n# here\n", 1, NULL, "empty" },
	{ "invalid UTF-8", LISTEN "  banner: \"\xff\"\n", 4, NULL, "UTF-8" },
	{ "resolver not an address", LISTEN "dns:\n  resolvers: [ns.example]\n",
	  5, "dns.resolvers[0]", "not a numeric IP address" },
	{ "resolver bad port", LISTEN "dns:\n  resolvers: [\"127.0.0.1@0\"]\n",
	  5, "dns.resolvers[0]", "port" },
	{ "resolvers not a list", LISTEN "dns:\n  resolvers: 127.0.0.1\n", 5,
	  "dns.resolvers", "in brackets" },
	{ "dns timeout too short", LISTEN "dns:\n  timeout: 10ms\n", 5,
	  "dns.timeout", "" },
	{ "dnssec without anchors", LISTEN "dns:\n  dnssec: true\n", 5,
	  "dns.trust_anchor_file", "trust anchors" },
	{ "dane without dnssec", LISTEN "delivery:\n  tls:\n    mode: dane\n",
	  6, "dns.dnssec", "DNSSEC-validated" },
};

#define BAD_COUNT (sizeof(bad_cases) / sizeof(bad_cases[0]))

/* test_bad_config - one bad_cases[] entry: its line, key and problem */
static void
test_bad_config(void **state)
{
	const struct bad_case *c = *state;

	expect_error(c->yaml, c->line, c->key, c->word);
}

/* test_unreadable_file - a missing file or a directory: errno text, no line */
static void
test_unreadable_file(void **state)
{
	struct config_errors errs;

	assert_null(config_load("/nonexistent/elemta.yaml", &errs));
	assert_int_equal(errs.count, 1);
	assert_string_equal(errs.text[0], "/nonexistent/elemta.yaml: cannot "
	    "read the configuration: No such file or directory");
	assert_null(config_load("/tmp", &errs));
	assert_int_equal(errs.count, 1);
	assert_non_null(strstr(errs.text[0], "directory"));
}

/* test_all_errors_collected - every problem in one pass, sorted by line */
static void
test_all_errors_collected(void **state)
{
	struct tmp_file t;
	struct config_errors errs;

	tmp_write(&t, "server:\n  workers: 0\n  listen: []\n"
	    "  bogus: 1\nlog:\n  level: loud\nspool:\n  fsync: 3\n");
	assert_null(config_load(t.path, &errs));
	unlink(t.path);
	assert_int_equal(errs.count, 5);
	assert_true(error_matches(errs.text[0], t.path, 2, "server.workers",
	    "out of range"));
	assert_true(error_matches(errs.text[1], t.path, 3, "server.listen",
	    "missing"));
	assert_true(error_matches(errs.text[2], t.path, 4, "server.bogus",
	    "unknown key"));
	assert_true(error_matches(errs.text[3], t.path, 6, "log.level",
	    "allowed"));
	assert_true(error_matches(errs.text[4], t.path, 8, "spool.fsync",
	    "boolean"));
}

/* YAML's plain null spellings, the one list (config.h). */
static void
test_scalar_is_null(void **state)
{
	static const char *const yes[] = { "", "~", "null", "Null", "NULL" };
	static const char *const no[] = { "nul", "nULL", "~~", "none", "0",
	    " " };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_true(config_scalar_is_null(yes[i]));
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_false(config_scalar_is_null(no[i]));
}

/* test_error_cap - more than CONFIG_ERRORS_MAX problems: capped, and said so */
static void
test_error_cap(void **state)
{
	char yaml[8192] = LISTEN;
	struct tmp_file t;
	struct config_errors errs;

	for (int i = 0; i < CONFIG_ERRORS_MAX + 20; i++) {
		char line[32];

		snprintf(line, sizeof(line), "  bogus%d: 1\n", i);
		strcat(yaml, line);
	}
	tmp_write(&t, yaml);
	assert_null(config_load(t.path, &errs));
	unlink(t.path);
	assert_int_equal(errs.count, CONFIG_ERRORS_MAX);
	assert_non_null(strstr(errs.text[CONFIG_ERRORS_MAX - 1],
	    "21 more errors not shown"));
}

/* test_list_limits - CONFIG_LISTEN_MAX and CONFIG_PLUGINS_MAX are enforced */
static void
test_list_limits(void **state)
{
	char yaml[16384] = "server:\n  listen:\n";

	for (int i = 0; i < CONFIG_LISTEN_MAX + 1; i++) {
		char line[64];

		snprintf(line, sizeof(line), "    - address: \"127.0.0.1:%d\"\n",
		    1000 + i);
		strcat(yaml, line);
	}
	expect_error(yaml, 3 + CONFIG_LISTEN_MAX, "server.listen",
	    "too many listen addresses");

	strcpy(yaml, LISTEN "plugins:\n");
	for (int i = 0; i < CONFIG_PLUGINS_MAX + 1; i++) {
		char line[64];

		snprintf(line, sizeof(line), "  - name: p%d\n", i);
		strcat(yaml, line);
	}
	expect_error(yaml, 5 + CONFIG_PLUGINS_MAX, "plugins", "too many plugins");
}

/* main - the fixed tests, then one named test per bad config */
int
main(void)
{
	static struct CMUnitTest tests[32 + BAD_COUNT] = {
		cmocka_unit_test(test_repo_config),
		cmocka_unit_test(test_local_listener),
		cmocka_unit_test(test_full_config),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_redis_settings),
		cmocka_unit_test(test_socket_follows_runtime_dir),
		cmocka_unit_test(test_delivery_defaults),
		cmocka_unit_test(test_delivery_settings),
		cmocka_unit_test(test_delivery_dump),
		cmocka_unit_test(test_dump),
		cmocka_unit_test(test_relative_paths),
		cmocka_unit_test(test_parse_bool),
		cmocka_unit_test(test_parse_int),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_nearest),
		cmocka_unit_test(test_scalar_is_null),
		cmocka_unit_test(test_nodes),
		cmocka_unit_test(test_unreadable_file),
		cmocka_unit_test(test_all_errors_collected),
		cmocka_unit_test(test_error_cap),
		cmocka_unit_test(test_list_limits),
		cmocka_unit_test(test_dns),
	};
	size_t n = 0;

	while (tests[n].name != NULL)
		n++;
	/* One named test per bad config, so a failure names the case. */
	for (size_t i = 0; i < BAD_COUNT; i++) {
		tests[n + i] = (struct CMUnitTest)cmocka_unit_test_prestate(
		    test_bad_config, (void *)&bad_cases[i]);
		tests[n + i].name = bad_cases[i].name;
	}
	return _cmocka_run_group_tests("config", tests, n + BAD_COUNT, NULL,
	    NULL);
}
