/* wildmat.c -- iterative wildcard matching with one backtrack point (wildmat.h). */
#include "wildmat.h"
#include <ctype.h>
#include <string.h>

static int lc(int c) { return tolower((unsigned char)c); }

/* matches one set at p against c; returns the pattern after the set, or NULL if no match */
static const char *match_set(const char *p, int c, bool *ok)
{
  bool neg = false, hit = false;
  p++;                                           /* '[' */
  if (*p == '^' || *p == '!') { neg = true; p++; }
  if (*p == ']') { hit = (c == ']'); p++; }      /* leading ] is literal */
  while (*p && *p != ']') {
    int lo = (unsigned char)*p;
    if (*p == '\\' && p[1]) lo = (unsigned char)*++p;
    if (p[1] == '-' && p[2] && p[2] != ']') {
      int hi = (unsigned char)p[2];
      if (lc(c) >= lc(lo) && lc(c) <= lc(hi)) hit = true;
      p += 3;
    } else {
      if (lc(c) == lc(lo)) hit = true;
      p++;
    }
  }
  if (*p != ']') { *ok = false; return NULL; }  /* unterminated set never matches */
  *ok = hit != neg;
  return p + 1;
}

bool wildmat(const char *text, size_t len, const char *pat)
{
  size_t t = 0;
  const char *star = NULL;
  size_t star_t = 0;
  while (t < len || *pat) {
    if (*pat == '*') {
      while (*pat == '*') pat++;
      if (!*pat) return true;
      star = pat; star_t = t;
      continue;
    }
    if (t < len) {
      bool ok = false;
      const char *next = NULL;
      int c = (unsigned char)text[t];
      if (*pat == '?') { ok = true; next = pat + 1; }
      else if (*pat == '[') next = match_set(pat, c, &ok);
      else if (*pat == '\\' && pat[1]) { ok = lc(pat[1]) == lc(c); next = pat + 2; }
      else if (*pat) { ok = lc(*pat) == lc(c); next = pat + 1; }
      if (ok) { pat = next; t++; continue; }
    }
    if (!star || star_t >= len) return false;
    pat = star; t = ++star_t;
  }
  return true;
}

bool wildmat_has_magic(const char *p)
{
  return strpbrk(p, "*?[\\") != NULL;
}
