/*
 * spf_eval.c - RFC 7208's check_host() as a resumable state machine: the
 * record selection (4.5), the record's syntax (4.6, checked whole before a
 * term is evaluated), the mechanisms and modifiers (5, 6), macros (7) and
 * the processing limits (4.6.4).  The contract is spf_eval.h's.
 *
 * Called by the `policy` plugin's SPF rule (spf.c), the unit tests
 * (tests/unit/test_spf_eval.c) and the fuzz target (tests/fuzz/fuzz_spf.c).
 * Inputs are untrusted twice over: the sender and HELO name come from the
 * client, the records and every name in an answer from whoever publishes
 * the domain.  Nothing here allocates after spf_eval_new.
 *
 * include: pushes a frame (one per record being evaluated, at most
 * SPF_LOOKUP_LIMIT + 1 deep since each include counts against the limit);
 * redirect= replaces the frame's record in place, so its exp= goes with it
 * (6.2: an exp= of the original domain is not used).  The client's
 * validated names (ptr, %{p}) are looked up once and shared.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "spf_eval.h"

#define SPF_RECORD_MAX DNS_TXT_MAX
#define SPF_DEPTH_MAX (SPF_LOOKUP_LIMIT + 1)
#define SPF_EXPAND_MAX 2048     /* a macro-string expanded, before the
                                 * 253-octet truncation of a name (7.3) */
#define SPF_HOST_MAX 253        /* a domain name in presentation form  */

/* ==== vocabulary ==== */

enum spf_phase {
	SPF_PHASE_RECORD,       /* the top frame's TXT records are wanted     */
	SPF_PHASE_TERMS,        /* walking the top frame's terms              */
	SPF_PHASE_EXP,          /* a fail at the root: its explanation        */
	SPF_PHASE_DONE,
};

/* What the outstanding query is for. */
enum spf_wait {
	SPF_WAIT_NONE,
	SPF_WAIT_RECORD,        /* TXT of the top frame's domain              */
	SPF_WAIT_ADDR,          /* a: A/AAAA of the target                    */
	SPF_WAIT_MX,            /* mx: MX of the target                       */
	SPF_WAIT_MX_ADDR,       /* mx: A/AAAA of one MX name                  */
	SPF_WAIT_EXISTS,        /* exists: A of the target                    */
	SPF_WAIT_PTR,           /* ptr / %{p}: PTR of the client              */
	SPF_WAIT_PTR_ADDR,      /* ptr / %{p}: A/AAAA of one PTR name         */
	SPF_WAIT_EXP,           /* exp=: TXT of the explanation's name        */
};

enum spf_mech {
	SPF_MECH_ALL,
	SPF_MECH_INCLUDE,
	SPF_MECH_A,
	SPF_MECH_MX,
	SPF_MECH_PTR,
	SPF_MECH_IP4,
	SPF_MECH_IP6,
	SPF_MECH_EXISTS,
};

enum spf_modifier {
	SPF_MOD_REDIRECT,
	SPF_MOD_EXP,
	SPF_MOD_UNKNOWN,
};

/* The mechanism names of 5.x, in enum spf_mech's order. */
static const char *const spf_mech_names[] = {
	"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists",
};

enum spf_ptr_state {
	SPF_PTRS_UNKNOWN,       /* not looked up yet                          */
	SPF_PTRS_NAMES,         /* PTR names known, addresses being checked   */
	SPF_PTRS_DONE,
};

enum spf_exp_state {
	SPF_EXP_NAME,           /* expand exp='s domain-spec, ask its TXT     */
	SPF_EXP_TEXT,           /* expand the fetched explanation text        */
};

/* One term of a record, parsed; spec points into the record. */
struct spf_term {
	bool is_modifier;
	enum spf_mech mech;
	enum spf_modifier modifier;
	char qualifier;                 /* '+', '-', '~', '?'                 */
	const char *spec;               /* domain-spec / macro-string / net   */
	size_t spec_len;                /* 0: none given                      */
	unsigned cidr4, cidr6;
	uint8_t net[16];                /* ip4 (4 bytes) / ip6                */
	size_t len;                     /* of the whole term                  */
};

/* One record under evaluation (the root, or an include's target). */
struct spf_frame {
	char domain[DNS_NAME_MAX];
	char record[SPF_RECORD_MAX];
	size_t record_len;
	size_t pos;                     /* the next term                      */
	bool redirected;                /* reached through redirect=          */
	bool has_redirect, has_exp;
	size_t redirect_off, redirect_len, exp_off, exp_len;
	char include_qualifier;         /* of the include waiting on a child  */
	size_t include_off, include_len;
};

struct spf_eval {
	enum spf_phase phase;
	enum spf_wait wait;
	enum spf_result result;
	enum spf_identity identity;

	/* The identity and the macro values (7.3). */
	bool v4;
	uint8_t ip[16];                 /* v4: the 4 bytes in ip[12..16)      */
	char sender[SPF_SENDER_MAX];    /* local@domain                       */
	size_t local_len;
	const char *sender_domain;      /* into sender                        */
	char helo[SPF_SENDER_MAX];
	char receiver[DNS_NAME_MAX];
	char now[24];
	char ip_macro[80];              /* %{i}: dotted quad or 32 nibbles    */
	char ip_text[ADDR_TEXT_MAX];    /* %{c}                               */
	char ptr_name[DNS_REVERSE_MAX + 16];

	/* The outstanding query. */
	char query_name[DNS_NAME_MAX];
	enum dns_type query_type;
	unsigned queries, lookups, voids;

	struct spf_frame frames[SPF_DEPTH_MAX];
	unsigned depth;                 /* frames in use                      */

	/* The lookup mechanism under evaluation in the top frame. */
	struct {
		char qualifier;
		unsigned cidr4, cidr6;
		size_t term_off, term_len;
		char hosts[SPF_MX_LIMIT][DNS_NAME_MAX];
		size_t host_count, host_next;
	} mech;

	/* The client's names (ptr, %{p}), looked up once. */
	enum spf_ptr_state ptr_state;
	bool ptr_void;
	char ptr_names[SPF_PTR_LIMIT][DNS_NAME_MAX];
	bool ptr_valid[SPF_PTR_LIMIT];
	size_t ptr_count, ptr_next;

	enum spf_exp_state exp_state;
	char exp_text[SPF_RECORD_MAX];
	bool has_explanation;
	char explanation[SPF_EXPLANATION_MAX];

	char problem[SPF_PROBLEM_MAX];
	char mechanism[SPF_MECHANISM_MAX];
};

static void spf_frame_done(struct spf_eval *st, enum spf_result r);

/* ==== small helpers ==== */

/* spf_result_name - the result's name. */
const char *
spf_result_name(enum spf_result r)
{
	switch (r) {
	case SPF_RESULT_NONE:      return "none";
	case SPF_RESULT_NEUTRAL:   return "neutral";
	case SPF_RESULT_PASS:      return "pass";
	case SPF_RESULT_FAIL:      return "fail";
	case SPF_RESULT_SOFTFAIL:  return "softfail";
	case SPF_RESULT_TEMPERROR: return "temperror";
	case SPF_RESULT_PERMERROR: return "permerror";
	}
	return "none";
}

static bool
spf_is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
spf_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool
spf_is_alnum(int c)
{
	return spf_is_alpha(c) || spf_is_digit(c);
}

static int
spf_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* spf_ieq - text[0..len) equals word, ASCII case-insensitively. */
static bool
spf_ieq(const char *text, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(text, word, len) == 0;
}

/* spf_copy_printable - dst gets src[0..len) with anything unprintable
 * shown as '?' (problems and mechanisms end up in headers and logs). */
static void
spf_copy_printable(char *dst, size_t size, const char *src, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 1 < size; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	dst[n] = '\0';
}

/* spf_printable - text[0..len) is 7-bit printable ASCII (3.1, 6.2). */
static bool
spf_printable(const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e)
			return false;
	return true;
}

/* spf_finish - the evaluation's final result, with why for the errors. */
static void spf_finish(struct spf_eval *st, enum spf_result r,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void
spf_finish(struct spf_eval *st, enum spf_result r, const char *fmt, ...)
{
	char tmp[SPF_PROBLEM_MAX];
	va_list ap;

	st->result = r;
	st->phase = SPF_PHASE_DONE;
	st->wait = SPF_WAIT_NONE;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(tmp, sizeof(tmp), fmt, ap);
		va_end(ap);
		spf_copy_printable(st->problem, sizeof(st->problem), tmp,
		    strlen(tmp));
	}
}

/* spf_ask - make name/type the outstanding query for wait. */
static void
spf_ask(struct spf_eval *st, enum spf_wait wait, const char *name,
    enum dns_type type)
{
	if (st->queries >= SPF_QUERY_MAX) {
		/* Unreachable under the limits; kept as the hard bound. */
		spf_finish(st, SPF_RESULT_PERMERROR, "too many DNS queries");
		return;
	}
	str_copy(st->query_name, name, sizeof(st->query_name));
	st->query_type = type;
	st->wait = wait;
	st->queries++;
}

/* spf_addr_type - A for an IPv4 client, AAAA for IPv6 (5.3, 5.4). */
static enum dns_type
spf_addr_type(const struct spf_eval *st)
{
	return st->v4 ? DNS_TYPE_A : DNS_TYPE_AAAA;
}

/* spf_prefix_match - the first bits of a and b agree. */
static bool
spf_prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[whole] ^ b[whole]) & (0xffu << (8 - rest)) & 0xffu) == 0;
}

/* spf_record_matches - an A/AAAA record is within cidr of the client. */
static bool
spf_record_matches(const struct spf_eval *st, const struct dns_record *rec,
    unsigned cidr4, unsigned cidr6)
{
	if (st->v4 && rec->type == DNS_TYPE_A)
		return spf_prefix_match(rec->u.a, st->ip + 12, cidr4);
	if (!st->v4 && rec->type == DNS_TYPE_AAAA)
		return spf_prefix_match(rec->u.aaaa, st->ip, cidr6);
	return false;
}

/* spf_answer_matches - any address of the answer matches the client. */
static bool
spf_answer_matches(const struct spf_eval *st, const struct dns_answer *a,
    unsigned cidr4, unsigned cidr6)
{
	for (size_t i = 0; i < a->count; i++)
		if (spf_record_matches(st, &a->records[i], cidr4, cidr6))
			return true;
	return false;
}

/* spf_count_type - records of type in the answer. */
static size_t
spf_count_type(const struct dns_answer *a, enum dns_type type)
{
	size_t n = 0;

	for (size_t i = 0; i < a->count; i++)
		n += a->records[i].type == type;
	return n;
}

/* ==== names ==== */

/* spf_name_finish - a macro-expanded name made a query name (7.3): one
 * trailing dot dropped, left labels removed while over 253 octets, then
 * checked: labels of 1..63 octets, printable ASCII without the characters
 * the resolver refuses (dns_name_canonical: space \ " ( ) ;).  0 with
 * out filled, or -1: the name cannot be asked (no match, 4.3 / 5) - never
 * a lookup the resolver would refuse, which would read as temperror. */
static int
spf_name_finish(const char *in, size_t len, char *out, size_t size)
{
	size_t label = 0;

	if (len > 0 && in[len - 1] == '.')
		len--;
	while (len > SPF_HOST_MAX) {
		const char *dot = memchr(in, '.', len);

		if (dot == NULL)
			return -1;
		len -= (size_t)(dot - in) + 1;
		in = dot + 1;
	}
	if (len == 0 || len + 1 > size)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '"' ||
		    c == '(' || c == ')' || c == ';')
			return -1;
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (++label > 63) {
			return -1;
		}
	}
	if (label == 0)
		return -1;
	memcpy(out, in, len);
	out[len] = '\0';
	return 0;
}

/* spf_identity_domain_ok - 4.3: a multi-label domain name (letters,
 * digits, '-', '_'), labels 1..63 octets, at most 253, one trailing dot
 * allowed (already removed by the caller). */
static bool
spf_identity_domain_ok(const char *d)
{
	size_t len = strlen(d), label = 0, labels = 1;

	if (len == 0 || len > SPF_HOST_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (d[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
			labels++;
		} else if (spf_is_alnum(d[i]) || d[i] == '-' || d[i] == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0 && labels >= 2;
}

/* spf_name_within - name is domain or a subdomain of it (any case). */
static bool
spf_name_within(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);

	if (n == d)
		return strcasecmp(name, domain) == 0;
	return n > d && name[n - d - 1] == '.' &&
	    strcasecmp(name + n - d, domain) == 0;
}

/* ==== macros (7) ==== */

/* spf_emit - append n bytes; -1 when out is full. */
static int
spf_emit(char *out, size_t size, size_t *o, const char *s, size_t n)
{
	if (out == NULL)
		return 0;
	if (*o + n + 1 > size)
		return -1;
	memcpy(out + *o, s, n);
	*o += n;
	out[*o] = '\0';
	return 0;
}

/* spf_url_unreserved - RFC 3986 unreserved: kept by an uppercase macro. */
static bool
spf_url_unreserved(int c)
{
	return spf_is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* spf_ptr_choice - %{p} for domain (7.3): a validated name equal to the
 * domain, else one within it, else any validated name, else "unknown". */
static const char *
spf_ptr_choice(const struct spf_eval *st, const char *domain)
{
	const char *within = NULL, *any = NULL;

	if (st->ptr_state != SPF_PTRS_DONE)
		return "unknown";
	for (size_t i = 0; i < st->ptr_count; i++) {
		if (!st->ptr_valid[i])
			continue;
		if (strcasecmp(st->ptr_names[i], domain) == 0)
			return st->ptr_names[i];
		if (within == NULL && spf_name_within(st->ptr_names[i], domain))
			within = st->ptr_names[i];
		if (any == NULL)
			any = st->ptr_names[i];
	}
	return within ? within : any ? any : "unknown";
}

/* spf_current_domain - <domain> of the record being evaluated. */
static const char *
spf_current_domain(const struct spf_eval *st)
{
	return st->depth > 0 ? st->frames[st->depth - 1].domain : "";
}

/* spf_macro_value - the value of letter (lower case) for st. */
static const char *
spf_macro_value(const struct spf_eval *st, int letter, size_t *len)
{
	const char *v = "";

	switch (letter) {
	case 's': v = st->sender; break;
	case 'l': *len = st->local_len; return st->sender;
	case 'o': v = st->sender_domain; break;
	case 'd': v = spf_current_domain(st); break;
	case 'i': v = st->ip_macro; break;
	case 'p': v = spf_ptr_choice(st, spf_current_domain(st)); break;
	case 'v': v = st->v4 ? "in-addr" : "ip6"; break;
	case 'h': v = st->helo; break;
	case 'c': v = st->ip_text; break;
	case 'r': v = st->receiver; break;
	case 't': v = st->now; break;
	}
	*len = strlen(v);
	return v;
}

/* spf_macro_transform - one %{...} expanded (7.3): split value on delims,
 * reverse if asked, keep the rightmost digits parts (0: all), join with
 * '.', URL-escape when the letter was upper case. */
static int
spf_macro_transform(const char *v, size_t vlen, const char *delims,
    unsigned digits, bool reverse, bool escape, char *out, size_t size,
    size_t *o)
{
	uint16_t start[SPF_SENDER_MAX + 1], end[SPF_SENDER_MAX + 1];
	size_t parts = 0, first, i;
	char joined[SPF_SENDER_MAX * 2];
	size_t jl = 0;

	if (vlen > SPF_SENDER_MAX)
		return -1;
	start[0] = 0;
	for (i = 0; i < vlen; i++) {
		if (strchr(delims, v[i]) != NULL) {
			end[parts++] = (uint16_t)i;
			start[parts] = (uint16_t)(i + 1);
		}
	}
	end[parts++] = (uint16_t)vlen;
	first = digits != 0 && digits < parts ? parts - digits : 0;
	/* the kept parts are the rightmost of the (reversed) list */
	for (i = first; i < parts; i++) {
		size_t k = reverse ? parts - 1 - i : i;
		size_t n = (size_t)(end[k] - start[k]);

		if (i > first)
			joined[jl++] = '.';
		memcpy(joined + jl, v + start[k], n);
		jl += n;
	}
	if (!escape)
		return spf_emit(out, size, o, joined, jl);
	for (i = 0; i < jl; i++) {
		char hex[4];
		unsigned char c = (unsigned char)joined[i];

		if (spf_url_unreserved(c)) {
			if (spf_emit(out, size, o, joined + i, 1) < 0)
				return -1;
			continue;
		}
		snprintf(hex, sizeof(hex), "%%%02X", c);
		if (spf_emit(out, size, o, hex, 3) < 0)
			return -1;
	}
	return 0;
}

/* spf_macro_walk - parse in[0..len) as a macro-string (exp: an
 * explain-string, with c, r, t and spaces) and, when out is not NULL,
 * expand it with st's values.  *ends_macro: the last token was a
 * macro-expand; *uses_p: %{p} appears.  0, or -1: syntax error or out
 * too small. */
static int
spf_macro_walk(const struct spf_eval *st, const char *in, size_t len,
    bool exp, char *out, size_t size, bool *ends_macro, bool *uses_p)
{
	size_t i = 0, o = 0;

	if (out != NULL && size > 0)
		out[0] = '\0';
	*ends_macro = false;
	*uses_p = false;
	while (i < len) {
		unsigned char c = (unsigned char)in[i];

		*ends_macro = false;
		if (c != '%') {
			if (c == ' ' ? !exp : c < 0x21 || c > 0x7e)
				return -1;
			if (spf_emit(out, size, &o, in + i, 1) < 0)
				return -1;
			i++;
			continue;
		}
		if (i + 1 >= len)
			return -1;
		*ends_macro = true;
		switch (in[i + 1]) {
		case '%':
			if (spf_emit(out, size, &o, "%", 1) < 0)
				return -1;
			i += 2;
			continue;
		case '_':
			if (spf_emit(out, size, &o, " ", 1) < 0)
				return -1;
			i += 2;
			continue;
		case '-':
			if (spf_emit(out, size, &o, "%20", 3) < 0)
				return -1;
			i += 2;
			continue;
		case '{':
			break;
		default:
			return -1;
		}
		/* "%{" letter *DIGIT ["r"] *delimiter "}" */
		i += 2;
		if (i >= len)
			return -1;
		int letter = spf_lower((unsigned char)in[i]);
		bool upper = in[i] >= 'A' && in[i] <= 'Z';
		unsigned digits = 0;
		bool have_digits = false, reverse = false;
		char delims[8];
		size_t nd = 0;

		if (strchr(exp ? "slodiphvcrt" : "slodiphv", letter) == NULL ||
		    letter == '\0')
			return -1;
		i++;
		while (i < len && spf_is_digit(in[i])) {
			have_digits = true;
			digits = digits * 10 + (unsigned)(in[i] - '0');
			if (digits > 1000)
				digits = 1000;  /* more parts than any value */
			i++;
		}
		if (have_digits && digits == 0)
			return -1;      /* 7.3: the number MUST be nonzero */
		if (i < len && (in[i] == 'r' || in[i] == 'R')) {
			reverse = true;
			i++;
		}
		while (i < len && strchr(".-+,/_=", in[i]) != NULL &&
		    in[i] != '\0') {
			if (nd + 1 < sizeof(delims) && memchr(delims, in[i], nd)
			    == NULL)
				delims[nd++] = in[i];
			i++;
		}
		if (i >= len || in[i] != '}')
			return -1;
		i++;
		if (nd == 0)
			delims[nd++] = '.';
		delims[nd] = '\0';
		if (letter == 'p')
			*uses_p = true;
		if (out != NULL) {
			size_t vlen;
			const char *v = spf_macro_value(st, letter, &vlen);

			if (spf_macro_transform(v, vlen, delims, digits, reverse,
			    upper, out, size, &o) < 0)
				return -1;
		}
	}
	return 0;
}

/* spf_macro_expand - the public expansion (fuzz target, tests). */
int
spf_macro_expand(const struct spf_eval *st, const char *in, size_t len,
    bool exp, char *out, size_t size)
{
	bool ends, uses_p;

	if (st == NULL || in == NULL || out == NULL || size == 0)
		return -1;
	return spf_macro_walk(st, in, len, exp, out, size, &ends, &uses_p);
}

/* spf_toplabel_ok - 7.1: alphanumerics and '-', not starting or ending
 * with '-', not all digits. */
static bool
spf_toplabel_ok(const char *t, size_t n)
{
	bool alpha = false, dash = false;

	if (n == 0 || !spf_is_alnum(t[0]) || !spf_is_alnum(t[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (spf_is_alpha(t[i]))
			alpha = true;
		else if (t[i] == '-')
			dash = true;
		else if (!spf_is_digit(t[i]))
			return false;
	}
	return alpha || dash;
}

/* spf_domain_spec_ok - 7.1: domain-spec = macro-string domain-end,
 * domain-end = ( "." toplabel [ "." ] ) / macro-expand. */
static bool
spf_domain_spec_ok(const char *s, size_t n)
{
	bool ends_macro, uses_p;
	size_t e = n, t;

	if (n == 0 || spf_macro_walk(NULL, s, n, false, NULL, 0, &ends_macro,
	    &uses_p) < 0)
		return false;
	if (ends_macro)
		return true;
	if (s[e - 1] == '.')
		e--;
	t = e;
	while (t > 0 && (spf_is_alnum(s[t - 1]) || s[t - 1] == '-'))
		t--;
	return t > 0 && s[t - 1] == '.' && spf_toplabel_ok(s + t, e - t);
}

/* spf_uses_p - the macro-string mentions %{p} (needs the client's names). */
static bool
spf_uses_p(const char *s, size_t n, bool exp)
{
	bool ends_macro, uses_p;

	return spf_macro_walk(NULL, s, n, exp, NULL, 0, &ends_macro,
	    &uses_p) == 0 && uses_p;
}

/* ==== terms (4.6.1, 5, 6) ==== */

/* spf_cidr_digits - "/"-less digits [s, e) as a length <= max, without a
 * leading zero. */
static int
spf_cidr_digits(const char *s, size_t n, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!spf_is_digit(s[i]))
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* spf_dual_cidr - strip a dual-cidr-length from the end of s[0..*n):
 * [ "/" ip4 ] [ "//" ip6 ]; -1 on a bad length. */
static int
spf_dual_cidr(const char *s, size_t *n, unsigned *c4, unsigned *c6)
{
	size_t e = *n, d = e;

	while (d > 0 && spf_is_digit(s[d - 1]))
		d--;
	if (d < e && d >= 2 && s[d - 1] == '/' && s[d - 2] == '/') {
		if (spf_cidr_digits(s + d, e - d, 128, c6) < 0)
			return -1;
		e = d - 2;
		d = e;
		while (d > 0 && spf_is_digit(s[d - 1]))
			d--;
	}
	if (d < e && d >= 1 && s[d - 1] == '/') {
		if (spf_cidr_digits(s + d, e - d, 32, c4) < 0)
			return -1;
		e = d - 1;
	}
	*n = e;
	return 0;
}

/* spf_ip_net - "ip4:"/"ip6:" argument: network [ "/" length ]. */
static int
spf_ip_net(struct spf_term *t, bool v6)
{
	const char *slash = memchr(t->spec, '/', t->spec_len);
	size_t nlen = slash ? (size_t)(slash - t->spec) : t->spec_len;
	char buf[64];

	if (nlen == 0 || nlen >= sizeof(buf))
		return -1;
	memcpy(buf, t->spec, nlen);
	buf[nlen] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, t->net) != 1)
		return -1;
	if (slash != NULL && spf_cidr_digits(slash + 1, t->spec_len - nlen - 1,
	    v6 ? 128 : 32, v6 ? &t->cidr6 : &t->cidr4) < 0)
		return -1;
	return 0;
}

/* spf_term_parse - one term s[0..n) (no spaces in it); -1 on any syntax
 * error (the whole record is then permerror, 4.6). */
static int
spf_term_parse(const char *s, size_t n, struct spf_term *t)
{
	size_t i = 0, name;
	const char *rest;
	size_t rlen;

	memset(t, 0, sizeof(*t));
	t->len = n;
	t->qualifier = '+';
	t->cidr4 = 32;
	t->cidr6 = 128;
	if (n > 0 && strchr("+-~?", s[0]) != NULL) {
		t->qualifier = s[0];
		i = 1;
	}
	name = i;
	while (i < n && (spf_is_alnum(s[i]) || s[i] == '-' || s[i] == '_' ||
	    s[i] == '.'))
		i++;
	rest = s + i;
	rlen = n - i;
	if (i < n && s[i] == '=') {
		/* modifier = name "=" macro-string; no qualifier */
		if (name != 0 || i == 0 || !spf_is_alpha(s[0]))
			return -1;
		t->is_modifier = true;
		t->spec = rest + 1;
		t->spec_len = rlen - 1;
		if (spf_ieq(s, i, "redirect")) {
			t->modifier = SPF_MOD_REDIRECT;
			return spf_domain_spec_ok(t->spec, t->spec_len) ? 0 : -1;
		}
		if (spf_ieq(s, i, "exp")) {
			t->modifier = SPF_MOD_EXP;
			return spf_domain_spec_ok(t->spec, t->spec_len) ? 0 : -1;
		}
		t->modifier = SPF_MOD_UNKNOWN;
		bool ends, uses_p;
		return spf_macro_walk(NULL, t->spec, t->spec_len, false, NULL, 0,
		    &ends, &uses_p);
	}
	size_t m;
	for (m = 0; m < sizeof(spf_mech_names) / sizeof(spf_mech_names[0]); m++)
		if (spf_ieq(s + name, i - name, spf_mech_names[m]))
			break;
	if (m == sizeof(spf_mech_names) / sizeof(spf_mech_names[0]))
		return -1;
	t->mech = (enum spf_mech)m;
	switch (t->mech) {
	case SPF_MECH_ALL:
		return rlen == 0 ? 0 : -1;
	case SPF_MECH_INCLUDE:
	case SPF_MECH_EXISTS:
		if (rlen < 2 || rest[0] != ':')
			return -1;
		t->spec = rest + 1;
		t->spec_len = rlen - 1;
		return spf_domain_spec_ok(t->spec, t->spec_len) ? 0 : -1;
	case SPF_MECH_PTR:
		if (rlen == 0)
			return 0;
		if (rest[0] != ':')
			return -1;
		t->spec = rest + 1;
		t->spec_len = rlen - 1;
		return spf_domain_spec_ok(t->spec, t->spec_len) ? 0 : -1;
	case SPF_MECH_A:
	case SPF_MECH_MX:
		if (rlen > 0 && rest[0] == ':') {
			t->spec = rest + 1;
			t->spec_len = rlen - 1;
			if (spf_dual_cidr(t->spec, &t->spec_len, &t->cidr4,
			    &t->cidr6) < 0)
				return -1;
			return spf_domain_spec_ok(t->spec, t->spec_len) ? 0 : -1;
		}
		if (spf_dual_cidr(rest, &rlen, &t->cidr4, &t->cidr6) < 0)
			return -1;
		return rlen == 0 ? 0 : -1;
	case SPF_MECH_IP4:
	case SPF_MECH_IP6:
		if (rlen < 2 || rest[0] != ':')
			return -1;
		t->spec = rest + 1;
		t->spec_len = rlen - 1;
		return spf_ip_net(t, t->mech == SPF_MECH_IP6);
	}
	return -1;
}

/* spf_term_at - the term of frame f starting at *pos (spaces skipped);
 * false at the end of the record.  The record was checked whole, so a
 * term here always parses. */
static bool
spf_term_at(const struct spf_frame *f, size_t *pos, struct spf_term *t)
{
	size_t p = *pos, e;

	while (p < f->record_len && f->record[p] == ' ')
		p++;
	*pos = p;
	if (p >= f->record_len)
		return false;
	e = p;
	while (e < f->record_len && f->record[e] != ' ')
		e++;
	return spf_term_parse(f->record + p, e - p, t) == 0;
}

/* spf_record_check - 4.6: every term of the frame's record, before any is
 * evaluated; notes redirect= and exp= (each at most once, 6). */
static int
spf_record_check(struct spf_frame *f, char *why, size_t whylen)
{
	size_t p = 6;
	struct spf_term t;

	f->has_redirect = f->has_exp = false;
	for (;;) {
		while (p < f->record_len && f->record[p] == ' ')
			p++;
		if (p >= f->record_len)
			return 0;
		size_t e = p;
		while (e < f->record_len && f->record[e] != ' ')
			e++;
		if (spf_term_parse(f->record + p, e - p, &t) < 0) {
			char term[64];

			spf_copy_printable(term, sizeof(term), f->record + p,
			    e - p);
			snprintf(why, whylen, "syntax error in '%s'", term);
			return -1;
		}
		if (t.is_modifier && t.modifier == SPF_MOD_REDIRECT) {
			if (f->has_redirect) {
				snprintf(why, whylen, "redirect= twice");
				return -1;
			}
			f->has_redirect = true;
			f->redirect_off = (size_t)(t.spec - f->record);
			f->redirect_len = t.spec_len;
		} else if (t.is_modifier && t.modifier == SPF_MOD_EXP) {
			if (f->has_exp) {
				snprintf(why, whylen, "exp= twice");
				return -1;
			}
			f->has_exp = true;
			f->exp_off = (size_t)(t.spec - f->record);
			f->exp_len = t.spec_len;
		}
		p = e;
	}
}

/* ==== the client's validated names (5.5, %{p}) ==== */

/* spf_ptrs_ready - whether the client's names are known; if not, the
 * next query for them is now outstanding (the caller retries later). */
static bool
spf_ptrs_ready(struct spf_eval *st)
{
	switch (st->ptr_state) {
	case SPF_PTRS_DONE:
		return true;
	case SPF_PTRS_UNKNOWN:
		spf_ask(st, SPF_WAIT_PTR, st->ptr_name, DNS_TYPE_PTR);
		return false;
	case SPF_PTRS_NAMES:
		if (st->ptr_next < st->ptr_count) {
			spf_ask(st, SPF_WAIT_PTR_ADDR,
			    st->ptr_names[st->ptr_next], spf_addr_type(st));
			return false;
		}
		st->ptr_state = SPF_PTRS_DONE;
		return true;
	}
	return true;
}

/* spf_ptr_answer - the client's PTR names; a DNS error leaves none. */
static void
spf_ptr_answer(struct spf_eval *st, enum dns_status status,
    const struct dns_answer *a)
{
	if (status != DNS_OK) {
		st->ptr_void = status == DNS_NXDOMAIN || status == DNS_NODATA;
		st->ptr_state = SPF_PTRS_DONE;
		return;
	}
	st->ptr_count = 0;
	/* 4.6.4: only the first SPF_PTR_LIMIT names are looked at. */
	for (size_t i = 0; i < a->count && st->ptr_count < SPF_PTR_LIMIT; i++) {
		const char *name;
		char *slot = st->ptr_names[st->ptr_count];

		if (a->records[i].type != DNS_TYPE_PTR)
			continue;
		name = a->records[i].u.name;
		if (spf_name_finish(name, strnlen(name, DNS_NAME_MAX - 1), slot,
		    DNS_NAME_MAX) < 0)
			slot[0] = '\0';
		st->ptr_valid[st->ptr_count] = false;
		st->ptr_count++;
	}
	st->ptr_next = 0;
	st->ptr_state = st->ptr_count > 0 ? SPF_PTRS_NAMES : SPF_PTRS_DONE;
	st->ptr_void = st->ptr_count == 0;
	/* a name that cannot be asked is skipped without a query */
	while (st->ptr_next < st->ptr_count &&
	    st->ptr_names[st->ptr_next][0] == '\0')
		st->ptr_next++;
}

/* spf_ptr_addr_answer - one PTR name validated (or not; errors skip it). */
static void
spf_ptr_addr_answer(struct spf_eval *st, enum dns_status status,
    const struct dns_answer *a)
{
	if (status == DNS_OK && spf_answer_matches(st, a, 32, 128))
		st->ptr_valid[st->ptr_next] = true;
	st->ptr_next++;
	while (st->ptr_next < st->ptr_count &&
	    st->ptr_names[st->ptr_next][0] == '\0')
		st->ptr_next++;
}

/* ==== evaluation ==== */

/* spf_qualifier_result - 4.6.2's table. */
static enum spf_result
spf_qualifier_result(char q)
{
	switch (q) {
	case '-': return SPF_RESULT_FAIL;
	case '~': return SPF_RESULT_SOFTFAIL;
	case '?': return SPF_RESULT_NEUTRAL;
	default:  return SPF_RESULT_PASS;
	}
}

/* spf_match - the term [off, off+len) of the top frame matched. */
static void
spf_match(struct spf_eval *st, char qualifier, size_t off, size_t len)
{
	const struct spf_frame *f = &st->frames[st->depth - 1];

	if (st->depth == 1)
		spf_copy_printable(st->mechanism, sizeof(st->mechanism),
		    f->record + off, len);
	spf_frame_done(st, spf_qualifier_result(qualifier));
}

/* spf_within_limit - one more of what *count counts (4.6.4); false when
 * that is over limit (the evaluation is then a permerror). */
static bool
spf_within_limit(struct spf_eval *st, unsigned *count, unsigned limit,
    const char *what)
{
	if (++*count > limit) {
		spf_finish(st, SPF_RESULT_PERMERROR, "more than %u %s", limit,
		    what);
		return false;
	}
	return true;
}

/* spf_void - one more void lookup (NXDOMAIN or no answer). */
static bool
spf_void(struct spf_eval *st)
{
	return spf_within_limit(st, &st->voids, SPF_VOID_LIMIT, "void lookups");
}

/* spf_frame_done - the top frame's check_host() returned r. */
static void
spf_frame_done(struct spf_eval *st, enum spf_result r)
{
	struct spf_frame *f = &st->frames[st->depth - 1];

	if (r == SPF_RESULT_NONE && (f->redirected || st->depth > 1)) {
		/* 5.2, 6.1: an include / redirect target without a record */
		spf_finish(st, SPF_RESULT_PERMERROR, "no SPF record at %s%s",
		    f->domain, f->redirected ? " (redirect=)" : " (include:)");
		return;
	}
	if (r == SPF_RESULT_TEMPERROR || r == SPF_RESULT_PERMERROR) {
		spf_finish(st, r, NULL);
		return;
	}
	if (st->depth == 1) {
		if (r == SPF_RESULT_FAIL && f->has_exp) {
			st->result = r;
			st->phase = SPF_PHASE_EXP;
			st->exp_state = SPF_EXP_NAME;
			return;
		}
		spf_finish(st, r, NULL);
		return;
	}
	/* 5.2: an include matches on pass only. */
	st->depth--;
	f = &st->frames[st->depth - 1];
	st->phase = SPF_PHASE_TERMS;
	if (r == SPF_RESULT_PASS)
		spf_match(st, f->include_qualifier, f->include_off,
		    f->include_len);
}

/* spf_expand_name - a domain-spec expanded into a query name; -1: the
 * name cannot be asked (too long, bad label...). */
static int
spf_expand_name(struct spf_eval *st, const char *spec, size_t len,
    char *out, size_t size)
{
	char buf[SPF_EXPAND_MAX];
	bool ends, uses_p;

	if (spf_macro_walk(st, spec, len, false, buf, sizeof(buf), &ends,
	    &uses_p) < 0)
		return -1;
	return spf_name_finish(buf, strlen(buf), out, size);
}

/* spf_record_answer - the TXT records of the top frame's domain (4.4,
 * 4.5): exactly one "v=spf1" record, checked whole. */
static void
spf_record_answer(struct spf_eval *st, enum dns_status status,
    const struct dns_answer *a)
{
	struct spf_frame *f = &st->frames[st->depth - 1];
	const struct dns_record *found = NULL;
	char why[SPF_PROBLEM_MAX - 40];

	if (status == DNS_TEMPFAIL || status == DNS_PERMFAIL) {
		spf_finish(st, SPF_RESULT_TEMPERROR, "DNS failure on the TXT "
		    "records of %s", f->domain);
		return;
	}
	for (size_t i = 0; status == DNS_OK && i < a->count; i++) {
		const struct dns_record *r = &a->records[i];

		if (r->type != DNS_TYPE_TXT || r->u.txt.text == NULL ||
		    r->u.txt.len < 6 || strncasecmp(r->u.txt.text, "v=spf1", 6)
		    != 0 || (r->u.txt.len > 6 && r->u.txt.text[6] != ' '))
			continue;
		if (found != NULL) {
			spf_finish(st, SPF_RESULT_PERMERROR, "more than one SPF "
			    "record at %s", f->domain);
			return;
		}
		found = r;
	}
	if (found == NULL) {
		spf_frame_done(st, SPF_RESULT_NONE);
		return;
	}
	if (found->u.txt.len >= sizeof(f->record)) {
		spf_finish(st, SPF_RESULT_PERMERROR, "SPF record of %s too long",
		    f->domain);
		return;
	}
	if (!spf_printable(found->u.txt.text, found->u.txt.len)) {
		spf_finish(st, SPF_RESULT_PERMERROR, "SPF record of %s is not "
		    "printable ASCII", f->domain);
		return;
	}
	memcpy(f->record, found->u.txt.text, found->u.txt.len);
	f->record[found->u.txt.len] = '\0';
	f->record_len = found->u.txt.len;
	if (spf_record_check(f, why, sizeof(why)) < 0) {
		spf_finish(st, SPF_RESULT_PERMERROR, "%s: %s", f->domain, why);
		return;
	}
	f->pos = 6;
	st->phase = SPF_PHASE_TERMS;
}

/* spf_count_lookup - one more term causing DNS lookups. */
static bool
spf_count_lookup(struct spf_eval *st)
{
	return spf_within_limit(st, &st->lookups, SPF_LOOKUP_LIMIT,
	    "DNS lookups");
}

/* spf_redirect - the end of a record with redirect= (6.1). */
static void
spf_redirect(struct spf_eval *st)
{
	struct spf_frame *f = &st->frames[st->depth - 1];
	char target[DNS_NAME_MAX];
	const char *spec = f->record + f->redirect_off;

	if (spf_uses_p(spec, f->redirect_len, false) && !spf_ptrs_ready(st))
		return;
	if (!spf_count_lookup(st))
		return;
	if (spf_expand_name(st, spec, f->redirect_len, target,
	    sizeof(target)) < 0) {
		spf_finish(st, SPF_RESULT_PERMERROR, "redirect= target of %s is "
		    "not a domain name", f->domain);
		return;
	}
	str_copy(f->domain, target, sizeof(f->domain));
	f->redirected = true;
	f->has_redirect = f->has_exp = false;
	f->record_len = 0;
	st->mechanism[0] = '\0';
	st->phase = SPF_PHASE_RECORD;
}

/* spf_mx_next - ask for the next MX name's addresses, or no match. */
static void
spf_mx_next(struct spf_eval *st)
{
	if (st->mech.host_next < st->mech.host_count) {
		spf_ask(st, SPF_WAIT_MX_ADDR,
		    st->mech.hosts[st->mech.host_next++], spf_addr_type(st));
		return;
	}
	st->phase = SPF_PHASE_TERMS;
}

/* spf_mx_answer - 5.4: at most SPF_MX_LIMIT names (more: permerror). */
static void
spf_mx_answer(struct spf_eval *st, enum dns_status status,
    const struct dns_answer *a)
{
	if (status == DNS_TEMPFAIL || status == DNS_PERMFAIL) {
		spf_finish(st, SPF_RESULT_TEMPERROR, "DNS failure on MX of %s",
		    st->query_name);
		return;
	}
	if (status != DNS_OK) {
		(void)spf_void(st);
		return;
	}
	if (spf_count_type(a, DNS_TYPE_MX) > SPF_MX_LIMIT) {
		spf_finish(st, SPF_RESULT_PERMERROR, "more than %d MX names at "
		    "%s", SPF_MX_LIMIT, st->query_name);
		return;
	}
	st->mech.host_count = st->mech.host_next = 0;
	for (size_t i = 0; i < a->count; i++) {
		const char *host = a->records[i].u.mx.host;
		char *slot = st->mech.hosts[st->mech.host_count];

		if (a->records[i].type != DNS_TYPE_MX)
			continue;
		/* a null MX (RFC 7505, ".") names no host */
		if (spf_name_finish(host, strnlen(host, DNS_NAME_MAX - 1), slot,
		    DNS_NAME_MAX) == 0)
			st->mech.host_count++;
	}
	spf_mx_next(st);
}

/* spf_lookup_term - a term that causes DNS lookups (include, a, mx, ptr,
 * exists): counted, its target expanded, its first query asked. */
static void
spf_lookup_term(struct spf_eval *st, struct spf_frame *f,
    const struct spf_term *t, size_t off)
{
	char target[DNS_NAME_MAX];

	if (((t->spec_len > 0 && spf_uses_p(t->spec, t->spec_len, false)) ||
	    t->mech == SPF_MECH_PTR) && !spf_ptrs_ready(st))
		return;         /* the same term again once the names are in */
	if (!spf_count_lookup(st))
		return;
	f->pos = off + t->len;
	if (t->spec_len == 0)
		str_copy(target, f->domain, sizeof(target));
	else if (spf_expand_name(st, t->spec, t->spec_len, target,
	    sizeof(target)) < 0) {
		if (t->mech == SPF_MECH_INCLUDE)
			spf_finish(st, SPF_RESULT_PERMERROR, "include: target of "
			    "%s is not a domain name", f->domain);
		return;         /* 4.3 / 5: a name that cannot exist: no match */
	}
	st->mech.qualifier = t->qualifier;
	st->mech.cidr4 = t->cidr4;
	st->mech.cidr6 = t->cidr6;
	st->mech.term_off = off;
	st->mech.term_len = t->len;
	switch (t->mech) {
	case SPF_MECH_INCLUDE:
		if (st->depth >= SPF_DEPTH_MAX) {
			spf_finish(st, SPF_RESULT_PERMERROR, "include: too deep");
			return;
		}
		f->include_qualifier = t->qualifier;
		f->include_off = off;
		f->include_len = t->len;
		struct spf_frame *child = &st->frames[st->depth++];
		memset(child, 0, offsetof(struct spf_frame, record));
		str_copy(child->domain, target, sizeof(child->domain));
		child->record_len = 0;
		child->redirected = false;
		child->has_redirect = child->has_exp = false;
		st->phase = SPF_PHASE_RECORD;
		return;
	case SPF_MECH_A:
		spf_ask(st, SPF_WAIT_ADDR, target, spf_addr_type(st));
		return;
	case SPF_MECH_MX:
		spf_ask(st, SPF_WAIT_MX, target, DNS_TYPE_MX);
		return;
	case SPF_MECH_EXISTS:
		spf_ask(st, SPF_WAIT_EXISTS, target, DNS_TYPE_A);
		return;
	case SPF_MECH_PTR:
		if (st->ptr_void && !spf_void(st))
			return;
		for (size_t i = 0; i < st->ptr_count; i++)
			if (st->ptr_valid[i] &&
			    spf_name_within(st->ptr_names[i], target)) {
				spf_match(st, t->qualifier, off, t->len);
				return;
			}
		return;
	default:
		return;
	}
}

/* spf_terms_next - evaluate the top frame's next term (4.6.2). */
static void
spf_terms_next(struct spf_eval *st)
{
	struct spf_frame *f = &st->frames[st->depth - 1];
	struct spf_term t;
	size_t off = f->pos;

	if (!spf_term_at(f, &off, &t)) {
		if (off < f->record_len) {      /* cannot happen: checked */
			spf_finish(st, SPF_RESULT_PERMERROR, "syntax error");
			return;
		}
		if (f->has_redirect) {
			spf_redirect(st);
			return;
		}
		/* 4.7: no match, no redirect: neutral */
		if (st->depth == 1)
			str_copy(st->mechanism, "default",
			    sizeof(st->mechanism));
		spf_frame_done(st, SPF_RESULT_NEUTRAL);
		return;
	}
	f->pos = off;
	if (t.is_modifier) {
		f->pos = off + t.len;
		return;
	}
	switch (t.mech) {
	case SPF_MECH_ALL:
		f->pos = off + t.len;
		spf_match(st, t.qualifier, off, t.len);
		return;
	case SPF_MECH_IP4:
		f->pos = off + t.len;
		if (st->v4 && spf_prefix_match(t.net, st->ip + 12, t.cidr4))
			spf_match(st, t.qualifier, off, t.len);
		return;
	case SPF_MECH_IP6:
		f->pos = off + t.len;
		if (!st->v4 && spf_prefix_match(t.net, st->ip, t.cidr6))
			spf_match(st, t.qualifier, off, t.len);
		return;
	default:
		spf_lookup_term(st, f, &t, off);
		return;
	}
}

/* spf_addr_answer - a: and an MX name's addresses, exists: any A. */
static void
spf_addr_answer(struct spf_eval *st, enum spf_wait w, enum dns_status status,
    const struct dns_answer *a)
{
	if (status == DNS_TEMPFAIL || status == DNS_PERMFAIL) {
		spf_finish(st, SPF_RESULT_TEMPERROR, "DNS failure on %s",
		    st->query_name);
		return;
	}
	if (status != DNS_OK) {
		if (w == SPF_WAIT_MX_ADDR)
			spf_mx_next(st);
		else
			(void)spf_void(st);
		return;
	}
	if (w == SPF_WAIT_EXISTS ? spf_count_type(a, DNS_TYPE_A) > 0 :
	    spf_answer_matches(st, a, st->mech.cidr4, st->mech.cidr6)) {
		spf_match(st, st->mech.qualifier, st->mech.term_off,
		    st->mech.term_len);
		return;
	}
	if (w == SPF_WAIT_MX_ADDR)
		spf_mx_next(st);
}

/* spf_exp_next - 6.2: the explanation of a fail; any problem drops it. */
static void
spf_exp_next(struct spf_eval *st)
{
	const struct spf_frame *f = &st->frames[0];
	char name[DNS_NAME_MAX];
	bool ends, uses_p;

	if (st->exp_state == SPF_EXP_NAME) {
		const char *spec = f->record + f->exp_off;

		if (spf_uses_p(spec, f->exp_len, false) && !spf_ptrs_ready(st))
			return;
		if (spf_expand_name(st, spec, f->exp_len, name,
		    sizeof(name)) < 0) {
			spf_finish(st, SPF_RESULT_FAIL, NULL);
			return;
		}
		spf_ask(st, SPF_WAIT_EXP, name, DNS_TYPE_TXT);
		return;
	}
	size_t len = strlen(st->exp_text);
	if (spf_uses_p(st->exp_text, len, true) && !spf_ptrs_ready(st))
		return;
	if (spf_macro_walk(st, st->exp_text, len, true, st->explanation,
	    sizeof(st->explanation), &ends, &uses_p) == 0)
		/* printable by construction; checked anyway, the text goes
		 * into an SMTP reply */
		st->has_explanation = spf_printable(st->explanation,
		    strlen(st->explanation));
	spf_finish(st, SPF_RESULT_FAIL, NULL);
}

/* spf_exp_answer - exactly one TXT record of printable ASCII, or none. */
static void
spf_exp_answer(struct spf_eval *st, enum dns_status status,
    const struct dns_answer *a)
{
	const struct dns_record *r = NULL;

	if (status == DNS_OK && a->count == 1 &&
	    a->records[0].type == DNS_TYPE_TXT)
		r = &a->records[0];
	if (r == NULL || r->u.txt.text == NULL ||
	    r->u.txt.len >= sizeof(st->exp_text) ||
	    !spf_printable(r->u.txt.text, r->u.txt.len)) {
		spf_finish(st, SPF_RESULT_FAIL, NULL);
		return;
	}
	memcpy(st->exp_text, r->u.txt.text, r->u.txt.len);
	st->exp_text[r->u.txt.len] = '\0';
	st->exp_state = SPF_EXP_TEXT;
}

/* ==== the public machine ==== */

/* spf_set_ip - the client's bytes and its %{i}, %{c} and PTR name. */
static void
spf_set_ip(struct spf_eval *st, const struct addr_ip *ip)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };
	static const char hex[] = "0123456789abcdef";
	const uint8_t *b = st->ip;
	size_t n = 0;

	memcpy(st->ip, ip->bytes, 16);
	st->v4 = ip->is_v4 || memcmp(ip->bytes, mapped, 12) == 0;
	if (st->v4) {
		snprintf(st->ip_macro, sizeof(st->ip_macro), "%u.%u.%u.%u",
		    b[12], b[13], b[14], b[15]);
		str_copy(st->ip_text, st->ip_macro, sizeof(st->ip_text));
		snprintf(st->ptr_name, sizeof(st->ptr_name),
		    "%u.%u.%u.%u.in-addr.arpa", b[15], b[14], b[13], b[12]);
		return;
	}
	for (size_t i = 0; i < 16; i++) {
		st->ip_macro[n++] = hex[b[i] >> 4];
		st->ip_macro[n++] = '.';
		st->ip_macro[n++] = hex[b[i] & 15];
		st->ip_macro[n++] = i < 15 ? '.' : '\0';
	}
	addr_ip_format(ip, st->ip_text, sizeof(st->ip_text));
	n = 0;
	for (size_t i = 16; i-- > 0;) {
		st->ptr_name[n++] = hex[b[i] & 15];
		st->ptr_name[n++] = '.';
		st->ptr_name[n++] = hex[b[i] >> 4];
		st->ptr_name[n++] = '.';
	}
	memcpy(st->ptr_name + n, "ip6.arpa", sizeof("ip6.arpa"));
}

/* spf_set_identity - 4.1, 4.3: the sender as checked and its domain;
 * false when the identity is malformed (result none). */
static bool
spf_set_identity(struct spf_eval *st, const struct spf_input *in)
{
	const char *sender = in->sender ? in->sender : "";
	const char *at, *domain;
	size_t local_len, dlen;

	if (sender[0] == '\0' || in->identity == SPF_IDENTITY_HELO) {
		st->identity = SPF_IDENTITY_HELO;
		domain = st->helo;
		local_len = 0;
		sender = "";
	} else {
		st->identity = SPF_IDENTITY_MAILFROM;
		at = strrchr(sender, '@');
		domain = at ? at + 1 : sender;
		local_len = at ? (size_t)(at - sender) : 0;
	}
	dlen = strlen(domain);
	if (dlen > 0 && domain[dlen - 1] == '.')
		dlen--;
	if (local_len == 0) {
		sender = "postmaster";
		local_len = strlen(sender);
	}
	if (local_len + 1 + dlen + 1 > sizeof(st->sender) || dlen > SPF_HOST_MAX) {
		str_copy(st->problem, "identity too long", sizeof(st->problem));
		return false;
	}
	memcpy(st->sender, sender, local_len);
	st->sender[local_len] = '@';
	memcpy(st->sender + local_len + 1, domain, dlen);
	st->sender[local_len + 1 + dlen] = '\0';
	st->local_len = local_len;
	st->sender_domain = st->sender + local_len + 1;
	if (!spf_identity_domain_ok(st->sender_domain)) {
		str_copy(st->problem, "the identity is not a domain name",
		    sizeof(st->problem));
		return false;
	}
	return true;
}

/* spf_eval_new - an evaluation of input. */
struct spf_eval *
spf_eval_new(const struct spf_input *in)
{
	struct spf_eval *st = xcalloc(1, sizeof(*st));

	st->result = SPF_RESULT_NONE;
	spf_set_ip(st, &in->ip);
	str_copy(st->helo, in->helo ? in->helo : "", sizeof(st->helo));
	str_copy(st->receiver, in->receiver && in->receiver[0] ? in->receiver :
	    "unknown", sizeof(st->receiver));
	snprintf(st->now, sizeof(st->now), "%llu", (unsigned long long)in->now);
	if (!spf_set_identity(st, in)) {
		if (st->sender_domain == NULL)
			st->sender_domain = st->sender;
		st->phase = SPF_PHASE_DONE;
		return st;
	}
	st->depth = 1;
	str_copy(st->frames[0].domain, st->sender_domain,
	    sizeof(st->frames[0].domain));
	st->phase = SPF_PHASE_RECORD;
	return st;
}

/* spf_eval_free - release st. */
void
spf_eval_free(struct spf_eval *st)
{
	free(st);
}

/* spf_eval_step - run until a query is needed or the result is known. */
enum spf_status
spf_eval_step(struct spf_eval *st, struct spf_query *q)
{
	while (st->phase != SPF_PHASE_DONE) {
		if (st->wait != SPF_WAIT_NONE) {
			q->name = st->query_name;
			q->type = st->query_type;
			return SPF_NEED_DNS;
		}
		switch (st->phase) {
		case SPF_PHASE_RECORD:
			spf_ask(st, SPF_WAIT_RECORD,
			    st->frames[st->depth - 1].domain, DNS_TYPE_TXT);
			break;
		case SPF_PHASE_TERMS:
			spf_terms_next(st);
			break;
		case SPF_PHASE_EXP:
			spf_exp_next(st);
			break;
		case SPF_PHASE_DONE:
			break;
		}
	}
	return SPF_DONE;
}

/* spf_eval_answer - feed the answer to the outstanding query. */
void
spf_eval_answer(struct spf_eval *st, const struct dns_answer *a)
{
	enum spf_wait w = st->wait;
	enum dns_status status;

	if (w == SPF_WAIT_NONE || st->phase == SPF_PHASE_DONE || a == NULL)
		return;
	st->wait = SPF_WAIT_NONE;
	status = a->status;
	if (a->qtype != st->query_type || (status == DNS_OK &&
	    (a->records == NULL && a->count > 0)))
		status = DNS_TEMPFAIL;
	if (status == DNS_OK && spf_count_type(a, st->query_type) == 0)
		status = DNS_NODATA;
	switch (w) {
	case SPF_WAIT_RECORD:
		spf_record_answer(st, status, a);
		break;
	case SPF_WAIT_ADDR:
	case SPF_WAIT_MX_ADDR:
	case SPF_WAIT_EXISTS:
		spf_addr_answer(st, w, status, a);
		break;
	case SPF_WAIT_MX:
		spf_mx_answer(st, status, a);
		break;
	case SPF_WAIT_PTR:
		spf_ptr_answer(st, status, a);
		break;
	case SPF_WAIT_PTR_ADDR:
		spf_ptr_addr_answer(st, status, a);
		break;
	case SPF_WAIT_EXP:
		spf_exp_answer(st, status, a);
		break;
	case SPF_WAIT_NONE:
		break;
	}
}

/* spf_eval_upcoming - the address lookups queued behind the outstanding
 * one (MX names after host_next, PTR names after ptr_next). */
bool
spf_eval_upcoming(const struct spf_eval *st, size_t i, struct spf_query *q)
{
	if (st->phase == SPF_PHASE_DONE)
		return false;
	if (st->wait == SPF_WAIT_MX_ADDR) {
		if (st->mech.host_next + i >= st->mech.host_count)
			return false;
		q->name = st->mech.hosts[st->mech.host_next + i];
		q->type = spf_addr_type(st);
		return true;
	}
	if (st->wait == SPF_WAIT_PTR_ADDR) {
		for (size_t k = st->ptr_next + 1; k < st->ptr_count; k++) {
			if (st->ptr_names[k][0] == '\0')
				continue;
			if (i-- == 0) {
				q->name = st->ptr_names[k];
				q->type = spf_addr_type(st);
				return true;
			}
		}
	}
	return false;
}

enum spf_result
spf_eval_result(const struct spf_eval *st)
{
	return st->phase == SPF_PHASE_DONE ? st->result : SPF_RESULT_NONE;
}

const char *
spf_eval_explanation(const struct spf_eval *st)
{
	return st->phase == SPF_PHASE_DONE && st->result == SPF_RESULT_FAIL &&
	    st->has_explanation ? st->explanation : NULL;
}

const char *
spf_eval_problem(const struct spf_eval *st)
{
	return st->problem;
}

const char *
spf_eval_mechanism(const struct spf_eval *st)
{
	return st->mechanism;
}

enum spf_identity
spf_eval_identity(const struct spf_eval *st)
{
	return st->identity;
}

const char *
spf_eval_domain(const struct spf_eval *st)
{
	return st->sender_domain != NULL ? st->sender_domain : "";
}

const char *
spf_eval_sender(const struct spf_eval *st)
{
	return st->sender;
}

unsigned
spf_eval_lookups(const struct spf_eval *st)
{
	return st->queries;
}
