/*
 * fuzz_spf.c - libFuzzer target for policyd/policies/spf_eval.c: the SPF
 * record parser and evaluator with macro expansion, against records,
 * explanations and names an attacker publishes.
 *
 * Built and run by mk/fuzz.mk / scripts/fuzz.  The input is split at LF:
 * line 0 is the TXT record of the sender's domain (example.com), the
 * other lines are served as the TXT record of every other name (chosen
 * by a hash of the name), so includes, redirects and exp= reach them; A,
 * AAAA, MX and PTR answers are made from the name's hash (an address of
 * the client or not, NXDOMAIN, NODATA, a DNS failure; MX and PTR names
 * under the queried name).  Byte 0 of line 0's hash picks IPv4 or IPv6,
 * the sender and the HELO name.  Promises checked:
 *  - the evaluation ends within SPF_QUERY_MAX queries, each name 1..253
 *    octets of printable ASCII without '\', labels 1..63;
 *  - the result is one of the seven, an explanation only for a fail,
 *    explanation and problem printable ASCII within their bounds;
 *  - every line through spf_macro_expand (domain and explanation form):
 *    an accepted expansion is printable, NUL-terminated inside the
 *    buffer, the same with a larger buffer, and stable when repeated.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "dns.h"
#include "log.h"
#include "../../policyd/policies/spf_eval.h"

#include "fuzz.h"

#define SPF_LINES_MAX 16
#define SPF_LINE_MAX (DNS_TXT_MAX - 1)

static char spf_lines[SPF_LINES_MAX][SPF_LINE_MAX + 1];
static size_t spf_line_len[SPF_LINES_MAX];
static size_t spf_line_count;
static struct dns_record spf_records[DNS_ANSWER_RECORDS_MAX];

/* spf_hash - FNV-1a of a name, case-folded (DNS names are). */
static uint32_t
spf_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		h = (h ^ (c >= 'A' && c <= 'Z' ? c + 32u : c)) * 16777619u;
	}
	return h;
}

/* spf_check_name - a query name as spf_eval.h promises it. */
static void
spf_check_name(const char *name)
{
	size_t len = strlen(name), label = 0;

	FUZZ_CHECK(len >= 1 && len <= 253, "query name of %zu octets", len);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		FUZZ_CHECK(c >= 0x20 && c < 0x7f && c != '\\', "byte 0x%02x in "
		    "a query name", c);
		if (c == '.') {
			FUZZ_CHECK(label > 0, "empty label in '%s'", name);
			label = 0;
		} else {
			FUZZ_CHECK(++label <= 63, "label over 63 in '%s'", name);
		}
	}
	FUZZ_CHECK(label > 0, "empty last label in '%s'", name);
}

/* spf_printable_within - s is printable ASCII and shorter than size. */
static void
spf_printable_within(const char *s, size_t size, const char *what)
{
	size_t len = strnlen(s, size);

	FUZZ_CHECK(len < size, "%s not terminated within %zu", what, size);
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK((unsigned char)s[i] >= 0x20 &&
		    (unsigned char)s[i] < 0x7f, "%s: byte 0x%02x", what,
		    (unsigned char)s[i]);
}

/* spf_fake - the answer to (name, type) from the input. */
static void
spf_fake(const char *name, enum dns_type type, const struct addr_ip *client,
    struct dns_answer *a)
{
	uint32_t h = spf_hash(name);
	size_t n = 0;

	memset(a, 0, sizeof(*a));
	a->qname = name;
	a->qtype = type;
	a->records = spf_records;
	switch (h % 7) {
	case 0:
		a->status = DNS_NXDOMAIN;
		return;
	case 1:
		a->status = DNS_TEMPFAIL;
		a->why = "fuzz";
		return;
	case 2:
		if (type != DNS_TYPE_TXT) {
			a->status = DNS_NODATA;
			return;
		}
		break;
	default:
		break;
	}
	memset(spf_records, 0, sizeof(spf_records));
	switch (type) {
	case DNS_TYPE_TXT: {
		size_t line = strcmp(name, "example.com") == 0 ? 0 :
		    spf_line_count > 1 ? 1 + h % (spf_line_count - 1) : 0;
		size_t copies = (h >> 8) % 5 == 0 ? 2 : 1;

		for (; n < copies; n++) {
			spf_records[n].type = DNS_TYPE_TXT;
			spf_records[n].u.txt.text = spf_lines[line];
			spf_records[n].u.txt.len = spf_line_len[line];
		}
		break;
	}
	case DNS_TYPE_A:
	case DNS_TYPE_AAAA:
		for (; n < 1 + (h >> 8) % 3; n++) {
			spf_records[n].type = type;
			if (type == DNS_TYPE_A)
				memcpy(spf_records[n].u.a, client->bytes + 12, 4);
			else
				memcpy(spf_records[n].u.aaaa, client->bytes, 16);
			if ((h >> (10 + n)) & 1)
				spf_records[n].u.a[3] ^= 0x5a;
		}
		break;
	case DNS_TYPE_MX:
	case DNS_TYPE_PTR:
		for (; n < 1 + (h >> 8) % 12; n++) {
			char *out = type == DNS_TYPE_MX ?
			    spf_records[n].u.mx.host : spf_records[n].u.name;

			spf_records[n].type = type;
			snprintf(out, DNS_NAME_MAX, "%s%zu.%.200s",
			    n == 5 ? "" : "h", n, n == 7 ? "." :
			    type == DNS_TYPE_MX ? name : "example.com");
		}
		break;
	default:
		a->status = DNS_NODATA;
		return;
	}
	a->count = n;
	a->status = DNS_OK;
	a->ttl = 60;
}

/* spf_check_expand - one line through spf_macro_expand, both forms. */
static void
spf_check_expand(const struct spf_eval *st, const char *line, size_t len)
{
	static char small[64], big[8192], again[8192];

	for (int exp = 0; exp < 2; exp++) {
		int rs = spf_macro_expand(st, line, len, exp, small,
		    sizeof(small));
		int rb = spf_macro_expand(st, line, len, exp, big, sizeof(big));

		FUZZ_CHECK(rs == 0 || rs == -1, "rc %d", rs);
		if (rs == 0) {
			spf_printable_within(small, sizeof(small), "expansion");
			FUZZ_CHECK(rb == 0 && strcmp(small, big) == 0, "small "
			    "buffer '%s', large '%s'", small, rb == 0 ? big : "");
		}
		if (rb != 0)
			continue;
		spf_printable_within(big, sizeof(big), "expansion");
		FUZZ_CHECK(spf_macro_expand(st, line, len, exp, again,
		    sizeof(again)) == 0 && strcmp(big, again) == 0,
		    "not stable");
		/* a domain-form string is a valid explanation too */
		if (!exp)
			FUZZ_CHECK(spf_macro_expand(st, line, len, 1, again,
			    sizeof(again)) == 0, "domain form accepted, "
			    "explanation form refused");
	}
}

/* LLVMFuzzerInitialize - quiet logs. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_spf", true, (enum log_level)0);
	return 0;
}

/* LLVMFuzzerTestOneInput - one evaluation against the input's zone. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const senders[] = {
		"user@example.com", "", "@example.com", "a.b-c+d=e@example.com",
	};
	static const char *const helos[] = {
		"mail.example.com", "[192.0.2.1]", "%%%%", "example.com",
	};
	struct spf_input in;
	struct spf_eval *st;
	struct spf_query q;
	struct dns_answer a;
	unsigned steps = 0;
	size_t off = 0;
	uint32_t pick;
	enum spf_result r;

	spf_line_count = 0;
	while (off <= size && spf_line_count < SPF_LINES_MAX) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t n = nl ? (size_t)(nl - (data + off)) : size - off;
		size_t keep = n < SPF_LINE_MAX ? n : SPF_LINE_MAX;

		memcpy(spf_lines[spf_line_count], data + off, keep);
		spf_lines[spf_line_count][keep] = '\0';
		spf_line_len[spf_line_count++] = keep;
		off += n + 1;
		if (nl == NULL)
			break;
	}
	pick = spf_hash(spf_lines[0]);
	memset(&in, 0, sizeof(in));
	addr_ip_parse(pick & 1 ? "2001:db8::25" : "192.0.2.25", &in.ip);
	in.sender = senders[(pick >> 1) % 4];
	in.helo = helos[(pick >> 3) % 4];
	in.identity = (pick >> 5) % 7 == 0 ? SPF_IDENTITY_HELO :
	    SPF_IDENTITY_MAILFROM;
	in.receiver = "mx.example.net";
	in.now = 1700000000;

	st = spf_eval_new(&in);
	while (spf_eval_step(st, &q) == SPF_NEED_DNS) {
		FUZZ_CHECK(++steps <= SPF_QUERY_MAX, "more than %d queries",
		    SPF_QUERY_MAX);
		spf_check_name(q.name);
		spf_fake(q.name, q.type, &in.ip, &a);
		spf_eval_answer(st, &a);
	}
	r = spf_eval_result(st);
	FUZZ_CHECK(r >= SPF_RESULT_NONE && r <= SPF_RESULT_PERMERROR,
	    "result %d", (int)r);
	FUZZ_CHECK(spf_eval_explanation(st) == NULL || r == SPF_RESULT_FAIL,
	    "explanation for %s", spf_result_name(r));
	if (spf_eval_explanation(st) != NULL)
		spf_printable_within(spf_eval_explanation(st),
		    SPF_EXPLANATION_MAX, "explanation");
	spf_printable_within(spf_eval_problem(st), SPF_PROBLEM_MAX, "problem");
	spf_printable_within(spf_eval_mechanism(st), SPF_MECHANISM_MAX,
	    "mechanism");
	for (size_t i = 0; i < spf_line_count; i++)
		spf_check_expand(st, spf_lines[i], spf_line_len[i]);
	spf_eval_free(st);
	return 0;
}
