/*
 * test_fdio.c - unit tests for common/fdio.c: fdio_write_all delivers
 * every byte through short writes and reports write(2)'s errno;
 * fdio_fsync_dir syncs a directory and reports why it could not.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "fdio.h"

#define BIG (1u << 20)   /* far more than a socket buffer holds */

struct sink {
	int fd;
	unsigned char *got;
	size_t len;
};

/* sink_run - read until end of file, slowly enough to force short
 * writes on the other side. */
static void *
sink_run(void *arg)
{
	struct sink *s = arg;
	ssize_t n;

	while (s->len < BIG &&
	    (n = read(s->fd, s->got + s->len, 4096)) > 0)
		s->len += (size_t)n;
	return NULL;
}

static void
test_fdio_short_writes(void **state)
{
	unsigned char *data = malloc(BIG);
	struct sink s = { .got = malloc(BIG) };
	pthread_t t;
	int sv[2];

	(void)state;
	assert_non_null(data);
	assert_non_null(s.got);
	for (size_t i = 0; i < BIG; i++)
		data[i] = (unsigned char)(i * 7 + i / 251);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	s.fd = sv[1];
	assert_int_equal(pthread_create(&t, NULL, sink_run, &s), 0);
	assert_int_equal(fdio_write_all(sv[0], data, BIG), 0);
	close(sv[0]);
	pthread_join(t, NULL);
	close(sv[1]);
	assert_int_equal(s.len, BIG);
	assert_memory_equal(s.got, data, BIG);
	assert_int_equal(fdio_write_all(-1, data, 0), 0);
	free(data);
	free(s.got);
}

static void
test_fdio_error(void **state)
{
	int sv[2];

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	errno = 0;
	assert_int_equal(fdio_write_all(sv[0], "x", 1), -1);
	assert_int_equal(errno, EPIPE);
	close(sv[0]);
	errno = 0;
	assert_int_equal(fdio_write_all(-1, "x", 1), -1);
	assert_int_equal(errno, EBADF);
}

static void
test_fdio_fsync_dir(void **state)
{
	char dir[] = "/tmp/test_fdio.XXXXXX", file[64];

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(fdio_fsync_dir(dir), 0);
	snprintf(file, sizeof(file), "%s/f", dir);
	close(open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
	errno = 0;
	assert_int_equal(fdio_fsync_dir(file), -1);     /* not a directory */
	assert_int_equal(errno, ENOTDIR);
	unlink(file);
	rmdir(dir);
	errno = 0;
	assert_int_equal(fdio_fsync_dir(dir), -1);
	assert_int_equal(errno, ENOENT);
}

/* test_fdio_commit_file - the new content replaces the old one whole, or
 * with noreplace never replaces it (EEXIST, the old content kept); the
 * temporary file is gone either way. */
static void
test_fdio_commit_file(void **state)
{
	char dir[] = "/tmp/elemta-test-commit-XXXXXX", tmp[96], path[96];
	char got[16] = { 0 };
	struct error err;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(tmp, sizeof(tmp), "%s/.f.tmp", dir);
	snprintf(path, sizeof(path), "%s/f", dir);
	assert_int_equal(fdio_commit_file(tmp, path, dir, "one", 3, true, false,
	    &err), 0);
	assert_int_equal(fdio_commit_file(tmp, path, dir, "two", 3, true, false,
	    &err), 0);
	assert_int_equal(fdio_commit_file(tmp, path, dir, "three", 5, false,
	    true, &err), -1);
	assert_non_null(strstr(err.text, "rename"));
	assert_int_equal(access(tmp, F_OK), -1);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fread(got, 1, sizeof(got) - 1, f), 3);
	fclose(f);
	assert_string_equal(got, "two");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(fdio_commit_file(tmp, path, dir, "four", 4, false,
	    true, &err), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fdio_short_writes),
		cmocka_unit_test(test_fdio_error),
		cmocka_unit_test(test_fdio_fsync_dir),
		cmocka_unit_test(test_fdio_commit_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
