/* legacy.c -- s/qmail's users/authuser, read when there is neither
 * control/users.cdb nor control/users (docs/users.5, "users/authuser").
 *
 * One "authuser:password" pair a line ('#' comments, trailing blanks
 * ignored); the name ends at the first colon, the password is the rest.
 * As qmail-authuser does: the domain part of the name is compared in
 * lower case; "!name" and "!@domain" disable; a name is looked up
 * exactly, then as "@domain", then "@", then "*". The password token is
 * a plaintext password (plaintext logins, CRAM-MD5 and APOP) or
 * "%" and 32 hex digits, the MD5 of the password (plaintext logins only).
 * The tokens that hand the login to the system or to a virtual-domain
 * checker ("?", "!", "+", "&") are not supported: a temporary failure
 * that says so, never a silent refusal.
 *
 * Such an account has no home: the subprogram gets USER, and HOME and
 * MAILDIR only when control/maildirs has an entry "name:/path/Maildir"
 * for the name (the map mxgate-queue delivers by).
 */
#include "authuser.h"
#include "control.h"
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define AUTHUSER_FILE_MAX (16u << 20)

/* the password token of key (an exact line name), or NULL */
static const char *token_of(const str *list, const char *key, size_t klen)
{
  for (const char *l = NULL; (l = control_next(list, l)); ) {
    const char *colon = strchr(l, ':');
    if (colon && (size_t)(colon - l) == klen && memcmp(l, key, klen) == 0) return colon + 1;
  }
  return NULL;
}

/* "/path/Maildir" of name in control/maildirs (exact entries), into out */
static bool maildir_of(const char *name, char *out, size_t cap)
{
  str map = STR_INIT(16 << 20);
  bool found = false;
  if (control_readlist(&map, "maildirs") == 1) {
    size_t n = strlen(name);
    for (const char *l = NULL; !found && (l = control_next(&map, l)); ) {
      const char *colon = strchr(l, ':');
      if (colon && colon[1] == '/' && str_equal_nocase(l, (size_t)(colon - l), name, n) &&
          (size_t)snprintf(out, cap, "%s", colon + 1) < cap)
        found = true;
    }
  }
  str_free(&map);
  return found;
}

static bool is_md5_token(const char *t)
{
  if (t[0] != '%' || strlen(t + 1) != 32) return false;
  for (const char *c = t + 1; *c; c++)
    if (!isxdigit((unsigned char)*c)) return false;
  return true;
}

/* the entry of a found token */
static int fill(struct user_entry *u, const char *name, const char *token, const char **why)
{
  static char msg[320];
  snprintf(u->name, sizeof u->name, "%s", name);
  if (strlen(token) == 1 && strchr("?!+&", token[0])) {
    snprintf(msg, sizeof msg, "users/authuser: the token '%c' (system or virtual-domain accounts) is not supported", token[0]);
    *why = msg;
    return -1;
  }
  if (is_md5_token(token)) {
    for (size_t i = 0; token[i]; i++) u->hash[i] = (char)tolower((unsigned char)token[i]);
  } else if (strlen(token) > 1 && strlen(token) <= USERS_SECRET_MAX) {
    snprintf(u->secret, sizeof u->secret, "%s", token);
    u->plain_password = true;
  } else {
    u->disabled = true;                       /* one character, or too long: no usable password */
  }
  char maildir[USERS_PATH_MAX + 1];
  if (maildir_of(name, maildir, sizeof maildir)) {
    snprintf(u->maildir, sizeof u->maildir, "%s", maildir);
    snprintf(u->home, sizeof u->home, "%s", maildir);
    char *slash = strrchr(u->home, '/');
    if (slash == u->home) slash[1] = 0;
    else if (slash) *slash = 0;
  }
  return 1;
}

/* users/authuser's meaningful lines, each ended by a NUL, into list;
 * 1 read, 0 missing, -1 unreadable */
static int read_pairs(str *list)
{
  str file = STR_INIT(AUTHUSER_FILE_MAX);
  int r = control_readfile(&file, "users/authuser", AUTHUSER_FILE_MAX);
  for (size_t i = 0; r == 1 && i < file.len; ) {
    const char *l = file.s + i, *nl = memchr(l, '\n', file.len - i);
    size_t n = nl ? (size_t)(nl - l) : file.len - i;
    i += n + 1;
    while (n && (l[n - 1] == ' ' || l[n - 1] == '\t' || l[n - 1] == '\r')) n--;
    if (n == 0 || l[0] == '#' || memchr(l, 0, n)) continue;
    if (!str_catb(list, l, n) || !str_catc(list, 0)) r = -1;
  }
  if (file.s) explicit_bzero(file.s, file.cap);
  str_free(&file);
  return r;
}

/* 1 found (u filled; u->disabled for "!"), 0 no entry, -1 temporary
 * problem (*why), -2 there is no users/authuser */
int legacy_lookup(const char *name, size_t len, struct user_entry *u, const char **why)
{
  char user[USERS_NAME_MAX + 1], bang[USERS_NAME_MAX + 2];
  str list = STR_INIT(AUTHUSER_FILE_MAX);
  int r = read_pairs(&list);
  if (r <= 0) {
    if (list.s) explicit_bzero(list.s, list.cap);
    str_free(&list);
    if (r == 0) return -2;
    *why = "cannot read users/authuser";
    return -1;
  }
  memcpy(user, name, len);
  user[len] = 0;
  char *at = strrchr(user, '@');                  /* the domain is compared in lower case */
  if (at) for (char *c = at; *c; c++) *c = (char)tolower((unsigned char)*c);
  snprintf(bang, sizeof bang, "!%s", user);
  bool disabled = token_of(&list, bang, len + 1) != NULL;
  if (!disabled && at) {
    snprintf(bang, sizeof bang, "!%s", at);
    disabled = token_of(&list, bang, strlen(bang)) != NULL;
  }
  const char *token = NULL;
  r = 0;
  if (disabled) {
    snprintf(u->name, sizeof u->name, "%s", user);
    u->disabled = true;
    r = 1;
  } else {
    token = token_of(&list, user, len);
    if (!token && at) token = token_of(&list, at, strlen(at));
    if (!token) token = token_of(&list, "@", 1);
    if (!token) token = token_of(&list, "*", 1);
    if (token) r = fill(u, user, token, why);
  }
  if (list.s) explicit_bzero(list.s, list.cap);
  str_free(&list);
  return r;
}
