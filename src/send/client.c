/* client.c -- mxgate-send's SMTP and LMTP client (send.h).
 *
 * One connection to one hop: the greeting, EHLO (HELO when EHLO is
 * refused; LHLO for LMTP), STARTTLS as the hop says (or TLS from the
 * first byte for SMTPS) with the certificate checked as it says, AUTH PLAIN or LOGIN
 * to a smarthost over TLS only, then any number of transactions, each
 * pipelined when the server offers PIPELINING. Every read and write has
 * the caller's timeout (poll, via io.c), every reply is read whole (all
 * its lines) into a bounded buffer, and the text kept for a recipient's
 * outcome is one line without control bytes. A reply that is not a reply
 * (no code, mixed codes, a line too long, too many lines) fails the
 * transaction temporarily and the connection is not used again.
 *
 * The queued message has LF line ends; it goes out with CRLF, dot-stuffed,
 * and with a final CRLF added when its last line has none.
 */
#include "send.h"
#include "io.h"
#include "str.h"
#include "tls.h"
#include "base64.h"
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define REPLY_LINE_MAX 2048     /* longer reply lines make the reply invalid (RFC 5321: 512) */
#define REPLY_LINES_MAX 100     /* so do more lines than this in one reply */
#define PIPELINE_MAX 64         /* commands written before their replies are read */
#define MSG_CHUNK 65536

struct reply {
  int code;                     /* 0: not a valid reply (or none: the connection) */
  char text[sizeof ((struct rcpt_outcome *)0)->reply];
};

struct smtp_conn {
  struct hop hop;
  int fd;
  int timeout;
  struct tls *tls;
  bool esmtp, authed, broken, dirty;
  bool verified;                /* the certificate passed the hop's check (cert_ok) */
  bool pipelining, eightbitmime, smtputf8, starttls, auth_plain, auth_login;
  bool has_size;
  unsigned long long size_max;  /* 0: no limit said */
  char fail[sizeof ((struct rcpt_outcome *)0)->reply];   /* why the connection broke */
  str line;
  struct io_out out;
  struct io_in in;
};

/* ---- replies ---- */

/* bytes a log line and an outcome may carry: printable ASCII; the rest '?' */
static void text_append(char *dst, size_t cap, const char *src, size_t n)
{
  size_t len = strlen(dst);
  for (size_t i = 0; i < n && len + 1 < cap; i++) {
    unsigned char ch = (unsigned char)src[i];
    dst[len++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
  }
  dst[len] = 0;
}

static bool reply_code_of(const char *s, size_t len, int *code)
{
  if (len < 3 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9')
    return false;
  if (len > 3 && s[3] != ' ' && s[3] != '-') return false;
  *code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
  return true;
}

/* EHLO keywords as they come: "PIPELINING", "SIZE 10240000", "AUTH PLAIN LOGIN" */
static bool word_is(const char *s, size_t len, const char *w)
{
  size_t n = strlen(w);
  return len >= n && str_equal_nocase(s, n, w, n) && (len == n || s[n] == ' ' || s[n] == '=');
}

static void auth_mechs(struct smtp_conn *c, const char *s, size_t len)
{
  size_t i = 0;
  while (i < len) {
    while (i < len && (s[i] == ' ' || s[i] == '=')) i++;
    size_t j = i;
    while (j < len && s[j] != ' ') j++;
    if (j - i == 5 && str_equal_nocase(s + i, 5, "PLAIN", 5)) c->auth_plain = true;
    if (j - i == 5 && str_equal_nocase(s + i, 5, "LOGIN", 5)) c->auth_login = true;
    i = j;
  }
}

static void ehlo_keyword(struct smtp_conn *c, const char *s, size_t len)
{
  if (word_is(s, len, "PIPELINING")) c->pipelining = true;
  else if (word_is(s, len, "8BITMIME")) c->eightbitmime = true;
  else if (word_is(s, len, "SMTPUTF8")) c->smtputf8 = true;
  else if (word_is(s, len, "STARTTLS")) c->starttls = true;
  else if (word_is(s, len, "AUTH")) auth_mechs(c, s + 4, len - 4);
  else if (word_is(s, len, "SIZE")) {
    c->has_size = true;
    c->size_max = 0;
    for (size_t i = 5; i < len && s[i] >= '0' && s[i] <= '9' && c->size_max < 1000000000000000ULL; i++)
      c->size_max = c->size_max * 10 + (unsigned)(s[i] - '0');
  }
}

static void reply_fail(struct smtp_conn *c, struct reply *r, const char *what)
{
  c->broken = true;
  r->code = 0;
  if (!c->fail[0]) snprintf(c->fail, sizeof c->fail, "421 4.4.2 %s %s", c->hop.name, what);
  snprintf(r->text, sizeof r->text, "%s", c->fail);
}

/* one whole reply; ehlo: its lines after the first are EHLO keywords.
 * The reply must end within the timeout, however slowly it trickles. */
static void read_reply(struct smtp_conn *c, struct reply *r, bool ehlo)
{
  bool toolong;
  int first = 0;
  r->text[0] = 0;
  c->in.deadline_ms = io_now_ms() + (long long)c->timeout * 1000;
  for (int n = 0;; n++) {
    int got = io_getline(&c->in, &c->line, REPLY_LINE_MAX, &toolong);
    if (got <= 0) {
      c->in.deadline_ms = 0;
      reply_fail(c, r, got < 0 && errno == ETIMEDOUT ? "timed out waiting for a reply"
                                                     : "closed the connection");
      return;
    }
    int code;
    if (toolong || n >= REPLY_LINES_MAX || !reply_code_of(c->line.s, c->line.len, &code) ||
        (n && code != first)) {
      c->in.deadline_ms = 0;
      reply_fail(c, r, "sent something that is not an SMTP reply");
      return;
    }
    first = code;
    const char *s = c->line.s;
    size_t len = c->line.len;
    if (n == 0) text_append(r->text, sizeof r->text, s, 3);
    if (len > 4) {
      text_append(r->text, sizeof r->text, " ", 1);
      text_append(r->text, sizeof r->text, s + 4, len - 4);
      if (ehlo && n) ehlo_keyword(c, s + 4, len - 4);
    }
    if (len == 3 || s[3] == ' ') break;
  }
  c->in.deadline_ms = 0;
  r->code = first;
  if (first == 421) c->broken = true;     /* the server is closing */
}

static bool put_cmd(struct smtp_conn *c, const char *a, const char *b, const char *d)
{
  return io_puts(&c->out, a) && (!b || io_puts(&c->out, b)) && (!d || io_puts(&c->out, d)) &&
         io_puts(&c->out, "\r\n");
}

/* a command and its reply */
static void command(struct smtp_conn *c, const char *a, const char *b, struct reply *r, bool ehlo)
{
  if (!put_cmd(c, a, b, NULL) || !io_flush(&c->out)) {
    reply_fail(c, r, errno == ETIMEDOUT ? "timed out taking a command" : "closed the connection");
    return;
  }
  read_reply(c, r, ehlo);
}

static char state_of(int code) { return code >= 200 && code < 400 ? 'd' : code >= 500 ? 'b' : 'p'; }

/* ---- connecting ---- */

static int connect_timed(int fd, const struct sockaddr *sa, socklen_t len)
{
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  if (connect(fd, sa, len) == 0) return 0;
  if (errno != EINPROGRESS) return -1;
  struct pollfd p = { .fd = fd, .events = POLLOUT };
  int r;
  while ((r = poll(&p, 1, TIMEOUT_CONNECT_S * 1000)) < 0 && errno == EINTR) {}
  if (r == 0) { errno = ETIMEDOUT; return -1; }
  if (r < 0) return -1;
  int err = 0;
  socklen_t el = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) return -1;
  if (err) { errno = err; return -1; }
  return 0;
}

static int hop_connect(const struct hop *h)
{
  if (h->unixpath[0]) {
    struct sockaddr_un su = { .sun_family = AF_UNIX };
    snprintf(su.sun_path, sizeof su.sun_path, "%s", h->unixpath);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect_timed(fd, (struct sockaddr *)&su, sizeof su) < 0) { int e = errno; close(fd); errno = e; return -1; }
    return fd;
  }
  struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM }, *ai;
  char port[16];
  snprintf(port, sizeof port, "%u", h->port ? h->port : 25);
  if (getaddrinfo(h->ip, port, &hints, &ai) != 0) { errno = EINVAL; return -1; }
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect_timed(fd, ai->ai_addr, ai->ai_addrlen) < 0) { int e = errno; close(fd); errno = e; fd = -1; }
  freeaddrinfo(ai);
  return fd;
}

static const char *hop_where(const struct hop *h) { return h->unixpath[0] ? h->unixpath : h->ip; }

static void conn_free(struct smtp_conn *c)
{
  if (!c) return;
  tls_end(c->tls);
  if (c->fd >= 0) close(c->fd);
  str_free(&c->line);
  free(c);
}

/* the greeting; false with *state/why set */
static bool greeted(struct smtp_conn *c, char *state, char *why, size_t cap)
{
  struct reply r;
  read_reply(c, &r, false);
  if (r.code >= 200 && r.code < 300) return true;
  *state = r.code >= 500 ? 'b' : 'p';
  snprintf(why, cap, "%s", r.text);
  return false;
}

static void caps_clear(struct smtp_conn *c)
{
  c->pipelining = c->eightbitmime = c->smtputf8 = c->starttls = false;
  c->auth_plain = c->auth_login = c->has_size = false;
  c->size_max = 0;
}

/* EHLO, then HELO when EHLO is refused (not for LMTP) */
static bool hello(struct smtp_conn *c, const char *helo, char *state, char *why, size_t cap)
{
  struct reply r;
  caps_clear(c);
  command(c, c->hop.lmtp ? "LHLO " : "EHLO ", helo, &r, true);
  if (r.code == 250) { c->esmtp = true; return true; }
  if (r.code >= 500 && !c->hop.lmtp) {
    caps_clear(c);
    command(c, "HELO ", helo, &r, false);
    if (r.code == 250) { c->esmtp = false; return true; }
  }
  *state = r.code >= 500 ? 'b' : 'p';
  snprintf(why, cap, "%s", r.text);
  return false;
}

/* the certificate as the hop asks (send.h, enum hop_cert); false with why */
static bool cert_ok(struct smtp_conn *c, char *why, size_t cap)
{
  const struct hop *h = &c->hop;
  if (h->cert == HOP_CERT_PIN) {
    c->verified = tls_peer_fingerprint_is(c->tls, h->pin);
    if (!c->verified)
      snprintf(why, cap, "421 4.7.5 the TLS certificate of %s is not the one control/tlsdestinations pins", h->name);
    return c->verified;
  }
  c->verified = tls_info(c->tls)->peer_verified;
  if (h->cert == HOP_CERT_LOG || c->verified) return true;
  snprintf(why, cap, "421 4.7.5 the TLS certificate of %s did not verify: %s", h->name, tls_verify_error(c->tls));
  return false;
}

/* the TLS handshake on the connection and the certificate's check; false
 * with *state/why set. *retry_plain: the handshake failed on a TLS-may
 * hop; a new connection without TLS may work */
static bool tls_begin(struct smtp_conn *c, char *state, char *why, size_t cap, bool *retry_plain)
{
  const struct hop *h = &c->hop;
  struct tls_client_opts o = {
    .host = h->name, .ca_file = h->ca_file, .ciphers = h->ciphers, .verify_depth = h->verify_depth,
    .check_name = h->cert == HOP_CERT_EXACT ? TLS_NAME_EXACT
                : h->cert == HOP_CERT_CHAIN || h->cert == HOP_CERT_PIN ? TLS_NAME_NONE : TLS_NAME_WILDCARD,
  };
  const char *err = "handshake failed";
  *state = 'p';
  c->tls = tls_client_start(c->fd, c->timeout, &o, &err);
  if (!c->tls) {
    *retry_plain = h->tls == HOP_TLS_MAY && !h->smtps;
    snprintf(why, cap, "421 4.7.0 TLS with %s failed: %s", h->name, err);
    return false;
  }
  tls_attach(c->tls, &c->in, &c->out);
  return cert_ok(c, why, cap);
}

/* STARTTLS as the hop says, then EHLO again; false with *state/why set
 * when the hop cannot be used this way */
static bool starttls(struct smtp_conn *c, const char *helo, char *state, char *why, size_t cap, bool *retry_plain)
{
  const struct hop *h = &c->hop;
  if (h->tls == HOP_TLS_NONE || c->tls) return true;       /* never, or SMTPS: TLS already */
  if (!c->starttls) {
    if (h->tls == HOP_TLS_MAY) return true;
    *state = 'p';
    snprintf(why, cap, "421 4.7.0 TLS is required for %s, which does not offer STARTTLS", h->name);
    return false;
  }
  struct reply r;
  command(c, "STARTTLS", NULL, &r, false);
  if (r.code != 220) {
    if (h->tls == HOP_TLS_MAY && r.code) return true;        /* plain, as RFC 3207 lets us */
    *state = 'p';
    snprintf(why, cap, "421 4.7.0 STARTTLS to %s failed: %s", h->name, r.text);
    return false;
  }
  io_discard(&c->in);                  /* nothing read before TLS counts after it */
  return tls_begin(c, state, why, cap, retry_plain) && hello(c, helo, state, why, cap);
}

static bool auth_step(struct smtp_conn *c, const char *cmd, const char *arg, int want, struct reply *r)
{
  command(c, cmd, arg, r, false);
  return r->code == want;
}

static bool b64(str *dst, const char *src, size_t n)
{
  dst->len = 0;
  return base64_encode(src, n, dst) && str_0(dst);
}

/* AUTH PLAIN (else LOGIN) with the hop's credentials, over TLS only */
static bool authenticate(struct smtp_conn *c, char *state, char *why, size_t cap)
{
  const struct hop *h = &c->hop;
  if (!h->auth_user[0]) return true;
  *state = 'p';
  if (!c->tls) {
    snprintf(why, cap, "421 4.7.0 AUTH to %s needs TLS, which is not in use", h->name);
    return false;
  }
  if (!c->auth_plain && !c->auth_login) {
    snprintf(why, cap, "421 4.7.0 %s offers neither AUTH PLAIN nor AUTH LOGIN", h->name);
    return false;
  }
  str enc = STR_INIT(2048), raw = STR_INIT(1024);
  struct reply r = { 0 };
  bool ok;
  if (c->auth_plain) {
    ok = str_catc(&raw, 0) && str_cats(&raw, h->auth_user) && str_catc(&raw, 0) && str_cats(&raw, h->auth_pass) &&
         b64(&enc, raw.s, raw.len) && auth_step(c, "AUTH PLAIN ", enc.s, 235, &r);
  } else {
    ok = b64(&enc, h->auth_user, strlen(h->auth_user)) && auth_step(c, "AUTH LOGIN", NULL, 334, &r) &&
         auth_step(c, enc.s, NULL, 334, &r) && b64(&enc, h->auth_pass, strlen(h->auth_pass)) &&
         auth_step(c, enc.s, NULL, 235, &r);
  }
  if (raw.s) explicit_bzero(raw.s, raw.cap);
  if (enc.s) explicit_bzero(enc.s, enc.cap);
  str_free(&raw);
  str_free(&enc);
  if (ok) { c->authed = true; return true; }
  snprintf(why, cap, "454 4.7.0 %s refused our AUTH: %s", h->name, r.code ? r.text : "out of memory");
  if (!r.code && r.text[0]) snprintf(why, cap, "%s", r.text);
  return false;
}

/* the session on fd (connected, or -1: connect to the hop now) */
static struct smtp_conn *open_once(const struct hop *h, int fd, const char *helo, int timeout_s,
                                   char *state, char *why, size_t cap, bool *retry_plain)
{
  struct smtp_conn *c = calloc(1, sizeof *c);
  if (!c) { *state = 'p'; snprintf(why, cap, "421 4.3.0 out of memory"); if (fd >= 0) close(fd); return NULL; }
  c->hop = *h;
  c->timeout = timeout_s > 0 ? timeout_s : 300;
  c->line = (str)STR_INIT(REPLY_LINE_MAX + 3);
  c->fd = fd >= 0 ? fd : hop_connect(h);
  if (c->fd < 0) {
    *state = 'p';
    if (errno == ECONNREFUSED) snprintf(why, cap, "421 4.4.1 connection refused by %s", hop_where(h));
    else if (errno == ETIMEDOUT) snprintf(why, cap, "421 4.4.1 timed out connecting to %s", hop_where(h));
    else snprintf(why, cap, "421 4.4.1 cannot connect to %s: %s", hop_where(h), strerror(errno));
    conn_free(c);
    return NULL;
  }
  io_out_init(&c->out, c->fd, c->timeout);
  io_in_init(&c->in, c->fd, c->timeout, &c->out);
  if ((!h->smtps || h->tls == HOP_TLS_NONE || tls_begin(c, state, why, cap, retry_plain)) &&
      greeted(c, state, why, cap) && hello(c, helo, state, why, cap) &&
      starttls(c, helo, state, why, cap, retry_plain) && authenticate(c, state, why, cap))
    return c;
  conn_free(c);
  return NULL;
}

struct smtp_conn *smtp_open_fd(int fd, const struct hop *h, const char *helo, int timeout_s,
                               char *state, char *why, size_t cap)
{
  bool retry_plain = false;
  signal(SIGPIPE, SIG_IGN);
  return open_once(h, fd, helo, timeout_s, state, why, cap, &retry_plain);
}

struct smtp_conn *smtp_open(const struct hop *h, const char *helo, int timeout_s, char *state, char *why, size_t cap)
{
  bool retry_plain = false;
  signal(SIGPIPE, SIG_IGN);            /* a peer gone mid-write is an error return, not a death */
  struct smtp_conn *c = open_once(h, -1, helo, timeout_s, state, why, cap, &retry_plain);
  if (!c && retry_plain && !h->auth_user[0]) {
    struct hop plain = *h;             /* TLS may: a failed handshake, so once more without it */
    plain.tls = HOP_TLS_NONE;
    c = open_once(&plain, -1, helo, timeout_s, state, why, cap, &retry_plain);
    if (c) c->hop.tls = h->tls;
  }
  return c;
}

/* ---- one transaction ---- */

static bool has_8bit(const char *s) { for (; *s; s++) if ((unsigned char)*s >= 0x80) return true; return false; }

static void all_outcomes(const struct outgoing *m, struct rcpt_outcome *out, char state, const char *text)
{
  for (size_t i = 0; i < m->nrcpt; i++) {
    out[i].state = state;
    snprintf(out[i].reply, sizeof out[i].reply, "%s", text);
  }
}

struct msg_scan {
  unsigned long long wire;      /* bytes on the wire: CRLF line ends (the dots not counted) */
  bool eightbit;
  bool ok;
  char last;                    /* the last byte, to count the CRLF added after a last line without LF */
};

static void scan_bytes(struct msg_scan *s, const char *p, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\n') s->wire++;
    else if ((unsigned char)p[i] >= 0x80) s->eightbit = true;
  }
  s->wire += n;
  if (n) s->last = p[n - 1];
}

/* the size and 8-bit-ness of prepend + message, one pass over the file */
static struct msg_scan scan_message(const struct outgoing *m)
{
  struct msg_scan s = { 0, false, true, '\n' };
  if (m->prepend) scan_bytes(&s, m->prepend, strlen(m->prepend));
  char *buf = malloc(MSG_CHUNK);
  if (!buf) { s.ok = false; return s; }
  for (unsigned long long done = 0; done < m->msglen;) {
    size_t want = m->msglen - done > MSG_CHUNK ? MSG_CHUNK : (size_t)(m->msglen - done);
    ssize_t r = pread(m->msgfd, buf, want, m->msgoff + (off_t)done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) { s.ok = false; break; }
    scan_bytes(&s, buf, (size_t)r);
    done += (unsigned long long)r;
  }
  free(buf);
  if (s.last != '\n') s.wire += 2;
  return s;
}

/* LF text to the wire: CRLF, dot-stuffed; *bol: at the start of a line */
static bool put_text(struct smtp_conn *c, const char *p, size_t n, bool *bol)
{
  while (n) {
    if (*bol && *p == '.' && !io_put(&c->out, ".", 1)) return false;
    const char *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) : n;
    if (take && !io_put(&c->out, p, take)) return false;
    if (nl && !io_put(&c->out, "\r\n", 2)) return false;
    *bol = nl != NULL;
    take += nl ? 1 : 0;
    p += take; n -= take;
  }
  return true;
}

/* 1 sent (with the final dot), 0 the message could not be read, -1 the connection failed */
static int put_message(struct smtp_conn *c, const struct outgoing *m)
{
  bool bol = true;
  if (m->prepend && !put_text(c, m->prepend, strlen(m->prepend), &bol)) return -1;
  char *buf = malloc(MSG_CHUNK);
  if (!buf) return 0;
  int rc = 1;
  for (unsigned long long done = 0; done < m->msglen;) {
    size_t want = m->msglen - done > MSG_CHUNK ? MSG_CHUNK : (size_t)(m->msglen - done);
    ssize_t r = pread(m->msgfd, buf, want, m->msgoff + (off_t)done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) { rc = 0; break; }
    if (!put_text(c, buf, (size_t)r, &bol)) { rc = -1; break; }
    done += (unsigned long long)r;
  }
  free(buf);
  if (rc == 1 && ((!bol && !io_put(&c->out, "\r\n", 2)) || !io_put(&c->out, ".\r\n", 3) || !io_flush(&c->out)))
    rc = -1;
  return rc;
}

/* the commands of the envelope, pipelined in groups when offered */
struct envelope_run {
  size_t sent, read;            /* commands: MAIL, RCPT 0..n-1, DATA */
  struct reply mail, data;
  size_t accepted;
};

static bool put_envelope_cmd(struct smtp_conn *c, const struct outgoing *m, size_t k, const char *params)
{
  if (k == 0)
    return io_puts(&c->out, "MAIL FROM:<") && io_puts(&c->out, m->sender) && io_puts(&c->out, ">") &&
           io_puts(&c->out, params) && io_puts(&c->out, "\r\n");
  if (k <= m->nrcpt) return put_cmd(c, "RCPT TO:<", m->rcpt[k - 1], ">");
  return put_cmd(c, "DATA", NULL, NULL);
}

static void take_envelope_reply(struct smtp_conn *c, const struct outgoing *m, struct rcpt_outcome *out,
                                struct envelope_run *e, size_t k)
{
  struct reply r;
  read_reply(c, &r, false);
  if (k == 0) { e->mail = r; return; }
  if (k > m->nrcpt) { e->data = r; return; }
  struct rcpt_outcome *o = &out[k - 1];
  const struct reply *by = e->mail.code >= 200 && e->mail.code < 300 ? &r : &e->mail;
  o->state = by->code >= 200 && by->code < 300 ? 'a' : state_of(by->code);   /* 'a': accepted so far */
  if (!by->code) o->state = 'p';
  snprintf(o->reply, sizeof o->reply, "%s", by->text);
  if (o->state == 'a') e->accepted++;
}

/* without PIPELINING, nothing is sent that cannot succeed: no RCPT after
 * a refused MAIL, no DATA without a recipient */
static bool worth_sending(const struct outgoing *m, const struct envelope_run *e, size_t k)
{
  if (k == 0) return true;
  if (k <= m->nrcpt) return e->mail.code >= 200 && e->mail.code < 300;
  return e->accepted > 0;
}

/* the recipients not asked for take MAIL's refusal; DATA is not sent */
static void skip_rest(const struct outgoing *m, struct rcpt_outcome *out, struct envelope_run *e)
{
  for (size_t i = e->sent ? e->sent - 1 : 0; i < m->nrcpt; i++) {
    out[i].state = state_of(e->mail.code);
    snprintf(out[i].reply, sizeof out[i].reply, "%s", e->mail.text);
  }
  e->data.code = 0;
  e->data.text[0] = 0;
  e->sent = e->read = m->nrcpt + 2;
}

/* MAIL, RCPT..., DATA: the replies in e; false when the connection failed */
static bool envelope(struct smtp_conn *c, const struct outgoing *m, struct rcpt_outcome *out,
                     struct envelope_run *e, const char *params)
{
  size_t total = m->nrcpt + 2, group = c->pipelining ? PIPELINE_MAX : 1;
  while (e->read < total) {
    while (e->sent < total && e->sent - e->read < group) {
      if (!c->pipelining && !worth_sending(m, e, e->sent)) { skip_rest(m, out, e); return true; }
      if (!put_envelope_cmd(c, m, e->sent, params)) return false;
      e->sent++;
    }
    if (!io_flush(&c->out)) return false;
    while (e->read < e->sent) {
      take_envelope_reply(c, m, out, e, e->read++);
      if (c->broken) return false;
    }
  }
  return true;
}

/* after the dot: one reply for all (SMTP), or one per accepted recipient (LMTP) */
static void final_replies(struct smtp_conn *c, const struct outgoing *m, struct rcpt_outcome *out)
{
  struct reply r = { 0 };
  if (!c->hop.lmtp) read_reply(c, &r, false);
  for (size_t i = 0; i < m->nrcpt; i++) {
    if (out[i].state != 'a') continue;
    if (c->hop.lmtp && !c->broken) read_reply(c, &r, false);
    out[i].state = r.code ? state_of(r.code) : 'p';
    if (r.code >= 300 && r.code < 400) out[i].state = 'p';     /* 3xx after the dot is no answer */
    snprintf(out[i].reply, sizeof out[i].reply, "%s", r.text);
  }
  if (r.code >= 300 && r.code < 400) c->broken = true;
}

static void connection_lost(struct smtp_conn *c, const struct outgoing *m, struct rcpt_outcome *out)
{
  struct reply r;
  reply_fail(c, &r, errno == ETIMEDOUT ? "timed out" : "closed the connection");
  for (size_t i = 0; i < m->nrcpt; i++)
    if (out[i].state == 'a' || out[i].state == 0) {
      out[i].state = 'p';
      snprintf(out[i].reply, sizeof out[i].reply, "%s", r.text);
    }
}

/* what can be refused before anything is sent: SMTPUTF8 and SIZE; true when refused */
static bool refuse_early(struct smtp_conn *c, const struct outgoing *m, struct rcpt_outcome *out,
                         const struct msg_scan *s, bool utf8)
{
  char text[512];
  if (utf8 && !c->smtputf8) {
    snprintf(text, sizeof text, "553 5.6.7 %s does not support SMTPUTF8, which a UTF-8 address needs", c->hop.name);
    all_outcomes(m, out, 'b', text);
    return true;
  }
  if (c->has_size && c->size_max && s->wire > c->size_max) {
    snprintf(text, sizeof text, "552 5.3.4 message of %llu bytes is bigger than the %llu bytes %s takes",
             s->wire, c->size_max, c->hop.name);
    all_outcomes(m, out, 'b', text);
    return true;
  }
  return false;
}

bool smtp_send(struct smtp_conn *c, const struct outgoing *m, struct rcpt_outcome *out)
{
  for (size_t i = 0; i < m->nrcpt; i++) { out[i].state = 0; out[i].reply[0] = 0; }
  if (c->broken) { all_outcomes(m, out, 'p', "421 4.4.2 the connection can take no more"); return false; }
  if (c->dirty) {
    struct reply r;
    command(c, "RSET", NULL, &r, false);
    if (r.code != 250) { c->broken = true; all_outcomes(m, out, 'p', r.text); return false; }
    c->dirty = false;
  }
  bool utf8 = has_8bit(m->sender);
  for (size_t i = 0; i < m->nrcpt; i++) utf8 = utf8 || has_8bit(m->rcpt[i]);
  struct msg_scan s = { 0, false, true, '\n' };          /* read only when the server would use it */
  if (c->has_size || c->eightbitmime) s = scan_message(m);
  if (!s.ok) { all_outcomes(m, out, 'p', "451 4.3.0 cannot read the queued message"); return true; }
  if (refuse_early(c, m, out, &s, utf8)) return true;
  char params[96] = "";
  if (c->has_size) snprintf(params, sizeof params, " SIZE=%llu", s.wire);
  if (s.eightbit && c->eightbitmime) strcat(params, " BODY=8BITMIME");
  if (utf8) strcat(params, " SMTPUTF8");
  struct envelope_run e = { 0 };
  c->dirty = true;
  if (!envelope(c, m, out, &e, params)) { connection_lost(c, m, out); return false; }
  if (e.data.code != 354) {
    for (size_t i = 0; i < m->nrcpt; i++) {
      if (out[i].state != 'a') continue;
      out[i].state = e.data.code >= 200 && e.data.code < 300 ? 'p' : state_of(e.data.code);
      snprintf(out[i].reply, sizeof out[i].reply, "%s", e.data.text);
    }
    if (e.data.code >= 200 && e.data.code < 300) c->broken = true;   /* no sense in it */
    return !c->broken;
  }
  if (!e.accepted) {                   /* 354 with nobody to deliver to: an empty message, dropped */
    struct reply r;
    command(c, ".", NULL, &r, false);
    return !c->broken;
  }
  int sent = put_message(c, m);
  if (sent < 0) { connection_lost(c, m, out); return false; }
  if (sent == 0) {                     /* a dot now would deliver half a message: hang up */
    c->broken = true;
    for (size_t i = 0; i < m->nrcpt; i++)
      if (out[i].state == 'a') { out[i].state = 'p'; snprintf(out[i].reply, sizeof out[i].reply, "451 4.3.0 cannot read the queued message"); }
    return false;
  }
  final_replies(c, m, out);
  if (!c->broken) c->dirty = false;
  return !c->broken;
}

void smtp_close(struct smtp_conn *c)
{
  if (!c) return;
  if (!c->broken && put_cmd(c, "QUIT", NULL, NULL) && io_flush(&c->out)) {
    struct reply r;
    c->timeout = c->timeout > 10 ? 10 : c->timeout;   /* a QUIT's reply is a courtesy */
    c->in.timeout = c->timeout;
    read_reply(c, &r, false);
  }
  conn_free(c);
}

const char *smtp_proto(const struct smtp_conn *c)
{
  if (c->hop.lmtp) return c->tls ? "LMTPS" : "LMTP";
  if (!c->esmtp) return "SMTP";
  if (c->tls) return c->authed ? "ESMTPSA" : "ESMTPS";
  return c->authed ? "ESMTPA" : "ESMTP";
}

bool smtp_tls_verified(const struct smtp_conn *c) { return c->tls && c->verified; }

const char *smtp_peer_ip(const struct smtp_conn *c) { return c->hop.unixpath[0] ? c->hop.unixpath : c->hop.ip; }
