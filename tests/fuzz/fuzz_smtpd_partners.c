/* fuzz_smtpd_partners.c -- libFuzzer: the answers of mxgate-smtpd's
 * partners, through the real clients over a real socket. A thread of the
 * harness listens on a unix socket and, for each connection, sends the
 * fuzz bytes as the partner's answer, ends its side, and reads what the
 * client sent until the client closes (the input is kept until then). The first byte picks the partner:
 *   0  the policy server (POSTGREY, grey.c: grey_check for one RCPT):
 *      the verdict is greylisted or not, and only for an "action=" answer
 *   1  clamd (CLAMD, scan_clamd.c: clamd_open, clamd_feed, clamd_result):
 *      -1, 0 or 1, 1 only for a "... FOUND" answer, the name a string
 *   2  spamd (SPAMD, scan_spamd.c: spamd_check): -1, 0 or 1; for ham the
 *      X-Spam-Status and X-Spam-Score headers appended are header lines
 *      (name or a tab-folded continuation, printable ASCII, no CR, none
 *      over 78 characters): a partner's answer cannot forge a header
 * OpenSSL is linked (src/smtpd): no MemorySanitizer run. */
#include "smtpd.h"
#include "content.h"
#include <assert.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char path[108];
static const uint8_t *answer;
static size_t answer_len;
static sem_t served;                /* one connection served whole: the input may go */

static void *partner(void *arg)
{
  int ls = *(int *)arg;
  for (;;) {
    int c = accept(ls, NULL, NULL);
    if (c < 0) continue;
    for (size_t off = 0; off < answer_len; ) {
      ssize_t w = send(c, answer + off, answer_len - off, MSG_NOSIGNAL);
      if (w <= 0) break;
      off += (size_t)w;
    }
    shutdown(c, SHUT_WR);
    char buf[4096];
    while (read(c, buf, sizeof buf) > 0) { }    /* until the client closes: no reset of its read */
    close(c);
    sem_post(&served);
  }
  return NULL;
}

static void start(void)
{
  static int ls;
  static pthread_t t;
  snprintf(path, sizeof path, "%s/mxgate-fuzz-partner-%d.sock",
           access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
  unlink(path);
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  sem_init(&served, 0, 0);
  ls = socket(AF_UNIX, SOCK_STREAM, 0);
  if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 8) < 0) abort();
  if (pthread_create(&t, NULL, partner, &ls) != 0) abort();
  signal(SIGPIPE, SIG_IGN);
}

static void grey(void)
{
  static struct session s;
  static struct rcpt r;
  memset(&s, 0, sizeof s);
  memset(&r, 0, sizeof r);
  s.pid = 4711;
  s.logfd = open("/dev/null", O_WRONLY);
  snprintf(s.conn.remoteip, sizeof s.conn.remoteip, "192.0.2.1");
  s.esmtp = true;
  str_copys(&s.helo, "client.test");
  str_copys(&s.mailfrom, "sender@example.org");
  str_copys(&r.addr, "rcpt@example.test");
  setenv("POSTGREY", path, 1);
  setenv("POSTGREY_TIMEOUT", "5", 1);
  enum row_id row = grey_check(&s, &r);
  assert(row == ROW_NONE || row == ROW_GREY_LISTED);
  if (row == ROW_GREY_LISTED) assert(answer_len >= 7 && memcmp(answer, "action=", 7) == 0);
  close(s.logfd);
  str_free(&s.helo);
  str_free(&s.mailfrom);
  str_free(&r.addr);
}

static void clamd(void)
{
  char name[256] = "";
  struct clamd *c = clamd_open(path, 5, 0);
  static const char msg[] = "Subject: test\r\n\r\nX5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR\r\n";
  clamd_feed(c, msg, sizeof msg - 1);
  int r = clamd_result(c, name, sizeof name);
  clamd_close(c);
  assert(r == -1 || r == 0 || r == 1);
  assert(memchr(name, 0, sizeof name));
  if (r == 1) assert(memmem(answer, answer_len, " FOUND", 6));
  if (r == 0) assert(memmem(answer, answer_len, "OK", 2));
}

static void spamd(void)
{
  static int spool = -1;
  if (spool < 0) {
    static const char msg[] = "Subject: hello\r\n\r\nbuy now\r\n";
    spool = memfd_create("spool", 0);
    if (spool < 0 || write(spool, msg, sizeof msg - 1) != (ssize_t)sizeof msg - 1) abort();
  }
  struct spamd_opts o = { .spec = path, .user = "mxgate", .timeout = 5, .maxbytes = 0 };
  char detail[512] = "";
  str hdrs = STR_INIT(1 << 20);
  int r = spamd_check(&o, spool, detail, sizeof detail, &hdrs);
  assert(r == -1 || r == 0 || r == 1);
  assert(memchr(detail, 0, sizeof detail));
  if (r != 0) assert(hdrs.len == 0);
  for (size_t i = 0; i < hdrs.len; ) {
    const char *line = hdrs.s + i, *nl = memchr(line, '\n', hdrs.len - i);
    assert(nl);
    size_t n = (size_t)(nl - line);
    assert(n <= 78 || strncmp(line, "X-Spam-Score: ", 14) == 0 || strncmp(line, "X-Spam-Status: ", 15) == 0);
    assert(line[0] == '\t' || strncmp(line, "X-Spam-", 7) == 0);
    for (size_t k = 0; k < n; k++)
      assert(line[k] == '\t' || ((unsigned char)line[k] >= 0x20 && (unsigned char)line[k] < 0x7f));
    i += n + 1;
  }
  str_free(&hdrs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!path[0]) start();
  if (size < 1 || size > 60000) return 0;
  answer = data + 1;
  answer_len = size - 1;
  switch (data[0] % 3) {
    case 0: grey(); break;
    case 1: clamd(); break;
    default: spamd(); break;
  }
  while (sem_wait(&served) < 0) { }    /* every client above connects once */
  return 0;
}
