/* sessions.h -- mxgate-sessions: follow SMTP and POP3 sessions through
 * tcpserver/sslserver, rblsmtpd, qmail-smtpd and qmail-popup log lines.
 *
 * parse.c turns one line into a struct logline (no allocation); join.c
 * keeps the open sessions in a hash table keyed by (syslog host, pid),
 * emits each as it closes and evicts sessions idle for more than
 * IDLE_LIMIT seconds of log time, so memory stays bounded on endless
 * input; report_*.c print sessions and the summary.
 */
#ifndef MXGATE_SESSIONS_H
#define MXGATE_SESSIONS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "str.h"

#define IDLE_LIMIT 3600          /* seconds of log time without a line: a session is evicted */
#define EVENTS_MAX 2000          /* decisions kept per session (more are counted) */
#define FIELD_MAX 512

enum line_kind { L_NONE, L_STATUS, L_OPEN, L_OK, L_DENY, L_END, L_RBL, L_DECISION, L_WARNING };

struct logline {
  enum line_kind kind;
  double ts;                     /* seconds since 1970, 0 if the line had no stamp */
  const char *host; size_t hostlen;   /* syslog host, "" otherwise */
  long pid;
  const char *prog;              /* "tcpserver", "sslserver", "qmail-smtpd", ... */
  /* L_OPEN: ip; L_OK/L_DENY: local, remote; L_END: status; L_RBL: ip, text; L_DECISION: below */
  const char *a; size_t alen;
  const char *b; size_t blen;
  long status;
  /* decision */
  const char *row; size_t rowlen;       /* Action::Type::Condition */
  const char *f[8]; size_t flen[8];     /* S, P, H, F, T, user, detail, (S host) */
};
enum { F_IP, F_PROTO, F_HELO, F_FROM, F_TO, F_USER, F_DETAIL, F_SHOST };

/* parse.c */
bool parse_line(const char *p, size_t n, struct logline *l);
/* \xHH decoding into out (cut at cap - 1) */
size_t unescape(const char *in, size_t n, char *out, size_t cap);

struct event {
  double ts;
  char row[64];
  char helo[FIELD_MAX], from[FIELD_MAX], to[FIELD_MAX], user[128], detail[FIELD_MAX], proto[16];
};

struct session {
  char host[64];
  long pid;
  double start, end, last;
  bool seen_open, seen_end, denied;
  long status;                   /* raw wait status, -1 unknown */
  char ip[64], client_host[256], local[128], port[8];
  char rbl[FIELD_MAX];
  char helo[FIELD_MAX], proto[16];
  struct event *ev;
  size_t nev, cap, dropped;
  struct session *next;          /* hash chain */
};

struct filter {
  const char *ip, *from, *to, *user, *action, *row;
  long pid;
  double since, until;
};

struct report;
typedef void (*emit_fn)(struct report *r, const struct session *s);

struct report {
  FILE *out;
  enum { FMT_TEXT, FMT_JSON, FMT_CSV } format;
  bool summary, prometheus, quiet;
  const char *html;
  struct filter filter;
  struct summary *sum;
  unsigned long lines, unrecognised, sessions, partial;
};

/* join.c */
struct table;
struct table *table_new(void);
void table_line(struct table *t, const struct logline *l, struct report *r);
void table_flush(struct table *t, struct report *r);          /* end of input: the rest as partial */
void table_free(struct table *t);

/* report_text.c */
bool filter_match(const struct filter *f, const struct session *s);
void report_session(struct report *r, const struct session *s);
/* report_summary.c */
struct summary *summary_new(bool want_list);
void summary_add(struct summary *sum, const struct session *s);
void summary_print(const struct summary *sum, const struct report *r, FILE *out);
void summary_prometheus(const struct summary *sum, const struct report *r, FILE *out);
int summary_html(const struct summary *sum, const struct report *r, const char *path, const str *rows);

/* input.c */
int read_input(const char *path, struct table *t, struct report *r, bool follow);

int sessions_main(int argc, char **argv);
#endif
