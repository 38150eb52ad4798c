"""Content checks in DATA: Bad_MIME / Bad_Loader with the cdbs, virus
scanning with the real clamd (EICAR-only database made here) and with a
QHPSI scanner command (clamscan), and the fault rule (451, never accepted
unscanned, never refused for a fault)."""
import base64, os, re, shutil, socket, subprocess, tempfile
import harness as h
import test_content_lib as t


def accepted(srv, pid, home, code, line):
    assert (code, line[:3]) == (250, "250"), line
    srv.wait_line(f"qmail-smtpd: pid {pid} Accept::DATA::Queued: S:127.0.0.1:unknown P:ESMTP H:client.test "
                  "F:sender@remote.test T:alice@example.test 'qp\\x20")
    h.wait_for(lambda: t.queued(home), what="queued message")


def refused(srv, pid, home, code, line, row, detail, reply):
    assert (code, line) == (int(reply[:3]), reply), line
    srv.wait_line(t.row_line(pid, row, detail))
    assert t.queued(home) == []


def run(env, message, setup=None, rules=None):
    home, qenv = t.home_with_queue()
    if setup:
        setup(home)
    env = dict(env, **qenv)
    srv = h.smtpd(home, env=env, rules=rules(home) if rules else None)
    try:
        code, line, pid, _ = t.transaction(srv, message)
        return srv, home, code, line, pid
    except BaseException:
        srv.stop(); home.cleanup()
        raise


def badmime_setup(home):
    t.make_cdb(home, "badmimetypes", [t.EXE_TYPE, "UEsDBBQAB"])


def test_bad_mime_exe_attachment():
    msg = t.mime_message([("Content-Type: text/plain", "see attachment"), t.b64_part(t.EXE, "a.exe")])
    srv, home, code, line, pid = run({"BADMIMETYPE": ""}, msg, badmime_setup)
    try:
        refused(srv, pid, home, code, line, "Reject::DATA::Bad_MIME", t.EXE_TYPE,
                "554 5.3.2 Message contains a forbidden MIME type")
    finally:
        srv.stop(); home.cleanup()


def test_bad_mime_nested_folded_uppercase_split_lines():
    """multipart inside multipart, folded Content-Type, upper-case header
    names, and the 9 characters split over 3 lines (CRLF on the wire, LF
    after data.c; CRLF inside the scanner is a unit test)"""
    text = base64.b64encode(t.EXE).decode()
    body = text[:4] + "\n" + text[4:7] + "\n" + text[7:76] + "\n" + text[76:]
    inner = ("CONTENT-TYPE: multipart/alternative;\n\tBOUNDARY=\"in ner\"\n\n--in ner\n"
             "Content-Type: text/plain\n\nhi\n--in ner\nCONTENT-TRANSFER-ENCODING: BASE64\n\n" + body + "\n--in ner--")
    msg = t.mime_message([("Content-Type: text/plain", "x"), (inner.split("\n\n", 1)[0], inner.split("\n\n", 1)[1])])
    srv, home, code, line, pid = run({"BADMIMETYPE": ""}, msg, badmime_setup)
    try:
        refused(srv, pid, home, code, line, "Reject::DATA::Bad_MIME", t.EXE_TYPE,
                "554 5.3.2 Message contains a forbidden MIME type")
    finally:
        srv.stop(); home.cleanup()


def test_bad_mime_off_with_minus_and_clean_attachment_passes():
    msg = t.mime_message([t.b64_part(t.EXE, "a.exe")])
    srv, home, code, line, pid = run({"BADMIMETYPE": "-"}, msg, badmime_setup)
    try:
        accepted(srv, pid, home, code, line)
    finally:
        srv.stop(); home.cleanup()
    msg = t.mime_message([t.b64_part(b"just a PDF-ish text, nothing to see", "a.txt")])
    srv, home, code, line, pid = run({"BADMIMETYPE": ""}, msg, badmime_setup)
    try:
        accepted(srv, pid, home, code, line)
    finally:
        srv.stop(); home.cleanup()


def test_bad_mime_plus_exempts_relay_clients():
    msg = t.mime_message([t.b64_part(t.EXE, "a.exe")])
    rules = lambda home: h.tcprules(home.path("rules.cdb"), '127.0.0.1:allow,RELAYCLIENT=""\n')
    srv, home, code, line, pid = run({"BADMIMETYPE": "+"}, msg, badmime_setup, rules)
    try:
        assert code == 250, line
        srv.wait_line(f"qmail-smtpd: pid {pid} Accept::DATA::Queued: ")
    finally:
        srv.stop(); home.cleanup()
    srv, home, code, line, pid = run({"BADMIMETYPE": "+"}, msg, badmime_setup)
    try:
        refused(srv, pid, home, code, line, "Reject::DATA::Bad_MIME", t.EXE_TYPE,
                "554 5.3.2 Message contains a forbidden MIME type")
    finally:
        srv.stop(); home.cleanup()


def test_bad_mime_bang_refuses_blanks_in_base64():
    text = base64.b64encode(b"hello world, some ordinary attachment text").decode()
    msg = t.mime_message([(t.b64_part(b"")[0], text[:10] + " " + text[10:])])
    srv, home, code, line, pid = run({"BADMIMETYPE": "!"}, msg, badmime_setup)
    try:
        refused(srv, pid, home, code, line, "Reject::DATA::Bad_MIME", text[3:10] + " " + text[10],
                "554 5.3.2 Message contains a forbidden MIME type")
    finally:
        srv.stop(); home.cleanup()


def loader_key():
    """a 5-character run starting with M that crosses a line break"""
    text = base64.b64encode(bytes(range(256)) * 8).decode()
    for i, ch in enumerate(text):
        if ch == "M" and i % 76 >= 72 and text[:9] != text[i:i + 9]:
            return text[i:i + 5]
    raise AssertionError("no run")


def test_bad_loader_across_lines():
    key = loader_key()
    msg = t.mime_message([("Content-Type: text/plain", "hi"), t.b64_part(bytes(range(256)) * 8, "x.dll")])
    setup = lambda home: t.make_cdb(home, "badloadertypes", [key, "MZZZZ"])
    srv, home, code, line, pid = run({"BADLOADERTYPE": "M"}, msg, setup)
    try:
        refused(srv, pid, home, code, line, "Reject::DATA::Bad_Loader", key,
                "554 5.3.2 Message contains a forbidden executable loader")
    finally:
        srv.stop(); home.cleanup()


def test_bad_loader_plus_exempts_relay_and_bad_value_is_421():
    key = loader_key()
    msg = t.mime_message([t.b64_part(bytes(range(256)) * 8, "x.dll")])
    setup = lambda home: t.make_cdb(home, "badloadertypes", [key])
    rules = lambda home: h.tcprules(home.path("rules.cdb"), '127.0.0.1:allow,RELAYCLIENT=""\n')
    srv, home, code, line, pid = run({"BADLOADERTYPE": "+M"}, msg, setup, rules)
    try:
        assert code == 250, line
    finally:
        srv.stop(); home.cleanup()
    home = h.Home()
    srv = h.smtpd(home, env={"BADLOADERTYPE": "MZ"})      # a bad setting: 421 at once, and why
    try:
        c = h.Client(srv.port)
        assert c.reply()[1] == ["421 4.3.5 Server configuration error; try again later"]
        srv.wait_line("mxgate-smtpd: fatal: BADLOADERTYPE: not one base64 character, '+' and one, or '-'")
    finally:
        srv.stop(); home.cleanup()


def eicar_attached():
    return t.mime_message([("Content-Type: text/plain", "a test file"), t.b64_part(t.EICAR, "eicar.com")])


def test_virus_clamd_tcp_attachment():
    cl = t.Clamd.shared()
    srv, home, code, line, pid = run({"CLAMD": f"127.0.0.1#{cl.port}"}, eicar_attached())
    try:
        refused(srv, pid, home, code, line, "Reject::DATA::Virus_Infected", "Eicar-Test-Body.UNOFFICIAL",
                "554 5.7.1 Message contains a virus")
    finally:
        srv.stop(); home.cleanup()


def test_virus_clamd_socket_inline_body_and_clean_passes():
    cl = t.Clamd.shared()
    msg = t.plain_message("Here it is inline:\n" + t.EICAR.decode() + "\n")
    srv, home, code, line, pid = run({"CLAMD": cl.sock}, msg)
    try:
        refused(srv, pid, home, code, line, "Reject::DATA::Virus_Infected", "Eicar-Test-Body.UNOFFICIAL",
                "554 5.7.1 Message contains a virus")
    finally:
        srv.stop(); home.cleanup()
    srv, home, code, line, pid = run({"CLAMD": cl.sock}, t.plain_message())
    try:
        accepted(srv, pid, home, code, line)
        assert t.queued(home)[0].endswith(b"Hello, this is a clean message.\n")
    finally:
        srv.stop(); home.cleanup()


def test_clamd_down_defers_never_accepts():
    dead = h.free_port()
    srv, home, code, line, pid = run({"CLAMD": f"127.0.0.1#{dead}"}, t.plain_message())
    try:
        refused(srv, pid, home, code, line, "Deferred::DATA::Scanner_Failure",
                f"clamd: cannot connect to 127.0.0.1#{dead}: Connection refused",
                "451 4.3.0 Temporary failure of the content scanner, please try again later")
    finally:
        srv.stop(); home.cleanup()


def test_base64_only_scans_messages_with_attachments():
    dead = h.free_port()
    env = {"CLAMD": f"127.0.0.1#{dead}", "BASE64": ""}
    srv, home, code, line, pid = run(env, t.plain_message())
    try:
        accepted(srv, pid, home, code, line)          # no base64 part: clamd not needed
    finally:
        srv.stop(); home.cleanup()
    srv, home, code, line, pid = run(env, eicar_attached())
    try:
        refused(srv, pid, home, code, line, "Deferred::DATA::Scanner_Failure",
                f"clamd: cannot connect to 127.0.0.1#{dead}: Connection refused",
                "451 4.3.0 Temporary failure of the content scanner, please try again later")
    finally:
        srv.stop(); home.cleanup()


def test_virus_qhpsi_scanner_command():
    cl = t.Clamd.shared()
    env = {"QHPSI": f"clamscan --no-summary -d {cl.db}"}
    srv, home, code, line, pid = run(env, eicar_attached())
    try:
        refused(srv, pid, home, code, line, "Reject::DATA::Virus_Infected", "clamscan",
                "554 5.7.1 Message contains a virus")
    finally:
        srv.stop(); home.cleanup()
    srv, home, code, line, pid = run(env, t.plain_message())
    try:
        accepted(srv, pid, home, code, line)
    finally:
        srv.stop(); home.cleanup()


def test_qhpsi_scanner_missing_or_failing_defers():
    for cmd, detail in (("/nonexistent/scanner -v", "QHPSI: cannot run /nonexistent/scanner: No such file or directory"),
                        ("false", None)):
        srv, home, code, line, pid = run({"QHPSI": cmd}, t.plain_message())
        try:
            # false exits 1: "infected" by the QHPSI convention
            if detail is None:
                refused(srv, pid, home, code, line, "Reject::DATA::Virus_Infected", "false",
                        "554 5.7.1 Message contains a virus")
            else:
                refused(srv, pid, home, code, line, "Deferred::DATA::Scanner_Failure", detail,
                        "451 4.3.0 Temporary failure of the content scanner, please try again later")
        finally:
            srv.stop(); home.cleanup()
    srv, home, code, line, pid = run({"QHPSI": "ls /nonexistent-mxgate-dir"}, t.plain_message())
    try:
        refused(srv, pid, home, code, line, "Deferred::DATA::Scanner_Failure", "QHPSI: ls exited 2",
                "451 4.3.0 Temporary failure of the content scanner, please try again later")
    finally:
        srv.stop(); home.cleanup()


def test_clamd_stream_limit_error_defers():
    """clamd's own refusal mid-stream (StreamMaxLength) is a fault: 451
    with clamd's words, even though our write failed first"""
    d = tempfile.mkdtemp(prefix="mxgate-clamd-small-")
    cl = t.Clamd.shared()
    sock = os.path.join(d, "clamd.sock")
    with open(os.path.join(d, "clamd.conf"), "w") as fh:
        fh.write(f"Foreground yes\nLocalSocket {sock}\nDatabaseDirectory {cl.db}\nLogFile {d}/clamd.log\n"
                 "User root\nStreamMaxLength 1M\n")
    proc = subprocess.Popen(["clamd", "-c", os.path.join(d, "clamd.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        h.wait_for(lambda: os.path.exists(sock), timeout=60, what="small clamd")
        msg = t.plain_message("clean text line\n" * 200000)          # 3.2 MB
        srv, home, code, line, pid = run({"CLAMD": sock, "CLAMD_MAXBYTES": "0"}, msg)
        try:
            refused(srv, pid, home, code, line, "Deferred::DATA::Scanner_Failure",
                    "clamd: answered 'INSTREAM size limit exceeded. ERROR'",
                    "451 4.3.0 Temporary failure of the content scanner, please try again later")
        finally:
            srv.stop(); home.cleanup()
        # with CLAMD_MAXBYTES below clamd's limit the first part is scanned and the message passes
        srv, home, code, line, pid = run({"CLAMD": sock, "CLAMD_MAXBYTES": "1000000"}, msg)
        try:
            accepted(srv, pid, home, code, line)
        finally:
            srv.stop(); home.cleanup()
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)


def test_qhpsi_clamdscan_fdpass_gets_a_real_file_and_leaves_none():
    """clamdscan skips symlinks such as /dev/fd/0 (and says OK): the spool
    file is given a real name for the scan, removed afterwards"""
    cl = t.Clamd.shared()
    tmp = tempfile.mkdtemp(prefix="mxgate-tmpdir-")
    conf = os.path.join(tmp, "clamdscan.conf")
    with open(conf, "w") as fh:
        fh.write(f"LocalSocket {cl.sock}\n")
    env = {"QHPSI": f"clamdscan --config-file={conf} --fdpass --no-summary", "TMPDIR": tmp}
    try:
        srv, home, code, line, pid = run(env, eicar_attached())
        try:
            refused(srv, pid, home, code, line, "Reject::DATA::Virus_Infected", "clamdscan",
                    "554 5.7.1 Message contains a virus")
        finally:
            srv.stop(); home.cleanup()
        srv, home, code, line, pid = run(env, t.plain_message())
        try:
            accepted(srv, pid, home, code, line)
        finally:
            srv.stop(); home.cleanup()
        assert os.listdir(tmp) == ["clamdscan.conf"], os.listdir(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_hung_scanners_time_out_to_a_deferral():
    """clamd or spamd that accept and never answer: 451 after the timeout"""
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    port = hung.getsockname()[1]
    try:
        for env, detail in (({"CLAMD": f"127.0.0.1#{port}", "CLAMD_TIMEOUT": "1"}, "clamd: read timeout"),
                            ({"SPAMD": f"127.0.0.1#{port}", "SPAMD_TIMEOUT": "1"}, "spamd: read timeout")):
            srv, home, code, line, pid = run(env, t.plain_message())
            try:
                refused(srv, pid, home, code, line, "Deferred::DATA::Scanner_Failure", detail,
                        "451 4.3.0 Temporary failure of the content scanner, please try again later")
            finally:
                srv.stop(); home.cleanup()
    finally:
        hung.close()
