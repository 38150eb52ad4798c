/* dns_answer.c -- taking a DNS answer apart: names (with compression
 * pointers, bounded), the answer section, and the CNAME chain from the
 * asked name to the records that belong to it. Only c-ares's transport is
 * used; the parsing here is ours so that every bound is explicit.
 */
#include "dns_int.h"

#include <ctype.h>
#include <string.h>

#define MAX_SCANNED 256   /* answer records looked at in one message */

static unsigned get16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }

/* walk the labels at off; text into out (may be NULL); end: offset after
 * the name where it sits; false if malformed */
static bool walk_name(const unsigned char *m, int len, int off, char *out,
                      size_t cap, int *end, bool *clean)
{
  int pos = off, jumps = 0;
  size_t o = 0;
  *end = -1;
  *clean = true;
  for (;;) {
    unsigned c;
    if (pos < 0 || pos >= len) return false;
    c = m[pos];
    if (c == 0) { if (*end < 0) *end = pos + 1; break; }
    if ((c & 0xC0) == 0xC0) {
      if (pos + 1 >= len || ++jumps > 32) return false;
      if (*end < 0) *end = pos + 2;
      pos = (int)(((c & 0x3F) << 8) | m[pos + 1]);
      continue;
    }
    if (c & 0xC0 || pos + 1 + (int)c > len) return false;
    if (out) {
      if (o + c + 2 > cap) return false;
      if (o) out[o++] = '.';
      for (unsigned i = 0; i < c; i++) {
        unsigned char b = m[pos + 1 + i];
        if (b == '.' || b == 0) *clean = false;
        out[o++] = (char)b;
      }
    }
    pos += 1 + (int)c;
  }
  if (out) out[o] = 0;
  return true;
}

bool dns_read_name(const unsigned char *msg, int len, int off, char *out, size_t cap)
{
  int end;
  bool clean;
  return walk_name(msg, len, off, out, cap, &end, &clean) && clean;
}

bool dns_name_equal(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  if (la && a[la - 1] == '.') la--;
  if (lb && b[lb - 1] == '.') lb--;
  if (la != lb) return false;
  for (size_t i = 0; i < la; i++)
    if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i])) return false;
  return true;
}

struct rec { int owner, type, rdata, rdlen; };

/* the answer section's records (owner offsets, types, rdata) */
static bool scan_answers(const unsigned char *m, int len, struct rec *recs, int *nrec)
{
  int pos = 12, end, i;
  bool clean;
  unsigned qd, an;

  if (len < 12) return false;
  qd = get16(m + 4);
  an = get16(m + 6);
  for (i = 0; i < (int)qd; i++) {
    if (!walk_name(m, len, pos, NULL, 0, &end, &clean) || end + 4 > len) return false;
    pos = end + 4;
  }
  *nrec = 0;
  for (i = 0; i < (int)an && *nrec < MAX_SCANNED; i++) {
    struct rec *r = &recs[*nrec];
    if (!walk_name(m, len, pos, NULL, 0, &end, &clean) || end + 10 > len) return false;
    r->owner = pos;
    r->type = (int)get16(m + end);
    r->rdlen = (int)get16(m + end + 8);
    r->rdata = end + 10;
    if (r->rdata + r->rdlen > len) return false;
    pos = r->rdata + r->rdlen;
    if (get16(m + end + 2) == 1) (*nrec)++;   /* class IN only */
  }
  return true;
}

static bool owner_is(const unsigned char *m, int len, const struct rec *r, const char *name)
{
  char owner[DNS_NAME_MAX + 2];
  return dns_read_name(m, len, r->owner, owner, sizeof owner) && dns_name_equal(owner, name);
}

enum dns_status dns_answer_walk(const unsigned char *msg, int len,
                                const char *qname, int type,
                                dns_rr_fn fn, void *ctx)
{
  struct rec recs[MAX_SCANNED];
  char cur[DNS_NAME_MAX + 2];
  int nrec, hops, i, calls = 0;

  if (!scan_answers(msg, len, recs, &nrec)) return DNS_PERM;
  if (strlen(qname) >= sizeof cur) return DNS_PERM;
  strcpy(cur, qname);
  for (hops = 0;; hops++) {
    bool moved = false;
    if (type == DNS_T_CNAME) break;
    for (i = 0; i < nrec && !moved; i++) {
      if (recs[i].type != DNS_T_CNAME || !owner_is(msg, len, &recs[i], cur)) continue;
      if (!dns_read_name(msg, len, recs[i].rdata, cur, sizeof cur)) return DNS_PERM;
      moved = true;
    }
    if (!moved) break;
    if (hops >= DNS_MAX_CNAME) return DNS_TEMP;
  }
  for (i = 0; i < nrec; i++) {
    struct dns_rr rr;
    if (recs[i].type != type || !owner_is(msg, len, &recs[i], cur)) continue;
    rr.msg = msg;
    rr.msglen = len;
    rr.rdata = recs[i].rdata;
    rr.rdlen = recs[i].rdlen;
    calls++;
    if (!fn(ctx, &rr)) break;
  }
  return calls ? DNS_FOUND : DNS_NODATA;
}
