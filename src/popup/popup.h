/* popup.h -- mxgate-popup: the POP3 AUTHORIZATION state, logging on fd 5. */
#ifndef MXGATE_POPUP_H
#define MXGATE_POPUP_H
#include <stdbool.h>
#include "io.h"
#include "log.h"
#include "str.h"
#include "tls.h"
#include "ucspitls.h"

struct popup {
  const char *hostname;
  char **checkprogram;          /* checkprogram subprogram... */
  struct io_in in;
  struct io_out out;
  int logfd;
  pid_t pid;
  char ip[64], host[256];
  enum tls_mode tls_mode;
  struct tls *tls;               /* mxgate's own TLS connection, or NULL */
  enum ucspitls ucspi;          /* TLS by sslserver: POP3S (PROTO=SSL) or STLS over UCSPI-TLS */
  bool secure;                  /* the session is TLS, by either */
  bool apop, userpass;          /* POP3AUTH: which logins are offered */
  char timestamp[300];          /* the APOP timestamp <pid.time@hostname> */
  str user;                     /* from USER */
  unsigned failures;
  int timeout;
};

/* proxy.c: run the checkprogram on fd 3 with user\0pass\0timestamp\0; a
 * session it starts talks through this process (which keeps any TLS).
 * Returns 1 after a whole session, 0 when the login was refused, -1 when
 * the checkprogram could not be run. */
int login(struct popup *p, const char *user, size_t ulen, const char *pass, size_t plen, const char *stamp,
          enum row_id ok);
/* popup.c: the one place that logs (fd 5, tag qmail-popup) */
void popup_log(struct popup *p, enum row_id row, const char *user, size_t ulen);

int popup_main(int argc, char **argv);
#endif
