/* request.c -- the checkpassword input on fd 3 (authuser.h).
 *
 * At most 512 bytes up to end of file: a login name terminated by \0, a
 * password terminated by \0, a timestamp terminated by \0 (a missing final
 * \0 is tolerated), and possibly more data, which is ignored. More than 512
 * bytes, or a name or password without its \0, is misuse (exit 2).
 */
#include "authuser.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

bool request_split(struct auth_request *r)
{
  char *p = r->buf, *end = r->buf + r->len;
  r->buf[r->len] = 0;               /* terminates an unterminated timestamp */
  char *z = memchr(p, 0, (size_t)(end - p));
  if (!z) return false;
  r->user = p; r->user_len = (size_t)(z - p);
  p = z + 1;
  z = p < end ? memchr(p, 0, (size_t)(end - p)) : NULL;
  if (!z) return false;
  r->pass = p; r->pass_len = (size_t)(z - p);
  p = z + 1;
  r->stamp = p;
  r->stamp_len = p < end ? strlen(p) : 0;
  if (p >= end) r->stamp = "";
  return true;
}

int request_read(int fd, struct auth_request *r)
{
  r->len = 0;
  if (fcntl(fd, F_GETFD) < 0) return EXIT_MISUSE;
  for (;;) {
    /* room for one byte more than allowed, so oversized input is seen */
    ssize_t n = read(fd, r->buf + r->len, AUTH_INPUT_MAX + 1 - r->len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { close(fd); return EXIT_TEMP; }
    if (n == 0) break;
    r->len += (size_t)n;
    if (r->len > AUTH_INPUT_MAX) { close(fd); request_wipe(r); return EXIT_MISUSE; }
  }
  close(fd);
  if (!request_split(r)) { request_wipe(r); return EXIT_MISUSE; }
  return 0;
}

void request_wipe(struct auth_request *r)
{
  explicit_bzero(r->buf, sizeof r->buf);
  r->len = r->user_len = r->pass_len = r->stamp_len = 0;
}
