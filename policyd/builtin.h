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

/* An AUTH gate: a built-in plugin's own check run before the password is
 * hashed (policyd/auth.c, auth_decide_begin), so an attempt its rules
 * refuse anyway - a locked-out address - costs no hash.  Not part of the
 * public ABI: a plugin's on_auth hook still sees every hashed attempt.
 * Returns CONTINUE (and may ask for the answer to be delayed by
 * *delay_ms) or a refusal in res. */
typedef enum elemta_action (*builtin_auth_gate)(void *state,
    const elemta_ctx *ctx, struct elemta_result *res, uint32_t *delay_ms);

/* builtin_plugin_find - the descriptor of a built-in plugin, or NULL. */
const struct elemta_plugin *builtin_plugin_find(const char *name);
/* builtin_auth_gate_of - the AUTH gate of a built-in descriptor, or NULL
 * (any other descriptor). */
builtin_auth_gate builtin_auth_gate_of(const struct elemta_plugin *desc);
/* builtin_plugin_names - "policy" (comma-separated), for error messages. */
const char *builtin_plugin_names(void);

#endif
