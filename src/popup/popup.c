/* popup.c -- mxgate-popup HOSTNAME CHECKPROGRAM SUBPROGRAM...: the POP3
 * greeting and AUTHORIZATION state (RFC 1939, CAPA RFC 2449, STLS RFC 2595).
 *
 * POP3AUTH: unset or "" USER/PASS; "apop" or "+apop" APOP as well, as in
 * s/qmail (the greeting then carries the APOP timestamp
 * <pid.time@hostname>); USER/PASS always work.
 * UCSPITLS: unset (STLS offered when a certificate exists), "" offer,
 * "!" require (USER/PASS/APOP before STLS: Reject::STLS::Any), "-" off;
 * POP3S=1 or TCPLOCALPORT 995: TLS from the start. Under sslserver
 * (ucspitls.h) mxgate-popup does no handshake itself: PROTO=SSL is POP3S
 * (the pipes are plaintext, the session is TLS), SSLCTLFD makes STLS go
 * through sslserver (offered unless UCSPITLS=-). After STLS the input
 * read before the handshake is discarded. Every login decision is one log
 * line on fd 5 (fd 2 when 5 is not open, or is one of sslserver's):
 * Accept|Reject::AUTH::User, Accept|Reject::AUTH::Apop, Reject::STLS::Any;
 * P:POP3 or P:POP3S.
 * Failed logins wait POP3DELAY seconds (default 2); after 3 the
 * connection is closed. Idle limit POP3TIMEOUT (default 1200 s).
 */
#include "popup.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define CMD_MAX 255
#define FAILURES_MAX 3

static void say(struct popup *p, const char *s) { io_puts(&p->out, s); io_puts(&p->out, "\r\n"); }

void popup_log(struct popup *p, enum row_id row, const char *user, size_t ulen)
{
  struct log_fields f = {
    .tag = "qmail-popup", .pid = p->pid,
    .ip = log_cstr(p->ip), .host = log_cstr(p->host),
    .proto = log_cstr(p->secure ? "POP3S" : "POP3"),
    .user = { user, ulen },
  };
  log_write(p->logfd, row, &f);
}

static void from_env(struct popup *p)
{
  const char *ip = getenv("TCP6REMOTEIP");
  if (!ip || !*ip) ip = getenv("TCPREMOTEIP");
  if (!ip || !*ip) ip = getenv("SSLREMOTEIP");     /* sslserver without -e */
  if (ip && strncmp(ip, "::ffff:", 7) == 0 && strchr(ip, '.')) ip += 7;
  snprintf(p->ip, sizeof p->ip, "%s", ip && *ip ? ip : "unknown");
  const char *host = getenv("TCPREMOTEHOST") ? getenv("TCPREMOTEHOST") : getenv("SSLREMOTEHOST");
  snprintf(p->host, sizeof p->host, "%s", host ? host : "");
  const char *a = getenv("POP3AUTH");
  p->apop = a && (strcasecmp(a, "apop") == 0 || strcasecmp(a, "+apop") == 0);
  p->userpass = true;                              /* s/qmail: APOP is added, never instead (D33) */
  const char *t = getenv("POP3TIMEOUT");
  p->timeout = t && atoi(t) > 0 ? atoi(t) : 1200;
  p->tls_mode = tls_mode_from_env();
  if (p->tls_mode == TLS_CLIENTCERT || p->tls_mode == TLS_CLIENTEMAIL) p->tls_mode = TLS_REQUIRE;
  p->ucspi = ucspitls_detect("mxgate-popup");
  /* under sslserver -n the certificate is sslserver's: STLS unless UCSPITLS=- */
  if (p->ucspi == UCSPITLS_DELAYED && !getenv("UCSPITLS")) p->tls_mode = TLS_OFFER;
}

/* whether STLS can be offered: sslserver -n, or a certificate of our own */
static bool stls_possible(const struct popup *p)
{
  if (p->secure || p->tls_mode == TLS_OFF || p->ucspi == UCSPITLS_ACTIVE) return false;
  return p->ucspi == UCSPITLS_DELAYED || tls_available();
}

/* TLS by sslserver (STLS under -n: "Y", its SSL_* block, its pipes) or
 * by our own OpenSSL; false when the handshake failed */
static bool start_tls(struct popup *p)
{
  const char *why = NULL;
  if (p->ucspi == UCSPITLS_DELAYED) {
    if (!ucspitls_start(p->in.fd, p->out.fd, p->timeout, &why)) return false;
    p->secure = true;
    return true;
  }
  p->tls = tls_start(p->in.fd, p->out.fd, p->timeout, p->tls_mode, &why);
  if (!p->tls) return false;
  tls_attach(p->tls, &p->in, &p->out);
  p->secure = true;
  return true;
}

/* a login that failed counts towards FAILURES_MAX, whatever the reason:
 * a connection gets no more tries when the checkprogram cannot tell */
static void count_failure(struct popup *p)
{
  if (++p->failures >= FAILURES_MAX) { say(p, "-ERR too many failures"); io_flush(&p->out); exit(0); }
}

static void failed(struct popup *p, enum row_id row, const char *user, size_t ulen)
{
  popup_log(p, row, user, ulen);
  io_flush(&p->out);
  const char *d = getenv("POP3DELAY");
  unsigned delay = d && *d ? (unsigned)atoi(d) : 2;
  if (delay) sleep(delay > 60 ? 60 : delay);
  say(p, "-ERR authorization failed");
  count_failure(p);
}

/* true when the login may go on; else the STLS row is logged */
static bool tls_ok(struct popup *p)
{
  if (p->secure || p->tls_mode != TLS_REQUIRE) return true;
  popup_log(p, ROW_POP_STLS_ANY, "unknown", 7);
  say(p, "-ERR STLS first");
  return false;
}

static void do_login(struct popup *p, const char *user, size_t ulen, const char *pass, size_t plen, bool apop)
{
  enum row_id ok = apop ? ROW_POP_APOP_OK : ROW_POP_USER_OK, bad = apop ? ROW_POP_APOP_FAIL : ROW_POP_USER_FAIL;
  int r = login(p, user, ulen, pass, plen, apop ? p->timestamp : "", ok);   /* APOP: the digest needs the stamp */
  if (r == 1) { io_flush(&p->out); exit(0); }     /* the session ran and ended */
  if (r < 0) {                                   /* the checkprogram failed (111, 2, a crash, too slow) */
    popup_log(p, bad, user, ulen);
    say(p, "-ERR temporary authentication failure");
    count_failure(p);
    return;
  }
  failed(p, bad, user, ulen);
}

static void command(struct popup *p, char *line)
{
  size_t v = strcspn(line, " ");
  char *arg = line[v] ? line + v + 1 : line + v;
  if (v == 4 && strncasecmp(line, "QUIT", 4) == 0) { say(p, "+OK bye"); io_flush(&p->out); exit(0); }
  if (v == 4 && strncasecmp(line, "CAPA", 4) == 0) {
    say(p, "+OK capabilities follow");
    if (p->userpass) say(p, "USER");
    if (stls_possible(p)) say(p, "STLS");
    say(p, "TOP"); say(p, "UIDL"); say(p, "PIPELINING"); say(p, "RESP-CODES");
    say(p, "IMPLEMENTATION mxgate"); say(p, ".");
  } else if (v == 4 && strncasecmp(line, "STLS", 4) == 0) {
    if (!stls_possible(p)) { say(p, "-ERR STLS not available"); return; }
    say(p, "+OK begin TLS");
    io_flush(&p->out);
    io_discard(&p->in);                            /* pipelined cleartext is never a command */
    if (!start_tls(p)) exit(1);
    p->user.len = 0;
  } else if (v == 4 && strncasecmp(line, "USER", 4) == 0 && p->userpass) {
    if (!tls_ok(p)) return;
    if (!*arg) { say(p, "-ERR USER needs a name"); return; }
    str_copys(&p->user, arg);
    say(p, "+OK");
  } else if (v == 4 && strncasecmp(line, "PASS", 4) == 0 && p->userpass) {
    if (!tls_ok(p)) return;
    if (!p->user.len) { say(p, "-ERR USER first"); return; }
    do_login(p, p->user.s, p->user.len, arg, strlen(arg), false);
    p->user.len = 0;
  } else if (v == 4 && strncasecmp(line, "APOP", 4) == 0 && p->apop) {
    if (!tls_ok(p)) return;
    char *sp = strrchr(arg, ' ');
    if (!sp) { say(p, "-ERR syntax: APOP name digest"); return; }
    *sp = 0;
    do_login(p, arg, strlen(arg), sp + 1, strlen(sp + 1), true);
  } else say(p, "-ERR authorization first");
}

int popup_main(int argc, char **argv)
{
  static struct popup p;
  if (argc < 3) { fputs("usage: mxgate-popup hostname checkprogram subprogram...\n", stderr); return 100; }
  p.hostname = argv[1];
  p.checkprogram = argv + 2;
  p.pid = getpid();
  p.logfd = fcntl(5, F_GETFD) >= 0 && !ucspitls_fd_named(5) ? 5 : 2;
  p.user = (str)STR_INIT(CMD_MAX);
  from_env(&p);
  io_out_init(&p.out, 1, p.timeout);
  io_in_init(&p.in, 0, p.timeout, &p.out);
  const char *pop3s = getenv("POP3S"), *port = getenv("TCPLOCALPORT");
  if (p.ucspi == UCSPITLS_ACTIVE) p.secure = true;        /* sslserver did the handshake: never a second one */
  else if (p.ucspi == UCSPITLS_NONE && ((pop3s && *pop3s && strcmp(pop3s, "0") != 0) || (port && strcmp(port, "995") == 0))) {
    if (p.tls_mode == TLS_OFF) p.tls_mode = TLS_OFFER;
    if (!start_tls(&p)) return 1;
  }
  snprintf(p.timestamp, sizeof p.timestamp, "<%ld.%lld@%s>", (long)p.pid, (long long)time(NULL), p.hostname);
  char greet[400];
  snprintf(greet, sizeof greet, "+OK %s", p.apop ? p.timestamp : p.hostname);
  say(&p, greet);
  str line = STR_INIT(CMD_MAX + 2);
  for (;;) {
    bool toolong;
    if (io_getline(&p.in, &line, CMD_MAX, &toolong) <= 0) break;
    if (toolong || memchr(line.s, 0, line.len)) { say(&p, "-ERR line too long or malformed"); continue; }
    command(&p, (char *)str_cstr(&line));
    if (p.out.failed) break;
  }
  io_flush(&p.out);
  str_free(&line);
  str_free(&p.user);
  return 0;
}
