/* worker.c -- one pool worker of mxgate-listen: accepts connections one
 * at a time and serves each with the smtpd session engine.
 *
 * For every session the worker writes the lines tcpserver -v would
 * (status, "pid P from IP", "ok"/"deny", "end P status S") with its own
 * pid, which also heads every qmail-smtpd line of the session; it serves
 * sessions strictly one after another, so a pid reappears only after its
 * previous session's "end" line. The environment is rebuilt for every
 * session from the worker's start-up environment, the listener's settings
 * and the tcprules entry, so nothing of one session reaches the next.
 *
 * SIGTERM (from the listener, from systemd, or from the kernel when the
 * listener died) closes the worker's copies of the listening sockets in
 * the handler itself, so the port is closed at once even while a session
 * runs; the session finishes, then the worker exits. SIGHUP only lets the
 * session finish (a reload, or retiring an idle worker).
 */
#include "listen.h"
#include "smtpd.h"
#include "content.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

extern char **environ;

static volatile sig_atomic_t stop_requested, listeners_closed;
static const struct listen_config *listening;     /* for the TERM handler: the sockets to close */

static void on_hup(int sig) { (void)sig; stop_requested = 1; }
static void on_term(int sig)
{
  (void)sig;
  stop_requested = 1;
  if (listeners_closed || !listening) return;
  listeners_closed = 1;
  for (int i = 0; i < listening->nlisteners; i++) close(listening->listeners[i].fd);
}

/* one tcpserver-style line, one write(2) */
void logline(const char *fmt, ...)
{
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (len > 0 && write(2, buf, (size_t)len < sizeof buf ? (size_t)len : sizeof buf - 1) < 0) { /* the log is gone */ }
}

static void status_line(const struct pool_shared *sh, const struct listen_config *c)
{
  char buf[64];
  int busy = 0;
  for (int i = 0; i < c->max_workers; i++) busy += sh->slots[i].busy;
  int n = snprintf(buf, sizeof buf, "tcpserver: status: %d/%d\n", busy, c->max_workers);
  if (write(2, buf, (size_t)n) < 0) { /* the log is gone */ }
}

static int clients_from(const struct pool_shared *sh, const struct listen_config *c, const char *ip)
{
  int n = 0;
  for (int i = 0; i < c->max_workers; i++)
    if (sh->slots[i].busy && strcmp(sh->slots[i].ip, ip) == 0) n++;
  return n;
}

static void addr_text(const struct sockaddr_storage *ss, char *ip, size_t cap, char *port, size_t pcap)
{
  const void *a = ss->ss_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
                                            : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
  int p = ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                          : ((const struct sockaddr_in *)ss)->sin_port);
  inet_ntop(ss->ss_family, a, ip, (socklen_t)cap);
  if (strncmp(ip, "::ffff:", 7) == 0 && strchr(ip, '.')) memmove(ip, ip + 7, strlen(ip + 7) + 1);
  snprintf(port, pcap, "%d", p);
}

/* the client's address and tcpserver's "0:LOCALIP:LOCALPORT :REMOTEIP::REMOTEPORT" of fd */
static void connection_text(int fd, struct conn_text *t)
{
  struct sockaddr_storage peer, local;
  socklen_t plen = sizeof peer, llen = sizeof local;
  snprintf(t->rip, sizeof t->rip, "unknown"); snprintf(t->rport, sizeof t->rport, "0");
  snprintf(t->lip, sizeof t->lip, "unknown"); snprintf(t->lport, sizeof t->lport, "0");
  if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0) addr_text(&peer, t->rip, sizeof t->rip, t->rport, sizeof t->rport);
  if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0) addr_text(&local, t->lip, sizeof t->lip, t->lport, sizeof t->lport);
  snprintf(t->where, sizeof t->where, "0:%s:%s :%s::%s", t->lip, t->lport, t->rip, t->rport);
}

/* a parked connection the listener closes without a worker's session
 * (park.c): its own pid and tcpserver's three lines, so that every
 * connection is one session in the log */
void log_unserved(int fd, long pid)
{
  struct conn_text t;
  connection_text(fd, &t);
  logline("tcpserver: pid %ld from %s\n", pid, t.rip);
  logline("tcpserver: ok %ld %s\n", pid, t.where);
  logline("tcpserver: end %ld status 0\n", pid);
}

/* the session's environment: start-up environment + UCSPI + listener + rules */
static void session_env(char **base, const struct listener *l, const char *lip, const char *lport,
                        const char *rip, const char *rport, char **rules, int nrules)
{
  clearenv();
  for (char **e = base; *e; e++) putenv(*e);
  setenv("PROTO", "TCP", 1);
  setenv("TCPLOCALIP", lip, 1); setenv("TCPLOCALPORT", lport, 1); setenv("TCPLOCALHOST", "0", 1);
  setenv("TCPREMOTEIP", rip, 1); setenv("TCPREMOTEPORT", rport, 1);
  if (strchr(rip, ':')) setenv("TCP6REMOTEIP", rip, 1);
  for (int i = 0; i < l->nenv; i++) putenv(l->env[i]);
  for (int i = 0; i < nrules; i++) putenv(rules[i]);
}

/* is another client waiting to be accepted? */
static bool clients_waiting(const struct listen_config *c)
{
  struct pollfd p[LISTEN_MAX];
  for (int i = 0; i < c->nlisteners; i++) p[i] = (struct pollfd){ .fd = c->listeners[i].fd, .events = POLLIN };
  return poll(p, (nfds_t)c->nlisteners, 0) > 0;
}

/* parking (park.c): how long to wait for a client's first command before
 * parking it: PARK_GRACE_MS, or only PARK_RUSH_MS when every other worker
 * is busy and more clients wait; -1 never (-w N:1: there is no lot) */
static int park_grace_ms(const struct pool_shared *sh, const struct listen_config *c, int slot)
{
  if (c->park_fd < 0 || c->max_workers < 2) return -1;
  for (int i = 0; i < c->max_workers; i++)
    if (i != slot && sh->slots[i].pid && !sh->slots[i].busy) return PARK_GRACE_MS;
  return clients_waiting(c) ? PARK_RUSH_MS : PARK_GRACE_MS;
}

/* what session_run() would do before its greeting is nothing but the greeting */
static bool greeting_is_plain(struct session *s)
{
  const char *smtps = getenv("SMTPS");
  if ((smtps && *smtps && strcmp(smtps, "0") != 0) || strcmp(s->conn.localport, "465") == 0) return false;
  return !content_config_error(s) && spf_level() >= 0;
}

/* the session's own greeting goes unsent when the worker sent it already;
 * anything else it says first (a refusal) goes out as it is */
struct greeted { bool done, swallowing; };
static ssize_t skip_greeting(void *ctx, int fd, void *buf, size_t len, int timeout)
{
  struct greeted *g = ctx;
  if (!g->done && !g->swallowing) {
    g->swallowing = len >= 4 && memcmp(buf, "220 ", 4) == 0;
    g->done = !g->swallowing;
  }
  if (g->done) return io_fd_write(NULL, fd, buf, len, timeout);
  const char *nl = memchr(buf, '\n', len);
  if (!nl) return (ssize_t)len;
  g->done = true;
  return nl - (const char *)buf + 1;
}

/* has the client on fd 0 sent a whole first line (or 1000 bytes, or
 * left) within ms? A first command dribbled a byte at a time is not one */
static bool first_line_in(int ms)
{
  long long deadline = monotonic_ms() + ms;
  for (;;) {
    char buf[1000];
    struct pollfd p = { .fd = 0, .events = POLLIN };
    long long left = deadline - monotonic_ms();
    if (poll(&p, 1, left > 0 ? (int)left : 0) > 0) {
      ssize_t r = recv(0, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
      if (r <= 0 || memchr(buf, '\n', (size_t)r) || r == (ssize_t)sizeof buf) return true;
      if (left <= 0) return false;
      poll(NULL, 0, left < 10 ? (int)left : 10);  /* part of a line: look again shortly */
      continue;
    }
    if (deadline - monotonic_ms() <= 0) return false;
  }
}

/* greets the client on fds 0/1 as session_run() would and waits grace_ms
 * for its first command; if none came, hands the connection to the
 * listener's lot: true when parked */
static bool greet_and_park(const struct listen_config *c, struct slot *me, const struct session *s, int listener,
                           int grace_ms)
{
  char greet[600], line[604];                       /* the text as session_run() cuts it, then CR LF */
  snprintf(greet, sizeof greet, "220 %s ESMTP", str_cstr((str *)&s->cfg->greeting));
  snprintf(line, sizeof line, "%s\r\n", greet);
  long long greeted = monotonic_ms();
  if (!fd_write_all(1, line, strlen(line))) return false;
  me->waiting = 1;                                 /* not a session the pool waits for (pool.c, stuck()) */
  bool spoke = first_line_in(grace_ms);
  me->waiting = 0;
  if (spoke) return false;                         /* served now */
  if (listeners_closed) {                          /* stopping (TERM): no lot to park in any more */
    const char *bye = "421 4.3.2 Service shutting down; try again later\r\n";
    if (write(1, bye, strlen(bye)) < 0) { /* the client is gone */ }
    return true;
  }
  struct park_note note = { .listener = listener, .deadline_ms = greeted + (long long)s->cfg->timeout * 1000 };
  return fd_send(c->park_fd, 0, &note) == 0;
}

/* tcpserver's "pid ... from" and "ok" lines of a session this worker serves */
static void session_opened(long pid, const struct conn_text *t)
{
  logline("tcpserver: pid %ld from %s\n", pid, t->rip);
  logline("tcpserver: ok %ld %s\n", pid, t->where);
}

static void serve(const struct listen_config *c, struct pool_shared *sh, int slot, const struct listener *l,
                  int fd, const struct smtpd_config *cfg, bool cfg_ok, char **base, bool resumed)
{
  struct conn_text t;
  const char *rip = t.rip, *where = t.where;
  long pid = (long)getpid();
  connection_text(fd, &t);
  snprintf(sh->slots[slot].ip, sizeof sh->slots[slot].ip, "%s", rip);
  sh->slots[slot].busy_since = monotonic_ms();
  sh->slots[slot].busy = 1;
  status_line(sh, c);
  char *rules[LISTEN_ENV_MAX * 4];
  int nrules = 0;
  errno = 0;
  int allow = rules_apply(c->rules, rip, rules, &nrules, (int)(sizeof rules / sizeof *rules));
  if (allow < 0)                              /* checked at start; gone or unreadable since: said, and denied */
    logline("mxgate-listen: pid %ld warning: cannot read rules file %s: %s; connection denied\n", pid, c->rules,
            errno == 0 ? "not a cdb" : strerror(errno));
  bool crowded = c->per_ip && clients_from(sh, c, rip) > c->per_ip;
  if (allow <= 0 || crowded) {
    logline("tcpserver: pid %ld from %s\n", pid, rip);
    if (crowded) {
      const char *msg = "421 4.7.0 Too many connections from your address; try again later\r\n";
      if (write(fd, msg, strlen(msg)) < 0) { /* client already gone */ }
    }
    logline("tcpserver: deny %ld %s\n", pid, where);
    close(fd);
    logline("tcpserver: end %ld status 25600\n", pid);
  } else {
    session_env(base, l, t.lip, t.lport, rip, t.rport, rules, nrules);
    dup2(fd, 0); dup2(fd, 1);
    close(fd);
    bool parked = false;                      /* handed to the listener's lot: no session here */
    if (cfg_ok) {
      struct session s;
      struct greeted g = { false, false };
      session_init(&s, cfg, 0, 1, 2);
      s.checkprogram = c->checkprogram;
      int grace = resumed ? -1 : park_grace_ms(sh, c, slot);
      if (resumed || (grace >= 0 && greeting_is_plain(&s))) {
        if (!resumed) parked = greet_and_park(c, &sh->slots[slot], &s, (int)(l - c->listeners), grace);
        s.out.write = skip_greeting;
        s.out.ctx = &g;
      }
      if (!parked) {                          /* the session is this worker's: its lines begin now */
        session_opened(pid, &t);
        session_run(&s);
      }
      session_free(&s);
    } else {
      session_opened(pid, &t);
      const char *msg = "421 4.3.5 Server configuration error; try again later\r\n";
      if (write(1, msg, strlen(msg)) < 0) { /* client already gone */ }
    }
    int null = open("/dev/null", O_RDWR);       /* fds 0 and 1 stay taken */
    if (null < 0) shutdown(0, SHUT_RDWR);       /* none: the socket stays till the next session, the client goes now */
    dup2(null, 0); dup2(null, 1);
    if (null > 1) close(null);
    if (!parked) logline("tcpserver: end %ld status 0\n", pid);
  }
  clearenv();                                 /* no pointer into the rules stays in environ */
  for (char **e = base; *e; e++) putenv(*e);
  for (int i = 0; i < nrules; i++) free(rules[i]);
  sh->slots[slot].idle_since = monotonic_seconds();
  sh->slots[slot].busy = 0;
  status_line(sh, c);
}

static void drop_privileges(const struct listen_config *c)
{
  if (!c->drop_privileges) return;
  if (setgroups(0, NULL) < 0 || setgid(c->gid) < 0 || setuid(c->uid) < 0) {
    fprintf(stderr, "mxgate-listen: worker cannot drop privileges: %s\n", strerror(errno));
    _exit(111);
  }
}

static const struct direct_queue direct = { direct_open, direct_write, direct_commit, direct_discard };

void worker_main(const struct listen_config *c, struct pool_shared *sh, int slot)
{
  struct sigaction term = { .sa_handler = on_term }, hup = { .sa_handler = on_hup };
  listening = c;
  signal(SIGINT, SIG_DFL);
  sigaction(SIGTERM, &term, NULL);
  sigaction(SIGHUP, &hup, NULL);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGCHLD, SIG_DFL);
  sigset_t none;                                         /* spawn() blocked them until now */
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  drop_privileges(c);
  if (!follow_listener(c, SIGTERM)) on_term(0);          /* after the new credentials, which clear it */
  static struct smtpd_config cfg;
  bool cfg_ok = smtpd_config_load(&cfg, c->argv0) == 0;
  const char *qq = getenv("QMAILQUEUE");
  if (!qq || !*qq) cfg.direct_queue = &direct;          /* the embedded queue, in the worker */
  size_t n = 0;
  while (environ[n]) n++;
  char **base = calloc(n + 1, sizeof *base);
  for (size_t i = 0; i < n; i++) base[i] = strdup(environ[i]);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < c->nlisteners; i++) {
    struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = (unsigned)i };
    epoll_ctl(ep, EPOLL_CTL_ADD, c->listeners[i].fd, &ev);
  }
  if (c->handoff_fd >= 0) {                              /* parked connections whose client spoke */
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = LISTEN_MAX };
    epoll_ctl(ep, EPOLL_CTL_ADD, c->handoff_fd, &ev);
  }
  unsigned long served = 0;
  while (!stop_requested && (!c->max_use || served < c->max_use)) {
    struct epoll_event ev[LISTEN_MAX];
    int k = epoll_wait(ep, ev, LISTEN_MAX, 1000);
    if (getppid() != c->listener_pid) on_term(0);      /* should the death signal ever miss */
    for (int i = 0; i < k && !stop_requested; i++) {
      if (ev[i].data.u32 == LISTEN_MAX) {
        struct park_note note;
        int fd = fd_recv(c->handoff_fd, &note);
        if (fd < 0) continue;
        if (note.listener < 0 || note.listener >= c->nlisteners) { close(fd); continue; }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        serve(c, sh, slot, &c->listeners[note.listener], fd, &cfg, cfg_ok, base, true);
        served++;
        continue;
      }
      const struct listener *l = &c->listeners[ev[i].data.u32];
      int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
      if (fd < 0) continue;                    /* another worker took it */
      serve(c, sh, slot, l, fd, &cfg, cfg_ok, base, false);
      served++;
    }
  }
  struct park_note note;                       /* handed to us but not served: back to the lot */
  int fd;
  while (c->handoff_fd >= 0 && (fd = fd_recv(c->handoff_fd, &note)) >= 0) {
    if (fd_send(c->park_fd, fd, &note) < 0) { /* the listener is gone: the client sees the close */ }
    close(fd);
  }
  _exit(0);
}
