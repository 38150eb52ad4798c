/* child.h -- waiting for a child process (the checkprogram, the queue
 * program) with a deadline: a partner that hangs is killed, never waited
 * for without end. */
#ifndef MXGATE_CHILD_H
#define MXGATE_CHILD_H
#include <sys/types.h>
/* waits up to timeout_ms for pid; 1 and its wait status in *status, or 0
 * when it did not finish in time (it is killed with SIGKILL and reaped),
 * or -1 when it cannot be waited for */
int child_wait(pid_t pid, long long timeout_ms, int *status);
#endif
