"""pytest fixtures: an Elemta instance per test, always torn down."""
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from elemta import Elemta  # noqa: E402


@pytest.fixture
def make_elemta():
    """Factory: make_elemta(policy={...}, overrides={...}) -> started Elemta.

    Instances live in a 0755 directory (not pytest's 0700 tmp_path): run as
    root, elemtactl drops the workers to unprivileged users who must be able
    to reach the config and their directories."""
    made = []
    base = tempfile.mkdtemp(prefix="elemta-it-")
    os.chmod(base, 0o755)

    def factory(start=True, sub=None, **kw):
        d = os.path.join(base, sub or "e%d" % len(made))
        os.mkdir(d, 0o755)
        e = Elemta(d, **kw)
        made.append(e)
        if start:
            e.start()
        return e

    yield factory
    for e in made:
        try:
            e.stop()
        finally:
            e.kill_all()
    reports = [e for e in made if any(m in e.log() for m in
                                      ("AddressSanitizer", "LeakSanitizer", "runtime error:"))]
    if reports:
        raise AssertionError("sanitizer report in %s:\n%s" % (reports[0].log_path,
                                                               reports[0].log()[-4000:]))
    shutil.rmtree(base, ignore_errors=True)
