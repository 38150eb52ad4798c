/* queue.h -- mxgate-queue: the embedded qmail-queue(8).
 *
 * The message arrives on fd 0, then the envelope on fd 1 ("F" sender NUL,
 * "T" recipient NUL ..., NUL). Exit 0 only once the message is durable.
 *
 * A message for exactly one local recipient is delivered straight into
 * its Maildir: tmp/ written and made durable, then renamed into new/ and
 * new/ made durable; the rename is the commit. Any other message becomes
 * one queue entry, queue/todo/ID (entry.c: message, envelope and the
 * recipients' state in one file, checked by a crc, renamed into todo/ and
 * then made durable with one flush) and is then delivered: local
 * recipients into their Maildirs, the rest left in todo/ for `mxgate-queue
 * --flush`, which hands them to a sendmail-compatible program. So an exit
 * 0 means the message is on disk; a crash before it leaves no message
 * visible in any new/, and no whole entry in todo/ (what is there is not
 * whole and fails its crc: it is skipped, and removed by --flush).
 *
 * Writers in the same process (mxgate-smtpd and mxgate-listen's workers,
 * when QMAILQUEUE is unset) use direct.c: the message goes straight into
 * the Maildirs of its local recipients and the entry for the others while
 * it arrives, committed together; no queue process.
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
/* deliver the message of entry e to maildir with the qmail-local headers;
 * QQ_OK or an exit code */
struct entry;
int maildir_deliver(const char *maildir, const struct entry *e, const char *sender, const char *rcpt);
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
/* the files' data (and the directories' names, sync_dirs) durable, with
 * one group commit per file system of dirs (or fsyncs); 0 or -1 */
int durable_all(const int *fds, size_t nfd, const char *const *dirs, size_t ndir, bool sync_dirs);

/* entry.c: the one-file queue entry */
#define ENTRY_HEADER 64          /* bytes of the header line before the message */
#define ENTRY_REPLY_MAX 400      /* bytes of a recipient's last reply kept in its record */
struct entry_writer {
  int fd;
  bool published;              /* renamed into todo/ */
  unsigned long crc;
  unsigned long long msglen;
  char id[256], tmp[4096], todo[4096];
};
int entry_make_dirs(void);                                /* queue/, queue/tmp, queue/todo */
void entry_path(char *out, size_t cap, const char *sub, const char *id);
int entry_create(struct entry_writer *w);                 /* tmp/ID, positioned for the message */
bool entry_write(struct entry_writer *w, const void *p, size_t n);   /* false: errno */
int entry_seal(struct entry_writer *w, const char *envelope, size_t envlen);
int entry_publish(struct entry_writer *w);                /* the rename into todo/ */
void entry_discard(struct entry_writer *w);               /* closes; removes tmp/ID or todo/ID */

struct entry_rcpt {
  char state;                  /* 'p' pending, 'd' done, 'b' bounced */
  unsigned attempts;
  long long next_try;          /* unix time, 0: at once */
  char reply[ENTRY_REPLY_MAX + 1];
};
struct entry {
  int fd;                      /* opened O_RDWR | O_APPEND by the caller, who locks it */
  unsigned long long msgoff, msglen;
  size_t envlen;
  long long queued_at;         /* the commit's time, from the header */
  long long warned_at;         /* when the delay warning was queued (a "W" record), 0 never */
  struct envelope env;
  struct entry_rcpt *rcpt;     /* env.nrcpt of them */
};
/* todo/ID opened (read, append) and locked, still the file of that name;
 * -1 with errno: ENOENT gone, EWOULDBLOCK another process has it, ESTALE
 * replaced or removed meanwhile */
int entry_lock(const char *todo);
int entry_load(int fd, struct entry *e);                  /* QQ_OK, or QQ_READ: not a whole entry */
bool entry_done(const struct entry *e);                   /* nobody pending */
void entry_record(str *out, size_t i, const struct entry_rcpt *r);
void entry_record_warned(str *out, long long when);      /* the "W" record, appended to out */
int entry_append(struct entry *e, const str *records, const char *dir);   /* durable */
int entry_copy_message(const struct entry *e, int to);    /* 0, or -1 with errno */
void entry_free(struct entry *e);
void entry_trigger(void);                                 /* wakes mxgate-send, if it runs */
void entry_trigger_id(const char *id);                    /* and has it try entry id now */

/* spool.c */
int spool_commit(struct entry_writer *w, const struct envelope *e);
/* deliver what is local in entry id, keep the rest */
int spool_deliver(const struct localmap *m, const char *id);
int spool_flush(const struct localmap *m);                /* mxgate-queue --flush */
/* an entry that is not whole (at todo) moved to queue/bad, said on stderr */
void spool_set_aside(const char *id, const char *todo);
/* todo/ID of the earlier two-file format (locked as lock) rewritten into
 * one entry in its place; QQ_OK, or it is kept as it is */
int spool_convert_old(const char *id, const char *todo, int lock);

/* bounce.c: a delivery status notification (RFC 3464) for recipients that
 * failed for good, written and committed as ONE new queue entry */
#define BOUNCE_DOUBLE_SENDER "#@[]"   /* a double bounce's envelope sender, as qmail's; <> on the wire */
enum bounce_kind {
  BOUNCE_TO_SENDER,             /* to the original sender, from the null sender */
  BOUNCE_DOUBLE,                /* the sender was null: to control/doublebounceto */
  BOUNCE_DISCARD                /* a double bounce that failed: nothing more (no triple bounce) */
};
struct bounce_failure {
  size_t rcpt;                  /* index into e->env.rcpt and e->rcpt; the reply is e->rcpt[rcpt].reply */
  bool expired;                 /* given up after control/queuelifetime */
  const char *remote_mta;       /* the host that gave the reply, or NULL */
  long long last_attempt;       /* unix time, 0: unknown (then the entry's last change, if it was tried) */
};
enum bounce_kind bounce_kind_of(const struct entry *e);
/* the DSN for f[0..n) of e (reason: NULL, or why they were given up, e.g.
 * "bounced by the administrator"), its new id into id; QQ_OK (also when
 * nothing is to be sent: BOUNCE_DISCARD, double bounces switched off) or
 * an exit code, and then nothing was queued */
int bounce_commit(const struct entry *e, enum bounce_kind kind, const struct bounce_failure *f, size_t n,
                  const char *reason, char *id, size_t idcap);
/* the warning of control/bouncewarn: a DSN with Action: delayed for
 * recipients still pending (f[0..n)), to the sender only (none for a
 * message from the null sender); retry_until: when the queue will give up
 * (0 unknown). QQ_OK or an exit code, as bounce_commit */
int bounce_warn_commit(const struct entry *e, const struct bounce_failure *f, size_t n, long long retry_until,
                       char *id, size_t idcap);
/* the Status of a failed recipient: the enhanced code (RFC 3463) of its
 * SMTP reply when there is one, else 4.4.7 when expired, else 5.0.0 */
void bounce_status(const char *reply, bool expired, char *out, size_t cap);
/* recipient i marked 'b' (with reply, when not NULL): its record appended to records */
void bounce_mark(str *records, struct entry *e, size_t i, const char *reply);

int queue_main(int argc, char **argv);
/* admin.c: --list [--json], --retry ID, --bounce ID, --remove ID */
bool queue_admin_option(const char *arg);
int queue_admin(int argc, char **argv);
/* direct.c: for mxgate-smtpd and mxgate-listen's workers -- the message
 * is written while it arrives into the Maildirs of its local recipients
 * and one queue entry for the rest, and committed in one step */
void *direct_open(const char *sender, const char *envelope, size_t envlen, int *code);  /* "Taddr\0..." */
bool direct_write(void *d, const void *p, size_t n);      /* false: errno */
int direct_commit(void *d);                               /* QQ_OK once durable, or an exit code */
void direct_discard(void *d);
#endif
