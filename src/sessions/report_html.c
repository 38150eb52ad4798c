/* report_html.c -- --html FILE: one self-contained page (no external
 * assets): the summary, two SVG charts drawn here (decisions per hour by
 * action, top decision rows) and the session list with a search box. */
#include "summary.h"
#include <stdio.h>
#include <string.h>

static void esc(FILE *o, const char *s)
{
  for (; *s; s++)
    if (*s == '<') fputs("&lt;", o); else if (*s == '&') fputs("&amp;", o); else if (*s == '"') fputs("&quot;", o);
    else fputc((unsigned char)*s < 0x20 ? ' ' : *s, o);
}

static void hours_chart(FILE *o, const struct summary *s)
{
  static const char *color[3] = { "#3a7d44", "#c0392b", "#d68910" };
  unsigned long max = 1;
  for (int h = 0; h < 24; h++) { unsigned long t = s->hour[h][0] + s->hour[h][1] + s->hour[h][2]; if (t > max) max = t; }
  fprintf(o, "<svg width=\"760\" height=\"240\" role=\"img\" aria-label=\"decisions per hour\">\n");
  for (int h = 0; h < 24; h++) {
    double y = 210;
    for (int a = 0; a < 3; a++) {
      double hgt = 190.0 * (double)s->hour[h][a] / (double)max;
      y -= hgt;
      fprintf(o, "<rect x=\"%d\" y=\"%.1f\" width=\"24\" height=\"%.1f\" fill=\"%s\"><title>%02d:00 %lu</title></rect>\n",
              40 + h * 30, y, hgt, color[a], h, s->hour[h][a]);
    }
    fprintf(o, "<text x=\"%d\" y=\"228\" font-size=\"10\">%02d</text>\n", 44 + h * 30, h);
  }
  fprintf(o, "<text x=\"4\" y=\"20\" font-size=\"11\">%lu</text><line x1=\"36\" y1=\"210\" x2=\"760\" y2=\"210\" "
             "stroke=\"#555\"/></svg>\n<p><span style=\"color:#3a7d44\">&#9632; Accept</span> "
             "<span style=\"color:#c0392b\">&#9632; Reject</span> <span style=\"color:#d68910\">&#9632; Deferred</span></p>\n",
          max);
}

static void rows_chart(FILE *o, struct summary *s)
{
  sorted(&s->rows);
  size_t n = s->rows.n < 12 ? s->rows.n : 12;
  unsigned long max = n ? s->rows.e[0].n : 1;
  fprintf(o, "<svg width=\"760\" height=\"%zu\" role=\"img\" aria-label=\"top decisions\">\n", 20 + n * 22);
  for (size_t i = 0; i < n; i++) {
    double w = 420.0 * (double)s->rows.e[i].n / (double)(max ? max : 1);
    const char *k = s->rows.e[i].key;
    const char *fill = !strncmp(k, "Accept", 6) ? "#3a7d44" : !strncmp(k, "Reject", 6) ? "#c0392b" : "#d68910";
    fprintf(o, "<text x=\"0\" y=\"%zu\" font-size=\"11\">", 16 + i * 22);
    esc(o, k);
    fprintf(o, "</text><rect x=\"300\" y=\"%zu\" width=\"%.1f\" height=\"16\" fill=\"%s\"/><text x=\"%.1f\" y=\"%zu\" "
               "font-size=\"11\">%lu</text>\n", 4 + i * 22, w, fill, 306 + w, 16 + i * 22, s->rows.e[i].n);
  }
  fprintf(o, "</svg>\n");
}

int summary_html(const struct summary *cs, const struct report *r, const char *path, const str *rows)
{
  struct summary *s = (struct summary *)cs;
  (void)rows;
  FILE *o = fopen(path, "w");
  if (!o) return -1;
  fprintf(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mxgate sessions</title>\n"
             "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px;vertical-align:top;text-align:left}"
             ".n{font-size:28px;font-weight:bold}.box{display:inline-block;margin:0 2em 1em 0}</style></head><body>\n");
  fprintf(o, "<h1>mxgate sessions</h1>\n");
  const char *labels[] = { "sessions", "accepted", "rejected", "deferred", "partial", "log lines" };
  unsigned long vals[] = { s->sessions, s->accepted, s->rejected, s->deferred, s->partial, r->lines };
  for (int i = 0; i < 6; i++) fprintf(o, "<div class=\"box\"><div class=\"n\">%lu</div>%s</div>\n", vals[i], labels[i]);
  fprintf(o, "<p>%lu recipients accepted, %lu rejected; %.1f%% of sessions over TLS; %lu blocked by rblsmtpd</p>\n",
          s->rcpt_ok, s->rcpt_bad, s->sessions ? 100.0 * (double)s->tls / (double)s->sessions : 0.0, s->rbl);
  if (s->sent[0] | s->sent[1] | s->sent[2] | s->sent[3])
    fprintf(o, "<p>deliveries: %lu delivered, %lu deferred, %lu bounced (%lu expired)</p>\n", s->sent[0], s->sent[1],
            s->sent[2] + s->sent[3], s->sent[3]);
  fprintf(o, "<h2>Decisions per hour (UTC)</h2>\n");
  hours_chart(o, s);
  fprintf(o, "<h2>Top decisions</h2>\n");
  rows_chart(o, s);
  fprintf(o, "<h2>Sessions</h2>\n<input id=\"q\" placeholder=\"search (IP, address, row...)\" size=\"50\">\n"
             "<table id=\"t\"><thead><tr><th>start (UTC)</th><th>pid</th><th>client</th><th>HELO</th>"
             "<th>decisions</th></tr></thead><tbody>\n");
  fwrite(s->list.s ? s->list.s : "", 1, s->list.len, o);
  fprintf(o, "</tbody></table>\n<script>document.getElementById('q').addEventListener('input',function(){"
             "var q=this.value.toLowerCase();document.querySelectorAll('#t tbody tr').forEach(function(r){"
             "r.style.display=r.textContent.toLowerCase().indexOf(q)<0?'none':'';});});</script>\n</body></html>\n");
  return fclose(o) == 0 ? 0 : -1;
}
