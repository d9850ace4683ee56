"""Milters (issue 20): real OpenDKIM (signing on submission, verifying on
smtp), a real clamav-milter with a signature database written by sigtool,
and misbehaving milters written here (killed mid-message, silent,
answering garbage), through elemta-policyd's milter client
(policyd/milter.c, docs/milters.md).

Each real milter is started once per module (they are slow to start) on
an inet socket of 127.0.0.1 (the workers run as unprivileged users when
the tests run as root); each Elemta instance is per test.
"""
import base64
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

import dkim
import pytest

from elemta import STAT, SMTPConn, free_port, send_message, wait_until

DOMAIN = "example.org"
SELECTOR = "sel"
PASSWORD = "s3cret-pw"

MESSAGE = (b"From: Alice <alice@example.org>\r\n"
           b"To: Bob <bob@example.com>\r\n"
           b"Subject: milter test\r\n"
           b"Message-ID: <m1@example.org>\r\n"
           b"Date: Sun, 06 Dec 2026 10:00:00 +0000\r\n"
           b"\r\n"
           b"Hello Bob,\r\n"
           b"this message is signed.\r\n")


def milter_entry(name, port, modes, timeout="10s", fail_mode="tempfail"):
    return {"name": name, "address": "inet:127.0.0.1:%d" % port,
            "modes": modes, "timeout": timeout, "fail_mode": fail_mode}


def wait_port(port, proc, what, timeout=30):
    def up():
        if proc.poll() is not None:
            raise AssertionError("%s exited with %s" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_until(up, timeout, what="%s listening on %d" % (what, port))


def stop_procs(procs, directory):
    """Terminate the milter's processes (killed after 10 s), remove its
    directory."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(directory, ignore_errors=True)


class OpenDKIM:
    """Two opendkim processes sharing one key: a signer (Mode s) and a
    verifier (Mode v) that finds the public key in TestDNSData."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="elemta-dkim-")
        os.chmod(self.dir, 0o755)
        r = subprocess.run(["opendkim-genkey", "-b", "1024", "-d", DOMAIN,
                            "-s", SELECTOR, "-D", self.dir],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        txt = open(os.path.join(self.dir, SELECTOR + ".txt")).read()
        # "sel._domainkey IN TXT ( "v=DKIM1; h=sha256; k=rsa; " "p=..." )"
        parts = txt[txt.index("(") + 1:txt.rindex(")")].split('"')[1::2]
        self.record = "".join(parts)
        self.pubkey_name = "%s._domainkey.%s" % (SELECTOR, DOMAIN)
        key = os.path.join(self.dir, SELECTOR + ".private")
        with open(os.path.join(self.dir, "keytable"), "w") as f:
            f.write("%s %s:%s:%s\n" % (self.pubkey_name, DOMAIN, SELECTOR, key))
        with open(os.path.join(self.dir, "signingtable"), "w") as f:
            f.write("*@%s %s\n" % (DOMAIN, self.pubkey_name))
        with open(os.path.join(self.dir, "dns"), "w") as f:
            f.write("%s %s\n" % (self.pubkey_name, self.record))
        self.sign_port = free_port()
        self.verify_port = free_port()
        common = ["Syslog yes", "SyslogSuccess yes", "Background no",
                  "RequireSafeKeys no", "Canonicalization relaxed/simple",
                  "AuthservID mx.test.example", "AlwaysAddARHeader yes"]
        if os.geteuid() == 0:
            common.append("UserID root")
        self.procs = []
        for name, mode, port, extra in (
                ("sign", "s", self.sign_port,
                 ["KeyTable file:%s/keytable" % self.dir,
                  "SigningTable refile:%s/signingtable" % self.dir,
                  "InternalHosts 127.0.0.1"]),
                ("verify", "v", self.verify_port,
                 ["TestDNSData file:%s/dns" % self.dir,
                  "InternalHosts 192.0.2.1"])):
            conf = os.path.join(self.dir, name + ".conf")
            with open(conf, "w") as f:
                f.write("\n".join(common + extra + [
                    "Mode %s" % mode,
                    "Socket inet:%d@127.0.0.1" % port,
                    "PidFile %s/%s.pid" % (self.dir, name)]) + "\n")
            log = open(os.path.join(self.dir, name + ".log"), "wb")
            p = subprocess.Popen(["opendkim", "-f", "-x", conf],
                                 stdout=log, stderr=subprocess.STDOUT)
            self.procs.append(p)
            wait_port(port, p, "opendkim " + name)

    def dnsfunc(self, name, timeout=5):
        if name.decode().rstrip(".") == self.pubkey_name:
            return self.record.encode()
        return b""

    def stop(self):
        stop_procs(self.procs, self.dir)


@pytest.fixture(scope="module")
def opendkim():
    d = OpenDKIM()
    yield d
    d.stop()


VIRUS = b"ELEMTA-TEST-VIRUS-7f3a9c"


class ClamAV:
    """clamd with one signature written by sigtool (no download), and
    clamav-milter in front of it rejecting infected mail."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="elemta-clamav-")
        os.chmod(self.dir, 0o755)
        os.mkdir(os.path.join(self.dir, "db"))
        r = subprocess.run(["sigtool", "--hex-dump"], input=VIRUS,
                           capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        with open(os.path.join(self.dir, "db", "elemta.ndb"), "w") as f:
            f.write("Elemta.Test.Virus:0:*:%s\n" % r.stdout.decode().strip())
        sock = os.path.join(self.dir, "clamd.sock")
        self.port = free_port()
        with open(os.path.join(self.dir, "clamd.conf"), "w") as f:
            f.write("LocalSocket %s\nDatabaseDirectory %s/db\nForeground yes\n"
                    "LogFile %s/clamd.log\nTemporaryDirectory %s\n"
                    % (sock, self.dir, self.dir, self.dir))
        with open(os.path.join(self.dir, "milter.conf"), "w") as f:
            f.write("MilterSocket inet:%d@127.0.0.1\nClamdSocket unix:%s\n"
                    "Foreground yes\nLogFile %s/milter.log\nOnInfected Reject\n"
                    "AddHeader Replace\nRejectMsg Virus found: %%v\n"
                    "TemporaryDirectory %s\n" % (self.port, sock, self.dir, self.dir))
        out = open(os.path.join(self.dir, "out.log"), "wb")
        self.clamd = subprocess.Popen(["clamd", "-c", os.path.join(self.dir, "clamd.conf")],
                                      stdout=out, stderr=subprocess.STDOUT)
        wait_until(lambda: os.path.exists(sock) or self.clamd.poll() is not None,
                   60, what="clamd socket")
        assert self.clamd.poll() is None, open(os.path.join(self.dir, "out.log")).read()
        self.milter = subprocess.Popen(["clamav-milter", "-c",
                                        os.path.join(self.dir, "milter.conf")],
                                       stdout=out, stderr=subprocess.STDOUT)
        wait_port(self.port, self.milter, "clamav-milter")

    def stop(self):
        stop_procs([self.milter, self.clamd], self.dir)


@pytest.fixture(scope="module")
def clamav():
    c = ClamAV()
    yield c
    c.stop()


def test_clamav_milter_refuses_a_virus(make_elemta, clamav):
    e = make_elemta(start=False)
    e.cfg["milters"] = [milter_entry("clamav", clamav.port, ["smtp"], timeout="30s")]
    e.write_config()
    e.start()
    infected = (b"From: alice@example.org\r\nTo: bob@example.com\r\n"
                b"Subject: invoice\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
                b"--XX\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
                b"--XX\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Disposition: attachment; filename=a.bin\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\n" +
                base64.b64encode(b"junk " + VIRUS + b" junk") + b"\r\n--XX--\r\n")
    out = send_message(e.port, "alice@example.org", ["bob@example.com"], infected)
    assert out[-1][1] // 100 == 5, out
    assert "Elemta.Test.Virus" in out[-1][2], out
    time.sleep(0.2)
    assert e.queued() == []
    # A clean message passes, with clamav-milter's header added.
    out = send_message(e.port, "alice@example.org", ["bob@example.com"], BODY)
    assert out[-1][1] == 250, out
    msg, _ = only_queued(e)
    assert b"X-Virus-Status: Clean" in msg, msg


def plain_token(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0" +
                            password.encode()).decode()


def dkim_elemta(make_elemta, opendkim, milters=None):
    """An smtp listener (the harness's port) and a submission listener
    (e.sub_port, AUTH without TLS) with OpenDKIM signing on submission
    and verifying on smtp."""
    e = make_elemta(start=False)
    e.sub_port = free_port()
    e.make_users({"alice": PASSWORD})
    e.cfg["server"]["listen"].append(
        {"address": "127.0.0.1:%d" % e.sub_port, "mode": "submission"})
    e.cfg["auth"] = {"users_file": "users", "require_tls": False}
    e.cfg["milters"] = milters if milters is not None else [
        milter_entry("dkim-sign", opendkim.sign_port, ["submission"]),
        milter_entry("dkim-verify", opendkim.verify_port, ["smtp"]),
    ]
    e.write_config()
    e.start()
    return e


def submit(port, message, rcpts=("bob@example.com",), auth=True):
    """One authenticated transaction; the final reply (code, text)."""
    c = SMTPConn(port)
    try:
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.test")[0] == 250
        if auth:
            assert c.cmd("AUTH PLAIN " + plain_token("alice", PASSWORD))[0] == 235
        assert c.cmd("MAIL FROM:<alice@example.org>")[0] == 250
        for r in rcpts:
            assert c.cmd("RCPT TO:<%s>" % r)[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(message.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        code, text, _ = c.reply()
        c.cmd("QUIT")
        return code, text
    finally:
        c.close()


def drop_header(msg, name):
    """msg without its first field called name (continuations included)."""
    head, body = msg.split(b"\r\n\r\n", 1)
    out, skipping, done = [], False, False
    for line in head.split(b"\r\n"):
        if skipping and line[:1] in (b" ", b"\t"):
            continue
        skipping = False
        if not done and line.lower().startswith(name.lower() + b":"):
            skipping = done = True
            continue
        out.append(line)
    return b"\r\n".join(out) + b"\r\n\r\n" + body


def only_queued(e, sub="queue"):
    wait_until(lambda: len(e.queued(sub)) == 1, 10, what="one message in " + sub)
    return e.read_queued(e.queued(sub)[0], sub)


def test_submission_mail_leaves_signed(make_elemta, opendkim):
    e = dkim_elemta(make_elemta, opendkim)
    code, text = submit(e.sub_port, MESSAGE)
    assert code == 250, text
    msg, env = only_queued(e)
    assert b"\r\nDKIM-Signature:" in msg or msg.startswith(b"DKIM-Signature:"), msg
    # The signature verifies with the public key (dkimpy, the key given
    # through its dnsfunc), and the message is otherwise as received.
    assert dkim.verify(msg, dnsfunc=opendkim.dnsfunc), msg
    assert msg.endswith(MESSAGE.split(b"\r\n\r\n", 1)[1])
    assert env["recipients"] == ["bob@example.com"]
    # Tampering the body breaks it: the check above can fail.
    assert not dkim.verify(msg.replace(b"Hello Bob", b"Hello Eve"),
                           dnsfunc=opendkim.dnsfunc)


def test_smtp_mail_gets_authentication_results(make_elemta, opendkim):
    e = dkim_elemta(make_elemta, opendkim)
    assert submit(e.sub_port, MESSAGE)[0] == 250
    signed, _ = only_queued(e)
    os.unlink(e.path("spool", "queue", e.queued()[0]))
    # Relay the signed message (without our Received:) into smtp.
    signed = drop_header(signed, b"Received")
    assert signed.startswith(b"DKIM-Signature:"), signed
    for body, verdict in ((signed, b"dkim=pass"),
                          (signed.replace(b"Hello Bob", b"Hello Eve"), b"dkim=fail")):
        out = send_message(e.port, "alice@example.org", ["bob@example.com"], body)
        assert out[-1][1] == 250, out
        msg, _ = only_queued(e)
        os.unlink(e.path("spool", "queue", e.queued()[0]))
        ar = [l for l in msg.split(b"\r\n") if l.lower().startswith(b"authentication-results:")]
        assert ar and verdict in msg, msg
        assert b"mx.test.example" in ar[0], ar


# ---- a milter written here: modifications, verdicts, misbehaviour ----

# SMFIP_NR_* of each step: a milter asking for it does not answer it.
NR_FLAGS = {b"C": 0x1000, b"H": 0x2000, b"M": 0x4000, b"R": 0x8000,
            b"T": 0x10000, b"L": 0x80, b"N": 0x40000, b"B": 0x80000}
SMFIP_NOHELO, SMFIP_SKIP, SMFIP_HDR_LEADSPC = 0x2, 0x400, 0x100000


def packet(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


class FakeMilter:
    """A milter speaking protocol 6 on 127.0.0.1:port.  behaviour:
    "ok" (continue everywhere, then eom_packets at end of message),
    "garbage" (answers the negotiation with junk), "silent" (never
    answers), "die" (closes the connection at the first body chunk).
    Records the commands and macros it received (self.seen)."""

    def __init__(self, behaviour="ok", eom_packets=(), protocol=0,
                 skip_body=False):
        self.behaviour = behaviour
        self.skip_body = skip_body
        self.headers = []
        self.body_chunks = 0
        self.eom_packets = list(eom_packets)
        self.protocol = protocol
        self.seen = []
        self.macros = {}
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.conns = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.session, args=(c,), daemon=True).start()

    @staticmethod
    def read_packet(c):
        hdr = b""
        while len(hdr) < 4:
            d = c.recv(4 - len(hdr))
            if not d:
                return None, None
            hdr += d
        n = struct.unpack(">I", hdr)[0]
        data = b""
        while len(data) < n:
            d = c.recv(n - len(data))
            if not d:
                return None, None
            data += d
        return data[:1], data[1:]

    def session(self, c):
        try:
            while True:
                cmd, data = self.read_packet(c)
                if cmd is None:
                    return
                self.seen.append(cmd)
                if self.behaviour == "silent":
                    continue
                if cmd == b"O":
                    if self.behaviour == "garbage":
                        c.sendall(b"\x00\x00\x00\x05Zjunk!!")
                        continue
                    c.sendall(packet(b"O", struct.pack(">III", 6, 0x1ff, self.protocol)))
                elif cmd == b"D":
                    parts = data[1:].split(b"\0")
                    for k, v in zip(parts[0::2], parts[1::2]):
                        self.macros[k.decode()] = v.decode()
                elif cmd == b"B" and self.behaviour == "die":
                    c.close()
                    return
                elif cmd == b"L":
                    self.headers.append(tuple(data.split(b"\0")[:2]))
                    if not self.protocol & NR_FLAGS[cmd]:
                        c.sendall(packet(b"c"))
                elif cmd == b"B" and self.skip_body:
                    self.body_chunks += 1
                    c.sendall(packet(b"s"))
                elif cmd in NR_FLAGS:
                    if cmd == b"B":
                        self.body_chunks += 1
                    if not self.protocol & NR_FLAGS[cmd]:
                        c.sendall(packet(b"c"))
                elif cmd == b"E":
                    for p in self.eom_packets:
                        c.sendall(p)
                elif cmd in (b"Q", b"A"):
                    if cmd == b"Q":
                        return
                else:
                    c.sendall(packet(b"c"))
        except OSError:
            return
        finally:
            c.close()

    def stop(self):
        self.stopping = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


@pytest.fixture
def fake_milter():
    made = []

    def factory(*a, **kw):
        m = FakeMilter(*a, **kw)
        made.append(m)
        return m
    yield factory
    for m in made:
        m.stop()


def fake_elemta(make_elemta, milters):
    e = make_elemta(start=False)
    e.cfg["milters"] = milters
    e.write_config()
    e.start()
    return e


BODY = (b"From: alice@example.org\r\nTo: bob@example.com\r\n"
        b"Subject: original\r\nX-Remove: me\r\n\r\nbody line\r\n")


def test_modifications_are_applied_before_the_250(make_elemta, fake_milter):
    eom = [packet(b"h", b"X-Added\0yes\0"),
           packet(b"i", struct.pack(">I", 0) + b"X-Top\0first\0"),
           packet(b"m", struct.pack(">I", 1) + b"Subject\0changed\0"),
           packet(b"m", struct.pack(">I", 1) + b"X-Remove\0\0"),
           packet(b"h", b"X-Folded\0line one\n\tline two\0"),
           packet(b"e", b"<new@example.org>\0"),
           packet(b"+", b"<carol@example.com>\0"),
           packet(b"-", b"<bob@example.com>\0"),
           packet(b"b", b"new body\r\n"),
           packet(b"c")]
    m = fake_milter(eom_packets=eom)
    e = fake_elemta(make_elemta, [milter_entry("fake", m.port, ["smtp"])])
    out = send_message(e.port, "alice@example.org", ["bob@example.com"], BODY)
    assert out[-1][1] == 250, out
    msg, env = only_queued(e)
    head, body = msg.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    assert lines[0] == b"X-Top: first", lines
    assert lines[1].startswith(b"Received: "), lines
    assert b"Subject: changed" in lines and b"Subject: original" not in lines
    assert not any(l.startswith(b"X-Remove") for l in lines)
    assert lines[-3:] == [b"X-Added: yes", b"X-Folded: line one", b"\tline two"], lines
    assert body == b"new body\r\n"
    assert env["sender"] == "new@example.org"
    assert env["recipients"] == ["carol@example.com"]
    assert int(env["size"]) == len(msg)
    # The replay carried the macros common milters need.
    assert m.macros["{daemon_name}"] == "smtp"
    assert m.macros["j"] == "mx.test.example"
    assert m.macros["{client_addr}"] == "127.0.0.1"
    assert m.macros["{mail_addr}"] == "alice@example.org"
    assert m.macros["{rcpt_addr}"] == "bob@example.com"
    assert m.macros["i"] == e.queued()[0]
    assert [c for c in m.seen if c != b"D"][:6] == [b"O", b"C", b"H", b"M", b"R", b"T"]


def test_bad_address_from_a_milter_changes_nothing(make_elemta, fake_milter):
    # A recipient MAIL/RCPT would refuse (here: no domain, a space) is a
    # bad edit: 451, nothing queued, not the header edit before it either.
    eom = [packet(b"h", b"X-Added\0yes\0"),
           packet(b"+", b"<no domain>\0"),
           packet(b"c")]
    m = fake_milter(eom_packets=eom)
    e = fake_elemta(make_elemta, [milter_entry("fake", m.port, ["smtp"])])
    out = send_message(e.port, "alice@example.org", ["bob@example.com"], BODY)
    assert out[-1][1] == 451, out
    assert out[-1][2].startswith("4.3.0"), out
    assert e.queued() == [] and e.queued("quarantine") == []


def test_edits_over_the_reply_backlog_tempfail_only_that_message(
        make_elemta, fake_milter):
    # 256 header edits of 16000 '%' each are ~12 MB escaped in policyd's
    # reply, over its 4 MB backlog: that message is tempfailed, and the
    # connection to smtpd (other sessions' requests) is kept.
    big = [packet(b"h", b"X-Big\0" + b"%" * 16000 + b"\0")] * 256
    m = fake_milter(eom_packets=big + [packet(b"c")])
    e = fake_elemta(make_elemta, [milter_entry("fake", m.port, ["smtp"])])
    out = send_message(e.port, "alice@example.org", ["bob@example.com"], BODY)
    assert out[-1][1] == 451, out
    assert "edits too large" in out[-1][2], out
    assert e.queued() == []


@pytest.mark.parametrize("reply,code,enh,text", [
    (packet(b"y", b"554-5.7.1 first line\r\n554 5.7.1 second line\0"), 554,
     "5.7.1", "first line; second line"),
    (packet(b"r"), 550, "5.7.1", "Message content rejected"),
    (packet(b"t"), 451, "4.7.1", None),
])
def test_refusals_reach_the_client_and_nothing_is_queued(
        make_elemta, fake_milter, reply, code, enh, text):
    m = fake_milter(eom_packets=[packet(b"h", b"X-Not\0kept\0"), reply])
    e = fake_elemta(make_elemta, [milter_entry("fake", m.port, ["smtp"])])
    out = send_message(e.port, "alice@example.org", ["bob@example.com"], BODY)
    assert out[-1][1] == code, out
    assert out[-1][2].startswith(enh), out
    if text:
        assert text in out[-1][2], out
    time.sleep(0.2)
    assert e.queued() == []


def test_quarantine_and_discard(make_elemta, fake_milter):
    q = fake_milter(eom_packets=[packet(b"q", b"looks odd\0"), packet(b"c")])
    e = fake_elemta(make_elemta, [milter_entry("q", q.port, ["smtp"])])
    out = send_message(e.port, "alice@example.org", ["bob@example.com"], BODY)
    assert out[-1][1] == 250, out
    only_queued(e, "quarantine")
    assert e.queued() == []


def test_milters_run_only_for_their_listener_modes(make_elemta, fake_milter):
    m = fake_milter(eom_packets=[packet(b"r")])
    e = fake_elemta(make_elemta, [milter_entry("fake", m.port, ["submission"])])
    out = send_message(e.port, "alice@example.org", ["bob@example.com"], BODY)
    assert out[-1][1] == 250, out
    assert m.seen == []


@pytest.mark.parametrize("behaviour,fail_mode,timeout", [
    ("garbage", "tempfail", "10s"), ("garbage", "accept", "10s"),
    ("silent", "tempfail", "1s"), ("silent", "accept", "1s"),
    ("die", "tempfail", "10s"), ("die", "accept", "10s"),
    ("down", "tempfail", "10s"), ("down", "accept", "10s"),
])
def test_misbehaving_milter_follows_fail_mode(make_elemta, fake_milter,
                                              behaviour, fail_mode, timeout):
    if behaviour == "down":
        port = free_port()
        m = None
    else:
        m = fake_milter(behaviour)
        port = m.port
    # A well-behaved milter after the broken one adds a header: in
    # accept mode it still runs, and the broken one's part is skipped.
    good = fake_milter(eom_packets=[packet(b"h", b"X-Good\0yes\0"), packet(b"c")])
    e = fake_elemta(make_elemta, [
        milter_entry("bad", port, ["smtp"], timeout=timeout, fail_mode=fail_mode),
        milter_entry("good", good.port, ["smtp"])])
    c = SMTPConn(e.port, timeout=30)
    try:
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.test")[0] == 250
        assert c.cmd("MAIL FROM:<alice@example.org>")[0] == 250
        assert c.cmd("RCPT TO:<bob@example.com>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(BODY + b".\r\n")
        code, text, _ = c.reply()
        # The session is not stuck: it takes the next command.
        assert c.cmd("RSET")[0] == 250
        c.cmd("QUIT")
    finally:
        c.close()
    if fail_mode == "tempfail":
        assert (code, text[:5]) == (451, "4.3.5"), text
        time.sleep(0.2)
        assert e.queued() == []
        assert good.seen == []
    else:
        assert code == 250, text
        msg, _ = only_queued(e)
        assert b"\r\nX-Good: yes\r\n" in msg
    if m is not None:
        assert m.seen[:1] == [b"O"], m.seen   # the premise: it was asked
    log = e.log()
    assert "milter bad" in log, log[-2000:]


def test_check_config_names_unreachable_milters(make_elemta, opendkim):
    down = free_port()
    e = make_elemta(start=False)
    e.cfg["milters"] = [milter_entry("dkim", opendkim.verify_port, ["smtp"]),
                        milter_entry("gone", down, ["smtp"])]
    e.write_config()
    r = e.ctl("check-config")
    assert r.returncode == 0, r
    assert "milter 'dkim' (inet:127.0.0.1:%d): reachable" % opendkim.verify_port \
        in r.stdout, r.stdout
    assert "warning: milter 'gone' (inet:127.0.0.1:%d) is unreachable: " % down \
        in r.stdout, r.stdout


def test_config_errors_name_the_milter_key(make_elemta):
    e = make_elemta(start=False)
    e.cfg["milters"] = [{"name": "x", "address": "tcp:1.2.3.4:5", "modes": ["smtp"]},
                        {"name": "y", "address": "inet:127.0.0.1:1", "modes": ["pop3"]},
                        {"name": "z", "address": "unix:/run/z.sock", "modes": ["smtp"],
                         "fail_mode": "maybe", "timeout": "1h"}]
    e.write_config()
    r = e.ctl("check-config")
    assert r.returncode != 0
    assert "milters[0].address" in r.stderr, r.stderr
    assert "milters[1].modes" in r.stderr, r.stderr
    assert "milters[2].fail_mode" in r.stderr, r.stderr
    assert "milters[2].timeout" in r.stderr, r.stderr


def test_metrics_per_milter(make_elemta, fake_milter):
    m = fake_milter(eom_packets=[packet(b"c")])
    e = fake_elemta(make_elemta, [milter_entry("fake", m.port, ["smtp"]),
                                  milter_entry("gone", free_port(), ["smtp"],
                                               fail_mode="accept")])
    out = send_message(e.port, "alice@example.org", ["bob@example.com"], BODY)
    assert out[-1][1] == 250, out

    def metrics():
        r = subprocess.run([STAT, "-c", e.config_path, "--prometheus"],
                           capture_output=True, text=True, timeout=20)
        return r.stdout
    wait_until(lambda: 'elemta_milter_verdicts_total{milter="fake",verdict="continue"} 1'
               in metrics(), 10, what="milter metrics")
    text = metrics()
    assert 'elemta_milter_errors_total{milter="gone",error="connect"} 1' in text, text
    assert 'elemta_milter_calls_total{milter="fake"} 1' in text, text
    assert 'elemta_milter_seconds_total{milter="fake"}' in text, text


def test_prepend_and_milter_edits_compose(make_elemta, fake_milter):
    """A policy plugin's PREPENDs (test_prepend.py's plugin, one per
    phase) and a milter's edits land in one rewrite: end of data's
    PREPEND below the earlier ones, a milter's insert at the top stays
    on top, its insert above Received: (as it saw the message) stays
    above Received: below every PREPEND."""
    from test_prepend import build_plugin
    m = fake_milter(eom_packets=[
        # Each index counts the headers as the edits before left them.
        packet(b"i", struct.pack(">I", 5) + b"X-M-Above-Received\0b\0"),
        packet(b"i", struct.pack(">I", 0) + b"X-M-Top\0a\0"),
        packet(b"h", b"X-M-End\0c\0"),
        packet(b"c")])
    e = make_elemta(start=False, plugins=[])
    so = build_plugin(e.dir)
    e.cfg["plugins"] = [{"name": "prepend_test", "path": so, "enabled": True}]
    e.cfg["milters"] = [milter_entry("fake", m.port, ["smtp"])]
    e.write_config()
    e.start()
    out = send_message(e.port, "alice@example.org", ["bob@example.com"],
                       b"Subject: both\r\n\r\nhello\r\n")
    assert out[-1][1] == 250, out
    msg, env = only_queued(e)
    names = [l.split(b":")[0].decode() for l in msg.split(b"\r\n\r\n")[0].split(b"\r\n")
             if l[:1] not in (b" ", b"\t")]
    assert names == ["X-M-Top", "X-Pp-Connect", "X-Pp-Helo", "X-Pp-Mail", "X-Pp-Rcpt",
                     "X-Pp-Data", "X-Pp-Eom", "X-M-Above-Received", "Received",
                     "Subject", "X-M-End"], names
    assert msg.endswith(b"\r\n\r\nhello\r\n")
    assert int(env["size"]) == len(msg)


def test_negotiated_steps_and_flags(make_elemta, fake_milter):
    """Protocol flags honoured: no answer awaited where the milter asked
    for none (every NR_*), a step it asked to skip not sent (NOHELO),
    header values with their leading space (HDR_LEADSPC), and a SKIP
    ends the body (only the first of several chunks sent)."""
    nr = sum(NR_FLAGS.values())
    m = fake_milter(eom_packets=[packet(b"h", b"X-Lead\0 spaced\0"), packet(b"c")],
                    protocol=nr | SMFIP_NOHELO | SMFIP_HDR_LEADSPC)
    sk = fake_milter(eom_packets=[packet(b"c")], protocol=SMFIP_SKIP, skip_body=True)
    e = fake_elemta(make_elemta, [milter_entry("nr", m.port, ["smtp"], timeout="5s"),
                                  milter_entry("skip", sk.port, ["smtp"], timeout="5s")])
    big = BODY + (b"x" * 998 + b"\r\n") * 200
    out = send_message(e.port, "alice@example.org", ["bob@example.com"], big)
    assert out[-1][1] == 250, (out, e.log()[-2000:])
    msg, _ = only_queued(e)
    assert b"\r\nX-Lead: spaced\r\n" in msg, msg[:600]
    assert b"H" not in m.seen and b"C" in m.seen and b"E" in m.seen, m.seen
    assert (b"Subject", b" original") in m.headers, m.headers
    assert m.body_chunks == 4, m.body_chunks        # 200 KB in 64 KB chunks
    assert sk.body_chunks == 1 and b"E" in sk.seen, (sk.body_chunks, sk.seen)
    assert (b"Subject", b"original") in sk.headers, sk.headers
