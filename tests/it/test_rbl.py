"""rblsmtpd in front of mxgate-smtpd: the RBL verdict and mxgate's lines
share the pid tcpserver reported; a listing from a real DNS zone."""
import os, shutil, socket, subprocess, tempfile, time
import harness as h


def dnsmasq_rbl(ip="127.0.0.53"):
    """dnsmasq serving rbl.test on ip:53 (rblsmtpd asks port 53 only)"""
    d = tempfile.mkdtemp(prefix="mxgate-rbl-")
    p = subprocess.Popen(["dnsmasq", "--no-daemon", "--port=53", f"--listen-address={ip}", "--bind-interfaces",
                          "--no-resolv", "--no-hosts", "--local=/test/",
                          "--host-record=1.0.0.127.rbl.test,127.0.0.2",
                          "--txt-record=1.0.0.127.rbl.test,listed in the test RBL",
                          f"--pid-file={d}/pid"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    def up():
        r = subprocess.run(["dig", "+short", "+time=1", "+tries=1", f"@{ip}", "1.0.0.127.rbl.test", "A"],
                           capture_output=True, text=True)
        return "127.0.0.2" in r.stdout
    h.wait_for(up, what="dnsmasq")
    return p, d


def test_rblsmtpd_text_block_joins_by_pid():
    home = h.Home()
    srv = h.Tcpserver(["rblsmtpd", h.prog("mxgate-smtpd")],
                      env={"MXGATE_HOME": home.dir, "RBLSMTPD": "-blocked for testing"})
    try:
        c = h.Client(srv.port)
        assert c.reply()[1] == ["220 rblsmtpd.local"]      # rblsmtpd speaks; mxgate never runs
        c.cmd("HELO client.test")
        c.cmd("MAIL FROM:<a@remote.test>")
        assert c.cmd("RCPT TO:<alice@example.test>")[1] == ["553 blocked for testing"]
        c.cmd("QUIT")
        c.close()
        pid = srv.pids()[0]
        srv.wait_line(f"rblsmtpd: 127.0.0.1 pid {pid}: 553 blocked for testing")
        srv.wait_end(pid)
        assert "qmail-smtpd:" not in srv.log()
    finally:
        srv.stop(); home.cleanup()


def test_rblsmtpd_dns_listing():
    if os.getuid() != 0:
        print("skipped: dnsmasq on port 53 needs root")
        return
    dns, d = dnsmasq_rbl()
    home = h.Home()
    srv = h.Tcpserver(["rblsmtpd", "-r", "rbl.test", h.prog("mxgate-smtpd")],
                      env={"MXGATE_HOME": home.dir, "DNSCACHEIP": "127.0.0.53"})
    try:
        c = h.Client(srv.port)
        assert c.reply()[1] == ["220 rblsmtpd.local"]
        c.cmd("HELO client.test")
        c.cmd("MAIL FROM:<a@remote.test>")
        code, lines = c.cmd("RCPT TO:<alice@example.test>")
        assert code == 451 and "listed in the test RBL" in lines[0], lines
        c.cmd("QUIT")
        c.close()
        pid = srv.pids()[0]
        srv.wait_line(f"rblsmtpd: 127.0.0.1 pid {pid}: 451 listed in the test RBL")
    finally:
        srv.stop(); home.cleanup(); dns.terminate(); dns.wait(); shutil.rmtree(d, ignore_errors=True)


def test_rbl_info_header_when_rblsmtpd_lets_through():
    """RBLSMTPD set for this client (tcprules) reaches the server: recorded as X-RBL-Info"""
    home = h.Home()
    qdir = tempfile.mkdtemp(prefix="mxgate-q-")
    q = os.path.join(qdir, "q")
    with open(q, "w") as fh:
        fh.write(f"#!/bin/sh\ncat > {qdir}/msg; cat <&1 > {qdir}/env; exit 0\n")
    os.chmod(q, 0o755)
    rules = h.tcprules(os.path.join(home.dir, "rules.cdb"), '127.0.0.1:allow,RBLSMTPD="-listed but allowed here"\n')
    srv = h.smtpd(home, env={"QMAILQUEUE": q}, rules=rules)
    try:
        c = h.Client(srv.port)
        c.reply()
        c.cmd("HELO client.test")
        c.cmd("MAIL FROM:<a@remote.test>")
        c.cmd("RCPT TO:<alice@example.test>")
        c.cmd("DATA")
        code, _ = c.cmd("Subject: x\r\n\r\nhi\r\n.")
        assert code == 250
        msg = open(f"{qdir}/msg").read()
        assert "\nX-RBL-Info: listed but allowed here\n" in msg, msg
    finally:
        srv.stop(); home.cleanup(); shutil.rmtree(qdir, ignore_errors=True)
