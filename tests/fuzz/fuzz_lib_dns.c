/* fuzz_lib_dns.c -- libFuzzer: a DNS answer from the network, taken apart
 * as the resolver does after its query (dns_answer.c, dns_rr.c): the
 * first byte picks the record type asked for (A, AAAA, MX, TXT, PTR), the
 * rest is the message; the asked name is the one in the message's
 * question when it has one, so owners and CNAME chains can match. What
 * comes back must keep the bounds dns.h promises. Two more modes take
 * the bytes as text: an address (dns_ip_parse, its format parsed back to
 * the same address) and a name (dns_name_ok, dns_name_equal). Only libc is
 * called on these paths: the harness also runs under MemorySanitizer. */
#include "dns_int.h"
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void check_name(const char *name)
{
  size_t n = strnlen(name, DNS_NAME_MAX + 1);
  assert(n <= DNS_NAME_MAX);
}

static void answer(int mode, const unsigned char *msg, int len)
{
  char qname[DNS_NAME_MAX + 2];
  if (len < 13 || !dns_read_name(msg, len, 12, qname, sizeof qname) || !qname[0])
    strcpy(qname, "a.test");
  enum dns_status s;
  switch (mode) {
    case 0: case 1: {
      static struct dns_ips ips;
      ips.n = ips.dropped = 0;
      s = dns_ip_answer(msg, len, qname, mode ? AF_INET6 : AF_INET, &ips);
      assert(ips.n <= DNS_MAX_RR);
      assert(s != DNS_FOUND || ips.n > 0 || ips.dropped > 0);
      for (unsigned i = 0; i < ips.n; i++) {
        char text[64];
        struct dns_ip back;
        assert(ips.ip[i].family == (mode ? AF_INET6 : AF_INET));
        dns_ip_format(&ips.ip[i], text, sizeof text);
        assert(dns_ip_parse(text, &back));
        char rev[80];
        dns_reverse_name(&ips.ip[i], rev, sizeof rev);
        assert(dns_name_ok(rev));
      }
      break;
    }
    case 2: {
      static struct dns_mxs mx;
      mx.n = mx.dropped = 0;
      mx.implicit = false;
      s = dns_mx_answer(msg, len, qname, &mx);
      assert(mx.n <= DNS_MAX_MX);
      assert(s != DNS_FOUND || mx.n > 0);
      for (unsigned i = 0; i < mx.n; i++) {
        check_name(mx.mx[i].name);
        assert(i == 0 || mx.mx[i - 1].pref <= mx.mx[i].pref);
      }
      (void)dns_mx_is_null(&mx);
      break;
    }
    case 3: {
      struct dns_txts t;
      t.n = t.dropped = 0;
      s = dns_txt_answer(msg, len, qname, &t);
      assert(t.n <= DNS_MAX_RR);
      for (unsigned i = 0; i < t.n; i++) {
        assert(t.len[i] <= DNS_TXT_MAX);
        assert(t.txt[i][t.len[i]] == 0);
      }
      dns_txts_free(&t);
      break;
    }
    default: {
      static struct dns_names names;
      names.n = names.dropped = 0;
      s = dns_ptr_answer(msg, len, qname, &names);
      assert(names.n <= DNS_MAX_NAMES);
      assert(s != DNS_FOUND || names.n > 0);
      for (unsigned i = 0; i < names.n; i++) check_name(names.name[i]);
      break;
    }
  }
  assert(s == DNS_FOUND || s == DNS_NODATA || s == DNS_TEMP || s == DNS_PERM);
}

static void address(const char *text)
{
  struct dns_ip ip, back;
  char out[64];
  if (!dns_ip_parse(text, &ip)) return;
  assert(ip.family == AF_INET || ip.family == AF_INET6);
  dns_ip_format(&ip, out, sizeof out);
  assert(strlen(out) < 46);
  assert(dns_ip_parse(out, &back) && dns_ip_equal(&ip, &back));
}

static void name(const char *text)
{
  if (dns_name_ok(text)) {
    size_t n = strlen(text);
    assert(n >= 1 && n <= 254);
    assert(dns_name_equal(text, text));
  }
  size_t half = strlen(text) / 2;
  char a[1024];
  if (half < sizeof a) {
    memcpy(a, text, half);
    a[half] = 0;
    assert(dns_name_equal(a, text + half) == dns_name_equal(text + half, a));
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1 || size > 65535) return 0;
  int mode = data[0] % 8;
  if (mode < 6) {
    /* the message in a buffer of its own size: a read past it is seen */
    unsigned char *msg = malloc(size - 1 ? size - 1 : 1);
    memcpy(msg, data + 1, size - 1);
    answer(mode > 4 ? 4 : mode, msg, (int)(size - 1));
    free(msg);
    return 0;
  }
  char *text = malloc(size);
  memcpy(text, data + 1, size - 1);
  text[size - 1] = 0;
  if (mode == 6) address(text);
  else name(text);
  free(text);
  return 0;
}
