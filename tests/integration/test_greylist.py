"""Greylisting (issue 19) through real SMTP sessions: the built-in policy
plugin's `greylisting:` rule, its triplets in the shared counter table.

- First attempt 450 4.2.0 "Greylisted, retry in N seconds"; the policyd
  worker that answered is killed, and the retry (answered by the other
  worker or its replacement) sees the same first-seen time; a retry after
  the delay passes; after a full restart the passed triplet still passes
  and a greylisted one keeps its first-seen time.  elemta-stat lists the
  triplets; the metrics count each result.
- Auto-allow: a client network that passed auto_allow_after triplets is
  not greylisted for a new one; exempt_ips skip greylisting.
- Two Elemta instances on one Redis greylist as one.

Timing: delays of 1-3 s; nothing asserts an upper bound on how fast the
machine answers - a retry may come late, and each branch is checked for
what only the shared record can explain.  Passing is polled with a bounded
deadline.
"""
import os
import re
import signal
import subprocess
import time

from elemta import STAT, SMTPConn, wait_until
from test_redis import redis, redis_overrides, stat_entries  # noqa: F401 (fixture)

RCPT_TO = "bob@local.test"


def grey_policy(**kw):
    g = {"delay": "3s", "retry_window": "1h", "max_age": "1d", "auto_allow_after": 0}
    g.update(kw)
    return {"greylisting": g}


def relay_ok():
    # local.test is ours: the recipient is accepted once greylisting passes.
    return {"delivery": {"routes": [{"domains": ["local.test"], "next_hop": "discard:"}]}}


def rcpt(port, source, sender="alice@client.test", to=RCPT_TO):
    """(code, text) of RCPT TO on a fresh session from source."""
    c = SMTPConn(port, source=source)
    try:
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.test")[0] == 250
        code, text, _ = c.cmd("MAIL FROM:<%s>" % sender)
        assert code == 250, (code, text)
        code, text, _ = c.cmd("RCPT TO:<%s>" % to)
        c.cmd("QUIT")
        return code, text
    finally:
        c.close()


def retry_in(text):
    m = re.fullmatch(r"4\.2\.0 Greylisted, retry in (\d+) seconds", text)
    assert m, text
    return int(m.group(1))


def until_passed(port, source, deadline=40, **kw):
    """Retry every half second until 250; the time it took."""
    t0 = time.monotonic()

    def passed():
        code, text = rcpt(port, source, **kw)
        if code == 250:
            return True
        assert code == 450, (code, text)
        retry_in(text)
        time.sleep(0.5)
        return False
    wait_until(passed, deadline, interval=0, what="the triplet to pass greylisting")
    return time.monotonic() - t0


def pid_of(line):
    return int(re.search(r"\[(\d+)\]:", line).group(1))


def greylisted_lines(e, to):
    return [l for l in e.log().splitlines()
            if "Greylisted" in l and "to=<%s>" % to in l and "elemta-policyd" in l]


def grey_entries(e, prefix="policy:t:"):
    return {x["key"]: x for x in stat_entries(e) if x["kind"] == "grey"
            and x["key"].startswith(prefix)}


def metric(e, name):
    return sum(x.get("value", 0) for x in stat_entries(e)
               if x["kind"] == "metric" and x["key"] == name)


def test_greylist_across_workers_and_restart(make_elemta):
    delay = 3
    e = make_elemta(policy=grey_policy(), overrides=relay_ok())
    assert len(e.worker_pids("policyd")) == 2
    t0 = time.monotonic()
    code, text = rcpt(e.port, "127.0.0.10")
    assert code == 450 and retry_in(text) == delay, (code, text)
    # A second triplet, greylisted before the restart below.
    code, text = rcpt(e.port, "127.0.0.10", to="carol@local.test")
    assert code == 450, (code, text)

    # Both refusals reach the table (plugin metrics are flushed once a
    # second; a killed worker loses its last second's) before the kill.
    wait_until(lambda: metric(e, "policy_greylist_greylisted_total") >= 2, 5,
               what="policy_greylist_greylisted_total flushed")

    # The worker that answered dies; the answer now comes from the other
    # worker or its replacement, which know the triplet only from the table.
    lines = wait_until(lambda: greylisted_lines(e, RCPT_TO), 10,
                       what="the greylisting log line")
    pid = pid_of(lines[0])
    assert pid in e.worker_pids("policyd"), (pid, e.worker_pids("policyd"))
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: pid not in e.worker_pids("policyd")
               and len(e.worker_pids("policyd")) == 2, 30,
               what="the killed policyd worker replaced")
    while time.monotonic() - t0 < 1.2:   # a fresh record would say 3
        time.sleep(0.1)
    code, text = rcpt(e.port, "127.0.0.10")
    if code == 450:
        assert retry_in(text) <= delay - 1, text      # first seen before
    else:
        assert code == 250 and time.monotonic() - t0 >= delay, (code, text)
    until_passed(e.port, "127.0.0.10")
    assert time.monotonic() - t0 >= delay
    # The rest of the /24 shares the triplet; another /24 does not.
    assert rcpt(e.port, "127.0.0.77")[0] == 250
    assert rcpt(e.port, "127.0.5.1")[0] == 450

    trip = grey_entries(e)
    mine = "policy:t:127.0.0.0/24/alice@client.test/bob@local.test"
    # passed twice (until_passed, then 127.0.0.77), but the record counts
    # refreshes: a pass within min(max_age/100, 1 h) of the last one
    # writes nothing
    assert trip[mine]["count"] == 1 and trip[mine]["expires_in_ms"] > 3600 * 1000, trip
    other = "policy:t:127.0.0.0/24/alice@client.test/carol@local.test"
    assert trip[other]["count"] == 0, trip
    # plugin metrics reach the table with the worker's once-a-second flush
    wait_until(lambda: metric(e, "policy_greylist_greylisted_total") >= 3, 5,
               what="policy_greylist_greylisted_total counted")
    wait_until(lambda: metric(e, "policy_greylist_passed_total") >= 2, 5,
               what="policy_greylist_passed_total counted")

    # A full restart: the passed triplet passes at once, the greylisted
    # one kept its first-seen time (it passes by its own delay).
    e.stop()
    e.start()
    assert rcpt(e.port, "127.0.0.10")[0] == 250
    code, text = rcpt(e.port, "127.0.0.10", to="carol@local.test")
    assert code == 250 or retry_in(text) <= delay, (code, text)
    until_passed(e.port, "127.0.0.10", to="carol@local.test")


def test_auto_allow_and_exempt(make_elemta):
    e = make_elemta(policy=grey_policy(delay="1s", auto_allow_after=2,
                                       auto_allow_interval="1s",
                                       exempt_ips=["127.0.3.0/24"]),
                    overrides=relay_ok())
    # exempt_ips skip greylisting
    assert rcpt(e.port, "127.0.3.1")[0] == 250
    wait_until(lambda: metric(e, "policy_greylist_exempt_total") >= 1, 5,
               what="policy_greylist_exempt_total counted")
    assert metric(e, "policy_greylist_exempt_total") == 1
    # two triplets pass (more than the interval apart: each waits a 1 s
    # delay after the other's pass) ...
    for to in ("a1@local.test", "a2@local.test"):
        code, text = rcpt(e.port, "127.0.1.5", to=to)
        assert code == 450, (code, text)
        until_passed(e.port, "127.0.1.5", to=to)
    clients = grey_entries(e, "policy:c:")
    assert clients["policy:c:127.0.1.0/24"]["count"] == 2, clients
    # ... so the network's new triplets pass at once; another's do not.
    assert rcpt(e.port, "127.0.1.99", sender="zed@else.test", to="new@local.test")[0] == 250
    wait_until(lambda: metric(e, "policy_greylist_auto_allowed_total") >= 1, 5,
               what="policy_greylist_auto_allowed_total counted")
    assert metric(e, "policy_greylist_auto_allowed_total") == 1
    assert rcpt(e.port, "127.0.2.5", to="new@local.test")[0] == 450


def test_two_instances_on_one_redis_greylist_as_one(make_elemta, redis):
    delay = 2
    o = redis_overrides(redis)
    o.update(relay_ok())
    a = make_elemta(policy=grey_policy(delay="2s"), overrides=o)
    b = make_elemta(policy=grey_policy(delay="2s"), overrides=o)
    t0 = time.monotonic()
    code, text = rcpt(a.port, "127.0.0.20")
    assert code == 450 and retry_in(text) == delay, (code, text)
    while time.monotonic() - t0 < 1.2:   # a fresh record would say 2
        time.sleep(0.1)
    code, text = rcpt(b.port, "127.0.0.20")
    if code == 450:
        assert retry_in(text) <= delay - 1, text
    else:
        assert code == 250 and time.monotonic() - t0 >= delay, (code, text)
    until_passed(b.port, "127.0.0.20")
    assert time.monotonic() - t0 >= delay
    assert rcpt(a.port, "127.0.0.20")[0] == 250
    for e in (a, b):
        trip = grey_entries(e)
        # one record, passed on b then on a: the second pass (within the
        # refresh granularity) read it and wrote nothing
        assert trip["policy:t:127.0.0.0/24/alice@client.test/bob@local.test"]["count"] == 1, trip
    assert not os.path.exists(a.path("counters", "data.mdb"))
    assert not os.path.exists(b.path("counters", "data.mdb"))


def test_stat_text_lists_triplets(make_elemta):
    e = make_elemta(policy=grey_policy(), overrides=relay_ok())
    assert rcpt(e.port, "127.0.0.30")[0] == 450
    p = subprocess.run([STAT, "-c", e.config_path, "list", "policy:t:"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    rows = [l.split() for l in p.stdout.splitlines()[1:]]
    assert [r[:3] for r in rows] == [
        ["grey", "policy:t:127.0.0.0/24/alice@client.test/bob@local.test", "0"]], p.stdout
    assert 3590 < float(rows[0][-1]) <= 3600.1, p.stdout
