/* test_lib_spf_macro.c -- the macro expander (the examples of RFC 7208
 * 7.4, transformers, URL escaping, explanation-only letters, truncation
 * to 253 bytes) and CIDR matching. No DNS: %{p} is left to the suite. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "spf_int.h"

static struct spf_run run;

static void setup_run(const char *ip)
{
  memset(&run, 0, sizeof run);
  assert_true(dns_ip_parse(ip, &run.ip));
  run.sender = "strong-bad@email.example.com";
  run.local = "strong-bad";
  run.sender_domain = "email.example.com";
  run.helo = "mx.example.org";
  run.receiver = "mx.receiver.test";
}

static void expands(const char *macro, bool explain, const char *want)
{
  char out[1024];
  if (!spf_macro_expand(&run, "email.example.com", macro, strlen(macro), explain, out, sizeof out))
    fail_msg("did not expand: %s", macro);
  if (strcmp(out, want) != 0) fail_msg("%s -> '%s', want '%s'", macro, out, want);
}

static void test_rfc7208_examples_ipv4(void **state)
{
  (void)state;
  setup_run("192.0.2.3");
  expands("%{s}", false, "strong-bad@email.example.com");
  expands("%{o}", false, "email.example.com");
  expands("%{d}", false, "email.example.com");
  expands("%{d4}", false, "email.example.com");
  expands("%{d3}", false, "email.example.com");
  expands("%{d2}", false, "example.com");
  expands("%{d1}", false, "com");
  expands("%{dr}", false, "com.example.email");
  expands("%{d2r}", false, "example.email");
  expands("%{l}", false, "strong-bad");
  expands("%{l-}", false, "strong.bad");
  expands("%{lr}", false, "strong-bad");
  expands("%{lr-}", false, "bad.strong");
  expands("%{l1r-}", false, "strong");
  expands("%{ir}.%{v}._spf.%{d2}", false, "3.2.0.192.in-addr._spf.example.com");
  expands("%{lr-}.lp._spf.%{d2}", false, "bad.strong.lp._spf.example.com");
  expands("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", false, "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
  expands("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", false, "3.2.0.192.in-addr.strong.lp._spf.example.com");
  expands("%{d2}.trusted-domains.example.net", false, "example.com.trusted-domains.example.net");
}

static void test_rfc7208_example_ipv6(void **state)
{
  (void)state;
  setup_run("2001:db8::cb01");
  expands("%{ir}.%{v}._spf.%{d2}", false,
          "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
  expands("%{c}", true, "2001:db8::cb01");
  setup_run("::ffff:192.0.2.3");          /* v4-mapped is IPv4 */
  expands("%{i} %{v} %{c}", true, "192.0.2.3 in-addr 192.0.2.3");
}

static void test_escapes_and_url_encoding(void **state)
{
  (void)state;
  setup_run("192.0.2.3");
  expands("a%%b%_c%-d", false, "a%b c%20d");
  run.local = "~jack&jill=up-a_b3.c";
  expands("%{L}", false, "~jack%26jill%3Dup-a_b3.c");
  run.sender = "a b@c.test";
  expands("%{S}", false, "a%20b%40c.test");
  expands("%{h} %{r}", true, "mx.example.org mx.receiver.test");
  run.receiver = NULL;
  expands("%{r}", true, "unknown");
  run.local = "foo-bar+zip+quux";
  expands("%{l2r+-}", false, "bar.foo");
  expands("%{l100}", false, "foo-bar+zip+quux");
}

static void test_explanation_only_letters(void **state)
{
  char out[64];
  (void)state;
  setup_run("192.0.2.3");
  assert_true(spf_macro_valid("%{c} %{r} %{t}", 14, true));
  assert_false(spf_macro_valid("%{c}", 4, false));
  assert_false(spf_macro_valid("%{r}", 4, false));
  assert_false(spf_macro_valid("%{t}", 4, false));
  assert_false(spf_macro_valid("a b", 3, false));
  assert_false(spf_macro_valid("%{x}", 4, true));
  assert_false(spf_macro_valid("%{d0}", 5, false));
  assert_false(spf_macro_valid("%{d", 3, false));
  assert_false(spf_macro_valid("%", 1, false));
  assert_false(spf_macro_valid("%x", 2, false));
  assert_false(spf_macro_expand(&run, "example.com", "%{c}", 4, false, out, sizeof out));
  assert_true(spf_macro_expand(&run, "example.com", "%{t}", 4, true, out, sizeof out));
  assert_true(strlen(out) >= 10);
}

static void test_output_is_bounded(void **state)
{
  char small[8];
  (void)state;
  setup_run("192.0.2.3");
  assert_false(spf_macro_expand(&run, "example.com", "%{s}", 4, false, small, sizeof small));
}

static void test_domain_truncated_from_the_left(void **state)
{
  char spec[400], out[DNS_NAME_MAX + 1];
  (void)state;
  setup_run("192.0.2.3");
  run.sender_domain = "somewhat.long.exp.example.com";
  snprintf(spec, sizeof spec, "foobar.%%{o}.%%{o}.%%{o}.%%{o}.%%{o}.%%{o}.%%{o}.%%{o}.example.com.");
  assert_true(spf_expand_domain(&run, "x.test", spec, strlen(spec), out, sizeof out));
  assert_true(strlen(out) <= 253);
  assert_int_equal(strncmp(out, "somewhat.long.exp.example.com.somewhat", 38), 0);
  /* an empty label or a label over 63 bytes is no name to ask */
  assert_false(spf_expand_domain(&run, "x.test", "mail.example...com", 18, out, sizeof out));
  run.helo = "%%%%%%%%%%%%%%%%%%%%%%";
  assert_false(spf_expand_domain(&run, "x.test", "%{H}.bar", 8, out, sizeof out));
}

static void test_cidr_matching(void **state)
{
  struct dns_ip ip, net;
  (void)state;
  assert_true(dns_ip_parse("192.0.2.130", &ip));
  assert_true(dns_ip_parse("192.0.2.0", &net));
  assert_true(spf_cidr_match(&ip, &net, 24));
  assert_false(spf_cidr_match(&ip, &net, 25));
  assert_true(spf_cidr_match(&ip, &net, 0));
  assert_true(dns_ip_parse("192.0.2.128", &net));
  assert_true(spf_cidr_match(&ip, &net, 25));
  assert_false(spf_cidr_match(&ip, &net, 32));
  assert_true(dns_ip_parse("2001:db8:1234::cafe:babe", &ip));
  assert_true(dns_ip_parse("2001:db8:1234::dead:beef", &net));
  assert_true(spf_cidr_match(&ip, &net, 64));
  assert_false(spf_cidr_match(&ip, &net, 128));
  assert_true(dns_ip_parse("cafe:babe:8000::", &ip));
  assert_true(dns_ip_parse("cafe:babe:8000::", &net));
  assert_true(spf_cidr_match(&ip, &net, 33));
  assert_true(dns_ip_parse("cafe:babe::", &ip));
  assert_false(spf_cidr_match(&ip, &net, 33));
  /* families never mix: an IPv4 client does not match ip6:::/0 */
  assert_true(dns_ip_parse("1.2.3.4", &ip));
  assert_true(dns_ip_parse("::", &net));
  assert_false(spf_cidr_match(&ip, &net, 0));
  assert_true(dns_ip_parse("::ffff:1.2.3.4", &ip));
  assert_int_equal(ip.family, AF_INET);
}

static void test_names_within(void **state)
{
  (void)state;
  assert_true(spf_name_within("mail.example.com", "example.com"));
  assert_true(spf_name_within("Mail.Example.COM.", "example.com"));
  assert_true(spf_name_within("example.com", "EXAMPLE.com."));
  assert_false(spf_name_within("badexample.com", "example.com"));
  assert_false(spf_name_within("com", "example.com"));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_rfc7208_examples_ipv4),
    cmocka_unit_test(test_rfc7208_example_ipv6),
    cmocka_unit_test(test_escapes_and_url_encoding),
    cmocka_unit_test(test_explanation_only_letters),
    cmocka_unit_test(test_output_is_bounded),
    cmocka_unit_test(test_domain_truncated_from_the_left),
    cmocka_unit_test(test_cidr_matching),
    cmocka_unit_test(test_names_within),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
