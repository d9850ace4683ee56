"""Receive-side hardening from issue 22's attacker probe, end to end
(findings 4, 5, 7 and 8): one canonical domain form before any list
matching, nothing a line-based reader splits on in the spool envelope,
recipients over the limit that do not cost the transaction, and a trickled
DATA cut off by server.min_data_rate long before data_timeout.
"""
import time

from elemta import SMTPConn

FULLSTOP = "\u3002"        # IDEOGRAPHIC FULL STOP
FULLWIDTH = "\uff0e"       # FULLWIDTH FULL STOP
HALFWIDTH = "\uff61"       # HALFWIDTH IDEOGRAPHIC FULL STOP


def _session(e, helo="client.test"):
    c = SMTPConn(e.port, timeout=30)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO " + helo)[0] == 250
    return c


def _finish(e, c, body):
    """DATA with body on c, expected queued; the one queued envelope."""
    assert c.cmd("DATA")[0] == 354
    c.send(body + b".\r\n")
    code, text, _ = c.reply()
    assert code == 250, (code, text)
    c.cmd("QUIT")
    c.close()
    (qid,) = e.queued()
    return e.read_queued(qid)


def test_blocked_domain_in_any_spelling_is_refused(make_elemta):
    """Finding 4: under SMTPUTF8 the UTS-46 full stops, upper case and a
    fullwidth letter all name blocked.com; a leading fullwidth stop makes
    a domain with no canonical form (553).  An accepted U-label domain is
    spooled as A-labels; the message keeps the client's spelling."""
    e = make_elemta(policy={"blocked_recipient_domains": ["blocked.com"]})
    c = _session(e)
    assert c.cmd("MAIL FROM:<a@example.org> SMTPUTF8")[0] == 250
    for rcpt in ("bob@blocked%scom" % FULLSTOP, "bob@blocked%scom" % HALFWIDTH,
                 "bob@BLOCKED.COM", "bob@\uff42locked.com"):
        code, text, _ = c.cmd("RCPT TO:<%s>" % rcpt)
        assert (code, text[:5]) == (550, "5.7.1"), (rcpt, code, text)
        assert "blocked.com is blocked" in text, text
    for rcpt in ("bob@%sblocked.com" % FULLWIDTH, "bob@xn--zz.example"):
        code, text, _ = c.cmd("RCPT TO:<%s>" % rcpt)
        assert (code, text[:5]) == (553, "5.1.3"), (rcpt, code, text)
    code, text, _ = c.cmd("RCPT TO:<j\u00f6rg@B\u00dcCHER%sexample>" % FULLSTOP)
    assert code == 250, (code, text)
    msg, env = _finish(e, c, "To: j\u00f6rg@b\u00fccher.example\r\nSubject: idn\r\n"
                       "\r\nhi\r\n".encode())
    assert env["recipients"] == ["j\u00f6rg@xn--bcher-kva.example"]
    assert "To: j\u00f6rg@b\u00fccher.example".encode() in msg


def test_no_line_separator_reaches_the_envelope(make_elemta):
    """Finding 5: U+2028, U+0085 and bidi controls in HELO or an address
    (quoted local parts included) are refused, and what is accepted reads
    back through the strict envelope reader (elemta.read_spool_file)."""
    e = make_elemta()
    c = SMTPConn(e.port, timeout=30)
    assert c.reply()[0] == 220
    for helo in ("\u202e\u00e9vil.example", "a\u0085b.example", "a\u2028b"):
        code, text, _ = c.cmd("EHLO " + helo)
        assert (code, text[:5]) == (501, "5.5.4"), (helo, code, text)
    assert c.cmd("EHLO \u00e9t\u00e9.example")[0] == 250
    code, text, _ = c.cmd("MAIL FROM:<\"\u2029\"@example.org> SMTPUTF8")
    assert (code, text[:5]) == (553, "5.1.7"), (code, text)
    assert c.cmd("MAIL FROM:<a@example.org> SMTPUTF8")[0] == 250
    for rcpt in ("\"\u2028x\"@example.com", "\u2028x@example.com",
                 "\"a\u0085b\"@example.com", "\"\u202ecba\"@example.com",
                 "\"a\u2066b\"@example.com"):
        code, text, _ = c.cmd("RCPT TO:<%s>" % rcpt)
        assert (code, text[:5]) == (553, "5.1.3"), (rcpt, code, text)
    assert c.cmd("RCPT TO:<\"j\u00f6 rg\"@example.com>")[0] == 250
    _, env = _finish(e, c, b"Subject: safe\r\n\r\nhi\r\n")
    assert env["helo"] == "\u00e9t\u00e9.example"
    assert env["recipients"] == ["\"j\u00f6 rg\"@example.com"]


def test_pipelined_recipients_over_the_limit_keep_the_transaction(make_elemta):
    """Finding 7: 1,000 pipelined RCPTs against max_recipients 100: 100
    accepted, 900 answered 452 4.5.3 without a 421, and the message is
    queued for the 100 (the client sends the rest later)."""
    e = make_elemta()
    assert e.cfg["server"]["max_recipients"] == 100
    c = _session(e)
    assert c.cmd("MAIL FROM:<many@example.org>")[0] == 250
    c.send("".join("RCPT TO:<r%d@example.com>\r\n" % i for i in range(1000)))
    replies = [c.reply()[:2] for _ in range(1000)]
    assert all(r[0] == 250 for r in replies[:100]), replies[:100]
    assert all(r[0] == 452 and r[1].startswith("4.5.3") for r in replies[100:]), \
        [r for r in replies[100:] if r[0] != 452][:3]
    _, env = _finish(e, c, b"Subject: many\r\n\r\nhello\r\n")
    assert len(env["recipients"]) == 100


def test_other_errors_still_reach_max_errors(make_elemta):
    """Finding 7's limit: every other refusal still counts; the tenth
    (server.max_errors default) ends the session with 421 4.7.0."""
    e = make_elemta()
    c = _session(e)
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    c.send("".join("RCPT TO:<bad address %d>\r\n" % i for i in range(10)))
    codes = [c.reply()[0] for _ in range(10)]
    assert codes[:9] == [501] * 9, codes
    code, text, _ = c.reply()
    assert (codes[9], code) == (501, 421) and text.startswith("4.7.0"), (codes, code, text)
    assert c.closed(10)
    c.close()


def test_trickled_data_is_cut_off_by_min_data_rate(make_elemta):
    """Finding 8: with the default min_data_rate (500 bytes/s) and a grace
    shortened to 2 s, a client trickling a byte every half second is cut
    with 421 4.4.2 well before data_timeout (10 minutes), and nothing is
    queued.  A normal client on the same instance is unaffected."""
    e = make_elemta(overrides={"server": {"min_data_rate_grace": "2s"}})
    assert "min_data_rate" not in e.cfg["server"]       # the default is in force
    c = _session(e)
    assert c.cmd("MAIL FROM:<slow@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<rcpt@example.com>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    t0 = time.monotonic()
    reply = None
    c.sock.settimeout(0.5)
    while time.monotonic() - t0 < 120:
        try:
            c.send(b"x")
        except OSError:
            pass
        try:
            data = c.sock.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            break
        if not data:
            break
        c.buf += data
        if b"\r\n" in c.buf:
            reply = c.buf.split(b"\r\n", 1)[0].decode()
            break
    elapsed = time.monotonic() - t0
    c.close()
    assert reply is not None and reply.startswith("421 4.4.2") and \
        "data rate too low" in reply, (reply, elapsed)
    assert elapsed < 120, elapsed
    assert "data rate too low" in e.log()
    assert e.queued() == []
    c = _session(e)
    assert c.cmd("MAIL FROM:<fast@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<rcpt@example.com>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: fast\r\n\r\n" + (b"y" * 76 + b"\r\n") * 1300 + b".\r\n")
    assert c.reply()[0] == 250
    c.close()
