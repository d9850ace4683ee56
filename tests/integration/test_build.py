"""The build has no side effects (issue 16): `make` and `make install`
never run scripts/setup's installing part (no apt-get, no useradd), a
missing dependency stops them with one line naming scripts/setup before
anything is compiled, and `make run` and `make check` (every part of it)
still set up what they need first."""
import os
import shutil
import stat
import subprocess
import tempfile

import pytest

from elemta import ROOT


def make(*args, env=None):
    """make as a user runs it: not a sub-make of the `make check` that may
    be running this test (its MAKELEVEL would make errors read "make[1]:"
    and its MAKEFLAGS hand over job-server descriptors we do not have)."""
    env = dict(os.environ if env is None else env)
    for v in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(v, None)
    return subprocess.run(["make", "--no-print-directory", "-C", ROOT] +
                          list(args), capture_output=True, text=True,
                          timeout=300, env=env)


def dry_run(*goals):
    """The commands `make -n GOALS` would run, against a build directory
    that does not exist (so every step is listed)."""
    d = tempfile.mkdtemp(prefix="elemta-make-n-")
    try:
        r = make("-n", "B=" + os.path.join(d, "b"), *goals)
        assert r.returncode == 0, r.stderr[-2000:]
        return r.stdout
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("goal", ["all", "install"])
def test_build_and_install_set_nothing_up(goal):
    out = dry_run(goal)
    assert " -c -o " in out, out[:2000]          # it does list the build
    assert "scripts/setup" not in out, goal      # not even in a message
    assert "apt-get" not in out and "useradd" not in out, goal


@pytest.mark.parametrize("goal,setup", [
    ("run", "sh scripts/setup\n"),
    ("check", "sh scripts/setup --test\n"),
    ("check-fast", "sh scripts/setup --test\n"),
    ("unit", "sh scripts/setup --test\n"),
    ("integration", "sh scripts/setup --test\n"),
    ("check-asan", "sh scripts/setup --test\n"),
    ("fuzz-ci", "sh scripts/setup --test\n"),
    ("bench-quick", "sh scripts/setup --test\n"),
])
def test_run_and_check_set_up_first(goal, setup):
    out = dry_run(goal)
    runs = [l for l in out.splitlines() if l.startswith("sh scripts/setup")]
    assert runs == [setup.strip()], out[:3000]    # once, the right set
    # before anything is compiled
    first = out.index(setup)
    assert " -c -o " not in out[:first], out[:first]


def test_missing_dependency_is_one_line_naming_setup():
    """A pkg-config that knows no lmdb: `make` stops at once."""
    d = tempfile.mkdtemp(prefix="elemta-nodeps-")
    try:
        fake = os.path.join(d, "pkg-config")
        real = shutil.which("pkg-config")
        assert real is not None
        with open(fake, "w") as f:
            f.write('#!/bin/sh\nfor a in "$@"; do [ "$a" = lmdb ] && exit 1; '
                    'done\nexec %s "$@"\n' % real)
        os.chmod(fake, stat.S_IRWXU)
        env = dict(os.environ, PATH=d + os.pathsep + os.environ["PATH"])
        r = make("B=" + os.path.join(d, "b"), "all", env=env)
        assert r.returncode != 0
        lines = [l for l in r.stderr.splitlines() if not l.startswith("make: ***")]
        assert len(lines) == 1, r.stderr
        assert "lmdb" in lines[0] and "scripts/setup" in lines[0], lines
        assert not os.path.exists(os.path.join(d, "b", "obj")), "compiled anyway"
    finally:
        shutil.rmtree(d, ignore_errors=True)
