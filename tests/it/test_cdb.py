"""mxgate-cdb: keys as SPEC.md section 2 says, read back with tinycdb's own
tool; line-numbered errors; the old cdb stays when the text is bad."""
import os, subprocess
import harness as h

CDB = h.prog("mxgate-cdb")


def run(home, *args):
    return subprocess.run([CDB] + list(args), env={"PATH": os.environ["PATH"], "MXGATE_HOME": home.dir},
                          capture_output=True, text=True)


def dump(path):
    """{key: data} from `cdb -d` (tinycdb), the independent reader"""
    out = subprocess.run(["cdb", "-d", path], capture_output=True, check=True).stdout
    res, i = {}, 0
    while i < len(out) and out[i:i + 1] == b"+":
        head, rest = out[i + 1:].split(b":", 1)
        kl, dl = (int(x) for x in head.split(b","))
        key, data = rest[:kl], rest[kl + 2:kl + 2 + dl]
        res[key.decode()] = data.decode()
        i += 1 + len(head) + 1 + kl + 2 + dl + 1
    return res


def test_each_kind_and_its_keys():
    home = h.Home()
    try:
        home.write("morercpthosts", "# ours\nExample.ORG\n\n.sub.example.net  \n")
        home.write("badmimetypes", "TVqQAAMAA  windows executable\nTVpQAAIAA\n")
        home.write("badloadertypes", "M35sZ\nTVpQA comment\n")
        home.write("mailfromrules", "192.0.2.&!\n=.Example.com&@example.com,boss@example.org\n")
        assert run(home, "morercpthosts").returncode == 0
        assert dump(home.path("control", "morercpthosts.cdb")) == {"example.org": "", ".sub.example.net": ""}
        assert run(home, "badmimetypes").returncode == 0
        assert dump(home.path("control", "badmimetypes.cdb")) == {"TVqQAAMAA": "", "TVpQAAIAA": ""}
        assert run(home, "badloadertypes").returncode == 0
        assert dump(home.path("control", "badloadertypes.cdb")) == {"M35sZ": "", "TVpQA": ""}
        assert run(home, "mailfromrules").returncode == 0
        assert dump(home.path("control", "mailfromrules.cdb")) == {"192.0.2.": "!",
                                                                  "=.example.com": "@example.com,boss@example.org"}
        rcpt = home.path("users-recipients")
        with open(rcpt, "w") as fh:
            fh.write("Alice@Example.TEST\n@catchall.test\n")
        assert run(home, "recipients", rcpt).returncode == 0
        assert dump(rcpt + ".cdb") == {":alice@example.test": "", ":@catchall.test": ""}
    finally:
        home.cleanup()


def test_users_kind_is_private_and_refuses_duplicates():
    home = h.Home()
    try:
        hashed = subprocess.run([h.prog("mxgate-authuser"), "--hash"], input="pw\n", capture_output=True,
                                text=True, check=True).stdout.strip()
        home.write("users", f"alice:{hashed}:sec:::/home/alice:\n", mode=0o600)
        r = run(home, "users")
        assert r.returncode == 0, r.stderr
        cdb = home.path("control", "users.cdb")
        assert oct(os.stat(cdb).st_mode & 0o777) == "0o600"
        assert list(dump(cdb)) == ["alice"]
        home.write("users", f"alice:{hashed}:sec:::/home/alice:\nalice:{hashed}::::/x:\n", mode=0o600)
        r = run(home, "users")
        assert r.returncode == 1 and "control/users:2: the user is listed twice" in r.stderr, r.stderr
    finally:
        home.cleanup()


def test_bad_line_names_file_and_line_and_keeps_the_old_cdb():
    home = h.Home()
    try:
        home.write("badmimetypes", "TVqQAAMAA\n")
        assert run(home, "badmimetypes").returncode == 0
        before = open(home.path("control", "badmimetypes.cdb"), "rb").read()
        home.write("badmimetypes", "TVqQAAMAA\n# fine\nshort\n")
        r = run(home, "badmimetypes")
        assert r.returncode == 1
        assert r.stderr == "mxgate-cdb: control/badmimetypes:3: a bad MIME type has 9 characters\n", r.stderr
        assert open(home.path("control", "badmimetypes.cdb"), "rb").read() == before
        assert not os.path.exists(home.path("control", "badmimetypes.cdb.tmp"))
        home.write("mailfromrules", "192.0.2.&!\nno ampersand here\n")
        r = run(home, "mailfromrules")
        assert r.stderr == "mxgate-cdb: control/mailfromrules:2: a rule is key&senders\n", r.stderr
        r = run(home, "nosuchkind")
        assert r.returncode == 2 and r.stderr.startswith("usage:")
        r = run(home, "morercpthosts")
        assert r.returncode == 1 and "control/morercpthosts: no such file" in r.stderr
    finally:
        home.cleanup()


def query(path, key):
    """(found, data) from `cdb -q` (tinycdb)"""
    r = subprocess.run(["cdb", "-q", path, key], capture_output=True)
    assert r.returncode in (0, 100), r
    return r.returncode == 0, r.stdout.decode()


def test_lookups_with_cdb_q_and_mailfromrules_ranges():
    home = h.Home()
    try:
        home.write("mailfromrules", "192.0.2.10-12&*\r\n=.Example.TEST&@example.test\n# comment\n\n")
        assert run(home, "mailfromrules").returncode == 0
        cdb = home.path("control", "mailfromrules.cdb")
        assert set(dump(cdb)) == {"192.0.2.10", "192.0.2.11", "192.0.2.12", "=.example.test"}
        assert query(cdb, "192.0.2.11") == (True, "*")
        assert query(cdb, "192.0.2.13") == (False, "")
        assert query(cdb, "=.example.test") == (True, "@example.test")
        home.write("morercpthosts", "Example.NET\n")
        assert run(home, "morercpthosts").returncode == 0
        assert query(home.path("control", "morercpthosts.cdb"), "example.net") == (True, "")
        assert query(home.path("control", "morercpthosts.cdb"), "Example.NET") == (False, "")
    finally:
        home.cleanup()


def test_empty_file_gives_an_empty_table_and_recipients_paths():
    home = h.Home()
    try:
        home.write("morercpthosts", "# nothing yet\n")
        assert run(home, "morercpthosts").returncode == 0
        assert dump(home.path("control", "morercpthosts.cdb")) == {}
        os.makedirs(home.path("users"))
        with open(home.path("users", "recipients"), "w") as fh:
            fh.write("bob@example.test\n")
        r = run(home, "recipients", "users/recipients")           # relative to $MXGATE_HOME
        assert r.returncode == 0, r.stderr
        assert dump(home.path("users", "recipients.cdb")) == {":bob@example.test": ""}
        r = run(home, "recipients")
        assert r.returncode == 2 and r.stderr.startswith("usage:")
    finally:
        home.cleanup()


def test_every_kind_reports_bad_lines_with_file_and_line():
    home = h.Home()
    try:
        rcpt = home.path("rcpts")
        with open(rcpt, "w") as fh:
            fh.write("ok@example.test\n\nalice @example.test\n")
        r = run(home, "recipients", rcpt)
        assert r.returncode == 1 and r.stderr == f"mxgate-cdb: {rcpt}:3: an address has no blanks\n", r.stderr
        assert not os.path.exists(rcpt + ".cdb") and not os.path.exists(rcpt + ".cdb.tmp")
        cases = [("badloadertypes", "M35sZ\nM35\n", "control/badloadertypes:2: a bad loader type has 5 characters"),
                 ("morercpthosts", "a.test\n# x\nb .test\n", "control/morercpthosts:3: a domain has no blanks"),
                 ("mailfromrules", "&x\n", "control/mailfromrules:1: a rule needs a key before '&'"),
                 ("mailfromrules", "192.0.2.9-1&*\n", "control/mailfromrules:1: a range is a.b.c.N-M with N <= M <= 255")]
        for kind, text, err in cases:
            home.write(kind, text)
            r = run(home, kind)
            assert r.returncode == 1 and r.stderr == f"mxgate-cdb: {err}\n", (kind, r.stderr)
            assert not os.path.exists(home.path("control", kind + ".cdb"))
    finally:
        home.cleanup()


def test_atomic_replace_readers_always_see_a_whole_table():
    """readers with `cdb -q` during 40 rebuilds between two versions of a
    big table: the key present in both is always found; no temp file stays"""
    import threading
    home = h.Home()
    try:
        cdb = home.path("control", "morercpthosts.cdb")
        versions = ["".join(f"host{i}.v{v}.test\n" for i in range(20000)) + "always.test\n" for v in (1, 2)]
        home.write("morercpthosts", versions[0])
        assert run(home, "morercpthosts").returncode == 0
        stop, misses, reads = threading.Event(), [], [0]

        def reader():
            while not stop.is_set():
                found, _ = query(cdb, "always.test")
                reads[0] += 1
                if not found:
                    misses.append(reads[0])
        readers = [threading.Thread(target=reader) for _ in range(2)]
        for t in readers:
            t.start()
        inodes = set()
        for n in range(40):
            home.write("morercpthosts", versions[n % 2])
            r = run(home, "morercpthosts")
            assert r.returncode == 0, r.stderr
            inodes.add(os.stat(cdb).st_ino)
        stop.set()
        for t in readers:
            t.join()
        assert misses == [] and reads[0] > 0, (misses, reads)
        assert len(inodes) > 1                                   # replaced by rename, not rewritten in place
        assert not os.path.exists(cdb + ".tmp")
        print(f"{reads[0]} reads during 40 rebuilds, none missed")
    finally:
        home.cleanup()


def test_concurrent_runs_and_a_stale_temp_file():
    home = h.Home()
    try:
        home.write("badmimetypes", "".join("TVqQAA%03d\n" % i for i in range(500)))
        tmp = home.path("control", "badmimetypes.cdb.tmp")
        with open(tmp, "w") as fh:                               # left by a crashed run
            fh.write("junk")
        assert run(home, "badmimetypes").returncode == 0
        assert not os.path.exists(tmp)
        env = {"PATH": os.environ["PATH"], "MXGATE_HOME": home.dir}
        for _ in range(10):              # (a run that let its lock go before its rename let the next empty its file)
            ps = [subprocess.Popen([CDB, "badmimetypes"], env=env, stderr=subprocess.PIPE, text=True)
                  for _ in range(6)]
            for p in ps:
                rc = p.wait(30)
                err = p.stderr.read()
                assert rc == 0 or (rc == 1 and "another mxgate-cdb is writing it" in err), (rc, err)
            assert len(dump(home.path("control", "badmimetypes.cdb"))) == 500
    finally:
        home.cleanup()
