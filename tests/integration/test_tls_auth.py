"""STARTTLS, implicit TLS and SMTP AUTH (issue 5) against a real system:
elemtactl with its smtpd and policyd workers, a test certificate made with
openssl in the instance's directory, a users file of `openssl passwd -6`
hashes.  Clients: Python's smtplib (starttls, login), raw sockets for the
protocol edge cases (plaintext injection before STARTTLS, TLS garbage,
clients that vanish mid-handshake) and swaks as a second, independent
client.  Covers RFC 3207, RFC 4954 and RFC 8314 and the reference's
authentication phase: failed-auth limits shared by every policyd worker and
kept across a stop/start, and restricted authentication hours.
"""
import base64
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from elemta import SMTPConn, free_port, wait_until

PASSWORD = "s3cret"
BOB_PASSWORD = "hunter2-bob"
SWAKS = shutil.which("swaks") or "/usr/bin/swaks"


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)


def make_cert(d):
    """A self-signed EC certificate for localhost/127.0.0.1 in d."""
    r = _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
              "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
              "-subj", "/CN=localhost",
              "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
              "-keyout", os.path.join(d, "key.pem"),
              "-out", os.path.join(d, "cert.pem")])
    assert r.returncode == 0, r.stderr
    # The key stays readable by its owner alone (root when the tests run
    # as root): elemtactl opens both files and hands smtpd descriptors, so
    # neither check-config nor the unprivileged smtpd needs to read them.
    os.chmod(os.path.join(d, "cert.pem"), 0o644)
    os.chmod(os.path.join(d, "key.pem"), 0o600)


def tls_elemta(make_elemta, policy=None, smtps=False, require_tls=True,
               mode="submission", start=True, **kw):
    """An instance with TLS and AUTH: the first listener (the harness's
    port) is `mode`, plus an smtps listener (e.smtps_port) when asked."""
    e = make_elemta(start=False, policy=policy or {}, **kw)
    make_cert(e.dir)
    e.make_users({"alice": PASSWORD, "bob": BOB_PASSWORD})
    listen = [{"address": "127.0.0.1:%d" % e.port, "mode": mode}]
    e.smtps_port = None
    if smtps:
        e.smtps_port = free_port()
        listen.append({"address": "127.0.0.1:%d" % e.smtps_port, "mode": "smtps"})
    e.cfg["server"]["listen"] = listen
    e.cfg["tls"] = {"certificate": "cert.pem", "key": "key.pem"}
    e.cfg["auth"] = {"users_file": "users", "require_tls": require_tls}
    e.write_config()
    if start:
        e.start()
    return e


def client_ctx():
    """A client context that accepts the self-signed test certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def plain_token(user, password, authzid=""):
    return base64.b64encode(("%s\0%s\0%s" % (authzid, user, password)).encode()).decode()


def starttls_session(port):
    """smtplib after EHLO, STARTTLS and EHLO again."""
    s = smtplib.SMTP("127.0.0.1", port, timeout=15)
    s.ehlo("client.test")
    assert s.has_extn("starttls"), s.esmtp_features
    code, _ = s.starttls(context=client_ctx())
    assert code == 220
    s.ehlo("client.test")
    return s


def message(subject="hello"):
    return ("From: alice@example.com\r\nTo: bob@example.org\r\n"
            "Subject: %s\r\n\r\nHello.\r\n" % subject).encode()


def queued_envelopes(e):
    return [e.read_queued(q) for q in e.queued()]


def raw_auth(port, password, user="alice", tls=True):
    """(code, text) of one AUTH PLAIN on a fresh connection (over
    STARTTLS when tls)."""
    s = smtplib.SMTP("127.0.0.1", port, timeout=15)
    try:
        s.ehlo("client.test")
        if tls:
            s.starttls(context=client_ctx())
            s.ehlo("client.test")
        code, text = s.docmd("AUTH", "PLAIN " + plain_token(user, password))
        return code, text.decode()
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            pass


def policyd_pids_logging(e, needle):
    """The policyd pids whose log lines contain needle."""
    return set(int(m) for m in re.findall(r"elemta-policyd\[(\d+)\]: [^\n]*" + re.escape(needle),
                                          e.log()))


def recv_line(sock):
    """One CRLF-terminated line, read byte by byte (nothing beyond it is
    taken from the socket: the TLS handshake may follow)."""
    line = b""
    while not line.endswith(b"\r\n"):
        d = sock.recv(1)
        if not d:
            raise ConnectionError("closed after %r" % line)
        line += d
    return line


def client_hello():
    """The first flight of a real TLS client, for partial handshakes."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx().wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    data = out.read()
    assert len(data) > 40
    return data


# ---- STARTTLS, AUTH, implicit TLS: the normal paths ---------------------

def test_starttls_then_auth_plain_and_login_on_submission(make_elemta):
    e = tls_elemta(make_elemta)
    # the key arrived as a descriptor from elemtactl
    assert "loaded (from elemtactl)" in e.log(), e.log()[-3000:]

    s = smtplib.SMTP("127.0.0.1", e.port, timeout=15)
    s.ehlo("client.test")
    # without TLS: STARTTLS offered, AUTH not (auth.require_tls)
    assert s.has_extn("starttls") and not s.has_extn("auth"), s.esmtp_features
    s.starttls(context=client_ctx())
    s.ehlo("client.test")
    assert s.has_extn("auth") and not s.has_extn("starttls"), s.esmtp_features
    assert set(s.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN"}
    code, text = s.login("alice", PASSWORD)           # PLAIN, initial response
    assert code == 235 and text.startswith(b"2.7.0"), (code, text)
    s.sendmail("alice@example.com", ["bob@example.org"], message("plain"))
    s.quit()

    s = starttls_session(e.port)
    s.user, s.password = "alice", PASSWORD
    code, text = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
    assert code == 235, (code, text)
    s.sendmail("alice@example.com", ["bob@example.org"], message("login"))
    s.quit()

    wait_until(lambda: len(e.queued()) == 2, 10, what="two queued messages")
    for msg, env in queued_envelopes(e):
        assert env["auth-user"] == "alice", env
        assert env["tls"].startswith("TLSv1."), env
        head = msg.split(b"\r\n\r\n", 1)[0].decode()
        assert "with ESMTPSA id" in head, head
        assert re.search(r"\(using TLSv1\.[23] with cipher [A-Z0-9_-]+\)", head), head
    assert "sasl_method=LOGIN, sasl_username=alice" in e.log()
    assert PASSWORD not in e.log()


def test_auth_before_tls_is_refused_538_and_submission_requires_auth(make_elemta):
    e = tls_elemta(make_elemta)
    c = SMTPConn(e.port)
    try:
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.test")[0] == 250
        code, text, _ = c.cmd("AUTH PLAIN " + plain_token("alice", PASSWORD))
        assert (code, text.split()[0]) == (538, "5.7.11"), (code, text)
        code, text, _ = c.cmd("MAIL FROM:<alice@example.com>")
        assert (code, text.split()[0]) == (530, "5.7.0"), (code, text)
    finally:
        c.close()
    # under TLS but before AUTH: still 530
    s = starttls_session(e.port)
    code, text = s.docmd("MAIL", "FROM:<alice@example.com>")
    assert code == 530 and text.startswith(b"5.7.0"), (code, text)
    # after AUTH: accepted
    s.login("alice", PASSWORD)
    code, _ = s.docmd("MAIL", "FROM:<alice@example.com>")
    assert code == 250
    s.quit()


def test_implicit_tls_on_smtps_listener(make_elemta):
    e = tls_elemta(make_elemta, smtps=True)
    s = smtplib.SMTP_SSL("127.0.0.1", e.smtps_port, timeout=15, context=client_ctx())
    code, _ = s.ehlo("client.test")
    assert code == 250
    # already encrypted: no STARTTLS, AUTH offered
    assert not s.has_extn("starttls") and s.has_extn("auth"), s.esmtp_features
    assert s.docmd("STARTTLS")[0] == 503
    s.login("alice", PASSWORD)
    s.sendmail("alice@example.com", ["bob@example.org"], message("smtps"))
    s.quit()
    wait_until(lambda: len(e.queued()) == 1, 10, what="queued message")
    msg, env = queued_envelopes(e)[0]
    assert env["auth-user"] == "alice" and env["tls"].startswith("TLSv1."), env

    # the same with a raw TLS socket
    with socket.create_connection(("127.0.0.1", e.smtps_port), timeout=10) as raw:
        with client_ctx().wrap_socket(raw, server_hostname="localhost") as t:
            assert t.recv(512).startswith(b"220 ")
            t.sendall(b"QUIT\r\n")
            assert t.recv(512).startswith(b"221 ")


def test_wrong_password_535(make_elemta):
    e = tls_elemta(make_elemta)
    s = starttls_session(e.port)
    with pytest.raises(smtplib.SMTPAuthenticationError) as ei:
        s.login("alice", "not-the-password")
    assert ei.value.smtp_code == 535 and ei.value.smtp_error.startswith(b"5.7.8"), ei.value
    # an unknown user gets the very same answer
    code, text = s.docmd("AUTH", "PLAIN " + plain_token("mallory", "x"))
    assert code == 535 and text.startswith(b"5.7.8"), (code, text)
    # the session goes on, and the right password still works
    s.login("bob", BOB_PASSWORD)
    s.quit()


def test_auth_protocol_errors(make_elemta):
    e = tls_elemta(make_elemta, require_tls=False, mode="smtp")
    c = SMTPConn(e.port)
    try:
        assert c.reply()[0] == 220
        code, text, lines = c.cmd("EHLO client.test")
        assert "250-AUTH PLAIN LOGIN" in lines, lines
        assert c.cmd("AUTH PLAIN %%%%")[:2] == (501, "5.5.2 Error: cannot decode response")
        code, text, _ = c.cmd("AUTH LOGIN")
        assert (code, text) == (334, "VXNlcm5hbWU6")
        assert c.cmd("*")[:2] == (501, "5.7.0 Authentication aborted")
        code, text, _ = c.cmd("AUTH PLAIN " + "A" * 13000)
        assert (code, text) == (500, "5.5.6 Authentication Exchange line is too long")
        assert c.cmd("AUTH CRAM-MD5")[0] == 504
        # without TLS when auth.require_tls is off
        assert c.cmd("AUTH PLAIN " + plain_token("alice", PASSWORD))[0] == 235
        assert c.cmd("AUTH PLAIN " + plain_token("alice", PASSWORD))[:2] == \
            (503, "5.5.1 Error: already authenticated")
        assert c.cmd("MAIL FROM:<alice@example.com>")[0] == 250
        assert c.cmd("QUIT")[0] == 221
    finally:
        c.close()


# ---- the reference's authentication rules, for real ---------------------

def test_failed_auth_limit_across_policyd_workers_and_restart(make_elemta):
    e = tls_elemta(make_elemta, policy={"max_failed_auth": 3, "failed_auth_window": "1m"})
    assert len(e.worker_pids("policyd")) == 2
    # first failure; then the policyd worker that counted it is killed, so
    # the next failures are counted by another process
    assert raw_auth(e.port, "wrong-1")[0] == 535
    first = policyd_pids_logging(e, "AUTH credentials bad")
    assert len(first) == 1, e.log()[-3000:]
    killed = first.pop()
    os.kill(killed, 9)
    wait_until(lambda: killed not in e.worker_pids("policyd")
               and len(e.worker_pids("policyd")) == 2, 15,
               what="the killed policyd worker replaced")
    for attempt in ("wrong-2", "wrong-3"):
        code, text = raw_auth(e.port, attempt)
        assert (code, text.split()[0]) == (535, "5.7.8"), (code, text)
    assert len(policyd_pids_logging(e, "AUTH credentials bad")) >= 2
    # over the limit: even the right password is refused, 454 4.7.0
    code, text = raw_auth(e.port, PASSWORD)
    assert (code, text.split()[0]) == (454, "4.7.0"), (code, text)

    # the count survives a stop/start of the whole system
    e.stop()
    e.start()
    code, text = raw_auth(e.port, PASSWORD)
    assert (code, text.split()[0]) == (454, "4.7.0"), (code, text)
    # another user from the same address is locked out too (per address)
    code, text = raw_auth(e.port, BOB_PASSWORD, user="bob")
    assert (code, text.split()[0]) == (454, "4.7.0"), (code, text)


def test_user_auth_hours(make_elemta):
    now = time.gmtime()
    # alice's window is two hours ahead of now, bob's spans now
    outside = {"start": "%02d:00" % ((now.tm_hour + 2) % 24),
               "end": "%02d:00" % ((now.tm_hour + 3) % 24), "timezone": "UTC"}
    inside = {"start": "%02d:00" % ((now.tm_hour + 23) % 24),
              "end": "%02d:00" % ((now.tm_hour + 2) % 24), "timezone": "UTC"}
    e = tls_elemta(make_elemta, policy={"user_auth_hours": {"alice": outside, "bob": inside}})
    code, text = raw_auth(e.port, PASSWORD)
    assert (code, text.split()[0]) == (535, "5.7.8"), (code, text)
    code, text = raw_auth(e.port, BOB_PASSWORD, user="bob")
    assert code == 235, (code, text)


# ---- hostile and broken clients -----------------------------------------

def test_plaintext_injection_before_starttls_is_discarded(make_elemta):
    e = tls_elemta(make_elemta, mode="smtp")
    sock = socket.create_connection(("127.0.0.1", e.port), timeout=10)
    try:
        assert recv_line(sock).startswith(b"220 ")
        sock.sendall(b"EHLO client.test\r\n")
        while True:
            line = recv_line(sock)
            assert line.startswith(b"250"), line
            if line[3:4] == b" ":
                break
        # one packet: STARTTLS and a command the server must never run
        sock.sendall(b"STARTTLS\r\nRSET\r\n")
        assert recv_line(sock) == b"220 2.0.0 Ready to start TLS\r\n"
        t = client_ctx().wrap_socket(sock, server_hostname="localhost")
        # nothing may come for the RSET
        t.settimeout(1.0)
        with pytest.raises(socket.timeout):
            t.recv(512)
        t.settimeout(10)
        t.sendall(b"NOOP\r\n")
        assert t.recv(512) == b"250 2.0.0 Ok\r\n"
        # RFC 3207: the client must say EHLO again
        t.sendall(b"MAIL FROM:<a@example.com>\r\n")
        assert t.recv(512).startswith(b"503 5.5.1")
        t.sendall(b"QUIT\r\n")
        assert t.recv(512).startswith(b"221 ")
        t.close()
    finally:
        sock.close()
    wait_until(lambda: "discarding 6 byte(s) sent after STARTTLS" in e.log(), 5,
               what="the discard logged")


def test_client_dropping_mid_handshake_does_not_hurt_the_worker(make_elemta):
    e = tls_elemta(make_elemta, smtps=True, mode="smtp",
                   overrides={"server": {"workers": 1}})
    pids = e.worker_pids("smtpd")
    hello = client_hello()
    # smtps: half a ClientHello, then gone
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", e.smtps_port), timeout=10) as s:
            s.sendall(hello[:len(hello) // 2])
    # STARTTLS: the 220, half a ClientHello, then gone
    for _ in range(3):
        c = SMTPConn(e.port)
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.test")[0] == 250
        assert c.cmd("STARTTLS")[0] == 220
        c.send(hello[:len(hello) // 2])
        c.close()
    # a connection that says nothing at all on the smtps port
    with socket.create_connection(("127.0.0.1", e.smtps_port), timeout=10):
        pass
    wait_until(lambda: e.log().count("TLS handshake failed") >= 7, 10,
               what="seven failed handshakes logged")
    assert e.worker_pids("smtpd") == pids
    # the worker still serves both kinds of TLS
    s = starttls_session(e.port)
    s.quit()
    s = smtplib.SMTP_SSL("127.0.0.1", e.smtps_port, timeout=15, context=client_ctx())
    s.ehlo("client.test")
    s.quit()


def test_tls_garbage_on_smtps_port(make_elemta):
    e = tls_elemta(make_elemta, smtps=True, overrides={"server": {"workers": 1}})
    pids = e.worker_pids("smtpd")
    for junk in (b"EHLO client.test\r\n", b"GET / HTTP/1.0\r\n\r\n",
                 bytes(range(256)) * 4, b"\x16\x03\x01\xff\xff" + b"\x00" * 600):
        with socket.create_connection(("127.0.0.1", e.smtps_port), timeout=10) as s:
            s.sendall(junk)
            s.settimeout(10)
            got = b""
            try:
                while True:
                    d = s.recv(4096)
                    if not d:
                        break
                    got += d
            except (ConnectionResetError, socket.timeout):
                pass
            # never an SMTP greeting in plaintext; at most a TLS alert
            assert not got.startswith(b"220"), got[:80]
    wait_until(lambda: e.log().count("TLS handshake failed") >= 4, 10,
               what="four failed handshakes logged")
    assert e.worker_pids("smtpd") == pids
    s = smtplib.SMTP_SSL("127.0.0.1", e.smtps_port, timeout=15, context=client_ctx())
    assert s.ehlo("client.test")[0] == 250
    s.quit()


# ---- swaks, a second and independent client ------------------------------

def swaks(*args):
    return _run([SWAKS, "--ehlo", "client.test", "--from", "alice@example.com",
                 "--to", "bob@example.org", "--timeout", "20"] + list(args))


@pytest.mark.skipif(not os.path.exists(SWAKS), reason="swaks is not installed")
def test_swaks_starttls_auth_and_implicit_tls(make_elemta):
    e = tls_elemta(make_elemta, smtps=True)
    port = "127.0.0.1:%d" % e.port
    r = swaks("--server", port, "--tls", "--auth", "PLAIN", "--auth-user", "alice",
              "--auth-password", PASSWORD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0 Authentication successful" in r.stdout, r.stdout
    assert re.search(r"250 2\.0\.0 Ok: queued as [0-9A-F]{16}", r.stdout), r.stdout

    r = swaks("--server", port, "--tls", "--auth", "LOGIN", "--auth-user", "bob",
              "--auth-password", BOB_PASSWORD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "334 VXNlcm5hbWU6" in r.stdout, r.stdout

    # wrong password: swaks reports the failure and exits non-zero
    r = swaks("--server", port, "--tls", "--auth", "PLAIN", "--auth-user", "alice",
              "--auth-password", "wrong")
    assert r.returncode != 0
    assert "535 5.7.8" in r.stdout, r.stdout

    # no TLS: swaks sees AUTH not offered and refuses to try
    r = swaks("--server", port, "--auth", "PLAIN", "--auth-user", "alice",
              "--auth-password", PASSWORD)
    assert r.returncode != 0, r.stdout

    # implicit TLS
    r = swaks("--server", "127.0.0.1:%d" % e.smtps_port, "--tls-on-connect",
              "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", PASSWORD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0" in r.stdout, r.stdout

    wait_until(lambda: len(e.queued()) == 3, 10, what="three queued messages")
    users = sorted(env["auth-user"] for _, env in queued_envelopes(e))
    assert users == ["alice", "alice", "bob"], users
