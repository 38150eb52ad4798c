"""mxgate-listen: the pre-forked listener keeps the log scheme, isolates
sessions from each other, limits connections, drops privileges, reloads
and drains."""
import os, re, signal, socket, subprocess, tempfile, threading, time
import harness as h


def ehlo_mail_rcpt(port, rcpt="alice@example.test", src=None):
    c = h.Client(port) if src is None else _bound_client(port, src)
    c.reply()
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<s@remote.test>")
    code, _ = c.cmd(f"RCPT TO:<{rcpt}>")
    c.cmd("QUIT")
    c.close()
    return code


def _bound_client(port, src):
    c = h.Client.__new__(h.Client)
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    c.sock, c.buf = s, b""
    return c


def sessions_by_pid(log):
    """split a log into sessions: (pid, [lines]) in order; asserts that a pid
    only reappears after the previous session's end line"""
    open_ = {}
    done = []
    for line in log.splitlines():
        m = re.match(r"tcpserver: pid (\d+) from ", line)
        if m:
            pid = int(m.group(1))
            assert pid not in open_, f"pid {pid} reused before its end line"
            open_[pid] = [line]
            continue
        m = re.match(r"(?:tcpserver: (?:ok|end|deny) |qmail-smtpd: pid )(\d+)", line)
        if m:
            pid = int(m.group(1))
            assert pid in open_, f"line for pid {pid} outside a session: {line}"
            open_[pid].append(line)
            if line.startswith(f"tcpserver: end {pid} "):
                done.append((pid, open_.pop(pid)))
    assert not open_, f"sessions never ended: {list(open_)}"
    return done


def test_thousand_sessions_over_four_workers_join_by_pid():
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="4:4")
    try:
        errors = []

        def client(k, n):
            for i in range(n):
                try:
                    assert ehlo_mail_rcpt(srv.port, f"alice+{k}.{i}@example.test") == 250
                except BaseException as e:  # noqa: BLE001
                    errors.append(e)
        # three clients at a time for four workers: a worker is always free, so no session meets the 421
        threads = [threading.Thread(target=client, args=(k, n)) for k, n in enumerate((334, 333, 333))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:3]
        h.wait_for(lambda: srv.log().count("tcpserver: end ") >= 1000, 30, what="1000 end lines")
        sessions = sessions_by_pid(srv.log())
        assert len(sessions) == 1000
        assert len({pid for pid, _ in sessions}) <= 4
        rcpts = set()
        for pid, lines in sessions:
            accepts = [l for l in lines if "Accept::RCPT::Rcpthosts_Rcptto" in l]
            assert len(accepts) == 1, lines
            rcpts.add(accepts[0].split(" T:")[1])
        assert len(rcpts) == 1000          # every session's own recipient, none mixed up
        tool = h.prog("mxgate-sessions")
        if os.path.exists(tool):
            import json
            out = subprocess.run([tool, "--format", "json", srv.logpath], capture_output=True, text=True, check=True)
            objs = [json.loads(l) for l in out.stdout.splitlines() if l.strip()]
            assert len(objs) == 1000, len(objs)
    finally:
        srv.stop(); home.cleanup()


def test_next_session_on_the_same_worker_starts_clean():
    home = h.Home()
    checker = os.path.join(home.dir, "check")
    with open(checker, "w") as fh:
        fh.write('#!/bin/bash\nIFS= read -r -d "" u <&3; IFS= read -r -d "" p <&3\n'
                 '[ "$u" = alice ] && [ "$p" = secret ] && exec "$@"\nexit 1\n')
    os.chmod(checker, 0o755)
    rules = h.tcprules(os.path.join(home.dir, "rules.cdb"), '127.0.0.2:allow,RELAYCLIENT=""\n:allow\n')
    srv = h.Listener(args=[checker, "/bin/true"], env={"MXGATE_HOME": home.dir, "SMTPAUTH": "", "AUTH_CLEARTEXT": "1",
                                                       "AUTHDELAY": "0", "UCSPITLS": "-"},
                     rules=rules, workers="1:1")
    try:
        # session A, from 127.0.0.2: relay client by tcprules, authenticated, DATA aborted
        a = _bound_client(srv.port, "127.0.0.2")
        a.reply()
        a.cmd("EHLO a.test")
        import base64
        assert a.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0secret").decode())[0] == 235
        a.cmd("MAIL FROM:<alice@example.test>")
        assert a.cmd("RCPT TO:<far@elsewhere.test>")[0] == 250
        assert a.cmd("DATA")[0] == 354
        a.send("Subject: half\r\n\r\nhalf a mess")        # then vanish mid-DATA
        a.close()
        # session B, from 127.0.0.1, on the same (only) worker: nothing of A
        b = h.Client(srv.port)
        b.reply()
        code, lines = b.cmd("EHLO b.test")
        assert code == 250
        code, _ = b.cmd("RCPT TO:<x@example.test>")
        assert code == 503                                   # no envelope left over
        b.cmd("MAIL FROM:<b@remote.test>")
        code, lines = b.cmd("RCPT TO:<far@elsewhere.test>")
        assert lines[0] == "553 5.7.1 Relaying denied", lines   # neither relay client nor authenticated
        b.cmd("QUIT")
        b.close()
        h.wait_for(lambda: srv.log().count("tcpserver: end ") >= 2, what="two end lines")
        sessions = sessions_by_pid(srv.log())
        assert len(sessions) == 2 and sessions[0][0] == sessions[1][0]   # one worker served both
        pid = sessions[1][0]
        assert f"qmail-smtpd: pid {pid} Reject::SNDR::Invalid_Relay: S:127.0.0.1:unknown P:ESMTP H:b.test " \
               f"F:b@remote.test T:far@elsewhere.test" in sessions[1][1]
        assert not any("Queued" in l for l in srv.log().splitlines())
    finally:
        srv.stop(); home.cleanup()


NONULL = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
/* open("/dev/null") fails as when the system's file table is full */
static int opener(const char *name, const char *path, int flags, va_list ap)
{
  if (!strcmp(path, "/dev/null")) { errno = ENFILE; return -1; }
  int (*real)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, name);
  return real(path, flags, va_arg(ap, int));
}
int open(const char *p, int f, ...) { va_list ap; va_start(ap, f); int r = opener("open", p, f, ap); va_end(ap); return r; }
int open64(const char *p, int f, ...) { va_list ap; va_start(ap, f); int r = opener("open64", p, f, ap); va_end(ap); return r; }
"""


def test_client_let_go_when_dev_null_cannot_be_opened():
    """a worker puts /dev/null on fds 0 and 1 when a session ends; when it
    cannot open it (an LD_PRELOAD shim says ENFILE), the client's
    connection still ends right after 221, not at the worker's next session"""
    if "libasan" in subprocess.run(["ldd", h.prog("mxgate-listen")], capture_output=True, text=True).stdout:
        return                                  # ASan must come first in the libraries: no shim before it
    d = tempfile.mkdtemp(prefix="mxgate-nonull-")
    with open(os.path.join(d, "nonull.c"), "w") as fh:
        fh.write(NONULL)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", os.path.join(d, "nonull.so"), os.path.join(d, "nonull.c"), "-ldl"],
                   check=True)
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir, "LD_PRELOAD": os.path.join(d, "nonull.so")}, workers="1:1")
    try:
        c = h.Client(srv.port, timeout=5)
        c.reply()
        c.cmd("EHLO client.test")
        assert c.cmd("QUIT")[0] == 221
        assert c.sock.recv(100) == b""           # the end of the stream, within the 5 s timeout
        c.close()
        srv.wait_end(srv.pids()[-1])
    finally:
        srv.stop(); home.cleanup()


def test_full_pool_answers_421():
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="1:1")
    try:
        first = h.Client(srv.port)
        assert first.reply()[0] == 220
        second = h.Client(srv.port)
        code, lines = second.reply()
        assert lines[0] == "421 4.3.2 Too many connections; try again later"
        first.cmd("QUIT")
    finally:
        srv.stop(); home.cleanup()


def test_per_ip_limit():
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="4:4", options=["-i", "1"])
    try:
        first = h.Client(srv.port)
        assert first.reply()[0] == 220
        second = h.Client(srv.port)
        code, lines = second.reply()
        assert lines[0] == "421 4.7.0 Too many connections from your address; try again later"
        third = _bound_client(srv.port, "127.0.0.3")            # another address is fine
        assert third.reply()[0] == 220
        first.cmd("QUIT"); third.cmd("QUIT")
        h.wait_for(lambda: "tcpserver: deny " in srv.log(), what="deny line")
    finally:
        srv.stop(); home.cleanup()


def test_workers_run_unprivileged():
    if os.getuid() != 0:
        print("skipped: needs root to drop privileges")
        return
    home = h.Home()
    for root, dirs, files in os.walk(home.dir):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
    os.chmod(home.dir, 0o755)
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="2:2", options=["-u", "nobody", "-g", "nogroup"])
    try:
        c = h.Client(srv.port)
        assert c.reply()[0] == 220
        c.cmd("EHLO x.test")
        pid = int(re.search(r"tcpserver: pid (\d+) from", srv.log()).group(1))
        status = open(f"/proc/{pid}/status").read()
        uid = re.search(r"^Uid:\s+(.*)$", status, re.M).group(1).split()
        gid = re.search(r"^Gid:\s+(.*)$", status, re.M).group(1).split()
        groups = re.search(r"^Groups:[ \t]*(.*)$", status, re.M).group(1).split()
        assert set(uid) == {"65534"} and set(gid) == {"65534"} and groups == [], (uid, gid, groups)
        # its message goes in through the committer, whose socket is the workers' user's alone
        for root, dirs, files in os.walk(home.maildirs["alice"]):
            for d in dirs:
                os.chown(os.path.join(root, d), 65534, 65534)
        assert c.cmd("MAIL FROM:<s@remote.test>")[0] == 250 and c.cmd("RCPT TO:<alice@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        assert c.cmd("Subject: as nobody\r\n\r\nhello\r\n.")[0] == 250
        assert len(home.delivered("alice")) == 1
        sock = home.path("queue", "commit.sock")
        st = os.stat(sock)
        assert (st.st_mode & 0o777, st.st_uid) == (0o600, 65534), (oct(st.st_mode), st.st_uid)
        child = os.fork()
        if child == 0:                                   # another unprivileged user may not ask for flushes
            os.setgid(1); os.setuid(1)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(sock)
                os._exit(1)
            except PermissionError:
                os._exit(0)
            except BaseException:
                os._exit(2)
        assert os.waitpid(child, 0)[1] == 0
        c.cmd("QUIT")
    finally:
        srv.stop(); home.cleanup()


def test_sighup_rereads_control_files_without_dropping_a_session():
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="2:4")
    try:
        open_session = h.Client(srv.port)
        assert open_session.reply()[1][0] == "220 mx.example.test ESMTP"
        home.write("smtpgreeting", "reloaded.example.test\n")
        os.kill(srv.proc.pid, signal.SIGHUP)

        def greeting():
            c = h.Client(srv.port)
            g = c.reply()[1][0]
            c.cmd("QUIT")
            return g == "220 reloaded.example.test ESMTP"
        h.wait_for(greeting, what="new greeting")
        assert open_session.cmd("NOOP")[0] == 250               # the old session goes on
        open_session.cmd("QUIT")
    finally:
        srv.stop(); home.cleanup()


def test_sigterm_drains_running_sessions():
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="2:2")
    try:
        c = h.Client(srv.port)
        c.reply()
        os.kill(srv.proc.pid, signal.SIGTERM)
        time.sleep(0.3)
        assert srv.proc.poll() is None                          # waits for the session
        assert c.cmd("EHLO x.test")[0] == 250
        c.cmd("QUIT")
        srv.proc.wait(10)
    finally:
        srv.stop(); home.cleanup()


def test_sigterm_to_every_process_still_commits_running_sessions():
    """systemd's default stop sends SIGTERM to every process of the service
    at once, the committer too: a session still running after it delivers
    its message (250, in the Maildir), and then the listener ends"""
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="2:2")
    try:
        h.wait_for(lambda: os.path.exists(home.path("queue", "commit.sock.pid")), what="committer")
        c = h.Client(srv.port)
        c.reply()
        assert c.cmd("EHLO x.test")[0] == 250
        family = [srv.proc.pid]
        for pid in family:                                   # the listener's children and theirs
            r = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
            family += [int(p) for p in r.stdout.split()]
        assert len(family) >= 4, family                      # listener, committer, two workers
        for pid in family:                                   # as systemd: every process still there
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:                       # an idle worker the listener's TERM already ended
                pass
        time.sleep(0.3)
        assert c.cmd("MAIL FROM:<s@remote.test>")[0] == 250
        assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        assert c.cmd("Subject: during the stop\r\n\r\nstill delivered\r\n.")[0] == 250
        c.cmd("QUIT")
        c.close()
        srv.proc.wait(10)
        assert len(home.delivered("alice")) == 1
    finally:
        srv.stop(); home.cleanup()


def test_systemd_socket_activation():
    """sockets passed as systemd does (LISTEN_FDS, LISTEN_PID, fd 3)"""
    home = h.Home()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    logpath = os.path.join(home.dir, "log")
    fd = sock.fileno()
    move = "" if fd == 3 else f"exec 3<&{fd} {fd}<&-; "
    wrapper = move + 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"'
    with open(logpath, "wb") as log:
        p = subprocess.Popen(["/bin/bash", "-c", wrapper, "bash", h.prog("mxgate-listen"), "-w", "1:2"],
                             pass_fds=(fd,), env={"MXGATE_HOME": home.dir, "PATH": os.environ["PATH"]},
                             stderr=log, start_new_session=True)
    sock.close()
    try:
        h.wait_for(lambda: "tcpserver: status: 0/2" in open(logpath).read(), what="listener")
        c = h.Client(port)
        assert c.reply()[1] == ["220 mx.example.test ESMTP"]
        c.cmd("QUIT")
        h.wait_for(lambda: re.search(r"tcpserver: ok \d+ 0:127\.0\.0\.1:%d :127\.0\.0\.1::\d+" % port,
                                     open(logpath).read()), what="ok line")
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(10)
        home.cleanup()


def test_direct_maildir_delivery_is_whole_durable_and_like_the_queue():
    """under mxgate-listen a message is written by the worker itself, for one
    Maildir recipient as for two (qp is the worker's pid: no queue process).
    Both arrive alike; an aborted or refused DATA leaves nothing in new/ or
    tmp/."""
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="1:1")
    try:
        def send(rcpts, body):
            c = h.Client(srv.port)
            c.reply()
            c.cmd("EHLO client.test")
            c.cmd("MAIL FROM:<s@remote.test>")
            for r in rcpts:
                assert c.cmd(f"RCPT TO:<{r}>")[0] == 250
            assert c.cmd("DATA")[0] == 354
            code, lines = c.cmd(body)
            if code == 250:
                c.cmd("QUIT")
            c.close()
            return code, lines
        assert send(["alice@example.test"], "Subject: one\r\n\r\nsame body\r\n.")[0] == 250
        assert send(["alice@example.test", "bob@example.test"], "Subject: two\r\n\r\nsame body\r\n.")[0] == 250
        h.wait_for(lambda: srv.log().count("tcpserver: end ") >= 2, what="two end lines")
        (p1, s1), (p2, s2) = sessions_by_pid(srv.log())
        q1 = [l for l in s1 if "Accept::DATA::Queued" in l][0]
        q2 = [l for l in s2 if "Accept::DATA::Queued" in l][0]
        assert f"'qp\\x20{p1}\\x20bytes" in q1, q1                        # the worker wrote it
        assert f"'qp\\x20{p2}\\x20bytes" in q2, q2                        # both
        got = sorted(home.delivered("alice"), key=lambda m: b"Subject: two" in m)
        assert len(got) == 2 and len(home.delivered("bob")) == 1
        for msg, subject in zip(got, (b"one", b"two")):
            assert msg.startswith(b"Return-Path: <s@remote.test>\nDelivered-To: alice@example.test\nReceived: from "), msg
            assert msg.endswith(b"\nSubject: " + subject + b"\n\nsame body\n"), msg
        # aborted mid-DATA, and refused for a bare LF: nothing visible, nothing left in tmp/
        c = h.Client(srv.port)
        c.reply()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<s@remote.test>")
        c.cmd("RCPT TO:<alice@example.test>")
        c.cmd("DATA")
        c.send("Subject: half\r\n\r\nhalf a mess")
        c.close()
        code, lines = send(["alice@example.test"], "Subject: bare\r\n\r\nbare\nlf\r\n.")
        assert code == 554, lines
        h.wait_for(lambda: srv.log().count("tcpserver: end ") >= 4, what="four end lines")
        assert len(home.delivered("alice")) == 2
        assert os.listdir(os.path.join(home.maildirs["alice"], "tmp")) == []
    finally:
        srv.stop(); home.cleanup()
