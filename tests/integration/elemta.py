"""Test harness: a complete Elemta system in a scratch directory.

Starts the real elemtactl (which forks real elemta-policyd and elemta-smtpd
processes) on free loopback ports with a generated config, and offers the
small helpers the integration tests share: SMTP dialogues over raw sockets,
spool inspection, worker pids from the supervisor's status file.
Every wait is bounded; every process started is stopped at teardown.
"""
import atexit
import glob
import json
import os
import pwd
import re
import signal
import socket
import subprocess
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("ELEMTA_BIN_DIR") or os.path.join(ROOT, "build", "bin")
ELEMTACTL = os.path.join(BIN, "elemtactl")
STAT = os.path.join(BIN, "elemta-stat")


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (the kernel's choice)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(pred, timeout=10.0, interval=0.05, what="condition"):
    """Poll pred() until it is truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def deep_merge(base, extra):
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_merge(base[k], v)
        else:
            base[k] = v
    return base


_quiet_dns = None


def quiet_dns_address():
    """The resolver every instance uses unless its test names another: one
    NSD per test process serving an empty root zone, so every name is
    NXDOMAIN at once and no test depends on the machine's resolver (a
    CI machine may have none that answers)."""
    global _quiet_dns
    if _quiet_dns is None:
        from dnsserver import DnsServer
        _quiet_dns = DnsServer({".": ""})
        _quiet_dns.start()
        atexit.register(_quiet_dns.close)
    return _quiet_dns.address


class Elemta:
    """One Elemta instance: config, directories, supervisor process."""

    def __init__(self, workdir, overrides=None, policy=None, plugins=None):
        self.dir = str(workdir)
        self.port = free_port()
        self.cfg = {
            "server": {
                "hostname": "mx.test.example",
                "listen": [{"address": "127.0.0.1:%d" % self.port, "mode": "smtp"}],
                "workers": 2,
                "runtime_dir": "run",
                "max_recipients": 100,
                "shutdown_grace": "3s",
            },
            "policyd": {"workers": 2, "socket": "run/policyd.sock",
                        "timeout_ms": 1500, "fail_mode": "tempfail"},
            "counters": {"path": "counters", "map_size": "16MB"},
            "spool": {"path": "spool", "fsync": True},
            "log": {"level": "info"},
            # every lookup (client names at CONNECT, MX) goes to a local
            # NSD that knows no name, never to the machine's resolver
            "dns": {"resolvers": [quiet_dns_address()], "timeout": "2s"},
            # Mail for a domain no test routes waits in the queue (a next
            # hop that refuses connections: deferred), as the tests that
            # look at the queue expect; with MX delivery and a DNS server
            # that knows no name it would bounce 5.1.2 at once.  A test's
            # own delivery.routes replace this list (test_mx.py tests MX).
            "delivery": {"routes": [{"domains": ["*"],
                                     "next_hop": "smtp:[127.0.0.1]:1"}]},
        }
        if plugins is not None:
            self.cfg["plugins"] = plugins
        else:
            self.cfg["plugins"] = [{"name": "policy", "enabled": True,
                                    "config": policy or {}}]
        if overrides:
            deep_merge(self.cfg, overrides)
        self.config_path = os.path.join(self.dir, "elemta.yaml")
        self.log_path = os.path.join(self.dir, "elemta.log")
        self.proc = None
        self.write_config()

    # ---- configuration ----
    def write_config(self):
        # JSON is a subset of YAML 1.2 flow style, which libyaml reads.
        with open(self.config_path, "w") as f:
            json.dump(self.cfg, f, indent=2)
            f.write("\n")

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    # ---- lifecycle ----
    def ctl(self, *args, timeout=30):
        return subprocess.run([ELEMTACTL, "-c", self.config_path] + list(args),
                              capture_output=True, text=True, timeout=timeout)

    def start(self, wait=True):
        assert self.proc is None
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([ELEMTACTL, "-c", self.config_path, "start", "--foreground"],
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("elemtactl exited with %s:\n%s" % (self.proc.returncode, self.log()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.settimeout(3)
                    return s.recv(512).startswith(b"220")
            except OSError:
                return False
        wait_until(ready, timeout, what="SMTP greeting on port %d" % self.port)
        wait_until(lambda: len(self.worker_pids("policyd")) == self.cfg["policyd"]["workers"]
                   and len(self.worker_pids("smtpd")) == self.cfg["server"]["workers"],
                   timeout, what="all workers running")

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.ctl("stop", timeout=40)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
        self.logf.close()

    def kill_all(self):
        """Teardown safety net: no process of this instance survives."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        self.proc = None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # ---- supervisor status ----
    def status_rows(self):
        try:
            with open(self.path("run", "status")) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        rows = []
        for line in lines[1:]:
            parts = line.split()
            if len(parts) >= 4:
                rows.append({"kind": parts[0], "id": int(parts[1]), "pid": int(parts[2]),
                             "state": parts[3]})
        return rows

    def worker_pids(self, kind):
        pids = []
        for r in self.status_rows():
            if r["kind"].endswith(kind) and r["state"] == "running" and r["pid"] > 0:
                try:
                    os.kill(r["pid"], 0)
                    pids.append(r["pid"])
                except ProcessLookupError:
                    pass
        return pids

    # ---- spool ----
    def queued(self, sub="queue"):
        d = self.path("spool", sub)
        try:
            return sorted(os.listdir(d))
        except FileNotFoundError:
            return []

    def make_users(self, users):
        """auth.users_file "users" of `openssl passwd -6` hashes for the
        {name: password} given, readable by the policyd user only."""
        lines = []
        for name, password in users.items():
            r = subprocess.run(["openssl", "passwd", "-6", password],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
            lines.append("%s:%s\n" % (name, r.stdout.strip()))
        path = self.path("users")
        with open(path, "w") as f:
            f.writelines(lines)
        os.chmod(path, 0o600)
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self.cfg["policyd"].get("user", "elemta-policy"))
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def read_queued(self, qid, sub="queue"):
        """(message bytes, envelope) of spool/<sub>/<qid>; the envelope's
        recipients are a list under "recipients"."""
        msg, env = read_spool_file(self.path("spool", sub, qid))
        env["recipients"] = env.pop("recipient")
        return msg, env


def _open_tmp_fds(pid, tmp_dir):
    """(fd path, target) of what process pid has open in tmp_dir."""
    prefix = tmp_dir.rstrip("/") + "/"
    for fd in os.listdir("/proc/%d/fd" % pid):
        path = "/proc/%d/fd/%s" % (pid, fd)
        try:
            target = os.readlink(path)
        except OSError:
            continue
        if target.startswith(prefix):
            yield path, target


def open_tmp_files(pid, tmp_dir):
    """What process pid has open in tmp_dir (spool/tmp: a message being
    received is an O_TMPFILE inode there, "tmp/#<inode> (deleted)")."""
    return [target for _, target in _open_tmp_fds(pid, tmp_dir)]


def open_tmp_bytes(pid, tmp_dir):
    """The bytes of what process pid has open in tmp_dir (the messages it
    is receiving, which have no name)."""
    total = 0
    for path, _ in _open_tmp_fds(pid, tmp_dir):
        try:
            total += os.stat(path).st_size
        except OSError:
            pass
    return total


SPOOL_SIZE_LINE = len("size: ") + 20 + 1
ENVELOPE_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e"
                             "\u200f\u202a-\u202e\u2066-\u2069]")


def read_spool_file(path):
    """A spooled message (docs/internals.md, "Spool"): the message bytes,
    then the envelope, whose last line "size: " + 20 digits gives the
    message's length.  Returns (message, envelope) with the envelope's
    recipients as a list under "recipient"; ValueError when malformed."""
    with open(path, "rb") as f:
        data = f.read()
    tail = data[-SPOOL_SIZE_LINE:]
    if len(data) < SPOOL_SIZE_LINE or not tail.startswith(b"size: ") \
            or not tail.endswith(b"\n") or not tail[6:-1].isdigit():
        raise ValueError("%s: no size line at the end" % path)
    size = int(tail[6:-1])
    if size > len(data) - SPOOL_SIZE_LINE:
        raise ValueError("%s: size %d beyond the file" % (path, size))
    env = {"recipient": []}
    for line in data[size:].decode("utf-8").split("\n")[:-1]:
        # The format's promise (docs/internals.md): a value is one line to
        # any reader, so nothing splitlines() splits on, no C0/C1 control
        # and no bidi control.
        if len(line.splitlines()) > 1 or ENVELOPE_UNSAFE.search(line):
            raise ValueError("%s: envelope line %r has a control, "
                             "separator or bidi character" % (path, line))
        k, sep, v = line.partition(": ")
        if not sep and line.endswith(":"):
            k, v = line[:-1], ""
        elif not sep:
            raise ValueError("%s: bad envelope line %r" % (path, line))
        if k == "recipient":
            env["recipient"].append(v)
        elif k in env:
            raise ValueError("%s: envelope key %s twice" % (path, k))
        else:
            env[k] = v
    if int(env.get("size", -1)) != size:
        raise ValueError("%s: size line is not the envelope's last" % path)
    return data[:size], env


class SMTPConn:
    """A raw SMTP client: exact bytes out, parsed replies in."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=10):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""

    def reply(self):
        """One (possibly multi-line) reply: (code, text of last line, all lines)."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("connection closed; got %r" % (lines,))
                self.buf += data
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("utf-8", "replace"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), line[4:].decode("utf-8", "replace"), lines

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def closed(self, timeout=5):
        """True when the server has closed the connection (EOF)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                d = self.sock.recv(4096)
                if not d:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def maildir_files(e, domain, local):
    """The delivered messages of a maildir: route under e, sorted."""
    return sorted(glob.glob(e.path("mail", domain, local, "new", "*")))


def send_message(port, sender, rcpts, body, source=None, helo="client.test"):
    """One complete transaction; returns a list of (stage, code, text)."""
    c = SMTPConn(port, source=source)
    out = []
    try:
        code, text, _ = c.reply()
        out.append(("greeting", code, text))
        if code != 220:
            return out
        code, text, _ = c.cmd("EHLO " + helo)
        out.append(("ehlo", code, text))
        code, text, _ = c.cmd("MAIL FROM:<%s>" % sender)
        out.append(("mail", code, text))
        if code != 250:
            c.cmd("QUIT")
            return out
        ok = 0
        for r in rcpts:
            code, text, _ = c.cmd("RCPT TO:<%s>" % r)
            out.append(("rcpt", code, text))
            ok += code == 250
        if not ok:
            c.cmd("QUIT")
            return out
        code, text, _ = c.cmd("DATA")
        out.append(("data", code, text))
        if code != 354:
            return out
        c.send(body + b".\r\n")
        code, text, _ = c.reply()
        out.append(("eom", code, text))
        c.cmd("QUIT")
        return out
    finally:
        c.close()
