/* cli.c -- mxgate-sessions' options and the run over every input. */
#include "sessions.h"
#include <getopt.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double when(const char *s)
{
  struct tm tm = { 0 };
  if (strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) || strptime(s, "%Y-%m-%d %H:%M:%S", &tm) || strptime(s, "%Y-%m-%d", &tm))
    return (double)timegm(&tm);
  return atof(s);
}

static int usage(void)
{
  fputs("usage: mxgate-sessions [--format text|json|csv] [--summary] [--prometheus] [--html FILE]\n"
        "         [--ip IP] [--from ADDR] [--to ADDR] [--user USER] [--action ACTION] [--row ROW]\n"
        "         [--pid PID] [--qp QP] [--since TIME] [--until TIME] [--threads N] [-f] [FILE|DIR|-]...\n", stderr);
  return 2;
}

int sessions_main(int argc, char **argv)
{
  static struct option opts[] = {
    { "format", 1, 0, 'F' }, { "summary", 0, 0, 's' }, { "prometheus", 0, 0, 'P' }, { "html", 1, 0, 'H' },
    { "ip", 1, 0, 'i' }, { "from", 1, 0, 'r' }, { "to", 1, 0, 't' }, { "user", 1, 0, 'u' }, { "action", 1, 0, 'a' },
    { "row", 1, 0, 'R' }, { "pid", 1, 0, 'p' }, { "since", 1, 0, 'S' }, { "until", 1, 0, 'U' },
    { "follow", 0, 0, 'f' }, { "threads", 1, 0, 'j' }, { "qp", 1, 0, 'q' }, { "help", 0, 0, 'h' }, { 0, 0, 0, 0 },
  };
  /* sessions come and go by the million: keep freed memory instead of
   * returning it to the kernel, whose unmapping stops the other threads */
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_MMAP_THRESHOLD, 16 << 20);
  struct report r = { .out = stdout, .format = FMT_TEXT };
  bool follow = false;
  int c;
  while ((c = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
    switch (c) {
    case 'F':
      if (!strcmp(optarg, "json")) r.format = FMT_JSON;
      else if (!strcmp(optarg, "csv")) r.format = FMT_CSV;
      else if (!strcmp(optarg, "text")) r.format = FMT_TEXT;
      else return usage();
      break;
    case 's': r.summary = true; break;
    case 'P': r.prometheus = true; break;
    case 'H': r.html = optarg; break;
    case 'i': r.filter.ip = optarg; break;
    case 'r': r.filter.from = optarg; break;
    case 't': r.filter.to = optarg; break;
    case 'u': r.filter.user = optarg; break;
    case 'a': r.filter.action = optarg; break;
    case 'R': r.filter.row = optarg; break;
    case 'p': r.filter.pid = atol(optarg); break;
    case 'q': r.filter.has_qp = true; r.filter.qp = atol(optarg); break;
    case 'S': r.filter.since = when(optarg); break;
    case 'U': r.filter.until = when(optarg); break;
    case 'f': follow = true; break;
    case 'j': r.threads = atol(optarg); if (r.threads < 1) return usage(); break;
    default: return usage();
    }
  }
  /* the reports replace the session listing */
  r.quiet = r.summary || r.prometheus || (r.html && r.format == FMT_TEXT);
  if (r.summary || r.prometheus || r.html) r.sum = summary_new(r.html != NULL);
  struct filter none = { 0 };
  r.stream = r.quiet && !r.html && !memcmp(&r.filter, &none, sizeof none);
  struct table *t = table_new();
  if (!t) return 111;
  /* delivery lines join their sessions when the logs can be read twice
   * (deliveries.c); standard input and -f are read once */
  bool twice = !r.stream && !follow && optind < argc;
  for (int i = optind; i < argc; i++) if (!strcmp(argv[i], "-")) twice = false;
  if (!r.stream && !(r.dlv = deliveries_new(twice ? DLV_INDEXING : DLV_LIVE))) return 111;
  if (twice) {
    for (int i = optind; i < argc; i++) read_input(argv[i], t, &r, false);     /* errors: told in the second reading */
    deliveries_resolve(r.dlv);
    r.dlv->phase = DLV_JOINING;
    r.lines = r.unrecognised = 0;
  }
  int rc = 0;
  if (optind == argc) rc = read_input("-", t, &r, follow);
  for (int i = optind; i < argc; i++)
    if (read_input(argv[i], t, &r, follow && i == argc - 1) < 0) { perror(argv[i]); rc = 1; }
  table_flush(t, &r);
  report_unjoined(&r);
  if (r.summary) summary_print(r.sum, &r, stdout);
  if (r.prometheus) summary_prometheus(r.sum, &r, stdout);
  if (r.html && summary_html(r.sum, &r, r.html, NULL) < 0) { perror(r.html); rc = 1; }
  table_free(t);
  summary_free(r.sum);
  deliveries_free(r.dlv);
  return rc ? 1 : 0;
}
