/* pop3d.c -- mxgate-pop3d MAILDIR: the TRANSACTION and UPDATE states of
 * RFC 1939 after mxgate-popup and the checkprogram have logged the user in.
 *
 * Works in MAILDIR (a path relative to HOME, as qmail-pop3d takes it, or
 * $MAILDIR when no argument is given). The first reply, "+OK", answers the
 * client's PASS or APOP. Deletions take effect at QUIT only. Commands are
 * read with the POP3 timeout (POP3TIMEOUT, default 1200 s) and limited to
 * 255 octets (RFC 2449).
 */
#include "pop3d.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CMD_MAX 255

struct pop3 {
  struct mailbox mb;
  struct io_in in;
  struct io_out out;
  bool quit;
};

static void say(struct pop3 *p, const char *s) { io_puts(&p->out, s); io_puts(&p->out, "\r\n"); }

/* message number n (1-based) that is not deleted, or NULL (with -ERR sent) */
static struct message *msg_arg(struct pop3 *p, const char *arg)
{
  char *end;
  long n = strtol(arg, &end, 10);
  if (!*arg || *end || n < 1 || (size_t)n > p->mb.n) { say(p, "-ERR no such message"); return NULL; }
  struct message *m = &p->mb.m[n - 1];
  if (m->deleted) { say(p, "-ERR message deleted"); return NULL; }
  return m;
}

static void cmd_stat(struct pop3 *p, const char *arg)
{
  char buf[64];
  size_t n = 0;
  long long octets = 0;
  (void)arg;
  for (size_t i = 0; i < p->mb.n; i++)
    if (!p->mb.m[i].deleted) { n++; octets += p->mb.m[i].octets; }
  snprintf(buf, sizeof buf, "+OK %zu %lld", n, octets);
  say(p, buf);
}

static void listing(struct pop3 *p, const char *arg, bool uidl)
{
  char buf[160], uid[80];
  if (*arg) {
    struct message *m = msg_arg(p, arg);
    if (!m) return;
    mailbox_uid(m, uid, sizeof uid);
    if (uidl) snprintf(buf, sizeof buf, "+OK %ld %s", (long)(m - p->mb.m) + 1, uid);
    else snprintf(buf, sizeof buf, "+OK %ld %lld", (long)(m - p->mb.m) + 1, (long long)m->octets);
    say(p, buf);
    return;
  }
  say(p, "+OK");
  for (size_t i = 0; i < p->mb.n; i++) {
    if (p->mb.m[i].deleted) continue;
    mailbox_uid(&p->mb.m[i], uid, sizeof uid);
    if (uidl) snprintf(buf, sizeof buf, "%zu %s", i + 1, uid);
    else snprintf(buf, sizeof buf, "%zu %lld", i + 1, (long long)p->mb.m[i].octets);
    say(p, buf);
  }
  say(p, ".");
}

static void cmd_list(struct pop3 *p, const char *arg) { listing(p, arg, false); }
static void cmd_uidl(struct pop3 *p, const char *arg) { listing(p, arg, true); }

/* RETR and TOP: a message that vanished is an error reply; one that could
 * not be read to its end ends the session (no deletions: no QUIT) */
static void send_message(struct pop3 *p, const struct message *m, long lines)
{
  int r = mailbox_send(m, &p->out, lines);
  if (r == -1) say(p, "-ERR message has vanished");
  if (r == -2) p->quit = true;
}

static void cmd_retr(struct pop3 *p, const char *arg)
{
  struct message *m = msg_arg(p, arg);
  if (m) send_message(p, m, -1);
}

static void cmd_top(struct pop3 *p, const char *arg)
{
  char num[32];
  const char *sp = strchr(arg, ' ');
  char *end;
  if (!sp || (size_t)(sp - arg) >= sizeof num) { say(p, "-ERR syntax: TOP msg n"); return; }
  snprintf(num, sizeof num, "%.*s", (int)(sp - arg), arg);
  if (sp[1] < '0' || sp[1] > '9') { say(p, "-ERR syntax: TOP msg n"); return; }   /* a count, digits only */
  long lines = strtol(sp + 1, &end, 10);
  if (*end || lines < 0) { say(p, "-ERR syntax: TOP msg n"); return; }
  struct message *m = msg_arg(p, num);
  if (m) send_message(p, m, lines);
}

static void cmd_dele(struct pop3 *p, const char *arg)
{
  struct message *m = msg_arg(p, arg);
  if (m) { m->deleted = true; say(p, "+OK"); }
}

static void cmd_rset(struct pop3 *p, const char *arg)
{
  (void)arg;
  for (size_t i = 0; i < p->mb.n; i++) p->mb.m[i].deleted = false;
  say(p, "+OK");
}

static void cmd_noop(struct pop3 *p, const char *arg) { (void)arg; say(p, "+OK"); }

static void cmd_quit(struct pop3 *p, const char *arg)
{
  (void)arg;
  say(p, mailbox_expunge(&p->mb) ? "-ERR some deleted messages could not be removed" : "+OK");
  p->quit = true;
}

static void cmd_capa(struct pop3 *p, const char *arg)
{
  (void)arg;
  say(p, "+OK capabilities follow");
  say(p, "TOP"); say(p, "UIDL"); say(p, "PIPELINING"); say(p, "RESP-CODES");
  say(p, "IMPLEMENTATION mxgate"); say(p, ".");
}

static const struct { const char *verb; void (*fn)(struct pop3 *, const char *); } commands[] = {
  { "STAT", cmd_stat }, { "LIST", cmd_list }, { "UIDL", cmd_uidl }, { "RETR", cmd_retr },
  { "TOP", cmd_top },   { "DELE", cmd_dele }, { "RSET", cmd_rset }, { "NOOP", cmd_noop },
  { "QUIT", cmd_quit }, { "CAPA", cmd_capa },
};

static void dispatch(struct pop3 *p, const char *line)
{
  size_t v = strcspn(line, " ");
  const char *arg = line[v] ? line + v + 1 : line + v;
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    if (v == strlen(commands[i].verb) && strncasecmp(line, commands[i].verb, v) == 0) {
      commands[i].fn(p, arg);
      return;
    }
  say(p, "-ERR unknown command");
}

int pop3d_main(int argc, char **argv)
{
  static struct pop3 p;
  const char *dir = argc > 1 ? argv[1] : getenv("MAILDIR");
  const char *t = getenv("POP3TIMEOUT");
  int timeout = t && atoi(t) > 0 ? atoi(t) : 1200;
  io_out_init(&p.out, 1, timeout);
  io_in_init(&p.in, 0, timeout, &p.out);
  if (!dir || chdir(dir) < 0 || mailbox_open(&p.mb) < 0) {
    say(&p, "-ERR this user has no mailbox");
    io_flush(&p.out);
    return 1;
  }
  say(&p, "+OK");
  str line = STR_INIT(CMD_MAX + 2);
  while (!p.quit) {
    bool toolong;
    int r = io_getline(&p.in, &line, CMD_MAX, &toolong);
    if (r <= 0) break;                          /* end of input or timeout: nothing is deleted */
    if (toolong || memchr(line.s, 0, line.len)) { say(&p, "-ERR line too long or malformed"); continue; }
    dispatch(&p, str_cstr(&line));
    if (p.out.failed) break;
  }
  io_flush(&p.out);
  str_free(&line);
  mailbox_free(&p.mb);
  return 0;
}
