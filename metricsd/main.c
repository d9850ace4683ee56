/*
 * elemta-metricsd - serves GET /metrics, the Prometheus text exposition
 * of Elemta's counters (common/metrics_collect.h), over HTTP with
 * libmicrohttpd.
 *
 * Started by elemtactl as the supervised worker of kind "metrics" when
 * metrics.listen is set: elemtactl binds the socket and passes it as the
 * descriptor named by ELEMTA_METRICS_FD; the process already runs as
 * policyd.user (it opens the counter table read-only, which only that
 * user may read).  `elemta-metricsd -c FILE --bind` binds metrics.listen
 * itself, for standalone use; it then runs as the invoking user.
 *
 * One process, one internal polling thread of libmicrohttpd that answers
 * one request at a time; the main thread only waits for SIGTERM/SIGINT.
 * Every scrape opens the table read-only (an LMDB reader never blocks the
 * policyd writers; a table moved aside or resized is simply reopened),
 * reads the smtpd stats files and formats the exposition.
 *
 * Untrusted input: HTTP requests from whoever reaches metrics.listen.
 * libmicrohttpd parses them; this file looks only at the method and the
 * path, answers GET/HEAD /metrics, 404 elsewhere, 405 for other methods,
 * and bounds connections and their idle time.  Nothing a client sends
 * is ever logged unescaped.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <microhttpd.h>
#include <yaml.h>

#include "config.h"
#include "daemon_start.h"
#include "counter.h"
#include "listen.h"
#include "log.h"
#include "metrics_collect.h"
#include "strbuf.h"
#include "version.h"

#define METRICSD_CONN_LIMIT 32
#define METRICSD_CONN_PER_IP 8
#define METRICSD_CONN_TIMEOUT_S 10
#define METRICSD_WARN_EVERY_S 60

/* What the request handler needs (read-only after start-up, but for the
 * warning throttle, which only the polling thread touches). */
struct metricsd {
	struct config *cfg;
	time_t last_warn;
	bool table_down;
};

/* usage - the synopsis on f. */
static void
usage(FILE *f)
{
	fprintf(f, "usage: elemta-metricsd [-c FILE] [--bind] | --version\n");
}

/* metricsd_mhd_log - libmicrohttpd's error messages into our log. */
static void metricsd_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void
metricsd_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512], esc[1024];
	size_t n;

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_warn("http: %s", log_escape(esc, sizeof(esc), buf, n));
}

/* metricsd_reply - queue a response with a body of text (copied). */
static enum MHD_Result
metricsd_reply(struct MHD_Connection *conn, unsigned status,
    const char *text, const char *allow)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text),
	    (void *)text, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/plain; charset=utf-8");
	if (allow != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

/* metricsd_scrape - the exposition into out; the table is opened for
 * this scrape only.  A table that cannot be read is reported in the
 * exposition (elemta_counters_up 0) and logged, at most once a minute
 * while it lasts. */
static void
metricsd_scrape(struct metricsd *md, struct strbuf *out)
{
	struct counter_store *cs = NULL;
	struct error err = { "" };
	time_t now = time(NULL);
	int rc;

	if (counter_store_open_config(md->cfg, true, &cs, &err) != 0)
		cs = NULL;
	rc = metrics_collect(md->cfg, cs, NULL, out, cs == NULL ? NULL : &err);
	if (cs != NULL)
		counter_store_close(cs);
	if (rc == 0) {
		if (md->table_down)
			log_info("counter table readable again");
		md->table_down = false;
		return;
	}
	if (!md->table_down || now - md->last_warn >= METRICSD_WARN_EVERY_S) {
		log_warn("counter table: %s (exposition without it)", err.text);
		md->last_warn = now;
	}
	md->table_down = true;
}

/* metricsd_handle - libmicrohttpd's request callback. */
static enum MHD_Result
metricsd_handle(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct metricsd *md = cls;
	struct strbuf out = STRBUF_INIT(METRICS_OUTPUT_MAX);
	struct MHD_Response *r;
	enum MHD_Result rc;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return metricsd_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "Method not allowed: use GET\n", "GET, HEAD");
	if (strcmp(url, "/") == 0)
		return metricsd_reply(conn, MHD_HTTP_OK,
		    "Elemta metrics: GET /metrics\n", NULL);
	if (strcmp(url, "/metrics") != 0)
		return metricsd_reply(conn, MHD_HTTP_NOT_FOUND,
		    "Not found: the metrics are at /metrics\n", NULL);

	metricsd_scrape(md, &out);
	/* The buffer is malloc'd (xrealloc): libmicrohttpd frees it. */
	r = MHD_create_response_from_buffer(out.len, out.data != NULL ?
	    out.data : (void *)"", out.data != NULL ? MHD_RESPMEM_MUST_FREE :
	    MHD_RESPMEM_PERSISTENT);
	if (r == NULL) {
		strbuf_free(&out);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    METRICS_CONTENT_TYPE);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return rc;
}

/* metricsd_bind - --bind: listen on metrics.listen ourselves. */
static int
metricsd_bind(const struct config *cfg, struct error *err)
{
	if (cfg->metrics.listen[0] == '\0')
		return error_set(err, "metrics.listen is not set in %s",
		    cfg->file);
	return listen_tcp(cfg->metrics.endpoint.host,
	    cfg->metrics.endpoint.port, cfg->metrics.listen, err);
}

/* metricsd_inherited - the listening socket elemtactl passed. */
static int
metricsd_inherited(struct error *err)
{
	int fd = -1;
	int has = listen_inherited("ELEMTA_METRICS_FD", &fd, err);

	if (has == 0)
		return error_set(err, "no listening socket: ELEMTA_METRICS_FD is "
		    "not set (run under elemtactl, or pass --bind)");
	return has < 0 ? -1 : fd;
}

/* main - config, socket, the HTTP daemon, then wait for a stop signal. */
int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "bind", no_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = CONFIG_DEFAULT_FILE;
	struct metricsd md;
	struct MHD_Daemon *d;
	struct error err;
	bool bind_self = false;
	sigset_t set;
	int ch, fd, sig = 0;

	while ((ch = getopt_long(argc, argv, "c:bh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'b':
			bind_self = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V': {
			const struct version_lib libs[] = {
				VERSION_LIB_LMDB, VERSION_LIB_LIBYAML,
				VERSION_LIB_MICROHTTPD,
			};

			version_print(stdout, "elemta-metricsd", libs,
			    sizeof(libs) / sizeof(libs[0]));
			return 0;
		}
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	md.cfg = daemon_start("elemta-metricsd", path,
	    log_env_foreground() || bind_self);
	md.last_warn = 0;
	md.table_down = false;
	if (md.cfg == NULL)
		return 1;
	fd = bind_self ? metricsd_bind(md.cfg, &err) : metricsd_inherited(&err);
	if (fd < 0) {
		log_err("%s", err.text);
		config_free(md.cfg);
		return 1;
	}
	if (bind_self && geteuid() == 0)
		log_warn("running as root; under elemtactl this worker runs as "
		    "policyd.user");

	/* Blocked before the polling thread exists, so it inherits the
	 * mask and the signals reach sigwait below. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
	    0, NULL, NULL, metricsd_handle, &md,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICSD_CONN_LIMIT,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)METRICSD_CONN_PER_IP,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICSD_CONN_TIMEOUT_S,
	    MHD_OPTION_EXTERNAL_LOGGER, metricsd_mhd_log, (void *)NULL,
	    MHD_OPTION_END);
	if (d == NULL) {
		log_err("cannot start the HTTP server on descriptor %d", fd);
		close(fd);
		config_free(md.cfg);
		return 1;
	}
	log_info("serving /metrics on %s", md.cfg->metrics.listen[0] ?
	    md.cfg->metrics.listen : "the inherited socket");

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_info("SIGHUP ignored: a reload replaces this worker");
			continue;
		}
		break;
	}
	log_info("signal %d: stopping", sig);
	MHD_stop_daemon(d);
	config_free(md.cfg);
	return 0;
}
