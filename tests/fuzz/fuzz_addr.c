/*
 * fuzz_addr.c - libFuzzer target for common/addr.c: IP and CIDR text
 * (client addresses from smtpd and Postfix requests, blocklists from the
 * config), domain lists and the domain part of mail addresses.
 *
 * Built and run by mk/fuzz.mk / scripts/fuzz.  The input is split at LF
 * into lines; each line goes through every parser.  Promises checked:
 *  - a parsed IP formats to canonical text that parses back to the same
 *    bytes and formats identically again (RFC 5952 for IPv6, dotted quad
 *    for IPv4 and IPv4-mapped);
 *  - a parsed CIDR is masked, contains its own network, and its text form
 *    parses back to the same network and prefix; a CIDR list returns the
 *    longest matching prefix;
 *  - addr_ip_key gives the address for IPv4 and "net/prefix" for IPv6,
 *    the same for every address of that network;
 *  - a domain list entry matches the domain it names (any case, with a
 *    trailing dot; lists compare canonical forms, common/domain.h) and
 *    ".suffix" entries only strict subdomains;
 *  - addr_mail_domain points just after an '@' of the address, with no
 *    unquoted '@' after it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "domain.h"
#include "error.h"
#include "log.h"

#include "fuzz.h"

#define ADDR_LINE_MAX 512

static struct addr_cidr_list addr_list;      /* grows over one input */
static struct addr_domain_list addr_domains;

/* addr_check_ip - the parse / format round trip of one address. */
static void
addr_check_ip(const char *line)
{
	struct addr_ip ip, again, other;
	char text[ADDR_TEXT_MAX], text2[ADDR_TEXT_MAX], key[ADDR_TEXT_MAX + 8],
	    key2[ADDR_TEXT_MAX + 8];

	if (addr_ip_parse(line, &ip) < 0)
		return;
	addr_ip_format(&ip, text, sizeof(text));
	FUZZ_CHECK(addr_ip_parse(text, &again) == 0, "'%s' formats to '%s', "
	    "which does not parse", line, text);
	FUZZ_CHECK(memcmp(ip.bytes, again.bytes, 16) == 0 &&
	    ip.is_v4 == again.is_v4, "'%s' -> '%s' -> other bytes", line, text);
	addr_ip_format(&again, text2, sizeof(text2));
	FUZZ_CHECK(strcmp(text, text2) == 0, "format not stable: %s / %s",
	    text, text2);
	FUZZ_CHECK(ip.is_v4 == (strchr(text, ':') == NULL), "'%s' is_v4 %d "
	    "formats to '%s'", line, ip.is_v4, text);

	/* Keys: an address of the same /64 keys the same. */
	addr_ip_key(&ip, 64, key, sizeof(key));
	if (ip.is_v4) {
		FUZZ_CHECK(strcmp(key, text) == 0, "IPv4 key %s != %s", key,
		    text);
	} else {
		size_t n = strlen(key);

		FUZZ_CHECK(n > 3 && strcmp(key + n - 3, "/64") == 0,
		    "IPv6 key '%s'", key);
		other = ip;
		other.bytes[15] ^= 0x5a;
		other.bytes[8] ^= 0x01;
		addr_ip_key(&other, 64, key2, sizeof(key2));
		FUZZ_CHECK(strcmp(key, key2) == 0, "same /64, keys %s and %s",
		    key, key2);
		addr_ip_key(&ip, 128, key2, sizeof(key2));
		addr_ip_key(&ip, 200, key2, sizeof(key2));
		addr_ip_key(&ip, 0, key2, sizeof(key2));
		FUZZ_CHECK(strcmp(key2, "::/0") == 0, "key /0 '%s'", key2);
	}
	/* A short buffer truncates, never overflows. */
	addr_ip_format(&ip, text2, 5);
	FUZZ_CHECK(strlen(text2) <= 4, "short buffer");
}

/* addr_check_cidr - parse, mask, contain, text round trip, list match. */
static void
addr_check_cidr(const char *line)
{
	struct addr_cidr c, again;
	struct error err;
	struct addr_ip probe;
	char text[ADDR_TEXT_MAX + 8], host[ADDR_TEXT_MAX];
	long best;

	if (addr_cidr_parse(line, &c, &err) < 0) {
		FUZZ_CHECK(err.text[0] != '\0', "CIDR error without text");
		FUZZ_CHECK(addr_cidr_list_add(&addr_list, line, 0, &err) < 0,
		    "list accepts what the parser refuses");
		return;
	}
	FUZZ_CHECK(c.prefix <= 128, "prefix %u", c.prefix);
	FUZZ_CHECK(!c.net.is_v4 || c.prefix >= 96, "IPv4 prefix %u", c.prefix);
	for (unsigned bit = c.prefix; bit < 128; bit++)
		FUZZ_CHECK((c.net.bytes[bit / 8] & (0x80u >> (bit % 8))) == 0,
		    "'%s': bit %u set past /%u", line, bit, c.prefix);
	FUZZ_CHECK(addr_cidr_contains(&c, &c.net), "'%s' does not contain "
	    "its network", line);

	addr_ip_format(&c.net, host, sizeof(host));
	snprintf(text, sizeof(text), "%s/%u", host,
	    c.net.is_v4 ? c.prefix - 96 : c.prefix);
	FUZZ_CHECK(addr_cidr_parse(text, &again, &err) == 0, "'%s' -> '%s' "
	    "does not parse: %s", line, text, err.text);
	FUZZ_CHECK(again.prefix == c.prefix && memcmp(again.net.bytes,
	    c.net.bytes, 16) == 0, "'%s' -> '%s' -> another network", line,
	    text);

	/* Longest prefix wins: the network's own address matches an entry
	 * at least as specific as this one. */
	if (addr_list.count < 64) {
		FUZZ_CHECK(addr_cidr_list_add(&addr_list, line,
		    (int32_t)c.prefix, &err) == 0, "list refuses '%s'", line);
		probe = c.net;
		best = addr_cidr_list_match(&addr_list, &probe);
		FUZZ_CHECK(best >= 0 && (size_t)best < addr_list.count &&
		    addr_list.items[best].prefix >= c.prefix &&
		    addr_cidr_contains(&addr_list.items[best], &probe),
		    "longest match for '%s' is %ld", line, best);
		for (size_t i = 0; i < addr_list.count; i++)
			FUZZ_CHECK(!addr_cidr_contains(&addr_list.items[i],
			    &probe) || addr_list.items[i].prefix <=
			    addr_list.items[best].prefix, "entry %zu is longer "
			    "than the match", i);
	}
}

/* addr_ends_in_unicode_dot - line ends in U+3002, U+FF0E or U+FF61. */
static bool
addr_ends_in_unicode_dot(const char *line, size_t len)
{
	const char *t = line + len - 3;

	return len >= 3 && (memcmp(t, "\xe3\x80\x82", 3) == 0 ||
	    memcmp(t, "\xef\xbc\x8e", 3) == 0 ||
	    memcmp(t, "\xef\xbd\xa1", 3) == 0);
}

/* addr_check_domain - a valid list entry matches what it names. */
static void
addr_check_domain(const char *line)
{
	char buf[ADDR_LINE_MAX + 8];
	struct addr_domain_list one = { NULL, 0 };
	struct error err;
	size_t len = strlen(line);

	if (addr_domain_list_add(&one, line, &err) < 0) {
		FUZZ_CHECK(err.text[0] != '\0', "domain error without text");
		FUZZ_CHECK(one.count == 0, "refused but added");
		return;
	}
	FUZZ_CHECK(one.count == 1, "count %zu", one.count);
	if (line[0] == '.') {
		/* ".example.com": "x.example.com" yes (when that is still a
		 * domain: at most DOMAIN_MAX octets in its canonical form),
		 * "example.com" no. */
		snprintf(buf, sizeof(buf), "x%s", line);
		if (strlen(one.items[0]) + 1 <= DOMAIN_MAX)
			FUZZ_CHECK(addr_domain_list_match(&one, buf), "'%s' "
			    "does not match '%s'", line, buf);
		else
			FUZZ_CHECK(!addr_domain_list_match(&one, buf), "'%s' "
			    "matches '%s', longer than a domain", line, buf);
		if (len > 1 && line[1] != '.')
			FUZZ_CHECK(!addr_domain_list_match(&one, line + 1),
			    "'%s' matches its own parent '%s'", line, line + 1);
	} else {
		FUZZ_CHECK(addr_domain_list_match(&one, line), "'%s' does not "
		    "match itself", line);
		for (size_t i = 0; i < len && i < sizeof(buf) - 2; i++)
			buf[i] = (char)(i % 2 ? line[i] ^ ((line[i] >= 'a' &&
			    line[i] <= 'z') || (line[i] >= 'A' && line[i] <=
			    'Z') ? 0x20 : 0) : line[i]);
		buf[len < sizeof(buf) - 2 ? len : sizeof(buf) - 2] = '\0';
		FUZZ_CHECK(addr_domain_list_match(&one, buf), "'%s' does not "
		    "match '%s' (case)", line, buf);
		/* (An entry ending in a UTS-46 full stop already has its
		 * root dot: common/domain.h.) */
		if (len > 0 && line[len - 1] != '.' && len + 1 < sizeof(buf) &&
		    !addr_ends_in_unicode_dot(line, len)) {
			snprintf(buf, sizeof(buf), "%s.", line);
			FUZZ_CHECK(addr_domain_list_match(&one, buf), "'%s' "
			    "does not match '%s' (trailing dot)", line, buf);
		}
		snprintf(buf, sizeof(buf), "x%s", line);
		FUZZ_CHECK(!addr_domain_list_match(&one, buf), "'%s' matches "
		    "'%s'", line, buf);
	}
	FUZZ_CHECK(!addr_domain_list_match(&one, NULL) &&
	    !addr_domain_list_match(&one, "") &&
	    !addr_domain_list_match(&one, "."), "empty domain matches");
	addr_domain_list_free(&one);
	if (addr_domains.count < 64)
		(void)addr_domain_list_add(&addr_domains, line, &err);
	(void)addr_domain_list_match(&addr_domains, line);
}

/* addr_check_mail - addr_mail_domain's pointer is right after an '@'. */
static void
addr_check_mail(const char *line)
{
	const char *d = addr_mail_domain(line);
	bool quoted = false;

	if (d == NULL)
		return;
	FUZZ_CHECK(d > line && d <= line + strlen(line) && d[-1] == '@' &&
	    *d != '\0', "domain of '%s' at offset %td", line, d - line);
	/* The '@' before it is the first one outside quotes (the domain may
	 * be a literal holding another '@'). */
	for (const char *p = line; p < d - 1; p++) {
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else
			FUZZ_CHECK(*p != '@' || quoted, "'%s': an unquoted '@' "
			    "before the domain's", line);
	}
	FUZZ_CHECK(!quoted, "'%s': the '@' before the domain is quoted", line);
}

/* LLVMFuzzerInitialize - quiet logs. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz_addr", true, (enum log_level)0);
	return 0;
}

/* LLVMFuzzerTestOneInput - every line through every parser. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[ADDR_LINE_MAX + 1];
	size_t off = 0;

	while (off < size) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t n = nl ? (size_t)(nl - (data + off)) : size - off;
		size_t keep = n < ADDR_LINE_MAX ? n : ADDR_LINE_MAX;

		memcpy(line, data + off, keep);
		line[keep] = '\0';
		off += n + (nl != NULL);
		addr_check_ip(line);
		addr_check_cidr(line);
		addr_check_domain(line);
		addr_check_mail(line);
	}
	addr_cidr_list_free(&addr_list);
	addr_domain_list_free(&addr_domains);
	return 0;
}
