/* spf_parse.c -- the SPF record grammar (RFC 7208 4.5, 4.6, 5, 6, 12):
 * version, terms split on spaces, qualifiers, the eight mechanisms with
 * their arguments and (dual) CIDR lengths, redirect= and exp= (once
 * each), unknown modifiers, and domain-spec syntax. The whole record is
 * checked before anything is evaluated, so a syntax error anywhere is a
 * permerror (4.6).
 */
#include "spf_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <arpa/inet.h>

static bool fail(char *why, size_t len, const char *msg, const char *t, size_t tlen)
{
  if (why && len) snprintf(why, len, "%s: %.*s", msg, (int)(tlen > 64 ? 64 : tlen), t);
  return false;
}

bool spf_is_record(const char *txt, size_t len)
{
  return len >= 6 && strncasecmp(txt, "v=spf1", 6) == 0 && (len == 6 || txt[6] == ' ');
}

/* toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool toplabel_ok(const char *s, size_t len)
{
  bool alpha = false, dash = false;
  if (len == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[len - 1]))
    return false;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '-') dash = true;
    else if (isalpha(c)) alpha = true;
    else if (!isdigit(c)) return false;
  }
  return alpha || dash;
}

/* does the macro-string s end with a macro-expand */
static bool ends_with_macro(const char *s, size_t len)
{
  bool last = false;
  for (size_t i = 0; i < len; i++) {
    if (s[i] != '%') { last = false; continue; }
    if (i + 1 < len && s[i + 1] == '{') {
      const char *close = memchr(s + i, '}', len - i);
      if (!close) return false;
      i = (size_t)(close - s);
    } else {
      i++;
    }
    last = true;
  }
  return last;
}

/* domain-spec = macro-string domain-end; domain-end = ( "." toplabel [ "." ] ) / macro-expand */
static bool domain_spec_ok(const char *s, size_t len)
{
  const char *dot;
  if (len == 0 || !spf_macro_valid(s, len, false)) return false;
  if (ends_with_macro(s, len)) return true;
  if (s[len - 1] == '.') len--;
  dot = len ? memrchr(s, '.', len) : NULL;
  if (!dot) return false;
  return toplabel_ok(dot + 1, len - (size_t)(dot + 1 - s));
}

/* "/" ("0" / %x31-39 0*2DIGIT) with a value of at most max */
static bool cidr_value(const char *s, size_t len, int max, int *out)
{
  int v = 0;
  if (len == 0 || len > 3 || (s[0] == '0' && len > 1)) return false;
  for (size_t i = 0; i < len; i++) {
    if (!isdigit((unsigned char)s[i])) return false;
    v = v * 10 + (s[i] - '0');
  }
  if (v > max) return false;
  *out = v;
  return true;
}

/* length of the trailing digits of s */
static size_t trailing_digits(const char *s, size_t len)
{
  size_t n = 0;
  while (n < len && isdigit((unsigned char)s[len - 1 - n])) n++;
  return n;
}

/* cut [ ip4-cidr-length ] [ "/" ip6-cidr-length ] off the end of *len */
static bool dual_cidr(const char *s, size_t *len, struct spf_term *t)
{
  size_t d = trailing_digits(s, *len);
  if (d && *len >= d + 2 && s[*len - d - 1] == '/' && s[*len - d - 2] == '/') {
    if (!cidr_value(s + *len - d, d, 128, &t->cidr6)) return false;
    *len -= d + 2;
    d = trailing_digits(s, *len);
  }
  if (d && *len >= d + 1 && s[*len - d - 1] == '/') {
    if (!cidr_value(s + *len - d, d, 32, &t->cidr4)) return false;
    *len -= d + 1;
  }
  return true;
}

/* ip4-network: four qnum without leading zeros */
static bool ip4_strict(const char *s, size_t len, struct dns_ip *ip)
{
  char buf[16];
  int part = 0, digits = 0, v = 0;
  if (len == 0 || len >= sizeof buf) return false;
  for (size_t i = 0; i <= len; i++) {
    if (i == len || s[i] == '.') {
      if (digits == 0 || v > 255 || part > 3) return false;
      part++;
      digits = v = 0;
      continue;
    }
    /* a qnum has at most 3 digits: more could overflow v ("ip4:99999999999") */
    if (!isdigit((unsigned char)s[i]) || (digits == 1 && v == 0) || digits == 3) return false;
    v = v * 10 + (s[i] - '0');
    digits++;
  }
  if (part != 4) return false;
  memcpy(buf, s, len);
  buf[len] = 0;
  memset(ip, 0, sizeof *ip);
  ip->family = AF_INET;
  return inet_pton(AF_INET, buf, ip->a) == 1;
}

static bool ip_network(const char *s, size_t len, struct spf_term *t)
{
  const char *slash = memrchr(s, '/', len);
  size_t alen = slash ? (size_t)(slash - s) : len;
  char buf[64];
  if (t->mech == MECH_IP4) {
    if (slash && !cidr_value(slash + 1, len - alen - 1, 32, &t->cidr4)) return false;
    return ip4_strict(s, alen, &t->net);
  }
  if (slash && !cidr_value(slash + 1, len - alen - 1, 128, &t->cidr6)) return false;
  if (alen == 0 || alen >= sizeof buf) return false;
  memcpy(buf, s, alen);
  buf[alen] = 0;
  memset(&t->net, 0, sizeof t->net);
  t->net.family = AF_INET6;
  return inet_pton(AF_INET6, buf, t->net.a) == 1;
}

static const struct { const char *name; enum spf_mech mech; } mechs[] = {
  { "all", MECH_ALL }, { "include", MECH_INCLUDE }, { "a", MECH_A },
  { "mx", MECH_MX }, { "ptr", MECH_PTR }, { "ip4", MECH_IP4 },
  { "ip6", MECH_IP6 }, { "exists", MECH_EXISTS },
};

/* the argument after the mechanism name: rest is ":" ... or "/" ... or "" */
static bool mech_args(struct spf_term *t, const char *rest, size_t len)
{
  bool colon = len && rest[0] == ':';
  const char *arg = colon ? rest + 1 : rest;
  size_t alen = colon ? len - 1 : len;

  switch (t->mech) {
    case MECH_ALL:
      return len == 0;
    case MECH_INCLUDE: case MECH_EXISTS:
      if (!colon || !domain_spec_ok(arg, alen)) return false;
      break;
    case MECH_PTR:
      if (len == 0) return true;
      if (!colon || !domain_spec_ok(arg, alen)) return false;
      break;
    case MECH_A: case MECH_MX:
      if (!dual_cidr(arg, &alen, t)) return false;
      if (!colon) return alen == 0;
      if (!domain_spec_ok(arg, alen)) return false;
      break;
    case MECH_IP4: case MECH_IP6:
      return colon && ip_network(arg, alen, t);
  }
  t->spec = arg;
  t->speclen = alen;
  return true;
}

static bool parse_mechanism(struct spf_record *rec, const char *s, size_t len)
{
  struct spf_term t;
  size_t name, i;
  memset(&t, 0, sizeof t);
  t.text = s;
  t.textlen = len;
  t.qual = SPF_PASS;
  t.cidr4 = 32;
  t.cidr6 = 128;
  switch (s[0]) {
    case '+': s++; len--; break;
    case '-': t.qual = SPF_FAIL; s++; len--; break;
    case '~': t.qual = SPF_SOFTFAIL; s++; len--; break;
    case '?': t.qual = SPF_NEUTRAL; s++; len--; break;
  }
  name = strcspn(s, ":/ ");
  if (name > len) name = len;
  for (i = 0; i < sizeof mechs / sizeof mechs[0]; i++)
    if (strlen(mechs[i].name) == name && strncasecmp(mechs[i].name, s, name) == 0) break;
  if (i == sizeof mechs / sizeof mechs[0] || rec->n >= SPF_MAX_TERMS) return false;
  t.mech = mechs[i].mech;
  if (!mech_args(&t, s + name, len - name)) return false;
  rec->term[rec->n++] = t;
  return true;
}

/* name "=" value; name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
static bool parse_modifier(struct spf_record *rec, const char *s, size_t len, size_t eq)
{
  const char *v = s + eq + 1;
  size_t vlen = len - eq - 1;
  if (eq == 0 || !isalpha((unsigned char)s[0])) return false;
  for (size_t i = 1; i < eq; i++)
    if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i])) return false;
  if (eq == 8 && strncasecmp(s, "redirect", 8) == 0) {
    if (rec->redirect || !domain_spec_ok(v, vlen)) return false;
    rec->redirect = v;
    rec->redirect_len = vlen;
    return true;
  }
  if (eq == 3 && strncasecmp(s, "exp", 3) == 0) {
    if (rec->exp || !domain_spec_ok(v, vlen)) return false;
    rec->exp = v;
    rec->exp_len = vlen;
    return true;
  }
  return spf_macro_valid(v, vlen, false);
}

bool spf_parse(const char *txt, size_t len, bool version, struct spf_record *rec,
               char *why, size_t whylen)
{
  size_t pos = 0;
  memset(rec, 0, sizeof *rec);
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)txt[i] < 0x20 || (unsigned char)txt[i] > 0x7e)
      return fail(why, whylen, "control or non-ASCII character in record", txt, len);
  if (version) {
    if (!spf_is_record(txt, len)) return fail(why, whylen, "not an SPF record", txt, len);
    pos = 6;
  }
  while (pos < len) {
    size_t tlen, delim;
    const char *t;
    while (pos < len && txt[pos] == ' ') pos++;
    if (pos == len) break;
    t = txt + pos;
    tlen = strcspn(t, " ");
    if (tlen > len - pos) tlen = len - pos;
    pos += tlen;
    delim = strcspn(t, ":/=");
    if (delim < tlen && t[delim] == '=') {
      if (!version || !parse_modifier(rec, t, tlen, delim))
        return fail(why, whylen, "bad modifier", t, tlen);
    } else if (!parse_mechanism(rec, t, tlen)) {
      return fail(why, whylen, rec->n >= SPF_MAX_TERMS ? "too many terms" : "bad mechanism", t, tlen);
    }
  }
  return true;
}
