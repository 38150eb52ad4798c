/* mav.c -- LOCALMFCHECK: may this relay client use this sender address?
 *
 * Mail address verification (MAV) as in s/qmail: only relay clients are
 * judged -- RELAYCLIENT set, authenticated by AUTH, or a valid client
 * certificate. Mail from other servers is not, whatever its sender
 * (badmailfrom's "@domain+" refuses our domains from them). The null
 * sender is never judged. Per RCPT, in the local branch of rcpt.c:
 *   LOCALMFCHECK=domain   the sender's domain is that domain or one of ours
 *   LOCALMFCHECK=(other)  the sender's domain is one of ours (rcpthosts,
 *                         morercpthosts; ".domain" lines cover subdomains)
 *   LOCALMFCHECK==        the sender is the user name: the authenticated
 *                         user, else TCPREMOTEINFO; a client with neither
 *                         gave no name to compare: Require_Auth
 *   LOCALMFCHECK=?        the sender is the e-mail of the client
 *                         certificate; a client without one: Require_Auth
 *   LOCALMFCHECK=!        control/mailfromrules.cdb decides (below); when
 *                         there is no such file, the domain mode
 * Failing gives Reject::ORIG::Invalid_Sender, passing marks the recipient
 * for Accept::ORIG::Local_Sender.
 *
 * mailfromrules.cdb: the client's rule is the first key found of
 * TCPREMOTEINFO, INFO@IP, INFO@=HOST, IP, =HOST, IP prefixes ("192.0.2.",
 * longest first), host suffixes ("=.example.test"), "=" (lower-cased), as
 * qmail-mfrules(8) lists them. A relay client without a rule is refused.
 * The rule's data is a list of senders, each matched against the end of
 * the sender address: "example.test" allows joe@mail.example.test,
 * "-sales@d" allows big-sales@d, "@d" anyone at d, "*" anyone (an mxgate
 * addition); an empty list allows anyone. "!" in the list: the client must
 * have authenticated (AUTH or certificate), else Reject::ORIG::Missing_Auth.
 * The list is separated by ',' as mxgate-cdb stores it, or by a '+' before
 * each sender as s/qmail's qmail-mfrules stores it (data starting with '+').
 */
#include "smtpd.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool try_key(struct cdbx *c, const char *key, str *rule)
{
  char low[600];
  size_t n = strlen(key);
  if (!n || n >= sizeof low) return false;
  for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)key[i]);
  return cdbx_find(c, low, n, rule) == 1;
}

/* the rule for this client: 1 found, 0 none, -1 no mailfromrules.cdb,
 * -2 the file cannot be read */
static int mfrule_find(const struct session *s, str *rule)
{
  struct cdbx c;
  char key[600];
  const struct conn *k = &s->conn;
  bool found = false;
  int o = cdbx_open(&c, "control/mailfromrules.cdb");
  if (o != 1) return o == 0 ? -1 : -2;
  if (k->remoteinfo[0]) {
    found = try_key(&c, k->remoteinfo, rule);
    if (!found) { snprintf(key, sizeof key, "%s@%s", k->remoteinfo, k->remoteip); found = try_key(&c, key, rule); }
    if (!found && k->have_remotehost) { snprintf(key, sizeof key, "%s@=%s", k->remoteinfo, k->remotehost); found = try_key(&c, key, rule); }
  }
  if (!found) found = try_key(&c, k->remoteip, rule);
  if (!found && k->have_remotehost) { snprintf(key, sizeof key, "=%s", k->remotehost); found = try_key(&c, key, rule); }
  char sep = strchr(k->remoteip, ':') ? ':' : '.';
  for (size_t n = strlen(k->remoteip); !found && n > 0; n--) {       /* longest prefix first */
    if (k->remoteip[n - 1] != sep) continue;
    snprintf(key, sizeof key, "%.*s", (int)n, k->remoteip);
    found = try_key(&c, key, rule);
  }
  for (const char *h = k->have_remotehost ? strchr(k->remotehost, '.') : NULL; !found && h; h = strchr(h + 1, '.')) {
    snprintf(key, sizeof key, "=%s", h);
    found = try_key(&c, key, rule);
  }
  if (!found) found = try_key(&c, "=", rule);
  cdbx_close(&c);
  return found;
}

/* what a rule says of this sender */
struct rule_verdict {
  bool need_auth;     /* "!": the client must have authenticated */
  bool allowed;       /* an entry covers the sender, or the list names none */
};

/* the sender ends in entry e (case ignored) */
static bool sender_ends_in(const struct session *s, const char *e, size_t n)
{
  const str *mf = &s->mailfrom;
  return n <= mf->len && str_equal_nocase(mf->s + mf->len - n, n, e, n);
}

static struct rule_verdict rule_judge(const struct session *s, const str *rule)
{
  struct rule_verdict v = { false, false };
  char sep = rule->len && rule->s[0] == '+' ? '+' : ',';     /* qmail-mfrules: "+a+b" */
  bool any_sender = false;
  for (size_t i = 0; i <= rule->len; ) {
    size_t j = i;
    while (j < rule->len && rule->s[j] != sep) j++;
    const char *e = rule->s + i;
    size_t n = j - i;
    i = j + 1;
    if (!n) continue;
    if (n == 1 && e[0] == '!') { v.need_auth = true; continue; }
    any_sender = true;
    if ((n == 1 && e[0] == '*') || sender_ends_in(s, e, n)) v.allowed = true;
  }
  if (!any_sender) v.allowed = true;                        /* an empty list: any sender */
  return v;
}

static bool domain_mode_ok(const struct session *s, const char *mode)
{
  const char *dom;
  size_t domlen;
  if (strlen(mode) > 1 && addr_domain(s->mailfrom.s, s->mailfrom.len, &dom, &domlen) &&
      str_equal_nocase(mode, strlen(mode), dom, domlen))
    return true;
  return rcpthosts_match(s->cfg, s->mailfrom.s, s->mailfrom.len);
}

/* LOCALMFCHECK=!: ROW_NONE passes (and sets *ok), else the refusal */
static enum row_id rules_check(struct session *s, bool *ok)
{
  str rule = STR_INIT(4096);
  int found = mfrule_find(s, &rule);
  enum row_id row = ROW_NONE;
  if (found == -1) {
    *ok = domain_mode_ok(s, "!");                          /* as s/qmail: no file, the domain mode */
  } else if (found == -2) {
    fprintf(stderr, "mxgate-smtpd: pid %ld warning: control/mailfromrules.cdb cannot be read; sender refused\n",
            (long)s->pid);
    *ok = false;
  } else if (found == 0) {
    *ok = false;                                           /* a relay client without a rule */
  } else {
    struct rule_verdict v = rule_judge(s, &rule);
    if (v.need_auth && !s->authenticated && !s->cert_relay) row = ROW_ORIG_MISSING_AUTH;
    *ok = v.allowed;
  }
  str_free(&rule);
  return row;
}

/* local branch: relay clients (RELAYCLIENT, AUTH, certificate); sets r->local_sender */
enum row_id mav_check_local(struct session *s, struct rcpt *r)
{
  const char *mode = getenv("LOCALMFCHECK");
  if (!mode || !s->mailfrom.len) return ROW_NONE;
  bool ok;
  if (strcmp(mode, "=") == 0) {
    const char *who = s->authenticated ? str_cstr(&s->auth_user) : s->conn.remoteinfo;
    if (!*who) return ROW_ORIG_REQUIRE_AUTH;
    ok = str_equal_nocase(who, strlen(who), s->mailfrom.s, s->mailfrom.len);
  } else if (strcmp(mode, "?") == 0) {
    const char *email = s->tls ? s->tlsinfo.peer_email : "";
    if (!*email) return ROW_ORIG_REQUIRE_AUTH;
    ok = str_equal_nocase(email, strlen(email), s->mailfrom.s, s->mailfrom.len);
  } else if (strcmp(mode, "!") == 0) {
    enum row_id row = rules_check(s, &ok);
    if (row != ROW_NONE) return row;
  } else {
    ok = domain_mode_ok(s, mode);
  }
  if (!ok) return ROW_ORIG_INVALID_SENDER;
  r->local_sender = true;
  return ROW_NONE;
}
