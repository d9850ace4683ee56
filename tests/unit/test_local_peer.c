/*
 * test_local_peer.c - unit tests for smtpd/local_peer.c: the kernel's
 * credentials of a Unix socket's peer and the name a uid goes by.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../smtpd/local_peer.h"

static void
test_identify_socketpair(void **state)
{
	int sv[2];
	struct local_peer p;
	struct error err;
	struct passwd *pw = getpwuid(getuid());

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(local_peer_identify(sv[0], &p, &err), 0);
	assert_int_equal(p.uid, getuid());
	assert_int_equal(p.pid, getpid());
	if (pw != NULL)
		assert_string_equal(p.user, pw->pw_name);
	close(sv[0]);
	close(sv[1]);
}

static void
test_not_a_unix_socket(void **state)
{
	int p[2];
	struct local_peer lp;
	struct error err;

	assert_int_equal(pipe(p), 0);
	assert_int_equal(local_peer_identify(p[0], &lp, &err), -1);
	assert_non_null(strstr(err.text, "credentials"));
	close(p[0]);
	close(p[1]);
}

static void
test_name_without_entry(void **state)
{
	char name[64];

	/* No password entry: a name no account can have. */
	local_peer_name(4000000123u, name, sizeof(name));
	assert_string_equal(name, "#4000000123");
	local_peer_name(0, name, sizeof(name));
	assert_string_equal(name, "root");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identify_socketpair),
		cmocka_unit_test(test_not_a_unix_socket),
		cmocka_unit_test(test_name_without_entry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
