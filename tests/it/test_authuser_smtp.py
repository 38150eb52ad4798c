"""mxgate-authuser as the checkprogram of the real mxgate-smtpd under real
tcpserver, with real clients: Python smtplib (LOGIN, PLAIN, CRAM-MD5) and
swaks. Asserts the replies and the AUTH log rows the smtpd writes.
"""
import os, smtplib, subprocess
from harness import Home, prog, smtpd
from test_authuser import make_hash, PASSWORD

SECRET = "cram:secret\\x"          # a colon and a backslash, escaped in the file


def auth_home():
    home = Home()
    md = home.path("maildirs")
    esc = SECRET.replace("\\", "\\\\").replace(":", "\\:")
    home.write("users", f"alice:{make_hash()}:{esc}:::{md}/alice:\n"
                        f"!bob:{make_hash()}:{esc}:::{md}/bob:\n", mode=0o600)
    return home


ENV = {"SMTPAUTH": "+cram", "AUTH_CLEARTEXT": "1", "AUTHDELAY": "0"}


def login(port, user, secret, mech):
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    try:
        s.ehlo("client.test")
        s.user, s.password = user, secret
        code, _ = s.auth(mech, getattr(s, "auth_" + mech.lower().replace("-", "_")),
                         initial_response_ok=False)
        return code
    except smtplib.SMTPAuthenticationError as e:
        return e.smtp_code
    finally:
        try:
            s.quit()
        except Exception:
            pass


def test_smtp_auth_through_authuser():
    home = auth_home()
    srv = smtpd(home, env=ENV, args=[prog("mxgate-authuser"), "true"])
    try:
        assert login(srv.port, "alice", PASSWORD, "LOGIN") == 235
        assert login(srv.port, "alice", PASSWORD, "PLAIN") == 235
        assert login(srv.port, "alice", SECRET, "CRAM-MD5") == 235
        assert login(srv.port, "alice", "wrong", "PLAIN") == 535
        assert login(srv.port, "alice", "wrong", "CRAM-MD5") == 535
        assert login(srv.port, "bob", PASSWORD, "LOGIN") == 535       # disabled
        assert login(srv.port, "carol", PASSWORD, "LOGIN") == 535     # unknown
        srv.wait_line("Reject::AUTH::login", timeout=30)
        log = srv.log()
        for row in ("Accept::AUTH::login", "Accept::AUTH::plain", "Accept::AUTH::cram-md5",
                    "Reject::AUTH::plain", "Reject::AUTH::cram-md5", "Reject::AUTH::login"):
            assert row in log, row
        assert "?~ 'alice'" in log
        assert PASSWORD not in log and "secret" not in log
    finally:
        srv.stop()
        home.cleanup()


def test_smtp_auth_setup_error_without_users_file():
    home = auth_home()
    os.unlink(os.path.join(home.control, "users"))
    srv = smtpd(home, env=ENV, args=[prog("mxgate-authuser"), "true"])
    try:
        assert login(srv.port, "alice", PASSWORD, "LOGIN") == 454
        srv.wait_line("Reject::AUTH::setup", timeout=30)
        assert "mxgate-authuser: temporary failure: no control/users.cdb, no control/users and no users/authuser" in srv.log()
    finally:
        srv.stop()
        home.cleanup()


def test_swaks_cram_md5():
    home = auth_home()
    srv = smtpd(home, env=ENV, args=[prog("mxgate-authuser"), "true"])
    try:
        p = subprocess.run(["swaks", "--server", f"127.0.0.1:{srv.port}", "--quit-after", "AUTH",
                            "--auth", "CRAM-MD5", "--auth-user", "alice", "--auth-password", SECRET],
                           capture_output=True, timeout=60)
        assert b"235 " in p.stdout, p.stdout
        srv.wait_line("Accept::AUTH::cram-md5", timeout=30)
    finally:
        srv.stop()
        home.cleanup()
