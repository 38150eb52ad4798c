/* netaddr.c -- connect to IP#PORT or a unix socket with a timeout (netaddr.h). */
#include "netaddr.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int parse(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
  memset(ss, 0, sizeof *ss);
  if (spec[0] == '/') {
    struct sockaddr_un *un = (struct sockaddr_un *)ss;
    if (strlen(spec) >= sizeof un->sun_path) return -1;
    un->sun_family = AF_UNIX;
    strcpy(un->sun_path, spec);
    *len = sizeof *un;
    return 0;
  }
  char host[128];
  const char *sep = strrchr(spec, '#');
  if (!sep && spec[0] != '[' && strchr(spec, ':') == strrchr(spec, ':')) sep = strrchr(spec, ':');
  if (!sep && spec[0] == '[') sep = strstr(spec, "]:") ? strstr(spec, "]:") + 1 : NULL;
  if (!sep || (size_t)(sep - spec) >= sizeof host) return -1;
  memcpy(host, spec, (size_t)(sep - spec));
  host[sep - spec] = 0;
  char *h = host;
  if (h[0] == '[' && h[strlen(h) - 1] == ']') { h[strlen(h) - 1] = 0; h++; }
  char *end;
  long port = strtol(sep + 1, &end, 10);
  if (*end || port <= 0 || port > 65535) return -1;
  struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, h, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET; in4->sin_port = htons((unsigned short)port); *len = sizeof *in4;
  } else if (inet_pton(AF_INET6, h, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6; in6->sin6_port = htons((unsigned short)port); *len = sizeof *in6;
  } else return -1;
  return 0;
}

int netaddr_connect(const char *spec, int timeout_ms)
{
  struct sockaddr_storage ss;
  socklen_t len;
  if (!spec || parse(spec, &ss, &len) < 0) { errno = EINVAL; return -1; }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) { int e = errno; close(fd); errno = e; return -1; }
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    int r = poll(&p, 1, timeout_ms);
    int err = 0;
    socklen_t el = sizeof err;
    if (r <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
      close(fd);
      errno = r == 0 ? ETIMEDOUT : err ? err : EIO;
      return -1;
    }
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

long long netaddr_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int netaddr_wait(int fd, short events, long long *left_ms)
{
  for (;;) {
    if (*left_ms <= 0) return 0;
    struct pollfd p = { .fd = fd, .events = events };
    long long t0 = netaddr_now_ms();
    int r = poll(&p, 1, *left_ms > 3600000 ? 3600000 : (int)*left_ms);
    *left_ms -= netaddr_now_ms() - t0;
    if (r > 0) return 1;
    if (r < 0 && errno != EINTR) return -1;
    if (r == 0 && *left_ms > 0 && *left_ms < 1) *left_ms = 0;
  }
}

bool netaddr_send(int fd, const void *p, size_t n, long long *left_ms)
{
  const char *q = p;
  while (n) {
    ssize_t w = send(fd, q, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) { q += w; n -= (size_t)w; continue; }
    if (w < 0 && errno == EINTR) continue;
    if (w == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return false;
    int r = netaddr_wait(fd, POLLOUT, left_ms);
    if (r == 0) { errno = ETIMEDOUT; return false; }
    if (r < 0) return false;
  }
  return true;
}

ssize_t netaddr_recv(int fd, void *p, size_t cap, long long *left_ms)
{
  for (;;) {
    ssize_t r = recv(fd, p, cap, MSG_DONTWAIT);
    if (r >= 0) return r;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    int w = netaddr_wait(fd, POLLIN, left_ms);
    if (w == 0) { errno = ETIMEDOUT; return -1; }
    if (w < 0) return -1;
  }
}
