/* maildir.c -- local delivery into Maildirs (maildir(5)).
 *
 * A recipient is local when its domain is listed in control/locals; its
 * Maildir comes from control/maildirs, lines "local@domain:/path/Maildir"
 * or "@domain:/path/%u/Maildir" (%u: the lower-cased local part, which
 * must be a plain name). "user-ext@domain" falls back to "user@domain", as
 * qmail's extensions do. Delivery writes tmp/NAME (Return-Path and
 * Delivered-To first, as qmail-local does), fsyncs it, renames it into
 * new/NAME and fsyncs new/: once new/NAME exists the message is whole.
 */
#include "queue.h"
#include "control.h"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

int fsync_dir(const char *dir)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int r = fsync(fd);
  close(fd);
  return r;
}

int copy_fd(int from, int to)
{
  char buf[65536];
  if (lseek(from, 0, SEEK_SET) < 0) return -1;
  for (;;) {
    ssize_t r = read(from, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return (int)r;
    for (ssize_t off = 0; off < r; ) {
      ssize_t w = write(to, buf + off, (size_t)(r - off));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) { if (w == 0) errno = EIO; return -1; }
      off += w;
    }
  }
}

void unique_name(char *buf, size_t cap)
{
  static unsigned seq;
  struct timeval tv;
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  for (char *h = host; *h; h++) if (*h == '/' || *h == ':') *h = '_';
  gettimeofday(&tv, NULL);
  snprintf(buf, cap, "%lld.M%ldP%ldQ%u.%s", (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(), ++seq, host);
}

static bool listed(const str *list, const char *s, size_t n)
{
  for (const char *l = NULL; (l = control_next(list, l)); )
    if (str_equal_nocase(l, strlen(l), s, n)) return true;
  return false;
}

/* the map entry for local@dom (lower-cased local part in low) */
static bool map_lookup(const str *map, const char *low, const char *dom, char *out, size_t cap)
{
  char key[1100];
  int k = snprintf(key, sizeof key, "%s@%s:", low, dom);
  size_t domkey = strlen(dom) + 2;
  for (const char *l = NULL; (l = control_next(map, l)); ) {
    if (k > 0 && str_starts_nocase(l, strlen(l), key)) { snprintf(out, cap, "%s", l + k); return true; }
    if (l[0] == '@' && strlen(l) > domkey && l[domkey - 1] == ':' && str_equal_nocase(l + 1, domkey - 2, dom, strlen(dom))) {
      const char *tpl = l + domkey, *u = strstr(tpl, "%u");
      if (!u || low[0] == '.' || strchr(low, '/')) return false;
      snprintf(out, cap, "%.*s%s%s", (int)(u - tpl), tpl, low, u + 2);
      return true;
    }
  }
  return false;
}

bool local_domain(const char *addr)
{
  str locals = STR_INIT(1 << 20);
  const char *at = strrchr(addr, '@');
  bool yes = at && control_readlist(&locals, "locals") > 0 && listed(&locals, at + 1, strlen(at + 1));
  str_free(&locals);
  return yes;
}

bool maildir_of(const char *addr, char *out, size_t cap)
{
  str locals = STR_INIT(1 << 20), map = STR_INIT(16 << 20);
  const char *at = strrchr(addr, '@');
  bool found = false;
  char low[1024];
  if (!at || (size_t)(at - addr) >= sizeof low || at == addr) return false;
  if (control_readlist(&locals, "locals") <= 0 || !listed(&locals, at + 1, strlen(at + 1)) ||
      control_readlist(&map, "maildirs") <= 0)
    goto done;
  size_t n = (size_t)(at - addr);
  for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)addr[i]);
  low[n] = 0;
  found = map_lookup(&map, low, at + 1, out, cap);
  char *dash = strchr(low, '-');                          /* user-ext: user's Maildir */
  if (!found && dash) { *dash = 0; found = map_lookup(&map, low, at + 1, out, cap); }
done:
  str_free(&locals);
  str_free(&map);
  return found;
}

static bool put(int fd, const char *s)
{
  size_t n = strlen(s);
  return write(fd, s, n) == (ssize_t)n;
}

int maildir_deliver(const char *maildir, int msgfd, const char *sender, const char *rcpt)
{
  char name[256], tmp[4096], new_[4096], dir[4096];
  unique_name(name, sizeof name);
  snprintf(tmp, sizeof tmp, "%s/tmp/%s", maildir, name);
  snprintf(new_, sizeof new_, "%s/new/%s", maildir, name);
  snprintf(dir, sizeof dir, "%s/new", maildir);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return errno == ENOSPC || errno == EDQUOT ? QQ_WRITE : QQ_HOME;
  bool ok = put(fd, "Return-Path: <") && put(fd, sender) && put(fd, ">\nDelivered-To: ") &&
            put(fd, rcpt) && put(fd, "\n") && copy_fd(msgfd, fd) == 0 && fsync(fd) == 0;
  if (close(fd) < 0) ok = false;
  if (!ok || rename(tmp, new_) < 0) {
    int e = errno;
    unlink(tmp);
    return e == ENOSPC || e == EDQUOT || e == EIO ? QQ_WRITE : QQ_HOME;
  }
  if (fsync_dir(dir) < 0) {                    /* not known to be durable: not delivered */
    unlink(new_);
    return QQ_WRITE;
  }
  return QQ_OK;
}
