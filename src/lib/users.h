/* users.h -- the users file: one mail account a line (docs/users.5).
 *
 * Owns the line format of $MXGATE_HOME/control/users and of the records of
 * control/users.cdb, shared by mxgate-authuser (reads them) and mxgate-cdb
 * (compiles the text into the cdb):
 *
 *     [!]name:hash:secret:uid:gid:home:maildir
 *
 * `!` disables the account; hash is a crypt(3) hash for plaintext logins
 * (empty or `*` or `!...`: none); secret is the recoverable CRAM-MD5/APOP
 * secret (empty: none; `\:` and `\\` escape a colon and a backslash);
 * uid and gid are both empty or both numbers; home is an absolute path;
 * maildir is empty (home/Maildir), absolute, or relative to home.
 * Blank lines and lines starting with `#` carry no entry.
 *
 * A cdb record is key = name, data = the canonical line (users_format_line),
 * so readers of the cdb parse its data with users_parse_line again.
 */
#ifndef MXGATE_USERS_H
#define MXGATE_USERS_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "str.h"

#define USERS_NAME_MAX   255
#define USERS_HASH_MAX   255
#define USERS_SECRET_MAX 255
#define USERS_PATH_MAX   1023
#define USERS_LINE_MAX   4096

struct user_entry {
  bool disabled;                      /* line started with '!' */
  bool has_ids;                       /* uid and gid were given */
  bool plain_password;                /* users/authuser: the secret is the password too */
  uid_t uid;
  gid_t gid;
  char name[USERS_NAME_MAX + 1];
  char hash[USERS_HASH_MAX + 1];      /* crypt(3) hash, "" or "*"/"!..." = none */
  char secret[USERS_SECRET_MAX + 1];  /* unescaped; "" = no challenge-response */
  char home[USERS_PATH_MAX + 1];
  char maildir[USERS_PATH_MAX + 1];   /* as written (may be relative or "") */
};

/* Parse one line (without or with its trailing "\n" / "\r\n").
 * 1: an entry in *out; 0: blank or comment line; -1: malformed, *err says
 * why (a constant string, never containing the line's secrets). */
int users_parse_line(const char *line, size_t len, struct user_entry *out, const char **err);

/* true when the hash field allows plaintext logins (a crypt hash "$...") */
bool users_has_password(const struct user_entry *u);

/* the canonical line of u (escaped, no newline) appended to out */
bool users_format_line(const struct user_entry *u, str *out);

/* the cdb record of u: key = the name, data = the canonical line */
bool users_cdb_record(const struct user_entry *u, str *key, str *data);

/* the Maildir of u as an absolute path into out (home/Maildir when empty) */
bool users_maildir(const struct user_entry *u, char *out, size_t cap);

/* forget u's secrets (explicit_bzero of the whole entry) */
void users_entry_wipe(struct user_entry *u);

#endif
