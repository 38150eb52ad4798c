/* fuzz_queue_envelope.c -- libFuzzer: what mxgate-queue parses from its
 * input and its configuration. The first byte picks what the rest is:
 *   0  the envelope on fd 1 (a pipe here): envelope_read; its end found
 *      in pieces (envelope_end, as reads arrive) is the end found at once;
 *      a parsed envelope has a sender and recipients, each a NUL-ended
 *      string inside what was read; every recipient is looked up in a
 *      fixed local map (localmap_find), which names an absolute Maildir
 *      or none
 *   1  control/locals and control/maildirs (split at the first NUL byte)
 *      and, after a second NUL, addresses one a line: localmap_load
 *      accepts the files or refuses them as a whole, and the lookups of
 *      the addresses and localmap_each_maildir stay in bounds (the
 *      latter only for templates whose directory is not the machine's)
 * The scratch $MXGATE_HOME is in memory (/dev/shm) when there is one;
 * localmap_load's complaints go to /dev/null, sanitizer reports to the
 * real stderr. */
#include "queue.h"
#include "control.h"
#include <assert.h>
#include <sanitizer/common_interface_defs.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char home[64];
static struct localmap fixed;
static int devnull;

static void put(const char *rel, const void *text, size_t n)
{
  char p[256];
  snprintf(p, sizeof p, "%s/%s", home, rel);
  FILE *f = fopen(p, "w");
  if (!f || fwrite(text, 1, n, f) != n) abort();
  fclose(f);
}

static void setup(void)
{
  char p[256];
  snprintf(home, sizeof home, "%s/mxgate-fuzz-queue-%d",
           access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
  static const char *dirs[] = { "", "/control", "/users", "/users/alice", "/users/alice/Maildir",
                                "/users/bob", "/users/bob/Maildir" };
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
    snprintf(p, sizeof p, "%s%s", home, dirs[i]);
    mkdir(p, 0700);
  }
  setenv("MXGATE_HOME", home, 1);
  devnull = open("/dev/null", O_WRONLY);
  __sanitizer_set_report_fd((void *)(intptr_t)dup(2));   /* reports still reach stderr */
  static const char locals[] = "example.test\nOther.TEST\n";
  char maildirs[512];
  int n = snprintf(maildirs, sizeof maildirs,
                   "Carol@Example.test:/srv/carol/Maildir\nmary-lists@example.test:/srv/mary/Maildir\n"
                   "@other.test:%s/users/%%u/Maildir\n", home);
  put("control/locals", locals, sizeof locals - 1);
  put("control/maildirs", maildirs, (size_t)n);
  if (localmap_load(&fixed) != QQ_OK) abort();
}

static void lookup(const struct localmap *m, const char *addr)
{
  char md[4096];
  enum rcpt_kind k = localmap_find(m, addr, md, sizeof md);
  assert(k == RCPT_REMOTE || k == RCPT_LOCAL_UNMAPPED || k == RCPT_MAILDIR);
  if (k == RCPT_MAILDIR) assert(md[0] == '/' && strlen(md) < sizeof md);
  assert((k == RCPT_REMOTE) == !localmap_is_local(m, addr));
}

static void envelope(const uint8_t *data, size_t size)
{
  static struct envelope e;
  int fds[2];
  if (size > 60000 || pipe(fds) < 0) return;
  fcntl(fds[1], F_SETPIPE_SZ, 1 << 16);
  if (write(fds[1], data, size) != (ssize_t)size) abort();
  close(fds[1]);
  int r = envelope_read(fds[0], &e);
  close(fds[0]);
  /* the end as found while reads arrive in pieces of 1..7 bytes */
  size_t field = 0, end = 0, step = size ? data[0] % 7 + 1 : 1;
  for (size_t from = 0; from < size && !end; from += step)
    end = envelope_end((const char *)data, from, from + step < size ? from + step : size, &field);
  size_t once = 0;
  field = 0;
  once = envelope_end((const char *)data, 0, size, &field);
  assert(end == once);
  if (r == QQ_OK) {
    assert(e.raw.len == once && e.nrcpt > 0);
    assert(e.sender == e.raw.s + 1);
    for (size_t i = 0; i < e.nrcpt; i++) {
      assert(e.rcpt[i] > e.raw.s && e.rcpt[i] < e.raw.s + e.raw.len);
      assert(e.rcpt[i][-1] == 'T' && e.rcpt[i][0] != 0);
      assert(strlen(e.rcpt[i]) <= 1001);
      lookup(&fixed, e.rcpt[i]);
    }
  } else {
    assert(r == QQ_READ || r == QQ_ENVELOPE || r == QQ_ADDR_TOO_LONG);
  }
  envelope_free(&e);
}

static void each(const char *maildir) { assert(maildir[0] == '/'); }

/* a template outside the scratch home that names a directory would
 * have the harness list the machine's directories (/tmp, /proc) on every
 * run: such maps are not listed */
static bool listable(const struct localmap *m)
{
  char dir[4096];
  for (const char *l = NULL; (l = control_next(&m->maildirs, l)); ) {
    const char *tpl = strchr(l, ':') + 1, *u = strstr(tpl, "%u");
    if (!u || strncmp(tpl, home, strlen(home)) == 0) continue;
    if ((size_t)snprintf(dir, sizeof dir, "%.*s", (int)(u - tpl), tpl) >= sizeof dir) continue;
    struct stat st;
    if (stat(dir[0] ? dir : "/", &st) == 0) return false;
  }
  return true;
}

static void config(const uint8_t *data, size_t size)
{
  const uint8_t *z1 = memchr(data, 0, size);
  size_t n1 = z1 ? (size_t)(z1 - data) : size;
  const uint8_t *rest = z1 ? z1 + 1 : data + size;
  size_t left = (size_t)(data + size - rest);
  const uint8_t *z2 = memchr(rest, 0, left);
  size_t n2 = z2 ? (size_t)(z2 - rest) : left;
  put("control/locals", data, n1);
  put("control/maildirs", rest, n2);
  struct localmap m = { STR_INIT(0), STR_INIT(0) };
  int save = dup(2);
  dup2(devnull, 2);                      /* a refused file is said on stderr */
  int r = localmap_load(&m);
  dup2(save, 2);
  close(save);
  if (r == QQ_OK) {
    for (const char *l = NULL; (l = control_next(&m.maildirs, l)); ) assert(strchr(l, ':'));
    char *addrs = z2 ? strndup((const char *)z2 + 1, (size_t)(data + size - z2 - 1)) : strdup("");
    for (char *a = addrs, *next; a && *a; a = next) {
      next = a + strcspn(a, "\n");
      if (*next) *next++ = 0;
      lookup(&m, a);
    }
    free(addrs);
    if (listable(&m)) localmap_each_maildir(&m, each);
  }
  localmap_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!home[0]) setup();
  if (size < 1 || size > 60000) return 0;
  if (data[0] % 2 == 0) envelope(data + 1, size - 1);
  else config(data + 1, size - 1);
  return 0;
}
