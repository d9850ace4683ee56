"""Privilege separation (issue 9): started as root, elemtactl is the only
root process of the instance; smtpd workers run as server.user and policyd
workers as policyd.user, with no supplementary group but their own and
no capabilities; the smtpd user can open neither the users file nor the
counter table; the spool belongs to the smtpd user and the counter table
to the policyd user.

Skipped unless run as root with both users present (scripts/setup
creates them).  File access is tried with a worker's own credentials:
setpriv with the uid and gid read from the worker's /proc/PID/status.
"""
import os
import pwd
import stat
import subprocess

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="privilege separation needs root")

SMTPD_USER = "elemta"
POLICYD_USER = "elemta-policy"
# "secret", sha512-crypt.
HASH = "$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG."


def _user(name):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pytest.skip("user %s missing (run scripts/setup as root)" % name)


def proc_creds(pid):
    """Uid, Gid (real, effective, saved, fs), Groups and CapEff/CapPrm."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid"):
                out[k] = [int(x) for x in v.split()]
            elif k == "Groups":
                out[k] = [int(x) for x in v.split()]
            elif k in ("CapEff", "CapPrm", "PPid"):
                out[k] = int(v.strip(), 16) if k != "PPid" else int(v)
    return out


def descendants(root):
    """Every live process below root (by PPid)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            children.setdefault(proc_creds(int(d))["PPid"], []).append(int(d))
        except (FileNotFoundError, ProcessLookupError, KeyError):
            pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def as_user(uid, gid, *cmd):
    return subprocess.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid,
                           "--clear-groups"] + list(cmd),
                          capture_output=True, text=True, timeout=10)


@pytest.fixture
def instance(make_elemta):
    smtpd_pw, policyd_pw = _user(SMTPD_USER), _user(POLICYD_USER)
    e = make_elemta(start=False, overrides={"auth": {"users_file": "users"}})
    users = e.path("users")
    with open(users, "w") as f:
        f.write("alice:%s\n" % HASH)
    # The operator's part (README): the users file is the policyd user's.
    os.chown(users, policyd_pw.pw_uid, policyd_pw.pw_gid)
    os.chmod(users, 0o600)
    e.start()
    from elemta import send_message
    r = send_message(e.port, "a@example.org", ["b@example.com"],
                     b"Subject: privsep\r\n\r\nhello\r\n")
    assert r[-1][:2] == ("eom", 250), r
    return e, smtpd_pw, policyd_pw


def test_workers_run_as_their_users_without_privileges(instance):
    e, smtpd_pw, policyd_pw = instance
    rows = [r for r in e.status_rows() if r["state"] == "running"]
    assert sorted(r["kind"] for r in rows) == ["policyd", "policyd", "queued",
                                                "smtpd", "smtpd"], rows
    for r in rows:
        # elemta-queued owns the spool with smtpd: the same user.
        pw = smtpd_pw if r["kind"] in ("smtpd", "queued") else policyd_pw
        c = proc_creds(r["pid"])
        assert c["Uid"] == [pw.pw_uid] * 4, (r, c)
        assert c["Gid"] == [pw.pw_gid] * 4, (r, c)
        assert set(c["Groups"]) <= {pw.pw_gid}, (r, c)     # its own group at most
        assert c["CapEff"] == 0 and c["CapPrm"] == 0, (r, c)
    assert smtpd_pw.pw_uid != policyd_pw.pw_uid


def test_elemtactl_is_the_only_root_process(instance):
    e, _, _ = instance
    assert proc_creds(e.proc.pid)["Uid"][1] == 0
    below = descendants(e.proc.pid)
    workers = {r["pid"] for r in e.status_rows() if r["state"] == "running"}
    assert workers <= set(below), (workers, below)
    root = []
    for p in below:
        try:
            if 0 in proc_creds(p)["Uid"]:
                with open("/proc/%d/cmdline" % p, "rb") as f:
                    root.append((p, f.read().replace(b"\0", b" ")))
        except FileNotFoundError:
            pass
    assert root == [], root


def test_smtpd_user_cannot_open_users_file_or_counter_table(instance):
    e, smtpd_pw, policyd_pw = instance
    pid = e.worker_pids("smtpd")[0]
    c = proc_creds(pid)
    uid, gid = c["Uid"][1], c["Gid"][1]
    users = e.path("users")
    counters = e.path("counters")
    for path in (users, os.path.join(counters, "data.mdb"), os.path.join(counters, "lock.mdb")):
        r = as_user(uid, gid, "cat", path)
        assert r.returncode != 0 and "Permission denied" in r.stderr, (path, r)
    r = as_user(uid, gid, "ls", counters)
    assert r.returncode != 0 and "Permission denied" in r.stderr, r
    # The policyd user can (the same check, so the test is not vacuous).
    for path in (users, os.path.join(counters, "data.mdb")):
        r = as_user(policyd_pw.pw_uid, policyd_pw.pw_gid, "head", "-c", "1", path)
        assert r.returncode == 0, (path, r)
    assert "users loaded" in e.log()
    # Owners and modes behind it.
    st = os.stat(counters)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (policyd_pw.pw_uid, 0o700)
    for f in os.listdir(counters):
        st = os.lstat(os.path.join(counters, f))
        assert st.st_uid == policyd_pw.pw_uid and not st.st_mode & 0o077, (f, st)
    st = os.stat(users)
    assert st.st_uid == policyd_pw.pw_uid and not st.st_mode & 0o077


def test_spool_belongs_to_the_smtpd_user(instance):
    e, smtpd_pw, policyd_pw = instance
    top = os.stat(e.path("spool"))
    assert top.st_uid == 0 and not top.st_mode & 0o022, "spool/ must stay root's"
    for sub in ("tmp", "queue", "quarantine"):
        st = os.stat(e.path("spool", sub))
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == \
            (smtpd_pw.pw_uid, smtpd_pw.pw_gid, 0o700), (sub, st)
    (qid,) = e.queued()
    st = os.stat(e.path("spool", "queue", qid))
    assert st.st_uid == smtpd_pw.pw_uid and not st.st_mode & 0o007, (qid, st)
    # The policyd user cannot read queued mail.
    r = as_user(policyd_pw.pw_uid, policyd_pw.pw_gid, "ls", e.path("spool", "queue"))
    assert r.returncode != 0 and "Permission denied" in r.stderr, r


def test_counter_table_check_never_parses_as_root(make_elemta):
    """elemtactl reads an existing counter table at start (corruption
    check) as the owner of data.mdb, never as root: a data.mdb that the
    policyd user turned into a link to a root-only file is refused with an
    error naming it, not opened by root."""
    _, policyd_pw = _user(SMTPD_USER), _user(POLICYD_USER)
    e = make_elemta()
    e.stop()
    data = e.path("counters", "data.mdb")
    os.unlink(data)
    os.symlink("/etc/shadow", data)
    os.lchown(data, policyd_pw.pw_uid, policyd_pw.pw_gid)
    r = e.ctl("start", "--foreground", timeout=30)
    assert r.returncode != 0, r
    assert any(data in l and "Permission denied" in l for l in r.stderr.splitlines()), r.stderr
    assert os.path.islink(data)


def test_root_owned_lock_file_does_not_block_the_start(make_elemta):
    """A lock.mdb left root's (elemta-stat run as root while stopped): the
    start-up check, running as the table's owner, still reads the table,
    and elemtactl hands the file back to the policyd user."""
    _, policyd_pw = _user(SMTPD_USER), _user(POLICYD_USER)
    e = make_elemta()
    e.stop()
    lock = e.path("counters", "lock.mdb")
    os.chown(lock, 0, 0)
    os.chmod(lock, 0o600)
    e.start()
    assert "is corrupt" not in e.log()
    assert os.stat(lock).st_uid == policyd_pw.pw_uid
