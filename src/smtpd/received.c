/* received.c -- the Received: header mxgate-smtpd puts on every message
 * (RFC 5321 4.4; protocol names of RFC 3848/6531: ESMTP, ESMTPS, ESMTPA,
 * ESMTPSA, UTF8SMTP...). Client-supplied text (the HELO name) is cleaned of
 * control bytes so it cannot add header lines.
 */
#include "smtpd.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void cat_clean(str *out, const char *p, size_t n)
{
  for (size_t i = 0; i < n && i < 255; i++) {
    unsigned char c = (unsigned char)p[i];
    str_catc(out, c < 0x21 || c == 0x7f || c == '(' || c == ')' ? '?' : (char)c);
  }
}

/* header text: printable bytes and blanks, nothing that could end the line */
static void cat_text(str *out, const char *p, size_t n)
{
  for (size_t i = 0; i < n && i < 900; i++) {
    unsigned char c = (unsigned char)p[i];
    str_catc(out, c < 0x20 || c == 0x7f ? '?' : (char)c);
  }
}

static const char *with_protocol(const struct session *s, char *buf, size_t cap)
{
  snprintf(buf, cap, "%s%s%s", s->smtputf8 ? "UTF8SMTP" : s->esmtp ? "ESMTP" : "SMTP",
           s->tls ? "S" : "", s->authenticated ? "A" : "");
  return buf;
}

/* RBLSMTPD that reaches the server (rblsmtpd let the client through, or
 * tcprules set it) is the RBL's information about the client: recorded */
static void rbl_info(str *out)
{
  const char *rbl = getenv("RBLSMTPD");
  if (!rbl || !*rbl) return;
  str_cats(out, "X-RBL-Info: ");
  if (rbl[0] == '-') rbl++;
  cat_text(out, rbl, strlen(rbl));
  str_cats(out, "\n");
}

bool received_header(struct session *s, str *out)
{
  char date[64], proto[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  if (!s->conn.relayclient && !s->authenticated) spf_header(s, out);
  str_cats(out, "Received: from ");
  if (s->seen_helo && s->helo.len) cat_clean(out, s->helo.s, s->helo.len);
  else str_cats(out, "unknown");
  str_cats(out, " (");
  str_cats(out, s->conn.have_remotehost ? s->conn.remotehost : "unknown");
  str_cats(out, " [");
  str_cats(out, s->conn.remoteip);
  str_cats(out, "])\n\tby ");
  str_catb(out, s->cfg->me.s, s->cfg->me.len);
  str_cats(out, " (mxgate) with ");
  str_cats(out, with_protocol(s, proto, sizeof proto));
  if (s->tls) {
    const struct tls_info *ti = &s->tlsinfo;
    str_cats(out, " (version=");
    str_cats(out, ti->version);
    str_cats(out, " cipher=");
    str_cats(out, ti->cipher);
    str_cats(out, ")");
  }
  if (s->authenticated) {
    str_cats(out, " (authenticated as ");
    cat_clean(out, s->auth_user.s, s->auth_user.len);
    str_cats(out, ")");
  }
  str_cats(out, " id ");
  str_catu(out, (unsigned long long)s->pid);
  if (s->rcpt_accepted == 1) {
    str_cats(out, "\n\tfor <");
    cat_clean(out, s->first_rcpt.s, s->first_rcpt.len);
    str_cats(out, ">");
  }
  str_cats(out, "; ");
  str_cats(out, date);
  str_cats(out, "\n");
  rbl_info(out);
  return out->len > 0;
}
