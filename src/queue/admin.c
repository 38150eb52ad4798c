/* admin.c -- mxgate-queue's options for the administrator
 * (mxgate-queue(8)): --list [--json], --retry ID, --bounce ID, --remove ID.
 *
 * --list reads every entry in queue/todo without a lock (state records
 * are appended one write() each, and one cut short is ignored, so a read
 * never sees half a record); the others take the entry's flock(2), as
 * --flush and the queue runner do, waiting for whoever holds it. Output
 * goes to stdout (--list) and stderr (what was done); every byte that
 * came from a client (addresses, replies) is escaped, so none can add a
 * line or a field.
 *
 * Exit codes: 0 done, 100 no such entry, 111 the entry or the queue
 * cannot be read or written (nothing changed), 81 a wrong command line.
 */
#include "queue.h"
#include "control.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ADMIN_UNKNOWN 100
#define ADMIN_TEMP 111
#define ADMIN_REASON "bounced by the administrator"

/* ---- --list ---- */

/* s as text: control bytes made '?'; in quotes, '"' and '\' escaped */
static void put_text(FILE *out, const char *s, bool quoted)
{
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (quoted && (c == '"' || c == '\\')) fputc('\\', out);
    fputc(c < 32 || c == 127 ? '?' : c, out);
  }
}

/* the length of a valid UTF-8 sequence at p (2..4 bytes), 0 if none */
static size_t utf8_len(const unsigned char *p)
{
  size_t n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : 0;
  if (p[0] >= 0xf5) n = 0;
  for (size_t k = 1; k < n; k++) if ((p[k] & 0xc0) != 0x80) return 0;
  if (n == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0))) return 0;   /* overlong, surrogate */
  if (n == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))) return 0;
  return n;
}

/* s as a JSON string: valid UTF-8 as it is, any other byte as the
 * character of that number (\u00XX, as Latin-1 reads it) */
static void put_json(FILE *out, const char *s)
{
  const unsigned char *p = (const unsigned char *)s;
  fputc('"', out);
  while (*p) {
    size_t n;
    if (*p == '"' || *p == '\\') { fputc('\\', out); fputc(*p++, out); }
    else if (*p < 32 || *p == 127) fprintf(out, "\\u%04x", *p++);
    else if (*p < 128) fputc(*p++, out);
    else if ((n = utf8_len(p))) { fwrite(p, 1, n, out); p += n; }
    else fprintf(out, "\\u%04x", *p++);
  }
  fputc('"', out);
}

static const char *state_word(char c) { return c == 'd' ? "done" : c == 'b' ? "bounced" : "pending"; }

static void list_text(FILE *out, const char *id, const struct entry *e, long long age)
{
  fprintf(out, "%s age=%llds size=%llu from=<", id, age, e->msglen);
  put_text(out, e->env.sender, false);
  fputc('>', out);
  for (size_t i = 0; i < e->env.nrcpt; i++) {
    const struct entry_rcpt *r = &e->rcpt[i];
    fputs(" rcpt=<", out);
    put_text(out, e->env.rcpt[i], false);
    fprintf(out, "> state=%c attempts=%u reply=\"", r->state, r->attempts);
    put_text(out, r->reply, true);
    fputc('"', out);
  }
  fputc('\n', out);
}

static void list_json(FILE *out, const char *id, const struct entry *e, long long queued, long long age)
{
  fputs("{\"id\":", out);
  put_json(out, id);
  fprintf(out, ",\"time\":%lld,\"age\":%lld,\"size\":%llu,\"sender\":", queued, age, e->msglen);
  put_json(out, e->env.sender);
  fputs(",\"recipients\":[", out);
  for (size_t i = 0; i < e->env.nrcpt; i++) {
    const struct entry_rcpt *r = &e->rcpt[i];
    fputs(i ? ",{\"address\":" : "{\"address\":", out);
    put_json(out, e->env.rcpt[i]);
    fprintf(out, ",\"state\":\"%s\",\"attempts\":%u,\"next_try\":%lld,\"reply\":", state_word(r->state), r->attempts,
            r->next_try);
    put_json(out, r->reply);
    fputc('}', out);
  }
  fputs("]}\n", out);
}

/* an entry that cannot be shown: why, in the same format */
static void list_unreadable(FILE *out, const char *id, const char *why, bool json)
{
  if (!json) { fprintf(out, "%s unreadable=\"%s\"\n", id, why); return; }
  fputs("{\"id\":", out);
  put_json(out, id);
  fprintf(out, ",\"unreadable\":\"%s\"}\n", why);
}

static void list_one(const char *id, bool json)
{
  char todo[4096], first = 0;
  struct entry e;
  memset(&e, 0, sizeof e);
  entry_path(todo, sizeof todo, "todo", id);
  int fd = open(todo, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;                                     /* done and removed since the directory was read */
  if (pread(fd, &first, 1, 0) == 1 && first == 'F') list_unreadable(stdout, id, "earlier format", json);
  else if (entry_load(fd, &e) != QQ_OK) list_unreadable(stdout, id, "not whole", json);
  else {
    long long queued = e.queued_at, age = queued ? (long long)time(NULL) - queued : 0;
    if (age < 0) age = 0;
    if (json) list_json(stdout, id, &e, queued, age);
    else list_text(stdout, id, &e, age);
  }
  entry_free(&e);
  close(fd);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* every entry of queue/todo, oldest name first */
static int list(bool json)
{
  char dir[4096];
  size_t n = 0, cap = 0;
  char **ids = NULL;
  entry_path(dir, sizeof dir, "todo", NULL);
  DIR *d = opendir(dir);
  if (!d) {
    if (errno == ENOENT) return 0;
    fprintf(stderr, "mxgate-queue: cannot read %s: %s\n", dir, strerror(errno));
    return ADMIN_TEMP;
  }
  struct dirent *de;
  int r = 0;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    if (n == cap) {
      char **more = realloc(ids, (cap = cap ? 2 * cap : 64) * sizeof *ids);
      if (!more) { r = ADMIN_TEMP; break; }
      ids = more;
    }
    if (!(ids[n] = strdup(de->d_name))) { r = ADMIN_TEMP; break; }
    n++;
  }
  closedir(d);
  if (r == 0) {
    qsort(ids, n, sizeof *ids, by_name);
    for (size_t i = 0; i < n; i++) list_one(ids[i], json);
  } else
    fprintf(stderr, "mxgate-queue: out of memory listing the queue\n");
  for (size_t i = 0; i < n; i++) free(ids[i]);
  free(ids);
  return fflush(stdout) == 0 && r == 0 ? 0 : ADMIN_TEMP;
}

/* ---- one entry, locked ---- */

struct locked {
  char id[256], todo[4096], dir[4096];
  int fd;
  bool loaded;
  struct entry e;
};

/* queue/todo/ID opened and locked (waiting for the lock), loaded when
 * whole; 0, ADMIN_UNKNOWN or ADMIN_TEMP, said on stderr */
static int lock_id(const char *id, struct locked *l)
{
  struct stat a, b;
  memset(l, 0, sizeof *l);
  l->fd = -1;
  if (!*id || *id == '.' || strchr(id, '/') || strlen(id) >= sizeof l->id) {
    fprintf(stderr, "mxgate-queue: %s: no such queue entry\n", id);
    return ADMIN_UNKNOWN;
  }
  snprintf(l->id, sizeof l->id, "%s", id);
  entry_path(l->todo, sizeof l->todo, "todo", id);
  entry_path(l->dir, sizeof l->dir, "todo", NULL);
  for (int tries = 0; tries < 10; tries++) {
    int fd = open(l->todo, O_RDWR | O_APPEND | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) break;
    if (fd < 0 || flock(fd, LOCK_EX) < 0 || fstat(fd, &a) < 0) {
      fprintf(stderr, "mxgate-queue: %s: cannot open and lock the queue entry: %s\n", id, strerror(errno));
      if (fd >= 0) close(fd);
      return ADMIN_TEMP;
    }
    if (stat(l->todo, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
      char first = 0;
      l->fd = fd;
      l->loaded = !(pread(fd, &first, 1, 0) == 1 && first == 'F') && entry_load(fd, &l->e) == QQ_OK;
      if (!l->loaded) entry_free(&l->e);
      return 0;
    }
    close(fd);                                            /* delivered and removed, or replaced: look again */
  }
  fprintf(stderr, "mxgate-queue: %s: no such queue entry\n", id);
  return ADMIN_UNKNOWN;
}

static void unlock_id(struct locked *l)
{
  if (l->loaded) entry_free(&l->e);
  if (l->fd >= 0) close(l->fd);
  l->fd = -1;
}

/* the entry must be whole for what follows; ADMIN_TEMP said when not */
static int need_whole(const struct locked *l)
{
  if (l->loaded) return 0;
  fprintf(stderr, "mxgate-queue: %s: the queue entry is not whole or in the earlier format; "
          "--flush sets it aside or rewrites it, --remove removes it\n", l->id);
  return ADMIN_TEMP;
}

static int remove_entry(struct locked *l)
{
  if (unlink(l->todo) < 0) {
    fprintf(stderr, "mxgate-queue: %s: cannot remove the queue entry: %s\n", l->id, strerror(errno));
    return ADMIN_TEMP;
  }
  durable_dir(l->dir);
  return 0;
}

static size_t count_pending(const struct entry *e)
{
  size_t n = 0;
  for (size_t i = 0; i < e->env.nrcpt; i++) n += e->rcpt[i].state == 'p';
  return n;
}

/* --retry: every pending recipient due now */
static int retry(struct locked *l)
{
  str records = STR_INIT(64 << 20);
  int r = need_whole(l);
  size_t n = 0;
  if (r) return r;
  for (size_t i = 0; i < l->e.env.nrcpt; i++) {
    struct entry_rcpt *p = &l->e.rcpt[i];
    if (p->state != 'p') continue;
    p->next_try = 0;
    entry_record(&records, i, p);
    n++;
  }
  if (entry_append(&l->e, &records, l->dir) != QQ_OK) {
    fprintf(stderr, "mxgate-queue: %s: cannot write the queue entry: %s\n", l->id, strerror(errno));
    r = ADMIN_TEMP;
  } else {
    fprintf(stderr, "mxgate-queue: %s: %zu pending recipient(s) due now\n", l->id, n);
    entry_trigger_id(l->id);                               /* mxgate-send, if it runs, takes it now */
  }
  str_free(&records);
  return r;
}

/* --bounce: a DSN for every pending recipient, then the entry removed */
static int bounce(struct locked *l)
{
  char dsn[256];
  int r = need_whole(l);
  if (r) return r;
  struct entry *e = &l->e;
  size_t n = 0;
  struct bounce_failure *f = calloc(e->env.nrcpt, sizeof *f);
  str records = STR_INIT(64 << 20);
  if (!f) { fprintf(stderr, "mxgate-queue: %s: out of memory\n", l->id); return ADMIN_TEMP; }
  for (size_t i = 0; i < e->env.nrcpt; i++)
    if (e->rcpt[i].state == 'p') f[n++] = (struct bounce_failure){ .rcpt = i };
  enum bounce_kind kind = bounce_kind_of(e);
  int q = bounce_commit(e, kind, f, n, ADMIN_REASON, dsn, sizeof dsn);
  if (q != QQ_OK) {
    fprintf(stderr, "mxgate-queue: %s: cannot queue the bounce (exit code %d); the entry is kept\n", l->id, q);
    r = ADMIN_TEMP;
  } else {
    /* marked first: a crash before the unlink leaves no one to bounce twice */
    for (size_t k = 0; k < n; k++) bounce_mark(&records, e, f[k].rcpt, ADMIN_REASON);
    if (entry_append(e, &records, l->dir) != QQ_OK || (r = remove_entry(l)) != 0) {
      fprintf(stderr, "mxgate-queue: %s: bounce %s queued, but the entry cannot be changed: %s\n", l->id, dsn,
              strerror(errno));
      r = ADMIN_TEMP;
    } else if (*dsn)
      fprintf(stderr, "mxgate-queue: %s: %zu recipient(s) bounced by the administrator, bounce %s queued%s; "
              "entry removed\n", l->id, n, dsn, kind == BOUNCE_DOUBLE ? " (a double bounce)" : "");
    else
      fprintf(stderr, "mxgate-queue: %s: %zu recipient(s) bounced by the administrator, no bounce sent (%s); "
              "entry removed\n", l->id, n, n == 0 ? "nobody was pending" : kind == BOUNCE_DISCARD ?
              "the entry is a double bounce" : "double bounces are off: control/doublebounceto is empty");
  }
  str_free(&records);
  free(f);
  return r;
}

/* --remove: gone, no bounce */
static int remove_id(struct locked *l)
{
  int r = remove_entry(l);
  if (r) return r;
  if (l->loaded)
    fprintf(stderr, "mxgate-queue: %s: removed by the administrator, no bounce; %zu recipient(s) were pending\n",
            l->id, count_pending(&l->e));
  else
    fprintf(stderr, "mxgate-queue: %s: removed by the administrator, no bounce (it was not a whole entry)\n", l->id);
  return 0;
}

static int usage(void)
{
  fprintf(stderr, "usage: mxgate-queue --list [--json] | --retry ID | --bounce ID | --remove ID\n");
  return QQ_BUG;
}

bool queue_admin_option(const char *arg)
{
  return strcmp(arg, "--list") == 0 || strcmp(arg, "--retry") == 0 || strcmp(arg, "--bounce") == 0 ||
         strcmp(arg, "--remove") == 0;
}

int queue_admin(int argc, char **argv)
{
  if (strcmp(argv[1], "--list") == 0) {
    if (argc == 2) return list(false);
    if (argc == 3 && strcmp(argv[2], "--json") == 0) return list(true);
    return usage();
  }
  if (argc != 3) return usage();
  struct locked l;
  int r = lock_id(argv[2], &l);
  if (r == 0) {
    if (strcmp(argv[1], "--retry") == 0) r = retry(&l);
    else if (strcmp(argv[1], "--bounce") == 0) r = bounce(&l);
    else r = remove_id(&l);
  }
  unlock_id(&l);
  return r;
}
