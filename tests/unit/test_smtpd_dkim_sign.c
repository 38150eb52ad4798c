/* test_smtpd_dkim_sign.c -- dkim_sign.c through its interface, the
 * message fed in pieces of every size: which From: fields pick a key
 * (display names, comments, quoted strings, case) and which leave the
 * message unsigned (no From:, two, a list, a group, no key), that the body
 * hash does not depend on how the message was cut, that only trusted
 * clients are signed, and the faults (missing or bad key, malformed
 * dkimdomains). That the signatures verify is tests/it/test_dkim_sign.py's
 * part (dkimpy against dnsmasq). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include "smtpd.h"
#include "dkimcheck.h"

static char home[256];

static void put(const char *rel, const char *text)
{
  char path[512];
  snprintf(path, sizeof path, "%s/%s", home, rel);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int setup(void **st)
{
  char dir[400];
  snprintf(home, sizeof home, "/tmp/mxgate-unit-dkimsign-%ld", (long)getpid());
  mkdir(home, 0755);
  snprintf(dir, sizeof dir, "%s/control", home); mkdir(dir, 0755);
  snprintf(dir, sizeof dir, "%s/control/dkim", home); mkdir(dir, 0755);
  snprintf(dir, sizeof dir, "%s/control/dkim/signer.test", home); mkdir(dir, 0755);
  setenv("MXGATE_HOME", home, 1);
  EVP_PKEY *pk = EVP_RSA_gen(2048);
  assert_non_null(pk);
  snprintf(dir, sizeof dir, "%s/control/dkim/signer.test/sel1", home);
  FILE *f = fopen(dir, "w");
  assert_non_null(f);
  assert_true(PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL));
  fclose(f);
  EVP_PKEY_free(pk);
  put("control/dkim/signer.test/junk", "not a key\n");
  put("control/dkimdomains", "# signing domains\n\nSigner.Test:sel1\n");
  return 0;
}

static int teardown(void **st)
{
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
  return system(cmd) == 0 ? 0 : -1;
}

/* the signing of msg fed in pieces of step bytes (0: whole): 1 signed (the
 * field in sig), 0 unsigned, -1 failed (why in sig) */
static int sign(struct session *s, const char *msg, size_t step, char *sig, size_t cap)
{
  struct dkim_sign *g = dkim_sign_open(s);
  sig[0] = 0;
  if (!g) return 0;
  size_t len = strlen(msg);
  if (!step) step = len ? len : 1;
  for (size_t off = 0; off < len; off += step) dkim_sign_feed(g, msg + off, len - off < step ? len - off : step);
  str hdrs = STR_INIT(64 << 10);
  str_cats(&hdrs, "X-Before: 1\n");
  int r = dkim_sign_result(g, sig, cap, &hdrs);
  if (r == 1) {
    const char *rest = strstr(str_cstr(&hdrs), "X-Before: 1\n");
    assert_non_null(rest);                                         /* the other headers stay, after it */
    size_t n = (size_t)(rest - hdrs.s);
    if (n >= cap) n = cap - 1;
    memcpy(sig, hdrs.s, n);
    sig[n] = 0;
    r = n > 0;
  } else
    r = -1;
  str_free(&hdrs);
  dkim_sign_close(g);
  return r;
}

static struct session trusted(void)
{
  struct session s;
  memset(&s, 0, sizeof s);
  s.pid = getpid();
  s.authenticated = true;
  return s;
}

/* a tag of a DKIM-Signature field, blanks removed */
static void tag(const char *sig, const char *name, char *out, size_t cap)
{
  char key[16];
  snprintf(key, sizeof key, " %s=", name);
  const char *p = strstr(sig, key);
  if (!p) { snprintf(key, sizeof key, "\t%s=", name); p = strstr(sig, key); }
  size_t n = 0;
  if (p)
    for (p += strlen(key); *p && *p != ';' && n + 1 < cap; p++)
      if (*p != ' ' && *p != '\t' && *p != '\n') out[n++] = *p;
  out[n] = 0;
}

/* signed with d=signer.test, the same body hash whatever the pieces */
static void expect_signed(const char *msg)
{
  struct session s = trusted();
  size_t steps[] = { 0, 1, 2, 7, 64 };
  char first_bh[128] = "";
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    char sig[4096], d[64], bh[128];
    int r = sign(&s, msg, steps[i], sig, sizeof sig);
    if (r != 1) fail_msg("step %zu: not signed (%d '%s'): %s", steps[i], r, sig, msg);
    assert_true(strncmp(sig, "DKIM-Signature: v=1; a=rsa-sha256; ", 35) == 0);
    assert_null(strchr(sig, '\r'));
    tag(sig, "d", d, sizeof d);
    tag(sig, "bh", bh, sizeof bh);
    assert_string_equal(d, "signer.test");
    assert_true(strlen(bh) == 44);                                   /* base64 of a SHA-256 */
    if (!first_bh[0]) snprintf(first_bh, sizeof first_bh, "%s", bh);
    assert_string_equal(bh, first_bh);
  }
}

static void expect_unsigned(const char *msg)
{
  struct session s = trusted();
  size_t steps[] = { 0, 1, 3 };
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    char sig[4096];
    int r = sign(&s, msg, steps[i], sig, sizeof sig);
    if (r != 0) fail_msg("step %zu: %d '%s' for %s", steps[i], r, sig, msg);
  }
}

static void expect_failure(const char *msg, const char *why)
{
  struct session s = trusted();
  char sig[4096];
  assert_int_equal(sign(&s, msg, 0, sig, sizeof sig), -1);
  assert_string_equal(sig, why);
}

#define BODY "Subject: x\nTo: b@far.test\n\nHello,\n\nbody text\n"

static void from_forms_that_sign(void **st)
{
  expect_signed("From: a@signer.test\n" BODY);
  expect_signed("from:a@SIGNER.test\n" BODY);
  expect_signed("From : Sender <a@signer.test>\n" BODY);
  expect_signed("From: \"x@other.test, y\" (c@other.test) <a@signer.test>\n" BODY);
  expect_signed("From: Sender\n <a@signer.test> (folded)\n" BODY);
  expect_signed("From: a@signer.test.\n" BODY);                         /* the root's dot */
  expect_signed("From: \"a b\"@signer.test\n" BODY);
  expect_signed("From: a@signer.test\nSubject: only a header\n");         /* no body at all */
  expect_signed("From: a@signer.test\n\n");
}

static void from_forms_left_unsigned(void **st)
{
  expect_unsigned(BODY);                                                  /* no From: */
  expect_unsigned("From: a@signer.test\nFrom: b@signer.test\n" BODY);
  expect_unsigned("From: a@signer.test, b@signer.test\n" BODY);
  expect_unsigned("From: <a@signer.test>, b@other.test\n" BODY);
  expect_unsigned("From: team: a@signer.test;\n" BODY);                   /* a group */
  expect_unsigned("From: a@other.test\n" BODY);                           /* no key */
  expect_unsigned("From: a@sub.signer.test\n" BODY);                      /* no parent fallback */
  expect_unsigned("From: signer.test\n" BODY);
  expect_unsigned("From: a@signer.test (open comment\n" BODY);
  expect_unsigned("From: a@signer_test\n" BODY);
  expect_unsigned("X-From: a@signer.test\n" BODY);
  expect_unsigned("\nFrom: a@signer.test\n");                             /* all body */
}

static void only_trusted_clients(void **st)
{
  struct session s;
  char sig[4096];
  memset(&s, 0, sizeof s);
  assert_int_equal(sign(&s, "From: a@signer.test\n" BODY, 0, sig, sizeof sig), 0);
  s.conn.relayclient = "";
  assert_int_equal(sign(&s, "From: a@signer.test\n" BODY, 0, sig, sizeof sig), 1);
  s.conn.relayclient = NULL;
  s.cert_relay = true;
  assert_int_equal(sign(&s, "From: a@signer.test\n" BODY, 0, sig, sizeof sig), 1);
}

static void faults_and_settings(void **st)
{
  put("control/dkimdomains", "signer.test:gone\n");
  expect_failure("From: a@signer.test\n" BODY, "control/dkim/signer.test/gone: No such file or directory");
  expect_unsigned("From: a@other.test\n" BODY);                           /* another domain is not hurt */
  put("control/dkimdomains", "signer.test:junk\n");
  expect_failure("From: a@signer.test\n" BODY, "control/dkim/signer.test/junk: not a PEM RSA private key");
  put("control/dkimdomains", "other.test\nsigner.test:sel1|signer.test|~|86400|c:z:l\n");
  expect_failure("From: a@signer.test\n" BODY, "control/dkimdomains: line 2: not domain[:selector[:keyfile]]");
  put("control/dkimdomains", "signer.test:sel1:dkim/signer.test/sel1\n");
  expect_signed("From: a@signer.test\n" BODY);
  setenv("DKIMSIGN_HEADERS", "Subject:To", 1);
  assert_string_equal(dkim_sign_config_error(), "DKIMSIGN_HEADERS: From must be signed");
  setenv("DKIMSIGN_HEADERS", "From:Subject", 1);
  setenv("DKIMSIGN_CANON", "relaxed/loose", 1);
  assert_non_null(dkim_sign_config_error());
  setenv("DKIMSIGN_CANON", "simple", 1);
  assert_null(dkim_sign_config_error());
  struct session s = trusted();
  char sig[4096], v[64];
  assert_int_equal(sign(&s, "From: a@signer.test\n" BODY, 0, sig, sizeof sig), 1);
  tag(sig, "c", v, sizeof v);
  assert_true(strcmp(v, "simple/simple") == 0 || strcmp(v, "simple") == 0);
  tag(sig, "h", v, sizeof v);
  assert_string_equal(v, "From:Subject");
  unsetenv("DKIMSIGN_HEADERS");
  unsetenv("DKIMSIGN_CANON");
  put("control/dkimdomains", "Signer.Test:sel1\n");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(from_forms_that_sign),
    cmocka_unit_test(from_forms_left_unsigned),
    cmocka_unit_test(only_trusted_clients),
    cmocka_unit_test(faults_and_settings),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
