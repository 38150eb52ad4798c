"""mxgate-queue as qmail-queue(8): message on fd 0, envelope on fd 1;
durable before exit 0; nothing visible when it fails or is killed."""
import os, random, shutil, signal, subprocess, tempfile, time
import harness as h

QUEUE = h.prog("mxgate-queue")


def envelope(sender, rcpts, complete=True):
    e = b"F" + sender.encode() + b"\0" + b"".join(b"T" + r.encode() + b"\0" for r in rcpts)
    return e + (b"\0" if complete else b"")


def run_queue(home, msg, env_bytes, extra_env=None, start_only=False):
    """mxgate-queue with msg on fd 0 and env_bytes on fd 1 (both pipes)"""
    mr, mw = os.pipe()
    er, ew = os.pipe()
    e = {"PATH": os.environ["PATH"], "MXGATE_HOME": home.dir}
    e.update(extra_env or {})
    p = subprocess.Popen([QUEUE], stdin=mr, stdout=er, stderr=subprocess.PIPE, env=e)
    os.close(mr); os.close(er)

    def feed():
        try:
            for i in range(0, len(msg), 65536):
                os.write(mw, msg[i:i + 65536])
            os.close(mw)
            os.write(ew, env_bytes)
        except OSError:
            pass
        finally:
            for fd in (mw, ew):
                try:
                    os.close(fd)
                except OSError:
                    pass
    if start_only:
        return p, feed
    feed()
    p.wait(30)
    return p


def visible(home):
    """every visible message file: Maildir new/ and cur/, queue todo/ and mess/"""
    out = []
    for root in [os.path.join(md, s) for md in home.maildirs.values() for s in ("new", "cur")] + \
            [home.path("queue", "todo"), home.path("queue", "mess")]:
        if os.path.isdir(root):
            out += [os.path.join(root, f) for f in os.listdir(root)]
    return out


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
        left = open(home.path("queue", "todo", todo[0]), "rb").read()
        assert left == envelope("s@remote.test", ["nobody@example.test", "far@elsewhere.test"])
        r = subprocess.run([QUEUE, "--flush"], env={"PATH": os.environ["PATH"], "MXGATE_HOME": home.dir,
                                                    "MXGATE_RELAY": relay}, capture_output=True)
        assert r.returncode == 0, r.stderr
        assert open(f"{relaydir}/args").read().split() == ["-f", "s@remote.test", "--", "far@elsewhere.test"]
        assert open(f"{relaydir}/msg", "rb").read() == msg
        # the unknown local user stays queued, never relayed (it would loop)
        left = open(home.path("queue", "todo", todo[0]), "rb").read()
        assert left == envelope("s@remote.test", ["nobody@example.test"])
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


def test_sigkill_at_random_moments_never_loses_or_shows_half_a_message():
    """200 deliveries, each killed at a random moment (or not at all): every
    run that exited 0 has its message whole where it belongs; no visible
    file is ever partial."""
    home = h.Home()
    rnd = random.Random(7)
    try:
        acked, sent = [], set()
        import threading
        for i in range(200):
            size = rnd.choice([200, 5000, 120000])
            body = (b"Subject: %d\n\n" % i) + bytes(rnd.randrange(32, 127) for _ in range(64)) * (size // 64)
            sent.add(body)
            rcpts = rnd.choice([["alice@example.test"], ["alice@example.test", "bob@example.test"],
                                ["bob@example.test", "far@elsewhere.test"]])
            p, feed = run_queue(home, body, envelope("s@remote.test", rcpts), start_only=True)
            t = threading.Thread(target=feed)
            t.start()
            delay = rnd.choice([0, 0.0005, 0.001, 0.002, 0.004, None])
            if delay is not None:
                time.sleep(delay)
                p.send_signal(signal.SIGKILL)
            rc = p.wait(30)
            t.join()
            if rc == 0:
                acked.append((body, rcpts))
        files = {f: open(f, "rb").read() for f in visible(home)}
        queued = set()
        for f, data in files.items():
            if "/queue/todo/" in f:                      # a complete envelope, never a torn one
                assert data.startswith(b"Fs@remote.test\0") and data.endswith(b"\0\0"), f
            elif "/queue/mess/" in f:
                assert data in sent, f"partial queued message {f}"
                queued.add(data)
            else:                                        # a Maildir copy: headers + one whole message
                head = b"Return-Path: <s@remote.test>\nDelivered-To: "
                assert data.startswith(head), f
                assert data.split(b"\n", 2)[2] in sent, f"partial delivery {f}"
        for body, rcpts in acked:                        # acknowledged: delivered or still queued
            for r in rcpts:
                if r.endswith("@example.test"):
                    user = r.split("@")[0]
                    copies = [d for d in home.delivered(user) if d.split(b"\n", 2)[2] == body]
                    assert copies or body in queued, (user, body[:12])
                else:
                    assert body in queued, ("remote recipient lost", body[:12])
        assert len(acked) > 20
        print(f"{len(acked)} of 200 runs acknowledged, {len(files)} visible files, all whole")
    finally:
        home.cleanup()
