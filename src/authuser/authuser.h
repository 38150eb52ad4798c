/* authuser.h -- mxgate-authuser, the checkpassword-compatible authenticator.
 *
 * Reads "user\0password\0timestamp\0" (at most 512 bytes) on fd 3, looks
 * the user up in control/users.cdb (or control/users, or s/qmail's
 * users/authuser when neither exists), verifies a crypt(3)
 * hash for plaintext passwords or the CRAM-MD5 / APOP digest against the
 * stored secret, and on success execs the subprogram as the user.
 * Exit codes as in checkpassword: 1 refused, 2 misuse, 111 temporary.
 * See docs/mxgate-authuser.8 and docs/users.5.
 */
#ifndef MXGATE_AUTHUSER_H
#define MXGATE_AUTHUSER_H
#include <stdbool.h>
#include <stddef.h>
#include "users.h"

#define AUTH_INPUT_MAX 512
#define AUTH_DIGEST_LEN 16        /* MD5 / HMAC-MD5 output */

enum { EXIT_REFUSED = 1, EXIT_MISUSE = 2, EXIT_TEMP = 111 };

/* the checkpassword input, split in place (each part NUL-terminated) */
struct auth_request {
  char buf[AUTH_INPUT_MAX + 2];
  size_t len;
  const char *user;  size_t user_len;
  const char *pass;  size_t pass_len;
  const char *stamp; size_t stamp_len;  /* challenge / APOP timestamp, may be "" */
};

/* request.c */
/* split buf[0..len) (already in r->buf) into user, password, timestamp;
 * false when the user or the password is not NUL-terminated */
bool request_split(struct auth_request *r);
/* read fd to end of file; 0 ok, EXIT_MISUSE (oversized, malformed or
 * fd not open), EXIT_TEMP (read error) */
int request_read(int fd, struct auth_request *r);
void request_wipe(struct auth_request *r);

/* verify.c */
/* crypt(3) the password with hash as setting and compare in constant time */
bool verify_password(const char *hash, const char *pass);
/* one crypt(3) that always fails, so unknown users cost a known user's time */
void verify_dummy(const char *pass);
/* HMAC-MD5(secret, challenge) (RFC 2195) and MD5(timestamp secret) (RFC 1939) */
bool digest_cram_md5(const char *secret, const char *chal, size_t chal_len,
                     unsigned char out[AUTH_DIGEST_LEN]);
bool digest_apop(const char *secret, const char *stamp, size_t stamp_len,
                 unsigned char out[AUTH_DIGEST_LEN]);
/* the client's 32 hex digits equal the digest (constant time) */
bool verify_hex_digest(const char *hex, size_t hex_len, const unsigned char d[AUTH_DIGEST_LEN]);
/* the whole decision for a known user (u != NULL) or an unknown one */
bool verify_credentials(const struct user_entry *u, const struct auth_request *r);

/* lookup.c */
/* 1 found into *u, 0 no such user, -1 temporary problem (*why says which) */
int users_lookup(const char *name, size_t len, struct user_entry *u, const char **why);

/* legacy.c: s/qmail's users/authuser; as users_lookup, and -2 when the
 * file does not exist */
int legacy_lookup(const char *name, size_t len, struct user_entry *u, const char **why);

/* launch.c */
/* set up the user's environment, identity and directory and exec argv;
 * returns only on failure (the exit code to use, *why filled) */
int launch_subprogram(const struct user_entry *u, char **argv, const char **why);
/* true when argv asks for nothing to run ("", true, /bin/true) */
bool launch_is_noop(char **argv);

/* hash.c: --hash [PREFIX]: a crypt(3) hash of the password on stdin */
int hash_main(int argc, char **argv);

/* authuser.c */
int authuser_main(int argc, char **argv);

#endif
