/*
 * config.c - loads the one YAML configuration file into struct config.
 *
 * Called at start-up by every program (elemtactl, elemta-smtpd,
 * elemta-policyd, elemta-stat) through config_load(); `elemtactl
 * check-config` prints every collected error and config_dump().  The policyd
 * plugin host reads plugin `config:` subtrees through the node tree and
 * reuses config_parse_* and config_nearest for its typed accessors.
 *
 * The file is read with libyaml into a yaml_document_t, converted into a
 * tree of struct config_node (each node knows its file:line:column), and
 * then one table, config_settings[], drives everything else: which keys
 * exist, their types, defaults and limits, where each value lands in
 * struct config, the error texts and config_dump().  Problems are
 * collected rather than stopped at, so an operator fixes the whole file in
 * one pass.
 *
 * The file is trusted (root writes it) but parsed defensively all the
 * same: aliases are refused (no "billion laughs"), nesting depth and file
 * size are bounded, and every copied string is length-checked.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <yaml.h>

#include "addr.h"
#include "config.h"
#include "error.h"
#include "log.h"
#include "route.h"

#define CONFIG_FILE_SIZE_MAX (16u << 20) /* a bigger config is a mistake    */
#define NODE_DEPTH_MAX 64                /* bounds the conversion recursion */
#define NEAREST_WORD_MAX 128             /* longest word config_nearest tries */
#define VALUE_SHOW_MAX 80                /* escaped value text in messages  */
#define KEY_PATH_MAX 256                 /* "plugins[3].config.foo.bar"     */
#define SECTIONS_MAX 16
#define SECTION_KEYS_MAX 32

#define KIB UINT64_C(1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)
#define TIB (GIB * 1024)
#define MS_SECOND UINT64_C(1000)
#define MS_MINUTE (60 * MS_SECOND)
#define MS_HOUR (60 * MS_MINUTE)
#define MS_DAY (24 * MS_HOUR)

/*==== The settings table ====*/

struct loader;

enum setting_type {
	SET_STRING,
	SET_PATH,       /* resolved against the config file's directory */
	SET_INT,        /* decimal, range-checked                      */
	SET_BOOL,
	SET_SIZE,       /* bytes: "10MB", "512K", bare bytes            */
	SET_DURATION,   /* ms: "250ms", "30s", "5m", bare seconds       */
	SET_MILLIS,     /* ms: bare milliseconds, or a duration ("2s")  */
	SET_ENUM,
	SET_LISTEN,     /* server.listen: list of {address, mode}        */
	SET_PLUGINS,    /* plugins: list of {name, path, enabled, config} */
	SET_CIDRS,      /* a list of CIDR blocks (server.mynetworks)      */
	SET_ROUTES,     /* delivery.routes: list of {domains, next_hop}    */
	SET_RELAYHOST,  /* delivery.relayhost: an SMTP next hop (route.h)  */
	SET_RESOLVERS,  /* dns.resolvers: list of ADDRESS[@PORT]           */
	SET_MILTERS,    /* milters: list of {name, address, modes, ...}    */
};

/* How a value is stored in struct config. */
enum setting_store {
	STORE_NONE,     /* validated only: struct config has no field yet */
	STORE_TEXT,     /* char[size]                                      */
	STORE_UINT,     /* unsigned or uint64_t, chosen by size            */
	STORE_BOOL,
	STORE_INDEX,    /* an enum field: the index into values[], or
	                   codes[index] when the setting has codes     */
	STORE_LIST,     /* SET_LISTEN, SET_PLUGINS, SET_CIDRS, SET_ROUTES,
	                   SET_RESOLVERS, SET_MILTERS fill their own
	                   fields                                         */
	STORE_HOP,      /* a struct route_hop                              */
};

#define SETTING_EMPTY_OK 0x1u   /* "" is meaningful (off / library default) */
#define SETTING_OFF_OK 0x2u     /* SIZE/DURATION: "off" is 0 (and 0 is off) */

/* An extra check of a SET_STRING value; may rewrite value (size bytes). */
typedef int (*setting_check_fn)(const struct config *cfg, char *value,
    size_t size, struct error *err);
/* A default computed from the environment or from earlier settings. */
typedef void (*setting_default_fn)(const struct config *cfg, char *out,
    size_t size);

struct setting {
	const char *name;           /* dotted: "server.workers"              */
	enum setting_type type;
	enum setting_store store;
	size_t offset, size;        /* the field in struct config            */
	const char *def;            /* default, in the file's own syntax     */
	setting_default_fn def_fn;  /* computed default (wins over def)      */
	int64_t min, max;           /* INT: value, SIZE: bytes, DURATION: ms */
	const char *const *values;  /* ENUM: allowed values, NULL-terminated */
	const int *codes;           /* ENUM: values[i] is stored as codes[i]
	                             * (NULL: as i)                          */
	unsigned flags;
	setting_check_fn check;
	const char *help;
};

#define AT(f) .offset = offsetof(struct config, f), \
	.size = sizeof(((struct config *)0)->f)

static void default_hostname(const struct config *cfg, char *out, size_t size);
static void default_policyd_socket(const struct config *cfg, char *out,
    size_t size);
static int check_hostname(const struct config *cfg, char *value, size_t size,
    struct error *err);
static int check_user(const struct config *cfg, char *value, size_t size,
    struct error *err);
static int check_hostport(const struct config *cfg, char *value, size_t size,
    struct error *err);
static int check_postfix_listen(const struct config *cfg, char *value,
    size_t size, struct error *err);
static int check_key_prefix(const struct config *cfg, char *value,
    size_t size, struct error *err);

/* Enum values whose order is the order of the C enum they are stored in. */
static const char *const listen_modes[] = { "smtp", "submission", "smtps",
    "local", NULL };
static const char *const bare_newline_values[] = { "reject", "normalize",
    NULL };
static const char *const fail_mode_values[] = { "tempfail", "accept", NULL };
/* index order = enum counter_sync */
static const char *const counter_sync_values[] = { "safe", "fast", NULL };
static const char *const tls_versions[] = { "TLSv1.2", "TLSv1.3", NULL };
/* Stored as enum log_level: the codes, in the order of the words. */
static const char *const log_levels[] = { "error", "warning", "info",
    "debug", NULL };
static const int log_level_codes[] = { LOG_LEVEL_ERR, LOG_LEVEL_WARN,
    LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
static const char *const counter_backends[] = { "lmdb", "redis", NULL };
/* index order = enum config_delivery_tls */
static const char *const delivery_tls_modes[] = { "may", "encrypt",
    "verify", "dane", NULL };

/* Every setting, once.  Order matters twice: config_dump prints in this
 * order, and computed defaults may read settings listed before them
 * (policyd.socket reads server.runtime_dir). */
static const struct setting config_settings[] = {
	{ .name = "server.hostname", .type = SET_STRING, .store = STORE_TEXT,
	  AT(server.hostname), .def_fn = default_hostname,
	  .check = check_hostname,
	  .help = "name in the greeting and Received: headers" },
	{ .name = "server.listen", .type = SET_LISTEN, .store = STORE_LIST,
	  .help = "list of {address: HOST:PORT, mode: smtp|submission|smtps}, "
	  "or {address: unix:PATH, mode: local, socket_mode, socket_group}" },
	{ .name = "server.user", .type = SET_STRING, .store = STORE_TEXT,
	  AT(server.user), .def = "elemta", .check = check_user,
	  .help = "user the smtpd workers run as (when started as root)" },
	{ .name = "server.workers", .type = SET_INT, .store = STORE_UINT,
	  AT(server.workers), .def = "2", .min = 1, .max = 64,
	  .help = "number of elemta-smtpd processes" },
	{ .name = "server.runtime_dir", .type = SET_PATH, .store = STORE_TEXT,
	  AT(server.runtime_dir), .def = "/run/elemta",
	  .help = "pid file, lock, status and the policy socket" },
	{ .name = "server.max_message_size", .type = SET_SIZE,
	  .store = STORE_UINT, AT(server.max_message_size), .def = "10MB",
	  .min = (int64_t)KIB, .max = (int64_t)(2 * GIB),
	  .help = "largest message accepted (SIZE)" },
	{ .name = "server.max_recipients", .type = SET_INT, .store = STORE_UINT,
	  AT(server.max_recipients), .def = "1000", .min = 100, .max = 100000,
	  .help = "recipients per message (RFC 5321 requires at least 100)" },
	{ .name = "server.max_connections", .type = SET_INT,
	  .store = STORE_UINT, AT(server.max_connections), .def = "10000",
	  .min = 1, .max = 1000000,
	  .help = "concurrent sessions per smtpd worker" },
	{ .name = "server.max_connections_per_ip", .type = SET_INT,
	  .store = STORE_UINT, AT(server.max_connections_per_ip), .def = "50",
	  .min = 1, .max = 1000000,
	  .help = "concurrent sessions from one client address" },
	{ .name = "server.max_errors", .type = SET_INT, .store = STORE_UINT,
	  AT(server.max_errors), .def = "10", .min = 1, .max = 1000,
	  .help = "protocol errors before the session is closed" },
	{ .name = "server.command_timeout", .type = SET_DURATION,
	  .store = STORE_UINT, AT(server.command_timeout_ms), .def = "5m",
	  .min = (int64_t)MS_SECOND, .max = (int64_t)MS_DAY,
	  .help = "idle time allowed between commands" },
	{ .name = "server.data_timeout", .type = SET_DURATION,
	  .store = STORE_UINT, AT(server.data_timeout_ms), .def = "10m",
	  .min = (int64_t)MS_SECOND, .max = (int64_t)MS_DAY,
	  .help = "time allowed for the whole DATA phase" },
	{ .name = "server.min_data_rate", .type = SET_SIZE, .store = STORE_UINT,
	  AT(server.min_data_rate), .def = "500", .min = 0,
	  .max = (int64_t)GIB,
	  .help = "slowest DATA transfer tolerated, bytes per second, after "
	  "min_data_rate_grace (0 = off)" },
	{ .name = "server.min_data_rate_grace", .type = SET_DURATION,
	  .store = STORE_UINT, AT(server.min_data_rate_grace_ms), .def = "30s",
	  .min = (int64_t)MS_SECOND, .max = (int64_t)MS_DAY,
	  .help = "DATA time granted before min_data_rate applies" },
	{ .name = "server.shutdown_grace", .type = SET_DURATION,
	  .store = STORE_UINT, AT(server.shutdown_grace_ms), .def = "30s",
	  .min = 0, .max = (int64_t)MS_DAY,
	  .help = "time sessions get to finish on stop" },
	{ .name = "server.bare_newline", .type = SET_ENUM, .store = STORE_INDEX,
	  AT(server.bare_newline), .def = "reject",
	  .values = bare_newline_values,
	  .help = "what to do with a bare LF in DATA" },
	{ .name = "server.banner", .type = SET_STRING, .store = STORE_TEXT,
	  AT(server.banner), .def = "ESMTP Elemta",
	  .help = "text after the host name in the 220 greeting" },
	{ .name = "server.mynetworks", .type = SET_CIDRS, .store = STORE_LIST,
	  .def = "127.0.0.0/8, ::1/128",
	  .help = "client networks that may relay to any domain without "
	  "AUTH (list of CIDR blocks)" },

	{ .name = "tls.certificate", .type = SET_PATH, .store = STORE_TEXT,
	  AT(tls.certificate), .def = "",
	  .help = "PEM certificate chain (with tls.key)" },
	{ .name = "tls.key", .type = SET_PATH, .store = STORE_TEXT,
	  AT(tls.key), .def = "",
	  .help = "PEM private key (with tls.certificate)" },
	{ .name = "tls.min_version", .type = SET_ENUM, .store = STORE_INDEX,
	  AT(tls.min_version), .def = "TLSv1.2", .values = tls_versions,
	  .help = "oldest TLS version offered" },
	{ .name = "tls.ciphers", .type = SET_STRING, .store = STORE_TEXT,
	  AT(tls.ciphers), .def = "", .flags = SETTING_EMPTY_OK,
	  .help = "OpenSSL cipher list for TLSv1.2 (\"\" = OpenSSL default)" },

	{ .name = "auth.users_file", .type = SET_PATH, .store = STORE_TEXT,
	  AT(auth.users_file), .def = "",
	  .help = "user:crypt-hash lines; AUTH is off without it" },
	{ .name = "auth.require_tls", .type = SET_BOOL, .store = STORE_BOOL,
	  AT(auth.require_tls), .def = "true",
	  .help = "offer AUTH only over TLS" },
	{ .name = "auth.max_attempts_per_minute", .type = SET_INT,
	  .store = STORE_UINT, AT(auth.max_attempts_per_minute), .def = "30",
	  .min = 0, .max = 100000,
	  .help = "AUTH attempts per client address and minute, answered "
	  "454 4.7.0 beyond it before any password hash (0 = no limit)" },

	{ .name = "policyd.user", .type = SET_STRING, .store = STORE_TEXT,
	  AT(policyd.user), .def = "elemta-policy", .check = check_user,
	  .help = "user the policyd workers run as (when started as root)" },
	{ .name = "policyd.workers", .type = SET_INT, .store = STORE_UINT,
	  AT(policyd.workers), .def = "2", .min = 1, .max = 64,
	  .help = "number of elemta-policyd processes" },
	{ .name = "policyd.socket", .type = SET_PATH, .store = STORE_TEXT,
	  AT(policyd.socket), .def_fn = default_policyd_socket,
	  .help = "Unix socket smtpd asks (default RUNTIME_DIR/policyd.sock)" },
	{ .name = "policyd.timeout_ms", .type = SET_MILLIS, .store = STORE_UINT,
	  AT(policyd.timeout_ms), .def = "2000", .min = 10, .max = 600000,
	  .help = "policy answer deadline (milliseconds, or a duration)" },
	{ .name = "policyd.fail_mode", .type = SET_ENUM, .store = STORE_INDEX,
	  AT(policyd.fail_mode), .def = "tempfail", .values = fail_mode_values,
	  .help = "when policyd is down or late: 451 4.3.5, or accept" },
	{ .name = "policyd.postfix_listen", .type = SET_STRING,
	  .store = STORE_TEXT, AT(policyd.postfix_listen), .def = "",
	  .flags = SETTING_EMPTY_OK, .check = check_postfix_listen,
	  .help = "HOST:PORT or unix:PATH for Postfix check_policy_service" },

	{ .name = "counters.path", .type = SET_PATH, .store = STORE_TEXT,
	  AT(counters.path), .def = "/var/lib/elemta/counters",
	  .help = "LMDB directory of the shared counter table" },
	{ .name = "counters.map_size", .type = SET_SIZE, .store = STORE_UINT,
	  AT(counters.map_size), .def = "64MB", .min = (int64_t)MIB,
	  .max = (int64_t)TIB, .help = "LMDB map size" },
	{ .name = "counters.ipv6_prefix", .type = SET_INT, .store = STORE_UINT,
	  AT(counters.ipv6_prefix), .def = "64", .min = 32, .max = 128,
	  .help = "IPv6 clients are counted per network of this length" },
	{ .name = "counters.sync", .type = SET_ENUM, .store = STORE_INDEX,
	  AT(counters.sync), .def = "safe", .values = counter_sync_values,
	  .help = "safe: fsync every recording decision; fast: flush once a second" },
	{ .name = "counters.backend", .type = SET_ENUM, .store = STORE_INDEX,
	  AT(counters.backend), .def = "lmdb", .values = counter_backends,
	  .help = "lmdb: the table at counters.path (one host); redis: a "
	  "Redis/Valkey server shared by several hosts" },
	{ .name = "counters.redis.address", .type = SET_STRING,
	  .store = STORE_TEXT, AT(counters.redis.address),
	  .def = "127.0.0.1:6379", .check = check_postfix_listen,
	  .help = "Redis server: IP:PORT, [IPv6]:PORT or unix:PATH" },
	{ .name = "counters.redis.password_file", .type = SET_PATH,
	  .store = STORE_TEXT, AT(counters.redis.password_file), .def = "",
	  .help = "file whose first line is the Redis password, read by "
	  "policyd at start (\"\" = no AUTH)" },
	{ .name = "counters.redis.database", .type = SET_INT,
	  .store = STORE_UINT, AT(counters.redis.database), .def = "0",
	  .min = 0, .max = 15, .help = "Redis database number (SELECT)" },
	{ .name = "counters.redis.key_prefix", .type = SET_STRING,
	  .store = STORE_TEXT, AT(counters.redis.key_prefix),
	  .def = "elemta:", .check = check_key_prefix,
	  .help = "every Redis key Elemta uses starts with it (hosts sharing "
	  "limits use the same prefix)" },
	{ .name = "counters.redis.timeout_ms", .type = SET_MILLIS,
	  .store = STORE_UINT, AT(counters.redis.timeout_ms), .def = "200",
	  .min = 10, .max = 10000,
	  .help = "longest a Redis call may take (milliseconds, or a duration)" },

	{ .name = "spool.path", .type = SET_PATH, .store = STORE_TEXT,
	  AT(spool.path), .def = "/var/spool/elemta",
	  .help = "queue/, quarantine/ and tmp/ live here" },
	{ .name = "spool.fsync", .type = SET_BOOL, .store = STORE_BOOL,
	  AT(spool.fsync), .def = "true",
	  .help = "fsync messages before answering 250" },
	{ .name = "spool.min_free", .type = SET_SIZE, .store = STORE_UINT,
	  AT(spool.min_free), .def = "100MB", .min = 0, .max = (int64_t)TIB,
	  .flags = SETTING_OFF_OK,
	  .help = "below this much free space smtpd answers MAIL with 452 "
	  "4.3.1 (0 or off: no check)" },

	/* smtp_port first: the next hops below default to it. */
	{ .name = "delivery.smtp_port", .type = SET_INT, .store = STORE_UINT,
	  AT(delivery.smtp_port), .def = "25", .min = 1, .max = 65535,
	  .help = "port of SMTP next hops that name none (and of MX hosts)" },
	{ .name = "delivery.relayhost", .type = SET_RELAYHOST,
	  .store = STORE_HOP, AT(delivery.relayhost), .def = "",
	  .flags = SETTING_EMPTY_OK,
	  .help = "SMTP next hop for every domain no route names: "
	  "[host]:port (no MX lookup) or host[:port] (\"\" = MX)" },
	{ .name = "delivery.routes", .type = SET_ROUTES, .store = STORE_LIST,
	  .help = "list of {domains: [example.com, .example.com] or [\"*\"], "
	  "next_hop: smtp:[host]:port|smtp:host[:port]|lmtp:unix:/path|"
	  "lmtp:host:port|maildir:/path|discard:|error:5.x.x text}" },
	{ .name = "delivery.concurrency", .type = SET_INT, .store = STORE_UINT,
	  AT(delivery.concurrency), .def = "20", .min = 1, .max = 10000,
	  .help = "deliveries in progress at once, in total" },
	{ .name = "delivery.destination_concurrency", .type = SET_INT,
	  .store = STORE_UINT, AT(delivery.destination_concurrency),
	  .def = "5", .min = 1, .max = 10000,
	  .help = "deliveries in progress at once to one next hop" },
	{ .name = "delivery.hop_limit", .type = SET_INT, .store = STORE_UINT,
	  AT(delivery.hop_limit), .def = "50", .min = 1, .max = 1000,
	  .help = "a message with more Received: headers bounces (5.4.6)" },
	{ .name = "delivery.retry.min_backoff", .type = SET_DURATION,
	  .store = STORE_UINT, AT(delivery.retry.min_backoff_ms), .def = "5m",
	  .min = (int64_t)MS_SECOND, .max = (int64_t)MS_DAY,
	  .help = "wait before the first retry, doubled each time" },
	{ .name = "delivery.retry.max_backoff", .type = SET_DURATION,
	  .store = STORE_UINT, AT(delivery.retry.max_backoff_ms), .def = "1h",
	  .min = (int64_t)MS_SECOND, .max = (int64_t)(7 * MS_DAY),
	  .help = "longest wait between two tries" },
	{ .name = "delivery.retry.max_lifetime", .type = SET_DURATION,
	  .store = STORE_UINT, AT(delivery.retry.max_lifetime_ms), .def = "5d",
	  .min = (int64_t)MS_SECOND, .max = (int64_t)(100 * MS_DAY),
	  .help = "a recipient still undelivered after this bounces" },
	{ .name = "delivery.retry.delay_warning", .type = SET_DURATION,
	  .store = STORE_UINT, AT(delivery.retry.delay_warning_ms),
	  .def = "off", .min = 0, .max = (int64_t)(100 * MS_DAY),
	  .flags = SETTING_OFF_OK,
	  .help = "tell the sender once when a message is delayed this long "
	  "(off: never)" },
	{ .name = "delivery.tls.mode", .type = SET_ENUM, .store = STORE_INDEX,
	  AT(delivery.tls.mode), .def = "may", .values = delivery_tls_modes,
	  .help = "STARTTLS to next hops: may (when offered), encrypt "
	  "(required), verify (required, certificate checked), dane "
	  "(RFC 7672: required and checked against DNSSEC-validated TLSA "
	  "records where the MX host has them, else as may; needs "
	  "dns.dnssec)" },
	{ .name = "delivery.tls.ca_file", .type = SET_PATH, .store = STORE_TEXT,
	  AT(delivery.tls.ca_file), .def = "",
	  .help = "PEM CA certificates for tls.mode verify (\"\" = the "
	  "system's store)" },
	{ .name = "delivery.auth.username", .type = SET_STRING,
	  .store = STORE_TEXT, AT(delivery.auth.username), .def = "",
	  .flags = SETTING_EMPTY_OK,
	  .help = "AUTH PLAIN/LOGIN user at the next hop (\"\" = no AUTH)" },
	{ .name = "delivery.auth.password_file", .type = SET_PATH,
	  .store = STORE_TEXT, AT(delivery.auth.password_file), .def = "",
	  .help = "file whose first line is that user's password" },
	{ .name = "delivery.bounce_size_limit", .type = SET_SIZE,
	  .store = STORE_UINT, AT(delivery.bounce_size_limit), .def = "50KB",
	  .min = (int64_t)KIB, .max = (int64_t)(2 * GIB),
	  .help = "most of the original message a bounce returns (RET=FULL)" },
	{ .name = "delivery.timeouts.connect", .type = SET_DURATION,
	  .store = STORE_UINT, AT(delivery.timeouts.connect_ms), .def = "30s",
	  .min = (int64_t)MS_SECOND, .max = (int64_t)MS_HOUR,
	  .help = "TCP connection to a next hop" },
	{ .name = "delivery.timeouts.greeting", .type = SET_DURATION,
	  .store = STORE_UINT, AT(delivery.timeouts.greeting_ms), .def = "5m",
	  .min = (int64_t)MS_SECOND, .max = (int64_t)MS_HOUR,
	  .help = "the next hop's 220 greeting" },
	{ .name = "delivery.timeouts.command", .type = SET_DURATION,
	  .store = STORE_UINT, AT(delivery.timeouts.command_ms), .def = "5m",
	  .min = (int64_t)MS_SECOND, .max = (int64_t)MS_HOUR,
	  .help = "reply to EHLO, STARTTLS, AUTH, RSET, QUIT" },
	{ .name = "delivery.timeouts.mail", .type = SET_DURATION,
	  .store = STORE_UINT, AT(delivery.timeouts.mail_ms), .def = "5m",
	  .min = (int64_t)MS_SECOND, .max = (int64_t)MS_HOUR,
	  .help = "reply to MAIL FROM" },
	{ .name = "delivery.timeouts.rcpt", .type = SET_DURATION,
	  .store = STORE_UINT, AT(delivery.timeouts.rcpt_ms), .def = "5m",
	  .min = (int64_t)MS_SECOND, .max = (int64_t)MS_HOUR,
	  .help = "reply to RCPT TO" },
	{ .name = "delivery.timeouts.data_init", .type = SET_DURATION,
	  .store = STORE_UINT, AT(delivery.timeouts.data_init_ms), .def = "2m",
	  .min = (int64_t)MS_SECOND, .max = (int64_t)MS_HOUR,
	  .help = "354 reply to DATA" },
	{ .name = "delivery.timeouts.data_block", .type = SET_DURATION,
	  .store = STORE_UINT, AT(delivery.timeouts.data_block_ms),
	  .def = "3m", .min = (int64_t)MS_SECOND, .max = (int64_t)MS_HOUR,
	  .help = "each write of the message body" },
	{ .name = "delivery.timeouts.data_term", .type = SET_DURATION,
	  .store = STORE_UINT, AT(delivery.timeouts.data_term_ms),
	  .def = "10m", .min = (int64_t)MS_SECOND, .max = (int64_t)MS_HOUR,
	  .help = "reply(ies) after the final dot" },

	{ .name = "dns.resolvers", .type = SET_RESOLVERS, .store = STORE_LIST,
	  .help = "DNS resolvers asked for every name: list of ADDRESS or "
	  "ADDRESS@PORT (\"127.0.0.1@5353\", \"::1\"); none: the "
	  "nameservers of /etc/resolv.conf" },
	{ .name = "dns.timeout", .type = SET_DURATION, .store = STORE_UINT,
	  AT(dns.timeout_ms), .def = "5s", .min = 100,
	  .max = (int64_t)MS_MINUTE,
	  .help = "longest a DNS lookup may take; then it is a temporary "
	  "failure" },
	{ .name = "dns.dnssec", .type = SET_BOOL, .store = STORE_BOOL,
	  AT(dns.dnssec), .def = "false",
	  .help = "validate answers with DNSSEC (needs dns.trust_anchor_file;"
	  " DANE needs it)" },
	{ .name = "dns.trust_anchor_file", .type = SET_PATH,
	  .store = STORE_TEXT, AT(dns.trust_anchor_file), .def = "",
	  .help = "DS or DNSKEY records in zone-file format, the DNSSEC trust "
	  "anchors (Debian's root key: /usr/share/dns/root.key)" },

	{ .name = "metrics.listen", .type = SET_STRING, .store = STORE_TEXT,
	  AT(metrics.listen), .def = "", .flags = SETTING_EMPTY_OK,
	  .check = check_hostport,
	  .help = "HOST:PORT of the Prometheus endpoint (\"\" = off)" },

	{ .name = "log.level", .type = SET_ENUM, .store = STORE_INDEX,
	  AT(log.level), .def = "info", .values = log_levels,
	  .codes = log_level_codes,
	  .help = "most verbose level logged" },

	{ .name = "milters", .type = SET_MILTERS, .store = STORE_LIST,
	  .help = "milters, run in this order at END-OF-MESSAGE: list of "
	  "{name, address: unix:/path|inet:host:port, modes: [smtp, "
	  "submission, smtps], timeout (30s), fail_mode: tempfail|accept}" },

	{ .name = "plugins", .type = SET_PLUGINS, .store = STORE_LIST,
	  .help = "policy plugins, run in this order" },
};

#define SETTINGS_COUNT (sizeof(config_settings) / sizeof(config_settings[0]))

/*==== Small text helpers ====*/

/* text_append - append src to dst (size bytes), truncating. */
static void
text_append(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(dst, size);

	if (n < size)
		str_copy(dst + n, src, size - n);
}

/* show - a value escaped and shortened for an error message. */
static const char *
show(char *buf, size_t size, const char *s)
{
	size_t len = strlen(s);

	if (size > VALUE_SHOW_MAX)
		size = VALUE_SHOW_MAX;
	return log_escape(buf, size, s, len);
}

/* has_control - true when s holds a control character (CR, LF, TAB...). */
static bool
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* join_names - "a, b, c" into buf. */
static void
join_names(char *buf, size_t size, const char *const *names, size_t count)
{
	buf[0] = '\0';
	for (size_t i = 0; i < count && names[i] != NULL; i++) {
		if (i > 0)
			text_append(buf, size, ", ");
		text_append(buf, size, names[i]);
	}
}

/* key_join - "prefix.key" into out, truncated to fit. */
static void
key_join(char *out, size_t size, const char *prefix, const char *key)
{
	str_copy(out, prefix, size);
	if (prefix[0] != '\0')
		text_append(out, size, ".");
	text_append(out, size, key);
}

/* format_size - bytes in the largest unit that divides them ("10MB"). */
static void
format_size(uint64_t v, char *buf, size_t size)
{
	static const struct { uint64_t mult; const char *unit; } units[] = {
		{ TIB, "TB" }, { GIB, "GB" }, { MIB, "MB" }, { KIB, "KB" },
	};

	for (size_t i = 0; v != 0 && i < sizeof(units) / sizeof(units[0]); i++) {
		if (v % units[i].mult == 0) {
			snprintf(buf, size, "%" PRIu64 "%s", v / units[i].mult,
			    units[i].unit);
			return;
		}
	}
	snprintf(buf, size, "%" PRIu64 "%s", v, v == 0 ? "" : "B");
}

/* format_duration - milliseconds in the largest unit that divides them. */
static void
format_duration(uint64_t ms, char *buf, size_t size)
{
	static const struct { uint64_t mult; const char *unit; } units[] = {
		{ MS_DAY, "d" }, { MS_HOUR, "h" }, { MS_MINUTE, "m" },
		{ MS_SECOND, "s" },
	};

	if (ms == 0) {
		snprintf(buf, size, "0s");
		return;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms % units[i].mult == 0) {
			snprintf(buf, size, "%" PRIu64 "%s", ms / units[i].mult,
			    units[i].unit);
			return;
		}
	}
	snprintf(buf, size, "%" PRIu64 "ms", ms);
}

/*==== Scalar conversions (shared with the plugin host) ====*/

/* parse_digits - leading decimal digits of s into *out; returns the byte
 * after them, or NULL when there are none or the number overflows. */
static const char *
parse_digits(const char *s, uint64_t *out, bool *overflow)
{
	uint64_t v = 0;
	const char *p = s;

	*overflow = false;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			*overflow = true;
		else
			v = v * 10 + d;
	}
	if (p == s || *overflow)
		return NULL;
	*out = v;
	return p;
}

/* unit_multiplier - look unit up (case-insensitive) in a unit table. */
static bool
unit_multiplier(const char *unit, const char *const *names,
    const uint64_t *mults, size_t count, uint64_t *out)
{
	for (size_t i = 0; i < count; i++) {
		if (strcasecmp(unit, names[i]) == 0) {
			*out = mults[i];
			return true;
		}
	}
	return false;
}

/* config_parse_bool - true/false, yes/no, on/off, any case. */
int
config_parse_bool(const char *s, bool *out, struct error *err)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	char shown[VALUE_SHOW_MAX];

	for (size_t i = 0; s != NULL && i < 3; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return error_set(err, "'%s' is not a boolean (use true/false, "
	    "yes/no or on/off)", show(shown, sizeof(shown), s ? s : ""));
}

/* config_parse_int - a decimal integer (optional sign) within min..max. */
int
config_parse_int(const char *s, int64_t min, int64_t max, int64_t *out,
    struct error *err)
{
	char shown[VALUE_SHOW_MAX];
	const char *p = s, *end;
	bool neg = false, overflow;
	uint64_t mag = 0;
	int64_t v;

	if (s == NULL || *s == '\0')
		return error_set(err, "a whole number is required, found "
		    "an empty value");
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	end = parse_digits(p, &mag, &overflow);
	if (end == NULL && !overflow)
		goto bad;
	if (end != NULL && *end != '\0')
		goto bad;
	if (overflow || (!neg && mag > (uint64_t)INT64_MAX) ||
	    (neg && mag > (uint64_t)INT64_MAX + 1))
		return error_set(err, "'%s' is out of range (min %" PRId64
		    ", max %" PRId64 ")", show(shown, sizeof(shown), s), min, max);
	if (neg)
		v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
	else
		v = (int64_t)mag;
	if (v < min || v > max)
		return error_set(err, "%" PRId64 " is out of range (min %" PRId64
		    ", max %" PRId64 ")", v, min, max);
	*out = v;
	return 0;
bad:
	return error_set(err, "'%s' is not a whole decimal number",
	    show(shown, sizeof(shown), s));
}

/* config_parse_duration_ms - "250ms", "30s", "5m", "1h", "2d"; a bare
 * number is seconds. */
int
config_parse_duration_ms(const char *s, uint64_t *out, struct error *err)
{
	static const char *const names[] = { "", "ms", "s", "m", "h", "d" };
	static const uint64_t mults[] = { MS_SECOND, 1, MS_SECOND, MS_MINUTE,
	    MS_HOUR, MS_DAY };
	char shown[VALUE_SHOW_MAX];
	const char *p;
	uint64_t n = 0, mult = 0;
	bool overflow;

	if (s == NULL || *s == '\0')
		return error_set(err, "a duration is required, found an empty "
		    "value");
	p = parse_digits(s, &n, &overflow);
	if (p == NULL && overflow)
		goto too_large;
	if (p == NULL)
		goto bad;
	while (*p == ' ')
		p++;
	if (!unit_multiplier(p, names, mults, 6, &mult))
		goto bad;
	if (n > UINT64_MAX / mult)
		goto too_large;
	*out = n * mult;
	return 0;
too_large:
	return error_set(err, "'%s' is too large a duration",
	    show(shown, sizeof(shown), s));
bad:
	return error_set(err, "'%s' is not a duration (use e.g. 250ms, 30s, "
	    "5m, 1h or 2d; a bare number is seconds)",
	    show(shown, sizeof(shown), s));
}

/* config_parse_size - "100B", "512K", "10MB", "1G", "1T" (powers of 1024,
 * "KiB" spellings too); a bare number is bytes. */
int
config_parse_size(const char *s, uint64_t *out, struct error *err)
{
	static const char *const names[] = { "", "b", "k", "kb", "kib", "m",
	    "mb", "mib", "g", "gb", "gib", "t", "tb", "tib" };
	static const uint64_t mults[] = { 1, 1, KIB, KIB, KIB, MIB, MIB, MIB,
	    GIB, GIB, GIB, TIB, TIB, TIB };
	char shown[VALUE_SHOW_MAX];
	const char *p;
	uint64_t n = 0, mult = 0;
	bool overflow;

	if (s == NULL || *s == '\0')
		return error_set(err, "a size is required, found an empty value");
	p = parse_digits(s, &n, &overflow);
	if (p == NULL && overflow)
		goto too_large;
	if (p == NULL)
		goto bad;
	while (*p == ' ')
		p++;
	if (!unit_multiplier(p, names, mults, sizeof(mults) / sizeof(mults[0]),
	    &mult))
		goto bad;
	if (n > UINT64_MAX / mult)
		goto too_large;
	*out = n * mult;
	return 0;
too_large:
	return error_set(err, "'%s' is too large a size",
	    show(shown, sizeof(shown), s));
bad:
	return error_set(err, "'%s' is not a size (use e.g. 100B, 512K, 10MB "
	    "or 1G; a bare number is bytes)", show(shown, sizeof(shown), s));
}

/* edit_distance - case-insensitive Levenshtein distance; SIZE_MAX when b
 * is too long to bother. */
static size_t
edit_distance(const char *a, const char *b)
{
	size_t row[NEAREST_WORD_MAX + 1];
	size_t la = strlen(a), lb = strlen(b);

	if (lb > NEAREST_WORD_MAX)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = tolower((unsigned char)a[i - 1]) !=
			    tolower((unsigned char)b[j - 1]);
			size_t best = diag + cost;

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* config_nearest - the entry of known[] closest to word, when within
 * max(2, len/3) edits and not a complete rewrite of word. */
const char *
config_nearest(const char *word, const char *const *known, size_t count)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX, len, limit;

	if (word == NULL)
		return NULL;
	len = strlen(word);
	if (len == 0 || len > NEAREST_WORD_MAX)
		return NULL;
	limit = len / 3 > 2 ? len / 3 : 2;
	for (size_t i = 0; i < count; i++) {
		size_t d;

		if (known[i] == NULL)
			continue;
		d = edit_distance(word, known[i]);
		if (d < best_d) {
			best_d = d;
			best = known[i];
		}
	}
	if (best == NULL || best_d > limit || best_d >= len)
		return NULL;
	return best;
}

/*==== The node tree ====*/

/* config_node_get - the value of key in map; NULL when map is NULL, not a
 * map, or has no such key. */
const struct config_node *
config_node_get(const struct config_node *map, const char *key)
{
	if (map == NULL || key == NULL || map->type != CONFIG_NODE_MAP)
		return NULL;
	for (size_t i = 0; i < map->count; i++)
		if (strcmp(map->keys[i], key) == 0)
			return map->items[i];
	return NULL;
}

/* config_node_free - free n and everything below it (file is not owned). */
void
config_node_free(struct config_node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->count; i++) {
		if (n->keys != NULL)
			free(n->keys[i]);
		config_node_free(n->items[i]);
	}
	free(n->keys);
	free(n->items);
	free(n->scalar);
	free(n);
}

/* setting_enum_word - the spelling of the stored value of an enum
 * setting, "?" for a value outside it. */
static const char *
setting_enum_word(const struct setting *s, int value)
{
	for (size_t i = 0; s->values != NULL && s->values[i] != NULL; i++)
		if ((s->codes != NULL ? s->codes[i] : (int)i) == value)
			return s->values[i];
	return "?";
}

/* config_enum_name - see config.h. */
const char *
config_enum_name(const char *key, int value)
{
	for (size_t i = 0; i < SETTINGS_COUNT; i++)
		if (config_settings[i].type == SET_ENUM &&
		    strcmp(config_settings[i].name, key) == 0)
			return setting_enum_word(&config_settings[i], value);
	return "?";
}

/* config_listen_mode_name - "smtp", "submission", "smtps", "local". */
const char *
config_listen_mode_name(enum config_listen_mode m)
{
	if ((unsigned)m < sizeof(listen_modes) / sizeof(listen_modes[0]) - 1)
		return listen_modes[m];
	return "unknown";
}

/*==== Loader state and error collection ====*/

/* The allocation behind a struct config: the path as given outlives the
 * load because every node's `file` points at it. */
struct config_owned {
	struct config cfg;              /* first: config_free frees this */
	char given[CONFIG_PATH_MAX];
};

struct load_error {
	unsigned line, column;          /* 0: the problem has no position */
	size_t seq;                     /* keeps the sort stable          */
	char text[ERROR_TEXT_MAX];
};

/* Where a map's key was written (nodes only record where values start). */
struct key_mark {
	const struct config_node *map;
	size_t index;
	unsigned line, column;
};

struct loader {
	struct config *cfg;
	const char *file;               /* as given, for messages */
	const char *text;               /* the file's bytes       */
	size_t text_len;
	struct load_error errors[CONFIG_ERRORS_MAX];
	size_t error_count, dropped;
	struct key_mark *marks;
	size_t mark_count, mark_cap;
};

/* load_verror - record "FILE:LINE:COL: key 'K': message". */
static void __attribute__((format(printf, 5, 0)))
load_verror(struct loader *ld, unsigned line, unsigned column,
    const char *key, const char *fmt, va_list ap)
{
	char msg[ERROR_TEXT_MAX], num[48];
	struct load_error *e;

	if (ld->error_count == CONFIG_ERRORS_MAX) {
		ld->dropped++;
		return;
	}
	e = &ld->errors[ld->error_count];
	e->line = line;
	e->column = column;
	e->seq = ld->error_count++;
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	str_copy(e->text, ld->file, sizeof(e->text));
	if (line > 0 && snprintf(num, sizeof(num), ":%u:%u", line, column) > 0)
		text_append(e->text, sizeof(e->text), num);
	text_append(e->text, sizeof(e->text), ": ");
	if (key != NULL && key[0] != '\0') {
		text_append(e->text, sizeof(e->text), "key '");
		text_append(e->text, sizeof(e->text), key);
		text_append(e->text, sizeof(e->text), "': ");
	}
	text_append(e->text, sizeof(e->text), msg);
}

/* load_error_at - an error at an explicit 1-based position (0 = none). */
static void __attribute__((format(printf, 5, 6)))
load_error_at(struct loader *ld, unsigned line, unsigned column,
    const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	load_verror(ld, line, column, key, fmt, ap);
	va_end(ap);
}

/* load_error - an error at a node's position (no position when NULL). */
static void __attribute__((format(printf, 4, 5)))
load_error(struct loader *ld, const struct config_node *at, const char *key,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	load_verror(ld, at ? at->line : 0, at ? at->column : 0, key, fmt, ap);
	va_end(ap);
}

/* load_error_cmp - order errors by position, then by discovery. */
static int
load_error_cmp(const void *a, const void *b)
{
	const struct load_error *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->column != y->column)
		return x->column < y->column ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* load_errors_export - sorted copy into the caller's list. */
static void
load_errors_export(struct loader *ld, struct config_errors *errs)
{
	qsort(ld->errors, ld->error_count, sizeof(ld->errors[0]),
	    load_error_cmp);
	errs->count = 0;
	for (size_t i = 0; i < ld->error_count; i++)
		str_copy(errs->text[errs->count++], ld->errors[i].text,
		    sizeof(errs->text[0]));
	if (ld->dropped > 0) {
		char *last = errs->text[errs->count - 1];

		snprintf(last, sizeof(errs->text[0]), "%.300s: %zu more "
		    "errors not shown; fix the ones above first", ld->file,
		    ld->dropped + 1);
	}
}

/* key_mark_add - remember where map's index-th key was written. */
static void
key_mark_add(struct loader *ld, const struct config_node *map, size_t index,
    const yaml_mark_t *mark)
{
	if (ld->mark_count == ld->mark_cap) {
		ld->mark_cap = ld->mark_cap ? ld->mark_cap * 2 : 64;
		ld->marks = xrealloc(ld->marks, ld->mark_cap * sizeof(*ld->marks));
	}
	ld->marks[ld->mark_count++] = (struct key_mark){ map, index,
	    (unsigned)mark->line + 1, (unsigned)mark->column + 1 };
}

/* key_position - where map's index-th key was written (its value's
 * position when unknown). */
static void
key_position(const struct loader *ld, const struct config_node *map,
    size_t index, unsigned *line, unsigned *column)
{
	for (size_t i = 0; i < ld->mark_count; i++) {
		if (ld->marks[i].map == map && ld->marks[i].index == index) {
			*line = ld->marks[i].line;
			*column = ld->marks[i].column;
			return;
		}
	}
	*line = map->items[index]->line;
	*column = map->items[index]->column;
}

/* key_position_named - where key was written in map; map's own position
 * when the key is absent. */
static void
key_position_named(const struct loader *ld, const struct config_node *map,
    const char *key, unsigned *line, unsigned *column)
{
	*line = map->line;
	*column = map->column;
	if (map->type != CONFIG_NODE_MAP)
		return;
	for (size_t i = 0; i < map->count; i++)
		if (strcmp(map->keys[i], key) == 0)
			key_position(ld, map, i, line, column);
}

/* node_type_name - for "expected a map, found a list". */
static const char *
node_type_name(const struct config_node *n)
{
	switch (n->type) {
	case CONFIG_NODE_SCALAR:
		return n->scalar[0] == '\0' ? "an empty value" : "a single value";
	case CONFIG_NODE_LIST:
		return "a list";
	case CONFIG_NODE_MAP:
		return "a map";
	}
	return "something else";
}

/*==== YAML document -> node tree ====*/

/* The dotted key path of the node being converted, for messages. */
struct key_path {
	char text[KEY_PATH_MAX];
	size_t len;
};

/* key_path_push - append ".key" (or "key" at the top); returns the old
 * length for key_path_pop. */
static size_t
key_path_push(struct key_path *p, const char *key, bool is_index, size_t i)
{
	size_t old = p->len;
	char part[KEY_PATH_MAX];

	if (is_index) {
		snprintf(part, sizeof(part), "[%zu]", i);
		text_append(p->text, sizeof(p->text), part);
	} else {
		if (p->len > 0)
			text_append(p->text, sizeof(p->text), ".");
		text_append(p->text, sizeof(p->text), key);
	}
	p->len = strlen(p->text);
	return old;
}

/* key_path_pop - undo a key_path_push. */
static void
key_path_pop(struct key_path *p, size_t old)
{
	p->len = old;
	p->text[old] = '\0';
}

/* config_scalar_is_null - see config.h. */
bool
config_scalar_is_null(const char *s)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(s, nulls[i]) == 0)
			return true;
	return false;
}

/* scalar_is_null - YAML's plain null spellings, read as an empty value. */
static bool
scalar_is_null(const yaml_node_t *yn)
{
	return yn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    config_scalar_is_null((const char *)yn->data.scalar.value);
}

/* node_new - a node positioned at mark. */
static struct config_node *
node_new(struct loader *ld, enum config_node_type type, const yaml_mark_t *mark)
{
	struct config_node *n = xcalloc(1, sizeof(*n));

	n->type = type;
	n->file = ld->file;
	n->line = (unsigned)mark->line + 1;
	n->column = (unsigned)mark->column + 1;
	snprintf(n->where, sizeof(n->where), "%s:%u:%u", ld->file, n->line,
	    n->column);
	return n;
}

/* scalar_text - a scalar's text, or NULL (error recorded) when it holds a
 * NUL byte that C strings cannot carry. */
static char *
scalar_text(struct loader *ld, const yaml_node_t *yn, const char *key)
{
	const char *v = (const char *)yn->data.scalar.value;
	size_t len = yn->data.scalar.length;

	if (memchr(v, '\0', len) != NULL) {
		load_error_at(ld, (unsigned)yn->start_mark.line + 1,
		    (unsigned)yn->start_mark.column + 1, key,
		    "the value contains a NUL character");
		return NULL;
	}
	return xstrndup(v, len);
}

static struct config_node *node_convert(struct loader *ld,
    yaml_document_t *doc, yaml_node_t *yn, struct key_path *path,
    unsigned depth);

/* node_convert_map - a mapping's pairs; duplicate keys and non-scalar keys
 * are errors (the first definition is kept). */
static void
node_convert_map(struct loader *ld, yaml_document_t *doc, yaml_node_t *yn,
    struct config_node *n, struct key_path *path, unsigned depth)
{
	yaml_node_pair_t *pair;
	size_t cap = (size_t)(yn->data.mapping.pairs.top -
	    yn->data.mapping.pairs.start);

	n->keys = xcalloc(cap ? cap : 1, sizeof(*n->keys));
	n->items = xcalloc(cap ? cap : 1, sizeof(*n->items));
	for (pair = yn->data.mapping.pairs.start;
	    pair < yn->data.mapping.pairs.top; pair++) {
		yaml_node_t *kn = yaml_document_get_node(doc, pair->key);
		yaml_node_t *vn = yaml_document_get_node(doc, pair->value);
		struct config_node *child;
		size_t old;
		char *key;
		bool dup = false;

		if (kn == NULL || vn == NULL)
			continue;
		if (kn->type != YAML_SCALAR_NODE) {
			load_error_at(ld, (unsigned)kn->start_mark.line + 1,
			    (unsigned)kn->start_mark.column + 1, path->text,
			    "map keys must be plain words, found a %s",
			    kn->type == YAML_MAPPING_NODE ? "map" : "list");
			continue;
		}
		if ((key = scalar_text(ld, kn, path->text)) == NULL)
			continue;
		old = key_path_push(path, key, false, 0);
		for (size_t j = 0; j < n->count && !dup; j++) {
			unsigned line, column;

			if (strcmp(n->keys[j], key) != 0)
				continue;
			key_position(ld, n, j, &line, &column);
			load_error_at(ld, (unsigned)kn->start_mark.line + 1,
			    (unsigned)kn->start_mark.column + 1, path->text,
			    "duplicate key (first defined at line %u); remove "
			    "one of them", line);
			dup = true;
		}
		child = dup ? NULL : node_convert(ld, doc, vn, path, depth + 1);
		key_path_pop(path, old);
		if (child == NULL) {
			free(key);
			continue;
		}
		key_mark_add(ld, n, n->count, &kn->start_mark);
		n->keys[n->count] = key;
		n->items[n->count++] = child;
	}
}

/* node_convert - one libyaml node (and everything below it) into a
 * config_node; NULL (error recorded) when it cannot be represented. */
static struct config_node *
node_convert(struct loader *ld, yaml_document_t *doc, yaml_node_t *yn,
    struct key_path *path, unsigned depth)
{
	struct config_node *n;

	if (depth > NODE_DEPTH_MAX) {
		load_error_at(ld, (unsigned)yn->start_mark.line + 1,
		    (unsigned)yn->start_mark.column + 1, path->text,
		    "nested more than %d levels deep", NODE_DEPTH_MAX);
		return NULL;
	}
	switch (yn->type) {
	case YAML_SCALAR_NODE: {
		char *text = scalar_is_null(yn) ? xstrdup("") :
		    scalar_text(ld, yn, path->text);

		if (text == NULL)
			return NULL;
		n = node_new(ld, CONFIG_NODE_SCALAR, &yn->start_mark);
		n->scalar = text;
		return n;
	}
	case YAML_SEQUENCE_NODE: {
		size_t cap = (size_t)(yn->data.sequence.items.top -
		    yn->data.sequence.items.start);

		n = node_new(ld, CONFIG_NODE_LIST, &yn->start_mark);
		n->items = xcalloc(cap ? cap : 1, sizeof(*n->items));
		for (size_t i = 0; i < cap; i++) {
			yaml_node_t *item = yaml_document_get_node(doc,
			    yn->data.sequence.items.start[i]);
			size_t old;
			struct config_node *child;

			if (item == NULL)
				continue;
			old = key_path_push(path, NULL, true, i);
			child = node_convert(ld, doc, item, path, depth + 1);
			key_path_pop(path, old);
			if (child != NULL)
				n->items[n->count++] = child;
		}
		return n;
	}
	case YAML_MAPPING_NODE:
		n = node_new(ld, CONFIG_NODE_MAP, &yn->start_mark);
		node_convert_map(ld, doc, yn, n, path, depth);
		return n;
	case YAML_NO_NODE:
		break;
	}
	n = node_new(ld, CONFIG_NODE_SCALAR, &yn->start_mark);
	n->scalar = xstrdup("");
	return n;
}

/* offset_position - 1-based line and column of a byte offset in the file
 * (libyaml's reader errors only give the offset). */
static void
offset_position(const struct loader *ld, size_t offset, unsigned *line,
    unsigned *column)
{
	*line = 1;
	*column = 1;
	for (size_t i = 0; i < offset && i < ld->text_len; i++) {
		if (ld->text[i] == '\n') {
			(*line)++;
			*column = 1;
		} else {
			(*column)++;
		}
	}
}

/* yaml_syntax_error - libyaml's problem and context, at its mark. */
static void
yaml_syntax_error(struct loader *ld, const yaml_parser_t *p)
{
	unsigned line, column;
	char context[160] = "";

	if (p->error == YAML_MEMORY_ERROR) {
		load_error_at(ld, 0, 0, NULL, "out of memory parsing YAML");
		return;
	}
	if (p->error == YAML_READER_ERROR) {
		offset_position(ld, p->problem_offset, &line, &column);
		if (p->problem_value != -1)
			load_error_at(ld, line, column, NULL, "YAML error: %s "
			    "(byte 0x%02x); the file must be UTF-8 text",
			    p->problem ? p->problem : "unreadable input",
			    (unsigned)p->problem_value & 0xffu);
		else
			load_error_at(ld, line, column, NULL, "YAML error: %s",
			    p->problem ? p->problem : "unreadable input");
		return;
	}
	if (p->context != NULL)
		snprintf(context, sizeof(context), " (%s at line %u, column %u)",
		    p->context, (unsigned)p->context_mark.line + 1,
		    (unsigned)p->context_mark.column + 1);
	/* The most common cause of libyaml's most cryptic message. */
	if (p->problem_mark.index < ld->text_len &&
	    ld->text[p->problem_mark.index] == '\t')
		snprintf(context, sizeof(context), "; a tab was found: YAML "
		    "indentation must use spaces");
	load_error_at(ld, (unsigned)p->problem_mark.line + 1,
	    (unsigned)p->problem_mark.column + 1, NULL,
	    "YAML syntax error: %s%s", p->problem ? p->problem : "unknown",
	    context);
}

/* yaml_refuse_aliases - report every alias (*name); returns how many.
 * Aliases would let a few lines expand into gigabytes and make the
 * document a graph instead of a tree. */
static size_t
yaml_refuse_aliases(struct loader *ld)
{
	yaml_parser_t p;
	yaml_token_t tok;
	size_t found = 0;

	if (!yaml_parser_initialize(&p))
		return 0;
	yaml_parser_set_input_string(&p, (const unsigned char *)ld->text,
	    ld->text_len);
	for (;;) {
		yaml_token_type_t type;

		if (!yaml_parser_scan(&p, &tok))
			break;
		type = tok.type;
		if (type == YAML_ALIAS_TOKEN) {
			char shown[VALUE_SHOW_MAX];
			const char *name = (const char *)tok.data.alias.value;

			load_error_at(ld, (unsigned)tok.start_mark.line + 1,
			    (unsigned)tok.start_mark.column + 1, NULL,
			    "YAML aliases (*%s) are not supported; write the "
			    "value out in full",
			    show(shown, sizeof(shown), name));
			found++;
		}
		yaml_token_delete(&tok);
		if (type == YAML_STREAM_END_TOKEN)
			break;
	}
	yaml_parser_delete(&p);
	return found;
}

/* yaml_to_tree - parse the file's text; the root node, or NULL with the
 * reasons recorded. */
static struct config_node *
yaml_to_tree(struct loader *ld)
{
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	yaml_node_t *yroot, *yextra;
	struct config_node *root = NULL;
	struct key_path path = { "", 0 };

	if (!yaml_parser_initialize(&parser)) {
		load_error_at(ld, 0, 0, NULL, "cannot initialize the YAML parser");
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)ld->text,
	    ld->text_len);
	if (!yaml_parser_load(&parser, &doc)) {
		yaml_syntax_error(ld, &parser);
		yaml_parser_delete(&parser);
		return NULL;
	}
	yroot = yaml_document_get_root_node(&doc);
	if (yroot == NULL) {
		load_error_at(ld, 1, 1, NULL, "the file is empty; a configuration "
		    "needs at least a server section with a listen address");
		goto done;
	}
	/* A second document would be silently ignored by yaml_parser_load:
	 * refuse it, and catch syntax errors that follow the first one. */
	if (!yaml_parser_load(&parser, &extra)) {
		yaml_syntax_error(ld, &parser);
		goto done;
	}
	yextra = yaml_document_get_root_node(&extra);
	if (yextra != NULL)
		load_error_at(ld, (unsigned)yextra->start_mark.line + 1,
		    (unsigned)yextra->start_mark.column + 1, NULL,
		    "a second YAML document ('---') is not allowed; the "
		    "configuration is one document");
	yaml_document_delete(&extra);
	if (yextra != NULL || yaml_refuse_aliases(ld) > 0)
		goto done;
	root = node_convert(ld, &doc, yroot, &path, 0);
done:
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return root;
}

/*==== Value conversion ====*/

/* config_path_resolve - value made absolute against dir.  Leading "../" are
 * applied to dir (which is canonical, so this is exact); "." and empty
 * components are dropped; later ".." are kept for the kernel to resolve,
 * because a symlink may sit before them. */
int
config_path_resolve(const char *dir, const char *value, char *out,
    size_t size, struct error *err)
{
	char buf[CONFIG_PATH_MAX * 2];
	bool leading = true;
	const char *p = value;

	if (value[0] == '\0')
		return error_set(err, "a path is required, found an empty value");
	if (value[0] == '/') {
		if (str_copy(out, value, size) >= size)
			return error_set(err, "path is too long (max %zu bytes)",
			    size - 1);
		return 0;
	}
	str_copy(buf, dir, sizeof(buf));
	while (*p != '\0') {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* skip */
		} else if (leading && n == 2 && p[0] == '.' && p[1] == '.') {
			char *slash = strrchr(buf, '/');

			if (slash != NULL && slash != buf)
				*slash = '\0';
			else
				str_copy(buf, "/", sizeof(buf));
		} else {
			size_t len = strlen(buf);

			leading = false;
			if (len + n + 2 > sizeof(buf))
				return error_set(err, "path is too long (max %zu "
				    "bytes)", size - 1);
			if (len > 1 || buf[0] != '/')
				buf[len++] = '/';
			memcpy(buf + len, p, n);
			buf[len + n] = '\0';
		}
		p += n;
		if (*p == '/')
			p++;
	}
	if (str_copy(out, buf, size) >= size)
		return error_set(err, "path is too long once made absolute "
		    "(%zu bytes, max %zu)", strlen(buf), size - 1);
	return 0;
}

/* host_is_ip - IPv4 (family 4) or IPv6 (family 6) literal? */
static bool
host_is_ip(const char *host, int family)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(family == 6 ? AF_INET6 : AF_INET, host, buf) == 1;
}

/* listen_address_parse - "127.0.0.1:25", "[::1]:25", "[::]:25", "*:25"
 * into host ("*" becomes "0.0.0.0") and port. */
static int
listen_address_parse(const char *text, char *host, size_t host_size,
    unsigned *port, struct error *err)
{
	static const char expected[] = "expected HOST:PORT such as "
	    "127.0.0.1:25, [::1]:25, [::]:25 or *:25";
	char shown[VALUE_SHOW_MAX], h[128];
	const char *colon, *port_text;
	size_t hlen;
	int64_t p;
	struct error perr;

	show(shown, sizeof(shown), text);
	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (close == NULL)
			return error_set(err, "bad address '%s': missing ']' "
			    "(%s)", shown, expected);
		hlen = (size_t)(close - text - 1);
		if (hlen >= sizeof(h))
			return error_set(err, "bad address '%s': host too long",
			    shown);
		memcpy(h, text + 1, hlen);
		h[hlen] = '\0';
		if (close[1] != ':')
			return error_set(err, "bad address '%s': missing ':PORT' "
			    "after ']' (%s)", shown, expected);
		port_text = close + 2;
		if (!host_is_ip(h, 6))
			return error_set(err, "bad address '%s': '%s' is not an "
			    "IPv6 address (%s)", shown, h, expected);
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL)
			return error_set(err, "bad address '%s': missing ':PORT' "
			    "(%s)", shown, expected);
		hlen = (size_t)(colon - text);
		if (hlen >= sizeof(h))
			return error_set(err, "bad address '%s': host too long",
			    shown);
		memcpy(h, text, hlen);
		h[hlen] = '\0';
		port_text = colon + 1;
		if (strchr(h, ':') != NULL)
			return error_set(err, "bad address '%s': write IPv6 "
			    "addresses in brackets, e.g. [::1]:25", shown);
		if (strcmp(h, "*") == 0)
			str_copy(h, "0.0.0.0", sizeof(h));
		else if (h[0] == '\0')
			return error_set(err, "bad address '%s': the host is "
			    "missing (%s)", shown, expected);
		else if (!host_is_ip(h, 4))
			return error_set(err, "bad address '%s': host must be an "
			    "IP address or * (host names are not resolved; %s)",
			    shown, expected);
	}
	if (port_text[0] == '\0')
		return error_set(err, "bad address '%s': the port is missing "
		    "(%s)", shown, expected);
	if (config_parse_int(port_text, 1, 65535, &p, &perr) < 0)
		return error_set(err, "bad address '%s': port '%.20s' is not "
		    "a number from 1 to 65535", shown, port_text);
	if (str_copy(host, h, host_size) >= host_size)
		return error_set(err, "bad address '%s': host too long", shown);
	*port = (unsigned)p;
	return 0;
}

/* default_hostname - gethostname(), "localhost" when that fails. */
static void
default_hostname(const struct config *cfg, char *out, size_t size)
{
	if (gethostname(out, size) != 0 || out[0] == '\0')
		str_copy(out, "localhost", size);
	out[size - 1] = '\0';
}

/* default_policyd_socket - RUNTIME_DIR/policyd.sock. */
static void
default_policyd_socket(const struct config *cfg, char *out, size_t size)
{
	str_copy(out, cfg->server.runtime_dir, size);
	text_append(out, size, strcmp(out, "/") ? "/policyd.sock" :
	    "policyd.sock");
}

/* check_hostname - letters, digits, '-', '_' and '.'. */
static int
check_hostname(const struct config *cfg, char *value, size_t size,
    struct error *err)
{
	char shown[VALUE_SHOW_MAX];

	if (strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-_.") != strlen(value) || value[0] == '.' ||
	    value[0] == '-')
		return error_set(err, "'%s' is not a host name (letters, "
		    "digits, '-' and '.' only)", show(shown, sizeof(shown), value));
	return 0;
}

/* check_user - a plausible Unix user name. */
static int
check_user(const struct config *cfg, char *value, size_t size,
    struct error *err)
{
	char shown[VALUE_SHOW_MAX];

	if (strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-_.") != strlen(value) || value[0] == '-' ||
	    strlen(value) > 32)
		return error_set(err, "'%s' is not a user name (up to 32 "
		    "letters, digits, '_', '-' or '.')",
		    show(shown, sizeof(shown), value));
	return 0;
}

/* check_hostport - "" (off) or a listen address. */
static int
check_hostport(const struct config *cfg, char *value, size_t size,
    struct error *err)
{
	char host[128];
	unsigned port;

	if (value[0] == '\0')
		return 0;
	return listen_address_parse(value, host, sizeof(host), &port, err);
}

/* endpoint_derive - the parsed form of a listen setting its check
 * accepted ("" stays all-empty): consumers never parse the text again. */
static void
endpoint_derive(const char *text, struct config_endpoint *ep)
{
	struct error err;

	memset(ep, 0, sizeof(*ep));
	if (strncmp(text, CONFIG_UNIX_PREFIX, CONFIG_UNIX_PREFIX_LEN) == 0)
		str_copy(ep->path, text + CONFIG_UNIX_PREFIX_LEN,
		    sizeof(ep->path));
	else if (text[0] != '\0')          /* checked by its key's rule */
		(void)listen_address_parse(text, ep->host, sizeof(ep->host),
		    &ep->port, &err);
}

/* check_postfix_listen - "" (off), HOST:PORT, or unix:PATH (PATH made
 * absolute and stored back as "unix:/abs/path"). */
static int
check_postfix_listen(const struct config *cfg, char *value, size_t size,
    struct error *err)
{
	char path[CONFIG_PATH_MAX];
	struct sockaddr_un sun;

	if (strncmp(value, CONFIG_UNIX_PREFIX, CONFIG_UNIX_PREFIX_LEN) != 0)
		return check_hostport(cfg, value, size, err);
	if (config_path_resolve(cfg->dir, value + CONFIG_UNIX_PREFIX_LEN,
	    path, sizeof(path), err) < 0)
		return error_prefix(err, "unix:PATH");
	if (strlen(path) >= sizeof(sun.sun_path))
		return error_set(err, "socket path '%.200s' is %zu bytes; Unix "
		    "socket paths are limited to %zu", path, strlen(path),
		    sizeof(sun.sun_path) - 1);
	if (CONFIG_UNIX_PREFIX_LEN + strlen(path) >= size)
		return error_set(err, "unix:PATH is too long once made absolute "
		    "(max %zu bytes)", size - 1);
	str_copy(value, CONFIG_UNIX_PREFIX, size);
	text_append(value, size, path);
	return 0;
}

/* check_key_prefix - counters.redis.key_prefix: printable, no spaces
 * (it starts every key and every SCAN pattern). */
static int
check_key_prefix(const struct config *cfg, char *value, size_t size,
    struct error *err)
{
	for (const char *p = value; *p != '\0'; p++)
		if (*p <= ' ' || *p == 0x7f)
			return error_set(err, "the key prefix may not contain "
			    "spaces or control characters");
	return 0;
}

/* setting_field - where s's value lives in cfg. */
static void *
setting_field(struct config *cfg, const struct setting *s)
{
	return (char *)cfg + s->offset;
}

/* setting_store_uint - store v into an unsigned or uint64_t field (the
 * table's ranges guarantee it fits). */
static void
setting_store_uint(struct config *cfg, const struct setting *s, uint64_t v)
{
	if (s->size == sizeof(uint64_t)) {
		memcpy(setting_field(cfg, s), &v, sizeof(v));
	} else {
		unsigned u = (unsigned)v;

		memcpy(setting_field(cfg, s), &u, sizeof(u));
	}
}

/* setting_load_uint - read back an unsigned or uint64_t field. */
static uint64_t
setting_load_uint(const struct config *cfg, const struct setting *s)
{
	const char *p = (const char *)cfg + s->offset;

	if (s->size == sizeof(uint64_t)) {
		uint64_t v;

		memcpy(&v, p, sizeof(v));
		return v;
	} else {
		unsigned u;

		memcpy(&u, p, sizeof(u));
		return u;
	}
}

/* range_error - "3GB is out of range (min 1KB, max 2GB)" in s's units. */
static int
range_error(const struct setting *s, uint64_t v, struct error *err)
{
	char a[32], lo[32], hi[32];

	if (s->type == SET_SIZE) {
		format_size(v, a, sizeof(a));
		format_size((uint64_t)s->min, lo, sizeof(lo));
		format_size((uint64_t)s->max, hi, sizeof(hi));
	} else if (s->type == SET_MILLIS) {
		snprintf(a, sizeof(a), "%" PRIu64 "ms", v);
		snprintf(lo, sizeof(lo), "%" PRId64 "ms", s->min);
		snprintf(hi, sizeof(hi), "%" PRId64 "ms", s->max);
	} else {
		format_duration(v, a, sizeof(a));
		format_duration((uint64_t)s->min, lo, sizeof(lo));
		format_duration((uint64_t)s->max, hi, sizeof(hi));
	}
	return error_set(err, "%s is out of range (min %s, max %s)", a, lo, hi);
}

/* enum_parse - the index of text in values (case-insensitive). */
static int
enum_parse(const char *text, const char *const *values, size_t *index,
    struct error *err)
{
	char shown[VALUE_SHOW_MAX], allowed[256];
	size_t n = 0;

	for (; values[n] != NULL; n++) {
		if (strcasecmp(text, values[n]) == 0) {
			*index = n;
			return 0;
		}
	}
	join_names(allowed, sizeof(allowed), values, n);
	return error_set(err, "'%s' is not an allowed value (allowed: %s)",
	    show(shown, sizeof(shown), text), allowed);
}

/* off_hint - -1, telling that s also takes "off". */
static int
off_hint(const struct setting *s, struct error *err)
{
	if (s->flags & SETTING_OFF_OK)
		text_append(err->text, sizeof(err->text), "; off: none");
	return -1;
}

/* setting_convert - parse text as s's type and store it in cfg. */
static int
setting_convert(struct config *cfg, const struct setting *s,
    const char *text, struct error *err)
{
	char buf[CONFIG_PATH_MAX + 8];
	uint64_t u = 0;
	int64_t i;
	size_t index = 0;
	bool b;

	switch (s->type) {
	case SET_STRING:
		if (has_control(text))
			return error_set(err, "the value contains a control "
			    "character (tab, newline...)");
		if (str_copy(buf, text, sizeof(buf)) >= s->size)
			return error_set(err, "the value is too long (%zu bytes, "
			    "max %zu)", strlen(text), s->size - 1);
		if (text[0] != '\0' && s->check != NULL &&
		    s->check(cfg, buf, s->size, err) < 0)
			return -1;
		str_copy(setting_field(cfg, s), buf, s->size);
		return 0;
	case SET_PATH:
		if (text[0] == '\0') {
			str_copy(setting_field(cfg, s), "", s->size);
			return 0;
		}
		if (has_control(text))
			return error_set(err, "the path contains a control "
			    "character (tab, newline...)");
		return config_path_resolve(cfg->dir, text,
		    setting_field(cfg, s), s->size, err);
	case SET_INT:
		if (config_parse_int(text, s->min, s->max, &i, err) < 0)
			return -1;
		setting_store_uint(cfg, s, (uint64_t)i);
		return 0;
	case SET_BOOL:
		if (config_parse_bool(text, &b, err) < 0)
			return -1;
		memcpy(setting_field(cfg, s), &b, sizeof(b));
		return 0;
	case SET_SIZE:
		if ((s->flags & SETTING_OFF_OK) && strcasecmp(text, "off") == 0)
			goto ranged;
		if (config_parse_size(text, &u, err) < 0)
			return off_hint(s, err);
		goto ranged;
	case SET_MILLIS:
		/* A bare number is milliseconds here (the key says so). */
		if (text[0] >= '0' && text[0] <= '9' &&
		    strspn(text, "0123456789") == strlen(text)) {
			if (config_parse_int(text, 0, INT64_MAX, &i, err) < 0)
				return -1;
			u = (uint64_t)i;
			goto ranged;
		}
		/* FALLTHROUGH */
	case SET_DURATION:
		if ((s->flags & SETTING_OFF_OK) && strcasecmp(text, "off") == 0)
			goto ranged;
		if (config_parse_duration_ms(text, &u, err) < 0)
			return off_hint(s, err);
		goto ranged;
	case SET_RELAYHOST:
		if (has_control(text))
			return error_set(err, "the value contains a control "
			    "character (tab, newline...)");
		return route_relayhost_parse(text, cfg->delivery.smtp_port,
		    setting_field(cfg, s), err);
	case SET_ENUM:
		if (enum_parse(text, s->values, &index, err) < 0)
			return -1;
		if (s->store == STORE_INDEX) {
			int v = s->codes != NULL ? s->codes[index] : (int)index;

			memcpy(setting_field(cfg, s), &v, sizeof(v));
		}
		return 0;
	case SET_LISTEN:
	case SET_PLUGINS:
	case SET_CIDRS:
	case SET_ROUTES:
	case SET_RESOLVERS:
	case SET_MILTERS:
		break;
	}
	return error_set(err, "internal error: no converter");
ranged:
	if (u < (uint64_t)s->min || u > (uint64_t)s->max)
		return range_error(s, u, err);
	setting_store_uint(cfg, s, u);
	return 0;
}

/* setting_default - store s's default value. */
static void
setting_default(struct loader *ld, const struct setting *s)
{
	char buf[CONFIG_PATH_MAX];
	struct error err;

	if (s->store == STORE_LIST)
		return;
	if (s->def_fn != NULL)
		s->def_fn(ld->cfg, buf, sizeof(buf));
	else
		str_copy(buf, s->def != NULL ? s->def : "", sizeof(buf));
	if (setting_convert(ld->cfg, s, buf, &err) < 0)
		load_error(ld, NULL, s->name, "bad default: %s", err.text);
}

/*==== Lists: server.listen and plugins ====*/

/* check_keys - report every key of map not in known[]. */
static void
check_keys(struct loader *ld, const struct config_node *map,
    const char *prefix, const char *const *known, size_t count)
{
	for (size_t i = 0; i < map->count; i++) {
		char key[KEY_PATH_MAX], list[256];
		const char *near;
		unsigned line, column;
		bool ok = false;

		for (size_t j = 0; j < count && !ok; j++)
			ok = strcmp(map->keys[i], known[j]) == 0;
		if (ok)
			continue;
		key_join(key, sizeof(key), prefix, map->keys[i]);
		key_position(ld, map, i, &line, &column);
		near = config_nearest(map->keys[i], known, count);
		if (near != NULL) {
			load_error_at(ld, line, column, key, "unknown key; did "
			    "you mean '%s.%s'?", prefix, near);
		} else {
			join_names(list, sizeof(list), known, count);
			load_error_at(ld, line, column, key, "unknown key "
			    "(known keys here: %s)", list);
		}
	}
}

/* scalar_child - map[key] when it is a non-empty scalar; NULL (error
 * recorded) when it has another type or is empty, or when absent. */
static const struct config_node *
scalar_child(struct loader *ld, const struct config_node *map,
    const char *key, const char *keyname, bool *bad)
{
	const struct config_node *n = config_node_get(map, key);

	*bad = false;
	if (n == NULL)
		return NULL;
	if (n->type != CONFIG_NODE_SCALAR) {
		load_error(ld, n, keyname, "expected a single value (scalar), "
		    "found %s", node_type_name(n));
		*bad = true;
		return NULL;
	}
	if (n->scalar[0] == '\0') {
		load_error(ld, n, keyname, "a value is required, found an "
		    "empty value");
		*bad = true;
		return NULL;
	}
	return n;
}

_Static_assert(CONFIG_UNIX_PATH_MAX ==
    sizeof(((struct sockaddr_un *)0)->sun_path), "CONFIG_UNIX_PATH_MAX");

/* listen_unix_path - the PATH of a local listener's "unix:PATH", made
 * absolute against the config's directory, within a socket path's
 * length. */
static int
listen_unix_path(const struct config *cfg, const char *value, char *path,
    size_t size, struct error *err)
{
	char abs[CONFIG_PATH_MAX];

	if (value[0] == '\0')
		return error_set(err, "the path after 'unix:' is missing");
	if (config_path_resolve(cfg->dir, value, abs, sizeof(abs), err) < 0)
		return error_prefix(err, "unix:PATH");
	if (strlen(abs) >= size)
		return error_set(err, "socket path '%.200s' is %zu bytes; Unix "
		    "socket paths are limited to %zu", abs, strlen(abs), size - 1);
	str_copy(path, abs, size);
	return 0;
}

/* listen_socket_mode - an octal file mode ("0666", "660") up to 0777. */
static int
listen_socket_mode(const char *text, unsigned *mode, struct error *err)
{
	char shown[VALUE_SHOW_MAX];
	size_t n = strlen(text);

	if (n == 0 || n > 4 || strspn(text, "01234567") != n ||
	    strtoul(text, NULL, 8) > 0777)
		return error_set(err, "'%s' is not a file mode (octal, up to "
		    "0777, e.g. \"0660\")", show(shown, sizeof(shown), text));
	*mode = (unsigned)strtoul(text, NULL, 8);
	return 0;
}

/* listen_address_load - the entry's address: HOST:PORT, or unix:PATH for
 * (and only for) mode local.  0, or -1 (reported). */
static int
listen_address_load(struct loader *ld, const struct config_node *entry,
    const char *key, struct config_listen *l)
{
	const struct config_node *addr;
	struct error err;
	bool bad, is_unix;

	addr = scalar_child(ld, entry, "address", key, &bad);
	if (addr == NULL && !bad) {
		load_error(ld, entry, key, "missing; each listen entry needs an "
		    "address such as \"127.0.0.1:25\" or \"[::]:25\"");
		return -1;
	}
	if (addr == NULL)
		return -1;
	if (str_copy(l->address, addr->scalar, sizeof(l->address)) >=
	    sizeof(l->address)) {
		load_error(ld, addr, key, "the address is too long");
		return -1;
	}
	is_unix = strncmp(addr->scalar, CONFIG_UNIX_PREFIX,
	    CONFIG_UNIX_PREFIX_LEN) == 0;
	if (is_unix && l->mode != CONFIG_MODE_LOCAL) {
		load_error(ld, addr, key, "a unix: address is for mode local "
		    "(elemta-sendmail's socket); mode %s listens on HOST:PORT",
		    config_listen_mode_name(l->mode));
		return -1;
	}
	if (!is_unix && l->mode == CONFIG_MODE_LOCAL) {
		load_error(ld, addr, key, "mode local listens on a Unix socket: "
		    "write address: \"unix:/run/elemta/submit.sock\"");
		return -1;
	}
	if (is_unix ? listen_unix_path(ld->cfg, addr->scalar +
	    CONFIG_UNIX_PREFIX_LEN, l->path, sizeof(l->path), &err) :
	    listen_address_parse(addr->scalar, l->host, sizeof(l->host),
	    &l->port, &err)) {
		load_error(ld, addr, key, "%s", err.text);
		return -1;
	}
	return 0;
}

/* listen_socket_load - a local listener's socket_mode and socket_group
 * (refused on other modes, where there is no socket file). */
static int
listen_socket_load(struct loader *ld, const struct config_node *entry,
    const char *prefix, struct config_listen *l)
{
	static const char *const keys[] = { "socket_mode", "socket_group" };
	struct error err;
	int rc = 0;

	l->socket_mode = CONFIG_LOCAL_SOCKET_MODE;
	for (size_t i = 0; i < 2; i++) {
		char key[96];
		const struct config_node *n;
		bool bad;

		snprintf(key, sizeof(key), "%s.%s", prefix, keys[i]);
		n = scalar_child(ld, entry, keys[i], key, &bad);
		if (n == NULL) {
			rc |= bad ? -1 : 0;
			continue;
		}
		if (l->mode != CONFIG_MODE_LOCAL) {
			load_error(ld, n, key, "only a mode local listener has a "
			    "socket file");
			rc = -1;
		} else if (i == 0 ? listen_socket_mode(n->scalar,
		    &l->socket_mode, &err) : check_user(ld->cfg,
		    n->scalar, 0, &err)) {
			load_error(ld, n, key, "%s", err.text);
			rc = -1;
		} else if (i == 1) {
			str_copy(l->socket_group, n->scalar,
			    sizeof(l->socket_group));
		}
	}
	return rc;
}

/* listen_entry_load - one {address, mode, socket_mode, socket_group} map
 * into l. */
static int
listen_entry_load(struct loader *ld, const struct config_node *entry,
    size_t index, struct config_listen *l)
{
	static const char *const known[] = { "address", "mode", "socket_mode",
	    "socket_group" };
	char prefix[64], key[96];
	const struct config_node *mode;
	struct error err;
	size_t mode_index = 0;
	bool bad;
	int rc = 0;

	snprintf(prefix, sizeof(prefix), "server.listen[%zu]", index);
	if (entry->type != CONFIG_NODE_MAP) {
		load_error(ld, entry, prefix, "expected a map like {address: "
		    "\"127.0.0.1:25\", mode: smtp}, found %s",
		    node_type_name(entry));
		return -1;
	}
	check_keys(ld, entry, prefix, known, 4);
	snprintf(key, sizeof(key), "%s.mode", prefix);
	mode = scalar_child(ld, entry, "mode", key, &bad);
	if (bad) {
		rc = -1;
	} else if (mode != NULL &&
	    enum_parse(mode->scalar, listen_modes, &mode_index, &err) < 0) {
		load_error(ld, mode, key, "%s", err.text);
		rc = -1;
	}
	l->mode = (enum config_listen_mode)mode_index;
	snprintf(key, sizeof(key), "%s.address", prefix);
	if (rc == 0 && listen_address_load(ld, entry, key, l) < 0)
		rc = -1;
	if (listen_socket_load(ld, entry, prefix, l) < 0)
		rc = -1;
	return rc;
}

/* listen_load - server.listen: at least one entry, no duplicates. */
static void
listen_load(struct loader *ld, const struct setting *s,
    const struct config_node *root, const struct config_node *node)
{
	struct config *cfg = ld->cfg;
	const struct config_node *server = config_node_get(root, "server");
	unsigned line = root->line, column = root->column;

	cfg->server.listen_count = 0;
	if (node != NULL && node->type != CONFIG_NODE_LIST &&
	    !(node->type == CONFIG_NODE_SCALAR && node->scalar[0] == '\0')) {
		load_error(ld, node, s->name, "expected a list of {address, "
		    "mode} maps, found %s", node_type_name(node));
		return;
	}
	if (node == NULL || node->count == 0) {
		if (server != NULL && server->type != CONFIG_NODE_MAP &&
		    !(server->type == CONFIG_NODE_SCALAR &&
		    server->scalar[0] == '\0'))
			return; /* the section itself is wrong: said already */
		if (server != NULL)
			key_position_named(ld, root, "server", &line, &column);
		if (node != NULL)
			key_position_named(ld, server, "listen", &line, &column);
		load_error_at(ld, line, column, s->name, "missing; at least one "
		    "listen address is required, e.g. listen: [{address: "
		    "\"127.0.0.1:25\", mode: smtp}]");
		return;
	}
	for (size_t i = 0; i < node->count; i++) {
		struct config_listen l;
		const struct config_node *entry = node->items[i];

		if (i == CONFIG_LISTEN_MAX) {
			load_error(ld, entry, s->name, "too many listen addresses "
			    "(max %d)", CONFIG_LISTEN_MAX);
			break;
		}
		memset(&l, 0, sizeof(l));
		if (listen_entry_load(ld, entry, i, &l) < 0)
			continue;
		for (size_t j = 0; j < cfg->server.listen_count; j++) {
			const struct config_listen *o = &cfg->server.listen[j];
			char key[64];

			if (o->port != l.port || strcmp(o->host, l.host) != 0 ||
			    strcmp(o->path, l.path) != 0)
				continue;
			snprintf(key, sizeof(key), "server.listen[%zu].address", i);
			if (l.path[0] != '\0')
				load_error(ld, config_node_get(entry, "address"),
				    key, "duplicate listen address unix:%s (also in "
				    "server.listen[%zu])", l.path, j);
			else
				load_error(ld, config_node_get(entry, "address"),
				    key, "duplicate listen address %s:%u (also in "
				    "server.listen[%zu])", l.host, l.port, j);
			goto next;
		}
		cfg->server.listen[cfg->server.listen_count++] = l;
next:
		;
	}
}

/* plugin_name_valid - [a-z0-9_-]{1,63}. */
static bool
plugin_name_valid(const char *name)
{
	size_t n = strlen(name);

	return n >= 1 && n < CONFIG_NAME_MAX &&
	    strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* plugin_entry_load - one {name, path, enabled, config} map into p;
 * returns -1 when the entry cannot be used. */
static int
plugin_entry_load(struct loader *ld, const struct config_node *entry,
    size_t index, struct config_plugin *p)
{
	static const char *const known[] = { "name", "path", "enabled", "config" };
	char prefix[64], key[96], shown[VALUE_SHOW_MAX];
	const struct config_node *n;
	struct error err;
	bool bad;
	int rc = 0;

	snprintf(prefix, sizeof(prefix), "plugins[%zu]", index);
	if (entry->type != CONFIG_NODE_MAP) {
		load_error(ld, entry, prefix, "expected a map like {name: "
		    "policy, enabled: true, config: {...}}, found %s",
		    node_type_name(entry));
		return -1;
	}
	check_keys(ld, entry, prefix, known, 4);
	str_copy(p->where, entry->where, sizeof(p->where));

	snprintf(key, sizeof(key), "%s.name", prefix);
	n = scalar_child(ld, entry, "name", key, &bad);
	if (n == NULL) {
		if (!bad)
			load_error(ld, entry, key, "missing; every plugin needs a "
			    "name (e.g. name: policy)");
		rc = -1;
	} else if (!plugin_name_valid(n->scalar)) {
		load_error(ld, n, key, "invalid plugin name '%s' (use 1 to %d "
		    "characters a-z, 0-9, '_' or '-')",
		    show(shown, sizeof(shown), n->scalar), CONFIG_NAME_MAX - 1);
		rc = -1;
	} else {
		str_copy(p->name, n->scalar, sizeof(p->name));
	}

	snprintf(key, sizeof(key), "%s.path", prefix);
	n = scalar_child(ld, entry, "path", key, &bad);
	p->path[0] = '\0';
	if (bad) {
		rc = -1;
	} else if (n != NULL && has_control(n->scalar)) {
		load_error(ld, n, key, "the path contains a control character "
		    "(tab, newline...)");
		rc = -1;
	} else if (n != NULL && config_path_resolve(ld->cfg->dir, n->scalar,
	    p->path, sizeof(p->path), &err) < 0) {
		load_error(ld, n, key, "%s", err.text);
		rc = -1;
	}

	snprintf(key, sizeof(key), "%s.enabled", prefix);
	n = scalar_child(ld, entry, "enabled", key, &bad);
	p->enabled = true;
	if (bad) {
		rc = -1;
	} else if (n != NULL && config_parse_bool(n->scalar, &p->enabled,
	    &err) < 0) {
		load_error(ld, n, key, "%s", err.text);
		rc = -1;
	}

	snprintf(key, sizeof(key), "%s.config", prefix);
	n = config_node_get(entry, "config");
	p->config = NULL;
	if (n != NULL && n->type == CONFIG_NODE_MAP) {
		p->config = n;
	} else if (n != NULL && !(n->type == CONFIG_NODE_SCALAR &&
	    n->scalar[0] == '\0')) {
		load_error(ld, n, key, "expected a map of the plugin's "
		    "settings, found %s", node_type_name(n));
		rc = -1;
	}
	return rc;
}

/* plugins_load - the plugins list, in order; names are unique. */
static void
plugins_load(struct loader *ld, const struct setting *s,
    const struct config_node *node)
{
	struct config *cfg = ld->cfg;

	cfg->plugin_count = 0;
	if (node == NULL || (node->type == CONFIG_NODE_SCALAR &&
	    node->scalar[0] == '\0'))
		return;
	if (node->type != CONFIG_NODE_LIST) {
		load_error(ld, node, s->name, "expected a list of {name, path, "
		    "enabled, config} maps, found %s", node_type_name(node));
		return;
	}
	for (size_t i = 0; i < node->count; i++) {
		struct config_plugin *p;
		const struct config_node *entry = node->items[i];
		bool dup = false;

		if (cfg->plugin_count == CONFIG_PLUGINS_MAX) {
			load_error(ld, entry, s->name, "too many plugins (max %d)",
			    CONFIG_PLUGINS_MAX);
			break;
		}
		p = &cfg->plugins[cfg->plugin_count];
		memset(p, 0, sizeof(*p));
		if (plugin_entry_load(ld, entry, i, p) < 0)
			continue;
		for (size_t j = 0; j < cfg->plugin_count && !dup; j++) {
			char key[64];

			if (strcmp(cfg->plugins[j].name, p->name) != 0)
				continue;
			snprintf(key, sizeof(key), "plugins[%zu].name", i);
			load_error(ld, config_node_get(entry, "name"), key,
			    "duplicate plugin name '%s' (first defined at %s); "
			    "each plugin may appear once", p->name,
			    cfg->plugins[j].where);
			dup = true;
		}
		if (!dup)
			cfg->plugin_count++;
	}
}

/*==== milters ====*/

/* milter_address_parse - "unix:/path" (relative: to the config file) or
 * "inet:host:port" (numeric host) into m->endpoint; m->address keeps the
 * text with the path made absolute. */
static int
milter_address_parse(struct loader *ld, const char *text,
    struct config_milter *m, struct error *err)
{
	char value[sizeof(m->address)];

	if (strlen(text) >= sizeof(value))
		return error_set(err, "address too long");
	str_copy(value, text, sizeof(value));
	if (strncmp(value, CONFIG_UNIX_PREFIX, CONFIG_UNIX_PREFIX_LEN) == 0) {
		if (check_postfix_listen(ld->cfg, value, sizeof(value), err) < 0)
			return -1;
	} else if (strncmp(value, "inet:", 5) == 0) {
		memmove(value, value + 5, strlen(value + 5) + 1);
		if (value[0] == '\0' ||
		    check_hostport(ld->cfg, value, sizeof(value), err) < 0)
			return error_prefix(err, "inet:HOST:PORT");
	} else {
		return error_set(err, "expected unix:/path or inet:host:port, "
		    "found '%.100s'", text);
	}
	endpoint_derive(value, &m->endpoint);
	if (m->endpoint.path[0] != '\0')
		str_copy(m->address, value, sizeof(m->address));
	else
		snprintf(m->address, sizeof(m->address), "inet:%.*s",
		    (int)(sizeof(m->address) - 6), value);
	return 0;
}

/* milter_modes_load - the listener modes a milter serves. */
static int
milter_modes_load(struct loader *ld, const struct config_node *entry,
    const char *prefix, struct config_milter *m)
{
	const struct config_node *n = config_node_get(entry, "modes");
	char key[96];
	size_t idx;
	struct error err;

	snprintf(key, sizeof(key), "%s.modes", prefix);
	if (n == NULL || n->type != CONFIG_NODE_LIST || n->count == 0) {
		load_error(ld, n != NULL ? n : entry, key, "expected a "
		    "non-empty list of listener modes such as [submission] "
		    "(smtp, submission, smtps)");
		return -1;
	}
	for (size_t i = 0; i < n->count; i++) {
		const struct config_node *it = n->items[i];

		if (it->type != CONFIG_NODE_SCALAR ||
		    enum_parse(it->scalar, listen_modes, &idx, &err) < 0) {
			load_error(ld, it, key, "expected smtp, submission or "
			    "smtps");
			return -1;
		}
		m->modes |= 1u << idx;
	}
	return 0;
}

/* milter_entry_load - one {name, address, modes, timeout, fail_mode}. */
static int
milter_entry_load(struct loader *ld, const struct config_node *entry,
    size_t index, struct config_milter *m)
{
	static const char *const known[] = { "name", "address", "modes",
	    "timeout", "fail_mode" };
	static const char *const fail_modes[] = { "tempfail", "accept", NULL };
	char prefix[64], key[96];
	const struct config_node *n;
	struct error err;
	size_t idx;
	bool bad;
	int rc = 0;

	snprintf(prefix, sizeof(prefix), "milters[%zu]", index);
	if (entry->type != CONFIG_NODE_MAP) {
		load_error(ld, entry, prefix, "expected a map like {name: "
		    "opendkim, address: \"unix:/run/opendkim.sock\", modes: "
		    "[submission]}, found %s", node_type_name(entry));
		return -1;
	}
	check_keys(ld, entry, prefix, known, 5);
	str_copy(m->where, entry->where, sizeof(m->where));
	snprintf(key, sizeof(key), "%s.name", prefix);
	n = scalar_child(ld, entry, "name", key, &bad);
	if (n == NULL || !plugin_name_valid(n->scalar)) {
		if (!bad)
			load_error(ld, n != NULL ? n : entry, key, "missing or "
			    "invalid (use 1 to %d characters a-z, 0-9, '_' or "
			    "'-')", CONFIG_NAME_MAX - 1);
		rc = -1;
	} else {
		str_copy(m->name, n->scalar, sizeof(m->name));
	}
	snprintf(key, sizeof(key), "%s.address", prefix);
	n = scalar_child(ld, entry, "address", key, &bad);
	if (n == NULL) {
		if (!bad)
			load_error(ld, entry, key, "missing (unix:/path or "
			    "inet:host:port)");
		rc = -1;
	} else if (milter_address_parse(ld, n->scalar, m, &err) < 0) {
		load_error(ld, n, key, "%s", err.text);
		rc = -1;
	}
	if (milter_modes_load(ld, entry, prefix, m) < 0)
		rc = -1;
	snprintf(key, sizeof(key), "%s.timeout", prefix);
	n = scalar_child(ld, entry, "timeout", key, &bad);
	m->timeout_ms = 30000;
	if (bad) {
		rc = -1;
	} else if (n != NULL && (config_parse_duration_ms(n->scalar,
	    &m->timeout_ms, &err) < 0 || m->timeout_ms < 100 ||
	    m->timeout_ms > 600000)) {
		load_error(ld, n, key, "expected a duration from 100ms to 10m");
		rc = -1;
	}
	snprintf(key, sizeof(key), "%s.fail_mode", prefix);
	n = scalar_child(ld, entry, "fail_mode", key, &bad);
	m->fail_mode = CONFIG_FAIL_TEMPFAIL;
	if (bad) {
		rc = -1;
	} else if (n != NULL) {
		if (enum_parse(n->scalar, fail_modes, &idx, &err) < 0) {
			load_error(ld, n, key, "%s", err.text);
			rc = -1;
		} else {
			m->fail_mode = idx == 0 ? CONFIG_FAIL_TEMPFAIL :
			    CONFIG_FAIL_ACCEPT;
		}
	}
	return rc;
}

/* milters_load - the milters list, in order; names are unique. */
static void
milters_load(struct loader *ld, const struct setting *s,
    const struct config_node *node)
{
	struct config *cfg = ld->cfg;

	cfg->milter_count = 0;
	if (node == NULL || (node->type == CONFIG_NODE_SCALAR &&
	    node->scalar[0] == '\0'))
		return;
	if (node->type != CONFIG_NODE_LIST) {
		load_error(ld, node, s->name, "expected a list of {name, "
		    "address, modes, timeout, fail_mode} maps, found %s",
		    node_type_name(node));
		return;
	}
	for (size_t i = 0; i < node->count; i++) {
		struct config_milter *m;
		bool dup = false;

		if (cfg->milter_count == CONFIG_MILTERS_MAX) {
			load_error(ld, node->items[i], s->name, "too many "
			    "milters (max %d)", CONFIG_MILTERS_MAX);
			break;
		}
		m = &cfg->milters[cfg->milter_count];
		memset(m, 0, sizeof(*m));
		if (milter_entry_load(ld, node->items[i], i, m) < 0)
			continue;
		for (size_t j = 0; j < cfg->milter_count && !dup; j++)
			if (strcmp(cfg->milters[j].name, m->name) == 0) {
				load_error(ld, node->items[i], s->name,
				    "duplicate milter name '%s'", m->name);
				dup = true;
			}
		if (!dup)
			cfg->milter_count++;
	}
}

/*==== Lists: server.mynetworks and delivery.routes ====*/

/* cidr_default - s's default list ("a, b") into list. */
static void
cidr_default(struct loader *ld, const struct setting *s,
    struct addr_cidr_list *list)
{
	char buf[256], *save = NULL;
	struct error err;

	str_copy(buf, s->def, sizeof(buf));
	for (char *t = strtok_r(buf, ", ", &save); t != NULL;
	    t = strtok_r(NULL, ", ", &save))
		if (addr_cidr_list_add(list, t, 0, &err) < 0)
			load_error(ld, NULL, s->name, "bad default: %s",
			    err.text);
}

/* cidrs_load - a list of CIDR blocks (absent or empty: the default;
 * [] is an empty list). */
static void
cidrs_load(struct loader *ld, const struct setting *s,
    const struct config_node *node)
{
	struct addr_cidr_list *list = &ld->cfg->server.mynetworks;
	struct error err;

	addr_cidr_list_free(list);
	if (node == NULL || (node->type == CONFIG_NODE_SCALAR &&
	    node->scalar[0] == '\0')) {
		cidr_default(ld, s, list);
		return;
	}
	if (node->type != CONFIG_NODE_LIST) {
		load_error(ld, node, s->name, "expected a list of CIDR blocks "
		    "such as [127.0.0.0/8, \"::1/128\"], found %s%s",
		    node_type_name(node), node->type == CONFIG_NODE_SCALAR ?
		    " (write it in brackets: [...])" : "");
		return;
	}
	for (size_t i = 0; i < node->count; i++) {
		const struct config_node *it = node->items[i];
		char key[KEY_PATH_MAX + 24];

		snprintf(key, sizeof(key), "%s[%zu]", s->name, i);
		if (i == CONFIG_MYNETWORKS_MAX) {
			load_error(ld, it, s->name, "too many entries (max %d)",
			    CONFIG_MYNETWORKS_MAX);
			return;
		}
		if (it->type != CONFIG_NODE_SCALAR) {
			load_error(ld, it, key, "expected a CIDR block such as "
			    "192.0.2.0/24, found %s", node_type_name(it));
			continue;
		}
		if (addr_cidr_list_add(list, it->scalar, 0, &err) < 0)
			load_error(ld, it, key, "%s", err.text);
	}
}

/* resolver_check - text is ADDRESS or ADDRESS@PORT (a numeric IPv4 or
 * IPv6 address, port 1-65535), as libunbound's ub_ctx_set_fwd takes. */
static int
resolver_check(const char *text, struct error *err)
{
	char host[CONFIG_RESOLVER_MAX];
	const char *at = strchr(text, '@');
	struct in6_addr a6;
	struct in_addr a4;
	size_t len = at != NULL ? (size_t)(at - text) : strlen(text);

	if (len == 0 || len >= sizeof(host) ||
	    strlen(text) >= CONFIG_RESOLVER_MAX)
		return error_set(err, "expected ADDRESS or ADDRESS@PORT such "
		    "as 127.0.0.1@5353");
	memcpy(host, text, len);
	host[len] = '\0';
	if (inet_pton(AF_INET, host, &a4) != 1 &&
	    inet_pton(AF_INET6, host, &a6) != 1)
		return error_set(err, "'%.80s' is not a numeric IP address (a "
		    "resolver is named by address, ADDRESS or ADDRESS@PORT)",
		    host);
	if (at != NULL) {
		int64_t port;

		if (config_parse_int(at + 1, 1, 65535, &port, err) < 0)
			return error_prefix(err, "port");
	}
	return 0;
}

/* resolvers_load - dns.resolvers: a list of resolver addresses (absent,
 * empty or []: none, /etc/resolv.conf's). */
static void
resolvers_load(struct loader *ld, const struct setting *s,
    const struct config_node *node)
{
	struct config *cfg = ld->cfg;
	struct error err;

	cfg->dns.resolver_count = 0;
	if (node == NULL || (node->type == CONFIG_NODE_SCALAR &&
	    node->scalar[0] == '\0'))
		return;
	if (node->type != CONFIG_NODE_LIST) {
		load_error(ld, node, s->name, "expected a list of resolver "
		    "addresses such as [\"127.0.0.1@5353\", \"::1\"], found "
		    "%s%s", node_type_name(node), node->type ==
		    CONFIG_NODE_SCALAR ? " (write it in brackets: [...])" : "");
		return;
	}
	for (size_t i = 0; i < node->count; i++) {
		const struct config_node *it = node->items[i];
		char key[KEY_PATH_MAX + 24];
		size_t n = cfg->dns.resolver_count;

		snprintf(key, sizeof(key), "%s[%zu]", s->name, i);
		if (i == CONFIG_RESOLVERS_MAX) {
			load_error(ld, it, s->name, "too many entries (max %d)",
			    CONFIG_RESOLVERS_MAX);
			return;
		}
		if (it->type != CONFIG_NODE_SCALAR) {
			load_error(ld, it, key, "expected an address such as "
			    "127.0.0.1@5353, found %s", node_type_name(it));
			continue;
		}
		if (resolver_check(it->scalar, &err) < 0) {
			load_error(ld, it, key, "%s", err.text);
			continue;
		}
		str_copy(cfg->dns.resolvers[n], it->scalar,
		    sizeof(cfg->dns.resolvers[n]));
		cfg->dns.resolver_list[n] = cfg->dns.resolvers[n];
		cfg->dns.resolver_count = n + 1;
	}
}

/* route_domains_load - a route's domains list into r; -1 when unusable. */
static int
route_domains_load(struct loader *ld, const struct config_node *entry,
    const char *prefix, struct route *r)
{
	const struct config_node *n = config_node_get(entry, "domains");
	char key[KEY_PATH_MAX];
	struct error err;
	int rc = 0;

	key_join(key, sizeof(key), prefix, "domains");
	if (n == NULL || (n->type == CONFIG_NODE_SCALAR &&
	    n->scalar[0] == '\0') || (n->type == CONFIG_NODE_LIST &&
	    n->count == 0)) {
		load_error(ld, n != NULL ? n : entry, key, "missing; each "
		    "route needs the domains it serves, e.g. domains: [example.com, "
		    ".example.com] (or [\"*\"] for every domain)");
		return -1;
	}
	if (n->type != CONFIG_NODE_LIST) {
		load_error(ld, n, key, "expected a list of domains, found %s%s",
		    node_type_name(n), n->type == CONFIG_NODE_SCALAR ?
		    " (write it in brackets: [...])" : "");
		return -1;
	}
	for (size_t i = 0; i < n->count; i++) {
		const struct config_node *it = n->items[i];
		char ikey[KEY_PATH_MAX + 24];

		snprintf(ikey, sizeof(ikey), "%s[%zu]", key, i);
		if (it->type != CONFIG_NODE_SCALAR) {
			load_error(ld, it, ikey, "expected a domain, found %s",
			    node_type_name(it));
			rc = -1;
		} else if (route_domains_add(r, it->scalar, &err) < 0) {
			load_error(ld, it, ikey, "%s", err.text);
			rc = -1;
		}
	}
	return rc;
}

/* route_entry_load - one {domains, next_hop} map into r; -1 when it
 * cannot be used. */
static int
route_entry_load(struct loader *ld, const struct config_node *entry,
    const char *name, size_t index, struct route *r)
{
	static const char *const known[] = { "domains", "next_hop" };
	char prefix[64], key[96];
	const struct config_node *n;
	struct error err;
	bool bad;
	int rc;

	snprintf(prefix, sizeof(prefix), "%s[%zu]", name, index);
	if (entry->type != CONFIG_NODE_MAP) {
		load_error(ld, entry, prefix, "expected a map like {domains: "
		    "[example.com], next_hop: \"smtp:[192.0.2.1]:25\"}, "
		    "found %s", node_type_name(entry));
		return -1;
	}
	check_keys(ld, entry, prefix, known, 2);
	rc = route_domains_load(ld, entry, prefix, r);
	snprintf(key, sizeof(key), "%s.next_hop", prefix);
	n = scalar_child(ld, entry, "next_hop", key, &bad);
	if (n == NULL) {
		if (!bad)
			load_error(ld, entry, key, "missing; each route needs "
			    "a next hop, e.g. next_hop: \"smtp:[192.0.2.1]:25\" "
			    "or \"maildir:/var/mail\"");
		return -1;
	}
	if (route_hop_parse(n->scalar, ld->cfg->dir,
	    ld->cfg->delivery.smtp_port, &r->hop, &err) < 0) {
		load_error(ld, n, key, "%s", err.text);
		return -1;
	}
	return rc;
}

/* route_shadowed - the earlier route that already names one of r's
 * domains (index into routes), or -1. */
static long
route_shadowed(const struct route *routes, size_t count,
    const struct route *r, size_t *which)
{
	for (size_t i = 0; i < count; i++)
		for (size_t j = 0; j < r->domains.count; j++)
			for (size_t k = 0; k < routes[i].domains.count; k++)
				if (strcmp(routes[i].domains.items[k],
				    r->domains.items[j]) == 0) {
					*which = j;
					return (long)i;
				}
	return -1;
}

/* routes_load - delivery.routes, in order: a domain is routed once, and
 * nothing follows the "*" route (it would never be used). */
static void
routes_load(struct loader *ld, const struct setting *s,
    const struct config_node *node)
{
	struct config *cfg = ld->cfg;

	cfg->delivery.route_count = 0;
	if (node == NULL || (node->type == CONFIG_NODE_SCALAR &&
	    node->scalar[0] == '\0'))
		return;
	if (node->type != CONFIG_NODE_LIST) {
		load_error(ld, node, s->name, "expected a list of {domains, "
		    "next_hop} maps, found %s", node_type_name(node));
		return;
	}
	if (node->count > CONFIG_ROUTES_MAX) {
		load_error(ld, node, s->name, "too many routes (%zu, max %d)",
		    node->count, CONFIG_ROUTES_MAX);
		return;
	}
	cfg->delivery.routes = xcalloc(node->count ? node->count : 1,
	    sizeof(*cfg->delivery.routes));
	for (size_t i = 0; i < node->count; i++) {
		struct route *r =
		    &cfg->delivery.routes[cfg->delivery.route_count];
		const struct config_node *entry = node->items[i];
		size_t dom = 0;
		long prev;
		char key[64];

		snprintf(key, sizeof(key), "%s[%zu]", s->name, i);
		if (cfg->delivery.route_count > 0 && cfg->delivery.routes[
		    cfg->delivery.route_count - 1].all) {
			load_error(ld, entry, key, "comes after the \"*\" "
			    "route, which takes every domain: move \"*\" last");
			continue;
		}
		if (route_entry_load(ld, entry, s->name, i, r) < 0) {
			route_free(r);
			memset(r, 0, sizeof(*r));
			continue;
		}
		prev = route_shadowed(cfg->delivery.routes,
		    cfg->delivery.route_count, r, &dom);
		if (prev >= 0) {
			load_error(ld, config_node_get(entry, "domains"), key,
			    "domain '%s' is already routed by %s[%ld]; a "
			    "domain may appear in one route",
			    r->domains.items[dom], s->name, prev);
			route_free(r);
			memset(r, 0, sizeof(*r));
			continue;
		}
		cfg->delivery.route_count++;
	}
}

/* mx_hop_derive - the fallback next hop: SMTP to the recipient domain's
 * MX hosts on delivery.smtp_port. */
static void
mx_hop_derive(struct config *cfg)
{
	memset(&cfg->delivery.mx, 0, sizeof(cfg->delivery.mx));
	cfg->delivery.mx.transport = ROUTE_SMTP;
	cfg->delivery.mx.mx = true;
	cfg->delivery.mx.port = cfg->delivery.smtp_port;
}

/*==== Walking the document ====*/

/* section_names - the distinct top-level names of the table, in order. */
static size_t
section_names(const char **out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < SETTINGS_COUNT; i++) {
		const char *name = config_settings[i].name;
		size_t len = strcspn(name, ".");
		bool seen = false;

		for (size_t j = 0; j < n && !seen; j++)
			seen = strncmp(out[j], name, len) == 0 &&
			    (out[j][len] == '.' || out[j][len] == '\0');
		if (!seen && n < max)
			out[n++] = name;
	}
	return n;
}

/* section_keys - the keys (after "section.") the table declares. */
static size_t
section_keys(const char *section, const char **out, size_t max)
{
	size_t n = 0, len = strlen(section);

	for (size_t i = 0; i < SETTINGS_COUNT; i++) {
		const char *name = config_settings[i].name;

		if (strncmp(name, section, len) == 0 && name[len] == '.' &&
		    n < max)
			out[n++] = name + len + 1;
	}
	return n;
}

/* section_name_copy - "server" out of a table name "server.workers". */
static void
section_name_copy(const char *name, char *out, size_t size)
{
	size_t len = strcspn(name, ".");

	if (len >= size)
		len = size - 1;
	memcpy(out, name, len);
	out[len] = '\0';
}

/* setting_find - the table entry named name, or NULL. */
static const struct setting *
setting_find(const char *name)
{
	for (size_t i = 0; i < SETTINGS_COUNT; i++)
		if (strcmp(config_settings[i].name, name) == 0)
			return &config_settings[i];
	return NULL;
}

/* unknown_key - "did you mean" for a key its section does not know. */
static void
unknown_key(struct loader *ld, const char *section, const char *key,
    unsigned line, unsigned column)
{
	const char *keys[SECTION_KEYS_MAX];
	char full[KEY_PATH_MAX], list[400];
	size_t n = section_keys(section, keys, SECTION_KEYS_MAX);
	const char *near = config_nearest(key, keys, n);

	key_join(full, sizeof(full), section, key);
	if (near != NULL) {
		load_error_at(ld, line, column, full, "unknown key; did you "
		    "mean '%s.%s'?", section, near);
		return;
	}
	/* The right key in the wrong section ("server: fail_mode: ...")? */
	for (size_t i = 0; i < SETTINGS_COUNT; i++) {
		const char *name = config_settings[i].name;
		const char *dot = strchr(name, '.');

		if (dot != NULL && strcmp(dot + 1, key) == 0) {
			load_error_at(ld, line, column, full, "unknown key; did "
			    "you mean '%s' (in another section)?", name);
			return;
		}
	}
	join_names(list, sizeof(list), keys, n);
	load_error_at(ld, line, column, full, "unknown key (%s accepts: %s)",
	    section, list);
}

/* unknown_section - "did you mean" for a top-level key. */
static void
unknown_section(struct loader *ld, const char *key, unsigned line,
    unsigned column)
{
	const char *sections[SECTIONS_MAX];
	char names[SECTIONS_MAX][CONFIG_NAME_MAX], list[256];
	const char *ptrs[SECTIONS_MAX];
	size_t n = section_names(sections, SECTIONS_MAX);
	const char *near;

	for (size_t i = 0; i < n; i++) {
		section_name_copy(sections[i], names[i], sizeof(names[i]));
		ptrs[i] = names[i];
	}
	near = config_nearest(key, ptrs, n);
	if (near != NULL) {
		load_error_at(ld, line, column, key, "unknown section; did you "
		    "mean '%s'?", near);
		return;
	}
	/* A setting written at the top level ("workers: 2")? */
	for (size_t i = 0; i < SETTINGS_COUNT; i++) {
		const char *dot = strchr(config_settings[i].name, '.');

		if (dot != NULL && strcmp(dot + 1, key) == 0) {
			load_error_at(ld, line, column, key, "unknown section; "
			    "did you mean '%s' (indented under its section)?",
			    config_settings[i].name);
			return;
		}
	}
	join_names(list, sizeof(list), ptrs, n);
	load_error_at(ld, line, column, key, "unknown section (sections: %s)",
	    list);
}

/* subsection_known - true when the table has settings under name + "."
 * ("counters.redis"). */
static bool
subsection_known(const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < SETTINGS_COUNT; i++)
		if (strncmp(config_settings[i].name, name, len) == 0 &&
		    config_settings[i].name[len] == '.')
			return true;
	return false;
}

/* check_section_keys - every key of the map sect (at dotted path name) is
 * a setting or a known subsection, whose keys are checked in turn. */
static void
check_section_keys(struct loader *ld, const char *name,
    const struct config_node *sect)
{
	unsigned line, column;

	for (size_t k = 0; k < sect->count; k++) {
		const struct config_node *sub = sect->items[k];
		char full[KEY_PATH_MAX];

		key_join(full, sizeof(full), name, sect->keys[k]);
		if (setting_find(full) != NULL)
			continue;
		key_position(ld, sect, k, &line, &column);
		if (!subsection_known(full)) {
			unknown_key(ld, name, sect->keys[k], line, column);
			continue;
		}
		if (sub->type == CONFIG_NODE_SCALAR && sub->scalar[0] == '\0')
			continue;       /* "redis:" with everything commented */
		if (sub->type != CONFIG_NODE_MAP) {
			load_error(ld, sub, full, "expected a map of %s settings, "
			    "found %s", full, node_type_name(sub));
			continue;
		}
		check_section_keys(ld, full, sub);
	}
}

/* check_structure - every top-level key is a section, every section is a
 * map, every key in a section is in the table. */
static void
check_structure(struct loader *ld, const struct config_node *root)
{
	const char *sections[SECTIONS_MAX];
	size_t n = section_names(sections, SECTIONS_MAX);

	for (size_t i = 0; i < root->count; i++) {
		const char *key = root->keys[i];
		const struct config_node *sect = root->items[i];
		char section[CONFIG_NAME_MAX];
		unsigned line, column;
		bool known = false, is_list = false;

		for (size_t j = 0; j < n && !known; j++) {
			section_name_copy(sections[j], section, sizeof(section));
			known = strcmp(section, key) == 0;
			is_list = strchr(sections[j], '.') == NULL;
		}
		key_position(ld, root, i, &line, &column);
		if (!known) {
			unknown_section(ld, key, line, column);
			continue;
		}
		if (is_list)
			continue; /* checked by its own loader */
		if (sect->type == CONFIG_NODE_SCALAR && sect->scalar[0] == '\0')
			continue; /* "tls:" with everything commented out */
		if (sect->type != CONFIG_NODE_MAP) {
			load_error(ld, sect, key, "expected a map of %s settings, "
			    "found %s", key, node_type_name(sect));
			continue;
		}
		check_section_keys(ld, key, sect);
	}
}

/* setting_node - the value node of s in the document, or NULL; a name
 * with several dots ("counters.redis.address") walks nested maps. */
static const struct config_node *
setting_node(const struct config_node *root, const struct setting *s)
{
	char part[CONFIG_NAME_MAX];
	const struct config_node *n = root;
	const char *p = s->name;

	while (n != NULL) {
		size_t len = strcspn(p, ".");

		if (len >= sizeof(part))
			return NULL;
		memcpy(part, p, len);
		part[len] = '\0';
		n = n->type == CONFIG_NODE_MAP ? config_node_get(n, part) : NULL;
		if (p[len] == '\0')
			return n;
		p += len + 1;
	}
	return NULL;
}

/* setting_load - s from the document, or its default. */
static void
setting_load(struct loader *ld, const struct setting *s,
    const struct config_node *root)
{
	const struct config_node *node = setting_node(root, s);
	struct error err;

	if (s->type == SET_LISTEN) {
		listen_load(ld, s, root, node);
		return;
	}
	if (s->type == SET_PLUGINS) {
		plugins_load(ld, s, node);
		return;
	}
	if (s->type == SET_CIDRS) {
		cidrs_load(ld, s, node);
		return;
	}
	if (s->type == SET_ROUTES) {
		routes_load(ld, s, node);
		return;
	}
	if (s->type == SET_RESOLVERS) {
		resolvers_load(ld, s, node);
		return;
	}
	if (s->type == SET_MILTERS) {
		milters_load(ld, s, node);
		return;
	}
	if (node != NULL && node->type != CONFIG_NODE_SCALAR) {
		load_error(ld, node, s->name, "expected a single value (scalar), "
		    "found %s", node_type_name(node));
		node = NULL;
	} else if (node != NULL && node->scalar[0] == '\0' &&
	    !(s->flags & SETTING_EMPTY_OK)) {
		load_error(ld, node, s->name, "a value is required (%s); remove "
		    "the key to use the default", s->help);
		node = NULL;
	}
	if (node != NULL) {
		if (setting_convert(ld->cfg, s, node->scalar, &err) == 0)
			return;
		load_error(ld, node, s->name, "%s", err.text);
	}
	/* Absent, or bad (already reported): settings computed from this
	 * one still need a sane value. */
	setting_default(ld, s);
}

/* check_cross - rules that involve more than one setting. */
static void
check_cross(struct loader *ld, const struct config_node *root)
{
	const struct config *cfg = ld->cfg;
	const struct config_node *tls = config_node_get(root, "tls");
	bool cert = cfg->tls.certificate[0] != '\0';
	bool key = cfg->tls.key[0] != '\0';
	struct sockaddr_un sun;

	if (cert != key) {
		const char *present = cert ? "certificate" : "key";
		const char *absent = cert ? "key" : "certificate";
		char name[32];

		snprintf(name, sizeof(name), "tls.%s", absent);
		load_error(ld, config_node_get(tls, present), name, "missing; "
		    "tls.%s is set, so tls.%s is required too (set both or "
		    "neither)", present, absent);
	}
	if (!cert || !key) {
		const struct config_node *list = setting_node(root,
		    setting_find("server.listen"));

		for (size_t i = 0; i < cfg->server.listen_count; i++) {
			char name[64];

			if (cfg->server.listen[i].mode != CONFIG_MODE_SMTPS)
				continue;
			snprintf(name, sizeof(name), "server.listen[%zu].mode", i);
			load_error(ld, list != NULL && i < list->count ?
			    config_node_get(list->items[i], "mode") : NULL, name,
			    "mode smtps (implicit TLS) needs tls.certificate and "
			    "tls.key");
		}
	}
	if (cfg->delivery.retry.max_backoff_ms <
	    cfg->delivery.retry.min_backoff_ms)
		load_error(ld, setting_node(root,
		    setting_find("delivery.retry.max_backoff")),
		    "delivery.retry.max_backoff", "shorter than "
		    "delivery.retry.min_backoff; the backoff grows from min to "
		    "max");
	if ((cfg->delivery.auth.username[0] != '\0') !=
	    (cfg->delivery.auth.password_file[0] != '\0')) {
		bool user = cfg->delivery.auth.username[0] != '\0';

		load_error(ld, setting_node(root, setting_find(user ?
		    "delivery.auth.username" : "delivery.auth.password_file")),
		    user ? "delivery.auth.password_file" :
		    "delivery.auth.username", "missing; delivery.auth.%s is "
		    "set, so delivery.auth.%s is required too (set both or "
		    "neither)", user ? "username" : "password_file",
		    user ? "password_file" : "username");
	}
	if (cfg->delivery.tls.mode == CONFIG_DELIVERY_TLS_DANE &&
	    !cfg->dns.dnssec)
		load_error(ld, setting_node(root,
		    setting_find("delivery.tls.mode")), "dns.dnssec",
		    "must be true for delivery.tls.mode dane: DANE trusts only "
		    "DNSSEC-validated TLSA records");
	if (cfg->dns.dnssec && cfg->dns.trust_anchor_file[0] == '\0')
		load_error(ld, setting_node(root, setting_find("dns.dnssec")),
		    "dns.trust_anchor_file", "missing; dns.dnssec is on, and "
		    "validation needs trust anchors (e.g. "
		    "/usr/share/dns/root.key)");
	if (strlen(cfg->policyd.socket) >= sizeof(sun.sun_path)) {
		const struct config_node *n = setting_node(root,
		    setting_find("policyd.socket"));

		load_error(ld, n, "policyd.socket", "'%.200s' is %zu bytes; Unix "
		    "socket paths are limited to %zu (set a shorter "
		    "policyd.socket or server.runtime_dir)", cfg->policyd.socket,
		    strlen(cfg->policyd.socket), sizeof(sun.sun_path) - 1);
	}
}

/*==== Loading ====*/

/* file_read - the whole file into ld->text. */
static int
file_read(struct loader *ld, const char *path)
{
	struct stat st;
	char *buf;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		load_error_at(ld, 0, 0, NULL, "cannot read the configuration: %s",
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		load_error_at(ld, 0, 0, NULL, "cannot read the configuration: %s",
		    strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)CONFIG_FILE_SIZE_MAX) {
		load_error_at(ld, 0, 0, NULL, "cannot read the configuration: %s",
		    S_ISDIR(st.st_mode) ? "it is a directory" :
		    !S_ISREG(st.st_mode) ? "not a regular file" :
		    "larger than 16MB");
		close(fd);
		return -1;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	for (;;) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			load_error_at(ld, 0, 0, NULL, "cannot read the "
			    "configuration: %s", strerror(errno));
			free(buf);
			close(fd);
			return -1;
		}
		if (n == 0 || (len += (size_t)n) == (size_t)st.st_size)
			break;
	}
	close(fd);
	buf[len] = '\0';
	ld->text = buf;
	ld->text_len = len;
	return 0;
}

/* file_locate - cfg->dir (realpath of the file's directory) and
 * cfg->file (dir + base name). */
static int
file_locate(struct loader *ld, const char *path)
{
	struct config *cfg = ld->cfg;
	char dir[CONFIG_PATH_MAX], real[PATH_MAX];
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;

	if (slash == NULL)
		str_copy(dir, ".", sizeof(dir));
	else if (slash == path)
		str_copy(dir, "/", sizeof(dir));
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (realpath(dir, real) == NULL) {
		load_error_at(ld, 0, 0, NULL, "cannot resolve the configuration's "
		    "directory: %s", strerror(errno));
		return -1;
	}
	if (str_copy(cfg->dir, real, sizeof(cfg->dir)) >= sizeof(cfg->dir)) {
		load_error_at(ld, 0, 0, NULL, "the directory path is too long");
		return -1;
	}
	str_copy(cfg->file, cfg->dir, sizeof(cfg->file));
	if (strcmp(cfg->dir, "/") != 0)
		text_append(cfg->file, sizeof(cfg->file), "/");
	text_append(cfg->file, sizeof(cfg->file), base);
	if (strlen(cfg->dir) + 1 + strlen(base) >= sizeof(cfg->file)) {
		load_error_at(ld, 0, 0, NULL, "the file path is too long");
		return -1;
	}
	return 0;
}

/* config_load - read and validate path (see config.h). */
struct config *
config_load(const char *path, struct config_errors *errs)
{
	struct config_errors local;
	struct config_owned *owned;
	struct config *cfg;
	struct loader *ld;
	struct config_node *root = NULL;

	if (errs == NULL)
		errs = &local;
	errs->count = 0;
	owned = xcalloc(1, sizeof(*owned));
	cfg = &owned->cfg;
	ld = xcalloc(1, sizeof(*ld));
	ld->cfg = cfg;
	ld->file = owned->given;
	if (path == NULL)
		path = CONFIG_DEFAULT_FILE;
	if (str_copy(owned->given, path, sizeof(owned->given)) >=
	    sizeof(owned->given)) {
		load_error_at(ld, 0, 0, NULL, "the file name is too long");
		goto out;
	}
	if (file_read(ld, path) < 0 || file_locate(ld, path) < 0)
		goto out;
	root = yaml_to_tree(ld);
	if (root == NULL)
		goto out;
	cfg->root = root;
	if (root->type != CONFIG_NODE_MAP) {
		const char *sections[SECTIONS_MAX];
		char names[SECTIONS_MAX][CONFIG_NAME_MAX], list[256];
		const char *ptrs[SECTIONS_MAX];
		size_t n = section_names(sections, SECTIONS_MAX);

		for (size_t i = 0; i < n; i++) {
			section_name_copy(sections[i], names[i], sizeof(names[i]));
			ptrs[i] = names[i];
		}
		join_names(list, sizeof(list), ptrs, n);
		load_error(ld, root, NULL, "the top level must be a map of "
		    "sections (%s), found %s", list, node_type_name(root));
		goto out;
	}
	check_structure(ld, root);
	for (size_t i = 0; i < SETTINGS_COUNT; i++)
		setting_load(ld, &config_settings[i], root);
	check_cross(ld, root);
	if (ld->error_count == 0) {
		endpoint_derive(cfg->policyd.postfix_listen,
		    &cfg->policyd.postfix_endpoint);
		endpoint_derive(cfg->metrics.listen, &cfg->metrics.endpoint);
		mx_hop_derive(cfg);
	}
out:
	free((void *)ld->text);
	free(ld->marks);
	if (ld->error_count > 0 || ld->dropped > 0) {
		load_errors_export(ld, errs);
		free(ld);
		config_free(cfg);
		return NULL;
	}
	free(ld);
	return cfg;
}

/* config_free - the config and its node tree. */
void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	config_node_free(cfg->root);
	addr_cidr_list_free(&cfg->server.mynetworks);
	for (size_t i = 0; i < cfg->delivery.route_count; i++)
		route_free(&cfg->delivery.routes[i]);
	free(cfg->delivery.routes);
	/* cfg is the first member of its struct config_owned. */
	free(cfg);
}

/*==== Dump ====*/

/* setting_format - s's effective value in the file's own syntax. */
static void
setting_format(const struct config *cfg, const struct setting *s, char *buf,
    size_t size)
{
	const char *field = (const char *)cfg + s->offset;
	bool b;
	int index;

	switch (s->store) {
	case STORE_NONE:
		str_copy(buf, s->def, size);
		return;
	case STORE_TEXT:
		str_copy(buf, field[0] ? field : "\"\"", size);
		return;
	case STORE_BOOL:
		memcpy(&b, field, sizeof(b));
		str_copy(buf, b ? "true" : "false", size);
		return;
	case STORE_INDEX:
		memcpy(&index, field, sizeof(index));
		str_copy(buf, setting_enum_word(s, index), size);
		return;
	case STORE_HOP: {
		const struct route_hop *hop = (const struct route_hop *)field;

		if (hop->transport == ROUTE_NONE)
			str_copy(buf, "\"\"", size);
		else
			route_hop_format(hop, buf, size);
		return;
	}
	case STORE_UINT:
		if ((s->flags & SETTING_OFF_OK) &&
		    setting_load_uint(cfg, s) == 0)
			str_copy(buf, "off", size);
		else if (s->type == SET_SIZE)
			format_size(setting_load_uint(cfg, s), buf, size);
		else if (s->type == SET_DURATION)
			format_duration(setting_load_uint(cfg, s), buf, size);
		else
			snprintf(buf, size, "%" PRIu64, setting_load_uint(cfg, s));
		return;
	case STORE_LIST:
		break;
	}
	str_copy(buf, "?", size);
}

/* dump_cidrs - "key = a, b" ("[]" when empty). */
static void
dump_cidrs(const struct addr_cidr_list *list, const char *name, FILE *out)
{
	char buf[ADDR_TEXT_MAX + 8];

	fprintf(out, "%s = %s", name, list->count == 0 ? "[]" : "");
	for (size_t i = 0; i < list->count; i++)
		fprintf(out, "%s%s", i > 0 ? ", " : "",
		    addr_cidr_format(&list->items[i], buf, sizeof(buf)));
	fputc('\n', out);
}

/* dump_routes - "key[i].domains = a, .b" and "key[i].next_hop = hop". */
static void
dump_routes(const struct config *cfg, const char *name, FILE *out)
{
	char buf[ROUTE_HOP_TEXT_MAX];

	if (cfg->delivery.route_count == 0)
		fprintf(out, "%s = []\n", name);
	for (size_t i = 0; i < cfg->delivery.route_count; i++) {
		const struct route *r = &cfg->delivery.routes[i];

		fprintf(out, "%s[%zu].domains = %s", name, i,
		    r->all ? "*" : "");
		for (size_t j = 0; j < r->domains.count; j++)
			fprintf(out, "%s%s", j > 0 ? ", " : "",
			    r->domains.items[j]);
		fprintf(out, "\n%s[%zu].next_hop = %s\n", name, i,
		    route_hop_format(&r->hop, buf, sizeof(buf)));
	}
}

/* dump_milters - "key[i].field = value" for every milter. */
static void
dump_milters(const struct config *cfg, const char *name, FILE *out)
{
	char buf[64];

	if (cfg->milter_count == 0)
		fprintf(out, "%s = []\n", name);
	for (size_t i = 0; i < cfg->milter_count; i++) {
		const struct config_milter *m = &cfg->milters[i];

		fprintf(out, "%s[%zu].name = %s\n", name, i, m->name);
		fprintf(out, "%s[%zu].address = %s\n", name, i, m->address);
		fprintf(out, "%s[%zu].modes =", name, i);
		for (unsigned k = 0; listen_modes[k] != NULL; k++)
			if (m->modes & (1u << k))
				fprintf(out, " %s", listen_modes[k]);
		format_duration(m->timeout_ms, buf, sizeof(buf));
		fprintf(out, "\n%s[%zu].timeout = %s\n", name, i, buf);
		fprintf(out, "%s[%zu].fail_mode = %s\n", name, i,
		    m->fail_mode == CONFIG_FAIL_ACCEPT ? "accept" : "tempfail");
	}
}

/* config_setting_name - see config.h. */
const char *
config_setting_name(size_t i)
{
	return i < SETTINGS_COUNT ? config_settings[i].name : NULL;
}

/* config_dump - "key = value" for every setting, in table order. */
void
config_dump(const struct config *cfg, FILE *out)
{
	char buf[CONFIG_PATH_MAX + 8];

	fprintf(out, "# %s\n", cfg->file);
	for (size_t i = 0; i < SETTINGS_COUNT; i++) {
		const struct setting *s = &config_settings[i];

		if (s->type == SET_LISTEN) {
			for (size_t j = 0; j < cfg->server.listen_count; j++) {
				const struct config_listen *l = &cfg->server.listen[j];

				fprintf(out, "%s[%zu].address = %s\n", s->name, j,
				    l->address);
				fprintf(out, "%s[%zu].mode = %s\n", s->name, j,
				    config_listen_mode_name(l->mode));
				if (l->mode != CONFIG_MODE_LOCAL)
					continue;
				fprintf(out, "%s[%zu].socket_mode = %04o\n", s->name,
				    j, l->socket_mode);
				fprintf(out, "%s[%zu].socket_group = %s\n", s->name,
				    j, l->socket_group);
			}
		} else if (s->type == SET_CIDRS) {
			dump_cidrs(&cfg->server.mynetworks, s->name, out);
		} else if (s->type == SET_ROUTES) {
			dump_routes(cfg, s->name, out);
		} else if (s->type == SET_RESOLVERS) {
			fprintf(out, "%s = %s", s->name,
			    cfg->dns.resolver_count == 0 ? "[]" : "");
			for (size_t j = 0; j < cfg->dns.resolver_count; j++)
				fprintf(out, "%s%s", j > 0 ? ", " : "",
				    cfg->dns.resolvers[j]);
			fputc('\n', out);
		} else if (s->type == SET_MILTERS) {
			dump_milters(cfg, s->name, out);
		} else if (s->type == SET_PLUGINS) {
			if (cfg->plugin_count == 0)
				fprintf(out, "%s = []\n", s->name);
			for (size_t j = 0; j < cfg->plugin_count; j++) {
				const struct config_plugin *p = &cfg->plugins[j];

				fprintf(out, "%s[%zu].name = %s\n", s->name, j, p->name);
				fprintf(out, "%s[%zu].path = %s\n", s->name, j,
				    p->path[0] ? p->path : "\"\"");
				fprintf(out, "%s[%zu].enabled = %s\n", s->name, j,
				    p->enabled ? "true" : "false");
				if (p->config != NULL)
					fprintf(out, "%s[%zu].config = {%zu keys at %s}\n",
					    s->name, j, p->config->count,
					    p->config->where);
				else
					fprintf(out, "%s[%zu].config = {}\n", s->name, j);
			}
		} else {
			setting_format(cfg, s, buf, sizeof(buf));
			fprintf(out, "%s = %s\n", s->name, buf);
		}
	}
}
