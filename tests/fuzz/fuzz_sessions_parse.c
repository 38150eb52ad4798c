/* fuzz_sessions_parse.c -- libFuzzer: the log line parser and the session
 * join never read out of bounds or crash, whatever the lines. */
#include "sessions.h"
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static FILE *null;
  if (!null) null = fopen("/dev/null", "w");
  struct report r = { .out = null, .format = FMT_JSON };
  struct table *t = table_new();
  const char *p = (const char *)data, *end = p + size;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    struct logline l;
    if (parse_line(p, n, &l)) table_line(t, &l, &r);
    p += n + 1;
  }
  table_flush(t, &r);
  table_free(t);
  return 0;
}
