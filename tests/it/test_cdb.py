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
