"""mxgate-sessions on the log of real sessions: tcpserver + rblsmtpd +
mxgate-smtpd + mxgate-popup written by multilog (TAI64N, a directory),
compared with what the test did."""
import json, os, shutil, smtplib, subprocess, tempfile, time, socket
import harness as h

TOOL = h.prog("mxgate-sessions")


def logged_server(home, logdir, rules):
    """tcpserver | multilog t logdir, rblsmtpd in front of mxgate-smtpd"""
    port = h.free_port()
    cmd = (f"exec tcpserver -v -R -H -l0 -x {rules} 127.0.0.1 {port} rblsmtpd {h.prog('mxgate-smtpd')} 2>&1 "
           f"| multilog t {logdir}")
    p = subprocess.Popen(["sh", "-c", cmd], env={"PATH": os.environ["PATH"], "MXGATE_HOME": home.dir},
                         start_new_session=True, stdin=subprocess.DEVNULL)
    h.wait_for(lambda: os.path.exists(f"{logdir}/current") and "status: 0/" in open(f"{logdir}/current").read(),
               what="logged tcpserver")
    return p, port


def bound(port, src):
    s = socket.socket()
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    c = h.Client.__new__(h.Client)
    c.sock, c.buf = s, b""
    s.settimeout(10)
    return c


def sessions(logdir):
    out = subprocess.run([TOOL, "--format", "json", logdir], capture_output=True, text=True, check=True).stdout
    return [json.loads(l) for l in out.splitlines()]


def test_sessions_from_a_real_log():
    home = h.Home()
    logdir = os.path.join(home.dir, "log")
    rules = h.tcprules(home.path("rules.cdb"), '127.0.0.9:allow,RBLSMTPD="-blocked for testing"\n:allow\n')
    p, port = logged_server(home, logdir, rules)
    try:
        with smtplib.SMTP("127.0.0.1", port) as s:                             # 1: accepted and queued
            s.ehlo("good.test")
            s.sendmail("a@remote.test", ["alice@example.test"], b"Subject: 1\r\n\r\nx\r\n")
        c = h.Client(port); c.reply(); c.cmd("HELO bad.test")                  # 2: relaying refused
        c.cmd("MAIL FROM:<b@remote.test>"); c.cmd("RCPT TO:<x@elsewhere.test>"); c.cmd("QUIT"); c.close()
        c = bound(port, "127.0.0.9"); c.reply(); c.cmd("HELO rbl.test")        # 3: blocked by rblsmtpd
        c.cmd("MAIL FROM:<c@remote.test>"); c.cmd("RCPT TO:<alice@example.test>"); c.cmd("QUIT"); c.close()
        one = h.Client(port); one.reply(); one.cmd("EHLO one.test")            # 4 and 5 interleave
        two = h.Client(port); two.reply(); two.cmd("EHLO two.test")
        one.cmd("MAIL FROM:<d@remote.test>"); two.cmd("MAIL FROM:<e@remote.test>")
        one.cmd("RCPT TO:<alice@example.test>"); two.cmd("RCPT TO:<bob@example.test>")
        one.cmd("DATA"); one.send("Subject: cut\r\n\r\nhalf")                  # 4 drops mid-DATA
        one.close()
        two.cmd("QUIT"); two.close()
        h.wait_for(lambda: open(f"{logdir}/current").read().count("tcpserver: end") >= 5, what="five ends")
        got = sessions(logdir)
        assert len(got) == 5, got
        assert all(not s["partial"] and s["exit"] == 0 and s["ip"] for s in got), got
        by_helo = {s["helo"]: s for s in got if s["helo"]}
        rows = lambda s: [e["row"] for e in s["events"]]
        assert rows(by_helo["good.test"]) == ["Accept::RCPT::Rcpthosts_Rcptto", "Accept::DATA::Queued"]
        assert by_helo["good.test"]["events"][1]["detail"].startswith("qp ")
        assert rows(by_helo["bad.test"]) == ["Reject::SNDR::Invalid_Relay"]
        assert by_helo["bad.test"]["events"][0]["to"] == "x@elsewhere.test"
        blocked = [s for s in got if s["rbl"]]
        assert len(blocked) == 1 and blocked[0]["rbl"] == "553 blocked for testing" and blocked[0]["ip"] == "127.0.0.9"
        assert rows(by_helo["one.test"]) == ["Accept::RCPT::Rcpthosts_Rcptto"]
        assert rows(by_helo["two.test"]) == ["Accept::RCPT::Rcpthosts_Rcptto"]
        assert by_helo["two.test"]["events"][0]["to"] == "bob@example.test"
        summary = subprocess.run([TOOL, "--summary", logdir], capture_output=True, text=True, check=True).stdout
        assert "5  sessions (0 partial)" in summary and "Reject::SNDR::Invalid_Relay" in summary, summary
        prom = subprocess.run([TOOL, "--prometheus", logdir], capture_output=True, text=True, check=True).stdout
        assert 'mxgate_decisions_total{action="Accept",type="DATA",condition="Queued"} 1' in prom
        csv = subprocess.run([TOOL, "--format", "csv", "--action", "Reject", logdir], capture_output=True, text=True).stdout
        assert csv.count("\n") == 1 and "Invalid_Relay" in csv
        html = home.path("report.html")
        subprocess.run([TOOL, "--html", html, logdir], check=True)
        page = open(html).read()
        assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "bad.test" in page and "http" not in page
    finally:
        os.killpg(p.pid, 15); p.wait(10); home.cleanup()


def test_threads_give_the_same_report_as_one():
    """a 100 MB log counted in 3 chunks by 3 threads and by one thread: the
    same report; lines longer than the reader takes (1 MiB) or than a mapped
    window (8 MiB) are counted as not recognised either way"""
    d = tempfile.mkdtemp(prefix="mxgate-st-")
    try:
        gen, log = os.path.join(d, "genlog"), os.path.join(d, "current")
        subprocess.run(["cc", "-O2", "-o", gen, os.path.join(h.TOP, "bench", "sessions", "genlog.c")], check=True)
        with open(log, "wb") as fh:
            subprocess.run([gen, str(50 << 20)], stdout=fh, check=True)
            fh.write(b"x" * (2 << 20) + b"\n" + b"y" * (9 << 20) + b"\n")
            fh.flush()
            subprocess.run([gen, str(50 << 20)], stdout=fh, check=True)
        with open(log, "rb", buffering=0) as fh:         # an offset into stdin is where reading starts
            fh.readline()
            offset = subprocess.run([TOOL, "--summary", "--threads", "3"], stdin=fh, capture_output=True, check=True).stdout
        reports = {}
        for threads in ("1", "3"):
            reports[threads] = [subprocess.run([TOOL, fmt, "--threads", threads, log], capture_output=True, text=True,
                                               check=True).stdout for fmt in ("--summary", "--prometheus")]
        assert reports["1"] == reports["3"], "\n".join(reports["3"])
        one = reports["1"][0]
        assert "(other)" not in one and " 0 partial" not in one and "(2 not recognised)" in one, one
        lines = int(one.split("log lines")[0].split()[-1])
        assert lines == sum(1 for _ in open(log, "rb")), one
        assert f"{lines - 1}  log lines (2 not".encode() in offset, offset
        # pids past the chunks' bitmap (2^22) are recorded in their map instead: the same report
        big = os.path.join(d, "bigpids")
        with open(big, "wb") as fh:
            subprocess.run(["sed", "-E", r"s/(pid|ok|end) ([0-9]+)/\1 9000000\2/", log], stdout=fh, check=True)
        counted = [subprocess.run([TOOL, "--summary", "--threads", t, big], capture_output=True, text=True,
                                  check=True).stdout for t in ("1", "3")]
        assert counted[0] == counted[1] and counted[0] == one, counted[1]
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_filters_gzip_stdin_and_truncated_logs():
    d = tempfile.mkdtemp(prefix="mxgate-st-")
    try:
        log = ("tcpserver: pid 5 from 10.0.0.5\n"
               "qmail-smtpd: pid 5 Reject::ORIG::Bad_Mailfrom: S:10.0.0.5:unknown P:ESMTP H:h F:spam@x.test T:a@b.test '@'\n"
               "tcpserver: end 5 status 0\n"
               "qmail-smtpd: pid 6 Accept::RCPT::Rcpthosts_Rcptto: S:10.0.0.6:unknown P:ESMTP H:h F:ok@y.test T:a@b.test\n"
               "tcpserver: end 6 status 9\n"                                # started before the log: partial; killed
               "some other daemon's line\n"
               "tcpserver: pid 7 from 10.0.0.7")                            # a half line at the end of the file
        path = os.path.join(d, "log")
        with open(path, "w") as fh:
            fh.write(log)
        subprocess.run(["gzip", "-k", path], check=True)
        for args in ([path], [path + ".gz"]):
            got = [json.loads(l) for l in subprocess.run([TOOL, "--format", "json"] + args, capture_output=True,
                                                         text=True, check=True).stdout.splitlines()]
            assert [s["pid"] for s in got] == [5, 6, 7], got
            assert [s["partial"] for s in got] == [False, True, True]
            assert got[1]["signal"] == 9 and got[0]["exit"] == 0
        out = subprocess.run([TOOL, "--format", "json", "--from", "spam@"], input=log, capture_output=True, text=True).stdout
        assert [json.loads(l)["pid"] for l in out.splitlines()] == [5]
        out = subprocess.run([TOOL, "--summary", "--ip", "10.0.0.6"], input=log, capture_output=True, text=True).stdout
        assert "1  sessions (1 partial)" in out and "1 not recognised" in out, out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_follow_prints_sessions_as_they_close_through_rotation():
    d = tempfile.mkdtemp(prefix="mxgate-follow-")
    cur = os.path.join(d, "current")
    open(cur, "w").close()
    p = subprocess.Popen([TOOL, "--format", "json", "-f", cur], stdout=subprocess.PIPE, text=True)
    try:
        with open(cur, "a") as fh:
            fh.write("tcpserver: pid 11 from 10.0.0.1\ntcpserver: end 11 status 0\n")
        first = json.loads(p.stdout.readline())
        assert first["pid"] == 11 and not first["partial"]
        os.rename(cur, os.path.join(d, "@400000006563a2b10a1b2c3d.s"))   # multilog rotates
        with open(cur, "w") as fh:
            fh.write("tcpserver: pid 12 from 10.0.0.2\ntcpserver: end 12 status 256\n")
        second = json.loads(p.stdout.readline())
        assert second["pid"] == 12 and second["exit"] == 1
    finally:
        p.kill(); p.wait(); shutil.rmtree(d, ignore_errors=True)


def test_html_report_renders_in_headless_chromium():
    """the page draws in a real browser: its DOM after rendering has the
    charts and the session rows, and a screenshot is made"""
    d = tempfile.mkdtemp(prefix="mxgate-html-")
    try:
        log = "".join(f"tcpserver: pid {p} from 10.0.0.{p}\nqmail-smtpd: pid {p} Reject::SNDR::Invalid_Relay: "
                      f"S:10.0.0.{p}:unknown P:ESMTP H:h{p} F:a@b.test T:x@far.test\ntcpserver: end {p} status 0\n"
                      for p in range(1, 30))
        html = os.path.join(d, "r.html")
        subprocess.run([TOOL, "--html", html], input=log, text=True, check=True)
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                 "--disable-sync", "--disable-component-update", f"--user-data-dir={d}/profile"]
        dom = subprocess.run(["chromium"] + flags + ["--dump-dom", f"file://{html}"], capture_output=True, text=True,
                             timeout=120).stdout
        assert dom.count("<rect") >= 24 and dom.count("<tr>") >= 29 and "Invalid_Relay" in dom, dom[:500]
        png = os.path.join(d, "r.png")
        subprocess.run(["chromium"] + flags + ["--window-size=1000,1100", f"--screenshot={png}", f"file://{html}"],
                       capture_output=True, timeout=120)
        assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(png) > 10000
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_authenticated_greylisted_pop3_and_reused_pids_from_real_logs():
    """submission with AUTH (mxgate-authuser), greylisting (real postgrey),
    POP3 logins (fd 5 into the same log) and mxgate-listen, whose workers
    reuse pids by design; mxgate-sessions joins all of them exactly"""
    import base64, poplib
    from test_grey import Postgrey
    home = h.Home()
    hashed = subprocess.run([h.prog("mxgate-authuser"), "--hash"], input="pw\n", capture_output=True, text=True,
                            check=True).stdout.strip()
    home.write("users", f"alice:{hashed}::::{os.path.dirname(home.maildirs['alice'])}:Maildir\n", mode=0o600)
    pg = Postgrey(delay=60)
    srv = h.Listener(args=[h.prog("mxgate-authuser"), "/bin/true"], workers="2:2",
                     env={"MXGATE_HOME": home.dir, "SMTPAUTH": "", "AUTH_CLEARTEXT": "1", "UCSPITLS": "-",
                          "POSTGREY": f"127.0.0.1#{pg.port}", "AUTHDELAY": "0"})
    pop = h.Tcpserver([h.prog("mxgate-popup"), "pop.test", h.prog("mxgate-authuser"), h.prog("mxgate-pop3d"), "Maildir"],
                      env={"MXGATE_HOME": home.dir, "POP3DELAY": "0"}, wrapper=["sh", "-c", 'exec "$@" 5>&2', "sh"])
    try:
        for i in range(6):                                                  # 6 sessions over 2 workers
            c = h.Client(srv.port); c.reply(); c.cmd("EHLO c.test")
            if i % 2 == 0:                                                  # authenticated, relays
                c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0pw").decode())
                c.cmd("MAIL FROM:<alice@example.test>"); c.cmd("RCPT TO:<far@elsewhere.test>")
            else:                                                           # a stranger: greylisted
                c.cmd("MAIL FROM:<s@remote.test>"); c.cmd("RCPT TO:<alice@example.test>")
            c.cmd("QUIT"); c.close()
        p = poplib.POP3("127.0.0.1", pop.port, timeout=10); p.user("alice"); p.pass_("pw"); p.quit()
        h.wait_for(lambda: srv.log().count("tcpserver: end") >= 6 and pop.log().count("tcpserver: end") >= 1,
                   what="ends")
        logpath = os.path.join(home.dir, "all.log")
        with open(logpath, "w") as fh:
            fh.write(srv.log() + pop.log())
        got = [json.loads(l) for l in subprocess.run([TOOL, "--format", "json", logpath], capture_output=True,
                                                     text=True, check=True).stdout.splitlines()]
        smtp = [s for s in got if s["proto"] != "POP3"]
        assert len(smtp) == 6 and len({s["pid"] for s in smtp}) <= 2       # pids reused, sessions kept apart
        assert all(not s["partial"] for s in got)
        rows = [[e["row"] for e in s["events"]] for s in smtp]
        assert rows.count(["Accept::AUTH::plain", "Accept::AUTH::plain"]) == 3, rows
        assert rows.count(["Deferred::GREY::Grey_Listed"]) == 3, rows
        popped = [s for s in got if s["proto"] == "POP3"]
        assert len(popped) == 1 and popped[0]["events"][0]["row"] == "Accept::AUTH::User"
        assert popped[0]["events"][0]["user"] == "alice"
        summary = subprocess.run([TOOL, "--summary", logpath], capture_output=True, text=True, check=True).stdout
        assert "alice" in summary and "Deferred::GREY::Grey_Listed" in summary
    finally:
        srv.stop(); pop.stop(); pg.stop(); home.cleanup()
