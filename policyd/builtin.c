/*
 * builtin.c - the registry of plugins compiled into elemta-policyd.
 *
 * Called by plugin_host.c when a plugins[] entry has no `path`.  Adding a
 * built-in plugin is one line in the table below.
 */
#include <string.h>

#include "builtin.h"
#include "policies/policy.h"

static const struct {
	const char *name;
	const struct elemta_plugin *desc;
	builtin_auth_gate auth_gate;
} builtins[] = {
	{ "policy", &policy_plugin_descriptor, policy_auth_gate },
};

/* builtin_plugin_find - look a built-in plugin up by its config name. */
const struct elemta_plugin *
builtin_plugin_find(const char *name)
{
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
		if (strcmp(builtins[i].name, name) == 0)
			return builtins[i].desc;
	return NULL;
}

/* builtin_auth_gate_of - the gate beside a built-in descriptor. */
builtin_auth_gate
builtin_auth_gate_of(const struct elemta_plugin *desc)
{
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
		if (builtins[i].desc == desc)
			return builtins[i].auth_gate;
	return NULL;
}

/* builtin_plugin_names - the names, for "no such built-in" errors. */
const char *
builtin_plugin_names(void)
{
	return "policy";
}
