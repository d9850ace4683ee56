/*
 * fuzz_config.c - libFuzzer target for the configuration loader
 * (common/config.c, libyaml underneath) and for what reads its plugin
 * subtrees: the elemta_cfg_* accessors (policyd/host_cfg.c) and the
 * built-in `policy` plugin's init (policyd/policies/), which parses CIDR,
 * domain, keyword and rate-limit lists once at start-up.
 *
 * Built and run by mk/fuzz.mk / scripts/fuzz.  The input is the whole
 * file.  It is written to a memfd and loaded through /proc/self/fd/N, so
 * nothing touches the disk and relative paths resolve somewhere harmless.
 * The config is trusted input, but a typo must give errors, never a
 * crash, a leak or a hang.  Promises checked:
 *  - config_load returns a config with no errors, or NULL with at least
 *    one error, each a terminated non-empty line;
 *  - a loaded config's counts are within their arrays, its texts
 *    terminated, and config_dump() can print it;
 *  - every scalar of the tree goes through the typed conversions, every
 *    plugin subtree through the typed getters, and each built-in plugin's
 *    init either succeeds (then destroy) or explains why.
 * Skipped: a policy plugin whose config names a reputation_file (its init
 * would read whatever file the fuzzer names, /dev/zero included).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <elemta/plugin.h>

#include "config.h"
#include "error.h"
#include "log.h"
#include "../../policyd/builtin.h"

#include "fuzz.h"

static int config_fd = -1;
static char config_path[64];
static FILE *config_null;

/* config_term - s (size bytes) holds a terminated string. */
static bool
config_term(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

/* config_walk - every scalar through the typed conversions, every map
 * key through config_nearest and config_node_get. */
static void
config_walk(const struct config_node *n, unsigned depth)
{
	static const char *const words[] = {
		"server", "listen", "workers", "policyd", "counters",
		"plugins", "max_message_size", "timeout_ms",
	};
	struct error err;
	uint64_t u;
	int64_t i;
	bool b;

	FUZZ_CHECK(depth < 200, "node tree deeper than the loader allows");
	FUZZ_CHECK(config_term(n->where, sizeof(n->where)), "where");
	switch (n->type) {
	case CONFIG_NODE_SCALAR:
		FUZZ_CHECK(n->scalar != NULL && n->count == 0, "scalar node");
		(void)config_parse_bool(n->scalar, &b, &err);
		(void)config_parse_int(n->scalar, INT64_MIN, INT64_MAX, &i, &err);
		(void)config_parse_int(n->scalar, 1, 1000, &i, &err);
		(void)config_parse_duration_ms(n->scalar, &u, &err);
		(void)config_parse_size(n->scalar, &u, &err);
		(void)config_nearest(n->scalar, words, 8);
		return;
	case CONFIG_NODE_MAP:
		for (size_t k = 0; k < n->count; k++) {
			FUZZ_CHECK(n->keys[k] != NULL, "map key %zu NULL", k);
			FUZZ_CHECK(config_node_get(n, n->keys[k]) != NULL,
			    "key '%s' not found in its own map", n->keys[k]);
			(void)config_nearest(n->keys[k], words, 8);
		}
		break;
	case CONFIG_NODE_LIST:
		break;
	default:
		FUZZ_CHECK(0, "node type %d", (int)n->type);
	}
	for (size_t k = 0; k < n->count; k++)
		config_walk(n->items[k], depth + 1);
}

/* config_getters - a plugin subtree through every elemta_cfg_* getter. */
static void
config_getters(const elemta_cfg *map)
{
	static const char *const known[] = { "enabled", "limit", NULL };
	char err[512];
	const char *s;
	const elemta_cfg *list;
	int64_t i;
	uint64_t u;
	int b;

	(void)elemta_cfg_check_keys(map, known, err, sizeof(err));
	for (size_t k = 0; k < elemta_cfg_len(map); k++) {
		const char *key = elemta_cfg_key_at(map, k);

		if (key == NULL)
			continue;
		err[0] = '\0';
		(void)elemta_cfg_string(map, key, "", &s, err, sizeof(err));
		(void)elemta_cfg_int(map, key, 0, -5, 100000, &i, err,
		    sizeof(err));
		(void)elemta_cfg_bool(map, key, 0, &b, err, sizeof(err));
		(void)elemta_cfg_duration_ms(map, key, 0, &u, err, sizeof(err));
		(void)elemta_cfg_size(map, key, 0, &u, err, sizeof(err));
		(void)elemta_cfg_string_list(map, key, &list, err, sizeof(err));
		FUZZ_CHECK(config_term(err, sizeof(err)), "getter error text");
		(void)elemta_cfg_where(elemta_cfg_get(map, key));
	}
}

/* config_plugins - init + destroy of each built-in plugin entry. */
static void
config_plugins(const struct config *cfg)
{
	for (size_t k = 0; k < cfg->plugin_count; k++) {
		const struct config_plugin *pl = &cfg->plugins[k];
		const elemta_cfg *c = (const elemta_cfg *)(const void *)pl->config;
		const struct elemta_plugin *desc;
		char err[512] = "";
		void *state = NULL;

		FUZZ_CHECK(config_term(pl->name, sizeof(pl->name)) &&
		    config_term(pl->path, sizeof(pl->path)), "plugin texts");
		if (c != NULL && elemta_cfg_type(c) == ELEMTA_CFG_MAP)
			config_getters(c);
		if (pl->path[0] != '\0' || !pl->enabled)
			continue;
		desc = builtin_plugin_find(pl->name);
		if (desc == NULL || desc->init == NULL)
			continue;
		if (c != NULL && elemta_cfg_get(c, "reputation_file") != NULL)
			continue;
		if (desc->init(c, &state, err, sizeof(err)) == 0) {
			if (desc->destroy != NULL)
				desc->destroy(state);
		} else {
			FUZZ_CHECK(err[0] != '\0' && config_term(err,
			    sizeof(err)), "plugin %s init failed without a "
			    "reason", pl->name);
		}
	}
}

/* LLVMFuzzerInitialize - the memfd the inputs are written to, quiet logs. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_config", true, (enum log_level)0);
	config_fd = memfd_create("elemta.yaml", MFD_CLOEXEC);
	if (config_fd < 0) {
		perror("memfd_create");
		abort();
	}
	snprintf(config_path, sizeof(config_path), "/proc/self/fd/%d",
	    config_fd);
	config_null = fopen("/dev/null", "w");
	if (config_null == NULL)
		abort();
	return 0;
}

/* LLVMFuzzerTestOneInput - one configuration file. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config_errors errs;
	struct config *cfg;

	if (ftruncate(config_fd, 0) < 0 ||
	    pwrite(config_fd, data, size, 0) != (ssize_t)size)
		abort();
	cfg = config_load(config_path, &errs);
	if (cfg == NULL) {
		FUZZ_CHECK(errs.count >= 1 && errs.count <= CONFIG_ERRORS_MAX,
		    "NULL config with %zu errors", errs.count);
		for (size_t k = 0; k < errs.count; k++)
			FUZZ_CHECK(errs.text[k][0] != '\0' &&
			    config_term(errs.text[k], sizeof(errs.text[k])),
			    "error %zu empty or unterminated", k);
		return 0;
	}
	FUZZ_CHECK(errs.count == 0, "a config and %zu errors", errs.count);
	FUZZ_CHECK(cfg->server.listen_count <= CONFIG_LISTEN_MAX &&
	    cfg->plugin_count <= CONFIG_PLUGINS_MAX, "counts %zu %zu",
	    cfg->server.listen_count, cfg->plugin_count);
	FUZZ_CHECK(config_term(cfg->server.hostname,
	    sizeof(cfg->server.hostname)) && config_term(cfg->policyd.socket,
	    sizeof(cfg->policyd.socket)) && config_term(cfg->server.banner,
	    sizeof(cfg->server.banner)), "texts");
	for (size_t k = 0; k < cfg->server.listen_count; k++)
		FUZZ_CHECK(cfg->server.listen[k].port <= 65535, "port %u",
		    cfg->server.listen[k].port);
	config_dump(cfg, config_null);
	if (cfg->root != NULL)
		config_walk(cfg->root, 0);
	config_plugins(cfg);
	config_free(cfg);
	return 0;
}
