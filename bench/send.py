#!/usr/bin/python3
"""make bench: mxgate-send's delivery from a full queue.

The queue is filled while mxgate-send is not running (mxgate-listen with
the embedded queue, smtp-source on kept connections), then mxgate-send is
started and timed until the queue is empty. The next hop is Postfix's
smtp-sink on a loopback address, reached through control/smtproutes;
control/concurrencyremote and concurrencydestination are 20. Rows: one
recipient per message, and ten (3 rounds each, the median). Then the memory
of mxgate-send (Pss of the runner and its workers, the largest seen while
it delivers) with BENCH_SEND_BIG (default 100,000) queued messages.
Postfix delivering the same queue in the same run is not measured yet.
This is a benchmark, never a test: nothing here asserts a time.
"""
import glob, os, shutil, signal, subprocess, sys, tempfile, time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("MXGATE_BIN", os.path.join(TOP, "bin"))
sys.path.insert(0, os.path.join(TOP, "tests", "it"))
sys.path.insert(0, os.path.join(TOP, "bench"))
import harness as h  # noqa: E402
from run import pss_kib  # noqa: E402

SINK_IP = "127.0.0.61"


def fill(port, count, rcpts):
    """count 1 KiB messages from smtp-source, rcpts recipients each, 20 at a time, on kept connections"""
    subprocess.run(["smtp-source", "-d", "-s", "20", "-m", str(count), "-l", "1024", "-f", "bench@client.test",
                    "-t", "u@far.test", "-r", str(rcpts), f"127.0.0.1:{port}"], check=True)


def sink(port):
    d = tempfile.mkdtemp(prefix="mxgate-bench-sink-")
    p = subprocess.Popen(["smtp-sink", "-u", "nobody", f"{SINK_IP}:{port}", "1000"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    h.wait_for(lambda: subprocess.run(["nc", "-z", SINK_IP, str(port)]).returncode == 0, what="smtp-sink")
    return p, d


def count_files(pattern):
    return sum(len(files) for _, _, files in os.walk(pattern))


def mxgate_round(count, rcpts, sink_port, watch_memory=False):
    home = h.Home(domains=("bench.test",), users=("u",))
    home.write("smtproutes", f":[{SINK_IP}]:{sink_port}\n")
    home.write("concurrencyremote", "20\n")
    home.write("concurrencydestination", "20\n")
    srv = h.Listener(env={"MXGATE_HOME": home.dir, "RELAYCLIENT": ""}, workers="20:64", options=["-n", "1000000"])
    try:
        fill(srv.port, count, rcpts)
        todo = home.path("queue", "todo")
        assert len(os.listdir(todo)) == count, len(os.listdir(todo))
        log = open(os.path.join(home.dir, "send.log"), "wb")
        t0 = time.monotonic()
        send = subprocess.Popen([os.path.join(BIN, "mxgate-send")], env={"MXGATE_HOME": home.dir, "PATH": os.environ["PATH"]},
                                stderr=log, stdout=subprocess.DEVNULL, start_new_session=True)
        most = 0
        while os.listdir(todo):
            if watch_memory:
                pids = [send.pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(send.pid)], capture_output=True,
                                                                    text=True).stdout.split()]
                most = max(most, pss_kib(pids))
                time.sleep(0.5)
            else:
                time.sleep(0.02)
        rate = count / (time.monotonic() - t0)
        send.send_signal(signal.SIGTERM)
        send.wait(60)
        log.close()
        return rate, most
    finally:
        srv.stop()
        home.cleanup()


def main():
    quick = os.environ.get("BENCH_QUICK")
    n = int(os.environ.get("BENCH_SEND_N", 2000 if quick else 10000))
    big = int(os.environ.get("BENCH_SEND_BIG", 20000 if quick else 100000))
    sink_port = h.free_port()
    sp, sd = sink(sink_port)
    try:
        print("delivery from a full queue to smtp-sink (messages/s; 3 rounds each, median)", flush=True)
        rows = []
        for rcpts, count in ((1, n), (10, n // 5)):
            got = {"mxgate-send": []}
            for _ in range(3):
                got["mxgate-send"].append(mxgate_round(count, rcpts, sink_port)[0])
            med = {k: sorted(v)[1] for k, v in got.items()}
            print(f"  {rcpts} rcpt/msg, {count} msgs: " + ", ".join(f"{k} " + "/".join(f"{x:.0f}" for x in v)
                                                              for k, v in got.items()), flush=True)
            rows.append((f"{rcpts} recipient(s) per message", med))
        print(f"\n{'figure':28} {'mxgate-send msg/s':>18}")
        for name, med in rows:
            print(f"{name:28} {med['mxgate-send']:>18.0f}")
        rate, most = mxgate_round(big, 1, sink_port, watch_memory=True)
        print(f"\nmxgate-send with {big} queued messages: {rate:.0f} msg/s delivered, "
              f"largest Pss of runner and workers {most / 1024:.1f} MiB", flush=True)
    finally:
        sp.terminate()
        sp.wait(5)
        shutil.rmtree(sd, ignore_errors=True)


if __name__ == "__main__":
    main()
