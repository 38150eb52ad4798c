/* dns.c -- the c-ares channel of struct dns: opening it from DNSCACHEIP
 * or /etc/resolv.conf, and one synchronous query with a total deadline.
 * Answers are taken apart in dns_answer.c; the record types in dns_rr.c.
 */
#include "dns.h"
#include "dns_int.h"

#include <ares.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct dns {
  ares_channel ch;
  int timeout_ms;
  unsigned long queries;
};

static void set_err(char *err, size_t len, const char *what)
{
  if (err && len) snprintf(err, len, "%s", what);
}

/* "IP" or "IP#PORT" -> c-ares "IP:PORT" / "[IPv6]:PORT"; false if bad */
static bool server_to_csv(const char *item, size_t len, char *out, size_t cap)
{
  char host[64];
  const char *hash = memchr(item, '#', len);
  size_t hlen = hash ? (size_t)(hash - item) : len;
  unsigned long port = 53;
  struct dns_ip ip;

  if (hlen == 0 || hlen >= sizeof host) return false;
  memcpy(host, item, hlen);
  host[hlen] = 0;
  if (hash) {
    char *end;
    const char *p = hash + 1;
    size_t plen = len - hlen - 1;
    char num[8];
    if (plen == 0 || plen >= sizeof num) return false;
    memcpy(num, p, plen);
    num[plen] = 0;
    errno = 0;
    port = strtoul(num, &end, 10);
    if (*end || errno || port == 0 || port > 65535) return false;
  }
  if (!dns_ip_parse(host, &ip)) return false;
  if (strchr(host, ':') && ip.family == AF_INET6)
    return snprintf(out, cap, "[%s]:%lu", host, port) < (int)cap;
  dns_ip_format(&ip, host, sizeof host);
  return snprintf(out, cap, "%s:%lu", host, port) < (int)cap;
}

/* the DNSCACHEIP list as c-ares csv; false if any item is malformed */
static bool servers_csv(const char *spec, char *csv, size_t cap)
{
  size_t used = 0;
  const char *p = spec;
  csv[0] = 0;
  while (*p) {
    size_t n;
    char one[80];
    while (*p == ' ' || *p == ',' || *p == '\t') p++;
    if (!*p) break;
    n = strcspn(p, " ,\t");
    if (!server_to_csv(p, n, one, sizeof one)) return false;
    if (used + strlen(one) + 2 > cap) return false;
    if (used) csv[used++] = ',';
    strcpy(csv + used, one);
    used += strlen(one);
    p += n;
  }
  return used > 0;
}

/* a channel whose tries share total_ms: a third each, 2 tries (c-ares
 * doubles the second round); our own deadline in dns_query caps the sum */
static bool new_channel(ares_channel *ch, int total_ms)
{
  struct ares_options opt;
  memset(&opt, 0, sizeof opt);
  /* NOCHECKRESP: hand SERVFAIL/REFUSED answers to us instead of turning
   * them into "connection refused" (ENVIRONMENT.md) */
  opt.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_NOSEARCH;
  opt.timeout = total_ms / 3 > 0 ? total_ms / 3 : 1;
  opt.tries = 2;
  return ares_init_options(ch, &opt, ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES)
         == ARES_SUCCESS;
}

struct dns *dns_open(const char *servers, char *err, size_t errlen)
{
  char csv[1024];
  struct dns *d;

  if (servers && !servers_csv(servers, csv, sizeof csv)) {
    set_err(err, errlen, "DNSCACHEIP holds no usable IP or IP#PORT");
    return NULL;
  }
  if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
    set_err(err, errlen, "c-ares library init failed");
    return NULL;
  }
  d = calloc(1, sizeof *d);
  if (!d) { ares_library_cleanup(); set_err(err, errlen, "out of memory"); return NULL; }
  d->timeout_ms = DNS_TIMEOUT_MS;
  if (!new_channel(&d->ch, d->timeout_ms)) {
    free(d);
    ares_library_cleanup();
    set_err(err, errlen, "c-ares channel init failed");
    return NULL;
  }
  if (servers && ares_set_servers_ports_csv(d->ch, csv) != ARES_SUCCESS) {
    dns_close(d);
    set_err(err, errlen, "c-ares rejected the DNSCACHEIP servers");
    return NULL;
  }
  return d;
}

struct dns *dns_open_env(char *err, size_t errlen)
{
  const char *s = getenv("DNSCACHEIP");
  return dns_open(s && *s ? s : NULL, err, errlen);
}

void dns_close(struct dns *d)
{
  if (!d) return;
  ares_destroy(d->ch);
  free(d);
  ares_library_cleanup();
}

/* c-ares fixes the per-try timeout at init: a new channel, same servers */
void dns_set_timeout(struct dns *d, int total_ms)
{
  struct ares_addr_port_node *servers = NULL;
  ares_channel ch;
  if (total_ms < 100) total_ms = 100;
  d->timeout_ms = total_ms;
  if (ares_get_servers_ports(d->ch, &servers) != ARES_SUCCESS) return;
  if (new_channel(&ch, total_ms)) {
    if (ares_set_servers_ports(ch, servers) == ARES_SUCCESS) {
      ares_destroy(d->ch);
      d->ch = ch;
    } else {
      ares_destroy(ch);
    }
  }
  ares_free_data(servers);
}

unsigned long dns_queries(const struct dns *d) { return d->queries; }

const char *dns_status_name(enum dns_status s)
{
  switch (s) {
    case DNS_FOUND: return "found";
    case DNS_NXDOMAIN: return "nxdomain";
    case DNS_NODATA: return "nodata";
    case DNS_TEMP: return "temporary failure";
    case DNS_PERM: return "permanent error";
  }
  return "?";
}

struct reply {
  bool done;
  int status;
  unsigned char *buf;
  int len;
};

static void on_reply(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
  struct reply *r = arg;
  (void)timeouts;
  r->done = true;
  r->status = status;
  if (status == ARES_SUCCESS && abuf && alen > 0) {
    r->buf = malloc((size_t)alen);
    if (r->buf) { memcpy(r->buf, abuf, (size_t)alen); r->len = alen; }
    else r->status = ARES_ENOMEM;
  }
}

static long long now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* run the channel until r is done or the deadline passes (then cancel) */
static void wait_reply(struct dns *d, struct reply *r, long long deadline)
{
  while (!r->done) {
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    struct pollfd pfd[ARES_GETSOCK_MAXNUM];
    struct timeval maxtv, tv, *tvp;
    /* the ARES_GETSOCK_* macros shift a signed 1 into the sign bit */
    unsigned bits = (unsigned)ares_getsock(d->ch, socks, ARES_GETSOCK_MAXNUM);
    int n = 0, i, wait;
    long long left = deadline - now_ms();

    if (left <= 0) { ares_cancel(d->ch); break; }
    for (i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
      short ev = 0;
      if (bits & (1u << i)) ev |= POLLIN;
      if (bits & (1u << (i + ARES_GETSOCK_MAXNUM))) ev |= POLLOUT;
      if (!ev) continue;
      pfd[n].fd = socks[i];
      pfd[n].events = ev;
      pfd[n].revents = 0;
      n++;
    }
    maxtv.tv_sec = left / 1000;
    maxtv.tv_usec = (left % 1000) * 1000;
    tvp = ares_timeout(d->ch, &maxtv, &tv);
    wait = (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000);
    if (poll(pfd, (nfds_t)n, wait) < 0 && errno != EINTR) { ares_cancel(d->ch); break; }
    if (n == 0) { ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); continue; }
    for (i = 0; i < n; i++) {
      ares_socket_t rd = (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) ? pfd[i].fd : ARES_SOCKET_BAD;
      ares_socket_t wr = (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD;
      ares_process_fd(d->ch, rd, wr);
    }
  }
}

/* a name as c-ares reads it: backslash is its escape character */
static bool escape_name(const char *name, char *out, size_t cap)
{
  size_t o = 0;
  for (; *name; name++) {
    if (o + 3 > cap) return false;
    if (*name == '\\') out[o++] = '\\';
    out[o++] = *name;
  }
  out[o] = 0;
  return true;
}

enum dns_status dns_query(struct dns *d, const char *name, int type,
                          unsigned char **abuf, int *alen)
{
  struct reply r = { false, ARES_ETIMEOUT, NULL, 0 };
  char qname[2 * DNS_NAME_MAX + 2];

  *abuf = NULL;
  *alen = 0;
  if (!dns_name_ok(name) || !escape_name(name, qname, sizeof qname)) return DNS_PERM;
  d->queries++;
  ares_query(d->ch, qname, 1 /* C_IN */, type, on_reply, &r);
  wait_reply(d, &r, now_ms() + d->timeout_ms);
  switch (r.status) {
    case ARES_SUCCESS:
      if (!r.buf) return DNS_TEMP;
      *abuf = r.buf;
      *alen = r.len;
      return DNS_FOUND;
    case ARES_ENODATA: return DNS_NODATA;
    case ARES_ENOTFOUND: return DNS_NXDOMAIN;
    case ARES_EFORMERR: case ARES_ENOTIMP: case ARES_EBADNAME:
    case ARES_EBADQUERY: case ARES_EBADFAMILY:
      return DNS_PERM;
    default:   /* SERVFAIL, REFUSED, timeout, cancelled, no memory ... */
      return DNS_TEMP;
  }
}

bool dns_name_ok(const char *name)
{
  size_t len = strlen(name), label = 0, i;
  if (len && name[len - 1] == '.') len--;
  if (len == 0 || len > 253) return false;
  for (i = 0; i < len; i++) {
    if (name[i] == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (++label > 63) {
      return false;
    }
  }
  return label > 0;
}
