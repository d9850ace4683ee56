/*
 * relay.c - relay control at RCPT (see relay.h): trusted clients may
 * relay, everyone else reaches only the served domains, and no routing
 * trick may hide another destination behind one.
 *
 * Called by session.c once per syntactically valid RCPT.  The address
 * was parsed and its domain made canonical by command.c; nothing here
 * allocates.
 */
#include <string.h>

#include "addr.h"
#include "relay.h"
#include "route.h"

/* relay_client_trusted - authenticated, or from server.mynetworks. */
static bool
relay_client_trusted(const struct config *cfg, const char *client_address,
    bool authenticated)
{
	struct addr_ip ip;

	if (authenticated)
		return true;
	if (client_address == NULL ||
	    addr_ip_parse(client_address, &ip) < 0)
		return false;
	return addr_cidr_list_match(&cfg->server.mynetworks, &ip) >= 0;
}

/* relay_local_routes - the local part (address up to domain - 1) holds
 * a routing operator: '%', '!' or an '@' (only possible quoted).  The
 * quotes and backslashes of a quoted local part do not hide them. */
static bool
relay_local_routes(const char *address, const char *domain)
{
	size_t len = (size_t)(domain - 1 - address);

	for (size_t i = 0; i < len; i++)
		if (address[i] == '%' || address[i] == '!' || address[i] == '@')
			return true;
	return false;
}

/* relay_check - see relay.h. */
enum relay_decision
relay_check(const struct config *cfg, const char *client_address,
    bool authenticated, const struct command_path *rcpt)
{
	const char *domain;

	if (relay_client_trusted(cfg, client_address, authenticated))
		return RELAY_TRUSTED;
	domain = addr_mail_domain(rcpt->address);
	if (domain == NULL)
		/* Only the bare postmaster parses without a domain. */
		return rcpt->source_route ? RELAY_ROUTING : RELAY_SERVED;
	if (rcpt->source_route || relay_local_routes(rcpt->address, domain))
		return RELAY_ROUTING;
	if (!route_domain_is_served(cfg, domain))
		return RELAY_UNSERVED;
	return RELAY_SERVED;
}

/* relay_allowed - see relay.h. */
bool
relay_allowed(enum relay_decision d)
{
	return d == RELAY_TRUSTED || d == RELAY_SERVED;
}

/* relay_decision_name - see relay.h. */
const char *
relay_decision_name(enum relay_decision d)
{
	switch (d) {
	case RELAY_TRUSTED:
		return "trusted";
	case RELAY_SERVED:
		return "served";
	case RELAY_UNSERVED:
		return "unserved domain";
	case RELAY_ROUTING:
		return "sender-specified routing";
	}
	return "?";
}
