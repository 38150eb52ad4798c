/* dkim_sign.c -- DKIM signing (RFC 6376) of the mail of authenticated and
 * relay clients, with libopendkim, once per message in the session, before
 * the queue: both queue paths get the signed message.
 *
 * A client is trusted when it authenticated (AUTH), is a relay client
 * (RELAYCLIENT) or showed a valid client certificate. For such a client,
 * with control/dkimdomains present, the header section is collected as it
 * arrives; at its end the domain of the From: field picks the line of
 * control/dkimdomains ("domain:selector[:keyfile]"), the key is read and
 * the signer is started; the header fields and then the body are handed
 * to libopendkim as they stream. At the end of data the DKIM-Signature
 * field is put first in the headers written before the message.
 *
 * Unsigned, without a word: no From: field, several From: fields or
 * addresses, a From: address without a usable domain, or a domain with no
 * line. A line whose key cannot be read or used, or a malformed
 * control/dkimdomains, is a fault: Deferred::DKIM::Sign_Failure (451),
 * its detail naming the file; the message is never sent on unsigned when
 * its domain's key exists on paper.
 *
 * DKIMSIGN_HEADERS (colon-separated field names, From required) and
 * DKIMSIGN_CANON (header/body: simple or relaxed) set h= and c=.
 */
#include "smtpd.h"
#include "dkimcheck.h"
#include "control.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <opendkim/dkim.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define SIGN_HEADER_MAX (256 * 1024)
#define SIGN_FIELDS_MAX 64
#define DKIMDOMAINS "control/dkimdomains"
#define KEY_MAX (64 * 1024)
#define DKIMDOMAINS_MAX (1024 * 1024)

static const char *const default_fields =
  "From:Sender:Reply-To:Subject:Date:Message-ID:To:Cc:MIME-Version:Content-Type:"
  "Content-Transfer-Encoding:In-Reply-To:References";

/* the signing settings of this client, from the environment */
struct sign_opts {
  char fields[1024];                    /* DKIMSIGN_HEADERS, split in place */
  const char *field[SIGN_FIELDS_MAX + 1];
  dkim_canon_t hcanon, bcanon;
};

struct dkim_sign {
  struct session *s;
  struct sign_opts o;
  str header;                           /* the header section, until it ends */
  bool in_body, no_sign, failed;
  int nl;                               /* newlines in a row (2: the blank line) */
  DKIM_LIB *lib;
  DKIM *dkim;
  char problem[512];                    /* why signing failed */
};

static bool canon_word(const char *p, size_t n, dkim_canon_t *out)
{
  if (n == 6 && strncmp(p, "simple", 6) == 0) { *out = DKIM_CANON_SIMPLE; return true; }
  if (n == 7 && strncmp(p, "relaxed", 7) == 0) { *out = DKIM_CANON_RELAXED; return true; }
  return false;
}

/* NULL, or why DKIMSIGN_HEADERS / DKIMSIGN_CANON are unusable */
static const char *opts_read(struct sign_opts *o)
{
  const char *v = getenv("DKIMSIGN_HEADERS");
  if (!v || !*v) v = default_fields;
  if (strlen(v) >= sizeof o->fields) return "DKIMSIGN_HEADERS: too long";
  strcpy(o->fields, v);
  size_t n = 0;
  bool from = false;
  for (char *f = o->fields, *next; f; f = next) {
    next = strchr(f, ':');
    if (next) *next++ = 0;
    if (!*f) continue;
    for (const char *c = f; *c; c++)
      if (*c <= 0x20 || *c >= 0x7f) return "DKIMSIGN_HEADERS: not a colon-separated list of field names";
    if (n == SIGN_FIELDS_MAX) return "DKIMSIGN_HEADERS: more than 64 fields";
    if (strcasecmp(f, "from") == 0) from = true;
    o->field[n++] = f;
  }
  o->field[n] = NULL;
  if (!from) return "DKIMSIGN_HEADERS: From must be signed";
  v = getenv("DKIMSIGN_CANON");
  if (!v || !*v) v = "relaxed/relaxed";
  const char *slash = strchr(v, '/');
  size_t hn = slash ? (size_t)(slash - v) : strlen(v);
  if (!canon_word(v, hn, &o->hcanon)) return "DKIMSIGN_CANON: not simple or relaxed, or header/body of them";
  o->bcanon = DKIM_CANON_SIMPLE;                 /* RFC 6376 3.5: c=relaxed alone is relaxed/simple */
  if (slash && !canon_word(slash + 1, strlen(slash + 1), &o->bcanon))
    return "DKIMSIGN_CANON: not simple or relaxed, or header/body of them";
  return NULL;
}

const char *dkim_sign_config_error(void)
{
  struct sign_opts o;
  return opts_read(&o);
}

static bool trusted(const struct session *s)
{
  return s->conn.relayclient || s->authenticated || s->cert_relay;
}

struct dkim_sign *dkim_sign_open(struct session *s)
{
  char path[4096];
  if (!trusted(s) || !control_path(path, sizeof path, DKIMDOMAINS) || access(path, F_OK) != 0) return NULL;
  struct dkim_sign *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->s = s;
  g->header = (str)STR_INIT(SIGN_HEADER_MAX);
  const char *bad = opts_read(&g->o);
  if (bad) { snprintf(g->problem, sizeof g->problem, "%s", bad); g->failed = true; }
  return g;
}

static void fail(struct dkim_sign *g, const char *what, const char *why)
{
  if (g->failed) return;
  snprintf(g->problem, sizeof g->problem, "%.200s: %.200s", what, why);
  g->failed = true;
}

/* ---- the From: field's domain ---- */

/* the value of the one From: field of the unfolded header section; NULL
 * when there is none or more than one */
static const char *from_value(const char *hdr, size_t n, size_t *len)
{
  const char *found = NULL;
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    bool end = i == n || (hdr[i] == '\n' && !(i + 1 < n && (hdr[i + 1] == ' ' || hdr[i + 1] == '\t')));
    if (!end) continue;
    const char *f = hdr + start;
    size_t fl = i - start;
    size_t k = 4;
    if (fl > 4 && strncasecmp(f, "from", 4) == 0) {
      while (k < fl && (f[k] == ' ' || f[k] == '\t')) k++;
      if (k < fl && f[k] == ':') {
        if (found) return NULL;                          /* several From: fields */
        found = f + k + 1;
        *len = fl - k - 1;
      }
    }
    start = i + 1;
  }
  return found;
}

/* the domain of the single address in a From: value, lower-cased into
 * out; false for none, several, or one that is not a plain domain */
static bool from_domain(const char *v, size_t n, char *out, size_t cap)
{
  char addr[512];
  size_t alen = 0;
  int depth = 0, addrs = 0;
  bool quoted = false, in_angle = false, angled = false, any = false;
  for (size_t i = 0; i < n; i++) {
    char c = v[i];
    if (quoted) {
      if (c == '\\' && i + 1 < n) i++;
      else if (c == '"') quoted = false;
      continue;
    }
    if (depth) {                                         /* a comment, nested */
      if (c == '\\' && i + 1 < n) i++;
      else if (c == '(') depth++;
      else if (c == ')') depth--;
      continue;
    }
    if (c == '(') { depth = 1; continue; }
    if (c == '"') { quoted = true; any = true; continue; }
    if (c == ',' && !in_angle) { if (any) addrs++; any = false; continue; }
    if (c == ':' || c == ';') return false;              /* a group */
    if (c == '<') {
      if (angled) return false;
      in_angle = angled = true; alen = 0; any = true; continue;
    }
    if (c == '>') { if (!in_angle) return false; in_angle = false; continue; }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    any = true;
    if (angled && !in_angle) continue;                   /* after <...> */
    if (alen + 1 >= sizeof addr) return false;
    addr[alen++] = c;
  }
  if (any) addrs++;
  if (addrs != 1 || quoted || depth || in_angle) return false;
  addr[alen] = 0;
  const char *at = strrchr(addr, '@');
  if (!at || !at[1] || strlen(at + 1) >= cap) return false;
  size_t k = 0;
  for (const char *d = at + 1; *d; d++) {
    unsigned char c = (unsigned char)*d;
    if (!isalnum(c) && c != '-' && c != '.') return false;
    out[k++] = (char)tolower(c);
  }
  out[k] = 0;
  if (out[k - 1] == '.') out[--k] = 0;
  return k > 0 && out[0] != '.';
}

/* ---- control/dkimdomains and the key ---- */

struct signer {
  char selector[64];
  char keyfile[512];
};

/* the line of domain in control/dkimdomains: 1 found, 0 none, -1 fault */
static int domain_line(struct dkim_sign *g, const char *domain, struct signer *out)
{
  str list = STR_INIT(DKIMDOMAINS_MAX);
  char why[128];
  int r = control_readfile(&list, DKIMDOMAINS, DKIMDOMAINS_MAX);
  if (r <= 0) {
    fail(g, DKIMDOMAINS, r == 0 ? strerror(ENOENT) : strerror(errno));
    str_free(&list);
    return -1;
  }
  const char *p = list.s, *end = list.s + list.len;
  int lineno = 0;
  r = 0;
  while (r == 0 && p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    char line[1024];
    lineno++;
    if (n && p[n - 1] == '\r') n--;
    bool fits = n < sizeof line;
    if (fits) { memcpy(line, p, n); line[n] = 0; }
    p = nl ? nl + 1 : end;
    if (fits && (!line[0] || line[0] == '#')) continue;
    char *sel = fits ? strchr(line, ':') : NULL;
    char *key = sel ? strchr(sel + 1, ':') : NULL;
    if (sel) *sel++ = 0;
    if (key) *key++ = 0;
    bool ok = fits && line[0] &&
              (!sel || (*sel && strlen(sel) < sizeof out->selector && !strpbrk(sel, " \t|/,"))) &&
              (!key || (*key && strlen(key) + 16 < sizeof out->keyfile));
    if (!ok) {
      snprintf(why, sizeof why, "line %d: not domain[:selector[:keyfile]]", lineno);
      fail(g, DKIMDOMAINS, why);
      r = -1;
      break;
    }
    if (strcasecmp(line, domain) != 0) continue;
    snprintf(out->selector, sizeof out->selector, "%s", sel ? sel : "default");
    if (!key) snprintf(out->keyfile, sizeof out->keyfile, "control/dkim/%s/%s", domain, out->selector);
    else if (key[0] == '/') snprintf(out->keyfile, sizeof out->keyfile, "%s", key);
    else snprintf(out->keyfile, sizeof out->keyfile, "control/%s", key);
    r = 1;
  }
  str_free(&list);
  return r;
}

/* the PEM key of keyfile, checked to be an RSA private key; false on a fault */
static bool key_read(struct dkim_sign *g, const char *keyfile, str *key)
{
  int r = control_readfile(key, keyfile, KEY_MAX);
  if (r <= 0) {
    fail(g, keyfile, r == 0 ? strerror(ENOENT) : errno == EFBIG ? "too large for a key" : strerror(errno));
    return false;
  }
  BIO *bio = BIO_new_mem_buf(key->s ? key->s : "", (int)key->len);
  EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
  bool rsa = pk && EVP_PKEY_base_id(pk) == EVP_PKEY_RSA;
  EVP_PKEY_free(pk);
  BIO_free(bio);
  if (!rsa) { fail(g, keyfile, "not a PEM RSA private key"); return false; }
  return str_0(key);
}

/* the signer for domain, once the header is known: false on a fault */
static bool signer_start(struct dkim_sign *g, const char *domain)
{
  struct signer sg;
  int r = domain_line(g, domain, &sg);
  if (r <= 0) { g->no_sign = r == 0; return r == 0; }
  str key = STR_INIT(KEY_MAX);
  if (!key_read(g, sg.keyfile, &key)) { str_free(&key); return false; }
  DKIM_STAT st = DKIM_STAT_OK;
  unsigned int flags = DKIM_LIBFLAGS_FIXCRLF;
  g->lib = dkim_init(NULL, NULL);
  if (g->lib && dkim_options(g->lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags) == DKIM_STAT_OK &&
      dkim_options(g->lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, g->o.field, sizeof(char **)) == DKIM_STAT_OK)
    g->dkim = dkim_sign(g->lib, (const u_char *)"mxgate", NULL, (u_char *)key.s, (const u_char *)sg.selector,
                        (const u_char *)domain, g->o.hcanon, g->o.bcanon, DKIM_SIGN_RSASHA256, -1, &st);
  str_free(&key);
  if (!g->dkim) { fail(g, sg.keyfile, "libopendkim cannot sign with it"); return false; }
  return true;
}

/* ---- the message ---- */

/* one field to the library, its lines joined by CRLF as on the wire */
static void give_field(struct dkim_sign *g, const char *p, size_t n)
{
  str f = STR_INIT(SIGN_HEADER_MAX * 2);
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\n') str_catc(&f, '\r');
    str_catc(&f, p[i]);
  }
  if (dkim_header(g->dkim, (u_char *)(f.s ? f.s : ""), f.len) != DKIM_STAT_OK)
    fail(g, "header field", dkim_geterror(g->dkim) ? dkim_geterror(g->dkim) : "refused by libopendkim");
  str_free(&f);
}

/* the header section is complete: choose the signer and give it the fields */
static void header_done(struct dkim_sign *g)
{
  const char *p = g->header.s ? g->header.s : "";
  size_t n = g->header.len, vlen = 0, start = 0;
  char domain[256];
  g->in_body = true;
  const char *v = from_value(p, n, &vlen);
  if (!v || !from_domain(v, vlen, domain, sizeof domain)) g->no_sign = true;
  else if (signer_start(g, domain) && !g->no_sign) {
    for (size_t i = 0; i < n && !g->failed; i++) {
      if (p[i] != '\n' || (i + 1 < n && (p[i + 1] == ' ' || p[i + 1] == '\t'))) continue;
      if (i > start) give_field(g, p + start, i - start);
      start = i + 1;
    }
    if (!g->failed && dkim_eoh(g->dkim) != DKIM_STAT_OK) fail(g, "header", "refused by libopendkim");
  }
  str_free(&g->header);
}

static bool signing(const struct dkim_sign *g)
{
  return g->dkim && !g->failed && !g->no_sign;
}

void dkim_sign_feed(struct dkim_sign *g, const char *p, size_t n)
{
  if (!g || g->failed || g->no_sign) return;
  if (g->in_body) { if (signing(g)) dkim_body(g->dkim, (u_char *)p, n); return; }
  for (size_t i = 0; i < n; i++) {
    g->nl = p[i] == '\n' ? g->nl + 1 : 0;
    if (g->nl == 2 || (g->nl == 1 && g->header.len == 0)) {
      header_done(g);
      if (signing(g) && i + 1 < n) dkim_body(g->dkim, (u_char *)p + i + 1, n - i - 1);
      return;
    }
    if (!str_catc(&g->header, p[i])) {
      g->no_sign = true;                    /* a header section past 256 KiB is not signed */
      str_free(&g->header);
      return;
    }
  }
}

/* 1: the message goes on, with the DKIM-Signature field first in hdrs
 * when it was signed; 0: signing failed, why in detail */
int dkim_sign_result(struct dkim_sign *g, char *detail, size_t cap, str *hdrs)
{
  if (!g->failed && !g->no_sign && !g->in_body) header_done(g);      /* all header, no body */
  if (!g->failed && g->no_sign) return 1;
  unsigned char *sig = NULL;
  size_t siglen = 0;
  if (!g->failed && (dkim_eom(g->dkim, NULL) != DKIM_STAT_OK ||
                     dkim_getsighdr_d(g->dkim, sizeof "DKIM-Signature: " - 1, &sig, &siglen) != DKIM_STAT_OK))
    fail(g, "signature", dkim_geterror(g->dkim) ? dkim_geterror(g->dkim) : "libopendkim could not sign");
  if (g->failed) { snprintf(detail, cap, "%s", g->problem); return 0; }
  str out = STR_INIT(hdrs->max ? hdrs->max : 0);
  bool ok = str_cats(&out, "DKIM-Signature: ");
  for (size_t i = 0; i < siglen; i++)
    if (sig[i] != '\r') ok = ok && str_catc(&out, (char)sig[i]);      /* the queue's lines end in LF */
  ok = ok && str_catc(&out, '\n') && str_catb(&out, hdrs->s ? hdrs->s : "", hdrs->len);
  if (!ok) { str_free(&out); snprintf(detail, cap, "signature: out of memory"); return 0; }
  str_free(hdrs);
  *hdrs = out;
  return 1;
}

void dkim_sign_close(struct dkim_sign *g)
{
  if (!g) return;
  if (g->dkim) dkim_free(g->dkim);
  if (g->lib) dkim_close(g->lib);
  str_free(&g->header);
  free(g);
}
