/* queue.h -- mxgate-queue: the embedded qmail-queue(8).
 *
 * The message arrives on fd 0, then the envelope on fd 1 ("F" sender NUL,
 * "T" recipient NUL ..., NUL). Exit 0 only once the message is durable.
 *
 * A message for exactly one local recipient is delivered straight into
 * its Maildir: tmp/ written and fsync'd, then renamed into new/ and new/
 * fsync'd; the rename is the commit. Any other message is committed to
 * the queue under $MXGATE_HOME/queue first (mess/ID written and fsync'd,
 * then todo/ID, the envelope, renamed into place and todo/ fsync'd: the
 * rename of todo/ID is the commit) and then delivered: local recipients
 * into their Maildirs, the rest left in todo/ for `mxgate-queue --flush`,
 * which hands them to a sendmail-compatible program. So an exit 0 means
 * the message is on disk; a crash before it leaves nothing visible in any
 * new/ or todo/ (files in tmp/ are invisible and cleaned by --flush).
 */
#ifndef MXGATE_QUEUE_H
#define MXGATE_QUEUE_H
#include <stdbool.h>
#include <stddef.h>
#include "str.h"

/* qmail-queue(8) exit codes */
enum {
  QQ_OK = 0, QQ_ADDR_TOO_LONG = 11, QQ_NOMEM = 51, QQ_TIMEOUT = 52, QQ_WRITE = 53, QQ_READ = 54,
  QQ_CONFIG = 55, QQ_HOME = 61, QQ_QUEUEDIR = 62, QQ_BUG = 81, QQ_ENVELOPE = 91
};

struct envelope {
  str raw;                     /* "F...\0T...\0...\0" as read */
  const char *sender;
  size_t nrcpt;
  const char **rcpt;           /* pointers into raw */
};

/* envelope.c */
int envelope_read(int fd, struct envelope *e);            /* QQ_OK or an exit code */
int envelope_parse(struct envelope *e);                   /* after raw is filled */
void envelope_free(struct envelope *e);

/* maildir.c */
/* the Maildir of a local recipient into out; false when addr is not local
 * or has no entry in control/maildirs */
bool maildir_of(const char *addr, char *out, size_t cap);
/* the recipient's domain is in control/locals */
bool local_domain(const char *addr);
/* deliver the message in fd (from offset 0) to maildir with the qmail-local
 * headers; QQ_OK or an exit code */
int maildir_deliver(const char *maildir, int msgfd, const char *sender, const char *rcpt);
/* a unique file name per maildir(5) */
void unique_name(char *buf, size_t cap);
int fsync_dir(const char *dir);
int copy_fd(int from, int to);                            /* 0, or -1 with errno */

/* spool.c */
int spool_commit(int msgfd, const struct envelope *e, char *id, size_t idcap);
int spool_deliver(const char *id);                       /* deliver what is local, keep the rest */
int spool_flush(void);                                    /* mxgate-queue --flush */

int queue_main(int argc, char **argv);
#endif
