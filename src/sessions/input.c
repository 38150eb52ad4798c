/* input.c -- reading logs: files (plain or gzip, through zlib, which reads
 * either), a multilog directory (its rotated @4000....s/.u files in name
 * order, which is time order, then "current"), or stdin. Reads in large
 * blocks and hands each line to the parser; a line longer than the buffer
 * is counted as unrecognised and skipped to its end; a last line without
 * a newline is still read. With follow (-f), the file is watched for
 * growth and for rotation (a new inode under the same name).
 *
 * When only counting (r->stream), a large plain file is cut at line ends
 * into a chunk per CPU, each read by a thread into a table and summary of
 * its own, and the chunks are joined in order afterwards (table_merge,
 * summary_merge).
 */
#include "sessions.h"
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define BUF (1 << 20)             /* the longest line read */
#define READ (128 << 10)          /* read at a time: what was read is parsed while still in the CPU cache */

/* l: the line being read, kept here rather than on the stack of each call */
struct reader { char *buf; size_t len; bool skipping; struct parse_memo memo; struct scan ix; struct logline l; };

static inline void one_line(struct reader *rd, const char *p, size_t n, struct table *t, struct report *r)
{
  r->lines++;
  if (n && p[n - 1] == '\r') n--;
  if (!parse_scanned(&rd->ix, p, n, &rd->l, &rd->memo)) { r->unrecognised++; return; }
  table_line(t, &rd->l, r);
}

/* the complete lines of rd->buf, found in the newline bits of its index;
 * keeps the unfinished tail */
static void lines(struct reader *rd, struct table *t, struct report *r, bool eof)
{
  size_t start = 0;
  if (!scan_block(&rd->ix, rd->buf, rd->len)) {            /* out of memory: the block is lost, counted */
    r->lines++; r->unrecognised++;
    rd->len = 0;
    return;
  }
  for (size_t w = 0, words = rd->len / 64 + 1; w < words; w++)
    for (unsigned long long m = rd->ix.nl[w]; m; m &= m - 1) {
      size_t at = 64 * w + (size_t)__builtin_ctzll(m);
      if (rd->skipping) rd->skipping = false;
      else one_line(rd, rd->buf + start, at - start, t, r);
      start = at + 1;
    }
  memmove(rd->buf, rd->buf + start, rd->len - start);
  rd->len -= start;
  if (rd->len == BUF) { if (!rd->skipping) { r->lines++; r->unrecognised++; } rd->skipping = true; rd->len = 0; }
  if (eof && rd->len) {                                    /* a last line without its newline */
    if (!rd->skipping && scan_block(&rd->ix, rd->buf, rd->len)) one_line(rd, rd->buf, rd->len, t, r);
    else if (!rd->skipping) { r->lines++; r->unrecognised++; }
    rd->len = 0;
    rd->skipping = false;
  }
}

#define CHUNK_MIN (32 << 20)     /* smaller files are not worth a thread */
#define CHUNKS_MAX 16

/* the lines of bytes [off, end) of fd, read in READ blocks */
static void read_range(int fd, off_t off, off_t end, struct table *t, struct report *r)
{
  struct reader rd = { .buf = malloc(BUF), .memo.seconds = r->stream };
  if (!rd.buf) return;
  while (off < end) {
    size_t want = BUF - rd.len < READ ? BUF - rd.len : READ;
    if ((off_t)want > end - off) want = (size_t)(end - off);
    ssize_t got = pread(fd, rd.buf + rd.len, want, off);
    if (got <= 0) break;
    off += got;
    rd.len += (size_t)got;
    lines(&rd, t, r, false);
  }
  lines(&rd, t, r, true);
  scan_free(&rd.ix);
  free(rd.buf);
}

/* the offset just past the first newline at or after off, or end */
static off_t line_start(int fd, off_t off, off_t end)
{
  char buf[4096];
  while (off < end) {
    ssize_t got = pread(fd, buf, sizeof buf, off);
    if (got <= 0) return end;
    char *nl = memchr(buf, '\n', (size_t)got);
    if (nl) return off + (nl - buf) + 1;
    off += got;
  }
  return end;
}

struct chunk { int fd; off_t off, end; struct table *t; struct report r; pthread_t tid; bool threaded; };

/* a chunk's thread: its table and summary are made here, while the main
 * thread is already reading the first chunk */
static void *chunk_main(void *arg)
{
  struct chunk *c = arg;
  c->r.sum = summary_new(false);
  c->t = table_new_chunk();
  if (c->t && c->r.sum) read_range(c->fd, c->off, c->end, c->t, &c->r);
  return NULL;
}

/* bytes [off, end) of a plain regular file: in chunks at line ends, a
 * thread each after the first, which is read here into t and r; false if
 * the file is too small to be worth it */
static bool parallel(int fd, off_t off, off_t end, struct table *t, struct report *r)
{
  long cpus = r->threads > 0 ? r->threads : sysconf(_SC_NPROCESSORS_ONLN);
  size_t k = cpus > 1 ? (size_t)cpus : 1, n = (size_t)(end - off);
  if (k > CHUNKS_MAX) k = CHUNKS_MAX;
  if (k > n / CHUNK_MIN) k = n / CHUNK_MIN;
  if (k < 2) return false;
  struct chunk c[CHUNKS_MAX];
  off_t at = off;
  for (size_t i = 0; i < k; i++) {
    off_t stop = i + 1 == k ? end : line_start(fd, off + (off_t)(n / k * (i + 1)) - 1, end);
    if (stop < at) stop = at;
    c[i] = (struct chunk){ .fd = fd, .off = at, .end = stop, .r = *r };
    at = stop;
    if (!i) continue;
    c[i].r.lines = c[i].r.unrecognised = c[i].r.sessions = c[i].r.partial = 0;
    c[i].r.sum = NULL;
    c[i].threaded = pthread_create(&c[i].tid, NULL, chunk_main, &c[i]) == 0;
  }
  read_range(fd, c[0].off, c[0].end, t, r);
  for (size_t i = 1; i < k; i++) {
    if (c[i].threaded) pthread_join(c[i].tid, NULL);
    if (!c[i].threaded || !c[i].t || !c[i].r.sum) {       /* no thread, or no memory for one: read in turn, here */
      read_range(fd, c[i].off, c[i].end, t, r);
    } else {
      table_merge(t, c[i].t, r);
      r->lines += c[i].r.lines; r->unrecognised += c[i].r.unrecognised;
      r->sessions += c[i].r.sessions; r->partial += c[i].r.partial;
    }
    table_free(c[i].t);
    if (c[i].r.sum) summary_merge(r->sum, c[i].r.sum);    /* frees it */
  }
  return true;
}

/* a large plain regular file, when only counting, in parallel; false if
 * it is not one (a pipe, gzip, small) */
static bool read_parallel(int fd, struct table *t, struct report *r)
{
  struct stat st;
  off_t at = lseek(fd, 0, SEEK_CUR);
  unsigned char magic[2];
  if (!r->stream || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || at < 0 || st.st_size - at < 2 * CHUNK_MIN ||
      pread(fd, magic, 2, at) != 2 || (magic[0] == 0x1f && magic[1] == 0x8b))
    return false;
  if (!parallel(fd, at, st.st_size, t, r)) return false;
  lseek(fd, st.st_size, SEEK_SET);
  return true;
}

static int read_file(const char *path, struct table *t, struct report *r, bool follow)
{
  int fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  if (!follow && read_parallel(fd, t, r)) { close(fd); return 0; }
  struct stat st0;
  fstat(fd, &st0);
  gzFile gz = gzdopen(fd, "rb");
  if (!gz) { close(fd); return -1; }
  gzbuffer(gz, 1 << 18);
  struct reader rd = { .buf = malloc(BUF), .memo.seconds = r->stream };
  for (;;) {
    int n = gzread(gz, rd.buf + rd.len, (unsigned)(BUF - rd.len < READ ? BUF - rd.len : READ));
    if (n < 0) break;
    if (n > 0) { rd.len += (size_t)n; lines(&rd, t, r, false); continue; }
    if (!follow) break;
    fflush(r->out);
    struct stat st;
    if (stat(path, &st) == 0 && st.st_ino != st0.st_ino) {       /* rotated: read the new file from its start */
      lines(&rd, t, r, true);
      gzclose(gz);
      fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0 || !(gz = gzdopen(fd, "rb"))) { scan_free(&rd.ix); free(rd.buf); return -1; }
      st0 = st;
      continue;
    }
    gzclearerr(gz);
    usleep(200000);
  }
  lines(&rd, t, r, true);
  gzclose(gz);
  scan_free(&rd.ix);
  free(rd.buf);
  return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int read_dir(const char *dir, struct table *t, struct report *r, bool follow)
{
  DIR *d = opendir(dir);
  if (!d) return -1;
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(d)))
    if (de->d_name[0] == '@') {
      if (n == cap) { cap = cap ? cap * 2 : 64; names = realloc(names, cap * sizeof *names); }
      names[n++] = strdup(de->d_name);
    }
  closedir(d);
  if (n) qsort(names, n, sizeof *names, by_name);
  char path[4096];
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    if (read_file(path, t, r, false) < 0) rc = -1;
    free(names[i]);
  }
  free(names);
  snprintf(path, sizeof path, "%s/current", dir);
  if (access(path, R_OK) == 0 && read_file(path, t, r, follow) < 0) rc = -1;
  return rc;
}

int read_input(const char *path, struct table *t, struct report *r, bool follow)
{
  struct stat st;
  if (strcmp(path, "-") != 0 && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return read_dir(path, t, r, follow);
  return read_file(path, t, r, follow);
}
