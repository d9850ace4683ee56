"""elemta-policyd and elemta-metricsd run alone with --bind (no
elemtactl): they open their listeners from the parsed configuration
(common/listen.c, the same code elemtactl uses) - TCP and Unix."""
import os
import socket
import subprocess
import urllib.request

import pytest

from elemta import BIN, free_port, wait_until

POLICYD = os.path.join(BIN, "elemta-policyd")
METRICSD = os.path.join(BIN, "elemta-metricsd")


def postfix_request(connect, recipient):
    """One Postfix policy request; the action line of the reply."""
    s = connect()
    try:
        s.settimeout(5)
        s.sendall(("request=smtpd_access_policy\nprotocol_state=RCPT\n"
                   "client_address=127.0.0.9\nsender=a@b.example\n"
                   "recipient=%s\n\n" % recipient).encode())
        reply = b""
        while not reply.endswith(b"\n\n"):
            chunk = s.recv(4096)
            assert chunk, "connection closed after %r" % reply
            reply += chunk
        return reply.decode().split("\n")[0]
    finally:
        s.close()


@pytest.fixture
def workdir(tmp_path):
    for d in ("run", "counters", "spool"):
        (tmp_path / d).mkdir()
    return tmp_path


def write_config(workdir, postfix_listen, metrics_listen=""):
    path = workdir / "elemta.yaml"
    path.write_text(
        '{"server": {"listen": [{"address": "127.0.0.1:%d", "mode": "smtp"}],'
        ' "runtime_dir": "run"},'
        ' "policyd": {"socket": "run/policyd.sock", "postfix_listen": "%s"},'
        ' "counters": {"path": "counters", "map_size": "16MB"},'
        ' "spool": {"path": "spool"}, "metrics": {"listen": "%s"},'
        ' "plugins": [{"name": "policy", "enabled": true, "config":'
        ' {"blocked_recipient_domains": ["blocked.example"]}}]}\n'
        % (free_port(), postfix_listen, metrics_listen))
    return str(path)


def run_policyd(config, connect):
    p = subprocess.Popen([POLICYD, "-c", config, "--bind"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)

    def up():
        assert p.poll() is None, p.stdout.read().decode()
        try:
            connect().close()
            return True
        except OSError:
            return False
    wait_until(up, 10, what="policyd --bind listening")
    return p


def stop(p):
    p.terminate()
    out = p.communicate(timeout=10)[0].decode()
    assert p.returncode == 0, out
    return out


def test_policyd_bind_tcp_postfix_listener(workdir):
    port = free_port()
    config = write_config(workdir, "127.0.0.1:%d" % port)

    def connect():
        return socket.create_connection(("127.0.0.1", port), timeout=2)
    p = run_policyd(config, connect)
    try:
        assert postfix_request(connect, "x@blocked.example").startswith("action=550 5.7.1 ")
        assert postfix_request(connect, "x@fine.example") == "action=DUNNO"
        # the policyd.socket (smtpd's wire protocol) is there too, mode 0660
        st = os.stat(workdir / "run" / "policyd.sock")
        assert oct(st.st_mode & 0o777) == "0o660"
        # a second instance finds the sockets taken: one clear line, exit
        # 1, and the first instance keeps its policyd.socket (same file,
        # still answering)
        sock = str(workdir / "run" / "policyd.sock")
        r = subprocess.run([POLICYD, "-c", config, "--bind"], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode != 0
        assert "cannot listen on" in r.stderr + r.stdout
        assert "in use by a running process" in r.stderr + r.stdout
        assert os.stat(sock).st_ino == st.st_ino
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        u.connect(sock)
        u.close()
        assert postfix_request(connect, "x@fine.example") == "action=DUNNO"
    finally:
        stop(p)


def test_policyd_bind_unix_postfix_listener(workdir):
    config = write_config(workdir, "unix:pf/policy.sock")
    os.mkdir(workdir / "pf")
    path = str(workdir / "pf" / "policy.sock")   # relative to the config's directory

    def connect():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError:
            s.close()
            raise
        return s
    # a stale socket file from a crash is replaced
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()
    p = run_policyd(config, connect)
    try:
        assert oct(os.stat(path).st_mode & 0o777) == "0o666"
        assert postfix_request(connect, "x@blocked.example").startswith("action=550 5.7.1 ")
        assert postfix_request(connect, "x@fine.example") == "action=DUNNO"
    finally:
        stop(p)
    assert not os.path.exists(path), "the socket is removed at exit"


def test_metricsd_bind(workdir):
    port, pf_port = free_port(), free_port()
    config = write_config(workdir, "127.0.0.1:%d" % pf_port, "127.0.0.1:%d" % port)

    def connect():
        return socket.create_connection(("127.0.0.1", pf_port), timeout=2)
    # policyd creates the counter table and counts one refusal in it
    pd = run_policyd(config, connect)
    try:
        assert postfix_request(connect, "x@blocked.example").startswith("action=550 ")
    finally:
        stop(pd)
    p = subprocess.Popen([METRICSD, "-c", config, "--bind"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    url = "http://127.0.0.1:%d/metrics" % port

    def up():
        assert p.poll() is None, p.stdout.read().decode()
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return True
        except OSError:
            return False
    try:
        wait_until(up, 10, what="metricsd --bind serving")
        with urllib.request.urlopen(url, timeout=5) as r:
            assert r.status == 200
            body = r.read().decode()
        assert "\nelemta_counters_up 1\n" in body
        assert ('elemta_policy_decisions_total{phase="RCPT",action="reject",'
                'plugin="policy"} 1\n') in body
    finally:
        stop(p)
