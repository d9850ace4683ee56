/*
 * milter.c - the milter client of elemta-policyd (protocol version 6):
 * one run per END-OF-MESSAGE request, one conversation at a time with
 * each milter of the chain, on the worker's libevent loop.  Contract and
 * composition rules: milter.h; the protocol's bytes: common/milter_codec.h.
 *
 * Untrusted input: every byte a milter sends (bounded by
 * MILTER_PACKET_MAX per packet and decoded by milter_reply_decode) and
 * the message (bounded by MSG_EDIT_HEADER_BLOCK_MAX of header block).
 * Each conversation is an explicit state machine (enum conv_state, one
 * conv_enter_state that alone changes and logs it): a step sends its
 * packets, and unless the milter negotiated not to answer that step
 * (SMFIP_NR_*) waits for the answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fdio.h"
#include "log.h"
#include "milter.h"
#include "milter_codec.h"

#define CONV_OUT_HIGH (256u * 1024u)   /* pause the body above this     */
#define CONV_OUT_LIMIT (1024u * 1024u)
#define CONV_HEADERS_MAX 10000u
#define CONV_HOST_MAX 256

/* The verdicts and errors counted per milter (metric labels). */
enum milter_verdict {
	MV_CONTINUE, MV_ACCEPT, MV_REJECT, MV_TEMPFAIL, MV_DISCARD,
	MV_QUARANTINE, MV_COUNT
};
static const char *const verdict_names[MV_COUNT] = {
	"continue", "accept", "reject", "tempfail", "discard", "quarantine",
};
enum milter_error {
	ME_CONNECT, ME_TIMEOUT, ME_CLOSED, ME_PROTOCOL, ME_COUNT
};
static const char *const error_names[ME_COUNT] = {
	"connect", "timeout", "closed", "protocol",
};

struct milter_def {
	struct config_milter cfg;
	uint64_t verdicts[MV_COUNT];
	uint64_t errors[ME_COUNT];
	uint64_t calls, usec;
};

struct milter_chain {
	struct milter_def *defs;
	size_t count;
	char hostname[CONV_HOST_MAX];
};

/* One conversation's steps, in protocol order. */
enum conv_state {
	CONV_IDLE,        /* between milters                        */
	CONV_CONNECTING,
	CONV_OPTNEG,
	CONV_CONNECT,
	CONV_HELO,
	CONV_MAIL,
	CONV_RCPT,
	CONV_DATA,
	CONV_HEADER,
	CONV_EOH,
	CONV_BODY,
	CONV_EOM,
	CONV_DONE,
};

/* A header field of the message as the milters see it. */
struct conv_header {
	size_t name_off, name_len;
	size_t value_off, value_len;   /* after the colon, CRLF excluded */
};

struct milter_run {
	struct milter_chain *mc;
	struct event_base *base;
	const struct wire_request *req;
	unsigned mode_bit;
	int msg_fd;
	uint64_t msg_size;
	char *block;                   /* header block, owned            */
	size_t block_len;
	struct conv_header *hdrs;
	size_t nhdrs;
	uint64_t body_off;
	milter_done_fn done;
	void *arg;
	struct milter_outcome out;
	bool finished;
	struct event *ev_done, *ev_begin;
	/* The conversation with mc->defs[cur]. */
	size_t cur;
	struct milter_def *def;
	enum conv_state state;
	int fd;
	struct event *ev_read, *ev_write, *ev_timer;
	struct strbuf wbuf;
	size_t woff;
	bool write_paused;             /* stepping waits for the drain  */
	uint8_t *rbuf;
	size_t rlen;
	uint32_t actions, pflags;
	size_t rcpt_i, hdr_i;
	uint64_t body_pos;
	bool waiting;                  /* an answer is due               */
	struct msg_edits edits;        /* this milter's                  */
	bool quarantine;
	char qreason[ELEMTA_RESULT_TEXT_MAX];
	struct timespec started;
};

static void conv_continue(struct milter_run *r);
static void run_next_milter(struct milter_run *r);
static void conv_on_write(evutil_socket_t fd, short what, void *arg);

/*==== The chain ====*/

/* milter_chain_new - see milter.h. */
struct milter_chain *
milter_chain_new(const struct config *cfg)
{
	struct milter_chain *mc;

	if (cfg->milter_count == 0)
		return NULL;
	mc = xcalloc(1, sizeof(*mc));
	mc->defs = xcalloc(cfg->milter_count, sizeof(*mc->defs));
	for (size_t i = 0; i < cfg->milter_count; i++)
		mc->defs[i].cfg = cfg->milters[i];
	mc->count = cfg->milter_count;
	str_copy(mc->hostname, cfg->server.hostname, sizeof(mc->hostname));
	return mc;
}

/* milter_chain_free - see milter.h. */
void
milter_chain_free(struct milter_chain *mc)
{
	if (mc == NULL)
		return;
	free(mc->defs);
	free(mc);
}

/* mode_bit - the config_milter.modes bit of a listener mode name. */
static unsigned
mode_bit(const char *mode)
{
	for (unsigned m = CONFIG_MODE_SMTP; m <= CONFIG_MODE_SMTPS; m++)
		if (mode != NULL && strcmp(mode, config_listen_mode_name(
		    (enum config_listen_mode)m)) == 0)
			return 1u << m;
	return 0;
}

/* milter_chain_applies - see milter.h. */
bool
milter_chain_applies(const struct milter_chain *mc, const char *mode)
{
	unsigned bit = mode_bit(mode);

	if (mc == NULL || bit == 0)
		return false;
	for (size_t i = 0; i < mc->count; i++)
		if (mc->defs[i].cfg.modes & bit)
			return true;
	return false;
}

/* metric_add - one labelled metric key; keeps the first failure. */
static void metric_add(struct counter_store *cs, int *rc, struct error *err,
    uint64_t v, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void
metric_add(struct counter_store *cs, int *rc, struct error *err, uint64_t v,
    const char *fmt, ...)
{
	char key[COUNTER_KEY_MAX + 1];
	va_list ap;
	int n;

	if (*rc != 0 || v == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(key, sizeof(key), fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof(key))
		*rc = counter_metric_add(cs, key, v, err);
}

/* milter_chain_flush_metrics - see milter.h. */
void
milter_chain_flush_metrics(struct milter_chain *mc, struct counter_store *cs)
{
	struct error err;
	bool any = false;
	int rc = 0;

	if (mc == NULL || cs == NULL)
		return;
	for (size_t i = 0; i < mc->count && !any; i++)
		any = mc->defs[i].calls != 0;
	if (!any)
		return;
	counter_decision_begin(cs);
	for (size_t i = 0; i < mc->count; i++) {
		struct milter_def *d = &mc->defs[i];

		metric_add(cs, &rc, &err, d->calls,
		    "elemta_milter_calls_total{milter=\"%s\"}", d->cfg.name);
		metric_add(cs, &rc, &err, d->usec,
		    "elemta_milter_seconds_total{milter=\"%s\"}", d->cfg.name);
		for (int v = 0; v < MV_COUNT; v++)
			metric_add(cs, &rc, &err, d->verdicts[v],
			    "elemta_milter_verdicts_total{milter=\"%s\","
			    "verdict=\"%s\"}", d->cfg.name, verdict_names[v]);
		for (int e = 0; e < ME_COUNT; e++)
			metric_add(cs, &rc, &err, d->errors[e],
			    "elemta_milter_errors_total{milter=\"%s\","
			    "error=\"%s\"}", d->cfg.name, error_names[e]);
		d->calls = d->usec = 0;
		memset(d->verdicts, 0, sizeof(d->verdicts));
		memset(d->errors, 0, sizeof(d->errors));
	}
	if (rc != 0)
		log_warn("milter metric flush failed: %s", err.text);
	if (counter_decision_end(cs, true, &err) != 0)
		log_warn("milter metric flush commit failed: %s", err.text);
}

/*==== The message ====*/

/* run_read_headers - the header block (bounded) and its fields; the
 * body starts after the empty line, or where the block read ends. */
static int
run_read_headers(struct milter_run *r)
{
	struct stat st;
	size_t want, off = 0;
	ssize_t n;

	if (fstat(r->msg_fd, &st) != 0)
		return -1;
	r->msg_size = (uint64_t)st.st_size;
	want = r->msg_size < MSG_EDIT_HEADER_BLOCK_MAX ? (size_t)r->msg_size :
	    MSG_EDIT_HEADER_BLOCK_MAX;
	r->block = xmalloc(want + 1);
	n = pread(r->msg_fd, r->block, want, 0);
	if (n < 0 || (size_t)n != want)
		return -1;
	r->block_len = want;
	r->body_off = want;
	r->hdrs = xcalloc(64, sizeof(*r->hdrs));
	size_t cap = 64;
	while (off < want) {
		const char *line = r->block + off;
		const char *nl = memchr(line, '\n', want - off);
		size_t ll = nl ? (size_t)(nl - line) + 1 : want - off;

		if (line[0] == '\n' || (line[0] == '\r' && ll == 2)) {
			r->body_off = off + ll;
			break;
		}
		if ((line[0] == ' ' || line[0] == '\t') && r->nhdrs > 0) {
			struct conv_header *h = &r->hdrs[r->nhdrs - 1];

			h->value_len = off + ll - h->value_off;
		} else {
			const char *colon = memchr(line, ':', ll);

			if (colon != NULL && colon > line &&
			    r->nhdrs < CONV_HEADERS_MAX) {
				struct conv_header *h;

				if (r->nhdrs == cap) {
					cap *= 2;
					r->hdrs = xrealloc(r->hdrs,
					    cap * sizeof(*r->hdrs));
				}
				h = &r->hdrs[r->nhdrs++];
				h->name_off = off;
				h->name_len = (size_t)(colon - line);
				while (h->name_len > 0 &&
				    (line[h->name_len - 1] == ' ' ||
				    line[h->name_len - 1] == '\t'))
					h->name_len--;
				h->value_off = off + (size_t)(colon - line) + 1;
				h->value_len = off + ll - h->value_off;
			}
		}
		off += ll;
	}
	return 0;
}

/* header_value - field h's value as milters get it: without its final
 * line break, CRLF inside turned to LF (as Sendmail and Postfix send
 * them), leading blanks dropped unless SMFIP_HDR_LEADSPC. */
static size_t
header_value(const struct milter_run *r, const struct conv_header *h,
    char *out)
{
	const char *v = r->block + h->value_off;
	size_t n = h->value_len, o = 0, i = 0;

	while (n > 0 && (v[n - 1] == '\n' || v[n - 1] == '\r'))
		n--;
	if (!(r->pflags & SMFIP_HDR_LEADSPC))
		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
	for (; i < n; i++) {
		if (v[i] == '\r' && i + 1 < n && v[i + 1] == '\n')
			continue;
		out[o++] = v[i] == '\0' ? ' ' : v[i];
	}
	out[o] = '\0';
	return o;
}

/*==== One conversation ====*/

static const char *
conv_state_name(enum conv_state s)
{
	switch (s) {
	case CONV_IDLE: return "IDLE";
	case CONV_CONNECTING: return "CONNECTING";
	case CONV_OPTNEG: return "OPTNEG";
	case CONV_CONNECT: return "CONNECT";
	case CONV_HELO: return "HELO";
	case CONV_MAIL: return "MAIL";
	case CONV_RCPT: return "RCPT";
	case CONV_DATA: return "DATA";
	case CONV_HEADER: return "HEADER";
	case CONV_EOH: return "EOH";
	case CONV_BODY: return "BODY";
	case CONV_EOM: return "EOM";
	case CONV_DONE: return "DONE";
	}
	return "?";
}

/* conv_enter_state - the one place the conversation's state changes. */
static void
conv_enter_state(struct milter_run *r, enum conv_state s)
{
	log_debug("milter %s: %s -> %s", r->def ? r->def->cfg.name : "-",
	    conv_state_name(r->state), conv_state_name(s));
	r->state = s;
}

/* attr - a request attribute, "" when absent. */
static const char *
attr(const struct milter_run *r, const char *name)
{
	const char *v = wire_request_get(r->req, name);

	return v != NULL ? v : "";
}

/* conv_close - drop the connection and its events. */
static void
conv_close(struct milter_run *r)
{
	if (r->ev_read != NULL)
		event_free(r->ev_read);
	if (r->ev_write != NULL)
		event_free(r->ev_write);
	if (r->ev_timer != NULL)
		event_free(r->ev_timer);
	r->ev_read = r->ev_write = r->ev_timer = NULL;
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	strbuf_free(&r->wbuf);
	r->woff = 0;
	free(r->rbuf);
	r->rbuf = NULL;
	r->rlen = 0;
	r->waiting = false;
	r->write_paused = false;
	msg_edits_free(&r->edits);
	r->quarantine = false;
	r->qreason[0] = '\0';
}

/* run_finish - deliver the outcome on the next loop turn. */
static void
run_finish(struct milter_run *r)
{
	r->finished = true;
	conv_enter_state(r, CONV_IDLE);
	event_active(r->ev_done, EV_TIMEOUT, 0);
}

/* conv_account - the time spent with the current milter. */
static void
conv_account(struct milter_run *r)
{
	struct timespec now;
	int64_t us;

	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (int64_t)(now.tv_sec - r->started.tv_sec) * 1000000 +
	    (now.tv_nsec - r->started.tv_nsec) / 1000;
	r->def->calls++;
	r->def->usec += us > 0 ? (uint64_t)us : 0;
}

/* conv_fail - the milter failed: its fail_mode decides. */
static void
conv_fail(struct milter_run *r, enum milter_error kind, const char *why)
{
	char esc[256];
	struct milter_def *d = r->def;

	d->errors[kind]++;
	conv_account(r);
	log_warn("milter %s (%s): %s at %s: %s; fail_mode %s", d->cfg.name,
	    d->cfg.address, error_names[kind], conv_state_name(r->state),
	    LOG_ESC(esc, why), d->cfg.fail_mode == CONFIG_FAIL_ACCEPT ?
	    "accept, skipping it" : "tempfail");
	conv_close(r);
	if (d->cfg.fail_mode == CONFIG_FAIL_ACCEPT) {
		run_next_milter(r);
		return;
	}
	msg_edits_free(&r->out.edits);
	r->out.action = ELEMTA_TEMPFAIL;
	r->out.code = 451;
	str_copy(r->out.enhanced, "4.3.5", sizeof(r->out.enhanced));
	str_copy(r->out.text, "Content filter unavailable, try again later",
	    sizeof(r->out.text));
	str_copy(r->out.milter, d->cfg.name, sizeof(r->out.milter));
	run_finish(r);
}

/* conv_flush - write what is pending; arm the write event for the rest. */
static int
conv_flush(struct milter_run *r)
{
	while (r->woff < r->wbuf.len) {
		ssize_t n = send(r->fd, r->wbuf.data + r->woff,
		    r->wbuf.len - r->woff, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			event_add(r->ev_write, NULL);
			return 0;
		}
		if (n < 0) {
			conv_fail(r, ME_CLOSED, strerror(errno));
			return -1;
		}
		r->woff += (size_t)n;
	}
	strbuf_reset(&r->wbuf);
	r->woff = 0;
	return 0;
}

/* conv_quit - the milter's part is over: QUIT (best effort), account,
 * move on. */
static void
conv_quit(struct milter_run *r)
{
	(void)milter_encode_simple(&r->wbuf, SMFIC_QUIT);
	(void)send(r->fd, r->wbuf.data + r->woff, r->wbuf.len - r->woff,
	    MSG_NOSIGNAL | MSG_DONTWAIT);
	conv_account(r);
	conv_enter_state(r, CONV_DONE);
}

/* conv_verdict - a final answer of the current milter. */
static void
conv_verdict(struct milter_run *r, enum milter_verdict v, int code,
    const char *enh, const char *text)
{
	struct milter_def *d = r->def;
	char esc[256];

	/* Its edits (at EOM only) join the outcome, in order, all of them
	 * or, when the earlier milters' leave no room, none: a failure. */
	if ((v == MV_CONTINUE || v == MV_ACCEPT) &&
	    msg_edits_append(&r->out.edits, &r->edits, UINT32_MAX, 0) < 0) {
		conv_fail(r, ME_PROTOCOL, "its edits and the earlier milters' "
		    "are over the message's bound");
		return;
	}
	d->verdicts[r->quarantine && (v == MV_CONTINUE || v == MV_ACCEPT) ?
	    MV_QUARANTINE : v]++;
	if (v == MV_CONTINUE || v == MV_ACCEPT) {
		if (r->quarantine && r->out.action == ELEMTA_CONTINUE) {
			r->out.action = ELEMTA_QUARANTINE;
			str_copy(r->out.text, r->qreason, sizeof(r->out.text));
			str_copy(r->out.milter, d->cfg.name,
			    sizeof(r->out.milter));
		}
		conv_quit(r);
		conv_close(r);
		run_next_milter(r);
		return;
	}
	log_info("milter %s: %s %d %s %s", d->cfg.name, verdict_names[v], code,
	    enh, LOG_ESC(esc, text));
	msg_edits_free(&r->out.edits);
	r->out.action = v == MV_REJECT ? ELEMTA_REJECT : v == MV_TEMPFAIL ?
	    ELEMTA_TEMPFAIL : ELEMTA_DISCARD;
	r->out.code = code;
	str_copy(r->out.enhanced, enh, sizeof(r->out.enhanced));
	str_copy(r->out.text, text, sizeof(r->out.text));
	str_copy(r->out.milter, d->cfg.name, sizeof(r->out.milter));
	conv_quit(r);
	conv_close(r);
	run_finish(r);
}

/* conv_macros - SMFIC_MACRO for command cmd (names[i] = values[i], the
 * empty ones left out). */
static int
conv_macros(struct milter_run *r, char cmd, const char *const *names,
    const char *const *values, size_t n)
{
	const char *nn[16], *vv[16];
	size_t k = 0;

	for (size_t i = 0; i < n && k < 16; i++)
		if (values[i] != NULL && values[i][0] != '\0') {
			nn[k] = names[i];
			vv[k++] = values[i];
		}
	if (k == 0)
		return 0;
	return milter_encode_macros(&r->wbuf, cmd, nn, vv, k);
}

/* conv_addr_arg - "<addr>" into buf. */
static const char *
conv_addr_arg(char *buf, size_t size, const char *addr)
{
	snprintf(buf, size, "<%s>", addr);
	return buf;
}

/* conv_send - the packets of the current step; *wait when an answer is
 * due.  A step the milter asked to skip sends nothing. */
static int
conv_send(struct milter_run *r, bool *wait)
{
	char host[CONV_HOST_MAX + 4], client[CONV_HOST_MAX * 2], abuf[1100];
	const char *strs[1];
	uint32_t p = r->pflags;
	int rc = 0;

	*wait = false;
	switch (r->state) {
	case CONV_CONNECT: {
		const char *ip = attr(r, WIRE_ATTR_CLIENT_ADDRESS);
		const char *name = attr(r, WIRE_ATTR_CLIENT_NAME);
		const char *names[] = { "j", "{daemon_name}", "v", "_",
		    "{client_addr}", "{client_port}", "{client_name}",
		    "{daemon_addr}", "{daemon_port}" };
		const char *values[9];
		unsigned long port = strtoul(attr(r, WIRE_ATTR_CLIENT_PORT),
		    NULL, 10);

		if (p & SMFIP_NOCONNECT)
			return 0;
		if (name[0] == '\0' || strcmp(name, "unknown") == 0)
			snprintf(host, sizeof(host), "[%s]", ip);
		else
			snprintf(host, sizeof(host), "%s", name);
		snprintf(client, sizeof(client), "%s [%s]", name[0] ? name :
		    "unknown", ip);
		values[0] = r->mc->hostname;
		values[1] = attr(r, WIRE_ATTR_LISTEN_MODE);
		values[2] = "Elemta";
		values[3] = client;
		values[4] = ip;
		values[5] = attr(r, WIRE_ATTR_CLIENT_PORT);
		values[6] = host;
		values[7] = attr(r, WIRE_ATTR_SERVER_ADDRESS);
		values[8] = attr(r, WIRE_ATTR_SERVER_PORT);
		rc |= conv_macros(r, SMFIC_CONNECT, names, values, 9);
		rc |= milter_encode_connect(&r->wbuf, host,
		    strchr(ip, ':') != NULL ? '6' : '4',
		    (uint16_t)(port <= 65535 ? port : 0), ip);
		*wait = !(p & SMFIP_NR_CONN);
		break;
	}
	case CONV_HELO: {
		const char *names[] = { "{tls_version}", "{cipher}" };
		const char *values[] = { attr(r, WIRE_ATTR_ENCRYPTION_PROTOCOL),
		    attr(r, WIRE_ATTR_ENCRYPTION_CIPHER) };

		if ((p & SMFIP_NOHELO) || attr(r, WIRE_ATTR_HELO_NAME)[0] == 0)
			return 0;
		rc |= conv_macros(r, SMFIC_HELO, names, values, 2);
		strs[0] = attr(r, WIRE_ATTR_HELO_NAME);
		rc |= milter_encode_strings(&r->wbuf, SMFIC_HELO, strs, 1);
		*wait = !(p & SMFIP_NR_HELO);
		break;
	}
	case CONV_MAIL: {
		const char *names[] = { "i", "{mail_addr}", "{auth_type}",
		    "{auth_authen}", "{tls_version}", "{cipher}" };
		const char *values[] = { attr(r, WIRE_ATTR_QUEUE_ID),
		    attr(r, WIRE_ATTR_SENDER), attr(r, WIRE_ATTR_SASL_METHOD),
		    attr(r, WIRE_ATTR_SASL_USERNAME),
		    attr(r, WIRE_ATTR_ENCRYPTION_PROTOCOL),
		    attr(r, WIRE_ATTR_ENCRYPTION_CIPHER) };

		if (p & SMFIP_NOMAIL)
			return 0;
		rc |= conv_macros(r, SMFIC_MAIL, names, values, 6);
		strs[0] = conv_addr_arg(abuf, sizeof(abuf),
		    attr(r, WIRE_ATTR_SENDER));
		rc |= milter_encode_strings(&r->wbuf, SMFIC_MAIL, strs, 1);
		*wait = !(p & SMFIP_NR_MAIL);
		break;
	}
	case CONV_RCPT: {
		const char *rcpt = wire_request_nth(r->req,
		    WIRE_ATTR_ACCEPTED_RECIPIENT, r->rcpt_i);
		const char *names[] = { "{rcpt_addr}" };
		const char *values[] = { rcpt };

		if ((p & SMFIP_NORCPT) || rcpt == NULL)
			return 0;
		rc |= conv_macros(r, SMFIC_RCPT, names, values, 1);
		strs[0] = conv_addr_arg(abuf, sizeof(abuf), rcpt);
		rc |= milter_encode_strings(&r->wbuf, SMFIC_RCPT, strs, 1);
		*wait = !(p & SMFIP_NR_RCPT);
		break;
	}
	case CONV_DATA:
		if (p & SMFIP_NODATA)
			return 0;
		rc |= milter_encode_simple(&r->wbuf, SMFIC_DATA);
		*wait = !(p & SMFIP_NR_DATA);
		break;
	case CONV_HEADER: {
		const struct conv_header *h;
		char *value;
		size_t vl;

		if ((p & SMFIP_NOHDRS) || r->hdr_i >= r->nhdrs)
			return 0;
		h = &r->hdrs[r->hdr_i];
		value = xmalloc(h->value_len + 1);
		vl = header_value(r, h, value);
		rc |= milter_encode_header(&r->wbuf, r->block + h->name_off,
		    h->name_len, value, vl);
		free(value);
		*wait = !(p & SMFIP_NR_HDR);
		break;
	}
	case CONV_EOH:
		if (p & SMFIP_NOEOH)
			return 0;
		rc |= milter_encode_simple(&r->wbuf, SMFIC_EOH);
		*wait = !(p & SMFIP_NR_EOH);
		break;
	case CONV_BODY: {
		uint8_t *chunk;
		size_t n = r->msg_size - r->body_pos < MILTER_CHUNK_MAX ?
		    (size_t)(r->msg_size - r->body_pos) : MILTER_CHUNK_MAX;
		ssize_t got;

		if (p & SMFIP_NOBODY) {
			r->body_pos = r->msg_size;
			return 0;
		}
		chunk = xmalloc(n);
		got = pread(r->msg_fd, chunk, n, (off_t)r->body_pos);
		if (got != (ssize_t)n) {
			free(chunk);
			return -1;
		}
		rc |= milter_encode_body(&r->wbuf, chunk, n);
		free(chunk);
		r->body_pos += n;
		*wait = !(p & SMFIP_NR_BODY);
		break;
	}
	case CONV_EOM: {
		const char *names[] = { "i" };
		const char *values[] = { attr(r, WIRE_ATTR_QUEUE_ID) };

		rc |= conv_macros(r, SMFIC_BODYEOB, names, values, 1);
		rc |= milter_encode_simple(&r->wbuf, SMFIC_BODYEOB);
		*wait = true;
		break;
	}
	default:
		return -1;
	}
	return rc ? -1 : 0;
}

/* conv_next_state - the step after the current one. */
static enum conv_state
conv_next_state(struct milter_run *r)
{
	size_t nrcpt = wire_request_count(r->req, WIRE_ATTR_ACCEPTED_RECIPIENT);

	switch (r->state) {
	case CONV_OPTNEG:
		return CONV_CONNECT;
	case CONV_CONNECT:
		return CONV_HELO;
	case CONV_HELO:
		return CONV_MAIL;
	case CONV_MAIL:
		r->rcpt_i = 0;
		return nrcpt > 0 ? CONV_RCPT : CONV_DATA;
	case CONV_RCPT:
		return ++r->rcpt_i < nrcpt ? CONV_RCPT : CONV_DATA;
	case CONV_DATA:
		r->hdr_i = 0;
		return r->nhdrs > 0 ? CONV_HEADER : CONV_EOH;
	case CONV_HEADER:
		return ++r->hdr_i < r->nhdrs ? CONV_HEADER : CONV_EOH;
	case CONV_EOH:
		r->body_pos = r->body_off;
		return r->body_pos < r->msg_size ? CONV_BODY : CONV_EOM;
	case CONV_BODY:
		return r->body_pos < r->msg_size ? CONV_BODY : CONV_EOM;
	default:
		return CONV_DONE;
	}
}

/* conv_continue - the step's answer was "continue" (or none was due):
 * send the following steps up to the next one that is answered. */
static void
conv_continue(struct milter_run *r)
{
	bool wait = false;

	r->write_paused = false;
	while (!wait) {
		if (r->state == CONV_EOM || r->state == CONV_DONE)
			return;
		if (r->wbuf.len - r->woff > CONV_OUT_HIGH) {
			r->write_paused = true;   /* conv_on_write resumes */
			break;
		}
		conv_enter_state(r, conv_next_state(r));
		if (conv_send(r, &wait) < 0) {
			conv_fail(r, ME_PROTOCOL, "cannot encode the step "
			    "(message unreadable or value too long)");
			return;
		}
	}
	r->waiting = wait;
	(void)conv_flush(r);
}

/* conv_on_write - the socket drained: write the rest, resume stepping. */
static void
conv_on_write(evutil_socket_t fd, short what, void *arg)
{
	struct milter_run *r = arg;

	(void)fd;
	(void)what;
	if (r->state == CONV_CONNECTING) {
		int e = 0;
		socklen_t len = sizeof(e);

		if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
			e = errno;
		if (e != 0) {
			conv_fail(r, ME_CONNECT, strerror(e));
			return;
		}
		conv_enter_state(r, CONV_OPTNEG);
		if (milter_encode_optneg(&r->wbuf, MILTER_ACTIONS_OFFERED,
		    MILTER_PROTOCOL_OFFERED) < 0) {
			conv_fail(r, ME_PROTOCOL, "encode");
			return;
		}
		r->waiting = true;
		event_add(r->ev_read, NULL);
		(void)conv_flush(r);
		return;
	}
	if (conv_flush(r) < 0)
		return;
	if (r->write_paused && r->wbuf.len == 0)
		conv_continue(r);
}

/* conv_modification - an EOM modification; -1 when not negotiated or
 * out of bounds. */
static int
conv_modification(struct milter_run *r, const struct milter_reply *m,
    const char **why)
{
	bool lead = (r->pflags & SMFIP_HDR_LEADSPC) != 0;
	uint32_t need = 0;
	int rc = -1;

	switch (m->cmd) {
	case SMFIR_ADDHEADER:
		need = SMFIF_ADDHDRS;
		rc = msg_edits_header(&r->edits, MSG_EDIT_HEADER_ADD, 0,
		    m->name, m->value, lead);
		break;
	case SMFIR_INSHEADER:
		need = SMFIF_ADDHDRS;
		rc = msg_edits_header(&r->edits, MSG_EDIT_HEADER_INSERT,
		    m->index, m->name, m->value, lead);
		break;
	case SMFIR_CHGHEADER:
		need = SMFIF_CHGHDRS;
		rc = msg_edits_header(&r->edits, MSG_EDIT_HEADER_CHANGE,
		    m->index, m->name, m->value, lead);
		break;
	case SMFIR_CHGFROM:
		need = SMFIF_CHGFROM;
		rc = msg_edits_envelope(&r->edits, MSG_EDIT_SENDER, m->addr,
		    m->args);
		break;
	case SMFIR_ADDRCPT:
		need = SMFIF_ADDRCPT;
		rc = msg_edits_envelope(&r->edits, MSG_EDIT_RCPT_ADD, m->addr,
		    NULL);
		break;
	case SMFIR_ADDRCPT_PAR:
		need = SMFIF_ADDRCPT_PAR;
		rc = msg_edits_envelope(&r->edits, MSG_EDIT_RCPT_ADD, m->addr,
		    NULL);
		break;
	case SMFIR_DELRCPT:
		need = SMFIF_DELRCPT;
		rc = msg_edits_envelope(&r->edits, MSG_EDIT_RCPT_DEL, m->addr,
		    NULL);
		break;
	case SMFIR_REPLBODY:
		need = SMFIF_CHGBODY;
		rc = msg_edits_body_append(&r->edits, m->body, m->body_len);
		break;
	case SMFIR_QUARANTINE:
		need = SMFIF_QUARANTINE;
		r->quarantine = true;
		str_copy(r->qreason, m->text[0] ? m->text : "Quarantined by "
		    "milter", sizeof(r->qreason));
		rc = 0;
		break;
	default:
		*why = "not a modification";
		return -1;
	}
	if (!(r->actions & need)) {
		*why = "modification not negotiated";
		return -1;
	}
	if (rc < 0)
		*why = "modification invalid or over its bounds";
	return rc;
}

/* conv_reply - one answer of the milter. */
static void
conv_reply(struct milter_run *r, const struct milter_reply *m)
{
	const char *why = "unexpected answer";
	char enh[16], text[ELEMTA_RESULT_TEXT_MAX];
	int code;

	if (r->state == CONV_OPTNEG) {
		if (m->cmd != SMFIR_OPTNEG || m->version < 2 ||
		    (m->actions & ~MILTER_ACTIONS_OFFERED) != 0 ||
		    (m->protocol & ~(MILTER_PROTOCOL_OFFERED | SMFIP_MDS_256K |
		    SMFIP_MDS_1M)) != 0) {
			conv_fail(r, ME_PROTOCOL, m->cmd == SMFIR_OPTNEG ?
			    "the milter wants actions or steps not offered" :
			    "no option negotiation");
			return;
		}
		r->actions = m->actions;
		r->pflags = m->protocol;
		r->waiting = false;
		conv_continue(r);
		return;
	}
	if (!r->waiting && m->cmd != SMFIR_PROGRESS) {
		conv_fail(r, ME_PROTOCOL, "an answer to a step that is not "
		    "answered");
		return;
	}
	switch (m->cmd) {
	case SMFIR_CONTINUE:
		if (r->state == CONV_EOM) {
			conv_verdict(r, MV_CONTINUE, 0, "", "");
			return;
		}
		r->waiting = false;
		conv_continue(r);
		return;
	case SMFIR_ACCEPT:
		if (r->state != CONV_EOM)
			msg_edits_free(&r->edits);
		conv_verdict(r, MV_ACCEPT, 0, "", "");
		return;
	case SMFIR_REJECT:
		conv_verdict(r, MV_REJECT, 550, "5.7.1", "Message content "
		    "rejected");
		return;
	case SMFIR_TEMPFAIL:
		conv_verdict(r, MV_TEMPFAIL, 451, "4.7.1", "Message content "
		    "temporarily refused, try again later");
		return;
	case SMFIR_DISCARD:
		conv_verdict(r, MV_DISCARD, 0, "", "discarded by milter");
		return;
	case SMFIR_REPLYCODE:
		if (milter_replycode_split(m->text, &code, enh, text,
		    sizeof(text)) < 0)
			break;
		conv_verdict(r, code >= 500 ? MV_REJECT : MV_TEMPFAIL, code,
		    enh, text);
		return;
	case SMFIR_PROGRESS:
		return;     /* the conversation's deadline still holds */
	case SMFIR_SKIP:
		if (r->state != CONV_BODY || !(r->pflags & SMFIP_SKIP))
			break;
		r->body_pos = r->msg_size;
		r->waiting = false;
		conv_continue(r);
		return;
	default:
		if (r->state == CONV_EOM && conv_modification(r, m, &why) == 0)
			return;
		break;
	}
	conv_fail(r, ME_PROTOCOL, why);
}

/* conv_on_read - packets from the milter. */
static void
conv_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct milter_run *r = arg;
	size_t cap = MILTER_PACKET_MAX + 5, off = 0;
	ssize_t n;

	(void)fd;
	(void)what;
	if (r->rbuf == NULL)
		r->rbuf = xmalloc(cap);
	n = recv(r->fd, r->rbuf + r->rlen, cap - r->rlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conv_fail(r, ME_CLOSED, n == 0 ? "connection closed" :
		    strerror(errno));
		return;
	}
	r->rlen += (size_t)n;
	if (r->def->cfg.endpoint.path[0] == '\0') {
		/* libmilter writes an answer in two pieces; under Nagle the
		 * second waits for our ACK of the first, which Linux delays
		 * (40 ms a step with OpenDKIM over TCP): acknowledge at once
		 * (the flag does not stick, so after every read). */
		int one = 1;

		(void)setsockopt(r->fd, IPPROTO_TCP, TCP_QUICKACK, &one,
		    sizeof(one));
	}
	for (;;) {
		struct milter_reply m;
		const uint8_t *data;
		const char *why;
		size_t dlen, used;
		char cmd;
		enum conv_state before = r->state;
		size_t milter_before = r->cur;
		int rc = milter_packet_split(r->rbuf + off, r->rlen - off,
		    &cmd, &data, &dlen, &used);

		if (rc == 0)
			break;
		if (rc < 0 || milter_reply_decode(cmd, data, dlen, &m,
		    &why) < 0) {
			conv_fail(r, ME_PROTOCOL, rc < 0 ? "bad packet length" :
			    why);
			return;
		}
		off += used;
		conv_reply(r, &m);
		/* The conversation ended (or moved to the next milter):
		 * what else this one sent is of no interest. */
		if (r->fd < 0 || r->cur != milter_before ||
		    r->state == CONV_DONE || r->state == CONV_IDLE ||
		    before == CONV_DONE)
			return;
	}
	memmove(r->rbuf, r->rbuf + off, r->rlen - off);
	r->rlen -= off;
}

/* conv_on_timeout - the milter's time is up. */
static void
conv_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct milter_run *r = arg;
	char why[64];

	(void)fd;
	(void)what;
	snprintf(why, sizeof(why), "no answer within %llu ms",
	    (unsigned long long)r->def->cfg.timeout_ms);
	conv_fail(r, ME_TIMEOUT, why);
}

/* milter_socket - a non-blocking socket connecting to m's address; 0
 * when connected, 1 in progress, -1 with err. */
static int
milter_socket(const struct config_milter *m, int *out, struct error *err)
{
	const struct config_endpoint *ep = &m->endpoint;
	int fd;

	if (ep->path[0] != '\0') {
		struct sockaddr_un sun;

		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		str_copy(sun.sun_path, ep->path, sizeof(sun.sun_path));
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
		if (fd < 0)
			return error_set(err, "socket: %s", strerror(errno));
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			*out = fd;
			return 0;
		}
	} else {
		struct addrinfo hints, *ai = NULL;
		char port[16];
		int gai, one = 1;

		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
		snprintf(port, sizeof(port), "%u", ep->port);
		if ((gai = getaddrinfo(ep->host, port, &hints, &ai)) != 0)
			return error_set(err, "%s: %s", ep->host,
			    gai_strerror(gai));
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd < 0) {
			freeaddrinfo(ai);
			return error_set(err, "socket: %s", strerror(errno));
		}
		/* Small packets, each step waiting for its answer: no
		 * Nagle delay on them. */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		gai = connect(fd, ai->ai_addr, ai->ai_addrlen);
		freeaddrinfo(ai);
		if (gai == 0) {
			*out = fd;
			return 0;
		}
	}
	if (errno == EINPROGRESS || errno == EAGAIN) {
		*out = fd;
		return 1;
	}
	error_set(err, "connect: %s", strerror(errno));
	close(fd);
	return -1;
}

/* conv_start - connect to the current milter; the timer starts now. */
static void
conv_start(struct milter_run *r)
{
	struct timeval tv;
	struct error err;
	int fd = -1, rc;

	clock_gettime(CLOCK_MONOTONIC, &r->started);
	r->state = CONV_IDLE;
	conv_enter_state(r, CONV_CONNECTING);
	r->fd = -1;
	r->wbuf = (struct strbuf)STRBUF_INIT(CONV_OUT_LIMIT);
	r->actions = r->pflags = 0;
	rc = milter_socket(&r->def->cfg, &fd, &err);
	if (rc < 0) {
		conv_fail(r, ME_CONNECT, err.text);
		return;
	}
	r->fd = fd;
	r->ev_read = event_new(r->base, fd, EV_READ | EV_PERSIST,
	    conv_on_read, r);
	r->ev_write = event_new(r->base, fd, EV_WRITE, conv_on_write, r);
	r->ev_timer = evtimer_new(r->base, conv_on_timeout, r);
	if (r->ev_read == NULL || r->ev_write == NULL || r->ev_timer == NULL) {
		conv_fail(r, ME_CONNECT, "cannot create events");
		return;
	}
	tv.tv_sec = (time_t)(r->def->cfg.timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)(r->def->cfg.timeout_ms % 1000) * 1000;
	evtimer_add(r->ev_timer, &tv);
	/* Connected or not, the write event says when to negotiate. */
	event_add(r->ev_write, NULL);
}

/* run_next_milter - the next milter serving the listener, or the end. */
static void
run_next_milter(struct milter_run *r)
{
	while (r->def == NULL ? r->cur < r->mc->count :
	    ++r->cur < r->mc->count) {
		r->def = &r->mc->defs[r->cur];
		if (r->def->cfg.modes & r->mode_bit) {
			conv_start(r);
			return;
		}
	}
	run_finish(r);
}

/* run_on_done - hand the outcome over. */
static void
run_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct milter_run *r = arg;
	struct milter_outcome out = r->out;

	(void)fd;
	(void)what;
	memset(&r->out, 0, sizeof(r->out));
	r->done(r->arg, &out);
	milter_run_cancel(r);
}

/* run_on_begin - the first milter, on the loop (never inside start). */
static void
run_on_begin(evutil_socket_t fd, short what, void *arg)
{
	struct milter_run *r = arg;

	(void)fd;
	(void)what;
	if (run_read_headers(r) < 0) {
		log_err("milter: cannot read the message: %s",
		    strerror(errno));
		r->out.action = ELEMTA_TEMPFAIL;
		r->out.code = 451;
		str_copy(r->out.enhanced, "4.3.0", sizeof(r->out.enhanced));
		str_copy(r->out.text, "Error reading the message, try again "
		    "later", sizeof(r->out.text));
		run_finish(r);
		return;
	}
	run_next_milter(r);
}

/* milter_run_start - see milter.h. */
struct milter_run *
milter_run_start(struct milter_chain *mc, struct event_base *base,
    const struct wire_request *req, int message_fd, milter_done_fn done,
    void *arg)
{
	struct milter_run *r = xcalloc(1, sizeof(*r));

	r->mc = mc;
	r->base = base;
	r->req = req;
	r->msg_fd = message_fd;
	r->fd = -1;
	r->done = done;
	r->arg = arg;
	r->mode_bit = mode_bit(wire_request_get(req, WIRE_ATTR_LISTEN_MODE));
	r->out.action = ELEMTA_CONTINUE;
	r->ev_done = event_new(base, -1, 0, run_on_done, r);
	r->ev_begin = evtimer_new(base, run_on_begin, r);
	if (r->ev_done == NULL || r->ev_begin == NULL)
		fatal("milter: cannot create events");
	event_active(r->ev_begin, EV_TIMEOUT, 0);
	return r;
}

/* milter_run_cancel - see milter.h. */
void
milter_run_cancel(struct milter_run *r)
{
	if (r == NULL)
		return;
	conv_close(r);
	if (r->ev_done != NULL)
		event_free(r->ev_done);
	if (r->ev_begin != NULL)
		event_free(r->ev_begin);
	if (r->msg_fd >= 0)
		close(r->msg_fd);
	msg_edits_free(&r->out.edits);
	free(r->block);
	free(r->hdrs);
	free(r);
}

/*==== check-config's probe ====*/

/* probe_wait - poll fd for events within the deadline. */
static int
probe_wait(int fd, short events, struct timespec deadline)
{
	struct timespec now;
	struct pollfd pfd = { .fd = fd, .events = events };
	int64_t ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (int64_t)(deadline.tv_sec - now.tv_sec) * 1000 +
	    (deadline.tv_nsec - now.tv_nsec) / 1000000;
	if (ms <= 0)
		return -1;
	return poll(&pfd, 1, (int)ms) == 1 ? 0 : -1;
}

/* milter_probe - see milter.h. */
int
milter_probe(const struct config_milter *m, uint64_t timeout_ms,
    struct error *err)
{
	struct strbuf sb = STRBUF_INIT(64);
	struct timespec deadline;
	uint8_t buf[512];
	size_t have = 0, dlen, used;
	const uint8_t *data;
	char cmd;
	int fd, rc, e = 0;
	socklen_t len = sizeof(e);

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += (time_t)(timeout_ms / 1000);
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	if ((rc = milter_socket(m, &fd, err)) < 0)
		return -1;
	if (rc == 1 && (probe_wait(fd, POLLOUT, deadline) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0 || e != 0)) {
		close(fd);
		return error_set(err, "connect: %s", e ? strerror(e) :
		    "timed out");
	}
	if (milter_encode_optneg(&sb, MILTER_ACTIONS_OFFERED,
	    MILTER_PROTOCOL_OFFERED) < 0 ||
	    send(fd, sb.data, sb.len, MSG_NOSIGNAL) != (ssize_t)sb.len) {
		strbuf_free(&sb);
		close(fd);
		return error_set(err, "cannot send the option negotiation");
	}
	strbuf_free(&sb);
	for (;;) {
		ssize_t n;

		if (probe_wait(fd, POLLIN, deadline) < 0) {
			close(fd);
			return error_set(err, "no option negotiation answer "
			    "within %llu ms", (unsigned long long)timeout_ms);
		}
		n = recv(fd, buf + have, sizeof(buf) - have, 0);
		if (n <= 0) {
			close(fd);
			return error_set(err, "connection closed during option "
			    "negotiation");
		}
		have += (size_t)n;
		rc = milter_packet_split(buf, have, &cmd, &data, &dlen, &used);
		if (rc != 0 || have == sizeof(buf))
			break;
	}
	sb = (struct strbuf)STRBUF_INIT(64);
	(void)milter_encode_simple(&sb, SMFIC_QUIT);
	(void)send(fd, sb.data, sb.len, MSG_NOSIGNAL | MSG_DONTWAIT);
	strbuf_free(&sb);
	close(fd);
	if (rc != 1 || cmd != SMFIR_OPTNEG || dlen < 12)
		return error_set(err, "not a milter (bad option negotiation "
		    "answer)");
	return 0;
}
