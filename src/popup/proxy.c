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

/* client <-> child until either side ends; first is what the child said first */
static void relay(struct popup *p, int child)
{
  char buf[16384];
  for (;;) {
    if (io_avail(&p->in)) {                         /* read-ahead (pipelined commands) goes first */
      if (!fd_write_all(child, io_peek(&p->in), io_avail(&p->in))) return;
      io_consume(&p->in, io_avail(&p->in));
    }
    if (tls_pending(p->tls)) {                        /* a TLS record already read: poll would not see it */
      if (io_fill(&p->in) <= 0) return;
      continue;
    }
    struct pollfd fds[2] = { { .fd = p->in.fd, .events = POLLIN }, { .fd = child, .events = POLLIN } };
    int r = poll(fds, 2, p->timeout * 1000);
    if (r == 0) return;                             /* idle too long */
    if (r < 0) { if (errno == EINTR) continue; return; }
    if (fds[1].revents) {
      ssize_t n = read(child, buf, sizeof buf);
      if (n <= 0) return;
      if (!io_put(&p->out, buf, (size_t)n) || !io_flush(&p->out)) return;
    }
    if (fds[0].revents) {
      ssize_t n = io_fill(&p->in);
      if (n <= 0) return;
    }
  }
}

int login(struct popup *p, const char *user, size_t ulen, const char *pass, size_t plen, const char *stamp,
          enum row_id ok)
{
  int sp[2], cred[2];
  if (!p->checkprogram[0] || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) return -1;
  if (pipe(cred) < 0) { close(sp[0]); close(sp[1]); return -1; }
  io_flush(&p->out);
  pid_t pid = fork();
  if (pid < 0) return -1;
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
  /* the verdict: the child speaks (a session began) or exits in silence */
  struct pollfd w = { .fd = sp[0], .events = POLLIN };
  char first[16384];
  ssize_t n = 0;
  while (poll(&w, 1, 60000) < 0 && errno == EINTR) { }
  n = read(sp[0], first, sizeof first);
  int verdict;
  if (sent && n > 0) {
    verdict = 1;
    popup_log(p, ok, user, ulen);
    io_put(&p->out, first, (size_t)n);
    io_flush(&p->out);
    relay(p, sp[0]);
  } else verdict = 0;
  close(sp[0]);
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) { }
  if (verdict == 0 && (!WIFEXITED(st) || WEXITSTATUS(st) == 111 || WEXITSTATUS(st) == 2)) return -1;
  return verdict;
}
