/* input.c -- reading logs: files (plain or gzip, through zlib, which reads
 * either), a multilog directory (its rotated @4000....s/.u files in name
 * order, which is time order, then "current"), or stdin. Reads in large
 * blocks and hands each line to the parser; a line longer than the buffer
 * is counted as unrecognised and skipped to its end; a last line without
 * a newline is still read. With follow (-f), the file is watched for
 * growth and for rotation (a new inode under the same name).
 */
#include "sessions.h"
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define BUF (1 << 20)

struct reader { char *buf; size_t len; bool skipping; };

static void one_line(const char *p, size_t n, struct table *t, struct report *r)
{
  struct logline l;
  r->lines++;
  if (n && p[n - 1] == '\r') n--;
  if (!parse_line(p, n, &l)) { r->unrecognised++; return; }
  table_line(t, &l, r);
}

/* the complete lines of rd->buf; keeps the unfinished tail */
static void lines(struct reader *rd, struct table *t, struct report *r, bool eof)
{
  size_t start = 0;
  for (;;) {
    char *nl = memchr(rd->buf + start, '\n', rd->len - start);
    if (!nl) break;
    size_t n = (size_t)(nl - (rd->buf + start));
    if (rd->skipping) rd->skipping = false;
    else one_line(rd->buf + start, n, t, r);
    start += n + 1;
  }
  memmove(rd->buf, rd->buf + start, rd->len - start);
  rd->len -= start;
  if (rd->len == BUF) { if (!rd->skipping) { r->lines++; r->unrecognised++; } rd->skipping = true; rd->len = 0; }
  if (eof && rd->len) { if (!rd->skipping) one_line(rd->buf, rd->len, t, r); rd->len = 0; rd->skipping = false; }
}

static int read_file(const char *path, struct table *t, struct report *r, bool follow)
{
  int fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st0;
  fstat(fd, &st0);
  gzFile gz = gzdopen(fd, "rb");
  if (!gz) { close(fd); return -1; }
  gzbuffer(gz, 1 << 18);
  struct reader rd = { malloc(BUF), 0, false };
  for (;;) {
    int n = gzread(gz, rd.buf + rd.len, (unsigned)(BUF - rd.len));
    if (n < 0) break;
    if (n > 0) { rd.len += (size_t)n; lines(&rd, t, r, false); continue; }
    if (!follow) break;
    fflush(r->out);
    struct stat st;
    if (stat(path, &st) == 0 && st.st_ino != st0.st_ino) {       /* rotated: read the new file from its start */
      lines(&rd, t, r, true);
      gzclose(gz);
      fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0 || !(gz = gzdopen(fd, "rb"))) { free(rd.buf); return -1; }
      st0 = st;
      continue;
    }
    gzclearerr(gz);
    usleep(200000);
  }
  lines(&rd, t, r, true);
  gzclose(gz);
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
