/* spf_probe.c -- runs spf_check() through the DNS layer for the RFC 7208
 * test-suite driver (tests/spf/run_suite.py) and by hand.
 *
 *   DNSCACHEIP=127.0.0.1#5353 spf_probe [-t ms] [-l localrules] [-e explain] IP HELO MAILFROM [RECEIVER]
 *   DNSCACHEIP=... spf_probe [options] -      cases on stdin: IP<TAB>HELO<TAB>MAILFROM
 *
 * One output line per case, tab-separated: result, "exp" or "default" or
 * "-", explanation, mechanism, problem, Received-SPF value. DNSCACHEIP
 * must be set: the probe never asks the system's resolvers.
 */
#include "dns.h"
#include "spf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void field(const char *s)
{
  for (; *s; s++) putchar((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e ? '?' : *s);
}

static void probe(struct dns *d, const struct spf_options *opt, const char *ip,
                  const char *helo, const char *from, const char *receiver)
{
  struct spf_answer a;
  str hdr = STR_INIT(4096);
  spf_check(d, ip, helo, from, receiver, opt, &a);
  spf_received_spf(&a, receiver, &hdr);
  field(spf_result_name(a.result)); putchar('\t');
  field(a.result != SPF_FAIL ? "-" : a.explanation_default ? "default" : "exp"); putchar('\t');
  field(a.explanation); putchar('\t');
  field(a.mechanism); putchar('\t');
  field(a.problem); putchar('\t');
  field(str_cstr(&hdr)); putchar('\n');
  fflush(stdout);
  str_free(&hdr);
}

static void from_stdin(struct dns *d, const struct spf_options *opt, const char *receiver)
{
  char line[4096];
  while (fgets(line, sizeof line, stdin)) {
    char *ip = line, *helo, *from;
    line[strcspn(line, "\n")] = 0;
    if (!(helo = strchr(ip, '\t')) || !(from = strchr(helo + 1, '\t'))) {
      printf("permerror\t-\t\t\tbad input line\t\n");
      continue;
    }
    *helo++ = 0;
    *from++ = 0;
    probe(d, opt, ip, helo, from, receiver);
  }
}

int main(int argc, char **argv)
{
  struct spf_options opt = { NULL, NULL, 0 };
  char err[128];
  struct dns *d;
  int c, timeout = 0;
  while ((c = getopt(argc, argv, "t:l:e:")) != -1) {
    switch (c) {
      case 't': timeout = atoi(optarg); break;
      case 'l': opt.local_rules = optarg; break;
      case 'e': opt.default_explanation = optarg; break;
      default: return 2;
    }
  }
  if (!getenv("DNSCACHEIP")) { fprintf(stderr, "spf_probe: set DNSCACHEIP\n"); return 2; }
  if (!(d = dns_open_env(err, sizeof err))) { fprintf(stderr, "spf_probe: %s\n", err); return 2; }
  if (timeout > 0) dns_set_timeout(d, timeout);
  if (optind < argc && strcmp(argv[optind], "-") == 0)
    from_stdin(d, &opt, optind + 1 < argc ? argv[optind + 1] : "mx.receiver.test");
  else if (argc - optind >= 3)
    probe(d, &opt, argv[optind], argv[optind + 1], argv[optind + 2],
          argc - optind > 3 ? argv[optind + 3] : "mx.receiver.test");
  else { fprintf(stderr, "usage: spf_probe [-t ms] [-l rules] [-e exp] IP HELO MAILFROM [RECEIVER] | -\n"); dns_close(d); return 2; }
  dns_close(d);
  return 0;
}
