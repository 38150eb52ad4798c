/* fuzz_smtpd_session.c -- libFuzzer: a whole SMTP session fed with fuzz
 * bytes (commands, pipelining, DATA with any line endings); replies go to
 * /dev/null, the log to a pipe that is checked to hold whole lines only.
 *
 * QMAILQUEUE is unset, so DATA commits through the embedded queue in this
 * process, as mxgate-smtpd does (src/queue/direct.c, linked as the
 * program links it): no fork, no exec. The home is on tmpfs (/dev/shm),
 * with example.test local (control/locals, control/maildirs: Maildirs for
 * postmaster, alice and bob, and one for "broken" without tmp/, which
 * cannot take a message, so its recipient goes into the queue entry and
 * is delivered from it after the commit) and d.test a relay domain (in
 * rcpthosts, not local: its recipients are queued in queue/todo). Other
 * local parts of example.test are local without a Maildir: kept in the
 * entry. After each session that opened the queue no work file may be
 * left in queue/tmp or a Maildir's tmp/ (a refused or broken DATA is taken
 * back whole); then what it delivered (queue/todo, the Maildirs' new/) is
 * removed, so every input starts from the same home.
 *
 * fuzz-with: src/queue
 */
#include "smtpd.h"
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

static struct smtpd_config cfg;
static int ready, queued;
static int null_fd, log_rd, log_wr;           /* kept: the run's own syscalls are most of its time */
static off_t empty_dir_size = -1;             /* on tmpfs, a directory's size counts its entries */

/* direct_open as main() installs it, counted: only a session that opened
 * the queue can have left files, so the others skip the sweep (it was
 * half the time of a run) */
static void *open_counted(const char *sender, const char *envelope, size_t envlen, int *code)
{
  queued++;
  return direct_open(sender, envelope, envlen, code);
}
static const struct direct_queue embedded = { open_counted, direct_write, direct_commit, direct_discard };
static char home[64];

static const char *const users[] = { "postmaster", "alice", "bob", "broken" };
#define NUSERS (sizeof users / sizeof *users)

static void put(const char *dir, const char *name, const char *text)
{
  char p[256];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  if (!f || fputs(text, f) < 0 || fclose(f) != 0) abort();
}

static void dir(const char *fmt, const char *a, const char *b)
{
  char p[256];
  snprintf(p, sizeof p, fmt, a, b);
  if (mkdir(p, 0700) != 0) abort();
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st; (void)flag; (void)ftw;
  return remove(path);
}

static void remove_home(void) { nftw(home, remove_one, 16, FTW_DEPTH | FTW_PHYS); }

static void setup(void)
{
  snprintf(home, sizeof home, "/dev/shm/mxgate-fuzz-smtpd-XXXXXX");
  if (!mkdtemp(home)) {                       /* no tmpfs there: the same on disk, slower */
    snprintf(home, sizeof home, "/tmp/mxgate-fuzz-smtpd-XXXXXX");
    if (!mkdtemp(home)) abort();
  }
  atexit(remove_home);                        /* tmpfs is memory */
  dir("%s/control%s", home, "");              /* a home without control/ is a configuration error */
  dir("%s/maildirs%s", home, "");
  for (size_t i = 0; i < NUSERS; i++) {
    const char *subs[] = { "", "/Maildir", "/Maildir/new", "/Maildir/cur", "/Maildir/tmp" };
    size_t nsub = strcmp(users[i], "broken") == 0 ? 4 : 5;     /* broken: no tmp/ */
    for (size_t k = 0; k < nsub; k++) {
      char p[256];
      snprintf(p, sizeof p, "%s/maildirs/%s%s", home, users[i], subs[k]);
      if (mkdir(p, 0700) != 0) abort();
    }
  }
  char control[128], maps[512];
  snprintf(control, sizeof control, "%s/control", home);
  put(control, "locals", "example.test\n");
  snprintf(maps, sizeof maps, "postmaster@example.test:%s/maildirs/postmaster/Maildir\n"
           "@example.test:%s/maildirs/%%u/Maildir\n", home, home);
  put(control, "maildirs", maps);
  setenv("MXGATE_HOME", home, 1);
  unsetenv("QMAILQUEUE");
  unsetenv("MXGATE_COMMIT");                  /* fsync each file: on tmpfs, no I/O */
  setenv("HELOCHECK", ".", 1);
  setenv("MAXRECIPIENTS", "50", 1);
  setenv("DATABYTES", "20000", 1);
  signal(SIGPIPE, SIG_IGN);                   /* as main() does */
  if (smtpd_config_load(&cfg, "mxgate-smtpd") != 0) abort();
  cfg.direct_queue = &embedded;               /* as main() does with QMAILQUEUE unset */
  str_copys(&cfg.rcpthosts, "example.test");
  str_catc(&cfg.rcpthosts, 0);
  str_cats(&cfg.rcpthosts, "d.test");
  str_catc(&cfg.rcpthosts, 0);
  struct statfs fs;
  struct stat st;
  char tmp[256];
  snprintf(tmp, sizeof tmp, "%s/maildirs/alice/Maildir/tmp", home);
  if (statfs(home, &fs) == 0 && fs.f_type == TMPFS_MAGIC && stat(tmp, &st) == 0) empty_dir_size = st.st_size;
  int log[2];
  if (pipe2(log, O_NONBLOCK) < 0 || (null_fd = open("/dev/null", O_WRONLY)) < 0) abort();
  fcntl(log[1], F_SETPIPE_SZ, 1 << 20);
  log_rd = log[0];
  log_wr = log[1];
  ready = 1;
}

/* the files of home/rel: none may be there (must_be_empty), else removed */
static void sweep(const char *rel, const char *user, int must_be_empty)
{
  char d[256], p[512];
  snprintf(d, sizeof d, rel, home, user);
  struct stat st;
  if (stat(d, &st) < 0) return;               /* queue/ not made yet, broken's tmp/ */
  if (st.st_size == empty_dir_size) return;   /* tmpfs: empty (one stat, not a listing) */
  DIR *dp = opendir(d);
  if (!dp) abort();
  for (struct dirent *e; (e = readdir(dp)); ) {
    if (e->d_name[0] == '.') continue;
    if (must_be_empty) {
      fprintf(stderr, "left behind: %s/%s\n", d, e->d_name);
      abort();
    }
    snprintf(p, sizeof p, "%s/%s", d, e->d_name);
    if (unlink(p) != 0) abort();
  }
  closedir(dp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!ready) setup();
  if (size > 60000) return 0;
  int in[2];
  if (pipe(in) < 0) abort();
  if (size > 4096) fcntl(in[1], F_SETPIPE_SZ, 1 << 16);     /* one page always fits */
  if (write(in[1], data, size) != (ssize_t)size) abort();
  close(in[1]);
  struct session s;
  session_init(&s, &cfg, in[0], null_fd, log_wr);
  session_run(&s);
  session_free(&s);
  close(in[0]);
  static char buf[1 << 20];
  ssize_t n = read(log_rd, buf, sizeof buf);  /* all of this session's log: the pipe holds 1 MB */
  for (ssize_t i = 0, start = 0; i < n; i++) {
    if (buf[i] != '\n') continue;
    assert(strncmp(buf + start, "qmail-smtpd: pid ", 17) == 0 || strncmp(buf + start, "mxgate-smtpd: ", 14) == 0);
    start = i + 1;
  }
  assert(n <= 0 || buf[n - 1] == '\n');
  if (!queued) return 0;
  queued = 0;
  sweep("%s/queue/tmp%s", "", 1);
  sweep("%s/queue/bad%s", "", 1);             /* only --flush sets an entry aside */
  sweep("%s/queue/todo%s", "", 0);
  for (size_t i = 0; i < NUSERS; i++) {
    sweep("%s/maildirs/%s/Maildir/tmp", users[i], 1);
    sweep("%s/maildirs/%s/Maildir/new", users[i], 0);
  }
  return 0;
}
