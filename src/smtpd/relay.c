/* relay.c -- which recipient domains are ours: rcpthosts and
 * morercpthosts.cdb, with qmail's ".domain" wildcards (any subdomain),
 * and which senders may relay (control/relaymailfrom).
 */
#include "smtpd.h"
#include "control.h"
#include <string.h>

static bool in_rcpthosts(const struct smtpd_config *cfg, const char *d, size_t n)
{
  for (const char *l = NULL; (l = control_next(&cfg->rcpthosts, l)); )
    if (str_equal_nocase(l, strlen(l), d, n)) return true;
  return false;
}

static bool in_morercpthosts(const struct smtpd_config *cfg, const char *d, size_t n)
{
  char key[ADDR_MAX + 2];
  if (n >= sizeof key) return false;
  for (size_t i = 0; i < n; i++) key[i] = (char)(d[i] >= 'A' && d[i] <= 'Z' ? d[i] + 32 : d[i]);
  return cdbx_find((struct cdbx *)&cfg->morercpthosts, key, n, NULL) == 1;
}

/* the domain itself, then ".parent" for every parent: ".example.test" covers a.example.test */
bool rcpthosts_match(const struct smtpd_config *cfg, const char *addr, size_t len)
{
  const char *dom;
  size_t n;
  if (!addr_domain(addr, len, &dom, &n) || n == 0) return false;
  if (in_rcpthosts(cfg, dom, n) || in_morercpthosts(cfg, dom, n)) return true;
  for (size_t i = 0; i < n; i++)
    if (dom[i] == '.' && (in_rcpthosts(cfg, dom + i, n - i) || in_morercpthosts(cfg, dom + i, n - i)))
      return true;
  return false;
}

bool relaymailfrom_match(const struct smtpd_config *cfg, const char *addr, size_t len)
{
  return len && addrlist_match(&cfg->relaymailfrom, addr, len, NULL);
}
