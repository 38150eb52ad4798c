/* control.c -- reading qmail-style control files (control.h). */
#include "control.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef MXGATE_DEFAULT_HOME
#define MXGATE_DEFAULT_HOME "/var/mxgate"
#endif

const char *control_home(void)
{
  const char *h = getenv("MXGATE_HOME");
  return h && *h ? h : MXGATE_DEFAULT_HOME;
}

bool control_path(char *out, size_t cap, const char *rel)
{
  int n = rel[0] == '/' ? snprintf(out, cap, "%s", rel)
                        : snprintf(out, cap, "%s/%s", control_home(), rel);
  return n > 0 && (size_t)n < cap;
}

int control_dir_check(char *path, size_t cap)
{
  if (!control_path(path, cap, "control")) { errno = ENAMETOOLONG; return -1; }
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

int control_readfile(str *out, const char *path, size_t max)
{
  char full[4096];
  out->len = 0;
  if (!control_path(full, sizeof full, path)) { errno = ENAMETOOLONG; return -1; }
  int fd = open(full, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : -1;
  char buf[8192];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { int e = errno; close(fd); errno = e; return -1; }
    if (r == 0) break;
    if (out->len + (size_t)r > max || !str_catb(out, buf, (size_t)r)) {
      close(fd); errno = EFBIG; return -1;
    }
  }
  close(fd);
  str_0(out);
  return 1;
}

static size_t trim(const char *s, size_t len)
{
  while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r')) len--;
  return len;
}

int control_readline(str *out, const char *name, const char *def)
{
  str file = STR_INIT(1 << 20);
  char rel[512];
  snprintf(rel, sizeof rel, "control/%s", name);
  int r = control_readfile(&file, rel, 1 << 20);
  if (r <= 0) {
    str_free(&file);
    if (r == 0) {
      if (def) { if (!str_copys(out, def)) return -1; }
      else out->len = 0;
    }
    return r;
  }
  const char *nl = memchr(file.s, '\n', file.len);
  size_t n = trim(file.s, nl ? (size_t)(nl - file.s) : file.len);
  if (memchr(file.s, 0, n)) { str_free(&file); errno = EINVAL; return -1; }   /* would cut the value */
  bool ok = str_copyb(out, file.s, n);
  str_free(&file);
  return ok ? 1 : -1;
}

int control_readulong(unsigned long *n, const char *name)
{
  str line = STR_INIT(256);
  int r = control_readline(&line, name, NULL);
  if (r == 1) {
    char *end;
    /* digits only: strtoul alone takes a sign or leading blanks, and
     * stops at a NUL byte, reading "1\0junk" as 1 */
    bool digits = line.len > 0;
    for (size_t i = 0; i < line.len; i++) digits = digits && line.s[i] >= '0' && line.s[i] <= '9';
    errno = 0;
    unsigned long v = digits ? strtoul(str_cstr(&line), &end, 10) : 0;
    if (!digits || *end || errno) { str_free(&line); errno = EINVAL; return -1; }
    *n = v;
  }
  str_free(&line);
  return r;
}

int control_readlist(str *out, const char *name)
{
  str file = STR_INIT(64 << 20);
  char rel[512];
  snprintf(rel, sizeof rel, "control/%s", name);
  out->len = 0;
  int r = control_readfile(&file, rel, 64 << 20);
  if (r <= 0) { str_free(&file); return r; }
  size_t i = 0;
  while (i < file.len) {
    const char *s = file.s + i;
    const char *nl = memchr(s, '\n', file.len - i);
    size_t len = nl ? (size_t)(nl - s) : file.len - i;
    i += len + (nl ? 1 : 0);
    len = trim(s, len);
    if (len == 0 || s[0] == '#') continue;
    /* a NUL byte would split the line into entries, some of them empty */
    if (memchr(s, 0, len)) { str_free(&file); errno = EINVAL; return -1; }
    if (!str_catb(out, s, len) || !str_catc(out, 0)) { str_free(&file); errno = ENOMEM; return -1; }
  }
  str_free(&file);
  return 1;
}

const char *control_next(const str *list, const char *prev)
{
  const char *p = prev ? prev + strlen(prev) + 1 : list->s;
  if (!p || p >= list->s + list->len) return NULL;
  return p;
}
