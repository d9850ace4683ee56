"""elemta-queued end to end (issue 17): messages accepted by smtpd are
delivered by the real elemta-queued to real peers - Maildirs, an aiosmtpd
server started here, a private Dovecot over LMTP - with retries, bounces
(RFC 3464, parsed with Python's email package), the queue commands, and
SIGKILL of elemta-queued under a steady stream.

Every wait is bounded; retry intervals are seconds so nothing depends on
a fast machine.
"""
import email
import email.policy
import glob
import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from elemta import SMTPConn, free_port, maildir_files, send_message, wait_until

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")

# As sent on the wire, dot-stuffed: the message holds ".leading dot" and
# "..two dots".
BODY = (b"Subject: delivery test\r\nMessage-ID: <t1@client.test>\r\n\r\n"
        b"first line\r\n..leading dot\r\n...two dots\r\nlast line\r\n")


class Sink:
    """An aiosmtpd next hop whose replies a test scripts: rcpt_replies
    maps an address to a list of replies handed out in turn (the last
    one repeats), data_replies likewise for the end of data."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.messages = []            # (mail_from, rcpt_tos, content)
        self.rcpt_replies = {}
        self.data_replies = []
        self.lock = threading.Lock()
        self.controller = None

    @staticmethod
    def _take(lst):
        return lst.pop(0) if len(lst) > 1 else lst[0]

    async def handle_RCPT(self, server, session, envelope, address, options):
        with self.lock:
            r = self.rcpt_replies.get(address)
            reply = self._take(r) if r else "250 OK"
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            reply = self._take(self.data_replies) if self.data_replies else "250 OK"
            if reply.startswith("250"):
                self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                      envelope.original_content))
        return reply

    def start(self):
        self.controller = aiosmtpd_controller.Controller(
            self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def delivered_to(self, addr):
        with self.lock:
            return [m for m in self.messages if addr in m[1]]


@pytest.fixture
def sinks():
    made = []

    def factory(port=None, start=True, delay=0):
        s = SlowSink(delay, port=port) if delay else Sink(port)
        made.append(s)
        return s.start() if start else s
    yield factory
    for s in made:
        s.stop()


def delivery_cfg(routes, **retry):
    r = {"min_backoff": "1s", "max_backoff": "2s", "max_lifetime": "1h"}
    r.update(retry)
    return {"delivery": {"routes": routes, "retry": r}}


def queue_json(e):
    r = e.ctl("queue", "list", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def sent_ok(out):
    assert out[-1][0] == "eom" and out[-1][1] == 250, out
    return out[-1][2].split()[-1] if "queued as" in out[-1][2] else None


def spool_empty(e):
    return e.queued("queue") == [] and [f for f in e.queued("state")
                                       if not f.startswith(".")] == []


def test_maildir_delivery_line_with_dot(make_elemta):
    e = make_elemta(overrides=delivery_cfg(
        [{"domains": ["local.test"], "next_hop": "maildir:mail"}]))
    assert any(r["kind"] == "queued" for r in e.status_rows())
    sent_ok(send_message(e.port, "alice@client.test", ["bob@local.test"], BODY))
    files = wait_until(lambda: maildir_files(e, "local.test", "bob"), 10,
                       what="the message in the Maildir")
    data = open(files[0], "rb").read()
    assert data.startswith(b"Return-Path: <alice@client.test>\nDelivered-To: bob@local.test\n")
    # Lines starting with "." arrive as the client meant them.
    assert b"\n.leading dot\n..two dots\nlast line\n" in data
    wait_until(lambda: spool_empty(e), 10, what="the spool file and state removed")
    assert len(maildir_files(e, "local.test", "bob")) == 1


def test_relay_smtp_two_recipients_one_transaction(make_elemta, sinks):
    s = sinks()
    e = make_elemta(overrides=delivery_cfg(
        [{"domains": ["relay.test"], "next_hop": "smtp:[127.0.0.1]:%d" % s.port}]))
    sent_ok(send_message(e.port, "alice@client.test",
                         ["a@relay.test", "b@relay.test"], BODY))
    wait_until(lambda: s.messages, 10, what="the message at the next hop")
    wait_until(lambda: spool_empty(e), 10, what="the spool emptied")
    assert len(s.messages) == 1
    frm, rcpts, content = s.messages[0]
    assert frm == "alice@client.test" and sorted(rcpts) == ["a@relay.test", "b@relay.test"]
    assert b"\r\n.leading dot\r\n..two dots\r\nlast line\r\n" in content
    assert content.startswith(b"Received: ")


def test_tempfail_then_delivered_once(make_elemta, sinks):
    s = sinks()
    s.data_replies = ["451 4.3.0 try later", "250 OK"]
    e = make_elemta(overrides=delivery_cfg(
        [{"domains": ["relay.test"], "next_hop": "smtp:[127.0.0.1]:%d" % s.port}]))
    sent_ok(send_message(e.port, "alice@client.test", ["a@relay.test"], BODY))
    wait_until(lambda: any(m["recipients"][0]["status"] == "deferred"
                           and "try later" in m["recipients"][0]["last_reply"]
                           for m in queue_json(e)), 10, what="the deferral")
    wait_until(lambda: s.messages, 15, what="the retry delivered")
    wait_until(lambda: spool_empty(e), 10, what="the spool emptied")
    time.sleep(1.5)
    assert len(s.messages) == 1


def parse_bounce(path):
    msg = email.message_from_bytes(open(path, "rb").read(), policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = list(msg.iter_parts())
    assert parts[0].get_content_type() == "text/plain"
    assert parts[1].get_content_type() == "message/delivery-status"
    return msg, parts


def test_permfail_one_of_two_bounces_once(make_elemta, sinks):
    s = sinks()
    s.rcpt_replies["bad@relay.test"] = ["550 5.1.1 no such user"]
    e = make_elemta(overrides=delivery_cfg(
        [{"domains": ["relay.test"], "next_hop": "smtp:[127.0.0.1]:%d" % s.port},
         {"domains": ["client.test"], "next_hop": "maildir:mail"}]))
    sent_ok(send_message(e.port, "alice@client.test",
                         ["good@relay.test", "bad@relay.test"], BODY))
    bounces = wait_until(lambda: maildir_files(e, "client.test", "alice"), 15,
                         what="the bounce in the sender's Maildir")
    wait_until(lambda: spool_empty(e), 10, what="the spool emptied")
    assert len(s.delivered_to("good@relay.test")) == 1
    assert s.delivered_to("bad@relay.test") == []
    msg, parts = parse_bounce(bounces[0])
    assert "MAILER-DAEMON@mx.test.example" in msg["From"]
    assert "Return-Path: <>" in open(bounces[0]).read()
    status = parts[1].as_string()
    assert "bad@relay.test" in status and "5.1.1" in status
    assert "good@relay.test" not in status
    assert "no such user" in parts[0].get_content()
    time.sleep(1)
    assert len(maildir_files(e, "client.test", "alice")) == 1


def deferred_for_an_hour(make_elemta, port):
    """An instance routing relay.test to port (nothing listens yet) whose
    message to a@relay.test has been deferred for an hour."""
    e = make_elemta(overrides=delivery_cfg(
        [{"domains": ["relay.test"], "next_hop": "smtp:[127.0.0.1]:%d" % port}],
        min_backoff="1h", max_backoff="2h"))
    sent_ok(send_message(e.port, "alice@client.test", ["a@relay.test"], BODY))
    wait_until(lambda: any(m["state"] == "deferred" for m in queue_json(e)), 10,
               what="the deferral")
    return e


def test_next_hop_down_then_flush(make_elemta, sinks):
    port = free_port()
    e = deferred_for_an_hour(make_elemta, port)
    s = sinks(port)
    time.sleep(1)
    assert s.messages == []           # nothing retries before an hour
    r = e.ctl("queue", "flush")
    assert r.returncode == 0, r.stderr
    wait_until(lambda: s.messages, 10, what="delivery after the flush")
    wait_until(lambda: spool_empty(e), 10, what="the spool emptied")


def test_spool_file_removed_behind_its_back_is_forgotten(make_elemta):
    """A deferred message whose spool file someone removed: its next
    attempt forgets it, with its state file, instead of failing forever."""
    e = deferred_for_an_hour(make_elemta, free_port())
    [qid] = e.queued("queue")
    assert qid in e.queued("state")
    os.unlink(e.path("spool", "queue", qid))
    r = e.ctl("queue", "flush")
    assert r.returncode == 0, r.stderr
    wait_until(lambda: spool_empty(e), 10, what="its state file removed")
    wait_until(lambda: "is gone; forgetting the message" in e.log(), 10,
               what="the log line")


def test_delete_of_an_unloadable_spool_file(make_elemta):
    """A spool file elemta-queued cannot load (damaged: left in place for
    the operator) is removed by `queue delete`, its mark with it."""
    e = make_elemta(overrides=delivery_cfg(
        [{"domains": ["relay.test"], "next_hop": "discard:"}]))
    qid = "0123456789ABCDEF0123"
    tmp, path = e.path("spool", "tmp", "damaged"), e.path("spool", "queue", qid)
    with open(tmp, "wb") as f:
        f.write(b"not a spool file\n")
    os.rename(tmp, path)
    wait_until(lambda: "queue %s: " % qid in e.log() and "left in place" in e.log(), 10,
               what="the load refused")
    r = e.ctl("queue", "delete", qid)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: not os.path.exists(path), 10, what="the damaged file removed")
    wait_until(lambda: e.queued("control") == [], 10, what="the delete mark removed")
    assert "unloadable message deleted by the operator" in e.log()


def test_max_lifetime_bounces(make_elemta):
    port = free_port()
    e = make_elemta(overrides=delivery_cfg(
        [{"domains": ["relay.test"], "next_hop": "smtp:[127.0.0.1]:%d" % port},
         {"domains": ["client.test"], "next_hop": "maildir:mail"}],
        min_backoff="1s", max_backoff="1s", max_lifetime="3s"))
    sent_ok(send_message(e.port, "alice@client.test", ["a@relay.test"], BODY))
    bounces = wait_until(lambda: maildir_files(e, "client.test", "alice"), 20,
                         what="the expiry bounce")
    _, parts = parse_bounce(bounces[0])
    status = parts[1].as_string()
    assert "a@relay.test" in status and "5.4.7" in status
    wait_until(lambda: spool_empty(e), 10, what="the spool emptied")


def test_bounce_of_null_sender_dropped(make_elemta):
    e = make_elemta(overrides=delivery_cfg(
        [{"domains": ["relay.test"], "next_hop": "error:5.1.1 nobody here"}]))
    sent_ok(send_message(e.port, "", ["a@relay.test"], BODY))
    wait_until(lambda: spool_empty(e), 10, what="the message dropped")
    wait_until(lambda: "no bounce of a bounce" in e.log(), 5, what="the log line")


def test_hold_release_delete(make_elemta, sinks):
    port = free_port()
    e = make_elemta(overrides=delivery_cfg(
        [{"domains": ["relay.test"], "next_hop": "smtp:[127.0.0.1]:%d" % port}],
        min_backoff="1h", max_backoff="2h"))
    ids = []
    for i in range(2):
        sent_ok(send_message(e.port, "alice@client.test", ["m%d@relay.test" % i], BODY))
    wait_until(lambda: len([m for m in queue_json(e) if m["state"] == "deferred"]) == 2,
               10, what="two deferred messages")
    ids = [m["id"] for m in queue_json(e)]
    r = e.ctl("queue", "hold", ids[0])
    assert r.returncode == 0, r.stderr
    wait_until(lambda: [m["state"] for m in queue_json(e) if m["id"] == ids[0]] == ["hold"],
               10, what="the message held")
    assert "hold" in e.ctl("queue", "list").stdout
    st = e.ctl("status")
    assert "queue: 2 messages (0 active, 1 deferred, 1 hold), oldest " in st.stdout, st.stdout
    q = json.loads(e.ctl("status", "--json").stdout)["queue"]
    assert (q["messages"], q["deferred"], q["hold"]) == (2, 1, 1), q
    s = sinks(port)
    assert e.ctl("queue", "flush").returncode == 0
    wait_until(lambda: s.delivered_to("m1@relay.test"), 10, what="the other one delivered")
    time.sleep(1)
    assert s.delivered_to("m0@relay.test") == []       # held: not flushed
    assert e.ctl("queue", "release", ids[0]).returncode == 0
    wait_until(lambda: s.delivered_to("m0@relay.test"), 10, what="delivery after release")
    wait_until(lambda: spool_empty(e), 10, what="the spool emptied")
    # delete: a deferred message goes, and never comes back.
    s.stop()
    sent_ok(send_message(e.port, "alice@client.test", ["gone@relay.test"], BODY))
    wait_until(lambda: any(m["state"] == "deferred" for m in queue_json(e)), 10,
               what="the deferral")
    gone = queue_json(e)[0]["id"]
    show = e.ctl("queue", "show", gone)
    assert show.returncode == 0 and "gone@relay.test" in show.stdout
    assert "Subject: delivery test" in show.stdout
    assert e.ctl("queue", "delete", gone).returncode == 0
    wait_until(lambda: spool_empty(e), 10, what="the message deleted")
    # logged once the files are gone, so it may trail the empty spool
    wait_until(lambda: "deleted by the operator" in e.log(), 10, what="the deletion logged")
    assert e.ctl("queue", "hold", gone).returncode == 1
    assert e.ctl("queue", "hold", "not-an-id").returncode == 1


DOVECOT_CONF = """
protocols = lmtp
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
auth_username_format = %Ln
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
mail_location = maildir:{d}/mail/%n
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = {d}/passwd
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""


@pytest.fixture
def dovecot():
    if shutil.which("dovecot") is None:
        pytest.skip("dovecot not installed")
    # Reachable by elemta-queued's unprivileged user (pytest's tmp is 0700).
    d = tempfile.mkdtemp(prefix="elemta-dovecot-")
    os.chmod(d, 0o755)
    for sub in ("run", "state", "mail"):
        os.mkdir(os.path.join(d, sub))
    # The mailbox owner: the current user, or (Dovecot refuses uid 0)
    # the unprivileged elemta user when the tests run as root.
    pw = pwd.getpwnam("elemta") if os.getuid() == 0 else pwd.getpwuid(os.getuid())
    group = grp.getgrgid(pw.pw_gid).gr_name
    if os.getuid() == 0:
        os.chown(os.path.join(d, "mail"), pw.pw_uid, pw.pw_gid)
    with open(os.path.join(d, "passwd"), "w") as f:
        f.write("bob:{PLAIN}x:%d:%d::%s/mail/bob::\n" % (pw.pw_uid, pw.pw_gid, d))
    conf = os.path.join(d, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(DOVECOT_CONF.format(d=d, user=pw.pw_name, group=group,
                                    port=free_port()))
    p = subprocess.Popen(["dovecot", "-F", "-c", conf], stdout=subprocess.DEVNULL,
                         stderr=subprocess.STDOUT, start_new_session=True)
    sock = os.path.join(d, "run", "lmtp")
    try:
        wait_until(lambda: os.path.exists(sock) or p.poll() is not None, 15,
                   what="dovecot's lmtp socket")
        if p.poll() is not None:
            log = open(os.path.join(d, "dovecot.log")).read() if os.path.exists(
                os.path.join(d, "dovecot.log")) else ""
            pytest.fail("dovecot exited: %s" % log[-2000:])
        port = int(re.search(r"port = (\d+)", open(conf).read()).group(1))
        wait_until(lambda: _listening(port), 15, what="dovecot's lmtp port")
        yield d, sock, port
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)


def _listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize("over", ["unix", "tcp"])
def test_lmtp_to_dovecot(make_elemta, dovecot, over):
    d, sock, port = dovecot
    hop = "lmtp:unix:%s" % sock if over == "unix" else "lmtp:127.0.0.1:%d" % port
    e = make_elemta(overrides=delivery_cfg(
        [{"domains": ["lmtp.test"], "next_hop": hop},
         {"domains": ["client.test"], "next_hop": "maildir:mail"}]))
    sent_ok(send_message(e.port, "alice@client.test",
                         ["bob@lmtp.test", "nobody@lmtp.test"], BODY))
    try:
        files = wait_until(lambda: glob.glob(os.path.join(d, "mail", "bob", "new", "*")) +
                           glob.glob(os.path.join(d, "mail", "bob", "cur", "*")), 15,
                           what="the message in Dovecot's Maildir")
    except AssertionError:
        raise AssertionError("not delivered:\n" + e.log()[-3000:] +
                             open(os.path.join(d, "dovecot.log")).read()[-2000:])
    data = open(files[0], "rb").read()
    assert b"Subject: delivery test" in data
    assert b"\n.leading dot\n..two dots\n" in data
    # Dovecot refused the unknown user on its own reply: that one bounces.
    bounces = wait_until(lambda: maildir_files(e, "client.test", "alice"), 15,
                         what="the bounce for the unknown user")
    _, parts = parse_bounce(bounces[0])
    assert "nobody@lmtp.test" in parts[1].as_string()
    assert "bob@lmtp.test" not in parts[1].as_string()
    wait_until(lambda: spool_empty(e), 10, what="the spool emptied")


def test_sigkill_under_stream_loses_nothing(make_elemta, sinks):
    # A slow next hop keeps deliveries in flight, so the kills hit them
    # (asserted below: otherwise this test would prove nothing).
    s = sinks(delay=0.4)
    cfg = delivery_cfg(
        [{"domains": ["relay.test"], "next_hop": "smtp:[127.0.0.1]:%d" % s.port}])
    cfg["delivery"]["destination_concurrency"] = 2
    e = make_elemta(overrides=cfg)
    total, kills = 60, 0
    for i in range(total):
        sent_ok(send_message(e.port, "alice@client.test", ["n%d@relay.test" % i],
                             b"Subject: n%d\r\n\r\nbody %d\r\n" % (i, i)))
        if i % 10 == 5:
            # Never skipped: a status read on a loaded machine may miss
            # the worker for a moment.
            pids = wait_until(lambda: e.worker_pids("queued"), 15,
                              what="elemta-queued running")
            os.kill(pids[0], signal.SIGKILL)
            kills += 1
            # the supervisor restarts it with its backoff
            wait_until(lambda: e.worker_pids("queued") and
                       e.worker_pids("queued") != pids, 15,
                       what="elemta-queued restarted")
    assert kills == 6
    wait_until(lambda: all(s.delivered_to("n%d@relay.test" % i) for i in range(total)),
               60, what="every message delivered")
    wait_until(lambda: spool_empty(e), 20, what="the spool emptied")
    dups = sum(len(s.delivered_to("n%d@relay.test" % i)) - 1 for i in range(total))
    # Only a delivery in flight at a kill may repeat: at most one per
    # connection (destination_concurrency 2) per kill.
    assert dups <= 2 * kills, (dups, kills)
    # The premise: some kill cut a delivery short (its DATA was begun,
    # and begun again by the next process).
    with s.lock:
        started = list(s.started)
    retried = [i for i in range(total) if started.count("n%d@relay.test" % i) > 1]
    assert retried, "no kill hit a delivery in flight"


def test_no_descriptor_leaked_per_delivery(make_elemta, sinks):
    """Deliveries one after another - relayed, refused by the next hop,
    to a Maildir - leave elemta-queued with the descriptors it had after
    the first of each."""
    s = sinks()
    s.rcpt_replies["bad@relay.test"] = ["550 5.1.1 no such user"]
    cfg = delivery_cfg(
        [{"domains": ["relay.test"], "next_hop": "smtp:[127.0.0.1]:%d" % s.port},
         {"domains": ["local.test", "client.test"], "next_hop": "maildir:mail"}])
    e = make_elemta(overrides=cfg)

    def one_round(i):
        sent_ok(send_message(e.port, "alice@client.test",
                             ["r%d@relay.test" % i, "bad@relay.test", "l%d@local.test" % i],
                             b"Subject: fd %d\r\n\r\nbody\r\n" % i))
        wait_until(lambda: s.delivered_to("r%d@relay.test" % i) and
                   maildir_files(e, "local.test", "l%d" % i) and spool_empty(e),
                   20, what="round %d delivered, bounced and removed" % i)

    def fds():
        pid = e.worker_pids("queued")[0]
        return len(os.listdir("/proc/%d/fd" % pid))

    one_round(0)
    before = fds()
    for i in range(1, 21):
        one_round(i)
    # The connection to the sink may be open or idle-closed: one apart.
    assert fds() <= before + 1, (before, fds())
    assert len(maildir_files(e, "client.test", "alice")) == 21


def make_cert(d):
    """A self-signed certificate for 127.0.0.1 (its own CA)."""
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    os.chmod(cert, 0o644)
    return cert, key


class TLSSink(Sink):
    """A Sink that offers STARTTLS and records whether each message came
    over TLS."""

    def __init__(self, cert, key, **kw):
        super().__init__(**kw)
        import ssl
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(cert, key)
        self.tls = []

    async def handle_DATA(self, server, session, envelope):
        self.tls.append(session.ssl is not None)
        return await super().handle_DATA(server, session, envelope)

    def start(self):
        self.controller = aiosmtpd_controller.Controller(
            self, hostname="127.0.0.1", port=self.port, tls_context=self.ctx,
            require_starttls=True)
        self.controller.start()
        return self


@pytest.mark.parametrize("mode", ["may", "encrypt", "verify"])
def test_starttls_modes(make_elemta, mode):
    e = make_elemta(start=False)
    cert, key = make_cert(e.dir)
    s = TLSSink(cert, key).start()
    try:
        cfg = delivery_cfg([{"domains": ["relay.test"],
                             "next_hop": "smtp:[127.0.0.1]:%d" % s.port}])
        cfg["delivery"]["tls"] = {"mode": mode}
        if mode == "verify":
            cfg["delivery"]["tls"]["ca_file"] = cert
        e.cfg.update(cfg)
        e.write_config()
        e.start()
        sent_ok(send_message(e.port, "alice@client.test", ["a@relay.test"], BODY))
        wait_until(lambda: s.messages, 15, what="delivery over TLS")
        assert s.tls == [True]
        wait_until(lambda: spool_empty(e), 10, what="the spool emptied")
    finally:
        s.stop()


def test_encrypt_refuses_plaintext_next_hop(make_elemta, sinks):
    s = sinks()                                   # no STARTTLS offered
    cfg = delivery_cfg([{"domains": ["relay.test"],
                         "next_hop": "smtp:[127.0.0.1]:%d" % s.port}],
                       min_backoff="1h", max_backoff="2h")
    cfg["delivery"]["tls"] = {"mode": "encrypt"}
    e = make_elemta(overrides=cfg)
    sent_ok(send_message(e.port, "alice@client.test", ["a@relay.test"], BODY))
    wait_until(lambda: any(m["state"] == "deferred" for m in queue_json(e)), 10,
               what="the deferral")
    assert s.messages == []
    show = e.ctl("queue", "show", queue_json(e)[0]["id"]).stdout
    assert "4.7.4" in show, show


def test_verify_refuses_an_unknown_certificate(make_elemta):
    e = make_elemta(start=False)
    cert, key = make_cert(e.dir)
    s = TLSSink(cert, key).start()
    try:
        cfg = delivery_cfg([{"domains": ["relay.test"],
                             "next_hop": "smtp:[127.0.0.1]:%d" % s.port}],
                           min_backoff="1h", max_backoff="2h")
        cfg["delivery"]["tls"] = {"mode": "verify"}    # system CAs only
        e.cfg.update(cfg)
        e.write_config()
        e.start()
        sent_ok(send_message(e.port, "alice@client.test", ["a@relay.test"], BODY))
        wait_until(lambda: any(m["state"] == "deferred" for m in queue_json(e)), 15,
                   what="the deferral")
        assert s.messages == []
        assert "4.7.5" in e.ctl("queue", "show", queue_json(e)[0]["id"]).stdout
    finally:
        s.stop()


class AuthSink(TLSSink):
    """A smarthost: STARTTLS, then AUTH required before MAIL."""

    def __init__(self, cert, key, user, password, **kw):
        super().__init__(cert, key, **kw)
        self.creds = (user.encode(), password.encode())
        self.auths = []

    def authenticator(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult
        ok = (auth_data.login, auth_data.password) == self.creds
        self.auths.append((mechanism, ok))
        # handled=False: aiosmtpd answers 535 itself (its default is
        # "already answered", which would leave the client waiting).
        return AuthResult(success=ok, handled=False)

    def start(self):
        self.controller = aiosmtpd_controller.Controller(
            self, hostname="127.0.0.1", port=self.port, tls_context=self.ctx,
            require_starttls=True, auth_required=True, auth_require_tls=True,
            authenticator=self.authenticator)
        self.controller.start()
        return self


@pytest.mark.parametrize("password,delivered", [("s3cret", True), ("wrong", False)])
def test_auth_to_smarthost(make_elemta, password, delivered):
    e = make_elemta(start=False)
    cert, key = make_cert(e.dir)
    with open(e.path("relay-password"), "w") as f:
        f.write(password + "\n")
    os.chmod(e.path("relay-password"), 0o644)
    s = AuthSink(cert, key, "relayuser", "s3cret").start()
    try:
        cfg = delivery_cfg([], min_backoff="1h", max_backoff="2h")
        cfg["delivery"]["relayhost"] = "[127.0.0.1]:%d" % s.port
        cfg["delivery"]["auth"] = {"username": "relayuser",
                                   "password_file": "relay-password"}
        e.cfg.update(cfg)
        e.write_config()
        e.start()
        sent_ok(send_message(e.port, "alice@client.test", ["a@far.example"], BODY))
        if delivered:
            wait_until(lambda: s.messages, 15, what="delivery through the smarthost")
            assert s.tls == [True] and s.auths[-1][1] is True
            wait_until(lambda: spool_empty(e), 10, what="the spool emptied")
        else:
            wait_until(lambda: any(m["state"] == "deferred" for m in queue_json(e)),
                       15, what="the deferral")
            assert s.messages == [] and s.auths and s.auths[-1][1] is False
            # A refused AUTH defers (the password may be fixed), never bounces.
            show = e.ctl("queue", "show", queue_json(e)[0]["id"]).stdout
            assert "deferred" in show and "535" in show, show
    finally:
        s.stop()


def test_too_many_hops_bounces(make_elemta, sinks):
    s = sinks()
    cfg = delivery_cfg([{"domains": ["relay.test"],
                         "next_hop": "smtp:[127.0.0.1]:%d" % s.port},
                        {"domains": ["client.test"], "next_hop": "maildir:mail"}])
    cfg["delivery"]["hop_limit"] = 5
    e = make_elemta(overrides=cfg)
    # smtpd's own Received: makes the fifth; a sixth is one too many.
    loop = b"".join(b"Received: from hop%d.example by x.example; Sat, 5 Dec 2026 "
                    b"10:00:00 +0000\r\n" % i for i in range(5))
    sent_ok(send_message(e.port, "alice@client.test", ["loop@relay.test"], loop + BODY))
    ok = b"".join(b"Received: from hop%d.example by x.example; Sat, 5 Dec 2026 "
                  b"10:00:00 +0000\r\n" % i for i in range(4))
    sent_ok(send_message(e.port, "alice@client.test", ["fine@relay.test"], ok + BODY))
    bounces = wait_until(lambda: maildir_files(e, "client.test", "alice"), 15,
                         what="the bounce")
    _, parts = parse_bounce(bounces[0])
    assert "loop@relay.test" in parts[1].as_string() and "5.4.6" in parts[1].as_string()
    wait_until(lambda: s.delivered_to("fine@relay.test"), 10, what="the other delivered")
    assert s.delivered_to("loop@relay.test") == []
    # The hop-limit bounce is counted like any other (status reads the
    # stats file elemta-queued writes once a second).
    wait_until(lambda: json.loads(e.ctl("status", "--json").stdout)["delivery"]["bounced"]
               == 1, 10, what="the bounce counted")


def test_may_falls_back_to_plaintext_after_a_failed_handshake(make_elemta):
    e = make_elemta(start=False)
    cert, key = make_cert(e.dir)
    s = TLSSink(cert, key)
    # The handshake fails: the server speaks TLS 1.1 at most, elemta-queued
    # 1.2 at least.
    import ssl
    s.ctx.minimum_version = ssl.TLSVersion.TLSv1
    s.ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    s.ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    s.controller = aiosmtpd_controller.Controller(
        s, hostname="127.0.0.1", port=s.port, tls_context=s.ctx,
        require_starttls=False)
    s.controller.start()
    try:
        e.cfg.update(delivery_cfg([{"domains": ["relay.test"],
                                    "next_hop": "smtp:[127.0.0.1]:%d" % s.port}]))
        e.write_config()
        e.start()
        sent_ok(send_message(e.port, "alice@client.test", ["a@relay.test"], BODY))
        try:
            wait_until(lambda: s.messages, 20, what="delivery in plaintext")
        except AssertionError:
            raise AssertionError(e.log()[-2500:])
        assert s.tls == [False]
        assert "using plaintext with this next hop" in e.log()
    finally:
        s.stop()


class SlowSink(Sink):
    """Answers the end of data only after `delay` seconds, or (delay None)
    once the test sets `gate`: a delivery stays in flight meanwhile.
    `started` lists the recipients of every DATA begun, answered or not."""

    def __init__(self, delay, **kw):
        super().__init__(**kw)
        self.delay = delay
        self.in_data = threading.Event()
        self.gate = threading.Event()
        self.started = []

    async def handle_DATA(self, server, session, envelope):
        import asyncio
        with self.lock:
            self.started.extend(envelope.rcpt_tos)
        self.in_data.set()
        if self.delay is not None:
            await asyncio.sleep(self.delay)
        else:
            deadline = time.monotonic() + 60
            while not self.gate.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def test_delete_during_delivery_takes_effect_when_it_ends(make_elemta):
    s = SlowSink(None)
    s.data_replies = ["451 4.3.0 later"]          # it would stay deferred
    s.start()
    try:
        e = make_elemta(overrides=delivery_cfg(
            [{"domains": ["relay.test"], "next_hop": "smtp:[127.0.0.1]:%d" % s.port}],
            min_backoff="1s", max_backoff="1s"))
        sent_ok(send_message(e.port, "alice@client.test", ["a@relay.test"], BODY))
        assert s.in_data.wait(10)
        qid = e.queued("queue")[0]
        assert e.ctl("queue", "delete", qid).returncode == 0
        wait_until(lambda: "delete requested; takes effect when" in e.log(), 10,
                   what="the delete deferred to the attempt's end")
        time.sleep(0.5)
        assert e.queued("queue") == [qid]              # still in flight
        s.gate.set()                                   # the attempt ends
        wait_until(lambda: spool_empty(e), 10, what="the message deleted")
        # the mark goes last, once the message's removal is on disk
        wait_until(lambda: e.queued("control") == [], 10, what="the delete mark removed")
        time.sleep(2.5)                                # retries would be due
        assert e.queued("queue") == [] and queue_json(e) == []
    finally:
        s.stop()


class CountingSink(SlowSink):
    """A SlowSink that counts the sessions and the most deliveries it had
    in flight at once."""

    def __init__(self, delay, **kw):
        super().__init__(delay, **kw)
        self.now = self.peak = self.sessions = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock:
            self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            return await super().handle_DATA(server, session, envelope)
        finally:
            with self.lock:
                self.now -= 1


def test_destination_concurrency_bounds_and_connections_are_reused(make_elemta):
    s = CountingSink(0.5).start()
    try:
        cfg = delivery_cfg([{"domains": ["relay.test"],
                             "next_hop": "smtp:[127.0.0.1]:%d" % s.port}])
        cfg["delivery"]["destination_concurrency"] = 2
        e = make_elemta(overrides=cfg)
        for i in range(8):
            sent_ok(send_message(e.port, "alice@client.test", ["c%d@relay.test" % i], BODY))
        wait_until(lambda: len(s.messages) == 8, 30, what="all eight delivered")
        assert s.peak <= 2, s.peak
        # Two connections carried the eight messages (one more at most,
        # should one have idled out between two messages).
        assert s.sessions <= 3, s.sessions
        wait_until(lambda: spool_empty(e), 10, what="the spool emptied")
    finally:
        s.stop()


def test_delay_warning_once(make_elemta):
    port = free_port()
    e = make_elemta(overrides=delivery_cfg(
        [{"domains": ["relay.test"], "next_hop": "smtp:[127.0.0.1]:%d" % port},
         {"domains": ["client.test"], "next_hop": "maildir:mail"}],
        min_backoff="1s", max_backoff="1s", delay_warning="2s"))
    sent_ok(send_message(e.port, "alice@client.test", ["late@relay.test"], BODY))
    warnings = wait_until(lambda: maildir_files(e, "client.test", "alice"), 20,
                          what="the delay warning")
    msg, parts = parse_bounce(warnings[0])
    status = parts[1].as_string()
    assert "late@relay.test" in status and "Action: delayed" in status, status
    assert "Will-Retry-Until:" in status
    time.sleep(3)                                   # further retries: no more
    assert len(maildir_files(e, "client.test", "alice")) == 1
    assert [m["recipients"][0]["status"] for m in queue_json(e)] == ["deferred"]


# ---- DSN (RFC 3461 parameters, RFC 3464 reports) ----

def send_dsn(port, sender, rcpts, body, mail_params=""):
    """One transaction with DSN parameters: rcpts is a list of (address,
    params); every reply must be a success."""
    c = SMTPConn(port)
    try:
        assert c.reply()[0] == 220
        code, _, lines = c.cmd("EHLO client.test")
        assert code == 250 and "250-DSN" in lines, lines
        assert c.cmd("MAIL FROM:<%s> %s" % (sender, mail_params))[0] == 250
        for addr, params in rcpts:
            code, text, _ = c.cmd("RCPT TO:<%s> %s" % (addr, params))
            assert code == 250, (addr, params, code, text)
        assert c.cmd("DATA")[0] == 354
        c.send(body + b".\r\n")
        assert c.reply()[0] == 250
        c.cmd("QUIT")
    finally:
        c.close()


def dsn_routes(*extra):
    return delivery_cfg(list(extra) + [
        {"domains": ["client.test"], "next_hop": "maildir:mail"}])


def test_dsn_parameters_refused_when_malformed(make_elemta):
    e = make_elemta()
    c = SMTPConn(e.port)
    try:
        c.reply()
        assert "250-DSN" in c.cmd("EHLO client.test")[2]
        for bad in ("RET=BODY", "ENVID=a+", "ENVID=" + "x" * 101,
                    "RET=FULL RET=HDRS"):
            code, text, _ = c.cmd("MAIL FROM:<a@client.test> " + bad)
            assert (code, text.split()[0]) == (501, "5.5.4"), (bad, text)
        assert c.cmd("MAIL FROM:<a@client.test> RET=HDRS ENVID=" + "x" * 100)[0] == 250
        for bad in ("NOTIFY=NEVER,SUCCESS", "NOTIFY=SOMETIMES", "ORCPT=b@x",
                    "ORCPT=rfc822;" + "x" * 494, "NOTIFY=DELAY NOTIFY=DELAY"):
            code, text, _ = c.cmd("RCPT TO:<postmaster> " + bad)
            assert (code, text.split()[0]) == (501, "5.5.4"), (bad, text)
        assert c.cmd("RCPT TO:<postmaster> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;"
                     + "x" * 493)[0] == 250
    finally:
        c.close()


def test_dsn_notify_never_and_ret_full_envid_orcpt(make_elemta):
    """Two recipients refused by the next hop: NOTIFY=NEVER gets no
    report (logged), NOTIFY=FAILURE does, with the whole message (RET=FULL),
    the ENVID and the ORCPT echoed."""
    e = make_elemta(overrides=dsn_routes(
        {"domains": ["relay.test"], "next_hop": "error:5.1.1 nobody here"}))
    send_dsn(e.port, "alice@client.test",
             [("quiet@relay.test", "NOTIFY=NEVER"),
              ("loud@relay.test", "NOTIFY=FAILURE ORCPT=rfc822;Loud+2Bx@relay.test")],
             BODY, "RET=FULL ENVID=env+3Did-42")
    bounces = wait_until(lambda: maildir_files(e, "client.test", "alice"), 15,
                         what="the bounce")
    wait_until(lambda: spool_empty(e), 10, what="the spool emptied")
    msg, parts = parse_bounce(bounces[0])
    status = parts[1].as_string()
    assert "Original-Envelope-Id: env=id-42" in status, status
    assert "Final-Recipient: rfc822; loud@relay.test" in status.replace(";rfc", "; rfc"), status
    assert "Original-Recipient: rfc822;Loud+x@relay.test" in status.replace("; ", ";"), status
    assert "quiet@relay.test" not in status
    assert parts[2].get_content_type() == "message/rfc822"
    original = parts[2].as_bytes()
    assert b"first line" in original and b"last line" in original
    wait_until(lambda: "quiet@relay.test> failed: no bounce (NOTIFY=NEVER)" in e.log(),
               5, what="the log line for NOTIFY=NEVER")
    time.sleep(1)
    assert len(maildir_files(e, "client.test", "alice")) == 1


def test_dsn_notify_never_alone_no_bounce(make_elemta):
    e = make_elemta(overrides=dsn_routes(
        {"domains": ["relay.test"], "next_hop": "error:5.1.1 nobody here"}))
    send_dsn(e.port, "alice@client.test", [("quiet@relay.test", "NOTIFY=NEVER")], BODY)
    wait_until(lambda: spool_empty(e), 10, what="the message dropped")
    wait_until(lambda: "no bounce (NOTIFY=NEVER)" in e.log(), 5, what="the log line")
    time.sleep(1)
    assert maildir_files(e, "client.test", "alice") == []


def success_report(e):
    files = wait_until(lambda: maildir_files(e, "client.test", "alice"), 15,
                       what="the success DSN")
    msg = email.message_from_bytes(open(files[0], "rb").read(),
                                   policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers"]
    return parts[1].as_string(), files


def test_dsn_success_to_maildir_says_delivered(make_elemta):
    e = make_elemta(overrides=dsn_routes(
        {"domains": ["local.test"], "next_hop": "maildir:mail"}))
    send_dsn(e.port, "alice@client.test",
             [("bob@local.test", "NOTIFY=SUCCESS"), ("carol@local.test", "")], BODY,
             "RET=FULL")
    status, _ = success_report(e)
    assert "Action: delivered" in status and "bob@local.test" in status, status
    assert "carol@local.test" not in status     # no NOTIFY: no success report
    wait_until(lambda: spool_empty(e), 10, what="the spool emptied")
    assert len(maildir_files(e, "local.test", "bob")) == 1
    time.sleep(1)
    assert len(maildir_files(e, "client.test", "alice")) == 1


def test_dsn_success_to_next_hop_without_dsn_says_relayed(make_elemta, sinks):
    s = sinks()
    e = make_elemta(overrides=dsn_routes(
        {"domains": ["relay.test"], "next_hop": "smtp:[127.0.0.1]:%d" % s.port}))
    send_dsn(e.port, "alice@client.test", [("a@relay.test", "NOTIFY=SUCCESS,FAILURE")],
             BODY, "ENVID=e1")
    status, _ = success_report(e)
    assert "Action: relayed" in status and "a@relay.test" in status, status
    assert "Original-Envelope-Id: e1" in status
    assert len(s.messages) == 1


class DSNSink(Sink):
    """A next hop that offers DSN (aiosmtpd does not by itself): EHLO
    gains the keyword, the RFC 3461 parameters are let through and
    recorded as aiosmtpd hands them over (upper-cased)."""

    def __init__(self, port=None):
        super().__init__(port)
        self.options = []             # (mail_options, rcpt_options)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return responses[:-1] + ["250-DSN", responses[-1]]

    async def handle_RCPT(self, server, session, envelope, address, options):
        envelope.rcpt_options.extend(options)     # Sink's hook does not
        return await super().handle_RCPT(server, session, envelope, address,
                                         options)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.options.append((list(envelope.mail_options),
                                 list(envelope.rcpt_options)))
        return await super().handle_DATA(server, session, envelope)

    def start(self):
        from aiosmtpd.smtp import SMTP

        class DSNSMTP(SMTP):
            def _getparams(self, params):
                r = super()._getparams(params)
                if r is not None:
                    for k in ("RET", "ENVID", "NOTIFY", "ORCPT"):
                        r.pop(k, None)
                return r

        handler = self

        class DSNController(aiosmtpd_controller.Controller):
            def factory(self):
                return DSNSMTP(handler, **self.SMTP_kwargs)

        self.controller = DSNController(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self


def test_dsn_params_passed_to_a_next_hop_with_dsn(make_elemta):
    s = DSNSink().start()
    try:
        e = make_elemta(overrides=dsn_routes(
            {"domains": ["relay.test"], "next_hop": "smtp:[127.0.0.1]:%d" % s.port}))
        send_dsn(e.port, "alice@client.test",
                 [("a@relay.test", "NOTIFY=SUCCESS,DELAY ORCPT=rfc822;A+2Bb@relay.test"),
                  ("b@relay.test", "NOTIFY=NEVER")],
                 BODY, "RET=FULL ENVID=id+3D7")
        wait_until(lambda: s.options, 15, what="the message at the DSN next hop")
        wait_until(lambda: spool_empty(e), 10, what="the spool emptied")
        mail_opts, rcpt_opts = s.options[0]
        assert "RET=FULL" in mail_opts and "ENVID=ID+3D7" in mail_opts, mail_opts
        assert "NOTIFY=SUCCESS,DELAY" in rcpt_opts, rcpt_opts
        assert "ORCPT=RFC822;A+2BB@RELAY.TEST" in rcpt_opts, rcpt_opts
        assert "NOTIFY=NEVER" in rcpt_opts, rcpt_opts
        # The next hop took over the duty: no success report from us.
        time.sleep(1.5)
        assert maildir_files(e, "client.test", "alice") == []
    finally:
        s.stop()


# ---- reports across a crash (queue.c's test hook) ----

def crash_once(monkeypatch, e, point):
    """Start e with elemta-queued killing itself once, right after the
    first state write that records point ("delivered", "warned"): the
    hook ELEMTA_TEST_QUEUED_CRASH=POINT:FILE, fired by whoever creates
    FILE first.  Returns FILE."""
    flag = e.path("spool", "state", ".crash-once")
    monkeypatch.setenv("ELEMTA_TEST_QUEUED_CRASH", "%s:%s" % (point, flag))
    e.start()
    return flag


def test_success_dsn_survives_a_crash_once_the_delivery_is_recorded(make_elemta,
                                                                    monkeypatch):
    """The success DSN is durable before the state that records the
    delivery: killed right after that write, nothing is lost and the
    recorded delivery is not repeated."""
    e = make_elemta(start=False, overrides=dsn_routes(
        {"domains": ["local.test"], "next_hop": "maildir:mail"}))
    flag = crash_once(monkeypatch, e, "delivered")
    send_dsn(e.port, "alice@client.test",
             [("bob@local.test", "NOTIFY=SUCCESS"), ("carol@local.test", "")], BODY)
    wait_until(lambda: os.path.exists(flag), 15, what="the kill after bob's delivery")
    wait_until(lambda: maildir_files(e, "local.test", "carol"), 20,
               what="carol's delivery by the restarted elemta-queued")
    status, _ = success_report(e)
    assert "Action: delivered" in status and "bob@local.test" in status, status
    wait_until(lambda: spool_empty(e), 10, what="the spool emptied")
    assert len(maildir_files(e, "local.test", "bob")) == 1
    assert len(maildir_files(e, "client.test", "alice")) == 1


def test_delay_warning_survives_a_crash_once_it_is_recorded(make_elemta, monkeypatch):
    """The delay warning is durable before the state that says it was
    sent: killed right after that write, the warning still arrives, once."""
    port = free_port()
    e = make_elemta(start=False, overrides=delivery_cfg(
        [{"domains": ["relay.test"], "next_hop": "smtp:[127.0.0.1]:%d" % port},
         {"domains": ["client.test"], "next_hop": "maildir:mail"}],
        min_backoff="1s", max_backoff="1s", delay_warning="2s"))
    flag = crash_once(monkeypatch, e, "warned")
    sent_ok(send_message(e.port, "alice@client.test", ["late@relay.test"], BODY))
    wait_until(lambda: os.path.exists(flag), 20, what="the kill after the warning")
    warnings = wait_until(lambda: maildir_files(e, "client.test", "alice"), 20,
                          what="the delay warning")
    _, parts = parse_bounce(warnings[0])
    assert "late@relay.test" in parts[1].as_string()
    assert "Action: delayed" in parts[1].as_string()
    time.sleep(3)                       # retries by the new process: no more
    assert len(maildir_files(e, "client.test", "alice")) == 1
