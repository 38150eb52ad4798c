"""control/recipients as s/qmail reads it: rows D1-D10 of the s/qmail
audit (docs/decisions.md, "Where mxgate differs from s/qmail"). One test
per row, each a real session under tcpserver (or mxgate-listen with
MXGATE_MODE=listen) asserting the reply and the exact log line. The
recipients cdbs are made by mxgate-cdb from address lists, as an s/qmail
site makes them with qmail-recipients, and named relative to the home."""
import os, subprocess
import harness as h

S = "S:127.0.0.1:unknown"
F = "H:client.test F:a@remote.test"
OURS = ("example.test", ".example.test", "badexample.test", "ext.test", "other.test", "pam.test",
        ".pam.test", "wild.test")


def addresses(home, name, addrs):
    """users/NAME.cdb from a list of addresses, by mxgate-cdb recipients"""
    os.makedirs(home.path("users"), exist_ok=True)
    with open(home.path("users", name), "w") as fh:
        fh.write("".join(a + "\n" for a in addrs))
    subprocess.run([h.prog("mxgate-cdb"), "recipients", f"users/{name}"], check=True,
                   env={"PATH": os.environ["PATH"], "MXGATE_HOME": home.dir})
    return f"users/{name}.cdb"


def program(home, rel, body):
    """an executable script at $MXGATE_HOME/rel"""
    p = home.path(rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as fh:
        fh.write("#!/bin/bash\n" + body)
    os.chmod(p, 0o755)
    return p


# a checkpassword-style recipients program: the address is "$a"; it notes
# every address it is asked about in $MXGATE_HOME/asked (its working directory)
ASKING = 'IFS= read -r -d "" a <&3\necho "$a" >> asked\n'


def server(recipients, setup=None, env=None):
    home = h.Home(domains=())
    home.write("rcpthosts", "".join(d + "\n" for d in OURS))
    if setup:
        setup(home)
    if recipients is not None:
        home.write("recipients", recipients)
    return home, h.smtpd(home, env=env)


def talk(srv, rcpts):
    """one session: EHLO, MAIL, one RCPT each; returns (pid, [RCPT replies])"""
    c = h.Client(srv.port)
    c.reply()
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<a@remote.test>")[0] == 250
    out = [c.cmd(f"RCPT TO:<{r}>")[1] for r in rcpts]
    c.cmd("QUIT")
    c.close()
    pid = srv.pids()[-1]
    srv.wait_end(pid)
    return pid, out


def line(srv, pid, row, rcpt):
    srv.wait_line(f"qmail-smtpd: pid {pid} {row}: {S} P:ESMTP {F} T:{rcpt}\n")


def rows(srv, pid):
    """the decision lines of session pid"""
    return [l for l in srv.lines(f"qmail-smtpd: pid {pid} ")]


OK = ["250 2.1.5 Recipient ok"]
UNKNOWN = ["550 5.1.1 No such recipient here"]
DEFERRED = ["451 4.3.0 Temporary failure looking up the recipient"]


def test_D1_at_domain_lines_are_the_exact_domain_forms():
    def setup(home):
        cdb = addresses(home, "recipients", ["alice@example.test", "alice@sub.example.test"])
        program(home, "bin/pam", ASKING + 'exit 0\n')
        home.write("recipients", f"@example.test:{cdb}\n@pam.test|bin/pam\n!*\n")
    home, srv = server(None, setup)
    try:
        pid, r = talk(srv, ["alice@example.test", "bob@example.test", "alice@sub.example.test", "p@pam.test",
                            "p@sub.pam.test"])
        assert r == [OK, UNKNOWN, OK, OK, OK], r
        line(srv, pid, "Accept::RCPT::Recipients_Cdb", "alice@example.test")
        line(srv, pid, "Reject::RCPT::Failed_Rcptto", "bob@example.test")
        line(srv, pid, "Accept::RCPT::Recipients_Pam", "p@pam.test")
        # the exact forms do not meet subdomains: "!*" passes them, the cdb and the program are not asked
        line(srv, pid, "Accept::RCPT::Rcpthosts_Rcptto", "alice@sub.example.test")
        line(srv, pid, "Accept::RCPT::Rcpthosts_Rcptto", "p@sub.pam.test")
        assert open(home.path("asked")).read() == "p@pam.test\n"
    finally:
        srv.stop(); home.cleanup()


def test_D2_domain_lines_cover_every_subdomain():
    def setup(home):
        cdb = addresses(home, "recipients", ["carol@mail.example.test", "alice@example.test"])
        program(home, "bin/pam", ASKING + '[ "$a" = "p@deep.sub.pam.test" ] && exit 0\nexit 1\n')
        home.write("recipients", f"example.test:{cdb}\npam.test|bin/pam\n!*\n")
    home, srv = server(None, setup)
    try:
        pid, r = talk(srv, ["carol@mail.example.test", "dave@mail.example.test", "alice@example.test",
                            "p@deep.sub.pam.test", "x@badexample.test"])
        assert r == [OK, UNKNOWN, OK, OK, OK], r
        line(srv, pid, "Accept::RCPT::Recipients_Cdb", "carol@mail.example.test")
        line(srv, pid, "Reject::RCPT::Failed_Rcptto", "dave@mail.example.test")
        line(srv, pid, "Accept::RCPT::Recipients_Cdb", "alice@example.test")
        line(srv, pid, "Accept::RCPT::Recipients_Pam", "p@deep.sub.pam.test")
        # a subdomain is a whole label: badexample.test is not under example.test, "!*" passes it
        line(srv, pid, "Accept::RCPT::Rcpthosts_Rcptto", "x@badexample.test")
    finally:
        srv.stop(); home.cleanup()


def test_D3_fail_closed_a_recipient_no_line_applies_to_is_refused():
    def setup(home):
        home.write("recipients", "example.test:" + addresses(home, "recipients", ["alice@example.test"]) + "\n")
    home, srv = server(None, setup)
    try:
        pid, r = talk(srv, ["x@other.test", "alice@example.test"])
        assert r == [UNKNOWN, OK], r
        line(srv, pid, "Reject::RCPT::Failed_Rcptto", "x@other.test")
        line(srv, pid, "Accept::RCPT::Recipients_Cdb", "alice@example.test")
    finally:
        srv.stop(); home.cleanup()
    # a control/recipients with no line (comments only) knows nobody: every recipient refused
    home, srv = server("# nobody yet\n")
    try:
        pid, r = talk(srv, ["x@other.test"])
        assert r == [UNKNOWN], r
        line(srv, pid, "Reject::RCPT::Failed_Rcptto", "x@other.test")
    finally:
        srv.stop(); home.cleanup()
    # no control/recipients at all: rcpthosts alone decides, as before
    home, srv = server(None)
    try:
        pid, r = talk(srv, ["x@other.test"])
        assert r == [OK], r
        line(srv, pid, "Accept::RCPT::Rcpthosts_Rcptto", "x@other.test")
    finally:
        srv.stop(); home.cleanup()


def test_D4_bang_star_passes_only_domains_not_met_before():
    def setup(home):
        cdb = addresses(home, "recipients", ["alice@example.test", "g@ext.test"])
        home.write("recipients", f"example.test:{cdb}\n{cdb}\n!*\n")
    home, srv = server(None, setup)
    try:
        pid, r = talk(srv, ["bob@example.test", "x@other.test", "g@ext.test", "h@ext.test"])
        assert r == [UNKNOWN, OK, OK, OK], r
        line(srv, pid, "Reject::RCPT::Failed_Rcptto", "bob@example.test")      # met: "!*" does not pass it
        line(srv, pid, "Accept::RCPT::Rcpthosts_Rcptto", "x@other.test")
        line(srv, pid, "Accept::RCPT::Recipients_Cdb", "g@ext.test")           # the legacy line serves it
        line(srv, pid, "Accept::RCPT::Rcpthosts_Rcptto", "h@ext.test")         # a legacy line meets no domain
    finally:
        srv.stop(); home.cleanup()
    # "*:" meets every domain, so "!*" after it passes nothing
    home, srv = server(None, lambda hm: hm.write("recipients", "*:" + addresses(hm, "all", ["alice@example.test"])
                                                 + "\n!*\n"))
    try:
        pid, r = talk(srv, ["x@other.test", "alice@example.test"])
        assert r == [UNKNOWN, OK], r
        line(srv, pid, "Reject::RCPT::Failed_Rcptto", "x@other.test")
        line(srv, pid, "Accept::RCPT::Recipients_Cdb", "alice@example.test")
    finally:
        srv.stop(); home.cleanup()


def test_D5_address_extensions_through_the_break_key_and_a_second_question():
    def setup(home):
        cdb = addresses(home, "recipients", ["list-@ext.test", "me@ext.test", "me-@ext.test", "foo@ext.test"])
        program(home, "bin/pam", ASKING + '[ "$a" = "pam-@pam.test" ] && exit 0\nexit 1\n')
        home.write("recipients", f"ext.test:{cdb}\npam.test|bin/pam\n")
    home, srv = server(None, setup)
    try:
        pid, r = talk(srv, ["list-return-12-x=y.test@ext.test", "Me-Anything@EXT.test", "me@ext.test",
                            "foo-bar@ext.test", "pam-x-y@pam.test", "pam@pam.test", "Pam-Z@PAM.test"])
        assert r == [OK, OK, OK, UNKNOWN, OK, UNKNOWN, UNKNOWN], r
        line(srv, pid, "Accept::RCPT::Recipients_Cdb", "list-return-12-x=y.test@ext.test")
        line(srv, pid, "Accept::RCPT::Recipients_Cdb", "Me-Anything@EXT.test")
        line(srv, pid, "Accept::RCPT::Recipients_Cdb", "me@ext.test")
        # as s/qmail's recipients.c: the shorter key is "foo-@ext.test", "foo@ext.test" does not cover it
        line(srv, pid, "Reject::RCPT::Failed_Rcptto", "foo-bar@ext.test")
        line(srv, pid, "Accept::RCPT::Recipients_Pam", "pam-x-y@pam.test")
        line(srv, pid, "Reject::RCPT::Failed_Rcptto", "pam@pam.test")
        line(srv, pid, "Reject::RCPT::Failed_Rcptto", "Pam-Z@PAM.test")
        # the program was asked the address as given, then the shorter one (cut at the first '-',
        # the domain lower-cased, as s/qmail does)
        assert open(home.path("asked")).read() == ("pam-x-y@pam.test\npam-@pam.test\npam@pam.test\n"
                                                   "Pam-Z@PAM.test\nPam-@pam.test\n")
    finally:
        srv.stop(); home.cleanup()


def test_D6_an_unqualified_recipient_is_looked_up_at_localhost():
    def setup(home):
        cdb = addresses(home, "recipients", ["u@localhost", "v@mx.example.test"])
        home.write("recipients", f"localhost:{cdb}\nmx.example.test:{cdb}\n")
    home, srv = server(None, setup)
    try:
        pid, r = talk(srv, ["u", "v"])
        assert r == [OK, UNKNOWN], r
        # looked up as u@localhost; logged (and queued) with control/me, as before
        line(srv, pid, "Accept::RCPT::Recipients_Cdb", "u@mx.example.test")
        line(srv, pid, "Reject::RCPT::Failed_Rcptto", "v@mx.example.test")
    finally:
        srv.stop(); home.cleanup()


def test_D7_an_empty_cdb_refuses_or_defers_and_says_so():
    def setup(home):
        os.makedirs(home.path("users"))
        open(home.path("users", "zero.cdb"), "w").close()                  # 0 bytes: not a cdb
        home.write("recipients", "ext.test:users/zero.cdb\nexample.test:"
                   + addresses(home, "none", []) + "\n")                   # a cdb with no address
    home, srv = server(None, setup)
    try:
        pid, r = talk(srv, ["x@ext.test", "x@example.test"])
        assert r == [DEFERRED, UNKNOWN], r
        srv.wait_line(f"mxgate-smtpd: pid {pid} warning: recipients cdb users/zero.cdb: empty or not a cdb; "
                      "recipient deferred (451), s/qmail would accept every address\n")
        srv.wait_line(f"mxgate-smtpd: pid {pid} warning: recipients cdb users/none.cdb: holds no address; "
                      "recipient refused, s/qmail's man page says an empty cdb accepts all\n")
        line(srv, pid, "Reject::RCPT::Failed_Rcptto", "x@example.test")
        assert rows(srv, pid) == [f"qmail-smtpd: pid {pid} Reject::RCPT::Failed_Rcptto: {S} P:ESMTP {F} "
                                  "T:x@example.test"], rows(srv, pid)        # a 451 has no decision row
    finally:
        srv.stop(); home.cleanup()


def test_D8_a_missing_cdb_defers_with_a_warning():
    def setup(home):
        cdb = addresses(home, "recipients", ["alice@example.test"])
        home.write("recipients", f"example.test:users/missing.cdb\nexample.test:{cdb}\n")
    home, srv = server(None, setup)
    try:
        pid, r = talk(srv, ["alice@example.test"])
        assert r == [DEFERRED], r
        srv.wait_line(f"mxgate-smtpd: pid {pid} warning: recipients cdb users/missing.cdb: missing; "
                      "recipient deferred (451), s/qmail would skip the line\n")
        assert rows(srv, pid) == [], rows(srv, pid)
    finally:
        srv.stop(); home.cleanup()


def test_D9_a_relative_program_runs_from_the_home():
    def setup(home):
        os.makedirs(home.path("users"))
        with open(home.path("users", "pam-list"), "w") as fh:
            fh.write("p@pam.test\n")
        # relative program, relative argument, relative file: all under $MXGATE_HOME
        program(home, "bin/known", ASKING + 'grep -qxF "$a" "$1" && exit 0\nexit 1\n')
        home.write("recipients", "pam.test|bin/known users/pam-list\next.test|bin/absent\n")
    home, srv = server(None, setup)
    try:
        pid, r = talk(srv, ["p@pam.test", "q@pam.test", "x@ext.test"])
        assert r == [OK, UNKNOWN, DEFERRED], r
        line(srv, pid, "Accept::RCPT::Recipients_Pam", "p@pam.test")
        line(srv, pid, "Reject::RCPT::Failed_Rcptto", "q@pam.test")
        assert open(home.path("asked")).read() == "p@pam.test\nq@pam.test\n"
        # a program that cannot run: 451, said on stderr
        srv.wait_line(f"mxgate-smtpd: pid {pid} warning: recipients program bin/absent: cannot run: "
                      "No such file or directory\n")
        srv.wait_line(f"mxgate-smtpd: pid {pid} warning: recipients program bin/absent: exit 111; "
                      "recipient deferred (451)\n")
    finally:
        srv.stop(); home.cleanup()


def test_D10_bang_star_logs_rcpthosts_rcptto():
    home, srv = server("!wild.test\n!*\n")
    try:
        pid, r = talk(srv, ["x@other.test", "y@wild.test"])
        assert r == [OK, OK], r
        line(srv, pid, "Accept::RCPT::Rcpthosts_Rcptto", "x@other.test")
        line(srv, pid, "Accept::RCPT::Recipients_Wild", "y@wild.test")
    finally:
        srv.stop(); home.cleanup()
