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

enum line_kind { L_NONE, L_STATUS, L_OPEN, L_OK, L_DENY, L_END, L_RBL, L_DECISION, L_WARNING, L_SEND };

struct logline {
  enum line_kind kind;
  double ts;                     /* seconds since 1970, 0 if the line had no stamp (or is a status line) */
  const char *host; size_t hostlen;   /* syslog host, "" otherwise */
  long pid;
  bool escaped;                  /* the message holds a '\\': fields need unescape(); of a decision, outside its
                                  * detail; always set on an ok or deny line (unescape() finds out) */
  bool detail_escaped;           /* a decision's detail holds one (a queued message's "qp\\x20..." does) */
  const char *prog;              /* "tcpserver", "sslserver", "qmail-smtpd", ... */
  /* L_OPEN: ip; L_OK/L_DENY: local, remote; L_END: status; L_RBL: ip, text; L_DECISION: below */
  const char *a; size_t alen;
  const char *b; size_t blen;
  long status;
  /* decision */
  const char *row; size_t rowlen;       /* Action::Type::Condition */
  const char *f[8]; size_t flen[8];     /* S, P, H, F, T, user, detail, (S host): L_DECISION and L_SEND
                                         * (mxgate-send's delivery line: S the next hop, T the recipient) */
};
enum { F_IP, F_PROTO, F_HELO, F_FROM, F_TO, F_USER, F_DETAIL, F_SHOST };

/* zeroed memory whose pages are already written: see join.c */
void *zalloc(size_t n);

/* scan.c: the index of a block of text, a bit per byte; bit i of word w
 * stands for base[64 * w + i]. stop: spaces, newlines and every byte past
 * len (a search for one always ends); nl: newlines; esc: backslashes */
struct scan { const char *base; size_t len; unsigned long long *stop, *nl, *esc; size_t cap; };
bool scan_block(struct scan *ix, const char *base, size_t len);    /* false: out of memory */
/* the vector code used: 0 SSE2 (or plain C), 1 AVX2, 2 AVX-512BW, the CPU's
 * best unless a test asks for a lower one (want >= 0); -1 only asks */
int scan_level(int want);
void scan_free(struct scan *ix);

/* parse.c; a reader's memo of the last TAI64N second it decoded (lines
 * come many to a second), zeroed before its first line; NULL for none.
 * seconds: a TAI64N stamp is read to its second only (when only counting:
 * the summary counts by hour, sessions are evicted after an hour).
 * parse_scanned: a line of a scanned block (no newline in p[0..n));
 * parse_line: any line, scanned on its own */
struct parse_memo { char tai_sec[16]; double sec; bool seconds; };
bool parse_scanned(const struct scan *ix, const char *p, size_t n, struct logline *l, struct parse_memo *m);
bool parse_line(const char *p, size_t n, struct logline *l, struct parse_memo *m);
/* \xHH decoding into out (cut at cap - 1) */
size_t unescape(const char *in, size_t n, char *out, size_t cap);
/* the unescaped detail of a delivery line, "qp N id ID[ tls verified|tls
 * unverified]: REPLY", into its parts (pointers into d); false when it is
 * not of that form (then qp is -1 and reply the whole detail) */
struct send_detail { long qp; const char *id, *tls, *reply; size_t idlen, tlslen, replylen; };
bool send_detail(const char *d, size_t n, struct send_detail *out);
/* the qp of a Queued line's unescaped detail ("qp N bytes M"), -1 if none */
long queued_qp(const char *d, size_t n);

/* strings of a session live in its arena: blocks that never move, freed
 * with the session (events point into them) */
struct arena { struct arena *next; size_t used, cap; char data[]; };

struct event {
  double ts;
  const char *row, *helo, *from, *to, *user, *detail, *proto;    /* "" when absent */
};

struct session {
  const char *host;              /* syslog host, "" otherwise */
  size_t hostlen;
  long pid;
  double start, end, last;
  bool seen_open, seen_end, denied;
  bool orphan;                   /* parallel chunks: began before this chunk's first line for its pid */
  bool queued, login, rejected, deferred;      /* outcome so far, set by summary_event() */
  unsigned long rejections;      /* refused decisions so far, for the summary's IP list */
  long status;                   /* raw wait status, -1 unknown */
  const char *ip, *client_host, *local, *port, *rbl, *helo, *proto;
  size_t protolen;
  unsigned long iphash;          /* the summary's hash of ip (and its length), when iphash_of is ip */
  size_t iplen;
  const char *iphash_of;
  struct event *ev;
  size_t nev, cap, dropped;
  size_t *qrec, nqrec, qreccap;     /* its Queued lines' records in the delivery index (deliveries.c) */
  struct arena *arena;
  struct session *next;          /* hash chain, or the list of closed orphans */
};

/* one decision as the summary counts it: unescaped strings with their lengths */
struct decision {
  double ts;
  const char *row, *from, *to, *user;
  size_t rowlen, fromlen, tolen, userlen;
};

struct filter {
  const char *ip, *from, *to, *user, *action, *row;
  long pid;
  bool has_qp; long qp;          /* --qp: sessions whose Queued line has this qp */
  double since, until;
};

struct report;
struct delivery;
typedef void (*emit_fn)(struct report *r, const struct session *s);

struct report {
  FILE *out;
  enum { FMT_TEXT, FMT_JSON, FMT_CSV } format;
  bool summary, prometheus, quiet;
  long threads;                  /* --threads: 0 for one per CPU */
  bool stream;                   /* only counting, no filter: decisions go to the summary as they are read */
  const char *html;
  struct filter filter;
  struct summary *sum;
  struct deliveries *dlv;        /* mxgate-send's delivery lines (deliveries.c), NULL when only counting */
  unsigned long lines, unrecognised, sessions, partial;
};

/* join.c */
struct table;
struct table *table_new(void);
void table_line(struct table *t, const struct logline *l, struct report *r);
void table_flush(struct table *t, struct report *r);          /* end of input: the rest as partial */
void table_free(struct table *t);
/* parallel chunks (input.c): a table for a chunk after the first keeps the
 * sessions that began before it aside, and table_merge joins them to the
 * sessions still open in the table of the chunks before (prev, reporting
 * through r); afterwards prev holds every open session and next none */
struct table *table_new_chunk(void);
void table_merge(struct table *prev, struct table *next, struct report *r);

/* report_text.c */
bool filter_match(const struct filter *f, const struct session *s);
void report_session(struct report *r, struct session *s);
/* deliveries without a session: d[0..n), of one qp and id */
void report_deliveries(struct report *r, const struct delivery **d, size_t n);
void report_unjoined(struct report *r);                /* after the last input */
/* report_summary.c: one delivery attempt, counted by its recipient's domain */
void summary_delivery(struct summary *sum, const char *row, size_t rowlen, const char *rcpt, size_t rcptlen);
/* report_summary.c */
struct summary *summary_new(bool want_list);
void summary_add(struct summary *sum, struct session *s);
void summary_event(struct summary *sum, struct session *s, const struct decision *d);
void summary_merge(struct summary *into, struct summary *from);    /* frees from */
void summary_free(struct summary *sum);
void summary_print(const struct summary *sum, const struct report *r, FILE *out);
void summary_prometheus(const struct summary *sum, const struct report *r, FILE *out);
int summary_html(const struct summary *sum, const struct report *r, const char *path, const str *rows);

/* deliveries.c: mxgate-send's lines, joined to the sessions that queued
 * their messages. A first reading of the logs (indexing) keeps every
 * delivery line and every Queued line; deliveries_resolve() gives each
 * delivery the most recent Queued line of its qp (and syslog host) at or
 * before it; the second reading (joining) hands each session its Queued
 * lines' records. Without a first reading (standard input, -f) each
 * delivery line is reported on its own as it comes. */
struct delivery {
  double ts;
  long pid, qp;                  /* mxgate-send's pid; qp -1 when the detail had none */
  size_t rec;                    /* the Queued record it joined, NO_RECORD for none */
  size_t seq;                    /* its place in the log */
  const char *host, *row, *ip, *hop, *proto, *from, *rcpt, *id, *tls, *reply;    /* unescaped, "" when absent */
};
#define NO_RECORD ((size_t)-1)
struct queued_rec { double ts; long qp; const char *host; size_t first, n; bool claimed; };
enum dlv_phase { DLV_LIVE, DLV_INDEXING, DLV_JOINING };
struct deliveries {
  enum dlv_phase phase;
  struct delivery *d; size_t n, cap;
  struct queued_rec *q; size_t nq, qcap;
  size_t next_queued;            /* joining: the Queued lines met so far */
  size_t *order;                 /* the records by (host, qp, time), for a line not met in the same place */
  size_t unjoined;               /* after deliveries_resolve: d[unjoined..n) have no session */
  struct arena *arena;
};
struct deliveries *deliveries_new(enum dlv_phase phase);
void deliveries_free(struct deliveries *x);
/* a line while indexing (a delivery or a Queued line; others are ignored) */
void deliveries_index(struct deliveries *x, const struct logline *l);
void deliveries_resolve(struct deliveries *x);
/* joining: a Queued line of session s */
void deliveries_queued(struct deliveries *x, struct session *s, const struct logline *l);
/* a session's deliveries (per message id and recipient, in time order), in
 * a malloc'd array of *n; NULL for none */
const struct delivery **deliveries_of(const struct deliveries *x, const struct session *s, size_t *n);
/* a delivery line while live: kept until deliveries_clear() */
const struct delivery *deliveries_add(struct deliveries *x, const struct logline *l);
void deliveries_clear(struct deliveries *x);
bool is_queued_row(const char *row, size_t n);

/* input.c */
int read_input(const char *path, struct table *t, struct report *r, bool follow);

int sessions_main(int argc, char **argv);
#endif
