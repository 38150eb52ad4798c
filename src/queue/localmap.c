/* localmap.c -- which recipients are local and where their Maildir is.
 *
 * control/locals lists the local domains (case-insensitive). For a local
 * recipient, control/maildirs gives the Maildir:
 *   local@domain:/abs/path/Maildir     that one address (case-insensitive)
 *   @domain:/abs/path/%u/Maildir       every local part of domain, %u being
 *                                      the lower-cased local part
 * "user-ext@domain" falls back to "user@domain" as qmail's extensions do,
 * the longest prefix ending before a '-' first. A template entry is used
 * only for a name that is safe as a path component (no '/', not starting
 * with '.') and whose Maildir exists, so "alice-lists" finds alice's
 * Maildir and an unknown user is kept in the queue instead of creating
 * or failing on a directory. The files are read once per process.
 */
#include "queue.h"
#include "control.h"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define LOCAL_MAX 1024

int localmap_load(struct localmap *m)
{
  m->locals = (str)STR_INIT(1 << 20);
  m->maildirs = (str)STR_INIT(16 << 20);
  if (control_readlist(&m->locals, "locals") < 0 || control_readlist(&m->maildirs, "maildirs") < 0)
    return QQ_CONFIG;
  for (const char *l = NULL; (l = control_next(&m->maildirs, l)); ) {
    const char *colon = strchr(l, ':');
    if (!colon || colon == l || colon[1] != '/' || !strchr(l, '@') || strchr(l, '@') > colon) {
      fprintf(stderr, "mxgate-queue: control/maildirs: bad entry (address:/absolute/path): %s\n", l);
      return QQ_CONFIG;
    }
  }
  return QQ_OK;
}

void localmap_free(struct localmap *m)
{
  str_free(&m->locals);
  str_free(&m->maildirs);
}

bool localmap_is_local(const struct localmap *m, const char *addr)
{
  const char *at = strrchr(addr, '@');
  if (!at) return false;
  for (const char *l = NULL; (l = control_next(&m->locals, l)); )
    if (str_equal_nocase(l, strlen(l), at + 1, strlen(at + 1))) return true;
  return false;
}

static bool safe_name(const char *name)
{
  return name[0] && name[0] != '.' && !strchr(name, '/');
}

static bool is_dir(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* the entry for local@dom (local lower-cased); 1 exact, 2 template, 0 none */
static int lookup(const struct localmap *m, const char *local, const char *dom, char *out, size_t cap)
{
  size_t nl = strlen(local), nd = strlen(dom);
  for (const char *l = NULL; (l = control_next(&m->maildirs, l)); ) {
    const char *colon = strchr(l, ':');
    const char *at = memchr(l, '@', (size_t)(colon - l));
    if (!str_equal_nocase(at + 1, (size_t)(colon - at - 1), dom, nd)) continue;
    if (at > l && str_equal_nocase(l, (size_t)(at - l), local, nl)) {
      if ((size_t)snprintf(out, cap, "%s", colon + 1) >= cap) return 0;
      return 1;
    }
    if (at == l && safe_name(local)) {
      const char *tpl = colon + 1, *u = strstr(tpl, "%u");
      if (!u) continue;
      if ((size_t)snprintf(out, cap, "%.*s%s%s", (int)(u - tpl), tpl, local, u + 2) >= cap) return 0;
      if (is_dir(out)) return 2;
    }
  }
  return 0;
}

enum rcpt_kind localmap_find(const struct localmap *m, const char *addr, char *out, size_t cap)
{
  const char *at = strrchr(addr, '@');
  char local[LOCAL_MAX];
  if (!localmap_is_local(m, addr)) return RCPT_REMOTE;
  size_t n = (size_t)(at - addr);
  if (n == 0 || n >= sizeof local) return RCPT_LOCAL_UNMAPPED;
  for (size_t i = 0; i < n; i++) local[i] = (char)tolower((unsigned char)addr[i]);
  local[n] = 0;
  for (;;) {                                   /* "a-b-c", then "a-b", then "a" */
    if (lookup(m, local, at + 1, out, cap)) return RCPT_MAILDIR;
    char *dash = strrchr(local, '-');
    if (!dash || dash == local) return RCPT_LOCAL_UNMAPPED;
    *dash = 0;
  }
}

/* calls fn for every Maildir the map names: each exact entry, and for a
 * template "/dir/%u/rest" each "/dir/NAME/rest" that exists */
void localmap_each_maildir(const struct localmap *m, void (*fn)(const char *maildir))
{
  char path[4096];
  for (const char *l = NULL; (l = control_next(&m->maildirs, l)); ) {
    const char *tpl = strchr(l, ':') + 1, *u = strstr(tpl, "%u");
    if (!u) { fn(tpl); continue; }
    if (u == tpl || u[-1] != '/') continue;
    if ((size_t)snprintf(path, sizeof path, "%.*s", (int)(u - tpl), tpl) >= sizeof path) continue;
    DIR *d = opendir(path);
    struct dirent *de;
    while (d && (de = readdir(d))) {
      if (!safe_name(de->d_name)) continue;
      if ((size_t)snprintf(path, sizeof path, "%.*s%s%s", (int)(u - tpl), tpl, de->d_name, u + 2) >= sizeof path) continue;
      if (is_dir(path)) fn(path);
    }
    if (d) closedir(d);
  }
}
