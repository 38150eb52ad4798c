/* test_lib_wildmat.c -- the pattern matcher of badmailfrom/badrcptto/badhelo. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "wildmat.h"

static bool m(const char *t, const char *p) { return wildmat(t, strlen(t), p); }

static void test_patterns(void **st)
{
  (void)st;
  assert_true(m("spam@x.test", "*@x.test"));
  assert_true(m("SPAM@X.TEST", "spam@x.test"));                 /* any case */
  assert_false(m("spam@x.test.org", "*@x.test"));
  assert_true(m("a1@x", "a?@x"));
  assert_true(m("b@x", "[abc]@x"));
  assert_false(m("d@x", "[abc]@x"));
  assert_true(m("d@x", "[!abc]@x"));
  assert_true(m("q@x", "[a-z]@x"));
  assert_true(m("*@x", "\\*@x"));
  assert_false(m("a@x", "\\*@x"));
  assert_false(m("a@x", "[abc@x"));                            /* an unterminated set never matches */
  assert_true(m("", "*"));
  assert_true(m("aaa", "a*a*a"));
  assert_false(m("aa", "a*a*a"));
  assert_true(wildmat_has_magic("*@x") && !wildmat_has_magic("a@x"));
}

int main(void)
{
  const struct CMUnitTest tests[] = { cmocka_unit_test(test_patterns) };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
