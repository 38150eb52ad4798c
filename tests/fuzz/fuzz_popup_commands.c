/* fuzz_popup_commands.c -- libFuzzer: mxgate-popup's AUTHORIZATION state
 * (USER, PASS, APOP, CAPA, STLS, anything else; pipelined, any bytes, long
 * lines) through popup_main, as fuzz_pop3d_session does for mxgate-pop3d's
 * TRANSACTION state. The first byte picks the setting: POP3AUTH unset,
 * "apop" or "+apop"; UCSPITLS unset, "!" (TLS required) or "-".
 *
 * fuzz-without: src/popup/proxy.c
 * The login (proxy.c) forks the checkprogram; here login() is the
 * harness's, standing where the checkprogram's fd 3 would be: what popup
 * hands it must be a request the checkprogram can split (a name without
 * NUL, the greeting's timestamp for APOP), and it refuses every login
 * (so the session goes on) or, every other time, fails as a checkprogram
 * that cannot run. QUIT ends the process (exit): inputs holding it are
 * skipped, and the failure count is reset so three refusals never exit.
 * Every line popup logs (fd 5, a memfd here) must be one whole line. */
#include "popup.h"
#include <assert.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned logins;

int login(struct popup *p, const char *user, size_t ulen, const char *pass, size_t plen, const char *stamp,
          enum row_id ok)
{
  assert(ok == ROW_POP_APOP_OK || (ok == ROW_POP_USER_OK && ulen > 0));
  assert(memchr(user, 0, ulen) == NULL && memchr(pass, 0, plen) == NULL);
  assert(ulen <= 255 && plen <= 255);
  assert(ok == ROW_POP_APOP_OK ? strcmp(stamp, p->timestamp) == 0 : stamp[0] == 0);
  p->failures = 0;                       /* never the third failure: that ends the process */
  return ++logins % 2 ? 0 : -1;
}

static void check_log(int fd)
{
  static char buf[1 << 20];
  off_t n = lseek(fd, 0, SEEK_CUR);
  assert(n >= 0 && (size_t)n < sizeof buf);
  assert(pread(fd, buf, (size_t)n, 0) == n);
  for (off_t i = 0; i < n; ) {
    char *line = buf + i, *nl = memchr(line, '\n', (size_t)(n - i));
    assert(nl);                          /* every line whole */
    assert(strncmp(line, "qmail-popup: pid ", 17) == 0);
    for (char *c = line; c < nl; c++) assert((unsigned char)*c >= 0x20 && *c != 0x7f);
    i = nl + 1 - buf;
  }
  assert(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static int logfd = -1;
  if (logfd < 0) {
    char home[64];
    snprintf(home, sizeof home, "/tmp/mxgate-fuzz-popup-%d", (int)getpid());
    mkdir(home, 0700);                   /* no control/servercert.pem: STLS is not available */
    setenv("MXGATE_HOME", home, 1);
    setenv("POP3DELAY", "0", 1);
    setenv("TCPREMOTEIP", "192.0.2.1", 1);
    setenv("TCPREMOTEHOST", "client.test", 1);
    logfd = memfd_create("popup-log", 0);
    assert(logfd >= 0 && dup2(logfd, 5) == 5);
  }
  if (size < 1 || size > 60000) return 0;
  for (size_t i = 1; i + 4 <= size; i++)
    if (strncasecmp((const char *)data + i, "QUIT", 4) == 0) return 0;
  static const char *auth[] = { NULL, "apop", "+apop" }, *tls[] = { NULL, "!", "-" };
  if (auth[data[0] % 3]) setenv("POP3AUTH", auth[data[0] % 3], 1); else unsetenv("POP3AUTH");
  if (tls[data[0] / 3 % 3]) setenv("UCSPITLS", tls[data[0] / 3 % 3], 1); else unsetenv("UCSPITLS");
  data++, size--;
  int in[2];
  if (pipe(in) < 0) abort();
  fcntl(in[1], F_SETPIPE_SZ, 1 << 16);
  if (write(in[1], data, size) != (ssize_t)size) abort();
  close(in[1]);
  int save0 = dup(0), save1 = dup(1), null = open("/dev/null", O_WRONLY);
  dup2(in[0], 0); dup2(null, 1);
  char *argv[] = { "mxgate-popup", "pop.example.test", "mxgate-authuser", "mxgate-pop3d", NULL };
  popup_main(4, argv);
  dup2(save0, 0); dup2(save1, 1);
  close(save0); close(save1); close(null); close(in[0]);
  check_log(5);
  return 0;
}
