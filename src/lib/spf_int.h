/* spf_int.h -- what the spf*.c files share: the parsed record, the state
 * of one check_host() run, macro expansion and the validated-name cache.
 */
#ifndef MXGATE_SPF_INT_H
#define MXGATE_SPF_INT_H
#include "spf.h"

#define SPF_MAX_TERMS 128     /* terms in one record (more: permerror) */
#define SPF_DOMAIN_BUF 2048   /* a domain-spec while it is being expanded */

enum spf_mech { MECH_ALL, MECH_INCLUDE, MECH_A, MECH_MX, MECH_PTR,
                MECH_IP4, MECH_IP6, MECH_EXISTS };

struct spf_term {
  enum spf_mech mech;
  enum spf_result qual;       /* SPF_PASS, SPF_FAIL, SPF_SOFTFAIL, SPF_NEUTRAL */
  const char *text;           /* the whole term as written */
  size_t textlen;
  const char *spec;           /* domain-spec, NULL when absent */
  size_t speclen;
  int cidr4, cidr6;           /* prefix lengths; 32 and 128 when absent */
  struct dns_ip net;          /* ip4:, ip6: */
};

struct spf_record {
  unsigned n;
  struct spf_term term[SPF_MAX_TERMS];
  const char *redirect, *exp; /* domain-specs of the modifiers, or NULL */
  size_t redirect_len, exp_len;
};

/* parse "v=spf1 ..." (len bytes, may hold anything, NUL-terminated after
 * len); false: permerror,
 * why says what. With version false the text is a bare list of terms
 * (spflocalrules) and modifiers are refused. */
bool spf_parse(const char *txt, size_t len, bool version, struct spf_record *rec,
               char *why, size_t whylen);
/* is txt an SPF version 1 record ("v=spf1" alone or followed by a space) */
bool spf_is_record(const char *txt, size_t len);

struct spf_run {
  struct dns *dns;
  struct dns_ip ip;
  const char *sender, *local, *sender_domain, *helo, *receiver;
  unsigned lookups, voids;
  long long deadline;           /* monotonic ms */
  /* PTR names of ip and which of them validate (shared by ptr and %{p}) */
  bool ptr_done;
  struct dns_names ptr;
  signed char valid[SPF_NAME_LIMIT];   /* -1 unknown, 0 no, 1 yes */
  struct spf_answer *out;
  const struct spf_record *local_rules;
  const char *default_explanation;
  char problem[SPF_TEXT_MAX];
};

/* check_host() of RFC 7208 4 for domain; outer: the sender's own record
 * or one it redirects to (not an include): explanations, the deciding
 * mechanism and local rules apply there */
enum spf_result spf_check_host(struct spf_run *run, const char *domain, bool outer);

/* macro-string syntax (RFC 7208 7.1); explain allows c, r, t and spaces */
bool spf_macro_valid(const char *s, size_t len, bool explain);
/* expand into out (NUL-terminated); false on bad syntax or no room */
bool spf_macro_expand(struct spf_run *run, const char *domain, const char *s,
                      size_t len, bool explain, char *out, size_t cap);
/* expand a domain-spec for a query: trailing dot removed, cut to 253
 * bytes from the left (7.3); false if the result is no valid name */
bool spf_expand_domain(struct spf_run *run, const char *domain, const char *s,
                       size_t len, char *out, size_t cap);
/* the PTR names of the client, looked up once; how many may be used */
unsigned spf_ptr_names(struct spf_run *run);
/* does PTR name i resolve back to the client address (cached) */
bool spf_ptr_validated(struct spf_run *run, unsigned i);
/* is name equal to domain or a subdomain of it */
bool spf_name_within(const char *name, const char *domain);
long long spf_now_ms(void);
/* is ip within net/bits (same family only: IPv4 never matches ip6:) */
bool spf_cidr_match(const struct dns_ip *ip, const struct dns_ip *net, int bits);

#endif
