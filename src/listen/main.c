/* main.c -- mxgate-listen: options, then the pool (see listen.h, mxgate-listen(8)).
 *
 * Every path given on the command line is checked before the first
 * client: a rules file that cannot be opened or a checkprogram that
 * cannot be run ends the listener with a message saying which, instead of
 * every client being denied (or every AUTH failing) without a word. A
 * relative -x path is taken from the directory the listener was started
 * in, as tcpserver takes it, whatever $MXGATE_HOME says.
 */
#include "listen.h"
#include "cdbx.h"
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "control.h"

/* -x: made absolute (workers look it up per session), and opened once now */
static int rules_check(struct listen_config *c)
{
  static char full[4096];
  if (!c->rules) return 0;
  if (c->rules[0] != '/') {
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd) || snprintf(full, sizeof full, "%s/%s", cwd, c->rules) >= (int)sizeof full) {
      fprintf(stderr, "mxgate-listen: rules file %s: cannot make its path absolute\n", c->rules);
      return -1;
    }
    c->rules = full;
  }
  struct cdbx db;
  errno = 0;
  int r = cdbx_open(&db, c->rules);
  if (r != 1) {
    fprintf(stderr, "mxgate-listen: cannot open rules file %s: %s\n", c->rules,
            r == 0 ? "No such file or directory" : errno ? strerror(errno) : "not a cdb");
    return -1;
  }
  cdbx_close(&db);
  return 0;
}

/* the checkprogram: a file we may execute, as execvp would find it */
static int checkprogram_check(char **argv)
{
  if (!argv[0]) return 0;
  const char *name = argv[0];
  if (strchr(name, '/')) {
    if (access(name, X_OK) == 0) return 0;
    fprintf(stderr, "mxgate-listen: checkprogram %s: %s\n", name, strerror(errno));
    return -1;
  }
  const char *path = getenv("PATH");
  char *dirs = strdup(path && *path ? path : "/bin:/usr/bin"), *save = NULL;
  for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    char full[4096];
    snprintf(full, sizeof full, "%s/%s", *d ? d : ".", name);
    if (access(full, X_OK) == 0) { free(dirs); return 0; }
  }
  free(dirs);
  fprintf(stderr, "mxgate-listen: checkprogram %s: not found in PATH\n", name);
  return -1;
}

static int usage(void)
{
  fputs("usage: mxgate-listen [-x rules.cdb] [-w min:max] [-n max_use] [-i per_ip] [-u user] [-g group] [-G]\n"
        "                     IP:PORT[,NAME=value...] ... [-- checkprogram subprogram...]\n", stderr);
  return 100;
}

int main(int argc, char **argv)
{
  static struct listen_config c = { .min_workers = 4, .max_workers = 64, .max_use = 1000, .per_ip = -1 };
  const char *user = NULL, *group = NULL;
  bool group_commit = true;
  int opt;
  const char *last_optarg = NULL;
  c.argv0 = argv[0];
  while ((opt = getopt(argc, argv, "+x:w:n:i:u:g:G")) != -1) {
    switch (opt) {
    case 'x': c.rules = optarg; break;
    case 'w': if (sscanf(optarg, "%d:%d", &c.min_workers, &c.max_workers) != 2) return usage(); break;
    case 'n': c.max_use = strtoul(optarg, NULL, 10); break;
    case 'i': c.per_ip = atoi(optarg); break;
    case 'u': user = optarg; break;
    case 'g': group = optarg; break;
    case 'G': group_commit = false; break;
    default: return usage();
    }
    last_optarg = optarg;
  }
  if (c.min_workers < 1 || c.max_workers < c.min_workers || c.max_workers > WORKERS_LIMIT) return usage();
  if (c.per_ip < 0) c.per_ip = c.max_workers / 2 > PER_IP_FLOOR ? c.max_workers / 2 : PER_IP_FLOOR;
  /* getopt eats a "--" right after the options (no address: the sockets
   * come from systemd); what follows it is still the checkprogram */
  int i = optind;
  if (i > 1 && strcmp(argv[i - 1], "--") == 0 && argv[i - 1] != last_optarg) i--;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++)
    if (listener_add(&c, argv[i]) < 0) return 111;
  c.checkprogram = i < argc ? argv + i + 1 : argv + argc;
  if (rules_check(&c) < 0 || checkprogram_check(c.checkprogram) < 0) return 111;
  if (listeners_from_systemd(&c) < 0 || c.nlisteners == 0) return usage();
  if (user) {
    struct passwd *pw = getpwnam(user);
    if (!pw) { fprintf(stderr, "mxgate-listen: unknown user %s\n", user); return 111; }
    c.uid = pw->pw_uid; c.gid = pw->pw_gid; c.drop_privileges = true;
  }
  if (group) {
    struct group *gr = getgrnam(group);
    if (!gr) { fprintf(stderr, "mxgate-listen: unknown group %s\n", group); return 111; }
    c.gid = gr->gr_gid;
  }
  if (group_commit) {                         /* the committer's socket lives in the queue directory */
    char dir[4096];
    control_path(dir, sizeof dir, "queue");
    mkdir(dir, 0711);
    if (!control_path(c.commit_sock, sizeof c.commit_sock, "queue/commit.sock")) c.commit_sock[0] = 0;
  }
  return pool_run(&c);
}
