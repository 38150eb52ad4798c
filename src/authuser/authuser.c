/* authuser.c -- the flow of mxgate-authuser: read, look up, verify, run.
 *
 * Exit codes (checkpassword interface): 0 only through the subprogram (or
 * directly when there is nothing to run), 1 credentials refused (unknown
 * user, disabled user, wrong password or digest), 2 misuse (no fd 3,
 * oversized or malformed input), 111 temporary problem (users database
 * missing or unreadable, cannot become the user, cannot run the
 * subprogram). Messages go to stderr (the server's log) and never contain
 * a password, a digest or a secret.
 */
#include "authuser.h"
#include <stdio.h>
#include <string.h>

static const char usage[] =
  "usage: mxgate-authuser subprogram [args...]   (fd 3: user\\0password\\0timestamp\\0)\n"
  "       mxgate-authuser --hash [PREFIX] < password\n";

static int fatal(int code, const char *why)
{
  fprintf(stderr, "mxgate-authuser: %s: %s\n", code == EXIT_TEMP ? "temporary failure" : "fatal", why);
  return code;
}

static int check_request(struct auth_request *r, struct user_entry *u)
{
  const char *why = "unknown problem";
  int found = users_lookup(r->user, r->user_len, u, &why);
  if (found < 0) return fatal(EXIT_TEMP, why);
  bool ok = verify_credentials(found ? u : NULL, r);
  return ok ? 0 : EXIT_REFUSED;
}

int authuser_main(int argc, char **argv)
{
  if (argc > 1 && strcmp(argv[1], "--hash") == 0) return hash_main(argc, argv);
  if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    fputs(usage, stdout);
    return 0;
  }
  struct auth_request r;
  struct user_entry u;
  int rc = request_read(3, &r);
  if (rc == EXIT_MISUSE) { fputs(usage, stderr); return fatal(rc, "no fd 3, input over 512 bytes, or name/password not \\0-terminated"); }
  if (rc) return fatal(rc, "cannot read fd 3");
  rc = check_request(&r, &u);
  request_wipe(&r);
  explicit_bzero(u.hash, sizeof u.hash);
  explicit_bzero(u.secret, sizeof u.secret);
  if (rc == 0 && !launch_is_noop(argv + 1)) {
    const char *why = "unknown problem";
    rc = launch_subprogram(&u, argv + 1, &why);
    fatal(rc, why);
  }
  users_entry_wipe(&u);
  return rc;
}
