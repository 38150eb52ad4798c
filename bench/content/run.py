#!/usr/bin/python3
"""bench/content: DATA throughput (MB/s) of mxgate-smtpd with the content
checks off and on, measured in one run, configurations interleaved round
by round so that machine noise hits all of them alike.

Partners are the real ones the tests use (tests/it/test_content_lib.py):
clamd with an EICAR-only database and spamd -L on loopback. The queue
program is a sink (reads message and envelope, keeps nothing), the same
for every configuration, so the figures show what the checks cost. Each
message is timed from the end of the DATA command's 354 to the reply
after the final dot, i.e. receiving, scanning and queueing it.
Usage: bench/content/run.py [rounds]   (MXGATE_BIN selects the binaries)
This is a benchmark, never a test: nothing here asserts a time.
"""
import base64, os, random, sys, time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "it"))
import harness as h  # noqa: E402
import test_content_lib as t  # noqa: E402


def sink_queue(home):
    path = home.path("sinkqueue")
    with open(path, "w") as fh:
        fh.write("#!/bin/sh\ncat > /dev/null && cat <&1 > /dev/null\n")
    os.chmod(path, 0o755)
    return path


def configs(home, cl, sd):
    t.make_cdb(home, "badmimetypes", [t.EXE_TYPE])
    t.make_cdb(home, "badloadertypes", ["MxgQz"])
    mime = {"BADMIMETYPE": "!", "BADLOADERTYPE": "M"}
    clamd = {"CLAMD": cl.sock}
    spamd = {"SPAMD": f"127.0.0.1#{sd.port}", "SPAMHEADERS": ""}
    qhpsi = {"QHPSI": f"clamscan --no-summary -d {cl.db}"}
    return [("off", {}), ("mime", mime), ("clamd", clamd), ("spamd", spamd), ("qhpsi", qhpsi),
            ("all", dict(mime, **clamd, **spamd, **qhpsi))]


def message(size, seed):
    data = random.Random(seed).randbytes(size * 3 // 4)
    return t.wire(t.mime_message([("Content-Type: text/plain", "benchmark message"), t.b64_part(data, "d.bin")]))


def one(port, wire):
    """seconds from 354 to the reply after the dot; the reply code"""
    c = h.Client(port, timeout=600)
    try:
        c.reply()
        c.cmd("EHLO bench.test")
        c.cmd("MAIL FROM:<sender@remote.test>")
        c.cmd("RCPT TO:<alice@example.test>")
        code, _ = c.cmd("DATA")
        assert code == 354
        t0 = time.perf_counter()
        c.send(wire)
        code, lines = c.reply()
        dt = time.perf_counter() - t0
        c.cmd("QUIT")
        return dt, code
    finally:
        c.close()


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    cl, sd = t.Clamd.shared(), t.Spamd.shared()
    home = h.Home()
    servers = []
    try:
        queue = sink_queue(home)
        for name, env in configs(home, cl, sd):
            servers.append((name, h.smtpd(home, env=dict(env, QMAILQUEUE=queue))))
        sizes = [("100 KiB", message(100 * 1024, 1), 20), ("10 MiB", message(10 * 1024 * 1024, 2), 2)]
        totals = {(n, s): [0.0, 0] for n, _ in servers for s, _, _ in sizes}
        for _ in range(rounds):
            for label, wire, count in sizes:
                for name, srv in servers:
                    for _ in range(count):
                        dt, code = one(srv.port, wire)
                        if code != 250:
                            raise SystemExit(f"{name}: reply {code}")
                        totals[(name, label)][0] += dt
                        totals[(name, label)][1] += len(wire)
        print("DATA throughput, MB/s (10^6 bytes/s), %d rounds; sink queue; clamd + spamd on loopback" % rounds)
        print("%-8s %12s %12s" % ("checks", *[s for s, _, _ in sizes]))
        for name, _ in servers:
            row = [totals[(name, s)][1] / totals[(name, s)][0] / 1e6 for s, _, _ in sizes]
            print("%-8s %12.1f %12.1f" % (name, *row))
        print("(spamd skips messages over SPAMD_MAXBYTES, default 512000 bytes, as spamc does)")
    finally:
        for _, srv in servers:
            srv.stop()
        home.cleanup()


if __name__ == "__main__":
    main()
