/* content.c -- the content checks of DATA, walked in order (content.h).
 *
 * While the message arrives, every byte goes to the MIME scanner (mime.c),
 * whose base64 bodies are checked here against badmimetypes.cdb (the
 * first 9 significant characters of each part: Reject::DATA::Bad_MIME,
 * BADMIMETYPE; '!' also refuses blanks inside base64) and
 * badloadertypes.cdb (each 5-character run starting with $BADLOADERTYPE:
 * Reject::DATA::Bad_Loader; "+c" spares relay clients; "+" alone, as in
 * s/qmail, spares relay clients and takes the start characters from the
 * cdb's own entries), and to clamd (scan_clamd.c). At the end the
 * verdict is, in this order: Bad_MIME/Bad_Loader, Virus_Infected (clamd,
 * then QHPSI on the spooled file; with BASE64 set only for messages with
 * a base64 part), Spam_Message (spamd); DKIM signatures (dkim.c) are
 * judged right after the MIME checks; a message that passes them all is
 * then DKIM-signed for a trusted client (dkim_sign.c;
 * Deferred::DKIM::Sign_Failure when it cannot be). A scanner that cannot answer
 * gives Deferred::DATA::Scanner_Failure (451): never accepted unscanned.
 * With no check configured for the client, content_begin() returns NULL
 * and DATA streams straight to the queue.
 */
#include "smtpd.h"
#include "content.h"
#include "mime.h"
#include "dkimcheck.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIMETYPE_LEN 9
#define LOADER_LEN 5
#define CLAMD_MAXBYTES_DEFAULT 26214400ULL   /* clamd's own StreamMaxLength default */
#define SPAMD_MAXBYTES_DEFAULT 512000ULL     /* spamc's default -s */

/* byte classes inside a base64 body */
enum { B_OTHER, B_SIG, B_BLANK, B_LF };

struct settings {
  bool types_on, blanks_on, loader_on, base64_only, spamheaders;
  char loader;
  const char *clamd, *qhpsi;
  struct spamd_opts spamd;
  int clamd_timeout, qhpsi_timeout;
  unsigned long long clamd_maxbytes;
};

struct content {
  struct session *s;
  struct settings set;
  struct mime mime;
  struct cdbx types, loaders;
  bool loader_start[256];       /* the characters a loader type starts with */
  struct clamd *clamd;
  struct dkim_check *dkim;      /* DKIMVERIFY, or NULL */
  struct dkim_sign *sign;       /* DKIM signing for a trusted client, or NULL */
  bool scan_mime;               /* the MIME scanner is needed */
  /* the current base64 part */
  size_t nsig;
  char first[MIMETYPE_LEN];
  char ring[8];                 /* the last significant characters */
  unsigned long nring;
  bool blank;                   /* a blank seen on this line ('!') */
  char carry[MIMETYPE_LEN];     /* the line's last raw bytes before this piece ('!') */
  size_t carrylen;
  /* the verdict */
  enum row_id row;              /* ROW_COUNT: nothing found yet */
  char detail[256];
};

/* what content_begin() gives when it cannot allocate: a deferral */
static struct content no_memory = { .row = ROW_DATA_SCANNER_FAILURE, .detail = "out of memory" };

static const unsigned char byte_class[256] = {
  ['A' ... 'Z'] = B_SIG, ['a' ... 'z'] = B_SIG, ['0' ... '9'] = B_SIG,
  ['+'] = B_SIG, ['/'] = B_SIG, ['='] = B_SIG, [' '] = B_BLANK, ['\t'] = B_BLANK, ['\n'] = B_LF,
};

static void warn(const struct session *s, const char *what)
{
  char line[512];
  int n = snprintf(line, sizeof line, "mxgate-smtpd: pid %ld warning: %s\n", (long)s->pid, what);
  if (n > 0 && write(s->logfd, line, (size_t)n) < 0) { /* the log is gone */ }
}

/* a number variable: def when unset; false when it is not a number in 0..max */
static bool env_number(const char *name, unsigned long long def, unsigned long long max, unsigned long long *out)
{
  const char *v = getenv(name);
  *out = def;
  if (!v || !*v) return true;
  char *end;
  errno = 0;
  unsigned long long u = strtoull(v, &end, 10);
  if (*end || errno || v[0] == '-' || u > max) return false;
  *out = u;
  return true;
}

static const char *env_set(const char *name)
{
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

/* this client's settings; NULL or why they are unusable */
static const char *settings_read(const struct session *s, struct settings *set)
{
  bool trusted = s->conn.relayclient || s->authenticated;
  memset(set, 0, sizeof *set);
  const char *v = getenv("BADMIMETYPE");
  if (v && strcmp(v, "-") != 0) {
    if (v[strspn(v, "!+")]) return "BADMIMETYPE: not '', '!', '+' or '-'";
    if (!(strchr(v, '+') && trusted)) {
      set->types_on = true;
      set->blanks_on = strchr(v, '!') != NULL;
    }
  }
  v = getenv("BADLOADERTYPE");
  if (v && strcmp(v, "+") == 0) {                 /* s/qmail: off for relay clients, start from the cdb */
    if (!trusted) set->loader_on = true;
  } else if (v && strcmp(v, "-") != 0) {
    bool plus = v[0] == '+' && v[1];
    const char *c = plus ? v + 1 : v;
    if (strlen(c) != 1 || byte_class[(unsigned char)c[0]] != B_SIG || c[0] == '=')
      return "BADLOADERTYPE: not one base64 character, '+' and one, or '-'";
    if (!(plus && trusted)) { set->loader_on = true; set->loader = c[0]; }
  }
  set->clamd = env_set("CLAMD");
  set->qhpsi = env_set("QHPSI");
  set->base64_only = getenv("BASE64") != NULL;
  set->spamd.spec = env_set("SPAMD");
  set->spamd.user = env_set("SPAMD_USER");
  set->spamheaders = getenv("SPAMHEADERS") != NULL;
  unsigned long long ct, qt, st;
  if (!env_number("CLAMD_TIMEOUT", 60, 86400, &ct) || !env_number("QHPSI_TIMEOUT", 120, 86400, &qt) ||
      !env_number("SPAMD_TIMEOUT", 120, 86400, &st) || !ct || !qt || !st)
    return "CLAMD_TIMEOUT, QHPSI_TIMEOUT, SPAMD_TIMEOUT: not a number of seconds from 1 to 86400";
  if (!env_number("CLAMD_MAXBYTES", CLAMD_MAXBYTES_DEFAULT, ULLONG_MAX, &set->clamd_maxbytes) ||
      !env_number("SPAMD_MAXBYTES", SPAMD_MAXBYTES_DEFAULT, ULLONG_MAX, &set->spamd.maxbytes))
    return "CLAMD_MAXBYTES, SPAMD_MAXBYTES: not a number";
  set->clamd_timeout = (int)ct;
  set->qhpsi_timeout = (int)qt;
  set->spamd.timeout = (int)st;
  return NULL;
}

const char *content_config_error(const struct session *s)
{
  struct settings set;
  const char *bad = settings_read(s, &set);
  return bad ? bad : dkim_sign_config_error();
}

static void refuse(struct content *c, enum row_id row, const char *p, size_t n)
{
  c->row = row;
  if (n >= sizeof c->detail) n = sizeof c->detail - 1;
  memcpy(c->detail, p, n);
  c->detail[n] = 0;
}

static void fault(struct content *c, const char *why)
{
  if (c->row == ROW_COUNT) refuse(c, ROW_DATA_SCANNER_FAILURE, why, strlen(why));
}

/* a cdb of the mime/loader checks: opened, or the check is impossible */
static bool open_table(struct content *c, struct cdbx *db, const char *name, bool *on)
{
  char why[128];
  int r = cdbx_open(db, name);
  if (r > 0) return true;
  if (r == 0) {
    snprintf(why, sizeof why, "%s missing; its check is off", name);
    warn(c->s, why);
    *on = false;
    return true;
  }
  snprintf(why, sizeof why, "%s: unreadable or not a cdb", name);
  fault(c, why);
  return false;
}

/* which characters start a loader type: BADLOADERTYPE's, or with "+"
 * alone the first character of every entry of the cdb */
static void loader_starts(struct content *c)
{
  if (c->set.loader) { c->loader_start[(unsigned char)c->set.loader] = true; return; }
  struct cdb *db = &c->loaders.cdb;
  unsigned pos;
  cdb_seqinit(&pos, db);
  while (cdb_seqnext(&pos, db) > 0) {
    const char *k = cdb_get(db, 1, cdb_keypos(db));
    if (k && cdb_keylen(db) > 0) c->loader_start[(unsigned char)k[0]] = true;
  }
}

static void part_begin(void *ctx)
{
  struct content *c = ctx;
  c->nsig = c->nring = c->carrylen = 0;
  c->blank = false;
}

static void sig_char(struct content *c, char ch)
{
  if (c->nsig < MIMETYPE_LEN) {
    c->first[c->nsig++] = ch;
    if (c->nsig == MIMETYPE_LEN && c->set.types_on && cdbx_find(&c->types, c->first, MIMETYPE_LEN, NULL) > 0)
      refuse(c, ROW_DATA_BAD_MIME, c->first, MIMETYPE_LEN);
  }
  if (!c->set.loader_on) return;
  c->ring[c->nring++ & 7] = ch;
  if (c->nring < LOADER_LEN || !c->loader_start[(unsigned char)c->ring[(c->nring - LOADER_LEN) & 7]]) return;
  char key[LOADER_LEN];
  for (unsigned j = 0; j < LOADER_LEN; j++) key[j] = c->ring[(c->nring - LOADER_LEN + j) & 7];
  if (cdbx_find(&c->loaders, key, LOADER_LEN, NULL) > 0) refuse(c, ROW_DATA_BAD_LOADER, key, LOADER_LEN);
}

/* '!': the line's last 9 raw bytes up to p[i], the character after a blank */
static void refuse_blank(struct content *c, const char *p, size_t line0, size_t i, bool cont)
{
  char d[2 * MIMETYPE_LEN];
  size_t n = 0, take = i + 1 - line0;
  if (cont) { memcpy(d, c->carry, c->carrylen); n = c->carrylen; }
  if (take > MIMETYPE_LEN) { line0 = i + 1 - MIMETYPE_LEN; take = MIMETYPE_LEN; }
  memcpy(d + n, p + line0, take);
  n += take;
  size_t from = n > MIMETYPE_LEN ? n - MIMETYPE_LEN : 0;
  refuse(c, ROW_DATA_BAD_MIME, d + from, n - from);
}

/* keep the current line's last bytes for refuse_blank() of the next piece */
static void keep_carry(struct content *c, const char *p, size_t n, size_t line0, bool cont)
{
  char d[2 * MIMETYPE_LEN];
  size_t k = 0, take = n - line0;
  if (cont) { memcpy(d, c->carry, c->carrylen); k = c->carrylen; }
  if (take > MIMETYPE_LEN) { line0 = n - MIMETYPE_LEN; take = MIMETYPE_LEN; }
  memcpy(d + k, p + line0, take);
  k += take;
  size_t from = k > MIMETYPE_LEN ? k - MIMETYPE_LEN : 0;
  memcpy(c->carry, d + from, k - from);
  c->carrylen = k - from;
}

static void part_content(void *ctx, const char *p, size_t n)
{
  struct content *c = ctx;
  if (c->row != ROW_COUNT || (c->nsig >= MIMETYPE_LEN && !c->set.loader_on && !c->set.blanks_on)) return;
  size_t line0 = 0;                           /* where the current line starts in p */
  bool cont = true;                           /* ... and whether it started before p */
  for (size_t i = 0; i < n; i++) {
    unsigned char k = byte_class[(unsigned char)p[i]];
    if (k == B_SIG) {
      if (c->blank) { refuse_blank(c, p, line0, i, cont); return; }
      if (c->nsig < MIMETYPE_LEN || c->set.loader_on) {
        sig_char(c, p[i]);
        if (c->row != ROW_COUNT) return;
      }
    } else if (k == B_BLANK) c->blank = c->set.blanks_on;
    else if (k == B_LF) { c->blank = false; line0 = i + 1; cont = false; }
  }
  if (c->set.blanks_on) keep_carry(c, p, n, line0, cont);
}

struct content *content_begin(struct session *s)
{
  struct settings set;
  const char *bad = settings_read(s, &set);
  bool av = set.clamd || set.qhpsi;
  struct dkim_check *dkim = bad ? NULL : dkim_check_open(s);
  struct dkim_sign *sign = bad ? NULL : dkim_sign_open(s);
  if (!bad && !set.types_on && !set.loader_on && !av && !set.spamd.spec && !dkim && !sign) return NULL;
  struct content *c = calloc(1, sizeof *c);
  if (!c) { dkim_check_close(dkim); dkim_sign_close(sign); return &no_memory; }   /* never accepted unchecked */
  c->s = s;
  c->dkim = dkim;
  c->sign = sign;
  c->set = set;
  c->row = ROW_COUNT;
  if (bad) { warn(s, bad); fault(c, bad); return c; }
  if (set.types_on && !open_table(c, &c->types, "control/badmimetypes.cdb", &c->set.types_on)) return c;
  if (set.loader_on && !open_table(c, &c->loaders, "control/badloadertypes.cdb", &c->set.loader_on)) return c;
  if (c->set.loader_on) loader_starts(c);
  struct mime_events ev = { c, part_begin, part_content };
  mime_init(&c->mime, &ev);
  c->scan_mime = c->set.types_on || c->set.blanks_on || c->set.loader_on || (av && set.base64_only);
  if (set.clamd) c->clamd = clamd_open(set.clamd, set.clamd_timeout, set.clamd_maxbytes);
  return c;
}

bool content_needs_spool(const struct content *c)
{
  return c->row == ROW_COUNT && (c->set.qhpsi || c->set.spamd.spec || c->dkim || c->sign);
}

void content_feed(struct content *c, const char *p, size_t n)
{
  if (c->row != ROW_COUNT) return;
  if (c->scan_mime) mime_feed(&c->mime, p, n);
  if (c->clamd) clamd_feed(c->clamd, p, n);
  if (c->dkim) dkim_check_feed(c->dkim, p, n);
  if (c->sign) dkim_sign_feed(c->sign, p, n);
}

/* Virus_Infected: clamd's answer, then the QHPSI scanner */
static void virus_verdict(struct content *c, int spoolfd)
{
  char name[200];
  bool needed = !c->set.base64_only || c->mime.saw_base64;
  if (c->clamd && needed) {
    int r = clamd_result(c->clamd, name, sizeof name);
    if (r > 0) refuse(c, ROW_DATA_VIRUS, name, strlen(name));
    else if (r < 0) fault(c, name);
  }
  if (c->row != ROW_COUNT || !c->set.qhpsi || !needed) return;
  int r = spoolfd < 0 ? -1 : qhpsi_scan(c->set.qhpsi, spoolfd, c->set.qhpsi_timeout, name, sizeof name);
  if (spoolfd < 0) snprintf(name, sizeof name, "QHPSI: no spooled message");
  if (r > 0) refuse(c, ROW_DATA_VIRUS, name, strlen(name));
  else if (r < 0) fault(c, name);
}

enum row_id content_verdict(struct content *c, int spoolfd, const char **detail, str *hdrs)
{
  if (c->row == ROW_COUNT && c->scan_mime) mime_finish(&c->mime);
  if (c->row == ROW_COUNT && c->dkim) {
    char d[200];
    if (!dkim_check_result(c->dkim, d, sizeof d, hdrs)) refuse(c, ROW_DKIM_SIGNATURE, d, strlen(d));
  }
  if (c->row == ROW_COUNT) virus_verdict(c, spoolfd);
  if (c->row == ROW_COUNT && c->set.spamd.spec) {
    char d[200];
    int r = spoolfd < 0 ? -1 : spamd_check(&c->set.spamd, spoolfd, d, sizeof d, c->set.spamheaders ? hdrs : NULL);
    if (spoolfd < 0) snprintf(d, sizeof d, "spamd: no spooled message");
    if (r > 0) refuse(c, ROW_DATA_SPAM, d, strlen(d));
    else if (r < 0) fault(c, d);
  }
  if (c->row == ROW_COUNT && c->sign) {                  /* last: only a message that goes on is signed */
    char d[256];
    if (!dkim_sign_result(c->sign, d, sizeof d, hdrs)) refuse(c, ROW_DKIM_SIGN_FAILURE, d, strlen(d));
  }
  *detail = c->row == ROW_COUNT ? NULL : c->detail;
  return c->row;
}

void content_end(struct content *c)
{
  if (!c || c == &no_memory) return;
  if (c->clamd) clamd_close(c->clamd);
  dkim_check_close(c->dkim);
  dkim_sign_close(c->sign);
  cdbx_close(&c->types);
  cdbx_close(&c->loaders);
  free(c);
}
