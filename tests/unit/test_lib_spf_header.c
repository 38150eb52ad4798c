/* test_lib_spf_header.c -- the Received-SPF: field body (RFC 7208 9.1):
 * its form for each result, and that nothing a client sends can break
 * out of it (CR/LF, quotes, parentheses, 8-bit bytes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "spf.h"

static struct spf_answer answer(enum spf_result r, const char *helo, const char *sender)
{
  struct spf_answer a;
  memset(&a, 0, sizeof a);
  a.result = r;
  snprintf(a.client_ip, sizeof a.client_ip, "192.0.2.1");
  snprintf(a.helo, sizeof a.helo, "%s", helo);
  snprintf(a.sender, sizeof a.sender, "%s", sender);
  return a;
}

static void test_pass_header(void **state)
{
  struct spf_answer a = answer(SPF_PASS, "mail.example.com", "myname@example.com");
  str out = STR_INIT(4096);
  (void)state;
  snprintf(a.mechanism, sizeof a.mechanism, "ip4:192.0.2.0/24");
  assert_true(spf_received_spf(&a, "mybox.example.org", &out));
  assert_string_equal(str_cstr(&out),
    "pass (mybox.example.org: domain of myname@example.com designates 192.0.2.1 as permitted sender)"
    " client-ip=192.0.2.1; envelope-from=\"myname@example.com\"; helo=mail.example.com;"
    " receiver=mybox.example.org; identity=mailfrom; mechanism=\"ip4:192.0.2.0/24\"");
  str_free(&out);
}

static void test_helo_identity_and_problem(void **state)
{
  struct spf_answer a = answer(SPF_PERMERROR, "mail.example.com", "postmaster@mail.example.com");
  str out = STR_INIT(4096);
  (void)state;
  a.helo_identity = true;
  snprintf(a.problem, sizeof a.problem, "more than 10 DNS lookups");
  assert_true(spf_received_spf(&a, NULL, &out));
  assert_non_null(strstr(str_cstr(&out), "identity=helo;"));
  assert_non_null(strstr(str_cstr(&out), "receiver=unknown;"));
  assert_non_null(strstr(str_cstr(&out), "problem=\"more than 10 DNS lookups\""));
  assert_null(strstr(str_cstr(&out), "envelope-from"));
  str_free(&out);
}

static void test_client_text_cannot_escape(void **state)
{
  struct spf_answer a = answer(SPF_FAIL, "evil\r\nX-Injected: yes \"(\\", "a\"b)(\r\n@ex\xff" "ample.com");
  str out = STR_INIT(4096);
  const char *s;
  (void)state;
  assert_true(spf_received_spf(&a, "mx.test", &out));
  s = str_cstr(&out);
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) fail_msg("raw byte 0x%02x in header", (unsigned char)*p);
  assert_non_null(strstr(s, "helo=\"evil??X-Injected: yes \\\"(\\\\\";"));
  /* the comment keeps its parentheses balanced */
  assert_non_null(strstr(s, "domain of a\"b???"));
  str_free(&out);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_pass_header),
    cmocka_unit_test(test_helo_identity_and_problem),
    cmocka_unit_test(test_client_text_cannot_escape),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
