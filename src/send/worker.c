/* worker.c -- one delivery process of mxgate-send: takes a queue entry at a
 * time from the runner, delivers its pending recipients, and says when the
 * entry is next due (0: it is finished).
 *
 * An entry is worked on under an exclusive flock(2) of its file, as
 * mxgate-queue --flush does, so no recipient is handled twice at once.
 * Local recipients with a Maildir are delivered as mxgate-queue does; the
 * others are grouped by domain and each group is one transaction (at most
 * SEND_RCPT_MAX recipients) to the domain's first next hop that answers
 * (route.c). The connection stays open for the next transaction to the
 * same hop, for at most CONN_IDLE_S seconds. An entry whose recipients
 * are all delivered is removed (the unlink and its directory's flush);
 * otherwise what every recipient became is appended to the entry as state
 * records, made durable, before its bounce, its removal or its next
 * attempt: a recipient is done only after the next hop's 2xx, and a crash
 * before the record or the unlink is on disk delivers it again (at least
 * once, never lost). A temporary failure is
 * tried again after RETRY_FIRST_S seconds, doubled at each attempt up to
 * RETRY_MAX_S, until the entry is older than control/queuelifetime: then
 * it fails for good (Reject::SEND::Expired). A message still pending
 * control/bouncewarn seconds after it was queued gets one delay warning
 * to its sender.
 *
 * Each attempt on a recipient is one log line (rows SEND_* in rows.def):
 *   mxgate-send: pid PID Accept::SEND::Delivered: S:IP:HOST P:ESMTPS F:from T:rcpt 'qp N id ID reply'
 * S: the next hop (the name it was found under), P: the protocol used
 * (ESMTPS with TLS; the detail adds "tls verified" or "tls unverified"),
 * qp the Queued line's qp of the SMTP session that accepted the message.
 */
#include "send.h"
#include "runner.h"
#include "route.h"
#include "queue.h"
#include "control.h"
#include "dns.h"
#include "log.h"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SEND_RCPT_MAX 100        /* recipients in one transaction */
#define CONN_IDLE_S 1            /* an idle connection (and its destination slot) is closed after this */
#define RETRY_FIRST_S 300
#define RETRY_MAX_S (4 * 3600)
#define SLOT_WAIT_S 1            /* a destination at its concurrency limit: asked again after this */

struct worker {
  const struct send_config *cfg;
  struct localmap map;
  struct routes routes;
  struct dns *dns;
  struct smtp_conn *conn;      /* kept for the next transaction to the same hop */
  struct hop conn_hop;
  time_t conn_used;
  int slot;                    /* the destination slot the connection holds (a locked file), or -1 */
};

/* "qp N" of an entry: the P part of its name is the pid of the process
 * that committed it, which the SMTP session logged as the Queued line's qp */
static long entry_qp(const char *id)
{
  const char *p = strchr(id, 'P');
  return p ? strtol(p + 1, NULL, 10) : 0;
}

static void log_attempt(enum row_id row, const char *id, const struct entry *e, size_t i, const struct hop *h,
                        const char *proto, const char *extra, const char *reply)
{
  char detail[1024];
  snprintf(detail, sizeof detail, "qp %ld id %s%s%s: %s", entry_qp(id), id, extra ? " " : "", extra ? extra : "",
           reply);
  struct log_fields f = { .tag = "mxgate-send", .pid = getpid() };
  f.ip = log_cstr(h && h->ip[0] ? h->ip : h && h->unixpath[0] ? h->unixpath : "");
  f.host = log_cstr(h ? h->name : "");
  f.proto = log_cstr(proto);
  f.from = log_cstr(e->env.sender);
  f.rcpt = log_cstr(e->env.rcpt[i]);
  f.detail = log_cstr(detail);
  log_write(2, row, &f);
}

static long long backoff(unsigned attempts)
{
  long long s = RETRY_FIRST_S;
  for (unsigned k = 1; k < attempts && s < RETRY_MAX_S; k++) s *= 2;
  return s < RETRY_MAX_S ? s : RETRY_MAX_S;
}

/* the outcome of recipient i into its state, its record and its log line */
static void settle(struct worker *w, const char *id, struct entry *e, size_t i, const struct hop *h, const char *proto,
                   const char *extra, char state, const char *reply, str *records)
{
  struct entry_rcpt *r = &e->rcpt[i];
  time_t now = time(NULL);
  enum row_id row = state == 'd' ? ROW_SEND_DELIVERED : state == 'b' ? ROW_SEND_BOUNCED : ROW_SEND_DEFERRED;
  r->attempts++;
  snprintf(r->reply, sizeof r->reply, "%s", reply);
  r->state = state;
  r->next_try = 0;
  if (state == 'p') {
    r->next_try = now + backoff(r->attempts);
    if (now - e->queued_at >= w->cfg->lifetime) {          /* too old: fails for good */
      r->state = 'b';
      r->next_try = 0;
      row = ROW_SEND_EXPIRED;
      snprintf(r->reply, sizeof r->reply, "%s (given up after %u attempts over %lld s in the queue)", reply,
               r->attempts, (long long)(now - e->queued_at));
    }
  }
  entry_record(records, i, r);
  log_attempt(row, id, e, i, h, proto, extra, r->reply);
}

static bool same_hop(const struct hop *a, const struct hop *b)
{
  return !strcmp(a->ip, b->ip) && a->port == b->port && !strcmp(a->unixpath, b->unixpath) && a->lmtp == b->lmtp &&
         a->tls == b->tls && a->cert == b->cert && a->smtps == b->smtps && !strcmp(a->ca_file, b->ca_file) &&
         !strcmp(a->pin, b->pin) && !strcmp(a->ciphers, b->ciphers) && a->verify_depth == b->verify_depth &&
         !strcmp(a->auth_user, b->auth_user) && !strcasecmp(a->name, b->name);
}

static void drop_conn(struct worker *w)
{
  if (w->conn) smtp_close(w->conn);
  w->conn = NULL;
  if (w->slot >= 0) close(w->slot);                       /* the slot is free again */
  w->slot = -1;
}

/* one of the per_destination slots of domain: queue/lock/DOMAIN.K locked
 * (every worker of every mxgate-send on this queue sees the same locks);
 * -1 when all are taken */
static int take_slot(const struct send_config *cfg, const char *domain)
{
  char name[300], rel[400], path[4096];
  size_t n = 0;
  for (const char *p = domain; *p && n < 253; p++)
    name[n++] = (char)(isalnum((unsigned char)*p) || *p == '.' || *p == '-' ? tolower((unsigned char)*p) : '_');
  name[n] = 0;
  snprintf(rel, sizeof rel, "queue/lock");
  control_path(path, sizeof path, rel);
  mkdir(path, 0700);
  for (int k = 0; k < cfg->per_destination; k++) {
    snprintf(rel, sizeof rel, "queue/lock/%s.%d", name, k);
    control_path(path, sizeof path, rel);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
    if (fd >= 0) close(fd);
  }
  return -1;
}

/* a connection to the first hop of r that answers; NULL with state and
 * why of the last failure, or with *busy when domain has no free slot */
static struct smtp_conn *connect_route(struct worker *w, const char *domain, const struct route *r,
                                       const struct hop **used, char *state, char *why, size_t cap, bool *busy)
{
  if (w->conn && time(NULL) - w->conn_used > CONN_IDLE_S) drop_conn(w);
  for (size_t k = 0; k < r->n; k++)
    if (w->conn && same_hop(&w->conn_hop, &r->hop[k])) { *used = &r->hop[k]; return w->conn; }
  drop_conn(w);
  if ((w->slot = take_slot(w->cfg, domain)) < 0) { *busy = true; return NULL; }
  for (size_t k = 0; k < r->n; k++) {
    struct smtp_conn *c = smtp_open(&r->hop[k], w->cfg->helo, w->cfg->timeout, state, why, cap);
    if (c) {
      w->conn = c;
      w->conn_hop = r->hop[k];
      *used = &r->hop[k];
      return c;
    }
  }
  drop_conn(w);
  return NULL;
}

/* one transaction for recipients idx[0..n) of e, all of one domain */
static void deliver_group(struct worker *w, const char *id, struct entry *e, const size_t *idx, size_t n,
                          const char *domain, str *records)
{
  struct route r;
  char why[600] = "", state = 'p';
  enum route_status rs = route_find(&w->routes, w->dns, domain, e->env.sender, &r, why, sizeof why);
  if (rs != ROUTE_OK) {
    for (size_t k = 0; k < n; k++) settle(w, id, e, idx[k], NULL, "", NULL, rs == ROUTE_PERM ? 'b' : 'p', why, records);
    return;
  }
  const struct hop *h = NULL;
  bool busy = false;
  struct smtp_conn *c = connect_route(w, domain, &r, &h, &state, why, sizeof why, &busy);
  if (busy) {                               /* every slot of the destination taken: soon again, no attempt */
    for (size_t k = 0; k < n; k++) e->rcpt[idx[k]].next_try = time(NULL) + SLOT_WAIT_S;
    return;
  }
  if (!c) {
    for (size_t k = 0; k < n; k++) settle(w, id, e, idx[k], &r.hop[r.n - 1], "", NULL, state, why, records);
    return;
  }
  const char *rcpt[SEND_RCPT_MAX];
  struct rcpt_outcome out[SEND_RCPT_MAX];
  for (size_t k = 0; k < n; k++) rcpt[k] = e->env.rcpt[idx[k]];
  const char *sender = strcmp(e->env.sender, BOUNCE_DOUBLE_SENDER) ? e->env.sender : "";   /* a double bounce: <> */
  struct outgoing m = { .helo = w->cfg->helo, .sender = sender, .rcpt = rcpt, .nrcpt = n, .msgfd = e->fd,
                        .msgoff = (off_t)e->msgoff, .msglen = e->msglen };
  bool reusable = smtp_send(c, &m, out);
  const char *proto = smtp_proto(c);
  const char *tls = strstr(proto, "MTPS") ? (smtp_tls_verified(c) ? "tls verified" : "tls unverified") : NULL;
  for (size_t k = 0; k < n; k++) settle(w, id, e, idx[k], h, proto, tls, out[k].state, out[k].reply, records);
  w->conn_used = time(NULL);
  if (!reusable) drop_conn(w);
}

static const char *domain_of(const char *addr)
{
  const char *at = strrchr(addr, '@');
  return at ? at + 1 : "";
}

/* the pending remote recipients due now, in groups by domain */
static void deliver_remote(struct worker *w, const char *id, struct entry *e, bool *todo, str *records)
{
  size_t idx[SEND_RCPT_MAX];
  for (size_t i = 0; i < e->env.nrcpt; i++) {
    if (!todo[i]) continue;
    const char *d = domain_of(e->env.rcpt[i]);
    size_t n = 0;
    for (size_t j = i; j < e->env.nrcpt && n < SEND_RCPT_MAX; j++)
      if (todo[j] && !strcasecmp(domain_of(e->env.rcpt[j]), d)) { idx[n++] = j; todo[j] = false; }
    deliver_group(w, id, e, idx, n, d, records);
  }
}

/* the recipients of e in state ('b' bounced, 'p' pending) for a report,
 * their number in *n; NULL when out of memory */
static struct bounce_failure *report_list(const struct entry *e, char state, size_t *n)
{
  struct bounce_failure *f = calloc(e->env.nrcpt ? e->env.nrcpt : 1, sizeof *f);
  *n = 0;
  for (size_t i = 0; f && i < e->env.nrcpt; i++)
    if (e->rcpt[i].state == state)
      f[(*n)++] = (struct bounce_failure){ .rcpt = i, .expired = strstr(e->rcpt[i].reply, "(given up after ") != NULL };
  return f;
}

/* every recipient of e that failed for good, in one bounce (a double
 * bounce, or none, as bounce_kind_of says), queued before the entry goes */
static int bounce(const char *id, const struct entry *e)
{
  size_t n;
  struct bounce_failure *f = report_list(e, 'b', &n);
  char bid[256] = "";
  if (!f) return QQ_NOMEM;
  int r = n ? bounce_commit(e, bounce_kind_of(e), f, n, NULL, bid, sizeof bid) : QQ_OK;
  if (n && r == QQ_OK && bid[0]) {
    fprintf(stderr, "mxgate-send: %s: %zu recipient(s) failed, bounce queued as %s\n", id, n, bid);
    entry_trigger();                                       /* delivered like any other entry */
  } else if (n && r == QQ_OK)
    fprintf(stderr, "mxgate-send: %s: %zu recipient(s) failed; a double bounce that failed, dropped\n", id, n);
  else if (n)
    fprintf(stderr, "mxgate-send: %s: the bounce cannot be queued (exit code %d); tried again\n", id, r);
  free(f);
  return r;
}

/* the delay warning (control/bouncewarn), once per entry: to the sender,
 * for the recipients still pending, queued before its "W" record goes into
 * records (a crash in between warns twice, never not at all) */
static void warn(const struct worker *w, const char *id, const struct entry *e, str *records)
{
  time_t now = time(NULL);
  if (!w->cfg->bouncewarn || e->warned_at || entry_done(e) || now - e->queued_at < w->cfg->bouncewarn) return;
  size_t n;
  struct bounce_failure *f = report_list(e, 'p', &n);
  char bid[256] = "";
  if (!f) return;
  int r = bounce_warn_commit(e, f, n, e->queued_at + w->cfg->lifetime, bid, sizeof bid);
  free(f);
  if (r != QQ_OK) {
    fprintf(stderr, "mxgate-send: %s: the delay warning cannot be queued (exit code %d); tried again\n", id, r);
    return;
  }
  entry_record_warned(records, (long long)now);
  if (!bid[0]) return;                                     /* a bounce itself: never warned about */
  fprintf(stderr, "mxgate-send: %s: %zu recipient(s) still pending after %lld s, delay warning queued as %s\n", id,
          n, (long long)(now - e->queued_at), bid);
  entry_trigger();
}

/* delivers what is due in entry id; the time it is next due, 0 when it is
 * finished (or gone, or set aside) */
static long long deliver_entry(struct worker *w, const char *id)
{
  char path[4096], dir[4096], md[4096];
  entry_path(path, sizeof path, "todo", id);
  entry_path(dir, sizeof dir, "todo", NULL);
  time_t now = time(NULL);
  int fd = entry_lock(path);
  if (fd < 0) return errno == ENOENT ? 0 : errno == ESTALE ? now : now + 10;   /* gone; replaced; --flush has it */
  char first = 0;
  if (pread(fd, &first, 1, 0) == 1 && first == 'F') {       /* the earlier two-file format: rewritten first */
    int c = spool_convert_old(id, path, fd);
    close(fd);
    return c == QQ_OK ? now : now + 3600;
  }
  struct entry e;
  int r = entry_load(fd, &e);
  if (r != QQ_OK) {
    if (r == QQ_READ) spool_set_aside(id, path);
    else fprintf(stderr, "mxgate-send: queue entry %s unreadable, kept\n", id);
    entry_free(&e);
    close(fd);
    return r == QQ_READ ? 0 : now + 3600;
  }
  str records = STR_INIT(64 << 20);
  bool *todo = calloc(e.env.nrcpt, sizeof *todo);
  for (size_t i = 0; todo && i < e.env.nrcpt; i++) {
    struct entry_rcpt *rc = &e.rcpt[i];
    if (rc->state != 'p' || rc->next_try > now) continue;
    enum rcpt_kind k = localmap_find(&w->map, e.env.rcpt[i], md, sizeof md);
    if (k == RCPT_REMOTE) { todo[i] = true; continue; }
    struct hop local = { .name = "localhost" };
    if (k == RCPT_MAILDIR && maildir_deliver(md, &e, e.env.sender, e.env.rcpt[i]) == QQ_OK)
      settle(w, id, &e, i, &local, "MAILDIR", NULL, 'd', "delivered to a Maildir", &records);
    else
      settle(w, id, &e, i, &local, "MAILDIR", NULL, 'p', k == RCPT_MAILDIR ? "451 4.2.0 the Maildir cannot take it"
             : "451 4.2.0 local recipient without a Maildir in control/maildirs", &records);
  }
  if (todo) deliver_remote(w, id, &e, todo, &records);
  free(todo);
  warn(w, id, &e, &records);
  long long next = 0;
  bool all_delivered = true;                               /* then the unlink alone says so: no records to flush */
  for (size_t i = 0; i < e.env.nrcpt; i++) all_delivered &= e.rcpt[i].state == 'd';
  if (all_delivered) {
    if (unlink(path) == 0) durable_dir(dir);               /* a crash before this delivers again: at least once */
  } else if (entry_append(&e, &records, dir) != QQ_OK) {
    fprintf(stderr, "mxgate-send: queue entry %s: its state cannot be written: %s\n", id, strerror(errno));
    next = now + 60;                                       /* delivered again later: at least once */
  } else if (entry_done(&e)) {
    if (bounce(id, &e) != QQ_OK) next = now + 60;          /* the entry stays until its bounce is queued */
    else if (unlink(path) == 0) durable_dir(dir);
  } else
    for (size_t i = 0; i < e.env.nrcpt; i++)
      if (e.rcpt[i].state == 'p' && (!next || e.rcpt[i].next_try < next)) next = e.rcpt[i].next_try ? e.rcpt[i].next_try : now;
  str_free(&records);
  entry_free(&e);
  close(fd);
  return next;
}

void worker_main(const struct send_config *cfg, int sock)
{
  struct worker w = { .cfg = cfg, .map = { STR_INIT(0), STR_INIT(0) }, .slot = -1 };
  char err[256];
  signal(SIGTERM, SIG_IGN);              /* the runner closes our socket: we end after the entry in hand */
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  if (localmap_load(&w.map) != QQ_OK || routes_load(&w.routes) < 0 || !(w.dns = dns_open_env(err, sizeof err))) {
    fprintf(stderr, "mxgate-send: worker cannot start: %s\n", w.dns ? "control/locals, maildirs or smtproutes" : err);
    _exit(111);
  }
  for (;;) {
    struct pollfd p = { .fd = sock, .events = POLLIN };
    int k = poll(&p, 1, w.conn ? 250 : -1);
    if (k == 0) {
      if (w.conn && time(NULL) - w.conn_used > CONN_IDLE_S) drop_conn(&w);
      continue;
    }
    char id[300];
    ssize_t n = recv(sock, id, sizeof id - 1, 0);
    if (n <= 0) break;
    id[n] = 0;
    long long next = deliver_entry(&w, id);
    char answer[400];
    int len = snprintf(answer, sizeof answer, "%s %lld", id, next);
    if (send(sock, answer, (size_t)len, 0) < 0) break;
  }
  drop_conn(&w);
  _exit(0);
}
