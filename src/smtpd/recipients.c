/* recipients.c -- control/recipients: is this recipient known?
 *
 * s/qmail's RECIPIENTS check, as its README.recipients, qmail-smtpd(8) and
 * recipients.c describe it (docs/decisions.md, "control/recipients").
 * Asked only for clients that are neither relay clients nor authenticated,
 * after rcpthosts. Each line names a source, tried in order:
 *   domain:path.cdb    the domain and every subdomain (*.domain)
 *   @domain:path.cdb   that domain only
 *   *:path.cdb         every domain
 *   domain|prog args   (also @domain|, *|) checkpassword-style program:
 *                      reads "addr\0\0\0" on fd 3, exits 0 known, 1 unknown
 *   !domain            every address at exactly that domain is known
 *   !*                 passes domains no earlier line has met
 *   path.cdb           legacy: a cdb for domains no earlier line has met
 * A cdb line or program line "meets" the domains it applies to; the legacy
 * and "!" lines meet none. A cdb holds ":" + lower-cased address keys
 * (fastforward style); a ":@domain" key accepts every address at the
 * domain (mxgate's addition). An address with an extension, "foo-bar@d",
 * is also looked up as "foo-@d" (key ":foo-@d"; the program is asked again
 * with it). An address without a domain is looked up as "user@localhost".
 * Fail-closed: a recipient no line knows is refused, "!*" aside; only when
 * control/recipients does not exist does rcpthosts alone decide.
 * Relative paths of cdbs and programs are relative to $MXGATE_HOME, and a
 * program runs there, as s/qmail's run in the qmail home.
 * Returns 1 known (r->accept names the row), 0 unknown, -1 a source failed
 * (451; a warning line on stderr says which source and why).
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
#define EXT_BREAK '-'           /* qmail's address extension separator */
#define QUERY_MAX (ADDR_MAX + 16)

/* the address asked about, and its shorter extension form */
struct rcpt_query {
  char addr[QUERY_MAX];         /* "user@domain" as given ("user@localhost" when unqualified) */
  size_t len;
  const char *dom;              /* points into addr */
  size_t domlen;
  char ext[QUERY_MAX];          /* "foo-@domain" for "foo-bar@domain", else empty */
  size_t extlen;
};

static void warn(const struct session *s, const char *what, const char *src, const char *why)
{
  fprintf(stderr, "mxgate-smtpd: pid %ld warning: recipients %s %s: %s\n", (long)s->pid, what, src, why);
}

static char lower(char c)
{
  return (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

/* 0 when the address does not fit (then no source can know it) */
static bool query_build(const struct rcpt *r, struct rcpt_query *q)
{
  const char *a = r->addr.s, *dom;
  size_t n = r->addr.len, domlen, local = n;
  if (addr_domain(a, n, &dom, &domlen)) local = (size_t)(dom - a) - 1;
  else { dom = ""; domlen = 0; }
  if (r->no_at) { dom = "localhost"; domlen = 9; }  /* s/qmail: unqualified is user@localhost */
  if (local + 1 + domlen >= QUERY_MAX) return false;
  memcpy(q->addr, a, local);
  q->addr[local] = '@';
  memcpy(q->addr + local + 1, dom, domlen);      /* as given: a program sees it so */
  q->len = local + 1 + domlen;
  q->addr[q->len] = 0;
  q->dom = q->addr + local + 1;
  q->domlen = domlen;
  const char *brk = memchr(q->addr, EXT_BREAK, local);
  q->extlen = 0;
  if (brk) {
    size_t keep = (size_t)(brk - q->addr) + 1;            /* "foo-" */
    memcpy(q->ext, q->addr, keep);
    q->ext[keep] = '@';                                    /* "@domain", lower-cased */
    for (size_t i = 0; i < domlen; i++) q->ext[keep + 1 + i] = lower(dom[i]);
    q->extlen = keep + 1 + domlen;
    q->ext[q->extlen] = 0;
  }
  return true;
}

/* does the domain part d of a cdb or program line apply to dom? */
static bool line_meets(const char *d, size_t dn, const char *dom, size_t domlen)
{
  if (dn == 1 && d[0] == '*') return true;
  if (dn > 1 && d[0] == '@') return str_equal_nocase(d + 1, dn - 1, dom, domlen);
  if (dn == 0 || d[0] == '@') return false;
  if (str_equal_nocase(d, dn, dom, domlen)) return true;
  return domlen > dn + 1 && dom[domlen - dn - 1] == '.' && str_equal_nocase(d, dn, dom + domlen - dn, dn);
}

/* 1 when ":" + lower-cased key is in the cdb */
static int cdb_has(struct cdbx *c, const char *addr, size_t len)
{
  char key[QUERY_MAX + 1];
  if (len + 1 > sizeof key) return 0;
  key[0] = ':';
  for (size_t i = 0; i < len; i++) key[i + 1] = lower(addr[i]);
  return cdbx_find(c, key, len + 1, NULL) == 1;
}

static bool cdb_empty(struct cdbx *c)
{
  unsigned pos;
  cdb_seqinit(&pos, &c->cdb);
  return cdb_seqnext(&pos, &c->cdb) <= 0;
}

static int lookup_cdb(const struct session *s, const char *path, const struct rcpt_query *q, enum row_id *row)
{
  struct cdbx c;
  int o = cdbx_open(&c, path);
  if (o == 0) {                                  /* D8: s/qmail skips the line */
    warn(s, "cdb", path, "missing; recipient deferred (451), s/qmail would skip the line");
    return -1;
  }
  if (o < 0) {                                   /* D7: s/qmail finds every address in it */
    char why[160];
    if (errno == EPROTO)
      snprintf(why, sizeof why, "empty or not a cdb; recipient deferred (451), s/qmail would accept every address");
    else
      snprintf(why, sizeof why, "%s; recipient deferred (451)", strerror(errno));
    warn(s, "cdb", path, why);
    return -1;
  }
  int found = 1;
  *row = ROW_RCPT_CDB;
  if (!cdb_has(&c, q->addr, q->len) && !(q->extlen && cdb_has(&c, q->ext, q->extlen))) {
    char key[QUERY_MAX + 1];                     /* ":@domain": every address there */
    *row = ROW_RCPT_WILD;
    key[0] = '@';
    memcpy(key + 1, q->dom, q->domlen);
    found = cdb_has(&c, key, q->domlen + 1);
  }
  if (!found && cdb_empty(&c))
    warn(s, "cdb", path, "holds no address; recipient refused, s/qmail's man page says an empty cdb accepts all");
  cdbx_close(&c);
  return found;
}

/* run "prog args" in $MXGATE_HOME with addr\0\0\0 on fd 3: 1 known, 0 unknown, -1 failed */
static int ask_program(const struct session *s, const char *cmdline, const char *addr, size_t len)
{
  char cmd[1024], *argv[PROG_ARGS + 1];
  int argc = 0;
  snprintf(cmd, sizeof cmd, "%s", cmdline);
  for (char *tok = strtok(cmd, " \t"); tok && argc < PROG_ARGS; tok = strtok(NULL, " \t"))
    argv[argc++] = tok;
  argv[argc] = NULL;
  if (!argc) { warn(s, "program", "(none)", "empty command; recipient deferred (451)"); return -1; }
  int pi[2];
  if (pipe(pi) < 0) { warn(s, "program", argv[0], strerror(errno)); return -1; }
  pid_t pid = fork();
  if (pid < 0) { warn(s, "program", argv[0], strerror(errno)); close(pi[0]); close(pi[1]); return -1; }
  if (pid == 0) {
    close(pi[1]);
    if (dup2(pi[0], 3) < 0) _exit(111);
    if (pi[0] != 3) close(pi[0]);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) { dup2(devnull, 0); dup2(devnull, 1); }
    signal(SIGPIPE, SIG_DFL);
    if (chdir(control_home()) < 0) { warn(s, "program", argv[0], "cannot enter $MXGATE_HOME"); _exit(111); }
    execvp(argv[0], argv);
    char why[128];
    snprintf(why, sizeof why, "cannot run: %s", strerror(errno));
    warn(s, "program", argv[0], why);
    _exit(111);
  }
  close(pi[0]);
  void (*old)(int) = signal(SIGPIPE, SIG_IGN);
  if (write(pi[1], addr, len) == (ssize_t)len)  /* its exit code is its answer, read or not */
    (void)!write(pi[1], "\0\0\0", 3);
  close(pi[1]);
  signal(SIGPIPE, old);
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) { warn(s, "program", argv[0], strerror(errno)); return -1; }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 1) return 0;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 1;
  char why[96];
  if (WIFEXITED(st)) snprintf(why, sizeof why, "exit %d; recipient deferred (451)", WEXITSTATUS(st));
  else snprintf(why, sizeof why, "killed by signal %d; recipient deferred (451)", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  warn(s, "program", argv[0], why);
  return -1;
}

static int lookup_program(const struct session *s, const char *cmdline, const struct rcpt_query *q, enum row_id *row)
{
  *row = ROW_RCPT_PAM;
  int found = ask_program(s, cmdline, q->addr, q->len);
  if (found == 0 && q->extlen) found = ask_program(s, cmdline, q->ext, q->extlen);
  return found;
}

int recipients_check(struct session *s, struct rcpt *r)
{
  struct rcpt_query q;
  bool met = false;                            /* a cdb or program line applied to the domain */
  if (!s->cfg->have_recipients) { r->accept = ROW_RCPT_RCPTHOSTS; return 1; }
  if (!query_build(r, &q)) return 0;
  for (const char *l = NULL; (l = control_next(&s->cfg->recipients, l)); ) {
    size_t ln = strlen(l);
    enum row_id row = ROW_RCPT_CDB;
    int found;
    if (l[0] == '!') {
      if (ln == 2 && l[1] == '*') {            /* pass-through, logged as rcpthosts' */
        if (met) continue;
        r->accept = ROW_RCPT_RCPTHOSTS;
        return 1;
      }
      if (!str_equal_nocase(l + 1, ln - 1, q.dom, q.domlen)) continue;
      r->accept = ROW_RCPT_WILD;
      return 1;
    }
    const char *sep = strpbrk(l, ":|");
    if (!sep) {                                /* legacy: a cdb for domains not met */
      if (met) continue;
      found = lookup_cdb(s, l, &q, &row);
    } else {
      if (!line_meets(l, (size_t)(sep - l), q.dom, q.domlen)) continue;
      met = true;
      found = *sep == ':' ? lookup_cdb(s, sep + 1, &q, &row) : lookup_program(s, sep + 1, &q, &row);
    }
    if (found < 0) return -1;
    if (found == 1) { r->accept = row; return 1; }
  }
  return 0;
}
