"""Slow clients cannot hold a session: a command line must arrive whole
within timeoutsmtpd, and a message within timeoutsmtpd plus a second for
every DATA_MIN_RATE bytes (500 by default), however the bytes trickle in,
each read's own timeout notwithstanding. Real sessions under tcpserver, and
under mxgate-listen when MXGATE_MODE=listen (tests/run.sh runs both)."""
import threading, time
import harness as h


def dribble(c, data, every, stop):
    """send data a byte at a time, every seconds, until done or stopped"""
    for b in data:
        if stop.wait(every):
            return
        try:
            c.send(bytes([b]))
        except OSError:
            return


def slow_session(home, env, before, dribbled):
    """a session: the commands of before sent whole, then dribbled a byte a
    second; (the reply that ended it, seconds it took, the log, its pid)"""
    srv = h.smtpd(home, env=env)
    stop = threading.Event()
    try:
        c = h.Client(srv.port, timeout=30)
        assert c.reply()[0] == 220
        for cmd, code in before:
            assert c.cmd(cmd)[0] == code, cmd
        t0 = time.time()
        t = threading.Thread(target=dribble, args=(c, dribbled, 1.0, stop), daemon=True)
        t.start()
        reply = c.reply()
        took = time.time() - t0
        assert c.closed(), "the connection closes after the timeout"
        stop.set()
        t.join()
        pid = srv.pids()[-1]
        srv.wait_end(pid)
        return reply, took, srv.log(), pid
    finally:
        stop.set()
        srv.stop()


def test_a_command_dribbled_byte_by_byte_times_out_as_a_whole():
    """timeoutsmtpd=3 and a byte a second: every read is in time, the line
    is not; the session ends with the timeout's 451 while the client is
    still sending (the line would need 40 s)"""
    home = h.Home()
    home.write("timeoutsmtpd", "3\n")
    try:
        reply, took, log, pid = slow_session(home, {}, [("EHLO slow.test", 250)],
                                             b"MAIL FROM:<someone.rather.slow@remote.test>\r\n")
        assert reply == (451, ["451 4.4.2 Timeout; closing connection"]), reply
        assert took < 20, took                     # generous: the deadline is 3 s (rounded up to a second)
        assert f"qmail-smtpd: pid {pid} " not in log  # no decision was made
    finally:
        home.cleanup()


def test_a_message_slower_than_data_min_rate_times_out_as_a_whole():
    """in DATA the same client (a byte a second, far under 500 bytes/s) gets
    the DATA timeout once timeoutsmtpd has passed; nothing is queued"""
    home = h.Home()
    home.write("timeoutsmtpd", "3\n")
    try:
        reply, took, log, pid = slow_session(
            home, {}, [("EHLO slow.test", 250), ("MAIL FROM:<a@remote.test>", 250),
                       ("RCPT TO:<alice@example.test>", 250), ("DATA", 354)],
            b"Subject: slow\r\n\r\n" + b"x" * 60 + b"\r\n.\r\n")
        assert reply == (451, ["451 4.4.2 Timeout during DATA; closing connection"]), reply
        assert took < 20, took
        assert "Accept::DATA::Queued" not in log
        assert home.delivered("alice") == []
    finally:
        home.cleanup()


def test_a_message_at_a_fair_rate_is_taken():
    """the allowance grows with what came: 200 KB sent in 8 KB pieces, one
    piece every 0.2 s (40 KB/s, well over DATA_MIN_RATE), takes longer than
    timeoutsmtpd and is accepted"""
    home = h.Home()
    home.write("timeoutsmtpd", "3\n")
    srv = h.smtpd(home)
    try:
        c = h.Client(srv.port, timeout=30)
        assert c.reply()[0] == 220
        for cmd, code in (("EHLO fair.test", 250), ("MAIL FROM:<a@remote.test>", 250),
                          ("RCPT TO:<alice@example.test>", 250), ("DATA", 354)):
            assert c.cmd(cmd)[0] == code
        body = b"Subject: fair\r\n\r\n" + (b"y" * 78 + b"\r\n") * 2560
        t0 = time.time()
        for i in range(0, len(body), 8192):
            c.send(body[i:i + 8192])
            time.sleep(0.2)
        assert time.time() - t0 > 3                # longer than timeoutsmtpd in all
        assert c.cmd(".")[0] == 250
        c.cmd("QUIT")
        h.wait_for(lambda: home.delivered("alice"), what="delivery")
    finally:
        srv.stop(); home.cleanup()
