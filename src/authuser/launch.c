/* launch.c -- running the subprogram as the authenticated user.
 *
 * Sets USER, HOME and MAILDIR (the absolute Maildir, for the POP3 server);
 * when running as root and the entry names a uid and gid, becomes that
 * user (setgroups, setgid, setuid -- and checks root cannot be regained);
 * changes to HOME; execs the subprogram with the rest of the environment
 * left as the caller set it (TCPREMOTEIP and friends). Any failure is a
 * temporary problem (111): the password was right, the setup was not.
 * An account of users/authuser that control/maildirs does not know has no
 * home: the subprogram then gets USER only and the caller's directory.
 */
#include "authuser.h"
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool launch_is_noop(char **argv)
{
  const char *p = argv[0];
  return !p || !p[0] || strcmp(p, "true") == 0 || strcmp(p, "/bin/true") == 0 ||
         strcmp(p, "/usr/bin/true") == 0;
}

static bool set_environment(const struct user_entry *u, const char **why)
{
  char maildir[2 * USERS_PATH_MAX + 16];
  if (!users_maildir(u, maildir, sizeof maildir)) { *why = "maildir path too long"; return false; }
  if (setenv("USER", u->name, 1) < 0 || setenv("HOME", u->home, 1) < 0 ||
      setenv("MAILDIR", maildir, 1) < 0) {
    *why = "cannot set USER, HOME, MAILDIR";
    return false;
  }
  return true;
}

static bool become_user(const struct user_entry *u, const char **why)
{
  if (geteuid() != 0 || !u->has_ids) return true;
  if (setgroups(1, &u->gid) < 0 || setgid(u->gid) < 0 || setuid(u->uid) < 0) {
    *why = "cannot change to the user's uid and gid";
    return false;
  }
  if (u->uid != 0 && (setuid(0) == 0 || geteuid() == 0)) {
    *why = "root privileges could be regained after setuid";
    return false;
  }
  return true;
}

int launch_subprogram(const struct user_entry *u, char **argv, const char **why)
{
  if (!u->home[0]) {                      /* users/authuser without a Maildir: as qmail-authuser, USER only */
    if (setenv("USER", u->name, 1) < 0) { *why = "cannot set USER"; return EXIT_TEMP; }
    execvp(argv[0], argv);
    *why = "cannot run the subprogram";
    return EXIT_TEMP;
  }
  if (!set_environment(u, why) || !become_user(u, why)) return EXIT_TEMP;
  if (chdir(u->home) < 0) { *why = "cannot change to the home directory"; return EXIT_TEMP; }
  execvp(argv[0], argv);
  *why = "cannot run the subprogram";
  return EXIT_TEMP;
}
