/* listen.h -- mxgate-listen: mxgate's own listener with a pre-forked pool.
 *
 * The parent binds the listening sockets (or takes them from systemd) and
 * keeps a pool of workers; each worker loads the control files once and
 * serves one session after another with the same session engine as
 * mxgate-smtpd, presenting it the UCSPI environment tcpserver would and
 * writing tcpserver's own log lines, so the log scheme and mxgate-sessions
 * work unchanged.
 */
#ifndef MXGATE_LISTEN_H
#define MXGATE_LISTEN_H
#include <stdbool.h>
#include <sys/types.h>
#include <netinet/in.h>

#define LISTEN_MAX 16
#define LISTEN_ENV_MAX 16
#define WORKERS_LIMIT 1024

struct listener {
  int fd;
  char ip[64], port[8];
  int nenv;
  char *env[LISTEN_ENV_MAX];     /* per-port settings, "NAME=value" */
};

/* one slot per worker, in memory shared by the pool */
struct slot {
  volatile pid_t pid;
  volatile int busy;             /* serving a session */
  volatile long idle_since;      /* monotonic seconds: when its last session ended (or it started) */
  volatile int retiring;         /* told to go: the pool is above its minimum and it was idle */
  volatile long long busy_since; /* monotonic ms: when its current session began */
  volatile int waiting;          /* greeted a client and waits a moment for its first command (park.c) */
  char ip[64];                   /* its client while busy */
};

struct pool_shared {
  struct slot slots[WORKERS_LIMIT];
};

struct listen_config {
  struct listener listeners[LISTEN_MAX];
  int nlisteners;
  const char *rules;             /* tcprules cdb, or NULL */
  int min_workers, max_workers;
  unsigned long max_use;         /* sessions per worker before it is replaced */
  int per_ip;                    /* concurrent sessions per client IP, 0: no limit */
  uid_t uid; gid_t gid;
  bool drop_privileges;
  char **checkprogram;
  char commit_sock[256];         /* group commit for mxgate-queue, "" when off */
  char *argv0;
  pid_t listener_pid;            /* the parent: its workers and committer end when it is gone */
  int park_fd;                   /* a worker parks idle connections here (park.c), -1 none */
  int handoff_fd;                /* in a worker: where the listener hands it parked connections */
};

/* -i by default: half of the max workers, at least this many */
#define PER_IP_FLOOR 10

/* a worker waits this long for a client's first command before it parks it */
#define PARK_GRACE_MS 1000
#define PARK_RUSH_MS 20              /* the same when every worker is busy and more clients wait */
#define PARK_MAX 20000               /* parked connections at most (and the file limit) */

/* a worker idle this long while the pool is above its minimum is retired */
#define WORKER_IDLE_RETIRE 10

/* sockets.c */
int listener_add(struct listen_config *c, const char *spec);
int listeners_from_systemd(struct listen_config *c);

/* rules.c: 1 allow (env appended to envs), 0 deny, -1 error */
int rules_apply(const char *cdbpath, const char *ip, char **envs, int *nenv, int max);

/* worker.c */
void worker_main(const struct listen_config *c, struct pool_shared *sh, int slot);

/* commit.c: the group-commit server (never returns) */
void commit_main(const struct listen_config *c);

/* park.c: the listener's lot of idle connections */
/* a connection's addresses as tcpserver's lines give them (worker.c) */
struct conn_text { char rip[64], rport[8], lip[64], lport[8], where[200]; };
void logline(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_unserved(int fd, long pid);

struct parking;
struct parking *parking_open(int max);
int parking_tx(const struct parking *p);
int parking_pollfd(const struct parking *p);
void parking_close_in_child(const struct parking *p);
/* takes parked connections in, hands those whose first command arrived to idle workers, expires */
void parking_run(struct parking *p, const struct listen_config *c, struct pool_shared *sh, const int *handoff);
void parking_close_all(struct parking *p, const char *msg);
/* what travels with a parked connection */
struct park_note {
  int listener;                  /* index of its listening socket, for the per-port settings */
  long long deadline_ms;         /* monotonic: its greeting plus timeoutsmtpd */
};
/* an fd over a unix socket, with its note */
int fd_send(int sock, int fd, const struct park_note *note);
int fd_recv(int sock, struct park_note *note);

/* pool.c */
int pool_run(struct listen_config *c);
/* in a child of the listener: it gets sig when the listener dies; false
 * when the listener is already gone */
bool follow_listener(const struct listen_config *c, int sig);
long monotonic_seconds(void);
long long monotonic_ms(void);

#endif
