#!/usr/bin/python3
"""bench/startup/order.py [BINARY]: writes src/smtpd/startup.order, the
symbols (functions and data) mxgate-smtpd touches in an EHLO-QUIT session
and then in a session with one message, in the order first touched.

The static programs are linked with it (lld's --symbol-ordering-file, see
the Makefile): the code and data a start runs through then sit together
at the front of their sections instead of spread over the 5 MB of text,
and a start faults in 6 windows of text rather than 18 (docs/bench.md,
"Start-up under tcpserver"). A stale list costs speed, never correctness:
names no longer in the program are skipped. Run it after changing what a
session does at start, with the program built (default bin/mxgate-smtpd).

valgrind's lackey traces every access; valgrind's CPU is not the host's,
so for each string and memory function found, the variants glibc picks
on a CPU with AVX2 or AVX-512 (avx2, evex, avx512) are listed beside it, and the
CPU-model paths of glibc's start (handle_intel, handle_amd, ...) too.
"""
import bisect, os, re, subprocess, sys, tempfile

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(TOP, "src", "smtpd", "startup.order")
SESSIONS = {
    "ehlo": "EHLO client.test\r\nQUIT\r\n",
    "message": "EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<u@bench.test>\r\nDATA\r\n"
               "Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n",
}


def symbols(binary):
    syms = []
    nm = subprocess.run(["nm", "-n", "-S", binary], capture_output=True, text=True, check=True).stdout
    for line in nm.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "tTdDbBrRWVi":
            syms.append((int(f[0], 16), int(f[1], 16), f[3]))
    syms.sort()
    # lld matches a name in every object that defines it, local symbols
    # too: a name defined more than once (a static "cache.2", "table")
    # would bring all its namesakes' sections to the front
    count = {}
    for s in syms:
        count[s[2]] = count.get(s[2], 0) + 1
    return [s for s in syms if count[s[2]] == 1]


def session_env(home):
    return {"PATH": "/usr/bin:/bin", "MXGATE_HOME": home, "PROTO": "TCP", "TCPLOCALIP": "127.0.0.1",
            "TCPLOCALPORT": "25", "TCPLOCALHOST": "mx.bench.test", "TCPREMOTEIP": "127.0.0.1",
            "TCPREMOTEPORT": "40000", "RELAYCLIENT": ""}


def code_traced(steptrace, binary, home, text, work):
    """the instructions one session runs on this CPU, in order (steptrace.c)"""
    inp = os.path.join(work, "input")
    with open(inp, "w") as fh:
        fh.write(text)
    out = subprocess.run([steptrace, inp, binary], env=session_env(home), capture_output=True, text=True,
                         check=True).stdout
    return [int(a, 16) for a in out.split()]


def data_traced(binary, home, text):
    """the data one session reads and writes, in order (valgrind's lackey)"""
    with tempfile.NamedTemporaryFile("w+", suffix=".lackey") as log:
        subprocess.run(["valgrind", "--tool=lackey", "--trace-mem=yes", "--log-file=" + log.name, binary],
                       input=text.encode(), env=session_env(home), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        for line in open(log.name):
            m = re.match(r"^ [LSM] ([0-9a-f]{8,}),", line)
            if m:
                yield int(m.group(1), 16)


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "bin", "mxgate-smtpd")
    syms = symbols(binary)
    starts = [s[0] for s in syms]
    names = [s[2] for s in syms]
    names.sort()
    order, seen = [], set()

    def add(name):
        if name not in seen:
            seen.add(name)
            order.append(name)

    with tempfile.TemporaryDirectory(prefix="mxgate-order-") as work:
        home = os.path.join(work, "home")
        md = os.path.join(home, "maildirs", "u", "Maildir")
        for d in ("control", "queue", md + "/tmp", md + "/new", md + "/cur"):
            os.makedirs(os.path.join(home, d) if not d.startswith("/") else d, exist_ok=True)
        files = {"me": "mx.bench.test\n", "rcpthosts": "bench.test\n", "locals": "bench.test\n",
                 "maildirs": f"u@bench.test:{md}\n"}
        for name, text in files.items():
            with open(os.path.join(home, "control", name), "w") as fh:
                fh.write(text)
        cert = os.path.join(home, "control", "servercert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                        "/CN=mx.bench.test", "-keyout", cert + ".key", "-out", cert + ".crt"],
                       check=True, capture_output=True)
        with open(cert, "w") as fh:
            fh.write(open(cert + ".key").read() + open(cert + ".crt").read())
        os.chmod(cert, 0o600)
        steptrace = os.path.join(work, "steptrace")
        subprocess.run(["cc", "-O2", "-o", steptrace, os.path.join(TOP, "bench", "startup", "steptrace.c")],
                       check=True)

        def note(addresses):
            for a in addresses:
                i = bisect.bisect_right(starts, a) - 1
                if i >= 0 and a < syms[i][0] + max(syms[i][1], 1):
                    add(syms[i][2])
        for text in SESSIONS.values():       # code first, then data: each in its own sections
            note(code_traced(steptrace, binary, home, text, work))
        for text in SESSIONS.values():
            note(data_traced(binary, home, text))
    out, have = [], set()
    for name in order + ["init_cpu_features", "update_active", "handle_amd", "handle_intel", "handle_zhaoxin",
                         "get_common_cache_info", "intel_check_word"]:
        for n in [name] + [s for s in names if s.startswith(name + ".")]:      # name.constprop.0 and the like
            if n not in have:
                have.add(n)
                out.append(n)
    # last, the other CPUs' string functions: glibc picks the AVX2 ones
    # where AVX-512 is missing (older variants are left where they are)
    for name in list(out):
        m = re.match(r"(__\w+?)_(avx2|avx|evex|avx512|sse2|sse4_2|ssse3)", name)
        if m:
            for s in names:
                if s.startswith(m.group(1) + "_") and re.search(r"_(avx|evex)", s) and s not in have:
                    have.add(s)
                    out.append(s)
    # objects of a page or more last, so that the small ones touched
    # around them share pages (the session's 26 KB would split them)
    size = {s[2]: s[1] for s in syms}
    out = [n for n in out if size.get(n, 0) < 4096] + [n for n in out if size.get(n, 0) >= 4096]
    with open(OUT, "w") as fh:
        fh.write("\n".join(out) + "\n")
    print(f"{OUT}: {len(out)} symbols")


if __name__ == "__main__":
    main()
