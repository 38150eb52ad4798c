/* test_lib_control.c -- reading control files (src/lib/control.c) in a
 * private home: a number is the first line's digits and nothing else (a
 * NUL byte, a sign or a leading blank make it no number: the fuzz harness
 * fuzz_cdb_control found "1\0junk" read as 1), lines and lists trimmed,
 * a NUL byte in a value or an entry refused (it split entries). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "control.h"

static char home[256];

static void put(const char *text, size_t n)
{
  char p[512];
  snprintf(p, sizeof p, "%s/control/num", home);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, n, f), n);
  fclose(f);
}

static int setup(void **state)
{
  char p[300];
  (void)state;
  snprintf(home, sizeof home, "/tmp/mxgate-unit-control-XXXXXX");
  assert_non_null(mkdtemp(home));
  snprintf(p, sizeof p, "%s/control", home);
  mkdir(p, 0700);
  setenv("MXGATE_HOME", home, 1);
  return 0;
}

static int teardown(void **state)
{
  char cmd[300];
  (void)state;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
  return system(cmd) == 0 ? 0 : -1;
}

static void number(const char *text, size_t n, int want, unsigned long value)
{
  unsigned long v = 4711;
  put(text, n);
  errno = 0;
  assert_int_equal(control_readulong(&v, "num"), want);
  if (want == 1) assert_int_equal(v, value);
  if (want < 0) { assert_int_equal(errno, EINVAL); assert_int_equal(v, 4711); }
}

static void test_numbers(void **state)
{
  (void)state;
  number("10485760\n", 9, 1, 10485760);
  number("0 \t\r\nsecond line\n", 17, 1, 0);
  number("1\0junk\n", 7, -1, 0);                /* the fuzzer's find */
  number("1\0", 2, -1, 0);
  number("-1\n", 3, -1, 0);
  number("+5\n", 3, -1, 0);
  number(" 5\n", 3, -1, 0);
  number("\n", 1, -1, 0);
  number("5x\n", 3, -1, 0);
  number("99999999999999999999999\n", 24, -1, 0);
}

static void test_lines_and_lists(void **state)
{
  str line = STR_INIT(1024), list = STR_INIT(1024);
  (void)state;
  static const char text[] = "first \t\r\n# no\n\n  \nsecond\t\nlast";
  put(text, sizeof text - 1);
  assert_int_equal(control_readline(&line, "num", NULL), 1);
  assert_int_equal(line.len, 5);
  assert_memory_equal(line.s, "first", 5);
  assert_int_equal(control_readlist(&list, "num"), 1);
  const char *l = control_next(&list, NULL);
  assert_string_equal(l, "first");
  assert_string_equal(l = control_next(&list, l), "second");
  assert_string_equal(l = control_next(&list, l), "last");
  assert_null(control_next(&list, l));
  str_free(&line);
  str_free(&list);
}

/* a NUL byte in a value or a list entry: the file is refused, not cut
 * ("evil.test\0" would have been an entry and an empty one after it) */
static void test_nul_bytes_refused(void **state)
{
  str line = STR_INIT(1024), list = STR_INIT(1024);
  (void)state;
  put("one\0two\n", 8);
  assert_int_equal(control_readline(&line, "num", NULL), -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(control_readlist(&list, "num"), -1);
  assert_int_equal(errno, EINVAL);
  put("good.test\n# a comment \0 may hold one\n", 37);
  assert_int_equal(control_readlist(&list, "num"), 1);
  assert_string_equal(control_next(&list, NULL), "good.test");
  assert_null(control_next(&list, control_next(&list, NULL)));
  str_free(&line);
  str_free(&list);
}

/* a whole file read straight into the string: sizes around the growth
 * steps and the cap, which is a limit (EFBIG), not a cut */
static void test_readfile_sizes(void **state)
{
  static char text[20000];
  (void)state;
  for (size_t i = 0; i < sizeof text; i++) text[i] = (char)('a' + i % 26);
  size_t sizes[] = { 0, 1, 511, 512, 513, 1023, 1024, 4095, 4096, 4097, 20000 };
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    str f = STR_INIT(1 << 20);
    put(text, sizes[k]);
    assert_int_equal(control_readfile(&f, "control/num", sizes[k] + 1), 1);
    assert_int_equal(f.len, sizes[k]);
    if (sizes[k]) assert_memory_equal(f.s, text, sizes[k]);
    assert_int_equal(control_readfile(&f, "control/num", sizes[k]), 1);     /* exactly the cap */
    assert_int_equal(f.len, sizes[k]);
    if (sizes[k]) {
      errno = 0;
      assert_int_equal(control_readfile(&f, "control/num", sizes[k] - 1), -1);
      assert_int_equal(errno, EFBIG);
    }
    str_free(&f);
  }
  size_t under[] = { 0, 50, 99, 100 };              /* the string's own cap, the file within it */
  for (size_t k = 0; k < sizeof under / sizeof *under; k++) {
    str small = STR_INIT(100);
    put(text, under[k]);
    assert_int_equal(control_readfile(&small, "control/num", 1 << 20), 1);
    assert_int_equal(small.len, under[k]);
    str_free(&small);
  }
  str small = STR_INIT(100);                        /* and the file beyond it */
  put(text, 101);
  assert_int_equal(control_readfile(&small, "control/num", 1 << 20), -1);
  assert_int_equal(errno, EFBIG);
  str_free(&small);
  str dflt = STR_INIT(0);                           /* 0: str.h's 1 MiB */
  put(text, 20000);
  assert_int_equal(control_readfile(&dflt, "control/num", 64 << 20), 1);
  assert_int_equal(dflt.len, 20000);
  str_free(&dflt);
}

/* between control_dir_open() and control_dir_close() a file the listing
 * did not hold reads as missing; listed files read as ever; afterwards
 * every name is looked up again */
static void test_dir_listing(void **state)
{
  char p[512];
  str line = STR_INIT(1024);
  (void)state;
  put("listed\n", 7);
  snprintf(p, sizeof p, "%s/control/late", home);
  unlink(p);
  assert_int_equal(control_dir_open(), 0);
  assert_int_equal(control_readline(&line, "num", NULL), 1);
  assert_string_equal(str_cstr(&line), "listed");
  FILE *f = fopen(p, "w");                          /* after the listing */
  assert_non_null(f);
  fputs("late\n", f);
  fclose(f);
  for (int i = 0; i < 40; i++) {                    /* absent names, a filter's collisions among them */
    char name[32];
    snprintf(name, sizeof name, "absent%d", i);
    assert_int_equal(control_readline(&line, name, "dflt"), 0);
    assert_string_equal(str_cstr(&line), "dflt");
  }
  control_dir_close();
  assert_int_equal(control_readline(&line, "late", NULL), 1);
  assert_string_equal(str_cstr(&line), "late");
  assert_int_equal(control_dir_open(), 0);
  assert_int_equal(control_readline(&line, "late", NULL), 1);
  chmod(p, 0);                                      /* listed but unreadable: an error, never missing */
  if (geteuid() != 0) assert_int_equal(control_readline(&line, "late", NULL), -1);
  control_dir_close();
  unlink(p);
  setenv("MXGATE_HOME", "/nonexistent/mxgate-unit", 1);
  assert_int_equal(control_dir_open(), -1);
  assert_int_equal(errno, ENOENT);
  setenv("MXGATE_HOME", home, 1);
  str_free(&line);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_numbers),
    cmocka_unit_test(test_lines_and_lists),
    cmocka_unit_test(test_nul_bytes_refused),
    cmocka_unit_test(test_readfile_sizes),
    cmocka_unit_test(test_dir_listing),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
