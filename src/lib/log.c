/* log.c -- the row table and the single formatter of log lines (log.h). */
#include "log.h"
#include <string.h>
#include <stdio.h>
#include <unistd.h>
#include <errno.h>

static const struct row rows[ROW_COUNT] = {
#define ROW(id, action, type, cond, code, es, text) { action, type, cond, code, es, text },
#include "rows.def"
#undef ROW
};

const struct row *row_get(enum row_id id)
{
  return (unsigned)id < ROW_COUNT ? &rows[id] : NULL;
}

size_t row_name(enum row_id id, char *buf, size_t cap)
{
  const struct row *r = row_get(id);
  int n = r ? snprintf(buf, cap, "%s::%s::%s", r->action, r->type, r->condition) : -1;
  if (n < 0) { if (cap) buf[0] = 0; return 0; }
  return (size_t)n < cap ? (size_t)n : cap - 1;
}

int row_find(const char *name)
{
  char buf[128];
  for (int i = 0; i < ROW_COUNT; i++) {
    row_name((enum row_id)i, buf, sizeof buf);
    if (strcmp(buf, name) == 0) return i;
  }
  return -1;
}

struct log_field log_cstr(const char *s)
{
  struct log_field f = { s, s ? strlen(s) : 0 };
  return f;
}

/* length of the well-formed UTF-8 sequence at s (RFC 3629), 0 if none */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
  unsigned char c = s[0];
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;          /* no overlongs */
    if (c == 0xED) hi = 0x9F;          /* no surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;          /* <= U+10FFFF */
  } else return 0;
  if (len < n) return 0;
  if (s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xBF) return 0;
  return n;
}

static const char hex[] = "0123456789abcdef";

size_t log_escape(char *out, size_t cap, const char *in, size_t len)
{
  const unsigned char *s = (const unsigned char *)in;
  size_t o = 0, i = 0;
  bool cut = len > LOG_FIELD_MAX;
  size_t end = cut ? LOG_FIELD_MAX : len;
  if (cap < 8) return 0;
  cap -= 4;  /* room for "..." and the terminator */
  while (i < end) {
    unsigned char c = s[i];
    if (c > 0x20 && c < 0x7F && c != '\\' && c != '\'') {
      if (o + 1 > cap) break;
      out[o++] = (char)c;
      i++;
      continue;
    }
    size_t n = c >= 0x80 ? utf8_seq(s + i, len - i) : 0;
    if (n && i + n <= end) {
      if (o + n > cap) break;
      memcpy(out + o, s + i, n);
      o += n;
      i += n;
      continue;
    }
    if (n && cut) break;               /* a sequence cut by the limit: stop before it */
    if (o + 4 > cap) break;
    out[o++] = '\\'; out[o++] = 'x';
    out[o++] = hex[c >> 4]; out[o++] = hex[c & 15];
    i++;
  }
  if (cut || i < end) { memcpy(out + o, "...", 3); o += 3; }
  out[o] = 0;
  return o;
}

struct line { char *p; size_t len, cap; };

static void put(struct line *l, const char *s, size_t n)
{
  if (l->len + n >= l->cap) n = l->cap - 1 - l->len;
  memcpy(l->p + l->len, s, n);
  l->len += n;
}

static void puts_(struct line *l, const char *s) { put(l, s, strlen(s)); }

static void put_field(struct line *l, const char *prefix, struct log_field f, bool quoted)
{
  char esc[4 * LOG_FIELD_MAX + 8];
  if (!f.s) return;
  size_t n = log_escape(esc, sizeof esc, f.s, f.len);
  puts_(l, prefix);
  if (quoted) put(l, "'", 1);
  put(l, esc, n);
  if (quoted) put(l, "'", 1);
}

size_t log_format(char *out, size_t cap, enum row_id id, const struct log_fields *f)
{
  struct line l = { out, 0, cap };
  char num[32];
  const struct row *r = row_get(id);
  if (!r || cap < 64) return 0;
  puts_(&l, f->tag ? f->tag : "qmail-smtpd");
  snprintf(num, sizeof num, ": pid %ld ", (long)f->pid);
  puts_(&l, num);
  puts_(&l, r->action); puts_(&l, "::");
  puts_(&l, r->type); puts_(&l, "::");
  puts_(&l, r->condition); puts_(&l, ":");
  struct log_field ip = f->ip.s ? f->ip : log_cstr("unknown");
  struct log_field host = f->host.s && f->host.len ? f->host : log_cstr("unknown");
  put_field(&l, " S:", ip, false);
  put_field(&l, ":", host, false);
  put_field(&l, " P:", f->proto, false);
  put_field(&l, " H:", f->helo, false);
  put_field(&l, " F:", f->from, false);
  put_field(&l, " T:", f->rcpt, false);
  put_field(&l, " ?~ ", f->user, true);
  put_field(&l, " ", f->detail, true);
  if (l.len >= cap - 1) l.len = cap - 2;
  out[l.len++] = '\n';
  out[l.len] = 0;
  return l.len;
}

bool log_write(int fd, enum row_id id, const struct log_fields *f)
{
  char buf[LOG_LINE_MAX];
  size_t n = log_format(buf, sizeof buf, id, f);
  ssize_t w;
  do w = write(fd, buf, n); while (w < 0 && errno == EINTR);
  return w == (ssize_t)n;
}
