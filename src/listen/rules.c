/* rules.c -- per-client settings from a tcprules(1) cdb, looked up as
 * tcpserver -x does without host names (-H): the client IP, then its
 * prefixes ending in '.' (or ':' for IPv6) from the longest, then the
 * empty key. Data "D..." denies; otherwise "+NAME=value\0" items set
 * variables for the session.
 */
#include "listen.h"
#include "cdbx.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int apply(const str *data, char **envs, int *nenv, int max)
{
  if (data->len && data->s[0] == 'D') return 0;
  for (size_t i = 0; i < data->len; ) {
    const char *item = data->s + i;
    size_t n = strnlen(item, data->len - i);
    if (item[0] == '+' && n > 1 && memchr(item, '=', n) && *nenv < max)
      envs[(*nenv)++] = strndup(item + 1, n - 1);
    i += n + 1;
  }
  return 1;
}

int rules_apply(const char *cdbpath, const char *ip, char **envs, int *nenv, int max)
{
  struct cdbx c;
  str data = STR_INIT(65536);
  int r = -1;
  if (!cdbpath) return 1;
  if (cdbx_open(&c, cdbpath) != 1) return -1;
  size_t n = strlen(ip);
  char sep = strchr(ip, ':') ? ':' : '.';
  if (cdbx_find(&c, ip, n, &data) == 1) r = apply(&data, envs, nenv, max);
  for (size_t k = n; r < 0 && k > 0; k--)
    if (ip[k - 1] == sep && cdbx_find(&c, ip, k, &data) == 1) r = apply(&data, envs, nenv, max);
  if (r < 0 && cdbx_find(&c, "", 0, &data) == 1) r = apply(&data, envs, nenv, max);
  if (r < 0) r = 1;                     /* no rule: tcpserver allows */
  cdbx_close(&c);
  str_free(&data);
  return r;
}
