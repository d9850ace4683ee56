/*
 * auth.c - the users file (auth.users_file) and SMTP AUTH password
 * verification with crypt(3); the contract is in auth.h.
 *
 * Called by policyd/main.c at start, by policyd/plugin_host.c for each
 * AUTH request arriving on the private socket, and (auth_job_run only) by
 * the hashing threads of policyd/auth_pool.c.  Runs as the policyd user;
 * everything but auth_job_run runs on the worker's loop thread.  Trusted: the users file (the administrator's), still
 * parsed defensively, every bad line reported with its number.
 * Untrusted: the user name, authorization identity and base64 password of
 * each request (the client's, relayed by smtpd).
 *
 * Cost: a load checks each new entry with one crypt(3) call (the only
 * reliable test that libxcrypt accepts a hash, plus a length check that
 * catches a truncated one); entries unchanged since the previous load are
 * not checked again, so editing one line of a big file is cheap.  A
 * verification is exactly one crypt(3) call, whatever the outcome.
 *
 * The second half of the file is the AUTH decision the plugin host hands
 * over whole (auth_decide*, declared in host_internal.h): what is answered
 * before any hash (no users table, auth.max_attempts_per_minute, the
 * built-in plugins' gates such as a lockout), the hash, and the on_auth
 * hooks with its outcome under one counter transaction.
 */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "auth.h"
#include "base64.h"
#include "counter.h"
#include "error.h"
#include "host_internal.h"
#include "log.h"
#include "wire.h"

#define AUTH_FILE_MAX (16u << 20)     /* a users file larger is refused */
#define AUTH_LINE_MAX 4096
#define AUTH_B64_MAX (WIRE_AUTH_PASSWORD_B64_MAX - 1)  /* without the NUL */
#define AUTH_CHECK_MS 1000            /* file identity checked this often */
#define AUTH_CHECK_PHRASE "elemta users-file check"

struct auth_entry {
	char *user;
	char *hash;
	unsigned line;
};

/* What identifies one version of the file. */
struct auth_file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct timespec ctime;
};

struct auth_users {
	char *path;
	struct auth_entry *entries;   /* sorted by user, unique           */
	size_t count;
	bool loaded;                  /* the last load read the file      */
	bool failing;                 /* an unreadable file was reported  */
	bool have_id;
	struct auth_file_id id;       /* of the version loaded            */
	bool checked;
	uint64_t last_check_ms;
	char dummy[CRYPT_OUTPUT_SIZE];/* failures when no entry is valid   */
	unsigned bad[AUTH_BAD_LINES_MAX];
	size_t nbad;
	uint64_t hashes;
	unsigned char pick_key[EVP_MAX_MD_SIZE]; /* SHA-256 of the file:
	                              * keys auth_pick_entry              */
	struct crypt_data *cd;        /* crypt's work area (~32 KB): heap */
};

/* A growing list of entries while a file is parsed. */
struct auth_vec {
	struct auth_entry *items;
	size_t count;
	size_t cap;
};

/* auth_result_name - for log lines. */
const char *
auth_result_name(enum auth_result r)
{
	switch (r) {
	case AUTH_RESULT_OK:
		return "ok";
	case AUTH_RESULT_WRONG_PASSWORD:
		return "wrong password";
	case AUTH_RESULT_UNKNOWN_USER:
		return "unknown user";
	case AUTH_RESULT_MALFORMED:
		return "malformed credentials";
	case AUTH_RESULT_AUTHZID:
		return "authorization identity differs from the user";
	case AUTH_RESULT_UNAVAILABLE:
		return "users file unavailable";
	}
	return "unknown";
}

/* auth_now_ms - monotonic milliseconds (the re-read throttle). */
static uint64_t
auth_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ==== Entries ==== */

/* auth_entries_free - free a list of entries. */
static void
auth_entries_free(struct auth_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].user);
		free(e[i].hash);
	}
	free(e);
}

/* auth_entry_cmp - by user, then by line (the first line wins). */
static int
auth_entry_cmp(const void *a, const void *b)
{
	const struct auth_entry *x = a, *y = b;
	int c = strcmp(x->user, y->user);

	if (c != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* auth_key_cmp - bsearch: a user name against an entry. */
static int
auth_key_cmp(const void *key, const void *elem)
{
	const struct auth_entry *e = elem;

	return strcmp(key, e->user);
}

/* auth_find - the entry of user in a sorted list, or NULL. */
static const struct auth_entry *
auth_find(const struct auth_entry *e, size_t n, const char *user)
{
	if (n == 0)
		return NULL;
	return bsearch(user, e, n, sizeof(*e), auth_key_cmp);
}

/* auth_bad - remember and log one skipped line. */
static void
auth_bad(struct auth_users *u, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
auth_bad(struct auth_users *u, unsigned line, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_warn("%s:%u: %s; line ignored", u->path, line, text);
	if (u->nbad < AUTH_BAD_LINES_MAX)
		u->bad[u->nbad] = line;
	u->nbad++;
}

/* auth_user_valid - 1..AUTH_USER_MAX bytes, no blank or control byte (a
 * blank there is almost always a typo in the file). */
static bool
auth_user_valid(const char *s, size_t n)
{
	if (n == 0 || n > AUTH_USER_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* auth_hash_check - NULL when crypt(3) takes hash as a complete hash of a
 * scheme it supports, else the reason.  Hashing a fixed phrase with hash
 * as the setting must work, and the result must have the same length and
 * the same parameters (everything up to the last '$'); a truncated hash
 * would otherwise load fine and never verify. */
static const char *
auth_hash_check(struct auth_users *u, const char *hash)
{
	size_t n = strlen(hash);
	const char *out, *a, *b;

	if (n >= CRYPT_OUTPUT_SIZE)
		return "hash too long";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)hash[i];

		if (c <= 0x20 || c == 0x7f || c == ':')
			return "hash contains a blank, ':' or a control character";
	}
	out = crypt_rn(AUTH_CHECK_PHRASE, hash, u->cd, (int)sizeof(*u->cd));
	if (out == NULL || out[0] == '*')
		return "hash not recognised by crypt(3) (unsupported scheme "
		    "or malformed)";
	if (strlen(out) != n)
		return "hash has the wrong length for its scheme (truncated?)";
	a = strrchr(out, '$');
	b = strrchr(hash, '$');
	if ((a == NULL) != (b == NULL) ||
	    (a != NULL && (a - out != b - hash ||
	    memcmp(out, hash, (size_t)(a - out)) != 0)))
		return "hash parameters are not in crypt(3)'s canonical form";
	return NULL;
}

/* auth_parse_line - one line (NUL-terminated, LF removed): a comment, a
 * blank, an entry appended to v, or a bad line reported.  old is the
 * previous load's table: an identical entry there needs no crypt check. */
static void
auth_parse_line(struct auth_users *u, unsigned lineno, char *line,
    const struct auth_entry *old, size_t nold, struct auth_vec *v)
{
	char esc[AUTH_USER_MAX * 4 + 8];
	const struct auth_entry *prev;
	const char *why;
	char *colon, *hash, *end;
	size_t ulen;

	while (*line == ' ' || *line == '\t')
		line++;
	end = line + strlen(line);
	while (end > line && (end[-1] == ' ' || end[-1] == '\t' ||
	    end[-1] == '\r'))
		*--end = '\0';
	if (*line == '\0' || *line == '#')
		return;
	colon = strchr(line, ':');
	if (colon == NULL) {
		auth_bad(u, lineno, "no ':' (expected user:hash)");
		return;
	}
	ulen = (size_t)(colon - line);
	if (ulen == 0) {
		auth_bad(u, lineno, "empty user name");
		return;
	}
	if (!auth_user_valid(line, ulen)) {
		auth_bad(u, lineno, "user name '%s' is longer than %d bytes or "
		    "contains a blank or control character",
		    log_escape(esc, sizeof(esc), line, ulen), AUTH_USER_MAX);
		return;
	}
	*colon = '\0';
	hash = colon + 1;
	LOG_ESC(esc, line);
	if (*hash == '\0') {
		auth_bad(u, lineno, "user '%s': empty hash", esc);
		return;
	}
	prev = auth_find(old, nold, line);
	if (prev == NULL || strcmp(prev->hash, hash) != 0) {
		why = auth_hash_check(u, hash);
		if (why != NULL) {
			auth_bad(u, lineno, "user '%s': %s", esc, why);
			return;
		}
	}
	if (crypt_checksalt(hash) == CRYPT_SALT_METHOD_LEGACY)
		log_warn("%s:%u: user '%s': weak legacy hash scheme; rehash the "
		    "password with yescrypt ($y$) or bcrypt ($2b$)", u->path,
		    lineno, esc);
	if (v->count == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 16;
		v->items = xrealloc(v->items, v->cap * sizeof(*v->items));
	}
	v->items[v->count].user = xstrdup(line);
	v->items[v->count].hash = xstrdup(hash);
	v->items[v->count].line = lineno;
	v->count++;
}

/* auth_dedupe - sort v by user; a user listed again is reported and the
 * later line dropped. */
static void
auth_dedupe(struct auth_users *u, struct auth_vec *v)
{
	size_t w = 0;
	char esc[AUTH_USER_MAX * 4 + 8];

	if (v->count == 0)
		return;
	qsort(v->items, v->count, sizeof(*v->items), auth_entry_cmp);
	for (size_t i = 0; i < v->count; i++) {
		if (w > 0 && strcmp(v->items[w - 1].user, v->items[i].user) == 0) {
			auth_bad(u, v->items[i].line, "user '%s' already defined "
			    "on line %u", LOG_ESC(esc, v->items[i].user),
			    v->items[w - 1].line);
			free(v->items[i].user);
			free(v->items[i].hash);
			continue;
		}
		v->items[w++] = v->items[i];
	}
	v->count = w;
}

/* auth_uint_cmp - qsort: line numbers. */
static int
auth_uint_cmp(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x < y ? -1 : x > y;
}

/* ==== The dummy hash ==== */

/* auth_random_phrase - a phrase nobody knows (the dummy hash must match
 * no password; its timing is what matters). */
static void
auth_random_phrase(char *buf, size_t size)
{
	unsigned char rnd[16];
	size_t n = 0;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		uint64_t t = auth_now_ms() ^ ((uint64_t)getpid() << 32);

		memcpy(rnd, &t, sizeof(t));
		memcpy(rnd + 8, &t, sizeof(t));
	}
	for (size_t i = 0; i < sizeof(rnd) && n + 3 <= size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%02x", rnd[i]);
}

/* auth_dummy_from - hash a random phrase with setting into u->dummy;
 * -1 when crypt refuses it. */
static int
auth_dummy_from(struct auth_users *u, const char *setting)
{
	char phrase[40];
	const char *out;

	auth_random_phrase(phrase, sizeof(phrase));
	out = crypt_rn(phrase, setting, u->cd, (int)sizeof(*u->cd));
	if (out == NULL || out[0] == '*' ||
	    str_copy(u->dummy, out, sizeof(u->dummy)) >= sizeof(u->dummy))
		return -1;
	return 0;
}

/* auth_dummy_default - the hash a failure is checked on when the file
 * has no valid entry (with entries, auth_pick_entry chooses one): the
 * preferred scheme of libxcrypt, sha512-crypt if that fails. */
static void
auth_dummy_default(struct auth_users *u)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];

	if (crypt_gensalt_rn(NULL, 0, NULL, 0, setting, sizeof(setting)) != NULL &&
	    auth_dummy_from(u, setting) == 0)
		return;
	if (crypt_gensalt_rn("$6$", 0, NULL, 0, setting, sizeof(setting)) != NULL &&
	    auth_dummy_from(u, setting) == 0)
		return;
	/* Never expected; a dummy crypt refuses still costs a call. */
	str_copy(u->dummy, "*", sizeof(u->dummy));
}

/* ==== Loading ==== */

/* auth_unavailable - the file cannot be used: every verification fails
 * until it can; reported once per change. */
static void
auth_unavailable(struct auth_users *u, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
auth_unavailable(struct auth_users *u, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (!u->failing)
		log_err("auth.users_file %s: %s; every AUTH fails until it can "
		    "be read", u->path, text);
	u->failing = true;
	auth_entries_free(u->entries, u->count);
	u->entries = NULL;
	u->count = 0;
	u->loaded = false;
	u->have_id = false;
	u->nbad = 0;
}

/* auth_file_id_of - the identity fields of st. */
static void
auth_file_id_of(const struct stat *st, struct auth_file_id *id)
{
	memset(id, 0, sizeof(*id));
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtime = st->st_mtim;
	id->ctime = st->st_ctim;
}

/* auth_same_file - st is the version that was loaded. */
static bool
auth_same_file(const struct auth_file_id *id, const struct stat *st)
{
	return id->dev == st->st_dev && id->ino == st->st_ino &&
	    id->size == st->st_size &&
	    id->mtime.tv_sec == st->st_mtim.tv_sec &&
	    id->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	    id->ctime.tv_sec == st->st_ctim.tv_sec &&
	    id->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* auth_read_file - the whole file into a new NUL-terminated buffer;
 * NULL (reported through auth_unavailable) on failure. */
static char *
auth_read_file(struct auth_users *u, struct stat *st, size_t *len)
{
	char *buf;
	size_t n = 0;
	int fd;

	/* O_NONBLOCK: a FIFO put there must not hang the worker. */
	fd = open(u->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		auth_unavailable(u, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, st) != 0) {
		auth_unavailable(u, "cannot stat: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st->st_mode) || st->st_size > (off_t)AUTH_FILE_MAX) {
		auth_unavailable(u, "%s", !S_ISREG(st->st_mode) ?
		    "not a regular file" : "larger than 16 MB");
		close(fd);
		return NULL;
	}
	buf = xmalloc((size_t)st->st_size + 1);
	for (;;) {
		ssize_t r;

		if (n == (size_t)st->st_size)
			break;
		r = read(fd, buf + n, (size_t)st->st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			auth_unavailable(u, "read failed: %s", strerror(errno));
			explicit_bzero(buf, n);
			free(buf);
			close(fd);
			return NULL;
		}
		if (r == 0)
			break;      /* shrank while read: the next check re-reads */
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* auth_load - read and parse the file, replacing the table. */
static void
auth_load(struct auth_users *u)
{
	struct auth_vec v = { NULL, 0, 0 };
	struct stat st;
	char *buf, *line, *nl;
	unsigned lineno = 0;
	size_t len;

	buf = auth_read_file(u, &st, &len);
	if (buf == NULL)
		return;
	if ((st.st_mode & 077) != 0)
		log_warn("auth.users_file %s: mode %04o lets group or others at "
		    "the password hashes; it should be readable by the policyd "
		    "user only (chmod 600)", u->path,
		    (unsigned)(st.st_mode & 07777));
	/* The same in every worker and across restarts (an unknown name
	 * must map to the same entry whichever worker answers), and secret
	 * as long as the file is (its hashes carry random salts). */
	if (EVP_Digest(buf, len, u->pick_key, NULL, EVP_sha256(), NULL) != 1)
		memset(u->pick_key, 0, sizeof(u->pick_key));
	u->nbad = 0;
	for (line = buf; line < buf + len; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(buf + len - line));
		if (nl == NULL)
			nl = buf + len;
		*nl = '\0';
		lineno++;
		if ((size_t)(nl - line) > AUTH_LINE_MAX) {
			auth_bad(u, lineno, "longer than %d bytes", AUTH_LINE_MAX);
			continue;
		}
		if (memchr(line, '\0', (size_t)(nl - line)) != NULL) {
			auth_bad(u, lineno, "contains a NUL byte");
			continue;
		}
		auth_parse_line(u, lineno, line, u->entries, u->count, &v);
	}
	explicit_bzero(buf, len);
	free(buf);
	auth_dedupe(u, &v);
	qsort(u->bad, u->nbad < AUTH_BAD_LINES_MAX ? u->nbad :
	    AUTH_BAD_LINES_MAX, sizeof(u->bad[0]), auth_uint_cmp);

	auth_entries_free(u->entries, u->count);
	u->entries = v.items;
	u->count = v.count;
	explicit_bzero(u->cd, sizeof(*u->cd));
	auth_file_id_of(&st, &u->id);
	u->have_id = true;
	u->loaded = true;
	if (u->failing)
		log_info("auth.users_file %s: readable again", u->path);
	u->failing = false;
	log_info("auth.users_file %s: %zu users loaded, %zu bad lines skipped",
	    u->path, u->count, u->nbad);
}

/* auth_users_refresh - re-read a changed file (see auth.h). */
void
auth_users_refresh(struct auth_users *u, bool force)
{
	uint64_t now = auth_now_ms();
	struct stat st;

	if (!force && u->checked && now - u->last_check_ms < AUTH_CHECK_MS)
		return;
	u->checked = true;
	u->last_check_ms = now;
	if (u->path[0] == '\0') {
		auth_unavailable(u, "not configured");
		return;
	}
	if (stat(u->path, &st) != 0) {
		auth_unavailable(u, "%s", strerror(errno));
		return;
	}
	if (!force && u->have_id && auth_same_file(&u->id, &st))
		return;
	auth_load(u);
}

/* auth_users_open - a table loaded from path. */
struct auth_users *
auth_users_open(const char *path)
{
	struct auth_users *u = xcalloc(1, sizeof(*u));

	u->path = xstrdup(path != NULL ? path : "");
	u->cd = xcalloc(1, sizeof(*u->cd));
	auth_dummy_default(u);
	auth_users_refresh(u, true);
	return u;
}

/* auth_users_free - everything, the work area wiped. */
void
auth_users_free(struct auth_users *u)
{
	if (u == NULL)
		return;
	auth_entries_free(u->entries, u->count);
	explicit_bzero(u->cd, sizeof(*u->cd));
	free(u->cd);
	free(u->path);
	free(u);
}

/* auth_users_count - valid entries. */
size_t
auth_users_count(const struct auth_users *u)
{
	return u->count;
}

/* auth_users_loaded - whether the file was read. */
bool
auth_users_loaded(const struct auth_users *u)
{
	return u->loaded;
}

/* auth_users_bad_lines - the lines the last load skipped. */
size_t
auth_users_bad_lines(const struct auth_users *u, const unsigned **lines)
{
	if (lines != NULL)
		*lines = u->bad;
	return u->nbad;
}

/* auth_users_hashes - crypt calls made by verifications. */
uint64_t
auth_users_hashes(const struct auth_users *u)
{
	return u->hashes;
}

/* auth_users_dummy_scheme - "$y$", "$6$", "$2b$", or "" (DES). */
const char *
auth_users_dummy_scheme(const struct auth_users *u)
{
	static char scheme[16];
	const char *end;

	scheme[0] = '\0';
	if (u->dummy[0] == '$' && (end = strchr(u->dummy + 1, '$')) != NULL &&
	    (size_t)(end - u->dummy) + 2 <= sizeof(scheme)) {
		memcpy(scheme, u->dummy, (size_t)(end - u->dummy) + 1);
		scheme[end - u->dummy + 1] = '\0';
	}
	return scheme;
}

/* ==== Verification ==== */

/* auth_equal - constant-time string equality (the lengths, a property of
 * the scheme, are not secret). */
static bool
auth_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t n = la < lb ? la : lb;
	volatile unsigned char d = (unsigned char)(la != lb);

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/* auth_pick_entry - the entry an unknown user name is hashed on: chosen
 * by a keyed hash of the name (HMAC-SHA256 keyed with the file's own
 * SHA-256), so every entry is equally likely across names and the same name
 * always costs the same scheme and cost, as a known user does.  A random
 * choice per attempt would give one unknown name a mix of costs while a
 * known name has one: repeated probes of a name would tell which exist. */
static const struct auth_entry *
auth_pick_entry(struct auth_users *u, const char *user, size_t ulen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	uint64_t x = 0;

	if (u->count == 0)
		return NULL;
	if (HMAC(EVP_sha256(), u->pick_key, SHA256_DIGEST_LENGTH,
	    (const unsigned char *)user, ulen, md, &mdlen) != NULL &&
	    mdlen >= sizeof(x))
		memcpy(&x, md, sizeof(x));
	return &u->entries[x % u->count];
}

/* auth_prepare - everything of one verification but the hash (see
 * auth.h). */
void
auth_prepare(struct auth_users *u, const char *user, const char *authzid,
    const char *password_b64, struct auth_job *job)
{
	const struct auth_entry *e = NULL;
	enum auth_result r = AUTH_RESULT_OK;
	size_t ulen;
	long n = -1;

	auth_users_refresh(u, false);
	job->match = false;
	job->pwlen = 0;
	ulen = user != NULL ? strnlen(user, AUTH_USER_MAX + 1) : 0;
	if (ulen == 0 || ulen > AUTH_USER_MAX)
		r = AUTH_RESULT_MALFORMED;
	else
		e = auth_find(u->entries, u->count, user);
	if (r == AUTH_RESULT_OK && authzid != NULL && *authzid != '\0' &&
	    strcmp(authzid, user) != 0)
		r = AUTH_RESULT_AUTHZID;
	if (r == AUTH_RESULT_OK) {
		if (password_b64 == NULL || strlen(password_b64) > AUTH_B64_MAX)
			n = -1;
		else
			n = base64_decode(password_b64, strlen(password_b64),
			    job->pw, AUTH_PASSWORD_MAX);
		/* crypt takes a C string: a NUL would cut the password. */
		if (n <= 0 || memchr(job->pw, '\0', (size_t)n) != NULL)
			r = AUTH_RESULT_MALFORMED;
	}
	if (r == AUTH_RESULT_OK && !u->loaded)
		r = AUTH_RESULT_UNAVAILABLE;
	if (r == AUTH_RESULT_OK && e == NULL)
		r = AUTH_RESULT_UNKNOWN_USER;
	if (r != AUTH_RESULT_OK)
		n = 0;
	job->pwlen = (size_t)n;
	job->pw[n] = '\0';
	job->pre = r;
	/* Always exactly one hash: a known user's own entry, whatever else
	 * is wrong with the request, else the entry the name maps to, so the
	 * reply's timing tells nothing. */
	if (e == NULL)
		e = auth_pick_entry(u, user != NULL ? user : "", ulen);
	str_copy(job->setting, e != NULL ? e->hash : u->dummy,
	    sizeof(job->setting));
	u->hashes++;
}

/* auth_job_run - the hash and the constant-time comparison; cd is the
 * calling thread's work area.  The password and cd are wiped. */
void
auth_job_run(struct auth_job *job, struct crypt_data *cd)
{
	const char *out;

	out = crypt_rn((const char *)job->pw, job->setting, cd,
	    (int)sizeof(*cd));
	job->match = out != NULL && out[0] != '*' &&
	    auth_equal(out, job->setting);
	explicit_bzero(job->pw, sizeof(job->pw));
	explicit_bzero(cd, sizeof(*cd));
}

/* auth_job_result - the outcome of a run job. */
enum auth_result
auth_job_result(const struct auth_job *job)
{
	if (job->pre != AUTH_RESULT_OK)
		return job->pre;
	return job->match ? AUTH_RESULT_OK : AUTH_RESULT_WRONG_PASSWORD;
}

/* auth_job_wipe - forget a job's password (a job dropped unrun). */
void
auth_job_wipe(struct auth_job *job)
{
	explicit_bzero(job->pw, sizeof(job->pw));
}

/* auth_verify - one verification, one crypt(3) call, on this thread (see
 * auth.h). */
enum auth_result
auth_verify(struct auth_users *u, const char *user, const char *authzid,
    const char *password_b64)
{
	struct auth_job job;

	auth_prepare(u, user, authzid, password_b64, &job);
	auth_job_run(&job, u->cd);
	return auth_job_result(&job);
}

/* ==== The AUTH decision (called by the plugin host) ==== */

#define AUTH_ATTEMPT_PERIOD_MS 60000u   /* auth.max_attempts_per_minute */
#define AUTH_METRIC_OK "elemta_auth_credentials_total{result=\"ok\"}"
#define AUTH_METRIC_BAD "elemta_auth_credentials_total{result=\"bad\"}"
#define AUTH_METRIC_RATE "elemta_auth_refused_total{reason=\"rate\"}"

/* auth_tempfail - the host's 454 4.7.0 for this AUTH. */
static void
auth_tempfail(struct plugin_decision *d, const char *text)
{
	host_result_tempfail(&d->result, 454, "4.7.0", text);
	d->accepted = false;
	d->plugin[0] = '\0';
}

/* auth_answered - count and log a decision made before any hash. */
static void
auth_answered(struct plugin_host *h, const struct elemta_ctx *ctx,
    struct plugin_decision *d)
{
	d->accepted = false;
	host_count_decision(h, d);
	host_log_decision(ctx, d);
}

/* auth_gate_rate - auth.max_attempts_per_minute for the client key: 0
 * within it, -1 with d answered when over it or the table failed. */
static int
auth_gate_rate(struct plugin_host *h, struct elemta_ctx *ctx,
    struct plugin_decision *d)
{
	struct counter_rate_result r;
	char key[COUNTER_KEY_MAX + 1];
	struct error err;

	if (h->auth_max_attempts == 0)
		return 0;
	if (counter_host_key(key, sizeof(key), COUNTER_HOST_AUTH_ATTEMPTS,
	    ctx->client_key) != 0 ||
	    counter_rate_hit(h->cs, key, h->auth_max_attempts,
	    AUTH_ATTEMPT_PERIOD_MS, &r, &err) != 0) {
		auth_tempfail(d, "Temporary authentication failure, try again "
		    "later");
		return -1;
	}
	if (r.allowed)
		return 0;
	if (counter_metric_add(h->cs, AUTH_METRIC_RATE, 1, &err) != 0)
		log_debug("AUTH metric: %s", err.text);
	auth_tempfail(d, "Too many authentication attempts, slow down");
	return -1;
}

/* auth_gate - everything answered before the hash, in one counter
 * transaction: the attempt rate, then each built-in plugin's gate (a
 * lockout).  0 to go on (*delay_ms: the longest delay a gate asked for,
 * capped), -1 with d answered. */
static int
auth_gate(struct plugin_host *h, struct elemta_ctx *ctx,
    struct plugin_decision *d, uint32_t *delay_ms)
{
	struct elemta_result res;
	struct error err;
	bool refused;

	*delay_ms = 0;
	if (h->cs == NULL)
		return 0;       /* the hooks tempfail without a table */
	counter_decision_begin(h->cs);
	h->in_decision = true;
	refused = auth_gate_rate(h, ctx, d) != 0;
	for (size_t i = 0; i < h->count && !refused; i++) {
		struct host_plugin *p = &h->plugins[i];
		enum elemta_action act;
		uint32_t delay = 0;

		if (p->auth_gate == NULL)
			continue;
		memset(&res, 0, sizeof(res));
		ctx->plugin = p;
		act = p->auth_gate(p->state, ctx, &res, &delay);
		ctx->plugin = NULL;
		if (act == ELEMTA_CONTINUE) {
			if (delay > *delay_ms)
				*delay_ms = delay;
			continue;
		}
		host_result_clean(&res, act);
		d->result = res;
		str_copy(d->plugin, p->name, sizeof(d->plugin));
		refused = true;
	}
	h->in_decision = false;
	/* Kept even when refused: the attempt was made. */
	if (counter_decision_end(h->cs, true, &err) != 0) {
		host_log_commit_failure(h, ctx, &err);
		if (!refused)
			auth_tempfail(d, "Temporary authentication failure");
		refused = true;
	}
	if (*delay_ms > h->auth_delay_max_ms)
		*delay_ms = h->auth_delay_max_ms;
	return refused ? -1 : 0;
}

/* auth_decide_begin - see host_internal.h.  The credentials are relayed
 * by smtpd in two Elemta extensions besides sasl_method and
 * sasl_username:
 *   elemta_auth_password  base64 of the password bytes exactly as the
 *                         client sent them (any byte survives the line
 *                         protocol); never logged, hidden from plugins by
 *                         host_ctx_attr, wiped by the worker afterwards
 *   elemta_auth_authzid   PLAIN's authorization identity when not empty;
 *                         it must equal the user (no proxy authorization)
 */
int
auth_decide_begin(struct plugin_host *h, struct elemta_ctx *ctx,
    struct plugin_decision *d, struct auth_job *job)
{
	uint32_t delay;

	if (h->auth == NULL) {
		/* The hooks may only see an attempt whose credentials
		 * policyd verified; without a users table there is nothing
		 * to decide. */
		log_warn("AUTH request but auth.users_file is not set");
		auth_tempfail(d, "Temporary authentication failure");
		auth_answered(h, ctx, d);
		return 0;
	}
	if (auth_gate(h, ctx, d, &delay) != 0) {
		auth_answered(h, ctx, d);
		return 0;
	}
	auth_prepare(h->auth, wire_request_get(ctx->req, "sasl_username"),
	    wire_request_get(ctx->req, WIRE_AUTH_AUTHZID),
	    wire_request_get(ctx->req, WIRE_AUTH_PASSWORD), job);
	str_copy(job->client, ctx->client_key, sizeof(job->client));
	job->delay_ms = delay;
	return 1;
}

/* auth_outcome - the AUTH reply when no hook refused: the credentials
 * decide.  DISCARD and QUARANTINE mean nothing before a message exists;
 * they count as continue here. */
static void
auth_outcome(bool ok, struct plugin_decision *d)
{
	if (d->result.action != ELEMTA_CONTINUE)
		log_info("AUTH: plugin '%s' answered %s; an AUTH has no message, "
		    "treated as continue", d->plugin,
		    d->result.action == ELEMTA_DISCARD ? "DISCARD" :
		    "QUARANTINE");
	memset(&d->result, 0, sizeof(d->result));
	d->plugin[0] = '\0';
	if (ok) {
		d->result.action = ELEMTA_CONTINUE;
	} else {
		d->result.action = ELEMTA_REJECT;
		d->result.smtp_code = 535;
		str_copy(d->result.enhanced, "5.7.8", sizeof(d->result.enhanced));
		str_copy(d->result.message, "Authentication credentials invalid",
		    sizeof(d->result.message));
	}
	wire_result_defaults(&d->result);
}

/* auth_log_outcome - one line per verified attempt, never the
 * password. */
static void
auth_log_outcome(const struct elemta_ctx *ctx, enum auth_result r)
{
	char sid[128], user[AUTH_USER_MAX * 4 + 8], method[64], ip[96];

	log_info("sid=%s AUTH credentials %s%s%s: method=%s user=<%s> "
	    "client=[%s]", LOG_ESC(sid, ctx->session),
	    r == AUTH_RESULT_OK ? "ok" : "bad (",
	    r == AUTH_RESULT_OK ? "" : auth_result_name(r),
	    r == AUTH_RESULT_OK ? "" : ")",
	    LOG_ESC(method, wire_request_get(ctx->req, "sasl_method")),
	    LOG_ESC(user, wire_request_get(ctx->req, "sasl_username")),
	    log_escape(ip, sizeof(ip), ctx->client_ip, strlen(ctx->client_ip)));
}

/* auth_decide_finish - see host_internal.h: the outcome logged, then the
 * hooks under one counter transaction.  job NULL: the caller verified
 * the credentials itself (rq->auth_succeeded 0 or 1). */
void
auth_decide_finish(struct plugin_host *h, struct elemta_ctx *ctx,
    struct auth_job *job, struct plugin_decision *d)
{
	struct plugin_request vrq = *ctx->rq;
	struct error err;
	bool refused;

	if (job != NULL) {
		enum auth_result r = auth_job_result(job);

		auth_log_outcome(ctx, r);
		vrq.auth_succeeded = r == AUTH_RESULT_OK;
	}
	ctx->rq = &vrq;
	if (h->cs != NULL) {
		counter_decision_begin(h->cs);
		h->in_decision = true;
		/* This write comes first on purpose: it takes the table's
		 * writer lock for the whole decision, so a hook's failed-auth
		 * count-then-record is one atomic step across every worker
		 * (no burst of parallel guesses slips past a limit). */
		if (counter_metric_add(h->cs, vrq.auth_succeeded ?
		    AUTH_METRIC_OK : AUTH_METRIC_BAD, 1, &err) != 0)
			log_warn("AUTH metric: %s", err.text);
	}
	host_run_chain(h, ctx, d);
	refused = d->result.action == ELEMTA_REJECT ||
	    d->result.action == ELEMTA_TEMPFAIL;
	if (!refused)
		auth_outcome(vrq.auth_succeeded == 1, d);
	d->accepted = d->result.action == ELEMTA_CONTINUE;
	if (h->cs != NULL) {
		h->in_decision = false;
		/* Rate hits are withdrawn only when a hook refused: wrong
		 * credentials are the outcome of an attempt the hooks let
		 * through, and a plugin counting failures with
		 * elemta_rate_check must see them kept. */
		if (counter_decision_end(h->cs, !refused, &err) != 0) {
			host_log_commit_failure(h, ctx, &err);
			/* Even a 535: a failure that was not counted must not
			 * be answered as one, or a broken table would allow
			 * endless guessing. */
			auth_tempfail(d, "Temporary authentication failure");
		}
	}
	host_count_decision(h, d);
	if (d->result.action != ELEMTA_CONTINUE)
		host_log_decision(ctx, d);
	ctx->rq = NULL;
}

/* auth_decide - the whole AUTH decision, hashing on this thread (tests,
 * elemtactl test-plugin, and a worker without its pool). */
void
auth_decide(struct plugin_host *h, struct elemta_ctx *ctx,
    struct plugin_decision *d)
{
	struct auth_job job;

	if (ctx->rq->auth_succeeded >= 0) {
		auth_decide_finish(h, ctx, NULL, d);
		return;
	}
	if (auth_decide_begin(h, ctx, d, &job) == 0)
		return;
	auth_job_run(&job, h->auth->cd);
	auth_decide_finish(h, ctx, &job, d);
}
