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
/* whether data.c must spool the message to a file for the verdict: the
 * verdict may come with headers to prepend (SPAMHEADERS), or a check reads
 * the whole message (QHPSI runs on the file, spamd needs its length) */
bool content_needs_spool(const struct content *c);
void content_feed(struct content *c, const char *p, size_t n);
/* at the end of data: ROW_COUNT (accept) or the deciding row; *detail is
 * the row's detail (may be NULL); headers to prepend are appended to hdrs,
 * each ending in "\n". spoolfd is the spooled message (or -1). */
enum row_id content_verdict(struct content *c, int spoolfd, const char **detail, str *hdrs);
void content_end(struct content *c);
/* NULL, or why this client's content settings (BADMIMETYPE, BADLOADERTYPE,
 * CLAMD, SPAMD, ...) are unusable: for a 421 at connection start */
const char *content_config_error(const struct session *s);

/* The scanner families behind content.c, one file each. Results: 1 the
 * message is refused (name/detail filled), 0 it passes, -1 a scanner
 * fault (why filled): Deferred, never accepted unscanned. */

/* scan_clamd.c: clamd INSTREAM, streamed while the message arrives */
struct clamd;
struct clamd *clamd_open(const char *spec, int timeout, unsigned long long maxbytes);
void clamd_feed(struct clamd *c, const char *p, size_t n);
int clamd_result(struct clamd *c, char *name, size_t cap);
void clamd_close(struct clamd *c);

/* scan_qhpsi.c: the QHPSI command on the spooled message; exit 1 infected */
int qhpsi_scan(const char *command, int spoolfd, int timeout, char *name, size_t cap);

/* scan_spamd.c: the spamc protocol over the spooled message; on spam
 * detail is "score/threshold"; on ham with hdrs non-NULL the X-Spam-Status
 * and X-Spam-Score headers are appended to hdrs */
struct spamd_opts {
  const char *spec, *user;
  int timeout;
  unsigned long long maxbytes;  /* 0: no limit; bigger messages pass unscanned, as with spamc */
};
int spamd_check(const struct spamd_opts *o, int spoolfd, char *detail, size_t cap, str *hdrs);

#endif
