/* mav.c -- LOCALMFCHECK: may this client use this sender address?
 *
 * Mail address verification as in s/qmail, judged per RCPT:
 * - a client that is neither authenticated nor a relay client may not use a
 *   sender of our own domains (rcpthosts/morercpthosts): Require_Auth;
 * - an authenticated or relay client must use a sender it owns, else
 *   Invalid_Sender; passing gives Accept::ORIG::Local_Sender:
 *     LOCALMFCHECK=domain   the sender's domain is that domain or one of ours
 *     LOCALMFCHECK=(other)  the sender's domain is one of ours
 *     LOCALMFCHECK==        the sender is the authenticated user
 *     LOCALMFCHECK=?        the sender is the e-mail of the client certificate
 *     LOCALMFCHECK=!        control/mailfromrules.cdb decides (see below)
 * mailfromrules.cdb: keys tried in order TCPREMOTEINFO, INFO@IP,
 * INFO@=HOST, IP, =HOST, IP prefixes ("192.0.2."), host suffixes
 * ("=.example.test"), "="; lower-cased. The data is a comma list of what
 * the client may send as: an address, "@domain", ".domain" (subdomains),
 * "*", and "!" (the client must authenticate: Missing_Auth). A client with
 * no rule is judged as in the domain mode.
 */
#include "smtpd.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool sender_ours(const struct session *s)
{
  return rcpthosts_match(s->cfg, s->mailfrom.s, s->mailfrom.len);
}

static bool try_key(struct cdbx *c, const char *key, str *rule)
{
  char low[600];
  size_t n = strlen(key);
  if (!n || n >= sizeof low) return false;
  for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)key[i]);
  return cdbx_find(c, low, n, rule) == 1;
}

/* the rule for this client; false when none applies */
static bool mfrule_find(const struct session *s, str *rule)
{
  struct cdbx c;
  char key[600];
  const struct conn *k = &s->conn;
  bool found = false;
  if (cdbx_open(&c, "control/mailfromrules.cdb") != 1) return false;
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

static bool rule_has(const str *rule, const char *item)
{
  size_t n = strlen(item), i = 0;
  while (i <= rule->len) {
    size_t j = i;
    while (j < rule->len && rule->s[j] != ',') j++;
    if (str_equal_nocase(rule->s + i, j - i, item, n)) return true;
    i = j + 1;
  }
  return false;
}

/* 1 the sender is allowed by the rule, 0 not, -1 the rule lists no senders */
static int rule_allows(const struct session *s, const str *rule)
{
  const char *dom;
  size_t domlen;
  bool any = false;
  bool has_dom = addr_domain(s->mailfrom.s, s->mailfrom.len, &dom, &domlen);
  for (size_t i = 0; i <= rule->len; ) {
    size_t j = i;
    while (j < rule->len && rule->s[j] != ',') j++;
    const char *e = rule->s + i;
    size_t n = j - i;
    i = j + 1;
    if (!n || (n == 1 && e[0] == '!')) continue;
    any = true;
    if (n == 1 && e[0] == '*') return 1;
    if (str_equal_nocase(e, n, s->mailfrom.s, s->mailfrom.len)) return 1;
    if (!has_dom) continue;
    if (e[0] == '@' && str_equal_nocase(e + 1, n - 1, dom, domlen)) return 1;
    if (e[0] == '.' && domlen > n && str_equal_nocase(e, n, dom + domlen - n, n)) return 1;
    if (e[0] != '@' && e[0] != '.' && !memchr(e, '@', n) && str_equal_nocase(e, n, dom, domlen)) return 1;
  }
  return any ? 0 : -1;
}

static bool domain_mode_ok(const struct session *s, const char *mode)
{
  const char *dom;
  size_t domlen;
  if (strlen(mode) > 1 && addr_domain(s->mailfrom.s, s->mailfrom.len, &dom, &domlen) &&
      str_equal_nocase(mode, strlen(mode), dom, domlen))
    return true;
  return sender_ours(s);
}

/* remote branch: clients that are not relay clients */
enum row_id mav_check_remote(struct session *s, struct rcpt *r)
{
  const char *mode = getenv("LOCALMFCHECK");
  (void)r;
  if (!mode || !s->mailfrom.len) return ROW_NONE;
  if (strcmp(mode, "!") == 0) {
    str rule = STR_INIT(4096);
    bool must_auth = mfrule_find(s, &rule) && rule_has(&rule, "!");
    str_free(&rule);
    if (must_auth) return ROW_ORIG_MISSING_AUTH;
  }
  return sender_ours(s) ? ROW_ORIG_REQUIRE_AUTH : ROW_NONE;
}

/* local branch: authenticated and relay clients; sets r->local_sender */
enum row_id mav_check_local(struct session *s, struct rcpt *r)
{
  const char *mode = getenv("LOCALMFCHECK");
  if (!mode || !s->mailfrom.len) return ROW_NONE;
  bool ok;
  if (strcmp(mode, "=") == 0) {
    const char *who = s->authenticated ? str_cstr(&s->auth_user) : s->conn.remoteinfo;
    ok = *who && str_equal_nocase(who, strlen(who), s->mailfrom.s, s->mailfrom.len);
  } else if (strcmp(mode, "?") == 0) {
    const char *email = s->tls ? s->tlsinfo.peer_email : "";
    ok = *email && str_equal_nocase(email, strlen(email), s->mailfrom.s, s->mailfrom.len);
  } else if (strcmp(mode, "!") == 0) {
    str rule = STR_INIT(4096);
    int allowed = mfrule_find(s, &rule) ? rule_allows(s, &rule) : -1;
    str_free(&rule);
    ok = allowed < 0 ? domain_mode_ok(s, mode) : allowed == 1;
  } else {
    ok = domain_mode_ok(s, mode);
  }
  if (!ok) return ROW_ORIG_INVALID_SENDER;
  r->local_sender = true;
  return ROW_NONE;
}
