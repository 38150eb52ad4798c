/* ucspitls.c -- the program side of UCSPI-TLS (ucspitls.h).
 *
 * The environment block from the control socket is read with the session's
 * timeout and applied only for names that begin with "SSL_": sslserver
 * copies certificate fields into it as they are, so a subject with a NUL
 * inside could otherwise set RELAYCLIENT or any other variable.
 */
#include "ucspitls.h"
#include "io.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENVBLOCK_MAX 65536

/* the descriptor named by variable name, or -1 when unset, not a number or not open */
static int env_fd(const char *name)
{
  const char *v = getenv(name);
  if (!v || !*v) return -1;
  char *end;
  long fd = strtol(v, &end, 10);
  if (*end || fd < 0 || fd > 65535 || fcntl((int)fd, F_GETFD) < 0) return -1;
  return (int)fd;
}

bool ucspitls_fd_named(int fd)
{
  return getenv("SSLCTLFD") && (env_fd("SSLCTLFD") == fd || env_fd("SSLREADFD") == fd || env_fd("SSLWRITEFD") == fd);
}

enum ucspitls ucspitls_detect(const char *prog)
{
  if (getenv("SSLCTLFD")) {
    int fds[3] = { env_fd("SSLCTLFD"), env_fd("SSLREADFD"), env_fd("SSLWRITEFD") };
    if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0) {
      fprintf(stderr, "%s: warning: SSLCTLFD, SSLREADFD or SSLWRITEFD is not an open descriptor: "
                      "STARTTLS through sslserver is off\n", prog);
      return UCSPITLS_NONE;
    }
    /* the queue and the checkprogram have no business with them */
    for (int i = 0; i < 3; i++) fcntl(fds[i], F_SETFD, fcntl(fds[i], F_GETFD) | FD_CLOEXEC);
    return UCSPITLS_DELAYED;
  }
  const char *proto = getenv("PROTO");
  if (proto && (strcmp(proto, "SSL") == 0 || strcmp(proto, "SSL6") == 0)) return UCSPITLS_ACTIVE;
  return UCSPITLS_NONE;
}

static void copyenv(char *dst, size_t cap, const char *name, const char *alt)
{
  const char *v = getenv(name);
  if (!v && alt) v = getenv(alt);
  snprintf(dst, cap, "%s", v ? v : "");
}

void ucspitls_info(struct tls_info *ti)
{
  memset(ti, 0, sizeof *ti);
  copyenv(ti->version, sizeof ti->version, "SSL_PROTOCOL", NULL);
  copyenv(ti->cipher, sizeof ti->cipher, "SSL_CIPHER", NULL);
  if (!ti->version[0]) snprintf(ti->version, sizeof ti->version, "unknown");
  if (!ti->cipher[0]) snprintf(ti->cipher, sizeof ti->cipher, "unknown");
  const char *dn = getenv("SSL_CLIENT_S_DN");
  if (!dn || !*dn) return;                        /* no client certificate */
  copyenv(ti->peer_cn, sizeof ti->peer_cn, "SSL_CLIENT_S_DN_CN", NULL);
  if (!ti->peer_cn[0]) snprintf(ti->peer_cn, sizeof ti->peer_cn, "%s", dn);
  copyenv(ti->peer_email, sizeof ti->peer_email, "SSL_CLIENT_S_DN_Email", "SSL_CLIENT_S_DN_emailAddress");
  const char *verify = getenv("SSL_CLIENT_VERIFY");
  ti->peer_verified = !verify || strcmp(verify, "SUCCESS") == 0;
}

extern char **environ;

/* the block is the only word on the connection: SSL_ variables from
 * before it (a run script, a rules file) go */
static void forget_ssl_env(void)
{
  for (bool again = true; again;) {
    again = false;
    for (char **e = environ; e && *e; e++) {
      if (strncmp(*e, "SSL_", 4) != 0) continue;
      char name[256];
      size_t n = strcspn(*e, "=");
      if (n >= sizeof name) continue;
      memcpy(name, *e, n);
      name[n] = 0;
      unsetenv(name);
      again = true;
      break;
    }
  }
}

/* "VAR=value\0...\0\0": only SSL_ names, each put in the environment */
static void apply_block(char *buf, size_t len)
{
  size_t i = 0;
  forget_ssl_env();
  while (i < len && buf[i]) {
    char *var = buf + i;
    size_t n = strlen(var);
    char *eq = strchr(var, '=');
    if (eq && eq > var && strncmp(var, "SSL_", 4) == 0) {
      *eq = 0;
      setenv(var, eq + 1, 1);
      *eq = '=';
    }
    i += n + 1;
  }
}

/* the block up to its closing NULs; false on EOF (the handshake failed),
 * a timeout, or a block too big */
static bool read_block(int fd, int timeout, char *buf, size_t cap, size_t *len, const char **why)
{
  *len = 0;
  for (;;) {
    if (*len == 1 && buf[0] == 0) return true;                              /* no variables */
    if (*len >= 2 && buf[*len - 1] == 0 && buf[*len - 2] == 0) return true;
    if (*len == cap) { *why = "TLS environment from sslserver too long"; return false; }
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int r = poll(&p, 1, timeout > 0 ? timeout * 1000 : -1);
    if (r == 0) { *why = "handshake timed out"; return false; }
    if (r < 0) { if (errno == EINTR) continue; *why = "handshake failed"; return false; }
    ssize_t n = read(fd, buf + *len, cap - *len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) { *why = "handshake failed"; return false; }
    *len += (size_t)n;
  }
}

bool ucspitls_start(int infd, int outfd, int timeout, const char **why)
{
  int ctl = env_fd("SSLCTLFD"), rfd = env_fd("SSLREADFD"), wfd = env_fd("SSLWRITEFD");
  if (ctl < 0 || rfd < 0 || wfd < 0) { *why = "no UCSPI-TLS descriptors"; return false; }
  if (!fd_write_all(ctl, "Y", 1)) { *why = "handshake failed"; return false; }
  char *buf = malloc(ENVBLOCK_MAX);
  if (!buf) { *why = "out of memory"; return false; }
  size_t len;
  bool ok = read_block(ctl, timeout, buf, ENVBLOCK_MAX, &len, why);
  if (ok) apply_block(buf, len);
  free(buf);
  if (!ok) return false;
  if ((rfd != infd && dup2(rfd, infd) < 0) || (wfd != outfd && dup2(wfd, outfd) < 0)) {
    *why = "cannot switch to the TLS descriptors";
    return false;
  }
  if (rfd != infd && rfd != outfd && rfd != ctl) close(rfd);
  if (wfd != infd && wfd != outfd && wfd != ctl && wfd != rfd) close(wfd);
  return true;
}
