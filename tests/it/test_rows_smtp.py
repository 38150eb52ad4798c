"""Every row of the core SMTP checks (issue 2), each asserted as the exact
log line (pid = tcpserver's) and the exact reply, under real tcpserver."""
import base64, os, subprocess
import harness as h

S = "S:127.0.0.1:unknown"


def talk(srv, lines, helo="EHLO client.test"):
    """one session; returns (pid, [reply lines of each command]); the
    commands are sent one by one after the greeting"""
    c = h.Client(srv.port)
    c.reply()
    out = []
    for l in ([helo] if helo else []) + lines:
        out.append(c.cmd(l)[1])
    c.cmd("QUIT")
    c.close()
    pid = srv.pids()[-1]
    srv.wait_end(pid)
    return pid, out


def line(srv, pid, row, rest, proto="ESMTP"):
    srv.wait_line(f"qmail-smtpd: pid {pid} {row}: {S} P:{proto} {rest}\n")


def cdb(path, keys):
    data = b"".join(b"+%d,0:%s->\n" % (len(k), k) for k in keys) + b"\n"
    subprocess.run(["cdb", "-c", path], input=data, check=True)


def server(setup=None, env=None, rules=None):
    home = h.Home()
    if setup:
        setup(home)
    r = h.tcprules(os.path.join(home.dir, "rules.cdb"), rules) if rules else None
    return home, h.smtpd(home, env=env, rules=r)


def test_relay_rows():
    home, srv = server(lambda hm: hm.write("rcpthosts", "example.test\n.sub.example.test\n"))
    try:
        pid, r = talk(srv, ["MAIL FROM:<a@remote.test>", "RCPT TO:<x@elsewhere.test>", "RCPT TO:<y@a.sub.example.test>"])
        assert r[2] == ["553 5.7.1 Relaying denied"] and r[3] == ["250 2.1.5 Recipient ok"]
        line(srv, pid, "Reject::SNDR::Invalid_Relay", "H:client.test F:a@remote.test T:x@elsewhere.test")
        line(srv, pid, "Accept::RCPT::Rcpthosts_Rcptto", "H:client.test F:a@remote.test T:y@a.sub.example.test")
    finally:
        srv.stop(); home.cleanup()
    home, srv = server(rules='127.0.0.1:allow,RELAYCLIENT="@relay.test"\n')
    try:
        pid, r = talk(srv, ["MAIL FROM:<a@remote.test>", "RCPT TO:<x@elsewhere.test>"])
        assert r[2] == ["250 2.1.5 Recipient ok"]
        line(srv, pid, "Accept::SNDR::Relay_Client", "H:client.test F:a@remote.test T:x@elsewhere.test@relay.test")
    finally:
        srv.stop(); home.cleanup()
    home, srv = server(lambda hm: hm.write("relaymailfrom", "boss@partner.test\n"))
    try:
        pid, r = talk(srv, ["MAIL FROM:<boss@partner.test>", "RCPT TO:<x@elsewhere.test>"])
        assert r[2] == ["250 2.1.5 Recipient ok"]
        line(srv, pid, "Accept::ORIG::Relay_Mailfrom", "H:client.test F:boss@partner.test T:x@elsewhere.test")
    finally:
        srv.stop(); home.cleanup()


def test_badmailfrom_forms():
    bmf = "\n".join(["bad@spam.test", "@spamdom.test", "*@wild.test", "!ok@wild.test", "@plus.test+",
                     "@dash.test-", "@eq.test=", "~client.example.org", "?good@spamdom.test"]) + "\n"
    home, srv = server(lambda hm: hm.write("badmailfrom", bmf))
    try:
        cases = [("bad@spam.test", "@"), ("x@SpamDom.test", "@"), ("x@wild.test", "*"), ("x@plus.test", "+"),
                 ("x@dash.test", "-")]
        for sender, form in cases:
            pid, r = talk(srv, [f"MAIL FROM:<{sender}>", "RCPT TO:<alice@example.test>"])
            assert r[1] == ["250 2.1.0 Sender ok"] and r[2] == ["553 5.7.1 Sender address rejected"], (sender, r)
            line(srv, pid, "Reject::ORIG::Bad_Mailfrom", f"H:client.test F:{sender} T:alice@example.test '{form}'")
        for sender in ("ok@wild.test", "good@spamdom.test", "x@eq.test"):    # '!' exemption, '?' bypass, '=' needs a name
            pid, r = talk(srv, [f"MAIL FROM:<{sender}>", "RCPT TO:<alice@example.test>"])
            assert r[2] == ["250 2.1.5 Recipient ok"], (sender, r)
    finally:
        srv.stop(); home.cleanup()
    # with a DNS name for the client (tcprules sets TCPREMOTEHOST): '=' and '~' apply, '-' does not
    home, srv = server(lambda hm: hm.write("badmailfrom", bmf), rules="127.0.0.1:allow,TCPREMOTEHOST=\"mail.client.example.org\"\n")
    try:
        for sender, form in (("x@eq.test", "="), ("x@other.test", "~")):
            pid, r = talk(srv, [f"MAIL FROM:<{sender}>", "RCPT TO:<alice@example.test>"])
            assert r[2] == ["553 5.7.1 Sender address rejected"], (sender, r)
            srv.wait_line(f"qmail-smtpd: pid {pid} Reject::ORIG::Bad_Mailfrom: S:127.0.0.1:mail.client.example.org "
                          f"P:ESMTP H:client.test F:{sender} T:alice@example.test '{form}'\n")
        pid, r = talk(srv, ["MAIL FROM:<x@client.example.org>", "RCPT TO:<alice@example.test>"])
        assert r[2] == ["250 2.1.5 Recipient ok"]                       # the client's own domain: no '~'
        srv.wait_line("Reject::ORIG::Bad_Mailfrom: S:127.0.0.1:mail.client.example.org P:ESMTP H:client.test "
                      "F:x@other.test T:alice@example.test '~'")
    finally:
        srv.stop(); home.cleanup()


def test_badrcptto():
    home, srv = server(lambda hm: hm.write("badrcptto", "abuse@example.test\n@example.test.invalid\nspam*@example.test\n"))
    try:
        pid, r = talk(srv, ["MAIL FROM:<a@remote.test>", "RCPT TO:<abuse@example.test>", "RCPT TO:<spammy@example.test>",
                            "RCPT TO:<alice@example.test>"])
        assert r[2] == r[3] == ["553 5.7.1 Recipient address rejected"] and r[4] == ["250 2.1.5 Recipient ok"]
        line(srv, pid, "Reject::RCPT::Bad_Rcptto", "H:client.test F:a@remote.test T:abuse@example.test")
        line(srv, pid, "Reject::RCPT::Bad_Rcptto", "H:client.test F:a@remote.test T:spammy@example.test")
    finally:
        srv.stop(); home.cleanup()


def test_helocheck_modes():
    def setup(hm):
        hm.write("badhelo", "bad.test\n*.dyn.test\n!ok.dyn.test\nexempt.test!\n")
    for mode, helo, detail in (("", "EHLO bad.test", "."), ("", "EHLO x.dyn.test", "*"), ("!", "EHLO ", "!"),
                               (".", None, "!")):       # '=' logs DNS_HELO: test_sqmail_senders D19
        home, srv = server(setup, env={"HELOCHECK": mode})
        try:
            pid, r = talk(srv, ["MAIL FROM:<a@remote.test>", "RCPT TO:<alice@example.test>"], helo=helo)
            assert r[-1] == ["550 5.7.1 HELO name rejected"], (mode, helo, r)
            h_field = "" if helo is None else f"H:{helo[5:]} "
            proto = "SMTP" if helo is None else "ESMTP"
            line(srv, pid, "Reject::SNDR::Bad_Helo", f"{h_field}F:a@remote.test T:alice@example.test '{detail}'", proto)
        finally:
            srv.stop(); home.cleanup()
    home, srv = server(setup, env={"HELOCHECK": "."})
    try:
        for helo in ("EHLO ok.dyn.test", "EHLO exempt.test"):
            pid, r = talk(srv, ["MAIL FROM:<a@remote.test>", "RCPT TO:<alice@example.test>"], helo=helo)
            assert r[-1] == ["250 2.1.5 Recipient ok"], (helo, r)
    finally:
        srv.stop(); home.cleanup()


def test_recipient_sources():
    def setup(hm):
        cdb(hm.path("rcpt.cdb"), [b":alice@example.test", b":@catch.test"])
        prog = hm.path("known")
        with open(prog, "w") as fh:
            fh.write('#!/bin/bash\nIFS= read -r -d "" a <&3\n[ "$a" = "pam@pam.test" ] && exit 0\nexit 1\n')
        os.chmod(prog, 0o755)
        hm.write("rcpthosts", "example.test\ncatch.test\npam.test\nwild.test\nopen.test\n")
        # "!*" (D3, D10): open.test, named by no line, passes as rcpthosts' (fail-closed without it)
        hm.write("recipients", f"example.test:{hm.path('rcpt.cdb')}\ncatch.test:{hm.path('rcpt.cdb')}\n"
                               f"pam.test|{prog}\n!wild.test\n!*\n")
    home, srv = server(setup)
    try:
        pid, r = talk(srv, ["MAIL FROM:<a@remote.test>", "RCPT TO:<Alice@Example.test>", "RCPT TO:<any@catch.test>",
                            "RCPT TO:<pam@pam.test>", "RCPT TO:<who@wild.test>", "RCPT TO:<x@open.test>",
                            "RCPT TO:<nobody@example.test>", "RCPT TO:<nope@pam.test>"])
        assert [x[0][:3] for x in r[2:]] == ["250"] * 5 + ["550", "550"], r
        assert r[7] == ["550 5.1.1 No such recipient here"]
        f = "H:client.test F:a@remote.test"
        line(srv, pid, "Accept::RCPT::Recipients_Cdb", f"{f} T:Alice@Example.test")
        line(srv, pid, "Accept::RCPT::Recipients_Wild", f"{f} T:any@catch.test")
        line(srv, pid, "Accept::RCPT::Recipients_Pam", f"{f} T:pam@pam.test")
        line(srv, pid, "Accept::RCPT::Recipients_Wild", f"{f} T:who@wild.test")
        line(srv, pid, "Accept::RCPT::Rcpthosts_Rcptto", f"{f} T:x@open.test")
        line(srv, pid, "Reject::RCPT::Failed_Rcptto", f"{f} T:nobody@example.test")
        line(srv, pid, "Reject::RCPT::Failed_Rcptto", f"{f} T:nope@pam.test")
    finally:
        srv.stop(); home.cleanup()
    home, srv = server(setup, env={"RECIPIENTS450": "1"})
    try:
        pid, r = talk(srv, ["MAIL FROM:<a@remote.test>", "RCPT TO:<nobody@example.test>"])
        assert r[2] == ["450 4.2.1 No such recipient here"]
    finally:
        srv.stop(); home.cleanup()


def test_toomany_and_tarpit_and_notorious():
    home, srv = server(env={"MAXRECIPIENTS": "2"})
    try:
        pid, r = talk(srv, ["MAIL FROM:<a@remote.test>"] + [f"RCPT TO:<u{i}@example.test>" for i in range(3)])
        assert r[4] == ["452 4.5.3 Too many recipients"]
        line(srv, pid, "Reject::RCPT::Toomany_Rcptto", "H:client.test F:a@remote.test T:u2@example.test")
    finally:
        srv.stop(); home.cleanup()
    setup = lambda hm: (cdb(hm.path("r.cdb"), [b":alice@example.test"]), hm.write("recipients", f"example.test:{hm.path('r.cdb')}\n"))
    home, srv = server(setup, env={"TARPITCOUNT": "2", "TARPITDELAY": "999"})
    try:
        c = h.Client(srv.port)
        c.reply(); c.cmd("EHLO client.test"); c.cmd("MAIL FROM:<a@remote.test>")
        assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
        assert c.cmd("RCPT TO:<x1@example.test>")[0] == 550
        assert c.cmd("RCPT TO:<x2@example.test>")[0] == 550
        assert c.cmd("RCPT TO:<x3@example.test>")[1] == ["452 4.5.3 Too many recipients"]
        assert c.cmd("DATA")[1] == ["554 5.7.1 Too many invalid recipients; closing connection"]
        assert c.closed()
        pid = srv.pids()[-1]
        line(srv, pid, "Reject::RCPT::Toomany_Rcptto", "H:client.test F:a@remote.test T:x3@example.test")
        line(srv, pid, "Reject::SNDR::Notorious", "H:client.test F:a@remote.test T:alice@example.test")
    finally:
        srv.stop(); home.cleanup()


def send_data(srv, body, mail="MAIL FROM:<a@remote.test>", env_cmds=()):
    c = h.Client(srv.port)
    c.reply(); c.cmd("EHLO client.test")
    r = [c.cmd(mail), c.cmd("RCPT TO:<alice@example.test>"), c.cmd("DATA")]
    if r[2][0] == 354:
        c.send(body)
        r.append(c.reply())
    c.close()
    return srv.pids()[-1], r


def test_full_maildir_disk_is_451_and_leaves_nothing():
    """a Maildir whose disk fills during DATA: 451 4.3.1 and the Queue_Failure
    row with the disk-full text in both modes (under tcpserver mxgate-queue
    says it; under mxgate-listen the worker writing the file does), nothing
    left in tmp/ or new/; once there is room the next message goes in"""
    home = h.Home()
    md = home.maildirs["alice"]
    st = {sub: os.stat(os.path.join(md, sub)) for sub in ("tmp", "new", "cur")}
    fs = h.Tmpfs(md, size="64k")
    if not fs.ok:
        home.cleanup()
        print("skipped: cannot mount a tmpfs here (needs root)")
        return
    srv = None
    try:
        for sub, s in st.items():
            os.mkdir(os.path.join(md, sub), s.st_mode & 0o7777)
            os.chown(os.path.join(md, sub), s.st_uid, s.st_gid)
        os.chmod(md, 0o755)
        srv = h.smtpd(home)
        big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 200 + b".\r\n"
        pid, r = send_data(srv, big)
        assert r[3][1] == ["451 4.3.1 Queue write error or disk full"], r
        line(srv, pid, "Deferred::DATA::Queue_Failure",
             "H:client.test F:a@remote.test T:alice@example.test 'Queue\\x20write\\x20error\\x20or\\x20disk\\x20full'")
        srv.wait_end(pid)
        assert os.listdir(os.path.join(md, "tmp")) == [] and home.delivered("alice") == []
        pid, r = send_data(srv, b"Subject: small\r\n\r\nfits\r\n.\r\n")
        assert r[3][0] == 250, r
        assert len(home.delivered("alice")) == 1
    finally:
        if srv:
            srv.stop()
        fs.umount()
        home.cleanup()


def test_qmailqueue_from_tcprules_is_the_queue():
    """QMAILQUEUE set for the client by tcprules is the program the message
    goes to, in both modes (mxgate-listen's embedded queue and its direct
    Maildir write must not skip a scanner put in front of the queue)"""
    home = h.Home()
    q, seen = home.path("scanner"), home.path("scanned")
    with open(q, "w") as fh:
        fh.write(f"#!/bin/sh\nls -l /proc/$$/fd > {seen}.fds; cat > {seen}; cat <&1 > /dev/null; exit 0\n")
    os.chmod(q, 0o755)
    srv = h.smtpd(home, rules=h.tcprules(os.path.join(home.dir, "rules.cdb"), f'127.0.0.1:allow,QMAILQUEUE="{q}"\n'))
    try:
        pid, r = send_data(srv, b"Subject: scan me\r\n\r\nbody\r\n.\r\n")
        assert r[3][0] == 250, r
        assert b"Subject: scan me\n" in open(seen, "rb").read()
        assert home.delivered("alice") == []                       # the scanner took it, not the Maildir
        fds = open(seen + ".fds").read()
        assert "socket:" not in fds, fds                           # no listening or client socket leaks into it
    finally:
        srv.stop(); home.cleanup()


def test_bare_lf_refusal_closes_without_waiting_for_a_quiet_client():
    """after the 554 for a bare LF the server drains briefly and closes,
    even when the client then says nothing (the session timeout is 1200 s;
    the client here gives up after 20)"""
    home, srv = server()
    try:
        c = h.Client(srv.port, timeout=20)
        c.reply(); c.cmd("EHLO client.test"); c.cmd("MAIL FROM:<a@remote.test>"); c.cmd("RCPT TO:<alice@example.test>")
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: x\r\n\r\nbare\nlf\r\n")
        assert c.reply()[0] == 554
        assert c.sock.recv(100) == b""                             # the server's side is shut at once
        srv.wait_end(srv.pids()[-1])                               # and the session ends, the client still silent
        c.close()
    finally:
        srv.stop(); home.cleanup()


def test_size_rows():
    home, srv = server(env={"DATABYTES": "1000"})
    try:
        pid, r = talk(srv, ["MAIL FROM:<a@remote.test> SIZE=5000", "RCPT TO:<alice@example.test>"])
        assert r[2] == ["552 5.3.4 Message size exceeds fixed maximum message size"]
        line(srv, pid, "Reject::DATA::Invalid_Size", "H:client.test F:a@remote.test T:alice@example.test")
        pid, r = send_data(srv, b"Subject: big\r\n\r\n" + b"x" * 2000 + b"\r\n.\r\n")
        assert r[3][1] == ["552 5.3.4 Message size exceeds fixed maximum message size"]
        line(srv, pid, "Reject::DATA::Invalid_Size", "H:client.test F:a@remote.test T:alice@example.test")
        assert home.delivered("alice") == []
    finally:
        srv.stop(); home.cleanup()


def test_queued_queue_failure_and_looping():
    home, srv = server()
    try:
        pid, r = send_data(srv, b"Subject: ok\r\n\r\nhello\r\n.\r\n")
        code, text = r[3]
        assert code == 250 and text[0].startswith("250 2.0.0 ok ") and " qp " in text[0], text
        qp = text[0].split(" qp ")[1]
        line(srv, pid, "Accept::DATA::Queued", f"H:client.test F:a@remote.test T:alice@example.test 'qp\\x20{qp}\\x20bytes\\x2019'")
        hops = b"".join(b"Received: from hop%d\r\n" % i for i in range(100))
        pid, r = send_data(srv, hops + b"Subject: loop\r\n\r\nx\r\n.\r\n")
        assert r[3][1] == ["554 5.4.6 Too many hops, this message is looping"]
        line(srv, pid, "Reject::DATA::Looping", "H:client.test F:a@remote.test T:alice@example.test")
        assert len(home.delivered("alice")) == 1
    finally:
        srv.stop(); home.cleanup()
    for prog, reply, detail in (("exit 53", "451 4.3.1 Queue write error or disk full", "Queue\\x20write\\x20error\\x20or\\x20disk\\x20full"),
                                (None, "451 4.3.0 Queue program failed", "Queue\\x20program\\x20failed")):
        home = h.Home()
        q = home.path("q")
        if prog:
            with open(q, "w") as fh:
                fh.write(f"#!/bin/sh\ncat >/dev/null; {prog}\n")
            os.chmod(q, 0o755)
        srv = h.smtpd(home, env={"QMAILQUEUE": q})
        try:
            pid, r = send_data(srv, b"Subject: x\r\n\r\ny\r\n.\r\n")
            assert r[3][1] == [reply], r
            line(srv, pid, "Deferred::DATA::Queue_Failure", f"H:client.test F:a@remote.test T:alice@example.test '{detail}'")
        finally:
            srv.stop(); home.cleanup()


def test_bare_lf_and_every_smuggling_end():
    home, srv = server()
    try:
        smuggle = b"MAIL FROM:<evil@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n"
        for fake_end in (b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r\n.\n", b"\r.\r", b"bare\nLF", b"bare\rCR"):
            body = b"Subject: test\r\n\r\nline" + fake_end + smuggle
            pid, r = send_data(srv, body)
            assert r[3][1] == ["554 5.6.0 Bare CR or LF in message; lines must end in CRLF"], (fake_end, r)
            line(srv, pid, "Reject::DATA::Bare_LF", "H:client.test F:a@remote.test T:alice@example.test")
        assert home.delivered("alice") == [] and home.delivered("bob") == []
        assert "Queued" not in srv.log() and "evil@remote.test" not in srv.log()
    finally:
        srv.stop(); home.cleanup()


def test_log_fields_escaped_and_cut():
    home, srv = server()
    try:
        c = h.Client(srv.port)
        c.reply()
        c.send(b"EHLO a\rb\x00c d'e\\f\xff\xc3\xa9\r\n"); c.reply()
        c.send(b"MAIL FROM:<" + b"x" * 300 + b"@remote.test>\r\n"); c.reply()
        c.cmd("RCPT TO:<far@elsewhere.test>")
        c.cmd("QUIT"); c.close()
        pid = srv.pids()[-1]
        srv.wait_end(pid)
        lines = [l for l in srv.log().splitlines() if l.startswith(f"qmail-smtpd: pid {pid} ")]
        assert len(lines) == 1, lines
        assert lines[0] == (f"qmail-smtpd: pid {pid} Reject::SNDR::Invalid_Relay: {S} P:ESMTP "
                            f"H:a\\x0db\\x00c\\x20d\\x27e\\x5cf\\xffé F:{'x' * 256}... T:far@elsewhere.test")
    finally:
        srv.stop(); home.cleanup()


def test_hostile_input():
    home, srv = server(lambda hm: hm.write("timeoutsmtpd", "2\n"))
    try:
        c = h.Client(srv.port)
        c.reply()
        c.send(b"NOOP " + b"A" * (1 << 20) + b"\r\n")
        assert c.reply()[1] == ["500 5.5.2 Line too long"]
        assert c.cmd("NOOP")[0] == 250                                  # the session goes on
        c.cmd("EHLO client.test"); c.cmd("MAIL FROM:<a@remote.test>")
        c.send(b"".join(b"RCPT TO:<u%d@example.test>\r\n" % i for i in range(10000)))
        codes = [c.reply()[0] for _ in range(10000)]
        assert codes == [250] * 10000
        c.send(b"GARBAGE\r\n\x00\x01\x02\r\nDATA\r\n")                 # pipelined garbage, then DATA
        assert c.reply()[0] == 502 and c.reply()[0] == 502 and c.reply()[0] == 354
        c.send(b"Subject: half\r\n\r\nhalf a messa")                   # then the client vanishes
        c.close()
        pid = srv.pids()[-1]
        srv.wait_end(pid)
        assert home.delivered("alice") == [] and "Queued" not in srv.log()
        slow = h.Client(srv.port)                                       # a client that says nothing
        slow.reply()
        assert slow.readline().startswith("451 4.4.2 Timeout")
        assert slow.closed()
    finally:
        srv.stop(); home.cleanup()


def test_real_clients():
    import smtplib
    home, srv = server()
    try:
        with smtplib.SMTP("127.0.0.1", srv.port) as s:
            code, caps = s.ehlo("client.test")
            assert code == 250
            for cap in ("PIPELINING", "8BITMIME", "SIZE", "ENHANCEDSTATUSCODES", "SMTPUTF8"):
                assert s.has_extn(cap), cap
            s.sendmail("a@remote.test", ["alice@example.test"], b"Subject: smtplib\r\n\r\nfrom python\r\n")
            assert s.vrfy("alice")[0] == 252
            assert s.docmd("HELP")[0] == 214
            assert s.rset()[0] == 250 and s.noop()[0] == 250
        got = home.delivered("alice")[-1]
        assert got.endswith(b"Subject: smtplib\n\nfrom python\n"), got
        r = subprocess.run(["swaks", "--server", f"127.0.0.1:{srv.port}", "--from", "a@remote.test",
                            "--to", "bob@example.test", "--header", "Subject: swaks"], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout
        r = subprocess.run(["curl", "-s", f"smtp://127.0.0.1:{srv.port}", "--mail-from", "a@remote.test",
                            "--mail-rcpt", "alice@example.test", "-T", "-"], input=b"Subject: curl\r\n\r\nhi\r\n")
        assert r.returncode == 0
        assert len(home.delivered("alice")) == 2 and len(home.delivered("bob")) == 1
        pid, r = talk(srv, ["MAIL FROM:<ü@remote.test> SMTPUTF8", "RCPT TO:<alice@example.test>"])
        line(srv, pid, "Accept::RCPT::Rcpthosts_Rcptto", "H:client.test F:ü@remote.test T:alice@example.test", "ESMTPUTF8")
    finally:
        srv.stop(); home.cleanup()
