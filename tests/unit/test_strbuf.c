/*
 * test_strbuf.c - unit tests for common/strbuf.c: one test per promise of
 * strbuf.h (bounded appends that fail without changing the buffer, the
 * 1 MiB default limit, NUL termination, reset/free, strbuf_cstr).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "strbuf.h"

/* test_empty_cstr - a fresh strbuf reads as "" without allocating. */
static void
test_empty_cstr(void **state)
{
	struct strbuf sb = STRBUF_INIT(16);

	assert_null(sb.data);
	assert_string_equal(strbuf_cstr(&sb), "");
	assert_int_equal(sb.len, 0);
	strbuf_free(&sb);
}

/* test_append_terminated - appends accumulate and stay NUL-terminated. */
static void
test_append_terminated(void **state)
{
	struct strbuf sb = STRBUF_INIT(0);

	assert_int_equal(strbuf_append(&sb, "abc", 3), 0);
	assert_int_equal(strbuf_append_str(&sb, "def"), 0);
	assert_int_equal(strbuf_appendf(&sb, "-%d-%s", 42, "x"), 0);
	assert_int_equal(sb.len, 11);
	assert_string_equal(strbuf_cstr(&sb), "abcdef-42-x");
	assert_int_equal(sb.data[sb.len], '\0');
	/* Binary data with a NUL is kept by length. */
	assert_int_equal(strbuf_append(&sb, "\0z", 2), 0);
	assert_int_equal(sb.len, 13);
	assert_memory_equal(sb.data + 11, "\0z", 2);
	strbuf_free(&sb);
}

/* test_limit_exact - appends up to exactly the limit succeed. */
static void
test_limit_exact(void **state)
{
	struct strbuf sb = STRBUF_INIT(8);

	assert_int_equal(strbuf_append_str(&sb, "12345678"), 0);
	assert_int_equal(sb.len, 8);
	assert_int_equal(strbuf_append(&sb, "", 0), 0);
	assert_int_equal(strbuf_append_str(&sb, "9"), -1);
	strbuf_free(&sb);
}

/* test_limit_unchanged - a failing append (plain or formatted) leaves
 * the buffer exactly as it was. */
static void
test_limit_unchanged(void **state)
{
	struct strbuf sb = STRBUF_INIT(10);

	assert_int_equal(strbuf_append_str(&sb, "hello"), 0);
	assert_int_equal(strbuf_append_str(&sb, "world!"), -1);
	assert_int_equal(sb.len, 5);
	assert_string_equal(strbuf_cstr(&sb), "hello");
	assert_int_equal(strbuf_appendf(&sb, "%s", "123456"), -1);
	assert_int_equal(sb.len, 5);
	assert_string_equal(strbuf_cstr(&sb), "hello");
	assert_int_equal(strbuf_appendf(&sb, "%05d", 7), 0);
	assert_string_equal(strbuf_cstr(&sb), "hello00007");
	strbuf_free(&sb);
}

/* test_default_limit - limit 0 means 1 MiB. */
static void
test_default_limit(void **state)
{
	struct strbuf sb = STRBUF_INIT(0);
	size_t mib = 1024 * 1024;
	char *big = malloc(mib + 1);

	memset(big, 'a', mib + 1);
	assert_int_equal(strbuf_append(&sb, big, mib + 1), -1);
	assert_int_equal(sb.len, 0);
	assert_int_equal(strbuf_append(&sb, big, mib), 0);
	assert_int_equal(sb.len, mib);
	assert_int_equal(strbuf_append(&sb, "a", 1), -1);
	assert_int_equal(sb.len, mib);
	free(big);
	strbuf_free(&sb);
}

/* test_huge_len_no_overflow - a length near SIZE_MAX fails cleanly. */
static void
test_huge_len_no_overflow(void **state)
{
	struct strbuf sb = STRBUF_INIT(0);

	assert_int_equal(strbuf_append_str(&sb, "x"), 0);
	assert_int_equal(strbuf_append(&sb, "y", SIZE_MAX), -1);
	assert_int_equal(strbuf_append(&sb, "y", SIZE_MAX - 1), -1);
	assert_string_equal(strbuf_cstr(&sb), "x");
	strbuf_free(&sb);
}

/* test_reset_keeps_memory - reset empties but keeps the allocation. */
static void
test_reset_keeps_memory(void **state)
{
	struct strbuf sb = STRBUF_INIT(0);
	char *data;

	assert_int_equal(strbuf_append_str(&sb, "some text"), 0);
	data = sb.data;
	strbuf_reset(&sb);
	assert_int_equal(sb.len, 0);
	assert_ptr_equal(sb.data, data);
	assert_string_equal(strbuf_cstr(&sb), "");
	assert_int_equal(strbuf_append_str(&sb, "new"), 0);
	assert_string_equal(strbuf_cstr(&sb), "new");
	strbuf_free(&sb);
	assert_null(sb.data);
	assert_int_equal(sb.len, 0);
	/* Reusable after free. */
	assert_int_equal(strbuf_append_str(&sb, "again"), 0);
	assert_string_equal(strbuf_cstr(&sb), "again");
	/* Truncation keeps a prefix; a longer length changes nothing. */
	strbuf_truncate(&sb, 9);
	assert_string_equal(strbuf_cstr(&sb), "again");
	strbuf_truncate(&sb, 2);
	assert_int_equal(sb.len, 2);
	assert_string_equal(strbuf_cstr(&sb), "ag");
	strbuf_free(&sb);
	strbuf_truncate(&sb, 0);        /* empty, never allocated: no-op */
	assert_int_equal(sb.len, 0);
}

/* test_growth - many appends grow the buffer and keep the content. */
static void
test_growth(void **state)
{
	struct strbuf sb = STRBUF_INIT(0);

	for (int i = 0; i < 10000; i++)
		assert_int_equal(strbuf_appendf(&sb, "%04d", i % 10000), 0);
	assert_int_equal(sb.len, 40000);
	assert_memory_equal(sb.data, "000000010002", 12);
	assert_memory_equal(sb.data + 39996, "9999", 4);
	assert_true(sb.cap > sb.len);
	strbuf_free(&sb);
}

/* main - run every test of this module. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_cstr),
		cmocka_unit_test(test_append_terminated),
		cmocka_unit_test(test_limit_exact),
		cmocka_unit_test(test_limit_unchanged),
		cmocka_unit_test(test_default_limit),
		cmocka_unit_test(test_huge_len_no_overflow),
		cmocka_unit_test(test_reset_keeps_memory),
		cmocka_unit_test(test_growth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
