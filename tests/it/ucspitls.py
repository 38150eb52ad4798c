#!/usr/bin/python3
"""A small UCSPI-TLS server, standing in for ucspi-ssl's sslserver (not
packaged for Debian 12) in the integration tests.

    ucspitls.py [-n] [-E] -c servercert.pem [-C clientca.pem] host port prog...

It listens on host:port and, for each connection, runs prog the way
sslserver does:

- without -n (SMTPS, POP3S): it does the TLS handshake itself, then runs
  prog with plaintext pipes on fd 0/1 and the environment PROTO=SSL,
  SSLLOCALIP/SSLLOCALPORT/SSLREMOTEIP/SSLREMOTEPORT and their TCP* twins
  (sslserver -e; -E leaves the twins out), and the SSL_* variables of sslserver -s: SSL_PROTOCOL,
  SSL_CIPHER, and, when the client presented a certificate (verified
  against -C), SSL_CLIENT_S_DN, SSL_CLIENT_S_DN_CN, SSL_CLIENT_S_DN_Email.
- with -n (STARTTLS, STLS): prog gets the plain socket on fd 0/1 and
  SSLCTLFD (a socketpair end), SSLREADFD and SSLWRITEFD (pipes). When prog
  writes "y" or "Y" to the control socket, the handshake is made on the
  socket; for "Y" the SSL_* variables are sent back on the control socket,
  each "VAR=value\\0", the block ending in one more "\\0". A failed
  handshake closes the control socket. Then the pipes carry the plaintext.

Its log on stderr has tcpserver's lines under sslserver's name:
"sslserver: status: 0/40", "sslserver: pid N from IP", "sslserver: ok N
...", "sslserver: end N status S". The class Sslserver runs it with the
interface of harness.Tcpserver, so the tests' exact-log-line helpers work.
"""
import os, re, select, signal, socket, ssl, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    os.write(2, (msg + "\n").encode())


def tls_env(tls):
    """the SSL_* variables of sslserver -s for this connection"""
    env = {"SSL_PROTOCOL": tls.version() or "unknown", "SSL_CIPHER": tls.cipher()[0]}
    cert = tls.getpeercert()
    if cert:
        fields = [(k, v) for rdn in cert.get("subject", ()) for (k, v) in rdn]
        env["SSL_CLIENT_S_DN"] = "".join(f"/{'CN' if k == 'commonName' else 'emailAddress' if k == 'emailAddress' else k}={v}"
                                         for k, v in fields)
        for k, v in fields:
            if k == "commonName":
                env["SSL_CLIENT_S_DN_CN"] = v
            elif k == "emailAddress":
                env["SSL_CLIENT_S_DN_Email"] = v
    return env


def relay(tls, to_prog, from_prog):
    """TLS socket <-> the program's pipes until either side ends"""
    client_open = True
    while True:
        rl = [from_prog] + ([tls] if client_open else [])
        if client_open and tls.pending():
            ready = [tls]
        else:
            ready, _, _ = select.select(rl, [], [], 120)
            if not ready:
                return
        if tls in ready:
            try:
                data = tls.recv(65536)
            except (ssl.SSLError, OSError):
                data = b""
            if data:
                try:
                    os.write(to_prog, data)
                except OSError:
                    pass
            else:
                client_open = False
                os.close(to_prog)
        if from_prog in ready:
            data = os.read(from_prog, 65536)
            if not data:
                return
            try:
                tls.sendall(data)
            except OSError:
                return


TCPENV = True      # sslserver -e: the TCP* twins of the SSL* variables


def ucspi_env(conn):
    lip, lport = conn.getsockname()[:2]
    rip, rport = conn.getpeername()[:2]
    env = dict(os.environ)
    env.update(PROTO="SSL", SSLLOCALIP=lip, SSLLOCALPORT=str(lport), SSLREMOTEIP=rip, SSLREMOTEPORT=str(rport))
    if TCPENV:
        env.update(TCPLOCALIP=lip, TCPLOCALPORT=str(lport), TCPREMOTEIP=rip, TCPREMOTEPORT=str(rport))
    return env, rip, rport, lip, lport


def run_prog(argv, env, fds, keep):
    """fork and exec prog with fds (0, 1) and keep open; the pid line first, as tcpserver does"""
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            os.dup2(fds[0], 0)
            os.dup2(fds[1], 1)
            for fd in keep:
                os.set_inheritable(fd, True)
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(111)
    return pid


def serve_smtps(conn, ctx, argv):
    env, rip, rport, lip, lport = ucspi_env(conn)
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError) as e:
        log(f"sslserver: unable to accept TLS from {rip} port {rport}: {e.__class__.__name__}")
        return
    env.update(tls_env(tls))
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    pid = run_prog(argv, env, (to_r, from_w), ())
    log(f"sslserver: pid {pid} from {rip}")
    log(f"sslserver: ok {pid} localhost:{lip}:{lport} :{rip}::{rport}")
    os.close(to_r); os.close(from_w)
    relay(tls, to_w, from_r)
    finish(pid, tls)


def serve_starttls(conn, ctx, argv):
    env, rip, rport, lip, lport = ucspi_env(conn)
    ctl_mine, ctl_prog = socket.socketpair()
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    keep = (ctl_prog.fileno(), to_r, from_w)
    env.update(SSLCTLFD=str(ctl_prog.fileno()), SSLREADFD=str(to_r), SSLWRITEFD=str(from_w))
    pid = run_prog(argv, env, (conn.fileno(), conn.fileno()), keep)
    log(f"sslserver: pid {pid} from {rip}")
    log(f"sslserver: ok {pid} localhost:{lip}:{lport} :{rip}::{rport}")
    ctl_prog.close(); os.close(to_r); os.close(from_w)
    cmd = ctl_mine.recv(1)                       # b"" when prog ended without TLS
    if cmd not in (b"y", b"Y"):
        conn.close()
        finish(pid, None)
        return
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError) as e:
        log(f"sslserver: unable to accept TLS from {rip} port {rport}: {e.__class__.__name__}")
        ctl_mine.close()
        os.close(to_w); os.close(from_r)
        finish(pid, None)
        return
    if cmd == b"Y":
        block = b"".join(f"{k}={v}".encode() + b"\0" for k, v in tls_env(tls).items()) + b"\0"
        ctl_mine.sendall(block)
    relay(tls, to_w, from_r)
    finish(pid, tls)


def finish(pid, tls):
    if tls is not None:
        try:
            tls.close()
        except OSError:
            pass
    _, status = os.waitpid(pid, 0)
    log(f"sslserver: end {pid} status {status}")


def main():
    global TCPENV
    args = sys.argv[1:]
    delayed = False
    cert = ca = None
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        if opt == "-n":
            delayed = True
        elif opt == "-c":
            cert = args.pop(0)
        elif opt == "-C":
            ca = args.pop(0)
        elif opt == "-E":
            TCPENV = False
        else:
            sys.exit(f"ucspitls.py: unknown option {opt}")
    host, port, argv = args[0], int(args[1]), args[2:]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert)
    if ca:
        ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((host, port))
    lsock.listen(40)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)      # connection handlers reap themselves
    log("sslserver: status: 0/40")
    while True:
        conn, _ = lsock.accept()
        if os.fork() == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            lsock.close()
            try:
                (serve_starttls if delayed else serve_smtps)(conn, ctx, argv)
            finally:
                os._exit(0)
        conn.close()


if __name__ == "__main__":
    main()
else:
    import harness as h

    class Sslserver(h.Tcpserver):
        """argv under this UCSPI-TLS server on 127.0.0.1:port (delayed: -n,
        STARTTLS); the log is the server's lines plus the program's stderr"""

        def __init__(self, argv, cert, env=None, delayed=False, clientca=None, port=None, wrapper=None, tcpenv=True):
            self.port = port or h.free_port()
            self.logpath = tempfile.mktemp(prefix="mxgate-log-")
            e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            e.update(env or {})
            cmd = [sys.executable, os.path.abspath(__file__)] + (["-n"] if delayed else []) + ([] if tcpenv else ["-E"])
            cmd += ["-c", cert]
            if clientca:
                cmd += ["-C", clientca]
            cmd += ["127.0.0.1", str(self.port)] + (wrapper or []) + list(argv)
            self.logfh = open(self.logpath, "wb")
            self.proc = subprocess.Popen(cmd, env=e, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=self.logfh, start_new_session=True)
            h.wait_for(self._ready, what=f"sslserver on {self.port}")

        def _ready(self):
            if self.proc.poll() is not None:
                raise AssertionError("sslserver exited: " + self.log())
            return "sslserver: status: 0/" in self.log()

        def pids(self):
            return [int(m.group(1)) for m in re.finditer(r"^sslserver: pid (\d+) from", self.log(), re.M)]

        def wait_end(self, pid, timeout=10):
            h.wait_for(lambda: f"sslserver: end {pid} status" in self.log(), timeout, what=f"end of {pid}")
