/* join.c -- sessions from lines: a session opens at "pid P from IP" and
 * closes at "end P status S"; every line with pid P between belongs to it.
 * A pid seen again while its session is open closes the old one as partial
 * (its end line is missing); lines for a pid without an open session start
 * a partial one. Closed sessions are reported and freed at once; sessions
 * without a line for IDLE_LIMIT seconds of log time are evicted as partial,
 * so memory is bounded by the sessions open at one time.
 *
 * Parallel chunks: a large file is cut into chunks read by one thread each
 * (input.c). In a chunk after the first, a session whose first line is not
 * its open line may have begun in the chunk before: it is an orphan, kept
 * aside when it closes instead of being reported. table_merge then joins
 * each orphan to the session of the same pid still open at the end of the
 * chunk before, if that one would not have been evicted in between, and
 * applies what the lines of the chunk would have done to the others: a new
 * open line for their pid closes them as partial, no line keeps them open
 * (or evicts them, as the sweep would have). Only the pids first seen in
 * the chunk's first IDLE_LIMIT seconds (and a quarter more, for clocks
 * that step back) are recorded: a session of the chunk before had its last
 * line no later than that, so a pid first seen after it finds the session
 * evicted either way, and the record stays small.
 */
#include "sessions.h"
#include <stdlib.h>
#include <string.h>

#ifndef BUCKETS                  /* the fuzz build makes it small: a fresh table per input */
#define BUCKETS 4096             /* sessions open at one time, not sessions in the log */
#endif
#define ARENA_FIRST 512
#define POOL_MAX 256             /* closed sessions' memory kept for reuse */
#ifndef SEEN_FIRST               /* slots of a chunk's first map of pids (a power of two); small in the fuzz build */
#define SEEN_FIRST 4096
#endif

/* the pids a chunk has seen, with how each first appeared */
struct seen { long pid; char *host; size_t hostlen; struct session *orphan; bool used; };   /* host: a copy */

struct table {
  struct session *b[BUCKETS];
  size_t open;
  double now, last_sweep;
  bool chunk;                    /* a chunk after the first: keeps orphans */
  struct session *orphans, **orphans_tail;       /* closed orphans, in order */
  struct seen *seen;             /* a map, open addressing */
  size_t nseen, seencap;
  unsigned long long *pidbits;   /* PIDBITS bits, or NULL */
  struct session *pool;          /* closed sessions' memory, for reuse */
  size_t npool;
  double seen_until;             /* log time after which first sightings are not recorded, 0 before a stamp */
};

/* calloc leaves fresh pages unmapped; read first, they map the zero page,
 * and the first write then replaces it with a flush of the TLB of every
 * CPU running a thread of the process -- tens of thousands of them when
 * the chunk threads grow their tables. Writing each page first avoids it. */
void *zalloc(size_t n)
{
  volatile char *p = calloc(1, n ? n : 1);
  if (p) for (size_t i = 0; i < n; i += 4096) p[i] = 0;
  return (void *)p;
}

struct table *table_new(void) { return zalloc(sizeof(struct table)); }

struct table *table_new_chunk(void)
{
  struct table *t = table_new();
  if (t) { t->chunk = true; t->orphans_tail = &t->orphans; }
  return t;
}

static unsigned key_hash(const char *host, size_t hostlen, long pid)
{
  unsigned h = (unsigned)pid * 2654435761u;
  for (size_t i = 0; i < hostlen; i++) h = h * 31 + (unsigned char)host[i];
  return h;
}

static bool same_key(const struct session *s, const char *host, size_t hostlen, long pid)
{
  return s->pid == pid && s->hostlen == hostlen && (!hostlen || memcmp(s->host, host, hostlen) == 0);
}

/* hostlen cut like the stored host */
static size_t host_len(const struct logline *l) { return l->hostlen < FIELD_MAX - 1 ? l->hostlen : FIELD_MAX - 1; }

/* memcpy for the short fields of a log line, without the startup cost of
 * the string instruction the compiler picks for a bounded size */
static void copy_short(char *d, const char *s, size_t n)
{
  unsigned long long a, b;
  unsigned x, y;
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) { memcpy(&a, s + i, 8); memcpy(d + i, &a, 8); }
    memcpy(&b, s + n - 8, 8); memcpy(d + n - 8, &b, 8);
  } else if (n >= 4) {
    memcpy(&x, s, 4); memcpy(&y, s + n - 4, 4); memcpy(d, &x, 4); memcpy(d + n - 4, &y, 4);
  } else {
    for (size_t i = 0; i < n; i++) d[i] = s[i];
  }
}

/* a == b for n bytes; a protocol name's four to eight in two reads each */
static bool same_short(const char *a, const char *b, size_t n)
{
  unsigned x, y, u, v;
  if (n < 4 || n > 8) return !memcmp(a, b, n);
  memcpy(&x, a, 4); memcpy(&y, b, 4); memcpy(&u, a + n - 4, 4); memcpy(&v, b + n - 4, 4);
  return x == y && u == v;
}

/* n bytes of p, unescaped, kept in the session's arena; "" for none */
static inline __attribute__((always_inline)) const char *keep_n(struct session *s, const char *p, size_t n, bool escaped,
                                                                 size_t *kept)
{
  *kept = 0;
  if (!p || !n) return "";
  if (n > FIELD_MAX - 1) n = FIELD_MAX - 1;
  struct arena *a = s->arena;
  if (!a || a->cap - a->used < n + 1) {
    size_t cap = a && a->cap * 2 > n + 1 ? a->cap * 2 : n + 1 > 1024 ? n + 1 : 1024;
    struct arena *b = malloc(sizeof *b + cap);
    if (!b) return "";
    b->next = a; b->used = 0; b->cap = cap;
    s->arena = a = b;
  }
  char *out = a->data + a->used;
  if (escaped) n = unescape(p, n, out, n + 1);
  else { copy_short(out, p, n); out[n] = 0; }
  a->used += n + 1;
  *kept = n;
  return out;
}

static const char *keep(struct session *s, const char *p, size_t n, bool escaped)
{
  size_t kept;
  return keep_n(s, p, n, escaped, &kept);
}

static void session_free(struct session *s)
{
  struct arena *first = (struct arena *)(s + 1);
  for (struct arena *a = s->arena, *next; a; a = next) { next = a->next; if (a != first) free(a); }
  free(s->ev);
  free(s->qrec);
  free(s);
}

/* a closed session's memory, kept for the next one to open (a table opens
 * and closes a session every few lines) */
static void session_recycle(struct table *t, struct session *s)
{
  if (t->npool == POOL_MAX || s->ev || s->qrec || s->arena != (struct arena *)(s + 1)) { session_free(s); return; }
  s->next = t->pool;
  t->pool = s;
  t->npool++;
}

static void finish(struct table *t, struct session *s, struct report *r)
{
  t->open--;
  if (s->orphan) { s->next = NULL; *t->orphans_tail = s; t->orphans_tail = &s->next; return; }
  if (!s->seen_open || !s->seen_end) r->partial++;
  r->sessions++;
  report_session(r, s);
  session_recycle(t, s);
}

static inline struct session **find_key(struct table *t, const char *host, size_t hostlen, long pid)
{
  struct session **pp = &t->b[key_hash(host, hostlen, pid) % BUCKETS];
  for (; *pp; pp = &(*pp)->next)
    if (same_key(*pp, host, hostlen, pid)) return pp;
  return pp;
}

static inline struct session **find(struct table *t, const struct logline *l)
{
  if (!l->hostlen) {                                     /* no syslog host: the pid alone */
    struct session **pp = &t->b[key_hash("", 0, l->pid) % BUCKETS];
    while (*pp && ((*pp)->pid != l->pid || (*pp)->hostlen)) pp = &(*pp)->next;
    return pp;
  }
  return find_key(t, l->host, host_len(l), l->pid);
}

/* pids below this without a syslog host (all of tcpserver's on Linux) are
 * recorded in a bitmap: a lookup per session in a hash table of every pid
 * missed the cache for each of them */
#ifndef PIDBITS                  /* the fuzz build makes it small: a fresh map per input */
#define PIDBITS (1L << 22)
#endif

static bool in_bitmap(size_t hostlen, long pid) { return !hostlen && pid >= 0 && pid < PIDBITS; }

/* the chunk's entry for pid in its map, or the empty slot where it goes */
static struct seen *seen_slot(struct table *t, const char *host, size_t hl, long pid)
{
  size_t i = key_hash(host, hl, pid) & (t->seencap - 1);
  for (; t->seen[i].used; i = (i + 1) & (t->seencap - 1))
    if (t->seen[i].pid == pid && t->seen[i].hostlen == hl && (!hl || !memcmp(t->seen[i].host, host, hl))) break;
  return &t->seen[i];
}

/* a new entry for pid in the map, NULL if it is there (or out of memory) */
static struct seen *seen_add(struct table *t, const char *host, size_t hl, long pid)
{
  if (t->nseen * 2 >= t->seencap) {
    size_t cap = t->seencap ? t->seencap * 2 : SEEN_FIRST;          /* a power of two */
    struct seen *n = zalloc(cap * sizeof *n), *old = t->seen;
    if (!n) return NULL;
    size_t oldcap = t->seencap;
    t->seen = n; t->seencap = cap;
    for (size_t i = 0; i < oldcap; i++)
      if (old[i].used) *seen_slot(t, old[i].host, old[i].hostlen, old[i].pid) = old[i];
    free(old);
  }
  struct seen *e = seen_slot(t, host, hl, pid);
  if (e->used) return NULL;
  char *copy = hl ? malloc(hl) : NULL;
  if (hl && !copy) return NULL;
  if (hl) memcpy(copy, host, hl);
  t->nseen++;
  *e = (struct seen){ pid, copy, hl, NULL, true };
  return e;
}

/* s is the chunk's first session of its pid: an orphan unless its first
 * line is the open line. A pid in the bitmap has an entry in the map only
 * when it was an orphan. */
static void first_sight(struct table *t, const struct logline *l, struct session *s)
{
  size_t hl = host_len(l);
  bool orphan = l->kind != L_OPEN;
  if (in_bitmap(hl, l->pid)) {
    if (!t->pidbits && !(t->pidbits = zalloc(PIDBITS / 8))) return;
    unsigned long long bit = 1ULL << (l->pid & 63), *w = &t->pidbits[l->pid >> 6];
    if (*w & bit) return;
    *w |= bit;
    if (!orphan) return;
  }
  struct seen *e = seen_add(t, l->host, hl, l->pid);
  if (e && orphan) { s->orphan = true; e->orphan = s; }
}

/* how s's pid first appeared in chunk t: NULL if it did not, else its
 * entry (orphan NULL when its first line was an open line) */
static struct seen *seen_get(struct table *t, const struct session *s)
{
  static struct seen opened;                             /* read only: orphan stays NULL */
  if (in_bitmap(s->hostlen, s->pid)) {
    if (!t->pidbits || !(t->pidbits[s->pid >> 6] & 1ULL << (s->pid & 63))) return NULL;
    if (!t->seencap) return &opened;
    struct seen *e = seen_slot(t, s->host, s->hostlen, s->pid);
    return e->used ? e : &opened;
  }
  if (!t->seencap) return NULL;
  struct seen *e = seen_slot(t, s->host, s->hostlen, s->pid);
  return e->used ? e : NULL;
}

static struct session *open_session(struct table *t, struct session **pp, const struct logline *l)
{
  struct session *s = t->pool;
  if (s) { t->pool = s->next; t->npool--; }
  else if (!(s = malloc(sizeof *s + sizeof(struct arena) + ARENA_FIRST))) return NULL;
  *s = (struct session){ .pid = l->pid, .status = -1, .start = l->ts, .end = l->ts, .last = l->ts };
  s->arena = (struct arena *)(s + 1);
  *s->arena = (struct arena){ .cap = ARENA_FIRST };
  /* the host kept as the key find() looks up: its bytes as the line has
   * them (a host unescaped, or cut at a NUL byte, was another key: the
   * session was never found again, and a second one with that key in the
   * same bucket was overwritten when a new open line took its slot) */
  s->host = keep_n(s, l->host, host_len(l), false, &s->hostlen);
  s->ip = s->client_host = s->local = s->port = s->rbl = s->helo = s->proto = "";
  if (t->chunk && !t->seen_until && l->ts) t->seen_until = l->ts + IDLE_LIMIT + IDLE_LIMIT / 4;
  if (t->chunk && (!t->seen_until || l->ts <= t->seen_until)) first_sight(t, l, s);
  s->next = NULL;
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
  struct event *e = &s->ev[s->nev++];
  e->ts = l->ts;
  e->row = keep(s, l->row, l->rowlen, l->escaped);
  e->helo = keep(s, l->f[F_HELO], l->flen[F_HELO], l->escaped);
  e->from = keep(s, l->f[F_FROM], l->flen[F_FROM], l->escaped);
  e->to = keep(s, l->f[F_TO], l->flen[F_TO], l->escaped);
  e->user = keep(s, l->f[F_USER], l->flen[F_USER], l->escaped);
  e->detail = keep(s, l->f[F_DETAIL], l->flen[F_DETAIL], l->detail_escaped);
  e->proto = keep(s, l->f[F_PROTO], l->flen[F_PROTO], l->escaped);
  if (e->helo[0]) s->helo = e->helo;
  if (e->proto[0]) { s->proto = e->proto; s->protolen = strlen(e->proto); }
  if (!s->ip[0] && l->f[F_IP]) s->ip = keep(s, l->f[F_IP], l->flen[F_IP], l->escaped);
  if (!s->client_host[0] && l->f[F_SHOST] && !(l->flen[F_SHOST] == 7 && !memcmp(l->f[F_SHOST], "unknown", 7)))
    s->client_host = keep(s, l->f[F_SHOST], l->flen[F_SHOST], l->escaped);
}

/* a field as the summary reads it: "" when absent, cut as a kept field is */
static size_t counted(const char **p, size_t n)
{
  if (!*p) { *p = ""; return 0; }
  return n < FIELD_MAX - 1 ? n : FIELD_MAX - 1;
}

/* a decision of a line with escapes: its fields unescaped, then counted;
 * out of the common path with its buffers */
__attribute__((noinline)) static void count_escaped(struct summary *sum, struct session *s, struct decision *d)
{
  char buf[4][FIELD_MAX];
  const char **f[4] = { &d->row, &d->from, &d->to, &d->user };
  size_t *n[4] = { &d->rowlen, &d->fromlen, &d->tolen, &d->userlen };
  for (int i = 0; i < 4; i++)
    if (memchr(*f[i], '\\', *n[i])) { *n[i] = unescape(*f[i], *n[i], buf[i], sizeof buf[i]); *f[i] = buf[i]; }
  summary_event(sum, s, d);
}

/* counting only: the decision goes to the summary now, the session keeps
 * what the summary needs at its end (the client IP, the protocol) */
static void count_event(struct session *s, const struct logline *l, struct report *r)
{
  if (!s->ip[0] && l->f[F_IP]) s->ip = keep(s, l->f[F_IP], l->flen[F_IP], l->escaped);
  if (l->f[F_PROTO] && (s->protolen != l->flen[F_PROTO] || !same_short(s->proto, l->f[F_PROTO], l->flen[F_PROTO]))) {
    s->proto = keep_n(s, l->f[F_PROTO], l->flen[F_PROTO], l->escaped, &s->protolen);
  }
  struct decision d = { .ts = l->ts, .row = l->row, .from = l->f[F_FROM], .to = l->f[F_TO], .user = l->f[F_USER] };
  d.rowlen = counted(&d.row, l->rowlen);
  d.fromlen = counted(&d.from, l->flen[F_FROM]);
  d.tolen = counted(&d.to, l->flen[F_TO]);
  d.userlen = counted(&d.user, l->flen[F_USER]);
  if (l->escaped) count_escaped(r->sum, s, &d);
  else summary_event(r->sum, s, &d);
}

/* "host:ip:info:port" of tcpserver's ok line */
static void remote_fields(struct session *s, const char *p, size_t n, bool escaped)
{
  if (!p) return;                                        /* "ok P local" with nothing after */
  const char *end = p + n, *c1 = memchr(p, ':', n);
  if (!c1) return;
  const char *last = end;
  while (last > c1 && last[-1] != ':') last--;           /* the port after the last ':' */
  const char *info = last - 1;                           /* ':' before the port */
  const char *c2 = info;
  while (c2 > c1 + 1 && c2[-1] != ':') c2--;             /* ip between c1 and the info field */
  s->client_host = keep(s, p, (size_t)(c1 - p), escaped);
  if (c2 > c1 + 1) s->ip = keep(s, c1 + 1, (size_t)(c2 - 1 - (c1 + 1)), escaped);
  s->port = keep(s, last, (size_t)(end - last), escaped);
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

/* a delivery line of mxgate-send: never part of a session of its pid.
 * Counted at once when only counting; kept for the join in the first
 * reading (deliveries.c); reported on its own when the logs are read once */
__attribute__((noinline)) static void delivery_line(const struct logline *l, struct report *r)
{
  if (!r->dlv) {
    char rcpt[FIELD_MAX];
    size_t n = l->f[F_TO] ? l->flen[F_TO] : 0;
    if (n > FIELD_MAX - 1) n = FIELD_MAX - 1;
    n = unescape(l->f[F_TO] ? l->f[F_TO] : "", n, rcpt, sizeof rcpt);
    if (r->sum) summary_delivery(r->sum, l->row, l->rowlen, rcpt, n);
    return;
  }
  if (r->dlv->phase != DLV_LIVE) return;                 /* joining: read in the first reading */
  const struct delivery *d = deliveries_add(r->dlv, l);
  if (d) report_deliveries(r, &d, 1);
  deliveries_clear(r->dlv);
}

void table_line(struct table *t, const struct logline *l, struct report *r)
{
  if (l->kind == L_NONE || l->kind == L_STATUS) return;
  if (r->dlv && r->dlv->phase == DLV_INDEXING) { deliveries_index(r->dlv, l); return; }
  if (l->ts > t->now) t->now = l->ts;
  if (l->kind == L_SEND) { delivery_line(l, r); return; }
  if (t->now - t->last_sweep > IDLE_LIMIT / 4 && t->open) sweep(t, r);
  struct session **pp = find(t, l);
  struct session *s = *pp;
  if (l->kind == L_OPEN) {
    if (s) { *pp = s->next; finish(t, s, r); pp = find(t, l); }   /* pid reused: the old session lost its end */
    s = open_session(t, pp, l);
    if (!s) return;
    s->seen_open = true;
    s->ip = keep(s, l->a, l->alen, l->escaped);
    return;
  }
  if (!s && !(s = open_session(t, pp, l))) return;             /* a session whose start we missed */
  s->last = l->ts;
  if (l->ts) s->end = l->ts;
  switch (l->kind) {
  case L_OK: case L_DENY:
    if (!r->stream) {
      s->local = keep(s, l->a, l->alen, l->escaped);
      remote_fields(s, l->b, l->blen, l->escaped);
    } else if (!s->ip[0]) remote_fields(s, l->b, l->blen, l->escaped);   /* counting needs only the IP */
    if (l->kind == L_DENY) s->denied = true;
    break;
  case L_RBL:
    s->rbl = keep(s, l->b, l->blen, l->escaped);
    if (!s->ip[0]) s->ip = keep(s, l->a, l->alen, l->escaped);
    break;
  case L_DECISION:
    if (r->stream) count_event(s, l, r);
    else {
      add_event(s, l);
      if (r->dlv && r->dlv->phase == DLV_JOINING && is_queued_row(l->row, l->rowlen)) deliveries_queued(r->dlv, s, l);
    }
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

/* o continues a: a's events first, a's fields where o has none; a is freed */
static void join_sessions(struct session *o, struct session *a)
{
  size_t moved = 0;                                      /* a's events now at the head of o's */
  if (a->nev) {
    size_t n = a->nev + o->nev;
    struct event *ev = malloc(n * sizeof *ev);
    if (!ev) o->dropped += a->nev;
    else {
      moved = a->nev;
      memcpy(ev, a->ev, a->nev * sizeof *ev);
      if (o->nev) memcpy(ev + a->nev, o->ev, o->nev * sizeof *ev);
      free(o->ev);
      o->ev = ev; o->nev = o->cap = n;
      o->dropped += a->dropped;
    }
  }
  o->seen_open = a->seen_open;
  o->start = a->start;
  o->denied |= a->denied;
  o->queued |= a->queued; o->login |= a->login; o->rejected |= a->rejected; o->deferred |= a->deferred;
  o->rejections += a->rejections;
  /* as in one pass: the IP and client host are the first ones a line gave
   * (a's, where it has them); the others the last ones (o's, where it has them) */
  const char **f[] = { &o->ip, &o->client_host, &o->local, &o->port, &o->rbl, &o->helo, &o->proto };
  const char *g[] = { a->ip, a->client_host, a->local, a->port, a->rbl, a->helo, a->proto };
  for (size_t i = 0; i < sizeof f / sizeof *f; i++)
    if (!(*f[i])[0] || (i < 2 && g[i][0])) *f[i] = g[i];
  o->protolen = strlen(o->proto);
  /* a's strings move with their blocks; its first block lives inside a, so it is copied */
  struct arena *first = (struct arena *)(a + 1), *tail = NULL;
  for (struct arena *b = a->arena; b && b != first; b = b->next) tail = b;
  if (first->used) {
    struct arena *c = malloc(sizeof *c + first->cap);
    if (c) {
      *c = *first;
      memcpy(c->data, first->data, first->used);
      /* pointers into the first block now point into its copy */
      const char *lo = first->data, *hi = first->data + first->used;
      for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        if (*f[i] >= lo && *f[i] < hi) *f[i] = c->data + (*f[i] - lo);
      for (size_t i = 0; i < moved; i++) {
        const char **ef[] = { &o->ev[i].row, &o->ev[i].helo, &o->ev[i].from, &o->ev[i].to, &o->ev[i].user,
                              &o->ev[i].detail, &o->ev[i].proto };
        for (size_t k = 0; k < sizeof ef / sizeof *ef; k++)
          if (*ef[k] >= lo && *ef[k] < hi) *ef[k] = c->data + (*ef[k] - lo);
      }
      c->next = o->arena;
      o->arena = c;
    }
  }
  if (tail) {                                            /* a's own blocks, ahead of o's */
    tail->next = o->arena;
    o->arena = a->arena;
  }
  a->arena = first;
  a->nev = 0;
  session_free(a);
}

void table_merge(struct table *prev, struct table *next, struct report *r)
{
  /* the sessions still open at the end of prev: what next's lines did to them */
  for (unsigned i = 0; i < BUCKETS; i++)
    for (struct session **pp = &prev->b[i]; *pp; ) {
      struct session *a = *pp;
      struct seen *sn = seen_get(next, a);
      if (sn && sn->orphan && sn->orphan->start - a->last <= IDLE_LIMIT) {
        *pp = a->next;
        prev->open--;
        join_sessions(sn->orphan, a);                     /* its lines went on in next */
        sn->orphan->orphan = false;
        sn->orphan = NULL;
      } else if (sn || (next->now && next->now - a->last > IDLE_LIMIT)) {
        *pp = a->next;
        finish(prev, a, r);                               /* a new open line for its pid, or evicted */
      } else {
        pp = &a->next;                                    /* still open */
      }
    }
  /* the orphans next closed: partial unless joined above, reported in order */
  for (struct session *o = next->orphans, *n; o; o = n) {
    n = o->next;
    o->orphan = false;
    next->open++;
    finish(next, o, r);
  }
  next->orphans = NULL;
  next->orphans_tail = &next->orphans;
  /* next's open sessions join prev's (no pid is in both: a pid next saw was joined or closed above) */
  for (unsigned i = 0; i < BUCKETS; i++)
    while (next->b[i]) {
      struct session *s = next->b[i];
      next->b[i] = s->next;
      s->orphan = false;
      s->next = prev->b[i];
      prev->b[i] = s;
    }
  prev->open += next->open;
  next->open = 0;
  if (next->now > prev->now) prev->now = next->now;
}

void table_flush(struct table *t, struct report *r)
{
  for (unsigned i = 0; i < BUCKETS; i++)
    while (t->b[i]) { struct session *s = t->b[i]; t->b[i] = s->next; finish(t, s, r); }
  for (struct session *o = t->orphans, *n; o; o = n) { n = o->next; o->orphan = false; t->open++; finish(t, o, r); }
  t->orphans = NULL;
}

static void seen_free(struct table *t)
{
  for (size_t i = 0; i < t->seencap; i++) free(t->seen[i].host);
  free(t->seen);
  free(t->pidbits);
  t->seen = NULL;
  t->pidbits = NULL;
  t->nseen = t->seencap = 0;
}

void table_free(struct table *t)
{
  if (t) seen_free(t);
  for (struct session *s = t ? t->pool : NULL, *n; s; s = n) { n = s->next; free(s); }
  free(t);
}
