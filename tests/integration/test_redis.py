"""Several MX hosts, one limit (issue 10): the Redis counter backend against a
real redis-server that each test starts on a free loopback port (and stops;
`redis-server --port P --save "" --appendonly no --daemonize no`), with two
complete Elemta instances (separate configs, spools, runtime directories and
ports; counters.backend: redis) sharing it.

- A client alternating between the two instances is held to one shared
  max_messages_per_minute exactly: 5 accepted in total, the 6th refused on
  either instance; elemta-stat on either reads the same window from Redis.
- Failed AUTH counts are shared: guesses spread over both instances lock the
  address out on both and slow the user down on both (skipped while smtpd
  does not offer AUTH).
- Redis stopped: MAIL is answered 451 4.3.0 in tempfail mode (policyd cannot
  count, so it never silently allows), the outage is logged once per policyd
  worker rather than per request, and service returns within seconds of
  Redis coming back; with policyd.fail_mode: accept, mail continues.

Every test is skipped when redis-server is not installed.
"""
import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from elemta import STAT, SMTPConn, free_port, wait_until

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
PASSWORD = "s3cret"


class Redis:
    """A private redis-server on a loopback port."""

    def __init__(self, workdir):
        self.port = free_port()
        self.dir = str(workdir)
        self.proc = None

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def kill_clients(self):
        """CLIENT KILL every other connection: the server stays up, every
        kept client connection dies.  Returns how many were killed."""
        cmd = b"*4\r\n$6\r\nCLIENT\r\n$4\r\nKILL\r\n$4\r\nTYPE\r\n$6\r\nnormal\r\n"
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(cmd)
            reply = s.recv(64)
        assert reply.startswith(b":"), reply
        return int(reply[1:].split(b"\r\n")[0])

    def start(self):
        assert self.proc is None
        self.log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--dir", self.dir],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self.ping, 10, what="redis-server on port %d" % self.port)
        return self

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None
        self.log.close()


@pytest.fixture
def redis(tmp_path):
    if not os.access(REDIS, os.X_OK):
        pytest.skip("redis-server is not installed")
    r = Redis(tmp_path).start()
    yield r
    r.stop()


def redis_overrides(r, **policyd):
    o = {"counters": {"backend": "redis",
                      "redis": {"address": "127.0.0.1:%d" % r.port,
                                "timeout_ms": 200}}}
    if policyd:
        o["policyd"] = policyd
    return o


def stat_entries(e):
    import json
    p = subprocess.run([STAT, "-c", e.config_path, "--json", "list"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["entries"]


def mail_from(port, source, sender="rate@example.org"):
    """(code, text) of MAIL FROM on a fresh session from source."""
    c = SMTPConn(port, source=source)
    try:
        code, text, _ = c.reply()
        assert code == 220, (code, text)
        assert c.cmd("EHLO client.test")[0] == 250
        code, text, _ = c.cmd("MAIL FROM:<%s>" % sender)
        c.cmd("QUIT")
        return code, text
    finally:
        c.close()


def test_two_instances_share_one_rate_limit(make_elemta, redis):
    policy = {"max_messages_per_minute": 5}
    a = make_elemta(policy=policy, overrides=redis_overrides(redis))
    b = make_elemta(policy=policy, overrides=redis_overrides(redis))
    assert a.port != b.port and a.dir != b.dir
    got = []
    for i in range(8):
        e = (a, b)[i % 2]
        got.append(mail_from(e.port, "127.0.0.100"))
    accepted = [g for g in got if g[0] == 250]
    assert len(accepted) == 5, got
    assert all(g[0] == 250 for g in got[:5]), got
    for code, text in got[5:]:
        assert code == 450 and text.startswith("4.7.1 "), got
    # another client is not affected, on either instance
    assert mail_from(a.port, "127.0.0.101")[0] == 250
    assert mail_from(b.port, "127.0.0.101")[0] == 250
    # both instances read the one window (and the shared metrics) from Redis
    for e in (a, b):
        rates = {x["key"]: x for x in stat_entries(e) if x["kind"] == "rate"}
        k = [k for k in rates if "127.0.0.100" in k]
        assert len(k) == 1 and rates[k[0]]["count"] == 5 and rates[k[0]]["limit"] == 5, rates
    # nothing was written to either instance's LMDB directory
    assert not os.path.exists(a.path("counters", "data.mdb"))
    assert not os.path.exists(b.path("counters", "data.mdb"))


def auth_plain(port, source, user, password):
    c = SMTPConn(port, source=source)
    try:
        assert c.reply()[0] == 220
        code, text, lines = c.cmd("EHLO client.test")
        if not any(l[4:].upper().startswith("AUTH") for l in lines):
            return None
        token = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
        code, text, _ = c.cmd("AUTH PLAIN " + token)
        c.cmd("QUIT")
        return code, text
    finally:
        c.close()


def test_failed_auth_counts_shared(make_elemta, redis):
    policy = {"max_failed_auth": 3, "failed_auth_window": "15m"}
    insts = []
    for _ in range(2):
        o = redis_overrides(redis)
        o["auth"] = {"users_file": "users", "require_tls": False}
        e = make_elemta(start=False, policy=policy, overrides=o)
        e.make_users({"alice": PASSWORD})
        e.start()
        insts.append(e)
    a, b = insts
    first = auth_plain(a.port, "127.0.0.120", "alice", "wrong-1")
    assert first is not None, "AUTH not offered with auth.require_tls: false"
    assert first[0] == 535 and first[1].startswith("5.7.8"), first
    # two more wrong guesses, on the other instance then the first
    r = auth_plain(b.port, "127.0.0.120", "alice", "wrong-2")
    assert r[0] == 535, r
    r = auth_plain(a.port, "127.0.0.120", "alice", "wrong-3")
    assert r[0] == 535, r
    # three failures across the two hosts: locked out on both, even with
    # the right password
    for e in (b, a):
        r = auth_plain(e.port, "127.0.0.120", "alice", PASSWORD)
        assert r[0] == 454 and r[1].startswith("4.7.0"), r
    # the user alone is never locked (issue 22): from another address her
    # right password works, slowed down by the failures both hosts share
    t0 = time.monotonic()
    r = auth_plain(b.port, "127.0.0.121", "alice", PASSWORD)
    assert r[0] == 235, r
    assert time.monotonic() - t0 >= 0.5
    # elemta-stat on either instance sees the shared failure log
    rates = {x["key"]: x for x in stat_entries(b) if x["kind"] == "rate"}
    ip = [x for k, x in rates.items() if "authfail:ip:" in k and "127.0.0.120" in k]
    assert ip and ip[0]["count"] >= 3, rates


def pid_of(line):
    """The pid in a log line "... prog[PID]: ..."."""
    return int(re.search(r"\[(\d+)\]:", line).group(1))


def unreachable_lines(e):
    return [l for l in e.log().splitlines() if "counter store: redis" in l and "unreachable" in l]


def test_redis_down_tempfails_then_recovers(make_elemta, redis):
    e = make_elemta(policy={"max_messages_per_minute": 100},
                    overrides=redis_overrides(redis))
    assert mail_from(e.port, "127.0.0.130")[0] == 250
    redis.stop()
    t0 = time.monotonic()
    for i in range(6):
        code, text = mail_from(e.port, "127.0.0.130")
        assert code == 451 and text.startswith("4.3."), (code, text)
    # answered quickly (timeout_ms 200, then immediate failures in backoff)
    assert time.monotonic() - t0 < 6 * 0.5 + 2
    # one outage line per policyd worker at most, not one per request
    lines = unreachable_lines(e)
    assert 1 <= len(lines) <= e.cfg["policyd"]["workers"], lines
    redis.start()
    t0 = time.monotonic()
    wait_until(lambda: mail_from(e.port, "127.0.0.130")[0] == 250, 8,
               interval=0.2, what="MAIL accepted again after Redis returned")
    assert time.monotonic() - t0 < 8
    # Each worker that reported the outage reports the recovery, traffic
    # or not (its housekeeping reconnects once the retry time comes).
    down = {pid_of(l) for l in lines}
    wait_until(lambda: down <= {pid_of(l) for l in e.log().splitlines()
                                if "reachable again" in l}, 8,
               what="every worker that was down reports the recovery")
    assert len(unreachable_lines(e)) == len(lines)


def test_redis_dropped_connections_cost_nothing(make_elemta, redis):
    """Every kept connection to Redis dies while the server stays up (as
    after a Redis restart, or a proxy's idle timeout): a policyd worker
    finds its connection dead on its next request, reconnects at once and
    answers it.  No 451, no outage line, every hit counted once."""
    ov = redis_overrides(redis)
    ov.setdefault("log", {})["level"] = "debug"
    e = make_elemta(policy={"max_messages_per_minute": 1000}, overrides=ov)
    for i in range(8):
        assert mail_from(e.port, "127.0.0.%d" % (140 + i))[0] == 250
    # Let each worker's once-a-second tick flush the metrics of those
    # decisions: with nothing pending the tick sends no command, so the
    # first use of a killed connection below is a request's.
    time.sleep(1.5)
    assert redis.kill_clients() >= 1
    mark = len(e.log())
    for i in range(16):
        code, text = mail_from(e.port, "127.0.0.%d" % (140 + i % 8))
        assert code == 250, (i, code, text)
    # the requests met the dead connections (the retry path ran) ...
    assert "kept connection failed" in e.log()[mark:], e.log()[mark:][-3000:]
    # ... and nobody saw an outage
    assert unreachable_lines(e) == [], unreachable_lines(e)
    # Every MAIL was counted exactly once across the reconnects: 1 before
    # the kill and 2 after, per client address.
    rates = {x["key"]: x for x in stat_entries(e) if x["kind"] == "rate"}
    for i in range(8):
        keys = [k for k in rates if "127.0.0.%d" % (140 + i) in k]
        assert len(keys) == 1 and rates[keys[0]]["count"] == 3, (i, rates)


def test_redis_down_fail_mode_accept_continues(make_elemta, redis):
    e = make_elemta(policy={"max_messages_per_minute": 100},
                    overrides=redis_overrides(redis, fail_mode="accept"))
    assert mail_from(e.port, "127.0.0.140")[0] == 250
    redis.stop()
    for _ in range(3):
        assert mail_from(e.port, "127.0.0.140")[0] == 250
    assert "decisions continue without counters" in e.log()


def test_instance_starts_while_redis_is_down(make_elemta, redis):
    """An unreachable Redis at start is an outage, not a crash: the workers
    start, answer 451 4.3.0 where a count is needed, and recover."""
    redis.stop()
    e = make_elemta(policy={"max_messages_per_minute": 100},
                    overrides=redis_overrides(redis))
    code, text = mail_from(e.port, "127.0.0.150")
    assert code == 451 and text.startswith("4.3."), (code, text)
    redis.start()
    wait_until(lambda: mail_from(e.port, "127.0.0.150")[0] == 250, 8,
               interval=0.2, what="MAIL accepted once Redis is up")
