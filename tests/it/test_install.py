"""Installation: make install into a temporary DESTDIR (layout, substituted
paths, man pages, uninstall); an install into a temporary PREFIX that
mxgate-setup makes a home for and whose installed programs then receive a
message and give it back over POP3, started with the command lines of the
installed systemd units and of the installed run scripts, from the
installed paths only; mxgate-setup's idempotence, refusal and user
creation; make deb's package (dpkg-deb -c / -f, lintian) and its life:
dpkg -i, a message through the package's unit, reinstall, remove, purge,
in a private mount namespace so that the host is not changed.

The servers run as the existing user nobody (MXGATE_USER, mxgate-setup(8)),
so the host gets no mxgate user; the one test of user creation makes a user
of its own name and removes it."""
import atexit, hashlib, os, pwd, re, shlex, shutil, signal, smtplib, poplib, subprocess, tempfile, threading
import harness as h

TOP = h.TOP
PATHS = "/usr/sbin:/usr/bin:/sbin:/bin"
PROGRAMS = sorted("mxgate-" + d for d in os.listdir(os.path.join(TOP, "src"))
                  if os.path.exists(os.path.join(TOP, "src", d, "main.c")))
MANPAGES = sorted(f for f in os.listdir(os.path.join(TOP, "docs")) if re.search(r"\.[158]$", f))
UNITS = sorted(os.listdir(os.path.join(TOP, "etc", "systemd")))
SERVICES = sorted(os.listdir(os.path.join(TOP, "etc", "service")))
# packaging, lintian and dpkg are CPU work beside tests that measure
# throughput under load: they run at the lowest priority
NICE = ["nice", "-n", "19"]
BODY = b"Subject: installed\r\n\r\nfrom the installed paths\r\n"


def make(target, **vars):
    """make TARGET VAR=value...; the built programs of this run (MXGATE_BIN)
    are what gets installed: with another BIN than bin/ (make asan) the
    install script is run directly, so make does not relink them"""
    env = {"PATH": PATHS}
    if os.path.realpath(h.BIN) == os.path.join(TOP, "bin"):
        cmd = ["make", "-s", "--no-print-directory", "-C", TOP, target] + [f"{k}={v}" for k, v in vars.items()]
    else:
        env.update(vars, BIN=h.BIN)
        cmd = ["sh", os.path.join(TOP, "scripts", "deb.sh" if target == "deb" else "install.sh")] \
            + ([] if target == "deb" else [target])
    r = subprocess.run(NICE + cmd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, f"make {target}: {r.stdout}{r.stderr}"
    return r.stdout


def tmpdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)               # the servers run as nobody and go through it
    return d


class Installed:
    """one install into a temporary PREFIX, units and scripts for a home
    in the same directory and the user nobody"""

    def __init__(self):
        self.root = tmpdir("mxgate-inst-")
        self.prefix = os.path.join(self.root, "usr")
        self.home = os.path.join(self.root, "home")
        self.logdir = os.path.join(self.root, "log")
        make("install", PREFIX=self.prefix, MXGATE_HOME=self.home, MXGATE_USER="nobody",
             MXGATE_GROUP="nogroup", MXGATE_LOGDIR=self.logdir, MXGATE_LOGUSER="nobody")

    def path(self, *p):
        return os.path.join(self.prefix, *p)

    def setup(self, *args, home=None, stdin="", env=None):
        e = {"PATH": PATHS, "MXGATE_USER": "nobody", "MXGATE_GROUP": "nogroup", "MXGATE_LOGUSER": "nobody"}
        if home:
            e["MXGATE_HOME"] = home
        e.update(env or {})
        return subprocess.run([self.path("sbin", "mxgate-setup")] + list(args), env=e, input=stdin,
                              capture_output=True, text=True, cwd="/")


_installed = None
_lock = threading.Lock()


def installed():
    global _installed
    with _lock:
        if _installed is None:
            _installed = Installed()
            atexit.register(shutil.rmtree, _installed.root, True)
        return _installed


_deb = None


def built_deb():
    """make deb once for the module, into a temporary directory"""
    global _deb
    with _lock:
        if _deb is None:
            out = tmpdir("mxgate-deb-")
            atexit.register(shutil.rmtree, out, True)
            _deb = make("deb", DEBOUT=out).strip().splitlines()[-1]
            assert _deb.startswith(out) and _deb.endswith(".deb") and os.path.isfile(_deb), _deb
        return _deb


def unit_command(path):
    """ExecStart (continuations joined, split as systemd does for these
    units) and the Environment= variables of an installed unit"""
    text = open(path).read().replace("\\\n", " ")
    env, argv = {}, None
    for line in text.splitlines():
        if line.startswith("Environment="):
            k, v = line[len("Environment="):].split("=", 1)
            env[k] = v
        elif line.startswith("ExecStart="):
            argv = shlex.split(line[len("ExecStart="):])
    return argv, env


def not_in_source_tree(pgid, prefix):
    """no process of the group runs a program of the source tree, or names
    a path in it in its argv or environment; their programs are installed"""
    seen = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            exe = os.readlink(f"/proc/{pid}/exe")
            argv = open(f"/proc/{pid}/cmdline", "rb").read()
            environ = open(f"/proc/{pid}/environ", "rb").read()
        except (OSError, ProcessLookupError):
            continue
        seen += 1
        assert TOP.encode() not in argv + environ, (pid, argv, environ)
        assert not exe.startswith(TOP), (pid, exe)
        assert exe.startswith(prefix) or exe.startswith(("/usr/bin/", "/bin/")), (pid, exe)
    assert seen, "no process in the group"


def stop_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def send(port, rcpt):
    """one message over SMTP; the session pid comes from the log, the qp
    from the 250"""
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.ehlo("client.test")
        s.mail("sender@remote.test")
        code, _ = s.rcpt(rcpt)
        assert code == 250, code
        code, msg = s.data(BODY)
        assert code == 250 and b" qp " in msg, (code, msg)
        return msg.decode().split(" qp ")[1]


def queued_line(log, qp, rcpt):
    m = re.search(r"^tcpserver: pid (\d+) from 127\.0\.0\.1$", log, re.M)
    assert m, log
    want = (f"qmail-smtpd: pid {m.group(1)} Accept::DATA::Queued: S:127.0.0.1:unknown P:ESMTP "
            f"H:client.test F:sender@remote.test T:{rcpt} 'qp\\x20{qp}\\x20bytes\\x20")
    assert want in log, f"{want!r} not in\n{log}"


def pop3_read(port, user, password):
    p = poplib.POP3("127.0.0.1", port, timeout=20)
    p.user(user)
    p.pass_(password)
    count, _ = p.stat()
    msgs = [b"\r\n".join(p.retr(i)[1]) + b"\r\n" for i in range(1, count + 1)]
    p.quit()
    return msgs


def read_log(path):
    with open(path, "rb") as fh:
        return fh.read().decode("utf-8", "replace")


def test_make_install_destdir_layout_man_and_uninstall():
    dest = tmpdir("mxgate-destdir-")
    try:
        out = make("install", DESTDIR=dest)
        assert f"installed {dest}/usr/local/bin/mxgate-smtpd" in out, out
        p = lambda *x: os.path.join(dest, "usr/local", *x)
        for prog in PROGRAMS:
            assert os.access(p("bin", prog), os.X_OK), prog
        assert os.access(p("sbin", "mxgate-setup"), os.X_OK)
        assert "mxgate-setup.8" in MANPAGES and "users.5" in MANPAGES
        for m in MANPAGES:
            page = p("share/man", "man" + m[-1], m)
            assert os.path.isfile(page), page
            r = subprocess.run(["man", "-l", "-P", "cat", page], capture_output=True, text=True,
                               env={"PATH": PATHS, "MANWIDTH": "80"})
            assert r.returncode == 0 and m.split(".")[0] in r.stdout and "NAME" in r.stdout, (m, r.stderr)
            assert "warning" not in r.stderr.lower(), (m, r.stderr)
        # man finds the installed pages by name, as after a real install
        for args, page in ((["mxgate-smtpd"], "man8/mxgate-smtpd.8"), (["mxgate-setup"], "man8/mxgate-setup.8"),
                           (["5", "users"], "man5/users.5"), (["mxgate-sessions"], "man1/mxgate-sessions.1")):
            r = subprocess.run(["man", "-w"] + args, capture_output=True, text=True,
                               env={"PATH": PATHS, "MANPATH": p("share/man")})
            assert r.stdout.strip() == p("share/man", page), (args, r)
        # units and run scripts name the installed paths, nothing of the
        # build: no DESTDIR, no source tree, no placeholder
        scripts = [p("lib/systemd/system", u) for u in UNITS]
        for s in SERVICES:
            scripts += [p("share/mxgate/service", s, "run"), p("share/mxgate/service", s, "log/run")]
        scripts.append(p("sbin", "mxgate-setup"))
        for f in scripts:
            text = open(f).read()
            assert not re.search(r"@[A-Z_]+@", text), (f, text)
            assert dest not in text and TOP not in text, f
        assert "ExecStart=/usr/local/bin/mxgate-listen " in open(p("lib/systemd/system/mxgate-listen.service")).read()
        assert "Environment=MXGATE_HOME=/var/mxgate" in open(p("lib/systemd/system/mxgate-smtpd@.service")).read()
        run = open(p("share/mxgate/service/mxgate-smtpd/run")).read()
        assert "/usr/local/bin/mxgate-smtpd" in run and "MXGATE_HOME=/var/mxgate;" in run
        make("uninstall", DESTDIR=dest)
        left = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs]
        assert left == [], left
        assert not os.path.exists(p("share/mxgate"))
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def test_installed_listen_unit_receives_and_pop3_unit_reads():
    """mxgate-setup against a temporary home, then ExecStart of the installed
    mxgate-listen.service on a socket passed as mxgate-listen.socket would
    (systemd-socket-activate), and of mxgate-pop3d.service"""
    inst = installed()
    units = inst.path("lib/systemd/system")
    r = subprocess.run(["systemd-analyze", "verify"] + [os.path.join(units, u) for u in UNITS],
                       capture_output=True, text=True, env={"PATH": PATHS, "MANPATH": inst.path("share/man")})
    # the one remark: the test's units run as nobody (MXGATE_USER=nobody)
    remarks = [l for l in r.stderr.splitlines() if l and "Special user nobody configured" not in l]
    assert r.returncode == 0 and remarks == [], r.stderr
    r = inst.setup("--me", "mx.example.test", "example.test")
    assert r.returncode == 0, r.stderr
    assert "systemctl enable --now mxgate-listen.socket" in r.stdout, r.stdout
    r = inst.setup("--mailbox", "alice", stdin="alice secret\n")
    assert r.returncode == 0, r.stderr

    argv, env = unit_command(os.path.join(units, "mxgate-listen.service"))
    assert argv[0] == inst.path("bin", "mxgate-listen") and "nobody" in argv, argv
    assert env == {"MXGATE_HOME": inst.home}
    port = h.free_port()
    logpath = os.path.join(inst.root, "listen.log")
    cmd = ["systemd-socket-activate", "-l", f"127.0.0.1:{port}"] + [f"-E{k}={v}" for k, v in env.items()] + argv
    with open(logpath, "wb") as log:
        srv = subprocess.Popen(cmd, env={"PATH": PATHS}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=log, start_new_session=True, cwd="/")
    pop = None
    try:
        h.wait_for(lambda: "Listening on" in read_log(logpath), what="the socket")
        qp = send(port, "alice@example.test")
        h.wait_for(lambda: "tcpserver: end " in read_log(logpath), what="end of the session")
        queued_line(read_log(logpath), qp, "alice@example.test")
        not_in_source_tree(srv.pid, inst.prefix)

        argv, env = unit_command(os.path.join(units, "mxgate-pop3d.service"))
        i = argv.index("0")                           # tcpserver's host and port: 0 110
        assert argv[i + 1] == "110" and argv[i + 2] == inst.path("bin", "mxgate-popup"), argv
        pport = h.free_port()
        argv = argv[:i] + ["127.0.0.1", str(pport)] + [("pop.test" if a == "%H" else a) for a in argv[i + 2:]]
        poplog = os.path.join(inst.root, "pop3.log")
        with open(poplog, "wb") as log:
            pop = subprocess.Popen(argv, env=dict(env, PATH=PATHS), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=log, start_new_session=True, cwd="/")
        h.wait_for(lambda: "tcpserver: status: 0/" in read_log(poplog), what="pop3 tcpserver")
        msgs = pop3_read(pport, "alice", "alice secret")
        assert len(msgs) == 1 and msgs[0].endswith(BODY), msgs
        h.wait_for(lambda: re.search(r"qmail-popup: pid \d+ Accept::AUTH::User: S:127\.0\.0\.1:unknown P:POP3 \?~ 'alice'",
                                     read_log(poplog)), what="the login line")
        not_in_source_tree(pop.pid, inst.prefix)
    finally:
        stop_group(srv)
        if pop:
            stop_group(pop)


def test_installed_run_scripts_under_tcpserver_with_multilog():
    """the run scripts mxgate-setup copied into a second home, started as
    supervise would (run | log/run), each with IP and PORT from the
    environment: SMTP in, POP3 out, the lines in the multilog files"""
    inst = installed()
    home = os.path.join(inst.root, "home2")
    r = inst.setup("--me", "mx2.example.test", "example.test", home=home)
    assert r.returncode == 0, r.stderr
    assert "note: the installed systemd units name" in r.stdout
    r = inst.setup("--mailbox", "bob", home=home, stdin="bob-pw\n")
    assert r.returncode == 0, r.stderr
    procs = []

    def supervise(name, port, ready="tcpserver: status: 0/"):
        d = os.path.join(home, "service", name)
        text = open(os.path.join(d, "run")).read()
        assert f"MXGATE_HOME={home};" in text and TOP not in text
        p = subprocess.Popen(["sh", "-c", "./run | (cd log && exec ./run)"], cwd=d, start_new_session=True,
                             env={"PATH": PATHS, "IP": "127.0.0.1", "PORT": str(port)},
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        cur = os.path.join(inst.logdir, name[len("mxgate-"):], "current")
        h.wait_for(lambda: os.path.exists(cur) and ready in read_log(cur), what=f"{name} up")
        return p, cur

    try:
        sport, pport = h.free_port(), h.free_port()
        smtp, slog = supervise("mxgate-smtpd", sport)
        qp = send(sport, "bob@example.test")
        h.wait_for(lambda: "tcpserver: end " in read_log(slog), what="end of the session")
        log = re.sub(r"^@[0-9a-f]{24} ", "", read_log(slog), flags=re.M)          # multilog's stamps
        queued_line(log, qp, "bob@example.test")
        # the session ran as nobody (envuidgid + tcpserver -U)
        st = os.stat(os.path.join(home, "maildirs", "bob", "Maildir", "new", os.listdir(
            os.path.join(home, "maildirs", "bob", "Maildir", "new"))[0]))
        assert st.st_uid == pwd.getpwnam("nobody").pw_uid
        not_in_source_tree(smtp.pid, inst.prefix)
        # the queue runner, as its run script starts it, logging through multilog
        sendp, sendlog = supervise("mxgate-send", 0, ready="mxgate-send: started, 20 workers")
        not_in_source_tree(sendp.pid, inst.prefix)
        pop, plog = supervise("mxgate-pop3d", pport)
        msgs = pop3_read(pport, "bob", "bob-pw")
        assert len(msgs) == 1 and msgs[0].endswith(BODY), msgs
        h.wait_for(lambda: "Accept::AUTH::User: S:127.0.0.1:unknown P:POP3 ?~ 'bob'" in read_log(plog),
                   what="the login line")
        not_in_source_tree(pop.pid, inst.prefix)
    finally:
        for p in procs:
            stop_group(p)


def test_setup_is_idempotent_keeps_files_and_refuses_other_arguments():
    inst = installed()
    home = os.path.join(inst.root, "home3")
    r = inst.setup("example.test", "Other.example", home=home)
    assert r.returncode == 1 and "not a domain name" in r.stderr and not os.path.exists(home), r
    r = inst.setup("--me", "mx3.example.test", "example.test", "other.example", home=home)
    assert r.returncode == 0, r.stderr
    files = {}
    for d, _, fs in os.walk(home):
        for f in fs:
            files[os.path.join(d, f)] = open(os.path.join(d, f), "rb").read()
    assert open(os.path.join(home, "control", "rcpthosts")).read() == "example.test\nother.example\n"
    assert open(os.path.join(home, "control", "me")).read() == "mx3.example.test\n"
    assert open(os.path.join(home, "control", "maildirs")).read() == (
        f"@example.test:{home}/maildirs/%u/Maildir\n@other.example:{home}/maildirs/%u/Maildir\n")
    rules = subprocess.run(["cdb", "-d", os.path.join(home, "etc", "tcp.smtp.cdb")], capture_output=True).stdout
    assert b"RELAYCLIENT" in rules
    pem = open(os.path.join(home, "control", "servercert.pem")).read()
    assert "PRIVATE KEY" in pem and "CERTIFICATE" in pem
    st = os.stat(os.path.join(home, "control", "servercert.pem"))
    assert st.st_mode & 0o777 == 0o640 and st.st_gid == pwd.getpwnam("nobody").pw_gid
    # the administrator edits a file and removes a directory; a second run
    # (domains in another order) keeps the edit and recreates the directory
    with open(os.path.join(home, "control", "me"), "w") as fh:
        fh.write("edited.example.test\n")
    files[os.path.join(home, "control", "me")] = b"edited.example.test\n"
    shutil.rmtree(os.path.join(home, "maildirs", "postmaster"))
    r = inst.setup("--me", "mx3.example.test", "other.example", "example.test", home=home)
    assert r.returncode == 0, r.stderr
    assert f"kept {home}/control/me" in r.stdout
    for f, data in files.items():
        assert open(f, "rb").read() == data, f
    assert os.path.isdir(os.path.join(home, "maildirs", "postmaster", "Maildir", "new"))
    # other arguments: a clear refusal, nothing changed
    r = inst.setup("--me", "mx3.example.test", "example.test", home=home)
    assert r.returncode == 1 and "was set up with other arguments" in r.stderr, r
    assert "domains example.test other.example" in r.stderr and "domains example.test\n" in r.stderr
    for f, data in files.items():
        assert open(f, "rb").read() == data, f
    r = inst.setup("example.test", "other.example", home=home)
    assert r.returncode == 1 and "me (host name)" in r.stderr, r
    # a user named in MXGATE_USER must exist; setup creates only the default
    r = inst.setup("example.test", home=os.path.join(inst.root, "home4"), env={"MXGATE_USER": "no-such-mxgate-user"})
    assert r.returncode == 1 and "no such user: no-such-mxgate-user" in r.stderr, r
    assert not os.path.exists(os.path.join(inst.root, "home4"))


def test_setup_creates_the_default_user():
    """installed with a default user name of its own, mxgate-setup creates
    that system user and group and gives it the queue; removed afterwards"""
    name = f"mxgit{os.getpid() % 100000}"
    root = tmpdir("mxgate-user-")
    prefix = os.path.join(root, "usr")
    try:
        make("install", PREFIX=prefix, MXGATE_HOME=os.path.join(root, "home"), MXGATE_USER=name,
             MXGATE_LOGDIR=os.path.join(root, "log"), MXGATE_LOGUSER="nobody")
        r = subprocess.run([os.path.join(prefix, "sbin", "mxgate-setup"), "example.test"], capture_output=True,
                           text=True, env={"PATH": PATHS})
        assert r.returncode == 0, r.stderr
        assert f"created user and group {name}" in r.stdout
        pw = pwd.getpwnam(name)
        assert pw.pw_uid < 1000 and pw.pw_shell == "/usr/sbin/nologin" and pw.pw_dir == os.path.join(root, "home")
        assert os.stat(os.path.join(root, "home", "queue")).st_uid == pw.pw_uid
        assert f"-u {name} -g {name}" in open(os.path.join(prefix, "lib/systemd/system/mxgate-listen.service")).read()
        r = subprocess.run([os.path.join(prefix, "sbin", "mxgate-setup"), "example.test"], capture_output=True,
                           text=True, env={"PATH": PATHS})
        assert r.returncode == 0 and "created user" not in r.stdout, r
    finally:
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", name], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_make_deb_file_list_control_fields_and_lintian():
    out = tmpdir("mxgate-debctl-")
    try:
        deb = built_deb()
        f = lambda field: subprocess.run(["dpkg-deb", "-f", deb, field], capture_output=True, text=True).stdout.strip()
        assert f("Package") == "mxgate" and f("Section") == "mail"
        assert f("Architecture") == subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                                                   text=True).stdout.strip()
        depends = [d.split()[0] for d in f("Depends").split(", ")]
        for d in ("libc6", "libssl3", "libcdb1", "adduser", "ucspi-tcp", "daemontools", "openssl"):
            assert d in depends, (d, depends)
        listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True).stdout
        paths = {l.split()[-1].lstrip(".") for l in listing.splitlines()}
        want = {f"/usr/bin/{p}" for p in PROGRAMS} | {"/usr/sbin/mxgate-setup"}
        want |= {f"/usr/share/man/man{m[-1]}/{m}.gz" for m in MANPAGES}
        want |= {f"/lib/systemd/system/{u}" for u in UNITS}
        want |= {f"/usr/share/mxgate/service/{s}/run" for s in SERVICES}
        want |= {f"/usr/share/mxgate/service/{s}/log/run" for s in SERVICES}
        want |= {"/usr/share/doc/mxgate/copyright", "/usr/share/doc/mxgate/changelog.gz"}
        assert want <= paths, want - paths
        assert not [p for p in paths if p.startswith(("/var", "/etc"))], paths   # nothing of the home, no conffile
        assert all(l.split()[1] == "root/root" for l in listing.splitlines()), listing
        # the maintainer scripts: the users in postinst, nothing removed in postrm
        ctl = os.path.join(out, "control")
        subprocess.run(["dpkg-deb", "-e", deb, ctl], check=True)
        assert sorted(os.listdir(ctl)) == ["control", "md5sums", "postinst", "postrm"]
        postinst = open(os.path.join(ctl, "postinst")).read()
        assert "adduser --system --group" in postinst and " mxgate\n" in postinst and " mxlog\n" in postinst
        assert "rm " not in open(os.path.join(ctl, "postrm")).read()
        unit = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], capture_output=True).stdout
        assert b"ExecStart=/usr/bin/mxgate-listen " in unit and b"/usr/local" not in unit
        r = subprocess.run(NICE + ["lintian", "--fail-on", "error,warning", deb], capture_output=True, text=True,
                           env={"PATH": PATHS})
        bad = [l for l in r.stdout.splitlines() if l[:2] in ("E:", "W:")]
        assert r.returncode == 0 and bad == [], r.stdout + r.stderr
    finally:
        shutil.rmtree(out, ignore_errors=True)


def namespaces_work():
    """a private mount namespace with overlays (root with CAP_SYS_ADMIN); a
    container without it cannot run the package lifecycle test"""
    return subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs none /mnt"],
                          capture_output=True).returncode == 0


# run inside `unshare -m`: /etc, /usr and /var are overlays whose changes
# vanish with the namespace, so dpkg, adduser and mxgate-setup work on what
# looks like the host and leave it as it was
LIFECYCLE = r'''
set -e
deb=$1 out=$2 port=$3
for d in etc usr var; do
  mkdir -p "$out/$d.up" "$out/$d.work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$out/$d.up,workdir=$out/$d.work" "/$d"
done
snap() { (cd /var/mxgate && find . -printf '%p %m %u %g\n' | LC_ALL=C sort &&
          find . -type f -exec md5sum {} + | LC_ALL=C sort) > "$out/$1"; }
! getent passwd mxgate >/dev/null || { echo "mxgate exists before the package"; exit 3; }
rm -f /var/lib/man-db/auto-update       # no rebuild of the man index at each dpkg run
dpkg -i "$deb" > "$out/install.log" 2>&1
getent passwd mxgate mxlog > "$out/passwd"
systemd-analyze verify /lib/systemd/system/mxgate-* > "$out/verify.log" 2>&1
/usr/sbin/mxgate-setup --me mx.example.test example.test > "$out/setup.log" 2>&1
# the package's unit, as systemd would start it on its socket
cmd=$(sed -n '/^ExecStart=/,/[^\\]$/p' /lib/systemd/system/mxgate-listen.service | sed 's/^ExecStart=//; s/\\$//' | tr '\n' ' ')
MXGATE_HOME=/var/mxgate setsid systemd-socket-activate -l "127.0.0.1:$port" $cmd \
  < /dev/null > /dev/null 2> "$out/listen.log" &
listener=$!
trap 'kill -TERM "-$listener" 2>/dev/null || true' EXIT
sleep 1
swaks --server "127.0.0.1:$port" --helo client.test --from s@remote.test --to postmaster@example.test \
  > "$out/swaks.log" 2>&1 || true
kill -TERM "-$listener"
wait "$listener" || true
ls /var/mxgate/maildirs/postmaster/Maildir/new > "$out/delivered"
echo edited.example.test > /var/mxgate/control/me
snap before
dpkg -i "$deb" > "$out/upgrade.log" 2>&1
snap upgraded
dpkg -r mxgate > "$out/remove.log" 2>&1
snap removed
[ ! -e /usr/bin/mxgate-smtpd ] && [ ! -e /lib/systemd/system/mxgate-listen.service ] && echo gone > "$out/files"
dpkg -P mxgate > "$out/purge.log" 2>&1
snap purged
getent passwd mxgate > "$out/passwd-after"
'''


def test_deb_lifecycle_users_unit_and_home_left_alone():
    """dpkg -i in a private mount namespace over overlays: postinst makes the
    users, the package's mxgate-listen.service command line receives a
    message as the real mxgate user, and a reinstall, a removal and a purge
    leave the home mxgate-setup made (and an administrator's edit) alone"""
    if os.getuid() != 0 or not namespaces_work():
        print("test_deb_lifecycle: no mount namespace here (not root, or no CAP_SYS_ADMIN): not run")
        return
    out = tmpdir("mxgate-life-")
    try:
        deb = built_deb()
        r = subprocess.run(NICE + ["unshare", "-m", "sh", "-c", LIFECYCLE, "sh", deb, out, str(h.free_port())],
                           capture_output=True, text=True, env={"PATH": PATHS}, cwd="/", timeout=300)
        logs = {f: read_log(os.path.join(out, f)) for f in os.listdir(out) if f.endswith(".log")}
        assert r.returncode == 0, (r.stdout, r.stderr, logs)
        users = read_log(os.path.join(out, "passwd")).splitlines()
        assert [u.split(":")[0] for u in users] == ["mxgate", "mxlog"], users
        assert all(u.endswith(":/usr/sbin/nologin") and int(u.split(":")[2]) < 1000 for u in users), users
        assert logs["verify.log"] == "", logs["verify.log"]
        assert "created /var/mxgate/control/me" in logs["setup.log"] and "created user" not in logs["setup.log"]
        assert re.search(r"<-  250 2\.0\.0 ok \d+ qp \d+", logs["swaks.log"]), logs["swaks.log"]
        assert len(read_log(os.path.join(out, "delivered")).split()) == 1, logs
        assert "Accept::DATA::Queued" in logs["listen.log"], logs["listen.log"]
        before = read_log(os.path.join(out, "before"))
        edited = hashlib.md5(b"edited.example.test\n").hexdigest()
        assert f"{edited}  ./control/me" in before, before                        # the administrator's edit
        assert " mxgate mxgate" in before                                            # queue/, the Maildirs
        for state in ("upgraded", "removed", "purged"):
            assert read_log(os.path.join(out, state)) == before, state
        assert read_log(os.path.join(out, "files")).strip() == "gone"
        assert read_log(os.path.join(out, "passwd-after")).startswith("mxgate:")
    finally:
        shutil.rmtree(out, ignore_errors=True)
