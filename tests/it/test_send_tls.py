"""control/tlsdestinations: how mxgate-send uses TLS per destination, in
s/qmail's form. The next hops are mxgate-smtpd under tcpserver with real
certificates: one signed by a test CA for mx.good.test (STARTTLS, and SMTPS
on port 465), one for *.wild.test from the same CA, a self-signed one, and
one without TLS; their names are served by dnsmasq and reached through
control/smtproutes. Every case is one message, and its attempt's exact log
line says what happened: delivered over TLS (verified or not), or deferred
with the reason (TLS missing, a certificate that fails the check the rule
asks for, a pin that does not match, a malformed rule)."""
import hashlib, os, shutil, subprocess, tempfile
import harness as h
from test_send import Send, entries, submit

def openssl(d, *a):
    subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)


def certificates(d):
    """ca.pem; good.pem (mx.good.test), wild.pem (*.wild.test) signed by it;
    self.pem, self-signed for mx.self.test; each file key + certificate"""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(d, "req", "-x509", *ec, "-days", "2", "-subj", "/CN=mxgate tls test CA", "-keyout", "ca.key",
            "-out", "ca.pem")
    for name, san in (("good", "mx.good.test"), ("wild", "*.wild.test")):
        openssl(d, "req", *ec, "-subj", "/CN=" + san, "-keyout", name + ".key", "-out", name + ".csr")
        with open(os.path.join(d, name + ".cnf"), "w") as fh:
            fh.write(f"subjectAltName=DNS:{san}\n")
        openssl(d, "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", name + ".cnf", "-out", name + ".crt")
    openssl(d, "req", "-x509", *ec, "-days", "2", "-subj", "/CN=mx.self.test", "-addext",
            "subjectAltName=DNS:mx.self.test", "-keyout", "self.key", "-out", "self.crt")
    for name in ("good", "wild", "self"):
        with open(os.path.join(d, name + ".pem"), "w") as out:
            for part in (".key", ".crt"):
                with open(os.path.join(d, name + part)) as fh:
                    out.write(fh.read())


def fingerprint(path, algo="sha256"):
    der = subprocess.run(["openssl", "x509", "-in", path, "-outform", "DER"], capture_output=True, check=True).stdout
    return hashlib.new(algo, der).hexdigest()


class Destination:
    """mxgate-smtpd taking mail for domains into bob's Maildir, with certificate pem (or none)"""

    def __init__(self, domains, pem=None, port=None, smtps=False):
        self.home = h.Home(domains=domains, users=("bob",))
        if pem:
            with open(pem) as fh:
                self.home.write("servercert.pem", fh.read(), mode=0o600)
        env = {"MXGATE_HOME": self.home.dir}
        if smtps:
            env["SMTPS"] = "1"
        self.srv = h.Tcpserver([h.prog("mxgate-smtpd")], env=env, port=port)
        self.port = self.srv.port

    def stop(self):
        self.srv.stop()
        self.home.cleanup()


class Sender:
    """mxgate-smtpd taking mail from a relay client, mxgate-send delivering it"""

    def __init__(self, dns, routes, tlsdestinations):
        self.home = h.Home()
        self.home.write("smtproutes", routes)
        self.home.write("tlsdestinations", tlsdestinations)
        self.smtpd = h.Tcpserver([h.prog("mxgate-smtpd")], env={"MXGATE_HOME": self.home.dir, "RELAYCLIENT": ""})
        self.dns = dns
        self.send = None

    def submit(self, rcpt, sender="alice@example.test"):
        """one message; its qp and queue id"""
        before = set(entries(self.home))
        c = h.Client(self.smtpd.port)
        c.reply()
        c.cmd("EHLO client.test")
        assert c.cmd(f"MAIL FROM:<{sender}>")[0] == 250
        assert c.cmd(f"RCPT TO:<{rcpt}>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        code, lines = c.cmd(f"Subject: to {rcpt}\r\n\r\nover TLS or not\r\n.")
        assert code == 250, lines
        c.cmd("QUIT")
        c.close()
        eid, = set(entries(self.home)) - before
        return int(lines[0].split()[-1]), eid

    def start(self):
        self.send = Send(self.home, self.dns)

    def stop(self):
        if self.send:
            self.send.stop()
        self.smtpd.stop()
        self.home.cleanup()


def esc(text):
    return text.replace(" ", "\\x20")


def line(row, hop, proto, rcpt, qp, eid, detail, sender="alice@example.test"):
    """the attempt's log line up to the start of the reply's own text"""
    return f"{row}: S:{hop} P:{proto} F:{sender} T:{rcpt} '" + esc(f"qp {qp} id {eid}") + esc(detail)


def test_tlsdestinations_rules_per_destination():
    certs = tempfile.mkdtemp(prefix="mxgate-tlsdest-")
    certificates(certs)
    ca = os.path.join(certs, "ca.pem")
    cases = ["req-plain", "req-any", "chain", "chain-alias", "exact-alias", "chain-self", "exact-wild", "wild",
             "pin", "pin-sha1", "pin-wrong", "never", "smtps", "bound", "unbound", "malformed", "depth"]
    domains = tuple(c + ".test" for c in cases)
    dns = h.Dnsmasq(["--host-record=mx.good.test,127.0.0.1", "--host-record=alias.test,127.0.0.1",
                     "--host-record=mx.wild.test,127.0.0.1", "--host-record=mx.self.test,127.0.0.1",
                     "--host-record=mx.plain.test,127.0.0.1"])
    good = Destination(domains, os.path.join(certs, "good.pem"))
    wild = Destination(domains, os.path.join(certs, "wild.pem"))
    self_signed = Destination(domains, os.path.join(certs, "self.pem"))
    plain = Destination(domains)
    smtps = Destination(domains, os.path.join(certs, "good.pem"), port=465, smtps=True)
    via = {"req-plain": f"mx.plain.test:{plain.port}", "req-any": f"mx.self.test:{self_signed.port}",
           "chain": f"mx.good.test:{good.port}", "chain-alias": f"alias.test;{good.port}",
           "exact-alias": f"alias.test;{good.port}", "chain-self": f"mx.self.test:{self_signed.port}",
           "exact-wild": f"mx.wild.test:{wild.port}", "wild": f"mx.wild.test;{wild.port}",
           "pin": f"mx.self.test:{self_signed.port}", "pin-sha1": f"mx.self.test:{self_signed.port}",
           "pin-wrong": f"mx.self.test:{self_signed.port}",
           "never": f"mx.good.test:{good.port}", "smtps": "mx.good.test;465", "bound": f"mx.plain.test:{plain.port}",
           "unbound": f"mx.plain.test:{plain.port}", "malformed": f"mx.good.test:{good.port}",
           "depth": f"mx.good.test:{good.port}"}
    pin = fingerprint(os.path.join(certs, "self.crt"))
    pin1 = fingerprint(os.path.join(certs, "self.crt"), "sha1")
    pin1 = ":".join(pin1[i:i + 2] for i in range(0, len(pin1), 2)).upper()     # colons and capitals, as printed
    rules = f"""req-plain.test:
req-any.test:
chain.test:{ca}
chain-alias.test:{ca}
=exact-alias.test:{ca}
chain-self.test:{ca}
=exact-wild.test:{ca}
~wild.test:{ca}
%pin.test:={pin}
pin-sha1.test:={pin1}
%pin-wrong.test:={"0" * 64}
!never.test:
=smtps.test:{ca}
bound.test:|||example.test
unbound.test:|||elsewhere.test
malformed.test:{ca}||deep
depth.test:{ca}||1
"""
    s = Sender(dns, "".join(f"{c}.test:{via[c]}\n" for c in cases), rules)
    try:
        sent = {c: s.submit(f"bob@{c}.test") for c in cases}
        s.start()
        D, T = "Accept::SEND::Delivered", "Deferred::SEND::Temp_Failure"
        want = {
            "req-plain": (T, "127.0.0.1:mx.plain.test", "",
                          ": 421 4.7.0 TLS is required for mx.plain.test, which does not offer STARTTLS'"),
            "req-any": (D, "127.0.0.1:mx.self.test", "ESMTPS", " tls unverified: 250 "),
            "chain": (D, "127.0.0.1:mx.good.test", "ESMTPS", " tls verified: 250 "),
            "chain-alias": (D, "127.0.0.1:alias.test", "ESMTPS", " tls verified: 250 "),
            "exact-alias": (T, "127.0.0.1:alias.test", "",
                            ": 421 4.7.5 the TLS certificate of alias.test did not verify: hostname mismatch'"),
            "chain-self": (T, "127.0.0.1:mx.self.test", "",
                           ": 421 4.7.5 the TLS certificate of mx.self.test did not verify: self-signed certificate'"),
            "exact-wild": (T, "127.0.0.1:mx.wild.test", "",
                           ": 421 4.7.5 the TLS certificate of mx.wild.test did not verify: hostname mismatch'"),
            "wild": (D, "127.0.0.1:mx.wild.test", "ESMTPS", " tls verified: 250 "),
            "pin": (D, "127.0.0.1:mx.self.test", "ESMTPS", " tls verified: 250 "),
            "pin-sha1": (D, "127.0.0.1:mx.self.test", "ESMTPS", " tls verified: 250 "),
            "pin-wrong": (T, "127.0.0.1:mx.self.test", "",
                          ": 421 4.7.5 the TLS certificate of mx.self.test is not the one control/tlsdestinations pins'"),
            "never": (D, "127.0.0.1:mx.good.test", "ESMTP", ": 250 "),
            "smtps": (D, "127.0.0.1:mx.good.test", "ESMTPS", " tls verified: 250 "),
            "bound": (T, "127.0.0.1:mx.plain.test", "",
                      ": 421 4.7.0 TLS is required for mx.plain.test, which does not offer STARTTLS'"),
            "unbound": (D, "127.0.0.1:mx.plain.test", "ESMTP", ": 250 "),
            "malformed": (T, ":unknown", "", ": 451 4.3.5 control/tlsdestinations: malformed rule for malformed.test'"),
            "depth": (D, "127.0.0.1:mx.good.test", "ESMTPS", " tls verified: 250 "),
        }
        for c, (row, hop, proto, detail) in want.items():
            qp, eid = sent[c]
            s.send.wait_line(line(row, hop, proto, f"bob@{c}.test", qp, eid, detail))
        # what was delivered arrived where the route says, over the connection the line names
        got = {}
        for name, d in (("good", good), ("wild", wild), ("self", self_signed), ("plain", plain), ("smtps", smtps)):
            for m in d.home.delivered("bob"):
                to = m.split(b"Subject: to bob@", 1)[1].split(b".test", 1)[0].decode()
                got[to] = name
        assert got == {"req-any": "self", "chain": "good", "chain-alias": "good", "wild": "wild", "pin": "self",
                       "pin-sha1": "self", "never": "good", "smtps": "smtps", "unbound": "plain",
                       "depth": "good"}, got
        # a deferred recipient stays pending, its reply kept in the entry
        e = entries(s.home)[sent["pin-wrong"][1]]
        assert e.states[0][0] == "p" and "pins" in e.states[0][3], e.states
    finally:
        s.stop()
        for d in (good, wild, self_signed, plain, smtps):
            d.stop()
        dns.stop()
        shutil.rmtree(certs, ignore_errors=True)


def test_a_rule_for_every_destination():
    """"=*:CA": TLS required everywhere, the certificate chaining to CA and
    naming the host; a destination's own rule comes first ("-" here)"""
    certs = tempfile.mkdtemp(prefix="mxgate-tlsdest-")
    certificates(certs)
    ca = os.path.join(certs, "ca.pem")
    domains = ("a.test", "b.test", "c.test")
    dns = h.Dnsmasq(["--host-record=mx.good.test,127.0.0.1", "--host-record=mx.self.test,127.0.0.1"])
    good = Destination(domains, os.path.join(certs, "good.pem"))
    self_signed = Destination(domains, os.path.join(certs, "self.pem"))
    s = Sender(dns, f"a.test:mx.good.test:{good.port}\nb.test:mx.self.test:{self_signed.port}\n"
                    f"c.test:mx.self.test:{self_signed.port}\n", f"=*:{ca}\n-c.test:\n")
    s.home.write("authsenders", ":smarthost.test|u|p\n")         # s/qmail's, not read: said at start
    try:
        sent = {d: s.submit(f"bob@{d}") for d in domains}
        s.start()
        assert ("mxgate-send: warning: control/authsenders is s/qmail's and mxgate-send does not read it; "
                "see mxgate-send(8), ROUTES\n") in s.send.log()
        qp, eid = sent["a.test"]
        s.send.wait_line(line("Accept::SEND::Delivered", "127.0.0.1:mx.good.test", "ESMTPS", "bob@a.test", qp, eid,
                              " tls verified: 250 "))
        qp, eid = sent["b.test"]
        s.send.wait_line(line("Deferred::SEND::Temp_Failure", "127.0.0.1:mx.self.test", "", "bob@b.test", qp, eid,
                              ": 421 4.7.5 the TLS certificate of mx.self.test did not verify: self-signed certificate'"))
        qp, eid = sent["c.test"]
        s.send.wait_line(line("Accept::SEND::Delivered", "127.0.0.1:mx.self.test", "ESMTPS", "bob@c.test", qp, eid,
                              " tls unverified: 250 "))
    finally:
        s.stop()
        good.stop(); self_signed.stop(); dns.stop()
        shutil.rmtree(certs, ignore_errors=True)
