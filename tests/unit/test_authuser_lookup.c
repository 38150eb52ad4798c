/* test_authuser_lookup.c -- finding users in control/users.cdb or the text
 * file (src/authuser/lookup.c), in a private $MXGATE_HOME. The cdb is made
 * here with tinycdb's cdb_make and users_cdb_record, as mxgate-cdb does. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <cdb.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "authuser.h"

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

static void drop(const char *rel)
{
  char p[512];
  snprintf(p, sizeof p, "%s/%s", home, rel);
  unlink(p);
}

/* control/users.cdb from text lines, one record per entry (raw: extra
 * records with data given verbatim, for corrupt-record tests) */
static void make_cdb(const char *text, const char *rawkey, const char *rawdata)
{
  char p[512];
  snprintf(p, sizeof p, "%s/control/users.cdb", home);
  int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  struct cdb_make cm;
  cdb_make_start(&cm, fd);
  str key = STR_INIT(0), data = STR_INIT(0);
  for (const char *l = text; *l; ) {
    const char *nl = strchr(l, '\n');
    size_t n = nl ? (size_t)(nl - l) : strlen(l);
    struct user_entry u;
    const char *err;
    if (users_parse_line(l, n, &u, &err) == 1) {
      assert_true(users_cdb_record(&u, &key, &data));
      cdb_make_add(&cm, key.s, (unsigned)key.len, data.s, (unsigned)data.len);
    }
    l += n + (nl ? 1 : 0);
  }
  if (rawkey) cdb_make_add(&cm, rawkey, (unsigned)strlen(rawkey), rawdata, (unsigned)strlen(rawdata));
  assert_int_equal(cdb_make_finish(&cm), 0);
  close(fd);
  str_free(&key);
  str_free(&data);
}

static int setup(void **state)
{
  snprintf(home, sizeof home, "/tmp/mxgate-unit-authuser-XXXXXX");
  if (!mkdtemp(home)) return -1;
  char c[300];
  snprintf(c, sizeof c, "%s/control", home);
  mkdir(c, 0700);
  setenv("MXGATE_HOME", home, 1);
  return 0;
}

static int teardown(void **state)
{
  drop("control/users");
  drop("control/users.cdb");
  char c[300];
  snprintf(c, sizeof c, "%s/control", home);
  rmdir(c);
  rmdir(home);
  return 0;
}

static const char users_text[] =
  "# demo users\n"
  "alice:*:s1:::/home/alice:\n"
  "\n"
  "!bob:*:s2:::/home/bob:\n"
  "alice:*:other:::/elsewhere:\n";

static void text_file(void **state)
{
  struct user_entry u;
  const char *why = NULL;
  drop("control/users.cdb");
  put("control/users", users_text);
  assert_int_equal(users_lookup("alice", 5, &u, &why), 1);
  assert_string_equal(u.secret, "s1");                  /* the first line wins */
  assert_int_equal(users_lookup("bob", 3, &u, &why), 1);
  assert_true(u.disabled);
  assert_int_equal(users_lookup("carol", 5, &u, &why), 0);
  assert_int_equal(users_lookup("alic", 4, &u, &why), 0);
  assert_int_equal(users_lookup("Alice", 5, &u, &why), 0);  /* names are exact */
  assert_int_equal(users_lookup("", 0, &u, &why), 0);
  assert_int_equal(users_lookup("alice\0x", 7, &u, &why), 0);
}

static void text_file_errors(void **state)
{
  struct user_entry u;
  const char *why = NULL;
  drop("control/users.cdb");
  drop("control/users");
  assert_int_equal(users_lookup("alice", 5, &u, &why), -1);
  assert_non_null(strstr(why, "control/users"));
  put("control/users", "alice:*:s1:::/home/alice:\nbroken line\n");
  why = NULL;
  assert_int_equal(users_lookup("alice", 5, &u, &why), -1);  /* whole file is checked */
  assert_non_null(strstr(why, "line 2"));
  assert_string_equal(u.secret, "");                         /* nothing leaks out */
}

static void cdb_file(void **state)
{
  struct user_entry u;
  const char *why = NULL;
  put("control/users", "carol:*::::/c:\n");                  /* ignored when the cdb exists */
  make_cdb(users_text, NULL, NULL);
  assert_int_equal(users_lookup("alice", 5, &u, &why), 1);
  assert_string_equal(u.home, "/home/alice");
  assert_int_equal(users_lookup("bob", 3, &u, &why), 1);
  assert_true(u.disabled);
  assert_int_equal(users_lookup("carol", 5, &u, &why), 0);
}

static void cdb_corrupt_record(void **state)
{
  struct user_entry u;
  const char *why = NULL;
  make_cdb("", "mallory", "mallory:not a line");
  assert_int_equal(users_lookup("mallory", 7, &u, &why), -1);
  assert_non_null(strstr(why, "users.cdb"));
  make_cdb("", "eve", "alice:*::::/h:");                     /* record under a wrong key */
  assert_int_equal(users_lookup("eve", 3, &u, &why), -1);
  put("control/users.cdb", "this is not a cdb");
  assert_int_equal(users_lookup("alice", 5, &u, &why), -1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(text_file),
    cmocka_unit_test(text_file_errors),
    cmocka_unit_test(cdb_file),
    cmocka_unit_test(cdb_corrupt_record),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
