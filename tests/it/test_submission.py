"""Submission rows with real clients: TLS (STARTTLS, SMTPS, client
certificates made here with openssl), SMTP AUTH through the real
mxgate-authuser, and LOCALMFCHECK sender verification."""
import base64, hmac, os, smtplib, socket, ssl, subprocess, time
import harness as h

S = "S:127.0.0.1:unknown"


def make_pki(d):
    """a CA, a server certificate, a client certificate with an e-mail, and a stranger's client cert"""
    def run(*a):
        subprocess.run(list(a), check=True, capture_output=True, cwd=d)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Other CA",
        "-keyout", "other.key", "-out", "other.pem")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=mx.example.test",
        "-keyout", "server.key", "-out", "server.crt")
    for name, ca in (("client", "ca"), ("stranger", "other")):
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj",
            f"/CN={name}/emailAddress={name}@example.test", "-keyout", f"{name}.key", "-out", f"{name}.csr")
        run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.crt")
    with open(os.path.join(d, "servercert.pem"), "w") as fh:
        fh.write(open(os.path.join(d, "server.key")).read() + open(os.path.join(d, "server.crt")).read())


PKI = None
import threading
PKI_LOCK = threading.Lock()


def pki():
    """made once per run (tests run in parallel threads)"""
    global PKI
    with PKI_LOCK:
        if PKI is None:
            import tempfile
            d = tempfile.mkdtemp(prefix="mxgate-pki-")
            make_pki(d)
            PKI = d
    return PKI


def home_with_users():
    home = h.Home()
    d = pki()
    home.write("servercert.pem", open(os.path.join(d, "servercert.pem")).read(), mode=0o600)
    home.write("clientca.pem", open(os.path.join(d, "ca.pem")).read())
    hashed = subprocess.run([h.prog("mxgate-authuser"), "--hash"], input="alice-pw\n", capture_output=True,
                            text=True, check=True).stdout.strip()
    home.write("users", f"alice:{hashed}:alice-cram:::{home.dir}:\n", mode=0o600)
    return home


def srv_for(home, env, args=True, **kw):
    e = {"AUTHDELAY": "0"}
    e.update(env)
    a = [h.prog("mxgate-authuser"), "/bin/true"] if args else []
    return h.smtpd(home, env=e, args=a, **kw)


def ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def line(srv, pid, row, rest):
    srv.wait_line(f"qmail-smtpd: pid {pid} {row}: {S} {rest}\n")


def test_tls_missing_and_starttls_rows():
    home = home_with_users()
    srv = srv_for(home, {"UCSPITLS": "!", "SMTPAUTH": ""})
    try:
        c = h.Client(srv.port)
        c.reply(); c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<a@remote.test>")[1] == ["530 5.7.0 Must issue a STARTTLS command first"]
        assert c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0alice-pw").decode())[0] == 530
        c.cmd("QUIT"); c.close()
        pid = srv.pids()[-1]
        line(srv, pid, "Reject::TLS::missing", "P:ESMTP H:client.test")
        with smtplib.SMTP("127.0.0.1", srv.port) as s:                 # STARTTLS + AUTH LOGIN
            s.ehlo("client.test"); s.starttls(context=ctx()); s.ehlo("client.test")
            s.login("alice", "alice-pw")
            s.sendmail("alice@example.test", ["far@elsewhere.test"], b"Subject: tls\r\n\r\nover tls\r\n")
        pid = srv.pids()[-1]
        line(srv, pid, "Accept::AUTH::plain", "P:ESMTPSA H:client.test ?~ 'alice'")
        line(srv, pid, "Accept::AUTH::plain", "P:ESMTPSA H:client.test F:alice@example.test T:far@elsewhere.test ?~ 'alice'")
    finally:
        srv.stop(); home.cleanup()


def test_starttls_pipelined_injection_is_discarded():
    home = home_with_users()
    srv = srv_for(home, {"UCSPITLS": ""})
    try:
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        f = raw.makefile("rb")
        f.readline()
        raw.sendall(b"EHLO client.test\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        raw.sendall(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")   # one write
        assert f.readline().startswith(b"220 ")
        t = ctx().wrap_socket(raw, server_hostname="mx.example.test")
        t.sendall(b"NOOP\r\n")
        first = t.recv(4096)
        assert first.startswith(b"250 2.0.0 ok"), first                 # the answer to NOOP, not to the injected MAIL
        t.sendall(b"RCPT TO:<alice@example.test>\r\n")
        assert t.recv(4096).startswith(b"503 "), "the injected MAIL must not have been taken"
        t.sendall(b"QUIT\r\n"); t.recv(4096); t.close()
        assert "injected@evil.test" not in srv.log()
    finally:
        srv.stop(); home.cleanup()


def test_tls_required_rows():
    home = home_with_users()
    srv = srv_for(home, {"UCSPITLS": "?", "SMTPAUTH": ""})
    d = pki()
    try:
        c = h.Client(srv.port)                                          # garbage instead of a ClientHello
        c.reply(); c.cmd("EHLO client.test")
        assert c.cmd("STARTTLS")[0] == 220
        c.send(b"this is not TLS\r\n" * 20)
        assert c.closed()
        pid = srv.pids()[-1]
        line(srv, pid, "Reject::TLS::required", "P:ESMTP H:client.test 'handshake\\x20failed'")
        for cert, detail in ((None, "no\\x20client\\x20certificate"), ("stranger", "client\\x20certificate\\x20not\\x20valid")):
            cx = ctx()
            if cert:
                cx.load_cert_chain(os.path.join(d, f"{cert}.crt"), os.path.join(d, f"{cert}.key"))
            s = smtplib.SMTP("127.0.0.1", srv.port)
            s.ehlo("client.test")
            s.starttls(context=cx)
            try:
                code, msg = s.ehlo("client.test")
            except smtplib.SMTPServerDisconnected:
                code = 454
            assert code == 454, (cert, code)
            pid = srv.pids()[-1]
            line(srv, pid, "Reject::TLS::required", f"P:ESMTPS H:client.test '{detail}'")
        cx = ctx()                                                      # a valid certificate: relaying allowed
        cx.load_cert_chain(os.path.join(d, "client.crt"), os.path.join(d, "client.key"))
        with smtplib.SMTP("127.0.0.1", srv.port) as s:
            s.ehlo("client.test"); s.starttls(context=cx); s.ehlo("client.test")
            s.sendmail("client@example.test", ["far@elsewhere.test"], b"Subject: cert\r\n\r\nx\r\n")
        pid = srv.pids()[-1]
        line(srv, pid, "Accept::SNDR::Relay_Client", "P:ESMTPS H:client.test F:client@example.test T:far@elsewhere.test")
    finally:
        srv.stop(); home.cleanup()


def test_auth_rows():
    home = home_with_users()
    srv = srv_for(home, {"SMTPAUTH": "!+cram", "UCSPITLS": "-"})
    try:
        c = h.Client(srv.port)
        c.reply(); c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<a@remote.test>")[1] == ["530 5.7.0 Authentication required"]
        assert c.cmd("AUTH LOGIN " + base64.b64encode(b"alice").decode())[0] == 334
        assert c.cmd(base64.b64encode(b"wrong").decode())[1] == ["535 5.7.8 Authentication credentials invalid"]
        assert c.cmd("MAIL FROM:<a@remote.test>")[1] == ["535 5.7.8 Authentication failed; sender refused"]
        assert c.cmd("AUTH DIGEST-MD5")[1] == ["504 5.5.4 Unrecognized authentication type"]
        assert c.cmd("AUTH PLAIN !!notbase64")[0] == 501
        assert c.cmd("AUTH LOGIN")[0] == 334 and c.cmd("*")[0] == 501
        code, lines = c.cmd("AUTH CRAM-MD5")                           # CRAM-MD5 with the stored secret
        chal = base64.b64decode(lines[0][4:])
        digest = hmac.new(b"alice-cram", chal, "md5").hexdigest()
        assert c.cmd(base64.b64encode(b"alice " + digest.encode()).decode())[0] == 235
        assert c.cmd("AUTH PLAIN x")[0] == 503                         # a second AUTH
        assert c.cmd("MAIL FROM:<alice@example.test>")[0] == 250
        assert c.cmd("RCPT TO:<far@elsewhere.test>")[0] == 250
        c.cmd("QUIT"); c.close()
        pid = srv.pids()[-1]
        line(srv, pid, "Reject::AUTH::missing", "P:ESMTP H:client.test")
        line(srv, pid, "Reject::AUTH::login", "P:ESMTP H:client.test ?~ 'alice'")
        line(srv, pid, "Reject::ORIG::Failed_Auth", "P:ESMTP H:client.test")
        line(srv, pid, "Reject::AUTH::Method", "P:ESMTP H:client.test")
        line(srv, pid, "Accept::AUTH::cram-md5", "P:ESMTPA H:client.test ?~ 'alice'")
        line(srv, pid, "Accept::AUTH::cram-md5", "P:ESMTPA H:client.test F:alice@example.test T:far@elsewhere.test ?~ 'alice'")
        with smtplib.SMTP("127.0.0.1", srv.port) as s:                 # PLAIN refused: Reject::AUTH::plain
            s.ehlo("client.test")
            try:
                s.auth("PLAIN", lambda challenge=None: "\0alice\0bad", initial_response_ok=True)
            except smtplib.SMTPAuthenticationError as e:
                assert e.smtp_code == 535
        line(srv, srv.pids()[-1], "Reject::AUTH::plain", "P:ESMTP H:client.test ?~ 'alice'")
        c = h.Client(srv.port)                                          # CRAM-MD5 refused
        c.reply(); c.cmd("EHLO client.test")
        c.cmd("AUTH CRAM-MD5")
        assert c.cmd(base64.b64encode(b"alice 00000000000000000000000000000000").decode())[0] == 535
        c.cmd("QUIT"); c.close()
        line(srv, srv.pids()[-1], "Reject::AUTH::cram-md5", "P:ESMTP H:client.test ?~ 'alice'")
    finally:
        srv.stop(); home.cleanup()


def test_auth_setup_and_limits():
    home = home_with_users()
    srv = srv_for(home, {"SMTPAUTH": "", "UCSPITLS": "-"}, args=False)
    try:
        c = h.Client(srv.port)
        c.reply(); c.cmd("EHLO client.test")
        assert c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0alice-pw").decode())[1] == \
            ["454 4.7.0 Temporary authentication failure"]
        c.cmd("QUIT"); c.close()
        line(srv, srv.pids()[-1], "Reject::AUTH::setup", "P:ESMTP H:client.test")
    finally:
        srv.stop()
    srv = srv_for(home, {"SMTPAUTH": "", "UCSPITLS": "-", "AUTHDELAY": "1"})
    try:
        c = h.Client(srv.port)
        c.reply(); c.cmd("EHLO client.test")
        t0 = time.time()
        codes = [c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0nope%d" % i).decode())[0] for i in range(2)]
        assert codes == [535] * 2 and time.time() - t0 >= 2              # each failure is delayed
        assert c.cmd("AUTH PLAIN " + "A" * 10000)[1] == ["500 5.5.2 Line too long"]   # a 10 KB AUTH line
        assert c.cmd("AUTH LOGIN " + base64.b64encode(b"al\0ice").decode())[0] == 334
        assert c.cmd(base64.b64encode(b"pw").decode())[0] == 535           # NUL in the user: refused, escaped
        line(srv, srv.pids()[-1], "Reject::AUTH::login", "P:ESMTP H:client.test ?~ 'al\\x00ice'")
        replies = []
        for i in range(1000):                                            # bounded: closed after the limit
            try:
                replies.append(c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0again%d" % i).decode())[1][-1])
            except (EOFError, OSError):
                break
        assert replies[-1] == "421 4.7.0 Too many authentication failures; closing connection", replies[-3:]
        assert len(replies) < 10
    finally:
        srv.stop(); home.cleanup()


def test_failing_checkprogram_counts_towards_the_failure_limit():
    """a checkprogram that exits 111 (it cannot tell): each AUTH is logged
    and answered 454 at once, and the fifth closes the connection as five
    wrong passwords do"""
    home = home_with_users()
    temp = home.write("temp", "#!/bin/sh\nexit 111\n", mode=0o755)
    srv = h.smtpd(home, env={"SMTPAUTH": "", "UCSPITLS": "-", "AUTHDELAY": "0"}, args=[temp, "/bin/true"])
    try:
        c = h.Client(srv.port)
        c.reply(); c.cmd("EHLO client.test")
        for i in range(5):
            assert c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0pw%d" % i).decode())[1] == \
                ["454 4.7.0 Temporary authentication failure"], i
        assert c.reply()[1] == ["421 4.7.0 Too many authentication failures; closing connection"]
        pid = srv.pids()[-1]
        srv.wait_end(pid)
        want = f"qmail-smtpd: pid {pid} Reject::AUTH::setup: {S} P:ESMTP H:client.test ?~ 'alice'"
        assert srv.lines(want) == [want] * 5, srv.log()
    finally:
        srv.stop(); home.cleanup()


def test_mav_rows():
    def rules_home():
        home = home_with_users()
        subprocess.run(["cdb", "-c", home.path("control", "mailfromrules.cdb")],
                       input=b"+9,1:127.0.0.1->!\n\n", check=True)
        return home
    home = rules_home()
    srv = srv_for(home, {"SMTPAUTH": "", "UCSPITLS": "-", "AUTH_CLEARTEXT": "1", "LOCALMFCHECK": ""})
    try:
        c = h.Client(srv.port)                   # not a relay client: not judged, as in s/qmail (D13)
        c.reply(); c.cmd("EHLO client.test"); c.cmd("MAIL FROM:<alice@example.test>")
        assert c.cmd("RCPT TO:<bob@example.test>")[1] == ["250 2.1.5 Recipient ok"]
        c.cmd("QUIT"); c.close()
        line(srv, srv.pids()[-1], "Accept::RCPT::Rcpthosts_Rcptto", "P:ESMTP H:client.test F:alice@example.test T:bob@example.test")
        with smtplib.SMTP("127.0.0.1", srv.port) as s:                  # authenticated: foreign sender refused
            s.ehlo("client.test"); s.login("alice", "alice-pw")
            s.mail("alice@other.test")
            assert s.rcpt("far@elsewhere.test")[0] == 553
            s.rset(); s.mail("alice@example.test")
            assert s.rcpt("far@elsewhere.test")[0] == 250
        pid = srv.pids()[-1]
        line(srv, pid, "Reject::ORIG::Invalid_Sender", "P:ESMTPA H:client.test F:alice@other.test T:far@elsewhere.test")
        line(srv, pid, "Accept::ORIG::Local_Sender", "P:ESMTPA H:client.test F:alice@example.test T:far@elsewhere.test")
    finally:
        srv.stop(); home.cleanup()
    home = rules_home()
    relay = h.tcprules(home.path("rules.cdb"), '127.0.0.1:allow,RELAYCLIENT=""\n')
    srv = srv_for(home, {"SMTPAUTH": "", "UCSPITLS": "-", "AUTH_CLEARTEXT": "1", "LOCALMFCHECK": "!"}, rules=relay)
    try:
        c = h.Client(srv.port)                            # a relay client; the rule says: authenticate first
        c.reply(); c.cmd("EHLO client.test"); c.cmd("MAIL FROM:<x@remote.test>")
        assert c.cmd("RCPT TO:<bob@example.test>")[1] == ["530 5.7.0 Authentication required for this client"]
        c.cmd("QUIT"); c.close()
        line(srv, srv.pids()[-1], "Reject::ORIG::Missing_Auth", "P:ESMTP H:client.test F:x@remote.test T:bob@example.test")
    finally:
        srv.stop(); home.cleanup()
    home = home_with_users()
    srv = srv_for(home, {"SMTPAUTH": "", "UCSPITLS": "-", "AUTH_CLEARTEXT": "1", "LOCALMFCHECK": "="})
    try:
        with smtplib.SMTP("127.0.0.1", srv.port) as s:                   # '=': the sender is the user name
            s.ehlo("client.test"); s.login("alice", "alice-pw")
            s.mail("alice@example.test")
            assert s.rcpt("far@elsewhere.test")[0] == 553
        line(srv, srv.pids()[-1], "Reject::ORIG::Invalid_Sender",
             "P:ESMTPA H:client.test F:alice@example.test T:far@elsewhere.test")
    finally:
        srv.stop(); home.cleanup()


def test_smtps_and_command_line_clients():
    home = home_with_users()
    srv = srv_for(home, {"SMTPS": "1", "SMTPAUTH": "!"})
    try:
        with smtplib.SMTP_SSL("127.0.0.1", srv.port, context=ctx()) as s:
            s.ehlo("client.test"); s.login("alice", "alice-pw")
            s.sendmail("alice@example.test", ["bob@example.test"], b"Subject: smtps\r\n\r\nimplicit tls\r\n")
        line(srv, srv.pids()[-1], "Accept::AUTH::plain", "P:ESMTPSA H:client.test ?~ 'alice'")
        assert b"Subject: smtps" in home.delivered("bob")[0]
        assert b"(version=TLSv1.3 cipher=" in home.delivered("bob")[0] and b"(authenticated as alice)" in home.delivered("bob")[0]
    finally:
        srv.stop()
    srv = srv_for(home, {"SMTPAUTH": "!", "UCSPITLS": "!"})
    try:
        r = subprocess.run(["swaks", "--server", f"127.0.0.1:{srv.port}", "--tls", "--auth", "LOGIN", "--auth-user",
                            "alice", "--auth-password", "alice-pw", "--from", "alice@example.test", "--to",
                            "bob@example.test"], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-500:]
        r = subprocess.run(["curl", "-sk", "--ssl-reqd", f"smtp://127.0.0.1:{srv.port}", "--user", "alice:alice-pw",
                            "--mail-from", "alice@example.test", "--mail-rcpt", "bob@example.test", "-T", "-"],
                           input=b"Subject: curl\r\n\r\nhi\r\n")
        assert r.returncode == 0
        r = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{srv.port}", "-quiet"],
                           input=b"EHLO client.test\r\nQUIT\r\n", capture_output=True, timeout=20)
        assert b"250-mx.example.test" in r.stdout and b"221 " in r.stdout, r.stdout
        assert len(home.delivered("bob")) == 3
    finally:
        srv.stop(); home.cleanup()


def test_certificate_email_is_the_sender_for_localmfcheck_question():
    """UCSPITLS=@: a valid client certificate authenticates; LOCALMFCHECK=?
    then lets it send only as the certificate's e-mail address"""
    home = home_with_users()
    d = pki()
    srv = srv_for(home, {"UCSPITLS": "@", "LOCALMFCHECK": "?"})
    try:
        cx = ctx()
        cx.load_cert_chain(os.path.join(d, "client.crt"), os.path.join(d, "client.key"))
        with smtplib.SMTP("127.0.0.1", srv.port) as s:
            s.ehlo("client.test"); s.starttls(context=cx); s.ehlo("client.test")
            s.mail("client@example.test")
            assert s.rcpt("far@elsewhere.test")[0] == 250
            s.rset(); s.mail("someone.else@example.test")
            assert s.rcpt("far@elsewhere.test")[0] == 553
        pid = srv.pids()[-1]
        line(srv, pid, "Accept::ORIG::Local_Sender", "P:ESMTPS H:client.test F:client@example.test T:far@elsewhere.test")
        line(srv, pid, "Reject::ORIG::Invalid_Sender", "P:ESMTPS H:client.test F:someone.else@example.test T:far@elsewhere.test")
    finally:
        srv.stop(); home.cleanup()


def test_tls_closed_mid_session():
    home = home_with_users()
    srv = srv_for(home, {"UCSPITLS": ""})
    try:
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        f = raw.makefile("rb")
        f.readline()
        raw.sendall(b"EHLO client.test\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        raw.sendall(b"STARTTLS\r\n")
        assert f.readline().startswith(b"220 ")
        t = ctx().wrap_socket(raw, server_hostname="mx.example.test")
        t.sendall(b"EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: x\r\n\r\nhal")
        time.sleep(0.3)
        t.close()                                                      # TCP gone, no close_notify
        pid = srv.pids()[-1]
        srv.wait_end(pid)
        assert "Queued" not in srv.log() and home.delivered("alice") == []
    finally:
        srv.stop(); home.cleanup()


def test_starttls_forgets_a_login_made_before_it():
    """AUTH CRAM-MD5 in the clear, then STARTTLS: the session starts over
    unauthenticated (RFC 3207 4.2), in the log and in what the queue program
    is told (no AUTHUSER, no TCPREMOTEINFO of the user)"""
    home = home_with_users()
    q, env_out = home.path("q"), home.path("queue-env")
    with open(q, "w") as fh:
        fh.write(f"#!/bin/sh\nenv > {env_out}; cat > /dev/null; cat <&1 > /dev/null; exit 0\n")
    os.chmod(q, 0o755)
    srv = srv_for(home, {"SMTPAUTH": "+cram", "QMAILQUEUE": q})
    try:
        c = h.Client(srv.port)
        c.reply()
        c.cmd("EHLO client.test")
        code, lines = c.cmd("AUTH CRAM-MD5")
        chal = base64.b64decode(lines[0][4:])
        digest = hmac.new(b"alice-cram", chal, "md5").hexdigest()
        assert c.cmd(base64.b64encode(f"alice {digest}".encode()).decode())[0] == 235
        assert c.cmd("STARTTLS")[0] == 220
        tls = ctx().wrap_socket(c.sock, server_hostname="mx.example.test")
        f = tls.makefile("rb")

        def cmd(line):
            tls.sendall(line.encode() + b"\r\n")
            while True:
                r = f.readline()
                if r[3:4] != b"-":
                    return int(r[:3])
        assert cmd("EHLO client.test") == 250
        assert cmd("MAIL FROM:<alice@example.test>") == 250
        assert cmd("RCPT TO:<bob@example.test>") == 250
        assert cmd("DATA") == 354
        assert cmd("Subject: after TLS\r\n\r\nhi\r\n.") == 250
        cmd("QUIT")
        tls.close()
        pid = srv.pids()[-1]
        srv.wait_end(pid)
        queued = [l for l in srv.log().splitlines() if "Accept::DATA::Queued" in l][0]
        assert " P:ESMTPS " in queued and "?~" not in queued, queued          # not ESMTPSA
        env = open(env_out).read()
        assert "AUTHUSER=" not in env and "TCPREMOTEINFO=alice" not in env, env
    finally:
        srv.stop(); home.cleanup()


def test_no_password_in_the_clear_when_tls_is_available():
    home = home_with_users()
    srv = srv_for(home, {"SMTPAUTH": "+cram"})                       # UCSPITLS unset, a certificate exists
    try:
        c = h.Client(srv.port)
        c.reply()
        code, ehlo = c.cmd("EHLO client.test")
        assert "250-STARTTLS" in ehlo and "250-AUTH CRAM-MD5" in ehlo, ehlo   # no LOGIN, no PLAIN before TLS
        assert c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0alice-pw").decode())[1] == \
            ["504 5.5.4 Unrecognized authentication type"]
        c.cmd("QUIT"); c.close()
        line(srv, srv.pids()[-1], "Reject::AUTH::Method", "P:ESMTP H:client.test")
        with smtplib.SMTP("127.0.0.1", srv.port) as s:                 # after STARTTLS all three are offered
            s.ehlo("client.test"); s.starttls(context=ctx()); s.ehlo("client.test")
            assert s.esmtp_features["auth"].split() == ["LOGIN", "PLAIN", "CRAM-MD5"]
    finally:
        srv.stop(); home.cleanup()
