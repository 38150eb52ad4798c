#!/usr/bin/python3
"""Integration test runner.

Discovers tests/it/test_*.py, runs every module-level function named
test_* (no arguments; an exception is a failure), two at a time, and
prints "N passed, N failed". Filters: run.py [-k substring] [files...].
Every test starts its own partners (tcpserver, dnsmasq, ...) on
127.0.0.1 with free ports and private directories, and stops them.
"""
import argparse, importlib.util, os, sys, time, traceback
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def load(path):
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", default="")
    ap.add_argument("-j", type=int, default=int(os.environ.get("IT_JOBS", "2")))
    ap.add_argument("--result")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    files = a.files or sorted(
        os.path.join(HERE, f) for f in os.listdir(HERE)
        if f.startswith("test_") and f.endswith(".py"))
    tests = []
    for f in files:
        mod = load(f)
        for n in sorted(dir(mod)):
            fn = getattr(mod, n)
            if n.startswith("test_") and callable(fn) and a.k in f"{mod.__name__}.{n}":
                tests.append((f"{mod.__name__}.{n}", fn))

    def run(t):
        name, fn = t
        t0 = time.time()
        try:
            fn()
            return name, None, time.time() - t0
        except BaseException:
            return name, traceback.format_exc(), time.time() - t0

    passed = failed = 0
    with ThreadPoolExecutor(max_workers=max(1, a.j)) as ex:
        for name, err, dt in ex.map(run, tests):
            if err is None:
                passed += 1
                print(f"PASS {name} ({dt:.1f}s)", flush=True)
            else:
                failed += 1
                print(f"FAIL {name} ({dt:.1f}s)\n{err}", flush=True)
    print(f"it: {passed} passed, {failed} failed")
    if a.result:
        with open(a.result, "w") as fh:
            fh.write(f"{passed} {failed}\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
