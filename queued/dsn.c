/*
 * dsn.c - RFC 3464 delivery status notifications (dsn.h): bounces,
 * delay warnings and success reports, composed for elemta-queued's
 * queue manager, which queues them like any other message from <>.
 *
 * Everything in a report that came from outside (addresses, the next
 * hop's reply, ENVID) goes through dsn_clean: control bytes become
 * spaces and the length is bounded, so none of it can end a header
 * line, start a part or push a line past RFC 5322's 998 octets.  The
 * parts are assembled first and the boundary chosen afterwards, among
 * strings that occur in none of them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsn.h"

#define DSN_FIELD_MAX 900          /* one header field's value          */
#define DSN_HOST_MAX 256           /* a DNS name (RFC 1035: 255 octets)  */
#define DSN_ADDR_TEXT_MAX 600      /* an address in the text part, which
                                      shares its line with a host name  */
#define DSN_DEFAULT_LIMIT 50000    /* RET=FULL when no limit is given   */
#define DSN_CHUNK 8192
#define DSN_BOUNDARY_MAX 128

/* dsn_action_name - RFC 3464 §2.3.3 spelling. */
const char *
dsn_action_name(enum dsn_action a)
{
	switch (a) {
	case DSN_ACTION_FAILED: return "failed";
	case DSN_ACTION_DELAYED: return "delayed";
	case DSN_ACTION_DELIVERED: return "delivered";
	case DSN_ACTION_RELAYED: return "relayed";
	}
	return "failed";
}

/* dsn_wanted - RFC 3461 §4.1's NOTIFY semantics; see dsn.h. */
bool
dsn_wanted(const char *sender, unsigned notify, enum dsn_action a)
{
	if (sender == NULL || sender[0] == '\0' ||
	    (notify & DSN_NOTIFY_NEVER) != 0)
		return false;
	switch (a) {
	case DSN_ACTION_FAILED:
		return notify == 0 || (notify & DSN_NOTIFY_FAILURE) != 0;
	case DSN_ACTION_DELAYED:
		return notify == 0 || (notify & DSN_NOTIFY_DELAY) != 0;
	case DSN_ACTION_DELIVERED:
	case DSN_ACTION_RELAYED:
		return (notify & DSN_NOTIFY_SUCCESS) != 0;
	}
	return false;
}

/* dsn_clean - an outside string as one bounded header-safe value. */
static const char *
dsn_clean(char *dst, size_t size, const char *src)
{
	size_t o = 0;

	for (; src != NULL && *src != '\0' && o + 1 < size; src++) {
		unsigned char c = (unsigned char)*src;

		dst[o++] = (char)(c < 0x20 || c == 0x7f ? ' ' : c);
	}
	dst[o] = '\0';
	return dst;
}

/* dsn_date - RFC 5322 date-time in UTC (locale-independent). */
static const char *
dsn_date(char *buf, size_t size, time_t t)
{
	static const char *const day[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    day[tm.tm_wday], tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec);
	return buf;
}

/* dsn_crlf - append n bytes with every line end made CRLF (*cr: a CR
 * whose LF may come in the next chunk). */
static int
dsn_crlf(struct strbuf *sb, const char *in, size_t n, bool *cr)
{
	for (size_t i = 0; i < n; i++) {
		if (*cr) {
			*cr = false;
			if (strbuf_append(sb, "\r\n", 2) < 0)
				return -1;
			if (in[i] == '\n')
				continue;
		}
		if (in[i] == '\r')
			*cr = true;
		else if (in[i] == '\n') {
			if (strbuf_append(sb, "\r\n", 2) < 0)
				return -1;
		} else if (strbuf_append(sb, in + i, 1) < 0)
			return -1;
	}
	return 0;
}

/* dsn_original - the original message (RET=FULL, it fits: *full) or its
 * headers, CRLF, into orig. */
static int
dsn_original(const struct dsn_report *r, struct strbuf *orig, bool *full,
    struct error *err)
{
	size_t cap = r->size_limit > 0 ? r->size_limit : DSN_DEFAULT_LIMIT;
	char buf[DSN_CHUNK];
	bool cr = false, eof = false;
	const char *end;
	long n;

	orig->limit = cap + 2;
	while (orig->len < cap) {
		size_t want = cap - orig->len < sizeof(buf) ? cap - orig->len :
		    sizeof(buf);

		n = r->read(r->ctx, buf, want);
		if (n < 0)
			return error_set(err, "cannot read the original "
			    "message");
		if (n == 0) {
			eof = true;
			break;
		}
		if (dsn_crlf(orig, buf, (size_t)n, &cr) < 0)
			break;     /* line ends grew it past cap: too big */
	}
	if (cr && eof)
		(void)strbuf_append(orig, "\r\n", 2);
	*full = eof && r->ret == DSN_RET_FULL && orig->len <= cap;
	if (*full)
		return 0;
	/* Headers: up to the blank line (kept out), else what was read
	 * up to its last complete line. */
	if (orig->len >= 2 && memcmp(orig->data, "\r\n", 2) == 0) {
		strbuf_truncate(orig, 0);
		return 0;
	}
	end = orig->len > 0 ? memmem(orig->data, orig->len, "\r\n\r\n", 4) :
	    NULL;
	if (end != NULL) {
		strbuf_truncate(orig, (size_t)(end - orig->data) + 2);
	} else if (!eof || cr) {
		size_t l = orig->len;

		while (l >= 2 && memcmp(orig->data + l - 2, "\r\n", 2) != 0)
			l--;
		strbuf_truncate(orig, l >= 2 ? l : 0);
	} else if (orig->len >= 2 && memcmp(orig->data + orig->len - 2,
	    "\r\n", 2) != 0) {
		(void)strbuf_append(orig, "\r\n", 2);
	}
	return 0;
}

/* dsn_kind - the report's overall kind: failed if anything failed, then
 * delayed, else a success report. */
static enum dsn_action
dsn_kind(const struct dsn_report *r)
{
	enum dsn_action k = DSN_ACTION_DELIVERED;

	for (size_t i = 0; i < r->nrcpt; i++) {
		if (r->rcpts[i].action == DSN_ACTION_FAILED)
			return DSN_ACTION_FAILED;
		if (r->rcpts[i].action == DSN_ACTION_DELAYED)
			k = DSN_ACTION_DELAYED;
	}
	return k;
}

/* dsn_human - the text/plain part. */
static int
dsn_human(const struct dsn_report *r, enum dsn_action kind,
    struct strbuf *sb)
{
	char host[DSN_HOST_MAX], addr[DSN_ADDR_TEXT_MAX], diag[DSN_FIELD_MAX],
	    mta[DSN_HOST_MAX], date[64];
	int rc = 0;

	rc |= strbuf_appendf(sb, "This is the mail system at host %s.\r\n\r\n",
	    dsn_clean(host, sizeof(host), r->reporting_mta));
	if (kind == DSN_ACTION_FAILED)
		rc |= strbuf_append_str(sb, "I'm sorry to have to inform you "
		    "that your message could not\r\nbe delivered to one or "
		    "more recipients. Its headers are attached\r\nbelow (the "
		    "whole message when you asked for it).\r\n\r\n");
	else if (kind == DSN_ACTION_DELAYED)
		rc |= strbuf_appendf(sb, "Your message could not be delivered "
		    "yet to the recipients below.\r\nIt will be retried until "
		    "%s.\r\nYou do not need to send it again.\r\n\r\n",
		    dsn_date(date, sizeof(date), r->retry_until));
	else
		rc |= strbuf_append_str(sb, "Your message was successfully "
		    "delivered to the destinations listed\r\nbelow.\r\n\r\n");
	for (size_t i = 0; i < r->nrcpt; i++) {
		const struct dsn_rcpt *d = &r->rcpts[i];

		rc |= strbuf_appendf(sb, "<%s>: %s", dsn_clean(addr,
		    sizeof(addr), d->final_recipient),
		    dsn_action_name(d->action));
		if (d->remote_mta != NULL && d->reply_code != 0)
			rc |= strbuf_appendf(sb, ", host %s said:\r\n    %s",
			    dsn_clean(mta, sizeof(mta), d->remote_mta),
			    dsn_clean(diag, sizeof(diag), d->diagnostic));
		else if (d->diagnostic != NULL)
			rc |= strbuf_appendf(sb, ":\r\n    %s", dsn_clean(diag,
			    sizeof(diag), d->diagnostic));
		rc |= strbuf_append_str(sb, "\r\n\r\n");
	}
	return rc < 0 ? -1 : 0;
}

/* dsn_status - the message/delivery-status part (RFC 3464 §2.2, 2.3). */
static int
dsn_status(const struct dsn_report *r, struct strbuf *sb)
{
	char v[DSN_FIELD_MAX], w[DSN_FIELD_MAX], date[64];
	int rc = 0;

	/* RFC 3464 §2.2's order: Original-Envelope-Id, Reporting-MTA, ...,
	 * Arrival-Date, then extension fields. */
	if (r->envid != NULL)
		rc |= strbuf_appendf(sb, "Original-Envelope-Id: %s\r\n",
		    dsn_clean(v, sizeof(v), r->envid));
	rc |= strbuf_appendf(sb, "Reporting-MTA: dns; %s\r\n",
	    dsn_clean(v, sizeof(v), r->reporting_mta));
	rc |= strbuf_appendf(sb, "Arrival-Date: %s\r\n",
	    dsn_date(date, sizeof(date), r->arrival));
	if (r->queue_id != NULL)
		rc |= strbuf_appendf(sb, "X-Elemta-Queue-ID: %s\r\n",
		    dsn_clean(v, sizeof(v), r->queue_id));
	for (size_t i = 0; i < r->nrcpt; i++) {
		const struct dsn_rcpt *d = &r->rcpts[i];

		rc |= strbuf_append_str(sb, "\r\n");
		if (d->original_recipient != NULL &&
		    strchr(d->original_recipient, ';') != NULL)
			rc |= strbuf_appendf(sb, "Original-Recipient: %s\r\n",
			    dsn_clean(v, sizeof(v), d->original_recipient));
		rc |= strbuf_appendf(sb, "Final-Recipient: rfc822; %s\r\n"
		    "Action: %s\r\nStatus: %s\r\n",
		    dsn_clean(v, sizeof(v), d->final_recipient),
		    dsn_action_name(d->action), dsn_clean(w, 16, d->status));
		if (d->remote_mta != NULL)
			rc |= strbuf_appendf(sb, "Remote-MTA: dns; %s\r\n",
			    dsn_clean(v, sizeof(v), d->remote_mta));
		if (d->diagnostic != NULL)
			rc |= strbuf_appendf(sb, "Diagnostic-Code: %s; %s\r\n",
			    d->reply_code != 0 ? "smtp" : "X-Elemta",
			    dsn_clean(v, sizeof(v), d->diagnostic));
		rc |= strbuf_appendf(sb, "Last-Attempt-Date: %s\r\n",
		    dsn_date(date, sizeof(date), r->now));
		if (d->action == DSN_ACTION_DELAYED)
			rc |= strbuf_appendf(sb, "Will-Retry-Until: %s\r\n",
			    dsn_date(date, sizeof(date), r->retry_until));
	}
	return rc < 0 ? -1 : 0;
}

/* dsn_in - whether needle occurs in the sb's bytes. */
static bool
dsn_in(const struct strbuf *sb, const char *needle)
{
	return sb->len > 0 && memmem(sb->data, sb->len, needle,
	    strlen(needle)) != NULL;
}

/* dsn_compose - the whole report; see dsn.h. */
int
dsn_compose(const struct dsn_report *r, struct strbuf *out,
    struct error *err)
{
	struct strbuf human = STRBUF_INIT(0), status = STRBUF_INIT(0),
	    orig = STRBUF_INIT(0);
	char boundary[DSN_BOUNDARY_MAX], qid[64], host[DSN_HOST_MAX],
	    to[DSN_FIELD_MAX], date[64];
	enum dsn_action kind;
	bool full = false;
	int rc = -1, w = 0;
	unsigned tries = 0;
	size_t start = out->len;

	if (r->sender == NULL || r->sender[0] == '\0')
		return error_set(err, "no report about a message from <>");
	if (r->reporting_mta == NULL || r->nrcpt == 0 || r->rcpts == NULL ||
	    r->read == NULL)
		return error_set(err, "incomplete report");
	for (size_t i = 0; i < r->nrcpt; i++)
		if (r->rcpts[i].final_recipient == NULL ||
		    r->rcpts[i].status == NULL)
			return error_set(err, "recipient %zu incomplete", i);
	kind = dsn_kind(r);
	if (dsn_human(r, kind, &human) < 0 || dsn_status(r, &status) < 0) {
		error_set(err, "report too long");
		goto out;
	}
	/* RFC 3461 §4.3: the content comes back with failures only. */
	if (dsn_original(r, &orig, &full, err) < 0)
		goto out;
	if (kind != DSN_ACTION_FAILED)
		full = false;
	dsn_clean(qid, sizeof(qid), r->queue_id != NULL && r->queue_id[0] !=
	    '\0' ? r->queue_id : "report");
	for (size_t i = 0; qid[i] != '\0'; i++)
		if (!((qid[i] >= '0' && qid[i] <= '9') || (qid[i] >= 'A' &&
		    qid[i] <= 'Z') || (qid[i] >= 'a' && qid[i] <= 'z')))
			qid[i] = '_';
	do {
		snprintf(boundary, sizeof(boundary), "%s.%lld/%u.%s",
		    qid, (long long)r->now, tries, "elemta-dsn");
		if (++tries > 1000) {
			error_set(err, "no boundary outside the parts");
			goto out;
		}
	} while (dsn_in(&human, boundary) || dsn_in(&status, boundary) ||
	    dsn_in(&orig, boundary));

	dsn_clean(host, sizeof(host), r->reporting_mta);
	w |= strbuf_appendf(out, "From: MAILER-DAEMON@%s (Mail Delivery "
	    "System)\r\nTo: <%s>\r\nSubject: %s\r\nDate: %s\r\n"
	    "Message-ID: <%lld.%s.dsn@%s>\r\nAuto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n"
	    "This is a MIME-encapsulated message.\r\n\r\n", host,
	    dsn_clean(to, sizeof(to), r->sender),
	    kind == DSN_ACTION_FAILED ? "Undelivered Mail Returned to Sender" :
	    kind == DSN_ACTION_DELAYED ? "Delayed Mail (still being retried)" :
	    "Successful Mail Delivery Report",
	    dsn_date(date, sizeof(date), r->now), (long long)r->now, qid,
	    host, boundary);
	w |= strbuf_appendf(out, "--%s\r\nContent-Description: Notification"
	    "\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n", boundary);
	w |= strbuf_append(out, human.data, human.len);
	w |= strbuf_appendf(out, "\r\n--%s\r\nContent-Description: Delivery "
	    "report\r\nContent-Type: message/delivery-status\r\n\r\n",
	    boundary);
	w |= strbuf_append(out, status.data, status.len);
	w |= strbuf_appendf(out, "\r\n--%s\r\nContent-Description: %s\r\n"
	    "Content-Type: %s\r\n%s\r\n", boundary, full ? "Undelivered "
	    "Message" : "Message Headers", full ? "message/rfc822" :
	    "text/rfc822-headers", full ? "Content-Transfer-Encoding: 8bit\r\n"
	    : "");
	if (orig.len > 0)
		w |= strbuf_append(out, orig.data, orig.len);
	w |= strbuf_appendf(out, "\r\n--%s--\r\n", boundary);
	if (w < 0) {
		strbuf_truncate(out, start);
		error_set(err, "report larger than its buffer's limit");
		goto out;
	}
	rc = 0;
out:
	strbuf_free(&human);
	strbuf_free(&status);
	strbuf_free(&orig);
	return rc;
}
