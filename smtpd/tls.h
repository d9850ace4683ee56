/*
 * tls.h - elemta-smtpd's TLS server context (OpenSSL): the certificate
 * chain and key of tls.certificate / tls.key, tls.min_version and
 * tls.ciphers, and the facts of an established connection.
 *
 * Called by server.c once at start-up (tls_server_new) and for every
 * STARTTLS or smtps connection (tls_server_ssl, tls_describe); the event
 * side of TLS (libevent's bufferevent_openssl) lives in server.c.
 *
 * Where the PEM comes from: elemtactl opens tls.certificate and tls.key
 * read-only before it drops privileges (the key may be readable by root
 * only) and passes them as ELEMTA_TLS_CERT_FD / ELEMTA_TLS_KEY_FD; when
 * those variables are absent (`elemta-smtpd --bind`, tests) the files are
 * opened here.  The descriptors are read with pread from offset 0 (every
 * worker may share one open file description, and with it the offset)
 * and closed afterwards; the key's bytes are wiped from memory once
 * OpenSSL has parsed them.
 */
#ifndef ELEMTA_SMTPD_TLS_H
#define ELEMTA_SMTPD_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "config.h"
#include "error.h"

#define TLS_PEM_MAX (1024 * 1024)   /* a certificate or key file larger is refused */
#define TLS_PROTOCOL_MAX 32
#define TLS_CIPHER_MAX 96

struct tls_server;

/* The facts of an established connection, for policyd, the Received:
 * header and the envelope. */
struct tls_info {
	char protocol[TLS_PROTOCOL_MAX];   /* "TLSv1.3"                  */
	char cipher[TLS_CIPHER_MAX];       /* "TLS_AES_256_GCM_SHA384"   */
};

/* tls_server_new - the server context for cfg->tls (which must name a
 * certificate and a key).  Returns NULL with the reason in err: an
 * unreadable or invalid certificate or key, a key that does not match,
 * a tls.ciphers list OpenSSL does not accept.  Free with tls_server_free. */
struct tls_server *tls_server_new(const struct config *cfg, struct error *err);
void tls_server_free(struct tls_server *ts);

/* tls_server_ssl - a new server-side SSL object (owned by the caller,
 * normally handed to bufferevent_openssl with BEV_OPT_CLOSE_ON_FREE), or
 * NULL when OpenSSL is out of memory. */
SSL *tls_server_ssl(struct tls_server *ts);

/* tls_describe - protocol and cipher of an established connection. */
void tls_describe(const SSL *ssl, struct tls_info *out);

/* tls_error_text - OpenSSL's text for an error code ("wrong version
 * number", "http request", ...) into buf; "" for 0. */
char *tls_error_text(unsigned long code, char *buf, size_t size);

#endif
