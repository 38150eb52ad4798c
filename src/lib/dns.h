/* dns.h -- the resolver the smtpd checks use: A, AAAA, MX, TXT, PTR.
 *
 * One struct dns holds a c-ares channel (no globals). It is pointed at
 * the resolvers named in DNSCACHEIP ("IP" or "IP#PORT", several separated
 * by blanks or commas) or, when that is unset, at /etc/resolv.conf. Every
 * call is synchronous and bounded: one query takes at most timeout_ms in
 * total (retries included), and an answer keeps at most DNS_MAX_RR
 * records; a TXT record longer than DNS_TXT_MAX bytes is dropped and
 * counted. CNAME chains in an answer are followed by name (the recursive
 * resolver supplies them); a chain that does not end within DNS_MAX_CNAME
 * hops counts as a temporary failure, as a resolver's SERVFAIL would.
 *
 * Every result says which of five things happened, so that a temporary
 * failure is never mistaken for a missing record (docs/dns.md).
 */
#ifndef MXGATE_DNS_H
#define MXGATE_DNS_H
#include <stdbool.h>
#include <stddef.h>

#define DNS_MAX_RR      64     /* records kept from one answer */
#define DNS_MAX_MX      32     /* MX records kept */
#define DNS_MAX_NAMES   32     /* PTR names kept */
#define DNS_TXT_MAX     4096   /* bytes of one TXT record, strings joined */
#define DNS_NAME_MAX    255    /* text form of a name, with room for a dot */
#define DNS_MAX_CNAME   8      /* CNAME hops followed inside one answer */
#define DNS_TIMEOUT_MS  5000   /* default total time for one query */

enum dns_status {
  DNS_FOUND = 0,  /* records of the asked type */
  DNS_NXDOMAIN,   /* the name does not exist (rcode NXDOMAIN) */
  DNS_NODATA,     /* the name exists but has no record of that type */
  DNS_TEMP,       /* SERVFAIL, REFUSED, timeout, no server: try later */
  DNS_PERM        /* malformed name or answer, FORMERR, NOTIMP */
};

struct dns;

/* servers: NULL for /etc/resolv.conf; else the DNSCACHEIP syntax. A
 * servers string that cannot be parsed is an error (NULL, err filled):
 * it never falls back to resolv.conf. */
struct dns *dns_open(const char *servers, char *err, size_t errlen);
/* dns_open(getenv("DNSCACHEIP"), ...) */
struct dns *dns_open_env(char *err, size_t errlen);
void dns_close(struct dns *d);
/* total milliseconds one query may take (default DNS_TIMEOUT_MS) */
void dns_set_timeout(struct dns *d, int total_ms);
/* queries sent so far (for tests and limits) */
unsigned long dns_queries(const struct dns *d);
const char *dns_status_name(enum dns_status s);

struct dns_ip {
  int family;               /* AF_INET or AF_INET6 */
  unsigned char a[16];      /* 4 or 16 bytes, network order */
};
/* parse text; an IPv4-mapped IPv6 address becomes IPv4 */
bool dns_ip_parse(const char *text, struct dns_ip *out);
/* dotted quad, or RFC 5952 IPv6 text; buf of 46 bytes is enough */
void dns_ip_format(const struct dns_ip *ip, char *buf, size_t len);
bool dns_ip_equal(const struct dns_ip *a, const struct dns_ip *b);

struct dns_ips {
  unsigned n, dropped;
  struct dns_ip ip[DNS_MAX_RR];
};
/* family AF_INET (A) or AF_INET6 (AAAA); out is filled from scratch */
enum dns_status dns_ip(struct dns *d, const char *name, int family,
                       struct dns_ips *out);
/* A and AAAA: FOUND if either has records; TEMP if neither has and one
 * failed temporarily; else NXDOMAIN or NODATA */
enum dns_status dns_ip_any(struct dns *d, const char *name, struct dns_ips *out);
/* "exists": does name have an A record */
enum dns_status dns_exists(struct dns *d, const char *name);

struct dns_mx {
  unsigned pref;
  char name[DNS_NAME_MAX + 1];   /* "" for the null MX "." (RFC 7505) */
};
struct dns_mxs {
  unsigned n, dropped;
  bool implicit;                 /* made by dns_mx_implicit from A/AAAA */
  struct dns_mx mx[DNS_MAX_MX];
};
/* MX records sorted by preference (stable: answer order within one) */
enum dns_status dns_mx(struct dns *d, const char *name, struct dns_mxs *out);
/* RFC 5321 5.1: no MX records but an address -> the domain itself as its
 * one MX, preference 0, implicit set */
enum dns_status dns_mx_implicit(struct dns *d, const char *name, struct dns_mxs *out);
/* the domain publishes the null MX: it accepts no mail */
bool dns_mx_is_null(const struct dns_mxs *m);

struct dns_txts {
  unsigned n, dropped;           /* dropped: over DNS_MAX_RR or DNS_TXT_MAX */
  size_t len[DNS_MAX_RR];        /* a record may hold NUL bytes */
  char *txt[DNS_MAX_RR];         /* each NUL-terminated (not counted) */
};
/* TXT records, each one's strings joined without separator (RFC 7208 3.3);
 * call dns_txts_free afterwards whatever the result */
enum dns_status dns_txt(struct dns *d, const char *name, struct dns_txts *out);
void dns_txts_free(struct dns_txts *t);

struct dns_names {
  unsigned n, dropped;
  char name[DNS_MAX_NAMES][DNS_NAME_MAX + 1];
};
/* PTR names of an address (in-addr.arpa / ip6.arpa) */
enum dns_status dns_ptr(struct dns *d, const struct dns_ip *ip, struct dns_names *out);
/* the reverse name of ip: 4.3.2.1.in-addr.arpa, nibbles.ip6.arpa */
void dns_reverse_name(const struct dns_ip *ip, char *buf, size_t len);

/* can name be asked at all: 1..253 bytes, labels 1..63, no NUL; a trailing
 * dot is allowed */
bool dns_name_ok(const char *name);
/* ASCII case-insensitive, a trailing dot on either side ignored */
bool dns_name_equal(const char *a, const char *b);

#endif
