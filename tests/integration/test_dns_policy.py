"""DNS in elemta-policyd through real processes and a real DNS server (NSD,
tests/integration/dnsserver.py), no mocks: the client's names looked up at
CONNECT (FCrDNS) and written into Received:, require_client_name, and the
dnsbl rule's scoring.

The NSD of this module serves (one instance for every test):
  0.0.127.in-addr.arpa   127.0.0.10 -> good.test (A 127.0.0.10: verified)
                         127.0.0.11 -> liar.test (A 127.0.0.99: mismatch)
                         127.0.0.12: no PTR (NXDOMAIN)
  test                   good, liar; the DNSBL zones bl.test, bl2.test,
                         wl.test with entries for 127.0.0.20..23
Clients are addresses of 127/8 (SMTPConn(source=...)); libunbound's own
127.in-addr.arpa and test. zones must not answer for NSD (common/dns.c).
"""
import glob

import pytest

from dnsserver import DeadServer, DnsServer
from elemta import SMTPConn, free_port, send_message, wait_until

# ::1 reversed per nibble (RFC 3596), for PTR and DNSBL names
V6_ONE = ".".join(["1"] + ["0"] * 31)

ZONES = {
    "0.0.127.in-addr.arpa": "10 PTR good.test.\n11 PTR liar.test.\n",
    "ip6.arpa": "%s.ip6.arpa. PTR six.test.\n" % V6_ONE,
    "test": "\n".join([
        "good A 127.0.0.10",
        "liar A 127.0.0.99",
        "20.0.0.127.bl A 127.0.0.2",       # listed, weight 2
        "21.0.0.127.bl A 127.0.0.99",      # outside bl's filter
        "22.0.0.127.bl A 127.0.0.4",       # listed in bl ...
        "22.0.0.127.wl A 127.0.0.3",       # ... and allowlisted
        "23.0.0.127.bl2 A 127.0.0.2",      # weight 1: below the threshold
        "24.0.0.127.bl A 127.255.255.254",  # an error code, not a listing
        "six AAAA ::1",
        "%s.bl A 127.0.0.5" % V6_ONE,      # ::1 listed, per nibble
    ]) + "\n",
}

SITES = ["bl.test=127.0.0.[2..11]*2", "bl2.test*1",
         "wl.test=127.0.0.[2;3]*-5"]

BODY = b"Subject: dns\r\n\r\nhello\r\n"
# The harness's readiness probe connects from 127.0.0.1 (no PTR here):
# exempt from the client-name rule.
PROBE = ["127.0.0.1"]


@pytest.fixture(scope="module")
def nsd():
    srv = DnsServer(ZONES).start()
    yield srv
    srv.close()


def dns_cfg(resolver, policy_timeout=3000, dns_timeout="1s"):
    return {
        "dns": {"resolvers": [resolver], "timeout": dns_timeout},
        "policyd": {"timeout_ms": policy_timeout},
        "delivery": {"routes": [{"domains": ["local.test"], "next_hop": "maildir:mail"}],
                     "retry": {"min_backoff": "1s", "max_backoff": "2s",
                               "max_lifetime": "1h"}},
    }


def delivered(e, source):
    """Send one message from source to bob@local.test; its Maildir copy."""
    def files():
        return set(glob.glob(e.path("mail", "local.test", "bob", "new", "*")))
    before = files()
    out = send_message(e.port, "alice@client.test", ["bob@local.test"], BODY,
                       source=source)
    assert out[-1][0] == "eom" and out[-1][1] == 250, out
    new = wait_until(lambda: files() - before, 15, what="the message in the Maildir")
    assert len(new) == 1, new
    with open(new.pop(), "rb") as f:
        return f.read()


def greeting(e, source):
    c = SMTPConn(e.port, source=source)
    code, text, _ = c.reply()
    return code, text, c


def received_from(msg):
    """The first line of the Received: header Elemta wrote."""
    i = msg.index(b"Received: from ")
    return msg[i:msg.index(b"\n", i)].rstrip(b"\r")


# ==== Client names (FCrDNS) ====

def test_client_names_in_received_and_later_requests(make_elemta, nsd):
    e = make_elemta(overrides=dns_cfg(nsd.address),
                    policy={"blocked_recipient_domains": ["blocked.test"]})
    msg = delivered(e, "127.0.0.10")
    assert received_from(msg) == b"Received: from client.test (good.test [127.0.0.10])"
    # mismatch: the PTR name does not point back
    msg = delivered(e, "127.0.0.11")
    assert received_from(msg) == b"Received: from client.test (unknown [127.0.0.11])"
    # no PTR at all
    msg = delivered(e, "127.0.0.12")
    assert received_from(msg) == b"Received: from client.test (unknown [127.0.0.12])"
    # smtpd sends the names in the session's later requests: policyd's
    # refusal at RCPT names the client by the name found at CONNECT.
    out = send_message(e.port, "alice@client.test", ["x@blocked.test"], BODY,
                       source="127.0.0.10")
    assert out[-1][:2] == ("rcpt", 550), out
    wait_until(lambda: "RCPT from good.test[127.0.0.10]" in e.log(), 10,
               what="the refusal logged with the verified name")


def test_require_client_name(make_elemta, nsd):
    e = make_elemta(overrides=dns_cfg(nsd.address),
                    policy={"require_client_name": "fcrdns", "exempt_ips": PROBE})
    delivered(e, "127.0.0.10")
    for src in ("127.0.0.11", "127.0.0.12"):
        code, text, c = greeting(e, src)
        assert code == 554 and text.startswith("5.7.25 Client host rejected: "
                                               "cannot find your hostname"), (src, code, text)
        c.close()
    e2 = make_elemta(overrides=dns_cfg(nsd.address), policy={"require_client_name": "ptr", "exempt_ips": PROBE})
    delivered(e2, "127.0.0.11")      # a PTR is enough
    code, text, c = greeting(e2, "127.0.0.12")
    assert code == 554 and text.startswith("5.7.25 "), (code, text)
    c.close()


def test_require_client_name_dns_failure_is_temporary(make_elemta):
    dead = DeadServer()
    try:
        e = make_elemta(overrides=dns_cfg(dead.address, dns_timeout="300ms"),
                        policy={"require_client_name": "fcrdns"}, start=False)
        e.start(wait=False)
        wait_until(lambda: len(e.worker_pids("policyd")) == 2, 15, what="policyd up")

        def answered():
            try:
                code, text, c = greeting(e, "127.0.0.10")
            except OSError:
                return None
            c.close()
            return code, text
        code, text = wait_until(answered, 15, what="a greeting")
        # smtpd answers a TEMPFAIL at CONNECT with 421 and closes (RFC 5321 3.1)
        assert code == 421 and text.startswith("4.7.25 Client host rejected"), (code, text)
    finally:
        dead.close()


# ==== DNSBL / DNSWL ====

def test_dnsbl_scoring(make_elemta, nsd):
    e = make_elemta(overrides=dns_cfg(nsd.address),
                    policy={"dnsbl": {"sites": SITES, "threshold": 2}})
    code, text, c = greeting(e, "127.0.0.20")
    assert code == 554 and text == ("5.7.1 Service unavailable; client [127.0.0.20] "
                                    "blocked using bl.test"), (code, text)
    c.close()
    delivered(e, "127.0.0.23")       # weight 1 < threshold 2
    delivered(e, "127.0.0.22")       # 2 - 5: allowlisted
    delivered(e, "127.0.0.21")       # a reply outside the filter counts 0
    delivered(e, "127.0.0.24")       # 127.255.255.x: an error code
    assert "error replies (127.255.255.x)" in e.log()
    delivered(e, "127.0.0.30")       # listed nowhere


def test_dnsbl_tempfail_action(make_elemta, nsd):
    e = make_elemta(overrides=dns_cfg(nsd.address),
                    policy={"dnsbl": {"sites": SITES, "threshold": 2,
                                      "action": "tempfail"}})
    code, text, c = greeting(e, "127.0.0.20")
    assert code == 421 and text.startswith("4.7.1 Service unavailable; client "
                                           "[127.0.0.20] blocked using bl.test"), (code, text)
    c.close()


def test_dead_dnsbl_server_does_not_block_mail(make_elemta):
    dead = DeadServer()
    try:
        e = make_elemta(overrides=dns_cfg(dead.address, dns_timeout="300ms"),
                        policy={"dnsbl": {"sites": SITES, "threshold": 1}})
        msg = delivered(e, "127.0.0.20")
        assert b"[127.0.0.20]" in received_from(msg)
        assert "DNSBL bl.test: " in e.log() and "counted 0" in e.log()
    finally:
        dead.close()


def test_ipv6_client_names_and_dnsbl(make_elemta, nsd):
    """An IPv6 client: its PTR name under ip6.arpa per nibble, verified by
    AAAA; its DNSBL name reversed per nibble too."""
    e = make_elemta(overrides=dns_cfg(nsd.address), start=False,
                    policy={"blocked_recipient_domains": ["blocked.test"]})
    p6 = free_port("::1")
    e.cfg["server"]["listen"].append({"address": "[::1]:%d" % p6, "mode": "smtp"})
    e.write_config()
    e.start()
    c = SMTPConn(p6, host="::1")
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.test")[0] == 250
    assert c.cmd("MAIL FROM:<a@client.test>")[0] == 250
    assert c.cmd("RCPT TO:<x@blocked.test>")[0] == 550
    c.close()
    wait_until(lambda: "RCPT from six.test[::1]" in e.log(), 10,
               what="the refusal logged with the IPv6 client's verified name")
    e2 = make_elemta(overrides=dns_cfg(nsd.address), start=False,
                     policy={"dnsbl": {"sites": SITES, "threshold": 2}})
    p6 = free_port("::1")
    e2.cfg["server"]["listen"].append({"address": "[::1]:%d" % p6, "mode": "smtp"})
    e2.write_config()
    e2.start()
    c = SMTPConn(p6, host="::1")
    code, text, _ = c.reply()
    assert code == 554 and text == ("5.7.1 Service unavailable; client [::1] "
                                    "blocked using bl.test"), (code, text)
    c.close()


# ==== elemtactl test-plugin ====

def test_test_plugin_uses_the_configured_resolver(make_elemta, nsd):
    """test-plugin runs the DNS rules against elemtactl's -c config's
    dns.resolvers for the --ip client, waiting for the answers."""
    e = make_elemta(overrides=dns_cfg(nsd.address), start=False)
    plugin_cfg = e.path("policy.yaml")
    with open(plugin_cfg, "w") as f:
        f.write('dnsbl: {sites: ["bl.test=127.0.0.[2..11]*2"], threshold: 2}\n'
                'require_client_name: fcrdns\n')
    r = e.ctl("test-plugin", "policy", "--config", plugin_cfg, "--ip", "127.0.0.10",
              "--from", "a@client.test", "--rcpt", "b@local.test")
    assert r.returncode == 0, r.stdout + r.stderr
    r = e.ctl("test-plugin", "policy", "--config", plugin_cfg, "--ip", "127.0.0.11")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "CONNECT" in r.stdout and "reject 550 5.7.25" in r.stdout, r.stdout
    with open(plugin_cfg, "w") as f:
        f.write('dnsbl: {sites: ["bl.test=127.0.0.[2..11]*2"], threshold: 2}\n')
    r = e.ctl("test-plugin", "policy", "--config", plugin_cfg, "--ip", "127.0.0.20")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "reject 554 5.7.1 Service unavailable; client [127.0.0.20] blocked using bl.test" \
        in r.stdout, r.stdout


def test_dnswl_listed_client_skips_greylisting(make_elemta, nsd):
    """Greylisting spares a client an allowlist site of the dnsbl rule lists
    (its answer fetched at RCPT before any counter is written), and only
    such a client."""
    e = make_elemta(overrides=dns_cfg(nsd.address),
                    policy={"dnsbl": {"sites": SITES, "threshold": 2},
                            "greylisting": {"delay": "1h", "auto_allow_after": 0}})
    for source, want in (("127.0.0.22", 250),    # on wl.test: not greylisted
                         ("127.0.0.23", 450),    # bl2.test only: greylisted
                         ("127.0.0.30", 450)):   # listed nowhere: greylisted
        c = SMTPConn(e.port, source=source)
        try:
            assert c.reply()[0] == 220
            assert c.cmd("EHLO client.test")[0] == 250
            assert c.cmd("MAIL FROM:<alice@client.test>")[0] == 250
            code, text, _ = c.cmd("RCPT TO:<bob@local.test>")
            assert code == want, (source, code, text)
            if want == 450:
                assert text.startswith("4.2.0 Greylisted, retry in "), text
            c.cmd("QUIT")
        finally:
            c.close()
