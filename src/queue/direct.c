/* direct.c -- the embedded queue, in the process that receives the
 * message: mxgate-smtpd under tcpserver and mxgate-listen's workers, when
 * QMAILQUEUE is unset. No queue process, no pipe, no work file.
 *
 * The session engine knows the envelope before the message, so every
 * target is opened before the first byte and written as the message
 * arrives: a Maildir file (in its tmp/, qmail-local's headers first) for
 * each local recipient whose Maildir control/maildirs names, up to
 * DIRECT_MAILDIRS of them, and one queue entry (entry.c) for everyone
 * else. The commit, in this order:
 *
 *   1. the entry is sealed and renamed into queue/todo (whole, or failing
 *      its crc after a power cut: never delivered in part);
 *   2. with Maildir files: their data made durable (one group commit per
 *      file system under mxgate-listen, else an fsync each), then each
 *      renamed into its new/;
 *   3. the new/ directories and queue/todo made durable, the same way.
 *
 * Only then is the message acknowledged: one flush for a queued message,
 * two when it has Maildir copies, whatever the number of recipients. A
 * failure at any step removes what the commit made visible and answers
 * with qmail-queue's exit code; a crash before the end leaves whole files
 * only, and no acknowledgement (a client that sends again may give a
 * recipient a second copy: at least once, never none). Local recipients
 * past DIRECT_MAILDIRS are delivered from the entry right after the
 * commit, as mxgate-queue does.
 *
 * MXGATE_TEST_CRASH=STEP (the crash tests) kills the process with SIGKILL
 * at that step of the commit: sealed, published, synced, renamed,
 * committed. The local map is read once per process (a SIGHUP replaces
 * mxgate-listen's workers).
 */
#include "queue.h"
#include "control.h"
#include "io.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIRECT_MAILDIRS 32       /* Maildir files written at once; more recipients take the entry */

struct direct {
  struct maildir_file *md;     /* nmd of them, room for cap (16 KB each: grown as needed) */
  size_t nmd, cap;
  bool queued;                 /* the entry has recipients */
  bool local_queued;           /* and some are local: delivered from it after the commit */
  struct entry_writer w;
  str env;                     /* the entry's envelope */
};

static void crash_point(const char *step)
{
  static const char *at;
  static bool read;
  if (!read) { at = getenv("MXGATE_TEST_CRASH"); read = true; }
  if (at && strcmp(at, step) == 0) raise(SIGKILL);
}

static struct localmap *local_map(void)
{
  static struct localmap map;
  static int loaded;                           /* 0 not yet, 1 loaded, -1 unreadable */
  if (!loaded) loaded = localmap_load(&map) == QQ_OK ? 1 : -1;
  return loaded > 0 ? &map : NULL;
}

void direct_discard(void *p)
{
  struct direct *d = p;
  for (size_t i = 0; i < d->nmd; i++) maildir_discard(&d->md[i]);
  if (d->queued) entry_discard(&d->w);
  free(d->md);
  str_free(&d->env);
  free(d);
}

void *direct_open(const char *sender, const char *envelope, size_t envlen, int *code)
{
  struct localmap *map = local_map();
  struct direct *d = calloc(1, sizeof *d);
  char md[4096];
  *code = map ? QQ_NOMEM : QQ_CONFIG;
  if (!d || !map) { free(d); return NULL; }
  d->env = (str)STR_INIT(64 << 20);
  str_catc(&d->env, 'F'); str_cats(&d->env, sender); str_catc(&d->env, 0);
  for (size_t i = 0; i < envlen; ) {                     /* "Taddr\0" each */
    const char *rcpt = envelope + i + 1;
    size_t n = strnlen(rcpt, envlen - i - 1);
    i += n + 2;
    enum rcpt_kind k = localmap_find(map, rcpt, md, sizeof md);
    if (k == RCPT_MAILDIR && d->nmd < DIRECT_MAILDIRS) {
      if (d->nmd == d->cap) {                            /* 1, 2, 4 ... DIRECT_MAILDIRS */
        size_t cap = d->cap ? 2 * d->cap : 1;
        if (cap > DIRECT_MAILDIRS) cap = DIRECT_MAILDIRS;
        struct maildir_file *md = realloc(d->md, cap * sizeof *md);
        if (!md) { direct_discard(d); return NULL; }
        d->md = md;
        d->cap = cap;
      }
      if (maildir_open(md, sender, rcpt, &d->md[d->nmd]) == QQ_OK) { d->nmd++; continue; }
    }                                                    /* a Maildir that cannot take it: the queue keeps it */
    if (k != RCPT_REMOTE) d->local_queued = true;
    d->queued = true;
    str_catc(&d->env, 'T'); str_catb(&d->env, rcpt, n); str_catc(&d->env, 0);
  }
  if (!str_catc(&d->env, 0)) { direct_discard(d); return NULL; }
  if (d->queued && (*code = entry_create(&d->w)) != QQ_OK) {
    d->queued = false;
    direct_discard(d);
    return NULL;
  }
  return d;
}

bool direct_write(void *p, const void *buf, size_t n)
{
  struct direct *d = p;
  for (size_t i = 0; i < d->nmd; i++)
    if (!fd_write_all(d->md[i].fd, buf, n)) return false;
  return !d->queued || entry_write(&d->w, buf, n);
}

/* the files' directories for durable_all: each Maildir's `sub`, and todo/ */
static size_t dirs_of(const struct direct *d, bool tmp, const char **dirs, char *todo, size_t cap)
{
  size_t n = 0;
  for (size_t i = 0; i < d->nmd; i++) dirs[n++] = tmp ? d->md[i].tmpdir : d->md[i].newdir;
  if (d->queued) { entry_path(todo, cap, "todo", NULL); dirs[n++] = todo; }
  return n;
}

static int fail(struct direct *d, int code)
{
  for (size_t i = 0; i < d->nmd; i++) if (d->md[i].fd < 0) unlink(d->md[i].new_);   /* renamed: taken back */
  direct_discard(d);
  return code;
}

int direct_commit(void *p)
{
  struct direct *d = p;
  const char *dirs[DIRECT_MAILDIRS + 1];
  int fds[DIRECT_MAILDIRS + 1];
  char todo[4096];
  int r;
  if (d->queued) {
    if ((r = entry_seal(&d->w, d->env.s, d->env.len)) != QQ_OK) return fail(d, r);
    crash_point("sealed");
    if ((r = entry_publish(&d->w)) != QQ_OK) return fail(d, r);
    crash_point("published");
  }
  if (d->nmd) {
    for (size_t i = 0; i < d->nmd; i++) fds[i] = d->md[i].fd;
    size_t ndir = dirs_of(d, true, dirs, todo, sizeof todo);
    if (durable_all(fds, d->nmd, dirs, ndir - d->queued, false) < 0) return fail(d, QQ_WRITE);
    crash_point("synced");
    for (size_t i = 0; i < d->nmd; i++) {
      int c = close(d->md[i].fd);
      d->md[i].fd = -1;
      if (c < 0 || rename(d->md[i].tmp, d->md[i].new_) < 0) {
        int e = errno;
        unlink(d->md[i].tmp);
        for (size_t k = i + 1; k < d->nmd; k++) { close(d->md[k].fd); d->md[k].fd = -1; unlink(d->md[k].tmp); }
        d->nmd = i + 1;
        return fail(d, e == ENOSPC || e == EDQUOT || e == EIO ? QQ_WRITE : QQ_HOME);
      }
      if (i == 0) crash_point("renamed");
    }
  }
  size_t ndir = dirs_of(d, false, dirs, todo, sizeof todo), nfd = 0;
  if (d->queued) fds[nfd++] = d->w.fd;
  if (durable_all(fds, nfd, dirs, ndir, true) < 0) return fail(d, QQ_WRITE);   /* not durable: not accepted */
  crash_point("committed");
  if (d->queued) {
    char id[256];
    snprintf(id, sizeof id, "%s", d->w.id);
    close(d->w.fd);
    d->queued = false;
    if (d->local_queued) spool_deliver(local_map(), id);   /* committed: what fails now stays queued */
    entry_trigger();                                       /* mxgate-send takes the rest */
  }
  d->nmd = 0;
  direct_discard(d);
  return QQ_OK;
}
