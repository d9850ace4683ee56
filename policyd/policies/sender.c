/*
 * sender.c - the `policy` plugin's sender rules at MAIL:
 * reject_unauthenticated_null_sender (550 5.7.1), validate_sender_format
 * (553 5.1.7), allowed_sender_domains (550 5.7.1) and max_message_size
 * (552 5.3.4, on the SIZE= declared at MAIL and on the actual size at end
 * of data).
 *
 * Called from policy.c's hooks.  The sender is untrusted text from the
 * client (bounded by the wire parser); it is only matched, and quoted
 * back in replies truncated.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "policy.h"

/* policy_sender_config - the MAIL-phase keys. */
int
policy_sender_config(struct policy *p, const elemta_cfg *cfg, char *err,
    size_t errlen)
{
	int v;

	if (elemta_cfg_bool(cfg, "reject_unauthenticated_null_sender", 0, &v,
	    err, errlen) != 0)
		return -1;
	p->reject_unauthenticated_null_sender = v != 0;
	if (elemta_cfg_bool(cfg, "validate_sender_format", 0, &v, err, errlen) != 0)
		return -1;
	p->validate_sender_format = v != 0;
	if (policy_cfg_domains(cfg, "allowed_sender_domains",
	    &p->allowed_sender_domains, err, errlen) != 0)
		return -1;
	return elemta_cfg_size(cfg, "max_message_size", 0, &p->max_message_size,
	    err, errlen);
}

/* policy_sender_free - release the sender domain list. */
void
policy_sender_free(struct policy *p)
{
	addr_domain_list_free(&p->allowed_sender_domains);
}

/* sender_local_char - [a-zA-Z0-9._%+-], the reference's local part. */
static bool
sender_local_char(unsigned char c)
{
	return isalnum(c) || c == '.' || c == '_' || c == '%' || c == '+' ||
	    c == '-';
}

/* policy_sender_format_valid - ^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$
 * (the reference's pattern), plus RFC 5321's lengths: local part at most
 * 64 octets, path at most 254. */
bool
policy_sender_format_valid(const char *a)
{
	const char *at = strchr(a, '@');
	const char *dom, *dot;
	size_t tld;

	if (at == NULL || at == a || (size_t)(at - a) > 64 || strlen(a) > 254)
		return false;
	for (const char *p = a; p < at; p++)
		if (!sender_local_char((unsigned char)*p))
			return false;
	dom = at + 1;
	for (const char *p = dom; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
			return false;
	dot = strrchr(dom, '.');
	if (dot == NULL || dot == dom)
		return false;
	tld = strlen(dot + 1);
	if (tld < 2)
		return false;
	for (const char *p = dot + 1; *p; p++)
		if (!isalpha((unsigned char)*p))
			return false;
	return true;
}

/* policy_rule_null_sender - bounces only from authenticated clients. */
enum elemta_action
policy_rule_null_sender(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	const char *s = elemta_ctx_sender(ctx);

	if (!p->reject_unauthenticated_null_sender || s == NULL || *s != '\0' ||
	    elemta_ctx_authenticated(ctx))
		return ELEMTA_CONTINUE;
	return elemta_result_set(res, ELEMTA_REJECT, 550, "5.7.1",
	    "Unauthenticated bounce messages not accepted");
}

/* policy_rule_sender_format - a syntactically plausible sender. */
enum elemta_action
policy_rule_sender_format(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	const char *s = elemta_ctx_sender(ctx);

	if (!p->validate_sender_format || s == NULL || *s == '\0' ||
	    policy_sender_format_valid(s))
		return ELEMTA_CONTINUE;
	return elemta_result_set(res, ELEMTA_REJECT, 553, "5.1.7",
	    "Invalid sender address format");
}

/* policy_rule_sender_domains - only listed sender domains (the null
 * sender is the null-sender rule's business). */
enum elemta_action
policy_rule_sender_domains(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	const char *s = elemta_ctx_sender(ctx);
	const char *dom;

	if (p->allowed_sender_domains.count == 0 || s == NULL || *s == '\0')
		return ELEMTA_CONTINUE;
	dom = addr_mail_domain(s);
	if (dom != NULL && addr_domain_list_match(&p->allowed_sender_domains, dom))
		return ELEMTA_CONTINUE;
	return elemta_result_set(res, ELEMTA_REJECT, 550, "5.7.1",
	    "Sender domain %.100s is not allowed", dom ? dom : "(none)");
}

/* policy_rule_message_size - declared (MAIL SIZE=) or actual (end of
 * data) size over the limit. */
enum elemta_action
policy_rule_message_size(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	uint64_t size = elemta_ctx_size(ctx);

	if (p->max_message_size == 0 || size <= p->max_message_size)
		return ELEMTA_CONTINUE;
	return elemta_result_set(res, ELEMTA_REJECT, 552, "5.3.4",
	    "Message size exceeds fixed maximum message size (%llu bytes)",
	    (unsigned long long)p->max_message_size);
}
