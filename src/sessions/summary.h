/* summary.h -- the summary's counters, shared by the text, Prometheus
 * and HTML reports (report_summary.c, report_html.c). */
#ifndef MXGATE_SESSIONS_SUMMARY_H
#define MXGATE_SESSIONS_SUMMARY_H
#include "sessions.h"

struct entry { char *key; size_t len; unsigned long hash, n, m; };
struct keyblock { struct keyblock *next; size_t used, cap; char data[]; };
/* tag: see report_summary.c; keys: where the keys are kept, freed with the map */
struct map { struct entry *e; unsigned char *tag; size_t n, cap; unsigned long other; struct keyblock *keys; };

/* a row as the summary counts it: its entry in the rows map (while the
 * map has cap slots: a larger map has moved its entries) and what it is */
struct rowkind { size_t len, cap; struct entry *e; int action; bool queued, auth_ok, auth_bad; };
#ifndef ROWCACHE                 /* the fuzz build makes it small: a fresh summary per input */
#define ROWCACHE 256
#endif

struct summary {
  unsigned long sessions, accepted, rejected, deferred, partial, rbl, tls, denied;
  unsigned long actions[3];                      /* Accept, Reject, Deferred */
  unsigned long rcpt_ok, rcpt_bad, hour[24][3];
  long hour_sec, hour_of;                         /* the last second a decision was counted in, and its hour */
  struct rowkind rowcache[ROWCACHE], rowspare;     /* rows met, by a hash of their ends; a row the map had no room for */
  struct map rows, bad_ip, bad_from, bad_to, auth;
  unsigned long sent[4];                          /* delivery attempts: delivered, deferred, Perm_Failure, Expired */
  struct map sent_dom, bounced_dom;               /* by recipient domain: n delivered, m deferred or bounced; n bounced */
  bool want_list;                                 /* --html: keep the session list */
  str list;                                      /* HTML table rows */
  unsigned long listed;
};

/* sorts a map by count (largest first), compacting it */
void sorted(struct map *m);
#endif
