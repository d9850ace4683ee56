"""pytest fixtures: an Elemta instance per test, always torn down."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from elemta import Elemta  # noqa: E402


@pytest.fixture
def make_elemta(tmp_path):
    """Factory: make_elemta(policy={...}, overrides={...}) -> started Elemta."""
    made = []

    def factory(start=True, sub=None, **kw):
        d = tmp_path / (sub or "e%d" % len(made))
        d.mkdir()
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
    for e in made:
        log = e.log()
        if "AddressSanitizer" in log or "runtime error:" in log:
            raise AssertionError("sanitizer report in %s:\n%s" % (e.log_path, log[-4000:]))
