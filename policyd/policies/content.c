/*
 * content.c - the `policy` plugin's content rules at END-OF-MESSAGE:
 * prohibited_keywords and prohibited_extensions, and content_action
 * (reject: 550 5.7.1, the default; quarantine: the message is stored in
 * spool quarantine/ and the client told 250; discard: told 250, nothing
 * stored).
 *
 * Called from policy.c's on_data hook.  The message is untrusted network
 * input; it is read only by the GMime-based scanner (content_scan.h)
 * through the host's read-only descriptor, once for both rules.  A scan
 * that fails is a 451 4.3.0 tempfail, never a clean message; a message
 * too complex to scan (CONTENT_SCAN_LIMIT) is treated as a match.  Without
 * a descriptor (the Postfix listener, which never passes the message) the
 * content rules do not apply: logged at debug level.
 */
#include <stdio.h>
#include <string.h>

#include "content_scan.h"
#include "error.h"
#include "policy.h"

/* content_cfg_list - one list key into rules through add(). */
static int
content_cfg_list(const elemta_cfg *cfg, const char *key,
    struct content_scan_rules *rules,
    int (*add)(struct content_scan_rules *, const char *, struct error *),
    char *err, size_t errlen)
{
	const elemta_cfg *items;
	struct error e;

	if (elemta_cfg_string_list(cfg, key, &items, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < elemta_cfg_len(items); i++) {
		const elemta_cfg *it = elemta_cfg_at(items, i);

		if (add(rules, elemta_cfg_scalar(it), &e) != 0) {
			snprintf(err, errlen, "%s: key '%s': %s",
			    elemta_cfg_where(it), key, e.text);
			return -1;
		}
	}
	return 0;
}

/* policy_content_config - prohibited_keywords, prohibited_extensions,
 * content_action (reject | quarantine | discard). */
int
policy_content_config(struct policy *p, const elemta_cfg *cfg, char *err,
    size_t errlen)
{
	const char *action;

	content_scan_rules_init(&p->content);
	if (content_cfg_list(cfg, "prohibited_keywords", &p->content,
	    content_scan_rules_add_keyword, err, errlen) != 0 ||
	    content_cfg_list(cfg, "prohibited_extensions", &p->content,
	    content_scan_rules_add_extension, err, errlen) != 0 ||
	    elemta_cfg_string(cfg, "content_action", "reject", &action, err,
	    errlen) != 0)
		return -1;
	if (wire_action_parse(action, &p->content_action) != 0 ||
	    (p->content_action != ELEMTA_REJECT &&
	    p->content_action != ELEMTA_QUARANTINE &&
	    p->content_action != ELEMTA_DISCARD)) {
		snprintf(err, errlen, "%s: key 'content_action': expected "
		    "reject, quarantine or discard",
		    elemta_cfg_where(elemta_cfg_get(cfg, "content_action")));
		return -1;
	}
	/* Accepted but pointless: say so rather than let an operator
	 * believe a rule is active. */
	if (elemta_cfg_get(cfg, "content_action") != NULL &&
	    p->content.keyword_count == 0 && p->content.extension_count == 0)
		elemta_log(NULL, ELEMTA_LOG_WARNING, "content_action is set but "
		    "neither prohibited_keywords nor prohibited_extensions is: "
		    "no content rule is active");
	return 0;
}

/* policy_content_free - release the keyword and extension lists. */
void
policy_content_free(struct policy *p)
{
	content_scan_rules_free(&p->content);
}

/* content_reason - the reply text for a match (the keyword itself is not
 * told to the sender: it would teach a spammer what to avoid). */
static void
content_reason(const struct content_scan_match *m, char *buf, size_t size)
{
	switch (m->kind) {
	case CONTENT_SCAN_EXTENSION:
		snprintf(buf, size, "attachment type .%.64s not allowed",
		    m->item);
		break;
	case CONTENT_SCAN_LIMIT:
		snprintf(buf, size, "MIME structure too complex to scan");
		break;
	case CONTENT_SCAN_KEYWORD:
	case CONTENT_SCAN_NONE:
	default:
		snprintf(buf, size, "prohibited content");
		break;
	}
}

/* policy_rule_content - scan the message once for both rules; a match
 * takes content_action. */
enum elemta_action
policy_rule_content(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	struct content_scan_match m;
	struct error e;
	char reason[160];
	int fd;

	if ((p->content.keyword_count == 0 && p->content.extension_count == 0) ||
	    !policy_phase_is(ctx, ELEMTA_PHASE_EOM))
		return ELEMTA_CONTINUE;
	fd = elemta_ctx_message_fd(ctx);
	if (fd < 0) {
		elemta_log(ctx, ELEMTA_LOG_DEBUG, "no message descriptor at "
		    "END-OF-MESSAGE (%s listener): content rules skipped",
		    policy_from_postfix(ctx) ? ELEMTA_LISTENER_POSTFIX :
		    ELEMTA_LISTENER_ELEMTA);
		return ELEMTA_CONTINUE;
	}
	if (content_scan_fd(&p->content, fd, &m, &e) != 0) {
		/* e.text names a descriptor and errno text, no message bytes. */
		elemta_log(ctx, ELEMTA_LOG_ERR, "%s", e.text);
		return elemta_result_set(res, ELEMTA_TEMPFAIL,
		    POLICY_FAILURE_CODE, POLICY_FAILURE_ENHANCED,
		    "Temporary failure scanning the message, try again later");
	}
	if (!m.found)
		return ELEMTA_CONTINUE;
	content_reason(&m, reason, sizeof(reason));
	/* item and where are already escaped by the scanner. */
	elemta_log(ctx, ELEMTA_LOG_INFO, "content rule: %s '%s' in %s: %s",
	    content_scan_kind_name(m.kind), m.item, m.where,
	    p->content_action == ELEMTA_REJECT ? "rejected" :
	    p->content_action == ELEMTA_QUARANTINE ? "quarantined" :
	    "discarded");
	switch (p->content_action) {
	case ELEMTA_QUARANTINE:
		return elemta_result_set(res, ELEMTA_QUARANTINE, 0, "",
		    "Message quarantined: %s", reason);
	case ELEMTA_DISCARD:
		return elemta_result_set(res, ELEMTA_DISCARD, 0, "",
		    "Message discarded: %s", reason);
	default:
		return elemta_result_set(res, ELEMTA_REJECT, 550, "5.7.1",
		    "Message rejected: %s", reason);
	}
}
