/*
 * test_peer_table.c - unit tests for common/peer_table.c: one test per
 * promise of peer_table.h (counting per address, backward-shift deletion
 * with colliding and wrapping probe runs, the sum over the slots in use,
 * a new owner and elemtactl zeroing a dead worker's slot, a full slot,
 * private tables and the ELEMTA_PEER_FD / ELEMTA_PEER_SLOT contract),
 * plus a randomised comparison against a plain array model and a reader
 * racing a writer whose deletions keep moving the entry it reads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "addr.h"
#include "peer_table.h"

#define PROBE_ADDRS 4096

/* ip_n - the address 10.0.(n / 256).(n % 256). */
static struct addr_ip
ip_n(unsigned n)
{
	struct addr_ip ip;
	char text[32];

	snprintf(text, sizeof(text), "10.0.%u.%u", (n / 256) % 256, n % 256);
	assert_int_equal(addr_ip_parse(text, &ip), 0);
	return ip;
}

/* find_home - out[0..count) distinct addresses (from `from` on) whose
 * probe run starts at home. */
static void
find_home(const struct peer_table *t, size_t home, unsigned from,
    struct addr_ip *out, size_t count)
{
	size_t got = 0;

	for (unsigned n = from; n < from + PROBE_ADDRS && got < count; n++) {
		struct addr_ip ip = ip_n(n);

		if (peer_table_home(t, &ip) == home)
			out[got++] = ip;
	}
	assert_int_equal(got, count);
}

/* in_child - fork; the child runs fn(fd, slot, n) and _exits without
 * closing anything (a crashed worker); the parent waits for it. */
static void
in_child(void (*fn)(int, unsigned, unsigned), int fd, unsigned slot,
    unsigned n)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		fn(fd, slot, n);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* child_add - attach slot and add n connections from 10.0.0.1. */
static void
child_add(int fd, unsigned slot, unsigned n)
{
	struct addr_ip ip = ip_n(1);
	struct peer_table *t = peer_table_attach(fd, slot, NULL);

	if (t == NULL)
		_exit(1);
	for (unsigned i = 0; i < n; i++)
		if (peer_table_add(t, &ip) != 0)
			_exit(2);
	_exit(0);
}

/* test_add_remove_counts - counts per address go up and down; an entry
 * at zero is gone; removing an absent address changes nothing. */
static void
test_add_remove_counts(void **state)
{
	struct peer_table *t = peer_table_new_private(100, NULL);
	struct addr_ip a = ip_n(1), b = ip_n(2);

	assert_non_null(t);
	assert_int_equal(peer_table_slots(t), 1);
	assert_int_equal(peer_table_capacity(t), 256);
	assert_int_equal(peer_table_count(t, &a), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(peer_table_add(t, &a), 0);
	assert_int_equal(peer_table_add(t, &b), 0);
	assert_int_equal(peer_table_count(t, &a), 3);
	assert_int_equal(peer_table_count(t, &b), 1);
	peer_table_remove(t, &a);
	assert_int_equal(peer_table_count(t, &a), 2);
	peer_table_remove(t, &b);
	peer_table_remove(t, &b);      /* absent: ignored */
	assert_int_equal(peer_table_count(t, &b), 0);
	assert_int_equal(peer_table_count(t, &a), 2);
	peer_table_remove(t, &a);
	peer_table_remove(t, &a);
	assert_int_equal(peer_table_count(t, &a), 0);
	peer_table_close(t);
	peer_table_close(NULL);
}

/* test_ipv4_and_ipv6_keys - IPv4, its mapped form and IPv6 are keyed by
 * the 16 address bytes: the first two are one address. */
static void
test_ipv4_and_ipv6_keys(void **state)
{
	struct peer_table *t = peer_table_new_private(10, NULL);
	struct addr_ip v4, mapped, v6;

	assert_int_equal(addr_ip_parse("192.0.2.7", &v4), 0);
	assert_int_equal(addr_ip_parse("::ffff:192.0.2.7", &mapped), 0);
	assert_int_equal(addr_ip_parse("2001:db8::7", &v6), 0);
	assert_int_equal(peer_table_add(t, &v4), 0);
	assert_int_equal(peer_table_add(t, &v6), 0);
	assert_int_equal(peer_table_count(t, &mapped), 1);
	assert_int_equal(peer_table_count(t, &v6), 1);
	peer_table_close(t);
}

/* test_backward_shift_colliding - deleting the head of a run of
 * colliding addresses moves the later ones back, but never an entry
 * before its home (F below stays where a lookup finds it). */
static void
test_backward_shift_colliding(void **state)
{
	struct peer_table *t = peer_table_new_private(2, NULL);  /* 16 */
	struct addr_ip same[3], f, d;
	size_t h;

	assert_int_equal(peer_table_capacity(t), 16);
	h = 3;
	find_home(t, h, 0, same, 3);           /* A, B, C: home h      */
	find_home(t, h + 3, 0, &f, 1);         /* F: home h + 3        */
	find_home(t, h + 1, 0, &d, 1);         /* D: home h + 1        */
	/* Run: A@h B@h+1 C@h+2 F@h+3 D@h+4 */
	for (int i = 0; i < 3; i++)
		assert_int_equal(peer_table_add(t, &same[i]), 0);
	assert_int_equal(peer_table_add(t, &f), 0);
	assert_int_equal(peer_table_add(t, &d), 0);
	assert_int_equal(peer_table_add(t, &d), 0);
	/* Remove A: B and C move back one; F stays at its home h+3 (one
	 * step back would put it before its home); D (home h+1) skips
	 * over F into the hole C left at h+2.  Every lookup still ends on
	 * its entry before reaching an empty one. */
	peer_table_remove(t, &same[0]);
	assert_int_equal(peer_table_count(t, &same[0]), 0);
	assert_int_equal(peer_table_count(t, &same[1]), 1);
	assert_int_equal(peer_table_count(t, &same[2]), 1);
	assert_int_equal(peer_table_count(t, &f), 1);
	assert_int_equal(peer_table_count(t, &d), 2);
	/* Remove in the middle, then the rest: nothing is lost. */
	peer_table_remove(t, &same[2]);
	assert_int_equal(peer_table_count(t, &same[1]), 1);
	assert_int_equal(peer_table_count(t, &f), 1);
	assert_int_equal(peer_table_count(t, &d), 2);
	peer_table_remove(t, &same[1]);
	assert_int_equal(peer_table_count(t, &f), 1);
	assert_int_equal(peer_table_count(t, &d), 2);
	peer_table_remove(t, &f);
	assert_int_equal(peer_table_count(t, &d), 2);
	peer_table_remove(t, &d);
	peer_table_remove(t, &d);
	assert_int_equal(peer_table_count(t, &d), 0);
	/* Everything gone: the same addresses go in again. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(peer_table_add(t, &same[i]), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(peer_table_count(t, &same[i]), 1);
	peer_table_close(t);
}

/* test_backward_shift_wraps - a run that wraps past the last index. */
static void
test_backward_shift_wraps(void **state)
{
	struct peer_table *t = peer_table_new_private(2, NULL);  /* 16 */
	struct addr_ip last[3], zero;

	find_home(t, 15, 0, last, 3);          /* @15, @0, @1          */
	find_home(t, 0, 0, &zero, 1);          /* home 0: @2           */
	for (int i = 0; i < 3; i++)
		assert_int_equal(peer_table_add(t, &last[i]), 0);
	assert_int_equal(peer_table_add(t, &zero), 0);
	peer_table_remove(t, &last[0]);
	assert_int_equal(peer_table_count(t, &last[1]), 1);
	assert_int_equal(peer_table_count(t, &last[2]), 1);
	assert_int_equal(peer_table_count(t, &zero), 1);
	peer_table_remove(t, &last[1]);
	assert_int_equal(peer_table_count(t, &last[2]), 1);
	assert_int_equal(peer_table_count(t, &zero), 1);
	peer_table_remove(t, &last[2]);
	assert_int_equal(peer_table_count(t, &zero), 1);
	peer_table_close(t);
}

/* test_random_against_model - many adds and removes with colliding
 * addresses in a small table: every count matches a plain array. */
static void
test_random_against_model(void **state)
{
	struct peer_table *t = peer_table_new_private(8, NULL);  /* 16 */
	unsigned model[40] = { 0 }, distinct = 0;

	srand(12345);
	for (int step = 0; step < 20000; step++) {
		unsigned n = (unsigned)rand() % 40;
		struct addr_ip ip = ip_n(n);

		if (rand() % 2 == 0) {
			int rc = peer_table_add(t, &ip);

			if (model[n] == 0 && distinct >= 12) {
				assert_int_equal(rc, -1);  /* 3/4 of 16 */
			} else {
				assert_int_equal(rc, 0);
				distinct += model[n] == 0;
				model[n]++;
			}
		} else {
			peer_table_remove(t, &ip);
			if (model[n] > 0 && --model[n] == 0)
				distinct--;
		}
		for (unsigned k = 0; k < 40; k++) {
			struct addr_ip q = ip_n(k);

			assert_int_equal(peer_table_count(t, &q), model[k]);
		}
	}
	peer_table_close(t);
}

/* test_sum_across_slots - every slot in use counts, unused ones not. */
static void
test_sum_across_slots(void **state)
{
	int fd = peer_table_create(3, 100, NULL);
	struct peer_table *t0, *t1;
	struct addr_ip a = ip_n(1), b = ip_n(2);

	assert_true(fd >= 0);
	t0 = peer_table_attach(fd, 0, NULL);
	t1 = peer_table_attach(fd, 1, NULL);
	assert_non_null(t0);
	assert_non_null(t1);
	assert_int_equal(peer_table_slots(t0), 3);
	assert_int_equal(peer_table_slot(t1), 1);
	for (int i = 0; i < 2; i++)
		assert_int_equal(peer_table_add(t0, &a), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(peer_table_add(t1, &a), 0);
	assert_int_equal(peer_table_add(t1, &b), 0);
	assert_int_equal(peer_table_count(t0, &a), 5);
	assert_int_equal(peer_table_count(t1, &a), 5);
	assert_int_equal(peer_table_count(t0, &b), 1);
	peer_table_remove(t1, &a);
	assert_int_equal(peer_table_count(t0, &a), 4);
	/* A slot given up no longer counts. */
	peer_table_close(t1);
	assert_int_equal(peer_table_count(t0, &a), 2);
	assert_int_equal(peer_table_count(t0, &b), 0);
	/* Out of range slots and junk descriptors are refused. */
	assert_null(peer_table_attach(fd, 3, NULL));
	assert_null(peer_table_attach(-1, 0, NULL));
	assert_null(peer_table_attach(0, 0, NULL));
	peer_table_close(t0);
	close(fd);
}

/* test_new_owner_zeroes_slot - a worker that died with connections
 * counted leaves them in its slot; the next one to attach to that slot
 * starts from zero. */
static void
test_new_owner_zeroes_slot(void **state)
{
	int fd = peer_table_create(2, 100, NULL);
	struct peer_table *t0, *t1;
	struct addr_ip a = ip_n(1);

	assert_true(fd >= 0);
	t1 = peer_table_attach(fd, 1, NULL);
	assert_non_null(t1);
	assert_int_equal(peer_table_add(t1, &a), 0);
	in_child(child_add, fd, 0, 4);         /* crashes holding 4 */
	assert_int_equal(peer_table_count(t1, &a), 5);
	t0 = peer_table_attach(fd, 0, NULL);   /* its successor     */
	assert_non_null(t0);
	assert_int_equal(peer_table_count(t1, &a), 1);
	assert_int_equal(peer_table_count(t0, &a), 1);
	assert_int_equal(peer_table_add(t0, &a), 0);
	assert_int_equal(peer_table_count(t1, &a), 2);
	peer_table_close(t0);
	peer_table_close(t1);
	close(fd);
}

/* test_reset_slot - elemtactl zeroes the slot of a reaped worker at
 * once: its counts stop counting before any successor starts. */
static void
test_reset_slot(void **state)
{
	int fd = peer_table_create(2, 100, NULL);
	struct peer_table *t0;
	struct addr_ip a = ip_n(1);

	assert_true(fd >= 0);
	t0 = peer_table_attach(fd, 0, NULL);
	in_child(child_add, fd, 1, 3);
	assert_int_equal(peer_table_count(t0, &a), 3);
	assert_int_equal(peer_table_reset_slot(fd, 1, NULL), 0);
	assert_int_equal(peer_table_count(t0, &a), 0);
	assert_int_equal(peer_table_reset_slot(fd, 2, NULL), -1);
	/* Not a peer table. */
	assert_int_equal(peer_table_reset_slot(0, 0, NULL), -1);
	peer_table_close(t0);
	close(fd);
}

/* test_concurrent_reader - another process adds and removes addresses
 * whose runs lie just before a stable address's home, so its deletions
 * keep moving the stable entry back and forth; a reader in this process
 * always sees the stable count (the sequence count makes it retry). */
static void
test_concurrent_reader(void **state)
{
	int fd = peer_table_create(2, 8, NULL), status;   /* 16 entries */
	struct peer_table *r = peer_table_attach(fd, 1, NULL);
	struct addr_ip stable = ip_n(0), churn[6];
	size_t h, got = 0;
	unsigned wrong = 0, changes = 0, last = 0;
	unsigned long reads;
	int ready[2];
	char byte;
	struct timespec start, now;
	pid_t pid;

	assert_non_null(r);
	h = peer_table_home(r, &stable);

	for (unsigned n = 1; n < PROBE_ADDRS && got < 6; n++) {
		struct addr_ip ip = ip_n(n);
		size_t home = peer_table_home(r, &ip);

		if (home == h || home == ((h + 15) & 15))
			churn[got++] = ip;
	}
	assert_int_equal(got, 6);
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct peer_table *w = peer_table_attach(fd, 0, NULL);
		bool held[6] = { true, true };

		if (w == NULL)
			_exit(2);

		close(ready[0]);
		peer_table_add(w, &churn[0]);
		peer_table_add(w, &churn[1]);
		peer_table_add(w, &stable);
		peer_table_add(w, &stable);
		if (write(ready[1], "", 1) != 1)
			_exit(3);
		for (unsigned i = 0;; i = i * 1103515245u + 12345u) {
			unsigned k = (i >> 16) % 6;

			if (held[k])
				peer_table_remove(w, &churn[k]);
			else if (peer_table_add(w, &churn[k]) != 0)
				_exit(1);
			held[k] = !held[k];
		}
	}
	/* The writer says when the stable entry is published: end of file
	 * instead of its byte is a writer that died. */
	close(ready[1]);
	assert_int_equal(read(ready[0], &byte, 1), 1);
	close(ready[0]);
	assert_int_equal(peer_table_count(r, &stable), 2);
	/* Read until the writer is seen moving entries (the churn address's
	 * count changes) 100 times, however the two processes are scheduled
	 * on a busy machine: the loop ends on what was observed, not after a
	 * fixed number of reads.  The clock only bounds a writer that hangs. */
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (reads = 0; changes <= 100 || reads < 300000; reads++) {
		unsigned c = peer_table_count(r, &churn[0]);

		wrong += peer_table_count(r, &stable) != 2;
		changes += c != last;
		last = c;
		if (reads % 65536 != 65535)
			continue;
		if (waitpid(pid, &status, WNOHANG) == pid)
			fail_msg("the writer process exited (status %d)", status);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > 300)
			fail_msg("the writer made %u changes in 300 s", changes);
	}
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(wrong, 0);
	assert_true(changes > 100);
	peer_table_close(r);
	close(fd);
}

/* test_full_slot - a slot takes 3/4 of its capacity in distinct
 * addresses; then a new address is refused (the caller falls back),
 * while a known one still counts, and a removal makes room again. */
static void
test_full_slot(void **state)
{
	struct peer_table *t = peer_table_new_private(2, NULL);  /* 16 */
	struct addr_ip extra = ip_n(100), first = ip_n(0);

	for (unsigned n = 0; n < 12; n++) {
		struct addr_ip ip = ip_n(n);

		assert_int_equal(peer_table_add(t, &ip), 0);
	}
	assert_int_equal(peer_table_add(t, &extra), -1);
	assert_int_equal(peer_table_count(t, &extra), 0);
	assert_int_equal(peer_table_add(t, &first), 0);
	assert_int_equal(peer_table_count(t, &first), 2);
	peer_table_remove(t, &first);
	peer_table_remove(t, &first);
	assert_int_equal(peer_table_add(t, &extra), 0);
	assert_int_equal(peer_table_count(t, &extra), 1);
	for (unsigned n = 1; n < 12; n++) {
		struct addr_ip ip = ip_n(n);

		assert_int_equal(peer_table_count(t, &ip), 1);
	}
	peer_table_close(t);
}

/* test_capacity - twice max_connections, a power of two, at least 16. */
static void
test_capacity(void **state)
{
	static const unsigned cases[][2] = {
		{ 1, 16 }, { 8, 16 }, { 9, 32 }, { 10000, 32768 },
		{ 16384, 32768 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct peer_table *t = peer_table_new_private(cases[i][0], NULL);

		assert_non_null(t);
		assert_int_equal(peer_table_capacity(t), cases[i][1]);
		/* the room elemtactl checks reloads against: 3/4 of it, at
		 * least 1.5 x the sessions, and exactly what add accepts */
		assert_int_equal(peer_table_room(cases[i][0]),
		    cases[i][1] - cases[i][1] / 4);
		assert_true(peer_table_room(cases[i][0]) >= cases[i][0] * 3 / 2);
		assert_int_equal(peer_table_holds(t),
		    peer_table_room(cases[i][0]));
		peer_table_close(t);
	}
	{
		struct peer_table *t = peer_table_new_private(8, NULL);
		struct addr_ip a;
		unsigned n = 0;

		assert_non_null(t);
		while (n < 100 && (a = ip_n(n), peer_table_add(t, &a) == 0))
			n++;
		assert_int_equal(n, peer_table_room(8));
		peer_table_close(t);
	}
}

/* test_from_env - neither variable: a private table; both: the slot of
 * the passed table; one, or junk: an error. */
static void
test_from_env(void **state)
{
	struct peer_table *t, *other;
	struct addr_ip a = ip_n(1);
	struct error err;
	char num[16];
	bool inherited = true;
	int fd = peer_table_create(2, 100, NULL), pass;

	unsetenv("ELEMTA_PEER_FD");
	unsetenv("ELEMTA_PEER_SLOT");
	t = peer_table_from_env(50, &inherited, &err);
	assert_non_null(t);
	assert_false(inherited);
	assert_int_equal(peer_table_slots(t), 1);
	assert_int_equal(peer_table_capacity(t), 128);
	peer_table_close(t);

	setenv("ELEMTA_PEER_SLOT", "1", 1);
	assert_null(peer_table_from_env(50, &inherited, &err));
	assert_true(inherited);
	assert_non_null(strstr(err.text, "ELEMTA_PEER_FD"));

	pass = dup(fd);                        /* closed by from_env */
	snprintf(num, sizeof(num), "%d", pass);
	setenv("ELEMTA_PEER_FD", num, 1);
	setenv("ELEMTA_PEER_SLOT", "x", 1);
	assert_null(peer_table_from_env(50, &inherited, &err));
	assert_int_equal(fcntl(pass, F_GETFD), -1);

	pass = dup(fd);                        /* FD without SLOT */
	snprintf(num, sizeof(num), "%d", pass);
	setenv("ELEMTA_PEER_FD", num, 1);
	unsetenv("ELEMTA_PEER_SLOT");
	assert_null(peer_table_from_env(50, &inherited, &err));
	assert_true(inherited);
	assert_non_null(strstr(err.text, "ELEMTA_PEER_SLOT"));
	assert_int_equal(fcntl(pass, F_GETFD), -1);

	pass = dup(fd);
	snprintf(num, sizeof(num), "%d", pass);
	setenv("ELEMTA_PEER_FD", num, 1);
	setenv("ELEMTA_PEER_SLOT", "1", 1);
	t = peer_table_from_env(50, &inherited, &err);
	assert_non_null(t);
	assert_true(inherited);
	assert_int_equal(peer_table_slot(t), 1);
	assert_int_equal(peer_table_slots(t), 2);
	assert_int_equal(fcntl(pass, F_GETFD), -1);
	other = peer_table_attach(fd, 0, NULL);
	assert_int_equal(peer_table_add(t, &a), 0);
	assert_int_equal(peer_table_count(other, &a), 1);
	peer_table_close(other);
	peer_table_close(t);
	unsetenv("ELEMTA_PEER_FD");
	unsetenv("ELEMTA_PEER_SLOT");
	close(fd);
}

/* test_create_limits - zero slots or too many are refused. */
static void
test_create_limits(void **state)
{
	struct error err;

	assert_int_equal(peer_table_create(0, 10, &err), -1);
	assert_int_equal(peer_table_create(100000, 10, &err), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_remove_counts),
		cmocka_unit_test(test_ipv4_and_ipv6_keys),
		cmocka_unit_test(test_backward_shift_colliding),
		cmocka_unit_test(test_backward_shift_wraps),
		cmocka_unit_test(test_random_against_model),
		cmocka_unit_test(test_sum_across_slots),
		cmocka_unit_test(test_new_owner_zeroes_slot),
		cmocka_unit_test(test_reset_slot),
		cmocka_unit_test(test_concurrent_reader),
		cmocka_unit_test(test_full_slot),
		cmocka_unit_test(test_capacity),
		cmocka_unit_test(test_from_env),
		cmocka_unit_test(test_create_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
