/* test_queue_envelope.c -- the qmail-queue envelope (src/queue/envelope.c):
 * parsing complete, incomplete and malformed envelopes, finding the end
 * across reads, and reading from a pipe whose writer never closes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>
#include "queue.h"

static int parse(const char *raw, size_t n, struct envelope *e)
{
  memset(e, 0, sizeof *e);
  e->raw = (str)STR_INIT(1 << 20);
  assert_true(str_copyb(&e->raw, raw, n));
  return envelope_parse(e);
}

#define PARSE(lit, e) parse(lit, sizeof lit - 1, e)

static void test_parse_sender_and_recipients(void **state)
{
  struct envelope e;
  assert_int_equal(PARSE("Fa@b.test\0Tc@d.test\0Te@f.test\0\0", &e), QQ_OK);
  assert_string_equal(e.sender, "a@b.test");
  assert_int_equal(e.nrcpt, 2);
  assert_string_equal(e.rcpt[0], "c@d.test");
  assert_string_equal(e.rcpt[1], "e@f.test");
  envelope_free(&e);
}

static void test_parse_null_sender(void **state)
{
  struct envelope e;
  assert_int_equal(PARSE("F\0Tc@d.test\0\0", &e), QQ_OK);
  assert_string_equal(e.sender, "");
  assert_int_equal(e.nrcpt, 1);
  envelope_free(&e);
}

static void test_parse_incomplete_is_a_read_error(void **state)
{
  struct envelope e;
  assert_int_equal(PARSE("Fa@b.test\0Tc@d.test\0", &e), QQ_READ);   /* final NUL missing */
  envelope_free(&e);
  assert_int_equal(PARSE("Fa@b.test\0Tc@d.t", &e), QQ_READ);
  envelope_free(&e);
  assert_int_equal(PARSE("", &e), QQ_READ);
  envelope_free(&e);
}

static void test_parse_format_errors(void **state)
{
  struct envelope e;
  assert_int_equal(PARSE("Xa@b.test\0Tc@d.test\0\0", &e), QQ_ENVELOPE);  /* no F */
  envelope_free(&e);
  assert_int_equal(PARSE("Fa@b.test\0\0", &e), QQ_ENVELOPE);              /* no recipient */
  envelope_free(&e);
  assert_int_equal(PARSE("Fa@b.test\0Xc@d.test\0\0", &e), QQ_ENVELOPE);   /* not T */
  envelope_free(&e);
  assert_int_equal(PARSE("Fa@b.test\0T\0\0", &e), QQ_ENVELOPE);           /* empty recipient */
  envelope_free(&e);
}

static void test_parse_address_too_long(void **state)
{
  struct envelope e;
  char raw[3000];
  size_t n = 0;
  raw[n++] = 'F'; raw[n++] = 0; raw[n++] = 'T';
  memset(raw + n, 'x', 1500); n += 1500;
  raw[n++] = 0; raw[n++] = 0;
  assert_int_equal(parse(raw, n, &e), QQ_ADDR_TOO_LONG);
  envelope_free(&e);
}

static void test_end_found_across_chunks(void **state)
{
  static const char env[] = "Fa@b\0Tc@d\0\0trailing";
  size_t field = 0, end = 0;
  for (size_t n = 1; n <= sizeof env - 1 && !end; n++) end = envelope_end(env, n - 1, n, &field);
  assert_int_equal(end, 11);
  field = 0;
  assert_int_equal(envelope_end("F\0\0", 0, 3, &field), 3);               /* an empty envelope ends too */
  field = 0;
  assert_int_equal(envelope_end("Fa@b\0Tc@d\0", 0, 10, &field), 0);      /* not yet */
}

static void test_read_stops_at_the_end_without_eof(void **state)
{
  int p[2];
  struct envelope e;
  assert_int_equal(pipe(p), 0);
  static const char env[] = "Fs@r.test\0Ta@x.test\0\0";
  assert_int_equal(write(p[1], env, sizeof env - 1), (ssize_t)(sizeof env - 1));
  /* the writer keeps its end open: the reader must not wait for EOF */
  assert_int_equal(envelope_read(p[0], &e), QQ_OK);
  assert_int_equal(e.nrcpt, 1);
  assert_string_equal(e.rcpt[0], "a@x.test");
  envelope_free(&e);
  close(p[0]);
  close(p[1]);
}

static void test_read_eof_before_the_end(void **state)
{
  int p[2];
  struct envelope e;
  assert_int_equal(pipe(p), 0);
  static const char env[] = "Fs@r.test\0Ta@x.test\0";
  assert_int_equal(write(p[1], env, sizeof env - 1), (ssize_t)(sizeof env - 1));
  close(p[1]);
  assert_int_equal(envelope_read(p[0], &e), QQ_READ);
  envelope_free(&e);
  close(p[0]);
  assert_int_equal(pipe(p), 0);
  close(p[1]);                                                          /* nothing at all */
  assert_int_equal(envelope_read(p[0], &e), QQ_READ);
  envelope_free(&e);
  close(p[0]);
  assert_int_equal(pipe(p), 0);
  assert_int_equal(write(p[1], "garbage", 7), 7);
  close(p[1]);
  assert_int_equal(envelope_read(p[0], &e), QQ_ENVELOPE);
  envelope_free(&e);
  close(p[0]);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_parse_sender_and_recipients),
    cmocka_unit_test(test_parse_null_sender),
    cmocka_unit_test(test_parse_incomplete_is_a_read_error),
    cmocka_unit_test(test_parse_format_errors),
    cmocka_unit_test(test_parse_address_too_long),
    cmocka_unit_test(test_end_found_across_chunks),
    cmocka_unit_test(test_read_stops_at_the_end_without_eof),
    cmocka_unit_test(test_read_eof_before_the_end),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
