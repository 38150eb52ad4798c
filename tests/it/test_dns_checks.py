"""DNS checks and SPF in mxgate-smtpd against real DNS: dnsmasq on
loopback serving the test zones, a zone forwarded to a responder that
answers SERVFAIL for the temporary failures."""
import os, sys, shutil, subprocess, tempfile
import harness as h

sys.path.insert(0, os.path.join(h.TOP, "tests", "spf"))
import zonedns  # noqa: E402

RECORDS = [
    "--mx-host=good.test,mx.good.test,10", "--host-record=mx.good.test,198.51.100.1",
    "--host-record=aonly.test,198.51.100.2",
    "--host-record=helo.good.test,127.0.0.1",
    "--mx-host=mxhelo.test,mx.good.test,10",
    '--txt-record=good.test,v=spf1 ip4:127.0.0.0/8 -all',
    '--txt-record=fail.test,v=spf1 -all exp=why.fail.test',
    '--txt-record=why.fail.test,%{s} may not send from %{i}',
    '--txt-record=soft.test,v=spf1 ~all',
    '--txt-record=neutral.test,v=spf1 ?all',
    "--host-record=none.test,198.51.100.3",
    '--txt-record=perm.test,v=spf1 frobnicate -all',
]


class World:
    def __init__(self, env, setup=None, **kw):
        self.bad = zonedns.Server({"broken.test": ["SERVFAIL"], "x.broken.test": ["SERVFAIL"]})
        self.dns = h.Dnsmasq(RECORDS, forward={"broken.test": self.bad.port})
        self.home = h.Home()
        if setup:                           # control files before the server starts (a listener reads them once)
            setup(self.home)
        e = {"DNSCACHEIP": self.dns.spec}
        e.update(env)
        self.env = e
        self.srv = h.smtpd(self.home, env=e, **kw)

    def session(self, helo, mailfrom, rcpts=("alice@example.test",)):
        c = h.Client(self.srv.port)
        c.reply()
        c.cmd(f"EHLO {helo}")
        mail = c.cmd(f"MAIL FROM:<{mailfrom}>")
        assert mail[0] == 250 or (mail[0] == 451 and "MFDNSCHECK" in self.env), mail
        out = [c.cmd(f"RCPT TO:<{r}>") for r in rcpts] if mail[0] == 250 else [mail]
        c.cmd("QUIT")
        c.close()
        pid = self.srv.pids()[-1]
        return pid, out

    def line(self, pid, row, rest):
        self.srv.wait_line(f"qmail-smtpd: pid {pid} {row}: S:127.0.0.1:unknown P:ESMTP {rest}\n")

    def stop(self):
        self.srv.stop(); self.home.cleanup(); self.dns.stop(); self.bad.stop()


def test_mfdnscheck_rows():
    w = World({"MFDNSCHECK": "1"})
    try:
        pid, r = w.session("client.test", "a@good.test")
        assert r[0][0] == 250
        pid, r = w.session("client.test", "a@aonly.test")             # implicit MX: an address is enough
        assert r[0][0] == 250
        pid, r = w.session("client.test", "a@nx.test")
        assert r[0][1] == ["553 5.1.8 Sender domain has no DNS MX or A record"]
        w.line(pid, "Reject::ORIG::DNS_MF", "H:client.test F:a@nx.test T:alice@example.test")
        pid, r = w.session("client.test", "a@x.broken.test")           # D36: 451 to MAIL itself, as s/qmail
        assert r[0][1] == ["451 4.4.3 Temporary DNS failure for sender domain"]
        w.line(pid, "Deferred::ORIG::DNS_MF", "H:client.test F:a@x.broken.test")
        pid, r = w.session("client.test", "")                          # the null sender is not looked up
        assert r[0][0] == 250
    finally:
        w.stop()


def test_helocheck_a_and_m():
    w = World({"HELOCHECK": "A"})
    try:
        pid, r = w.session("helo.good.test", "a@remote.test")
        assert r[0][0] == 250
        pid, r = w.session("nohost.test", "a@remote.test")
        assert r[0][1] == ["550 5.7.1 HELO name has no DNS record"]
        w.line(pid, "Reject::SNDR::DNS_HELO", "H:nohost.test F:a@remote.test T:alice@example.test 'A'")
        pid, r = w.session("x.broken.test", "a@remote.test")
        assert r[0][1] == ["451 4.4.3 Temporary DNS failure for HELO name"]
        w.line(pid, "Deferred::SNDR::DNS_HELO", "H:x.broken.test F:a@remote.test T:alice@example.test 'A'")
    finally:
        w.stop()
    w = World({"HELOCHECK": "A"}, lambda home: home.write("badhelo", "nohost.test!\n"))  # "name!": no lookup
    try:
        pid, r = w.session("nohost.test", "a@remote.test")
        assert r[0][0] == 250, r
    finally:
        w.stop()
    w = World({"HELOCHECK": "M"})
    try:
        pid, r = w.session("mxhelo.test", "a@remote.test")
        assert r[0][0] == 250
        pid, r = w.session("helo.good.test", "a@remote.test")          # an address but no MX: enough (D18)
        assert r[0][0] == 250
        pid, r = w.session("nohost.test", "a@remote.test")
        w.line(pid, "Reject::SNDR::DNS_HELO", "H:nohost.test F:a@remote.test T:alice@example.test 'M'")
    finally:
        w.stop()


def test_spf_levels_and_rows():
    w = World({"SPF": "6"})
    try:
        pid, r = w.session("client.test", "a@good.test")
        assert r[0][0] == 250
        w.line(pid, "Accept::SPF::Rcpthosts_Rcptto", "H:client.test F:a@good.test T:alice@example.test")
        pid, r = w.session("client.test", "bob@fail.test")
        assert r[0][1] == ["550 5.7.23 bob@fail.test may not send from 127.0.0.1"], r
        w.line(pid, "Reject::SPF::Fail", "H:client.test F:bob@fail.test T:alice@example.test '-all'")
        for dom, result in (("soft.test", "softfail"), ("neutral.test", "neutral"), ("none.test", "none")):
            pid, r = w.session("client.test", f"a@{dom}")
            assert r[0][1] == ["550 5.7.23 Sender not authorized by SPF policy"], (dom, r)
            w.line(pid, "Reject::ORIG::SPF", f"H:client.test F:a@{dom} T:alice@example.test '{result}'")
        pid, r = w.session("client.test", "a@perm.test")                # D27: a permerror is 451, as s/qmail
        assert r[0][1] == ["451 4.4.3 Temporary SPF lookup failure"], r
        w.line(pid, "Deferred::SPF::Temp_Error",
               "H:client.test F:a@perm.test T:alice@example.test 'permerror:\\x20bad\\x20mechanism:\\x20frobnicate'")
        pid, r = w.session("client.test", "a@x.broken.test")
        assert r[0][1] == ["451 4.4.3 Temporary SPF lookup failure"], r
        assert "Deferred::SPF::Temp_Error: S:127.0.0.1:unknown P:ESMTP H:client.test F:a@x.broken.test " \
               "T:alice@example.test '" in w.srv.log()
    finally:
        w.stop()
    w = World({"SPF": "3"})                                            # level 3: only fail refused
    try:
        pid, r = w.session("client.test", "a@soft.test")
        assert r[0][0] == 250
        w.line(pid, "Accept::RCPT::Rcpthosts_Rcptto", "H:client.test F:a@soft.test T:alice@example.test")
    finally:
        w.stop()


def test_spf_accept_rows_follow_the_recipient_source():
    def setup(home):
        key = b":alice@example.test"
        subprocess.run(["cdb", "-c", os.path.join(home.dir, "rcpt.cdb")],
                       input=b"+%d,0:%s->\n\n" % (len(key), key), check=True)
        prog = os.path.join(home.dir, "known")
        with open(prog, "w") as fh:
            fh.write("#!/bin/sh\nexit 0\n")
        os.chmod(prog, 0o755)
        home.write("recipients", f"example.test:{home.dir}/rcpt.cdb\nwild.test:{home.dir}/none.cdb\n!other.test\n"
                                 f"pam.test|{prog}\n")
        home.write("rcpthosts", "example.test\nother.test\npam.test\n")
    w = World({"SPF": "1"}, setup)
    try:
        pid, r = w.session("client.test", "a@good.test", ("alice@example.test", "x@other.test", "p@pam.test"))
        assert [x[0] for x in r] == [250, 250, 250], r
        w.line(pid, "Accept::SPF::Recipients_Pam", "H:client.test F:a@good.test T:p@pam.test")
        w.line(pid, "Accept::SPF::Recipients_Cdb", "H:client.test F:a@good.test T:alice@example.test")
        w.line(pid, "Accept::SPF::Recipients_Wild", "H:client.test F:a@good.test T:x@other.test")
    finally:
        w.stop()


def test_received_spf_header_and_relay_clients_unchecked():
    qdir = tempfile.mkdtemp(prefix="mxgate-q-")
    q = os.path.join(qdir, "q")
    with open(q, "w") as fh:
        fh.write(f"#!/bin/sh\ncat > {qdir}/msg; cat <&1 > /dev/null; exit 0\n")
    os.chmod(q, 0o755)
    w = World({"SPF": "6", "QMAILQUEUE": q})
    try:
        c = h.Client(w.srv.port)
        c.reply(); c.cmd("EHLO client.test"); c.cmd("MAIL FROM:<a@good.test>")
        c.cmd("RCPT TO:<alice@example.test>"); c.cmd("DATA")
        assert c.cmd("Subject: spf\r\n\r\nhi\r\n.")[0] == 250
        c.cmd("QUIT")
        msg = open(f"{qdir}/msg").read()
        assert msg.startswith("Received-SPF: pass ("), msg
    finally:
        w.stop()
    home = h.Home()
    rules = h.tcprules(os.path.join(home.dir, "rules.cdb"), '127.0.0.1:allow,RELAYCLIENT=""\n')
    dns = h.Dnsmasq(RECORDS)
    srv = h.smtpd(home, env={"SPF": "6", "DNSCACHEIP": dns.spec}, rules=rules)
    try:
        c = h.Client(srv.port)
        c.reply(); c.cmd("EHLO client.test"); c.cmd("MAIL FROM:<a@fail.test>")
        assert c.cmd("RCPT TO:<someone@far.test>")[0] == 250              # relay clients: no SPF
        c.cmd("QUIT")
    finally:
        srv.stop(); home.cleanup(); dns.stop(); shutil.rmtree(qdir, ignore_errors=True)


def test_bad_spf_level_is_421():
    home = h.Home()
    srv = h.smtpd(home, env={"SPF": "9"})
    try:
        c = h.Client(srv.port)
        assert c.reply()[1] == ["421 4.3.5 Server configuration error; try again later"]
        srv.wait_line("mxgate-smtpd: fatal: SPF: not a level from 0 to 6")
    finally:
        srv.stop(); home.cleanup()
