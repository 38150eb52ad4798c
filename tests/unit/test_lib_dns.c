/* test_lib_dns.c -- the DNS layer without a network: DNSCACHEIP parsing,
 * names, addresses, reverse names, and the answer walker on hand-made
 * messages (CNAME chains and loops, compression loops, truncation, NUL
 * bytes in names). The layer against real servers: tests/it/test_spf_suite.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "dns_int.h"

static void test_dnscacheip_forms(void **state)
{
  static const char *good[] = { "127.0.0.1", "127.0.0.1#5353", "127.0.0.1#5353 127.0.0.2",
                                "127.0.0.1#53,::1#5353", " 127.0.0.1 , 127.0.0.2#54 ", "::1" };
  static const char *bad[] = { "", " ", "localhost", "127.0.0.1#", "127.0.0.1#0", "127.0.0.1#70000",
                               "127.0.0.1#53x", "1.2.3", "127.0.0.1 bogus" };
  char err[128];
  (void)state;
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    struct dns *d = dns_open(good[i], err, sizeof err);
    if (!d) fail_msg("rejected %s: %s", good[i], err);
    dns_close(d);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct dns *d = dns_open(bad[i], err, sizeof err);
    if (d) { dns_close(d); fail_msg("accepted '%s'", bad[i]); }
  }
}

static void test_names(void **state)
{
  char l63[70], l64[70], long254[300];
  (void)state;
  memset(l63, 'a', 63); l63[63] = 0;
  memset(l64, 'a', 64); l64[64] = 0;
  assert_true(dns_name_ok("example.com"));
  assert_true(dns_name_ok("example.com."));
  assert_true(dns_name_ok("foo:bar/baz.example.com"));
  assert_true(dns_name_ok(l63));
  assert_false(dns_name_ok(l64));
  assert_false(dns_name_ok(""));
  assert_false(dns_name_ok("."));
  assert_false(dns_name_ok("a..b"));
  assert_false(dns_name_ok(".a"));
  memset(long254, 'a', 254); long254[254] = 0;
  for (int i = 50; i < 254; i += 50) long254[i] = '.';
  assert_false(dns_name_ok(long254));
  long254[253] = 0;
  assert_true(dns_name_ok(long254));
  assert_true(dns_name_equal("Mail.Example.COM.", "mail.example.com"));
  assert_false(dns_name_equal("mail.example.com", "mail.example.co"));
}

static void test_addresses(void **state)
{
  struct dns_ip ip;
  char buf[64];
  (void)state;
  assert_true(dns_ip_parse("192.0.2.1", &ip));
  assert_int_equal(ip.family, AF_INET);
  dns_reverse_name(&ip, buf, sizeof buf);
  assert_string_equal(buf, "1.2.0.192.in-addr.arpa");
  assert_true(dns_ip_parse("::FFFF:1.2.3.4", &ip));
  assert_int_equal(ip.family, AF_INET);
  dns_ip_format(&ip, buf, sizeof buf);
  assert_string_equal(buf, "1.2.3.4");
  assert_true(dns_ip_parse("2001:DB8::1", &ip));
  dns_ip_format(&ip, buf, sizeof buf);
  assert_string_equal(buf, "2001:db8::1");
  char rev[80];
  dns_reverse_name(&ip, rev, sizeof rev);
  assert_string_equal(rev, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  assert_false(dns_ip_parse("1.2.3", &ip));
  assert_false(dns_ip_parse("example.com", &ip));
}

/* a message builder: header, question, answers */
struct msg { unsigned char b[2048]; int len; };

static void put16(struct msg *m, unsigned v) { m->b[m->len++] = (unsigned char)(v >> 8); m->b[m->len++] = (unsigned char)v; }

static void put_name(struct msg *m, const char *name)
{
  while (*name) {
    size_t l = strcspn(name, ".");
    m->b[m->len++] = (unsigned char)l;
    memcpy(m->b + m->len, name, l);
    m->len += (int)l;
    name += l;
    if (*name) name++;
  }
  m->b[m->len++] = 0;
}

static void start(struct msg *m, const char *qname, unsigned qtype, unsigned ancount)
{
  memset(m, 0, sizeof *m);
  m->len = 12;
  m->b[2] = 0x81; m->b[3] = 0x80;
  m->b[5] = 1;
  m->b[7] = (unsigned char)ancount;
  put_name(m, qname);
  put16(m, qtype); put16(m, 1);
}

static void rr_head(struct msg *m, const char *owner, unsigned type, unsigned rdlen)
{
  put_name(m, owner);
  put16(m, type); put16(m, 1); put16(m, 0); put16(m, 60); put16(m, rdlen);
}

static void rr_cname(struct msg *m, const char *owner, const char *target)
{
  struct msg t = { .len = 0 };
  put_name(&t, target);
  rr_head(m, owner, DNS_T_CNAME, (unsigned)t.len);
  memcpy(m->b + m->len, t.b, (size_t)t.len);
  m->len += t.len;
}

static void rr_a(struct msg *m, const char *owner, unsigned char last)
{
  rr_head(m, owner, DNS_T_A, 4);
  m->b[m->len++] = 192; m->b[m->len++] = 0; m->b[m->len++] = 2; m->b[m->len++] = last;
}

static int seen;
static bool count_rr(void *ctx, const struct dns_rr *rr)
{
  (void)ctx;
  seen = rr->msg[rr->rdata + 3];
  return true;
}

static void test_cname_chain_followed(void **state)
{
  struct msg m;
  (void)state;
  start(&m, "www.a.test", DNS_T_A, 4);
  rr_cname(&m, "www.a.test", "b.test");
  rr_cname(&m, "b.test", "c.test");
  rr_a(&m, "other.test", 9);             /* not on the chain: ignored */
  rr_a(&m, "C.TEST", 7);
  seen = 0;
  assert_int_equal(dns_answer_walk(m.b, m.len, "www.a.test", DNS_T_A, count_rr, NULL), DNS_FOUND);
  assert_int_equal(seen, 7);
}

static void test_cname_loop_is_temporary(void **state)
{
  struct msg m;
  (void)state;
  start(&m, "a.test", DNS_T_A, 2);
  rr_cname(&m, "a.test", "b.test");
  rr_cname(&m, "b.test", "a.test");
  assert_int_equal(dns_answer_walk(m.b, m.len, "a.test", DNS_T_A, count_rr, NULL), DNS_TEMP);
}

static void test_chain_without_records_is_nodata(void **state)
{
  struct msg m;
  (void)state;
  start(&m, "a.test", DNS_T_A, 1);
  rr_cname(&m, "a.test", "b.test");
  assert_int_equal(dns_answer_walk(m.b, m.len, "a.test", DNS_T_A, count_rr, NULL), DNS_NODATA);
}

static void test_malformed_messages(void **state)
{
  struct msg m;
  (void)state;
  start(&m, "a.test", DNS_T_A, 1);
  rr_a(&m, "a.test", 1);
  for (int cut = 0; cut < m.len; cut++)   /* every truncation is refused, none crashes */
    assert_int_equal(dns_answer_walk(m.b, cut, "a.test", DNS_T_A, count_rr, NULL), DNS_PERM);
  /* a compression pointer to itself */
  start(&m, "a.test", DNS_T_A, 1);
  int here = m.len;
  m.b[m.len++] = 0xC0; m.b[m.len++] = (unsigned char)here;
  put16(&m, DNS_T_A); put16(&m, 1); put16(&m, 0); put16(&m, 60); put16(&m, 4);
  m.len += 4;
  assert_int_equal(dns_answer_walk(m.b, m.len, "a.test", DNS_T_A, count_rr, NULL), DNS_PERM);
}

static void test_name_with_nul_or_dot_is_refused(void **state)
{
  unsigned char bad[] = { 3, 'a', 0, 'b', 4, 't', 'e', 's', 't', 0 };
  unsigned char dot[] = { 3, 'a', '.', 'b', 4, 't', 'e', 's', 't', 0 };
  unsigned char ok[] = { 3, 'a', 'b', 'c', 4, 't', 'e', 's', 't', 0 };
  char out[64];
  (void)state;
  assert_false(dns_read_name(bad, sizeof bad, 0, out, sizeof out));
  assert_false(dns_read_name(dot, sizeof dot, 0, out, sizeof out));
  assert_true(dns_read_name(ok, sizeof ok, 0, out, sizeof out));
  assert_string_equal(out, "abc.test");
}

/* the record types as dns_mx and dns_txt take their answers apart */
static void rr_mx(struct msg *m, const char *owner, unsigned pref, const char *host)
{
  struct msg t = { .len = 0 };
  put16(&t, pref);
  put_name(&t, host);
  rr_head(m, owner, DNS_T_MX, (unsigned)t.len);
  memcpy(m->b + m->len, t.b, (size_t)t.len);
  m->len += t.len;
}

static void test_mx_and_txt_answers(void **state)
{
  struct msg m;
  struct dns_mxs mx = { 0 };
  struct dns_txts txt = { 0 };
  (void)state;
  start(&m, "a.test", DNS_T_MX, 3);
  rr_mx(&m, "a.test", 20, "mx2.a.test");
  rr_mx(&m, "a.test", 10, "mx1.a.test");
  rr_mx(&m, "a.test", 20, "mx3.a.test");
  assert_int_equal(dns_mx_answer(m.b, m.len, "a.test", &mx), DNS_FOUND);
  assert_int_equal(mx.n, 3);
  assert_string_equal(mx.mx[0].name, "mx1.a.test");
  assert_string_equal(mx.mx[1].name, "mx2.a.test");      /* stable within one preference */
  assert_string_equal(mx.mx[2].name, "mx3.a.test");
  mx.n = mx.dropped = 0;
  start(&m, "a.test", DNS_T_MX, 1);
  rr_mx(&m, "a.test", 0, "");
  assert_int_equal(dns_mx_answer(m.b, m.len, "a.test", &mx), DNS_FOUND);
  assert_true(dns_mx_is_null(&mx));
  start(&m, "a.test", DNS_T_TXT, 2);
  rr_head(&m, "a.test", DNS_T_TXT, 9);
  memcpy(m.b + m.len, "\3v=s\4pf1 ", 9); m.len += 9;
  rr_head(&m, "a.test", DNS_T_TXT, 3);
  memcpy(m.b + m.len, "\5ab", 3); m.len += 3;             /* a string longer than its record */
  assert_int_equal(dns_txt_answer(m.b, m.len, "a.test", &txt), DNS_FOUND);
  assert_int_equal(txt.n, 1);
  assert_int_equal(txt.dropped, 1);
  assert_string_equal(txt.txt[0], "v=spf1 ");
  dns_txts_free(&txt);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_dnscacheip_forms),
    cmocka_unit_test(test_names),
    cmocka_unit_test(test_addresses),
    cmocka_unit_test(test_cname_chain_followed),
    cmocka_unit_test(test_cname_loop_is_temporary),
    cmocka_unit_test(test_chain_without_records_is_nodata),
    cmocka_unit_test(test_malformed_messages),
    cmocka_unit_test(test_name_with_nul_or_dot_is_refused),
    cmocka_unit_test(test_mx_and_txt_answers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
