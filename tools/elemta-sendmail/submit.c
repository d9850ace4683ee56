/*
 * submit.c - elemta-sendmail's SMTP client side: one message to smtpd's
 * local listener (a Unix socket), and the -bs relay (see sendmail.h).
 *
 * Called by main.c.  The server's replies are untrusted only in length:
 * each line is bounded and shown on one line of stderr.  A refusal at
 * any step ends the transaction (a recipient refused is not dropped
 * silently while the others go on): the caller sees the reply and an
 * exit status, and the message is its own to retry.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "sendmail.h"

#define SMTP_LINE_MAX 2048        /* one reply line                     */
#define SMTP_TIMEOUT_S 600        /* per reply: smtpd's data_timeout    */
#define SMTP_CHUNK (64 * 1024)    /* DATA is written in pieces this big */

struct smtp {
	int fd;
	bool verbose;
	char in[SMTP_LINE_MAX * 2];
	size_t in_len;
	int code;                     /* of the last reply; 0: none        */
	char reply[SMTP_LINE_MAX];    /* its lines, joined by "; "          */
	bool eightbit_ok, utf8_ok;    /* EHLO offered 8BITMIME, SMTPUTF8   */
};

/* sm_exit_for_reply - see sendmail.h. */
int
sm_exit_for_reply(int code, const char *text)
{
	if (code >= 500 && code <= 599) {
		if (code == 501 || code == 553 ||
		    strncmp(text, "5.6.", 4) == 0 ||
		    strncmp(text, "5.3.4", 5) == 0)
			return EX_DATAERR;
		return EX_UNAVAILABLE;
	}
	return EX_TEMPFAIL;
}

/* smtp_connect - a connected socket to path; -1 with the exit status in
 * *status and the reason in err. */
static int
smtp_connect(const char *path, int *status, struct error *err)
{
	struct sockaddr_un sun;
	struct timeval tv = { SMTP_TIMEOUT_S, 0 };
	int fd, e;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	*status = EX_TEMPFAIL;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		*status = EX_CONFIG;
		return error_set(err, "socket path %s is too long", path);
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return error_set(err, "cannot create a socket: %s",
		    strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		e = errno;
		close(fd);
		if (e == ENOENT || e == ECONNREFUSED)
			return error_set(err, "Elemta is not running (nothing "
			    "listens on %s); try again later", path);
		if (e == EACCES || e == EPERM) {
			*status = EX_NOPERM;
			return error_set(err, "permission denied on %s (the local "
			    "listener's socket_mode or socket_group leave this "
			    "user out)", path);
		}
		return error_set(err, "cannot connect to %s: %s", path,
		    strerror(e));
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* smtp_send - all of data; -1 when the connection is gone. */
static int
smtp_send(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* smtp_line - the next reply line (without CRLF) into line; -1 when the
 * connection ended, failed or timed out first. */
static int
smtp_line(struct smtp *c, char *line, size_t size)
{
	for (;;) {
		char *nl = memchr(c->in, '\n', c->in_len);
		ssize_t n;

		if (nl != NULL || c->in_len == sizeof(c->in)) {
			size_t ll = nl != NULL ? (size_t)(nl - c->in) : c->in_len;
			size_t used = nl != NULL ? ll + 1 : ll;

			if (ll > 0 && c->in[ll - 1] == '\r')
				ll--;
			if (ll >= size)
				ll = size - 1;
			memcpy(line, c->in, ll);
			line[ll] = '\0';
			memmove(c->in, c->in + used, c->in_len - used);
			c->in_len -= used;
			return 0;
		}
		n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c->in_len += (size_t)n;
	}
}

/* smtp_reply - read one (multi-line) reply into c->code and c->reply;
 * -1 when none came. */
static int
smtp_reply(struct smtp *c)
{
	char line[SMTP_LINE_MAX];

	c->code = 0;
	c->reply[0] = '\0';
	for (;;) {
		size_t have = strlen(c->reply);

		if (smtp_line(c, line, sizeof(line)) < 0)
			return -1;
		if (c->verbose)
			fprintf(stderr, "<<< %s\n", line);
		if (strlen(line) < 3 || line[0] < '2' || line[0] > '5' ||
		    line[1] < '0' || line[1] > '9' || line[2] < '0' ||
		    line[2] > '9' || (line[3] != ' ' && line[3] != '-' &&
		    line[3] != '\0'))
			return -1;
		if (c->code == 0)
			c->code = atoi(line);
		if (strlen(line) > 4 && strncasecmp(line + 4, "8BITMIME", 8) == 0)
			c->eightbit_ok = true;
		if (strlen(line) > 4 && strncasecmp(line + 4, "SMTPUTF8", 8) == 0)
			c->utf8_ok = true;
		snprintf(c->reply + have, sizeof(c->reply) - have, "%s%s",
		    have > 0 ? "; " : "", have > 0 && line[3] != '\0' ?
		    line + 4 : line);
		if (line[3] != '-')
			return 0;
	}
}

/* smtp_command - send one command line, read its reply; -1 when the
 * connection is gone. */
static int
smtp_command(struct smtp *c, const char *cmd)
{
	char buf[SM_ADDRESS_MAX + 128];
	int n = snprintf(buf, sizeof(buf), "%s\r\n", cmd);

	if (c->verbose)
		fprintf(stderr, ">>> %s\n", cmd);
	if (n < 0 || (size_t)n >= sizeof(buf) ||
	    smtp_send(c->fd, buf, (size_t)n) < 0)
		return -1;
	return smtp_reply(c);
}

/* smtp_refused - report a refusal (or a lost connection) in one line;
 * the exit status. */
static int
smtp_refused(const struct smtp *c, int rc, const char *step)
{
	if (rc < 0) {
		fprintf(stderr, "%s: message not sent: the connection to Elemta "
		    "was lost (at %s); try again later\n", SM_PROG, step);
		return EX_TEMPFAIL;
	}
	fprintf(stderr, "%s: message not sent: %s (in reply to %s)\n",
	    SM_PROG, c->reply, step);
	return sm_exit_for_reply(c->code, c->reply + (strlen(c->reply) > 4 ?
	    4 : strlen(c->reply)));
}

/* smtp_data - msg as DATA: CRLF line ends, lines starting with "."
 * doubled, then the final ".". */
static int
smtp_data(struct smtp *c, const char *msg, size_t len)
{
	struct strbuf out = STRBUF_INIT(SMTP_CHUNK * 2);
	size_t pos = 0;
	int rc = 0;

	while (pos < len && rc == 0) {
		const char *line = msg + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t ll = nl != NULL ? (size_t)(nl - line) : len - pos;

		pos += ll + (nl != NULL ? 1 : 0);
		/* A long line goes through in pieces; only its start may need
		 * the extra dot. */
		if (ll > 0 && line[0] == '.')
			strbuf_append(&out, ".", 1);
		while (ll > 0 && rc == 0) {
			size_t piece = ll < SMTP_CHUNK ? ll : SMTP_CHUNK;

			strbuf_append(&out, line, piece);
			line += piece;
			ll -= piece;
			if (out.len >= SMTP_CHUNK) {
				rc = smtp_send(c->fd, out.data, out.len);
				strbuf_reset(&out);
			}
		}
		strbuf_append(&out, "\r\n", 2);
	}
	if (rc == 0)
		strbuf_append(&out, ".\r\n", 3);
	if (rc == 0 && c->verbose)
		fprintf(stderr, ">>> (%zu bytes of message) .\n", len);
	if (rc == 0)
		rc = smtp_send(c->fd, out.data, out.len);
	strbuf_free(&out);
	return rc < 0 ? -1 : smtp_reply(c);
}

/* sm_has_8bit - any byte over 127 in data? */
static bool
sm_has_8bit(const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)data[i] > 127)
			return true;
	return false;
}

/* sm_submit - see sendmail.h. */
int
sm_submit(const char *socket_path, const char *sender,
    const struct sm_rcpts *rcpts, const char *msg, size_t len, bool verbose)
{
	struct smtp c;
	struct error err;
	char cmd[SM_ADDRESS_MAX + 64];
	bool utf8 = sm_has_8bit(sender, strlen(sender));
	int status, rc;

	memset(&c, 0, sizeof(c));
	c.verbose = verbose;
	c.fd = smtp_connect(socket_path, &status, &err);
	if (c.fd < 0) {
		fprintf(stderr, "%s: message not sent: %s\n", SM_PROG, err.text);
		return status;
	}
	for (size_t i = 0; i < rcpts->n; i++)
		utf8 |= sm_has_8bit(rcpts->v[i], strlen(rcpts->v[i]));
	if ((rc = smtp_reply(&c)) < 0 || c.code != 220) {
		status = smtp_refused(&c, rc, "the greeting");
		goto out;
	}
	if ((rc = smtp_command(&c, "EHLO localhost")) < 0 || c.code != 250) {
		status = smtp_refused(&c, rc, "EHLO");
		goto out;
	}
	snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>%s%s", sender,
	    c.eightbit_ok && sm_has_8bit(msg, len) ? " BODY=8BITMIME" : "",
	    c.utf8_ok && utf8 ? " SMTPUTF8" : "");
	if ((rc = smtp_command(&c, cmd)) < 0 || c.code != 250) {
		status = smtp_refused(&c, rc, "MAIL FROM");
		goto out;
	}
	for (size_t i = 0; i < rcpts->n; i++) {
		char step[SM_ADDRESS_MAX + 16];

		snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>", rcpts->v[i]);
		if ((rc = smtp_command(&c, cmd)) < 0 ||
		    (c.code != 250 && c.code != 251)) {
			snprintf(step, sizeof(step), "RCPT TO:<%s>", rcpts->v[i]);
			status = smtp_refused(&c, rc, step);
			goto out;
		}
	}
	if ((rc = smtp_command(&c, "DATA")) < 0 || c.code != 354) {
		status = smtp_refused(&c, rc, "DATA");
		goto out;
	}
	if ((rc = smtp_data(&c, msg, len)) < 0) {
		/* Sent, never confirmed: not delivered as far as we know. */
		fprintf(stderr, "%s: message not confirmed: the connection to "
		    "Elemta was lost before its reply to the message; try "
		    "again later\n", SM_PROG);
		status = EX_TEMPFAIL;
		goto out;
	}
	if (c.code != 250) {
		status = smtp_refused(&c, rc, "the message");
		goto out;
	}
	status = EX_OK;
	(void)smtp_command(&c, "QUIT");
out:
	close(c.fd);
	return status;
}

/* relay_copy - move what fd `from` has to fd `to`; 0 at EOF, -1 on a
 * failure, else the bytes moved. */
static ssize_t
relay_copy(int from, int to)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof(buf));

	if (n < 0 && errno == EINTR)
		return 1;
	if (n <= 0)
		return n;
	for (ssize_t off = 0; off < n; ) {
		ssize_t w = write(to, buf + off, (size_t)(n - off));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += w;
	}
	return n;
}

/* sm_relay - see sendmail.h. */
int
sm_relay(const char *socket_path)
{
	struct error err;
	struct pollfd pfd[2];
	int status, fd = smtp_connect(socket_path, &status, &err);
	bool in_open = true;

	if (fd < 0) {
		printf("421 4.3.0 %s: %s\r\n", SM_PROG, err.text);
		fflush(stdout);
		fprintf(stderr, "%s: %s\n", SM_PROG, err.text);
		return status;
	}
	for (;;) {
		ssize_t n;

		pfd[0].fd = fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = in_open ? STDIN_FILENO : -1;
		pfd[1].events = POLLIN;
		n = poll(pfd, 2, SMTP_TIMEOUT_S * 1000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;          /* idle past the server's own timeout */
		if (pfd[0].revents != 0) {
			n = relay_copy(fd, STDOUT_FILENO);
			if (n <= 0) {
				close(fd);
				return n == 0 ? EX_OK : EX_IOERR;
			}
		}
		if (in_open && pfd[1].revents != 0) {
			n = relay_copy(STDIN_FILENO, fd);
			if (n <= 0) {
				in_open = false;
				shutdown(fd, SHUT_WR);
			}
		}
	}
	close(fd);
	return EX_TEMPFAIL;
}
