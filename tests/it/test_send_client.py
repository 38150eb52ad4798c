"""mxgate-send's SMTP/LMTP client (src/send/client.c) through its driver
build/tests/smtpclient, against real next hops on 127.0.0.1: Postfix's
smtp-sink, a private Postfix (per-recipient 4xx/5xx, SIZE, STARTTLS with a
test CA), Dovecot's LMTP over TCP and a unix socket, mxgate-smtpd with
mxgate-authuser for AUTH, and hostile servers written here (garbage, a
100 KB reply line, silence, a hang-up mid-DATA). Every recipient's state
and reply is asserted exactly, and what the server received byte for byte.
"""
import os, pwd, shutil, socket, subprocess, tempfile, threading, time
from harness import BIN, TOP, Home, free_port, prog, smtpd, wait_for

BUILD = os.environ.get("MXGATE_BUILD") or os.path.join(TOP, os.path.basename(BIN).replace("bin", "build", 1))
CLIENT = os.path.join(BUILD, "tests", "smtpclient")
HERE = os.path.dirname(os.path.abspath(__file__))


def send(args, message=b"Subject: t\n\nbody\n", timeout=120):
    """runs the driver; returns its output lines and the seconds it took"""
    t0 = time.time()
    p = subprocess.run([CLIENT] + [str(a) for a in args], input=message, capture_output=True, timeout=timeout)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    return lines, time.time() - t0


def send_vmhwm(args, message=b"Subject: t\n\nbody\n"):
    """as send(), and the driver's peak resident memory in KB"""
    out, took = send(["--vmhwm"] + args, message)
    assert out[-1].startswith("vmhwm "), out
    return out[:-1], took, int(out[-1].split()[1])


# ---- a scripted server for exact transcripts and hostile behaviour ----

class Fake:
    """one scripted SMTP/LMTP server on 127.0.0.1: script(conn, rfile)
    runs for each connection (in a thread); what it saw goes into self.seen"""

    def __init__(self, script, conns=1):
        self.script, self.seen = script, []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, args=(conns,), daemon=True)
        self.thread.start()

    def _run(self, conns):
        for _ in range(conns):
            conn, _ = self.sock.accept()
            conn.settimeout(60)
            try:
                self.script(self, conn, conn.makefile("rb"))
            except OSError:
                pass
            finally:
                conn.close()

    def stop(self):
        self.sock.close()
        self.thread.join(5)


def dialogue(fake, conn, rfile, ehlo=b"250-fake\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 1000000\r\n",
             data_reply=b"250 2.0.0 taken\r\n", rcpt_reply=lambda rcpt: b"250 2.1.5 ok\r\n", after_data=None):
    """a well-behaved server recording every command and the DATA bytes"""
    conn.sendall(b"220 fake ESMTP\r\n")
    while True:
        line = rfile.readline()
        if not line:
            return
        fake.seen.append(line)
        cmd = line[:4].upper()
        if cmd in (b"EHLO", b"LHLO"):
            conn.sendall(ehlo)
        elif cmd == b"MAIL":
            conn.sendall(b"250 2.1.0 ok\r\n")
        elif cmd == b"RCPT":
            conn.sendall(rcpt_reply(line))
        elif cmd == b"DATA":
            conn.sendall(b"354 go ahead\r\n")
            data = b""
            while not data.endswith(b"\r\n.\r\n"):
                chunk = rfile.readline()
                if not chunk:
                    return
                data += chunk
            fake.seen.append(data)
            conn.sendall(after_data(fake) if after_data else data_reply)
        elif cmd == b"RSET":
            conn.sendall(b"250 2.0.0 ok\r\n")
        elif cmd == b"QUIT":
            conn.sendall(b"221 2.0.0 bye\r\n")
            return
        else:
            conn.sendall(b"502 5.5.2 what\r\n")


def test_wire_bytes_crlf_dot_stuffing_and_8bitmime():
    """LF lines go out as CRLF, a leading dot doubled, a last line without
    LF ended; SIZE= counts the CRLF bytes; BODY=8BITMIME for 8-bit bytes;
    a second transaction on the same connection"""
    fake = Fake(dialogue)
    msg = b"Subject: caf\xc3\xa9\n\n.hidden\n..two\nmiddle\n.\nlast"
    try:
        out, _ = send(["--prepend", "Received: by us\n", "--twice", "127.0.0.1", fake.port, "me.test",
                       "a@x.test", "b@y.test"], msg)
    finally:
        fake.stop()
    assert out == ["d 250 2.0.0 taken", "more yes", "d 250 2.0.0 taken", "more yes", "proto ESMTP verified no"], out
    wire = b"Received: by us\r\nSubject: caf\xc3\xa9\r\n\r\n..hidden\r\n...two\r\nmiddle\r\n..\r\nlast\r\n.\r\n"
    size = len(wire) - len(b".\r\n") - wire.count(b"\n..")     # the stuffed dots and the end not counted
    assert fake.seen[0] == b"EHLO me.test\r\n"
    assert fake.seen[1] == b"MAIL FROM:<a@x.test> SIZE=%d BODY=8BITMIME\r\n" % size, fake.seen[1]
    assert fake.seen[2:5] == [b"RCPT TO:<b@y.test>\r\n", b"DATA\r\n", wire], fake.seen
    assert fake.seen[5:9] == [b"MAIL FROM:<a@x.test> SIZE=%d BODY=8BITMIME\r\n" % size,
                              b"RCPT TO:<b@y.test>\r\n", b"DATA\r\n", wire], fake.seen
    assert fake.seen[9] == b"QUIT\r\n"


def test_lmtp_reply_per_recipient_after_data():
    """LMTP: LHLO, and after the dot one reply per accepted recipient, in
    order; a recipient refused at RCPT gets no reply after the dot"""
    replies = [b"250 2.0.0 <a> saved\r\n", b"452 4.2.2 <c> over quota\r\n", b"552 5.2.2 <d> mailbox full\r\n"]
    fake = Fake(lambda f, c, r: dialogue(
        f, c, r, ehlo=b"250-lmtp\r\n250 PIPELINING\r\n",
        rcpt_reply=lambda l: b"550 5.1.1 no such user\r\n" if b"<b@" in l else b"250 2.1.5 ok\r\n",
        after_data=lambda _: b"".join(replies)))
    try:
        out, _ = send(["--lmtp", "127.0.0.1", fake.port, "me.test", "s@x.test",
                       "a@h.test", "b@h.test", "c@h.test", "d@h.test"])
    finally:
        fake.stop()
    assert out == ["d 250 2.0.0 <a> saved", "b 550 5.1.1 no such user", "p 452 4.2.2 <c> over quota",
                   "b 552 5.2.2 <d> mailbox full", "more yes", "proto LMTP verified no"], out
    assert fake.seen[0] == b"LHLO me.test\r\n"


def test_multiline_reply_joined_and_control_bytes_replaced():
    fake = Fake(lambda f, c, r: dialogue(
        f, c, r, data_reply=b"250-2.0.0 first\r\n250-2.0.0 with\x1b[31m escape\r\n250 2.0.0 and\ttab\r\n"))
    try:
        out, _ = send(["127.0.0.1", fake.port, "me.test", "s@x.test", "a@h.test"])
    finally:
        fake.stop()
    assert out[0] == "d 250 2.0.0 first 2.0.0 with?[31m escape 2.0.0 and?tab", out


def test_utf8_address_to_a_server_without_smtputf8_is_a_bounce():
    fake = Fake(dialogue)
    try:
        out, _ = send(["127.0.0.1", fake.port, "me.test", "s@x.test", "j\u00fcrgen@h.test", "plain@h.test"])
    finally:
        fake.stop()
    reply = "553 5.6.7 127.0.0.1 does not support SMTPUTF8, which a UTF-8 address needs"
    assert out == ["b " + reply, "b " + reply, "more yes", "proto ESMTP verified no"], out
    assert not any(l.startswith(b"MAIL") for l in fake.seen), fake.seen


def test_utf8_address_with_smtputf8_says_so():
    fake = Fake(lambda f, c, r: dialogue(f, c, r, ehlo=b"250-fake\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n"))
    try:
        out, _ = send(["127.0.0.1", fake.port, "me.test", "s@x.test", "j\u00fcrgen@h.test"])
    finally:
        fake.stop()
    assert out[0] == "d 250 2.0.0 taken", out
    assert fake.seen[1] == b"MAIL FROM:<s@x.test> SMTPUTF8\r\n", fake.seen


def test_helo_when_ehlo_is_refused_and_no_pipelining():
    def script(f, c, r):
        c.sendall(b"220 old\r\n")
        f.seen.append(r.readline())
        c.sendall(b"500 5.5.1 EHLO? never heard of it\r\n")
        dialogue_after_greeting(f, c, r)

    def dialogue_after_greeting(f, c, r):
        for want, reply in ((b"HELO", b"250 old\r\n"), (b"MAIL", b"250 ok\r\n"), (b"RCPT", b"250 ok\r\n")):
            line = r.readline()
            f.seen.append(line)
            assert line.startswith(want), line
            c.sendall(reply)
        line = r.readline()                       # no pipelining: DATA only after RCPT's reply
        f.seen.append(line)
        c.sendall(b"354 go\r\n")
        while r.readline() != b".\r\n":
            pass
        c.sendall(b"250 ok\r\n")
        f.seen.append(r.readline())
        c.sendall(b"221 bye\r\n")

    fake = Fake(script)
    try:
        out, _ = send(["127.0.0.1", fake.port, "me.test", "", "a@h.test"], b"\xff 8bit but no 8BITMIME\n")
    finally:
        fake.stop()
    assert out == ["d 250 ok", "more yes", "proto SMTP verified no"], out
    assert fake.seen == [b"EHLO me.test\r\n", b"HELO me.test\r\n", b"MAIL FROM:<>\r\n", b"RCPT TO:<a@h.test>\r\n",
                         b"DATA\r\n", b"QUIT\r\n"], fake.seen


# ---- hostile servers: temporary failure, no hang, bounded memory ----

def test_garbage_reply_is_a_temporary_failure():
    def script(f, c, r):
        c.sendall(b"220 ok\r\n")
        r.readline()
        c.sendall(b"250 fine\r\n")
        r.readline()
        c.sendall(b"hello there, no code\r\n")
        time.sleep(1)
    fake = Fake(script)
    try:
        out, _ = send(["127.0.0.1", fake.port, "me.test", "s@x.test", "a@h.test", "b@h.test"])
    finally:
        fake.stop()
    why = "p 421 4.4.2 127.0.0.1 sent something that is not an SMTP reply"
    assert out == [why, why, "more no", "proto ESMTP verified no"], out


def test_garbage_greeting_and_mixed_codes():
    for greeting in (b"2x0 hi\r\n", b"220-one\r\n554 two\r\n", b"\x00\x01\x02\r\n"):
        def script(f, c, r, g=greeting):
            c.sendall(g)
            time.sleep(0.5)
        fake = Fake(script)
        try:
            out, _ = send(["127.0.0.1", fake.port, "me.test", "s@x.test", "a@h.test"])
        finally:
            fake.stop()
        assert out == ["p 421 4.4.2 127.0.0.1 sent something that is not an SMTP reply",
                       "proto none verified no"], (greeting, out)


def test_5xx_greeting_is_permanent_4xx_temporary():
    for greeting, state in ((b"554 5.7.1 go away\r\n", "b"), (b"421 4.3.2 busy\r\n", "p")):
        fake = Fake(lambda f, c, r, g=greeting: c.sendall(g))
        try:
            out, _ = send(["127.0.0.1", fake.port, "me.test", "s@x.test", "a@h.test"])
        finally:
            fake.stop()
        assert out == [f"{state} {greeting.decode().strip()}", "proto none verified no"], out


def test_100kb_reply_line_is_refused_in_bounded_memory():
    """a reply line of 100 KB, and one of 20 MB: refused, and the client's
    memory does not grow with it (its peak, VmHWM, beside a plain session's)"""
    def liar(size):
        def script(f, c, r):
            c.sendall(b"220 ok\r\n")
            r.readline()
            c.sendall(b"250-" + b"A" * size + b"\r\n250 ok\r\n")
            time.sleep(1)
        return script
    fake = Fake(dialogue)
    try:
        out, _, plain_kb = send_vmhwm(["127.0.0.1", fake.port, "me.test", "s@x.test", "a@h.test"])
    finally:
        fake.stop()
    assert out[0] == "d 250 2.0.0 taken", out
    for size in (100000, 20 << 20):
        fake = Fake(liar(size))
        try:
            out, _, kb = send_vmhwm(["127.0.0.1", fake.port, "me.test", "s@x.test", "a@h.test"])
        finally:
            fake.stop()
        assert out == ["p 421 4.4.2 127.0.0.1 sent something that is not an SMTP reply",
                       "proto none verified no"], out
        assert kb < plain_kb + 1024, (size, kb, plain_kb)


def test_endless_multiline_reply_is_refused():
    def script(f, c, r):
        c.sendall(b"220 ok\r\n")
        r.readline()
        for _ in range(1000):
            c.sendall(b"250-more\r\n")
        time.sleep(1)
    fake = Fake(script)
    try:
        out, _ = send(["127.0.0.1", fake.port, "me.test", "s@x.test", "a@h.test"])
    finally:
        fake.stop()
    assert out == ["p 421 4.4.2 127.0.0.1 sent something that is not an SMTP reply", "proto none verified no"], out


def test_silent_server_times_out():
    stop = threading.Event()

    def script(f, c, r):
        c.sendall(b"220 ok\r\n")
        r.readline()
        c.sendall(b"250 ok\r\n")
        r.readline()                                # MAIL, then silence
        stop.wait(30)
    fake = Fake(script)
    try:
        out, took = send(["--timeout", "2", "127.0.0.1", fake.port, "me.test", "s@x.test", "a@h.test"])
    finally:
        stop.set()
        fake.stop()
    assert out == ["p 421 4.4.2 127.0.0.1 timed out waiting for a reply", "more no",
                   "proto ESMTP verified no"], out
    assert took < 20, took


def test_trickling_reply_hits_the_reply_deadline():
    stop = threading.Event()

    def script(f, c, r):
        c.sendall(b"220 ok\r\n")
        r.readline()
        for _ in range(30):                         # a byte a second: each read is in time, the reply never
            if stop.wait(1):
                return
            c.sendall(b"2")
    fake = Fake(script)
    try:
        out, took = send(["--timeout", "3", "127.0.0.1", fake.port, "me.test", "s@x.test", "a@h.test"])
    finally:
        stop.set()
        fake.stop()
    assert out == ["p 421 4.4.2 127.0.0.1 timed out waiting for a reply", "proto none verified no"], out
    assert took < 20, took


def test_server_closing_mid_data():
    def script(f, c, r):
        c.sendall(b"220 ok\r\n")
        r.readline()
        c.sendall(b"250-x\r\n250 PIPELINING\r\n")
        for _ in range(3):
            r.readline()
        c.sendall(b"250 ok\r\n250 ok\r\n354 go\r\n")
        r.read(10000)
        c.shutdown(socket.SHUT_RDWR)
    fake = Fake(script)
    big = b"".join(b"line %d of a long message\n" % i for i in range(200000))
    try:
        out, took = send(["--timeout", "10", "127.0.0.1", fake.port, "me.test", "s@x.test", "a@h.test"], big)
    finally:
        fake.stop()
    assert len(out) == 3 and out[0] in ("p 421 4.4.2 127.0.0.1 closed the connection",
                                        "p 421 4.4.2 127.0.0.1 timed out"), out
    assert out[1:] == ["more no", "proto ESMTP verified no"], out


def test_connection_refused():
    port = free_port()
    out, _ = send(["127.0.0.1", port, "me.test", "s@x.test", "a@h.test"])
    assert out == ["p 421 4.4.1 connection refused by 127.0.0.1", "proto none verified no"], out


# ---- smtp-sink ----

class Sink:
    def __init__(self, *opts):
        self.dir = tempfile.mkdtemp(prefix="mxgate-sink-")
        os.chmod(self.dir, 0o777)
        self.port = free_port()
        self.proc = subprocess.Popen(["smtp-sink", "-u", "nobody", "-d", self.dir + "/%M%S."] + list(opts) +
                                     [f"127.0.0.1:{self.port}", "100"], start_new_session=True)
        wait_for(self._up, what="smtp-sink")

    def _up(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 1).close()
            return True
        except OSError:
            return False

    def files(self):
        out = []
        for f in sorted(os.listdir(self.dir)):
            with open(os.path.join(self.dir, f), "rb") as fh:
                out.append(fh.read())
        return out

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def test_smtp_sink_receives_the_message_dot_stuffing_undone():
    sink = Sink()
    msg = b"Subject: sink\n\n.starts with a dot\n..two dots\n.\nno newline at the end"
    try:
        out, _ = send(["--twice", "127.0.0.1", sink.port, "me.test", "s@x.test", "a@h.test", "b@h.test"], msg)
        wait_for(lambda: len(sink.files()) == 2, what="two files from smtp-sink")
        files = sink.files()
    finally:
        sink.stop()
    assert out == ["d 250 2.0.0 Ok"] * 2 + ["more yes"] + ["d 250 2.0.0 Ok"] * 2 + ["more yes",
                                                                                  "proto ESMTP verified no"], out
    for f in files:
        head, _, body = f.partition(b"Subject: sink\n")
        assert b"X-Mail-Args: <s@x.test>\n" in head and head.count(b"X-Rcpt-Args:") == 2, head
        # smtp-sink stores LF lines and an empty line after the message
        assert body == b"\n.starts with a dot\n..two dots\n.\nno newline at the end\n\n", body


def test_smtp_sink_refusals():
    """-f RCPT: 5xx to every RCPT (DATA is then refused as well); -r RCPT:
    4xx; -Q RCPT: 421 and a hang-up; -q DATA: a hang-up after DATA"""
    gone = "p 421 4.4.2 127.0.0.1 closed the connection"
    cases = (("-f", "RCPT", ["b 500 5.3.0 Error: command failed"] * 2, "yes"),
             ("-r", "RCPT", ["p 450 4.3.0 Error: command failed"] * 2, "yes"),
             ("-Q", "RCPT", ["p 421 4.0.0 Server closing connection", gone], "no"),
             ("-q", "DATA", [gone, gone], "no"))
    for opt, cmd, want, more in cases:
        sink = Sink(opt, cmd)
        try:
            out, _ = send(["127.0.0.1", sink.port, "me.test", "s@x.test", "a@h.test", "b@h.test"])
        finally:
            sink.stop()
        assert out == want + ["more " + more, "proto ESMTP verified no"], (opt, out)


# ---- a private Postfix: per-recipient replies, SIZE, STARTTLS ----

def make_cert(dirname, name):
    """a test CA (ca.pem) and a certificate for name it signed (cert.pem, key.pem)"""
    def run(*a):
        subprocess.run(a, cwd=dirname, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("openssl", "req", "-x509", *ec, "-days", "2", "-subj", "/CN=mxgate test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("openssl", "req", *ec, "-subj", "/CN=" + name, "-keyout", "key.pem", "-out", "cert.csr")
    with open(os.path.join(dirname, "ext.cnf"), "w") as fh:
        fh.write(f"subjectAltName=DNS:{name}\n")
    run("openssl", "x509", "-req", "-in", "cert.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "ext.cnf", "-out", "cert.pem")
    os.chmod(os.path.join(dirname, "key.pem"), 0o644)


class Postfix:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mxgate-postfix-")
        self.port = free_port()
        make_cert(self.dir, "mx.dest.test")
        subprocess.run(["sh", os.path.join(HERE, "postfix_dest.sh"), "start", self.dir, str(self.port)],
                       check=True, timeout=60)

    def log(self):
        with open(os.path.join(self.dir, "maillog"), "rb") as fh:
            return fh.read().decode("utf-8", "replace")

    def stop(self):
        try:
            with open(os.path.join(self.dir, "spool", "pid", "master.pid")) as fh:
                master = int(fh.read().strip())
        except (OSError, ValueError):
            master = None
        subprocess.run(["sh", os.path.join(HERE, "postfix_dest.sh"), "stop", self.dir, str(self.port)], timeout=60)
        if master:
            wait_for(lambda: not os.path.exists(f"/proc/{master}"), 30, what="postfix to stop")
        shutil.rmtree(self.dir, ignore_errors=True)


def test_postfix_recipients_size_and_starttls():
    pf = Postfix()
    ca = os.path.join(pf.dir, "ca.pem")
    base = ["127.0.0.1", pf.port, "me.test", "s@x.test"]
    try:
        # per-recipient outcomes in one transaction
        out, _ = send(["--tls", "none"] + base + ["ok@dest.test", "soft@dest.test", "hard@dest.test"])
        assert out[0].startswith("d 250 2.0.0 Ok: queued as "), out
        assert out[1:] == ["p 450 4.2.1 <soft@dest.test>: Recipient address rejected: soft is away, try later",
                           "b 550 5.1.1 <hard@dest.test>: Recipient address rejected: hard is no user here",
                           "more yes", "proto ESMTP verified no"], out
        # a UTF-8 address to Postfix, which offers SMTPUTF8
        out, _ = send(["--tls", "none"] + base + ["j\u00fcrgen@dest.test"])
        assert out[0].startswith("d 250 2.0.0 Ok: queued as "), out
        # SIZE 20000: refused before MAIL, on a connection that can go on
        out, _ = send(["--tls", "none"] + base + ["ok@dest.test"], b"Subject: big\n\n" + b"x" * 30000 + b"\n")
        assert out == ["b 552 5.3.4 message of 30018 bytes is bigger than the 20000 bytes 127.0.0.1 takes",
                       "more yes", "proto ESMTP verified no"], out
        wait_for(lambda: " ehlo=1 quit=1 commands=2" in pf.log(), what="a session without MAIL")
        # STARTTLS, the certificate verified for its name with the test CA
        out, _ = send(["--tls", "may", "--ca", ca, "--name", "mx.dest.test"] + base + ["ok@dest.test"])
        assert out[0].startswith("d 250 2.0.0 Ok: queued as ") and out[1:] == ["more yes", "proto ESMTPS verified yes"], out
        out, _ = send(["--tls", "verify", "--ca", ca, "--name", "mx.dest.test"] + base + ["ok@dest.test"])
        assert out[0].startswith("d 250 2.0.0 Ok: queued as ") and out[1:] == ["more yes", "proto ESMTPS verified yes"], out
        # the wrong name, or a CA we do not know: delivered under may, not under verify
        for extra, why in ((["--ca", ca, "--name", "other.test"], "hostname mismatch"),
                           (["--name", "mx.dest.test"], "unable to get local issuer certificate")):
            out, _ = send(["--tls", "may"] + extra + base + ["ok@dest.test"])
            assert out[0].startswith("d 250 2.0.0 Ok: queued as ") and out[1:] == ["more yes", "proto ESMTPS verified no"], out
            out, _ = send(["--tls", "verify"] + extra + base + ["ok@dest.test"])
            name = extra[extra.index("--name") + 1]
            assert out == [f"p 421 4.7.5 the TLS certificate of {name} did not verify: {why}",
                           "proto none verified no"], out
    finally:
        pf.stop()


# ---- Dovecot LMTP: the mail store ----

class Dovecot:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mxgate-dovecot-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        for d in ("run", "state", "mail"):
            os.makedirs(os.path.join(self.dir, d))
        nobody = pwd.getpwnam("nobody")
        os.chown(os.path.join(self.dir, "mail"), nobody.pw_uid, nobody.pw_gid)
        self.conf = os.path.join(self.dir, "dovecot.conf")
        d = self.dir
        with open(self.conf, "w") as fh:
            fh.write(f"""base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
mail_location = maildir:{d}/mail/%n/Maildir
first_valid_uid = 0
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/mail/%n
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.port}
  }}
  unix_listener lmtp {{
    mode = 0666
  }}
}}
""")
        subprocess.run(["dovecot", "-c", self.conf], check=True, timeout=30)
        self.socket = os.path.join(self.dir, "run", "lmtp")
        wait_for(lambda: os.path.exists(self.socket), what="dovecot's lmtp socket")

    def delivered(self, user):
        new = os.path.join(self.dir, "mail", user, "Maildir", "new")
        if not os.path.isdir(new):
            return []
        out = []
        for f in sorted(os.listdir(new)):
            with open(os.path.join(new, f), "rb") as fh:
                out.append(fh.read())
        return out

    def stop(self):
        subprocess.run(["doveadm", "-c", self.conf, "stop"], timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def test_dovecot_lmtp_over_tcp_and_unix_socket():
    dc = Dovecot()
    msg = b"Subject: to the store\n\n.dot\nbody\n"
    try:
        out, _ = send(["--lmtp", "--tls", "none", "127.0.0.1", dc.port, "me.test", "s@x.test",
                       "alice@store.test", "bob@store.test"], msg)
        assert [l[:2] for l in out[:2]] == ["d ", "d "] and all(" 2.0.0 <" in l and " Saved" in l for l in out[:2]), out
        assert "<alice@store.test>" in out[0] and "<bob@store.test>" in out[1], out
        assert out[2:] == ["more yes", "proto LMTP verified no"], out
        out, _ = send(["--lmtp", "--unix", dc.socket, "--twice", "-", 0, "me.test", "s@x.test", "carol@store.test"], msg)
        assert out[0].startswith("d 250 2.0.0 <carol@store.test> ") and out[0].endswith(" Saved"), out
        assert out[2].startswith("d 250 2.0.0 <carol@store.test> "), out
        assert out[1] == out[3] == "more yes" and out[4] == "proto LMTP verified no", out
        for user, n in (("alice", 1), ("bob", 1), ("carol", 2)):
            got = dc.delivered(user)
            assert len(got) == n, (user, got)
            for m in got:
                assert m.endswith(b"Subject: to the store\n\n.dot\nbody\n"), m
    finally:
        dc.stop()


# ---- AUTH to a smarthost: mxgate-smtpd with mxgate-authuser ----

def test_auth_plain_over_tls_to_mxgate_smtpd():
    home = Home()
    certs = tempfile.mkdtemp(prefix="mxgate-certs-")
    make_cert(certs, "mx.example.test")
    with open(os.path.join(certs, "key.pem")) as k, open(os.path.join(certs, "cert.pem")) as c:
        home.write("servercert.pem", k.read() + c.read(), mode=0o600)
    hashed = subprocess.run([prog("mxgate-authuser"), "--hash"], input="alice-pw\n", capture_output=True,
                            text=True, check=True).stdout.strip()
    home.write("users", f"alice:{hashed}:x:::{home.dir}:\n", mode=0o600)
    srv = smtpd(home, env={"SMTPAUTH": "", "AUTHDELAY": "0"}, args=[prog("mxgate-authuser"), "/bin/true"])
    ca = os.path.join(certs, "ca.pem")
    tls = ["--tls", "verify", "--ca", ca, "--name", "mx.example.test"]
    base = ["127.0.0.1", srv.port, "me.test", "alice@example.test", "bob@example.test"]
    try:
        out, _ = send(tls + ["--auth", "alice:alice-pw"] + base, b"Subject: via the smarthost\n\nhi\n")
        assert out[0].startswith("d 250 ") and out[1:] == ["more yes", "proto ESMTPSA verified yes"], out
        srv.wait_line("Accept::AUTH::plain")
        assert any(m.endswith(b"Subject: via the smarthost\n\nhi\n") for m in home.delivered("bob"))
        out, _ = send(tls + ["--auth", "alice:wrong"] + base)
        assert out == ["p 454 4.7.0 mx.example.test refused our AUTH: 535 5.7.8 Authentication credentials invalid",
                       "proto none verified no"], out
        out, _ = send(["--tls", "none", "--auth", "alice:alice-pw"] + base)
        assert out == ["p 421 4.7.0 AUTH to 127.0.0.1 needs TLS, which is not in use", "proto none verified no"], out
        assert "alice-pw" not in srv.log()
    finally:
        srv.stop()
        home.cleanup()
        shutil.rmtree(certs, ignore_errors=True)


def test_rset_before_the_next_transaction_after_a_refused_one():
    """MAIL refused (451): every recipient 'p'; the next transaction on the
    connection starts with RSET"""
    mails = []

    def script(f, c, r):
        c.sendall(b"220 ok\r\n")
        while True:
            line = r.readline()
            if not line:
                return
            f.seen.append(line)
            cmd = line[:4]
            if cmd == b"EHLO":
                c.sendall(b"250-x\r\n250 PIPELINING\r\n")
            elif cmd == b"MAIL":
                mails.append(line)
                c.sendall(b"451 4.3.0 not now\r\n" if len(mails) == 1 else b"250 ok\r\n")
            elif cmd == b"RCPT":
                c.sendall(b"503 5.5.1 MAIL first\r\n" if len(mails) == 1 else b"250 ok\r\n")
            elif cmd == b"DATA":
                if len(mails) == 1:
                    c.sendall(b"503 5.5.1 no recipients\r\n")
                    continue
                c.sendall(b"354 go\r\n")
                while r.readline() != b".\r\n":
                    pass
                c.sendall(b"250 2.0.0 second time lucky\r\n")
            elif cmd == b"RSET":
                c.sendall(b"250 reset\r\n")
            elif cmd == b"QUIT":
                c.sendall(b"221 bye\r\n")
                return
    fake = Fake(script)
    try:
        out, _ = send(["--twice", "127.0.0.1", fake.port, "me.test", "s@x.test", "a@h.test", "b@h.test"])
    finally:
        fake.stop()
    assert out == ["p 451 4.3.0 not now"] * 2 + ["more yes"] + ["d 250 2.0.0 second time lucky"] * 2 + \
        ["more yes", "proto ESMTP verified no"], out
    assert fake.seen[5] == b"RSET\r\n" and fake.seen[6].startswith(b"MAIL"), fake.seen


def test_tls_required_without_starttls_and_failed_handshake_under_may():
    """verify: a hop without STARTTLS is a temporary failure; may: a
    handshake that fails is retried once on a new connection without TLS"""
    fake = Fake(dialogue)
    try:
        out, _ = send(["--tls", "verify", "127.0.0.1", fake.port, "me.test", "s@x.test", "a@h.test"])
    finally:
        fake.stop()
    assert out == ["p 421 4.7.0 TLS is required for 127.0.0.1, which does not offer STARTTLS",
                   "proto none verified no"], out

    def broken_tls(f, c, r):
        c.sendall(b"220 ok\r\n")
        f.seen.append(r.readline())
        c.sendall(b"250-x\r\n250 STARTTLS\r\n")
        f.seen.append(r.readline())
        c.sendall(b"220 go ahead\r\n")
        c.sendall(b"this is no TLS server hello\r\n" * 10)
        time.sleep(0.5)
    scripts = iter([broken_tls, dialogue])
    fake = Fake(lambda f, c, r: next(scripts)(f, c, r), conns=2)
    try:
        out, _ = send(["--tls", "may", "127.0.0.1", fake.port, "me.test", "s@x.test", "a@h.test"])
    finally:
        fake.stop()
    assert out == ["d 250 2.0.0 taken", "more yes", "proto ESMTP verified no"], out
    assert fake.seen[:3] == [b"EHLO me.test\r\n", b"STARTTLS\r\n", b"EHLO me.test\r\n"], fake.seen


def test_without_pipelining_nothing_is_sent_that_cannot_succeed():
    """no RCPT after a refused MAIL; no DATA when every RCPT was refused"""
    def script(f, c, r):
        c.sendall(b"220 ok\r\n")
        mails = 0
        while True:
            line = r.readline()
            if not line:
                return
            f.seen.append(line)
            cmd = line[:4]
            if cmd == b"EHLO":
                c.sendall(b"250 plain\r\n")
            elif cmd == b"MAIL":
                mails += 1
                c.sendall(b"553 5.1.8 bad sender\r\n" if mails == 1 else b"250 ok\r\n")
            elif cmd == b"RCPT":
                c.sendall(b"550 5.1.1 nobody\r\n")
            elif cmd == b"RSET":
                c.sendall(b"250 ok\r\n")
            elif cmd == b"QUIT":
                c.sendall(b"221 bye\r\n")
                return
            else:
                c.sendall(b"500 5.5.1 unexpected\r\n")
    fake = Fake(script)
    try:
        out, _ = send(["--twice", "127.0.0.1", fake.port, "me.test", "s@x.test", "a@h.test", "b@h.test"])
    finally:
        fake.stop()
    assert out == ["b 553 5.1.8 bad sender"] * 2 + ["more yes"] + ["b 550 5.1.1 nobody"] * 2 + \
        ["more yes", "proto ESMTP verified no"], out
    assert fake.seen == [b"EHLO me.test\r\n", b"MAIL FROM:<s@x.test>\r\n", b"RSET\r\n", b"MAIL FROM:<s@x.test>\r\n",
                         b"RCPT TO:<a@h.test>\r\n", b"RCPT TO:<b@h.test>\r\n", b"QUIT\r\n"], fake.seen


def test_auth_login_when_plain_is_not_offered():
    """a smarthost offering only AUTH LOGIN, over STARTTLS (Python's ssl
    as the server side), certificate verified with the test CA"""
    import base64, ssl
    certs = tempfile.mkdtemp(prefix="mxgate-certs-")
    make_cert(certs, "smarthost.test")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(certs, "cert.pem"), os.path.join(certs, "key.pem"))

    def script(f, c, r):
        c.sendall(b"220 smarthost\r\n")
        f.seen.append(r.readline())
        c.sendall(b"250-smarthost\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n")   # not before TLS
        f.seen.append(r.readline())
        c.sendall(b"220 go ahead\r\n")
        t = ctx.wrap_socket(c, server_side=True)
        tr = t.makefile("rb")
        f.seen.append(tr.readline())
        t.sendall(b"250-smarthost\r\n250-PIPELINING\r\n250 AUTH LOGIN\r\n")
        for want, reply in ((b"AUTH LOGIN\r\n", b"334 VXNlcm5hbWU6\r\n"),
                            (base64.b64encode(b"relay-user") + b"\r\n", b"334 UGFzc3dvcmQ6\r\n"),
                            (base64.b64encode(b"relay:pw") + b"\r\n", b"235 2.7.0 ok\r\n")):
            line = tr.readline()
            f.seen.append(line)
            if line != want:
                t.sendall(b"535 5.7.8 no\r\n")
                return
            t.sendall(reply)
        for _ in range(3):
            f.seen.append(tr.readline())
        t.sendall(b"250 ok\r\n250 ok\r\n354 go\r\n")
        while tr.readline() != b".\r\n":
            pass
        t.sendall(b"250 2.0.0 relayed\r\n")
        f.seen.append(tr.readline())
        t.sendall(b"221 bye\r\n")
    fake = Fake(script)
    try:
        out, _ = send(["--tls", "verify", "--ca", os.path.join(certs, "ca.pem"), "--name", "smarthost.test",
                       "--auth", "relay-user:relay:pw", "127.0.0.1", fake.port, "me.test", "s@x.test", "far@away.test"])
    finally:
        fake.stop()
        shutil.rmtree(certs, ignore_errors=True)
    assert out == ["d 250 2.0.0 relayed", "more yes", "proto ESMTPSA verified yes"], (out, fake.seen)
    assert fake.seen[:4] == [b"EHLO me.test\r\n", b"STARTTLS\r\n", b"EHLO me.test\r\n", b"AUTH LOGIN\r\n"], fake.seen
