/* pool.c -- the parent of mxgate-listen: keeps between min and max
 * workers, adds one whenever all are busy, replaces those that retire
 * (max_use sessions, or a crash), and answers 421 itself when all max
 * workers are busy. SIGHUP: every worker finishes its session and is
 * replaced by one that reads the control files anew. SIGTERM: no new
 * sessions; the running ones finish; then the listener exits.
 */
#include "listen.h"
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got_term, got_hup;
static pid_t committer;

/* the group-commit server; workers' mxgate-queue find it through MXGATE_COMMIT */
static void spawn_committer(struct listen_config *c)
{
  if (!c->commit_sock[0]) return;
  committer = fork();
  if (committer == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    commit_main(c);
  }
}
static void on_term(int sig) { (void)sig; got_term = 1; }
static void on_hup(int sig) { (void)sig; got_hup = 1; }
static void on_chld(int sig) { (void)sig; }

static int spawn(struct listen_config *c, struct pool_shared *sh)
{
  for (int i = 0; i < c->max_workers; i++) {
    if (sh->slots[i].pid) continue;
    sh->slots[i].busy = 0;
    /* signals wait until the worker's own handlers are in (worker_main
     * unblocks them): a TERM in between would find the listener's handler */
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) worker_main(c, sh, i);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) return -1;
    sh->slots[i].pid = pid;
    return 0;
  }
  return -1;
}

static void count(const struct listen_config *c, const struct pool_shared *sh, int *total, int *busy)
{
  *total = *busy = 0;
  for (int i = 0; i < c->max_workers; i++) {
    if (!sh->slots[i].pid) continue;
    (*total)++;
    *busy += sh->slots[i].busy;
  }
}

static void reap(struct listen_config *c, struct pool_shared *sh)
{
  pid_t pid;
  int st;
  while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
    if (pid == committer) { committer = 0; spawn_committer(c); continue; }   /* draining sessions still commit */
    for (int i = 0; i < c->max_workers; i++)
      if (sh->slots[i].pid == pid) { sh->slots[i].pid = 0; sh->slots[i].busy = 0; }
  }
}

static void signal_workers(const struct listen_config *c, const struct pool_shared *sh, int sig)
{
  for (int i = 0; i < c->max_workers; i++)
    if (sh->slots[i].pid) kill(sh->slots[i].pid, sig);
}

/* all workers busy and no more allowed: the parent turns clients away */
static void refuse_overflow(struct listen_config *c)
{
  for (int i = 0; i < c->nlisteners; i++) {
    int fd = accept4(c->listeners[i].fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) continue;
    const char *msg = "421 4.3.2 Too many connections; try again later\r\n";
    if (write(fd, msg, strlen(msg)) < 0) { /* client already gone */ }
    close(fd);
  }
}

int pool_run(struct listen_config *c)
{
  struct pool_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) { perror("mxgate-listen: mmap"); return 111; }
  memset(sh, 0, sizeof *sh);
  struct sigaction term = { .sa_handler = on_term }, hup = { .sa_handler = on_hup }, chld = { .sa_handler = on_chld };
  sigaction(SIGTERM, &term, NULL);
  sigaction(SIGINT, &term, NULL);
  sigaction(SIGHUP, &hup, NULL);
  sigaction(SIGCHLD, &chld, NULL);
  signal(SIGPIPE, SIG_IGN);
  if (c->commit_sock[0]) setenv("MXGATE_COMMIT", c->commit_sock, 1);
  spawn_committer(c);
  for (int i = 0; i < c->min_workers; i++) spawn(c, sh);
  char ready[64];                            /* as tcpserver -v says when it listens */
  int n = snprintf(ready, sizeof ready, "tcpserver: status: 0/%d\n", c->max_workers);
  if (write(2, ready, (size_t)n) < 0) return 111;
  while (!got_term) {
    int total, busy;
    reap(c, sh);
    if (got_hup) { got_hup = 0; signal_workers(c, sh, SIGHUP); }
    count(c, sh, &total, &busy);
    while (!got_term && total < c->min_workers && spawn(c, sh) == 0) total++;
    if (!got_term && busy >= total && total < c->max_workers && spawn(c, sh) == 0) total++;
    bool saturated = busy >= total && total >= c->max_workers;
    struct pollfd p[LISTEN_MAX];
    for (int i = 0; i < c->nlisteners; i++) p[i] = (struct pollfd){ .fd = c->listeners[i].fd, .events = POLLIN };
    /* short sleeps: the pool reacts quickly to load without a message channel */
    int r = poll(p, saturated ? (nfds_t)c->nlisteners : 0, saturated ? 50 : 10);
    if (r > 0 && saturated) {
      usleep(20000);                         /* a worker may free up meanwhile */
      count(c, sh, &total, &busy);
      if (busy >= total) refuse_overflow(c);
    }
  }
  for (int i = 0; i < c->nlisteners; i++) close(c->listeners[i].fd);
  signal_workers(c, sh, SIGTERM);
  for (;;) {
    int total, busy;
    reap(c, sh);
    count(c, sh, &total, &busy);
    if (!total) break;
    usleep(20000);
  }
  if (committer > 0) { kill(committer, SIGUSR1); waitpid(committer, NULL, 0); }
  return 0;
}
