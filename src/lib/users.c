/* users.c -- parsing and writing lines of the users file (users.h, users.5).
 *
 * One line, seven colon-separated fields; only a backslash escapes (`\:`,
 * `\\`). Every field is checked here so that mxgate-cdb refuses a bad line
 * with its line number and mxgate-authuser never sees one. Error strings
 * are constants and never echo the line (it holds secrets).
 */
#include "users.h"
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { F_NAME, F_HASH, F_SECRET, F_UID, F_GID, F_HOME, F_MAILDIR, F_COUNT };

static const char *const too_long[F_COUNT] = {
  "name too long", "hash too long", "secret too long", "uid too long",
  "gid too long", "home too long", "maildir too long",
};

/* one field into dst (unescaped, NUL-terminated); 1 ended by ':', 0 by the
 * end of the line, -1 error */
static int take_field(const char **pp, const char *end, char *dst, size_t cap,
                      const char *toolong, const char **err)
{
  const char *p = *pp;
  size_t n = 0;
  while (p < end && *p != ':') {
    char c = *p++;
    if (c == '\\') {
      if (p == end || (*p != ':' && *p != '\\')) { *err = "bad escape (only \\: and \\\\)"; return -1; }
      c = *p++;
    }
    if (n + 1 >= cap) { *err = toolong; return -1; }
    dst[n++] = c;
  }
  dst[n] = 0;
  *pp = p < end ? p + 1 : p;
  return p < end;
}

static bool has_control(const char *s)
{
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f) return true;
  return false;
}

static bool name_ok(const char *name, const char **err)
{
  if (!name[0]) { *err = "empty name"; return false; }
  if (name[0] == '!' || name[0] == '#') { *err = "name starts with ! or #"; return false; }
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    if (*p <= 0x20 || *p == 0x7f || *p == ':' || *p == '\\') {
      *err = "name holds a blank, control character, colon or backslash";
      return false;
    }
  return true;
}

static bool hash_ok(const char *hash, const char **err)
{
  for (const unsigned char *p = (const unsigned char *)hash; *p; p++)
    if (*p <= 0x20 || *p >= 0x7f) { *err = "hash holds a character crypt(3) never writes"; return false; }
  if (!hash[0] || strcmp(hash, "*") == 0 || hash[0] == '!') return true;  /* no plaintext login */
  if (hash[0] != '$') { *err = "unsupported password hash (use $y$ yescrypt or $6$ SHA-512)"; return false; }
  int c = crypt_checksalt(hash);
  if (c == CRYPT_SALT_INVALID || c == CRYPT_SALT_METHOD_DISABLED) {
    *err = "password hash method unknown to libcrypt";
    return false;
  }
  return true;
}

/* a decimal id in 0..4294967294 into *id; false on anything else */
static bool parse_id(const char *s, unsigned long *id)
{
  if (!s[0] || strlen(s) > 10) return false;
  for (const char *p = s; *p; p++)
    if (*p < '0' || *p > '9') return false;
  unsigned long long v = strtoull(s, NULL, 10);
  if (v > 4294967294ULL) return false;
  *id = (unsigned long)v;
  return true;
}

static bool ids_ok(struct user_entry *u, const char *uid, const char *gid, const char **err)
{
  if (!uid[0] && !gid[0]) return true;
  unsigned long a, b;
  if (!uid[0] || !gid[0]) { *err = "give both uid and gid, or neither"; return false; }
  if (!parse_id(uid, &a)) { *err = "uid is not a number"; return false; }
  if (!parse_id(gid, &b)) { *err = "gid is not a number"; return false; }
  u->has_ids = true;
  u->uid = (uid_t)a;
  u->gid = (gid_t)b;
  return true;
}

static bool paths_ok(const struct user_entry *u, const char **err)
{
  if (u->home[0] != '/') { *err = "home must be an absolute path"; return false; }
  if (has_control(u->home) || has_control(u->maildir)) {
    *err = "home or maildir holds a control character";
    return false;
  }
  return true;
}

/* the line without its end-of-line and trailing blanks */
static size_t line_length(const char *line, size_t len)
{
  while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                 line[len - 1] == ' ' || line[len - 1] == '\t'))
    len--;
  return len;
}

static int split_fields(const char *p, const char *end, struct user_entry *u,
                        char *uid, char *gid, size_t idcap, const char **err)
{
  struct { char *dst; size_t cap; } f[F_COUNT] = {
    { u->name, sizeof u->name }, { u->hash, sizeof u->hash },
    { u->secret, sizeof u->secret }, { uid, idcap }, { gid, idcap },
    { u->home, sizeof u->home }, { u->maildir, sizeof u->maildir },
  };
  for (int i = 0; i < F_COUNT; i++) {
    int r = take_field(&p, end, f[i].dst, f[i].cap, too_long[i], err);
    if (r < 0) return -1;
    if (r == 0 && i < F_COUNT - 1) { *err = "too few fields (name:hash:secret:uid:gid:home:maildir)"; return -1; }
    if (r == 1 && i == F_COUNT - 1) { *err = "too many fields (a colon in a field is written \\:)"; return -1; }
  }
  return 0;
}

int users_parse_line(const char *line, size_t len, struct user_entry *out, const char **err)
{
  static const char *unused;
  if (!err) err = &unused;
  memset(out, 0, sizeof *out);
  len = line_length(line, len);
  size_t lead = 0;
  while (lead < len && (line[lead] == ' ' || line[lead] == '\t')) lead++;
  if (lead == len || line[lead] == '#') return 0;
  if (lead) { *err = "line starts with a blank"; return -1; }
  if (len > USERS_LINE_MAX) { *err = "line too long"; return -1; }
  if (memchr(line, 0, len)) { *err = "NUL byte in line"; return -1; }
  const char *p = line, *end = line + len;
  if (*p == '!') { out->disabled = true; p++; }
  char uid[16], gid[16];
  if (split_fields(p, end, out, uid, gid, sizeof uid, err) < 0 ||
      !name_ok(out->name, err) || !hash_ok(out->hash, err) ||
      !ids_ok(out, uid, gid, err) || !paths_ok(out, err)) {
    users_entry_wipe(out);
    return -1;
  }
  if (has_control(out->secret)) {
    *err = "secret holds a control character";
    users_entry_wipe(out);
    return -1;
  }
  return 1;
}

bool users_has_password(const struct user_entry *u)
{
  return u->hash[0] == '$';
}

static bool cat_escaped(str *out, const char *s)
{
  for (; *s; s++) {
    if ((*s == ':' || *s == '\\') && !str_catc(out, '\\')) return false;
    if (!str_catc(out, *s)) return false;
  }
  return true;
}

static bool cat_id(str *out, bool has, unsigned long id)
{
  return (!has || str_catu(out, id)) && str_catc(out, ':');
}

bool users_format_line(const struct user_entry *u, str *out)
{
  return (!u->disabled || str_catc(out, '!')) &&
         str_cats(out, u->name) && str_catc(out, ':') &&
         cat_escaped(out, u->hash) && str_catc(out, ':') &&
         cat_escaped(out, u->secret) && str_catc(out, ':') &&
         cat_id(out, u->has_ids, (unsigned long)u->uid) &&
         cat_id(out, u->has_ids, (unsigned long)u->gid) &&
         cat_escaped(out, u->home) && str_catc(out, ':') &&
         cat_escaped(out, u->maildir);
}

bool users_cdb_record(const struct user_entry *u, str *key, str *data)
{
  key->len = data->len = 0;
  return str_cats(key, u->name) && users_format_line(u, data);
}

bool users_maildir(const struct user_entry *u, char *out, size_t cap)
{
  if (u->maildir[0] == '/') {
    int n = snprintf(out, cap, "%s", u->maildir);
    return n > 0 && (size_t)n < cap;
  }
  size_t hl = strlen(u->home);
  while (hl > 1 && u->home[hl - 1] == '/') hl--;
  const char *sep = hl == 1 ? "" : "/";
  const char *md = u->maildir[0] ? u->maildir : "Maildir";
  int n = snprintf(out, cap, "%.*s%s%s", (int)hl, u->home, sep, md);
  return n > 0 && (size_t)n < cap;
}

void users_entry_wipe(struct user_entry *u)
{
  explicit_bzero(u, sizeof *u);
}
