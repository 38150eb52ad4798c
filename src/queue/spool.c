/* spool.c -- the queue under $MXGATE_HOME/queue: tmp/ (entries being
 * written, invisible), todo/ID (one file per queued message: entry.c),
 * bad/ (entries that failed their check, set aside for the administrator).
 *
 * Commit: the entry is sealed in tmp/, renamed into todo/ and made durable
 * with one flush (fsync of the file and of todo/, or one group commit).
 * An entry is worked on only under an exclusive flock(2) of its file, so
 * --flush runs and the delivery right after a commit never handle one
 * entry twice.
 *
 * Delivering an entry: each pending local recipient with a Maildir gets
 * its copy; a local recipient without one (or whose delivery failed)
 * stays pending until the administrator fixes the map -- it is never
 * relayed, since relaying our own domain would loop. With --flush, the
 * other recipients go to $MXGATE_RELAY (default "/usr/sbin/sendmail
 * -oi"), run without a shell as RELAY -f SENDER -- RCPT... (SENDER "<>"
 * for the null sender) with the message on stdin; they are done only when
 * it exits 0. What is done is appended to the entry as state records (one
 * write, made durable), and the entry is removed when nobody is pending.
 *
 * An entry in the format before this one (todo/ID the envelope, mess/ID
 * the message) is rewritten into one file by --flush, atomically (the new
 * file is renamed over todo/ID), and then delivered as any other.
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

static void qpath(char *out, size_t cap, const char *sub, const char *id) { entry_path(out, cap, sub, id); }


int spool_commit(struct entry_writer *w, const struct envelope *e)
{
  char todo[4096];
  int r = entry_seal(w, e->raw.s, e->raw.len);
  if (r == QQ_OK) r = entry_publish(w);
  qpath(todo, sizeof todo, "todo", NULL);
  const char *dirs[] = { todo };
  if (r == QQ_OK && durable_all(&w->fd, 1, dirs, 1, true) < 0) r = QQ_WRITE;   /* not durable: not queued */
  if (r != QQ_OK) entry_discard(w);
  return r;
}

/* runs the relay program for the recipients in rcpt, the message on a
 * pipe; true when it took them */
static bool relay(const struct entry *e, const char *sender, const char **rcpt, size_t n)
{
  const char *prog = getenv("MXGATE_RELAY");
  char cmd[1024];
  int in[2];
  snprintf(cmd, sizeof cmd, "%s", prog && *prog ? prog : RELAY_DEFAULT);
  char **argv = calloc(n + RELAY_WORDS + 4, sizeof *argv);
  if (!argv) return false;
  size_t k = 0;
  for (char *t = strtok(cmd, " \t"); t && k < RELAY_WORDS; t = strtok(NULL, " \t")) argv[k++] = t;
  if (!k || pipe2(in, O_CLOEXEC) < 0) { free(argv); return false; }
  bool null = !*sender || strcmp(sender, BOUNCE_DOUBLE_SENDER) == 0;    /* a double bounce is from <> too */
  argv[k++] = "-f"; argv[k++] = (char *)(null ? "<>" : sender); argv[k++] = "--";
  for (size_t i = 0; i < n; i++) argv[k++] = (char *)rcpt[i];
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    if (dup2(in[0], 0) < 0 || devnull < 0 || dup2(devnull, 1) < 0) _exit(111);
    execvp(argv[0], argv);
    fprintf(stderr, "mxgate-queue: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(111);
  }
  free(argv);
  close(in[0]);
  bool sent = pid > 0 && entry_copy_message(e, in[1]) == 0;   /* a program that stops reading fails below */
  close(in[1]);
  int st;
  if (pid < 0) return false;
  while (waitpid(pid, &st, 0) < 0) if (errno != EINTR) return false;
  return sent && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void mark(str *records, struct entry *e, size_t i, char state, const char *reply)
{
  struct entry_rcpt *r = &e->rcpt[i];
  r->state = state;
  r->attempts++;
  r->next_try = 0;
  snprintf(r->reply, sizeof r->reply, "%s", reply);
  entry_record(records, i, r);
}

/* the pending recipients of e delivered now, as records into records */
static void deliver_entry(const struct localmap *m, const char *id, struct entry *e, bool relay_too, str *records)
{
  char md[4096];
  const struct envelope *env = &e->env;
  const char **remote = calloc(env->nrcpt, sizeof *remote);
  size_t *which = calloc(env->nrcpt, sizeof *which), nremote = 0;
  for (size_t i = 0; i < env->nrcpt; i++) {
    if (e->rcpt[i].state != 'p') continue;
    enum rcpt_kind k = localmap_find(m, env->rcpt[i], md, sizeof md);
    if (k == RCPT_MAILDIR && maildir_deliver(md, e, env->sender, env->rcpt[i]) == QQ_OK) {
      mark(records, e, i, 'd', "delivered to a Maildir");
      continue;
    }
    if (k == RCPT_REMOTE && remote && which) { which[nremote] = i; remote[nremote++] = env->rcpt[i]; continue; }
    if (relay_too)                                  /* local: kept for the admin and the next --flush */
      fprintf(stderr, "mxgate-queue: %s: %s: %s, kept in the queue\n", id, env->rcpt[i],
              k == RCPT_MAILDIR ? "the Maildir cannot take it" : "local, no Maildir in control/maildirs");
  }
  if (relay_too && nremote) {
    if (relay(e, env->sender, remote, nremote))
      for (size_t j = 0; j < nremote; j++) mark(records, e, which[j], 'd', "handed to the relay program");
    else
      fprintf(stderr, "mxgate-queue: %s: relay program failed, %zu recipient(s) kept\n", id, nremote);
  }
  free(remote);
  free(which);
}

/* an entry that is not whole (a crash before its flush) or damaged: set
 * aside in queue/bad/ for the administrator, never delivered in part */
void spool_set_aside(const char *id, const char *todo)
{
  char bad[4096], dir[4096];
  qpath(dir, sizeof dir, "bad", NULL);
  qpath(bad, sizeof bad, "bad", id);
  if ((mkdir(dir, 0700) == 0 || errno == EEXIST) && rename(todo, bad) == 0)
    fprintf(stderr, "mxgate-queue: queue entry %s is not whole (a crash before it was flushed, or damage); "
            "moved to queue/bad\n", id);
  else
    fprintf(stderr, "mxgate-queue: queue entry %s is not whole and cannot be moved to queue/bad: %s\n", id,
            strerror(errno));
}

static bool read_all(int fd, str *out)
{
  char buf[8192];
  if (lseek(fd, 0, SEEK_SET) < 0) return false;
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return false;
    if (r == 0) return true;
    if (!str_catb(out, buf, (size_t)r)) return false;
  }
}

/* todo/ID in the earlier format (locked as lock): rewritten into one
 * entry renamed over it; QQ_OK, or the entry is kept as it is */
int spool_convert_old(const char *id, const char *todo, int lock)
{
  char mess[4096], dir[4096], buf[65536];
  struct envelope env;
  struct entry_writer w;
  memset(&env, 0, sizeof env);
  env.raw = (str)STR_INIT(64 << 20);
  qpath(mess, sizeof mess, "mess", id);
  qpath(dir, sizeof dir, "todo", NULL);
  int msgfd = open(mess, O_RDONLY | O_CLOEXEC), r = QQ_READ;
  if (msgfd >= 0 && read_all(lock, &env.raw) && envelope_parse(&env) == QQ_OK && (r = entry_create(&w)) == QQ_OK) {
    ssize_t n;
    while ((n = read(msgfd, buf, sizeof buf)) > 0 && entry_write(&w, buf, (size_t)n)) {}
    r = n == 0 ? entry_seal(&w, env.raw.s, env.raw.len) : QQ_WRITE;
    snprintf(w.todo, sizeof w.todo, "%s", todo);          /* in place of the old envelope */
    const char *dirs[] = { dir };
    if (r == QQ_OK) r = entry_publish(&w);
    if (r == QQ_OK && durable_all(&w.fd, 1, dirs, 1, true) < 0) r = QQ_WRITE;
    if (r == QQ_OK) { close(w.fd); unlink(mess); }
    else if (!w.published) entry_discard(&w);
    else close(w.fd);                                     /* renamed: whole, kept whatever the flush said */
  }
  if (msgfd >= 0) close(msgfd);
  envelope_free(&env);
  if (r != QQ_OK) fprintf(stderr, "mxgate-queue: queue entry %s (earlier format) unreadable, kept\n", id);
  return r;
}

/* delivers entry id; relay_too: also hand non-local recipients on */
static int process(const struct localmap *m, const char *id, bool relay_too)
{
  char todo[4096], dir[4096];
  struct entry e;
  str records = STR_INIT(64 << 20);
  qpath(todo, sizeof todo, "todo", id);
  qpath(dir, sizeof dir, "todo", NULL);
  int lock = entry_lock(todo);
  if (lock < 0) return QQ_OK;                                /* someone else has it, or it is done */
  char first = 0;
  if (pread(lock, &first, 1, 0) == 1 && first == 'F') {      /* the earlier format */
    int r = relay_too ? spool_convert_old(id, todo, lock) : QQ_OK;
    close(lock);
    return r == QQ_OK && relay_too ? process(m, id, relay_too) : r;
  }
  int code = entry_load(lock, &e);
  if (code == QQ_READ) { spool_set_aside(id, todo); code = QQ_OK; }     /* handled: said on stderr */
  else if (code != QQ_OK) fprintf(stderr, "mxgate-queue: queue entry %s unreadable, kept\n", id);
  else {
    deliver_entry(m, id, &e, relay_too, &records);
    if (entry_done(&e)) {                                    /* nobody left: the entry is done */
      if (unlink(todo) == 0) durable_dir(dir);
    } else if ((code = entry_append(&e, &records, dir)) != QQ_OK)
      fprintf(stderr, "mxgate-queue: queue entry %s: its state cannot be written: %s\n", id, strerror(errno));
  }
  close(lock);
  str_free(&records);
  entry_free(&e);
  return code;
}

int spool_deliver(const struct localmap *m, const char *id) { return process(m, id, false); }

/* mess/ID without todo/ID: a commit of the earlier format cut short */
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
