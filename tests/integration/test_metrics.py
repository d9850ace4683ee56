"""The Prometheus endpoint (metrics.listen, elemta-metricsd) and
elemta-stat --prometheus: both parse strictly as the text exposition
format, and their totals equal what the SMTP clients saw."""
import json
import math
import os
import re
import signal
import subprocess
import time

from elemta import STAT, free_port, send_message, wait_until

MSG = b"Subject: metrics\r\n\r\nhello\r\n"

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
SAMPLE_RE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^\n]*\})? (\S+)\Z")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse_labels(text, where):
    """'{a="x",b="y"}' -> dict; strict: nothing but label pairs."""
    assert text[0] == "{" and text[-1] == "}", where
    body, labels, pos = text[1:-1], {}, 0
    while pos < len(body):
        m = LABEL_RE.match(body, pos)
        assert m, "bad labels in %r" % where
        name = m.group(1)
        assert not name.startswith("__"), where
        assert name not in labels, "repeated label in %r" % where
        labels[name] = re.sub(r"\\(.)", lambda x: {"n": "\n"}.get(x.group(1), x.group(1)),
                              m.group(2))
        pos = m.end()
        if pos < len(body):
            assert body[pos] == ",", where
            pos += 1
    return labels


def parse_value(text, where):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    assert re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", text), where
    return float(text)


def parse_exposition(text):
    """Strict parser of the text format as Elemta writes it: every family
    has one HELP and one TYPE line before its samples, its samples are
    contiguous, names and labels are valid, no series repeats, counters
    are >= 0, histograms have cumulative buckets ending in +Inf == _count.
    Returns ({(name, frozenset(labels)): value}, {family: type})."""
    assert text.endswith("\n"), "exposition must end with a newline"
    samples, types, seen_families = {}, {}, set()
    family = ftype = None
    have_help = False
    for line in text[:-1].split("\n"):
        assert line != "", "empty line inside the exposition"
        if line.startswith("# HELP "):
            name, sep, help_text = line[7:].partition(" ")
            assert sep and help_text.strip(), "HELP without text: %r" % line
            assert NAME_RE.match(name), line
            assert name not in seen_families, "family %s appears twice" % name
            seen_families.add(name)
            family, ftype, have_help = name, None, True
            continue
        if line.startswith("# TYPE "):
            name, _, t = line[7:].partition(" ")
            assert have_help and name == family and ftype is None, \
                "TYPE must follow its family's HELP: %r" % line
            assert t in TYPES, line
            ftype = types[name] = t
            continue
        assert not line.startswith("#"), "unexpected comment %r" % line
        m = SAMPLE_RE.match(line)
        assert m, "bad sample line %r" % line
        name, labels_text, value_text = m.groups()
        assert family is not None and ftype is not None, "sample before TYPE: %r" % line
        labels = parse_labels(labels_text, line) if labels_text else {}
        if ftype == "histogram":
            assert name in (family + "_bucket", family + "_sum", family + "_count"), line
            if name.endswith("_bucket"):
                assert "le" in labels, line
        else:
            assert name == family, "sample %r outside its family %s" % (line, family)
        value = parse_value(value_text, line)
        if ftype == "counter" or name.endswith(("_bucket", "_count", "_sum")):
            assert value >= 0, line
        key = (name, frozenset(labels.items()))
        assert key not in samples, "series repeated: %r" % line
        samples[key] = value
    for fam, t in types.items():
        if t != "histogram":
            continue
        buckets = sorted(((float(dict(l)["le"].replace("Inf", "inf")), v)
                          for (n, l), v in samples.items() if n == fam + "_bucket"))
        assert buckets and math.isinf(buckets[-1][0]), "%s lacks +Inf" % fam
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), "%s buckets not cumulative" % fam
        assert samples[(fam + "_count", frozenset())] == buckets[-1][1], fam
        assert (fam + "_sum", frozenset()) in samples, fam
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples, name, **match):
    """Sum over every series of name whose labels include match."""
    return sum(v for (n, l), v in samples.items()
               if n == name and all(dict(l).get(k) == x for k, x in match.items()))


def curl(url, *extra):
    return subprocess.run(["curl", "-s", "--max-time", "5"] + list(extra) + [url],
                          capture_output=True, text=True, timeout=15)


def scrape(url):
    r = curl(url, "-f")
    assert r.returncode == 0, "curl %s: rc %d %s" % (url, r.returncode, r.stderr)
    return parse_exposition(r.stdout)[0]


def quiet(url):
    """A scrape once everything the harness did so far (its greeting
    probes) has been flushed: two scrapes 1.2 s apart agree (workers
    flush once a second) and no session is open."""
    def same():
        a = scrape(url)
        time.sleep(1.2)
        b = scrape(url)
        stable = {k: v for k, v in a.items() if not k[0].startswith("elemta_counters_")}
        now = {k: v for k, v in b.items() if not k[0].startswith("elemta_counters_")}
        return b if stable == now and value(b, "elemta_smtpd_sessions_open") == 0 else None
    return wait_until(same, 15, what="metrics to settle")


def start(make_elemta):
    mport = free_port()
    e = make_elemta(overrides={"metrics": {"listen": "127.0.0.1:%d" % mport}},
                    policy={"blocked_recipient_domains": ["blocked.example"]})
    wait_until(lambda: e.worker_pids("metrics"), 10, what="metrics worker running")
    url = "http://127.0.0.1:%d/metrics" % mport
    wait_until(lambda: curl(url, "-f").returncode == 0, 10, what="/metrics answering")
    return e, url


def test_metrics_totals_match_what_clients_saw(make_elemta):
    e, url = start(make_elemta)
    before = quiet(url)

    accepted = refused_rcpt = connections = 0
    for i in range(4):
        out = send_message(e.port, "s%d@sender.example" % i, ["u%d@example.com" % i], MSG)
        connections += 1
        accepted += sum(1 for stage, code, _ in out if stage == "eom" and code == 250)
    for i in range(3):
        out = send_message(e.port, "s%d@sender.example" % i, ["x%d@blocked.example" % i], MSG)
        connections += 1
        refused_rcpt += sum(1 for stage, code, _ in out if stage == "rcpt" and code >= 500)
    assert (accepted, refused_rcpt) == (4, 3)

    def d(after, name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    def settled():
        a = scrape(url)
        want = {
            "queued": (d(a, "elemta_smtpd_messages_queued_total"), accepted),
            "connections": (d(a, "elemta_smtpd_connections_total"), connections),
            "refused rcpt": (d(a, "elemta_smtpd_refused_rcpt_total"), refused_rcpt),
            # present (a missing series would read as 0) and zero
            "open": (a.get(("elemta_smtpd_sessions_open", frozenset()), "missing"), 0),
            "policy rejects": (d(a, "elemta_policy_decisions_total", phase="RCPT",
                                 action="reject", plugin="policy"), refused_rcpt),
            "reference metric": (d(a, "policy_rejected_recipients_total"), refused_rcpt),
            "EOM continue": (d(a, "elemta_policy_decisions_total", phase="END-OF-MESSAGE",
                               action="continue", plugin=""), accepted),
            "CONNECT": (total(a, "elemta_policy_decisions_total", phase="CONNECT")
                        - total(before, "elemta_policy_decisions_total", phase="CONNECT"),
                        connections),
        }
        bad = {k: v for k, v in want.items() if v[0] != v[1]}
        return a if not bad else None

    after = wait_until(settled, 10, what="metrics to match the SMTP dialogues")

    # Every decision is in the latency histogram, exactly once.
    decisions = total(after, "elemta_policy_decisions_total")
    assert value(after, "elemta_policy_decision_seconds_count") == decisions
    assert value(after, "elemta_policy_decision_seconds_bucket", le="+Inf") == decisions
    assert value(after, "elemta_policy_decision_seconds_sum") > 0
    assert value(after, "elemta_plugin_calls_total", plugin="policy") > 0
    assert value(after, "elemta_counters_up") == 1
    assert value(after, "elemta_counters_map_size_bytes") > 0
    assert value(after, "elemta_counters_entries") > 0

    # elemta-stat --prometheus is the same exposition, parsed the same way.
    # elemta-queued keeps retrying in the background, so a counter may move
    # between two reads: compare a stat reading taken between two equal
    # HTTP scrapes.
    def stable_pair():
        first = scrape(url)
        r = subprocess.run([STAT, "-c", e.config_path, "--prometheus"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return (first, r.stdout) if scrape(url) == first else None

    http_now, stat_text = wait_until(stable_pair, 20, what="two equal scrapes around elemta-stat")
    stat_samples, stat_types = parse_exposition(stat_text)
    _, http_types = parse_exposition(curl(url, "-f").stdout)
    assert stat_types == http_types
    for (name, labels), v in http_now.items():
        fam = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and http_types.get(name[:-len(suffix)]) == "histogram":
                fam = name[:-len(suffix)]
        if http_types[fam] in ("counter", "histogram"):
            assert stat_samples.get((name, labels)) == v, (name, dict(labels))

    # The HTTP side: only GET/HEAD /metrics.
    base = url[:-len("/metrics")]
    assert curl(base + "/nope", "-o", "/dev/null", "-w", "%{http_code}").stdout == "404"
    assert curl(url, "-X", "POST", "-o", "/dev/null", "-w", "%{http_code}").stdout == "405"
    head = curl(url, "-I")
    assert head.returncode == 0 and "text/plain; version=0.0.4" in head.stdout


def test_totals_survive_a_worker_crash(make_elemta):
    """A killed smtpd worker's counts stay in the totals: its replacement
    takes over its stats file."""
    e, url = start(make_elemta)
    for i in range(4):
        send_message(e.port, "a@sender.example", ["u%d@example.com" % i], MSG)
    wait_until(lambda: value(scrape(url), "elemta_smtpd_messages_queued_total") == 4, 10,
               what="4 messages counted")
    pids = e.worker_pids("smtpd")
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: len(e.worker_pids("smtpd")) == 2
               and not set(e.worker_pids("smtpd")) & set(pids), 15,
               what="smtpd workers restarted")
    e.wait_ready()
    send_message(e.port, "a@sender.example", ["again@example.com"], MSG)
    wait_until(lambda: value(scrape(url), "elemta_smtpd_messages_queued_total") == 5, 10,
               what="the totals to carry on from 4 to 5")
    time.sleep(1.2)
    assert value(scrape(url), "elemta_smtpd_messages_queued_total") == 5
    # Each replacement renamed its predecessor's file: one file per
    # running worker, none left by the dead ones (their totals would be
    # summed just the same, so only the file count shows the take-over).
    stats = [f for f in os.listdir(e.path("run", "stats"))
             if f.startswith("smtpd-") and f.endswith(".stats")]
    writers = [int(f[:-len(".stats")].split("-")[2]) for f in stats]
    assert sorted(writers) == sorted(e.worker_pids("smtpd")), stats


def test_metrics_worker_is_supervised(make_elemta):
    """The metrics worker is restarted like any other."""
    e, url = start(make_elemta)
    old = e.worker_pids("metrics")
    os.kill(old[0], signal.SIGKILL)
    wait_until(lambda: e.worker_pids("metrics") and e.worker_pids("metrics") != old, 15,
               what="metrics worker restarted")
    wait_until(lambda: curl(url, "-f").returncode == 0, 10, what="/metrics back")
    scrape(url)


def test_delivery_metrics(make_elemta):
    """elemta-queued's counts: deliveries by result and transport, the
    latency histogram, the queue by state in /metrics, elemta-stat
    --prometheus and status; a killed elemta-queued's totals carry on."""
    mport, closed = free_port(), free_port()
    e = make_elemta(overrides={
        "metrics": {"listen": "127.0.0.1:%d" % mport},
        "delivery": {"routes": [
            {"domains": ["local.test", "client.test"], "next_hop": "maildir:mail"},
            {"domains": ["bad.test"], "next_hop": "error:5.1.1 nobody here"},
            {"domains": ["relay.test"], "next_hop": "smtp:[127.0.0.1]:%d" % closed}],
            "retry": {"min_backoff": "1h", "max_backoff": "2h", "max_lifetime": "5d"}}})
    url = "http://127.0.0.1:%d/metrics" % mport
    wait_until(lambda: curl(url, "-f").returncode == 0, 10, what="/metrics answering")
    for rcpts in (["a@local.test"], ["b@local.test"], ["x@bad.test"], ["r@relay.test"]):
        out = send_message(e.port, "alice@client.test", rcpts, MSG)
        assert out[-1][0] == "eom" and out[-1][1] == 250, out

    def rec(s, result, transport):
        return value(s, "elemta_delivery_recipients_total", result=result,
                     transport=transport)

    # Two to local.test and the bounce to alice@client.test delivered to
    # the Maildir; one bounced by the error: route; one deferred (nothing
    # listens on the relay's port), left in the queue.
    last = []

    def settled():
        s = scrape(url)
        last[:] = [rec(s, "delivered", "maildir"), rec(s, "bounced", "error"),
               rec(s, "deferred", "smtp") >= 1,
               value(s, "elemta_delivery_latency_seconds_count"),
               value(s, "elemta_delivery_latency_seconds_bucket", le="+Inf"),
               value(s, "elemta_delivery_queue_messages", state="deferred"),
               value(s, "elemta_delivery_queue_messages", state="active")]
        return s if last == [3, 1, True, 3, 3, 1, 0] else None
    try:
        s = wait_until(settled, 20, what="the delivery metrics")
    except AssertionError:
        raise AssertionError("delivery metrics: %r\n%s\n%s" % (last, e.ctl("queue", "list").stdout, e.log()[-3000:]))
    assert rec(s, "delivered", "smtp") == 0 and rec(s, "bounced", "maildir") == 0
    assert value(s, "elemta_delivery_latency_seconds_sum") > 0
    assert value(s, "elemta_delivery_queue_oldest_age_seconds") >= 0
    assert ("elemta_delivery_queue_messages", frozenset({("state", "hold")})) in s
    _, types = parse_exposition(curl(url, "-f").stdout)
    assert types["elemta_delivery_recipients_total"] == "counter"
    assert types["elemta_delivery_latency_seconds"] == "histogram"
    assert types["elemta_delivery_queue_messages"] == "gauge"

    r = subprocess.run([STAT, "-c", e.config_path, "--prometheus"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    st, _ = parse_exposition(r.stdout)
    assert rec(st, "delivered", "maildir") == 3 and rec(st, "bounced", "error") == 1
    assert value(st, "elemta_delivery_latency_seconds_count") == 3
    status = json.loads(e.ctl("status", "--json").stdout)
    q, dl = status["queue"], status["delivery"]
    assert (q["messages"], q["deferred"], q["active"]) == (1, 1, 0), q
    assert (dl["delivered"], dl["bounced"]) == (3, 1) and dl["deferred"] >= 1, dl
    assert "deliveries: 3 delivered, " in e.ctl("status").stdout

    # A restarted elemta-queued takes over its predecessor's file.
    old = e.worker_pids("queued")
    assert len(old) == 1
    os.kill(old[0], signal.SIGKILL)
    wait_until(lambda: e.worker_pids("queued") and e.worker_pids("queued") != old, 15,
               what="elemta-queued restarted")
    out = send_message(e.port, "alice@client.test", ["c@local.test"], MSG)
    assert out[-1][1] == 250, out
    wait_until(lambda: rec(scrape(url), "delivered", "maildir") == 4, 15,
               what="the totals to carry on from 3 to 4")
    stats = [f for f in os.listdir(e.path("run", "stats")) if f.startswith("queued-")]
    assert stats == ["queued-0-%d.stats" % e.worker_pids("queued")[0]], stats
