"""DKIM signing of the mail of authenticated and relay clients
(mxgate-smtpd(8), "DKIM SIGNING"): the key is made by scripts/mxgate-dkimkey,
its TXT record is served by a real DNS server (dnsmasq), and every
signature is checked by a second program, dkimpy (python3-dkim), whose key
lookups are real DNS questions to that dnsmasq."""
import base64, os, re, shutil, smtplib, subprocess, tempfile
import harness as h

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DKIMKEY = os.path.join(TOP, "scripts", "mxgate-dkimkey")
S = "S:127.0.0.1:unknown"

MSG = (b"From: Sender <a@signer.test>\r\nTo: bob@far.test\r\nCc: carol@far.test\r\nSubject: signed here\r\n"
       b"Date: Tue, 24 Nov 2026 12:00:00 +0000\r\nMessage-ID: <1@signer.test>\r\nX-Other: not signed\r\n\r\n"
       b"Hello Bob,\r\nthis message is signed by mxgate.\r\n.and a line that starts with a dot.\r\n")


def txt_option(name, value):
    """--txt-record with the value split in 255-byte strings (DKIM keys are longer)"""
    parts = [value[i:i + 255] for i in range(0, len(value), 255)]
    return f"--txt-record={name}," + ",".join(parts)


def make_key(home, domain, selector):
    """mxgate-dkimkey's key and the TXT record it printed, as one string"""
    r = subprocess.run([DKIMKEY, domain, selector], env=dict(os.environ, MXGATE_HOME=home.dir),
                       capture_output=True, text=True, check=True)
    m = re.fullmatch(rf'{re.escape(selector)}\._domainkey\.{re.escape(domain)}\. IN TXT \( (.*) \)\n', r.stdout)
    assert m, r.stdout
    return "".join(re.findall(r'"([^"]*)"', m.group(1)))


class World:
    """a home with signer.test's key (selector sel1) published in dnsmasq,
    and the user alice who may authenticate"""

    def __init__(self):
        import dkim  # noqa: F401  (the verifier must be there)
        self.home = h.Home()
        self.txt = make_key(self.home, "signer.test", "sel1")
        assert self.txt.startswith("v=DKIM1; k=rsa; p=")
        self.dns = h.Dnsmasq([txt_option("sel1._domainkey.signer.test", self.txt)])
        hashed = subprocess.run([h.prog("mxgate-authuser"), "--hash"], input="alice-pw\n", capture_output=True,
                                text=True, check=True).stdout.strip()
        self.home.write("users", f"alice:{hashed}:alice-cram:::{self.home.dir}:\n", mode=0o600)
        self.qdir = tempfile.mkdtemp(prefix="mxgate-q-")
        self.queue = os.path.join(self.qdir, "q")
        with open(self.queue, "w") as fh:
            fh.write(f"#!/bin/sh\ncat > {self.qdir}/msg; cat <&1 > /dev/null; exit 0\n")
        os.chmod(self.queue, 0o755)
        self.servers = []

    def smtpd(self, env, queue=True):
        e = {"SMTPAUTH": "", "AUTH_CLEARTEXT": "1", "AUTHDELAY": "0"}
        if queue:
            e["QMAILQUEUE"] = self.queue
        e.update(env)
        srv = h.smtpd(self.home, env=e, args=[h.prog("mxgate-authuser"), "/bin/true"])
        self.servers.append(srv)
        return srv

    def queued(self):
        return open(os.path.join(self.qdir, "msg"), "rb").read()

    def verify(self, msg):
        """dkimpy's verdict on the message as the queue has it (LF line ends)"""
        import dkim
        import dns.resolver
        res = dns.resolver.Resolver(configure=False)
        res.nameservers, res.port = ["127.0.0.1"], self.dns.port

        def dnsfunc(name, timeout=5):
            name = name.decode() if isinstance(name, bytes) else name
            try:
                ans = res.resolve(name, "TXT", lifetime=timeout)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                return None
            return b"".join(b"".join(r.strings) for r in ans)
        return dkim.verify(msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), dnsfunc=dnsfunc)

    def stop(self):
        for s in self.servers:
            s.stop()
        self.dns.stop(); self.home.cleanup()
        shutil.rmtree(self.qdir, ignore_errors=True)


def send(srv, msg, rcpt="bob@far.test", auth=False, mailfrom="a@signer.test"):
    """one message over a raw session; (pid, reply to the end of data)"""
    c = h.Client(srv.port)
    c.reply(); c.cmd("EHLO client.test")
    if auth:
        assert c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0alice-pw").decode())[0] == 235
    assert c.cmd(f"MAIL FROM:<{mailfrom}>")[0] == 250
    assert c.cmd(f"RCPT TO:<{rcpt}>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    body = msg.replace(b"\r\n.", b"\r\n..")
    c.send(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
    r = c.reply()
    c.cmd("QUIT"); c.close()
    return srv.pids()[-1], r


def signature(msg):
    """the DKIM-Signature field, unfolded, and its tags"""
    assert msg.startswith(b"DKIM-Signature: "), msg[:200]
    field = re.match(rb"DKIM-Signature: (.*?)\n(?![ \t])", msg, re.S).group(1)
    flat = re.sub(rb"\s+", b"", field).decode()
    return dict(t.split("=", 1) for t in flat.split(";") if t)


def test_authenticated_submission_is_signed_and_verifies():
    w = World()
    try:
        srv = w.smtpd({})
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as s:       # a real client: smtplib, AUTH LOGIN
            s.ehlo("client.test"); s.login("alice", "alice-pw")
            s.sendmail("a@signer.test", ["bob@far.test"], MSG)
        srv.wait_line(f"qmail-smtpd: pid {srv.pids()[-1]} Accept::DATA::Queued: ")
        q = w.queued()
        tags = signature(q)
        assert tags["d"] == "signer.test" and tags["s"] == "sel1" and tags["a"] == "rsa-sha256", tags
        assert tags["c"] == "relaxed/relaxed", tags
        assert tags["h"].lower().split(":")[:6] == ["from", "to", "cc", "subject", "date", "message-id"], tags
        assert "x-other" not in tags["h"].lower()
        assert q.count(b"DKIM-Signature:") == 1                        # once per message
        assert w.verify(q), "dkimpy must accept mxgate's signature"
        assert b"\n..and a line" not in q and b"\n.and a line" in q    # signed as queued: dot-stuffing undone
        changed = q.replace(b"signed by mxgate", b"signed by someone else")
        assert changed != q and not w.verify(changed), "a changed body must fail verification"
        changed = q.replace(b"Subject: signed here", b"Subject: signed there")
        assert changed != q and not w.verify(changed), "a changed signed header must fail verification"
    finally:
        w.stop()


def test_relay_client_is_signed_through_the_embedded_queue():
    w = World()
    try:
        srv = w.smtpd({"RELAYCLIENT": ""}, queue=False)                  # the embedded queue, into a Maildir
        pid, r = send(srv, MSG, rcpt="alice@example.test")
        assert r[0] == 250, r
        srv.wait_line(f"qmail-smtpd: pid {pid} Accept::SNDR::Relay_Client: {S} P:ESMTP H:client.test "
                      "F:a@signer.test T:alice@example.test\n")
        got = h.wait_for(lambda: w.home.delivered("alice"), what="delivery")
        got = w.home.delivered("alice")
        assert len(got) == 1
        # the queue puts its own lines (Return-Path, Delivered-To) first: they are not signed
        m = got[0]
        start = m.index(b"DKIM-Signature: ")
        assert signature(m[start:])["d"] == "signer.test"
        assert w.verify(m[start:]) and w.verify(m)
    finally:
        w.stop()


def test_plain_inbound_and_unkeyed_senders_are_not_signed():
    w = World()
    try:
        srv = w.smtpd({})                                                  # neither AUTH nor RELAYCLIENT
        pid, r = send(srv, MSG, rcpt="alice@example.test")
        assert r[0] == 250, r
        assert b"DKIM-Signature" not in w.queued() and w.queued().startswith(b"Received: ")
        # trusted, but no key for the From: domain, several From: addresses, no From: at all
        for msg in (MSG.replace(b"a@signer.test>", b"a@other.test>"),
                    MSG.replace(b"From: Sender <a@signer.test>", b"From: a@signer.test, b@signer.test"),
                    MSG.replace(b"From: Sender <a@signer.test>", b"From: a@signer.test\r\nFrom: b@signer.test"),
                    MSG.replace(b"From: Sender <a@signer.test>\r\n", b"")):
            pid, r = send(srv, msg, auth=True)
            assert r[0] == 250, r
            assert b"DKIM-Signature" not in w.queued(), msg
        # a display name with a comment and a quoted "@": the address's domain counts
        pid, r = send(srv, MSG.replace(b"From: Sender <a@signer.test>",
                                       b'From: "x@other.test" (c@other.test)\r\n <A@Signer.TEST>'), auth=True)
        assert r[0] == 250 and signature(w.queued())["d"] == "signer.test" and w.verify(w.queued())
    finally:
        w.stop()


def test_header_set_and_canonicalisation_settings():
    w = World()
    try:
        srv = w.smtpd({"DKIMSIGN_HEADERS": "From:Subject:X-Other", "DKIMSIGN_CANON": "simple/relaxed"})
        pid, r = send(srv, MSG, auth=True)
        assert r[0] == 250, r
        tags = signature(w.queued())
        assert tags["h"].lower() == "from:subject:x-other" and tags["c"] == "simple/relaxed", tags
        assert w.verify(w.queued())
        srv = w.smtpd({"DKIMSIGN_CANON": "simple"})
        pid, r = send(srv, MSG, auth=True)
        tags = signature(w.queued())
        assert tags.get("c", "simple/simple") in ("simple", "simple/simple"), tags
        assert w.verify(w.queued())
        srv = w.smtpd({"DKIMSIGN_HEADERS": "Subject:To"})                # From must be signed: 421 at once
        c = h.Client(srv.port)
        assert c.reply()[1] == ["421 4.3.5 Server configuration error; try again later"]
        c.close()
        h.wait_for(lambda: "fatal: DKIMSIGN_HEADERS: From must be signed" in srv.log(), what="fatal line")
    finally:
        w.stop()


def deferred(srv, pid, r, detail):
    assert r[1] == ["451 4.3.0 Temporary failure signing the message, please try again later"], r
    srv.wait_line(f"qmail-smtpd: pid {pid} Deferred::DKIM::Sign_Failure: {S} P:ESMTPA H:client.test "
                  f"F:a@signer.test T:bob@far.test '{detail}'\n")


def test_unusable_key_is_451_and_nothing_is_queued():
    w = World()
    try:
        srv = w.smtpd({})
        w.home.write("dkimdomains", "# keys\nsigner.test:gone\n")
        pid, r = send(srv, MSG, auth=True)
        deferred(srv, pid, r, "control/dkim/signer.test/gone:\\x20No\\x20such\\x20file\\x20or\\x20directory")
        os.makedirs(w.home.path("control", "dkim", "signer.test"), exist_ok=True)
        w.home.write("dkim/signer.test/junk", "not a key\n")
        w.home.write("dkimdomains", "signer.test:junk\n")
        pid, r = send(srv, MSG, auth=True)
        deferred(srv, pid, r, "control/dkim/signer.test/junk:\\x20not\\x20a\\x20PEM\\x20RSA\\x20private\\x20key")
        w.home.write("dkimdomains", "signer.test:sel1|sdid\n")         # s/qmail's further fields: refused
        pid, r = send(srv, MSG, auth=True)
        deferred(srv, pid, r, "control/dkimdomains:\\x20line\\x201:\\x20not\\x20domain[:selector[:keyfile]]")
        msgfile = os.path.join(w.qdir, "msg")
        assert not os.path.exists(msgfile) or os.path.getsize(msgfile) == 0, "nothing may be queued unsigned"
        assert "Accept::DATA::Queued" not in srv.log()
        w.home.write("dkimdomains", "signer.test:sel1:dkim/signer.test/sel1\n")   # an explicit keyfile
        pid, r = send(srv, MSG, auth=True)
        assert r[0] == 250 and w.verify(w.queued())
    finally:
        w.stop()
