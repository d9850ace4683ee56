"""The policy plugin's SPF rule end to end: real processes, a real DNS
server (NSD, tests/integration/dnsserver.py) and no mocks.  A message
from a permitted client is delivered with Received-SPF and
Authentication-Results above Elemta's Received: header; fail is refused
at MAIL with 550 5.7.23 and the domain's explanation; softfail passes
with its headers; a DNS failure is 451 4.7.24.

The NSD of this module serves the zone "test" (one instance for every
test); a sender domain outside it is refused by NSD, which the resolver
reports as a failure (temperror).  Clients are addresses of 127/8.
"""
import glob
import re

import pytest

from dnsserver import DnsServer
from elemta import send_message, wait_until

ZONES = {
    "test": "\n".join([
        'pass TXT "v=spf1 ip4:127.0.0.30 -all"',
        'fail TXT "v=spf1 -all exp=why.fail.test"',
        'why.fail TXT "%{i} is not a mail server of %{d}"',
        'soft TXT "v=spf1 ip4:127.0.0.31 ~all"',
        'mx TXT "v=spf1 mx -all"',
        "mx MX 10 m1.mx.test.",
        "mx MX 20 m2.mx.test.",
        "m2.mx A 127.0.0.32",
    ]) + "\n",
}

BODY = b"Subject: spf\r\n\r\nhello\r\n"


@pytest.fixture(scope="module")
def nsd():
    srv = DnsServer(ZONES).start()
    yield srv
    srv.close()


def spf_elemta(make_elemta, nsd):
    return make_elemta(
        overrides={
            "dns": {"resolvers": [nsd.address], "timeout": "2s"},
            "policyd": {"timeout_ms": 5000},
            "delivery": {"routes": [{"domains": ["local.test"],
                                     "next_hop": "maildir:mail"}],
                         "retry": {"min_backoff": "1s", "max_backoff": "2s",
                                   "max_lifetime": "1h"}},
        },
        policy={"spf": {"authserv_id": "mx.test"}})


def deliver(e, sender, source):
    """Send one message to bob@local.test; its Maildir copy's headers."""
    def files():
        return set(glob.glob(e.path("mail", "local.test", "bob", "new", "*")))
    before = files()
    out = send_message(e.port, sender, ["bob@local.test"], BODY, source=source)
    assert out[-1][0] == "eom" and out[-1][1] == 250, out
    new = wait_until(lambda: files() - before, 15, what="the message in the Maildir")
    assert len(new) == 1, new
    with open(new.pop(), "rb") as f:
        msg = f.read().decode().replace("\r\n", "\n")
    return msg[:msg.index("\n\n")]


def header(head, name):
    """The (unfolded) value of the first header called name."""
    m = re.search(r"^%s: (.*(?:\n[ \t].*)*)" % re.escape(name), head, re.M)
    assert m, "%s missing in:\n%s" % (name, head)
    return re.sub(r"\n[ \t]+", " ", m.group(1))


def test_spf_accepted_results_are_recorded(make_elemta, nsd):
    e = spf_elemta(make_elemta, nsd)

    head = deliver(e, "alice@pass.test", "127.0.0.30")
    spf = header(head, "Received-SPF")
    assert spf.startswith("pass (mx.test: domain of pass.test designates "
                          "127.0.0.30 as permitted sender) client-ip=127.0.0.30; "
                          'envelope-from="alice@pass.test"; '), spf
    assert "identity=mailfrom; mechanism=\"ip4:127.0.0.30\"" in spf, spf
    assert header(head, "Authentication-Results") == \
        "mx.test; spf=pass smtp.mailfrom=alice@pass.test"
    # both above the Received: header Elemta wrote
    assert head.index("Received-SPF:") < head.index("Received: from")
    assert head.index("Authentication-Results:") < head.index("Received: from")

    head = deliver(e, "alice@soft.test", "127.0.0.30")
    assert header(head, "Received-SPF").startswith("softfail "), head
    assert header(head, "Authentication-Results") == \
        "mx.test; spf=softfail smtp.mailfrom=alice@soft.test"

    # mx: the second MX name's address permits the client
    head = deliver(e, "alice@mx.test", "127.0.0.32")
    assert header(head, "Authentication-Results") == \
        "mx.test; spf=pass smtp.mailfrom=alice@mx.test"


def test_spf_fail_and_temperror_are_refused(make_elemta, nsd):
    e = spf_elemta(make_elemta, nsd)

    out = send_message(e.port, "alice@fail.test", ["bob@local.test"], BODY,
                       source="127.0.0.30")
    assert out[-1][:2] == ("mail", 550), out
    assert "5.7.23 SPF validation failed: 127.0.0.30 is not a mail server " \
        "of fail.test" in out[-1][2], out
    # not listed in the mx record's addresses
    out = send_message(e.port, "alice@mx.test", ["bob@local.test"], BODY,
                       source="127.0.0.30")
    assert out[-1][:2] == ("mail", 550), out
    # a domain NSD does not serve: the resolver fails, never an accept
    out = send_message(e.port, "alice@elsewhere.example", ["bob@local.test"],
                       BODY, source="127.0.0.30")
    assert out[-1][:2] == ("mail", 451), out
    assert "4.7.24" in out[-1][2], out
    wait_until(lambda: "spf temperror for alice@elsewhere.example" in e.log(),
               10, what="the temperror logged")
