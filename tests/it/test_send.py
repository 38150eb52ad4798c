"""mxgate-send delivers what mxgate accepted: a message taken by
mxgate-smtpd for a remote recipient goes to the domain's MX (found in a real
DNS server, dnsmasq) or to its control/smtproutes relay, Postfix's smtp-sink
standing as the next hop on a loopback address, port 25. Every attempt is one
exact log line; a 4xx leaves the recipient pending with its next try, a 5xx
or a null MX fails it, an entry older than control/queuelifetime expires;
SIGKILL of mxgate-send during deliveries loses nothing."""
import glob, os, shutil, signal, subprocess, tempfile, time
import harness as h
import qentry

S = "S:127.0.0.1:unknown"


class Sink:
    """smtp-sink on ip:port, each transaction a file in its directory"""

    def __init__(self, ip, port=25, options=()):
        self.dir = tempfile.mkdtemp(prefix="mxgate-sink-")
        os.chmod(self.dir, 0o777)
        self.addr = f"{ip}:{port}"
        self.proc = subprocess.Popen(["smtp-sink", "-u", "nobody", "-h", "sink.test", "-d", f"{self.dir}/%M%S."]
                                     + list(options) + [self.addr, "100"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        h.wait_for(self._up, what=f"smtp-sink on {self.addr}")

    def _up(self):
        r = subprocess.run(["nc", "-z", *self.addr.split(":")], capture_output=True)
        return r.returncode == 0

    def transactions(self):
        out = []
        for f in sorted(glob.glob(os.path.join(self.dir, "*"))):
            with open(f, "rb") as fh:
                out.append(fh.read())
        return out

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


class Send:
    """mxgate-send on home, its log in a file"""

    def __init__(self, home, dns):
        self.logpath = tempfile.mktemp(prefix="mxgate-send-log-")
        self.logfh = open(self.logpath, "wb")
        self.proc = subprocess.Popen([h.prog("mxgate-send")], stderr=self.logfh, stdout=subprocess.DEVNULL,
                                     env={"PATH": os.environ["PATH"], "MXGATE_HOME": home.dir,
                                          "DNSCACHEIP": dns.spec}, start_new_session=True)
        h.wait_for(lambda: "mxgate-send: started" in self.log(), what="mxgate-send started")

    def log(self):
        with open(self.logpath, "rb") as fh:
            return fh.read().decode("utf-8", "replace")

    def wait_line(self, text, timeout=15):
        try:
            h.wait_for(lambda: text in self.log(), timeout, what=repr(text))
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- log ---\n{self.log()[-3000:]}") from None

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        self.proc.wait(30)
        self.logfh.close()


def submit(port, rcpts, body):
    """one message through mxgate-smtpd; the qp of its Queued line"""
    c = h.Client(port)
    c.reply()
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<alice@example.test>")[0] == 250
    for r in rcpts:
        assert c.cmd(f"RCPT TO:<{r}>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    code, lines = c.cmd(body.replace("\n", "\r\n") + ".")
    assert code == 250, lines
    c.cmd("QUIT")
    c.close()
    return int(lines[0].split()[-1])


def entries(home):
    """the entries in queue/todo now (one removed while they are read is left out)"""
    todo = home.path("queue", "todo")
    out = {}
    for f in os.listdir(todo) if os.path.isdir(todo) else []:
        try:
            out[f] = qentry.read(os.path.join(todo, f))
        except FileNotFoundError:
            pass
    return out


class World:
    """dnsmasq for the destinations, mxgate-smtpd taking mail from a relay client"""

    def __init__(self, records, control=None):
        self.home = h.Home()
        for name, text in (control or {}).items():
            self.home.write(name, text)
        self.dns = h.Dnsmasq(records)
        self.smtpd = h.Tcpserver([h.prog("mxgate-smtpd")], env={"MXGATE_HOME": self.home.dir, "RELAYCLIENT": ""})

    def stop(self):
        self.smtpd.stop()
        self.dns.stop()
        self.home.cleanup()


def test_delivered_to_the_mx_with_its_log_line():
    w = World(["--mx-host=dest.test,mx.dest.test,10", "--host-record=mx.dest.test,127.0.0.50"])
    sink = Sink("127.0.0.50")
    send = None
    try:
        qp = submit(w.smtpd.port, ["bob@dest.test", "carol@dest.test"], "Subject: out\n\nto the MX\n")
        (eid, e), = entries(w.home).items()
        assert e.pending() == ["bob@dest.test", "carol@dest.test"]
        send = Send(w.home, w.dns)
        for r in ("bob@dest.test", "carol@dest.test"):
            send.wait_line(f"Accept::SEND::Delivered: S:127.0.0.50:mx.dest.test P:ESMTP F:alice@example.test T:{r} "
                           f"'qp\\x20{qp}\\x20id\\x20{eid}:\\x20250\\x202.0.0\\x20Ok'\n")
        h.wait_for(lambda: entries(w.home) == {}, what="the entry removed")
        # mxgate-sessions follows the message from its session to both deliveries
        import json
        logs = tempfile.mkdtemp(prefix="mxgate-send-logs-")
        open(os.path.join(logs, "smtpd"), "w").write(w.smtpd.log())
        open(os.path.join(logs, "send"), "w").write(send.log())
        r = subprocess.run([h.prog("mxgate-sessions"), "--format", "json", "--qp", str(qp),
                            os.path.join(logs, "smtpd"), os.path.join(logs, "send")], capture_output=True, text=True)
        shutil.rmtree(logs, ignore_errors=True)
        assert r.returncode == 0, r.stderr
        sess = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
        assert len(sess) == 1, r.stdout
        got = {(d["rcpt"], d["row"], d["host"], d["ip"], d["proto"], d["id"]) for d in sess[0]["deliveries"]}
        assert got == {(rc, "Accept::SEND::Delivered", "mx.dest.test", "127.0.0.50", "ESMTP", eid)
                       for rc in ("bob@dest.test", "carol@dest.test")}, sess[0]["deliveries"]
        t, = sink.transactions()                          # one transaction for both
        assert b"X-Rcpt-Args: <bob@dest.test>" in t and b"X-Rcpt-Args: <carol@dest.test>" in t, t[:400]
        assert b"\nSubject: out\n\nto the MX\n" in t, t[-200:]     # smtp-sink stores LF line ends
    finally:
        if send:
            send.stop()
        sink.stop(); w.stop()


def test_smtproutes_relay_and_port():
    w = World([], control={"smtproutes": "routed.test:[127.0.0.51]:2525\n"})
    sink = Sink("127.0.0.51", 2525)
    send = None
    try:
        submit(w.smtpd.port, ["x@routed.test"], "Subject: routed\n\nvia the route\n")
        send = Send(w.home, w.dns)
        send.wait_line("Accept::SEND::Delivered: S:127.0.0.51:[127.0.0.51] P:ESMTP F:alice@example.test T:x@routed.test")
        assert len(sink.transactions()) == 1
    finally:
        if send:
            send.stop()
        sink.stop(); w.stop()


def test_4xx_is_retried_later_and_5xx_fails_for_good():
    w = World(["--mx-host=dest.test,mx.dest.test,10", "--host-record=mx.dest.test,127.0.0.52"])
    sink = Sink("127.0.0.52", options=["-r", "RCPT"])          # 4xx to every RCPT
    send = None
    try:
        submit(w.smtpd.port, ["bob@dest.test"], "Subject: later\n\nplease\n")
        send = Send(w.home, w.dns)
        send.wait_line("Deferred::SEND::Temp_Failure: S:127.0.0.52:mx.dest.test P:ESMTP F:alice@example.test "
                       "T:bob@dest.test")
        (eid, e), = entries(w.home).items()
        state, attempts, next_try, reply = e.states[0]
        assert state == "p" and attempts == 1 and reply.startswith("4"), e.states
        assert 250 < next_try - time.time() <= 300                 # the first retry after five minutes
        send.stop()
        send = None
        sink.stop()
        sink = Sink("127.0.0.52", options=["-f", "RCPT"])           # now 5xx
        os.remove(os.path.join(w.home.path("queue", "todo"), eid))  # a fresh message, due at once
        submit(w.smtpd.port, ["bob@dest.test"], "Subject: never\n\nno\n")
        send = Send(w.home, w.dns)
        send.wait_line("Reject::SEND::Perm_Failure: S:127.0.0.52:mx.dest.test P:ESMTP F:alice@example.test "
                       "T:bob@dest.test")
    finally:
        if send:
            send.stop()
        sink.stop(); w.stop()


def test_null_mx_and_missing_domain_fail_at_once():
    w = World(["--mx-host=nomail.test,.,0"])
    send = None
    try:
        submit(w.smtpd.port, ["a@nomail.test", "b@nowhere.test"], "Subject: x\n\ny\n")
        send = Send(w.home, w.dns)
        send.wait_line("Reject::SEND::Perm_Failure: S::unknown P: F:alice@example.test T:a@nomail.test")
        send.wait_line("556\\x205.1.10\\x20nomail.test\\x20publishes\\x20a\\x20null\\x20MX")
        send.wait_line("Reject::SEND::Perm_Failure: S::unknown P: F:alice@example.test T:b@nowhere.test")
    finally:
        if send:
            send.stop()
        w.stop()


def test_expired_after_the_queue_lifetime():
    w = World(["--mx-host=dest.test,mx.dest.test,10", "--host-record=mx.dest.test,127.0.0.53"],
              control={"queuelifetime": "0\n"})
    sink = Sink("127.0.0.53", options=["-r", "RCPT"])
    send = None
    try:
        submit(w.smtpd.port, ["bob@dest.test"], "Subject: old\n\nold\n")
        send = Send(w.home, w.dns)
        send.wait_line("Reject::SEND::Expired: S:127.0.0.53:mx.dest.test P:ESMTP F:alice@example.test T:bob@dest.test")
        send.wait_line("(given\\x20up\\x20after\\x201\\x20attempts")
    finally:
        if send:
            send.stop()
        sink.stop(); w.stop()


def test_sigkill_during_deliveries_loses_nothing():
    """200 queued messages; mxgate-send (runner and workers) killed with
    SIGKILL again and again a few milliseconds after it starts, then left
    to finish: every message reached the next hop at least once"""
    import random
    w = World(["--mx-host=dest.test,mx.dest.test,10", "--host-record=mx.dest.test,127.0.0.54"])
    sink = Sink("127.0.0.54")
    send = None
    rnd = random.Random(5)
    try:
        n = 200
        for i in range(n):
            submit(w.smtpd.port, [f"u{i}@dest.test"], f"Subject: m{i}\n\nmessage {i}\n")
        kills = 0
        while entries(w.home) and kills < 20:
            send = Send(w.home, w.dns)
            time.sleep(rnd.uniform(0.002, 0.02))
            # the runner and its workers (its process group: tests run side by
            # side), in the middle of their deliveries
            os.killpg(send.proc.pid, signal.SIGKILL)
            send.proc.wait(10)
            send.logfh.close()
            kills += 1
        send = Send(w.home, w.dns)
        h.wait_for(lambda: entries(w.home) == {}, timeout=60, what="every entry delivered")
        counts = {}
        for t in sink.transactions():
            for i in range(n):
                if f"\nSubject: m{i}\n".encode() in t:
                    counts[i] = counts.get(i, 0) + 1
        assert set(counts) == set(range(n)), sorted(set(range(n)) - set(counts))   # at least once each
        assert kills >= 3, kills
        print(f"{n} messages, {kills} SIGKILLs of mxgate-send while entries were left, every one delivered; "
              f"{sum(counts.values()) - n} delivered twice (killed between the 250 and the state record)")
    finally:
        if send:
            send.stop()
        sink.stop(); w.stop()


def test_connections_to_one_destination_are_limited():
    """control/concurrencydestination 2: with 20 workers and 8 messages for
    one slow destination, never more than 2 connections to it at once (as
    ss sees them), and every message delivered"""
    w = World(["--mx-host=dest.test,mx.dest.test,10", "--host-record=mx.dest.test,127.0.0.55"],
              control={"concurrencydestination": "2\n"})
    sink = Sink("127.0.0.55", options=["-w", "1"])              # a second before each DATA reply
    send = None
    try:
        for i in range(8):
            submit(w.smtpd.port, [f"u{i}@dest.test"], f"Subject: s{i}\n\nslow {i}\n")
        send = Send(w.home, w.dns)
        most = 0
        deadline = time.time() + 120
        while entries(w.home) and time.time() < deadline:
            r = subprocess.run(["ss", "-Htn", "state", "established", "dst", "127.0.0.55:25"],
                               capture_output=True, text=True)
            most = max(most, len(r.stdout.splitlines()))
            time.sleep(0.05)
        assert entries(w.home) == {}, send.log()[-3000:]
        assert len(sink.transactions()) == 8
        assert 1 <= most <= 2, most
        print(f"8 messages to one destination, at most {most} connections at once")
    finally:
        if send:
            send.stop()
        sink.stop(); w.stop()


def test_a_5xx_sends_one_bounce_to_the_sender():
    """two recipients refused with 5xx: one RFC 3464 bounce to the sender,
    queued and delivered by mxgate-send itself (here into alice's Maildir),
    naming both, with the next hop's reply as the Diagnostic-Code"""
    import email
    w = World(["--mx-host=dest.test,mx.dest.test,10", "--host-record=mx.dest.test,127.0.0.56"])
    sink = Sink("127.0.0.56", options=["-f", "RCPT"])
    send = None
    try:
        submit(w.smtpd.port, ["bob@dest.test", "carol@dest.test"], "Subject: refused\n\nnobody wants it\n")
        send = Send(w.home, w.dns)
        send.wait_line("bounce queued as ")
        h.wait_for(lambda: len(w.home.delivered("alice")) == 1, timeout=20, what="the bounce in alice's Maildir")
        msg = email.message_from_bytes(w.home.delivered("alice")[0])
        assert msg["Return-Path"] == "<>" and msg.get_content_type() == "multipart/report"
        assert msg.get_param("report-type") == "delivery-status"
        status = [p for p in msg.walk() if p.get_content_type() == "message/delivery-status"][0]
        blocks = status.get_payload()
        rcpts = {b["Final-Recipient"]: b for b in blocks[1:]}
        assert set(rcpts) == {"rfc822; bob@dest.test", "rfc822; carol@dest.test"}, list(rcpts)
        for b in rcpts.values():
            assert b["Action"] == "failed" and b["Status"].startswith("5."), dict(b)
            assert b["Diagnostic-Code"].startswith("smtp; 5"), dict(b)
        send.wait_line("Accept::SEND::Delivered: S::localhost P:MAILDIR F: T:alice@example.test")
        assert entries(w.home) == {}
    finally:
        if send:
            send.stop()
        sink.stop(); w.stop()


def test_an_entry_of_the_earlier_format_is_converted_and_delivered():
    """todo/ID as an envelope and mess/ID as the message (the format before
    one-file entries, as an upgraded site's queue may hold): mxgate-send
    rewrites it in place and delivers it, never sets it aside"""
    w = World(["--mx-host=dest.test,mx.dest.test,10", "--host-record=mx.dest.test,127.0.0.57"])
    sink = Sink("127.0.0.57")
    send = None
    try:
        for d in ("tmp", "todo", "mess"):
            os.makedirs(w.home.path("queue", d), exist_ok=True)
        name = "1700000000.M1P4242Q1.host"
        with open(w.home.path("queue", "mess", name), "wb") as fh:
            fh.write(b"Subject: old\n\nfrom before the upgrade\n")
        with open(w.home.path("queue", "todo", name), "wb") as fh:
            fh.write(b"Fs@r.test\0Tbob@dest.test\0\0")
        send = Send(w.home, w.dns)
        send.wait_line(f"Accept::SEND::Delivered: S:127.0.0.57:mx.dest.test P:ESMTP F:s@r.test T:bob@dest.test "
                       f"'qp\\x204242\\x20id\\x20{name}:\\x20250")
        h.wait_for(lambda: os.listdir(w.home.path("queue", "todo")) == [], what="the entry removed")
        assert os.listdir(w.home.path("queue", "mess")) == []
        assert not os.path.exists(w.home.path("queue", "bad"))
        t, = sink.transactions()
        assert b"\nSubject: old\n\nfrom before the upgrade\n" in t, t[-200:]
    finally:
        if send:
            send.stop()
        sink.stop(); w.stop()


def test_a_dead_destination_holds_the_others_back_no_more_than_its_slots():
    """a destination that takes the connection and never says a word (a
    tarpit), 6 messages for it, 6 for a live one, 3 workers, 2 connections
    per destination: the live destination's messages all arrive while the
    tarpit still holds its two, and the tarpit is never given a third"""
    import socket, threading
    w = World(["--mx-host=dead.test,mx.dead.test,10", "--host-record=mx.dead.test,127.0.0.58",
               "--mx-host=live.test,mx.live.test,10", "--host-record=mx.live.test,127.0.0.59"],
              control={"concurrencyremote": "3\n", "concurrencydestination": "2\n"})
    tarpit = socket.socket()
    tarpit.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tarpit.bind(("127.0.0.58", 25))
    tarpit.listen(16)
    held = []
    stop = threading.Event()

    def hold():
        tarpit.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(tarpit.accept()[0])          # kept open, never written to
            except socket.timeout:
                pass
    t = threading.Thread(target=hold, daemon=True)
    t.start()
    sink = Sink("127.0.0.59")
    send = None
    try:
        for i in range(6):
            submit(w.smtpd.port, [f"d{i}@dead.test"], f"Subject: d{i}\n\nto the tarpit\n")
            submit(w.smtpd.port, [f"l{i}@live.test"], f"Subject: l{i}\n\nto the live one\n")
        send = Send(w.home, w.dns)
        for i in range(6):                               # (smtp-sink keeps one file per connection: the log counts)
            send.wait_line(f"Accept::SEND::Delivered: S:127.0.0.59:mx.live.test P:ESMTP F:alice@example.test "
                           f"T:l{i}@live.test", timeout=90)
        assert len(held) <= 2, len(held)
        pending = sorted(r for e in entries(w.home).values() for r in e.pending())
        assert pending == [f"d{i}@dead.test" for i in range(6)], pending
        print(f"6 messages delivered to the live destination while the tarpit held {len(held)} connections")
        # TERM while two workers wait on the tarpit: they are stopped after the grace period
        send.stop()
        log, send = send.log(), None
        assert "mxgate-send: 2 worker(s) still delivering after 10 s, stopped; their entries are delivered again " \
               "at the next start\nmxgate-send: stopped\n" in log, log[-2000:]
        assert sorted(r for e in entries(w.home).values() for r in e.pending()) == pending
    finally:
        stop.set()
        t.join()
        if send:
            send.stop()
        for c in held:
            c.close()
        tarpit.close()
        sink.stop(); w.stop()


def test_delay_warning_after_bouncewarn_once():
    """control/bouncewarn 1: a recipient still deferred a second after the
    message was queued gets its sender one RFC 3464 report with Action:
    delayed (parsed field by field), a "W" record in the entry, and no
    second warning at the next attempt"""
    import email
    w = World(["--mx-host=dest.test,mx.dest.test,10", "--host-record=mx.dest.test,127.0.0.60"],
              control={"bouncewarn": "1\n"})
    sink = Sink("127.0.0.60", options=["-r", "RCPT"])          # 4xx to every RCPT
    send = None
    try:
        submit(w.smtpd.port, ["bob@dest.test"], "Subject: slow going\n\nwaiting\n")
        (eid, e), = entries(w.home).items()
        time.sleep(1.5)
        send = Send(w.home, w.dns)
        send.wait_line(f"mxgate-send: {eid}: 1 recipient(s) still pending after ")
        h.wait_for(lambda: len(w.home.delivered("alice")) == 1, timeout=20, what="the warning in alice's Maildir")
        msg = email.message_from_bytes(w.home.delivered("alice")[0])
        assert msg["Return-Path"] == "<>" and msg.get_content_type() == "multipart/report"
        assert msg.get_param("report-type") == "delivery-status"
        status = [p for p in msg.walk() if p.get_content_type() == "message/delivery-status"][0]
        blocks = status.get_payload()
        assert len(blocks) == 2, blocks
        b = blocks[1]
        assert b["Final-Recipient"] == "rfc822; bob@dest.test" and b["Action"] == "delayed", dict(b)
        assert b["Status"].startswith("4."), dict(b)
        assert b["Will-Retry-Until"], dict(b)
        assert b["Diagnostic-Code"].startswith("smtp; 4"), dict(b)
        e = entries(w.home)[eid]
        assert e.warned_at and e.pending() == ["bob@dest.test"], e.states
        # the next attempt (now, by --retry) is deferred again, and warns no more
        r = subprocess.run([h.prog("mxgate-queue"), "--retry", eid], env={"MXGATE_HOME": w.home.dir},
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        h.wait_for(lambda: send.log().count("Deferred::SEND::Temp_Failure: S:127.0.0.60:mx.dest.test") == 2,
                   timeout=20, what="a second attempt")
        time.sleep(1)
        assert send.log().count("delay warning queued as") == 1, send.log()[-2000:]
        assert len(w.home.delivered("alice")) == 1
    finally:
        if send:
            send.stop()
        sink.stop(); w.stop()


def test_the_next_mx_after_a_refused_connection_or_a_5xx_greeting():
    """three MX records: the first refuses the connection, the second
    greets with 554, the third takes the message; s/qmail's qmail-remote
    also goes on to the next MX after a 5xx at connection time"""
    import socket, threading
    w = World(["--mx-host=dest.test,mx1.dest.test,10", "--host-record=mx1.dest.test,127.0.0.64",
               "--mx-host=dest.test,mx2.dest.test,20", "--host-record=mx2.dest.test,127.0.0.65",
               "--mx-host=dest.test,mx3.dest.test,30", "--host-record=mx3.dest.test,127.0.0.66"])
    greeter = socket.socket()
    greeter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    greeter.bind(("127.0.0.65", 25))
    greeter.listen(8)
    stop = threading.Event()
    greeted = []

    def serve():
        greeter.settimeout(0.2)
        while not stop.is_set():
            try:
                c = greeter.accept()[0]
            except socket.timeout:
                continue
            c.sendall(b"554 5.3.2 mx2 takes no mail today\r\n")
            greeted.append(1)
            c.close()
    t = threading.Thread(target=serve, daemon=True)            # (nothing listens on mx1's address)
    t.start()
    sink = Sink("127.0.0.66")
    send = None
    try:
        qp = submit(w.smtpd.port, ["bob@dest.test"], "Subject: third time\n\nlucky\n")
        (eid, _), = entries(w.home).items()
        send = Send(w.home, w.dns)
        send.wait_line(f"Accept::SEND::Delivered: S:127.0.0.66:mx3.dest.test P:ESMTP F:alice@example.test "
                       f"T:bob@dest.test 'qp\\x20{qp}\\x20id\\x20{eid}:\\x20250\\x202.0.0\\x20Ok'")
        assert greeted == [1]
        assert "Deferred::SEND" not in send.log() and "Reject::SEND" not in send.log()
    finally:
        stop.set()
        t.join()
        if send:
            send.stop()
        greeter.close()
        sink.stop(); w.stop()


def test_ipv6_mx_and_the_domains_own_address_without_mx():
    """v6.test's MX has only an AAAA record (::1): delivered over IPv6;
    bare.test has no MX, only an A record: delivered to that address
    (RFC 5321 5.1)"""
    w = World(["--mx-host=v6.test,mx.v6.test,10", "--host-record=mx.v6.test,::1",
               "--host-record=bare.test,127.0.0.67"])
    sink6 = tempfile.mkdtemp(prefix="mxgate-sink-")
    os.chmod(sink6, 0o777)
    p6 = subprocess.Popen(["smtp-sink", "-u", "nobody", "-d", f"{sink6}/%M%S.", "[::1]:25", "100"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    h.wait_for(lambda: subprocess.run(["nc", "-z", "::1", "25"], capture_output=True).returncode == 0,
               what="smtp-sink on [::1]:25")
    sink = Sink("127.0.0.67")
    send = None
    try:
        qp = submit(w.smtpd.port, ["bob@v6.test", "carol@bare.test"], "Subject: both ways\n\nv4 and v6\n")
        (eid, _), = entries(w.home).items()
        send = Send(w.home, w.dns)
        send.wait_line(f"Accept::SEND::Delivered: S:::1:mx.v6.test P:ESMTP F:alice@example.test T:bob@v6.test "
                       f"'qp\\x20{qp}\\x20id\\x20{eid}:\\x20250\\x202.0.0\\x20Ok'")
        send.wait_line(f"Accept::SEND::Delivered: S:127.0.0.67:bare.test P:ESMTP F:alice@example.test "
                       f"T:carol@bare.test 'qp\\x20{qp}\\x20id\\x20{eid}:\\x20250\\x202.0.0\\x20Ok'")
        h.wait_for(lambda: os.listdir(sink6), what="the message in the IPv6 sink")
    finally:
        if send:
            send.stop()
        p6.terminate(); p6.wait(5)
        shutil.rmtree(sink6, ignore_errors=True)
        sink.stop(); w.stop()
