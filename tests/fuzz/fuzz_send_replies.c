/* fuzz_send_replies.c -- libFuzzer: what mxgate-send's SMTP/LMTP client
 * (src/send/client.c) makes of a server's replies. The input is all a
 * server says on a connection (a socketpair here, the server side closed
 * for writing after it), except the first byte, which picks the session:
 *   bit 0  LMTP (LHLO, a reply per recipient after the dot)
 *   bit 1  a second transaction on the same connection (RSET paths)
 *   bit 2  a UTF-8 recipient (the SMTPUTF8 paths)
 *   bit 3  an 8-bit message (BODY=8BITMIME)
 * The client gets a 1-second timeout; the input ends in end of file, so
 * no run waits. Checked: every recipient ends 'd', 'p' or 'b' with a
 * reply of printable ASCII only (no byte a log line could be split or
 * forged with), the why of a failed open likewise, and the protocol name
 * is one of the six. TLS is off: the handshake would only feed OpenSSL,
 * which is not what is fuzzed here.
 * The queue runner's files are left out: the client needs none of them.
 * fuzz-without: src/send/runner.c
 * fuzz-without: src/send/route.c
 * fuzz-without: src/send/worker.c
 */
#include "send.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static void printable(const char *s)
{
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) abort();
}

static void check(const struct rcpt_outcome *out, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (!strchr("dpb", out[i].state) || !out[i].state) abort();
    if (!memchr(out[i].reply, 0, sizeof out[i].reply)) abort();
    printable(out[i].reply);
  }
}

static int message_fd(bool eightbit)
{
  static const char plain[] = "HDRSubject: fuzz\n\n.dot\nbody\n";
  static const char eight[] = "HDRSubject: caf\xc3\xa9\n\nlast line without LF";
  int fd = memfd_create("fuzz-message", 0);
  const char *m = eightbit ? eight : plain;
  if (fd < 0 || write(fd, m, strlen(m)) != (ssize_t)strlen(m)) abort();
  return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1) return 0;
  uint8_t how = data[0];
  data++; size--;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) abort();
  int big = 1 << 20;
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  for (size_t done = 0; done < size;) {
    ssize_t w = write(sv[1], data + done, size - done);
    if (w <= 0) abort();
    done += (size_t)w;
  }
  shutdown(sv[1], SHUT_WR);
  struct hop h = { .name = "mx.fuzz.test", .ip = "192.0.2.1", .port = 25, .lmtp = how & 1, .tls = HOP_TLS_NONE };
  const char *rcpt[] = { "a@fuzz.test", (how & 4) ? "j\xc3\xbcrgen@fuzz.test" : "b@fuzz.test", "c@fuzz.test" };
  struct outgoing m = { .helo = "me.test", .sender = "s@fuzz.test", .rcpt = rcpt, .nrcpt = 3,
                        .msgfd = message_fd(how & 8), .msgoff = 3, .prepend = "Received: by fuzz\n" };
  m.msglen = (unsigned long long)lseek(m.msgfd, 0, SEEK_END) - 3;
  char state = 0, why[512];
  struct smtp_conn *c = smtp_open_fd(sv[0], &h, m.helo, 1, &state, why, sizeof why);
  if (!c) {
    if (!strchr("pb", state) || !state) abort();
    printable(why);
  } else {
    struct rcpt_outcome out[3];
    for (int t = 0; t < ((how & 2) ? 2 : 1); t++) {
      smtp_send(c, &m, out);
      check(out, 3);
    }
    const char *p = smtp_proto(c);
    if (strcmp(p, "SMTP") && strcmp(p, "ESMTP") && strcmp(p, "ESMTPS") && strcmp(p, "ESMTPSA") &&
        strcmp(p, "LMTP") && strcmp(p, "LMTPS") && strcmp(p, "ESMTPA"))
      abort();
    smtp_close(c);
  }
  close(sv[1]);
  close(m.msgfd);
  return 0;
}
