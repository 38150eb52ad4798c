/* fuzz_smtpd_mime.c -- libFuzzer harness for the streaming MIME scanner
 * (src/smtpd/mime.c). The first input byte picks the piece size the rest
 * is fed in, so line and boundary handling across feed calls is covered.
 * Invariants: never more content reported than input given, the boundary
 * stack within MIME_DEPTH, a part event for every base64 body counted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mime.h"

struct tally { size_t bytes; unsigned long parts; };

static void on_part(void *ctx) { ((struct tally *)ctx)->parts++; }
static void on_content(void *ctx, const char *p, size_t n)
{
  struct tally *t = ctx;
  if (n == 0 || !p) abort();
  t->bytes += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static struct mime m;
  struct tally t = { 0, 0 };
  if (size == 0) return 0;
  size_t step = (size_t)data[0] % 67 + 1;
  struct mime_events ev = { &t, on_part, on_content };
  mime_init(&m, &ev);
  const char *p = (const char *)data + 1;
  size_t n = size - 1;
  for (size_t off = 0; off < n; off += step) mime_feed(&m, p + off, n - off < step ? n - off : step);
  mime_finish(&m);
  if (m.depth > MIME_DEPTH || t.bytes > n + 1 || t.parts > m.parts) abort();
  return 0;
}
