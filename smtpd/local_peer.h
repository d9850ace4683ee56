/*
 * local_peer.h - who is at the other end of a connection accepted on a
 * local listener (server.listen mode local, elemta-sendmail's Unix
 * socket): the kernel's word for the peer's uid and pid (SO_PEERCRED)
 * and the uid's user name, which becomes the session's authenticated
 * identity (sasl_username).
 *
 * Called by server.c for each such connection.  Nothing the peer sends
 * is involved: the credentials are the ones the kernel recorded at
 * connect(2), so a local user cannot claim another's identity.
 */
#ifndef ELEMTA_SMTPD_LOCAL_PEER_H
#define ELEMTA_SMTPD_LOCAL_PEER_H

#include <sys/types.h>

#include "error.h"
#include "sasl.h"

struct local_peer {
	uid_t uid;
	pid_t pid;
	/* The uid's name from the password database (getpwuid_r); "#UID"
	 * for a uid without an entry, or whose name smtpd would not relay
	 * (sasl_name_valid), so a deleted user's cron job still gets its
	 * mail through under an identity no account can have. */
	char user[SASL_USER_MAX + 1];
};

/* local_peer_identify - the peer of the connected Unix socket fd.  0, or
 * -1 with err when the kernel gives no credentials. */
int local_peer_identify(int fd, struct local_peer *p, struct error *err);

/* local_peer_name - the name the session uses for uid: its password
 * entry's, else "#UID" (see struct local_peer). */
void local_peer_name(uid_t uid, char *out, size_t size);

#endif
