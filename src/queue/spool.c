/* spool.c -- the queue under $MXGATE_HOME/queue: tmp/ (invisible work
 * files), mess/ID (the message), todo/ID (its envelope: the commit point).
 *
 * Commit: mess/ID is written in tmp/, made durable and renamed into mess/
 * (mess/ made durable), then the envelope likewise into todo/ID: once
 * todo/ID exists, its message is whole. An entry is worked on only under
 * an exclusive flock(2) of its todo file, so --flush runs and the
 * delivery right after a commit never handle one entry twice.
 *
 * Delivering an entry: each local recipient with a Maildir gets its copy;
 * a local recipient without one (or whose delivery failed) stays in todo/
 * until the administrator fixes the map -- it is never relayed, since
 * relaying our own domain would loop. With --flush, the other recipients
 * go to $MXGATE_RELAY (default "/usr/sbin/sendmail -oi"), run without a
 * shell as RELAY -f SENDER -- RCPT... (SENDER "<>" for the null sender)
 * with the message on stdin; they leave the entry only when it exits 0.
 * The envelope is rewritten (tmp + rename) with those left, and the
 * entry removed (todo first, then mess) when nobody is left.
 */
#include "queue.h"
#include "control.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RELAY_DEFAULT "/usr/sbin/sendmail -oi"
#define RELAY_WORDS 32

static void qpath(char *out, size_t cap, const char *sub, const char *id)
{
  char rel[512];
  snprintf(rel, sizeof rel, "queue/%s%s%s", sub, id ? "/" : "", id ? id : "");
  control_path(out, cap, rel);
}

static int write_file(const char *path, const void *buf, size_t n)
{
  char dir[4096];
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  snprintf(dir, sizeof dir, "%s", path);
  if (strrchr(dir, '/')) *strrchr(dir, '/') = 0;
  bool ok = write(fd, buf, n) == (ssize_t)n && durable_file(fd, dir) == 0;
  if (close(fd) < 0) ok = false;
  return ok ? 0 : -1;
}

static int err_code(void) { return errno == ENOSPC || errno == EDQUOT || errno == EIO ? QQ_WRITE : QQ_QUEUEDIR; }

int spool_commit(int msgfd, const struct envelope *e, char *id, size_t idcap)
{
  char mess[4096], todo[4096], tmp[4096], dir[4096];
  unique_name(id, idcap);
  qpath(mess, sizeof mess, "mess", id);
  qpath(tmp, sizeof tmp, "tmp", id);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return err_code();
  qpath(dir, sizeof dir, "tmp", NULL);
  bool ok = copy_fd(msgfd, fd) == 0 && durable_file(fd, dir) == 0;
  if (close(fd) < 0) ok = false;
  qpath(dir, sizeof dir, "mess", NULL);
  if (!ok || rename(tmp, mess) < 0 || durable_dir(dir) < 0) { int c = err_code(); unlink(tmp); unlink(mess); return c; }
  strncat(tmp, ".env", sizeof tmp - strlen(tmp) - 1);
  qpath(todo, sizeof todo, "todo", id);
  qpath(dir, sizeof dir, "todo", NULL);
  if (write_file(tmp, e->raw.s, e->raw.len) < 0 || rename(tmp, todo) < 0) {
    int c = err_code(); unlink(tmp); unlink(mess); return c;
  }
  if (durable_dir(dir) < 0) { unlink(todo); unlink(mess); return QQ_WRITE; }   /* not durable: not queued */
  return QQ_OK;
}

/* todo/ID opened and locked, still the file of that name; -1 if another
 * process works on it or it is gone */
static int lock_entry(const char *todo)
{
  struct stat a, b;
  int fd = open(todo, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  if (flock(fd, LOCK_EX | LOCK_NB) < 0 || fstat(fd, &a) < 0 || stat(todo, &b) < 0 ||
      a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
    close(fd);
    return -1;
  }
  return fd;
}

static bool read_all(int fd, str *out)
{
  char buf[8192];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return false;
    if (r == 0) return true;
    if (!str_catb(out, buf, (size_t)r)) return false;
  }
}

/* runs the relay program for the recipients in rcpt; true when it took them */
static bool relay(int msgfd, const char *sender, const char **rcpt, size_t n)
{
  const char *prog = getenv("MXGATE_RELAY");
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s", prog && *prog ? prog : RELAY_DEFAULT);
  char **argv = calloc(n + RELAY_WORDS + 4, sizeof *argv);
  if (!argv) return false;
  size_t k = 0;
  for (char *t = strtok(cmd, " \t"); t && k < RELAY_WORDS; t = strtok(NULL, " \t")) argv[k++] = t;
  if (!k) { free(argv); return false; }
  argv[k++] = "-f"; argv[k++] = (char *)(*sender ? sender : "<>"); argv[k++] = "--";
  for (size_t i = 0; i < n; i++) argv[k++] = (char *)rcpt[i];
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    if (lseek(msgfd, 0, SEEK_SET) < 0 || dup2(msgfd, 0) < 0 || devnull < 0 || dup2(devnull, 1) < 0) _exit(111);
    execvp(argv[0], argv);
    fprintf(stderr, "mxgate-queue: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(111);
  }
  free(argv);
  int st;
  if (pid < 0) return false;
  while (waitpid(pid, &st, 0) < 0) if (errno != EINTR) return false;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void keep(str *left, const char *rcpt) { str_catc(left, 'T'); str_cats(left, rcpt); str_catc(left, 0); }

/* the recipients of e not delivered now, as an envelope, into left */
static void deliver_entry(const struct localmap *m, const char *id, const struct envelope *e, int msgfd, bool relay_too,
                          str *left)
{
  char md[4096];
  const char **remote = calloc(e->nrcpt, sizeof *remote);
  size_t nremote = 0;
  str_catc(left, 'F'); str_cats(left, e->sender); str_catc(left, 0);
  for (size_t i = 0; i < e->nrcpt; i++) {
    enum rcpt_kind k = localmap_find(m, e->rcpt[i], md, sizeof md);
    if (k == RCPT_MAILDIR && maildir_deliver(md, msgfd, e->sender, e->rcpt[i]) == QQ_OK) continue;
    if (k == RCPT_REMOTE && remote) { remote[nremote++] = e->rcpt[i]; continue; }
    keep(left, e->rcpt[i]);                      /* local: kept for the admin and the next --flush */
    if (relay_too)
      fprintf(stderr, "mxgate-queue: %s: %s: %s, kept in the queue\n", id, e->rcpt[i],
              k == RCPT_MAILDIR ? "the Maildir cannot take it" : "local, no Maildir in control/maildirs");
  }
  bool relayed = relay_too && nremote && relay(msgfd, e->sender, remote, nremote);
  if (relay_too && nremote && !relayed)
    fprintf(stderr, "mxgate-queue: %s: relay program failed, %zu recipient(s) kept\n", id, nremote);
  if (!relayed)
    for (size_t i = 0; i < nremote; i++) keep(left, remote[i]);
  str_catc(left, 0);
  free(remote);
}

/* delivers entry id; relay_too: also hand non-local recipients on */
static int process(const struct localmap *m, const char *id, bool relay_too)
{
  char mess[4096], todo[4096], tmp[4096], dir[4096];
  struct envelope e;
  str left = STR_INIT(64 << 20);
  memset(&e, 0, sizeof e);
  e.raw = (str)STR_INIT(64 << 20);
  qpath(mess, sizeof mess, "mess", id);
  qpath(todo, sizeof todo, "todo", id);
  qpath(dir, sizeof dir, "todo", NULL);
  int lock = lock_entry(todo);
  if (lock < 0) return QQ_OK;                                /* someone else has it, or it is done */
  int msgfd = open(mess, O_RDONLY | O_CLOEXEC);
  int code = QQ_OK;
  if (!read_all(lock, &e.raw) || msgfd < 0 || envelope_parse(&e) != QQ_OK) {
    fprintf(stderr, "mxgate-queue: queue entry %s unreadable, kept\n", id);
    code = QQ_READ;
    goto done;
  }
  deliver_entry(m, id, &e, msgfd, relay_too, &left);
  if (left.len == strlen(e.sender) + 3) {                    /* nobody left: the entry is done */
    if (unlink(todo) == 0) { durable_dir(dir); unlink(mess); }
  } else if (left.len != e.raw.len) {                        /* fewer left: rewrite the envelope */
    qpath(tmp, sizeof tmp, "tmp", id);
    strncat(tmp, ".left", sizeof tmp - strlen(tmp) - 1);
    if (write_file(tmp, left.s, left.len) < 0 || rename(tmp, todo) < 0 || durable_dir(dir) < 0) code = QQ_WRITE;
  }
done:
  if (msgfd >= 0) close(msgfd);
  close(lock);
  str_free(&left);
  envelope_free(&e);
  return code;
}

int spool_deliver(const struct localmap *m, const char *id) { return process(m, id, false); }

/* mess/ID without todo/ID: a commit cut short, never acknowledged */
static void clean_orphans(void)
{
  char dir[4096], todo[4096];
  struct stat st;
  qpath(dir, sizeof dir, "mess", NULL);
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    qpath(todo, sizeof todo, "todo", de->d_name);
    if (stat(todo, &st) < 0 && errno == ENOENT) {
      char mess[4096];
      qpath(mess, sizeof mess, "mess", de->d_name);
      if (stat(mess, &st) == 0 && time(NULL) - st.st_mtime > TMP_MAX_AGE && stat(todo, &st) < 0) unlink(mess);
    }
  }
  if (d) closedir(d);
}

int spool_flush(const struct localmap *m)
{
  char dir[4096];
  int worst = QQ_OK;
  qpath(dir, sizeof dir, "todo", NULL);
  DIR *d = opendir(dir);
  struct dirent *de;
  if (!d) return errno == ENOENT ? QQ_OK : QQ_QUEUEDIR;
  while ((de = readdir(d)))
    if (de->d_name[0] != '.') {
      int r = process(m, de->d_name, true);
      if (r != QQ_OK) worst = r;
    }
  closedir(d);
  qpath(dir, sizeof dir, "tmp", NULL);
  clean_old_files(dir, TMP_MAX_AGE);
  clean_orphans();
  localmap_each_maildir(m, maildir_clean_tmp);
  return worst;
}
