/*
 * idle_hold.c - opens many concurrent SMTP sessions and keeps them idle,
 * for scripts/bench's concurrency-and-memory figure (issue 3: 10,000 idle
 * sessions on one smtpd worker).
 *
 * Connects COUNT times to HOST:PORT from S loopback source addresses
 * (127.0.1.1, 127.0.1.2, ...: the whole of 127.0.0.0/8 reaches the
 * loopback interface) so that no address pair runs out of ephemeral ports,
 * with at most 256 connects in flight, and waits for every session's
 * greeting ("220 " line; "220-" continuation lines are skipped).  Then it
 * prints
 *   greeted=G failed=F refused=R seconds=S
 * (R: sessions answered with something other than 220, e.g. 421), and
 * holds the sessions open, sending nothing, until its standard input
 * reaches end of file or HOLD seconds pass; then it closes them all and
 * exits.  Exit status 0 when every session was greeted, 1 otherwise.
 *
 *   idle_hold -a HOST:PORT -n COUNT [-s SOURCES] [-t GREET_TIMEOUT] [-h HOLD]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define INFLIGHT_MAX 256
#define LINE_MAX_ 512

enum sess_state { S_NEW, S_CONNECTING, S_GREETING, S_GREETED, S_FAILED, S_REFUSED };

struct sess {
	int fd;
	enum sess_state state;
	char buf[LINE_MAX_];
	size_t len;
};

/* now_s - the monotonic clock in seconds. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* usage - print the synopsis and exit 2. */
static void
usage(void)
{
	fprintf(stderr, "usage: idle_hold -a HOST:PORT -n COUNT [-s SOURCES] "
	    "[-t GREET_TIMEOUT] [-h HOLD]\n");
	exit(2);
}

/* start_connect - a non-blocking connect from source address number src. */
static int
start_connect(struct sess *s, const struct sockaddr_in *dst, unsigned src)
{
	struct sockaddr_in from;
	int one = 1;

	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (s->fd < 0)
		return -1;
	memset(&from, 0, sizeof(from));
	from.sin_family = AF_INET;
	/* 127.0.1.1, 127.0.1.2, ... (stays inside 127.0.0.0/8) */
	from.sin_addr.s_addr = htonl(0x7f000101u + src);
	setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(s->fd, (struct sockaddr *)&from, sizeof(from)) < 0)
		return -1;
	if (connect(s->fd, (const struct sockaddr *)dst, sizeof(*dst)) < 0 &&
	    errno != EINPROGRESS)
		return -1;
	s->state = S_CONNECTING;
	return 0;
}

/* on_readable - consume greeting bytes; returns the new state. */
static enum sess_state
on_readable(struct sess *s)
{
	for (;;) {
		ssize_t r = read(s->fd, s->buf + s->len, sizeof(s->buf) - 1 - s->len);
		char *nl;

		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return s->state;
		if (r <= 0)
			return S_FAILED;
		s->len += (size_t)r;
		s->buf[s->len] = '\0';
		while ((nl = strchr(s->buf, '\n')) != NULL) {
			if (strncmp(s->buf, "220-", 4) == 0) {
				size_t rest = s->len - (size_t)(nl + 1 - s->buf);

				memmove(s->buf, nl + 1, rest + 1);
				s->len = rest;
				continue;
			}
			return strncmp(s->buf, "220 ", 4) == 0 ? S_GREETED : S_REFUSED;
		}
		if (s->len >= sizeof(s->buf) - 1)
			return S_FAILED;
	}
}

/* main - open, greet and hold the sessions; print the summary line. */
int
main(int argc, char **argv)
{
	const char *addr = NULL;
	unsigned count = 0, sources = 100, next = 0, inflight = 0;
	unsigned greeted = 0, failed = 0, refused = 0;
	double greet_timeout = 120, hold = 300, t0, t_greeted;
	struct sockaddr_in dst;
	struct sess *ss;
	struct rlimit rl;
	char host[64];
	const char *colon;
	int ep, opt;

	while ((opt = getopt(argc, argv, "a:n:s:t:h:")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'n': count = (unsigned)atoi(optarg); break;
		case 's': sources = (unsigned)atoi(optarg); break;
		case 't': greet_timeout = atof(optarg); break;
		case 'h': hold = atof(optarg); break;
		default: usage();
		}
	}
	if (addr == NULL || count == 0 || count > 1000000 || sources == 0 ||
	    sources > 60000 || (colon = strrchr(addr, ':')) == NULL ||
	    (size_t)(colon - addr) >= sizeof(host))
		usage();
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &dst.sin_addr) != 1)
		usage();
	signal(SIGPIPE, SIG_IGN);
	rl.rlim_cur = rl.rlim_max = count + 64;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < count + 64) {
			fprintf(stderr, "idle_hold: open file limit %lu < %u\n",
			    (unsigned long)rl.rlim_cur, count + 64);
			return 1;
		}
	}
	ss = calloc(count, sizeof(*ss));
	ep = epoll_create1(0);
	if (ss == NULL || ep < 0) {
		perror("idle_hold");
		return 1;
	}
	t0 = now_s();
	while (greeted + failed + refused < count) {
		struct epoll_event evs[256];
		int n;

		while (next < count && inflight < INFLIGHT_MAX) {
			struct sess *s = &ss[next];
			struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN,
			    .data.ptr = s };

			if (start_connect(s, &dst, next % sources) < 0) {
				fprintf(stderr, "idle_hold: connect %u: %s\n", next,
				    strerror(errno));
				s->state = S_FAILED;
				failed++;
			} else {
				epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
				inflight++;
			}
			next++;
		}
		if (now_s() - t0 > greet_timeout) {
			fprintf(stderr, "idle_hold: greeting timeout (%.0f s)\n",
			    greet_timeout);
			failed = count - greeted - refused;
			break;
		}
		n = epoll_wait(ep, evs, 256, 200);
		for (int e = 0; e < n; e++) {
			struct sess *s = evs[e].data.ptr;
			enum sess_state st = s->state;

			if (st == S_CONNECTING && (evs[e].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
				int soerr = 0;
				socklen_t sl = sizeof(soerr);
				struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };

				getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
				if (soerr != 0) {
					st = S_FAILED;
				} else {
					st = S_GREETING;
					epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
				}
			}
			if (st == S_GREETING && (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
				s->state = st;
				st = on_readable(s);
			}
			s->state = st;
			if (st == S_GREETED || st == S_FAILED || st == S_REFUSED) {
				inflight--;
				epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
				if (st == S_GREETED)
					greeted++;
				else if (st == S_FAILED)
					failed++;
				else
					refused++;
			}
		}
	}
	t_greeted = now_s();
	printf("greeted=%u failed=%u refused=%u seconds=%.3f\n", greeted, failed,
	    refused, t_greeted - t0);
	fflush(stdout);
	/* Hold until stdin closes (the bench has read the worker's RSS) or
	 * the hold time passes; a peer closing a session is not waited for. */
	{
		struct pollfd p = { .fd = 0, .events = POLLIN };
		double until = now_s() + hold;

		while (now_s() < until) {
			char b[64];
			int r = poll(&p, 1, 500);

			if (r > 0 && read(0, b, sizeof(b)) <= 0)
				break;
		}
	}
	for (unsigned i = 0; i < count; i++)
		if (ss[i].fd > 0)
			close(ss[i].fd);
	free(ss);
	return greeted == count ? 0 : 1;
}
