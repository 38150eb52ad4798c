/* route.c -- where mail for a domain goes: control/smtproutes, else DNS.
 *
 * control/smtproutes, as s/qmail's qmail-remote reads it, one route a line:
 *
 *   domain:relay[:port][|user|password]
 *
 * "domain" matches that host; ".domain" every host below it; an empty
 * domain every host (the smarthost). The most specific line wins: the host
 * itself, then each ".parent" from the nearest up, then the empty domain.
 * An empty relay means "the domain's own MX records". The relay is a host
 * name or an address in brackets ([192.0.2.1], [2001:db8::1]); the port,
 * after ";" as s/qmail writes it or ":", defaults to 25 (465: SMTPS). "|user|password" makes the route authenticated: AUTH
 * over TLS only (a hop without STARTTLS is then a temporary failure, never
 * a password in clear). A relay written "lmtp:PATH" (a unix socket) or
 * "lmtp:host:port" hands the mail over with LMTP (to a mail store).
 *
 * Without a route: the MX records through the project's resolver (the
 * preferences in order, equal ones shuffled), the domain's own A/AAAA when
 * it has no MX (RFC 5321 5.1), and a null MX (RFC 7505) refused at once.
 * Every name's IPv4 and IPv6 addresses are hops, IPv6 first as published.
 * How TLS is used on them is control/tlsdestinations' (tlsdest.c).
 */
#include "send.h"
#include "route.h"
#include "control.h"
#include "dns.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int routes_load(struct routes *r)
{
  r->lines = (str)STR_INIT(16 << 20);
  r->tls = (str)STR_INIT(16 << 20);
  return control_readlist(&r->lines, "smtproutes") < 0 || control_readlist(&r->tls, "tlsdestinations") < 0 ? -1 : 0;
}

void routes_free(struct routes *r) { str_free(&r->lines); str_free(&r->tls); }

/* the route line for host, or NULL: exact, .parents, then "" */
static const char *find_route(const struct routes *r, const char *host)
{
  size_t hl = strlen(host);
  for (const char *suffix = host; suffix; suffix = strchr(suffix + 1, '.')) {
    bool exact = suffix == host;
    for (const char *l = NULL; (l = control_next(&r->lines, l)); ) {
      const char *colon = strchr(l, ':');
      if (!colon) continue;
      size_t n = (size_t)(colon - l);
      if (exact && n == hl && strncasecmp(l, host, n) == 0) return colon + 1;
      if (!exact && n == strlen(suffix) && strncasecmp(l, suffix, n) == 0) return colon + 1;
    }
  }
  for (const char *l = NULL; (l = control_next(&r->lines, l)); )
    if (l[0] == ':') return l + 1;
  return NULL;
}

/* "relay[:port][|user|password]" into h (name, port, auth); *literal when
 * the relay is an [address]; false when the line is malformed */
static bool parse_relay(const char *spec, struct hop *h, bool *literal)
{
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", spec);
  char *auth = strchr(buf, '|');
  if (auth) {
    *auth++ = 0;
    char *pass = strchr(auth, '|');
    if (!pass) return false;
    *pass++ = 0;
    snprintf(h->auth_user, sizeof h->auth_user, "%s", auth);
    snprintf(h->auth_pass, sizeof h->auth_pass, "%s", pass);
  }
  char *host = buf, *port = NULL;
  if (strlen(buf) >= sizeof h->name - 2) return false;
  if (strncmp(host, "lmtp:", 5) == 0) {
    h->lmtp = true;
    host += 5;
    if (host[0] == '/') {
      if (strlen(host) >= sizeof h->unixpath) return false;
      memcpy(h->unixpath, host, strlen(host) + 1);
      snprintf(h->name, sizeof h->name, "localhost");
      return true;
    }
  }
  if (host[0] == '[') {
    char *end = strchr(host, ']');
    if (!end) return false;
    *end = 0;
    if (strlen(host + 1) >= sizeof h->ip) return false;
    memcpy(h->ip, host + 1, strlen(host + 1) + 1);
    snprintf(h->name, sizeof h->name, "[%.*s]", (int)(sizeof h->name - 3), host + 1);
    *literal = true;
    if (end[1] == ':' || end[1] == ';') port = end + 2;
    else if (end[1]) return false;
  } else {
    port = strpbrk(host, ":;");
    if (port) *port++ = 0;
    snprintf(h->name, sizeof h->name, "%.*s", (int)(sizeof h->name - 1), host);
  }
  h->port = 25;
  if (port && *port) {
    char *e;
    long p = strtol(port, &e, 10);
    if (*e || p <= 0 || p > 65535) return false;
    h->port = (unsigned)p;
  }
  return true;
}

static void shuffle(struct dns_mx *mx, size_t n)
{
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)random() % i;
    struct dns_mx t = mx[i - 1]; mx[i - 1] = mx[j]; mx[j] = t;
  }
}

/* every address of name as a hop like proto; DNS status */
static enum dns_status add_hops(struct dns *d, const char *name, const struct hop *proto, struct route *out)
{
  struct dns_ips ips;
  enum dns_status st = dns_ip_any(d, name, &ips);
  for (unsigned i = 0; st == DNS_FOUND && i < ips.n && out->n < ROUTE_HOPS_MAX; i++) {
    struct hop *h = &out->hop[out->n++];
    *h = *proto;
    snprintf(h->name, sizeof h->name, "%s", name);
    dns_ip_format(&ips.ip[i], h->ip, sizeof h->ip);
  }
  return st;
}

enum route_status route_find(const struct routes *r, struct dns *d, const char *domain, const char *sender,
                             struct route *out, char *why, size_t cap)
{
  struct hop proto = { .port = 25, .tls = HOP_TLS_MAY };
  const char *spec = find_route(r, domain);
  bool literal = false, relay = spec && *spec;
  out->n = 0;
  if (relay && !parse_relay(spec, &proto, &literal)) {
    snprintf(why, cap, "451 4.3.5 control/smtproutes: malformed route for %s", domain);
    return ROUTE_TEMP;
  }
  if (!proto.unixpath[0] && !tlsdest_apply(&r->tls, relay && !literal ? proto.name : NULL, domain, sender, &proto)) {
    snprintf(why, cap, "451 4.3.5 control/tlsdestinations: malformed rule for %s", domain);
    return ROUTE_TEMP;
  }
  proto.smtps = proto.tls != HOP_TLS_NONE && proto.port == 465 && !proto.lmtp;
  if (relay) {                                          /* a relay */
    if (proto.unixpath[0] || literal) { out->hop[out->n++] = proto; return ROUTE_OK; }
    enum dns_status st = add_hops(d, proto.name, &proto, out);
    if (out->n) return ROUTE_OK;
    snprintf(why, cap, "451 4.4.3 the relay %s of control/smtproutes has no address (%s)", proto.name,
             dns_status_name(st));
    return ROUTE_TEMP;
  }
  if (domain[0] == '[') {                               /* an address literal as the domain */
    char ip[64];
    snprintf(ip, sizeof ip, "%s", domain + 1);
    char *end = strchr(ip, ']');
    struct dns_ip parsed;
    if (!end || (*end = 0, !dns_ip_parse(strncmp(ip, "IPv6:", 5) == 0 ? ip + 5 : ip, &parsed))) {
      snprintf(why, cap, "553 5.1.2 %s is not an address literal", domain);
      return ROUTE_PERM;
    }
    struct hop *h = &out->hop[out->n++];
    *h = proto;
    dns_ip_format(&parsed, h->ip, sizeof h->ip);
    snprintf(h->name, sizeof h->name, "%s", domain);
    return ROUTE_OK;
  }
  struct dns_mxs mx;
  enum dns_status st = dns_mx_implicit(d, domain, &mx);
  if (st == DNS_NXDOMAIN || st == DNS_PERM || (st == DNS_NODATA)) {
    snprintf(why, cap, "550 5.1.2 %s: no such domain (no MX, A or AAAA record)", domain);
    return ROUTE_PERM;
  }
  if (st != DNS_FOUND) {
    snprintf(why, cap, "451 4.4.3 %s: temporary DNS failure looking up its MX records", domain);
    return ROUTE_TEMP;
  }
  if (dns_mx_is_null(&mx)) {
    snprintf(why, cap, "556 5.1.10 %s publishes a null MX: it accepts no mail (RFC 7505)", domain);
    return ROUTE_PERM;
  }
  for (unsigned i = 0, j; i < mx.n; i = j) {            /* equal preferences shuffled */
    for (j = i; j < mx.n && mx.mx[j].pref == mx.mx[i].pref; j++) {}
    shuffle(mx.mx + i, j - i);
  }
  bool temp = false;
  for (unsigned i = 0; i < mx.n && out->n < ROUTE_HOPS_MAX; i++)
    if (mx.mx[i].name[0] && add_hops(d, mx.mx[i].name, &proto, out) == DNS_TEMP) temp = true;
  if (out->n) return ROUTE_OK;
  snprintf(why, cap, temp ? "451 4.4.3 %s: temporary DNS failure looking up its mail exchangers' addresses"
                          : "451 4.4.4 %s: none of its mail exchangers has an address", domain);
  return ROUTE_TEMP;
}
