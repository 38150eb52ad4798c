/* tls_cmd.c -- STARTTLS (RFC 3207) and implicit TLS (SMTPS) in the session,
 * by mxgate's own OpenSSL or by sslserver (UCSPI-TLS, ucspitls.h).
 *
 * Under sslserver: PROTO=SSL (without SSLCTLFD) means the session is TLS
 * from the start, its facts in the SSL_* variables; SSLCTLFD means
 * STARTTLS is done by sslserver ("Y" on the control socket). Otherwise,
 * under tcpserver or mxgate-listen, mxgate does the handshake itself, and
 * implicit TLS runs before the greeting when TCPLOCALPORT is 465 or SMTPS
 * is set. Either way:
 * after "220 Ready to start TLS" everything the client pipelined behind
 * STARTTLS is thrown away (CVE-2011-0411 class: it was sent in the clear
 * and must not be taken as protected commands), and the session forgets
 * HELO, the transaction and any authentication. A client that needs a
 * valid certificate (UCSPITLS "?" or "@") and has none is refused with
 * Reject::TLS::required.
 */
#include "smtpd.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool tls_required(const struct session *s)
{
  return s->tls_mode == TLS_REQUIRE || s->tls_mode == TLS_CLIENTCERT || s->tls_mode == TLS_CLIENTEMAIL;
}

bool tls_offered(const struct session *s)
{
  return s->tls_mode != TLS_OFF && !s->tls && s->ucspi != UCSPITLS_ACTIVE;
}

/* TLS is up with s->tlsinfo filled: the client-certificate rules of
 * UCSPITLS "?" and "@"; false (logged, session ends) when they refuse */
static bool tls_established(struct session *s)
{
  const struct tls_info *ti = &s->tlsinfo;
  s->tls = true;
  if (s->tls_mode == TLS_CLIENTCERT || s->tls_mode == TLS_CLIENTEMAIL) {
    if (!ti->peer_verified) {
      decide(s, ROW_TLS_REQUIRED, NULL, 0, ti->peer_cn[0] ? "client certificate not valid" : "no client certificate");
      s->quit = true;
      return false;
    }
    /* a valid client certificate authenticates the client: it may relay */
    s->cert_relay = true;
    if (s->tls_mode == TLS_CLIENTEMAIL) {
      snprintf(s->conn.remoteinfo, sizeof s->conn.remoteinfo, "%s", ti->peer_cn);
      setenv("TCPREMOTEINFO", s->conn.remoteinfo, 1);
    }
  }
  return true;
}

/* handshake on the session's fds; false (logged, session ends) when it fails */
static bool handshake(struct session *s)
{
  const char *why = NULL;
  s->tls_conn = tls_start(s->in.fd, s->out.fd, (int)s->cfg->timeout, s->tls_mode, &why);
  if (!s->tls_conn) {
    decide_log(s, ROW_TLS_REQUIRED, NULL, 0, why);
    s->quit = true;
    return false;
  }
  tls_attach(s->tls_conn, &s->in, &s->out);
  s->tlsinfo = *tls_info(s->tls_conn);
  return tls_established(s);
}

/* STARTTLS through sslserver: it does the handshake, the session moves to
 * the pipes it gave, its SSL_* variables describe the connection */
static bool handshake_ucspi(struct session *s)
{
  const char *why = NULL;
  if (!ucspitls_start(s->in.fd, s->out.fd, (int)s->cfg->timeout, &why)) {
    decide_log(s, ROW_TLS_REQUIRED, NULL, 0, why);
    s->quit = true;
    return false;
  }
  ucspitls_info(&s->tlsinfo);
  return tls_established(s);
}

void smtp_starttls(struct session *s, const char *arg, size_t len)
{
  (void)arg;
  if (s->tls) { reply(s, "503 5.5.1 TLS already active"); return; }
  if (s->tls_mode == TLS_OFF) { reply(s, "502 5.5.1 STARTTLS not available"); return; }
  if (len) { reply(s, "501 5.5.4 Syntax: STARTTLS"); return; }
  bool ucspi = s->ucspi == UCSPITLS_DELAYED;
  if (!ucspi && !tls_available()) { decide(s, ROW_TLS_REQUIRED, NULL, 0, "no server certificate"); return; }
  reply(s, "220 2.0.0 Ready to start TLS");
  io_flush(&s->out);
  io_discard(&s->in);                 /* pipelined cleartext is never a command */
  if (!(ucspi ? handshake_ucspi(s) : handshake(s))) return;
  s->seen_helo = false;               /* RFC 3207 4.2: the client starts over */
  s->helo.len = 0;
  s->esmtp = false;
  s->authenticated = false;         /* and a login made before TLS is forgotten, */
  s->auth_failed = false;
  s->auth_row = ROW_NONE;
  s->auth_user.len = 0;
  if (s->tls_mode != TLS_CLIENTEMAIL || !s->cert_relay) {   /* in what the queue sees too */
    memcpy(s->conn.remoteinfo, s->conn.ident, sizeof s->conn.remoteinfo);
    if (s->conn.ident[0]) setenv("TCPREMOTEINFO", s->conn.ident, 1);
    else unsetenv("TCPREMOTEINFO");
  }
  unsetenv("AUTHUSER");
  session_reset_transaction(s);
}

bool tls_implicit(struct session *s)
{
  if (s->ucspi == UCSPITLS_ACTIVE) {            /* sslserver did the handshake: never a second one */
    ucspitls_info(&s->tlsinfo);
    return tls_established(s);
  }
  if (s->ucspi == UCSPITLS_DELAYED) return true;  /* TLS only when the client asks, through sslserver */
  const char *smtps = getenv("SMTPS");
  bool on = (smtps && *smtps && strcmp(smtps, "0") != 0) || strcmp(s->conn.localport, "465") == 0;
  if (!on) return true;
  if (s->tls_mode == TLS_OFF) s->tls_mode = TLS_OFFER;
  return handshake(s);
}
