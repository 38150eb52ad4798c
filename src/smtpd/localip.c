/* localip.c -- recipients at a literal address of this host
 * ("box@[192.0.2.1]", "box@[IPv6:2001:db8::1]") are rewritten to
 * box@localiphost before any check, as qmail does (control/localiphost,
 * default control/me). "This host" is any address of its interfaces.
 */
#include "smtpd.h"
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

static bool is_local(const char *ip)
{
  unsigned char want[16];
  int fam = strchr(ip, ':') ? AF_INET6 : AF_INET;
  if (inet_pton(fam, ip, want) != 1) return false;
  struct ifaddrs *list, *i;
  bool found = false;
  if (getifaddrs(&list) < 0) return false;
  for (i = list; i && !found; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != fam) continue;
    const void *a = fam == AF_INET ? (const void *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr
                                   : (const void *)&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
    found = memcmp(a, want, fam == AF_INET ? 4 : 16) == 0;
  }
  freeifaddrs(list);
  return found;
}

/* rewrites addr in place when its domain is a literal local address */
void localip_rewrite(const struct smtpd_config *cfg, str *addr)
{
  const char *dom;
  size_t n;
  char ip[64];
  if (!addr_domain(addr->s, addr->len, &dom, &n) || n < 3 || dom[0] != '[' || dom[n - 1] != ']') return;
  const char *p = dom + 1;
  size_t len = n - 2;
  if (len > 5 && strncasecmp(p, "IPv6:", 5) == 0) { p += 5; len -= 5; }
  if (len >= sizeof ip) return;
  memcpy(ip, p, len);
  ip[len] = 0;
  if (!is_local(ip)) return;
  addr->len = (size_t)(dom - addr->s);
  str_catb(addr, cfg->localiphost.s, cfg->localiphost.len);
}
