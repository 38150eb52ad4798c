/* park.c -- the parking lot of mxgate-listen: a client that has not sent
 * its first command costs a file descriptor in the listener, not a worker.
 *
 * A worker greets the client it accepted itself and waits for its first
 * command a moment (PARK_GRACE_MS; only PARK_RUSH_MS when every other
 * worker is busy and more clients wait). If nothing came, it hands the
 * connection to the listener (SCM_RIGHTS over a datagram socket) and is
 * free again, having logged nothing of it. The listener watches the
 * parked connections with epoll and MSG_PEEK: only once a whole first
 * line has arrived (or 1000 bytes, or the client closed) does it hand the
 * connection to an idle worker, over that worker's own socket, and that
 * worker serves the session and logs it, from its "pid ... from" line on
 * (its greeting already sent). A parked connection closed here unserved
 * is logged here as a session of the listener's pid (log_unserved). A
 * client that connects and says nothing, or dribbles its first command,
 * therefore holds no worker. A parked connection silent for timeoutsmtpd
 * since its greeting is closed with the session's own "451 4.4.2
 * Timeout"; when the lot is full the one closest to that goes with a 421;
 * when the listener stops, all get a 421.
 */
#include "listen.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define PEEK_MAX 1000          /* a first "line" this long without LF is handed over all the same */

struct parked {
  int fd;                      /* -1: a free place */
  struct park_note note;       /* its listening socket; when it times out */
  bool ready;                  /* its first command is in: waiting for a worker */
};

struct parking {
  int rx, tx;                  /* datagram socketpair: workers send on tx, the listener reads rx */
  int ep;                      /* epoll: rx and every parked connection */
  int max, count;
  long long last_expiry;
  struct parked *lot;
};

int fd_send(int sock, int fd, const struct park_note *note)
{
  char ctl[CMSG_SPACE(sizeof(int))];
  memset(ctl, 0, sizeof ctl);
  struct iovec iov = { .iov_base = (void *)note, .iov_len = sizeof *note };
  struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
  struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  ssize_t r;
  while ((r = sendmsg(sock, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR) {}
  return r == (ssize_t)sizeof *note ? 0 : -1;
}

int fd_recv(int sock, struct park_note *note)
{
  char ctl[CMSG_SPACE(sizeof(int))];
  struct iovec iov = { .iov_base = note, .iov_len = sizeof *note };
  struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
  ssize_t r;
  while ((r = recvmsg(sock, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {}
  if (r != (ssize_t)sizeof *note) return -1;
  struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
  if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  return fd;
}

struct parking *parking_open(int max)
{
  struct parking *p = calloc(1, sizeof *p);
  int sv[2];
  if (!p || socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0) { free(p); return NULL; }
  int big = 4 << 20;                           /* a burst of parked connections waits here */
  setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  p->rx = sv[0]; p->tx = sv[1];
  p->max = max;
  p->lot = calloc((size_t)max, sizeof *p->lot);
  p->ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0 };
  if (!p->lot || p->ep < 0 || epoll_ctl(p->ep, EPOLL_CTL_ADD, p->rx, &ev) < 0) return NULL;
  for (int i = 0; i < max; i++) p->lot[i].fd = -1;
  return p;
}

int parking_tx(const struct parking *p) { return p->tx; }
int parking_pollfd(const struct parking *p) { return p->ep; }

/* in a child forked from the listener: nothing of the lot stays open there */
void parking_close_in_child(const struct parking *p)
{
  for (int i = 0; i < p->max; i++) if (p->lot[i].fd >= 0) close(p->lot[i].fd);
  close(p->rx);
  close(p->ep);
}

/* closes a parked connection: no worker served it, so it is logged here
 * as a session of the listener's own pid (log_unserved) */
static void leave(struct parking *p, int i, const char *msg)
{
  struct parked *k = &p->lot[i];
  log_unserved(k->fd, (long)getpid());
  if (msg && write(k->fd, msg, strlen(msg)) < 0) { /* the client is gone */ }
  close(k->fd);                                 /* also out of the epoll set */
  k->fd = -1;
  k->ready = false;
  p->count--;
}

static void park(struct parking *p, int fd, const struct park_note *note)
{
  int oldest = -1, place = -1;
  for (int i = 0; i < p->max && place < 0; i++) if (p->lot[i].fd < 0) place = i;
  if (place < 0) {                               /* full: the one closest to its timeout goes */
    for (int i = 0; i < p->max; i++)
      if (oldest < 0 || p->lot[i].note.deadline_ms < p->lot[oldest].note.deadline_ms) oldest = i;
    leave(p, oldest, "421 4.4.2 Too many idle connections; closing connection\r\n");
    place = oldest;
  }
  p->lot[place] = (struct parked){ .fd = fd, .note = *note };
  p->count++;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  /* edge-triggered: a dribbling client wakes the listener once per segment,
   * not in a loop; adding reports data that is there already */
  struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.u64 = (uint64_t)place + 1 };
  if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev) < 0) leave(p, place, NULL);
}

/* has the parked client's first command arrived (or it closed)? */
static void look(struct parking *p, int i)
{
  char buf[PEEK_MAX];
  ssize_t r = recv(p->lot[i].fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (r == 0 || r < 0) { leave(p, i, NULL); return; }   /* gone before its first command */
  if (memchr(buf, '\n', (size_t)r) || r == (ssize_t)sizeof buf) p->lot[i].ready = true;
}

/* a ready connection to an idle worker, reserved (busy) until it serves it */
static void hand_over(struct parking *p, const struct listen_config *c, struct pool_shared *sh, const int *handoff)
{
  int w = 0;
  for (int i = 0; i < p->max && p->count; i++) {
    if (p->lot[i].fd < 0 || !p->lot[i].ready) continue;
    while (w < c->max_workers && (!sh->slots[w].pid || sh->slots[w].busy || sh->slots[w].retiring || handoff[w] < 0)) w++;
    if (w == c->max_workers) return;              /* none idle: the pool grows; the client waits parked */
    sh->slots[w].busy_since = monotonic_ms();
    sh->slots[w].busy = 1;
    if (fd_send(handoff[w], p->lot[i].fd, &p->lot[i].note) < 0) { sh->slots[w].busy = 0; w++; continue; }
    epoll_ctl(p->ep, EPOLL_CTL_DEL, p->lot[i].fd, NULL);
    close(p->lot[i].fd);
    p->lot[i].fd = -1;
    p->lot[i].ready = false;
    p->count--;
  }
}

void parking_run(struct parking *p, const struct listen_config *c, struct pool_shared *sh, const int *handoff)
{
  struct epoll_event ev[256];
  int n;
  while ((n = epoll_wait(p->ep, ev, 256, 0)) > 0) {
    for (int k = 0; k < n; k++) {
      if (ev[k].data.u64 == 0) {                   /* workers parking connections */
        int fd;
        struct park_note note;
        while ((fd = fd_recv(p->rx, &note)) >= 0) park(p, fd, &note);
        continue;
      }
      int i = (int)ev[k].data.u64 - 1;
      if (p->lot[i].fd >= 0) look(p, i);
    }
    if (n < 256) break;
  }
  hand_over(p, c, sh, handoff);
  long long now = monotonic_ms();
  if (now - p->last_expiry < 100) return;         /* ten times a second is enough */
  p->last_expiry = now;
  for (int i = 0; i < p->max; i++)                 /* silent for timeoutsmtpd since the greeting: as a session would */
    if (p->lot[i].fd >= 0 && !p->lot[i].ready && now >= p->lot[i].note.deadline_ms)
      leave(p, i, "451 4.4.2 Timeout; closing connection\r\n");
}

void parking_close_all(struct parking *p, const char *msg)
{
  int fd;
  struct park_note note;
  while ((fd = fd_recv(p->rx, &note)) >= 0) {       /* parked meanwhile, or given back by a worker leaving */
    log_unserved(fd, (long)getpid());
    if (write(fd, msg, strlen(msg)) < 0) { /* the client is gone */ }
    close(fd);
  }
  for (int i = 0; i < p->max; i++) if (p->lot[i].fd >= 0) leave(p, i, msg);
}
