/* cdbkinds.h -- mxgate-cdb: control text files compiled into cdb (mxgate-cdb(8)).
 *
 * A kind is one table entry (kinds.c): its name, where its text comes
 * from, and a line parser that hands zero or more key/data records to a
 * sink. cdb.c reads the text line by line, skips comments and blank
 * lines, and writes the records atomically (build.c).
 */
#ifndef MXGATE_CDBKINDS_H
#define MXGATE_CDBKINDS_H
#include <stdbool.h>
#include <stddef.h>

/* where a parser's records go; add returns NULL or why the line is bad */
struct cdb_sink {
  const char *(*add)(void *ctx, const char *key, size_t klen, const char *data, size_t dlen);
  void *ctx;
};

/* one meaningful line (no newline, trailing blanks cut, not a comment);
 * NULL, or the reason the line is bad */
typedef const char *(*cdb_line_fn)(const char *line, size_t len, const struct cdb_sink *out);

struct cdb_kind {
  const char *name;
  cdb_line_fn parse;
  bool file_arg;          /* the text file is named on the command line (recipients) */
  const char *twice;      /* a key given twice is this error (users); NULL: allowed */
  int mode;               /* permissions of the cdb */
};

const struct cdb_kind *cdb_kind_find(const char *name);
extern const char cdb_usage[];

/* compiles src into dst (via dst.tmp); 0, or 1 after an error on stderr */
int cdb_build(const struct cdb_kind *k, const char *src, const char *dst);
int cdb_main(int argc, char **argv);
#endif
