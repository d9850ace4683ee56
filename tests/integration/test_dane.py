"""DANE (RFC 7672, issue 18): delivery.tls.mode dane with a zone signed for
the test (ldns-keygen, ldns-signzone), served by NSD (dnsserver.py), its
DS record as dns.trust_anchor_file, and a STARTTLS sink whose certificate
the TLSA records match or not.

A matching TLSA 3 1 1 record (DANE-EE) -> delivered over TLS; a
2 0 1 record (DANE-TA) naming the CA that issued the certificate, whose
name is the MX host's -> delivered over TLS; a TLSA record that does not
match -> deferred, never sent in plaintext; an MX in a zone that is not
signed (insecure) -> as `may` (delivered, TLS when offered).
"""
import hashlib
import json
import os
import subprocess
import tempfile

import pytest

from dnsserver import DnsServer
from elemta import send_message, wait_until
from test_delivery import BODY, TLSSink, sent_ok, spool_empty

pytest.importorskip("aiosmtpd.controller")


def spki_sha256(cert):
    """The SHA-256 of the certificate's SubjectPublicKeyInfo (TLSA x 1 1)."""
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"],
                         capture_output=True, check=True, timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"],
                         input=pub, capture_output=True, check=True,
                         timeout=30).stdout
    return hashlib.sha256(der).hexdigest()


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def make_ca_chain(d, host):
    """A CA and a server certificate it issued for host: (chain file with
    both, key file, CA certificate file)."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "2", "-subj", "/CN=Elemta test CA", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem",
            "-out", "srv.csr", "-subj", "/CN=" + host, cwd=d)
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=DNS:%s\n" % host)
    openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "ext", "-out", "srv.pem", cwd=d)
    with open(os.path.join(d, "chain.pem"), "w") as f:
        for name in ("srv.pem", "ca.pem"):
            with open(os.path.join(d, name)) as c:
                f.write(c.read())
    for name in ("chain.pem", "srv.pem", "ca.pem"):
        os.chmod(os.path.join(d, name), 0o644)
    return (os.path.join(d, "chain.pem"), os.path.join(d, "key.pem"),
            os.path.join(d, "ca.pem"))


def cert_sha256(cert):
    """The SHA-256 of the whole certificate, DER (TLSA x 0 1)."""
    der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"],
                         capture_output=True, check=True, timeout=30).stdout
    return hashlib.sha256(der).hexdigest()


def signed_zone(d, name, records):
    """records signed with a new key: (zone file path, DS file path)."""
    key = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", name],
                         cwd=d, capture_output=True, text=True, check=True,
                         timeout=60).stdout.strip()
    path = os.path.join(d, name + ".zone")
    with open(path, "w") as f:
        f.write("$ORIGIN %s.\n$TTL 60\n"
                "@ IN SOA ns hostmaster 1 3600 600 86400 60\n"
                "@ IN NS ns\nns IN A 127.0.0.1\n" % name)
        f.write("\n".join(records) + "\n")
    subprocess.run(["ldns-signzone", "-o", name, path, key], cwd=d,
                   capture_output=True, check=True, timeout=60)
    for p in (path + ".signed", os.path.join(d, key + ".ds")):
        os.chmod(p, 0o644)
    return path + ".signed", os.path.join(d, key + ".ds")


@pytest.fixture(scope="module")
def dane_world():
    """The sink (STARTTLS, its own certificate), the signed zone dane.test
    (good: a matching TLSA, bad: a wrong one) and the unsigned
    insecure.test, all MX hosts on 127.0.0.1 and the sink's port."""
    d = tempfile.mkdtemp(prefix="elemta-dane-")
    os.chmod(d, 0o755)
    chain, key, ca = make_ca_chain(d, "mxta.dane.test")
    sink = TLSSink(chain, key).start()
    h = spki_sha256(os.path.join(d, "srv.pem"))
    wrong = hashlib.sha256(b"not the key").hexdigest()
    zone, ds = signed_zone(d, "dane.test", [
        "good MX 10 mxgood", "mxgood A 127.0.0.1",
        "_%d._tcp.mxgood TLSA 3 1 1 %s" % (sink.port, h),
        "ta MX 10 mxta", "mxta A 127.0.0.1",
        "_%d._tcp.mxta TLSA 2 0 1 %s" % (sink.port, cert_sha256(ca)),
        "bad MX 10 mxbad", "mxbad A 127.0.0.1",
        "_%d._tcp.mxbad TLSA 3 1 1 %s" % (sink.port, wrong),
    ])
    dns = DnsServer({"insecure.test": "@ MX 10 mx\nmx A 127.0.0.1\n"},
                    zone_files={"dane.test": zone}).start()
    yield sink, dns, ds
    dns.close()
    sink.stop()
    subprocess.run(["rm", "-rf", d])


def dane_elemta(make_elemta, world):
    sink, dns, ds = world
    return make_elemta(overrides={
        "dns": {"resolvers": [dns.address], "dnssec": True,
                "trust_anchor_file": ds, "timeout": "3s"},
        "delivery": {"smtp_port": sink.port, "tls": {"mode": "dane"},
                     "routes": [],      # every domain to its MX
                     "retry": {"min_backoff": "1h", "max_backoff": "2h",
                               "max_lifetime": "1d"}}})


def queue_json(e):
    r = e.ctl("queue", "list", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("rcpt", ["a@good.dane.test", "t@ta.dane.test"])
def test_matching_tlsa_delivered_over_tls(make_elemta, dane_world, rcpt):
    sink = dane_world[0]
    e = dane_elemta(make_elemta, dane_world)
    sent_ok(send_message(e.port, "alice@client.example", [rcpt], BODY))
    wait_until(lambda: sink.delivered_to(rcpt), 20, what="delivery under DANE")
    wait_until(lambda: spool_empty(e), 10, what="the spool emptied")
    i = [k for k, m in enumerate(sink.messages) if rcpt in m[1]][0]
    assert sink.tls[i] is True
    assert "(DANE)" in e.log()


def test_tlsa_mismatch_deferred_never_plaintext(make_elemta, dane_world):
    sink = dane_world[0]
    e = dane_elemta(make_elemta, dane_world)
    sent_ok(send_message(e.port, "alice@client.example", ["b@bad.dane.test"], BODY))
    m = wait_until(lambda: [m for m in queue_json(e)
                            if m["recipients"][0]["status"] == "deferred"], 20,
                   what="the deferral")
    reply = m[0]["recipients"][0]["last_reply"]
    assert "verif" in reply.lower() or "certificate" in reply.lower(), reply
    assert sink.delivered_to("b@bad.dane.test") == []


def test_insecure_zone_behaves_as_may(make_elemta, dane_world):
    sink = dane_world[0]
    e = dane_elemta(make_elemta, dane_world)
    sent_ok(send_message(e.port, "alice@client.example", ["c@insecure.test"], BODY))
    wait_until(lambda: sink.delivered_to("c@insecure.test"), 20,
               what="delivery to the insecure MX")
    wait_until(lambda: spool_empty(e), 10, what="the spool emptied")
