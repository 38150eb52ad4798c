/* report_summary.c -- the pflogsumm-like report (--summary), the
 * node_exporter textfile counters (--prometheus) and the self-contained
 * HTML page with SVG charts (--html FILE). Counters live in bounded maps:
 * past MAP_MAX distinct keys, new keys count as "(other)".
 */
#include "sessions.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAP_MAX 100000
#define LIST_MAX 5000            /* sessions listed in the HTML page */
/* a map's first slots (a power of two) and the bytes of its key blocks;
 * small in the fuzz build, where every input has fresh maps */
#ifndef MAP_FIRST
#define MAP_FIRST 256
#endif
#ifndef KEYBLOCK
#define KEYBLOCK (64 << 10)
#endif

#include "summary.h"

/* eight bytes per multiplication: keys are rows, addresses and IPs */
static unsigned long hash(const char *s, size_t n)
{
  unsigned long long h = 0x9e3779b97f4a7c15ULL ^ n, w = 0;
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) {
      memcpy(&w, s + i, 8);
      h = (h ^ w) * 0xff51afd7ed558ccdULL;
      h ^= h >> 32;
    }
    memcpy(&w, s + n - 8, 8);                  /* the last eight, overlapping: no copy of a variable length */
  } else {
    for (size_t i = 0; i < n; i++) w |= (unsigned long long)(unsigned char)s[i] << (8 * i);
  }
  h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
  return (unsigned long)(h ^ (h >> 29));
}

/* a == b for n bytes, eight at a time: keys are short, a call to memcmp
 * costs more than the compare */
static bool same_bytes(const char *a, const char *b, size_t n)
{
  unsigned long long x, y;
  if (n < 8) return !memcmp(a, b, n);
  for (size_t i = 0; i + 8 < n; i += 8) {
    memcpy(&x, a + i, 8); memcpy(&y, b + i, 8);
    if (x != y) return false;
  }
  memcpy(&x, a + n - 8, 8); memcpy(&y, b + n - 8, 8);      /* the last eight, overlapping */
  return x == y;
}

/* a slot's tag: 0 when empty, else the top bit and seven bits of the
 * key's hash. Probes read the tags, a byte a slot that stays in the cache
 * even when the entries (100,000 IPs: megabytes) do not; an entry is read
 * only where its tag matches */
static unsigned char tag_of(unsigned long h) { return (unsigned char)(0x80 | h >> 57); }

/* the index of key in the map's slots, or of the empty slot where it goes */
static size_t slot(const struct entry *e, const unsigned char *tag, size_t cap, const char *key, size_t len,
                   unsigned long h)
{
  unsigned char t = tag_of(h);
  size_t i = h & (cap - 1);
  for (; tag[i]; i = (i + 1) & (cap - 1))
    if (tag[i] == t && e[i].hash == h && e[i].len == len && same_bytes(e[i].key, key, len)) break;
  return i;
}

/* len + 1 bytes for a key, from the map's blocks: a malloc per key cost
 * more than the count, and a free per key at the end more still */
static char *key_space(struct map *m, size_t len)
{
  struct keyblock *b = m->keys;
  if (!b || b->cap - b->used < len + 1) {
    size_t cap = len + 1 > KEYBLOCK ? len + 1 : KEYBLOCK;
    if (!(b = malloc(sizeof *b + cap))) return NULL;
    b->next = m->keys; b->used = 0; b->cap = cap;
    m->keys = b;
  }
  char *k = b->data + b->used;
  b->used += len + 1;
  return k;
}

/* the entry for key, whose hash is h (grows the table), or NULL when full;
 * a new key is copied unless given as kept (its bytes outlive the map) */
static struct entry *map_get_h(struct map *m, const char *key, size_t len, unsigned long h, char *kept)
{
  if (m->n * 2 >= m->cap && m->n < MAP_MAX) {                   /* full maps stay below half their slots */
    size_t cap = m->cap ? m->cap * 2 : MAP_FIRST;               /* a power of two */
    struct entry *e = zalloc(cap * sizeof *e);
    unsigned char *tag = zalloc(cap);
    if (!e || !tag) { free(e); free(tag); return NULL; }
    for (size_t i = 0; i < m->cap; i++)
      if (m->tag[i]) {
        size_t j = slot(e, tag, cap, m->e[i].key, m->e[i].len, m->e[i].hash);
        e[j] = m->e[i];
        tag[j] = m->tag[i];
      }
    free(m->e);
    free(m->tag);
    m->e = e; m->tag = tag; m->cap = cap;
  }
  size_t i = slot(m->e, m->tag, m->cap, key, len, h);
  struct entry *e = &m->e[i];
  if (!m->tag[i]) {
    if (m->n >= MAP_MAX) return NULL;                          /* a new key: "(other)" */
    if (!kept) {
      if (!(kept = key_space(m, len))) return NULL;
      memcpy(kept, key, len);
      kept[len] = 0;
    }
    e->key = kept;
    e->len = len; e->hash = h;
    m->tag[i] = tag_of(h);
    m->n++;
  }
  return e;
}

static struct entry *map_get(struct map *m, const char *key, size_t len) { return map_get_h(m, key, len, hash(key, len), NULL); }

/* the entry for key, NULL when it has none (never adds one) */
static const struct entry *map_find(const struct map *m, const char *key, size_t len)
{
  if (!m->cap || !m->tag) return NULL;
  size_t i = slot(m->e, m->tag, m->cap, key, len, hash(key, len));
  return m->tag[i] ? &m->e[i] : NULL;
}

/* asks the memory for key's slot ahead of its count (the IP map is the
 * large one: a lookup there waits for memory); h is its hash */
static void map_prefetch(const struct map *m, unsigned long h)
{
  if (!m->cap) return;
  size_t i = h & (m->cap - 1);
  __builtin_prefetch(&m->tag[i]);
  __builtin_prefetch(&m->e[i]);
}

static void count(struct map *m, const char *key, size_t len, bool second)
{
  struct entry *e = map_get(m, key, len);
  if (!e) { m->other++; return; }
  if (second) e->m++; else e->n++;
}

static void count_n(struct map *m, const char *key, size_t len, unsigned long h, unsigned long n, unsigned long n2)
{
  struct entry *e = map_get_h(m, key, len, h, NULL);
  if (!e) { m->other += n + n2; return; }
  e->n += n; e->m += n2;
}

struct summary *summary_new(bool want_list)
{
  struct summary *s = zalloc(sizeof *s);
  if (s) { s->list = (str)STR_INIT(64 << 20); s->want_list = want_list; }
  return s;
}

static bool starts(const char *s, size_t n, const char *prefix, size_t pn) { return n >= pn && !memcmp(s, prefix, pn); }

static int action_of(const char *row, size_t n)
{
  return starts(row, n, "Accept", 6) ? 0 : starts(row, n, "Reject", 6) ? 1 : starts(row, n, "Deferred", 8) ? 2 : -1;
}

static void html_text(str *o, const char *s)
{
  for (; *s; s++) {
    if (*s == '<') str_cats(o, "&lt;"); else if (*s == '>') str_cats(o, "&gt;");
    else if (*s == '&') str_cats(o, "&amp;"); else if (*s == '"') str_cats(o, "&quot;");
    else str_catc(o, (unsigned char)*s < 0x20 ? ' ' : *s);
  }
}

/* the hash of s's IP as the rejections map keys it; asked for ahead of the
 * count at the session's end when first needed */
static void ip_hash(struct summary *sum, struct session *s)
{
  const char *ip = s->ip[0] ? s->ip : "?";
  s->iplen = strlen(ip);
  s->iphash = hash(ip, s->iplen);
  s->iphash_of = s->ip;
  map_prefetch(&sum->bad_ip, s->iphash);
}

/* a row's slot in the row cache: its first and last eight bytes and its
 * length, mixed (rows differ at both ends: Accept/Reject, the condition) */
static size_t row_index(const char *row, size_t len)
{
  unsigned long long a = 0, b = 0;
  if (len >= 8) { memcpy(&a, row, 8); memcpy(&b, row + len - 8, 8); }
  else for (size_t i = 0; i < len; i++) a |= (unsigned long long)(unsigned char)row[i] << (8 * i);
  return (size_t)(((a ^ (b * 0x9e3779b97f4a7c15ULL) ^ len) * 0xff51afd7ed558ccdULL) >> 56) % ROWCACHE;
}

/* what row is and where it is counted, NULL if it is no decision. A log
 * has a few dozen rows and every decision names one: the cache spares the
 * hash, the map lookup and the comparisons that tell what it is */
static const struct rowkind *row_of(struct summary *sum, const char *row, size_t len)
{
  struct rowkind *k = &sum->rowcache[row_index(row, len)];
  if (k->e && k->cap == sum->rows.cap && k->len == len && same_bytes(k->e->key, row, len)) return k;
  int a = action_of(row, len);
  if (a < 0) return NULL;
  struct entry *e = map_get(&sum->rows, row, len);
  if (!e) k = &sum->rowspare;                              /* the map is full: counted as (other) */
  *k = (struct rowkind){ len, sum->rows.cap, e, a,
                         len == 20 && !memcmp(row, "Accept::DATA::Queued", 20), starts(row, len, "Accept::AUTH::", 14),
                         starts(row, len, "Reject::AUTH::", 14) };
  return k;
}

/* one decision of session s, counted as it is read (or from s's events at its end) */
void summary_event(struct summary *sum, struct session *s, const struct decision *d)
{
  const struct rowkind *k = row_of(sum, d->row, d->rowlen);
  if (!k) return;
  int a = k->action;
  long t = (long)d->ts;
  sum->actions[a]++;
  if (t != sum->hour_sec || !sum->hour_of) {               /* many decisions a second: the hour once a second */
    sum->hour_sec = t;
    sum->hour_of = 1 + ((t % 86400) + 86400) % 86400 / 3600;  /* UTC hour of the decision, plus one */
  }
  sum->hour[sum->hour_of - 1][a]++;
  if (k->e) k->e->n++;
  else sum->rows.other++;
  bool rcpt_level = d->tolen && !k->queued;
  if (k->queued) s->queued = true;
  if (k->auth_ok && !d->tolen && d->userlen) {
    count(&sum->auth, d->user, d->userlen, false);
    s->login = true;
  }
  if (k->auth_bad && d->userlen) count(&sum->auth, d->user, d->userlen, true);
  if (a == 0 && rcpt_level) sum->rcpt_ok++;
  if (a == 1) {
    s->rejected = true;
    if (rcpt_level) sum->rcpt_bad++;
    if (!s->rejections++) ip_hash(sum, s);    /* counted for its IP when the session closes */
    const char *at = memrchr(d->from, '@', d->fromlen);
    if (at) count(&sum->bad_from, at + 1, d->fromlen - (size_t)(at + 1 - d->from), false);
    else if (d->fromlen) count(&sum->bad_from, d->from, d->fromlen, false);
    else count(&sum->bad_from, "<>", 2, false);
    if (d->tolen) count(&sum->bad_to, d->to, d->tolen, false);
  }
  if (a == 2) s->deferred = true;
}

/* one delivery attempt of mxgate-send: its outcome, and its recipient's
 * domain (lower case) in the table of destinations */
void summary_delivery(struct summary *sum, const char *row, size_t rowlen, const char *rcpt, size_t rcptlen)
{
  int k = starts(row, rowlen, "Accept::SEND::", 14) ? 0 : starts(row, rowlen, "Deferred::SEND::", 16) ? 1
        : rowlen == 21 && !memcmp(row, "Reject::SEND::Expired", 21) ? 3 : starts(row, rowlen, "Reject::SEND::", 14) ? 2 : -1;
  if (k < 0) return;
  sum->sent[k]++;
  const char *at = memrchr(rcpt, '@', rcptlen);
  const char *dom = at ? at + 1 : rcpt;
  size_t n = rcptlen - (size_t)(dom - rcpt);
  char low[256];
  if (n > sizeof low) n = sizeof low;
  for (size_t i = 0; i < n; i++) low[i] = (char)((unsigned)(dom[i] - 'A') < 26 ? dom[i] + 32 : dom[i]);
  if (!n) { memcpy(low, "(none)", 6); n = 6; }
  count(&sum->sent_dom, low, n, k != 0);
  if (k >= 2) count(&sum->bounced_dom, low, n, false);
}

/* ESMTPS, ESMTPSA, SMTPS or POP3S */
static bool is_tls(const char *p, size_t n)
{
  return (n >= 6 && !memcmp(p, "ESMTPS", 6)) | (n >= 5 && !memcmp(p, "SMTPS", 5)) | (n == 5 && !memcmp(p, "POP3S", 5));
}

/* a closed session: its events (unless they were counted as read) and its outcome */
void summary_add(struct summary *sum, struct session *s)
{
  /* outcomes differ from session to session: added, not branched on */
  bool rbl = s->rbl[0] != 0;
  sum->sessions++;
  sum->partial += !(s->seen_open & s->seen_end);
  sum->rbl += rbl;
  sum->denied += s->denied;
  sum->tls += is_tls(s->proto, s->protolen);
  for (size_t i = 0; i < s->nev; i++) {
    const struct event *e = &s->ev[i];
    struct decision d = { e->ts, e->row, e->from, e->to, e->user, strlen(e->row), strlen(e->from), strlen(e->to),
                          strlen(e->user) };
    summary_event(sum, s, &d);
  }
  if (s->rejections) {                   /* one lookup per session, not per refusal: the IP map is the large one */
    const char *ip = s->ip[0] ? s->ip : "?";
    if (s->iphash_of != s->ip) ip_hash(sum, s);
    count_n(&sum->bad_ip, ip, s->iplen, s->iphash, s->rejections, 0);
  }
  bool accepted = s->queued | s->login, rejected = (!accepted) & (s->rejected | rbl | s->denied);
  sum->accepted += accepted;
  sum->rejected += rejected;
  sum->deferred += (!accepted) & (!rejected) & s->deferred;
  if (sum->want_list && sum->listed < LIST_MAX) {
    time_t t = (time_t)s->start;
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[64];
    sum->listed++;
    str_cats(&sum->list, "<tr><td>");
    snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d</td><td>%ld</td><td>", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, s->pid);
    str_cats(&sum->list, buf);
    html_text(&sum->list, s->ip);
    str_cats(&sum->list, "</td><td>");
    html_text(&sum->list, s->helo);
    str_cats(&sum->list, "</td><td>");
    for (size_t i = 0; i < s->nev; i++) {
      html_text(&sum->list, s->ev[i].row);
      if (s->ev[i].to[0]) { str_cats(&sum->list, " &rarr; "); html_text(&sum->list, s->ev[i].to); }
      str_cats(&sum->list, "<br>");
    }
    str_cats(&sum->list, "</td></tr>\n");
  }
}

static int by_count(const void *a, const void *b)
{
  const struct entry *x = a, *y = b;
  unsigned long nx = x->key ? x->n + x->m : 0, ny = y->key ? y->n + y->m : 0;
  return nx < ny ? 1 : nx > ny ? -1 : (x->key && y->key ? strcmp(x->key, y->key) : 0);
}

/* the map sorted by count, in place */
void sorted(struct map *m)
{
  if (m->e) qsort(m->e, m->cap, sizeof *m->e, by_count);
  m->cap = m->n;
  free(m->tag);                            /* the slots have moved: a sorted map is read, never probed */
  m->tag = NULL;
}

/* the k largest entries in order, picked in one pass (a map holds up to
 * MAP_MAX keys; sorting it all for ten lines would cost more than that) */
static const struct entry **pick(const struct map *m, size_t k, size_t *found)
{
  const struct entry **best = calloc(k + 1, sizeof *best);
  size_t nb = 0;
  for (size_t i = 0; best && i < m->cap; i++) {
    const struct entry *e = &m->e[i];
    if (!e->key || (nb == k && by_count(e, best[k - 1]) >= 0)) continue;
    size_t j = nb < k ? nb++ : k - 1;
    for (; j > 0 && by_count(e, best[j - 1]) < 0; j--) best[j] = best[j - 1];
    best[j] = e;
  }
  *found = nb;
  return best;
}

static void top(FILE *o, const char *title, const struct map *m, size_t k)
{
  size_t nb;
  const struct entry **best = pick(m, k, &nb);
  fprintf(o, "\n%s\n", title);
  for (size_t i = 0; i < nb; i++) fprintf(o, "  %8lu  %s\n", best[i]->n, best[i]->key);
  if (m->other) fprintf(o, "  %8lu  (other)\n", m->other);
  free(best);
}

/* from's counts into into; from's keys move with their blocks, not copied */
static void merge_map(struct map *into, struct map *from)
{
  for (size_t i = 0; i < from->cap; i++)
    if (from->tag[i]) {
      const struct entry *f = &from->e[i];
      struct entry *e = map_get_h(into, f->key, f->len, f->hash, f->key);
      if (!e) { into->other += f->n + f->m; continue; }
      e->n += f->n; e->m += f->m;
    }
  into->other += from->other;
  struct keyblock **tail = &into->keys;
  while (*tail) tail = &(*tail)->next;
  *tail = from->keys;
  from->keys = NULL;
}

void summary_merge(struct summary *into, struct summary *from)
{
  into->sessions += from->sessions;
  into->accepted += from->accepted;
  into->rejected += from->rejected;
  into->deferred += from->deferred;
  into->partial += from->partial;
  into->rbl += from->rbl;
  into->tls += from->tls;
  into->denied += from->denied;
  for (int i = 0; i < 3; i++) into->actions[i] += from->actions[i];
  into->rcpt_ok += from->rcpt_ok;
  into->rcpt_bad += from->rcpt_bad;
  for (int h = 0; h < 24; h++) for (int i = 0; i < 3; i++) into->hour[h][i] += from->hour[h][i];
  merge_map(&into->rows, &from->rows);
  merge_map(&into->bad_ip, &from->bad_ip);
  merge_map(&into->bad_from, &from->bad_from);
  merge_map(&into->bad_to, &from->bad_to);
  merge_map(&into->auth, &from->auth);
  for (int i = 0; i < 4; i++) into->sent[i] += from->sent[i];
  merge_map(&into->sent_dom, &from->sent_dom);
  merge_map(&into->bounced_dom, &from->bounced_dom);
  summary_free(from);
}

static void map_free(struct map *m)
{
  for (struct keyblock *b = m->keys, *n; b; b = n) { n = b->next; free(b); }
  free(m->e);
  free(m->tag);
  *m = (struct map){ 0 };
}

void summary_free(struct summary *s)
{
  if (!s) return;
  map_free(&s->rows); map_free(&s->bad_ip); map_free(&s->bad_from); map_free(&s->bad_to); map_free(&s->auth);
  map_free(&s->sent_dom); map_free(&s->bounced_dom);
  str_free(&s->list);
  free(s);
}

/* the deliveries of mxgate-send, when the logs had any: totals, then the
 * destination domains with the most attempts */
static void deliveries_print(const struct summary *s, FILE *o)
{
  if (!(s->sent[0] | s->sent[1] | s->sent[2] | s->sent[3])) return;
  fprintf(o, "\ndeliveries: %lu delivered, %lu deferred, %lu bounced (%lu expired)\n", s->sent[0], s->sent[1],
          s->sent[2] + s->sent[3], s->sent[3]);
  size_t nb;
  const struct entry **best = pick(&s->sent_dom, 10, &nb);
  fprintf(o, "\ndeliveries by recipient domain: delivered / deferred / bounced\n");
  for (size_t i = 0; best && i < nb; i++) {
    const struct entry *b = map_find(&s->bounced_dom, best[i]->key, best[i]->len);
    unsigned long bounced = b ? b->n : 0;
    fprintf(o, "  %8lu %8lu %8lu  %s\n", best[i]->n, best[i]->m - bounced, bounced, best[i]->key);
  }
  if (s->sent_dom.other) fprintf(o, "  %8lu attempts  (other)\n", s->sent_dom.other);
  free(best);
}

void summary_print(const struct summary *cs, const struct report *r, FILE *o)
{
  struct summary *s = (struct summary *)cs;
  fprintf(o, "mxgate-sessions summary\n\n");
  fprintf(o, "  %8lu  log lines (%lu not recognised)\n", r->lines, r->unrecognised);
  fprintf(o, "  %8lu  sessions (%lu partial)\n", s->sessions, s->partial);
  fprintf(o, "  %8lu  accepted   %8lu  rejected   %8lu  deferred   (%lu blocked by rblsmtpd, %lu denied)\n",
          s->accepted, s->rejected, s->deferred, s->rbl, s->denied);
  fprintf(o, "  %8lu  recipients accepted   %8lu  recipients rejected\n", s->rcpt_ok, s->rcpt_bad);
  fprintf(o, "  %7.1f%%  of sessions over TLS\n", s->sessions ? 100.0 * (double)s->tls / (double)s->sessions : 0.0);
  fprintf(o, "\ndecisions: %lu Accept, %lu Reject, %lu Deferred\n", s->actions[0], s->actions[1], s->actions[2]);
  top(o, "by Action::Type::Condition", &s->rows, 200);
  top(o, "rejections by client IP", &s->bad_ip, 10);
  top(o, "rejections by sender domain", &s->bad_from, 10);
  top(o, "rejections by recipient", &s->bad_to, 10);
  sorted(&s->auth);
  fprintf(o, "\nAUTH per user (ok / failed)\n");
  for (size_t i = 0; i < s->auth.n; i++) fprintf(o, "  %8lu / %-8lu  %s\n", s->auth.e[i].n, s->auth.e[i].m, s->auth.e[i].key);
  deliveries_print(s, o);
  fprintf(o, "\ndecisions per hour (UTC): Accept / Reject / Deferred\n");
  for (int hr = 0; hr < 24; hr++)
    if (s->hour[hr][0] + s->hour[hr][1] + s->hour[hr][2])
      fprintf(o, "  %02d:00  %8lu %8lu %8lu\n", hr, s->hour[hr][0], s->hour[hr][1], s->hour[hr][2]);
}

void summary_prometheus(const struct summary *cs, const struct report *r, FILE *o)
{
  struct summary *s = (struct summary *)cs;
  fprintf(o, "# HELP mxgate_decisions_total Decisions by log row.\n# TYPE mxgate_decisions_total counter\n");
  for (size_t i = 0; i < s->rows.cap; i++) {
    if (!s->rows.e[i].key) continue;
    char a[16], t[16], c[64];
    if (sscanf(s->rows.e[i].key, "%15[^:]::%15[^:]::%63s", a, t, c) == 3)
      fprintf(o, "mxgate_decisions_total{action=\"%s\",type=\"%s\",condition=\"%s\"} %lu\n", a, t, c, s->rows.e[i].n);
  }
  fprintf(o, "# HELP mxgate_sessions_total Sessions by outcome.\n# TYPE mxgate_sessions_total counter\n");
  fprintf(o, "mxgate_sessions_total{outcome=\"accepted\"} %lu\nmxgate_sessions_total{outcome=\"rejected\"} %lu\n"
             "mxgate_sessions_total{outcome=\"deferred\"} %lu\nmxgate_sessions_total{outcome=\"other\"} %lu\n",
          s->accepted, s->rejected, s->deferred, s->sessions - s->accepted - s->rejected - s->deferred);
  fprintf(o, "# HELP mxgate_sessions_partial_total Sessions missing their start or end line.\n"
             "# TYPE mxgate_sessions_partial_total counter\nmxgate_sessions_partial_total %lu\n", s->partial);
  fprintf(o, "# HELP mxgate_deliveries_total Delivery attempts of mxgate-send by outcome.\n"
             "# TYPE mxgate_deliveries_total counter\n");
  static const char *const outcome[4] = { "delivered", "deferred", "failed", "expired" };
  for (int i = 0; i < 4; i++) fprintf(o, "mxgate_deliveries_total{outcome=\"%s\"} %lu\n", outcome[i], s->sent[i]);
  fprintf(o, "# HELP mxgate_log_lines_total Log lines read.\n# TYPE mxgate_log_lines_total counter\n"
             "mxgate_log_lines_total %lu\n", r->lines);
  fprintf(o, "# HELP mxgate_log_lines_unrecognised_total Lines that were not part of the scheme.\n"
             "# TYPE mxgate_log_lines_unrecognised_total counter\nmxgate_log_lines_unrecognised_total %lu\n", r->unrecognised);
}
