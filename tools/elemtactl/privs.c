/*
 * privs.c - the worker users and the privilege drop.
 *
 * Only elemtactl runs as root (DESIGN.md): it resolves server.user (smtpd)
 * and policyd.user (policyd) once at start, and each forked worker child
 * drops to its user before execve with one fixed sequence, the same as
 * OpenSMTPD's: setgroups to the user's own group only, setresgid,
 * setresuid, then proof that root cannot be regained.  Any failure is
 * fatal for that child: a worker must never run with more privilege than
 * intended.  Started as non-root, nothing is dropped (development mode).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "elemtactl.h"

/* privs_lookup - getpwnam into u; key names the config setting. */
static int privs_lookup(const char *name, const char *key,
    struct ctl_user *u, struct error *err)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(name);
	if (pw == NULL) {
		if (errno != 0 && errno != ENOENT && errno != ESRCH)
			return error_set(err, "cannot look up user '%s' (%s): %s",
			    name, key, strerror(errno));
		return error_set(err, "user '%s' (%s) does not exist; create it "
		    "(scripts/setup does) or set %s", name, key, key);
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0)
		return error_set(err, "%s '%s' has uid or gid 0; workers must not "
		    "run as root", key, name);
	if (str_copy(u->name, pw->pw_name, sizeof(u->name)) >= sizeof(u->name))
		return error_set(err, "user name '%s' too long", name);
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	return 0;
}

/* ctl_users_resolve - see elemtactl.h. */
int ctl_users_resolve(const struct config *cfg, struct ctl_users *users,
    struct error *err)
{
	memset(users, 0, sizeof(*users));
	users->root = geteuid() == 0;
	if (users->root) {
		if (privs_lookup(cfg->server.user, "server.user", &users->smtpd,
		    err) == -1)
			return -1;
		return privs_lookup(cfg->policyd.user, "policyd.user",
		    &users->policyd, err);
	}

	/* Development mode: everything runs as the invoking user. */
	struct passwd *pw = getpwuid(geteuid());

	if (pw)
		str_copy(users->smtpd.name, pw->pw_name, sizeof(users->smtpd.name));
	else
		snprintf(users->smtpd.name, sizeof(users->smtpd.name), "%lu",
		    (unsigned long)geteuid());
	users->smtpd.uid = geteuid();
	users->smtpd.gid = getegid();
	users->policyd = users->smtpd;
	return 0;
}

/* ctl_privs_drop - see elemtactl.h. */
int ctl_privs_drop(const struct ctl_user *u, char *msg, size_t size)
{
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;

	if (setgroups(1, &u->gid) == -1) {
		snprintf(msg, size, "setgroups(%lu): %s", (unsigned long)u->gid,
		    strerror(errno));
		return -1;
	}
	if (setresgid(u->gid, u->gid, u->gid) == -1) {
		snprintf(msg, size, "setresgid(%lu): %s", (unsigned long)u->gid,
		    strerror(errno));
		return -1;
	}
	if (setresuid(u->uid, u->uid, u->uid) == -1) {
		snprintf(msg, size, "setresuid(%lu): %s", (unsigned long)u->uid,
		    strerror(errno));
		return -1;
	}

	/* Verify: every id is the target's and root is out of reach. */
	if (getresuid(&ruid, &euid, &suid) == -1
	    || getresgid(&rgid, &egid, &sgid) == -1
	    || ruid != u->uid || euid != u->uid || suid != u->uid
	    || rgid != u->gid || egid != u->gid || sgid != u->gid
	    || getuid() != u->uid || geteuid() != u->uid) {
		snprintf(msg, size, "privilege drop to %s incomplete", u->name);
		return -1;
	}
	if (setuid(0) != -1 || seteuid(0) != -1 || setgid(0) != -1) {
		snprintf(msg, size, "root privileges could be regained after "
		    "dropping to %s", u->name);
		return -1;
	}
	return 0;
}

/* ctl_privs_check_access - see elemtactl.h. */
int ctl_privs_check_access(const struct ctl_user *u,
    const struct ctl_access *items, size_t count, struct error *err)
{
	char msg[ERROR_TEXT_MAX];
	int pipefd[2], status;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) == -1)
		return error_set(err, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid == -1) {
		close(pipefd[0]);
		close(pipefd[1]);
		return error_set(err, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		/* access(2) checks with the real ids: after the drop, exactly
		 * what the worker will be allowed (ACLs and parents included). */
		close(pipefd[0]);
		if (ctl_privs_drop(u, msg, sizeof(msg)) == 0) {
			msg[0] = '\0';
			for (size_t i = 0; i < count; i++) {
				if (items[i].path[0] == '\0'
				    || access(items[i].path, items[i].mode) == 0)
					continue;
				snprintf(msg, sizeof(msg), "user %s cannot %s %s '%s': %s",
				    u->name, items[i].mode & W_OK ? "write to" : items[i].mode
				    & R_OK ? "read" : "reach", items[i].what, items[i].path,
				    strerror(errno));
				break;
			}
		}
		if (msg[0] != '\0' && write(pipefd[1], msg, strlen(msg)) < 0)
			_exit(2);
		_exit(0);
	}
	close(pipefd[1]);
	while (got < sizeof(msg) - 1) {
		n = read(pipefd[0], msg + got, sizeof(msg) - 1 - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	msg[got] = '\0';
	if (got > 0)
		return error_set(err, "%s", msg);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return error_set(err, "cannot check file access as user %s",
		    u->name);
	return 0;
}
