/* runner.c -- mxgate-send's queue runner: which entry goes to a worker when.
 *
 * The runner keeps every queue entry it knows in a map (its name and
 * whether it waits or is in a worker's hands) and the waiting ones in a
 * heap by the time they are next due: about a hundred bytes an entry, so
 * 100,000 queued messages are some 10 MB. It learns of entries by scanning
 * queue/todo at start and every SCAN_S seconds, and at once when a commit
 * writes a byte into the FIFO queue/trigger (entry_trigger()).
 *
 * Deliveries run in `workers` processes forked at start (no fork per
 * message), each fed one entry name at a time over a socket pair and
 * answering with the time the entry is next due (0: finished). A worker
 * that dies is replaced. SIGTERM: no new entry is handed out; each worker
 * finishes the one in hand and ends, then the runner; a worker still busy
 * after STOP_GRACE_S seconds is killed.
 */
#include "runner.h"
#include "queue.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SCAN_S 60
#define STOP_GRACE_S 10           /* SIGTERM: how long the entries in hand may take */
#define WORKERS_MAX 1000

enum { KNOWN_WAITING = 1, KNOWN_RUNNING = 2 };
struct known { char *id; char state; };
struct due { long long at; char *id; };

struct runner {
  const struct send_config *cfg;
  struct known *map; size_t cap, used;        /* open addressing; used counts slots ever taken */
  struct due *heap; size_t nheap, heapcap;
  struct { pid_t pid; int fd; char *job; } w[WORKERS_MAX];
  int nworkers;
  int trigger;
};

static volatile sig_atomic_t stopping;
static void on_term(int sig) { (void)sig; stopping = 1; }

static size_t hash(const char *s)
{
  size_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static struct known *slot(struct runner *r, const char *id)
{
  for (size_t i = hash(id) & (r->cap - 1);; i = (i + 1) & (r->cap - 1))
    if (!r->map[i].id || !strcmp(r->map[i].id, id)) return &r->map[i];
}

static bool grow_map(struct runner *r)
{
  struct runner old = *r;
  r->cap = r->cap ? r->cap * 2 : 1024;
  r->map = calloc(r->cap, sizeof *r->map);
  if (!r->map) { *r = old; return false; }
  r->used = 0;
  for (size_t i = 0; i < old.cap; i++)
    if (old.map[i].id && old.map[i].state) { *slot(r, old.map[i].id) = old.map[i]; r->used++; }
    else free(old.map[i].id);                  /* forgotten: its name goes with the old table */
  free(old.map);
  return true;
}

static void heap_push(struct runner *r, long long at, char *id)
{
  if (r->nheap == r->heapcap) {
    size_t cap = r->heapcap ? r->heapcap * 2 : 1024;
    struct due *h = realloc(r->heap, cap * sizeof *h);
    if (!h) return;                            /* found again at the next scan */
    r->heap = h; r->heapcap = cap;
  }
  size_t i = r->nheap++;
  for (; i && r->heap[(i - 1) / 2].at > at; i = (i - 1) / 2) r->heap[i] = r->heap[(i - 1) / 2];
  r->heap[i] = (struct due){ at, id };
}

static struct due heap_pop(struct runner *r)
{
  struct due top = r->heap[0], last = r->heap[--r->nheap];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= r->nheap) break;
    if (c + 1 < r->nheap && r->heap[c + 1].at < r->heap[c].at) c++;
    if (r->heap[c].at >= last.at) break;
    r->heap[i] = r->heap[c];
    i = c;
  }
  if (r->nheap) r->heap[i] = last;
  return top;
}

/* an entry seen in queue/todo: waiting, due at once, unless known */
static void learn(struct runner *r, const char *id)
{
  if ((r->used + 1) * 2 > r->cap && !grow_map(r)) return;
  struct known *k = slot(r, id);
  if (k->id && k->state) return;
  if (!k->id) { if (!(k->id = strdup(id))) return; r->used++; }
  k->state = KNOWN_WAITING;
  heap_push(r, 0, k->id);
}

/* "Rid\n" lines among the trigger's bytes (mxgate-queue --retry): that
 * entry due now, if it waits for later */
static void retry_named(struct runner *r, char *buf, size_t n)
{
  buf[n] = 0;
  for (char *p = buf; (p = memchr(p, 'R', (size_t)(buf + n - p))); ) {
    char *nl = memchr(p, '\n', (size_t)(buf + n - p));
    if (!nl) break;
    *nl = 0;
    if (r->cap) {
      struct known *k = slot(r, p + 1);
      if (k->id && k->state == KNOWN_WAITING) heap_push(r, 0, k->id);
    }
    p = nl + 1;
  }
}

static void scan(struct runner *r)
{
  char dir[4096];
  entry_path(dir, sizeof dir, "todo", NULL);
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d)))
    if (de->d_name[0] != '.') learn(r, de->d_name);
  if (d) closedir(d);
}

static bool spawn(struct runner *r, int i)
{
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return false;
  pid_t pid = fork();
  if (pid < 0) { close(sv[0]); close(sv[1]); return false; }
  if (pid == 0) {
    close(sv[0]);
    if (r->trigger >= 0) close(r->trigger);
    for (int k = 0; k < r->nworkers; k++) if (r->w[k].fd >= 0 && k != i) close(r->w[k].fd);
    worker_main(r->cfg, sv[1]);
  }
  close(sv[1]);
  r->w[i].pid = pid;
  r->w[i].fd = sv[0];
  r->w[i].job = NULL;
  return true;
}

/* a worker's answer "ID NEXT" */
static void answer(struct runner *r, int i)
{
  char buf[400];
  ssize_t n = recv(r->w[i].fd, buf, sizeof buf - 1, 0);
  char *job = r->w[i].job;
  if (n <= 0) {                                 /* the worker died: its entry waits a minute */
    close(r->w[i].fd);
    r->w[i].fd = -1;
    waitpid(r->w[i].pid, NULL, 0);
    fprintf(stderr, "mxgate-send: warning: worker %ld ended%s%s; another starts\n", (long)r->w[i].pid,
            job ? " while delivering " : "", job ? job : "");
    if (job) { slot(r, job)->state = KNOWN_WAITING; heap_push(r, time(NULL) + 60, job); }
    r->w[i].job = NULL;
    if (!stopping) spawn(r, i);
    return;
  }
  buf[n] = 0;
  char *sp = strrchr(buf, ' ');
  long long next = sp ? atoll(sp + 1) : 0;
  r->w[i].job = NULL;
  if (!job) return;
  struct known *k = slot(r, job);
  if (next) { k->state = KNOWN_WAITING; heap_push(r, next, job); }
  else k->state = 0;                            /* finished: forgotten (its name freed when the map grows) */
}

static void dispatch(struct runner *r)
{
  long long now = time(NULL);
  for (int i = 0; i < r->nworkers && r->nheap && r->heap[0].at <= now; i++) {
    if (r->w[i].fd < 0 || r->w[i].job) continue;
    struct due d = heap_pop(r);
    struct known *k = slot(r, d.id);
    if (k->state != KNOWN_WAITING || k->id != d.id) { i--; continue; }   /* a stale heap entry */
    if (send(r->w[i].fd, d.id, strlen(d.id), 0) < 0) { heap_push(r, now + 1, d.id); continue; }
    k->state = KNOWN_RUNNING;
    r->w[i].job = d.id;
  }
}

static int open_trigger(void)
{
  char path[4096];
  entry_path(path, sizeof path, "trigger", NULL);
  if (mkfifo(path, 0622) < 0 && errno != EEXIST) return -1;
  chmod(path, 0622);                            /* the sessions' users write it */
  int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);   /* a writer of our own: no POLLHUP when none is left */
  return fd;
}

/* waits STOP_GRACE_S for the workers to finish the entries in hand, then
 * kills the rest: one stuck on a silent next hop would otherwise hold the
 * stop for control/timeoutremote. What a killed worker was delivering is
 * delivered again at the next start (at least once, as after a crash) */
static void stop_workers(struct runner *r)
{
  int left = 0;
  for (int i = 0; i < r->nworkers; i++) left += r->w[i].fd >= 0;
  for (int t = 0; left && t < STOP_GRACE_S * 20; t++) {
    for (int i = 0; i < r->nworkers; i++)
      if (r->w[i].fd >= 0 && waitpid(r->w[i].pid, NULL, WNOHANG) == r->w[i].pid) { r->w[i].fd = -1; left--; }
    if (left) usleep(50000);
  }
  if (left)
    fprintf(stderr, "mxgate-send: %d worker(s) still delivering after %d s, stopped; their entries are delivered "
            "again at the next start\n", left, STOP_GRACE_S);
  for (int i = 0; i < r->nworkers; i++)
    if (r->w[i].fd >= 0) { kill(r->w[i].pid, SIGKILL); waitpid(r->w[i].pid, NULL, 0); r->w[i].fd = -1; }
}

int runner_main(const struct send_config *cfg)
{
  static struct runner r;
  r.cfg = cfg;
  r.nworkers = cfg->workers < 1 ? 1 : cfg->workers > WORKERS_MAX ? WORKERS_MAX : cfg->workers;
  struct sigaction term = { .sa_handler = on_term };
  sigaction(SIGTERM, &term, NULL);
  sigaction(SIGINT, &term, NULL);
  signal(SIGPIPE, SIG_IGN);
  if (entry_make_dirs() != QQ_OK || (r.trigger = open_trigger()) < 0) {
    fprintf(stderr, "mxgate-send: fatal: cannot set up the queue directory or queue/trigger: %s\n", strerror(errno));
    return 111;
  }
  for (int i = 0; i < r.nworkers; i++) r.w[i].fd = -1;
  for (int i = 0; i < r.nworkers; i++)
    if (!spawn(&r, i)) { fprintf(stderr, "mxgate-send: fatal: cannot start workers: %s\n", strerror(errno)); return 111; }
  fprintf(stderr, "mxgate-send: started, %d workers, queue lifetime %lld s\n", r.nworkers, cfg->lifetime);
  time_t last_scan = 0;
  struct pollfd p[WORKERS_MAX + 1];
  while (!stopping) {
    time_t now = time(NULL);
    if (now - last_scan >= SCAN_S) { scan(&r); last_scan = now; }
    dispatch(&r);
    int n = 0;
    p[n++] = (struct pollfd){ .fd = r.trigger, .events = POLLIN };
    for (int i = 0; i < r.nworkers; i++) p[n++] = (struct pollfd){ .fd = r.w[i].fd, .events = POLLIN };
    long long wait = (last_scan + SCAN_S - now) * 1000;
    bool idle = false;
    for (int i = 0; i < r.nworkers; i++) idle |= r.w[i].fd >= 0 && !r.w[i].job;
    if (idle && r.nheap) {
      long long until = (r.heap[0].at - now) * 1000;
      if (until < wait) wait = until < 0 ? 0 : until;
    }
    if (poll(p, (nfds_t)n, (int)(wait > 0 ? wait : 0)) < 0 && errno != EINTR) break;
    if (p[0].revents & POLLIN) {                /* a commit: scan now */
      char buf[4096];
      ssize_t got;
      while ((got = read(r.trigger, buf, sizeof buf - 1)) > 0) retry_named(&r, buf, (size_t)got);
      scan(&r);
      last_scan = time(NULL);
    }
    for (int i = 0; i < r.nworkers; i++)
      if (r.w[i].fd >= 0 && (p[i + 1].revents & (POLLIN | POLLHUP | POLLERR))) answer(&r, i);
  }
  for (int i = 0; i < r.nworkers; i++) if (r.w[i].fd >= 0) close(r.w[i].fd);   /* each ends after its entry */
  stop_workers(&r);
  fprintf(stderr, "mxgate-send: stopped\n");
  return 0;
}
