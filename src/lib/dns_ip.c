/* dns_ip.c -- client addresses as the DNS checks see them: parsing (an
 * IPv4-mapped IPv6 address is IPv4, RFC 7208 5/9), text forms, equality
 * and the reverse (PTR) name.
 */
#include "dns.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static const unsigned char v4mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };

bool dns_ip_parse(const char *text, struct dns_ip *out)
{
  memset(out, 0, sizeof *out);
  if (inet_pton(AF_INET, text, out->a) == 1) {
    out->family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, text, out->a) != 1) return false;
  out->family = AF_INET6;
  if (memcmp(out->a, v4mapped, 12) == 0) {
    memmove(out->a, out->a + 12, 4);
    memset(out->a + 4, 0, 12);
    out->family = AF_INET;
  }
  return true;
}

void dns_ip_format(const struct dns_ip *ip, char *buf, size_t len)
{
  if (len == 0) return;
  if (!inet_ntop(ip->family, ip->a, buf, (socklen_t)len)) buf[0] = 0;
}

bool dns_ip_equal(const struct dns_ip *a, const struct dns_ip *b)
{
  return a->family == b->family &&
         memcmp(a->a, b->a, a->family == AF_INET ? 4 : 16) == 0;
}

void dns_reverse_name(const struct dns_ip *ip, char *buf, size_t len)
{
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  if (len == 0) return;
  buf[0] = 0;
  if (ip->family == AF_INET) {
    snprintf(buf, len, "%u.%u.%u.%u.in-addr.arpa",
             ip->a[3], ip->a[2], ip->a[1], ip->a[0]);
    return;
  }
  if (len < 74) return;
  for (int i = 15; i >= 0; i--) {
    buf[o++] = hex[ip->a[i] & 15];
    buf[o++] = '.';
    buf[o++] = hex[ip->a[i] >> 4];
    buf[o++] = '.';
  }
  strcpy(buf + o, "ip6.arpa");
}
