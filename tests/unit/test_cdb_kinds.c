/* test_cdb_kinds.c -- the line parsers of mxgate-cdb (src/cdb/kinds.c):
 * the keys and data each kind makes from a line, and the lines it refuses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include "cdbkinds.h"

struct records { int n; char key[300][64]; char data[300][64]; };

static const char *collect(void *ctx, const char *key, size_t klen, const char *data, size_t dlen)
{
  struct records *r = ctx;
  if (r->n >= 300) return "too many";
  snprintf(r->key[r->n], 64, "%.*s", (int)klen, key);
  snprintf(r->data[r->n], 64, "%.*s", (int)dlen, data);
  r->n++;
  return NULL;
}

/* the records kind makes of line; NULL or the error */
static const char *run(const char *kind, const char *line, struct records *r)
{
  const struct cdb_kind *k = cdb_kind_find(kind);
  assert_non_null(k);
  memset(r, 0, sizeof *r);
  struct cdb_sink sink = { collect, r };
  return k->parse(line, strlen(line), &sink);
}

static void test_table_has_every_kind(void **state)
{
  static const char *names[] = { "morercpthosts", "badmimetypes", "badloadertypes", "mailfromrules", "users", "recipients" };
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) assert_non_null(cdb_kind_find(names[i]));
  assert_null(cdb_kind_find("nosuch"));
  assert_true(cdb_kind_find("recipients")->file_arg);
  assert_false(cdb_kind_find("morercpthosts")->file_arg);
  assert_int_equal(cdb_kind_find("users")->mode, 0600);
  assert_non_null(cdb_kind_find("users")->twice);
}

static void test_morercpthosts_lower_cases(void **state)
{
  struct records r;
  assert_null(run("morercpthosts", "Mail.Example.ORG", &r));
  assert_int_equal(r.n, 1);
  assert_string_equal(r.key[0], "mail.example.org");
  assert_string_equal(r.data[0], "");
  assert_null(run("morercpthosts", ".Sub.Example.net", &r));
  assert_string_equal(r.key[0], ".sub.example.net");
  assert_non_null(run("morercpthosts", "two words", &r));
  assert_non_null(run("morercpthosts", "user@example.org", &r));
}

static void test_badmimetypes_first_nine_rest_is_comment(void **state)
{
  struct records r;
  assert_null(run("badmimetypes", "TVqQAAMAA windows executable", &r));
  assert_int_equal(r.n, 1);
  assert_string_equal(r.key[0], "TVqQAAMAA");             /* case kept: base64 */
  assert_null(run("badmimetypes", "TVpQAAIAA", &r));
  assert_string_equal(r.key[0], "TVpQAAIAA");
  assert_string_equal(run("badmimetypes", "TVqQAAMA", &r), "a bad MIME type has 9 characters");
  assert_non_null(run("badmimetypes", "TVq QAAMAA", &r));
}

static void test_badloadertypes_first_five(void **state)
{
  struct records r;
  assert_null(run("badloadertypes", "M35sZ", &r));
  assert_string_equal(r.key[0], "M35sZ");
  assert_null(run("badloadertypes", "TVpQA some note", &r));
  assert_string_equal(r.key[0], "TVpQA");
  assert_string_equal(run("badloadertypes", "M35s", &r), "a bad loader type has 5 characters");
}

static void test_mailfromrules_key_and_data(void **state)
{
  struct records r;
  assert_null(run("mailfromrules", "=.Example.COM&@example.com,Boss@Example.org", &r));
  assert_int_equal(r.n, 1);
  assert_string_equal(r.key[0], "=.example.com");
  assert_string_equal(r.data[0], "@example.com,Boss@Example.org");     /* data verbatim */
  assert_null(run("mailfromrules", "192.0.2.&!", &r));
  assert_string_equal(r.key[0], "192.0.2.");
  assert_string_equal(r.data[0], "!");
  assert_null(run("mailfromrules", "=&", &r));                         /* empty data is allowed */
  assert_string_equal(r.key[0], "=");
  assert_string_equal(r.data[0], "");
  assert_string_equal(run("mailfromrules", "no ampersand", &r), "a rule is key&senders");
  assert_non_null(run("mailfromrules", "&data", &r));
  assert_string_equal(run("mailfromrules", "=&+sales@example.com", &r),   /* read as qmail-mfrules' "+a+b" */
                      "a sender list may not start with '+' (qmail-mfrules' stored form)");
}

static void test_mailfromrules_ipv4_range(void **state)
{
  struct records r;
  assert_null(run("mailfromrules", "192.0.2.10-12&*", &r));
  assert_int_equal(r.n, 3);
  assert_string_equal(r.key[0], "192.0.2.10");
  assert_string_equal(r.key[2], "192.0.2.12");
  assert_string_equal(r.data[1], "*");
  assert_null(run("mailfromrules", "10.0-255&*", &r));
  assert_int_equal(r.n, 256);
  assert_non_null(run("mailfromrules", "192.0.2.12-10&*", &r));
  assert_non_null(run("mailfromrules", "192.0.2.1-256&*", &r));
  assert_null(run("mailfromrules", "=host-1.example&*", &r));          /* '=' keys are never ranges */
  assert_int_equal(r.n, 1);
  assert_null(run("mailfromrules", "user-x@192.0.2.1&*", &r));
  assert_int_equal(r.n, 1);
}

static void test_recipients_keys(void **state)
{
  struct records r;
  assert_null(run("recipients", "Alice@Example.TEST", &r));
  assert_string_equal(r.key[0], ":alice@example.test");
  assert_string_equal(r.data[0], "");
  assert_null(run("recipients", "@CatchAll.test", &r));
  assert_string_equal(r.key[0], ":@catchall.test");
  assert_string_equal(run("recipients", "alice @example.test", &r), "an address has no blanks");
  assert_non_null(run("recipients", "alice", &r));
  assert_non_null(run("recipients", "alice@", &r));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_table_has_every_kind),
    cmocka_unit_test(test_morercpthosts_lower_cases),
    cmocka_unit_test(test_badmimetypes_first_nine_rest_is_comment),
    cmocka_unit_test(test_badloadertypes_first_five),
    cmocka_unit_test(test_mailfromrules_key_and_data),
    cmocka_unit_test(test_mailfromrules_ipv4_range),
    cmocka_unit_test(test_recipients_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
