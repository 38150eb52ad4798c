/* data.c -- DATA: the message body, streamed to the queue as it arrives.
 *
 * Only <CRLF>.<CRLF> ends a message. Lines end in CRLF; a bare LF or a
 * bare CR anywhere (the SMTP smuggling family: \n.\n, \r.\r\n, \r\n.\r ...)
 * is refused with Reject::DATA::Bare_LF and the connection is closed,
 * since where such a client's message ends cannot be known; nothing is
 * queued. Dot-stuffing is undone and CRLF becomes LF, as qmail stores
 * mail. Received and Delivered-To headers are counted (HOPS_MAX: Looping);
 * a body past databytes is read to its end and refused (Invalid_Size).
 */
#include "smtpd.h"
#include "content.h"
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

enum body_state { LINE_START, IN_LINE, SAW_CR, SAW_DOT, SAW_DOT_CR };
enum body_end { BODY_OK, BODY_BARE, BODY_EOF, BODY_TIMEOUT };

struct body {
  enum body_state state;
  struct queue_job *q;
  struct content *content;              /* NULL: no content checks */
  int spoolfd;                          /* >= 0: the message goes here first, not to the queue */
  bool write_failed, overflow, in_header;
  int write_errno;                /* why the write failed: EPIPE, the queue stopped reading; else our file */
  unsigned long long bytes, limit;      /* limit 0: none */
  unsigned hops;
  size_t hdrpos;                        /* bytes of the current header line seen */
  char hdr[16];                         /* its first bytes, for hop counting */
  size_t outlen;
  char out[65536];
};

static void out_flush(struct body *b)
{
  bool spooled = b->spoolfd >= 0;
  if (!b->write_failed && b->outlen &&
      !(spooled ? fd_write_all(b->spoolfd, b->out, b->outlen) : queue_write(b->q, b->out, b->outlen))) {
    b->write_failed = true;
    b->write_errno = errno;
  }
  b->outlen = 0;
}

static void out_put(struct body *b, const char *p, size_t n)
{
  b->bytes += n;
  if (b->limit && b->bytes > b->limit) b->overflow = true;
  if (b->overflow || b->write_failed) return;
  if (b->content) content_feed(b->content, p, n);
  while (n) {
    if (b->outlen == sizeof b->out) out_flush(b);
    size_t k = sizeof b->out - b->outlen;
    if (k > n) k = n;
    memcpy(b->out + b->outlen, p, k);
    b->outlen += k; p += k; n -= k;
  }
}

/* header bookkeeping for one line's bytes */
static void header_bytes(struct body *b, const char *p, size_t n)
{
  if (!b->in_header) return;
  for (size_t i = 0; i < n && b->hdrpos < sizeof b->hdr; i++) b->hdr[b->hdrpos++] = p[i];
}

static void header_line_end(struct body *b)
{
  if (!b->in_header) return;
  if (b->hdrpos == 0) b->in_header = false;             /* empty line: body starts */
  else if ((b->hdrpos >= 9 && strncasecmp(b->hdr, "received:", 9) == 0) ||
           (b->hdrpos >= 13 && strncasecmp(b->hdr, "delivered-to:", 13) == 0))
    b->hops++;
  b->hdrpos = 0;
}

static void line_bytes(struct body *b, const char *p, size_t n)
{
  header_bytes(b, p, n);
  out_put(b, p, n);
}

/* runs the state machine over the available input; true at the end of data */
static bool body_step(struct body *b, struct io_in *in, enum body_end *end)
{
  const char *p = io_peek(in);
  size_t n = io_avail(in), i = 0;
  while (i < n) {
    char c = p[i];
    if (b->state == IN_LINE) {                          /* fast path: a run of ordinary bytes */
      size_t j = i;
      while (j < n && p[j] != '\r' && p[j] != '\n') j++;
      line_bytes(b, p + i, j - i);
      i = j;
      if (i == n) break;
      c = p[i];
    }
    i++;
    switch (b->state) {
    case LINE_START:
    case IN_LINE:
      if (c == '\r') { b->state = SAW_CR; break; }
      if (c == '\n') { *end = BODY_BARE; io_consume(in, i); return true; }
      if (b->state == LINE_START && c == '.') { b->state = SAW_DOT; break; }
      line_bytes(b, &c, 1);
      b->state = IN_LINE;
      break;
    case SAW_CR:
      if (c != '\n') { *end = BODY_BARE; io_consume(in, i); return true; }
      out_put(b, "\n", 1);
      header_line_end(b);
      b->state = LINE_START;
      break;
    case SAW_DOT:
      if (c == '\r') { b->state = SAW_DOT_CR; break; }
      if (c == '\n') { *end = BODY_BARE; io_consume(in, i); return true; }
      line_bytes(b, &c, 1);                             /* the stuffed dot is dropped */
      b->state = IN_LINE;
      break;
    case SAW_DOT_CR:
      if (c != '\n') { *end = BODY_BARE; io_consume(in, i); return true; }
      *end = BODY_OK;
      io_consume(in, i);
      return true;
    }
  }
  io_consume(in, i);
  return false;
}

/* the message within timeoutsmtpd plus a second for every data_min_rate
 * bytes that came (Postfix's smtpd_min_data_rate): a client that sends
 * slower than that cannot hold the session, whatever each read's timeout */
static enum body_end read_body(struct session *s, struct body *b)
{
  enum body_end end = BODY_EOF;
  long long start = io_now_ms(), timeout_ms = (long long)s->cfg->timeout * 1000;
  unsigned long long got = io_avail(&s->in), rate = s->conn.data_min_rate;
  for (;;) {
    if (io_avail(&s->in) && body_step(b, &s->in, &end)) break;
    s->in.deadline_ms = rate ? start + timeout_ms + (long long)(got * 1000 / rate) : 0;
    ssize_t r = io_fill(&s->in);
    if (r <= 0) {
      s->in.deadline_ms = 0;
      return r < 0 && errno == ETIMEDOUT ? BODY_TIMEOUT : BODY_EOF;
    }
    got += (unsigned long long)r;
  }
  s->in.deadline_ms = 0;
  out_flush(b);
  return end;
}

/* tell the client, then let it finish sending before the connection closes */
static void refuse_and_close(struct session *s, enum row_id row)
{
  decide(s, row, s->first_rcpt.s, s->first_rcpt.len, NULL);
  io_flush(&s->out);
  shutdown(s->out.fd, SHUT_WR);
  s->in.timeout = 2;                       /* briefly: a client that goes quiet is not waited for */
  for (int k = 0; k < 64 && io_fill(&s->in) > 0; k++) io_discard(&s->in);
  s->quit = true;
}

/* spooled mode: headers first, then the spooled message, into the queue */
static bool unspool(struct body *b, const str *hdrs, const str *received)
{
  char buf[65536];
  if (!queue_write(b->q, hdrs->s ? hdrs->s : "", hdrs->len) ||
      !queue_write(b->q, received->s, received->len) || lseek(b->spoolfd, 0, SEEK_SET) < 0)
    return false;
  for (;;) {
    ssize_t r = read(b->spoolfd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return false;
    if (r == 0) return true;
    if (!queue_write(b->q, buf, (size_t)r)) return false;
  }
}

static void finish(struct session *s, struct queue_job *q, struct body *b, const str *received)
{
  if (b->overflow || b->hops >= HOPS_MAX) {
    queue_abort(q);
    decide(s, b->overflow ? ROW_DATA_INVALID_SIZE : ROW_DATA_LOOPING, s->first_rcpt.s, s->first_rcpt.len, NULL);
    return;
  }
  if (b->content && !b->write_failed) {             /* a message not written in full is not judged: 451 below */
    const char *detail = NULL;
    str hdrs = STR_INIT(64 << 10);
    enum row_id row = content_verdict(b->content, b->spoolfd, &detail, &hdrs);
    if (row != ROW_COUNT) {
      queue_abort(q);
      decide(s, row, s->first_rcpt.s, s->first_rcpt.len, detail);
      str_free(&hdrs);
      return;
    }
    if (b->spoolfd >= 0 && !b->write_failed && !unspool(b, &hdrs, received)) {
      b->write_failed = true;
      b->write_errno = errno;
    }
    str_free(&hdrs);
  }
  pid_t qp = q->pid;
  int status = b->write_failed ? queue_fail(q, b->write_errno) : queue_close(q, &s->envelope, &s->mailfrom);
  if (status == 0) {
    char text[128], detail[96];
    snprintf(text, sizeof text, "%s %lld qp %ld", row_get(ROW_DATA_QUEUED)->text, (long long)time(NULL), (long)qp);
    snprintf(detail, sizeof detail, "qp %ld bytes %llu", (long)qp, b->bytes);
    decide_log(s, ROW_DATA_QUEUED, s->first_rcpt.s, s->first_rcpt.len, detail);
    reply_code(s, 250, row_get(ROW_DATA_QUEUED)->estatus, text);
    return;
  }
  bool permanent = false;
  const char *why = queue_exit_reply(status, &permanent);
  decide_log(s, ROW_DATA_QUEUE_FAILURE, s->first_rcpt.s, s->first_rcpt.len, why + 10);
  reply(s, why);
}

/* where the body goes: straight into the queue pipe, or a spool file when
 * content checks may add headers; false when no spool can be made */
static bool body_start(struct session *s, struct body *b, struct queue_job *q, const str *received)
{
  b->q = q;
  b->in_header = true;
  b->limit = s->conn.databytes;
  b->spoolfd = -1;
  b->content = content_begin(s);
  if (b->content && content_needs_spool(b->content)) {
    b->spoolfd = open(getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
                      O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    return b->spoolfd >= 0;
  }
  memcpy(b->out, received->s, received->len);
  b->outlen = received->len;
  return true;
}

static void body_end(struct body *b)
{
  if (b->content) content_end(b->content);
  if (b->spoolfd >= 0) close(b->spoolfd);
  free(b);
}

void smtp_data(struct session *s)
{
  if (!s->seen_mail) { reply(s, "503 5.5.1 MAIL first"); return; }
  if (!s->rcpt_accepted) { reply(s, "554 5.5.1 No valid recipients"); return; }
  if (s->notorious) { refuse_and_close(s, ROW_SNDR_NOTORIOUS); return; }
  struct queue_job q;
  struct body *b = calloc(1, sizeof *b);      /* 64 KiB: not on the stack */
  str received = STR_INIT(8192);
  received_header(s, &received);
  int opened = b ? queue_open(s, &q) : -1;
  if (opened != 0) {
    if (opened > 0) {                         /* the embedded queue cannot take it: its exit code says why */
      bool permanent;
      const char *why = queue_exit_reply(opened, &permanent);
      decide_log(s, ROW_DATA_QUEUE_FAILURE, s->first_rcpt.s, s->first_rcpt.len, why + 10);
      reply(s, why);
    } else
      decide(s, ROW_DATA_QUEUE_FAILURE, s->first_rcpt.s, s->first_rcpt.len, b ? "cannot start queue program" : "out of memory");
    free(b);
    str_free(&received);
    return;
  }
  if (!body_start(s, b, &q, &received)) {
    queue_abort(&q);
    decide(s, ROW_DATA_QUEUE_FAILURE, s->first_rcpt.s, s->first_rcpt.len, "cannot create spool file");
  } else {
    reply(s, "354 3.0.0 Start mail input; end with <CRLF>.<CRLF>");
    io_flush(&s->out);
    enum body_end end = read_body(s, b);
    if (end == BODY_OK) finish(s, &q, b, &received);
    else {
      queue_abort(&q);
      if (end == BODY_BARE) refuse_and_close(s, ROW_DATA_BARE_LF);
      else {
        if (end == BODY_TIMEOUT) reply(s, "451 4.4.2 Timeout during DATA; closing connection");
        s->quit = true;
      }
    }
  }
  body_end(b);
  str_free(&received);
  session_reset_transaction(s);
}
