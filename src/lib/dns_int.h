/* dns_int.h -- what the dns*.c files share and nobody else needs: one raw
 * query, and the walk over an answer's records of one type at the end of
 * its CNAME chain. */
#ifndef MXGATE_DNS_INT_H
#define MXGATE_DNS_INT_H
#include "dns.h"

#define DNS_T_A     1
#define DNS_T_CNAME 5
#define DNS_T_PTR   12
#define DNS_T_MX    15
#define DNS_T_TXT   16
#define DNS_T_AAAA  28

/* one query; on DNS_FOUND *abuf holds the answer (free() it) */
enum dns_status dns_query(struct dns *d, const char *name, int type,
                          unsigned char **abuf, int *alen);

struct dns_rr {
  const unsigned char *msg;   /* the whole message, for names in rdata */
  int msglen;
  int rdata;                  /* offset of the rdata in msg */
  int rdlen;
};
/* called for each record; return false to stop early */
typedef bool (*dns_rr_fn)(void *ctx, const struct dns_rr *rr);

/* the records of type owned by the end of qname's CNAME chain; FOUND if
 * fn was called at least once, NODATA if none, TEMP for a chain that
 * does not end, PERM for a malformed message */
enum dns_status dns_answer_walk(const unsigned char *msg, int len,
                                const char *qname, int type,
                                dns_rr_fn fn, void *ctx);
/* the name at off in msg, as text without the final dot ("" for the
 * root); false if malformed or if a label holds '.' or a NUL byte */
bool dns_read_name(const unsigned char *msg, int len, int off,
                   char *out, size_t cap);

/* what one answer to a query for name holds, as dns_ip (appending to
 * out), dns_mx, dns_txt and dns_ptr take it apart after their query (the
 * fuzz harness and the unit tests call them on bytes of their own) */
enum dns_status dns_ip_answer(const unsigned char *msg, int len, const char *name, int family,
                              struct dns_ips *out);
enum dns_status dns_mx_answer(const unsigned char *msg, int len, const char *name, struct dns_mxs *out);
enum dns_status dns_txt_answer(const unsigned char *msg, int len, const char *name, struct dns_txts *out);
enum dns_status dns_ptr_answer(const unsigned char *msg, int len, const char *name, struct dns_names *out);

#endif
