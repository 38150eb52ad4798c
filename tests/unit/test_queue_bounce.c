/* test_queue_bounce.c -- bounces (src/queue/bounce.c): the Status of a
 * failed recipient taken from the enhanced code of its reply (RFC 3463)
 * or the fallback; who gets a bounce (sender, double bounce, nobody); the
 * DSN entry's envelope; a reply cannot add a header line to the DSN; the
 * warning (Action: delayed) goes to a real sender only. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "queue.h"

static const char msg[] = "Subject: t\nFrom: s@r.test\n\nthe secret body\n";

static int setup(void **st)
{
  static char home[] = "/tmp/mxgate-unit-XXXXXX";
  char control[4096];
  (void)st;
  if (!mkdtemp(home)) return -1;
  setenv("MXGATE_HOME", home, 1);
  snprintf(control, sizeof control, "%s/control", home);
  mkdir(control, 0700);
  snprintf(control, sizeof control, "%s/control/me", home);
  FILE *f = fopen(control, "w");
  if (!f) return -1;
  fputs("mx.unit.test\n", f);
  fclose(f);
  return entry_make_dirs() == QQ_OK ? 0 : -1;
}

/* every test removes its entries: the home is left empty and removed */
static int teardown(void **st)
{
  static const char *paths[] = { "control/me", "control", "queue/tmp", "queue/todo", "queue", "" };
  char path[4096];
  (void)st;
  for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
    snprintf(path, sizeof path, "%s/%s", getenv("MXGATE_HOME"), paths[i]);
    if (unlink(path) < 0) rmdir(path);
  }
  return 0;
}

static const char *status(const char *reply, bool expired)
{
  static char out[16];
  bounce_status(reply, expired, out, sizeof out);
  return out;
}

static void test_status_from_the_enhanced_code(void **st)
{
  (void)st;
  assert_string_equal(status("550 5.1.1 <a@x.test>: user unknown", false), "5.1.1");
  assert_string_equal(status("550-5.7.1 rejected by policy 550 5.7.1 see above", false), "5.7.1");
  assert_string_equal(status("552 5.3.4", false), "5.3.4");
  assert_string_equal(status("554 5.1.10 null MX", false), "5.1.10");
  assert_string_equal(status("550 5.100.999 wide", false), "5.100.999");
  /* an expired recipient keeps the code its last reply gave */
  assert_string_equal(status("451 4.4.1 connection refused", true), "4.4.1");
}

static void test_status_fallbacks(void **st)
{
  (void)st;
  assert_string_equal(status("554 transaction failed", false), "5.0.0");
  assert_string_equal(status("", false), "5.0.0");
  assert_string_equal(status(NULL, false), "5.0.0");
  assert_string_equal(status("", true), "4.4.7");
  assert_string_equal(status("421 service not available", true), "4.4.7");
  /* not an enhanced code: a 2.x.x, a class 3, too many digits, a cut code, no SMTP code before it */
  assert_string_equal(status("550 2.0.0 odd", false), "5.0.0");
  assert_string_equal(status("550 3.1.1 odd", false), "5.0.0");
  assert_string_equal(status("550 5.1.1234 long", false), "5.0.0");
  assert_string_equal(status("550 5.1 short", false), "5.0.0");
  assert_string_equal(status("550 5.1.1, comma", false), "5.0.0");
  assert_string_equal(status("5.1.1 no code", false), "5.0.0");
  assert_string_equal(status("55 5.1.1 two digits", false), "5.0.0");
  assert_string_equal(status("delivered to a Maildir", true), "4.4.7");
}

/* an entry of sender for rcpts, loaded (locked by nobody: the test is alone) */
static void make_entry(struct entry *e, const char *env, size_t envlen, char *todo, size_t cap)
{
  struct entry_writer w;
  assert_int_equal(entry_create(&w), QQ_OK);
  assert_true(entry_write(&w, msg, sizeof msg - 1));
  assert_int_equal(entry_seal(&w, env, envlen), QQ_OK);
  assert_int_equal(entry_publish(&w), QQ_OK);
  snprintf(todo, cap, "%s", w.todo);
  close(w.fd);
  int fd = open(todo, O_RDWR | O_APPEND);
  assert_true(fd >= 0);
  assert_int_equal(entry_load(fd, e), QQ_OK);
}

static void drop(struct entry *e, const char *todo)
{
  close(e->fd);
  entry_free(e);
  unlink(todo);
}

/* the whole file of queue/todo/id */
static char *slurp(const char *id, size_t *n)
{
  char path[4096];
  entry_path(path, sizeof path, "todo", id);
  int fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  struct stat s;
  assert_int_equal(fstat(fd, &s), 0);
  char *p = calloc(1, (size_t)s.st_size + 1);
  assert_int_equal(read(fd, p, (size_t)s.st_size), s.st_size);
  close(fd);
  unlink(path);
  *n = (size_t)s.st_size;
  return p;
}

static void test_who_gets_the_bounce(void **st)
{
  (void)st;
  static const char to_sender[] = "Fs@r.test\0Ta@x.test\0", dbl[] = "F\0Ta@x.test\0", triple[] = "F#@[]\0Ta@x.test\0";
  char todo[4096], id[256];
  struct entry e;
  struct bounce_failure f = { .rcpt = 0 };
  size_t n;

  make_entry(&e, to_sender, sizeof to_sender, todo, sizeof todo);
  assert_int_equal(bounce_kind_of(&e), BOUNCE_TO_SENDER);
  snprintf(e.rcpt[0].reply, sizeof e.rcpt[0].reply, "550 5.1.1 unknown\r\nX-Injected: yes");
  assert_int_equal(bounce_commit(&e, BOUNCE_TO_SENDER, &f, 1, NULL, id, sizeof id), QQ_OK);
  assert_true(*id);
  char *p = slurp(id, &n);
  assert_memory_equal(p + n - 13, "F\0Ts@r.test\0\0", 13);        /* from <>, to the sender */
  assert_non_null(strstr(p, "\nStatus: 5.1.1\n"));
  assert_non_null(strstr(p, "\nDiagnostic-Code: smtp; 550 5.1.1 unknown??X-Injected: yes\n"));
  assert_null(strstr(p, "\nX-Injected"));
  assert_null(strstr(p, "secret body"));
  assert_non_null(strstr(p, "\nSubject: t\nFrom: s@r.test\n"));
  free(p);
  drop(&e, todo);

  make_entry(&e, dbl, sizeof dbl, todo, sizeof todo);
  assert_int_equal(bounce_kind_of(&e), BOUNCE_DOUBLE);
  assert_int_equal(bounce_commit(&e, BOUNCE_DOUBLE, &f, 1, NULL, id, sizeof id), QQ_OK);
  p = slurp(id, &n);
  assert_memory_equal(p + n - 32, "F#@[]\0Tpostmaster@mx.unit.test\0\0", 32);
  free(p);
  drop(&e, todo);

  make_entry(&e, triple, sizeof triple, todo, sizeof todo);
  assert_int_equal(bounce_kind_of(&e), BOUNCE_DISCARD);
  assert_int_equal(bounce_commit(&e, BOUNCE_DISCARD, &f, 1, NULL, id, sizeof id), QQ_OK);
  assert_string_equal(id, "");
  drop(&e, todo);

  char dir[4096];
  entry_path(dir, sizeof dir, "todo", NULL);
  DIR *d = opendir(dir);
  struct dirent *de;
  int left = 0;
  while (d && (de = readdir(d))) left += de->d_name[0] != '.';
  closedir(d);
  assert_int_equal(left, 0);                                 /* no triple bounce, nothing else */
}

static void test_warning_is_delayed_and_only_to_a_sender(void **st)
{
  (void)st;
  static const char env[] = "Fs@r.test\0Ta@x.test\0Tb@y.test\0", null_env[] = "F\0Ta@x.test\0";
  char todo[4096], id[256];
  struct entry e;
  struct bounce_failure f[2] = { { .rcpt = 0 }, { .rcpt = 1 } };
  size_t n;
  make_entry(&e, env, sizeof env, todo, sizeof todo);
  snprintf(e.rcpt[0].reply, sizeof e.rcpt[0].reply, "451 4.4.1 connection refused");
  snprintf(e.rcpt[1].reply, sizeof e.rcpt[1].reply, "550 5.1.1 odd for a delay");
  assert_int_equal(bounce_warn_commit(&e, f, 2, 1900000000, id, sizeof id), QQ_OK);
  char *p = slurp(id, &n);
  assert_memory_equal(p + n - 13, "F\0Ts@r.test\0\0", 13);
  assert_non_null(strstr(p, "\nFinal-Recipient: rfc822; a@x.test\nAction: delayed\nStatus: 4.4.1\n"
                            "Diagnostic-Code: smtp; 451 4.4.1 connection refused\nWill-Retry-Until: "));
  assert_non_null(strstr(p, "\nFinal-Recipient: rfc822; b@y.test\nAction: delayed\nStatus: 4.0.0\n"));
  assert_null(strstr(p, "Action: failed"));
  free(p);
  drop(&e, todo);

  make_entry(&e, null_env, sizeof null_env, todo, sizeof todo);   /* a bounce is never warned about */
  assert_int_equal(bounce_warn_commit(&e, f, 1, 0, id, sizeof id), QQ_OK);
  assert_string_equal(id, "");
  drop(&e, todo);
}

static void test_mark_appends_a_bounced_record(void **st)
{
  (void)st;
  static const char env[] = "Fs@r.test\0Ta@x.test\0Tb@y.test\0";
  char todo[4096];
  struct entry e;
  str records = STR_INIT(0);
  make_entry(&e, env, sizeof env, todo, sizeof todo);
  e.rcpt[1].attempts = 3;
  bounce_mark(&records, &e, 1, "550 5.1.1 no");
  assert_int_equal(records.len, strlen("S 1 b 3 0 550 5.1.1 no\n"));
  assert_memory_equal(records.s, "S 1 b 3 0 550 5.1.1 no\n", records.len);
  assert_int_equal(e.rcpt[1].state, 'b');
  str_free(&records);
  drop(&e, todo);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_status_from_the_enhanced_code),
    cmocka_unit_test(test_status_fallbacks),
    cmocka_unit_test(test_who_gets_the_bounce),
    cmocka_unit_test(test_warning_is_delayed_and_only_to_a_sender),
    cmocka_unit_test(test_mark_appends_a_bounced_record),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
