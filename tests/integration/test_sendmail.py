"""elemta-sendmail and the `local` listener (issue 21).

One Elemta with a local listener (a Unix socket) and a rate limit of 3
messages a minute per sasl_username serves the module; two unprivileged
users, created here with useradd and removed at the end, run
elemta-sendmail through runuser.  Each test checks what lands in the
queue (the envelope's auth-user is the submitting user's name) or the
exit status and the one line of stderr a cron job would mail."""
import os
import grp
import pwd
import shutil
import subprocess
import tempfile

import pytest

from elemta import BIN, Elemta, wait_until

SENDMAIL = os.path.join(BIN, "elemta-sendmail")
# Each user sends at most 3 messages in the module (the rate limit), but
# U3, which tests it.  Names per pytest-xdist worker: two workers may each
# run part of this module, each with its own Elemta and users.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "").replace("gw", "")
U1, U2, U3, U4 = USERS = tuple("elemta-sm%s-%d" % (WORKER, i) for i in range(1, 5))
RUNUSER = shutil.which("runuser")

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or RUNUSER is None or
                                shutil.which("useradd") is None,
                                reason="needs root, runuser and useradd")


GROUP = "elemta-smg%s" % WORKER  # socket_group after the reload test; U4 is in it


@pytest.fixture(scope="module")
def users():
    made = []
    subprocess.run(["groupadd", GROUP], capture_output=True, timeout=30)
    for u in USERS:
        try:
            pwd.getpwnam(u)
        except KeyError:
            subprocess.run(["useradd", "-M", "-N", "-d", "/nonexistent", "-s",
                            "/usr/sbin/nologin", "-c", "Test User %s,,," % u[-1], u],
                           check=True, capture_output=True, timeout=30)
            made.append(u)
    subprocess.run(["usermod", "-a", "-G", GROUP, U4], check=True,
                   capture_output=True, timeout=30)
    yield USERS
    for u in made:
        subprocess.run(["userdel", u], capture_output=True, timeout=30)
    subprocess.run(["groupdel", GROUP], capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def system(users):
    base = tempfile.mkdtemp(prefix="elemta-sm-")
    os.chmod(base, 0o755)
    d = os.path.join(base, "e")
    os.mkdir(d, 0o755)
    e = Elemta(d, policy={"rate_limits": [{"event": "message", "key": "sasl_username",
                                           "limit": 3, "period": "1m",
                                           "action": "tempfail"}]})
    e.cfg["server"]["listen"].append({"address": "unix:run/submit.sock", "mode": "local"})
    # A secret the config names but users cannot read: elemta-sendmail
    # must not need it.
    e.make_users({"alice": "secret"})
    e.cfg["auth"] = {"users_file": "users"}
    e.write_config()
    e.start()
    try:
        yield e
    finally:
        try:
            e.stop()
        finally:
            e.kill_all()
            shutil.rmtree(base, ignore_errors=True)


def sendmail(e, user, args, stdin, config=True):
    cmd = [RUNUSER, "-u", user, "--", SENDMAIL]
    if config:
        cmd += ["-C", e.config_path]
    return subprocess.run(cmd + list(args), input=stdin, capture_output=True,
                          timeout=60)


def newest(e, before):
    """The one message queued since `before` (a list of queue ids)."""
    new = wait_until(lambda: [q for q in e.queued() if q not in before] or
                     [q for q in e.queued("queue") if q not in before],
                     what="a new message in the queue")
    assert len(new) == 1, new
    return e.read_queued(new[0])


def test_socket_and_secret(system):
    st = os.stat(system.path("run", "submit.sock"))
    assert oct(st.st_mode & 0o777) == "0o666"
    assert st.st_uid == 0
    # The premise of every test below: the users file the config names
    # is closed to the submitting users.
    users = os.stat(system.path("users"))
    assert users.st_mode & 0o077 == 0
    assert users.st_uid not in [pwd.getpwnam(u).pw_uid for u in USERS]


def test_t_lands_with_user_identity(system):
    before = system.queued()
    r = sendmail(system, U1, ["-t"],
                 b"To: a@example.com\nSubject: x\n\nbody")
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    msg, env = newest(system, before)
    assert env["auth-user"] == U1
    assert env["recipients"][0].startswith("a@example.com")
    assert env["sender"] == U1 + "@mx.test.example"
    uid = pwd.getpwnam(U1).pw_uid
    head = msg.split(b"\r\n\r\n", 1)[0]
    assert head.startswith(b"Received: by mx.test.example (Elemta, from userid %d)" % uid)
    assert b"\r\nFrom: Test User 1 <%s@mx.test.example>\r\n" % U1.encode() in head
    assert b"\r\nDate: " in head and b"\r\nMessage-ID: <" in head
    assert msg.endswith(b"\r\n\r\nbody\r\n")
    assert "connect from local uid=%d" % uid in system.log()


def test_f_F_i_and_bcc(system):
    before = system.queued()
    body = b"To: a@example.com\nBcc: hidden@example.com\nSubject: y\n\nline1\n.\n..dots\nlast\n"
    r = sendmail(system, U2, ["-i", "-f", "<bounces@sender.example>", "-F",
                                         "Cron Daemon", "-t"], body)
    assert r.returncode == 0, r.stderr
    msg, env = newest(system, before)
    assert env["sender"] == "bounces@sender.example"
    assert env["auth-user"] == U2
    rcpts = [x.split()[0] for x in env["recipients"]]
    assert sorted(rcpts) == ["a@example.com", "hidden@example.com"]
    assert b"Bcc" not in msg and b"hidden@" not in msg
    assert b"\r\nFrom: Cron Daemon <bounces@sender.example>\r\n" in msg
    # -i: the lone "." and the line starting with dots are data, intact.
    assert msg.endswith(b"\r\n\r\nline1\r\n.\r\n..dots\r\nlast\r\n")


def test_lone_dot_ends_input_without_i(system):
    before = system.queued()
    r = sendmail(system, U2, ["-f", "<>", "b@example.com"],
                 b"Subject: z\n\nkept\n.\nnot sent\n")
    assert r.returncode == 0, r.stderr
    msg, env = newest(system, before)
    assert msg.endswith(b"\r\nkept\r\n") and b"not sent" not in msg
    # The null sender; a missing From: is still the user's address.
    assert env["sender"] == ""
    assert b"\r\nFrom: Test User 2 <%s@mx.test.example>\r\n" % U2.encode() in msg
    assert [x.split()[0] for x in env["recipients"]] == ["b@example.com"]


def test_php_mail_style(system):
    """PHP's mail(): `sendmail -t -i`, CRLF or LF, headers it wrote."""
    before = system.queued()
    r = sendmail(system, U2, ["-t", "-i"],
                 b"To: php@example.com\r\nSubject: web form\r\nX-PHP-Originating-Script: "
                 b"33:form.php\r\nFrom: site@example.com\r\n\r\nHello.\r\n.\r\n")
    assert r.returncode == 0, r.stderr
    msg, env = newest(system, before)
    assert env["auth-user"] == U2
    assert msg.count(b"From: ") == 1 and b"\r\nFrom: site@example.com\r\n" in msg
    assert msg.endswith(b"\r\n\r\nHello.\r\n.\r\n")


def test_rate_limit_per_local_user(system):
    """3 messages a minute per sasl_username: U3's 4th is deferred (exit
    75, the reply on stderr), U1's next one still goes."""
    for i in range(3):
        r = sendmail(system, U3, ["r@example.com"], b"Subject: %d\n\nx\n" % i)
        assert r.returncode == 0, (i, r.stderr)
    r = sendmail(system, U3, ["r@example.com"], b"Subject: 4\n\nx\n")
    assert r.returncode == 75, r
    line = r.stderr.decode()
    assert line.count("\n") == 1 and line.startswith("elemta-sendmail: message not sent: 450 4.7.1 ")
    assert "(in reply to MAIL FROM)" in line
    print("cron sees (rate limit):", line.strip(), "exit", r.returncode)
    r = sendmail(system, U1, ["r@example.com"], b"Subject: other\n\nx\n")
    assert r.returncode == 0, r.stderr


def test_bs_session(system):
    before = system.queued()
    p = subprocess.Popen([RUNUSER, "-u", U1, "--", SENDMAIL, "-C",
                          system.config_path, "-bs"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout

    def reply():
        lines = []
        while True:
            line = out.readline()
            assert line, "no reply"
            lines.append(line)
            if line[3:4] != b"-":
                return lines

    def cmd(line):
        p.stdin.write(line + b"\r\n")
        p.stdin.flush()
        return reply()

    try:
        assert reply()[0].startswith(b"220 ")
        ehlo = cmd(b"EHLO me")
        assert ehlo[-1].startswith(b"250 ")
        assert not any(b"AUTH" in x or b"STARTTLS" in x for x in ehlo)
        assert cmd(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==")[0].startswith(b"503 ")
        assert cmd(b"MAIL FROM:<x@example.net>")[0].startswith(b"250 ")
        # Relay control: an authenticated local user may send anywhere.
        assert cmd(b"RCPT TO:<far@elsewhere.test>")[0].startswith(b"250 ")
        assert cmd(b"DATA")[0].startswith(b"354 ")
        assert cmd(b"Subject: bs\r\n\r\nvia -bs\r\n.")[0].startswith(b"250 ")
        assert cmd(b"QUIT")[0].startswith(b"221 ")
        p.stdin.close()
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    msg, env = newest(system, before)
    assert env["auth-user"] == U1 and b"via -bs" in msg


def test_config_from_environment_and_errors(system):
    """$ELEMTA_CONFIG; bad usage; no recipients."""
    cmd = [RUNUSER, "-u", U4, "--", "env", "ELEMTA_CONFIG=" + system.config_path,
           SENDMAIL, "e@example.com"]
    before = system.queued()
    r = subprocess.run(cmd, input=b"Subject: env\n\nx\n", capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    newest(system, before)
    r = sendmail(system, U4, ["-t"], b"Subject: nobody\n\nx\n")
    assert r.returncode == 64 and b"no recipients" in r.stderr
    print("cron sees (no recipients):", r.stderr.decode().strip(), "exit", r.returncode)
    r = sendmail(system, U4, ["-Z"], b"")
    assert r.returncode == 64
    r = sendmail(system, U4, ["bad\x01@example.com"], b"x\n")
    assert r.returncode == 64
    # No SMTP command can be smuggled through -f either.
    r = sendmail(system, U4, ["-f", "a@x>\r\nRCPT TO:<b@y", "e@example.com"], b"x\n")
    assert r.returncode == 64 and b"-f" in r.stderr
    r = sendmail(system, U4, ["-f", "a@x, b@y", "e@example.com"], b"x\n")
    assert r.returncode == 64 and b"not one address" in r.stderr


def test_refused_recipient_is_reported(system):
    before = system.queued()
    r = sendmail(system, U4, ["ok@example.com", "bad address@"], b"x\n")
    assert r.returncode in (65, 69), r
    line = r.stderr.decode()
    assert line.startswith("elemta-sendmail: message not sent: 5")
    print("cron sees (refused recipient):", line.strip(), "exit", r.returncode)
    assert system.queued() == before


def test_bp_and_q(system):
    """-bp is `elemtactl queue list`, -q `elemtactl queue flush` (as root,
    who may read the spool)."""
    before = system.queued()
    r = subprocess.run([SENDMAIL, "-C", system.config_path, "q@example.com"],
                       input=b"Subject: root\n\nx\n", capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    newest(system, before)
    r = subprocess.run([SENDMAIL, "-C", system.config_path, "-bp"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert system.queued()[0] in r.stdout
    r = subprocess.run([SENDMAIL, "-C", system.config_path, "-q"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_reload_keeps_socket_and_applies_group(system):
    """A reload keeps the socket (same file) and applies a new socket_mode
    and socket_group: then only the group's members may submit."""
    path = system.path("run", "submit.sock")
    ino = os.stat(path).st_ino
    system.cfg["server"]["listen"][1].update({"socket_mode": "0660", "socket_group": GROUP})
    system.write_config()
    r = system.ctl("reload", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    st = os.stat(path)
    assert st.st_ino == ino and st.st_mode & 0o777 == 0o660

    assert st.st_gid == grp.getgrnam(GROUP).gr_gid
    before = system.queued()
    r = sendmail(system, U4, ["g@example.com"], b"Subject: group\n\nx\n")
    assert r.returncode == 0, r.stderr
    newest(system, before)
    r = sendmail(system, U2, ["g@example.com"], b"Subject: group\n\nx\n")
    assert r.returncode == 77 and b"permission denied" in r.stderr, r
    print("cron sees (not in socket_group):", r.stderr.decode().strip(), "exit", r.returncode)


def test_stopped_exit_75(system):
    """Last: Elemta stopped -> the socket is gone, exit 75, one line."""
    system.stop()
    assert not os.path.exists(system.path("run", "submit.sock"))
    r = sendmail(system, U1, ["-t"], b"To: a@example.com\nSubject: x\n\nbody")
    assert r.returncode == 75
    line = r.stderr.decode()
    assert line.count("\n") == 1 and "Elemta is not running" in line
    print("cron sees (stopped):", line.strip(), "exit", r.returncode)
    r = subprocess.run([RUNUSER, "-u", U1, "--", SENDMAIL, "-C",
                        system.config_path, "-bs"], input=b"QUIT\r\n",
                       capture_output=True, timeout=60)
    assert r.returncode == 75 and r.stdout.startswith(b"421 ")
