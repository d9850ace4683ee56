/*
 * client.c - the `policy` plugin's client rules: blocked_ips (554 5.7.1),
 * exempt_ips (no rate rule applies) and access_hours (421 4.7.0).
 *
 * Called from policy.c's hooks at CONNECT (and, for Postfix requests, at
 * later states).  The client address is the host's canonical text; a
 * client whose address does not parse ("unknown") matches no list.
 *
 * access_hours: {start: "09:00", end: "17:00", days: [mon, ...],
 * timezone: "Europe/Paris"}; the same window parser and evaluator
 * (policy_hours_config, policy_hours_open) serve auth.c's
 * user_auth_hours.  Open when start <= local time < end on a
 * listed day (end before start spans midnight: 22:00-06:00).  The local
 * time in another zone comes from setenv("TZ") + tzset() + localtime_r(),
 * restored right after; that is process-global, which is safe because a
 * policyd worker is single-threaded, and it happens at most once per
 * minute because the verdict is cached for the current UTC minute.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "error.h"
#include "policy.h"

static time_t (*policy_clock)(void);

/* policy_set_clock - tests pin the wall clock; NULL restores time(). */
void
policy_set_clock(time_t (*clock)(void))
{
	policy_clock = clock;
}

/* policy_now - the wall clock (seconds) the hours rules read. */
time_t
policy_now(void)
{
	return policy_clock ? policy_clock() : time(NULL);
}

/* policy_monotonic - monotonic seconds (what the caches expire by). */
time_t
policy_monotonic(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec;
}

/* client_ip - the client's parsed address; false when it has none. */
static bool
client_ip(const elemta_ctx *ctx, struct addr_ip *ip)
{
	const char *text = elemta_ctx_client_ip(ctx);

	return text != NULL && *text != '\0' && addr_ip_parse(text, ip) == 0;
}

/* ==== Config ==== */

/* hours_parse_time - "HH:MM" (00:00 .. 24:00) to minutes. */
static int
hours_parse_time(const char *s, unsigned *out)
{
	unsigned h, m;
	char tail;

	if (s == NULL || strlen(s) < 4 || strlen(s) > 5 ||
	    sscanf(s, "%u:%2u%c", &h, &m, &tail) != 2)
		return -1;
	if (!isdigit((unsigned char)s[strlen(s) - 1]) ||
	    !isdigit((unsigned char)s[strlen(s) - 2]))
		return -1;
	if (m > 59 || h > 24 || (h == 24 && m != 0))
		return -1;
	*out = h * 60 + m;
	return 0;
}

/* hours_parse_day - "mon" / "monday" (any case) to tm_wday. */
static int
hours_parse_day(const char *s)
{
	static const char *const names[] = {
		"sunday", "monday", "tuesday", "wednesday", "thursday",
		"friday", "saturday",
	};
	size_t n = strlen(s);

	for (int i = 0; i < 7; i++)
		if ((n == 3 || n == strlen(names[i])) &&
		    strncasecmp(s, names[i], n) == 0)
			return i;
	return -1;
}

/* hours_zone_valid - an IANA name whose file exists in the zone database
 * (so a typo fails at start-up, not silently as UTC). */
static bool
hours_zone_valid(const char *tz)
{
	const char *dir = getenv("TZDIR");
	char path[512];

	if (*tz == '\0' || *tz == '/' || strstr(tz, "..") != NULL ||
	    strlen(tz) >= 120)
		return false;
	for (const char *p = tz; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p))
			return false;
	snprintf(path, sizeof(path), "%s/%s",
	    dir && *dir ? dir : "/usr/share/zoneinfo", tz);
	return access(path, R_OK) == 0;
}

static const char *const hours_keys[] = {
	"start", "end", "days", "timezone", NULL,
};

/* policy_hours_config - one window {start, end, days, timezone} from
 * node m (NULL: no window), validated completely; key names it in
 * messages ("access_hours", "user_auth_hours.alice"). */
int
policy_hours_config(struct policy_hours *hr, const elemta_cfg *m,
    const char *key, char *err, size_t errlen)
{
	const elemta_cfg *days;
	const char *start, *end, *tz;

	if (m == NULL)
		return 0;
	if (elemta_cfg_type(m) != ELEMTA_CFG_MAP) {
		snprintf(err, errlen, "%s: key '%s': expected a map "
		    "{start, end, days, timezone}", elemta_cfg_where(m), key);
		return -1;
	}
	if (elemta_cfg_check_keys(m, hours_keys, err, errlen) != 0 ||
	    elemta_cfg_string(m, "start", NULL, &start, err, errlen) != 0 ||
	    elemta_cfg_string(m, "end", NULL, &end, err, errlen) != 0 ||
	    elemta_cfg_string(m, "timezone", "", &tz, err, errlen) != 0 ||
	    elemta_cfg_string_list(m, "days", &days, err, errlen) != 0)
		return -1;
	if (hours_parse_time(start, &hr->start_min) != 0 || hr->start_min >= 1440) {
		snprintf(err, errlen, "%s: key '%s.start': expected "
		    "a time like \"09:00\"", elemta_cfg_where(m), key);
		return -1;
	}
	if (hours_parse_time(end, &hr->end_min) != 0) {
		snprintf(err, errlen, "%s: key '%s.end': expected "
		    "a time like \"17:00\"", elemta_cfg_where(m), key);
		return -1;
	}
	if (hr->start_min == hr->end_min) {
		snprintf(err, errlen, "%s: key '%s': start and end "
		    "are equal (an empty window)", elemta_cfg_where(m), key);
		return -1;
	}
	hr->days = days ? 0 : 0x7f;
	for (size_t i = 0; i < elemta_cfg_len(days); i++) {
		const elemta_cfg *it = elemta_cfg_at(days, i);
		int d = hours_parse_day(elemta_cfg_scalar(it));

		if (d < 0) {
			snprintf(err, errlen, "%s: key '%s.days': "
			    "'%.32s' is not a day (mon, tue, ... sun)",
			    elemta_cfg_where(it), key, elemta_cfg_scalar(it));
			return -1;
		}
		hr->days |= 1u << d;
	}
	if (hr->days == 0) {
		snprintf(err, errlen, "%s: key '%s.days': empty "
		    "(the window would never be open)", elemta_cfg_where(m),
		    key);
		return -1;
	}
	if (*tz != '\0' && !hours_zone_valid(tz)) {
		snprintf(err, errlen, "%s: key '%s.timezone': unknown "
		    "time zone '%.64s' (expected an IANA name like "
		    "\"Europe/Paris\")", elemta_cfg_where(m), key, tz);
		return -1;
	}
	str_copy(hr->timezone, tz, sizeof(hr->timezone));
	hr->cached_minute = -1;
	hr->set = true;
	return 0;
}

/* policy_client_config - blocked_ips, exempt_ips, access_hours. */
int
policy_client_config(struct policy *p, const elemta_cfg *cfg, char *err,
    size_t errlen)
{
	if (policy_cfg_cidrs(cfg, "blocked_ips", &p->blocked_ips, err, errlen) != 0 ||
	    policy_cfg_cidrs(cfg, "exempt_ips", &p->exempt_ips, err, errlen) != 0)
		return -1;
	return policy_hours_config(&p->hours, elemta_cfg_get(cfg, "access_hours"),
	    "access_hours", err, errlen);
}

/* policy_client_free - release the client lists. */
void
policy_client_free(struct policy *p)
{
	addr_cidr_list_free(&p->blocked_ips);
	addr_cidr_list_free(&p->exempt_ips);
}

/* ==== Rules ==== */

/* policy_client_exempt - exempt_ips: never rate limited. */
bool
policy_client_exempt(const struct policy *p, const elemta_ctx *ctx)
{
	struct addr_ip ip;

	if (p->exempt_ips.count == 0 || !client_ip(ctx, &ip))
		return false;
	return addr_cidr_list_match(&p->exempt_ips, &ip) >= 0;
}

/* policy_rule_blocked_ips - a listed client is refused outright. */
enum elemta_action
policy_rule_blocked_ips(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	struct addr_ip ip;

	if (p->blocked_ips.count == 0 || !client_ip(ctx, &ip) ||
	    addr_cidr_list_match(&p->blocked_ips, &ip) < 0)
		return ELEMTA_CONTINUE;
	return elemta_result_set(res, ELEMTA_REJECT, 554, "5.7.1",
	    "Client host [%s] blocked by policy", elemta_ctx_client_ip(ctx));
}

/* hours_local - now as local time in tz ("" = the process's zone). */
static int
hours_local(const char *tz, time_t now, struct tm *tm)
{
	char saved[256];
	const char *old;
	bool had;
	struct tm *r;

	if (*tz == '\0')
		return localtime_r(&now, tm) ? 0 : -1;
	old = getenv("TZ");
	had = old != NULL && str_copy(saved, old, sizeof(saved)) < sizeof(saved);
	setenv("TZ", tz, 1);
	tzset();
	r = localtime_r(&now, tm);
	if (had)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	tzset();
	return r ? 0 : -1;
}

/* policy_hours_open - whether the window contains now (cached per UTC
 * minute). */
bool
policy_hours_open(struct policy_hours *hr, time_t now)
{
	int64_t minute = (int64_t)now / 60;
	unsigned m;
	struct tm tm;
	bool in;

	if (minute == hr->cached_minute)
		return hr->cached_open;
	/* localtime_r only fails for times beyond its range; the window
	 * cannot be judged then, and refusing all mail for it would be worse. */
	if (hours_local(hr->timezone, now, &tm) != 0)
		return true;
	m = (unsigned)(tm.tm_hour * 60 + tm.tm_min);
	if (hr->start_min < hr->end_min)
		in = m >= hr->start_min && m < hr->end_min;
	else
		in = m >= hr->start_min || m < hr->end_min;
	in = in && (hr->days & (1u << tm.tm_wday)) != 0;
	hr->cached_minute = minute;
	hr->cached_open = in;
	return in;
}

/* policy_rule_access_hours - outside the window: 421 4.7.0. */
enum elemta_action
policy_rule_access_hours(struct policy *p, const elemta_ctx *ctx,
    struct elemta_result *res)
{
	if (!p->hours.set || policy_hours_open(&p->hours, policy_now()))
		return ELEMTA_CONTINUE;
	return elemta_result_set(res, ELEMTA_TEMPFAIL, 421, "4.7.0",
	    "Service available only from %02u:%02u to %02u:%02u%s%s, "
	    "try again later", p->hours.start_min / 60, p->hours.start_min % 60,
	    p->hours.end_min / 60, p->hours.end_min % 60,
	    p->hours.timezone[0] ? " " : "", p->hours.timezone);
}
