/* queue.c -- mxgate-queue's main flow (queue.h): read the message into
 * a new queue entry in queue/tmp (entry.c), read the envelope, then commit:
 * one local recipient straight into its Maildir (the entry is dropped),
 * anything else by sealing the entry, renaming it into queue/todo and one
 * flush, then delivering its local recipients. Signals cannot leave a
 * half message visible: every visible name appears by a rename of a
 * complete file. Nothing is written on stdout (fd 1 is the envelope);
 * errors go to stderr.
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

/* the message from fd 0 into the entry w */
static int read_message(struct entry_writer *w)
{
  char buf[65536];
  int r = entry_create(w);
  if (r != QQ_OK) return r;
  for (;;) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { entry_discard(w); return QQ_READ; }
    if (n == 0) return QQ_OK;
    if (!entry_write(w, buf, (size_t)n)) { entry_discard(w); return QQ_WRITE; }
  }
}

/* one recipient with a Maildir: straight there (a Maildir that cannot
 * take it, e.g. missing, sends the message through the queue instead, so
 * --flush retries it); anything else: commit to the queue, then deliver */
static int commit(const struct localmap *m, struct entry_writer *w, const struct envelope *e)
{
  char md[4096];
  int r = QQ_HOME;
  if (e->nrcpt == 1 && localmap_find(m, e->rcpt[0], md, sizeof md) == RCPT_MAILDIR) {
    struct entry msg = { .fd = w->fd, .msgoff = ENTRY_HEADER, .msglen = w->msglen };
    r = maildir_deliver(md, &msg, e->sender, e->rcpt[0]);
  }
  if (r == QQ_OK || r == QQ_WRITE) { entry_discard(w); return r; }
  if ((r = spool_commit(w, e)) == QQ_OK) {
    close(w->fd);
    spool_deliver(m, w->id);       /* committed: what fails now is retried by --flush */
    entry_trigger();
  }
  return r;
}

static int enqueue(void)
{
  struct envelope e;
  struct entry_writer w;
  struct localmap m = { STR_INIT(0), STR_INIT(0) };
  int r;
  memset(&e, 0, sizeof e);
  if ((r = entry_make_dirs()) != QQ_OK || (r = read_message(&w)) != QQ_OK) return r;
  if ((r = envelope_read(1, &e)) == QQ_OK && (r = localmap_load(&m)) == QQ_OK) r = commit(&m, &w, &e);
  else entry_discard(&w);
  localmap_free(&m);
  envelope_free(&e);
  return r;
}

static int flush(void)
{
  struct localmap m = { STR_INIT(0), STR_INIT(0) };
  int r = entry_make_dirs();
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
  if (argc > 1 && queue_admin_option(argv[1])) return queue_admin(argc, argv);
  if (argc > 1) {
    fprintf(stderr, "usage: mxgate-queue (message on fd 0, envelope on fd 1) | mxgate-queue --flush |\n"
            "       mxgate-queue --list [--json] | --retry ID | --bounce ID | --remove ID\n");
    return QQ_BUG;
  }
  return enqueue();
}
