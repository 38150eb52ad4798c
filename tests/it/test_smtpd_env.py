"""mxgate-smtpd's view of the connection: the UCSPI variables, or the
socket itself when there are none (systemd Accept=yes, inetd); literal
local addresses rewritten to localiphost."""
import os, socket, subprocess, threading
import harness as h


def serve_once_without_ucspi(home, lines):
    """accept one connection and run mxgate-smtpd on it directly, as inetd
    would: fd 0/1 the socket, no TCP* variables; returns (replies, log)"""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]
    result = {}

    def server():
        conn, _ = lsock.accept()
        env = {"PATH": os.environ["PATH"], "MXGATE_HOME": home.dir}
        p = subprocess.run([h.prog("mxgate-smtpd")], stdin=conn, stdout=conn, stderr=subprocess.PIPE, env=env,
                           timeout=30)
        result["log"] = p.stderr.decode()
        conn.close()
    t = threading.Thread(target=server)
    t.start()
    c = h.Client(port)
    replies = [c.reply()]
    for l in lines:
        replies.append(c.cmd(l))
    c.close()
    t.join()
    lsock.close()
    return replies, result["log"], port


def test_addresses_from_the_socket_without_ucspi():
    home = h.Home()
    try:
        replies, log, port = serve_once_without_ucspi(home, ["EHLO client.test", "MAIL FROM:<a@remote.test>",
                                                            "RCPT TO:<x@elsewhere.test>", "QUIT"])
        assert replies[3][1] == ["553 5.7.1 Relaying denied"]
        line = [l for l in log.splitlines() if "Invalid_Relay" in l][0]
        assert line.endswith("Reject::SNDR::Invalid_Relay: S:127.0.0.1:unknown P:ESMTP H:client.test "
                             "F:a@remote.test T:x@elsewhere.test"), line
    finally:
        home.cleanup()


def test_tcp6remoteip_compact_and_v4_mapped():
    home = h.Home()
    try:
        for env_ip, shown in (("::ffff:192.0.2.7", "192.0.2.7"), ("2001:db8::7", "2001:db8::7")):
            env = {"PATH": os.environ["PATH"], "MXGATE_HOME": home.dir, "TCP6REMOTEIP": env_ip,
                   "TCPREMOTEIP": "198.51.100.1", "TCPREMOTEHOST": "client.example.org"}
            p = subprocess.run([h.prog("mxgate-smtpd")], input=b"HELO c.test\r\nMAIL FROM:<a@b.test>\r\n"
                               b"RCPT TO:<x@elsewhere.test>\r\nQUIT\r\n", capture_output=True, env=env, timeout=30)
            line = p.stderr.decode().strip().splitlines()[0]
            assert f" S:{shown}:client.example.org P:SMTP H:c.test " in line, line
    finally:
        home.cleanup()


def test_literal_local_address_becomes_localiphost():
    home = h.Home()
    home.write("localiphost", "example.test\n")
    srv = h.smtpd(home)
    try:
        c = h.Client(srv.port)
        c.reply()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@remote.test>")
        assert c.cmd("RCPT TO:<alice@[127.0.0.1]>")[0] == 250
        assert c.cmd("RCPT TO:<alice@[192.0.2.9]>")[1] == ["553 5.7.1 Relaying denied"]
        c.cmd("QUIT")
        pid = srv.pids()[0]
        srv.wait_line(f"qmail-smtpd: pid {pid} Accept::RCPT::Rcpthosts_Rcptto: S:127.0.0.1:unknown P:ESMTP "
                      f"H:client.test F:a@remote.test T:alice@example.test\n")
    finally:
        srv.stop(); home.cleanup()


def test_bad_control_file_is_421_and_a_clear_error():
    home = h.Home()
    home.write("databytes", "lots\n")
    srv = h.smtpd(home)
    try:
        c = h.Client(srv.port)
        code, lines = c.reply()
        assert lines == ["421 4.3.5 Server configuration error; try again later"]
        srv.wait_line("mxgate-smtpd: fatal: cannot read control/databytes: Invalid argument")
    finally:
        srv.stop(); home.cleanup()
