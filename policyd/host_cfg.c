/*
 * host_cfg.c - the elemta_cfg_* accessors of <elemta/plugin.h>: a plugin's
 * view of its `config:` subtree.
 *
 * Called by plugins from init().  An elemta_cfg handle is a config_node of
 * common/config.h (the loader keeps plugin subtrees as node trees); the
 * conversions are config.c's, so a duration or size means the same in a
 * plugin as in the rest of the file.  Every error names the place:
 * "file:line:column: key 'k': problem".
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "host_internal.h"
#include "log.h"

/* host_cfg_node - the node behind a handle (the handle is the node). */
const struct config_node *
host_cfg_node(const elemta_cfg *cfg)
{
	return (const struct config_node *)(const void *)cfg;
}

/* cfg_handle - the handle of a node. */
static const elemta_cfg *
cfg_handle(const struct config_node *n)
{
	return (const elemta_cfg *)(const void *)n;
}

/* ==== Navigation ==== */

/* elemta_cfg_type - scalar, list or map (0 for NULL). */
enum elemta_cfg_type
elemta_cfg_type(const elemta_cfg *node)
{
	const struct config_node *n = host_cfg_node(node);

	return n ? (enum elemta_cfg_type)n->type : (enum elemta_cfg_type)0;
}

/* elemta_cfg_get - the value of key in map, or NULL. */
const elemta_cfg *
elemta_cfg_get(const elemta_cfg *map, const char *key)
{
	const struct config_node *n = host_cfg_node(map);

	if (n == NULL || key == NULL || n->type != CONFIG_NODE_MAP)
		return NULL;
	for (size_t i = 0; i < n->count; i++)
		if (n->keys[i] != NULL && strcmp(n->keys[i], key) == 0)
			return cfg_handle(n->items[i]);
	return NULL;
}

/* elemta_cfg_len - list items or map pairs. */
size_t
elemta_cfg_len(const elemta_cfg *node)
{
	const struct config_node *n = host_cfg_node(node);

	if (n == NULL || n->type == CONFIG_NODE_SCALAR)
		return 0;
	return n->count;
}

/* elemta_cfg_at - the i-th list item or map value. */
const elemta_cfg *
elemta_cfg_at(const elemta_cfg *node, size_t i)
{
	const struct config_node *n = host_cfg_node(node);

	if (n == NULL || n->type == CONFIG_NODE_SCALAR || i >= n->count)
		return NULL;
	return cfg_handle(n->items[i]);
}

/* elemta_cfg_key_at - the i-th key of a map. */
const char *
elemta_cfg_key_at(const elemta_cfg *map, size_t i)
{
	const struct config_node *n = host_cfg_node(map);

	if (n == NULL || n->type != CONFIG_NODE_MAP || i >= n->count)
		return NULL;
	return n->keys[i];
}

/* elemta_cfg_scalar - the text of a scalar, NULL otherwise. */
const char *
elemta_cfg_scalar(const elemta_cfg *node)
{
	const struct config_node *n = host_cfg_node(node);

	if (n == NULL || n->type != CONFIG_NODE_SCALAR)
		return NULL;
	return n->scalar ? n->scalar : "";
}

/* elemta_cfg_where - "file:line:column" of a node. */
const char *
elemta_cfg_where(const elemta_cfg *node)
{
	const struct config_node *n = host_cfg_node(node);

	return n ? n->where : "";
}

/* ==== Typed getters ==== */

/* cfg_fail - "where: key 'k': problem" into err; returns -1. */
static int __attribute__((format(printf, 5, 6)))
cfg_fail(char *err, size_t errlen, const struct config_node *node,
    const char *key, const char *fmt, ...)
{
	char problem[ERROR_TEXT_MAX], esc[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(problem, sizeof(problem), fmt, ap);
	va_end(ap);
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s%skey '%s': %s",
		    node ? node->where : "", node && node->where[0] ? ": " : "",
		    LOG_ESC(esc, key ? key : ""), problem);
	return -1;
}

/* cfg_type_name - for "expected X, got a list". */
static const char *
cfg_type_name(const struct config_node *n)
{
	switch (n->type) {
	case CONFIG_NODE_SCALAR:
		return "a single value";
	case CONFIG_NODE_LIST:
		return "a list";
	case CONFIG_NODE_MAP:
		return "a map";
	}
	return "an unknown node";
}

/* cfg_lookup - the node for key: 0 with *out NULL when absent, -1 when the
 * parent is not a map. */
static int
cfg_lookup(const elemta_cfg *map, const char *key,
    const struct config_node **out, char *err, size_t errlen)
{
	const struct config_node *m = host_cfg_node(map);

	*out = NULL;
	if (m == NULL)
		return 0;
	if (m->type != CONFIG_NODE_MAP)
		return cfg_fail(err, errlen, m, key, "the plugin config must be "
		    "a map of keys, got %s", cfg_type_name(m));
	*out = host_cfg_node(elemta_cfg_get(map, key));
	return 0;
}

/* cfg_scalar - the scalar text of key, NULL when absent; -1 when the value
 * is a list or map. */
static int
cfg_scalar(const elemta_cfg *map, const char *key, const char *expected,
    const char **text, const struct config_node **node, char *err,
    size_t errlen)
{
	const struct config_node *n;

	*text = NULL;
	if (cfg_lookup(map, key, &n, err, errlen) != 0)
		return -1;
	*node = n;
	if (n == NULL)
		return 0;
	if (n->type != CONFIG_NODE_SCALAR)
		return cfg_fail(err, errlen, n, key, "expected %s, got %s",
		    expected, cfg_type_name(n));
	*text = n->scalar ? n->scalar : "";
	return 0;
}

/* elemta_cfg_string - a scalar as text. */
int
elemta_cfg_string(const elemta_cfg *map, const char *key, const char *def,
    const char **out, char *err, size_t errlen)
{
	const struct config_node *n = NULL;
	const char *s;

	if (cfg_scalar(map, key, "a string", &s, &n, err, errlen) != 0)
		return -1;
	*out = s ? s : def;
	return 0;
}

/* elemta_cfg_int - an integer within [min, max]. */
int
elemta_cfg_int(const elemta_cfg *map, const char *key, int64_t def,
    int64_t min, int64_t max, int64_t *out, char *err, size_t errlen)
{
	const struct config_node *n = NULL;
	struct error e;
	const char *s;
	int64_t v;

	if (cfg_scalar(map, key, "an integer", &s, &n, err, errlen) != 0)
		return -1;
	if (s == NULL) {
		*out = def;
		return 0;
	}
	if (config_parse_int(s, min, max, &v, &e) != 0)
		return cfg_fail(err, errlen, n, key, "%s", e.text);
	*out = v;
	return 0;
}

/* elemta_cfg_bool - true/false, yes/no, on/off. */
int
elemta_cfg_bool(const elemta_cfg *map, const char *key, int def, int *out,
    char *err, size_t errlen)
{
	const struct config_node *n = NULL;
	struct error e;
	const char *s;
	bool v;

	if (cfg_scalar(map, key, "true or false", &s, &n, err, errlen) != 0)
		return -1;
	if (s == NULL) {
		*out = def ? 1 : 0;
		return 0;
	}
	if (config_parse_bool(s, &v, &e) != 0)
		return cfg_fail(err, errlen, n, key, "%s", e.text);
	*out = v ? 1 : 0;
	return 0;
}

/* elemta_cfg_duration_ms - "30s", "5m", "250ms" or bare seconds. */
int
elemta_cfg_duration_ms(const elemta_cfg *map, const char *key, uint64_t def,
    uint64_t *out, char *err, size_t errlen)
{
	const struct config_node *n = NULL;
	struct error e;
	const char *s;
	uint64_t v;

	if (cfg_scalar(map, key, "a duration like 30s", &s, &n, err, errlen) != 0)
		return -1;
	if (s == NULL) {
		*out = def;
		return 0;
	}
	if (config_parse_duration_ms(s, &v, &e) != 0)
		return cfg_fail(err, errlen, n, key, "%s", e.text);
	*out = v;
	return 0;
}

/* elemta_cfg_size - "10MB", "512K" or bare bytes. */
int
elemta_cfg_size(const elemta_cfg *map, const char *key, uint64_t def,
    uint64_t *out, char *err, size_t errlen)
{
	const struct config_node *n = NULL;
	struct error e;
	const char *s;
	uint64_t v;

	if (cfg_scalar(map, key, "a size like 10MB", &s, &n, err, errlen) != 0)
		return -1;
	if (s == NULL) {
		*out = def;
		return 0;
	}
	if (config_parse_size(s, &v, &e) != 0)
		return cfg_fail(err, errlen, n, key, "%s", e.text);
	*out = v;
	return 0;
}

/* elemta_cfg_string_list - a list whose items are all scalars.  An empty
 * value (`key:` or `key: ~`) is an empty list, i.e. absent. */
int
elemta_cfg_string_list(const elemta_cfg *map, const char *key,
    const elemta_cfg **out, char *err, size_t errlen)
{
	const struct config_node *n;

	*out = NULL;
	if (cfg_lookup(map, key, &n, err, errlen) != 0)
		return -1;
	if (n == NULL)
		return 0;
	if (n->type == CONFIG_NODE_SCALAR) {
		const char *s = n->scalar ? n->scalar : "";

		if (*s == '\0')         /* the loader's null (config.h) */
			return 0;
		return cfg_fail(err, errlen, n, key, "expected a list of "
		    "strings, got a single value (write it as [\"%.64s\"])", s);
	}
	if (n->type != CONFIG_NODE_LIST)
		return cfg_fail(err, errlen, n, key, "expected a list of "
		    "strings, got %s", cfg_type_name(n));
	for (size_t i = 0; i < n->count; i++)
		if (n->items[i]->type != CONFIG_NODE_SCALAR)
			return cfg_fail(err, errlen, n->items[i], key,
			    "item %zu: expected a string, got %s", i + 1,
			    cfg_type_name(n->items[i]));
	*out = cfg_handle(n);
	return 0;
}

/* elemta_cfg_check_keys - refuse the first unknown key, suggesting the
 * nearest known one. */
int
elemta_cfg_check_keys(const elemta_cfg *map, const char *const known[],
    char *err, size_t errlen)
{
	const struct config_node *m = host_cfg_node(map);
	size_t nknown = 0;

	if (m == NULL)
		return 0;
	if (m->type != CONFIG_NODE_MAP)
		return cfg_fail(err, errlen, m, "config", "expected a map of "
		    "keys, got %s", cfg_type_name(m));
	while (known != NULL && known[nknown] != NULL)
		nknown++;
	for (size_t i = 0; i < m->count; i++) {
		const char *key = m->keys[i] ? m->keys[i] : "";
		const char *near;
		bool found = false;

		for (size_t k = 0; k < nknown && !found; k++)
			found = strcmp(known[k], key) == 0;
		if (found)
			continue;
		near = nknown ? config_nearest(key, known, nknown) : NULL;
		if (near != NULL)
			return cfg_fail(err, errlen, m->items[i], key,
			    "unknown key (did you mean '%s'?)", near);
		return cfg_fail(err, errlen, m->items[i], key, "unknown key");
	}
	return 0;
}

/* elemta_cfg_path - a path, relative ones resolved against the config
 * file's directory (known while the host loads a config). */
int
elemta_cfg_path(const elemta_cfg *map, const char *key, const char *def,
    char *out, size_t outlen, char *err, size_t errlen)
{
	const struct config_node *n = NULL;
	const char *s, *dir = "";
	int len;

	if (cfg_scalar(map, key, "a file path", &s, &n, err, errlen) != 0)
		return -1;
	if (s == NULL)
		s = def ? def : "";
	if (*s == '\0' || *s == '/') {
		if (str_copy(out, s, outlen) >= outlen)
			return cfg_fail(err, errlen, n, key, "path too long");
		return 0;
	}
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20)
			return cfg_fail(err, errlen, n, key, "the path contains "
			    "a control character");
	if (host_ctx_init_host != NULL)
		dir = host_ctx_init_host->config_dir;
	len = *dir ? snprintf(out, outlen, "%s/%s", dir, s) :
	    snprintf(out, outlen, "%s", s);
	if (len < 0 || (size_t)len >= outlen)
		return cfg_fail(err, errlen, n, key, "path too long");
	return 0;
}
