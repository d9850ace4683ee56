"""The configuration reference cannot fall behind the code (issue 16,
item 7): every setting of common/config.c's table, as `elemtactl
check-config --settings` prints it, is documented both in the README's
configuration table and in elemta.yaml(5), and neither documents a
setting the table does not have.  A failure names the key and the file.
"""
import os
import re
import subprocess

from elemta import ELEMTACTL, ROOT

README = os.path.join(ROOT, "README.md")
MANPAGE = os.path.join(ROOT, "docs", "man", "elemta.yaml.5.scd")


def table_settings():
    r = subprocess.run([ELEMTACTL, "check-config", "--settings"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r
    names = r.stdout.split()
    # the table itself, not an empty or truncated listing
    assert "server.listen" in names and "plugins" in names, names
    assert len(names) == len(set(names)) > 30, names
    return names


def readme_settings():
    """The keys in the first column of the table under "## Configuration
    reference" (a row may name several: `tls.min_version`, `tls.ciphers`)."""
    text = open(README).read()
    m = re.search(r"^## Configuration reference\n(.*?)^#", text, re.M | re.S)
    assert m, "README.md has no '## Configuration reference' section"
    rows = [l for l in m.group(1).splitlines() if l.startswith("|")]
    assert len(rows) > 2, "no table in README.md's configuration reference"
    keys = []
    for row in rows[2:]:                      # after the heading and ---
        keys += re.findall(r"`([^`]+)`", row.split("|")[1])
    return keys


def manpage_settings():
    """The terms of elemta.yaml(5) that name a setting: *section.key* (or
    *plugins*) opening a definition line."""
    keys = []
    for line in open(MANPAGE):
        m = re.match(r"\*([a-z0-9_]+(?:\.[a-z0-9_]+)*)\* \(", line)
        if m and ("." in m.group(1) or m.group(1) in ("plugins", "milters")):
            keys.append(m.group(1))
    return keys


def test_every_setting_is_documented_in_the_readme_and_the_manual():
    names = table_settings()
    for where, documented in (("README.md configuration table", readme_settings()),
                              ("docs/man/elemta.yaml.5.scd", manpage_settings())):
        missing = [n for n in names if n not in documented]
        assert not missing, "%s does not document %s" % (where, ", ".join(missing))
        stale = [k for k in documented if k not in names]
        assert not stale, "%s documents unknown settings %s" % (where, ", ".join(stale))
