/* netaddr.h -- connecting to a partner given as "IP#PORT", "IP:PORT" for
 * IPv4, "[IPv6]:PORT", or a unix socket path (starts with '/'), as the
 * POSTGREY, CLAMD and SPAMD settings are written. Connects with a timeout. */
#ifndef MXGATE_NETADDR_H
#define MXGATE_NETADDR_H
/* a connected socket, or -1 with errno set (EINVAL for a bad spec) */
int netaddr_connect(const char *spec, int timeout_ms);
#endif
