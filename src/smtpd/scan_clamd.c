/* scan_clamd.c -- virus scanning with clamd's INSTREAM command (CLAMD).
 *
 * The connection is opened when DATA starts and the message goes to clamd
 * while it arrives, in chunks of CLAMD_CHUNK bytes, each after its length
 * as 4 bytes in network order: "zINSTREAM\0", chunks, a zero length. The
 * answer is one NUL-terminated line: "stream: OK", "stream: NAME FOUND",
 * or an error ("... ERROR", e.g. "INSTREAM size limit exceeded"). Only the
 * first maxbytes bytes are sent (clamd refuses streams longer than its
 * StreamMaxLength; CLAMD_MAXBYTES, default 25 MiB as clamd's default).
 * The timeout (CLAMD_TIMEOUT) is for the whole scan, not for each send or
 * receive: every moment spent waiting on clamd (connecting, each chunk
 * it is slow to take, its answer) comes off one budget, so a clamd that
 * reads or answers a byte at a time cannot hold the message longer. Any
 * failure is a fault, reported by clamd_result() with its reason.
 */
#include "smtpd.h"
#include "content.h"
#include "netaddr.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLAMD_CHUNK 65536
#define CLAMD_ANSWER_MAX 1024
#define CLAMD_CONNECT_MAX 10           /* seconds: the client waits for its 354 meanwhile */

struct clamd {
  int fd;
  bool failed;
  long long left_ms;                   /* of the scan's time budget */
  char why[200];
  unsigned long long sent, maxbytes;
  size_t len;                          /* bytes of the chunk after its 4-byte length */
  unsigned char chunk[4 + CLAMD_CHUNK];
};

static void clamd_fail(struct clamd *c, const char *what, int err)
{
  if (c->failed) return;
  c->failed = true;
  snprintf(c->why, sizeof c->why, "clamd: %s%s%s", what, err ? ": " : "", err ? strerror(err) : "");
}

static bool send_all(struct clamd *c, const void *p, size_t n)
{
  if (netaddr_send(c->fd, p, n, &c->left_ms)) return true;
  clamd_fail(c, errno == ETIMEDOUT ? "write timeout" : "write failed", errno == ETIMEDOUT ? 0 : errno);
  return false;
}

struct clamd *clamd_open(const char *spec, int timeout, unsigned long long maxbytes)
{
  struct clamd *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->maxbytes = maxbytes;
  c->left_ms = (long long)timeout * 1000;
  long long t0 = netaddr_now_ms();
  c->fd = netaddr_connect(spec, (timeout < CLAMD_CONNECT_MAX ? timeout : CLAMD_CONNECT_MAX) * 1000);
  c->left_ms -= netaddr_now_ms() - t0;
  if (c->fd < 0) {
    char what[160];
    snprintf(what, sizeof what, "cannot connect to %s", spec);
    clamd_fail(c, what, errno);
    return c;
  }
  send_all(c, "zINSTREAM", 10);        /* with its NUL */
  return c;
}

static void flush_chunk(struct clamd *c)
{
  if (c->failed || c->len == 0) return;
  uint32_t n = (uint32_t)c->len;
  c->chunk[0] = (unsigned char)(n >> 24);
  c->chunk[1] = (unsigned char)(n >> 16);
  c->chunk[2] = (unsigned char)(n >> 8);
  c->chunk[3] = (unsigned char)n;
  send_all(c, c->chunk, 4 + c->len);
  c->len = 0;
}

void clamd_feed(struct clamd *c, const char *p, size_t n)
{
  if (!c || c->failed) return;
  if (c->maxbytes && c->sent + n > c->maxbytes) n = (size_t)(c->maxbytes - c->sent);
  c->sent += n;
  while (n) {
    size_t k = CLAMD_CHUNK - c->len;
    if (k > n) k = n;
    memcpy(c->chunk + 4 + c->len, p, k);
    c->len += k; p += k; n -= k;
    if (c->len == CLAMD_CHUNK) flush_chunk(c);
  }
}

/* clamd's answer line, up to its NUL or the end of the connection */
static bool read_answer(struct clamd *c, char *buf, size_t cap)
{
  size_t got = 0;
  while (got + 1 < cap) {
    ssize_t r = netaddr_recv(c->fd, buf + got, cap - 1 - got, &c->left_ms);
    if (r < 0) {
      clamd_fail(c, errno == ETIMEDOUT ? "read timeout" : "read failed", errno == ETIMEDOUT ? 0 : errno);
      return false;
    }
    if (r == 0) break;
    if (memchr(buf + got, 0, (size_t)r)) { got += (size_t)r; break; }
    got += (size_t)r;
  }
  buf[got] = 0;
  size_t l = strlen(buf);
  while (l && (buf[l - 1] == '\n' || buf[l - 1] == '\r')) buf[--l] = 0;
  return l > 0;
}

/* "stream: NAME FOUND" -> 1 and NAME; "stream: OK" -> 0; else -1 */
static int parse_answer(const char *a, char *name, size_t cap)
{
  const char *p = strncmp(a, "stream: ", 8) == 0 ? a + 8 : a;
  size_t l = strlen(p);
  if (strcmp(p, "OK") == 0) return 0;
  if (l > 6 && strcmp(p + l - 6, " FOUND") == 0) {
    snprintf(name, cap, "%.*s", (int)(l - 6), p);
    return 1;
  }
  return -1;
}

int clamd_result(struct clamd *c, char *name, size_t cap)
{
  char answer[CLAMD_ANSWER_MAX];
  if (!c) { snprintf(name, cap, "clamd: out of memory"); return -1; }
  flush_chunk(c);
  if (!c->failed) send_all(c, "\0\0\0\0", 4);
  /* even after a failed write clamd may have said why (a size limit) */
  if (c->fd >= 0 && read_answer(c, answer, sizeof answer)) {
    int r = parse_answer(answer, name, cap);
    if (r >= 0 && !c->failed) return r;
    if (r < 0) { snprintf(name, cap, "clamd: answered '%.150s'", answer); return -1; }
  } else clamd_fail(c, "connection closed without an answer", 0);
  snprintf(name, cap, "%s", c->why);
  return -1;
}

void clamd_close(struct clamd *c)
{
  if (!c) return;
  if (c->fd >= 0) close(c->fd);
  free(c);
}
