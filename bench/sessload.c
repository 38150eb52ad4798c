/* sessload.c -- load generator for the session benchmarks.
 *
 *   sessload -c CONC -n TOTAL HOST PORT          connect, greeting, EHLO, QUIT; prints sessions/s
 *   sessload -i N -t SECONDS HOST PORT           opens N sessions that say EHLO and stay idle
 *                                                for SECONDS (memory is measured meanwhile)
 *   sessload -T -c CONC -n TOTAL HOST PORT       connect, EHLO, STARTTLS, TLS handshake, EHLO, QUIT
 * Threads with blocking sockets (OpenSSL for -T): simple, and far faster than the servers
 * under test on this machine.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <stdbool.h>
#include <openssl/ssl.h>

static struct sockaddr_in addr;
static SSL_CTX *tls;                 /* -T: STARTTLS sessions */
static atomic_long remaining, done, failed;

/* reads until a final reply line (code + space) has arrived */
static int reply(int fd)
{
  char buf[4096];
  size_t len = 0;
  for (;;) {
    ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
    if (r <= 0) return -1;
    len += (size_t)r;
    buf[len] = 0;
    for (char *line = buf; line < buf + len; ) {
      char *nl = strchr(line, '\n');
      if (!nl) break;
      if (nl - line >= 4 && line[3] == ' ') return atoi(line);
      line = nl + 1;
    }
    if (len == sizeof buf - 1) len = 0;
  }
}

static int session_open(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  struct timeval limit = { 10, 0 };          /* a server that stops answering fails the session, never hangs the run */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || reply(fd) != 220) { close(fd); return -1; }
  const char *ehlo = "EHLO load.test\r\n";
  if (write(fd, ehlo, strlen(ehlo)) < 0 || reply(fd) != 250) { close(fd); return -1; }
  return fd;
}

/* STARTTLS, the handshake, EHLO and QUIT over TLS; true when all went well */
static bool tls_session(int fd)
{
  char buf[4096] = "";
  const char *cmd = "STARTTLS\r\n";
  if (write(fd, cmd, strlen(cmd)) < 0 || reply(fd) != 220) return false;
  SSL *ssl = SSL_new(tls);
  SSL_set_fd(ssl, fd);
  bool ok = SSL_connect(ssl) == 1;
  const char *rest = "EHLO load.test\r\nQUIT\r\n";
  if (ok) ok = SSL_write(ssl, rest, (int)strlen(rest)) > 0;
  for (size_t got = 0; ok && !strstr(buf, "221 "); ) {     /* until the reply to QUIT */
    int r = SSL_read(ssl, buf + got, (int)(sizeof buf - 1 - got));
    if (r <= 0) { ok = false; break; }
    got += (size_t)r;
    buf[got] = 0;
    if (got > sizeof buf - 512) got = 0;
  }
  SSL_free(ssl);
  return ok;
}

static void *worker(void *arg)
{
  (void)arg;
  while (atomic_fetch_sub(&remaining, 1) > 0) {
    int fd = session_open();
    if (fd < 0) { atomic_fetch_add(&failed, 1); continue; }
    if (tls) {
      atomic_fetch_add(tls_session(fd) ? &done : &failed, 1);
      close(fd);
      continue;
    }
    const char *quit = "QUIT\r\n";
    if (write(fd, quit, strlen(quit)) < 0 || reply(fd) != 221) atomic_fetch_add(&failed, 1);
    else atomic_fetch_add(&done, 1);
    close(fd);
  }
  return NULL;
}

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
  int conc = 20, idle = 0, opt;
  long total = 10000;
  double hold = 5;
  while ((opt = getopt(argc, argv, "c:n:i:t:T")) != -1) {
    if (opt == 'T') {
      tls = SSL_CTX_new(TLS_client_method());
      SSL_CTX_set_verify(tls, SSL_VERIFY_NONE, NULL);
      continue;
    }
    if (opt == 'c') conc = atoi(optarg);
    else if (opt == 'n') total = atol(optarg);
    else if (opt == 'i') idle = atoi(optarg);
    else if (opt == 't') hold = atof(optarg);
    else return 2;
  }
  if (argc - optind != 2) { fprintf(stderr, "usage: sessload [-c conc -n total | -i idle -t secs] host port\n"); return 2; }
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)atoi(argv[optind + 1]));
  inet_pton(AF_INET, argv[optind], &addr.sin_addr);
  if (idle) {
    int *fds = calloc((size_t)idle, sizeof *fds), open_ok = 0;
    for (int i = 0; i < idle; i++) if ((fds[i] = session_open()) >= 0) open_ok++;
    printf("idle %d\n", open_ok);
    fflush(stdout);
    usleep((useconds_t)(hold * 1e6));
    for (int i = 0; i < idle; i++) if (fds[i] >= 0) close(fds[i]);
    return open_ok == idle ? 0 : 1;
  }
  remaining = total;
  pthread_t *t = calloc((size_t)conc, sizeof *t);
  double t0 = now();
  for (int i = 0; i < conc; i++) pthread_create(&t[i], NULL, worker, NULL);
  for (int i = 0; i < conc; i++) pthread_join(t[i], NULL);
  double dt = now() - t0;
  printf("sessions %ld failed %ld seconds %.3f rate %.1f\n", (long)done, (long)failed, dt, (double)done / dt);
  return failed ? 1 : 0;
}
