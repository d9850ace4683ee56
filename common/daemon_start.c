/*
 * daemon_start.c - a worker's start-up (contract in daemon_start.h), for
 * the daemons' main.c files.
 */
#include <signal.h>
#include <string.h>

#include "daemon_start.h"
#include "log.h"

/* daemon_start - see daemon_start.h. */
struct config *
daemon_start(const char *ident, const char *path, bool foreground)
{
	struct config_errors errs;
	struct config *cfg;

	log_init(ident, foreground, LOG_LEVEL_INFO);
	signal(SIGPIPE, SIG_IGN);
	memset(&errs, 0, sizeof(errs));
	cfg = config_load(path, &errs);
	if (cfg == NULL) {
		for (size_t i = 0; i < errs.count; i++)
			log_err("%s", errs.text[i]);
		if (errs.count == 0)
			log_err("%s: cannot load the configuration", path);
		return NULL;
	}
	log_init(ident, foreground, cfg->log.level);
	return cfg;
}
