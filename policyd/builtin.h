/*
 * builtin.h - the registry of plugins compiled into elemta-policyd.
 *
 * A config entry without `path` names one of these.  Each is an ordinary
 * descriptor on the public ABI of <elemta/plugin.h> (dogfooding): the host
 * treats it exactly like a loaded shared object, minus dlopen.
 */
#ifndef ELEMTA_POLICYD_BUILTIN_H
#define ELEMTA_POLICYD_BUILTIN_H

#include <elemta/plugin.h>

/* builtin_plugin_find - the descriptor of a built-in plugin, or NULL. */
const struct elemta_plugin *builtin_plugin_find(const char *name);
/* builtin_plugin_names - "policy" (comma-separated), for error messages. */
const char *builtin_plugin_names(void);

#endif
