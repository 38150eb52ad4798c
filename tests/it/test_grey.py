"""Greylisting against the real postgrey (Postfix policy delegation protocol)."""
import os, shutil, signal, subprocess, tempfile, time
import harness as h


class Postgrey:
    def __init__(self, delay=1):
        self.dir = tempfile.mkdtemp(prefix="mxgate-postgrey-")
        self.port = h.free_port()
        self.pidfile = os.path.join(self.dir, "pid")
        subprocess.run(["postgrey", f"--inet=127.0.0.1:{self.port}", f"--dbdir={self.dir}",
                        f"--delay={delay}", "--user=root", "--group=root", f"--pidfile={self.pidfile}", "-d"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        h.wait_for(lambda: os.path.exists(self.pidfile) and self._listening(), what="postgrey")

    def _listening(self):
        import socket
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self):
        try:
            os.kill(int(open(self.pidfile).read().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def session(srv, rcpt="alice@example.test"):
    c = h.Client(srv.port)
    c.reply()
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<sender@remote.test>")
    code, lines = c.cmd(f"RCPT TO:<{rcpt}>")
    c.cmd("QUIT")
    c.close()
    return code, lines


def test_greylisted_then_accepted_after_delay():
    pg = Postgrey(delay=1)
    home = h.Home()
    srv = h.smtpd(home, env={"POSTGREY": f"127.0.0.1#{pg.port}"})
    try:
        code, lines = session(srv)
        assert (code, lines[0]) == (450, "450 4.7.1 Greylisted, please try again later"), lines
        pid = srv.pids()[0]
        srv.wait_line(f"qmail-smtpd: pid {pid} Deferred::GREY::Grey_Listed: S:127.0.0.1:unknown P:ESMTP "
                      "H:client.test F:sender@remote.test T:alice@example.test\n")
        time.sleep(2.2)  # postgrey's delay is 1 s; retry after it
        code, lines = session(srv)
        assert code == 250, lines
        pid = srv.pids()[1]
        srv.wait_line(f"qmail-smtpd: pid {pid} Accept::RCPT::Rcpthosts_Rcptto: S:127.0.0.1:unknown P:ESMTP "
                      "H:client.test F:sender@remote.test T:alice@example.test\n")
    finally:
        srv.stop(); pg.stop(); home.cleanup()


def test_reply_text_override():
    pg = Postgrey(delay=60)
    home = h.Home()
    srv = h.smtpd(home, env={"POSTGREY": f"127.0.0.1#{pg.port}", "REPLY_GREYLISTED": "come back later"})
    try:
        code, lines = session(srv)
        assert lines[0] == "450 4.7.1 come back later", lines
    finally:
        srv.stop(); pg.stop(); home.cleanup()


def test_policy_server_down_fails_open():
    home = h.Home()
    dead = h.free_port()
    srv = h.smtpd(home, env={"POSTGREY": f"127.0.0.1#{dead}"})
    try:
        code, lines = session(srv)
        assert code == 250, lines
        pid = srv.pids()[0]
        srv.wait_line(f"mxgate-smtpd: pid {pid} warning: policy server 127.0.0.1#{dead}: Connection refused; not greylisting")
        srv.wait_line(f"qmail-smtpd: pid {pid} Accept::RCPT::Rcpthosts_Rcptto:")
    finally:
        srv.stop(); home.cleanup()


def test_relay_clients_are_not_greylisted():
    pg = Postgrey(delay=60)
    home = h.Home()
    rules = h.tcprules(os.path.join(home.dir, "rules.cdb"), '127.0.0.1:allow,RELAYCLIENT=""\n')
    srv = h.smtpd(home, env={"POSTGREY": f"127.0.0.1#{pg.port}"}, rules=rules)
    try:
        code, lines = session(srv, rcpt="someone@elsewhere.test")
        assert code == 250, lines
        pid = srv.pids()[0]
        srv.wait_line(f"qmail-smtpd: pid {pid} Accept::SNDR::Relay_Client:")
    finally:
        srv.stop(); pg.stop(); home.cleanup()
