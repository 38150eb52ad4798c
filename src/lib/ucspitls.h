/* ucspitls.h -- TLS done by sslserver (ucspi-ssl) instead of mxgate's own
 * OpenSSL: the program side of the UCSPI-TLS protocol, for mxgate-smtpd
 * and mxgate-popup.
 *
 * Two ways sslserver runs a program:
 *   - SMTPS/POP3S: sslserver does the handshake first and gives the program
 *     plaintext pipes on fd 0/1, PROTO=SSL (or SSL6), and with -s the
 *     SSL_* variables (SSL_PROTOCOL, SSL_CIPHER, SSL_CLIENT_S_DN, ...).
 *     The session is TLS from its first byte: the program does no handshake.
 *   - STARTTLS/STLS (sslserver -n): fd 0/1 are the plain socket, and
 *     SSLCTLFD, SSLREADFD, SSLWRITEFD name a control socket and two pipes.
 *     To start TLS the program writes "Y" to the control socket; sslserver
 *     does the handshake and answers on the control socket with the SSL_*
 *     variables, each "VAR=value\0", the block ending in a second "\0";
 *     from then on the program reads SSLREADFD and writes SSLWRITEFD.
 * SSLCTLFD wins over PROTO=SSL (sslserver -n sets both: the session is not
 * yet TLS); either wins over mxgate's own certificate, TCPLOCALPORT 465/995,
 * SMTPS and POP3S: under sslserver mxgate never runs a handshake itself.
 */
#ifndef MXGATE_UCSPITLS_H
#define MXGATE_UCSPITLS_H
#include <stdbool.h>
#include "tls.h"

enum ucspitls {
  UCSPITLS_NONE,        /* no sslserver: mxgate's own TLS (tcpserver, mxgate-listen) */
  UCSPITLS_ACTIVE,      /* PROTO=SSL without SSLCTLFD: the session is TLS already */
  UCSPITLS_DELAYED,     /* SSLCTLFD/SSLREADFD/SSLWRITEFD: STARTTLS through sslserver */
};

/* which of the three this process runs under; a broken SSLCTLFD set (a
 * descriptor not open) is said on stderr once, as prog, and counts as NONE */
enum ucspitls ucspitls_detect(const char *prog);

/* whether fd is one of SSLCTLFD, SSLREADFD, SSLWRITEFD (mxgate-popup's
 * log descriptor 5 may be one of them under sslserver -n: it is not a log) */
bool ucspitls_fd_named(int fd);

/* the connection's TLS facts from the SSL_* variables sslserver set:
 * protocol, cipher, and the client certificate (valid when sslserver named
 * its subject, SSL_CLIENT_S_DN, and did not say SSL_CLIENT_VERIFY other
 * than SUCCESS) */
void ucspitls_info(struct tls_info *ti);

/* STARTTLS through sslserver: "Y" on the control socket, the environment
 * block read (SSL_* variables only are set, and those set before it are
 * dropped; a block over 64 KiB or one cut short is a failure), then SSLREADFD and SSLWRITEFD moved onto infd and
 * outfd. false with *why when TLS could not be started (the handshake
 * failed: sslserver closed the control socket). */
bool ucspitls_start(int infd, int outfd, int timeout, const char **why);

#endif
