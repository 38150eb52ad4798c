/* dns_probe.c -- one DNS-layer call from the command line, for the tests
 * of the DNS layer against dnsmasq and tests/spf/zonedns.py.
 *
 *   DNSCACHEIP=127.0.0.1#5353 dns_probe [-t ms] a|aaaa|ip|exists|mx|mxi|txt|ptr NAME
 *
 * First line: the status name ("found", "nxdomain", "nodata", "temporary
 * failure", "permanent error") and counts; then one line per record
 * (TXT: length, a tab, the text with bytes outside 0x20-0x7e as \xNN).
 * DNSCACHEIP must be set: the probe never asks the system's resolvers.
 */
#include "dns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void print_ips(const struct dns_ips *ips)
{
  char buf[64];
  for (unsigned i = 0; i < ips->n; i++) {
    dns_ip_format(&ips->ip[i], buf, sizeof buf);
    printf("%s\n", buf);
  }
}

static void print_txt(const char *s, size_t len)
{
  printf("%zu\t", len);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c > 0x7e || c == '\\') printf("\\x%02x", c);
    else putchar(c);
  }
  putchar('\n');
}

static int run(struct dns *d, const char *type, const char *name)
{
  enum dns_status s;
  if (!strcmp(type, "a") || !strcmp(type, "aaaa") || !strcmp(type, "ip")) {
    struct dns_ips *ips = malloc(sizeof *ips);
    if (!ips) return 1;
    s = !strcmp(type, "ip") ? dns_ip_any(d, name, ips) : dns_ip(d, name, type[1] == 'a' ? AF_INET6 : AF_INET, ips);
    printf("%s n=%u dropped=%u\n", dns_status_name(s), ips->n, ips->dropped);
    print_ips(ips);
    free(ips);
  } else if (!strcmp(type, "exists")) {
    printf("%s\n", dns_status_name(dns_exists(d, name)));
  } else if (!strcmp(type, "mx") || !strcmp(type, "mxi")) {
    struct dns_mxs *mx = malloc(sizeof *mx);
    if (!mx) return 1;
    s = type[2] ? dns_mx_implicit(d, name, mx) : dns_mx(d, name, mx);
    printf("%s n=%u dropped=%u implicit=%d null=%d\n", dns_status_name(s), mx->n, mx->dropped,
           mx->implicit, dns_mx_is_null(mx));
    for (unsigned i = 0; i < mx->n; i++) printf("%u %s\n", mx->mx[i].pref, mx->mx[i].name);
    free(mx);
  } else if (!strcmp(type, "txt")) {
    struct dns_txts txt;
    s = dns_txt(d, name, &txt);
    printf("%s n=%u dropped=%u\n", dns_status_name(s), txt.n, txt.dropped);
    for (unsigned i = 0; i < txt.n; i++) print_txt(txt.txt[i], txt.len[i]);
    dns_txts_free(&txt);
  } else if (!strcmp(type, "ptr")) {
    struct dns_ip ip;
    struct dns_names *names = malloc(sizeof *names);
    if (!names || !dns_ip_parse(name, &ip)) { free(names); return 2; }
    s = dns_ptr(d, &ip, names);
    printf("%s n=%u dropped=%u\n", dns_status_name(s), names->n, names->dropped);
    for (unsigned i = 0; i < names->n; i++) printf("%s\n", names->name[i]);
    free(names);
  } else {
    return 2;
  }
  return 0;
}

int main(int argc, char **argv)
{
  char err[128];
  struct dns *d;
  int c, timeout = 0, rc;
  while ((c = getopt(argc, argv, "t:")) != -1) {
    if (c != 't') return 2;
    timeout = atoi(optarg);
  }
  if (argc - optind != 2) { fprintf(stderr, "usage: dns_probe [-t ms] TYPE NAME\n"); return 2; }
  if (!getenv("DNSCACHEIP")) { fprintf(stderr, "dns_probe: set DNSCACHEIP\n"); return 2; }
  if (!(d = dns_open_env(err, sizeof err))) { fprintf(stderr, "dns_probe: %s\n", err); return 2; }
  if (timeout > 0) dns_set_timeout(d, timeout);
  rc = run(d, argv[optind], argv[optind + 1]);
  printf("queries=%lu\n", dns_queries(d));
  dns_close(d);
  return rc;
}
