"""Group commit under mxgate-listen: concurrent messages share one
syncfs in the committer; SIGKILL of the committer at random moments while
20 clients send 2,000 messages loses no acknowledged message and shows no
partial one."""
import os, random, signal, threading, time
import harness as h


def send_many(port, prefix, n, acked, failed):
    c = h.Client(port, timeout=60)
    c.reply()
    c.cmd("EHLO load.test")
    for i in range(n):
        subject = f"{prefix}-{i}"
        c.send(f"MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        codes = [c.reply()[0] for _ in range(3)]
        if codes != [250, 250, 354]:
            failed.append((subject, codes))
            c.cmd("RSET")
            continue
        code, lines = c.cmd(f"Subject: {subject}\r\n\r\nbody of {subject}\r\n.")
        (acked if code == 250 else failed).append(subject)
    c.cmd("QUIT")
    c.close()


def while_clients_send(port, prefix, clients, each, disturb):
    """clients sessions sending each messages, with disturb(stop) running in
    a thread of its own until they are done; (acked, failed) subjects"""
    acked, failed = [], []
    stop = threading.Event()
    d = threading.Thread(target=disturb, args=(stop,))
    d.start()
    senders = [threading.Thread(target=send_many, args=(port, f"{prefix}{j}", each, acked, failed))
               for j in range(clients)]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    stop.set()
    d.join()
    return acked, failed


def test_committer_killed_at_random_moments():
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="20:40")
    pidfile = home.path("queue", "commit.sock.pid")
    try:
        h.wait_for(lambda: os.path.exists(pidfile), what="committer")
        kills = []

        def killer(stop):
            rnd = random.Random(3)
            while not stop.is_set():
                time.sleep(rnd.uniform(0.02, 0.1))
                try:
                    pid = int(open(pidfile).read())
                    os.kill(pid, signal.SIGKILL)
                    kills.append(pid)
                except (OSError, ValueError):
                    pass
        acked, failed = while_clients_send(srv.port, "m", 20, 100, killer)
        bodies = {}
        for data in home.delivered("alice"):
            head, _, rest = data.partition(b"\nSubject: ")
            subject = rest.split(b"\n", 1)[0].decode()
            assert data.endswith(f"\n\nbody of {subject}\n".encode()), f"partial message {subject}"
            bodies[subject] = bodies.get(subject, 0) + 1
        lost = [s for s in acked if s not in bodies]
        assert not lost, f"{len(lost)} acknowledged messages lost, e.g. {lost[:3]}"
        assert len(acked) + len(failed) == 2000
        assert len(kills) > 3 and len(acked) > 500, (len(kills), len(acked))
        print(f"{len(acked)} acknowledged, {len(failed)} refused (451) over {len(kills)} committer kills")
    finally:
        srv.stop(); home.cleanup()


def test_reloads_fail_no_commit():
    """SIGHUP every few milliseconds while 10 clients send 50 messages each
    in one session: a worker waiting for the committer is not interrupted
    by the reload (no 451), and every message is there once"""
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="10:40")
    try:
        hups = []

        def reloader(stop):
            while not stop.is_set():
                time.sleep(0.005)
                os.kill(srv.proc.pid, signal.SIGHUP)
                hups.append(1)
        acked, failed = while_clients_send(srv.port, "h", 10, 50, reloader)
        assert not failed, f"{len(failed)} of 500 refused during {len(hups)} reloads, e.g. {failed[:3]}"
        subjects = sorted(d.partition(b"\nSubject: ")[2].split(b"\n", 1)[0].decode() for d in home.delivered("alice"))
        assert subjects == sorted(acked) and len(acked) == 500, (len(subjects), len(acked))
    finally:
        srv.stop(); home.cleanup()


def test_a_bad_request_fails_only_itself():
    """requests naming a directory that does not exist, sent to the committer
    all the time, get "e"; the messages committed meanwhile all get 250"""
    import socket
    home = h.Home()
    srv = h.Listener(env={"MXGATE_HOME": home.dir}, workers="5:10")
    try:
        sock = home.path("queue", "commit.sock")
        h.wait_for(lambda: os.path.exists(sock + ".pid"), what="committer")
        answers = []

        def nuisance(stop):
            while not stop.is_set():
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(sock)
                s.sendall(b"/nonexistent/dir\n")
                answers.append(s.recv(1))
                s.close()
        acked, failed = while_clients_send(srv.port, "b", 5, 40, nuisance)
        assert not failed, f"{len(failed)} of 200 refused beside {len(answers)} bad requests, e.g. {failed[:3]}"
        assert answers and set(answers) == {b"e"}, set(answers)
        assert len(home.delivered("alice")) == 200
    finally:
        srv.stop(); home.cleanup()
