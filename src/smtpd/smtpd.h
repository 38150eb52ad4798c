/* smtpd.h -- the session engine of mxgate-smtpd: shared types.
 *
 * struct smtpd_config holds what is read from control/ once per process
 * (a tcpserver child, or a listener worker serving many sessions);
 * struct session holds everything of one connection, including the
 * per-client settings taken from the environment (tcprules). Nothing of a
 * session lives in globals, so session_reset() makes the next one clean.
 */
#ifndef MXGATE_SMTPD_H
#define MXGATE_SMTPD_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "str.h"
#include "io.h"
#include "log.h"
#include "cdbx.h"
#include "tls.h"
#include "ucspitls.h"

#define ROW_NONE ROW_COUNT      /* a check that passes */
#define ROW_TEMPFAIL (ROW_COUNT + 1)  /* a check that could not be made (451, no decision to log) */
#define SMTP_LINE_MAX 512       /* RFC 5321 4.5.3.1.4: command line incl. CRLF */
#define ADDR_MAX 900            /* longest envelope address taken */
#define HOPS_MAX 100            /* Received + Delivered-To headers */

struct smtpd_config {
  str me, greeting, localiphost;
  unsigned long databytes;      /* 0: no limit */
  unsigned long timeout;        /* seconds, every read and write */
  str rcpthosts, badmailfrom, badrcptto, badhelo, relaymailfrom, recipients;
  str spflocalrules, spfexplain;
  bool have_badhelo;
  bool have_recipients;         /* control/recipients exists: its check applies */
  struct cdbx morercpthosts;
  const char *queue_program;     /* QMAILQUEUE as the configuration was read, or NULL */
  const char *argv0;
  /* set by mxgate-smtpd and mxgate-listen when QMAILQUEUE is unset: the
   * embedded queue, in this process (src/queue/direct.c): the message goes
   * straight into its Maildirs and a queue entry, no queue process */
  const struct direct_queue *direct_queue;
};

struct direct_queue {
  /* envelope: "Taddr\0" per recipient; NULL with a qmail-queue exit code in *code */
  void *(*open)(const char *sender, const char *envelope, size_t envlen, int *code);
  bool (*write)(void *d, const void *p, size_t n);       /* false: errno */
  int (*commit)(void *d);               /* qmail-queue exit code: 0 once durable */
  void (*discard)(void *d);
};
/* src/queue/direct.c, linked into mxgate-smtpd and mxgate-listen */
void *direct_open(const char *sender, const char *envelope, size_t envlen, int *code);
bool direct_write(void *d, const void *p, size_t n);
int direct_commit(void *d);
void direct_discard(void *d);

/* per-connection settings from the UCSPI environment and tcprules */
struct conn {
  char remoteip[64], localip[64], localport[8];
  char remotehost[256];
  char remoteinfo[256];
  char ident[256];              /* TCPREMOTEINFO as the connection began: what STARTTLS restores */
  bool have_remotehost;
  const char *relayclient;      /* RELAYCLIENT value, NULL if unset */
  const char *helocheck;        /* HELOCHECK, NULL if unset */
  unsigned long maxrcpt, tarpitcount, tarpitdelay, databytes;
  unsigned long data_min_rate;  /* DATA_MIN_RATE: bytes/s a message must keep up, 0 none */
  bool recipients450;
};

/* SMTPAUTH: which mechanisms, and whether MAIL needs them */
struct auth_policy {
  bool enabled, required, login_plain, cram, cleartext;
};

/* one recipient being checked */
struct rcpt {
  str addr;                     /* the address as it will be queued */
  const char *detail;           /* detail of the deciding row, or NULL */
  const char *reply_text;       /* replaces the row's reply text (SPF explanation), or NULL */
  enum row_id accept;           /* the Accept::RCPT/SPF row of the recipients check */
  bool no_at;                   /* given without a domain: qmail lets it through rcpthosts */
  bool relay_mailfrom;          /* relaying granted by control/relaymailfrom */
  bool local_sender;            /* LOCALMFCHECK passed: Accept::ORIG::Local_Sender */
};

struct session {
  const struct smtpd_config *cfg;
  struct conn conn;
  int logfd;
  pid_t pid;
  char **checkprogram;          /* argv after the program name (SMTP AUTH) */
  /* connection state */
  str helo;
  bool seen_helo, esmtp, tls, authenticated, quit;
  enum tls_mode tls_mode;
  struct tls *tls_conn;
  enum ucspitls ucspi;          /* TLS by sslserver: SMTPS (PROTO=SSL) or STARTTLS over UCSPI-TLS */
  struct tls_info tlsinfo;      /* protocol, cipher, client certificate, once s->tls */
  struct auth_policy auth;
  str auth_user;                /* the user of the last AUTH attempt */
  enum row_id auth_row;         /* Accept::AUTH::<mechanism> once authenticated */
  bool auth_failed;
  bool cert_relay;              /* a valid client certificate (UCSPITLS ? or @) */
  struct dns *dns;              /* resolver, opened on first use */
  bool helo_exempt;             /* badhelo "name!": no HELO checks at all */
  int helo_dns;                 /* HELOCHECK A/M verdict for this HELO: 0 unknown, 1 ok, 2 none */
  int mf_dns;                   /* MFDNSCHECK verdict for this sender: 0 unknown, 1 ok, 2 none */
  struct spf_answer *spf;       /* the transaction's SPF verdict, once spf_done */
  bool spf_done;
  unsigned auth_failures;
  unsigned errors;              /* unrecognised commands so far */
  /* transaction state (reset by RSET, HELO, EHLO, end of DATA) */
  bool seen_mail, smtputf8, size_too_big;
  str mailfrom;
  char bmf_form[2];             /* badmailfrom verdict: "", "?" (bypass), or the form as the detail */
  str envelope;                 /* "Taddr\0" per accepted recipient */
  str first_rcpt;
  unsigned long rcpt_count, rcpt_accepted, rcpt_failed;
  bool notorious;
  /* the buffers last, the output's before the input's: a session that was
   * never zeroed (mxgate-smtpd's, static) writes the fields and the start
   * of each buffer, which then fall on two pages rather than five */
  struct io_out out;
  struct io_in in;
};

/* session.c */
int smtpd_config_load(struct smtpd_config *cfg, const char *argv0);
/* QMAILQUEUE as the configuration was read, else mxgate-queue beside this program */
const char *smtpd_queue_program(const struct smtpd_config *cfg);
void conn_from_env(struct conn *c);
void session_init(struct session *s, const struct smtpd_config *cfg, int in, int out, int logfd);
/* session_init() of a session that is all zero bytes already (static
 * storage a process has not used): without the memset, which would write
 * each of its 26 KB, seven pages, at every start under tcpserver */
void session_init_zeroed(struct session *s, const struct smtpd_config *cfg, int in, int out, int logfd);
void session_reset_transaction(struct session *s);
int session_run(struct session *s);
void session_free(struct session *s);
const char *session_protocol(const struct session *s, char *buf, size_t cap);

/* reply.c: the one place that replies and logs decisions */
void reply(struct session *s, const char *line);
void reply_code(struct session *s, int code, const char *estatus, const char *text);
void decide(struct session *s, enum row_id row, const char *rcpt, size_t rcptlen, const char *detail);
void decide_log(struct session *s, enum row_id row, const char *rcpt, size_t rcptlen, const char *detail);
void reply_row(struct session *s, enum row_id row, bool temporary_variant);
void reply_row_text(struct session *s, enum row_id row, const char *base, bool temporary_variant);
const char *row_text(enum row_id row);

/* auth.c, tls_cmd.c */
void auth_policy_from_env(struct auth_policy *p);
void auth_advertise(const struct session *s, char *buf, size_t cap);
void smtp_auth(struct session *s, const char *arg, size_t len);
enum row_id auth_mail_check(const struct session *s);
bool tls_required(const struct session *s);
bool tls_offered(const struct session *s);
void smtp_starttls(struct session *s, const char *arg, size_t len);
bool tls_implicit(struct session *s);

/* localip.c */
void localip_rewrite(const struct smtpd_config *cfg, str *addr);

/* dnscheck.c */
struct dns *session_dns(struct session *s);
enum row_id helo_dns_check(struct session *s, struct rcpt *r);
enum row_id mf_dns_check(struct session *s, struct rcpt *r);
bool mf_dns_at_mail(struct session *s);

/* spfcheck.c */
struct spf_answer;
int spf_level(void);
enum row_id spf_rcpt_check(struct session *s, struct rcpt *r);
bool spf_passed(const struct session *s);
void spf_header(struct session *s, str *out);
void spf_reset(struct session *s);

/* grey.c */
enum row_id grey_check(struct session *s, struct rcpt *r);

/* mav.c */
enum row_id mav_check_local(struct session *s, struct rcpt *r);

/* commands.c */
void cmd_dispatch(struct session *s, str *line);

/* addr.c */
int addr_parse(const char *arg, size_t len, str *addr, const char **params);
bool addr_domain(const char *addr, size_t len, const char **dom, size_t *domlen);

/* helo.c */
enum row_id helo_check(struct session *s, struct rcpt *r);

/* mailfrom.c */
void smtp_mail(struct session *s, const char *arg, size_t len);
char badmailfrom_check(const struct session *s);

/* rcpt.c, relay.c, recipients.c */
void smtp_rcpt(struct session *s, const char *arg, size_t len);
bool rcpthosts_match(const struct smtpd_config *cfg, const char *addr, size_t len);
bool relaymailfrom_match(const struct smtpd_config *cfg, const char *addr, size_t len);
bool addrlist_match(const str *list, const char *addr, size_t len, char *form);
int recipients_check(struct session *s, struct rcpt *r);

/* data.c, queue.c, received.c */
void smtp_data(struct session *s);
struct queue_job { pid_t pid; int msgfd, envfd; void *direct; const struct direct_queue *ops; };
int queue_open(struct session *s, struct queue_job *q);     /* 0, -1 (no queue program), or an exit code */
int queue_close(struct queue_job *q, const str *envelope, const str *mailfrom);
int queue_abort(struct queue_job *q);
int queue_fail(struct queue_job *q, int write_errno);
bool queue_write(struct queue_job *q, const void *p, size_t n);
const char *queue_exit_reply(int status, bool *permanent);
bool received_header(struct session *s, str *out);

#endif
