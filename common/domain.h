/*
 * domain.h - the one canonical form of a mail domain.
 *
 * A domain reaches Elemta spelt in many ways that name the same host:
 * upper case, U-labels ("bücher.example"), A-labels ("xn--bcher-kva.example"),
 * and the dots UTS-46 treats as label separators (U+3002 ideographic full
 * stop, U+FF0E fullwidth and U+FF61 halfwidth full stop).  Every list
 * match, counter key and relay decision compares the canonical form
 * instead: UTS-46 mapping (non-transitional), then A-labels, lower case,
 * no trailing root dot.  A-labels are what DNS and every SMTP server
 * understand, so the canonical form is also a deliverable one.
 *
 * Called by smtpd's address parser (once per MAIL/RCPT address, so
 * policyd and every rule see the canonical domain) and by common/addr.c's
 * domain lists (list entries, and the domains of requests from a real
 * Postfix, which arrive as the client spelt them).
 */
#ifndef ELEMTA_DOMAIN_H
#define ELEMTA_DOMAIN_H

#include <stddef.h>

#include "error.h"

#define DOMAIN_MAX 253          /* RFC 1035, without the root dot */
#define DOMAIN_LABEL_MAX 63
#define DOMAIN_INPUT_MAX 1024   /* longer input is refused unread */

/* domain_canonical - the canonical form of the domain in[0..len) (UTF-8)
 * into out (size bytes, DOMAIN_MAX + 1 is always enough), NUL-terminated.
 * An address literal ("[192.0.2.1]") is copied unchanged.  Returns 0, or
 * -1 with err saying why when the domain has no canonical form: an empty
 * label, a character UTS-46 disallows (controls, separators, bidi
 * controls...), a malformed A-label, a label that starts or ends with a
 * hyphen, a label over 63 octets or a result over 253.  ASCII labels
 * that are not A-labels are only lower-cased: IDNA2008's hyphen rules do
 * not apply to them (r3---sn-x.example is a real host name), and '_'
 * stays allowed ("_dmarc.example"). */
int domain_canonical(const char *in, size_t len, char *out, size_t size,
    struct error *err);

#endif
