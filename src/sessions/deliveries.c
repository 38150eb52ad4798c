/* deliveries.c -- mxgate-send's delivery lines joined to the SMTP session
 * that queued their message. A delivery line names the qp of the Queued
 * line that accepted its message; a qp is a pid, reused over time, so a
 * delivery joins the most recent Queued line of its qp (and syslog host)
 * at or before it in log time, and with it that line's session.
 *
 * The deliveries of a message come long after its session closed (and
 * often in another log: mxgate-send's own multilog directory), while
 * sessions are reported as they close. So the logs are read twice: the
 * first reading (DLV_INDEXING) keeps every delivery line and every Queued
 * line (its qp and time, in log order); deliveries_resolve() then gives
 * each delivery its Queued line; the second reading (DLV_JOINING) meets
 * the same Queued lines in the same order and hands each session theirs,
 * so that it is reported with its deliveries. Memory grows with the
 * deliveries and Queued lines of the logs (not with the sessions). Logs
 * that cannot be read twice (standard input, -f) are read once
 * (DLV_LIVE): each delivery line is reported on its own as it comes.
 */
#include "sessions.h"
#include <stdlib.h>
#include <string.h>

struct deliveries *deliveries_new(enum dlv_phase phase)
{
  struct deliveries *x = calloc(1, sizeof *x);
  if (x) x->phase = phase;
  return x;
}

static void arenas_free(struct deliveries *x)
{
  for (struct arena *a = x->arena, *n; a; a = n) { n = a->next; free(a); }
  x->arena = NULL;
}

void deliveries_free(struct deliveries *x)
{
  if (!x) return;
  arenas_free(x);
  free(x->d);
  free(x->q);
  free(x->order);
  free(x);
}

void deliveries_clear(struct deliveries *x)
{
  arenas_free(x);
  x->n = x->unjoined = 0;
}

/* n bytes of p (unescaped when escaped, cut at FIELD_MAX) kept in x's blocks; "" for none */
static const char *keep(struct deliveries *x, const char *p, size_t n, bool escaped)
{
  if (!p || !n) return "";
  if (n > FIELD_MAX - 1) n = FIELD_MAX - 1;
  struct arena *a = x->arena;
  if (!a || a->cap - a->used < n + 1) {
    size_t cap = 64 << 10;
    if (!(a = malloc(sizeof *a + cap))) return "";
    a->next = x->arena; a->used = 0; a->cap = cap;
    x->arena = a;
  }
  char *out = a->data + a->used;
  if (escaped) n = unescape(p, n, out, n + 1);
  else { memcpy(out, p, n); out[n] = 0; }
  a->used += n + 1;
  return out;
}

/* arr with room for one more of size bytes past its n (moved, maybe), NULL if there is none */
static void *room(void *arr, size_t *cap, size_t n, size_t size)
{
  if (n < *cap) return arr;
  size_t c = *cap ? *cap * 2 : 16;
  void *p = realloc(arr, c * size);
  if (p) *cap = c;
  return p;
}

bool is_queued_row(const char *row, size_t n) { return n == 20 && !memcmp(row, "Accept::DATA::Queued", 20); }

static size_t host_len(const struct logline *l) { return l->hostlen < FIELD_MAX - 1 ? l->hostlen : FIELD_MAX - 1; }

const struct delivery *deliveries_add(struct deliveries *x, const struct logline *l)
{
  struct delivery *grown = room(x->d, &x->cap, x->n, sizeof *x->d);
  if (!grown) return NULL;
  x->d = grown;
  char detail[FIELD_MAX];
  size_t dn = l->f[F_DETAIL] ? l->flen[F_DETAIL] : 0;
  if (dn > FIELD_MAX - 1) dn = FIELD_MAX - 1;
  if (l->detail_escaped) dn = unescape(l->f[F_DETAIL], dn, detail, sizeof detail);
  else if (dn) memcpy(detail, l->f[F_DETAIL], dn);
  detail[dn] = 0;
  struct send_detail sd;
  send_detail(detail, dn, &sd);
  struct delivery *d = &x->d[x->n];
  *d = (struct delivery){ .ts = l->ts, .pid = l->pid, .qp = sd.qp, .rec = NO_RECORD, .seq = x->n };
  d->host = keep(x, l->host, host_len(l), false);
  d->row = keep(x, l->row, l->rowlen, l->escaped);
  d->ip = keep(x, l->f[F_IP], l->flen[F_IP], l->escaped);
  d->hop = keep(x, l->f[F_SHOST], l->flen[F_SHOST], l->escaped);
  d->proto = keep(x, l->f[F_PROTO], l->flen[F_PROTO], l->escaped);
  d->from = keep(x, l->f[F_FROM], l->flen[F_FROM], l->escaped);
  d->rcpt = keep(x, l->f[F_TO], l->flen[F_TO], l->escaped);
  d->id = keep(x, sd.id, sd.idlen, false);
  d->tls = keep(x, sd.tls, sd.tlslen, false);
  d->reply = keep(x, sd.reply, sd.replylen, false);
  x->n++;
  return d;
}

/* the qp of a Queued line, from its detail */
static long line_qp(const struct logline *l)
{
  char buf[64];
  size_t n = l->f[F_DETAIL] ? l->flen[F_DETAIL] : 0;
  if (n > sizeof buf - 1) n = sizeof buf - 1;                  /* "qp N" is at its start */
  n = unescape(l->f[F_DETAIL] ? l->f[F_DETAIL] : "", n, buf, sizeof buf);
  return queued_qp(buf, n);
}

void deliveries_index(struct deliveries *x, const struct logline *l)
{
  if (l->kind == L_SEND) { deliveries_add(x, l); return; }
  if (l->kind != L_DECISION || !is_queued_row(l->row, l->rowlen)) return;
  struct queued_rec *grown = room(x->q, &x->qcap, x->nq, sizeof *x->q);
  if (!grown) return;
  x->q = grown;
  x->q[x->nq++] = (struct queued_rec){ l->ts, line_qp(l), keep(x, l->host, host_len(l), false), 0, 0, false };
}

static int key_cmp(const char *ha, long qa, double ta, const char *hb, long qb, double tb)
{
  int c = strcmp(ha, hb);
  if (c) return c;
  if (qa != qb) return qa < qb ? -1 : 1;
  return ta < tb ? -1 : ta > tb ? 1 : 0;
}

/* record numbers by their records' (host, qp, time); q: the records */
static int by_key(const void *a, const void *b, void *q)
{
  const struct queued_rec *x = (struct queued_rec *)q + *(const size_t *)a, *y = (struct queued_rec *)q + *(const size_t *)b;
  int c = key_cmp(x->host, x->qp, x->ts, y->host, y->qp, y->ts);
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  return c ? c : i < j ? -1 : i > j;                   /* the later line of one second last */
}

/* joined ones by record, each record's by message and recipient in time
 * order; then those without a session, grouped by host, qp and message */
static int by_record(const void *a, const void *b)
{
  const struct delivery *x = a, *y = b;
  if (x->rec != y->rec) return x->rec < y->rec ? -1 : 1;
  int c = key_cmp(x->host, x->qp, 0, y->host, y->qp, 0);
  if (!c) c = strcmp(x->id, y->id);
  if (!c) c = strcmp(x->rcpt, y->rcpt);
  if (!c) c = x->ts < y->ts ? -1 : x->ts > y->ts ? 1 : 0;
  return c ? c : x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* the last record (in order) with d's host and qp at or before its time, NO_RECORD if none */
static size_t record_of(const struct deliveries *x, const size_t *order, const struct delivery *d)
{
  size_t lo = 0, hi = x->nq;                                 /* the first record after (host, qp, ts) */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const struct queued_rec *q = &x->q[order[mid]];
    if (key_cmp(q->host, q->qp, q->ts, d->host, d->qp, d->ts) <= 0) lo = mid + 1;
    else hi = mid;
  }
  if (!lo) return NO_RECORD;
  const struct queued_rec *q = &x->q[order[lo - 1]];
  return q->qp == d->qp && !strcmp(q->host, d->host) ? order[lo - 1] : NO_RECORD;
}

void deliveries_resolve(struct deliveries *x)
{
  size_t *order = x->nq ? malloc(x->nq * sizeof *order) : NULL;
  if (order || !x->nq) {
    for (size_t i = 0; i < x->nq; i++) order[i] = i;
    if (x->nq) qsort_r(order, x->nq, sizeof *order, by_key, x->q);
    for (size_t i = 0; i < x->n; i++) x->d[i].rec = x->d[i].qp < 0 ? NO_RECORD : record_of(x, order, &x->d[i]);
    x->order = order;
  }
  if (x->n) qsort(x->d, x->n, sizeof *x->d, by_record);
  x->unjoined = x->n;
  for (size_t i = 0; i < x->n; i++) {
    size_t k = x->d[i].rec;
    if (k == NO_RECORD) { x->unjoined = i; break; }
    if (!x->q[k].n) x->q[k].first = i;
    x->q[k].n++;
  }
}

/* the first record not yet claimed of the Queued line l (of qp), NO_RECORD if none */
static size_t record_search(const struct deliveries *x, const struct logline *l, long qp)
{
  char host[FIELD_MAX];
  size_t hl = host_len(l);
  memcpy(host, l->host, hl);
  host[hl] = 0;
  size_t lo = 0, hi = x->order ? x->nq : 0;                  /* the first record at or after (host, qp, ts) */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const struct queued_rec *q = &x->q[x->order[mid]];
    if (key_cmp(q->host, q->qp, q->ts, host, qp, l->ts) < 0) lo = mid + 1;
    else hi = mid;
  }
  for (; lo < x->nq; lo++) {
    const struct queued_rec *q = &x->q[x->order[lo]];
    if (key_cmp(q->host, q->qp, q->ts, host, qp, l->ts)) break;
    if (!q->claimed) return x->order[lo];
  }
  return NO_RECORD;
}

void deliveries_queued(struct deliveries *x, struct session *s, const struct logline *l)
{
  size_t k = x->next_queued++;
  long qp = line_qp(l);
  /* the same line as in the first reading, in the same place unless the
   * log changed in between (or a line was lost to a lack of memory) */
  if (k >= x->nq || x->q[k].claimed || x->q[k].ts != l->ts || x->q[k].qp != qp || strncmp(x->q[k].host, l->host, host_len(l)) ||
      x->q[k].host[host_len(l)])
    k = record_search(x, l, qp);
  if (k == NO_RECORD) return;
  x->q[k].claimed = true;
  if (!x->q[k].n) return;
  size_t *grown = room(s->qrec, &s->qreccap, s->nqrec, sizeof *s->qrec);
  if (!grown) return;
  s->qrec = grown;
  s->qrec[s->nqrec++] = k;
}

static int by_message(const void *a, const void *b)
{
  const struct delivery *x = *(const struct delivery *const *)a, *y = *(const struct delivery *const *)b;
  int c = strcmp(x->id, y->id);
  if (!c) c = strcmp(x->rcpt, y->rcpt);
  if (!c) c = x->ts < y->ts ? -1 : x->ts > y->ts ? 1 : 0;
  return c ? c : x->seq < y->seq ? -1 : x->seq > y->seq;
}

const struct delivery **deliveries_of(const struct deliveries *x, const struct session *s, size_t *n)
{
  size_t total = 0;
  *n = 0;
  for (size_t i = 0; i < s->nqrec; i++) total += x->q[s->qrec[i]].n;
  if (!total) return NULL;
  const struct delivery **out = malloc(total * sizeof *out);
  if (!out) return NULL;
  for (size_t i = 0; i < s->nqrec; i++)
    for (size_t j = 0; j < x->q[s->qrec[i]].n; j++) out[(*n)++] = &x->d[x->q[s->qrec[i]].first + j];
  qsort(out, *n, sizeof *out, by_message);
  return out;
}
