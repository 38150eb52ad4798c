#!/usr/bin/python3
"""make bench: delivery from a full queue, mxgate-send against Postfix.

Both queues are filled with the same 1 KiB messages (smtp-source on kept
connections, 20 at a time) while their delivery is held, then delivery is
let go and timed until the sink has every message and the queue is empty:

- mxgate: mxgate-listen with the embedded queue fills queue/todo while
  mxgate-send is not running; the clock starts when mxgate-send is started.
- Postfix: a private instance (bench/postfix.sh with a relay, bench/run.py's
  Postfix class), which puts every message on hold as it is queued
  (smtpd's access action HOLD); `postsuper -H ALL` moves them to the
  deferred queue, and the clock starts at `postqueue -f`, which makes the
  running queue manager take the whole deferred queue at once.

The next hop of both is one smtp-sink on a loopback address (mxgate through
control/smtproutes, Postfix through relayhost), which counts the messages
it receives. Both open up to 20 connections to it (mxgate's
control/concurrencyremote and concurrencydestination; Postfix's
default_destination_concurrency_limit, smtp_destination_concurrency_limit
and initial_destination_concurrency); Postfix's queue files are fsync'd as
shipped and its connection cache is its default (on demand). Each round
checks that the sink got every message, that the delivery log has one
success per recipient, and that the queue is empty.

The CPU time each spent per message is printed beside (Postfix: its master
and every daemon it started; mxgate-send: the runner and its workers; not
the sink's), a figure the host's load moves less than the rates.
Rows: one recipient per message (BENCH_SEND_N messages, default 10,000)
and ten (a fifth as many messages). Three rounds each, the two systems in
turn (the order alternating between rounds), medians and ratios printed.
Then the memory of mxgate-send (Pss of the runner and its workers, the
largest seen while it delivers) with BENCH_SEND_BIG (default 100,000)
queued messages.
This is a benchmark, never a test: nothing here asserts a time.
"""
import os, re, resource, signal, subprocess, sys, threading, time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("MXGATE_BIN", os.path.join(TOP, "bin"))
sys.path.insert(0, os.path.join(TOP, "tests", "it"))
sys.path.insert(0, os.path.join(TOP, "bench"))
import harness as h  # noqa: E402
from run import Postfix, pss_kib  # noqa: E402

SINK_IP = "127.0.0.61"
ROUNDS = 3
PF_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold", "defer", "bounce", "trace", "corrupt")


def fill(port, count, rcpts):
    """count 1 KiB messages from smtp-source, rcpts recipients each, 20 at a time, on kept connections"""
    subprocess.run(["smtp-source", "-d", "-s", "20", "-m", str(count), "-l", "1024", "-f", "bench@client.test",
                    "-t", "u@far.test", "-r", str(rcpts), f"127.0.0.1:{port}"], check=True)


class Sink:
    """smtp-sink -c: its running count of messages ("mesg=N", one record per
    update, separated by CR) is read from its stdout as it goes"""

    def __init__(self):
        self.port = h.free_port()
        self.proc = subprocess.Popen(["smtp-sink", "-c", "-u", "nobody", f"{SINK_IP}:{self.port}", "1000"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        self.messages = 0
        threading.Thread(target=self._read, daemon=True).start()
        h.wait_for(lambda: subprocess.run(["nc", "-z", SINK_IP, str(self.port)]).returncode == 0, what="smtp-sink")

    def _read(self):
        tail = b""
        while True:
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return
            tail = (tail + chunk)[-256:]
            counts = re.findall(rb"mesg=(\d+)\r", tail)
            if counts:
                self.messages = int(counts[-1])

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(5)


def wait_delivered(sink, target, queue_empty, watch=None, who=""):
    """until the sink has target messages and queue_empty() holds; watch(),
    when given, is called every half second meanwhile. A delivery that
    stalls (no message for 120 s) ends the bench: something was lost"""
    last = 0.0
    progress, seen = time.monotonic(), sink.messages
    while sink.messages < target or not queue_empty():
        if sink.messages != seen:
            progress, seen = time.monotonic(), sink.messages
        check(time.monotonic() - progress < 120, f"{who}: the sink has {sink.messages} of {target} messages, "
              "nothing more for 120 s")
        if watch and time.monotonic() - last >= 0.5:
            watch()
            last = time.monotonic()
        time.sleep(0.005 if sink.messages < target else 0.02)


def mxgate_round(count, rcpts, sink, watch_memory=False):
    home = h.Home(domains=("bench.test",), users=("u",))
    home.write("smtproutes", f":[{SINK_IP}]:{sink.port}\n")
    home.write("concurrencyremote", "20\n")
    home.write("concurrencydestination", "20\n")
    srv = h.Listener(env={"MXGATE_HOME": home.dir, "RELAYCLIENT": ""}, workers="20:64", options=["-n", "1000000"])
    send = None
    try:
        fill(srv.port, count, rcpts)
        todo = home.path("queue", "todo")
        assert len(os.listdir(todo)) == count, len(os.listdir(todo))
        logpath = os.path.join(home.dir, "send.log")
        log = open(logpath, "wb")
        base = sink.messages
        cpu0 = children_cpu()
        t0 = time.monotonic()
        send = subprocess.Popen([os.path.join(BIN, "mxgate-send")], env={"MXGATE_HOME": home.dir, "PATH": os.environ["PATH"]},
                                stderr=log, stdout=subprocess.DEVNULL, start_new_session=True)
        most = [0, 0]

        def watch():
            kids = subprocess.run(["pgrep", "-P", str(send.pid)], capture_output=True, text=True).stdout.split()
            most[0] = max(most[0], pss_kib([send.pid] + [int(p) for p in kids]))
            most[1] = max(most[1], pss_kib([send.pid]))
        wait_delivered(sink, base + count, lambda: not os.listdir(todo), watch if watch_memory else None, "mxgate")
        rate = count / (time.monotonic() - t0)
        send.send_signal(signal.SIGTERM)
        send.wait(60)
        cpu = children_cpu() - cpu0          # the runner and its workers (reaped by it), start to end
        log.close()
        delivered = open(logpath, "rb").read().count(b" Accept::SEND::Delivered: ")
        check(sink.messages - base == count and delivered == count * rcpts,
              f"mxgate: sink got {sink.messages - base} of {count} messages, log has {delivered} of {count * rcpts} recipients")
        return rate, cpu / count, most
    finally:
        if send and send.poll() is None:               # the bench stopped midway: our runner goes too
            os.killpg(send.pid, signal.SIGKILL)
            send.wait()
        srv.stop()
        home.cleanup()


def pf_queued(pf, names=PF_QUEUES):
    return sum(len(files) for q in names for _, _, files in os.walk(os.path.join(pf.dir, "spool", q)))


def sent_lines(pf):
    with open(os.path.join(pf.dir, "maillog"), "rb") as fh:
        return fh.read().count(b", status=sent ")


def postfix_round(pf, count, rcpts, sink):
    sent0 = sent_lines(pf)
    fill(pf.port, count, rcpts)
    h.wait_for(lambda: pf_queued(pf, ("hold",)) == count, timeout=60, what="postfix: every message on hold")
    base = sink.messages
    pf.ctl("unhold")
    check(pf_queued(pf) == pf_queued(pf, ("deferred",)) == count, "postfix: not every message in deferred/")
    check(sink.messages == base, "postfix: delivery began before the flush")
    cpu0 = postfix_cpu(pf)
    t0 = time.monotonic()
    pf.ctl("flush")
    wait_delivered(sink, base + count, lambda: pf_queued(pf) == 0, who="postfix")
    rate = count / (time.monotonic() - t0)
    cpu = postfix_cpu(pf) - cpu0
    h.wait_for(lambda: sent_lines(pf) - sent0 >= count * rcpts, timeout=10, what="postfix's log")
    sent = sent_lines(pf) - sent0
    check(sink.messages - base == count and sent == count * rcpts,
          f"postfix: sink got {sink.messages - base} of {count} messages, log has {sent} of {count * rcpts} recipients")
    return rate, cpu / count


TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """seconds of CPU of pid and of its children it reaped (utime, stime, cutime, cstime)"""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / TICK
    except OSError:
        return 0.0


def postfix_cpu(pf):
    """CPU seconds of Postfix's master and every daemon it started, live or
    reaped (a daemon that exits moves its time into master's cutime)"""
    master = int(open(os.path.join(pf.dir, "spool", "pid", "master.pid")).read())
    kids = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    return proc_cpu(master) + sum(proc_cpu(int(k)) for k in kids)


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def check(ok, what):
    if not ok:
        raise SystemExit("bench/send.py: " + what)


def load():
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    quick = os.environ.get("BENCH_QUICK")
    n = int(os.environ.get("BENCH_SEND_N", 2000 if quick else 10000))
    big = int(os.environ.get("BENCH_SEND_BIG", 20000 if quick else 100000))
    sink = Sink()
    try:
        compare(sink, n)
        if big:
            rate, _, most = mxgate_round(big, 1, sink, watch_memory=True)
            print(f"\nmxgate-send with {big} queued messages: {rate:.0f} msg/s delivered, "
                  f"largest Pss of runner and workers {most[0] / 1024:.1f} MiB (of the runner alone "
                  f"{most[1] / 1024:.1f} MiB); {load()}", flush=True)
    finally:
        sink.stop()


def compare(sink, n):
    """the two rows, Postfix and mxgate-send in turn"""
    pf = None
    try:
        pf = Postfix(relay=f"{SINK_IP}:{sink.port}")
        fill(pf.port, 100, 1)                       # warm up: its smtpd, cleanup and smtp processes
        h.wait_for(lambda: pf_queued(pf, ("hold",)) == 100, what="postfix warm-up held")
        pf.ctl("unhold")
        pf.ctl("flush")
        h.wait_for(lambda: pf_queued(pf) == 0 and sent_lines(pf) == 100, timeout=60, what="postfix warm-up delivered")
        print(f"delivery from a full queue to smtp-sink (messages/s; {ROUNDS} rounds each, median); {load()}",
              flush=True)
        rows = []
        for rcpts, count in ((1, n), (10, n // 5)):
            got = {"postfix": [], "mxgate-send": []}
            cpu = {"postfix": [], "mxgate-send": []}
            for r in range(ROUNDS):
                order = ("postfix", "mxgate-send") if r % 2 == 0 else ("mxgate-send", "postfix")
                for who in order:
                    if who == "postfix":
                        rate, c = postfix_round(pf, count, rcpts, sink)
                    else:
                        rate, c, _ = mxgate_round(count, rcpts, sink)
                    got[who].append(rate)
                    cpu[who].append(c * 1000)
            med = {k: sorted(v)[len(v) // 2] for k, v in got.items()}
            medcpu = {k: sorted(v)[len(v) // 2] for k, v in cpu.items()}
            print(f"  {rcpts} rcpt/msg, {count} msgs: " + ", ".join(f"{k} " + "/".join(f"{x:.0f}" for x in v)
                                                              for k, v in got.items()) + f"; {load()}", flush=True)
            print(f"    CPU ms/msg: " + ", ".join(f"{k} " + "/".join(f"{x:.2f}" for x in v) for k, v in cpu.items()),
                  flush=True)
            rows.append((f"{rcpts} recipient(s)/message", med, medcpu))
        print(f"\n{'figure':26} {'postfix msg/s':>14} {'mxgate-send msg/s':>24} {'CPU ms/msg, postfix':>20} "
              f"{'mxgate-send':>12}")
        for name, med, medcpu in rows:
            print(f"{name:26} {med['postfix']:>14.0f} {med['mxgate-send']:>14.0f} ({med['mxgate-send'] / med['postfix']:4.2f}x)"
                  f" {medcpu['postfix']:>20.2f} {medcpu['mxgate-send']:>12.2f}")
        print("queues empty, and the sink received every message, after every round", flush=True)
    finally:
        if pf:
            pf.stop()


if __name__ == "__main__":
    main()
