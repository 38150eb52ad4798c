/* fuzz_sessions_parse.c -- libFuzzer: the log line parser and the session
 * join never read out of bounds or crash, whatever the lines; neither do
 * the chunked join (the input cut in two, the halves merged) and the
 * counting summary. */
#include "sessions.h"
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void feed(struct table *t, struct report *r, const char *p, const char *end)
{
  struct parse_memo memo = { { 0 }, 0 };
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    struct logline l;
    if (parse_line(p, n, &l, &memo)) table_line(t, &l, r);
    p += n + 1;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static FILE *null;
  if (!null) null = fopen("/dev/null", "w");
  const char *p = (const char *)data, *end = p + size;
  /* every session printed as JSON */
  struct report r = { .out = null, .format = FMT_JSON };
  struct table *t = table_new();
  feed(t, &r, p, end);
  table_flush(t, &r);
  table_free(t);
  /* counted into a summary in two chunks, cut at a line end */
  const char *cut = size ? memchr(p + size / 2, '\n', (size_t)(end - (p + size / 2))) : NULL;
  cut = cut ? cut + 1 : end;
  struct report s = { .out = null, .sum = summary_new(false), .quiet = true, .stream = true };
  struct report s2 = s;
  s2.sum = summary_new(false);
  t = table_new();
  struct table *t2 = table_new_chunk();
  feed(t, &s, p, cut);
  feed(t2, &s2, cut, end);
  table_merge(t, t2, &s);
  table_free(t2);
  summary_merge(s.sum, s2.sum);
  table_flush(t, &s);
  table_free(t);
  summary_print(s.sum, &s, null);
  summary_free(s.sum);
  return 0;
}
