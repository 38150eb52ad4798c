/* dkim.c -- DKIMVERIFY: DKIM signatures (RFC 6376) verified with
 * libopendkim while the message arrives, keys looked up through the
 * session's resolver (dns.h), never through the library's own.
 *
 * The header section is collected (at most DKIM_HEADER_MAX bytes) and
 * handed over field by field; the body is streamed. Verdict: no signature
 * or a passing one accepts; a signature that fails (bad signature, body
 * hash mismatch, no key, revoked or unusable key) is Reject::DKIM::Signature
 * with the reason as detail; a key lookup that fails temporarily is not a
 * rejection: the message is accepted with dkim=temperror. Every verdict is
 * recorded in an Authentication-Results header (RFC 8601).
 */
#include "smtpd.h"
#include "dkimcheck.h"
#include "dns.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <opendkim/dkim.h>

#define DKIM_HEADER_MAX (256 * 1024)

struct dkim_check {
  struct session *s;
  DKIM_LIB *lib;
  DKIM *dkim;
  str header;                   /* the header section, until it ends */
  bool in_body, given_up;
  int nl;                       /* newlines in a row at the end of header (2: blank line) */
  char problem[128];
};

/* libopendkim asks for selector._domainkey.domain's TXT record */
static DKIM_CBSTAT key_lookup(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
  struct dkim_check *c = dkim_get_user_context(dkim);
  char name[DNS_NAME_MAX + 1];
  struct dns_txts t;
  struct dns *d = session_dns(c->s);
  int n = snprintf(name, sizeof name, "%s._domainkey.%s", (char *)dkim_sig_getselector(sig),
                   (char *)dkim_sig_getdomain(sig));
  if (!d) return DKIM_CBSTAT_TRYAGAIN;
  if (n < 0 || (size_t)n >= sizeof name || !dns_name_ok(name)) return DKIM_CBSTAT_NOTFOUND;
  enum dns_status st = dns_txt(d, name, &t);
  DKIM_CBSTAT r = DKIM_CBSTAT_NOTFOUND;
  if (st == DNS_TEMP) r = DKIM_CBSTAT_TRYAGAIN;
  else if (st == DNS_FOUND && t.n > 0 && t.len[0] < buflen && !memchr(t.txt[0], 0, t.len[0])) {
    memcpy(buf, t.txt[0], t.len[0] + 1);
    r = DKIM_CBSTAT_CONTINUE;
  }
  dns_txts_free(&t);
  return r;
}

struct dkim_check *dkim_check_open(struct session *s)
{
  const char *v = getenv("DKIMVERIFY");
  if (!v || !*v || strcmp(v, "0") == 0) return NULL;
  struct dkim_check *c = calloc(1, sizeof *c);
  DKIM_STAT st;
  if (!c) return NULL;
  c->s = s;
  c->header = (str)STR_INIT(DKIM_HEADER_MAX);
  c->lib = dkim_init(NULL, NULL);
  unsigned int flags = DKIM_LIBFLAGS_FIXCRLF;
  if (!c->lib || dkim_options(c->lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags) != DKIM_STAT_OK ||
      dkim_set_key_lookup(c->lib, key_lookup) != DKIM_STAT_OK ||
      !(c->dkim = dkim_verify(c->lib, (const u_char *)"mxgate", NULL, &st))) {
    snprintf(c->problem, sizeof c->problem, "library setup failed");
    c->given_up = true;
    return c;
  }
  dkim_set_user_context(c->dkim, c);
  return c;
}

/* one field to the library, its folded lines joined by CRLF as on the wire */
static void give_field(struct dkim_check *c, const char *p, size_t n)
{
  str f = STR_INIT(DKIM_HEADER_MAX * 2);
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\n') str_catc(&f, '\r');
    str_catc(&f, p[i]);
  }
  dkim_header(c->dkim, (u_char *)(f.s ? f.s : ""), f.len);
  str_free(&f);
}

/* hand the collected header section over, one field (with its folded lines) at a time */
static void header_done(struct dkim_check *c)
{
  const char *p = c->header.s ? c->header.s : "";
  size_t n = c->header.len, start = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] != '\n') continue;
    bool folded = i + 1 < n && (p[i + 1] == ' ' || p[i + 1] == '\t');
    if (folded) continue;
    if (i > start) give_field(c, p + start, i - start);
    start = i + 1;
  }
  dkim_eoh(c->dkim);
  c->in_body = true;
  str_free(&c->header);
}

void dkim_check_feed(struct dkim_check *c, const char *p, size_t n)
{
  if (!c || c->given_up) return;
  if (c->in_body) { dkim_body(c->dkim, (u_char *)p, n); return; }
  for (size_t i = 0; i < n; i++) {
    c->nl = p[i] == '\n' ? c->nl + 1 : 0;
    if (c->nl == 2 || (c->nl == 1 && c->header.len == 0)) {   /* the blank line ends the header */
      header_done(c);
      if (i + 1 < n) dkim_body(c->dkim, (u_char *)p + i + 1, n - i - 1);
      return;
    }
    if (!str_catc(&c->header, p[i])) {
      snprintf(c->problem, sizeof c->problem, "header section too large");
      c->given_up = true;
      return;
    }
  }
}

static void auth_results(struct dkim_check *c, str *hdrs, const char *result, const char *reason, DKIM_SIGINFO *sig)
{
  str_cats(hdrs, "Authentication-Results: ");
  str_catb(hdrs, c->s->cfg->me.s, c->s->cfg->me.len);
  str_cats(hdrs, "; dkim=");
  str_cats(hdrs, result);
  if (reason) { str_cats(hdrs, " ("); str_cats(hdrs, reason); str_cats(hdrs, ")"); }
  const char *d = sig ? (const char *)dkim_sig_getdomain(sig) : NULL;
  if (d && *d) {
    str_cats(hdrs, " header.d=");
    for (; *d; d++) str_catc(hdrs, *d > 0x20 && *d < 0x7f ? *d : '?');    /* the signer's text: printable only */
  }
  str_catc(hdrs, '\n');
}

/* 1 accept (pass, none, temperror), 0 refuse with the reason in detail */
int dkim_check_result(struct dkim_check *c, char *detail, size_t cap, str *hdrs)
{
  if (!c->given_up && !c->in_body) header_done(c);       /* a message that is all header */
  if (c->given_up) { auth_results(c, hdrs, "permerror", c->problem, NULL); return 1; }
  DKIM_STAT st = dkim_eom(c->dkim, NULL);
  DKIM_SIGINFO *sig = dkim_getsignature(c->dkim);
  int err = sig ? dkim_sig_geterror(sig) : 0;
  if (st == DKIM_STAT_OK) { auth_results(c, hdrs, "pass", NULL, sig); return 1; }
  if (st == DKIM_STAT_NOSIG) { auth_results(c, hdrs, "none", NULL, NULL); return 1; }
  if (err == DKIM_SIGERROR_KEYFAIL || st == DKIM_STAT_KEYFAIL || st == DKIM_STAT_CBTRYAGAIN) {
    auth_results(c, hdrs, "temperror", "key lookup failed", sig);
    return 1;
  }
  const char *why = sig && dkim_sig_getbh(sig) == DKIM_SIGBH_MISMATCH ? "body hash mismatch"
                    : err ? dkim_sig_geterrorstr(err) : NULL;
  if (!why) why = dkim_getresultstr(st);
  snprintf(detail, cap, "%s", why ? why : "verification failed");
  return 0;
}

void dkim_check_close(struct dkim_check *c)
{
  if (!c) return;
  if (c->dkim) dkim_free(c->dkim);
  if (c->lib) dkim_close(c->lib);
  str_free(&c->header);
  free(c);
}
