/* commands.c -- the SMTP command table and the simple commands.
 *
 * One entry a verb; cmd_dispatch() splits the line and calls the handler
 * with the argument (which may hold any byte, NUL included: handlers
 * take a length). MAIL, RCPT and DATA live in their own files. A client
 * that keeps sending errors is dropped after ERRORS_MAX of them.
 */
#include "smtpd.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define ERRORS_MAX 30

typedef void (*cmd_fn)(struct session *s, const char *arg, size_t len);

static void set_helo(struct session *s, const char *arg, size_t len, bool esmtp)
{
  while (len && arg[0] == ' ') { arg++; len--; }
  while (len && arg[len - 1] == ' ') len--;
  str_copyb(&s->helo, arg, len);
  s->seen_helo = true;
  s->helo_dns = 0;
  s->esmtp = esmtp;
  session_reset_transaction(s);
}

static void smtp_helo(struct session *s, const char *arg, size_t len)
{
  char buf[600];
  set_helo(s, arg, len, false);
  snprintf(buf, sizeof buf, "250 %s", str_cstr((str *)&s->cfg->me));
  reply(s, buf);
}

static void smtp_ehlo(struct session *s, const char *arg, size_t len)
{
  char buf[600];
  set_helo(s, arg, len, true);
  snprintf(buf, sizeof buf, "250-%s", str_cstr((str *)&s->cfg->me));
  reply(s, buf);
  reply(s, "250-PIPELINING");
  reply(s, "250-8BITMIME");
  reply(s, "250-ENHANCEDSTATUSCODES");
  reply(s, "250-SMTPUTF8");
  if (tls_offered(s)) reply(s, "250-STARTTLS");
  auth_advertise(s, buf, sizeof buf);
  if (buf[0]) { char line[640]; snprintf(line, sizeof line, "250-%s", buf); reply(s, line); }
  snprintf(buf, sizeof buf, "250 SIZE %lu", s->conn.databytes);
  reply(s, buf);
}

static void smtp_rset(struct session *s, const char *arg, size_t len)
{
  (void)arg; (void)len;
  session_reset_transaction(s);
  reply(s, "250 2.0.0 flushed");
}

static void smtp_noop(struct session *s, const char *arg, size_t len)
{
  (void)arg; (void)len;
  reply(s, "250 2.0.0 ok");
}

static void smtp_vrfy(struct session *s, const char *arg, size_t len)
{
  (void)arg; (void)len;
  reply(s, "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery");
}

static void smtp_help(struct session *s, const char *arg, size_t len)
{
  (void)arg; (void)len;
  reply(s, "214-2.0.0 mxgate: commands HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
  reply(s, "214 2.0.0 see mxgate-smtpd(8)");
}

static void smtp_quit(struct session *s, const char *arg, size_t len)
{
  char buf[600];
  (void)arg; (void)len;
  snprintf(buf, sizeof buf, "221 2.0.0 %s closing connection", str_cstr((str *)&s->cfg->me));
  reply(s, buf);
  s->quit = true;
}

static void smtp_mail_cmd(struct session *s, const char *arg, size_t len)
{
  if (!str_starts_nocase(arg, len, "FROM:")) { reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>"); return; }
  smtp_mail(s, arg + 5, len - 5);
}

static void smtp_rcpt_cmd(struct session *s, const char *arg, size_t len)
{
  if (!str_starts_nocase(arg, len, "TO:")) { reply(s, "501 5.5.4 Syntax: RCPT TO:<address>"); return; }
  smtp_rcpt(s, arg + 3, len - 3);
}

static void smtp_data_cmd(struct session *s, const char *arg, size_t len)
{
  if (len) { reply(s, "501 5.5.4 Syntax: DATA takes no argument"); return; }
  (void)arg;
  smtp_data(s);
}

static const struct command {
  const char *verb;
  cmd_fn fn;
} commands[] = {
  { "MAIL", smtp_mail_cmd }, { "RCPT", smtp_rcpt_cmd }, { "DATA", smtp_data_cmd },
  { "EHLO", smtp_ehlo },     { "HELO", smtp_helo },     { "RSET", smtp_rset },
  { "NOOP", smtp_noop },     { "QUIT", smtp_quit },     { "VRFY", smtp_vrfy },
  { "HELP", smtp_help },     { "AUTH", smtp_auth },     { "STARTTLS", smtp_starttls },
};

void cmd_dispatch(struct session *s, str *line)
{
  const char *p = line->s ? line->s : "";
  size_t len = line->len;
  size_t v = 0;
  while (v < len && p[v] != ' ') v++;
  const char *arg = v < len ? p + v + 1 : p + len;
  size_t alen = v < len ? len - v - 1 : 0;
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
    if (v == strlen(commands[i].verb) && strncasecmp(p, commands[i].verb, v) == 0) {
      commands[i].fn(s, arg, alen);
      return;
    }
  }
  reply(s, "502 5.5.1 Command not recognized");
  if (++s->errors >= ERRORS_MAX) {
    reply(s, "421 4.7.0 Too many errors; closing connection");
    s->quit = true;
  }
}
