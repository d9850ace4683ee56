/*
 * test_listen.c - common/listen.c: the one way listeners are opened
 * (elemtactl, policyd --bind, metricsd --bind).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "listen.h"

/* bound_port - the port fd listens on. */
static unsigned
bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* test_tcp - non-blocking, close-on-exec, really listening; a port in
 * use and a host name (never resolved) are clear errors. */
static void
test_tcp(void **state)
{
	struct error err;
	int fd = listen_tcp("127.0.0.1", 0, "test", &err), fd2, c;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	unsigned port;
	char name[32];

	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	port = bound_port(fd);
	assert_true(port > 0);
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
	close(c);
	snprintf(name, sizeof(name), "127.0.0.1:%u", port);
	fd2 = listen_tcp("127.0.0.1", port, name, &err);
	assert_int_equal(fd2, -1);
	assert_non_null(strstr(err.text, name));
	assert_non_null(strstr(err.text, "address in use"));
	close(fd);
	/* a host name is never resolved (AI_NUMERICHOST): the refusal is
	 * the resolver's, whatever the port and privileges */
	assert_int_equal(listen_tcp("localhost", 0, "x", &err), -1);
	assert_non_null(strstr(err.text, "cannot listen on x"));
	assert_non_null(strstr(err.text, "not known"));
}

/* test_tcp_v6_only - "::" listens on IPv6 only, so the IPv4 wildcard can
 * listen on the same port beside it (a dual-stack "::" would take the
 * IPv4 port too: EADDRINUSE).  Another process on this machine may hold
 * the IPv4 side of the port the kernel picked (a client socket bound to
 * it, say), so each of a few ports is tried; a dual-stack "::" fails
 * them all. */
static void
test_tcp_v6_only(void **state)
{
	struct error err;
	int fd4 = -1;

	for (int attempt = 0; attempt < 20 && fd4 < 0; attempt++) {
		int fd6 = listen_tcp("::", 0, "v6", &err);
		int v6only = 0;
		socklen_t len = sizeof(v6only);

		if (fd6 < 0)
			skip();          /* no IPv6 on this machine */
		assert_int_equal(getsockopt(fd6, IPPROTO_IPV6, IPV6_V6ONLY,
		    &v6only, &len), 0);
		assert_int_equal(v6only, 1);
		/* "" = 0.0.0.0 */
		fd4 = listen_tcp("", bound_port(fd6), "v4", &err);
		close(fd6);
	}
	assert_true(fd4 >= 0);
	close(fd4);
}

/* test_unix - mode applied, a socket still served refused (and kept), a
 * stale one replaced, one that cannot be judged refused (and kept), a
 * regular file in the way refused (and kept), a path too long refused. */
static void
test_unix(void **state)
{
	char dir[] = "/tmp/elemta-test-listen-XXXXXX", path[128], lng[200];
	struct error err;
	struct stat st;
	ino_t ino;
	int fd, fd2;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	fd = listen_unix(path, 0660, false, 0, 0, &err);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);
	/* while served, the file is not taken over (nor removed) */
	ino = st.st_ino;
	assert_int_equal(listen_unix(path, 0600, false, 0, 0, &err), -1);
	assert_non_null(strstr(err.text, "in use"));
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_ino, ino);
	close(fd);                       /* the file stays: stale */
	/* a socket that cannot be judged (here: no descriptor left to try
	 * a connection with) is refused and kept, never removed */
	{
		struct rlimit old, low;
		int held[64], n = 0;

		assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
		low = old;
		low.rlim_cur = 64;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
		while (n < 64 && (held[n] = dup(0)) >= 0)
			n++;
		assert_true(n < 64);             /* EMFILE reached */
		fd2 = listen_unix(path, 0600, false, 0, 0, &err);
		while (n > 0)
			close(held[--n]);
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
		assert_int_equal(fd2, -1);
		assert_non_null(strstr(err.text, "cannot tell"));
		assert_int_equal(lstat(path, &st), 0);
		assert_int_equal(st.st_ino, ino);
	}
	fd2 = listen_unix(path, 0600, false, 0, 0, &err);
	assert_true(fd2 >= 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	close(fd2);
	unlink(path);

	snprintf(path, sizeof(path), "%s/file", dir);
	fclose(fopen(path, "w"));
	assert_int_equal(listen_unix(path, 0600, false, 0, 0, &err), -1);
	assert_non_null(strstr(err.text, "not a socket"));
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	unlink(path);

	memset(lng, 'a', sizeof(lng) - 1);
	lng[0] = '/';
	lng[sizeof(lng) - 1] = '\0';
	assert_int_equal(listen_unix(lng, 0600, false, 0, 0, &err), -1);
	assert_non_null(strstr(err.text, "path longer than"));
	assert_int_equal(rmdir(dir), 0);
}

/* test_inherited - a descriptor named in the environment is taken only
 * when it is a listening socket above stderr, and made non-blocking and
 * close-on-exec; unset is not an error. */
static void
test_inherited(void **state)
{
	struct error err;
	char num[16];
	int lfd = listen_tcp("127.0.0.1", 0, "l", &err);
	int plain = socket(AF_INET, SOCK_STREAM, 0), fd = -1;

	assert_true(lfd >= 3 && plain >= 3);
	unsetenv("TEST_LISTEN_FD");
	assert_int_equal(listen_inherited("TEST_LISTEN_FD", &fd, &err), 0);
	setenv("TEST_LISTEN_FD", "abc", 1);
	assert_int_equal(listen_inherited("TEST_LISTEN_FD", &fd, &err), -1);
	assert_non_null(strstr(err.text, "not a descriptor number"));
	setenv("TEST_LISTEN_FD", "1", 1);
	assert_int_equal(listen_inherited("TEST_LISTEN_FD", &fd, &err), -1);
	snprintf(num, sizeof(num), "%d", plain);
	setenv("TEST_LISTEN_FD", num, 1);
	assert_int_equal(listen_inherited("TEST_LISTEN_FD", &fd, &err), -1);
	assert_non_null(strstr(err.text, "not a listening socket"));
	/* as inherited across exec: blocking, no close-on-exec */
	fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) & ~O_NONBLOCK);
	fcntl(lfd, F_SETFD, 0);
	snprintf(num, sizeof(num), "%d", lfd);
	setenv("TEST_LISTEN_FD", num, 1);
	assert_int_equal(listen_inherited("TEST_LISTEN_FD", &fd, &err), 1);
	assert_int_equal(fd, lfd);
	assert_true(fcntl(lfd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
	unsetenv("TEST_LISTEN_FD");
	close(plain);
	close(lfd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp),
		cmocka_unit_test(test_tcp_v6_only),
		cmocka_unit_test(test_unix),
		cmocka_unit_test(test_inherited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
