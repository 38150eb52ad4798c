/* fuzz_pop3d_session.c -- libFuzzer: a whole mxgate-pop3d session on a
 * small Maildir, commands from fuzz bytes (pipelined, any bytes, long
 * lines). QUIT is refused by the harness's input filter so messages stay. */
#include "pop3d.h"
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static char maildir[64];

static void setup(void)
{
  snprintf(maildir, sizeof maildir, "/tmp/mxgate-fuzz-pop3-%d", (int)getpid());
  const char *subs[] = { "", "/tmp", "/new", "/cur" };
  char p[128];
  for (int i = 0; i < 4; i++) { snprintf(p, sizeof p, "%s%s", maildir, subs[i]); mkdir(p, 0700); }
  const char *msgs[] = { "Subject: a\n\nline\n.dot\n", "Subject: b\r\n\r\nno final newline", "" };
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/cur/%d.M%dP1.fuzz:2,", maildir, 1700000000 + i, i);
    FILE *f = fopen(p, "w");
    if (f) { fputs(msgs[i], f); fclose(f); }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static int ready;
  if (!ready) { setup(); ready = 1; }
  if (size > 60000) return 0;
  for (size_t i = 0; i + 4 <= size; i++)            /* keep the mailbox: no QUIT (deletions) */
    if (strncasecmp((const char *)data + i, "QUIT", 4) == 0) return 0;
  int in[2];
  if (pipe(in) < 0) abort();
  fcntl(in[1], F_SETPIPE_SZ, 1 << 16);
  if (write(in[1], data, size) != (ssize_t)size) abort();
  close(in[1]);
  int save0 = dup(0), save1 = dup(1), null = open("/dev/null", O_WRONLY);
  dup2(in[0], 0); dup2(null, 1);
  char *argv[] = { "mxgate-pop3d", maildir, NULL };
  pop3d_main(2, argv);
  dup2(save0, 0); dup2(save1, 1);
  close(save0); close(save1); close(null); close(in[0]);
  return 0;
}
