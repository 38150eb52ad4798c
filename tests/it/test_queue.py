"""mxgate-queue as qmail-queue(8): message on fd 0, envelope on fd 1;
durable before exit 0; nothing visible when it fails or is killed."""
import os, random, shutil, signal, subprocess, tempfile, time
import harness as h
import qentry

QUEUE = h.prog("mxgate-queue")


def envelope(sender, rcpts, complete=True):
    e = b"F" + sender.encode() + b"\0" + b"".join(b"T" + r.encode() + b"\0" for r in rcpts)
    return e + (b"\0" if complete else b"")


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def feeder(mw, ew, msg, env_bytes, pieces=0):
    """a function writing msg to mw, closing it, then env_bytes to ew; with
    pieces, in that many parts with short pauses. Each fd is closed exactly
    once (tests run in threads: a second close could hit another test's fd)."""
    def feed():
        fds = [mw, ew]

        def close(fd):
            if fd in fds:
                fds.remove(fd)
                os.close(fd)
        try:
            step = max(1, len(msg) // pieces) if pieces else 65536
            for i in range(0, len(msg), step):
                write_all(mw, msg[i:i + step])
                if pieces:
                    time.sleep(0.0005)
            close(mw)
            if pieces:
                half = len(env_bytes) // 2
                write_all(ew, env_bytes[:half])
                time.sleep(0.0005)
                write_all(ew, env_bytes[half:])
            else:
                write_all(ew, env_bytes)
        except OSError:
            pass
        finally:
            for fd in list(fds):
                close(fd)
    return feed


def run_queue(home, msg, env_bytes, extra_env=None, start_only=False, pieces=0):
    """mxgate-queue with msg on fd 0 and env_bytes on fd 1 (both pipes)"""
    mr, mw = os.pipe()
    er, ew = os.pipe()
    e = {"PATH": os.environ["PATH"], "MXGATE_HOME": home.dir}
    e.update(extra_env or {})
    p = subprocess.Popen([QUEUE], stdin=mr, stdout=er, stderr=subprocess.DEVNULL if start_only else subprocess.PIPE,
                         env=e)
    os.close(mr); os.close(er)
    feed = feeder(mw, ew, msg, env_bytes, pieces)
    if start_only:
        return p, feed
    feed()
    p.wait(30)
    return p


def visible(home):
    """every visible message file: Maildir new/ and cur/, queue todo/"""
    out = []
    for root in [os.path.join(md, s) for md in home.maildirs.values() for s in ("new", "cur")] + \
            [home.path("queue", "todo")]:
        if os.path.isdir(root):
            out += [os.path.join(root, f) for f in os.listdir(root)]
    return out


def flush(home, relay=None):
    env = {"PATH": os.environ["PATH"], "MXGATE_HOME": home.dir}
    if relay:
        env["MXGATE_RELAY"] = relay
    return subprocess.run([QUEUE, "--flush"], env=env, capture_output=True, timeout=60)


def recording_relay(exit_code=0, delay=0):
    """a sendmail stand-in that appends its arguments and the message to files in its dir"""
    d = tempfile.mkdtemp(prefix="mxgate-relay-")
    path = os.path.join(d, "relay")
    with open(path, "w") as fh:
        fh.write(f'#!/bin/sh\nsleep {delay}\necho "$@" >> {d}/args\ncat >> {d}/msg\nexit {exit_code}\n')
    os.chmod(path, 0o755)
    return d, path


def read_args(d):
    p = os.path.join(d, "args")
    return open(p).read().splitlines() if os.path.exists(p) else []


def test_one_local_recipient_byte_for_byte():
    home = h.Home()
    try:
        msg = b"Received: from x\n\tby y\nSubject: hello\n\nline one\n.dot\n\0nul and \xff bytes\n"
        p = run_queue(home, msg, envelope("s@remote.test", ["alice@example.test"]))
        assert p.returncode == 0, p.stderr.read()
        got = home.delivered("alice")
        assert got == [b"Return-Path: <s@remote.test>\nDelivered-To: alice@example.test\n" + msg]
        assert os.listdir(home.path("queue", "todo")) == []
    finally:
        home.cleanup()


def test_extension_address_and_null_sender():
    home = h.Home()
    try:
        p = run_queue(home, b"Subject: x\n\nbody\n", envelope("", ["Alice-Lists@EXAMPLE.test"]))
        assert p.returncode == 0
        assert home.delivered("alice")[0].startswith(b"Return-Path: <>\nDelivered-To: Alice-Lists@EXAMPLE.test\n")
    finally:
        home.cleanup()


def test_several_recipients_local_and_remote_then_flush():
    home = h.Home()
    relaydir = tempfile.mkdtemp(prefix="mxgate-relay-")
    relay = os.path.join(relaydir, "relay")
    with open(relay, "w") as fh:
        fh.write(f'#!/bin/sh\necho "$@" > {relaydir}/args\ncat > {relaydir}/msg\nexit 0\n')
    os.chmod(relay, 0o755)
    try:
        msg = b"Subject: many\n\nto all\n"
        p = run_queue(home, msg, envelope("s@remote.test", ["alice@example.test", "bob@example.test",
                                                            "far@elsewhere.test", "nobody@example.test"]))
        assert p.returncode == 0
        assert len(home.delivered("alice")) == 1 and len(home.delivered("bob")) == 1
        todo = os.listdir(home.path("queue", "todo"))
        assert len(todo) == 1
        e = qentry.read(home.path("queue", "todo", todo[0]))
        assert e.message == msg and e.sender == "s@remote.test"
        # one file: the whole envelope, with the local copies made marked done
        assert e.rcpts == ["alice@example.test", "bob@example.test", "far@elsewhere.test", "nobody@example.test"]
        assert e.pending() == ["far@elsewhere.test", "nobody@example.test"]
        assert e.states[0] == ("d", 1, 0, "delivered to a Maildir") and e.states[1][0] == "d"
        r = subprocess.run([QUEUE, "--flush"], env={"PATH": os.environ["PATH"], "MXGATE_HOME": home.dir,
                                                    "MXGATE_RELAY": relay}, capture_output=True)
        assert r.returncode == 0, r.stderr
        assert r.stderr.decode() == f"mxgate-queue: {todo[0]}: nobody@example.test: local, no Maildir in " \
                                    "control/maildirs, kept in the queue\n", r.stderr
        assert open(f"{relaydir}/args").read().split() == ["-f", "s@remote.test", "--", "far@elsewhere.test"]
        assert open(f"{relaydir}/msg", "rb").read() == msg
        # the unknown local user stays queued, never relayed (it would loop)
        e = qentry.read(home.path("queue", "todo", todo[0]))
        assert e.pending() == ["nobody@example.test"]
        assert e.states[2] == ("d", 1, 0, "handed to the relay program")
    finally:
        home.cleanup(); shutil.rmtree(relaydir, ignore_errors=True)


def test_incomplete_or_bad_envelope_leaves_nothing():
    home = h.Home()
    try:
        for env_bytes, code in ((envelope("s@r.test", ["alice@example.test"], complete=False), 54),
                                (b"", 54), (b"Xgarbage\0\0", 91), (envelope("s@r.test", []), 91),
                                (envelope("s@r.test", ["alice@example.test", "a@far.test"], complete=False), 54)):
            p = run_queue(home, b"Subject: x\n\nbody\n", env_bytes)
            assert p.returncode in (code, 91, 54), (env_bytes, p.returncode)
            assert visible(home) == [], visible(home)
    finally:
        home.cleanup()


def test_disk_full_is_53_and_leaves_nothing():
    if os.getuid() != 0:
        print("skipped: mounting a small tmpfs needs root")
        return
    home = h.Home()
    mnt = home.path("full")
    os.makedirs(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt]).returncode != 0:
        print("skipped: cannot mount tmpfs here")
        home.cleanup()
        return
    try:
        md = os.path.join(mnt, "Maildir")
        for s in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(md, s))
        home.write("maildirs", f"alice@example.test:{md}\n")
        p = run_queue(home, b"Subject: big\n\n" + b"x" * 400000 + b"\n", envelope("s@r.test", ["alice@example.test"]))
        assert p.returncode == 53, (p.returncode, p.stderr.read())
        assert os.listdir(os.path.join(md, "new")) == [] and os.listdir(os.path.join(md, "tmp")) == []
    finally:
        subprocess.run(["umount", mnt])
        home.cleanup()


def test_unwritable_queue_is_a_temporary_failure():
    home = h.Home()
    try:
        with open(home.path("queue"), "w") as fh:      # a file where the queue directory should be
            fh.write("not a directory")
        p = run_queue(home, b"Subject: x\n\nbody\n", envelope("s@r.test", ["far@elsewhere.test"]))
        assert p.returncode == 62, p.returncode
    finally:
        home.cleanup()


def describe(data, sent):
    """for an assertion: how a file that is not a sent message relates to one"""
    for b in sent:
        if b.startswith(data[:40]):
            return f"{len(data)} bytes, sent {len(b)}, prefix={b.startswith(data)}"
    return f"{len(data)} bytes, no message starts like it: {data[:40]!r}"


def check_queue_invariants(home, sent):
    """nothing partial is visible: every todo/ID is a whole entry (its crc
    holds) of a message sent; every Maildir copy is one whole message"""
    todo_dir = home.path("queue", "todo")
    queued = {}
    for f in os.listdir(todo_dir):
        e = qentry.read(os.path.join(todo_dir, f))       # NotWhole: a partial entry was made visible
        assert e.sender == "s@remote.test" and e.rcpts, f
        assert e.message in sent, f"partial queued message {f}: {describe(e.message, sent)}"
        queued[e.message] = queued.get(e.message, set()) | set(e.pending())
    for md in home.maildirs.values():
        for sub in ("new", "cur"):
            for f in os.listdir(os.path.join(md, sub)):
                data = open(os.path.join(md, sub, f), "rb").read()
                assert data.startswith(b"Return-Path: <s@remote.test>\nDelivered-To: "), f
                body = data.split(b"\n", 2)[2]
                assert body in sent, f"partial delivery {f}: {describe(body, sent)}"
    return queued


def test_sigkill_at_random_moments_never_loses_or_shows_half_a_message():
    """200 deliveries, each killed with SIGKILL at a random moment (or not
    at all), fed fast or slowly: every run that exited 0 has its message
    whole in each local Maildir or still queued for that recipient; nothing
    visible is ever partial; and --flush afterwards delivers or relays every
    acknowledged copy."""
    import threading
    home = h.Home()
    rnd = random.Random(7)
    rd, relay = recording_relay()
    with open(relay, "w") as fh:                      # one file per relayed message
        fh.write(f'#!/bin/sh\necho "$@" >> {rd}/args\ncat > {rd}/msg.$$\n')
    try:
        acked, sent, killed = [], set(), 0
        for i in range(200):
            size = rnd.choice([200, 5000, 120000])
            body = (b"Subject: %d\n\n" % i) + bytes(rnd.randrange(32, 127) for _ in range(64)) * (size // 64)
            sent.add(body)
            rcpts = rnd.choice([["alice@example.test"], ["alice@example.test", "bob@example.test"],
                                ["bob@example.test", "far@elsewhere.test"], ["far@elsewhere.test"]])
            env_bytes = envelope("s@remote.test", rcpts)
            # half fed at once, half slowly in 2-4 pieces
            p, feed = run_queue(home, body, env_bytes, start_only=True,
                                pieces=rnd.choice([0, 0, 0, 2, 3, 4]))
            t = threading.Thread(target=feed)
            t.start()
            if rnd.random() < 0.8:
                time.sleep(rnd.uniform(0, 0.003))
                p.send_signal(signal.SIGKILL)
            rc = p.wait(30)
            t.join()
            if rc == 0:
                acked.append((body, rcpts))
            elif rc == -signal.SIGKILL:
                killed += 1
        queued = check_queue_invariants(home, sent)
        for body, rcpts in acked:                     # acknowledged: delivered, or queued for that recipient
            for r in rcpts:
                if r.endswith("@example.test"):
                    copies = [d for d in home.delivered(r.split("@")[0]) if d.split(b"\n", 2)[2] == body]
                    assert copies or r in queued.get(body, ()), (r, body[:12])
                else:
                    assert r in queued.get(body, ()), ("remote recipient lost", body[:12])
        assert len(acked) > 20 and killed > 20, (len(acked), killed)
        r = flush(home, relay)
        assert r.returncode == 0, r.stderr
        assert os.listdir(home.path("queue", "todo")) == []
        relayed = {open(os.path.join(rd, f), "rb").read() for f in os.listdir(rd) if f.startswith("msg.")}
        for body, rcpts in acked:
            if "far@elsewhere.test" in rcpts:
                assert body in relayed, ("acknowledged, never relayed", body[:12])
            for r in rcpts:
                if r.endswith("@example.test"):
                    assert any(d.split(b"\n", 2)[2] == body for d in home.delivered(r.split("@")[0])), r
        print(f"200 runs: {len(acked)} acknowledged, {killed} killed; after --flush every acknowledged copy "
              f"delivered or relayed ({len(relayed)} relayed)")
    finally:
        home.cleanup(); shutil.rmtree(rd, ignore_errors=True)


def test_envelope_end_is_the_final_nul_not_eof():
    """as qmail-queue: the writer may keep fd 1 open after the final NUL"""
    home = h.Home()
    try:
        mr, mw = os.pipe()
        er, ew = os.pipe()
        p = subprocess.Popen([QUEUE], stdin=mr, stdout=er, stderr=subprocess.PIPE,
                             env={"PATH": os.environ["PATH"], "MXGATE_HOME": home.dir})
        os.close(mr); os.close(er)
        os.write(mw, b"Subject: open end\n\nbody\n")
        os.close(mw)
        os.write(ew, envelope("s@r.test", ["bob@example.test"]))
        rc = p.wait(30)                                  # ew still open here
        os.close(ew)
        assert rc == 0, p.stderr.read()
        assert home.delivered("bob")[0].endswith(b"Subject: open end\n\nbody\n")
    finally:
        home.cleanup()


def test_big_message_streams_in_bounded_memory():
    home = h.Home()
    try:
        msg = b"Subject: big\n\n" + b"".join(b"%07d abcdefghijklmnopqrstuvwxyz0123456789\n" % i for i in range(800000))
        mr, mw = os.pipe()
        er, ew = os.pipe()
        p = subprocess.Popen([QUEUE], stdin=mr, stdout=er, stderr=subprocess.DEVNULL,
                             env={"PATH": os.environ["PATH"], "MXGATE_HOME": home.dir})
        os.close(mr); os.close(er)
        import threading

        def feed():
            with os.fdopen(mw, "wb") as fh:
                fh.write(msg)
            with os.fdopen(ew, "wb") as fh:
                fh.write(envelope("s@r.test", ["alice@example.test"]))
        t = threading.Thread(target=feed)
        t.start()
        peak = 0                             # VmHWM of the running program (its own image, after exec)
        while p.poll() is None:
            try:
                if not os.readlink(f"/proc/{p.pid}/exe").endswith("mxgate-queue"):
                    continue                 # not exec'd yet: still the test's own image
                with open(f"/proc/{p.pid}/status") as fh:
                    for line in fh:
                        if line.startswith("VmHWM:"):
                            peak = max(peak, int(line.split()[1]))
            except OSError:
                pass
            finally:
                time.sleep(0.005)
        t.join()
        assert p.returncode == 0
        got = home.delivered("alice")
        assert len(got) == 1 and got[0] == b"Return-Path: <s@r.test>\nDelivered-To: alice@example.test\n" + msg
        # a 38 MB message, and the program never held more than a few MB
        assert 0 < peak < 16 * 1024, peak
        print(f"{len(msg)} bytes delivered, peak RSS {peak} KiB")
    finally:
        home.cleanup()


def test_missing_maildir_is_queued_then_flushed():
    """a mapped Maildir that cannot take the message: accepted into the queue, delivered by --flush later"""
    home = h.Home()
    try:
        md = home.path("maildirs", "carol", "Maildir")
        home.write("maildirs", open(home.path("control", "maildirs")).read() + f"carol@example.test:{md}\n")
        msg = b"Subject: later\n\nfor carol\n"
        p = run_queue(home, msg, envelope("s@r.test", ["carol@example.test"]))
        assert p.returncode == 0, p.stderr.read()
        todo = os.listdir(home.path("queue", "todo"))
        assert len(todo) == 1
        assert flush(home).returncode == 0
        assert os.listdir(home.path("queue", "todo")) == todo          # still no Maildir: kept
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(md, sub))
        assert flush(home).returncode == 0
        assert os.listdir(home.path("queue", "todo")) == []
        got = [open(os.path.join(md, "new", f), "rb").read() for f in os.listdir(os.path.join(md, "new"))]
        assert got == [b"Return-Path: <s@r.test>\nDelivered-To: carol@example.test\n" + msg]
    finally:
        home.cleanup()


def test_template_map_and_unknown_user_is_kept():
    home = h.Home(users=())
    try:
        base = home.path("vmail")
        for u in ("dave", "erin"):
            for sub in ("tmp", "new", "cur"):
                os.makedirs(os.path.join(base, u, "Maildir", sub))
        home.write("maildirs", f"@example.test:{base}/%u/Maildir\n")
        p = run_queue(home, b"Subject: t\n\nx\n", envelope("s@r.test", ["Dave-Lists@example.test"]))
        assert p.returncode == 0
        assert len(os.listdir(os.path.join(base, "dave", "Maildir", "new"))) == 1
        p = run_queue(home, b"Subject: t\n\ny\n", envelope("s@r.test", ["zed@example.test", "erin@example.test"]))
        assert p.returncode == 0
        assert len(os.listdir(os.path.join(base, "erin", "Maildir", "new"))) == 1
        todo = os.listdir(home.path("queue", "todo"))
        assert len(todo) == 1                                   # zed: unknown, kept, never relayed
        e = qentry.read(home.path("queue", "todo", todo[0]))
        assert e.rcpts == ["zed@example.test", "erin@example.test"] and e.pending() == ["zed@example.test"]
        assert not os.path.exists(os.path.join(base, "zed"))
    finally:
        home.cleanup()


def test_bad_maildirs_line_is_55_and_leaves_nothing():
    home = h.Home()
    try:
        home.write("maildirs", "alice@example.test relative\n")
        p = run_queue(home, b"Subject: x\n\nbody\n", envelope("s@r.test", ["alice@example.test"]))
        assert p.returncode == 55, p.returncode
        assert b"control/maildirs" in p.stderr.read()
        assert visible(home) == []
    finally:
        home.cleanup()


def test_relay_failure_keeps_the_entry_and_null_sender_is_angle_brackets():
    home = h.Home()
    bad_dir, bad = recording_relay(exit_code=75)
    good_dir, good = recording_relay()
    try:
        msg = b"Subject: bounce\n\nnull sender\n"
        p = run_queue(home, msg, envelope("", ["far@elsewhere.test", "-x@elsewhere.test"]))
        assert p.returncode == 0
        r = flush(home, bad)
        assert r.returncode == 0 and b"relay program failed" in r.stderr, r.stderr
        assert len(os.listdir(home.path("queue", "todo"))) == 1
        assert flush(home, good).returncode == 0
        assert read_args(good_dir) == ["-f <> -- far@elsewhere.test -x@elsewhere.test"]
        assert open(os.path.join(good_dir, "msg"), "rb").read() == msg
        assert os.listdir(home.path("queue", "todo")) == []
    finally:
        home.cleanup()
        shutil.rmtree(bad_dir, ignore_errors=True); shutil.rmtree(good_dir, ignore_errors=True)


def test_concurrent_flushes_relay_each_entry_once():
    home = h.Home()
    rd, relay = recording_relay(delay=0.3)
    try:
        for i in range(5):
            assert run_queue(home, b"Subject: %d\n\nx\n" % i, envelope("s@r.test", [f"u{i}@far.test"])).returncode == 0
        env = {"PATH": os.environ["PATH"], "MXGATE_HOME": home.dir, "MXGATE_RELAY": relay}
        ps = [subprocess.Popen([QUEUE, "--flush"], env=env) for _ in range(4)]
        for p in ps:
            assert p.wait(60) == 0
        while os.listdir(home.path("queue", "todo")):        # an entry locked by one run is skipped by the others
            assert flush(home, relay).returncode == 0
        args = read_args(rd)
        assert sorted(args) == sorted(f"-f s@r.test -- u{i}@far.test" for i in range(5)), args
    finally:
        home.cleanup(); shutil.rmtree(rd, ignore_errors=True)


def test_flush_cleans_old_leftovers_only():
    home = h.Home()
    try:
        assert run_queue(home, b"Subject: x\n\nkeep\n", envelope("s@r.test", ["far@elsewhere.test"])).returncode == 0
        old = time.time() - 40 * 3600
        os.makedirs(home.path("queue", "mess"))          # the earlier format's message files
        files = {"qtmp_old": home.path("queue", "tmp", "1.old"), "qtmp_new": home.path("queue", "tmp", "2.new"),
                 "orphan_old": home.path("queue", "mess", "3.orphan"), "orphan_new": home.path("queue", "mess", "4.orphan"),
                 "md_old": os.path.join(home.maildirs["alice"], "tmp", "5.old"),
                 "md_new": os.path.join(home.maildirs["alice"], "tmp", "6.new")}
        for name, f in files.items():
            with open(f, "w") as fh:
                fh.write("leftover")
            if name.endswith("_old"):
                os.utime(f, (old, old))
        rd, relay = recording_relay(exit_code=1)
        assert flush(home, relay).returncode == 0
        shutil.rmtree(rd, ignore_errors=True)
        for name, f in files.items():
            assert os.path.exists(f) == name.endswith("_new"), name
        assert len(os.listdir(home.path("queue", "todo"))) == 1 and os.listdir(home.path("queue", "mess")) == ["4.orphan"]
    finally:
        home.cleanup()


def test_disk_full_in_the_queue_is_53_and_leaves_nothing():
    home = h.Home()
    fs = h.Tmpfs(home.path("q"), size="128k")
    if not fs.ok:
        print("skipped: cannot mount a tmpfs here (needs root)")
        home.cleanup()
        return
    try:
        os.symlink(home.path("q"), home.path("queue"))
        # 300 KB and 140 KB: the entry fills the disk
        for size in (300000, 140000):
            for rcpts in (["far@elsewhere.test"], ["alice@example.test", "far@elsewhere.test"]):
                p = run_queue(home, b"Subject: big\n\n" + b"y" * size + b"\n", envelope("s@r.test", rcpts))
                assert p.returncode == 53, (size, rcpts, p.returncode)
                assert visible(home) == [], visible(home)
                assert os.listdir(home.path("queue", "tmp")) == []
        # a message that fits in the same queue still goes through: 80 KB, in
        # one file with its envelope (the queue makes no second copy of it)
        p = run_queue(home, b"Subject: fits\n\n" + b"y" * 80000 + b"\n", envelope("s@r.test", ["far@elsewhere.test"]))
        assert p.returncode == 0
        assert len(os.listdir(home.path("queue", "todo"))) == 1
    finally:
        fs.umount()
        home.cleanup()


def test_entry_of_the_earlier_format_is_converted_and_delivered():
    """todo/ID as an envelope and mess/ID as the message (the format before
    one-file entries): --flush rewrites it into one entry in place and
    delivers it; the local copy now, the remote one to the relay"""
    home = h.Home()
    rd, relay = recording_relay()
    try:
        for d in ("tmp", "todo", "mess"):
            os.makedirs(home.path("queue", d), exist_ok=True)
        msg = b"Subject: old\n\nfrom before the upgrade\n"
        with open(home.path("queue", "mess", "1700000000.M1P2Q3.host"), "wb") as fh:
            fh.write(msg)
        with open(home.path("queue", "todo", "1700000000.M1P2Q3.host"), "wb") as fh:
            fh.write(envelope("s@r.test", ["alice@example.test", "far@elsewhere.test"]))
        r = flush(home, relay)
        assert r.returncode == 0 and r.stderr == b"", r.stderr
        assert home.delivered("alice") == [b"Return-Path: <s@r.test>\nDelivered-To: alice@example.test\n" + msg]
        assert read_args(rd) == ["-f s@r.test -- far@elsewhere.test"]
        assert open(os.path.join(rd, "msg"), "rb").read() == msg
        assert os.listdir(home.path("queue", "todo")) == [] and os.listdir(home.path("queue", "mess")) == []
    finally:
        home.cleanup(); shutil.rmtree(rd, ignore_errors=True)


def test_entry_that_is_not_whole_is_set_aside_never_delivered():
    """an entry whose crc fails (a power cut before its flush, or damage):
    --flush moves it to queue/bad and says so; nothing of it is delivered;
    a whole entry beside it is delivered as usual"""
    home = h.Home()
    rd, relay = recording_relay()
    try:
        for i in range(2):
            p = run_queue(home, b"Subject: %d\n\nbody %d\n" % (i, i), envelope("s@r.test", [f"u{i}@far.test"]))
            assert p.returncode == 0
        names = sorted(os.listdir(home.path("queue", "todo")))
        damaged = home.path("queue", "todo", names[0])
        data = bytearray(open(damaged, "rb").read())
        data[70] ^= 0x20                                  # one bit of the message
        open(damaged, "wb").write(bytes(data))
        r = flush(home, relay)
        assert r.returncode == 0
        assert r.stderr.decode() == f"mxgate-queue: queue entry {names[0]} is not whole (a crash before it was " \
                                    "flushed, or damage); moved to queue/bad\n"
        assert os.listdir(home.path("queue", "bad")) == [names[0]]
        assert read_args(rd) == ["-f s@r.test -- u1@far.test"]
        assert os.listdir(home.path("queue", "todo")) == []
    finally:
        home.cleanup(); shutil.rmtree(rd, ignore_errors=True)
