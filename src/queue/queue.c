/* queue.c -- mxgate-queue's main flow (queue.h): read the message into an
 * unlinked work file (O_TMPFILE in queue/tmp: a crash leaves no name at
 * all), read the envelope, then commit: one local recipient straight into
 * its Maildir, anything else through the queue. Signals cannot leave a
 * half message visible: every visible name appears by a rename of a
 * complete, durable file. Nothing is written on stdout (fd 1 is the
 * envelope); errors go to stderr.
 */
#include "queue.h"
#include "control.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ALARM_SECONDS 86400     /* qmail-queue's one-day limit on a stuck client */

static void on_alarm(int sig) { (void)sig; _exit(QQ_TIMEOUT); }

/* where O_TMPFILE is missing (NFS): a named file, unlinked at once */
static int named_work_file(const char *dir)
{
  char name[256], path[4096 + 300];
  unique_name(name, sizeof name);
  snprintf(path, sizeof path, "%s/%s.work", dir, name);
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) unlink(path);
  return fd;
}

/* the message from fd 0 into an unlinked file in queue/tmp */
static int read_message(int *out)
{
  char dir[4096];
  char buf[65536];
  control_path(dir, sizeof dir, "queue/tmp");
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) fd = named_work_file(dir);
  if (fd < 0) return errno == ENOSPC || errno == EDQUOT ? QQ_WRITE : QQ_QUEUEDIR;
  for (;;) {
    ssize_t r = read(0, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { close(fd); return QQ_READ; }
    if (r == 0) break;
    for (ssize_t off = 0; off < r; ) {
      ssize_t w = write(fd, buf + off, (size_t)(r - off));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) { close(fd); return QQ_WRITE; }
      off += w;
    }
  }
  *out = fd;
  return QQ_OK;
}

static int make_dirs(void)
{
  static const char *subs[] = { "queue", "queue/tmp", "queue/mess", "queue/todo" };
  char dir[4096];
  for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) {
    control_path(dir, sizeof dir, subs[i]);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) return QQ_QUEUEDIR;
  }
  return QQ_OK;
}

/* one recipient with a Maildir: straight there (a Maildir that cannot
 * take it, e.g. missing, sends the message through the queue instead, so
 * --flush retries it); anything else: commit to the queue, then deliver */
static int commit(const struct localmap *m, int msgfd, const struct envelope *e)
{
  char md[4096], id[256];
  int r = QQ_HOME;
  if (e->nrcpt == 1 && localmap_find(m, e->rcpt[0], md, sizeof md) == RCPT_MAILDIR)
    r = maildir_deliver(md, msgfd, e->sender, e->rcpt[0]);
  if (r == QQ_OK || r == QQ_WRITE) return r;
  if ((r = spool_commit(msgfd, e, id, sizeof id)) == QQ_OK)
    spool_deliver(m, id);          /* committed: what fails now is retried by --flush */
  return r;
}

static int enqueue(void)
{
  struct envelope e;
  struct localmap m = { STR_INIT(0), STR_INIT(0) };
  int msgfd = -1, r;
  memset(&e, 0, sizeof e);
  if ((r = make_dirs()) != QQ_OK || (r = read_message(&msgfd)) != QQ_OK) return r;
  if ((r = envelope_read(1, &e)) == QQ_OK) {
    if ((r = localmap_load(&m)) == QQ_OK) r = commit(&m, msgfd, &e);
    localmap_free(&m);
  }
  close(msgfd);
  envelope_free(&e);
  return r;
}

static int flush(void)
{
  struct localmap m = { STR_INIT(0), STR_INIT(0) };
  int r = make_dirs();
  if (r == QQ_OK && (r = localmap_load(&m)) == QQ_OK) r = spool_flush(&m);
  localmap_free(&m);
  return r;
}

int queue_main(int argc, char **argv)
{
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, on_alarm);
  alarm(ALARM_SECONDS);
  umask(077);
  if (argc > 1 && strcmp(argv[1], "--flush") == 0) return flush();
  if (argc > 1) {
    fprintf(stderr, "usage: mxgate-queue (message on fd 0, envelope on fd 1) | mxgate-queue --flush\n");
    return QQ_BUG;
  }
  return enqueue();
}
