/* durable.c -- making what mxgate-queue wrote durable.
 *
 * Alone, mxgate-queue fsyncs each file and each directory it changed.
 * Under mxgate-listen, MXGATE_COMMIT names the socket of the listener's
 * committer, and a sync becomes a request to it: the committer answers
 * every request that arrived before it started one syncfs(2) of the file
 * system, after that syncfs returned, so messages finishing at the same
 * time share one flush (group commit). A flush that failed is a failure:
 * the message is not acknowledged. A committer that is not there (the
 * listener is restarting it), that closes without an answer or does not
 * answer within COMMIT_TIMEOUT_MS (stopped, hung) is not: a warning naming
 * it is logged and the file is flushed with fsync, as without a committer.
 * A signal does not interrupt the wait (it is held until the answer is in).
 */
#include "queue.h"
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

#define COMMIT_TIMEOUT_MS 10000     /* a syncfs taking longer: the file is flushed alone */

/* the committer did not do it: said once per flush on stderr (the log) */
static void committer_missing(const char *sock, const char *why)
{
  char line[512];
  int n = snprintf(line, sizeof line, "mxgate-queue: pid %ld warning: group committer %s: %s; flushing alone\n",
                   (long)getpid(), sock, why);
  if (n > 0 && write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0) { /* the log is gone */ }
}

/* one group-commit round for the file system holding dir: 0 flushed, -1
 * the flush failed, 1 no committer answered (gone, restarting, hung): the
 * caller flushes alone, so a missing committer never fails a message */
static int group_sync(const char *sock, const char *dir)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  size_t n = strlen(dir);
  if (strlen(sock) >= sizeof sun.sun_path || n > 4000) { committer_missing(sock, "name too long"); return 1; }
  strcpy(sun.sun_path, sock);
  /* signals wait until the answer is in: a reload's SIGHUP to the worker
   * would otherwise interrupt the wait (EINTR) and fail the message */
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  /* non-blocking: a stopped committer's full backlog is EAGAIN, not a wait */
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  char answer = 0, why[160] = "";
  struct pollfd p = { .fd = fd, .events = POLLIN };
  int r = 1;
  if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0)
    snprintf(why, sizeof why, "%s", strerror(errno));
  else if (write(fd, dir, n) != (ssize_t)n || write(fd, "\n", 1) != 1)
    snprintf(why, sizeof why, "request not taken");
  else if (poll(&p, 1, COMMIT_TIMEOUT_MS) != 1)
    snprintf(why, sizeof why, "no answer within %d s", COMMIT_TIMEOUT_MS / 1000);
  else if (read(fd, &answer, 1) != 1)
    snprintf(why, sizeof why, "closed without an answer");
  else r = answer == 'k' ? 0 : -1;
  if (fd >= 0) close(fd);
  sigprocmask(SIG_SETMASK, &old, NULL);
  if (r > 0) committer_missing(sock, why);
  if (r < 0) errno = EIO;
  return r;
}

int durable_file(int fd, const char *dir)
{
  const char *sock = getenv("MXGATE_COMMIT");
  int r = sock && *sock ? group_sync(sock, dir) : 1;
  return r > 0 ? fsync(fd) : r;
}

int durable_dir(const char *dir)
{
  const char *sock = getenv("MXGATE_COMMIT");
  int r = sock && *sock ? group_sync(sock, dir) : 1;
  return r > 0 ? fsync_dir(dir) : r;
}

/* one commit for a step of several files: under mxgate-listen one group
 * commit per file system among dirs (a syncfs flushes the files' data and
 * the directories' names alike); alone, or when the committer does not
 * answer, an fsync of each file, and of each directory when sync_dirs
 * (otherwise dirs only name the files' file systems) */
int durable_all(const int *fds, size_t nfd, const char *const *dirs, size_t ndir, bool sync_dirs)
{
  const char *sock = getenv("MXGATE_COMMIT");
  bool alone = !sock || !*sock;
  dev_t seen[16];
  size_t nseen = 0;
  for (size_t i = 0; i < ndir && !alone; i++) {
    struct stat st;
    if (stat(dirs[i], &st) < 0) return -1;
    bool dup = false;
    for (size_t k = 0; k < nseen; k++) dup |= seen[k] == st.st_dev;
    if (dup) continue;
    if (nseen == sizeof seen / sizeof *seen) { alone = true; break; }
    seen[nseen++] = st.st_dev;
    int r = group_sync(sock, dirs[i]);
    if (r < 0) return -1;
    if (r > 0) alone = true;
  }
  if (!alone) return 0;
  for (size_t i = 0; i < nfd; i++) if (fsync(fds[i]) < 0) return -1;
  for (size_t i = 0; i < ndir && sync_dirs; i++) {
    bool dup = false;
    for (size_t k = 0; k < i; k++) dup |= strcmp(dirs[k], dirs[i]) == 0;
    if (!dup && fsync_dir(dirs[i]) < 0) return -1;
  }
  return 0;
}
