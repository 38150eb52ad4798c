/* fuzz_sessions_parse.c -- libFuzzer: the log line parser and the session
 * join never read out of bounds or crash, whatever the lines; neither do
 * the chunked join (the input cut in two, the halves merged, each block
 * indexed by one of the vector codes the CPU has), the counting summary
 * and the join of mxgate-send's delivery lines, read twice or once. */
#include "sessions.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* line by line, each scanned on its own (parse_line) */
static void feed(struct table *t, struct report *r, const char *p, const char *end)
{
  struct parse_memo memo = { { 0 }, 0, false };
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    struct logline l;
    if (parse_line(p, n, &l, &memo)) table_line(t, &l, r);
    p += n + 1;
  }
}

/* as the reader does: the block scanned once, its lines found in the
 * newline bits (parse_scanned); the block is copied so that a read past
 * its end is one past the fuzzer's input too */
static void feed_block(struct table *t, struct report *r, const char *p, const char *end)
{
  size_t len = (size_t)(end - p);
  char *copy = malloc(len ? len : 1);
  struct scan ix = { 0 };
  if (!copy) return;
  memcpy(copy, p, len);
  if (scan_block(&ix, copy, len)) {
    struct parse_memo memo = { { 0 }, 0, false };
    size_t start = 0;
    for (size_t w = 0; w <= len / 64; w++)
      for (unsigned long long m = ix.nl[w]; m; m &= m - 1) {
        size_t at = 64 * w + (size_t)__builtin_ctzll(m);
        struct logline l;
        if (parse_scanned(&ix, copy + start, at - start, &l, &memo)) table_line(t, &l, r);
        start = at + 1;
      }
    struct logline l;
    if (start < len && parse_scanned(&ix, copy + start, len - start, &l, &memo)) table_line(t, &l, r);
  }
  scan_free(&ix);
  free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static FILE *null;
  if (!null) null = fopen("/dev/null", "w");
  const char *p = (const char *)data, *end = p + size;
  /* every session printed as JSON with its deliveries: the lines read
   * twice, as files are (an index of the delivery and Queued lines, then the join) */
  struct report r = { .out = null, .format = FMT_JSON, .dlv = deliveries_new(DLV_INDEXING) };
  struct table *t = table_new();
  feed(t, &r, p, end);
  deliveries_resolve(r.dlv);
  r.dlv->phase = DLV_JOINING;
  feed(t, &r, p, end);
  table_flush(t, &r);
  report_unjoined(&r);
  deliveries_free(r.dlv);
  table_free(t);
  /* read once, as standard input is: each delivery in text on its own, counted */
  struct report once = { .out = null, .format = FMT_TEXT, .dlv = deliveries_new(DLV_LIVE), .sum = summary_new(false) };
  t = table_new();
  feed(t, &once, p, end);
  table_flush(t, &once);
  table_free(t);
  deliveries_free(once.dlv);
  summary_print(once.sum, &once, null);
  summary_free(once.sum);
  /* counted into a summary in two chunks, cut at a line end */
  const char *cut = size ? memchr(p + size / 2, '\n', (size_t)(end - (p + size / 2))) : NULL;
  cut = cut ? cut + 1 : end;
  struct report s = { .out = null, .sum = summary_new(false), .quiet = true, .stream = true };
  struct report s2 = s;
  s2.sum = summary_new(false);
  t = table_new();
  struct table *t2 = table_new_chunk();
  static int best = -1;
  if (best < 0) best = scan_level(-1);
  scan_level(size ? data[0] % (best + 1) : best);        /* each vector code the CPU has, in turn */
  feed_block(t, &s, p, cut);
  feed_block(t2, &s2, cut, end);
  table_merge(t, t2, &s);
  table_free(t2);
  summary_merge(s.sum, s2.sum);
  table_flush(t, &s);
  table_free(t);
  summary_print(s.sum, &s, null);
  summary_free(s.sum);
  return 0;
}
