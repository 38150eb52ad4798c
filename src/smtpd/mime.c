/* mime.c -- the streaming MIME structure scanner (mime.h).
 *
 * The message is cut into lines as it arrives; a line is kept only as far
 * as it can matter: MIME_FIELD_MAX bytes in a header section (enough for
 * any real Content-Type), MIME_HOLD bytes in a body (a boundary line is
 * short). A base64 body line longer than MIME_HOLD cannot be a boundary,
 * so it is reported as it comes instead of being kept; so is one that
 * does not start with '-'. Other body lines that do not start with '-'
 * are skipped without copying, and the body of a message that is not
 * multipart is skipped whole.
 */
#include "mime.h"
#include <string.h>
#include <strings.h>

void mime_init(struct mime *m, const struct mime_events *ev)
{
  memset(m, 0, sizeof *m);
  m->ev = *ev;
  m->in_header = true;
  m->parts = 1;
}

static void entity_start(struct mime *m)
{
  m->in_header = true;
  m->body_base64 = false;
  m->field = FIELD_OTHER;
  m->fieldlen = 0;
  m->ent_multipart = m->ent_base64 = m->ent_rfc822 = false;
  m->ent_blen = 0;
  m->parts++;
}

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static const char *skip_blanks(const char *p, const char *end)
{
  while (p < end && is_blank(*p)) p++;
  return p;
}

/* the boundary parameter's value at p (quoted or a token) into the entity */
static void take_boundary(struct mime *m, const char *p, const char *end)
{
  char v[MIME_BOUNDARY_MAX + 1];
  size_t n = 0;
  bool quoted = p < end && *p == '"';
  if (quoted) p++;
  while (p < end) {
    char c = *p++;
    if (quoted && c == '"') break;
    if (quoted && c == '\\' && p < end) c = *p++;
    else if (!quoted && (c == ';' || is_blank(c))) break;
    if (n == sizeof v) return;                 /* too long: not followed */
    v[n++] = c;
  }
  while (n && is_blank(v[n - 1])) n--;         /* RFC 2046: no trailing space */
  if (n == 0 || n > MIME_BOUNDARY_MAX) return;
  memcpy(m->ent_boundary, v, n);
  m->ent_blen = n;
}

/* Content-Type: type/subtype *(; name=value) */
static void parse_type(struct mime *m, const char *p, const char *end)
{
  p = skip_blanks(p, end);
  const char *t = p;
  while (p < end && *p != ';' && !is_blank(*p)) p++;
  size_t tl = (size_t)(p - t);
  m->ent_multipart = tl > 10 && strncasecmp(t, "multipart/", 10) == 0;
  m->ent_rfc822 = tl == 14 && strncasecmp(t, "message/rfc822", 14) == 0;
  m->ent_blen = 0;
  while (p < end) {
    const char *semi = memchr(p, ';', (size_t)(end - p));
    if (!semi) break;
    p = skip_blanks(semi + 1, end);
    const char *name = p;
    while (p < end && *p != '=' && *p != ';') p++;
    if (p == end || *p != '=') continue;
    const char *ne = p;
    while (ne > name && is_blank(ne[-1])) ne--;
    p = skip_blanks(p + 1, end);
    if (ne - name == 8 && strncasecmp(name, "boundary", 8) == 0) take_boundary(m, p, end);
    if (p < end && *p == '"') {                /* skip a quoted value: it may hold ';' */
      for (p++; p < end && *p != '"'; p++)
        if (*p == '\\' && p + 1 < end) p++;
    }
  }
}

static void parse_cte(struct mime *m, const char *p, const char *end)
{
  p = skip_blanks(p, end);
  const char *e = p;
  while (e < end && !is_blank(*e) && *e != '(' && *e != ';') e++;
  m->ent_base64 = e - p == 6 && strncasecmp(p, "base64", 6) == 0;
}

static void field_end(struct mime *m)
{
  const char *v = m->fieldv, *end = m->fieldv + m->fieldlen;
  if (m->field == FIELD_TYPE) parse_type(m, v, end);
  else if (m->field == FIELD_CTE) parse_cte(m, v, end);
  m->field = FIELD_OTHER;
  m->fieldlen = 0;
}

static void field_add(struct mime *m, const char *p, size_t n)
{
  size_t room = sizeof m->fieldv - m->fieldlen;
  if (n > room) n = room;
  memcpy(m->fieldv + m->fieldlen, p, n);
  m->fieldlen += n;
}

/* the empty line after an entity's header: what its body is */
static void header_end(struct mime *m)
{
  field_end(m);
  if (m->ent_multipart && m->ent_blen && m->depth < MIME_DEPTH) {
    memcpy(m->boundary[m->depth], m->ent_boundary, m->ent_blen);
    m->blen[m->depth++] = (unsigned char)m->ent_blen;
    m->in_header = false;                      /* the preamble */
    m->body_base64 = false;
  } else if (m->ent_rfc822 && !m->ent_base64) {
    entity_start(m);                           /* an enclosed message: headers again */
  } else {
    m->in_header = false;
    m->body_base64 = m->ent_base64;
    if (m->body_base64) {
      m->saw_base64 = true;
      if (m->ev.part) m->ev.part(m->ev.ctx);
    }
  }
}

/* "--boundary" opens a part of an open multipart, "--boundary--" closes
 * it; an outer boundary also ends every multipart inside it */
static bool boundary_line(struct mime *m, const char *l, size_t n)
{
  if (n < 3 || l[0] != '-' || l[1] != '-' || m->depth == 0) return false;
  while (n > 2 && is_blank(l[n - 1])) n--;
  for (unsigned i = m->depth; i-- > 0;) {
    size_t bl = m->blen[i];
    if (n < 2 + bl || memcmp(l + 2, m->boundary[i], bl) != 0) continue;
    size_t rest = n - 2 - bl;
    if (rest == 0) {
      m->depth = i + 1;
      entity_start(m);
      return true;
    }
    if (rest == 2 && l[n - 2] == '-' && l[n - 1] == '-') {
      m->depth = i;
      m->in_header = false;                    /* the epilogue */
      m->body_base64 = false;
      m->field = FIELD_OTHER;
      return true;
    }
  }
  return false;
}

static void header_line(struct mime *m, const char *l, size_t n)
{
  if (n == 0) { header_end(m); return; }
  if (l[0] == '-' && boundary_line(m, l, n)) return;
  if (l[0] == ' ' || l[0] == '\t') {           /* folded: part of the field before */
    if (m->field != FIELD_OTHER) field_add(m, l, n);
    return;
  }
  field_end(m);
  const char *colon = memchr(l, ':', n);
  if (!colon) return;
  size_t nl = (size_t)(colon - l);
  while (nl && (l[nl - 1] == ' ' || l[nl - 1] == '\t')) nl--;
  if (nl == 12 && strncasecmp(l, "content-type", 12) == 0) m->field = FIELD_TYPE;
  else if (nl == 25 && strncasecmp(l, "content-transfer-encoding", 25) == 0) m->field = FIELD_CTE;
  else return;
  field_add(m, colon + 1, n - (size_t)(colon - l) - 1);
}

static void emit(struct mime *m, const char *p, size_t n)
{
  if (n && m->ev.content) m->ev.content(m->ev.ctx, p, n);
}

/* a whole line has been seen (its kept part in m->line); lf: it ended in LF */
static void line_end(struct mime *m, bool lf)
{
  size_t n = m->linelen;
  bool cut = m->linecut;
  m->linelen = 0;
  m->linecut = false;
  if (m->streaming) {                          /* long base64 line: already reported */
    m->streaming = false;
    if (lf) emit(m, "\n", 1);
    return;
  }
  size_t t = n;
  if (t && m->line[t - 1] == '\r') t--;
  if (m->in_header) { header_line(m, m->line, t); return; }
  if (cut) return;                             /* a skipped body line */
  if (boundary_line(m, m->line, t)) return;
  if (m->body_base64) {
    emit(m, m->line, n);
    if (lf) emit(m, "\n", 1);
  }
}

/* bytes of the current line (no LF among them) */
static void line_bytes(struct mime *m, const char *p, size_t n)
{
  if (m->streaming) { emit(m, p, n); return; }
  if (m->linecut) return;
  if (!m->in_header && m->linelen == 0 && n && p[0] != '-') {   /* cannot be a boundary */
    if (!m->body_base64) { m->linecut = true; return; }        /* nor content: skipped */
    m->streaming = true;                                        /* content: reported as it comes */
    emit(m, p, n);
    return;
  }
  size_t cap = m->in_header ? sizeof m->line : MIME_HOLD;
  size_t k = n < cap - m->linelen ? n : cap - m->linelen;
  memcpy(m->line + m->linelen, p, k);
  m->linelen += k;
  if (k == n) return;
  if (m->in_header || !m->body_base64) { m->linecut = true; return; }
  m->streaming = true;                         /* too long for a boundary: content */
  emit(m, m->line, m->linelen);
  m->linelen = 0;
  emit(m, p + k, n - k);
}

void mime_feed(struct mime *m, const char *p, size_t n)
{
  while (n) {
    if (!m->in_header && !m->body_base64 && m->depth == 0) return;   /* nothing more to find */
    const char *lf = memchr(p, '\n', n);
    size_t k = lf ? (size_t)(lf - p) : n;
    line_bytes(m, p, k);
    if (!lf) return;
    line_end(m, true);
    p += k + 1;
    n -= k + 1;
  }
}

void mime_finish(struct mime *m)
{
  if (m->linelen || m->streaming || m->linecut) line_end(m, false);
  if (m->in_header) field_end(m);
}
