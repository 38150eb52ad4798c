/* pool.c -- the parent of mxgate-listen: keeps between min and max
 * workers, adds one whenever all are busy, replaces those that retire
 * (max_use sessions, or a crash), retires workers idle for
 * WORKER_IDLE_RETIRE seconds while there are more than min (and one idle
 * one besides), and answers
 * 421 itself when all max workers are busy. SIGHUP: every worker finishes
 * its session and is replaced by one that reads the control files anew.
 * SIGTERM: every copy of the listening sockets is closed at once (here
 * and in every worker), the running sessions finish, then the listener
 * exits. Workers and the committer get a signal from the kernel when the
 * listener dies (PR_SET_PDEATHSIG), so a killed listener leaves nothing
 * holding its port and can be started again at once.
 */
#include "listen.h"
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got_term, got_hup;
static pid_t committer;

/* what only the listener holds: its end of each worker's handoff socket, the lot */
struct pool_fds {
  int handoff[WORKERS_LIMIT];    /* -1: no worker in the slot */
  struct parking *lot;           /* NULL: no parking (it could not be set up) */
};

long monotonic_seconds(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec;
}

long long monotonic_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool follow_listener(const struct listen_config *c, int sig)
{
  if (prctl(PR_SET_PDEATHSIG, sig) < 0) return false;
  return getppid() == c->listener_pid;             /* it may have died before the prctl */
}

/* the group-commit server; workers' mxgate-queue find it through MXGATE_COMMIT */
static void spawn_committer(struct listen_config *c)
{
  if (!c->commit_sock[0]) return;
  committer = fork();
  if (committer == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    closefrom(3);                        /* the port and the parked clients are the listener's alone */
    if (!follow_listener(c, SIGKILL)) _exit(0);
    commit_main(c);
  }
}
static void on_term(int sig) { (void)sig; got_term = 1; }
static void on_hup(int sig) { (void)sig; got_hup = 1; }
static void on_chld(int sig) { (void)sig; }

static int spawn(struct listen_config *c, struct pool_shared *sh, struct pool_fds *pf)
{
  for (int i = 0; i < c->max_workers; i++) {
    if (sh->slots[i].pid) continue;
    int sv[2] = { -1, -1 };
    if (pf->lot && socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0) sv[0] = sv[1] = -1;
    sh->slots[i].busy = 0;
    sh->slots[i].retiring = 0;
    sh->slots[i].waiting = 0;
    sh->slots[i].idle_since = monotonic_seconds();
    c->park_fd = pf->lot && sv[1] >= 0 ? parking_tx(pf->lot) : -1;
    c->handoff_fd = sv[1];
    /* signals wait until the worker's own handlers are in (worker_main
     * unblocks them): a TERM in between would find the listener's handler */
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
      for (int k = 0; k < c->max_workers; k++) if (pf->handoff[k] >= 0) close(pf->handoff[k]);
      if (sv[0] >= 0) close(sv[0]);
      if (pf->lot) parking_close_in_child(pf->lot);
      worker_main(c, sh, i);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (sv[1] >= 0) close(sv[1]);
    if (pid < 0) { if (sv[0] >= 0) close(sv[0]); return -1; }
    sh->slots[i].pid = pid;
    pf->handoff[i] = sv[0];
    return 0;
  }
  return -1;
}

/* the workers that stay (retiring ones are on their way out) */
static void count(const struct listen_config *c, const struct pool_shared *sh, int *total, int *busy)
{
  *total = *busy = 0;
  for (int i = 0; i < c->max_workers; i++) {
    if (!sh->slots[i].pid || sh->slots[i].retiring) continue;
    (*total)++;
    *busy += sh->slots[i].busy;
  }
}

static void reap(struct listen_config *c, struct pool_shared *sh, struct pool_fds *pf)
{
  pid_t pid;
  int st;
  while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
    if (pid == committer) { committer = 0; spawn_committer(c); continue; }   /* draining sessions still commit */
    for (int i = 0; i < c->max_workers; i++)
      if (sh->slots[i].pid == pid) {
        sh->slots[i].pid = 0; sh->slots[i].busy = 0;
        if (pf->handoff[i] >= 0) close(pf->handoff[i]);
        pf->handoff[i] = -1;
      }
  }
}

static void signal_workers(const struct listen_config *c, const struct pool_shared *sh, int sig)
{
  for (int i = 0; i < c->max_workers; i++)
    if (sh->slots[i].pid) kill(sh->slots[i].pid, sig);
}

/* after a burst: a worker idle for WORKER_IDLE_RETIRE seconds while the
 * pool is above its minimum finishes (SIGHUP: a session it took meanwhile
 * is served first); the pool shrinks back to min */
static void retire_idle(const struct listen_config *c, struct pool_shared *sh, int total, int busy)
{
  long now = monotonic_seconds();
  for (int i = 0; i < c->max_workers && total > c->min_workers && total > busy + 1; i++) {   /* one idle stays ready */
    struct slot *w = &sh->slots[i];
    if (!w->pid || w->busy || w->retiring || now - w->idle_since < WORKER_IDLE_RETIRE) continue;
    w->retiring = 1;
    kill(w->pid, SIGHUP);
    total--;
  }
}

/* every worker in a session that began STUCK_MS ago or more: none will
 * be free soon. Workers that only greet and park a client are busy for
 * moments (or wait for its first command a moment): while they take a
 * burst in, nobody is turned away */
#define STUCK_MS 200
static bool stuck(const struct listen_config *c, const struct pool_shared *sh)
{
  long long now = monotonic_ms();
  for (int i = 0; i < c->max_workers; i++)
    if (sh->slots[i].pid && !sh->slots[i].retiring &&
        (!sh->slots[i].busy || sh->slots[i].waiting || now - sh->slots[i].busy_since < STUCK_MS))
      return false;
  return true;
}

/* all workers busy and no more allowed: the parent turns away every
 * client waiting, as fast as they arrive */
static void refuse_overflow(struct listen_config *c)
{
  for (int i = 0; i < c->nlisteners; i++) {
    int fd;
    while ((fd = accept4(c->listeners[i].fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
      const char *msg = "421 4.3.2 Too many connections; try again later\r\n";
      if (write(fd, msg, strlen(msg)) < 0) { /* client already gone */ }
      close(fd);
    }
  }
}

/* as many parked connections as the file limit allows, raised to its hard limit */
static struct parking *open_lot(const struct listen_config *c)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return NULL;
  if (rl.rlim_cur < rl.rlim_max) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
  long room = (long)(rl.rlim_cur > 1000000 ? 1000000 : rl.rlim_cur) - 256 - 2L * c->max_workers;
  if (room < 64) return NULL;
  return parking_open(room > PARK_MAX ? PARK_MAX : (int)room);
}

int pool_run(struct listen_config *c)
{
  struct pool_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) { perror("mxgate-listen: mmap"); return 111; }
  memset(sh, 0, sizeof *sh);
  c->listener_pid = getpid();
  struct sigaction term = { .sa_handler = on_term }, hup = { .sa_handler = on_hup }, chld = { .sa_handler = on_chld };
  sigaction(SIGTERM, &term, NULL);
  sigaction(SIGINT, &term, NULL);
  sigaction(SIGHUP, &hup, NULL);
  sigaction(SIGCHLD, &chld, NULL);
  signal(SIGPIPE, SIG_IGN);
  if (c->commit_sock[0]) setenv("MXGATE_COMMIT", c->commit_sock, 1);
  static struct pool_fds pf;
  for (int i = 0; i < WORKERS_LIMIT; i++) pf.handoff[i] = -1;
  pf.lot = open_lot(c);
  spawn_committer(c);
  for (int i = 0; i < c->min_workers; i++) spawn(c, sh, &pf);
  char ready[64];                            /* as tcpserver -v says when it listens */
  int n = snprintf(ready, sizeof ready, "tcpserver: status: 0/%d\n", c->max_workers);
  if (write(2, ready, (size_t)n) < 0) return 111;
  while (!got_term) {
    int total, busy;
    reap(c, sh, &pf);
    if (got_hup) { got_hup = 0; signal_workers(c, sh, SIGHUP); }
    count(c, sh, &total, &busy);
    while (!got_term && total < c->min_workers && spawn(c, sh, &pf) == 0) total++;
    if (!got_term && busy >= total && total < c->max_workers && spawn(c, sh, &pf) == 0) total++;
    if (!got_term && busy < total) retire_idle(c, sh, total, busy);
    bool saturated = busy >= total && total >= c->max_workers;
    struct pollfd p[LISTEN_MAX + 1];
    int np = 0;
    if (pf.lot) p[np++] = (struct pollfd){ .fd = parking_pollfd(pf.lot), .events = POLLIN };
    for (int i = 0; saturated && i < c->nlisteners; i++)
      p[np++] = (struct pollfd){ .fd = c->listeners[i].fd, .events = POLLIN };
    /* short sleeps: the pool reacts quickly to load without a message channel */
    int r = poll(p, (nfds_t)np, saturated ? 50 : 10);
    if (pf.lot) parking_run(pf.lot, c, sh, pf.handoff);
    bool waiting = false;
    for (int i = pf.lot ? 1 : 0; r > 0 && i < np; i++) waiting |= (p[i].revents & POLLIN) != 0;
    if (waiting && saturated) {
      usleep(20000);                         /* a worker may free up meanwhile */
      count(c, sh, &total, &busy);
      if (busy >= total && stuck(c, sh)) refuse_overflow(c);
    }
  }
  if (pf.lot) parking_close_all(pf.lot, "421 4.3.2 Service shutting down; try again later\r\n");
  for (int i = 0; i < c->nlisteners; i++) close(c->listeners[i].fd);
  signal_workers(c, sh, SIGTERM);
  for (;;) {
    int total, busy;
    reap(c, sh, &pf);
    count(c, sh, &total, &busy);
    if (!total) break;
    usleep(20000);
  }
  if (committer > 0) { kill(committer, SIGUSR1); waitpid(committer, NULL, 0); }
  return 0;
}
