"""Direct MX delivery (issue 18): recipient domains without a route or a
relayhost go to their MX hosts, found through a real DNS server (NSD,
dnsserver.py, one for the module) by the real elemta-queued, delivered to
aiosmtpd sinks listening on 127.0.0.x and delivery.smtp_port.

Covered: the first MX refusing connections -> the second; a 4xx at the
first MX -> the second before any deferral; equal preferences spread; no
MX -> the domain's own address; null MX -> bounce 5.1.10; NXDOMAIN ->
bounce 5.1.2; an MX that is this host -> bounce 5.4.6; several
recipients of one domain in one transaction; the DNS server stopped ->
deferred, then delivered once it is back.  Every wait is bounded.
"""
import glob
import json
import re
import subprocess

import pytest

from dnsserver import DnsServer
from elemta import STAT, free_port, send_message, wait_until
from test_delivery import BODY, Sink, parse_bounce, sent_ok, spool_empty
from test_metrics import parse_exposition, value

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")

# The sinks' addresses; nothing listens on REFUSE.
REFUSE, SINK2, SINK3, SINK4, SINK5, SINK6 = (
    "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7")
SPREAD = 16   # domains with two equal MX hosts

RECORDS = [
    "two MX 10 mx1.two", "two MX 20 mx2.two",
    "mx1.two A %s" % REFUSE, "mx2.two A %s" % SINK2,
    "soft MX 10 mx1.soft", "soft MX 20 mx2.soft",
    "mx1.soft A %s" % SINK6, "mx2.soft A %s" % SINK3,
    "amx A %s" % SINK2,
    "nullmx MX 0 .",
    "loop MX 10 mx.test.example.",
    "selfaddr MX 10 mx.selfaddr", "mx.selfaddr A 127.0.0.1",
    "eqa A %s" % SINK4, "eqb A %s" % SINK5,
] + ["eq%d MX 10 eqa" % i for i in range(SPREAD)] \
  + ["eq%d MX 10 eqb" % i for i in range(SPREAD)]


class HostSink(Sink):
    """A Sink on a given loopback address."""

    def __init__(self, host, port):
        super().__init__(port)
        self.host = host

    def start(self):
        self.controller = aiosmtpd_controller.Controller(
            self, hostname=self.host, port=self.port)
        self.controller.start()
        return self


@pytest.fixture(scope="module")
def dns():
    d = DnsServer({"test": "\n".join(RECORDS)}).start()
    yield d
    d.close()


@pytest.fixture(scope="module")
def mx_sinks():
    port = free_port()
    made = {h: HostSink(h, port).start() for h in (SINK2, SINK3, SINK4, SINK5, SINK6)}
    yield port, made
    for s in made.values():
        s.stop()


def mx_elemta(make_elemta, dns, port, **retry):
    """Sender domain client.test in a Maildir (bounces land there); every
    other domain goes to its MX on port."""
    r = {"min_backoff": "1s", "max_backoff": "2s", "max_lifetime": "1h"}
    r.update(retry)
    return make_elemta(overrides={
        "dns": {"resolvers": [dns.address], "timeout": "3s"},
        "delivery": {"smtp_port": port, "retry": r,
                     "routes": [{"domains": ["client.test"],
                                 "next_hop": "maildir:mail"}]}})


def bounces(e):
    return sorted(glob.glob(e.path("mail", "client.test", "alice", "new", "*")))


def queue_json(e):
    r = e.ctl("queue", "list", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def delivered(sink, rcpt):
    return [m for m in sink.messages if rcpt in m[1]]


def test_first_mx_refuses_second_takes_it(make_elemta, dns, mx_sinks):
    port, s = mx_sinks
    e = mx_elemta(make_elemta, dns, port)
    sent_ok(send_message(e.port, "alice@client.test",
                         ["a@two.test", "b@two.test"], BODY))
    wait_until(lambda: delivered(s[SINK2], "a@two.test"), 20,
               what="delivery to the second MX")
    wait_until(lambda: spool_empty(e), 10, what="the spool emptied")
    # several recipients of one domain: one transaction
    m = delivered(s[SINK2], "a@two.test")
    assert len(m) == 1 and sorted(m[0][1]) == ["a@two.test", "b@two.test"]
    assert bounces(e) == []


def test_4xx_at_first_mx_moves_on_before_deferring(make_elemta, dns, mx_sinks):
    port, s = mx_sinks
    s[SINK6].rcpt_replies["x@soft.test"] = ["451 4.3.0 not now"]
    e = mx_elemta(make_elemta, dns, port)
    sent_ok(send_message(e.port, "alice@client.test", ["x@soft.test"], BODY))
    wait_until(lambda: delivered(s[SINK3], "x@soft.test"), 20,
               what="delivery to the second MX after the first's 451")
    wait_until(lambda: spool_empty(e), 10, what="the spool emptied")
    assert delivered(s[SINK6], "x@soft.test") == []
    assert "not now" in e.log()   # the first MX was asked


def test_no_mx_uses_the_domains_address(make_elemta, dns, mx_sinks):
    port, s = mx_sinks
    e = mx_elemta(make_elemta, dns, port)
    sent_ok(send_message(e.port, "alice@client.test", ["c@amx.test"], BODY))
    wait_until(lambda: delivered(s[SINK2], "c@amx.test"), 20,
               what="delivery to the implicit MX")
    wait_until(lambda: spool_empty(e), 10, what="the spool emptied")


def test_equal_preferences_spread(make_elemta, dns, mx_sinks):
    port, s = mx_sinks
    e = mx_elemta(make_elemta, dns, port)
    rcpts = ["r@eq%d.test" % i for i in range(SPREAD)]
    sent_ok(send_message(e.port, "alice@client.test", rcpts, BODY))
    got = lambda: [r for r in rcpts if delivered(s[SINK4], r) or delivered(s[SINK5], r)]
    wait_until(lambda: len(got()) == SPREAD, 30, what="every domain delivered")
    a = [r for r in rcpts if delivered(s[SINK4], r)]
    b = [r for r in rcpts if delivered(s[SINK5], r)]
    # each domain its own transaction, both hosts used (the chance that
    # 16 independent shuffles all pick the same one is 2 in 65536)
    assert len(a) + len(b) == SPREAD and a and b, (a, b)


@pytest.mark.parametrize("rcpt,status,text", [
    ("n@nullmx.test", "5.1.10", "does not accept mail"),
    ("n@nosuch.test", "5.1.2", "does not exist"),
    ("n@loop.test", "5.4.6", "mail for loop.test loops back to myself"),
])
def test_permanent_mx_failures_bounce(make_elemta, dns, mx_sinks, rcpt, status, text):
    port, s = mx_sinks
    e = mx_elemta(make_elemta, dns, port)
    sent_ok(send_message(e.port, "alice@client.test", [rcpt], BODY))
    found = wait_until(lambda: bounces(e), 20, what="the bounce")
    wait_until(lambda: spool_empty(e), 10, what="the spool emptied")
    msg, parts = parse_bounce(found[0])
    report = parts[1].as_string()
    assert rcpt in report and re.search(r"Status: %s\b" % re.escape(status), report), report
    assert text in parts[0].get_content()


def test_mx_at_own_address_and_port_loops(make_elemta, dns):
    """The MX host's address and delivery.smtp_port are where smtpd
    listens: a loop, whatever the host's name."""
    e = make_elemta(start=False, overrides={
        "dns": {"resolvers": [dns.address], "timeout": "3s"},
        "delivery": {"routes": [{"domains": ["client.test"],
                                 "next_hop": "maildir:mail"}]}})
    e.cfg["delivery"]["smtp_port"] = e.port
    e.write_config()
    e.start()
    sent_ok(send_message(e.port, "alice@client.test", ["s@selfaddr.test"], BODY))
    found = wait_until(lambda: bounces(e), 20, what="the bounce")
    msg, parts = parse_bounce(found[0])
    assert re.search(r"Status: 5\.4\.6\b", parts[1].as_string())
    assert "mail for selfaddr.test loops back to myself" in parts[0].get_content()


def test_dns_down_deferred_then_delivered(make_elemta, mx_sinks):
    port, s = mx_sinks
    d = DnsServer({"test": "back MX 10 mx.back\nmx.back A %s\n" % SINK3}).start()
    try:
        e = mx_elemta(make_elemta, d, port, min_backoff="1s", max_backoff="1s")
        d.stop()
        sent_ok(send_message(e.port, "alice@client.test", ["z@back.test"], BODY))
        wait_until(lambda: any(m["recipients"][0]["status"] == "deferred" and
                               "MX lookup for back.test failed" in
                               m["recipients"][0]["last_reply"]
                               for m in queue_json(e)), 20, what="the deferral")
        assert delivered(s[SINK3], "z@back.test") == []
        d.start()
        wait_until(lambda: delivered(s[SINK3], "z@back.test"), 60,
                   what="delivery once DNS is back")
        wait_until(lambda: spool_empty(e), 10, what="the spool emptied")
        assert bounces(e) == []

        # the metrics: lookups, the failures while DNS was down, times
        def dns_metrics():
            r = subprocess.run([STAT, "-c", e.config_path, "--prometheus"],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
            m = parse_exposition(r.stdout)[0]
            # the successful MX and A/AAAA lookups come after the failures
            ok = value(m, "elemta_dns_queries_total") - value(
                m, "elemta_dns_failures_total")
            return m if ok >= 3 else None
        m = wait_until(dns_metrics, 10, what="the DNS metrics written")
        assert value(m, "elemta_dns_failures_total") >= 1
        assert 0 < value(m, "elemta_dns_lookup_seconds_count") <= value(
            m, "elemta_dns_queries_total")
    finally:
        d.close()
