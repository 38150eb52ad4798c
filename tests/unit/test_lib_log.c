/* test_lib_log.c -- the row table and the log line formatter: every row of
 * the contract exists with its exact spelling, fields are escaped so no
 * input can split or forge a line, long fields are cut, absent fields are
 * left out. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include "log.h"

/* docs/log-rows.md is the contract: the first cell of each of its tables'
 * rows names a row, or several as "A::T::c1 / c2 / c3". Every one of them
 * must be in rows.def with that exact spelling, and together they cover
 * the seed's 56 rows and every row of rows.def. */
static void test_every_documented_row_exists(void **st)
{
  (void)st;
  FILE *f = fopen("docs/log-rows.md", "r");
  assert_non_null(f);
  char line[1024];
  int seen[ROW_COUNT] = {0}, n = 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "| ", 2) != 0 || !strstr(line, "::")) continue;
    char *cell = line + 2, *end = strstr(cell, " |");
    if (!end) continue;
    *end = 0;
    char prefix[128] = "", name[256];
    for (char *tok = strtok(cell, "/"); tok; tok = strtok(NULL, "/")) {
      while (*tok == ' ') tok++;
      size_t len = strlen(tok);
      while (len && tok[len - 1] == ' ') tok[--len] = 0;
      char *last = strstr(tok, "::") ? strrchr(tok, ':') : NULL;
      if (last) {                      /* a whole name: its prefix serves the next */
        snprintf(prefix, sizeof prefix, "%.*s", (int)(last + 1 - tok), tok);
        snprintf(name, sizeof name, "%s", tok);
      } else {
        assert_true(prefix[0] != 0);
        snprintf(name, sizeof name, "%s%s", prefix, tok);
      }
      if (!strncmp(name, "Accept::AUTH::type", 18)) continue;   /* the seed's placeholder */
      int id = row_find(name);
      if (id < 0) print_message("documented but not in rows.def: %s\n", name);
      assert_true(id >= 0);
      char back[128];
      row_name((enum row_id)id, back, sizeof back);
      assert_string_equal(back, name);
      if (!seen[id]) n++;
      seen[id] = 1;
    }
  }
  fclose(f);
  for (int id = 0; id < ROW_COUNT; id++) {
    char name[128];
    row_name((enum row_id)id, name, sizeof name);
    if (!seen[id]) print_message("in rows.def but not documented: %s\n", name);
    assert_true(seen[id]);
  }
  assert_true(n >= 56);
}

static size_t esc(const char *in, size_t n, char *out) { return log_escape(out, 4 * LOG_FIELD_MAX + 8, in, n); }

static void test_escape_classes(void **st)
{
  (void)st;
  char out[4 * LOG_FIELD_MAX + 8];
  esc("a b\r\nc\td\x7f" "e\\f'g\x01", 15, out);
  assert_string_equal(out, "a\\x20b\\x0d\\x0ac\\x09d\\x7fe\\x5cf\\x27g\\x01");
  esc("\0x", 2, out);
  assert_string_equal(out, "\\x00x");
  esc("caf\xc3\xa9 \xe2\x82\xac", 9, out);                        /* valid UTF-8 stays */
  assert_string_equal(out, "caf\xc3\xa9\\x20\xe2\x82\xac");
  esc("\xc0\xaf", 2, out);                                        /* overlong */
  assert_string_equal(out, "\\xc0\\xaf");
  esc("\xed\xa0\x80", 3, out);                                    /* surrogate */
  assert_string_equal(out, "\\xed\\xa0\\x80");
  esc("\xf4\x90\x80\x80", 4, out);                                /* above U+10FFFF */
  assert_string_equal(out, "\\xf4\\x90\\x80\\x80");
  esc("\xe2\x82", 2, out);                                        /* truncated sequence */
  assert_string_equal(out, "\\xe2\\x82");
}

static void test_cut_at_256(void **st)
{
  (void)st;
  char in[300], out[4 * LOG_FIELD_MAX + 8];
  memset(in, 'x', sizeof in);
  size_t n = esc(in, sizeof in, out);
  assert_int_equal(n, 259);
  assert_string_equal(out + 256, "...");
  memset(in, 'y', 255);
  memcpy(in + 255, "\xc3\xa9", 2);                               /* a character across the limit is not split */
  n = esc(in, 257, out);
  assert_string_equal(out + 255, "...");
}

static void test_line_layout(void **st)
{
  (void)st;
  char line[LOG_LINE_MAX];
  struct log_fields f = { .tag = "qmail-smtpd", .pid = 42, .ip = log_cstr("192.0.2.1"), .host = log_cstr(""),
                          .proto = log_cstr("ESMTP"), .helo = log_cstr("h"), .from = log_cstr(""),
                          .rcpt = log_cstr("a@b"), .detail = log_cstr("qp 1") };
  log_format(line, sizeof line, ROW_DATA_QUEUED, &f);
  assert_string_equal(line, "qmail-smtpd: pid 42 Accept::DATA::Queued: S:192.0.2.1:unknown P:ESMTP H:h F: T:a@b 'qp\\x201'\n");
  struct log_fields g = { .tag = "qmail-popup", .pid = 7, .proto = log_cstr("POP3"), .user = log_cstr("al'ice") };
  log_format(line, sizeof line, ROW_POP_USER_OK, &g);
  assert_string_equal(line, "qmail-popup: pid 7 Accept::AUTH::User: S:unknown:unknown P:POP3 ?~ 'al\\x27ice'\n");
}

static void test_forged_fields_stay_in_place(void **st)
{
  (void)st;
  char line[LOG_LINE_MAX];
  const char *evil = "x\nqmail-smtpd: pid 1 Accept::RCPT::Rcpthosts_Rcptto: S:1.2.3.4:unknown T:forged";
  struct log_fields f = { .tag = "qmail-smtpd", .pid = 9, .ip = log_cstr("192.0.2.2"), .proto = log_cstr("SMTP"),
                          .helo = log_cstr(evil) };
  size_t n = log_format(line, sizeof line, ROW_SNDR_BAD_HELO, &f);
  assert_ptr_equal(memchr(line, '\n', n), line + n - 1);            /* one line */
  assert_null(strstr(line, " T:"));                                 /* no field made from the input */
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_every_documented_row_exists), cmocka_unit_test(test_escape_classes),
    cmocka_unit_test(test_cut_at_256), cmocka_unit_test(test_line_layout),
    cmocka_unit_test(test_forged_fields_stay_in_place),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
