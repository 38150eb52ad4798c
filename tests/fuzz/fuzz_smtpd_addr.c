/* fuzz_smtpd_addr.c -- libFuzzer: the MAIL/RCPT path parser never reads
 * or writes out of bounds, and what it accepts holds no control byte. */
#include "smtpd.h"
#include <assert.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  str addr = STR_INIT(ADDR_MAX + 1);
  const char *params = NULL;
  int r = addr_parse((const char *)data, size, &addr, &params);
  if (r == 1) {
    assert(addr.len <= ADDR_MAX);
    assert(params >= (const char *)data && params <= (const char *)data + size);
    for (size_t i = 0; i < addr.len; i++) assert((unsigned char)addr.s[i] >= 0x20 && addr.s[i] != 0x7f);
    const char *dom;
    size_t domlen;
    if (addr_domain(addr.s, addr.len, &dom, &domlen)) assert(dom + domlen == addr.s + addr.len);
  }
  str_free(&addr);
  return 0;
}
