#!/usr/bin/python3
"""run_suite.py -- the RFC 7208 (OpenSPF 2014.04) test suite against
mxgate's SPF evaluator, through its own DNS layer.

For each scenario of the suite, zonedns.Server serves the scenario's zone
data on 127.0.0.1:<free port>; spf_probe (tests/spf/spf_probe.c, built
against the library) runs spf_check() for every test of the scenario with
DNSCACHEIP pointing there, and the result (one of the acceptable ones) and
the explanation are compared. The suite is tests/spf/rfc7208-tests.yml,
a copy of the OpenSPF project's 2014.04 release (its licence and change log
beside it, tests/spf/README says where it comes from).

  /usr/bin/python3 tests/spf/run_suite.py [--probe PATH] [--suite PATH] [-v]

Without --probe (or $SPF_PROBE) the probe is compiled from the sources
(src/lib/dns*.c, spf*.c, str.c) into a temp dir. Exit status 0 when every
test passes.
"""
import argparse, os, shutil, subprocess, sys, tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import zonedns  # noqa: E402

DEFAULT_SUITE = os.path.join(HERE, "rfc7208-tests.yml")
CFLAGS = ["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-O2", "-g"]


def suite_path():
    return os.environ.get("SPF_SUITE") or DEFAULT_SUITE


def build_probe(outdir, name="spf_probe"):
    """compile tests/spf/NAME.c with the library sources it needs; its path"""
    lib = os.path.join(TOP, "src", "lib")
    srcs = [os.path.join(HERE, name + ".c"), os.path.join(lib, "str.c")]
    srcs += sorted(os.path.join(lib, f) for f in os.listdir(lib)
                   if (f.startswith("dns") or f.startswith("spf")) and f.endswith(".c"))
    out = os.path.join(outdir, name)
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc] + CFLAGS + ["-I" + lib, "-o", out] + srcs + ["-lcares"], check=True)
    return out


def load_suite(path):
    with open(path, encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d]


def run_scenario(probe, server, scenario, timeout_ms):
    """[(name, test, fields)] for the scenario's tests"""
    server.set_zone(scenario.get("zonedata"))
    names = list(scenario["tests"])
    lines = []
    for n in names:
        t = scenario["tests"][n]
        lines.append(f"{t['host']}\t{t.get('helo', '')}\t{t.get('mailfrom', '')}")
    env = dict(os.environ, DNSCACHEIP=f"127.0.0.1#{server.port}")
    p = subprocess.run([probe, "-t", str(timeout_ms), "-"], input="\n".join(lines) + "\n",
                       capture_output=True, text=True, env=env, timeout=300)
    outs = p.stdout.split("\n")
    res = []
    for i, n in enumerate(names):
        fields = outs[i].split("\t") if i < len(outs) else []
        res.append((n, scenario["tests"][n], fields + [""] * (6 - len(fields))))
    return res


def check(test, fields):
    """None if the test passes, else what is wrong"""
    result, kind, explanation, mechanism, problem, header = fields[:6]
    want = test["result"]
    want = want if isinstance(want, list) else [want]
    if result not in want:
        return f"result {result} (want {'|'.join(want)}) mech={mechanism!r} problem={problem!r}"
    if "explanation" in test and result == "fail":
        exp = test["explanation"]
        if exp == "DEFAULT":
            if kind != "default":
                return f"explanation {explanation!r} from exp=, want the default"
        elif kind != "exp" or explanation.lower() != exp.lower():
            return f"explanation {explanation!r} ({kind}), want {exp!r}"
    return None


def run_suite(probe, path, timeout_ms=1500, verbose=False):
    """(passed, [failure lines])"""
    server = zonedns.Server()
    passed, failures = 0, []
    try:
        for scenario in load_suite(path):
            for name, test, fields in run_scenario(probe, server, scenario, timeout_ms):
                why = check(test, fields)
                if why is None:
                    passed += 1
                    if verbose:
                        print(f"ok   {scenario['description']} / {name}: {fields[0]}")
                else:
                    failures.append(f"FAIL {scenario['description']} / {name}: {why}")
    finally:
        server.stop()
    return passed, failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe", default=os.environ.get("SPF_PROBE"))
    ap.add_argument("--suite", default=suite_path())
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    tmp = None
    try:
        probe = a.probe
        if not probe:
            tmp = tempfile.mkdtemp(prefix="mxgate-spf-")
            probe = build_probe(tmp)
        passed, failures = run_suite(probe, a.suite, verbose=a.v)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    for f in failures:
        print(f)
    print(f"rfc7208 suite: {passed} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
