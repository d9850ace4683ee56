"""Relay control (issue 17): Elemta is never an open relay.  A client
that has not authenticated and is outside server.mynetworks may send only
to the domains delivery.routes names, and never through a routing trick
(Postfix's reject_unauth_destination and allow_untrusted_routing = no):
554 5.7.1 <address>: Relay access denied, decided in smtpd before policyd
is asked.  Clients in mynetworks and authenticated clients relay; the
built-in rule allowed_relay_domains still restricts further.  nmap's
smtp-open-relay script, run from outside mynetworks, finds no relay, and
run from inside it finds one (so the check can fail).

Every instance trusts 127.0.0.1/32 only; the untrusted client binds
127.0.0.9 (all of 127/8 is local on Linux).
"""
import shutil
import subprocess

import pytest

from elemta import SMTPConn, free_port

from test_tls_auth import PASSWORD, make_cert, plain_token

OUTSIDE = "127.0.0.9"
INSIDE = "127.0.0.1"
SERVED = "served.example"
ROUTES = [{"domains": [SERVED, "." + SERVED], "next_hop": "discard:"},
          {"domains": ["*"], "next_hop": "smtp:[192.0.2.25]:25"}]
DENIED = "Relay access denied"


def relay_elemta(make_elemta, policy=None, auth=False, **extra):
    """An instance trusting 127.0.0.1 only, serving served.example; with
    auth, AUTH PLAIN for alice without TLS."""
    overrides = {"server": {"mynetworks": ["127.0.0.1/32"], "max_errors": 50},
                 "delivery": {"routes": ROUTES}}
    for k, v in extra.items():
        overrides.setdefault(k, {}).update(v)
    e = make_elemta(start=False, policy=policy or {}, overrides=overrides)
    if auth:
        make_cert(e.dir)
        e.make_users({"alice": PASSWORD})
        e.cfg["tls"] = {"certificate": "cert.pem", "key": "key.pem"}
        e.cfg["auth"] = {"users_file": "users", "require_tls": False}
        e.write_config()
    return e.start()


def session(e, source):
    """Greeted, EHLO'd and MAIL'd connection from source."""
    c = SMTPConn(e.port, source=source)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.test")[0] == 250
    assert c.cmd("MAIL FROM:<sender@client.example>")[0] == 250
    return c


def rcpt(c, address):
    code, text, _ = c.cmd("RCPT TO:<%s>" % address)
    return code, text


def assert_denied(c, address, shown=None):
    code, text = rcpt(c, address)
    assert (code, text) == (554, "5.7.1 <%s>: %s" % (shown or address, DENIED)), \
        (address, code, text)


def test_outside_mynetworks_reaches_served_domains_only(make_elemta):
    e = relay_elemta(make_elemta)
    c = session(e, OUTSIDE)
    try:
        assert_denied(c, "user@other.example")
        # "*" routes every domain but serves none.
        assert_denied(c, "user@Other.Example", "user@other.example")
        assert_denied(c, "user@%s.evil" % SERVED)
        assert_denied(c, "user@[127.0.0.1]")
        assert rcpt(c, "user@%s" % SERVED) == (250, "2.1.5 Ok")
        assert rcpt(c, "user@mail.%s" % SERVED)[0] == 250
        assert rcpt(c, "postmaster")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: relay\r\n\r\nhello\r\n.\r\n")
        code, text, _ = c.reply()
        assert code == 250, text
        c.cmd("QUIT")
    finally:
        c.close()
    queued = e.queued()
    assert len(queued) == 1
    _, env = e.read_queued(queued[0])
    assert env["recipients"] == ["user@%s" % SERVED, "user@mail.%s" % SERVED,
                                 "postmaster"]
    log = e.log()
    assert ("reject: RCPT from unknown[%s]: 554 5.7.1 <user@other.example>: %s"
            % (OUTSIDE, DENIED)) in log, log[-3000:]


@pytest.mark.parametrize("trick,shown", [
    ("user%%other.example@%s" % SERVED, None),
    ("@%s:user@other.example" % SERVED, "user@other.example"),
    ("@other.example:user@%s" % SERVED, "user@%s" % SERVED),
    ('"user@other.example"@%s' % SERVED, None),
    ('"user%%other.example"@%s' % SERVED, None),
    ("other.example!user@%s" % SERVED, None),
])
def test_routing_tricks_refused(make_elemta, trick, shown):
    e = relay_elemta(make_elemta)
    c = session(e, OUTSIDE)
    try:
        assert_denied(c, trick, shown)
        # The transaction survives the refusal.
        assert rcpt(c, "user@%s" % SERVED)[0] == 250
    finally:
        c.close()


def test_mynetworks_client_relays(make_elemta):
    e = relay_elemta(make_elemta)
    c = session(e, INSIDE)
    try:
        assert rcpt(c, "user@other.example") == (250, "2.1.5 Ok")
        assert rcpt(c, "user%%other.example@%s" % SERVED)[0] == 250
    finally:
        c.close()


@pytest.mark.parametrize("password,relays", [(PASSWORD, True),
                                              ("wrong", False)])
def test_authenticated_client_relays(make_elemta, password, relays):
    """AUTH opens the relay; a failed AUTH does not."""
    e = relay_elemta(make_elemta, auth=True)
    c = session(e, OUTSIDE)
    try:
        assert_denied(c, "user@other.example")
        assert c.cmd("RSET")[0] == 250
        code, text, _ = c.cmd("AUTH PLAIN " + plain_token("alice", password))
        assert code == (235 if relays else 535), text
        assert c.cmd("MAIL FROM:<alice@client.example>")[0] == 250
        if relays:
            assert rcpt(c, "user@other.example") == (250, "2.1.5 Ok")
        else:
            assert_denied(c, "user@other.example")
    finally:
        c.close()


def test_allowed_relay_domains_still_restricts(make_elemta):
    """The built-in rule applies on top: even a mynetworks client (which
    relay control lets through) is refused by policyd's rule."""
    e = relay_elemta(make_elemta, policy={"allowed_relay_domains": [SERVED]})
    c = session(e, INSIDE)
    try:
        code, text = rcpt(c, "user@other.example")
        assert code == 554 and DENIED in text, (code, text)
        assert rcpt(c, "user@%s" % SERVED)[0] == 250
    finally:
        c.close()


def test_policy_never_asked_about_refused_recipients(make_elemta):
    """A plugin cannot accept what relay control refused: with a plugin
    rule that would refuse every recipient differently (550), the relay
    refusal is what the client gets, so policyd was never asked."""
    e = relay_elemta(make_elemta,
                     policy={"blocked_recipient_domains": ["other.example",
                                                           SERVED]})
    c = session(e, OUTSIDE)
    try:
        assert_denied(c, "user@other.example")
        code, text = rcpt(c, "user@%s" % SERVED)
        assert code == 550, (code, text)     # policyd asked: served
    finally:
        c.close()


NMAP = shutil.which("nmap")


def nmap_open_relay(port, source):
    """nmap's smtp-open-relay against 127.0.0.1:port, connecting from
    source (-S with -e lo: nmap binds its NSE sockets there); its output.
    "+" runs the script on a port nmap does not know as SMTP."""
    r = subprocess.run(
        [NMAP, "-n", "-Pn", "-sT", "-p", str(port), "-S", source, "-e", "lo",
         "--script", "+smtp-open-relay", "--script-args",
         "smtp-open-relay.domain=nmap.example,smtp.domain=nmap.example",
         "127.0.0.1"],
        capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.mark.skipif(NMAP is None, reason="needs nmap (Debian package nmap)")
def test_nmap_smtp_open_relay(make_elemta):
    e = relay_elemta(make_elemta)
    out = nmap_open_relay(e.port, OUTSIDE)
    assert "smtp-open-relay: Server doesn't seem to be an open relay, " \
        "all tests failed" in out, out
    assert "unknown[%s]" % OUTSIDE in e.log(), "nmap did not connect from %s" % OUTSIDE
    # The same probe from inside mynetworks finds the relay: the check
    # above is not blind.
    out = nmap_open_relay(e.port, INSIDE)
    assert "smtp-open-relay: Server is an open relay" in out, out
