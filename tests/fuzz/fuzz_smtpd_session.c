/* fuzz_smtpd_session.c -- libFuzzer: a whole SMTP session fed with fuzz
 * bytes (commands, pipelining, DATA with any line endings) against an empty
 * home; replies go to /dev/null, the log to a pipe that is checked to hold
 * whole lines only. The queue program is /bin/true, so DATA is exercised
 * end to end without writing anything. */
#include "smtpd.h"
#include <assert.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct smtpd_config cfg;
static int ready;

static void setup(void)
{
  char dir[] = "/tmp/mxgate-fuzz-XXXXXX";
  if (!mkdtemp(dir)) abort();
  char control[sizeof dir + 8];
  snprintf(control, sizeof control, "%s/control", dir);
  if (mkdir(control, 0755) != 0) abort();     /* a home without control/ is a configuration error */
  setenv("MXGATE_HOME", dir, 1);
  setenv("QMAILQUEUE", "/bin/true", 1);
  setenv("HELOCHECK", ".", 1);
  setenv("MAXRECIPIENTS", "50", 1);
  setenv("DATABYTES", "20000", 1);
  signal(SIGPIPE, SIG_IGN);                 /* as main() does: /bin/true, the queue, does not read the message */
  if (smtpd_config_load(&cfg, "mxgate-smtpd") != 0) abort();
  str_copys(&cfg.rcpthosts, "example.test");
  str_catc(&cfg.rcpthosts, 0);
  ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!ready) setup();
  if (size > 60000) return 0;
  int in[2], log[2];
  if (pipe(in) < 0 || pipe(log) < 0) abort();
  fcntl(in[1], F_SETPIPE_SZ, 1 << 16);
  fcntl(log[1], F_SETPIPE_SZ, 1 << 20);
  fcntl(log[1], F_SETFL, O_NONBLOCK);
  if (write(in[1], data, size) != (ssize_t)size) abort();
  close(in[1]);
  int out = open("/dev/null", O_WRONLY);
  struct session s;
  session_init(&s, &cfg, in[0], out, log[1]);
  session_run(&s);
  session_free(&s);
  close(in[0]); close(out); close(log[1]);
  static char buf[1 << 20];
  ssize_t n = read(log[0], buf, sizeof buf);
  close(log[0]);
  for (ssize_t i = 0, start = 0; i < n; i++) {
    if (buf[i] != '\n') continue;
    assert(strncmp(buf + start, "qmail-smtpd: pid ", 17) == 0 || strncmp(buf + start, "mxgate-smtpd: ", 14) == 0);
    start = i + 1;
  }
  assert(n <= 0 || buf[n - 1] == '\n');
  return 0;
}
