/*
 * relay.h - relay control: may this client send to this recipient?
 *
 * Elemta is never an open relay (issue 17, as Postfix's default
 * smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated,
 * reject_unauth_destination): a client that authenticated, or whose
 * address is in server.mynetworks, may send anywhere; any other client
 * only to a domain Elemta serves (route_domain_is_served: named in
 * delivery.routes other than by "*"), and then only without the routing
 * tricks that make a served domain forward elsewhere (Postfix's
 * allow_untrusted_routing = no): a source route (@served:user@other), a
 * '%' (user%other@served), a '!' (other!user@served) or an '@'
 * (quoted, "user@other"@served) in the local part.
 *
 * Called by session.c at RCPT, after the syntax check and before
 * policyd is asked, so no plugin can turn a refusal into an accept;
 * the refusal is "554 5.7.1 <address>: Relay access denied".  A pure
 * function of the config, the client and the parsed path.
 */
#ifndef ELEMTA_SMTPD_RELAY_H
#define ELEMTA_SMTPD_RELAY_H

#include <stdbool.h>

#include "command.h"
#include "config.h"

enum relay_decision {
	RELAY_TRUSTED,      /* authenticated or in mynetworks: anywhere   */
	RELAY_SERVED,       /* to a served domain, no routing trick       */
	RELAY_UNSERVED,     /* refused: a domain Elemta does not serve    */
	RELAY_ROUTING,      /* refused: a sender-specified routing trick  */
};

/* relay_check - the decision for recipient rcpt (as command_parse_rcpt
 * left it) from the client at client_address (canonical text, common/
 * addr.h), authenticated or not.  The bare "postmaster" (RFC 5321
 * 4.1.1.3) is ours, so served. */
enum relay_decision relay_check(const struct config *cfg,
    const char *client_address, bool authenticated,
    const struct command_path *rcpt);
/* relay_allowed - the decision lets the recipient through to policyd. */
bool relay_allowed(enum relay_decision d);
/* relay_decision_name - "trusted", "served", "unserved domain",
 * "sender-specified routing", for logs. */
const char *relay_decision_name(enum relay_decision d);

#endif
