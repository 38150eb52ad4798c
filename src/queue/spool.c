/* spool.c -- the queue under $MXGATE_HOME/queue: tmp/ (invisible work
 * files), mess/ID (the message), todo/ID (its envelope: the commit point).
 *
 * A local recipient (domain in control/locals) without an entry in
 * control/maildirs stays in todo/ until the admin adds one; it is never
 * relayed, since relaying our own domain would loop.
 * spool_deliver() delivers a committed message's local recipients and
 * keeps the others; the envelope in todo/ is rewritten (tmp + rename)
 * with what is left, and the entry removed when nothing is. --flush does
 * the same for every entry and gives the non-local recipients to
 * $MXGATE_RELAY (default "/usr/sbin/sendmail -oi"), called as
 * RELAY -f SENDER -- RCPT... with the message on stdin; an entry stays
 * until the relay program exits 0.
 */
#include "queue.h"
#include "control.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TMP_MAX_AGE (36 * 3600)

static void qpath(char *out, size_t cap, const char *sub, const char *id)
{
  char rel[512];
  snprintf(rel, sizeof rel, "queue/%s%s%s", sub, id ? "/" : "", id ? id : "");
  control_path(out, cap, rel);
}

static int write_file(const char *path, const void *buf, size_t n)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  bool ok = write(fd, buf, n) == (ssize_t)n && fsync(fd) == 0;
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
  bool ok = copy_fd(msgfd, fd) == 0 && fsync(fd) == 0;
  if (close(fd) < 0) ok = false;
  qpath(dir, sizeof dir, "mess", NULL);
  if (!ok || rename(tmp, mess) < 0 || fsync_dir(dir) < 0) { int c = err_code(); unlink(tmp); unlink(mess); return c; }
  strncat(tmp, ".env", sizeof tmp - strlen(tmp) - 1);
  qpath(todo, sizeof todo, "todo", id);
  qpath(dir, sizeof dir, "todo", NULL);
  if (write_file(tmp, e->raw.s, e->raw.len) < 0 || rename(tmp, todo) < 0) {
    int c = err_code(); unlink(tmp); unlink(mess); return c;
  }
  if (fsync_dir(dir) < 0) { unlink(todo); unlink(mess); return QQ_WRITE; }   /* not durable: not queued */
  return QQ_OK;
}

/* runs the relay program for the recipients in rcpt; true when it took them */
static bool relay(int msgfd, const char *sender, const char **rcpt, size_t n)
{
  const char *prog = getenv("MXGATE_RELAY");
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s", prog && *prog ? prog : "/usr/sbin/sendmail -oi");
  char **argv = calloc(n + 40, sizeof *argv);
  size_t k = 0;
  for (char *t = strtok(cmd, " \t"); t && k < 32; t = strtok(NULL, " \t")) argv[k++] = t;
  argv[k++] = "-f"; argv[k++] = (char *)sender; argv[k++] = "--";
  for (size_t i = 0; i < n; i++) argv[k++] = (char *)rcpt[i];
  pid_t pid = fork();
  if (pid == 0) {
    if (lseek(msgfd, 0, SEEK_SET) < 0 || dup2(msgfd, 0) < 0) _exit(111);
    execvp(argv[0], argv);
    _exit(111);
  }
  free(argv);
  int st;
  if (pid < 0 || waitpid(pid, &st, 0) < 0) return false;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* delivers entry id; relay_too: also hand non-local recipients on */
static int process(const char *id, bool relay_too)
{
  char mess[4096], todo[4096], tmp[4096], dir[4096], md[4096];
  struct envelope e;
  str left = STR_INIT(64 << 20);
  qpath(mess, sizeof mess, "mess", id);
  qpath(todo, sizeof todo, "todo", id);
  memset(&e, 0, sizeof e);
  e.raw = (str)STR_INIT(64 << 20);
  int r = control_readfile(&e.raw, todo, 64 << 20);
  int msgfd = open(mess, O_RDONLY | O_CLOEXEC);
  if (r <= 0 || msgfd < 0 || envelope_parse(&e) != QQ_OK) {
    if (msgfd >= 0) close(msgfd);
    envelope_free(&e);
    return QQ_READ;
  }
  const char **remote = calloc(e.nrcpt, sizeof *remote);
  size_t nremote = 0;
  str_catc(&left, 'F'); str_cats(&left, e.sender); str_catc(&left, 0);
  for (size_t i = 0; i < e.nrcpt; i++) {
    bool mapped = maildir_of(e.rcpt[i], md, sizeof md);
    if (mapped && maildir_deliver(md, msgfd, e.sender, e.rcpt[i]) == QQ_OK) continue;
    if (!mapped && !local_domain(e.rcpt[i])) { remote[nremote++] = e.rcpt[i]; continue; }
    /* local but failed, or local without a Maildir in control/maildirs: kept for the admin and --flush */
    str_catc(&left, 'T'); str_cats(&left, e.rcpt[i]); str_catc(&left, 0);
  }
  bool relayed = relay_too && nremote && relay(msgfd, e.sender, remote, nremote);
  if (!relayed)
    for (size_t i = 0; i < nremote; i++) { str_catc(&left, 'T'); str_cats(&left, remote[i]); str_catc(&left, 0); }
  str_catc(&left, 0);
  close(msgfd);
  int code = QQ_OK;
  qpath(dir, sizeof dir, "todo", NULL);
  if (left.len == strlen(e.sender) + 3) {                    /* nobody left: the entry is done */
    if (unlink(todo) == 0) { fsync_dir(dir); unlink(mess); }
  } else if (left.len != e.raw.len) {                        /* fewer left: rewrite the envelope */
    qpath(tmp, sizeof tmp, "tmp", id);
    strncat(tmp, ".left", sizeof tmp - strlen(tmp) - 1);
    if (write_file(tmp, left.s, left.len) < 0 || rename(tmp, todo) < 0 || fsync_dir(dir) < 0) code = QQ_WRITE;
  }
  free(remote);
  str_free(&left);
  envelope_free(&e);
  return code;
}

int spool_deliver(const char *id) { return process(id, false); }

static void clean_tmp(void)
{
  char dir[4096], path[4096 + 256];
  qpath(dir, sizeof dir, "tmp", NULL);
  DIR *d = opendir(dir);
  struct dirent *de;
  struct stat st;
  while (d && (de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    if (stat(path, &st) == 0 && time(NULL) - st.st_mtime > TMP_MAX_AGE) unlink(path);
  }
  if (d) closedir(d);
}

int spool_flush(void)
{
  char dir[4096];
  int worst = QQ_OK;
  qpath(dir, sizeof dir, "todo", NULL);
  DIR *d = opendir(dir);
  struct dirent *de;
  if (!d) return errno == ENOENT ? QQ_OK : QQ_QUEUEDIR;
  while ((de = readdir(d)))
    if (de->d_name[0] != '.') {
      int r = process(de->d_name, true);
      if (r != QQ_OK) worst = r;
    }
  closedir(d);
  clean_tmp();
  return worst;
}
