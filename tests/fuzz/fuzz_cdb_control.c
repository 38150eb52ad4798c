/* fuzz_cdb_control.c -- libFuzzer: control files (src/lib/control.c) and
 * the text sources mxgate-cdb compiles (src/cdb: kinds.c through
 * cdb_build). The first byte picks what the rest is:
 *   0      a control file: control_readline, control_readulong and
 *          control_readlist; a line or list item holds no newline and no
 *          trailing blank, an item is never empty or a comment, a number
 *          read is the line's digits
 *   1..6   the source of one kind (morercpthosts, badmimetypes,
 *          badloadertypes, mailfromrules, users, recipients): cdb_build
 *          writes the cdb or refuses the text; a cdb written is read back
 *          record by record: recipients keys start with ':', users data
 *          parses back to an entry of the key's name, keys are lower case
 *          where the kind lowers them
 * (The harness is named after src/cdb, whose sources build.sh links.)
 * The scratch $MXGATE_HOME is in memory (/dev/shm) when there is one;
 * mxgate-cdb's messages on stderr go to /dev/null, sanitizer reports to
 * the real stderr. */
#include "cdbkinds.h"
#include "control.h"
#include "users.h"
#include <assert.h>
#include <cdb.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sanitizer/common_interface_defs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char home[64];
static int devnull;

static void put(const char *rel, const void *text, size_t n)
{
  char p[256];
  snprintf(p, sizeof p, "%s/%s", home, rel);
  FILE *f = fopen(p, "w");
  if (!f || fwrite(text, 1, n, f) != n) abort();
  fclose(f);
}

static bool trimmed(const char *s, size_t n)
{
  return n == 0 || (s[n - 1] != ' ' && s[n - 1] != '\t' && s[n - 1] != '\r');
}

static void control(const uint8_t *data, size_t size)
{
  put("control/fuzzctl", data, size);
  str line = STR_INIT(1 << 20), list = STR_INIT(1 << 20);
  const uint8_t *nl = memchr(data, '\n', size);
  bool nul_first = memchr(data, 0, nl ? (size_t)(nl - data) : size) != NULL;
  int r = control_readline(&line, "fuzzctl", NULL);
  assert(r == 1 || (r == -1 && errno == EINVAL && nul_first));
  assert(!line.len || (memchr(line.s, '\n', line.len) == NULL && memchr(line.s, 0, line.len) == NULL));
  assert(trimmed(line.s, line.len));
  unsigned long n = 0;
  if (control_readulong(&n, "fuzzctl") == 1) {
    assert(r == 1 && line.len > 0);
    for (size_t i = 0; i < line.len; i++) assert(isdigit((unsigned char)line.s[i]));
  }
  r = control_readlist(&list, "fuzzctl");
  assert(r == 1 || (r == -1 && errno == EINVAL && memchr(data, 0, size)));
  for (const char *l = NULL; r == 1 && (l = control_next(&list, l)); ) {
    size_t k = strlen(l);
    assert(k > 0 && l[0] != '#' && !strchr(l, '\n') && trimmed(l, k));
  }
  str_free(&line);
  str_free(&list);
}

static void read_back(const char *kind, const char *path)
{
  int fd = open(path, O_RDONLY);
  struct cdb c;
  unsigned pos;
  assert(fd >= 0 && cdb_init(&c, fd) == 0);
  cdb_seqinit(&pos, &c);
  while (cdb_seqnext(&pos, &c) > 0) {
    unsigned kl = cdb_keylen(&c), dl = cdb_datalen(&c);
    char *key = malloc(kl + 1), *val = malloc(dl + 1);
    assert(cdb_read(&c, key, kl, cdb_keypos(&c)) == 0 && cdb_read(&c, val, dl, cdb_datapos(&c)) == 0);
    key[kl] = val[dl] = 0;
    assert(kl > 0);
    if (strcmp(kind, "recipients") == 0) assert(key[0] == ':');
    if (strcmp(kind, "recipients") == 0 || strcmp(kind, "morercpthosts") == 0 ||
        strcmp(kind, "mailfromrules") == 0)
      for (unsigned i = 0; i < kl; i++) assert(!isupper((unsigned char)key[i]));
    if (strcmp(kind, "users") == 0) {
      static struct user_entry u;
      const char *err = NULL;
      assert(users_parse_line(val, dl, &u, &err) == 1);
      assert(strlen(u.name) == kl && memcmp(u.name, key, kl) == 0);
    }
    free(key);
    free(val);
  }
  cdb_free(&c);
  close(fd);
}

static void source(int which, const uint8_t *data, size_t size)
{
  static const char *kinds[] = { "morercpthosts", "badmimetypes", "badloadertypes",
                                 "mailfromrules", "users", "recipients" };
  const struct cdb_kind *k = cdb_kind_find(kinds[which]);
  char dst[128];
  assert(k);
  put("control/src", data, size);
  snprintf(dst, sizeof dst, "%s/control/src.cdb", home);
  unlink(dst);
  int save = dup(2);
  dup2(devnull, 2);
  int r = cdb_build(k, "control/src", dst);
  dup2(save, 2);
  close(save);
  assert(r == 0 || r == 1);
  if (r == 0) read_back(kinds[which], dst);
  else assert(access(dst, F_OK) != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!home[0]) {
    char p[96];
    snprintf(home, sizeof home, "%s/mxgate-fuzz-cdb-%d",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
    mkdir(home, 0700);
    snprintf(p, sizeof p, "%s/control", home);
    mkdir(p, 0700);
    setenv("MXGATE_HOME", home, 1);
    devnull = open("/dev/null", O_WRONLY);
    __sanitizer_set_report_fd((void *)(intptr_t)dup(2));
  }
  if (size < 1 || size > 65536) return 0;
  int which = data[0] % 7;
  if (which == 0) control(data + 1, size - 1);
  else source(which - 1, data + 1, size - 1);
  return 0;
}
