/* auth.c -- SMTP AUTH (RFC 4954): LOGIN, PLAIN and CRAM-MD5 over the
 * checkpassword interface.
 *
 * SMTPAUTH selects the mechanisms as s/qmail does: unset or "-" no AUTH;
 * "" LOGIN PLAIN; "cram" CRAM-MD5; "+cram" all three; a leading "!" makes
 * authentication required for MAIL. LOGIN and PLAIN are not offered on a
 * connection that could use TLS but has not (AUTH_CLEARTEXT=1 allows them;
 * a client that tries one there is refused, and stderr notes it, since
 * s/qmail would have taken it). Under sslserver's SMTPS the session is TLS.
 * The checkprogram given on the command line reads "user\0password\0
 * challenge\0" on fd 3 and exits 0 for a valid login; a failed attempt is
 * answered after AUTHDELAY seconds (default 3), one the checkprogram could
 * not decide (it failed) at once, and after AUTH_FAILURES_MAX of either
 * the connection is closed. A checkprogram that has not finished after
 * AUTH_TIMEOUT seconds (default 60) is killed: a failure it could not
 * decide (454), with a warning line that names it.
 */
#include "smtpd.h"
#include "base64.h"
#include "child.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AUTH_LINE_MAX 4096
#define AUTH_FAILURES_MAX 5
#define AUTH_TIMEOUT_DEFAULT 60

enum mech { MECH_LOGIN, MECH_PLAIN, MECH_CRAM, MECH_NONE };
static const struct {
  const char *name;
  enum row_id ok, fail;
} mechs[] = {
  [MECH_LOGIN] = { "LOGIN", ROW_AUTH_LOGIN_OK, ROW_AUTH_LOGIN_FAIL },
  [MECH_PLAIN] = { "PLAIN", ROW_AUTH_PLAIN_OK, ROW_AUTH_PLAIN_FAIL },
  [MECH_CRAM] = { "CRAM-MD5", ROW_AUTH_CRAM_OK, ROW_AUTH_CRAM_FAIL },
};

void auth_policy_from_env(struct auth_policy *p)
{
  const char *v = getenv("SMTPAUTH");
  memset(p, 0, sizeof *p);
  if (!v || strcmp(v, "-") == 0) return;
  p->enabled = true;
  if (*v == '!') { p->required = true; v++; }
  if (strncasecmp(v, "+cram", 5) == 0) p->login_plain = p->cram = true;
  else if (strncasecmp(v, "cram", 4) == 0) p->cram = true;
  else p->login_plain = true;
  const char *c = getenv("AUTH_CLEARTEXT");
  p->cleartext = c && *c && strcmp(c, "0") != 0;
}

static bool mech_offered(const struct session *s, enum mech m)
{
  const struct auth_policy *p = &s->auth;
  if (!p->enabled) return false;
  if (m == MECH_CRAM) return p->cram;
  if (m == MECH_NONE || !p->login_plain) return false;
  /* no passwords in the clear where TLS could have protected them */
  return s->tls || p->cleartext || s->tls_mode == TLS_OFF;
}

/* "AUTH LOGIN PLAIN CRAM-MD5" for EHLO, or "" when nothing is offered */
void auth_advertise(const struct session *s, char *buf, size_t cap)
{
  size_t n = 0;
  buf[0] = 0;
  for (enum mech m = MECH_LOGIN; m < MECH_NONE; m++)
    if (mech_offered(s, m))
      n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? " " : "AUTH ", mechs[m].name);
}

/* reads one client response line; false (reply sent) on '*', too long, EOF */
static bool read_response(struct session *s, str *line)
{
  bool toolong;
  int r = io_getline(&s->in, line, AUTH_LINE_MAX, &toolong);
  if (r <= 0) { s->quit = true; return false; }
  if (toolong) { reply(s, "500 5.5.2 AUTH response too long"); return false; }
  if (line->len == 1 && line->s[0] == '*') { reply(s, "501 5.0.0 AUTH cancelled"); return false; }
  return true;
}

static bool decode(struct session *s, const char *b64, size_t len, str *out)
{
  if (base64_decode(b64, len, out)) return true;
  reply(s, "501 5.5.2 Malformed base64 in AUTH");
  return false;
}

/* seconds the checkprogram may take (AUTH_TIMEOUT, default 60) */
static long long auth_timeout(void)
{
  const char *t = getenv("AUTH_TIMEOUT");
  long long v = t && *t ? atoll(t) : 0;
  return v > 0 && v <= 86400 ? v : AUTH_TIMEOUT_DEFAULT;
}

/* 0 accepted, 1 refused, -1 the checkprogram could not be run or did not
 * finish within AUTH_TIMEOUT (killed, and a warning names it) */
static int run_checkprogram(struct session *s, const str *user, const str *pass, const char *chal)
{
  int pi[2];
  if (!s->checkprogram || !s->checkprogram[0] || pipe(pi) < 0) return -1;
  pid_t pid = fork();
  if (pid < 0) { close(pi[0]); close(pi[1]); return -1; }
  if (pid == 0) {
    close(pi[1]);
    int null = open("/dev/null", O_RDWR);
    if (dup2(pi[0], 3) < 0 || null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0) _exit(111);
    signal(SIGPIPE, SIG_DFL);
    execvp(s->checkprogram[0], s->checkprogram);
    _exit(111);
  }
  close(pi[0]);
  str buf = STR_INIT(AUTH_LINE_MAX * 2);
  str_catb(&buf, user->s, user->len); str_catc(&buf, 0);
  str_catb(&buf, pass->s, pass->len); str_catc(&buf, 0);
  str_cats(&buf, chal); str_catc(&buf, 0);
  bool ok = write(pi[1], buf.s, buf.len) == (ssize_t)buf.len;
  explicit_bzero(buf.s, buf.cap);
  str_free(&buf);
  close(pi[1]);
  int st;
  long long timeout = auth_timeout();
  int waited = child_wait(pid, timeout * 1000, &st);
  if (waited == 0) {                                   /* hung: killed; the client hears 454 at once */
    char line[600];
    int n = snprintf(line, sizeof line, "mxgate-smtpd: pid %ld warning: checkprogram %.400s did not finish "
                     "within %lld s (AUTH_TIMEOUT); killed\n", (long)s->pid, s->checkprogram[0], timeout);
    if (n > 0 && write(s->logfd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0) { /* log gone */ }
  }
  if (waited <= 0 || !ok || !WIFEXITED(st) || WEXITSTATUS(st) == 111) return -1;
  return WEXITSTATUS(st) == 0 ? 0 : 1;
}

static bool exchange(struct session *s, enum mech m, const char *arg, size_t len, str *user, str *pass, str *chal)
{
  str line = STR_INIT(AUTH_LINE_MAX + 2), dec = STR_INIT(AUTH_LINE_MAX);
  bool ok = false;
  if (m == MECH_LOGIN) {
    if (!len) { reply(s, "334 VXNlcm5hbWU6"); if (!read_response(s, &line)) goto out; arg = line.s; len = line.len; }
    if (!decode(s, arg, len, user)) goto out;
    reply(s, "334 UGFzc3dvcmQ6");
    if (!read_response(s, &line) || !decode(s, line.s, line.len, pass)) goto out;
  } else if (m == MECH_PLAIN) {
    if (!len) { reply(s, "334 "); if (!read_response(s, &line)) goto out; arg = line.s; len = line.len; }
    if (!decode(s, arg, len, &dec)) goto out;
    const char *a = memchr(dec.s, 0, dec.len);                   /* authzid \0 authcid \0 passwd */
    const char *b = a ? memchr(a + 1, 0, dec.len - (size_t)(a + 1 - dec.s)) : NULL;
    if (!b) { reply(s, "501 5.5.2 Malformed PLAIN response"); goto out; }
    str_copyb(user, a + 1, (size_t)(b - a - 1));
    str_copyb(pass, b + 1, dec.len - (size_t)(b + 1 - dec.s));
  } else {
    str b64 = STR_INIT(1024);
    str_cats(chal, "<");
    str_catu(chal, (unsigned long long)s->pid); str_catc(chal, '.');
    str_catu(chal, (unsigned long long)time(NULL)); str_catc(chal, '@');
    str_catb(chal, s->cfg->me.s, s->cfg->me.len); str_cats(chal, ">");
    base64_encode(chal->s, chal->len, &b64);
    str_copys(&line, "334 "); str_catb(&line, b64.s, b64.len);
    reply(s, str_cstr(&line));
    str_free(&b64);
    if (!read_response(s, &line) || !decode(s, line.s, line.len, &dec)) goto out;
    const char *sp = dec.len ? memrchr(dec.s, ' ', dec.len) : NULL;
    if (!sp) { reply(s, "501 5.5.2 Malformed CRAM-MD5 response"); goto out; }
    str_copyb(user, dec.s, (size_t)(sp - dec.s));
    str_copyb(pass, sp + 1, dec.len - (size_t)(sp + 1 - dec.s));
  }
  if (!user->len || !pass->len) {
    reply(s, "501 5.5.2 Empty credentials");
    goto out;
  }
  ok = true;
out:
  if (dec.s) explicit_bzero(dec.s, dec.cap);
  if (line.s) explicit_bzero(line.s, line.cap);
  str_free(&dec);
  str_free(&line);
  return ok;
}

static enum mech mech_find(const char *p, size_t n)
{
  for (enum mech m = MECH_LOGIN; m < MECH_NONE; m++)
    if (str_equal_nocase(p, n, mechs[m].name, strlen(mechs[m].name))) return m;
  return MECH_NONE;
}

static void auth_result(struct session *s, enum mech m, int verdict)
{
  if (verdict == 0) {
    s->authenticated = true;
    s->auth_row = mechs[m].ok;
    snprintf(s->conn.remoteinfo, sizeof s->conn.remoteinfo, "%s", str_cstr(&s->auth_user));
    setenv("AUTHUSER", s->conn.remoteinfo, 1);
    setenv("TCPREMOTEINFO", s->conn.remoteinfo, 1);
    decide(s, mechs[m].ok, NULL, 0, NULL);
    return;
  }
  if (verdict < 0) {
    decide(s, ROW_AUTH_SETUP, NULL, 0, NULL);          /* the checkprogram could not tell: a failure all the same */
  } else {
    s->auth_failed = true;
    io_flush(&s->out);
    unsigned long delay = 3;
    const char *d = getenv("AUTHDELAY");
    if (d && *d) delay = strtoul(d, NULL, 10);
    if (delay > 60) delay = 60;
    if (delay) sleep((unsigned)delay);
    decide(s, mechs[m].fail, NULL, 0, NULL);
  }
  if (++s->auth_failures >= AUTH_FAILURES_MAX) {      /* no endless tries, each a fork and exec */
    reply(s, "421 4.7.0 Too many authentication failures; closing connection");
    s->quit = true;
  }
}

void smtp_auth(struct session *s, const char *arg, size_t len)
{
  if (!s->auth.enabled) { reply(s, "503 5.5.1 AUTH not available"); return; }
  if (tls_required(s) && !s->tls) { decide(s, ROW_TLS_MISSING, NULL, 0, NULL); return; }
  if (s->authenticated) { reply(s, "503 5.5.1 Already authenticated"); return; }
  if (s->seen_mail) { reply(s, "503 5.5.1 AUTH not permitted during a mail transaction"); return; }
  size_t n = 0;
  while (n < len && arg[n] != ' ') n++;
  enum mech m = mech_find(arg, n);
  const char *resp = n < len ? arg + n + 1 : arg + len;
  size_t rlen = n < len ? len - n - 1 : 0;
  s->auth_user.len = 0;
  if (m == MECH_NONE || !mech_offered(s, m)) {
    if ((m == MECH_LOGIN || m == MECH_PLAIN) && s->auth.login_plain)   /* s/qmail would have taken it (D21) */
      fprintf(stderr, "mxgate-smtpd: pid %ld note: AUTH %s refused before STARTTLS (RFC 4954; AUTH_CLEARTEXT=1 allows it)\n",
              (long)s->pid, mechs[m].name);
    decide(s, ROW_AUTH_METHOD, NULL, 0, NULL);
    return;
  }
  if (!s->checkprogram || !s->checkprogram[0]) { decide(s, ROW_AUTH_SETUP, NULL, 0, NULL); return; }
  if (rlen == 1 && resp[0] == '=') rlen = 0;          /* RFC 4954: "=" is an empty initial response */
  str user = STR_INIT(AUTH_LINE_MAX), pass = STR_INIT(AUTH_LINE_MAX), chal = STR_INIT(1024);
  if (exchange(s, m, resp, rlen, &user, &pass, &chal)) {
    str_copyb(&s->auth_user, user.s, user.len);
    /* a NUL would split the checkpassword fields: such a name is simply refused */
    bool nul = memchr(user.s, 0, user.len) || memchr(pass.s, 0, pass.len);
    auth_result(s, m, nul ? 1 : run_checkprogram(s, &user, &pass, str_cstr(&chal)));
  }
  if (pass.s) explicit_bzero(pass.s, pass.cap);
  str_free(&user); str_free(&pass); str_free(&chal);
}

/* at MAIL: the AUTH rows that refuse an unauthenticated client */
enum row_id auth_mail_check(const struct session *s)
{
  if (!s->auth.required || s->authenticated) return ROW_NONE;
  return s->auth_failed ? ROW_ORIG_FAILED_AUTH : ROW_AUTH_MISSING;
}
