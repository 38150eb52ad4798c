/* direct.c -- the embedded queue's shortcut for mxgate-listen's workers.
 *
 * Under mxgate-listen the session engine knows the envelope before the
 * message: for a message to one recipient whose Maildir control/maildirs
 * names, the worker writes the message straight into that Maildir's tmp/
 * as it arrives and commits it as maildir_deliver() does (durable file,
 * rename into new/, durable new/, through the listener's group commit).
 * That saves the queue child, the pipe and the work file of every such
 * message; the guarantee is the same: nothing visible before the commit,
 * no 250 before it is durable. Everything else takes the queue. The local
 * map is read once per worker, like the rest of its configuration (a
 * SIGHUP replaces the workers).
 */
#include "queue.h"
#include <stdlib.h>

void *direct_open(const char *sender, const char *rcpt, int *fd)
{
  static struct localmap map;
  static int loaded;                           /* 0 not yet, 1 loaded, -1 unreadable */
  char md[4096];
  if (!loaded) loaded = localmap_load(&map) == QQ_OK ? 1 : -1;
  if (loaded < 0 || localmap_find(&map, rcpt, md, sizeof md) != RCPT_MAILDIR) return NULL;
  struct maildir_file *f = malloc(sizeof *f);
  if (!f) return NULL;
  if (maildir_open(md, sender, rcpt, f) != QQ_OK) {    /* the queue path keeps it, or says why not */
    free(f);
    return NULL;
  }
  *fd = f->fd;
  return f;
}

int direct_commit(void *file)
{
  int r = maildir_commit(file);
  free(file);
  return r;
}

void direct_discard(void *file)
{
  maildir_discard(file);
  free(file);
}
