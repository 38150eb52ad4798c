/* cdbx.h -- read-only lookups in djb/tinycdb files.
 * A cdbx stays open (mmap) for the session; a missing file is "absent",
 * not an error, so optional tables like morercpthosts.cdb cost nothing. */
#ifndef MXGATE_CDBX_H
#define MXGATE_CDBX_H
#include <stdbool.h>
#include <stddef.h>
#include <cdb.h>
#include "str.h"

struct cdbx {
  bool open;
  int fd;
  struct cdb cdb;
};

/* 1 opened, 0 file missing, -1 error (unreadable, not a cdb) */
int cdbx_open(struct cdbx *c, const char *path);
/* 1 found (data copied into data when non-NULL), 0 not found */
int cdbx_find(struct cdbx *c, const void *key, size_t klen, str *data);
void cdbx_close(struct cdbx *c);
#endif
