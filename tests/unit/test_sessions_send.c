/* test_sessions_send.c -- mxgate-sessions on mxgate-send's delivery lines:
 * the line kind, its escaped fields and detail, and the join of each
 * delivery to the most recent Queued line of its qp (deliveries.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <stdlib.h>
#include "sessions.h"

#define DELIVERED "@400000006935162a00000000 mxgate-send: pid 6867 Accept::SEND::Delivered: S:192.0.2.25:mx.dest.test " \
                  "P:ESMTPS F:a@c.test T:bob@dest.test 'qp\\x204522\\x20id\\x201796626133.M207040P6867Q1.vm\\x20tls" \
                  "\\x20verified:\\x20250\\x202.0.0\\x20Ok'"

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

static void test_send_line_kind(void **st)
{
  (void)st;
  struct logline l = L(DELIVERED);
  assert_int_equal(l.kind, L_SEND);
  assert_string_equal(l.prog, "mxgate-send");
  assert_int_equal(l.pid, 6867);
  assert_true(l.ts > 1765000000 && l.ts < 1766000000);
  assert_int_equal(l.rowlen, strlen("Accept::SEND::Delivered"));
  assert_memory_equal(l.row, "Accept::SEND::Delivered", l.rowlen);
  field(&l, F_IP, "192.0.2.25");
  field(&l, F_SHOST, "mx.dest.test");
  field(&l, F_PROTO, "ESMTPS");
  field(&l, F_FROM, "a@c.test");
  field(&l, F_TO, "bob@dest.test");
  assert_true(l.detail_escaped);
  field(&l, F_DETAIL, "qp 4522 id 1796626133.M207040P6867Q1.vm tls verified: 250 2.0.0 Ok");
  /* no hop reached: an empty address, the name "unknown", no protocol */
  l = L("mxgate-send: pid 7 Reject::SEND::Expired: S::unknown P: F: T:z@gone.test 'qp\\x20777\\x20id\\x201.M1P1Q1.vm:\\x20no\\x20MX'");
  assert_int_equal(l.kind, L_SEND);
  field(&l, F_IP, "");
  field(&l, F_SHOST, "unknown");
  field(&l, F_PROTO, "");
  field(&l, F_FROM, "");
  /* the smtpd's and other programs' lines are not delivery lines */
  assert_int_equal(L("qmail-smtpd: pid 4522 Accept::DATA::Queued: S:1.2.3.4:unknown P:SMTP 'qp\\x201'").kind, L_DECISION);
  assert_int_equal(L("mxgate-smtpd: pid 3 warning: x").kind, L_WARNING);
  assert_int_equal(L("mxgate-sendmail: pid 3 Accept::SEND::Delivered: S:1:x").kind, L_NONE);
  assert_int_equal(L("mxgate-send: pid 3").kind, L_NONE);
  assert_int_equal(L("mxgate-send: pid ").kind, L_NONE);
}

/* escaped bytes of a recipient (a space, a quote, a newline) come back as
 * they were; a forged "'" or newline cannot end the detail early */
static void test_send_escaping(void **st)
{
  (void)st;
  struct logline l = L("mxgate-send: pid 9 Deferred::SEND::Temp_Failure: S:2001:db8::1:[2001:db8::1] P:SMTP "
                       "F:a@c.test T:\\x22odd\\x20one\\x22@dest.test 'qp\\x2012\\x20id\\x20X:\\x20451\\x20a\\x27b\\x0ac'");
  assert_int_equal(l.kind, L_SEND);
  assert_true(l.escaped);
  field(&l, F_TO, "\"odd one\"@dest.test");
  field(&l, F_IP, "2001:db8::1");                       /* a literal's own colons stay in its name */
  field(&l, F_SHOST, "[2001:db8::1]");
  char d[200];
  size_t n = unescape(l.f[F_DETAIL], l.flen[F_DETAIL], d, sizeof d);
  struct send_detail sd;
  assert_true(send_detail(d, n, &sd));
  assert_int_equal(sd.qp, 12);
  assert_int_equal(sd.replylen, strlen("451 a'b\nc"));
  assert_memory_equal(sd.reply, "451 a'b\nc", sd.replylen);
}

static void test_send_detail_parts(void **st)
{
  (void)st;
  struct send_detail sd;
  const char *d = "qp 4522 id 1796626133.M207040P6867Q1.vm tls unverified: 250 2.0.0 Ok";
  assert_true(send_detail(d, strlen(d), &sd));
  assert_int_equal(sd.qp, 4522);
  assert_int_equal(sd.idlen, strlen("1796626133.M207040P6867Q1.vm"));
  assert_memory_equal(sd.id, "1796626133.M207040P6867Q1.vm", sd.idlen);
  assert_int_equal(sd.tlslen, 10);
  assert_memory_equal(sd.tls, "unverified", 10);
  assert_int_equal(sd.replylen, 12);
  assert_memory_equal(sd.reply, "250 2.0.0 Ok", 12);
  d = "qp 1 id Q: 250 ok";
  assert_true(send_detail(d, strlen(d), &sd));
  assert_int_equal(sd.tlslen, 0);
  assert_int_equal(sd.idlen, 1);
  /* not of the form: no qp, the reply is the whole detail */
  static const char *bad[] = { "", "qp", "qp x id y: z", "qp 1 idy: z", "qp 1 id y z", "something else" };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_false(send_detail(bad[i], strlen(bad[i]), &sd));
    assert_int_equal(sd.qp, -1);
    assert_int_equal(sd.replylen, strlen(bad[i]));
  }
  assert_int_equal(queued_qp("qp 4522 bytes 230", 17), 4522);
  assert_int_equal(queued_qp("qp 4522", 2), -1);
  assert_int_equal(queued_qp("bytes 1", 7), -1);
}

/* two sessions whose Queued lines have qp 50 (a pid reused), a delivery
 * after each, one before both and one of another qp: each joins the most
 * recent Queued line at or before it; the rest have no session. A Queued
 * line met in the second reading only joins nothing and moves nothing */
static void test_deliveries_join_by_qp(void **st)
{
  (void)st;
  static const char *lines[] = {
    "2026-12-07T05:59:00Z mxgate-send: pid 1 Deferred::SEND::Temp_Failure: S:1.1.1.1:mx P:SMTP F: T:early@d.test 'qp\\x2050\\x20id\\x20A:\\x20451\\x20x'",
    "2026-12-07T06:00:00Z qmail-smtpd: pid 50 Accept::DATA::Queued: S:1.2.3.4:unknown P:ESMTP F:a@c.test T:one@d.test 'qp\\x2050\\x20bytes\\x201'",
    "2026-12-07T06:00:05Z mxgate-send: pid 2 Accept::SEND::Delivered: S:1.1.1.1:mx P:SMTP F:a@c.test T:one@d.test 'qp\\x2050\\x20id\\x20B:\\x20250\\x20ok'",
    "2026-12-07T07:00:00Z qmail-smtpd: pid 50 Accept::DATA::Queued: S:1.2.3.5:unknown P:ESMTP F:a@c.test T:two@d.test 'qp\\x2050\\x20bytes\\x201'",
    "2026-12-07T07:00:00Z mxgate-send: pid 3 Accept::SEND::Delivered: S:1.1.1.1:mx P:SMTP F:a@c.test T:two@d.test 'qp\\x2050\\x20id\\x20C:\\x20250\\x20ok'",
    "2026-12-07T07:00:09Z mxgate-send: pid 4 Accept::SEND::Delivered: S:1.1.1.1:mx P:SMTP F:a@c.test T:x@d.test 'qp\\x2051\\x20id\\x20D:\\x20250\\x20ok'",
  };
  size_t nl = sizeof lines / sizeof *lines;
  struct deliveries *x = deliveries_new(DLV_INDEXING);
  for (size_t i = 0; i < nl; i++) {
    struct logline l = L(lines[i]);
    deliveries_index(x, &l);
  }
  assert_int_equal(x->n, 4);
  assert_int_equal(x->nq, 2);
  deliveries_resolve(x);
  x->phase = DLV_JOINING;
  struct session s[3] = { { .pid = 50 }, { .pid = 50 }, { .pid = 7 } };
  /* a Queued line the first reading did not have (the log changed in
   * between) comes first: the others are still found, by qp and time */
  struct logline extra = L("2026-12-07T05:00:00Z qmail-smtpd: pid 7 Accept::DATA::Queued: S:1.2.3.4:unknown P:ESMTP 'qp\\x2050\\x20bytes\\x201'");
  deliveries_queued(x, &s[2], &extra);
  assert_int_equal(s[2].nqrec, 0);
  for (size_t i = 0, k = 0; i < nl; i++) {
    struct logline l = L(lines[i]);
    if (l.kind == L_DECISION) deliveries_queued(x, &s[k++], &l);
  }
  const char *ids[2] = { "B", "C" };
  for (int k = 0; k < 2; k++) {
    size_t n;
    const struct delivery **d = deliveries_of(x, &s[k], &n);
    assert_int_equal(n, 1);
    assert_string_equal(d[0]->id, ids[k]);
    assert_int_equal(d[0]->qp, 50);
    free(d);
    free(s[k].qrec);
  }
  assert_int_equal(x->n - x->unjoined, 2);               /* A (before any Queued line) and D (qp 51) */
  assert_string_equal(x->d[x->unjoined].id, "A");
  assert_string_equal(x->d[x->unjoined + 1].id, "D");
  assert_string_equal(x->d[x->unjoined].reply, "451 x");
  assert_string_equal(x->d[x->unjoined].hop, "mx");
  deliveries_free(x);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_send_line_kind), cmocka_unit_test(test_send_escaping),
    cmocka_unit_test(test_send_detail_parts), cmocka_unit_test(test_deliveries_join_by_qp),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
