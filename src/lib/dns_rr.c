/* dns_rr.c -- the record types the checks ask for: A/AAAA, "exists", MX
 * (sorted, implicit MX, null MX), TXT (strings joined) and PTR, each
 * bounded by the caps in dns.h.
 */
#include "dns_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* one query and what its answer holds, taken apart by parse */
static enum dns_status lookup(struct dns *d, const char *name, int type,
                              enum dns_status (*parse)(const unsigned char *, int, const char *, void *),
                              void *out)
{
  unsigned char *buf;
  int len;
  enum dns_status s = dns_query(d, name, type, &buf, &len);
  if (s != DNS_FOUND) return s;
  s = parse(buf, len, name, out);
  free(buf);
  return s;
}

struct ip_ctx { struct dns_ips *out; int family; };

static bool take_ip(void *arg, const struct dns_rr *rr)
{
  struct ip_ctx *c = arg;
  int size = c->family == AF_INET ? 4 : 16;
  struct dns_ip *ip;
  if (rr->rdlen != size) return true;
  if (c->out->n >= DNS_MAX_RR) { c->out->dropped++; return true; }
  ip = &c->out->ip[c->out->n++];
  memset(ip, 0, sizeof *ip);
  ip->family = c->family;
  memcpy(ip->a, rr->msg + rr->rdata, (size_t)size);
  return true;
}

enum dns_status dns_ip_answer(const unsigned char *msg, int len, const char *name, int family,
                              struct dns_ips *out)
{
  struct ip_ctx c = { out, family };
  unsigned before = out->n;
  enum dns_status s = dns_answer_walk(msg, len, name, family == AF_INET ? DNS_T_A : DNS_T_AAAA, take_ip, &c);
  if (s == DNS_FOUND && out->n == before && !out->dropped) s = DNS_NODATA;
  return s;
}

static enum dns_status parse_a(const unsigned char *msg, int len, const char *name, void *out)
{
  return dns_ip_answer(msg, len, name, AF_INET, out);
}

static enum dns_status parse_aaaa(const unsigned char *msg, int len, const char *name, void *out)
{
  return dns_ip_answer(msg, len, name, AF_INET6, out);
}

static enum dns_status ip_append(struct dns *d, const char *name, int family, struct dns_ips *out)
{
  return family == AF_INET ? lookup(d, name, DNS_T_A, parse_a, out)
                           : lookup(d, name, DNS_T_AAAA, parse_aaaa, out);
}

enum dns_status dns_ip(struct dns *d, const char *name, int family, struct dns_ips *out)
{
  out->n = out->dropped = 0;
  if (family != AF_INET && family != AF_INET6) return DNS_PERM;
  return ip_append(d, name, family, out);
}

enum dns_status dns_ip_any(struct dns *d, const char *name, struct dns_ips *out)
{
  enum dns_status s4, s6;
  out->n = out->dropped = 0;
  s4 = ip_append(d, name, AF_INET, out);
  if (s4 == DNS_NXDOMAIN || s4 == DNS_PERM) return s4;
  s6 = ip_append(d, name, AF_INET6, out);
  if (s4 == DNS_FOUND || s6 == DNS_FOUND) return DNS_FOUND;
  if (s4 == DNS_TEMP || s6 == DNS_TEMP) return DNS_TEMP;
  return s6 == DNS_NXDOMAIN ? DNS_NXDOMAIN : DNS_NODATA;
}

enum dns_status dns_exists(struct dns *d, const char *name)
{
  struct dns_ips *ips = malloc(sizeof *ips);
  enum dns_status s;
  if (!ips) return DNS_TEMP;
  s = dns_ip(d, name, AF_INET, ips);
  free(ips);
  return s;
}

static bool take_mx(void *arg, const struct dns_rr *rr)
{
  struct dns_mxs *out = arg;
  struct dns_mx *mx;
  if (rr->rdlen < 3) return true;
  if (out->n >= DNS_MAX_MX) { out->dropped++; return true; }
  mx = &out->mx[out->n];
  mx->pref = (unsigned)rr->msg[rr->rdata] << 8 | rr->msg[rr->rdata + 1];
  if (!dns_read_name(rr->msg, rr->msglen, rr->rdata + 2, mx->name, sizeof mx->name)) {
    out->dropped++;
    return true;
  }
  out->n++;
  return true;
}

/* insertion sort: stable, and n is at most DNS_MAX_MX */
static void sort_mx(struct dns_mxs *m)
{
  for (unsigned i = 1; i < m->n; i++) {
    struct dns_mx t = m->mx[i];
    unsigned j = i;
    while (j > 0 && m->mx[j - 1].pref > t.pref) { m->mx[j] = m->mx[j - 1]; j--; }
    m->mx[j] = t;
  }
}

enum dns_status dns_mx_answer(const unsigned char *msg, int len, const char *name, struct dns_mxs *out)
{
  enum dns_status s = dns_answer_walk(msg, len, name, DNS_T_MX, take_mx, out);
  if (s == DNS_FOUND && out->n == 0) s = out->dropped ? DNS_PERM : DNS_NODATA;
  sort_mx(out);
  return s;
}

static enum dns_status parse_mx(const unsigned char *msg, int len, const char *name, void *out)
{
  return dns_mx_answer(msg, len, name, out);
}

enum dns_status dns_mx(struct dns *d, const char *name, struct dns_mxs *out)
{
  out->n = out->dropped = 0;
  out->implicit = false;
  return lookup(d, name, DNS_T_MX, parse_mx, out);
}

enum dns_status dns_mx_implicit(struct dns *d, const char *name, struct dns_mxs *out)
{
  enum dns_status s = dns_mx(d, name, out);
  struct dns_ips *ips;
  if (s != DNS_NODATA) return s;
  ips = malloc(sizeof *ips);
  if (!ips) return DNS_TEMP;
  s = dns_ip_any(d, name, ips);
  free(ips);
  if (s != DNS_FOUND) return s;
  if (strlen(name) >= sizeof out->mx[0].name) return DNS_PERM;
  out->n = 1;
  out->implicit = true;
  out->mx[0].pref = 0;
  strcpy(out->mx[0].name, name);
  return DNS_FOUND;
}

bool dns_mx_is_null(const struct dns_mxs *m)
{
  return m->n == 1 && !m->implicit && m->mx[0].name[0] == 0;
}

static bool take_txt(void *arg, const struct dns_rr *rr)
{
  struct dns_txts *out = arg;
  const unsigned char *p = rr->msg + rr->rdata, *end = p + rr->rdlen;
  size_t total = 0;
  const unsigned char *q;
  char *s;

  if (out->n >= DNS_MAX_RR) { out->dropped++; return true; }
  for (q = p; q < end; q += 1 + *q) {
    if (q + 1 + *q > end) { out->dropped++; return true; }
    total += *q;
  }
  if (total > DNS_TXT_MAX || !(s = malloc(total + 1))) { out->dropped++; return true; }
  total = 0;
  for (q = p; q < end; q += 1 + *q) {
    memcpy(s + total, q + 1, *q);
    total += *q;
  }
  s[total] = 0;
  out->txt[out->n] = s;
  out->len[out->n++] = total;
  return true;
}

enum dns_status dns_txt_answer(const unsigned char *msg, int len, const char *name, struct dns_txts *out)
{
  return dns_answer_walk(msg, len, name, DNS_T_TXT, take_txt, out);
}

static enum dns_status parse_txt(const unsigned char *msg, int len, const char *name, void *out)
{
  return dns_txt_answer(msg, len, name, out);
}

enum dns_status dns_txt(struct dns *d, const char *name, struct dns_txts *out)
{
  out->n = out->dropped = 0;
  return lookup(d, name, DNS_T_TXT, parse_txt, out);
}

void dns_txts_free(struct dns_txts *t)
{
  for (unsigned i = 0; i < t->n; i++) free(t->txt[i]);
  t->n = 0;
}

static bool take_ptr(void *arg, const struct dns_rr *rr)
{
  struct dns_names *out = arg;
  if (out->n >= DNS_MAX_NAMES) { out->dropped++; return true; }
  if (dns_read_name(rr->msg, rr->msglen, rr->rdata, out->name[out->n], DNS_NAME_MAX + 1))
    out->n++;
  else
    out->dropped++;
  return true;
}

enum dns_status dns_ptr_answer(const unsigned char *msg, int len, const char *name, struct dns_names *out)
{
  enum dns_status s = dns_answer_walk(msg, len, name, DNS_T_PTR, take_ptr, out);
  if (s == DNS_FOUND && out->n == 0) s = DNS_PERM;
  return s;
}

static enum dns_status parse_ptr(const unsigned char *msg, int len, const char *name, void *out)
{
  return dns_ptr_answer(msg, len, name, out);
}

enum dns_status dns_ptr(struct dns *d, const struct dns_ip *ip, struct dns_names *out)
{
  char rev[80];
  out->n = out->dropped = 0;
  dns_reverse_name(ip, rev, sizeof rev);
  return lookup(d, rev, DNS_T_PTR, parse_ptr, out);
}
