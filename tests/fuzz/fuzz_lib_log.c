/* fuzz_lib_log.c -- libFuzzer: no input can split or forge a log line.
 * Every field of a line gets fuzz bytes; the line must be one line, start
 * with the tag and pid, carry exactly the fields given, and hold no byte
 * below 0x21 other than the single spaces between fields. */
#include "log.h"
#include <assert.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char line[LOG_LINE_MAX];
  const char *p = (const char *)data;
  size_t part = size / 4;
  struct log_fields f = {
    .tag = "qmail-smtpd", .pid = 4711,
    .ip = log_cstr("192.0.2.1"), .host = log_cstr("unknown"), .proto = log_cstr("ESMTP"),
    .helo = { p, part }, .from = { p + part, part }, .rcpt = { p + 2 * part, part },
    .detail = { p + 3 * part, size - 3 * part },
  };
  size_t n = log_format(line, sizeof line, ROW_RCPT_FAILED, &f);
  assert(n > 0 && line[n - 1] == '\n');
  assert(memchr(line, '\n', n - 1) == NULL);
  static const char head[] = "qmail-smtpd: pid 4711 Reject::RCPT::Failed_Rcptto: S:192.0.2.1:unknown P:ESMTP H:";
  assert(strncmp(line, head, sizeof head - 1) == 0);
  int spaces = 0, quotes = 0;
  for (size_t i = 0; i < n - 1; i++) {
    unsigned char c = (unsigned char)line[i];
    assert(c >= 0x20 && c != 0x7f);
    if (c == ' ') { assert(line[i + 1] != ' '); spaces++; }
    if (c == '\'') quotes++;
  }
  assert(spaces == 9 && quotes == 2);       /* tag, pid, row, S, P, H, F, T, detail: no extra field */
  return 0;
}
