/* cdb.c -- mxgate-cdb: control text files compiled into cdb, atomically.
 *
 *   mxgate-cdb morercpthosts|badmimetypes|badloadertypes|mailfromrules|users
 *       reads $MXGATE_HOME/control/NAME, writes control/NAME.cdb
 *   mxgate-cdb recipients FILE
 *       reads FILE, writes FILE.cdb
 * Each kind is one table entry: how a line becomes a key and data. '#'
 * comments and empty lines are skipped, trailing blanks ignored. The cdb
 * is written to NAME.cdb.tmp, fsync'd and renamed over NAME.cdb, so a
 * reader sees the old or the new table, never a partial one; on any bad
 * line nothing is replaced and the error names the file and line.
 */
#include "control.h"
#include "users.h"
#include <cdb.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct kind;
/* fills key and data from one line; NULL or the reason the line is bad */
typedef const char *(*line_fn)(const char *line, size_t len, str *key, str *data);

struct kind {
  const char *name;
  line_fn parse;
  bool file_arg;          /* recipients: FILE given on the command line */
  int mode;               /* permissions of the cdb */
};

static void lower(str *s) { str_lower(s); }

static const char *morercpthosts(const char *l, size_t n, str *key, str *data)
{
  (void)data;
  for (size_t i = 0; i < n; i++) if (isspace((unsigned char)l[i])) return "a domain has no blanks";
  str_copyb(key, l, n); lower(key);
  return NULL;
}

/* s/qmail: the first 9 (5) characters are the key; text after them is a comment */
static const char *fixed(const char *l, size_t n, str *key, size_t width)
{
  if (n < width) return width == 9 ? "a bad MIME type has 9 characters" : "a bad loader type has 5 characters";
  for (size_t i = 0; i < width; i++) if (isspace((unsigned char)l[i])) return "blank inside the type";
  str_copyb(key, l, width);
  return NULL;
}
static const char *badmimetypes(const char *l, size_t n, str *key, str *data) { (void)data; return fixed(l, n, key, 9); }
static const char *badloadertypes(const char *l, size_t n, str *key, str *data) { (void)data; return fixed(l, n, key, 5); }

static const char *mailfromrules(const char *l, size_t n, str *key, str *data)
{
  const char *amp = memchr(l, '&', n);
  if (!amp) return "a rule is key&senders";
  str_copyb(key, l, (size_t)(amp - l)); lower(key);
  str_copyb(data, amp + 1, n - (size_t)(amp - l) - 1);
  return NULL;
}

static const char *recipients(const char *l, size_t n, str *key, str *data)
{
  (void)data;
  for (size_t i = 0; i < n; i++) if (isspace((unsigned char)l[i])) return "an address has no blanks";
  if (!memchr(l, '@', n)) return "an address needs an @";
  str_copys(key, ":"); str_catb(key, l, n); lower(key);
  return NULL;
}

static const char *users(const char *l, size_t n, str *key, str *data)
{
  struct user_entry u;
  const char *err = NULL;
  int r = users_parse_line(l, n, &u, &err);
  if (r < 0) return err ? err : "bad users line";
  if (r == 0) { key->len = 0; return NULL; }
  bool ok = users_cdb_record(&u, key, data);
  users_entry_wipe(&u);
  return ok ? NULL : "out of memory";
}

static const struct kind kinds[] = {
  { "morercpthosts", morercpthosts, false, 0644 },
  { "badmimetypes", badmimetypes, false, 0644 },
  { "badloadertypes", badloadertypes, false, 0644 },
  { "mailfromrules", mailfromrules, false, 0644 },
  { "users", users, false, 0600 },
  { "recipients", recipients, true, 0644 },
};

static int fail(const char *path, size_t lineno, const char *why)
{
  if (lineno) fprintf(stderr, "mxgate-cdb: %s:%zu: %s\n", path, lineno, why);
  else fprintf(stderr, "mxgate-cdb: %s: %s\n", path, why);
  return 1;
}

static int build(const struct kind *k, const char *src, const char *dst)
{
  str text = STR_INIT(1u << 30), key = STR_INIT(1 << 16), data = STR_INIT(1 << 16);
  char tmp[4200];
  const char *why = NULL, *where = src;
  size_t lineno = 0;
  int r = control_readfile(&text, src, 1u << 30);
  if (r <= 0) return fail(src, 0, r == 0 ? "no such file" : strerror(errno));
  snprintf(tmp, sizeof tmp, "%s.tmp", dst);
  int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, k->mode);
  if (fd < 0) { str_free(&text); return fail(tmp, 0, strerror(errno)); }
  struct cdb_make cm;
  cdb_make_start(&cm, fd);
  for (size_t i = 0; i < text.len && !why; ) {
    const char *l = text.s + i;
    const char *nl = memchr(l, '\n', text.len - i);
    size_t n = nl ? (size_t)(nl - l) : text.len - i;
    i += n + 1;
    lineno++;
    while (n && (l[n - 1] == ' ' || l[n - 1] == '\t' || l[n - 1] == '\r')) n--;
    if (!n || l[0] == '#') continue;
    key.len = data.len = 0;
    if ((why = k->parse(l, n, &key, &data)) || !key.len) continue;
    if (strcmp(k->name, "users") == 0 && cdb_make_exists(&cm, key.s, (unsigned)key.len) > 0) why = "the user is listed twice";
    else if (cdb_make_add(&cm, key.s, (unsigned)key.len, data.s ? data.s : "", (unsigned)data.len) < 0) {
      why = strerror(errno); where = tmp; lineno = 0;
    }
  }
  /* finishing also frees the table's memory; on an error the file is thrown away */
  bool written = cdb_make_finish(&cm) == 0 && fsync(fd) == 0;
  if (!why && !written) { why = strerror(errno); where = dst; lineno = 0; }
  if (close(fd) < 0 && !why) { why = strerror(errno); where = dst; lineno = 0; }
  if (!why && rename(tmp, dst) < 0) { why = strerror(errno); where = dst; lineno = 0; }
  if (why) unlink(tmp);
  if (data.s) explicit_bzero(data.s, data.cap);
  if (text.s) explicit_bzero(text.s, text.cap);
  str_free(&text); str_free(&key); str_free(&data);
  return why ? fail(where, lineno, why) : 0;
}

int cdb_main(int argc, char **argv)
{
  if (argc < 2) goto usage;
  for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
    const struct kind *k = &kinds[i];
    if (strcmp(argv[1], k->name) != 0) continue;
    char src[4096], dst[4096];
    if (k->file_arg) {
      if (argc != 3) goto usage;
      snprintf(src, sizeof src, "%s", argv[2]);
    } else {
      if (argc != 2) goto usage;
      snprintf(src, sizeof src, "control/%s", k->name);
    }
    char full[4000];
    if (!control_path(full, sizeof full, src)) return fail(src, 0, "path too long");
    snprintf(dst, sizeof dst, "%s.cdb", full);
    return build(k, src, dst);
  }
usage:
  fputs("usage: mxgate-cdb morercpthosts|badmimetypes|badloadertypes|mailfromrules|users\n"
        "       mxgate-cdb recipients FILE\n", stderr);
  return 2;
}
