/* child.c -- child_wait(): waitpid with a deadline (child.h).
 *
 * The child's pidfd becomes readable when it exits, so the wait is one
 * poll(2) with the time left; without pidfds (kernels before 5.3) the
 * child is polled with waitpid(WNOHANG) every few milliseconds.
 */
#include "child.h"
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* one step of the wait: until pid may have exited, or ms passed */
static void wait_a_little(int pidfd, long long ms)
{
  if (pidfd >= 0) {
    struct pollfd p = { .fd = pidfd, .events = POLLIN };
    poll(&p, 1, ms > 3600000 ? 3600000 : (int)ms);
    return;
  }
  struct timespec ts = { 0, (ms < 5 ? ms : 5) * 1000000L };
  nanosleep(&ts, NULL);
}

int child_wait(pid_t pid, long long timeout_ms, int *status)
{
  long long deadline = now_ms() + timeout_ms;
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  int r = 0;
  for (;;) {
    pid_t w = waitpid(pid, status, WNOHANG);
    if (w == pid) { r = 1; break; }
    if (w < 0 && errno != EINTR) { r = -1; break; }
    long long left = deadline - now_ms();
    if (left <= 0) {
      kill(pid, SIGKILL);
      while (waitpid(pid, status, 0) < 0 && errno == EINTR) {}
      break;
    }
    wait_a_little(pidfd, left);
  }
  if (pidfd >= 0) close(pidfd);
  return r;
}
