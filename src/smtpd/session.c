/* session.c -- mxgate-smtpd's configuration, connection setup and
 * command loop.
 *
 * smtpd_config_load() reads control/ once; conn_from_env() takes the
 * UCSPI variables (or getpeername/getsockname when they are absent, as
 * under systemd Accept=yes or inetd) and the per-client settings that
 * tcprules put in the environment; session_run() greets and serves
 * commands until QUIT, end of input or a timeout.
 */
#include "smtpd.h"
#include "control.h"
#include "content.h"
#include "dns.h"
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void config_error(const char *what)
{
  fprintf(stderr, "mxgate-smtpd: fatal: cannot read %s: %s\n", what,
          errno ? strerror(errno) : "invalid content");
}

static int readlist(str *out, const char *name)
{
  int r = control_readlist(out, name);
  if (r < 0) config_error(name);
  return r;
}

/* the queue program when QMAILQUEUE is unset and no embedded queue
 * serves: mxgate-queue beside this program. Found at the first message
 * that needs it, not at every start (a readlink of /proc/self/exe). */
const char *smtpd_queue_program(const struct smtpd_config *cfg)
{
  static char path[PATH_MAX];
  if (cfg->queue_program) return cfg->queue_program;
  if (path[0]) return path;
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) self[n] = 0;
  else snprintf(self, sizeof self, "%s", cfg->argv0 ? cfg->argv0 : "mxgate-smtpd");
  char *slash = strrchr(self, '/');
  size_t dir = slash ? (size_t)(slash + 1 - self) : 0;
  static const char name[] = "mxgate-queue";      /* beside this program */
  if (dir + sizeof name > sizeof path) dir = 0;
  memcpy(path, self, dir);
  memcpy(path + dir, name, sizeof name);
  return path;
}

/* apart, so that the path's buffer is no part of every start's stack */
__attribute__((noinline, cold)) static void control_dir_error(void)
{
  int e = errno;
  char dir[4096];
  control_path(dir, sizeof dir, "control");
  fprintf(stderr, "mxgate-smtpd: fatal: cannot read the control directory %s: %s"
          " (MXGATE_HOME names the home; an s/qmail home is /var/qmail)\n", dir, strerror(e));
}

static int config_read(struct smtpd_config *cfg, const char *argv0)
{
  memset(cfg, 0, sizeof *cfg);
  str *all[] = { &cfg->me, &cfg->greeting, &cfg->localiphost, &cfg->rcpthosts, &cfg->badmailfrom,
                 &cfg->badrcptto, &cfg->badhelo, &cfg->relaymailfrom, &cfg->recipients,
                 &cfg->spflocalrules, &cfg->spfexplain };
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) all[i]->max = 64 << 20;
  if (control_dir_open() < 0) { control_dir_error(); return -1; }   /* never a silently empty configuration */
  errno = 0;
  int me = control_readline(&cfg->me, "me", NULL);
  if (me == 0) {                                     /* the host's name only when control/me is missing */
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    if (!str_copys(&cfg->me, host)) me = -1;
  }
  if (me < 0) { config_error("control/me"); return -1; }
  if (control_readline(&cfg->greeting, "smtpgreeting", str_cstr(&cfg->me)) < 0) { config_error("control/smtpgreeting"); return -1; }
  if (control_readline(&cfg->localiphost, "localiphost", str_cstr(&cfg->me)) < 0) { config_error("control/localiphost"); return -1; }
  cfg->timeout = 1200;
  if (control_readulong(&cfg->timeout, "timeoutsmtpd") < 0) { config_error("control/timeoutsmtpd"); return -1; }
  if (cfg->timeout == 0) cfg->timeout = 1;
  if (control_readulong(&cfg->databytes, "databytes") < 0) { config_error("control/databytes"); return -1; }
  int have_rcpthosts = readlist(&cfg->rcpthosts, "rcpthosts");
  if (have_rcpthosts == 0)                           /* s/qmail relays for every domain here: say we do not */
    fprintf(stderr, "mxgate-smtpd: warning: no control/rcpthosts: every recipient domain not in"
            " control/morercpthosts.cdb is refused (s/qmail would accept every domain)\n");
  if (have_rcpthosts < 0 || readlist(&cfg->badmailfrom, "badmailfrom") < 0 ||
      readlist(&cfg->badrcptto, "badrcptto") < 0 || readlist(&cfg->relaymailfrom, "relaymailfrom") < 0)
    return -1;
  int rr = readlist(&cfg->recipients, "recipients");    /* present, even empty: fail-closed */
  if (rr < 0) return -1;
  cfg->have_recipients = rr > 0;
  if (control_readline(&cfg->spflocalrules, "spflocalrules", NULL) < 0) { config_error("control/spflocalrules"); return -1; }
  if (control_readline(&cfg->spfexplain, "spfexplain", NULL) < 0) { config_error("control/spfexplain"); return -1; }
  int r = readlist(&cfg->badhelo, "badhelo");
  if (r < 0) return -1;
  cfg->have_badhelo = r > 0;
  if (cdbx_open(&cfg->morercpthosts, "control/morercpthosts.cdb") < 0) {
    config_error("control/morercpthosts.cdb");
    return -1;
  }
  const char *q = getenv("QMAILQUEUE");
  if (q && *q) {
    static char loaded[PATH_MAX];
    snprintf(loaded, sizeof loaded, "%s", q);
    cfg->queue_program = loaded;
  }
  cfg->argv0 = argv0;
  return 0;
}

/* 0 ok, -1 a control file is unreadable or invalid (message on stderr) */
int smtpd_config_load(struct smtpd_config *cfg, const char *argv0)
{
  int r = config_read(cfg, argv0);
  control_dir_close();
  return r;
}

static void copyenv(char *dst, size_t cap, const char *name, const char *fallback)
{
  const char *v = getenv(name);
  snprintf(dst, cap, "%s", v ? v : fallback ? fallback : "");
}

static unsigned long envnum(const char *name, unsigned long def)
{
  const char *v = getenv(name);
  if (!v || !*v) return def;
  char *end;
  unsigned long n = strtoul(v, &end, 10);
  return *end ? def : n;
}

static void copy_trunc(char *dst, size_t cap, const char *src)
{
  size_t n = strlen(src);
  if (n >= cap) n = cap - 1;
  memcpy(dst, src, n);
  dst[n] = 0;
}

static void sockaddr_ip(const struct sockaddr_storage *ss, char *ip, size_t cap, char *port, size_t pcap)
{
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (getnameinfo((const struct sockaddr *)ss, sizeof *ss, host, sizeof host, serv, sizeof serv,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) return;
  const char *h = strncmp(host, "::ffff:", 7) == 0 && strchr(host, '.') ? host + 7 : host;
  copy_trunc(ip, cap, h);
  if (port) copy_trunc(port, pcap, serv);
}

/* sslserver run without -e names the connection SSLREMOTEIP, SSLLOCALPORT,
 * ...: those stand in for the TCP names tcpserver (and sslserver -e) set */
static const char *ucspi_name(const char *tcpname)
{
  static const struct { const char *tcp, *ssl; } alias[] = {
    { "TCPREMOTEIP", "SSLREMOTEIP" }, { "TCPLOCALIP", "SSLLOCALIP" }, { "TCPLOCALPORT", "SSLLOCALPORT" },
    { "TCPREMOTEHOST", "SSLREMOTEHOST" }, { "TCPREMOTEINFO", "SSLREMOTEINFO" },
  };
  if (getenv(tcpname)) return tcpname;
  for (size_t i = 0; i < sizeof alias / sizeof *alias; i++)
    if (strcmp(alias[i].tcp, tcpname) == 0 && getenv(alias[i].ssl)) return alias[i].ssl;
  return tcpname;
}

void conn_from_env(struct conn *c)
{
  memset(c, 0, sizeof *c);
  const char *ip6 = getenv("TCP6REMOTEIP");
  if (ip6 && *ip6) {
    snprintf(c->remoteip, sizeof c->remoteip, "%s", strncmp(ip6, "::ffff:", 7) == 0 ? ip6 + 7 : ip6);
  } else copyenv(c->remoteip, sizeof c->remoteip, ucspi_name("TCPREMOTEIP"), "");
  copyenv(c->localip, sizeof c->localip, getenv("TCP6LOCALIP") ? "TCP6LOCALIP" : ucspi_name("TCPLOCALIP"), "");
  copyenv(c->localport, sizeof c->localport, getenv("TCP6LOCALPORT") ? "TCP6LOCALPORT" : ucspi_name("TCPLOCALPORT"), "");
  if (!c->remoteip[0]) {                          /* no UCSPI: ask the socket */
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getpeername(0, (struct sockaddr *)&ss, &len) == 0)
      sockaddr_ip(&ss, c->remoteip, sizeof c->remoteip, NULL, 0);
    len = sizeof ss;
    if (!c->localip[0] && getsockname(0, (struct sockaddr *)&ss, &len) == 0)
      sockaddr_ip(&ss, c->localip, sizeof c->localip, c->localport, sizeof c->localport);
  }
  if (!c->remoteip[0]) snprintf(c->remoteip, sizeof c->remoteip, "unknown");
  copyenv(c->remotehost, sizeof c->remotehost, getenv("TCP6REMOTEHOST") ? "TCP6REMOTEHOST" : ucspi_name("TCPREMOTEHOST"), "");
  c->have_remotehost = c->remotehost[0] != 0;
  copyenv(c->remoteinfo, sizeof c->remoteinfo, ucspi_name("TCPREMOTEINFO"), "");
  memcpy(c->ident, c->remoteinfo, sizeof c->ident);
  c->relayclient = getenv("RELAYCLIENT");
  c->helocheck = getenv("HELOCHECK");
  c->maxrcpt = envnum("MAXRECIPIENTS", 0);
  c->data_min_rate = envnum("DATA_MIN_RATE", 500);
  c->tarpitcount = envnum("TARPITCOUNT", 0);
  c->tarpitdelay = envnum("TARPITDELAY", 0);
  const char *db = getenv("DATABYTES");
  c->databytes = db && !*db ? 0 : envnum("DATABYTES", ULONG_MAX);   /* '' is no limit, as in s/qmail */
  c->recipients450 = getenv("RECIPIENTS450") != NULL;
}

void session_reset_transaction(struct session *s)
{
  s->seen_mail = s->smtputf8 = s->size_too_big = s->notorious = false;
  s->mailfrom.len = 0;
  s->envelope.len = 0;
  s->first_rcpt.len = 0;
  s->bmf_form[0] = 0;
  s->mf_dns = 0;
  spf_reset(s);
  s->rcpt_count = s->rcpt_accepted = 0;
}

void session_init(struct session *s, const struct smtpd_config *cfg, int in, int out, int logfd)
{
  memset(s, 0, sizeof *s);
  session_init_zeroed(s, cfg, in, out, logfd);
}

void session_init_zeroed(struct session *s, const struct smtpd_config *cfg, int in, int out, int logfd)
{
  s->cfg = cfg;
  conn_from_env(&s->conn);
  if (s->conn.databytes == ULONG_MAX) s->conn.databytes = cfg->databytes;
  io_out_init(&s->out, out, (int)cfg->timeout);
  io_in_init(&s->in, in, (int)cfg->timeout, &s->out);
  s->logfd = logfd;
  s->pid = getpid();
  s->helo = (str)STR_INIT(SMTP_LINE_MAX);
  s->mailfrom = (str)STR_INIT(ADDR_MAX + 1);
  s->first_rcpt = (str)STR_INIT(ADDR_MAX + 1);
  s->envelope = (str)STR_INIT(64 << 20);
  s->auth_user = (str)STR_INIT(1024);
  s->auth_row = ROW_NONE;
  auth_policy_from_env(&s->auth);
  s->tls_mode = tls_mode_from_env();
  s->ucspi = ucspitls_detect("mxgate-smtpd");
  /* under sslserver -n the certificate is sslserver's: STARTTLS unless UCSPITLS=- */
  if (s->ucspi == UCSPITLS_DELAYED && !getenv("UCSPITLS")) s->tls_mode = TLS_OFFER;
}

/* everything a session allocated; the struct may then serve the next one */
void session_free(struct session *s)
{
  str *all[] = { &s->helo, &s->mailfrom, &s->first_rcpt, &s->envelope, &s->auth_user };
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) str_free(all[i]);
  tls_end(s->tls_conn);
  s->tls_conn = NULL;
  if (s->dns) dns_close(s->dns);
  s->dns = NULL;
  free(s->spf);
  s->spf = NULL;
}

const char *session_protocol(const struct session *s, char *buf, size_t cap)
{
  snprintf(buf, cap, "%s%s%s%s", s->esmtp ? "ESMTP" : "SMTP", s->tls ? "S" : "",
           s->authenticated ? "A" : "", s->seen_mail && s->smtputf8 ? "UTF8" : "");
  return buf;
}

int session_run(struct session *s)
{
  str line = STR_INIT(SMTP_LINE_MAX + 2);
  char greet[600];
  const char *bad = content_config_error(s);
  if (!bad && spf_level() < 0) bad = "SPF: not a level from 0 to 6";
  if (bad) {                                  /* a bad setting is a clear error, never ignored */
    fprintf(stderr, "mxgate-smtpd: fatal: %s\n", bad);
    reply(s, "421 4.3.5 Server configuration error; try again later");
    io_flush(&s->out);
    return 0;
  }
  if (!tls_implicit(s)) { io_flush(&s->out); return 0; }     /* the 454 of a refused certificate */
  snprintf(greet, sizeof greet, "220 %s ESMTP", str_cstr((str *)&s->cfg->greeting));
  reply(s, greet);
  while (!s->quit) {
    bool toolong;
    /* the whole command line within timeoutsmtpd, not only each read: a
     * client sending a byte now and then cannot hold the session */
    s->in.deadline_ms = io_now_ms() + (long long)s->cfg->timeout * 1000;
    int r = io_getline(&s->in, &line, SMTP_LINE_MAX - 2, &toolong);
    if (r <= 0) {
      if (r < 0 && errno == ETIMEDOUT) {
        reply(s, "451 4.4.2 Timeout; closing connection");
        io_flush(&s->out);
      }
      break;
    }
    if (toolong) { reply(s, "500 5.5.2 Line too long"); continue; }
    cmd_dispatch(s, &line);
    if (s->out.failed) break;
  }
  io_flush(&s->out);
  str_free(&line);
  tls_end(s->tls_conn);
  s->tls_conn = NULL;
  return 0;
}
