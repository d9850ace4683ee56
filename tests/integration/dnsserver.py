"""A real authoritative DNS server for the tests: NSD on 127.0.0.1 and a
free port, serving zone texts the test passes.

    srv = DnsServer({"test": "good A 127.0.0.10\\n",
                     "0.0.127.in-addr.arpa": "10 PTR good.test.\\n"})
    srv.start()          # waits until NSD answers
    srv.address          # "127.0.0.1@PORT", for dns.resolvers
    srv.stop(); srv.start()   # the same zones, the same port
    srv.close()          # stop and remove the directory

Each zone text is records relative to the zone ($ORIGIN is the zone, TTL
300 unless a record says otherwise); the SOA (negative TTL 60) and NS
records are added.  zone_files={zone: path} serves ready zone files as
they are (test_dane.py's signed zone).  scripts/bench uses it too.  NSD runs in the foreground as the invoking user
(no chroot, no privilege drop); every wait is bounded.

Also DeadServer: a UDP (and TCP) socket that takes queries and never
answers - a resolver that times out.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

NSD = shutil.which("nsd") or "/usr/sbin/nsd"


def free_udp_tcp_port(host="127.0.0.1"):
    """A port free for both UDP and TCP a moment ago."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((host, 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind((host, port))
                except OSError:
                    continue
                return port
    raise AssertionError("no free port")


class DnsServer:
    """NSD serving the given {zone: records} on 127.0.0.1:port."""

    def __init__(self, zones, port=None, zone_files=None):
        self.zones = dict(zones)
        # {zone: path}: zone files served as they are (a signed zone)
        self.zone_files = dict(zone_files or {})
        self.port = port or free_udp_tcp_port()
        self.address = "127.0.0.1@%d" % self.port
        self.dir = tempfile.mkdtemp(prefix="elemta-nsd-")
        os.chmod(self.dir, 0o755)
        self.proc = None
        self._write()

    def _write(self):
        conf = ["server:",
                '  ip-address: 127.0.0.1', "  port: %d" % self.port,
                '  username: ""', '  chroot: ""',
                '  zonesdir: "%s"' % self.dir,
                '  pidfile: "%s/nsd.pid"' % self.dir,
                '  database: ""',
                '  zonelistfile: "%s/zone.list"' % self.dir,
                '  xfrdfile: "%s/xfrd.state"' % self.dir,
                '  logfile: "%s/nsd.log"' % self.dir,
                "  server-count: 1", "  do-ip6: no", "  verbosity: 1",
                "remote-control:", "  control-enable: no"]
        for zone, path in sorted(self.zone_files.items()):
            conf += ["zone:", "  name: %s" % zone, '  zonefile: "%s"' % path]
        for i, (zone, records) in enumerate(sorted(self.zones.items())):
            name = "z%d.zone" % i
            origin = "." if zone == "." else zone + "."   # "." : the root
            ns = "ns." + ("" if zone == "." else origin)
            with open(os.path.join(self.dir, name), "w") as f:
                f.write("$ORIGIN %s\n$TTL 300\n"
                        "@ IN SOA %s hostmaster.%s 1 3600 600 86400 60\n"
                        "@ IN NS %s\n%s\n" % (origin, ns, ns, ns, records))
            conf += ["zone:", "  name: %s" % zone, "  zonefile: %s" % name]
        with open(os.path.join(self.dir, "nsd.conf"), "w") as f:
            f.write("\n".join(conf) + "\n")

    def _answers(self):
        """NSD answers a SOA query for the first zone (UDP)."""
        zone = sorted(list(self.zones) + list(self.zone_files))[0]
        q = b"\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        for label in [label for label in zone.split(".") if label]:
            q += bytes([len(label)]) + label.encode()
        q += b"\x00\x00\x06\x00\x01"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(q, ("127.0.0.1", self.port))
                data = s.recv(512)
            except OSError:
                return False
        return data[:2] == b"\x12\x34" and (data[3] & 0x0f) == 0

    def start(self, timeout=10):
        assert self.proc is None
        self.proc = subprocess.Popen([NSD, "-d", "-c", os.path.join(self.dir, "nsd.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.proc.poll() is not None:
                raise AssertionError("nsd exited with %s: %s" % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("nsd does not answer: %s" % self.log())
            time.sleep(0.05)
        return self

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(os.path.join(self.dir, "nsd.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""


class DeadServer:
    """A 'DNS server' that takes every query and never answers."""

    def __init__(self):
        self.port = free_udp_tcp_port()
        self.address = "127.0.0.1@%d" % self.port
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(16)

    def close(self):
        self.udp.close()
        self.tcp.close()
