/* test_smtpd_mime_checks.c -- the Bad_MIME / Bad_Loader checks of
 * content.c over the MIME scanner, fed in pieces of every size: the first
 * 9 significant base64 characters of each part, 5-character loader runs
 * across lines, blanks inside base64 ('!'), the '+' and '-' settings, a
 * missing cdb, bad settings, and a scanner fault being a deferral. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <cdb.h>
#include "smtpd.h"
#include "content.h"

static char home[256];

static void make_cdb(const char *name, const char *const *keys)
{
  char path[512];
  snprintf(path, sizeof path, "%s/control/%s", home, name);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  struct cdb_make cm;
  cdb_make_start(&cm, fd);
  for (; *keys; keys++) cdb_make_add(&cm, *keys, (unsigned)strlen(*keys), "", 0);
  cdb_make_finish(&cm);
  close(fd);
}

static int setup(void **st)
{
  snprintf(home, sizeof home, "/tmp/mxgate-unit-mime-%ld", (long)getpid());
  char dir[300];
  snprintf(dir, sizeof dir, "%s/control", home);
  mkdir(home, 0755);
  mkdir(dir, 0755);
  setenv("MXGATE_HOME", home, 1);
  make_cdb("badmimetypes.cdb", (const char *const[]){ "TVqQAAMAA", NULL });
  make_cdb("badloadertypes.cdb", (const char *const[]){ "MxgQz", NULL });
  return 0;
}

static int teardown(void **st)
{
  char path[512];
  const char *files[] = { "control/badmimetypes.cdb", "control/badloadertypes.cdb", "control", "" };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", home, files[i]);
    if (unlink(path) < 0) rmdir(path);
  }
  return 0;
}

static void env(const char *mime, const char *loader)
{
  unsetenv("BADMIMETYPE"); unsetenv("BADLOADERTYPE");
  unsetenv("CLAMD"); unsetenv("QHPSI"); unsetenv("SPAMD");
  if (mime) setenv("BADMIMETYPE", mime, 1);
  if (loader) setenv("BADLOADERTYPE", loader, 1);
}

/* the verdict on msg fed in pieces of step bytes (0: whole) */
static enum row_id verdict(struct session *s, const char *msg, size_t step, char *detail, size_t cap)
{
  struct content *c = content_begin(s);
  if (!c) { detail[0] = 0; return ROW_COUNT; }
  size_t len = strlen(msg);
  if (!step) step = len;
  for (size_t off = 0; off < len; off += step) content_feed(c, msg + off, len - off < step ? len - off : step);
  const char *d = NULL;
  str hdrs = STR_INIT(4096);
  enum row_id row = content_verdict(c, -1, &d, &hdrs);
  snprintf(detail, cap, "%s", d ? d : "");
  str_free(&hdrs);
  content_end(c);
  return row;
}

static void expect(const char *msg, enum row_id row, const char *detail)
{
  struct session s;
  memset(&s, 0, sizeof s);
  s.pid = getpid();
  s.logfd = open("/dev/null", O_WRONLY);
  size_t steps[] = { 0, 1, 2, 5, 9, 77 };
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    char d[256];
    enum row_id r = verdict(&s, msg, steps[i], d, sizeof d);
    if (r != row || strcmp(d, detail) != 0)
      fail_msg("step %zu: row %d detail '%s' (expected %d '%s')", steps[i], (int)r, d, (int)row, detail);
  }
  close(s.logfd);
}

#define ATTACH(body) "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n" \
  "--b\nContent-Transfer-Encoding: base64\n\n" body "\n--b--\n"

static void first_nine_across_lines(void **st)
{
  env("", NULL);
  expect(ATTACH("TVq\nQAA\nMAAAAEAAAA"), ROW_DATA_BAD_MIME, "TVqQAAMAA");
  expect(ATTACH("AAAATVqQAAMAA"), ROW_COUNT, "");           /* not the first 9 */
  expect("Subject: x\n\nTVqQAAMAAAAE\n", ROW_COUNT, "");      /* not base64 */
}

static void minus_is_off_and_plus_spares_trusted(void **st)
{
  env("-", NULL);
  expect(ATTACH("TVqQAAMAAAAE"), ROW_COUNT, "");
  env("+", NULL);
  expect(ATTACH("TVqQAAMAAAAE"), ROW_DATA_BAD_MIME, "TVqQAAMAA");
  struct session s;
  memset(&s, 0, sizeof s);
  s.authenticated = true;
  s.logfd = -1;
  assert_null(content_begin(&s));                            /* nothing left to check */
}

static void blanks_with_bang(void **st)
{
  env("!", NULL);
  expect(ATTACH("QUJDREVG R0hJ\nSktM"), ROW_DATA_BAD_MIME, "UJDREVG R");
  expect(ATTACH("QUJD \nREVG"), ROW_COUNT, "");              /* a trailing blank is no gap */
  env("", NULL);
  expect(ATTACH("QUJDREVG R0hJ\nSktM"), ROW_COUNT, "");
}

static void loader_runs_across_lines(void **st)
{
  env(NULL, "M");
  expect(ATTACH("QUJDMx\ngQzAAA"), ROW_DATA_BAD_LOADER, "MxgQz");
  expect(ATTACH("QUJDMxgAAA"), ROW_COUNT, "");
  env(NULL, "-");
  expect(ATTACH("QUJDMxgQzAAA"), ROW_COUNT, "");
}

static void bad_settings_and_missing_cdb_defer_or_warn(void **st)
{
  env(NULL, "MZ");
  expect(ATTACH("QUJD"), ROW_DATA_SCANNER_FAILURE, "BADLOADERTYPE: not one base64 character, '+' and one, or '-'");
  env("x", NULL);
  expect(ATTACH("QUJD"), ROW_DATA_SCANNER_FAILURE, "BADMIMETYPE: not '', '!', '+' or '-'");
  env("", NULL);
  setenv("SPAMD_TIMEOUT", "10s", 1);
  expect(ATTACH("QUJD"), ROW_DATA_SCANNER_FAILURE,
         "CLAMD_TIMEOUT, QHPSI_TIMEOUT, SPAMD_TIMEOUT: not a number of seconds from 1 to 86400");
  unsetenv("SPAMD_TIMEOUT");
  char path[512];
  snprintf(path, sizeof path, "%s/control/badmimetypes.cdb", home);
  rename(path, "/tmp/mxgate-unit-mime-moved");
  env("", NULL);
  expect(ATTACH("TVqQAAMAAAAE"), ROW_COUNT, "");              /* missing: off, with a warning */
  FILE *f = fopen(path, "w");
  fputs("not a cdb", f);
  fclose(f);
  expect(ATTACH("TVqQAAMAAAAE"), ROW_DATA_SCANNER_FAILURE, "control/badmimetypes.cdb: unreadable or not a cdb");
  rename("/tmp/mxgate-unit-mime-moved", path);
}

static void scanner_down_is_a_deferral(void **st)
{
  env(NULL, NULL);
  setenv("CLAMD", "127.0.0.1#1", 1);
  expect("Subject: x\n\nhello\n", ROW_DATA_SCANNER_FAILURE, "clamd: cannot connect to 127.0.0.1#1: Connection refused");
  setenv("BASE64", "", 1);
  expect("Subject: x\n\nhello\n", ROW_COUNT, "");            /* no base64 part: not scanned */
  unsetenv("BASE64");
  unsetenv("CLAMD");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(first_nine_across_lines),
    cmocka_unit_test(minus_is_off_and_plus_spares_trusted),
    cmocka_unit_test(blanks_with_bang),
    cmocka_unit_test(loader_runs_across_lines),
    cmocka_unit_test(bad_settings_and_missing_cdb_defer_or_warn),
    cmocka_unit_test(scanner_down_is_a_deferral),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
