"""Disk space (issue 17): the spool lives on a 2 MB tmpfs made for the
test.  Below spool.min_free (plus a declared SIZE) smtpd answers MAIL with
Postfix's 452 4.3.1 Insufficient system storage; a message that fills the
file system while it is written is answered 452 4.3.1 at the end of data
and leaves nothing behind (no file in tmp/ or queue/, the space given
back), and the session goes on.  elemta-queued, finding the disk full
when it records an outcome, records it once there is room again.  Needs
root (mount); skipped otherwise.
"""
import os
import subprocess
import threading

import pytest

from elemta import SMTPConn, free_port, send_message, wait_until

MB = 1024 * 1024
NO_STORAGE = (452, "4.3.1 Insufficient system storage")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="mounting a small tmpfs for the spool needs root")


@pytest.fixture
def small_spool(make_elemta):
    """factory(min_free) -> a started instance whose spool is a fresh
    2 MB tmpfs; unmounted after the instance stops."""
    mounted = []

    def factory(min_free, **overrides):
        overrides["spool"] = {"min_free": min_free}
        e = make_elemta(start=False, overrides=overrides)
        spool = e.path("spool")
        os.mkdir(spool, 0o755)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755",
                            "tmpfs", spool], capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            pytest.skip("cannot mount a tmpfs here: %s" % r.stderr.strip())
        mounted.append((e, spool))
        return e.start()

    yield factory
    for e, spool in mounted:
        e.stop()
        subprocess.run(["umount", spool], capture_output=True, timeout=30)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def greeted(e):
    c = SMTPConn(e.port)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.test")[0] == 250
    return c


def test_mail_refused_below_min_free(small_spool):
    e = small_spool("4MB")              # more than the 2 MB file system
    c = greeted(e)
    try:
        code, text, _ = c.cmd("MAIL FROM:<a@client.example>")
        assert (code, text) == NO_STORAGE
        # The session goes on; the next MAIL is refused again.
        code, text, _ = c.cmd("MAIL FROM:<a@client.example> SIZE=10")
        assert (code, text) == NO_STORAGE
    finally:
        c.close()
    assert "452 4.3.1 Insufficient system storage" in e.log()


def test_declared_size_counts(small_spool):
    e = small_spool("512KB")
    c = greeted(e)
    try:
        # 512 KB + 3 MB does not fit in 2 MB; 512 KB + 1 KB does.
        code, text, _ = c.cmd("MAIL FROM:<a@client.example> SIZE=%d" % (3 * MB))
        assert (code, text) == NO_STORAGE
        code, text, _ = c.cmd("MAIL FROM:<a@client.example> SIZE=1024")
        assert code == 250, text
    finally:
        c.close()


def test_full_disk_while_writing(small_spool):
    e = small_spool("off")
    spool = e.path("spool")
    before = free_bytes(spool)
    c = greeted(e)
    try:
        assert c.cmd("MAIL FROM:<a@client.example>")[0] == 250
        assert c.cmd("RCPT TO:<b@example.net>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        line = b"x" * 998 + b"\r\n"
        body = b"Subject: big\r\n\r\n" + line * (3 * MB // len(line))
        c.send(body + b".\r\n")
        code, text, _ = c.reply()
        assert (code, text) == NO_STORAGE
        # Nothing partial: no file anywhere, the space is back.
        assert os.listdir(os.path.join(spool, "tmp")) == []
        assert os.listdir(os.path.join(spool, "queue")) == []
        wait_until(lambda: free_bytes(spool) >= before - 64 * 1024, 5,
                   what="the spool's space given back")
        # The session goes on, and a message that fits is queued.
        assert c.cmd("MAIL FROM:<a@client.example>")[0] == 250
        assert c.cmd("RCPT TO:<b@example.net>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: small\r\n\r\nhello\r\n.\r\n")
        code, text, _ = c.reply()
        assert code == 250, text
    finally:
        c.close()
    assert len(e.queued()) == 1
    assert "No space left on device" in e.log()


def fill(path):
    """Write path until the file system is full."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def test_queued_records_an_outcome_once_the_disk_has_room(small_spool):
    controller = pytest.importorskip("aiosmtpd.controller")
    got, lock = [], threading.Lock()

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            with lock:
                got.extend(envelope.rcpt_tos)
            return "250 OK"

    sink_port, dead_port = free_port(), free_port()
    e = small_spool("off", delivery={
        "routes": [
            {"domains": ["one.test"], "next_hop": "smtp:[127.0.0.1]:%d" % sink_port},
            {"domains": ["two.test"], "next_hop": "smtp:[127.0.0.1]:%d" % dead_port}],
        "retry": {"min_backoff": "1h", "max_backoff": "2h", "max_lifetime": "1d"}})
    out = send_message(e.port, "a@client.test", ["r1@one.test", "r2@two.test"],
                       b"Subject: full\r\n\r\nbody\r\n")
    assert out[-1][1] == 250, out
    [qid] = wait_until(lambda: e.queued("state") and
                       [f for f in e.queued("state") if not f.startswith(".")], 10,
                       what="both recipients deferred")
    state = e.path("spool", "state", qid)
    # Next hop one.test comes up; the disk fills; a flush delivers r1.
    sink = controller.Controller(Handler(), hostname="127.0.0.1", port=sink_port)
    sink.start()
    try:
        filler = e.path("spool", "filler")
        fill(filler)
        assert e.ctl("queue", "flush").returncode == 0
        wait_until(lambda: got, 10, what="r1 delivered")
        wait_until(lambda: "cannot record state" in e.log(), 10,
                   what="the failed state write")
        assert "rcpt delivered" not in open(state).read()
        # Room again: the outcome is recorded without another delivery.
        os.unlink(filler)
        wait_until(lambda: "rcpt delivered" in open(state).read(), 15,
                   what="r1's delivery recorded")
        assert got == ["r1@one.test"]
    finally:
        sink.stop()
