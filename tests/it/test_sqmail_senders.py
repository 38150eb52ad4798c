"""Rows D11-D19 of the s/qmail difference audit (issue 15): badmailfrom's
'+' and '-' forms, LOCALMFCHECK and control/mailfromrules, HELOCHECK=M and
'='. One test per row, named by it; each runs real sessions under
tcpserver (or mxgate-listen) and asserts the reply and the exact log line.
The DNS rows run against a real dnsmasq."""
import os, smtplib, subprocess
import harness as h

S = "S:127.0.0.1:unknown"
RELAY = 'RELAYCLIENT=""'


def home_with(files=None, mfrules=None):
    """a home with the user alice (password alice-pw) for AUTH, control
    files from files, and control/mailfromrules compiled by mxgate-cdb"""
    home = h.Home()
    hashed = subprocess.run([h.prog("mxgate-authuser"), "--hash"], input="alice-pw\n", capture_output=True,
                            text=True, check=True).stdout.strip()
    home.write("users", f"alice:{hashed}::::{home.dir}:\n", mode=0o600)
    for name, text in (files or {}).items():
        home.write(name, text)
    if mfrules is not None:
        home.write("mailfromrules", mfrules)
        subprocess.run([h.prog("mxgate-cdb"), "mailfromrules"], env={"MXGATE_HOME": home.dir}, check=True)
    return home


def server(home, env=None, rules=None):
    """mxgate-smtpd with AUTH (LOGIN/PLAIN without TLS) through the real
    mxgate-authuser; rules: tcprules text (RELAYCLIENT, TCPREMOTEHOST)"""
    e = {"SMTPAUTH": "", "UCSPITLS": "-", "AUTH_CLEARTEXT": "1", "AUTHDELAY": "0"}
    e.update(env or {})
    r = h.tcprules(os.path.join(home.dir, "rules.cdb"), "127.0.0.1:allow," + rules + "\n") if rules else None
    return h.smtpd(home, env=e, rules=r, args=[h.prog("mxgate-authuser"), "/bin/true"])


def talk(srv, lines, helo="EHLO client.test"):
    """one raw session; returns (pid, [reply lines of each command])"""
    c = h.Client(srv.port)
    c.reply()
    out = [c.cmd(l)[1] for l in [helo] + lines]
    c.cmd("QUIT")
    c.close()
    pid = srv.pids()[-1]
    srv.wait_end(pid)
    return pid, out


def auth_session(srv, sender, rcpt):
    """an authenticated session (smtplib, AUTH PLAIN as alice): the RCPT's code"""
    with smtplib.SMTP("127.0.0.1", srv.port) as s:
        s.ehlo("client.test")
        s.login("alice", "alice-pw")
        s.mail(sender)
        code = s.rcpt(rcpt)[0]
    pid = srv.pids()[-1]
    srv.wait_end(pid)
    return pid, code


def line(srv, pid, row, rest, host=S):
    srv.wait_line(f"qmail-smtpd: pid {pid} {row}: {host} {rest}\n")


def test_D11_plus_form_spares_relay_and_authenticated_clients():
    """'@dom+' refuses the domain's senders only from clients that are not
    relay clients; a successful AUTH makes the client one"""
    home = home_with({"badmailfrom": "@example.test+\n"})
    srv = server(home)
    try:
        pid, r = talk(srv, ["MAIL FROM:<alice@example.test>", "RCPT TO:<bob@example.test>"])
        assert r[1] == ["250 2.1.0 Sender ok"] and r[2] == ["553 5.7.1 Sender address rejected"], r
        line(srv, pid, "Reject::ORIG::Bad_Mailfrom", "P:ESMTP H:client.test F:alice@example.test T:bob@example.test '+'")
        pid, code = auth_session(srv, "alice@example.test", "far@elsewhere.test")
        assert code == 250, code
        line(srv, pid, "Accept::AUTH::plain",
             "P:ESMTPA H:client.test F:alice@example.test T:far@elsewhere.test ?~ 'alice'")
        assert len([l for l in srv.lines() if "Bad_Mailfrom" in l]) == 1, srv.log()   # the first session's only
    finally:
        srv.stop()
    srv = server(home, rules=RELAY)
    try:
        pid, r = talk(srv, ["MAIL FROM:<alice@example.test>", "RCPT TO:<far@elsewhere.test>"])
        assert r[2] == ["250 2.1.5 Recipient ok"], r
        line(srv, pid, "Accept::SNDR::Relay_Client", "P:ESMTP H:client.test F:alice@example.test T:far@elsewhere.test")
    finally:
        srv.stop(); home.cleanup()


def test_D12_minus_form_when_remotehost_is_unknown():
    """'@dom-' applies when TCPREMOTEHOST is unset or the literal 'unknown'
    (what tcpserver sets when the lookup gave no name); '@dom=' then does not"""
    home = home_with({"badmailfrom": "@dash.test-\n@eq.test=\n"})
    for rules in (None, 'TCPREMOTEHOST="unknown"'):
        srv = server(home, rules=rules)
        try:
            pid, r = talk(srv, ["MAIL FROM:<x@dash.test>", "RCPT TO:<bob@example.test>"])
            assert r[2] == ["553 5.7.1 Sender address rejected"], (rules, r)
            line(srv, pid, "Reject::ORIG::Bad_Mailfrom", "P:ESMTP H:client.test F:x@dash.test T:bob@example.test '-'")
            pid, r = talk(srv, ["MAIL FROM:<x@eq.test>", "RCPT TO:<bob@example.test>"])
            assert r[2] == ["250 2.1.5 Recipient ok"], (rules, r)
            line(srv, pid, "Accept::RCPT::Rcpthosts_Rcptto", "P:ESMTP H:client.test F:x@eq.test T:bob@example.test")
        finally:
            srv.stop()
    srv = server(home, rules='TCPREMOTEHOST="mail.client.test"')          # a name: '-' no longer, '=' does
    try:
        host = "S:127.0.0.1:mail.client.test"
        pid, r = talk(srv, ["MAIL FROM:<x@dash.test>", "RCPT TO:<bob@example.test>"])
        assert r[2] == ["250 2.1.5 Recipient ok"], r
        line(srv, pid, "Accept::RCPT::Rcpthosts_Rcptto", "P:ESMTP H:client.test F:x@dash.test T:bob@example.test", host)
        pid, r = talk(srv, ["MAIL FROM:<x@eq.test>", "RCPT TO:<bob@example.test>"])
        assert r[2] == ["553 5.7.1 Sender address rejected"], r
        line(srv, pid, "Reject::ORIG::Bad_Mailfrom", "P:ESMTP H:client.test F:x@eq.test T:bob@example.test '='", host)
    finally:
        srv.stop(); home.cleanup()


def test_D13_localmfcheck_judges_relay_and_authenticated_clients_only():
    """LOCALMFCHECK leaves other servers' mail alone, even with a sender
    of our domains (badmailfrom '@dom+' is the tool for that); relay and
    authenticated clients must use a sender of our domains: Invalid_Sender
    or Local_Sender. LOCALMFCHECK='=' with a relay client that gave no
    user name: Require_Auth"""
    home = home_with()
    srv = server(home, {"LOCALMFCHECK": ""})
    try:
        pid, r = talk(srv, ["MAIL FROM:<alice@example.test>", "RCPT TO:<bob@example.test>"])
        assert r[2] == ["250 2.1.5 Recipient ok"], r
        line(srv, pid, "Accept::RCPT::Rcpthosts_Rcptto", "P:ESMTP H:client.test F:alice@example.test T:bob@example.test")
        pid, code = auth_session(srv, "alice@other.test", "far@elsewhere.test")
        assert code == 553, code
        line(srv, pid, "Reject::ORIG::Invalid_Sender", "P:ESMTPA H:client.test F:alice@other.test T:far@elsewhere.test")
        pid, code = auth_session(srv, "alice@example.test", "far@elsewhere.test")
        assert code == 250, code
        line(srv, pid, "Accept::ORIG::Local_Sender", "P:ESMTPA H:client.test F:alice@example.test T:far@elsewhere.test")
    finally:
        srv.stop()
    srv = server(home, {"LOCALMFCHECK": ""}, rules=RELAY)
    try:
        pid, r = talk(srv, ["MAIL FROM:<x@other.test>", "RCPT TO:<far@elsewhere.test>",
                            "RSET", "MAIL FROM:<alice@example.test>", "RCPT TO:<far@elsewhere.test>"])
        assert r[2] == ["553 5.7.1 Sender address not allowed for this client"] and r[5] == ["250 2.1.5 Recipient ok"], r
        line(srv, pid, "Reject::ORIG::Invalid_Sender", "P:ESMTP H:client.test F:x@other.test T:far@elsewhere.test")
        line(srv, pid, "Accept::ORIG::Local_Sender", "P:ESMTP H:client.test F:alice@example.test T:far@elsewhere.test")
    finally:
        srv.stop()
    srv = server(home, {"LOCALMFCHECK": "="}, rules=RELAY)
    try:
        pid, r = talk(srv, ["MAIL FROM:<alice@example.test>", "RCPT TO:<far@elsewhere.test>"])
        assert r[2] == ["530 5.7.0 Local sender must authenticate"], r
        line(srv, pid, "Reject::ORIG::Require_Auth", "P:ESMTP H:client.test F:alice@example.test T:far@elsewhere.test")
        pid, code = auth_session(srv, "alice", "far@elsewhere.test")
        assert code == 250, code
        line(srv, pid, "Accept::ORIG::Local_Sender", "P:ESMTPA H:client.test F:alice T:far@elsewhere.test")
    finally:
        srv.stop(); home.cleanup()


def test_D14_empty_rule_allows_any_sender():
    """a mailfromrules rule with nothing after '&' lets the client send as anyone"""
    home = home_with(mfrules="127.0.0.1&\n")
    srv = server(home, {"LOCALMFCHECK": "!"}, rules=RELAY)
    try:
        pid, r = talk(srv, ["MAIL FROM:<anyone@anywhere.test>", "RCPT TO:<far@elsewhere.test>"])
        assert r[2] == ["250 2.1.5 Recipient ok"], r
        line(srv, pid, "Accept::ORIG::Local_Sender", "P:ESMTP H:client.test F:anyone@anywhere.test T:far@elsewhere.test")
    finally:
        srv.stop(); home.cleanup()


def test_D15_rule_senders_match_from_the_right():
    """each sender of a rule is a suffix of the allowed addresses:
    'example.test' covers joe@mail.example.test, '-sales@partner.test'
    covers big-sales@partner.test; the same from a cdb in the form s/qmail's
    qmail-mfrules writes ('+' before each sender)"""
    mxgate_cdb = home_with(mfrules="127.0.0.1&example.test,-sales@partner.test\n")
    sqmail_cdb = home_with()
    data = b"+example.test+-sales@partner.test"
    subprocess.run(["cdb", "-c", sqmail_cdb.path("control", "mailfromrules.cdb")],
                   input=b"+9,%d:127.0.0.1->%s\n\n" % (len(data), data), check=True)
    for home in (mxgate_cdb, sqmail_cdb):
        srv = server(home, {"LOCALMFCHECK": "!"}, rules=RELAY)
        try:
            pid, r = talk(srv, ["MAIL FROM:<joe@mail.example.test>", "RCPT TO:<far@elsewhere.test>",
                                "RSET", "MAIL FROM:<Big-Sales@Partner.test>", "RCPT TO:<far@elsewhere.test>",
                                "RSET", "MAIL FROM:<joe@partner.test>", "RCPT TO:<far@elsewhere.test>"])
            assert r[2] == r[5] == ["250 2.1.5 Recipient ok"], r
            assert r[8] == ["553 5.7.1 Sender address not allowed for this client"], r
            line(srv, pid, "Accept::ORIG::Local_Sender", "P:ESMTP H:client.test F:joe@mail.example.test T:far@elsewhere.test")
            line(srv, pid, "Accept::ORIG::Local_Sender", "P:ESMTP H:client.test F:Big-Sales@Partner.test T:far@elsewhere.test")
            line(srv, pid, "Reject::ORIG::Invalid_Sender", "P:ESMTP H:client.test F:joe@partner.test T:far@elsewhere.test")
        finally:
            srv.stop(); home.cleanup()


def test_D16_relay_client_without_a_rule_is_refused():
    """LOCALMFCHECK='!': a relay client no rule names is refused, even with
    a sender of our own domains (the domain mode would take it)"""
    home = home_with(mfrules="10.0.0.&@example.test\n")
    srv = server(home, {"LOCALMFCHECK": "!"}, rules=RELAY)
    try:
        pid, r = talk(srv, ["MAIL FROM:<alice@example.test>", "RCPT TO:<far@elsewhere.test>"])
        assert r[2] == ["553 5.7.1 Sender address not allowed for this client"], r
        line(srv, pid, "Reject::ORIG::Invalid_Sender", "P:ESMTP H:client.test F:alice@example.test T:far@elsewhere.test")
    finally:
        srv.stop(); home.cleanup()
    home = home_with()                            # no mailfromrules.cdb at all: the domain mode, as s/qmail
    srv = server(home, {"LOCALMFCHECK": "!"}, rules=RELAY)
    try:
        pid, r = talk(srv, ["MAIL FROM:<alice@example.test>", "RCPT TO:<far@elsewhere.test>",
                            "RSET", "MAIL FROM:<x@other.test>", "RCPT TO:<far@elsewhere.test>"])
        assert r[2] == ["250 2.1.5 Recipient ok"] and r[5] == ["553 5.7.1 Sender address not allowed for this client"], r
        line(srv, pid, "Accept::ORIG::Local_Sender", "P:ESMTP H:client.test F:alice@example.test T:far@elsewhere.test")
        line(srv, pid, "Reject::ORIG::Invalid_Sender", "P:ESMTP H:client.test F:x@other.test T:far@elsewhere.test")
    finally:
        srv.stop()
    os.mkdir(home.path("control", "mailfromrules.cdb"))   # there but unreadable as a cdb: refused, loudly
    srv = server(home, {"LOCALMFCHECK": "!"}, rules=RELAY)
    try:
        pid, r = talk(srv, ["MAIL FROM:<alice@example.test>", "RCPT TO:<far@elsewhere.test>"])
        assert r[2] == ["553 5.7.1 Sender address not allowed for this client"], r
        line(srv, pid, "Reject::ORIG::Invalid_Sender", "P:ESMTP H:client.test F:alice@example.test T:far@elsewhere.test")
        srv.wait_line(f"mxgate-smtpd: pid {pid} warning: control/mailfromrules.cdb cannot be read; sender refused\n")
    finally:
        srv.stop(); home.cleanup()


def test_D17_rule_bang_needs_authentication():
    """rule data '!': a relay client that did not authenticate is refused
    (Missing_Auth); once authenticated the rule's senders apply; a client
    that is not a relay client is not judged by mailfromrules at all"""
    home = home_with(mfrules="127.0.0.1&!,@example.test\n")
    srv = server(home, {"LOCALMFCHECK": "!"}, rules=RELAY)
    try:
        pid, r = talk(srv, ["MAIL FROM:<alice@example.test>", "RCPT TO:<far@elsewhere.test>"])
        assert r[2] == ["530 5.7.0 Authentication required for this client"], r
        line(srv, pid, "Reject::ORIG::Missing_Auth", "P:ESMTP H:client.test F:alice@example.test T:far@elsewhere.test")
        pid, code = auth_session(srv, "alice@example.test", "far@elsewhere.test")
        assert code == 250, code
        line(srv, pid, "Accept::ORIG::Local_Sender", "P:ESMTPA H:client.test F:alice@example.test T:far@elsewhere.test")
        pid, code = auth_session(srv, "alice@other.test", "far@elsewhere.test")
        assert code == 553, code
        line(srv, pid, "Reject::ORIG::Invalid_Sender", "P:ESMTPA H:client.test F:alice@other.test T:far@elsewhere.test")
    finally:
        srv.stop()
    srv = server(home, {"LOCALMFCHECK": "!"})
    try:
        pid, r = talk(srv, ["MAIL FROM:<x@remote.test>", "RCPT TO:<bob@example.test>"])
        assert r[2] == ["250 2.1.5 Recipient ok"], r
        line(srv, pid, "Accept::RCPT::Rcpthosts_Rcptto", "P:ESMTP H:client.test F:x@remote.test T:bob@example.test")
    finally:
        srv.stop(); home.cleanup()


def test_D18_helocheck_m_takes_an_address_record():
    """HELOCHECK=M: a HELO name with an MX or, failing that, an A record
    passes, as MFDNSCHECK's sender domains do; a name with neither is refused"""
    dns = h.Dnsmasq(["--host-record=helo.good.test,127.0.0.1", "--mx-host=mxhelo.test,mx.good.test,10",
                     "--host-record=mx.good.test,198.51.100.1"])
    home = home_with()
    srv = server(home, {"HELOCHECK": "M", "DNSCACHEIP": dns.spec})
    try:
        for name in ("helo.good.test", "mxhelo.test"):
            pid, r = talk(srv, ["MAIL FROM:<a@remote.test>", "RCPT TO:<bob@example.test>"], helo=f"EHLO {name}")
            assert r[2] == ["250 2.1.5 Recipient ok"], (name, r)
            line(srv, pid, "Accept::RCPT::Rcpthosts_Rcptto", f"P:ESMTP H:{name} F:a@remote.test T:bob@example.test")
        pid, r = talk(srv, ["MAIL FROM:<a@remote.test>", "RCPT TO:<bob@example.test>"], helo="EHLO nohost.test")
        assert r[2] == ["550 5.7.1 HELO name has no DNS record"], r
        line(srv, pid, "Reject::SNDR::DNS_HELO", "P:ESMTP H:nohost.test F:a@remote.test T:bob@example.test 'M'")
    finally:
        srv.stop(); home.cleanup(); dns.stop()


def test_D19_helocheck_equals_logs_dns_helo():
    """HELOCHECK='=': a HELO that is not the client's DNS name is refused as
    s/qmail does, with the DNS row (the seed's spelling DNS_HELO) and '='"""
    home = home_with({"badhelo": "bad.test\n"})
    for rules, host in ((None, S), ('TCPREMOTEHOST="mail.client.test"', "S:127.0.0.1:mail.client.test")):
        srv = server(home, {"HELOCHECK": "="}, rules=rules)
        try:
            pid, r = talk(srv, ["MAIL FROM:<a@remote.test>", "RCPT TO:<bob@example.test>"], helo="EHLO not.the.name.test")
            assert r[2] == ["550 5.7.1 HELO name is not the client's DNS name"], r
            line(srv, pid, "Reject::SNDR::DNS_HELO", "P:ESMTP H:not.the.name.test F:a@remote.test T:bob@example.test '='",
                 host)
            pid, r = talk(srv, ["MAIL FROM:<a@remote.test>", "RCPT TO:<bob@example.test>"], helo="EHLO bad.test")
            assert r[2] == ["550 5.7.1 HELO name rejected"], r                 # badhelo first, as in s/qmail
            line(srv, pid, "Reject::SNDR::Bad_Helo", "P:ESMTP H:bad.test F:a@remote.test T:bob@example.test '.'", host)
        finally:
            srv.stop()
    srv = server(home, {"HELOCHECK": "="}, rules='TCPREMOTEHOST="mail.client.test"')
    try:
        pid, r = talk(srv, ["MAIL FROM:<a@remote.test>", "RCPT TO:<bob@example.test>"], helo="EHLO Mail.Client.test")
        assert r[2] == ["250 2.1.5 Recipient ok"], r
    finally:
        srv.stop(); home.cleanup()
