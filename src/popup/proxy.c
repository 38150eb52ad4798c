/* proxy.c -- a login through the checkprogram, and the session after it.
 *
 * The checkprogram (mxgate-authuser) reads "user\0password\0timestamp\0"
 * on fd 3 and, for a valid login, execs the subprogram (mxgate-pop3d) as
 * that user. The child gets one end of a socketpair as fd 0 and 1, never
 * the client's socket: mxgate-popup relays between the two, so TLS (STLS
 * or implicit) stays in this process and the mail user's programs never
 * hold the server's key. The subprogram's first output ("+OK") is what
 * tells a valid login from a refused one (the child exits silently).
 */
#include "popup.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* client <-> child until the child ends or the connection is idle too
 * long. The child's socket is non-blocking: what the client sent waits in
 * p->in until the child takes it, while the child's output keeps flowing
 * (a client that pipelines many RETRs never blocks both sides). The end of
 * the client's input is passed on (shutdown): the child still answers
 * what came before it, and those answers still reach the client. */
static void relay(struct popup *p, int child)
{
  char buf[16384];
  bool client_done = false, shut = false;
  fcntl(child, F_SETFL, fcntl(child, F_GETFL) | O_NONBLOCK);
  for (;;) {
    size_t pending = io_avail(&p->in);
    if (pending) {
      ssize_t w = write(child, io_peek(&p->in), pending);
      if (w > 0) { io_consume(&p->in, (size_t)w); continue; }
      if (w < 0 && errno != EAGAIN && errno != EINTR) return;
    } else if (client_done && !shut) {
      shutdown(child, SHUT_WR);
      shut = true;
    }
    if (!pending && !client_done && tls_pending(p->tls)) {   /* a TLS record already read: poll would not see it */
      if (io_fill(&p->in) <= 0) client_done = true;
      continue;
    }
    struct pollfd fds[2] = { { .fd = pending || client_done ? -1 : p->in.fd, .events = POLLIN },
                             { .fd = child, .events = (short)(POLLIN | (pending ? POLLOUT : 0)) } };
    int r = poll(fds, 2, p->timeout * 1000);
    if (r == 0) return;                             /* idle too long */
    if (r < 0) { if (errno == EINTR) continue; return; }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(child, buf, sizeof buf);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return;   /* the child's session ended */
      if (n > 0 && (!io_put(&p->out, buf, (size_t)n) || !io_flush(&p->out))) return;
    }
    if (fds[0].revents && io_fill(&p->in) <= 0) client_done = true;
  }
}

/* the child's exit status; a child that has not ended a few seconds after
 * its session is killed (say a mailbox open() that never returns) */
static int reap(pid_t pid)
{
  int st = 0;
  for (int i = 0; i < 100; i++) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return st;
    usleep(50000);
  }
  kill(pid, SIGKILL);
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) { }
  return st;
}

int login(struct popup *p, const char *user, size_t ulen, const char *pass, size_t plen, const char *stamp,
          enum row_id ok)
{
  int sp[2], cred[2];
  if (!p->checkprogram[0] || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) return -1;
  if (pipe2(cred, O_CLOEXEC) < 0) { close(sp[0]); close(sp[1]); return -1; }   /* fd 3 of the child is a dup: kept */
  io_flush(&p->out);
  pid_t pid = fork();
  if (pid < 0) { close(sp[0]); close(sp[1]); close(cred[0]); close(cred[1]); return -1; }
  if (pid == 0) {
    if (dup2(sp[1], 0) < 0 || dup2(sp[1], 1) < 0 || dup2(cred[0], 3) < 0) _exit(111);
    close(cred[1]);
    if (p->logfd != 2) close(p->logfd);             /* the mail user does not write the log */
    signal(SIGPIPE, SIG_DFL);
    execvp(p->checkprogram[0], p->checkprogram);
    _exit(111);
  }
  close(sp[1]); close(cred[0]);
  str c = STR_INIT(2048);
  str_catb(&c, user, ulen); str_catc(&c, 0);
  str_catb(&c, pass, plen); str_catc(&c, 0);
  str_cats(&c, stamp); str_catc(&c, 0);
  signal(SIGPIPE, SIG_IGN);
  bool sent = fd_write_all(cred[1], c.s, c.len);
  explicit_bzero(c.s, c.cap);
  str_free(&c);
  close(cred[1]);
  /* the verdict: the child speaks (a session began) or exits in silence,
   * within POP3TIMEOUT; a checkprogram that takes longer is a failure */
  struct pollfd w = { .fd = sp[0], .events = POLLIN };
  char first[16384];
  ssize_t n = 0;
  int ready;
  while ((ready = poll(&w, 1, p->timeout * 1000)) < 0 && errno == EINTR) { }
  if (ready == 1) n = read(sp[0], first, sizeof first);
  else kill(pid, SIGKILL);
  int verdict;
  if (sent && n > 0) {
    verdict = 1;
    popup_log(p, ok, user, ulen);
    io_put(&p->out, first, (size_t)n);
    io_flush(&p->out);
    relay(p, sp[0]);
  } else verdict = 0;
  close(sp[0]);
  int st = reap(pid);
  if (verdict == 0 && (ready != 1 || !WIFEXITED(st) || WEXITSTATUS(st) == 111 || WEXITSTATUS(st) == 2)) return -1;
  return verdict;
}
