/*
 * sasl.c - the SMTP AUTH exchange, the PLAIN message and the names
 * (contract in sasl.h; its base64 is common/base64.c).
 *
 * Called by session.c and the unit tests.  Untrusted client text
 * throughout: every line is bounded (SASL_LINE_MAX) before it is decoded
 * into a stack buffer that is wiped afterwards; the password lives only
 * in x->secret (base64, for the policy request) until the session wipes
 * it.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "command.h"
#include "error.h"
#include "sasl.h"

/* sasl_refuse - out: end the exchange with this reply. */
static void
sasl_refuse(struct sasl_outcome *out, int code, const char *enh,
    const char *text, const char *why)
{
	out->next = SASL_NEXT_REFUSE;
	out->code = code;
	out->enhanced = enh;
	out->text = text;
	out->why = why;
}

/* sasl_challenge - out: the 334 asking for the step's response. */
static void
sasl_challenge(const struct sasl_exchange *x, struct sasl_outcome *out)
{
	out->next = SASL_NEXT_CHALLENGE;
	switch (x->step) {
	case SASL_STEP_LOGIN_USER:
		out->line = "334 VXNlcm5hbWU6";     /* "Username:" */
		break;
	case SASL_STEP_LOGIN_PASSWORD:
		out->line = "334 UGFzc3dvcmQ6";     /* "Password:" */
		break;
	case SASL_STEP_PLAIN:
	case SASL_STEP_NONE:
		out->line = "334 ";
		break;
	}
}

/* sasl_wipe_secret - see sasl.h. */
void
sasl_wipe_secret(struct sasl_exchange *x)
{
	if (x->secret == NULL)
		return;
	explicit_bzero(x->secret, SASL_PASSWORD_B64_MAX);
	free(x->secret);
	x->secret = NULL;
}

/* sasl_clear - see sasl.h. */
void
sasl_clear(struct sasl_exchange *x, bool keep_user)
{
	sasl_wipe_secret(x);
	free(x->authzid);
	x->authzid = NULL;
	x->step = SASL_STEP_NONE;
	if (!keep_user) {
		free(x->user);
		x->user = NULL;
		x->method = NULL;
	}
}

/* sasl_submit - the complete credentials: check what smtpd can check,
 * then the session asks policyd.  user is x->user when already kept. */
static void
sasl_submit(struct sasl_exchange *x, const char *authzid, const char *user,
    size_t user_len, const unsigned char *password, size_t password_len,
    struct sasl_outcome *out)
{
	if (!sasl_name_valid(user, user_len) ||
	    !sasl_name_valid(authzid, strlen(authzid))) {
		sasl_refuse(out, 535, "5.7.8", "Authentication credentials "
		    "invalid", "user name or authorization identity too long, "
		    "not UTF-8 or with control characters");
		return;
	}
	if (password_len > SASL_PASSWORD_MAX) {
		sasl_refuse(out, 535, "5.7.8",
		    "Authentication credentials invalid", "password too long");
		return;
	}
	if (user != x->user) {
		free(x->user);
		x->user = xstrndup(user, user_len);
	}
	free(x->authzid);
	x->authzid = authzid[0] != '\0' ? xstrdup(authzid) : NULL;
	sasl_wipe_secret(x);
	x->secret = xmalloc(SASL_PASSWORD_B64_MAX);
	(void)base64_encode(password, password_len, x->secret,
	    SASL_PASSWORD_B64_MAX);
	x->step = SASL_STEP_NONE;
	out->next = SASL_NEXT_ASK;
}

/* sasl_step - one client response, the initial one of the AUTH command
 * or a line after 334. */
static void
sasl_step(struct sasl_exchange *x, const char *line, size_t len,
    bool initial, struct sasl_outcome *out)
{
	unsigned char msg[SASL_DECODED_MAX + 1];
	struct sasl_plain plain;
	long n;

	if (len == 1 && line[0] == '*') {
		sasl_refuse(out, 501, "5.7.0", "Authentication aborted",
		    "cancelled by the client");
		return;
	}
	if (len > SASL_LINE_MAX) {
		sasl_refuse(out, 500, "5.5.6", "Authentication Exchange line "
		    "is too long", "line too long");
		return;
	}
	/* RFC 4954 4: "=" is an empty initial response. */
	if (initial && len == 1 && line[0] == '=')
		n = 0;
	else
		n = base64_decode(line, len, msg, SASL_DECODED_MAX);
	if (n < 0) {
		sasl_refuse(out, 501, "5.5.2", "Error: cannot decode response",
		    "malformed base64");
		return;
	}
	switch (x->step) {
	case SASL_STEP_PLAIN:
		if (sasl_plain_parse(msg, (size_t)n, &plain) < 0) {
			sasl_refuse(out, 501, "5.5.2", "Error: malformed PLAIN "
			    "message", "malformed PLAIN message");
			break;
		}
		sasl_submit(x, plain.authzid, plain.authcid,
		    strlen(plain.authcid), plain.password, plain.password_len,
		    out);
		break;
	case SASL_STEP_LOGIN_USER:
		if (memchr(msg, '\0', (size_t)n) != NULL ||
		    !sasl_name_valid((const char *)msg, (size_t)n)) {
			sasl_refuse(out, 535, "5.7.8", "Authentication "
			    "credentials invalid", "user name too long, not "
			    "UTF-8 or with control characters");
			break;
		}
		free(x->user);
		x->user = xstrndup((const char *)msg, (size_t)n);
		x->step = SASL_STEP_LOGIN_PASSWORD;
		sasl_challenge(x, out);
		break;
	case SASL_STEP_LOGIN_PASSWORD:
		sasl_submit(x, "", x->user, strlen(x->user), msg, (size_t)n,
		    out);
		break;
	case SASL_STEP_NONE:
		sasl_refuse(out, 503, "5.5.1", "Error: no authentication in "
		    "progress", "no exchange");
		break;
	}
	explicit_bzero(msg, (size_t)n + 1);
}

/* sasl_response - see sasl.h. */
void
sasl_response(struct sasl_exchange *x, const char *line, size_t len,
    struct sasl_outcome *out)
{
	sasl_step(x, line, len, false, out);
}

/* sasl_start - see sasl.h. */
void
sasl_start(struct sasl_exchange *x, const char *arg, size_t len,
    struct sasl_outcome *out)
{
	const char *end = arg + len, *resp;
	size_t mlen, rlen;

	mlen = strcspn(arg, " \t");
	if (mlen > len)
		mlen = len;
	resp = arg + mlen;
	while (resp < end && (*resp == ' ' || *resp == '\t'))
		resp++;
	rlen = (size_t)(end - resp);
	if (mlen == 0 || memchr(resp, ' ', rlen) != NULL ||
	    memchr(resp, '\t', rlen) != NULL) {
		sasl_refuse(out, 501, "5.5.4",
		    "Syntax: AUTH mechanism [initial-response]", NULL);
		return;
	}
	if (mlen == 5 && strncasecmp(arg, "PLAIN", 5) == 0) {
		x->method = "PLAIN";
		x->step = SASL_STEP_PLAIN;
	} else if (mlen == 5 && strncasecmp(arg, "LOGIN", 5) == 0) {
		x->method = "LOGIN";
		x->step = SASL_STEP_LOGIN_USER;
	} else {
		sasl_refuse(out, 504, "5.5.4",
		    "Error: unsupported authentication mechanism", NULL);
		return;
	}
	free(x->user);
	x->user = NULL;
	if (rlen == 0)
		sasl_challenge(x, out);
	else
		sasl_step(x, resp, rlen, true, out);
}

/* sasl_plain_parse - see sasl.h. */
int
sasl_plain_parse(unsigned char *msg, size_t len, struct sasl_plain *out)
{
	unsigned char *nul1, *nul2;

	nul1 = memchr(msg, '\0', len);
	if (nul1 == NULL)
		return -1;
	nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - msg));
	if (nul2 == NULL)
		return -1;
	if (memchr(nul2 + 1, '\0', len - (size_t)(nul2 + 1 - msg)) != NULL)
		return -1;
	msg[len] = '\0';
	out->authzid = (const char *)msg;
	out->authcid = (const char *)nul1 + 1;
	out->password = nul2 + 1;
	out->password_len = len - (size_t)(nul2 + 1 - msg);
	return 0;
}

/* sasl_name_valid - see sasl.h. */
bool
sasl_name_valid(const char *name, size_t len)
{
	if (len > SASL_USER_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return command_utf8_valid(name, len);
}
