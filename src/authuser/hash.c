/* hash.c -- `mxgate-authuser --hash [PREFIX]`: make a password hash.
 *
 * Reads one password (the first line of stdin, without its newline) and
 * prints its crypt(3) hash with a fresh random salt: yescrypt ("$y$") by
 * default, or the method PREFIX names ("$6$" for SHA-512). The password
 * is never echoed or written anywhere else, and is wiped after use.
 */
#include "authuser.h"
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PASSWORD_MAX 1024

/* the first line of fd 0 into buf; its length, or -1 (too long, read error) */
static long read_password(char *buf, size_t cap)
{
  size_t len = 0;
  for (;;) {
    char *nl = memchr(buf, '\n', len);
    if (nl) { len = (size_t)(nl - buf); break; }
    if (len + 1 >= cap) return -1;
    ssize_t n = read(0, buf + len, cap - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    len += (size_t)n;
  }
  if (len && buf[len - 1] == '\r') len--;
  buf[len] = 0;
  return (long)len;
}

static int hash_fail(const char *why, char *pw, size_t cap, int code)
{
  explicit_bzero(pw, cap);
  fprintf(stderr, "mxgate-authuser: %s\n", why);
  return code;
}

int hash_main(int argc, char **argv)
{
  const char *prefix = argc > 2 ? argv[2] : "$y$";
  char pw[PASSWORD_MAX + 2];
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  long len = read_password(pw, sizeof pw);
  if (len < 0) return hash_fail("cannot read the password (at most 1024 bytes, one line)", pw, sizeof pw, EXIT_MISUSE);
  if (len == 0) return hash_fail("empty password", pw, sizeof pw, EXIT_MISUSE);
  if (memchr(pw, 0, (size_t)len)) return hash_fail("NUL byte in password", pw, sizeof pw, EXIT_MISUSE);
  if (!crypt_gensalt_rn(prefix, 0, NULL, 0, salt, (int)sizeof salt))
    return hash_fail("unknown hash method prefix (try $y$ or $6$)", pw, sizeof pw, EXIT_MISUSE);
  struct crypt_data *cd = calloc(1, sizeof *cd);
  if (!cd) return hash_fail("out of memory", pw, sizeof pw, EXIT_TEMP);
  const char *h = crypt_rn(pw, salt, cd, (int)sizeof *cd);
  int rc = 0;
  if (!h || h[0] != '$') { fprintf(stderr, "mxgate-authuser: crypt failed\n"); rc = EXIT_TEMP; }
  else if (printf("%s\n", h) < 0 || fflush(stdout) != 0) rc = EXIT_TEMP;
  explicit_bzero(cd, sizeof *cd);
  free(cd);
  explicit_bzero(pw, sizeof pw);
  return rc;
}
