#!/usr/bin/python3
"""bench/sessions: mxgate-sessions --summary against `wc -l` (the read
limit) and a gawk script doing the same join, on one generated log.
SIZE (bytes) from BENCH_SESSIONS_BYTES, default 1 GiB. Prints bytes/s
and peak RSS of each. A benchmark, never a test."""
import os, resource, subprocess, sys, tempfile, time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("MXGATE_BIN", os.path.join(TOP, "bin"))


def timed(cmd, stdin_path):
    """seconds and peak RSS (KiB) of one run, measured by /usr/bin/time"""
    t0 = time.monotonic()
    with open(stdin_path, "rb") as fh:
        r = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, stdin=fh, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, check=True, text=True)
    dt = time.monotonic() - t0
    return dt, int(r.stderr.strip().splitlines()[-1])


def main():
    size = int(os.environ.get("BENCH_SESSIONS_BYTES", str(1 << 30)))
    d = tempfile.mkdtemp(prefix="mxgate-bench-log-")
    gen = os.path.join(d, "genlog")
    subprocess.run(["cc", "-O2", "-o", gen, os.path.join(TOP, "bench", "sessions", "genlog.c")], check=True)
    log = os.path.join(d, "current")
    with open(log, "wb") as fh:
        subprocess.run([gen, str(size)], stdout=fh, check=True)
    n = os.path.getsize(log)
    subprocess.run(["sync"])                                        # no write-back of the new log while timing
    subprocess.run(["cat", log], stdout=subprocess.DEVNULL)          # warm the page cache for all three
    progs = (("wc -l", ["wc", "-l"]),
             ("mxgate-sessions --summary", [os.path.join(BIN, "mxgate-sessions"), "--summary"]),
             ("gawk join", ["gawk", "-f", os.path.join(TOP, "bench", "sessions", "join.awk")]))
    # wc and mxgate-sessions in turns, five rounds, so that a busy spell of
    # the host falls on both alike; each one's fastest run (the least
    # disturbed) is reported. gawk, sixty times slower, runs once.
    runs = {name: [] for name, _ in progs}
    for _ in range(5):
        for name, cmd in progs[:2]:
            runs[name].append(timed(cmd, log))
    runs[progs[2][0]].append(timed(progs[2][1], log))
    rows = []
    for name, _ in progs:
        best = min(runs[name])
        rows.append((name, n / best[0] / 1e6, best[1]))
    print(f"\nlog: {n / 2**20:.0f} MiB")
    for name, mbs, rss in rows:
        print(f"{name:28} {mbs:8.1f} MB/s   peak RSS {rss / 1024:.1f} MiB")
    wc, tool, awk = rows[0][1], rows[1][1], rows[2][1]
    print(f"\nmxgate-sessions: {tool / wc:.2f} of wc -l, {tool / awk:.1f}x gawk (page-cached)")
    cold(log, n)
    os.unlink(log)


def cold(log, n):
    """the same file read from the disk: the page cache dropped before each
    run (as root; otherwise skipped). A year of logs is rarely all cached."""
    try:
        drop = open("/proc/sys/vm/drop_caches", "w")
    except OSError:
        print("(from disk: not measured, /proc/sys/vm/drop_caches needs root)")
        return
    speeds = {}
    for name, cmd in (("wc -l", ["wc", "-l"]), ("mxgate-sessions --summary", [os.path.join(BIN, "mxgate-sessions"),
                                                                               "--summary"])):
        subprocess.run(["sync"])
        drop.write("1\n")
        drop.flush()
        dt, rss = timed(cmd, log)
        speeds[name] = n / dt / 1e6
        print(f"{name:28} {speeds[name]:8.1f} MB/s   from disk")
    drop.close()
    print(f"mxgate-sessions: {speeds['mxgate-sessions --summary'] / speeds['wc -l']:.2f} of wc -l (from disk)")


if __name__ == "__main__":
    main()
