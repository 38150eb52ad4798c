/* helo.c -- HELOCHECK: judging the client's HELO/EHLO name at RCPT time.
 *
 * HELOCHECK unset: no check. Set, the name is looked up in control/badhelo
 * (exact: detail '.', wildmat with '!' exemptions: '*'); an entry ending
 * in '!' ("name!") exempts that name from every HELO check. The one-letter
 * modes also require a non-empty HELO (detail '!'):
 *   !   only require a HELO          .   require + badhelo
 *   =   require + badhelo + the name must be the client's DNS name (TCPREMOTEHOST);
 *       a mismatch is logged as s/qmail logs it, as a DNS refusal:
 *       Reject::SNDR::DNS_HELO with detail '='
 *   A   require + badhelo + DNS A/AAAA,  M   ... + DNS MX or A  (dnscheck.c)
 * Any other value (e.g. "" or "1") checks badhelo only.
 */
#include "smtpd.h"
#include "control.h"
#include "wildmat.h"
#include <string.h>

/* 0 not listed, 'X' exempt, '.' exact, '*' pattern */
static char badhelo_match(const struct session *s)
{
  const str *list = &s->cfg->badhelo;
  const char *h = s->helo.s;
  size_t n = s->helo.len;
  int verdict = 0;
  if (!s->cfg->have_badhelo || !n) return 0;
  for (const char *l = NULL; (l = control_next(list, l)); ) {
    size_t ln = strlen(l);
    if (ln == n + 1 && l[n] == '!' && str_equal_nocase(l, n, h, n)) return 'X';
  }
  for (const char *l = NULL; (l = control_next(list, l)); )
    if (str_equal_nocase(l, strlen(l), h, n)) return '.';
  for (const char *l = NULL; (l = control_next(list, l)); ) {
    bool negate = l[0] == '!';
    const char *pat = negate ? l + 1 : l;
    if (wildmat(h, n, pat)) verdict = negate ? 0 : 1;
  }
  return verdict ? '*' : 0;
}

enum row_id helo_check(struct session *s, struct rcpt *r)
{
  const char *mode = s->conn.helocheck;
  if (!mode) return ROW_NONE;
  char m = strlen(mode) == 1 ? mode[0] : 0;
  bool require = m == '!' || m == '.' || m == '=' || m == 'A' || m == 'M';
  if (require && (!s->seen_helo || s->helo.len == 0)) { r->detail = "!"; return ROW_SNDR_BAD_HELO; }
  if (m == '!') return ROW_NONE;
  char form = badhelo_match(s);
  s->helo_exempt = form == 'X';
  if (form == 'X') return ROW_NONE;
  if (form) { r->detail = form == '.' ? "." : "*"; return ROW_SNDR_BAD_HELO; }
  if (m == '=' && (!s->conn.have_remotehost ||
                   !str_equal_nocase(s->helo.s, s->helo.len, s->conn.remotehost, strlen(s->conn.remotehost)))) {
    r->detail = "=";
    r->reply_text = "HELO name is not the client's DNS name";
    return ROW_SNDR_DNS_HELO;
  }
  return ROW_NONE;
}
