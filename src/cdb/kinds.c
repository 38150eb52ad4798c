/* kinds.c -- the table of what mxgate-cdb compiles: one entry per kind,
 * each with the parser that turns a line into cdb records (SPEC.md §2).
 *
 *   morercpthosts   key: the lower-cased domain; data empty
 *   badmimetypes    key: the first 9 characters; the rest of the line is a
 *                   comment (as s/qmail's qmail-badmimetypes); data empty
 *   badloadertypes  key: the first 5 characters, the rest a comment
 *   mailfromrules   "key&data": key lower-cased, data the text after '&'
 *                   verbatim; an IPv4 key "a.b.c.N-M" stands for the keys
 *                   a.b.c.N ... a.b.c.M (as s/qmail's qmail-mfrules); data
 *                   may not start with '+', which marks the data of a cdb
 *                   made by qmail-mfrules ("+a+b") for mxgate-smtpd
 *   users           users(5) lines; key the name, data the canonical line
 *   recipients      ":" + the lower-cased address; "@domain" gives the
 *                   catch-all ":@domain" (fastforward-compatible)
 * Adding a kind is adding a parser and a row to kinds[].
 */
#include "cdbkinds.h"
#include "str.h"
#include "users.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 1024

static bool has_blank(const char *l, size_t n)
{
  for (size_t i = 0; i < n; i++) if (isspace((unsigned char)l[i])) return true;
  return false;
}

/* key lower-cased, data as given */
static const char *add_lower(const struct cdb_sink *out, const char *prefix, const char *k, size_t kn,
                             const char *d, size_t dn)
{
  char key[KEY_MAX + 2];
  size_t p = strlen(prefix);
  if (kn + p > KEY_MAX) return "too long";
  memcpy(key, prefix, p);
  for (size_t i = 0; i < kn; i++) key[p + i] = (char)tolower((unsigned char)k[i]);
  return out->add(out->ctx, key, p + kn, d, dn);
}

static const char *morercpthosts(const char *l, size_t n, const struct cdb_sink *out)
{
  if (has_blank(l, n)) return "a domain has no blanks";
  if (memchr(l, '@', n)) return "a domain has no @";
  return add_lower(out, "", l, n, "", 0);
}

/* s/qmail: the first `width` characters are the key, the rest a comment */
static const char *fixed(const char *l, size_t n, const struct cdb_sink *out, size_t width, const char *why)
{
  if (n < width || has_blank(l, width)) return why;
  return out->add(out->ctx, l, width, "", 0);
}

static const char *badmimetypes(const char *l, size_t n, const struct cdb_sink *out)
{
  return fixed(l, n, out, 9, "a bad MIME type has 9 characters");
}

static const char *badloadertypes(const char *l, size_t n, const struct cdb_sink *out)
{
  return fixed(l, n, out, 5, "a bad loader type has 5 characters");
}

/* "a.b.c.N-M": the keys a.b.c.N ... a.b.c.M; false when key is no range */
static bool ip_range(const char *k, size_t n, size_t *prefix, unsigned *lo, unsigned *hi, const char **err)
{
  const char *dash = memchr(k, '-', n);
  if (!dash || memchr(k, '=', n) || memchr(k, '@', n) || memchr(k, ':', n)) return false;
  size_t d = (size_t)(dash - k), p = d;
  while (p && k[p - 1] != '.') p--;
  char num[8];
  *err = "a range is a.b.c.N-M with N <= M <= 255";
  if (d - p == 0 || d - p > 3 || n - d - 1 == 0 || n - d - 1 > 3) return true;
  for (size_t i = p; i < n; i++) if (i != d && !isdigit((unsigned char)k[i])) return true;
  snprintf(num, sizeof num, "%.*s", (int)(d - p), k + p);
  *lo = (unsigned)atoi(num);
  snprintf(num, sizeof num, "%.*s", (int)(n - d - 1), dash + 1);
  *hi = (unsigned)atoi(num);
  if (*lo > *hi || *hi > 255) return true;
  *prefix = p;
  *err = NULL;
  return true;
}

static const char *mailfromrules(const char *l, size_t n, const struct cdb_sink *out)
{
  const char *amp = memchr(l, '&', n);
  if (!amp) return "a rule is key&senders";
  size_t kn = (size_t)(amp - l), dn = n - kn - 1;
  if (!kn) return "a rule needs a key before '&'";
  if (has_blank(l, kn)) return "a key has no blanks";
  if (dn && amp[1] == '+') return "a sender list may not start with '+' (qmail-mfrules' stored form)";
  size_t prefix;
  unsigned lo, hi;
  const char *err = NULL;
  if (!ip_range(l, kn, &prefix, &lo, &hi, &err)) return add_lower(out, "", l, kn, amp + 1, dn);
  if (err) return err;
  for (unsigned v = lo; v <= hi; v++) {
    char key[KEY_MAX + 8];
    if (prefix > KEY_MAX) return "too long";
    int k = snprintf(key, sizeof key, "%.*s%u", (int)prefix, l, v);
    if ((err = add_lower(out, "", key, (size_t)k, amp + 1, dn))) return err;
  }
  return NULL;
}

static const char *recipients(const char *l, size_t n, const struct cdb_sink *out)
{
  if (has_blank(l, n)) return "an address has no blanks";
  const char *at = memchr(l, '@', n);
  if (!at || at == l + n - 1) return "an address is local@domain or @domain";
  return add_lower(out, ":", l, n, "", 0);
}

static const char *users(const char *l, size_t n, const struct cdb_sink *out)
{
  struct user_entry u;
  const char *err = NULL;
  int r = users_parse_line(l, n, &u, &err);
  if (r < 0) return err ? err : "bad users line";
  if (r == 0) return NULL;
  str key = STR_INIT(1 << 16), data = STR_INIT(1 << 16);
  bool ok = users_cdb_record(&u, &key, &data);
  users_entry_wipe(&u);
  err = ok ? out->add(out->ctx, key.s, key.len, data.s ? data.s : "", data.len) : "out of memory";
  if (data.s) explicit_bzero(data.s, data.cap);
  str_free(&key);
  str_free(&data);
  return err;
}

static const struct cdb_kind kinds[] = {
  { "morercpthosts",  morercpthosts,  false, NULL, 0644 },
  { "badmimetypes",   badmimetypes,   false, NULL, 0644 },
  { "badloadertypes", badloadertypes, false, NULL, 0644 },
  { "mailfromrules",  mailfromrules,  false, NULL, 0644 },
  { "users",          users,          false, "the user is listed twice", 0600 },
  { "recipients",     recipients,     true,  NULL, 0644 },
};

const char cdb_usage[] =
  "usage: mxgate-cdb morercpthosts|badmimetypes|badloadertypes|mailfromrules|users\n"
  "       mxgate-cdb recipients FILE\n";

const struct cdb_kind *cdb_kind_find(const char *name)
{
  for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
    if (strcmp(kinds[i].name, name) == 0) return &kinds[i];
  return NULL;
}
