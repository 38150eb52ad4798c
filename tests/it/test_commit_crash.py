"""The embedded queue's commit, killed at each of its steps (src/queue/direct.c,
MXGATE_TEST_CRASH): the client never sees a 250 for a message that is not
committed; nothing visible is ever partial (every queue entry is whole and
every Maildir file is a whole message); the server goes on serving; and
what was made visible before the kill is delivered by --flush, so a message
is never lost once any part of it is visible. Runs under tcpserver (the
process killed is mxgate-smtpd) and under mxgate-listen (a worker)."""
import os, shutil, subprocess, tempfile
import harness as h
import qentry

STEPS = ("sealed", "published", "synced", "renamed", "committed")
ENVELOPES = {
    "one local": ["alice@example.test"],
    "three local": ["alice@example.test", "bob@example.test", "carol@example.test"],
    "local and remote": ["alice@example.test", "far@elsewhere.test"],
    "remote": ["far@elsewhere.test", "near@elsewhere.test"],
}


def reached(step, rcpts):
    """whether the commit of a message for rcpts goes through step"""
    local = any(r.endswith("@example.test") for r in rcpts)
    remote = any(not r.endswith("@example.test") for r in rcpts)
    return {"sealed": remote, "published": remote, "synced": local, "renamed": local}.get(step, True)


def send(port, rcpts, body):
    """one message; the reply code after the data, or None when the
    connection was cut without one"""
    c = h.Client(port)
    try:
        c.reply()
        c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<s@remote.test>")[0] == 250
        for r in rcpts:
            assert c.cmd(f"RCPT TO:<{r}>")[0] == 250, r
        assert c.cmd("DATA")[0] == 354
        try:
            code = c.cmd(body.replace("\n", "\r\n") + ".")[0]
        except (EOFError, ConnectionResetError):
            return None
        c.cmd("QUIT")
        return code
    finally:
        c.close()


def visible(home):
    """(queue entries, {user: Maildir messages}) as they are now; every
    entry must be whole (qentry raises NotWhole otherwise)"""
    todo = home.path("queue", "todo")
    entries = [qentry.read(os.path.join(todo, f)) for f in os.listdir(todo)] if os.path.isdir(todo) else []
    return entries, {u: home.delivered(u) for u in home.maildirs}


def test_a_kill_at_each_step_of_the_commit():
    rd = tempfile.mkdtemp(prefix="mxgate-relay-")
    relay = os.path.join(rd, "relay")
    with open(relay, "w") as fh:
        fh.write(f'#!/bin/sh\necho "$@" >> {rd}/args\ncat > {rd}/msg.$$\n')
    os.chmod(relay, 0o755)
    cases = 0
    try:
        for step in STEPS:
            for kind, rcpts in ENVELOPES.items():
                home = h.Home(users=("alice", "bob", "carol"))
                srv = h.smtpd(home, env={"MXGATE_TEST_CRASH": step, "RELAYCLIENT": ""})
                try:
                    body = f"Subject: {step} {kind}\n\nkilled at {step}\n"
                    code = send(srv.port, rcpts, body)
                    what = f"{kind}, killed at {step}"
                    if not reached(step, rcpts):
                        assert code == 250, what                # the step is not on this message's path
                        continue
                    cases += 1
                    assert code is None, f"{what}: a reply ({code}) from a process killed before it"
                    assert "Accept::DATA::Queued" not in srv.log(), what
                    entries, boxes = visible(home)
                    for e in entries:                          # whole, and this message
                        assert e.message.endswith(body.encode()), (what, e.message[-60:])
                    for u, msgs in boxes.items():
                        for m in msgs:
                            assert m.startswith(b"Return-Path: <s@remote.test>\nDelivered-To: ") and \
                                m.endswith(body.encode()), (what, u, m[-60:])
                    local = [r for r in rcpts if r.endswith("@example.test")]
                    remote = [r for r in rcpts if r not in local]
                    in_boxes = sum(len(m) for m in boxes.values())
                    # what each step has made visible
                    assert bool(entries) == (bool(remote) and step != "sealed"), (what, len(entries))
                    expect = {"renamed": 1, "committed": len(local)}.get(step, 0)
                    assert in_boxes == expect, (what, in_boxes)
                    # the server still serves (a new worker, or a new mxgate-smtpd), a
                    # message whose commit does not go through the step (every one
                    # goes through "committed")
                    after = ["bob@example.test"] if step in ("sealed", "published") else ["x@elsewhere.test"]
                    if step != "committed":
                        assert send(srv.port, after, "Subject: after\n\nafter\n") == 250, what
                    # --flush delivers what was made visible: a visible entry is never lost
                    r = subprocess.run([h.prog("mxgate-queue"), "--flush"], capture_output=True, timeout=60,
                                       env={"PATH": os.environ["PATH"], "MXGATE_HOME": home.dir, "MXGATE_RELAY": relay})
                    assert r.returncode == 0, r.stderr
                    assert os.listdir(home.path("queue", "todo")) == [], what
                finally:
                    srv.stop()
                    home.cleanup()
        assert cases == 14, cases
        print(f"{cases} commits killed, one at each step each envelope reaches; nothing partial ever visible")
    finally:
        shutil.rmtree(rd, ignore_errors=True)
