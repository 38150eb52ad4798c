/* reply.c -- the one place where mxgate-smtpd replies and logs decisions.
 *
 * decide() writes the row's log line (one write(2) to the log fd) and the
 * reply built from the same row of rows.def, so the two cannot disagree.
 * REPLY_<CONDITION> in the environment (condition upper-cased, '_' removed,
 * e.g. REPLY_GREYLISTED, REPLY_FAILEDRCPTTO) replaces a row's reply text;
 * code and enhanced status stay those of the row.
 */
#include "smtpd.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void reply(struct session *s, const char *line)
{
  io_puts(&s->out, line);
  io_put(&s->out, "\r\n", 2);
}

void reply_code(struct session *s, int code, const char *estatus, const char *text)
{
  char buf[1024];
  snprintf(buf, sizeof buf, "%d %s %s", code, estatus, text);
  reply(s, buf);
}

const char *row_text(enum row_id row)
{
  const struct row *r = row_get(row);
  char name[64] = "REPLY_";
  size_t n = strlen(name);
  for (const char *c = r->condition; *c && n < sizeof name - 1; c++)
    if (*c != '_' && *c != '-') name[n++] = (char)toupper((unsigned char)*c);
  name[n] = 0;
  const char *v = getenv(name);
  /* the override is one line of text: refuse anything that would split the reply */
  if (v && *v && !strpbrk(v, "\r\n")) return v;
  return r->text;
}

void reply_row(struct session *s, enum row_id row, bool temporary_variant)
{
  const struct row *r = row_get(row);
  if (row == ROW_RCPT_FAILED && temporary_variant)
    reply_code(s, 450, "4.2.1", row_text(row));
  else
    reply_code(s, r->code, r->estatus, row_text(row));
}

void decide_log(struct session *s, enum row_id row, const char *rcpt, size_t rcptlen, const char *detail)
{
  char proto[32];
  const struct row *r = row_get(row);
  struct log_fields f = {
    .tag = "qmail-smtpd", .pid = s->pid,
    .ip = log_cstr(s->conn.remoteip),
    .host = log_cstr(s->conn.remotehost),
    .proto = log_cstr(session_protocol(s, proto, sizeof proto)),
  };
  if (s->seen_helo) f.helo = (struct log_field){ s->helo.s ? s->helo.s : "", s->helo.len };
  if (s->seen_mail) f.from = (struct log_field){ s->mailfrom.s ? s->mailfrom.s : "", s->mailfrom.len };
  if (rcpt) f.rcpt = (struct log_field){ rcpt, rcptlen };
  if (strcmp(r->type, "AUTH") == 0 && s->auth_user.len)
    f.user = (struct log_field){ s->auth_user.s, s->auth_user.len };
  if (detail) f.detail = log_cstr(detail);
  log_write(s->logfd, row, &f);
}

void decide(struct session *s, enum row_id row, const char *rcpt, size_t rcptlen, const char *detail)
{
  decide_log(s, row, rcpt, rcptlen, detail);
  reply_row(s, row, s->conn.recipients450);
}
