"""The RFC 7208 test suite (OpenSPF 2014.04, tests/spf/rfc7208-tests.yml)
against mxgate's SPF evaluator and DNS layer: every scenario's zone data is
served by tests/spf/zonedns.py on 127.0.0.1, tests/spf/spf_probe
runs spf_check() with DNSCACHEIP pointing there. ONE test: it fails if any
case of the suite fails, printing each failure and the pass count."""
import os, shutil, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "spf"))
import run_suite  # noqa: E402


def test_rfc7208_suite_passes_completely():
    path = run_suite.suite_path()
    assert os.path.exists(path), f"suite not found at {path}"
    tmp = tempfile.mkdtemp(prefix="mxgate-spf-")
    try:
        probe = os.environ.get("SPF_PROBE") or run_suite.build_probe(tmp)
        passed, failures = run_suite.run_suite(probe, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for f in failures:
        print(f)
    print(f"rfc7208 suite: {passed} passed, {len(failures)} failed")
    assert not failures, f"{len(failures)} RFC 7208 suite cases failed ({passed} passed)"
    assert passed >= 200, passed


# ---------------------------------------------------------------------------
# The DNS layer and SPF evaluator against real servers: dnsmasq, and
# tests/spf/zonedns.py for what dnsmasq cannot express (SERVFAIL, silence,
# delays, CNAME loops, oversized and NUL-bearing TXT, bombs).

import subprocess, threading  # noqa: E402
import harness as h  # noqa: E402
import zonedns  # noqa: E402

_tools = {}
_tools_lock = threading.Lock()


def tool(name):
    """tests/spf/NAME built once per run (SPF_PROBE / DNS_PROBE override)"""
    env = {"spf_probe": "SPF_PROBE", "dns_probe": "DNS_PROBE"}[name]
    if os.environ.get(env):
        return os.environ[env]
    with _tools_lock:
        if name not in _tools:
            d = tempfile.mkdtemp(prefix="mxgate-spf-tools-")
            _tools[name] = run_suite.build_probe(d, name)
        return _tools[name]


def dnsq(server, qtype, name, timeout_ms=2000):
    """dns_probe output lines for one query against DNSCACHEIP=server"""
    p = subprocess.run([tool("dns_probe"), "-t", str(timeout_ms), qtype, name], capture_output=True,
                       text=True, env=dict(os.environ, DNSCACHEIP=server), timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.splitlines()


def spf(server, ip, helo, mailfrom, *opts, timeout_ms=2000):
    """spf_probe fields: result, exp kind, explanation, mechanism, problem, header"""
    p = subprocess.run([tool("spf_probe"), "-t", str(timeout_ms), *opts, ip, helo, mailfrom],
                       capture_output=True, text=True, env=dict(os.environ, DNSCACHEIP=server), timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout.rstrip("\n").split("\t")


def start_dnsmasq(port, *records):
    d = tempfile.mkdtemp(prefix="mxgate-dnsmasq-")
    p = subprocess.Popen(["dnsmasq", "--no-daemon", f"--port={port}", "--listen-address=127.0.0.1",
                          "--bind-interfaces", "--no-resolv", "--no-hosts", "--local=/test/",
                          f"--pid-file={d}/pid", *records],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    server = f"127.0.0.1#{port}"
    h.wait_for(lambda: dnsq(server, "a", "ready.test", 500)[0].startswith("found"), what="dnsmasq")
    return p, d


def stop_dnsmasq(p, d):
    p.terminate()
    p.wait(timeout=10)
    shutil.rmtree(d, ignore_errors=True)


def test_dns_layer_against_dnsmasq():
    port = h.free_port()
    p, d = start_dnsmasq(port, "--host-record=ready.test,192.0.2.99",
                         "--mx-host=good.test,mx.good.test,20", "--mx-host=good.test,mx2.good.test,10",
                         "--host-record=mx.good.test,198.51.100.1,2001:db8::1",
                         "--host-record=mx2.good.test,198.51.100.2", "--host-record=plain.test,198.51.100.7",
                         "--txt-record=good.test,v=spf1 ip4:192.0.2.10 mx,/24 -all",
                         "--ptr-record=10.2.0.192.in-addr.arpa,mx.good.test",
                         "--cname=alias.good.test,mx.good.test")
    s = f"127.0.0.1#{port}"
    try:
        assert dnsq(s, "a", "mx.good.test")[:2] == ["found n=1 dropped=0", "198.51.100.1"]
        assert dnsq(s, "aaaa", "mx.good.test")[:2] == ["found n=1 dropped=0", "2001:db8::1"]
        assert dnsq(s, "ip", "alias.good.test")[:3] == ["found n=2 dropped=0", "198.51.100.1", "2001:db8::1"]
        assert dnsq(s, "a", "nope.test")[0].startswith("nxdomain")
        assert dnsq(s, "a", "good.test")[0].startswith("nodata")
        assert dnsq(s, "mx", "good.test")[:3] == ["found n=2 dropped=0 implicit=0 null=0",
                                                  "10 mx2.good.test", "20 mx.good.test"]
        assert dnsq(s, "mx", "plain.test")[0].startswith("nodata")
        assert dnsq(s, "mxi", "plain.test")[:2] == ["found n=1 dropped=0 implicit=1 null=0", "0 plain.test"]
        assert dnsq(s, "mxi", "nope.test")[0].startswith("nxdomain")
        # multi-string TXT joined without separator (RFC 7208 3.3)
        assert dnsq(s, "txt", "good.test")[:2] == ["found n=1 dropped=0", "32\tv=spf1 ip4:192.0.2.10 mx/24 -all"]
        assert dnsq(s, "ptr", "192.0.2.10")[:2] == ["found n=1 dropped=0", "mx.good.test"]
        # outside --local=/test/ dnsmasq refuses: a temporary failure, never "no such domain"
        assert dnsq(s, "a", "example.com")[0].startswith("temporary failure")
        # several servers; the first one is dead
        dead = h.free_port()
        assert dnsq(f"127.0.0.1#{dead}, 127.0.0.1#{port}", "a", "mx.good.test")[0].startswith("found")
        assert dnsq(f"127.0.0.1#{dead}", "a", "mx.good.test", 1000)[0].startswith("temporary failure")
        # SPF through dnsmasq
        assert spf(s, "192.0.2.10", "h.test", "a@good.test")[:4] == ["pass", "-", "", "ip4:192.0.2.10"]
        assert spf(s, "198.51.100.77", "h.test", "a@good.test")[:4] == ["pass", "-", "", "mx/24"]
        r = spf(s, "203.0.113.5", "h.test", "a@good.test")
        assert r[0] == "fail" and r[1] == "default" and r[3] == "-all", r
        assert spf(s, "203.0.113.5", "h.test", "a@nope.test")[0] == "none"
        assert spf(s, "203.0.113.5", "h.test", "a@example.com")[0] == "temperror"
    finally:
        stop_dnsmasq(p, d)
    p = subprocess.run([tool("dns_probe"), "a", "x.test"], capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if k != "DNSCACHEIP"})
    assert p.returncode == 2 and "DNSCACHEIP" in p.stderr      # never falls back to resolv.conf


def serve(zone):
    srv = zonedns.Server(zone)
    return srv, f"127.0.0.1#{srv.port}"


def test_temporary_failures_are_told_apart():
    srv, s = serve({"servfail.test": ["SERVFAIL"], "refused.test": ["REFUSED"], "silent.test": ["TIMEOUT"],
                    "there.test": [{"A": "192.0.2.1"}], "sub.there.test": [{"MX": [5, "there.test"]}]})
    try:
        assert dnsq(s, "a", "servfail.test")[0].startswith("temporary failure")
        assert dnsq(s, "a", "refused.test")[0].startswith("temporary failure")
        assert dnsq(s, "a", "silent.test", 800)[0].startswith("temporary failure")
        assert dnsq(s, "a", "missing.test")[0].startswith("nxdomain")
        assert dnsq(s, "mx", "there.test")[0].startswith("nodata")
        assert dnsq(s, "exists", "there.test")[0] == "found"
        # null MX (RFC 7505)
        srv.set_zone({"nullmx.test": [{"MX": [0, ""]}, {"A": "192.0.2.1"}]})
        assert dnsq(s, "mxi", "nullmx.test")[:2] == ["found n=1 dropped=0 implicit=0 null=1", "0 "]
        srv.set_zone({"a.test": [{"TXT": "v=spf1 include:servfail.test -all"}], "servfail.test": ["SERVFAIL"]})
        r = spf(s, "192.0.2.1", "h.test", "x@a.test")
        assert r[0] == "temperror" and "servfail.test" in r[4], r
    finally:
        srv.stop()


def test_hostile_dns_answers():
    big = "v=spf1 " + "ip4:192.0.2.1 " * 400                 # 5.6 kB: over TCP, over the TXT cap
    zone = {
        "big.test": [{"TXT": big}],
        "nul.test": [{"TXT": "v=spf1 a:foo.test\0 -all"}],
        "loop1.test": [{"CNAME": "loop2.test"}], "loop2.test": [{"CNAME": "loop1.test"}],
        "spfloop.test": [{"CNAME": "loop1.test"}],
        "many.test": [{"A": f"198.51.{i // 250}.{i % 250 + 1}"} for i in range(200)],
        "manyspf.test": [{"TXT": "v=spf1 a:many.test -all"}],
        "long.test": [{"TXT": ["v=spf1", " ip4:192.0.2.7", " -all"] + ["x" * 255] * 0}],
        "twoc.test": [{"TXT": "v=spf1 ip4:192.0.2.7 -all"}, {"TXT": "unrelated " + "y" * 600}],
    }
    srv, s = serve(zone)
    try:
        assert dnsq(s, "txt", "big.test")[0] == "found n=0 dropped=1"
        r = spf(s, "192.0.2.1", "h.test", "x@big.test")
        assert r[0] == "permerror" and "oversized" in r[4], r
        out = dnsq(s, "txt", "nul.test")
        assert out[1] == "23\tv=spf1 a:foo.test\\x00 -all", out
        assert spf(s, "192.0.2.1", "h.test", "x@nul.test")[0] == "permerror"
        assert dnsq(s, "a", "loop1.test")[0].startswith("temporary failure")
        assert spf(s, "192.0.2.1", "h.test", "x@spfloop.test")[0] == "temperror"
        out = dnsq(s, "a", "many.test")
        assert out[0] == "found n=64 dropped=136", out[0]
        assert spf(s, "198.51.0.50", "h.test", "x@manyspf.test")[0] == "pass"
        # only the first DNS_MAX_RR addresses of an answer are kept (docs/dns.md)
        assert spf(s, "198.51.0.200", "h.test", "x@manyspf.test")[0] == "fail"
        assert spf(s, "192.0.2.7", "h.test", "x@long.test")[0] == "pass"
        assert spf(s, "192.0.2.7", "h.test", "x@twoc.test")[0] == "pass"   # 600-byte TXT beside it, via TCP
    finally:
        srv.stop()


def test_include_loops_and_lookup_bombs_hit_the_limits():
    zone = {
        "loop.test": [{"TXT": "v=spf1 include:loop2.test -all"}],
        "loop2.test": [{"TXT": "v=spf1 include:loop.test ~all"}],
        "self.test": [{"TXT": "v=spf1 redirect=self.test"}],
        # every include fans out into MX lookups of 10 names that do not resolve
        "bomb.test": [{"TXT": "v=spf1 " + " ".join(f"include:i{k}.test" for k in range(20)) + " -all"}],
        "voids.test": [{"TXT": "v=spf1 " + " ".join(f"a:v{k}.test" for k in range(9)) + " -all"}],
        "ptrs.test": [{"TXT": "v=spf1 ptr -all"}],
        "10.2.0.192.in-addr.arpa": [{"PTR": f"p{k}.ptrs.test"} for k in range(40)],
    }
    for k in range(20):
        zone[f"i{k}.test"] = [{"TXT": f"v=spf1 mx:m{k}.test ?all"}]
        zone[f"m{k}.test"] = [{"MX": [n, f"n{n}.m{k}.test"]} for n in range(10)]
    srv, s = serve(zone)
    try:
        for dom, why in (("loop.test", "more than 10 DNS lookups"), ("self.test", "more than 10 DNS lookups"),
                         ("bomb.test", "more than 10 DNS lookups"), ("voids.test", "void lookups")):
            before = srv.queries
            r = spf(s, "192.0.2.10", "h.test", f"x@{dom}")
            assert r[0] == "permerror" and why in r[4], (dom, r)
            # 10 lookup terms, each at most 10 MX names: the queries stay bounded
            assert srv.queries - before <= 1 + 10 * 12, (dom, srv.queries - before)
        before = srv.queries
        assert spf(s, "192.0.2.10", "h.test", "x@ptrs.test")[0] == "fail"
        # TXT, PTR (truncated on UDP, again on TCP), 10 of the 40 names checked
        assert srv.queries - before <= 1 + 2 + 10, srv.queries - before
    finally:
        srv.stop()


def test_slow_and_silent_dns_time_out():
    srv, s = serve({"slow.test": [{"DELAY": 3}, {"TXT": "v=spf1 +all"}], "silent.test": ["TIMEOUT"],
                    "inc.test": [{"TXT": "v=spf1 include:silent.test -all"}]})
    try:
        assert dnsq(s, "txt", "slow.test", 600)[0].startswith("temporary failure")
        assert spf(s, "192.0.2.1", "h.test", "x@slow.test", timeout_ms=600)[0] == "temperror"
        assert spf(s, "192.0.2.1", "h.test", "x@silent.test", timeout_ms=600)[0] == "temperror"
        assert spf(s, "192.0.2.1", "h.test", "x@inc.test", timeout_ms=600)[0] == "temperror"
        assert spf(s, "192.0.2.1", "h.test", "x@slow.test", timeout_ms=6000)[0] == "pass"
    finally:
        srv.stop()


def test_local_rules_helo_identity_and_explanations():
    srv, s = serve({
        "strict.test": [{"TXT": "v=spf1 a:mail.strict.test -all exp=why.strict.test"}],
        "why.strict.test": [{"TXT": "%{i} may not send for %{d} (%{s})"}],
        "mail.strict.test": [{"A": "192.0.2.50"}],
        "soft.test": [{"TXT": "v=spf1 ip4:192.0.2.50 ~mx ~all"}],
        "helo.test": [{"TXT": "v=spf1 ip4:192.0.2.1 -all"}],
        "norecord.test": [{"A": "192.0.2.1"}],
    })
    try:
        r = spf(s, "192.0.2.9", "h.test", "bob@strict.test")
        assert r[:4] == ["fail", "exp", "192.0.2.9 may not send for strict.test (bob@strict.test)", "-all"], r
        # spflocalrules go before the final "-all" of the sender's record
        r = spf(s, "192.0.2.9", "h.test", "bob@strict.test", "-l", "ip4:192.0.2.0/24")
        assert r[:4] == ["pass", "-", "", "ip4:192.0.2.0/24"], r
        # ... before the whole run of ~ terms that ends in ~all
        r = spf(s, "192.0.2.9", "h.test", "bob@soft.test", "-l", "ip4:192.0.2.9")
        assert r[0] == "pass" and r[3] == "ip4:192.0.2.9", r
        # a local -rule's fail gets the default explanation (here control/spfexplain's)
        r = spf(s, "192.0.2.66", "h.test", "bob@strict.test", "-l", "-ip4:192.0.2.66", "-e", "Go away %{i}")
        assert r[:4] == ["fail", "default", "Go away 192.0.2.66", "-ip4:192.0.2.66"], r
        # no record: the local rules alone decide, else none
        assert spf(s, "192.0.2.1", "h.test", "x@norecord.test", "-l", "a")[:4] == ["pass", "-", "", "a"]
        assert spf(s, "192.0.2.2", "h.test", "x@norecord.test", "-l", "a")[0] == "none"
        # broken local rules are ignored
        assert spf(s, "192.0.2.9", "h.test", "bob@strict.test", "-l", "ip4:300.1.1.1")[0] == "fail"
        # MAIL FROM <>: postmaster@HELO is checked
        r = spf(s, "192.0.2.1", "helo.test", "")
        assert r[0] == "pass" and "identity=helo" in r[5] and "envelope-from" not in r[5], r
        assert spf(s, "192.0.2.2", "helo.test", "")[0] == "fail"
        assert spf(s, "192.0.2.2", "[192.0.2.2]", "")[0] == "none"
        assert spf(s, "192.0.2.2", "nodots", "")[0] == "none"
        r = spf(s, "::ffff:192.0.2.50", "h.test", "bob@strict.test")
        assert r[0] == "pass" and "client-ip=192.0.2.50;" in r[5], r
    finally:
        srv.stop()
