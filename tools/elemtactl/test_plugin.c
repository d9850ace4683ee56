/*
 * test_plugin.c - `elemtactl test-plugin PLUGIN [phase options]`: one
 * plugin in isolation, the way a policyd worker would run it.
 *
 * Called by main.c.  Run by a plugin author, as any user: the plugin is
 * loaded into this process through policyd's own plugin host
 * (policyd/plugin_host.h: the same ownership, permission and ABI checks,
 * the same init and the same chain walker), with a scratch counter table
 * in a fresh mkdtemp directory that is unlinked as soon as it is open, so
 * nothing is left behind however the run ends and every run starts from
 * zero.  --config FILE is a YAML file holding what would go under the
 * plugin entry's `config:` key (docs/plugins.md); its relative paths are
 * resolved against its own directory, as elemta.yaml's are.  DNS (the
 * client's names at CONNECT, the lookups of rules such as dnsbl or
 * require_client_name, for the --ip address) goes to the resolvers of
 * elemtactl's config file (-c, dns.resolvers) when it can be read, else
 * to the system's (/etc/resolv.conf); the run waits for the answers.
 *
 * The SMTP phases run in order, each a policy request built by hand with
 * the attributes elemta-smtpd sends (docs/internals.md): CONNECT, EHLO,
 * AUTH (with --auth-user), MAIL (with --from), one RCPT per --rcpt, then
 * DATA and END-OF-MESSAGE (with --data: the file is opened read-only and
 * passed as the message descriptor, size = its size).  One line per
 * phase:
 *
 *     CONNECT    continue
 *     RCPT <x@blocked.com> reject 550 5.7.1 Recipient domain blocked
 *
 * A refused CONNECT, EHLO, MAIL, DATA or END-OF-MESSAGE ends the run (as
 * the SMTP client would be stopped there); a refused RCPT goes on with the
 * next recipient, and when none was accepted the run ends before DATA; a
 * refused AUTH leaves the session unauthenticated.  Exit status: 0 every
 * phase continued (discard and quarantine accept), 1 a phase was refused,
 * 2 a usage error or a plugin that cannot be loaded (one line).  With
 * --auth-fail the host answers the AUTH 535 5.7.8 itself (after the
 * on_auth hooks saw the failure): that counts as a refusal only when a
 * plugin decided it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <yaml.h>

#include "addr.h"
#include "counter.h"
#include "elemtactl.h"
#include "log.h"
#include "wire.h"
#include "../../policyd/plugin_host.h"

#define TP_MAP_SIZE (8u * 1024 * 1024)   /* scratch table: plenty      */
#define TP_YAML_DEPTH_MAX 64
#define TP_DEFAULT_IP "127.0.0.1"
#define TP_DEFAULT_HELO "client.example"
#define TP_SESSION "test-plugin"

/* The options of one run. */
struct tp_opts {
	const char *plugin;
	const char *config_file;
	const char *ip;
	const char *helo;
	const char *auth_user;
	int auth_ok;                      /* 1 --auth-ok, 0 --auth-fail, -1 */
	const char *from;                 /* NULL: no MAIL                   */
	const char *rcpt[CTL_ARGS_REST_MAX];
	size_t rcpt_count;
	const char *data;
	bool verbose;
	bool help;
};

/* The session facts carried from phase to phase. */
struct tp_session {
	struct plugin_host *host;
	const struct tp_opts *o;
	bool authenticated;
	const char *accepted[CTL_ARGS_REST_MAX];
	size_t accepted_count;
	uint64_t size;
	int message_fd;
	bool refused;                     /* any phase refused              */
};

/* ==== Options ==== */

/* tp_usage_error - one line and the pointer to --help; returns 2. */
static int tp_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static int tp_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("elemtactl test-plugin: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nrun 'elemtactl test-plugin --help' for usage\n", stderr);
	return 2;
}

/* tp_value - the value of option name at rest[*i] ("--x V" or
 * "--x=V"); NULL when missing. */
static const char *tp_value(const struct ctl_args *a, size_t *i,
    const char *name)
{
	const char *w = a->rest[*i];
	size_t n = strlen(name);

	if (strncmp(w, name, n) == 0 && w[n] == '=')
		return w + n + 1;
	if (*i + 1 >= a->rest_count)
		return NULL;
	return a->rest[++*i];
}

/* tp_is_option - does word w name option name (alone or "name=")? */
static bool tp_is_option(const char *w, const char *name)
{
	size_t n = strlen(name);

	return strncmp(w, name, n) == 0 && (w[n] == '\0' || w[n] == '=');
}

/* tp_parse - the command's own words into *o; 0, or 2 (reported). */
static int tp_parse(const struct ctl_args *a, struct tp_opts *o)
{
	static const char *const valued[] = {
		"--config", "--ip", "--helo", "--auth-user", "--from", "--rcpt",
		"--data",
	};
	const char **dest[] = {
		&o->config_file, &o->ip, &o->helo, &o->auth_user, &o->from, NULL,
		&o->data,
	};

	memset(o, 0, sizeof(*o));
	o->auth_ok = -1;
	for (size_t i = 0; i < a->rest_count; i++) {
		const char *w = a->rest[i];
		size_t k;

		if (strcmp(w, "-h") == 0 || strcmp(w, "--help") == 0) {
			o->help = true;
			return 0;
		}
		if (strcmp(w, "-v") == 0 || strcmp(w, "--verbose") == 0) {
			o->verbose = true;
			continue;
		}
		if (strcmp(w, "--auth-ok") == 0 || strcmp(w, "--auth-fail") == 0) {
			int v = w[7] == 'o';

			if (o->auth_ok != -1 && o->auth_ok != v)
				return tp_usage_error("%s: give --auth-ok or "
				    "--auth-fail, not both", w);
			o->auth_ok = v;
			continue;
		}
		for (k = 0; k < sizeof(valued) / sizeof(valued[0]); k++)
			if (tp_is_option(w, valued[k]))
				break;
		if (k < sizeof(valued) / sizeof(valued[0])) {
			const char *v = tp_value(a, &i, valued[k]);

			if (v == NULL)
				return tp_usage_error("option %s needs a value",
				    valued[k]);
			if (dest[k] == NULL) {
				o->rcpt[o->rcpt_count++] = v;   /* bounded by rest */
			} else {
				if (*dest[k] != NULL)
					return tp_usage_error("option %s given twice",
					    valued[k]);
				*dest[k] = v;
			}
			continue;
		}
		if (w[0] == '-' && w[1] != '\0')
			return tp_usage_error("unknown option '%s'", w);
		if (o->plugin != NULL)
			return tp_usage_error("unexpected argument '%s' (one plugin "
			    "at a time)", w);
		o->plugin = w;
	}
	if (o->plugin == NULL || o->plugin[0] == '\0')
		return tp_usage_error("%s", "which plugin? give a .so path or a "
		    "built-in name");
	if (o->auth_ok != -1 && o->auth_user == NULL)
		return tp_usage_error("%s", "--auth-ok/--auth-fail need "
		    "--auth-user");
	if (o->auth_user != NULL && o->auth_ok == -1)
		o->auth_ok = 1;
	if (o->auth_user != NULL && o->auth_user[0] == '\0')
		return tp_usage_error("%s", "--auth-user needs a user name");
	if (o->rcpt_count > 0 && o->from == NULL)
		return tp_usage_error("%s", "--rcpt needs --from (--from '' is "
		    "the null sender)");
	if (o->data != NULL && o->rcpt_count == 0)
		return tp_usage_error("%s", "--data needs --from and at least one "
		    "--rcpt");
	if (o->ip == NULL)
		o->ip = TP_DEFAULT_IP;
	else {
		struct addr_ip ip;

		if (addr_ip_parse(o->ip, &ip) == -1)
			return tp_usage_error("--ip '%s': not an IPv4 or IPv6 "
			    "address", o->ip);
	}
	if (o->helo == NULL)
		o->helo = TP_DEFAULT_HELO;
	return 0;
}

/* ==== The plugin's config file ==== */

/* tp_yaml_error - "file:line:column: problem" into err; returns NULL. */
static struct config_node *tp_yaml_error(struct error *err, const char *file,
    const yaml_mark_t *m, const char *what)
{
	error_set(err, "%s:%zu:%zu: %s", file, m->line + 1, m->column + 1, what);
	return NULL;
}

/* tp_node_new - a node of type at mark m. */
static struct config_node *tp_node_new(enum config_node_type type,
    const char *file, const yaml_mark_t *m)
{
	struct config_node *n = xcalloc(1, sizeof(*n));

	n->type = type;
	n->file = file;
	n->line = (unsigned)m->line + 1;
	n->column = (unsigned)m->column + 1;
	snprintf(n->where, sizeof(n->where), "%s:%u:%u", file, n->line,
	    n->column);
	return n;
}

/* tp_scalar_text - a scalar's text ("" for YAML's plain nulls), or NULL
 * when it holds a NUL byte. */
static char *tp_scalar_text(const yaml_node_t *yn)
{
	const char *v = (const char *)yn->data.scalar.value;
	size_t len = yn->data.scalar.length;

	if (memchr(v, '\0', len) != NULL)
		return NULL;
	if (yn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
	    && config_scalar_is_null(v))
		return xstrdup("");
	return xstrndup(v, len);
}

/* tp_convert - one libyaml node (and its children) to a config_node;
 * NULL with err on the first problem. */
static struct config_node *tp_convert(yaml_document_t *doc, yaml_node_t *yn,
    const char *file, unsigned depth, struct error *err)
{
	struct config_node *n;

	if (depth > TP_YAML_DEPTH_MAX)
		return tp_yaml_error(err, file, &yn->start_mark,
		    "nested too deeply");
	switch (yn->type) {
	case YAML_SCALAR_NODE: {
		char *text = tp_scalar_text(yn);

		if (text == NULL)
			return tp_yaml_error(err, file, &yn->start_mark,
			    "the value contains a NUL character");
		n = tp_node_new(CONFIG_NODE_SCALAR, file, &yn->start_mark);
		n->scalar = text;
		return n;
	}
	case YAML_SEQUENCE_NODE: {
		size_t cap = (size_t)(yn->data.sequence.items.top
		    - yn->data.sequence.items.start);

		n = tp_node_new(CONFIG_NODE_LIST, file, &yn->start_mark);
		n->items = xcalloc(cap ? cap : 1, sizeof(*n->items));
		for (size_t i = 0; i < cap; i++) {
			yaml_node_t *it = yaml_document_get_node(doc,
			    yn->data.sequence.items.start[i]);

			if (it == NULL)
				continue;
			n->items[n->count] = tp_convert(doc, it, file, depth + 1, err);
			if (n->items[n->count] == NULL) {
				config_node_free(n);
				return NULL;
			}
			n->count++;
		}
		return n;
	}
	case YAML_MAPPING_NODE: {
		size_t cap = (size_t)(yn->data.mapping.pairs.top
		    - yn->data.mapping.pairs.start);

		n = tp_node_new(CONFIG_NODE_MAP, file, &yn->start_mark);
		n->keys = xcalloc(cap ? cap : 1, sizeof(*n->keys));
		n->items = xcalloc(cap ? cap : 1, sizeof(*n->items));
		for (size_t i = 0; i < cap; i++) {
			yaml_node_pair_t *pr = &yn->data.mapping.pairs.start[i];
			yaml_node_t *kn = yaml_document_get_node(doc, pr->key);
			yaml_node_t *vn = yaml_document_get_node(doc, pr->value);
			char *key;

			if (kn == NULL || vn == NULL)
				continue;
			if (kn->type != YAML_SCALAR_NODE
			    || (key = tp_scalar_text(kn)) == NULL) {
				config_node_free(n);
				return tp_yaml_error(err, file, &kn->start_mark,
				    "map keys must be plain words");
			}
			if (config_node_get(n, key) != NULL) {
				char what[300];

				snprintf(what, sizeof(what), "key '%.200s': duplicate "
				    "key; remove one of them", key);
				free(key);
				config_node_free(n);
				return tp_yaml_error(err, file, &kn->start_mark, what);
			}
			n->items[n->count] = tp_convert(doc, vn, file, depth + 1,
			    err);
			if (n->items[n->count] == NULL) {
				free(key);
				config_node_free(n);
				return NULL;
			}
			n->keys[n->count++] = key;
		}
		return n;
	}
	case YAML_NO_NODE:
		break;
	}
	n = tp_node_new(CONFIG_NODE_SCALAR, file, &yn->start_mark);
	n->scalar = xstrdup("");
	return n;
}

/* tp_load_config - file (the plugin's config: map) into *out (NULL for
 * an empty file); 0 or -1 with err naming file:line:column. */
static int tp_load_config(const char *file, struct config_node **out,
    struct error *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	FILE *f;
	int rc = 0;

	*out = NULL;
	f = fopen(file, "rb");
	if (f == NULL)
		return error_set(err, "--config %s: %s", file, strerror(errno));
	if (!yaml_parser_initialize(&parser)) {
		fclose(f);
		return error_set(err, "%s: out of memory", file);
	}
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = error_set(err, "%s:%zu:%zu: %s", file,
		    parser.problem_mark.line + 1, parser.problem_mark.column + 1,
		    parser.problem ? parser.problem : "invalid YAML");
		yaml_parser_delete(&parser);
		fclose(f);
		return rc;
	}
	root = yaml_document_get_root_node(&doc);
	if (root != NULL) {
		*out = tp_convert(&doc, root, file, 0, err);
		if (*out == NULL) {
			rc = -1;
		} else if ((*out)->type == CONFIG_NODE_SCALAR
		    && (*out)->scalar[0] == '\0') {
			config_node_free(*out);      /* "~" or empty: no config */
			*out = NULL;
		} else if ((*out)->type != CONFIG_NODE_MAP) {
			rc = error_set(err, "%s: expected a map of the plugin's "
			    "settings (what goes under its config: key)",
			    (*out)->where);
			config_node_free(*out);
			*out = NULL;
		}
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	fclose(f);
	return rc;
}

/* ==== Running the phases ==== */

/* tp_attr - append one attribute (never fails for our bounded values;
 * an over-long one is reported by the parser as missing). */
static void tp_attr(struct strbuf *sb, const char *name, const char *value)
{
	wire_encode_attr(sb, name, value);
}

/* tp_decide - build the request of phase (with recipient for RCPT) as
 * smtpd would, run the chain and print the phase's line. */
static struct plugin_decision tp_decide(struct tp_session *ss,
    enum elemta_phase phase, const char *label, const char *recipient)
{
	const struct tp_opts *o = ss->o;
	struct strbuf sb = STRBUF_INIT(WIRE_REQUEST_MAX);
	struct plugin_request rq;
	struct plugin_decision d;
	struct wire_parser p;
	struct error err;
	char num[32];
	size_t used;

	tp_attr(&sb, WIRE_ATTR_REQUEST, WIRE_REQUEST_POLICY);
	tp_attr(&sb, WIRE_ATTR_PROTOCOL_STATE, wire_phase_name(phase));
	tp_attr(&sb, WIRE_ATTR_PROTOCOL_NAME, "ESMTP");
	tp_attr(&sb, WIRE_ATTR_CLIENT_ADDRESS, o->ip);
	tp_attr(&sb, WIRE_ATTR_CLIENT_PORT, "50000");
	tp_attr(&sb, WIRE_ATTR_CLIENT_NAME, "unknown");
	tp_attr(&sb, WIRE_ATTR_REVERSE_CLIENT_NAME, "unknown");
	tp_attr(&sb, WIRE_ATTR_SERVER_ADDRESS, "127.0.0.1");
	tp_attr(&sb, WIRE_ATTR_SERVER_PORT, "25");
	tp_attr(&sb, WIRE_ATTR_INSTANCE, "test-plugin.1");
	tp_attr(&sb, WIRE_ATTR_SESSION, TP_SESSION);
	tp_attr(&sb, WIRE_ATTR_LISTEN_MODE, "smtp");
	if (phase != ELEMTA_PHASE_CONNECT)
		tp_attr(&sb, WIRE_ATTR_HELO_NAME, o->helo);
	if (phase == ELEMTA_PHASE_AUTH) {
		tp_attr(&sb, WIRE_ATTR_SASL_METHOD, "PLAIN");
		tp_attr(&sb, WIRE_ATTR_SASL_USERNAME, o->auth_user);
	} else if (ss->authenticated) {
		tp_attr(&sb, WIRE_ATTR_SASL_METHOD, "PLAIN");
		tp_attr(&sb, WIRE_ATTR_SASL_USERNAME, o->auth_user);
	}
	if (phase >= ELEMTA_PHASE_MAIL) {
		tp_attr(&sb, WIRE_ATTR_SENDER, o->from);
		tp_attr(&sb, WIRE_ATTR_QUEUE_ID, "0000000000000001");
		snprintf(num, sizeof(num), "%zu", ss->accepted_count);
		tp_attr(&sb, WIRE_ATTR_RECIPIENT_COUNT, num);
	}
	if (phase == ELEMTA_PHASE_MAIL || phase == ELEMTA_PHASE_EOM) {
		snprintf(num, sizeof(num), "%llu", phase == ELEMTA_PHASE_EOM
		    ? (unsigned long long)ss->size : 0ULL);
		tp_attr(&sb, WIRE_ATTR_SIZE, num);
	}
	if (phase == ELEMTA_PHASE_RCPT)
		tp_attr(&sb, WIRE_ATTR_RECIPIENT, recipient);
	if (phase == ELEMTA_PHASE_DATA || phase == ELEMTA_PHASE_EOM)
		for (size_t i = 0; i < ss->accepted_count; i++)
			tp_attr(&sb, WIRE_ATTR_ACCEPTED_RECIPIENT,
			    ss->accepted[i]);
	if (phase == ELEMTA_PHASE_EOM)
		tp_attr(&sb, WIRE_ATTR_MESSAGE_FD, "1");
	wire_encode_end(&sb);

	/* Through the real parser: the plugin sees exactly what policyd
	 * would hand it for these bytes. */
	wire_parser_init(&p);
	memset(&rq, 0, sizeof(rq));
	rq.listener = PLUGIN_LISTENER_ELEMTA;
	rq.message_fd = phase == ELEMTA_PHASE_EOM ? ss->message_fd : -1;
	rq.auth_succeeded = phase == ELEMTA_PHASE_AUTH ? o->auth_ok : -1;
	rq.req = &p.req;
	if (wire_parser_feed(&p, strbuf_cstr(&sb), sb.len, &used, &err) != 1) {
		/* Cannot happen with our own bounded attributes. */
		memset(&d, 0, sizeof(d));
		d.phase = phase;
		d.result.action = ELEMTA_TEMPFAIL;
		wire_result_defaults(&d.result);
		snprintf(d.result.message, sizeof(d.result.message),
		    "test-plugin could not build the request: %.200s", err.text);
	} else {
		plugin_host_decide(ss->host, &rq, &d);
	}
	wire_parser_free(&p);
	strbuf_free(&sb);

	static const char *const words[] = {
		"continue", "reject", "tempfail", "discard", "quarantine",
	};
	unsigned a = (unsigned)d.result.action;

	printf("%-10s %s", label, a < 5 ? words[a] : "unknown");
	if (d.result.action != ELEMTA_CONTINUE)
		printf(" %d %s %s", d.result.smtp_code, d.result.enhanced,
		    d.result.message);
	/* --auth-fail: the host itself answers 535 for the wrong password;
	 * that is the premise of the run, not a refusal by the plugin. */
	if (phase == ELEMTA_PHASE_AUTH && o->auth_ok == 0 && d.plugin[0] == '\0') {
		printf(" (wrong password: the host's answer, no plugin refused)\n");
		return d;
	}
	printf("\n");
	if (!d.accepted)
		ss->refused = true;
	return d;
}

/* tp_run - every phase in order; stops where an SMTP client would. */
static void tp_run(struct tp_session *ss)
{
	const struct tp_opts *o = ss->o;
	struct plugin_decision d;
	char label[1100];

	if (!tp_decide(ss, ELEMTA_PHASE_CONNECT,
	    wire_phase_name(ELEMTA_PHASE_CONNECT), NULL).accepted)
		return;
	snprintf(label, sizeof(label), "EHLO %s", o->helo);
	if (!tp_decide(ss, ELEMTA_PHASE_EHLO, label, NULL).accepted)
		return;
	if (o->auth_user != NULL) {
		snprintf(label, sizeof(label), "AUTH %s", o->auth_user);
		d = tp_decide(ss, ELEMTA_PHASE_AUTH, label, NULL);
		ss->authenticated = d.accepted && o->auth_ok == 1;
	}
	if (o->from == NULL)
		return;
	snprintf(label, sizeof(label), "MAIL <%s>", o->from);
	if (!tp_decide(ss, ELEMTA_PHASE_MAIL, label, NULL).accepted)
		return;
	for (size_t i = 0; i < o->rcpt_count; i++) {
		snprintf(label, sizeof(label), "RCPT <%s>", o->rcpt[i]);
		if (tp_decide(ss, ELEMTA_PHASE_RCPT, label, o->rcpt[i]).accepted)
			ss->accepted[ss->accepted_count++] = o->rcpt[i];
	}
	if (o->data == NULL || ss->accepted_count == 0)
		return;
	if (!tp_decide(ss, ELEMTA_PHASE_DATA,
	    wire_phase_name(ELEMTA_PHASE_DATA), NULL).accepted)
		return;
	tp_decide(ss, ELEMTA_PHASE_EOM, wire_phase_name(ELEMTA_PHASE_EOM),
	    NULL);
}

/* ==== Set-up ==== */

/* tp_absolute - path as an absolute path (not resolving links, so error
 * messages show what the user typed, under the current directory). */
static int tp_absolute(const char *path, char *out, size_t size)
{
	char cwd[PATH_MAX];
	int n;

	if (path[0] == '/')
		n = snprintf(out, size, "%s", path);
	else if (getcwd(cwd, sizeof(cwd)) == NULL)
		return -1;
	else
		n = snprintf(out, size, "%s/%s", cwd, path);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* tp_entry_name - the configured name for a plugin file: its base name
 * without ".so", folded to the loader's alphabet. */
static void tp_entry_name(const char *path, char *out, size_t size)
{
	const char *base = strrchr(path, '/');
	size_t n;

	base = base ? base + 1 : path;
	n = str_copy(out, base, size);
	if (n >= size)
		n = size - 1;
	if (n > 3 && strcmp(out + n - 3, ".so") == 0)
		out[n - 3] = '\0';
	for (char *c = out; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
		    || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'
		    || *c == '.'))
			*c = '_';
	if (out[0] == '\0')
		str_copy(out, "plugin", size);
}

/* tp_scratch_store - a fresh counter table whose directory is gone from
 * the file system as soon as it is open. */
static int tp_scratch_store(struct counter_store **cs, struct error *err)
{
	const char *tmp = getenv("TMPDIR");
	char dir[PATH_MAX];
	long removed;

	snprintf(dir, sizeof(dir), "%s/elemtactl-test-plugin.XXXXXX",
	    tmp && tmp[0] == '/' ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		return error_set(err, "cannot create a scratch counter table "
		    "in %s: %s", tmp && tmp[0] == '/' ? tmp : "/tmp",
		    strerror(errno));
	/* FAST: a scratch table needs no flushes. */
	if (counter_store_open(dir, TP_MAP_SIZE, false, COUNTER_SYNC_FAST, cs,
	    err) == -1) {
		ctl_dir_clean(dir, &removed, NULL);
		rmdir(dir);
		return error_prefix(err, "scratch counter table");
	}
	/* LMDB keeps its descriptors: the files may go now. */
	ctl_dir_clean(dir, &removed, NULL);
	rmdir(dir);
	return 0;
}

/* The whole DNS time of one phase of a run (it may wait several times). */
#define TP_DNS_BUDGET_MS 15000

/* tp_resolver - a resolver for the run on base: the dns section of
 * elemtactl's config file when it loads, else the system's resolvers
 * (fallback, a config with no dns section).  NULL (logged) if none. */
static struct dns_resolver *
tp_resolver(const struct ctl_args *args, struct plugin_host *h,
    struct event_base *base, const struct config *fallback)
{
	struct config_errors errs;
	struct config *cfg = NULL;
	struct dns_resolver *r;

	if (args->config_file != NULL && access(args->config_file, R_OK) == 0)
		cfg = config_load(args->config_file, &errs);
	r = plugin_host_resolver_new(h, base, cfg != NULL ? cfg : fallback,
	    TP_DNS_BUDGET_MS);
	config_free(cfg);       /* the resolver copied what it needs */
	return r;
}

/* ctl_test_plugin - see elemtactl.h. */
int ctl_test_plugin(const struct ctl_args *args)
{
	static struct config cfg;          /* ~300 KiB: not on the stack */
	static char cfg_file[PATH_MAX];
	struct tp_session ss;
	struct tp_opts o;
	struct counter_store *cs = NULL;
	struct config_node *node = NULL;
	struct config_plugin *e;
	struct event_base *base = NULL;
	struct dns_resolver *resolver = NULL;
	struct error err;
	struct stat st;
	int rc;

	if ((rc = tp_parse(args, &o)) != 0)
		return rc;
	if (o.help) {
		fputs(ctl_command_usage(CTL_CMD_TEST_PLUGIN), stdout);
		return 0;
	}
	log_init("elemtactl", true, o.verbose ? LOG_LEVEL_DEBUG
	    : LOG_LEVEL_WARN);

	memset(&cfg, 0, sizeof(cfg));
	memset(&ss, 0, sizeof(ss));
	ss.o = &o;
	ss.message_fd = -1;
	if (o.config_file != NULL) {
		char *slash;

		if (tp_absolute(o.config_file, cfg_file, sizeof(cfg_file)) == -1)
			return tp_usage_error("--config %s: path too long",
			    o.config_file);
		if (tp_load_config(cfg_file, &node, &err) == -1) {
			fprintf(stderr, "elemtactl test-plugin: %s\n", err.text);
			return 2;
		}
		str_copy(cfg.file, cfg_file, sizeof(cfg.file));
		str_copy(cfg.dir, cfg_file, sizeof(cfg.dir));
		slash = strrchr(cfg.dir, '/');
		if (slash != NULL)
			slash[slash == cfg.dir ? 1 : 0] = '\0';
	} else if (getcwd(cfg.dir, sizeof(cfg.dir)) == NULL) {
		str_copy(cfg.dir, "/", sizeof(cfg.dir));
	}
	if (o.data != NULL) {
		ss.message_fd = open(o.data, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (ss.message_fd == -1 || fstat(ss.message_fd, &st) == -1
		    || !S_ISREG(st.st_mode)) {
			fprintf(stderr, "elemtactl test-plugin: --data %s: %s\n",
			    o.data, ss.message_fd == -1 ? strerror(errno)
			    : "not a regular file");
			rc = 2;
			goto out;
		}
		ss.size = (uint64_t)st.st_size;
	}

	/* One plugins[] entry, loaded the way policyd loads its config. */
	cfg.counters.ipv6_prefix = 64;
	cfg.plugin_count = 1;
	e = &cfg.plugins[0];
	e->enabled = true;
	e->config = node;
	if (strchr(o.plugin, '/') != NULL || (strlen(o.plugin) > 3
	    && strcmp(o.plugin + strlen(o.plugin) - 3, ".so") == 0)) {
		tp_entry_name(o.plugin, e->name, sizeof(e->name));
		if (str_copy(e->path, o.plugin, sizeof(e->path)) >= sizeof(e->path)) {
			rc = tp_usage_error("plugin path too long: %s", o.plugin);
			goto out;
		}
	} else if (str_copy(e->name, o.plugin, sizeof(e->name))
	    >= sizeof(e->name)) {
		rc = tp_usage_error("no built-in plugin '%s'", o.plugin);
		goto out;
	}

	if (tp_scratch_store(&cs, &err) == -1) {
		fprintf(stderr, "elemtactl test-plugin: %s\n", err.text);
		rc = 2;
		goto out;
	}
	ss.host = plugin_host_new(cs, cfg.counters.ipv6_prefix);
	if (plugin_host_load_config(ss.host, &cfg, &err) == -1) {
		fprintf(stderr, "elemtactl test-plugin: %s\n", err.text);
		rc = 2;
		goto out;
	}
	base = event_base_new();
	if (base == NULL) {
		fprintf(stderr, "elemtactl test-plugin: event_base_new failed\n");
		rc = 2;
		goto out;
	}
	resolver = tp_resolver(args, ss.host, base, &cfg);
	tp_run(&ss);
	fflush(stdout);
	rc = ss.refused ? 1 : 0;
out:
	if (resolver != NULL)
		dns_resolver_free(resolver);
	if (ss.host != NULL)
		plugin_host_free(ss.host);
	if (base != NULL)
		event_base_free(base);
	if (cs != NULL)
		counter_store_close(cs);
	if (ss.message_fd != -1)
		close(ss.message_fd);
	config_node_free(node);
	return rc;
}
