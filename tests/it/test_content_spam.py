"""Spam scanning in DATA with the real spamd (SpamAssassin, -L) and the
GTUBE message: Reject::DATA::Spam_Message with 'score/threshold' as spamc
itself reports it, X-Spam-Status / X-Spam-Score on ham with SPAMHEADERS,
the spamc size limit, and the fault rule (spamd down: 451)."""
import re
import harness as h
import test_content_lib as t


def gtube():
    return t.plain_message("This is spam for testing.\n" + t.GTUBE + "\n", subject="buy now")


def run(env, message):
    home, qenv = t.home_with_queue()
    srv = h.smtpd(home, env=dict(env, **qenv))
    try:
        code, line, pid, _ = t.transaction(srv, message)
        return srv, home, code, line, pid
    except BaseException:
        srv.stop(); home.cleanup()
        raise


def test_spam_gtube_refused_with_score():
    sd = t.Spamd.shared()
    srv, home, code, line, pid = run({"SPAMD": f"127.0.0.1#{sd.port}"}, gtube())
    try:
        assert (code, line) == (554, "554 5.7.1 Message identified as spam"), line
        score = sd.score(gtube())
        assert re.fullmatch(r"10\d\d\.\d+/5\.0", score), score
        srv.wait_line(t.row_line(pid, "Reject::DATA::Spam_Message", score))
        assert t.queued(home) == []
    finally:
        srv.stop(); home.cleanup()


def test_ham_passes_with_spam_headers():
    sd = t.Spamd.shared()
    srv, home, code, line, pid = run({"SPAMD": f"127.0.0.1#{sd.port}", "SPAMHEADERS": ""}, t.plain_message())
    try:
        assert code == 250, line
        srv.wait_line(f"qmail-smtpd: pid {pid} Accept::DATA::Queued: ")
        msg = h.wait_for(lambda: t.queued(home), what="queued")[0].decode()
        score = sd.score(t.plain_message()).split("/")
        m = re.match(r"X-Spam-Status: No, score=(\S+) required=(\S+) tests=([A-Z0-9_,\n\t]*)\nX-Spam-Score: (\S+)\n"
                     r"Received: ", msg)
        assert m, msg[:600]
        got = [float(m.group(1)), float(m.group(2)), float(m.group(4))]
        assert got == [float(score[0]), float(score[1]), float(score[0])], (m.groups(), score)
        assert msg.endswith("\n\nHello, this is a clean message.\n")
    finally:
        srv.stop(); home.cleanup()


def test_ham_without_spamheaders_is_unchanged():
    sd = t.Spamd.shared()
    srv, home, code, line, pid = run({"SPAMD": f"127.0.0.1#{sd.port}"}, t.plain_message())
    try:
        assert code == 250, line
        msg = h.wait_for(lambda: t.queued(home), what="queued")[0]
        assert msg.startswith(b"Received: "), msg[:200]
        assert b"X-Spam-" not in msg
    finally:
        srv.stop(); home.cleanup()


def test_spam_over_size_limit_passes_unscanned_like_spamc():
    sd = t.Spamd.shared()
    big = t.plain_message(t.GTUBE + "\n" + ("filler line of text\n" * 4000))
    srv, home, code, line, pid = run({"SPAMD": f"127.0.0.1#{sd.port}", "SPAMD_MAXBYTES": "10000"}, big)
    try:
        assert code == 250, line
    finally:
        srv.stop(); home.cleanup()


def test_spamd_down_defers():
    dead = h.free_port()
    srv, home, code, line, pid = run({"SPAMD": f"127.0.0.1#{dead}"}, gtube())
    try:
        assert (code, line) == (451, "451 4.3.0 Temporary failure of the content scanner, please try again later")
        srv.wait_line(t.row_line(pid, "Deferred::DATA::Scanner_Failure",
                                 f"spamd: cannot connect to 127.0.0.1#{dead}: Connection refused"))
        assert t.queued(home) == []
    finally:
        srv.stop(); home.cleanup()


def test_spamd_not_speaking_the_protocol_defers():
    """a partner that answers nonsense (here: clamd's port) is a fault"""
    cl = t.Clamd.shared()
    srv, home, code, line, pid = run({"SPAMD": f"127.0.0.1#{cl.port}"}, t.plain_message())
    try:
        assert code == 451, line
        assert re.search(rf"qmail-smtpd: pid {pid} Deferred::DATA::Scanner_Failure: .* 'spamd:", srv.log()), srv.log()
    finally:
        srv.stop(); home.cleanup()
