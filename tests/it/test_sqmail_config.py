"""The s/qmail difference rows D23-D32 and D36 (docs/decisions.md, "Where
mxgate differs from s/qmail") and issue 15's items 4 and 5: configuration,
limits, SPF, replies, the queue program's environment. Each test runs real
sessions under tcpserver (or mxgate-listen with MXGATE_MODE=listen),
against real DNS (dnsmasq, tests/spf/zonedns.py) where a row needs it, and
asserts the replies and the exact log lines. The queue rows use a queue
wrapper (QMAILQUEUE) that records its environment and then runs the real
mxgate-queue, and check what was delivered."""
import base64, os, shutil, sys
import harness as h
import test_content_lib as t
from test_authuser import make_hash, PASSWORD

sys.path.insert(0, os.path.join(h.TOP, "tests", "spf"))
import zonedns  # noqa: E402

S = "S:127.0.0.1:unknown"
RELAY_DENIED = "553 5.7.1 Relaying denied"
CONFIG_421 = "421 4.3.5 Server configuration error; try again later"


def line(srv, pid, row, rest, proto="ESMTP"):
    srv.wait_line(f"qmail-smtpd: pid {pid} {row}: {S} P:{proto} {rest}\n")


def talk(srv, cmds, helo="client.test"):
    """greeting, EHLO, then cmds; the replies to cmds and the session's pid"""
    c = h.Client(srv.port)
    try:
        c.reply()
        c.cmd(f"EHLO {helo}")
        out = [c.cmd(x) for x in cmds]
        c.cmd("QUIT")
        return srv.pids()[-1], out
    finally:
        c.close()


def send(srv, sender, rcpts, message, before=()):
    """one message; the DATA reply, the pid"""
    c = h.Client(srv.port)
    try:
        c.reply()
        c.cmd("EHLO client.test")
        for x in before:
            c.cmd(x)
        assert c.cmd(f"MAIL FROM:<{sender}>")[0] == 250
        for r in rcpts:
            code, text = c.cmd(f"RCPT TO:<{r}>")
            assert code == 250, text
        assert c.cmd("DATA")[0] == 354
        c.send(t.wire(message))
        reply = c.reply()
        c.cmd("QUIT")
        return reply, srv.pids()[-1]
    finally:
        c.close()


NAMES = ("HELOHOST", "MAILFROM", "RCPTTO", "AUTHPROTOCOL", "AUTHUSER", "TCPREMOTEINFO", "SPFRESULT")


def recording_queue(home):
    """a QMAILQUEUE wrapper: writes its environment to home/queue-env,
    then runs the real mxgate-queue"""
    path = home.path("queue-wrapper")
    with open(path, "w") as fh:
        fh.write(f"#!/bin/sh\nenv > {home.path('queue-env')}\nexec {h.prog('mxgate-queue')}\n")
    os.chmod(path, 0o755)
    return path


def queue_env(home):
    """the variables s/qmail's queue wrappers read, as the wrapper saw them"""
    with open(home.path("queue-env")) as fh:
        pairs = [l.rstrip("\n").split("=", 1) for l in fh if "=" in l]
    return {k: v for k, v in pairs if k in NAMES}


def queued_line(srv, pid, reply, rest, message, proto="ESMTP"):
    qp = reply[1][0].split(" qp ")[1]
    n = len(message)
    line(srv, pid, "Accept::DATA::Queued", f"{rest} 'qp\\x20{qp}\\x20bytes\\x20{n}'", proto)


# --- D23, D24, item 5: the configuration --------------------------------

def test_D23_no_rcpthosts_refuses_every_domain_and_says_so_at_start():
    home = h.Home()
    os.unlink(os.path.join(home.control, "rcpthosts"))
    srv = h.smtpd(home)
    try:
        pid, r = talk(srv, ["MAIL FROM:<a@remote.test>", "RCPT TO:<alice@example.test>"])
        assert r[1][1] == [RELAY_DENIED]
        line(srv, pid, "Reject::SNDR::Invalid_Relay", "H:client.test F:a@remote.test T:alice@example.test")
        srv.wait_line("mxgate-smtpd: warning: no control/rcpthosts: every recipient domain not in "
                      "control/morercpthosts.cdb is refused (s/qmail would accept every domain)\n")
    finally:
        srv.stop(); home.cleanup()


def fatal_control(path, why):
    return (f"mxgate-smtpd: fatal: cannot read the control directory {path}: {why} "
            "(MXGATE_HOME names the home; an s/qmail home is /var/qmail)\n")


def test_D24_missing_control_directory_is_421_and_names_the_path():
    home = h.Home()
    shutil.rmtree(home.control)
    srv = h.smtpd(home)
    try:
        c = h.Client(srv.port)
        assert c.reply() == (421, [CONFIG_421])
        assert c.closed()
        c.close()
        srv.wait_line(fatal_control(home.control, "No such file or directory"))
        assert "Reject::" not in srv.log() and "Accept::" not in srv.log()
    finally:
        srv.stop(); home.cleanup()


def test_item5_unreadable_control_is_421_under_tcpserver_and_mxgate_listen():
    home = h.Home()
    shutil.rmtree(home.control)
    with open(home.control, "w") as fh:          # not a directory: unreadable as one, whoever runs the test
        fh.write("me\n")
    env = {"MXGATE_HOME": home.dir}
    servers = [h.Tcpserver([h.prog("mxgate-smtpd")], env=env), h.Listener(env=env)]
    try:
        for srv in servers:
            c = h.Client(srv.port)
            assert c.reply() == (421, [CONFIG_421])
            c.close()
            srv.wait_line(fatal_control(home.control, "Not a directory"))
    finally:
        for srv in servers:
            srv.stop()
        home.cleanup()


# --- D25: DATABYTES='' ----------------------------------------------------

def test_D25_empty_databytes_means_no_limit():
    home = h.Home()
    home.write("databytes", "100\n")
    msg = b"Subject: big\n\n" + b"x" * 400 + b"\n"
    limited = h.smtpd(home)
    try:
        reply, pid = send(limited, "a@remote.test", ["alice@example.test"], msg)
        assert reply == (552, ["552 5.3.4 Message size exceeds fixed maximum message size"])
        line(limited, pid, "Reject::DATA::Invalid_Size", "H:client.test F:a@remote.test T:alice@example.test")
    finally:
        limited.stop()
    srv = h.smtpd(home, env={"DATABYTES": ""})
    try:
        c = h.Client(srv.port)
        c.reply()
        assert "250 SIZE 0" in c.cmd("EHLO client.test")[1]
        c.close()
        reply, pid = send(srv, "a@remote.test", ["alice@example.test"], msg)
        assert reply[0] == 250, reply
        queued_line(srv, pid, reply, "H:client.test F:a@remote.test T:alice@example.test", msg)
        h.wait_for(lambda: home.delivered("alice"), what="delivery")
        assert home.delivered("alice")[0].endswith(b"x" * 400 + b"\n")
    finally:
        srv.stop(); home.cleanup()


# --- SPF: D26, D27, D28 -----------------------------------------------------

SPF_RECORDS = [
    '--txt-record=good.test,v=spf1 ip4:127.0.0.0/8 -all',
    '--txt-record=fail.test,v=spf1 -all',
    '--txt-record=soft.test,v=spf1 ~all',
    '--txt-record=neutral.test,v=spf1 ?all',
    '--txt-record=perm.test,v=spf1 frobnicate -all',
    '--txt-record=loop.test,v=spf1 include:loop.test -all',
]


class SpfWorld:
    def __init__(self, env, records=SPF_RECORDS, **kw):
        self.dns = h.Dnsmasq(records)
        self.home = h.Home()
        e = {"DNSCACHEIP": self.dns.spec}
        e.update(env)
        self.srv = h.smtpd(self.home, env=e, **kw)

    def rcpt(self, sender):
        pid, r = talk(self.srv, [f"MAIL FROM:<{sender}>", "RCPT TO:<alice@example.test>"])
        assert r[0][0] == 250
        return pid, r[1]

    def stop(self):
        self.srv.stop(); self.home.cleanup(); self.dns.stop()


def test_D26_spf_not_a_number_is_421_and_said():
    home = h.Home()
    srv = h.smtpd(home, env={"SPF": "abc"})
    try:
        c = h.Client(srv.port)
        assert c.reply() == (421, [CONFIG_421])
        c.close()
        srv.wait_line("mxgate-smtpd: fatal: SPF: not a level from 0 to 6\n")
    finally:
        srv.stop(); home.cleanup()


def test_D27_spf_permerror_is_451_from_level_2():
    w = SpfWorld({"SPF": "2"})
    try:
        pid, r = w.rcpt("a@perm.test")
        assert r == (451, ["451 4.4.3 Temporary SPF lookup failure"])
        line(w.srv, pid, "Deferred::SPF::Temp_Error",
             "H:client.test F:a@perm.test T:alice@example.test 'permerror:\\x20bad\\x20mechanism:\\x20frobnicate'")
        pid, r = w.rcpt("a@loop.test")
        assert r == (451, ["451 4.4.3 Temporary SPF lookup failure"])
        w.srv.wait_line(f"qmail-smtpd: pid {pid} Deferred::SPF::Temp_Error: {S} P:ESMTP H:client.test "
                        "F:a@loop.test T:alice@example.test 'permerror:")
    finally:
        w.stop()
    w = SpfWorld({"SPF": "1"})                      # level 1 only annotates
    try:
        pid, r = w.rcpt("a@perm.test")
        assert r == (250, ["250 2.1.5 Recipient ok"])
        line(w.srv, pid, "Accept::RCPT::Rcpthosts_Rcptto", "H:client.test F:a@perm.test T:alice@example.test")
    finally:
        w.stop()


def test_D28_spf_refusal_rows_fail_and_the_others():
    w = SpfWorld({"SPF": "5"})
    try:
        pid, r = w.rcpt("a@fail.test")
        assert r[0] == 550 and r[1][0].startswith("550 5.7.23 "), r
        line(w.srv, pid, "Reject::SPF::Fail", "H:client.test F:a@fail.test T:alice@example.test '-all'")
        for dom, result in (("soft.test", "softfail"), ("neutral.test", "neutral")):
            pid, r = w.rcpt(f"a@{dom}")
            assert r == (550, ["550 5.7.23 Sender not authorized by SPF policy"])
            line(w.srv, pid, "Reject::ORIG::SPF", f"H:client.test F:a@{dom} T:alice@example.test '{result}'")
        pid, r = w.rcpt("a@good.test")
        assert r[0] == 250
        line(w.srv, pid, "Accept::SPF::Rcpthosts_Rcptto", "H:client.test F:a@good.test T:alice@example.test")
    finally:
        w.stop()


# --- D29: BADLOADERTYPE='+' ---------------------------------------------------

def loader_message():
    data = bytes(range(256)) * 4
    text = base64.b64encode(data).decode()
    key = next(text[i:i + 5] for i in range(len(text) - 5) if text[i] == "T")
    return t.mime_message([t.b64_part(data, "x.dll")]), key


def test_D29_badloadertype_plus_spares_relay_clients_only():
    msg, key = loader_message()
    home, qenv = t.home_with_queue()
    t.make_cdb(home, "badloadertypes", [key])
    relay = h.tcprules(home.path("rules.cdb"), '127.0.0.1:allow,RELAYCLIENT=""\n')
    env = dict(qenv, BADLOADERTYPE="+")
    srv = h.smtpd(home, env=env)
    try:
        code, text, pid, _ = t.transaction(srv, msg)
        assert (code, text) == (554, "554 5.3.2 Message contains a forbidden executable loader")
        srv.wait_line(t.row_line(pid, "Reject::DATA::Bad_Loader", key))
        assert t.queued(home) == []
    finally:
        srv.stop()
    srv = h.smtpd(home, env=env, rules=relay)
    try:
        code, text, pid, _ = t.transaction(srv, msg)
        assert code == 250, text
        srv.wait_line(f"qmail-smtpd: pid {pid} Accept::DATA::Queued: {S} P:ESMTP H:client.test "
                      "F:sender@remote.test T:alice@example.test 'qp\\x20")
        h.wait_for(lambda: t.queued(home), what="queued message")
    finally:
        srv.stop(); home.cleanup()


# --- D30: s/qmail's REPLY_* names ---------------------------------------------

def test_D30_sqmail_reply_names_append_their_text():
    home = h.Home()
    home.write("badmailfrom", "spam@remote.test\n")
    home.write("badrcptto", "bob@example.test\n")
    home.write("badhelo", "bad.helo.test\n")
    env = {"REPLY_NOGATEWAY": "see https://mx.example.test/relay", "REPLY_BADMAILFROM": "(bmf)",
           "REPLY_BADRCPTTO": "(brt)", "REPLY_MAXSIZE": "(size)", "REPLY_HELO": "(helo)",
           "HELOCHECK": "", "DATABYTES": "1000"}
    srv = h.smtpd(home, env=env)
    try:
        pid, r = talk(srv, ["MAIL FROM:<a@remote.test>", "RCPT TO:<x@elsewhere.test>", "RCPT TO:<bob@example.test>"])
        assert r[1][1] == ["553 5.7.1 Relaying denied see https://mx.example.test/relay"]
        line(srv, pid, "Reject::SNDR::Invalid_Relay", "H:client.test F:a@remote.test T:x@elsewhere.test")
        assert r[2][1] == ["553 5.7.1 Recipient address rejected (brt)"]
        line(srv, pid, "Reject::RCPT::Bad_Rcptto", "H:client.test F:a@remote.test T:bob@example.test")
        pid, r = talk(srv, ["MAIL FROM:<spam@remote.test>", "RCPT TO:<alice@example.test>"])
        assert r[1][1] == ["553 5.7.1 Sender address rejected (bmf)"]
        line(srv, pid, "Reject::ORIG::Bad_Mailfrom", "H:client.test F:spam@remote.test T:alice@example.test '@'")
        pid, r = talk(srv, ["MAIL FROM:<a@remote.test> SIZE=5000", "RCPT TO:<alice@example.test>"])
        assert r[1][1] == ["552 5.3.4 Message size exceeds fixed maximum message size (size)"]
        line(srv, pid, "Reject::DATA::Invalid_Size", "H:client.test F:a@remote.test T:alice@example.test")
        pid, r = talk(srv, ["MAIL FROM:<a@remote.test>", "RCPT TO:<alice@example.test>"], helo="bad.helo.test")
        assert r[1][1] == ["550 5.7.1 HELO name rejected (helo)"]
        line(srv, pid, "Reject::SNDR::Bad_Helo", "H:bad.helo.test F:a@remote.test T:alice@example.test '.'")
    finally:
        srv.stop()
    # a refusal with a text of its own (HELOCHECK='s '=') gets the s/qmail text too
    env["HELOCHECK"] = "="
    srv = h.smtpd(home, env=env)
    try:
        pid, r = talk(srv, ["MAIL FROM:<a@remote.test>", "RCPT TO:<alice@example.test>"], helo="not.the.name.test")
        assert r[1][1] == ["550 5.7.1 HELO name is not the client's DNS name (helo)"]
        line(srv, pid, "Reject::SNDR::DNS_HELO", "H:not.the.name.test F:a@remote.test T:alice@example.test '='")
    finally:
        srv.stop()
    # mxgate's own name replaces; the s/qmail name is appended after it
    srv = h.smtpd(home, env={"REPLY_INVALIDRELAY": "No relaying here", "REPLY_NOGATEWAY": "(#5.7.1)"})
    try:
        pid, r = talk(srv, ["MAIL FROM:<a@remote.test>", "RCPT TO:<x@elsewhere.test>"])
        assert r[1][1] == ["553 5.7.1 No relaying here (#5.7.1)"]
        line(srv, pid, "Reject::SNDR::Invalid_Relay", "H:client.test F:a@remote.test T:x@elsewhere.test")
    finally:
        srv.stop(); home.cleanup()


# --- D31, D32, item 4: the queue program's environment ------------------------

def test_D31_deliverto_leads_rcptto_and_the_envelope_stays():
    home = h.Home(users=("alice", "bob", "archive"))
    env = {"QMAILQUEUE": recording_queue(home), "DELIVERTO": "archive@example.test"}
    srv = h.smtpd(home, env=env)
    msg = b"Subject: d31\n\nbody\n"
    try:
        reply, pid = send(srv, "a@remote.test", ["alice@example.test", "bob@example.test"], msg)
        assert reply[0] == 250, reply
        queued_line(srv, pid, reply, "H:client.test F:a@remote.test T:alice@example.test", msg)
        assert queue_env(home)["RCPTTO"] == "archive@example.test alice@example.test bob@example.test "
        h.wait_for(lambda: home.delivered("alice") and home.delivered("bob"), what="delivery")
        for u in ("alice", "bob"):
            assert home.delivered(u)[0].endswith(b"\nbody\n")
        assert home.delivered("archive") == []          # DELIVERTO is no recipient (s/qmail's qmail-smtpd.c)
    finally:
        srv.stop(); home.cleanup()


def test_D32_queue_program_sees_sqmails_variables():
    home = h.Home()
    home.write("users", f"alice:{make_hash()}::::{home.path('maildirs')}/alice:\n", mode=0o600)
    env = {"QMAILQUEUE": recording_queue(home), "SMTPAUTH": "", "AUTH_CLEARTEXT": "1", "AUTHDELAY": "0"}
    srv = h.smtpd(home, env=env, args=[h.prog("mxgate-authuser"), "true"])
    msg = b"Subject: d32\n\nauthenticated\n"
    plain = base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
    try:
        reply, pid = send(srv, "alice@example.test", ["bob@example.test", "x@elsewhere.test"], msg,
                          before=[f"AUTH PLAIN {plain}"])
        assert reply[0] == 250, reply
        queued_line(srv, pid, reply, "H:client.test F:alice@example.test T:bob@example.test", msg, "ESMTPA")
        assert queue_env(home) == {
            "HELOHOST": "client.test", "MAILFROM": "alice@example.test",
            "RCPTTO": "bob@example.test x@elsewhere.test ", "AUTHPROTOCOL": "plain",
            "AUTHUSER": "alice", "TCPREMOTEINFO": "alice"}
        h.wait_for(lambda: home.delivered("bob"), what="delivery")
        assert home.delivered("bob")[0].endswith(b"\nauthenticated\n")
    finally:
        srv.stop(); home.cleanup()
    dns = h.Dnsmasq(SPF_RECORDS)                     # an unauthenticated client: SPFRESULT
    home = h.Home()
    srv = h.smtpd(home, env={"QMAILQUEUE": recording_queue(home), "SPF": "1", "DNSCACHEIP": dns.spec})
    msg = b"Subject: d32\n\nspf\n"
    try:
        reply, pid = send(srv, "a@good.test", ["alice@example.test"], msg)
        assert reply[0] == 250, reply
        queued_line(srv, pid, reply, "H:client.test F:a@good.test T:alice@example.test", msg)
        assert queue_env(home) == {"HELOHOST": "client.test", "MAILFROM": "a@good.test",
                                   "RCPTTO": "alice@example.test ", "SPFRESULT": "pass"}
        h.wait_for(lambda: home.delivered("alice"), what="delivery")
        assert b"Received-SPF: pass" in home.delivered("alice")[0]
    finally:
        srv.stop(); home.cleanup(); dns.stop()


# --- D36: MFDNSCHECK's temporary failure at MAIL --------------------------------

def test_D36_mfdnscheck_temporary_failure_is_451_at_mail():
    bad = zonedns.Server({"broken.test": ["SERVFAIL"], "x.broken.test": ["SERVFAIL"]})
    dns = h.Dnsmasq(["--mx-host=good.test,mx.good.test,10", "--host-record=mx.good.test,198.51.100.1"],
                    forward={"broken.test": bad.port})
    home = h.Home()
    srv = h.smtpd(home, env={"MFDNSCHECK": "1", "DNSCACHEIP": dns.spec})
    try:
        pid, r = talk(srv, ["MAIL FROM:<a@x.broken.test>", "RCPT TO:<alice@example.test>"])
        assert r[0] == (451, ["451 4.4.3 Temporary DNS failure for sender domain"])
        assert r[1] == (503, ["503 5.5.1 MAIL first"])
        line(srv, pid, "Deferred::ORIG::DNS_MF", "H:client.test F:a@x.broken.test")
        pid, r = talk(srv, ["MAIL FROM:<a@nx.test>", "RCPT TO:<alice@example.test>"])
        assert r[0][0] == 250                       # no records at all: refused at RCPT, as before
        assert r[1] == (553, ["553 5.1.8 Sender domain has no DNS MX or A record"])
        line(srv, pid, "Reject::ORIG::DNS_MF", "H:client.test F:a@nx.test T:alice@example.test")
        pid, r = talk(srv, ["MAIL FROM:<a@good.test>", "RCPT TO:<alice@example.test>"])
        assert r[0][0] == 250 and r[1][0] == 250
    finally:
        srv.stop(); home.cleanup(); dns.stop(); bad.stop()
