"""elemtactl's operator commands (issues 6 and 7): test-plugin, check-config
loading the plugins, reload (and SIGHUP) under load, an invalid reload,
status after a worker was killed, and stop's 421 after the grace period.

Every test drives the real binaries; the ones that need a running system
use the harness (elemta.py) and its make_elemta fixture.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

from elemta import ELEMTACTL, ROOT, SMTPConn, send_message, wait_until

PLUGINS = os.path.join(ROOT, "build", "plugins")
MIME = os.path.join(ROOT, "tests", "unit", "data", "mime")
BODY = b"From: a@example.org\r\nSubject: hello\r\nMessage-ID: <1@example.org>\r\n\r\nHello.\r\n"


def run(*args, cwd=None, timeout=60):
    return subprocess.run([ELEMTACTL] + list(args), capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def yaml_file(tmp_path, name, obj):
    p = tmp_path / name
    p.write_text(json.dumps(obj, indent=1) + "\n")     # JSON is YAML
    return str(p)


def lines(r):
    return [line for line in r.stdout.splitlines() if line.strip()]


def status_rows(e):
    r = e.ctl("status", "--json")
    assert r.returncode == 0, r
    return json.loads(r.stdout)


# ---- test-plugin ---------------------------------------------------------

def test_test_plugin_builtin_policy_blocks_a_domain(tmp_path):
    cfg = yaml_file(tmp_path, "policy.yaml", {"blocked_recipient_domains": ["blocked.com"]})
    r = run("test-plugin", "policy", "--config", cfg, "--ip", "192.0.2.7",
            "--helo", "client.test", "--from", "a@example.org",
            "--rcpt", "x@blocked.com", "--rcpt", "b@example.com", cwd=str(tmp_path))
    assert r.returncode == 1, r
    out = lines(r)
    assert out[0].split() == ["CONNECT", "continue"], out
    assert out[1].split() == ["EHLO", "client.test", "continue"], out
    assert out[2].split() == ["MAIL", "<a@example.org>", "continue"], out
    assert re.match(r"^RCPT <x@blocked\.com> reject 550 5\.7\.1 \S", out[3]), out
    # A refused recipient does not end the transaction.
    assert out[4].split() == ["RCPT", "<b@example.com>", "continue"], out
    assert len(out) == 5, out

    # Nothing refused: exit 0, one line per phase.
    r = run("test-plugin", "policy", "--config", cfg, "--from", "a@example.org",
            "--rcpt", "b@example.com", cwd=str(tmp_path))
    assert r.returncode == 0, r
    assert [l.split()[0] for l in lines(r)] == ["CONNECT", "EHLO", "MAIL", "RCPT"], r.stdout

    # Every recipient refused: the run stops before DATA.
    eml = os.path.join(MIME, "neg_clean.eml")
    r = run("test-plugin", "policy", "--config", cfg, "--from", "a@example.org",
            "--rcpt", "x@blocked.com", "--data", eml, cwd=str(tmp_path))
    assert r.returncode == 1, r
    assert lines(r)[-1].startswith("RCPT <x@blocked.com> reject"), r.stdout


def test_test_plugin_options_belong_to_the_command(tmp_path):
    # --config after test-plugin is the plugin's, -c before it elemtactl's
    # (which test-plugin does not even need: a missing file is fine).
    cfg = yaml_file(tmp_path, "policy.yaml", {"allowed_sender_domains": ["example.com"]})
    r = run("-c", str(tmp_path / "no-such-elemta.yaml"), "test-plugin", "policy",
            "--config", cfg, "--from", "x@spam.example")
    assert r.returncode == 1, r
    assert re.search(r"^MAIL <x@spam\.example> reject 5\d\d ", r.stdout, re.M), r.stdout

    r = run("test-plugin", "--help")
    assert r.returncode == 0, r
    assert "--auth-user" in r.stdout and "--data" in r.stdout, r.stdout
    r = run("status", "--help")
    assert r.returncode == 0 and "status" in r.stdout, r

    for bad in (["test-plugin", "policy", "--bogus"],
                ["test-plugin", "policy", "--rcpt", "a@b"],          # no --from
                ["test-plugin", "policy", "--ip", "not-an-ip"],
                ["test-plugin", "policy", "--auth-ok"]):             # no --auth-user
        r = run(*bad)
        assert r.returncode == 2, (bad, r)
        assert r.stderr.count("\n") <= 2 and "elemtactl test-plugin:" in r.stderr, r.stderr


def test_test_plugin_example_policy_so(tmp_path):
    so = os.path.join(PLUGINS, "example_policy.so")
    cfg = yaml_file(tmp_path, "ex.yaml", {
        "block_bad_reputation": True, "reputation": {"192.0.2.0/24": 10},
        "blocked_recipient_domains": ["blocked.com"]})
    r = run("test-plugin", so, "--config", cfg, "--ip", "192.0.2.7", cwd=str(tmp_path))
    assert r.returncode == 1, r
    assert lines(r) and re.match(r"^CONNECT\s+reject 554 5\.7\.1 ", lines(r)[0]), r.stdout
    assert len(lines(r)) == 1, r.stdout          # a refused CONNECT ends the run

    r = run("test-plugin", so, "--config", cfg, "--ip", "198.51.100.1",
            "--from", "a@example.com", "--rcpt", "b@example.com", "--rcpt", "x@blocked.com",
            cwd=str(tmp_path))
    assert r.returncode == 1, r
    assert "RCPT <b@example.com> continue" in r.stdout, r.stdout
    assert re.search(r"^RCPT <x@blocked\.com> reject 550 5\.7\.1 ", r.stdout, re.M), r.stdout

    # AUTH runs with the outcome given; a wrong password is answered 535 by
    # the host, which is not a refusal by the plugin (exit 0).
    r = run("test-plugin", so, "--config", cfg, "--ip", "198.51.100.1",
            "--auth-user", "alice", "--auth-ok", "--from", "alice@example.com",
            cwd=str(tmp_path))
    assert r.returncode == 0, r
    assert "AUTH alice continue" in r.stdout, r.stdout
    r = run("test-plugin", so, "--config", cfg, "--ip", "198.51.100.1",
            "--auth-user", "alice", "--auth-fail", "--from", "alice@example.com",
            cwd=str(tmp_path))
    assert r.returncode == 0, r
    assert re.search(r"^AUTH alice reject 535 5\.7\.8 .*no plugin refused", r.stdout, re.M), r.stdout
    assert "MAIL <alice@example.com> continue" in r.stdout, r.stdout


def test_test_plugin_example_data_so_with_eml(tmp_path):
    so = os.path.join(PLUGINS, "example_data.so")
    eml = os.path.join(MIME, "neg_clean.eml")
    env = ["--from", "alice@example.org", "--rcpt", "bob@example.com", "--data", eml]

    cfg = yaml_file(tmp_path, "ok.yaml", {"require_header": "Message-ID", "max_header_lines": 50})
    r = run("test-plugin", so, "--config", cfg, *env, cwd=str(tmp_path))
    assert r.returncode == 0, r
    out = lines(r)
    assert [l.split()[0] for l in out] == ["CONNECT", "EHLO", "MAIL", "RCPT", "DATA",
                                           "END-OF-MESSAGE"], out
    assert out[-1].split()[1] == "continue", out

    # The plugin really read the file: its Subject decides.
    cfg = yaml_file(tmp_path, "q.yaml", {"quarantine_subject_prefix": "Quarterly"})
    r = run("test-plugin", so, "--config", cfg, *env, cwd=str(tmp_path))
    assert r.returncode == 0, r
    assert lines(r)[-1].startswith("END-OF-MESSAGE quarantine"), r.stdout

    cfg = yaml_file(tmp_path, "few.yaml", {"max_header_lines": 2})
    r = run("test-plugin", so, "--config", cfg, *env, cwd=str(tmp_path))
    assert r.returncode == 1, r
    assert re.match(r"^END-OF-MESSAGE reject 550 5\.6\.0 ", lines(r)[-1]), r.stdout


def test_test_plugin_broken_plugins_exit_2(tmp_path):
    bad = tmp_path / "ww.so"
    shutil.copy(os.path.join(PLUGINS, "example_policy.so"), bad)
    os.chmod(bad, 0o666)
    r = run("test-plugin", str(bad), cwd=str(tmp_path))
    assert r.returncode == 2, r
    assert r.stdout == "", r.stdout
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "writable" in err[0], r.stderr

    r = run("test-plugin", str(tmp_path / "missing.so"))
    assert r.returncode == 2 and "missing.so" in r.stderr, r

    r = run("test-plugin", "no_such_builtin")
    assert r.returncode == 2 and "built-in" in r.stderr, r

    typo = yaml_file(tmp_path, "typo.yaml", {"blocked_recipient_domain": ["x.com"]})
    r = run("test-plugin", "policy", "--config", typo)
    assert r.returncode == 2, r
    assert typo + ":" in r.stderr and "blocked_recipient_domain" in r.stderr, r.stderr

    notyaml = tmp_path / "broken.yaml"
    notyaml.write_text("a: [1, 2\n")
    r = run("test-plugin", "policy", "--config", str(notyaml))
    assert r.returncode == 2 and str(notyaml) + ":" in r.stderr, r

    # Nothing is left behind: the scratch counter tables are gone.
    assert not [n for n in os.listdir("/tmp") if n.startswith("elemtactl-test-plugin.")]


# ---- check-config loads the plugins --------------------------------------

def test_check_config_loads_every_plugin(make_elemta, tmp_path):
    e = make_elemta(start=False, plugins=[
        {"name": "policy", "config": {"blocked_recipient_domains": ["blocked.com"]}},
        {"name": "example_policy", "path": os.path.join(PLUGINS, "example_policy.so"),
         "config": {"max_mesages_per_minute": 5}}])
    r = e.ctl("check-config")
    assert r.returncode == 1, r
    assert re.search(re.escape(e.config_path) + r":\d+:\d+: key 'max_mesages_per_minute'",
                     r.stderr), r.stderr

    bad = os.path.join(e.dir, "ww.so")
    shutil.copy(os.path.join(PLUGINS, "example_policy.so"), bad)
    os.chmod(bad, 0o666)
    e.cfg["plugins"] = [{"name": "policy"}, {"name": "ww", "path": bad},
                        {"name": "nosuch"}]
    e.write_config()
    r = e.ctl("check-config")
    assert r.returncode == 1, r
    # Every broken plugin, each with the line of its entry.
    assert re.search(re.escape(e.config_path) + r":\d+:\d+: plugin 'ww': refusing .*writable",
                     r.stderr), r.stderr
    assert re.search(re.escape(e.config_path) + r":\d+:\d+: plugin 'nosuch'", r.stderr), r.stderr
    # start refuses it too, before any worker runs.
    r = e.ctl("start", "--foreground", timeout=20)
    assert r.returncode == 1 and "writable" in r.stderr, r

    e.cfg["plugins"] = [{"name": "policy"}]
    e.write_config()
    r = e.ctl("check-config")
    assert r.returncode == 0, r


# ---- reload ----------------------------------------------------------------

class Stream:
    """Sends complete messages one after the other until stopped; records
    every transaction that did not end in 250 (or raised)."""

    def __init__(self, port, n=4):
        self.port = port
        self.stop_ev = threading.Event()
        self.sent = 0
        self.failures = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.loop, daemon=True) for _ in range(n)]

    def loop(self):
        while not self.stop_ev.is_set():
            try:
                r = send_message(self.port, "a@example.org", ["b@example.com"], BODY)
                ok = r[-1][0] == "eom" and r[-1][1] == 250
            except Exception as ex:   # a refused or reset connection
                r, ok = repr(ex), False
            with self.lock:
                self.sent += 1
                if not ok:
                    self.failures.append(r)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        for t in self.threads:
            t.join(30)


def rcpt_code(port, rcpt):
    c = SMTPConn(port)
    try:
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.test")[0] == 250
        assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
        return c.cmd("RCPT TO:<%s>" % rcpt)[0]
    finally:
        c.close()


def test_reload_under_load_applies_a_changed_rule(make_elemta):
    e = make_elemta(policy={})
    before = status_rows(e)
    assert before["generation"] == 1
    old_pids = {w["pid"] for w in before["workers"]}
    assert rcpt_code(e.port, "x@blocked.com") == 250

    # A session open across the reload: its old smtpd worker finishes it.
    held = SMTPConn(e.port)
    assert held.reply()[0] == 220
    assert held.cmd("EHLO client.test")[0] == 250
    assert held.cmd("MAIL FROM:<a@example.org>")[0] == 250

    with Stream(e.port) as s:
        wait_until(lambda: s.sent >= 10, 20, what="messages before the reload")
        e.cfg["plugins"][0]["config"] = {"blocked_recipient_domains": ["blocked.com"]}
        e.write_config()
        r = e.ctl("reload")
        assert r.returncode == 0, r
        assert "generation 2" in r.stdout, r.stdout
        n = s.sent
        wait_until(lambda: s.sent >= n + 10, 20, what="messages after the reload")
        # And once more, by signal this time.
        os.kill(e.proc.pid, signal.SIGHUP)
        wait_until(lambda: status_rows(e)["generation"] == 3, 20, what="generation 3")
        n = s.sent
        wait_until(lambda: s.sent >= n + 10, 20, what="messages after SIGHUP")
    assert s.failures == [], s.failures[:5]
    assert s.sent >= 30

    # The held session, served by a worker of generation 1, completes.
    assert held.cmd("RCPT TO:<b@example.com>")[0] == 250
    assert held.cmd("DATA")[0] == 354
    held.send(BODY + b".\r\n")
    assert held.reply()[0] == 250
    held.cmd("QUIT")
    held.close()

    # The new rule is in force, everywhere.
    for _ in range(4):
        assert rcpt_code(e.port, "x@blocked.com") == 550
        assert rcpt_code(e.port, "b@example.com") == 250
    # Only the new generation's workers remain, all of them new processes.
    def settled():
        st = status_rows(e)
        return st if all(w["generation"] == 3 for w in st["workers"]) else None
    after = wait_until(settled, 15, what="older generations gone")
    # 2 policyd, 2 smtpd and the one elemta-queued.
    assert sorted(w["kind"] for w in after["workers"]) == [
        "policyd", "policyd", "queued", "smtpd", "smtpd"], after
    assert not old_pids & {w["pid"] for w in after["workers"]}, after
    assert all(w["state"] == "running" for w in after["workers"]), after
    assert "reload: generation 2 running" in e.log()


def test_invalid_reload_keeps_the_old_rules(make_elemta):
    e = make_elemta(policy={"blocked_recipient_domains": ["blocked.com"]})
    good = json.loads(json.dumps(e.cfg))
    pids = {w["pid"] for w in status_rows(e)["workers"]}

    def still_old():
        assert rcpt_code(e.port, "x@blocked.com") == 550
        assert rcpt_code(e.port, "x@other.com") == 250
        st = status_rows(e)
        assert st["generation"] == 1 and {w["pid"] for w in st["workers"]} == pids, st

    try:
        # A plugin config error (found by loading the plugin).
        e.cfg["plugins"][0]["config"] = {"blocked_recipient_domains": ["other.com"],
                                         "max_mesages_per_minute": 5}
        e.write_config()
        r = e.ctl("reload")
        assert r.returncode == 1, r
        assert re.search(re.escape(e.config_path) + r":\d+:\d+: key 'max_mesages_per_minute'",
                         r.stderr), r.stderr
        assert "reload refused" in r.stderr
        assert "reload refused" in e.log() and "max_mesages_per_minute" in e.log()
        still_old()

        # Errors of the file itself, every one with its line.
        e.cfg = json.loads(json.dumps(good))
        e.cfg["server"]["workers"] = "lots"
        e.cfg["policyd"]["timeout_ms"] = -5
        e.write_config()
        r = e.ctl("reload")
        assert r.returncode == 1, r
        assert re.search(re.escape(e.config_path) + r":\d+:\d+: key 'server.workers'", r.stderr), r.stderr
        assert re.search(re.escape(e.config_path) + r":\d+:\d+: key 'policyd.timeout_ms'", r.stderr), r.stderr
        still_old()
        # The same file through SIGHUP: logged, refused, nothing changes.
        os.kill(e.proc.pid, signal.SIGHUP)
        wait_until(lambda: "reload refused (2 problems)" in e.log(), 10, what="refusal logged")
        still_old()

        # A setting that needs a restart.
        e.cfg = json.loads(json.dumps(good))
        e.cfg["policyd"]["socket"] = "run/other.sock"
        e.write_config()
        r = e.ctl("reload")
        assert r.returncode == 1, r
        assert "policyd.socket" in r.stderr and "restart" in r.stderr, r.stderr
        still_old()

        # More sessions per worker than the connection table sized at
        # start counts (it is a sealed shared memfd): a restart is needed.
        e.cfg = json.loads(json.dumps(good))
        e.cfg["server"]["max_connections"] = 100000   # the default is 10,000
        e.write_config()
        r = e.ctl("reload")
        assert r.returncode == 1, r
        assert re.search(r"key 'server.max_connections': 100000 is more than the "
                         r"connection table sized at start holds per worker \(\d+\): "
                         r"restart", r.stderr), r.stderr
        still_old()
    finally:
        # A raise the table has room for (1.5x at least) is applied.
        e.cfg = good
        e.cfg["server"]["max_connections"] = 12000
        e.write_config()
    r = e.ctl("reload")
    assert r.returncode == 0, r
    assert "generation 2" in r.stdout, r.stdout
    wait_until(lambda: status_rows(e)["generation"] == 2, 20, what="generation 2")


# ---- status ---------------------------------------------------------------

def test_status_reflects_a_killed_and_restarted_worker(make_elemta):
    e = make_elemta()
    r = e.ctl("status")
    assert r.returncode == 0, r
    assert re.search(r"^elemta is running \(pid %d, up \S+" % e.proc.pid, r.stdout, re.M), r.stdout
    assert "counter table:" in r.stdout, r.stdout

    victim = [w for w in status_rows(e)["workers"] if w["kind"] == "smtpd"][-1]
    assert victim["restarts"] == 0, victim
    os.kill(victim["pid"], signal.SIGKILL)

    def restarted():
        for w in status_rows(e)["workers"]:
            if (w["kind"], w["id"]) == (victim["kind"], victim["id"]) \
                    and w["state"] == "running" and w["pid"] not in (0, victim["pid"]):
                return w
        return None
    w = wait_until(restarted, 10, what="the killed worker restarted")
    assert w["restarts"] == 1, w
    r = e.ctl("status")
    row = [l for l in r.stdout.splitlines()
           if l.split()[:3] == ["smtpd", str(victim["id"]), str(w["pid"])]]
    assert row and row[0].split()[3] == "running" and row[0].split()[-1] == "1", r.stdout
    assert "killed by signal 9" in e.log()
    # It serves mail.
    assert send_message(e.port, "a@example.org", ["b@example.com"], BODY)[-1][1] == 250

    e.stop()
    r = e.ctl("status")
    assert r.returncode == 3 and "not running" in r.stdout, r
    r = e.ctl("status", "--json")
    assert r.returncode == 3 and json.loads(r.stdout)["running"] is False, r


# ---- stop -------------------------------------------------------------------

def test_stop_waits_for_sessions_then_421(make_elemta):
    e = make_elemta(overrides={"server": {"shutdown_grace": "2s"}})
    c = SMTPConn(e.port)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.test")[0] == 250
    t0 = time.monotonic()
    r = e.ctl("stop", timeout=30)
    took = time.monotonic() - t0
    assert r.returncode == 0, r
    assert took >= 1.5, took             # the session had its grace period
    code, text, _ = c.reply()
    assert code == 421 and text.startswith("4.3.2"), (code, text)
    assert c.closed()
    c.close()
    e.proc.wait(10)
