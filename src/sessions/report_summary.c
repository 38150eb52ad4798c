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

#include "summary.h"

static unsigned long hash(const char *s) { unsigned long h = 5381; while (*s) h = h * 33 + (unsigned char)*s++; return h; }

/* the entry for key (grows the table), or NULL when full */
static struct entry *map_get(struct map *m, const char *key)
{
  if (m->n * 2 >= m->cap) {
    if (m->n >= MAP_MAX) {
      for (size_t i = hash(key) % m->cap; m->e[i].key; i = (i + 1) % m->cap)
        if (!strcmp(m->e[i].key, key)) return &m->e[i];
      return NULL;
    }
    size_t cap = m->cap ? m->cap * 2 : 256;
    struct entry *e = calloc(cap, sizeof *e);
    if (!e) return NULL;
    for (size_t i = 0; i < m->cap; i++)
      if (m->e[i].key) { size_t j = hash(m->e[i].key) % cap; while (e[j].key) j = (j + 1) % cap; e[j] = m->e[i]; }
    free(m->e);
    m->e = e; m->cap = cap;
  }
  size_t i = hash(key) % m->cap;
  for (; m->e[i].key; i = (i + 1) % m->cap) if (!strcmp(m->e[i].key, key)) return &m->e[i];
  m->e[i].key = strdup(key);
  m->n++;
  return &m->e[i];
}

static void count(struct map *m, const char *key, bool second)
{
  struct entry *e = map_get(m, key);
  if (!e) { m->other++; return; }
  if (second) e->m++; else e->n++;
}

struct summary *summary_new(bool want_list)
{
  struct summary *s = calloc(1, sizeof *s);
  if (s) { s->list = (str)STR_INIT(64 << 20); s->want_list = want_list; }
  return s;
}

static int action_of(const char *row)
{
  return !strncmp(row, "Accept", 6) ? 0 : !strncmp(row, "Reject", 6) ? 1 : !strncmp(row, "Deferred", 8) ? 2 : -1;
}

static void html_text(str *o, const char *s)
{
  for (; *s; s++) {
    if (*s == '<') str_cats(o, "&lt;"); else if (*s == '>') str_cats(o, "&gt;");
    else if (*s == '&') str_cats(o, "&amp;"); else if (*s == '"') str_cats(o, "&quot;");
    else str_catc(o, (unsigned char)*s < 0x20 ? ' ' : *s);
  }
}

void summary_add(struct summary *sum, const struct session *s)
{
  bool queued = false, rejected = false, deferred = false, login = false;
  sum->sessions++;
  if (!s->seen_open || !s->seen_end) sum->partial++;
  if (s->rbl[0]) sum->rbl++;
  if (s->denied) sum->denied++;
  if (!strncmp(s->proto, "ESMTPS", 6) || !strncmp(s->proto, "SMTPS", 5) || !strcmp(s->proto, "POP3S")) sum->tls++;
  time_t t = (time_t)s->start;
  struct tm tm;
  gmtime_r(&t, &tm);
  for (size_t i = 0; i < s->nev; i++) {
    const struct event *e = &s->ev[i];
    int a = action_of(e->row);
    if (a < 0) continue;
    sum->actions[a]++;
    sum->hour[tm.tm_hour][a]++;
    count(&sum->rows, e->row, false);
    bool rcpt_level = e->to[0] && strcmp(e->row, "Accept::DATA::Queued") != 0;
    if (!strcmp(e->row, "Accept::DATA::Queued")) queued = true;
    if (!strncmp(e->row, "Accept::AUTH::", 14) && !e->to[0] && e->user[0]) { count(&sum->auth, e->user, false); login = true; }
    if (!strncmp(e->row, "Reject::AUTH::", 14) && e->user[0]) count(&sum->auth, e->user, true);
    if (a == 0 && rcpt_level) sum->rcpt_ok++;
    if (a == 1) {
      rejected = true;
      if (rcpt_level) sum->rcpt_bad++;
      count(&sum->bad_ip, s->ip[0] ? s->ip : "?", false);
      const char *at = strrchr(e->from, '@');
      count(&sum->bad_from, at ? at + 1 : e->from[0] ? e->from : "<>", false);
      if (e->to[0]) count(&sum->bad_to, e->to, false);
    }
    if (a == 2) deferred = true;
  }
  if (queued || login) sum->accepted++;
  else if (rejected || s->rbl[0] || s->denied) sum->rejected++;
  else if (deferred) sum->deferred++;
  if (sum->want_list && sum->listed < LIST_MAX) {
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
void sorted(struct map *m) { if (m->e) qsort(m->e, m->cap, sizeof *m->e, by_count); m->cap = m->n; }

static void top(FILE *o, const char *title, struct map *m, size_t k)
{
  sorted(m);
  fprintf(o, "\n%s\n", title);
  for (size_t i = 0; i < m->n && i < k; i++) fprintf(o, "  %8lu  %s\n", m->e[i].n, m->e[i].key);
  if (m->other) fprintf(o, "  %8lu  (other)\n", m->other);
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
  fprintf(o, "# HELP mxgate_log_lines_total Log lines read.\n# TYPE mxgate_log_lines_total counter\n"
             "mxgate_log_lines_total %lu\n", r->lines);
  fprintf(o, "# HELP mxgate_log_lines_unrecognised_total Lines that were not part of the scheme.\n"
             "# TYPE mxgate_log_lines_unrecognised_total counter\nmxgate_log_lines_unrecognised_total %lu\n", r->unrecognised);
}
