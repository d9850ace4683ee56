/*
 * version.h - Elemta's version, the one place it is written, and the
 * `--version` text every program prints.
 *
 * The Makefile reads ELEMTA_VERSION from this file for the pkg-config
 * file, so the release number is changed here and nowhere else.
 *
 * version_print takes the libraries from its caller because common/ must
 * not make a program link a library it does not use (elemta-smtpd has no
 * LMDB): each program lists the VERSION_LIB_* entries of what it links,
 * each entry asks the library at run time (the version it runs with, not
 * the one it was built against), and the caller includes the library's
 * header for the entries it names.
 */
#ifndef ELEMTA_VERSION_H
#define ELEMTA_VERSION_H

#include <stddef.h>
#include <stdio.h>

#define ELEMTA_VERSION "0.1.0"

/* One library a program runs with. */
struct version_lib {
	const char *name;       /* "OpenSSL"                                  */
	const char *version;    /* the library's own text; may start with name */
};

/* Entries for version_print's list, one per library. */
#define VERSION_LIB_LMDB { "LMDB", mdb_version(NULL, NULL, NULL) }
#define VERSION_LIB_OPENSSL { "OpenSSL", OpenSSL_version(OPENSSL_VERSION) }
#define VERSION_LIB_LIBEVENT { "libevent", event_get_version() }
#define VERSION_LIB_LIBYAML { "libyaml", yaml_get_version_string() }
#define VERSION_LIB_MICROHTTPD { "libmicrohttpd", MHD_get_version() }

/* version_print - "PROGRAM (Elemta) VERSION", the plugin ABI version
 * (MAJOR.MINOR), then one line per library in libs[0..count), to out. */
void version_print(FILE *out, const char *program,
    const struct version_lib *libs, size_t count);

#endif
