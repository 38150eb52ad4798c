"""mxgate-smtpd's start-up and queue hand-off under tcpserver (issue 16):
the program is a static, non-PIE binary, and with QMAILQUEUE unset the
queue process is a fork running the embedded queue, not an exec of
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


def test_embedded_queue_is_a_fork_with_only_its_three_descriptors():
    """QMAILQUEUE unset: the queue process of a message is a fork of
    mxgate-smtpd (no mxgate-queue is even beside it here), it has fd 0
    (message) and fd 1 (envelope) as pipes, fd 2 and its own work file in
    queue/tmp, and nothing else, though the session holds
    control/morercpthosts.cdb open; the message is in
    the Maildir byte for byte and the Queued row names that process"""
    home = h.Home()
    alone = tempfile.mkdtemp(prefix="mxgate-alone-")
    smtpd = os.path.join(alone, "mxgate-smtpd")
    shutil.copy(h.prog("mxgate-smtpd"), smtpd)
    subprocess.run(["cdb", "-c", os.path.join(home.control, "morercpthosts.cdb")],
                   input=b"+10,0:other.test->\n\n", check=True)
    srv = h.Tcpserver([smtpd], env={"MXGATE_HOME": home.dir})
    try:
        c = h.Client(srv.port)
        c.reply(); c.cmd("EHLO client.test"); c.cmd("MAIL FROM:<a@remote.test>")
        assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354                      # the queue process runs from here on
        pid = srv.pids()[-1]
        assert os.readlink(f"/proc/{pid}/exe") == smtpd
        assert any(os.readlink(f"/proc/{pid}/fd/{fd}").endswith("morercpthosts.cdb")
                   for fd in os.listdir(f"/proc/{pid}/fd"))
        kids = children(pid)
        assert len(kids) == 1, kids
        qp = kids[0]
        assert os.readlink(f"/proc/{qp}/exe") == smtpd       # no exec
        def fds():
            return {int(fd): os.readlink(f"/proc/{qp}/fd/{fd}") for fd in os.listdir(f"/proc/{qp}/fd")}
        work = os.path.join(home.dir, "queue", "tmp") + "/"

        def only_its_own():                                 # once the fork has set itself up: 0, 1, 2
            f = fds()                                       # and the queue's work file
            return sorted(f)[:3] == [0, 1, 2] and all(f[fd].startswith(work) for fd in f if fd > 2) and len(f) == 4
        try:
            h.wait_for(only_its_own, timeout=5, what="fds 0, 1, 2 and the work file only")
        except AssertionError:
            raise AssertionError(f"queue process fds: {fds()}") from None
        assert os.readlink(f"/proc/{qp}/fd/0").startswith("pipe:")
        assert os.readlink(f"/proc/{qp}/fd/1").startswith("pipe:")
        body = b"Subject: fork\r\n\r\nno exec\r\n"
        c.send(body + b".\r\n")
        code, text = c.reply()
        assert code == 250 and text[0].endswith(f" qp {qp}"), text
        c.cmd("QUIT")
        c.close()
        stored = len(body.replace(b"\r\n", b"\n"))              # the size counted is with LF line ends
        srv.wait_line(f"qmail-smtpd: pid {pid} Accept::DATA::Queued: {S} P:ESMTP H:client.test F:a@remote.test "
                      f"T:alice@example.test 'qp\\x20{qp}\\x20bytes\\x20{stored}'\n")
        got = home.delivered("alice")
        assert len(got) == 1 and got[0].endswith(b"Subject: fork\n\nno exec\n"), got
        assert got[0].startswith(b"Return-Path: <a@remote.test>\nDelivered-To: alice@example.test\n"), got
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
