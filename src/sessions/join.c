/* join.c -- sessions from lines: a session opens at "pid P from IP" and
 * closes at "end P status S"; every line with pid P between belongs to it.
 * A pid seen again while its session is open closes the old one as partial
 * (its end line is missing); lines for a pid without an open session start
 * a partial one. Closed sessions are reported and freed at once; sessions
 * without a line for IDLE_LIMIT seconds of log time are evicted as partial,
 * so memory is bounded by the sessions open at one time.
 */
#include "sessions.h"
#include <stdlib.h>
#include <string.h>

#define BUCKETS 65536

struct table {
  struct session *b[BUCKETS];
  size_t open;
  double now, last_sweep;
};

struct table *table_new(void) { return calloc(1, sizeof(struct table)); }

static unsigned slot(const char *host, size_t hostlen, long pid)
{
  unsigned h = (unsigned)pid * 2654435761u;
  for (size_t i = 0; i < hostlen; i++) h = h * 31 + (unsigned char)host[i];
  return h % BUCKETS;
}

static void copy(char *dst, size_t cap, const char *s, size_t n)
{
  unescape(s ? s : "", s ? n : 0, dst, cap);
}

static void finish(struct table *t, struct session *s, struct report *r)
{
  if (!s->seen_open || !s->seen_end) r->partial++;
  r->sessions++;
  report_session(r, s);
  free(s->ev);
  free(s);
  t->open--;
}

static struct session **find(struct table *t, const struct logline *l)
{
  struct session **pp = &t->b[slot(l->host, l->hostlen, l->pid)];
  for (; *pp; pp = &(*pp)->next)
    if ((*pp)->pid == l->pid && strlen((*pp)->host) == (l->hostlen < 63 ? l->hostlen : 63) &&
        strncmp((*pp)->host, l->host, strlen((*pp)->host)) == 0)
      return pp;
  return pp;
}

static struct session *open_session(struct table *t, struct session **pp, const struct logline *l)
{
  struct session *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  copy(s->host, sizeof s->host, l->host, l->hostlen);
  s->pid = l->pid;
  s->status = -1;
  s->start = s->end = s->last = l->ts;
  *pp = s;
  t->open++;
  return s;
}

static void add_event(struct session *s, const struct logline *l)
{
  if (s->nev == EVENTS_MAX) { s->dropped++; return; }
  if (s->nev == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 8;
    struct event *e = realloc(s->ev, cap * sizeof *e);
    if (!e) { s->dropped++; return; }
    s->ev = e; s->cap = cap;
  }
  struct event *e = &s->ev[s->nev++];                 /* every field is written below: no memset */
  e->ts = l->ts;
  copy(e->row, sizeof e->row, l->row, l->rowlen);
  copy(e->helo, sizeof e->helo, l->f[F_HELO], l->flen[F_HELO]);
  copy(e->from, sizeof e->from, l->f[F_FROM], l->flen[F_FROM]);
  copy(e->to, sizeof e->to, l->f[F_TO], l->flen[F_TO]);
  copy(e->user, sizeof e->user, l->f[F_USER], l->flen[F_USER]);
  copy(e->detail, sizeof e->detail, l->f[F_DETAIL], l->flen[F_DETAIL]);
  copy(e->proto, sizeof e->proto, l->f[F_PROTO], l->flen[F_PROTO]);
  if (l->f[F_HELO]) copy(s->helo, sizeof s->helo, l->f[F_HELO], l->flen[F_HELO]);
  if (l->f[F_PROTO]) copy(s->proto, sizeof s->proto, l->f[F_PROTO], l->flen[F_PROTO]);
  if (!s->ip[0] && l->f[F_IP]) copy(s->ip, sizeof s->ip, l->f[F_IP], l->flen[F_IP]);
  if (!s->client_host[0] && l->f[F_SHOST] && !(l->flen[F_SHOST] == 7 && !memcmp(l->f[F_SHOST], "unknown", 7)))
    copy(s->client_host, sizeof s->client_host, l->f[F_SHOST], l->flen[F_SHOST]);
}

/* "host:ip:info:port" of tcpserver's ok line */
static void remote_fields(struct session *s, const char *p, size_t n)
{
  const char *end = p + n, *c1 = memchr(p, ':', n);
  if (!c1) return;
  const char *last = end;
  while (last > c1 && last[-1] != ':') last--;           /* the port after the last ':' */
  const char *info = last - 1;                           /* ':' before the port */
  const char *c2 = info;
  while (c2 > c1 + 1 && c2[-1] != ':') c2--;             /* ip between c1 and the info field */
  copy(s->client_host, sizeof s->client_host, p, (size_t)(c1 - p));
  if (c2 > c1 + 1) copy(s->ip, sizeof s->ip, c1 + 1, (size_t)(c2 - 1 - (c1 + 1)));
  copy(s->port, sizeof s->port, last, (size_t)(end - last));
}

static void sweep(struct table *t, struct report *r)
{
  for (unsigned i = 0; i < BUCKETS && t->open; i++)
    for (struct session **pp = &t->b[i]; *pp; ) {
      struct session *s = *pp;
      if (t->now - s->last > IDLE_LIMIT) { *pp = s->next; finish(t, s, r); }
      else pp = &s->next;
    }
  t->last_sweep = t->now;
}

void table_line(struct table *t, const struct logline *l, struct report *r)
{
  if (l->kind == L_NONE || l->kind == L_STATUS) return;
  if (l->ts > t->now) t->now = l->ts;
  if (t->now - t->last_sweep > IDLE_LIMIT / 4 && t->open) sweep(t, r);
  struct session **pp = find(t, l);
  struct session *s = *pp;
  if (l->kind == L_OPEN) {
    if (s) { *pp = s->next; finish(t, s, r); pp = find(t, l); }   /* pid reused: the old session lost its end */
    s = open_session(t, pp, l);
    if (!s) return;
    s->seen_open = true;
    copy(s->ip, sizeof s->ip, l->a, l->alen);
    return;
  }
  if (!s && !(s = open_session(t, pp, l))) return;             /* a session whose start we missed */
  s->last = l->ts;
  if (l->ts) s->end = l->ts;
  switch (l->kind) {
  case L_OK: case L_DENY:
    copy(s->local, sizeof s->local, l->a, l->alen);
    remote_fields(s, l->b, l->blen);
    if (l->kind == L_DENY) s->denied = true;
    break;
  case L_RBL:
    copy(s->rbl, sizeof s->rbl, l->b, l->blen);
    if (!s->ip[0]) copy(s->ip, sizeof s->ip, l->a, l->alen);
    break;
  case L_DECISION:
    add_event(s, l);
    break;
  case L_END:
    s->seen_end = true;
    s->status = l->status;
    *pp = s->next;
    finish(t, s, r);
    break;
  default:
    break;
  }
}

void table_flush(struct table *t, struct report *r)
{
  for (unsigned i = 0; i < BUCKETS; i++)
    while (t->b[i]) { struct session *s = t->b[i]; t->b[i] = s->next; finish(t, s, r); }
}

void table_free(struct table *t) { free(t); }
