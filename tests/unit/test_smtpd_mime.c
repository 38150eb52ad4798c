/* test_smtpd_mime.c -- the streaming MIME scanner (src/smtpd/mime.c):
 * which bodies are reported as base64 content, fed whole and byte by byte,
 * with nested multiparts, folding, CRLF, case, message/rfc822, and hostile
 * input (unterminated boundaries, deep nesting, 1 MB lines, 10 000 parts). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "mime.h"

struct record {
  int parts;
  size_t len;
  char text[1 << 16];           /* content of all parts, '|' before each part */
};

static void on_part(void *ctx)
{
  struct record *r = ctx;
  r->parts++;
  if (r->len < sizeof r->text) r->text[r->len++] = '|';
}

static void on_content(void *ctx, const char *p, size_t n)
{
  struct record *r = ctx;
  for (size_t i = 0; i < n && r->len < sizeof r->text; i++) r->text[r->len++] = p[i];
}

/* feed msg in pieces of step bytes (0: whole); the reported content */
static struct record *scan(const char *msg, size_t len, size_t step, struct mime *m)
{
  static struct record r;
  memset(&r, 0, sizeof r);
  struct mime_events ev = { &r, on_part, on_content };
  mime_init(m, &ev);
  if (!step) step = len ? len : 1;
  for (size_t off = 0; off < len; off += step) mime_feed(m, msg + off, len - off < step ? len - off : step);
  mime_finish(m);
  r.text[r.len < sizeof r.text ? r.len : sizeof r.text - 1] = 0;
  return &r;
}

static void expect(const char *msg, int parts, const char *content)
{
  static struct mime m;
  size_t steps[] = { 0, 1, 2, 3, 7, 64 };
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    struct record *r = scan(msg, strlen(msg), steps[i], &m);
    if (r->parts != parts || strcmp(r->text, content) != 0)
      fail_msg("step %zu: %d parts, content '%s' (expected %d, '%s')", steps[i], r->parts, r->text, parts, content);
  }
}

static void single_part_base64(void **st)
{
  expect("Subject: x\nContent-Transfer-Encoding: base64\n\nTVqQAAMA\nAAAE\n", 1, "|TVqQAAMA\nAAAE\n");
}

static void not_base64_is_silent(void **st)
{
  expect("Subject: x\nContent-Type: text/plain\n\nTVqQAAMAAAAE\n", 0, "");
}

static void multipart_nested_folded_crlf(void **st)
{
  expect("Content-Type: multipart/mixed;\r\n\tboundary=\"outer\"\r\n\r\npreamble\r\n"
         "--outer\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
         "--outer\r\ncontent-type: MULTIPART/alternative; BOUNDARY=inner\r\n\r\n"
         "--inner\r\nCONTENT-TRANSFER-ENCODING:  Base64\r\n\r\nQUJD\r\n"
         "--inner--\r\n"
         "--outer\r\nContent-Transfer-Encoding: base64\r\n\r\nREVG\r\n"
         "--outer--\r\nepilogue\r\n", 2, "|QUJD\r\n|REVG\r\n");
}

static void boundary_lines_are_not_content(void **st)
{
  expect("Content-Type: multipart/mixed; boundary=b\n\n"
         "--b\nContent-Transfer-Encoding: base64\n\nAAAA\n--bx\nBBBB\n--b  \n\n--b--\n", 1,
         "|AAAA\n--bx\nBBBB\n");
}

static void outer_boundary_ends_unterminated_inner(void **st)
{
  expect("Content-Type: multipart/mixed; boundary=o\n\n"
         "--o\nContent-Type: multipart/mixed; boundary=i\n\n"
         "--i\nContent-Transfer-Encoding: base64\n\nAAAA\n"
         "--o\nContent-Transfer-Encoding: base64\n\nBBBB\n--o--\n", 2, "|AAAA\n|BBBB\n");
}

static void enclosed_message(void **st)
{
  expect("Content-Type: multipart/mixed; boundary=o\n\n"
         "--o\nContent-Type: message/rfc822\n\n"
         "Subject: inner\nContent-Transfer-Encoding: base64\n\nCCCC\n--o--\n", 1, "|CCCC\n");
}

static void long_base64_line_streams(void **st)
{
  static struct mime m;
  size_t n = 1 << 20;
  const char *head = "Content-Transfer-Encoding: base64\n\n";
  char *msg = malloc(strlen(head) + n + 2);
  strcpy(msg, head);
  memset(msg + strlen(head), 'A', n);
  strcpy(msg + strlen(head) + n, "\n");
  struct record *r = scan(msg, strlen(msg), 4096, &m);
  assert_int_equal(r->parts, 1);
  assert_int_equal(r->len, sizeof r->text);      /* all reported, none kept */
  free(msg);
}

static void huge_header_line_and_many_parts(void **st)
{
  static struct mime m;
  size_t cap = 4 << 20, len = 0;
  char *msg = malloc(cap);
  len += (size_t)sprintf(msg, "Content-Type: multipart/mixed; boundary=b\nX-Long: ");
  memset(msg + len, 'x', 1 << 20); len += 1 << 20;
  msg[len++] = '\n'; msg[len++] = '\n';
  for (int i = 0; i < 10000; i++)
    len += (size_t)sprintf(msg + len, "--b\nContent-Transfer-Encoding: base64\n\nQQ==\n");
  struct record *r = scan(msg, len, 65536, &m);
  assert_int_equal(r->parts, 10000);
  assert_int_equal(m.parts, 10001);
  free(msg);
}

static void deep_nesting_is_bounded(void **st)
{
  static struct mime m;
  char *msg = malloc(1 << 20);
  size_t len = (size_t)sprintf(msg, "Content-Type: multipart/mixed; boundary=b0\n\n");
  for (int i = 1; i < 200; i++)
    len += (size_t)sprintf(msg + len, "--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n", i - 1, i);
  len += (size_t)sprintf(msg + len, "--b%d\nContent-Transfer-Encoding: base64\n\nQUJD\n", MIME_DEPTH - 1);
  struct record *r = scan(msg, len, 13, &m);
  assert_true(m.depth <= MIME_DEPTH);
  assert_int_equal(r->parts, 1);
  free(msg);
}

static void garbage_does_not_break(void **st)
{
  static struct mime m;
  static char msg[200000];
  srand(5);
  for (size_t i = 0; i < sizeof msg; i++) msg[i] = "-\n\r:; =\"abAB/+Content-Type"[rand() % 26];
  scan(msg, sizeof msg, 17, &m);
  assert_true(m.depth <= MIME_DEPTH);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(single_part_base64),
    cmocka_unit_test(not_base64_is_silent),
    cmocka_unit_test(multipart_nested_folded_crlf),
    cmocka_unit_test(boundary_lines_are_not_content),
    cmocka_unit_test(outer_boundary_ends_unterminated_inner),
    cmocka_unit_test(enclosed_message),
    cmocka_unit_test(long_base64_line_streams),
    cmocka_unit_test(huge_header_line_and_many_parts),
    cmocka_unit_test(deep_nesting_is_bounded),
    cmocka_unit_test(garbage_does_not_break),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
