/*
 * local_peer.c - the identity of a local listener's peer (see
 * local_peer.h).
 *
 * Called by server.c when a connection arrives on a mode local listener.
 * The password database is read with getpwuid_r (files, or whatever NSS
 * the host configures) by the unprivileged smtpd worker; only the name is
 * kept.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "local_peer.h"

/* local_peer_name - see local_peer.h. */
void
local_peer_name(uid_t uid, char *out, size_t size)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res != NULL &&
	    pw.pw_name[0] != '\0' && pw.pw_name[0] != '#' &&
	    strlen(pw.pw_name) < size &&
	    sasl_name_valid(pw.pw_name, strlen(pw.pw_name))) {
		str_copy(out, pw.pw_name, size);
		return;
	}
	snprintf(out, size, "#%lu", (unsigned long)uid);
}

/* local_peer_identify - see local_peer.h. */
int
local_peer_identify(int fd, struct local_peer *p, struct error *err)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	memset(p, 0, sizeof(*p));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		return error_set(err, "cannot read the peer's credentials: %s",
		    strerror(errno));
	if (len != sizeof(cred))
		return error_set(err, "cannot read the peer's credentials: "
		    "short answer");
	p->uid = cred.uid;
	p->pid = cred.pid;
	local_peer_name(cred.uid, p->user, sizeof(p->user));
	return 0;
}
