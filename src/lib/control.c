/* control.c -- reading qmail-style control files (control.h). */
#include "control.h"
#include <errno.h>
#include <dirent.h>
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

/* While a configuration is read (control_dir_open() to control_dir_close()),
 * control/NAME is opened relative to the directory's descriptor, and a name
 * the directory did not list is known missing without an open: mxgate-smtpd
 * reads fourteen control files at every start under tcpserver, most of them
 * absent, and each open of an absent file was a system call and a walk of
 * the whole path (docs/bench.md, "Start-up under tcpserver"). The listing
 * goes into a filter of 1024 bits, one per name's hash: a clear bit is a
 * name not listed; a set one may be another name's, and then the file is
 * opened as before. A file created after the listing reads as missing, as
 * it would had it been created just after its open. */
static __thread bool dir_open;         /* thread-local, and so in the block of TLS every */
static __thread int dir_fd;            /* start writes anyway: a static one's first write */
static __thread bool dir_listed;       /* would fault in a page of its own */
static __thread unsigned char dir_names[128];

static unsigned name_hash(const char *s)
{
  unsigned h = 2166136261u;
  while (*s) h = (h ^ (unsigned char)*s++) * 16777619u;
  return (h ^ h >> 10) & 1023;
}

static void dir_list(int fd)
{
  char buf[2048];
  memset(dir_names, 0, sizeof dir_names);
  dir_listed = false;
  for (;;) {
    ssize_t n = getdents64(fd, buf, sizeof buf);
    if (n < 0) return;                        /* no listing: every file is opened */
    if (n == 0) break;
    for (ssize_t off = 0; off < n; ) {
      struct dirent64 *d = (struct dirent64 *)(buf + off);
      unsigned h = name_hash(d->d_name);
      dir_names[h >> 3] |= (unsigned char)(1u << (h & 7));
      off += d->d_reclen;
    }
  }
  dir_listed = true;
}

int control_dir_open(void)
{
  control_dir_close();
  const char *home = control_home();
  size_t n = strlen(home);
  char small[256], *path = n + 9 <= sizeof small ? small : malloc(n + 9);
  if (!path) return -1;
  memcpy(path, home, n);
  memcpy(path + n, "/control", 9);
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int e = errno;
  if (path != small) free(path);
  if (fd < 0) { errno = e; return -1; }
  dir_fd = fd;
  dir_open = true;
  dir_list(fd);
  return 0;
}

void control_dir_close(void)
{
  if (dir_open) close(dir_fd);
  dir_open = dir_listed = false;
}

int control_dir_check(char *path, size_t cap)
{
  if (!control_path(path, cap, "control")) { errno = ENAMETOOLONG; return -1; }
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

/* apart, so that its path buffer is no part of the stack of the reads above */
__attribute__((noinline)) static int open_path(const char *rel)
{
  char full[4096];
  if (!control_path(full, sizeof full, rel)) { errno = ENAMETOOLONG; return -1; }
  return open(full, O_RDONLY | O_CLOEXEC);
}

int control_open(const char *rel)
{
  if (dir_open && strncmp(rel, "control/", 8) == 0 && rel[8] && !strchr(rel + 8, '/')) {
    unsigned h = name_hash(rel + 8);
    if (dir_listed && !(dir_names[h >> 3] & (1u << (h & 7)))) { errno = ENOENT; return -1; }
    return openat(dir_fd, rel + 8, O_RDONLY | O_CLOEXEC);
  }
  return open_path(rel);
}

/* straight into out's memory, which grows as the file does: no buffer on
 * the stack (each page of stack a start touches is a page fault) */
int control_readfile(str *out, const char *path, size_t max)
{
  out->len = 0;
  if (out->max && out->max < max) max = out->max;             /* the string's own cap, too */
  if (!out->max && max > (1u << 20)) max = 1u << 20;            /* str.h: 0 is 1 MiB */
  int fd = control_open(path);
  if (fd < 0) return errno == ENOENT ? 0 : -1;
  for (;;) {
    size_t room = out->cap > out->len + 1 ? out->cap - out->len - 1 : 0;
    if (room < 256) room = out->len < 4096 ? 512 : out->len;
    if (room > max - out->len) room = max - out->len;
    char probe;                               /* at max: one more byte tells a file too big */
    if (room && !str_ready(out, out->len + room)) { close(fd); errno = EFBIG; return -1; }
    ssize_t r = read(fd, room ? out->s + out->len : &probe, room ? room : 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { int e = errno; close(fd); errno = e; return -1; }
    if (r == 0) break;
    if (!room) { close(fd); errno = EFBIG; return -1; }
    out->len += (size_t)r;
  }
  close(fd);
  str_0(out);
  return 1;
}

/* "control/" NAME into rel (without snprintf, which cost a start more
 * instructions than the rest of reading the file) */
static bool control_rel(char *rel, size_t cap, const char *name)
{
  size_t n = strlen(name);
  if (8 + n + 1 > cap) return false;
  memcpy(rel, "control/", 8);
  memcpy(rel + 8, name, n + 1);
  return true;
}

static size_t trim(const char *s, size_t len)
{
  while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r')) len--;
  return len;
}

int control_readline(str *out, const char *name, const char *def)
{
  str file = STR_INIT(1 << 20);
  char rel[256];
  if (!control_rel(rel, sizeof rel, name)) { errno = ENAMETOOLONG; return -1; }
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
  char rel[256];
  if (!control_rel(rel, sizeof rel, name)) { errno = ENAMETOOLONG; return -1; }
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
