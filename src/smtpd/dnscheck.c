/* dnscheck.c -- the DNS checks of a RCPT from a client that is neither a
 * relay client nor authenticated:
 *   HELOCHECK=A  the HELO name must have an A or AAAA record
 *   HELOCHECK=M  the HELO name must have an MX record or, failing that,
 *                an A/AAAA record (RFC 5321 5.1 implicit MX; s/qmail asks
 *                its dns_mxip, which falls back to the address the same way)
 *   MFDNSCHECK   the sender's domain must have an MX or an A/AAAA record
 * (a null MX, RFC 7505, counts as none for both)
 * A name that does not exist or has no such record is refused
 * (Reject::SNDR::DNS_HELO, Reject::ORIG::DNS_MF); a lookup that fails
 * temporarily is deferred (451 4.4.3, the Deferred rows), never refused.
 * Each lookup is made once per session or transaction and remembered.
 * MFDNSCHECK asks at MAIL already, as s/qmail does: a temporary failure
 * is then 451 to MAIL itself (Deferred::ORIG::DNS_MF without a
 * recipient) and no transaction begins; a domain without records is
 * still refused at each RCPT.
 */
#include "smtpd.h"
#include "dns.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the session's resolver, opened on first use from DNSCACHEIP */
struct dns *session_dns(struct session *s)
{
  if (!s->dns) {
    char err[256];
    s->dns = dns_open_env(err, sizeof err);
    if (!s->dns) fprintf(stderr, "mxgate-smtpd: pid %ld warning: DNS: %s\n", (long)s->pid, err);
  }
  return s->dns;
}

/* 1 has an MX (or, lacking one, an address), 0 has none or the null MX,
 * -1 temporary failure */
static int has_mail_records(struct dns *d, const char *name)
{
  struct dns_mxs mx;
  if (!d || !dns_name_ok(name)) return d ? 0 : -1;
  enum dns_status st = dns_mx_implicit(d, name, &mx);
  if (st == DNS_FOUND) return dns_mx_is_null(&mx) ? 0 : 1;
  return st == DNS_TEMP ? -1 : 0;
}

static int has_address(struct dns *d, const char *name)
{
  struct dns_ips ips;
  if (!d) return -1;
  if (!dns_name_ok(name)) return 0;
  enum dns_status st = dns_ip_any(d, name, &ips);
  return st == DNS_FOUND ? 1 : st == DNS_TEMP ? -1 : 0;
}

static const char *helo_name(struct session *s, char *buf, size_t cap)
{
  size_t n = s->helo.len < cap - 1 ? s->helo.len : cap - 1;
  memcpy(buf, s->helo.s ? s->helo.s : "", n);
  buf[n] = 0;
  return buf;
}

enum row_id helo_dns_check(struct session *s, struct rcpt *r)
{
  const char *mode = s->conn.helocheck;
  char name[DNS_NAME_MAX + 1];
  if (!mode || (strcmp(mode, "A") != 0 && strcmp(mode, "M") != 0) || s->helo_exempt) return ROW_NONE;
  r->detail = mode[0] == 'M' ? "M" : "A";
  if (s->helo_dns == 0) {                                /* not asked yet for this HELO */
    int v;
    helo_name(s, name, sizeof name);
    if (name[0] == '[')                                  /* an address literal: must be the client's */
      v = strncmp(name + 1, s->conn.remoteip, strlen(s->conn.remoteip)) == 0 &&
          name[1 + strlen(s->conn.remoteip)] == ']';
    else
      v = mode[0] == 'M' ? has_mail_records(session_dns(s), name) : has_address(session_dns(s), name);
    if (v < 0) return ROW_SNDR_DNS_HELO_TEMP;          /* not remembered: asked again next time */
    s->helo_dns = v > 0 ? 1 : 2;
  }
  return s->helo_dns == 2 ? ROW_SNDR_DNS_HELO : ROW_NONE;
}

enum row_id mf_dns_check(struct session *s, struct rcpt *r)
{
  const char *dom;
  size_t domlen;
  char name[DNS_NAME_MAX + 1];
  (void)r;
  if (!getenv("MFDNSCHECK") || !s->mailfrom.len || s->bmf_form[0] == '?') return ROW_NONE;
  if (s->mf_dns == 0) {
    if (!addr_domain(s->mailfrom.s, s->mailfrom.len, &dom, &domlen) || domlen == 0 || domlen >= sizeof name) {
      s->mf_dns = 2;
    } else {
      memcpy(name, dom, domlen);
      name[domlen] = 0;
      int v = has_mail_records(session_dns(s), name);
      s->mf_dns = v > 0 ? 1 : v == 0 ? 2 : 0;
      if (v < 0) return ROW_ORIG_DNS_MF_TEMP;
    }
  }
  return s->mf_dns == 2 ? ROW_ORIG_DNS_MF : ROW_NONE;
}

/* at MAIL: true when the sender's lookup failed temporarily (logged,
 * 451 sent, transaction over); relay clients are not asked */
bool mf_dns_at_mail(struct session *s)
{
  struct rcpt r = { .detail = NULL };
  if (s->conn.relayclient || s->authenticated || s->cert_relay) return false;
  if (mf_dns_check(s, &r) != ROW_ORIG_DNS_MF_TEMP) return false;
  decide(s, ROW_ORIG_DNS_MF_TEMP, NULL, 0, NULL);
  session_reset_transaction(s);
  return true;
}
