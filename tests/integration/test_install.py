"""`make install DESTDIR=... PREFIX=/usr`: the installed tree, the man pages
(every one renders with `man -l` without a groff warning), the service
unit, the sample configuration (kept when the operator has one, and
valid but for the TLS files it names) and the man page's coverage of
every configuration key."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from elemta import ELEMTACTL, ROOT

# The Makefile to use (the tree's own unless told otherwise).
MAKEFILE = os.environ.get("ELEMTA_MAKEFILE", os.path.join(ROOT, "Makefile"))

EXPECTED = {
    "usr/sbin/elemtactl": 0o755,
    "usr/sbin/elemta-stat": 0o755,
    "usr/sbin/elemta-sendmail": 0o755,
    "usr/libexec/elemta/elemta-smtpd": 0o755,
    "usr/libexec/elemta/elemta-policyd": 0o755,
    "usr/libexec/elemta/elemta-metricsd": 0o755,
    "usr/libexec/elemta/elemta-queued": 0o755,
    "usr/include/elemta/plugin.h": 0o644,
    "usr/lib/pkgconfig/elemta-plugin.pc": 0o644,
    "usr/share/man/man8/elemtactl.8": 0o644,
    "usr/share/man/man8/elemta-stat.8": 0o644,
    "usr/share/man/man1/elemta-sendmail.1": 0o644,
    "usr/share/man/man5/elemta.yaml.5": 0o644,
    "usr/share/man/man3/elemta-plugin.3": 0o644,
    "usr/lib/systemd/system/elemta.service": 0o644,
    "etc/elemta/elemta.yaml": 0o644,
}


def make_install(destdir):
    r = subprocess.run(["make", "-s", "-f", MAKEFILE, "-C", ROOT, "install",
                        "DESTDIR=" + destdir, "PREFIX=/usr"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


@pytest.fixture(scope="module")
def dest():
    # 0755 all the way: check-config as root loads the plugins as the
    # unprivileged policyd user, who must reach the installed config.
    d = tempfile.mkdtemp(prefix="elemta-install-")
    os.chmod(d, 0o755)
    try:
        make_install(d)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_tree(dest):
    missing = [p for p in EXPECTED if not os.path.isfile(os.path.join(dest, p))]
    assert not missing, missing
    for p, mode in EXPECTED.items():
        got = os.stat(os.path.join(dest, p)).st_mode & 0o777
        assert got == mode, "%s: mode %o, want %o" % (p, got, mode)
    with open(os.path.join(dest, "usr/lib/pkgconfig/elemta-plugin.pc")) as f:
        pc = f.read()
    assert "prefix=/usr\n" in pc and "includedir=/usr/include\n" in pc, pc
    with open(os.path.join(ROOT, "include/elemta/plugin.h"), "rb") as a, \
            open(os.path.join(dest, "usr/include/elemta/plugin.h"), "rb") as b:
        assert a.read() == b.read()
    with open(os.path.join(ROOT, "config/elemta.yaml.dist"), "rb") as a, \
            open(os.path.join(dest, "etc/elemta/elemta.yaml"), "rb") as b:
        assert a.read() == b.read()
    # Nothing lands outside usr/ and etc/ (no build paths, no /var).
    assert sorted(os.listdir(dest)) == ["etc", "usr"]


def test_man_pages_render_without_warnings(dest):
    pages = [p for p in EXPECTED if "/man/" in p]
    for p in pages:
        path = os.path.join(dest, p)
        r = subprocess.run(["man", "-l", "--warnings=w", path], capture_output=True,
                           text=True, timeout=60, env=dict(os.environ, MANWIDTH="80"))
        assert r.returncode == 0, (p, r.stderr)
        assert r.stderr == "", "%s: %s" % (p, r.stderr)
        name = os.path.basename(p)
        assert "NAME" in r.stdout and name.rsplit(".", 1)[0] in r.stdout, p
        assert "SEE ALSO" in r.stdout, p


def test_every_config_key_documented():
    """elemta.yaml(5) names every setting of config.c's table and every
    key of the built-in policy plugin."""
    with open(os.path.join(ROOT, "common/config.c")) as f:
        src = f.read()
    table = src[src.index("config_settings[] = {"):]
    table = table[:table.index("\n};")]
    keys = re.findall(r'\.name = "([^"]+)"', table)
    assert len(keys) > 30
    with open(os.path.join(ROOT, "policyd/policies/policy.c")) as f:
        pol = f.read()
    known = pol[pol.index("policy_keys[] = {"):]
    pkeys = re.findall(r'"([a-z_]+)"', known[:known.index("};")])
    assert "blocked_recipient_domains" in pkeys and "rate_limits" in pkeys
    with open(os.path.join(ROOT, "docs/man/elemta.yaml.5.scd")) as f:
        page = f.read()
    undocumented = [k for k in keys + pkeys if "*%s*" % k not in page]
    assert not undocumented, undocumented


def test_service_unit(dest):
    with open(os.path.join(dest, "usr/lib/systemd/system/elemta.service")) as f:
        unit = f.read()
    for line in ("Type=notify", "ExecStart=/usr/sbin/elemtactl -c /etc/elemta/elemta.yaml "
                 "start --foreground", "ExecReload=/usr/sbin/elemtactl",
                 "ExecStop=/usr/sbin/elemtactl", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "PrivateTmp=yes", "ProtectHome=yes",
                 "RuntimeDirectory=elemta", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"):
        assert line in unit, line
    caps = re.search(r"^CapabilityBoundingSet=(.*)$", unit, re.M).group(1).split()
    assert {"CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"} <= set(caps)
    if shutil.which("systemd-analyze") is None:
        return
    # Verify a copy that points at this tree's binary (the unit itself
    # names /usr/sbin, not installed on a build machine).
    d = tempfile.mkdtemp(prefix="elemta-unit-")
    try:
        copy = os.path.join(d, "elemta.service")
        with open(copy, "w") as f:
            f.write(unit.replace("/usr/sbin/elemtactl", ELEMTACTL))
        r = subprocess.run(["systemd-analyze", "verify", copy], capture_output=True,
                           text=True, timeout=60)
        problems = [l for l in (r.stdout + r.stderr).splitlines()
                    if l.strip() and "Command 'man " not in l]
        assert not problems, problems
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_sample_config_valid_but_tls_files(dest):
    cfg = os.path.join(dest, "etc/elemta/elemta.yaml")
    r = subprocess.run([ELEMTACTL, "-c", cfg, "check-config"], capture_output=True,
                       text=True, timeout=60)
    problems = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
    assert problems, "check-config should miss the TLS files"
    for line in problems:
        assert "key 'tls.certificate'" in line or "key 'tls.key'" in line, line


def test_reinstall_keeps_the_operators_config(dest):
    cfg = os.path.join(dest, "etc/elemta/elemta.yaml")
    with open(cfg, "a") as f:
        f.write("# edited by the operator\n")
    make_install(dest)
    with open(cfg) as f:
        assert f.read().endswith("# edited by the operator\n")


def test_sendmail_links_never_replace_another_mta():
    """scripts/sendmail-links (make install SENDMAIL_ALTERNATIVES=yes):
    links into a free staging tree, refuses (exit 1, file untouched, says
    what it would do) where another MTA's sendmail is."""
    script = os.path.join(ROOT, "scripts", "sendmail-links")
    target = "/usr/sbin/elemta-sendmail"
    d = tempfile.mkdtemp(prefix="elemta-links-")
    try:
        r = subprocess.run(["sh", script, d, target], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        assert os.readlink(os.path.join(d, "usr/sbin/sendmail")) == target
        assert os.readlink(os.path.join(d, "usr/bin/mailq")) == target
        # Again: already ours, nothing to do.
        r = subprocess.run(["sh", script, d, target], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        os.unlink(os.path.join(d, "usr/sbin/sendmail"))
        with open(os.path.join(d, "usr/sbin/sendmail"), "w") as f:
            f.write("postfix's\n")
        r = subprocess.run(["sh", script, d, target], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 1
        assert "not replacing it" in r.stderr and "ln -sf" in r.stderr
        with open(os.path.join(d, "usr/sbin/sendmail")) as f:
            assert f.read() == "postfix's\n"
    finally:
        shutil.rmtree(d, ignore_errors=True)
