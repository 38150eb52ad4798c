/* mailfrom.c -- MAIL FROM: the sender, its parameters, and badmailfrom.
 *
 * badmailfrom forms (detail of Reject::ORIG::Bad_Mailfrom), tried in
 * this order as s/qmail does:
 *   ?addr        bypass: this sender skips badmailfrom (and MFDNSCHECK)
 *   @domain+     any sender at domain, from a client that is not a relay client
 *                (RELAYCLIENT, a successful AUTH or a client certificate
 *                make one: s/qmail sets RELAYCLIENT on AUTH)
 *   @domain-     any sender at domain, from a client without a DNS name:
 *                TCPREMOTEHOST unset or the literal "unknown" (s/qmail's
 *                stand-in for a missing name, and tcpserver's)
 *   @domain=     any sender at domain, from a client whose DNS name is not in domain
 *   ~hostsuffix  any sender whose domain differs from the client's DNS name,
 *                when the client's name (or a parent of it) is listed
 *                ('=' and '~' need a name: not for "unknown")
 *   addr, @domain                        form '@'
 *   wildmat patterns, '!' exempts        form '*'
 * The verdict is taken at MAIL and logged for each RCPT (s/qmail order).
 */
#include "smtpd.h"
#include "control.h"
#include <stdlib.h>
#include <string.h>
#include <ctype.h>

static bool listed(const str *list, const char *s, size_t n)
{
  for (const char *l = NULL; (l = control_next(list, l)); )
    if (str_equal_nocase(l, strlen(l), s, n)) return true;
  return false;
}

/* "@domain" + suffix looked up in badmailfrom */
static bool domain_form(const struct session *s, const char *dom, size_t domlen, char suffix)
{
  char key[ADDR_MAX + 4];
  if (domlen + 3 > sizeof key) return false;
  key[0] = '@';
  memcpy(key + 1, dom, domlen);
  key[domlen + 1] = suffix;
  return listed(&s->cfg->badmailfrom, key, domlen + 2);
}

static bool host_in_domain(const char *host, const char *dom, size_t domlen)
{
  size_t hl = strlen(host);
  if (hl < domlen || !str_equal_nocase(host + hl - domlen, domlen, dom, domlen)) return false;
  return hl == domlen || host[hl - domlen - 1] == '.';
}

char badmailfrom_check(const struct session *s)
{
  const char *mf = s->mailfrom.s;
  size_t len = s->mailfrom.len;
  const char *dom = NULL;
  size_t domlen = 0;
  char key[ADDR_MAX + 4];
  if (!len || !s->cfg->badmailfrom.len) return 0;
  key[0] = '?';
  memcpy(key + 1, mf, len);
  if (listed(&s->cfg->badmailfrom, key, len + 1)) return '?';
  bool has_dom = addr_domain(mf, len, &dom, &domlen);
  const char *host = s->conn.remotehost;
  bool known = s->conn.have_remotehost && !str_equal_nocase(host, strlen(host), "unknown", 7);
  bool relay = s->conn.relayclient || s->authenticated || s->cert_relay;
  if (has_dom) {
    if (!relay && domain_form(s, dom, domlen, '+')) return '+';
    if (!known && domain_form(s, dom, domlen, '-')) return '-';
    if (known && !host_in_domain(host, dom, domlen) && domain_form(s, dom, domlen, '=')) return '=';
    if (known && !host_in_domain(host, dom, domlen)) {
      for (const char *h = host; h && *h; h = strchr(h, '.') ? strchr(h, '.') + 1 : NULL) {
        size_t hl = strlen(h);
        if (hl + 2 > sizeof key) continue;
        key[0] = '~';
        memcpy(key + 1, h, hl);
        if (listed(&s->cfg->badmailfrom, key, hl + 1)) return '~';
      }
    }
  }
  char form = 0;
  if (addrlist_match(&s->cfg->badmailfrom, mf, len, &form)) return form;
  return 0;
}

/* ESMTP parameters; 1 ok, 0 reply sent */
static int mail_params(struct session *s, const char *p, size_t len)
{
  while (len) {
    while (len && *p == ' ') { p++; len--; }
    if (!len) break;
    size_t n = 0;
    while (n < len && p[n] != ' ') n++;
    if (!s->esmtp) { reply(s, "555 5.5.4 Parameters need EHLO"); return 0; }
    if (str_starts_nocase(p, n, "SIZE=")) {
      unsigned long long v = 0;
      size_t i = 5;
      if (i == n) { reply(s, "501 5.5.4 Bad SIZE parameter"); return 0; }
      for (; i < n; i++) {
        if (!isdigit((unsigned char)p[i]) || v > 1000000000000ULL) { reply(s, "501 5.5.4 Bad SIZE parameter"); return 0; }
        v = v * 10 + (unsigned)(p[i] - '0');
      }
      if (s->conn.databytes && v > s->conn.databytes) s->size_too_big = true;
    } else if (str_equal_nocase(p, n, "BODY=7BIT", 9) || str_equal_nocase(p, n, "BODY=8BITMIME", 13)) {
      /* both taken as they are: the message is stored byte for byte */
    } else if (str_equal_nocase(p, n, "SMTPUTF8", 8)) {
      s->smtputf8 = true;
    } else if (str_starts_nocase(p, n, "AUTH=")) {
      /* RFC 4954 5: ignored unless the client is authenticated (AUTH issue) */
    } else {
      reply(s, "555 5.5.4 Unsupported MAIL parameter");
      return 0;
    }
    p += n; len -= n;
  }
  return 1;
}

void smtp_mail(struct session *s, const char *arg, size_t len)
{
  const char *params;
  if (s->seen_mail) { reply(s, "503 5.5.1 Nested MAIL command"); return; }
  if (tls_required(s) && !s->tls) { decide(s, ROW_TLS_MISSING, NULL, 0, NULL); return; }
  enum row_id row = auth_mail_check(s);
  if (row != ROW_NONE) { decide(s, row, NULL, 0, NULL); return; }
  int r = addr_parse(arg, len, &s->mailfrom, &params);
  if (r <= 0) {
    s->mailfrom.len = 0;
    reply(s, r < 0 ? "553 5.1.7 Sender address too long" : "501 5.1.7 Bad sender address syntax");
    return;
  }
  s->smtputf8 = false;
  s->size_too_big = false;
  if (!mail_params(s, params, (size_t)(arg + len - params))) { s->mailfrom.len = 0; return; }
  s->seen_mail = true;
  s->rcpt_count = s->rcpt_accepted = 0;
  s->envelope.len = 0;
  s->first_rcpt.len = 0;
  s->bmf_form[0] = badmailfrom_check(s);
  s->bmf_form[1] = 0;
  s->mf_dns = 0;
  spf_reset(s);
  if (mf_dns_at_mail(s)) return;             /* MFDNSCHECK: 451 at MAIL, as s/qmail (D36) */
  reply(s, "250 2.1.0 Sender ok");
}
