/* fuzz_authuser_request.c -- libFuzzer: what mxgate-authuser reads.
 * The first byte picks what the rest is:
 *   0  the checkpassword request on fd 3 (a pipe here): request_read and
 *      its split; the parts lie in the buffer, each ends in a NUL, and
 *      over 512 bytes is misuse
 *   1  control/users (written to a scratch $MXGATE_HOME): its first line
 *      is the name asked for, the whole text is the file; users_lookup
 *      reads and parses it as mxgate-authuser does. A user found has the
 *      name asked for, its canonical line (users_format_line) parses back
 *      to the same entry, its Maildir is an absolute path, and its
 *      challenge-response digests are checked against the request's
 *      bytes (verify_hex_digest; crypt(3) is left out: one call costs
 *      milliseconds by design)
 *   2  one users line: users_parse_line, and the same round trip
 * OpenSSL and libcrypt are not instrumented: no MemorySanitizer run. */
#include "authuser.h"
#include <assert.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char home[64];

static void same_entry(const struct user_entry *a, const struct user_entry *b)
{
  assert(a->disabled == b->disabled && a->has_ids == b->has_ids);
  assert(!a->has_ids || (a->uid == b->uid && a->gid == b->gid));
  assert(strcmp(a->name, b->name) == 0 && strcmp(a->hash, b->hash) == 0);
  assert(strcmp(a->secret, b->secret) == 0 && strcmp(a->home, b->home) == 0);
  assert(strcmp(a->maildir, b->maildir) == 0);
}

static void round_trip(const struct user_entry *u)
{
  static struct user_entry back;
  str line = STR_INIT(1 << 16), key = STR_INIT(1 << 16), data = STR_INIT(1 << 16);
  const char *err = NULL;
  assert(users_format_line(u, &line));
  assert(memchr(line.s, '\n', line.len) == NULL);
  assert(users_parse_line(line.s, line.len, &back, &err) == 1);
  same_entry(u, &back);
  assert(users_cdb_record(u, &key, &data));
  assert(key.len == strlen(u->name) && memcmp(key.s, u->name, key.len) == 0);
  char md[USERS_PATH_MAX + 16];
  if (users_maildir(u, md, sizeof md)) assert(md[0] == '/');
  (void)users_has_password(u);
  str_free(&line); str_free(&key); str_free(&data);
}

static void request(const uint8_t *data, size_t size)
{
  static struct auth_request r;
  int fds[2];
  if (size > 60000 || pipe(fds) < 0) return;
  fcntl(fds[1], F_SETPIPE_SZ, 1 << 16);
  if (write(fds[1], data, size) != (ssize_t)size) abort();
  close(fds[1]);
  int rc = request_read(fds[0], &r);                  /* closes fds[0] */
  if (size > AUTH_INPUT_MAX) { assert(rc == EXIT_MISUSE); return; }
  if (rc) { assert(rc == EXIT_MISUSE); return; }
  assert(r.len == size);
  assert(r.user == r.buf && strlen(r.user) == r.user_len);
  assert(r.pass > r.user && r.pass + r.pass_len < r.buf + sizeof r.buf && strlen(r.pass) == r.pass_len);
  assert(strlen(r.stamp) == r.stamp_len);
  assert(r.stamp_len == 0 || (r.stamp > r.pass && r.stamp + r.stamp_len <= r.buf + r.len));
  request_wipe(&r);
}

static void users_file(const uint8_t *data, size_t size)
{
  static struct user_entry u;
  char path[128];
  const char *nl = memchr(data, '\n', size);
  size_t namelen = nl ? (size_t)(nl - (const char *)data) : size;
  snprintf(path, sizeof path, "%s/control/users", home);
  FILE *f = fopen(path, "w");
  if (!f) abort();
  if (fwrite(data, 1, size, f) != size) abort();
  fclose(f);
  const char *why = NULL;
  int r = users_lookup((const char *)data, namelen, &u, &why);
  if (r < 0) { assert(why && strlen(why) < 200); return; }
  if (r == 0) return;
  assert(strlen(u.name) == namelen && memcmp(u.name, data, namelen) == 0);
  round_trip(&u);
  if (u.secret[0]) {
    unsigned char d[AUTH_DIGEST_LEN];
    const char *rest = nl ? nl + 1 : "";
    size_t restlen = nl ? size - namelen - 1 : 0;
    if (digest_apop(u.secret, rest, restlen, d)) (void)verify_hex_digest(rest, restlen < 32 ? restlen : 32, d);
    if (digest_cram_md5(u.secret, rest, restlen, d)) (void)verify_hex_digest(rest, restlen < 32 ? restlen : 32, d);
  }
  users_entry_wipe(&u);
}

static void users_line(const uint8_t *data, size_t size)
{
  static struct user_entry u;
  const char *err = NULL;
  int r = users_parse_line((const char *)data, size, &u, &err);
  if (r < 0) { assert(err); return; }
  if (r == 1) round_trip(&u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!home[0]) {
    char ctl[96];
    snprintf(home, sizeof home, "%s/mxgate-fuzz-authuser-%d",     /* memory, when there is some */
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
    snprintf(ctl, sizeof ctl, "%s/control", home);
    mkdir(home, 0700);
    mkdir(ctl, 0700);
    setenv("MXGATE_HOME", home, 1);
  }
  if (size < 1 || size > 65536) return 0;
  switch (data[0] % 3) {
    case 0: request(data + 1, size - 1); break;
    case 1: users_file(data + 1, size - 1); break;
    default: users_line(data + 1, size - 1); break;
  }
  return 0;
}
