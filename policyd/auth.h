/*
 * auth.h - elemta-policyd's SMTP AUTH credential check: the users file
 * (auth.users_file) and password verification with crypt(3).
 *
 * Called by policyd/main.c (load at start), policyd/plugin_host.c (one
 * verification per AUTH request, before the on_auth hooks run) and the
 * unit tests.  smtpd never reads the file: it relays the client's
 * credentials to policyd, which answers with the outcome only.
 *
 * The file: one `user:hash` per line; `#` comments and blank lines are
 * ignored; hash is any scheme libxcrypt verifies (yescrypt $y$,
 * sha512-crypt $6$, bcrypt $2b$, ...).  A bad line (no colon, empty or
 * oversized user, a hash crypt(3) does not recognise or that is
 * truncated, a user listed twice) is logged as "FILE:LINE: problem" and
 * skipped; the other users still work.  A file that cannot be read makes
 * every verification fail (logged once per change).  The file is re-read
 * when its inode, size, mtime or ctime changes, checked at most once per
 * second, so edits apply without a restart.  It should be readable by the
 * policyd user only: anything else is warned about at each load.
 *
 * Promises: every verification costs exactly one crypt(3) call - an
 * unknown user, a malformed request or a missing file are hashed against
 * a dummy hash of the same scheme and cost as the file's first valid
 * entry - so a reply's timing does not tell an unknown user from a wrong
 * password.  The comparison is constant-time.  The password is decoded
 * into a private buffer that is wiped (explicit_bzero) with crypt's work
 * area before auth_verify returns; it is never logged or stored.
 */
#ifndef ELEMTA_POLICYD_AUTH_H
#define ELEMTA_POLICYD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* The protocol's limits (common/wire.h), under this module's names. */
#define AUTH_USER_MAX WIRE_AUTH_USER_MAX
#define AUTH_PASSWORD_MAX WIRE_AUTH_PASSWORD_MAX
#define AUTH_BAD_LINES_MAX 64      /* bad line numbers remembered      */

struct auth_users;

/* The outcome of one verification.  Everything but AUTH_RESULT_OK is a
 * failure; the distinctions are for the log, never for the client. */
enum auth_result {
	AUTH_RESULT_OK = 0,
	AUTH_RESULT_WRONG_PASSWORD,
	AUTH_RESULT_UNKNOWN_USER,
	AUTH_RESULT_MALFORMED,     /* bad base64, empty/oversized user or
	                            * password, a NUL in the password     */
	AUTH_RESULT_AUTHZID,       /* authorization identity != user      */
	AUTH_RESULT_UNAVAILABLE,   /* the users file could not be read    */
};

/* auth_result_name - "ok", "wrong password", "unknown user", ... */
const char *auth_result_name(enum auth_result r);

/* auth_users_open - a table for the users file at path, loaded now
 * (problems are logged, see above).  Never NULL; free with
 * auth_users_free. */
struct auth_users *auth_users_open(const char *path);
void auth_users_free(struct auth_users *u);

/* auth_users_refresh - re-read the file if it changed; without force at
 * most once per second (auth_verify calls it). */
void auth_users_refresh(struct auth_users *u, bool force);

/* auth_users_count - the valid entries loaded; 0 when the file could not
 * be read. */
size_t auth_users_count(const struct auth_users *u);
/* auth_users_loaded - the last load read the file. */
bool auth_users_loaded(const struct auth_users *u);
/* auth_users_bad_lines - how many lines the last load skipped; *lines
 * (may be NULL) receives their numbers, ascending, at most
 * AUTH_BAD_LINES_MAX of them (owned by u, valid until the next load). */
size_t auth_users_bad_lines(const struct auth_users *u, const unsigned **lines);
/* auth_users_hashes - crypt(3) calls made by auth_verify so far (tests
 * check that every path hashes). */
uint64_t auth_users_hashes(const struct auth_users *u);
/* auth_users_dummy_scheme - the prefix of the dummy hash ("$y$", "$6$",
 * "$2b$", ...), for tests and the start-up log line. */
const char *auth_users_dummy_scheme(const struct auth_users *u);

/* auth_verify - check user's password.  password_b64 is the base64 of the
 * password bytes exactly as the client sent them (the wire attribute
 * elemta_auth_password); authzid (NULL or "" when none) must equal user
 * when given, as proxy authorization is not supported.  Re-reads the file
 * first when it changed (at most once per second). */
enum auth_result auth_verify(struct auth_users *u, const char *user,
    const char *authzid, const char *password_b64);


#endif
