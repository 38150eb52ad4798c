"""docs/migrating.md, tried: an s/qmail site's home (control/, users/,
tcp.smtp.cdb made with tcprules) is kept as it is, and its run scripts have
qmail-smtpd, qmail-authuser, qmail-popup and qmail-pop3d replaced by
mxgate's programs, MXGATE_HOME naming the home. The scripts are run as
written (sh, tcpserver, the programs), clients come from three addresses
that tcp.smtp treats differently, and each session decides as s/qmail does
(the rows of docs/decisions.md, "Where mxgate differs from s/qmail"):
exact replies and exact log lines."""
import base64, os, poplib, shutil, smtplib, socket, subprocess, tempfile
import harness as h

REMOTE, RELAY, DENIED = "127.0.0.1", "127.0.0.2", "127.0.0.3"

TCP_SMTP = f"""# s/qmail's tcp.smtp, unchanged
{RELAY}:allow,RELAYCLIENT=""
{DENIED}:deny
:allow,HELOCHECK=".",MFDNSCHECK=""
"""

# the run scripts as migrating.md shows them; @...@ filled in by the test
SMTP_RUN = """#!/bin/sh
# was: exec tcpserver -v -HR -l0 -x @ETC@/tcp.smtp.cdb 0 smtp \\
#        qmail-smtpd qmail-authuser true 2>&1
MXGATE_HOME=@QMAIL@; export MXGATE_HOME
QMAILQUEUE=@BIN@/mxgate-queue; export QMAILQUEUE
SMTPAUTH=""; export SMTPAUTH
DNSCACHEIP=@DNS@; export DNSCACHEIP
exec tcpserver -v -HR -l0 -c 40 -x @ETC@/tcp.smtp.cdb 127.0.0.1 @PORT@ \\
  @BIN@/mxgate-smtpd @BIN@/mxgate-authuser true 2>&1
"""

POP3_RUN = """#!/bin/sh
# was: exec tcpserver -v -HR -l0 0 pop3 qmail-popup pop.example.test \\
#        qmail-authuser qmail-pop3d Maildir 2>&1 5>&1
MXGATE_HOME=@QMAIL@; export MXGATE_HOME
exec tcpserver -v -HR -l0 -c 40 127.0.0.1 @PORT@ \\
  @BIN@/mxgate-popup pop.example.test @BIN@/mxgate-authuser \\
  @BIN@/mxgate-pop3d Maildir 2>&1 5>&1
"""


class RunScript(h.Tcpserver):
    """a run script started as supervise would start it; its output is the log"""

    def __init__(self, text, subst):
        self.port = h.free_port()
        subst = dict(subst, PORT=str(self.port))
        for k, v in subst.items():
            text = text.replace(f"@{k}@", v)
        fd, self.script = tempfile.mkstemp(prefix="mxgate-run-")
        os.write(fd, text.encode())
        os.close(fd)
        self.logpath = tempfile.mktemp(prefix="mxgate-log-")
        self.logfh = open(self.logpath, "wb")
        self.proc = subprocess.Popen(["sh", self.script], env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                                     stdin=subprocess.DEVNULL, stdout=self.logfh, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        h.wait_for(self._ready, what="the run script's tcpserver")

    def stop(self):
        super().stop()
        os.unlink(self.script)


def sqmail_home(tmp):
    """/var/qmail as an s/qmail site has it: control/ with rcpthosts,
    badmailfrom and recipients naming users/recipients.cdb, users/authuser,
    Maildirs reached through control/maildirs (read by the queue program)"""
    home = h.Home()                      # control/me, rcpthosts, locals, Maildirs
    os.makedirs(home.path("users"))
    home.write("badmailfrom", "@spam.test\n@example.test+\n")
    home.write("recipients", "@example.test:users/recipients.cdb\n")
    with open(home.path("users", "recipients"), "w") as fh:
        fh.write("alice@example.test\nbob@example.test\nlist-@example.test\n")
    subprocess.run([h.prog("mxgate-cdb"), "recipients", "users/recipients"], check=True,
                   env={"MXGATE_HOME": home.dir})
    with open(home.path("users", "authuser"), "w") as fh:
        fh.write("alice@example.test:alice-pw\nbob@example.test:bob-pw\n")
    os.chmod(home.path("users", "authuser"), 0o600)
    etc = os.path.join(tmp, "etc")
    os.makedirs(etc)
    h.tcprules(os.path.join(etc, "tcp.smtp.cdb"), TCP_SMTP)
    return home, etc


def client(port, source):
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    c = h.Client.__new__(h.Client)
    c.sock, c.buf = sock, b""
    return c


def session(srv, source, cmds, helo="client.test"):
    """one session from source: greeting, EHLO, cmds; (pid, replies)"""
    before = len(srv.pids())
    c = client(srv.port, source)
    try:
        assert c.reply()[0] == 220
        c.cmd(f"EHLO {helo}")
        replies = [c.cmd(x) for x in cmds]
        c.cmd("QUIT")
    finally:
        c.close()
    h.wait_for(lambda: len(srv.pids()) > before, what="tcpserver's pid line")
    pid = srv.pids()[-1]
    srv.wait_end(pid)
    return pid, replies


def line(srv, pid, row, source, rest):
    srv.wait_line(f"qmail-smtpd: pid {pid} {row}: S:{source}:unknown {rest}\n")


def test_sqmail_home_and_run_scripts_decide_as_sqmail():
    tmp = tempfile.mkdtemp(prefix="mxgate-migrate-")
    home, etc = sqmail_home(tmp)
    dns = h.Dnsmasq(["--mx-host=remote.test,mx.remote.test,10", "--host-record=mx.remote.test,192.0.2.25",
                     "--mx-host=example.test,mx.example.test,10", "--host-record=mx.example.test,192.0.2.26"])
    subst = {"QMAIL": home.dir, "ETC": etc, "BIN": h.BIN, "DNS": dns.spec}
    srv = RunScript(SMTP_RUN, subst)
    try:
        # a server on the Internet: the recipients cdb decides (D1, D9), the
        # extension form through list-@ (D5), fail-closed for the rest (D3)
        pid, r = session(srv, REMOTE, ["MAIL FROM:<joe@remote.test>", "RCPT TO:<alice@example.test>",
                                       "RCPT TO:<list-owner@example.test>", "RCPT TO:<nobody@example.test>",
                                       "RCPT TO:<x@elsewhere.test>"])
        assert [x[0] for x in r] == [250, 250, 250, 550, 553], r
        line(srv, pid, "Accept::RCPT::Recipients_Cdb", REMOTE, "P:ESMTP H:client.test F:joe@remote.test T:alice@example.test")
        line(srv, pid, "Accept::RCPT::Recipients_Cdb", REMOTE,
             "P:ESMTP H:client.test F:joe@remote.test T:list-owner@example.test")
        line(srv, pid, "Reject::RCPT::Failed_Rcptto", REMOTE,
             "P:ESMTP H:client.test F:joe@remote.test T:nobody@example.test")
        line(srv, pid, "Reject::SNDR::Invalid_Relay", REMOTE, "P:ESMTP H:client.test F:joe@remote.test T:x@elsewhere.test")
        # badmailfrom: @spam.test always, @example.test+ only from non-relay clients (D11)
        pid, r = session(srv, REMOTE, ["MAIL FROM:<alice@example.test>", "RCPT TO:<bob@example.test>"])
        assert r[1] == (553, ["553 5.7.1 Sender address rejected"]), r
        line(srv, pid, "Reject::ORIG::Bad_Mailfrom", REMOTE,
             "P:ESMTP H:client.test F:alice@example.test T:bob@example.test '+'")
        pid, r = session(srv, RELAY, ["MAIL FROM:<alice@example.test>", "RCPT TO:<x@elsewhere.test>"])
        assert r[1] == (250, ["250 2.1.5 Recipient ok"]), r
        line(srv, pid, "Accept::SNDR::Relay_Client", RELAY, "P:ESMTP H:client.test F:alice@example.test T:x@elsewhere.test")
        pid, r = session(srv, RELAY, ["MAIL FROM:<joe@spam.test>", "RCPT TO:<x@elsewhere.test>"])
        assert r[1][0] == 553, r
        line(srv, pid, "Reject::ORIG::Bad_Mailfrom", RELAY, "P:ESMTP H:client.test F:joe@spam.test T:x@elsewhere.test '@'")
        # tcp.smtp's HELOCHECK="." for the Internet: a HELO is required
        pid, r = session(srv, REMOTE, ["MAIL FROM:<joe@remote.test>", "RCPT TO:<bob@example.test>"], helo="")
        assert r[1][0] == 550, r
        # MFDNSCHECK from tcp.smtp: a sender domain without MX or address
        pid, r = session(srv, REMOTE, ["MAIL FROM:<joe@nowhere.test>", "RCPT TO:<bob@example.test>"])
        assert r[1][0] == 553, r
        line(srv, pid, "Reject::ORIG::DNS_MF", REMOTE, "P:ESMTP H:client.test F:joe@nowhere.test T:bob@example.test")
        # a user of users/authuser sends through AUTH, as with qmail-authuser (D34)
        plain = base64.b64encode(b"\0alice@example.test\0alice-pw").decode()
        pid, r = session(srv, REMOTE, [f"AUTH PLAIN {plain}", "MAIL FROM:<alice@example.test>",
                                       "RCPT TO:<x@elsewhere.test>"])
        assert [x[0] for x in r] == [235, 250, 250], r
        line(srv, pid, "Accept::AUTH::plain", REMOTE, "P:ESMTPA H:client.test ?~ 'alice@example.test'")
        line(srv, pid, "Accept::AUTH::plain", REMOTE,
             "P:ESMTPA H:client.test F:alice@example.test T:x@elsewhere.test ?~ 'alice@example.test'")
        # tcp.smtp's deny: tcpserver refuses, no session
        c = client(srv.port, DENIED)
        assert c.closed()
        c.close()
        srv.wait_line(f"tcpserver: deny ")
        assert f":{DENIED}::" in [l for l in srv.lines("tcpserver: deny ")][-1]
        # a message for a local user goes through QMAILQUEUE into her Maildir
        with smtplib.SMTP("127.0.0.1", srv.port, source_address=(REMOTE, 0)) as s:
            s.sendmail("joe@remote.test", ["bob@example.test"], b"Subject: migrated\r\n\r\nhello bob\r\n")
        srv.wait_line("Accept::DATA::Queued: S:127.0.0.1:unknown P:ESMTP H:")
        h.wait_for(lambda: home.delivered("bob"), what="delivery to bob")
    finally:
        srv.stop(); dns.stop()
    # and read back through the POP3 run script, users/authuser's password
    pop = RunScript(POP3_RUN, subst)
    try:
        p = poplib.POP3("127.0.0.1", pop.port, timeout=10)
        p.user("bob@example.test")
        try:
            p.pass_("bob-pw")
        except poplib.error_proto:
            raise AssertionError(pop.log())
        assert p.stat()[0] == 1
        assert b"hello bob" in b"\n".join(p.retr(1)[1])
        p.quit()
        pid = pop.pids()[-1]
        pop.wait_line(f"qmail-popup: pid {pid} Accept::AUTH::User: S:127.0.0.1:unknown P:POP3 ?~ 'bob@example.test'\n")
    finally:
        pop.stop(); home.cleanup(); shutil.rmtree(tmp, ignore_errors=True)
