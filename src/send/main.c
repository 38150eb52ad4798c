/* main.c -- mxgate-send: delivers what mxgate accepted (mxgate-send(8)).
 *
 * Runs in the foreground under a supervisor (daemontools, systemd),
 * logging on descriptor 2 as mxgate-smtpd does. Its configuration is read
 * once at start; a restart picks up changes.
 */
#include "runner.h"
#include "control.h"
#include "str.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int send_config_load(struct send_config *c)
{
  unsigned long v;
  str s = STR_INIT(4096);
  char dir[4096];
  memset(c, 0, sizeof *c);
  if (control_dir_check(dir, sizeof dir) < 0) {
    fprintf(stderr, "mxgate-send: fatal: cannot read the control directory %s\n", dir);
    return -1;
  }
  c->workers = 20;
  c->per_destination = 10;
  c->lifetime = 604800;
  c->timeout = 1200;
  int r = control_readulong(&v, "concurrencyremote");
  if (r > 0 && v > 0) c->workers = (int)(v > 1000 ? 1000 : v);
  if (r >= 0 && (r = control_readulong(&v, "concurrencydestination")) > 0 && v > 0) c->per_destination = (int)(v > 1000 ? 1000 : v);
  if (r >= 0 && (r = control_readulong(&v, "queuelifetime")) > 0) c->lifetime = (long long)v;
  if (r >= 0 && (r = control_readulong(&v, "timeoutremote")) > 0 && v > 0) c->timeout = (int)v;
  if (r >= 0 && (r = control_readulong(&v, "bouncewarn")) > 0) c->bouncewarn = (long long)v;
  if (r < 0 || control_readline(&s, "helohost", NULL) < 0 || (!s.len && control_readline(&s, "me", "localhost") < 0)) {
    fprintf(stderr, "mxgate-send: fatal: a control file is unreadable or invalid\n");
    str_free(&s);
    return -1;
  }
  snprintf(c->helo, sizeof c->helo, "%.*s", (int)s.len, s.s ? s.s : "");
  str_free(&s);
  static const char *const unread[] = { "authsenders", "domaincerts", "domainips", "qmtproutes" };
  for (size_t i = 0; i < sizeof unread / sizeof unread[0]; i++) {      /* s/qmail's, not mxgate's: said once */
    char rel[64], path[4096];
    snprintf(rel, sizeof rel, "control/%s", unread[i]);
    control_path(path, sizeof path, rel);
    if (access(path, F_OK) == 0)
      fprintf(stderr, "mxgate-send: warning: %s is s/qmail's and mxgate-send does not read it; "
              "see mxgate-send(8), ROUTES\n", rel);
  }
  return 0;
}

int main(int argc, char **argv)
{
  struct send_config cfg;
  if (argc > 1) {
    fprintf(stderr, "usage: MXGATE_HOME=DIR %s (runs in the foreground, logs on descriptor 2)\n", argv[0]);
    return 100;
  }
  if (send_config_load(&cfg) < 0) return 111;
  return runner_main(&cfg);
}
