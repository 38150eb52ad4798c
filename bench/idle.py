#!/usr/bin/python3
"""bench/idle.py -- a legitimate client's wait under idle and slowloris clients.

Starts mxgate-listen (bin/, or $MXGATE_BIN) on a free loopback port with a
private $MXGATE_HOME, then for each scenario opens the hostile connections
from 200 source addresses (127.0.0.2 .. 127.0.0.201) and measures, several
times, how long a legitimate client from 127.0.0.1 waits for its 220 and
for the 250 after its message:

  idle      N connections that read the greeting and never say a word
  slowloris S connections that send their first command a byte a second

  usage: bench/idle.py [--idle 2000] [--slow 200] [--workers 4:64] [--tries 5]

It prints one line per scenario: the hostile connections, the greeted ones
among them, the listener's workers, and the legitimate client's waits
(median and worst, in ms). Run it under `nice -n 19` on a shared machine.
"""
import argparse, os, resource, socket, statistics, subprocess, sys, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "it"))
import harness as h  # noqa: E402


def hostile(port, n):
    out = []
    for i in range(n):
        s = socket.socket()
        s.bind((f"127.0.0.{2 + i % 200}", 0))
        s.settimeout(30)
        s.connect(("127.0.0.1", port))
        out.append(s)
    greeted = 0
    for s in out:
        try:
            if s.recv(512).startswith(b"220"):
                greeted += 1
        except OSError:
            pass
    return out, greeted


def legit(port):
    t0 = time.monotonic()
    c = h.Client(port, timeout=120)
    code, _ = c.reply()
    t220 = time.monotonic() - t0
    c.cmd("EHLO legit.test")
    c.cmd("MAIL FROM:<bench@remote.test>")
    c.cmd("RCPT TO:<alice@example.test>")
    c.cmd("DATA")
    code2, _ = c.cmd("Subject: bench\r\n\r\nhello\r\n.")
    t250 = time.monotonic() - t0
    c.cmd("QUIT")
    c.close()
    return code, code2, t220, t250


def workers(srv):
    r = subprocess.run(["pgrep", "-P", str(srv.proc.pid)], capture_output=True, text=True)
    return len(r.stdout.split()) - 1                           # less the committer


def report(name, n, greeted, srv, runs):
    t220 = [r[2] * 1000 for r in runs]
    t250 = [r[3] * 1000 for r in runs]
    codes = sorted({(r[0], r[1]) for r in runs})
    print(f"{name:10s} hostile {n:5d} greeted {greeted:5d} workers {workers(srv):3d}  "
          f"220 after {statistics.median(t220):8.1f} ms (worst {max(t220):8.1f})  "
          f"250 after {statistics.median(t250):8.1f} ms (worst {max(t250):8.1f})  codes {codes}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--slow", type=int, default=200)
    ap.add_argument("--workers", default="4:64")
    ap.add_argument("--tries", type=int, default=5)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers=a.workers)
    try:
        conns, greeted = hostile(srv.port, a.idle)
        report("idle", a.idle, greeted, srv, [legit(srv.port) for _ in range(a.tries)])
        for s in conns:
            s.close()
        time.sleep(1)
        conns, greeted = hostile(srv.port, a.slow)
        stop = threading.Event()

        def dribble():
            for b in b"EHLO slow.test":
                for s in conns:
                    try:
                        s.send(bytes([b]))
                    except OSError:
                        pass
                if stop.wait(1):
                    return
        t = threading.Thread(target=dribble, daemon=True)
        t.start()
        report("slowloris", a.slow, greeted, srv, [legit(srv.port) for _ in range(a.tries)])
        stop.set()
        for s in conns:
            s.close()
    finally:
        srv.stop(); home.cleanup()


if __name__ == "__main__":
    main()
