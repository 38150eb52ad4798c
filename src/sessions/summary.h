/* summary.h -- the summary's counters, shared by the text, Prometheus
 * and HTML reports (report_summary.c, report_html.c). */
#ifndef MXGATE_SESSIONS_SUMMARY_H
#define MXGATE_SESSIONS_SUMMARY_H
#include "sessions.h"

struct entry { char *key; size_t len; unsigned long hash, n, m; };
struct map { struct entry *e; unsigned char *tag; size_t n, cap; unsigned long other; };   /* tag: see report_summary.c */

struct summary {
  unsigned long sessions, accepted, rejected, deferred, partial, rbl, tls, denied;
  unsigned long actions[3];                      /* Accept, Reject, Deferred */
  unsigned long rcpt_ok, rcpt_bad, hour[24][3];
  struct map rows, bad_ip, bad_from, bad_to, auth;
  bool want_list;                                 /* --html: keep the session list */
  str list;                                      /* HTML table rows */
  unsigned long listed;
};

/* sorts a map by count (largest first), compacting it */
void sorted(struct map *m);
#endif
