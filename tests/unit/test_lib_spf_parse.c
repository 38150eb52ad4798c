/* test_lib_spf_parse.c -- the SPF record grammar: what parses, what is a
 * syntax error (permerror), CIDR lengths, modifiers, record selection. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "spf_int.h"

static struct spf_record rec;

static bool parse(const char *txt)
{
  char why[128];
  return spf_parse(txt, strlen(txt), true, &rec, why, sizeof why);
}

static void test_valid_records(void **state)
{
  static const char *good[] = {
    "v=spf1", "V=SpF1 -all", "v=spf1 a mx -all", "v=spf1  a   -all ", "v=spf1 +all",
    "v=spf1 a:example.com/24//64 mx:mail.example.com//0 ptr ptr:example.com",
    "v=spf1 ip4:192.0.2.0/24 ip4:0.0.0.0/0 ip6:2001:db8::/32 ip6:::1.1.1.1/0",
    "v=spf1 include:_spf.example.com exists:%{ir}.%{l1r+-}._spf.%{d} -all",
    "v=spf1 redirect=_spf.example.com", "v=spf1 exp=explain.%{d} -all",
    "v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all", "v=spf1 default=+",
    "v=spf1 a:foo:bar/baz.example.com", "v=spf1 a:foo.example.xn--zckzah",
    "v=spf1 a:%{H}.bar", "v=spf1 a:macro%%percent%_%_space%-url-space.example.com",
    "v=spf1 A:EXAMPLE.COM Mx InClUdE:example.com -ALL",
  };
  (void)state;
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    if (!parse(good[i])) fail_msg("should parse: %s", good[i]);
  }
}

static void test_syntax_errors(void **state)
{
  static const char *bad[] = {
    "v=spf1 ip4:1.2.3.4 -all moo", "v=spf1 -all.", "v=spf1 -all:foobar", "v=spf1 -all/8",
    "v=spf1 ptr/0 -all", "v=spf1 ptr:", "v=spf1 a:", "v=spf1 mx: -all", "v=spf1 include",
    "v=spf1 include: -all", "v=spf1 include:ip5.example.com/24", "v=spf1 exists",
    "v=spf1 exists:", "v=spf1 exists:mail.example.com/24", "v=spf1 a/33", "v=spf1 a//129",
    "v=spf1 a/24/64", "v=spf1 mx/33", "v=spf1 ip4", "v=spf1 ip4:1.2.3.4/33",
    "v=spf1 ip4:1.2.3.4/032", "v=spf1 ip4:1.2.3.4//32", "v=spf1 ip4:1.2.3.4:8080",
    "v=spf1 ip4:1.2.3", "v=spf1 ip4:01.2.3.4",
    "v=spf1 ip4:99999999999", "v=spf1 ip4:1000.2.3.4", "v=spf1 ip4:1.2.3.2147483648", /* fuzz_lib_spf: int overflow */ "v=spf1 ip6", "v=spf1 ip6:::1.1.1.1/129",
    "v=spf1 ip6:::1.1.1.1//33", "v=spf1 ip6::CAFE::BABE", "v=spf1 a:foo-bar -all",
    "v=spf1 a:111.222.33.44", "v=spf1 a:abc.123", "v=spf1 a:museum", "v=spf1 a:museum.",
    "v=spf1 a:example.-com", "v=spf1 a:example.com:8080", "v=spf1 a:%{a}.example.com",
    "v=spf1 exists:%(ir).sbl.example.com", "v=spf1 exists:foo%.sbl.example.com",
    "v=spf1 -all exp=%{r}.example.com", "v=spf1 exp= -all", "v=spf1 exp=-all",
    "v=spf1 redirect=", "v=spf1 redirect=-all ?all", "v=spf1 redirect:t2.example.com",
    "v=spf1 exp=a.example.com exp=b.example.com", "v=spf1 redirect=a.com redirect=a.com",
    "v=spf1 1up=foo", "v=spf1 =all", "v=spf1 foo=%abc", "v=spf1 moo.cow/far_out=man:dog/cat",
    "v=spf1 moo.cow:far_out=man:dog/cat", "v=spf1 -redirect=a.example.com",
    "v=spf1 a:ctrl.example.com\rptr -all", "v=spf1 ip4:192.0.2.5\n include:x.example.com",
    "v=spf1 \x80" "a:example.net -all", "v=spf1 a:example.net \x96" "all",
    "v=spf1 a:%{d0}.example.com", "v=spf1 a:%{d}%", "v=spf1 unknown",
  };
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (parse(bad[i])) fail_msg("should be a syntax error: %s", bad[i]);
  }
}

static void test_nul_byte_is_an_error(void **state)
{
  static const char txt[] = "v=spf1 a:foo.example.com\0";
  (void)state;
  assert_false(spf_parse(txt, sizeof txt - 1, true, &rec, NULL, 0));
}

static void test_terms_and_cidr(void **state)
{
  (void)state;
  assert_true(parse("v=spf1 ~a:example.com/24//64 ?mx//0 -ip4:192.0.2.0/25 ip6:2001:db8::/48 all"));
  assert_int_equal(rec.n, 5);
  assert_int_equal(rec.term[0].mech, MECH_A);
  assert_int_equal(rec.term[0].qual, SPF_SOFTFAIL);
  assert_int_equal(rec.term[0].cidr4, 24);
  assert_int_equal(rec.term[0].cidr6, 64);
  assert_int_equal((int)rec.term[0].speclen, 11);
  assert_memory_equal(rec.term[0].spec, "example.com", 11);
  assert_int_equal(rec.term[1].mech, MECH_MX);
  assert_int_equal(rec.term[1].qual, SPF_NEUTRAL);
  assert_int_equal(rec.term[1].cidr4, 32);
  assert_int_equal(rec.term[1].cidr6, 0);
  assert_null(rec.term[1].spec);
  assert_int_equal(rec.term[2].qual, SPF_FAIL);
  assert_int_equal(rec.term[2].net.family, AF_INET);
  assert_int_equal(rec.term[2].cidr4, 25);
  assert_int_equal(rec.term[3].net.family, AF_INET6);
  assert_int_equal(rec.term[3].cidr6, 48);
  assert_int_equal(rec.term[4].mech, MECH_ALL);
  assert_int_equal(rec.term[4].qual, SPF_PASS);
}

static void test_modifiers(void **state)
{
  (void)state;
  assert_true(parse("v=spf1 exp=explain.example.com redirect=_spf.example.com foo=bar"));
  assert_int_equal(rec.n, 0);
  assert_non_null(rec.redirect);
  assert_memory_equal(rec.redirect, "_spf.example.com", rec.redirect_len);
  assert_memory_equal(rec.exp, "explain.example.com", rec.exp_len);
}

static void test_record_selection(void **state)
{
  (void)state;
  assert_true(spf_is_record("v=spf1", 6));
  assert_true(spf_is_record("V=SPF1 -all", 11));
  assert_false(spf_is_record("v=spf10", 7));
  assert_false(spf_is_record("v=spf1mx", 8));
  assert_false(spf_is_record("spf2.0/pra", 10));
  assert_false(spf_is_record("v=spf", 5));
}

static void test_local_rules_take_mechanisms_only(void **state)
{
  (void)state;
  assert_true(spf_parse("ip4:192.0.2.1 include:trusted.example.com", 41, false, &rec, NULL, 0));
  assert_int_equal(rec.n, 2);
  assert_false(spf_parse("redirect=x.example.com", 22, false, &rec, NULL, 0));
}

static void test_too_many_terms(void **state)
{
  char buf[4096];
  size_t o = 0;
  (void)state;
  o += (size_t)snprintf(buf, sizeof buf, "v=spf1");
  for (int i = 0; i < SPF_MAX_TERMS + 1; i++) o += (size_t)snprintf(buf + o, sizeof buf - o, " ?all");
  assert_false(parse(buf));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_valid_records),
    cmocka_unit_test(test_syntax_errors),
    cmocka_unit_test(test_nul_byte_is_an_error),
    cmocka_unit_test(test_terms_and_cidr),
    cmocka_unit_test(test_modifiers),
    cmocka_unit_test(test_record_selection),
    cmocka_unit_test(test_local_rules_take_mechanisms_only),
    cmocka_unit_test(test_too_many_terms),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
