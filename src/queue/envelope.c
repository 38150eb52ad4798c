/* envelope.c -- reading and checking the qmail-queue envelope on fd 1:
 * "F" sender NUL, then "T" recipient NUL for each recipient, then NUL.
 *
 * As qmail-queue does, reading stops at the terminating NUL (the writer
 * need not close its end); end of file before it means the sender gave
 * up (54). Bounded: at most ENVELOPE_MAX bytes, ADDR_LIMIT per address.
 */
#include "queue.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENVELOPE_MAX (64u << 20)
#define ADDR_LIMIT 1000

/* the length of the envelope in p[0..n) up to and including its
 * terminating NUL, or 0 while it is not complete; *field carries the
 * start of the current field between calls */
size_t envelope_end(const char *p, size_t from, size_t n, size_t *field)
{
  for (size_t k = from; k < n; k++) {
    if (p[k] != 0) continue;
    if (k == *field && k > 0) return k + 1;         /* an empty field after the first: the end */
    *field = k + 1;
  }
  return 0;
}

int envelope_read(int fd, struct envelope *e)
{
  char buf[65536];
  size_t field = 0, end = 0;
  memset(e, 0, sizeof *e);
  e->raw = (str)STR_INIT(ENVELOPE_MAX);
  while (!end) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return QQ_READ;
    if (r == 0) return e->raw.len && e->raw.s[0] != 'F' ? QQ_ENVELOPE : QQ_READ;
    size_t from = e->raw.len;
    if (!str_catb(&e->raw, buf, (size_t)r)) return QQ_ENVELOPE;
    end = envelope_end(e->raw.s, from, e->raw.len, &field);
  }
  e->raw.len = end;                                  /* bytes after the end are ignored, as qmail-queue does */
  return envelope_parse(e);
}

int envelope_parse(struct envelope *e)
{
  const char *p = e->raw.s;
  size_t n = e->raw.len, i = 0, count = 0;
  /* complete means: ends in the extra NUL after the last field */
  if (n == 0) return QQ_READ;
  if (p[0] != 'F') return QQ_ENVELOPE;
  if (n < 3 || p[n - 1] != 0 || p[n - 2] != 0) return QQ_READ;
  for (size_t k = 0; k < n - 1; k++) if (p[k] == 0) count++;
  free(e->rcpt);
  e->nrcpt = 0;
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
