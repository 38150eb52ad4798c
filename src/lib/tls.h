/* tls.h -- server-side TLS (OpenSSL 3) for mxgate-smtpd and mxgate-popup:
 * STARTTLS/STLS and implicit TLS.
 * The context is created only when a client asks for TLS, from
 * control/servercert.pem (certificate + key; TLSCERT/TLSKEY override) and,
 * for client certificates, control/clientca.pem (TLSCLIENTCA overrides). */
#ifndef MXGATE_TLS_H
#define MXGATE_TLS_H
#include <stdbool.h>
#include <stddef.h>

struct io_in;
struct io_out;

/* UCSPITLS: how this client is treated */
enum tls_mode {
  TLS_OFF,          /* "-": no STARTTLS */
  TLS_OFFER,        /* "" (or unset with a certificate present) */
  TLS_REQUIRE,      /* "!": MAIL and AUTH need TLS first */
  TLS_CLIENTCERT,   /* "?": TLS with a valid client certificate; it grants relaying */
  TLS_CLIENTEMAIL,  /* "@": as "?", and the certificate's e-mail is the sender for LOCALMFCHECK=? */
};

struct tls;       /* opaque: one TLS connection */

struct tls_info {
  char version[32], cipher[96];
  bool peer_verified;
  char peer_cn[256], peer_email[256];
};

enum tls_mode tls_mode_from_env(void);
/* start TLS on fds in/out; NULL with *why set when it cannot be established */
struct tls *tls_start(int infd, int outfd, int timeout, enum tls_mode mode, const char **why);
/* switch the buffered streams over to the TLS connection */
void tls_attach(struct tls *t, struct io_in *in, struct io_out *out);
const struct tls_info *tls_info(const struct tls *t);
/* decrypted bytes OpenSSL holds that poll() on the socket cannot see */
bool tls_pending(const struct tls *t);
void tls_end(struct tls *t);
/* whether a server certificate is configured (decides "unset" UCSPITLS) */
bool tls_available(void);

/* client side (mxgate-send): TLS on a connected socket to a server named
 * host (SNI unless an IP literal; "[192.0.2.1]" is taken as that address).
 * The handshake completes whatever the certificate; tls_info()->peer_verified
 * says whether it passed the check o asks for (the chain up to a CA of
 * o->ca_file, "" or NULL the system's, within o->verify_depth when not 0,
 * and the name as o->check_name says), tls_verify_error() why not.
 * NULL with *why set when no handshake. */
enum tls_name_check {
  TLS_NAME_WILDCARD,            /* the certificate names host; "*.example.org" counts */
  TLS_NAME_EXACT,               /* the certificate names host itself, no wildcard */
  TLS_NAME_NONE                 /* the chain only */
};
struct tls_client_opts {
  const char *host;
  const char *ca_file;
  enum tls_name_check check_name;
  const char *ciphers;          /* OpenSSL cipher list for TLS 1.2 ("" or NULL: the default) */
  int verify_depth;             /* 0: OpenSSL's default */
};
struct tls *tls_client_start(int fd, int timeout, const struct tls_client_opts *o, const char **why);
const char *tls_verify_error(const struct tls *t);
/* whether the peer's certificate has this fingerprint: hex digits (colons
 * ignored, any case) of its SHA-1, SHA-224, SHA-256 or SHA-512 digest,
 * told apart by their number */
bool tls_peer_fingerprint_is(const struct tls *t, const char *hex);

#endif
