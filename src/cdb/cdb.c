/* cdb.c -- mxgate-cdb: the command line and the atomic build.
 *
 *   mxgate-cdb morercpthosts|badmimetypes|badloadertypes|mailfromrules|users
 *       reads $MXGATE_HOME/control/NAME, writes control/NAME.cdb
 *   mxgate-cdb recipients FILE
 *       reads FILE (relative to $MXGATE_HOME unless absolute), writes FILE.cdb
 * '#' comments and empty lines are skipped, trailing blanks and CR cut.
 * The table is written with tinycdb to NAME.cdb.tmp (held under an
 * exclusive flock, so two runs never write one temp file), fsync'd,
 * renamed over NAME.cdb, and the directory fsync'd: a reader sees the old
 * or the new table, never a partial one. On any bad line nothing is
 * replaced and the error names the file and the line.
 */
#include "cdbkinds.h"
#include "control.h"
#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEXT_MAX (1u << 30)

struct maker {
  struct cdb_make cm;
  const struct cdb_kind *kind;
  int write_errno;        /* set when cdb_make_add failed: an I/O error, not the line's fault */
};

static const char *maker_add(void *ctx, const char *key, size_t klen, const char *data, size_t dlen)
{
  struct maker *m = ctx;
  if (m->kind->twice && cdb_make_exists(&m->cm, key, (unsigned)klen) > 0) return m->kind->twice;
  if (cdb_make_add(&m->cm, key, (unsigned)klen, data, (unsigned)dlen) < 0) {
    m->write_errno = errno ? errno : ENOMEM;
    return strerror(m->write_errno);
  }
  return NULL;
}

static int fail(const char *path, size_t lineno, const char *why)
{
  if (lineno) fprintf(stderr, "mxgate-cdb: %s:%zu: %s\n", path, lineno, why);
  else fprintf(stderr, "mxgate-cdb: %s: %s\n", path, why);
  return 1;
}

/* dst.tmp, created or reused, locked and emptied; -1 with errno */
static int open_tmp(const char *tmp, int mode)
{
  struct stat a, b;
  int fd = open(tmp, O_RDWR | O_CREAT | O_CLOEXEC, mode);
  if (fd < 0) return -1;
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) { close(fd); errno = EBUSY; return -1; }
  /* the name may have been renamed away by the run that held the lock */
  if (fstat(fd, &a) < 0 || stat(tmp, &b) < 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev ||
      ftruncate(fd, 0) < 0 || fchmod(fd, (mode_t)mode) < 0) {
    close(fd);
    errno = EBUSY;
    return -1;
  }
  return fd;
}

static int fsync_parent(const char *path)
{
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = 0; else strcpy(dir, ".");
  int fd = open(slash && !*dir ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int r = fsync(fd);
  close(fd);
  return r;
}

/* every record of text into m; NULL, or why with *lineno the bad line */
static const char *add_lines(struct maker *m, const str *text, size_t *lineno)
{
  struct cdb_sink sink = { maker_add, m };
  *lineno = 0;
  for (size_t i = 0; i < text->len; ) {
    const char *l = text->s + i;
    const char *nl = memchr(l, '\n', text->len - i);
    size_t n = nl ? (size_t)(nl - l) : text->len - i;
    i += n + 1;
    ++*lineno;
    while (n && (l[n - 1] == ' ' || l[n - 1] == '\t' || l[n - 1] == '\r')) n--;
    if (!n || l[0] == '#') continue;
    if (memchr(l, 0, n)) return "a NUL byte in the line";
    const char *why = m->kind->parse(l, n, &sink);
    if (why) return why;
  }
  return NULL;
}

int cdb_build(const struct cdb_kind *k, const char *src, const char *dst)
{
  str text = STR_INIT(TEXT_MAX);
  char tmp[4200];
  size_t lineno = 0;
  const char *where = src, *why;
  int r = control_readfile(&text, src, TEXT_MAX);
  if (r <= 0) { str_free(&text); return fail(src, 0, r == 0 ? "no such file" : strerror(errno)); }
  snprintf(tmp, sizeof tmp, "%s.tmp", dst);
  int fd = open_tmp(tmp, k->mode);
  if (fd < 0) {
    str_free(&text);
    return fail(tmp, 0, errno == EBUSY ? "another mxgate-cdb is writing it" : strerror(errno));
  }
  struct maker m = { .kind = k };
  cdb_make_start(&m.cm, fd);
  why = add_lines(&m, &text, &lineno);
  if (!why) lineno = 0;
  if (why && m.write_errno) { where = tmp; lineno = 0; }
  /* finishing also frees the table's memory; after an error the file is thrown away */
  bool written = cdb_make_finish(&m.cm) == 0 && fsync(fd) == 0;
  if (!why && !written) { why = strerror(errno); where = tmp; }
  /* renamed (or removed) while still locked: once the lock goes, another
   * run may take the file under the temp name and empty it */
  if (!why && rename(tmp, dst) < 0) { why = strerror(errno); where = dst; }
  if (why) unlink(tmp);
  if (close(fd) < 0 && !why) { why = strerror(errno); where = dst; }
  if (!why && fsync_parent(dst) < 0) { why = strerror(errno); where = dst; }
  if (text.s) explicit_bzero(text.s, text.cap);
  str_free(&text);
  return why ? fail(where, lineno, why) : 0;
}

int cdb_main(int argc, char **argv)
{
  const struct cdb_kind *k = argc >= 2 ? cdb_kind_find(argv[1]) : NULL;
  if (!k || argc != (k->file_arg ? 3 : 2)) {
    fputs(cdb_usage, stderr);
    return 2;
  }
  char src[4096], full[4000], dst[4096];
  if (k->file_arg) snprintf(src, sizeof src, "%s", argv[2]);
  else snprintf(src, sizeof src, "control/%s", k->name);
  if (!control_path(full, sizeof full, src)) return fail(src, 0, "path too long");
  snprintf(dst, sizeof dst, "%s.cdb", full);
  return cdb_build(k, src, dst);
}
