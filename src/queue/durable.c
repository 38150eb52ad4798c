/* durable.c -- making what mxgate-queue wrote durable.
 *
 * Alone, mxgate-queue fsyncs each file and each directory it changed.
 * Under mxgate-listen, MXGATE_COMMIT names the socket of the listener's
 * committer, and a sync becomes a request to it: the committer answers
 * every request that arrived before it started one syncfs(2) of the file
 * system, after that syncfs returned, so messages finishing at the same
 * time share one flush (group commit). No answer, or an error, is a
 * failure: the message is not acknowledged; a signal is not one (it is
 * held until the answer is in).
 */
#include "queue.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define COMMIT_TIMEOUT_MS 60000

/* one group-commit round for the file system holding dir; 0 or -1 */
static int group_sync(const char *sock, const char *dir)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  size_t n = strlen(dir);
  if (strlen(sock) >= sizeof sun.sun_path || n > 4000) { errno = ENAMETOOLONG; return -1; }
  strcpy(sun.sun_path, sock);
  /* signals wait until the answer is in: a reload's SIGHUP to the worker
   * would otherwise interrupt the wait (EINTR) and fail the message */
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  char answer = 0;
  struct pollfd p = { .fd = fd, .events = POLLIN };
  bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0 && write(fd, dir, n) == (ssize_t)n &&
            write(fd, "\n", 1) == 1 && poll(&p, 1, COMMIT_TIMEOUT_MS) == 1 && read(fd, &answer, 1) == 1 && answer == 'k';
  if (fd >= 0) close(fd);
  sigprocmask(SIG_SETMASK, &old, NULL);
  if (!ok) errno = EIO;
  return ok ? 0 : -1;
}

int durable_file(int fd, const char *dir)
{
  const char *sock = getenv("MXGATE_COMMIT");
  return sock && *sock ? group_sync(sock, dir) : fsync(fd);
}

int durable_dir(const char *dir)
{
  const char *sock = getenv("MXGATE_COMMIT");
  if (sock && *sock) return group_sync(sock, dir);
  return fsync_dir(dir);
}
