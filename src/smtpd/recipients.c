/* recipients.c -- control/recipients: is this recipient known?
 *
 * Each line names a source for a domain, tried in order:
 *   domain:path.cdb    keys ":" + lower-cased address (fastforward style);
 *                      a ":@domain" key accepts every address (catch-all)
 *   domain|prog args   checkpassword-style: prog reads "addr\0\0\0" on fd 3,
 *                      exit 0 known, 1 unknown, anything else a failure
 *   !domain            every address at domain passes (wildcard)
 *   !*                 every address passes
 *   path.cdb           (legacy line, no domain) a cdb for every domain
 * "*" as the domain of a cdb or program line matches every domain. A
 * recipient is refused when at least one line applies to its domain and
 * no applying source knows it; when no line applies, rcpthosts decided.
 * Returns 1 known (r->accept names the row), 0 unknown, -1 a source failed.
 */
#include "smtpd.h"
#include "control.h"
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROG_ARGS 32

static bool domain_applies(const char *d, size_t dn, const char *dom, size_t domlen)
{
  return (dn == 1 && d[0] == '*') || str_equal_nocase(d, dn, dom, domlen);
}

static int lookup_cdb(const char *path, const char *addr, size_t len, const char *dom, size_t domlen, enum row_id *row)
{
  struct cdbx c;
  char key[ADDR_MAX + 4];
  if (cdbx_open(&c, path) <= 0) {                      /* listed but missing: a setup error */
    fprintf(stderr, "mxgate-smtpd: cannot open recipients cdb %s\n", path);
    return -1;
  }
  key[0] = ':';
  for (size_t i = 0; i < len && i < ADDR_MAX; i++)
    key[i + 1] = (char)(addr[i] >= 'A' && addr[i] <= 'Z' ? addr[i] + 32 : addr[i]);
  int found = cdbx_find(&c, key, len + 1, NULL);
  if (found == 1) *row = ROW_RCPT_CDB;
  else if (dom) {
    key[1] = '@';
    for (size_t i = 0; i < domlen; i++)
      key[i + 2] = (char)(dom[i] >= 'A' && dom[i] <= 'Z' ? dom[i] + 32 : dom[i]);
    found = cdbx_find(&c, key, domlen + 2, NULL);
    if (found == 1) *row = ROW_RCPT_WILD;
  }
  cdbx_close(&c);
  return found;
}

/* run "prog args" with addr\0\0\0 on fd 3 */
static int lookup_program(char *cmdline, const char *addr, size_t len)
{
  char *argv[PROG_ARGS + 1];
  int argc = 0;
  for (char *tok = strtok(cmdline, " \t"); tok && argc < PROG_ARGS; tok = strtok(NULL, " \t"))
    argv[argc++] = tok;
  argv[argc] = NULL;
  if (!argc) return -1;
  int pi[2];
  if (pipe(pi) < 0) return -1;
  pid_t pid = fork();
  if (pid < 0) { close(pi[0]); close(pi[1]); return -1; }
  if (pid == 0) {
    close(pi[1]);
    if (dup2(pi[0], 3) < 0) _exit(111);
    if (pi[0] != 3) close(pi[0]);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) { dup2(devnull, 0); dup2(devnull, 1); }
    signal(SIGPIPE, SIG_DFL);
    execvp(argv[0], argv);
    _exit(111);
  }
  close(pi[0]);
  void (*old)(int) = signal(SIGPIPE, SIG_IGN);
  bool ok = write(pi[1], addr, len) == (ssize_t)len && write(pi[1], "\0\0\0", 3) == 3;
  close(pi[1]);
  signal(SIGPIPE, old);
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return -1;
  if (!WIFEXITED(st)) return -1;
  if (WEXITSTATUS(st) == 0) return ok ? 1 : -1;
  if (WEXITSTATUS(st) == 1) return 0;
  return -1;
}

int recipients_check(struct session *s, struct rcpt *r)
{
  const char *addr = r->addr.s;
  size_t len = r->addr.len;
  const char *dom = NULL;
  size_t domlen = 0;
  bool applied = false;
  addr_domain(addr, len, &dom, &domlen);
  for (const char *l = NULL; (l = control_next(&s->cfg->recipients, l)); ) {
    size_t ln = strlen(l);
    enum row_id row = ROW_RCPT_CDB;
    int found;
    if (l[0] == '!') {
      if (!domain_applies(l + 1, ln - 1, dom ? dom : "", dom ? domlen : 0)) continue;
      r->accept = ROW_RCPT_WILD;
      return 1;
    }
    const char *sep = strpbrk(l, ":|");
    if (!sep) {                                            /* legacy: a cdb for all */
      found = lookup_cdb(l, addr, len, dom, domlen, &row);
    } else {
      if (!dom || !domain_applies(l, (size_t)(sep - l), dom, domlen)) continue;
      if (*sep == ':') found = lookup_cdb(sep + 1, addr, len, dom, domlen, &row);
      else {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "%s", sep + 1);
        found = lookup_program(cmd, addr, len);
        row = ROW_RCPT_PAM;
      }
    }
    applied = true;
    if (found < 0) return -1;
    if (found == 1) { r->accept = row; return 1; }
  }
  if (applied) return 0;
  r->accept = ROW_RCPT_RCPTHOSTS;
  return 1;
}
