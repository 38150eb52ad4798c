"""mxgate-smtpd's start-up and queue hand-off under tcpserver (issue 16):
the program is a static, non-PIE binary, and with QMAILQUEUE unset the
embedded queue runs in the session's own process: no fork, no exec of
mxgate-queue. Both are observed on the running processes, and the
message is followed to its Maildir and its exact log line."""
import os, shutil, subprocess, tempfile, time
import harness as h

S = "S:127.0.0.1:unknown"


def elf_type(path):
    """e_type of an ELF file: 2 ET_EXEC (fixed address), 3 ET_DYN (PIE)"""
    with open(path, "rb") as fh:
        head = fh.read(18)
    assert head[:4] == b"\x7fELF", path
    return int.from_bytes(head[16:18], "little")


def children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        return [int(p) for p in fh.read().split()]


def test_smtpd_and_queue_are_static_and_not_relocated_at_start():
    """the default build links both programs exec'd per connection or per
    message statically and without PIE (no self-relocation at exec);
    PIE=1 is the build option that brings static PIE back"""
    for name in ("mxgate-smtpd", "mxgate-queue"):
        path = h.prog(name)
        r = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True, check=True)
        dyn = subprocess.run(["readelf", "-dW", "--dyn-syms", path], capture_output=True, text=True).stdout
        if "INTERP" in r.stdout and ("libasan" in dyn or "__asan_init" in dyn):
            print("sanitizer build: dynamic by design (make asan)")
            return
        assert "INTERP" not in r.stdout, name                 # static: no dynamic loader
        assert "GNU_RELRO" in r.stdout, name                  # RELRO kept
        if os.environ.get("MXGATE_PIE"):
            assert elf_type(path) == 3, name
        else:
            assert elf_type(path) == 2, name


def test_embedded_queue_runs_in_the_session_process():
    """QMAILQUEUE unset: no queue process at all (no mxgate-queue is even
    beside mxgate-smtpd here). While DATA arrives the session itself holds
    the message's files open: alice's Maildir file in her tmp/ and the
    queue entry for the relay recipient in queue/tmp; after the 250 the
    Queued row's qp is the session's pid, alice has her copy byte for byte
    and the entry for the other recipient is whole in queue/todo"""
    import qentry
    home = h.Home()
    alone = tempfile.mkdtemp(prefix="mxgate-alone-")
    smtpd = os.path.join(alone, "mxgate-smtpd")
    shutil.copy(h.prog("mxgate-smtpd"), smtpd)
    srv = h.Tcpserver([smtpd], env={"MXGATE_HOME": home.dir, "RELAYCLIENT": ""})
    try:
        c = h.Client(srv.port)
        c.reply(); c.cmd("EHLO client.test"); c.cmd("MAIL FROM:<a@remote.test>")
        assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
        assert c.cmd("RCPT TO:<far@elsewhere.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: in process\r\n")                 # the files are open from here on
        pid = srv.pids()[-1]
        assert os.readlink(f"/proc/{pid}/exe") == smtpd

        def files():
            return [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        h.wait_for(lambda: any(f.startswith(os.path.join(home.maildirs["alice"], "tmp") + "/") for f in files()) and
                   any(f.startswith(home.path("queue", "tmp") + "/") for f in files()), what="the message's files")
        assert children(pid) == []                           # no queue process
        body = b"Subject: in process\r\n\r\nno fork\r\n"
        c.send(body[len(b"Subject: in process\r\n"):] + b".\r\n")
        code, text = c.reply()
        assert code == 250 and text[0].endswith(f" qp {pid}"), text
        c.cmd("QUIT")
        c.close()
        stored = len(body.replace(b"\r\n", b"\n"))              # the size counted is with LF line ends
        srv.wait_line(f"qmail-smtpd: pid {pid} Accept::DATA::Queued: {S} P:ESMTP H:client.test F:a@remote.test "
                      f"T:alice@example.test 'qp\\x20{pid}\\x20bytes\\x20{stored}'\n")
        got = home.delivered("alice")
        assert len(got) == 1 and got[0].endswith(b"Subject: in process\n\nno fork\n"), got
        assert got[0].startswith(b"Return-Path: <a@remote.test>\nDelivered-To: alice@example.test\n"), got
        todo = os.listdir(home.path("queue", "todo"))
        assert len(todo) == 1
        e = qentry.read(home.path("queue", "todo", todo[0]))
        assert e.rcpts == ["far@elsewhere.test"] and e.sender == "a@remote.test"
        assert e.message == got[0].split(b"\n", 2)[2]            # the same bytes as alice's copy
        assert os.listdir(home.path("queue", "tmp")) == []
    finally:
        srv.stop(); home.cleanup(); shutil.rmtree(alone, ignore_errors=True)


def test_qmailqueue_set_is_still_exec_d():
    """QMAILQUEUE names a program: that program is exec'd for the message,
    as before (a scanner in front of the queue is never skipped)"""
    home = h.Home()
    q = home.path("q")
    with open(q, "w") as fh:
        fh.write("#!/bin/sh\nexec " + h.prog("mxgate-queue") + "\n")
    os.chmod(q, 0o755)
    srv = h.Tcpserver([h.prog("mxgate-smtpd")], env={"MXGATE_HOME": home.dir, "QMAILQUEUE": q})
    try:
        c = h.Client(srv.port)
        c.reply(); c.cmd("EHLO client.test"); c.cmd("MAIL FROM:<a@remote.test>")
        assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        pid = srv.pids()[-1]
        qp = h.wait_for(lambda: children(pid), what="the queue process")[0]
        h.wait_for(lambda: os.readlink(f"/proc/{qp}/exe") != os.readlink(f"/proc/{pid}/exe"),
                   what="the exec of QMAILQUEUE")
        c.send(b"Subject: x\r\n\r\ny\r\n.\r\n")
        code, text = c.reply()
        assert code == 250 and text[0].endswith(f" qp {qp}"), text
        c.cmd("QUIT")
        c.close()
        assert len(home.delivered("alice")) == 1
    finally:
        srv.stop(); home.cleanup()
