"""A real Postfix uses elemta-policyd unchanged through check_policy_service
(issue 4, Postfix interop): a blocked domain is refused and the message rate
limit holds, a message counted once per `instance` although Postfix asks at
every RCPT (smtpd_delay_reject puts sender checks in the RCPT state)."""
import pytest

import postfix
from elemta import SMTPConn, free_port

pytestmark = pytest.mark.skipif(not postfix.available(),
                                reason="needs root and Debian's postfix")


@pytest.fixture
def pair(make_elemta):
    """Elemta (policyd's Postfix listener) + Postfix pointed at it."""
    made = []

    def make(policy):
        pport = free_port()
        e = make_elemta(policy=policy,
                        overrides={"policyd": {"postfix_listen": "127.0.0.1:%d" % pport}})
        pf = postfix.Postfix(e.dir, "check_policy_service inet:127.0.0.1:%d, "
                             "permit_mynetworks, reject" % pport)
        made.append(pf)
        pf.start()
        return e, pf

    yield make
    for pf in made:
        pf.stop()


def transaction(port, sender, rcpts):
    """One SMTP transaction through Postfix: [(rcpt, code, text)] and the
    end-of-data reply (None when no recipient was accepted)."""
    c = SMTPConn(port, timeout=20)
    try:
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.test")[0] == 250
        code, text, _ = c.cmd("MAIL FROM:<%s>" % sender)
        assert code == 250, (code, text)
        out = []
        for r in rcpts:
            code, text, _ = c.cmd("RCPT TO:<%s>" % r)
            out.append((r, code, text))
        eom = None
        if any(code == 250 for _, code, _ in out):
            assert c.cmd("DATA")[0] == 354
            c.send(b"Subject: interop\r\n\r\nhello\r\n.\r\n")
            eom = c.reply()[:2]
        c.cmd("QUIT")
        return out, eom
    finally:
        c.close()


def test_postfix_blocked_domain_refused(pair):
    e, pf = pair({"blocked_recipient_domains": ["blocked.com"]})
    out, eom = transaction(pf.port, "alice@example.org",
                           ["bob@blocked.com", "carol@example.com"])
    assert out[0][1] == 550 and out[0][2].startswith("5.7.1"), (out, pf.log())
    assert out[1][1] == 250, out
    assert eom[0] == 250, eom
    assert "blocked.com" in pf.log()


def test_postfix_message_rate_counted_once_per_instance(pair):
    limit = 3
    e, pf = pair({"max_messages_per_minute": limit})
    # Each message has two recipients: Postfix asks twice per message, and
    # the message must still count once.
    for i in range(limit):
        out, eom = transaction(pf.port, "s%d@example.org" % i,
                               ["a@example.com", "b@example.com"])
        assert [c for _, c, _ in out] == [250, 250], (i, out, pf.log()[-2000:])
        assert eom[0] == 250
    out, eom = transaction(pf.port, "over@example.org", ["a@example.com", "b@example.com"])
    assert out[0][1] == 450 and out[0][2].startswith("4.7.1"), (out, pf.log()[-2000:])
    assert eom is None
