"""Every wait on a partner has a deadline for the whole operation: clamd,
spamd and postgrey that read or answer a byte at a time, a checkprogram
and a queue program that hang, a committer that is stopped. The partner
here is a stand-in that stalls on purpose (a small Python server or
script); the mxgate side is the real one, under tcpserver or mxgate-listen.
Bounds are generous correctness bounds (the answer came, named the
partner, within the timeout plus slack), never performance ones."""
import os, signal, socket, subprocess, threading, time
import harness as h
import test_content_lib as t


class Stalling:
    """a TCP partner on 127.0.0.1 that runs behave(conn) for each client"""

    def __init__(self, behave, rcvbuf=None):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop_ = threading.Event()
        self.behave = behave
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop_.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        try:
            self.behave(conn, self.stop_)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop_.set()
        self.sock.close()


def read_until(conn, end, stop):
    data = b""
    conn.settimeout(1)
    while end not in data and not stop.is_set():
        try:
            chunk = conn.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        data += chunk
    return data


def dribble(conn, answer, stop, every=0.5):
    """the answer one byte at a time: each byte well within any per-read timeout"""
    for b in answer:
        if stop.wait(every):
            return
        conn.sendall(bytes([b]))


def slow_reader(conn, stop):
    """takes 2 KB every half second, never answers"""
    conn.settimeout(1)
    while not stop.wait(0.5):
        try:
            if not conn.recv(2048):
                return
        except socket.timeout:
            continue


def timed_run(env, message, **kw):
    home, qenv = t.home_with_queue()
    srv = h.smtpd(home, env=dict(env, **qenv), **kw)
    t0 = time.time()
    try:
        code, line, pid, _ = t.transaction(srv, message, timeout=120)
    except BaseException:
        srv.stop(); home.cleanup()
        raise
    return srv, home, code, line, pid, time.time() - t0


SCANNER_451 = "451 4.3.0 Temporary failure of the content scanner, please try again later"


def test_clamd_answering_a_byte_at_a_time_is_out_of_time():
    """each byte of clamd's answer within the 2 s, the whole answer (5.5 s)
    not: 451 naming clamd, within the timeout and slack"""
    def clamd(conn, stop):
        read_until(conn, b"\0\0\0\0", stop)
        dribble(conn, b"stream: OK\0", stop)
    fake = Stalling(clamd)
    try:
        srv, home, code, line, pid, took = timed_run({"CLAMD": f"127.0.0.1#{fake.port}", "CLAMD_TIMEOUT": "2"},
                                                     t.plain_message())
        try:
            assert (code, line) == (451, SCANNER_451), line
            srv.wait_line(t.row_line(pid, "Deferred::DATA::Scanner_Failure", "clamd: read timeout"))
            assert took < 2 + 10, took
            assert t.queued(home) == []
        finally:
            srv.stop(); home.cleanup()
    finally:
        fake.close()


def test_clamd_reading_slowly_is_out_of_time():
    """a clamd that takes the stream 2 KB at a time: every send makes
    progress, the scan as a whole runs out of its 2 s"""
    fake = Stalling(lambda conn, stop: slow_reader(conn, stop), rcvbuf=4096)
    try:
        big = t.plain_message("clean text line number something\n" * 250000)       # 8 MB
        srv, home, code, line, pid, took = timed_run({"CLAMD": f"127.0.0.1#{fake.port}", "CLAMD_TIMEOUT": "2",
                                                      "CLAMD_MAXBYTES": "0"}, big)
        try:
            assert (code, line) == (451, SCANNER_451), line
            srv.wait_line(t.row_line(pid, "Deferred::DATA::Scanner_Failure", "clamd: write timeout"))
            assert took < 60, took                     # the DATA transfer itself, plus the 2 s, plus slack
        finally:
            srv.stop(); home.cleanup()
    finally:
        fake.close()


def test_spamd_answering_a_byte_at_a_time_is_out_of_time():
    def spamd(conn, stop):
        read_until(conn, b"\r\n\r\n", stop)
        conn.settimeout(1)
        while not stop.is_set():                       # the rest of the message, until spamc's shutdown
            try:
                if not conn.recv(65536):
                    break
            except socket.timeout:
                continue
        dribble(conn, b"SPAMD/1.1 0 EX_OK\r\nSpam: False ; 1.0 / 5.0\r\n\r\n", stop)
    fake = Stalling(spamd)
    try:
        srv, home, code, line, pid, took = timed_run({"SPAMD": f"127.0.0.1#{fake.port}", "SPAMD_TIMEOUT": "2"},
                                                     t.plain_message())
        try:
            assert (code, line) == (451, SCANNER_451), line
            srv.wait_line(t.row_line(pid, "Deferred::DATA::Scanner_Failure", "spamd: read timeout"))
            assert took < 2 + 10, took
        finally:
            srv.stop(); home.cleanup()
    finally:
        fake.close()


def test_spamd_reading_slowly_is_out_of_time():
    fake = Stalling(lambda conn, stop: slow_reader(conn, stop), rcvbuf=4096)
    try:
        big = t.plain_message("clean text line number something\n" * 250000)       # 8 MB
        srv, home, code, line, pid, took = timed_run({"SPAMD": f"127.0.0.1#{fake.port}", "SPAMD_TIMEOUT": "2",
                                                      "SPAMD_MAXBYTES": "0"}, big)
        try:
            assert (code, line) == (451, SCANNER_451), line
            srv.wait_line(t.row_line(pid, "Deferred::DATA::Scanner_Failure", "spamd: write timeout"))
            assert took < 60, took
        finally:
            srv.stop(); home.cleanup()
    finally:
        fake.close()


def test_postgrey_answering_a_byte_at_a_time_is_out_of_time():
    """the policy server fails open, as when it is down: the recipient is
    accepted once POSTGREY_TIMEOUT is spent, and the warning names it"""
    def policy(conn, stop):
        read_until(conn, b"\n\n", stop)
        dribble(conn, b"action=DEFER_IF_PERMIT greylisted\n\n", stop, every=0.3)
    fake = Stalling(policy)
    home = h.Home()
    srv = h.smtpd(home, env={"POSTGREY": f"127.0.0.1#{fake.port}", "POSTGREY_TIMEOUT": "2"})
    try:
        c = h.Client(srv.port, timeout=60)
        c.reply()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<sender@remote.test>")
        t0 = time.time()
        code, lines = c.cmd("RCPT TO:<alice@example.test>")
        took = time.time() - t0
        c.cmd("QUIT"); c.close()
        assert code == 250, lines                            # 11 s of dribble would have greylisted it
        assert took < 2 + 10, took
        pid = srv.pids()[-1]
        srv.wait_line(f"mxgate-smtpd: pid {pid} warning: policy server 127.0.0.1#{fake.port}: timeout; not greylisting\n")
    finally:
        srv.stop(); fake.close(); home.cleanup()


def test_hung_checkprogram_is_killed():
    """a checkprogram that never finishes: killed after AUTH_TIMEOUT, 454
    at once, the setup row, and a warning that names it"""
    import base64
    home = h.Home()
    hang = home.write("hang", "#!/bin/sh\nexec sleep 1000\n", mode=0o755)
    srv = h.smtpd(home, env={"SMTPAUTH": "", "UCSPITLS": "-", "AUTH_CLEARTEXT": "1", "AUTH_TIMEOUT": "2"},
                  args=[hang, "/bin/true"])
    try:
        c = h.Client(srv.port, timeout=60)
        c.reply()
        c.cmd("EHLO client.test")
        t0 = time.time()
        code, lines = c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0pw").decode())
        took = time.time() - t0
        assert lines == ["454 4.7.0 Temporary authentication failure"], lines
        assert took < 2 + 10, took
        c.cmd("QUIT"); c.close()
        pid = srv.pids()[-1]
        srv.wait_line(f"mxgate-smtpd: pid {pid} warning: checkprogram {hang} did not finish within 2 s "
                      "(AUTH_TIMEOUT); killed\n")
        srv.wait_line(f"qmail-smtpd: pid {pid} Reject::AUTH::setup: S:127.0.0.1:unknown P:ESMTP H:client.test "
                      "?~ 'alice'\n")
        r = subprocess.run(["pgrep", "-f", f"sleep 1000"], capture_output=True, text=True)
        for p in r.stdout.split():                           # none of ours left behind
            with open(f"/proc/{p}/environ", "rb") as fh:
                assert home.dir.encode() not in fh.read()
    finally:
        srv.stop(); home.cleanup()


def test_hung_queue_program_is_killed():
    """QMAILQUEUE that takes the message and never finishes: killed after
    QUEUE_TIMEOUT, answered as qmail-queue's own timeout"""
    home = h.Home()
    q = home.write("hangqueue", "#!/bin/sh\ncat >/dev/null\nexec sleep 1000\n", mode=0o755)
    srv = h.smtpd(home, env={"QMAILQUEUE": q, "QUEUE_TIMEOUT": "2"})
    try:
        t0 = time.time()
        code, line, pid, _ = t.transaction(srv, t.plain_message(), timeout=60)
        took = time.time() - t0
        assert (code, line) == (451, "451 4.3.0 Queue timeout"), line
        assert took < 2 + 10, took
        srv.wait_line(t.row_line(pid, "Deferred::DATA::Queue_Failure", "Queue timeout"))
        assert "did not finish within 2 s (QUEUE_TIMEOUT); killed\n" in srv.log()
        assert f"mxgate-smtpd: pid {pid} warning: queue program (qp " in srv.log()
    finally:
        srv.stop(); home.cleanup()


def test_queue_program_that_stops_reading_is_killed():
    """QMAILQUEUE that never reads its input: the message (larger than a
    pipe holds) cannot be written, and after QUEUE_TIMEOUT the program is
    killed and the message answered as qmail-queue's own timeout; the
    session is not held by it"""
    home = h.Home()
    q = home.write("deafqueue", "#!/bin/sh\nexec sleep 1000\n", mode=0o755)
    srv = h.smtpd(home, env={"QMAILQUEUE": q, "QUEUE_TIMEOUT": "2"})
    try:
        body = "".join(f"line {i} of a message bigger than a pipe's buffer\n" for i in range(8000))
        t0 = time.time()
        code, line, pid, _ = t.transaction(srv, t.plain_message(body=body), timeout=60)
        took = time.time() - t0
        assert (code, line) == (451, "451 4.3.0 Queue timeout"), line
        assert took < 2 + 10, took
        srv.wait_line(t.row_line(pid, "Deferred::DATA::Queue_Failure", "Queue timeout"))
        assert "did not read its input within 2 s (QUEUE_TIMEOUT); killed\n" in srv.log()
    finally:
        srv.stop(); home.cleanup()


def test_stopped_committer_does_not_fail_messages():
    """the listener's committer stopped (SIGSTOP): the message is flushed
    without it after COMMIT's 10 s, answered 250 and delivered, and the
    log names the committer; never "disk full" """
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="2:2")
    pidfile = home.path("queue", "commit.sock.pid")
    committer = None
    try:
        h.wait_for(lambda: os.path.exists(pidfile), what="committer")
        committer = int(open(pidfile).read())
        os.kill(committer, signal.SIGSTOP)
        c = h.Client(srv.port, timeout=120)
        c.reply()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<sender@remote.test>")
        assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        t0 = time.time()
        code, lines = c.cmd("Subject: stopped committer\r\n\r\nstill delivered\r\n.")
        took = time.time() - t0
        c.cmd("QUIT"); c.close()
        assert code == 250, lines
        assert took < 2 * 10 + 20, took                      # two flushes of 10 s each at most, plus slack
        assert len(home.delivered("alice")) == 1
        sock = home.path("queue", "commit.sock")
        assert f" warning: group committer {sock}: no answer within 10 s; flushing alone\n" in srv.log()
        assert "Queue_Failure" not in srv.log()
    finally:
        if committer:
            os.kill(committer, signal.SIGCONT)
        srv.stop(); home.cleanup()
