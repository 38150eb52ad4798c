/* addrlist.c -- matching an address against a qmail-style address list
 * (badmailfrom, badrcptto, relaymailfrom).
 *
 * A line is an exact address, "@domain" for every address at domain, or a
 * wildmat pattern; a pattern starting with '!' exempts what it matches.
 * Lines are tried in order and the last matching pattern decides, so
 * "*@spam.test" followed by "!ok@spam.test" lets ok@spam.test through.
 * Comparison ignores case. Lines carrying the extended forms of
 * badmailfrom ('?', '~' prefixes; '+', '-', '=' suffixes) are skipped here.
 */
#include "smtpd.h"
#include "wildmat.h"
#include "control.h"
#include <string.h>

static bool extended_form(const char *line, size_t n)
{
  if (line[0] == '?' || line[0] == '~') return true;
  return line[0] == '@' && n > 1 && strchr("+-=", line[n - 1]);
}

bool addrlist_match(const str *list, const char *addr, size_t len, char *form)
{
  const char *dom;
  size_t domlen;
  bool has_dom = addr_domain(addr, len, &dom, &domlen);
  int verdict = 0;  /* 0 no match, 1 listed */
  for (const char *l = NULL; (l = control_next(list, l)); ) {
    size_t n = strlen(l);
    if (extended_form(l, n)) continue;
    if (str_equal_nocase(l, n, addr, len)) { if (form) *form = '@'; return true; }
    if (has_dom && l[0] == '@' && str_equal_nocase(l, n, dom - 1, domlen + 1)) {
      if (form) *form = '@';
      return true;
    }
  }
  for (const char *l = NULL; (l = control_next(list, l)); ) {
    size_t n = strlen(l);
    if (extended_form(l, n)) continue;
    bool negate = l[0] == '!';
    const char *pat = negate ? l + 1 : l;
    if (!wildmat_has_magic(pat) && !negate) continue;  /* plain lines were tried above */
    if (wildmat(addr, len, pat)) verdict = negate ? 0 : 1;
  }
  if (verdict && form) *form = '*';
  return verdict != 0;
}
