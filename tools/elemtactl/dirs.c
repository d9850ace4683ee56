/*
 * dirs.c - the directories elemtactl prepares before starting workers:
 * runtime_dir, the spool (tmp/, queue/, quarantine/) and the counter
 * table's directory, with their owners when running as root; and the
 * cleaning of spool tmp/ (messages of sessions that died mid-DATA).
 *
 * Called by supervisor.c at start, as root in production.  The spool and
 * counter directories are writable by the unprivileged workers, so their
 * contents are untrusted: nothing here follows a symbolic link inside them
 * (openat/unlinkat with O_NOFOLLOW, fchown on descriptors), and a file
 * with several hard links is never chowned (it could be /etc/shadow).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elemtactl.h"

#define CLEAN_DEPTH_MAX 16   /* spool tmp/ holds <id> files (depth 1) */

/* dirs_mkdir_one - mkdir path unless a directory is already there;
 * errors name target, the directory the caller wanted. */
static int dirs_mkdir_one(const char *path, mode_t mode, const char *target,
    struct error *err)
{
	struct stat st;
	int e;

	if (mkdir(path, mode) == 0)
		return 0;
	e = errno;
	if (e == EEXIST) {
		if (stat(path, &st) == -1)
			e = errno;
		else if (!S_ISDIR(st.st_mode))
			e = ENOTDIR;
		else
			return 0;
	}
	if (strcmp(path, target) == 0)
		return error_set(err, "cannot create directory %s: %s", target,
		    strerror(e));
	return error_set(err, "cannot create directory %s (at %s): %s", target,
	    path, strerror(e));
}

/* ctl_mkdir_p - see elemtactl.h. */
int ctl_mkdir_p(const char *path, mode_t mode, struct error *err)
{
	char buf[CONFIG_PATH_MAX];
	size_t len = str_copy(buf, path, sizeof(buf));

	if (len >= sizeof(buf) || len == 0)
		return error_set(err, "cannot create directory '%s': bad path",
		    path);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	/* Each missing parent in turn (0755: the workers may need to pass
	 * through it), then the directory itself with mode. */
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int rc = dirs_mkdir_one(buf, 0755, path, err);
		*p = '/';
		if (rc == -1)
			return -1;
	}
	return dirs_mkdir_one(buf, mode, path, err);
}

/* ctl_mkdir_p_parent - see elemtactl.h. */
int ctl_mkdir_p_parent(const char *path, struct error *err)
{
	char dir[CONFIG_PATH_MAX];
	char *slash;

	str_copy(dir, path, sizeof(dir));
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	return ctl_mkdir_p(dir, 0755, err);
}

/* ctl_dir_secure - see elemtactl.h. */
int ctl_dir_secure(const char *path, uid_t uid, gid_t gid, mode_t mode,
    struct error *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd == -1)
		return error_set(err, "cannot open directory %s: %s", path,
		    strerror(errno));
	if (fchown(fd, uid, gid) == -1 || fchmod(fd, mode) == -1) {
		int e = errno;

		close(fd);
		return error_set(err, "cannot set owner/mode of %s: %s", path,
		    strerror(e));
	}
	close(fd);
	return 0;
}

/* ctl_dir_chown_files - see elemtactl.h. */
int ctl_dir_chown_files(const char *path, uid_t uid, gid_t gid,
    struct error *err)
{
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (dfd == -1 || (d = fdopendir(dfd)) == NULL) {
		int e = errno;

		if (dfd != -1)
			close(dfd);
		return error_set(err, "cannot open directory %s: %s", path,
		    strerror(e));
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		int fd;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		fd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK
		    | O_NOCTTY | O_CLOEXEC);
		if (fd == -1)
			continue;       /* a link or a special file: not ours */
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1
		    && (st.st_uid != uid || st.st_gid != gid)
		    && fchown(fd, uid, gid) == -1 && rc == 0)
			rc = error_set(err, "cannot chown %s/%s: %s", path,
			    de->d_name, strerror(errno));
		close(fd);
	}
	closedir(d);
	return rc;
}

/* dirs_clean_at - remove the entries of the open directory dfd (which is
 * consumed; path names it in messages); adds the number of entries
 * removed from it to *removed; -1 when something could not be removed. */
static int dirs_clean_at(int dfd, const char *path, unsigned depth,
    long *removed, struct error *err)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int rc = 0;

	if (d == NULL) {
		int e = errno;

		close(dfd);
		return error_set(err, "cannot read directory %s: %s", path,
		    strerror(e));
	}
	while ((de = readdir(d)) != NULL) {
		char sub[CONFIG_PATH_MAX];
		struct stat st;
		long ignored = 0;
		int sfd;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			continue;       /* vanished */
		if (S_ISDIR(st.st_mode)) {
			if (depth >= CLEAN_DEPTH_MAX) {
				rc = error_set(err, "cannot remove %s: nested too deeply",
				    sub);
				continue;
			}
			sfd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY
			    | O_NOFOLLOW | O_CLOEXEC);
			if (sfd == -1) {
				rc = error_set(err, "cannot open %s: %s", sub,
				    strerror(errno));
				continue;
			}
			if (dirs_clean_at(sfd, sub, depth + 1, &ignored, err) == -1) {
				rc = -1;
				continue;
			}
			if (unlinkat(dfd, de->d_name, AT_REMOVEDIR) == -1) {
				rc = error_set(err, "cannot remove %s: %s", sub,
				    strerror(errno));
				continue;
			}
		} else if (unlinkat(dfd, de->d_name, 0) == -1) {
			rc = error_set(err, "cannot remove %s: %s", sub,
			    strerror(errno));
			continue;
		}
		(*removed)++;
	}
	closedir(d);
	return rc;
}

/* ctl_dir_clean - see elemtactl.h. */
int ctl_dir_clean(const char *path, long *removed, struct error *err)
{
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	*removed = 0;
	if (dfd == -1)
		return error_set(err, "cannot open directory %s: %s", path,
		    strerror(errno));
	return dirs_clean_at(dfd, path, 0, removed, err);
}
