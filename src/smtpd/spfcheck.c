/* spfcheck.c -- SPF (RFC 7208) for clients that are neither relay clients
 * nor authenticated, with s/qmail's levels in the SPF variable:
 *   0 off   1 evaluate, add Received-SPF, log Accept::SPF::... on pass
 *   2 also defer a temperror, and a permerror (a syntax error, a loop,
 *     too many lookups) as s/qmail does (Deferred::SPF::Temp_Error,
 *     451 4.4.3, detail the problem; "permerror: ..." for the latter)
 *   3 also refuse fail (Reject::SPF::Fail, 550 5.7.23 with the explanation)
 *   4 also refuse softfail, 5 also neutral, 6 also none
 *     (Reject::ORIG::SPF, detail the result)
 * The identity is MAIL FROM, or postmaster@HELO for the null sender; the
 * check runs once per transaction, at its first recipient, through the
 * session's resolver, with control/spflocalrules and control/spfexplain.
 */
#include "smtpd.h"
#include "spf.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int spf_level(void)
{
  const char *v = getenv("SPF");
  if (!v || !*v) return 0;
  char *end;
  long n = strtol(v, &end, 10);
  return *end || n < 0 || n > 6 ? -1 : (int)n;
}

static void evaluate(struct session *s)
{
  char helo[SPF_TEXT_MAX], sender[ADDR_MAX + 1];
  struct spf_options opt = {
    .local_rules = s->cfg->spflocalrules.len ? str_cstr((str *)&s->cfg->spflocalrules) : NULL,
    .default_explanation = s->cfg->spfexplain.len ? str_cstr((str *)&s->cfg->spfexplain) : NULL,
  };
  size_t n = s->helo.len < sizeof helo - 1 ? s->helo.len : sizeof helo - 1;
  memcpy(helo, s->helo.s ? s->helo.s : "", n);
  helo[n] = 0;
  n = s->mailfrom.len < sizeof sender - 1 ? s->mailfrom.len : sizeof sender - 1;
  memcpy(sender, s->mailfrom.s ? s->mailfrom.s : "", n);
  sender[n] = 0;
  if (!s->spf) s->spf = calloc(1, sizeof *s->spf);
  if (!s->spf) return;
  struct dns *d = session_dns(s);
  if (!d) { s->spf->result = SPF_TEMPERROR; snprintf(s->spf->problem, sizeof s->spf->problem, "no resolver"); }
  else spf_check(d, s->conn.remoteip, helo, sender, str_cstr((str *)&s->cfg->me), &opt, s->spf);
  s->spf_done = true;
}

/* "permerror: <problem>", kept in the answer (asked for at each recipient) */
static const char *permerror_detail(struct spf_answer *a)
{
  static const char tag[] = "permerror: ";
  size_t n = strlen(a->problem), t = sizeof tag - 1;
  if (strncmp(a->problem, tag, t) == 0) return a->problem;
  if (n + t >= sizeof a->problem) n = sizeof a->problem - t - 1;
  memmove(a->problem + t, a->problem, n);
  memcpy(a->problem, tag, t);
  a->problem[t + n] = 0;
  if (n == 0) snprintf(a->problem + t, sizeof a->problem - t, "invalid SPF record");
  return a->problem;
}

enum row_id spf_rcpt_check(struct session *s, struct rcpt *r)
{
  int level = spf_level();
  if (level <= 0) return ROW_NONE;
  if (!s->spf_done) evaluate(s);
  if (!s->spf) return ROW_NONE;
  switch (s->spf->result) {
  case SPF_PASS:
    return ROW_NONE;
  case SPF_TEMPERROR:
    if (level < 2) return ROW_NONE;
    s->spf_done = false;                                /* ask again at the next recipient */
    r->detail = s->spf->problem[0] ? s->spf->problem : "temperror";
    return ROW_SPF_TEMP_ERROR;
  case SPF_FAIL:
    if (level < 3) return ROW_NONE;
    r->detail = s->spf->mechanism;
    if (s->spf->explanation[0]) {                         /* the sender's text: one reply line, printable */
      for (char *c = s->spf->explanation; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
      r->reply_text = s->spf->explanation;
    }
    return ROW_SPF_FAIL;
  case SPF_SOFTFAIL:
    if (level < 4) return ROW_NONE;
    break;
  case SPF_NEUTRAL:
    if (level < 5) return ROW_NONE;
    break;
  case SPF_PERMERROR:                                   /* s/qmail: 451 from level 2 on (D27) */
    if (level < 2) return ROW_NONE;
    r->detail = permerror_detail(s->spf);
    return ROW_SPF_TEMP_ERROR;
  case SPF_NONE:
    if (level < 6) return ROW_NONE;
    break;
  }
  r->detail = spf_result_name(s->spf->result);
  return ROW_ORIG_SPF;
}

bool spf_passed(const struct session *s)
{
  return s->spf_done && s->spf && s->spf->result == SPF_PASS;
}

/* "Received-SPF: ..." for a message from a client SPF was checked for */
void spf_header(struct session *s, str *out)
{
  str v = STR_INIT(4096);
  if (!s->spf_done || !s->spf || spf_level() <= 0) return;
  if (spf_received_spf(s->spf, str_cstr((str *)&s->cfg->me), &v)) {
    str_cats(out, "Received-SPF: ");
    for (size_t i = 0; i < v.len; i++)                  /* one header line, whatever the record held */
      str_catc(out, (unsigned char)v.s[i] < 0x20 ? '?' : v.s[i]);
    str_catc(out, '\n');
  }
  str_free(&v);
}

/* the transaction is over: the next one is checked anew */
void spf_reset(struct session *s)
{
  s->spf_done = false;
}
