/*
 * version.c - the text of every program's `--version`.
 *
 * Called by the main() of elemtactl, elemta-smtpd, elemta-policyd,
 * elemta-stat and elemta-metricsd with the libraries each of them links
 * (see version.h for why the caller supplies them).
 */
#include <string.h>

#include "elemta/plugin.h"
#include "version.h"

/* version_print - see version.h. */
void
version_print(FILE *out, const char *program, const struct version_lib *libs,
    size_t count)
{
	fprintf(out, "%s (Elemta) %s\n", program, ELEMTA_VERSION);
	/* major.minor: a plugin built against minor N loads here when the
	 * major is the same and this minor at least N (plugin.h). */
	fprintf(out, "plugin ABI %u.%u\n", (unsigned)ELEMTA_PLUGIN_ABI_VERSION,
	    (unsigned)ELEMTA_PLUGIN_ABI_MINOR);
	for (size_t i = 0; i < count; i++) {
		const char *v = libs[i].version != NULL ? libs[i].version : "?";
		size_t n = strlen(libs[i].name);

		/* LMDB and OpenSSL name themselves in their version text. */
		if (strncmp(v, libs[i].name, n) == 0 && v[n] == ' ')
			v += n + 1;
		fprintf(out, "%s %s\n", libs[i].name, v);
	}
}
