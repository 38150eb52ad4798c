"""s/qmail compatibility rows D20-D22: TLS done by sslserver (ucspi-ssl),
both ways of UCSPI-TLS, and when STARTTLS and AUTH are offered.

sslserver is not packaged for Debian 12: tests/it/ucspitls.py is a small
UCSPI-TLS server that follows its protocol (SMTPS/POP3S with plaintext
pipes and PROTO=SSL; -n: SSLCTLFD/SSLREADFD/SSLWRITEFD, "Y", the SSL_*
block). The clients are real: swaks, openssl s_client, curl, smtplib,
poplib, and raw sockets for exact transcripts."""
import json, os, poplib, smtplib, socket, ssl, subprocess
import harness as h
from ucspitls import Sslserver
from test_submission import pki, home_with_users, ctx
from test_popup_rows import pop_home

S = "S:127.0.0.1:unknown"
EHLO_HEAD = ["250-mx.example.test", "250-PIPELINING", "250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250-SMTPUTF8"]


def smtpd_ssl(home, env, delayed=False, clientca=False, auth=True, tcpenv=True):
    """mxgate-smtpd under the UCSPI-TLS server, sslserver's certificate being the test PKI's"""
    d = pki()
    e = {"MXGATE_HOME": home.dir, "AUTHDELAY": "0"}
    e.update(env)
    args = [h.prog("mxgate-authuser"), "/bin/true"] if auth else []
    return Sslserver([h.prog("mxgate-smtpd")] + args, os.path.join(d, "servercert.pem"), env=e, delayed=delayed,
                     clientca=os.path.join(d, "ca.pem") if clientca else None, tcpenv=tcpenv)


def line(srv, pid, row, rest):
    srv.wait_line(f"qmail-smtpd: pid {pid} {row}: {S} {rest}\n")


def swaks(*args):
    r = subprocess.run(["swaks", "--helo", "client.test"] + list(args), capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout


def tls_client(cert=None):
    c = ctx()
    if cert:
        d = pki()
        c.load_cert_chain(os.path.join(d, f"{cert}.crt"), os.path.join(d, f"{cert}.key"))
    return c


def test_D20_smtps_session_is_tls_from_sslserver():
    """PROTO=SSL: no second handshake (SMTPS=1 and an own certificate are
    there too), P:ESMTPS, AUTH offered at once, the SSL_* facts in Received"""
    home = home_with_users()
    srv = smtpd_ssl(home, {"SMTPAUTH": "", "SMTPS": "1"})
    try:
        with smtplib.SMTP_SSL("127.0.0.1", srv.port, context=tls_client()) as s:
            code, text = s.ehlo("client.test")
            assert code == 250
            assert text.decode().split("\n") == ["mx.example.test", "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES",
                                                 "SMTPUTF8", "AUTH LOGIN PLAIN", "SIZE 0"], text
            assert s.docmd("STARTTLS") == (503, b"5.5.1 TLS already active")
            s.mail("sender@remote.test")
            assert s.rcpt("bob@example.test") == (250, b"2.1.5 Recipient ok")
            s.data(b"Subject: smtps by sslserver\r\n\r\nhi\r\n")
        pid = srv.pids()[-1]
        line(srv, pid, "Accept::RCPT::Rcpthosts_Rcptto", "P:ESMTPS H:client.test F:sender@remote.test T:bob@example.test")
        msg = home.delivered("bob")[0]
        assert b"(mxgate) with ESMTPS (version=TLSv1.3 cipher=TLS_" in msg, msg[:400]
        rc, out = swaks("--server", f"127.0.0.1:{srv.port}", "--tlsc", "--auth", "LOGIN", "--auth-user", "alice",
                        "--auth-password", "alice-pw", "--from", "alice@example.test", "--to", "far@elsewhere.test")
        assert rc == 0, out[-800:]
        assert "<~  250-AUTH LOGIN PLAIN" in out and "STARTTLS" not in out, out
        pid = srv.pids()[-1]
        line(srv, pid, "Accept::AUTH::login", "P:ESMTPSA H:client.test ?~ 'alice'")
        r = subprocess.run(["curl", "-sk", f"smtps://127.0.0.1:{srv.port}/client.test", "--user", "alice:alice-pw",
                            "--mail-from", "alice@example.test", "--mail-rcpt", "bob@example.test", "-T", "-"],
                           input=b"Subject: curl smtps\r\n\r\nhi\r\n", timeout=60)
        assert r.returncode == 0
        line(srv, srv.pids()[-1], "Accept::AUTH::plain", "P:ESMTPSA H:client.test ?~ 'alice'")
        assert any(b"Subject: curl smtps" in m for m in home.delivered("bob"))
        assert "Reject::TLS" not in srv.log()
    finally:
        srv.stop()
    srv = smtpd_ssl(home, {}, tcpenv=False)          # sslserver without -e: SSLREMOTEIP names the client
    try:
        with smtplib.SMTP_SSL("127.0.0.1", srv.port, context=tls_client()) as s:
            s.ehlo("client.test")
            s.mail("sender@remote.test")
            assert s.rcpt("nobody@elsewhere.test") == (553, b"5.7.1 Relaying denied")
        line(srv, srv.pids()[-1], "Reject::SNDR::Invalid_Relay",
             "P:ESMTPS H:client.test F:sender@remote.test T:nobody@elsewhere.test")
    finally:
        srv.stop(); home.cleanup()


def test_D20_smtps_client_certificate_variables_are_honoured():
    """UCSPITLS=? under sslserver: SSL_CLIENT_S_DN (a certificate sslserver
    verified) grants relaying; none is refused before the greeting; UCSPITLS=@
    with LOCALMFCHECK=? takes SSL_CLIENT_S_DN_Email as the only sender"""
    home = home_with_users()
    srv = smtpd_ssl(home, {"UCSPITLS": "?"}, clientca=True, auth=False)
    try:
        with smtplib.SMTP_SSL("127.0.0.1", srv.port, context=tls_client("client")) as s:
            s.ehlo("client.test")
            s.mail("client@example.test")
            assert s.rcpt("far@elsewhere.test") == (250, b"2.1.5 Recipient ok")
        line(srv, srv.pids()[-1], "Accept::SNDR::Relay_Client",
             "P:ESMTPS H:client.test F:client@example.test T:far@elsewhere.test")
        raw = tls_client().wrap_socket(socket.create_connection(("127.0.0.1", srv.port), timeout=10))
        assert raw.recv(1000) == b"454 4.7.0 TLS not available\r\n"
        raw.close()
        line(srv, srv.pids()[-1], "Reject::TLS::required", "P:SMTPS 'no\\x20client\\x20certificate'")
    finally:
        srv.stop()
    srv = smtpd_ssl(home, {"UCSPITLS": "@", "LOCALMFCHECK": "?"}, clientca=True, auth=False)
    try:
        d = pki()
        rc, out = swaks("--server", f"127.0.0.1:{srv.port}", "--tlsc", "--tls-cert", os.path.join(d, "client.crt"),
                        "--tls-key", os.path.join(d, "client.key"), "--from", "client@example.test",
                        "--to", "far@elsewhere.test")
        assert rc == 0, out[-800:]
        pid = srv.pids()[-1]
        line(srv, pid, "Accept::ORIG::Local_Sender", "P:ESMTPS H:client.test F:client@example.test T:far@elsewhere.test")
        rc, out = swaks("--server", f"127.0.0.1:{srv.port}", "--tlsc", "--tls-cert", os.path.join(d, "client.crt"),
                        "--tls-key", os.path.join(d, "client.key"), "--from", "someone.else@example.test",
                        "--to", "far@elsewhere.test")
        assert rc != 0 and "<~* 553 5.7.1 Sender address not allowed for this client" in out, out[-800:]
        line(srv, srv.pids()[-1], "Reject::ORIG::Invalid_Sender",
             "P:ESMTPS H:client.test F:someone.else@example.test T:far@elsewhere.test")
    finally:
        srv.stop(); home.cleanup()


def test_D20_starttls_goes_through_ucspitls():
    """sslserver -n: STARTTLS offered with no certificate of mxgate's own;
    "Y" on SSLCTLFD, the SSL_* block, then the pipes: P:ESMTPS, and AUTH
    LOGIN PLAIN appear only after it (D21)"""
    home = home_with_users()
    os.unlink(home.path("control", "servercert.pem"))
    srv = smtpd_ssl(home, {"SMTPAUTH": ""}, delayed=True)
    try:
        c = h.Client(srv.port)
        assert c.reply() == (220, ["220 mx.example.test ESMTP"])
        assert c.cmd("EHLO client.test") == (250, EHLO_HEAD + ["250-STARTTLS", "250 SIZE 0"])
        assert c.cmd("STARTTLS") == (220, ["220 2.0.0 Ready to start TLS"])
        t = tls_client().wrap_socket(c.sock, server_hostname="mx.example.test")
        f = t.makefile("rb")
        t.sendall(b"EHLO client.test\r\n")
        ehlo = [f.readline().decode().rstrip("\r\n")]
        while ehlo[-1][3:4] == "-":
            ehlo.append(f.readline().decode().rstrip("\r\n"))
        assert ehlo == EHLO_HEAD + ["250-AUTH LOGIN PLAIN", "250 SIZE 0"], ehlo
        t.sendall(b"MAIL FROM:<sender@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        assert [f.readline() for _ in range(3)] == [b"250 2.1.0 Sender ok\r\n", b"250 2.1.5 Recipient ok\r\n",
                                                     b"354 3.0.0 Start mail input; end with <CRLF>.<CRLF>\r\n"]
        t.sendall(b"Subject: starttls by sslserver\r\n\r\nhi\r\n.\r\nQUIT\r\n")
        assert f.readline().startswith(b"250 ")
        t.close()
        pid = srv.pids()[-1]
        line(srv, pid, "Accept::RCPT::Rcpthosts_Rcptto", "P:ESMTPS H:client.test F:sender@remote.test T:bob@example.test")
        msg = home.delivered("bob")[0]
        assert b"(mxgate) with ESMTPS (version=TLSv1.3 cipher=TLS_" in msg, msg[:400]
        rc, out = swaks("--server", f"127.0.0.1:{srv.port}", "--tls", "--auth", "PLAIN", "--auth-user", "alice",
                        "--auth-password", "alice-pw", "--from", "alice@example.test", "--to", "far@elsewhere.test")
        assert rc == 0, out[-800:]
        line(srv, srv.pids()[-1], "Accept::AUTH::plain", "P:ESMTPSA H:client.test ?~ 'alice'")
        r = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{srv.port}", "-quiet"],
                           input=b"EHLO client.test\r\nQUIT\r\n", capture_output=True, timeout=30)
        assert b"250-AUTH LOGIN PLAIN\r\n" in r.stdout and b"221 2.0.0 mx.example.test closing connection" in r.stdout, r.stdout
        assert "Reject::TLS" not in srv.log()
        for p in srv.pids():
            srv.wait_end(p)
        got = subprocess.run([h.prog("mxgate-sessions"), "--format", "json", srv.logpath], capture_output=True,
                             text=True, check=True).stdout.splitlines()
        first = json.loads(got[0])                      # mxgate-sessions joins sslserver's lines and the rows
        assert (first["pid"], first["ip"], first["proto"], first["partial"], first["exit"]) == \
            (pid, "127.0.0.1", "ESMTPS", False, 0), first
        assert [e["row"] for e in first["events"]] == ["Accept::RCPT::Rcpthosts_Rcptto", "Accept::DATA::Queued"]
    finally:
        srv.stop(); home.cleanup()


def test_D20_starttls_under_ucspitls_discards_pipelined_commands():
    """a MAIL pipelined behind STARTTLS in the clear is never taken"""
    home = home_with_users()
    srv = smtpd_ssl(home, {}, delayed=True)
    try:
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        f = raw.makefile("rb")
        f.readline()
        raw.sendall(b"EHLO client.test\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        raw.sendall(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")   # one write
        assert f.readline() == b"220 2.0.0 Ready to start TLS\r\n"
        t = tls_client().wrap_socket(raw, server_hostname="mx.example.test")
        t.sendall(b"NOOP\r\n")
        assert t.recv(4096) == b"250 2.0.0 ok\r\n"                         # the answer to NOOP, not to the MAIL
        t.sendall(b"RCPT TO:<alice@example.test>\r\n")
        assert t.recv(4096) == b"503 5.5.1 MAIL first\r\n"
        t.sendall(b"QUIT\r\n"); t.recv(4096); t.close()
        srv.wait_end(srv.pids()[-1])
        assert "injected@evil.test" not in srv.log()
    finally:
        srv.stop(); home.cleanup()


def test_D20_starttls_handshake_failure_and_client_certificate():
    """sslserver closes the control socket when its handshake fails:
    Reject::TLS::required; UCSPITLS=@ and LOCALMFCHECK=? take the certificate
    from the block sslserver sent back"""
    home = home_with_users()
    srv = smtpd_ssl(home, {}, delayed=True)
    try:
        c = h.Client(srv.port)
        c.reply()
        c.cmd("EHLO client.test")
        assert c.cmd("STARTTLS")[0] == 220
        c.send(b"this is not TLS\r\n" * 20)
        assert c.closed()
        line(srv, srv.pids()[-1], "Reject::TLS::required", "P:ESMTP H:client.test 'handshake\\x20failed'")
    finally:
        srv.stop()
    srv = smtpd_ssl(home, {"UCSPITLS": "@", "LOCALMFCHECK": "?"}, delayed=True, clientca=True, auth=False)
    try:
        with smtplib.SMTP("127.0.0.1", srv.port) as s:
            s.ehlo("client.test"); s.starttls(context=tls_client("client")); s.ehlo("client.test")
            s.mail("client@example.test")
            assert s.rcpt("far@elsewhere.test") == (250, b"2.1.5 Recipient ok")
        line(srv, srv.pids()[-1], "Accept::ORIG::Local_Sender",
             "P:ESMTPS H:client.test F:client@example.test T:far@elsewhere.test")
        with smtplib.SMTP("127.0.0.1", srv.port) as s:                  # no certificate: refused after the handshake
            s.ehlo("client.test")
            s.starttls(context=tls_client())
            try:
                code = s.ehlo("client.test")[0]
            except smtplib.SMTPServerDisconnected:
                code = 454
            assert code == 454
        line(srv, srv.pids()[-1], "Reject::TLS::required", "P:ESMTPS H:client.test 'no\\x20client\\x20certificate'")
    finally:
        srv.stop(); home.cleanup()


def test_D21_login_plain_hidden_before_tls_shown_under_sslserver():
    """keep (RFC 4954): under tcpserver with a certificate, LOGIN and PLAIN
    wait for STARTTLS, a try in the clear is refused with a stderr note;
    under sslserver's SMTPS the session is TLS, so they show"""
    home = home_with_users()
    srv = h.smtpd(home, env={"SMTPAUTH": "", "AUTHDELAY": "0"}, args=[h.prog("mxgate-authuser"), "/bin/true"])
    try:
        c = h.Client(srv.port)
        c.reply()
        assert c.cmd("EHLO client.test") == (250, EHLO_HEAD + ["250-STARTTLS", "250 SIZE 0"])
        assert c.cmd("AUTH LOGIN") == (504, ["504 5.5.4 Unrecognized authentication type"])
        pid = srv.pids()[-1]
        line(srv, pid, "Reject::AUTH::Method", "P:ESMTP H:client.test")
        srv.wait_line(f"mxgate-smtpd: pid {pid} note: AUTH LOGIN refused before STARTTLS "
                      "(RFC 4954; AUTH_CLEARTEXT=1 allows it)\n")
        c.cmd("QUIT")
    finally:
        srv.stop()
    srv = smtpd_ssl(home, {"SMTPAUTH": ""})
    try:
        rc, out = swaks("--server", f"127.0.0.1:{srv.port}", "--tlsc", "--quit-after", "EHLO")
        assert rc == 0 and "<~  250-AUTH LOGIN PLAIN" in out, out
        with smtplib.SMTP_SSL("127.0.0.1", srv.port, context=tls_client()) as s:
            s.ehlo("client.test")
            assert s.login("alice", "alice-pw")[0] == 235
        line(srv, srv.pids()[-1], "Accept::AUTH::plain", "P:ESMTPSA H:client.test ?~ 'alice'")
        assert "note: AUTH" not in srv.log()
    finally:
        srv.stop(); home.cleanup()


def test_D22_starttls_offered_with_a_certificate_or_sslserver():
    """keep: STARTTLS is offered when a certificate exists (mxgate's own, or
    sslserver's under -n), UCSPITLS unset; UCSPITLS=- turns it off"""
    home = home_with_users()
    os.unlink(home.path("control", "servercert.pem"))
    srv = h.smtpd(home)
    try:
        c = h.Client(srv.port)
        c.reply()
        assert c.cmd("EHLO client.test") == (250, EHLO_HEAD + ["250 SIZE 0"])
        assert c.cmd("STARTTLS") == (502, ["502 5.5.1 STARTTLS not available"])
        c.cmd("QUIT")
    finally:
        srv.stop()
    for env, offered in (({}, True), ({"UCSPITLS": "-"}, False)):
        srv = smtpd_ssl(home, env, delayed=True, auth=False)
        try:
            c = h.Client(srv.port)
            c.reply()
            tail = ["250-STARTTLS", "250 SIZE 0"] if offered else ["250 SIZE 0"]
            assert c.cmd("EHLO client.test") == (250, EHLO_HEAD + tail), env
            if not offered:
                assert c.cmd("STARTTLS") == (502, ["502 5.5.1 STARTTLS not available"])
            c.cmd("QUIT")
        finally:
            srv.stop()
    home.cleanup()


# POP3: mxgate-popup's POP3S and STLS under sslserver

def popd_ssl(home, env=None, delayed=False):
    """mxgate-popup under the UCSPI-TLS server; its log on fd 5 for POP3S,
    and under -n on fd 2 (sslserver's descriptors may take 5: mxgate-popup
    then logs on 2, and a run script must not send 5 elsewhere)"""
    d = pki()
    e = {"MXGATE_HOME": home.dir, "POP3DELAY": "0"}
    e.update(env or {})
    return Sslserver([h.prog("mxgate-popup"), "pop.test", h.prog("mxgate-authuser"), h.prog("mxgate-pop3d"), "Maildir"],
                     os.path.join(d, "servercert.pem"), env=e, delayed=delayed,
                     wrapper=None if delayed else ["sh", "-c", 'exec "$@" 5>&2', "sh"])


def deliver(home):
    srv = h.smtpd(home)
    try:
        with smtplib.SMTP("127.0.0.1", srv.port) as s:
            s.sendmail("sender@remote.test", ["alice@example.test"], b"Subject: for pop\r\n\r\nline one\r\n")
    finally:
        srv.stop()


def popline(srv, pid, row, rest):
    srv.wait_line(f"qmail-popup: pid {pid} {row}: {S} {rest}\n")


def test_D20_pop3s_under_sslserver():
    """PROTO=SSL: POP3S from the first byte (POP3S=1 set as well: no second
    handshake), no STLS in CAPA, P:POP3S"""
    home = pop_home()
    deliver(home)
    srv = popd_ssl(home, {"POP3S": "1"})
    try:
        p = poplib.POP3_SSL("127.0.0.1", srv.port, context=tls_client(), timeout=10)
        assert p.getwelcome() == b"+OK pop.test"
        assert "STLS" not in p.capa() and "USER" in p.capa()
        p.user("alice")
        assert p.pass_("alice-pw").startswith(b"+OK")
        assert p.stat()[0] == 1
        p.quit()
        popline(srv, srv.pids()[-1], "Accept::AUTH::User", "P:POP3S ?~ 'alice'")
        r = subprocess.run(["curl", "-sk", f"pop3s://127.0.0.1:{srv.port}/1", "--user", "alice:alice-pw"],
                           capture_output=True, timeout=60)
        assert r.returncode == 0 and b"Subject: for pop\r\n" in r.stdout and b"line one" in r.stdout, r
        popline(srv, srv.pids()[-1], "Accept::AUTH::User", "P:POP3S ?~ 'alice'")
    finally:
        srv.stop(); home.cleanup()


def test_D20_stls_through_ucspitls():
    """sslserver -n: STLS offered with no certificate of mxgate's own, done
    by sslserver; what the client pipelined behind STLS is discarded;
    UCSPITLS=! refuses USER before it"""
    home = pop_home()
    os.unlink(home.path("control", "servercert.pem"))
    deliver(home)
    srv = popd_ssl(home, {"UCSPITLS": "!"}, delayed=True)
    try:
        c = h.Client(srv.port)
        assert c.readline() == "+OK pop.test"
        c.send(b"CAPA\r\n")
        capa = [c.readline()]
        while capa[-1] != ".":
            capa.append(c.readline())
        assert "STLS" in capa, capa
        c.send(b"USER alice\r\n")
        assert c.readline() == "-ERR STLS first"
        popline(srv, srv.pids()[-1], "Reject::STLS::Any", "P:POP3 ?~ 'unknown'")
        c.send(b"STLS\r\nUSER alice\r\n")                                   # one write: USER in the clear
        assert c.readline() == "+OK begin TLS"
        t = tls_client().wrap_socket(c.sock, server_hostname="pop.test")
        t.sendall(b"PASS alice-pw\r\n")
        assert t.recv(1000) == b"-ERR USER first\r\n"                       # the pipelined USER was not taken
        t.sendall(b"USER alice\r\nPASS alice-pw\r\n")
        f = t.makefile("rb")
        assert f.readline() == b"+OK\r\n" and f.readline().startswith(b"+OK")
        t.sendall(b"QUIT\r\n"); f.readline(); t.close()
        popline(srv, srv.pids()[-1], "Accept::AUTH::User", "P:POP3S ?~ 'alice'")
        r = subprocess.run(["openssl", "s_client", "-starttls", "pop3", "-connect", f"127.0.0.1:{srv.port}", "-quiet"],
                           input=b"USER alice\r\nPASS alice-pw\r\nSTAT\r\nQUIT\r\n", capture_output=True, timeout=30)
        assert b"+OK 1 " in r.stdout, r.stdout
        popline(srv, srv.pids()[-1], "Accept::AUTH::User", "P:POP3S ?~ 'alice'")
        r = subprocess.run(["curl", "-sk", "--ssl-reqd", f"pop3://127.0.0.1:{srv.port}/1", "--user", "alice:alice-pw"],
                           capture_output=True, timeout=60)
        assert r.returncode == 0 and b"Subject: for pop\r\n" in r.stdout, r
        assert "Reject::AUTH" not in srv.log()
    finally:
        srv.stop(); home.cleanup()
