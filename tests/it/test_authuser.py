"""mxgate-authuser driven as its callers drive it: the checkpassword input
on fd 3 (a pipe passed with pass_fds), the subprogram as argv, the verdict
as the exit code. Users are made with `mxgate-authuser --hash`; the cdb
form is built with tinycdb's `cdb -c` in the record format of users.5.
"""
import os, stat, subprocess, tempfile
from harness import Home, prog

AUTHUSER = prog("mxgate-authuser")
# RFC 2195 and RFC 1939 examples
CRAM_CHAL = b"<1896.697170952@postoffice.reston.mci.net>"
CRAM_DIGEST = b"b913a602c7eda7a495b4e6e7334d3890"
APOP_STAMP = b"<1896.697170952@dbc.mtview.ca.us>"
APOP_DIGEST = b"c4c9334bac560ecc979e58001b3e22fb"
PASSWORD = "Wonderland-42"
HASHES = {}


def make_hash(pw=PASSWORD, prefix=None):
    key = (pw, prefix)
    if key not in HASHES:
        argv = [AUTHUSER, "--hash"] + ([prefix] if prefix else [])
        p = subprocess.run(argv, input=(pw + "\n").encode(), capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr
        HASHES[key] = p.stdout.decode().strip()
    return HASHES[key]


def auth(home, data, argv=("true",), env=None, timeout=60):
    """run mxgate-authuser with data on fd 3; CompletedProcess"""
    r, w = os.pipe()
    try:
        os.write(w, data)  # at most a few KB: fits the pipe buffer
        os.close(w)
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MXGATE_HOME": home.dir}
        e.update(env or {})
        # bash only moves the pipe to fd 3 (dash cannot name fds >= 10); the data never reaches it
        move = "" if r == 3 else " 3<&%d %d<&-" % (r, r)
        cmd = ["/bin/bash", "-c", 'exec "$@"' + move, "bash", AUTHUSER] + list(argv)
        return subprocess.run(cmd, pass_fds=(r,), env=e, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout)
    finally:
        os.close(r)


def users_home(lines=None):
    """a Home with alice (password + APOP secret), tim (RFC 2195 secret),
    a disabled bob, and a traversable home for each"""
    home = Home()
    os.chmod(home.dir, 0o755)
    h = make_hash()
    md = os.path.join(home.dir, "maildirs")
    os.chmod(md, 0o755)
    if lines is None:
        lines = [
            f"alice:{h}:tanstaaf:::{md}/alice:",
            f"tim:{h}:tanstaaftanstaaf:::{md}/alice:Maildir/",
            f"!bob:{h}::::{md}/bob:",
        ]
    home.write("users", "".join(l + "\n" for l in lines), mode=0o600)
    return home


def script(home, name, body):
    p = home.path(name)
    with open(p, "w") as fh:
        fh.write("#!/bin/sh\n" + body)
    os.chmod(p, 0o755)
    return p


def test_right_and_wrong_password():
    home = users_home()
    try:
        pw = PASSWORD.encode()
        assert auth(home, b"alice\0" + pw + b"\0\0").returncode == 0
        assert auth(home, b"alice\0" + pw + b"\0<123.456@mx.test>\0").returncode == 0
        assert auth(home, b"alice\0" + pw + b"\0").returncode == 0           # no timestamp
        assert auth(home, b"alice\0" + pw + b"x\0\0").returncode == 1
        assert auth(home, b"alice\0\0\0").returncode == 1                     # empty password
        assert auth(home, b"Alice\0" + pw + b"\0\0").returncode == 1          # names are exact
        p = auth(home, b"alice\0" + pw + b"\0\0", argv=())                    # no subprogram
        assert p.returncode == 0, p.stderr
    finally:
        home.cleanup()


def test_disabled_and_unknown_user():
    home = users_home()
    try:
        pw = PASSWORD.encode()
        assert auth(home, b"bob\0" + pw + b"\0\0").returncode == 1
        assert auth(home, b"carol\0" + pw + b"\0\0").returncode == 1
        assert auth(home, b"\0" + pw + b"\0\0").returncode == 1
        assert auth(home, b"x" * 300 + b"\0" + pw + b"\0\0").returncode == 1
    finally:
        home.cleanup()


def test_cram_md5_rfc2195():
    home = users_home()
    try:
        r = auth(home, b"tim\0" + CRAM_DIGEST + b"\0" + CRAM_CHAL + b"\0")
        assert r.returncode == 0, (r.returncode, r.stderr)
        assert auth(home, b"tim\0" + CRAM_DIGEST.upper() + b"\0" + CRAM_CHAL + b"\0").returncode == 0
        bad = CRAM_DIGEST[:-1] + b"1"
        assert auth(home, b"tim\0" + bad + b"\0" + CRAM_CHAL + b"\0").returncode == 1
        other = CRAM_CHAL.replace(b"1896", b"1897")
        assert auth(home, b"tim\0" + CRAM_DIGEST + b"\0" + other + b"\0").returncode == 1
        assert auth(home, b"tim\0" + CRAM_DIGEST + b"\0\0").returncode == 1   # no challenge
        assert auth(home, b"alice\0" + CRAM_DIGEST + b"\0" + CRAM_CHAL + b"\0").returncode == 1
    finally:
        home.cleanup()


def test_apop_rfc1939():
    home = users_home()
    try:
        assert auth(home, b"alice\0" + APOP_DIGEST + b"\0" + APOP_STAMP + b"\0").returncode == 0
        assert auth(home, b"alice\0" + APOP_DIGEST + b"\0" + CRAM_CHAL + b"\0").returncode == 1
        assert auth(home, b"bob\0" + APOP_DIGEST + b"\0" + APOP_STAMP + b"\0").returncode == 1
        # the secret itself is not a password
        assert auth(home, b"alice\0tanstaaf\0" + APOP_STAMP + b"\0").returncode == 1
    finally:
        home.cleanup()


def test_malformed_and_oversized_input():
    home = users_home()
    try:
        pw = PASSWORD.encode()
        for data in (b"", b"alice", b"alice\0" + pw, b"\0"):
            p = auth(home, data)
            assert p.returncode == 2, (data, p.returncode)
            assert pw not in p.stderr
        big = b"alice\0" + pw + b"\0" + b"<" + b"x" * 600 + b">\0"
        p = auth(home, big)
        assert p.returncode == 2 and pw not in p.stderr and pw not in p.stdout
        # exactly 512 bytes is allowed; 513 is not
        head = b"alice\0" + pw + b"\0"
        assert auth(home, head + b"t" * (512 - len(head))).returncode == 0
        assert auth(home, head + b"t" * (513 - len(head))).returncode == 2
        # "possibly more data" after the timestamp is ignored
        assert auth(home, head + b"ts\0extra\0data").returncode == 0
        # without fd 3 at all: misuse
        e = {"PATH": "/usr/bin:/bin", "MXGATE_HOME": home.dir}
        p = subprocess.run([AUTHUSER, "true"], env=e, capture_output=True, timeout=30,
                           stdin=subprocess.DEVNULL, close_fds=True)
        assert p.returncode == 2
    finally:
        home.cleanup()


def test_subprogram_environment():
    home = users_home()
    try:
        md = home.path("maildirs")
        sh = script(home, "showenv", 'echo "args=$*"; echo "cwd=$(pwd)"; env\n')
        p = auth(home, b"alice\0" + PASSWORD.encode() + b"\0\0", argv=(sh, "one", "two"),
                 env={"TCPREMOTEIP": "127.0.0.1", "USER": "root", "HOME": "/root"})
        assert p.returncode == 0, p.stderr
        out = p.stdout.decode().splitlines()
        assert "args=one two" in out
        assert f"cwd={md}/alice" in out
        assert "USER=alice" in out
        assert f"HOME={md}/alice" in out
        assert f"MAILDIR={md}/alice/Maildir" in out
        assert "TCPREMOTEIP=127.0.0.1" in out          # the caller's environment stays
        assert not any(PASSWORD in l or "tanstaaf" in l for l in out)
        p = auth(home, b"tim\0" + CRAM_DIGEST + b"\0" + CRAM_CHAL + b"\0", argv=(sh,))
        assert p.returncode == 0
        assert f"MAILDIR={md}/alice/Maildir/" in p.stdout.decode().splitlines()
        # the subprogram's exit code is authuser's exit code
        fail = script(home, "fails", "exit 7\n")
        assert auth(home, b"alice\0" + PASSWORD.encode() + b"\0\0", argv=(fail,)).returncode == 7
    finally:
        home.cleanup()


def test_privilege_drop_as_root():
    if os.geteuid() != 0:
        return  # needs root: the drop is only attempted when running as root
    home = users_home()
    try:
        md = home.path("maildirs")
        h = make_hash()
        home.write("users", f"nob:{h}::65534:65534:{md}/alice:\n"
                            f"rooty:{h}::::{md}/alice:\n"
                            f"gone:{h}::65534:65534:{md}/nonexistent:\n", mode=0o600)
        sh = script(home, "ids", 'echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"; pwd\n')
        p = auth(home, b"nob\0" + PASSWORD.encode() + b"\0\0", argv=(sh,))
        assert p.returncode == 0, p.stderr
        assert p.stdout.decode().splitlines() == ["uid=65534 gid=65534 groups=65534", f"{md}/alice"]
        # no uid/gid configured: runs as the caller (documented)
        p = auth(home, b"rooty\0" + PASSWORD.encode() + b"\0\0", argv=(sh,))
        assert p.stdout.decode().splitlines()[0].startswith("uid=0 ")
        # a home that does not exist is a temporary problem, not a login
        p = auth(home, b"gone\0" + PASSWORD.encode() + b"\0\0", argv=(sh,))
        assert p.returncode == 111 and p.stdout == b""
        # with `true` nothing is run, so nothing can fail
        assert auth(home, b"gone\0" + PASSWORD.encode() + b"\0\0").returncode == 0
    finally:
        home.cleanup()


def test_temporary_failures():
    home = users_home()
    try:
        pw = PASSWORD.encode()
        os.unlink(os.path.join(home.control, "users"))
        p = auth(home, b"alice\0" + pw + b"\0\0")
        assert p.returncode == 111 and b"control/users" in p.stderr
        home.write("users", f"alice:{make_hash()}:s:::/h:\nalice has no colons {PASSWORD}\n")
        p = auth(home, b"alice\0" + pw + b"\0\0")
        assert p.returncode == 111 and b"line 2" in p.stderr
        assert pw not in p.stderr and b"alice has" not in p.stderr
        home.write("users", f"alice:{make_hash()}::::{home.dir}:\n")
        p = auth(home, b"alice\0" + pw + b"\0\0", argv=(home.path("no-such-program"),))
        assert p.returncode == 111 and b"subprogram" in p.stderr
    finally:
        home.cleanup()


def cdbmake(path, records):
    """users.cdb with tinycdb's cdb -c from (key, data) pairs"""
    src = b"".join(b"+%d,%d:%s->%s\n" % (len(k), len(d), k, d) for k, d in records) + b"\n"
    subprocess.run(["cdb", "-c", "-p", "0600", path], input=src, check=True, timeout=30)


def test_users_cdb_preferred():
    home = users_home()
    try:
        h = make_hash().encode()
        md = home.path("maildirs").encode()
        cdbmake(os.path.join(home.control, "users.cdb"), [
            (b"carol", b"carol:" + h + b":sec\\:ret:::" + md + b"/bob:"),
            (b"bob", b"!bob:" + h + b"::::" + md + b"/bob:"),
        ])
        pw = PASSWORD.encode()
        assert auth(home, b"carol\0" + pw + b"\0\0").returncode == 0
        assert auth(home, b"alice\0" + pw + b"\0\0").returncode == 1   # only in the text file
        assert auth(home, b"bob\0" + pw + b"\0\0").returncode == 1     # disabled in the cdb
        sh = script(home, "showenv", "env\n")
        p = auth(home, b"carol\0" + pw + b"\0\0", argv=(sh,))
        assert b"USER=carol" in p.stdout.splitlines()
        st = os.stat(os.path.join(home.control, "users.cdb"))
        assert stat.S_IMODE(st.st_mode) == 0o600
    finally:
        home.cleanup()


def test_hash_helper():
    h = make_hash("pass word with spaces")
    assert h.startswith("$y$")
    h6 = make_hash("pass word with spaces", "$6$")
    assert h6.startswith("$6$")
    home = users_home([f"u1:{h}::::/:", f"u6:{h6}::::/:"])
    try:
        assert auth(home, b"u1\0pass word with spaces\0\0").returncode == 0
        assert auth(home, b"u6\0pass word with spaces\0\0").returncode == 0
        assert auth(home, b"u6\0pass word with space\0\0").returncode == 1
    finally:
        home.cleanup()
    # two hashes of one password differ (fresh salt); bad input is refused
    assert make_hash("again") != subprocess.run([AUTHUSER, "--hash"], input=b"again\n",
                                                capture_output=True, timeout=60).stdout.decode().strip()
    p = subprocess.run([AUTHUSER, "--hash"], input=b"\n", capture_output=True, timeout=60)
    assert p.returncode == 2 and p.stdout == b""
    p = subprocess.run([AUTHUSER, "--hash", "$nope$"], input=b"pw\n", capture_output=True, timeout=60)
    assert p.returncode == 2 and p.stdout == b""
