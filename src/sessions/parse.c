/* parse.c -- one log line into a struct logline, without copying.
 *
 * Timestamp prefixes: multilog TAI64N ("@4000..."), ISO 8601 (s6-log,
 * tai64nlocal, journalctl -o short-iso), RFC 3164 syslog ("Nov 24 19:16:33
 * host prog[pid]: msg", the host becomes part of the session key), RFC 5424
 * syslog, or none. Messages: tcpserver/sslserver (status, pid .. from,
 * ok, deny, end), rblsmtpd, qmail-smtpd/qmail-popup decisions in mxgate's
 * layout ("Row: S:.. P:..") and s/qmail's ("Row P:.. S:.."), mxgate-send's
 * delivery lines (the same layout, "mxgate-send: pid N Row: S:hop ..."),
 * and mxgate-smtpd warnings. Anything else is L_NONE.
 */
#include "sessions.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* a hex digit's value plus one, 0 for anything else (a table: this is the hot path) */
static const unsigned char hex1[256] = {
  ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10,
  ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
  ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

static int hexval(char c) { return hex1[(unsigned char)c] - 1; }

size_t unescape(const char *in, size_t n, char *out, size_t cap)
{
  if (!cap) return 0;
  if (!memchr(in, '\\', n)) {                             /* the common case: nothing escaped */
    size_t o = n < cap - 1 ? n : cap - 1;
    memcpy(out, in, o);
    out[o] = 0;
    return o;
  }
  size_t o = 0;
  for (size_t i = 0; i < n && o + 1 < cap; i++) {
    if (in[i] == '\\' && i + 3 < n + 0 && in[i + 1] == 'x' && hexval(in[i + 2]) >= 0 && hexval(in[i + 3]) >= 0) {
      out[o++] = (char)(hexval(in[i + 2]) * 16 + hexval(in[i + 3]));
      i += 3;
    } else out[o++] = in[i];
  }
  out[o] = 0;
  return o;
}

/* the decimal number at *p (stepped over), -1 if there is none */
static long number_at(const char **p, const char *end)
{
  const char *q = *p;
  long v = 0;
  int n = 0;
  for (; q < end && (unsigned)(*q - '0') < 10; q++, n++) if (n < 15) v = v * 10 + (*q - '0');
  if (!n) return -1;
  *p = q;
  return v;
}

static bool word_at(const char **p, const char *end, const char *w)
{
  size_t n = strlen(w);
  if ((size_t)(end - *p) < n || memcmp(*p, w, n)) return false;
  *p += n;
  return true;
}

long queued_qp(const char *d, size_t n)
{
  const char *p = d, *end = d + n;
  return word_at(&p, end, "qp ") ? number_at(&p, end) : -1;
}

bool send_detail(const char *d, size_t n, struct send_detail *o)
{
  const char *p = d, *end = d + n;
  *o = (struct send_detail){ .qp = -1, .id = "", .tls = "", .reply = d, .replylen = n };
  long qp;
  if (!word_at(&p, end, "qp ") || (qp = number_at(&p, end)) < 0 || !word_at(&p, end, " id ")) return false;
  const char *id = p;
  while (p < end && *p != ' ' && *p != ':') p++;
  const char *id_end = p, *tls = p + 5;                 /* past " tls " */
  if (!word_at(&p, end, " tls verified") && !word_at(&p, end, " tls unverified")) tls = p;
  size_t tlslen = (size_t)(p - tls);
  if (!word_at(&p, end, ":")) return false;
  if (p < end && *p == ' ') p++;
  *o = (struct send_detail){ qp, id, tls, p, (size_t)(id_end - id), tlslen, (size_t)(end - p) };
  return true;
}

/* a decimal number; digits past the 15th are skipped, never overflow.
 * Up to seven digits with eight bytes readable (every pid and status) are
 * found and converted eight bytes at a time: a byte is not a digit when
 * subtracting '0' or adding 0x46 sets its top bit (a borrow or carry only
 * reaches the bytes after the first non-digit, which are not used) */
static inline __attribute__((always_inline)) long num(const char **p, const char *end)
{
  const char *q = *p;
  if (end - q >= 8) {
    unsigned long long w;
    memcpy(&w, q, 8);
    unsigned long long nondigit = ((w - 0x3030303030303030ULL) | (w + 0x4646464646464646ULL)) & 0x8080808080808080ULL;
    if (nondigit) {
      int n = __builtin_ctzll(nondigit) >> 3;
      *p = q + n;
      if (!n) return 0;
      unsigned long long v = ((w - 0x3030303030303030ULL) & 0x0f0f0f0f0f0f0f0fULL) << (8 * (8 - n));
      v = (v * 10 + (v >> 8)) & 0x00ff00ff00ff00ffULL;               /* pairs of digits */
      v = (v * 100 + (v >> 16)) & 0x0000ffff0000ffffULL;             /* fours */
      return (long)((v * 10000 + (v >> 32)) & 0xffffffffULL);
    }
  }
  long v = 0;
  const char *stop = end - q > 15 ? q + 15 : end;
  for (; q < stop && (unsigned)(*q - '0') < 10; q++) v = v * 10 + (*q - '0');
  while (q < end && (unsigned)(*q - '0') < 10) q++;
  *p = q;
  return v;
}

/* the first n (up to 8) bytes of s as a little-endian word: a constant
 * when s is a literal */
#define BYTE_AT(s, i, n) ((i) < (n) ? (unsigned long long)(unsigned char)(s)[i] << (8 * (i)) : 0)
static inline unsigned long long word_of(const char *s, size_t n)
{
  return BYTE_AT(s, 0, n) | BYTE_AT(s, 1, n) | BYTE_AT(s, 2, n) | BYTE_AT(s, 3, n) | BYTE_AT(s, 4, n) |
         BYTE_AT(s, 5, n) | BYTE_AT(s, 6, n) | BYTE_AT(s, 7, n);
}

/* the literal s at *p, stepped over. With eight bytes of the line left,
 * compared a word at a time (the words of s are constants once inlined) */
static inline __attribute__((always_inline)) bool lit(const char **p, const char *end, const char *s)
{
  size_t n = strlen(s), left = (size_t)(end - *p);
  if (left < n) return false;
  if (left >= 8 && n <= 24) {
    unsigned long long w, mask = n >= 8 ? ~0ULL : (1ULL << (8 * n)) - 1;
    memcpy(&w, *p, 8);
    if ((w & mask) != word_of(s, n)) return false;
    if (n > 16) {
      memcpy(&w, *p + 8, 8);
      if (w != word_of(s + 8, 8)) return false;
    }
    if (n > 8) {                                         /* the last eight, overlapping */
      memcpy(&w, *p + n - 8, 8);
      if (w != word_of(s + n - 8, 8)) return false;
    }
  } else if (memcmp(*p, s, n) != 0) return false;
  *p += n;
  return true;
}

/* the n digits at p as a number, or -1 if one of them is not a digit */
static int digits(const char *p, int n)
{
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)p[i])) return -1;
    v = v * 10 + (p[i] - '0');
  }
  return v;
}

/* "YYYY-MM-DD[T ]HH:MM:SS[.frac][Z|+hh:mm|-hh:mm]", each number of exactly
 * its digits (a longer one would overflow: it is no such stamp) */
__attribute__((noinline)) static bool iso_time(const char **pp, const char *end, double *ts)
{
  const char *p = *pp;
  if (end - p < 19 || p[4] != '-' || p[7] != '-' || (p[10] != 'T' && p[10] != ' ') || p[13] != ':' || p[16] != ':')
    return false;
  int year = digits(p, 4), mon = digits(p + 5, 2), day = digits(p + 8, 2), hour = digits(p + 11, 2),
      min = digits(p + 14, 2), sec = digits(p + 17, 2);
  if ((year | mon | day | hour | min | sec) < 0) return false;
  struct tm tm = { .tm_year = year - 1900, .tm_mon = mon - 1, .tm_mday = day, .tm_hour = hour, .tm_min = min,
                   .tm_sec = sec };
  p += 19;
  double frac = 0, scale = 0.1;
  if (p < end && (*p == '.' || *p == ',')) for (p++; p < end && isdigit((unsigned char)*p); p++, scale /= 10) frac += (*p - '0') * scale;
  long off = 0;
  int oh, om;
  if (p < end && *p == 'Z') p++;
  else if (end - p >= 6 && (*p == '+' || *p == '-') && p[3] == ':' && (oh = digits(p + 1, 2)) >= 0 &&
           (om = digits(p + 4, 2)) >= 0) {
    off = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
    p += 6;
  }
  *ts = (double)timegm(&tm) - (double)off + frac;
  *pp = p;
  return true;
}

/* eight hex digits at p (any other byte gives a wrong value, never a fault):
 * each byte to its nibble, then the nibbles packed, eight at once */
static inline __attribute__((always_inline)) unsigned long long hex8(const char *p)
{
  unsigned long long v;
  memcpy(&v, p, 8);
  v = (v & 0x0f0f0f0f0f0f0f0fULL) + 9 * ((v >> 6) & 0x0101010101010101ULL);
  v = ((v << 4) | (v >> 8)) & 0x00ff00ff00ff00ffULL;     /* a byte per two digits, in every other byte */
  v = (v | (v >> 8)) & 0x0000ffff0000ffffULL;            /* packed: two bytes, four, ... */
  v = (v | (v >> 16)) & 0xffffffffULL;
  return __builtin_bswap32((unsigned)v);
}

static const char *months = "JanFebMarAprMayJunJulAugSepOctNovDec";

/* the time of a TAI64N stamp ("@" and 24 hex digits): the second, then the nanoseconds */
static double tai64n(const char *p, struct parse_memo *m)
{
  double sec;
  if (m && !memcmp(m->tai_sec, p + 1, 16)) sec = m->sec;
  else {
    sec = (double)(long long)((hex8(p + 1) << 32 | hex8(p + 9)) - 4611686018427387914ULL);
    if (m) { memcpy(m->tai_sec, p + 1, 16); m->sec = sec; }
  }
  if (m && m->seconds) return sec;
  return sec + (double)(unsigned)hex8(p + 17) * 1e-9;
}

/* strips the time (and syslog) prefix; returns the message start. A
 * TAI64N stamp is only found (*tai), decoded once the line is known to need it */
static const char *other_prefix(const char *p, const char *end, struct logline *l);
static inline const char *prefix(const char *p, const char *end, struct logline *l, const char **tai)
{
  if (end - p > 25 && p[0] == '@') {
    *tai = p;
    return p[25] == ' ' ? p + 26 : p + 25;
  }
  return other_prefix(p, end, l);
}

/* the prefixes other than TAI64N, out of the way of the common one */
__attribute__((noinline)) static const char *other_prefix(const char *p, const char *end, struct logline *l)
{
  if (end - p > 3 && p[0] == '<') {                        /* RFC 5424 <PRI>1 TS HOST APP PROCID MSGID SD MSG */
    const char *q = memchr(p, '>', (size_t)(end - p) < 6 ? (size_t)(end - p) : 6);
    if (q && q + 2 < end && q[1] == '1' && q[2] == ' ') {
      q += 3;
      iso_time(&q, end, &l->ts);
      const char *fields[5];
      for (int i = 0; i < 5 && q < end; i++) {
        while (q < end && *q == ' ') q++;
        fields[i] = q;
        if (i == 4 && q < end && *q == '[') { const char *e = memchr(q, ']', (size_t)(end - q)); q = e ? e + 1 : end; }
        else while (q < end && *q != ' ') q++;
        if (i == 0) { l->host = fields[0]; l->hostlen = (size_t)(q - fields[0]); }
      }
      return q < end ? q + 1 : q;
    }
  }
  if (iso_time(&p, end, &l->ts)) { while (p < end && *p == ' ') p++; return p; }
  if (end - p > 16 && p[3] == ' ' && p[6] == ' ' && p[9] == ':' && p[12] == ':') {     /* RFC 3164 */
    const char *m = strstr(months, (char[4]){ p[0], p[1], p[2], 0 });
    int hour = digits(p + 7, 2), min = digits(p + 10, 2), sec = digits(p + 13, 2);
    if (m && (m - months) % 3 == 0 && (hour | min | sec) >= 0) {
      time_t now = time(NULL);
      struct tm tm;
      gmtime_r(&now, &tm);
      tm.tm_mon = (int)(m - months) / 3; tm.tm_mday = atoi(p + 4);      /* " 4" or "24": p[6] is a blank */
      tm.tm_hour = hour; tm.tm_min = min; tm.tm_sec = sec;
      l->ts = (double)timegm(&tm);
      const char *q = p + 16;
      l->host = q;
      while (q < end && *q != ' ') q++;
      l->hostlen = (size_t)(q - l->host);
      const char *colon = memchr(q, ':', (size_t)(end - q));     /* "prog[pid]: " */
      if (colon && colon + 1 < end) return colon[1] == ' ' ? colon + 2 : colon + 1;
    }
  }
  return p;
}

/* the next ' ' at or after p, or end: the next stop bit of the index */
static inline __attribute__((always_inline)) const char *to_space(const struct scan *ix, const char *p, const char *end)
{
  size_t off = (size_t)(p - ix->base), w = off >> 6;
  unsigned long long m = ix->stop[w] & (~0ULL << (off & 63));
  while (!m) m = ix->stop[++w];
  const char *q = ix->base + (w << 6) + __builtin_ctzll(m);
  return q < end ? q : end;
}

/* whether a backslash is in [p, end) */
static inline __attribute__((always_inline)) bool has_escape(const struct scan *ix, const char *p, const char *end)
{
  if (p >= end) return false;
  size_t from = (size_t)(p - ix->base), to = (size_t)(end - ix->base) - 1, w = from >> 6, last = to >> 6;
  unsigned long long m = ix->esc[w] & (~0ULL << (from & 63));
  for (; w < last; m = ix->esc[++w])
    if (m) return true;
  return (m & (~0ULL >> (63 - (to & 63)))) != 0;
}

/* a ':' within the first n bytes of p; the first eight (where a row's
 * "Accept::" has it) at once */
static bool has_colon(const char *p, size_t n)
{
  if (n >= 8) {
    unsigned long long v;
    memcpy(&v, p, 8);
    v ^= 0x3a3a3a3a3a3a3a3aULL;
    if ((v - 0x0101010101010101ULL) & ~v & 0x8080808080808080ULL) return true;   /* a zero byte: a ':' */
  }
  return memchr(p, ':', n) != NULL;
}

/* a decision's field letter: its F_ index plus one, 0 for none */
static const unsigned char field_kind1[256] = {
  ['S'] = F_IP + 1, ['P'] = F_PROTO + 1, ['H'] = F_HELO + 1, ['F'] = F_FROM + 1, ['T'] = F_TO + 1,
};

/* the last ':' in [from, to), or NULL; the last eight bytes a word at a time */
static const char *last_colon(const char *from, const char *to)
{
  if (to - from >= 8) {
    unsigned long long v;
    memcpy(&v, to - 8, 8);
    v ^= 0x3a3a3a3a3a3a3a3aULL;                            /* a ':' becomes a zero byte */
    /* the top bit of each zero byte, exactly: no carry crosses a byte */
    unsigned long long z = ~(((v & 0x7f7f7f7f7f7f7f7fULL) + 0x7f7f7f7f7f7f7f7fULL) | v | 0x7f7f7f7f7f7f7f7fULL);
    if (z) return to - 8 + ((63 - __builtin_clzll(z)) >> 3);
    to -= 8;
  }
  while (to > from && to[-1] != ':') to--;
  return to > from ? to - 1 : NULL;
}

/* the ':' before a host that is an address literal ("[2001:db8::1]", the
 * next hop of a delivery to a literal), which has colons of its own; the
 * last ':' when there is no such '[' */
__attribute__((noinline)) static const char *literal_colon(const char *from, const char *to)
{
  const char *b = to;
  while (b > from && b[-1] != '[') b--;
  if (b > from + 1 && b[-2] == ':') return b - 2;
  return last_colon(from, to);
}

/* a walk over the stop bits of a line, a token (the bytes between two
 * stops, maybe none) at a time */
struct tokens { const char *word, *p, *end; const unsigned long long *stop; unsigned long long m; };   /* word: of stop[0] */

static inline __attribute__((always_inline)) void tokens_at(struct tokens *k, const struct scan *ix, const char *p,
                                                            const char *end)
{
  size_t off = (size_t)(p - ix->base);
  *k = (struct tokens){ ix->base + (off & ~(size_t)63), p, end, ix->stop + (off >> 6),
                        ix->stop[off >> 6] & (~0ULL << (off & 63)) };
}

/* the next token (*t, its length returned); false past the end */
static inline __attribute__((always_inline)) bool token(struct tokens *k, const char **t, size_t *n)
{
  if (k->p >= k->end) return false;
  while (!k->m) { k->m = *++k->stop; k->word += 64; }
  const char *q = k->word + __builtin_ctzll(k->m);
  k->m &= k->m - 1;
  if (q > k->end) q = k->end;
  *t = k->p;
  *n = (size_t)(q - k->p);
  k->p = q + 1;
  return true;
}

/* the fields of a decision, split at the stop bits of the index (a field
 * per bit, no search) */
static void decision_fields(const struct scan *ix, const char *p, const char *end, struct logline *l)
{
  struct tokens k;
  const char *t;
  size_t n;
  tokens_at(&k, ix, p < end ? p + 1 : p, end);          /* past the space after the row */
  while (token(&k, &t, &n)) {
    unsigned f1 = n >= 2 && t[1] == ':' ? field_kind1[(unsigned char)t[0]] : 0;     /* the field's index plus one */
    if (f1) {
      l->f[f1 - 1] = t + 2; l->flen[f1 - 1] = n - 2;
      if (f1 == F_IP + 1) {                             /* S:ip:host, the host after the last ':' */
        const char *c = t[n - 1] == ']' ? literal_colon(t + 2, t + n) : last_colon(t + 2, t + n);
        if (c) { l->flen[F_IP] = (size_t)(c - (t + 2)); l->f[F_SHOST] = c + 1; l->flen[F_SHOST] = (size_t)(t + n - c - 1); }
      }
    } else if (n == 2 && t[0] == '?' && t[1] == '~') {      /* the quoted user next */
      bool more;
      while ((more = token(&k, &t, &n)) && !n) continue;
      if (more && n >= 2 && *t == '\'' && t[n - 1] == '\'') { l->f[F_USER] = t + 1; l->flen[F_USER] = n - 2; }
    } else if (n >= 2 && t[0] == '\'' && t[n - 1] == '\'') {
      l->f[F_DETAIL] = t + 1; l->flen[F_DETAIL] = n - 2;
    }
  }
}

/* the message of a line, p up to end */
static bool message(const struct scan *ix, const char *p, const char *end, struct logline *l)
{
  if ((*p == 't' && lit(&p, end, "tcpserver: ")) || (*p == 's' && lit(&p, end, "sslserver: "))) {
    l->prog = "tcpserver";
    if (p < end && *p == 's' && lit(&p, end, "status: ")) { l->kind = L_STATUS; return true; }
    if (p < end && *p == 'e' && lit(&p, end, "end ")) {    /* numbers only: no escapes to look for */
      l->pid = num(&p, end);
      l->kind = L_END;
      if (!lit(&p, end, " status ")) return false;
      l->status = num(&p, end);
      return true;
    }
    if (lit(&p, end, "pid ")) {
      l->escaped = has_escape(ix, p, end);              /* the message's fields; not the prefix */
      l->pid = num(&p, end);
      if (!lit(&p, end, " from ")) return false;
      l->a = p; l->alen = (size_t)(end - p);
      l->kind = L_OPEN;
      return true;
    }
    enum line_kind k = lit(&p, end, "ok ") ? L_OK : lit(&p, end, "deny ") ? L_DENY : L_NONE;
    if (k == L_NONE) return false;
    l->escaped = true;              /* not looked for: when counting, an ok line's fields are seldom kept */
    l->pid = num(&p, end);
    l->kind = k;
    if (!lit(&p, end, " ")) return false;
    l->a = p;
    p = to_space(ix, p, end);
    l->alen = (size_t)(p - l->a);
    l->b = p < end ? p + 1 : NULL;
    l->blen = p < end ? (size_t)(end - p - 1) : 0;
    return true;
  }
  if (*p == 'r' && lit(&p, end, "rblsmtpd: ")) {
    l->escaped = has_escape(ix, p, end);
    l->prog = "rblsmtpd";
    l->a = p;
    p = to_space(ix, p, end);
    l->alen = (size_t)(p - l->a);
    if (!lit(&p, end, " pid ")) return false;
    l->pid = num(&p, end);
    if (!lit(&p, end, ": ")) return false;
    l->b = p; l->blen = (size_t)(end - p);
    l->kind = L_RBL;
    return true;
  }
  bool smtpd = *p == 'q' && lit(&p, end, "qmail-smtpd: pid "), popup = !smtpd && *p == 'q' && lit(&p, end, "qmail-popup: pid ");
  bool send = !smtpd && !popup && *p == 'm' && lit(&p, end, "mxgate-send: pid ");
  if (smtpd || popup || send) {
    l->prog = smtpd ? "qmail-smtpd" : popup ? "qmail-popup" : "mxgate-send";
    l->pid = num(&p, end);
    if (!lit(&p, end, " ")) return false;
    l->row = p;
    p = to_space(ix, p, end);
    l->rowlen = (size_t)(p - l->row);
    if (l->rowlen && l->row[l->rowlen - 1] == ':') l->rowlen--;     /* mxgate's layout */
    if (!has_colon(l->row, l->rowlen)) return false;
    for (int i = 0; i < 8; i++) l->f[i] = NULL;
    for (int i = 0; i < 8; i++) l->flen[i] = 0;
    decision_fields(ix, p, end, l);
    const char *d = l->f[F_DETAIL], *d_end = d ? d + l->flen[F_DETAIL] : end;   /* the summary does not read it */
    l->escaped = d ? has_escape(ix, l->row, d) || has_escape(ix, d_end, end) : has_escape(ix, l->row, end);
    l->detail_escaped = d && has_escape(ix, d, d_end);
    l->kind = send ? L_SEND : L_DECISION;
    return true;
  }
  if (*p == 'm' && lit(&p, end, "mxgate-smtpd: pid ")) {
    l->prog = "mxgate-smtpd";
    l->escaped = has_escape(ix, p, end);
    l->pid = num(&p, end);
    l->a = p; l->alen = (size_t)(end - p);
    l->kind = L_WARNING;
    return true;
  }
  return false;
}

bool parse_scanned(const struct scan *ix, const char *line, size_t n, struct logline *l, struct parse_memo *m)
{
  const char *end = line + n, *tai = NULL;
  /* field by field: a whole-struct clear compiles to a slow string instruction */
  l->kind = L_NONE; l->ts = 0; l->host = ""; l->hostlen = 0; l->pid = 0; l->prog = NULL; l->escaped = false;
  /* the fields of a kind (a, b, status, row, f) are set by the code that
   * finds that kind: not cleared here for every line */
  const char *p = prefix(line, end, l, &tai);
  if (p == end || !message(ix, p, end, l)) return false;
  if (tai && l->kind != L_STATUS) l->ts = tai64n(tai, m);      /* a status line's time is of no use */
  return true;
}

bool parse_line(const char *p, size_t n, struct logline *l, struct parse_memo *m)
{
  struct scan ix = { 0 };
  const char *nl = memchr(p, '\n', n);
  if (nl) n = (size_t)(nl - p);                          /* a line ends at its newline */
  bool ok = scan_block(&ix, p, n) && parse_scanned(&ix, p, n, l, m);
  scan_free(&ix);
  return ok;
}
