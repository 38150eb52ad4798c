/* bounce.c -- delivery status notifications (RFC 3464) for the recipients
 * of a queue entry that failed for good (mxgate-queue(8), BOUNCES).
 *
 * One call writes ONE new queue entry (entry.c) and commits it with one
 * flush (spool_commit): a multipart/report; report-type=delivery-status
 * message with a plain-words first part, a message/delivery-status part
 * (the per-message fields, then one group of fields per failed
 * recipient) and the original message's headers as text/rfc822-headers
 * (never its body). The caller marks the recipients 'b' only after that
 * commit (bounce_mark), so a crash in between sends a second DSN at
 * worst and never loses one.
 *
 * Who gets it, as qmail-send does: the original sender, from the null
 * sender; when the original sender is null (a bounce that bounced), the
 * address of control/doublebounceto (a local part, default "postmaster",
 * at control/doublebouncehost, default control/me; one holding an '@' is
 * taken whole; an empty line: double bounces are dropped), from the
 * sender "#@[]" (BOUNCE_DOUBLE_SENDER), so that when the double bounce
 * fails too it is recognised and dropped: no triple bounce.
 *
 * The warning of control/bouncewarn (bounce_warn_commit) is the same
 * report with Action: delayed, to a real sender only; when to send it is
 * the queue runner's choice. Client bytes in the report (addresses,
 * replies) have their control bytes made '?'; a part with 8-bit bytes
 * says so (Content-Transfer-Encoding: 8bit).
 */
#include "queue.h"
#include "control.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BOUNCE_HEADERS_MAX (64 * 1024)   /* bytes of the original's headers attached, cut at a line */

enum bounce_kind bounce_kind_of(const struct entry *e)
{
  const char *s = e->env.sender;
  if (strcmp(s, BOUNCE_DOUBLE_SENDER) == 0) return BOUNCE_DISCARD;
  return *s ? BOUNCE_TO_SENDER : BOUNCE_DOUBLE;
}

/* an RFC 3463 code at p: class "2"/"4"/"5", then 1-3 digits twice, each
 * after a dot, ended by a blank or the end; its length or 0 */
static size_t enhanced_code(const char *p)
{
  size_t k = 0;
  if (p[k] != '2' && p[k] != '4' && p[k] != '5') return 0;
  k++;
  for (int part = 0; part < 2; part++) {
    if (p[k++] != '.') return 0;
    size_t d = 0;
    while (p[k] >= '0' && p[k] <= '9' && d < 4) { k++; d++; }
    if (d < 1 || d > 3) return 0;
  }
  return p[k] == 0 || p[k] == ' ' || p[k] == '\t' ? k : 0;
}

/* the enhanced code of an SMTP reply ("550 5.1.1 ..." or "550-5.1.1 ...",
 * the first line of a joined multi-line reply) into out; false if none,
 * or a 2.x.x, which never explains a failure */
static bool reply_code(const char *reply, char *out, size_t cap)
{
  const char *p = reply ? reply : "";
  bool smtp = p[0] >= '2' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9' &&
              (p[3] == ' ' || p[3] == '-');
  size_t n = smtp ? enhanced_code(p + 4) : 0;
  if (!n || p[4] == '2' || n >= cap) return false;
  memcpy(out, p + 4, n);
  out[n] = 0;
  return true;
}

void bounce_status(const char *reply, bool expired, char *out, size_t cap)
{
  if (!reply_code(reply, out, cap)) snprintf(out, cap, "%s", expired ? "4.4.7" : "5.0.0");
}

/* a delayed recipient's Status: its reply's enhanced code of class 4, else 4.0.0 */
static void delay_status(const char *reply, char *out, size_t cap)
{
  if (!reply_code(reply, out, cap) || out[0] != '4') snprintf(out, cap, "4.0.0");
}

void bounce_mark(str *records, struct entry *e, size_t i, const char *reply)
{
  struct entry_rcpt *r = &e->rcpt[i];
  r->state = 'b';
  r->next_try = 0;
  if (reply) snprintf(r->reply, sizeof r->reply, "%s", reply);
  entry_record(records, i, r);
}

/* ---- the message ---- */

/* s into out with control bytes (and a line break) made '?': client
 * input can neither end a header line nor add one */
static void cat_safe(str *out, const char *s)
{
  for (; *s; s++) str_catc(out, (unsigned char)*s < 32 || *s == 127 ? '?' : *s);
}

static void cat_date(str *out, time_t t)
{
  char buf[64];
  struct tm tm;
  if (localtime_r(&t, &tm) && strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S %z", &tm)) str_cats(out, buf);
}

/* the original's header section (up to its empty line), whole lines, at most BOUNCE_HEADERS_MAX */
static void cat_original_headers(str *out, const struct entry *e)
{
  char *buf = malloc(BOUNCE_HEADERS_MAX + 1);
  size_t want = e->msglen < BOUNCE_HEADERS_MAX ? (size_t)e->msglen : BOUNCE_HEADERS_MAX, got = 0;
  if (!buf) return;
  while (got < want) {
    ssize_t r = pread(e->fd, buf + got, want - got, (off_t)(e->msgoff + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  size_t end = 0;
  for (size_t k = 0; k < got; ) {
    const char *nl = memchr(buf + k, '\n', got - k);
    if (!nl) { if (got == e->msglen) end = got; break; }  /* a last header line without its newline */
    size_t len = (size_t)(nl - (buf + k));
    if (len == 0 || (len == 1 && buf[k] == '\r')) break;  /* the empty line: the body follows */
    end = k = (size_t)(nl - buf) + 1;
  }
  str_catb(out, buf, end);
  if (end && buf[end - 1] != '\n') str_catc(out, '\n');
  free(buf);
}

struct dsn {
  const struct entry *e;
  enum bounce_kind kind;
  const struct bounce_failure *f;
  size_t n;
  const char *reason;
  bool delayed;                 /* a warning (control/bouncewarn): Action: delayed */
  long long retry_until;        /* the warning's Will-Retry-Until, 0 unknown */
  const char *me;
  const char *to;               /* the DSN's recipient */
  char id[256];                 /* of the new entry, for Message-ID and the boundary */
};

static bool is_smtp_reply(const char *r)
{
  return r[0] >= '2' && r[0] <= '5' && r[1] >= '0' && r[1] <= '9' && r[2] >= '0' && r[2] <= '9' &&
         (r[3] == ' ' || r[3] == '-' || r[3] == 0);
}

static void cat_headers(str *m, const struct dsn *d)
{
  str_cats(m, "From: Mail Delivery System <MAILER-DAEMON@");
  cat_safe(m, d->me);
  str_cats(m, ">\nTo: <");
  cat_safe(m, d->to);
  str_cats(m, d->delayed ? ">\nSubject: Delayed: your message is not delivered yet\n"
              : d->kind == BOUNCE_DOUBLE ? ">\nSubject: Undeliverable bounce: a delivery status notification failed\n"
              : ">\nSubject: Undeliverable: your message could not be delivered\n");
  str_cats(m, "Date: ");
  cat_date(m, time(NULL));
  str_cats(m, "\nMessage-ID: <");
  cat_safe(m, d->id);
  str_cats(m, "@");
  cat_safe(m, d->me);
  str_cats(m, ">\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\n"
              "Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"=_mxgate_");
  cat_safe(m, d->id);
  str_cats(m, "\"\n\nThis is a MIME-formatted delivery status notification (RFC 3464).\n");
}

static void cat_boundary(str *m, const struct dsn *d, bool last)
{
  str_cats(m, "\n--=_mxgate_");
  cat_safe(m, d->id);
  str_cats(m, last ? "--\n" : "\n");
}

/* the first part: what failed and why, in plain words */
static void cat_human(str *m, const struct dsn *d)
{
  const struct entry *e = d->e;
  str_cats(m, "This is the mail system at ");
  cat_safe(m, d->me);
  str_cats(m, ".\n\n");
  if (d->delayed) {
    str_cats(m, "Your message has not been delivered yet to the recipients below.\n"
                "This is only a warning: delivery will be tried again");
    if (d->retry_until) { str_cats(m, " until\n"); cat_date(m, (time_t)d->retry_until); }
    str_cats(m, ".\nYou need not send it again. The headers of your message are attached.\n\n");
  } else if (d->kind == BOUNCE_DOUBLE)
    str_cats(m, "A message with the null sender (most likely a bounce) could not be\n"
                "delivered to the recipients below. Having no sender to return it to,\n"
                "this report goes to the postmaster. No further notification will be sent.\n\n");
  else
    str_cats(m, "Your message could not be delivered to the recipients below.\n"
                "This is a permanent failure: no further attempts will be made.\n"
                "The headers of your message are attached; its body is not.\n\n");
  for (size_t i = 0; i < d->n; i++) {
    const struct bounce_failure *f = &d->f[i];
    const char *reply = e->rcpt[f->rcpt].reply;
    str_cats(m, "<");
    cat_safe(m, e->env.rcpt[f->rcpt]);
    str_cats(m, ">:\n    ");
    if (d->reason) {
      cat_safe(m, d->reason);
      str_cats(m, ".");
      if (*reply) { str_cats(m, "\n    The last attempt said: "); cat_safe(m, reply); }
    } else if (d->delayed) {
      str_cats(m, "Not delivered yet");
      if (*reply) { str_cats(m, "; the last attempt said: "); cat_safe(m, reply); }
      else str_cats(m, ".");
    } else if (f->expired) {
      str_cats(m, "It could not be delivered for longer than the queue lifetime; I gave up.");
      if (*reply) { str_cats(m, "\n    The last attempt said: "); cat_safe(m, reply); }
    } else {
      if (f->remote_mta && *f->remote_mta) { str_cats(m, "The server "); cat_safe(m, f->remote_mta); str_cats(m, " said: "); }
      cat_safe(m, *reply ? reply : "no reason was given");
    }
    str_cats(m, "\n\n");
  }
}

/* the second part: message/delivery-status */
static void cat_status(str *m, const struct dsn *d)
{
  const struct entry *e = d->e;
  char status[16];
  struct stat st;
  time_t birth = (time_t)e->queued_at, changed = fstat(e->fd, &st) == 0 ? st.st_mtime : 0;
  str_cats(m, "Reporting-MTA: dns; ");
  cat_safe(m, d->me);
  if (birth) { str_cats(m, "\nArrival-Date: "); cat_date(m, birth); }
  str_cats(m, "\n");
  for (size_t i = 0; i < d->n; i++) {
    const struct bounce_failure *f = &d->f[i];
    const struct entry_rcpt *r = &e->rcpt[f->rcpt];
    if (d->delayed) delay_status(r->reply, status, sizeof status);
    else bounce_status(d->reason ? "" : r->reply, f->expired, status, sizeof status);
    str_cats(m, "\nFinal-Recipient: rfc822; ");
    cat_safe(m, e->env.rcpt[f->rcpt]);
    str_cats(m, d->delayed ? "\nAction: delayed\nStatus: " : "\nAction: failed\nStatus: ");
    str_cats(m, status);
    if (f->remote_mta && *f->remote_mta) { str_cats(m, "\nRemote-MTA: dns; "); cat_safe(m, f->remote_mta); }
    if (is_smtp_reply(r->reply)) { str_cats(m, "\nDiagnostic-Code: smtp; "); cat_safe(m, r->reply); }
    time_t last = f->last_attempt ? (time_t)f->last_attempt : r->attempts ? changed : 0;
    if (last) { str_cats(m, "\nLast-Attempt-Date: "); cat_date(m, last); }
    if (d->delayed && d->retry_until) { str_cats(m, "\nWill-Retry-Until: "); cat_date(m, (time_t)d->retry_until); }
    str_cats(m, "\n");
  }
}

static bool has_8bit(const str *s)
{
  for (size_t k = 0; k < s->len; k++) if ((unsigned char)s->s[k] > 127) return true;
  return false;
}

/* one body part: its header lines, then what says that body holds 8-bit
 * bytes (an address or reply in UTF-8, as SMTPUTF8 allows), then body */
static void cat_part(str *m, const char *headers, const str *body, const char *charset)
{
  bool eight = has_8bit(body);
  str_cats(m, headers);
  if (charset) { str_cats(m, "; charset="); str_cats(m, eight ? "utf-8" : charset); }
  str_cats(m, eight ? "\nContent-Transfer-Encoding: 8bit\n\n" : "\n\n");
  str_catb(m, body->s, body->len);
}

static bool build(str *m, const struct dsn *d)
{
  str human = STR_INIT(16u << 20), status = STR_INIT(16u << 20), orig = STR_INIT(BOUNCE_HEADERS_MAX + 2);
  cat_original_headers(&orig, d->e);
  cat_human(&human, d);
  cat_status(&status, d);
  cat_headers(m, d);
  cat_boundary(m, d, false);
  cat_part(m, "Content-Description: Notification\nContent-Type: text/plain", &human, "us-ascii");
  cat_boundary(m, d, false);
  cat_part(m, "Content-Description: Delivery report\nContent-Type: message/delivery-status", &status, NULL);
  cat_boundary(m, d, false);
  cat_part(m, "Content-Description: Headers of the undelivered message\nContent-Type: text/rfc822-headers", &orig, NULL);
  cat_boundary(m, d, true);
  bool ok = str_0(&human) && str_0(&status) && str_0(&orig);
  str_free(&human);
  str_free(&status);
  str_free(&orig);
  return ok && str_0(m);                           /* false: some append ran out of memory */
}

/* the double bounce's recipient into out: 1, 0 when double bounces are
 * dropped (an empty control/doublebounceto), -1 on an error */
static int doublebounce_to(str *out, const char *me)
{
  str host = STR_INIT(1024);
  int r = control_readline(out, "doublebounceto", "postmaster") < 0 ? -1 : out->len ? 1 : 0;
  if (r == 1 && !memchr(out->s, '@', out->len)) {
    if (control_readline(&host, "doublebouncehost", me) < 0 || !str_catc(out, '@') || !str_catb(out, host.s, host.len))
      r = -1;
  }
  str_free(&host);
  return r == 1 && !str_0(out) ? -1 : r;
}

static bool envelope_of(struct envelope *env, const char *sender, const char *rcpt)
{
  memset(env, 0, sizeof *env);
  env->raw = (str)STR_INIT(8192);
  return str_catc(&env->raw, 'F') && str_cats(&env->raw, sender) && str_catc(&env->raw, 0) &&
         str_catc(&env->raw, 'T') && str_cats(&env->raw, rcpt) && str_catc(&env->raw, 0) && str_catc(&env->raw, 0);
}

/* the DSN d committed as one new queue entry, its id into id */
static int commit(struct dsn *d, char *id, size_t idcap)
{
  char host[256] = "localhost";
  str me = STR_INIT(1024), to = STR_INIT(2048), msg = STR_INIT(BOUNCE_HEADERS_MAX + (34u << 20));
  struct envelope env;
  struct entry_writer w;
  int r = QQ_OK;
  if (idcap) *id = 0;
  if (d->kind == BOUNCE_DISCARD || d->n == 0) return QQ_OK;
  gethostname(host, sizeof host - 1);
  if (control_readline(&me, "me", host) < 0 || !str_0(&me)) { str_free(&me); return QQ_CONFIG; }
  if (d->kind == BOUNCE_DOUBLE) {
    int db = doublebounce_to(&to, me.s);
    if (db <= 0) { str_free(&me); str_free(&to); return db < 0 ? QQ_CONFIG : QQ_OK; }
  } else if (!str_copys(&to, d->e->env.sender) || !str_0(&to)) r = QQ_NOMEM;
  d->me = me.s;
  d->to = to.s ? to.s : "";
  memset(&env, 0, sizeof env);
  if (r == QQ_OK && (r = entry_create(&w)) == QQ_OK) {
    snprintf(d->id, sizeof d->id, "%s", w.id);
    if (!build(&msg, d) || !envelope_of(&env, d->kind == BOUNCE_DOUBLE ? BOUNCE_DOUBLE_SENDER : "", d->to)) r = QQ_NOMEM;
    else if (!entry_write(&w, msg.s, msg.len)) r = errno == ENOSPC || errno == EDQUOT ? QQ_WRITE : QQ_QUEUEDIR;
    if (r == QQ_OK) r = spool_commit(&w, &env);   /* discards it when it fails */
    else entry_discard(&w);
    if (r == QQ_OK) {
      if (idcap) snprintf(id, idcap, "%s", w.id);
      close(w.fd);
    }
  }
  envelope_free(&env);
  str_free(&msg);
  str_free(&to);
  str_free(&me);
  return r;
}

int bounce_commit(const struct entry *e, enum bounce_kind kind, const struct bounce_failure *f, size_t n,
                  const char *reason, char *id, size_t idcap)
{
  struct dsn d = { .e = e, .kind = kind, .f = f, .n = n, .reason = reason };
  return commit(&d, id, idcap);
}

int bounce_warn_commit(const struct entry *e, const struct bounce_failure *f, size_t n, long long retry_until,
                       char *id, size_t idcap)
{
  /* only to a real sender: a bounce (or a double bounce) is never warned about */
  struct dsn d = { .e = e, .kind = bounce_kind_of(e) == BOUNCE_TO_SENDER ? BOUNCE_TO_SENDER : BOUNCE_DISCARD,
                   .f = f, .n = n, .delayed = true, .retry_until = retry_until };
  return commit(&d, id, idcap);
}
