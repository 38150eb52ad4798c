/* main.c -- mxgate-smtpd: one SMTP session on fd 0/1, log on fd 2.
 *
 * With QMAILQUEUE unset, the queue is the embedded one (mxgate-queue's
 * code, linked in) and runs in this process: no fork and no exec per
 * message (see queue.c and src/queue/direct.c). */
#include "smtpd.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static const struct direct_queue embedded = { direct_open, direct_write, direct_commit, direct_discard };

/* one static object, so that the configuration and the session's fields
 * share pages: each page a start writes is a page fault (its name is
 * unique for the link order, src/smtpd/startup.order) */
static struct { struct smtpd_config cfg; struct session s; } smtpd_static;

int main(int argc, char **argv)
{
  struct smtpd_config *cfg = &smtpd_static.cfg;
  struct session *s = &smtpd_static.s;
  (void)argc;
  signal(SIGPIPE, SIG_IGN);
  if (smtpd_config_load(cfg, argv[0]) < 0) {
    fputs("421 4.3.5 Server configuration error; try again later\r\n", stdout);
    fflush(stdout);
    return 1;
  }
  const char *qq = getenv("QMAILQUEUE");
  if (!qq || !*qq) cfg->direct_queue = &embedded;
  session_init_zeroed(s, cfg, 0, 1, 2);                 /* static: zero already */
  s->checkprogram = argv + 1;
  int r = session_run(s);
  session_free(s);
  return r;
}
