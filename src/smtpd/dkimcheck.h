/* dkimcheck.h -- DKIMVERIFY (dkim.c) and DKIM signing (dkim_sign.c), content checks. */
#ifndef MXGATE_SMTPD_DKIMCHECK_H
#define MXGATE_SMTPD_DKIMCHECK_H
#include <stddef.h>
#include "str.h"
struct session;
struct dkim_check;
/* NULL unless DKIMVERIFY is set for this client */
struct dkim_check *dkim_check_open(struct session *s);
void dkim_check_feed(struct dkim_check *c, const char *p, size_t n);
/* 1 accept, 0 refuse (reason in detail); adds Authentication-Results to hdrs */
int dkim_check_result(struct dkim_check *c, char *detail, size_t cap, str *hdrs);
void dkim_check_close(struct dkim_check *c);

/* dkim_sign.c: signing for authenticated and relay clients */
struct dkim_sign;
/* NULL unless the client is trusted and control/dkimdomains exists */
struct dkim_sign *dkim_sign_open(struct session *s);
void dkim_sign_feed(struct dkim_sign *g, const char *p, size_t n);
/* 1 go on (DKIM-Signature put first in hdrs when signed), 0 failed (why in detail) */
int dkim_sign_result(struct dkim_sign *g, char *detail, size_t cap, str *hdrs);
void dkim_sign_close(struct dkim_sign *g);
/* NULL, or why DKIMSIGN_HEADERS / DKIMSIGN_CANON are unusable */
const char *dkim_sign_config_error(void);
#endif
