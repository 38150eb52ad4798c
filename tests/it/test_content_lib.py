"""Shared parts of the content-check tests (no tests here): the real clamd
and spamd started privately on loopback (once per test module, stopped by
PID at exit), a QMAILQUEUE stand-in that keeps what it is given, the cdbs,
test messages (EICAR, GTUBE, executables), and one SMTP transaction."""
import atexit, base64, os, shutil, signal, socket, subprocess, tempfile, threading
import harness as h

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
# the start of a PE executable: "MZ" header; base64 begins TVqQAAMAA
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(range(256)) * 4
EXE_TYPE = "TVqQAAMAA"

_lock = threading.Lock()


def _stop_at_exit(proc, tmpdir):
    def stop():
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(tmpdir, ignore_errors=True)
    atexit.register(stop)


def _listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class Clamd:
    """clamd with a database holding only EICAR signatures made here:
    an MD5 (.hdb) of the EICAR file and a body pattern (.ndb)"""
    _one = None

    @classmethod
    def shared(cls):
        with _lock:
            if cls._one is None:
                cls._one = cls()
            return cls._one

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mxgate-clamd-")
        self.db = os.path.join(self.dir, "db")
        os.makedirs(self.db)
        eicar = os.path.join(self.dir, "eicar.com")
        with open(eicar, "wb") as fh:
            fh.write(EICAR)
        with open(os.path.join(self.db, "test.hdb"), "wb") as fh:
            fh.write(subprocess.run(["sigtool", "--md5", eicar], check=True, capture_output=True).stdout)
        with open(os.path.join(self.db, "test.ndb"), "w") as fh:
            fh.write("Eicar-Test-Body:0:*:" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE".hex() + "\n")
        self.sock = os.path.join(self.dir, "clamd.sock")
        self.port = h.free_port()
        conf = os.path.join(self.dir, "clamd.conf")
        with open(conf, "w") as fh:
            fh.write(f"Foreground yes\nLocalSocket {self.sock}\nTCPSocket {self.port}\nTCPAddr 127.0.0.1\n"
                     f"DatabaseDirectory {self.db}\nLogFile {self.dir}/clamd.log\nUser root\n"
                     "StreamMaxLength 64M\nMaxThreads 4\n")
        self.proc = subprocess.Popen(["clamd", "-c", conf], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        _stop_at_exit(self.proc, self.dir)
        h.wait_for(lambda: self.proc.poll() is None and os.path.exists(self.sock) and _listening(self.port),
                   timeout=60, what="clamd")


class Spamd:
    """SpamAssassin's spamd on loopback, local tests only (-L)"""
    _one = None

    @classmethod
    def shared(cls):
        with _lock:
            if cls._one is None:
                cls._one = cls()
            return cls._one

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mxgate-spamd-")
        os.chmod(self.dir, 0o755)
        self.port = h.free_port()
        self.proc = subprocess.Popen(
            ["spamd", f"--listen=127.0.0.1:{self.port}", "--allowed-ips=127.0.0.1", "--max-children=2",
             "-L", "-u", "nobody", "-s", "stderr", f"--pidfile={self.dir}/pid"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "log"), "wb"),
            start_new_session=True, cwd=self.dir)
        _stop_at_exit(self.proc, self.dir)
        h.wait_for(lambda: self.proc.poll() is None and _listening(self.port), timeout=120, what="spamd")

    def score(self, message):
        """what spamc itself says of message: 'score/threshold'"""
        r = subprocess.run(["spamc", "-d", "127.0.0.1", "-p", str(self.port), "-c"], input=message,
                           capture_output=True, timeout=120)
        return r.stdout.decode().strip()


def queue_script(home):
    """a QMAILQUEUE program that keeps message and envelope in home/queue
    (only messages whose envelope arrived, i.e. that were accepted)"""
    q = home.path("queue")
    os.makedirs(q, exist_ok=True)
    path = home.path("fakequeue")
    with open(path, "w") as fh:
        fh.write("#!/bin/sh\n"
                 f"cat > {q}/tmp.$$ || exit 71\n"
                 f"cat <&1 > {q}/env.$$ || exit 71\n"
                 f"if [ -s {q}/env.$$ ]; then mv {q}/tmp.$$ {q}/msg.$$; else rm -f {q}/tmp.$$ {q}/env.$$; fi\n")
    os.chmod(path, 0o755)
    return path


def queued(home):
    """the messages the queue program kept (bytes, in no order)"""
    q = home.path("queue")
    out = []
    for f in sorted(os.listdir(q)):
        if f.startswith("msg."):
            with open(os.path.join(q, f), "rb") as fh:
                out.append(fh.read())
    return out


def make_cdb(home, name, keys):
    """control/NAME.cdb with keys (empty data): with mxgate-cdb when it has
    been built, else with tinycdb's cdb -c from the same text file"""
    home.write(name, "".join(k + "\n" for k in keys))
    cdb = os.path.join(home.control, name + ".cdb")
    if os.path.exists(h.prog("mxgate-cdb")):
        subprocess.run([h.prog("mxgate-cdb"), name], env={"MXGATE_HOME": home.dir}, check=True)
    else:
        data = b"".join(b"+%d,0:%s->\n" % (len(k), k.encode()) for k in keys) + b"\n"
        subprocess.run(["cdb", "-c", cdb], input=data, check=True)
    return cdb


def home_with_queue(**kw):
    home = h.Home(**kw)
    return home, {"QMAILQUEUE": queue_script(home)}


def mime_message(parts, subject="test", boundary="=_b1"):
    """a multipart/mixed message (LF line ends); parts are (headers, body)"""
    out = [f"From: sender@remote.test\nTo: alice@example.test\nSubject: {subject}\nMIME-Version: 1.0\n"
           f"Content-Type: multipart/mixed; boundary=\"{boundary}\"\n\nThis is MIME.\n"]
    for headers, body in parts:
        out.append(f"--{boundary}\n{headers}\n\n{body}\n")
    out.append(f"--{boundary}--\n")
    return "".join(out).encode()


def b64_part(data, name="file.bin", width=76):
    text = base64.b64encode(data).decode()
    body = "\n".join(text[i:i + width] for i in range(0, len(text), width))
    return (f"Content-Type: application/octet-stream; name=\"{name}\"\n"
            f"Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"{name}\"", body)


def plain_message(body="Hello, this is a clean message.\n", subject="hello"):
    return (f"From: sender@remote.test\nTo: alice@example.test\nSubject: {subject}\n"
            f"Date: Tue, 24 Nov 2026 10:00:00 +0000\nMessage-ID: <m1@remote.test>\n\n{body}").encode()


def wire(message):
    """message (LF) as DATA sends it: CRLF, dot-stuffed, ended by ."""
    lines = message.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines) + b".\r\n"


def transaction(srv, message, rcpt="alice@example.test", before_quit=None, timeout=300):
    """EHLO, MAIL, RCPT, DATA with message; returns (code, first reply line, pid)"""
    c = h.Client(srv.port, timeout=timeout)
    try:
        c.reply()
        c.cmd("EHLO client.test")
        code, lines = c.cmd("MAIL FROM:<sender@remote.test>")
        assert code == 250, lines
        code, lines = c.cmd(f"RCPT TO:<{rcpt}>")
        assert code == 250, lines
        code, lines = c.cmd("DATA")
        assert code == 354, lines
        c.send(wire(message))
        code, lines = c.reply()
        pid = srv.pids()[-1]
        extra = before_quit(pid) if before_quit else None
        c.cmd("QUIT")
        return code, lines[0], pid, extra
    finally:
        c.close()


def esc(text):
    """a detail as the log writes it: blanks, controls, quote and backslash as \\xHH"""
    return "".join(f"\\x{ord(ch):02x}" if ord(ch) <= 0x20 or ch in "\\'\x7f" else ch for ch in text)


def row_line(pid, row, detail=None, proto="ESMTP", rcpt="alice@example.test"):
    line = (f"qmail-smtpd: pid {pid} {row}: S:127.0.0.1:unknown P:{proto} H:client.test "
            f"F:sender@remote.test T:{rcpt}")
    return line + (f" '{esc(detail)}'" if detail is not None else "") + "\n"


def vm_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as fh:
        for l in fh:
            if l.startswith("VmHWM:"):
                return int(l.split()[1])
    raise AssertionError("no VmHWM")
