/*
 * counter_redis.c - the shared counter table on a Redis (or Valkey)
 * server, counters.backend: redis, so that several MX hosts hold one limit.
 *
 * Reached through counter.c's dispatch (counter_backend.h), which has
 * already checked every argument.  Each elemta-policyd worker opens its
 * own store after fork (one connection, hiredis, blocking with bounded
 * timeouts); elemta-stat and elemtactl status open it read-only.
 * Untrusted input: the server's replies (bounded, checked, escaped before
 * they are logged).
 *
 * ==== Key layout (P = counters.redis.key_prefix, "elemta:") ====
 *   P "rate:" KEY     sorted set: one member per accepted event, score =
 *                     the server's time in ms, member "MS-ID-SEQ" (ID:
 *                     random per worker process, SEQ: its counter - so two
 *                     events of one millisecond on two hosts never merge),
 *                     plus one meta member "#LIMIT:PERIOD:HIGH" at score 0
 *                     (LIMIT 0 = failure-event log; HIGH = the newest
 *                     timestamp ever recorded).  PEXPIRE PERIOD on every
 *                     record: the key vanishes when its newest event leaves
 *                     the window (which is when LMDB's sweep would drop it).
 *   P "rep:" KEY      hash {score, updated_ms}; PEXPIRE 20 half-lives of
 *                     the longer of its half-life and a day (by then the
 *                     score is within 0.0001 of neutral).
 *   P "metric:" NAME  integer string (INCRBY).  The one kind without an
 *                     expiry: metric names are a small fixed set.
 *   P "grey:" KEY     hash {first, last, count} (ms, ms, passes): a
 *                     greylisting triplet or client (counter.h), with
 *                     PEXPIREAT at the record's expiry.
 *
 * ==== Exactness ====
 * counter_lmdb.c's algorithm, run by one Lua script per call (EVALSHA of a
 * script loaded at connect with SCRIPT LOAD; EVAL when the server answers
 * NOSCRIPT).  Redis runs a script atomically, so the prune, the count and
 * the append are one step across every connection of every host, and the
 * time is the server's (redis.call('TIME')), so hosts with skewed clocks
 * agree; now := max(TIME, HIGH) keeps windows from widening when the
 * server's clock steps back.  The bound (never more than N accepted events
 * in any window of P; a client under the limit is never refused) follows
 * exactly as in counter_lmdb.c.  One round trip per check.
 *
 * ==== Decisions ====
 * There is no transaction to hold: every check is atomic by itself.  A
 * decision remembers the (key, member) of each rate hit it recorded and
 * buffers its metric increments; counter_decision_end() sends, pipelined in
 * one round trip, ZREM of the hits when the decision was refused (so a
 * refused event is never counted) and the INCRBYs.  It returns -1 only when
 * a refused decision's hits could not be withdrawn (they stay counted:
 * stricter, never looser); increments lost to an outage are not the
 * decision's failure - its counts are already on the server.  Members are
 * unique, so a withdrawal removes exactly the event its decision recorded.
 * What LMDB gets from its writer lock - a hook's count-then-record at AUTH
 * being one step across workers - Redis does not give: a burst of parallel
 * failed AUTHs spread over hosts may overshoot max_failed_auth by the
 * number in flight; every failure is still counted.
 *
 * ==== Faults ====
 * The link is a state machine (CLOSED -> UP <-> DOWN).  Every call has a
 * budget of timeout_ms, which bounds the connect and each socket read and
 * write (redisConnectWithTimeout, then redisSetTimeout with what is left;
 * a call is one round trip, so in practice the budget bounds the call;
 * an inspection - SCAN pages - gets a budget per round trip).  A failed
 * connect, an I/O error, a timeout or a "server cannot serve" reply
 * (LOADING, BUSY, MASTERDOWN, READONLY) closes the connection and enters
 * DOWN: logged once, with the failed-call count logged once more at
 * recovery.  While DOWN, calls fail at once without touching the network
 * until the retry time; then one call tries to reconnect; the retry delay
 * doubles from 100 ms to 5 s.  A failed call returns -1 (the callers
 * tempfail) - or, when the store was opened with fail_open
 * (policyd.fail_mode: accept) and the call is part of a decision, 0 with
 * neutral answers (allowed, count 0, score 50, nothing recorded).
 * Inspection and resets outside decisions never pretend.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "config.h"
#include "counter.h"
#include "counter_backend.h"
#include "log.h"

#define REDIS_KEY_MAX (64 + 8 + COUNTER_KEY_MAX)  /* prefix, kind, key */
#define REDIS_MEMBER_MAX 64
#define REDIS_DECISION_HITS 32       /* rate hits one decision can undo */
#define REDIS_DECISION_METRICS 64    /* buffered increments per decision */
#define REDIS_BACKOFF_MIN_MS 100
#define REDIS_BACKOFF_MAX_MS 5000
#define REDIS_SCAN_COUNT "512"
#define REDIS_REP_TTL_HALF_LIVES 20.0
#define REDIS_REP_TTL_MAX_MS (366ULL * 86400 * 1000)
#define REDIS_ERR_ESC 200            /* escaped server text in messages */
#define REDIS_ARGS_MAX 8

/* ==== Lua scripts ==== */

/* Shared head: the server's time, the key's meta member and its fields;
 * now never goes below the key's high-water mark. */
#define LUA_HEAD \
	"if redis.replicate_commands then pcall(redis.replicate_commands) end\n" \
	"local function ms(x) return string.format('%.0f', x) end\n" \
	"local function time_ms()\n" \
	"  local t = redis.call('TIME')\n" \
	"  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n" \
	"end\n" \
	"local function clock(key)\n" \
	"  local now = time_ms()\n" \
	"  local meta = redis.call('ZRANGEBYSCORE', key, 0, 0)[1]\n" \
	"  local limit, period, high = 0, 0, 0\n" \
	"  if meta then\n" \
	"    local l, p, h = string.match(meta, '^#(%d+):(%d+):(%d+)$')\n" \
	"    limit, period, high = tonumber(l) or 0, tonumber(p) or 0,\n" \
	"      tonumber(h) or 0\n" \
	"  end\n" \
	"  if now < high then now = high end\n" \
	"  return now, meta, limit, period, high\n" \
	"end\n" \
	"local function decayed(key, hl, now)\n" \
	"  local v = redis.call('HMGET', key, 'score', 'updated_ms')\n" \
	"  local s, upd = tonumber(v[1]), tonumber(v[2])\n" \
	"  if s == nil or upd == nil or s ~= s or s == math.huge or\n" \
	"     s == -math.huge then return 50, nil end\n" \
	"  local el = now - upd\n" \
	"  if el < 0 then el = 0 end\n" \
	"  s = 50 + (s - 50) * math.pow(2, -(el / 1000) / hl)\n" \
	"  if s < 0 then s = 0 elseif s > 100 then s = 100 end\n" \
	"  return s, upd\n" \
	"end\n"

/* KEYS[1] rate key; ARGV limit, period_ms, member suffix.
 * -> {allowed 0/1, count, retry_ms, member} */
static const char lua_rate_hit[] = LUA_HEAD
	"local key = KEYS[1]\n"
	"local limit, period = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
	"local now, meta = clock(key)\n"
	"redis.call('ZREMRANGEBYSCORE', key, '(0', ms(now - period))\n"
	"local k = redis.call('ZCOUNT', key, '(0', '+inf')\n"
	"if k >= limit then\n"
	"  local e = redis.call('ZRANGEBYSCORE', key, '(0', '+inf',\n"
	"    'WITHSCORES', 'LIMIT', k - limit, 1)\n"
	"  local retry = tonumber(e[2]) + period - now\n"
	"  if retry < 1 then retry = 1 end\n"
	"  return {0, k, retry, ''}\n"
	"end\n"
	"local member = ms(now) .. '-' .. ARGV[3]\n"
	"redis.call('ZADD', key, ms(now), member)\n"
	"if meta then redis.call('ZREM', key, meta) end\n"
	"redis.call('ZADD', key, 0, '#' .. ARGV[1] .. ':' .. ARGV[2] .. ':' ..\n"
	"  ms(now))\n"
	"redis.call('PEXPIRE', key, ARGV[2])\n"
	"return {1, k + 1, 0, member}\n";

/* KEYS[1] rate key; ARGV keep, period_ms, member suffix. -> count */
static const char lua_event_add[] = LUA_HEAD
	"local key = KEYS[1]\n"
	"local keep, period = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
	"local now, meta = clock(key)\n"
	"if meta then redis.call('ZREM', key, meta) end\n"
	"redis.call('ZADD', key, 0, '#0:' .. ARGV[2] .. ':' .. ms(now))\n"
	"redis.call('ZADD', key, ms(now), ms(now) .. '-' .. ARGV[3])\n"
	"redis.call('ZREMRANGEBYSCORE', key, '(0', ms(now - period))\n"
	"local n = redis.call('ZCARD', key) - 1\n"
	"if n > keep then\n"
	"  redis.call('ZREMRANGEBYRANK', key, 1, n - keep)\n"
	"  n = keep\n"
	"end\n"
	"redis.call('PEXPIRE', key, ARGV[2])\n"
	"return n\n";

/* KEYS[1] rate key; ARGV period_ms. -> count in (now - period, now] */
static const char lua_event_count[] = LUA_HEAD
	"local now = clock(KEYS[1])\n"
	"return redis.call('ZCOUNT', KEYS[1], '(' .. ms(now - tonumber(ARGV[1])),\n"
	"  '+inf')\n";

/* KEYS[1] rep key; ARGV half_life_s. -> score text */
static const char lua_rep_get[] = LUA_HEAD
	"local s = decayed(KEYS[1], tonumber(ARGV[1]), time_ms())\n"
	"return string.format('%.17g', s)\n";

/* KEYS[1] rep key; ARGV delta, half_life_s, ttl_ms. -> score text */
static const char lua_rep_adjust[] = LUA_HEAD
	"local now = time_ms()\n"
	"local s, upd = decayed(KEYS[1], tonumber(ARGV[2]), now)\n"
	"s = s + tonumber(ARGV[1])\n"
	"if s < 0 then s = 0 elseif s > 100 then s = 100 end\n"
	"if upd == nil or now > upd then upd = now end\n"
	"redis.call('HSET', KEYS[1], 'score', string.format('%.17g', s),\n"
	"  'updated_ms', ms(upd))\n"
	"redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
	"return string.format('%.17g', s)\n";

/* KEYS[1] triplet key, KEYS[2] client key (unused when ARGV[4] is 0);
 * ARGV delay, retry_window, max_age, auto_allow_after, interval,
 * refresh granularity (ms).  counter.h's greylisting step on the
 * server's clock; a recent pass writes nothing.
 * -> {verdict 0 greylisted / 1 passed / 2 auto-allowed, retry_ms,
 *     first_pass 0/1, client count} */
static const char lua_grey_check[] = LUA_HEAD
	"local now = time_ms()\n"
	"local delay, window, maxage = tonumber(ARGV[1]), tonumber(ARGV[2]),\n"
	"  tonumber(ARGV[3])\n"
	"local after, interval = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
	"local gran = tonumber(ARGV[6])\n"
	"local function load(key)\n"
	"  local v = redis.call('HMGET', key, 'first', 'last', 'count')\n"
	"  local f, l, c = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])\n"
	"  if f == nil or l == nil or c == nil then return nil end\n"
	"  return {f, l, c}\n"
	"end\n"
	"local function save(key, r, expires)\n"
	"  redis.call('HSET', key, 'first', ms(r[1]), 'last', ms(r[2]),\n"
	"    'count', ms(r[3]))\n"
	"  redis.call('PEXPIREAT', key, ms(expires))\n"
	"end\n"
	"local function count(c)\n"
	"  if c[3] == 0 or now >= c[2] + interval or c[2] > now then\n"
	"    c[3] = c[3] + 1\n"
	"    c[2] = now\n"
	"  end\n"
	"end\n"
	"local c = nil\n"
	"if after > 0 then\n"
	"  c = load(KEYS[2])\n"
	"  if c and c[3] >= after then\n"
	"    if c[2] <= now and now < c[2] + interval and\n"
	"       redis.call('PTTL', KEYS[2]) + gran >= maxage then\n"
	"      return {2, 0, 0, c[3]}\n"
	"    end\n"
	"    count(c)\n"
	"    save(KEYS[2], c, now + maxage)\n"
	"    return {2, 0, 0, c[3]}\n"
	"  end\n"
	"end\n"
	"local cc = 0\n"
	"if c then cc = c[3] end\n"
	"local t = load(KEYS[1])\n"
	"if t == nil then t = {now, now, 0} end\n"
	"if t[3] > 0 and t[1] <= now and t[2] <= now and now - t[2] < gran then\n"
	"  return {1, 0, 0, cc}\n"
	"end\n"
	"if t[1] > now or (t[3] == 0 and now - t[1] > window) then\n"
	"  t[1] = now\n"
	"end\n"
	"t[2] = now\n"
	"if t[3] == 0 and now - t[1] < delay then\n"
	"  save(KEYS[1], t, t[1] + window + 1)\n"
	"  return {0, t[1] + delay - now, 0, cc}\n"
	"end\n"
	"local first = 0\n"
	"if t[3] == 0 then first = 1 end\n"
	"t[3] = t[3] + 1\n"
	"save(KEYS[1], t, now + maxage)\n"
	"if first == 1 and after > 0 then\n"
	"  if c == nil then c = {now, 0, 0} end\n"
	"  count(c)\n"
	"  save(KEYS[2], c, now + maxage)\n"
	"  cc = c[3]\n"
	"end\n"
	"return {1, 0, first, cc}\n";

/* KEYS[1] any key; ARGV kind, rep half-life.  TYPE tells the kind:
 * -> {'rate', limit, period, count, oldest, newest}
 *    {'rep', score, updated_ms}, {'metric', value},
 *    {'grey', first, last, count, expires}
 *    {'skip', type} (not of this kind), {'bad'} (unreadable) */
static const char lua_inspect[] = LUA_HEAD
	"local key, kind = KEYS[1], ARGV[1]\n"
	"local ty = redis.call('TYPE', key)['ok']\n"
	"if kind == 'rate' then\n"
	"  if ty ~= 'zset' then return {'skip', ty} end\n"
	"  local now, meta, limit, period, high = clock(key)\n"
	"  if not meta or period <= 0 then return {'bad'} end\n"
	"  local cut = '(' .. ms(now - period)\n"
	"  local count = redis.call('ZCOUNT', key, cut, '+inf')\n"
	"  local oldest, newest = '0', ms(high)\n"
	"  if count > 0 then\n"
	"    oldest = redis.call('ZRANGEBYSCORE', key, cut, '+inf',\n"
	"      'WITHSCORES', 'LIMIT', 0, 1)[2]\n"
	"  end\n"
	"  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')\n"
	"  if last[2] and tonumber(last[2]) > 0 then newest = last[2] end\n"
	"  return {'rate', limit, period, count, oldest, newest}\n"
	"elseif kind == 'rep' then\n"
	"  if ty ~= 'hash' then return {'skip', ty} end\n"
	"  local s, upd = decayed(key, tonumber(ARGV[2]), time_ms())\n"
	"  if upd == nil then return {'bad'} end\n"
	"  return {'rep', string.format('%.17g', s), ms(upd)}\n"
	"elseif kind == 'metric' then\n"
	"  if ty ~= 'string' then return {'skip', ty} end\n"
	"  return {'metric', redis.call('GET', key)}\n"
	"elseif kind == 'grey' then\n"
	"  if ty ~= 'hash' then return {'skip', ty} end\n"
	"  local v = redis.call('HMGET', key, 'first', 'last', 'count')\n"
	"  local ttl = redis.call('PTTL', key)\n"
	"  if v[1] == false or v[2] == false or v[3] == false or ttl < 0 then\n"
	"    return {'bad'}\n"
	"  end\n"
	"  return {'grey', v[1], v[2], v[3], ms(time_ms() + ttl)}\n"
	"end\n"
	"return {'skip', ty}\n";

enum redis_script {
	SCRIPT_RATE_HIT,
	SCRIPT_EVENT_ADD,
	SCRIPT_EVENT_COUNT,
	SCRIPT_REP_GET,
	SCRIPT_REP_ADJUST,
	SCRIPT_INSPECT,
	SCRIPT_GREY_CHECK,
	SCRIPT_COUNT
};

static const char *const script_text[SCRIPT_COUNT] = {
	lua_rate_hit, lua_event_add, lua_event_count, lua_rep_get,
	lua_rep_adjust, lua_inspect, lua_grey_check,
};

/* Key namespaces, indexed by enum counter_kind. */
static const char *const kind_space[COUNTER_KIND_COUNT] = {
	"rate:", "rep:", "metric:", "grey:"
};

/* ==== The store ==== */

/* The connection's state; redis_link_enter() is the only writer. */
enum redis_link_state {
	REDIS_LINK_CLOSED,      /* never connected (or forked): connect now */
	REDIS_LINK_UP,          /* connected, scripts loaded                */
	REDIS_LINK_DOWN,        /* outage: fail at once until retry_at     */
};

struct redis_hit {
	char key[REDIS_KEY_MAX];
	size_t klen;
	char member[REDIS_MEMBER_MAX];
	size_t mlen;
};

struct redis_metric {
	char key[REDIS_KEY_MAX];
	size_t klen;
	uint64_t delta;
};

struct redis_store {
	struct counter_store base;      /* first: counter.c's view */
	struct counter_redis_options opt;
	bool readonly;
	char host[128];                 /* TCP: host and port; else unix */
	int port;
	const char *unix_path;          /* into opt.address, or NULL */

	redisContext *c;
	pid_t pid;                      /* a connection never crosses a fork */
	enum redis_link_state state;
	uint64_t retry_at_ms;           /* DOWN: monotonic time of next try */
	uint64_t backoff_ms;
	uint64_t down_since_ms;
	unsigned long failed_calls;     /* during the current outage */
	char down_reason[256];
	char sha[SCRIPT_COUNT][48];

	char id[20];                    /* member suffix: random hex */
	uint64_t seq;

	uint64_t deadline_ms;           /* monotonic end of this call */
	bool call_unavailable;          /* this call failed for an outage */

	bool in_decision;
	size_t nhits;
	struct redis_hit hits[REDIS_DECISION_HITS];
	size_t nmetrics;
	struct redis_metric metrics[REDIS_DECISION_METRICS];
};

static const struct counter_backend redis_backend;

/* redis_of - the Redis store behind counter.c's handle. */
static struct redis_store *
redis_of(struct counter_store *base)
{
	return (struct redis_store *)base;
}

/* ==== small helpers ==== */

/* mono_ms - monotonic milliseconds (timeouts and backoff). */
static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ms_timeval - ms as a struct timeval (at least 1 ms). */
static struct timeval
ms_timeval(uint64_t ms)
{
	struct timeval tv;

	if (ms == 0)
		ms = 1;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return tv;
}

/* text_escape - server text made safe for an error text or a log line. */
static const char *
text_escape(char *buf, size_t size, const char *s, size_t len)
{
	return log_escape(buf, size, s, len);
}

/* redis_key - P + kind namespace + key into buf; returns the length. */
static size_t
redis_key(const struct redis_store *rs, enum counter_kind kind,
    const char *key, size_t klen, char *buf)
{
	size_t n = 0, plen = strlen(rs->opt.key_prefix);
	size_t slen = strlen(kind_space[kind]);

	memcpy(buf + n, rs->opt.key_prefix, plen);
	n += plen;
	memcpy(buf + n, kind_space[kind], slen);
	n += slen;
	memcpy(buf + n, key, klen);
	n += klen;
	buf[n] = '\0';
	return n;
}

/* id_new - a fresh random member suffix for this process. */
static void
id_new(struct redis_store *rs)
{
	uint64_t r = 0;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = mono_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
	snprintf(rs->id, sizeof(rs->id), "%016" PRIx64, r);
	rs->seq = 0;
}

/* remaining_ms - what is left of this call's budget (0 = none). */
static uint64_t
remaining_ms(const struct redis_store *rs)
{
	uint64_t now = mono_ms();

	return now < rs->deadline_ms ? rs->deadline_ms - now : 0;
}

/* call_begin - a new call gets the full budget. */
static void
call_begin(struct redis_store *rs)
{
	rs->deadline_ms = mono_ms() + rs->opt.timeout_ms;
	rs->call_unavailable = false;
}

/* ==== The link state machine ==== */

/* redis_link_state_name - for log lines. */
static const char *
redis_link_state_name(enum redis_link_state s)
{
	switch (s) {
	case REDIS_LINK_CLOSED:
		return "closed";
	case REDIS_LINK_UP:
		return "up";
	case REDIS_LINK_DOWN:
		return "down";
	}
	return "?";
}

/* outage_log - the one line of an outage.  A read-only store (a
 * command-line tool) reports the error to its user instead. */
static void
outage_log(const struct redis_store *rs, const char *why)
{
	if (rs->readonly)
		return;
	log_err("counter store: redis %s unreachable (%s); %s until it "
	    "returns (retrying every %u ms, backing off to %u ms)",
	    rs->opt.address, why, rs->opt.fail_open ?
	    "decisions continue without counters (policyd.fail_mode: accept)" :
	    "decisions that need counters fail (tempfail)",
	    REDIS_BACKOFF_MIN_MS, REDIS_BACKOFF_MAX_MS);
}

/* redis_link_enter - the one place the link state changes: logs the start
 * of an outage and the recovery once each, and schedules retries. */
static void
redis_link_enter(struct redis_store *rs, enum redis_link_state next,
    const char *why)
{
	enum redis_link_state prev = rs->state;
	uint64_t now = mono_ms();

	if (next != REDIS_LINK_UP && rs->c != NULL) {
		redisFree(rs->c);
		rs->c = NULL;
	}
	rs->state = next;
	switch (next) {
	case REDIS_LINK_DOWN:
		if (prev != REDIS_LINK_DOWN) {
			rs->backoff_ms = REDIS_BACKOFF_MIN_MS;
			rs->down_since_ms = now;
			rs->failed_calls = 0;
			str_copy(rs->down_reason, why, sizeof(rs->down_reason));
			outage_log(rs, why);
		} else {
			rs->backoff_ms *= 2;
			if (rs->backoff_ms > REDIS_BACKOFF_MAX_MS)
				rs->backoff_ms = REDIS_BACKOFF_MAX_MS;
			str_copy(rs->down_reason, why, sizeof(rs->down_reason));
			log_debug("counter store: redis %s still unreachable "
			    "(%s); next try in %" PRIu64 " ms", rs->opt.address,
			    why, rs->backoff_ms);
		}
		rs->retry_at_ms = now + rs->backoff_ms;
		break;
	case REDIS_LINK_UP:
		if (prev == REDIS_LINK_DOWN && !rs->readonly)
			log_info("counter store: redis %s reachable again after "
			    "%.1f s (%lu call%s failed meanwhile)",
			    rs->opt.address,
			    (double)(now - rs->down_since_ms) / 1000.0,
			    rs->failed_calls, rs->failed_calls == 1 ? "" : "s");
		else
			log_debug("counter store: redis %s: %s -> %s",
			    rs->opt.address, redis_link_state_name(prev),
			    redis_link_state_name(next));
		rs->backoff_ms = REDIS_BACKOFF_MIN_MS;
		break;
	case REDIS_LINK_CLOSED:
		break;
	}
}

/* link_fail - this call met an outage: enter DOWN and say why. */
static int
link_fail(struct redis_store *rs, const char *why, struct error *err)
{
	redis_link_enter(rs, REDIS_LINK_DOWN, why);
	rs->call_unavailable = true;
	rs->failed_calls++;
	return error_set(err, "counter store unavailable: redis %s: %s",
	    rs->opt.address, why);
}

/* The reason of a call that ran out of counters.redis.timeout_ms; a
 * caller tells it from other reasons by address (link_stale). */
static const char why_timed_out[] = "timed out";

/* context_why - the reason a context failed (why_timed_out for EAGAIN). */
static const char *
context_why(const redisContext *c, char *buf, size_t size)
{
	if (c == NULL)
		return "out of memory";
	/* hiredis keeps strerror(errno) of the failed read or write. */
	if (c->err == REDIS_ERR_IO && (strcmp(c->errstr, strerror(EAGAIN)) == 0 ||
	    strcmp(c->errstr, strerror(EWOULDBLOCK)) == 0))
		return why_timed_out;
	if (c->err == REDIS_ERR_EOF)
		return "connection closed by the server";
	return text_escape(buf, size, c->errstr, strnlen(c->errstr,
	    sizeof(c->errstr)));
}

/* reply_unavailable - an error reply that means "this server cannot
 * serve now" (loading, busy script, replica), not a bad request. */
static bool
reply_unavailable(const redisReply *r)
{
	static const char *const words[] = { "LOADING", "BUSY", "MASTERDOWN",
	    "READONLY", "TRYAGAIN", "CLUSTERDOWN", NULL };

	for (size_t i = 0; words[i] != NULL; i++) {
		size_t n = strlen(words[i]);

		if (r->len >= n && strncmp(r->str, words[i], n) == 0 &&
		    (r->len == n || r->str[n] == ' '))
			return true;
	}
	return false;
}

/* reply_error - an error reply as the call's error (or its outage). */
static int
reply_error(struct redis_store *rs, const redisReply *r, const char *what,
    struct error *err)
{
	char esc[REDIS_ERR_ESC], why[REDIS_ERR_ESC + 32];

	text_escape(esc, sizeof(esc), r->str, r->len);
	if (reply_unavailable(r)) {
		snprintf(why, sizeof(why), "server answered %s", esc);
		return link_fail(rs, why, err);
	}
	return error_set(err, "counter store: redis %s: %s: %s",
	    rs->opt.address, what, esc);
}

/* set_timeout - bound the next socket reads and writes by what is left
 * of the call's budget; -1 when nothing is left. */
static int
set_timeout(struct redis_store *rs, struct error *err)
{
	uint64_t left = remaining_ms(rs);

	if (left == 0)
		return link_fail(rs, why_timed_out, err);
	if (redisSetTimeout(rs->c, ms_timeval(left)) != REDIS_OK)
		return link_fail(rs, "cannot set the socket timeout", err);
	return 0;
}

/* connect_setup - AUTH, SELECT and SCRIPT LOAD, pipelined in one round
 * trip on a fresh connection. */
static int
connect_setup(struct redis_store *rs, struct error *err)
{
	const char *argv[3];
	size_t lens[3];
	char db[16];
	size_t sent = 0, i;
	redisReply *r;
	int rc = 0;

	if (rs->opt.password[0] != '\0') {
		argv[0] = "AUTH";
		argv[1] = rs->opt.password;
		lens[0] = 4;
		lens[1] = strlen(rs->opt.password);
		redisAppendCommandArgv(rs->c, 2, argv, lens);
		sent++;
	}
	if (rs->opt.database != 0) {
		snprintf(db, sizeof(db), "%u", rs->opt.database);
		argv[0] = "SELECT";
		argv[1] = db;
		lens[0] = 6;
		lens[1] = strlen(db);
		redisAppendCommandArgv(rs->c, 2, argv, lens);
		sent++;
	}
	for (i = 0; i < SCRIPT_COUNT; i++) {
		argv[0] = "SCRIPT";
		argv[1] = "LOAD";
		argv[2] = script_text[i];
		lens[0] = 6;
		lens[1] = 4;
		lens[2] = strlen(script_text[i]);
		redisAppendCommandArgv(rs->c, 3, argv, lens);
	}
	sent += SCRIPT_COUNT;
	for (i = 0; i < sent; i++) {
		char buf[REDIS_ERR_ESC], why[REDIS_ERR_ESC + 32];
		size_t script = i - (sent - SCRIPT_COUNT);

		if (redisGetReply(rs->c, (void **)&r) != REDIS_OK)
			return link_fail(rs, context_why(rs->c, buf,
			    sizeof(buf)), err);
		if (rc == 0 && r->type == REDIS_REPLY_ERROR) {
			/* NOAUTH, WRONGPASS, a bad database: the server is
			 * there but will not serve us - an outage too (the
			 * operator fixes it; we keep retrying). */
			snprintf(why, sizeof(why), "setup refused: %s",
			    text_escape(buf, sizeof(buf), r->str, r->len));
			rc = -1;
			str_copy(rs->down_reason, why, sizeof(rs->down_reason));
		} else if (rc == 0 && i >= sent - SCRIPT_COUNT) {
			if (r->type != REDIS_REPLY_STRING || r->len == 0 ||
			    r->len >= sizeof(rs->sha[0])) {
				rc = -1;
				str_copy(rs->down_reason, "SCRIPT LOAD gave no "
				    "digest", sizeof(rs->down_reason));
			} else {
				memcpy(rs->sha[script], r->str, r->len);
				rs->sha[script][r->len] = '\0';
			}
		}
		freeReplyObject(r);
	}
	if (rc != 0) {
		char why[sizeof(rs->down_reason)];

		str_copy(why, rs->down_reason, sizeof(why));
		return link_fail(rs, why, err);
	}
	return 0;
}

/* link_connect - one connection attempt within the call's budget. */
static int
link_connect(struct redis_store *rs, struct error *err)
{
	struct timeval tv = ms_timeval(remaining_ms(rs));
	char buf[REDIS_ERR_ESC];

	if (remaining_ms(rs) == 0)
		return link_fail(rs, why_timed_out, err);
	if (rs->unix_path != NULL)
		rs->c = redisConnectUnixWithTimeout(rs->unix_path, tv);
	else
		rs->c = redisConnectWithTimeout(rs->host, rs->port, tv);
	if (rs->c == NULL || rs->c->err != 0) {
		char why[REDIS_ERR_ESC + 16];

		snprintf(why, sizeof(why), "connect: %s",
		    context_why(rs->c, buf, sizeof(buf)));
		return link_fail(rs, why, err);
	}
	(void)fcntl(rs->c->fd, F_SETFD, FD_CLOEXEC);
	if (rs->unix_path == NULL)
		(void)redisEnableKeepAlive(rs->c);
	if (set_timeout(rs, err) < 0 || connect_setup(rs, err) < 0)
		return -1;
	redis_link_enter(rs, REDIS_LINK_UP, "connected");
	return 0;
}

/* link_ready - a usable connection whose socket reads and writes are
 * bounded by the rest of the call's budget, or -1 (at once while DOWN). */
static int
link_ready(struct redis_store *rs, struct error *err)
{
	if (rs->pid != getpid()) {
		/* The parent's connection must not carry our requests (closing
		 * our copy of it leaves the parent's intact). */
		redis_link_enter(rs, REDIS_LINK_CLOSED, "forked");
		rs->pid = getpid();
		id_new(rs);
	}
	if (rs->state == REDIS_LINK_DOWN && mono_ms() < rs->retry_at_ms) {
		rs->call_unavailable = true;
		rs->failed_calls++;
		return error_set(err, "counter store unavailable: redis %s: %s "
		    "(retrying)", rs->opt.address, rs->down_reason);
	}
	if (rs->state != REDIS_LINK_UP && link_connect(rs, err) < 0)
		return -1;
	/* What the connect left of the budget bounds the command. */
	return set_timeout(rs, err);
}

/* ==== Commands ==== */

/* link_stale - a kept connection failed with the server closing it (or a
 * reset) rather than a timeout: typically the server restarted since the
 * last call.  It is dropped quietly and the call tries once more on a
 * fresh one, so a Redis restart costs no tempfail and no outage line;
 * only a failing reconnect is an outage.  (A call whose write reached a
 * server that died before answering may so run twice: a rate hit counted
 * twice makes a limit stricter, never looser.) */
static bool
link_stale(struct redis_store *rs, bool reused)
{
	char buf[REDIS_ERR_ESC];
	const char *why;

	if (!reused || rs->c == NULL ||
	    (rs->c->err != REDIS_ERR_EOF && rs->c->err != REDIS_ERR_IO))
		return false;
	why = context_why(rs->c, buf, sizeof(buf));
	if (why == why_timed_out)
		return false;
	log_debug("counter store: redis %s: kept connection failed (%s); "
	    "reconnecting", rs->opt.address, why);
	redis_link_enter(rs, REDIS_LINK_CLOSED, "stale");
	return true;
}

/* pipeline - n commands in one round trip; replies[i] receive each reply
 * (error replies included).  -1 when the link failed (nothing returned). */
static int
pipeline(struct redis_store *rs, size_t n, const int *argc,
    const char *const *const *argv, const size_t *const *lens,
    redisReply **replies, struct error *err)
{
	char buf[REDIS_ERR_ESC];
	bool reused = rs->state == REDIS_LINK_UP && rs->pid == getpid();
	size_t i;

	for (int attempt = 0; ; attempt++) {
		if (link_ready(rs, err) < 0)
			return -1;
		for (i = 0; i < n; i++)
			if (redisAppendCommandArgv(rs->c, argc[i],
			    (const char **)argv[i], lens[i]) != REDIS_OK)
				return link_fail(rs, "out of memory", err);
		for (i = 0; i < n; i++)
			if (redisGetReply(rs->c, (void **)&replies[i]) !=
			    REDIS_OK)
				break;
		if (i == n)
			return 0;
		while (i > 0)
			freeReplyObject(replies[--i]);
		/* See link_stale: one more try on a fresh connection. */
		if (attempt > 0 || !link_stale(rs, reused))
			return link_fail(rs, context_why(rs->c, buf,
			    sizeof(buf)), err);
	}
}

/* command - one command, one reply (an error reply is returned too);
 * NULL when the link failed (err set, state DOWN). */
static redisReply *
command(struct redis_store *rs, int argc, const char **argv,
    const size_t *lens, struct error *err)
{
	const char *const *argvs[1] = { argv };
	const size_t *lenss[1] = { lens };
	redisReply *r;

	if (pipeline(rs, 1, &argc, argvs, lenss, &r, err) < 0)
		return NULL;
	return r;
}

/* script_noscript - the server lost its script cache (SCRIPT FLUSH). */
static bool
script_noscript(const redisReply *r)
{
	return r->type == REDIS_REPLY_ERROR && r->len >= 8 &&
	    strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/* eval_keys - run script s on nkeys (1 or 2) keys: EVALSHA, and EVAL
 * when the server answers NOSCRIPT.  Returns a non-error reply, or NULL
 * with err. */
static redisReply *
eval_keys(struct redis_store *rs, enum redis_script s, size_t nkeys,
    const char *const *keys, const size_t *klens, size_t nargs,
    const char *const *args, const char *what, struct error *err)
{
	const char *argv[5 + REDIS_ARGS_MAX];
	size_t lens[5 + REDIS_ARGS_MAX], i, n;
	redisReply *r;

	argv[0] = "EVALSHA";
	argv[1] = rs->sha[s];
	argv[2] = nkeys == 2 ? "2" : "1";
	lens[0] = 7;
	lens[1] = strlen(rs->sha[s]);
	lens[2] = 1;
	for (n = 0; n < nkeys && n < 2; n++) {
		argv[3 + n] = keys[n];
		lens[3 + n] = klens[n];
	}
	for (i = 0; i < nargs && i < REDIS_ARGS_MAX; i++) {
		argv[3 + n + i] = args[i];
		lens[3 + n + i] = strlen(args[i]);
	}
	r = command(rs, (int)(3 + n + i), argv, lens, err);
	if (r != NULL && script_noscript(r)) {
		freeReplyObject(r);
		argv[0] = "EVAL";
		argv[1] = script_text[s];
		lens[0] = 4;
		lens[1] = strlen(script_text[s]);
		r = command(rs, (int)(3 + n + i), argv, lens, err);
	}
	if (r != NULL && r->type == REDIS_REPLY_ERROR) {
		reply_error(rs, r, what, err);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* eval - run script s on one key (eval_keys). */
static redisReply *
eval(struct redis_store *rs, enum redis_script s, const char *key,
    size_t klen, size_t nargs, const char *const *args, const char *what,
    struct error *err)
{
	return eval_keys(rs, s, 1, &key, &klen, nargs, args, what, err);
}

/* fail_open - this failed call may answer neutrally (fail_mode accept,
 * inside a decision, for an outage). */
static bool
fail_open(const struct redis_store *rs)
{
	return rs->opt.fail_open && rs->in_decision && rs->call_unavailable;
}

/* writable - refuse writes on a read-only store. */
static int
writable(const struct redis_store *rs, struct error *err)
{
	if (rs->readonly)
		return error_set(err, "counter store redis %s is open "
		    "read-only", rs->opt.address);
	return 0;
}

/* bad_reply - a reply of an unexpected shape. */
static int
bad_reply(struct redis_store *rs, const char *what, struct error *err)
{
	return error_set(err, "counter store: redis %s: unexpected reply to "
	    "%s", rs->opt.address, what);
}

/* reply_int - element i of an array reply as an integer. */
static bool
reply_int(const redisReply *r, size_t i, long long *v)
{
	if (r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
	    r->element[i]->type != REDIS_REPLY_INTEGER)
		return false;
	*v = r->element[i]->integer;
	return true;
}

/* reply_text - element i of an array reply as text (NUL-terminated by
 * hiredis). */
static const char *
reply_text(const redisReply *r, size_t i)
{
	if (r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
	    (r->element[i]->type != REDIS_REPLY_STRING &&
	    r->element[i]->type != REDIS_REPLY_STATUS))
		return NULL;
	return r->element[i]->str;
}

/* parse_u64 - a whole decimal number. */
static bool
parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

/* member_suffix - "ID-SEQ" for the next event of this process. */
static void
member_suffix(struct redis_store *rs, char *buf, size_t size)
{
	snprintf(buf, size, "%s-%" PRIu64, rs->id, ++rs->seq);
}

/* ==== Decisions ==== */

static int redis_decision_end(struct counter_store *base, bool accepted,
    struct error *err);

/* redis_decision_begin - start remembering hits and metrics. */
static void
redis_decision_begin(struct counter_store *base)
{
	struct redis_store *rs = redis_of(base);

	if (rs->in_decision) {
		struct error e;

		log_err("counter store: decision begun twice; ending the "
		    "previous one as accepted");
		(void)redis_decision_end(base, true, &e);
	}
	rs->in_decision = true;
	rs->nhits = 0;
	rs->nmetrics = 0;
}

/* metrics_flush - send the buffered increments (and, when withdraw, the
 * ZREMs of the decision's hits) in one round trip.  A metric that could
 * not be added is logged, not returned: the decision's counts are already
 * on the server; only a failed withdrawal is the caller's concern. */
static int
metrics_flush(struct redis_store *rs, bool withdraw, struct error *err)
{
	enum { N = REDIS_DECISION_HITS + REDIS_DECISION_METRICS };
	const char *argvs[N][3], *const *argvp[N];
	size_t lenss[N][3];
	const size_t *lensp[N];
	int argcs[N];
	char deltas[REDIS_DECISION_METRICS][24];
	redisReply *replies[N];
	size_t n = 0, i, nz = 0;
	int rc = 0;

	if (withdraw) {
		for (i = 0; i < rs->nhits; i++, n++) {
			argvs[n][0] = "ZREM";
			argvs[n][1] = rs->hits[i].key;
			argvs[n][2] = rs->hits[i].member;
			lenss[n][0] = 4;
			lenss[n][1] = rs->hits[i].klen;
			lenss[n][2] = rs->hits[i].mlen;
			argcs[n] = 3;
		}
		nz = n;
	}
	for (i = 0; i < rs->nmetrics; i++, n++) {
		uint64_t d = rs->metrics[i].delta;

		snprintf(deltas[i], sizeof(deltas[i]), "%" PRIu64,
		    d > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : d);
		argvs[n][0] = "INCRBY";
		argvs[n][1] = rs->metrics[i].key;
		argvs[n][2] = deltas[i];
		lenss[n][0] = 6;
		lenss[n][1] = rs->metrics[i].klen;
		lenss[n][2] = strlen(deltas[i]);
		argcs[n] = 3;
	}
	rs->nmetrics = 0;
	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		argvp[i] = argvs[i];
		lensp[i] = lenss[i];
	}
	if (pipeline(rs, n, argcs, argvp, lensp, replies, err) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (replies[i]->type == REDIS_REPLY_ERROR) {
			struct error e;

			if (i < nz) {
				if (rc == 0)
					reply_error(rs, replies[i], "withdraw",
					    err);
				rc = -1;
			} else {
				reply_error(rs, replies[i], "metric add", &e);
				log_warn("%s", e.text);
			}
		}
		freeReplyObject(replies[i]);
	}
	return rc;
}

/* redis_decision_end - withdraw a refused decision's hits and send its
 * metrics, pipelined. */
static int
redis_decision_end(struct counter_store *base, bool accepted,
    struct error *err)
{
	struct redis_store *rs = redis_of(base);
	bool withdraw = !accepted && rs->nhits > 0;
	int rc;

	if (!rs->in_decision)
		return 0;
	if (rs->nmetrics == 0 && !withdraw) {
		rs->in_decision = false;
		return 0;
	}
	call_begin(rs);
	rc = metrics_flush(rs, withdraw, err);
	if (rc < 0 && !withdraw && rs->call_unavailable) {
		/* Only metrics were lost: the outage is logged once. */
		rc = 0;
	} else if (rc < 0 && fail_open(rs)) {
		rc = 0;
	} else if (rc < 0) {
		error_prefix(err, "%zu rate hit%s of a refused decision stay "
		    "counted", rs->nhits, rs->nhits == 1 ? "" : "s");
	}
	rs->in_decision = false;
	rs->nhits = 0;
	return rc;
}

/* ==== Rate logs ==== */

/* redis_rate_hit - the exact check-and-record, one script. */
static int
redis_rate_hit(struct counter_store *base, const char *key, size_t klen,
    uint32_t limit, uint64_t period_ms, struct counter_rate_result *res,
    struct error *err)
{
	struct redis_store *rs = redis_of(base);
	char rkey[REDIS_KEY_MAX], lim[16], per[24], suffix[48];
	const char *args[3] = { lim, per, suffix };
	const char *member;
	size_t rlen, mlen;
	long long allowed, count, retry;
	redisReply *r;

	if (writable(rs, err) < 0)
		return -1;
	if (rs->in_decision && rs->nhits >= REDIS_DECISION_HITS)
		return error_set(err, "counter store: more than %d rate checks "
		    "in one decision", REDIS_DECISION_HITS);
	call_begin(rs);
	rlen = redis_key(rs, COUNTER_KIND_RATE, key, klen, rkey);
	snprintf(lim, sizeof(lim), "%" PRIu32, limit);
	snprintf(per, sizeof(per), "%" PRIu64, period_ms);
	member_suffix(rs, suffix, sizeof(suffix));
	r = eval(rs, SCRIPT_RATE_HIT, rkey, rlen, 3, args, "rate hit", err);
	if (r == NULL) {
		if (!fail_open(rs))
			return -1;
		res->allowed = true;
		return 0;
	}
	member = reply_text(r, 3);
	if (!reply_int(r, 0, &allowed) || !reply_int(r, 1, &count) ||
	    !reply_int(r, 2, &retry) || member == NULL || count < 0 ||
	    retry < 0) {
		freeReplyObject(r);
		return bad_reply(rs, "rate hit", err);
	}
	mlen = r->element[3]->len;
	res->allowed = allowed != 0;
	res->count = (uint32_t)count;
	res->retry_ms = (uint64_t)retry;
	if (res->allowed && rs->in_decision && mlen > 0 &&
	    mlen < REDIS_MEMBER_MAX) {
		struct redis_hit *h = &rs->hits[rs->nhits++];

		memcpy(h->key, rkey, rlen + 1);
		h->klen = rlen;
		memcpy(h->member, member, mlen);
		h->member[mlen] = '\0';
		h->mlen = mlen;
	}
	freeReplyObject(r);
	return 0;
}

/* redis_event_add - record one event unconditionally. */
static int
redis_event_add(struct counter_store *base, const char *key, size_t klen,
    uint32_t keep, uint64_t period_ms, uint32_t *count, struct error *err)
{
	struct redis_store *rs = redis_of(base);
	char rkey[REDIS_KEY_MAX], kp[16], per[24], suffix[48];
	const char *args[3] = { kp, per, suffix };
	size_t rlen;
	redisReply *r;

	if (writable(rs, err) < 0)
		return -1;
	call_begin(rs);
	rlen = redis_key(rs, COUNTER_KIND_RATE, key, klen, rkey);
	snprintf(kp, sizeof(kp), "%" PRIu32, keep);
	snprintf(per, sizeof(per), "%" PRIu64, period_ms);
	member_suffix(rs, suffix, sizeof(suffix));
	r = eval(rs, SCRIPT_EVENT_ADD, rkey, rlen, 3, args, "event add", err);
	if (r == NULL)
		return fail_open(rs) ? 0 : -1;
	if (r->type != REDIS_REPLY_INTEGER || r->integer < 0) {
		freeReplyObject(r);
		return bad_reply(rs, "event add", err);
	}
	*count = (uint32_t)r->integer;
	freeReplyObject(r);
	return 0;
}

/* redis_event_count - events for key in the last period_ms. */
static int
redis_event_count(struct counter_store *base, const char *key, size_t klen,
    uint64_t period_ms, uint32_t *count, struct error *err)
{
	struct redis_store *rs = redis_of(base);
	char rkey[REDIS_KEY_MAX], per[24];
	const char *args[1] = { per };
	size_t rlen;
	redisReply *r;

	call_begin(rs);
	rlen = redis_key(rs, COUNTER_KIND_RATE, key, klen, rkey);
	snprintf(per, sizeof(per), "%" PRIu64, period_ms);
	r = eval(rs, SCRIPT_EVENT_COUNT, rkey, rlen, 1, args, "event count",
	    err);
	if (r == NULL)
		return fail_open(rs) ? 0 : -1;
	if (r->type != REDIS_REPLY_INTEGER || r->integer < 0) {
		freeReplyObject(r);
		return bad_reply(rs, "event count", err);
	}
	*count = (uint32_t)r->integer;
	freeReplyObject(r);
	return 0;
}

/* redis_key_reset - forget key's events, reputation and greylisting
 * record (one DEL). */
static int
redis_key_reset(struct counter_store *base, const char *key, size_t klen,
    struct error *err)
{
	struct redis_store *rs = redis_of(base);
	char rate[REDIS_KEY_MAX], rep[REDIS_KEY_MAX], grey[REDIS_KEY_MAX];
	const char *argv[4] = { "DEL", rate, rep, grey };
	size_t lens[4];
	redisReply *r;

	if (writable(rs, err) < 0)
		return -1;
	call_begin(rs);
	lens[0] = 3;
	lens[1] = redis_key(rs, COUNTER_KIND_RATE, key, klen, rate);
	lens[2] = redis_key(rs, COUNTER_KIND_REP, key, klen, rep);
	lens[3] = redis_key(rs, COUNTER_KIND_GREY, key, klen, grey);
	r = command(rs, 4, argv, lens, err);
	if (r == NULL)
		return fail_open(rs) ? 0 : -1;
	if (r->type == REDIS_REPLY_ERROR) {
		reply_error(rs, r, "reset", err);
		freeReplyObject(r);
		return fail_open(rs) ? 0 : -1;
	}
	freeReplyObject(r);
	return 0;
}

/* ==== Reputation ==== */

/* score_parse - a score text from a script into *score (clamped). */
static bool
score_parse(const char *s, double *score)
{
	char *end;
	double v;

	if (s == NULL)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || v != v)
		return false;
	*score = v < 0.0 ? 0.0 : v > 100.0 ? 100.0 : v;
	return true;
}

/* redis_rep_get - decayed score (24 h half-life); absent = 50. */
static int
redis_rep_get(struct counter_store *base, const char *key, size_t klen,
    double *score, struct error *err)
{
	struct redis_store *rs = redis_of(base);
	char rkey[REDIS_KEY_MAX], hl[32];
	const char *args[1] = { hl };
	size_t rlen;
	redisReply *r;

	call_begin(rs);
	rlen = redis_key(rs, COUNTER_KIND_REP, key, klen, rkey);
	snprintf(hl, sizeof(hl), "%.17g", COUNTER_REP_GET_HALF_LIFE_S);
	r = eval(rs, SCRIPT_REP_GET, rkey, rlen, 1, args, "reputation get",
	    err);
	if (r == NULL)
		return fail_open(rs) ? 0 : -1;
	if (r->type != REDIS_REPLY_STRING || !score_parse(r->str, score)) {
		freeReplyObject(r);
		*score = COUNTER_REP_NEUTRAL;
		return bad_reply(rs, "reputation get", err);
	}
	freeReplyObject(r);
	return 0;
}

/* redis_rep_adjust - decay, add delta, clamp and store, in one script. */
static int
redis_rep_adjust(struct counter_store *base, const char *key, size_t klen,
    double delta, double half_life_s, struct error *err)
{
	struct redis_store *rs = redis_of(base);
	char rkey[REDIS_KEY_MAX], d[40], hl[40], ttl[24];
	const char *args[3] = { d, hl, ttl };
	double life = half_life_s > COUNTER_REP_GET_HALF_LIFE_S ?
	    half_life_s : COUNTER_REP_GET_HALF_LIFE_S;
	double ttl_ms = life * REDIS_REP_TTL_HALF_LIVES * 1000.0;
	size_t rlen;
	redisReply *r;

	if (writable(rs, err) < 0)
		return -1;
	call_begin(rs);
	rlen = redis_key(rs, COUNTER_KIND_REP, key, klen, rkey);
	snprintf(d, sizeof(d), "%.17g", delta);
	snprintf(hl, sizeof(hl), "%.17g", half_life_s);
	snprintf(ttl, sizeof(ttl), "%" PRIu64,
	    ttl_ms >= (double)REDIS_REP_TTL_MAX_MS ? (uint64_t)REDIS_REP_TTL_MAX_MS :
	    (uint64_t)ttl_ms);
	r = eval(rs, SCRIPT_REP_ADJUST, rkey, rlen, 3, args,
	    "reputation adjust", err);
	if (r == NULL)
		return fail_open(rs) ? 0 : -1;
	freeReplyObject(r);
	return 0;
}

/* ==== Greylisting ==== */

/* redis_grey_check - counter.h's greylisting step in one script. */
static int
redis_grey_check(struct counter_store *base, const char *triplet,
    size_t tlen, const char *client, size_t clen,
    const struct counter_grey_params *p, struct counter_grey_result *res,
    struct error *err)
{
	struct redis_store *rs = redis_of(base);
	char tkey[REDIS_KEY_MAX], ckey[REDIS_KEY_MAX];
	char a[6][24];
	const char *args[6] = { a[0], a[1], a[2], a[3], a[4], a[5] };
	const char *keys[2] = { tkey, ckey };
	size_t klens[2];
	long long verdict, retry, first, count;
	redisReply *r;

	if (writable(rs, err) < 0)
		return -1;
	call_begin(rs);
	klens[0] = redis_key(rs, COUNTER_KIND_GREY, triplet, tlen, tkey);
	klens[1] = client != NULL ?
	    redis_key(rs, COUNTER_KIND_GREY, client, clen, ckey) :
	    redis_key(rs, COUNTER_KIND_GREY, triplet, tlen, ckey);
	snprintf(a[0], sizeof(a[0]), "%" PRIu64, p->delay_ms);
	snprintf(a[1], sizeof(a[1]), "%" PRIu64, p->retry_window_ms);
	snprintf(a[2], sizeof(a[2]), "%" PRIu64, p->max_age_ms);
	snprintf(a[3], sizeof(a[3]), "%" PRIu32, client != NULL ?
	    p->auto_allow_after : 0);
	snprintf(a[4], sizeof(a[4]), "%" PRIu64, p->auto_allow_interval_ms);
	snprintf(a[5], sizeof(a[5]), "%" PRIu64, counter_grey_refresh_ms(p));
	r = eval_keys(rs, SCRIPT_GREY_CHECK, 2, keys, klens, 6, args,
	    "greylist", err);
	if (r == NULL) {
		if (!fail_open(rs))
			return -1;
		res->verdict = COUNTER_GREY_PASSED;   /* neutral: fail open */
		return 0;
	}
	if (!reply_int(r, 0, &verdict) || !reply_int(r, 1, &retry) ||
	    !reply_int(r, 2, &first) || !reply_int(r, 3, &count) ||
	    verdict < 0 || verdict > 2 || retry < 0 || count < 0) {
		freeReplyObject(r);
		return bad_reply(rs, "greylist", err);
	}
	freeReplyObject(r);
	res->verdict = verdict == 0 ? COUNTER_GREY_GREYLISTED :
	    verdict == 1 ? COUNTER_GREY_PASSED : COUNTER_GREY_AUTO_ALLOWED;
	res->retry_ms = (uint64_t)retry;
	res->first_pass = first != 0;
	res->client_count = count > UINT32_MAX ? UINT32_MAX : (uint32_t)count;
	return 0;
}

/* ==== Metrics ==== */

/* redis_metric_add - INCRBY now, or buffered until the decision ends. */
static int
redis_metric_add(struct counter_store *base, const char *name, size_t nlen,
    uint64_t delta, struct error *err)
{
	struct redis_store *rs = redis_of(base);
	struct redis_metric *m = NULL;
	char rkey[REDIS_KEY_MAX], d[24];
	const char *argv[3] = { "INCRBY", rkey, d };
	size_t lens[3], rlen, i;
	redisReply *r;

	if (writable(rs, err) < 0)
		return -1;
	rlen = redis_key(rs, COUNTER_KIND_METRIC, name, nlen, rkey);
	if (rs->in_decision) {
		for (i = 0; i < rs->nmetrics && m == NULL; i++)
			if (rs->metrics[i].klen == rlen &&
			    memcmp(rs->metrics[i].key, rkey, rlen) == 0)
				m = &rs->metrics[i];
		if (m == NULL && rs->nmetrics == REDIS_DECISION_METRICS) {
			call_begin(rs);
			if (metrics_flush(rs, false, err) < 0 &&
			    !rs->call_unavailable)
				return -1;
		}
		if (m == NULL) {
			m = &rs->metrics[rs->nmetrics++];
			memcpy(m->key, rkey, rlen + 1);
			m->klen = rlen;
			m->delta = 0;
		}
		m->delta = m->delta > UINT64_MAX - delta ? UINT64_MAX :
		    m->delta + delta;
		return 0;
	}
	call_begin(rs);
	snprintf(d, sizeof(d), "%" PRIu64,
	    delta > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : delta);
	lens[0] = 6;
	lens[1] = rlen;
	lens[2] = strlen(d);
	r = command(rs, 3, argv, lens, err);
	if (r == NULL)
		return -1;
	if (r->type == REDIS_REPLY_ERROR) {
		reply_error(rs, r, "metric add", err);
		freeReplyObject(r);
		return -1;
	}
	freeReplyObject(r);
	return 0;
}

/* ==== Sweeping, durability ==== */

/* redis_sweep - nothing to do: every rate key carries its expiry. */
static long
redis_sweep(struct counter_store *base, size_t max_keys, struct error *err)
{
	return 0;
}

/* redis_flush - nothing is buffered; policyd's once-a-second call is used
 * to reconnect during an outage once the retry time has come, so the
 * recovery is noticed (and logged) without waiting for traffic. */
static int
redis_flush(struct counter_store *base, struct error *err)
{
	struct redis_store *rs = redis_of(base);
	struct error ignored;
	unsigned long failed;

	if (rs->readonly || rs->in_decision || rs->state != REDIS_LINK_DOWN ||
	    mono_ms() < rs->retry_at_ms)
		return 0;
	failed = rs->failed_calls;

	call_begin(rs);
	(void)link_ready(rs, &ignored);   /* still down: logged at debug */
	rs->failed_calls = failed;        /* a probe is not a failed call */
	return 0;
}

/* ==== Inspection ==== */

struct visit_item {
	char *key;              /* the caller's key (without P and kind) */
	struct counter_entry e;
};

struct visit_list {
	struct visit_item *items;
	size_t count, cap;
};

/* glob_escape - text with SCAN's pattern characters escaped. */
static size_t
glob_escape(char *dst, size_t size, const char *src, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 2 < size; i++) {
		if (strchr("*?[]\\^", src[i]) != NULL)
			dst[n++] = '\\';
		dst[n++] = src[i];
	}
	dst[n] = '\0';
	return n;
}

/* entry_decode - one inspect reply into e; false to skip the key. */
static bool
entry_decode(enum counter_kind kind, const redisReply *r,
    struct counter_entry *e)
{
	const char *tag = reply_text(r, 0);
	long long limit, period, count;
	uint64_t v;

	if (tag == NULL || strcmp(tag, counter_kind_names[kind]) != 0)
		return false;
	switch (kind) {
	case COUNTER_KIND_RATE:
		if (!reply_int(r, 1, &limit) || !reply_int(r, 2, &period) ||
		    !reply_int(r, 3, &count) || limit < 0 || period <= 0 ||
		    count < 0)
			return false;
		e->limit = (uint32_t)limit;
		e->period_ms = (uint64_t)period;
		e->count = (uint32_t)count;
		if (!parse_u64(reply_text(r, 4), &e->oldest_ms) ||
		    !parse_u64(reply_text(r, 5), &e->newest_ms))
			return false;
		return true;
	case COUNTER_KIND_REP:
		if (!score_parse(reply_text(r, 1), &e->score) ||
		    !parse_u64(reply_text(r, 2), &e->newest_ms))
			return false;
		return true;
	case COUNTER_KIND_METRIC:
		if (!parse_u64(reply_text(r, 1), &v))
			return false;
		e->value = v;
		e->count = (uint32_t)v;
		return true;
	case COUNTER_KIND_GREY:
		if (!parse_u64(reply_text(r, 1), &e->oldest_ms) ||
		    !parse_u64(reply_text(r, 2), &e->newest_ms) ||
		    !parse_u64(reply_text(r, 3), &v) ||
		    !parse_u64(reply_text(r, 4), &e->expires_ms) ||
		    v > UINT32_MAX)
			return false;
		e->count = (uint32_t)v;
		return true;
	default:
		return false;
	}
}

/* visit_add - remember one decoded entry. */
static void
visit_add(struct visit_list *l, const char *key, size_t klen,
    const struct counter_entry *e)
{
	struct visit_item *it;

	if (l->count == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->items = xrealloc(l->items, l->cap * sizeof(*l->items));
	}
	it = &l->items[l->count++];
	it->key = xstrndup(key, klen);
	it->e = *e;
}

/* visit_cmp - qsort: key order. */
static int
visit_cmp(const void *a, const void *b)
{
	const struct visit_item *x = a, *y = b;

	return strcmp(x->key, y->key);
}

/* visit_batch - inspect the keys of one SCAN page, pipelined. */
static int
visit_batch(struct redis_store *rs, enum counter_kind kind,
    const redisReply *keys, size_t skip, struct visit_list *l,
    struct error *err)
{
	size_t n = keys->elements, i;
	const char *(*argvs)[6];
	const char *const **argvp;
	size_t (*lenss)[6];
	const size_t **lensp;
	int *argcs;
	redisReply **replies;
	char hl[32];
	int rc = 0;

	if (n == 0)
		return 0;
	snprintf(hl, sizeof(hl), "%.17g", COUNTER_REP_GET_HALF_LIFE_S);
	argvs = xcalloc(n, sizeof(*argvs));
	argvp = xcalloc(n, sizeof(*argvp));
	lenss = xcalloc(n, sizeof(*lenss));
	lensp = xcalloc(n, sizeof(*lensp));
	argcs = xcalloc(n, sizeof(*argcs));
	replies = xcalloc(n, sizeof(*replies));
	for (i = 0; i < n; i++) {
		const redisReply *k = keys->element[i];

		argvs[i][0] = "EVALSHA";
		argvs[i][1] = rs->sha[SCRIPT_INSPECT];
		argvs[i][2] = "1";
		argvs[i][3] = k->type == REDIS_REPLY_STRING ? k->str : "";
		argvs[i][4] = counter_kind_names[kind];
		argvs[i][5] = hl;
		lenss[i][0] = 7;
		lenss[i][1] = strlen(rs->sha[SCRIPT_INSPECT]);
		lenss[i][2] = 1;
		lenss[i][3] = k->type == REDIS_REPLY_STRING ? k->len : 0;
		lenss[i][4] = strlen(counter_kind_names[kind]);
		lenss[i][5] = strlen(hl);
		argcs[i] = 6;
		argvp[i] = argvs[i];
		lensp[i] = lenss[i];
	}
	call_begin(rs);
	if (pipeline(rs, n, argcs, argvp, lensp, replies, err) < 0) {
		rc = -1;
		goto out;
	}
	for (i = 0; i < n; i++) {
		const redisReply *k = keys->element[i];
		redisReply *r = replies[i];
		struct counter_entry e;

		if (rc == 0 && script_noscript(r)) {
			/* The cache was flushed: EVAL loads it again. */
			freeReplyObject(r);
			replies[i] = NULL;
			call_begin(rs);
			r = eval(rs, SCRIPT_INSPECT, argvs[i][3], lenss[i][3], 2,
			    &argvs[i][4], "inspect", err);
			if (r == NULL) {
				rc = -1;
				continue;
			}
			replies[i] = r;
		}
		if (rc != 0 || k->type != REDIS_REPLY_STRING ||
		    k->len <= skip || k->len - skip > COUNTER_KEY_MAX)
			continue;
		if (r->type == REDIS_REPLY_ERROR) {
			reply_error(rs, r, "inspect", err);
			rc = -1;
			continue;
		}
		memset(&e, 0, sizeof(e));
		if (!entry_decode(kind, r, &e)) {
			const char *tag = reply_text(r, 0);
			char esc[REDIS_ERR_ESC];

			if (tag == NULL || strcmp(tag, "skip") != 0)
				log_warn("counter store: unreadable %s entry "
				    "\"%s\"", counter_kind_names[kind],
				    text_escape(esc, sizeof(esc), k->str,
				    k->len));
			continue;
		}
		visit_add(l, k->str + skip, k->len - skip, &e);
	}
out:
	for (i = 0; i < n; i++)
		if (replies[i] != NULL)
			freeReplyObject(replies[i]);
	free(replies);
	free(argcs);
	free(lensp);
	free(lenss);
	free(argvp);
	free(argvs);
	return rc;
}

/* redis_visit - SCAN the kind's keys under prefix (never KEYS), inspect
 * each page pipelined, then call fn in key order.  Each round trip has the
 * full timeout: a large table takes many. */
static int
redis_visit(struct counter_store *base, enum counter_kind kind,
    const char *prefix, size_t plen, counter_visit_fn fn, void *arg,
    struct error *err)
{
	struct redis_store *rs = redis_of(base);
	char space[REDIS_KEY_MAX], pattern[2 * REDIS_KEY_MAX + 2];
	char cursor[32] = "0";
	const char *argv[6] = { "SCAN", cursor, "MATCH", pattern, "COUNT",
	    REDIS_SCAN_COUNT };
	size_t lens[6], slen, n, i;
	struct visit_list l = { NULL, 0, 0 };
	int rc = 0;

	slen = redis_key(rs, kind, "", 0, space);
	n = glob_escape(pattern, sizeof(pattern) - 1, space, slen);
	n += glob_escape(pattern + n, sizeof(pattern) - 1 - n, prefix, plen);
	pattern[n++] = '*';
	pattern[n] = '\0';
	do {
		redisReply *r;

		call_begin(rs);
		lens[0] = 4;
		lens[1] = strlen(cursor);
		lens[2] = 5;
		lens[3] = n;
		lens[4] = 5;
		lens[5] = strlen(REDIS_SCAN_COUNT);
		r = command(rs, 6, argv, lens, err);
		if (r == NULL) {
			rc = -1;
			break;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			reply_error(rs, r, "scan", err);
			freeReplyObject(r);
			rc = -1;
			break;
		}
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[0]->len >= sizeof(cursor) ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			rc = bad_reply(rs, "scan", err);
			break;
		}
		memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
		rc = visit_batch(rs, kind, r->element[1], slen, &l, err);
		freeReplyObject(r);
	} while (rc == 0 && strcmp(cursor, "0") != 0);

	if (rc == 0 && l.count > 0) {
		qsort(l.items, l.count, sizeof(*l.items), visit_cmp);
		for (i = 0; i < l.count; i++) {
			/* SCAN may return a key twice. */
			if (i > 0 && strcmp(l.items[i].key,
			    l.items[i - 1].key) == 0)
				continue;
			l.items[i].e.kind = kind;
			l.items[i].e.key = l.items[i].key;
			if (fn(&l.items[i].e, arg) != 0)
				break;
		}
	}
	for (i = 0; i < l.count; i++)
		free(l.items[i].key);
	free(l.items);
	return rc;
}

/* info_field - the number after "name:" in an INFO text (0 if absent). */
static uint64_t
info_field(const char *info, const char *name)
{
	size_t n = strlen(name);
	uint64_t v = 0;

	for (const char *p = info; p != NULL && *p != '\0';) {
		if (strncmp(p, name, n) == 0 && p[n] == ':')
			v = strtoull(p + n + 1, NULL, 10);
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return v;
}

/* redis_stats - DBSIZE and INFO memory, pipelined. */
static int
redis_stats(struct counter_store *base, struct counter_stats *st,
    struct error *err)
{
	struct redis_store *rs = redis_of(base);
	const char *a0[1] = { "DBSIZE" }, *a1[2] = { "INFO", "memory" };
	const char *const *argv[2] = { a0, a1 };
	const size_t l0[1] = { 6 }, l1[2] = { 4, 6 };
	const size_t *lens[2] = { l0, l1 };
	const int argc[2] = { 1, 2 };
	redisReply *r[2];
	int rc = 0;

	call_begin(rs);
	if (pipeline(rs, 2, argc, argv, lens, r, err) < 0)
		return -1;
	if (r[0]->type != REDIS_REPLY_INTEGER || r[0]->integer < 0 ||
	    r[1]->type != REDIS_REPLY_STRING) {
		rc = bad_reply(rs, "DBSIZE/INFO", err);
	} else {
		st->entries = (uint64_t)r[0]->integer;
		st->used_bytes = info_field(r[1]->str, "used_memory");
		st->map_size = info_field(r[1]->str, "maxmemory");
	}
	freeReplyObject(r[0]);
	freeReplyObject(r[1]);
	return rc;
}

/* redis_unavailable - in a logged outage. */
static bool
redis_unavailable(const struct counter_store *base)
{
	const struct redis_store *rs = (const struct redis_store *)base;

	return rs->state == REDIS_LINK_DOWN;
}

/* ==== Opening and closing ==== */

/* address_parse - "unix:PATH", "[V6]:PORT" or "V4:PORT". */
static int
address_parse(struct redis_store *rs, struct error *err)
{
	const char *a = rs->opt.address, *colon, *end;
	char *stop;
	unsigned long port;
	size_t hlen;

	if (strncmp(a, CONFIG_UNIX_PREFIX, CONFIG_UNIX_PREFIX_LEN) == 0 &&
	    a[CONFIG_UNIX_PREFIX_LEN] != '\0') {
		rs->unix_path = a + CONFIG_UNIX_PREFIX_LEN;
		return 0;
	}
	colon = strrchr(a, ':');
	if (colon == NULL)
		return error_set(err, "counters.redis.address '%.200s': expected "
		    "HOST:PORT or unix:PATH", a);
	end = colon;
	if (a[0] == '[') {
		a++;
		if (colon == a || colon[-1] != ']')
			return error_set(err, "counters.redis.address '%.200s': "
			    "missing ']'", rs->opt.address);
		end = colon - 1;
	}
	hlen = (size_t)(end - a);
	if (hlen == 0 || hlen >= sizeof(rs->host))
		return error_set(err, "counters.redis.address '%.200s': bad "
		    "host", rs->opt.address);
	memcpy(rs->host, a, hlen);
	rs->host[hlen] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &stop, 10);
	if (errno != 0 || *stop != '\0' || port == 0 || port > 65535)
		return error_set(err, "counters.redis.address '%.200s': bad "
		    "port", rs->opt.address);
	rs->port = (int)port;
	return 0;
}

/* redis_close - end a pending decision (as accepted), disconnect. */
static void
redis_close(struct counter_store *base)
{
	struct redis_store *rs = redis_of(base);

	if (rs->in_decision) {
		struct error e;

		log_warn("counter store closed inside a decision; ending it as "
		    "accepted");
		if (redis_decision_end(base, true, &e) < 0)
			log_err("%s", e.text);
	}
	if (rs->c != NULL)
		redisFree(rs->c);
	explicit_bzero(rs->opt.password, sizeof(rs->opt.password));
	free(rs);
}

/* counter_redis_open - see counter_backend.h. */
int
counter_redis_open(const struct counter_redis_options *o, bool readonly,
    struct counter_store **out, struct error *err)
{
	struct redis_store *rs;

	*out = NULL;
	if (o->key_prefix[0] == '\0')
		return error_set(err, "counters.redis.key_prefix is empty");
	if (o->timeout_ms == 0)
		return error_set(err, "counters.redis.timeout_ms is 0");
	rs = xcalloc(1, sizeof(*rs));
	rs->base.be = &redis_backend;
	rs->opt = *o;
	rs->readonly = readonly;
	rs->pid = getpid();
	/* xcalloc left the link REDIS_LINK_CLOSED: connected below. */
	id_new(rs);
	if (address_parse(rs, err) < 0) {
		redis_close(&rs->base);
		return -1;
	}
	/* Connect now: a read-only store (a command-line tool) reports an
	 * unreachable server at once; a worker logs the outage and starts
	 * anyway, answering through it until the server returns. */
	call_begin(rs);
	if (link_ready(rs, err) < 0 && readonly) {
		redis_close(&rs->base);
		return error_prefix(err, "cannot open the counter store");
	}
	*out = &rs->base;
	return 0;
}

static const struct counter_backend redis_backend = {
	.name = "redis",
	.close = redis_close,
	.flush = redis_flush,
	.decision_begin = redis_decision_begin,
	.decision_end = redis_decision_end,
	.rate_hit = redis_rate_hit,
	.event_add = redis_event_add,
	.event_count = redis_event_count,
	.key_reset = redis_key_reset,
	.rep_get = redis_rep_get,
	.rep_adjust = redis_rep_adjust,
	.metric_add = redis_metric_add,
	.grey_check = redis_grey_check,
	.sweep = redis_sweep,
	.visit = redis_visit,
	.stats = redis_stats,
	.unavailable = redis_unavailable,
};
