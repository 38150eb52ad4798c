/* maildir.c -- delivery into a Maildir (maildir(5)) and the file helpers
 * mxgate-queue shares.
 *
 * Delivery writes tmp/NAME (Return-Path and Delivered-To first, as
 * qmail-local does), makes it durable, renames it into new/NAME and makes
 * new/ durable: once new/NAME exists the message is whole, and it counts
 * as delivered only after new/ is on disk. NAME is unique per maildir(5):
 * time.MusecPpidQseq.host. Leftovers in tmp/ older than 36 hours are
 * removed by maildir_clean_tmp() (mxgate-queue --flush).
 */
#include "queue.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int fsync_dir(const char *dir)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int r = fsync(fd);
  close(fd);
  return r;
}

void unique_name(char *buf, size_t cap)
{
  static unsigned seq;
  struct timeval tv;
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  for (char *h = host; *h; h++) if (*h == '/' || *h == ':') *h = '_';
  gettimeofday(&tv, NULL);
  /* the microseconds in six digits: within a second, name order is delivery order */
  snprintf(buf, cap, "%lld.M%06ldP%ldQ%u.%s", (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(), ++seq, host);
}

static bool put(int fd, const char *s)
{
  size_t n = strlen(s);
  return write(fd, s, n) == (ssize_t)n;
}

static int write_errno_code(int e) { return e == ENOSPC || e == EDQUOT || e == EIO || e == EFBIG ? QQ_WRITE : QQ_HOME; }

int maildir_open(const char *maildir, const char *sender, const char *rcpt, struct maildir_file *f)
{
  char name[256];
  unique_name(name, sizeof name);
  f->fd = -1;
  if ((size_t)snprintf(f->tmp, sizeof f->tmp, "%s/tmp/%s", maildir, name) >= sizeof f->tmp ||
      (size_t)snprintf(f->new_, sizeof f->new_, "%s/new/%s", maildir, name) >= sizeof f->new_)
    return QQ_HOME;
  snprintf(f->tmpdir, sizeof f->tmpdir, "%s/tmp", maildir);
  snprintf(f->newdir, sizeof f->newdir, "%s/new", maildir);
  f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (f->fd < 0) return write_errno_code(errno);
  if (!(put(f->fd, "Return-Path: <") && put(f->fd, sender) && put(f->fd, ">\nDelivered-To: ") && put(f->fd, rcpt) &&
        put(f->fd, "\n"))) {
    int e = errno;
    maildir_discard(f);
    return write_errno_code(e);
  }
  return QQ_OK;
}

int maildir_commit(struct maildir_file *f)
{
  bool ok = durable_file(f->fd, f->tmpdir) == 0;
  int e = errno;
  if (close(f->fd) < 0 && ok) { ok = false; e = errno; }
  f->fd = -1;
  if (ok && rename(f->tmp, f->new_) < 0) { ok = false; e = errno; }
  if (!ok) {
    unlink(f->tmp);
    return write_errno_code(e);
  }
  if (durable_dir(f->newdir) < 0) {            /* not known to be durable: not delivered */
    unlink(f->new_);
    return QQ_WRITE;
  }
  return QQ_OK;
}

void maildir_discard(struct maildir_file *f)
{
  if (f->fd >= 0) close(f->fd);
  f->fd = -1;
  unlink(f->tmp);
}

int maildir_deliver(const char *maildir, const struct entry *e, const char *sender, const char *rcpt)
{
  struct maildir_file f;
  int r = maildir_open(maildir, sender, rcpt, &f);
  if (r != QQ_OK) return r;
  if (entry_copy_message(e, f.fd) < 0) {
    int err = errno;
    maildir_discard(&f);
    return write_errno_code(err);
  }
  return maildir_commit(&f);
}

/* removes files in dir older than max_age seconds; how many */
int clean_old_files(const char *dir, long max_age)
{
  char path[4096 + 256];
  DIR *d = opendir(dir);
  struct dirent *de;
  struct stat st;
  int n = 0;
  time_t now = time(NULL);
  while (d && (de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && now - st.st_mtime > max_age && unlink(path) == 0) n++;
  }
  if (d) closedir(d);
  return n;
}

void maildir_clean_tmp(const char *maildir)
{
  char tmp[4096];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s/tmp", maildir) < sizeof tmp) clean_old_files(tmp, TMP_MAX_AGE);
}
