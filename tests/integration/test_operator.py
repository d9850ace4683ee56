"""What an operator sees first (issue 16, item 9): every program answers
--version with Elemta's version, the plugin ABI and the libraries it runs
with; `elemta-stat list` prints keys as Prometheus writes them, in columns
as wide as their content.

The versions expected come from the sources (common/version.h,
include/elemta/plugin.h), so a release bump cannot leave a program behind.
"""
import json
import os
import re
import subprocess

from elemta import BIN, ROOT, STAT, send_message, wait_until

# The libraries each program runs with (and only those: smtpd must not
# name LMDB, which it does not link).
PROGRAMS = {
    "elemtactl": ["LMDB", "OpenSSL", "libevent", "libyaml"],
    "elemta-smtpd": ["OpenSSL", "libevent", "libyaml"],
    "elemta-policyd": ["LMDB", "OpenSSL", "libevent", "libyaml"],
    "elemta-stat": ["LMDB", "libyaml"],
    "elemta-metricsd": ["LMDB", "libyaml", "libmicrohttpd"],
    "elemta-queued": ["OpenSSL", "libevent", "libyaml"],
    "elemta-sendmail": ["libyaml"],
}
HEADINGS = ["KIND", "KEY", "COUNT", "LIMIT", "PERIOD_S", "FREES_IN_S"]


def source_define(path, name):
    text = open(os.path.join(ROOT, path)).read()
    m = re.search(r"^#define %s (\S+)" % name, text, re.M)
    assert m, "%s not in %s" % (name, path)
    return m.group(1).strip('"').rstrip("u")


def test_every_program_answers_version():
    version = source_define("common/version.h", "ELEMTA_VERSION")
    abi = "%s.%s" % (source_define("include/elemta/plugin.h", "ELEMTA_PLUGIN_ABI_VERSION"),
                     source_define("include/elemta/plugin.h", "ELEMTA_PLUGIN_ABI_MINOR"))
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    for prog, libs in PROGRAMS.items():
        r = subprocess.run([os.path.join(BIN, prog), "--version"],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, (prog, r)
        assert r.stderr == "", (prog, r.stderr)
        out = r.stdout.splitlines()
        assert out[0] == "%s (Elemta) %s" % (prog, version), (prog, out)
        assert out[1] == "plugin ABI %s" % abi, (prog, out)
        assert [l.split()[0] for l in out[2:]] == libs, (prog, out)
        for line in out[2:]:
            # the library's own version, a number, not a placeholder
            assert re.match(r"\S+ \d+\.\d+", line), (prog, line)


def test_pkg_config_file_carries_the_same_version():
    version = source_define("common/version.h", "ELEMTA_VERSION")
    pc = open(os.path.join(ROOT, "build", "elemta-plugin.pc")).read()
    assert re.search(r"^Version: %s$" % re.escape(version), pc, re.M), pc


def table_rows(text):
    """The table split into cells (keys hold no spaces here)."""
    rows = [line.split() for line in text.splitlines()]
    assert rows[0] == HEADINGS, rows[0]
    for r in rows:
        assert len(r) == len(HEADINGS), r
    return rows


def test_stat_list_prints_keys_as_prometheus_does_in_fitted_columns(make_elemta):
    e = make_elemta(policy={"max_messages_per_minute": 100})
    for i in range(2):
        stages = send_message(e.port, "a@example.org", ["b@example.com"],
                              b"Subject: %d\r\n\r\nhello\r\n" % i)
        assert stages[-1][1] == 250, stages

    def stat(*args):
        r = subprocess.run([STAT, "-c", e.config_path] + list(args),
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r
        return r.stdout

    def metrics():
        return {x["key"]: x["value"] for x in json.loads(stat("--json", "list"))["entries"]
                if x["kind"] == "metric"}

    # policyd flushes its metrics once a second: until two reads agree and
    # the labelled keys (the case that was escaped) are there.
    last = {}

    def settled():
        nonlocal last
        prev, last = last, metrics()
        return last == prev and any('"' in k for k in last)
    wait_until(settled, 20, interval=1.2, what="labelled metrics to settle")
    entries = json.loads(stat("--json", "list"))["entries"]
    keys = [x["key"] for x in entries]
    labelled = [k for k in keys if '"' in k]
    text = stat("list")
    assert "\\x22" not in text, text
    rows = table_rows(text)
    assert sorted(r[1] for r in rows[1:]) == sorted(keys)
    # A labelled key is printed exactly as the exposition writes it.
    prom = stat("--prometheus")
    for k in labelled:
        if any(line.startswith(k + " ") for line in prom.splitlines()):
            break
    else:
        raise AssertionError("no labelled key of list found in the exposition: %s"
                             % labelled)
    # Every column exactly as wide as its widest cell, two spaces apart:
    # text left-aligned, numbers right-aligned.
    width = [max(len(r[c]) for r in rows) for c in range(len(HEADINGS))]
    for line, r in zip(text.splitlines(), rows):
        want = "  ".join([r[0].ljust(width[0]), r[1].ljust(width[1])] +
                         [r[c].rjust(width[c]) for c in range(2, len(HEADINGS))])
        assert line == want, (line, want)
    for x, r in zip(sorted(entries, key=lambda x: x["key"]),
                    sorted(rows[1:], key=lambda r: r[1])):
        assert r[0] == x["kind"], (r, x)
        if x["kind"] == "metric":
            assert r[2] == str(x["value"]), (r, x)
