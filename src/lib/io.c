/* io.c -- buffered network I/O with timeouts (io.h). */
#include "io.h"
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int wait_fd(int fd, short events, int timeout)
{
  struct pollfd p = { .fd = fd, .events = events };
  int ms = timeout > 0 ? timeout * 1000 : -1;
  for (;;) {
    int r = poll(&p, 1, ms);
    if (r > 0) return 0;
    if (r == 0) { errno = ETIMEDOUT; return -1; }
    if (errno != EINTR) return -1;
  }
}

ssize_t io_fd_read(void *ctx, int fd, void *buf, size_t len, int timeout)
{
  (void)ctx;
  if (wait_fd(fd, POLLIN, timeout) < 0) return -1;
  ssize_t r;
  do r = read(fd, buf, len); while (r < 0 && errno == EINTR);
  return r;
}

ssize_t io_fd_write(void *ctx, int fd, void *buf, size_t len, int timeout)
{
  (void)ctx;
  if (wait_fd(fd, POLLOUT, timeout) < 0) return -1;
  ssize_t r;
  do r = write(fd, buf, len); while (r < 0 && errno == EINTR);
  return r;
}

bool fd_write_all(int fd, const void *buf, size_t n)
{
  const char *p = buf;
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w; n -= (size_t)w;
  }
  return true;
}

bool fd_write_timed(int fd, const void *buf, size_t n, int timeout_ms)
{
  const char *p = buf;
  long long deadline = io_now_ms() + timeout_ms;
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w > 0) { p += w; n -= (size_t)w; continue; }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      long long left = deadline - io_now_ms();
      if (left <= 0) { errno = ETIMEDOUT; return false; }
      struct pollfd pf = { .fd = fd, .events = POLLOUT };
      if (poll(&pf, 1, (int)left) < 0 && errno != EINTR) return false;
      continue;
    }
    if (w == 0) errno = EIO;
    return false;
  }
  return true;
}

void io_out_init(struct io_out *o, int fd, int timeout)
{
  o->fd = fd; o->timeout = timeout; o->write = io_fd_write; o->ctx = NULL;
  o->failed = false; o->len = 0;
}

void io_in_init(struct io_in *in, int fd, int timeout, struct io_out *flush)
{
  in->fd = fd; in->timeout = timeout; in->read = io_fd_read; in->ctx = NULL;
  in->flush = flush; in->deadline_ms = 0; in->pos = in->end = 0;
}

bool io_flush(struct io_out *o)
{
  size_t off = 0;
  while (!o->failed && off < o->len) {
    ssize_t w = o->write(o->ctx, o->fd, o->buf + off, o->len - off, o->timeout);
    if (w <= 0) o->failed = true;
    else off += (size_t)w;
  }
  o->len = 0;
  return !o->failed;
}

bool io_put(struct io_out *o, const void *buf, size_t len)
{
  const char *p = buf;
  while (len) {
    if (o->len == sizeof o->buf && !io_flush(o)) return false;
    size_t n = sizeof o->buf - o->len;
    if (n > len) n = len;
    memcpy(o->buf + o->len, p, n);
    o->len += n; p += n; len -= n;
  }
  return !o->failed;
}

bool io_puts(struct io_out *o, const char *s) { return io_put(o, s, strlen(s)); }

long long io_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* the read's timeout in seconds: the io_in's own, shortened to what is
 * left of its deadline (rounded up); -1 when the deadline has passed */
static int read_timeout(const struct io_in *in)
{
  if (!in->deadline_ms) return in->timeout;
  long long left = in->deadline_ms - io_now_ms();
  if (left <= 0) return -1;
  int secs = (int)((left + 999) / 1000);
  return in->timeout > 0 && in->timeout < secs ? in->timeout : secs;
}

ssize_t io_fill(struct io_in *in)
{
  if (in->pos == in->end) in->pos = in->end = 0;
  if (in->end == sizeof in->buf) {
    if (in->pos == 0) return -1;      /* caller must consume first */
    memmove(in->buf, in->buf + in->pos, in->end - in->pos);
    in->end -= in->pos; in->pos = 0;
  }
  if (in->flush && in->flush->len && !io_flush(in->flush)) return -1;
  int timeout = read_timeout(in);
  if (timeout < 0) { errno = ETIMEDOUT; return -1; }
  ssize_t r = in->read(in->ctx, in->fd, in->buf + in->end, sizeof in->buf - in->end, timeout);
  if (r > 0) in->end += (size_t)r;
  return r;
}

size_t io_avail(const struct io_in *in) { return in->end - in->pos; }
const char *io_peek(const struct io_in *in) { return in->buf + in->pos; }
void io_consume(struct io_in *in, size_t n) { in->pos += n > io_avail(in) ? io_avail(in) : n; }
void io_discard(struct io_in *in) { in->pos = in->end = 0; }

int io_getline(struct io_in *in, str *line, size_t max, bool *toolong)
{
  line->len = 0;
  *toolong = false;
  for (;;) {
    size_t avail = io_avail(in);
    const char *p = io_peek(in);
    const char *nl = avail ? memchr(p, '\n', avail) : NULL;
    size_t take = nl ? (size_t)(nl - p) + 1 : avail;
    size_t keep = take;
    if (!*toolong && line->len + keep > max + 2) { *toolong = true; }
    if (!*toolong && !str_catb(line, p, keep)) *toolong = true;
    io_consume(in, take);
    if (nl) {
      if (*toolong) { line->len = 0; return 1; }
      line->len--;                                   /* LF */
      if (line->len && line->s[line->len - 1] == '\r') line->len--;
      if (line->len > max) { *toolong = true; line->len = 0; }
      str_0(line);
      return 1;
    }
    ssize_t r = io_fill(in);
    if (r == 0) return 0;
    if (r < 0) return -1;
  }
}
