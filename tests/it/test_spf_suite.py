"""The RFC 7208 test suite (OpenSPF 2014.04, read from ../shared, never
copied here) against mxgate's SPF evaluator and DNS layer: every scenario's
zone data is served by tests/spf/zonedns.py on 127.0.0.1, tests/spf/spf_probe
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
