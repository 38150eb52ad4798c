/* content.h -- checks on the message content during DATA (content.c and
 * the scanner files it calls).
 *
 * data.c hands every byte of the message, as it will be queued (dot-
 * stuffing undone, LF line ends, without mxgate's Received header), to
 * content_feed() while it arrives. When content_begin() says headers may
 * be added (spam scores, authentication results), data.c spools the
 * message to an unlinked file instead of the queue pipe and writes the
 * headers first once the verdict is known.
 */
#ifndef MXGATE_SMTPD_CONTENT_H
#define MXGATE_SMTPD_CONTENT_H
#include <stdbool.h>
#include <stddef.h>
#include "log.h"
#include "str.h"

struct session;
struct content;

/* NULL when no content check is configured for this client */
struct content *content_begin(struct session *s);
/* whether the verdict may come with headers to prepend (data.c spools) */
bool content_adds_headers(const struct content *c);
void content_feed(struct content *c, const char *p, size_t n);
/* at the end of data: ROW_COUNT (accept) or the deciding row; *detail is
 * the row's detail (may be NULL); headers to prepend are appended to hdrs,
 * each ending in "\n". spoolfd is the spooled message (or -1). */
enum row_id content_verdict(struct content *c, int spoolfd, const char **detail, str *hdrs);
void content_end(struct content *c);

#endif
