/* report_text.c -- one closed session out: text (a block per session),
 * JSON Lines (one object per session, schema in mxgate-sessions(1)) or CSV
 * (one row per decision); the filters; every session also goes to the
 * summary. Strings are escaped for their format; log fields were already
 * unescaped, so they may hold any byte.
 */
#include "sessions.h"
#include <string.h>
#include <time.h>

static bool has(const char *hay, const char *needle)
{
  return !needle || strcasestr(hay, needle) != NULL;
}

bool filter_match(const struct filter *f, const struct session *s)
{
  if (f->pid && s->pid != f->pid) return false;
  if (f->ip && strcmp(s->ip, f->ip) != 0) return false;
  if (f->since && s->start && s->start < f->since) return false;
  if (f->until && s->start && s->start > f->until) return false;
  if (!f->from && !f->to && !f->user && !f->action && !f->row) return true;
  for (size_t i = 0; i < s->nev; i++) {
    const struct event *e = &s->ev[i];
    if ((f->from && !has(e->from, f->from)) || (f->to && !has(e->to, f->to)) || (f->user && strcmp(e->user, f->user)) ||
        (f->action && strncmp(e->row, f->action, strlen(f->action))) || (f->row && strcmp(e->row, f->row)))
      continue;
    return true;
  }
  return false;
}

static void json_str(FILE *o, const char *s)
{
  fputc('"', o);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(o, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f) fprintf(o, "\\u%04x", *p);
    else if (*p >= 0x80) fprintf(o, "\\u%04x", *p);        /* bytes, not guessed text: always valid JSON */
    else fputc(*p, o);
  }
  fputc('"', o);
}

static void csv_str(FILE *o, const char *s)
{
  fputc('"', o);
  for (; *s; s++) {
    if (*s == '"') fputc('"', o);
    fputc((unsigned char)*s < 0x20 ? ' ' : *s, o);
  }
  fputc('"', o);
}

static void stamp(char *buf, size_t cap, double ts)
{
  if (!ts) { snprintf(buf, cap, "-"); return; }
  time_t t = (time_t)ts;
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, cap - n, ".%03dZ", (int)((ts - (double)t) * 1000));
}

static void exit_text(const struct session *s, char *buf, size_t cap)
{
  if (s->status < 0) snprintf(buf, cap, "?");
  else if ((s->status & 0x7f) == 0) snprintf(buf, cap, "exit %ld", (s->status >> 8) & 0xff);
  else snprintf(buf, cap, "signal %ld", s->status & 0x7f);
}

static void text(FILE *o, const struct session *s)
{
  char t0[40], ex[32];
  stamp(t0, sizeof t0, s->start);
  exit_text(s, ex, sizeof ex);
  fprintf(o, "%s pid %ld%s%s  client %s%s%s  %.3fs  %s%s%s\n", t0, s->pid, s->host[0] ? " on " : "", s->host,
          s->ip[0] ? s->ip : "?", s->port[0] ? ":" : "", s->port, s->end - s->start, ex,
          s->denied ? " denied" : "", (!s->seen_open || !s->seen_end) ? " PARTIAL" : "");
  if (s->client_host[0]) fprintf(o, "  host %s\n", s->client_host);
  if (s->rbl[0]) fprintf(o, "  rblsmtpd: %s\n", s->rbl);
  if (s->helo[0] || s->proto[0]) fprintf(o, "  helo %s  proto %s\n", s->helo, s->proto);
  for (size_t i = 0; i < s->nev; i++) {
    const struct event *e = &s->ev[i];
    fprintf(o, "  %s", e->row);
    if (e->from[0] || strstr(e->row, "ORIG") || e->to[0]) fprintf(o, " from <%s>", e->from);
    if (e->to[0]) fprintf(o, " to <%s>", e->to);
    if (e->user[0]) fprintf(o, " user %s", e->user);
    if (e->detail[0]) fprintf(o, " [%s]", e->detail);
    fputc('\n', o);
  }
  if (s->dropped) fprintf(o, "  (%zu more decisions not kept)\n", s->dropped);
}

static void json(FILE *o, const struct session *s)
{
  char t0[40], t1[40];
  stamp(t0, sizeof t0, s->start);
  stamp(t1, sizeof t1, s->end);
  fprintf(o, "{\"host\":"); json_str(o, s->host);
  fprintf(o, ",\"pid\":%ld,\"start\":", s->pid); json_str(o, t0);
  fprintf(o, ",\"end\":"); json_str(o, t1);
  fprintf(o, ",\"duration\":%.3f,\"ip\":", s->end - s->start); json_str(o, s->ip);
  fprintf(o, ",\"port\":"); json_str(o, s->port);
  fprintf(o, ",\"client_host\":"); json_str(o, s->client_host);
  fprintf(o, ",\"local\":"); json_str(o, s->local);
  fprintf(o, ",\"status\":%ld,\"exit\":%ld,\"signal\":%ld", s->status,
          s->status < 0 || (s->status & 0x7f) ? -1 : (s->status >> 8) & 0xff, s->status < 0 ? -1 : s->status & 0x7f);
  fprintf(o, ",\"denied\":%s,\"partial\":%s,\"seen_open\":%s,\"seen_end\":%s,\"rbl\":", s->denied ? "true" : "false",
          (!s->seen_open || !s->seen_end) ? "true" : "false", s->seen_open ? "true" : "false", s->seen_end ? "true" : "false");
  json_str(o, s->rbl);
  fprintf(o, ",\"helo\":"); json_str(o, s->helo);
  fprintf(o, ",\"proto\":"); json_str(o, s->proto);
  fprintf(o, ",\"events\":[");
  for (size_t i = 0; i < s->nev; i++) {
    const struct event *e = &s->ev[i];
    char te[40];
    stamp(te, sizeof te, e->ts);
    fprintf(o, "%s{\"ts\":", i ? "," : ""); json_str(o, te);
    fprintf(o, ",\"row\":"); json_str(o, e->row);
    fprintf(o, ",\"from\":"); json_str(o, e->from);
    fprintf(o, ",\"to\":"); json_str(o, e->to);
    fprintf(o, ",\"user\":"); json_str(o, e->user);
    fprintf(o, ",\"detail\":"); json_str(o, e->detail);
    fputc('}', o);
  }
  fprintf(o, "],\"dropped\":%zu}\n", s->dropped);
}

static void csv(FILE *o, const struct session *s)
{
  for (size_t i = 0; i < s->nev; i++) {
    const struct event *e = &s->ev[i];
    char te[40];
    stamp(te, sizeof te, e->ts);
    fprintf(o, "%s,%ld,", te, s->pid);
    const char *cols[] = { s->host, s->ip, e->row, e->helo, e->from, e->to, e->user, e->detail };
    for (size_t k = 0; k < sizeof cols / sizeof *cols; k++) { csv_str(o, cols[k]); fputc(k + 1 < sizeof cols / sizeof *cols ? ',' : '\n', o); }
  }
}

void report_session(struct report *r, struct session *s)
{
  if (!r->stream && !filter_match(&r->filter, s)) return;      /* counting only: no filter */
  if (r->sum) summary_add(r->sum, s);
  if (r->quiet) return;
  if (r->format == FMT_JSON) json(r->out, s);
  else if (r->format == FMT_CSV) csv(r->out, s);
  else text(r->out, s);
}
