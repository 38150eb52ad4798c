/* test_queue_localmap.c -- which recipients are local and where their
 * Maildir is (src/queue/localmap.c): exact entries, %u templates, case,
 * qmail extensions, unsafe names, bad map lines; in a private home. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "queue.h"

static char home[256];

static void put(const char *rel, const char *text)
{
  char p[512];
  snprintf(p, sizeof p, "%s/%s", home, rel);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void mkdir_p(const char *rel)
{
  char p[512];
  snprintf(p, sizeof p, "%s/%s", home, rel);
  for (char *s = p + strlen(home) + 1; (s = strchr(s, '/')); s++) { *s = 0; mkdir(p, 0700); *s = '/'; }
  mkdir(p, 0700);
}

static int setup(void **state)
{
  char cmd[600];
  snprintf(home, sizeof home, "/tmp/mxgate-unit-localmap-XXXXXX");
  assert_non_null(mkdtemp(home));
  setenv("MXGATE_HOME", home, 1);
  mkdir_p("control");
  mkdir_p("users/alice/Maildir");
  mkdir_p("users/bob/Maildir");
  put("control/locals", "example.test\nOther.TEST\n");
  snprintf(cmd, sizeof cmd,
           "# exact entries first\n"
           "Carol@Example.test:/srv/carol/Maildir\n"
           "mary@example.test:/srv/mary/Maildir\n"
           "@other.test:%s/users/%%u/Maildir\n", home);
  put("control/maildirs", cmd);
  return 0;
}

static int teardown(void **state)
{
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
  return system(cmd) == 0 ? 0 : -1;
}

static enum rcpt_kind find(const char *addr, char *out)
{
  struct localmap m;
  assert_int_equal(localmap_load(&m), QQ_OK);
  enum rcpt_kind k = localmap_find(&m, addr, out, 4096);
  localmap_free(&m);
  return k;
}

static void test_exact_entry_any_case(void **state)
{
  char out[4096];
  assert_int_equal(find("carol@example.test", out), RCPT_MAILDIR);
  assert_string_equal(out, "/srv/carol/Maildir");
  assert_int_equal(find("CAROL@EXAMPLE.TEST", out), RCPT_MAILDIR);
  assert_string_equal(out, "/srv/carol/Maildir");
}

static void test_template_lower_cases_the_local_part(void **state)
{
  char out[4096], want[4096];
  assert_int_equal(find("Alice@other.test", out), RCPT_MAILDIR);
  snprintf(want, sizeof want, "%s/users/alice/Maildir", home);
  assert_string_equal(out, want);
}

static void test_extensions_fall_back(void **state)
{
  char out[4096], want[4096];
  assert_int_equal(find("carol-lists@example.test", out), RCPT_MAILDIR);
  assert_string_equal(out, "/srv/carol/Maildir");
  assert_int_equal(find("mary-ann-x@example.test", out), RCPT_MAILDIR);   /* longest prefix first, then "mary" */
  assert_string_equal(out, "/srv/mary/Maildir");
  assert_int_equal(find("bob-news@other.test", out), RCPT_MAILDIR);      /* template: bob-news has no Maildir */
  snprintf(want, sizeof want, "%s/users/bob/Maildir", home);
  assert_string_equal(out, want);
}

static void test_unknown_local_user_is_unmapped(void **state)
{
  char out[4096];
  assert_int_equal(find("nobody@example.test", out), RCPT_LOCAL_UNMAPPED);
  assert_int_equal(find("nobody@other.test", out), RCPT_LOCAL_UNMAPPED);   /* no such Maildir */
  assert_int_equal(find("-x@example.test", out), RCPT_LOCAL_UNMAPPED);
  assert_int_equal(find("@example.test", out), RCPT_LOCAL_UNMAPPED);
}

static void test_unsafe_names_never_reach_a_path(void **state)
{
  char out[4096];
  mkdir_p("users/.hidden/Maildir");
  assert_int_equal(find(".hidden@other.test", out), RCPT_LOCAL_UNMAPPED);
  assert_int_equal(find("../users/alice@other.test", out), RCPT_LOCAL_UNMAPPED);
  assert_int_equal(find("a/b@other.test", out), RCPT_LOCAL_UNMAPPED);
}

static void test_remote_and_case_of_domains(void **state)
{
  char out[4096];
  assert_int_equal(find("someone@elsewhere.test", out), RCPT_REMOTE);
  assert_int_equal(find("no-at-sign", out), RCPT_REMOTE);
  assert_int_equal(find("x@sub.example.test", out), RCPT_REMOTE);      /* locals are exact domains */
  assert_int_equal(find("carol@EXAMPLE.Test", out), RCPT_MAILDIR);
}

static void test_bad_map_line_is_a_config_error(void **state)
{
  struct localmap m;
  put("control/maildirs", "alice@example.test relative/path\n");
  assert_int_equal(localmap_load(&m), QQ_CONFIG);
  localmap_free(&m);
  put("control/maildirs", "alice@example.test:relative/Maildir\n");
  assert_int_equal(localmap_load(&m), QQ_CONFIG);
  localmap_free(&m);
  put("control/maildirs", "");
  assert_int_equal(localmap_load(&m), QQ_OK);
  char out[4096];
  assert_int_equal(localmap_find(&m, "alice@example.test", out, sizeof out), RCPT_LOCAL_UNMAPPED);
  localmap_free(&m);
}

static int count;
static void counter(const char *md) { (void)md; count++; }

static void test_each_maildir_lists_exact_and_existing_template_dirs(void **state)
{
  char text[600];
  struct localmap m;
  snprintf(text, sizeof text, "carol@example.test:/srv/carol/Maildir\n@other.test:%s/users/%%u/Maildir\n", home);
  put("control/maildirs", text);
  assert_int_equal(localmap_load(&m), QQ_OK);
  count = 0;
  localmap_each_maildir(&m, counter);
  assert_int_equal(count, 3);               /* carol, alice, bob (.hidden is skipped) */
  localmap_free(&m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_exact_entry_any_case),
    cmocka_unit_test(test_template_lower_cases_the_local_part),
    cmocka_unit_test(test_extensions_fall_back),
    cmocka_unit_test(test_unknown_local_user_is_unmapped),
    cmocka_unit_test(test_unsafe_names_never_reach_a_path),
    cmocka_unit_test(test_remote_and_case_of_domains),
    cmocka_unit_test(test_bad_map_line_is_a_config_error),
    cmocka_unit_test(test_each_maildir_lists_exact_and_existing_template_dirs),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
