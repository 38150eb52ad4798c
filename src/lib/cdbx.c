/* cdbx.c -- cdb lookups over tinycdb (cdbx.h). */
#include "cdbx.h"
#include "control.h"
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int cdbx_open(struct cdbx *c, const char *path)
{
  c->open = false;
  c->fd = control_open(path);
  if (c->fd < 0) return errno == ENOENT ? 0 : -1;
  if (cdb_init(&c->cdb, c->fd) != 0) { close(c->fd); return -1; }
  c->open = true;
  return 1;
}

int cdbx_find(struct cdbx *c, const void *key, size_t klen, str *data)
{
  if (!c->open) return 0;
  if (cdb_find(&c->cdb, key, (unsigned)klen) <= 0) return 0;
  if (data) {
    unsigned n = cdb_datalen(&c->cdb);
    const void *p = cdb_get(&c->cdb, n, cdb_datapos(&c->cdb));
    if (!p || !str_copyb(data, p, n)) return -1;
  }
  return 1;
}

void cdbx_close(struct cdbx *c)
{
  if (!c->open) return;
  cdb_free(&c->cdb);
  close(c->fd);
  c->open = false;
}
