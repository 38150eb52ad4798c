"""mxgate-listen after a crash, under a stop and under idle clients: a
listener killed with SIGKILL can be started again at once and leaves no
process behind; SIGTERM closes the port in every process at once while
the sessions in flight finish; the pool shrinks back after a burst; the -x
rules file and the checkprogram are checked at start; clients that say
nothing or dribble their first command are parked in the listener and
hold no worker; the per-IP limit is on by default."""
import errno, json, os, re, signal, socket, subprocess, tempfile, time
import harness as h


def family(pid):
    """pid and all its descendants"""
    out = [pid]
    for p in out:
        r = subprocess.run(["pgrep", "-P", str(p)], capture_output=True, text=True)
        out += [int(x) for x in r.stdout.split()]
    return out


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:                    # a zombie is gone for our purpose
        return fh.read().rsplit(")", 1)[1].split()[0] != "Z"


def alive_any(pids):
    return [p for p in pids if alive(p)]


def send_message(c, subject, rcpt="alice@example.test"):
    assert c.cmd("MAIL FROM:<s@remote.test>")[0] == 250
    assert c.cmd(f"RCPT TO:<{rcpt}>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    return c.cmd(f"Subject: {subject}\r\n\r\nbody of {subject}\r\n.")


def connect_result(port):
    """'refused', a greeting/421 line, or 'silent' when connected but nothing came within 3 s"""
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect(("127.0.0.1", port))
    except (ConnectionRefusedError, ConnectionResetError):   # reset: queued as the socket closed
        return "refused"
    try:
        data = s.recv(512)
        return data.decode(errors="replace").strip() if data else "closed"
    except ConnectionResetError:
        return "refused"
    except socket.timeout:
        return "silent"
    finally:
        s.close()


def test_kill9_then_immediate_restart():
    """SIGKILL of the listener: a new one binds the port at once and serves;
    the old session in flight still finishes and delivers; then nothing of
    the old listener is left (workers and committer end with it)"""
    home = h.Home()
    old = h.Listener(env={"MXGATE_HOME": home.dir}, workers="3:6")
    new = None
    try:
        h.wait_for(lambda: os.path.exists(home.path("queue", "commit.sock.pid")), what="committer")
        a = h.Client(old.port)
        assert a.reply()[0] == 220
        assert a.cmd("EHLO a.test")[0] == 250
        h.wait_for(lambda: len(family(old.proc.pid)) >= 5, what="listener, committer, three workers")
        olds = family(old.proc.pid)
        os.kill(old.proc.pid, signal.SIGKILL)
        old.proc.wait()
        t0 = time.time()
        new = h.Listener(env={"MXGATE_HOME": home.dir}, workers="2:4", port=old.port)
        assert time.time() - t0 < 10                           # bound at once, no "Address already in use"
        b = h.Client(new.port)
        assert b.reply()[0] == 220
        b.cmd("EHLO b.test")
        assert send_message(b, "after the restart")[0] == 250
        b.cmd("QUIT"); b.close()
        # the orphaned session finishes, its message delivered
        assert send_message(a, "in flight during the kill")[0] == 250
        a.cmd("QUIT"); a.close()
        h.wait_for(lambda: not alive_any(olds[1:]), 15, what="no process of the killed listener left")
        subjects = sorted(m.split(b"\nSubject: ")[1].split(b"\n")[0] for m in home.delivered("alice"))
        assert subjects == [b"after the restart", b"in flight during the kill"], subjects
        assert "Queue_Failure" not in new.log() + old.log()
    finally:
        if new:
            new.stop()
        old.stop(); home.cleanup()


def test_kill9_idle_pool_leaves_no_orphans():
    """an idle pool dies with its listener: workers and committer are gone
    within seconds, and the port is free"""
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="4:8")
    try:
        h.wait_for(lambda: len(family(srv.proc.pid)) >= 6, what="listener, committer, four workers")
        pids = family(srv.proc.pid)
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait()
        h.wait_for(lambda: not alive_any(pids[1:]), 10, what="workers and committer gone")
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", srv.port))                         # nobody holds the port
        s.close()
    finally:
        srv.stop(); home.cleanup()


def test_sigterm_refuses_new_clients_while_a_session_finishes():
    """TERM to the listener alone: a new client is refused at once (no
    silent hang on a port nobody serves), the session in flight still gets
    its 250 and its message is delivered, then the listener exits"""
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="3:3")
    try:
        h.wait_for(lambda: os.path.exists(home.path("queue", "commit.sock.pid")), what="committer")
        a = h.Client(srv.port)
        assert a.reply()[0] == 220
        assert a.cmd("EHLO a.test")[0] == 250
        os.kill(srv.proc.pid, signal.SIGTERM)
        h.wait_for(lambda: connect_result(srv.port) == "refused", 5, step=0.1, what="the port closed")
        assert srv.proc.poll() is None                          # still waiting for the session
        assert send_message(a, "during the stop")[0] == 250
        a.cmd("QUIT"); a.close()
        srv.proc.wait(10)
        assert len(home.delivered("alice")) == 1
    finally:
        srv.stop(); home.cleanup()


def test_sigterm_to_every_process_closes_the_port_too():
    """as systemd stops a service: TERM to every process at once; the port
    is closed at once, the running session still delivers"""
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="2:2")
    try:
        h.wait_for(lambda: os.path.exists(home.path("queue", "commit.sock.pid")), what="committer")
        a = h.Client(srv.port)
        a.reply()
        a.cmd("EHLO a.test")
        for pid in family(srv.proc.pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        h.wait_for(lambda: connect_result(srv.port) == "refused", 5, step=0.1, what="the port closed")
        assert send_message(a, "during the stop")[0] == 250
        a.cmd("QUIT"); a.close()
        srv.proc.wait(10)
        assert len(home.delivered("alice")) == 1
    finally:
        srv.stop(); home.cleanup()


def workers_of(srv, home):
    committer = int(open(home.path("queue", "commit.sock.pid")).read())
    r = subprocess.run(["pgrep", "-P", str(srv.proc.pid)], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split() if int(p) != committer]


def test_pool_shrinks_back_after_a_burst():
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="2:8")
    try:
        h.wait_for(lambda: os.path.exists(home.path("queue", "commit.sock.pid")), what="committer")
        clients = []
        for i in range(7):                                      # seven sessions held open: the pool grows
            c = h.Client(srv.port)
            assert c.reply()[0] == 220
            clients.append(c)
        assert len(workers_of(srv, home)) >= 7
        for c in clients:
            c.cmd("QUIT"); c.close()
        # idle for 10 s above the minimum: retired, back to 2 (bound: 10 s + generous slack)
        h.wait_for(lambda: len(workers_of(srv, home)) == 2, 40, step=0.2, what="pool back to 2 workers")
        c = h.Client(srv.port)                                  # and it still serves
        assert c.reply()[0] == 220
        c.cmd("EHLO x.test")
        assert send_message(c, "after the shrink")[0] == 250
        c.cmd("QUIT"); c.close()
        assert "Queue_Failure" not in srv.log()
    finally:
        srv.stop(); home.cleanup()


def run_listen(args, env, cwd):
    return subprocess.run([h.prog("mxgate-listen")] + args, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=20)


def test_missing_rules_file_is_a_start_up_error():
    home = h.Home()
    wd = tempfile.mkdtemp(prefix="mxgate-cwd-")
    port = h.free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MXGATE_HOME": home.dir}
    try:
        r = run_listen(["-x", "rules.cdb", f"127.0.0.1:{port}"], env, wd)
        assert r.returncode == 111
        assert r.stderr == f"mxgate-listen: cannot open rules file {wd}/rules.cdb: No such file or directory\n"
        r = run_listen(["-x", "/nonexistent-dir/rules.cdb", f"127.0.0.1:{port}"], env, wd)
        assert r.returncode == 111
        assert "cannot open rules file /nonexistent-dir/rules.cdb" in r.stderr
        r = run_listen([f"127.0.0.1:{port}", "--", "/nonexistent-dir/checkpassword", "true"], env, wd)
        assert (r.returncode, r.stderr) == (111, "mxgate-listen: checkprogram /nonexistent-dir/checkpassword: "
                                                 "No such file or directory\n")
        r = run_listen([f"127.0.0.1:{port}", "--", "no-such-checkpassword-program", "true"], env, wd)
        assert (r.returncode, r.stderr) == (111, "mxgate-listen: checkprogram no-such-checkpassword-program: "
                                                 "not found in PATH\n")
    finally:
        home.cleanup()
        subprocess.run(["rm", "-rf", wd])


def test_relative_rules_file_is_taken_from_the_working_directory():
    """-x rules.cdb is the file in the directory the listener started in,
    as with tcpserver, not one under $MXGATE_HOME"""
    home = h.Home()
    wd = tempfile.mkdtemp(prefix="mxgate-cwd-")
    h.tcprules(os.path.join(wd, "rules.cdb"), '127.0.0.1:allow,RELAYCLIENT=""\n')
    h.tcprules(home.path("rules.cdb"), "127.0.0.1:deny\n")      # the old lookup's file: must not be used
    rel = os.path.relpath(os.path.join(wd, "rules.cdb"))      # relative to the directory it starts in (ours)
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="1:2", rules=rel)
    try:
        c = h.Client(srv.port)
        assert c.reply()[0] == 220
        c.cmd("EHLO x.test")
        c.cmd("MAIL FROM:<s@remote.test>")
        assert c.cmd("RCPT TO:<far@elsewhere.test>")[0] == 250   # relaying: the working directory's rule
        c.cmd("QUIT"); c.close()
        # removed while running: the client is denied and the log says why
        os.unlink(os.path.join(wd, "rules.cdb"))
        c = h.Client(srv.port)
        assert c.closed()
        pid = srv.pids()[-1]
        srv.wait_line(f"tcpserver: deny {pid} ")
        srv.wait_line(f"mxgate-listen: pid {pid} warning: cannot read rules file {os.getcwd()}/{rel}: "
                      "No such file or directory; connection denied")
    finally:
        srv.stop(); home.cleanup()
        subprocess.run(["rm", "-rf", wd])


def _from(port, src):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def _greeting(s):
    data = b""
    while b"\n" not in data:
        chunk = s.recv(512)
        if not chunk:
            break
        data += chunk
    return data


def test_idle_and_slow_connections_hold_no_worker():
    """2,000 connections that say nothing and 200 that dribble their first
    command, from 200 addresses, on a pool of at most 8 workers: all are
    greeted and parked in the listener; a legitimate client still gets its
    220 and its message through; a parked client that speaks is served"""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 5000:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8000), hard))
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="2:8")
    idle, slow = [], []
    try:
        for i in range(2000):
            idle.append(_from(srv.port, f"127.0.0.{2 + i % 200}"))
        for i in range(200):
            s = _from(srv.port, f"127.0.0.{2 + i}")
            slow.append(s)
        for s in idle + slow:
            assert _greeting(s).startswith(b"220 "), "every connection greeted"
        for s in slow:
            s.sendall(b"EH")                                   # a first command, a byte now and then
        t0 = time.time()
        c = h.Client(srv.port, timeout=30)
        assert c.reply()[0] == 220
        waited = time.time() - t0
        assert waited < 15, waited                             # generous (CI shares its cores): the goal is well under 1 s, bench/idle.py measures it
        c.cmd("EHLO legit.test")
        assert send_message(c, "amid the idle ones")[0] == 250
        c.cmd("QUIT"); c.close()
        assert len(home.delivered("alice")) == 1
        assert len(workers_of(srv, home)) <= 8
        # the parked ones are still there, and served when they speak
        s = slow[7]
        s.sendall(b"LO slow.test\r\n")
        assert _greeting(s).startswith(b"250"), "a dribbled first command is served once whole"
        s = idle[1234]
        s.sendall(b"NOOP\r\n")
        assert _greeting(s).startswith(b"250")
        log = srv.log()
        assert "421 " not in log and "Too many" not in log
    finally:
        for s in idle + slow:
            s.close()
        srv.stop(); home.cleanup()


def test_sigterm_closes_parked_connections_with_421():
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="2:2")
    try:
        h.wait_for(lambda: len(workers_of(srv, home)) == 2 if os.path.exists(home.path("queue", "commit.sock.pid"))
                   else False, what="two workers")
        a = h.Client(srv.port)
        assert a.reply()[0] == 220
        assert a.cmd("EHLO a.test")[0] == 250                  # one worker in a session
        parked = h.Client(srv.port)                            # the other greets it and parks it
        assert parked.reply()[0] == 220
        time.sleep(2.5)                                        # its grace (1 s) over: parked
        os.kill(srv.proc.pid, signal.SIGTERM)
        assert parked.reply()[1] == ["421 4.3.2 Service shutting down; try again later"]
        assert parked.closed()
        assert send_message(a, "finished during the stop")[0] == 250
        a.cmd("QUIT"); a.close()
        srv.proc.wait(10)
        assert len(home.delivered("alice")) == 1
    finally:
        srv.stop(); home.cleanup()


def test_per_ip_limit_is_on_by_default():
    """without -i, one address may hold half of the max workers (at least
    10) in sessions; the next is answered 421 4.7.0 and logged as a deny"""
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="2:16")
    clients = []
    try:
        for i in range(10):                                     # 16 / 2 = 8, raised to the floor of 10
            c = h.Client(srv.port)
            assert c.reply()[0] == 220
            assert c.cmd("EHLO busy.test")[0] == 250            # in a session, on a worker
            clients.append(c)
        extra = h.Client(srv.port)
        code, lines = extra.reply()
        assert lines == ["421 4.7.0 Too many connections from your address; try again later"], lines
        other = _from(srv.port, "127.0.0.9")                    # another address is fine
        assert _greeting(other).startswith(b"220")
        other.close()
        h.wait_for(lambda: "tcpserver: deny " in srv.log(), what="deny line")
    finally:
        for c in clients:
            c.close()
        srv.stop(); home.cleanup()


def test_parked_silent_client_times_out_as_a_session_would():
    """a client that never speaks is parked after a second (its worker is
    free and has logged nothing of it) and closed at timeoutsmtpd with the
    session's own 451; the listener logs it as one session of its pid"""
    home = h.Home()
    home.write("timeoutsmtpd", "3\n")
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="2:2")
    try:
        c = h.Client(srv.port, timeout=30)
        assert c.reply()[0] == 220
        time.sleep(1.5)                                        # parked
        assert srv.pids() == [], srv.log()                     # no session begun for it
        assert c.readline() == "451 4.4.2 Timeout; closing connection"
        assert c.closed()
        lpid = srv.proc.pid
        srv.wait_end(lpid)
        assert srv.pids() == [lpid]
        assert re.search(rf"^tcpserver: ok {lpid} 0:127\.0\.0\.1:{srv.port} :127\.0\.0\.1::\d+$", srv.log(), re.M)
        b = h.Client(srv.port)                                 # both workers free for the next
        assert b.reply()[0] == 220
        b.cmd("EHLO b.test")
        assert send_message(b, "after a parked one")[0] == 250
        b.cmd("QUIT"); b.close()
    finally:
        srv.stop(); home.cleanup()


def test_parked_client_that_speaks_is_one_session_in_the_log():
    """a client parked before its first command, then served by a worker, is
    one session in the log: one pid from its "from" line to its "end", its
    decisions in between, and mxgate-sessions sees one session"""
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="2:2")
    try:
        c = h.Client(srv.port, timeout=30)
        assert c.reply()[0] == 220
        time.sleep(1.5)                                        # its grace (1 s) over: parked
        assert c.cmd("EHLO parked.test")[0] == 250
        assert send_message(c, "parked then served")[0] == 250
        c.cmd("QUIT"); c.close()
        pids = srv.pids()
        assert len(pids) == 1, srv.log()
        pid = pids[0]
        srv.wait_end(pid)
        log = srv.log()
        assert f"qmail-smtpd: pid {pid} Accept::DATA::Queued: S:127.0.0.1:unknown P:ESMTP H:parked.test " in log
        lines = [l for l in log.splitlines() if f" {pid} " in l or l.startswith(f"tcpserver: pid {pid} ")]
        assert lines[0] == f"tcpserver: pid {pid} from 127.0.0.1" and lines[-1] == f"tcpserver: end {pid} status 0", lines
        out = subprocess.run([h.prog("mxgate-sessions"), "--format", "json", srv.logpath], capture_output=True, text=True,
                             check=True).stdout
        sessions = [json.loads(l) for l in out.splitlines() if l.strip()]
        assert len(sessions) == 1 and sessions[0]["pid"] == pid and sessions[0]["helo"] == "parked.test", out
        assert not sessions[0]["partial"] and sessions[0]["seen_open"] and sessions[0]["seen_end"], out
    finally:
        srv.stop(); home.cleanup()
