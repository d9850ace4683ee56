/*
 * dns.h - the one asynchronous resolver of the tree: libunbound attached to
 * the calling process's libevent base (ub_ctx_create_event), so no lookup
 * ever blocks an event loop.
 *
 * Users: elemta-queued (MX, A/AAAA, TLSA for DANE) and elemta-policyd
 * (client names, DNSBL, SPF).  smtpd never links it (it holds no resolver,
 * as it holds no counter store).
 *
 * The contract every caller relies on:
 *   - dns_query's callback runs exactly once, always from the event loop
 *     and never from inside dns_query itself (so a caller's state machine
 *     can issue a query and then record that it is waiting), unless the
 *     query is cancelled first with dns_query_cancel, after which it never
 *     runs;
 *   - the answer passed to the callback, and everything it points to, lives
 *     only until the callback returns (copy what you keep);
 *   - a DNS failure (SERVFAIL, timeout, refused, bogus DNSSEC, the
 *     outstanding-query bound reached) is DNS_TEMPFAIL: callers turn it into
 *     4xx or a deferral, never an accept or a bounce by accident;
 *   - every name goes to the configured resolvers (dns.resolvers), also
 *     those libunbound would answer from its built-in local zones
 *     (127.in-addr.arpa, RFC 1918 reverse zones, test., invalid., ...).
 *
 * Names are in presentation form without the trailing dot ("example.com");
 * an answer's names are lower-cased.
 */
#ifndef ELEMTA_DNS_H
#define ELEMTA_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct event_base;
struct config;

#define DNS_NAME_MAX 254        /* 253 characters + NUL                */
#define DNS_TXT_MAX 4096        /* one TXT record's strings, joined    */
#define DNS_TLSA_DATA_MAX 64    /* SHA-512; full certificates refused  */
#define DNS_ANSWER_RECORDS_MAX 64
#define DNS_REVERSE_MAX 74      /* 32 nibbles * 2 + "ip6.arpa" + NUL   */

/* The record types Elemta asks for; values are the RFC 1035/3596/6698
 * type codes. */
enum dns_type {
	DNS_TYPE_A = 1,
	DNS_TYPE_PTR = 12,
	DNS_TYPE_MX = 15,
	DNS_TYPE_TXT = 16,
	DNS_TYPE_AAAA = 28,
	DNS_TYPE_TLSA = 52,
};

enum dns_status {
	DNS_OK,           /* records present (count > 0)                      */
	DNS_NODATA,       /* the name exists, no record of this type          */
	DNS_NXDOMAIN,     /* the name does not exist                          */
	DNS_TEMPFAIL,     /* SERVFAIL, timeout, bogus, too many outstanding   */
	DNS_PERMFAIL,     /* FORMERR/NOTIMP/REFUSED-as-final, a name that
	                   * cannot be a DNS name                             */
};

struct dns_mx {
	uint16_t preference;
	char host[DNS_NAME_MAX];    /* "." for a null MX (RFC 7505)      */
};

struct dns_tlsa {
	uint8_t usage, selector, matching_type;
	uint8_t data[DNS_TLSA_DATA_MAX];
	size_t data_len;
};

struct dns_record {
	enum dns_type type;
	uint32_t ttl;
	union {
		uint8_t a[4];           /* network order */
		uint8_t aaaa[16];       /* network order */
		struct dns_mx mx;
		char name[DNS_NAME_MAX];        /* PTR target              */
		struct {
			char *text;             /* the strings joined, NUL-
			                         * terminated, len excludes it */
			size_t len;
		} txt;
		struct dns_tlsa tlsa;
	} u;
};

struct dns_answer {
	enum dns_status status;
	const char *qname;              /* as asked                         */
	enum dns_type qtype;
	bool secure;                    /* DNSSEC-validated (dns.dnssec on) */
	uint32_t ttl;                   /* smallest record TTL, or the
	                                 * negative-caching TTL (SOA minimum)
	                                 * for NODATA/NXDOMAIN, 0 unknown  */
	size_t count;                   /* records of qtype (CNAMEs followed) */
	const struct dns_record *records;
	const char *why;                /* TEMPFAIL/PERMFAIL: one line      */
};

/* Settings, from the config's dns section. */
struct dns_options {
	const char *const *resolvers;   /* "192.0.2.1", "127.0.0.1@5353",
	                                 * "::1@53"; NULL or none: the
	                                 * system's /etc/resolv.conf        */
	size_t resolver_count;
	uint64_t timeout_ms;            /* per query, whole resolution      */
	bool dnssec;                    /* validate (needs trust anchor)    */
	const char *trust_anchor_file;  /* "" or NULL: none                 */
	unsigned max_outstanding;       /* per resolver; over it: TEMPFAIL  */
};

/* dns_options_config - opt from cfg's dns section (max_outstanding 0:
 * the default); opt points into cfg. */
void dns_options_config(struct dns_options *opt, const struct config *cfg);

struct dns_resolver;
struct dns_query;

typedef void (*dns_callback)(const struct dns_answer *answer, void *arg);

/* dns_resolver_new - a resolver on base; NULL with err on bad options. */
struct dns_resolver *dns_resolver_new(struct event_base *base,
    const struct dns_options *opt, struct error *err);
/* dns_resolver_free - cancels every outstanding query (no callbacks). */
void dns_resolver_free(struct dns_resolver *r);

/* dns_query - ask for name's records of type; cb(answer, arg) later, once.
 * Returns a handle for dns_query_cancel, valid until cb runs. */
struct dns_query *dns_query(struct dns_resolver *r, const char *name,
    enum dns_type type, dns_callback cb, void *arg);
/* dns_query_cancel - the callback will not run; q is gone. */
void dns_query_cancel(struct dns_query *q);

/* The resolver's counts since dns_resolver_new (metrics).  The latency
 * histogram is cumulative: latency_buckets[i] counts the answers that
 * took at most dns_stats_bucket_us[i] microseconds. */
#define DNS_STATS_BUCKETS 8
extern const uint64_t dns_stats_bucket_us[DNS_STATS_BUCKETS];
struct dns_stats {
	uint64_t queries;               /* dns_query calls                  */
	uint64_t answers;               /* callbacks run (not cancelled)    */
	uint64_t failures;              /* of them DNS_TEMPFAIL             */
	uint64_t timeouts;              /* of them dns.timeout passed       */
	uint64_t latency_us_sum;        /* over the answers                 */
	uint64_t latency_buckets[DNS_STATS_BUCKETS];
};
/* dns_resolver_stats - r's counts into out. */
void dns_resolver_stats(const struct dns_resolver *r, struct dns_stats *out);

/* dns_reverse_labels - the reversed labels of an address for PTR and DNSBL
 * names: "4.3.2.1" for 1.2.3.4, 32 nibbles for IPv6 ("b.a.9.8....").  af is
 * AF_INET or AF_INET6, addr in network order.  0, or -1 if buf is short. */
int dns_reverse_labels(int af, const void *addr, char *buf, size_t size);
/* dns_ptr_name - dns_reverse_labels + ".in-addr.arpa" / ".ip6.arpa". */
int dns_ptr_name(int af, const void *addr, char *buf, size_t size);

/* dns_name_canonical - name as dns_query asks it: lower-cased, without
 * its trailing dot, into out.  -1 when dns_query refuses it: empty, over
 * 253 octets, an empty label or one over 63, or a character outside
 * printable ASCII or one of space \ " ( ) ; (which unbound's presentation
 * form would read as syntax).  Every caller that decides what to ask
 * (policyd's plugin host, SPF's macro-expanded names) uses this rule. */
int dns_name_canonical(const char *name, char *out, size_t size);

/* dns_status_name - "ok", "nodata", "nxdomain", "tempfail", "permfail". */
const char *dns_status_name(enum dns_status s);

#endif
