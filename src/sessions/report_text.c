/* report_text.c -- one closed session out: text (a block per session),
 * JSON Lines (one object per session, schema in mxgate-sessions(1)) or CSV
 * (one row per decision); the filters; every session also goes to the
 * summary. A session's deliveries (deliveries.c) follow its decisions in
 * text and JSON; deliveries without a session are a block (an object)
 * of their own. Strings are escaped for their format; log fields were already
 * unescaped, so they may hold any byte.
 */
#include "sessions.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool has(const char *hay, const char *needle)
{
  return !needle || strcasestr(hay, needle) != NULL;
}

/* whether one of s's Queued lines has qp */
static bool has_qp(const struct session *s, long qp)
{
  for (size_t i = 0; i < s->nev; i++)
    if (is_queued_row(s->ev[i].row, strlen(s->ev[i].row)) && queued_qp(s->ev[i].detail, strlen(s->ev[i].detail)) == qp)
      return true;
  return false;
}

bool filter_match(const struct filter *f, const struct session *s)
{
  if (f->pid && s->pid != f->pid) return false;
  if (f->ip && strcmp(s->ip, f->ip) != 0) return false;
  if (f->since && s->start && s->start < f->since) return false;
  if (f->until && s->start && s->start > f->until) return false;
  if (f->has_qp && !has_qp(s, f->qp)) return false;
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

/* a field in the text listing: bytes below 0x20 as \xHH, so that a
 * remote server's reply cannot split the listing's lines */
static void text_str(FILE *o, const char *s)
{
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f) fprintf(o, "\\x%02x", (unsigned char)*s);
    else fputc(*s, o);
}

/* "  TIME <rcpt> ROW via HOP [IP] PROTO tls verified id ID: REPLY", a line per attempt */
static void text_deliveries(FILE *o, const struct delivery **d, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    char ts[40];
    stamp(ts, sizeof ts, d[i]->ts);
    fprintf(o, "  %s <", ts); text_str(o, d[i]->rcpt);
    fprintf(o, "> %s", d[i]->row);
    if (d[i]->hop[0]) { fprintf(o, " via "); text_str(o, d[i]->hop); }
    if (d[i]->ip[0]) { fprintf(o, " ["); text_str(o, d[i]->ip); fputc(']', o); }
    if (d[i]->proto[0]) { fputc(' ', o); text_str(o, d[i]->proto); }
    if (d[i]->tls[0]) { fprintf(o, " tls "); text_str(o, d[i]->tls); }
    fprintf(o, " id "); text_str(o, d[i]->id);
    fprintf(o, ": "); text_str(o, d[i]->reply);
    fputc('\n', o);
  }
}

static void json_deliveries(FILE *o, const struct delivery **d, size_t n)
{
  fputc('[', o);
  for (size_t i = 0; i < n; i++) {
    char ts[40];
    stamp(ts, sizeof ts, d[i]->ts);
    fprintf(o, "%s{\"ts\":", i ? "," : ""); json_str(o, ts);
    fprintf(o, ",\"rcpt\":"); json_str(o, d[i]->rcpt);
    fprintf(o, ",\"from\":"); json_str(o, d[i]->from);
    fprintf(o, ",\"row\":"); json_str(o, d[i]->row);
    fprintf(o, ",\"ip\":"); json_str(o, d[i]->ip);
    fprintf(o, ",\"host\":"); json_str(o, d[i]->hop);
    fprintf(o, ",\"proto\":"); json_str(o, d[i]->proto);
    fprintf(o, ",\"tls\":"); json_str(o, d[i]->tls);
    fprintf(o, ",\"qp\":%ld,\"id\":", d[i]->qp); json_str(o, d[i]->id);
    fprintf(o, ",\"reply\":"); json_str(o, d[i]->reply);
    fprintf(o, ",\"pid\":%ld}", d[i]->pid);
  }
  fputc(']', o);
}

static void exit_text(const struct session *s, char *buf, size_t cap)
{
  if (s->status < 0) snprintf(buf, cap, "?");
  else if ((s->status & 0x7f) == 0) snprintf(buf, cap, "exit %ld", (s->status >> 8) & 0xff);
  else snprintf(buf, cap, "signal %ld", s->status & 0x7f);
}

static void text(FILE *o, const struct session *s, const struct delivery **d, size_t nd)
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
  text_deliveries(o, d, nd);
}

static void json(FILE *o, const struct session *s, const struct delivery **d, size_t nd)
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
  fprintf(o, "],\"dropped\":%zu,\"deliveries\":", s->dropped);
  json_deliveries(o, d, nd);
  fprintf(o, "}\n");
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

static void count_deliveries(struct summary *sum, const struct delivery **d, size_t n)
{
  for (size_t i = 0; sum && i < n; i++) summary_delivery(sum, d[i]->row, strlen(d[i]->row), d[i]->rcpt, strlen(d[i]->rcpt));
}

void report_session(struct report *r, struct session *s)
{
  if (!r->stream && !filter_match(&r->filter, s)) return;      /* counting only: no filter */
  size_t nd = 0;
  const struct delivery **d = r->dlv && s->nqrec ? deliveries_of(r->dlv, s, &nd) : NULL;
  if (r->sum) { summary_add(r->sum, s); count_deliveries(r->sum, d, nd); }
  if (!r->quiet) {
    if (r->format == FMT_JSON) json(r->out, s, d, nd);
    else if (r->format == FMT_CSV) csv(r->out, s);
    else text(r->out, s, d, nd);
  }
  free(d);
}

/* deliveries without their session are listed when no filter but --qp is
 * given (and then only of that qp) */
static bool unjoined_match(const struct filter *f, long qp)
{
  struct filter none = { 0 };
  none.has_qp = f->has_qp; none.qp = f->qp;
  return !memcmp(f, &none, sizeof none) && (!f->has_qp || f->qp == qp);
}

void report_deliveries(struct report *r, const struct delivery **d, size_t n)
{
  if (!n || !unjoined_match(&r->filter, d[0]->qp)) return;
  count_deliveries(r->sum, d, n);
  if (r->quiet || r->format == FMT_CSV) return;
  FILE *o = r->out;
  if (r->format == FMT_JSON) {
    fprintf(o, "{\"kind\":\"deliveries\",\"host\":"); json_str(o, d[0]->host);
    fprintf(o, ",\"qp\":%ld,\"id\":", d[0]->qp); json_str(o, d[0]->id);
    fprintf(o, ",\"deliveries\":");
    json_deliveries(o, d, n);
    fprintf(o, "}\n");
    return;
  }
  char t0[40];
  stamp(t0, sizeof t0, d[0]->ts);
  fprintf(o, "%s qp %ld%s%s id ", t0, d[0]->qp, d[0]->host[0] ? " on " : "", d[0]->host);
  text_str(o, d[0]->id);
  fprintf(o, "  deliveries without their session in the log\n");
  text_deliveries(o, d, n);
}

void report_unjoined(struct report *r)
{
  struct deliveries *x = r->dlv;
  if (!x || x->phase != DLV_JOINING) return;
  const struct delivery **group = malloc((x->n - x->unjoined + 1) * sizeof *group);
  if (!group) return;
  size_t n = 0;
  for (size_t i = x->unjoined; i < x->n; i++) {
    const struct delivery *d = &x->d[i];
    if (n && (d->qp != group[0]->qp || strcmp(d->host, group[0]->host) || strcmp(d->id, group[0]->id))) {
      report_deliveries(r, group, n);
      n = 0;
    }
    group[n++] = d;
  }
  report_deliveries(r, group, n);
  free(group);
}
