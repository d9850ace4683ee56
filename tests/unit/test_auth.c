/*
 * test_auth.c - unit tests for policyd's AUTH verification (policyd/auth.c)
 * and its place in the plugin host (plugin_host.c): one test per promise
 * of auth.h and of plugin_host_set_auth.
 *
 * Promises tested: the users file (comments, blanks, CRLF; every kind of
 * bad line skipped with its line number while the other users work; a
 * missing file fails every AUTH and is picked up when it appears; an
 * edited file is re-read, at most once per second unless forced);
 * verification against yescrypt, sha512-crypt and bcrypt hashes generated
 * here with crypt_gensalt_rn/crypt_rn, any password byte but NUL; exactly
 * one hash per verification whatever the outcome, on a dummy of the first
 * entry's scheme for unknown users; the size limits;
 * the authorization identity; in the host: the outcome reaches on_auth
 * but the password does not, right credentials continue and wrong ones
 * get 535 5.7.8, a refusing hook wins, no users table gives 454, the
 * Postfix listener is not concerned; and the failed-auth limit of the
 * built-in policy plugin held exactly across two processes with their
 * own store handles hammering at once, then refusing the right password
 * in a third.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <crypt.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "counter.h"
#include "log.h"
#include "../../policyd/auth.h"
#include "base64.h"
#include "../../policyd/plugin_host.h"

/* ==== Helpers ==== */

static char tmpdir[256];
static char users_path[320];

/* make_tmpdir - a fresh scratch directory per test. */
static void
make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/elemta-test-auth-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(users_path, sizeof(users_path), "%s/users", tmpdir);
}

/* rm_tmpdir - remove the scratch directory. */
static void
rm_tmpdir(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	assert_int_equal(system(cmd), 0);
}

/* hash_cost - crypt(3) hash of password with a fresh salt of scheme
 * prefix ("$y$", "$6$", "$2b$") and cost (0: the scheme's default).
 * Eight results stay valid at once (several in one printf). */
static const char *
hash_cost(const char *prefix, unsigned long cost, const char *password)
{
	static struct crypt_data cd;
	static char ring[8][CRYPT_OUTPUT_SIZE];
	static unsigned next;
	char *out = ring[next++ % 8];
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *h;

	assert_non_null(crypt_gensalt_rn(prefix, cost, NULL, 0, setting,
	    sizeof(setting)));
	h = crypt_rn(password, setting, &cd, sizeof(cd));
	assert_non_null(h);
	assert_true(h[0] != '*');
	str_copy(out, h, CRYPT_OUTPUT_SIZE);
	return out;
}

/* hash_of - hash_cost at the default cost; bcrypt at its cheapest. */
static const char *
hash_of(const char *prefix, const char *password)
{
	return hash_cost(prefix, strcmp(prefix, "$2b$") == 0 ? 4 : 0, password);
}

/* write_users - the users file, mode 0600. */
static void
write_users(const char *text)
{
	char tmp[400];
	FILE *f;

	/* A new inode each time, as editors and scripts usually do. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", users_path);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(tmp, 0600), 0);
	assert_int_equal(rename(tmp, users_path), 0);
}

/* b64 - base64 of len bytes (the wire attribute smtpd sends). */
static const char *
b64(const void *data, size_t len)
{
	static char out[4096];

	assert_true(base64_encode(data, len, out, sizeof(out)) >= 0);
	return out;
}

#define B64(s) b64((s), strlen(s))

/* ==== The users file ==== */

/* test_users_file_lines - good lines load, every bad one is skipped and
 * reported by its line number, the others still work. */
static void
test_users_file_lines(void **state)
{
	char text[4096], longuser[300];
	const unsigned *bad;
	struct auth_users *u;
	size_t nbad;

	make_tmpdir();
	memset(longuser, 'u', 256);
	longuser[256] = '\0';
	snprintf(text, sizeof(text),
	    "# users\n"                                   /* 1 */
	    "\n"                                          /* 2 */
	    "alice:%s\n", hash_of("$y$", "alice-pw"));    /* 3 */
	snprintf(text + strlen(text), sizeof(text) - strlen(text),
	    "bob:%s\r\n", hash_of("$6$", "bob-pw"));      /* 4 (CRLF) */
	snprintf(text + strlen(text), sizeof(text) - strlen(text),
	    "   # indented comment\n"                     /* 5 */
	    "no-colon-here\n"                             /* 6 */
	    ":%s\n"                                       /* 7 empty user */
	    "erin:\n"                                     /* 8 empty hash */
	    "frank:*\n"                                   /* 9 locked/unknown */
	    "gina:$6$tooshort\n"                          /* 10 truncated */
	    "hank:$9$unknown$scheme\n"                    /* 11 no such scheme */
	    "%s:%s\n"                                     /* 12 user too long */
	    "alice:%s\n"                                  /* 13 duplicate */
	    "carol:%s\n"                                  /* 14 */
	    "ivan:plaintext\n",                           /* 15 not a hash */
	    hash_of("$6$", "x"), longuser, hash_of("$6$", "y"),
	    hash_of("$6$", "other"), hash_of("$2b$", "carol-pw"));
	write_users(text);
	u = auth_users_open(users_path);
	assert_true(auth_users_loaded(u));
	assert_int_equal(auth_users_count(u), 3);
	nbad = auth_users_bad_lines(u, &bad);
	assert_int_equal(nbad, 9);
	{
		static const unsigned want[] = { 6, 7, 8, 9, 10, 11, 12, 13, 15 };

		for (size_t i = 0; i < 9; i++)
			assert_int_equal(bad[i], want[i]);
	}
	assert_int_equal(auth_verify(u, "alice", NULL, B64("alice-pw")),
	    AUTH_RESULT_OK);
	assert_int_equal(auth_verify(u, "bob", NULL, B64("bob-pw")),
	    AUTH_RESULT_OK);
	assert_int_equal(auth_verify(u, "carol", NULL, B64("carol-pw")),
	    AUTH_RESULT_OK);
	/* The first line wins over the duplicate's password. */
	assert_int_equal(auth_verify(u, "alice", NULL, B64("other")),
	    AUTH_RESULT_WRONG_PASSWORD);
	assert_int_equal(auth_verify(u, "frank", NULL, B64("x")),
	    AUTH_RESULT_UNKNOWN_USER);
	assert_int_equal(auth_verify(u, "ivan", NULL, B64("plaintext")),
	    AUTH_RESULT_UNKNOWN_USER);
	auth_users_free(u);
	rm_tmpdir();
}

/* test_missing_file - every AUTH fails (with a hash) until the file
 * appears; then it is picked up. */
static void
test_missing_file(void **state)
{
	struct auth_users *u;
	char text[512];

	make_tmpdir();
	u = auth_users_open(users_path);
	assert_false(auth_users_loaded(u));
	assert_int_equal(auth_users_count(u), 0);
	assert_int_equal(auth_verify(u, "alice", NULL, B64("pw")),
	    AUTH_RESULT_UNAVAILABLE);
	assert_int_equal(auth_users_hashes(u), 1);
	snprintf(text, sizeof(text), "alice:%s\n", hash_of("$6$", "pw"));
	write_users(text);
	auth_users_refresh(u, true);
	assert_true(auth_users_loaded(u));
	assert_int_equal(auth_verify(u, "alice", NULL, B64("pw")),
	    AUTH_RESULT_OK);
	/* Removed again: fail closed. */
	assert_int_equal(unlink(users_path), 0);
	auth_users_refresh(u, true);
	assert_false(auth_users_loaded(u));
	assert_int_equal(auth_verify(u, "alice", NULL, B64("pw")),
	    AUTH_RESULT_UNAVAILABLE);
	auth_users_free(u);
	/* Not configured at all: the same. */
	u = auth_users_open("");
	assert_int_equal(auth_verify(u, "alice", NULL, B64("pw")),
	    AUTH_RESULT_UNAVAILABLE);
	auth_users_free(u);
	rm_tmpdir();
}

/* test_reload_on_change - an edit is seen without a restart, but the
 * file is looked at no more than once a second. */
static void
test_reload_on_change(void **state)
{
	struct auth_users *u;
	char text[1024];

	make_tmpdir();
	snprintf(text, sizeof(text), "alice:%s\n", hash_of("$6$", "one"));
	write_users(text);
	u = auth_users_open(users_path);
	assert_int_equal(auth_verify(u, "alice", NULL, B64("one")),
	    AUTH_RESULT_OK);
	snprintf(text, sizeof(text), "alice:%s\nbob:%s\n",
	    hash_of("$6$", "two"), hash_of("$6$", "bobpw"));
	write_users(text);
	/* Within the second: still the old table. */
	assert_int_equal(auth_verify(u, "alice", NULL, B64("one")),
	    AUTH_RESULT_OK);
	assert_int_equal(auth_users_count(u), 1);
	usleep(1100 * 1000);
	assert_int_equal(auth_verify(u, "alice", NULL, B64("two")),
	    AUTH_RESULT_OK);
	assert_int_equal(auth_verify(u, "alice", NULL, B64("one")),
	    AUTH_RESULT_WRONG_PASSWORD);
	assert_int_equal(auth_verify(u, "bob", NULL, B64("bobpw")),
	    AUTH_RESULT_OK);
	assert_int_equal(auth_users_count(u), 2);
	auth_users_free(u);
	rm_tmpdir();
}

/* ==== Verification ==== */

/* test_verify_schemes - yescrypt, sha512-crypt and bcrypt; any byte but
 * NUL is a password byte. */
static void
test_verify_schemes(void **state)
{
	static const unsigned char binary[] = { 0xff, 0x01, 'p', 0x80, '=', '\n' };
	char bin[sizeof(binary) + 1];
	struct auth_users *u;
	char text[2048];

	make_tmpdir();
	memcpy(bin, binary, sizeof(binary));
	bin[sizeof(binary)] = '\0';
	snprintf(text, sizeof(text), "yes:%s\n", hash_of("$y$", "pw-y"));
	snprintf(text + strlen(text), sizeof(text) - strlen(text), "sha:%s\n",
	    hash_of("$6$", "pw-6"));
	snprintf(text + strlen(text), sizeof(text) - strlen(text), "bc:%s\n",
	    hash_of("$2b$", "pw-2b"));
	snprintf(text + strlen(text), sizeof(text) - strlen(text), "bin:%s\n",
	    hash_of("$6$", bin));
	write_users(text);
	u = auth_users_open(users_path);
	assert_int_equal(auth_users_count(u), 4);
	assert_int_equal(auth_verify(u, "yes", NULL, B64("pw-y")), AUTH_RESULT_OK);
	assert_int_equal(auth_verify(u, "yes", NULL, B64("pw-Y")),
	    AUTH_RESULT_WRONG_PASSWORD);
	assert_int_equal(auth_verify(u, "sha", NULL, B64("pw-6")), AUTH_RESULT_OK);
	assert_int_equal(auth_verify(u, "sha", NULL, B64("pw-")),
	    AUTH_RESULT_WRONG_PASSWORD);
	assert_int_equal(auth_verify(u, "bc", NULL, B64("pw-2b")), AUTH_RESULT_OK);
	assert_int_equal(auth_verify(u, "bc", NULL, B64("pw-2c")),
	    AUTH_RESULT_WRONG_PASSWORD);
	assert_int_equal(auth_verify(u, "bin", NULL, b64(binary, sizeof(binary))),
	    AUTH_RESULT_OK);
	/* Another user's password is not this user's. */
	assert_int_equal(auth_verify(u, "sha", NULL, B64("pw-y")),
	    AUTH_RESULT_WRONG_PASSWORD);
	/* User names are case-sensitive. */
	assert_int_equal(auth_verify(u, "SHA", NULL, B64("pw-6")),
	    AUTH_RESULT_UNKNOWN_USER);
	/* The authorization identity: the user itself, or nothing. */
	assert_int_equal(auth_verify(u, "sha", "sha", B64("pw-6")), AUTH_RESULT_OK);
	assert_int_equal(auth_verify(u, "sha", "", B64("pw-6")), AUTH_RESULT_OK);
	assert_int_equal(auth_verify(u, "sha", "yes", B64("pw-6")),
	    AUTH_RESULT_AUTHZID);
	assert_int_equal(auth_users_hashes(u), 12);
	auth_users_free(u);
	rm_tmpdir();
}

/* test_every_path_hashes - an unknown user, malformed input, a wrong
 * identity: one crypt call each (on a random entry's hash: see
 * test_unknown_user_costs_like_the_file). */
static void
test_every_path_hashes(void **state)
{
	static const unsigned char nul_pw[] = { 'a', 0, 'b' };
	char text[2048], big[1100], longuser[300];
	struct auth_users *u;
	uint64_t before;

	make_tmpdir();
	memset(longuser, 'u', 256);
	longuser[256] = '\0';
	memset(big, 'p', 1025);
	big[1025] = '\0';
	snprintf(text, sizeof(text), "bc:%s\n", hash_of("$2b$", "pw"));
	snprintf(text + strlen(text), sizeof(text) - strlen(text), "yes:%s\n",
	    hash_of("$y$", "pw"));
	write_users(text);
	u = auth_users_open(users_path);

	before = auth_users_hashes(u);
	assert_int_equal(auth_verify(u, "nobody", NULL, B64("pw")),
	    AUTH_RESULT_UNKNOWN_USER);
	assert_int_equal(auth_users_hashes(u), before + 1);
	assert_int_equal(auth_verify(u, "bc", NULL, "cHc"),       /* no pad */
	    AUTH_RESULT_MALFORMED);
	assert_int_equal(auth_verify(u, "bc", NULL, "c!c="),
	    AUTH_RESULT_MALFORMED);
	assert_int_equal(auth_verify(u, "bc", NULL, "cH=w"),
	    AUTH_RESULT_MALFORMED);
	assert_int_equal(auth_verify(u, "bc", NULL, ""), AUTH_RESULT_MALFORMED);
	assert_int_equal(auth_verify(u, "bc", NULL, NULL), AUTH_RESULT_MALFORMED);
	assert_int_equal(auth_verify(u, "bc", NULL, b64(nul_pw, 3)),
	    AUTH_RESULT_MALFORMED);
	assert_int_equal(auth_verify(u, "bc", NULL, B64(big)),
	    AUTH_RESULT_MALFORMED);
	big[1024] = '\0';   /* exactly the limit: a wrong password */
	assert_int_equal(auth_verify(u, "bc", NULL, B64(big)),
	    AUTH_RESULT_WRONG_PASSWORD);
	assert_int_equal(auth_verify(u, longuser, NULL, B64("pw")),
	    AUTH_RESULT_MALFORMED);
	longuser[255] = '\0';  /* exactly the limit: just unknown */
	assert_int_equal(auth_verify(u, longuser, NULL, B64("pw")),
	    AUTH_RESULT_UNKNOWN_USER);
	assert_int_equal(auth_verify(u, "", NULL, B64("pw")),
	    AUTH_RESULT_MALFORMED);
	assert_int_equal(auth_verify(u, NULL, NULL, B64("pw")),
	    AUTH_RESULT_MALFORMED);
	assert_int_equal(auth_verify(u, "bc", "yes", B64("pw")),
	    AUTH_RESULT_AUTHZID);
	assert_int_equal(auth_users_hashes(u), before + 14);
	assert_int_equal(auth_verify(u, "bc", NULL, B64("pw")), AUTH_RESULT_OK);
	auth_users_free(u);

	/* A file without a valid entry still has a dummy. */
	write_users("# nobody here\n");
	u = auth_users_open(users_path);
	assert_true(auth_users_loaded(u));
	assert_true(auth_users_dummy_scheme(u)[0] == '$');
	assert_int_equal(auth_verify(u, "x", NULL, B64("pw")),
	    AUTH_RESULT_UNKNOWN_USER);
	assert_int_equal(auth_users_hashes(u), 1);
	auth_users_free(u);
	rm_tmpdir();
}

/* cpu_ms - this thread's CPU time: a hash is pure CPU, so its cost
 * measured this way does not depend on how busy the machine is. */
static double
cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* cost_of - CPU milliseconds of one verification. */
static double
cost_of(struct auth_users *u, const char *user)
{
	double t0 = cpu_ms();

	(void)auth_verify(u, user, NULL, B64("not-the-password"));
	return cpu_ms() - t0;
}

/* dbl_cmp - qsort: doubles ascending. */
static int
dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#define COST_SAMPLES 160

/* test_unknown_user_costs_like_the_file - issue 22 finding 3: with a file
 * mixing a cheap scheme (three sha512-crypt users, 1000 rounds, listed
 * first) and an expensive one (one bcrypt user, cost 8), the cost of an
 * unknown user follows the file's mix: about a quarter of the attempts
 * cost what the bcrypt user costs, the rest what the sha512 users cost.
 * Before, every unknown user cost the first entry's scheme: all cheap, so
 * timing told which names exist; then a random entry per attempt, so one
 * unknown name probed repeatedly showed both costs where a known name
 * shows one.  Medians over many samples of CPU time,
 * compared by ratios with wide bounds. */
static void
test_unknown_user_costs_like_the_file(void **state)
{
	double fast[15], slow[15], unknown[COST_SAMPLES], dear[COST_SAMPLES];
	double cut, t_fast, t_slow;
	size_t ndear = 0;
	char text[2048];
	struct auth_users *u;

	make_tmpdir();
	snprintf(text, sizeof(text), "f1:%s\nf2:%s\nf3:%s\nslow:%s\n",
	    hash_cost("$6$", 1000, "a"), hash_cost("$6$", 1000, "b"),
	    hash_cost("$6$", 1000, "c"), hash_cost("$2b$", 8, "d"));
	write_users(text);
	u = auth_users_open(users_path);
	assert_int_equal(auth_users_count(u), 4);
	for (size_t i = 0; i < 15; i++) {
		fast[i] = cost_of(u, "f2");
		slow[i] = cost_of(u, "slow");
	}
	qsort(fast, 15, sizeof(fast[0]), dbl_cmp);
	qsort(slow, 15, sizeof(slow[0]), dbl_cmp);
	t_fast = fast[7];
	t_slow = slow[7];
	/* The premise: the two schemes cost clearly different amounts. */
	assert_true(t_slow > 4 * t_fast);
	cut = sqrt(t_fast * t_slow);
	for (size_t i = 0; i < COST_SAMPLES; i++) {
		char name[32];

		snprintf(name, sizeof(name), "nosuchuser%zu", i);
		unknown[i] = cost_of(u, name);
		if (unknown[i] > cut)
			dear[ndear++] = unknown[i];
	}
	/* One name probed again and again costs one scheme, as a known user
	 * does: a per-attempt random choice would mix both for it alone. */
	for (size_t i = 0; i < 3; i++) {
		char name[32];
		size_t over = 0;

		snprintf(name, sizeof(name), "nosuchuser%zu", i);
		for (size_t j = 0; j < 12; j++)
			over += cost_of(u, name) > cut;
		assert_true(over <= 1 || over >= 11);
		assert_int_equal(over >= 11, unknown[i] > cut);
	}
	/* A quarter expected (40 of 160, sd ~5.5): far from 0 and from all. */
	assert_in_range(ndear, 15, 80);
	/* The unknown users fall into the file's two costs, on either side
	 * of the cut between the known users' medians: the cheapest quarter
	 * costs what a sha512 user costs, the dearest tenth what the bcrypt
	 * user costs.  (Compared with the cut, not within a factor of the
	 * medians: a cheap hash's CPU time varies more than that under ASan
	 * on a loaded machine, which failed once in CI.) */
	qsort(dear, ndear, sizeof(dear[0]), dbl_cmp);
	qsort(unknown, COST_SAMPLES, sizeof(unknown[0]), dbl_cmp);
	assert_true(unknown[COST_SAMPLES / 4] < cut);
	assert_true(unknown[COST_SAMPLES - COST_SAMPLES / 10] > cut);
	assert_true(dear[ndear / 2] > cut && dear[ndear / 2] < t_slow * 4);
	auth_users_free(u);
	rm_tmpdir();
}

/* ==== In the plugin host ==== */

static int spy_calls;
static int spy_succeeded;
static int spy_saw_password;
static int spy_refuse;

/* spy_on_auth - records what an on_auth hook can see. */
static enum elemta_action
spy_on_auth(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	spy_calls++;
	spy_succeeded = elemta_ctx_auth_succeeded(ctx);
	spy_saw_password = elemta_ctx_attr(ctx, "elemta_auth_password") != NULL;
	if (spy_refuse)
		return elemta_result_set(res, ELEMTA_REJECT, 535, "5.7.8",
		    "Not today");
	return ELEMTA_CONTINUE;
}

static const struct elemta_plugin spy_desc = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION,
	.name = "spy",
	.version = "1",
	.on_auth = spy_on_auth,
};

/* A request built from attributes. */
struct areq {
	struct wire_attr attrs[12];
	char text[12][600];
	struct wire_request r;
	struct plugin_request p;
};

/* decide_auth - one AUTH request; preset is plugin_request.auth_succeeded
 * (-1: the host verifies). */
static void
decide_auth(struct plugin_host *h, enum plugin_listener l, const char *ip,
    const char *user, const char *password_b64, int preset,
    struct plugin_decision *d)
{
	struct areq q;
	size_t n = 0;

	memset(&q, 0, sizeof(q));
	snprintf(q.text[n++], 600, "request=smtpd_access_policy");
	snprintf(q.text[n++], 600, "protocol_state=AUTH");
	snprintf(q.text[n++], 600, "client_address=%s", ip);
	snprintf(q.text[n++], 600, "sasl_method=PLAIN");
	snprintf(q.text[n++], 600, "sasl_username=%s", user);
	if (password_b64 != NULL)
		snprintf(q.text[n++], 600, "elemta_auth_password=%s",
		    password_b64);
	for (size_t i = 0; i < n; i++) {
		char *eq = strchr(q.text[i], '=');

		*eq = '\0';
		q.attrs[i].name = q.text[i];
		q.attrs[i].value = eq + 1;
	}
	q.r.attrs = q.attrs;
	q.r.count = n;
	q.p.req = &q.r;
	q.p.listener = l;
	q.p.message_fd = -1;
	q.p.auth_succeeded = preset;
	plugin_host_decide(h, &q.p, d);
}

/* test_host_auth - the outcome reaches the hooks, the password never;
 * right continues, wrong gets 535 5.7.8, a refusing hook wins. */
static void
test_host_auth(void **state)
{
	struct plugin_host *h = plugin_host_new(NULL, 64);
	struct plugin_decision d;
	struct auth_users *u;
	struct error err;
	char text[512];

	make_tmpdir();
	snprintf(text, sizeof(text), "alice:%s\n", hash_of("$6$", "s3cret"));
	write_users(text);
	u = auth_users_open(users_path);
	assert_int_equal(plugin_host_add(h, "spy", &spy_desc, NULL, NULL, &err), 0);

	/* No users table: 454 4.7.0 and no hook. */
	spy_calls = 0;
	decide_auth(h, PLUGIN_LISTENER_ELEMTA, "192.0.2.1", "alice",
	    B64("s3cret"), -1, &d);
	assert_int_equal(d.result.action, ELEMTA_TEMPFAIL);
	assert_int_equal(d.result.smtp_code, 454);
	assert_string_equal(d.result.enhanced, "4.7.0");
	assert_int_equal(spy_calls, 0);

	plugin_host_set_auth(h, u);
	decide_auth(h, PLUGIN_LISTENER_ELEMTA, "192.0.2.1", "alice",
	    B64("s3cret"), -1, &d);
	assert_int_equal(d.phase, ELEMTA_PHASE_AUTH);
	assert_int_equal(d.result.action, ELEMTA_CONTINUE);
	assert_true(d.accepted);
	assert_int_equal(spy_calls, 1);
	assert_int_equal(spy_succeeded, 1);
	assert_int_equal(spy_saw_password, 0);

	decide_auth(h, PLUGIN_LISTENER_ELEMTA, "192.0.2.1", "alice",
	    B64("wrong"), -1, &d);
	assert_int_equal(d.result.action, ELEMTA_REJECT);
	assert_int_equal(d.result.smtp_code, 535);
	assert_string_equal(d.result.enhanced, "5.7.8");
	assert_string_equal(d.result.message, "Authentication credentials invalid");
	assert_false(d.accepted);
	assert_int_equal(spy_calls, 2);
	assert_int_equal(spy_succeeded, 0);
	assert_int_equal(spy_saw_password, 0);

	/* Malformed password attribute: a failure like any other. */
	decide_auth(h, PLUGIN_LISTENER_ELEMTA, "192.0.2.1", "alice", "%%%",
	    -1, &d);
	assert_int_equal(d.result.smtp_code, 535);
	decide_auth(h, PLUGIN_LISTENER_ELEMTA, "192.0.2.1", "alice", NULL,
	    -1, &d);
	assert_int_equal(d.result.smtp_code, 535);
	assert_int_equal(spy_succeeded, 0);

	/* A hook that refuses turns even the right password away. */
	spy_refuse = 1;
	decide_auth(h, PLUGIN_LISTENER_ELEMTA, "192.0.2.1", "alice",
	    B64("s3cret"), -1, &d);
	spy_refuse = 0;
	assert_int_equal(d.result.smtp_code, 535);
	assert_string_equal(d.result.message, "Not today");
	assert_string_equal(d.plugin, "spy");
	assert_int_equal(spy_succeeded, 1);

	/* The Postfix listener: no AUTH extension, no hook, DUNNO. */
	spy_calls = 0;
	decide_auth(h, PLUGIN_LISTENER_POSTFIX, "192.0.2.1", "alice",
	    B64("s3cret"), -1, &d);
	assert_int_equal(d.result.action, ELEMTA_CONTINUE);
	assert_int_equal(d.phase, ELEMTA_PHASE_UNKNOWN);
	assert_int_equal(spy_calls, 0);

	plugin_host_free(h);
	auth_users_free(u);
	rm_tmpdir();
}

/* ==== Failed-auth limits across processes ==== */

#define LIMIT 3
#define ATTEMPTS 12

/* open_chain - config, store and the policy plugin (limit LIMIT per
 * 10 minutes) for one process; NULL pieces on failure. */
static struct plugin_host *
open_chain(struct config **cfg, struct counter_store **cs)
{
	struct config_errors errs;
	struct plugin_host *h;
	struct error err;
	char path[400];

	snprintf(path, sizeof(path), "%s/elemta.yaml", tmpdir);
	*cfg = config_load(path, &errs);
	if (*cfg == NULL)
		return NULL;
	if (counter_store_open((*cfg)->counters.path, (*cfg)->counters.map_size,
	    false, COUNTER_SYNC_SAFE, cs, &err) != 0)
		return NULL;
	h = plugin_host_new(*cs, (*cfg)->counters.ipv6_prefix);
	if (plugin_host_load_config(h, *cfg, &err) != 0) {
		fprintf(stderr, "%s\n", err.text);
		plugin_host_free(h);
		return NULL;
	}
	return h;
}

/* close_chain - the reverse of open_chain. */
static void
close_chain(struct plugin_host *h, struct config *cfg, struct counter_store *cs)
{
	plugin_host_free(h);
	counter_store_close(cs);
	config_free(cfg);
}

/* guesser - a child process: ATTEMPTS wrong passwords from one address,
 * each reply's code written to fd.  Exit status 0 when all went. */
static int
guesser(int fd, const char *user)
{
	struct plugin_decision d;
	struct counter_store *cs;
	struct config *cfg;
	struct plugin_host *h = open_chain(&cfg, &cs);

	if (h == NULL)
		return 2;
	for (int i = 0; i < ATTEMPTS; i++) {
		int code;

		decide_auth(h, PLUGIN_LISTENER_ELEMTA, "203.0.113.9", user,
		    NULL, 0, &d);
		code = d.result.action == ELEMTA_CONTINUE ? 0 : d.result.smtp_code;
		if (write(fd, &code, sizeof(code)) != (ssize_t)sizeof(code))
			return 3;
	}
	close_chain(h, cfg, cs);
	return 0;
}

/* spawn_guesser - fork a guesser child; the caller waits for it. */
static pid_t
spawn_guesser(int fd, const char *user)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(guesser(fd, user));
	return pid;
}

/* test_limit_two_processes - two workers with their own store handles
 * guess at once: exactly LIMIT attempts get the revealing 535, all the
 * others the 454 lock; then a third process is refused the right
 * password, and the address's count survives all of them. */
static void
test_limit_two_processes(void **state)
{
	struct plugin_decision d;
	struct counter_store *cs;
	struct config *cfg;
	struct plugin_host *h;
	int p[2], code, status, n535 = 0, n454 = 0, other = 0;
	pid_t pid[2];
	char path[400];
	uint32_t count;
	struct error err;
	FILE *f;

	make_tmpdir();
	snprintf(path, sizeof(path), "%s/elemta.yaml", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "server:\n  listen:\n    - address: \"127.0.0.1:2525\"\n"
	    "counters:\n  path: counters\n  map_size: 8MB\n"
	    "plugins:\n  - name: policy\n    config:\n"
	    "      max_failed_auth: %d\n      failed_auth_window: 10m\n", LIMIT);
	fclose(f);

	/* LMDB handles never cross a fork: only the children open it. */
	assert_int_equal(pipe(p), 0);
	pid[0] = spawn_guesser(p[1], "alice");
	pid[1] = spawn_guesser(p[1], "bob");
	close(p[1]);
	while (read(p[0], &code, sizeof(code)) == (ssize_t)sizeof(code)) {
		if (code == 535)
			n535++;
		else if (code == 454)
			n454++;
		else
			other++;
	}
	close(p[0]);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(other, 0);
	assert_int_equal(n535, LIMIT);
	assert_int_equal(n454, 2 * ATTEMPTS - LIMIT);

	/* Another process (a restarted worker): the right password from
	 * that address is refused too, and carol elsewhere is fine. */
	h = open_chain(&cfg, &cs);
	assert_non_null(h);
	decide_auth(h, PLUGIN_LISTENER_ELEMTA, "203.0.113.9", "carol", NULL, 1,
	    &d);
	assert_int_equal(d.result.smtp_code, 454);
	assert_string_equal(d.result.enhanced, "4.7.0");
	assert_string_equal(d.result.message,
	    "Too many failed authentication attempts, try again later");
	decide_auth(h, PLUGIN_LISTENER_ELEMTA, "198.51.100.1", "carol", NULL, 1,
	    &d);
	assert_int_equal(d.result.action, ELEMTA_CONTINUE);
	/* The address's log holds the limit (plus one) and no success
	 * cleared it. */
	assert_int_equal(counter_event_count(cs, "policy:authfail:ip:203.0.113.9",
	    600000, &count, &err), 0);
	assert_int_equal(count, LIMIT + 1);
	close_chain(h, cfg, cs);
	rm_tmpdir();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_users_file_lines),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_reload_on_change),
		cmocka_unit_test(test_verify_schemes),
		cmocka_unit_test(test_every_path_hashes),
		cmocka_unit_test(test_unknown_user_costs_like_the_file),
		cmocka_unit_test(test_host_auth),
		cmocka_unit_test(test_limit_two_processes),
	};

	log_init("test_auth", true, LOG_LEVEL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
