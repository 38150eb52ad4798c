"""mxgate-queue's administrator options and bounces (mxgate-queue(8): LIST,
--retry, --bounce, --remove, BOUNCES): entries made by bin/mxgate-queue
itself, relay recipients staying queued; the runner's state records
written as the entry format documents them; the DSN parsed with Python's
email package, field by field; read back with tests/it/qentry.py."""
import email, email.policy, email.utils, json, os, re, subprocess, tempfile, time, shutil
import harness as h
import qentry

QUEUE = h.prog("mxgate-queue")
MSG = b"Received: from client.test\n\tby mx.example.test\nSubject: the report\nFrom: S <s@remote.test>\n" \
      b"Message-ID: <orig.1@remote.test>\n\nthe confidential body\nsecond line\n"


def enqueue(home, sender, rcpts, msg=MSG):
    """a message queued by mxgate-queue (message on fd 0, envelope on fd 1); its id"""
    before = set(os.listdir(home.path("queue", "todo"))) if os.path.isdir(home.path("queue", "todo")) else set()
    env = b"F" + sender.encode() + b"\0" + b"".join(b"T" + r.encode() + b"\0" for r in rcpts) + b"\0"
    mr, mw = os.pipe()
    er, ew = os.pipe()
    p = subprocess.Popen([QUEUE], stdin=mr, stdout=er, stderr=subprocess.PIPE,
                         env={"PATH": os.environ["PATH"], "MXGATE_HOME": home.dir})
    os.close(mr)
    os.close(er)
    os.write(mw, msg)
    os.close(mw)
    os.write(ew, env)
    os.close(ew)
    assert p.wait(30) == 0, p.stderr.read()
    p.stderr.close()
    new = set(os.listdir(home.path("queue", "todo"))) - before
    assert len(new) == 1, new
    return new.pop()


def queue(home, *args, env=None):
    e = {"PATH": os.environ["PATH"], "MXGATE_HOME": home.dir}
    e.update(env or {})
    return subprocess.run([QUEUE, *args], env=e, capture_output=True, timeout=60)


def entry_path(home, qid):
    return home.path("queue", "todo", qid)


def add_record(home, qid, line):
    """a state record as the queue runner appends it (one write, in append mode)"""
    fd = os.open(entry_path(home, qid), os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, line + b"\n")
    finally:
        os.close(fd)


def commit_time(home, qid):
    with open(entry_path(home, qid), "rb") as fh:
        return int(fh.read(64).split()[4])


def todo(home):
    return sorted(os.listdir(home.path("queue", "todo")))


def test_list_text_and_json_exact():
    home = h.Home()
    try:
        a = enqueue(home, "s@remote.test", ["alice@example.test", "far@elsewhere.test", "j\u00f6rg@elsewhere.test"])
        # the runner's view: one try of far@ failed for now; a reply with a quote and bytes that are not UTF-8
        add_record(home, a, b"S 1 p 2 1900000000 451 4.4.1 \"refused\" by 192.0.2.1 \xff\xfe")
        b = enqueue(home, "", ["x@elsewhere.test"], msg=b"Subject: b\n\nbody\n")
        assert a < b
        r = queue(home, "--list")
        assert r.returncode == 0 and r.stderr == b"", r
        now = time.time()
        lines = r.stdout.split(b"\n")
        assert lines[-1] == b"" and len(lines) == 3, r.stdout
        ages = [int(m) for m in re.findall(rb" age=(\d+)s ", r.stdout)]
        for age, qid in zip(ages, (a, b)):
            assert 0 <= now - commit_time(home, qid) - age <= 2, (age, now, commit_time(home, qid))
        assert lines[0] == (f"{a} age={ages[0]}s size={len(MSG)} from=<s@remote.test> "
                            "rcpt=<alice@example.test> state=d attempts=1 reply=\"delivered to a Maildir\" "
                            "rcpt=<far@elsewhere.test> state=p attempts=2 ").encode() + \
            b"reply=\"451 4.4.1 \\\"refused\\\" by 192.0.2.1 \xff\xfe\" " + \
            "rcpt=<j\u00f6rg@elsewhere.test> state=p attempts=0 reply=\"\"".encode()
        assert lines[1] == (f"{b} age={ages[1]}s size=17 from=<> rcpt=<x@elsewhere.test> state=p attempts=0 "
                            "reply=\"\"").encode()

        r = queue(home, "--list", "--json")
        assert r.returncode == 0 and r.stderr == b"", r
        rows = [json.loads(l) for l in r.stdout.decode("utf-8").splitlines()]   # JSON lines, valid UTF-8
        assert len(rows) == 2
        for row in rows:
            assert 0 <= now - row["time"] - row["age"] <= 2
            del row["age"]
        assert rows[0] == {
            "id": a, "time": commit_time(home, a), "size": len(MSG), "sender": "s@remote.test",
            "recipients": [
                {"address": "alice@example.test", "state": "done", "attempts": 1, "next_try": 0,
                 "reply": "delivered to a Maildir"},
                {"address": "far@elsewhere.test", "state": "pending", "attempts": 2, "next_try": 1900000000,
                 "reply": "451 4.4.1 \"refused\" by 192.0.2.1 \u00ff\u00fe"},
                {"address": "j\u00f6rg@elsewhere.test", "state": "pending", "attempts": 0, "next_try": 0,
                 "reply": ""}]}
        assert rows[1] == {"id": b, "time": commit_time(home, b), "size": 17, "sender": "",
                           "recipients": [{"address": "x@elsewhere.test", "state": "pending", "attempts": 0,
                                           "next_try": 0, "reply": ""}]}
    finally:
        home.cleanup()


def test_list_empty_and_unreadable_entries():
    home = h.Home()
    try:
        r = queue(home, "--list")
        assert (r.returncode, r.stdout, r.stderr) == (0, b"", b""), r
        qid = enqueue(home, "s@remote.test", ["far@elsewhere.test"])
        with open(entry_path(home, qid), "r+b") as fh:       # one byte of the message changed: not whole
            fh.seek(70)
            fh.write(b"X")
        r = queue(home, "--list")
        assert (r.returncode, r.stdout) == (0, f"{qid} unreadable=\"not whole\"\n".encode()), r
        r = queue(home, "--list", "--json")
        assert json.loads(r.stdout) == {"id": qid, "unreadable": "not whole"}
        r = queue(home, "--bounce", qid)                     # nobody to bounce from a broken entry
        assert r.returncode == 111 and b"not whole" in r.stderr, r
        assert todo(home) == [qid]
        r = queue(home, "--remove", qid)                     # but the administrator may remove it
        assert r.returncode == 0, r
        assert r.stderr == f"mxgate-queue: {qid}: removed by the administrator, no bounce " \
                           "(it was not a whole entry)\n".encode()
        assert todo(home) == []
    finally:
        home.cleanup()


def test_retry_makes_pending_recipients_due_now():
    home = h.Home()
    try:
        qid = enqueue(home, "s@remote.test", ["alice@example.test", "far@elsewhere.test", "near@elsewhere.test"])
        add_record(home, qid, b"S 1 p 3 1900000000 451 4.4.1 connection refused")
        before = qentry.read(entry_path(home, qid)).records
        r = queue(home, "--retry", qid)
        assert r.returncode == 0, r
        assert r.stderr == f"mxgate-queue: {qid}: 2 pending recipient(s) due now\n".encode()
        e = qentry.read(entry_path(home, qid))
        # records appended, the done one untouched; attempts and last reply kept
        assert e.records == before + b"S 1 p 3 0 451 4.4.1 connection refused\nS 2 p 0 0 \n"
        assert e.states == {0: ("d", 1, 0, "delivered to a Maildir"), 1: ("p", 3, 0, "451 4.4.1 connection refused"),
                            2: ("p", 0, 0, "")}
    finally:
        home.cleanup()


def test_remove_and_unknown_ids():
    home = h.Home()
    try:
        qid = enqueue(home, "s@remote.test", ["far@elsewhere.test", "near@elsewhere.test"])
        r = queue(home, "--remove", qid)
        assert r.returncode == 0, r
        assert r.stderr == f"mxgate-queue: {qid}: removed by the administrator, no bounce; " \
                           "2 recipient(s) were pending\n".encode()
        assert todo(home) == []                              # and no bounce
        for opt in ("--remove", "--retry", "--bounce"):
            for bad in (qid, "../todo", ".", "", "nope/../x"):
                r = queue(home, opt, bad)
                assert r.returncode == 100, (opt, bad, r)
                assert r.stderr == f"mxgate-queue: {bad}: no such queue entry\n".encode(), r
        for argv in (["--retry"], ["--remove", qid, "more"], ["--list", "--xml"], ["--bounce"]):
            r = queue(home, *argv)
            assert r.returncode == 81 and r.stderr.startswith(b"usage: mxgate-queue"), (argv, r)
    finally:
        home.cleanup()


def parse_dsn(message):
    return email.message_from_bytes(message, policy=email.policy.compat32)


def test_bounce_by_the_administrator_is_an_rfc3464_dsn():
    home = h.Home()
    try:
        qid = enqueue(home, "s@remote.test", ["alice@example.test", "far@elsewhere.test", "near@elsewhere.test"])
        add_record(home, qid, b"S 1 p 1 1900000000 451 4.4.1 connection refused by 192.0.2.1")
        arrival = commit_time(home, qid)
        r = queue(home, "--bounce", qid)
        assert r.returncode == 0, r
        m = re.fullmatch(rf"mxgate-queue: {re.escape(qid)}: 2 recipient\(s\) bounced by the administrator, "
                         r"bounce (\S+) queued; entry removed\n", r.stderr.decode())
        assert m, r.stderr
        dsn_id = m.group(1)
        assert todo(home) == [dsn_id]                        # the original is gone, the bounce queued
        e = qentry.read(entry_path(home, dsn_id))
        assert e.sender == "" and e.rcpts == ["s@remote.test"] and e.pending() == ["s@remote.test"]

        msg = parse_dsn(e.message)
        assert msg["From"] == "Mail Delivery System <MAILER-DAEMON@mx.example.test>"
        assert msg["To"] == "<s@remote.test>"
        assert msg["Auto-Submitted"] == "auto-replied"
        assert msg["Subject"]
        assert msg["Message-ID"] == f"<{dsn_id}@mx.example.test>"
        assert abs(email.utils.parsedate_to_datetime(msg["Date"]).timestamp() - time.time()) < 60
        assert msg["MIME-Version"] == "1.0"
        assert msg.get_content_type() == "multipart/report"
        assert msg.get_param("report-type") == "delivery-status"
        parts = msg.get_payload()
        assert [p.get_content_type() for p in parts] == ["text/plain", "message/delivery-status",
                                                         "text/rfc822-headers"]
        assert not msg.defects and all(not p.defects for p in parts)

        human = parts[0].get_payload()
        assert "<far@elsewhere.test>:\n    bounced by the administrator.\n" \
               "    The last attempt said: 451 4.4.1 connection refused by 192.0.2.1\n" in human, human
        assert "<near@elsewhere.test>:\n    bounced by the administrator.\n\n" in human, human
        assert "alice" not in human                          # delivered: not reported

        blocks = parts[1].get_payload()                      # per-message block, then one per recipient
        assert len(blocks) == 3, blocks
        assert dict(blocks[0].items()) == {"Reporting-MTA": "dns; mx.example.test",
                                           "Arrival-Date": blocks[0]["Arrival-Date"]}
        assert email.utils.parsedate_to_datetime(blocks[0]["Arrival-Date"]).timestamp() == arrival
        far, near = dict(blocks[1].items()), dict(blocks[2].items())
        last = far.pop("Last-Attempt-Date")
        assert abs(email.utils.parsedate_to_datetime(last).timestamp() - time.time()) < 60
        assert far == {"Final-Recipient": "rfc822; far@elsewhere.test", "Action": "failed", "Status": "5.0.0",
                       "Diagnostic-Code": "smtp; 451 4.4.1 connection refused by 192.0.2.1"}
        assert near == {"Final-Recipient": "rfc822; near@elsewhere.test", "Action": "failed", "Status": "5.0.0"}

        headers = parts[2].get_payload()
        assert headers == MSG.split(b"\n\n")[0].decode() + "\n", headers
        assert b"confidential body" not in e.message          # never the body
    finally:
        home.cleanup()


def test_bounce_to_a_local_sender_is_delivered_by_flush():
    home = h.Home()
    try:
        qid = enqueue(home, "bob@example.test", ["far@elsewhere.test"])
        assert queue(home, "--bounce", qid).returncode == 0
        (dsn_id,) = todo(home)
        r = queue(home, "--flush")
        assert r.returncode == 0, r
        assert todo(home) == []
        (got,) = home.delivered("bob")
        assert got.startswith(b"Return-Path: <>\nDelivered-To: bob@example.test\nFrom: Mail Delivery System "
                              b"<MAILER-DAEMON@mx.example.test>\nTo: <bob@example.test>\n"), got
        assert b"\nFinal-Recipient: rfc822; far@elsewhere.test\nAction: failed\nStatus: 5.0.0\n" in got
    finally:
        home.cleanup()


def recording_relay():
    d = tempfile.mkdtemp(prefix="mxgate-relay-")
    path = os.path.join(d, "relay")
    with open(path, "w") as fh:
        fh.write(f'#!/bin/sh\necho "$@" >> {d}/args\ncat >> {d}/msg\nexit 0\n')
    os.chmod(path, 0o755)
    return d, path


def test_double_bounce_goes_to_the_postmaster_and_never_bounces_again():
    home = h.Home()
    try:
        # a bounce (null sender) that cannot be delivered
        qid = enqueue(home, "", ["gone@elsewhere.test"], msg=b"From: MAILER-DAEMON@far.test\nSubject: failure\n\nx\n")
        r = queue(home, "--bounce", qid)
        assert r.returncode == 0, r
        assert r.stderr.decode().endswith(" queued (a double bounce); entry removed\n"), r.stderr
        (dbl,) = todo(home)
        e = qentry.read(entry_path(home, dbl))
        assert e.sender == "#@[]" and e.rcpts == ["postmaster@mx.example.test"]     # control/me, qmail's default
        msg = parse_dsn(e.message)
        assert msg["To"] == "<postmaster@mx.example.test>"
        assert msg.get_content_type() == "multipart/report"
        blocks = msg.get_payload()[1].get_payload()
        assert blocks[1]["Final-Recipient"] == "rfc822; gone@elsewhere.test"
        assert msg.get_payload()[2].get_payload() == "From: MAILER-DAEMON@far.test\nSubject: failure\n"

        # the double bounce fails too: nothing more, no triple bounce
        r = queue(home, "--bounce", dbl)
        assert r.returncode == 0, r
        assert r.stderr == f"mxgate-queue: {dbl}: 1 recipient(s) bounced by the administrator, no bounce sent " \
                           "(the entry is a double bounce); entry removed\n".encode()
        assert todo(home) == []
    finally:
        home.cleanup()


def test_doublebounceto_and_doublebouncehost():
    home = h.Home()
    relaydir, relay = recording_relay()
    try:
        # a local part at control/doublebouncehost: delivered to alice's Maildir by --flush
        home.write("doublebounceto", "alice\n")
        home.write("doublebouncehost", "example.test\n")
        assert queue(home, "--bounce", enqueue(home, "", ["gone@elsewhere.test"])).returncode == 0
        assert queue(home, "--flush").returncode == 0 and todo(home) == []
        (got,) = home.delivered("alice")
        assert got.startswith(b"Return-Path: <#@[]>\nDelivered-To: alice@example.test\n"), got

        # a whole address elsewhere: the relay program gets it from <>
        home.write("doublebounceto", "pm@far.test\n")
        assert queue(home, "--bounce", enqueue(home, "", ["gone@elsewhere.test"])).returncode == 0
        r = queue(home, "--flush", env={"MXGATE_RELAY": relay})
        assert r.returncode == 0 and todo(home) == [], r
        assert open(os.path.join(relaydir, "args")).read() == "-f <> -- pm@far.test\n"
        assert b"\nTo: <pm@far.test>\n" in open(os.path.join(relaydir, "msg"), "rb").read()

        # an empty control/doublebounceto: double bounces are dropped, as qmail does
        home.write("doublebounceto", "\n")
        qid = enqueue(home, "", ["gone@elsewhere.test"])
        r = queue(home, "--bounce", qid)
        assert r.returncode == 0 and todo(home) == [], r
        assert r.stderr == f"mxgate-queue: {qid}: 1 recipient(s) bounced by the administrator, no bounce sent " \
                           "(double bounces are off: control/doublebounceto is empty); entry removed\n".encode()
    finally:
        home.cleanup()
        shutil.rmtree(relaydir, ignore_errors=True)


def test_bounce_of_utf8_addresses_marks_its_parts_8bit():
    home = h.Home()
    try:
        qid = enqueue(home, "s@remote.test", ["j\u00f6rg@elsewhere.test", "plain@elsewhere.test"],
                      msg="Subject: gr\u00fc\u00dfe\n\nbody\n".encode())
        assert queue(home, "--bounce", qid).returncode == 0
        (dsn_id,) = todo(home)
        e = qentry.read(entry_path(home, dsn_id))
        msg = email.message_from_bytes(e.message, policy=email.policy.default)
        human, status, headers = msg.get_payload()
        assert human.get_content_type() == "text/plain" and human.get_param("charset") == "utf-8"
        assert human["Content-Transfer-Encoding"] == "8bit"
        assert "<j\u00f6rg@elsewhere.test>:\n    bounced by the administrator.\n" in human.get_content()
        assert status["Content-Transfer-Encoding"] == "8bit"
        assert "\nFinal-Recipient: rfc822; j\u00f6rg@elsewhere.test\nAction: failed\nStatus: 5.0.0\n".encode() \
            in e.message
        assert headers["Content-Transfer-Encoding"] == "8bit"
        assert "\n\nSubject: gr\u00fc\u00dfe\n\n--=_mxgate_".encode() in e.message
        assert b"body" not in e.message.split(b"Subject: gr")[1]
    finally:
        home.cleanup()
