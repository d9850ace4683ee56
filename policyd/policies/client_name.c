/*
 * client_name.c - the `require_client_name` rule of the built-in policy
 * plugin (Postfix's reject_unknown_client_hostname and
 * reject_unknown_reverse_client_hostname):
 *
 *   require_client_name: fcrdns   # a name whose A/AAAA holds the address
 *   require_client_name: ptr      # any PTR name
 *   require_client_name: off      # the default
 *
 * The names are policyd's (looked up at CONNECT before the chain, see
 * plugin.h): when a lookup failed temporarily the client is told
 * 450 4.7.25 "Client host rejected: cannot find your hostname" (it may
 * retry), when it definitely failed (no PTR, NXDOMAIN, no PTR name
 * pointing back) 550 5.7.25.  Without a status (a Postfix's request, or
 * no resolver) an "unknown" name cannot be told apart and is 450.
 * Clients in exempt_ips are not checked.  Called by policy.c's client
 * rules; sees requests only through <elemta/plugin.h>.
 */
#include <stdio.h>
#include <string.h>

#include "policy.h"

#define METRIC_NAME_REFUSED "policy_client_name_refused_total"
#define METRIC_NAME_DEFERRED "policy_client_name_deferred_total"

/* policy_client_name_config - require_client_name. */
int
policy_client_name_config(struct policy *p, const elemta_cfg *cfg, char *err,
    size_t errlen)
{
	const char *v;

	if (elemta_cfg_string(cfg, "require_client_name", "off", &v, err,
	    errlen) != 0)
		return -1;
	if (strcmp(v, "off") == 0)
		p->require_client_name = POLICY_NAME_OFF;
	else if (strcmp(v, "ptr") == 0)
		p->require_client_name = POLICY_NAME_PTR;
	else if (strcmp(v, "fcrdns") == 0)
		p->require_client_name = POLICY_NAME_FCRDNS;
	else {
		snprintf(err, errlen, "%s: key 'require_client_name': "
		    "'fcrdns', 'ptr' or 'off', not '%s'",
		    elemta_cfg_where(elemta_cfg_get(cfg, "require_client_name")),
		    v);
		return -1;
	}
	return 0;
}

/* policy_rule_client_name - refuse a client without the name asked for. */
enum elemta_action
policy_rule_client_name(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	bool fcrdns = p->require_client_name == POLICY_NAME_FCRDNS;
	const char *status, *name;
	bool temporary;

	if (p->require_client_name == POLICY_NAME_OFF ||
	    policy_client_exempt(p, ctx))
		return ELEMTA_CONTINUE;
	status = elemta_ctx_attr(ctx, fcrdns ? ELEMTA_ATTR_CLIENT_NAME_STATUS :
	    ELEMTA_ATTR_REVERSE_CLIENT_NAME_STATUS);
	name = fcrdns ? elemta_ctx_client_name(ctx) :
	    elemta_ctx_reverse_client_name(ctx);
	if (status != NULL) {
		if (strcmp(status, ELEMTA_NAME_OK) == 0)
			return ELEMTA_CONTINUE;
		temporary = strcmp(status, ELEMTA_NAME_TEMPFAIL) == 0;
	} else {
		if (strcmp(name, "unknown") != 0)
			return ELEMTA_CONTINUE;
		temporary = true;
	}
	elemta_metric_add(ctx, temporary ? METRIC_NAME_DEFERRED :
	    METRIC_NAME_REFUSED, 1);
	return elemta_result_set(res, temporary ? ELEMTA_TEMPFAIL : ELEMTA_REJECT,
	    temporary ? 450 : 550, temporary ? "4.7.25" : "5.7.25",
	    "Client host rejected: cannot find your hostname, [%s]",
	    elemta_ctx_client_ip(ctx));
}
