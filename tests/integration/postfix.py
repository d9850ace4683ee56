"""A private, throw-away Debian Postfix instance for interop tests.

Runs as root only (Postfix's master insists), in its own config, queue and
data directories, listening on a loopback port, delivering nothing
(default_transport = discard).  Its log goes to a file through postlogd, so
no syslog daemon is needed.
"""
import os
import shutil
import subprocess
import time

from elemta import free_port, wait_until

POSTFIX = "/usr/sbin/postfix"


def available():
    return os.geteuid() == 0 and os.path.exists(POSTFIX)


class Postfix:
    def __init__(self, base, restrictions, extra=None):
        self.dir = os.path.join(str(base), "postfix")
        self.conf = os.path.join(self.dir, "conf")
        self.port = free_port()
        for d in ("conf", "queue", "data"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        os.chmod(self.dir, 0o755)
        shutil.chown(os.path.join(self.dir, "data"), "postfix")
        with open("/etc/postfix/master.cf") as f:
            master = f.read()
        # Our own non-chrooted smtpd on the test port instead of port 25.
        lines = []
        for line in master.splitlines():
            if line.startswith("smtp ") and "smtpd" in line:
                line = "127.0.0.1:%d inet n - n - - smtpd" % self.port
            lines.append(line)
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write("\n".join(lines) + "\n")
        main = {
            "compatibility_level": "3.6",
            "queue_directory": os.path.join(self.dir, "queue"),
            "data_directory": os.path.join(self.dir, "data"),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "postfix.test.example",
            "mydestination": "",
            "relay_domains": "",
            "mynetworks": "127.0.0.0/8",
            "smtpd_recipient_restrictions": restrictions,
            "default_transport": "discard",
            "maillog_file": os.path.join(self.dir, "maillog"),
            "maillog_file_prefixes": self.dir,
            "smtpd_client_connection_rate_limit": "0",
            "anvil_rate_time_unit": "60s",
        }
        if extra:
            main.update(extra)
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            for k, v in main.items():
                f.write("%s = %s\n" % (k, v))

    def start(self):
        r = subprocess.run([POSTFIX, "-c", self.conf, "start"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (r.stdout, r.stderr, self.log())
        import socket

        def up():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.settimeout(5)
                    return s.recv(256).startswith(b"220")
            except OSError:
                return False
        wait_until(up, 20, what="postfix smtpd on %d" % self.port)
        return self

    def stop(self):
        subprocess.run([POSTFIX, "-c", self.conf, "stop"], capture_output=True,
                       timeout=60)
        # master exits asynchronously: wait until the port is free.
        deadline = time.monotonic() + 15
        import socket
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                time.sleep(0.2)
            except OSError:
                break

    def log(self):
        try:
            with open(os.path.join(self.dir, "maillog")) as f:
                return f.read()
        except FileNotFoundError:
            return ""
