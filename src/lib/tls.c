/* tls.c -- server TLS connections over OpenSSL 3 (tls.h), and the client
 * side mxgate-send uses for STARTTLS to the next hop.
 *
 * TLS 1.2 and later, OpenSSL's default cipher choices, no compression,
 * no renegotiation. The sockets are switched to non-blocking so that every
 * handshake, read and write waits in poll() with the session's timeout.
 */
#include "tls.h"
#include "io.h"
#include "control.h"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct tls {
  SSL_CTX *ctx;
  SSL *ssl;
  int timeout;
  struct tls_info info;
  long verify_result;           /* client side: X509_V_OK or why not */
};

static const char *cert_path(char *buf, size_t cap, const char *env, const char *name)
{
  const char *e = getenv(env);
  if (e && *e) return e;
  control_path(buf, cap, name);
  return buf;
}

bool tls_available(void)
{
  char buf[4096];
  return access(cert_path(buf, sizeof buf, "TLSCERT", "control/servercert.pem"), R_OK) == 0;
}

enum tls_mode tls_mode_from_env(void)
{
  const char *v = getenv("UCSPITLS");
  if (!v) return tls_available() ? TLS_OFFER : TLS_OFF;
  if (strcmp(v, "-") == 0) return TLS_OFF;
  if (strcmp(v, "!") == 0) return TLS_REQUIRE;
  if (strcmp(v, "?") == 0) return TLS_CLIENTCERT;
  if (strcmp(v, "@") == 0) return TLS_CLIENTEMAIL;
  return TLS_OFFER;
}

/* the handshake completes whatever the client certificate; its verdict
 * (SSL_get_verify_result) is judged afterwards, so a client with a bad
 * certificate gets a 454 it can read instead of a broken handshake */
static int keep_going(int ok, X509_STORE_CTX *x)
{
  (void)ok; (void)x;
  return 1;
}

static SSL_CTX *make_ctx(enum tls_mode mode, const char **why)
{
  char cbuf[4096], kbuf[4096], cabuf[4096];
  const char *cert = cert_path(cbuf, sizeof cbuf, "TLSCERT", "control/servercert.pem");
  const char *key = getenv("TLSKEY") && *getenv("TLSKEY") ? getenv("TLSKEY") : cert;
  (void)kbuf;
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) { *why = "cannot create TLS context"; return NULL; }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    *why = "cannot load the server certificate";
    SSL_CTX_free(ctx);
    return NULL;
  }
  if (mode == TLS_CLIENTCERT || mode == TLS_CLIENTEMAIL) {
    const char *ca = cert_path(cabuf, sizeof cabuf, "TLSCLIENTCA", "control/clientca.pem");
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
      *why = "cannot load the client CA file";
      SSL_CTX_free(ctx);
      return NULL;
    }
    SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(ca));
    /* ask for a certificate; whether it is valid is judged after the handshake */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, keep_going);
    SSL_CTX_set_verify_depth(ctx, 5);
  }
  return ctx;
}

/* wait for what OpenSSL wants; false on timeout or a hard error */
static bool ssl_wait(struct tls *t, int ret)
{
  int err = SSL_get_error(t->ssl, ret);
  struct pollfd p;
  if (err == SSL_ERROR_WANT_READ) p = (struct pollfd){ .fd = SSL_get_rfd(t->ssl), .events = POLLIN };
  else if (err == SSL_ERROR_WANT_WRITE) p = (struct pollfd){ .fd = SSL_get_wfd(t->ssl), .events = POLLOUT };
  else return false;
  for (;;) {
    int r = poll(&p, 1, t->timeout > 0 ? t->timeout * 1000 : -1);
    if (r > 0) return true;
    if (r == 0) { errno = ETIMEDOUT; return false; }
    if (errno != EINTR) return false;
  }
}

static ssize_t tls_read(void *ctx, int fd, void *buf, size_t len, int timeout)
{
  struct tls *t = ctx;
  (void)fd; (void)timeout;
  for (;;) {
    int r = SSL_read(t->ssl, buf, len > 65536 ? 65536 : (int)len);
    if (r > 0) return r;
    int err = SSL_get_error(t->ssl, r);
    if (err == SSL_ERROR_ZERO_RETURN) return 0;
    if (!ssl_wait(t, r)) return errno == ETIMEDOUT ? -1 : 0;
  }
}

static ssize_t tls_write(void *ctx, int fd, void *buf, size_t len, int timeout)
{
  struct tls *t = ctx;
  (void)fd; (void)timeout;
  for (;;) {
    int r = SSL_write(t->ssl, buf, len > 65536 ? 65536 : (int)len);
    if (r > 0) return r;
    if (!ssl_wait(t, r)) return -1;
  }
}

static void peer_details(struct tls *t)
{
  X509 *peer = SSL_get1_peer_certificate(t->ssl);
  if (!peer) return;
  t->info.peer_verified = SSL_get_verify_result(t->ssl) == X509_V_OK;
  X509_NAME *subj = X509_get_subject_name(peer);
  X509_NAME_get_text_by_NID(subj, NID_commonName, t->info.peer_cn, sizeof t->info.peer_cn);
  if (X509_NAME_get_text_by_NID(subj, NID_pkcs9_emailAddress, t->info.peer_email, sizeof t->info.peer_email) < 0) {
    STACK_OF(GENERAL_NAME) *alt = X509_get_ext_d2i(peer, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; alt && i < sk_GENERAL_NAME_num(alt); i++) {
      const GENERAL_NAME *g = sk_GENERAL_NAME_value(alt, i);
      if (g->type != GEN_EMAIL) continue;
      const unsigned char *d = ASN1_STRING_get0_data(g->d.rfc822Name);
      int n = ASN1_STRING_length(g->d.rfc822Name);
      if (n > 0 && (size_t)n < sizeof t->info.peer_email && !memchr(d, 0, (size_t)n)) {
        memcpy(t->info.peer_email, d, (size_t)n);
        t->info.peer_email[n] = 0;
        break;
      }
    }
    GENERAL_NAMES_free(alt);
  }
  X509_free(peer);
}

/* A context is made once per process and mode, then shared by its
 * connections: a listener worker loads certificates once, not per
 * session (a SIGHUP replaces the worker, and with it the cache). */
static SSL_CTX *ctx_cached(enum tls_mode mode, const char **why)
{
  static SSL_CTX *cache[TLS_CLIENTEMAIL + 1];
  if ((unsigned)mode > TLS_CLIENTEMAIL) mode = TLS_OFFER;
  if (!cache[mode]) cache[mode] = make_ctx(mode, why);
  if (cache[mode]) SSL_CTX_up_ref(cache[mode]);
  return cache[mode];
}

/* the handshake, server (SSL_accept) or client (SSL_connect) side, each
 * wait bounded by t->timeout; then the version and cipher for the log.
 * On failure t is freed, why set */
static bool handshake(struct tls *t, int (*step)(SSL *), const char **why)
{
  for (;;) {
    int r = step(t->ssl);
    if (r == 1) break;
    if (!ssl_wait(t, r)) {
      *why = errno == ETIMEDOUT ? "handshake timed out" : "handshake failed";
      tls_end(t);
      return false;
    }
  }
  snprintf(t->info.version, sizeof t->info.version, "%s", SSL_get_version(t->ssl));
  snprintf(t->info.cipher, sizeof t->info.cipher, "%s", SSL_get_cipher_name(t->ssl));
  return true;
}

struct tls *tls_start(int infd, int outfd, int timeout, enum tls_mode mode, const char **why)
{
  struct tls *t = calloc(1, sizeof *t);
  if (!t) { *why = "out of memory"; return NULL; }
  t->timeout = timeout;
  t->ctx = ctx_cached(mode, why);
  if (!t->ctx) { free(t); return NULL; }
  t->ssl = SSL_new(t->ctx);
  fcntl(infd, F_SETFL, fcntl(infd, F_GETFL) | O_NONBLOCK);
  fcntl(outfd, F_SETFL, fcntl(outfd, F_GETFL) | O_NONBLOCK);
  if (!t->ssl || !SSL_set_rfd(t->ssl, infd) || !SSL_set_wfd(t->ssl, outfd)) {
    *why = "cannot set up the TLS connection";
    tls_end(t);
    return NULL;
  }
  if (!handshake(t, SSL_accept, why)) return NULL;
  peer_details(t);
  return t;
}

void tls_attach(struct tls *t, struct io_in *in, struct io_out *out)
{
  in->read = tls_read;
  in->ctx = t;
  out->write = tls_write;
  out->ctx = t;
}

const struct tls_info *tls_info(const struct tls *t) { return &t->info; }

bool tls_pending(const struct tls *t) { return t && SSL_pending(t->ssl) > 0; }

void tls_end(struct tls *t)
{
  if (!t) return;
  if (t->ssl) { SSL_shutdown(t->ssl); SSL_free(t->ssl); }
  if (t->ctx) SSL_CTX_free(t->ctx);
  free(t);
}

/* client contexts: one per CA file, kept for the process (a queue runner
 * opens many connections with the same few CA files) */
static SSL_CTX *client_ctx(const char *ca_file, const char **why)
{
  static SSL_CTX *cached;
  static char cached_ca[4096];
  const char *ca = ca_file ? ca_file : "";
  if (cached && strcmp(cached_ca, ca) == 0) { SSL_CTX_up_ref(cached); return cached; }
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) { *why = "cannot create TLS context"; return NULL; }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  size_t calen = strlen(ca);
  int ok = !calen ? SSL_CTX_set_default_verify_paths(ctx)
         : ca[calen - 1] == '/' ? SSL_CTX_load_verify_locations(ctx, NULL, ca)   /* a directory (c_rehash'd) */
         : SSL_CTX_load_verify_locations(ctx, ca, NULL);
  if (ok != 1) { *why = "cannot load the CA certificates"; SSL_CTX_free(ctx); return NULL; }
  if (cached) SSL_CTX_free(cached);
  cached = ctx;
  snprintf(cached_ca, sizeof cached_ca, "%s", ca);
  SSL_CTX_up_ref(ctx);
  return ctx;
}

/* the name the certificate must carry: a DNS name, or an IP literal */
static bool expect_peer(SSL *ssl, const struct tls_client_opts *o)
{
  char host[256];
  snprintf(host, sizeof host, "%s", o->host && *o->host != '[' ? o->host : o->host ? o->host + 1 : "");
  if (o->host && *o->host == '[') host[strcspn(host, "]")] = 0;
  if (!*host) return true;
  unsigned char addr[16];
  if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1)
    return o->check_name == TLS_NAME_NONE || X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
  if (SSL_set_tlsext_host_name(ssl, host) != 1) return false;
  if (o->check_name == TLS_NAME_NONE) return true;
  SSL_set_hostflags(ssl, o->check_name == TLS_NAME_EXACT ? X509_CHECK_FLAG_NO_WILDCARDS
                                                          : X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return SSL_set1_host(ssl, host) == 1;
}

struct tls *tls_client_start(int fd, int timeout, const struct tls_client_opts *o, const char **why)
{
  struct tls *t = calloc(1, sizeof *t);
  if (!t) { *why = "out of memory"; return NULL; }
  t->timeout = timeout;
  t->ctx = client_ctx(o->ca_file, why);
  if (!t->ctx) { free(t); return NULL; }
  t->ssl = SSL_new(t->ctx);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  if (!t->ssl || !SSL_set_fd(t->ssl, fd) || !expect_peer(t->ssl, o)) {
    *why = "cannot set up the TLS connection";
    tls_end(t);
    return NULL;
  }
  if (o->ciphers && *o->ciphers && SSL_set_cipher_list(t->ssl, o->ciphers) != 1) {
    *why = "none of the configured ciphers is known";
    tls_end(t);
    return NULL;
  }
  if (o->verify_depth > 0) SSL_set_verify_depth(t->ssl, o->verify_depth);
  if (!handshake(t, SSL_connect, why)) return NULL;
  t->verify_result = SSL_get_verify_result(t->ssl);
  peer_details(t);
  if (!SSL_get0_peer_certificate(t->ssl)) t->verify_result = X509_V_ERR_UNSPECIFIED;
  t->info.peer_verified = t->verify_result == X509_V_OK;
  return t;
}

bool tls_peer_fingerprint_is(const struct tls *t, const char *hex)
{
  char want[2 * EVP_MAX_MD_SIZE + 1];
  size_t n = 0;
  for (const char *p = hex; *p && n < sizeof want - 1; p++)
    if (*p != ':') want[n++] = (char)tolower((unsigned char)*p);
  want[n] = 0;
  const EVP_MD *md = n == 40 ? EVP_sha1() : n == 56 ? EVP_sha224() : n == 64 ? EVP_sha256()
                   : n == 128 ? EVP_sha512() : NULL;
  X509 *cert = t ? SSL_get0_peer_certificate(t->ssl) : NULL;
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned dlen = 0;
  if (!md || !cert || X509_digest(cert, md, d, &dlen) != 1 || dlen * 2 != n) return false;
  char got[2 * EVP_MAX_MD_SIZE + 1];
  for (unsigned i = 0; i < dlen; i++) snprintf(got + 2 * i, 3, "%02x", d[i]);
  return strcmp(got, want) == 0;
}

const char *tls_verify_error(const struct tls *t)
{
  if (!t) return "no TLS";
  if (t->verify_result == X509_V_ERR_UNSPECIFIED) return "no certificate";
  return X509_verify_cert_error_string(t->verify_result);
}
