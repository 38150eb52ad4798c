/* send.h -- mxgate-send: the queue runner (runner.c, route.c) and its
 * SMTP/LMTP client (client.c).
 *
 * The runner takes pending recipients from the queue entries
 * (src/queue/entry.c), groups them by next hop, and hands each group to
 * the client as one transaction on a connection that may carry several.
 * The client speaks SMTP (RFC 5321, with PIPELINING, SIZE, 8BITMIME,
 * SMTPUTF8, STARTTLS, AUTH) or LMTP (RFC 2033) and says, for every
 * recipient, what the next hop answered.
 */
#ifndef MXGATE_SEND_H
#define MXGATE_SEND_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum hop_tls {
  HOP_TLS_MAY,                  /* STARTTLS when offered */
  HOP_TLS_NONE,                 /* never */
  HOP_TLS_REQUIRE               /* required: a hop without it is a temporary failure */
};

/* what the certificate must be once TLS is up (control/tlsdestinations) */
enum hop_cert {
  HOP_CERT_LOG,                 /* anything; whether it verifies for the hop's name is logged */
  HOP_CERT_CHAIN,               /* it chains to a CA of ca_file (or the system's) */
  HOP_CERT_NAME,                /* that, and it names the hop ("*.example.org" counts) */
  HOP_CERT_EXACT,               /* that, and it names the hop itself, no wildcard */
  HOP_CERT_PIN                  /* its digest is pin, whoever signed it */
};

/* where one transaction goes: resolved by the runner (route.c) */
struct hop {
  char name[256];               /* the host name (MX, route, or the IP literal), for TLS and the log */
  char ip[64];                  /* the address to connect to (IPv4 or IPv6 text); "" with unixpath */
  unsigned port;                /* 25 unless a route says otherwise */
  char unixpath[108];           /* LMTP over this unix socket instead ("" none) */
  bool lmtp;                    /* LHLO and one reply per recipient after DATA */
  enum hop_tls tls;
  enum hop_cert cert;
  bool smtps;                   /* TLS from the first byte (port 465), not STARTTLS */
  char ca_file[256];            /* the CA bundle, or a directory when it ends in "/" ("" the system's) */
  char ciphers[128];            /* OpenSSL's cipher list for TLS 1.2 ("" the default) */
  int verify_depth;             /* the longest chain accepted (0 OpenSSL's default) */
  char pin[130];                /* HOP_CERT_PIN: hex of the certificate's SHA-1/224/256/512 digest */
  char auth_user[256];          /* a smarthost's AUTH (PLAIN, else LOGIN), only over TLS; "" none */
  char auth_pass[256];
};

/* one transaction: a message to some recipients at one hop */
struct outgoing {
  const char *helo;             /* our name for EHLO/LHLO */
  const char *sender;           /* "" for the null sender */
  const char *const *rcpt;      /* nrcpt addresses */
  size_t nrcpt;
  int msgfd;                    /* the message: msglen bytes at msgoff, LF line ends (as queued) */
  off_t msgoff;
  unsigned long long msglen;
  const char *prepend;          /* header lines to send first (LF line ends), or NULL */
};

/* what became of one recipient */
struct rcpt_outcome {
  char state;                   /* 'd' taken (2xx), 'p' temporary failure (4xx, or the connection), 'b' permanent (5xx) */
  char reply[512];              /* the reply that decided it, one line: "250 2.0.0 Ok: queued as X";
                                   multi-line replies joined with blanks; no control bytes */
};

struct smtp_conn;               /* opaque */

/* connects (timeouts: TIMEOUT_CONNECT_S for the connection, timeout_s for
 * every read and write after), reads the greeting, says EHLO (HELO when
 * EHLO is refused; LHLO for LMTP), STARTTLS per h->tls, AUTH when asked.
 * NULL when no transaction can be tried: *state and why (a reply line
 * such as "421 4.4.1 connection refused by 192.0.2.1" or the server's
 * own 5xx greeting) say why, for every recipient of the transaction.
 * It sets SIGPIPE to be ignored (process-wide): a peer gone mid-write is
 * then an error return. Under HOP_TLS_MAY a failed handshake is retried
 * once on a new connection without TLS (not for a hop with AUTH, nor
 * for SMTPS); a certificate that fails the hop's check is never retried */
#define TIMEOUT_CONNECT_S 30
struct smtp_conn *smtp_open(const struct hop *h, const char *helo, int timeout_s, char *state, char *why, size_t cap);
/* the same over a socket the caller has connected (fd is the connection's
 * from then on, closed by smtp_close or on failure); no plain retry after
 * a failed TLS handshake. The fuzz harness drives the client this way */
struct smtp_conn *smtp_open_fd(int fd, const struct hop *h, const char *helo, int timeout_s, char *state, char *why, size_t cap);
/* one transaction (MAIL, RCPT..., DATA; pipelined when offered); every
 * recipient gets its outcome in out[0..m->nrcpt). A message bigger than
 * the server's SIZE, or an address with UTF-8 to a server without
 * SMTPUTF8, is 'b' for all without sending it. True when the connection
 * can carry another transaction (after RSET when needed) */
bool smtp_send(struct smtp_conn *c, const struct outgoing *m, struct rcpt_outcome *out);
void smtp_close(struct smtp_conn *c);                 /* QUIT, close, free */
/* for the log line */
const char *smtp_proto(const struct smtp_conn *c);    /* "SMTP", "ESMTP", "ESMTPS", "ESMTPSA", "LMTP", "LMTPS" */
bool smtp_tls_verified(const struct smtp_conn *c);    /* the certificate passed the hop's check (HOP_CERT_LOG:
                                                         the chain and the hop's name) */
const char *smtp_peer_ip(const struct smtp_conn *c);
#endif
