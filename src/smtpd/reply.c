/* reply.c -- the one place where mxgate-smtpd replies and logs decisions.
 *
 * decide() writes the row's log line (one write(2) to the log fd) and the
 * reply built from the same row of rows.def, so the two cannot disagree.
 * REPLY_<CONDITION> in the environment (condition upper-cased, '_' removed,
 * e.g. REPLY_GREYLISTED, REPLY_FAILEDRCPTTO) replaces a row's reply text;
 * code and enhanced status stay those of the row.
 * s/qmail's names (README.smtpreply) append their text to the reply
 * instead, after a blank: REPLY_HELO, REPLY_MAILBOX, REPLY_MAXSIZE,
 * REPLY_BADMAILFROM, REPLY_BADRCPTTO, REPLY_SENDEREXIST, REPLY_NOGATEWAY,
 * REPLY_SENDERINVALID, REPLY_CONTENT (sqmail_append below); where such a
 * name is also a row's REPLY_<CONDITION> (BADMAILFROM, BADRCPTTO) the
 * s/qmail meaning, append, is the one taken.
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
  char buf[1100];                              /* text is at most 1023 bytes */
  snprintf(buf, sizeof buf, "%d %.16s %.1023s", code, estatus, text);
  reply(s, buf);
}

/* s/qmail's reply variables: their text is appended to these rows' replies */
static const struct { enum row_id row; const char *name; } sqmail_append[] = {
  { ROW_SNDR_BAD_HELO, "REPLY_HELO" },          { ROW_SNDR_DNS_HELO, "REPLY_HELO" },
  { ROW_RCPT_FAILED, "REPLY_MAILBOX" },         { ROW_DATA_INVALID_SIZE, "REPLY_MAXSIZE" },
  { ROW_ORIG_BAD_MAILFROM, "REPLY_BADMAILFROM" }, { ROW_RCPT_BAD_RCPTTO, "REPLY_BADRCPTTO" },
  { ROW_ORIG_DNS_MF, "REPLY_SENDEREXIST" },     { ROW_SNDR_INVALID_RELAY, "REPLY_NOGATEWAY" },
  { ROW_ORIG_INVALID_SENDER, "REPLY_SENDERINVALID" },
  { ROW_DATA_BAD_MIME, "REPLY_CONTENT" },       { ROW_DATA_BAD_LOADER, "REPLY_CONTENT" },
};

/* a reply variable's value when it is one line of text: anything that
 * would split the reply is refused */
static const char *reply_env(const char *name)
{
  const char *v = getenv(name);
  return v && *v && !strpbrk(v, "\r\n") ? v : NULL;
}

/* the s/qmail variable of row, or NULL */
static const char *sqmail_name(enum row_id row)
{
  for (size_t i = 0; i < sizeof sqmail_append / sizeof *sqmail_append; i++)
    if (sqmail_append[i].row == row) return sqmail_append[i].name;
  return NULL;
}

const char *row_text(enum row_id row)
{
  const struct row *r = row_get(row);
  char name[64] = "REPLY_";
  size_t n = strlen(name);
  for (const char *c = r->condition; *c && n < sizeof name - 1; c++)
    if (*c != '_' && *c != '-') name[n++] = (char)toupper((unsigned char)*c);
  name[n] = 0;
  const char *sq = sqmail_name(row);
  if (sq && strcmp(sq, name) == 0) return r->text;     /* the s/qmail name: appended, not replacing */
  const char *v = reply_env(name);
  return v ? v : r->text;
}

void reply_row(struct session *s, enum row_id row, bool temporary_variant)
{
  reply_row_text(s, row, row_text(row), temporary_variant);
}

/* the row's reply with base as its text (a check's own text, such as
 * HELOCHECK='s or an SPF explanation), s/qmail's variable appended */
void reply_row_text(struct session *s, enum row_id row, const char *base, bool temporary_variant)
{
  const struct row *r = row_get(row);
  char text[1024];
  const char *sq = sqmail_name(row), *extra = sq ? reply_env(sq) : NULL;
  snprintf(text, sizeof text, "%s%s%s", base, extra ? " " : "", extra ? extra : "");
  if (row == ROW_RCPT_FAILED && temporary_variant)
    reply_code(s, 450, "4.2.1", text);
  else
    reply_code(s, r->code, r->estatus, text);
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
