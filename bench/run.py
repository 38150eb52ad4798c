#!/usr/bin/python3
"""make bench: mxgate against Postfix on this machine, in one run.

All servers run at once; each figure is measured in three rounds that
take the servers in turn, and its median is printed with its ratio to
Postfix (every round's figures are printed too). Servers: Postfix (private
instance, bench/postfix.sh; queue files fsync'd, then discarded),
OpenSMTPD (private instance, bench/opensmtpd.sh; its spool on a
sync,dirsync file system since it never fsyncs, then discarded),
notqmail's qmail-smtpd + qmail-queue under tcpserver when
../shared/anchors/notqmail.sh is there (built from source into a private
queue; messages pile up in it, as no qmail-send runs), mxgate-smtpd under
tcpserver and mxgate-listen (the embedded queue in the session's process:
local recipients into their Maildirs, the others into a queue entry,
fsync'd or group-committed).
Figures, each a path a mail administrator's clients take, with 20
concurrent smtp-source sessions, one message per connection unless "-d"
(all on one connection per client): a relay recipient (the client is a
relay client: submission or a backup MX) at 1 KiB and 100 KiB, one local
recipient at 1 KiB and 100 KiB, three local recipients at 1 KiB;
connect-EHLO-QUIT and connect-EHLO-STARTTLS-EHLO-QUIT sessions/s
(bench/sessload.c), and proportional set size (Pss) per idle session.
BENCH_ONLY=a,b limits the servers to those names (postfix always runs).
This is a benchmark, never a test: nothing here asserts a time.
"""
import glob, os, shutil, signal, subprocess, sys, tempfile, time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("MXGATE_BIN", os.path.join(TOP, "bin"))
sys.path.insert(0, os.path.join(TOP, "tests", "it"))
import harness as h  # noqa: E402

SESSLOAD = os.path.join(TOP, "build", "bench", "sessload")


def build_tools():
    os.makedirs(os.path.dirname(SESSLOAD), exist_ok=True)
    subprocess.run(["cc", "-O2", "-o", SESSLOAD, os.path.join(TOP, "bench", "sessload.c"), "-lpthread", "-lssl",
                    "-lcrypto"], check=True)


def bench_home():
    """a home for bench.test with a certificate (RSA 2048, as Postfix gets);
    users u, and 2u, 3u for smtp-source -r 3 (which sends to 3u, 2u, u)"""
    home = h.Home(domains=("bench.test",), users=("u", "2u", "3u"))
    key, crt = home.path("key.pem"), home.path("crt.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=mx.bench.test", "-keyout", key, "-out", crt], check=True, capture_output=True)
    home.write("servercert.pem", open(key).read() + open(crt).read(), mode=0o600)
    return home


def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def pgrep(pattern):
    r = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split()]


class Postfix:
    """bench/postfix.sh's instance; with relay ("IP:PORT", bench/send.py) it
    relays every message there and holds it until unhold and flush"""
    name = "postfix"

    def __init__(self, relay=None):
        self.dir = tempfile.mkdtemp(prefix="mxgate-bench-pf-")
        self.port = h.free_port()
        subprocess.run(["sh", os.path.join(TOP, "bench", "postfix.sh"), "start", self.dir, str(self.port)] +
                       ([relay] if relay else []), check=True)

    def ctl(self, cmd):
        subprocess.run(["sh", os.path.join(TOP, "bench", "postfix.sh"), cmd, self.dir], check=True)

    def session_pids(self):
        return pgrep(f"^smtpd -n {self.port} ")

    def stop(self):
        subprocess.run(["sh", os.path.join(TOP, "bench", "postfix.sh"), "stop", self.dir, str(self.port)])
        time.sleep(0.5)
        shutil.rmtree(self.dir, ignore_errors=True)


class OpenSMTPD:
    name = "opensmtpd"
    mode = []
    slow = 10           # a tenth of the messages sent one per connection: see bench/opensmtpd.sh
    # its sessions live in one process ("pony express") beside six others:
    # the memory an idle session costs is what its processes grow by
    marginal = True

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mxgate-bench-osd-")
        self.port = h.free_port()
        subprocess.run(["sh", os.path.join(TOP, "bench", "opensmtpd.sh"), "start", self.dir, str(self.port)] + self.mode,
                       check=True)
        self.pid = int(open(os.path.join(self.dir, "pid")).read())

    def session_pids(self):
        r = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True)
        return [self.pid] + [int(p) for p in r.stdout.split()]

    def stop(self):
        subprocess.run(["sh", os.path.join(TOP, "bench", "opensmtpd.sh"), "stop", self.dir, str(self.port)])
        time.sleep(0.5)
        shutil.rmtree(self.dir, ignore_errors=True)


class OpenSMTPDAsShipped(OpenSMTPD):
    """for reference: its queue is never fsync'd, so its 250 is less durable"""
    name = "opensmtpd, no fsync"
    mode = ["nosync"]


ANCHOR = os.path.join(TOP, "..", "shared", "anchors", "notqmail.sh")


class Notqmail:
    """notqmail's qmail-smtpd + qmail-queue under tcpserver, RELAYCLIENT set
    (so every recipient is accepted and queued; nothing delivers them)"""
    name = "notqmail/tcpserver"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mxgate-bench-nq-")
        os.chmod(self.dir, 0o755)
        subprocess.run(["sh", ANCHOR, self.dir], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(self.dir, "control", "rcpthosts"), "w") as fh:
            fh.write("bench.test\n")
        self.srv = h.Tcpserver([os.path.join(self.dir, "bin", "qmail-smtpd")], env={"RELAYCLIENT": ""},
                               extra_args=["-c", "400"])
        self.port = self.srv.port

    def session_pids(self):
        return pgrep(f"^{os.path.join(self.dir, 'bin', 'qmail-smtpd')}")

    def stop(self):
        self.srv.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class MxgateTcpserver:
    name = "mxgate/tcpserver"

    def __init__(self):
        self.home = bench_home()
        self.srv = h.Tcpserver([os.path.join(BIN, "mxgate-smtpd")],
                               env={"MXGATE_HOME": self.home.dir, "RELAYCLIENT": ""}, extra_args=["-c", "400"])
        self.port = self.srv.port

    def session_pids(self):
        return pgrep(f"^{os.path.join(BIN, 'mxgate-smtpd')}")

    def stop(self):
        self.srv.stop()
        self.home.cleanup()


class MxgateListen:
    name = "mxgate/listen"

    def __init__(self):
        self.home = bench_home()
        self.srv = h.Listener(env={"MXGATE_HOME": self.home.dir, "RELAYCLIENT": ""}, workers="24:256",
                              options=["-n", "100000"])
        self.port = self.srv.port

    def session_pids(self):
        # the workers serving sessions (the listener parent is not per-session memory)
        return [p for p in pgrep(f"^{os.path.join(BIN, 'mxgate-listen')}") if p != self.srv.proc.pid]

    def stop(self):
        self.srv.stop()
        self.home.cleanup()


def messages_per_s(port, size, count, keep_connection=False, to="u@bench.test", rcpts=1):
    """smtp-source: count messages of size bytes to `to` (with rcpts > 1,
    to 1u@..., 2u@..., as smtp-source -r numbers them), 20 at a time"""
    t0 = time.monotonic()
    subprocess.run(["smtp-source"] + (["-d"] if keep_connection else []) +
                   ["-s", "20", "-m", str(count), "-l", str(size), "-f", "bench@client.test",
                    "-t", to, "-r", str(rcpts), f"127.0.0.1:{port}"], check=True)
    return count / (time.monotonic() - t0)


def sessions_per_s(port, count, tls=False):
    r = subprocess.run([SESSLOAD] + (["-T"] if tls else []) + ["-c", "20", "-n", str(count), "127.0.0.1", str(port)],
                       capture_output=True, text=True)
    if "rate" not in r.stdout:
        return None                     # a server that cannot do it at all
    done, failed = int(r.stdout.split()[1]), int(r.stdout.split()[3])
    if failed:
        print(f"  {failed} of {done + failed} sessions failed (no answer within 10 s, or refused)", flush=True)
    if not done:
        return None                     # e.g. OpenSMTPD's STARTTLS here: no handshake succeeds
    return float(r.stdout.split("rate")[1])


def pss_per_idle_session(server, n=50):
    base = pss_kib(server.session_pids()) if getattr(server, "marginal", False) else 0
    p = subprocess.Popen([SESSLOAD, "-i", str(n), "-t", "4", "127.0.0.1", str(server.port)],
                         stdout=subprocess.PIPE, text=True)
    p.stdout.readline()                     # "idle N": all sessions are open
    time.sleep(0.5)
    pids = server.session_pids()
    kib = pss_kib(pids) - base
    p.wait()
    return kib / max(1, n)


def listen_overflows():
    """the kernel's count of connections dropped because a listen queue was full"""
    with open("/proc/net/netstat") as fh:
        rows = [line.split() for line in fh if line.startswith("TcpExt:")]
    return int(rows[1][rows[0].index("ListenOverflows")])


ROUNDS = 3


def main():
    """every server started at once; each figure measured in ROUNDS rounds,
    a round taking the servers in turn, and the median kept: this machine's
    disk and CPU vary by tens of percent over minutes, and a server measured
    only early or only late would carry that drift in its ratio"""
    build_tools()
    quick = os.environ.get("BENCH_QUICK")
    n1, n100, ns = (400, 100, 2000) if quick else (2000, 500, 10000)
    # (figure, measure(server, count), count); a server that is "slow" gets a
    # tenth of the count for the figures that open a connection per message
    # (OpenSMTPD's are paced by its listen queue, bench/opensmtpd.sh)
    relay = "u@relay.example"
    figures = [
        ("relay 1 KiB msg/s", lambda srv, n: messages_per_s(srv.port, 1024, n, to=relay), n1),
        ("relay 100 KiB msg/s", lambda srv, n: messages_per_s(srv.port, 102400, n, to=relay), n100),
        ("local 1 KiB msg/s", lambda srv, n: messages_per_s(srv.port, 1024, n), n1),
        ("local 100 KiB msg/s", lambda srv, n: messages_per_s(srv.port, 102400, n), n100),
        ("3 local 1 KiB msg/s", lambda srv, n: messages_per_s(srv.port, 1024, n, rcpts=3), n1),
        ("relay 1 KiB, -d msg/s", lambda srv, n: messages_per_s(srv.port, 1024, n, True, to=relay), None),
        ("local 1 KiB, -d msg/s", lambda srv, n: messages_per_s(srv.port, 1024, n, True), None),
        ("sessions/s", lambda srv, n: sessions_per_s(srv.port, n), None),
        ("STARTTLS sessions/s", lambda srv, n: sessions_per_s(srv.port, n, tls=True), None),
    ]
    counts = {"relay 1 KiB, -d msg/s": n1, "local 1 KiB, -d msg/s": n1, "sessions/s": ns,
              "STARTTLS sessions/s": ns // 5}
    servers = []
    try:
        only = os.environ.get("BENCH_ONLY", "").split(",")
        for cls in (Postfix, OpenSMTPD, OpenSMTPDAsShipped, Notqmail, MxgateTcpserver, MxgateListen):
            if cls is Notqmail and not os.path.exists(ANCHOR):
                print("  notqmail: skipped, no ../shared/anchors/notqmail.sh here", flush=True)
                continue
            if only != [""] and cls is not Postfix and cls.name not in only:
                continue
            servers.append(cls())
        results = {srv.name: {} for srv in servers}
        pss = {srv.name: pss_per_idle_session(srv) for srv in servers}   # first: pools not yet grown by the load
        overflows = {srv.name: 0 for srv in servers}
        for srv in servers:
            messages_per_s(srv.port, 1024, 100 // getattr(srv, "slow", 1))          # warm up
        for fig, measure, scaled in figures:
            got = {srv.name: [] for srv in servers}
            for _ in range(ROUNDS):
                for srv in servers:
                    n = scaled // getattr(srv, "slow", 1) if scaled else counts[fig]
                    before = listen_overflows()
                    got[srv.name].append(measure(srv, n))
                    overflows[srv.name] += listen_overflows() - before
            for name, vals in got.items():
                vals = [v for v in vals if v is not None]
                results[name][fig] = sorted(vals)[len(vals) // 2] if vals else None
            print(f"  {fig}: " + ", ".join(f"{n} " + "/".join("-" if v is None else f"{v:.0f}" for v in got[n])
                                          for n in got), flush=True)
        for name in results:
            results[name]["Pss KiB/idle session"] = pss[name]
            if overflows[name]:   # each one a SYN dropped and sent again a second later: slow connects
                print(f"  {name}: {overflows[name]} connections found its listen queue full", flush=True)
    finally:
        for srv in servers:
            srv.stop()
    base = results["postfix"]
    print(f"\nmedians of {ROUNDS} rounds")
    print(f"{'figure':24} " + " ".join(f"{k:>20}" for k in results))
    for fig in base:
        row = " ".join(f"{results[k][fig]:>12.0f} ({results[k][fig] / base[fig]:4.2f}x)" if results[k][fig] is not None
                       else f"{'n/a':>20}" for k in results)
        print(f"{fig:24} {row}")
    print("\nratios are to Postfix on the same machine in the same run; for Pss lower is better")


if __name__ == "__main__":
    main()
