/*
 * policy_load.c - a load generator for the Postfix policy delegation
 * protocol, used by scripts/bench against elemta-policyd's Postfix listener
 * (policyd.postfix_listen) and against postfwd.
 *
 * Opens C connections (TCP host:port or unix:/path); each keeps exactly one
 * request outstanding (as Postfix's smtpd does), driven by one epoll loop
 * in one thread so that the generator takes as little of the machine's two
 * cores as possible.  Every request is an RCPT-state request with a sender,
 * a recipient, a fresh `instance` (one recipient per message) and one of A
 * distinct client addresses, taken round-robin from 198.18.0.0/15 (RFC 2544
 * benchmarking range; the addresses are only text in the requests, no
 * packet goes to them).  Latency is measured from the write of a request
 * to the end of its reply (the empty line), in microseconds.
 *
 *   policy_load -a ADDRESS [-c CONNS] (-n COUNT | -t SECONDS) [-w WARMUP]
 *               [-k KEYS] [-r RCPTS] [-T TIMEOUT]
 *     -a  127.0.0.1:10040 or unix:/path
 *     -c  connections (default 8)
 *     -n  stop after COUNT measured requests;  -t  after SECONDS
 *     -w  unmeasured warm-up seconds first (default 0)
 *     -k  distinct client addresses (default 1000, 1..131072)
 *     -r  distinct recipients, in turn (default 0: a new one per request;
 *         greylisting's triplets then repeat instead of being all new)
 *     -T  hard deadline in seconds for the whole run (default 120)
 *
 * Prints one line:
 *   requests=N seconds=S rps=R p50_us=X p99_us=Y p999_us=Z max_us=M
 *   dunno=.. ok=.. defer=.. reject=.. other=.. errors=E
 * and exits 0, or 1 when a connection failed, a reply was malformed or the
 * deadline passed (the line is still printed), 2 on a usage error.
 * Everything is bounded: reply size, run time, connection count.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CONN_MAX 256
#define REQ_MAX 1024
#define REPLY_MAX 4096
#define HIST_US 100000          /* 1 us buckets up to 100 ms */
#define KEYS_MAX 131072         /* 198.18.0.0/15 */

enum action_kind { ACT_DUNNO, ACT_OK, ACT_DEFER, ACT_REJECT, ACT_OTHER, ACT_N };

struct conn {
	int fd;
	unsigned id;
	char req[REQ_MAX];
	size_t req_len, req_off;
	char reply[REPLY_MAX];
	size_t reply_len;
	uint64_t sent_ns;
	bool measured;              /* the request in flight counts */
	bool busy;
};

static uint32_t hist[HIST_US + 1];
static uint64_t max_ns;
static uint64_t actions[ACT_N];
static uint64_t errors;
static uint64_t seq;
static unsigned nkeys = 1000;
static unsigned nrcpts;         /* 0: a new recipient per request */

/* now_ns - the monotonic clock in nanoseconds. */
static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* usage - print the synopsis and exit 2. */
static void
usage(void)
{
	fprintf(stderr, "usage: policy_load -a HOST:PORT|unix:PATH [-c CONNS] "
	    "(-n COUNT | -t SECONDS) [-w WARMUP] [-k KEYS] [-r RCPTS] "
	    "[-T TIMEOUT]\n");
	exit(2);
}

/* connect_to - a blocking connect to addr, then made non-blocking. */
static int
connect_to(const char *addr)
{
	int fd;

	if (strncmp(addr, "unix:", 5) == 0) {
		struct sockaddr_un sun;

		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (strlen(addr + 5) >= sizeof(sun.sun_path))
			return -1;
		strcpy(sun.sun_path, addr + 5);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
			if (fd >= 0)
				close(fd);
			return -1;
		}
	} else {
		struct sockaddr_in sin;
		char host[64];
		const char *colon = strrchr(addr, ':');
		int one = 1;

		if (colon == NULL || (size_t)(colon - addr) >= sizeof(host))
			return -1;
		memcpy(host, addr, (size_t)(colon - addr));
		host[colon - addr] = '\0';
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
			return -1;
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
			if (fd >= 0)
				close(fd);
			return -1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* build_request - the next RCPT-state request into c->req. */
static void
build_request(struct conn *c)
{
	uint64_t n = seq++;
	unsigned k = (unsigned)(n % nkeys);
	int len;

	len = snprintf(c->req, sizeof(c->req),
	    "request=smtpd_access_policy\n"
	    "protocol_state=RCPT\n"
	    "protocol_name=ESMTP\n"
	    "client_address=198.%u.%u.%u\n"
	    "client_name=unknown\n"
	    "reverse_client_name=unknown\n"
	    "client_port=%u\n"
	    "helo_name=client%u.bench.example\n"
	    "sender=sender%u@bench.example\n"
	    "recipient=user%" PRIu64 "@dest.example\n"
	    "recipient_count=0\n"
	    "queue_id=\n"
	    "instance=%x.%" PRIx64 ".0\n"
	    "size=1000\n"
	    "server_address=127.0.0.1\n"
	    "server_port=25\n"
	    "\n",
	    18 + (k >> 16), (k >> 8) & 255, k & 255, 1024 + (unsigned)(n % 60000),
	    k, k, nrcpts > 0 ? n % nrcpts : n, c->id, n);
	c->req_len = (size_t)len;
	c->req_off = 0;
}

/* classify - count the reply's action; false when it is malformed. */
static bool
classify(const char *reply, size_t len)
{
	const char *a;

	if (len < 9 || strncmp(reply, "action=", 7) != 0)
		return false;
	a = reply + 7;
	if (strncasecmp(a, "DUNNO", 5) == 0)
		actions[ACT_DUNNO]++;
	else if (strncasecmp(a, "OK", 2) == 0)
		actions[ACT_OK]++;
	else if (strncasecmp(a, "DEFER", 5) == 0 || a[0] == '4')
		actions[ACT_DEFER]++;
	else if (strncasecmp(a, "REJECT", 6) == 0 || a[0] == '5')
		actions[ACT_REJECT]++;
	else
		actions[ACT_OTHER]++;
	return true;
}

/* record - one latency sample. */
static void
record(uint64_t ns)
{
	uint64_t us = ns / 1000;

	hist[us < HIST_US ? us : HIST_US]++;
	if (ns > max_ns)
		max_ns = ns;
}

/* percentile - the latency (us) at or below which p of the samples lie. */
static double
percentile(uint64_t total, double p)
{
	uint64_t want = (uint64_t)((double)total * p + 0.999999), acc = 0;

	if (total == 0)
		return 0;
	if (want == 0)
		want = 1;
	for (size_t i = 0; i <= HIST_US; i++) {
		acc += hist[i];
		if (acc >= want)
			return i < HIST_US ? (double)i + 0.5 : (double)max_ns / 1000;
	}
	return (double)max_ns / 1000;
}

/* send_some - write what the socket takes of c's request; -1 on error. */
static int
send_some(struct conn *c)
{
	while (c->req_off < c->req_len) {
		ssize_t w = write(c->fd, c->req + c->req_off, c->req_len - c->req_off);

		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			return -1;
		}
		c->req_off += (size_t)w;
	}
	return 0;
}

/* main - parse the options, run the load, print the summary line. */
int
main(int argc, char **argv)
{
	const char *addr = NULL;
	unsigned nconn = 8;
	uint64_t count = 0;
	double secs = 0, warm = 0, deadline_s = 120;
	struct conn *conns;
	int ep, opt;
	uint64_t t0, tmeas = 0, tend = 0, hard, measured = 0, done_at = 0;
	bool measuring, issuing = true, failed = false;
	unsigned busy = 0;

	while ((opt = getopt(argc, argv, "a:c:n:t:w:k:r:T:")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'c': nconn = (unsigned)atoi(optarg); break;
		case 'n': count = strtoull(optarg, NULL, 10); break;
		case 't': secs = atof(optarg); break;
		case 'w': warm = atof(optarg); break;
		case 'k': nkeys = (unsigned)atoi(optarg); break;
		case 'r': nrcpts = (unsigned)atoi(optarg); break;
		case 'T': deadline_s = atof(optarg); break;
		default: usage();
		}
	}
	if (addr == NULL || nconn < 1 || nconn > CONN_MAX ||
	    (count == 0 && secs <= 0) || nkeys < 1 || nkeys > KEYS_MAX ||
	    deadline_s <= 0 || warm < 0)
		usage();
	signal(SIGPIPE, SIG_IGN);
	conns = calloc(nconn, sizeof(*conns));
	ep = epoll_create1(0);
	if (conns == NULL || ep < 0) {
		perror("policy_load");
		return 1;
	}
	for (unsigned i = 0; i < nconn; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &conns[i] };

		conns[i].id = i;
		conns[i].fd = connect_to(addr);
		if (conns[i].fd < 0) {
			fprintf(stderr, "policy_load: connect %s: %s\n", addr,
			    strerror(errno));
			return 1;
		}
		epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
	}
	t0 = now_ns();
	hard = t0 + (uint64_t)(deadline_s * 1e9);
	measuring = warm <= 0;
	if (measuring) {
		tmeas = t0;
		if (secs > 0)
			tend = tmeas + (uint64_t)(secs * 1e9);
	}
	for (;;) {
		struct epoll_event evs[CONN_MAX];
		uint64_t now = now_ns();
		int n;

		if (!measuring && now >= t0 + (uint64_t)(warm * 1e9)) {
			measuring = true;
			tmeas = now;
			if (secs > 0)
				tend = tmeas + (uint64_t)(secs * 1e9);
		}
		if (issuing && measuring &&
		    ((tend && now >= tend) || (count && measured >= count)))
			issuing = false;
		/* Start a request on every idle connection. */
		for (unsigned i = 0; i < nconn && issuing; i++) {
			struct conn *c = &conns[i];

			if (c->busy)
				continue;
			if (measuring && count && measured + busy >= count)
				break;
			build_request(c);
			c->busy = true;
			c->measured = measuring;
			c->reply_len = 0;
			c->sent_ns = now_ns();
			busy++;
			if (send_some(c) < 0) {
				errors++;
				failed = true;
				goto out;
			}
			if (c->req_off < c->req_len) {
				struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT,
				    .data.ptr = c };
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
			}
		}
		if (!issuing && busy == 0) {
			done_at = now_ns();
			break;
		}
		if (now >= hard) {
			fprintf(stderr, "policy_load: deadline of %.0f s passed\n",
			    deadline_s);
			failed = true;
			break;
		}
		n = epoll_wait(ep, evs, CONN_MAX, 100);
		if (n < 0 && errno != EINTR) {
			perror("policy_load: epoll_wait");
			failed = true;
			break;
		}
		for (int e = 0; e < n; e++) {
			struct conn *c = evs[e].data.ptr;

			if (evs[e].events & EPOLLOUT) {
				if (send_some(c) < 0) {
					errors++;
					failed = true;
					goto out;
				}
				if (c->req_off == c->req_len) {
					struct epoll_event ev = { .events = EPOLLIN,
					    .data.ptr = c };
					epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				}
			}
			if (!(evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				continue;
			for (;;) {
				ssize_t r = read(c->fd, c->reply + c->reply_len,
				    sizeof(c->reply) - 1 - c->reply_len);

				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					break;
				if (r <= 0) {
					fprintf(stderr, "policy_load: connection %u %s\n",
					    c->id, r == 0 ? "closed by the server" :
					    strerror(errno));
					errors++;
					failed = true;
					goto out;
				}
				c->reply_len += (size_t)r;
				c->reply[c->reply_len] = '\0';
				if (c->reply_len >= 2 &&
				    strcmp(c->reply + c->reply_len - 2, "\n\n") == 0)
					break;
				if (c->reply_len >= sizeof(c->reply) - 1) {
					fprintf(stderr, "policy_load: reply too long\n");
					errors++;
					failed = true;
					goto out;
				}
			}
			if (!c->busy || c->reply_len < 2 ||
			    strcmp(c->reply + c->reply_len - 2, "\n\n") != 0)
				continue;
			if (c->reply_len != strlen(c->reply) ||
			    strchr(c->reply, '\n') + 2 != c->reply + c->reply_len) {
				/* more than one reply, or garbage: not a valid
				 * answer to one outstanding request */
				fprintf(stderr, "policy_load: unexpected reply\n");
				errors++;
				failed = true;
				goto out;
			}
			if (c->measured) {
				record(now_ns() - c->sent_ns);
				if (!classify(c->reply, c->reply_len)) {
					fprintf(stderr, "policy_load: malformed reply\n");
					errors++;
					failed = true;
					goto out;
				}
				measured++;
			}
			c->busy = false;
			busy--;
		}
	}
out:
	if (done_at == 0)
		done_at = now_ns();
	{
		double el = tmeas && done_at > tmeas ? (double)(done_at - tmeas) / 1e9 : 0;

		printf("requests=%" PRIu64 " seconds=%.3f rps=%.0f p50_us=%.0f "
		    "p99_us=%.0f p999_us=%.0f max_us=%.0f dunno=%" PRIu64
		    " ok=%" PRIu64 " defer=%" PRIu64 " reject=%" PRIu64
		    " other=%" PRIu64 " errors=%" PRIu64 "\n",
		    measured, el, el > 0 ? (double)measured / el : 0,
		    percentile(measured, 0.50), percentile(measured, 0.99),
		    percentile(measured, 0.999), (double)max_ns / 1000,
		    actions[ACT_DUNNO], actions[ACT_OK], actions[ACT_DEFER],
		    actions[ACT_REJECT], actions[ACT_OTHER], errors);
	}
	for (unsigned i = 0; i < nconn; i++)
		if (conns[i].fd >= 0)
			close(conns[i].fd);
	free(conns);
	return failed || measured == 0 ? 1 : 0;
}
