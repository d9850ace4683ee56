/*
 * schedule.c - retry backoff, expiry and delay warnings (schedule.h),
 * for elemta-queued's queue manager.  No clock, no state.
 */
#include <stddef.h>

#include "schedule.h"

/* schedule_policy_default - 5m, 1h, 5d, warnings off, 10% jitter. */
void
schedule_policy_default(struct schedule_policy *p)
{
	p->min_backoff = 300;
	p->max_backoff = 3600;
	p->max_lifetime = 5 * 86400;
	p->delay_warning = 0;
	p->jitter_pct = 10;
}

/* schedule_mix - splitmix64's finaliser: well-spread bits from a seed. */
static uint64_t
schedule_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* schedule_backoff - doubling, capped, minus a bounded jitter. */
uint64_t
schedule_backoff(const struct schedule_policy *p, unsigned attempts,
    uint64_t seed)
{
	uint64_t d = p->min_backoff > 0 ? p->min_backoff : 1;
	uint64_t cap = p->max_backoff > d ? p->max_backoff : d;
	unsigned pct = p->jitter_pct > 50 ? 50 : p->jitter_pct;
	uint64_t span;

	for (unsigned i = 1; i < attempts && d < cap; i++)
		d = d > cap / 2 ? cap : d * 2;
	if (d > cap)
		d = cap;
	span = d * pct / 100;
	if (span > 0)
		d -= schedule_mix(seed ^ ((uint64_t)attempts << 32)) %
		    (span + 1);
	return d > 0 ? d : 1;
}

/* schedule_expired - older than max_lifetime. */
bool
schedule_expired(const struct schedule_policy *p, int64_t arrival,
    int64_t now)
{
	return now >= arrival && (uint64_t)(now - arrival) >= p->max_lifetime;
}

/* schedule_next_attempt - now + backoff, no later than the expiry. */
int64_t
schedule_next_attempt(const struct schedule_policy *p, int64_t arrival,
    int64_t now, unsigned attempts, uint64_t seed)
{
	uint64_t b = schedule_backoff(p, attempts, seed);
	int64_t next = now + (int64_t)b;
	int64_t expiry = arrival + (int64_t)p->max_lifetime;

	if (next > expiry)
		next = expiry > now ? expiry : now;
	return next;
}

/* schedule_warning_due - once, after delay_warning, before expiry. */
bool
schedule_warning_due(const struct schedule_policy *p, int64_t arrival,
    int64_t now, bool warned)
{
	if (warned || p->delay_warning == 0 || now < arrival ||
	    schedule_expired(p, arrival, now))
		return false;
	return (uint64_t)(now - arrival) >= p->delay_warning;
}

/* schedule_seed - FNV-1a of s. */
uint64_t
schedule_seed(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; s != NULL && *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}
