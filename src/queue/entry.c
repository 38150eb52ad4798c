/* entry.c -- a queued message is one file, queue/todo/ID (mxgate-queue(8)).
 *
 *   [0, 64)            the header, one line of text:
 *                      "MXGQ1 <message bytes> <envelope bytes> <crc> <time>" padded
 *                      with blanks to 63 bytes, then a newline
 *   [64, 64+M)         the message, as the queue program got it
 *   [64+M, 64+M+E)     the envelope, qmail-queue's: "F" sender NUL, "T"
 *                      recipient NUL ..., NUL
 *   then               the recipients' state records, appended as they
 *                      change: "S <index> <state> <attempts> <next try> <reply>\n",
 *                      and "W <time>\n" once the delay warning of
 *                      control/bouncewarn is queued
 *
 * The crc (zlib's CRC-32, in hex) covers message and envelope. The header
 * is written last, so a file that is not whole (a crash while it was
 * written, or a power cut before the flush of an entry already renamed
 * into todo/) has a header that does not parse or a crc that does not
 * match: readers skip such an entry, and --flush removes it once it is old
 * enough. That is what lets the rename into todo/ come before the flush,
 * so that one flush (one group commit) makes a message durable.
 *
 * A state record is one write() in append mode; the last record of a
 * recipient is its state: 'd' done, 'p' pending (with the attempts so far,
 * the time of the next try and the last reply), 'b' bounced. A record cut
 * short by a crash has no newline and is ignored. Recipients without a
 * record are pending, never tried. The entry is removed when every
 * recipient is done or bounced.
 */
#include "queue.h"
#include "control.h"
#include "io.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static int err_code(int e) { return e == ENOSPC || e == EDQUOT || e == EIO || e == EFBIG ? QQ_WRITE : QQ_QUEUEDIR; }

void entry_path(char *out, size_t cap, const char *sub, const char *id)
{
  char rel[512];
  snprintf(rel, sizeof rel, "queue/%s%s%s", sub, id ? "/" : "", id ? id : "");
  control_path(out, cap, rel);
}

int entry_make_dirs(void)
{
  static const char *subs[] = { "queue", "queue/tmp", "queue/todo" };
  char dir[4096];
  for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) {
    control_path(dir, sizeof dir, subs[i]);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) return QQ_QUEUEDIR;
  }
  return QQ_OK;
}

int entry_create(struct entry_writer *w)
{
  char name[256];
  memset(w, 0, sizeof *w);
  w->fd = -1;
  unique_name(name, sizeof name);
  snprintf(w->id, sizeof w->id, "%s", name);
  entry_path(w->tmp, sizeof w->tmp, "tmp", w->id);
  entry_path(w->todo, sizeof w->todo, "todo", w->id);
  w->fd = open(w->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (w->fd < 0 && errno == ENOENT && entry_make_dirs() == QQ_OK)
    w->fd = open(w->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (w->fd < 0) return err_code(errno);
  if (lseek(w->fd, ENTRY_HEADER, SEEK_SET) < 0) { int e = errno; entry_discard(w); return err_code(e); }
  w->crc = crc32(0, NULL, 0);
  return QQ_OK;
}

/* zlib's crc32 takes an unsigned int length */
static unsigned long crc_add(unsigned long crc, const char *p, size_t n)
{
  while (n) {
    unsigned k = n > (1u << 30) ? 1u << 30 : (unsigned)n;
    crc = crc32(crc, (const unsigned char *)p, k);
    p += k;
    n -= k;
  }
  return crc;
}

bool entry_write(struct entry_writer *w, const void *p, size_t n)
{
  if (!fd_write_all(w->fd, p, n)) return false;
  w->crc = crc_add(w->crc, p, n);
  w->msglen += n;
  return true;
}

int entry_seal(struct entry_writer *w, const char *envelope, size_t envlen)
{
  char h[ENTRY_HEADER + 1];
  if (envlen > 99999999) return QQ_ENVELOPE;
  if (!fd_write_all(w->fd, envelope, envlen)) return err_code(errno);
  unsigned long crc = crc_add(w->crc, envelope, envlen);
  int n = snprintf(h, sizeof h, "MXGQ1 %llu %zu %08lx %lld", w->msglen, envlen, crc, (long long)time(NULL));
  if (n < 0 || n >= ENTRY_HEADER) return QQ_BUG;
  memset(h + n, ' ', (size_t)(ENTRY_HEADER - 1 - n));
  h[ENTRY_HEADER - 1] = '\n';
  if (pwrite(w->fd, h, ENTRY_HEADER, 0) != ENTRY_HEADER) return err_code(errno);
  return QQ_OK;
}

int entry_publish(struct entry_writer *w)
{
  if (rename(w->tmp, w->todo) < 0) return err_code(errno);
  w->published = true;
  return QQ_OK;
}

void entry_discard(struct entry_writer *w)
{
  if (w->fd >= 0) close(w->fd);
  w->fd = -1;
  unlink(w->published ? w->todo : w->tmp);
  w->published = false;
}

/* ---- reading ---- */

int entry_lock(const char *todo)
{
  struct stat a, b;
  int fd = open(todo, O_RDWR | O_APPEND | O_CLOEXEC);
  if (fd < 0) return -1;
  if (flock(fd, LOCK_EX | LOCK_NB) < 0 || fstat(fd, &a) < 0) { int e = errno; close(fd); errno = e; return -1; }
  if (stat(todo, &b) < 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) { close(fd); errno = ESTALE; return -1; }
  return fd;
}

/* the header's numbers; false when it is not a sealed entry's */
static bool parse_header(const char *h, unsigned long long *msglen, size_t *envlen, unsigned long *crc,
                         long long *when)
{
  char copy[ENTRY_HEADER + 1];
  memcpy(copy, h, ENTRY_HEADER);
  copy[ENTRY_HEADER] = 0;
  if (memcmp(copy, "MXGQ1 ", 6) != 0 || copy[ENTRY_HEADER - 1] != '\n') return false;
  unsigned long long m;
  unsigned long e, c;
  long long t;
  int used = 0;
  if (sscanf(copy + 6, "%llu %lu %lx %lld%n", &m, &e, &c, &t, &used) != 4) return false;
  for (int i = 6 + used; i < ENTRY_HEADER - 1; i++) if (copy[i] != ' ') return false;
  *msglen = m;
  *envlen = e;
  *crc = c;
  *when = t;
  return true;
}

static bool read_at(int fd, char *p, size_t n, off_t off)
{
  while (n) {
    ssize_t r = pread(fd, p, n, off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r; n -= (size_t)r; off += r;
  }
  return true;
}

/* one record "S i c attempts next reply" or "W time" (without its newline) */
static void apply_record(struct entry *e, const char *p, size_t n)
{
  char line[ENTRY_REPLY_MAX + 80];
  if (n >= sizeof line || n < 2 || (p[0] != 'S' && p[0] != 'W') || p[1] != ' ') return;
  memcpy(line, p, n);
  line[n] = 0;
  if (p[0] == 'W') {
    long long t;
    if (sscanf(line + 2, "%lld", &t) == 1 && t > 0) e->warned_at = t;
    return;
  }
  unsigned long i, attempts;
  long long next;
  char state;
  int used = 0;
  if (sscanf(line + 2, "%lu %c %lu %lld%n", &i, &state, &attempts, &next, &used) != 4) return;
  if (i >= e->env.nrcpt || !strchr("dpb", state)) return;
  struct entry_rcpt *r = &e->rcpt[i];
  r->state = state;
  r->attempts = (unsigned)attempts;
  r->next_try = next;
  const char *reply = line + 2 + used;
  if (*reply == ' ') reply++;
  snprintf(r->reply, sizeof r->reply, "%s", reply);
}

int entry_load(int fd, struct entry *e)
{
  char h[ENTRY_HEADER];
  struct stat st;
  unsigned long crc;
  memset(e, 0, sizeof *e);
  e->fd = fd;
  if (fstat(fd, &st) < 0 || st.st_size < ENTRY_HEADER || !read_at(fd, h, ENTRY_HEADER, 0) ||
      !parse_header(h, &e->msglen, &e->envlen, &crc, &e->queued_at))
    return QQ_READ;
  e->msgoff = ENTRY_HEADER;
  unsigned long long sealed = ENTRY_HEADER + e->msglen + e->envlen;
  if ((unsigned long long)st.st_size < sealed || e->envlen > 99999999) return QQ_READ;
  /* the message, read for its crc */
  unsigned long sum = crc32(0, NULL, 0);
  char buf[65536];
  for (unsigned long long off = 0; off < e->msglen; ) {
    size_t k = e->msglen - off < sizeof buf ? (size_t)(e->msglen - off) : sizeof buf;
    if (!read_at(fd, buf, k, (off_t)(e->msgoff + off))) return QQ_READ;
    sum = crc_add(sum, buf, k);
    off += k;
  }
  e->env.raw = (str)STR_INIT(64 << 20);
  if (!str_ready(&e->env.raw, e->envlen) || !read_at(fd, e->env.raw.s, e->envlen, (off_t)(e->msgoff + e->msglen)))
    return QQ_READ;
  e->env.raw.len = e->envlen;
  if (crc_add(sum, e->env.raw.s, e->envlen) != crc) return QQ_READ;
  int r = envelope_parse(&e->env);
  if (r != QQ_OK) return r;
  e->rcpt = calloc(e->env.nrcpt, sizeof *e->rcpt);
  if (!e->rcpt) return QQ_NOMEM;
  for (size_t i = 0; i < e->env.nrcpt; i++) e->rcpt[i].state = 'p';
  /* the state records, each whole line */
  size_t tail = (size_t)((unsigned long long)st.st_size - sealed);
  char *t = malloc(tail ? tail : 1);
  if (!t) return QQ_NOMEM;
  if (tail && !read_at(fd, t, tail, (off_t)sealed)) { free(t); return QQ_READ; }
  for (size_t start = 0; start < tail; ) {
    char *nl = memchr(t + start, '\n', tail - start);
    if (!nl) break;                                      /* cut short by a crash: not a record */
    apply_record(e, t + start, (size_t)(nl - (t + start)));
    start = (size_t)(nl - t) + 1;
  }
  free(t);
  return QQ_OK;
}

bool entry_done(const struct entry *e)
{
  for (size_t i = 0; i < e->env.nrcpt; i++) if (e->rcpt[i].state == 'p') return false;
  return true;
}

/* the record of recipient i's state, appended to out; the reply with its
 * control bytes and newlines made blanks, so a record stays one line */
void entry_record(str *out, size_t i, const struct entry_rcpt *r)
{
  char line[ENTRY_REPLY_MAX + 80];
  int n = snprintf(line, sizeof line, "S %zu %c %u %lld ", i, r->state, r->attempts, r->next_try);
  if (n < 0) return;
  str_catb(out, line, (size_t)n);
  for (const char *p = r->reply; *p && p - r->reply < ENTRY_REPLY_MAX; p++)
    str_catc(out, (unsigned char)*p < 32 || *p == 127 ? ' ' : *p);
  str_catc(out, '\n');
}

void entry_record_warned(str *out, long long when)
{
  char line[40];
  int n = snprintf(line, sizeof line, "W %lld\n", when);
  str_catb(out, line, (size_t)n);
}

int entry_append(struct entry *e, const str *records, const char *dir)
{
  if (!records->len) return QQ_OK;                   /* e->fd is open in append mode: one record, one write */
  bool ok = write(e->fd, records->s, records->len) == (ssize_t)records->len && durable_file(e->fd, dir) == 0;
  return ok ? QQ_OK : err_code(errno);
}

void entry_free(struct entry *e)
{
  free(e->rcpt);
  envelope_free(&e->env);
  memset(e, 0, sizeof *e);
  e->fd = -1;
}

/* the message of an entry (msgoff, msglen) copied to fd `to` */
int entry_copy_message(const struct entry *e, int to)
{
  char buf[65536];
  for (unsigned long long off = 0; off < e->msglen; ) {
    size_t k = e->msglen - off < sizeof buf ? (size_t)(e->msglen - off) : sizeof buf;
    if (!read_at(e->fd, buf, k, (off_t)(e->msgoff + off))) { errno = EIO; return -1; }
    if (!fd_write_all(to, buf, k)) return -1;
    off += k;
  }
  return 0;
}

/* wakes mxgate-send: a byte into queue/trigger, a FIFO it reads (as
 * qmail-send's lock/trigger). Nobody reading, or no FIFO: nothing to do,
 * the runner's next scan finds the entry */
void entry_trigger(void) { entry_trigger_id(NULL); }

/* the same, naming entry id: "Rid\n" makes the runner try it now even if
 * it had it for later (mxgate-queue --retry); one write, atomic in a FIFO */
void entry_trigger_id(const char *id)
{
  char path[4096], line[300];
  entry_path(path, sizeof path, "trigger", NULL);
  int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return;
  int n = id ? snprintf(line, sizeof line, "R%s\n", id) : 1;
  if (!id) line[0] = 0;
  if (n > 0 && (size_t)n < sizeof line && write(fd, line, (size_t)n) < 0) { /* full: a wake-up is pending anyway */ }
  close(fd);
}
