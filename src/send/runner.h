/* runner.h -- mxgate-send's runner (runner.c) and its delivery workers (worker.c) */
#ifndef MXGATE_RUNNER_H
#define MXGATE_RUNNER_H

struct send_config {
  int workers;                  /* control/concurrencyremote: deliveries at once (default 20) */
  int per_destination;          /* control/concurrencydestination: connections to one domain (default 10) */
  long long lifetime;           /* control/queuelifetime in seconds (default 604800, 7 days) */
  int timeout;                  /* control/timeoutremote: every read and write (default 1200) */
  long long bouncewarn;         /* control/bouncewarn: seconds queued before the delay warning (0: none) */
  char helo[256];               /* control/helohost, else control/me */
};

int send_config_load(struct send_config *c);     /* 0, or -1 said on stderr */
int runner_main(const struct send_config *c);    /* until SIGTERM */
void worker_main(const struct send_config *c, int sock);   /* never returns */
#endif
