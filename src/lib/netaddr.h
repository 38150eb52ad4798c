/* netaddr.h -- connecting to a partner given as "IP#PORT", "IP:PORT" for
 * IPv4, "[IPv6]:PORT", or a unix socket path (starts with '/'), as the
 * POSTGREY, CLAMD and SPAMD settings are written. Connects with a timeout. */
#ifndef MXGATE_NETADDR_H
#define MXGATE_NETADDR_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
/* a connected socket, or -1 with errno set (EINVAL for a bad spec) */
int netaddr_connect(const char *spec, int timeout_ms);

/* The whole conversation with a partner has one budget of time, not each
 * read or write: a partner that dribbles cannot stretch it. netaddr_wait
 * waits until fd is ready for events (POLLIN/POLLOUT), spending at most
 * *left_ms and taking what it spent off; 1 ready, 0 the budget is spent,
 * -1 error. netaddr_send / netaddr_recv work on a non-blocking fd within
 * the budget: bytes moved, or -1 with errno (ETIMEDOUT when out of time). */
int netaddr_wait(int fd, short events, long long *left_ms);
bool netaddr_send(int fd, const void *p, size_t n, long long *left_ms);
ssize_t netaddr_recv(int fd, void *p, size_t cap, long long *left_ms);
long long netaddr_now_ms(void);
#endif
