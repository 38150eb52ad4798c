/* tlsdest.c -- how TLS is used for mail to a destination:
 * control/tlsdestinations, in s/qmail's qmail-remote form, one rule a line:
 *
 *   [=~-%!]destination:[cafile|=fingerprint][|ciphers[|depth[;port][|senderdomain]]]
 *
 * The destination is the smtproutes relay's host name when a route names
 * one, else the recipient's domain; its rule is looked for under the relay
 * first, then the domain, then the rules for every destination ("*" forms
 * below). The first character says what is required:
 *
 *   destination:        TLS required; with a cafile the certificate must
 *                       chain to it, without one any certificate does
 *   =destination:       TLS required, the certificate chains to a CA and
 *                       names the host connected to, no wildcard
 *   ~destination:       the same, a wildcard name ("*.example.org") counts
 *   -destination:       TLS required, any certificate (or none)
 *   %destination:=FP    TLS required, the certificate's digest is FP (hex
 *                       of SHA-1, -224, -256 or -512, colons allowed)
 *   !destination:       never STARTTLS
 *
 * and for every destination: "*:" STARTTLS when offered with a certificate
 * that chains and names the host; "-:" STARTTLS when offered, any
 * certificate (mxgate's default without a rule); "-*:" TLS required, any
 * certificate; "+*:" required, chaining to a CA; "~*:" required, chaining
 * and naming the host, wildcards counting; "=*:" the same without them.
 *
 * After the destination: the CA file (a directory when it ends in "/"),
 * or "=FP" to pin a certificate; OpenSSL's cipher list for TLS 1.2; the
 * longest chain accepted; ";port" anywhere before the sender domain, the
 * port to connect to, 465 meaning SMTPS (TLS from the first byte); and a
 * sender domain, which makes the rule apply only to mail from that domain.
 * The host named is the MX (or relay) connected to, as DNS or
 * control/smtproutes gave it.
 */
#include "send.h"
#include "route.h"
#include "control.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* the fields after the destination's colon */
struct tlsrule {
  char ca[256], ciphers[128], sender_domain[256];
  int depth;
  unsigned port;                 /* 0: unchanged */
};

/* "cafile|ciphers|depth;port|domain" into r; false when malformed */
static bool parse_fields(const char *v, struct tlsrule *r)
{
  char buf[1024], *f[4] = { NULL, NULL, NULL, NULL };
  if (strlen(v) >= sizeof buf) return false;
  snprintf(buf, sizeof buf, "%s", v);
  memset(r, 0, sizeof *r);
  char *p = buf;
  for (int i = 0; i < 4 && p; i++) {             /* at most four fields: a password-free form */
    f[i] = p;
    p = i < 3 ? strchr(p, '|') : NULL;
    if (p) *p++ = 0;
  }
  for (int i = 0; i < 3; i++) {                  /* ";port" ends the cafile, ciphers or depth field */
    char *semi = f[i] ? strchr(f[i], ';') : NULL;
    if (!semi) continue;
    char *e;
    long port = strtol(semi + 1, &e, 10);
    if (*e || port <= 0 || port > 65535) return false;
    r->port = (unsigned)port;
    *semi = 0;
  }
  if (f[2] && *f[2]) {
    char *e;
    long d = strtol(f[2], &e, 10);
    if (*e || d < 0 || d > 100) return false;
    r->depth = (int)d;
  }
  if (strlen(f[0]) >= sizeof r->ca || (f[1] && strlen(f[1]) >= sizeof r->ciphers) ||
      (f[3] && strlen(f[3]) >= sizeof r->sender_domain))
    return false;
  snprintf(r->ca, sizeof r->ca, "%s", f[0]);
  snprintf(r->ciphers, sizeof r->ciphers, "%s", f[1] ? f[1] : "");
  snprintf(r->sender_domain, sizeof r->sender_domain, "%s", f[3] ? f[3] : "");
  return true;
}

/* a rule for every destination: "*", "-", "-*", "+*", "~*" or "=*" */
static bool for_every(const char *key, size_t n)
{
  return (n == 1 && (key[0] == '*' || key[0] == '-')) || (n == 2 && key[1] == '*' && strchr("-+~=", key[0]));
}

/* the rule line for dest (or a "*" rule when dest is NULL) that applies to
 * mail from sender's domain; NULL when none. *bad: a line that matched is
 * malformed */
static const char *find_rule(const str *lines, const char *dest, const char *sender, struct tlsrule *r, bool *bad)
{
  const char *at = strrchr(sender, '@');
  const char *sdom = at ? at + 1 : "";
  for (const char *l = NULL; (l = control_next(lines, l)); ) {
    const char *colon = strchr(l, ':');
    if (!colon) continue;
    const char *name = l;
    size_t n = (size_t)(colon - l);
    if (!dest != for_every(l, n)) continue;
    if (dest) {
      if (strchr("=~-%!", name[0])) { name++; n--; }
      if (n != strlen(dest) || strncasecmp(name, dest, n)) continue;
    }
    if (!parse_fields(colon + 1, r)) { *bad = true; return l; }
    if (r->sender_domain[0] && strcasecmp(r->sender_domain, sdom)) continue;
    return l;
  }
  return NULL;
}

bool tlsdest_apply(const str *lines, const char *relay, const char *domain, const char *sender, struct hop *h)
{
  struct tlsrule r;
  bool bad = false;
  const char *l = relay && *relay ? find_rule(lines, relay, sender, &r, &bad) : NULL;
  if (!l && !bad) l = find_rule(lines, domain, sender, &r, &bad);
  if (!l && !bad) l = find_rule(lines, NULL, sender, &r, &bad);
  if (bad) return false;
  if (!l) return true;
  char how = strchr("=~-%!*+", l[0]) ? l[0] : 0;
  if (for_every(l, strcspn(l, ":")) && l[1] == ':') {   /* "*:" or "-:": STARTTLS when offered */
    h->tls = HOP_TLS_MAY;
    h->cert = l[0] == '*' ? HOP_CERT_NAME : HOP_CERT_LOG;
  } else if (how == '!') {
    h->tls = HOP_TLS_NONE;
  } else {
    h->tls = HOP_TLS_REQUIRE;
    h->cert = how == '=' ? HOP_CERT_EXACT : how == '~' ? HOP_CERT_NAME : how == '-' ? HOP_CERT_LOG
            : how == '+' ? HOP_CERT_CHAIN : r.ca[0] ? HOP_CERT_CHAIN : HOP_CERT_LOG;
  }
  if (r.ca[0] == '=') {                                  /* a pinned certificate */
    if (h->tls == HOP_TLS_NONE || strlen(r.ca + 1) >= sizeof h->pin) return false;
    h->cert = HOP_CERT_PIN;
    snprintf(h->pin, sizeof h->pin, "%s", r.ca + 1);
  } else if (how == '%') {
    return false;                                        /* "%" pins: a fingerprint is needed */
  } else
    snprintf(h->ca_file, sizeof h->ca_file, "%s", r.ca);
  snprintf(h->ciphers, sizeof h->ciphers, "%s", r.ciphers);
  h->verify_depth = r.depth;
  if (r.port) h->port = r.port;
  return true;
}
