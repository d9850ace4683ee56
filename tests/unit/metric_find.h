/*
 * metric_find.h - one metric's value out of the counter table, for the
 * unit tests that read what the plugin host wrote (test_plugin_host.c,
 * and the policy plugin's tests through policy_fixture.h).
 */
#ifndef ELEMTA_TEST_METRIC_FIND_H
#define ELEMTA_TEST_METRIC_FIND_H

#include <stdint.h>
#include <string.h>

#include "counter.h"

/* A metric looked for by metric_cb: value stays as set when absent. */
struct metric_find {
	const char *name;
	uint64_t value;
};

/* metric_cb - counter_visit callback picking one metric's value. */
static int
metric_cb(const struct counter_entry *e, void *arg)
{
	struct metric_find *m = arg;

	if (strcmp(e->key, m->name) == 0)
		m->value = e->value;
	return 0;
}

#endif
