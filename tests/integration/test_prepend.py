"""PREPEND (issue 19): a policy answer adds a header at the top of the
message, above the Received: header of the server that asked.

A small plugin (PREPEND_SRC, built with the in-tree SDK header) prepends a
header at every phase through elemta_ctx_prepend_header (ABI minor 2).
Through Elemta's smtpd the delivered message must carry them in phase
order above smtpd's Received:, the CONNECT/EHLO ones in every message of
the session, a refused recipient's never, and invalid ones never (the
message still accepted).  Through a real Postfix (check_policy_service on
policyd.postfix_listen) the one PREPEND a Postfix reply carries must be
honoured by Postfix, above Postfix's own Received:.
"""
import os
import subprocess

import pytest

import postfix
from elemta import ROOT, SMTPConn, free_port, maildir_files, wait_until

PREPEND_SRC = r"""
#include <string.h>
#include <elemta/plugin.h>

static void
put(const elemta_ctx *ctx, const char *name, const char *what)
{
	char v[300];
	const char *l = elemta_ctx_attr(ctx, ELEMTA_ATTR_LISTENER);

	snprintf(v, sizeof(v), "%s listener=%s", what, l ? l : "?");
	elemta_ctx_prepend_header(ctx, name, v);
}

static enum elemta_action
on_connect(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	put(ctx, "X-Pp-Connect", "yes");
	return ELEMTA_CONTINUE;
}

static enum elemta_action
on_helo(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	put(ctx, "X-Pp-Helo", elemta_ctx_helo(ctx));
	return ELEMTA_CONTINUE;
}

static enum elemta_action
on_mail(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	/* Invalid headers are refused and never reach the message. */
	if (elemta_ctx_prepend_header(ctx, "Bad Name", "x") != -1 ||
	    elemta_ctx_prepend_header(ctx, "X-Pp-Bad", "a\r\nInjected: 1") != -1 ||
	    elemta_ctx_prepend_header(ctx, "", "x") != -1)
		return elemta_result_set(res, ELEMTA_REJECT, 550, "5.7.1",
		    "invalid header accepted");
	put(ctx, "X-Pp-Mail", elemta_ctx_sender(ctx));
	return ELEMTA_CONTINUE;
}

static enum elemta_action
on_rcpt(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	const char *r = elemta_ctx_recipient(ctx);

	if (strncmp(r, "refused", 7) == 0) {
		put(ctx, "X-Pp-Refused", r);
		return elemta_result_set(res, ELEMTA_REJECT, 550, "5.7.1",
		    "refused on purpose");
	}
	put(ctx, "X-Pp-Rcpt", r);
	return ELEMTA_CONTINUE;
}

static enum elemta_action
on_data(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	put(ctx, elemta_ctx_phase_id(ctx) == ELEMTA_PHASE_EOM ?
	    "X-Pp-Eom" : "X-Pp-Data", "yes");
	return ELEMTA_CONTINUE;
}

ELEMTA_PLUGIN_EXPORT = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION,
	.name = "prepend_test",
	.version = "1",
	.on_connect = on_connect,
	.on_helo = on_helo,
	.on_mail_from = on_mail,
	.on_rcpt_to = on_rcpt,
	.on_data = on_data,
};
"""

BODY = b"Subject: prepend\r\n\r\nhello\r\n"


def build_plugin(directory):
    src = os.path.join(directory, "prepend_test.c")
    so = os.path.join(directory, "prepend_test.so")
    with open(src, "w") as f:
        f.write("#include <stdio.h>\n" + PREPEND_SRC)
    r = subprocess.run(["cc", "-std=c11", "-shared", "-fPIC", "-Wall", "-Werror",
                        "-Wno-unused-parameter", "-I", os.path.join(ROOT, "include"),
                        "-o", so, src], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    os.chmod(so, 0o755)
    return so


def headers(msg):
    """The header lines of a delivered message (LF line ends), in order."""
    head = msg.split(b"\n\n", 1)[0]
    return [h.decode() for h in head.split(b"\n") if h and h[:1] not in (b" ", b"\t")]


@pytest.fixture
def plugin_elemta(make_elemta):
    def make(overrides=None):
        e = make_elemta(start=False, plugins=[])
        so = build_plugin(e.dir)
        e.cfg["plugins"] = [{"name": "prepend_test", "path": so, "enabled": True}]
        e.cfg["delivery"] = {"routes": [{"domains": ["*"], "next_hop": "maildir:mail"}]}
        if overrides:
            for k, v in overrides.items():
                e.cfg.setdefault(k, {}).update(v)
        e.write_config()
        e.start()
        return e
    return make


def test_smtpd_prepends_above_received_in_phase_order(plugin_elemta):
    e = plugin_elemta()
    c = SMTPConn(e.port)
    try:
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.test")[0] == 250
        # Two transactions on one session: the session's headers go into
        # both, the transaction's only into its own message.
        for n, user in enumerate(("bob", "carol")):
            assert c.cmd("MAIL FROM:<alice%d@client.test>" % n)[0] == 250
            assert c.cmd("RCPT TO:<refused@local.test>")[0] == 550
            assert c.cmd("RCPT TO:<%s@local.test>" % user)[0] == 250
            assert c.cmd("DATA")[0] == 354
            c.send(BODY + b".\r\n")
            code, text, _ = c.reply()
            assert code == 250, (code, text, e.log()[-2000:])
        c.cmd("QUIT")
    finally:
        c.close()
    for n, user in enumerate(("bob", "carol")):
        files = wait_until(lambda: maildir_files(e, "local.test", user), 15,
                           what="the message delivered to %s" % user)
        msg = open(files[0], "rb").read()
        hs = headers(msg)
        i = next(k for k, h in enumerate(hs) if h.startswith("X-Pp-"))
        mine = hs[i:i + 7]
        assert mine == [
            "X-Pp-Connect: yes listener=elemta",
            "X-Pp-Helo: client.test listener=elemta",
            "X-Pp-Mail: alice%d@client.test listener=elemta" % n,
            "X-Pp-Rcpt: %s@local.test listener=elemta" % user,
            "X-Pp-Data: yes listener=elemta",
            "X-Pp-Eom: yes listener=elemta",
            mine[6],
        ], hs
        assert mine[6].startswith("Received: from client.test"), hs
        assert not any(h.startswith(("X-Pp-Refused", "X-Pp-Bad", "Injected", "Bad"))
                       for h in hs), hs
        assert sum(h.startswith("X-Pp-") for h in hs) == 6, hs
        assert msg.endswith(b"\nSubject: prepend\n\nhello\n"), msg


@pytest.mark.skipif(not postfix.available(), reason="needs root and Debian's postfix")
def test_postfix_honours_prepend_from_policyd(plugin_elemta):
    """Postfix asks policyd (postfix_listen) at RCPT; the PREPEND it gets
    back goes above Postfix's Received:.  Postfix relays to Elemta's smtpd
    (same plugin, Elemta listener), which delivers to a Maildir: the
    message shows both hops' headers, each above its own Received:."""
    pport = free_port()
    e = plugin_elemta({"policyd": {"postfix_listen": "127.0.0.1:%d" % pport}})
    pf = postfix.Postfix(e.dir, "check_policy_service inet:127.0.0.1:%d, "
                         "permit_mynetworks, reject" % pport,
                         extra={"default_transport": "smtp:[127.0.0.1]:%d" % e.port,
                                "smtp_tls_security_level": "none"})
    pf.start()
    try:
        c = SMTPConn(pf.port, timeout=20)
        try:
            assert c.reply()[0] == 220
            assert c.cmd("EHLO pfclient.test")[0] == 250
            assert c.cmd("MAIL FROM:<alice@client.test>")[0] == 250
            assert c.cmd("RCPT TO:<dave@local.test>")[0] == 250
            assert c.cmd("DATA")[0] == 354
            c.send(BODY + b".\r\n")
            assert c.reply()[0] == 250
            c.cmd("QUIT")
        finally:
            c.close()
        files = wait_until(lambda: maildir_files(e, "local.test", "dave"), 30,
                           what="the message relayed by Postfix: %s" % pf.log()[-1500:])
        hs = headers(open(files[0], "rb").read())
        pfx = [k for k, h in enumerate(hs) if h == "X-Pp-Rcpt: dave@local.test listener=postfix"]
        assert len(pfx) == 1, hs
        # Directly above Postfix's Received: (Postfix's PREPEND meaning).
        assert hs[pfx[0] + 1].startswith("Received: from pfclient.test"), hs
        # Elemta's own hop: its headers above its Received:, above Postfix's.
        el = hs.index("X-Pp-Rcpt: dave@local.test listener=elemta")
        assert el < pfx[0], hs
        assert any(h.startswith("Received: from postfix.test.example") for h in hs[el:pfx[0]]), hs
    finally:
        pf.stop()
