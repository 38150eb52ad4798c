"""DKIMVERIFY against messages signed by an independent signer (dkimpy,
python3-dkim) with keys published in a real DNS server (dnsmasq)."""
import base64, os, shutil, subprocess, tempfile
import harness as h

MSG = (b"From: Sender <a@signer.test>\r\nTo: alice@example.test\r\nSubject: signed\r\n"
       b"Date: Tue, 24 Nov 2026 12:00:00 +0000\r\nMessage-ID: <1@signer.test>\r\n\r\n"
       b"Hello Alice,\r\nthis message is signed.\r\n")


def txt_option(name, value):
    """--txt-record with the value split in 255-byte strings (DKIM keys are longer)"""
    parts = [value[i:i + 255] for i in range(0, len(value), 255)]
    return f"--txt-record={name}," + ",".join(parts)


class Keys:
    def __init__(self):
        import dkim  # noqa: F401  (only checks the signer is there)
        self.dir = tempfile.mkdtemp(prefix="mxgate-dkim-")
        key = os.path.join(self.dir, "rsa.pem")
        subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
        self.rsa = open(key, "rb").read()
        der = subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.rsa_txt = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
        import nacl.signing
        sk = nacl.signing.SigningKey.generate()
        self.ed = base64.b64encode(bytes(sk))
        self.ed_txt = "v=DKIM1; k=ed25519; p=" + base64.b64encode(bytes(sk.verify_key)).decode()

    def records(self):
        return [txt_option("rsa._domainkey.signer.test", self.rsa_txt),
                txt_option("ed._domainkey.signer.test", self.ed_txt),
                "--host-record=signer.test,198.51.100.9"]

    def sign(self, msg, selector=b"rsa", algo=b"rsa-sha256", canon=(b"relaxed", b"simple")):
        import dkim
        key = self.rsa if algo == b"rsa-sha256" else self.ed
        sig = dkim.sign(msg, selector, b"signer.test", key, canonicalize=canon, signature_algorithm=algo,
                        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
        return sig.replace(b"\r\n", b"\r\n") + msg


class World:
    def __init__(self):
        self.keys = Keys()
        self.dns = h.Dnsmasq(self.keys.records())
        self.home = h.Home()
        self.qdir = tempfile.mkdtemp(prefix="mxgate-q-")
        q = os.path.join(self.qdir, "q")
        with open(q, "w") as fh:
            fh.write(f"#!/bin/sh\ncat > {self.qdir}/msg; cat <&1 > /dev/null; exit 0\n")
        os.chmod(q, 0o755)
        self.srv = h.smtpd(self.home, env={"DKIMVERIFY": "1", "DNSCACHEIP": self.dns.spec, "QMAILQUEUE": q})

    def send(self, msg):
        c = h.Client(self.srv.port)
        c.reply(); c.cmd("EHLO client.test"); c.cmd("MAIL FROM:<a@signer.test>"); c.cmd("RCPT TO:<alice@example.test>")
        assert c.cmd("DATA")[0] == 354
        body = msg.replace(b"\r\n.", b"\r\n..")
        c.send(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        r = c.reply()
        c.cmd("QUIT"); c.close()
        return self.srv.pids()[-1], r

    def queued(self):
        return open(os.path.join(self.qdir, "msg"), "rb").read()

    def stop(self):
        self.srv.stop(); self.dns.stop(); self.home.cleanup()
        shutil.rmtree(self.qdir, ignore_errors=True); shutil.rmtree(self.keys.dir, ignore_errors=True)


KEY_MISSING = "key\\x20not\\x20found\\x20in\\x20DNS"


def rejected(w, pid, r, detail):
    assert r[1] == ["554 5.7.20 DKIM signature verification failed"], r
    w.srv.wait_line(f"qmail-smtpd: pid {pid} Reject::DKIM::Signature: S:127.0.0.1:unknown P:ESMTP H:client.test "
                    f"F:a@signer.test T:alice@example.test '{detail}'\n")


def test_dkim_rows():
    w = World()
    try:
        pid, r = w.send(w.keys.sign(MSG))                                      # valid, relaxed/simple
        assert r[0] == 250, r
        assert w.queued().startswith(b"Authentication-Results: mx.example.test; dkim=pass header.d=signer.test\n")
        pid, r = w.send(w.keys.sign(MSG, canon=(b"simple", b"simple")))       # valid, simple/simple
        assert r[0] == 250, r
        signed = w.keys.sign(MSG)
        pid, r = w.send(signed.replace(b"this message is signed", b"this message is altered"))
        rejected(w, pid, r, "body\\x20hash\\x20mismatch")
        pid, r = w.send(signed.replace(b"Subject: signed", b"Subject: forged"))
        rejected(w, pid, r, "signature\\x20verification\\x20failed")
        pid, r = w.send(w.keys.sign(MSG, selector=b"missing"))                # no key in DNS
        rejected(w, pid, r, KEY_MISSING)
    finally:
        w.stop()


def test_dkim_ed25519_and_unsigned():
    w = World()
    try:
        pid, r = w.send(w.keys.sign(MSG, selector=b"ed", algo=b"ed25519-sha256"))
        assert r[0] == 250, r
        assert b"dkim=pass header.d=signer.test" in w.queued()
        pid, r = w.send(MSG)                                                     # unsigned: accepted, dkim=none
        assert r[0] == 250, r
        assert w.queued().startswith(b"Authentication-Results: mx.example.test; dkim=none\n")
    finally:
        w.stop()


def test_full_spool_disk_is_451_not_a_refusal():
    """the content checks' spool fills up mid-message: the client is told
    451 4.3.1 (try again), never 554 for a signature that a cut copy of the
    message cannot match"""
    spool = tempfile.mkdtemp(prefix="mxgate-spool-")
    fs = h.Tmpfs(spool, size="64k", mode="1777")
    if not fs.ok:
        shutil.rmtree(spool, ignore_errors=True)
        print("skipped: cannot mount a tmpfs here (needs root)")
        return
    keys = Keys()
    dns = h.Dnsmasq(keys.records())
    home = h.Home()
    srv = h.smtpd(home, env={"DKIMVERIFY": "1", "DNSCACHEIP": dns.spec, "TMPDIR": spool})
    try:
        msg = keys.sign(MSG.replace(b"this message is signed.\r\n", b"this message is signed.\r\n" +
                                    (b"y" * 998 + b"\r\n") * 200))
        c = h.Client(srv.port)
        c.reply(); c.cmd("EHLO client.test"); c.cmd("MAIL FROM:<a@signer.test>"); c.cmd("RCPT TO:<alice@example.test>")
        assert c.cmd("DATA")[0] == 354
        c.send(msg.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        r = c.reply()
        c.cmd("QUIT"); c.close()
        pid = srv.pids()[-1]
        assert r[1] == ["451 4.3.1 Queue write error or disk full"], r
        srv.wait_line(f"qmail-smtpd: pid {pid} Deferred::DATA::Queue_Failure: S:127.0.0.1:unknown P:ESMTP H:client.test "
                      "F:a@signer.test T:alice@example.test 'Queue\\x20write\\x20error\\x20or\\x20disk\\x20full'\n")
        assert home.delivered("alice") == [] and "Reject::" not in srv.log()
    finally:
        srv.stop(); dns.stop(); home.cleanup()
        fs.umount()
        shutil.rmtree(spool, ignore_errors=True); shutil.rmtree(keys.dir, ignore_errors=True)
