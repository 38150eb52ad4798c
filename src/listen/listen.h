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
};

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

/* pool.c */
int pool_run(struct listen_config *c);
/* in a child of the listener: it gets sig when the listener dies; false
 * when the listener is already gone */
bool follow_listener(const struct listen_config *c, int sig);
long monotonic_seconds(void);

#endif
