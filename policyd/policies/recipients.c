/*
 * recipients.c - the `policy` plugin's recipient rules at RCPT:
 * blocked_recipient_domains (550 5.7.1), allowed_relay_domains (554 5.7.1
 * Relay access denied; authenticated sessions may relay anywhere) and
 * max_recipients_per_message (452 4.5.3).
 *
 * Called from policy.c's on_rcpt_to.  The recipient is untrusted client
 * text; domain lists were parsed once at start-up (common/addr.h: exact
 * "example.com", subdomains ".example.com", compared in the canonical form
 * of common/domain.h).  smtpd sends canonical domains already; a real
 * Postfix sends the client's spelling, which the lists canonicalise.
 */
#include <string.h>

#include "domain.h"
#include "error.h"
#include "policy.h"

/* policy_recipients_config - the RCPT-phase keys. */
int
policy_recipients_config(struct policy *p, const elemta_cfg *cfg, char *err,
    size_t errlen)
{
	if (policy_cfg_domains(cfg, "blocked_recipient_domains",
	    &p->blocked_recipient_domains, err, errlen) != 0 ||
	    policy_cfg_domains(cfg, "allowed_relay_domains",
	    &p->allowed_relay_domains, err, errlen) != 0)
		return -1;
	return policy_cfg_count(cfg, "max_recipients_per_message", 1000000,
	    &p->max_recipients_per_message, err, errlen);
}

/* policy_recipients_free - release the recipient domain lists. */
void
policy_recipients_free(struct policy *p)
{
	addr_domain_list_free(&p->blocked_recipient_domains);
	addr_domain_list_free(&p->allowed_relay_domains);
}

/* policy_rule_blocked_recipients - mail to a listed domain is refused. */
enum elemta_action
policy_rule_blocked_recipients(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	const char *r = elemta_ctx_recipient(ctx);
	const char *dom;
	char canon[DOMAIN_MAX + 1];

	if (p->blocked_recipient_domains.count == 0 || r == NULL)
		return ELEMTA_CONTINUE;
	dom = addr_mail_domain(r);
	if (dom == NULL)
		return ELEMTA_CONTINUE;
	/* A domain with no canonical form matches no list: refused here,
	 * or bob@<U+FF0E>blocked.com (".blocked.com") would pass the list. */
	if (domain_canonical(dom, strlen(dom), canon, sizeof(canon), NULL) < 0)
		return elemta_result_set(res, ELEMTA_REJECT, 553, "5.1.3",
		    "Recipient domain is not a valid domain name");
	if (!addr_domain_list_match(&p->blocked_recipient_domains, canon))
		return ELEMTA_CONTINUE;
	return elemta_result_set(res, ELEMTA_REJECT, 550, "5.7.1",
	    "Recipient domain %.100s is blocked", canon);
}

/* policy_rule_relay - unauthenticated clients may only send to the
 * listed domains; a recipient without a domain is local and allowed. */
enum elemta_action
policy_rule_relay(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	const char *r = elemta_ctx_recipient(ctx);
	const char *dom;

	if (p->allowed_relay_domains.count == 0 || r == NULL ||
	    elemta_ctx_authenticated(ctx))
		return ELEMTA_CONTINUE;
	dom = addr_mail_domain(r);
	if (dom == NULL || addr_domain_list_match(&p->allowed_relay_domains, dom))
		return ELEMTA_CONTINUE;
	return elemta_result_set(res, ELEMTA_REJECT, 554, "5.7.1",
	    "Relay access denied");
}

/* policy_rule_max_recipients - the count is of recipients already
 * accepted, so the (max+1)th is the first refused. */
enum elemta_action
policy_rule_max_recipients(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	if (p->max_recipients_per_message == 0 ||
	    elemta_ctx_recipient_count(ctx) < p->max_recipients_per_message)
		return ELEMTA_CONTINUE;
	return elemta_result_set(res, ELEMTA_TEMPFAIL, 452, "4.5.3",
	    "Too many recipients (at most %u per message)",
	    (unsigned)p->max_recipients_per_message);
}
