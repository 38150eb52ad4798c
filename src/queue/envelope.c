/* envelope.c -- reading and checking the qmail-queue envelope on fd 1:
 * "F" sender NUL, then "T" recipient NUL for each recipient, then NUL.
 * Bounded: at most ENVELOPE_MAX bytes and ADDR_LIMIT bytes per address.
 */
#include "queue.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENVELOPE_MAX (64u << 20)
#define ADDR_LIMIT 1000

int envelope_read(int fd, struct envelope *e)
{
  char buf[65536];
  memset(e, 0, sizeof *e);
  e->raw = (str)STR_INIT(ENVELOPE_MAX);
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return QQ_READ;
    if (r == 0) break;
    if (!str_catb(&e->raw, buf, (size_t)r)) return QQ_ENVELOPE;
  }
  return envelope_parse(e);
}

int envelope_parse(struct envelope *e)
{
  const char *p = e->raw.s;
  size_t n = e->raw.len, i = 0, count = 0;
  /* complete means: ends in the extra NUL after the last field */
  if (n < 3 || p[0] != 'F' || p[n - 1] != 0 || p[n - 2] != 0) return n == 0 ? QQ_READ : QQ_ENVELOPE;
  for (size_t k = 0; k < n - 1; k++) if (p[k] == 0) count++;
  e->rcpt = calloc(count ? count : 1, sizeof *e->rcpt);
  if (!e->rcpt) return QQ_NOMEM;
  while (i < n - 1) {
    const char *field = p + i;
    size_t len = strlen(field);
    if (len > ADDR_LIMIT + 1) return QQ_ADDR_TOO_LONG;
    if (i == 0) e->sender = field + 1;
    else if (field[0] == 'T' && len > 1) e->rcpt[e->nrcpt++] = field + 1;
    else return QQ_ENVELOPE;
    i += len + 1;
  }
  return e->nrcpt ? QQ_OK : QQ_ENVELOPE;
}

void envelope_free(struct envelope *e)
{
  free(e->rcpt);
  str_free(&e->raw);
  memset(e, 0, sizeof *e);
}
