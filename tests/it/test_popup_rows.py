"""POP3 with real clients: mxgate-popup + mxgate-authuser + mxgate-pop3d
under tcpserver, the login rows on fd 5, mail delivered by mxgate-smtpd
read back byte for byte."""
import hashlib, os, poplib, smtplib, ssl, subprocess, tempfile, time
import harness as h

S = "S:127.0.0.1:unknown"


def pop_home():
    home = h.Home()
    key = tempfile.mkdtemp(prefix="mxgate-popcert-")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=pop.test",
                    "-keyout", f"{key}/k", "-out", f"{key}/c"], check=True, capture_output=True)
    home.write("servercert.pem", open(f"{key}/k").read() + open(f"{key}/c").read(), mode=0o600)
    hashed = subprocess.run([h.prog("mxgate-authuser"), "--hash"], input="alice-pw\n", capture_output=True,
                            text=True, check=True).stdout.strip()
    users = ""
    for u in ("alice", "bob"):
        users += f"{u}:{hashed}:{u}-secret:::{os.path.dirname(home.maildirs[u])}:Maildir\n"
    home.write("users", users, mode=0o600)
    return home


def popd(home, env=None):
    e = {"MXGATE_HOME": home.dir, "POP3DELAY": "0"}
    e.update(env or {})
    return h.Tcpserver([h.prog("mxgate-popup"), "pop.test", h.prog("mxgate-authuser"), h.prog("mxgate-pop3d"), "Maildir"],
                       env=e, wrapper=["sh", "-c", 'exec "$@" 5>&2', "sh"])


def deliver(home, n=1, body=b"Subject: for pop\r\n\r\nline one\r\n.dotted\r\nlast\r\n"):
    srv = h.smtpd(home)
    try:
        with smtplib.SMTP("127.0.0.1", srv.port) as s:
            for i in range(n):
                s.sendmail("sender@remote.test", ["alice@example.test"], body)
    finally:
        srv.stop()


def line(srv, pid, row, rest):
    srv.wait_line(f"qmail-popup: pid {pid} {row}: {S} {rest}\n")


def ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def test_user_pass_rows_and_byte_for_byte():
    home = pop_home()
    body = b"Subject: for pop\r\n\r\nline one\r\n.dotted\r\nlast\r\n"
    deliver(home, body=body)
    srv = popd(home)
    try:
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        p.user("alice")
        try:
            p.pass_("wrong")
            assert False, "wrong password accepted"
        except poplib.error_proto:
            pass
        p.user("alice")
        p.pass_("alice-pw")
        count, size = p.stat()
        assert count == 1
        resp, lines, octets = p.retr(1)
        got = b"\r\n".join(lines) + b"\r\n"
        assert got.endswith(body), got
        assert size == len(got), (size, len(got))                       # STAT/LIST count what RETR sends
        assert p.list()[1][0].split()[1] == str(size).encode()
        uid = p.uidl(1).split()[2]
        assert uid and b":" not in uid
        p.dele(1)
        p.quit()
        pids = srv.pids()
        line(srv, pids[0], "Reject::AUTH::User", "P:POP3 ?~ 'alice'")
        line(srv, pids[0], "Accept::AUTH::User", "P:POP3 ?~ 'alice'")
        assert os.listdir(os.path.join(home.maildirs["alice"], "cur")) == []   # deleted at QUIT
    finally:
        srv.stop(); home.cleanup()


def test_top_needs_a_line_count():
    """TOP msg n: n is digits; an empty, signed or spaced count is a syntax
    error, not zero lines"""
    home = pop_home()
    deliver(home)
    srv = popd(home)
    try:
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        p.user("alice")
        p.pass_("alice-pw")
        for bad in ("TOP 1 ", "TOP 1", "TOP 1 +2", "TOP 1  2", "TOP 1 -1", "TOP 1 2x"):
            try:
                p._shortcmd(bad)
                assert False, f"{bad!r} accepted"
            except poplib.error_proto as e:
                assert str(e).startswith("b'-ERR syntax"), (bad, e)
        resp, lines, octets = p.top(1, 0)
        assert resp.startswith(b"+OK") and lines[0].startswith(b"Return-Path:") and lines[-1] == b"", lines
        p.quit()
    finally:
        srv.stop(); home.cleanup()


def test_apop_rows():
    home = pop_home()
    srv = popd(home, {"POP3AUTH": "+apop"})
    try:
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        assert p.timestamp.search(p.getwelcome())
        try:
            p.apop("alice", "not-the-secret")
            assert False
        except poplib.error_proto:
            pass
        p.apop("alice", "alice-secret")
        assert p.stat()[0] == 0
        p.quit()
        pid = srv.pids()[0]
        line(srv, pid, "Reject::AUTH::Apop", "P:POP3 ?~ 'alice'")
        line(srv, pid, "Accept::AUTH::Apop", "P:POP3 ?~ 'alice'")
    finally:
        srv.stop(); home.cleanup()


def test_stls_required_and_pop3s_label():
    home = pop_home()
    deliver(home)
    srv = popd(home, {"UCSPITLS": "!"})
    try:
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        try:
            p.user("alice")
            assert False
        except poplib.error_proto:
            pass
        line(srv, srv.pids()[0], "Reject::STLS::Any", "P:POP3 ?~ 'unknown'")
        p.stls(context=ctx())
        p.user("alice"); p.pass_("alice-pw")
        assert p.stat()[0] == 1
        p.quit()
        line(srv, srv.pids()[0], "Accept::AUTH::User", "P:POP3S ?~ 'alice'")
    finally:
        srv.stop(); home.cleanup()


def test_stls_discards_pipelined_input_and_hostile_lines():
    home = pop_home()
    srv = popd(home)
    try:
        c = h.Client(srv.port)
        c.readline()
        c.send(b"STLS\r\nUSER alice\r\nPASS alice-pw\r\n")               # pipelined behind STLS
        assert c.readline().startswith("+OK")
        t = ctx().wrap_socket(c.sock, server_hostname="pop.test")
        t.sendall(b"NOOP\r\n")
        assert t.recv(1000).startswith(b"-ERR authorization first")      # not logged in by the injection
        t.sendall(b"USER " + b"x" * (1 << 20) + b"\r\nQUIT\r\n")          # 1 MB line: refused, session goes on
        data = b""
        while b"+OK bye" not in data:
            chunk = t.recv(4096)
            if not chunk:
                break
            data += chunk
        assert b"-ERR line too long" in data and b"+OK bye" in data, data
        assert "Accept::AUTH" not in srv.log()
    finally:
        srv.stop(); home.cleanup()


def test_message_deleted_by_another_session_and_big_maildir():
    home = pop_home()
    deliver(home, n=2)
    srv = popd(home)
    try:
        a = poplib.POP3("127.0.0.1", srv.port, timeout=10); a.user("alice"); a.pass_("alice-pw")
        b = poplib.POP3("127.0.0.1", srv.port, timeout=10); b.user("alice"); b.pass_("alice-pw")
        b.dele(1); b.quit()                                                # b removes message 1
        try:
            a.retr(1)
            assert False, "vanished message retrieved"
        except poplib.error_proto as e:
            assert b"vanished" in e.args[0]
        assert a.retr(2)[0].startswith(b"+OK")                             # the session goes on
        a.quit()
        cur = os.path.join(home.maildirs["alice"], "new")                  # 10 000 messages
        for i in range(10000):
            with open(os.path.join(cur, f"{1700000000 + i}.M{i}P1.test"), "wb") as fh:
                fh.write(b"Subject: %d\n\nbody\n" % i)
        t0 = time.time()
        p = poplib.POP3("127.0.0.1", srv.port, timeout=60); p.user("alice"); p.pass_("alice-pw")
        assert len(p.list()[1]) == 10001 and len(p.uidl()[1]) == 10001
        print(f"login (new/ -> cur/, sizes) + LIST + UIDL of 10001 messages: {time.time() - t0:.2f}s")
        p.quit()
    finally:
        srv.stop(); home.cleanup()


def test_deleted_message_renamed_by_another_program_is_removed():
    """DELE, then another program marks the message seen (NAME:2, becomes
    NAME:2,S) before QUIT: the message is still removed, found by its unique
    name; the other message stays"""
    home = pop_home()
    deliver(home, n=2)
    srv = popd(home)
    try:
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        p.user("alice")
        p.pass_("alice-pw")
        uid = p.uidl(1).split()[2].decode()
        p.dele(1)
        cur = os.path.join(home.maildirs["alice"], "cur")
        os.rename(os.path.join(cur, uid + ":2,"), os.path.join(cur, uid + ":2,S"))
        assert p.quit().startswith(b"+OK")
        left = os.listdir(cur)
        assert len(left) == 1 and not left[0].startswith(uid), left
    finally:
        srv.stop(); home.cleanup()


def test_uidls_are_valid_and_distinct_whatever_the_file_names():
    """RFC 1939: UIDLs are 1 to 70 characters from 0x21 to 0x7E and tell
    messages apart. Names too long (two sharing their first 70 bytes), with
    a space or with UTF-8 get UIDLs that are, the same in the next session;
    an ordinary name is its own UIDL"""
    home = pop_home()
    deliver(home)
    new = os.path.join(home.maildirs["alice"], "new")
    long = "1700000000.M1P1." + "x" * 80
    odd = [long + "a.host", long + "b.host", "1700000001.M2P2.two words", "1700000002.M3P3.hôte"]
    for i, name in enumerate(odd):
        with open(os.path.join(new, name).encode(), "wb") as fh:
            fh.write(b"Subject: odd %d\n\nbody\n" % i)
    srv = popd(home)
    try:
        seen = []
        for _ in range(2):
            p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
            p.user("alice")
            p.pass_("alice-pw")
            uids = [l.split()[1] for l in p.uidl()[1]]
            p.quit()
            assert len(uids) == 5 and len(set(uids)) == 5, uids
            assert all(1 <= len(u) <= 70 and all(0x21 <= c <= 0x7e for c in u) for u in uids), uids
            seen.append(uids)
        assert seen[0] == seen[1]
        names = sorted(n.split(":")[0] for n in os.listdir(os.path.join(home.maildirs["alice"], "cur")))
        plain = [n for n in names if n not in odd]
        assert len(plain) == 1 and plain[0].encode() in seen[0], (plain, seen[0])
    finally:
        srv.stop(); home.cleanup()


def test_curl_and_fetchmail():
    home = pop_home()
    deliver(home)
    srv = popd(home)
    try:
        r = subprocess.run(["curl", "-s", f"pop3://127.0.0.1:{srv.port}/", "--user", "alice:alice-pw"],
                           capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.startswith("1 "), r
        r = subprocess.run(["curl", "-s", f"pop3://127.0.0.1:{srv.port}/1", "--user", "alice:alice-pw"],
                           capture_output=True)
        assert b"Subject: for pop" in r.stdout
        out = tempfile.mkdtemp(prefix="mxgate-fetch-")
        rc = os.path.join(out, "rc")
        with open(rc, "w") as fh:
            fh.write(f"poll 127.0.0.1 port {srv.port} proto pop3 user alice password alice-pw "
                     f"sslproto '' mda 'cat >> {out}/mbox'\n")
        os.chmod(rc, 0o600)
        r = subprocess.run(["fetchmail", "-f", rc, "--nosyslog", "-s", "-k"],
                           env={"HOME": out, "PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert "Subject: for pop" in open(os.path.join(out, "mbox")).read()
    finally:
        srv.stop(); home.cleanup()


def test_unreadable_message_is_not_offered():
    home = pop_home()
    deliver(home, n=2)
    new = os.path.join(home.maildirs["alice"], "new")
    bad = os.path.join(new, "0999999999.M1P1.dir")
    os.mkdir(bad)                                                       # a directory where a message should be
    srv = popd(home)
    try:
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10); p.user("alice"); p.pass_("alice-pw")
        count, _ = p.stat()
        assert count == 2, count                                        # the two messages; the directory is skipped
        assert all(p.retr(i)[0].startswith(b"+OK") for i in (1, 2))
        p.quit()
    finally:
        srv.stop(); home.cleanup()


def test_pop3s_commands_in_several_tls_records_at_once():
    """two TLS records arriving together: the second must not wait in OpenSSL's buffer"""
    import socket
    home = pop_home()
    srv = popd(home, {"POP3S": "1"})
    try:
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        t = ctx().wrap_socket(raw, server_hostname="pop.test")
        f = t.makefile("rb")
        assert f.readline().startswith(b"+OK")
        t.sendall(b"USER alice\r\n"); assert f.readline().startswith(b"+OK")
        t.sendall(b"PASS alice-pw\r\n"); assert f.readline().startswith(b"+OK")
        t.sendall(b"STAT\r\n"); t.sendall(b"NOOP\r\n"); t.sendall(b"QUIT\r\n")   # three records, back to back
        replies = [f.readline() for _ in range(3)]
        assert replies[0].startswith(b"+OK 0 0") and replies[1].startswith(b"+OK") and replies[2].startswith(b"+OK"), replies
        t.close()
        line(srv, srv.pids()[-1], "Accept::AUTH::User", "P:POP3S ?~ 'alice'")
    finally:
        srv.stop(); home.cleanup()


def read_all(sock, deadline=20):
    """everything until the server closes (within deadline seconds)"""
    sock.settimeout(deadline)
    out = bytearray()
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return bytes(out)
        out += chunk


def test_client_half_close_still_gets_every_answer():
    """commands and then the end of the client's input (nc -N, a script):
    the answers to all of them arrive before the connection closes"""
    import socket
    home = pop_home()
    deliver(home, n=2)
    srv = popd(home)
    try:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(b"USER alice\r\nPASS alice-pw\r\nSTAT\r\nDELE 1\r\nQUIT\r\n")
        s.shutdown(socket.SHUT_WR)
        got = read_all(s).decode()
        s.close()
        replies = got.splitlines()              # greeting, USER, PASS, STAT, DELE, QUIT
        assert len(replies) == 6 and all(r.startswith("+OK") for r in replies) and replies[3].startswith("+OK 2 "), got
        h.wait_for(lambda: len(home.delivered("alice")) == 1, what="message 1 deleted at QUIT")
    finally:
        srv.stop(); home.cleanup()


def test_forty_thousand_pipelined_retrs_all_answered():
    """40,000 RETRs sent at once while reading (more than the socket buffers
    hold both ways): the relay never blocks on the child while the child
    blocks on it; every answer arrives"""
    import socket, threading
    home = pop_home()
    deliver(home)
    srv = popd(home)
    try:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        s.sendall(b"USER alice\r\nPASS alice-pw\r\n")
        n = 40000
        sender = threading.Thread(target=lambda: (s.sendall(b"RETR 1\r\n" * n + b"QUIT\r\n")))
        sender.start()
        got = read_all(s, deadline=60)
        sender.join()
        s.close()
        assert got.count(b"\r\n.\r\n") == n, got.count(b"\r\n.\r\n")
        assert got.endswith(b"+OK\r\n") or b"+OK" in got[-100:], got[-100:]
    finally:
        srv.stop(); home.cleanup()


def test_slow_checkprogram_times_out():
    """a checkprogram that does not answer within POP3TIMEOUT: the login
    fails then (as a setup error), it is not waited for"""
    home = pop_home()
    slow = home.path("slow")
    with open(slow, "w") as fh:
        fh.write("#!/bin/sh\nexec sleep 30\n")
    os.chmod(slow, 0o755)
    e = {"MXGATE_HOME": home.dir, "POP3DELAY": "0", "POP3TIMEOUT": "2"}
    srv = h.Tcpserver([h.prog("mxgate-popup"), "pop.test", slow, h.prog("mxgate-pop3d"), "Maildir"],
                      env=e, wrapper=["sh", "-c", 'exec "$@" 5>&2', "sh"])
    try:
        p = poplib.POP3("127.0.0.1", srv.port, timeout=20)        # the checkprogram would take 30 s
        p.user("alice")
        try:
            p.pass_("alice-pw")
            assert False, "logged in"
        except poplib.error_proto as e:
            assert e.args[0].startswith(b"-ERR"), e
    finally:
        srv.stop(); home.cleanup()


def test_failing_checkprogram_counts_towards_the_failure_limit():
    """a checkprogram that exits 111 (it cannot tell): each try is logged as
    a failed login and answered at once as a temporary failure, and the
    third closes the connection as three wrong passwords do"""
    home = pop_home()
    temp = home.write("temp", "#!/bin/sh\nexit 111\n", mode=0o755)
    e = {"MXGATE_HOME": home.dir, "POP3DELAY": "0"}
    srv = h.Tcpserver([h.prog("mxgate-popup"), "pop.test", temp, h.prog("mxgate-pop3d"), "Maildir"],
                      env=e, wrapper=["sh", "-c", 'exec "$@" 5>&2', "sh"])
    try:
        p = poplib.POP3("127.0.0.1", srv.port, timeout=20)
        for i in range(3):
            p.user("alice")
            try:
                p.pass_("alice-pw")
                assert False, "logged in"
            except poplib.error_proto as err:
                assert err.args[0] == b"-ERR temporary authentication failure", err
        assert p.file.readline() == b"-ERR too many failures\r\n"
        assert p.file.readline() == b""                              # and the connection is closed
        pid = srv.pids()[0]
        srv.wait_end(pid)
        want = f"qmail-popup: pid {pid} Reject::AUTH::User: {S} P:POP3 ?~ 'alice'"
        assert srv.lines(want) == [want] * 3, srv.log()
    finally:
        srv.stop(); home.cleanup()


def test_message_unreadable_midway_ends_the_session():
    """a message that cannot be read once "+OK" is out: the connection ends
    without the end line (a cut message never looks whole, no stray -ERR
    is taken for the next reply) and nothing marked deleted is removed"""
    import socket
    home = pop_home()
    deliver(home, n=2)
    srv = popd(home)
    try:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        f = s.makefile("rb")
        f.readline()
        for cmd in (b"USER alice", b"PASS alice-pw", b"DELE 2"):
            s.sendall(cmd + b"\r\n")
            assert f.readline().startswith(b"+OK"), cmd
        cur = os.path.join(home.maildirs["alice"], "cur")
        names = sorted(os.listdir(cur))
        first = os.path.join(cur, names[0])
        os.unlink(first)
        os.mkdir(first)                          # opens, but cannot be read (EISDIR)
        s.sendall(b"RETR 1\r\nNOOP\r\n")
        rest = f.read()
        s.close()
        assert rest == b"+OK\r\n", rest
        assert names[1] in os.listdir(cur)       # DELE 2 was not carried out: there was no QUIT
    finally:
        srv.stop(); home.cleanup()
