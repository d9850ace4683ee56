/*
 * plugin_proposed.h - host services proposed for <elemta/plugin.h>.
 *
 * elemta-policyd exports these (host_ctx.c, host_cfg.c) like the rest of
 * the plugin API, and the built-in `policy` plugin uses them; they belong
 * in the public header and are kept here only until that header gains
 * them (adding functions needs no ABI bump).  A plugin built outside the
 * tree may declare them itself the same way.
 */
#ifndef ELEMTA_POLICYD_PLUGIN_PROPOSED_H
#define ELEMTA_POLICYD_PLUGIN_PROPOSED_H

#include <elemta/plugin.h>

/* Reputation: a shared score 0..100 per key (namespaced per plugin like
 * rate keys), neutral 50 when unknown, decaying toward 50 with a 24-hour
 * half-life: s(t) = 50 + (s0 - 50) * 2^(-t / 24h).  elemta_reputation_get
 * stores the current score; returns 0, or -1 when the table failed. */
int elemta_reputation_get(const elemta_ctx *ctx, const char *key,
    double *score);
/* Decays key's score to now, adds delta and clamps to 0..100.  Unlike a
 * rate hit it is kept even when the decision ends refused (a refusal is
 * exactly what may lower a score).  0, or -1 when the table failed. */
int elemta_reputation_adjust(const elemta_ctx *ctx, const char *key,
    double delta);

/* A file path: stored into out as given when absolute, else resolved
 * against the directory of the config file (like every path in it).
 * Returns 0 (out = def, or "" when def is NULL, when the key is absent),
 * or -1 with "file:line:column: key 'k': problem" in err. */
int elemta_cfg_path(const elemta_cfg *map, const char *key, const char *def,
    char *out, size_t outlen, char *err, size_t errlen);

#endif
