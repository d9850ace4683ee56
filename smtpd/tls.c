/*
 * tls.c - elemta-smtpd's OpenSSL server context (contract in tls.h).
 *
 * Called by server.c at start-up and per TLS connection.  Runs
 * unprivileged.  Trusted: the config and the PEM files it names (the
 * operator's); still bounded in size and checked by OpenSSL, every
 * problem reported with the setting it came from.  Nothing here reads
 * network input: handshakes run inside libevent's bufferevent_openssl.
 *
 * Choices: TLS 1.2 at least by default (RFC 8996), no compression
 * (CRIME), no renegotiation (a client-initiated renegotiation costs the
 * server a handshake each time and buys the client nothing), the
 * server's cipher order, buffers released while a connection is idle
 * (SSL_MODE_RELEASE_BUFFERS: thousands of idle sessions per worker).
 * An EOF without close_notify is an ordinary end of connection here:
 * SMTP has its own end markers ("." and QUIT), so truncation attacks do
 * not apply, and many clients just close the socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "error.h"
#include "fdpass.h"
#include "log.h"
#include "tls.h"

struct tls_server {
	SSL_CTX *ctx;
};

/* A PEM file's bytes (owned; wiped before being freed when secret). */
struct tls_pem {
	char *data;
	size_t len;
};

/* tls_openssl_reason - the oldest queued OpenSSL error as text (the
 * queue is cleared), or fallback. */
static const char *
tls_openssl_reason(char *buf, size_t size, const char *fallback)
{
	unsigned long e = ERR_get_error();

	ERR_clear_error();
	if (e == 0)
		return fallback;
	return tls_error_text(e, buf, size);
}

/* tls_error_text - see tls.h. */
char *
tls_error_text(unsigned long code, char *buf, size_t size)
{
	const char *r;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	if (code == 0)
		return buf;
	r = ERR_reason_error_string(code);
	if (r != NULL)
		str_copy(buf, r, size);
	else
		ERR_error_string_n(code, buf, size);
	return buf;
}

/* tls_read_fd - the whole file behind fd, from offset 0, into pem. */
static int
tls_read_fd(int fd, const char *what, struct tls_pem *pem, struct error *err)
{
	struct stat st;
	size_t got = 0;

	if (fstat(fd, &st) < 0)
		return error_set(err, "%s: fstat: %s", what, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return error_set(err, "%s: not a regular file", what);
	if (st.st_size <= 0)
		return error_set(err, "%s: empty file", what);
	if (st.st_size > TLS_PEM_MAX)
		return error_set(err, "%s: larger than %d bytes", what,
		    TLS_PEM_MAX);
	pem->len = (size_t)st.st_size;
	pem->data = xmalloc(pem->len + 1);
	while (got < pem->len) {
		ssize_t n = pread(fd, pem->data + got, pem->len - got,
		    (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : 0;

			explicit_bzero(pem->data, pem->len);
			free(pem->data);
			pem->data = NULL;
			return error_set(err, "%s: read: %s", what,
			    e ? strerror(e) : "file shrank while being read");
		}
		got += (size_t)n;
	}
	pem->data[pem->len] = '\0';
	return 0;
}

/* tls_read_pem - the PEM of one setting: from the inherited descriptor
 * or, without one (fd -1), from the file.  The descriptor is closed
 * either way. */
static int
tls_read_pem(int fd, const char *setting, const char *path,
    struct tls_pem *pem, struct error *err)
{
	char what[CONFIG_PATH_MAX + 64];
	int rc;

	memset(pem, 0, sizeof(*pem));
	if (fd >= 0) {
		snprintf(what, sizeof(what), "%s '%s' (inherited fd %d)",
		    setting, path, fd);
	} else {
		snprintf(what, sizeof(what), "%s '%s'", setting, path);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return error_set(err, "%s: %s", what, strerror(errno));
	}
	rc = tls_read_fd(fd, what, pem, err);
	close(fd);
	return rc;
}

/* tls_pem_free - release (and wipe) a PEM buffer. */
static void
tls_pem_free(struct tls_pem *pem)
{
	if (pem->data != NULL) {
		explicit_bzero(pem->data, pem->len);
		free(pem->data);
	}
	pem->data = NULL;
	pem->len = 0;
}

/* tls_no_passphrase - PEM password callback: an encrypted key cannot be
 * used by a daemon (there is nobody to ask), so it fails to load with a
 * clear error instead of prompting on a terminal. */
static int
tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return 0;
}

/* tls_use_chain - the certificate, then every further certificate of
 * the file as its chain. */
static int
tls_use_chain(SSL_CTX *ctx, const struct tls_pem *pem, const char *path,
    struct error *err)
{
	char reason[256];
	BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
	X509 *x;
	int n = 0;

	if (bio == NULL)
		return error_set(err, "tls.certificate: out of memory");
	x = PEM_read_bio_X509_AUX(bio, NULL, tls_no_passphrase, NULL);
	if (x == NULL || SSL_CTX_use_certificate(ctx, x) != 1) {
		X509_free(x);
		BIO_free(bio);
		return error_set(err, "tls.certificate '%s': %s", path,
		    tls_openssl_reason(reason, sizeof(reason),
		    "no certificate found"));
	}
	X509_free(x);
	while ((x = PEM_read_bio_X509(bio, NULL, tls_no_passphrase, NULL))
	    != NULL) {
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			X509_free(x);
			BIO_free(bio);
			return error_set(err, "tls.certificate '%s': chain "
			    "certificate %d: %s", path, n + 2,
			    tls_openssl_reason(reason, sizeof(reason), "refused"));
		}
		n++;
	}
	/* The loop ends on "no start line": the end of the file. */
	ERR_clear_error();
	BIO_free(bio);
	return 0;
}

/* tls_use_key - the private key, which must match the certificate. */
static int
tls_use_key(SSL_CTX *ctx, const struct tls_pem *pem, const char *path,
    struct error *err)
{
	char reason[256];
	BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
	EVP_PKEY *key;
	int ok;

	if (bio == NULL)
		return error_set(err, "tls.key: out of memory");
	key = PEM_read_bio_PrivateKey(bio, NULL, tls_no_passphrase, NULL);
	BIO_free(bio);
	if (key == NULL)
		return error_set(err, "tls.key '%s': %s (an encrypted key "
		    "cannot be used)", path, tls_openssl_reason(reason,
		    sizeof(reason), "no private key found"));
	ok = SSL_CTX_use_PrivateKey(ctx, key);
	EVP_PKEY_free(key);
	if (ok != 1)
		return error_set(err, "tls.key '%s': %s", path,
		    tls_openssl_reason(reason, sizeof(reason), "refused"));
	if (SSL_CTX_check_private_key(ctx) != 1)
		return error_set(err, "tls.key '%s' does not match "
		    "tls.certificate: %s", path, tls_openssl_reason(reason,
		    sizeof(reason), "mismatch"));
	return 0;
}

/* tls_configure - versions, ciphers and options of the context. */
static int
tls_configure(SSL_CTX *ctx, const struct config *cfg, struct error *err)
{
	static const unsigned char sid_ctx[] = "elemta-smtpd";
	char reason[256];
	int min = cfg->tls.min_version == CONFIG_TLS_1_3 ? TLS1_3_VERSION :
	    TLS1_2_VERSION;

	if (SSL_CTX_set_min_proto_version(ctx, min) != 1)
		return error_set(err, "tls.min_version: %s", tls_openssl_reason(
		    reason, sizeof(reason), "refused"));
	if (cfg->tls.ciphers[0] != '\0' &&
	    SSL_CTX_set_cipher_list(ctx, cfg->tls.ciphers) != 1)
		return error_set(err, "tls.ciphers '%s': %s", cfg->tls.ciphers,
		    tls_openssl_reason(reason, sizeof(reason),
		    "no usable cipher"));
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_dh_auto(ctx, 1);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	return 0;
}

/* tls_server_new - see tls.h.  Every path ends at `out`, which releases
 * whatever is still held (the inherited descriptors are consumed by
 * tls_read_pem, or closed there). */
struct tls_server *
tls_server_new(const struct config *cfg, struct error *err)
{
	long cert_n = -1, key_n = -1;
	int has_cert = fdpass_env_number("ELEMTA_TLS_CERT_FD", INT_MAX, &cert_n);
	int has_key = fdpass_env_number("ELEMTA_TLS_KEY_FD", INT_MAX, &key_n);
	int cert_fd = has_cert == 1 ? (int)cert_n : -1;
	int key_fd = has_key == 1 ? (int)key_n : -1;
	bool inherited = cert_fd >= 0;
	struct tls_pem cert, key;
	struct tls_server *ts = NULL;
	char reason[256];
	SSL_CTX *ctx = NULL;
	int rc;

	memset(&cert, 0, sizeof(cert));
	memset(&key, 0, sizeof(key));
	if (has_cert < 0 || has_key < 0 || has_cert != has_key) {
		error_set(err, "bad ELEMTA_TLS_CERT_FD / ELEMTA_TLS_KEY_FD "
		    "(both or neither, descriptor numbers)");
		goto out;
	}
	if (cfg->tls.certificate[0] == '\0' || cfg->tls.key[0] == '\0') {
		error_set(err, "TLS needs tls.certificate and tls.key");
		goto out;
	}
	rc = tls_read_pem(cert_fd, "tls.certificate", cfg->tls.certificate,
	    &cert, err);
	cert_fd = -1;
	if (rc < 0)
		goto out;
	rc = tls_read_pem(key_fd, "tls.key", cfg->tls.key, &key, err);
	key_fd = -1;
	if (rc < 0)
		goto out;
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		error_set(err, "SSL_CTX_new: %s", tls_openssl_reason(reason,
		    sizeof(reason), "failed"));
		goto out;
	}
	if (tls_configure(ctx, cfg, err) < 0 ||
	    tls_use_chain(ctx, &cert, cfg->tls.certificate, err) < 0 ||
	    tls_use_key(ctx, &key, cfg->tls.key, err) < 0)
		goto out;
	ts = xcalloc(1, sizeof(*ts));
	ts->ctx = ctx;
	ctx = NULL;
	log_info("TLS: certificate %s loaded (%s), minimum %s", cfg->tls.certificate,
	    inherited ? "from elemtactl" : "read directly",
	    config_enum_name("tls.min_version", (int)cfg->tls.min_version));
out:
	if (cert_fd >= 0)
		close(cert_fd);
	if (key_fd >= 0)
		close(key_fd);
	SSL_CTX_free(ctx);
	tls_pem_free(&cert);
	tls_pem_free(&key);
	return ts;
}

/* tls_server_free - the context (connections hold their own references). */
void
tls_server_free(struct tls_server *ts)
{
	if (ts == NULL)
		return;
	SSL_CTX_free(ts->ctx);
	free(ts);
}

/* tls_server_ssl - one connection's SSL object. */
SSL *
tls_server_ssl(struct tls_server *ts)
{
	SSL *ssl = SSL_new(ts->ctx);

	if (ssl == NULL)
		ERR_clear_error();
	return ssl;
}

/* tls_describe - protocol and cipher names as OpenSSL gives them. */
void
tls_describe(const SSL *ssl, struct tls_info *out)
{
	const char *v = SSL_get_version(ssl);
	const char *c = SSL_get_cipher_name(ssl);

	str_copy(out->protocol, v != NULL ? v : "unknown",
	    sizeof(out->protocol));
	str_copy(out->cipher, c != NULL ? c : "unknown", sizeof(out->cipher));
}
