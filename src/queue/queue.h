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
/* length of the complete envelope in p[0..n), 0 while incomplete (see envelope.c) */
size_t envelope_end(const char *p, size_t from, size_t n, size_t *field);
int envelope_parse(struct envelope *e);                   /* after raw is filled */
void envelope_free(struct envelope *e);

/* localmap.c: control/locals and control/maildirs, read once */
struct localmap { str locals, maildirs; };
enum rcpt_kind { RCPT_REMOTE, RCPT_LOCAL_UNMAPPED, RCPT_MAILDIR };
int localmap_load(struct localmap *m);                    /* QQ_OK or QQ_CONFIG */
void localmap_free(struct localmap *m);
bool localmap_is_local(const struct localmap *m, const char *addr);
/* RCPT_MAILDIR with the Maildir in out, or what else addr is */
enum rcpt_kind localmap_find(const struct localmap *m, const char *addr, char *out, size_t cap);
void localmap_each_maildir(const struct localmap *m, void (*fn)(const char *maildir));

/* maildir.c */
#define TMP_MAX_AGE (36 * 3600)  /* work files older than this are leftovers of a crash */
/* deliver the message in fd (from offset 0) to maildir with the qmail-local
 * headers; QQ_OK or an exit code */
int maildir_deliver(const char *maildir, int msgfd, const char *sender, const char *rcpt);
/* the same in steps, for a writer that has the message as it arrives:
 * open tmp/NAME with the headers, write the message to fd, then commit
 * (durable file, rename into new/, durable new/) or discard */
struct maildir_file { int fd; char tmp[4096], new_[4096], tmpdir[4096], newdir[4096]; };
int maildir_open(const char *maildir, const char *sender, const char *rcpt, struct maildir_file *f);
int maildir_commit(struct maildir_file *f);               /* QQ_OK or an exit code; closes fd */
void maildir_discard(struct maildir_file *f);
void maildir_clean_tmp(const char *maildir);
int clean_old_files(const char *dir, long max_age);
/* a unique file name per maildir(5) */
void unique_name(char *buf, size_t cap);
int fsync_dir(const char *dir);
/* durable.c: fsync, or a group commit under mxgate-listen (MXGATE_COMMIT) */
int durable_file(int fd, const char *dir);
int durable_dir(const char *dir);
int copy_fd(int from, int to);                            /* 0, or -1 with errno */

/* spool.c */
int spool_commit(int msgfd, const struct envelope *e, char *id, size_t idcap);
/* deliver what is local in entry id, keep the rest */
int spool_deliver(const struct localmap *m, const char *id);
int spool_flush(const struct localmap *m);                /* mxgate-queue --flush */

int queue_main(int argc, char **argv);
/* direct.c: for mxgate-listen's workers -- a message for one recipient with
 * a Maildir is written straight into it while it arrives (to *fd); NULL
 * when the message must take the queue (remote, no Maildir) */
void *direct_open(const char *sender, const char *rcpt, int *fd);
int direct_commit(void *file);                            /* QQ_OK once durable, or an exit code */
void direct_discard(void *file);
#endif
