/* mime.h -- a streaming MIME structure scanner with bounded memory.
 *
 * mime_feed() takes the message in pieces of any size, as it arrives (LF
 * or CRLF line ends), and finds the entities inside it: the headers of the
 * message and of each body part, nested multiparts (a stack of at most
 * MIME_DEPTH boundaries; an outer boundary also closes unterminated inner
 * parts), and message/rfc822 parts, whose bodies start with headers again.
 * Only Content-Type and Content-Transfer-Encoding are read, each unfolded
 * to at most MIME_FIELD_MAX bytes; header names are matched without regard
 * to case. For every entity whose body is base64 it reports:
 *   part(ctx)                 -- a base64 body begins
 *   content(ctx, p, n)        -- raw bytes of that body, line ends included
 * Boundary lines are never reported as content. Whatever the input
 * (unterminated boundaries, 10 000 parts, a 1 MB header line, invalid
 * base64), the scanner keeps sizeof(struct mime) bytes and no more.
 */
#ifndef MXGATE_SMTPD_MIME_H
#define MXGATE_SMTPD_MIME_H
#include <stdbool.h>
#include <stddef.h>

#define MIME_DEPTH 16           /* nested multiparts followed */
#define MIME_BOUNDARY_MAX 100   /* RFC 2046 allows 70 */
#define MIME_FIELD_MAX 2048     /* unfolded Content-Type kept */
#define MIME_HOLD 128           /* a body line longer than this is no boundary */

struct mime_events {
  void *ctx;
  void (*part)(void *ctx);
  void (*content)(void *ctx, const char *p, size_t n);
};

enum mime_field { FIELD_OTHER, FIELD_TYPE, FIELD_CTE };

struct mime {
  struct mime_events ev;
  bool in_header;               /* reading an entity's header section */
  bool body_base64;             /* the current body is reported as content */
  bool streaming;               /* this line grew past MIME_HOLD: reported as it comes */
  bool saw_base64;              /* some entity had a base64 body */
  unsigned long parts;          /* entities seen (the message is the first) */
  /* the current line (its first MIME_HOLD or MIME_FIELD_MAX bytes) */
  size_t linelen;
  bool linecut;
  char line[MIME_FIELD_MAX];
  /* the header field being read, unfolded */
  enum mime_field field;
  size_t fieldlen;
  char fieldv[MIME_FIELD_MAX];
  /* what the current entity's header said */
  bool ent_multipart, ent_base64, ent_rfc822;
  size_t ent_blen;
  char ent_boundary[MIME_BOUNDARY_MAX];
  /* open multiparts, innermost last */
  unsigned depth;
  unsigned char blen[MIME_DEPTH];
  char boundary[MIME_DEPTH][MIME_BOUNDARY_MAX];
};

void mime_init(struct mime *m, const struct mime_events *ev);
void mime_feed(struct mime *m, const char *p, size_t n);
/* the end of the message: a last line without LF is taken as a line */
void mime_finish(struct mime *m);

#endif
