/* spf_eval.c -- check_host() (RFC 7208 4): fetching the one SPF record of
 * a domain, evaluating its mechanisms in order with the lookup, void and
 * name limits, include and redirect, s/qmail's local rules inserted
 * before the final non-pass "all", and the explanation of a fail.
 */
#include "spf_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

enum outcome { NOMATCH, MATCH, TEMPERR, PERMERR };

long long spf_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum outcome problem(struct spf_run *run, enum outcome o, const char *what, const char *name)
{
  if (!run->problem[0] &&
      snprintf(run->problem, sizeof run->problem, "%s%s%s", what, name ? " " : "", name ? name : "")
        >= (int)sizeof run->problem)
    run->problem[sizeof run->problem - 2] = '.';   /* cut short */
  return o;
}

/* a term that queries DNS: at most SPF_LOOKUP_LIMIT, within the time limit */
static enum outcome count_lookup(struct spf_run *run)
{
  if (++run->lookups > SPF_LOOKUP_LIMIT) return problem(run, PERMERR, "more than 10 DNS lookups", NULL);
  if (spf_now_ms() > run->deadline) return problem(run, TEMPERR, "time limit exceeded", NULL);
  return NOMATCH;
}

static enum outcome void_lookup(struct spf_run *run, const char *name)
{
  if (++run->voids > SPF_VOID_LIMIT) return problem(run, PERMERR, "more than 2 void lookups, last", name);
  return NOMATCH;
}

bool spf_cidr_match(const struct dns_ip *ip, const struct dns_ip *net, int bits)
{
  int bytes = bits / 8, rest = bits % 8;
  if (ip->family != net->family) return false;
  if (memcmp(ip->a, net->a, (size_t)bytes) != 0) return false;
  if (!rest) return true;
  unsigned char mask = (unsigned char)(0xff << (8 - rest));
  return (ip->a[bytes] & mask) == (net->a[bytes] & mask);
}

/* does name have an address of the client's family within the term's prefix */
static enum outcome address_match(struct spf_run *run, const char *name,
                                  const struct spf_term *t, bool primary)
{
  struct dns_ips *ips = malloc(sizeof *ips);
  enum outcome o = NOMATCH;
  enum dns_status s;
  if (!ips) return problem(run, TEMPERR, "out of memory", NULL);
  s = dns_ip(run->dns, name, run->ip.family, ips);
  if (s == DNS_TEMP) o = problem(run, TEMPERR, "DNS failure looking up", name);
  else if ((s == DNS_NXDOMAIN || s == DNS_NODATA) && primary) o = void_lookup(run, name);
  for (unsigned i = 0; s == DNS_FOUND && i < ips->n && o == NOMATCH; i++)
    if (spf_cidr_match(&run->ip, &ips->ip[i], run->ip.family == AF_INET ? t->cidr4 : t->cidr6)) o = MATCH;
  free(ips);
  return o;
}

static enum outcome mx_match(struct spf_run *run, const char *name, const struct spf_term *t)
{
  struct dns_mxs *mx = malloc(sizeof *mx);
  enum outcome o = NOMATCH;
  enum dns_status s;
  if (!mx) return problem(run, TEMPERR, "out of memory", NULL);
  s = dns_mx(run->dns, name, mx);
  if (s == DNS_TEMP) o = problem(run, TEMPERR, "DNS failure looking up MX of", name);
  else if (s == DNS_NXDOMAIN || s == DNS_NODATA) o = void_lookup(run, name);
  else if (s == DNS_FOUND && mx->n + mx->dropped > SPF_NAME_LIMIT)
    o = problem(run, PERMERR, "more than 10 MX names for", name);
  for (unsigned i = 0; s == DNS_FOUND && o == NOMATCH && i < mx->n; i++)
    if (mx->mx[i].name[0]) o = address_match(run, mx->mx[i].name, t, false);
  free(mx);
  return o;
}

static enum outcome ptr_match(struct spf_run *run, const char *target)
{
  unsigned n = spf_ptr_names(run);
  for (unsigned i = 0; i < n; i++)
    if (spf_name_within(run->ptr.name[i], target) && spf_ptr_validated(run, i)) return MATCH;
  return NOMATCH;
}

static enum outcome include_match(struct spf_run *run, const char *target)
{
  switch (spf_check_host(run, target, false)) {
    case SPF_PASS: return MATCH;
    case SPF_FAIL: case SPF_SOFTFAIL: case SPF_NEUTRAL: return NOMATCH;
    case SPF_TEMPERROR: return TEMPERR;
    case SPF_NONE: return problem(run, PERMERR, "no SPF record to include at", target);
    default: return PERMERR;
  }
}

static enum outcome term_match(struct spf_run *run, const char *domain, const struct spf_term *t)
{
  char target[DNS_NAME_MAX + 1];
  enum outcome o;
  if (t->mech == MECH_ALL) return MATCH;
  if (t->mech == MECH_IP4 || t->mech == MECH_IP6)
    return spf_cidr_match(&run->ip, &t->net, t->mech == MECH_IP4 ? t->cidr4 : t->cidr6) ? MATCH : NOMATCH;
  if ((o = count_lookup(run)) != NOMATCH) return o;
  if (!t->spec) snprintf(target, sizeof target, "%s", domain);
  else if (!spf_expand_domain(run, domain, t->spec, t->speclen, target, sizeof target))
    return t->mech == MECH_INCLUDE ? problem(run, PERMERR, "bad include target", NULL) : NOMATCH;
  switch (t->mech) {
    case MECH_INCLUDE: return include_match(run, target);
    case MECH_A: return address_match(run, target, t, true);
    case MECH_MX: return mx_match(run, target, t);
    case MECH_PTR: return ptr_match(run, target);
    case MECH_EXISTS:
      switch (dns_exists(run->dns, target)) {
        case DNS_FOUND: return MATCH;
        case DNS_TEMP: return problem(run, TEMPERR, "DNS failure looking up", target);
        case DNS_NXDOMAIN: case DNS_NODATA: return void_lookup(run, target);
        default: return NOMATCH;
      }
    default: return NOMATCH;
  }
}

/* the explanation of a fail: exp= of this record, else the default;
 * a failing exp= is ignored (6.2) */
static void explain(struct spf_run *run, const char *domain, const struct spf_record *rec)
{
  struct spf_answer *out = run->out;
  char name[DNS_NAME_MAX + 1];
  struct dns_txts txt;
  bool done = false;
  if (rec && rec->exp && spf_expand_domain(run, domain, rec->exp, rec->exp_len, name, sizeof name)) {
    if (dns_txt(run->dns, name, &txt) == DNS_FOUND && txt.n == 1 && !txt.dropped &&
        strlen(txt.txt[0]) == txt.len[0])
      done = spf_macro_expand(run, domain, txt.txt[0], txt.len[0], true,
                              out->explanation, sizeof out->explanation);
    dns_txts_free(&txt);
  }
  out->explanation_default = !done;
  if (!done) {
    const char *def = run->default_explanation;
    if (!spf_macro_expand(run, domain, def, strlen(def), true, out->explanation, sizeof out->explanation))
      snprintf(out->explanation, sizeof out->explanation, "SPF check failed");
  }
}

static enum spf_result decided(struct spf_run *run, const char *domain, const struct spf_record *rec,
                               const struct spf_term *t, bool outer, bool local)
{
  if (outer) {
    snprintf(run->out->mechanism, sizeof run->out->mechanism, "%.*s", (int)t->textlen, t->text);
    run->out->local_rule = local;
    if (t->qual == SPF_FAIL) explain(run, domain, local ? NULL : rec);
  }
  return t->qual;
}

/* where spflocalrules go: before the run of same-qualifier -, ~ or ?
 * terms that ends in "all" (as s/qmail does); -1 if there is none */
static int local_rules_at(const struct spf_record *rec)
{
  int start = -1;
  for (unsigned i = 0; i < rec->n; i++) {
    char q = rec->term[i].text[0];
    if (start >= 0 && q != rec->term[start].text[0]) start = -1;
    if (start < 0 && (q == '-' || q == '~' || q == '?')) start = (int)i;
    if (start >= 0 && rec->term[i].mech == MECH_ALL) return start;
  }
  return -1;
}

/* local rules: errors in them are ignored; 1 if one matched */
static bool try_local_rules(struct spf_run *run, const char *domain, enum spf_result *r)
{
  const struct spf_record *lr = run->local_rules;
  for (unsigned i = 0; lr && i < lr->n; i++) {
    unsigned lookups = run->lookups, voids = run->voids;
    enum outcome o = term_match(run, domain, &lr->term[i]);
    if (o == MATCH) { *r = decided(run, domain, lr, &lr->term[i], true, true); return true; }
    if (o != NOMATCH) { run->lookups = lookups; run->voids = voids; run->problem[0] = 0; }
  }
  return false;
}

static enum spf_result evaluate(struct spf_run *run, const char *domain,
                                const struct spf_record *rec, bool outer)
{
  int local_at = outer && run->local_rules ? local_rules_at(rec) : -1;
  char target[DNS_NAME_MAX + 1];
  enum spf_result r;
  for (unsigned i = 0; i < rec->n; i++) {
    if ((int)i == local_at && try_local_rules(run, domain, &r)) return r;
    switch (term_match(run, domain, &rec->term[i])) {
      case MATCH: return decided(run, domain, rec, &rec->term[i], outer, false);
      case TEMPERR: return SPF_TEMPERROR;
      case PERMERR: return SPF_PERMERROR;
      case NOMATCH: break;
    }
  }
  if (!rec->redirect) {
    if (outer) snprintf(run->out->mechanism, sizeof run->out->mechanism, "default");
    return SPF_NEUTRAL;
  }
  if (count_lookup(run) != NOMATCH) return run->lookups > SPF_LOOKUP_LIMIT ? SPF_PERMERROR : SPF_TEMPERROR;
  if (!spf_expand_domain(run, domain, rec->redirect, rec->redirect_len, target, sizeof target)) {
    problem(run, PERMERR, "bad redirect target", NULL);
    return SPF_PERMERROR;
  }
  r = spf_check_host(run, target, outer);
  if (r == SPF_NONE) {
    problem(run, PERMERR, "no SPF record at redirect target", target);
    return SPF_PERMERROR;
  }
  return r;
}

/* the one SPF record of domain (4.4, 4.5) */
static enum spf_result fetch_record(struct spf_run *run, const char *domain,
                                    struct dns_txts *txt, unsigned *which)
{
  unsigned found = 0;
  if (spf_now_ms() > run->deadline) { problem(run, TEMPERR, "time limit exceeded", NULL); return SPF_TEMPERROR; }
  switch (dns_txt(run->dns, domain, txt)) {
    case DNS_FOUND: break;
    case DNS_NXDOMAIN: case DNS_NODATA: return SPF_NONE;
    default: problem(run, TEMPERR, "DNS failure looking up TXT of", domain); return SPF_TEMPERROR;
  }
  for (unsigned i = 0; i < txt->n; i++)
    if (spf_is_record(txt->txt[i], txt->len[i])) { *which = i; found++; }
  if (txt->dropped) { problem(run, PERMERR, "oversized TXT record at", domain); return SPF_PERMERROR; }
  if (found > 1) { problem(run, PERMERR, "more than one SPF record at", domain); return SPF_PERMERROR; }
  return found ? SPF_PASS : SPF_NONE;
}

enum spf_result spf_check_host(struct spf_run *run, const char *domain, bool outer)
{
  struct dns_txts txt;
  struct spf_record *rec;
  unsigned which = 0;
  enum spf_result r;
  char why[SPF_TEXT_MAX];

  if (!dns_name_ok(domain)) return SPF_NONE;
  r = fetch_record(run, domain, &txt, &which);
  if (r != SPF_PASS) {
    dns_txts_free(&txt);
    if (r == SPF_NONE && outer && run->local_rules && try_local_rules(run, domain, &r)) return r;
    return r;
  }
  rec = malloc(sizeof *rec);
  if (!rec) { dns_txts_free(&txt); problem(run, TEMPERR, "out of memory", NULL); return SPF_TEMPERROR; }
  if (!spf_parse(txt.txt[which], txt.len[which], true, rec, why, sizeof why)) {
    problem(run, PERMERR, why, NULL);
    r = SPF_PERMERROR;
  } else {
    r = evaluate(run, domain, rec, outer);
  }
  free(rec);
  dns_txts_free(&txt);
  return r;
}
