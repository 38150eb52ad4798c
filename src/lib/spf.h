/* spf.h -- Sender Policy Framework (RFC 7208): check_host() for the MAIL
 * FROM identity (or postmaster@HELO when MAIL FROM is <>), with every
 * mechanism and modifier, the macro language, the processing limits
 * (10 lookup terms, 2 void lookups, 10 MX/PTR names), the explanation for
 * "fail", s/qmail's local rules, and the Received-SPF header value.
 * All DNS goes through dns.h. docs/spf.md describes the behaviour.
 */
#ifndef MXGATE_SPF_H
#define MXGATE_SPF_H
#include <stdbool.h>
#include "dns.h"
#include "str.h"

enum spf_result {
  SPF_NONE = 0,
  SPF_NEUTRAL,
  SPF_PASS,
  SPF_FAIL,
  SPF_SOFTFAIL,
  SPF_TEMPERROR,
  SPF_PERMERROR
};

#define SPF_LOOKUP_LIMIT 10      /* terms causing DNS lookups (4.6.4) */
#define SPF_VOID_LIMIT   2       /* lookups answering NXDOMAIN or no data */
#define SPF_NAME_LIMIT   10      /* MX names, PTR names looked at */
#define SPF_TIME_LIMIT_MS 20000  /* whole check_host() (RFC 7208 4.6.4) */
#define SPF_EXPLAIN_MAX  512
#define SPF_TEXT_MAX     256

/* s/qmail's default explanation, in the macro language */
#define SPF_DEFAULT_EXPLANATION \
  "See http://www.open-spf.org/Why?s=mfrom&id=%{S}&ip=%{C}&r=%{R}"

struct spf_options {
  /* control/spflocalrules: extra mechanisms tried before the final
   * non-pass "all" of the sender's own record (or alone when the domain
   * has none); NULL or "" for none */
  const char *local_rules;
  /* control/spfexplain: explanation used when the record gives none;
   * NULL for SPF_DEFAULT_EXPLANATION */
  const char *default_explanation;
  int time_limit_ms;             /* 0: SPF_TIME_LIMIT_MS */
};

struct spf_answer {
  enum spf_result result;
  bool helo_identity;                  /* MAIL FROM was <>: postmaster@HELO */
  char client_ip[48];
  char helo[SPF_TEXT_MAX];
  char sender[2 * SPF_TEXT_MAX];       /* the identity checked (local@domain) */
  char domain[SPF_TEXT_MAX];           /* its domain */
  char mechanism[SPF_TEXT_MAX];        /* the term that decided, as written;
                                          "default" if none matched */
  bool local_rule;                     /* the term came from spflocalrules */
  char explanation[SPF_EXPLAIN_MAX];   /* for fail */
  bool explanation_default;            /* not from the record's exp= */
  char problem[SPF_TEXT_MAX];          /* why temperror / permerror */
  unsigned lookups, voids;
};

/* check client_ip (text, v4, v6 or v4-mapped) sending for sender (MAIL
 * FROM without <>; "" for the null sender) after helo; receiver is our
 * name for %{r}. opt may be NULL. Returns out->result. */
enum spf_result spf_check(struct dns *d, const char *client_ip, const char *helo,
                          const char *sender, const char *receiver,
                          const struct spf_options *opt, struct spf_answer *out);

const char *spf_result_name(enum spf_result r);   /* "pass", "permerror", ... */

/* the Received-SPF: field body (RFC 7208 9.1) without the field name and
 * without a line end, e.g. `pass (mx.test: domain of a@b.test designates
 * 192.0.2.1 as permitted sender) client-ip=192.0.2.1; ...` */
bool spf_received_spf(const struct spf_answer *a, const char *receiver, str *out);

#endif
