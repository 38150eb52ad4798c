/* scan_qhpsi.c -- virus scanning with an external scanner command (QHPSI).
 *
 * As in s/qmail, QHPSI names a scanner run on the message file; exit code
 * 0 is clean, 1 infected, anything else (or no exit within QHPSI_TIMEOUT
 * seconds) a fault. No shell is involved: QHPSI is split on blanks into
 * the argument vector, the words of QHPSIARG1..QHPSIARG9 follow, and the
 * message file's path comes in place of a word "%s", else last. The spool
 * file data.c made has no name (O_TMPFILE), and scanners skip symlinks
 * such as /dev/fd/N (clamdscan says "OK" for them!), so for the scan it is
 * linked as "message" into a new private directory beside it (mode 0700:
 * a scanner daemon of another user needs the descriptor, e.g. clamdscan
 * --fdpass) and unlinked after. The message is the scanner's standard
 * input as well; its output goes to /dev/null, so it can neither reach the
 * client nor break a log line. The row's detail is the scanner's name
 * (argv[0] without its directory).
 */
#include "smtpd.h"
#include "content.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QHPSI_ARGS 40

/* words of QHPSI and QHPSIARGn into argv (pointing into buf) */
static int split_command(const char *command, char *file, char *buf, size_t cap, char **argv)
{
  int argc = 0;
  size_t used = 0;
  bool file_placed = false;
  for (int k = 0; k <= 9; k++) {
    char var[24];
    snprintf(var, sizeof var, "QHPSIARG%d", k);
    const char *src = k == 0 ? command : getenv(var);
    if (!src) continue;
    size_t l = strlen(src);
    if (used + l + 1 > cap) return -1;
    char *w = memcpy(buf + used, src, l + 1);
    used += l + 1;
    for (char *save = NULL, *t = strtok_r(w, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
      if (argc >= QHPSI_ARGS - 2) return -1;
      if (strcmp(t, "%s") == 0) { t = file; file_placed = true; }
      argv[argc++] = t;
    }
  }
  if (argc == 0) return -1;
  if (!file_placed) argv[argc++] = file;
  argv[argc] = NULL;
  return argc;
}

static void child(char **argv, int spoolfd, int errfd)
{
  int null = open("/dev/null", O_RDWR);
  if (null < 0 || dup2(spoolfd, 0) < 0 || lseek(0, 0, SEEK_SET) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
    _exit(111);
  signal(SIGPIPE, SIG_DFL);
  execvp(argv[0], argv);
  int e = errno;
  if (write(errfd, &e, sizeof e) < 0) { /* the parent sees the exit code */ }
  _exit(111);
}

/* the child's wait status, or -1 when it ran past the timeout (killed) */
static int wait_scanner(pid_t pid, int timeout)
{
  struct timespec step = { 0, 2000000 };
  long waited_ms = 0;
  int st;
  for (;;) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return st;
    if (r < 0 && errno != EINTR) return -1;
    if (waited_ms >= (long)timeout * 1000) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
      return -1;
    }
    nanosleep(&step, NULL);
    waited_ms += step.tv_nsec / 1000000;
    if (step.tv_nsec < 50000000) step.tv_nsec *= 2;
  }
}

/* dir/message: a name for the unnamed spool file, in a new private dir */
static bool name_spool(int spoolfd, char *dir, size_t dcap, char *file, size_t fcap)
{
  const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  char proc[64];
  if ((size_t)snprintf(dir, dcap, "%s/mxgate-qhpsi-XXXXXX", tmp) >= dcap || !mkdtemp(dir)) return false;
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", spoolfd);
  if ((size_t)snprintf(file, fcap, "%s/message", dir) < fcap &&
      linkat(AT_FDCWD, proc, AT_FDCWD, file, AT_SYMLINK_FOLLOW) == 0)
    return true;
  int e = errno;
  rmdir(dir);
  errno = e;
  return false;
}

/* the scanner's verdict on the named message */
static int run_scanner(char **argv, int spoolfd, int timeout, char *name, size_t cap)
{
  const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
  if (!*base) base = "AV scanner";
  int errpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) < 0) { snprintf(name, cap, "QHPSI: %s", strerror(errno)); return -1; }
  pid_t pid = fork();
  if (pid < 0) {
    close(errpipe[0]); close(errpipe[1]);
    snprintf(name, cap, "QHPSI: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) child(argv, spoolfd, errpipe[1]);
  close(errpipe[1]);
  int st = wait_scanner(pid, timeout), e = 0;
  bool exec_failed = read(errpipe[0], &e, sizeof e) == (ssize_t)sizeof e;
  close(errpipe[0]);
  if (exec_failed) { snprintf(name, cap, "QHPSI: cannot run %s: %s", argv[0], strerror(e)); return -1; }
  if (st < 0) { snprintf(name, cap, "QHPSI: %s gave no answer within %d s", base, timeout); return -1; }
  if (WIFEXITED(st) && WEXITSTATUS(st) <= 1) {
    snprintf(name, cap, "%s", base);
    return WEXITSTATUS(st);
  }
  if (WIFEXITED(st)) snprintf(name, cap, "QHPSI: %s exited %d", base, WEXITSTATUS(st));
  else snprintf(name, cap, "QHPSI: %s killed by signal %d", base, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  return -1;
}

int qhpsi_scan(const char *command, int spoolfd, int timeout, char *name, size_t cap)
{
  char buf[4096], dir[4096], file[4200], *argv[QHPSI_ARGS];
  if (split_command(command, file, buf, sizeof buf, argv) < 0) {
    snprintf(name, cap, "QHPSI: unusable command");
    return -1;
  }
  if (!name_spool(spoolfd, dir, sizeof dir, file, sizeof file)) {
    snprintf(name, cap, "QHPSI: cannot name the message file: %s", strerror(errno));
    return -1;
  }
  int r = run_scanner(argv, spoolfd, timeout, name, cap);
  unlink(file);
  rmdir(dir);
  return r;
}
