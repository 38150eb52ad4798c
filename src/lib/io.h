/* io.h -- buffered network I/O with a timeout on every read and write.
 *
 * An io_in reads ahead (pipelining): what the client sent beyond the
 * current command stays buffered for the next one. Before it blocks for
 * more input it flushes its io_out, so pipelined replies leave in order
 * and in as few writes as possible. The raw read/write functions can be
 * swapped (TLS) without the protocol code noticing; io_in_discard() drops
 * read-ahead when the transport changes (STARTTLS injection defence).
 * Besides the timeout of each read, an io_in may have a deadline for a
 * whole operation (a command line, a message): past it, a read fails
 * with ETIMEDOUT however the bytes trickle in.
 */
#ifndef MXGATE_IO_H
#define MXGATE_IO_H
#include <stddef.h>
#include <stdbool.h>
#include <sys/types.h>
#include "str.h"

#define IO_INBUF 16384
#define IO_OUTBUF 8192

/* raw transfer: returns bytes moved, 0 at end of input, -1 with errno
 * (ETIMEDOUT when nothing moved within timeout seconds) */
typedef ssize_t (*io_fn)(void *ctx, int fd, void *buf, size_t len, int timeout);

struct io_out {
  int fd;
  int timeout;
  io_fn write;
  void *ctx;
  bool failed;
  size_t len;
  char buf[IO_OUTBUF];
};

struct io_in {
  int fd;
  int timeout;
  io_fn read;
  void *ctx;
  struct io_out *flush;   /* flushed before blocking; may be NULL */
  long long deadline_ms;  /* 0 none; else no read after this io_now_ms() */
  size_t pos, end;
  char buf[IO_INBUF];
};

/* all of p to a blocking fd (EINTR retried); false on an error */
bool fd_write_all(int fd, const void *p, size_t n);

/* all of p to fd (non-blocking, or a file) within timeout_ms in all;
 * false on an error, errno ETIMEDOUT when the reader did not take it */
bool fd_write_timed(int fd, const void *p, size_t n, int timeout_ms);

ssize_t io_fd_read(void *ctx, int fd, void *buf, size_t len, int timeout);
ssize_t io_fd_write(void *ctx, int fd, void *buf, size_t len, int timeout);

void io_out_init(struct io_out *o, int fd, int timeout);
void io_in_init(struct io_in *in, int fd, int timeout, struct io_out *flush);

bool io_put(struct io_out *o, const void *buf, size_t len);
bool io_puts(struct io_out *o, const char *s);
bool io_flush(struct io_out *o);

/* CLOCK_MONOTONIC in milliseconds, the clock of deadline_ms */
long long io_now_ms(void);

/* more input into the buffer: >0 bytes added, 0 end of input, -1 error
 * (ETIMEDOUT: the read's timeout or the deadline passed) */
ssize_t io_fill(struct io_in *in);
size_t io_avail(const struct io_in *in);
const char *io_peek(const struct io_in *in);
void io_consume(struct io_in *in, size_t n);
void io_discard(struct io_in *in);

/* One line up to and including LF. The line (without CR LF) is stored in
 * line, at most max bytes; longer lines are consumed to their end and
 * reported with *toolong. Returns 1 for a line, 0 at end of input without
 * a complete line, -1 on error or timeout. */
int io_getline(struct io_in *in, str *line, size_t max, bool *toolong);

#endif
