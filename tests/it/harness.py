"""Shared parts of the integration tests: real programs, real partners.

- Home: a private $MXGATE_HOME (control files, Maildirs, queue) in a temp dir.
- Tcpserver: runs a program under the real `tcpserver -v -R -H -l0` on a free
  127.0.0.1 port, in its own process group (stop() kills the group, children
  included), with its stderr (the log) captured to a file.
- Client: a raw SMTP/POP3 line client for exact transcripts and hostile input;
  tests also use smtplib, swaks and curl against the same servers.
- wait_for / log helpers: find exact log lines, with the pid tcpserver reported.
"""
import os, re, shutil, signal, socket, subprocess, tempfile, time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("MXGATE_BIN") or os.path.join(TOP, "bin")


def prog(name):
    return os.path.join(BIN, name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout=10.0, step=0.02, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        r = cond()
        if r:
            return r
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


class Home:
    """A private mxgate home: control/, users' Maildirs, the queue."""

    def __init__(self, domains=("example.test",), users=("alice", "bob"), me="mx.example.test"):
        self.dir = tempfile.mkdtemp(prefix="mxgate-it-")
        self.control = os.path.join(self.dir, "control")
        os.makedirs(self.control)
        self.write("me", me + "\n")
        self.write("rcpthosts", "".join(d + "\n" for d in domains))
        self.write("locals", "".join(d + "\n" for d in domains))
        self.maildirs = {}
        for u in users:
            md = os.path.join(self.dir, "maildirs", u, "Maildir")
            for sub in ("tmp", "new", "cur"):
                os.makedirs(os.path.join(md, sub))
            self.maildirs[u] = md
        # delivery map for mxgate-queue: local part@domain -> Maildir
        self.write("maildirs", "".join(
            f"{u}@{d}:{self.maildirs[u]}\n" for d in domains for u in users))

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def write(self, name, content, mode=0o644):
        p = os.path.join(self.control, name)
        with open(p, "w" if isinstance(content, str) else "wb") as fh:
            fh.write(content)
        os.chmod(p, mode)
        return p

    def delivered(self, user):
        """messages (bytes) in user's Maildir new/ and cur/"""
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(self.maildirs[user], sub)
            for f in sorted(os.listdir(d)):
                with open(os.path.join(d, f), "rb") as fh:
                    out.append(fh.read())
        return out

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Tmpfs:
    """a small tmpfs mounted at path (root only); .ok False when it cannot be mounted"""

    def __init__(self, path, size="256k", mode=None):
        self.path = path
        os.makedirs(path, exist_ok=True)
        opts = f"size={size}" + (f",mode={mode}" if mode else "")
        self.ok = os.getuid() == 0 and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", path], capture_output=True).returncode == 0

    def umount(self):
        if self.ok:
            subprocess.run(["umount", self.path])


def tcprules(path, rules_text):
    """compile tcprules text into path (a cdb) with the real tcprules"""
    subprocess.run(["tcprules", path, path + ".tmp"], input=rules_text.encode(), check=True)
    return path


class Tcpserver:
    """argv under real tcpserver on 127.0.0.1:port, log = tcpserver's + program's stderr"""

    def __init__(self, argv, env=None, rules=None, port=None, wrapper=None, extra_args=()):
        self.port = port or free_port()
        self.logpath = tempfile.mktemp(prefix="mxgate-log-")
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        e.update(env or {})
        cmd = ["tcpserver", "-v", "-R", "-H", "-l0", "-c", "40"] + list(extra_args)
        if rules:
            cmd += ["-x", rules]
        cmd += ["127.0.0.1", str(self.port)] + (wrapper or []) + list(argv)
        self.logfh = open(self.logpath, "wb")
        self.proc = subprocess.Popen(cmd, env=e, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.logfh, start_new_session=True)
        wait_for(self._ready, what=f"tcpserver on {self.port}")

    def _ready(self):
        """tcpserver -v says "status: 0/N" once it listens; no probe
        connection, so every session in the log is one the test made"""
        if self.proc.poll() is not None:
            raise AssertionError("tcpserver exited: " + self.log())
        return "tcpserver: status: 0/" in self.log()

    def log(self):
        with open(self.logpath, "rb") as fh:
            return fh.read().decode("utf-8", "replace")

    def lines(self, prefix=""):
        return [l for l in self.log().splitlines() if l.startswith(prefix)]

    def pids(self):
        """pids tcpserver reported, in connection order"""
        return [int(m.group(1)) for m in re.finditer(r"^tcpserver: pid (\d+) from", self.log(), re.M)]

    def wait_end(self, pid, timeout=10):
        wait_for(lambda: f"tcpserver: end {pid} status" in self.log(), timeout, what=f"end of {pid}")

    def wait_line(self, text, timeout=10):
        try:
            wait_for(lambda: text in self.log(), timeout, what=repr(text))
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- log ---\n{self.log()[-3000:]}") from None

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        # children are in the same group; make sure nothing outlives the test
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.logfh.close()
        try:
            os.unlink(self.logpath)
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


class Listener(Tcpserver):
    """mxgate-listen (mxgate's own pre-forked listener) on 127.0.0.1:port,
    with the same interface as Tcpserver: its log has the same lines"""

    def __init__(self, args=(), env=None, rules=None, port=None, workers="2:8", options=()):
        self.port = port or free_port()
        self.logpath = tempfile.mktemp(prefix="mxgate-log-")
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        e.update(env or {})
        cmd = [prog("mxgate-listen"), "-w", workers] + list(options)
        if rules:
            cmd += ["-x", rules]
        cmd += [f"127.0.0.1:{self.port}", "--"] + list(args)
        self.logfh = open(self.logpath, "wb")
        self.proc = subprocess.Popen(cmd, env=e, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.logfh, start_new_session=True)
        wait_for(self._ready, what=f"mxgate-listen on {self.port}")


def smtpd(home, env=None, args=(), rules=None, **kw):
    """mxgate-smtpd with home as $MXGATE_HOME: under tcpserver, or, when
    MXGATE_MODE=listen, under mxgate-listen, so a battery runs in both modes"""
    e = {"MXGATE_HOME": home.dir}
    e.update(env or {})
    if os.environ.get("MXGATE_MODE") == "listen" and not kw.get("wrapper"):
        kw.pop("extra_args", None)
        return Listener(args=args, env=e, rules=rules, **kw)
    return Tcpserver([prog("mxgate-smtpd")] + list(args), env=e, rules=rules, **kw)


class Client:
    """a raw line client: exact bytes out, replies in"""

    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def readline(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; buffer=%r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """one SMTP reply (all its lines); returns (code, [lines])"""
        lines = []
        while True:
            l = self.readline()
            lines.append(l)
            if len(l) < 4 or l[3] != "-":
                return int(l[:3]), lines

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def closed(self, timeout=5):
        """True when the server closed the connection"""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True
        except OSError:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Dnsmasq:
    """a real DNS server (dnsmasq) on 127.0.0.1:free port; args are its
    record options (--host-record=..., --mx-host=..., --txt-record=...);
    every other name under .test is NXDOMAIN; forward maps a zone to
    another server ("zone": port), e.g. a responder that fails on purpose"""

    def __init__(self, records, forward=None):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mxgate-dns-")
        cmd = ["dnsmasq", "--no-daemon", f"--port={self.port}", "--listen-address=127.0.0.1",
               "--bind-interfaces", "--no-resolv", "--no-hosts", "--local=/test/", "--no-negcache",
               f"--pid-file={self.dir}/pid"]
        for zone, port in (forward or {}).items():
            cmd.append(f"--server=/{zone}/127.0.0.1#{port}")
        cmd += list(records)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._up, what="dnsmasq")
        self.spec = f"127.0.0.1#{self.port}"      # for DNSCACHEIP

    def _up(self):
        if self.proc.poll() is not None:
            raise AssertionError("dnsmasq exited")
        r = subprocess.run(["dig", "+short", "+time=1", "+tries=1", "-p", str(self.port), "@127.0.0.1",
                            "version.bind", "CH", "TXT"], capture_output=True, text=True)
        return r.returncode == 0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
