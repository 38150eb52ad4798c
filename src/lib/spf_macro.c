/* spf_macro.c -- the SPF macro language (RFC 7208 7): syntax of
 * macro-strings, the letters s l o d i p h and the explanation-only
 * c r t, v, the transformers (right-hand parts, reversal, delimiters),
 * URL escaping for upper-case letters, %% %_ %-, and the domain
 * truncation to 253 bytes (7.3).
 */
#include "spf_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define DELIMS ".-+,/_="
#define MAX_PARTS 256

struct macro {
  char letter;        /* lower case */
  bool escape;        /* upper case: URL-escape the result */
  unsigned keep;      /* right-hand parts to keep; 0: all */
  bool reverse;
  char delims[8];
};

/* parse "%{...}" at s (s[0] == '%', s[1] == '{'); length used, 0 if bad */
static size_t parse_macro(const char *s, size_t len, bool explain, struct macro *m)
{
  size_t i = 2, nd = 0;
  const char *letters = explain ? "slodiphcrtv" : "slodiphv";
  memset(m, 0, sizeof *m);
  if (i >= len || !strchr(letters, tolower((unsigned char)s[i])) || !s[i]) return 0;
  m->letter = (char)tolower((unsigned char)s[i]);
  m->escape = isupper((unsigned char)s[i]) != 0;
  i++;
  if (i < len && isdigit((unsigned char)s[i])) {
    unsigned long v = 0;
    while (i < len && isdigit((unsigned char)s[i])) {
      if (v < 100000) v = v * 10 + (unsigned)(s[i] - '0');
      i++;
    }
    if (v == 0) return 0;
    m->keep = v > MAX_PARTS ? MAX_PARTS : (unsigned)v;
  }
  if (i < len && (s[i] == 'r' || s[i] == 'R')) { m->reverse = true; i++; }
  while (i < len && s[i] && strchr(DELIMS, s[i])) {
    if (!strchr(m->delims, s[i]) && nd < sizeof m->delims - 1) m->delims[nd++] = s[i];
    i++;
  }
  if (i >= len || s[i] != '}') return 0;
  if (nd == 0) m->delims[0] = '.';
  return i + 1;
}

bool spf_macro_valid(const char *s, size_t len, bool explain)
{
  struct macro m;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == ' ' && explain) continue;
    if (c < 0x21 || c > 0x7e) return false;
    if (c != '%') continue;
    if (i + 1 >= len) return false;
    if (s[i + 1] == '%' || s[i + 1] == '_' || s[i + 1] == '-') { i++; continue; }
    if (s[i + 1] != '{') return false;
    size_t used = parse_macro(s + i, len - i, explain, &m);
    if (!used) return false;
    i += used - 1;
  }
  return true;
}

struct out { char *s; size_t len, cap; bool ok; };

static void put(struct out *o, const char *s, size_t n)
{
  if (!o->ok || o->len + n + 1 > o->cap) { o->ok = false; return; }
  memcpy(o->s + o->len, s, n);
  o->len += n;
  o->s[o->len] = 0;
}

static void put_escaped(struct out *o, const char *s, size_t n, bool escape)
{
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!escape || isalnum(c) || strchr("-._~", c)) { put(o, s + i, 1); continue; }
    char e[3] = { '%', hex[c >> 4], hex[c & 15] };
    put(o, e, 3);
  }
}

static void ip_dotted(const struct dns_ip *ip, char *buf, size_t cap)
{
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  if (ip->family == AF_INET) {
    snprintf(buf, cap, "%u.%u.%u.%u", ip->a[0], ip->a[1], ip->a[2], ip->a[3]);
    return;
  }
  for (int i = 0; i < 16 && o + 5 < cap; i++) {
    buf[o++] = hex[ip->a[i] >> 4];
    buf[o++] = '.';
    buf[o++] = hex[ip->a[i] & 15];
    buf[o++] = i < 15 ? '.' : 0;
  }
  buf[o ? o - 1 : 0] = 0;
}

/* %{p}: a validated name of the client, the domain itself or a
 * subdomain preferred (7.3); "unknown" when there is none */
static void validated_name(struct spf_run *run, const char *domain, char *buf, size_t cap)
{
  unsigned n = spf_ptr_names(run), i, pass;
  for (pass = 0; pass < 3; pass++)
    for (i = 0; i < n; i++) {
      const char *name = run->ptr.name[i];
      bool equal = dns_name_equal(name, domain);
      bool within = spf_name_within(name, domain);
      if ((pass == 0 && !equal) || (pass == 1 && !within)) continue;
      if (!spf_ptr_validated(run, i)) continue;
      snprintf(buf, cap, "%s", name);
      return;
    }
  snprintf(buf, cap, "unknown");
}

static void macro_value(struct spf_run *run, const char *domain, char letter,
                        char *buf, size_t cap)
{
  const char *v = "";
  switch (letter) {
    case 's': v = run->sender; break;
    case 'l': v = run->local; break;
    case 'o': v = run->sender_domain; break;
    case 'd': v = domain; break;
    case 'h': v = run->helo; break;
    case 'r': v = run->receiver && *run->receiver ? run->receiver : "unknown"; break;
    case 'v': v = run->ip.family == AF_INET ? "in-addr" : "ip6"; break;
    case 'i': ip_dotted(&run->ip, buf, cap); return;
    case 'c': dns_ip_format(&run->ip, buf, cap); return;
    case 't': snprintf(buf, cap, "%lld", (long long)time(NULL)); return;
    case 'p': validated_name(run, domain, buf, cap); return;
  }
  snprintf(buf, cap, "%s", v ? v : "");
}

/* split on the delimiters, reverse, keep the right-hand parts, join with '.' */
static void transform(const struct macro *m, const char *v, struct out *o)
{
  const char *part[MAX_PARTS];
  size_t plen[MAX_PARTS], n = 0, first, i;
  const char *p = v;
  for (;;) {
    size_t l = strcspn(p, m->delims);
    if (n == MAX_PARTS) { o->ok = false; return; }
    part[n] = p;
    plen[n++] = l;
    if (!p[l]) break;
    p += l + 1;
  }
  if (m->reverse)
    for (i = 0; i < n / 2; i++) {
      const char *t = part[i]; size_t tl = plen[i];
      part[i] = part[n - 1 - i]; plen[i] = plen[n - 1 - i];
      part[n - 1 - i] = t; plen[n - 1 - i] = tl;
    }
  first = m->keep && m->keep < n ? n - m->keep : 0;
  for (i = first; i < n; i++) {
    if (i > first) put_escaped(o, ".", 1, m->escape);
    put_escaped(o, part[i], plen[i], m->escape);
  }
}

bool spf_macro_expand(struct spf_run *run, const char *domain, const char *s,
                      size_t len, bool explain, char *out, size_t cap)
{
  struct out o = { out, 0, cap, cap > 0 };
  char value[2 * SPF_TEXT_MAX + 16];
  struct macro m;
  if (!spf_macro_valid(s, len, explain)) return false;
  if (cap) out[0] = 0;
  for (size_t i = 0; i < len && o.ok; i++) {
    if (s[i] != '%') { put(&o, s + i, 1); continue; }
    switch (s[++i]) {
      case '%': put(&o, "%", 1); continue;
      case '_': put(&o, " ", 1); continue;
      case '-': put(&o, "%20", 3); continue;
    }
    i += parse_macro(s + i - 1, len - i + 1, explain, &m) - 2;
    macro_value(run, domain, m.letter, value, sizeof value);
    transform(&m, value, &o);
  }
  return o.ok;
}

bool spf_expand_domain(struct spf_run *run, const char *domain, const char *s,
                       size_t len, char *out, size_t cap)
{
  char buf[SPF_DOMAIN_BUF];
  char *p = buf;
  size_t n;
  if (!spf_macro_expand(run, domain, s, len, false, buf, sizeof buf)) return false;
  n = strlen(buf);
  if (n && buf[n - 1] == '.') buf[--n] = 0;
  while (n > 253) {
    char *dot = strchr(p, '.');
    if (!dot) return false;
    n -= (size_t)(dot + 1 - p);
    p = dot + 1;
  }
  if (n + 1 > cap) return false;
  memcpy(out, p, n + 1);
  return dns_name_ok(out);
}

bool spf_name_within(const char *name, const char *domain)
{
  size_t ln = strlen(name), ld = strlen(domain);
  char a[DNS_NAME_MAX + 2], b[DNS_NAME_MAX + 2];
  if (ln && name[ln - 1] == '.') ln--;
  if (ld && domain[ld - 1] == '.') ld--;
  if (ld == 0 || ln < ld || ln >= sizeof a || ld >= sizeof b) return false;
  memcpy(a, name + ln - ld, ld); a[ld] = 0;
  memcpy(b, domain, ld); b[ld] = 0;
  if (!dns_name_equal(a, b)) return false;
  return ln == ld || name[ln - ld - 1] == '.';
}
