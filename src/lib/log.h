/* log.h -- the log contract: the row table and the one line formatter.
 *
 *   TAG: pid PID Action::Type::Condition: S:IP:FQDN P:Proto H:helo F:from T:rcpt[ ?~ 'user'][ 'detail']
 *
 * Rows live in rows.def only; code names them as ROW_<id>. log_format()
 * escapes every field (bytes 0x00-0x20, 0x7F, '\', '\'' and invalid UTF-8
 * become \xHH; a field longer than LOG_FIELD_MAX bytes is cut and ends in
 * "..."), so client input can never split or forge a line. log_write()
 * emits the line with a single write(2).
 */
#ifndef MXGATE_LOG_H
#define MXGATE_LOG_H
#include <stddef.h>
#include <stdbool.h>
#include <sys/types.h>

enum row_id {
#define ROW(id, action, type, cond, code, es, text) ROW_##id,
#include "rows.def"
#undef ROW
  ROW_COUNT
};

struct row {
  const char *action;     /* Accept, Reject, Deferred */
  const char *type;       /* AUTH, DATA, ORIG, RCPT, SNDR, TLS, SPF, GREY, DKIM, ... */
  const char *condition;
  int code;               /* SMTP reply code, 0 when the row has none */
  const char *estatus;    /* RFC 3463 enhanced status */
  const char *text;       /* default reply text */
};

const struct row *row_get(enum row_id id);
/* "Reject::AUTH::login" -> ROW_AUTH_LOGIN_FAIL; -1 when unknown */
int row_find(const char *name);
/* writes "Action::Type::Condition" into buf; returns its length */
size_t row_name(enum row_id id, char *buf, size_t cap);

/* one field of a line: s == NULL means "not known yet": left out */
struct log_field { const char *s; size_t len; };
#define LOG_FIELD_NONE ((struct log_field){ NULL, 0 })
struct log_field log_cstr(const char *s);   /* NULL stays NONE */

struct log_fields {
  const char *tag;          /* "qmail-smtpd" or "qmail-popup" */
  pid_t pid;
  struct log_field ip, host, proto, helo, from, rcpt, user, detail;
};

#define LOG_FIELD_MAX 256
#define LOG_LINE_MAX 8192

/* escape one field into out (cap >= 4*LOG_FIELD_MAX+4); returns length */
size_t log_escape(char *out, size_t cap, const char *s, size_t len);
/* the complete line with its trailing newline; returns its length */
size_t log_format(char *out, size_t cap, enum row_id id, const struct log_fields *f);
/* format and write with one write(2); returns false on a write error */
bool log_write(int fd, enum row_id id, const struct log_fields *f);

#endif
