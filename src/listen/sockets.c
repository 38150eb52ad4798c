/* sockets.c -- the listening sockets of mxgate-listen: "IP:PORT" specs
 * (IPv6 as "[::1]:PORT"), each optionally followed by per-port settings
 * ",NAME=value,..."; or the sockets systemd passes (LISTEN_FDS, Accept=no).
 */
#include "listen.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BIND_RETRIES 40               /* 50 ms apart: 2 s for a killed predecessor's workers to let go */

static int bind_one(const char *ip, const char *port)
{
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
  int p = atoi(port);
  if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET; a4->sin_port = htons((unsigned short)p); len = sizeof *a4;
  } else if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6; a6->sin6_port = htons((unsigned short)p); len = sizeof *a6;
  } else { errno = EINVAL; return -1; }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0) return -1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  /* a listener killed a moment ago: its workers close their copies of the
   * port as soon as they run their death signal's handler; wait for that */
  for (int tries = 0; bind(fd, (struct sockaddr *)&ss, len) < 0; tries++)
    if (errno != EADDRINUSE || tries == BIND_RETRIES) { int e = errno; close(fd); errno = e; return -1; }
    else usleep(50000);
  if (listen(fd, 1024) < 0) { int e = errno; close(fd); errno = e; return -1; }
  return fd;
}

int listener_add(struct listen_config *c, const char *spec)
{
  if (c->nlisteners == LISTEN_MAX) { fprintf(stderr, "mxgate-listen: too many listeners\n"); return -1; }
  struct listener *l = &c->listeners[c->nlisteners];
  char *copy = strdup(spec), *settings = strchr(copy, ','), *hostport = copy;
  if (settings) *settings++ = 0;
  char *colon = strrchr(hostport, ':');
  if (!colon) { fprintf(stderr, "mxgate-listen: %s: want IP:PORT\n", spec); free(copy); return -1; }
  *colon = 0;
  char *ip = hostport;
  if (ip[0] == '[' && ip[strlen(ip) - 1] == ']') { ip[strlen(ip) - 1] = 0; ip++; }
  snprintf(l->ip, sizeof l->ip, "%s", ip);
  snprintf(l->port, sizeof l->port, "%s", colon + 1);
  for (char *tok = settings ? strtok(settings, ",") : NULL; tok; tok = strtok(NULL, ",")) {
    if (l->nenv == LISTEN_ENV_MAX || !strchr(tok, '=')) {
      fprintf(stderr, "mxgate-listen: %s: bad setting %s\n", spec, tok);
      free(copy);
      return -1;
    }
    l->env[l->nenv++] = strdup(tok);
  }
  free(copy);
  l->fd = bind_one(l->ip, l->port);
  if (l->fd < 0) { fprintf(stderr, "mxgate-listen: cannot listen on %s: %s\n", spec, strerror(errno)); return -1; }
  c->nlisteners++;
  return 0;
}

/* sd_listen_fds(3) by hand: fds 3.. when LISTEN_PID is us */
int listeners_from_systemd(struct listen_config *c)
{
  const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
  if (!pid || !fds || atol(pid) != (long)getpid()) return 0;
  int n = atoi(fds);
  for (int i = 0; i < n && c->nlisteners < LISTEN_MAX; i++) {
    struct listener *l = &c->listeners[c->nlisteners++];
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    l->fd = 3 + i;
    fcntl(l->fd, F_SETFL, fcntl(l->fd, F_GETFL) | O_NONBLOCK);
    fcntl(l->fd, F_SETFD, FD_CLOEXEC);                 /* not for the programs a session execs */
    if (getsockname(l->fd, (struct sockaddr *)&ss, &len) == 0) {
      void *a = ss.ss_family == AF_INET6 ? (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                                         : (void *)&((struct sockaddr_in *)&ss)->sin_addr;
      int port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                : ((struct sockaddr_in *)&ss)->sin_port);
      inet_ntop(ss.ss_family, a, l->ip, sizeof l->ip);
      snprintf(l->port, sizeof l->port, "%d", port);
    }
  }
  unsetenv("LISTEN_PID"); unsetenv("LISTEN_FDS"); unsetenv("LISTEN_FDNAMES");
  return n;
}
