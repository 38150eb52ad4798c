/* rcpt.c -- RCPT TO: the ordered table of recipient checks.
 *
 * As in s/qmail, clients that are neither relay clients nor authenticated
 * ("split horizon") pass the remote checks first: HELO, DNS, relaying,
 * tarpitting, recipients, SPF; relay clients pass the local ones; then
 * every client passes the common checks: badmailfrom, badrcptto, SIZE,
 * MAXRECIPIENTS. The first check that fails gives the one Reject or
 * Deferred line; an accepted recipient gets exactly one Accept line,
 * chosen by accept_row(). Every check has the same signature and returns
 * ROW_NONE to pass; adding a check is adding a table entry.
 */
#include "smtpd.h"
#include <string.h>
#include <unistd.h>

typedef enum row_id (*rcpt_check_fn)(struct session *s, struct rcpt *r);

static enum row_id check_relay(struct session *s, struct rcpt *r)
{
  if (r->no_at || rcpthosts_match(s->cfg, r->addr.s, r->addr.len)) return ROW_NONE;
  if (relaymailfrom_match(s->cfg, s->mailfrom.s, s->mailfrom.len)) { r->relay_mailfrom = true; return ROW_NONE; }
  return ROW_SNDR_INVALID_RELAY;
}

static enum row_id check_tarpit(struct session *s, struct rcpt *r)
{
  (void)r;
  unsigned long count = s->conn.tarpitcount, delay = s->conn.tarpitdelay;
  if (!count) return ROW_NONE;
  if (s->rcpt_failed >= count) {
    if (delay == 999) s->notorious = true;
    return ROW_RCPT_TOOMANY;
  }
  if (s->rcpt_count >= count && delay > 0 && delay < 999) sleep((unsigned)delay);
  return ROW_NONE;
}

static enum row_id check_recipients(struct session *s, struct rcpt *r)
{
  if (r->relay_mailfrom) return ROW_NONE;
  int known = recipients_check(s, r);
  if (known < 0) return ROW_TEMPFAIL;
  if (known == 0) { s->rcpt_failed++; return ROW_RCPT_FAILED; }
  return ROW_NONE;
}

static enum row_id check_badmailfrom(struct session *s, struct rcpt *r)
{
  if (!s->bmf_form[0] || s->bmf_form[0] == '?') return ROW_NONE;
  r->detail = s->bmf_form;
  return ROW_ORIG_BAD_MAILFROM;
}

static enum row_id check_badrcptto(struct session *s, struct rcpt *r)
{
  return addrlist_match(&s->cfg->badrcptto, r->addr.s, r->addr.len, NULL) ? ROW_RCPT_BAD_RCPTTO : ROW_NONE;
}

static enum row_id check_size(struct session *s, struct rcpt *r)
{
  (void)r;
  return s->size_too_big ? ROW_DATA_INVALID_SIZE : ROW_NONE;
}

static enum row_id check_maxrcpt(struct session *s, struct rcpt *r)
{
  (void)r;
  return s->conn.maxrcpt && s->rcpt_count > s->conn.maxrcpt ? ROW_RCPT_TOOMANY : ROW_NONE;
}

static const rcpt_check_fn remote_checks[] = {
  helo_check, helo_dns_check, mf_dns_check, check_relay, check_tarpit,
  check_recipients, spf_rcpt_check, grey_check,
};
static const rcpt_check_fn local_checks[] = {
  mav_check_local,
};
static const rcpt_check_fn common_checks[] = {
  check_badmailfrom, check_badrcptto, check_size, check_maxrcpt,
};

static enum row_id run_checks(struct session *s, struct rcpt *r, const rcpt_check_fn *list, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    enum row_id row = list[i](s, r);
    if (row != ROW_NONE) return row;
  }
  return ROW_NONE;
}

static bool is_relay_client(const struct session *s)
{
  return s->conn.relayclient || s->authenticated || s->cert_relay;
}

/* the one Accept line of an accepted recipient, in s/qmail's precedence */
static enum row_id accept_row(const struct session *s, const struct rcpt *r)
{
  if (r->local_sender) return ROW_ORIG_LOCAL_SENDER;
  if (s->authenticated) return s->auth_row;
  if (s->conn.relayclient || s->cert_relay) return ROW_SNDR_RELAY_CLIENT;
  if (r->relay_mailfrom) return ROW_ORIG_RELAY_MAILFROM;
  if (spf_passed(s)) {
    switch (r->accept) {
    case ROW_RCPT_CDB: return ROW_SPF_CDB;
    case ROW_RCPT_PAM: return ROW_SPF_PAM;
    case ROW_RCPT_WILD: return ROW_SPF_WILD;
    default: return ROW_SPF_RCPTHOSTS;
    }
  }
  return r->accept;
}

static bool take_address(struct session *s, struct rcpt *r, const char *arg, size_t len)
{
  const char *params;
  int p = addr_parse(arg, len, &r->addr, &params);
  if (p <= 0) { reply(s, p < 0 ? "553 5.1.3 Recipient address too long" : "501 5.1.3 Bad recipient address syntax"); return false; }
  while (*params == ' ') params++;
  if (params < arg + len) { reply(s, "555 5.5.4 Unsupported RCPT parameter"); return false; }
  if (r->addr.len == 0) { reply(s, "501 5.1.3 Empty recipient address"); return false; }
  localip_rewrite(s->cfg, &r->addr);
  if (!memchr(r->addr.s, '@', r->addr.len)) {       /* qmail: no domain, no relay question */
    r->no_at = true;
    str_catc(&r->addr, '@');
    str_catb(&r->addr, s->cfg->me.s, s->cfg->me.len);
  }
  return true;
}

void smtp_rcpt(struct session *s, const char *arg, size_t len)
{
  struct rcpt r = { .addr = STR_INIT(ADDR_MAX + 512), .accept = ROW_RCPT_RCPTHOSTS };
  if (!s->seen_mail) { reply(s, "503 5.5.1 MAIL first"); return; }
  if (!take_address(s, &r, arg, len)) { str_free(&r.addr); return; }
  s->rcpt_count++;
  enum row_id row = ROW_NONE;
  if (!is_relay_client(s))
    row = run_checks(s, &r, remote_checks, sizeof remote_checks / sizeof *remote_checks);
  else {
    row = run_checks(s, &r, local_checks, sizeof local_checks / sizeof *local_checks);
    if (row == ROW_NONE && s->conn.relayclient) str_cats(&r.addr, s->conn.relayclient);
  }
  if (row == ROW_NONE)
    row = run_checks(s, &r, common_checks, sizeof common_checks / sizeof *common_checks);
  if (row == ROW_TEMPFAIL) {
    reply(s, "451 4.3.0 Temporary failure looking up the recipient");
  } else if (row != ROW_NONE && r.reply_text) {
    decide_log(s, row, r.addr.s, r.addr.len, r.detail);
    reply_row_text(s, row, r.reply_text, false);
  } else if (row != ROW_NONE) {
    decide(s, row, r.addr.s, r.addr.len, r.detail);
  } else {
    str_catc(&s->envelope, 'T');
    str_catb(&s->envelope, r.addr.s, r.addr.len);
    str_catc(&s->envelope, 0);
    if (!s->rcpt_accepted++) str_copyb(&s->first_rcpt, r.addr.s, r.addr.len);
    decide_log(s, accept_row(s, &r), r.addr.s, r.addr.len, NULL);
    reply(s, "250 2.1.5 Recipient ok");
  }
  str_free(&r.addr);
}
