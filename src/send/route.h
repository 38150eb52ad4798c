/* route.h -- next hops for a domain (route.c) */
#ifndef MXGATE_ROUTE_H
#define MXGATE_ROUTE_H
#include "send.h"
#include "str.h"

#define ROUTE_HOPS_MAX 16

struct routes { str lines, tls; };     /* control/smtproutes and tlsdestinations, read once */
struct route { size_t n; struct hop hop[ROUTE_HOPS_MAX]; };
enum route_status { ROUTE_OK, ROUTE_TEMP, ROUTE_PERM };
struct dns;

int routes_load(struct routes *r);     /* 0, or -1 (unreadable: said on stderr) */
void routes_free(struct routes *r);
/* the hops for mail from sender to domain, in the order to try them;
 * else why (a reply line) */
enum route_status route_find(const struct routes *r, struct dns *d, const char *domain, const char *sender,
                             struct route *out, char *why, size_t cap);
/* control/tlsdestinations' rule for mail from sender to domain (through
 * the smtproutes relay host relay, or NULL) into h; false when the rule
 * that applies is malformed (tlsdest.c) */
bool tlsdest_apply(const str *lines, const char *relay, const char *domain, const char *sender, struct hop *h);
#endif
