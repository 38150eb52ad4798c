/* test_queue_entry.c -- the one-file queue entry (src/queue/entry.c):
 * what is written reads back; an entry that is not whole (cut short,
 * one bit changed, no header) fails its check; state records append, the
 * last one of a recipient wins, one cut short is ignored, and a reply
 * cannot add a line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "queue.h"

static const char msg[] = "Subject: t\n\nbody \0 with a NUL\n";
static const char env[] = "Fs@r.test\0Ta@x.test\0Tb@y.test\0";      /* and the final NUL of the literal */

static int setup(void **st)
{
  static char home[] = "/tmp/mxgate-unit-XXXXXX";
  (void)st;
  if (!mkdtemp(home)) return -1;
  setenv("MXGATE_HOME", home, 1);
  return entry_make_dirs() == QQ_OK ? 0 : -1;
}

/* every test removes its entries: the home's directories are empty */
static int teardown(void **st)
{
  static const char *subs[] = { "queue/tmp", "queue/todo", "queue", "" };
  char path[4096];
  (void)st;
  for (size_t i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "%s/%s", getenv("MXGATE_HOME"), subs[i]);
    rmdir(path);
  }
  return 0;
}

/* a sealed, published entry; its path in todo */
static void make_entry(char *todo, size_t cap)
{
  struct entry_writer w;
  assert_int_equal(entry_create(&w), QQ_OK);
  assert_true(entry_write(&w, msg, 10));
  assert_true(entry_write(&w, msg + 10, sizeof msg - 1 - 10));
  assert_int_equal(entry_seal(&w, env, sizeof env), QQ_OK);
  assert_int_equal(entry_publish(&w), QQ_OK);
  snprintf(todo, cap, "%s", w.todo);
  close(w.fd);
}

static int load(const char *path, struct entry *e)
{
  int fd = open(path, O_RDWR | O_APPEND);
  assert_true(fd >= 0);
  int r = entry_load(fd, e);
  if (r != QQ_OK) { entry_free(e); close(fd); }
  return r;
}

static void test_what_is_written_reads_back(void **st)
{
  (void)st;
  char todo[4096];
  struct entry e;
  make_entry(todo, sizeof todo);
  assert_int_equal(load(todo, &e), QQ_OK);
  assert_int_equal(e.msgoff, ENTRY_HEADER);
  assert_int_equal(e.msglen, sizeof msg - 1);
  assert_string_equal(e.env.sender, "s@r.test");
  assert_int_equal(e.env.nrcpt, 2);
  assert_string_equal(e.env.rcpt[1], "b@y.test");
  assert_int_equal(e.rcpt[0].state, 'p');
  assert_false(entry_done(&e));
  char *copy = malloc(e.msglen);
  assert_int_equal(pread(e.fd, copy, e.msglen, (off_t)e.msgoff), (ssize_t)e.msglen);
  assert_memory_equal(copy, msg, e.msglen);
  free(copy);
  close(e.fd);
  entry_free(&e);
  unlink(todo);
}

static void test_an_entry_that_is_not_whole_fails(void **st)
{
  (void)st;
  char todo[4096];
  struct entry e;
  struct stat sb;
  make_entry(todo, sizeof todo);
  assert_int_equal(stat(todo, &sb), 0);
  assert_int_equal(truncate(todo, sb.st_size - 1), 0);               /* the final NUL missing */
  assert_int_equal(load(todo, &e), QQ_READ);
  unlink(todo);
  make_entry(todo, sizeof todo);
  int fd = open(todo, O_RDWR);
  char c;
  assert_int_equal(pread(fd, &c, 1, ENTRY_HEADER + 3), 1);
  c ^= 1;                                                            /* one bit of the message */
  assert_int_equal(pwrite(fd, &c, 1, ENTRY_HEADER + 3), 1);
  close(fd);
  assert_int_equal(load(todo, &e), QQ_READ);
  unlink(todo);
  make_entry(todo, sizeof todo);
  fd = open(todo, O_RDWR);
  assert_int_equal(pwrite(fd, "\0\0\0\0\0", 5, 0), 5);               /* a header never written */
  close(fd);
  assert_int_equal(load(todo, &e), QQ_READ);
  unlink(todo);
}

static void test_state_records_append_and_the_last_wins(void **st)
{
  (void)st;
  char todo[4096], dir[4096];
  struct entry e;
  str rec = STR_INIT(1 << 20);
  entry_path(dir, sizeof dir, "todo", NULL);
  make_entry(todo, sizeof todo);
  assert_int_equal(load(todo, &e), QQ_OK);
  struct entry_rcpt r = { .state = 'p', .attempts = 1, .next_try = 1800000000 };
  snprintf(r.reply, sizeof r.reply, "451 try later\r\nS 1 d 1 0 forged");
  entry_record(&rec, 1, &r);
  r = (struct entry_rcpt){ .state = 'd', .attempts = 1 };
  snprintf(r.reply, sizeof r.reply, "250 ok");
  entry_record(&rec, 0, &r);
  entry_record_warned(&rec, 1800000123);                              /* the delay warning's record */
  assert_int_equal(entry_append(&e, &rec, dir), QQ_OK);
  close(e.fd);
  entry_free(&e);
  int fd = open(todo, O_WRONLY | O_APPEND);
  assert_int_equal(write(fd, "S 1 d 2 0 cut sh", 16), 16);            /* a record a crash cut short */
  close(fd);
  assert_int_equal(load(todo, &e), QQ_OK);
  assert_int_equal(e.rcpt[0].state, 'd');
  assert_string_equal(e.rcpt[0].reply, "250 ok");
  assert_int_equal(e.rcpt[1].state, 'p');                            /* neither the forged line nor the cut one */
  assert_int_equal(e.rcpt[1].attempts, 1);
  assert_int_equal(e.rcpt[1].next_try, 1800000000);
  assert_string_equal(e.rcpt[1].reply, "451 try later  S 1 d 1 0 forged");
  assert_int_equal(e.warned_at, 1800000123);
  assert_false(entry_done(&e));
  close(e.fd);
  entry_free(&e);
  str_free(&rec);
  unlink(todo);
}

static void test_discard_leaves_nothing(void **st)
{
  (void)st;
  struct entry_writer w;
  struct stat sb;
  assert_int_equal(entry_create(&w), QQ_OK);
  assert_true(entry_write(&w, msg, 5));
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", w.tmp);
  entry_discard(&w);
  assert_int_equal(stat(tmp, &sb), -1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_what_is_written_reads_back),
    cmocka_unit_test(test_an_entry_that_is_not_whole_fails),
    cmocka_unit_test(test_state_records_append_and_the_last_wins),
    cmocka_unit_test(test_discard_leaves_nothing),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
