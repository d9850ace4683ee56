"""The spine (issue 2): elemtactl starts policyd and smtpd workers, a
message goes end to end, the message-rate limit holds across workers and
restarts, and every failure path answers clearly."""
import os
import signal
import smtplib
import socket
import subprocess
import time

from elemta import ELEMTACTL, SMTPConn, send_message, wait_until, free_port

BODY = (b"From: Alice <alice@example.org>\r\n"
        b"To: bob@example.com\r\n"
        b"Subject: spine test\r\n"
        b"\r\n"
        b"Hello Bob.\r\n"
        b"..a line that started with a dot\r\n"
        b"\xc3\xa9 8bit bytes stay exact\r\n")
STORED = BODY.replace(b"\r\n..a line", b"\r\n.a line")


def test_message_is_spooled_byte_exact_with_envelope(make_elemta):
    e = make_elemta()
    with smtplib.SMTP("127.0.0.1", e.port, timeout=10) as s:
        s.ehlo("client.test")
        # smtplib dot-stuffs itself: give it the unstuffed message.
        refused = s.sendmail("alice@example.org", ["bob@example.com", "carol@example.com"],
                             STORED)
        assert refused == {}
    ids = e.queued()
    assert len(ids) == 1, ids
    msg, env = e.read_queued(ids[0])
    assert msg.startswith(b"Received: from client.test")
    # The prepended trace header is the only difference.
    head, sep, rest = msg.partition(b"\r\nFrom: Alice")
    assert sep, msg[:300]
    assert b"From: Alice" + rest == STORED
    assert env["sender"] == "alice@example.org"
    assert env["recipients"] == ["bob@example.com", "carol@example.com"]
    assert env["client-address"] == "127.0.0.1"
    assert env["helo"] == "client.test"
    assert env["queue-id"] == ids[0]
    assert int(env["size"]) == len(msg)
    assert e.queued("tmp") == []


def test_raw_dialogue_dot_unstuffing_and_queue_id(make_elemta):
    e = make_elemta()
    r = send_message(e.port, "a@example.org", ["b@example.com"], BODY)
    assert r[-1][0] == "eom" and r[-1][1] == 250, r
    assert "2.0.0" in r[-1][2]
    qid = r[-1][2].split()[-1]
    assert e.queued() == [qid]
    msg, _ = e.read_queued(qid)
    assert msg.endswith(STORED)


def test_blocked_recipient_domain_refused(make_elemta):
    e = make_elemta(policy={"blocked_recipient_domains": ["blocked.com", ".spam.org"]})
    c = SMTPConn(e.port)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.test")[0] == 250
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    code, text, _ = c.cmd("RCPT TO:<x@Blocked.COM>")
    assert code == 550 and text.startswith("5.7.1"), (code, text)
    code, text, _ = c.cmd("RCPT TO:<x@mx.spam.org>")
    assert code == 550 and text.startswith("5.7.1"), (code, text)
    code, text, _ = c.cmd("RCPT TO:<x@spam.org>")   # ".spam.org" is subdomains only
    assert code == 250, (code, text)
    code, text, _ = c.cmd("RCPT TO:<x@notblocked.com>")
    assert code == 250, (code, text)
    c.cmd("QUIT")
    c.close()
    assert "5.7.1" in e.log()


def _mail_codes(port, n):
    """n transactions' MAIL reply codes, each on a fresh connection (so they
    spread over both smtpd workers and the policyd workers behind them)."""
    codes = []
    for i in range(n):
        c = SMTPConn(port)
        try:
            assert c.reply()[0] == 220
            c.cmd("EHLO rate.test")
            code, text, _ = c.cmd("MAIL FROM:<m%d@example.org>" % i)
            codes.append((code, text))
            c.cmd("QUIT")
        finally:
            c.close()
    return codes


def test_message_rate_shared_across_workers_and_restarts(make_elemta):
    limit = 5
    e = make_elemta(policy={"max_messages_per_minute": limit})
    assert len(e.worker_pids("smtpd")) == 2 and len(e.worker_pids("policyd")) == 2
    codes = _mail_codes(e.port, limit + 2)
    assert [c for c, _ in codes[:limit]] == [250] * limit, codes
    for code, text in codes[limit:]:
        assert code == 450 and text.startswith("4.7.1"), codes
    # A full stop/start keeps the count: the table is LMDB on disk.
    e.stop()
    assert not os.path.exists(e.path("run", "policyd.sock"))
    e.start()
    code, text = _mail_codes(e.port, 1)[0]
    assert code == 450 and text.startswith("4.7.1"), (code, text)


def test_killed_policyd_worker_is_restarted(make_elemta):
    e = make_elemta()
    before = e.worker_pids("policyd")
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(e.worker_pids("policyd")) == 2 and victim not in e.worker_pids("policyd"),
               10, what="policyd worker restarted")
    assert "signal 9" in e.log()
    # And mail still flows through the new worker.
    for _ in range(4):
        r = send_message(e.port, "a@example.org", ["b@example.com"], BODY)
        assert r[-1][1] == 250, r


def test_killed_smtpd_worker_is_restarted(make_elemta):
    e = make_elemta()
    victim = e.worker_pids("smtpd")[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(e.worker_pids("smtpd")) == 2 and victim not in e.worker_pids("smtpd"),
               10, what="smtpd worker restarted")
    r = send_message(e.port, "a@example.org", ["b@example.com"], BODY)
    assert r[-1][1] == 250, r


def _stop_policyd(e):
    pids = e.worker_pids("policyd")
    for p in pids:
        os.kill(p, signal.SIGSTOP)
    return pids


def _cont(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGCONT)
        except ProcessLookupError:
            pass


def test_policyd_unresponsive_gives_451_435(make_elemta):
    e = make_elemta(overrides={"policyd": {"timeout_ms": 300}})
    pids = _stop_policyd(e)
    try:
        c = SMTPConn(e.port)
        code, text, _ = c.reply()
        # The CONNECT decision itself cannot be made: tempfail, never accept.
        assert code == 451 or code == 421, (code, text)
        assert "4.3.5" in text, text
        c.close()
    finally:
        _cont(pids)
    assert e.queued() == []


def test_policyd_unresponsive_fail_mode_accept_continues(make_elemta):
    e = make_elemta(overrides={"policyd": {"timeout_ms": 300, "fail_mode": "accept"}})
    pids = _stop_policyd(e)
    try:
        r = send_message(e.port, "a@example.org", ["b@example.com"], BODY)
        assert r[-1] == ("eom", 250, r[-1][2]), r
    finally:
        _cont(pids)


def test_policyd_crash_mid_request_gives_451_435(make_elemta):
    """policyd dies while smtpd waits for its answer: the session gets
    451 4.3.5 at once (not after the timeout), and nothing is accepted."""
    e = make_elemta(overrides={"policyd": {"timeout_ms": 20000, "workers": 1},
                               "server": {"workers": 1}})
    # Warm up: smtpd's pooled connection is now accepted by the one policyd
    # worker, and an idle pooled connection is always reused first.
    for _ in range(2):
        assert send_message(e.port, "a@example.org", ["b@example.com"], BODY)[-1][1] == 250
    queued = e.queued()
    pids = _stop_policyd(e)
    c = SMTPConn(e.port, timeout=15)
    time.sleep(0.5)       # the CONNECT request is now pending in a stopped worker
    t0 = time.monotonic()
    for p in pids:
        os.kill(p, signal.SIGKILL)
    code, text, _ = c.reply()
    assert time.monotonic() - t0 < 10
    assert code in (451, 421) and "4.3.5" in text, (code, text)
    c.close()
    assert e.queued() == queued
    # elemtactl brings policyd back and service resumes.
    wait_until(lambda: len(e.worker_pids("policyd")) == 1, 10, what="policyd back")
    r = send_message(e.port, "a@example.org", ["b@example.com"], BODY)
    assert r[-1][1] == 250, r


def test_client_disconnect_mid_data_leaves_nothing(make_elemta):
    e = make_elemta()
    c = SMTPConn(e.port)
    c.reply()
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<b@example.com>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: half\r\n\r\n" + b"x" * 100000 + b"\r\n")
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    time.sleep(0.5)
    assert e.queued() == []
    wait_until(lambda: e.queued("tmp") == [], 5, what="tmp cleaned")
    # The worker survived and serves the next client.
    r = send_message(e.port, "a@example.org", ["b@example.com"], BODY)
    assert r[-1][1] == 250, r


def test_second_start_is_refused(make_elemta):
    e = make_elemta()
    r = e.ctl("start", "--foreground", timeout=15)
    assert r.returncode != 0
    assert "already running" in r.stderr


def test_status_reports_running_and_stopped(make_elemta):
    e = make_elemta()
    r = e.ctl("status")
    assert r.returncode == 0, r
    assert "running" in r.stdout
    e.stop()
    r = e.ctl("status")
    assert r.returncode == 3, r


def test_port_in_use_is_a_clear_error(make_elemta):
    e = make_elemta(start=False)
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", e.port))
    blocker.listen(1)
    try:
        r = e.ctl("start", "--foreground", timeout=15)
        assert r.returncode != 0
        assert "127.0.0.1:%d" % e.port in r.stderr and "in use" in r.stderr, r.stderr
    finally:
        blocker.close()


def test_bad_config_refused_with_line_number(make_elemta, tmp_path):
    e = make_elemta(start=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  listen:\n    - address: 127.0.0.1:2525\n"
                   "  workers: lots\n"
                   "polciyd:\n  workers: 2\n")
    for args in (["check-config"], ["start", "--foreground"]):
        r = subprocess.run([ELEMTACTL, "-c", str(bad)] + args,
                           capture_output=True, text=True, timeout=15)
        assert r.returncode != 0
        assert "%s:4:" % bad in r.stderr and "server.workers" in r.stderr, r.stderr
        assert "%s:5:" % bad in r.stderr and "policyd" in r.stderr, r.stderr
    r = e.ctl("check-config")
    assert r.returncode == 0, r.stderr


def test_unwritable_spool_dir_is_a_clear_error(make_elemta, tmp_path):
    e = make_elemta(start=False)
    blocker = tmp_path / "notadir"
    blocker.write_text("x")
    e.cfg["spool"]["path"] = str(blocker / "spool")
    e.write_config()
    r = e.ctl("start", "--foreground", timeout=15)
    assert r.returncode != 0
    assert str(blocker) in r.stderr, r.stderr
