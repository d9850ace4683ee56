/*
 * config.h - the one YAML configuration file, parsed once into a plain
 * struct.
 *
 * Every setting is declared once in config.c's table (name, type, default,
 * limits, help); the table drives parsing, validation, error messages and
 * `elemtactl check-config`.  Paths are resolved against the directory of
 * the file.  Errors read "FILE:LINE:COLUMN: key 'server.workers': problem"
 * and an unknown key suggests the nearest known one.  Plugin `config:`
 * subtrees are kept as a node tree (struct config_node) that plugins read
 * through the typed accessors of <elemta/plugin.h>.
 */
#ifndef ELEMTA_CONFIG_H
#define ELEMTA_CONFIG_H

#include <limits.h>
#include <stdio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "error.h"
#include "log.h"
#include "route.h"

#define CONFIG_DEFAULT_FILE "/etc/elemta/elemta.yaml"
#define CONFIG_PATH_MAX 4096
#define CONFIG_NAME_MAX 64
#define CONFIG_LISTEN_MAX 16
#define CONFIG_PLUGINS_MAX 32
#define CONFIG_ERRORS_MAX 64
#define CONFIG_ROUTES_MAX 1024
#define CONFIG_MYNETWORKS_MAX 1024
#define CONFIG_RESOLVERS_MAX 8
#define CONFIG_RESOLVER_MAX 64        /* "[IPv6 address]@65535" fits   */

/* ==== The node tree (kept for plugin config subtrees) ==== */

enum config_node_type {
	CONFIG_NODE_SCALAR = 1,   /* values equal enum elemta_cfg_type's */
	CONFIG_NODE_LIST = 2,
	CONFIG_NODE_MAP = 3,
};

struct config_node {
	enum config_node_type type;
	char *scalar;                 /* SCALAR: the text                  */
	char **keys;                  /* MAP: keys[i] names items[i]       */
	struct config_node **items;   /* LIST / MAP children               */
	size_t count;
	const char *file;             /* owned by the config               */
	unsigned line, column;        /* 1-based                           */
	char where[CONFIG_PATH_MAX + 32]; /* "file:line:column"            */
};

const struct config_node *config_node_get(const struct config_node *map,
    const char *key);
void config_node_free(struct config_node *n);

/* Typed scalar conversions, shared by the loader and the plugin accessors.
 * Each returns 0 or -1 with a reason ("expected a duration like 30s"). */
int config_parse_bool(const char *s, bool *out, struct error *err);
int config_parse_int(const char *s, int64_t min, int64_t max, int64_t *out,
    struct error *err);
int config_parse_duration_ms(const char *s, uint64_t *out, struct error *err);
int config_parse_size(const char *s, uint64_t *out, struct error *err);
/* config_path_resolve - value made absolute against dir (the config
 * file's directory) into out. */
int config_path_resolve(const char *dir, const char *value, char *out,
    size_t size, struct error *err);
/* config_scalar_is_null - is s, the text of a plain (unquoted) YAML
 * scalar, one of YAML's null spellings ("", ~, null, Null, NULL)?  The
 * one list: the loaders read such a value as empty (""), so readers of a
 * config_node test for "" only. */
bool config_scalar_is_null(const char *s);
/* config_nearest - the entry of known[] closest to word (edit distance),
 * or NULL when none is close enough to suggest. */
const char *config_nearest(const char *word, const char *const *known,
    size_t count);

/* The prefix of a Unix socket in an address setting (unix:PATH; the
 * Postfix listener, counters.redis.address). */
#define CONFIG_UNIX_PREFIX "unix:"
#define CONFIG_UNIX_PREFIX_LEN (sizeof(CONFIG_UNIX_PREFIX) - 1)

/* ==== The parsed configuration ==== */

enum config_listen_mode {
	CONFIG_MODE_SMTP,         /* port 25: STARTTLS offered, AUTH optional */
	CONFIG_MODE_SUBMISSION,   /* port 587: AUTH required before MAIL      */
	CONFIG_MODE_SMTPS,        /* port 465: implicit TLS                   */
	CONFIG_MODE_LOCAL,        /* a Unix socket for elemta-sendmail: the
	                             peer's uid (SO_PEERCRED) is the
	                             authenticated user; no TLS, no AUTH     */
};

/* Bytes of a Unix socket path, with its NUL (sizeof sun_path). */
#define CONFIG_UNIX_PATH_MAX 108
/* A local listener's socket file mode when socket_mode is not set. */
#define CONFIG_LOCAL_SOCKET_MODE 0666

struct config_listen {
	char address[256];        /* as written: "127.0.0.1:2525", "[::]:25",
	                             "unix:/run/elemta/submit.sock"          */
	char host[128];           /* "127.0.0.1", "::"; "" for unix          */
	unsigned port;            /* 0 for unix                              */
	char path[CONFIG_UNIX_PATH_MAX]; /* absolute socket path (mode local
	                             only, which alone takes unix:); "" TCP  */
	unsigned socket_mode;     /* local: the socket file's mode (0666)    */
	char socket_group[CONFIG_NAME_MAX]; /* local: its group; "" = root's
	                             (the invoking user's when not root)     */
	enum config_listen_mode mode;
};

/* A listen address as parsed once by config_load: TCP (numeric host and
 * port) or a Unix socket (absolute path). */
struct config_endpoint {
	char host[128];           /* "127.0.0.1", "::", "0.0.0.0"; "" for unix */
	unsigned port;            /* 0 for unix                              */
	char path[CONFIG_PATH_MAX]; /* absolute socket path; "" for TCP       */
};

/* One entry of `milters:` (docs/milters.md).  modes is a bit set:
 * bit (1u << enum config_listen_mode) for each listener mode named. */
#define CONFIG_MILTERS_MAX 16
struct config_milter {
	char name[CONFIG_NAME_MAX];
	char address[CONFIG_PATH_MAX + 8];  /* as written (path absolute) */
	struct config_endpoint endpoint;    /* parsed: unix path or host:port */
	unsigned modes;
	uint64_t timeout_ms;                /* the whole conversation      */
	int fail_mode;                      /* enum config_fail_mode       */
	char where[64];                     /* file:line:column            */
};

/* Enum-valued settings are stored as these enums (config.c's table
 * lists their spellings in the same order); nothing compares their text. */
enum config_fail_mode { CONFIG_FAIL_TEMPFAIL, CONFIG_FAIL_ACCEPT };
enum config_bare_newline { CONFIG_BARE_REJECT, CONFIG_BARE_NORMALIZE };
enum config_tls_version { CONFIG_TLS_1_2, CONFIG_TLS_1_3 };
enum config_counter_backend { CONFIG_BACKEND_LMDB, CONFIG_BACKEND_REDIS };
/* delivery.tls.mode: STARTTLS towards next hops (elemta-queued maps it to
 * its SMTP client's mode; common/ knows nothing of queued/). */
enum config_delivery_tls {
	CONFIG_DELIVERY_TLS_MAY,      /* when offered                      */
	CONFIG_DELIVERY_TLS_ENCRYPT,  /* required, certificate not checked */
	CONFIG_DELIVERY_TLS_VERIFY,   /* required, checked against ca_file
	                               * and the next hop's name           */
	CONFIG_DELIVERY_TLS_DANE,     /* RFC 7672: with DNSSEC-validated
	                               * TLSA records, required and checked
	                               * against them; else as may        */
};

struct config_plugin {
	char name[CONFIG_NAME_MAX];
	char path[CONFIG_PATH_MAX];   /* "" for built-in plugins (resolved)  */
	bool enabled;
	const struct config_node *config; /* the `config:` map, or NULL      */
	char where[CONFIG_PATH_MAX + 32]; /* where the entry starts          */
};

struct config {
	char file[CONFIG_PATH_MAX];   /* absolute path of the file */
	char dir[CONFIG_PATH_MAX];    /* its directory             */

	struct {
		char hostname[256];       /* default: gethostname()          */
		struct config_listen listen[CONFIG_LISTEN_MAX];
		size_t listen_count;
		char user[CONFIG_NAME_MAX];       /* default "elemta"         */
		unsigned workers;                 /* default 2                */
		char runtime_dir[CONFIG_PATH_MAX];/* pid, lock, status; default /run/elemta */
		uint64_t max_message_size;        /* default 10MB             */
		unsigned max_recipients;          /* default 1000, min 100    */
		unsigned max_connections;         /* default 10000 per worker  */
		unsigned max_connections_per_ip;  /* default 50                */
		unsigned max_errors;              /* default 10                */
		uint64_t command_timeout_ms;      /* default 5m                */
		uint64_t data_timeout_ms;         /* default 10m               */
		uint64_t min_data_rate;           /* bytes/s, default 500      */
		uint64_t min_data_rate_grace_ms;  /* default 30s               */
		uint64_t shutdown_grace_ms;       /* default 30s               */
		enum config_bare_newline bare_newline; /* default reject      */
		char banner[256];                 /* default "ESMTP Elemta"   */
		struct addr_cidr_list mynetworks; /* may relay anywhere; owned;
		                                   * default 127/8 and ::1    */
	} server;

	struct {
		char certificate[CONFIG_PATH_MAX];
		char key[CONFIG_PATH_MAX];
		enum config_tls_version min_version; /* default TLSv1.2       */
		char ciphers[512];
	} tls;

	struct {
		char users_file[CONFIG_PATH_MAX];
		bool require_tls;                 /* default true             */
		unsigned max_attempts_per_minute; /* per client, 0 = off      */
	} auth;

	struct {
		char user[CONFIG_NAME_MAX];       /* default "elemta-policy"  */
		unsigned workers;                 /* default 2                */
		char socket[CONFIG_PATH_MAX];     /* default runtime_dir/policyd.sock */
		uint64_t timeout_ms;              /* default 2000             */
		enum config_fail_mode fail_mode;  /* default tempfail         */
		char postfix_listen[CONFIG_PATH_MAX]; /* "" = off             */
		struct config_endpoint postfix_endpoint; /* postfix_listen, parsed */
	} policyd;

	struct {
		char path[CONFIG_PATH_MAX];       /* default /var/lib/elemta/counters */
		uint64_t map_size;                /* default 64MB             */
		unsigned ipv6_prefix;             /* default 64               */
		enum config_counter_backend backend; /* lmdb (default), redis */
		unsigned sync;                    /* enum counter_sync: safe|fast */
		struct {                          /* backend: redis           */
			char address[256];        /* "127.0.0.1:6379", "[::1]:6379",
			                           * "unix:/run/redis.sock"   */
			char password_file[CONFIG_PATH_MAX]; /* "" = no AUTH  */
			unsigned database;        /* SELECT 0..15, default 0   */
			char key_prefix[64];      /* default "elemta:"        */
			uint64_t timeout_ms;      /* per call, default 200     */
		} redis;
	} counters;

	struct {
		char path[CONFIG_PATH_MAX];       /* default /var/spool/elemta */
		bool fsync;                       /* default true             */
		uint64_t min_free;                /* bytes, 0 = off; 100MB    */
	} spool;

	struct {
		unsigned smtp_port;               /* default 25               */
		struct route_hop relayhost;       /* ROUTE_NONE: none         */
		struct route *routes;             /* owned, in file order     */
		size_t route_count;
		struct route_hop mx;              /* the fallback: SMTP to the
		                                   * recipient domain's MX    */
		unsigned concurrency;             /* default 20               */
		unsigned destination_concurrency; /* per next hop, default 5  */
		unsigned hop_limit;               /* Received: lines, 50      */
		struct {
			uint64_t min_backoff_ms;  /* default 5m               */
			uint64_t max_backoff_ms;  /* default 1h               */
			uint64_t max_lifetime_ms; /* default 5d               */
			uint64_t delay_warning_ms; /* 0 = off (default)       */
		} retry;
		struct {
			enum config_delivery_tls mode; /* default may         */
			char ca_file[CONFIG_PATH_MAX]; /* "": system store */
		} tls;
		struct {
			char username[256];       /* "" = no AUTH             */
			char password_file[CONFIG_PATH_MAX];
		} auth;
		uint64_t bounce_size_limit;       /* default 50KB             */
		struct {                          /* RFC 5321 4.5.3.2, ms     */
			uint64_t connect_ms, greeting_ms, command_ms, mail_ms,
			    rcpt_ms, data_init_ms, data_block_ms, data_term_ms;
		} timeouts;
	} delivery;

	struct {                                  /* common/dns.h's options */
		/* "192.0.2.1", "127.0.0.1@5353", "::1@53"; none: the
		 * system's /etc/resolv.conf.  resolver_list[i] points to
		 * resolvers[i] (dns_options wants an array of pointers). */
		char resolvers[CONFIG_RESOLVERS_MAX][CONFIG_RESOLVER_MAX];
		const char *resolver_list[CONFIG_RESOLVERS_MAX];
		size_t resolver_count;
		uint64_t timeout_ms;              /* per query, default 5s    */
		bool dnssec;                      /* validate, default false  */
		char trust_anchor_file[CONFIG_PATH_MAX]; /* "" = none         */
	} dns;

	struct {
		char listen[256];                 /* "" = off                 */
		struct config_endpoint endpoint;  /* listen, parsed (TCP)     */
	} metrics;

	struct {
		enum log_level level;             /* default info             */
	} log;

	struct config_plugin plugins[CONFIG_PLUGINS_MAX];
	size_t plugin_count;

	struct config_milter milters[CONFIG_MILTERS_MAX]; /* in file order */
	size_t milter_count;

	struct config_node *root;         /* the whole document; owned     */
};

/* A list of problems found while loading (all of them, not just the first). */
struct config_errors {
	char text[CONFIG_ERRORS_MAX][ERROR_TEXT_MAX];
	size_t count;
};

/* config_load - read and validate path.  Returns a new config (free with
 * config_free) or NULL with every problem found in errs. */
struct config *config_load(const char *path, struct config_errors *errs);
void config_free(struct config *cfg);

/* config_listen_mode_name - "smtp", "submission", "smtps", "local". */
const char *config_listen_mode_name(enum config_listen_mode m);
/* config_enum_name - how the config file spells value of the enum-valued
 * setting key ("counters.backend", CONFIG_BACKEND_REDIS -> "redis"), for
 * messages; "?" when key is not an enum setting or value not one of it. */
const char *config_enum_name(const char *key, int value);

/* config_dump - write every setting with its effective value (check-config -v). */
void config_dump(const struct config *cfg, FILE *out);

/* config_setting_name - the dotted name of the i-th setting of the table
 * ("server.workers"), NULL past the last; static storage.  Lets the
 * documentation be checked against the table (check-config --settings). */
const char *config_setting_name(size_t i);

#endif
