/* commit.c -- the committer of mxgate-listen: group commit for the
 * mxgate-queue processes of its workers (see src/queue/durable.c).
 *
 * Clients connect to a unix socket and send the path of a directory they
 * wrote to, ending in a newline. The committer collects every request that
 * has arrived, runs syncfs(2) once for each file system among them, and
 * then answers each client "k" (or "e" when the sync failed). Requests that
 * arrive while a sync runs wait for the next one; so a client is answered
 * only after a sync that began after its data was written, and all the
 * messages that finished meanwhile share that one flush.
 */
#include "listen.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CLIENTS_MAX 1024

struct client {
  int fd; size_t len; char path[4097]; bool ready;
  dev_t dev; bool ok, done;       /* this round: its file system, and whether a flush of it succeeded */
};

/* the socket, for the workers' user alone (every request costs a flush) */
static int listen_unix(const struct listen_config *c)
{
  const char *path = c->commit_sock;
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  if (strlen(path) >= sizeof sun.sun_path) return -1;
  strcpy(sun.sun_path, path);
  unlink(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 || chmod(path, 0600) < 0 ||
      (c->drop_privileges && chown(path, c->uid, c->gid) < 0) || listen(fd, 1024) < 0)
    return -1;
  return fd;
}

/* one round: a syncfs per distinct file system of the ready clients, then
 * the answers. Each client is answered for its own file system: a request
 * naming a directory that is gone fails that request, not the round */
static void commit_round(struct client *c, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (!c[i].ready) continue;
    struct stat st;
    c[i].ok = stat(c[i].path, &st) == 0;
    c[i].dev = c[i].ok ? st.st_dev : 0;
    c[i].done = !c[i].ok;
  }
  for (size_t i = 0; i < n; i++) {
    if (!c[i].ready || c[i].done) continue;
    int fd = open(c[i].path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) { c[i].ok = false; c[i].done = true; continue; }     /* the next client of its file system tries */
    bool synced = syncfs(fd) == 0;
    close(fd);
    for (size_t j = i; j < n; j++)
      if (c[j].ready && !c[j].done && c[j].dev == c[i].dev) { c[j].ok = synced; c[j].done = true; }
  }
  for (size_t i = 0; i < n; i++) {
    if (!c[i].ready || c[i].fd < 0) continue;
    if (write(c[i].fd, c[i].ok ? "k" : "e", 1) < 0) { /* the client is gone: nothing to tell */ }
    close(c[i].fd);
    c[i].fd = -1;
  }
}

void commit_main(const struct listen_config *cfg)
{
  const char *sockpath = cfg->commit_sock;
  static struct client c[CLIENTS_MAX];
  static struct pollfd p[CLIENTS_MAX + 1];
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  /* a TERM sent to the whole service (systemd's default stop) must not end
   * the committer before the workers' last sessions: the listener ends it
   * with SIGUSR1 once no worker is left */
  signal(SIGTERM, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGUSR1, SIG_DFL);
  signal(SIGCHLD, SIG_DFL);
  int lfd = listen_unix(cfg);
  if (lfd < 0) { fprintf(stderr, "mxgate-listen: committer cannot listen on %s: %s\n", sockpath, strerror(errno)); _exit(111); }
  char pidfile[300];                           /* for the administrator (and the crash test) */
  snprintf(pidfile, sizeof pidfile, "%s.pid", sockpath);
  FILE *pf = fopen(pidfile, "w");
  if (pf) { fprintf(pf, "%ld\n", (long)getpid()); fclose(pf); }
  size_t n = 0;
  for (;;) {
    p[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
    for (size_t i = 0; i < n; i++) p[i + 1] = (struct pollfd){ .fd = c[i].fd, .events = POLLIN };
    if (poll(p, n + 1, -1) < 0 && errno != EINTR) _exit(111);
    for (size_t i = 0; i < n; i++) {                        /* requests in */
      if (!(p[i + 1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t r = read(c[i].fd, c[i].path + c[i].len, sizeof c[i].path - 1 - c[i].len);
      if (r <= 0) { close(c[i].fd); c[i].fd = -1; continue; }
      c[i].len += (size_t)r;
      char *nl = memchr(c[i].path, '\n', c[i].len);
      if (nl) { *nl = 0; c[i].ready = true; }
      else if (c[i].len == sizeof c[i].path - 1) { close(c[i].fd); c[i].fd = -1; }
    }
    while (n < CLIENTS_MAX) {                                /* new clients */
      int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
      if (fd < 0) break;
      c[n++] = (struct client){ .fd = fd };
    }
    size_t ready = 0;
    for (size_t i = 0; i < n; i++) ready += c[i].fd >= 0 && c[i].ready;
    if (ready) commit_round(c, n);
    size_t k = 0;                                            /* compact */
    for (size_t i = 0; i < n; i++) if (c[i].fd >= 0) c[k++] = c[i];
    n = k;
  }
}
