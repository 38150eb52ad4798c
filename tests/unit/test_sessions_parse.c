/* test_sessions_parse.c -- the log line parser and the session join of
 * mxgate-sessions, on every line form it reads, and on hostile lines. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <stdlib.h>
#include "sessions.h"

static struct logline L(const char *s)
{
  struct logline l;
  parse_line(s, strlen(s), &l, NULL);
  return l;
}

static void field(const struct logline *l, int k, const char *want)
{
  char buf[600];
  unescape(l->f[k] ? l->f[k] : "", l->f[k] ? l->flen[k] : 0, buf, sizeof buf);
  assert_string_equal(buf, want);
}

static void test_tcpserver_lines(void **st)
{
  (void)st;
  struct logline l = L("@400000006563a2b10a1b2c3d tcpserver: pid 4711 from 192.0.2.7");
  assert_int_equal(l.kind, L_OPEN);
  assert_int_equal(l.pid, 4711);
  assert_true(l.ts > 1700000000 && l.ts < 1800000000);
  l = L("tcpserver: ok 4711 0:127.0.0.1:25 :192.0.2.7::56772");
  assert_int_equal(l.kind, L_OK);
  l = L("tcpserver: end 4711 status 256");
  assert_int_equal(l.kind, L_END);
  assert_int_equal(l.status, 256);
  assert_int_equal(L("tcpserver: status: 1/40").kind, L_STATUS);
  assert_int_equal(L("sslserver: deny 9 0:127.0.0.1:465 :10.0.0.1::1").kind, L_DENY);
  l = L("rblsmtpd: 192.0.2.7 pid 4711: 451 listed");
  assert_int_equal(l.kind, L_RBL);
  assert_int_equal(l.pid, 4711);
}

/* a reader's memo of the last TAI64N second gives the same times as none,
 * within a second, across seconds and after a line without a stamp */
static void test_tai64n_memo(void **st)
{
  (void)st;
  static const char *lines[] = {
    "@400000006563a2b10a1b2c3d tcpserver: pid 1 from 192.0.2.7",
    "@400000006563a2b13b9ac9ff tcpserver: end 1 status 0",
    "@400000006563a2b20000000a tcpserver: pid 2 from 192.0.2.8",
    "tcpserver: end 2 status 0",
    "@400000006563a2b1000003e8 tcpserver: pid 3 from 192.0.2.9",
    "@400000006563a2b1 short",
  };
  struct parse_memo memo = { { 0 }, 0, false };
  for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
    struct logline with, without;
    bool a = parse_line(lines[i], strlen(lines[i]), &with, &memo), b = parse_line(lines[i], strlen(lines[i]), &without, NULL);
    assert_int_equal(a, b);
    assert_true(with.ts == without.ts);
  }
  assert_true(L(lines[1]).ts - L(lines[0]).ts > 0.8 && L(lines[2]).ts - L(lines[1]).ts < 0.01);
  /* when only counting, a stamp is read to its second */
  struct parse_memo secs = { .seconds = true };
  for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
    struct logline whole, exact;
    bool a = parse_line(lines[i], strlen(lines[i]), &whole, &secs), b = parse_line(lines[i], strlen(lines[i]), &exact, NULL);
    assert_int_equal(a, b);
    assert_true(whole.ts == (double)(long long)whole.ts);        /* the second (a double rounds .999999999 up) */
    assert_true(exact.ts - whole.ts >= 0 && exact.ts - whole.ts <= 1);
  }
}

/* pids and statuses of every length, with what may follow them */
static void test_numbers(void **st)
{
  (void)st;
  const char *tails[] = { "", " status 0", "x", "\xff", "/", ":", "9", "\xff\xff\xff\xff\xff\xff\xff\xff", "~abcdefgh", ":abcdefgh", "/abcdefgh" };
  for (int digits = 1; digits <= 20; digits++)
    for (size_t k = 0; k < sizeof tails / sizeof *tails; k++) {
      char line[80], pid[24];
      for (int i = 0; i < digits; i++) pid[i] = (char)('0' + (i * 7 + digits) % 10);
      pid[digits] = 0;
      snprintf(line, sizeof line, "tcpserver: end %s status %s%s", pid, pid, tails[k]);
      long want = 0;
      for (int i = 0; i < digits && i < 15; i++) want = want * 10 + (pid[i] - '0');
      long want_status = want;
      if (k == 6 && digits < 15) want_status = want * 10 + 9;                        /* "9" is one more digit */
      struct logline l;
      assert_true(parse_line(line, strlen(line), &l, NULL));
      assert_int_equal(l.kind, L_END);
      assert_int_equal(l.pid, want);
      assert_int_equal(l.status, want_status);
    }
}

static void test_decision_layouts(void **st)
{
  (void)st;
  struct logline l = L("2026-11-24T10:00:00.5Z qmail-smtpd: pid 12 Reject::RCPT::Failed_Rcptto: S:2001:db8::7:mx.peer.test "
                       "P:ESMTPS H:a\\x20b F: T:x@y.test 'det\\x27ail'");
  assert_int_equal(l.kind, L_DECISION);
  assert_int_equal(l.pid, 12);
  assert_true(l.ts == 1795514400.5);
  field(&l, F_IP, "2001:db8::7");
  field(&l, F_SHOST, "mx.peer.test");
  field(&l, F_PROTO, "ESMTPS");
  field(&l, F_HELO, "a b");
  field(&l, F_FROM, "");
  field(&l, F_TO, "x@y.test");
  field(&l, F_DETAIL, "det'ail");
  assert_true(l.escaped);                               /* H: has one */
  assert_true(l.detail_escaped);
  /* escapes only in the detail (a queued message's qp): the other fields need no unescaping */
  l = L("qmail-smtpd: pid 12 Accept::DATA::Queued: S:192.0.2.1:unknown P:ESMTP F:a@b T:c@d 'qp\\x201\\x20bytes\\x202'");
  assert_false(l.escaped);
  assert_true(l.detail_escaped);
  l = L("qmail-smtpd: pid 12 Accept::DATA::Queued: S:192.0.2.1:unknown P:ESMTP 'qp' T:c\\x40d");
  assert_true(l.escaped);                               /* after the detail */
  assert_false(l.detail_escaped);
  /* s/qmail's own layout: no colon after the row, P: before S: */
  l = L("qmail-smtpd: pid 13 Reject::ORIG::Bad_Mailfrom P:ESMTP S:192.0.2.1:unknown H:h F:a@b T:c@d");
  assert_int_equal(l.kind, L_DECISION);
  assert_memory_equal(l.row, "Reject::ORIG::Bad_Mailfrom", l.rowlen);
  field(&l, F_IP, "192.0.2.1");
  l = L("qmail-popup: pid 14 Accept::AUTH::User: S:127.0.0.1:unknown P:POP3 ?~ 'alice'");
  field(&l, F_USER, "alice");
}

static void test_syslog_prefixes(void **st)
{
  (void)st;
  struct logline l = L("Nov 24 19:16:33 mailhost tcpserver[123]: tcpserver: pid 4711 from 192.0.2.7");
  assert_int_equal(l.kind, L_OPEN);
  assert_int_equal(l.hostlen, 8);
  assert_memory_equal(l.host, "mailhost", 8);
  l = L("<22>1 2026-11-24T19:16:33.001+01:00 relay2 qmail-smtpd 99 - - qmail-smtpd: pid 99 Accept::DATA::Queued: "
        "S:1.2.3.4:unknown P:SMTP 'qp\\x201\\x20bytes\\x202'");
  assert_int_equal(l.kind, L_DECISION);
  assert_memory_equal(l.host, "relay2", 6);
  assert_true(l.ts > 1795500000);
}

static void test_hostile_lines(void **st)
{
  (void)st;
  char big[1 << 16];
  memset(big, 'A', sizeof big);
  struct logline l;
  assert_false(parse_line(big, sizeof big, &l, NULL));
  assert_false(parse_line("qmail-smtpd: pid", 16, &l, NULL));
  assert_false(parse_line("qmail-smtpd: pid 5 \0\0\0", 22, &l, NULL));
  assert_false(parse_line("\xff\xfe\x00garbage", 10, &l, NULL));
  assert_false(parse_line("@4000", 5, &l, NULL));
  assert_false(parse_line("", 0, &l, NULL));
  char *exact = malloc(11);                          /* found by the fuzzer: nothing after the program */
  memcpy(exact, "tcpserver: ", 11);
  assert_false(parse_line(exact, 11, &l, NULL));
  free(exact);
  /* found by the fuzzer: a pid longer than a long, an RFC 5424 prefix that
   * ends in spaces, an ok line without its remote part */
  const char *longpid = "qmail-smtpd: pid 77777777777777777777777777 Accept::X::Y: S:1";
  assert_true(parse_line(longpid, strlen(longpid), &l, NULL));
  assert_true(l.pid > 0);
  char syslog5424[] = { '<', '1', '>', '1', ' ', 'h', ' ', 'a', ' ', 'p', ' ', 'm', ' ', ' ' };
  parse_line(syslog5424, sizeof syslog5424, &l, NULL);
  struct report r = { .out = fopen("/dev/null", "w"), .format = FMT_JSON };
  struct table *t = table_new();
  assert_true(parse_line("tcpserver: ok 5 0:127.0.0.1:25", 30, &l, NULL));
  table_line(t, &l, &r);
  table_flush(t, &r);
  table_free(t);
  fclose(r.out);
  /* found by the fuzzer: a time zone whose minutes run on (4000000006 * 60
   * overflowed); an ISO or syslog stamp's numbers are of their digits only */
  const char *zone = "<22>1 2026-11-24T19:16:33.001+01:004000000006 app 99 - - tcpserver: end 9 status 0";
  assert_true(parse_line(zone, strlen(zone), &l, NULL));
  assert_true(l.ts > 1795544193.0 && l.ts < 1795544193.002);           /* 18:16:33.001 UTC */
  const char *secs = "2026-11-24T19:16:3399999999999 tcpserver: end 9 status 0";
  assert_false(parse_line(secs, strlen(secs), &l, NULL));               /* no stamp: "2026-..." is no message */
  const char *sys = "Nov 24 19:16:x3 mailhost tcpserver[1]: tcpserver: end 9 status 0";
  parse_line(sys, strlen(sys), &l, NULL);
  assert_int_equal(l.hostlen, 0);                                        /* not read as a syslog prefix */
  char out[8];
  assert_int_equal(unescape("\\x41\\x4", 7, out, sizeof out), 4);  /* a cut escape stays as it is */
  assert_string_equal(out, "A\\x4");
}

static void feed(struct table *t, struct report *r, const char *s)
{
  struct logline l;
  if (parse_line(s, strlen(s), &l, NULL)) table_line(t, &l, r);
}

/* escaped fields are kept unescaped, whichever line brought them: the
 * client host and port of an ok line (whose escapes the parser leaves to
 * the keeping), the IP of an open line, a decision's fields and detail */
static void test_escaped_fields_kept_unescaped(void **st)
{
  (void)st;
  char *buf = NULL;
  size_t len = 0;
  FILE *o = open_memstream(&buf, &len);
  struct report r = { .out = o, .format = FMT_JSON };
  struct table *t = table_new();
  feed(t, &r, "tcpserver: pid 9 from 10.0.0.\\x39");
  feed(t, &r, "tcpserver: ok 9 0:127.0.0.1:25 mx\\x20x:10.0.0.9::56\\x37");
  feed(t, &r, "qmail-smtpd: pid 9 Accept::DATA::Queued: S:10.0.0.9:unknown P:ESMTP H:a\\x20b F:a@b T:c@d "
              "'qp\\x201\\x20bytes\\x202'");
  feed(t, &r, "tcpserver: end 9 status 0");
  table_flush(t, &r);
  table_free(t);
  fclose(o);
  assert_non_null(strstr(buf, "\"client_host\":\"mx x\""));
  assert_non_null(strstr(buf, "\"ip\":\"10.0.0.9\""));
  assert_non_null(strstr(buf, "\"port\":\"567\""));
  assert_non_null(strstr(buf, "\"helo\":\"a b\""));
  assert_non_null(strstr(buf, "qp 1 bytes 2"));
  assert_null(strstr(buf, "\\\\x"));
  free(buf);
}

static void test_join_reuse_and_partial(void **st)
{
  (void)st;
  struct report r = { .out = fopen("/dev/null", "w"), .format = FMT_JSON, .sum = summary_new(false) };
  struct table *t = table_new();
  feed(t, &r, "tcpserver: pid 7 from 10.0.0.1");
  feed(t, &r, "qmail-smtpd: pid 7 Accept::RCPT::Rcpthosts_Rcptto: S:10.0.0.1:unknown P:ESMTP H:a F:b T:c");
  feed(t, &r, "tcpserver: pid 8 from 10.0.0.2");                   /* interleaved */
  feed(t, &r, "tcpserver: end 7 status 0");
  assert_int_equal(r.sessions, 1);
  feed(t, &r, "tcpserver: pid 8 from 10.0.0.3");                   /* 8 reused before its end: old one partial */
  assert_int_equal(r.sessions, 2);
  assert_int_equal(r.partial, 1);
  feed(t, &r, "qmail-smtpd: pid 9 Reject::SNDR::Invalid_Relay: S:10.0.0.9:unknown P:SMTP H:x F:y T:z");  /* no open */
  table_flush(t, &r);
  assert_int_equal(r.sessions, 4);
  assert_int_equal(r.partial, 3);
  table_free(t);
  summary_free(r.sum);
  fclose(r.out);
}

/* the log the chunk tests cut everywhere: sessions across every cut, a pid
 * reused, lines before an open, an rblsmtpd verdict, a session idle past
 * IDLE_LIMIT, a pid whose first line in a later chunk is a new open */
static const char *chunk_log[] = {
  "2026-11-24T10:00:00Z tcpserver: pid 7 from 10.0.0.1",
  "2026-11-24T10:00:01Z tcpserver: ok 7 0:127.0.0.1:25 :10.0.0.1::4000",
  "2026-11-24T10:00:01Z tcpserver: pid 8 from 10.0.0.2",
  "2026-11-24T10:00:02Z qmail-smtpd: pid 7 Accept::AUTH::plain: S:10.0.0.1:unknown P:ESMTPA ?~ 'alice'",
  "2026-11-24T10:00:02Z rblsmtpd: 10.0.0.2 pid 8: 451 listed",
  "2026-11-24T10:00:03Z qmail-smtpd: pid 9 Reject::SNDR::Invalid_Relay: S:10.0.0.9:unknown P:SMTP H:x F:y@s.test T:z",
  "2026-11-24T10:00:03Z qmail-smtpd: pid 7 Accept::RCPT::Rcpthosts_Rcptto: S:10.0.0.1:unknown P:ESMTPA H:a F:b@c T:d@e",
  "2026-11-24T10:00:04Z tcpserver: end 8 status 0",
  "2026-11-24T10:00:04Z qmail-smtpd: pid 7 Accept::DATA::Queued: S:10.0.0.1:unknown P:ESMTPA 'qp\\x201'",
  "2026-11-24T10:00:05Z tcpserver: pid 8 from 10.0.0.3",
  "2026-11-24T10:00:05Z qmail-smtpd: pid 8 Reject::RCPT::Failed_Rcptto: S:10.0.0.3:unknown P:ESMTPS H:h F:f@g T:n@e",
  "2026-11-24T10:00:06Z tcpserver: end 7 status 0",
  "2026-11-24T10:00:06Z tcpserver: pid 10 from 10.0.0.10",
  "2026-11-24T12:00:00Z qmail-smtpd: pid 10 Deferred::GREY::Grey_Listed: S:10.0.0.10:unknown P:SMTP H:g F:a@b T:c@d",
  "2026-11-24T12:00:01Z tcpserver: pid 7 from 10.0.0.7",
  "2026-11-24T12:00:02Z tcpserver: end 10 status 256",
  "2026-11-24T12:00:03Z qmail-smtpd: pid 8 Accept::DATA::Queued: S:10.0.0.3:unknown P:ESMTPS 'qp\\x202'",
  "2026-11-24T12:00:04Z tcpserver: end 8 status 0",
  /* a decision naming another client than the open line: the open line's stays the session's */
  "2026-11-24T12:00:05Z tcpserver: pid 11 from 10.0.0.11",
  "2026-11-24T12:00:06Z qmail-smtpd: pid 11 Reject::RCPT::Failed_Rcptto: S:10.9.9.9:other.test P:ESMTP H:h F:a@b T:x@e",
  "2026-11-24T12:00:07Z tcpserver: end 11 status 0",
};
#define CHUNK_LINES (sizeof chunk_log / sizeof *chunk_log)

static int by_line(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* what a run printed, lines sorted (chunks report sessions in another order) */
static char *sorted_output(char *buf)
{
  char *lines[128];
  size_t n = 0;
  for (char *p = strtok(buf, "\n"); p; p = strtok(NULL, "\n")) { assert_true(n < 128); lines[n++] = p; }
  qsort(lines, n, sizeof *lines, by_line);
  size_t len = 0;
  for (size_t i = 0; i < n; i++) len += strlen(lines[i]) + 1;
  char *out = calloc(1, len + 1);
  for (size_t i = 0; i < n; i++) { strcat(out, lines[i]); strcat(out, "\n"); }
  return out;
}

/* lines [0, cuts[0]), [cuts[0], cuts[1]), ... each in a table of its own, merged in order */
static char *run_chunks(const size_t *cuts, size_t ncuts, bool stream)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *o = open_memstream(&buf, &len);
  struct report r = { .out = o, .format = FMT_JSON, .sum = summary_new(false), .quiet = stream, .stream = stream };
  struct table *t = table_new();
  size_t from = 0;
  for (size_t c = 0; c <= ncuts; c++) {
    size_t to = c < ncuts ? cuts[c] : CHUNK_LINES;
    struct table *ct = c ? table_new_chunk() : t;
    struct report cr = r;
    cr.sessions = cr.partial = 0;
    if (c) cr.sum = summary_new(false);
    for (size_t i = from; i < to; i++) feed(ct, c ? &cr : &r, chunk_log[i]);
    if (c) {
      table_merge(t, ct, &r);
      table_free(ct);
      r.sessions += cr.sessions; r.partial += cr.partial;
      summary_merge(r.sum, cr.sum);
    }
    from = to;
  }
  table_flush(t, &r);
  table_free(t);
  fprintf(o, "sessions %lu partial %lu\n", r.sessions, r.partial);
  summary_print(r.sum, &r, o);
  summary_free(r.sum);
  fclose(o);
  char *out = sorted_output(buf);
  free(buf);
  return out;
}

static void test_chunks_join_as_one_log(void **st)
{
  (void)st;
  for (int stream = 0; stream < 2; stream++) {
    char *whole = run_chunks(NULL, 0, stream);
    for (size_t a = 1; a < CHUNK_LINES; a++) {
      char *two = run_chunks(&a, 1, stream);
      assert_string_equal(two, whole);
      free(two);
      for (size_t b = a + 1; b < CHUNK_LINES; b++) {
        size_t cuts[2] = { a, b };
        char *three = run_chunks(cuts, 2, stream);
        assert_string_equal(three, whole);
        free(three);
      }
    }
    free(whole);
  }
}

/* the summary of a log read line by line, counting as read or not */
static char *summary_of(void (*write)(struct table *, struct report *), bool stream, bool prometheus)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *o = open_memstream(&buf, &len);
  struct report r = { .out = o, .sum = summary_new(false), .quiet = true, .stream = stream };
  struct table *t = table_new();
  write(t, &r);
  table_flush(t, &r);
  table_free(t);
  if (prometheus) summary_prometheus(r.sum, &r, o);
  else summary_print(r.sum, &r, o);
  summary_free(r.sum);
  fclose(o);
  return buf;
}

/* refusals from three clients: a whole session, one without its end, one without either */
static void refusals(struct table *t, struct report *r)
{
  static const char *log[] = {
    "tcpserver: pid 5 from 10.0.0.5",
    "qmail-smtpd: pid 5 Reject::RCPT::Failed_Rcptto: S:10.0.0.5:unknown P:ESMTP H:h F:a@s.test T:x@e",
    "qmail-smtpd: pid 5 Reject::RCPT::Failed_Rcptto: S:10.0.0.5:unknown P:ESMTP H:h F:a@s.test T:y@e",
    "tcpserver: pid 6 from 10.0.0.6",
    "qmail-smtpd: pid 6 Reject::SNDR::Invalid_Relay: S:10.0.0.6:unknown P:SMTP H:h F:b@t.test T:z@f",
    "qmail-smtpd: pid 5 Accept::RCPT::Rcpthosts_Rcptto: S:10.0.0.5:unknown P:ESMTP H:h F:a@s.test T:u@e",
    "qmail-smtpd: pid 5 Reject::DATA::Bare_LF: S:10.0.0.5:unknown P:ESMTP H:h F:a@s.test T:u@e",
    "tcpserver: end 5 status 0",
    "qmail-smtpd: pid 9 Reject::SNDR::Invalid_Relay: S:10.0.0.9:unknown P:SMTP H:h F:c@t.test T:z@f",
  };
  for (size_t i = 0; i < sizeof log / sizeof *log; i++) feed(t, r, log[i]);
}

/* the summary's rejections by client IP: every refusal counts once, for
 * the session's IP, whether decisions are counted as read or at the end */
static void test_rejections_by_ip(void **st)
{
  (void)st;
  for (int stream = 0; stream < 2; stream++) {
    char *buf = summary_of(refusals, stream, false);
    const char *list = strstr(buf, "rejections by client IP\n");
    assert_non_null(list);
    assert_non_null(strstr(list, "\n         3  10.0.0.5\n         1  10.0.0.6\n         1  10.0.0.9\n"));
    free(buf);
  }
}

/* 300 rows, more than the row cache has slots, met in turn so that rows
 * sharing a slot push each other out; the AUTH and queued rows among them */
static void many_rows(struct table *t, struct report *r)
{
  char line[200];
  feed(t, r, "tcpserver: pid 7 from 10.0.0.7");
  for (int round = 0; round < 7; round++)
    for (int i = 0; i < 300; i++)
      if (round <= i % 7) {
        snprintf(line, sizeof line, "qmail-smtpd: pid 7 Accept::T%d::C%d: S:10.0.0.7:unknown P:ESMTP H:h F:a@b T:c@d", i, i);
        feed(t, r, line);
      }
  feed(t, r, "qmail-smtpd: pid 7 Accept::AUTH::plain: S:10.0.0.7:unknown P:ESMTPSA H:h ?~ 'alice'");
  feed(t, r, "qmail-smtpd: pid 7 Reject::AUTH::plain: S:10.0.0.7:unknown P:ESMTPSA H:h ?~ 'bob'");
  feed(t, r, "qmail-smtpd: pid 7 Accept::DATA::Queued: S:10.0.0.7:unknown P:ESMTPSA H:h F:a@b T:c@d 'qp 9'");
  feed(t, r, "tcpserver: end 7 status 0");
}

/* a row per session past the rows map's 100,000: the new ones are
 * "(other)", the ones it holds are still counted */
static void too_many_rows(struct table *t, struct report *r)
{
  char line[200];
  for (int i = 0; i < 100004; i++) {
    feed(t, r, "tcpserver: pid 8 from 10.0.0.8");
    snprintf(line, sizeof line, "qmail-smtpd: pid 8 Reject::R%d::C: S:10.0.0.8:unknown P:ESMTP H:h F:a@b T:c@d",
             i < 100003 ? i : 5);
    feed(t, r, line);
    if (i >= 100000) feed(t, r, line);                    /* twice: "(other)" each time, or R5 twice */
    feed(t, r, "tcpserver: end 8 status 0");
  }
}

/* the summary's row counts, through its cache of rows: exact for every row
 * whichever rows share a cache slot, as read or from the kept events; what
 * each row is (a login, a queued message) told right */
static void test_rows_counted_through_cache(void **st)
{
  (void)st;
  for (int stream = 0; stream < 2; stream++) {
    char *prom = summary_of(many_rows, stream, true), *text = summary_of(many_rows, stream, false);
    char want[200];
    for (int i = 0; i < 300; i++) {
      snprintf(want, sizeof want, "{action=\"Accept\",type=\"T%d\",condition=\"C%d\"} %d\n", i, i, i % 7 + 1);
      assert_non_null(strstr(prom, want));
    }
    assert_non_null(strstr(prom, "mxgate_sessions_total{outcome=\"accepted\"} 1\n"));
    assert_non_null(strstr(text, "\n         1 / 0         alice\n         0 / 1         bob\n"));
    assert_non_null(strstr(text, "decisions: 1199 Accept, 1 Reject, 0 Deferred"));    /* 1197 + the login + the queued */
    free(prom);
    free(text);
    text = summary_of(too_many_rows, stream, false);
    assert_non_null(strstr(text, "         3  Reject::R5::C\n"));
    assert_non_null(strstr(text, "         6  (other)\n"));
    free(text);
  }
}

/* the same fields, as offsets from each line's start: those of the line's
 * kind (the parser sets no others) */
static void same_parse(const struct logline *a, const char *la, const struct logline *b, const char *lb)
{
  assert_int_equal(a->kind, b->kind);
  assert_int_equal(a->pid, b->pid);
  if (a->kind == L_END) assert_int_equal(a->status, b->status);
  assert_int_equal(a->escaped, b->escaped);
  if (a->kind == L_DECISION) assert_int_equal(a->detail_escaped, b->detail_escaped);
  assert_true(a->ts == b->ts);
  const char *pa[] = { a->a, a->b, a->row, a->f[0], a->f[1], a->f[2], a->f[3], a->f[4], a->f[5], a->f[6], a->f[7] };
  const char *pb[] = { b->a, b->b, b->row, b->f[0], b->f[1], b->f[2], b->f[3], b->f[4], b->f[5], b->f[6], b->f[7] };
  size_t na[] = { a->alen, a->blen, a->rowlen, a->flen[0], a->flen[1], a->flen[2], a->flen[3], a->flen[4], a->flen[5],
                  a->flen[6], a->flen[7] };
  size_t nb[] = { b->alen, b->blen, b->rowlen, b->flen[0], b->flen[1], b->flen[2], b->flen[3], b->flen[4], b->flen[5],
                  b->flen[6], b->flen[7] };
  bool has[] = { a->kind == L_OPEN || a->kind == L_OK || a->kind == L_DENY || a->kind == L_RBL || a->kind == L_WARNING,
                 a->kind == L_OK || a->kind == L_DENY || a->kind == L_RBL,
                 a->kind == L_DECISION };                 /* a, b, row; f[] as row */
  for (size_t i = 0; i < sizeof pa / sizeof *pa; i++) {
    if (!has[i < 3 ? i : 2]) continue;
    assert_int_equal(pa[i] == NULL, pb[i] == NULL);
    if (pa[i]) { assert_int_equal(pa[i] - la, pb[i] - lb); assert_int_equal(na[i], nb[i]); }
  }
}

/* a line inside a scanned block, starting at every byte of a 64-byte word
 * and ending in a newline, in CR LF (the CR not given to the parser, as
 * the reader strips it) or at the block's end, parses as it does alone:
 * fields split at the index's bits, escapes seen in its backslash bits
 * (on either side of a word's edge), never beyond the line */
static void test_scanned_block_parses_as_alone(void **st)
{
  (void)st;
  static const char *lines[] = {
    "@400000006563a2b10a1b2c3d qmail-smtpd: pid 17 Accept::RCPT::Rcpthosts_Rcptto: S:192.0.2.7:mx.test P:ESMTPS "
    "H:mx.example.test F:alice@example.test T:bob@example.test 'qp\\x2012'",
    "qmail-smtpd: pid 5 Reject::AUTH::cram-md5:   S:10.0.0.1:unknown  P:ESMTP ?~   'bo\\x20b' H:x",
    "qmail-smtpd 5: Reject::RCPT::Failed_Rcptto P:ESMTP S:10.0.0.1:unknown H:h F:a@b T:c\\x0a@d ?~",
    "tcpserver: ok 4711 0:127.0.0.1:25 mx\\x20x:192.0.2.7::56772",
    "tcpserver: pid 4711 from 192.0.2.7",
    "rblsmtpd: 192.0.2.7 pid 4711: 451 listed\\",
    "\\",
    "tcpserver: end 4711 status 256",
  };
  char block[1024];
  int best = scan_level(-1);
  for (int level = 0; level <= best; level++)           /* every vector code this CPU runs */
  for (size_t i = 0; i < sizeof lines / sizeof *lines && scan_level(level) == level; i++) {
    size_t n = strlen(lines[i]);
    for (size_t at = 0; at < 64; at++) {
      for (int last = 0; last < 3; last++) {                   /* LF, CR LF, the block's end */
        memset(block, ' ', at);
        if (at) block[at - 1] = '\n';
        memcpy(block + at, lines[i], n);
        size_t len = at + n;
        if (last < 2) { memcpy(block + len, "\r\n\\ x y\n" + !last, 8 - !last); len += 8 - !last; }
        struct scan ix = { 0 };
        assert_true(scan_block(&ix, block, len));
        struct logline in, alone;
        bool a = parse_scanned(&ix, block + at, n, &in, NULL), b = parse_line(lines[i], n, &alone, NULL);
        assert_int_equal(a, b);
        if (a) same_parse(&in, block + at, &alone, lines[i]);
        scan_free(&ix);
      }
    }
  }
  scan_level(best);
}

/* every vector code this CPU runs indexes the same bits as SSE2 does, on
 * random bytes rich in spaces, newlines and backslashes, of every length
 * up to a few words (the tail copied, past the end all stops) */
static void test_scan_levels_agree(void **st)
{
  (void)st;
  static const char alphabet[] = "  \n\\ax:'@";
  char text[600];
  unsigned seed = 12345;
  for (size_t i = 0; i < sizeof text; i++) { seed = seed * 1103515245 + 12345; text[i] = alphabet[(seed >> 16) % 9]; }
  int best = scan_level(-1);
  for (size_t len = 0; len <= sizeof text - 8; len += len < 200 ? 1 : 37) {
    struct scan want = { 0 };
    scan_level(0);
    assert_true(scan_block(&want, text + 3, len));
    for (int level = 1; level <= best; level++) {
      struct scan got = { 0 };
      assert_int_equal(scan_level(level), level);
      assert_true(scan_block(&got, text + 3, len));
      for (size_t w = 0; w < len / 64 + 2; w++) {
        assert_true(got.stop[w] == want.stop[w]);
        assert_true(got.nl[w] == want.nl[w]);
        assert_true(got.esc[w] == want.esc[w]);
      }
      scan_free(&got);
    }
    for (size_t b = 0; b < len; b++) {                    /* and SSE2 as the bytes say */
      unsigned long long bit = 1ULL << (b % 64);
      char c = text[3 + b];
      assert_int_equal((want.stop[b / 64] & bit) != 0, c == ' ' || c == '\n');
      assert_int_equal((want.nl[b / 64] & bit) != 0, c == '\n');
      assert_int_equal((want.esc[b / 64] & bit) != 0, c == '\\');
    }
    assert_true(want.stop[len / 64] >> (len % 64) == ~0ULL >> (len % 64));
    scan_free(&want);
  }
  scan_level(best);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_tcpserver_lines), cmocka_unit_test(test_tai64n_memo), cmocka_unit_test(test_numbers), cmocka_unit_test(test_decision_layouts),
    cmocka_unit_test(test_syslog_prefixes), cmocka_unit_test(test_hostile_lines),
    cmocka_unit_test(test_escaped_fields_kept_unescaped), cmocka_unit_test(test_join_reuse_and_partial), cmocka_unit_test(test_chunks_join_as_one_log), cmocka_unit_test(test_rejections_by_ip),
    cmocka_unit_test(test_scanned_block_parses_as_alone), cmocka_unit_test(test_scan_levels_agree),
    cmocka_unit_test(test_rows_counted_through_cache),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
