"""What each program is linked with (issue 16): the internet-facing
elemta-smtpd holds no counter store (no LMDB, no Redis client) and no MIME
parser, neither as code (`nm`: its own and its imported symbols) nor as a
shared library it loads (`readelf -d`: NEEDED).  The other programs are
checked against what they must not need either, and the policyd binary,
which does hold the counter store, proves that the checks see it."""
import os
import re
import shutil
import subprocess

import pytest

from elemta import BIN

pytestmark = pytest.mark.skipif(
    shutil.which("nm") is None or shutil.which("readelf") is None,
    reason="needs nm and readelf (binutils)")

# Symbols of the counter store and the MIME parser, as nm prints them.
STORE_SYMBOLS = re.compile(r"\b(mdb_\w+|counter_\w+|redis\w*|g_mime_\w+)\b",
                           re.IGNORECASE)

# Per program: the shared libraries it must not load.
FORBIDDEN = {
    "elemta-smtpd": ["liblmdb", "libhiredis", "libgmime", "libjson-c",
                     "libmicrohttpd", "libcrypt.so", "libunbound", "libldns"],
    "elemta-policyd": ["libmicrohttpd", "libjson-c", "libevent_openssl",
                       "libssl"],
    "elemta-metricsd": ["libgmime", "libevent", "libssl", "libjson-c",
                        "libunbound", "libldns"],
    "elemta-stat": ["libgmime", "libevent", "libmicrohttpd", "libssl",
                    "libunbound", "libldns"],
    # Run by every local user: the config loader and nothing of a server.
    "elemta-sendmail": ["liblmdb", "libhiredis", "libgmime", "libjson-c",
                        "libmicrohttpd", "libevent", "libssl", "libcrypto",
                        "libcrypt.so", "libunbound", "libldns"],
    "elemta-queued": ["liblmdb", "libhiredis", "libgmime", "libjson-c",
                      "libmicrohttpd", "libcrypt.so"],
}


def symbols(program):
    """The binary's external symbols: those it defines (a module's API;
    file-local names such as config.c's table of counters.backend values
    are not code of that module) and those it imports from libraries."""
    path = os.path.join(BIN, program)
    names = set()
    for args in (["nm", "-g", path], ["nm", "-D", path]):
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        names.update(line.split()[-1] for line in r.stdout.splitlines()
                     if line.strip())
    return names


def needed(program):
    """The DT_NEEDED entries of the binary."""
    r = subprocess.run(["readelf", "-d", os.path.join(BIN, program)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", r.stdout)


def test_smtpd_has_no_counter_store():
    found = sorted(s for s in symbols("elemta-smtpd") if STORE_SYMBOLS.search(s))
    assert found == [], "elemta-smtpd holds counter-store code: %s" % found[:20]
    # the issue's own check: `nm elemta-smtpd | grep -c mdb_` is 0
    r = subprocess.run(["nm", os.path.join(BIN, "elemta-smtpd")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.count("mdb_") == 0


@pytest.mark.parametrize("program", sorted(FORBIDDEN))
def test_no_library_beyond_its_own(program):
    libs = needed(program)
    assert libs, "%s: no NEEDED entries read" % program
    bad = [lib for lib in libs for f in FORBIDDEN[program] if lib.startswith(f)]
    assert bad == [], "%s loads %s (NEEDED: %s)" % (program, bad, libs)


def test_checks_see_the_counter_store_where_it_is():
    """The same checks on elemta-policyd, which owns the counter table:
    they must find it, or the smtpd tests above prove nothing."""
    assert [s for s in symbols("elemta-policyd") if s.startswith("mdb_")]
    assert any(STORE_SYMBOLS.search(s) for s in symbols("elemta-policyd"))
    libs = needed("elemta-policyd")
    assert any(lib.startswith("liblmdb") for lib in libs), libs
    assert any(lib.startswith("libhiredis") for lib in libs), libs


# The resolver (common/dns.c on libunbound, answers parsed by libldns).
DNS_SYMBOLS = re.compile(r"^(dns_(resolver|query|options)\w*|ub_\w+|ldns_\w+)$")


def test_smtpd_has_no_resolver():
    """smtpd holds no resolver (dns.h): neither dns.c's code nor
    libunbound's or libldns's symbols."""
    found = sorted(s for s in symbols("elemta-smtpd") if DNS_SYMBOLS.match(s))
    assert found == [], "elemta-smtpd holds resolver code: %s" % found[:20]
    # elemta-queued resolves MX hosts: the same check finds the resolver
    queued = symbols("elemta-queued")
    assert "dns_query" in queued and "ub_resolve_event" in queued
    assert any(DNS_SYMBOLS.match(s) for s in queued)
    assert any(lib.startswith("libunbound") for lib in needed("elemta-queued"))
