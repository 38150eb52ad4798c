/* dkimcheck.h -- DKIMVERIFY, one of the content checks (dkim.c). */
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
#endif
