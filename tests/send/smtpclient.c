/* smtpclient.c -- a command-line driver over mxgate-send's SMTP/LMTP
 * client (src/send/client.c), for the integration tests
 * (tests/it/test_send_client.py):
 *
 *   smtpclient [--lmtp] [--unix PATH] [--tls may|none|verify] [--ca FILE]
 *              [--auth USER:PASS] [--name HOSTNAME] [--timeout S]
 *              [--twice] [--prepend TEXT] [--vmhwm] IP PORT HELO SENDER RCPT... < message
 *
 * The message (LF line ends, as queued) is sent once, or with --twice two
 * times on the same connection. Per transaction one line per recipient,
 * "STATE REPLY", then "more yes|no" (whether the connection can carry
 * another); at the end "proto PROTO verified yes|no". When no connection
 * can be had: "STATE WHY" per recipient and "proto none verified no".
 * --vmhwm adds a last line "vmhwm KB", the peak resident memory of this
 * program (/proc/self/status: rusage would count the memory of the
 * process that forked it, before the exec).
 */
#include "send.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void)
{
  fprintf(stderr, "usage: smtpclient [--lmtp] [--unix PATH] [--tls may|none|verify] [--ca FILE] "
                  "[--auth USER:PASS] [--name HOST] [--timeout S] [--twice] [--prepend TEXT] [--vmhwm] "
                  "IP PORT HELO SENDER RCPT... < message\n");
  exit(2);
}

/* stdin into an unlinked temporary file: the client reads the message by offset */
static int message_file(unsigned long long *len)
{
  char path[] = "/tmp/smtpclient-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) { perror("mkstemp"); exit(2); }
  unlink(path);
  char buf[65536];
  ssize_t r;
  *len = 0;
  /* a few bytes of header first, so that msgoff is not 0 as in a queue entry */
  if (write(fd, "HDR\n", 4) != 4) exit(2);
  while ((r = read(0, buf, sizeof buf)) > 0) {
    if (write(fd, buf, (size_t)r) != r) { perror("write"); exit(2); }
    *len += (unsigned long long)r;
  }
  return fd;
}

static bool set_tls(struct hop *h, const char *v)
{
  if (strcmp(v, "may") == 0) h->tls = HOP_TLS_MAY;
  else if (strcmp(v, "none") == 0) h->tls = HOP_TLS_NONE;
  else if (strcmp(v, "verify") == 0) { h->tls = HOP_TLS_REQUIRE; h->cert = HOP_CERT_NAME; }
  else return false;
  return true;
}

static void print_vmhwm(void)
{
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0) printf("vmhwm %ld\n", strtol(line + 6, NULL, 10));
  if (f) fclose(f);
}

static void print_outcomes(const struct rcpt_outcome *out, size_t n)
{
  for (size_t i = 0; i < n; i++) printf("%c %s\n", out[i].state, out[i].reply);
}

int main(int argc, char **argv)
{
  struct hop h = { .port = 25, .tls = HOP_TLS_MAY };
  int timeout = 60, times = 1, i = 1;
  bool vmhwm = false;
  const char *prepend = NULL;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(o, "--lmtp") == 0) { h.lmtp = true; continue; }
    if (strcmp(o, "--twice") == 0) { times = 2; continue; }
    if (strcmp(o, "--vmhwm") == 0) { vmhwm = true; continue; }
    if (!v) usage();
    i++;
    if (strcmp(o, "--unix") == 0) snprintf(h.unixpath, sizeof h.unixpath, "%s", v);
    else if (strcmp(o, "--tls") == 0) { if (!set_tls(&h, v)) usage(); }
    else if (strcmp(o, "--ca") == 0) snprintf(h.ca_file, sizeof h.ca_file, "%s", v);
    else if (strcmp(o, "--name") == 0) snprintf(h.name, sizeof h.name, "%s", v);
    else if (strcmp(o, "--timeout") == 0) timeout = atoi(v);
    else if (strcmp(o, "--prepend") == 0) prepend = v;
    else if (strcmp(o, "--auth") == 0) {
      const char *colon = strchr(v, ':');
      if (!colon) usage();
      snprintf(h.auth_user, sizeof h.auth_user, "%.*s", (int)(colon - v), v);
      snprintf(h.auth_pass, sizeof h.auth_pass, "%s", colon + 1);
    } else usage();
  }
  if (argc - i < 5) usage();
  if (!h.unixpath[0]) snprintf(h.ip, sizeof h.ip, "%s", argv[i]);
  h.port = (unsigned)atoi(argv[i + 1]);
  if (!h.name[0]) snprintf(h.name, sizeof h.name, "%s", argv[i]);
  struct outgoing m = { .helo = argv[i + 2], .sender = argv[i + 3], .rcpt = (const char *const *)argv + i + 4,
                        .nrcpt = (size_t)(argc - i - 4), .msgoff = 4, .prepend = prepend };
  m.msgfd = message_file(&m.msglen);
  struct rcpt_outcome *out = calloc(m.nrcpt, sizeof *out);
  char state = 'p', why[512] = "";
  struct smtp_conn *c = smtp_open(&h, m.helo, timeout, &state, why, sizeof why);
  if (!c) {
    for (size_t k = 0; k < m.nrcpt; k++) printf("%c %s\n", state, why);
    printf("proto none verified no\n");
    if (vmhwm) print_vmhwm();
    free(out);
    return 0;
  }
  for (int t = 0; t < times; t++) {
    bool more = smtp_send(c, &m, out);
    print_outcomes(out, m.nrcpt);
    printf("more %s\n", more ? "yes" : "no");
  }
  printf("proto %s verified %s\n", smtp_proto(c), smtp_tls_verified(c) ? "yes" : "no");
  smtp_close(c);
  if (vmhwm) print_vmhwm();
  free(out);
  return 0;
}
