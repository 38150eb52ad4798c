/* lookup.c -- finding a user in control/users.cdb or control/users
 * (or, when neither exists, in s/qmail's users/authuser: legacy.c).
 *
 * The cdb (built by `mxgate-cdb users`) is used when it exists: key = the
 * name, data = the canonical users line. Without it the text file is read
 * and parsed whole, so a malformed line is always reported (exit 111), not
 * only when it precedes the user asked for; the first line of a name wins.
 * A missing users database is a temporary problem, not "no such user": it
 * is a setup error the server should report as such. Buffers that held
 * the file (and so other users' secrets) are wiped before they are freed.
 */
#include "authuser.h"
#include "cdbx.h"
#include "control.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USERS_FILE_MAX (64u << 20)

static void str_wipe_free(str *s)
{
  if (s->s) explicit_bzero(s->s, s->cap);
  str_free(s);
}

static int lookup_cdb(struct cdbx *db, const char *name, size_t len,
                      struct user_entry *u, const char **why)
{
  str data = STR_INIT(USERS_LINE_MAX);
  const char *err = NULL;
  int r = cdbx_find(db, name, len, &data);
  if (r < 0) { *why = "cannot read control/users.cdb"; return -1; }
  if (r == 1) {
    r = users_parse_line(data.s, data.len, u, &err) == 1 &&
        strlen(u->name) == len && memcmp(u->name, name, len) == 0 ? 1 : -1;
    if (r < 0) { *why = "corrupt record in control/users.cdb"; users_entry_wipe(u); }
  }
  str_wipe_free(&data);
  return r;
}

static int lookup_text(const str *file, const char *name, size_t len,
                       struct user_entry *u, const char **why)
{
  static char msg[160];
  struct user_entry *e = calloc(1, sizeof *e);
  if (!e) { *why = "out of memory"; return -1; }
  int found = 0;
  unsigned long lineno = 0;
  for (size_t pos = 0; pos < file->len; ) {
    const char *line = file->s + pos, *nl = memchr(line, '\n', file->len - pos);
    size_t n = nl ? (size_t)(nl - line) : file->len - pos;
    pos += n + 1;
    lineno++;
    const char *err = NULL;
    int r = users_parse_line(line, n, e, &err);
    if (r < 0) {
      snprintf(msg, sizeof msg, "control/users line %lu: %s", lineno, err);
      *why = msg;
      found = -1;
      break;
    }
    if (r == 1 && !found && strlen(e->name) == len && memcmp(e->name, name, len) == 0) {
      *u = *e;
      found = 1;
    }
  }
  users_entry_wipe(e);
  free(e);
  if (found < 0) users_entry_wipe(u);
  return found;
}

int users_lookup(const char *name, size_t len, struct user_entry *u, const char **why)
{
  memset(u, 0, sizeof *u);
  if (len == 0 || len > USERS_NAME_MAX || memchr(name, 0, len)) return 0;
  struct cdbx db;
  int r = cdbx_open(&db, "control/users.cdb");
  if (r < 0) { *why = "cannot open control/users.cdb"; return -1; }
  if (r == 1) {
    r = lookup_cdb(&db, name, len, u, why);
    cdbx_close(&db);
    return r;
  }
  str file = STR_INIT(USERS_FILE_MAX);
  r = control_readfile(&file, "control/users", USERS_FILE_MAX);
  if (r == 1) r = lookup_text(&file, name, len, u, why);
  else if (r == 0) {                               /* s/qmail's file, when mxgate's are absent (D34) */
    r = legacy_lookup(name, len, u, why);
    if (r == -2) { *why = "no control/users.cdb, no control/users and no users/authuser"; r = -1; }
  }
  else *why = "cannot read control/users";
  str_wipe_free(&file);
  return r;
}
