/* spf.c -- the entry point spf_check(): which identity is checked (MAIL
 * FROM, or postmaster@HELO for the null sender), the initial checks of
 * RFC 7208 4.3, the local rules and default explanation of the options,
 * and the client's PTR names shared by the ptr mechanism and %{p}.
 */
#include "spf_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *spf_result_name(enum spf_result r)
{
  switch (r) {
    case SPF_NONE: return "none";
    case SPF_NEUTRAL: return "neutral";
    case SPF_PASS: return "pass";
    case SPF_FAIL: return "fail";
    case SPF_SOFTFAIL: return "softfail";
    case SPF_TEMPERROR: return "temperror";
    case SPF_PERMERROR: return "permerror";
  }
  return "permerror";
}

unsigned spf_ptr_names(struct spf_run *run)
{
  if (!run->ptr_done) {
    run->ptr_done = true;
    if (dns_ptr(run->dns, &run->ip, &run->ptr) != DNS_FOUND) run->ptr.n = 0;
    memset(run->valid, -1, sizeof run->valid);
  }
  return run->ptr.n < SPF_NAME_LIMIT ? run->ptr.n : SPF_NAME_LIMIT;
}

bool spf_ptr_validated(struct spf_run *run, unsigned i)
{
  if (i >= SPF_NAME_LIMIT || i >= run->ptr.n) return false;
  if (run->valid[i] < 0) {
    struct dns_ips *ips = malloc(sizeof *ips);
    run->valid[i] = 0;
    if (ips && dns_ip(run->dns, run->ptr.name[i], run->ip.family, ips) == DNS_FOUND)
      for (unsigned k = 0; k < ips->n; k++)
        if (dns_ip_equal(&ips->ip[k], &run->ip)) run->valid[i] = 1;
    free(ips);
  }
  return run->valid[i] == 1;
}

static bool copy(char *dst, size_t cap, const char *src, size_t len)
{
  if (len >= cap) return false;
  memcpy(dst, src, len);
  dst[len] = 0;
  return true;
}

/* sender -> out->sender, local part and domain (4.3: an empty local part
 * is "postmaster"; the null sender checks postmaster@HELO) */
static bool identity(const char *sender, const char *helo, struct spf_answer *out,
                     char *local, size_t localcap)
{
  const char *at;
  if (!sender || !*sender || strcmp(sender, "<>") == 0) {
    out->helo_identity = true;
    sender = helo;
  }
  at = strrchr(sender, '@');
  if (out->helo_identity || !at) {
    if (!copy(out->domain, sizeof out->domain, sender, strlen(sender))) return false;
    snprintf(local, localcap, "postmaster");
  } else {
    if (!copy(out->domain, sizeof out->domain, at + 1, strlen(at + 1))) return false;
    if (!copy(local, localcap, sender, (size_t)(at - sender))) return false;
    if (!*local) snprintf(local, localcap, "postmaster");
  }
  return (size_t)snprintf(out->sender, sizeof out->sender, "%s@%s", local, out->domain)
         < sizeof out->sender;
}

/* 4.3: a malformed or single-label domain, or a literal, has no policy */
static bool domain_checkable(const char *domain)
{
  const char *dot = strchr(domain, '.');
  if (!*domain || domain[0] == '[' || !dns_name_ok(domain)) return false;
  return dot && dot[1] != 0;
}

static void finish(struct spf_answer *out, struct spf_run *run, enum spf_result r)
{
  out->result = r;
  out->lookups = run->lookups;
  out->voids = run->voids;
  if (r == SPF_TEMPERROR || r == SPF_PERMERROR)
    snprintf(out->problem, sizeof out->problem, "%s", run->problem[0] ? run->problem : "error");
  if (r != SPF_FAIL) { out->explanation[0] = 0; out->explanation_default = false; }
  if (r == SPF_NONE || r == SPF_TEMPERROR || r == SPF_PERMERROR) out->mechanism[0] = 0;
}

enum spf_result spf_check(struct dns *d, const char *client_ip, const char *helo,
                          const char *sender, const char *receiver,
                          const struct spf_options *opt, struct spf_answer *out)
{
  struct spf_run *run = calloc(1, sizeof *run);
  struct spf_record *local_rules = NULL;
  char local[2 * SPF_TEXT_MAX];
  enum spf_result r = SPF_NONE;

  memset(out, 0, sizeof *out);
  if (!helo) helo = "";
  snprintf(out->client_ip, sizeof out->client_ip, "%s", client_ip ? client_ip : "");
  snprintf(out->helo, sizeof out->helo, "%s", helo);
  if (!run) { snprintf(out->problem, sizeof out->problem, "out of memory"); return out->result = SPF_TEMPERROR; }
  run->dns = d;
  run->out = out;
  if (!client_ip || !dns_ip_parse(client_ip, &run->ip)) {
    snprintf(run->problem, sizeof run->problem, "bad client address");
    r = SPF_PERMERROR;
  } else if (!identity(sender, helo, out, local, sizeof local) || !domain_checkable(out->domain)) {
    snprintf(run->problem, sizeof run->problem, "no checkable domain");
    r = SPF_NONE;
  } else {
    dns_ip_format(&run->ip, out->client_ip, sizeof out->client_ip);
    run->sender = out->sender;
    run->local = local;
    run->sender_domain = out->domain;
    run->helo = helo;
    run->receiver = receiver;
    run->default_explanation = opt && opt->default_explanation && *opt->default_explanation
                               ? opt->default_explanation : SPF_DEFAULT_EXPLANATION;
    run->deadline = spf_now_ms() + (opt && opt->time_limit_ms > 0 ? opt->time_limit_ms : SPF_TIME_LIMIT_MS);
    if (opt && opt->local_rules && *opt->local_rules && (local_rules = malloc(sizeof *local_rules))) {
      if (spf_parse(opt->local_rules, strlen(opt->local_rules), false, local_rules, NULL, 0))
        run->local_rules = local_rules;
    }
    r = spf_check_host(run, out->domain, true);
  }
  finish(out, run, r);
  free(local_rules);
  free(run);
  return r;
}
