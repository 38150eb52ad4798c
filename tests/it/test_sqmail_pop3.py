"""The s/qmail difference rows D33 and D34 (docs/decisions.md, "POP3 and
authentication"): POP3AUTH=apop adds APOP and keeps USER/PASS, and
mxgate-authuser reads s/qmail's users/authuser. Real sessions through the
real chain mxgate-popup -> mxgate-authuser -> mxgate-pop3d under
tcpserver, with Python's poplib, mail delivered by mxgate-smtpd; the login
rows come on fd 5. users/authuser's domain and wildcard lines are also
checked through SMTP AUTH (mxgate-smtpd -> mxgate-authuser)."""
import hashlib, os, poplib, smtplib
import harness as h
from test_popup_rows import pop_home, popd, deliver, line


def test_D33_pop3auth_apop_adds_apop_and_keeps_user_pass():
    home = pop_home()
    deliver(home)
    srv = popd(home, {"POP3AUTH": "apop"})
    try:
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        assert p.timestamp.search(p.getwelcome())               # APOP offered: the stamp in the greeting
        assert b"USER" in p.capa() or "USER" in p.capa()
        p.user("alice")
        p.pass_("alice-pw")
        assert p.stat()[0] == 1
        p.quit()
        pid = srv.pids()[-1]
        line(srv, pid, "Accept::AUTH::User", "P:POP3 ?~ 'alice'")
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        p.apop("alice", "alice-secret")
        assert p.stat()[0] == 1
        p.quit()
        line(srv, srv.pids()[-1], "Accept::AUTH::Apop", "P:POP3 ?~ 'alice'")
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        p.user("alice")
        try:
            p.pass_("wrong")
            assert False, "a wrong password was taken"
        except poplib.error_proto as e:
            assert str(e) == "b'-ERR authorization failed'", e
        p.quit()
        line(srv, srv.pids()[-1], "Reject::AUTH::User", "P:POP3 ?~ 'alice'")
    finally:
        srv.stop(); home.cleanup()


def authuser_home():
    """an s/qmail home: users/authuser and no control/users(.cdb); the
    Maildirs are those of control/maildirs (user@domain:/path/Maildir)"""
    home = h.Home()
    os.makedirs(home.path("users"))
    md5 = hashlib.md5(b"bob-pw").hexdigest()
    with open(home.path("users", "authuser"), "w") as fh:
        fh.write("# s/qmail's users/authuser\n"
                 "alice@example.test:alice-plain  \n"
                 f"bob@example.test:%{md5}\n"
                 "carol@example.test:carol-pw\n"
                 "!carol@example.test:\n")
    os.chmod(home.path("users", "authuser"), 0o600)
    with open(home.path("control", "maildirs"), "a") as fh:
        fh.write(f"carol@example.test:{home.path('maildirs', 'carol', 'Maildir')}\n")
    return home


def pop_count(port, user, password=None, apop=None):
    p = poplib.POP3("127.0.0.1", port, timeout=10)
    try:
        if apop:
            p.apop(user, apop)
        else:
            p.user(user)
            p.pass_(password)
        n = p.stat()[0]
        msgs = [b"\n".join(p.retr(i + 1)[1]) for i in range(n)]
        p.quit()
        return msgs
    except poplib.error_proto as e:
        p.close()
        return str(e)


def test_D34_authuser_reads_users_authuser():
    home = authuser_home()
    with smtplib.SMTP("127.0.0.1", (srv := h.smtpd(home)).port) as s:
        s.sendmail("sender@remote.test", ["alice@example.test"], b"Subject: to alice\r\n\r\nhello alice\r\n")
        s.sendmail("sender@remote.test", ["bob@example.test"], b"Subject: to bob\r\n\r\nhello bob\r\n")
    srv.stop()
    srv = popd(home, {"POP3AUTH": "+apop"})
    try:
        got = pop_count(srv.port, "alice@example.test", "alice-plain")      # a plaintext password
        assert len(got) == 1 and got[0].endswith(b"hello alice"), got
        line(srv, srv.pids()[-1], "Accept::AUTH::User", "P:POP3 ?~ 'alice@example.test'")
        got = pop_count(srv.port, "alice@EXAMPLE.TEST", None, apop="alice-plain")   # APOP; domain in any case
        assert len(got) == 1, got
        line(srv, srv.pids()[-1], "Accept::AUTH::Apop", "P:POP3 ?~ 'alice@EXAMPLE.TEST'")
        got = pop_count(srv.port, "bob@example.test", "bob-pw")              # "%" and the MD5 of it
        assert len(got) == 1 and got[0].endswith(b"hello bob"), got
        line(srv, srv.pids()[-1], "Accept::AUTH::User", "P:POP3 ?~ 'bob@example.test'")
        assert pop_count(srv.port, "bob@example.test", "%" + hashlib.md5(b"bob-pw").hexdigest()) \
            == "b'-ERR authorization failed'"                                # the hash is not a password
        assert pop_count(srv.port, "carol@example.test", "carol-pw") == "b'-ERR authorization failed'"   # !name
        line(srv, srv.pids()[-1], "Reject::AUTH::User", "P:POP3 ?~ 'carol@example.test'")
        assert pop_count(srv.port, "alice@example.test", "wrong") == "b'-ERR authorization failed'"
        line(srv, srv.pids()[-1], "Reject::AUTH::User", "P:POP3 ?~ 'alice@example.test'")
    finally:
        srv.stop()
    # neither control/users nor users/authuser: a temporary failure, said on stderr
    os.unlink(home.path("users", "authuser"))
    srv = popd(home)
    try:
        assert pop_count(srv.port, "alice@example.test", "alice-plain") == \
            "b'-ERR temporary authentication failure'"
        srv.wait_line("mxgate-authuser: temporary failure: no control/users.cdb, no control/users "
                      "and no users/authuser\n")
        line(srv, srv.pids()[-1], "Reject::AUTH::User", "P:POP3 ?~ 'alice@example.test'")
    finally:
        srv.stop(); home.cleanup()


def test_D34_users_authuser_domain_and_wildcard_entries_over_smtp_auth():
    """the same file serves SMTP AUTH: "@domain", "*" and "!@domain" lines"""
    from test_authuser_smtp import login
    home = h.Home()
    os.makedirs(home.path("users"))
    with open(home.path("users", "authuser"), "w") as fh:
        fh.write("!@blocked.test:\n@other.test:other-pw\n*:star-pw\nsys@example.test:?\n")
    srv = h.smtpd(home, env={"SMTPAUTH": "+cram", "AUTH_CLEARTEXT": "1", "AUTHDELAY": "0"},
                  args=[h.prog("mxgate-authuser"), "true"])
    S = "S:127.0.0.1:unknown"
    try:
        assert login(srv.port, "x@Other.Test", "other-pw", "PLAIN") == 235
        srv.wait_line(f"qmail-smtpd: pid {srv.pids()[-1]} Accept::AUTH::plain: {S} P:ESMTPA H:client.test ?~ 'x@Other.Test'\n")
        assert login(srv.port, "x@other.test", "star-pw", "LOGIN") == 535          # @domain before *
        srv.wait_line(f"qmail-smtpd: pid {srv.pids()[-1]} Reject::AUTH::login: {S} P:ESMTP H:client.test ?~ 'x@other.test'\n")
        assert login(srv.port, "z@any.test", "star-pw", "CRAM-MD5") == 235         # plain text: CRAM-MD5 too
        srv.wait_line(f"qmail-smtpd: pid {srv.pids()[-1]} Accept::AUTH::cram-md5: {S} P:ESMTPA H:client.test ?~ 'z@any.test'\n")
        assert login(srv.port, "y@blocked.test", "star-pw", "PLAIN") == 535        # !@domain
        srv.wait_line(f"qmail-smtpd: pid {srv.pids()[-1]} Reject::AUTH::plain: {S} P:ESMTP H:client.test ?~ 'y@blocked.test'\n")
        assert login(srv.port, "sys@example.test", "any", "PLAIN") == 454          # "?": not supported, said
        srv.wait_line("mxgate-authuser: temporary failure: users/authuser: the token '?' (system or "
                      "virtual-domain accounts) is not supported\n")
        srv.wait_line(f"qmail-smtpd: pid {srv.pids()[-1]} Reject::AUTH::setup: {S} P:ESMTP H:client.test ?~ 'sys@example.test'\n")
    finally:
        srv.stop(); home.cleanup()
