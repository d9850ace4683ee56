/*
 * auth.h - elemta-policyd's SMTP AUTH credential check: the users file
 * (auth.users_file) and password verification with crypt(3).
 *
 * Called by policyd/main.c (load at start), policyd/plugin_host.c (the
 * whole AUTH decision, auth_decide*), policyd/worker.c and auth_pool.c
 * (the hash of a job, on the pool's threads) and the unit tests.  smtpd never reads the file: it relays the client's
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
 * Promises: every verification costs exactly one crypt(3) call - a
 * known user's request on that user's hash even when malformed, an
 * unknown user's on the hash of the valid entry its name maps to (a keyed
 * hash of the name under the file's own digest: each entry equally likely
 * across names, always the same one for a name, in every worker), so whatever mix of schemes and
 * costs the file holds, an unknown name costs what some known user costs,
 * attempt after attempt, and a reply's timing does not tell an unknown
 * user from a wrong password (a file without a
 * valid entry uses a dummy of libxcrypt's preferred scheme).  The
 * comparison is constant-time.  The password is decoded into the job's
 * buffer, wiped (explicit_bzero) with crypt's work area as soon as it is
 * hashed; it is never logged or stored.
 *
 * A verification is split so the hash can run on another thread
 * (policyd/auth_pool.c): auth_prepare (this table, the caller's thread)
 * copies what the hash needs into a job, auth_job_run hashes (any
 * thread, its own crypt work area, touches nothing shared), and
 * auth_job_result reads the outcome.  auth_verify does the three inline.
 *
 * The AUTH decision itself - the gates answered before any hash, the
 * hash, the on_auth hooks - is auth_decide_* (the plugin host calls
 * them; policyd/worker.c runs the hash on its pool in between).
 */
#ifndef ELEMTA_POLICYD_AUTH_H
#define ELEMTA_POLICYD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <crypt.h>

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
 * "$2b$", ...) a failure is checked on when the file has no valid entry
 * (tests). */
const char *auth_users_dummy_scheme(const struct auth_users *u);

/* One verification's hash, copied out of the table by auth_prepare. */
struct auth_job {
	enum auth_result pre;          /* decided without the hash, or OK  */
	bool match;                    /* set by auth_job_run              */
	size_t pwlen;
	unsigned char pw[AUTH_PASSWORD_MAX + 1]; /* wiped by auth_job_run  */
	char setting[CRYPT_OUTPUT_SIZE];         /* the hash to compare to */
	char client[96];               /* fair-share key (auth_pool.c)     */
	uint32_t delay_ms;             /* answer no sooner than this after
	                                * the request (a user under attack) */
};

/* auth_prepare - decode and check the request, choose the hash to
 * compare with (the user's, or the entry an unknown name maps to), copy
 * it and the password into job.  Counts one hash. */
void auth_prepare(struct auth_users *u, const char *user, const char *authzid,
    const char *password_b64, struct auth_job *job);
/* auth_job_run - hash job->pw on job->setting with the work area cd (the
 * calling thread's own), compare in constant time, wipe pw and cd. */
void auth_job_run(struct auth_job *job, struct crypt_data *cd);
/* auth_job_result - the outcome once run. */
enum auth_result auth_job_result(const struct auth_job *job);
/* auth_job_wipe - forget the password of a job that will not run. */
void auth_job_wipe(struct auth_job *job);

/* auth_verify - check user's password.  password_b64 is the base64 of the
 * password bytes exactly as the client sent them (the wire attribute
 * elemta_auth_password); authzid (NULL or "" when none) must equal user
 * when given, as proxy authorization is not supported.  Re-reads the file
 * first when it changed (at most once per second). */
enum auth_result auth_verify(struct auth_users *u, const char *user,
    const char *authzid, const char *password_b64);


#endif
