/* scan_spamd.c -- spam scanning over the spamc protocol (SPAMD).
 *
 * SpamAssassin's spamd (and rspamd's spamc emulation) take
 *   SYMBOLS SPAMC/1.5 CRLF Content-length: N CRLF [User: u CRLF] CRLF message
 * and answer
 *   SPAMD/1.1 0 EX_OK CRLF Spam: True ; 1003.7 / 5.0 CRLF CRLF SYM1,SYM2,...
 * The message is the spooled file (its length must be known first). As
 * with spamc, a message longer than SPAMD_MAXBYTES (default 512000 bytes,
 * 0 no limit) is not sent and passes. Spam gives detail "score/threshold";
 * ham may add X-Spam-Status (with the rule names, folded) and X-Spam-Score.
 * An unreachable, slow or erroring spamd is a fault. SPAMD_TIMEOUT is for
 * the whole check, connecting, sending and the answer together: a spamd
 * that reads or answers a byte at a time cannot stretch it.
 */
#include "smtpd.h"
#include "content.h"
#include "netaddr.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPAMD_ANSWER_MAX 65536
#define SPAMD_SCORE_MAX 24

static bool send_message(int fd, int spoolfd, off_t size, const struct spamd_opts *o, long long *left_ms)
{
  char buf[65536];
  int n = snprintf(buf, sizeof buf, "SYMBOLS SPAMC/1.5\r\nContent-length: %lld\r\n", (long long)size);
  if (o->user && strlen(o->user) < 256 && !strpbrk(o->user, "\r\n"))
    n += snprintf(buf + n, sizeof buf - (size_t)n, "User: %s\r\n", o->user);
  n += snprintf(buf + n, sizeof buf - (size_t)n, "\r\n");
  if (!netaddr_send(fd, buf, (size_t)n, left_ms)) return false;
  for (off_t off = 0; off < size;) {
    ssize_t r = pread(spoolfd, buf, sizeof buf, off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || !netaddr_send(fd, buf, (size_t)r, left_ms)) return false;
    off += r;
  }
  shutdown(fd, SHUT_WR);
  return true;
}

static ssize_t read_answer(int fd, char *buf, size_t cap, long long *left_ms)
{
  size_t got = 0;
  while (got + 1 < cap) {
    ssize_t r = netaddr_recv(fd, buf + got, cap - 1 - got, left_ms);
    if (r < 0) return -1;
    if (r == 0) break;
    got += (size_t)r;
  }
  buf[got] = 0;
  return (ssize_t)got;
}

/* a number as spamd writes it: digits, '.', '-' */
static bool take_number(const char **pp, char *out)
{
  const char *p = *pp;
  size_t n = 0;
  while (*p == ' ') p++;
  while ((*p >= '0' && *p <= '9') || *p == '.' || *p == '-') {
    if (n + 1 >= SPAMD_SCORE_MAX) return false;
    out[n++] = *p++;
  }
  out[n] = 0;
  *pp = p;
  return n > 0;
}

/* "Spam: True ; 1003.7 / 5.0" */
static int parse_spam_line(const char *a, char *score, char *threshold)
{
  for (const char *l = a; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    if (strncasecmp(l, "Spam:", 5) != 0) continue;
    const char *p = l + 5;
    while (*p == ' ') p++;
    int spam = strncasecmp(p, "True", 4) == 0 || strncasecmp(p, "Yes", 3) == 0;
    p = strchr(p, ';');
    if (!p) return -1;
    p++;
    if (!take_number(&p, score)) return -1;
    while (*p == ' ') p++;
    if (*p++ != '/' || !take_number(&p, threshold)) return -1;
    return spam;
  }
  return -1;
}

/* X-Spam-Status and X-Spam-Score for a ham verdict; rule names from the
 * answer's body, only [A-Za-z0-9_.-] kept, lines folded before 78 */
static void ham_headers(str *hdrs, const char *body, const char *score, const char *threshold)
{
  char line[128];
  size_t col = (size_t)snprintf(line, sizeof line, "X-Spam-Status: No, score=%s required=%s tests=", score, threshold);
  str_cats(hdrs, line);
  size_t total = 0;
  for (const char *p = body; *p && total < 4000;) {
    const char *e = p;
    while (*e && *e != ',' && *e != '\r' && *e != '\n') e++;
    size_t k = 0;
    char name[64];
    for (const char *q = p; q < e && k + 1 < sizeof name; q++)
      if ((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') ||
          *q == '_' || *q == '.' || *q == '-') name[k++] = *q;
    if (k) {
      if (total && col + k + 1 > 76) { str_cats(hdrs, ",\n\t"); col = 1; }
      else if (total) { str_catc(hdrs, ','); col++; }
      str_catb(hdrs, name, k);
      col += k; total += k + 1;
    }
    p = *e ? e + 1 : e;
  }
  str_catc(hdrs, '\n');
  snprintf(line, sizeof line, "X-Spam-Score: %s\n", score);
  str_cats(hdrs, line);
}

int spamd_check(const struct spamd_opts *o, int spoolfd, char *detail, size_t cap, str *hdrs)
{
  struct stat st;
  if (fstat(spoolfd, &st) < 0) { snprintf(detail, cap, "spamd: spool: %s", strerror(errno)); return -1; }
  if (o->maxbytes && (unsigned long long)st.st_size > o->maxbytes) return 0;
  long long left_ms = (long long)o->timeout * 1000, t0 = netaddr_now_ms();
  int fd = netaddr_connect(o->spec, o->timeout * 1000);
  if (fd < 0) { snprintf(detail, cap, "spamd: cannot connect to %s: %s", o->spec, strerror(errno)); return -1; }
  left_ms -= netaddr_now_ms() - t0;
  char *a = malloc(SPAMD_ANSWER_MAX);
  int result = -1;
  if (!a) snprintf(detail, cap, "spamd: out of memory");
  else if (!send_message(fd, spoolfd, st.st_size, o, &left_ms))
    snprintf(detail, cap, "spamd: %s%s", errno == ETIMEDOUT ? "write timeout" : "write failed: ",
             errno == ETIMEDOUT ? "" : strerror(errno));
  else if (read_answer(fd, a, SPAMD_ANSWER_MAX, &left_ms) < 0)
    snprintf(detail, cap, "spamd: %s", errno == ETIMEDOUT ? "read timeout" : strerror(errno));
  else {
    char score[SPAMD_SCORE_MAX], threshold[SPAMD_SCORE_MAX];
    const char *sp = strchr(a, ' ');
    int r = strncmp(a, "SPAMD/", 6) == 0 && sp && strncmp(sp, " 0 ", 3) == 0 ? parse_spam_line(a, score, threshold) : -1;
    const char *body = strstr(a, "\r\n\r\n");
    if (r < 0) snprintf(detail, cap, "spamd: answered '%.*s'", (int)strcspn(a, "\r\n") < 150 ? (int)strcspn(a, "\r\n") : 150, a);
    else if (r > 0) snprintf(detail, cap, "%s/%s", score, threshold);
    else if (hdrs) ham_headers(hdrs, body ? body + 4 : "", score, threshold);
    result = r;
  }
  free(a);
  close(fd);
  return result;
}
