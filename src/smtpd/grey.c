/* grey.c -- greylisting through a policy server (POSTGREY), per RCPT.
 *
 * Speaks the Postfix policy delegation protocol: name=value lines ending
 * in an empty line, answered by "action=..." and an empty line. An answer
 * of DEFER_IF_PERMIT, DEFER or a 4xx code greylists the triple (client IP,
 * sender, recipient): Deferred::GREY::Grey_Listed, 450 4.7.1
 * (REPLY_GREYLISTED replaces the text). A policy server that is down, slow
 * (POSTGREY_TIMEOUT seconds, default 5, for the whole question: connect,
 * request and answer together, so one that answers a byte at a time
 * cannot stretch it) or answers nonsense does not stop mail: the
 * recipient is not greylisted and a warning line naming it says so.
 */
#include "smtpd.h"
#include "netaddr.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void kv(str *req, const char *name, const char *val, size_t len)
{
  str_cats(req, name);
  str_catc(req, '=');
  for (size_t i = 0; i < len; i++)        /* one line per attribute: no newlines in values */
    str_catc(req, val[i] == '\n' || val[i] == '\r' || val[i] == 0 ? '?' : val[i]);
  str_catc(req, '\n');
}

/* the action line of the answer into out; false on any failure */
static bool ask(const char *spec, const str *req, char *out, size_t cap, int timeout, const char **why)
{
  long long left_ms = (long long)timeout * 1000, t0 = netaddr_now_ms();
  int fd = netaddr_connect(spec, timeout * 1000);
  if (fd < 0) { *why = strerror(errno); return false; }
  left_ms -= netaddr_now_ms() - t0;
  size_t got = 0;
  bool ok = netaddr_send(fd, req->s, req->len, &left_ms);
  if (!ok) *why = errno == ETIMEDOUT ? "timeout" : "write failed";
  while (ok && got + 1 < cap && !(got >= 2 && out[got - 1] == '\n' && out[got - 2] == '\n')) {
    ssize_t r = netaddr_recv(fd, out + got, cap - 1 - got, &left_ms);
    if (r < 0 && errno == ETIMEDOUT) { *why = "timeout"; ok = false; break; }
    if (r <= 0) { *why = "connection closed"; ok = false; break; }
    got += (size_t)r;
  }
  close(fd);
  out[got] = 0;
  if (ok && strncmp(out, "action=", 7) != 0) { *why = "unexpected answer"; ok = false; }
  return ok;
}

static bool is_defer(const char *action)
{
  if (strncasecmp(action, "DEFER_IF_PERMIT", 15) == 0 || strncasecmp(action, "DEFER", 5) == 0) return true;
  return action[0] == '4' && isdigit((unsigned char)action[1]) && isdigit((unsigned char)action[2]);
}

enum row_id grey_check(struct session *s, struct rcpt *r)
{
  const char *spec = getenv("POSTGREY");
  char proto[32], answer[1024], inst[32];
  const char *why = NULL;
  if (!spec || !*spec) return ROW_NONE;
  const char *t = getenv("POSTGREY_TIMEOUT");
  int timeout = t && atoi(t) > 0 ? atoi(t) : 5;
  str req = STR_INIT(8192);
  const char *host = s->conn.have_remotehost ? s->conn.remotehost : "unknown";
  snprintf(inst, sizeof inst, "%ld.%lu", (long)s->pid, s->rcpt_count);
  kv(&req, "request", "smtpd_access_policy", 19);
  kv(&req, "protocol_state", "RCPT", 4);
  session_protocol(s, proto, sizeof proto);
  kv(&req, "protocol_name", proto, strlen(proto));
  kv(&req, "client_address", s->conn.remoteip, strlen(s->conn.remoteip));
  kv(&req, "client_name", host, strlen(host));      /* postgrey ignores requests without it */
  kv(&req, "reverse_client_name", host, strlen(host));
  kv(&req, "helo_name", s->helo.s ? s->helo.s : "", s->helo.len);
  kv(&req, "sender", s->mailfrom.s ? s->mailfrom.s : "", s->mailfrom.len);
  kv(&req, "recipient", r->addr.s, r->addr.len);
  kv(&req, "instance", inst, strlen(inst));
  str_catc(&req, '\n');
  bool ok = ask(spec, &req, answer, sizeof answer, timeout, &why);
  str_free(&req);
  if (!ok) {
    char line[512];
    int n = snprintf(line, sizeof line, "mxgate-smtpd: pid %ld warning: policy server %s: %s; not greylisting\n",
                     (long)s->pid, spec, why);
    if (write(s->logfd, line, (size_t)n) < 0) { /* the log is gone: nothing more to do */ }
    return ROW_NONE;
  }
  return is_defer(answer + 7) ? ROW_GREY_LISTED : ROW_NONE;
}
