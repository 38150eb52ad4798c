/* str.c -- growable byte strings with a hard cap (see str.h). */
#include "str.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>
#include <stdint.h>

#define STR_DEFAULT_MAX (1024u * 1024u)

bool str_ready(str *sa, size_t n)
{
  size_t max = sa->max ? sa->max : STR_DEFAULT_MAX;
  if (n > max) return false;
  if (n + 1 <= sa->cap) return true;
  size_t want = sa->cap ? sa->cap : 64;
  while (want < n + 1) want *= 2;
  if (want > max + 1) want = max + 1;
  char *p = realloc(sa->s, want);
  if (!p) return false;
  sa->s = p;
  sa->cap = want;
  return true;
}

bool str_catb(str *sa, const void *b, size_t n)
{
  if (n > SIZE_MAX - sa->len - 1 || !str_ready(sa, sa->len + n)) return false;
  if (n) memcpy(sa->s + sa->len, b, n);
  sa->len += n;
  sa->s[sa->len] = 0;
  return true;
}

bool str_cats(str *sa, const char *s) { return str_catb(sa, s, strlen(s)); }
bool str_catc(str *sa, char c) { return str_catb(sa, &c, 1); }

bool str_catu(str *sa, unsigned long long u)
{
  char buf[24];
  size_t i = sizeof buf;
  do { buf[--i] = (char)('0' + u % 10); u /= 10; } while (u);
  return str_catb(sa, buf + i, sizeof buf - i);
}

bool str_copyb(str *sa, const void *b, size_t n) { sa->len = 0; return str_catb(sa, b, n); }
bool str_copys(str *sa, const char *s) { return str_copyb(sa, s, strlen(s)); }

bool str_0(str *sa)
{
  if (!str_ready(sa, sa->len)) return false;
  sa->s[sa->len] = 0;
  return true;
}

void str_free(str *sa)
{
  free(sa->s);
  sa->s = NULL;
  sa->len = sa->cap = 0;
}

void str_lower(str *sa)
{
  for (size_t i = 0; i < sa->len; i++)
    sa->s[i] = (char)tolower((unsigned char)sa->s[i]);
}

bool str_equal_nocase(const char *a, size_t alen, const char *b, size_t blen)
{
  return alen == blen && (alen == 0 || strncasecmp(a, b, alen) == 0);
}

bool str_starts_nocase(const char *s, size_t len, const char *prefix)
{
  size_t n = strlen(prefix);
  return len >= n && strncasecmp(s, prefix, n) == 0;
}

const char *str_cstr(str *sa)
{
  if (!sa->s || !str_0(sa)) return "";
  return sa->s;
}
