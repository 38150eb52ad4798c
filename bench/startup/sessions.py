#!/usr/bin/python3
"""bench/startup/sessions.py [-r ROUNDS] [-n SESSIONS] PROGRAM...: connect,
EHLO, QUIT sessions per second of each PROGRAM under the same tcpserver
(-c 400, as bench/run.py runs them), sessload with 20 clients, the
programs taken in turn in every round, and each one's median; beside them
a trivial static program answering 220, 250 and 221, the floor of what a
program exec'd per connection can do (docs/bench.md, "Start-up under
tcpserver"). Each PROGRAM runs with MXGATE_HOME set to a private home
for bench.test (with a certificate, so EHLO offers STARTTLS) and
RELAYCLIENT set; a program that is no mxgate (notqmail's qmail-smtpd)
ignores both. Ports 31000 to 31999. A benchmark, never a test.
"""
import os, statistics, subprocess, sys, tempfile

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "it"))
sys.path.insert(0, os.path.join(TOP, "bench"))
import harness as h  # noqa: E402

TRIVIAL = r'''
#include <string.h>
#include <unistd.h>
static char buf[512];
static void say(const char *s) { if (write(1, s, strlen(s)) < 0) _exit(1); }
int main(void)
{
  say("220 trivial ESMTP\r\n");
  if (read(0, buf, sizeof buf) <= 0) return 0;
  say("250 trivial\r\n");
  if (read(0, buf, sizeof buf) <= 0) return 0;
  say("221 trivial\r\n");
  return 0;
}
'''


def main():
    args = sys.argv[1:]
    rounds, count = 5, 3000
    while args and args[0] in ("-r", "-n"):
        if args[0] == "-r":
            rounds = int(args[1])
        else:
            count = int(args[1])
        args = args[2:]
    work = tempfile.mkdtemp(prefix="mxgate-sessions-")
    sessload = os.path.join(work, "sessload")
    subprocess.run(["cc", "-O2", "-o", sessload, os.path.join(TOP, "bench", "sessload.c"), "-lpthread", "-lssl",
                    "-lcrypto"], check=True)
    trivial = os.path.join(work, "trivial-static")
    subprocess.run(["cc", "-O2", "-static", "-x", "c", "-o", trivial, "-"], input=TRIVIAL.encode(), check=True)
    home = h.Home(domains=("bench.test",), users=("u",))
    key, crt = home.path("key.pem"), home.path("crt.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=mx.bench.test", "-keyout", key, "-out", crt], check=True, capture_output=True)
    home.write("servercert.pem", open(key).read() + open(crt).read(), mode=0o600)
    progs = [os.path.abspath(p) for p in args] + [trivial]
    servers = []
    try:
        for i, p in enumerate(progs):
            servers.append(h.Tcpserver([p], env={"MXGATE_HOME": home.dir, "RELAYCLIENT": ""},
                                       port=31400 + i, extra_args=["-c", "400"]))
        rates = {p: [] for p in progs}
        for r in range(rounds):
            for p, srv in zip(progs, servers):
                out = subprocess.run([sessload, "-c", "20", "-n", str(count), "127.0.0.1", str(srv.port)],
                                     capture_output=True, text=True).stdout
                rate = float(out.split("rate")[1]) if "rate" in out else 0.0
                rates[p].append(rate)
                print(f"round {r + 1} {p}: {out.strip()}", flush=True)
        with open("/proc/loadavg") as fh:
            load = fh.read().split()[:3]
        print(f"load average at the end: {' '.join(load)}")
        for p in progs:
            v = sorted(rates[p])
            print(f"{p}: median {statistics.median(v):.0f}/s (rounds: {', '.join(f'{x:.0f}' for x in rates[p])})")
    finally:
        for srv in servers:
            srv.stop()
        home.cleanup()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
