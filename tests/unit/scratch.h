/*
 * scratch.h - one scratch directory for a unit test that reads files it
 * writes there (test_stats_file.c, test_metrics_collect.c, test_dns.c).  Include after
 * cmocka.h.
 */
#ifndef ELEMTA_TEST_SCRATCH_H
#define ELEMTA_TEST_SCRATCH_H

#include <stdio.h>
#include <stdlib.h>

static char scratch_dir[64];

/* scratch_make - a fresh scratch_dir. */
static inline void
scratch_make(void)
{
	snprintf(scratch_dir, sizeof(scratch_dir), "/tmp/elemta-test-XXXXXX");
	assert_non_null(mkdtemp(scratch_dir));
}

/* scratch_remove - remove it and everything in it. */
static inline void
scratch_remove(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch_dir);
	assert_int_equal(system(cmd), 0);
}

/* scratch_write - scratch_dir/name holding text. */
static inline void
scratch_write(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", scratch_dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

#endif
