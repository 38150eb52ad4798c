"""mxgate-sessions follows a message from its SMTP session to each
recipient's delivery: real sessions of mxgate-smtpd under tcpserver,
written by multilog, and mxgate-send's delivery lines in a multilog
directory of their own. The delivery lines are written here in mxgate-send's
exact layout (the escaping of log_format), stamped after the Queued lines
they name; the test with the real mxgate-send comes with it."""
import json, os, re, smtplib, subprocess
import harness as h

TOOL = h.prog("mxgate-sessions")
TAI = 4611686018427387914                      # the TAI64 label of 1970-01-01 00:00:00 UTC, as the tool reads it


def logged_server(home, logdir):
    """tcpserver | multilog t logdir, mxgate-smtpd with its embedded queue"""
    port = h.free_port()
    cmd = f"exec tcpserver -v -R -H -l0 127.0.0.1 {port} {h.prog('mxgate-smtpd')} 2>&1 | multilog t {logdir}"
    p = subprocess.Popen(["sh", "-c", cmd], env={"PATH": os.environ["PATH"], "MXGATE_HOME": home.dir},
                         start_new_session=True, stdin=subprocess.DEVNULL)
    h.wait_for(lambda: os.path.exists(f"{logdir}/current") and "status: 0/" in open(f"{logdir}/current").read(),
               what="logged tcpserver")
    return p, port


def esc(s):
    """log_format's escaping of the bytes a log field cannot hold as they are"""
    return "".join(c if 0x20 < ord(c) < 0x7f and c not in "\\'" else "\\x%02x" % ord(c) for c in s)


def tai(sec):
    return "@%016x%08x" % (TAI + sec, 0)


def iso(sec):
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(sec))


def send_line(sec, pid, row, ip, hop, proto, sender, rcpt, qp, qid, reply, tls=""):
    detail = f"qp {qp} id {qid}{' tls ' + tls if tls else ''}: {reply}"
    return (f"{tai(sec)} mxgate-send: pid {pid} {row}: S:{ip}:{hop} P:{proto} F:{esc(sender)} T:{esc(rcpt)} "
            f"'{esc(detail)}'\n")


def delivery(sec, pid, row, ip, hop, proto, sender, rcpt, qp, qid, reply, tls=""):
    """the JSON object mxgate-sessions gives for the line above"""
    return {"ts": iso(sec), "rcpt": rcpt, "from": sender, "row": row, "ip": ip, "host": hop, "proto": proto,
            "tls": tls, "qp": qp, "id": qid, "reply": reply, "pid": pid}


def run(*args, stdin=None):
    return subprocess.run([TOOL, *args], capture_output=True, text=True, check=True, input=stdin).stdout


def queued_lines(logdir):
    """(session pid, qp, second of the stamp) of each Queued line, in log order"""
    out = []
    for line in open(f"{logdir}/current"):
        m = re.match(r"@([0-9a-f]{16})[0-9a-f]{8} qmail-smtpd: pid (\d+) Accept::DATA::Queued: .* 'qp\\x20(\d+)\\x20", line)
        if m:
            out.append((int(m.group(2)), int(m.group(3)), int(m.group(1), 16) - TAI))
    return out


def test_deliveries_join_their_sessions_by_qp():
    home = h.Home()
    smtpd_log, send_log = home.path("smtpd"), home.path("send")
    os.makedirs(send_log)
    p, port = logged_server(home, smtpd_log)
    try:
        with smtplib.SMTP("127.0.0.1", port) as s:                   # A: two recipients
            s.ehlo("a.test")
            s.sendmail("a@remote.test", ["alice@example.test", "bob@example.test"], b"Subject: A\r\n\r\nx\r\n")
        with smtplib.SMTP("127.0.0.1", port) as s:                   # B: one
            s.ehlo("b.test")
            s.sendmail("b@remote.test", ["alice@example.test"], b"Subject: B\r\n\r\ny\r\n")
        h.wait_for(lambda: open(f"{smtpd_log}/current").read().count("tcpserver: end") >= 2, what="two ends")
    finally:
        os.killpg(p.pid, 15); p.wait(10)
    try:
        (pid_a, qp_a, t_a), (pid_b, qp_b, t_b) = queued_lines(smtpd_log)
        assert qp_a != qp_b
        id_a, id_b = f"{t_a}.M1P{pid_a}Q1.mx", f"{t_b}.M2P{pid_b}Q1.mx"
        # attempts out of order in the log: bob's retry is logged last; one
        # delivery of a qp no session in the log had (pid 1 is init's)
        a = [(t_a + 1, 700, "Accept::SEND::Delivered", "192.0.2.25", "mx.example.test", "ESMTPS", "a@remote.test",
              "alice@example.test", qp_a, id_a, "250 2.0.0 Ok: queued as 1", "verified"),
             (t_a + 1, 700, "Deferred::SEND::Temp_Failure", "192.0.2.25", "mx.example.test", "ESMTP", "a@remote.test",
              "bob@example.test", qp_a, id_a, "451 4.2.0 mailbox busy\n try again"),
             (t_b + 3600, 702, "Accept::SEND::Delivered", "192.0.2.26", "mx2.example.test", "ESMTPS", "a@remote.test",
              "bob@example.test", qp_a, id_a, "250 ok", "unverified")]
        b = [(t_b + 2, 701, "Reject::SEND::Perm_Failure", "2001:db8::1", "[2001:db8::1]", "SMTP", "b@remote.test",
              "alice@example.test", qp_b, id_b, "550 5.1.1 <alice@example.test>: no such user")]
        lost = [(t_a - 5, 699, "Reject::SEND::Expired", "", "unknown", "", "", "x y@gone.test", 1, "9.M9P9Q9.mx",
                 "no MX for gone.test")]
        lines = [send_line(*lost[0]), send_line(*a[0]), send_line(*a[1]), send_line(*b[0]), send_line(*a[2])]
        with open(f"{send_log}/current", "w") as fh:
            fh.writelines(lines)
        assert "\\x0a" in lines[2] and "T:x\\x20y@gone.test" in lines[0]     # one line each, escaped

        got = [json.loads(l) for l in run("--format", "json", smtpd_log, send_log).splitlines()]
        assert [s.get("pid") for s in got] == [pid_a, pid_b, None], got
        sa, sb, alone = got
        # per recipient, each attempt in time order, the final one last
        assert sa["deliveries"] == [delivery(*a[0]), delivery(*a[1]), delivery(*a[2])], sa["deliveries"]
        assert sb["deliveries"] == [delivery(*b[0])], sb["deliveries"]
        assert alone == {"kind": "deliveries", "host": "", "qp": 1, "id": "9.M9P9Q9.mx",
                         "deliveries": [delivery(*lost[0])]}, alone
        assert [e["row"] for e in sa["events"]][-1] == "Accept::DATA::Queued"

        # --qp: that session and its deliveries only, in JSON and text
        only = [json.loads(l) for l in run("--format", "json", "--qp", str(qp_b), smtpd_log, send_log).splitlines()]
        assert only == [sb], only
        text = run("--qp", str(qp_a), send_log, smtpd_log)              # the order of the logs does not matter
        assert text.count(" pid ") == 1 and f" pid {pid_a}  client 127.0.0.1:" in text.splitlines()[0], text
        want = [f"  {iso(t_a + 1)} <alice@example.test> Accept::SEND::Delivered via mx.example.test [192.0.2.25] "
                f"ESMTPS tls verified id {id_a}: 250 2.0.0 Ok: queued as 1",
                f"  {iso(t_a + 1)} <bob@example.test> Deferred::SEND::Temp_Failure via mx.example.test [192.0.2.25] "
                f"ESMTP id {id_a}: 451 4.2.0 mailbox busy\\x0a try again",
                f"  {iso(t_b + 3600)} <bob@example.test> Accept::SEND::Delivered via mx2.example.test [192.0.2.26] "
                f"ESMTPS tls unverified id {id_a}: 250 ok"]
        assert text.splitlines()[-3:] == want, text
        assert run("--qp", "1", "--format", "json", smtpd_log, send_log).splitlines() == [json.dumps(alone, separators=(",", ":"))]
        assert run("--qp", "424242", smtpd_log, send_log) == ""

        # the summary: per destination domain, counted alike from the files
        # (read twice to join) and from standard input (counted as read)
        table = ["deliveries: 2 delivered, 1 deferred, 2 bounced (1 expired)", "",
                 "deliveries by recipient domain: delivered / deferred / bounced",
                 "         2        1        1  example.test",
                 "         0        0        1  gone.test"]
        summary = run("--summary", smtpd_log, send_log)
        assert section(summary) == table, summary
        both = open(f"{smtpd_log}/current").read() + open(f"{send_log}/current").read()
        assert section(run("--summary", stdin=both)) == table
        of_a = run("--summary", "--qp", str(qp_a), smtpd_log, send_log)
        assert section(of_a) == ["deliveries: 2 delivered, 1 deferred, 0 bounced (0 expired)", "",
                                 "deliveries by recipient domain: delivered / deferred / bounced",
                                 "         2        1        0  example.test"], of_a
        assert "1  sessions (0 partial)" in of_a and "log lines (0 not recognised)" in of_a, of_a
        prom = run("--prometheus", smtpd_log, send_log)
        for outcome, n in (("delivered", 2), ("deferred", 1), ("failed", 1), ("expired", 1)):
            assert f'mxgate_deliveries_total{{outcome="{outcome}"}} {n}\n' in prom, prom
        run("--html", home.path("report.html"), smtpd_log, send_log)
        assert "<p>deliveries: 2 delivered, 1 deferred, 2 bounced (1 expired)</p>" in open(home.path("report.html")).read()

        # read once (standard input): each delivery on its own as it comes,
        # and the delivery lines never make sessions of mxgate-send's pids
        once = [json.loads(l) for l in run("--format", "json", stdin="".join(lines)).splitlines()]
        assert [o["deliveries"] for o in once] == [[delivery(*d)] for d in (lost[0], a[0], a[1], b[0], a[2])], once
        assert all(o["kind"] == "deliveries" for o in once)
    finally:
        home.cleanup()


def section(summary):
    """the summary's deliveries section, up to the next blank line after its table"""
    lines = summary.splitlines()
    if not any(l.startswith("deliveries: ") for l in lines):
        return []
    i = next(k for k, l in enumerate(lines) if l.startswith("deliveries: "))
    out = lines[i:i + 3]
    for l in lines[i + 3:]:
        if not l.strip():
            break
        out.append(l)
    return out
