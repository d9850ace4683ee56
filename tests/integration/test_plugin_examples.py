"""The plugin SDK (issue 6) from a plugin author's side.

Both example plugins are built OUT OF TREE, the way docs/plugins.md tells
an author to: `make install DESTDIR=... PREFIX=/usr`, then only the
installed header and elemta-plugin.pc (through pkg-config) and `cc`.  The
.so files are then loaded into a running system through `plugins:` and
every hook's decision is checked as the SMTP client sees it (reply code and
enhanced status code), plus the loader's refusal of a world-writable
plugin, config errors naming file and key, and `elemtactl test-plugin`.
"""
import base64
import json
import os
import shutil
import stat
import subprocess
import tempfile

import pytest

from elemta import ELEMTACTL, ROOT, STAT, SMTPConn, send_message, wait_until

EXAMPLES = os.path.join(ROOT, "examples", "plugins")
CC_FLAGS = ["-std=c11", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror"]

# A plugin with the wrong ABI version: the loader must refuse it.
BROKEN_ABI_SRC = r"""
#include <elemta/plugin.h>
ELEMTA_PLUGIN_EXPORT = {
	.abi_version = ELEMTA_PLUGIN_ABI_VERSION + 100,
	.name = "broken_abi",
	.version = "0",
};
"""


# A plugin as built against the first release of ABI 1 (minor 0, the
# header before enum elemta_phase): the parts of that header it uses are
# written out here, frozen, so a change to the descriptor, the result
# struct, the action values or elemta_ctx_phase()'s spellings that keeps
# the major version fails test_abi_minor_0_plugin_still_decides.  Each hook
# refuses when called in a phase other than its own, and the decisions
# it makes on purpose name the phase string it saw.
ABI_1_0_SRC = r"""
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum elemta_action { ELEMTA_CONTINUE = 0, ELEMTA_REJECT = 1,
	ELEMTA_TEMPFAIL = 2, ELEMTA_DISCARD = 3, ELEMTA_QUARANTINE = 4 };
struct elemta_result {
	enum elemta_action action;
	int smtp_code;
	char enhanced[16];
	char message[256];
};
typedef struct elemta_ctx elemta_ctx;
typedef struct elemta_cfg elemta_cfg;
const char *elemta_ctx_phase(const elemta_ctx *ctx);
const char *elemta_ctx_recipient(const elemta_ctx *ctx);
typedef enum elemta_action (*elemta_hook)(void *state, const elemta_ctx *ctx,
    struct elemta_result *res);
struct elemta_plugin {
	uint32_t abi_version;
	const char *name;
	const char *version;
	int (*init)(const elemta_cfg *config, void **state, char *err,
	    size_t errlen);
	void (*destroy)(void *state);
	elemta_hook on_connect, on_helo, on_auth, on_mail_from, on_rcpt_to,
	    on_data;
};

static enum elemta_action
refuse(struct elemta_result *res, const char *why, const char *phase)
{
	res->action = ELEMTA_REJECT;
	res->smtp_code = 550;
	strcpy(res->enhanced, "5.7.1");
	snprintf(res->message, sizeof(res->message), "abi10 %s %s", why, phase);
	return ELEMTA_REJECT;
}

static enum elemta_action
expect(const elemta_ctx *ctx, struct elemta_result *res, const char *want)
{
	const char *phase = elemta_ctx_phase(ctx);

	return strcmp(phase, want) == 0 ? ELEMTA_CONTINUE :
	    refuse(res, "wrong-phase", phase);
}

static enum elemta_action
on_connect(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	(void)st;
	return expect(ctx, res, "CONNECT");
}

static enum elemta_action
on_helo(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	(void)st;
	return expect(ctx, res, "EHLO");
}

static enum elemta_action
on_mail(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	(void)st;
	return expect(ctx, res, "MAIL");
}

static enum elemta_action
on_rcpt(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	(void)st;
	if (expect(ctx, res, "RCPT") != ELEMTA_CONTINUE)
		return res->action;
	if (strcmp(elemta_ctx_recipient(ctx), "no@example.com") == 0)
		return refuse(res, "refused", elemta_ctx_phase(ctx));
	return ELEMTA_CONTINUE;
}

static enum elemta_action
on_data(void *st, const elemta_ctx *ctx, struct elemta_result *res)
{
	const char *phase = elemta_ctx_phase(ctx);

	(void)st;
	if (strcmp(phase, "DATA") == 0)
		return ELEMTA_CONTINUE;
	if (strcmp(phase, "END-OF-MESSAGE") == 0)
		return refuse(res, "refused", phase);
	return refuse(res, "wrong-phase", phase);
}

extern const struct elemta_plugin elemta_plugin;
__attribute__((visibility("default"))) const struct elemta_plugin
    elemta_plugin = {
	.abi_version = 1,
	.name = "abi10",
	.version = "1.0",
	.on_connect = on_connect,
	.on_helo = on_helo,
	.on_mail_from = on_mail,
	.on_rcpt_to = on_rcpt,
	.on_data = on_data,
};
"""

def _run(cmd, **kw):
    kw.setdefault("timeout", 120)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def sdk():
    """Install the SDK into a scratch root, build the examples against it.

    The directory is world-traversable on purpose: when the tests run as
    root, policyd runs as the elemta-policy user and must be able to open
    the .so files (pytest's own tmp_path is private to root)."""
    top = tempfile.mkdtemp(prefix="elemta-sdk-")
    try:
        os.chmod(top, 0o755)
        dest = os.path.join(top, "root")
        r = _run(["make", "-C", ROOT, "install", "DESTDIR=" + dest, "PREFIX=/usr"],
                 timeout=1200)
        assert r.returncode == 0, "make install failed:\n%s\n%s" % (r.stdout[-3000:], r.stderr[-3000:])
        pcdir = os.path.join(dest, "usr", "lib", "pkgconfig")
        assert os.path.exists(os.path.join(pcdir, "elemta-plugin.pc")), os.listdir(dest)
        env = dict(os.environ, PKG_CONFIG_PATH=pcdir, PKG_CONFIG_LIBDIR=pcdir,
                   PKG_CONFIG_SYSROOT_DIR=dest)
        r = _run(["pkg-config", "--cflags", "elemta-plugin"], env=env)
        assert r.returncode == 0, r.stderr
        cflags = r.stdout.split()
        incdirs = [f[2:] for f in cflags if f.startswith("-I")]
        assert any(os.path.exists(os.path.join(d, "elemta", "plugin.h")) for d in incdirs), (
            "pkg-config --cflags elemta-plugin gave %r, which does not hold the installed "
            "elemta/plugin.h (a build/elemta-plugin.pc left over from an earlier PREFIX?)\n"
            "installed pc:\n%s" % (cflags, open(os.path.join(pcdir, "elemta-plugin.pc")).read()))
        for d in incdirs:
            assert os.path.realpath(d).startswith(os.path.realpath(dest)), (
                "cflags point outside the installed tree: %r" % cflags)

        # Sources are copied out of the tree so nothing next to them (like
        # ../../include) can be picked up by accident.
        src = os.path.join(top, "src")
        out = os.path.join(top, "plugins")
        os.mkdir(src)
        os.mkdir(out, 0o755)
        os.chmod(out, 0o755)
        for name in ("example_policy", "example_data"):
            shutil.copy(os.path.join(EXAMPLES, name + ".c"), src)
        with open(os.path.join(src, "broken_abi.c"), "w") as f:
            f.write(BROKEN_ABI_SRC)
        with open(os.path.join(src, "abi_1_0.c"), "w") as f:
            f.write(ABI_1_0_SRC)
        built = {}
        for name in ("example_policy", "example_data", "broken_abi", "abi_1_0"):
            so = os.path.join(out, name + ".so")
            r = _run(["cc"] + CC_FLAGS + cflags + ["-o", so, os.path.join(src, name + ".c")],
                     cwd=src, env=env)
            assert r.returncode == 0, "cc %s failed:\n%s" % (name, r.stderr)
            os.chmod(so, 0o755)
            built[name] = so
        built["dir"] = out
        built["top"] = top
        yield built
    finally:
        shutil.rmtree(top, ignore_errors=True)


def entry(so, name, config=None, enabled=True):
    e = {"name": name, "path": so, "enabled": enabled}
    if config is not None:
        e["config"] = config
    return e


def policy(sdk, config, name="example_policy"):
    return entry(sdk["example_policy"], name, config)


def data_plugin(sdk, config):
    return entry(sdk["example_data"], "example_data", config)


def converse(port, *lines, source=None):
    """Greeting, EHLO, then each line; returns the (code, text) replies."""
    c = SMTPConn(port, source=source)
    try:
        code, text, _ = c.reply()
        assert code == 220, (code, text)
        code, text, _ = c.cmd("EHLO client.test")
        assert code == 250, (code, text)
        out = []
        for line in lines:
            code, text, _ = c.cmd(line)
            out.append((code, text))
        c.cmd("QUIT")
        return out
    finally:
        c.close()


def assert_reply(reply, code, enhanced):
    assert reply[0] == code and reply[1].startswith(enhanced + " "), \
        "expected %d %s, got %r" % (code, enhanced, reply)


def stat_entries(e):
    r = _run([STAT, "-c", e.config_path, "--json", "list"])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["entries"]


def metric_value(e, name):
    """The value of a metric counter (keys may be namespaced by the host)."""
    return sum(x.get("value", 0) for x in stat_entries(e)
               if x["kind"] == "metric" and name in x["key"])


def msg(*headers, body=b"Hello.\r\n"):
    return b"".join(h.encode() + b"\r\n" for h in headers) + b"\r\n" + body


GOOD_HEADERS = ("From: a@example.com", "To: b@example.com",
                "Message-ID: <1@example.com>", "Subject: hello")


# ---- example_policy.c: every hook's decision reaches the client ----------

def test_connect_reputation_refused_554(make_elemta, sdk):
    e = make_elemta(plugins=[policy(sdk, {
        "block_bad_reputation": True, "min_reputation_score": 50,
        "reputation": {"127.0.0.2": 10, "127.0.0.0/8": 80}})])
    c = SMTPConn(e.port, source="127.0.0.2")
    try:
        code, text, _ = c.reply()
        assert code == 554 and "5.7.1" in text, (code, text)
    finally:
        c.close()
    # The longest prefix decides: 127.0.0.1 is under 127.0.0.0/8 (80).
    assert converse(e.port, "NOOP")[0][0] == 250
    # The plugin's own elemta_log line reached the log, with its reason.
    wait_until(lambda: "reputation 10 below 50" in e.log(), 5, what="plugin log line")
    wait_until(lambda: metric_value(e, "policy_rejected_connections_total") >= 1, 5,
               what="policy_rejected_connections_total counted")


def test_mail_sender_domain_550_and_null_sender_accepted(make_elemta, sdk):
    e = make_elemta(plugins=[policy(sdk, {"allowed_sender_domains": ["example.com"]})])
    r = converse(e.port, "MAIL FROM:<a@other.org>", "MAIL FROM:<a@Example.COM>", "RSET",
                 "MAIL FROM:<>", "RSET", "MAIL FROM:<a@sub.example.com>")
    assert_reply(r[0], 550, "5.7.1")
    assert "other.org" in r[0][1]
    assert r[1][0] == 250, r          # any letter case
    assert r[3][0] == 250, r          # bounces are never refused by domain
    assert_reply(r[5], 550, "5.7.1")  # "example.com" is that domain only
    wait_until(lambda: metric_value(e, "policy_rejected_senders_total") >= 2, 5,
               what="policy_rejected_senders_total counted")


def _mail_code(port):
    return converse(port, "MAIL FROM:<a@example.com>")[0]


def test_message_rate_is_shared_and_survives_restart(make_elemta, sdk):
    limit = 3
    e = make_elemta(plugins=[policy(sdk, {"max_messages_per_minute": limit})])
    # Fresh connections spread over both smtpd and both policyd workers: the
    # count is in the shared table, so the limit holds across them.
    replies = [_mail_code(e.port) for _ in range(limit + 2)]
    assert [c for c, _ in replies[:limit]] == [250] * limit, replies
    for rep in replies[limit:]:
        assert_reply(rep, 450, "4.7.1")
    rates = [x for x in stat_entries(e) if x["kind"] == "rate" and "msg:127.0.0.1" in x["key"]]
    assert len(rates) == 1 and rates[0]["count"] == limit and rates[0]["limit"] == limit, rates
    wait_until(lambda: metric_value(e, "policy_rejected_messages_total") >= 2, 5,
               what="policy_rejected_messages_total counted")
    # Not process memory: a full stop/start still remembers the window.
    e.stop()
    e.start()
    assert_reply(_mail_code(e.port), 450, "4.7.1")


def test_rcpt_blocked_relay_and_max_recipients(make_elemta, sdk):
    e = make_elemta(plugins=[policy(sdk, {
        "blocked_recipient_domains": ["blocked.com"],
        "allowed_relay_domains": ["example.com", ".example.net"],
        "max_recipients_per_message": 2})])
    r = converse(e.port, "MAIL FROM:<a@example.org>",
                 "RCPT TO:<x@Blocked.COM>",
                 "RCPT TO:<x@elsewhere.org>",
                 "RCPT TO:<b@example.com>",
                 "RCPT TO:<c@mx.example.net>",
                 "RCPT TO:<d@example.com>")
    assert r[0][0] == 250, r
    assert_reply(r[1], 550, "5.7.1")
    assert_reply(r[2], 554, "5.7.1")
    assert "relay" in r[2][1].lower()
    assert r[3][0] == 250 and r[4][0] == 250, r
    assert_reply(r[5], 452, "4.5.3")
    # The refused recipients never reach the spool.
    res = send_message(e.port, "a@example.org",
                       ["b@example.com", "x@blocked.com", "c@mx.example.net"],
                       msg(*GOOD_HEADERS))
    assert res[-1][0] == "eom" and res[-1][1] == 250, res
    _, env = e.read_queued(e.queued()[0])
    assert env["recipients"] == ["b@example.com", "c@mx.example.net"], env
    wait_until(lambda: metric_value(e, "policy_rejected_recipients_total") >= 4, 5,
               what="policy_rejected_recipients_total counted")


def test_relay_allowed_once_authenticated(make_elemta, sdk):
    e = make_elemta(start=False,
                    plugins=[policy(sdk, {"allowed_relay_domains": ["example.com"]})],
                    overrides={"auth": {"users_file": "users", "require_tls": False}})
    h = _run(["openssl", "passwd", "-6", "-salt", "pluginsalt", "s3cret"])
    assert h.returncode == 0, h.stderr
    with open(e.path("users"), "w") as f:
        f.write("alice:%s\n" % h.stdout.strip())
    e.start()
    token = base64.b64encode(b"\0alice\0s3cret").decode()
    r = converse(e.port, "AUTH PLAIN " + token, "MAIL FROM:<alice@example.com>",
                 "RCPT TO:<someone@elsewhere.org>")
    assert r[0][0] == 235, "AUTH PLAIN failed: %r" % (r,)
    assert r[1][0] == 250 and r[2][0] == 250, r
    r = converse(e.port, "MAIL FROM:<alice@example.com>", "RCPT TO:<someone@elsewhere.org>")
    assert_reply(r[1], 554, "5.7.1")


# ---- example_data.c: on_data at END-OF-MESSAGE ---------------------------

DATA_CONFIG = {"max_header_lines": 20, "require_header": "Message-ID",
               "quarantine_subject_prefix": "[SPAM]"}


def test_data_hook_rejects_quarantines_and_accepts(make_elemta, sdk):
    e = make_elemta(plugins=[data_plugin(sdk, DATA_CONFIG)])

    ok = send_message(e.port, "a@example.com", ["b@example.com"], msg(*GOOD_HEADERS))
    assert ok[-1][0] == "eom" and ok[-1][1] == 250, ok
    assert len(e.queued()) == 1

    # No Message-ID in the header (one in the body does not count).
    nomid = send_message(e.port, "a@example.com", ["b@example.com"],
                         msg("From: a@example.com", "Subject: hi",
                             body=b"Message-ID: <in-the-body@x>\r\n"))
    assert nomid[-1][0] == "eom", nomid
    assert_reply(nomid[-1][1:], 550, "5.6.0")
    assert "Message-ID" in nomid[-1][2]

    many = send_message(e.port, "a@example.com", ["b@example.com"],
                        msg(*(GOOD_HEADERS + tuple("X-Filler-%d: x" % i for i in range(30)))))
    assert_reply(many[-1][1:], 550, "5.6.0")

    # Quarantine applies to the whole message: the client hears 250, the
    # message lands in quarantine/, not in the queue.
    spam = send_message(e.port, "a@example.com", ["b@example.com"],
                        msg("From: a@example.com", "Message-ID: <2@example.com>",
                            "Subject: [spam] cheap things"))
    assert spam[-1][0] == "eom" and spam[-1][1] == 250, spam
    assert len(e.queued()) == 1
    q = e.queued("quarantine")
    assert len(q) == 1, q
    body, _ = e.read_queued(q[0], sub="quarantine")
    assert b"Subject: [spam] cheap things" in body
    wait_until(lambda: metric_value(e, "example_data_rejected_total") >= 2
               and metric_value(e, "example_data_quarantined_total") >= 1, 5,
               what="example_data metrics counted")


# ---- chain semantics -----------------------------------------------------

def test_chain_config_order_first_decision_wins(make_elemta, sdk):
    """Two instances of example_policy (two files, two names): at the
    RCPT where both would refuse, the one listed first decides."""
    second_so = os.path.join(sdk["dir"], "example_policy_b.so")
    shutil.copy(sdk["example_policy"], second_so)
    os.chmod(second_so, 0o755)
    one_rcpt = {"max_recipients_per_message": 1}
    blocked = {"blocked_recipient_domains": ["blocked.com"]}
    lines = ("MAIL FROM:<a@example.org>", "RCPT TO:<ok@example.com>",
             "RCPT TO:<x@blocked.com>")

    e = make_elemta(plugins=[entry(sdk["example_policy"], "policy_max", one_rcpt),
                             entry(second_so, "policy_blocked", blocked)])
    r = converse(e.port, *lines)
    assert r[1][0] == 250, r
    assert_reply(r[2], 452, "4.5.3")
    e.stop()

    e2 = make_elemta(plugins=[entry(second_so, "policy_blocked", blocked),
                              entry(sdk["example_policy"], "policy_max", one_rcpt)])
    r = converse(e2.port, *lines)
    assert r[1][0] == 250, r
    assert_reply(r[2], 550, "5.7.1")


def test_both_examples_in_one_chain(make_elemta, sdk):
    e = make_elemta(plugins=[policy(sdk, {"blocked_recipient_domains": ["blocked.com"]}),
                             data_plugin(sdk, DATA_CONFIG)])
    r = send_message(e.port, "a@example.com", ["x@blocked.com", "b@example.com"],
                     msg("From: a@example.com", "Message-ID: <3@example.com>",
                         "Subject: [SPAM] hi"))
    stages = [(s, c) for s, c, _ in r]
    assert ("rcpt", 550) in stages and ("rcpt", 250) in stages, r
    assert r[-1][0] == "eom" and r[-1][1] == 250, r
    assert e.queued() == [] and len(e.queued("quarantine")) == 1


def test_disabled_plugin_is_not_run(make_elemta, sdk):
    e = make_elemta(plugins=[entry(sdk["example_policy"], "example_policy",
                                   {"blocked_recipient_domains": ["blocked.com"]},
                                   enabled=False)])
    r = converse(e.port, "MAIL FROM:<a@example.org>", "RCPT TO:<x@blocked.com>")
    assert r[1][0] == 250, r


# ---- refusals: loader and config -----------------------------------------

def _refused(e, *needles):
    """check-config or start must refuse this config with one clear line
    holding every needle (case-insensitive); returns that output."""
    low = [n.lower() for n in needles]
    r = e.ctl("check-config")
    out = r.stdout + r.stderr
    if r.returncode != 0:
        assert all(n in out.lower() for n in low), out
        return out
    # check-config accepted it, so start must refuse (before or while the
    # policyd workers load the plugin).
    e.start(wait=False)
    wait_until(lambda: e.proc.poll() is not None or all(n in e.log().lower() for n in low),
               20, what="a refusal naming %r" % (needles,))
    log = e.log()
    assert any(all(n in line.lower() for n in low) for line in log.splitlines()), log
    return log


def test_world_writable_plugin_is_refused(make_elemta, sdk):
    bad = os.path.join(sdk["dir"], "world_writable.so")
    shutil.copy(sdk["example_policy"], bad)
    os.chmod(bad, 0o777)
    assert os.stat(bad).st_mode & stat.S_IWOTH
    try:
        e = make_elemta(start=False, plugins=[entry(bad, "example_policy", {})])
        _refused(e, bad, "writable")
    finally:
        os.unlink(bad)


def test_wrong_abi_version_is_refused(make_elemta, sdk):
    e = make_elemta(start=False, plugins=[entry(sdk["broken_abi"], "broken_abi")])
    out = _refused(e, "broken_abi")
    assert "abi" in out.lower() or "version" in out.lower(), out


def test_plugin_config_error_names_file_and_key(make_elemta, sdk):
    e = make_elemta(start=False, plugins=[policy(sdk, {"max_mesages_per_minute": 5})])
    out = _refused(e, "max_mesages_per_minute")
    assert e.config_path + ":" in out, out
    assert "max_messages_per_minute" in out, out      # the suggestion
    e2 = make_elemta(start=False, plugins=[policy(sdk, {
        "reputation": {"192.0.2.7/24": 10}, "block_bad_reputation": True})])
    out = _refused(e2, "192.0.2.7/24", "host bits")
    assert e2.config_path + ":" in out, out


# ---- elemtactl test-plugin ----------------------------------------------

def need_test_plugin(sdk):
    """Skip while elemtactl answers test-plugin with "not implemented"
    (exit 2).  `--help` alone is not enough of a probe: a global --help
    may print the usage and exit 0, so a real run is probed too."""
    for args in (["--help"], [sdk["example_policy"]]):
        r = _run([ELEMTACTL, "test-plugin"] + args, timeout=30)
        if r.returncode == 2 and "not implemented" in (r.stdout + r.stderr):
            pytest.skip("elemtactl test-plugin is not implemented yet")


def _yaml(tmp_path, name, obj):
    p = tmp_path / name
    p.write_text(json.dumps(obj) + "\n")     # JSON is YAML
    return str(p)


def _eml(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def _tp(tmp_path, *args):
    return _run([ELEMTACTL, "test-plugin"] + list(args), cwd=str(tmp_path), timeout=60)


def test_test_plugin_example_policy(sdk, tmp_path):
    need_test_plugin(sdk)
    cfg = _yaml(tmp_path, "policy.yaml", {
        "block_bad_reputation": True, "reputation": {"192.0.2.0/24": 10},
        "allowed_sender_domains": ["example.com"],
        "blocked_recipient_domains": ["blocked.com"]})
    so = sdk["example_policy"]

    r = _tp(tmp_path, so, "--config", cfg, "--ip", "192.0.2.7")
    assert r.returncode == 1, r
    assert "554" in r.stdout and "5.7.1" in r.stdout, r.stdout

    r = _tp(tmp_path, so, "--config", cfg, "--ip", "198.51.100.1",
            "--from", "a@example.com", "--rcpt", "b@example.com")
    assert r.returncode == 0, r

    r = _tp(tmp_path, so, "--config", cfg, "--ip", "198.51.100.1",
            "--from", "a@other.org", "--rcpt", "b@example.com")
    assert r.returncode == 1 and "5.7.1" in r.stdout, r

    r = _tp(tmp_path, so, "--config", cfg, "--ip", "198.51.100.1",
            "--from", "a@example.com", "--rcpt", "x@blocked.com")
    assert r.returncode == 1 and "550" in r.stdout, r


def test_test_plugin_example_data(sdk, tmp_path):
    need_test_plugin(sdk)
    cfg = _yaml(tmp_path, "data.yaml", DATA_CONFIG)
    so = sdk["example_data"]
    env = ["--from", "a@example.com", "--rcpt", "b@example.com"]

    good = _eml(tmp_path, "good.eml", msg(*GOOD_HEADERS))
    r = _tp(tmp_path, so, "--config", cfg, *env, "--data", good)
    assert r.returncode == 0, r

    nomid = _eml(tmp_path, "nomid.eml", msg("From: a@example.com", "Subject: x"))
    r = _tp(tmp_path, so, "--config", cfg, *env, "--data", nomid)
    assert r.returncode == 1 and "5.6.0" in r.stdout, r

    spam = _eml(tmp_path, "spam.eml", msg("Message-ID: <4@x>", "Subject: [SPAM] x"))
    r = _tp(tmp_path, so, "--config", cfg, *env, "--data", spam)
    assert r.returncode == 0 and "quarantine" in r.stdout.lower(), r


def test_abi_minor_0_plugin_still_decides(sdk, tmp_path):
    """plugin.h's ABI rule: a plugin built for ABI 1 minor 0 loads in this
    host and sees every phase under its minor-0 spelling (ABI_1_0_SRC)."""
    need_test_plugin(sdk)
    eml = _eml(tmp_path, "m.eml", msg(*GOOD_HEADERS))
    r = _tp(tmp_path, sdk["abi_1_0"], "--from", "a@example.com",
            "--rcpt", "no@example.com", "--rcpt", "b@example.com",
            "--data", eml)
    assert r.returncode == 1, r
    assert "wrong-phase" not in r.stdout, r.stdout
    lines = r.stdout.splitlines()
    assert [l.split()[0] for l in lines] == [
        "CONNECT", "EHLO", "MAIL", "RCPT", "RCPT", "DATA",
        "END-OF-MESSAGE"], r.stdout
    assert "550 5.7.1 abi10 refused RCPT" in lines[3], lines
    assert lines[4].endswith("continue"), lines
    assert lines[5].endswith("continue"), lines
    assert "550 5.7.1 abi10 refused END-OF-MESSAGE" in lines[6], lines


def test_test_plugin_refuses_broken_plugins(sdk, tmp_path):
    need_test_plugin(sdk)
    r = _tp(tmp_path, sdk["broken_abi"])
    assert r.returncode == 2, r
    assert "abi" in (r.stdout + r.stderr).lower() or "version" in (r.stdout + r.stderr).lower(), r

    bad = str(tmp_path / "ww.so")
    shutil.copy(sdk["example_policy"], bad)
    os.chmod(bad, 0o666)
    r = _tp(tmp_path, bad)
    assert r.returncode == 2 and "writable" in (r.stdout + r.stderr).lower(), r

    cfg = _yaml(tmp_path, "typo.yaml", {"max_mesages_per_minute": 5})
    r = _tp(tmp_path, sdk["example_policy"], "--config", cfg)
    assert r.returncode == 2, r
    assert "max_mesages_per_minute" in r.stderr + r.stdout, r
    assert cfg + ":" in r.stderr + r.stdout, r

    r = _tp(tmp_path, str(tmp_path / "missing.so"))
    assert r.returncode == 2, r
